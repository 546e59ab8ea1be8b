"""A block of plain JSONL records read by Arrow's JSON parser, without a Python object per record.

Most exports are plain: every line one object whose text is a string and whose title, url and id
are strings or null, with no other key. Arrow parses such a block straight into string columns
(several times quicker than orjson, a dict a line and the Arrow arrays built from the lists).

Arrow's parser is not Python's ``json``: it skips blank lines, takes two objects on one line,
accepts ``\\u0000`` and a byte-order mark inside a line, and does not check UTF-8. So a block is
taken only when nothing of that kind can be in it, and Arrow took exactly one object a line,
every one a plain record; anything else (``None``) is read line by line, the reference way, by
:func:`audit.ingest.jsonl._read_range`. Arrow refuses the rest itself: a key given twice, a
lone surrogate escape, a non-string field, a key that is none of the four, a control character in
a string.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from audit.ingest.base import FieldMap
from audit.schema import RECORD_TYPES
from audit.urls import url_lists

#: Larger blocks are read line by line (Arrow's block size is a 32-bit int).
MAX_BLOCK_BYTES = 1 << 30
_STRING = pa.large_string()
#: What follows the backslash of a NUL escape.
_NUL_ESCAPE = np.frombuffer(b"u0000", np.uint8)


def python_whitespace() -> str:
    """Every character ``str.strip()`` removes (``str.isspace``), for Arrow's trim: all are in the
    Basic Multilingual Plane (a test checks every code point)."""
    return _WHITESPACE


_WHITESPACE = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())


def _options(fields: FieldMap, size: int) -> tuple[pajson.ReadOptions, pajson.ParseOptions]:
    names = [fields.id, fields.title, fields.text, fields.url]
    schema = pa.schema([(name, _STRING) for name in names])
    return (
        pajson.ReadOptions(use_threads=False, block_size=size),  # one block: one chunk
        pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    )


def _plain_lines(block: bytes | memoryview) -> int | None:
    """The lines of ``block``, or None when something in it would make Arrow read it otherwise than
    line by line ``json`` does (checked on the bytes; Arrow's parse and a UTF-8 check do the rest).

    Every line must start with ``{`` (no blank line, which Arrow skips; no leading space or
    byte-order mark, which Arrow takes; no line continuing an object), the only control bytes
    be ``\\n`` and tabs (a CR ends a line for ``bytes.splitlines``), and no ``\\u0000`` escape
    appear (Arrow takes a NUL).
    """
    if not block or len(block) >= MAX_BLOCK_BYTES:
        return None
    codes = np.frombuffer(block, np.uint8)
    controls = np.flatnonzero(codes < 0x20)
    kinds = codes[controls]
    if not np.all((kinds == 0x0A) | (kinds == 0x09)):
        return None
    ends = controls[kinds == 0x0A]
    starts = ends[ends + 1 < len(codes)] + 1
    if codes[0] != 0x7B or not np.all(codes[starts] == 0x7B):
        return None
    escapes = np.flatnonzero(codes == 0x5C)
    escapes = escapes[escapes + len(_NUL_ESCAPE) < len(codes)]
    if len(escapes):
        window = codes[escapes[:, None] + np.arange(1, len(_NUL_ESCAPE) + 1)]
        if np.any(np.all(window == _NUL_ESCAPE, axis=1)):
            return None
    return len(ends) + (codes[-1] != 0x0A)


def plain_block(
    block: bytes | memoryview, fields: FieldMap, name: str, fmt: str, lines_before: int
) -> pa.Table | None:
    """The records of ``block`` (whole lines, after ``lines_before`` lines of the file ``name``,
    read as format ``fmt``) as a table of :data:`~audit.schema.RECORD_TYPES`, or None when some
    line is not a plain record (then the block is read line by line)."""
    lines = _plain_lines(block)
    if lines is None or len({fields.id, fields.title, fields.text, fields.url}) < 4:
        return None
    read_options, parse_options = _options(fields, len(block))
    try:
        table = pajson.read_json(pa.BufferReader(block), read_options, parse_options)
        if table.num_rows != lines:  # a line Arrow read as no object or as two
            return None
        keys = {"id": fields.id, "title": fields.title, "text": fields.text, "url": fields.url}
        columns = {key: table.column(field).combine_chunks() for key, field in keys.items()}
        for column in columns.values():
            column.validate(full=True)  # Arrow's parser leaves invalid UTF-8 as it is
    except pa.ArrowInvalid:
        return None
    texts = columns["text"]
    if texts.null_count:  # no text field, or a null one: quarantined by the reference path
        return None
    numbers = np.arange(lines_before + 1, lines_before + lines + 1, dtype=np.int64)
    ids = columns["id"].fill_null("")
    unnamed = pc.equal(ids, "").to_numpy(zero_copy_only=False)
    if unnamed.any():
        names = pa.array([f"{name}:{n}" for n in numbers[unnamed].tolist()], _STRING)
        ids = pc.replace_with_mask(ids, pa.array(unnamed), names)
    url = pc.utf8_trim(columns["url"].fill_null(""), python_whitespace())
    values = {
        "id": ids,
        "source": pa.repeat(pa.scalar(name, _STRING), lines),
        "line": pa.array(numbers),
        "title": columns["title"].fill_null(""),
        "text": texts,
        "url": url,
        "urls": url_lists(texts),
        "scraped_date": pa.nulls(lines, _STRING),
        "format": pa.repeat(pa.scalar(fmt, _STRING), lines),
    }
    return pa.Table.from_arrays([values[f.name] for f in RECORD_TYPES], schema=RECORD_TYPES)
