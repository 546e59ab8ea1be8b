"""Great Expectations suites over partitions: the parts' results combine into the whole table's.

The combination is checked against GX's own validation of the whole table, first on frames cut
into parts here (no Dask), then on runs over partitions of a generated corpus whose suites fail
in many ways (ids repeated across partitions, copies, short texts, quarantined lines)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import audit
import audit.engines.shard_expectations as shard_expectations
import audit.engines.sharded as sharded
import audit.engines.shards as shards_module
import audit.expectations as expectations
from audit.engines.shard_expectations import combine, unsplittable, validate_part, value_hashes
from audit.expectations import build_suites, load_suites, validate_suites
from bench.corpus import generate

MAP_EXPECTATIONS = [
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "title", "mostly": 0.9}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "text", "min_value": 40}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "kind", "value_set": ["a", "b"]}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "title", "mostly": 0.8}},
    {"type": "expect_column_values_to_be_null", "kwargs": {"column": "url", "mostly": 0.3}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "text", "regex": "^[A-Z]"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "score", "min_value": 0, "max_value": 5},
    },
    {"type": "expect_column_values_to_be_well_formed_urls", "kwargs": {"column": "url"}},
    {"type": "expect_column_values_to_not_be_page_furniture", "kwargs": {"column": "text"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "score"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "no_such_column", "value_set": [1]}},
]


def write_suite(folder: Path, name: str, table: str, expectations: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    suite = {"name": name, "meta": {"table": table}, "expectations": expectations}
    (folder / f"{name}.json").write_text(json.dumps(suite))


def messy_frame(rows: int, seed: int) -> pd.DataFrame:
    """Nulls, repeated values far apart, short texts, bad urls and numbers of mixed types."""
    rng = random.Random(seed)
    words = ["Alpha", "beta", "Gamma", "delta", "Home | About | Contact"]
    return pd.DataFrame(
        {
            "id": [f"r{rng.randrange(rows * 3)}" for _ in range(rows)],
            "title": [
                None if rng.random() < 0.1 else f"Title {rng.randrange(rows // 2)}" for _ in range(rows)
            ],
            "text": [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 12))) for _ in range(rows)],
            "kind": [rng.choice(["a", "b", "c", None]) for _ in range(rows)],
            "url": [
                rng.choice([None, "https://x.org/a", "http://http://x.org", "not a url"]) for _ in range(rows)
            ],
            "score": [rng.choice([1, 1.0, 2, 7, None, 3.5]) for _ in range(rows)],
        },
        dtype=object,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_parts_combine_into_the_whole_tables_results(tmp_path: Path, seed: int) -> None:
    write_suite(tmp_path, "many", "records", MAP_EXPECTATIONS)
    suites = load_suites(tmp_path)
    frame = messy_frame(600, seed)
    whole = validate_suites(suites, {"records": frame})
    cuts = sorted(random.Random(seed).sample(range(1, len(frame)), 6))
    parts = []
    for start, stop in zip([0, *cuts], [*cuts, len(frame)], strict=True):
        part = frame.iloc[start:stop].copy()
        part.index = pd.RangeIndex(start, stop)
        parts.append(validate_part(suites, {"records": part})[0])
    order = parts[0].order
    assert all(p.order == order for p in parts)
    configurations = [e["type"] for e in MAP_EXPECTATIONS]
    _, (gx_suite,) = build_suites(suites)
    ids = frame["id"].tolist()
    combined = [
        combine(
            gx_suite.expectations[n].configuration,
            [p.counts[n] for p in parts],
            lambda rows: [ids[r] for r in rows.tolist()],
        )
        for n in order
    ]
    expected = whole["suites"][0]["results"]
    assert [r["expectation"] for r in combined] == [r["expectation"] for r in expected]
    assert set(configurations) == {r["expectation"] for r in expected}
    assert combined == expected
    # the frame really fails in many ways, the unique ones among them, and one raises
    failed = {r["name"] for r in expected if not r["success"]}
    assert {"expect_column_values_to_be_unique(id)", "expect_column_values_to_be_unique(score)"} <= failed
    assert any(r["exception"] for r in expected) and len(failed) >= 8


def test_unique_values_compare_as_the_column_does() -> None:
    values = pd.Series(["a", 1, 1.0, True, "1", None, 2.5, "a"], dtype=object)
    hashes = value_hashes(values)
    same = [(i, j) for i in range(len(values)) for j in range(i) if (hashes[i] == hashes[j]).all()]
    assert same == [(2, 1), (3, 1), (3, 2), (7, 0)]  # 1 == 1.0 == True; "1" is not 1


def test_aggregates_and_column_dtypes_cannot_be_split(tmp_path: Path) -> None:
    write_suite(tmp_path, "ok", "records", MAP_EXPECTATIONS[:4])
    assert unsplittable(load_suites(tmp_path)) == []
    write_suite(
        tmp_path,
        "whole",
        "corpus",
        [
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "unrepaired_errors", "max_value": 1},
            },
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
            {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "id", "type_": "str"}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "status", "value_set": ["kept"]},
            },
        ],
    )
    named = unsplittable(load_suites(tmp_path))
    assert [n.split(": ")[1] for n in named] == [
        "expect_column_mean_to_be_between",
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_of_type",
    ]
    assert all(n.startswith(str(tmp_path / "whole.json")) for n in named)


def failing_corpus(path: Path) -> None:
    """Copies (removed), ids repeated across partitions, short texts, lines to quarantine."""
    records = generate(700, seed=11)[["id", "title", "text", "url"]].to_dict("records")
    for n, record in enumerate(records):
        if n % 7 == 0:
            record["text"] = record["text"][:60]
        if n % 11 == 0:
            record["id"] = records[n // 3]["id"]
        if n % 13 == 0:
            record["url"] = "http://http://" + record["url"].removeprefix("https://")
    lines = [json.dumps(r) for r in records]
    for n in range(5, len(lines), 100):
        lines[n] = "{broken"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_run_over_partitions_validates_as_one_table(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    failing_corpus(corpus)
    suites = tmp_path / "suites"
    text_length = {
        "type": "expect_column_value_lengths_to_be_between",
        "kwargs": {"column": "text", "min_value": 100},
    }
    write_suite(suites, "records", "records", [*MAP_EXPECTATIONS[:2], text_length, *MAP_EXPECTATIONS[8:10]])
    corpus_suite = json.loads(
        (Path(__file__).resolve().parent.parent / "expectations" / "clean.json").read_text()
    )
    write_suite(
        suites,
        "corpus",
        "corpus",
        [
            *corpus_suite["expectations"],
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "title"}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "status", "value_set": ["kept"]},
            },
        ],
    )
    monkeypatch.setattr(shards_module, "PART_BYTES", 100_000)
    for module in (expectations, shard_expectations):  # failing rows named: the first 20
        monkeypatch.setattr(module, "MAX_FAILING_IDS", 20)
    local = audit.run([corpus], out=None, config=audit.AuditConfig(expectations=str(suites)))
    config = audit.AuditConfig(engine="dask", scheduler=scheduler, expectations=str(suites))
    result = audit.run([corpus], out=tmp_path / "dask", config=config)
    assert isinstance(result, sharded.ShardedResult) and corpus.stat().st_size > 8 * 100_000  # 8+ parts
    assert result.expectations == local.expectations
    results = [r for s in local.expectations["suites"] for r in s["results"]]
    failing = {r["name"]: r for r in results if not r["success"]}
    assert {  # ids repeated in the input are made unique when read: unique(id) passes
        "expect_column_value_lengths_to_be_between(text)",
        "expect_column_values_to_be_well_formed_urls(url)",
        "expect_column_values_to_be_unique(title)",
        "expect_column_values_to_be_in_set(status)",
    } <= set(failing)
    assert len(failing["expect_column_values_to_be_in_set(status)"]["failing_ids"]) == 20
    assert local.report["counts"]["quarantined"] == 7 and local.report["counts"]["removed"] > 20
    written = json.loads((tmp_path / "dask" / "report.json").read_text())
    assert written["expectations"] == local.expectations


def test_a_suite_that_cannot_be_split_keeps_the_run_in_memory(
    tmp_path: Path, scheduler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    suites = tmp_path / "suites"
    write_suite(
        suites,
        "rows",
        "records",
        [{"type": "expect_table_row_count_to_be_between", "kwargs": {"max_value": 1}}],
    )
    config = audit.AuditConfig(engine="dask", scheduler=scheduler, expectations=str(suites))
    result = audit.run([Path(__file__).resolve().parent.parent / "seeds"], out=None, config=config)
    assert not isinstance(result, sharded.ShardedResult)
    assert (
        "expect_table_row_count_to_be_between cannot be validated a partition at a time"
        in capsys.readouterr().err
    )
    assert result.expectations is not None and result.expectations["failed"] == 1
    assert np.isclose(result.expectations["suites"][0]["rows"], 588)


def test_an_edited_suite_is_built_again(tmp_path: Path) -> None:
    write_suite(tmp_path, "one", "records", MAP_EXPECTATIONS[:1])
    assert unsplittable(load_suites(tmp_path)) == []
    count = "expect_table_row_count_to_equal"
    write_suite(tmp_path, "one", "records", [{"type": count, "kwargs": {"value": 1}}])
    assert [n.split(": ")[1] for n in unsplittable(load_suites(tmp_path))] == [count]
