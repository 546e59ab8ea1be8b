"""The whole ``scrape-audit run`` (JSONL ingest to every output written): docs/s, seconds per
stage, CPU time and peak RSS (and the peak after each stage: where it rose); run by hand,
results in the README ("Whole-run benchmark").

    .venv/bin/python bench/run_bench.py --records 100000,1000000

The corpus is the planted-duplicate corpus of ``bench/corpus.py`` (seed abstracts, ~1.4 KB
texts with titles and URLs), cached as JSONL in ``bench/.cache/`` and shared with
``dedup_bench.py``. Each size runs in a fresh interpreter, so its peak RSS is its own; the CPU
column adds the run's worker processes (dedup signing, checks, ingest and write), as does each
stage's CPU. The machine is shared: the load average before and after each run is printed next
to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dedup_bench import corpus_path  # noqa: E402

CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
import audit

def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

started, cpu_started = time.perf_counter(), cpu()
timings, peaks, stage_cpu, cpu_at = {}, {}, {}, {}
def high_water_mb():
    # VmHWM: this process's peak RSS so far (Linux); the stage that raised it is the culprit.
    with open("/proc/self/status") as status:
        return next(round(int(l.split()[1]) / 1024) for l in status if l.startswith("VmHWM"))
def progress(step, state, seconds):
    if state == "start":
        cpu_at[step] = cpu()
    if state == "done":
        timings[step] = round(seconds, 2)
        stage_cpu[step] = round(cpu() - cpu_at[step], 2)  # this process and its finished workers
        peaks[step] = high_water_mb()
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as out:
    result = audit.run([sys.argv[1]], out=Path(out) / "report", progress=progress)
print(json.dumps({
    "records": len(result.records),
    # From the report: len(result.clean) would build the cleaned corpus as a DataFrame after
    # the run and count its memory in the peak.
    "kept": result.report["counts"]["kept"],
    "removed": result.report["counts"]["removed"],
    "findings": len(result.found),  # the compact table: result.findings would decode every finding
    "seconds": round(time.perf_counter() - started, 2),
    "cpu_seconds": round(cpu() - cpu_started, 2),
    "stages": timings,
    "stage_cpu_seconds": stage_cpu,
    "peak_rss_mb_after_stage": peaks,
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "peak_rss_workers_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
}))
"""


def jsonl_corpus(size: int, seed: int) -> Path:
    """The cached corpus of ``size`` records as JSONL (id, title, text, url), built on first use.

    Written in batches: pandas' ``to_json`` of the whole 1M-record frame peaked above 15 GB.
    """
    parquet = corpus_path(size, seed)
    jsonl = parquet.with_suffix(".jsonl")
    if not jsonl.exists():
        import pyarrow.parquet as pq

        partial = jsonl.with_suffix(".jsonl.partial")
        with partial.open("w", encoding="utf-8") as handle:
            for batch in pq.ParquetFile(parquet).iter_batches(50_000, columns=["id", "title", "text", "url"]):
                handle.write(batch.to_pandas().to_json(orient="records", lines=True, force_ascii=False))
        partial.rename(jsonl)
    return jsonl


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--records", default="100000", help="comma-separated corpus sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="append each result as a JSON line to this file")
    args = parser.parse_args()
    for size in (int(s) for s in args.records.split(",")):
        corpus = jsonl_corpus(size, args.seed)
        load_before = os.getloadavg()[0]
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(corpus), str(corpus.parent)], capture_output=True, text=True
        )
        if child.returncode:  # say why, not only that it failed
            sys.exit(f"{size:,} records: the run failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result |= {
            "started": started,
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "docs_per_s": round(size / result["seconds"]),
        }
        print(
            f"{size:>9,} records  {result['docs_per_s']:>6,} docs/s  {result['seconds']:7.1f} s wall  "
            f"{result['cpu_seconds']:7.1f} s CPU  peak RSS {result['peak_rss_mb']:,} MB "
            f"(workers {result['peak_rss_workers_mb']:,} MB)  load {result['load_before']} -> "
            f"{result['load_after']}  {started}"
        )
        print("           stages (s): " + ", ".join(f"{k} {v}" for k, v in result["stages"].items()))
        stage_cpu = result["stage_cpu_seconds"].items()
        print("           stage CPU (s): " + ", ".join(f"{k} {v}" for k, v in stage_cpu))
        peaks = result["peak_rss_mb_after_stage"].items()
        print("           peak RSS after stage (MB): " + ", ".join(f"{k} {v:,}" for k, v in peaks))
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
