"""Candidate pairs from MinHash signatures: LSH banding in numpy, tuned for recall.

The LSH only proposes; every candidate is verified on the exact shingle sets afterwards
(:mod:`audit.dedup.verify`), so the banding is chosen for recall: bands x rows come from
datasketch's own optimiser (``MinHashLSH``'s ``_optimal_param``) at a threshold below the
verification threshold, with false negatives weighted 9:1 over false positives. A pair with
true Jaccard ``j`` becomes a candidate with probability ``1 - (1 - j**rows)**bands``
(:meth:`Banding.false_negative_rate` states the miss rate).

A band's rows are hashed to one uint64 key; keys are grouped by a hash table (compiled,
:func:`candidate_pairs_from_keys`; :func:`bucket_pairs`, with pandas' hash table, is the
reference), no sort of the whole corpus. A bucket of ``k`` documents yields ``2k - 3`` pairs
(each member with the first, and with the previous member), not ``k**2``: enough to connect
the bucket, and buckets are small after exact copies are grouped.

Example:
    >>> banding = choose_banding(0.8, 128)
    >>> (banding.bands, banding.rows), round(banding.false_negative_rate(0.8), 5)
    ((25, 5), 5e-05)
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch.lsh import _optimal_param

from audit.dedup.jit import compiled

#: How far below the verification threshold the LSH threshold sits.
LSH_SLACK = 0.2
#: datasketch's (false positive, false negative) weights when it picks bands x rows.
RECALL_WEIGHTS = (0.1, 0.9)
_KEY_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Banding:
    bands: int
    rows: int

    def collision_probability(self, jaccard: float) -> float:
        """Probability that a pair with this true Jaccard shares at least one band."""
        return 1.0 - (1.0 - jaccard**self.rows) ** self.bands

    def false_negative_rate(self, jaccard: float) -> float:
        return 1.0 - self.collision_probability(jaccard)


@functools.cache
def choose_banding(threshold: float, num_perm: int, slack: float = LSH_SLACK) -> Banding:
    """Bands x rows for verification threshold ``threshold``, tuned for recall (datasketch
    integrates numerically, ~12 ms: once per setting)."""
    bands, rows = _optimal_param(max(0.05, threshold - slack), num_perm, *RECALL_WEIGHTS)
    return Banding(int(bands), int(rows))


def band_keys(signatures: np.ndarray, banding: Banding, band: int) -> np.ndarray:
    """One uint64 key per row for band number ``band``."""
    block = signatures[:, band * banding.rows : (band + 1) * banding.rows].astype(np.uint64)
    key = np.zeros(len(signatures), dtype=np.uint64)
    for column in range(block.shape[1]):
        key = (key ^ block[:, column]) * _KEY_MULTIPLIER
        key ^= key >> np.uint64(29)
    return key


def bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs ``(first, member)`` and ``(previous, member)`` of rows sharing a key."""
    codes, _ = pd.factorize(keys)
    shared = np.flatnonzero(np.bincount(codes)[codes] > 1)
    if len(shared) == 0:
        return np.empty((0, 2), dtype=np.int64)
    order = shared[np.argsort(codes[shared], kind="stable")]
    grouped = codes[order]
    new_bucket = np.concatenate(([True], grouped[1:] != grouped[:-1]))
    first = order[np.maximum.accumulate(np.where(new_bucket, np.arange(len(order)), 0))]
    follower = ~new_bucket
    star = np.column_stack((first[follower], order[follower]))
    chain_at = np.flatnonzero(follower[1:] & follower[:-1]) + 1  # third member of a bucket onwards
    chain = np.column_stack((order[chain_at - 1], order[chain_at]))
    return np.concatenate((star, chain))


def all_band_keys(signatures: np.ndarray, banding: Banding) -> np.ndarray:
    """Every band's key per row, shape ``(bands, rows)``: band-major, so that one band's keys
    are contiguous (8 bytes per band and row, instead of 4 per permutation)."""
    keys = np.empty((banding.bands, len(signatures)), dtype=np.uint64)
    for band in range(banding.bands):
        keys[band] = band_keys(signatures, banding, band)
    return keys


def candidate_pairs(signatures: np.ndarray, banding: Banding, rows: np.ndarray | None = None) -> np.ndarray:
    """Unique pairs ``(i, j)``, ``i < j``, of rows sharing a bucket in any band; shape ``(k, 2)``.

    ``rows`` limits the search to those row numbers (the rest are left out).
    """
    rows = np.arange(len(signatures)) if rows is None else np.asarray(rows, dtype=np.int64)
    return unique_pairs(rows[candidate_pairs_from_keys(all_band_keys(signatures[rows], banding))])


def candidate_pairs_from_keys(
    keys: np.ndarray, rows: np.ndarray | None = None, threads: int = 0, batch: int = 0
) -> np.ndarray:
    """:func:`candidate_pairs` from band keys already made (:func:`all_band_keys`: one row per
    band, one column per document); ``rows`` limits the search to those documents.

    The bands are grouped by a compiled hash table (:func:`_band_pairs`, the same pairs as
    :func:`bucket_pairs`), on ``threads`` threads (0: every core). ``batch``: the pairs a thread
    collects before removing repeats (0: :data:`_PAIR_BATCH`; small values are for tests).
    """
    rows = np.arange(keys.shape[1]) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(keys) == 0 or len(rows) < 2:
        return np.empty((0, 2), np.int64)
    batch = max(batch or _PAIR_BATCH, 2)
    threads = min(threads or os.cpu_count() or 1, len(keys))
    parts = np.array_split(np.arange(len(keys)), threads)
    if threads == 1:
        found = [_band_pairs(keys, rows, parts[0], batch)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            found = list(pool.map(lambda bands: _band_pairs(keys, rows, bands, batch), parts))
    codes = sorted_unique(np.concatenate(found))  # both threads find most pairs
    return np.column_stack((codes >> np.uint64(32), codes & np.uint64(0xFFFFFFFF))).astype(np.int64)


#: Keys are split by their top bits into this many parts per band, so that one part's hash
#: table stays in the CPU cache (one table for a million keys does not: a miss per key).
_PART_BITS = 8
#: Pairs found (repeats included) are collected up to this many, then added to the set of pairs
#: found so far region by region (:func:`_add_new`): 16 MB of pairs and their copy.
_PAIR_BATCH = 1 << 20
#: The set of pairs is split into ``2**_REGION_BITS`` regions by the top bits of a pair's hash.
_REGION_BITS = 8
_PAIR_MIX = np.uint64(0x9E3779B97F4A7C15)


@compiled
def _band_pairs(keys: np.ndarray, rows: np.ndarray, bands: np.ndarray, batch: int) -> np.ndarray:
    """:func:`bucket_pairs` of ``keys[band, rows]`` for each of ``bands``, as row numbers, each
    pair once, as codes ``low << 32 | high`` (unordered).

    Per band, the rows are split by the top bits of their key (keeping their order), and each
    part goes through an open-addressing table (keys are hashes: their low bits are the slot)
    that remembers each key's first and latest row; a row whose key is there pairs with both.
    Near-copies share many bands, and each band gives their pair again (41 bands: ~16 times as
    many pairs as distinct ones): pairs are collected in batches and only the new ones kept.
    """
    count = len(rows)
    parts = 1 << _PART_BITS
    part_keys = np.empty(count, np.uint64)
    part_rows = np.empty(count, np.int64)
    starts = np.zeros(parts + 1, np.int64)
    table_keys = np.empty(16, np.uint64)
    first = np.empty(16, np.int64)
    latest = np.empty(16, np.int64)
    found = np.empty(batch, np.uint64)
    ordered = np.empty(batch, np.uint64)
    # The pairs found so far, each once (``codes[:count]``), and their set (:func:`_add_new`).
    seen = np.zeros(1 << (_REGION_BITS + 4), np.uint64)
    filled = np.zeros(1 << _REGION_BITS, np.int64)
    codes = np.empty(1024, np.uint64)
    n = m = 0
    for band in bands:
        _split(keys[band], rows, part_keys, part_rows, starts)
        for part in range(parts):
            table_keys, first, mask = _cleared_table(table_keys, first, starts[part + 1] - starts[part])
            if len(latest) < len(first):
                latest = np.empty(len(first), np.int64)
            for i in range(starts[part], starts[part + 1]):
                key, row = part_keys[i], part_rows[i]
                slot = _slot(table_keys, first, mask, key)
                if first[slot] < 0:
                    table_keys[slot] = key
                    first[slot] = row
                    latest[slot] = row
                    continue
                if m + 2 > batch:
                    seen, filled, codes, n = _add_new(seen, filled, codes, n, found[:m], ordered)
                    m = 0
                found[m] = _pair_code(first[slot], row)
                m += 1
                if latest[slot] != first[slot]:
                    found[m] = _pair_code(latest[slot], row)  # the third member on: the previous one
                    m += 1
                latest[slot] = row
    seen, filled, codes, n = _add_new(seen, filled, codes, n, found[:m], ordered)
    return codes[:n].copy()


@compiled
def table_size(count: int) -> int:
    """Slots of an open-addressing table for ``count`` keys: a power of two, at most half full."""
    size = 16
    while size < 2 * count:
        size *= 2
    return size


@compiled
def _cleared_table(
    table_keys: np.ndarray, first: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """An empty open-addressing table for ``count`` keys, reusing ``table_keys`` and ``first``
    when they are large enough: the arrays, their first :func:`table_size` slots free
    (``first == -1``), and the mask of a slot number."""
    size = table_size(count)
    if size > len(first):
        table_keys = np.empty(size, np.uint64)
        first = np.empty(size, np.int64)
    first[:size] = -1
    return table_keys, first, size - 1


@compiled
def _slot(table_keys: np.ndarray, first: np.ndarray, mask: int, key: np.uint64) -> np.int64:
    """The slot of ``key`` in an open-addressing table (linear probing; ``first[slot] < 0``: free,
    where the key goes)."""
    slot = np.int64(key & np.uint64(mask))
    while first[slot] >= 0 and table_keys[slot] != key:
        slot = (slot + 1) & mask
    return slot


@compiled
def _split(
    keys: np.ndarray, rows: np.ndarray, part_keys: np.ndarray, part_rows: np.ndarray, starts: np.ndarray
) -> None:
    """``keys[rows]`` and ``rows`` into ``part_keys`` and ``part_rows`` grouped by the top
    :data:`_PART_BITS` of the key, in their order within a group; group ``g`` is
    ``starts[g]:starts[g + 1]``."""
    shift = np.uint64(64 - _PART_BITS)
    starts[:] = 0
    for i in range(len(rows)):
        starts[np.int64(keys[rows[i]] >> shift) + 1] += 1
    for part in range(len(starts) - 1):
        starts[part + 1] += starts[part]
    fill = starts[:-1].copy()
    for i in range(len(rows)):
        key = keys[rows[i]]
        part = np.int64(key >> shift)
        part_keys[fill[part]] = key
        part_rows[fill[part]] = rows[i]
        fill[part] += 1


def first_of_equal(keys: np.ndarray) -> np.ndarray:
    """Per position, the first position holding the same key: ``first[codes]`` for
    ``codes = pd.factorize(keys)[0]`` and ``first`` each code's first position. ``keys``: uint64
    hashes (the top bits split them, the low bits pick the slot, as in :func:`_band_pairs`)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    return _first_of_equal(keys) if len(keys) else np.empty(0, np.int64)


@compiled
def _first_of_equal(keys: np.ndarray) -> np.ndarray:
    count = len(keys)
    rows = np.arange(count)
    part_keys = np.empty(count, np.uint64)
    part_rows = np.empty(count, np.int64)
    starts = np.zeros((1 << _PART_BITS) + 1, np.int64)
    _split(keys, rows, part_keys, part_rows, starts)
    first_of = np.empty(count, np.int64)
    table_keys = np.empty(16, np.uint64)
    first = np.empty(16, np.int64)
    for part in range(len(starts) - 1):
        table_keys, first, mask = _cleared_table(table_keys, first, starts[part + 1] - starts[part])
        for i in range(starts[part], starts[part + 1]):
            key, row = part_keys[i], part_rows[i]
            slot = _slot(table_keys, first, mask, key)
            if first[slot] < 0:
                table_keys[slot] = key
                first[slot] = row
            first_of[row] = first[slot]
    return first_of


@compiled
def _pair_code(a: np.int64, b: np.int64) -> np.uint64:
    """Pair ``(a, b)`` of rows (< 2**32, distinct) as ``low << 32 | high``: never 0, the set's empty slot."""
    return np.uint64(min(a, b)) << np.uint64(32) | np.uint64(max(a, b))


@compiled
def _add_new(
    seen: np.ndarray, filled: np.ndarray, codes: np.ndarray, n: int, found: np.ndarray, ordered: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Append to ``codes[:n]`` the pairs of ``found`` not in it yet; returns the grown arrays.

    ``seen`` is an open-addressing set of ``codes[:n]`` (0: empty) split into ``len(filled)``
    regions, a pair's region being the top bits of its hash. A million pairs' set does not fit
    in the CPU cache, and a probe per pair found (repeats included) missed it nearly every time:
    so the batch ``found`` is first ordered by region (into ``ordered``), and each region's pairs
    are looked up together while its few kilobytes are in the cache. A region more than half
    full doubles every region (the set is made again from ``codes``).
    """
    regions = len(filled)
    top = np.uint64(64 - _REGION_BITS)
    starts = np.zeros(regions + 1, np.int64)
    for k in range(len(found)):
        starts[np.int64((found[k] * _PAIR_MIX) >> top) + 1] += 1
    for region in range(regions):
        starts[region + 1] += starts[region]
    at = starts[:-1].copy()
    for k in range(len(found)):
        region = np.int64((found[k] * _PAIR_MIX) >> top)
        ordered[at[region]] = found[k]
        at[region] += 1
    for k in range(len(found)):
        code = ordered[k]
        region = np.int64((code * _PAIR_MIX) >> top)
        if 2 * (filled[region] + 1) > len(seen) // regions:
            seen = np.zeros(2 * len(seen), np.uint64)
            filled[:] = 0
            for j in range(n):
                _insert_pair(seen, filled, codes[j])
        if _insert_pair(seen, filled, code):
            if n == len(codes):
                grown = np.empty(2 * len(codes), np.uint64)
                grown[:n] = codes[:n]
                codes = grown
            codes[n] = code
            n += 1
    return seen, filled, codes, n


@compiled
def _insert_pair(seen: np.ndarray, filled: np.ndarray, code: np.uint64) -> bool:
    """Add ``code`` to its region of ``seen`` (probing within the region); False when there."""
    regions = len(filled)
    size = len(seen) // regions  # a power of two
    mixed = code * _PAIR_MIX
    region = np.int64(mixed >> np.uint64(64 - _REGION_BITS))
    base = region * size
    slot = np.int64((mixed << np.uint64(_REGION_BITS)) >> np.uint64(40)) & (size - 1)  # the bits below
    while seen[base + slot] != 0:
        if seen[base + slot] == code:
            return False
        slot = (slot + 1) & (size - 1)
    seen[base + slot] = code
    filled[region] += 1
    return True


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` (flattened, sorted, distinct) by one sort: numpy 2's hash-based
    ``unique`` took ~14x as long on a few hundred thousand integers here."""
    ordered = np.sort(np.ravel(values))
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Pairs as ``(low, high)``, duplicates removed, sorted."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    low, high = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    keep = low != high
    codes = sorted_unique(low[keep].astype(np.int64) << 32 | high[keep].astype(np.int64))
    return np.column_stack((codes >> 32, codes & 0xFFFFFFFF))
