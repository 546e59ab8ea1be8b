"""Exact similarity of two shingle-hash sets (sorted unique uint32 arrays).

Example:
    >>> import numpy as np
    >>> a, b = np.array([1, 2, 3, 4], np.uint32), np.array([1, 2, 3], np.uint32)
    >>> similarity(a, b)
    (0.75, 1.0)
"""

from __future__ import annotations

import numpy as np


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(jaccard, containment)``; containment is the share of the smaller set found in the other."""
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared), shared / min(len(a), len(b))
