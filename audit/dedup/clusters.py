"""Clusters: connected components of verified duplicate edges, one representative each,
with a guard against chaining.

Components come from scipy's sparse-graph ``connected_components`` (no Python work per
record). A chain ``a ~ b ~ c`` can join copies that are not similar to each other; so each
cluster keeps only the members that are duplicates of its representative, and the rest are
clustered again among themselves (:func:`split_chains`).

Example:
    >>> components(6, [(4, 5), (0, 2), (2, 3)])
    [[0, 2, 3], [4, 5]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def components(size: int, edges: Iterable[tuple[int, int]] | np.ndarray) -> list[list[int]]:
    """Groups of two or more of ``0..size-1`` joined by ``edges``, each sorted, ordered by first member."""
    pairs = np.asarray(list(edges) if not isinstance(edges, np.ndarray) else edges, dtype=np.int64)
    if size == 0 or len(pairs) == 0:
        return []
    pairs = pairs.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    counts = np.bincount(labels)
    members = np.flatnonzero(counts[labels] > 1)
    members = members[np.argsort(labels[members], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[members])) + 1
    groups = [g.tolist() for g in np.split(members, bounds)] if len(members) else []
    return sorted(groups, key=lambda g: g[0])


def choose_representative(members: Sequence[int], completeness: Callable[[int], tuple]) -> int:
    """The member with the highest completeness key (ties: the earliest row)."""
    return max(members, key=lambda m: (completeness(m), -m))


def split_chains(
    group: list[int],
    completeness: Callable[[int], tuple],
    is_duplicate: Callable[[int, int], bool],
    edges: Sequence[tuple[int, int]],
) -> list[tuple[int, list[int]]]:
    """``(representative, members)`` clusters from one component, no member unlike its representative.

    ``is_duplicate(representative, member)`` decides; members that fail are clustered again
    among themselves over ``edges`` (a member left alone is no longer a duplicate).
    """
    done: list[tuple[int, list[int]]] = []
    pending = [group]
    while pending:
        members = pending.pop()
        rep = choose_representative(members, completeness)
        kept = [m for m in members if m == rep or is_duplicate(rep, m)]
        if len(kept) > 1:
            done.append((rep, kept))
        rest = sorted(set(members) - set(kept))
        if len(rest) > 1:
            index = {m: n for n, m in enumerate(rest)}
            inner = [(index[a], index[b]) for a, b in edges if a in index and b in index]
            pending.extend([rest[n] for n in sub] for sub in components(len(rest), inner))
    return sorted(done, key=lambda cluster: min(cluster[1]))
