"""Where the heavy steps of :func:`audit.dedup.find_duplicates` run: this process, or a cluster.

An engine signs the texts (shingle hashes, text hashes and the LSH band keys of both
signatures, made with the signer's own :func:`audit.dedup.signer.sign_batch`) and proposes
candidate pairs from the band keys. Verification (:func:`audit.dedup.verify.verify_pairs`) and
clustering run in the calling process the same way whatever the engine, so every engine gives
the same result. :class:`LocalEngine` is the default (batches on all cores of this machine);
``audit.engines.dask.DaskEngine`` runs the same functions on dask.dataframe partitions.

Example:
    >>> import numpy as np
    >>> from audit.dedup.lsh import Banding
    >>> engine = LocalEngine()
    >>> settings = SignerSettings(num_perm=16, banding=Banding(4, 4), keep_signatures=False)
    >>> signed = engine.sign(["a b c d e f", "a b c d e f"], settings)
    >>> engine.candidates(signed, np.arange(2)).tolist()
    [[0, 1]]
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from audit.dedup.lsh import candidate_pairs_from_keys
from audit.dedup.signer import SignedCorpus, SignerSettings, Texts, sign_texts


class Engine(Protocol):
    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        """:func:`audit.dedup.signer.sign_texts` (band keys included), wherever it runs."""
        ...

    def candidates(self, signed: SignedCorpus, rows: np.ndarray) -> np.ndarray:
        """Unique pairs ``(low, high)`` among ``rows`` sharing a bucket in any band of
        ``signed.band_keys`` (:func:`audit.dedup.lsh.candidate_pairs_from_keys`)."""
        ...


class LocalEngine:
    """This machine: the signer's process pool and numpy banding."""

    def sign(self, texts: Texts, settings: SignerSettings) -> SignedCorpus:
        return sign_texts(texts, settings)

    def candidates(self, signed: SignedCorpus, rows: np.ndarray) -> np.ndarray:
        assert signed.band_keys is not None, "sign with SignerSettings(banding=...)"
        return candidate_pairs_from_keys(signed.band_keys, rows)
