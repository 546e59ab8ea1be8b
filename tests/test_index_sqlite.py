"""The SQLite index across runs: daily batches equal one run over their union, outputs explain
matches with earlier runs, kill -9 leaves the index whole, concurrent runs serialise or fail clearly."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import audit
from audit.cli import main
from audit.dedup import find_duplicates
from audit.dedup.engine import LocalEngine
from audit.dedup.signer import SignedCorpus, SignerSettings, Texts
from audit.index import open_index, verify_index
from audit.index.base import FAULT_ENV
from audit.pipeline import DEFAULT_STEPS, AuditResult, Dedup, completeness
from audit.pipeline import audit as run_pipeline
from bench.corpus import generate

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
CLI = [sys.executable, "-m", "audit"]


class EarlierBatchFirst(Dedup):
    """One run over the union, ranking copies from earlier batches first: what an index does
    (a record kept by an earlier run stays the representative)."""

    def __init__(self, batch_of_source: dict[str, int]) -> None:
        self.batch_of_source = batch_of_source

    def run(self, state: AuditResult) -> None:
        base = completeness(state.records)
        batch = [self.batch_of_source[s] for s in state.records["source"]]
        state.dedup = find_duplicates(
            state.records, state.config.dedup_config(), lambda row: (-batch[row], *base(row))
        )


def union_run(paths: list[Path]) -> AuditResult:
    order = {p.name: n for n, p in enumerate(paths)}
    steps = tuple(EarlierBatchFirst(order) if isinstance(s, Dedup) else s for s in DEFAULT_STEPS)
    return run_pipeline([str(p) for p in paths], audit.AuditConfig(expectations=None), steps=steps)


def batch_runs(paths: list[Path], index: Path, **options) -> list[AuditResult]:
    config = audit.AuditConfig(expectations=None, index=str(index), **options)
    return [audit.run([str(p)], out=None, config=config) for p in paths]


def write_batches(tmp_path: Path, records: int, batches: int, seed: int) -> list[Path]:
    """A generated corpus with planted copies, dealt at random into ``batches`` JSONL files."""
    corpus = generate(records, seed=seed)
    day = np.random.default_rng(seed).integers(0, batches, len(corpus))
    paths = []
    for n in range(batches):
        path = tmp_path / f"day{n}.jsonl"
        rows = corpus.loc[day == n, ["id", "title", "text", "url"]]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows.to_dict("records")), encoding="utf-8")
        paths.append(path)
    return paths


def kept_ids(results: list[AuditResult]) -> set[str]:
    return {i for result in results for i in result.clean["id"]}


def test_seeds_split_by_file_keep_what_one_run_over_all_keeps(tmp_path: Path) -> None:
    results = batch_runs(SEED_FILES, tmp_path / "idx.sqlite")
    assert kept_ids(results) == set(union_run(SEED_FILES).clean["id"])
    # The default ranking may pick another copy of a cluster, never another number of records.
    assert len(kept_ids(results)) == audit.run([str(SEEDS)], out=None).report["counts"]["kept"] == 526
    assert sum(r.report["index"]["removed_as_copies_of_earlier_runs"] for r in results) > 50


def test_generated_daily_batches_equal_one_run_over_their_union(tmp_path: Path) -> None:
    paths = write_batches(tmp_path, 900, batches=4, seed=3)
    results = batch_runs(paths, tmp_path / "idx.sqlite")
    assert kept_ids(results) == set(union_run(paths).clean["id"])
    across = pd.concat([r.removed for r in results])
    across = across[across["duplicate_of_run"].notna()]
    # Planted copies of every kind are found across runs, cut copies through the prefix bands too.
    assert {"near_duplicate", "truncated_copy", "exact_duplicate"} <= set(across["reason"])
    stats = open_index(tmp_path / "idx.sqlite").stats()
    assert stats["records"] == len(kept_ids(results)) and len(stats["runs"]) == 4


def test_outputs_name_the_earlier_record_and_its_run_and_conserve_records(tmp_path: Path) -> None:
    index = tmp_path / "idx.sqlite"
    first, second = SEED_FILES[1], SEED_FILES[2]
    config = audit.AuditConfig(index=str(index), expectations="expectations")
    audit.run([str(first)], out=tmp_path / "one", config=config)
    result = audit.run([str(second)], out=tmp_path / "two", config=config)
    out = tmp_path / "two"
    clean = [json.loads(line) for line in (out / "clean.jsonl").read_text().splitlines()]
    removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    clusters = [json.loads(line) for line in (out / "clusters.jsonl").read_text().splitlines()]
    earlier_ids = set(pd.read_json(tmp_path / "one" / "clean.jsonl", lines=True)["id"])
    this_run = {r["id"] for r in clean}
    assert {r["id"] for r in removed} | this_run == set(result.records["id"])
    assert not {r["id"] for r in removed} & this_run
    for row in removed:  # conservation: the record a removed one copies is kept, here or before
        if row["duplicate_of_run"] is None:
            assert row["duplicate_of"] in this_run
        else:
            assert row["duplicate_of_run"] == 1 and row["duplicate_of"] in earlier_ids
    assert any(r["duplicate_of_run"] == 1 for r in removed)
    reps = {c["representative"] for c in clusters}
    assert any(rep.startswith("index:1:") and rep[len("index:1:") :] in earlier_ids for rep in reps)
    represented = {s["id"] for r in clean for s in r["sources"]}
    assert represented | {r["id"] for r in removed if r["duplicate_of_run"] == 1} == set(result.records["id"])
    report = json.loads((out / "report.json").read_text())
    assert report["index"]["run"] == 2 and report["index"]["added"] == len(clean)
    assert report["expectations"]["failed"] == 0  # every removed record is accounted for


def _run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding an index after one CLI run (of the first seed file): where each kill -9
    test starts from, copied (the run is the same for every fault)."""
    root = tmp_path_factory.mktemp("first-run")
    args = ["run", "--index", str(root / "idx.sqlite"), "--no-expectations", "--quiet", "--force"]
    assert _run_cli([*args, str(SEED_FILES[0]), "--out", str(root / "a")]).returncode == 0
    return root


@pytest.mark.parametrize("fault", ["after-records", "after-bands", "before-commit"])
def test_kill_9_mid_write_leaves_the_index_as_before(tmp_path: Path, first_run: Path, fault: str) -> None:
    index = tmp_path / "idx.sqlite"
    base = ["run", "--index", str(index), "--no-expectations", "--quiet", "--force"]
    for done in first_run.glob("idx.sqlite*"):  # the file, and its WAL's files if any were left
        shutil.copyfile(done, tmp_path / done.name)
    before = {k: v for k, v in open_index(index).stats().items() if k != "bytes"}
    killed = _run_cli([*base, str(SEED_FILES[1]), "--out", str(tmp_path / "b")], {FAULT_ENV: fault})
    assert killed.returncode == -9
    after = open_index(index)
    assert {k: v for k, v in after.stats().items() if k != "bytes"} == before
    assert verify_index(after) == []
    # The index is committed after the outputs are written: killed before that, no outputs either.
    assert (tmp_path / "b").exists() == (fault == "before-commit")
    again = _run_cli([*base, str(SEED_FILES[1]), "--out", str(tmp_path / "b")])
    assert again.returncode == 0, again.stderr
    assert [r["run"] for r in open_index(index).stats()["runs"]] == [1, 2]


def test_a_run_fails_clearly_while_another_holds_the_index(tmp_path: Path) -> None:
    index = tmp_path / "idx.sqlite"
    assert (
        main(
            [
                "run",
                str(SEED_FILES[0]),
                "--index",
                str(index),
                "--out",
                str(tmp_path / "a"),
                "--no-expectations",
                "--quiet",
            ]
        )
        == 0
    )
    holder = sqlite3.connect(index, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a running run holds
    try:
        blocked = _run_cli(
            [
                "run",
                str(SEED_FILES[1]),
                "--index",
                str(index),
                "--index-wait",
                "0.2",
                "--out",
                str(tmp_path / "b"),
                "--no-expectations",
                "--quiet",
            ]
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert blocked.returncode == 2
    assert "in use by another run" in blocked.stderr and "--index-wait" in blocked.stderr
    assert len(open_index(index).stats()["runs"]) == 1


def test_two_concurrent_runs_serialise(tmp_path: Path) -> None:
    index = tmp_path / "idx.sqlite"
    commands = [
        [
            *CLI,
            "run",
            str(path),
            "--index",
            str(index),
            "--out",
            str(tmp_path / f"out{n}"),
            "--no-expectations",
            "--quiet",
        ]
        for n, path in enumerate(SEED_FILES[1:3])
    ]
    processes = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    stats = open_index(index).stats()
    assert [r["run"] for r in stats["runs"]] == [1, 2]
    kept = [pd.read_json(tmp_path / f"out{n}" / "clean.jsonl", lines=True) for n in range(2)]
    # Whichever ran second saw the first's records: no copy across the two files is kept twice.
    union = audit.run(
        [str(p) for p in SEED_FILES[1:3]], out=None, config=audit.AuditConfig(expectations=None)
    )
    assert sum(len(k) for k in kept) == stats["records"] == union.report["counts"]["kept"]


def test_other_dedup_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "idx.sqlite"
    args = [str(SEED_FILES[0]), "--index", str(index), "--no-expectations", "--quiet", "--force"]
    assert main(["run", *args, "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *args, "--out", str(tmp_path / "b"), "--num-perm", "64"]) == 2
    assert "num_perm 128 (index) vs 64 (this run)" in capsys.readouterr().err
    assert len(open_index(index).stats()["runs"]) == 1


def test_index_commands_stats_verify_compact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "idx.sqlite"
    batch_runs(SEED_FILES[:2], index)
    assert main(["index", "stats", str(index), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 277 and [r["added"] for r in stats["runs"]] == [53, 232]
    assert stats["removed_copies"] == 8  # the second file's copies of the first's records
    per_record = stats["params"]["bands"] + stats["params"]["prefix_bands"]
    assert stats["band_keys"] == (277 + 8) * per_record
    assert main(["index", "verify", str(index)]) == 0
    assert capsys.readouterr().out.strip() == f"{index}: ok"
    assert main(["index", "compact", str(index)]) == 0
    assert "compacted:" in capsys.readouterr().out
    with sqlite3.connect(index) as db:  # a signature that no longer matches its text
        db.execute("UPDATE records SET signature = zeroblob(512) WHERE ref = 7")
    assert main(["index", "verify", str(index)]) == 1
    assert "record ref 7: stored signature differs" in capsys.readouterr().out
    with sqlite3.connect(index) as db:  # a record that lost band keys; one whose keys are all gone is fine
        db.execute("DELETE FROM bands WHERE ref = 9 AND band < 3")
        db.execute("DELETE FROM bands WHERE ref = 11")
    assert main(["index", "verify", str(index)]) == 1
    out = capsys.readouterr().out
    assert f"record ref 9 has {per_record - 3} band keys, expected {per_record}" in out
    assert "record ref 11 " not in out
    assert main(["index", "stats", str(tmp_path / "missing.sqlite")]) == 2
    assert "no index there" in capsys.readouterr().err


def test_an_indexed_run_signs_each_record_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signed: list[int] = []
    original = LocalEngine.sign

    def counting(self: LocalEngine, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        signed.append(len(texts))
        return original(self, texts, settings)

    monkeypatch.setattr(LocalEngine, "sign", counting)
    first, second = batch_runs(SEED_FILES[:2], tmp_path / "index.sqlite")
    fetched = second.index.report["candidates_from_index"]
    assert fetched > 0
    # Each run's records once; the second run also the earlier records fetched as candidates.
    assert signed == [len(first.records), len(second.records), fetched]
