"""Input files cut into partitions that can be read apart, numbered as one whole reading numbers them.

A JSON Lines file larger than a partition is cut into byte ranges that begin and end at a line
end (:class:`audit.ingest.jsonl.Span`); the lines before each range are counted first (a cheap
pass that only counts line ends, as ``bytes.splitlines`` does), so that every record's ``line``,
default id and every quarantine row's line and byte offset are the whole file's. Every other
file (CSV, Parquet, page dumps, gzipped files, a file that is not text) is one partition read
by its own reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.ingest import _expand, _read_one, reader_for
from audit.ingest.base import SNIFF_BYTES, FieldMap, ReadResult, SourceFile, not_text_reason
from audit.ingest.jsonl import JsonlReader, Span, line_ends_between, read_span

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Part:
    """One partition: a whole file, or a span of lines of an uncompressed JSON Lines file."""

    source: SourceFile
    #: The byte range and what comes before it; None: the whole file by its reader.
    span: Span | None = None


def input_bytes(paths: Sequence[str]) -> int:
    """The bytes of the files a run of ``paths`` reads (as stored: a gzipped file's compressed size)."""
    return sum(source.path.stat().st_size for source in _expand(list(paths))[0])


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


def spans(source: SourceFile, points: list[int], lines: list[int]) -> list[Part]:
    """The partitions of ``source`` cut at ``points``, given each range's line count."""
    with source.path.open("rb") as handle:
        bom = len(_BOM) if handle.read(len(_BOM)) == _BOM else 0
    parts, before = [], 0
    for start, stop, count in zip(points[:-1], points[1:], lines, strict=True):
        # The reader drops the byte-order mark and counts offsets from after it.
        parts.append(Part(source, Span(start, stop, before, max(start - bom, 0))))
        before += count
    return parts


def read_part(part: Part, fields: FieldMap) -> ReadResult:
    """The records and quarantine rows of one partition, as reading the whole file gives them."""
    if part.span is None:
        return _read_one(part.source, fields)
    try:
        return read_span(part.source, fields, part.span)
    except OSError as error:  # as for a whole file (audit.ingest._read_one)
        result = ReadResult()
        result.quarantine_row(part.source, None, f"unreadable file: {error.strerror or error}")
        return result
