"""MinHash signatures for many documents at once, compatible with datasketch.

Signatures use datasketch's ``affine32`` scheme (permutations drawn from the same seed, inputs
pre-mixed by the same finaliser), computed in numpy for a whole batch: a signature made here
equals ``datasketch.MinHash(num_perm, seed, scheme="affine32", hashfunc=...)`` fed the same
32-bit shingle hashes, so datasketch's LSH indexes and storage accept them.

Example:
    >>> import numpy as np
    >>> hasher = MinHasher(num_perm=16, seed=1)
    >>> sigs = hasher.signatures([np.array([1, 2, 3], dtype=np.uint32)] * 2)
    >>> sigs.shape, bool((sigs[0] == sigs[1]).all())
    ((2, 16), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash
from datasketch.minhash import _fmix

SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)


class MinHasher:
    """Computes MinHash signatures (uint32, shape ``(docs, num_perm)``) in numpy batches."""

    def __init__(self, num_perm: int = 128, seed: int = 1, batch_shingles: int = 200_000) -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.batch_shingles = batch_shingles
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)

    def signatures(self, hash_sets: Sequence[np.ndarray]) -> np.ndarray:
        """One signature row per hash set; an empty set gets the all-max (empty) signature."""
        out = np.full((len(hash_sets), self.num_perm), EMPTY, dtype=np.uint32)
        start = 0
        while start < len(hash_sets):
            stop, total = start, 0
            while stop < len(hash_sets) and (
                total == 0 or total + len(hash_sets[stop]) <= self.batch_shingles
            ):
                total += len(hash_sets[stop])
                stop += 1
            if total > self.batch_shingles:  # one huge document (a 10 MB line): its shingles in slices
                self._fill_large(hash_sets[start], out[start])
            else:
                self._fill(hash_sets[start:stop], out[start:stop])
            start = stop
        return out

    def _fill_large(self, hashes: np.ndarray, out: np.ndarray) -> None:
        """The signature of one document with more shingles than a batch, a slice at a time."""
        for begin in range(0, len(hashes), self.batch_shingles):
            part = np.empty((1, self.num_perm), dtype=np.uint32)
            self._fill([hashes[begin : begin + self.batch_shingles]], part)
            np.minimum(out, part[0], out=out)

    def _fill(self, hash_sets: Sequence[np.ndarray], out: np.ndarray) -> None:
        lengths = np.fromiter((len(h) for h in hash_sets), dtype=np.int64, count=len(hash_sets))
        nonempty = np.flatnonzero(lengths)
        if len(nonempty) == 0:
            return
        flat = np.concatenate([hash_sets[i] for i in nonempty]).astype(np.uint32)
        mixed = _fmix(flat, 32)
        # uint32 arithmetic wraps: that wrap is the scheme's modulo 2^32.
        permuted = mixed[:, None] * self._a[None, :] + self._b[None, :]
        offsets = np.concatenate(([0], np.cumsum(lengths[nonempty])[:-1]))
        out[nonempty] = np.minimum.reduceat(permuted, offsets, axis=0)

    def to_datasketch(self, signature: np.ndarray) -> LeanMinHash:
        """A datasketch ``LeanMinHash`` holding ``signature``."""
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)
