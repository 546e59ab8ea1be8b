"""Incremental index vs one run: a generated corpus dealt into daily batches.

Each batch goes through ``audit.run(..., AuditConfig(index=...))`` in turn (SQLite, or Redis
with ``--redis URL``); the same records are also audited in one run over their union. Prints
seconds per batch, total, the kept counts (equal when the index works) and the index size.

    $ .venv/bin/python bench/index_bench.py --records 20000 --days 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import audit
from audit.index import open_index
from bench.corpus import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--redis", help="redis://HOST:PORT/DB instead of a SQLite file")
    args = parser.parse_args()
    corpus = generate(args.records, seed=args.seed)
    day = np.random.default_rng(args.seed).integers(0, args.days, len(corpus))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in range(args.days):
            path = Path(tmp) / f"day{n}.jsonl"
            rows = corpus.loc[day == n, ["id", "title", "text", "url"]].to_dict("records")
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            paths.append(path)
        location = args.redis or str(Path(tmp) / "index.sqlite")
        config = audit.AuditConfig(index=location, expectations=None, checks=())
        kept, seconds = 0, []
        for path in paths:
            started = time.perf_counter()
            result = audit.run([path], out=None, config=config)
            seconds.append(time.perf_counter() - started)
            kept += result.report["counts"]["kept"]
            info = result.report["index"]
            print(
                f"{path.name}: {len(result.records):,} records, {info['candidates_from_index']:,} "
                f"candidates from the index, {info['removed_as_copies_of_earlier_runs']:,} removed as "
                f"copies of earlier days, {seconds[-1]:.1f} s"
            )
        started = time.perf_counter()
        union = audit.run(paths, out=None, config=audit.AuditConfig(expectations=None, checks=()))
        one_run = time.perf_counter() - started
        stats = open_index(location, create=False).stats()
        print(
            f"through the index: {sum(seconds):.1f} s, {kept:,} kept; one run over all days: "
            f"{one_run:.1f} s, {union.report['counts']['kept']:,} kept"
        )
        stored = max(1, stats["records"] + stats["removed_copies"])
        print(
            f"index: {stats['records']:,} kept + {stats['removed_copies']:,} copies, "
            f"{stats['band_keys']:,} band keys, {stats['bytes'] / 1e6:.1f} MB "
            f"({stats['bytes'] / stored:,.0f} bytes per record)"
        )


if __name__ == "__main__":
    main()
