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

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from audit.ingest.base import FieldMap, InputError, Reader, ReadResult, SourceFile
from audit.ingest.csv import CsvReader
from audit.ingest.jsonl import JsonlReader
from audit.ingest.pagedump import PageDumpReader
from audit.ingest.parquet import ParquetReader
from audit.schema import quarantine_frame, records_frame

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


def _expand(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[SourceFile], list[dict[str, str]]]:
    """Files named by ``paths``: directories recursively (symlinks to directories not followed)."""
    sources: dict[Path, SourceFile] = {}
    skipped: list[dict[str, str]] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    file_path = Path(root) / name
                    source = SourceFile(file_path, file_path.relative_to(path).as_posix())
                    if reader_for(source) is None:
                        skipped.append({"source": str(file_path), "reason": "unsupported file type"})
                        continue
                    sources.setdefault(file_path.resolve(), source)
        else:
            source = SourceFile(path, path.name)
            if reader_for(source) is None:
                known = sorted({s for r in READERS for s in r.suffixes})
                raise InputError(
                    f"{path}: unsupported file type {source.format_suffix or '(none)'!r}; "
                    f"known: {', '.join(known)} (optionally .gz)"
                )
            resolved = path.resolve()
            if resolved in sources:
                skipped.append({"source": str(path), "reason": "same file given twice"})
                continue
            sources[resolved] = source
    return sorted(sources.values(), key=lambda s: (s.name, str(s.path))), skipped


def _read_one(source: SourceFile, fields: FieldMap) -> ReadResult:
    reader = reader_for(source)
    assert reader is not None  # _expand kept only files with a reader
    try:
        return reader.read(source, fields)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        result = ReadResult()
        result.quarantine_row(source, None, f"unreadable file: {error}")
        return result


def _unique_ids(rows: list[dict[str, Any]]) -> None:
    """Make ids unique: a repeated id gets ``@<source>:<line>`` appended."""
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            row["id"] = f"{row['id']}@{row['source']}:{row['line']}"
        seen.add(row["id"])


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

    Raises :class:`InputError` only for a path that does not exist or a named file of an
    unknown type; bad content inside a file is quarantined, never raised.
    """
    fields = fields or FieldMap()
    sources, skipped = _expand(list(paths))
    rows: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for source in sources:
        result = _read_one(source, fields)
        rows.extend(result.rows)
        quarantine.extend(result.quarantine)
        try:
            size = source.path.stat().st_size
        except OSError:
            size = None
        files.append(
            {
                "source": source.name,
                "path": str(source.path),
                "format": (reader_for(source) or PageDumpReader()).name,
                "bytes": size,
                "sha256": _file_digest(source.path),
                "records": len(result.rows),
                "quarantined": len(result.quarantine),
                "furniture_lines": result.furniture_lines,
            }
        )
    _unique_ids(rows)
    return IngestResult(records_frame(rows), quarantine_frame(quarantine), files, skipped)
