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


def choose_banding(threshold: float, num_perm: int, slack: float = LSH_SLACK) -> Banding:
    """Bands x rows for verification threshold ``threshold``, tuned for recall."""
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
    keys: np.ndarray, rows: np.ndarray | None = None, threads: int = 0
) -> np.ndarray:
    """:func:`candidate_pairs` from band keys already made (:func:`all_band_keys`: one row per
    band, one column per document); ``rows`` limits the search to those documents.

    The bands are grouped by a compiled hash table (:func:`_band_pairs`, the same pairs as
    :func:`bucket_pairs`), on ``threads`` threads (0: every core).
    """
    rows = np.arange(keys.shape[1]) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(keys) == 0 or len(rows) < 2:
        return np.empty((0, 2), np.int64)
    threads = min(threads or os.cpu_count() or 1, len(keys))
    parts = np.array_split(np.arange(len(keys)), threads)
    if threads == 1:
        found = [_band_pairs(keys, rows, parts[0])]
    else:
        with ThreadPoolExecutor(threads) as pool:
            found = list(pool.map(lambda bands: _band_pairs(keys, rows, bands), parts))
    return unique_pairs(np.concatenate(found))


#: Keys are split by their top bits into this many parts per band, so that one part's hash
#: table stays in the CPU cache (one table for a million keys does not: a miss per key).
_PART_BITS = 8


@compiled
def _band_pairs(keys: np.ndarray, rows: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """:func:`bucket_pairs` of ``keys[band, rows]`` for each of ``bands``, as row numbers, concatenated.

    Per band, the rows are split by the top bits of their key (keeping their order), and each
    part goes through an open-addressing table (keys are hashes: their low bits are the slot)
    that remembers each key's first and latest row; a row whose key is there pairs with both.
    """
    count = len(rows)
    parts = 1 << _PART_BITS
    shift = np.uint64(64 - _PART_BITS)
    part_keys = np.empty(count, np.uint64)
    part_rows = np.empty(count, np.int64)
    starts = np.zeros(parts + 1, np.int64)
    fill = np.zeros(parts, np.int64)
    table_keys = np.empty(16, np.uint64)
    first = np.empty(16, np.int64)
    latest = np.empty(16, np.int64)
    out = np.empty((count // 8 + 16, 2), np.int64)
    seen = np.zeros(_set_size(len(out)), np.uint64)
    n = 0
    for band in bands:
        starts[:] = 0
        for i in range(count):
            starts[np.int64(keys[band, rows[i]] >> shift) + 1] += 1
        for part in range(parts):
            starts[part + 1] += starts[part]
            fill[part] = starts[part]
        for i in range(count):
            key = keys[band, rows[i]]
            part = np.int64(key >> shift)
            part_keys[fill[part]] = key
            part_rows[fill[part]] = rows[i]
            fill[part] += 1
        for part in range(parts):
            size = 16
            while size < 2 * (starts[part + 1] - starts[part]):
                size *= 2
            if size > len(first):
                table_keys = np.empty(size, np.uint64)
                first = np.empty(size, np.int64)
                latest = np.empty(size, np.int64)
            mask = size - 1
            first[:size] = -1
            for i in range(starts[part], starts[part + 1]):
                key, row = part_keys[i], part_rows[i]
                slot = np.int64(key & np.uint64(mask))
                while first[slot] >= 0 and table_keys[slot] != key:
                    slot = (slot + 1) & mask
                if first[slot] < 0:
                    table_keys[slot] = key
                    first[slot] = row
                    latest[slot] = row
                    continue
                if n + 2 > len(out):
                    grown = np.empty((2 * len(out), 2), np.int64)
                    grown[:n] = out[:n]
                    out = grown
                    # Keep the set of pairs at most half full: its size doubles with ``out``.
                    seen = np.zeros(_set_size(len(out)), np.uint64)
                    for k in range(n):
                        _add_pair(seen, out[k, 0], out[k, 1])
                if _add_pair(seen, first[slot], row):
                    out[n, 0], out[n, 1] = first[slot], row
                    n += 1
                if latest[slot] != first[slot] and _add_pair(seen, latest[slot], row):
                    out[n, 0], out[n, 1] = latest[slot], row  # the third member on: the previous one
                    n += 1
                latest[slot] = row
    return out[:n].copy()


@compiled
def _set_size(pairs: int) -> int:
    size = 1 << 16
    while size < 2 * pairs:
        size *= 2
    return size


@compiled
def _add_pair(seen: np.ndarray, low: np.int64, high: np.int64) -> bool:
    """Add pair ``(low, high)`` (rows < 2**32, ``low < high``) to the open-addressing set ``seen``
    (0: empty slot); False when it was there: near-copies share many bands, and each band
    would give their pair again (41 bands: ~18 times as many pairs as distinct ones)."""
    code = (np.uint64(low) << np.uint64(32)) | np.uint64(high)
    mask = len(seen) - 1
    slot = np.int64((code * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
    while seen[slot] != 0:
        if seen[slot] == code:
            return False
        slot = (slot + 1) & mask
    seen[slot] = code
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
