"""MinHash signatures for whole batches of documents, compatible with datasketch.

Signatures use datasketch's ``affine32`` scheme (permutations drawn from the same seed, inputs
pre-mixed by the same finaliser), computed in numpy over a batch's flat shingle array: a
signature made here equals ``datasketch.MinHash(num_perm, seed, scheme="affine32")`` fed the
same 32-bit shingle hashes, so datasketch's LSH, LSH Ensemble and storage accept them
(:meth:`MinHasher.to_datasketch`). uint32 arithmetic wraps, which is the scheme's modulo 2**32.

Besides the signature of the whole text, each document gets a *prefix signature*: the MinHash
of its first ``prefix_shingles`` shingles. A copy cut off at a length limit shares its prefix
with the full copy, so the prefix signatures collide even when the whole-text Jaccard is low.

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
#: Shingles per chunk of the (num_perm x shingles) product: ~10 MB at 128 permutations.
CHUNK_SHINGLES = 20_000


class MinHasher:
    """Computes MinHash signatures (uint32, shape ``(docs, num_perm)``) in numpy batches."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.seed = seed
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        self._a = np.asarray(a, dtype=np.uint32)[:, None]
        self._b = np.asarray(b, dtype=np.uint32)[:, None]

    def signatures(self, hash_sets: Sequence[np.ndarray]) -> np.ndarray:
        """One signature row per hash array; an empty array gets the all-max (empty) signature."""
        lengths = np.fromiter((len(h) for h in hash_sets), dtype=np.int64, count=len(hash_sets))
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        flat = np.concatenate([np.asarray(h, np.uint32) for h in hash_sets]) if len(hash_sets) else []
        return self.batch(np.asarray(flat, np.uint32), offsets)[0]

    def batch(
        self, hashes: np.ndarray, offsets: np.ndarray, prefix_shingles: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Signatures of the documents ``hashes[offsets[i]:offsets[i+1]]``, and their prefix signatures.

        The prefix signature (when ``prefix_shingles`` > 0) covers each document's first
        ``prefix_shingles`` shingles.
        """
        docs = len(offsets) - 1
        out = np.full((docs, self.num_perm), EMPTY, dtype=np.uint32)
        prefix_out = np.full((docs, self.num_perm), EMPTY, dtype=np.uint32) if prefix_shingles else None
        start = 0
        while start < docs:
            # Documents whose shingles fit one chunk (at least one document per chunk).
            stop = max(start + 1, int(np.searchsorted(offsets, offsets[start] + CHUNK_SHINGLES, "right")) - 1)
            stop = min(stop, docs)
            lo, hi = int(offsets[start]), int(offsets[stop])
            if hi - lo > CHUNK_SHINGLES:  # one huge document (a 10 MB line): its shingles in slices
                for begin in range(lo, hi, CHUNK_SHINGLES):
                    part = np.full((1, self.num_perm), EMPTY, dtype=np.uint32)
                    first_slice = begin == lo and prefix_out is not None
                    part_prefix = np.full((1, self.num_perm), EMPTY, dtype=np.uint32) if first_slice else None
                    end = min(begin + CHUNK_SHINGLES, hi)
                    self._fill(hashes, np.array([begin, end]), part, prefix_shingles, part_prefix)
                    np.minimum(out[start], part[0], out=out[start])
                    if part_prefix is not None and prefix_out is not None:
                        prefix_out[start] = part_prefix[0]  # prefix_shingles < CHUNK_SHINGLES
            else:
                self._fill(
                    hashes,
                    offsets[start : stop + 1],
                    out[start:stop],
                    prefix_shingles,
                    None if prefix_out is None else prefix_out[start:stop],
                )
            start = stop
        return out, prefix_out

    def _fill(
        self,
        hashes: np.ndarray,
        offsets: np.ndarray,
        out: np.ndarray,
        prefix_shingles: int,
        prefix_out: np.ndarray | None,
    ) -> None:
        lo, hi = int(offsets[0]), int(offsets[-1])
        if hi == lo:
            return
        starts, ends = offsets[:-1] - lo, offsets[1:] - lo
        nonempty = np.flatnonzero(ends > starts)
        permuted = self._a * _fmix(hashes[lo:hi].astype(np.uint32), 32)[None, :]
        permuted += self._b
        out[nonempty] = np.minimum.reduceat(permuted, starts[nonempty], axis=1).T
        if prefix_out is not None:
            # reduceat over [start, cut), [cut, next start), ...: the even columns are the prefixes.
            cuts = np.minimum(starts[nonempty] + prefix_shingles, ends[nonempty])
            bounds = np.empty(2 * len(nonempty), dtype=np.int64)
            bounds[0::2], bounds[1::2] = starts[nonempty], cuts
            if bounds[-1] == permuted.shape[1]:  # the last range then runs to the end anyway
                bounds = bounds[:-1]
            prefix_out[nonempty] = np.minimum.reduceat(permuted, bounds, axis=1)[:, 0::2].T

    def to_datasketch(self, signature: np.ndarray) -> LeanMinHash:
        """A datasketch ``LeanMinHash`` holding ``signature``."""
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)

    def check_compatible(self, seed: int, num_perm: int, scheme: str = SCHEME) -> None:
        """Raise ``ValueError`` when signatures made with other parameters are mixed with ours.

        Signatures from another seed, permutation count or scheme estimate garbage
        similarities without any error, so a saved index is checked before it is used.
        """
        if (seed, num_perm, scheme) != (self.seed, self.num_perm, SCHEME):
            raise ValueError(
                f"signatures made with seed={seed}, num_perm={num_perm}, scheme={scheme} cannot be "
                f"compared with seed={self.seed}, num_perm={self.num_perm}, scheme={SCHEME}"
            )
