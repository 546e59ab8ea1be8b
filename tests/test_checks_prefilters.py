"""Prefilters given as several patterns keep the rows their alternation keeps, on Arrow-backed
and plain columns, whole or at the edges; the edge bytes are the same from Arrow buffers and
from Python strings, and the boilerplate rows they keep hold every edge finding."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.checks import CheckContext, boilerplate
from audit.checks.base import finding_rows
from audit.checks.boilerplate import BoilerplateCheck, edge_rows, furniture_findings
from audit.checks.malformed_url import _URL_HINT
from audit.checks.markup_residue import _NOT_PERCENT_LITERALS
from audit.checks.prefilter import candidate_rows, edge_bytes, not_plain_ascii

_BITS = ["a", " ", "://", ":/", "http", "HtTp", "htt", "İ", "ſ", "\\", "<", "&", "%", "{", "}", "é", "\n"]
_VALUES = st.lists(st.lists(st.sampled_from(_BITS), max_size=8).map("".join), min_size=1, max_size=20)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object])
@given(titles=_VALUES, texts=_VALUES)
def test_several_patterns_keep_the_rows_of_their_alternation(
    dtype: object, titles: list[str], texts: list[str]
) -> None:
    size = min(len(titles), len(texts))
    records = pd.DataFrame({"title": titles[:size], "text": texts[:size]}).astype(dtype)
    for patterns, alternation in ((_URL_HINT, "|".join(_URL_HINT)), (_NOT_PERCENT_LITERALS, r"[\\<&{]")):
        for edges in (None, 3):
            split = candidate_rows(records, ("title", "text"), patterns, edges=edges)
            assert split == candidate_rows(records, ("title", "text"), alternation, edges=edges)


_EDGE_BITS = [
    "Subscribe",
    "new",
    "New",
    "Mar",
    "Sept",
    "May 3",
    " 13",
    "١٣",
    "2",
    ".",
    "!",
    " ",
    "\n",
    "\t",
    "a",
    "Efficient",
    "é",
    "newsletter",
    "[email protected]",
    ", 2024",
]
_EDGE_VALUE = st.lists(st.sampled_from(_EDGE_BITS), max_size=7).map("".join)
_EDGE_VALUES = st.lists(_EDGE_VALUE, min_size=1, max_size=15)


@given(_EDGE_VALUES, st.integers(1, 12))
def test_edge_bytes_same_on_arrow_and_plain_columns(values: list[str], width: int) -> None:
    arrow = edge_bytes(pd.Series(values, dtype="string[pyarrow]").iloc[1:], width)
    plain = edge_bytes(pd.Series(values, dtype=object).iloc[1:], width)
    for fast, slow in zip(arrow, plain, strict=True):
        assert (fast == slow).all()
    head, tail, _ = plain
    for row, value in enumerate(values[1:]):
        data = value.encode()
        assert bytes(head[row]).rstrip(b"\0") == data[:width].rstrip(b"\0")
        assert bytes(tail[row]).lstrip(b"\0") == (data[-width:] if data else b"").lstrip(b"\0")


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object])
@given(values=_EDGE_VALUES)
def test_edge_rows_hold_every_edge_finding(dtype: object, values: list[str]) -> None:
    kept = edge_rows(pd.Series(values, dtype=dtype))
    for value, keep in zip(values, kept, strict=True):
        found = {f.evidence["kind"] for f in furniture_findings("r", "text", value)}
        assert keep or not found & {"furniture word", "date header"}, value


def test_boilerplate_equals_the_check_on_every_row() -> None:
    values = [
        "Subscribe",
        "newPoseTalk",
        "Results hold.Subscribe",
        "Mar 13",
        "Results.\nMar 3\n",
        "a new method",
        "Get trending papers in your email inbox!",
        "Sept 2, 2024",
        "x" * 50 + "new",
        "¹",
    ]
    ids = [f"r{n}" for n in range(len(values))]
    records = pd.DataFrame({"id": ids, "title": values[::-1], "text": values})
    records = records.astype({"title": "string[pyarrow]", "text": "string[pyarrow]"})
    fast = BoilerplateCheck().run(records, CheckContext())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boilerplate, "_HINTS", "")  # every row a candidate
        plain = BoilerplateCheck().run(records, CheckContext())
    assert finding_rows(fast) == finding_rows(plain) and len(fast) > 8


_ENCODING_BITS = ["a", " ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f", "\x80", "é", "\u00a0", "\ufffd", "~"]
_ENCODING_BITS += ["😀"]


@given(st.lists(st.lists(st.sampled_from(_ENCODING_BITS), max_size=6).map("".join), min_size=1, max_size=20))
def test_not_plain_ascii_equals_its_regex(values: list[str]) -> None:
    expected = [re.search(r"[^\t\n\r\x20-\x7e]", v) is not None for v in values[1:]]
    for dtype in ("string[pyarrow]", object):
        column = pd.Series(values, dtype=dtype).iloc[1:]  # a sliced chunk: its offset is not 0
        assert not_plain_ascii(column).tolist() == expected
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([values[:1], values[1:]], pa.string())))
    assert not_plain_ascii(chunked).tolist()[1:] == expected
