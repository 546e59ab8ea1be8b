"""LSH banding and clustering: recall-tuned parameters, buckets, components, the chaining guard."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.dedup.clusters import choose_representative, components, sort_order, split_chains
from audit.dedup.lsh import Banding, bucket_pairs, candidate_pairs, choose_banding, unique_pairs


def test_banding_is_tuned_for_recall_at_the_threshold() -> None:
    banding = choose_banding(0.8, 128)
    assert banding.bands * banding.rows <= 128
    assert banding.false_negative_rate(0.8) < 0.001
    assert banding.false_negative_rate(0.9) < banding.false_negative_rate(0.8)
    assert banding.collision_probability(0.2) < 0.01


def test_bucket_pairs_connect_every_bucket_without_all_pairs() -> None:
    keys = np.array([5, 3, 5, 5, 9, 3, 5, 1], dtype=np.uint64)
    pairs = {tuple(p) for p in bucket_pairs(keys).tolist()}
    assert {(1, 5)} <= pairs
    assert components(8, list(pairs)) == [[0, 2, 3, 6], [1, 5]]
    assert len(pairs) == 1 + (2 * 4 - 3)


def test_candidates_find_identical_signatures_and_skip_rows() -> None:
    rng = np.random.default_rng(1)
    signatures = rng.integers(0, 2**32, (6, 20), dtype=np.uint64).astype(np.uint32)
    signatures[4] = signatures[1]
    signatures[5] = signatures[1]
    banding = Banding(5, 4)
    assert candidate_pairs(signatures, banding).tolist() == [[1, 4], [1, 5], [4, 5]]
    assert candidate_pairs(signatures, banding, np.array([0, 1, 2, 3, 4])).tolist() == [[1, 4]]


def test_unique_pairs_orders_and_dedupes() -> None:
    pairs = np.array([[3, 1], [1, 3], [2, 2], [0, 5]])
    assert unique_pairs(pairs).tolist() == [[0, 5], [1, 3]]


@pytest.mark.parametrize("seed", range(5))
def test_components_do_not_depend_on_edge_order(seed: int) -> None:
    edges = [(0, 9), (9, 4), (2, 7), (7, 3), (5, 6)]
    shuffled = edges[:]
    random.Random(seed).shuffle(shuffled)
    flipped = [(b, a) if random.Random(seed + 100).random() < 0.5 else (a, b) for a, b in shuffled]
    assert components(10, flipped) == [[0, 4, 9], [2, 3, 7], [5, 6]]


def test_representative_ties_go_to_the_earliest_row() -> None:
    assert choose_representative([4, 2, 7], lambda row: (1,)) == 2
    assert choose_representative([4, 2, 7], lambda row: (row == 7,)) == 7


def test_chaining_guard_splits_members_unlike_the_representative() -> None:
    # 0 ~ 1 ~ 2 ~ 3 is a chain: 3 is no copy of 0 (the representative), nor 2 of 0.
    similar = {frozenset(p) for p in [(0, 1), (1, 2), (2, 3)]}
    edges = [(0, 1), (1, 2), (2, 3)]
    clusters = split_chains(
        [0, 1, 2, 3], lambda row: (-row,), lambda r, m: frozenset((r, m)) in similar, edges
    )
    assert clusters == [(0, [0, 1]), (2, [2, 3])]
    members = [m for _, group in clusters for m in group]
    assert sorted(members) == [0, 1, 2, 3]
    for rep, group in clusters:
        assert all(m == rep or frozenset((rep, m)) in similar for m in group)


def test_components_of_nothing() -> None:
    assert components(0, []) == []
    assert components(3, []) == []
    assert components(3, np.empty((0, 2), dtype=np.int64)) == []
    assert list(itertools.chain(*components(4, [(1, 1)]))) == []


@given(
    st.integers(0, 300),
    st.integers(1, 4),
    st.sampled_from([1, 2, 50, 1 << 20, 1 << 40, 2**62]),
    st.integers(0, 2**32),
)
def test_sort_order_equals_lexsort(size: int, keys: int, spread: int, seed: int) -> None:
    # Few distinct values (ties everywhere: the order must be lexsort's, stable), bools,
    # negative values, and ranges too wide to combine in one int64 (np.lexsort then).
    rng = np.random.default_rng(seed)
    columns = [rng.integers(-spread, spread, size, dtype=np.int64) for _ in range(keys)]
    columns.append(rng.random(size) < 0.5)
    assert sort_order(tuple(columns)).tolist() == np.lexsort(tuple(columns)).tolist()
    assert sort_order((np.arange(size),)).tolist() == list(range(size))
