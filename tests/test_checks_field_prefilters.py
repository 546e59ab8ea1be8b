"""The per-value checks (boilerplate, markup_residue, encoding) run with their whole-column
prefilters, field by field, find exactly what their finder finds on every value of every row,
on generated and hostile values, Arrow-backed and plain columns."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import CheckContext
from audit.checks.base import finding_rows
from audit.checks.boilerplate import BoilerplateCheck, _ends_in_digit, furniture_findings
from audit.checks.encoding import _TOKEN, EncodingCheck, _non_ascii_tokens, encoding_findings
from audit.checks.markup_residue import _COMMENT, MarkupResidueCheck, comment_rows, markup_findings
from audit.checks.prefilter import byte_contexts, lowered_literal
from audit.furniture import LEAKED_FURNITURE

_BITS = [
    "a",
    " ",
    "\n",
    "\t",
    ".",
    "3",
    "١٣",
    "…",
    "é",
    "Ã©",
    "\x00",
    "\x85",
    "\u00a0",
    "\u200b",
    "\ufffd",
    "😀",
    "İ",
    "K",
    "Subscribe",
    "new",
    "Mar 13",
    "Sign in to continue",
    "Log in or register.",
    "Login",
    "signin",
    "designing",
    "SIGN IN TO READ",
    "Please Sign in to view",
    "Already have an account? ",
    "Get trending papers in your email inbox!",
    "We use cookies here.",
    "Cookie settings",
    "[email protected]",
    "COOKIE SETTINGS",
    "Cookie policy",
    "Accept cookies",
    "BYAK AND THE RESEARCH COMMUNITY",
    "%",
    "95% of",
    "% comment",
    "5 %x",
    "١%a",
    "\\%",
    "%%a",
    "% \tb",
    "%\x00",
    "$",
    "$x^2$",
    "\\em",
    "{\\L}",
    "\\'e",
    "^{2}",
    "<b>",
    "&amp;",
    "https://x.org/a%20b",
]
_VALUE = st.lists(st.sampled_from(_BITS), max_size=8).map("".join)


def _reference(records: pd.DataFrame, finder) -> list[tuple]:
    """The finder on every field of every row, in row order, no prefilter."""
    found = []
    for row in range(len(records)):
        for name in ("title", "text"):
            found += finder(records["id"][row], name, records[name][row])
    return finding_rows(found)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object])
@pytest.mark.parametrize(
    ("check", "finder"),
    [
        (BoilerplateCheck, furniture_findings),
        (MarkupResidueCheck, markup_findings),
        (EncodingCheck, encoding_findings),
    ],
)
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=12))
def test_prefiltered_check_equals_its_finder_on_every_value(dtype, check, finder, pairs) -> None:
    records = pd.DataFrame(
        {
            "id": [f"r{n}" for n in range(len(pairs))],
            "title": [title for title, _ in pairs],
            "text": [text for _, text in pairs],
        }
    ).astype({"title": dtype, "text": dtype})
    assert finding_rows(check().run(records, CheckContext())) == _reference(records, finder)


@given(st.text())
def test_ends_in_digit_is_the_regex(value: str) -> None:
    assert _ends_in_digit(value) == bool(re.search(r"\d$", value))


@given(st.lists(st.sampled_from(_BITS), max_size=10).map("".join))
def test_every_cased_kind_match_holds_a_cased_literal(value: str) -> None:
    for furniture in LEAKED_FURNITURE:
        if furniture.cased and furniture.pattern.search(value):
            assert any(part in value for part in furniture.cased)


_TOKEN_TEXT = st.text(
    alphabet=st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "a", "é", "Ã", "©", "😀", "\u00a0"])
)


@given(st.one_of(_TOKEN_TEXT, st.text()))
def test_non_ascii_tokens_are_the_tokens_holding_non_ascii(value: str) -> None:
    expected = [(m.start(), m.group(0)) for m in _TOKEN.finditer(value) if not m.group(0).isascii()]
    assert list(_non_ascii_tokens(value)) == expected


_PERCENT_TEXT = st.text(
    alphabet=st.sampled_from(["%", "5", "١", "\\", " ", "\t", "a", "Z", "é", "\x00", "$", "\n"])
)


@given(st.lists(_PERCENT_TEXT, min_size=2, max_size=12))
def test_comment_rows_keep_every_comment(values: list[str]) -> None:
    expected = [_COMMENT.search(value) is not None for value in values[1:]]
    plain = comment_rows(pd.Series(values, dtype=object).iloc[1:]).tolist()
    assert plain == expected
    for column in (
        pd.Series(values, dtype="string[pyarrow]").iloc[1:],  # a sliced chunk: its offset is not 0
        pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([values[:2], values[2:]], pa.string()))).iloc[
            1:
        ],
    ):
        kept = comment_rows(column).tolist()
        assert all(keep or not comment for keep, comment in zip(kept, expected, strict=True))


@given(st.lists(_PERCENT_TEXT, min_size=1, max_size=12), st.integers(0, 3))
def test_byte_contexts_are_the_bytes_around_each_byte(values: list[str], width: int) -> None:
    rows, around = byte_contexts(pd.Series(values, dtype="string[pyarrow]"), ord("%"), width)
    expected = []
    for row, value in enumerate(values):
        data = value.encode()
        for at in (n for n, byte in enumerate(data) if byte == ord("%")):
            near = [data[i] if 0 <= i < len(data) else 0 for i in range(at - width, at + width + 1)]
            expected.append((row, near))
    assert [(row, list(near)) for row, near in zip(rows.tolist(), around.tolist(), strict=True)] == expected
    assert byte_contexts(pd.Series(values, dtype=object), ord("%"), width) is None


_CASE_BITS = [
    "i",
    "I",
    "İ",
    "ı",
    "k",
    "K",
    "K",
    "s",
    "S",
    "ſ",
    "n",
    "N",
    "b",
    "o",
    "x",
    "X",
    "y",
    "a",
    " ",
    "é",
]


@pytest.mark.parametrize("literal", ["inbox", "byak", "http", "kiki", "sign in", "ski"])
@given(st.lists(st.lists(st.sampled_from(_CASE_BITS), max_size=8).map("".join), min_size=1, max_size=12))
def test_lowered_literal_keeps_every_value_whose_lower_holds_it(literal: str, values: list[str]) -> None:
    pattern = lowered_literal(literal)
    arrow = pc.match_substring_regex(pa.array(values, pa.large_string()), pattern).to_pylist()
    for value, in_arrow in zip(values, arrow, strict=True):
        if literal in value.lower():
            assert in_arrow and re.search(pattern, value), (literal, value)


def test_lowered_literal_keeps_the_dotted_capital_i_at_its_end() -> None:
    values = ["skİ", "SKİ", "byaK", "BYAK", "İnbox", "ınbox", "kİkİ", "kikİ", "INBOX"]
    for literal in ("ski", "byak", "inbox", "kiki"):
        pattern = lowered_literal(literal)
        arrow = pc.match_substring_regex(pa.array(values, pa.large_string()), pattern).to_pylist()
        expected = [literal in value.lower() for value in values]
        assert all(kept or not wanted for kept, wanted in zip(arrow, expected, strict=True)), literal
        assert any(expected)
