"""Clusters: connected components of verified duplicate edges, one representative each."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class UnionFind:
    """Disjoint sets over ``0..n-1``; the root of a set is its smallest member (stable)."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            low, high = sorted((root_a, root_b))
            self.parent[high] = low


def components(size: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups of two or more rows joined by ``edges``, each sorted, ordered by first member."""
    sets = UnionFind(size)
    for a, b in edges:
        sets.union(a, b)
    groups: dict[int, list[int]] = {}
    for item in range(size):
        groups.setdefault(sets.find(item), []).append(item)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def choose_representative(members: list[int], completeness: Callable[[int], tuple]) -> int:
    """The member with the highest completeness key (ties: the earliest row)."""
    return max(members, key=lambda m: (completeness(m), -m))
