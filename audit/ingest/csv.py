"""CSV exports (``.csv``) with a header row; quoted fields may span lines.

A row with invalid UTF-8 bytes, or with more or fewer fields than the header, is quarantined
with its line; the other rows still read.

A large file can be read in byte ranges that begin at a record (:func:`record_spans` finds
them with the csv module itself, so a quoted newline is never a cut): :func:`read_span` reads
one, its records and quarantine rows numbered as in the whole file.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator, Sequence

from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile, bom_bytes, quarantined_as_not_text
from audit.ingest.fields import row_from_mapping
from audit.ingest.jsonl import Span, line_blocks

_SURROGATE = re.compile("[\udc80-\udcff]")

# Scraped fields can be huge; the default limit (128 KiB) would reject them.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CsvReader(Reader):
    name = "csv"
    suffixes = (".csv",)

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        return _read_text(source.read_bytes(), source, fields)


def _read_text(data: bytes, source: SourceFile, fields: FieldMap) -> ReadResult:
    """A file's records (or its first records: ``data`` may end at any record's end)."""
    result = ReadResult()
    if quarantined_as_not_text(data, source, result):
        return result
    # Undecodable bytes become lone surrogates here, so the row holding them is found below.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return result
    except csv.Error as error:
        result.quarantine_row(source, 1, f"unreadable CSV header: {error}", text[:200])
        return result
    _read_rows(reader, header, 0, source, fields, result)
    return result


def _read_rows(
    reader: Iterator[list[str]],
    header: Sequence[str],
    lines_before: int,
    source: SourceFile,
    fields: FieldMap,
    result: ReadResult,
) -> None:
    """The rows of ``reader`` (a ``csv.reader``) after ``lines_before`` lines of the file."""
    start = lines_before + reader.line_num + 1  # type: ignore[attr-defined]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            result.quarantine_row(source, start, f"unreadable CSV row: {error}")
            start = lines_before + reader.line_num + 1  # type: ignore[attr-defined]
            continue
        if any(_SURROGATE.search(value) for value in row):
            result.quarantine_row(source, start, "invalid UTF-8 in row", ",".join(row))
        elif row and len(row) != len(header):
            result.quarantine_row(
                source,
                start,
                f"row has {len(row)} fields, header has {len(header)}",
                ",".join(row),
            )
        elif row:
            row_from_mapping(
                dict(zip(header, row, strict=True)), source, start, CsvReader.name, fields, result
            )
            result.spill()
        start = lines_before + reader.line_num + 1  # type: ignore[attr-defined]


def record_spans(source: SourceFile, part_bytes: int) -> tuple[list[str], list[Span]] | None:
    """The header and byte ranges of about ``part_bytes`` cutting an uncompressed CSV file at
    record starts, each with the lines before it; None when the file is read whole (small, not
    text, no header or an unreadable one, one range).

    One pass of the csv module over the file's lines (split as ``io.StringIO(newline="")``
    splits them, decoded one by one as the whole text decodes): it takes no lines beyond the
    record it returns, so the bytes of the lines it took end a record, in the whole file too.
    """
    size = source.path.stat().st_size
    if size <= part_bytes:
        return None
    taken = [bom_bytes(source.path)]  # bytes of the lines taken
    sniffed = ReadResult()

    def lines() -> Iterator[str]:
        for block in line_blocks(source, sniffed):  # the mark dropped; a file not text: nothing
            for raw in bytes(block).splitlines(keepends=True):
                taken[0] += len(raw)
                yield raw.decode("utf-8", "surrogateescape")

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return None
    spans, start, before = [], 0, 0
    while True:
        try:
            next(reader)
        except StopIteration:
            break
        except csv.Error:  # the reader starts again at the next line, as in the whole file
            pass
        if taken[0] - start >= part_bytes and taken[0] < size:
            spans.append(Span(start, taken[0], before, 0))
            start, before = taken[0], reader.line_num
    if sniffed.quarantine or not spans:
        return None
    return header, [*spans, Span(start, None, before, 0)]


def read_span(source: SourceFile, fields: FieldMap, span: Span, header: Sequence[str]) -> ReadResult:
    """The records and quarantine rows of the records in ``span`` (from :func:`record_spans`,
    ``header`` the file's), numbered as in the whole file."""
    with source.open() as handle:
        handle.seek(span.start)
        data = handle.read() if span.end is None else handle.read(span.end - span.start)
    if span.start == 0:
        return _read_text(data, source, fields)
    result = ReadResult()
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline=""))
    _read_rows(reader, header, span.lines_before, source, fields, result)
    return result
