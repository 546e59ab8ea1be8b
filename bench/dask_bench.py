"""Dedup records/s: the local engine vs the Dask engine on a LocalCluster of 1 and 2 workers,
and each worker's peak memory under a ``memory_limit``.

Times ``find_duplicates`` on a generated corpus (bench/corpus.py), normalised beforehand; the
cluster's start-up is timed apart. Peak memory is each worker process's peak RSS after
the run, as sampled by its Dask monitor (the client's ``ru_maxrss`` too: it holds the texts,
signatures and the proof).

    $ .venv/bin/python bench/dask_bench.py --records 20000,100000 --memory-limit 400MB
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.dedup import DedupConfig, find_duplicates
from audit.engines.dask import dask_engine
from audit.normalise import add_normalised
from audit.pipeline import completeness
from bench.corpus import generate


def _peak_mb() -> float:
    """This process's peak RSS (Linux keeps the parent's across fork/exec: use for the client only)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_peak_mb(dask_worker) -> float:
    """A worker's peak RSS as its own monitor sampled it (every 0.5 s) during its life."""
    return max(dask_worker.monitor.quantities["memory"]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="20000")
    parser.add_argument("--memory-limit", default="400MB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for size in [int(s) for s in args.records.split(",")]:
        records = add_normalised(generate(size, seed=args.seed).assign(source="bench", line=1))
        rank = completeness(records)
        started = time.perf_counter()
        local = find_duplicates(records, DedupConfig(), rank)
        seconds = time.perf_counter() - started
        print(f"{size:,} records, local: {seconds:.1f} s, {size / seconds:,.0f} records/s")
        for workers in (1, 2):
            started = time.perf_counter()
            with dask_engine(None, workers=workers, memory_limit=args.memory_limit) as engine:
                start_up = time.perf_counter() - started
                started = time.perf_counter()
                result = find_duplicates(records, DedupConfig(), rank, engine=engine)
                seconds = time.perf_counter() - started
                peaks = engine.client.run(_worker_peak_mb)
            same = result.duplicate_of == local.duplicate_of and result.clusters.equals(local.clusters)
            print(
                f"{size:,} records, dask {workers} worker(s): {seconds:.1f} s, "
                f"{size / seconds:,.0f} records/s "
                f"(cluster start-up {start_up:.1f} s; same result as local: {same}); peak RSS per worker "
                f"(limit {args.memory_limit}): {', '.join(f'{v:.0f} MB' for v in peaks.values())}"
            )
        print(f"client (this process) peak RSS so far: {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
