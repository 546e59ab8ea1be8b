"""Dedup benchmark: this engine and its peers on the same planted-duplicate corpora.

Run by hand (not a test)::

    .venv/bin/python bench/dedup_bench.py --sizes 10000,100000
    .venv/bin/python bench/dedup_bench.py --sizes 1000000 --engines ours,audit-run

For each size a corpus is generated once (:mod:`bench.corpus`, cached under ``bench/.cache``),
then every engine runs in its own child process (one process tree; peak RSS is the child's),
timed from raw texts to duplicate pairs or clusters. Quality is scored against the planted
truth (:mod:`bench.quality`). Results are printed as a Markdown table and written to JSON.

Peers get the same normalisation (:func:`audit.normalise.normalise_text`), word 5-gram
shingles, 128 permutations and threshold 0.8, used the way their documentation shows:

- ``datasketch-update``: ``MinHash.update`` per shingle, ``MinHashLSH`` insert + query;
- ``datasketch-bulk``: ``MinHash.bulk``, then the same LSH;
- ``rensa``: ``RMinHash.update`` per document, ``RMinHashLSH`` (16 bands);
- ``datatrove``: its MinHash signature -> buckets -> cluster steps, run in-process on files;
- ``ours``: :func:`audit.dedup.find_duplicates` (raw texts in, clusters out);
- ``audit-run``: the whole ``scrape-audit run`` on the corpus as JSONL (ingest to report).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import generate  # noqa: E402
from bench.quality import labels_from_pairs, score  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
ENGINES = ["ours", "audit-run", "datasketch-update", "datasketch-bulk", "rensa", "datatrove"]
OURS = {"ours", "audit-run"}
NUM_PERM, THRESHOLD, NGRAM = 128, 0.8, 5


def _shingle_strings(texts: list[str]) -> list[list[str]]:
    from audit.normalise import normalise_text

    out = []
    for text in texts:
        words = normalise_text(text).split()
        out.append([" ".join(words[i : i + NGRAM]) for i in range(max(1, len(words) - NGRAM + 1))])
    return out


def _lsh_pairs(minhashes: list) -> np.ndarray:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for n, minhash in enumerate(minhashes):
            session.insert(n, minhash, check_duplication=False)
    return np.array([(n, m) for n, mh in enumerate(minhashes) for m in lsh.query(mh) if m != n]).reshape(
        -1, 2
    )


def run_datasketch_update(frame: pd.DataFrame) -> np.ndarray:
    from datasketch import MinHash

    minhashes = []
    for shingles in _shingle_strings(frame["text"].tolist()):
        minhash = MinHash(num_perm=NUM_PERM, seed=1)
        for shingle in shingles:
            minhash.update(shingle.encode("utf-8"))
        minhashes.append(minhash)
    return labels_from_pairs(len(frame), _lsh_pairs(minhashes))


def run_datasketch_bulk(frame: pd.DataFrame) -> np.ndarray:
    from datasketch import MinHash

    shingles = [[s.encode("utf-8") for s in doc] for doc in _shingle_strings(frame["text"].tolist())]
    return labels_from_pairs(len(frame), _lsh_pairs(MinHash.bulk(shingles, num_perm=NUM_PERM, seed=1)))


def run_rensa(frame: pd.DataFrame) -> np.ndarray:
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=16)
    minhashes = []
    for n, shingles in enumerate(_shingle_strings(frame["text"].tolist())):
        minhash = RMinHash(num_perm=NUM_PERM, seed=1)
        minhash.update(shingles)
        lsh.insert(n, minhash)
        minhashes.append(minhash)
    pairs = [(n, m) for n, mh in enumerate(minhashes) for m in lsh.query(mh) if m != n]
    return labels_from_pairs(len(frame), np.array(pairs).reshape(-1, 2))


def run_datatrove(frame: pd.DataFrame) -> np.ndarray:
    import datatrove.utils.hashes.xxhash as datatrove_xxhash
    import xxhash
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupSignature,
    )

    # datatrove 0.10.1 hashes str shingles; xxhash 4 accepts only bytes. Encoding first is what
    # xxhash 3 did inside, so the shim restores datatrove's documented behaviour, at its cost.
    datatrove_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(
        data.encode("utf-8") if isinstance(data, str) else data
    )
    config = MinhashConfig(n_grams=NGRAM)
    with tempfile.TemporaryDirectory() as work:
        docs = (Document(text=t, id=str(n)) for n, t in enumerate(frame["text"].tolist()))
        MinhashDedupSignature(output_folder=f"{work}/sigs", config=config).run(docs, rank=0, world_size=1)
        for bucket in range(config.num_buckets):
            MinhashDedupBuckets(
                input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=config
            ).run(rank=bucket, world_size=config.num_buckets)
        MinhashDedupCluster(
            input_folder=f"{work}/buckets", output_folder=f"{work}/ids", config=config, save_cluster_id=True
        ).run()
        labels = np.arange(len(frame))
        for path in Path(f"{work}/ids").glob("*.clusters"):
            values = np.fromfile(path, dtype="<u4").reshape(-1, 2)
            # Cluster ids count from 0, like row numbers: offset them so they name no unclustered row.
            labels[values[:, 0]] = values[:, 1] + len(frame)
        return labels


def run_ours(frame: pd.DataFrame) -> np.ndarray:
    from audit.dedup import find_duplicates

    result = find_duplicates(frame[["id", "title", "text", "url"]])
    return _labels_from_clusters(frame, result.clusters)


def run_audit(frame: pd.DataFrame, path: Path) -> np.ndarray:
    import audit

    with tempfile.TemporaryDirectory() as out:
        result = audit.run([str(path)], out=Path(out) / "report")
    return _labels_from_clusters(frame, result.clusters)


def _labels_from_clusters(frame: pd.DataFrame, clusters: pd.DataFrame) -> np.ndarray:
    row_of = {record_id: n for n, record_id in enumerate(frame["id"])}
    labels = np.arange(len(frame))
    for members in clusters["members"]:
        rows = [row_of[m] for m in members]
        labels[rows] = rows[0]
    return labels


def parameters(engine: str) -> str:
    """The candidate step's parameters each engine used, read from the library itself."""
    if engine in OURS:
        from audit.dedup import DedupConfig
        from audit.dedup.lsh import choose_banding

        config = DedupConfig()
        whole = choose_banding(config.threshold, config.num_perm)
        prefix = config.prefix_banding
        return (
            f"{config.num_perm} perm, word {config.word_n}-grams, threshold {config.threshold}, "
            f"{whole.bands}x{whole.rows} bands + prefix {prefix.bands}x{prefix.rows} "
            f"(first {config.prefix_shingles} shingles), verified"
        )
    if engine.startswith("datasketch"):
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        return (
            f"{NUM_PERM} perm, word {NGRAM}-grams, MinHashLSH(threshold={THRESHOLD}): {lsh.b}x{lsh.r} bands"
        )
    if engine == "rensa":
        return f"{NUM_PERM} perm, word {NGRAM}-grams, RMinHashLSH(threshold={THRESHOLD}, num_bands=16)"
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    config = MinhashConfig(n_grams=NGRAM)
    return (
        f"{config.num_buckets * config.hashes_per_bucket} perm, word {config.n_grams}-grams, "
        f"MinhashConfig defaults: {config.num_buckets}x{config.hashes_per_bucket} bands"
    )


def child(engine: str, corpus: Path, labels_out: Path) -> None:
    """Run one engine on one corpus; print seconds and peak RSS as JSON."""
    frame = pd.read_parquet(corpus)
    jsonl = corpus.with_suffix(".jsonl")
    if engine == "audit-run" and not jsonl.exists():
        frame[["id", "title", "text", "url"]].to_json(jsonl, orient="records", lines=True, force_ascii=False)
    # The machine is shared: CPU seconds (this process and its workers) and the load average
    # are recorded next to the wall time, and the RSS with the corpus loaded next to the peak.
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    if engine == "audit-run":
        labels = run_audit(frame, jsonl)
    else:
        labels = globals()[f"run_{engine.replace('-', '_')}"](frame)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    np.save(labels_out, labels)
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": round(cpu, 2),
                "load_average_at_start": round(load, 2),
                "rss_corpus_loaded_mb": round(loaded_kb / 1024),
                "peak_rss_mb": round(peak_kb / 1024),
                "parameters": parameters(engine),
            }
        )
    )


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def corpus_path(size: int, seed: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"corpus_{size}_{seed}.parquet"
    if not path.exists():
        generate(size, seed).to_parquet(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="dedup benchmark (see module docstring)")
    parser.add_argument("--sizes", default="10000", help="comma-separated corpus sizes")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--peers-up-to",
        type=int,
        default=None,
        help="run the peers only at sizes up to this (ours and audit-run run at every size)",
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per engine run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "CORPUS", "LABELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        corpus = corpus_path(size, args.seed)
        truth = pd.read_parquet(corpus, columns=["kind", "base", "jaccard", "kept", "ambiguous", "group"])
        for engine in args.engines.split(","):
            if engine not in OURS and args.peers_up_to is not None and size > args.peers_up_to:
                continue
            with tempfile.TemporaryDirectory() as work:
                labels_path = Path(work) / "labels.npy"
                command = [sys.executable, __file__, "--child", engine, str(corpus), str(labels_path)]
                try:
                    done = subprocess.run(
                        command,
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                        env=os.environ | {"PYTHONPATH": str(ROOT)},
                    )
                except subprocess.TimeoutExpired:
                    results.append({"size": size, "engine": engine, "error": f"timeout {args.timeout}s"})
                    continue
                if done.returncode != 0:
                    results.append(
                        {"size": size, "engine": engine, "error": done.stderr.strip().splitlines()[-1]}
                    )
                    continue
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                quality = score(truth, np.load(labels_path))
            results.append(
                {
                    "size": size,
                    "engine": engine,
                    **measured,
                    "docs_per_s": round(size / measured["seconds"]),
                    **quality,
                }
            )
            print(_row(results[-1]), flush=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "load_average": os.getloadavg(),
                "results": results,
            },
            indent=1,
        )
    )
    print("\n" + table(results))


def _row(result: dict) -> str:
    if "error" in result:
        return f"| {result['size']:,} | {result['engine']} | error: {result['error']} |"
    recall = result["recall"]
    return (
        f"| {result['size']:,} | {result['engine']} | {result['docs_per_s']:,} | {result['seconds']:.1f} | "
        f"{result.get('cpu_seconds', '')} | {result.get('load_average_at_start', '')} | "
        f"{result['peak_rss_mb']:,} | {recall['jaccard>=0.9']} | {recall['jaccard 0.8-0.9']} | "
        f"{recall['truncated kept>=50%']} | {recall['truncated kept<50%']} | {result['precision']} | "
        f"{result['f1']} |"
    )


def table(results: list[dict]) -> str:
    head = (
        "| records | engine | docs/s | seconds | CPU s | load | peak RSS MB | recall J>=0.9 | "
        "recall J 0.8-0.9 | recall truncated >=50% | recall truncated <50% | precision | F1 |\n|"
        + "---|"
        * 13
    )
    return "\n".join([head] + [_row(r) for r in results])


if __name__ == "__main__":
    main()
