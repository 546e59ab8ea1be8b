"""The Dask engine: signing and LSH candidates on dask.dataframe partitions, on a Dask cluster.

- **sign**: the texts are a dask.dataframe; each partition is signed by the signer's own
  :func:`audit.dedup.signer.sign_batch` on a worker, and the partitions' arrays are gathered
  in order (:func:`audit.dedup.signer.collect`), exactly what :func:`sign_texts` builds.
- **candidates**: each partition of signatures becomes rows ``(band, key, row)`` (the engine's
  own :func:`audit.dedup.lsh.band_keys`); the rows are shuffled on ``(band, key)`` so that a
  bucket lands in one partition, and each partition yields its buckets' pairs with
  :func:`audit.dedup.lsh.bucket_pairs` (rows in ascending order, as locally). The pair set is
  the local engine's, so the dedup result is identical.

- **proof**: candidate pairs are proven in tasks of 20,000 pairs, each with the shingle sets and
  texts of its own rows, by the engine's :class:`audit.dedup.verify.PairVerifier`.

Connected components, the chaining guard and the cluster rows stay in the calling process
(:func:`audit.dedup.find_duplicates`), which also holds the texts and signatures.

``dask_engine(None)`` starts a LocalCluster on 127.0.0.1, one single-threaded worker process per
core, and closes it afterwards; ``dask_engine("tcp://HOST:PORT")`` uses a running scheduler.

Example::

    >>> with dask_engine(None, workers=2) as engine:                      # doctest: +SKIP
    ...     result = find_duplicates(records, DedupConfig(), engine=engine)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from audit.dedup.engine import Proof, VerifyJob
from audit.dedup.lsh import Banding, band_keys, bucket_pairs, unique_pairs
from audit.dedup.shingles import ShingleBatch, hash_batch
from audit.dedup.signer import SignedCorpus, SignerSettings, collect, sign_batch
from audit.dedup.verify import PairVerifier

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: Candidate pairs proven per task.
PAIRS_PER_TASK = 20_000
#: Texts per partition (one task each): the signer's batch size, ~40x its bytes of working memory.
TEXTS_PER_PARTITION = 2_000
KEY_COLUMNS = {"band": np.int64, "key": np.uint64, "row": np.int64}


def _sign_partition(frame: pd.DataFrame, settings: SignerSettings) -> tuple[np.ndarray, ...]:
    return sign_batch(frame["text"].tolist(), settings)


def _band_rows(
    signatures: list[np.ndarray], rows: np.ndarray, bandings: list[tuple[int, Banding]]
) -> pd.DataFrame:
    """Rows ``(band, key, row)`` of one partition; ``bandings[i]`` is ``(first band number, banding)``
    of ``signatures[i]``, so the bands of both signatures have distinct numbers."""
    parts = [
        pd.DataFrame(
            {
                "band": np.full(len(rows), offset + band, np.int64),
                "key": band_keys(block, banding, band),
                "row": rows,
            }
        )
        for block, (offset, banding) in zip(signatures, bandings, strict=True)
        for band in range(banding.bands)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(KEY_COLUMNS))


def _partition_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Pairs of rows sharing a ``(band, key)`` bucket, as the local banding makes them."""
    found = []
    for _, group in frame.sort_values("row", kind="stable").groupby("band", sort=True):
        rows = group["row"].to_numpy()
        found.append(rows[bucket_pairs(group["key"].to_numpy())])
    pairs = np.concatenate(found) if found else np.empty((0, 2), np.int64)
    return pd.DataFrame({"a": pairs[:, 0].astype(np.int64), "b": pairs[:, 1].astype(np.int64)})


def _verify_chunk(
    pairs: list[tuple[int, int]],
    sets: ShingleBatch,
    texts: list[str],
    threshold: float,
    word_n: int,
    char_n: int,
) -> list[Proof]:
    """Prove ``pairs`` (numbered as rows of ``sets``/``texts``) with the engine's own verifier."""

    def sequences(rows: list[int]) -> ShingleBatch:
        return hash_batch([texts[r] for r in rows], word_n, char_n)

    return PairVerifier(sets, sequences, threshold).verify_many(pairs)


class DaskEngine:
    """Signs and finds candidates on the cluster behind ``client``."""

    def __init__(self, client: Client, texts_per_partition: int = TEXTS_PER_PARTITION) -> None:
        self.client = client
        self.texts_per_partition = texts_per_partition

    def _partitions(self, count: int) -> int:
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        return max(1, min(count, max(workers, -(-count // self.texts_per_partition))))

    def sign(self, texts: Sequence[str], settings: SignerSettings) -> SignedCorpus:
        frame = dd.from_pandas(pd.DataFrame({"text": list(texts)}), npartitions=self._partitions(len(texts)))
        tasks = [dask.delayed(_sign_partition)(part, settings) for part in frame.to_delayed()]
        futures = self.client.compute(tasks)

        def arriving() -> Iterator[tuple[np.ndarray, ...]]:
            # In order, each released once copied: a worker does not hold every signed partition.
            for n, future in enumerate(futures):
                yield future.result()
                future.release()
                futures[n] = None

        return collect(arriving(), len(texts), settings)

    def candidates(self, signatures: Sequence[tuple[np.ndarray, Banding]], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if len(rows) < 2 or not signatures:
            return np.empty((0, 2), np.int64)
        bandings, offset = [], 0
        for _, banding in signatures:
            bandings.append((offset, banding))
            offset += banding.bands
        npartitions = self._partitions(len(rows))
        chunks = np.array_split(np.arange(len(rows)), npartitions)
        # Each chunk's signatures go to the cluster once, as a task argument.
        pieces = [
            dask.delayed(_band_rows)([sigs[rows[chunk]] for sigs, _ in signatures], rows[chunk], bandings)
            for chunk in chunks
            if len(chunk)
        ]
        meta = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in KEY_COLUMNS.items()})
        keys = dd.from_delayed(pieces, meta=meta, verify_meta=False)
        shuffled = keys.shuffle(on=["band", "key"], npartitions=npartitions)
        pair_meta = pd.DataFrame({"a": pd.Series(dtype=np.int64), "b": pd.Series(dtype=np.int64)})
        pairs = self.client.compute(shuffled.map_partitions(_partition_pairs, meta=pair_meta)).result()
        return unique_pairs(pairs[["a", "b"]].to_numpy(np.int64))

    def verify(self, pairs: list[tuple[int, int]], job: VerifyJob) -> list[Proof]:
        """Pairs proven in tasks of :data:`PAIRS_PER_TASK`; each task gets the shingle sets and
        texts of its rows only (renumbered), and the results come back in order."""
        sets, tasks = job.verifier.sets, []
        for start in range(0, len(pairs), PAIRS_PER_TASK):
            chunk = np.asarray(pairs[start : start + PAIRS_PER_TASK], np.int64).reshape(-1, 2)
            rows, local = np.unique(chunk, return_inverse=True)
            parts = [sets.of(int(r)) for r in rows]
            offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
            batch = ShingleBatch(np.concatenate(parts) if parts else np.empty(0, np.uint32), offsets)
            renumbered = [(int(a), int(b)) for a, b in local.reshape(-1, 2).tolist()]
            texts = job.texts(rows.tolist())
            tasks.append(
                dask.delayed(_verify_chunk)(
                    renumbered, batch, texts, job.verifier.threshold, job.config.word_n, job.config.char_n
                )
            )
        found: list[Proof] = []
        for part in self.client.gather(self.client.compute(tasks)):
            found.extend(part)
        return found


@contextmanager
def dask_engine(
    scheduler: str | None = None, workers: int | None = None, memory_limit: str | None = None
) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` on the scheduler at ``scheduler``, or on a LocalCluster started here
    (127.0.0.1 only, ``workers`` single-threaded processes, default one per core)."""
    if scheduler is not None:
        with Client(scheduler) as client:
            yield DaskEngine(client)
        return
    options = {"memory_limit": memory_limit} if memory_limit else {}
    with (
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **options,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskEngine(client)
