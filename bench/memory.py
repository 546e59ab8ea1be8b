"""Peak memory (RSS) of a whole run against the number of records; run by hand, not in tests.

    .venv/bin/python bench/memory.py 50000 100000 200000 [--chars 1000] [--dup-rate 0.1]

For each size, writes a synthetic JSONL corpus (texts of about ``--chars`` characters drawn
from a fixed vocabulary, a ``--dup-rate`` share of them re-cased copies of earlier texts), runs
``audit.run`` on it in a fresh interpreter with outputs written, and prints the child's peak RSS
and wall time; the last column is the slope between consecutive sizes scaled to a million
records. The measured figures are in the README ("Memory").
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
    parser.add_argument("sizes", nargs="+", type=int)
    parser.add_argument("--chars", type=int, default=1000)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    args = parser.parse_args()
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
