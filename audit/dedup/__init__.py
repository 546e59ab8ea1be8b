"""Near-duplicate detection: normalised text -> shingles -> MinHash -> LSH -> exact proof -> clusters.

1. Copies with identical normalised text are grouped by hash first (cheap, exact).
2. One copy per group is shingled and signed in numpy batches on all cores
   (:mod:`audit.dedup.signer`): a MinHash of the whole text and one of its first shingles.
3. LSH banding (:mod:`audit.dedup.lsh`) proposes candidates from both signatures, tuned for
   recall; every candidate is verified on the exact shingle sets (:mod:`audit.dedup.verify`):
   ``near_duplicate`` (Jaccard >= threshold) or ``truncated_copy`` (the shorter copy is a cut
   of the longer: containment and prefix containment >= threshold).
4. Connected components of the edges are clusters (:mod:`audit.dedup.clusters`); each keeps
   its most complete member as representative, and members that are not duplicates of it
   are split off into their own clusters (the chaining guard).

Example:
    >>> import pandas as pd
    >>> from audit.normalise import add_normalised
    >>> text = "one two three four five six seven eight nine ten"
    >>> records = add_normalised(pd.DataFrame({"id": ["a", "b", "c"], "title": ["", "", ""],
    ...     "text": [text, text.upper(), "something else entirely, not a copy at all"], "url": ""}))
    >>> result = find_duplicates(records)
    >>> result.duplicate_of
    {'b': 'a'}
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz

from audit.dedup.clusters import components, split_chains
from audit.dedup.engine import Engine, LocalEngine, VerifyJob
from audit.dedup.lsh import Banding, choose_banding
from audit.dedup.shingles import ShingleBatch, hash_batch
from audit.dedup.signer import SignerSettings, comparable_text
from audit.dedup.verify import EXACT_DUPLICATE, NEAR_DUPLICATE, TRUNCATED_COPY, PairVerifier
from audit.normalise import normalise_text

__all__ = ["DedupConfig", "DedupResult", "find_duplicates"]

CLUSTER_COLUMNS = ["cluster_id", "representative", "members", "size", "to_representative", "similarities"]
EDGE_COLUMNS = ["a", "b", "jaccard", "containment", "relation", "title_similarity"]
RELATIONS = (EXACT_DUPLICATE, NEAR_DUPLICATE, TRUNCATED_COPY)
PREFIX_BANDING = Banding(16, 4)


@dataclass(frozen=True)
class DedupConfig:
    """Dedup parameters.

    ``threshold``: the exact Jaccard (near duplicates) or containment (truncated copies) a pair
    must reach. ``remove``: the relations whose copies leave the cleaned corpus.
    """

    threshold: float = 0.8
    num_perm: int = 128
    word_n: int = 5
    char_n: int = 5
    seed: int = 1
    #: Shingles in the prefix signature that finds truncated copies.
    prefix_shingles: int = 24
    #: Bands x rows of the prefix signature's LSH (rows of 4: a prefix Jaccard of 0.66 is found 97 %).
    prefix_banding: Banding = PREFIX_BANDING
    remove: tuple[str, ...] = RELATIONS
    #: Chaining guard: a member stays in a cluster when it is a near duplicate of the
    #: representative at Jaccard ``threshold - chain_slack`` (a copy two small edits away stays;
    #: a chain drifting further is split), or a truncated copy of it at ``threshold``.
    chain_slack: float = 0.15
    workers: int | None = None
    batch_docs: int = 2_000

    def signer(self) -> SignerSettings:
        return SignerSettings(
            num_perm=self.num_perm,
            seed=self.seed,
            word_n=self.word_n,
            char_n=self.char_n,
            prefix_shingles=self.prefix_shingles,
            batch_docs=self.batch_docs,
            workers=self.workers,
        )

    def banding(self) -> Banding:
        return choose_banding(self.threshold, self.num_perm)


@dataclass
class DedupResult:
    """Clusters (one row each), verified edges, removed id -> representative id and its relation."""

    clusters: pd.DataFrame
    edges: pd.DataFrame
    duplicate_of: dict[str, str] = field(default_factory=dict)
    relation_of: dict[str, str] = field(default_factory=dict)
    #: Counts and parameters: candidates, verified edges by relation, chain splits, banding.
    stats: dict[str, Any] = field(default_factory=dict)


class _Stopwatch:
    """Seconds per stage, for ``DedupResult.stats``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _default_completeness(records: pd.DataFrame) -> Callable[[int], tuple]:
    texts, titles, urls = records["text"].tolist(), records["title"].tolist(), records["url"].tolist()
    return lambda row: (len(texts[row]), bool(urls[row]), bool(titles[row]))


def _title_similarity(a: str, b: str) -> float | None:
    """rapidfuzz's ratio of the normalised titles, 0..1 (None when one is missing)."""
    if not a or not b:
        return None
    return round(fuzz.ratio(a, b, processor=normalise_text) / 100, 4)


def find_duplicates(
    records: pd.DataFrame,
    config: DedupConfig | None = None,
    completeness: Callable[[int], tuple] | None = None,
    engine: Engine | None = None,
) -> DedupResult:
    """Cluster duplicate records; needs ``id`` and ``text`` (``norm_text`` is used when present).

    ``completeness(row)`` ranks copies (higher is more complete); the best is the
    representative, ties going to the earliest row. ``engine`` signs and finds candidates
    (default :class:`audit.dedup.engine.LocalEngine`); the result does not depend on it.
    """
    engine = engine or LocalEngine()
    config = config or DedupConfig()
    rank = completeness or _default_completeness(records)
    completeness = functools.lru_cache(maxsize=None)(rank)  # asked again on every chain split
    clock = _Stopwatch()
    ids = records["id"].tolist()
    titles = records["title"].tolist() if "title" in records else [""] * len(ids)
    normalised = "norm_text" in records
    texts = records["norm_text" if normalised else "text"].tolist()

    # 1. Normalise (unless done), shingle and sign every text, in batches on all cores.
    signed = engine.sign(texts, replace(config.signer(), normalise=not normalised))
    counts = signed.shingles.counts
    clock.lap("sign")

    # 2. Exact copies: one leader per distinct normalised text; empty texts are never copies.
    codes, _ = pd.factorize(signed.text_hashes)
    first = np.unique(codes, return_index=True)[1]
    leader_row = first[codes]
    follower = np.flatnonzero((counts > 0) & (leader_row != np.arange(len(ids))))
    leaders = first[counts[first] > 0]

    # 3. Candidates among leaders from both signatures, each verified.
    banding = config.banding()
    candidates = engine.candidates(
        [(signed.signatures, banding), (signed.prefix_signatures, config.prefix_banding)], leaders
    )

    def sequences(rows: list[int]) -> ShingleBatch:
        chosen = [comparable_text(texts[row], not normalised) for row in rows]
        return hash_batch(chosen, config.word_n, config.char_n)

    clock.lap("candidates")
    verifier = PairVerifier(signed.shingles, sequences, config.threshold)
    edges: list[dict[str, Any]] = [
        {"a": int(a), "b": int(b), "jaccard": 1.0, "containment": 1.0, "relation": EXACT_DUPLICATE}
        for a, b in zip(leader_row[follower].tolist(), follower.tolist(), strict=True)
    ]
    pairs = [(a, b) for a, b in candidates.tolist()]
    job = VerifyJob(verifier, lambda rows: [comparable_text(texts[r], not normalised) for r in rows], config)
    for (a, b), (jaccard, containment, relation) in zip(pairs, engine.verify(pairs, job), strict=True):
        if relation is not None:
            edges.append(
                {"a": a, "b": b, "jaccard": jaccard, "containment": containment, "relation": relation}
            )

    clock.lap("verify")

    # 4. Clusters, split where a member is no duplicate of its representative.
    chain_threshold = config.threshold - config.chain_slack

    def compare(rep: int, member: int) -> tuple[float, float, str | None]:
        if leader_row[rep] == leader_row[member]:
            return 1.0, 1.0, EXACT_DUPLICATE
        return verifier.verify(int(leader_row[rep]), int(leader_row[member]), chain_threshold)

    edge_pairs = [(e["a"], e["b"]) for e in edges]
    groups = components(len(ids), np.asarray(edge_pairs, dtype=np.int64).reshape(-1, 2))
    clusters: list[tuple[int, list[int]]] = []
    for group in groups:
        clusters.extend(
            split_chains(group, completeness, lambda r, m: compare(r, m)[2] is not None, edge_pairs)
        )
    components_count = len(groups)

    cluster_of = {m: n for n, (_, members) in enumerate(clusters) for m in members}
    edges_by_cluster: dict[int, list[dict[str, Any]]] = {}
    weak_edges = 0
    for edge in sorted(edges, key=lambda e: (e["a"], e["b"])):
        number = cluster_of.get(edge["a"])
        if number is None or number != cluster_of.get(edge["b"]):
            weak_edges += 1  # an edge the chaining guard cut
            continue
        edges_by_cluster.setdefault(number, []).append(
            {
                **edge,
                "a": ids[edge["a"]],
                "b": ids[edge["b"]],
                "jaccard": round(edge["jaccard"], 4),
                "containment": round(edge["containment"], 4),
                "title_similarity": _title_similarity(titles[edge["a"]], titles[edge["b"]]),
            }
        )

    rows, duplicate_of, relation_of = [], {}, {}
    for number, (rep, members) in enumerate(clusters):
        to_rep = []
        for member in members:
            if member == rep:
                continue
            jaccard, containment, relation = compare(rep, member)
            assert relation is not None
            to_rep.append(
                {
                    "id": ids[member],
                    "jaccard": round(jaccard, 4),
                    "containment": round(containment, 4),
                    "relation": relation,
                }
            )
            relation_of[ids[member]] = relation
            if relation in config.remove:
                duplicate_of[ids[member]] = ids[rep]
        rows.append(
            {
                "cluster_id": f"c{number:06d}",
                "representative": ids[rep],
                "members": [ids[m] for m in members],
                "size": len(members),
                "to_representative": to_rep,
                "similarities": edges_by_cluster.get(number, []),
            }
        )
    flat_edges = [e for n in sorted(edges_by_cluster) for e in edges_by_cluster[n]]
    clock.lap("cluster")
    relations = pd.Series([e["relation"] for e in edges], dtype=object).value_counts().to_dict()
    stats = {
        "records": len(ids),
        "distinct_texts": len(leaders),
        "shingles": int(counts.sum()),
        "candidate_pairs": len(candidates),
        "edges": {str(k): int(v) for k, v in relations.items()},
        "components": components_count,
        "clusters": len(clusters),
        "chain_splits": len(clusters) - components_count,
        "weak_edges": weak_edges,
        "banding": {
            "bands": banding.bands,
            "rows": banding.rows,
            "false_negative_rate_at_threshold": banding.false_negative_rate(config.threshold),
        },
        "prefix_banding": {"bands": config.prefix_banding.bands, "rows": config.prefix_banding.rows},
        "seconds": clock.laps,
    }
    return DedupResult(
        pd.DataFrame(rows, columns=CLUSTER_COLUMNS),
        pd.DataFrame(flat_edges, columns=EDGE_COLUMNS),
        duplicate_of,
        relation_of,
        stats,
    )
