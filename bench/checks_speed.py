"""Time each check on the seed records repeated N times (default 34: about 20,000 records).

Usage::

    .venv/bin/python bench/checks_speed.py [--copies 34]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from audit.checks import CHECKS, CheckContext
from audit.ingest import read_inputs
from audit.normalise import add_normalised

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=34)
    args = parser.parse_args(argv)
    seeds = read_inputs([SEEDS]).records
    records = pd.concat([seeds] * args.copies, ignore_index=True)
    records["id"] = [f"r{i}" for i in range(len(records))]
    records = add_normalised(records)
    megabytes = records["text"].str.len().sum() / 1e6
    print(f"{len(records)} records, {megabytes:.1f} MB of text")
    total = 0.0
    for name, check in CHECKS.items():
        started = time.perf_counter()
        findings = check().run(records, CheckContext())
        seconds = time.perf_counter() - started
        total += seconds
        print(f"{name:15s} {seconds:5.1f} s  {len(findings):6d} findings")
    print(f"{'all checks':15s} {total:5.1f} s  ({len(records) / total:,.0f} records/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
