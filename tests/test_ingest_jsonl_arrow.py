"""Blocks of plain JSONL records read by Arrow's parser give exactly what the line-by-line reader gives."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.ingest import jsonl
from audit.ingest.base import FieldMap, ReadResult, SourceFile
from audit.ingest.jsonl import JsonlReader
from audit.ingest.jsonl_arrow import plain_block, python_whitespace

#: Plain records Arrow takes: fields null, empty or absent, escapes, non-ASCII, URLs, whitespace.
PLAIN = [
    b'{"id":"a","title":"T","text":"see https://x.org/a. ok","url":" https://x.org\\u00a0"}',
    b'{"id":"a","title":"same id","text":"again HTTP://Y.org/(b))"}',
    b'{"text":"no id, no title"}',
    b'{"id":null,"title":null,"text":"nulls","url":null}',
    b'{"id":"","title":"","text":"","url":""}',
    b'{"text":"escapes \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 \\u2028"}',
    b'{"text":"caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80 http\xc5\xbf://x.org \xc2\xa0"}',
    b'{"url":"\\u3000 https://z.org \\u001f","text":"url first"}\t',
    b'{"text":"trailing spaces"}   ',
    b'{"te\\u0078t":"an escaped key"}',
]
#: Lines that are no plain record (Arrow would read some differently), or look as if they might
#: be: their block is read the reference way.
HOSTILE = [
    b'{"text":"ends with \\\\u0000 written out"}',
    b"",
    b"   ",
    b' {"text":"leading space"}',
    b'\xef\xbb\xbf{"text":"a byte-order mark"}',
    b'{"text":"two"} {"text":"objects"}',
    b'{"text":',
    b'"continued"}',
    b'{"text":"NUL \\u0000 escape"}',
    b'{"text":"bad \xff byte"}',
    b'{"text":"surrogate \xed\xa0\x80 bytes"}',
    b'{"text":"lone \\ud800"}',
    b'{"text":"a","text":"b"}',
    b'{"text":"x","extra":1}',
    b'{"text":"x","title":5}',
    b'{"text":null}',
    b'{"title":"no text"}',
    b"[1]",
    b'{"text":"raw \t tab"}',
    b'{"text":"form\x0cfeed"}',
]


def reference_read(source: SourceFile) -> tuple[list[dict], list[dict]]:
    """Every block read line by line (Arrow's parser never asked)."""
    saved = jsonl.plain_block
    jsonl.plain_block = lambda *args: None
    try:
        return read(source)
    finally:
        jsonl.plain_block = saved


def read(source: SourceFile, fields: FieldMap | None = None) -> tuple[list[dict], list[dict]]:
    result = JsonlReader().read(source, fields or FieldMap())
    return [row for table in result.record_tables() for row in table.to_pylist()], result.quarantine


def write(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], end: bytes = b"\n") -> SourceFile:
    path = tmp_path_factory.mktemp("plain") / "p.jsonl"
    path.write_bytes(end.join(lines))
    return SourceFile(path, "p.jsonl")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(PLAIN), st.sampled_from(HOSTILE)), max_size=40),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.sampled_from([64, 256, 1 << 20]),
)
def test_mostly_plain_files_read_as_line_by_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], end: bytes, final: bool, block: int
) -> None:
    """Blocks of every size, some plain and some not, with and without a final line end."""
    source = write(tmp_path_factory, lines + ([b""] if final else []), end)
    saved = jsonl.BLOCK_BYTES
    jsonl.BLOCK_BYTES = block
    try:
        assert read(source) == reference_read(source)
    finally:
        jsonl.BLOCK_BYTES = saved


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(PLAIN), min_size=1, max_size=30), st.booleans())
def test_a_plain_block_is_read_by_arrow(lines: list[bytes], final: bool) -> None:
    block = b"\n".join(lines) + (b"\n" if final else b"")
    table = plain_block(block, FieldMap(), "p.jsonl", "jsonl", 7)
    assert table is not None
    result = ReadResult()
    for number, raw in enumerate(block.splitlines(keepends=True), start=8):
        jsonl.read_line(raw, number, 0, SourceFile(Path("p.jsonl"), "p.jsonl"), FieldMap(), result)
    assert table.to_pylist() == result.rows


@pytest.mark.parametrize("line", HOSTILE)
def test_a_block_with_a_line_that_is_no_plain_record_is_left_to_the_line_reader(line: bytes) -> None:
    for block in (line + b"\n", PLAIN[0] + b"\n" + line + b"\n" + PLAIN[1] + b"\n"):
        assert plain_block(block, FieldMap(), "p.jsonl", "jsonl", 0) is None, block
    assert plain_block(PLAIN[0] + b"\r\n", FieldMap(), "p.jsonl", "jsonl", 0) is None


def test_fields_named_otherwise(tmp_path_factory: pytest.TempPathFactory) -> None:
    lines = [
        json.dumps({"body": f"text {n}", "headline": "h", "link": " u ", "key": f"k{n}"}).encode()
        for n in range(5)
    ]
    lines.append(json.dumps({"body": "x", "text": "not a field here"}).encode())
    source = write(tmp_path_factory, lines)
    fields = FieldMap(text="body", title="headline", url="link", id="key")
    assert plain_block(b"\n".join(lines[:5]), fields, "p.jsonl", "jsonl", 0) is not None
    rows, quarantine = read(source, fields)
    assert [row["id"] for row in rows] == ["k0", "k1", "k2", "k3", "k4", "p.jsonl:6"]
    assert rows[0]["url"] == "u" and quarantine == []
    same = FieldMap(text="body", title="body")  # one key read twice: the line reader decides
    assert plain_block(b"\n".join(lines[:5]), same, "p.jsonl", "jsonl", 0) is None


def test_python_whitespace_is_every_character_strip_removes() -> None:
    assert python_whitespace() == "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(PLAIN), st.sampled_from(HOSTILE)), max_size=40),
    st.sampled_from([2, 3]),
    st.sampled_from([64, 1 << 20]),
)
def test_ranges_read_by_several_processes_with_arrow_blocks(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], workers: int, block: int
) -> None:
    """Forked readers of byte ranges, each taking plain blocks by Arrow, give what one line reader gives."""
    source = write(tmp_path_factory, [*lines, b""])
    expected = reference_read(source)
    saved = jsonl._workers, jsonl.BLOCK_BYTES
    jsonl._workers, jsonl.BLOCK_BYTES = (lambda size: workers), block
    try:
        assert read(source) == expected
    finally:
        jsonl._workers, jsonl.BLOCK_BYTES = saved
