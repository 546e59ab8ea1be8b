"""The truncation check's compiled endings (audit/checks/truncation_kernel.py) and its findings
built a column at a time equal the per-value Python code (``TruncationCheck._ending`` and
``_mid_word``, the frozen reference check, ``last_letters``) on generated hostile values: Unicode
whitespace, non-ASCII letters and case rules, combining marks, quote marks, URLs holding
brackets, empty values, NUL, backslashes, values longer than the 200 and 2,000 characters the
end tests read; on Python-string and Arrow-backed (sliced, many-chunk) columns."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import truncation_reference as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import CheckContext
from audit.checks.base import finding_rows
from audit.checks.table import FindingTable
from audit.checks.truncation import (
    _FUNCTION_KEYS,
    FUNCTION_WORDS,
    KnownFragments,
    TruncationCheck,
    Vocabulary,
    ending_words,
    last_letters,
    length_digests,
)
from audit.checks.truncation_kernel import FALLBACK, Endings, word_key, word_keys

_PIECES = [
    *"aZ_-9.!?)]}\"':;,([\\/ ",
    "the",
    "Of",
    "WITHOUT",
    "although",
    "meth",
    "method",
    "Try-On",
    "...",
    "..",
    "\u2026",
    "\t",
    "\n",
    "\x0b",
    "\x1c",
    "\x1f",
    "\x00",
    "\x7f",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\x85",
    "\u00e9",
    "e\u0301",
    "\u00df",
    "\u017f",
    "\u212a",
    "\u0130",
    "\u00b2",
    "\u201c",
    "\u201d",
    "\u00ab",
    "\u00bb",
    "\u201e",
    '\\"',
    "http://",
    "HTTPS://",
    "https://",
    "htTp://x",
    "://(",
    "://a)",
    "ftp://q(",
    "http://e.org/wiki/A_(b",
    "http://e.org/a)",
    "x" * 60,
    "q" * 199,
    "w" * 201,
    "-" * 150,
    "u" * 1990,
]
_VALUE = st.lists(st.sampled_from(_PIECES), max_size=10).map("".join)


def _frame(titles: list[str], texts: list[str], arrow: bool) -> pd.DataFrame:
    ids = [f"r{n}" for n in range(len(titles))]
    frame = pd.DataFrame({"id": ids, "title": titles, "text": texts})
    if arrow:
        # As the batches see them: Arrow-backed, many chunks, a slice of a longer column.
        for name in ("id", "title", "text"):
            whole = pa.array(["pad"] * 3 + frame[name].tolist(), pa.large_string()).slice(3)
            chunks = pa.chunked_array([whole.slice(0, 1), whole.slice(1)])
            frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(chunks))
    return frame


@settings(max_examples=250)
@given(st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=8), st.booleans(), st.booleans())
def test_findings_equal_the_reference(values: list[tuple[str, str]], mid_word: bool, arrow: bool) -> None:
    titles, texts = [t for t, _ in values], [x for _, x in values]
    records = _frame(titles, texts, arrow and all("\ud800" not in v for v in titles + texts))
    fast = TruncationCheck(mid_word=mid_word)
    plain = reference.TruncationCheck(mid_word=mid_word)
    found = fast.table(records, CheckContext())
    expected = plain.run(
        pd.DataFrame({"id": records["id"].tolist(), "title": titles, "text": texts}), CheckContext()
    )
    # The JSON text of the evidence byte for byte, and the findings as rows.
    assert found.table["evidence"].to_pylist() == FindingTable.of(expected).table["evidence"].to_pylist()
    assert finding_rows(fast.run(records, CheckContext())) == finding_rows(expected)


@settings(max_examples=250)
@given(_VALUE, st.sampled_from(["title", "text"]))
def test_value_ending_equals_the_python_ending(value: str, field: str) -> None:
    """One value through the kernel: its findings (a vocabulary from the value's own words) are
    those of ``_ending`` and ``_mid_word``; an ASCII value is decided by the kernel unless a URL
    in it holds a bracket."""
    check = TruncationCheck()
    records = pd.DataFrame({"id": ["r"], "title": [value], "text": [value]})
    vocabulary = Vocabulary([value, "methodical method"])
    ending = check._ending("r", field, value)
    if not isinstance(ending, list):
        ending = check._mid_word(ending, vocabulary.is_fragment(ending.word) if ending.word else None)
    context = CheckContext(corpus={"truncation": (vocabulary, {"title": None, "text": None})})
    found = [f for f in check.run(records, context) if f.field == field]
    assert finding_rows(found) == finding_rows(ending)
    kind = Endings(pa.array([value.encode("utf-8", "surrogatepass")], pa.large_binary()), _FUNCTION_KEYS).kind
    if value.isascii() and "://" not in value:
        assert kind[0] != FALLBACK


@settings(max_examples=250)
@given(st.lists(_VALUE, max_size=8), st.booleans())
def test_ending_words_equal_the_python_last_letters(values: list[str], arrow: bool) -> None:
    column = pd.Series(values, dtype="string[pyarrow]" if arrow else object)
    expected = set()
    for value in values:
        stripped = value.rstrip()
        if stripped and stripped[-1].isalnum() and (word := last_letters(stripped[-200:])):
            expected.add(word)
    assert ending_words([column]) == expected
    for value in values:  # the Python last letters are the reference's
        assert last_letters(value.rstrip()[-200:]) == reference.last_letters(value.rstrip()[-200:])


def test_hostile_values_one_by_one() -> None:
    """Values at each edge, in one frame (two chunks)."""
    values = [
        "",
        "   ",
        "\u00a0",
        "end of\u00a0",
        "end of\x1c",
        "the",
        "-the",
        "x-the",
        "A\x00the",
        "word " + "a" * 199,
        "word " + "a" * 200,
        "1" + "b" * 199,
        "see http://e.org/x",
        "see HTTP://e.org",
        "see http://",
        "see https:/",
        "http://e.org/wiki/A_(b and more",
        'say "hi',
        'say \\"hi',
        'say "hi\\"',
        "(a [b) c",
        "a ]) ( [ x",
        "caf\u00e9",
        "e\u0301",
        "\u201cquote",
        "end...",
        "end\u2026",
        "trailing\t\n ",
        "x" * 3000 + " http://e.org/" + "y" * 2100,
    ]
    check = TruncationCheck()
    records = _frame(values, values[::-1], arrow=True)
    expected = reference.TruncationCheck().run(
        pd.DataFrame({"id": records["id"].tolist(), "title": values, "text": values[::-1]}), CheckContext()
    )
    assert finding_rows(check.run(records, CheckContext())) == finding_rows(expected)


def test_function_word_keys() -> None:
    keys = word_keys(FUNCTION_WORDS)
    assert len(set(keys.tolist())) == len(FUNCTION_WORDS)
    assert word_key(b"the") in set(keys.tolist()) and word_key(b"thee") not in set(keys.tolist())
    assert np.all(np.diff(keys.astype(np.float64)) > 0)


def test_known_fragments_answer_the_batches() -> None:
    """Over a batch (the corpus given), the mid-word findings use the given answers."""
    records = pd.DataFrame({"id": ["a", "b"], "title": ["T.", "T."], "text": ["a new meth", "done wel"]})
    given_corpus = (KnownFragments({"meth": "method"}), {"title": None, "text": None})
    found = TruncationCheck().run(records, CheckContext(corpus={"truncation": given_corpus}))
    assert [(f.record_id, f.evidence["signal"], f.evidence.get("longer_word")) for f in found] == [
        ("a", "mid-word", "method"),
        ("b", "no final punctuation", None),
    ]
    table = TruncationCheck().table(records, CheckContext(corpus={"truncation": given_corpus})).table
    assert json.loads(table["evidence"][0].as_py())["offset"] == 6


_BODY_PIECES = [
    "Deep",
    "deep",
    " ",
    "  ",
    "-",
    "_",
    ".",
    "9",
    "\u00a0",
    "\u2028",
    "\u00e9",
    "E\u0301",
    "\u00df",
    "SS",
    "\ufb01",
    "\u212a",
    "\u0130",
    "\uff24",
    "\x00",
    "x" * 50,
]


@st.composite
def _clustered(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records whose texts are cuts of a few bases (some blank: the title is compared), in
    clusters of random members (some ids repeated or missing)."""
    bases = draw(
        st.lists(st.lists(st.sampled_from(_BODY_PIECES), max_size=12).map("".join), min_size=1, max_size=3)
    )
    texts, titles = [], []
    for _ in range(draw(st.integers(1, 10))):
        base = draw(st.sampled_from(bases))
        cut = base[: draw(st.integers(0, len(base)))]
        texts.append(draw(st.sampled_from([cut, cut.upper(), cut + "!", " \u00a0", ""])))
        titles.append(draw(st.sampled_from([base, cut, "t"])))
    ids = [f"r{n}" for n in range(len(texts))]
    members = st.lists(st.sampled_from([*ids, "missing"]), max_size=6)
    clusters = pd.DataFrame({"members": draw(st.lists(members, min_size=1, max_size=4))})
    return pd.DataFrame({"id": ids, "title": titles, "text": texts}), clusters


@settings(max_examples=300)
@given(_clustered(), st.integers(0, 12), st.booleans())
def test_proven_findings_equal_the_reference(
    clustered: tuple[pd.DataFrame, pd.DataFrame], min_chars: int, arrow: bool
) -> None:
    records, clusters = clustered
    fast = TruncationCheck(min_prefix_chars=min_chars)
    plain = reference.TruncationCheck(min_prefix_chars=min_chars)
    context = CheckContext(clusters=clusters)
    expected = [f for f in plain.run(records, CheckContext(clusters=clusters)) if f.severity == "error"]
    frame = _frame(records["title"].tolist(), records["text"].tolist(), arrow)
    assert finding_rows(fast._proven_findings(frame, context)) == finding_rows(expected)


@pytest.mark.parametrize(
    ("texts", "min_chars"),
    [
        (["\u00e9\u00e9", "\u00e9\u00e9a", "\u00e9\u00e9ab"], 3),  # 2 characters, 4 bytes: too short
        (["\u00e9a", "\u00e9ab", "EAB"], 2),
        (["e\u0301x", "\u00e9xy", "\u00c9XYZ"], 1),  # NFKC composes the mark
        (["abc", "\ufb01", "fi", "fix"], 1),  # a ligature folds to two letters
        (["a b", "ab", "a-b c", "A_B  C!"], 1),
        (["", " ", "x"], 0),
    ],
)
def test_proven_hand_cases_equal_the_reference(texts: list[str], min_chars: int) -> None:
    records = pd.DataFrame(
        {"id": [f"r{n}" for n in range(len(texts))], "title": ["t"] * len(texts), "text": texts}
    )
    clusters = pd.DataFrame({"members": [list(records["id"])[::-1], list(records["id"])]})
    context = CheckContext(clusters=clusters)
    expected = [
        f
        for f in reference.TruncationCheck(min_prefix_chars=min_chars).run(records, context)
        if f.severity == "error"
    ]
    found = TruncationCheck(min_prefix_chars=min_chars)._proven_findings(records, context)
    assert finding_rows(found) == finding_rows(expected)


@settings(max_examples=250)
@given(st.lists(_VALUE, max_size=12), st.booleans())
def test_length_digests_count_the_distinct_stripped_values(values: list[str], arrow: bool) -> None:
    """One row per distinct non-blank stripped value, its length in characters, whichever way
    (compiled or Python) each value was stripped."""
    column = pd.Series(values, dtype="string[pyarrow]" if arrow else object)
    found = length_digests(column)
    distinct = {v.rstrip() for v in values if v.rstrip()}
    assert len(found) == len(distinct)
    assert Counter(found[:, 0].tolist()) == Counter(len(s) for s in distinct)


def test_length_digests_of_a_value_stripped_either_way_agree() -> None:
    rows = length_digests(
        pd.Series(["abc\u00a0", "abc", "abc \t", "\u00e9t\u00e9\u2028", "\u00e9t\u00e9", "  "])
    )
    assert len(rows) == 2 and sorted(rows[:, 0].tolist()) == [3, 3]
