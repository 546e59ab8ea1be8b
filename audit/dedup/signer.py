"""Signing a corpus: normalised texts -> shingle hashes, signatures and prefix signatures.

Texts are cut into batches of ``batch_docs``; each batch is normalised, shingled, MinHashed and
banded as a whole by the compiled kernel (:mod:`audit.dedup.kernel`) on ``workers`` threads,
or (``SignerSettings(kernel=False)``, the reference) by the numpy path
(:mod:`audit.dedup.shingles`, :mod:`audit.dedup.minhash`) on ``workers`` processes when the
corpus is large enough to pay for them. Working memory per batch is bounded (kernel: a few
times the batch's bytes and its output; numpy path: a batch's bytes times ~40, plus ~10 MB per
MinHash chunk); what is kept is 4 bytes per shingle (in text order:
verification sorts only the candidates' shingles into sets, and reads truncation prefixes from
the same arrays) and 2 x 4 x ``num_perm`` bytes of signatures per document, as uint32 arrays
(no Python object per document).

Example:
    >>> signed = sign_texts(["a b c d e f", "a b c d e f", ""], SignerSettings(num_perm=16))
    >>> signed.signatures.shape, bool((signed.signatures[0] == signed.signatures[1]).all())
    ((3, 16), True)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import xxhash

from audit.dedup.kernel import prepare_batch, sign_prepared
from audit.dedup.lsh import Banding, all_band_keys
from audit.dedup.minhash import MinHasher
from audit.dedup.shingles import ShingleBatch, hash_batch
from audit.frames import take_values
from audit.furniture import strip_normalised_furniture
from audit.normalise import normalise_text


@dataclass(frozen=True)
class SignerSettings:
    num_perm: int = 128
    seed: int = 1
    word_n: int = 5
    char_n: int = 5
    prefix_shingles: int = 24
    batch_docs: int = 2_000
    #: Threads (the kernel) or worker processes (the numpy path); None: every core.
    workers: int | None = None
    #: The numpy path signs in this process below this many texts per worker.
    min_docs_per_worker: int = 20_000
    #: Normalise the texts first (in the workers); False when they are normalised already.
    normalise: bool = False
    #: LSH band keys made in the workers, of the signatures and of the prefix signatures
    #: (``SignedCorpus.band_keys``); None: no keys.
    banding: Banding | None = None
    prefix_banding: Banding | None = None
    #: False: the signatures are not kept (``SignedCorpus.signatures`` has no columns), only
    #: their band keys; a million texts then hold 8 bytes per band, not 1 KB of signatures.
    keep_signatures: bool = True
    #: Sign with the compiled kernel (:mod:`audit.dedup.kernel`); False: the numpy path, the
    #: reference the tests compare the kernel to (same results, ~4x the CPU time).
    kernel: bool = True
    #: False: the shingle hashes are not kept (``SignedCorpus.sequences`` holds the counts and no
    #: hashes): at a million texts they are ~760 MB, and verification needs those of the
    #: candidates only, shingled again by :func:`shingle_rows` once the candidates are known.
    keep_sequences: bool = True

    def key_bands(self) -> int:
        return sum(b.bands for b in (self.banding, self.prefix_banding) if b is not None)


def comparable_text(text: str, normalise: bool) -> str:
    """The form dedup compares: normalised (unless it is already), page furniture removed."""
    return strip_normalised_furniture(normalise_text(text) if normalise else text)


@dataclass(frozen=True)
class SignedCorpus:
    #: Each text's shingle hashes in text order (a repeated shingle appears again); signed with
    #: ``keep_sequences=False``, the offsets (counts) only and no hashes.
    sequences: ShingleBatch
    signatures: np.ndarray
    prefix_signatures: np.ndarray
    #: xxh64 of each normalised text: equal hashes are exact copies.
    text_hashes: np.ndarray
    #: Band keys (``SignerSettings.banding`` then ``prefix_banding``), shape ``(bands, texts)``.
    band_keys: np.ndarray | None = None

    @cached_property
    def shingles(self) -> ShingleBatch:
        """Each text's shingle hashes, sorted and unique (computed when first asked for)."""
        return self.sequences.as_sets()


@lru_cache(maxsize=4)
def _hasher(num_perm: int, seed: int) -> MinHasher:
    return MinHasher(num_perm, seed)


def sign_batch(texts: Sequence[str], settings: SignerSettings) -> tuple[np.ndarray, ...]:
    """One batch: (shingle hashes in text order, offsets, signatures, prefix signatures, text hashes,
    band keys)."""
    if not settings.kernel:
        return sign_batch_numpy(texts, settings)
    data, offsets = prepare_batch(texts, settings.normalise)
    signed = sign_prepared(
        data,
        offsets,
        num_perm=settings.num_perm,
        seed=settings.seed,
        word_n=settings.word_n,
        char_n=settings.char_n,
        prefix_shingles=settings.prefix_shingles,
        bandings=(settings.banding,),
        prefix_bandings=(settings.prefix_banding,),
    )
    signatures, prefix = signed.signatures, signed.prefix_signatures
    if not settings.keep_signatures:
        signatures, prefix = signatures[:, :0], prefix[:, :0]
    return signed.hashes, signed.offsets, signatures, prefix, signed.text_hashes, signed.band_keys


def sign_batch_numpy(texts: Sequence[str], settings: SignerSettings) -> tuple[np.ndarray, ...]:
    """:func:`sign_batch` by the numpy path (per-text normalisation, :func:`hash_batch`,
    :class:`MinHasher`, :func:`all_band_keys`): the reference for the kernel."""
    texts = [comparable_text(t, settings.normalise) for t in texts]
    text_hashes = np.fromiter(
        (xxhash.xxh64_intdigest(t.encode("utf-8")) for t in texts), np.uint64, len(texts)
    )
    batch = hash_batch(texts, settings.word_n, settings.char_n)
    signatures, prefix = _hasher(settings.num_perm, settings.seed).batch(
        batch.hashes, batch.offsets, settings.prefix_shingles
    )
    assert prefix is not None
    keys = [
        all_band_keys(sigs, banding)
        for sigs, banding in ((signatures, settings.banding), (prefix, settings.prefix_banding))
        if banding is not None
    ]
    band_keys = np.concatenate(keys) if keys else np.empty((0, len(texts)), np.uint64)
    if not settings.keep_signatures:
        signatures, prefix = signatures[:, :0], prefix[:, :0]
    return batch.hashes, batch.offsets, signatures, prefix, text_hashes, band_keys


def _sign_slice(args: tuple[Sequence[str], SignerSettings]) -> tuple[np.ndarray, ...]:
    return sign_batch(*args)


Texts = Sequence[str] | pd.Series

#: The texts being signed, inherited by forked workers so they are not pickled to them;
#: set only while a pool runs (no state is left between runs).
_FORKED_TEXTS: Texts = ()


def _texts_slice(texts: Texts, start: int, stop: int) -> Sequence[str]:
    """Texts ``start:stop`` as Python strings (a pandas column converts only that slice)."""
    if isinstance(texts, RowsOf):
        return take_values(texts.column, texts.rows[start:stop])
    return texts.iloc[start:stop].tolist() if isinstance(texts, pd.Series) else texts[start:stop]


@dataclass(frozen=True)
class RowsOf:
    """Texts ``rows`` of a column, to sign without copying them out: each batch converts its own."""

    column: pd.Series
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def shingle_rows(
    texts: Texts, rows: np.ndarray, settings: SignerSettings, counts: np.ndarray
) -> ShingleBatch:
    """The shingle hashes (text order) of texts ``rows`` (ascending) of ``texts`` signed before with
    ``settings``, whose shingle counts were ``counts`` (one entry per text of ``texts``): the same
    hashes the signing made, for the rows verification needs (entry ``k``: row ``rows[k]``).
    """
    rows = np.asarray(rows, dtype=np.int64)
    column = texts if isinstance(texts, pd.Series) else pd.Series(texts, dtype=object)
    # The kernel's hashes are the numpy path's (the tests compare them); it skips MinHash here.
    only = replace(settings, num_perm=0, banding=None, prefix_banding=None, keep_sequences=True, kernel=True)
    sequences = sign_texts(RowsOf(column, rows), only, capacity=int(counts[rows].sum())).sequences
    assert np.array_equal(sequences.counts, counts[rows]), "texts changed since they were signed"
    return sequences


def _sign_range(args: tuple[int, int, SignerSettings]) -> tuple[np.ndarray, ...]:
    start, stop, settings = args
    return sign_batch(_texts_slice(_FORKED_TEXTS, start, stop), settings)


def sign_texts(
    norm_texts: Texts | RowsOf, settings: SignerSettings | None = None, capacity: int | None = None
) -> SignedCorpus:
    """Sign every text, batch by batch, in parallel when the corpus is large.

    ``norm_texts``: a sequence of strings or a pandas column of them (or :class:`RowsOf` one).
    The kernel runs on ``workers`` threads (it releases the GIL: no process to
    fork, nothing to pickle back); the numpy path on forked processes from
    ``min_docs_per_worker`` texts per worker. ``capacity``: the shingles expected, when known.
    """
    settings = settings or SignerSettings()
    cores = settings.workers or os.cpu_count() or 1
    starts = range(0, len(norm_texts), settings.batch_docs)
    if settings.kernel:
        threads = max(1, min(cores, len(starts)))
        ranges = [(start, start + settings.batch_docs) for start in starts]

        def sign_range(bounds: tuple[int, int]) -> tuple[np.ndarray, ...]:
            return sign_batch(_texts_slice(norm_texts, *bounds), settings)

        capacity = capacity if capacity is not None else _shingles_expected(norm_texts)
        if threads == 1:
            return _collect(map(sign_range, ranges), len(norm_texts), settings, capacity)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return _collect(pool.map(sign_range, ranges), len(norm_texts), settings, capacity)
    return _sign_texts_numpy(norm_texts, settings, cores, starts)


def _shingles_expected(texts: Texts) -> int:
    """More shingles than the texts are likely to have (a word n-gram per 4 characters, where
    abstracts have one per ~7), so the shingle array is not grown and copied batch after batch;
    the pages it does not use are never touched, so they cost no memory."""
    try:
        lengths = texts.str.len() if isinstance(texts, pd.Series) else pd.Series([len(t) for t in texts])
        return int(lengths.fillna(0).sum()) // 4 + len(texts) + 1
    except (AttributeError, TypeError):  # not strings: the batches will say
        return 1 << 24


def _sign_texts_numpy(norm_texts: Texts, settings: SignerSettings, cores: int, starts: range) -> SignedCorpus:
    global _FORKED_TEXTS
    workers = max(1, min(cores, len(norm_texts) // settings.min_docs_per_worker))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        _FORKED_TEXTS = norm_texts
        try:
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=fork) as pool:
                ranges = [(start, start + settings.batch_docs, settings) for start in starts]
                return _collect(pool.map(_sign_range, ranges, chunksize=1), len(norm_texts), settings)
        finally:
            _FORKED_TEXTS = ()
    slices = ((_texts_slice(norm_texts, start, start + settings.batch_docs), settings) for start in starts)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return _collect(pool.map(_sign_slice, slices, chunksize=1), len(norm_texts), settings)
    return _collect(map(_sign_slice, slices), len(norm_texts), settings)


def _collect(
    parts: Iterable[tuple[np.ndarray, ...]], count: int, settings: SignerSettings, capacity: int = 1 << 24
) -> SignedCorpus:
    """Batches (in order) into one corpus; fixed-size arrays are filled in place, not concatenated.

    ``capacity``: the shingles expected (the array grows past it when needed)."""
    columns = settings.num_perm if settings.keep_signatures else 0
    signatures = np.empty((count, columns), np.uint32)
    prefix = np.empty((count, columns), np.uint32)
    band_keys = np.empty((settings.key_bands(), count), np.uint64)
    text_hashes = np.empty(count, np.uint64)
    offsets = np.zeros(count + 1, np.int64)
    # One growing array, not a list of batches concatenated at the end (which briefly holds
    # every shingle twice); ``resize`` grows it in place (realloc of a block over glibc's 32 MB
    # mmap limit is an mremap: no copy). Pages never written are never resident.
    flat = np.empty(max(capacity, 1 << 16) if settings.keep_sequences else 0, np.uint32)
    row = 0
    for batch_hashes, batch_offsets, batch_signatures, batch_prefix, batch_text_hashes, keys in parts:
        stop = row + len(batch_text_hashes)
        signatures[row:stop], prefix[row:stop], text_hashes[row:stop], band_keys[:, row:stop] = (
            batch_signatures,
            batch_prefix,
            batch_text_hashes,
            keys,
        )
        offsets[row + 1 : stop + 1] = batch_offsets[1:] + offsets[row]
        if settings.keep_sequences:
            if offsets[stop] > len(flat):
                flat.resize(max(int(offsets[stop]), len(flat) * 5 // 4), refcheck=False)
            flat[offsets[row] : offsets[stop]] = batch_hashes
        row = stop
    if settings.keep_sequences:
        flat.resize(int(offsets[row]), refcheck=False)
    keys_or_none = band_keys if len(band_keys) else None
    return SignedCorpus(ShingleBatch(flat, offsets), signatures, prefix, text_hashes, keys_or_none)


#: Assembles signed batches (:func:`sign_batch` tuples, in order) into one corpus; other engines
#: (Dask) sign batches elsewhere and assemble them here, band keys included.
collect = _collect
