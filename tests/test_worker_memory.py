"""A worker's memory under a limit: the floor under the pause threshold and a task's peak under
the terminate threshold, each binding in turn; and a real run whose workers stay under terminate."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client

import audit
from audit.engines import worker_memory as memory
from audit.engines.worker_memory import (
    MIN_PART_BYTES,
    MemoryLimitError,
    Thresholds,
    fitting_part_bytes,
    memory_floor,
    part_bounds,
    partition_bytes,
    task_peak,
    task_start,
    thresholds,
)
from bench.corpus import generate

MB = 2**20
BASE, HELD, LARGEST = 263 * MB, 70 * MB, 16 * MB
DEFAULT = Thresholds(pause=0.8, terminate=0.95)


def _peak_fits(limit: int, part: int, fractions: Thresholds) -> bool:
    """A task's peak in partitions of ``part`` above the most a worker starts it with, under terminate."""
    floor = memory_floor(BASE, part, HELD, fractions.floor)
    return task_start(limit, floor, fractions) + task_peak(part) <= fractions.terminate * limit  # type: ignore[operator]


def _floor_fits(limit: int, part: int, fractions: Thresholds) -> bool:
    return memory_floor(BASE, part, HELD, fractions.floor).unspillable <= fractions.floor * limit


def test_the_thresholds_are_dasks_settings() -> None:
    assert thresholds(dask.config.get("distributed.worker.memory")) == DEFAULT  # Dask's defaults
    assert thresholds({"pause": 0.6, "terminate": 0.9}) == Thresholds(0.6, 0.9)
    assert thresholds({"pause": False, "terminate": 0.9}) == Thresholds(None, 0.9)
    assert thresholds({"pause": 0.7, "terminate": False}) == Thresholds(0.7, None)
    # The floor's fraction: pause; without, the nanny's restart; without either, the limit.
    assert [Thresholds(p, t).floor for p, t in [(0.6, 0.9), (None, 0.9), (None, None)]] == [0.6, 0.9, 1.0]


def test_a_tasks_peak_grows_with_its_partition() -> None:
    assert task_peak(0) == memory.TASK_PEAK_FIXED
    assert task_peak(8 * MB) - task_peak(4 * MB) == memory.TASK_PEAK_PER_PART_BYTE * 4 * MB
    floor = memory_floor(BASE, 4 * MB, HELD, 0.8)
    assert task_start(700 * MB, floor, DEFAULT) == int(0.8 * 700 * MB)  # just under pause, whatever it holds
    # Without pausing, what it cannot spill between tasks: the floor less a task's work.
    assert task_start(700 * MB, floor, Thresholds(None, 0.95)) == floor.residue
    assert floor.residue == floor.unspillable - memory.WORK_PER_PART_BYTE * 4 * MB


def _binding(limits_mb: range, thresholds: Thresholds) -> list[str]:
    """The constraint that binds at each limit (MiB) where a partition fits; checks that the size
    chosen meets both and that one byte more breaks the binding one."""
    binding = []
    for limit_mb in limits_mb:
        limit = limit_mb * MB
        bounds = part_bounds(limit, BASE, HELD, thresholds)
        fits = fitting_part_bytes(limit, BASE, HELD, thresholds, 1 << 40)
        if fits is None:
            assert min(bounds.values()) < MIN_PART_BYTES
            continue
        assert fits == min(bounds.values()) >= MIN_PART_BYTES
        assert _floor_fits(limit, fits, thresholds) and _peak_fits(limit, fits, thresholds)
        name = min(bounds, key=bounds.__getitem__)
        assert not (_floor_fits if name == "floor" else _peak_fits)(limit, fits + 1, thresholds)
        binding.append(name)
    return binding


def test_each_constraint_binds_in_turn() -> None:
    """Small limits: the floor binds (its fixed parts take most of the room); large ones: a task's
    peak (the room between pause and terminate grows slower with the limit than the room under
    pause). Either way the size chosen satisfies both, and one byte more breaks the binding one."""
    binding = _binding(range(480, 4000, 11), DEFAULT)
    # The floor up to a limit, a task's peak past it.
    crossing = binding.index("peak")
    assert crossing > 0 and set(binding[:crossing]) == {"floor"} and set(binding[crossing:]) == {"peak"}
    # At one limit, by the thresholds: terminate a task's peak in 4 MiB partitions above pause.
    narrow = Thresholds(pause=0.8, terminate=0.8 + (task_peak(4 * MB) + MB // 2) / (700 * MB))
    bounds = part_bounds(700 * MB, BASE, HELD, narrow)
    assert bounds["floor"] == part_bounds(700 * MB, BASE, HELD, DEFAULT)["floor"] > bounds["peak"]
    assert 4 * MB <= fitting_part_bytes(700 * MB, BASE, HELD, narrow, LARGEST) < 5 * MB


def test_terminate_off_leaves_the_floor_alone() -> None:
    off = Thresholds(pause=0.8, terminate=None)
    for limit_mb in (560, 700, 900, 3000):
        bounds = part_bounds(limit_mb * MB, BASE, HELD, off)
        assert list(bounds) == ["floor"]
        assert bounds["floor"] == part_bounds(limit_mb * MB, BASE, HELD, DEFAULT)["floor"]
    # Past the size a task's peak allows: nothing restarts the worker.
    assert fitting_part_bytes(3000 * MB, BASE, HELD, off, 1 << 40) > fitting_part_bytes(
        3000 * MB, BASE, HELD, DEFAULT, 1 << 40
    )


def test_pause_off_puts_a_tasks_peak_on_what_it_cannot_spill() -> None:
    """Without pausing the floor sits under terminate, and a task's peak on top of what the worker
    cannot spill between tasks must too: the peak binds at small limits (its fixed part)."""
    off = Thresholds(pause=None, terminate=0.95)
    binding = _binding(range(440, 3000, 13), off)
    assert binding[0] == "peak"
    # Both off: the floor under the limit itself, nothing else.
    assert list(part_bounds(700 * MB, BASE, HELD, Thresholds(None, None))) == ["floor"]


class _Client:
    """What :func:`partition_bytes` asks of a client: the workers' limits and their measurements."""

    def __init__(self, limit: int, fractions: Thresholds) -> None:
        self.limit, self.fractions = limit, fractions

    def scheduler_info(self) -> dict[str, Any]:
        return {"workers": {"tcp://w:1": {"memory_limit": self.limit}}}

    def run(self, function: Any) -> dict[str, Any]:
        return {"tcp://w:1": (BASE, self.fractions)}


def test_the_refusal_names_the_binding_constraint() -> None:
    # Too small for the floor: the run would stall.
    with pytest.raises(MemoryLimitError, match=r"below the floor .* so the run would stall"):
        partition_bytes(_Client(450 * MB, DEFAULT), 2 * HELD, LARGEST)  # type: ignore[arg-type]
    # Room under pause, none between pause and terminate for a task's peak.
    narrow = Thresholds(pause=0.8, terminate=0.81)
    assert part_bounds(900 * MB, BASE, HELD, narrow)["floor"] >= MIN_PART_BYTES
    with pytest.raises(MemoryLimitError) as refused:
        partition_bytes(_Client(900 * MB, narrow), 2 * HELD, LARGEST)  # type: ignore[arg-type]
    message = str(refused.value)
    assert "too small for a task's peak" in message and "its pause threshold (80%)" in message
    assert f"holding up to {int(0.8 * 900 * MB) // MB} MiB" in message
    assert f"rises ~{task_peak(MIN_PART_BYTES) // MB} MiB" in message
    assert f"past the {int(0.81 * 900 * MB) // MB} MiB where its nanny restarts it (terminate, 81%" in message
    # Without pausing: the start is what it cannot spill.
    floor = memory_floor(BASE, MIN_PART_BYTES, 2 * HELD, 0.95)
    between = (floor.unspillable / 0.95, (floor.residue + task_peak(MIN_PART_BYTES)) / 0.95)
    assert between[0] < between[1]  # the floor fits, a task's peak on its residue does not
    with pytest.raises(MemoryLimitError, match=r"too small for a task's peak.*\(what it cannot spill\)"):
        partition_bytes(_Client(int(sum(between) / 2), Thresholds(None, 0.95)), 2 * HELD, LARGEST)  # type: ignore[arg-type]
    # Room for both: the smaller bound.
    chosen = partition_bytes(_Client(2000 * MB, DEFAULT), 2 * HELD, 1 << 40)  # type: ignore[arg-type]
    assert chosen == min(part_bounds(2000 * MB, BASE, HELD, DEFAULT).values())


def test_a_run_under_a_limit_keeps_every_worker_under_terminate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run on two workers under a small limit, cut by a task's peak (the model's fixed
    part raised so that the peak constraint binds on a small corpus): each worker's peak RSS,
    sampled by the kernel's high-water mark around every task, stays under its terminate
    threshold, no worker is restarted, and the outputs are the local engine's."""
    from audit.engines.worker_memory import _worker_memory, local_cluster
    from bench.worker_peaks import TaskPeaks, _report

    path = tmp_path / "corpus.jsonl"
    frame = generate(600, seed=7)
    lines = (json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(frame["text"]))
    path.write_text("".join(lines))
    size = path.stat().st_size
    with local_cluster(2, "700MB") as cluster, Client(cluster) as client:
        client.register_plugin(TaskPeaks(), name=TaskPeaks.name)
        before = client.run(os.getpid)
        fractions = next(iter(client.run(_worker_memory).values()))[1]
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
        target = size // 4  # partitions of about a quarter of the file, chosen by the peak's term
        room = (fractions.terminate - fractions.pause) * limit
        monkeypatch.setattr(memory, "TASK_PEAK_FIXED", int(room - memory.TASK_PEAK_PER_PART_BYTE * target))
        monkeypatch.setattr(memory, "MIN_PART_BYTES", 10_000)
        config = audit.AuditConfig(expectations=None, engine="dask", scheduler=cluster.scheduler_address)
        result = audit.run([path], out=tmp_path / "dask", config=config)
        reports = client.run(_report)
        assert client.run(os.getpid) == before  # same workers, same processes: none restarted
        assert all(nanny.process.process.pid in before.values() for nanny in cluster.workers.values())
    assert result.part_bytes == target
    assert len(reports) == 2
    for report in reports.values():
        assert sum(len(pairs) for name, pairs in report["tasks"].items() if name != "(between tasks)") > 10
        assert report["peak"] < fractions.terminate * limit
    audit.run([path], out=tmp_path / "local", config=audit.AuditConfig(expectations=None))
    for name in ("clean.jsonl", "removed.jsonl", "findings.jsonl", "clusters.jsonl", "quarantine.jsonl"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
