"""An indexed run with ``--engine dask`` goes over partitions: the texts stay on the workers, and
the outputs and the index are those of the local engine's run (byte for byte, entry for entry).

One LocalCluster (2 worker processes on 127.0.0.1) for the module; partitions made small so
that a few hundred records spread over many of them (a copy and its representative then often
lie in different partitions, and are staged in different parts)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from test_index_sqlite import union_run, write_batches

import audit
import audit.engines.sharded as sharded
import audit.engines.shards as shards_module
from audit.engines.sharded_index import ShardedIndexRun
from audit.index import open_index, verify_index
from audit.index.sqlite import SQLiteIndex
from audit.ingest.jsonl import JsonlReader

#: Every output but report.json and report.html (they hold the run's timings and index location).
COMPARED = (
    "clean.jsonl",
    "removed.jsonl",
    "clusters.jsonl",
    "findings.jsonl",
    "quarantine.jsonl",
    "report.md",
)


@pytest.fixture(autouse=True)
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards_module, "PART_BYTES", 30_000)


def runs(
    paths: list[Path], tmp_path: Path, engine: str, scheduler: str, **options
) -> list[audit.AuditResult]:
    """Each of ``paths`` run in turn through one index (``tmp_path/ENGINE.sqlite``), outputs in
    ``tmp_path/ENGINE/N``."""
    config = audit.AuditConfig(
        expectations=None,
        index=str(tmp_path / f"{engine}.sqlite"),
        engine=engine,
        scheduler=scheduler,
        **options,
    )
    return [audit.run([str(p)], out=tmp_path / engine / str(n), config=config) for n, p in enumerate(paths)]


def index_contents(location: Path) -> tuple[list, ...]:
    """Every row an index file holds (its runs without their times), and what verify finds."""
    with sqlite3.connect(location) as db:
        runs = [
            (run, label, added, {k: v for k, v in json.loads(summary).items() if k != "location"})
            for run, label, added, summary in db.execute(
                "SELECT run, label, added, summary FROM runs ORDER BY run"
            )
        ]
        records = db.execute("SELECT * FROM records ORDER BY ref").fetchall()
        bands = db.execute("SELECT * FROM bands ORDER BY band, key, ref").fetchall()
    return runs, records, bands, verify_index(open_index(location, create=False))


def test_daily_batches_over_partitions_equal_one_run_over_their_union(tmp_path: Path, scheduler: str) -> None:
    """The property of tests/test_index_sqlite.py with --engine dask; and the local engine's
    outputs and index, byte for byte and row for row."""
    paths = write_batches(tmp_path, 900, batches=4, seed=3)
    results = runs(paths, tmp_path, "dask", scheduler)
    assert all(isinstance(r, sharded.ShardedResult) and isinstance(r.index, ShardedIndexRun) for r in results)
    kept = {
        i for n in range(len(paths)) for i in read_jsonl(tmp_path / "dask" / str(n) / "clean.jsonl")["id"]
    }
    assert kept == set(union_run(paths).clean["id"])
    removed = pd.concat([read_jsonl(tmp_path / "dask" / str(n) / "removed.jsonl") for n in range(len(paths))])
    across = removed[removed["duplicate_of_run"].notna()]
    assert {"near_duplicate", "truncated_copy", "exact_duplicate"} <= set(across["reason"])
    runs(paths, tmp_path, "local", scheduler)
    for n in range(len(paths)):
        for name in COMPARED:
            local = (tmp_path / "local" / str(n) / name).read_bytes()
            assert local == (tmp_path / "dask" / str(n) / name).read_bytes(), (n, name)
    for n, result in enumerate(results):
        local_report = json.loads((tmp_path / "local" / str(n) / "report.json").read_text())
        assert result.report["index"] == local_report["index"] | {"location": str(tmp_path / "dask.sqlite")}
    local_index, dask_index = (
        index_contents(tmp_path / "local.sqlite"),
        index_contents(tmp_path / "dask.sqlite"),
    )
    assert local_index[3] == [] and len(local_index[1]) == 900
    assert local_index == dask_index


def read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True, dtype=False)


def test_an_indexed_run_over_partitions_holds_no_text_here(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads no input; texts come here only for the candidates fetched from the index
    and, a partition's entries at a time, to be written into the index's transaction."""
    paths = write_batches(tmp_path, 900, batches=2, seed=5)
    runs(paths[:1], tmp_path, "dask", scheduler)
    parts: list[int] = []
    add_part = SQLiteIndex.add_part

    def counted(self: SQLiteIndex, entries, run: int, first: int, offset: int) -> None:
        parts.append(len(entries.frame))
        add_part(self, entries, run, first, offset)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the client read an input file")

    monkeypatch.setattr(SQLiteIndex, "add_part", counted)
    monkeypatch.setattr(JsonlReader, "read", refuse)
    monkeypatch.setattr("audit.ingest.read_inputs", refuse)
    config = audit.AuditConfig(
        expectations=None, index=str(tmp_path / "dask.sqlite"), engine="dask", scheduler=scheduler
    )
    result = audit.run([str(paths[1])], out=tmp_path / "second", config=config)
    assert isinstance(result, sharded.ShardedResult) and "text" not in result.records.columns
    report = result.report["index"]
    assert report["removed_as_copies_of_earlier_runs"] > 10
    assert 0 < report["candidates_from_index"] < 0.5 * len(result.records)
    assert len(parts) > 5 and sum(parts) == len(result.records) and max(parts) < 0.3 * sum(parts)


def test_a_failing_run_over_partitions_leaves_the_index_as_before(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_batches(tmp_path, 600, batches=2, seed=9)
    runs(paths[:1], tmp_path, "dask", scheduler)
    before = index_contents(tmp_path / "dask.sqlite")
    add_part = SQLiteIndex.add_part
    calls: list[int] = []

    def failing(self: SQLiteIndex, *args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk gone")
        add_part(self, *args)

    monkeypatch.setattr(SQLiteIndex, "add_part", failing)
    config = audit.AuditConfig(
        expectations=None, index=str(tmp_path / "dask.sqlite"), engine="dask", scheduler=scheduler
    )
    with pytest.raises(OSError, match="disk gone"):
        audit.run([str(paths[1])], out=tmp_path / "failed", config=config)
    assert index_contents(tmp_path / "dask.sqlite") == before and not (tmp_path / "failed").exists()
    monkeypatch.setattr(SQLiteIndex, "add_part", add_part)
    audit.run([str(paths[1])], out=tmp_path / "again", config=config)  # the lock was released
    assert [r["run"] for r in open_index(tmp_path / "dask.sqlite").stats()["runs"]] == [1, 2]


def test_a_run_with_no_records_adds_an_empty_run_as_locally(tmp_path: Path, scheduler: str) -> None:
    (tmp_path / "empty").mkdir()
    paths = [*write_batches(tmp_path, 200, batches=1, seed=2), tmp_path / "empty"]
    for engine in ("local", "dask"):
        runs(paths, tmp_path, engine, scheduler)
    for name in COMPARED:
        assert (tmp_path / "local" / "1" / name).read_bytes() == (tmp_path / "dask" / "1" / name).read_bytes()
    assert index_contents(tmp_path / "local.sqlite") == index_contents(tmp_path / "dask.sqlite")
    with sqlite3.connect(tmp_path / "dask.sqlite") as db:
        assert db.execute("SELECT run, added FROM runs ORDER BY run").fetchall()[1] == (2, 0)
