"""Proof of a candidate pair: exact Jaccard and containment of the shingle sets, and the relation.

``near_duplicate``: Jaccard >= threshold. ``truncated_copy``: Jaccard below it, but the shorter
copy's shingles are (>= threshold) found in the longer *and* in the longer's first shingles
(the same count as the shorter has): the shorter is the longer cut off at a length limit,
not an excerpt from its middle nor a different text sharing a passage.

Example:
    >>> import numpy as np
    >>> a, b = np.array([1, 2, 3, 4], np.uint32), np.array([1, 2, 3], np.uint32)
    >>> similarity(a, b)
    (0.75, 1.0)

Many pairs are verified at once by :func:`verify_pairs` (numpy, no Python per pair), which
gives the same numbers as :class:`PairVerifier` (the per-pair reference).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from audit.dedup.jit import compiled
from audit.dedup.lsh import table_size
from audit.dedup.shingles import SORT_CHUNK, ShingleBatch, chunk_ranges

NEAR_DUPLICATE = "near_duplicate"
TRUNCATED_COPY = "truncated_copy"
EXACT_DUPLICATE = "exact_duplicate"


def shared_count(a: np.ndarray, b: np.ndarray) -> int:
    """``|a & b|`` of two sorted unique arrays."""
    if len(a) > len(b):
        a, b = b, a
    if len(a) == 0:
        return 0
    positions = np.minimum(np.searchsorted(b, a), len(b) - 1)
    return int(np.count_nonzero(b[positions] == a))


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(jaccard, containment)`` of two sorted unique arrays (containment: share of the smaller set)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    shared = shared_count(a, b)
    return shared / (len(a) + len(b) - shared), shared / min(len(a), len(b))


def prefix_containment(short_set: np.ndarray, short_length: int, long_sequence: np.ndarray) -> float:
    """Share of ``short_set`` found among the first ``short_length`` shingles of the longer text."""
    if len(short_set) == 0:
        return 0.0
    return shared_count(short_set, np.unique(long_sequence[:short_length])) / len(short_set)


def relation(
    jaccard: float,
    containment: float,
    prefix_share: float,
    threshold: float,
    near_threshold: float | None = None,
) -> str | None:
    """The relation a verified pair has, or None when it is not a duplicate.

    ``near_threshold`` (default ``threshold``) is the Jaccard a near duplicate needs.
    """
    if jaccard >= (threshold if near_threshold is None else near_threshold):
        return NEAR_DUPLICATE
    if containment >= threshold and prefix_share >= threshold:
        return TRUNCATED_COPY
    return None


class PairVerifier:
    """Verifies pairs of documents of one signed corpus, remembering each pair's result.

    ``sets.of(row)`` gives a document's sorted unique shingle hashes
    (:class:`audit.dedup.shingles.ShingleBatch`); ``sequences(rows)`` the shingle hashes of
    those documents in text order, asked for (in one batch) only when the prefix test is needed.
    """

    def __init__(
        self, sets: ShingleBatch, sequences: Callable[[list[int]], ShingleBatch], threshold: float
    ) -> None:
        self.sets = sets
        self.sequences = sequences
        self.threshold = threshold
        self._results: dict[tuple[int, int, float | None], tuple[float, float, str | None]] = {}
        self._sequence: dict[int, np.ndarray] = {}

    def unique(self, row: int) -> np.ndarray:
        return self.sets.of(row)

    def sequence(self, row: int) -> np.ndarray:
        if row not in self._sequence:
            self.prefetch([row])
        return self._sequence[row]

    def prefetch(self, rows: list[int], batch_docs: int = 2_000) -> None:
        """Hash the ordered shingles of ``rows``, ``batch_docs`` texts per batch (bounded memory)."""
        rows = sorted(set(rows) - self._sequence.keys())
        for start in range(0, len(rows), batch_docs):
            chunk = rows[start : start + batch_docs]
            batch = self.sequences(chunk)
            for n, row in enumerate(chunk):
                self._sequence[row] = batch.of(n)

    def verify_many(self, pairs: list[tuple[int, int]]) -> list[tuple[float, float, str | None]]:
        """:meth:`verify` for many pairs, the prefix tests' texts hashed in one batch."""
        measured = [similarity(self.unique(a), self.unique(b)) for a, b in pairs]
        needs_prefix = [pair for pair, (j, c) in zip(pairs, measured, strict=True) if j < self.threshold <= c]
        self.prefetch([row for pair in needs_prefix for row in pair])
        return [self.verify(a, b, measured=m) for (a, b), m in zip(pairs, measured, strict=True)]

    def verify(
        self, a: int, b: int, near_threshold: float | None = None, measured: tuple[float, float] | None = None
    ) -> tuple[float, float, str | None]:
        """``(jaccard, containment, relation)`` of documents ``a`` and ``b``.

        ``near_threshold`` lowers the Jaccard a near duplicate needs (the chaining guard's
        slack); a truncated copy always needs ``threshold``.
        """
        key = (min(a, b), max(a, b), near_threshold)
        if key in self._results:
            return self._results[key]
        threshold = self.threshold
        set_a, set_b = self.unique(a), self.unique(b)
        jaccard, containment = measured or similarity(set_a, set_b)
        prefix_share = 0.0
        if jaccard < threshold <= containment:
            short, long_ = (a, b) if len(set_a) <= len(set_b) else (b, a)
            prefix_share = prefix_containment(
                self.unique(short), len(self.sequence(short)), self.sequence(long_)
            )
        found = jaccard, containment, relation(jaccard, containment, prefix_share, threshold, near_threshold)
        self._results[key] = found
        return found


#: Relation codes of :class:`VerifiedPairs` (index into this tuple).
RELATION_CODES: tuple[str | None, ...] = (None, NEAR_DUPLICATE, TRUNCATED_COPY)
#: Shingle hashes merged per step of :func:`shared_counts` (bounds its working memory).
CHUNK_ELEMENTS = SORT_CHUNK
_LOW32 = np.uint64(32)


@dataclass(frozen=True)
class VerifiedPairs:
    """Per pair: exact Jaccard, containment (share of the smaller set) and relation code."""

    jaccard: np.ndarray
    containment: np.ndarray
    relation: np.ndarray

    def names(self) -> np.ndarray:
        """The relations as names (None: not a duplicate), an object array."""
        return np.array(RELATION_CODES, dtype=object)[self.relation]


def at_near_threshold(
    verified: VerifiedPairs, threshold: float, near_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """The relation codes :func:`verify_pairs` gives at ``(threshold, near_threshold)`` for pairs it
    verified before at ``(threshold, None)``, without verifying them again; and where that answer
    holds only for the pairs in the same order (a, b).

    Jaccard and containment do not depend on the threshold nor on the pair's order. A near
    duplicate now needs ``near_threshold``; below it, the truncated-copy test is the same one
    (it runs where ``jaccard < threshold <= containment``), except that a pair near at
    ``threshold`` but not at ``near_threshold`` never ran it (0). That test reads the prefix
    of the text with more distinct shingles (the first on ties): reversed, a tie reads the
    other text's prefix, so where it decides the answer, the order matters.
    """
    jaccard, containment = verified.jaccard, verified.containment
    relation = np.where(jaccard >= near_threshold, 1, np.where(jaccard >= threshold, 0, verified.relation))
    order_matters = (jaccard < min(threshold, near_threshold)) & (containment >= threshold)
    return relation.astype(np.int8), order_matters


def _keyed(batch: ShingleBatch) -> np.ndarray:
    """``(entry << 32) | hash`` for every hash: sorted when each entry's hashes are."""
    entry = np.repeat(np.arange(len(batch), dtype=np.uint64), batch.counts)
    return (entry << _LOW32) | batch.hashes.astype(np.uint64)


def shared_counts(
    sets: ShingleBatch, a: np.ndarray, b: np.ndarray, chunk_elements: int = CHUNK_ELEMENTS
) -> np.ndarray:
    """``|set(a[k]) & set(b[k])|`` for every pair ``k`` of rows of ``sets`` (sorted unique hashes each).

    Both sides are keyed by pair number, so each side is one sorted run; a stable sort of the
    two runs is a linear merge, and a shared hash is two equal neighbours.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    counts = sets.counts
    shared = np.zeros(len(a), dtype=np.int64)
    for lo, hi in chunk_ranges(counts[a] + counts[b], chunk_elements):
        shared[lo:hi] = _merge_count(sets.take(a[lo:hi]), sets.take(b[lo:hi]))
    return shared


def _merge_count(left: ShingleBatch, right: ShingleBatch) -> np.ndarray:
    """Shared hashes of entry ``k`` of two batches of sorted unique hashes."""
    keys = np.concatenate((_keyed(left), _keyed(right)))
    keys.sort(kind="stable")
    equal = keys[1:] == keys[:-1]
    return np.bincount((keys[1:][equal] >> _LOW32).astype(np.int64), minlength=len(left))


def verify_pairs(
    sets: ShingleBatch,
    sequences: ShingleBatch,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    near_threshold: float | None = None,
) -> VerifiedPairs:
    """:meth:`PairVerifier.verify` for every pair ``(a[k], b[k])`` at once.

    ``sets``: each row's sorted unique shingle hashes; ``sequences``: the same rows' hashes in
    text order (for the prefix test of a possible truncated copy).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    size_a, size_b = sets.counts[a], sets.counts[b]
    shared = shared_counts(sets, a, b)
    smaller = np.minimum(size_a, size_b)
    nonempty = smaller > 0
    union = np.where(nonempty, size_a + size_b - shared, 1)
    jaccard = np.where(nonempty, shared / union, 0.0)
    containment = np.where(nonempty, shared / np.maximum(smaller, 1), 0.0)
    # The prefix test, only where the pair could be a truncated copy (as PairVerifier does).
    prefix_share = np.zeros(len(a))
    tested = np.flatnonzero((jaccard < threshold) & (containment >= threshold))
    if len(tested):
        a_short = size_a[tested] <= size_b[tested]
        short = np.where(a_short, a[tested], b[tested])
        long_ = np.where(a_short, b[tested], a[tested])
        short_length = sequences.counts[short]
        found = np.zeros(len(tested), dtype=np.int64)
        for lo, hi in chunk_ranges(sets.counts[short] + short_length, CHUNK_ELEMENTS):
            long_prefixes = sequences.take(long_[lo:hi], short_length[lo:hi]).as_sets()
            found[lo:hi] = _merge_count(sets.take(short[lo:hi]), long_prefixes)
        prefix_share[tested] = found / sets.counts[short]
    near = jaccard >= (threshold if near_threshold is None else near_threshold)
    truncated = ~near & (containment >= threshold) & (prefix_share >= threshold)
    relation = np.where(near, 1, np.where(truncated, 2, 0)).astype(np.int8)
    return VerifiedPairs(jaccard, containment, relation)


def verify_sequences(
    sequences: ShingleBatch,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    near_threshold: float | None = None,
    threads: int = 0,
) -> VerifiedPairs:
    """:func:`verify_pairs` from the shingle hashes in text order alone, compiled: no sets are built.

    Each pair's two texts go through small hash tables (their distinct shingles, the shared
    ones, and for a possible truncated copy the distinct shingles of the longer text's first
    ones), on ``threads`` threads (0: every core). Same numbers as :func:`verify_pairs`.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    near = threshold if near_threshold is None else near_threshold
    threads = max(1, min(threads or os.cpu_count() or 1, len(a) // 10_000))
    bounds = np.linspace(0, len(a), threads + 1).astype(np.int64)
    jaccard, containment = np.zeros(len(a)), np.zeros(len(a))
    relation = np.zeros(len(a), np.int8)

    def run(part: int) -> None:
        lo, hi = bounds[part], bounds[part + 1]
        _verify_compiled(
            sequences.hashes, sequences.offsets, a[lo:hi], b[lo:hi], threshold, near,
            jaccard[lo:hi], containment[lo:hi], relation[lo:hi],
        )  # fmt: skip

    if threads == 1:
        run(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(threads)))
    return VerifiedPairs(jaccard, containment, relation)


@compiled
def _insert(values: np.ndarray, stamps: np.ndarray, mask: int, value: np.uint32, stamp: int) -> bool:
    """Add ``value`` to the open-addressing set whose slots are those stamped ``stamp``; False
    when it was there. Stamps mark a set's slots: no clearing between sets."""
    slot = np.int64(value) & mask  # shingle hashes are hashes already: their low bits are the slot
    while stamps[slot] == stamp:
        if values[slot] == value:
            return False
        slot = (slot + 1) & mask
    stamps[slot] = stamp
    values[slot] = value
    return True


@compiled
def _contains(values: np.ndarray, stamps: np.ndarray, mask: int, value: np.uint32, stamp: int) -> bool:
    slot = np.int64(value) & mask
    while stamps[slot] == stamp:
        if values[slot] == value:
            return True
        slot = (slot + 1) & mask
    return False


@compiled
def _verify_compiled(
    hashes: np.ndarray,
    offsets: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    near_threshold: float,
    jaccard: np.ndarray,
    containment: np.ndarray,
    relation: np.ndarray,
) -> None:
    longest = 0
    for k in range(len(a)):
        longest = max(longest, offsets[a[k] + 1] - offsets[a[k]], offsets[b[k] + 1] - offsets[b[k]])
    size = table_size(longest)
    # Three sets (stamped 3k, 3k+1, 3k+2 for pair k): the first text's, the second's, and the
    # longer one's first shingles.
    values = np.empty((3, size), np.uint32)
    stamps = np.full((3, size), -1, np.int64)
    for k in range(len(a)):
        start_a, end_a = offsets[a[k]], offsets[a[k] + 1]
        start_b, end_b = offsets[b[k]], offsets[b[k] + 1]
        mask = table_size(max(end_a - start_a, end_b - start_b)) - 1
        size_a = 0
        for i in range(start_a, end_a):
            size_a += _insert(values[0], stamps[0], mask, hashes[i], 3 * k)
        size_b = shared = 0
        for i in range(start_b, end_b):
            if _insert(values[1], stamps[1], mask, hashes[i], 3 * k + 1):
                size_b += 1
                shared += _contains(values[0], stamps[0], mask, hashes[i], 3 * k)
        smaller = min(size_a, size_b)
        pair_jaccard = pair_containment = prefix_share = 0.0
        if smaller > 0:
            # The same float operations as verify_pairs, so the same values to the last bit.
            pair_jaccard = shared / (size_a + size_b - shared)
            pair_containment = shared / smaller
        jaccard[k], containment[k] = pair_jaccard, pair_containment
        if smaller > 0 and pair_jaccard < threshold and pair_containment >= threshold:
            # The shorter text (fewer distinct shingles; a on ties) against as many of the longer
            # text's first shingles as the shorter has shingles (all of them if it has fewer).
            if size_a <= size_b:
                short, short_length, long_start, long_end = 0, end_a - start_a, start_b, end_b
            else:
                short, short_length, long_start, long_end = 1, end_b - start_b, start_a, end_a
            found = 0
            for i in range(long_start, min(long_start + short_length, long_end)):
                if _insert(values[2], stamps[2], mask, hashes[i], 3 * k + 2):
                    found += _contains(values[short], stamps[short], mask, hashes[i], 3 * k + short)
            prefix_share = found / smaller
        if pair_jaccard >= near_threshold:
            relation[k] = 1
        elif pair_containment >= threshold and prefix_share >= threshold:
            relation[k] = 2
