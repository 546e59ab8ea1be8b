"""Prefilters given as several patterns keep the rows their alternation keeps, on Arrow-backed
and plain columns, whole or at the edges."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.checks.malformed_url import _URL_HINT
from audit.checks.markup_residue import _MARKUP_CHARS, _MARKUP_LITERALS
from audit.checks.prefilter import candidate_rows

_BITS = ["a", " ", "://", ":/", "http", "HtTp", "htt", "İ", "ſ", "\\", "<", "&", "%", "{", "}", "é", "\n"]
_VALUES = st.lists(st.lists(st.sampled_from(_BITS), max_size=8).map("".join), min_size=1, max_size=20)


@pytest.mark.parametrize("dtype", ["string[pyarrow]", object])
@given(titles=_VALUES, texts=_VALUES)
def test_several_patterns_keep_the_rows_of_their_alternation(
    dtype: object, titles: list[str], texts: list[str]
) -> None:
    size = min(len(titles), len(texts))
    records = pd.DataFrame({"title": titles[:size], "text": texts[:size]}).astype(dtype)
    for patterns, alternation in ((_URL_HINT, "|".join(_URL_HINT)), (_MARKUP_LITERALS, _MARKUP_CHARS)):
        for edges in (None, 3):
            split = candidate_rows(records, ("title", "text"), patterns, edges=edges)
            assert split == candidate_rows(records, ("title", "text"), alternation, edges=edges)
