"""Shingling: a normalised text -> the set of its hashed n-grams.

Word n-grams (default 5) for texts with enough words; character n-grams for shorter texts, so
that short texts do not all collapse into one shingle and one giant cluster.

Example:
    >>> len(shingle_hashes("a b c d e f", word_n=5))
    2
    >>> len(shingle_hashes("tiny", word_n=5, char_n=3))
    2
"""

from __future__ import annotations

import numpy as np
import xxhash


def shingles(norm_text: str, word_n: int = 5, char_n: int = 5) -> list[str]:
    """The distinct shingles of a normalised text, in first-seen order."""
    words = norm_text.split()
    if not words:
        return []
    if len(words) >= word_n:
        grams = (" ".join(words[i : i + word_n]) for i in range(len(words) - word_n + 1))
    else:
        joined = " ".join(words)
        if len(joined) <= char_n:
            return [joined]
        # Prefixed so a char n-gram never equals a word n-gram of another text.
        grams = ("\x00" + joined[i : i + char_n] for i in range(len(joined) - char_n + 1))
    return list(dict.fromkeys(grams))


def shingle_hashes(norm_text: str, word_n: int = 5, char_n: int = 5, seed: int = 0) -> np.ndarray:
    """Sorted unique 32-bit xxhash values of the shingles (uint32)."""
    values = [xxhash.xxh32_intdigest(s.encode("utf-8"), seed) for s in shingles(norm_text, word_n, char_n)]
    return np.unique(np.asarray(values, dtype=np.uint32))
