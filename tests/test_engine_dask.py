"""The Dask engine gives the local engine's outputs byte for byte (clean, removed, clusters).

Few and small: one LocalCluster (2 worker processes on 127.0.0.1) for the module, and one run
that starts its own cluster as ``--engine dask`` does by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster

import audit
from audit.cli import main
from bench.corpus import generate

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
COMPARED = ("clean.jsonl", "removed.jsonl", "clusters.jsonl")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster.scheduler_address


def both_engines(paths: list[Path], tmp_path: Path, scheduler: str, **options) -> audit.AuditResult:
    local = audit.AuditConfig(expectations=None, **options)
    dask = audit.AuditConfig(expectations=None, engine="dask", scheduler=scheduler, **options)
    audit.run(paths, out=tmp_path / "local", config=local)
    result = audit.run(paths, out=tmp_path / "dask", config=dask)
    for name in COMPARED:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    report = json.loads((tmp_path / "dask" / "report.json").read_text())
    assert report["parameters"]["engine"] == "dask"
    return result


def test_seeds_give_identical_outputs(tmp_path: Path, scheduler: str) -> None:
    result = both_engines([SEEDS], tmp_path, scheduler)
    assert result.report["counts"]["kept"] == 526


def test_a_generated_corpus_gives_identical_outputs(tmp_path: Path, scheduler: str) -> None:
    corpus = generate(4000, seed=7)[["id", "title", "text", "url"]]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in corpus.to_dict("records")), encoding="utf-8")
    result = both_engines([path], tmp_path, scheduler, checks=())
    # Near, cut and exact copies all found: the candidates came through the shuffle.
    assert set(result.dedup.relation_of.values()) == {"near_duplicate", "truncated_copy", "exact_duplicate"}
    assert result.dedup.stats["candidate_pairs"] > 500


def test_engine_dask_starts_its_own_local_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(SEEDS / "001_02fc474db44ba42c.txt")]
    args = ["--no-expectations", "--quiet"]
    assert main(["run", *paths, "--out", str(tmp_path / "local"), *args]) == 0
    assert main(["run", *paths, "--out", str(tmp_path / "dask"), "--engine", "dask", *args]) == 0
    for name in COMPARED:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    assert "records: 232 in" in capsys.readouterr().out


def test_runs_through_an_index_give_identical_outputs(tmp_path: Path, scheduler: str) -> None:
    files = sorted(SEEDS.glob("*.txt"))[:2]
    for engine in ("local", "dask"):
        config = audit.AuditConfig(
            expectations=None, index=str(tmp_path / f"{engine}.sqlite"), engine=engine, scheduler=scheduler
        )
        for n, path in enumerate(files):
            audit.run([path], out=tmp_path / engine / str(n), config=config)
    for n in range(len(files)):
        for name in COMPARED:
            local = (tmp_path / "local" / str(n) / name).read_bytes()
            assert local == (tmp_path / "dask" / str(n) / name).read_bytes(), (n, name)
    assert b'"duplicate_of_run": 1' in (tmp_path / "dask" / "1" / "removed.jsonl").read_bytes()
