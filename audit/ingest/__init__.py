"""Ingest: input paths -> the record DataFrame (see :mod:`audit.schema`) plus quarantine.

Adding an input format means adding one module with a :class:`~audit.ingest.base.Reader`
subclass and listing it in :data:`READERS`.

Example:
    >>> from audit.ingest import read_inputs
    >>> batch = read_inputs(["seeds/"])            # doctest: +SKIP
    >>> len(batch.records), len(batch.quarantine)  # doctest: +SKIP
    (588, 0)
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.ingest.base import FieldMap, InputError, Reader, ReadResult, SourceFile
from audit.ingest.csv import CsvReader
from audit.ingest.jsonl import JsonlReader
from audit.ingest.pagedump import PageDumpReader
from audit.ingest.parquet import ParquetReader
from audit.schema import quarantine_frame, records_from_tables

__all__ = ["READERS", "FieldMap", "IngestResult", "InputError", "read_inputs", "reader_for"]

READERS: tuple[Reader, ...] = (PageDumpReader(), JsonlReader(), CsvReader(), ParquetReader())


def reader_for(source: SourceFile) -> Reader | None:
    """The reader for a file's suffix (``.gz`` looked through), or None."""
    suffix = source.format_suffix
    return next((r for r in READERS if suffix in r.suffixes), None)


@dataclass
class IngestResult:
    """Records, quarantined input and a line per input file for the report."""

    records: pd.DataFrame
    quarantine: pd.DataFrame
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _display_name(path: Path) -> str:
    """A file name as records cite it; undecodable bytes in it are shown escaped."""
    return path.as_posix().encode("utf-8", "backslashreplace").decode("utf-8")


def _missing_reason(path: Path) -> str:
    """Why a path that does not exist as a file or directory cannot be read."""
    try:
        path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if error.errno == errno.EACCES:
            return "permission denied"
        if os.path.lexists(path):
            return "broken symbolic link (its target does not exist)"
        return "no such file or directory"
    return "not a regular file (a FIFO, socket or device)"


def _walk(directory: Path, skipped: list[dict[str, str]]) -> Iterator[tuple[Path, SourceFile]]:
    """Readable supported files below ``directory``; what cannot be read goes to ``skipped``."""

    def unreadable(error: OSError) -> None:
        where = _display_name(Path(error.filename or directory))
        skipped.append({"source": where, "reason": f"unreadable directory: {error.strerror}"})

    for root, dirs, files in os.walk(directory, onerror=unreadable, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            file_path = Path(root) / name
            source = SourceFile(file_path, _display_name(file_path.relative_to(directory)))
            if reader_for(source) is None:
                skipped.append({"source": _display_name(file_path), "reason": "unsupported file type"})
            elif not file_path.is_file():  # a FIFO would block the run; a broken link cannot be read
                skipped.append({"source": _display_name(file_path), "reason": _missing_reason(file_path)})
            else:
                yield file_path, source


def _expand(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[SourceFile], list[dict[str, str]]]:
    """Files named by ``paths``: directories recursively (symlinks to directories not followed).

    The result does not depend on the order of ``paths``: files are sorted by name, a file
    reached twice is read once (as its smallest name), and names two files share are
    replaced by their paths.
    """
    found: dict[Path, list[SourceFile]] = {}
    skipped: list[dict[str, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for file_path, source in _walk(path, skipped):
                found.setdefault(file_path.resolve(), []).append(source)
        elif path.is_file():
            source = SourceFile(path, _display_name(Path(path.name)))
            if reader_for(source) is None:
                known = sorted({s for r in READERS for s in r.suffixes})
                raise InputError(
                    f"{path}: unsupported file type {source.format_suffix or '(none)'!r}; "
                    f"known: {', '.join(known)} (optionally .gz)"
                )
            found.setdefault(path.resolve(), []).append(source)
        else:
            raise InputError(f"{path}: {_missing_reason(path)}")
    sources = []
    for copies in found.values():
        copies.sort(key=lambda s: (s.name, str(s.path)))
        sources.append(copies[0])
        skipped.extend(
            {"source": _display_name(c.path), "reason": f"same file given twice (read as {copies[0].name})"}
            for c in copies[1:]
        )
    shared = Counter(s.name for s in sources)
    sources = [SourceFile(s.path, _display_name(s.path)) if shared[s.name] > 1 else s for s in sources]
    skipped.sort(key=lambda s: (s["source"], s["reason"]))
    return sorted(sources, key=lambda s: (s.name, str(s.path))), skipped


def _read_one(source: SourceFile, fields: FieldMap) -> ReadResult:
    reader = reader_for(source)
    assert reader is not None  # _expand kept only files with a reader
    result = ReadResult()
    try:
        return reader.read(source, fields)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        result.quarantine_row(source, None, f"corrupt or truncated gzip file: {error}")
    except OSError as error:
        result.quarantine_row(source, None, f"unreadable file: {error.strerror or error}")
    except MemoryError:
        result.quarantine_row(source, None, "file too large to read into memory")
    except Exception as error:  # a reader bug must cost one file, not the run
        result.quarantine_row(source, None, f"internal error reading file (please report): {error!r}")
    return result


def _empty_note(source: SourceFile) -> str:
    """Why a file gave no records and no quarantine rows: said in the report, never silent."""
    try:
        data = source.read_bytes()
    except (OSError, EOFError, zlib.error):
        return "no records"
    if not data:
        return "empty file"
    if not data.strip():
        return "only whitespace"
    return "no records (only page furniture or a header)"


def _unique_ids(tables: list[pa.Table]) -> list[pa.Table]:
    """Make ids unique: a repeated id gets ``@<source>:<line>`` appended (again if still taken).

    Only when some id repeats are the ids looked at one by one (in record order).
    """
    if not tables:
        return tables
    ids = pa.chunked_array([t.column("id") for t in tables], type=pa.large_string())
    if pc.count_distinct(ids).as_py() == len(ids):
        return tables
    seen: set[str] = set()
    fixed = []
    for table in tables:
        column = table.column("id").to_pylist()
        sources, lines = table.column("source").to_pylist(), table.column("line").to_pylist()
        for n, record_id in enumerate(column):
            while record_id in seen:
                record_id = f"{record_id}@{sources[n]}:{lines[n]}"
            column[n] = record_id
            seen.add(record_id)
        position = table.schema.get_field_index("id")
        fixed.append(table.set_column(position, "id", pa.array(column, pa.large_string())))
    return fixed


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def read_inputs(paths: Iterable[str | os.PathLike[str]], fields: FieldMap | None = None) -> IngestResult:
    """Read every supported file named by ``paths`` into one record DataFrame.

    Raises :class:`InputError` only for a named path that cannot be read at all (does not
    exist, symlink loop, not a regular file) or a named file of an unknown type; bad content
    inside a file is quarantined, never raised; a file inside a directory that cannot be read
    is quarantined or listed in ``skipped``; a file that gives nothing gets a ``note``.
    """
    fields = fields or FieldMap()
    sources, skipped = _expand(list(paths))
    tables: list[pa.Table] = []
    quarantine: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    # Each file's digest is taken on a thread while it is read (hashlib lets go of the GIL).
    with ThreadPoolExecutor(max_workers=1) as hasher:
        digests = [hasher.submit(_file_digest, source.path) for source in sources]
        for source, digest in zip(sources, digests, strict=True):
            files.append(_read_file(source, fields, tables, quarantine, digest))
    records = records_from_tables(_unique_ids(tables))
    return IngestResult(records, quarantine_frame(quarantine), files, skipped)


def _read_file(
    source: SourceFile,
    fields: FieldMap,
    tables: list[pa.Table],
    quarantine: list[dict[str, Any]],
    digest: Future[str],
) -> dict[str, Any]:
    """Read one file into ``tables`` and ``quarantine``; its line in the report."""
    result = _read_one(source, fields)
    count = result.record_count
    tables.extend(result.record_tables())
    quarantine.extend(result.quarantine)
    try:
        size = source.path.stat().st_size
    except OSError:
        size = None
    note = _empty_note(source) if not count and not result.quarantine else None
    return {
        "source": source.name,
        "path": _display_name(source.path),
        "format": (reader_for(source) or PageDumpReader()).name,
        "bytes": size,
        "sha256": digest.result(),
        "records": count,
        "quarantined": len(result.quarantine),
        "furniture_lines": result.furniture_lines,
        **({"note": note} if note else {}),
    }
