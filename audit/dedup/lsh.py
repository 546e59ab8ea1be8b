"""Candidate pairs from MinHash signatures through datasketch's ``MinHashLSH``.

The LSH only proposes; every candidate is verified on the exact shingle sets afterwards
(:mod:`audit.dedup.verify`), so the banding is tuned for recall: its threshold sits below the
verification threshold and false negatives weigh more than false positives.
"""

from __future__ import annotations

import numpy as np
from datasketch import MinHashLSH

from audit.dedup.minhash import MinHasher

#: How far below the verification threshold the LSH threshold sits.
LSH_SLACK = 0.15
#: datasketch's (false positive, false negative) weights when it picks bands x rows.
RECALL_WEIGHTS = (0.1, 0.9)


def lsh_index(hasher: MinHasher, threshold: float) -> MinHashLSH:
    """An empty datasketch LSH index tuned for recall at ``threshold``."""
    return MinHashLSH(
        threshold=max(0.05, threshold - LSH_SLACK),
        num_perm=hasher.num_perm,
        weights=RECALL_WEIGHTS,
    )


def candidate_pairs(
    signatures: np.ndarray, hasher: MinHasher, threshold: float, skip: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Sorted pairs ``(i, j)``, ``i < j``, of rows whose signatures share an LSH bucket.

    Rows marked in ``skip`` (empty texts, copies already grouped) are left out.
    """
    index = lsh_index(hasher, threshold)
    pairs: set[tuple[int, int]] = set()
    for row in range(len(signatures)):
        if skip is not None and skip[row]:
            continue
        minhash = hasher.to_datasketch(signatures[row])
        for other in index.query(minhash):
            pairs.add((other, row))
        index.insert(row, minhash)
    return sorted(pairs)
