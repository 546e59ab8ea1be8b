"""find_url_spans finds URLs from each ``://``: the same matches as scanning with URL_PATTERN."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.urls import URL_PATTERN, _url_matches, find_urls, url_lists

PIECES = ["http", "https", "HTTPS", "hTtP", "httpſ", "://", ":/", "/", "h", "s", " ", ".", ")", "(", "[", "]"]
PIECES += ['"', "a", "é", "\n", "hthttp", "x.org", "?q=1", "#f"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_matches_are_the_patterns_matches(pieces: list[str]) -> None:
    text = "".join(pieces)
    expected = [(m.start(), m.end()) for m in URL_PATTERN.finditer(text)]
    assert [(m.start(), m.end()) for m in _url_matches(text)] == expected


def test_urls_inside_urls_and_schemes_in_any_case() -> None:
    text = "see HTTPS://a.org/x?u=http://b.org/y, then http://c.org. and https://d.org/(e))."
    assert find_urls(text) == ["HTTPS://a.org/x?u=http://b.org/y", "http://c.org", "https://d.org/(e)"]
    assert find_urls("no scheme ://x.org and ftp://y.org") == []


ARRAY_PIECES = [*PIECES, "\u00a0", "\u2028", "\x1c", "\x85", "ſ://", "é://", "éhttps://x", "😀", "://é"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(ARRAY_PIECES), max_size=25), max_size=8), st.integers(0, 3))
def test_url_lists_are_find_urls_of_each_string(texts: list[list[str]], skip: int) -> None:
    """On the strings of an Arrow array (a slice of it too: offsets not from 0), side by side in
    one buffer, non-ASCII characters next to the URLs."""
    strings = ["".join(pieces) for pieces in texts]
    array = pa.array(["://x", *strings], pa.large_string()).slice(1)
    assert url_lists(array).to_pylist() == [find_urls(text) for text in strings]
    # Strings that run on into the next one: "http" at the end of one, "://x" at the start of the next.
    joined = pa.array([t + "http" for t in strings] + ["://x.org"], pa.large_string())
    assert url_lists(joined.slice(skip % max(len(joined), 1))).to_pylist() == [
        find_urls(text) for text in joined.slice(skip % max(len(joined), 1)).to_pylist()
    ]


def test_url_lists_of_nulls_and_empty_arrays() -> None:
    assert url_lists(pa.array([], pa.large_string())).to_pylist() == []
    assert url_lists(pa.array([None, "see http://a.org.", None], pa.string())).to_pylist() == [
        [],
        ["http://a.org"],
        [],
    ]
    assert url_lists(pa.array([None], pa.large_string())).type == pa.list_(pa.large_string())


def _trim_reference(candidate: str) -> str:
    """trim_url as specified: drop trailing punctuation and closers without an opener, one at a time."""
    while candidate:
        last = candidate[-1]
        opener = {")": "(", "]": "["}.get(last)
        if last in ".,;:!?'" or (opener and candidate.count(last) > candidate.count(opener)):
            candidate = candidate[:-1]
        else:
            break
    return candidate


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "/", ".", ",", ";", ":", "!", "?", "'", "(", ")", "[", "]", "é"]), max_size=14
    )
)
def test_trim_url_drops_what_the_rule_drops(chars: list[str]) -> None:
    from audit.urls import trim_url

    candidate = "https://x.org/" + "".join(chars)
    assert trim_url(candidate) == _trim_reference(candidate)
