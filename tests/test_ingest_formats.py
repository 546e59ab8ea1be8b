"""Each input format, on small hand-made files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from audit.ingest import FieldMap, InputError, read_inputs
from audit.schema import RECORD_COLUMNS

ABSTRACT = "We study things carefully and report results. Code at https://github.com/org/repo."


def test_pagedump_blank_line_layout(tmp_path: Path) -> None:
    dump = tmp_path / "a.txt"
    dump.write_text(
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nbyAK and the research community\n\n"
        f"Mar 13\n\nFirst Title\n\n{ABSTRACT}\n\nSecond Title\n\nSecond abstract text here.\n"
    )
    records = read_inputs([dump]).records
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert records["title"].tolist() == ["First Title", "Second Title"]
    assert records["id"].tolist() == ["a.txt:11", "a.txt:15"]
    assert records["line"].tolist() == [11, 15]
    assert records["scraped_date"].tolist() == ["Mar 13", "Mar 13"]
    assert records["urls"].tolist() == [["https://github.com/org/repo"], []]
    assert (records["format"] == "pagedump").all()


def test_pagedump_consecutive_layout_with_glued_subscribe(tmp_path: Path) -> None:
    dump = tmp_path / "b.txt"
    dump.write_text(
        "Get trending papers in your email inbox once a day!\nGet trending papers in your email inbox!\n"
        f"SubscribeEfficient Things\n{ABSTRACT}\nOther Paper\nIts abstract.\n"
    )
    batch = read_inputs([dump])
    assert batch.records["title"].tolist() == ["Efficient Things", "Other Paper"]
    assert batch.records["line"].tolist() == [3, 5]
    assert batch.records["scraped_date"].tolist() == [None, None]
    assert batch.files[0]["furniture_lines"] == 3


def test_pagedump_title_without_abstract_is_kept(tmp_path: Path) -> None:
    dump = tmp_path / "c.txt"
    dump.write_text(f"Title One\n{ABSTRACT}\nLonely Title\n")
    records = read_inputs([dump]).records
    assert records["title"].tolist() == ["Title One", "Lonely Title"]
    assert records["text"].tolist() == [ABSTRACT, ""]


def test_jsonl_with_field_names_and_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    lines = [
        json.dumps({"doc_id": "d1", "body": ABSTRACT, "headline": "T1", "link": "https://a.org/x"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"doc_id": "d3", "headline": "no body"}),
        json.dumps({"doc_id": "d4", "body": None}),
        json.dumps({"doc_id": 5, "body": "Plain text without title."}),
    ]
    path.write_text("\n".join(lines) + "\n")
    fields = FieldMap(text="body", title="headline", url="link", id="doc_id")
    batch = read_inputs([path], fields)
    assert batch.records["id"].tolist() == ["d1", "5"]
    assert batch.records["title"].tolist() == ["T1", ""]
    assert batch.records["url"].tolist() == ["https://a.org/x", ""]
    quarantine = batch.quarantine
    assert quarantine["line"].tolist() == [2, 3, 4, 5]
    assert quarantine["source"].tolist() == ["x.jsonl"] * 4
    errors = quarantine["error"].tolist()
    assert errors[0].startswith("invalid JSON")
    assert "not an object" in errors[1]
    assert "missing text field 'body'" in errors[2]
    assert "is null" in errors[3]


def test_jsonl_gzip_and_default_ids(tmp_path: Path) -> None:
    path = tmp_path / "y.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps({"text": ABSTRACT}) + "\n").encode()))
    records = read_inputs([path]).records
    assert records["id"].tolist() == ["y.jsonl.gz:1"]
    assert records["format"].tolist() == ["jsonl"]


def test_csv_quoted_newlines_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "z.csv"
    path.write_text('id,title,text\n1,"A title","line one\nline two"\n2,only two\n3,T3,"Third text."\n')
    batch = read_inputs([path])
    assert batch.records["id"].tolist() == ["1", "3"]
    assert batch.records["text"].tolist()[0] == "line one\nline two"
    assert batch.records["line"].tolist() == [2, 5]
    assert batch.quarantine["line"].tolist() == [4]
    assert "2 fields" in batch.quarantine["error"].iloc[0]


def test_parquet_and_missing_column(tmp_path: Path) -> None:
    good = tmp_path / "p.parquet"
    pd.DataFrame({"text": [ABSTRACT, "Second."], "url": ["https://a.org", None]}).to_parquet(good)
    bad = tmp_path / "q.parquet"
    pd.DataFrame({"body": ["x"]}).to_parquet(bad)
    batch = read_inputs([good, bad])
    assert batch.records["id"].tolist() == ["p.parquet:1", "p.parquet:2"]
    assert batch.records["url"].tolist() == ["https://a.org", ""]
    assert len(batch.quarantine) == 1
    assert batch.quarantine["source"].iloc[0] == "q.parquet"
    assert "missing text column 'text'" in batch.quarantine["error"].iloc[0]


def test_directory_means_every_supported_file_below_it(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(f"T\n{ABSTRACT}\n")
    (tmp_path / "sub" / "b.jsonl").write_text(json.dumps({"text": ABSTRACT}) + "\n")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    batch = read_inputs([tmp_path])
    assert sorted(batch.records["source"]) == ["a.txt", "sub/b.jsonl"]
    assert batch.skipped == [{"source": str(tmp_path / "notes.pdf"), "reason": "unsupported file type"}]


def test_repeated_ids_are_made_unique(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps({"id": "same", "text": ABSTRACT}) + "\n")
    ids = read_inputs([tmp_path]).records["id"].tolist()
    assert ids == ["same", "same@b.jsonl:1"]


def test_missing_path_and_unknown_type_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_inputs([tmp_path / "nope.txt"])
    odd = tmp_path / "data.xml"
    odd.write_text("<x/>")
    with pytest.raises(InputError, match="unsupported file type"):
        read_inputs([odd])


def test_invalid_utf8_line_is_quarantined_with_its_line(tmp_path: Path) -> None:
    dump = tmp_path / "bad.txt"
    dump.write_bytes(b"Good Title\nGood abstract.\nBad \xff\xfe title\nIts abstract.\n")
    batch = read_inputs([dump])
    assert batch.records["title"].tolist()[0] == "Good Title"
    assert batch.quarantine["line"].tolist() == [3]
    assert "invalid UTF-8" in batch.quarantine["error"].iloc[0]
