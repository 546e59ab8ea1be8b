"""The vocabulary read from a records frame a chunk at a time (truncation's ValueChunks): its
search for the last few words over Arrow-backed columns leaves out the values that cannot hold
them (one regex in Arrow's kernel), and answers as the vocabulary of the plain list of values,
also when the search runs out of steps, with mixed case, non-ASCII, NUL and missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import truncation
from audit.checks.truncation import ValueChunks, Vocabulary, _maybe_containing

_PIECES = [
    "meth",
    "Method",
    "METHODS",
    "subscrib",
    "Subscribe",
    "ßtraße",
    "İstan",
    "naïve",
    "x\x00y",
    "a.b",
    "  ",
]


def _frame(values: list[str], storage: str) -> pd.DataFrame:
    half = len(values) // 2
    titles, texts = values[:half], values[half:]
    n = min(len(titles), len(texts))
    return pd.DataFrame(
        {
            "title": pd.Series(titles[:n], dtype=f"string[{storage}]"),
            "text": pd.Series(texts[:n], dtype=f"string[{storage}]"),
        }
    )


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.lists(st.sampled_from([*_PIECES, "the", "of", "meths", "subscriber"]), min_size=1, max_size=6).map(
            " ".join
        ),
        min_size=2,
        max_size=40,
    ),
    words=st.sets(st.sampled_from(["meth", "subscrib", "stra", "istan", "naï", "xq", "th", "a"]), min_size=1),
    chunk=st.integers(1, 9),
    steps=st.sampled_from([3, 50, 2_000_000]),
)
def test_chunked_vocabulary_answers_as_the_list(values, words, chunk, steps) -> None:
    frame = _frame(values, "pyarrow")
    listed = frame["title"].tolist() + frame["text"].tolist()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(truncation, "_VOCABULARY_CHUNK", chunk)
        patch.setattr(truncation, "_TARGETED_STEPS_MAX", steps)
        patch.setattr(truncation, "_TARGETED_WORDS_MAX", 2)  # the search runs often
        expected = Vocabulary(listed).fragments(words)
        for storage in ("pyarrow", "python"):
            chunks = ValueChunks([_frame(values, storage)["title"], _frame(values, storage)["text"]])
            assert Vocabulary(chunks).fragments(words) == expected


def test_maybe_containing_keeps_every_value_that_may_hold_a_word() -> None:
    values = pd.Series(
        ["A METHOD", "no", "naïve", None, "Subscribe now", "x\x00meth"], dtype="string[pyarrow]"
    )
    kept = _maybe_containing(values, ["meth", "subscrib"])
    assert kept.tolist() == [True, False, True, True, True, True]
    assert _maybe_containing(pd.Series(["a"], dtype=object), ["a"]) is None  # not Arrow: all


def test_chunks_leave_out_only_values_without_the_words() -> None:
    values = pd.Series(["one meth", "two", "three Meth", "four"] * 3, dtype="string[pyarrow]")
    got = list(ValueChunks([values]).chunks(4, ["meth"]))
    assert got == [["one meth", "three Meth"]] * 3
    assert [len(c) for c in ValueChunks([values]).chunks(4)] == [4, 4, 4]
    assert np.array_equal(_maybe_containing(values, []), np.zeros(12, bool))
