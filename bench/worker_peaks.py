"""Each kind of worker task's memory peak above the worker's memory when it started, per partition
size, in whole runs over partitions (``--engine dask``, suites and an index on, so every kind of
task runs).

A worker plugin (:class:`TaskPeaks`) resets the worker process's peak RSS (``VmHWM``, through
``/proc/self/clear_refs``) as each task starts and reads it as the task ends: the kernel's own
high-water mark, so no spike between two samples is missed. Workers run one thread, so one task
at a time: its peak less the worker's RSS at its start is what the task added. What rises between
tasks (a shuffle's transfers, results received) is kept apart, as ``(between tasks)``. Keyed by the
task's name prefix (Dask's ``key_split``); one run per partition size, on a fresh cluster::

    $ .venv/bin/python bench/worker_peaks.py --records 100000 --part-mib 4,8,16

Prints, per prefix and size, the tasks run, the largest and the median rise (MiB), and the largest
over the partition size; then each worker's peak RSS over the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distributed import Client, WorkerPlugin

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
MIB = 2**20


def _status(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of this process's ``/proc/self/status``, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """The process's ``VmHWM`` set back to its RSS now (Linux: ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


class TaskPeaks(WorkerPlugin):
    """Per task prefix, (RSS at the task's start, the peak RSS while it ran), bytes; and the
    worker's peak RSS over everything (tasks and between them)."""

    name = "task-peaks"

    def setup(self, worker: Any) -> None:
        from dask.utils import key_split

        self.key_split = key_split
        self.tasks: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.peak = _status("VmHWM")
        self.started: int | None = None
        self.ended = _status("VmRSS")
        _reset_peak()

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing":
            between = _status("VmHWM")
            # Before the first task the worker imports the run's modules (the engine's client.run).
            name = "(between tasks)" if self.tasks else "(imports, before the first task)"
            self.tasks[name].append((self.ended, between))
            self.peak = max(self.peak, between)
            _reset_peak()
            self.started = _status("VmRSS")
        elif start in ("executing", "long-running") and finish != "long-running" and self.started is not None:
            top = _status("VmHWM")
            self.tasks[self.key_split(key)].append((self.started, top))
            self.peak = max(self.peak, top)
            self.started, self.ended = None, _status("VmRSS")
            _reset_peak()

    def report(self) -> dict[str, Any]:
        return {"tasks": dict(self.tasks), "peak": max(self.peak, _status("VmHWM"))}


def _report(dask_worker: Any) -> dict[str, Any]:
    return dask_worker.plugins[TaskPeaks.name].report()


def measure(
    path: Path, part_bytes: int, workers: int, memory_limit: str | None, scratch: Path
) -> dict[str, dict[str, Any]]:
    """One whole run of ``path`` in partitions of ``part_bytes``: each worker's :meth:`TaskPeaks.report`."""
    import audit
    from audit.engines import shards
    from audit.engines.worker_memory import local_cluster

    shards.PART_BYTES = part_bytes  # the largest size: what a run without a limit is cut into
    with local_cluster(workers, memory_limit) as cluster, Client(cluster) as client:
        client.register_plugin(TaskPeaks(), name=TaskPeaks.name)
        config = audit.AuditConfig(
            expectations=str(ROOT / "expectations"),
            index=str(scratch / f"index-{part_bytes}.sqlite"),
            engine="dask",
            scheduler=cluster.scheduler_address,
        )
        result = audit.run([path], out=scratch / f"out-{part_bytes}", config=config, force=True)
        assert result.part_bytes == part_bytes or memory_limit, result.part_bytes
        return client.run(_report)


def table(reports: dict[float, dict[str, dict[str, Any]]]) -> str:
    """Per prefix and partition size (MiB): tasks, largest and median rise (MiB), largest / size."""
    rows = defaultdict(dict)
    for mib, per_worker in reports.items():
        rises = defaultdict(list)
        for report in per_worker.values():
            for prefix, pairs in report["tasks"].items():
                rises[prefix] += [max(0, top - start) for start, top in pairs]
        for prefix, values in rises.items():
            rows[prefix][mib] = (len(values), max(values) / MIB, statistics.median(values) / MIB)
    sizes = sorted(reports)
    lines = ["prefix".ljust(28) + "".join(f"{f'{s:g} MiB: n, max, median, max/part':>36}" for s in sizes)]
    order = sorted(rows, key=lambda p: -max(v[1] for v in rows[p].values()))
    for prefix in order:
        cells = []
        for s in sizes:
            n, top, median = rows[prefix].get(s, (0, 0.0, 0.0))
            cells.append(f"{n:>8} {top:>8.1f} {median:>8.1f} {top / s:>8.2f}  ")
        lines.append(prefix[:28].ljust(28) + "".join(cells))
    for mib, per_worker in reports.items():
        peaks = ", ".join(f"{r['peak'] / MIB:.0f}" for r in per_worker.values())
        lines.append(f"{mib:g} MiB partitions: workers' peak RSS {peaks} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--part-mib", default="4,8,16", help="partition sizes, MiB")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default=None, help="per worker (default: none)")
    parser.add_argument("--json", type=Path, default=None, help="the workers' reports, to this file")
    args = parser.parse_args()
    path = CACHE / f"corpus_{args.records}_1.jsonl"
    reports = {}
    with tempfile.TemporaryDirectory(prefix="worker-peaks-") as scratch:
        for mib in [float(s) for s in args.part_mib.split(",")]:
            reports[mib] = measure(path, int(mib * MIB), args.workers, args.memory_limit, Path(scratch))
            print(table(reports), flush=True)  # so far: a size's figures are kept if a later one fails
            if args.json:
                args.json.write_text(json.dumps({str(k): v for k, v in reports.items()}))


if __name__ == "__main__":
    main()
