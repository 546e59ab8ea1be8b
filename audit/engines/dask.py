"""The Dask engine: signing, LSH candidates, verification and connected components on a Dask cluster.

- **sign** (:meth:`DaskEngine.sign_held`): the texts go to the workers a partition at a time
  (``client.scatter``, a bounded window in flight); each partition is signed there by the
  signer's own :func:`audit.dedup.signer.sign_batch` with the same settings, and its shingle
  hashes and band keys *stay on the worker* (a future per partition; Dask spills them to disk
  past the worker's memory limit). Only each text's xxh64 and shingle count come back.
- **candidates**: each partition turns its leaders' band keys into rows ``(band, key, row)``
  on its worker; they are shuffled on ``(band, key)`` so that a bucket lands in one partition,
  and each partition yields its buckets' pairs with :func:`audit.dedup.lsh.bucket_pairs` (rows
  in ascending order, as locally). The pair set is the local engine's.
- **verification** (:meth:`DaskEngine.verifier`): each signed partition keeps the shingles of
  its candidate rows only (a dask.dataframe ``(row, seq)``, the hashes as bytes) and drops the
  rest and the band keys; pairs ``(pair, a, b)`` are merged with it on ``a`` and on ``b`` (two
  hash joins), and each joined partition is verified by :func:`audit.dedup.verify.verify_pairs`
  on the workers. Only ``(pair, jaccard, containment, relation)`` come back: the numbers of
  the local verification, bit for bit.
- **components** (:meth:`DaskEngine.components`): rounds over a dask.dataframe of edges in
  label space: each partition labels its own components (scipy) and proposes each label's
  local minimum, the smallest proposal per label relabels nodes and edges, and edges inside a
  label are dropped, until none is left. A component's label is its smallest row, so labels
  order components as scipy's do.

The chaining guard's rounds (:func:`audit.dedup.clusters.split_chains_bulk`) run in the calling
process, but each round's verification and components are the engine's. What the caller holds:
per record its text hash and shingle count (16 bytes), the candidate pairs, verified numbers,
labels and edges; not the shingles nor the band keys.

``dask_engine(None)`` starts a LocalCluster on 127.0.0.1, one single-threaded worker process per
core, and closes it afterwards; ``dask_engine("tcp://HOST:PORT")`` uses a running scheduler.

Example::

    >>> with dask_engine(None, workers=2) as engine:                      # doctest: +SKIP
    ...     result = find_duplicates(records, DedupConfig(), engine=engine)
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from audit.dedup.clusters import component_labels
from audit.dedup.engine import Signed, Verify
from audit.dedup.lsh import bucket_pairs, unique_pairs
from audit.dedup.shingles import ShingleBatch
from audit.dedup.signer import SignedCorpus, SignerSettings, Texts, _texts_slice, collect, sign_batch
from audit.dedup.verify import VerifiedPairs, verify_pairs
from audit.engines.worker_memory import local_cluster, releasing

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, Future
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: Texts per partition (one task each): the signer's batch size, ~40x its bytes of working memory.
TEXTS_PER_PARTITION = 2_000
#: Pairs (or edges) per partition of the verification and component frames.
PAIRS_PER_PARTITION = 100_000
#: Signing partitions in flight per worker: bounds the texts a worker holds at once.
WINDOW_PER_WORKER = 2
KEY_COLUMNS = {"band": np.int64, "key": np.uint64, "row": np.int64}
SEQ_META = pd.DataFrame({"row": pd.Series(dtype=np.int64), "seq": pd.Series(dtype=object)})
VERIFIED_META = pd.DataFrame(
    {
        "pair": pd.Series(dtype=np.int64),
        "jaccard": pd.Series(dtype=np.float64),
        "containment": pd.Series(dtype=np.float64),
        "relation": pd.Series(dtype=np.int8),
    }
)
#: Object columns (the shingles as bytes) stay Python objects, not Arrow strings.
_CONFIG = {"dataframe.convert-string": False}


@releasing
def _sign_partition(frame: pd.DataFrame, settings: SignerSettings) -> tuple[np.ndarray, ...]:
    return sign_batch(frame["text"].tolist(), settings)


@releasing
def _sign_held(texts: list[str], settings: SignerSettings) -> tuple[np.ndarray, ...]:
    """One partition signed on its worker: (shingle hashes, offsets, text hashes, band keys)."""
    hashes, offsets, _, _, text_hashes, band_keys = sign_batch(texts, settings)
    return hashes, offsets, text_hashes, band_keys


def _summary(held: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """What the caller gets of a signed partition: text hashes and shingle counts."""
    return held[2], np.diff(held[1])


def _band_rows(keys: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """Rows ``(band, key, row)`` of one chunk; ``keys`` is its columns of ``SignedCorpus.band_keys``
    (whole-text bands, then prefix bands: every band has its own number)."""
    parts = [
        pd.DataFrame({"band": np.full(len(rows), band, np.int64), "key": keys[band], "row": rows})
        for band in range(len(keys))
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(KEY_COLUMNS))


@releasing
def _held_band_rows(held: tuple[np.ndarray, ...], local: np.ndarray, start: int) -> pd.DataFrame:
    """:func:`_band_rows` of rows ``local`` of a partition held on this worker (starting at row ``start``)."""
    return _band_rows(held[3][:, local], local + start)


@releasing
def _partition_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Pairs of rows sharing a ``(band, key)`` bucket, as the local banding makes them."""
    found = []
    for _, group in frame.sort_values("row", kind="stable").groupby("band", sort=True):
        rows = group["row"].to_numpy()
        found.append(rows[bucket_pairs(group["key"].to_numpy())])
    pairs = np.concatenate(found) if found else np.empty((0, 2), np.int64)
    return pd.DataFrame({"a": pairs[:, 0].astype(np.int64), "b": pairs[:, 1].astype(np.int64)})


@releasing
def _held_sequences(held: tuple[np.ndarray, ...], local: np.ndarray, start: int) -> pd.DataFrame:
    """Rows ``(row, seq)`` of rows ``local`` of a held partition: their shingle hashes in text
    order, as bytes (the band keys and the other rows' shingles are left behind)."""
    batch = ShingleBatch(held[0], held[1])
    seqs = [batch.of(int(n)).tobytes() for n in local]
    return pd.DataFrame({"row": (local + start).astype(np.int64), "seq": pd.Series(seqs, dtype=object)})


def _no_sequences() -> pd.DataFrame:
    return SEQ_META.copy()


@releasing
def _verify_partition(frame: pd.DataFrame, threshold: float, near: float | None) -> pd.DataFrame:
    """:func:`verify_pairs` of a partition of pairs joined with both rows' shingles."""
    if len(frame) == 0:
        return VERIFIED_META.copy()
    arrays = [np.frombuffer(seq, np.uint32) for seq in (*frame["seq_a"].tolist(), *frame["seq_b"].tolist())]
    offsets = np.zeros(len(arrays) + 1, np.int64)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    sequences = ShingleBatch(np.concatenate(arrays).astype(np.uint32, copy=False), offsets)
    count = len(frame)
    found = verify_pairs(
        sequences.as_sets(), sequences, np.arange(count), np.arange(count, 2 * count), threshold, near
    )
    return pd.DataFrame(
        {
            "pair": frame["pair"].to_numpy(np.int64),
            "jaccard": found.jaccard,
            "containment": found.containment,
            "relation": found.relation.astype(np.int8),
        }
    )


def _local_minima(frame: pd.DataFrame) -> pd.DataFrame:
    """For each label on this partition's edges ``(a, b)``: the smallest label of its component
    *within the partition* (scipy), as rows ``(label, smaller)``."""
    if len(frame) == 0:
        return pd.DataFrame({"label": pd.Series(dtype=np.int64), "smaller": pd.Series(dtype=np.int64)})
    ends = np.concatenate((frame["a"].to_numpy(np.int64), frame["b"].to_numpy(np.int64)))
    nodes, inverse = np.unique(ends, return_inverse=True)
    local = component_labels(len(nodes), inverse.reshape(2, -1).T)
    first = np.unique(local, return_index=True)[1]  # nodes are ascending: a component's first is its minimum
    return pd.DataFrame({"label": nodes, "smaller": nodes[first[local]]})


def _take_smaller(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` replaced by the merged-in ``smaller`` where there is one."""
    out = frame.copy()
    has = out["smaller"].notna().to_numpy()
    values = out[column].to_numpy(np.int64).copy()
    values[has] = out["smaller"].to_numpy()[has].astype(np.int64)
    out[column] = values
    return out


def _relabel(frame: dd.DataFrame, column: str, smaller: dd.DataFrame) -> dd.DataFrame:
    """``frame[column]`` replaced by its ``smaller`` label where it has one."""
    joined = frame.merge(smaller.rename(columns={"label": column}), on=column, how="left")
    columns = list(frame.columns)
    return joined.map_partitions(_take_smaller, column, meta=joined._meta)[columns]


def _moved(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["smaller"] < frame["label"]]


def _apart(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["a"] != frame["b"]]


@dataclass
class _Held:
    """Signed partitions on the workers: one future each, and each one's first row."""

    futures: list[Future]
    starts: np.ndarray
    #: Band keys per text (0: signed without banding).
    bands: int

    def split(self, rows: np.ndarray) -> Iterator[tuple[Future, np.ndarray, int]]:
        """Per partition: its future, the local numbers of ``rows`` (sorted) in it, its first row."""
        bounds = np.searchsorted(rows, self.starts)
        for n, future in enumerate(self.futures):
            start = int(self.starts[n])
            yield future, rows[bounds[n] : bounds[n + 1]] - start, start


def _rows_of(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The rows ``(row, seq)`` of ``frame`` whose row is one of ``rows`` (sorted)."""
    return frame[np.isin(frame["row"].to_numpy(np.int64), rows, assume_unique=True)]


@dataclass
class _Sequences:
    """The shingles of the verifiable rows, on the workers: pieces ``(row, seq)`` of ascending rows,
    each piece's first row in ``firsts`` (then a bound past the last)."""

    pieces: list[Future]
    firsts: np.ndarray
    rows: np.ndarray

    def of(self, client: Client, needed: np.ndarray) -> list[Future]:
        """The pieces holding ``needed`` (sorted rows), cut to those rows: a chaining-guard round
        verifies a few pairs, and its joins then shuffle their shingles only, not all of them."""
        if len(needed) == len(self.rows):  # every row (the first verification): the pieces as they are
            return self.pieces
        bounds = np.searchsorted(needed, self.firsts)
        picked = [
            client.submit(_rows_of, piece, needed[bounds[n] : bounds[n + 1]], pure=False)
            for n, piece in enumerate(self.pieces)
            if bounds[n + 1] > bounds[n]
        ]
        return picked or [client.submit(_no_sequences, pure=False)]


class DaskEngine:
    """Signs, finds candidates, verifies and labels components on the cluster behind ``client``."""

    def __init__(
        self,
        client: Client,
        texts_per_partition: int = TEXTS_PER_PARTITION,
        pairs_per_partition: int = PAIRS_PER_PARTITION,
    ) -> None:
        self.client = client
        self.texts_per_partition = texts_per_partition
        self.pairs_per_partition = pairs_per_partition
        #: Labels of the last few edge sets (the chaining guard's first round and the stats ask
        #: for the same graph, with other rounds between).
        self._labels: dict[str, np.ndarray] = {}
        #: Rounds of label propagation in the last :meth:`components` (for tests and benchmarks).
        self.rounds = 0

    def _workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def _partitions(self, count: int, per: int | None = None) -> int:
        per = per or self.texts_per_partition
        return max(1, min(count, max(self._workers(), -(-count // per))))

    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        """Signed partitions gathered here in order (the index stores every signature)."""
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

    def sign_held(self, texts: Texts, settings: SignerSettings) -> Signed:
        """Sign partition by partition on the workers; the shingles and band keys stay there."""
        count, per = len(texts), self.texts_per_partition
        starts = np.arange(0, count, per, dtype=np.int64)
        window = WINDOW_PER_WORKER * self._workers()
        held: list[Future] = []
        summaries: deque[Future] = deque()
        text_hashes = np.empty(count, np.uint64)
        counts = np.empty(count, np.int64)
        done = 0

        def receive() -> None:
            nonlocal done
            hashes, sizes = summaries.popleft().result()
            text_hashes[done : done + len(hashes)], counts[done : done + len(hashes)] = hashes, sizes
            done += len(hashes)

        for start in starts.tolist():
            if len(summaries) >= window:
                receive()  # a bounded window: the workers never hold every text at once
            # One future for the partition (a bare list would be scattered element by element).
            [part] = self.client.scatter([list(_texts_slice(texts, start, start + per))], hash=False)
            future = self.client.submit(_sign_held, part, settings, pure=False)
            held.append(future)
            summaries.append(self.client.submit(_summary, future, pure=False))
            del part  # released on the worker once signed
        while summaries:
            receive()
        return Signed(text_hashes, counts, _Held(held, np.append(starts, count), settings.key_bands()))

    def held(self, corpus: SignedCorpus) -> Signed:
        """A corpus signed in this process, scattered to the workers in partitions (as signed there)."""
        count, per = len(corpus.text_hashes), self.texts_per_partition
        starts = np.arange(0, count, per, dtype=np.int64)
        sequences = corpus.sequences
        keys = corpus.band_keys if corpus.band_keys is not None else np.empty((0, count), np.uint64)
        futures = []
        for start in starts.tolist():
            stop = min(start + per, count)
            low, high = int(sequences.offsets[start]), int(sequences.offsets[stop])
            part = (
                sequences.hashes[low:high],
                sequences.offsets[start : stop + 1] - low,
                corpus.text_hashes[start:stop],
                keys[:, start:stop],
            )
            futures.extend(self.client.scatter([part], hash=False))
        held = _Held(futures, np.append(starts, count), len(keys))
        return Signed(corpus.text_hashes, sequences.counts, held)

    def candidates(self, signed: Signed, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if len(rows) < 2 or signed.held.bands == 0:
            return np.empty((0, 2), np.int64)
        # Each partition makes its own leaders' rows on its worker: no band key leaves it.
        pieces = [
            self.client.submit(_held_band_rows, future, local, start, pure=False)
            for future, local, start in signed.held.split(rows)
            if len(local)
        ]
        meta = pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in KEY_COLUMNS.items()})
        frame = dd.from_delayed(pieces, meta=meta, verify_meta=False)
        shuffled = frame.shuffle(on=["band", "key"], npartitions=self._partitions(len(rows)))
        pair_meta = pd.DataFrame({"a": pd.Series(dtype=np.int64), "b": pd.Series(dtype=np.int64)})
        pairs = self.client.compute(shuffled.map_partitions(_partition_pairs, meta=pair_meta)).result()
        return unique_pairs(pairs[["a", "b"]].to_numpy(np.int64))

    def verifier(self, signed: Signed, rows: np.ndarray) -> Verify:
        """Verification on the workers, against the shingles of ``rows`` only (kept there)."""
        rows = np.asarray(rows, np.int64)
        pieces: list[Future] = []
        firsts: list[int] = []  # each piece's first row, then one past the last
        for future, local, start in signed.held.split(rows):
            if len(local):
                pieces.append(self.client.submit(_held_sequences, future, local, start, pure=False))
                firsts.append(int(local[0]) + start)
        if not pieces:
            pieces, firsts = [self.client.submit(_no_sequences, pure=False)], [0]
        held = _Sequences(pieces, np.append(firsts, np.iinfo(np.int64).max), rows)
        engine = self

        def verify(a: np.ndarray, b: np.ndarray, threshold: float, near: float | None) -> VerifiedPairs:
            return engine._verify(held, a, b, threshold, near)

        return verify

    def _verify(
        self, held: _Sequences, a: np.ndarray, b: np.ndarray, threshold: float, near: float | None
    ) -> VerifiedPairs:
        count = len(a)
        if count == 0:
            return VerifiedPairs(np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
        pairs = pd.DataFrame(
            {"pair": np.arange(count), "a": np.asarray(a, np.int64), "b": np.asarray(b, np.int64)}
        ).astype(np.int64)
        with dask.config.set(_CONFIG):
            npartitions = self._partitions(count, self.pairs_per_partition)
            frame = dd.from_pandas(pairs, npartitions=npartitions, sort=False)
            needed = held.of(self.client, np.union1d(pairs["a"].to_numpy(), pairs["b"].to_numpy()))
            sequences = dd.from_delayed(needed, meta=SEQ_META, verify_meta=False)
            joined = frame.merge(sequences.rename(columns={"row": "a", "seq": "seq_a"}), on="a")
            joined = joined.merge(sequences.rename(columns={"row": "b", "seq": "seq_b"}), on="b")
            proven = joined.map_partitions(_verify_partition, threshold, near, meta=VERIFIED_META)
            found = self.client.compute(proven).result()
        found = found.sort_values("pair", kind="stable")
        assert len(found) == count and (found["pair"].to_numpy() == np.arange(count)).all(), "pairs lost"
        return VerifiedPairs(
            found["jaccard"].to_numpy(np.float64),
            found["containment"].to_numpy(np.float64),
            found["relation"].to_numpy(np.int8),
        )

    def components(self, size: int, edges: np.ndarray) -> np.ndarray:
        """Connected components on the cluster: each round, every partition of the edges (in
        label space) finds its local components (scipy) and proposes each label's local minimum;
        the global minimum per label relabels the nodes and the edges; an edge whose ends share a
        label is dropped. Done when no edge is left: a component's label is then its smallest row."""
        edges = np.asarray(edges, np.int64).reshape(-1, 2)
        if size == 0 or len(edges) == 0:
            return np.arange(size)
        digest = hashlib.sha1(edges.tobytes() + str(size).encode()).hexdigest()
        if digest in self._labels:
            return self._labels[digest].copy()
        npartitions = self._partitions(len(edges), self.pairs_per_partition)
        pairs = pd.DataFrame({"a": edges[:, 0], "b": edges[:, 1]})
        edge_frame = dd.from_pandas(pairs, npartitions=npartitions)
        nodes = np.unique(edges)
        labels = dd.from_pandas(pd.DataFrame({"node": nodes, "label": nodes}), npartitions=npartitions)
        minima_meta = pd.DataFrame({"label": pd.Series(dtype=np.int64), "smaller": pd.Series(dtype=np.int64)})
        self.rounds = 0
        while True:
            self.rounds += 1
            proposals = edge_frame.map_partitions(_local_minima, meta=minima_meta)
            smaller = proposals.groupby("label")["smaller"].min().reset_index()
            smaller = self.client.persist(smaller.map_partitions(_moved, meta=minima_meta))
            labels = _relabel(labels, "label", smaller)
            moved = _relabel(_relabel(edge_frame, "a", smaller), "b", smaller)
            edge_frame = moved.map_partitions(_apart, meta=moved._meta)
            labels, edge_frame = self.client.persist([labels, edge_frame])
            if int(self.client.compute(edge_frame.shape[0]).result()) == 0:
                break
        found = self.client.compute(labels).result()
        result = np.arange(size)
        result[found["node"].to_numpy(np.int64)] = found["label"].to_numpy(np.int64)
        if len(self._labels) >= 4:
            self._labels.pop(next(iter(self._labels)))
        self._labels[digest] = result.copy()
        return result


def _import_engine() -> None:
    """Run on each worker at start: the engine's modules imported before the first task is timed."""
    import audit.engines.dask  # noqa: F401


@contextmanager
def dask_engine(
    scheduler: str | None = None, workers: int | None = None, memory_limit: str | None = None
) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` on the scheduler at ``scheduler``, or on a LocalCluster started here
    (127.0.0.1 only, ``workers`` single-threaded processes, default one per core)."""
    if scheduler is not None:
        with Client(scheduler) as client:
            client.run(_import_engine)
            yield DaskEngine(client)
        return
    # The scheduler (here, in this process) logs each shuffle's start and end as a warning; a run
    # shuffles by design, so they would only bury the run's own output.
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    with (
        local_cluster(workers or os.cpu_count() or 1, memory_limit) as cluster,
        Client(cluster) as client,
    ):
        client.run(_import_engine)
        yield DaskEngine(client)
