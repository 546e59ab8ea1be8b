"""The interface every index backend implements, and what all backends share.

An index remembers the records of earlier runs: the kept ones, and the removed copies with
the kept record each copies (so a chain of copies across runs is followed as one run would).
For each: its MinHash signatures, the LSH band keys of both bandings (whole text and prefix,
so ``truncated_copy`` is found across runs), and what verification and the outputs need (id,
run, source, line, title, url and the normalised text, zlib-compressed). The normalised text
is stored rather than its shingle hashes: it is smaller (about a third of a byte per
character against four bytes per shingle) and lets the dedup engine verify a candidate
exactly as within one run.

A backend holds one *session* per run: :meth:`IndexBackend.begin` takes the index's write lock
(waiting up to ``wait`` seconds, then :class:`IndexLockedError`), lookups and additions
happen inside it, and :meth:`IndexBackend.commit` makes the run's additions visible at once;
:meth:`IndexBackend.rollback` (or a crash) leaves the index as it was.

Example:
    >>> params = IndexParams.from_config(DedupConfig())
    >>> params.bands, params.rows, params.prefix_bands, params.prefix_rows
    (25, 5, 16, 4)
"""

from __future__ import annotations

import json
import os
import signal
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit.dedup import DedupConfig
from audit.dedup.lsh import Banding, band_keys

#: Columns :meth:`IndexBackend.fetch` returns, one row per indexed record.
#: ``duplicate_of``: the ref of the record it copies (None: a kept record).
FETCH_COLUMNS = ["ref", "run", "id", "source", "line", "title", "url", "norm_text", "duplicate_of"]
#: Band numbers of the prefix banding start here, so both bandings share one key space.
PREFIX_BAND_OFFSET = 1000
#: Environment variable naming a fault injection point (tests kill the process there).
FAULT_ENV = "SCRAPE_AUDIT_INDEX_FAULT"


class IndexStoreError(ValueError):
    """An index that cannot be used as asked; the message says why and what to do."""


class IndexLockedError(IndexStoreError):
    """Another run holds the index's write lock for longer than this run waits."""


@dataclass(frozen=True)
class IndexParams:
    """The dedup settings an index's signatures and band keys depend on; a run must match them."""

    num_perm: int
    seed: int
    word_n: int
    char_n: int
    prefix_shingles: int
    bands: int
    rows: int
    prefix_bands: int
    prefix_rows: int

    @classmethod
    def from_config(cls, config: DedupConfig) -> IndexParams:
        banding = config.banding()
        return cls(
            config.num_perm,
            config.seed,
            config.word_n,
            config.char_n,
            config.prefix_shingles,
            banding.bands,
            banding.rows,
            config.prefix_banding.bands,
            config.prefix_banding.rows,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexParams:
        return cls(**json.loads(text))

    def check_matches(self, other: IndexParams, location: str) -> None:
        if other != self:
            differ = {k: (v, getattr(other, k)) for k, v in asdict(self).items() if getattr(other, k) != v}
            detail = ", ".join(f"{k} {old} (index) vs {new} (this run)" for k, (old, new) in differ.items())
            raise IndexStoreError(
                f"{location}: the index was built with other dedup settings ({detail}); "
                "run with the index's settings (threshold, --num-perm, --shingle-size) or use a new index"
            )


def all_band_keys(signatures: np.ndarray, prefix_signatures: np.ndarray, params: IndexParams) -> np.ndarray:
    """Band keys of every row, shape ``(rows, bands + prefix_bands, 2)``: ``(band number, key)``.

    Keys are the dedup engine's own (:func:`audit.dedup.lsh.band_keys`), as int64 so that every
    backend can store them; prefix bands are numbered from :data:`PREFIX_BAND_OFFSET`.
    """
    parts = []
    for sigs, banding, offset in (
        (signatures, Banding(params.bands, params.rows), 0),
        (prefix_signatures, Banding(params.prefix_bands, params.prefix_rows), PREFIX_BAND_OFFSET),
    ):
        for band in range(banding.bands):
            keys = band_keys(sigs, banding, band).view(np.int64)
            parts.append(np.column_stack((np.full(len(sigs), band + offset, np.int64), keys)))
    if not parts:
        return np.empty((len(signatures), 0, 2), np.int64)
    return np.stack(parts, axis=1)


def pack_text(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def unpack_text(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8")


def fault_point(name: str) -> None:
    """Kill this process (SIGKILL, nothing cleaned up) when the fault ``name`` is injected.

    Only tests set :data:`FAULT_ENV`; it proves an interrupted run leaves the index whole.
    """
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class NewEntries:
    """Records a run adds: their fields, signatures and band keys (``keys[i]`` for row ``i``).

    ``frame.duplicate_of`` is None for a kept record; for a removed one, the ref of an earlier
    record (``rep_ref``) or the row, in ``frame``, of this run's record it copies (``rep_row``).
    """

    frame: pd.DataFrame  # id, source, line, title, url, norm_text, text_hash, rep_ref, rep_row
    signatures: np.ndarray
    prefix_signatures: np.ndarray
    keys: np.ndarray


class IndexBackend(ABC):
    """One storage backend (SQLite file, Redis server); see the module docstring for the protocol."""

    location: str

    @abstractmethod
    def begin(self, params: IndexParams, label: str) -> int:
        """Take the write lock, check (or record) ``params``; return this run's number."""

    @abstractmethod
    def lookup(self, keys: np.ndarray) -> list[int]:
        """Refs of indexed records sharing any ``(band, key)`` row of ``keys`` (shape ``(k, 2)``)."""

    @abstractmethod
    def fetch(self, refs: list[int]) -> pd.DataFrame:
        """The records ``refs`` (:data:`FETCH_COLUMNS`), in ref order."""

    def add(self, entries: NewEntries, run: int, summary: dict[str, Any]) -> None:
        """Stage ``entries`` and this run's row; visible to others only after :meth:`commit`."""
        self.add_run(run, len(entries.frame), summary)
        self.add_part(entries, run, self.reserve(len(entries.frame)), 0)

    @abstractmethod
    def reserve(self, count: int) -> int:
        """The first of ``count`` consecutive refs for this run's records (called once per run)."""

    @abstractmethod
    def add_run(self, run: int, count: int, summary: dict[str, Any]) -> None:
        """Stage this run's row: ``count`` records added in all (by :meth:`add_part` calls)."""

    @abstractmethod
    def add_part(self, entries: NewEntries, run: int, first: int, offset: int) -> None:
        """Stage ``entries``, records ``offset...`` of this run (refs from ``first + offset``); a
        ``rep_row`` counts from the run's first record (``first``), so a part may name a record
        of another part. A run over partitions stages a partition at a time."""

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def signatures(self, refs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The stored ``(signatures, prefix signatures)`` of ``refs``, for :func:`verify_index`."""

    @abstractmethod
    def refs(self) -> list[int]:
        """Every indexed record's ref, ascending."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Runs, records, band keys, size, settings."""

    @abstractmethod
    def verify(self) -> list[str]:
        """Structural problems found (empty: sound); :func:`audit.index.verify_index` adds re-signing."""

    def compact(self) -> dict[str, Any]:
        """Reclaim space (:meth:`_reclaim`); return the size before and after, and the time taken."""
        before = self.stats()["bytes"]
        started = time.perf_counter()
        self._reclaim()
        return {
            "bytes_before": before,
            "bytes_after": self.stats()["bytes"],
            "seconds": round(time.perf_counter() - started, 3),
        }

    @abstractmethod
    def _reclaim(self) -> None:
        """The backend's own space reclaiming (VACUUM, a memory purge)."""

    @abstractmethod
    def close(self) -> None: ...


def utc_now() -> str:
    """Now, as the ISO-8601 UTC timestamp the backends store with runs."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
