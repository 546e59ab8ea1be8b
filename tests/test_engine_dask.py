"""The Dask engine gives the local engine's outputs byte for byte (clean, removed, clusters).

Few and small: one LocalCluster (2 worker processes on 127.0.0.1) for the module, and one run
that starts its own cluster as ``--engine dask`` does by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

import audit
from audit.cli import main
from audit.dedup import DedupConfig, find_duplicates
from audit.dedup.clusters import component_labels
from audit.dedup.engine import LocalEngine
from audit.dedup.signer import SignerSettings
from audit.engines.dask import DaskEngine
from audit.normalise import add_normalised
from audit.pipeline import completeness
from bench.corpus import generate

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
COMPARED = ("clean.jsonl", "removed.jsonl", "clusters.jsonl")


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


@pytest.fixture(scope="module")
def engine(scheduler: str) -> Iterator[DaskEngine]:
    with Client(scheduler) as client:
        # Small partitions, so that pairs and edges span several of them.
        yield DaskEngine(client, texts_per_partition=300, pairs_per_partition=400)


def signer_settings() -> SignerSettings:
    config = DedupConfig()
    return replace(
        config.signer(), banding=config.banding(), prefix_banding=config.prefix_banding, keep_signatures=False
    )


def test_verification_on_the_workers_gives_verify_pairs_numbers(engine: DaskEngine) -> None:
    texts = add_normalised(generate(1500, seed=3))["norm_text"]
    settings = replace(signer_settings(), normalise=False)
    local = LocalEngine()
    held, signed = engine.sign_held(texts, settings), local.sign_held(texts, settings)
    assert (held.text_hashes == signed.text_hashes).all() and (held.counts == signed.counts).all()
    pairs = engine.candidates(held, np.arange(len(texts)))
    assert (pairs == local.candidates(signed, np.arange(len(texts)))).all() and len(pairs) > 200
    rows = np.unique(pairs)
    remote, here = engine.verifier(held, rows), local.verifier(signed, rows)
    for near in (None, 0.65):  # the chaining guard verifies with a lower near-duplicate threshold
        got, want = remote(pairs[:, 0], pairs[:, 1], 0.8, near), here(pairs[:, 0], pairs[:, 1], 0.8, near)
        assert (got.jaccard == want.jaccard).all() and (got.containment == want.containment).all()
        assert (got.relation == want.relation).all()
    assert {1, 2} <= set(want.relation.tolist())  # near duplicates and truncated copies among them


def test_components_on_the_workers_equal_scipy_components(engine: DaskEngine) -> None:
    rng = np.random.default_rng(5)
    random_edges = rng.integers(0, 3000, size=(1200, 2))
    chain = np.column_stack((np.arange(3000, 3200), np.arange(3001, 3201)))[::-1]  # a path of 201 rows
    edges = np.concatenate((random_edges, chain))
    labels = engine.components(3500, edges)
    assert engine.rounds < 10  # local components per partition: not one round per hop of the path
    expected = component_labels(3500, edges)
    # Same partition into components, each labelled by its smallest row.
    firsts = np.unique(expected, return_index=True)[1]
    assert len(np.unique(labels)) == len(firsts) and (labels[firsts] == firsts).all()
    assert (labels == firsts[expected]).all()
    assert (labels[3000:3201] == 3000).all() and (labels[3201:] == np.arange(3201, 3500)).all()


def test_find_duplicates_on_the_workers_splits_chains_like_local(engine: DaskEngine) -> None:
    records = add_normalised(generate(2500, seed=11).assign(source="t", line=1))
    rank = completeness(records)
    local = find_duplicates(records, DedupConfig(), rank)
    remote = find_duplicates(records, DedupConfig(), rank, engine=engine)
    assert remote.clusters.equals(local.clusters) and remote.edges.equals(local.edges)
    assert remote.duplicate_of == local.duplicate_of and remote.relation_of == local.relation_of
    same_stats = ("candidate_pairs", "edges", "components", "clusters", "chain_splits", "weak_edges")
    assert {k: remote.stats[k] for k in same_stats} == {k: local.stats[k] for k in same_stats}
    assert local.stats["chain_splits"] >= 1 and local.stats["weak_edges"] > 0  # the guard had work to do


def test_a_memory_limit_below_the_floor_is_refused_before_the_run(tmp_path: Path) -> None:
    """Workers limited below what a run over partitions works in, even in the smallest partitions,
    are refused at once, with the floor and its parts; the pause fraction is the workers' own Dask
    config (such a run stalled, its workers paused)."""
    import dask

    from audit.engines.partitions import input_bytes
    from audit.engines.worker_memory import MIN_PART_BYTES, MemoryLimitError, local_cluster, memory_floor

    with dask.config.set({"distributed.worker.memory.pause": 0.7}), local_cluster(1, "450MB") as cluster:
        config = audit.AuditConfig(expectations=None, engine="dask", scheduler=cluster.scheduler_address)
        with pytest.raises(MemoryLimitError) as refused:
            audit.run([SEEDS], out=tmp_path / "out", config=config)
    message = str(refused.value)
    assert "memory limit of 429 MiB" in message and "Dask pauses a worker at 70% of its limit" in message
    assert "its interpreter and libraries take" in message and "2.0 MiB partitions" in message
    floor = int(message.split("smallest partitions, ")[1].split(" MiB")[0])
    baseline = int(message.split("libraries take ")[1].split(" MiB")[0])
    seeds = input_bytes([str(SEEDS)])
    assert (
        memory_floor(baseline << 20, MIN_PART_BYTES, seeds, 0.7).limit
        <= floor << 20
        <= memory_floor((baseline + 1) << 20, MIN_PART_BYTES, seeds, 0.7).limit + 2**20
    )
    assert floor > 429
    assert not (tmp_path / "out" / "clean.jsonl").exists()  # nothing was run


def test_the_floor_adds_its_parts_over_the_pause_fraction() -> None:
    from audit.engines import worker_memory as memory

    mb = 2**20
    floor = memory.memory_floor(260 * mb, 16 * mb, 700 * mb, 0.8)
    assert floor.fixed == memory.RUN_FIXED and floor.corpus == int(memory.RESIDUE_PER_INPUT_BYTE * 700 * mb)
    assert floor.partition == (memory.RESIDUE_PER_PART_BYTE + memory.WORK_PER_PART_BYTE) * 16 * mb
    assert floor.limit == int((260 * mb + floor.fixed + floor.corpus + floor.partition) / 0.8)
    # What really scales: the partition size, the input a worker holds; and the pause threshold.
    assert memory.memory_floor(260 * mb, 4 * mb, 700 * mb, 0.8).limit < floor.limit
    assert memory.memory_floor(260 * mb, 16 * mb, 70 * mb, 0.8).limit < floor.limit
    assert memory.memory_floor(260 * mb, 16 * mb, 700 * mb, 0.9).limit < floor.limit
    assert "16.0 MiB partitions" in floor.explain() and "at 80% of its limit" in floor.explain()


def test_the_partition_size_is_the_largest_the_limit_fits() -> None:
    from audit.engines.worker_memory import MIN_PART_BYTES, Thresholds, fitting_part_bytes, memory_floor

    mb, base, held = 2**20, 263 * 2**20, 70 * 2**20
    largest = 16 * mb
    pause = Thresholds(pause=0.8, terminate=None)  # the floor alone (a task's peak: test_worker_memory.py)
    assert fitting_part_bytes(24 << 30, base, held, pause, largest) == largest  # room to spare
    for limit_mb in range(500, 1000, 7):
        fits = fitting_part_bytes(limit_mb * mb, base, held, pause, largest)
        smallest = memory_floor(base, MIN_PART_BYTES, held, 0.8).limit
        if fits is None:
            assert limit_mb * mb < smallest  # refused only when the smallest partition does not fit
            continue
        assert MIN_PART_BYTES <= fits <= largest
        assert memory_floor(base, fits, held, 0.8).unspillable <= 0.8 * limit_mb * mb
        if fits < largest:  # the largest that fits
            assert memory_floor(base, fits + 1, held, 0.8).unspillable > 0.8 * limit_mb * mb
    smaller = [fitting_part_bytes(m * mb, base, held, pause, largest) for m in (560, 600, 700, 900)]
    assert smaller == sorted(smaller) and smaller[0] < smaller[-1] == largest
    # Less room: by the input a worker holds, or by an earlier pause.
    assert fitting_part_bytes(700 * mb, base, 3 * held, pause, largest) < smaller[2]
    assert fitting_part_bytes(700 * mb, base, held, Thresholds(0.7, None), largest) < smaller[2]
    assert fitting_part_bytes(400 * mb, base, held, pause, largest) is None
    # A default below the smallest (the tests' small partitions) is kept when it fits.
    assert fitting_part_bytes(24 << 30, base, held, pause, 50_000) == 50_000


def test_a_small_limit_cuts_smaller_partitions_with_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a memory limit, the run is cut into the partitions the limit fits, and writes what
    the local engine does. The model's fixed part is raised here so that a small corpus gets
    partitions a fraction of its size (the choice is made in this process)."""
    from audit.engines import worker_memory as memory
    from audit.engines.worker_memory import _worker_memory, local_cluster

    path = tmp_path / "corpus.jsonl"
    frame = generate(600, seed=5)
    path.write_text(
        "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(frame["text"]))
    )
    size = path.stat().st_size
    with local_cluster(1, "700MB") as cluster, Client(cluster) as client:
        [(baseline, fractions)] = client.run(_worker_memory).values()
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
        target = size // 4  # partitions of about a quarter of the file
        room = fractions.floor * limit - baseline - memory.RESIDUE_PER_INPUT_BYTE * size
        fixed = int(room - (memory.RESIDUE_PER_PART_BYTE + memory.WORK_PER_PART_BYTE) * target)
        monkeypatch.setattr(memory, "RUN_FIXED", fixed)
        monkeypatch.setattr(memory, "MIN_PART_BYTES", 10_000)
        config = audit.AuditConfig(expectations=None, engine="dask", scheduler=cluster.scheduler_address)
        result = audit.run([path], out=tmp_path / "dask", config=config)
    audit.run([path], out=tmp_path / "local", config=audit.AuditConfig(expectations=None))
    # The worker's RSS moves a little between the two measurements: about a quarter.
    assert size // 6 < result.part_bytes < size // 3
    for name in ("clean.jsonl", "removed.jsonl", "findings.jsonl", "clusters.jsonl", "quarantine.jsonl"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_worker_tasks_stay_importable_and_transparent() -> None:
    """The tasks that give their freed memory back are still the module's functions (Dask sends
    them by reference) and return what they did; findings are held packed."""
    import pickle

    from audit.engines import dask as dask_module
    from audit.engines import shards
    from audit.engines.held_findings import pack

    assert pickle.loads(pickle.dumps(shards._sign_frame)) is shards._sign_frame
    assert shards._sign_frame.__name__ == "_sign_frame"  # Dask names its keys after it
    pairs = pd.DataFrame({"band": [0, 0, 1], "key": np.array([7, 7, 7], np.uint64), "row": [3, 1, 2]})
    assert dask_module._partition_pairs(pairs).values.tolist() == [[1, 3]]
    rows = [("r1", "c", "info", "text", "m", {"limit": 3}, None)]
    assert pickle.loads(pack(rows)) == rows


_MAPPED_BLOCKS = """
import ctypes, sys
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "fixed":
    from audit.engines.worker_memory import map_large_blocks
    map_large_blocks()
libc.free(libc.malloc(30 << 20))  # a mapped block freed: glibc's threshold would rise to 30 MB
before = libc.mallinfo2().hblks
block = libc.malloc(16 << 20)  # larger than any free space in the heap
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_client_keeps_large_blocks_mapped_apart() -> None:
    """After :func:`map_large_blocks` a 16 MB block the heap cannot hold gets pages of its own even
    once a 30 MB one was freed (without it, glibc's threshold has risen to 30 MB and the heap is
    grown for the block instead)."""
    root = Path(__file__).resolve().parent.parent

    # glibc's own behaviour: no MALLOC_ setting of the environment (Dask's nanny exports
    # MALLOC_TRIM_THRESHOLD_, which also stops the threshold's rise).
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}

    def mapped(mode: str) -> int:
        command = [sys.executable, "-c", _MAPPED_BLOCKS, mode]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)
        return int(done.stdout)

    assert mapped("fixed") == 1
    assert mapped("glibc") == 0
