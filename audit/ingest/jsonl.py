"""JSON Lines exports (``.jsonl``, ``.ndjson``, ``.json`` with one object a line).

The file is read in blocks and its lines parsed with orjson into column batches (Arrow tables):
no copy of the whole file and no dict per record is held. A line orjson cannot take as a plain
record (invalid JSON or UTF-8, a NUL, a non-string field, a number orjson reads differently from
Python's ``json``) goes through :func:`read_line`, the reference path with Python's ``json``,
which quarantines it with its line, byte offset and reason, or reads it as a record.
"""

from __future__ import annotations

import json
import mmap
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa

from audit.ingest.base import (
    BOM,
    SNIFF_BYTES,
    FieldMap,
    Reader,
    ReadResult,
    SourceFile,
    not_text_reason,
    quarantined_as_not_text,
    text_problem,
)
from audit.ingest.fields import row_from_mapping
from audit.ingest.jsonl_arrow import plain_block
from audit.parallel import cores, forked_map, idle_cores
from audit.schema import RECORD_TYPES, RecordColumns
from audit.urls import find_urls

#: Bytes read at a time; lines are cut at the last line end of each block.
BLOCK_BYTES = 16 << 20
#: Records per Arrow table: a batch's Python strings are freed when its table is built.
BATCH_RECORDS = 20_000
#: Files from this size up are read by a process per core (when one is idle), a range of lines each.
PARALLEL_MIN_BYTES = 32 << 20
#: The columns a line's record fills; the others are the same for every record of a file.
_READ_COLUMNS = ("id", "line", "title", "text", "url", "urls")


def line_blocks(
    source: SourceFile, result: ReadResult, start: int = 0, end: int | None = None
) -> Iterator[bytes | memoryview]:
    """The file's bytes (from ``start`` to ``end``, both at line starts) as blocks of whole lines,
    as ``bytes.splitlines`` cuts them (bytes, or a view of bytes).

    Read from its start, a file that is not text at all is quarantined as one row (judged on its
    first block, as :func:`~audit.ingest.base.decode_lines` does) and yields nothing; a UTF-8
    byte-order mark is dropped.
    """
    with source.open() as handle:
        left = None if end is None else end - start

        def read() -> bytes:
            nonlocal left
            if left is None:
                return handle.read(BLOCK_BYTES)
            data = handle.read(min(BLOCK_BYTES, left))
            left -= len(data)
            return data

        if start:
            handle.seek(start)
        carry = read()
        if not start:
            if quarantined_as_not_text(carry, source, result):
                return
            if carry.startswith(BOM):
                carry = carry[3:]
        while True:
            block = read()
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
            yield memoryview(data)[: cut + 1]  # a view: the block's bytes are not copied again
            carry = data[cut + 1 :]


@dataclass(frozen=True)
class Span:
    """Lines of a file read apart (by a process, or as a Dask partition): bytes ``start`` to
    ``end`` (None: the end of the file), both at line starts; the number of lines before it, and
    its byte offset as quarantine rows give it (counted from after a byte-order mark)."""

    start: int
    end: int | None
    lines_before: int
    offset: int


def _workers(size: int) -> int:
    """Processes to read a file of ``size`` bytes on: every core for a large file when one is idle."""
    return cores() if size >= PARALLEL_MIN_BYTES and idle_cores() >= 1 else 1


def line_ends_between(handle: BinaryIO, start: int, end: int) -> int:
    """The line ends (``\\n``, ``\\r``, ``\\r\\n``) between bytes ``start`` and ``end``."""
    handle.seek(start)
    count, left, previous = 0, end - start, b""
    while left > 0:
        data = handle.read(min(BLOCK_BYTES, left))
        if not data:
            break
        left -= len(data)
        codes = np.frombuffer(data, np.uint8)
        count += int(np.count_nonzero(codes == 0x0A))  # numpy: several times bytes.count's speed
        returns = int(np.count_nonzero(codes == 0x0D))
        if returns:
            count += returns - data.count(b"\r\n") - (previous == b"\r" and data.startswith(b"\n"))
        elif previous == b"\r" and data.startswith(b"\n"):  # a CRLF across two reads
            count -= 1
        previous = data[-1:]
    return count


def _ranges(source: SourceFile) -> list[Span]:
    """The file cut at line ends into a range per process (one range: read it in this process)."""
    whole = [Span(0, None, 0, 0)]
    if source.compressed:
        return whole
    try:
        size = source.path.stat().st_size
    except OSError:
        return whole
    workers = _workers(size)
    if workers <= 1:
        return whole
    with source.open() as handle:
        head = handle.read(SNIFF_BYTES)
        if not_text_reason(head):
            return whole  # quarantined whole, as it is read
        skipped = len(BOM) if head.startswith(BOM) else 0
        cuts = []
        for n in range(1, workers):
            handle.seek(skipped + (size - skipped) * n // workers)
            position = handle.tell()
            while chunk := handle.read(1 << 20):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    cut = position + newline + 1
                    if cut < size and (not cuts or cut > cuts[-1]):
                        cuts.append(cut)
                    break
                position += len(chunk)
        ranges, start, lines = [], 0, 0
        for cut in cuts:
            ranges.append(Span(start, cut, lines, max(start - skipped, 0)))
            lines += line_ends_between(handle, max(start, skipped), cut)
            start = cut
    return [*ranges, Span(start, None, lines, max(start - skipped, 0))] if ranges else whole


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


class JsonlReader(Reader):
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".json")

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        ranges = _ranges(source)
        if len(ranges) == 1:
            return _read_range((source, fields), ranges[0])
        # Forked processes each read a range of lines into Arrow tables: the same records and
        # quarantine rows, in the same order, as one process reading them all. The tables come
        # back through an in-memory file each (inherited by the fork), mapped here without a copy.
        files = [_shared_file() for _ in ranges]
        try:
            shared = (source, fields, [f.fileno() for f in files])
            parts = forked_map(_read_range_into, shared, list(enumerate(ranges)), len(ranges))
            result = ReadResult()
            for handle, (quarantine, size) in zip(files, parts, strict=True):
                result.tables += _mapped_tables(handle, size)
                result.quarantine += quarantine
            return result
        finally:
            for handle in files:
                handle.close()


def _shared_file() -> BinaryIO:
    """An anonymous file in memory (Linux), else a temporary file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("scrape-audit-jsonl"), "w+b")
    return tempfile.TemporaryFile()


def _read_range_into(
    shared: tuple[SourceFile, FieldMap, list[int]], item: tuple[int, Span]
) -> tuple[list[dict[str, Any]], int]:
    """Read a range of lines, its tables written to the shared file of its number as an Arrow
    stream; the quarantine rows and the stream's size are returned."""
    source, fields, descriptors = shared
    number, lines = item
    result = _read_range((source, fields), lines)
    with os.fdopen(os.dup(descriptors[number]), "wb") as handle:
        with pa.ipc.new_stream(handle, RECORD_TYPES) as stream:
            for table in result.tables:
                stream.write_table(table)
        size = handle.tell()
    return result.quarantine, size


def _mapped_tables(handle: BinaryIO, size: int) -> list[pa.Table]:
    """The tables of an Arrow stream in ``handle``, over a memory map of it (no copy)."""
    if not size:
        return []
    mapped = mmap.mmap(handle.fileno(), size, prot=mmap.PROT_READ)
    reader = pa.ipc.open_stream(pa.py_buffer(mapped))
    return [pa.Table.from_batches([batch], RECORD_TYPES) for batch in reader]


def read_span(source: SourceFile, fields: FieldMap, span: Span) -> ReadResult:
    """The records and quarantine rows of the lines in ``span``, numbered as in the whole file."""
    return _read_range((source, fields), span)


def _read_range(shared: tuple[SourceFile, FieldMap], lines: Span) -> ReadResult:
    """The records and quarantine rows of a range of lines of a file."""
    source, fields = shared
    result = ReadResult()
    batch = RecordColumns()
    ids, lines_at, titles, texts, urls, found_urls = (batch.columns[c] for c in _READ_COLUMNS)
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    text_key, title_key, url_key, id_key = fields.text, fields.title, fields.url, fields.id
    name = source.name
    number, offset = lines.lines_before, lines.offset
    for block in line_blocks(source, result, lines.start, lines.end):
        table = plain_block(block, fields, name, JsonlReader.name, number)
        if table is not None:  # Arrow read the block: the rows gathered before it go first
            if len(ids):
                result.tables.append(_table(batch, name))
                ids, lines_at, titles, texts, urls, found_urls = (batch.columns[c] for c in _READ_COLUMNS)
            result.tables.append(table)
            number += table.num_rows  # a record a line
            offset += len(block)
            continue
        for raw in bytes(block).splitlines(keepends=True):
            number += 1
            try:
                value = loads(raw)
            except decode_error:
                value = None
            # A plain record: text a string; title, url and id strings, null or absent. orjson
            # took the line, so its strings are valid Unicode (no lone surrogate) and hold a
            # NUL only from a \u0000 escape: only then are the fields looked at one by one.
            plain = False
            if type(value) is dict and type(text := value.get(text_key)) is str:
                title, url, record_id = value.get(title_key), value.get(url_key), value.get(id_key)
                title = "" if title is None else title
                url = "" if url is None else url
                record_id = "" if record_id is None else record_id
                plain = (
                    type(title) is str
                    and type(url) is str
                    and type(record_id) is str
                    and (b"\\u0000" not in raw or not any(map(text_problem, (text, title, url, record_id))))
                )
            if plain:
                ids.append(record_id or f"{name}:{number}")
                lines_at.append(number)
                titles.append(title)
                texts.append(text)
                urls.append(url.strip())
                found_urls.append(find_urls(text))
            else:  # anything unusual: the reference path decides
                read_line(raw, number, offset, source, fields, result)
                for parsed in result.rows:  # a record it read keeps its place in the batch
                    batch.add(parsed)
                result.rows.clear()
            offset += len(raw)
            if len(ids) >= BATCH_RECORDS:
                result.tables.append(_table(batch, name))
                ids, lines_at, titles, texts, urls, found_urls = (batch.columns[c] for c in _READ_COLUMNS)
    if len(ids):
        result.tables.append(_table(batch, name))
    return result


def _table(batch: RecordColumns, name: str) -> pa.Table:
    """The batch's rows as a table; the columns every record of the file shares (its source, no
    date, the format) are filled in here rather than a value a line."""
    columns = batch.columns
    missing = len(columns["id"]) - len(columns["source"])
    columns["source"].extend([name] * missing)
    columns["scraped_date"].extend([None] * missing)
    columns["format"].extend([JsonlReader.name] * missing)
    return batch.table()
