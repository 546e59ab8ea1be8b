"""find_url_spans finds URLs from each ``://``: the same matches as scanning with URL_PATTERN."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.urls import URL_PATTERN, _url_matches, find_urls

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
