"""The numpy paths of the dedup engine equal their per-pair / per-component references:
ragged takes and row-sorted sets, bulk verification, and the bulk chaining guard."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audit.dedup import _default_completeness, _rank, _round4, find_duplicates, shingles
from audit.dedup.clusters import components, split_chains, split_chains_bulk
from audit.dedup.lsh import Banding, all_band_keys, candidate_pairs, candidate_pairs_from_keys, unique_pairs
from audit.dedup.ranking import char_lengths
from audit.dedup.shingles import ShingleBatch
from audit.dedup.signer import SignerSettings, sign_texts
from audit.dedup.verify import (
    RELATION_CODES,
    PairVerifier,
    at_near_threshold,
    shared_count,
    shared_counts,
    similarity,
    verify_pairs,
    verify_sequences,
)


def _batch(rng: np.random.Generator, docs: int, alphabet: int = 400) -> ShingleBatch:
    """Texts of 0..900 shingles drawn from a small alphabet (so pairs share many), one of 5,000."""
    counts = rng.integers(0, 900, docs)
    counts[::17] = 0
    counts[3] = 5_000  # a text in its own width class, far longer than the others
    hashes = rng.integers(0, alphabet, counts.sum()).astype(np.uint32)
    hashes[::101] = 0xFFFFFFFF  # the padding value is also a real hash
    return ShingleBatch(hashes, np.concatenate(([0], np.cumsum(counts))))


def test_take_is_a_ragged_gather_with_optional_cuts() -> None:
    batch = ShingleBatch(np.arange(10, dtype=np.uint32), np.array([0, 3, 3, 7, 10]))
    taken = batch.take(np.array([3, 0, 2, 1]))
    assert [taken.of(n).tolist() for n in range(4)] == [[7, 8, 9], [0, 1, 2], [3, 4, 5, 6], []]
    cut = batch.take(np.array([2, 0]), limits=np.array([2, 5]))
    assert [cut.of(n).tolist() for n in range(2)] == [[3, 4], [0, 1, 2]]


@pytest.mark.parametrize("sort_chunk", [shingles.SORT_CHUNK, 1_000])
def test_row_sorted_sets_equal_numpy_unique_per_text(sort_chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(shingles, "SORT_CHUNK", sort_chunk)  # small: many sorting steps
    batch = _batch(np.random.default_rng(3), 300)
    sets = batch.as_sets()
    assert len(sets) == len(batch)
    for row in range(len(batch)):
        assert np.array_equal(sets.of(row), np.unique(batch.of(row)))
    rows = np.array([0, 3, 17, 40, 299])
    some = batch.as_sets(rows)
    for row in range(len(batch)):
        expected = np.unique(batch.of(row)) if row in rows else np.empty(0, np.uint32)
        assert np.array_equal(some.of(row), expected)


def test_bulk_shared_counts_equal_the_per_pair_count() -> None:
    rng = np.random.default_rng(5)
    sets = _batch(rng, 200).as_sets()
    a, b = rng.integers(0, 200, 2_000), rng.integers(0, 200, 2_000)
    expected = [shared_count(sets.of(x), sets.of(y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    # A small chunk size forces many merge steps (a pair is never cut in two).
    assert shared_counts(sets, a, b, chunk_elements=3_000).tolist() == expected


@pytest.mark.parametrize("near_threshold", [None, 0.65])
def test_bulk_verification_equals_the_pair_verifier(near_threshold: float | None) -> None:
    rng = np.random.default_rng(7)
    docs = 150
    sequences = _batch(rng, docs, alphabet=1_500)
    # Planted truncated copies and near copies so every relation occurs.
    hashes = [sequences.of(row) for row in range(docs)]
    for row in range(0, 40):
        base = hashes[row]
        hashes.append(base[: max(1, int(len(base) * rng.uniform(0.5, 1.0)))])
    flat = np.concatenate(hashes)
    offsets = np.concatenate(([0], np.cumsum([len(h) for h in hashes])))
    sequences = ShingleBatch(flat, offsets)
    sets = sequences.as_sets()
    total = len(sequences)
    a = np.concatenate((rng.integers(0, total, 1_500), np.arange(40), np.arange(docs, docs + 40)))
    b = np.concatenate((rng.integers(0, total, 1_500), np.arange(docs, docs + 40), rng.integers(0, 40, 40)))
    bulk = verify_pairs(sets, sequences, a, b, 0.8, near_threshold)
    reference = PairVerifier(sets, lambda rows: sequences.take(np.array(rows)), 0.8)
    names = bulk.names()
    for k, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        jaccard, containment, relation = reference.verify(x, y, near_threshold)
        assert (bulk.jaccard[k], bulk.containment[k]) == similarity(sets.of(x), sets.of(y))
        assert (bulk.jaccard[k], bulk.containment[k], names[k]) == (jaccard, containment, relation)
    assert set(names.tolist()) == set(RELATION_CODES)


def test_bulk_chaining_guard_equals_the_per_component_one() -> None:
    rng = random.Random(11)
    for attempt in range(90):
        size = rng.randint(2, 60)
        likeness = (0.4, 0.1, 0.8)[attempt % 3]  # many rounds (few duplicates of a representative) or one
        edges = np.array(
            [(rng.randrange(size), rng.randrange(size)) for _ in range(rng.randint(1, 80))], dtype=np.int64
        )
        score = [rng.random() for _ in range(size)]
        similar = {frozenset((x, y)) for x in range(size) for y in range(size) if rng.random() < likeness}

        def is_duplicate(rep: int, member: int, similar: set = similar) -> bool:
            return frozenset((rep, member)) in similar

        def completeness(row: int, score: list = score) -> tuple:
            return (score[row],)

        expected = [
            cluster
            for group in components(size, edges)
            for cluster in split_chains(group, completeness, is_duplicate, edges.tolist())
        ]
        rank = np.empty(size, np.int64)
        rank[sorted(range(size), key=lambda row, score=score: (score[row], -row))] = np.arange(size)
        cluster, representative = split_chains_bulk(
            size,
            edges,
            rank,
            lambda reps, members: np.array([is_duplicate(r, m) for r, m in zip(reps, members, strict=True)]),
        )
        got = [(int(rep), np.flatnonzero(cluster == n).tolist()) for n, rep in enumerate(representative)]
        assert got == expected


def test_default_rank_in_numpy_equals_sorting_by_the_completeness_key() -> None:
    rng = random.Random(13)
    records = pd.DataFrame(
        {
            "text": [rng.choice(["", "abc", "abcd", "abcdé"]) for _ in range(200)],
            "url": [rng.choice(["", "https://x.org/a", None]) for _ in range(200)],
            "title": [rng.choice(["", "T"]) for _ in range(200)],
        }
    )
    rows = np.array(sorted(rng.sample(range(200), 120)))
    expected = _rank(rows, _default_completeness(records), records)
    assert np.array_equal(_rank(rows, None, records), expected)
    assert sorted(expected[rows].tolist()) == list(range(1, 121))


def test_completeness_keys_made_on_two_processes_rank_as_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's completeness ranking, its keys made by a forked process for half the rows,
    ranks every row as the keys made in this process do (ties broken by the row, later lower)."""
    import audit.dedup as dedup_module
    from audit.pipeline import completeness

    rng = random.Random(17)
    records = pd.DataFrame(
        {
            "text": [rng.choice(["A text.", "A te...", "Short of", "", "Ends!"]) for _ in range(400)],
            "url": [rng.choice(["", "https://x.org/a", "http//bad"]) for _ in range(400)],
            "title": [rng.choice(["", "T", "The title of"]) for _ in range(400)],
            "scraped_date": [rng.choice(["", "2026-01-01"]) for _ in range(400)],
        }
    )
    rows = np.array(sorted(rng.sample(range(400), 300)))
    rank = completeness(records)
    monkeypatch.setattr(dedup_module, "idle_cores", lambda: 0)
    one = _rank(rows, rank, records)
    monkeypatch.setattr(dedup_module, "idle_cores", lambda: 2)
    monkeypatch.setattr(dedup_module, "cores", lambda: 2)
    monkeypatch.setattr(dedup_module, "PARALLEL_RANK_ROWS", 10)
    calls = []
    real = dedup_module.forked_map
    monkeypatch.setattr(dedup_module, "forked_map", lambda *a: calls.append(a[3]) or real(*a))
    assert np.array_equal(_rank(rows, rank, records), one)
    assert calls == [2]
    expected = sorted(rows.tolist(), key=lambda m: (rank(m), -m))
    assert np.array_equal(np.argsort(one[rows]), np.searchsorted(rows, expected))


def test_band_keys_made_by_the_signer_find_the_same_candidates() -> None:
    base = " ".join(f"w{n}" for n in range(40))
    texts = [base, base.replace("w7", "x7"), base[:60], "other words entirely here and there", base]
    banding, prefix_banding = Banding(8, 4), Banding(4, 4)
    full = sign_texts(texts, SignerSettings(num_perm=32, batch_docs=2))
    keyed = sign_texts(
        texts,
        SignerSettings(
            num_perm=32, batch_docs=2, banding=banding, prefix_banding=prefix_banding, keep_signatures=False
        ),
    )
    assert keyed.signatures.shape == (5, 0) and keyed.band_keys is not None
    expected_keys = np.vstack(
        (all_band_keys(full.signatures, banding), all_band_keys(full.prefix_signatures, prefix_banding))
    )
    assert np.array_equal(keyed.band_keys, expected_keys)
    rows = np.array([0, 1, 2, 3])
    expected = unique_pairs(
        np.concatenate(
            (
                candidate_pairs(full.signatures, banding, rows),
                candidate_pairs(full.prefix_signatures, prefix_banding, rows),
            )
        )
    )
    assert candidate_pairs_from_keys(keyed.band_keys, rows).tolist() == expected.tolist()
    assert [0, 1] in expected.tolist()


def test_default_rank_counts_a_missing_url_as_no_url() -> None:
    # pandas stores a missing URL in a string column as NaN, which bool() took for a URL.
    text = "one two three four five six seven"
    records = pd.DataFrame(
        {"id": ["a", "b"], "title": "", "text": [text, text], "url": [None, "https://x.org/b"]}
    )
    assert find_duplicates(records).duplicate_of == {"a": "b"}
    empty = pd.DataFrame({"id": [], "title": [], "text": [], "url": []})
    assert find_duplicates(empty).clusters.empty


def test_char_lengths_at_rows_equal_pandas_str_len_on_hostile_columns() -> None:
    rng = random.Random(17)
    alphabet = ["a", "é", "€", "😀", " ", "\n", "ß"]
    values = [
        None if rng.random() < 0.15 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        for _ in range(300)
    ]
    arrow = pa.array(values, pa.large_string())
    sliced = pa.chunked_array([arrow.slice(0, 7), arrow.slice(7, 150), arrow.slice(157)])
    two_chunks = pa.chunked_array([pa.array(values[:100]), pa.array(values[100:])])  # int32 offsets
    strings = [
        pd.Series(values, dtype=object),
        pd.Series(values, dtype="str"),
        pd.Series(pd.array(sliced, dtype="str")),
        pd.Series(pd.arrays.ArrowExtensionArray(two_chunks)),
    ]
    rows = np.array([rng.randrange(300) for _ in range(200)] + [0, 299])
    for column in strings:
        expected = column.str.len().fillna(0).to_numpy(np.int64)
        assert char_lengths(column, rows).tolist() == expected[rows].tolist(), column.dtype
    for column in (pd.Series([float("nan")] * 300), pd.Series(range(300))):  # no strings: zeros
        assert char_lengths(column, rows).tolist() == [0] * len(rows)
    assert char_lengths(None, rows).tolist() == [0] * len(rows)
    assert char_lengths(strings[1], np.empty(0, np.int64)).tolist() == []


@pytest.mark.parametrize("seed", range(4))
def test_char_lengths_of_long_texts_counted_by_words_equal_str_len(seed: int) -> None:
    # Texts long enough to be counted 8 bytes at a time, at every alignment (chunks sliced at
    # odd offsets), with runs of multi-byte characters: a word lane counts up to 255
    # continuation bytes before it is added up, so a run of ~3,000 "€" (6,000) must not overflow.
    rng = random.Random(seed)
    alphabet = ["a", "é", "€", "😀", " ", "\u0080", "\U0010ffff", "ß"]

    def text() -> str | None:
        kind = rng.randrange(5)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice(alphabet) * rng.randint(0, 4_000)  # one character repeated
        length = rng.choice([0, 1, 7, 8, 9, 15, 16, 17, rng.randint(0, 3_000)])
        return "".join(rng.choice(alphabet) for _ in range(length))

    values = [text() for _ in range(120)]
    arrow = pa.array(values, pa.large_string())
    cut = rng.randint(1, 7)
    chunks = pa.chunked_array([arrow.slice(0, cut), arrow.slice(cut, 50), arrow.slice(cut + 50)])
    for column in (
        pd.Series(pd.array(chunks, dtype="str")),
        pd.Series(pd.arrays.ArrowExtensionArray(chunks)),
    ):
        expected = column.str.len().fillna(0).to_numpy(np.int64)
        rows = np.array([rng.randrange(len(values)) for _ in range(200)])
        assert char_lengths(column, rows).tolist() == expected[rows].tolist()
        assert char_lengths(column, np.arange(len(values))).tolist() == expected.tolist()


@pytest.mark.parametrize("near_threshold", [0.65, 0.8, 0.9])
def test_relations_looked_up_at_the_guards_threshold_equal_verifying_again(near_threshold: float) -> None:
    rng = np.random.default_rng(19)
    docs = 120
    base = _batch(rng, docs, alphabet=1_500)
    hashes = [base.of(row) for row in range(docs)]
    for row in range(40):  # truncated copies, near copies, and copies with as many distinct shingles
        text = hashes[row]
        hashes.append(text[: max(1, int(len(text) * rng.uniform(0.3, 1.0)))])
        hashes.append(np.concatenate((text, rng.integers(0, 1_500, 3).astype(np.uint32))))
        hashes.append(np.roll(text, int(rng.integers(0, max(len(text), 1)))))  # same set, other prefix
    offsets = np.concatenate(([0], np.cumsum([len(h) for h in hashes])))
    sequences = ShingleBatch(np.concatenate(hashes), offsets)
    total = len(sequences)
    related = [(row, docs + 3 * row + k) for row in range(40) for k in range(3)]
    pairs = np.array(related + [tuple(rng.integers(0, total, 2)) for _ in range(800)], dtype=np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    before = verify_sequences(sequences, a, b, 0.8)
    relation, order_matters = at_near_threshold(before, 0.8, near_threshold)
    again = verify_sequences(sequences, a, b, 0.8, near_threshold)
    reversed_ = verify_sequences(sequences, b, a, 0.8, near_threshold)
    assert relation.tolist() == again.relation.tolist()
    assert np.array_equal(again.jaccard, reversed_.jaccard)
    assert np.array_equal(again.containment, reversed_.containment)
    same = ~order_matters
    assert relation[same].tolist() == reversed_.relation[same].tolist()
    assert set(relation.tolist()) == {0, 1, 2}


def test_rounding_in_numpy_equals_pythons_round_to_four_places() -> None:
    rng = np.random.default_rng(23)
    ratios = [p / q for q in range(1, 400) for p in range(0, q + 1, 7)]
    halves = [(k + 0.5) / 10_000 for k in range(0, 10_000, 13)]  # ties, and doubles next to them
    values = np.array(
        ratios
        + halves
        + [np.nextafter(x, 2.0) for x in halves]
        + [np.nextafter(x, -1.0) for x in halves]
        + rng.random(20_000).tolist()
        + [0.0, -0.0, 1.0, -0.00004, 0.99995, 1e12 + 0.123456, float("nan"), float("inf")]
    )
    got = _round4(values)
    expected = np.array([round(x, 4) for x in values.tolist()])
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
