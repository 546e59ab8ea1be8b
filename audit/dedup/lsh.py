"""Candidate pairs from MinHash signatures: LSH banding in numpy, tuned for recall.

The LSH only proposes; every candidate is verified on the exact shingle sets afterwards
(:mod:`audit.dedup.verify`), so the banding is chosen for recall: bands x rows come from
datasketch's own optimiser (``MinHashLSH``'s ``_optimal_param``) at a threshold below the
verification threshold, with false negatives weighted 9:1 over false positives. A pair with
true Jaccard ``j`` becomes a candidate with probability ``1 - (1 - j**rows)**bands``
(:meth:`Banding.false_negative_rate` states the miss rate).

A band's rows are hashed to one uint64 key; keys are grouped with pandas' hash table (linear,
no sort of the whole corpus), and only keys shared by two or more documents are sorted. A
bucket of ``k`` documents yields ``2k - 3`` pairs (each member with the first, and with the
previous member), not ``k**2``: enough to connect the bucket, and buckets are small after
exact copies are grouped.

Example:
    >>> banding = choose_banding(0.8, 128)
    >>> (banding.bands, banding.rows), round(banding.false_negative_rate(0.8), 5)
    ((25, 5), 5e-05)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch.lsh import _optimal_param

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


def candidate_pairs_from_keys(keys: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """:func:`candidate_pairs` from band keys already made (:func:`all_band_keys`: one row per
    band, one column per document); ``rows`` limits the search to those documents."""
    rows = np.arange(keys.shape[1]) if rows is None else np.asarray(rows, dtype=np.int64)
    found = [rows[bucket_pairs(band[rows])] for band in keys]
    return unique_pairs(np.concatenate(found) if found else np.empty((0, 2), np.int64))


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Pairs as ``(low, high)``, duplicates removed, sorted."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    low, high = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    keep = low != high
    codes = np.unique(low[keep].astype(np.int64) << 32 | high[keep].astype(np.int64))
    return np.column_stack((codes >> 32, codes & 0xFFFFFFFF))
