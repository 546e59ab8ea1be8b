"""The bad-input catalogue: each case and exactly what the user sees (README, "Bad input").

Bad content inside a file is a quarantine row with the file, line, offset and error; a file
that is not text at all is one row, not one per line; a path that cannot be read at all is
exit code 2 with a message naming it. Nothing raises a traceback, nothing is silent.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import audit
from audit.cli import main
from audit.ingest import read_inputs
from audit.ingest.base import SourceFile

PAGE = b"First title\nFirst abstract, a whole sentence.\nSecond title\nSecond abstract, also complete.\n"


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def jsonl(*values: object) -> bytes:
    return "".join(json.dumps(v) + "\n" for v in values).encode()


def quarantined(batch) -> list[tuple]:
    return list(batch.quarantine[["source", "line", "error"]].itertuples(index=False, name=None))


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- encodings -------------------------------------------------------------------------------


def test_invalid_utf8_line_is_quarantined_with_line_and_offset_and_the_rest_reads(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"Title one\nAbstract \xff one.\nTitle two\nAbstract two.\n")
    batch = read_inputs([tmp_path])
    row = batch.quarantine.iloc[0]
    assert (row["source"], row["line"], row["offset"]) == ("a.txt", 2, 10)
    assert row["error"] == "invalid UTF-8 at byte 19"
    assert "\\xff" in row["raw"]
    # The bad abstract keeps its place: its title stays a record, the next pair is unshifted.
    assert batch.records[["line", "title", "text"]].values.tolist() == [
        [1, "Title one", ""],
        [3, "Title two", "Abstract two."],
    ]


def test_invalid_utf8_in_jsonl_and_csv_costs_only_that_line(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", b'{"text": "good one"}\n{"text": "bad \xc3\x28"}\n{"text": "good two"}\n')
    write(tmp_path / "b.csv", b"id,text\n1,good\n2,bad \xe9 byte\n3,also good\n")
    batch = read_inputs([tmp_path])
    assert sorted(batch.records["text"]) == ["also good", "good", "good one", "good two"]
    assert quarantined(batch) == [
        ("a.jsonl", 2, "invalid UTF-8 at byte 35"),
        ("b.csv", 3, "invalid UTF-8 in row"),
    ]


@pytest.mark.parametrize("name", ["a.txt", "a.jsonl", "a.csv"])
def test_utf8_bom_is_dropped(tmp_path: Path, name: str) -> None:
    body = {"a.txt": PAGE, "a.jsonl": jsonl({"text": "x y"}), "a.csv": b"text,title\nx y,T\n"}[name]
    batch = read_inputs([write(tmp_path / name, b"\xef\xbb\xbf" + body)])
    assert batch.quarantine.empty
    first = batch.records.iloc[0]
    assert not (first["title"] + first["text"]).startswith("\ufeff")
    assert first["title"] == {"a.txt": "First title", "a.jsonl": "", "a.csv": "T"}[name]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("name", ["a.txt", "a.jsonl", "a.csv"])
def test_utf16_file_is_one_quarantine_row_not_thousands(tmp_path: Path, name: str, encoding: str) -> None:
    text = "\n".join(f'{{"text": "record {i}"}}' for i in range(2000))
    batch = read_inputs([write(tmp_path / name, text.encode(encoding))])
    assert batch.records.empty
    assert len(batch.quarantine) == 1
    row = batch.quarantine.iloc[0]
    assert row["line"] is None or row["line"] != row["line"]  # no line: the whole file
    assert "UTF-16" in row["error"] and "re-encode the file as UTF-8" in row["error"]


PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + os.urandom(4000)


def test_binary_file_among_text_files_is_one_row_naming_what_it_is(tmp_path: Path, seeds_dir: Path) -> None:
    write(tmp_path / "good.txt", PAGE)
    write(tmp_path / "picture.txt", PNG)  # a PNG saved under a text name
    write(tmp_path / "random.jsonl", os.urandom(20000))
    write(tmp_path / "really.png", PNG)  # an unsupported suffix is skipped, not read
    batch = read_inputs([tmp_path])
    assert len(batch.records) == 2
    assert quarantined(batch) == [
        ("picture.txt", None, "not a text file: a PNG image"),
        ("random.jsonl", None, batch.quarantine.iloc[1]["error"]),
    ]
    assert batch.quarantine.iloc[1]["error"].startswith("not a text file: ")
    assert batch.skipped == [{"source": str(tmp_path / "really.png"), "reason": "unsupported file type"}]


def test_gzip_data_under_a_text_name_says_to_rename_it(tmp_path: Path) -> None:
    batch = read_inputs([write(tmp_path / "a.jsonl", gzip.compress(jsonl({"text": "x"})))])
    assert quarantined(batch) == [
        ("a.jsonl", None, "not a text file: gzip-compressed data (name it with a .gz suffix)")
    ]


# --- empty and odd files --------------------------------------------------------------------


def test_empty_and_whitespace_only_files_are_named_in_report_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "in" / "empty.jsonl", b"")
    write(tmp_path / "in" / "blank.txt", b"  \n\t\r\n\n")
    write(tmp_path / "in" / "good.txt", PAGE)
    code, out, _ = run_cli(capsys, tmp_path / "in", "--out", tmp_path / "out")
    assert code == 0
    assert "notes on inputs: blank.txt: only whitespace; empty.jsonl: empty file" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    notes = {f["source"]: f.get("note") for f in report["inputs"]}
    assert notes == {"blank.txt": "only whitespace", "empty.jsonl": "empty file", "good.txt": None}
    assert report["counts"]["input"] == 2


def test_ten_megabyte_single_line_is_one_record(tmp_path: Path) -> None:
    words = " ".join(f"w{i % 997}x{i % 13}" for i in range(1_200_000))[:10_000_000]
    write(tmp_path / "big.jsonl", json.dumps({"text": words + "."}) + "\n")
    batch = read_inputs([tmp_path])
    assert batch.quarantine.empty
    assert len(batch.records) == 1 and len(batch.records.iloc[0]["text"]) == len(words) + 1


@pytest.mark.slow
def test_ten_megabyte_single_line_through_the_whole_run(tmp_path: Path) -> None:
    words = " ".join(f"w{i % 997}x{i % 13}" for i in range(1_200_000))[:10_000_000]
    write(tmp_path / "in" / "big.txt", "A title\n" + words + ".\n")
    result = audit.run([tmp_path / "in"], out=tmp_path / "out")
    assert result.report["counts"] == {"input": 1, "records": 1, "kept": 1, "removed": 0, "quarantined": 0}


def test_nul_bytes_quarantine_their_line(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"Title one\nAbstract\x00 one.\nTitle two\nAbstract two.\n")
    write(tmp_path / "b.jsonl", jsonl({"text": "nul \u0000 escaped"}, {"text": "fine"}))
    batch = read_inputs([tmp_path])
    assert quarantined(batch) == [
        ("a.txt", 2, "NUL byte at byte 18"),
        ("b.jsonl", 1, "text field: NUL character at position 4"),
    ]
    assert batch.records["text"].tolist() == ["", "Abstract two.", "fine"]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_lone_cr_read_like_lf(tmp_path: Path, newline: bytes) -> None:
    plain = read_inputs([write(tmp_path / "lf" / "a.txt", PAGE)]).records
    for name, body in (("a.txt", PAGE), ("a.jsonl", jsonl({"text": "x"}, {"text": "y"}))):
        other = read_inputs([write(tmp_path / "other" / name, body.replace(b"\n", newline))])
        assert other.quarantine.empty
        if name == "a.txt":
            assert other.records[["line", "title", "text"]].equals(plain[["line", "title", "text"]])
        else:
            assert other.records[["line", "text"]].values.tolist() == [[1, "x"], [2, "y"]]
    csv = read_inputs([write(tmp_path / "c.csv", b"text,title\nx,T1\ny,T2\n".replace(b"\n", newline))])
    assert csv.records[["line", "text"]].values.tolist() == [[2, "x"], [3, "y"]]


# --- JSON Lines -----------------------------------------------------------------------------


def test_malformed_jsonl_line_among_good_ones(tmp_path: Path) -> None:
    data = jsonl({"text": "one"}) + b'{"text": "two",\n' + jsonl({"text": "three"})
    batch = read_inputs([write(tmp_path / "a.jsonl", data)])
    assert batch.records["text"].tolist() == ["one", "three"]
    row = batch.quarantine.iloc[0]
    assert (row["source"], row["line"], row["offset"], row["raw"]) == ("a.jsonl", 2, 16, '{"text": "two",')
    assert row["error"] == "invalid JSON: Expecting property name enclosed in double quotes at column 16"


def test_json_values_that_are_not_objects(tmp_path: Path) -> None:
    data = b'[1, 2]\n"a string"\n3\nnull\ntrue\n' + jsonl({"text": "ok"})
    batch = read_inputs([write(tmp_path / "a.jsonl", data)])
    assert [e for _, _, e in quarantined(batch)] == [
        "JSON value is a list, not an object",
        "JSON value is a str, not an object",
        "JSON value is a int, not an object",
        "JSON value is a NoneType, not an object",
        "JSON value is a bool, not an object",
    ]
    assert batch.records["text"].tolist() == ["ok"]


def test_json_nested_too_deeply_or_huge_integer(tmp_path: Path) -> None:
    data = b"[" * 200_000 + b"\n" + b'{"text": "x", "n": ' + b"1" * 5000 + b"}\n"
    batch = read_inputs([write(tmp_path / "a.jsonl", data)])
    errors = [e for _, _, e in quarantined(batch)]
    assert errors[0] in ("invalid JSON: nested too deeply", "invalid JSON: Expecting value at column 200001")
    assert errors[1].startswith("invalid JSON: Exceeds the limit (4300 digits)")


def test_missing_text_field(tmp_path: Path) -> None:
    batch = read_inputs([write(tmp_path / "a.jsonl", jsonl({"body": "x"}, {"text": "y"}))])
    assert quarantined(batch) == [("a.jsonl", 1, "missing text field 'text'")]
    assert batch.quarantine.iloc[0]["raw"] == '{"body": "x"}'


@pytest.mark.parametrize(
    ("value", "kind"), [(3, "int"), (2.5, "float"), (["a"], "list"), (None, "null"), ({"a": 1}, "dict")]
)
def test_text_field_of_the_wrong_type(tmp_path: Path, value: object, kind: str) -> None:
    batch = read_inputs([write(tmp_path / "a.jsonl", jsonl({"text": value}))])
    assert quarantined(batch) == [("a.jsonl", 1, f"text field 'text' is {kind}, not a string")]


def test_lone_surrogate_escape_is_quarantined_and_outputs_stay_writable(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.jsonl", b'{"text": "bad \\ud800 half"}\n{"text": "ok", "title": "\\udfff"}\n')
    result = audit.run([tmp_path / "in"], out=tmp_path / "out")
    assert [e for e in result.quarantine["error"]] == [
        "text field: lone surrogate '\\ud800' at position 4 (not valid Unicode)",
        "title field: lone surrogate '\\udfff' at position 0 (not valid Unicode)",
    ]
    assert (tmp_path / "out" / "quarantine.jsonl").read_text().count("\n") == 2


# --- CSV ------------------------------------------------------------------------------------


def test_csv_quoted_newlines_and_ragged_rows(tmp_path: Path) -> None:
    data = b'id,text\n1,"two\nline text"\n2,too,many\n3\n4,"last, ok"\n'
    batch = read_inputs([write(tmp_path / "a.csv", data)])
    assert batch.records[["id", "line", "text"]].values.tolist() == [
        ["1", 2, "two\nline text"],
        ["4", 6, "last, ok"],
    ]
    assert quarantined(batch) == [
        ("a.csv", 4, "row has 3 fields, header has 2"),
        ("a.csv", 5, "row has 1 fields, header has 2"),
    ]


# --- compressed and Parquet ------------------------------------------------------------------


def test_truncated_gzip_is_one_row_naming_the_problem(tmp_path: Path) -> None:
    whole = gzip.compress(jsonl(*({"text": f"record {i}"} for i in range(500))))
    write(tmp_path / "a.jsonl.gz", whole[: len(whole) // 2])
    write(tmp_path / "b.jsonl.gz", b"not gzip at all")
    batch = read_inputs([tmp_path])
    assert batch.records.empty
    assert quarantined(batch) == [
        (
            "a.jsonl.gz",
            None,
            "corrupt or truncated gzip file: "
            "Compressed file ended before the end-of-stream marker was reached",
        ),
        ("b.jsonl.gz", None, "corrupt or truncated gzip file: Not a gzipped file (b'no')"),
    ]


def test_parquet_with_a_missing_column(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"body": ["a", "b", "c"], "id": [1, 2, 3]}), buffer)
    batch = read_inputs([write(tmp_path / "a.parquet", buffer.getvalue())])
    assert quarantined(batch) == [
        ("a.parquet", None, "missing text column 'text' (columns: body, id); 3 rows not read")
    ]


def test_damaged_parquet_is_one_row(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["a"] * 100}), buffer)
    batch = read_inputs([write(tmp_path / "a.parquet", buffer.getvalue()[:-30])])
    assert len(batch.quarantine) == 1
    assert batch.quarantine.iloc[0]["error"].startswith("unreadable Parquet file: ")


# --- files and paths ------------------------------------------------------------------------


def test_unreadable_file_in_a_directory_is_quarantined_and_the_rest_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "good.txt", PAGE)
    locked = write(tmp_path / "locked.txt", PAGE)
    real_read = SourceFile.read_bytes

    def read_bytes(self: SourceFile) -> bytes:  # fault injection: works even when run as root
        if self.path == locked:
            raise PermissionError(13, "Permission denied", str(locked))
        return real_read(self)

    monkeypatch.setattr(SourceFile, "read_bytes", read_bytes)
    batch = read_inputs([tmp_path])
    assert len(batch.records) == 2
    assert quarantined(batch) == [("locked.txt", None, "unreadable file: Permission denied")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_directory_by_mode(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", PAGE)
    locked = write(tmp_path / "locked.txt", PAGE)
    closed = tmp_path / "closed"
    write(closed / "inner.txt", PAGE)
    locked.chmod(0)
    closed.chmod(0)
    try:
        batch = read_inputs([tmp_path])
    finally:
        locked.chmod(0o644)
        closed.chmod(0o755)
    assert quarantined(batch) == [("locked.txt", None, "unreadable file: Permission denied")]
    assert {"source": str(closed), "reason": "unreadable directory: Permission denied"} in batch.skipped


def test_broken_link_fifo_and_symlink_loops_in_a_directory_are_skipped_with_reasons(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", PAGE)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)  # a directory loop
    os.mkfifo(tmp_path / "pipe.jsonl")  # reading it would block the run forever
    batch = read_inputs([tmp_path])
    assert len(batch.records) == 2
    assert sorted((Path(s["source"]).name, s["reason"]) for s in batch.skipped) == [
        ("dangling.txt", "broken symbolic link (its target does not exist)"),
        ("loop.txt", "symbolic link loop"),
        ("pipe.jsonl", "not a regular file (a FIFO, socket or device)"),
    ]


def test_symlink_loop_named_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    code, out, err = run_cli(capsys, tmp_path / "loop.txt", "--out", tmp_path / "out")
    assert code == 2 and out == ""
    assert err == f"scrape-audit: error: {tmp_path / 'loop.txt'}: symbolic link loop\n"
    assert not (tmp_path / "out").exists()


def test_nonexistent_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "good.txt", PAGE)
    code, _, err = run_cli(capsys, tmp_path / "good.txt", tmp_path / "nope.txt", "--out", tmp_path / "out")
    assert code == 2
    assert err == f"scrape-audit: error: {tmp_path / 'nope.txt'}: no such file or directory\n"
    assert not (tmp_path / "out").exists()


def test_unsupported_file_named_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, write(tmp_path / "a.png", PNG), "--out", tmp_path / "out")
    assert code == 2
    assert err.startswith(f"scrape-audit: error: {tmp_path / 'a.png'}: unsupported file type '.png'; known: ")


def test_same_file_given_twice_is_read_once(tmp_path: Path, seeds_dir: Path) -> None:
    one = seeds_dir / "000_1a2e1162499fffc1.txt"
    (tmp_path / "alias.txt").symlink_to(one)
    batch = read_inputs([one, seeds_dir, one, tmp_path / "alias.txt"])
    assert len(batch.records) == 588
    assert [s["reason"] for s in batch.skipped] == [
        "same file given twice (read as 000_1a2e1162499fffc1.txt)"
    ] * 3


def test_files_of_the_same_name_in_two_directories_keep_distinct_sources(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.jsonl", jsonl({"text": "from a"}))
    write(tmp_path / "b" / "x.jsonl", jsonl({"text": "from b"}))
    batch = read_inputs([tmp_path / "b", tmp_path / "a"])
    assert batch.records[["source", "text"]].values.tolist() == [
        [f"{tmp_path.as_posix()}/a/x.jsonl", "from a"],
        [f"{tmp_path.as_posix()}/b/x.jsonl", "from b"],
    ]
    assert batch.records["id"].is_unique


def test_undecodable_file_name_is_shown_escaped_and_outputs_stay_writable(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path / "in") + b"/caf\xe9.jsonl"
    os.makedirs(tmp_path / "in")
    with open(name, "wb") as handle:
        handle.write(jsonl({"text": "x"}))
    result = audit.run([tmp_path / "in"], out=tmp_path / "out")
    assert result.records["source"].tolist() == ["caf\\udce9.jsonl"]
    assert "caf\\\\udce9.jsonl" in (tmp_path / "out" / "clean.jsonl").read_text()


def test_ids_made_unique_even_against_ids_that_look_generated(tmp_path: Path) -> None:
    data = jsonl({"id": "a@a.jsonl:2", "text": "1"}, {"id": "a", "text": "2"}, {"id": "a", "text": "3"})
    batch = read_inputs([write(tmp_path / "a.jsonl", data)])
    assert batch.records["id"].is_unique


def test_a_reader_bug_costs_one_file_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.ingest.jsonl import JsonlReader

    def broken(self, source, fields):
        raise KeyError("boom")

    write(tmp_path / "a.jsonl", jsonl({"text": "x"}))
    write(tmp_path / "b.txt", PAGE)
    monkeypatch.setattr(JsonlReader, "read", broken)
    batch = read_inputs([tmp_path])
    assert len(batch.records) == 2
    assert quarantined(batch) == [
        ("a.jsonl", None, "internal error reading file (please report): KeyError('boom')")
    ]


def test_zlib_error_inside_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(jsonl(*({"text": f"r{i}"} for i in range(50)))))
    data[20:30] = b"\xff" * 10  # corrupt the deflate stream, keep the header
    batch = read_inputs([write(tmp_path / "a.jsonl.gz", bytes(data))])
    assert len(batch.quarantine) == 1
    assert batch.quarantine.iloc[0]["error"].startswith("corrupt or truncated gzip file: ")
