"""Where the heavy steps of :func:`audit.dedup.find_duplicates` run: this process, or a cluster.

An engine signs the texts (shingle hashes, text hashes and the LSH band keys of both
signatures, made with the signer's own :func:`audit.dedup.signer.sign_batch`), proposes
candidate pairs from the band keys, verifies pairs on their exact shingle sets (the numbers of
:func:`audit.dedup.verify.verify_pairs`) and labels connected components. The caller sees only
compact per-record arrays (:class:`Signed`: text hashes, shingle counts), pairs, verified
numbers and labels; the shingles and band keys stay where the engine keeps them. The chaining
guard and the cluster rows are the same code for every engine, so every engine gives the same
result. :class:`LocalEngine` is the default (batches on all cores of this machine);
``audit.engines.dask.DaskEngine`` runs the same functions on dask.dataframe partitions.

Example:
    >>> import numpy as np
    >>> from audit.dedup.lsh import Banding
    >>> engine = LocalEngine()
    >>> settings = SignerSettings(num_perm=16, banding=Banding(4, 4), keep_signatures=False)
    >>> signed = engine.sign(["a b c d e f", "a b c d e f"], settings)
    >>> engine.candidates(engine.held(signed), np.arange(2)).tolist()
    [[0, 1]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from audit.dedup.clusters import component_labels
from audit.dedup.lsh import candidate_pairs_from_keys
from audit.dedup.shingles import ShingleBatch
from audit.dedup.signer import SignedCorpus, SignerSettings, Texts, shingle_rows, sign_texts
from audit.dedup.verify import VerifiedPairs, verify_sequences

#: ``verify(a, b, threshold, near_threshold)``: :func:`audit.dedup.verify.verify_pairs` of rows.
Verify = Callable[[np.ndarray, np.ndarray, float, float | None], VerifiedPairs]


@dataclass
class Signed:
    """A signed corpus as the caller sees it: per text its xxh64 and shingle count; ``held`` is
    the engine's own handle on the shingles and band keys (local arrays, or data on a cluster)."""

    text_hashes: np.ndarray
    counts: np.ndarray
    held: Any


class Engine(Protocol):
    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        """:func:`audit.dedup.signer.sign_texts` (band keys included), gathered here."""
        ...

    def sign_held(self, texts: Texts, settings: SignerSettings) -> Signed:
        """Sign, keeping the shingles and band keys with the engine (only :class:`Signed` comes back)."""
        ...

    def held(self, corpus: SignedCorpus) -> Signed:
        """A corpus signed here (band keys included), handed to the engine as :meth:`sign_held` would."""
        ...

    def candidates(self, signed: Signed, rows: np.ndarray) -> np.ndarray:
        """Unique pairs ``(low, high)`` among ``rows`` sharing a bucket in any band of the band
        keys (:func:`audit.dedup.lsh.candidate_pairs_from_keys`)."""
        ...

    def verifier(self, signed: Signed, rows: np.ndarray) -> Verify:
        """Verification of pairs among ``rows`` (sorted, unique: every row a pair can name); the
        band keys are not needed any more."""
        ...

    def components(self, size: int, edges: np.ndarray) -> np.ndarray:
        """A label per row of ``0..size-1``, equal within a connected component of ``edges`` and
        increasing with the component's first row (as :func:`audit.dedup.clusters.component_labels`)."""
        ...


@dataclass
class _Held:
    """What :class:`LocalEngine` holds of a signed corpus until verification: the band keys, and
    either every text's shingle hashes (a corpus signed elsewhere, :meth:`LocalEngine.held`) or
    the texts and settings to shingle the candidates again (:meth:`LocalEngine.sign_held`)."""

    band_keys: np.ndarray | None
    sequences: ShingleBatch
    texts: Texts | None = None
    settings: SignerSettings | None = None


class LocalEngine:
    """This machine: the signer's threads, numpy banding and verification, scipy components.

    :meth:`sign_held` keeps no shingle hashes (4 bytes per shingle, ~760 MB at a million
    abstracts, beside 8 bytes per band and text of band keys): :meth:`verifier` shingles the
    candidates again (~44 % of the texts of the benchmark corpus), after the band keys are freed.
    """

    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        return sign_texts(texts, settings)

    def held(self, corpus: SignedCorpus) -> Signed:
        return Signed(corpus.text_hashes, corpus.sequences.counts, _Held(corpus.band_keys, corpus.sequences))

    def sign_held(self, texts: Texts, settings: SignerSettings) -> Signed:
        corpus = self.sign(texts, replace(settings, keep_sequences=False))
        held = _Held(corpus.band_keys, corpus.sequences, texts, settings)
        return Signed(corpus.text_hashes, corpus.sequences.counts, held)

    def candidates(self, signed: Signed, rows: np.ndarray) -> np.ndarray:
        assert signed.held.band_keys is not None, "sign with SignerSettings(banding=...)"
        return candidate_pairs_from_keys(signed.held.band_keys, rows)

    def verifier(self, signed: Signed, rows: np.ndarray) -> Verify:
        """Verification of pairs among ``rows``: their shingles only are held (taken, or shingled
        again), and the band keys are freed first."""
        held: _Held = signed.held
        held.band_keys = None  # 8 bytes per band and text: freed before the shingles are made
        rows = np.asarray(rows, dtype=np.int64)
        if held.texts is None:
            sequences = held.sequences.take(rows)
        else:
            assert held.settings is not None
            sequences = shingle_rows(held.texts, rows, held.settings, held.sequences.counts)

        def verify(a: np.ndarray, b: np.ndarray, threshold: float, near: float | None) -> VerifiedPairs:
            at_a, at_b = np.searchsorted(rows, a), np.searchsorted(rows, b)
            return verify_sequences(sequences, at_a, at_b, threshold, near)

        return verify

    def components(self, size: int, edges: np.ndarray) -> np.ndarray:
        return component_labels(size, edges) if size and len(edges) else np.arange(size)
