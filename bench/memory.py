"""Peak memory (RSS) of a whole run against the number of records; run by hand, not in tests.

    .venv/bin/python bench/memory.py 50000 100000 200000 [--chars 1000] [--dup-rate 0.1]
    .venv/bin/python bench/memory.py --corpus bench/.cache/corpus_1000000_1.jsonl [--fork-checks]

For each size, writes a synthetic JSONL corpus (texts of about ``--chars`` characters drawn
from a fixed vocabulary, a ``--dup-rate`` share of them re-cased copies of earlier texts), runs
``audit.run`` on it in a fresh interpreter with outputs written, and prints the child's peak RSS
and wall time; the last column is the slope between consecutive sizes scaled to a million
records. The measured figures are in the README ("Memory").

With ``--corpus``, runs that file instead and prints JSON: the main process's peak RSS after
each stage (VmHWM), and the check workers' memory sampled every 0.2 s from
``/proc/PID/smaps_rollup``: their largest RSS, PSS (shared pages divided among the processes
sharing them) and USS (private pages: what the fork really added), each per worker and summed
over the workers alive at once; with the main process's PSS beside it, the process tree's
footprint is main PSS + workers' PSS. The checks fork their workers only when a core is idle;
``--fork-checks`` makes them fork whatever the load (so that a busy machine measures the
same process tree as an idle one).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, time
import audit
started = time.perf_counter()
result = audit.run([sys.argv[1]], out=sys.argv[2])
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(len(result.records), len(result.removed), round(seconds, 1), round(peak_mb, 1))
"""


TREE_CHILD = """
import json, os, sys, threading, time
import audit, audit.checks

if sys.argv[3] == "fork":
    audit.checks.idle_cores = lambda: float(audit.checks.cores())  # every core counted idle

def field(path, key):
    try:
        with open(path) as handle:
            return next((int(l.split()[1]) for l in handle if l.startswith(key + ":")), 0) // 1024
    except OSError:  # the process ended meanwhile
        return 0

def children():
    found = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                found.update(int(pid) for pid in handle.read().split())
        except OSError:
            pass
    return found

workers = {"rss": 0, "pss": 0, "uss": 0, "rss_sum": 0, "pss_sum": 0, "uss_sum": 0, "count": 0}
done = threading.Event()

def sample():
    seen = set()
    while not done.wait(0.2):
        now = {"rss": 0, "pss": 0, "uss": 0}
        for pid in children():
            seen.add(pid)
            rollup = f"/proc/{pid}/smaps_rollup"
            sizes = {"rss": field(rollup, "Rss"), "pss": field(rollup, "Pss"),
                     "uss": field(rollup, "Private_Clean") + field(rollup, "Private_Dirty")}
            for key, value in sizes.items():
                workers[key] = max(workers[key], value)
                now[key] += value
        for key, value in now.items():
            workers[key + "_sum"] = max(workers[key + "_sum"], value)
        workers["count"] = len(seen)

peaks, seconds = {}, {}
def progress(step, state, elapsed):
    if state == "done":
        peaks[step], seconds[step] = field("/proc/self/status", "VmHWM"), round(elapsed, 2)

threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
result = audit.run([sys.argv[1]], out=sys.argv[2], progress=progress)
done.set()
print(json.dumps({
    "records": len(result.records), "findings": len(result.findings),
    "seconds": round(time.perf_counter() - started, 1), "stage_seconds": seconds,
    "main_peak_mb_after_stage": peaks, "main_pss_mb_at_end": field("/proc/self/smaps_rollup", "Pss"),
    "check_workers_mb": workers, "load_average": os.getloadavg()[0],
}))
"""


def measure_tree(corpus: Path, fork_checks: bool) -> None:
    """The ``--corpus`` mode: one run of ``corpus``; its JSON line is printed."""
    with tempfile.TemporaryDirectory() as tmp:
        mode = "fork" if fork_checks else "auto"
        child = [sys.executable, "-c", TREE_CHILD, str(corpus), str(Path(tmp) / "out"), mode]
        print(subprocess.run(child, check=True, capture_output=True, text=True).stdout.strip())


def write_corpus(path: Path, records: int, chars: int, dup_rate: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(20000)]
    texts: list[str] = []
    with path.open("w", encoding="utf-8") as handle:
        for number in range(records):
            if texts and rng.random() < dup_rate:
                text = rng.choice(texts).upper()
            else:
                words, size = [], 0
                while size < chars:
                    word = rng.choice(vocabulary)
                    words.append(word)
                    size += len(word) + 1
                text = " ".join(words) + "."
                if len(texts) < 10000:  # a bounded pool to copy from
                    texts.append(text)
            handle.write(json.dumps({"id": f"r{number}", "title": f"Title {number}", "text": text}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--corpus", type=Path, help="measure this JSONL file's run and its check workers")
    parser.add_argument("--fork-checks", action="store_true", help="with --corpus: fork the check workers")
    parser.add_argument("--chars", type=int, default=1000)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    args = parser.parse_args()
    if args.corpus is not None:
        measure_tree(args.corpus, args.fork_checks)
        return
    print(f"{'records':>9} {'removed':>8} {'run s':>7} {'peak MB':>8} {'MB per 1M (slope)':>18}")
    previous: tuple[int, float] | None = None
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus.jsonl"
            write_corpus(corpus, size, args.chars, args.dup_rate)
            output = subprocess.run(
                [sys.executable, "-c", CHILD, str(corpus), str(Path(tmp) / "out")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
        records, removed, seconds, peak = int(output[0]), int(output[1]), float(output[2]), float(output[3])
        slope = f"{(peak - previous[1]) / (records - previous[0]) * 1e6:,.0f}" if previous else "-"
        print(f"{records:>9} {removed:>8} {seconds:>7.1f} {peak:>8.0f} {slope:>18}", flush=True)
        previous = (records, peak)


if __name__ == "__main__":
    main()
