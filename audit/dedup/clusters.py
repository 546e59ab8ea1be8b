"""Clusters: connected components of verified duplicate edges, one representative each,
with a guard against chaining.

Components come from scipy's sparse-graph ``connected_components`` (no Python work per
record). A chain ``a ~ b ~ c`` can join copies that are not similar to each other; so each
cluster keeps only the members that are duplicates of its representative, and the rest are
clustered again among themselves (:func:`split_chains`; :func:`split_chains_bulk` does the
same for every component at once, in numpy).

Example:
    >>> components(6, [(4, 5), (0, 2), (2, 3)])
    [[0, 2, 3], [4, 5]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def sort_order(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` (the last key first) of integer or bool keys, by one stable argsort
    of the keys combined into one int64 (``np.lexsort`` sorts once per key: at half a million
    rows ~0.1 s for two keys, the combined key ~0.01 s); by ``np.lexsort`` when the keys'
    ranges do not fit in one int64 together."""
    count = len(keys[0]) if len(keys) else 0
    combined = np.zeros(count, np.int64)
    spans = 1
    for key in reversed(keys):  # the primary key first
        key = np.asarray(key, dtype=np.int64)
        low = int(key.min()) if count else 0
        span = (int(key.max()) - low + 1) if count else 1
        spans *= span
        if spans >= 1 << 62:
            return np.lexsort(keys)
        combined = combined * span + (key - low)
    return np.argsort(combined, kind="stable")


def component_labels(size: int, edges: np.ndarray) -> np.ndarray:
    """Component number of each of ``0..size-1`` over ``edges`` (shape ``(k, 2)``)."""
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(size, size))
    return connected_components(graph, directed=False)[1]


def _grouped(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in groups of two or more (by label, ascending within a group), and each group's start."""
    counts = np.bincount(labels)
    members = np.flatnonzero(counts[labels] > 1)
    members = members[np.argsort(labels[members], kind="stable")]
    if len(members) == 0:
        return members, np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], labels[members][1:] != labels[members][:-1])))
    return members, starts


def components(size: int, edges: Iterable[tuple[int, int]] | np.ndarray) -> list[list[int]]:
    """Groups of two or more of ``0..size-1`` joined by ``edges``, each sorted, ordered by first member."""
    pairs = np.asarray(list(edges) if not isinstance(edges, np.ndarray) else edges, dtype=np.int64)
    if size == 0 or len(pairs) == 0:
        return []
    members, starts = _grouped(component_labels(size, pairs))
    groups = [g.tolist() for g in np.split(members, starts[1:])] if len(members) else []
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


def split_chains_bulk(
    size: int,
    edges: np.ndarray,
    rank: np.ndarray,
    is_duplicate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    labels_of: Callable[[int, np.ndarray], np.ndarray] | None = None,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_chains` for every component of ``edges`` at once.

    ``rank[row]``: higher is the better representative (distinct values). ``is_duplicate(reps,
    members)`` answers for many pairs at once. Returns ``cluster`` (number per row, -1 when in
    no cluster; numbered by the first row of their component, then by their own first row, as
    :func:`components` and :func:`split_chains` order them) and ``representative`` (per cluster).

    Rounds: each component keeps the members that are duplicates of its best-ranked member;
    the rest of *all* components are clustered again together (no edge joins the rest of two
    different components, so their components are the per-component ones).

    ``labels_of(size, edges)`` labels the components (default :func:`component_labels`; a Dask
    engine labels them on its cluster): equal within one, increasing with its first row.
    ``labels``: ``labels_of(size, edges)``, when the caller has it already.
    """
    labels_of = labels_of or component_labels
    cluster = np.full(size, -1, dtype=np.int64)
    reps: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    if labels is None:
        labels = labels_of(size, edges) if size and len(edges) else np.arange(size)
    # Clusters are ordered as split_chains orders them: by their component's first row, then their own.
    # Labels increase with their component's first row, so a row is its component's first where
    # the running maximum of the labels grows (one pass; np.minimum.at took ~10x as long).
    grows = np.ones(size, dtype=bool)
    if size:
        running = np.maximum.accumulate(labels)
        np.greater(running[1:], running[:-1], out=grows[1:])
    first_of = np.full(int(labels.max(initial=0)) + 1, size, dtype=np.int64)
    first_of[labels[grows]] = np.flatnonzero(grows)
    component_first = first_of[labels]
    # Rows of the round: every row in the first; later, only the rest (``labels`` then label
    # ``rows``, ascending: a few thousand rows, not a label per record and round).
    rows = np.arange(size)
    while True:
        members, starts = _grouped(labels)
        members = rows[members]
        if len(members) == 0:
            break
        group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(members))))
        # The best-ranked member of each group: the last after sorting by (group, rank).
        by_rank = members[sort_order((rank[members], group_of))]
        ends = np.append(starts[1:], len(members)) - 1
        rep = by_rank[ends][group_of]
        kept = members == rep
        others = np.flatnonzero(~kept)
        kept[others] = np.asarray(is_duplicate(rep[others], members[others]), dtype=bool)
        kept_per_group = np.bincount(group_of[kept], minlength=len(starts))
        done = kept & (kept_per_group[group_of] > 1)
        base = sum(len(r) for r in reps)
        numbered = np.flatnonzero(kept_per_group > 1)
        local = np.full(len(starts), -1, dtype=np.int64)
        local[numbered] = np.arange(base, base + len(numbered))
        cluster[members[done]] = local[group_of[done]]
        reps.append(by_rank[ends][numbered])
        firsts.append(np.minimum.reduceat(np.where(done, members, size), starts)[numbered])
        rows = np.sort(members[~kept])
        if len(rows) < 2:
            break
        at = np.full(size, -1, dtype=np.int64)
        at[rows] = np.arange(len(rows))
        inner = at[edges]
        inner = inner[(inner[:, 0] >= 0) & (inner[:, 1] >= 0)]
        labels = labels_of(len(rows), inner)  # of the rest's positions in ``rows``
    representative = np.concatenate(reps) if reps else np.empty(0, np.int64)
    first = np.concatenate(firsts) if firsts else np.empty(0, np.int64)
    order = sort_order((first, component_first[first]))
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    cluster[cluster >= 0] = renumber[cluster[cluster >= 0]]
    return cluster, representative[order]
