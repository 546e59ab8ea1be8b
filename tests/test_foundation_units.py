"""Unit tests of the foundation's building blocks."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from audit.clean import apply_repairs
from audit.dedup.minhash import MinHasher
from audit.dedup.shingles import shingle_hashes, shingles
from audit.normalise import normalise_text
from audit.urls import find_urls


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("see https://github.com/org/repo.", ["https://github.com/org/repo"]),
        ("(https://a.org/x), and https://b.org/y;", ["https://a.org/x", "https://b.org/y"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("https://x.io/objectsdf++ rest", ["https://x.io/objectsdf++"]),
        ("q https://a.org/p?x=1&y=2#frag, end", ["https://a.org/p?x=1&y=2#frag"]),
        ("no url here: https: //broken.org", []),
    ],
)
def test_find_urls_excludes_sentence_punctuation(text: str, urls: list[str]) -> None:
    assert find_urls(text) == urls


def test_normalise_folds_case_width_and_punctuation() -> None:
    assert normalise_text("Ｈello,  WORLD—again!") == normalise_text("hello world again")


def test_short_texts_do_not_collapse_into_one_shingle() -> None:
    # The trap: every text shorter than the shingle size becoming one identical shingle.
    assert set(shingles("graph neural nets")).isdisjoint(shingles("vision transformers"))
    assert len(shingle_hashes("graph neural nets")) > 1


def test_signatures_equal_datasketch_minhash() -> None:
    hasher = MinHasher(num_perm=64, seed=3)
    texts = ["one two three four five six seven", "tiny", ""]
    hash_sets = [shingle_hashes(normalise_text(t)) for t in texts]
    signatures = hasher.signatures(hash_sets)
    for signature, hashes in zip(signatures, hash_sets, strict=True):
        reference = MinHash(num_perm=64, seed=3, scheme="affine32", hashfunc=int)
        reference.update_batch(hashes.tolist())
        assert np.array_equal(reference.hashvalues, signature)


def test_signatures_work_in_datasketch_lsh() -> None:
    hasher = MinHasher(num_perm=128)
    base = " ".join(f"w{i}" for i in range(200))
    near = base.replace("w100 ", "x100 ")
    sigs = hasher.signatures([shingle_hashes(base), shingle_hashes(near)])
    lsh = MinHashLSH(threshold=0.7, num_perm=128)
    lsh.insert("base", hasher.to_datasketch(sigs[0]))
    assert lsh.query(hasher.to_datasketch(sigs[1])) == ["base"]


def test_apply_repairs_right_to_left_and_skips_overlaps() -> None:
    value = "see https: //a.org and https: //b.org"
    repairs = [
        {"offset": 4, "old": "https: //", "new": "https://", "description": "a"},
        {"offset": 23, "old": "https: //", "new": "https://", "description": "b"},
        {"offset": 6, "old": "tps", "new": "", "description": "overlaps the first"},
        {"offset": 0, "old": "nope", "new": "", "description": "old text not there"},
    ]
    fixed, applied = apply_repairs(value, repairs)
    assert fixed == "see https://a.org and https://b.org"
    assert applied == [True, True, False, False]
