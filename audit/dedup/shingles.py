"""Shingling in bulk: a batch of normalised texts -> every text's hashed n-grams, in numpy.

Word n-grams (default 5) for texts with at least ``word_n`` words; character (UTF-8 byte)
n-grams for shorter texts, so short texts do not all collapse into one shingle and one giant
cluster; a text shorter than ``char_n`` bytes is one shingle.

A shingle's hash is a function of its bytes only (so it is the same in every batch, process
and run): the polynomial ``sum(byte[k] * P**k) mod 2**64`` over the shingle's UTF-8 bytes (a
word n-gram is its words joined by single spaces), plus its length, finalised with the 64-bit
MurmurHash3 mixer and cut to its high 32 bits. The polynomial of every substring comes from
one prefix-sum over the batch's bytes, so no Python code runs per word or per shingle.
:func:`reference_shingle_hash` is the slow per-string definition the tests compare against.

Example:
    >>> len(shingle_hashes("a b c d e f", word_n=5))
    2
    >>> len(shingle_hashes("tiny", word_n=5, char_n=3))
    2
    >>> hashed = hash_batch(["a b c d e f", "tiny", ""], word_n=5, char_n=3)
    >>> hashed.counts.tolist()
    [2, 2, 0]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MASK64 = (1 << 64) - 1
#: Odd 64-bit multiplier of the polynomial (odd, so it has an inverse modulo 2**64).
POLY = 0x9E3779B97F4A7C15
POLY_INVERSE = pow(POLY, -1, 1 << 64)
#: Mixed in with the length, so strings that differ only by trailing NUL bytes differ.
LENGTH_KEY = 0xC2B2AE3D27D4EB4F
#: Mixed into character n-grams, so one never equals a word n-gram of another text.
CHAR_TAG = 0x165667B19E3779F9
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33, _S32 = np.uint64(33), np.uint64(32)
_SPACE, _NEWLINE = 32, 10


@dataclass(frozen=True)
class ShingleBatch:
    """Shingle hashes of a batch of texts: text ``i`` owns ``hashes[offsets[i]:offsets[i + 1]]``.

    Hashes are uint32 in text order (a repeated shingle appears again); ``offsets`` has one
    more entry than there are texts.
    """

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, row: int) -> np.ndarray:
        """The shingle hashes of text ``row``."""
        return self.hashes[self.offsets[row] : self.offsets[row + 1]]

    def take(self, rows: np.ndarray, limits: np.ndarray | None = None) -> ShingleBatch:
        """A batch of texts ``rows`` (in that order; each cut to its first ``limits`` hashes), one copy."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        if limits is not None:
            lengths = np.minimum(lengths, limits)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Position k of the output reads starts[text] + (k - offsets[text]): one ragged gather.
        positions = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
        return ShingleBatch(self.hashes[positions], offsets)

    def as_sets(self, rows: np.ndarray | None = None) -> ShingleBatch:
        """Each text's hashes sorted and deduplicated.

        With ``rows`` (sorted row numbers), only those texts are kept; the others are left empty
        (verification needs the sets of candidates only, not of every text). Texts are sorted
        ``SORT_CHUNK`` hashes at a time, so working memory stays bounded at any corpus size.
        """
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        sizes = self.counts[rows]
        unique_counts = np.zeros(len(self), dtype=np.int64)
        hashes = np.empty(int(sizes.sum()), dtype=np.uint32)  # sets are never larger
        filled = 0
        for lo, hi in chunk_ranges(sizes, SORT_CHUNK):
            values, counts = _sorted_unique(self.take(rows[lo:hi]))
            hashes[filled : filled + len(values)] = values
            filled += len(values)
            unique_counts[rows[lo:hi]] = counts
        hashes.resize(filled, refcheck=False)
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(unique_counts, out=offsets[1:])
        return ShingleBatch(hashes, offsets)


#: Shingle hashes handled per step of the bulk set operations (their temporaries: ~40 bytes each).
SORT_CHUNK = 1 << 22


def chunk_ranges(sizes: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive ranges of entries whose summed ``sizes`` stay near ``limit`` (at least one entry each)."""
    ends = np.searchsorted(np.cumsum(sizes), np.arange(limit, int(sizes.sum()) + limit, limit), "right")
    bounds = np.unique(np.concatenate(([0], np.minimum(ends, len(sizes)), [len(sizes)])))
    return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds.tolist())]


def _sorted_unique(batch: ShingleBatch) -> tuple[np.ndarray, np.ndarray]:
    """Every text's hashes sorted and deduplicated (flat, in text order) and their counts.

    Texts of similar length are sorted as rows of one padded 2-D uint32 array: numpy sorts
    short rows ~20x faster than one flat array of ``(text << 32) | hash`` keys.
    """
    counts = batch.counts
    width_class = np.ceil(np.log2(np.maximum(counts, 16))).astype(np.int64)
    unique_counts = np.zeros(len(batch), dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for cls in np.unique(width_class[counts > 0]).tolist():
        rows = np.flatnonzero((width_class == cls) & (counts > 0))
        inside = np.arange(1 << cls)[None, :] < counts[rows][:, None]
        padded = np.full(inside.shape, 0xFFFFFFFF, dtype=np.uint32)
        padded[inside] = batch.take(rows).hashes
        padded.sort(axis=1)
        # The first ``count`` columns hold the text's hashes (padding sorts last); keep first copies.
        keep = inside
        keep[:, 1:] &= padded[:, 1:] != padded[:, :-1]
        unique_counts[rows] = keep.sum(axis=1)
        parts.append((rows, padded[keep]))
    offsets = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(unique_counts, out=offsets[1:])
    hashes = np.empty(offsets[-1], dtype=np.uint32)
    for rows, values in parts:
        local = np.concatenate(([0], np.cumsum(unique_counts[rows])[:-1]))
        hashes[np.arange(len(values)) + np.repeat(offsets[rows] - local, unique_counts[rows])] = values
    return hashes, unique_counts


def _fmix64(values: np.ndarray) -> np.ndarray:
    values = values ^ (values >> _S33)
    values = values * _M1
    values = values ^ (values >> _S33)
    values = values * _M2
    return values ^ (values >> _S33)


_POWER_CACHE: dict[int, np.ndarray] = {}


def _powers(base: int, count: int) -> np.ndarray:
    """``base**0 .. base**(count-1)`` modulo 2**64 (uint64 products wrap: that is the modulo).

    Cached per base and grown by doubling: recomputing them was the slowest part of a batch.
    Started small: the kernel asks for a batch's longest text only (a few KB of abstracts),
    and the cache lives as long as the process (it started at 4 M powers: 64 MB kept by
    every run that signed anything).
    """
    cached = _POWER_CACHE.get(base)
    if cached is None or len(cached) < count:
        size = max(count, 2 * len(cached) if cached is not None else 1 << 14)
        cached = np.full(size, base, dtype=np.uint64)
        cached[0] = 1
        cached = _POWER_CACHE[base] = np.cumprod(cached, dtype=np.uint64)
    return cached[:count]


def _finalise(poly: np.ndarray, lengths: np.ndarray, tag: int) -> np.ndarray:
    mixed = _fmix64(poly + lengths.astype(np.uint64) * np.uint64(LENGTH_KEY) + np.uint64(tag))
    return (mixed >> _S32).astype(np.uint32)


def reference_shingle_hash(shingle: str, char_gram: bool = False) -> int:
    """The hash of one shingle, computed slowly with Python integers (the definition).

    >>> reference_shingle_hash("a b c d e") == int(hash_batch(["a b c d e"]).hashes[0])
    True
    """
    data = shingle.encode("utf-8")
    poly = sum(byte * pow(POLY, k, 1 << 64) for k, byte in enumerate(data)) & MASK64
    value = (poly + len(data) * LENGTH_KEY + (CHAR_TAG if char_gram else 0)) & MASK64
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        value = ((value ^ (value >> 33)) * multiplier) & MASK64
    return (value ^ (value >> 33)) >> 32


def hash_batch(norm_texts: Sequence[str], word_n: int = 5, char_n: int = 5) -> ShingleBatch:
    """Shingle and hash a batch of normalised texts (single spaces, no newlines) at once."""
    count = len(norm_texts)
    data = np.frombuffer("\n".join(norm_texts).encode("utf-8"), dtype=np.uint8)
    if count == 0 or len(data) == 0:
        return ShingleBatch(np.empty(0, np.uint32), np.zeros(count + 1, np.int64))
    # prefix[i] = poly of data[:i]; the poly of data[s:e] is (prefix[e] - prefix[s]) * P**-s.
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.multiply(data, _powers(POLY, len(data)), out=prefix[1:], dtype=np.uint64)  # no uint64 copy of data
    np.cumsum(prefix[1:], out=prefix[1:])
    inverse = _powers(POLY_INVERSE, len(data) + 1)

    def segments(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return (prefix[ends] - prefix[starts]) * inverse[starts]

    separator = (data == _SPACE) | (data == _NEWLINE)
    newlines = np.flatnonzero(data == _NEWLINE)
    before = np.concatenate(([True], separator[:-1]))
    after = np.concatenate((separator[1:], [True]))
    word_starts = np.flatnonzero(~separator & before)
    word_ends = np.flatnonzero(~separator & after) + 1
    # Each text's first word, found by its first byte (a word never spans the newline between texts).
    first_words = np.searchsorted(word_starts, np.concatenate(([0], newlines + 1)))
    words_per_doc = np.diff(np.append(first_words, len(word_starts)))
    word_doc = np.repeat(np.arange(count), words_per_doc)

    # Word n-grams: word w starts one when word w + n - 1 is in the same text.
    last = np.arange(len(word_starts) - word_n + 1) + (word_n - 1)
    first = last - (word_n - 1)
    whole = word_doc[first] == word_doc[last] if len(last) else np.zeros(0, bool)
    first, last = first[whole], last[whole]
    word_hashes = _finalise(
        segments(word_starts[first], word_ends[last]), word_ends[last] - word_starts[first], 0
    )
    docs = [word_doc[first]]
    hashes = [word_hashes]

    # Character n-grams for texts with some words but fewer than word_n.
    short = np.flatnonzero((words_per_doc > 0) & (words_per_doc < word_n))
    if len(short):
        doc_starts = np.concatenate(([0], newlines + 1))
        doc_ends = np.concatenate((newlines, [len(data)]))
        starts, ends, owners = [], [], []
        for doc in short.tolist():
            start, end = int(doc_starts[doc]), int(doc_ends[doc])
            grams = max(1, end - start - char_n + 1)
            gram_starts = np.arange(start, start + grams)
            starts.append(gram_starts)
            ends.append(np.minimum(gram_starts + char_n, end))
            owners.append(np.full(grams, doc))
        gram_starts, gram_ends = np.concatenate(starts), np.concatenate(ends)
        docs.append(np.concatenate(owners))
        hashes.append(_finalise(segments(gram_starts, gram_ends), gram_ends - gram_starts, CHAR_TAG))

    all_docs = np.concatenate(docs)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_docs, minlength=count), out=offsets[1:])
    if len(hashes) == 1:  # word n-grams only: already in text order
        return ShingleBatch(hashes[0], offsets)
    order = np.argsort(all_docs, kind="stable")
    return ShingleBatch(np.concatenate(hashes)[order], offsets)


def shingles(norm_text: str, word_n: int = 5, char_n: int = 5) -> list[str]:
    """The distinct shingles of one normalised text as strings, in first-seen order (for reading)."""
    words = norm_text.split()
    if not words:
        return []
    if len(words) >= word_n:
        return list(dict.fromkeys(" ".join(words[i : i + word_n]) for i in range(len(words) - word_n + 1)))
    data = " ".join(words).encode("utf-8")
    grams = max(1, len(data) - char_n + 1)
    return list(dict.fromkeys(data[i : i + char_n].decode("utf-8", "replace") for i in range(grams)))


def shingle_hashes(norm_text: str, word_n: int = 5, char_n: int = 5) -> np.ndarray:
    """Sorted unique shingle hashes (uint32) of one normalised text."""
    return np.unique(hash_batch([norm_text], word_n, char_n).hashes)
