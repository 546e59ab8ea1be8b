"""An indexed run over partitions (``--engine dask --index``): the run's texts stay on the workers.

The steps of :mod:`audit.index.session` on the corpus held by :mod:`audit.engines.shards`:

1. **sign**: each partition signed where it is held (:func:`audit.engines.shards._sign_frame`,
   signatures kept): its shingles and band keys for the dedup, its signatures for the index.
2. **lookup**: each partition's band keys (whole text and prefix) made on its worker and looked
   up in the index here, a partition at a time: the union of the refs found are the candidates.
3. **dedup**: the candidates (few) fetched here and signed on the cluster, put in front of the
   run's partitions (:class:`audit.engines.dask._Held`), and :func:`audit.dedup.find_duplicates`
   run over both with the ranking of :class:`audit.index.session.Earlier`: the local engine's
   clusters. Only the candidates' texts come here.
4. **stage** (:class:`ShardIndexUpdate`, after clean): which records are added and what each
   copies is decided here on the compact columns (:meth:`IndexSession.plan`); each partition's
   entries (fields, normalised texts, signatures, band keys) are made on its worker and added
   to the run's one transaction here a partition at a time (:meth:`IndexBackend.add_part`).
   The commit follows the outputs, as in a local run.

Neither backend holds a run's entries in the client: a SQLite index writes each part into its
open transaction, a Redis index writes each part unseen until the commit (:mod:`audit.index.redis`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from audit.dedup import DedupConfig, DedupResult, find_duplicates
from audit.dedup.engine import Signed
from audit.engines.dask import _Held
from audit.engines.shards import ShardEngine, Shards
from audit.engines.worker_memory import releasing
from audit.index import open_index
from audit.index.base import IndexBackend, IndexParams, NewEntries, all_band_keys
from audit.index.session import Earlier, IndexSession, begun_run, index_signer, new_entries, with_runs
from audit.normalise import normalised_texts
from audit.pipeline import AuditResult, Step

try:
    from distributed import Future
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: Partitions whose keys or entries are in flight at once per worker (bounds what comes here).
WINDOW_PER_WORKER = 2
FIELD_COLUMNS = ["id", "source", "line", "title", "url"]


def _index_part(held: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """What the index needs of a signed partition, kept on its worker until staged:
    (signatures, prefix signatures, text hashes, shingle counts)."""
    return held[4], held[5], held[2], np.diff(held[1])


@releasing
def _probe(part: tuple[np.ndarray, ...], params: IndexParams) -> np.ndarray:
    """A partition's distinct index band keys ``(band, key)``, of its texts with shingles (an
    empty text is nobody's copy)."""
    signatures, prefix, _, counts = part
    has = counts > 0
    keys = all_band_keys(signatures[has], prefix[has], params).reshape(-1, 2)
    return np.unique(keys, axis=0) if len(keys) else keys


@releasing
def _entries(
    frame: pd.DataFrame,
    part: tuple[np.ndarray, ...],
    local: np.ndarray,
    reps: tuple[list[Any], list[Any]],
    params: IndexParams,
) -> NewEntries:
    """On a worker: the index entries of rows ``local`` of a partition."""
    signatures, prefix, text_hashes, counts = part
    signatures, prefix = signatures[local], prefix[local]
    return new_entries(
        frame[FIELD_COLUMNS].iloc[local],
        normalised_texts(frame, local),
        text_hashes[local],
        (signatures, prefix),
        all_band_keys(signatures, prefix, params),
        counts[local] > 0,
        reps,
    )


class ShardedIndexRun(IndexSession):
    """An indexed run's session whose records are held on the workers: their index parts too
    (one future per partition, :func:`_index_part`), until :meth:`stage`."""

    parts: list[Future]
    params: IndexParams

    def stage(self, shards: Shards, kept_ids: set[str], removed: pd.DataFrame) -> None:
        """Add the run's records to the index, a partition's entries at a time (made on its
        worker); ``removed``: the removed records' id, duplicate_of and duplicate_of_run."""
        plan = self.plan(shards.compact["id"], kept_ids, removed)
        client, starts = shards.client, shards.starts
        self.backend.add_run(self.run, len(plan.rows), {"label": self.label, **self.report})
        first = self.backend.reserve(len(plan.rows))
        bounds = np.searchsorted(plan.rows, starts)
        window = WINDOW_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
        pending: deque[tuple[Future, int, int]] = deque()
        parts: list[Future | None] = list(self.parts)
        self.parts = []

        def receive() -> None:
            future, offset, n = pending.popleft()
            self.backend.add_part(future.result(), self.run, first, offset)
            future.release()
            parts[n] = None  # its signatures released on the worker once staged

        for n, frame in enumerate(shards.frames):
            low, high = int(bounds[n]), int(bounds[n + 1])
            if high > low:
                if len(pending) >= window:
                    receive()
                local = plan.rows[low:high] - starts[n]
                reps = (plan.rep_ref[low:high], plan.rep_row[low:high])
                entries = client.submit(_entries, frame, parts[n], local, reps, self.params, pure=False)
                pending.append((entries, low, n))
        while pending:
            receive()


def dedup_shards_with_index(
    shards: Shards, config: DedupConfig, backend: IndexBackend, label: str
) -> tuple[DedupResult, ShardedIndexRun]:
    """Dedup the held records against themselves and every earlier record in ``backend``
    (see the module's doc). Takes the index's write lock, held until the session's commit."""
    params = IndexParams.from_config(config)
    with begun_run(backend, params, label) as run:
        client = shards.client
        engine = ShardEngine(client, shards)
        settings = index_signer(config, normalise=True)
        mine = engine.sign_held(shards.dedup_frame()["text"], settings)
        parts = [client.submit(_index_part, future, pure=False) for future in mine.held.futures]
        probes = [client.submit(_probe, part, params, pure=False) for part in parts]
        earlier = Earlier.fetch(backend, _lookup(backend, probes))
        signed = mine
        if len(earlier.frame):  # the candidates signed on the cluster, in front of the run's rows
            texts = earlier.frame["norm_text"].tolist()
            theirs = engine.held(engine.sign(texts, index_signer(config, normalise=False)))
            signed = _in_front(theirs, mine)
        names = [*earlier.names, *shards.compact["id"]]
        titles = [*earlier.frame["title"], *shards.compact["title"]]
        combined = pd.DataFrame({"id": names, "title": titles, "text": ""})
        rank = earlier.rank(shards.completeness())
        result = find_duplicates(combined, config, rank, engine=engine, signed=signed)
        session = ShardedIndexRun(backend, run, label, len(earlier.frame), earlier.ref_of())
        session.parts, session.params = parts, params
        return earlier.this_run_only(result), session


def _lookup(backend: IndexBackend, probes: list[Future]) -> list[int]:
    """The refs sharing a key with any partition, each partition's keys looked up as they come."""
    found: set[int] = set()
    for future in probes:
        found.update(backend.lookup(future.result()))
        future.release()
    return sorted(found)


def _in_front(first: Signed, second: Signed) -> Signed:
    """Two held signed corpora as one, ``first``'s rows first (their partitions stay where they are)."""
    assert first.held.bands == second.held.bands
    count = len(first.text_hashes)
    held = _Held(
        [*first.held.futures, *second.held.futures],
        np.concatenate((first.held.starts[:-1], second.held.starts + count)),
        second.held.bands,
    )
    return Signed(
        np.concatenate((first.text_hashes, second.text_hashes)),
        np.concatenate((first.counts, second.counts)),
        held,
    )


class ShardIndexDedup(Step):
    """:func:`dedup_shards_with_index` as the dedup step of an indexed run over partitions."""

    name = "dedup"

    def run(self, state: AuditResult) -> None:
        shards = getattr(state, "shards", None)
        assert shards is not None and state.config.index is not None
        backend = open_index(state.config.index, wait=state.config.index_wait)
        label = "; ".join(state.paths)
        config = state.config.dedup_config()
        state.dedup, state.index = dedup_shards_with_index(shards, config, backend, label)


class ShardIndexUpdate(Step):
    """removed.jsonl names earlier records by id and run; the run's records are staged."""

    name = "index"

    def run(self, state: AuditResult) -> None:
        if not isinstance(state.index, ShardedIndexRun):
            return
        corpus, shards = state.corpus, getattr(state, "shards", None)
        assert corpus is not None and shards is not None
        corpus.removed_info = with_runs(corpus.removed_info)
        state.index.stage(shards, set(corpus.kept_ids()), corpus.removed_info)
