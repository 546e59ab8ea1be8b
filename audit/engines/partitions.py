"""Input files cut into partitions that can be read apart, numbered as one whole reading numbers them.

Every record's ``line``, default id and order, and every quarantine row, are those of reading the
file whole (:func:`audit.ingest.read_inputs`); a file larger than a partition is cut by format:

- **JSON Lines**: byte ranges that begin and end at a line end (:class:`audit.ingest.jsonl.Span`);
  the lines before each range are counted first on the workers (a cheap pass that only counts
  line ends, as ``bytes.splitlines`` does), so each range knows its first line and byte offset.
- **CSV**: byte ranges that begin at a record, found by one pass of the csv module over the file
  on a worker (:func:`audit.ingest.csv.record_spans`): a quoted newline is never a cut. The pass
  parses the whole file once more (the csv module's speed, one core); each range carries the
  header.
- **Parquet**: a few row groups a partition, up to the partition size by their uncompressed
  size (the file's metadata). A row group larger than a partition (pandas and pyarrow write one
  group of up to a million rows) is first rewritten by a worker, streamed a batch at a time,
  into an uncompressed scratch copy of smaller row groups that the partitions read: Parquet
  cannot be entered mid-group without decoding it from its start, which would cost each
  partition every row before its own. A file without the text column, or that pyarrow cannot
  open, is one partition (its reader quarantines it whole); a partition that meets a value Python
  cannot take (``ReadResult.file_error``) has its file read whole again, as the local engine does.
- **gzipped files** (``.gz`` of any of these): gzip cannot be entered mid-stream. A file whose
  uncompressed size (the gzip trailer's, or its own size if larger) exceeds a partition is
  decompressed once by a worker, streamed, into a scratch copy, which is then cut as the
  uncompressed format. The copy costs disk (the uncompressed size) and one decompression, as
  reading the file whole did; the workers must see the directory the client makes it in (a
  LocalCluster does; each copy's size is checked on every worker, and a file whose copy a worker
  cannot see is one partition, as before). A stream that is damaged or truncated is one
  partition, read whole: its reader gives the same quarantine row (no records) as the local run,
  at the cost of holding its records until the damage is met.
- **page dumps** (``.txt``): one partition: a title and its abstract pair across lines, and
  dumps of paper listings are small by nature.

The scratch copies live in a directory removed when :class:`Plan` is freed (Dask may read a
partition again if a worker is lost).
"""

from __future__ import annotations

import gzip
import itertools
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distributed import Client

from audit.ingest import _expand, _read_one, reader_for
from audit.ingest.base import SNIFF_BYTES, FieldMap, ReadResult, SourceFile, bom_bytes, not_text_reason
from audit.ingest.csv import CsvReader, record_spans
from audit.ingest.csv import read_span as read_csv_span
from audit.ingest.jsonl import JsonlReader, Span, line_ends_between, read_span
from audit.ingest.pagedump import PageDumpReader
from audit.ingest.parquet import ParquetReader, read_row_groups

#: Bytes a stream is copied by (decompression, the Parquet rewrite reads pages of this size).
_COPY_BYTES = 1 << 20
#: Row groups of a rewritten Parquet copy: this fraction of a partition, so partitions fill up.
_GROUPS_PER_PART = 4


@dataclass(frozen=True)
class Part:
    """One partition: a whole file, a span of lines (JSON Lines) or records (CSV), or row groups
    (Parquet), of the file or of its scratch copy."""

    source: SourceFile
    #: The byte range and what comes before it; None (and no row groups): the whole file by its reader.
    span: Span | None = None
    #: CSV, a span: the file's header row.
    header: tuple[str, ...] = ()
    #: Parquet: consecutive row groups, after ``rows_before`` rows of the file.
    row_groups: tuple[int, ...] = ()
    rows_before: int = 0
    #: The uncompressed (or rewritten) copy read in place of the file, under its name.
    copy: Path | None = None

    @property
    def readable(self) -> SourceFile:
        """The file the partition's bytes are read from, named as the input."""
        return _readable(self.source, self.copy)


def _readable(source: SourceFile, copy: Path | None) -> SourceFile:
    """``copy`` (None: ``source`` itself) under ``source``'s name."""
    return source if copy is None else SourceFile(copy, source.name)


@dataclass
class Plan:
    """A run's partitions, in record order, and the scratch directory their copies are in."""

    parts: list[Part]
    scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)


def input_bytes(paths: Sequence[str]) -> int:
    """The bytes of the files a run of ``paths`` reads (a gzipped file's uncompressed size, as its
    trailer gives it; a Parquet file's as stored)."""
    sources = _expand(list(paths))[0]
    return sum(uncompressed_size(source) for source in sources)


def count_lines(source: SourceFile, start: int, stop: int) -> int:
    """Lines in bytes ``start:stop`` of ``source`` as ``bytes.splitlines`` cuts them (a range that
    ends at a line end or the file's end, so no CRLF is cut in two)."""
    if stop <= start:
        return 0
    with source.path.open("rb") as handle:
        ends = line_ends_between(handle, start, stop)  # the parallel ingest's own count
        handle.seek(stop - 1)
        last = handle.read(1)
    return ends + (1 if last not in (b"\n", b"\r") else 0)  # an unterminated last line


def _next_line_start(source: SourceFile, at: int, size: int) -> int:
    """The first byte after the first LF at or after ``at`` (``size`` when there is none)."""
    with source.path.open("rb") as handle:
        handle.seek(at)
        position = at
        while position < size:
            block = handle.read(1 << 16)
            if not block:
                break
            found = block.find(b"\n")
            if found >= 0:
                return position + found + 1
            position += len(block)
    return size


def cut_points(source: SourceFile, part_bytes: int) -> list[int] | None:
    """Byte offsets cutting ``source`` into line-aligned ranges of about ``part_bytes``, from 0 to
    its size; None when the file is read whole (not JSON Lines, gzipped, small, or not text:
    that is judged on the file's start, by the reader itself)."""
    if source.compressed or not isinstance(reader_for(source), JsonlReader):
        return None
    try:
        size = source.path.stat().st_size
        if size <= part_bytes:
            return None
        with source.path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return None
    if not_text_reason(head):
        return None
    points = [0]
    while points[-1] < size:
        points.append(max(_next_line_start(source, points[-1] + part_bytes, size), points[-1] + 1))
    points[-1] = size
    return points


def spans(source: SourceFile, points: list[int], lines: list[int], copy: Path | None = None) -> list[Part]:
    """The partitions of ``source`` cut at ``points``, given each range's line count (``copy``:
    the uncompressed copy the points are in)."""
    bom = bom_bytes(source.path if copy is None else copy)
    parts, before = [], 0
    for start, stop, count in zip(points[:-1], points[1:], lines, strict=True):
        # The reader drops the byte-order mark and counts offsets from after it.
        parts.append(Part(source, Span(start, stop, before, max(start - bom, 0)), copy=copy))
        before += count
    return parts


def uncompressed_size(source: SourceFile) -> int:
    """About the bytes a file holds: a gzipped file's trailer's size (modulo 4 GiB, of its last
    member) or its own size if larger; any other file's size."""
    if not source.compressed:
        return source.path.stat().st_size
    with source.path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(size - 4, 0))
        trailer = int.from_bytes(handle.read(4), "little") if size >= 4 else 0
    return max(size, trailer)


def decompress(source: SourceFile, copy: Path) -> Path | None:
    """``source`` decompressed into ``copy`` a block at a time; None (no copy) when the stream is
    damaged or truncated: such a file is read whole, as the local engine reads it."""
    try:
        with gzip.open(source.path, "rb") as stream, copy.open("wb") as out:
            shutil.copyfileobj(stream, out, _COPY_BYTES)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
        copy.unlink(missing_ok=True)
        return None
    return copy


def csv_parts(source: SourceFile, part_bytes: int, copy: Path | None = None) -> list[Part] | None:
    """The partitions of a CSV file (of ``copy`` if given) cut at record starts; None: whole."""
    found = record_spans(_readable(source, copy), part_bytes)
    if found is None:
        return None
    header, ranges = found
    return [Part(source, span, header=tuple(header), copy=copy) for span in ranges]


def parquet_parts(
    source: SourceFile,
    fields: FieldMap,
    part_bytes: int,
    scratch: Path,
    number: int = 0,
    copy: Path | None = None,
    rewrite: bool = True,
) -> list[Part] | None:
    """The partitions of a Parquet file (of ``copy`` if given): row groups up to ``part_bytes``
    uncompressed, a row group larger than that rewritten smaller into a scratch copy first (if
    ``rewrite``; a group of one row larger than a partition stays one); None: the file is read
    whole (small, one group, not readable by pyarrow, no text column)."""
    import pyarrow.parquet as pq

    path = source.path if copy is None else copy
    try:
        with pq.ParquetFile(path) as parquet:
            meta = parquet.metadata
            if fields.text not in parquet.schema_arrow.names:
                return None
            sizes = [meta.row_group(n).total_byte_size for n in range(meta.num_row_groups)]
            total = sum(sizes)
            if total <= part_bytes or meta.num_rows <= 1:
                return None
            if max(sizes) > part_bytes and rewrite:
                rewritten = scratch / f"{number}.groups.parquet"
                rows = max(1, meta.num_rows * (part_bytes // _GROUPS_PER_PART) // max(total, 1))
                _rewrite(path, rewritten, rows)
                if copy is not None:
                    copy.unlink()  # the decompressed copy, rewritten
                return parquet_parts(source, fields, part_bytes, scratch, number, rewritten, rewrite=False)
    except Exception:  # pyarrow raises several types for damaged files: its reader says which
        return None
    parts, groups, size, before = [], [], 0, 0
    for n, group_size in enumerate(sizes):
        if groups and size + group_size > part_bytes:
            parts.append(Part(source, row_groups=tuple(groups), rows_before=before, copy=copy))
            before += sum(meta.row_group(g).num_rows for g in groups)
            groups, size = [], 0
        groups.append(n)
        size += group_size
    parts.append(Part(source, row_groups=tuple(groups), rows_before=before, copy=copy))
    return parts if len(parts) > 1 else None


def _rewrite(path: Path, copy: Path, rows: int) -> None:
    """The Parquet file ``path`` rewritten into ``copy``, uncompressed, in row groups of ``rows``
    (its schema, metadata and values as they are), read a batch and a page at a time."""
    import pyarrow.parquet as pq

    with (
        pq.ParquetFile(path, buffer_size=_COPY_BYTES, pre_buffer=False) as parquet,
        pq.ParquetWriter(copy, parquet.schema_arrow, compression="none") as writer,
    ):
        for batch in parquet.iter_batches(batch_size=rows, use_threads=False):
            writer.write_batch(batch, row_group_size=rows)


def plan_file(
    source: SourceFile, fields: FieldMap, part_bytes: int, scratch: Path, number: int
) -> list[Part] | None:
    """A file's partitions but for uncompressed JSON Lines (cut by the caller): run on a worker,
    as it reads the file (a decompression, a csv pass, a Parquet rewrite). None: read whole."""
    reader = reader_for(source)
    if isinstance(reader, PageDumpReader):
        return None
    copy = None
    if source.compressed:
        if uncompressed_size(source) <= part_bytes:
            return None
        suffix = "".join(source.path.suffixes[:-1][-1:])  # the format's suffix, without .gz
        copy = decompress(source, scratch / f"{number}{suffix}")
        if copy is None:
            return None
    parts = None
    if isinstance(reader, JsonlReader) and copy is not None:
        readable = _readable(source, copy)
        points = cut_points(readable, part_bytes)
        if points is not None:
            lines = [count_lines(readable, a, b) for a, b in itertools.pairwise(points)]
            parts = spans(source, points, lines, copy)
    elif isinstance(reader, CsvReader):
        parts = csv_parts(source, part_bytes, copy)
    elif isinstance(reader, ParquetReader):
        parts = parquet_parts(source, fields, part_bytes, scratch, number, copy)
    if parts is None and copy is not None:
        copy.unlink(missing_ok=True)  # read whole, from the file itself
    return parts


def _sizes(paths: list[str]) -> dict[str, int]:
    """The size of each of ``paths`` as a worker sees it (-1: not there)."""
    sizes = {}
    for path in paths:
        try:
            sizes[path] = Path(path).stat().st_size
        except OSError:
            sizes[path] = -1
    return sizes


def plan(client: Client, sources: list[SourceFile], fields: FieldMap, part_bytes: int) -> Plan:
    """The partitions of ``sources`` in partitions of about ``part_bytes`` (see the module's doc):
    cut points and line counts found on the workers behind ``client``."""
    scratch = tempfile.TemporaryDirectory(prefix="scrape-audit-parts-")
    cuts = {n: cut_points(source, part_bytes) for n, source in enumerate(sources)}
    # Each range's lines counted on the workers (a pass that only counts line ends).
    line_counts = {
        n: client.map(count_lines, [sources[n]] * (len(points) - 1), points[:-1], points[1:], pure=False)
        for n, points in cuts.items()
        if points is not None
    }
    others = {
        n: client.submit(plan_file, source, fields, part_bytes, Path(scratch.name), n, pure=False)
        for n, source in enumerate(sources)
        if cuts[n] is None and _may_cut(source, part_bytes)
    }
    planned: list[list[Part]] = []
    for n, source in enumerate(sources):
        points = cuts[n]
        if points is not None:
            planned.append(spans(source, points, [future.result() for future in line_counts[n]]))
        elif n in others:
            try:
                planned.append(others[n].result() or [Part(source)])
            except Exception:  # a file the plan cannot read (a reader bug): its reader says why
                planned.append([Part(source)])
        else:
            planned.append([Part(source)])
    copies = sorted({str(part.copy) for parts in planned for part in parts if part.copy is not None})
    if copies:  # a copy some worker cannot see (no shared scratch directory): the file read whole
        seen = client.run(_sizes, copies)
        local = _sizes(copies)
        missing = {path for sizes in seen.values() for path, size in sizes.items() if size != local[path]}
        planned = [
            [Part(parts[0].source)] if any(str(p.copy) in missing for p in parts) else parts
            for parts in planned
        ]
    return Plan([part for parts in planned for part in parts], scratch if copies else None)


def _may_cut(source: SourceFile, part_bytes: int) -> bool:
    """Whether a file can be cut at all (worth a task): larger than a partition, not a page dump."""
    if isinstance(reader_for(source), PageDumpReader | None):
        return False
    try:
        return uncompressed_size(source) > part_bytes
    except OSError:
        return False


def read_part(part: Part, fields: FieldMap) -> ReadResult:
    """The records and quarantine rows of one partition, as reading the whole file gives them."""
    if part.span is None and not part.row_groups:
        return _read_one(part.source, fields)
    source = part.readable
    try:
        if part.row_groups:
            return read_row_groups(source, fields, part.row_groups, part.rows_before)
        if part.header:
            return read_csv_span(source, fields, part.span, part.header)  # type: ignore[arg-type]
        return read_span(source, fields, part.span)  # type: ignore[arg-type]
    except OSError as error:  # as for a whole file (audit.ingest._read_one)
        result = ReadResult()
        result.quarantine_row(part.source, None, f"unreadable file: {error.strerror or error}")
        return result


def whole_again(parts: list[Part], results: list[dict[str, Any]]) -> dict[int, Part]:
    """The files a partition of which set ``file_error`` (in ``results``, per partition): by the
    index of the file's first partition, the file as one partition, read whole again."""
    failed = {part.source for part, result in zip(parts, results, strict=True) if result.get("file_error")}
    first: dict[int, Part] = {}
    for n, part in enumerate(parts):
        if part.source in failed and not any(p.source == part.source for p in first.values()):
            first[n] = replace(part, span=None, header=(), row_groups=(), rows_before=0, copy=None)
    return first
