"""The block-streaming, orjson JSONL reader reads exactly what the line-by-line ``json`` reader read."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.ingest import jsonl, read_inputs
from audit.ingest.base import FieldMap, ReadResult, SourceFile, decode_lines
from audit.ingest.fields import row_from_mapping
from audit.ingest.jsonl import JsonlReader

LINES = [
    b'{"id":"a","title":"T","text":"see https://x.org/a. ok","url":" https://x.org "}',
    b'{"id":"a","title":"T2","text":"same id again"}',
    b'{"text":"no id"}',
    b"",
    b"   ",
    b"\xc2\x85",
    b'{"text":"bad \xff byte"}',
    b'{"text":"raw \x00 nul"}',
    b'{"text":"escaped \\u0000 nul"}',
    b'{"text":"lone \\ud800"}',
    b'{"text":"pair \\ud83d\\ude00"}',
    b'{"text":"x","title":123456789012345678901234}',
    b'{"text":"x","title":12.5,"url":null,"id":7}',
    b'{"text":"x","title":[1,2],"url":{"a":1}}',
    b'{"text":NaN}',
    b'{"text":"x","n":1e400}',
    b"[1,2]",
    b'"a string"',
    b'{"title":"no text"}',
    b'{"text":null}',
    b'{"text":5}',
    b'{"text":"a","text":"b"}',
    b'{"text":"trailing"} x',
    b'{"text":"\xe2\x80\xa8 separator"}',
    b'\t{"text":"tab"}\t',
    b"[" * 3000 + b"]" * 3000,
    b'{"text":"caf\xc3\xa9 \\u00e9"}',
    b'{"text":"","title":"title only"}',
    b"\x0c{}",
]


def reference(source: SourceFile, fields: FieldMap) -> ReadResult:
    """The reader as it was: the whole file decoded line by line, each parsed with ``json``."""
    result = ReadResult()
    for number, offset, line in decode_lines(source.read_bytes(), source, result):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            message = f"invalid JSON: {error.msg} at column {error.colno}"
            result.quarantine_row(source, number, message, line, offset)
            continue
        except ValueError as error:
            result.quarantine_row(source, number, f"invalid JSON: {error}", line, offset)
            continue
        except RecursionError:
            result.quarantine_row(source, number, "invalid JSON: nested too deeply", line, offset)
            continue
        if not isinstance(value, dict):
            message = f"JSON value is a {type(value).__name__}, not an object"
            result.quarantine_row(source, number, message, line, offset)
            continue
        row_from_mapping(value, source, number, "jsonl", FieldMap(), result, raw=line, offset=offset)
    return result


def streamed(source: SourceFile) -> tuple[list[dict], list[dict]]:
    result = JsonlReader().read(source, FieldMap())
    rows = [row for table in result.record_tables() for row in table.to_pylist()]
    return rows, result.quarantine


def as_reference(source: SourceFile) -> tuple[list[dict], list[dict]]:
    result = reference(source, FieldMap())
    return result.rows, result.quarantine


@settings(max_examples=150, deadline=None)
def hostile_file(
    tmp_path_factory: pytest.TempPathFactory, picks: list[int], ends: list[bytes], bom: bool
) -> SourceFile:
    """A JSONL file of the ``LINES`` picked, ended by ``ends`` in turn, maybe after a byte-order mark."""
    data = b"\xef\xbb\xbf" if bom else b""
    data += b"".join(LINES[p] + ends[n % len(ends)] for n, p in enumerate(picks))
    path = tmp_path_factory.mktemp("jsonl") / "x.jsonl"
    path.write_bytes(data)
    return SourceFile(path, "x.jsonl")


@given(
    st.lists(st.sampled_from(range(len(LINES))), max_size=30),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=30),
    st.booleans(),
    st.sampled_from([5, 64, 1 << 20]),
)
def test_same_records_and_quarantine_as_the_line_reader(
    tmp_path_factory: pytest.TempPathFactory, picks: list[int], ends: list[bytes], bom: bool, block: int
) -> None:
    source = hostile_file(tmp_path_factory, picks, ends, bom)
    original = jsonl.BLOCK_BYTES
    jsonl.BLOCK_BYTES = block  # small blocks cut lines and CRLFs at every place
    try:
        assert streamed(source) == as_reference(source)
    finally:
        jsonl.BLOCK_BYTES = original


def test_gzip_binary_and_utf16_files(tmp_path: Path) -> None:
    data = b"\n".join(LINES) + b"\n"
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(data)[:-20])
    (tmp_path / "bin.jsonl").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "u16.jsonl").write_bytes('{"text":"a"}\n'.encode("utf-16"))
    for name in ("a.jsonl.gz", "bin.jsonl", "u16.jsonl"):
        source = SourceFile(tmp_path / name, name)
        assert streamed(source) == as_reference(source)
    batch = read_inputs([tmp_path])
    cut = batch.quarantine[batch.quarantine["source"] == "cut.jsonl.gz"]
    assert cut["error"].tolist() == [
        "corrupt or truncated gzip file: Compressed file ended before the end-of-stream marker was reached"
    ]
    assert len(batch.records) == len(reference(SourceFile(tmp_path / "a.jsonl.gz", "a"), FieldMap()).rows)


def test_records_span_batches_in_order_with_unique_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "BATCH_RECORDS", 7)
    lines = [json.dumps({"id": f"r{n % 20}", "text": f"text {n}"}) for n in range(50)]
    lines.insert(10, "not json")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    batch = read_inputs([tmp_path / "a.jsonl"])
    assert batch.records["text"].tolist() == [f"text {n}" for n in range(50)]
    assert batch.records["id"].is_unique
    assert batch.records["id"].tolist()[:3] == ["r0", "r1", "r2"]
    assert batch.records["id"].tolist()[20] == "r0@a.jsonl:22"  # line 22: the "not json" line is 11
    assert batch.quarantine["line"].tolist() == [11]
    assert str(batch.records["text"].dtype) == "str"
    assert batch.files[0]["records"] == 50 and batch.files[0]["quarantined"] == 1


def test_large_csv_and_parquet_files_keep_order_across_spilled_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = 45_001  # three batches of row dicts turned into Arrow tables, the last one partial
    texts = [f"text {n}" for n in range(count)]
    (tmp_path / "a.csv").write_text("id,text\n" + "".join(f"c{n},{t}\n" for n, t in enumerate(texts)))
    pq.write_table(pa.table({"text": texts}), tmp_path / "b.parquet")
    batch = read_inputs([tmp_path])
    assert batch.records["text"].tolist() == texts + texts
    assert batch.records["line"].tolist() == list(range(2, count + 2)) + list(range(1, count + 1))
    assert batch.records["id"].tolist()[count : count + 2] == ["b.parquet:1", "b.parquet:2"]
    assert [f["records"] for f in batch.files] == [count, count]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(LINES))), max_size=40),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=30),
    st.booleans(),
    st.sampled_from([2, 3, 5]),
    st.sampled_from([5, 64, 1 << 20]),
)
def test_ranges_read_by_several_processes_give_the_same_records_and_quarantine(
    tmp_path_factory: pytest.TempPathFactory,
    picks: list[int],
    ends: list[bytes],
    bom: bool,
    workers: int,
    block: int,
) -> None:
    source = hostile_file(tmp_path_factory, picks, ends, bom)
    data = source.path.read_bytes()
    saved = jsonl._workers, jsonl.BLOCK_BYTES
    jsonl._workers, jsonl.BLOCK_BYTES = (lambda size: workers), block  # cut anywhere, counted in blocks
    try:
        ranges = jsonl._ranges(source)
        assert ranges[0].start == 0 and all(a.end == b.start for a, b in itertools.pairwise(ranges))
        for lines in ranges:  # each range starts after as many lines as splitlines finds before it
            before = data[: lines.start].removeprefix(b"\xef\xbb\xbf") if lines.start else b""
            assert lines.lines_before == len(before.splitlines())
            assert lines.offset == len(before)
        assert streamed(source) == as_reference(source)
    finally:
        jsonl._workers, jsonl.BLOCK_BYTES = saved


def test_a_large_file_is_read_by_forked_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps({"id": f"r{n % 900}", "text": f"text {n} https://x.org/{n}."}) for n in range(3000)]
    lines[1500:1500] = ["not json", '{"text": "nul \\u0000"}', ""]
    (tmp_path / "a.jsonl").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    monkeypatch.setattr(jsonl, "BATCH_RECORDS", 256)
    monkeypatch.setattr(jsonl, "_workers", lambda size: 1)
    one = read_inputs([tmp_path])
    monkeypatch.setattr(jsonl, "_workers", lambda size: 2)
    assert len(jsonl._ranges(SourceFile(tmp_path / "a.jsonl", "a.jsonl"))) == 2
    two = read_inputs([tmp_path])
    assert two.records.equals(one.records) and two.quarantine.equals(one.quarantine)
    assert two.files == one.files
    assert one.quarantine["line"].tolist() == [1501, 1502]
    assert one.records["urls"].tolist()[:2] == [["https://x.org/0"], ["https://x.org/1"]]
