"""Shingling and MinHash signatures: the definitions, datasketch compatibility, the traps."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash
from datasketch.minhash import _fmix

from audit.dedup.minhash import MinHasher
from audit.dedup.shingles import ShingleBatch, hash_batch, reference_shingle_hash, shingle_hashes, shingles
from audit.dedup.signer import SignerSettings, sign_texts

TEXTS = [
    "the quick brown fox jumps over the lazy dog again and again",
    "déjà vu à la carte über straße naïve café résumé",
    "tiny",
    "two words",
    "",
    "a b c d e",
]


def test_bulk_hashes_equal_the_slow_per_shingle_definition() -> None:
    batch = hash_batch(TEXTS)
    for row, text in enumerate(TEXTS):
        char_grams = 0 < len(text.split()) < 5
        expected = {reference_shingle_hash(s, char_grams) for s in shingles(text)} if text else set()
        if char_grams and any(ord(c) > 127 for c in text):
            continue  # byte n-grams of non-ASCII text do not decode to the readable strings
        assert set(batch.of(row).tolist()) == expected, text


def test_a_shingle_hashes_the_same_in_any_batch_and_position() -> None:
    alone = shingle_hashes(TEXTS[0])
    crowded = hash_batch(["x y z w v u"] * 7 + [TEXTS[0]] + TEXTS)
    assert np.array_equal(np.unique(crowded.of(7)), alone)


def test_as_sets_is_sorted_unique_per_text() -> None:
    batch = hash_batch(["a b c d e a b c d e", "tiny", "", "a b c d e f"])
    sets = batch.as_sets()
    for row in range(len(batch)):
        assert np.array_equal(sets.of(row), np.unique(batch.of(row)))


def test_short_texts_do_not_collapse_into_one_shingle() -> None:
    short = ["graph neural nets", "deep learning", "attention", "a survey", "transformers"]
    sets = [set(shingle_hashes(t).tolist()) for t in short]
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j], (short[i], short[j])
    assert all(len(s) >= 1 for s in sets)


def test_signatures_equal_datasketch_minhash() -> None:
    rng = np.random.default_rng(7)
    sets = [rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32) for size in (1, 5, 300, 40_000)]
    hasher = MinHasher(num_perm=64, seed=3)
    ours = hasher.signatures(sets)
    for row, values in enumerate(sets):
        reference = MinHash(num_perm=64, seed=3, scheme="affine32", hashfunc=lambda v: v)
        reference.update_batch(values.tolist())
        assert np.array_equal(ours[row], reference.hashvalues)
    lean = hasher.to_datasketch(ours[0])
    assert isinstance(lean, LeanMinHash) and lean.jaccard(hasher.to_datasketch(ours[0])) == 1.0


def test_prefix_signature_is_the_minhash_of_the_first_shingles() -> None:
    batch = hash_batch([TEXTS[0], "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3, ""])
    full, prefix = MinHasher(32, 1).batch(batch.hashes, batch.offsets, prefix_shingles=10)
    assert prefix is not None
    for row in range(2):
        expected = MinHasher(32, 1).signatures([batch.of(row)[:10]])[0]
        assert np.array_equal(prefix[row], expected)
    assert (full[2] == np.uint32(0xFFFFFFFF)).all() and (prefix[2] == np.uint32(0xFFFFFFFF)).all()


def test_no_overflow_against_a_slow_python_reference() -> None:
    values = np.array([0, 1, 2**31, 2**32 - 1, 123456789], dtype=np.uint32)
    hasher = MinHasher(num_perm=16, seed=11)
    a, b = (np.asarray(p, dtype=np.uint64) for p in MinHash(num_perm=16, seed=11).permutations)
    mixed = [int(v) for v in _fmix(values, 32)]
    expected = [min((int(a[k]) * x + int(b[k])) % 2**32 for x in mixed) for k in range(16)]
    assert hasher.signatures([values])[0].tolist() == expected


def test_mixing_seeds_or_schemes_is_refused() -> None:
    hasher = MinHasher(num_perm=16, seed=1)
    hasher.check_compatible(seed=1, num_perm=16)
    with pytest.raises(ValueError):
        hasher.check_compatible(seed=2, num_perm=16)
    with pytest.raises(ValueError):
        hasher.check_compatible(seed=1, num_perm=16, scheme="legacy")
    one = hasher.to_datasketch(hasher.signatures([np.arange(10, dtype=np.uint32)])[0])
    other = MinHasher(num_perm=16, seed=2)
    two = other.to_datasketch(other.signatures([np.arange(10, dtype=np.uint32)])[0])
    with pytest.raises(ValueError):
        one.jaccard(two)


def test_parallel_signing_equals_one_process() -> None:
    texts = [f"record {n} " + TEXTS[n % 2] + f" tail {n % 7}" for n in range(60)] + TEXTS
    one = sign_texts(texts, SignerSettings(num_perm=32, batch_docs=16, workers=1))
    two = sign_texts(texts, SignerSettings(num_perm=32, batch_docs=16, workers=2, min_docs_per_worker=10))
    assert np.array_equal(one.signatures, two.signatures)
    assert np.array_equal(one.prefix_signatures, two.prefix_signatures)
    assert np.array_equal(one.shingles.hashes, two.shingles.hashes)
    assert isinstance(one.shingles, ShingleBatch) and len(one.shingles) == len(texts)


def test_a_document_larger_than_a_chunk_is_signed_in_slices() -> None:
    from audit.dedup import minhash

    rng = np.random.default_rng(3)
    big = rng.integers(0, 2**32, minhash.CHUNK_SHINGLES * 2 + 17, dtype=np.uint64).astype(np.uint32)
    small = np.arange(50, dtype=np.uint32)
    offsets = np.array([0, len(small), len(small) + len(big)])
    hasher = MinHasher(num_perm=16, seed=1)
    full, prefix = hasher.batch(np.concatenate((small, big)), offsets, prefix_shingles=24)
    reference = MinHash(num_perm=16, seed=1, scheme="affine32", hashfunc=lambda v: v)
    reference.update_batch(big.tolist())
    assert np.array_equal(full[1], reference.hashvalues)
    assert prefix is not None and np.array_equal(prefix[1], hasher.signatures([big[:24]])[0])
    assert np.array_equal(full[0], hasher.signatures([small])[0])
