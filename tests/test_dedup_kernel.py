"""The compiled signing kernel equals the numpy path (the reference), datasketch and xxhash."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xxhash
from datasketch import MinHash
from hypothesis import given
from hypothesis import strategies as st

from audit.dedup import kernel
from audit.dedup.jit import compiled
from audit.dedup.kernel import normalise_many
from audit.dedup.lsh import (
    Banding,
    bucket_pairs,
    candidate_pairs_from_keys,
    first_of_equal,
    sorted_unique,
    unique_pairs,
)
from audit.dedup.shingles import ShingleBatch
from audit.dedup.signer import SignerSettings, sign_batch, sign_texts
from audit.dedup.verify import verify_pairs, verify_sequences

SETTINGS = SignerSettings(num_perm=128, banding=Banding(25, 5), prefix_banding=Banding(16, 4))
NAMES = ("hashes", "offsets", "signatures", "prefix_signatures", "text_hashes", "band_keys")

# Words, punctuation, Unicode (NFKC and case folding change some: ligatures, full-width, ß,
# Greek), page furniture (removed before comparing) and separators.
TOKENS = st.sampled_from(
    [
        "deep",
        "Learning",
        "nets",
        "a",
        "of",
        "THE",
        "x1",
        "é",
        "ﬁne",
        "Ｄeep",
        "straße",
        "ΣΑΣ",
        "日本語",
        "subscribe",
        "Subscribe",
        "get trending papers in your email inbox",
        "once a day",
        "byAK",
        "byak and the research community",
        "—",
        "!",
        "_",
        "...",
        "(",
        "'s",
        "\t",
        "  ",
        "\u00a0",
        "\u200b",
    ]
)
RAW_TEXT = st.lists(TOKENS, max_size=40).map(" ".join) | st.text(max_size=60)


def assert_same(texts: list[str], settings: SignerSettings) -> None:
    ours = sign_batch(texts, settings)
    reference = sign_batch(texts, replace(settings, kernel=False))
    for name, got, expected in zip(NAMES, ours, reference, strict=True):
        assert got.dtype == expected.dtype and np.array_equal(got, expected), name


@given(st.lists(RAW_TEXT, max_size=12), st.booleans())
def test_kernel_equals_the_numpy_path_on_raw_texts(texts: list[str], keep: bool) -> None:
    assert_same(texts, replace(SETTINGS, normalise=True, keep_signatures=keep))


@given(st.lists(RAW_TEXT, max_size=12))
def test_kernel_equals_the_numpy_path_on_normalised_texts(texts: list[str]) -> None:
    from audit.normalise import normalise_text

    assert_same([normalise_text(t) for t in texts], replace(SETTINGS, normalise=False))


@given(st.lists(st.text(alphabet=" ab\u00e9c", max_size=20), max_size=8))
def test_kernel_equals_the_numpy_path_on_texts_not_normalised(texts: list[str]) -> None:
    # normalise=False trusts its input: edge and repeated spaces are hashed as they are.
    small = replace(SETTINGS, num_perm=16, banding=Banding(4, 4), prefix_banding=Banding(2, 4))
    assert_same(texts, replace(small, normalise=False))


def test_kernel_equals_the_numpy_path_on_short_empty_and_huge_texts() -> None:
    rng = np.random.default_rng(5)
    words = [f"w{n}" for n in range(5_000)]
    huge = " ".join(rng.choice(words, 45_000).tolist())  # more shingles than a MinHash chunk
    texts = ["", " ", "a", "ab", "abcd", "abcde", "abcdef", "one two", "a b c d", "a b c d e", "é", huge, ""]
    assert_same(texts, replace(SETTINGS, normalise=True))
    assert_same(texts, replace(SETTINGS, normalise=False))
    assert_same(texts, replace(SETTINGS, normalise=True, word_n=3, char_n=2, prefix_shingles=1))


def test_furniture_is_removed_only_where_it_is_and_never_across_two_texts() -> None:
    texts = [
        "Deep nets. Get trending papers",  # with the next text, the phrase straddles two texts
        "in your email inbox! more words here to shingle",
        "Subscribe deep nets for graphs and more subscribe",
        "nothing to remove in this text at all, none",
        "x byAK and the research community y z w v",
        "subscribed readers are not furniture here at all",
    ]
    assert_same(texts, replace(SETTINGS, normalise=True))
    data, offsets = kernel.prepare_batch(texts, normalise=True)
    got = [data[offsets[k] : offsets[k + 1]].tobytes().decode() for k in range(len(texts))]
    assert got[0] == "deep nets get trending papers" and got[2] == "deep nets for graphs and more"
    assert got[4] == "x y z w v" and got[5].startswith("subscribed readers")


def test_kernel_signatures_equal_datasketch() -> None:
    texts = ["the quick brown fox jumps over the lazy dog twice", "tiny"]
    settings = replace(SETTINGS, num_perm=64, banding=Banding(16, 4))
    hashes, offsets, signatures = sign_batch(texts, settings)[:3]
    for row in range(2):
        reference = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=lambda v: v)
        reference.update_batch(hashes[offsets[row] : offsets[row + 1]].tolist())
        assert np.array_equal(signatures[row], reference.hashvalues)


@given(st.binary(max_size=100))
def test_xxh64_equals_the_xxhash_package(data: bytes) -> None:
    assert kernel.xxh64(data) == xxhash.xxh64_intdigest(data)


def test_threads_give_what_one_thread_gives() -> None:
    texts = [f"record {n} of the corpus with some words {n % 5} and more" for n in range(101)]
    one = sign_texts(texts, replace(SETTINGS, batch_docs=8, workers=1))
    two = sign_texts(texts, replace(SETTINGS, batch_docs=8, workers=2))
    for name in ("signatures", "prefix_signatures", "text_hashes", "band_keys"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert np.array_equal(one.sequences.hashes, two.sequences.hashes)


def test_a_banding_wider_than_the_signature_is_refused() -> None:
    wide = replace(SETTINGS, num_perm=16, banding=Banding(5, 5), prefix_banding=None)
    with pytest.raises(ValueError):
        sign_batch(["a b c d e f"], wide)


def test_a_function_numba_cannot_cache_is_compiled_in_memory() -> None:
    # Code without a source file has no cache locator, as a read-only install has none:
    # numba refuses cache=True; the kernel's decorator falls back to compiling in memory.
    namespace: dict = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)
    assert compiled(namespace["add_one"])(41) == 42


def reference_candidates(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The numpy/pandas way: :func:`bucket_pairs` per band, then :func:`unique_pairs`."""
    found = [rows[bucket_pairs(band[rows])] for band in keys]
    return unique_pairs(np.concatenate(found) if found else np.empty((0, 2), np.int64))


@given(
    st.integers(1, 300),
    st.integers(1, 6),
    st.sampled_from([1, 3, 1 << 40, 2**64 - 1]),
    st.integers(0, 2**32),
    st.integers(1, 3),
    st.sampled_from([0, 2, 3, 64]),
)
def test_compiled_buckets_give_the_reference_pairs(
    docs: int, bands: int, spread: int, seed: int, threads: int, batch: int
) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct keys (big buckets, many repeated pairs: the output grows), keys equal in
    # their low bits or in their top bits (table collisions, one part), and random ones.
    keys = rng.integers(0, spread, (bands, docs), dtype=np.uint64, endpoint=True)
    keys[:, ::3] = keys[:, ::3] << np.uint64(20) | np.uint64(7)
    rows = np.flatnonzero(rng.random(docs) < 0.8)
    # ``batch``: pairs collected before repeats are removed (small: many batches, the set of
    # pairs found grows many times, a batch spans bands).
    got = candidate_pairs_from_keys(keys, rows, threads=threads, batch=batch)
    assert got.dtype == np.int64
    assert got.tolist() == reference_candidates(keys, rows).tolist()


def reference_first_of_equal(keys: np.ndarray) -> np.ndarray:
    """The first position of each position's key, by pandas' factorize (as exact copies were grouped)."""
    codes, _ = pd.factorize(keys)
    return np.unique(codes, return_index=True)[1][codes] if len(keys) else np.empty(0, np.int64)


@given(st.integers(0, 400), st.sampled_from([1, 3, 1 << 40, 2**64 - 1]), st.integers(0, 2**32))
def test_first_of_equal_gives_factorize_first_positions(size: int, spread: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, spread, size, dtype=np.uint64, endpoint=True)
    keys[::3] = keys[::3] << np.uint64(20) | np.uint64(7)  # equal low bits (one table slot), or top bits
    assert first_of_equal(keys).tolist() == reference_first_of_equal(keys).tolist()


def test_first_of_equal_on_empty_one_and_identical_keys() -> None:
    assert first_of_equal(np.empty(0, np.uint64)).tolist() == []
    assert first_of_equal(np.array([5], np.uint64)).tolist() == [0]
    assert first_of_equal(np.full(1_000, 2**64 - 1, np.uint64)).tolist() == [0] * 1_000
    assert first_of_equal(np.zeros(3, np.uint64)).tolist() == [0, 0, 0]
    signed = np.array([-1, 3, -1], np.int64)  # hashes typed int64 elsewhere: the same bits
    assert first_of_equal(signed).tolist() == [0, 1, 0]
    many = np.random.default_rng(3).integers(0, 2**64 - 1, 50_000, dtype=np.uint64, endpoint=True)
    many[1::2] = many[::2]  # every key twice: parts of hundreds, each table grown
    assert first_of_equal(many).tolist() == reference_first_of_equal(many).tolist()


def test_compiled_buckets_on_empty_one_and_identical_keys() -> None:
    for keys, rows in [
        (np.zeros((3, 0), np.uint64), None),
        (np.zeros((3, 1), np.uint64), None),
        (np.zeros((0, 5), np.uint64), None),
        (np.full((4, 50), 9, np.uint64), None),  # one bucket of 50 in every band
        (np.full((4, 50), 9, np.uint64), np.array([3, 17])),
    ]:
        chosen = np.arange(keys.shape[1]) if rows is None else rows
        for batch in (0, 2):
            got = candidate_pairs_from_keys(keys, rows, threads=2, batch=batch)
            assert got.tolist() == reference_candidates(keys, chosen).tolist()


@given(st.integers(0, 2**32), st.integers(2, 40), st.sampled_from([None, 0.65, 0.0]), st.integers(1, 3))
def test_compiled_verification_equals_verify_pairs(
    seed: int, texts: int, near_threshold: float | None, threads: int
) -> None:
    rng = np.random.default_rng(seed)
    # Texts drawn from a few shared "documents": copies, cut copies (prefixes), edited copies,
    # repeated shingles, empty texts; hash values small so that tables collide.
    bases = [rng.integers(0, 64, rng.integers(1, 60)).astype(np.uint32) for _ in range(3)]
    parts = []
    for _ in range(texts):
        base = bases[rng.integers(len(bases))]
        kind = rng.integers(4)
        if kind == 0:
            part = base[: rng.integers(0, len(base) + 1)]
        elif kind == 1:
            part = np.where(rng.random(len(base)) < 0.1, rng.integers(0, 2**32, len(base)), base)
        elif kind == 2:
            part = np.concatenate((base, base[: rng.integers(0, len(base) + 1)]))
        else:
            part = rng.integers(0, 2**32, rng.integers(0, 5))
        parts.append(np.asarray(part, np.uint32))
    offsets = np.zeros(texts + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    sequences = ShingleBatch(np.concatenate(parts), offsets)
    a, b = rng.integers(0, texts, (2, 3 * texts))
    expected = verify_pairs(sequences.as_sets(), sequences, a, b, 0.8, near_threshold)
    got = verify_sequences(sequences, a, b, 0.8, near_threshold, threads=threads)
    assert np.array_equal(got.jaccard, expected.jaccard)
    assert np.array_equal(got.containment, expected.containment)
    assert np.array_equal(got.relation, expected.relation)


@given(st.lists(RAW_TEXT, max_size=30))
def test_normalise_many_equals_normalise_text(texts: list[str]) -> None:
    from audit.normalise import normalise_text

    assert normalise_many(texts) == [normalise_text(t) for t in texts]


TITLES = st.sampled_from(["", "Deep Nets", "deep  nets!", "Ｄeep nets", "graphs", "日本語 nets"])


@given(st.lists(TITLES, max_size=12))
def test_title_similarities_in_one_call_equal_one_ratio_per_pair(titles: list[str]) -> None:
    from audit.dedup import _normalised_titles, _title_similarities, _title_similarity

    column = pd.Series(titles, dtype=object)
    title_of = _normalised_titles(column, np.arange(len(titles)))
    a = np.array(list(range(len(titles))) * 2, dtype=np.int64)
    b = np.concatenate((a[: len(titles)][::-1], a[: len(titles)]))
    expected = [_title_similarity(title_of, x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    got = _title_similarities(column, a, b)
    assert [None if np.isnan(x) else x for x in got.tolist()] == expected
    assert np.isnan(_title_similarities(None, a, b)).all()


@given(st.lists(st.integers(-(2**62), 2**62), max_size=50), st.booleans())
def test_sorted_unique_equals_numpy_unique(values: list[int], as_pairs: bool) -> None:
    array = np.array(values, dtype=np.int64)
    if as_pairs:
        array = array[: len(array) // 2 * 2].reshape(-1, 2)
    got = sorted_unique(array)
    assert got.dtype == np.unique(array).dtype and got.tolist() == np.unique(array).tolist()
