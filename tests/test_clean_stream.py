"""The cleaned corpus is streamed to clean.jsonl/removed.jsonl from the records; the DataFrames
``AuditResult.clean``/``.removed`` are built only when read, and hold the same rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import audit
from audit.clean import CleanCorpus, _Sources, plan_clean
from audit.frames import batch_rows
from audit.report.writers import write_jsonl
from audit.schema import records_from_tables, rows_table

DOCS = [
    {
        "id": "a",
        "title": "Deep nets",
        "text": "A study of deep nets for vision tasks in the wild. " * 3,
        "url": "",
    },
    {
        "id": "b",
        "title": "",
        "text": "A study of deep nets for vision tasks in the wild. " * 3,
        "url": "https://x.org/b",
    },
    {
        "id": "c",
        "title": "Other",
        "text": "Something else entirely, about graphs and their colourings.",
        "url": "",
    },
    {
        "id": "d",
        "title": "Markup",
        "text": "Text with <b>markup</b> residue &amp; entities that get repaired.",
        "url": "",
    },
    {"id": "e", "title": "", "text": "", "url": ""},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_streamed_outputs_equal_the_dataframes(tmp_path: Path) -> None:
    data = tmp_path / "in" / "d.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    result = audit.run([data], out=tmp_path / "out")
    assert result._clean is None and result._removed is None  # written without building them
    assert result.report["counts"]["kept"] == len(result.corpus) == 4
    assert result.report["counts"]["removed"] == 1

    clean, removed = result.clean, result.removed  # built now, from the same plan
    write_jsonl(clean, tmp_path / "clean.jsonl")
    write_jsonl(removed, tmp_path / "removed.jsonl")
    for name in ("clean.jsonl", "removed.jsonl"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "out" / name).read_bytes()

    rows = {row["id"]: row for row in lines(tmp_path / "out" / "clean.jsonl")}
    assert list(rows) == ["b", "c", "d", "e"]  # record order; a is a copy of b (b has a url)
    assert rows["b"]["title"] == "Deep nets"  # lent by the copy
    assert "title: filled from duplicate a" in rows["b"]["repairs"]
    assert [s["id"] for s in rows["b"]["sources"]] == ["a", "b"]
    assert rows["c"]["sources"] == [{"id": "c", "source": "d.jsonl", "line": 3}]
    assert rows["d"]["repairs"] == ["text: html entity: &amp; -> &"] and "&amp;" not in rows["d"]["text"]
    gone = lines(tmp_path / "out" / "removed.jsonl")
    assert [(r["id"], r["duplicate_of"], r["line"]) for r in gone] == [("a", "b", 1)]
    assert list(gone[0]) == list(removed.columns)


def test_setting_clean_replaces_what_is_written(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS[:3]), encoding="utf-8")
    result = audit.run([data], out=None)
    result.clean = result.clean.iloc[:1]
    audit.write_outputs(result, tmp_path / "out")
    assert [r["id"] for r in lines(tmp_path / "out" / "clean.jsonl")] == ["b"]
    assert isinstance(result.removed, pd.DataFrame) and result.removed["id"].tolist() == ["a"]


def test_lent_sources_and_notes_of_any_shape_are_written_as_json_writes_them(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    result = audit.run([data], out=None)
    corpus = result.corpus
    expected = [json.dumps(row, ensure_ascii=False) + "\n" for row in corpus.clean_rows()]
    row = next(iter(corpus.sources))
    corpus.sources[row] = [{"source": "s", "id": "x", "line": 1}, {"id": "y", "source": "t", "line": True}]
    corpus.notes[row] = ["note", 5]
    write_jsonl(corpus.clean_batches(), tmp_path / "clean.jsonl")
    lines_written = (tmp_path / "clean.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    changed = [json.dumps(r, ensure_ascii=False) + "\n" for r in corpus.clean_rows()]
    assert lines_written == changed != expected
    assert (
        '"sources": [{"source": "s", "id": "x", "line": 1}, {"id": "y", "source": "t", "line": true}]'
        in "".join(changed)
    )


@pytest.mark.parametrize("seed", range(6))
def test_sources_lists_made_from_member_arrays_equal_the_sources_mapping(seed: int) -> None:
    """Representatives lend their members' {id, source, line} (members before or after them, in any
    order, over many Arrow chunks), with lists set and deleted over them; the others list themselves."""
    rng = np.random.default_rng(seed)
    count = 300
    rows = [
        {"id": f"r{n}", "source": f"f{n % 4}.jsonl", "line": n + 1, "title": "", "text": "", "url": "",
         "urls": [], "scraped_date": None, "format": "jsonl"}
        for n in range(count)
    ]  # fmt: skip
    records = records_from_tables([rows_table(rows[n : n + 37]) for n in range(0, count, 37)])
    reps = np.sort(rng.choice(count, 40, replace=False))
    bounds = np.concatenate(([0], np.cumsum(rng.integers(0, 5, len(reps)))))
    members = rng.integers(0, count, int(bounds[-1]))
    sources = _Sources(records, reps, bounds, members)
    sources[int(reps[0])] = [{"id": "set", "source": "s", "line": 1}]
    sources[int(reps[1])] = []
    del sources[int(reps[2])]
    kept = np.sort(rng.choice(count, 200, replace=False))
    corpus = CleanCorpus(records, kept, {}, {}, sources, np.empty(0, np.int64), pd.DataFrame())
    written = [row["sources"] for batch in corpus.clean_batches(batch=64) for row in batch_rows([batch])]
    own = [[{"id": f"r{n}", "source": f"f{n % 4}.jsonl", "line": n + 1}] for n in range(count)]
    assert written == [sources.get(row) or own[row] for row in kept.tolist()]


def test_clusters_of_records_from_elsewhere(tmp_path: Path) -> None:
    """A representative that is no record of this run (an index's earlier run) is skipped; a member
    that is no record of a kept representative's cluster is an error naming the smallest such id."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    result = audit.run([data], out=None)
    elsewhere = pd.DataFrame(
        {"representative": ["old"], "members": [["old", "c"]], "to_representative": [[]]}
    )
    dedup = replace(result.dedup, clusters=pd.concat([result.dedup.clusters, elsewhere], ignore_index=True))
    corpus, _ = plan_clean(result.records, dedup, result.found)
    assert list(corpus.clean_rows()) == list(result.corpus.clean_rows())
    broken = result.dedup.clusters.copy()
    broken["members"] = [[*members, "zz", "gone"] for members in broken["members"].tolist()]
    with pytest.raises(KeyError, match="gone"):
        plan_clean(result.records, replace(result.dedup, clusters=broken), result.found)


def test_records_looked_at_in_chunks_give_the_same_plan(
    seeds_result: audit.AuditResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repaired records and the representatives lacking a field, a few at a time."""
    import audit.clean as clean_module

    whole, whole_found = plan_clean(seeds_result.records, seeds_result.dedup, seeds_result.found)
    monkeypatch.setattr(clean_module, "TODO_CHUNK", 3)
    pieces, pieces_found = plan_clean(seeds_result.records, seeds_result.dedup, seeds_result.found)
    assert len(whole.changed) > 6 and len(whole.notes) > 6  # several chunks with repairs
    assert pieces.changed == whole.changed and pieces.notes == whole.notes
    assert pieces_found.table.equals(whole_found.table)
    assert whole_found.applied_count() > 0


def _lenders_reference(
    records: pd.DataFrame, rows: list[int], clusters: dict[int, list[int]], repaired: set[tuple[int, str]]
) -> dict[int, dict[str, tuple[str, str]]]:
    """What a kept record may take for a field it lacks, one record and member at a time."""
    ids, values = records["id"].tolist(), {name: records[name].tolist() for name in ("url", "title")}
    lent: dict[int, dict[str, tuple[str, str]]] = {}
    for row in rows:
        for name in ("url", "title"):
            if values[name][row] and (row, name) not in repaired:
                continue
            donor = next((m for m in clusters.get(row, [row]) if values[name][m]), None)
            if donor is not None:
                lent.setdefault(row, {})[name] = (ids[donor], values[name][donor])
    return lent


@pytest.mark.parametrize("seed", range(8))
def test_the_copies_lending_a_field_are_those_found_one_by_one(seed: int) -> None:
    """:func:`audit.clean._lenders` (Arrow over the members' fields) names the copies a one-by-one
    walk names: blank fields, members in any order (the representative among them,
    anywhere), representatives whose members all lack the field, repaired fields that are set,
    records outside clusters, over many Arrow chunks."""
    from audit.clean import Repairs, _KeptClusters, _lenders

    rng = np.random.default_rng(seed)
    count = 400
    pick = ["", None, "t", "another title"]
    rows = [
        {"id": f"r{n}", "source": "s", "line": n + 1, "title": pick[rng.integers(4)] or "",
         "url": ["", f"https://x.org/{n}"][rng.integers(2)], "text": "", "urls": [],
         "scraped_date": None, "format": "jsonl"}
        for n in range(count)
    ]  # fmt: skip
    records = records_from_tables([rows_table(rows[n : n + 53]) for n in range(0, count, 53)])
    reps = np.sort(rng.choice(count, 60, replace=False))
    clusters: dict[int, list[int]] = {}
    for rep in reps.tolist():
        others = rng.choice(count, int(rng.integers(0, 5)), replace=False).tolist()
        members = [m for m in others if m != rep]
        members.insert(int(rng.integers(0, len(members) + 1)), rep)
        clusters[rep] = members
    bounds = np.concatenate(([0], np.cumsum([len(clusters[r]) for r in reps.tolist()])))
    member_rows = np.array([m for r in reps.tolist() for m in clusters[r]], np.int64)
    kept = _KeptClusters(reps, bounds, member_rows)
    todo = np.sort(rng.choice(count, 250, replace=False))
    repaired_rows = np.sort(rng.choice(todo, 80))
    fields = [["title", "text", "url"][rng.integers(3)] for _ in repaired_rows]
    repairs = Repairs(repaired_rows, fields, np.arange(len(fields)), pa.nulls(len(fields), pa.large_string()))
    expected = _lenders_reference(
        records, todo.tolist(), clusters, set(zip(repaired_rows.tolist(), fields, strict=True))
    )
    got = _lenders(records, todo, kept, repairs)
    assert got == expected and len(got) > 20
    # The url first, then the title: the order their notes are written in.
    assert {row: list(f) for row, f in got.items()} == {row: list(f) for row, f in expected.items()}
    assert _lenders(records, np.empty(0, np.int64), kept, repairs) == {}
