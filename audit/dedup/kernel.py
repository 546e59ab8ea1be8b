"""The signing kernel: a batch of texts -> shingle hashes, MinHash signatures and LSH band keys,
compiled with numba, in one pass over the batch's UTF-8 bytes.

It computes exactly what the numpy path does (:func:`audit.dedup.shingles.hash_batch`,
:meth:`audit.dedup.minhash.MinHasher.batch`, :func:`audit.dedup.lsh.all_band_keys`, xxh64 of
each text), which stays as the reference the tests compare it to, without the numpy path's
temporaries: no ``(num_perm x shingles)`` matrix and no prefix sums over the whole batch; each
text is done start to end in a few KB of scratch.

- word n-grams (``word_n``) where a text has that many words, else character (byte) n-grams;
  a shingle's hash is the polynomial of its bytes mod 2**64 plus its length (and a tag for
  character n-grams) through MurmurHash3's fmix64, high 32 bits;
- MinHash: ``min over shingles of a[p] * fmix32(h) + b[p]`` in uint32 arithmetic (datasketch's
  ``affine32``), and the same over the first ``prefix_shingles`` shingles;
- band keys of both signatures, as :func:`audit.dedup.lsh.band_keys` makes them;
- xxh64 (seed 0) of every text's bytes: the exact-copy key.

:func:`prepare_batch` does the normalisation the signer needs (``normalise_text`` then
``strip_normalised_furniture``) with its ASCII part moved out of Python: the batch's ASCII
texts are lower-cased, their non-alphanumerics mapped to spaces and space runs collapsed in
compiled code (one table lookup per byte); texts with other characters are normalised by
:func:`audit.normalise.normalise_text`; furniture is looked for in every text (compiled: a
table of the phrases' first two bytes) and removed, by
:func:`audit.furniture.strip_normalised_furniture`, only from the texts it is found in.
Results equal the per-text functions.

Compiled code is cached on disk, and compiled in memory where it cannot be
(:mod:`audit.dedup.jit`). The kernels release the GIL, so threads run batches side by side.

Example:
    >>> from audit.dedup.lsh import Banding
    >>> signed = sign_prepared(*prepare_batch(["A b c d e f!", "a b c d e f"], True), num_perm=16,
    ...     seed=1, word_n=5, char_n=5, prefix_shingles=24, bandings=(Banding(4, 4),))
    >>> signed.offsets.tolist(), bool((signed.signatures[0] == signed.signatures[1]).all())
    ([0, 2, 4], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from audit.dedup.jit import compiled
from audit.dedup.lsh import Banding
from audit.dedup.minhash import MinHasher
from audit.dedup.shingles import CHAR_TAG, LENGTH_KEY, POLY, POLY_INVERSE, _powers
from audit.furniture import NORMALISED_EDGE_WORDS, NORMALISED_FURNITURE, strip_normalised_furniture
from audit.normalise import normalise_text

__all__ = ["KernelBatch", "normalise_many", "prepare_batch", "sign_prepared", "xxh64"]

_U64 = np.uint64
_FM1, _FM2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
_P, _PINV = _U64(POLY), _U64(POLY_INVERSE)
_LENGTH_KEY, _CHAR_TAG = _U64(LENGTH_KEY), _U64(CHAR_TAG)
_KEY_MULTIPLIER = _U64(0x9E3779B97F4A7C15)
_X1, _X2, _X3 = _U64(0x9E3779B185EBCA87), _U64(0xC2B2AE3D27D4EB4F), _U64(0x165667B19E3779F9)
_X4, _X5 = _U64(0x85EBCA77C2B2AE63), _U64(0x27D4EB2F165667C5)
_EMPTY = np.uint32(0xFFFFFFFF)
_SPACE, _NEWLINE = 32, 10

#: ASCII bytes -> lower-cased if a letter or digit, else a space (as ``normalise_text``'s ASCII
#: path); bytes >= 128 (of texts normalised in Python, whose ASCII is already [a-z0-9 ]) unchanged.
_ASCII_WORD = bytes(c if chr(c).isalnum() else 32 for c in range(128)).lower() + bytes(range(128, 256))
_ASCII_TABLE = np.frombuffer(_ASCII_WORD, np.uint8)


def _pattern_table(phrases: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Phrases as rows of a uint8 array and their lengths; a phrase containing another is left out
    (the shorter one finds it)."""
    kept = [p.encode("utf-8") for p in phrases if not any(q != p and q in p for q in phrases)]
    assert min(map(len, kept)) >= 2
    # One more row: 1 at each (first byte << 8 | second byte) of a phrase (64 K columns).
    table = np.zeros((len(kept) + 1, max(1 << 16, *map(len, kept))), np.uint8)
    for row, phrase in enumerate(kept):
        table[row, : len(phrase)] = np.frombuffer(phrase, np.uint8)
        table[-1, phrase[0] << 8 | phrase[1]] = 1
    return table, np.array([len(p) for p in kept], np.int64)


#: What :func:`strip_normalised_furniture` removes is never in a text without one of these.
_FURNITURE, _FURNITURE_LENGTHS = _pattern_table((*NORMALISED_FURNITURE, *NORMALISED_EDGE_WORDS))

_jit = compiled


@_jit
def _fmix64(value: np.uint64) -> np.uint64:
    value ^= value >> _U64(33)
    value *= _FM1
    value ^= value >> _U64(33)
    value *= _FM2
    return value ^ (value >> _U64(33))


@_jit
def _fmix32(value: np.uint32) -> np.uint32:
    value = np.uint32(value ^ (value >> np.uint32(16)))
    value = np.uint32(value * np.uint32(0x85EBCA6B))
    value = np.uint32(value ^ (value >> np.uint32(13)))
    value = np.uint32(value * np.uint32(0xC2B2AE35))
    return np.uint32(value ^ (value >> np.uint32(16)))


@_jit
def _rotl(value: np.uint64, bits: int) -> np.uint64:
    return (value << _U64(bits)) | (value >> _U64(64 - bits))


@_jit
def _read64(data: np.ndarray, at: int) -> np.uint64:
    value = _U64(0)
    for k in range(8):
        value |= _U64(data[at + k]) << _U64(8 * k)
    return value


@_jit
def _xxh_round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc += lane * _X2
    return _rotl(acc, 31) * _X1


@_jit
def _xxh64(data: np.ndarray, start: int, end: int) -> np.uint64:
    """XXH64 with seed 0 of ``data[start:end]`` (the xxhash package's ``xxh64_intdigest``)."""
    length = end - start
    at = start
    if length >= 32:
        v1, v2, v3, v4 = _X1 + _X2, _X2, _U64(0), _U64(0) - _X1
        while at + 32 <= end:
            v1 = _xxh_round(v1, _read64(data, at))
            v2 = _xxh_round(v2, _read64(data, at + 8))
            v3 = _xxh_round(v3, _read64(data, at + 16))
            v4 = _xxh_round(v4, _read64(data, at + 24))
            at += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        for v in (v1, v2, v3, v4):
            h = (h ^ _xxh_round(_U64(0), v)) * _X1 + _X4
    else:
        h = _X5
    h += _U64(length)
    while at + 8 <= end:
        h ^= _xxh_round(_U64(0), _read64(data, at))
        h = _rotl(h, 27) * _X1 + _X4
        at += 8
    if at + 4 <= end:
        lane = _U64(data[at]) | (_U64(data[at + 1]) << _U64(8))
        lane |= (_U64(data[at + 2]) << _U64(16)) | (_U64(data[at + 3]) << _U64(24))
        h ^= lane * _X1
        h = _rotl(h, 23) * _X2 + _X3
        at += 4
    while at < end:
        h ^= _U64(data[at]) * _X5
        h = _rotl(h, 11) * _X1
        at += 1
    h ^= h >> _U64(33)
    h *= _X2
    h ^= h >> _U64(29)
    h *= _X3
    return h ^ (h >> _U64(32))


@_jit
def _has_any(data: np.ndarray, start: int, end: int, patterns: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether ``data[start:end]`` contains one of the patterns (rows of ``patterns``, 2+ bytes each;
    the last row is the table of their first two bytes, :func:`_pattern_table`)."""
    # A pattern is compared only where its first two bytes are: the first letters alone are
    # common, and each false start costs a mispredicted branch.
    pairs = patterns[-1]
    key = 0
    for at in range(start, end):
        key = ((key << 8) | data[at]) & 0xFFFF  # the byte pair ending here
        if pairs[key] and at > start:
            begin = at - 1
            for k in range(len(lengths)):
                length = lengths[k]
                if begin + length <= end:
                    j = 0
                    while j < length and data[begin + j] == patterns[k, j]:
                        j += 1
                    if j == length:
                        return True
    return False


@_jit
def _suspects(data: np.ndarray, offsets: np.ndarray, patterns: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per text: does it contain one of the patterns."""
    found = np.zeros(len(offsets) - 1, np.bool_)
    for doc in range(len(offsets) - 1):
        found[doc] = _has_any(data, offsets[doc], offsets[doc + 1], patterns, lengths)
    return found


@_jit
def _normalise_ascii(
    data: np.ndarray, offsets: np.ndarray, table: np.ndarray, patterns: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text mapped through ``table``, space runs made one space, edge spaces removed
    (``" ".join(t.translate(table).split())`` when only spaces separate words), and whether it
    contains one of the patterns."""
    out = np.empty(len(data), np.uint8)
    out_offsets = np.zeros(len(offsets), np.int64)
    found = np.zeros(len(offsets) - 1, np.bool_)
    n = 0
    for doc in range(len(offsets) - 1):
        first = n
        previous = _SPACE  # so leading spaces are dropped
        for at in range(offsets[doc], offsets[doc + 1]):
            byte = table[data[at]]
            out[n] = byte
            # A space is kept only after a non-space (branch-free: this loop is most of the cost).
            n += (byte != _SPACE) | (previous != _SPACE)
            previous = byte
        if n > first and out[n - 1] == _SPACE:
            n -= 1
        out_offsets[doc + 1] = n
        found[doc] = _has_any(out, first, n, patterns, lengths)
    return out[:n], out_offsets, found


@_jit
def _band_keys(signature: np.ndarray, bands: int, rows: int, keys: np.ndarray, first: int, doc: int) -> None:
    for band in range(bands):
        key = _U64(0)
        for row in range(rows):
            key = (key ^ _U64(signature[band * rows + row])) * _KEY_MULTIPLIER
            key ^= key >> _U64(29)
        keys[first + band, doc] = key


@_jit
def _sign(
    data: np.ndarray,
    offsets: np.ndarray,
    word_n: int,
    char_n: int,
    prefix_shingles: int,
    a: np.ndarray,
    b: np.ndarray,
    bandings: np.ndarray,
    powers: np.ndarray,
    inverses: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    docs = len(offsets) - 1
    num_perm = len(a)
    longest = 0
    for doc in range(docs):
        longest = max(longest, offsets[doc + 1] - offsets[doc])
    # A text of L bytes has at most L word n-grams or L character n-grams (one when L < char_n).
    hashes = np.empty(len(data) + docs, np.uint32)
    counts = np.zeros(docs + 1, np.int64)
    signatures = np.full((docs, num_perm), _EMPTY, np.uint32)
    prefix = np.full((docs, num_perm), _EMPTY, np.uint32)
    text_hashes = np.empty(docs, np.uint64)
    total_bands = 0
    for k in range(len(bandings)):
        total_bands += bandings[k, 0]
    keys = np.empty((total_bands, docs), np.uint64)
    # Per text: prefix sums of byte * P**k (the polynomial of bytes s..e is
    # (sums[e] - sums[s]) * P**-s, ``powers`` and ``inverses`` hold P**k and P**-k); word
    # starts and ends.
    sums = np.empty(longest + 1, np.uint64)
    word_starts = np.empty(longest // 2 + 2, np.int64)
    word_ends = np.empty(longest // 2 + 2, np.int64)
    mixed = np.empty(longest + 1, np.uint32)
    n = 0
    for doc in range(docs):
        start, end = offsets[doc], offsets[doc + 1]
        length = end - start
        text_hashes[doc] = _xxh64(data, start, end)
        total = _U64(0)
        words = ends = 0
        after_separator = True
        for k in range(length):
            byte = data[start + k]
            sums[k] = total
            total += _U64(byte) * powers[k]
            separator = (byte == _SPACE) | (byte == _NEWLINE)
            # Branch-free: write the position, count it only where a word starts (ends).
            word_starts[words] = k
            words += (not separator) & after_separator
            word_ends[ends] = k
            ends += separator & (not after_separator)
            after_separator = separator
        sums[length] = total
        if not after_separator:
            word_ends[ends] = length
        first = n
        if words >= word_n:
            for w in range(words - word_n + 1):
                s, e = word_starts[w], word_ends[w + word_n - 1]
                poly = (sums[e] - sums[s]) * inverses[s]
                hashes[n] = np.uint32(_fmix64(poly + _U64(e - s) * _LENGTH_KEY) >> _U64(32))
                n += 1
        elif words > 0:
            for s in range(max(1, length - char_n + 1)):
                e = min(s + char_n, length)
                poly = (sums[e] - sums[s]) * inverses[s]
                hashes[n] = np.uint32(_fmix64(poly + _U64(e - s) * _LENGTH_KEY + _CHAR_TAG) >> _U64(32))
                n += 1
        counts[doc + 1] = n
        shingles = n - first
        for k in range(shingles):
            mixed[k] = _fmix32(hashes[first + k])
        signature = signatures[doc]
        cut = min(shingles, prefix_shingles)
        for k in range(shingles):
            if k == cut:
                prefix[doc, :] = signature
            value = mixed[k]
            for p in range(num_perm):
                permuted = np.uint32(a[p] * value + b[p])
                if permuted < signature[p]:
                    signature[p] = permuted
        if cut == shingles:
            prefix[doc, :] = signature
        row = 0
        for k in range(len(bandings)):
            source = signatures[doc] if bandings[k, 2] == 0 else prefix[doc]
            _band_keys(source, bandings[k, 0], bandings[k, 1], keys, row, doc)
            row += bandings[k, 0]
    return hashes[:n].copy(), counts, signatures, prefix, text_hashes, keys


@dataclass(frozen=True)
class KernelBatch:
    """What :func:`sign_prepared` makes for a batch: text ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``."""

    hashes: np.ndarray
    offsets: np.ndarray
    signatures: np.ndarray
    prefix_signatures: np.ndarray
    text_hashes: np.ndarray
    #: One row per band: the ``bandings`` in order, each's bands in order.
    band_keys: np.ndarray


def prepare_batch(texts: Sequence[str], normalise: bool) -> tuple[np.ndarray, np.ndarray]:
    """The batch's comparable texts (``signer.comparable_text``) as one UTF-8 byte array and offsets.

    ``normalise``: apply ``normalise_text`` first; else the texts are normalised already and
    only page furniture is removed.
    """
    parts = list(texts)
    if normalise:
        # ASCII texts are translated with the whole batch below and collapsed in the kernel;
        # the rest are normalised here (their result is already collapsed: collapsing is a no-op).
        for k, text in enumerate(parts):
            if not text.isascii():
                parts[k] = normalise_text(text)
    lengths = np.fromiter(
        (len(t) if t.isascii() else len(t.encode("utf-8")) for t in parts), np.int64, len(parts)
    )
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # Writable (a bytearray), like every other array the kernels get: numba compiles once per
    # array type, and the first compile takes seconds.
    data = np.frombuffer(bytearray("".join(parts).encode("utf-8")), np.uint8)
    if normalise:
        data, offsets, suspects = _normalise_ascii(
            data, offsets, _ASCII_TABLE, _FURNITURE, _FURNITURE_LENGTHS
        )
    else:
        suspects = _suspects(data, offsets, _FURNITURE, _FURNITURE_LENGTHS)
    if suspects.any():
        data, offsets = _strip_furniture(data, offsets, np.flatnonzero(suspects))
    return data, offsets


def normalise_many(texts: Sequence[str]) -> list[str]:
    """``[normalise_text(t) for t in texts]``, the ASCII texts all at once in compiled code."""
    found = [t if t.isascii() else normalise_text(t) for t in texts]
    ascii_rows = [k for k, t in enumerate(texts) if t.isascii()]
    if ascii_rows:
        offsets = np.zeros(len(ascii_rows) + 1, np.int64)
        np.cumsum([len(texts[k]) for k in ascii_rows], out=offsets[1:])
        data = np.frombuffer(bytearray("".join(texts[k] for k in ascii_rows).encode("ascii")), np.uint8)
        data, offsets, _ = _normalise_ascii(data, offsets, _ASCII_TABLE, _FURNITURE, _FURNITURE_LENGTHS)
        joined = data.tobytes().decode("ascii")  # one byte per character: byte offsets index it
        bounds = offsets.tolist()
        for n, k in enumerate(ascii_rows):
            found[k] = joined[bounds[n] : bounds[n + 1]]
    return found


def _strip_furniture(
    data: np.ndarray, offsets: np.ndarray, suspects: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``strip_normalised_furniture`` applied to texts ``suspects`` (the others hold no furniture)."""
    changed, replacements = [], []
    for doc in suspects.tolist():
        text = data[offsets[doc] : offsets[doc + 1]].tobytes().decode("utf-8")
        stripped = strip_normalised_furniture(text)
        if stripped != text:
            changed.append(doc)
            replacements.append(stripped.encode("utf-8"))
    if not changed:
        return data, offsets
    lengths = np.array([len(r) for r in replacements], np.int64)
    replacement_offsets = np.zeros(len(changed) + 1, np.int64)
    np.cumsum(lengths, out=replacement_offsets[1:])
    replacement = np.frombuffer(bytearray(b"".join(replacements)), np.uint8)
    return _splice(data, offsets, np.array(changed, np.int64), replacement, replacement_offsets)


@_jit
def _splice(
    data: np.ndarray,
    offsets: np.ndarray,
    docs: np.ndarray,
    replacement: np.ndarray,
    replacement_offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The texts with texts ``docs`` (ascending) replaced by the replacement's texts."""
    out = np.empty(len(data) + len(replacement), np.uint8)
    out_offsets = np.zeros(len(offsets), np.int64)
    n = k = 0
    for doc in range(len(offsets) - 1):
        if k < len(docs) and docs[k] == doc:
            source, start, end = replacement, replacement_offsets[k], replacement_offsets[k + 1]
            k += 1
        else:
            source, start, end = data, offsets[doc], offsets[doc + 1]
        out[n : n + end - start] = source[start:end]
        n += end - start
        out_offsets[doc + 1] = n
    return out[:n], out_offsets


@lru_cache(maxsize=4)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    hasher = MinHasher(num_perm, seed)
    return hasher._a[:, 0].copy(), hasher._b[:, 0].copy()


def sign_prepared(
    data: np.ndarray,
    offsets: np.ndarray,
    *,
    num_perm: int,
    seed: int,
    word_n: int,
    char_n: int,
    prefix_shingles: int,
    bandings: Sequence[Banding | None] = (),
    prefix_bandings: Sequence[Banding | None] = (),
) -> KernelBatch:
    """Shingle hashes, signatures, prefix signatures, text hashes and band keys of prepared texts.

    ``bandings`` are made from the whole-text signatures, then ``prefix_bandings`` from the
    prefix signatures (a None is skipped). ``num_perm=0``: the shingle and text hashes only
    (no MinHash; what verification needs of texts signed before).
    """
    a, b = _permutations(num_perm, seed) if num_perm else (np.empty(0, np.uint32), np.empty(0, np.uint32))
    table = [(x.bands, x.rows, 0) for x in bandings if x is not None]
    table += [(x.bands, x.rows, 1) for x in prefix_bandings if x is not None]
    for bands, rows, _ in table:
        if bands * rows > num_perm:
            raise ValueError(f"{bands} bands x {rows} rows need more than {num_perm} permutations")
    bandings_array = np.array(table, np.int64).reshape(-1, 3)
    longest = int(np.diff(offsets).max(initial=0))
    powers, inverses = _powers(POLY, longest + 1), _powers(POLY_INVERSE, longest + 1)
    return KernelBatch(
        *_sign(data, offsets, word_n, char_n, prefix_shingles, a, b, bandings_array, powers, inverses)
    )


def xxh64(data: bytes) -> int:
    """XXH64 (seed 0) of ``data`` by the kernel's own implementation (for tests)."""
    array = np.frombuffer(data, np.uint8)
    return int(_xxh64(array, 0, len(array)))
