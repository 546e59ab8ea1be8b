"""Where the heavy steps of :func:`audit.dedup.find_duplicates` run: this process, or a cluster.

An engine signs the texts, proposes candidate pairs and proves them (with the same
:class:`audit.dedup.verify.PairVerifier` logic); the clusters are built in the calling process
the same way whatever the engine, so every engine gives the same result. :class:`LocalEngine` is
the default (batches on all cores of this machine); ``audit.engines.dask.DaskEngine`` runs the
same functions on dask.dataframe partitions.

Example:
    >>> import numpy as np
    >>> engine = LocalEngine()
    >>> signed = engine.sign(["a b c d e f", "a b c d e f"], SignerSettings(num_perm=16))
    >>> engine.candidates([(signed.signatures, Banding(4, 4))], np.arange(2)).tolist()
    [[0, 1]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from audit.dedup.lsh import Banding, candidate_pairs, unique_pairs
from audit.dedup.signer import SignedCorpus, SignerSettings, sign_texts
from audit.dedup.verify import PairVerifier

if TYPE_CHECKING:
    from audit.dedup import DedupConfig

#: ``(jaccard, containment, relation or None)`` of a candidate pair.
Proof = tuple[float, float, str | None]


@dataclass
class VerifyJob:
    """What proving candidate pairs needs: the run's verifier (the shingle sets), the compared
    form of any rows' texts (for the prefix test, rarely needed) and the shingle settings."""

    verifier: PairVerifier
    texts: Callable[[list[int]], list[str]]
    config: DedupConfig


class Engine(Protocol):
    def sign(self, texts: Sequence[str], settings: SignerSettings) -> SignedCorpus:
        """:func:`audit.dedup.signer.sign_texts`, wherever it runs."""
        ...

    def candidates(self, signatures: Sequence[tuple[np.ndarray, Banding]], rows: np.ndarray) -> np.ndarray:
        """Unique pairs ``(low, high)`` among ``rows`` sharing a band bucket in any of the signatures."""
        ...

    def verify(self, pairs: list[tuple[int, int]], job: VerifyJob) -> list[Proof]:
        """:meth:`PairVerifier.verify_many` of ``pairs``, wherever it runs."""
        ...


class LocalEngine:
    """This machine: the signer's process pool and numpy banding."""

    def sign(self, texts: Sequence[str], settings: SignerSettings) -> SignedCorpus:
        return sign_texts(texts, settings)

    def candidates(self, signatures: Sequence[tuple[np.ndarray, Banding]], rows: np.ndarray) -> np.ndarray:
        found = [candidate_pairs(sigs, banding, rows) for sigs, banding in signatures]
        return unique_pairs(np.concatenate(found) if found else np.empty((0, 2), np.int64))

    def verify(self, pairs: list[tuple[int, int]], job: VerifyJob) -> list[Proof]:
        return job.verifier.verify_many(pairs)
