"""JSON Lines exports (``.jsonl``, ``.ndjson``, ``.json`` with one object a line).

The file is read in blocks and its lines parsed with orjson into column batches (Arrow tables):
no copy of the whole file and no dict per record is held. A line orjson cannot take as a plain
record (invalid JSON or UTF-8, a NUL, a non-string field, a number orjson reads differently from
Python's ``json``) goes through :func:`read_line`, the reference path with Python's ``json``,
which quarantines it with its line, byte offset and reason, or reads it as a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson

from audit.ingest.base import (
    FieldMap,
    Reader,
    ReadResult,
    SourceFile,
    quarantined_as_not_text,
    text_problem,
)
from audit.ingest.fields import row_from_mapping
from audit.schema import RecordColumns
from audit.urls import find_urls

#: Bytes read at a time; lines are cut at the last line end of each block.
BLOCK_BYTES = 16 << 20
#: Records per Arrow table: a batch's Python strings are freed when its table is built.
BATCH_RECORDS = 20_000
_LINE_ENDS = (b"\n", b"\r")


class Span(NamedTuple):
    """Bytes ``start:stop`` of an uncompressed file that begin a line and end one (or the file),
    and the lines and bytes before them as the whole file's reading counts them."""

    start: int
    stop: int
    lines_before: int
    offset_before: int


def _line_blocks(source: SourceFile, result: ReadResult, span: Span | None = None) -> Iterator[bytes]:
    """The file's bytes (or ``span``'s) as blocks of whole lines (as ``bytes.splitlines`` cuts them).

    A file that is not text at all is quarantined as one row (judged on its first block, as
    :func:`~audit.ingest.base.decode_lines` does) and yields nothing; a UTF-8 byte-order mark
    is dropped. Both are the file start's business: a span further in is read as it is.
    """
    with source.open() as handle:
        read = handle.read
        if span is not None:
            handle.seek(span.start)
            left = span.stop - span.start

            def read(size: int) -> bytes:
                nonlocal left
                data = handle.read(min(size, left))
                left -= len(data)
                return data

        carry = read(BLOCK_BYTES)
        if span is None or span.start == 0:
            if quarantined_as_not_text(carry, source, result):
                return
            if carry.startswith(b"\xef\xbb\xbf"):
                carry = carry[3:]
        while True:
            block = read(BLOCK_BYTES)
            if not block:
                if carry:
                    yield carry
                return
            data = carry + block
            cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if cut == len(data) - 1 and data[cut:] == b"\r":  # may be the first half of a CRLF
                cut = max(data.rfind(b"\n", 0, cut), data.rfind(b"\r", 0, cut))
            if cut < 0:  # one line longer than a block: keep reading
                carry = data
                continue
            yield data[: cut + 1]
            carry = data[cut + 1 :]


def read_line(
    raw: bytes, number: int, offset: int, source: SourceFile, fields: FieldMap, result: ReadResult
) -> None:
    """One line the reference way: decoded, NUL-checked, parsed with Python's ``json``."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        result.quarantine_row(source, number, f"invalid UTF-8 at byte {offset + error.start}", raw, offset)
        return
    nul = raw.find(b"\x00")
    if nul >= 0:
        result.quarantine_row(source, number, f"NUL byte at byte {offset + nul}", raw, offset)
        return
    line = line.rstrip("\r\n")
    if not line.strip():
        return
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        result.quarantine_row(
            source, number, f"invalid JSON: {error.msg} at column {error.colno}", line, offset
        )
        return
    except ValueError as error:  # e.g. an integer longer than Python's digit limit
        result.quarantine_row(source, number, f"invalid JSON: {error}", line, offset)
        return
    except RecursionError:
        result.quarantine_row(source, number, "invalid JSON: nested too deeply", line, offset)
        return
    if not isinstance(value, dict):
        result.quarantine_row(
            source, number, f"JSON value is a {type(value).__name__}, not an object", line, offset
        )
        return
    row_from_mapping(value, source, number, JsonlReader.name, fields, result, raw=line, offset=offset)


def _plain_field(value: Any) -> str | None:
    """A field orjson read that needs no conversion: a str, or None/absent as ``""``."""
    if value is None:
        return ""
    return value if type(value) is str else None


class JsonlReader(Reader):
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".json")

    def read(self, source: SourceFile, fields: FieldMap, span: Span | None = None) -> ReadResult:
        """The file's records, or those of the lines in ``span`` (numbered as in the whole file)."""
        result = ReadResult()
        batch = RecordColumns()
        ids, lines, titles, texts, urls, found_urls = (
            batch.columns[name] for name in ("id", "line", "title", "text", "url", "urls")
        )
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        number, offset = (span.lines_before, span.offset_before) if span is not None else (0, 0)
        for block in _line_blocks(source, result, span):
            for raw in block.splitlines(keepends=True):
                number += 1
                try:
                    value = loads(raw)
                except decode_error:
                    value = None
                text = value.get(fields.text) if type(value) is dict else None
                row = None
                if type(text) is str:
                    assert isinstance(value, dict)
                    title = _plain_field(value.get(fields.title))
                    url = _plain_field(value.get(fields.url))
                    record_id = _plain_field(value.get(fields.id))
                    if (
                        title is not None
                        and url is not None
                        and record_id is not None
                        and not any(map(text_problem, (text, title, url, record_id)))
                    ):
                        row = (record_id, title, text, url.strip())
                if row is None:  # anything unusual: the reference path decides
                    read_line(raw, number, offset, source, fields, result)
                    for parsed in result.rows:  # a record it read keeps its place in the batch
                        batch.add(parsed)
                    result.rows.clear()
                else:
                    record_id, title, text, url = row
                    ids.append(record_id or f"{source.name}:{number}")
                    lines.append(number)
                    titles.append(title)
                    texts.append(text)
                    urls.append(url)
                    found_urls.append(find_urls(text))
                    batch.columns["source"].append(source.name)
                    batch.columns["scraped_date"].append(None)
                    batch.columns["format"].append(self.name)
                offset += len(raw)
                if len(batch) >= BATCH_RECORDS:
                    result.tables.append(batch.table())
                    ids, lines, titles, texts, urls, found_urls = (
                        batch.columns[name] for name in ("id", "line", "title", "text", "url", "urls")
                    )
        if len(batch):
            result.tables.append(batch.table())
        return result
