"""Near-duplicate detection: normalised text -> shingles -> MinHash -> LSH -> exact proof -> clusters.

1. Copies with identical normalised text are grouped by hash first (cheap, exact).
2. One copy per group is signed (:mod:`audit.dedup.minhash`) and bucketed with datasketch's
   ``MinHashLSH`` (:mod:`audit.dedup.lsh`), tuned for recall.
3. Every candidate pair is verified on the exact shingle sets (:mod:`audit.dedup.verify`):
   only pairs with Jaccard >= ``threshold`` become edges.
4. Connected components of the edges are clusters (:mod:`audit.dedup.clusters`); each keeps
   its most complete member as representative.

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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit.dedup.clusters import choose_representative, components
from audit.dedup.lsh import candidate_pairs
from audit.dedup.minhash import MinHasher
from audit.dedup.shingles import shingle_hashes
from audit.dedup.verify import similarity

__all__ = ["DedupConfig", "DedupResult", "find_duplicates"]

CLUSTER_COLUMNS = ["cluster_id", "representative", "members", "size", "to_representative", "similarities"]
EDGE_COLUMNS = ["a", "b", "jaccard", "containment", "relation"]


@dataclass(frozen=True)
class DedupConfig:
    """Dedup parameters; ``threshold`` is the exact Jaccard a pair must reach."""

    threshold: float = 0.8
    num_perm: int = 128
    word_n: int = 5
    char_n: int = 5
    seed: int = 1


@dataclass
class DedupResult:
    """Clusters (one row each), verified edges, and removed id -> representative id."""

    clusters: pd.DataFrame
    edges: pd.DataFrame
    duplicate_of: dict[str, str] = field(default_factory=dict)
    relation_of: dict[str, str] = field(default_factory=dict)


def _default_completeness(records: pd.DataFrame) -> Callable[[int], tuple]:
    texts, titles, urls = records["text"].tolist(), records["title"].tolist(), records["url"].tolist()
    return lambda row: (len(texts[row]), bool(urls[row]), bool(titles[row]))


def find_duplicates(
    records: pd.DataFrame,
    config: DedupConfig | None = None,
    completeness: Callable[[int], tuple] | None = None,
) -> DedupResult:
    """Cluster near-duplicate records; needs ``id`` and ``norm_text`` columns.

    ``completeness(row)`` ranks copies (higher is more complete); the best is the
    representative, ties going to the earliest row.
    """
    config = config or DedupConfig()
    completeness = completeness or _default_completeness(records)
    ids = records["id"].tolist()
    norm = records["norm_text"].tolist()
    hash_sets = [shingle_hashes(t, config.word_n, config.char_n) for t in norm]

    edges: list[dict[str, Any]] = []
    leader_of: dict[str, int] = {}
    skip = np.zeros(len(norm), dtype=bool)
    for row, text in enumerate(norm):
        if not text:
            skip[row] = True
        elif text in leader_of:
            skip[row] = True
            edges.append(
                {"a": leader_of[text], "b": row, "jaccard": 1.0, "containment": 1.0, "relation": "exact"}
            )
        else:
            leader_of[text] = row

    hasher = MinHasher(config.num_perm, config.seed)
    signatures = hasher.signatures(hash_sets)
    for a, b in candidate_pairs(signatures, hasher, config.threshold, skip):
        jaccard, containment = similarity(hash_sets[a], hash_sets[b])
        if jaccard >= config.threshold:
            edges.append(
                {"a": a, "b": b, "jaccard": jaccard, "containment": containment, "relation": "near_duplicate"}
            )

    groups = components(len(norm), ((e["a"], e["b"]) for e in edges))
    cluster_of = {m: n for n, group in enumerate(groups) for m in group}
    edges_by_cluster: dict[int, list[dict[str, Any]]] = {}
    for edge in sorted(edges, key=lambda e: (e["a"], e["b"])):
        edges_by_cluster.setdefault(cluster_of[edge["a"]], []).append(
            {
                **edge,
                "a": ids[edge["a"]],
                "b": ids[edge["b"]],
                "jaccard": round(edge["jaccard"], 4),
                "containment": round(edge["containment"], 4),
            }
        )

    rows, duplicate_of, relation_of = [], {}, {}
    for number, group in enumerate(groups):
        rep = choose_representative(group, completeness)
        to_rep = []
        for member in group:
            if member == rep:
                continue
            jaccard, containment = similarity(hash_sets[rep], hash_sets[member])
            exact = norm[member] == norm[rep]
            to_rep.append(
                {"id": ids[member], "jaccard": round(jaccard, 4), "containment": round(containment, 4)}
            )
            duplicate_of[ids[member]] = ids[rep]
            relation_of[ids[member]] = "exact_duplicate" if exact else "near_duplicate"
        rows.append(
            {
                "cluster_id": f"c{number:06d}",
                "representative": ids[rep],
                "members": [ids[m] for m in group],
                "size": len(group),
                "to_representative": to_rep,
                "similarities": edges_by_cluster.get(number, []),
            }
        )
    flat_edges = [e for n in sorted(edges_by_cluster) for e in edges_by_cluster[n]]
    return DedupResult(
        pd.DataFrame(rows, columns=CLUSTER_COLUMNS),
        pd.DataFrame(flat_edges, columns=EDGE_COLUMNS),
        duplicate_of,
        relation_of,
    )
