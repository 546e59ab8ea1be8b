"""Time each check, wall and CPU, on the seed records repeated N times (default 34: about 20,000
records), or on a corpus file read and deduplicated first (``--corpus``, e.g. the 100k benchmark
corpus: the checks then see its dedup clusters, as in a run).

Usage::

    .venv/bin/python bench/checks_speed.py [--copies 34]
    .venv/bin/python bench/checks_speed.py --corpus bench/.cache/corpus_100000_1.jsonl

CPU seconds include worker processes; the machine is shared, so the load average is printed
before and after. The truncation check's three rounds (census, rows: vocabulary and proven
copies, batches) are timed on one process too, as ``run_checks`` runs them.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's audit, not an installed one

from audit.checks import CHECKS, CheckContext, batches, run_checks  # noqa: E402
from audit.ingest import read_inputs  # noqa: E402
from audit.parallel import paused_gc  # noqa: E402

SEEDS = ROOT / "seeds"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=34)
    parser.add_argument("--corpus", help="a corpus file to read and deduplicate instead of the seeds")
    args = parser.parse_args(argv)
    context = CheckContext()
    if args.corpus:
        from audit.pipeline import AuditConfig, AuditResult, Dedup, Ingest, Normalise

        state = AuditResult(paths=[args.corpus], config=AuditConfig())
        for step in (Ingest(), Normalise(), Dedup()):
            step.run(state)
        # The checks need no norm_text column: dropped, as the run may not keep one.
        records = state.records.drop(columns=["norm_text"], errors="ignore")
        context = CheckContext(clusters=state.clusters)
    else:
        seeds = read_inputs([SEEDS]).records
        records = pd.concat([seeds] * args.copies, ignore_index=True)
        records["id"] = [f"r{i}" for i in range(len(records))]
    megabytes = records["text"].str.len().sum() / 1e6
    print(f"{len(records)} records, {megabytes:.1f} MB of text; {load()}")
    total_wall = total_cpu = 0.0
    for name, check in CHECKS.items():
        wall, cpu = time.perf_counter(), cpu_seconds()
        with paused_gc():  # as run_checks runs them
            findings = check().run(records, context)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        total_wall += wall
        total_cpu += cpu
        print(f"{name:20s} {wall:6.2f} s wall {cpu:6.2f} s CPU  {len(findings):7d} findings")
    print(f"{'each check in turn':20s} {total_wall:6.2f} s wall {total_cpu:6.2f} s CPU")
    truncation_rounds(records, context)
    for workers in (1, 2):
        wall, cpu = time.perf_counter(), cpu_seconds()
        findings = run_checks(records, context=context, workers=workers)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        print(
            f"run_checks, {workers} proc  {wall:6.2f} s wall {cpu:6.2f} s CPU  {len(findings):7d} findings "
            f"({len(records) / wall:,.0f} records/s)"
        )
    print(load())
    return 0


def truncation_rounds(records: pd.DataFrame, context: CheckContext) -> None:
    """CPU seconds of each round of the truncation check over batches, on this process."""
    spent: dict[str, float] = {}
    forked_map = batches.forked_map

    def timed(function, shared, items, workers):  # type: ignore[no-untyped-def]
        cpu = cpu_seconds()
        results = forked_map(function, shared, items, workers)
        spent[function.__name__.strip("_")] = cpu_seconds() - cpu
        return results

    batches.forked_map = timed
    try:
        cpu = cpu_seconds()
        found = run_checks(records, ["truncation"], context=context, workers=1)
        cpu = cpu_seconds() - cpu
    finally:
        batches.forked_map = forked_map
    rounds = ", ".join(f"{name} {seconds:.2f}" for name, seconds in spent.items())
    print(f"{'truncation rounds':20s} {cpu:6.2f} s CPU ({rounds})  {len(found):7d} findings")


if __name__ == "__main__":
    raise SystemExit(main())
