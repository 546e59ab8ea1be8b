"""Dedup records/s: the local engine vs the Dask engine on a LocalCluster of 1 and 2 workers,
and each worker's peak memory under a ``memory_limit``.

Times ``find_duplicates`` on a cached planted corpus (``bench/.cache/corpus_N_SEED.parquet``,
made by bench/dedup_bench.py; generated here when missing), texts normalised beforehand. The
cluster's start-up is timed apart. Per run: wall seconds, CPU seconds of this process (and of
the local signer's forked pool) and of every Dask worker process, the 1-minute load average at
the start, each worker's peak RSS (``VmHWM`` of the worker process) and bytes it spilled to
disk, and this process's peak RSS so far (it holds the records: ingest, checks and clean run in
the calling process). Each Dask result is compared with the local one (clusters, edges,
``duplicate_of``; a sha1 of them is recorded too). One JSON object per run is appended to ``--out``.

    $ .venv/bin/python bench/dask_bench.py --records 100000 --workers 1,2
    $ .venv/bin/python bench/dask_bench.py --records 1000000 --workers 1 --memory-limit 700MB --no-local

``--whole-run`` times the whole ``scrape-audit run`` instead (``bench/.cache/corpus_N_SEED.jsonl``
in, every output written; suites off): the local engine and ``--engine dask`` over partitions,
each in its own process, so that each row's client peak RSS is that run's alone (``--input``: another
file of the corpus, e.g. its Parquet, CSV or ``.jsonl.gz`` export; ``--records`` then only labels
the rows); ``client_steps``
gives each step's seconds, the client's RSS at its end and its peak during it (sampled every
50 ms), so the step where the client peaks is known; ``part_mb`` the partition size the
workers' memory limits chose (:func:`audit.engines.worker_memory.partition_bytes`). The Dask
runs' outputs are compared byte for byte with the local run's (or with ``--reference DIR``: its
files, or their sha1 in ``DIR/SHA1SUMS``)::

    $ .venv/bin/python bench/dask_bench.py --whole-run --records 100000 --workers 1,2 \\
          --reference /work/ref/c100k
    $ .venv/bin/python bench/dask_bench.py --whole-run --records 1000000 --workers 1 \\
          --memory-limit 800MB --no-local
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

from audit.dedup import DedupConfig, DedupResult, find_duplicates
from audit.engines.dask import dask_engine
from audit.normalise import add_normalised
from audit.pipeline import completeness
from bench.corpus import generate

CACHE = Path(__file__).resolve().parent / ".cache"


def _peak_mb() -> float:
    """This process's peak RSS."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the local signer's pool)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker_stats(dask_worker: Any) -> dict[str, float]:
    """A worker process's CPU seconds, peak RSS (the kernel's high-water mark) and bytes spilled."""
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    times = os.times()
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    spilled = sum(v for (label, unit), v in metrics.items() if label == "disk-write" and unit == "bytes")
    return {
        "cpu_s": round(times.user + times.system, 1),
        "peak_rss_mb": round(peak_kb / 1024),
        "spilled_mb": round(spilled / 2**20),
    }


def _corpus(size: int, seed: int) -> pd.DataFrame:
    path = CACHE / f"corpus_{size}_{seed}.parquet"
    if path.exists():
        frame = pd.read_parquet(path, columns=["id", "title", "text", "url"])
    else:
        frame = generate(size, seed)[["id", "title", "text", "url"]]
    return add_normalised(frame.assign(source="bench", line=1))


def _same(result: DedupResult, local: DedupResult | None) -> bool | None:
    if local is None:
        return None
    return (
        result.duplicate_of == local.duplicate_of
        and result.clusters.equals(local.clusters)
        and result.edges.equals(local.edges)
    )


def _digest(result: DedupResult) -> str:
    """sha1 of the clusters, edges and ``duplicate_of`` (compares runs made in different processes)."""
    copies = json.dumps(sorted(result.duplicate_of.items()))
    text = result.clusters.to_json() + result.edges.to_json() + copies
    return hashlib.sha1(text.encode()).hexdigest()


def _record(out: Path, row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)
    with out.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


OUTPUTS = ("clean.jsonl", "removed.jsonl", "findings.jsonl", "clusters.jsonl", "quarantine.jsonl")


def _file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reference_sha1(directory: Path) -> dict[str, str]:
    """The outputs' sha1 in ``directory``: its ``SHA1SUMS`` (``sha1sum``'s lines) when it has one
    (a 1M run's files are not kept), else the files' own."""
    sums = directory / "SHA1SUMS"
    if sums.exists():
        listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        return {name: listed[name] for name in OUTPUTS}
    return {name: _file_sha1(directory / name) for name in OUTPUTS}


class _StepSampler:
    """This process's RSS sampled every 50 ms, its peak kept per step of the run (a progress hook),
    and the RSS at each step's end: where the client's peak is reached."""

    def __init__(self) -> None:
        import threading

        self.step, self.steps = "start", {}  # step -> {"s", "rss_end_mb", "peak_mb"}
        self._peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _rss() -> int:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            step, rss = self.step, self._rss()
            self._peaks[step] = max(self._peaks.get(step, 0), rss)

    def __call__(self, name: str, what: str, seconds: float) -> None:
        if what == "start":
            self.step = name
            return
        rss = self._rss()
        peak = max(self._peaks.get(name, 0), rss)
        mb = {"rss_end_mb": round(rss / 2**20), "peak_mb": round(peak / 2**20)}
        self.steps[name] = {"s": round(seconds, 1), **mb}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _one_run(engine: str, path: Path, out: Path, workers: int, memory_limit: str | None) -> dict[str, Any]:
    """One whole run in this process (``engine``: local or dask): seconds, CPU, peak RSS."""
    from distributed import Client

    import audit
    from audit.engines.worker_memory import local_cluster

    def cpu_now() -> float:
        # Local: this process and its forked pools. Dask: this process alone (with the
        # LocalCluster's scheduler); the workers' CPU is in workers_cpu_s.
        own = resource.getrusage(resource.RUSAGE_SELF)
        return _cpu() if engine == "local" else own.ru_utime + own.ru_stime

    load, cpu, started = os.getloadavg()[0], cpu_now(), time.perf_counter()
    row: dict[str, Any] = {"engine": engine}
    sampler = _StepSampler()
    if engine == "local":
        audit.run([path], out=out, config=audit.AuditConfig(), force=True, progress=sampler)
    else:
        with local_cluster(workers, memory_limit) as cluster, Client(cluster) as client:  # as --engine dask
            start_up = time.perf_counter() - started
            config = audit.AuditConfig(engine="dask", scheduler=cluster.scheduler_address)
            result = audit.run([path], out=out, config=config, force=True, progress=sampler)
            stats = client.run(_worker_stats)
            limits = [round(w["memory_limit"] / 2**20) for w in client.scheduler_info()["workers"].values()]
        row |= {
            "engine": f"dask over partitions, {workers} worker(s)",
            "start_up_s": round(start_up, 1),
            "memory_limit_mb": limits,
            "part_mb": round(result.part_bytes / 2**20, 1),  # chosen from the limits
            "workers_cpu_s": [s["cpu_s"] for s in stats.values()],
            "worker_peak_rss_mb": [s["peak_rss_mb"] for s in stats.values()],
            "worker_spilled_mb": [s["spilled_mb"] for s in stats.values()],
            "timings_s": {k: round(v, 1) for k, v in result.timings.items()},
        }
    seconds = time.perf_counter() - started
    sampler.close()
    return row | {
        "client_steps": sampler.steps,
        "seconds": round(seconds, 1),
        "cpu_s": round(cpu_now() - cpu, 1),
        "load": load,
        "client_peak_rss_mb": round(_peak_mb()),
        "sha1": {name: _file_sha1(out / name) for name in OUTPUTS},
    }


def whole_runs(args: argparse.Namespace) -> None:
    """``--whole-run``: each configuration in a fresh process; outputs compared."""
    for size in [int(s) for s in args.records.split(",")]:
        path = args.input or CACHE / f"corpus_{size}_{args.seed}.jsonl"
        base = {"records": size, "input_mb": round(path.stat().st_size / 2**20), "whole_run": True}
        base["input"] = path.name
        base["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        with tempfile.TemporaryDirectory(prefix="dask-bench-") as scratch:
            reference = _reference_sha1(args.reference) if args.reference else None
            runs = ([("local", 0)] if not args.no_local else []) + [
                ("dask", int(w)) for w in args.workers.split(",")
            ]
            for engine, workers in runs:
                command = [sys.executable, __file__, "--one-run", engine, "--workers", str(workers)]
                command += ["--one-path", str(path), "--one-out", f"{scratch}/{engine}{workers}"]
                command += ["--memory-limit", args.memory_limit] if args.memory_limit else []
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                row = base | json.loads(done.stdout.strip().splitlines()[-1])
                if engine == "local" and reference is None:
                    reference = row["sha1"]
                row["same_as_local"] = None if reference is None else row["sha1"] == reference
                _record(args.out, row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="100000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--memory-limit", default=None, help="per worker, e.g. 700MB (default: Dask's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-local", action="store_true", help="skip the local engine (no comparison)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results_dask.jsonl")
    parser.add_argument("--whole-run", action="store_true", help="time whole runs (see the doc)")
    parser.add_argument("--reference", type=Path, default=None, help="--whole-run: outputs to compare with")
    parser.add_argument(
        "--input",
        type=Path,
        default=None,
        help="--whole-run: this file instead (any format; --records its count)",
    )
    parser.add_argument("--one-run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one-path", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        row = _one_run(args.one_run, args.one_path, args.one_out, int(args.workers), args.memory_limit)
        print(json.dumps(row), flush=True)
        return
    if args.whole_run:
        whole_runs(args)
        return
    for size in [int(s) for s in args.records.split(",")]:
        records = _corpus(size, args.seed)
        text_mb = round(records["text"].str.len().sum() / 2**20)
        rank = completeness(records)
        base = {"records": size, "text_mb": text_mb, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
        local = None
        if not args.no_local:
            load, cpu, started = os.getloadavg()[0], _cpu(), time.perf_counter()
            local = find_duplicates(records, DedupConfig(), rank)
            seconds = time.perf_counter() - started
            _record(
                args.out,
                base
                | {
                    "engine": "local",
                    "seconds": round(seconds, 1),
                    "records_per_s": round(size / seconds),
                    "cpu_s": round(_cpu() - cpu, 1),
                    "load": load,
                    "client_peak_rss_mb": round(_peak_mb()),
                    "result_sha1": _digest(local),
                },
            )
        for workers in [int(w) for w in args.workers.split(",")]:
            started = time.perf_counter()
            with dask_engine(None, workers=workers, memory_limit=args.memory_limit) as engine:
                start_up = time.perf_counter() - started
                load, cpu, started = os.getloadavg()[0], _cpu(), time.perf_counter()
                result = find_duplicates(records, DedupConfig(), rank, engine=engine)
                seconds = time.perf_counter() - started
                client_cpu = _cpu() - cpu
                stats = engine.client.run(_worker_stats)
                limit = engine.client.scheduler_info()["workers"]
                limit_mb = [round(w["memory_limit"] / 2**20) for w in limit.values()]
            _record(
                args.out,
                base
                | {
                    "engine": f"dask, {workers} worker(s)",
                    "seconds": round(seconds, 1),
                    "records_per_s": round(size / seconds),
                    "start_up_s": round(start_up, 1),
                    "client_cpu_s": round(client_cpu, 1),
                    "workers_cpu_s": [s["cpu_s"] for s in stats.values()],
                    "load": load,
                    "memory_limit_mb": limit_mb,
                    "worker_peak_rss_mb": [s["peak_rss_mb"] for s in stats.values()],
                    "worker_spilled_mb": [s["spilled_mb"] for s in stats.values()],
                    "client_peak_rss_mb": round(_peak_mb()),
                    "seconds_per_stage": result.stats["seconds"],
                    "same_as_local": _same(result, local),
                    "result_sha1": _digest(result),
                },
            )


if __name__ == "__main__":
    main()
