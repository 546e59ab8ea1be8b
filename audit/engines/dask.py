"""The Dask engine: signing and LSH candidates on dask.dataframe partitions, on a Dask cluster.

- **sign**: the texts are a dask.dataframe; each partition is signed by the signer's own
  :func:`audit.dedup.signer.sign_batch` on a worker, with the same settings (so the band keys of
  both signatures are made there too), and the partitions' arrays are gathered in order
  (:func:`audit.dedup.signer.collect`), exactly what :func:`sign_texts` builds.
- **candidates**: the band keys of each chunk of rows become rows ``(band, key, row)``; they are
  shuffled on ``(band, key)`` so that a bucket lands in one partition, and each partition yields
  its buckets' pairs with :func:`audit.dedup.lsh.bucket_pairs` (rows in ascending order, as
  locally). The pair set is the local engine's, so the dedup result is identical.

Verification (:func:`audit.dedup.verify.verify_pairs`), connected components, the chaining
guard and the cluster rows stay in the calling process (:func:`audit.dedup.find_duplicates`),
which also holds the texts and the shingle hashes.

``dask_engine(None)`` starts a LocalCluster on 127.0.0.1, one single-threaded worker process per
core, and closes it afterwards; ``dask_engine("tcp://HOST:PORT")`` uses a running scheduler.

Example::

    >>> with dask_engine(None, workers=2) as engine:                      # doctest: +SKIP
    ...     result = find_duplicates(records, DedupConfig(), engine=engine)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from audit.dedup.lsh import bucket_pairs, unique_pairs
from audit.dedup.signer import SignedCorpus, SignerSettings, Texts, collect, sign_batch

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: Texts per partition (one task each): the signer's batch size, ~40x its bytes of working memory.
TEXTS_PER_PARTITION = 2_000
KEY_COLUMNS = {"band": np.int64, "key": np.uint64, "row": np.int64}


def _sign_partition(frame: pd.DataFrame, settings: SignerSettings) -> tuple[np.ndarray, ...]:
    return sign_batch(frame["text"].tolist(), settings)


def _band_rows(keys: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """Rows ``(band, key, row)`` of one chunk; ``keys`` is its columns of ``SignedCorpus.band_keys``
    (whole-text bands, then prefix bands: every band has its own number)."""
    parts = [
        pd.DataFrame({"band": np.full(len(rows), band, np.int64), "key": keys[band], "row": rows})
        for band in range(len(keys))
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


class DaskEngine:
    """Signs and finds candidates on the cluster behind ``client``."""

    def __init__(self, client: Client, texts_per_partition: int = TEXTS_PER_PARTITION) -> None:
        self.client = client
        self.texts_per_partition = texts_per_partition

    def _partitions(self, count: int) -> int:
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        return max(1, min(count, max(workers, -(-count // self.texts_per_partition))))

    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
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

    def candidates(self, signed: SignedCorpus, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        keys = signed.band_keys
        assert keys is not None, "sign with SignerSettings(banding=...)"
        if len(rows) < 2 or len(keys) == 0:
            return np.empty((0, 2), np.int64)
        npartitions = self._partitions(len(rows))
        chunks = np.array_split(np.arange(len(rows)), npartitions)
        # Each chunk's band keys go to the cluster once, as a task argument.
        pieces = [
            dask.delayed(_band_rows)(keys[:, rows[chunk]], rows[chunk]) for chunk in chunks if len(chunk)
        ]
        meta = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in KEY_COLUMNS.items()})
        frame = dd.from_delayed(pieces, meta=meta, verify_meta=False)
        shuffled = frame.shuffle(on=["band", "key"], npartitions=npartitions)
        pair_meta = pd.DataFrame({"a": pd.Series(dtype=np.int64), "b": pd.Series(dtype=np.int64)})
        pairs = self.client.compute(shuffled.map_partitions(_partition_pairs, meta=pair_meta)).result()
        return unique_pairs(pairs[["a", "b"]].to_numpy(np.int64))


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
