"""Finding URLs in prose.

A URL runs from ``http://`` or ``https://`` over the characters RFC 3986 allows; sentence
punctuation that ends it (``. , ; : ! ?`` and a closing bracket with no opening one inside
the URL) is not part of it.

Example:
    >>> find_urls("Code at https://github.com/org/repo. See (https://x.org/a_(b)).")
    ['https://github.com/org/repo', 'https://x.org/a_(b)']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

# Characters RFC 3986 allows in a URL, plus non-ASCII (IRIs); braces, quotes, angle brackets,
# backslashes and whitespace end a URL. Possessive-free and linear: one character class.
URL_PATTERN = re.compile(r"https?://[^\s<>\"{}|\\^`\[\]]+", re.IGNORECASE)

_TRAILING_PUNCTUATION = ".,;:!?'"
_CLOSERS = {")": "(", "]": "["}
#: The last characters trim_url may drop.
_ENDS_TRIMMED = frozenset(_TRAILING_PUNCTUATION) | frozenset(_CLOSERS)


def trim_url(candidate: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a URL."""
    if not candidate or candidate[-1] not in _ENDS_TRIMMED:
        return candidate  # the common case: nothing to drop
    if ")" not in candidate and "]" not in candidate:
        return candidate.rstrip(_TRAILING_PUNCTUATION)  # no closer: only punctuation is dropped
    # Bracket counts are kept up to date as characters are dropped: linear, even for a
    # URL followed by a million ')'.
    counts = {char: candidate.count(char) for char in "()[]"}
    end = len(candidate)
    while end:
        last = candidate[end - 1]
        unbalanced = last in _CLOSERS and counts[last] > counts[_CLOSERS[last]]
        if last in _TRAILING_PUNCTUATION or unbalanced:
            end -= 1
            if last in counts:
                counts[last] -= 1
        else:
            break
    return candidate[:end]


def find_url_spans(text: str) -> list[tuple[int, int, str]]:
    """Every URL in ``text`` as ``(start, end, url)``, trailing punctuation excluded."""
    spans = []
    for match in _url_matches(text):
        url = trim_url(match.group(0))
        if "://" in url and len(url) > url.index("://") + 3:
            spans.append((match.start(), match.start() + len(url), url))
    return spans


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """``URL_PATTERN.finditer(text)``, found from each ``://`` instead of by scanning every character.

    Every match is ``http`` or ``https`` right before a ``://``: trying the pattern only at the
    five and four characters before each ``://`` (not inside the previous match, leftmost first)
    finds the same matches, several times faster on long texts (the case-insensitive scan
    stops at every ``h``).
    """
    end = 0
    found = text.find("://")
    while found >= 0:
        match = None
        for start in (found - 5, found - 4):
            if start >= end:
                match = URL_PATTERN.match(text, start)
                if match:
                    break
        if match is None:
            found = text.find("://", found + 1)
            continue
        yield match
        end = match.end()
        found = text.find("://", end)


def find_urls(text: str) -> list[str]:
    """Every URL in ``text``, in order, trailing punctuation excluded."""
    if "://" not in text:  # most texts: no scan set up at all
        return []
    return [url for _, _, url in find_url_spans(text)]


#: URL_PATTERN for UTF-8 bytes, ASCII only: its class stops at every non-ASCII byte (a URL that
#: goes on with a non-ASCII character is found by :func:`find_urls` instead) and at the ASCII
#: characters ``\\s`` matches in text (``\\x1c``-``\\x1f`` too).
_ASCII_URL = re.compile(rb"https?://[^\t\n\x0b\x0c\r\x1c-\x1f <>\"{}|\\^`\[\]\x80-\xff]+", re.IGNORECASE)
_SEPARATOR = re.compile(rb"://")


def url_lists(strings: pa.Array) -> pa.ListArray:
    """:func:`find_urls` of every string of a ``large_string`` array (null: none), as a list array.

    Found on the array's UTF-8 bytes, from each ``://`` as :func:`_url_matches` does, each match
    kept inside its string: no Python string per text. A string where bytes and characters could
    part (a non-ASCII character among the five before a ``://``, such as the ``ſ`` that
    ``https?`` matches ignoring case, right after it, or right after a match) is given to
    :func:`find_urls`.
    """
    strings = strings.cast(pa.large_string())
    count = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], np.int64, count + 1, strings.offset * 8)
    buffer = strings.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None and buffer.size else np.zeros(0, np.uint8)
    found = np.fromiter((m.start() for m in _SEPARATOR.finditer(data)), np.int64)
    found = found[(found >= offsets[0]) & (found + 3 <= offsets[-1])]
    rows = np.searchsorted(offsets, found, side="right") - 1
    inside = found + 3 <= offsets[rows + 1]  # a "://" across two strings is in neither
    found, rows = found[inside], rows[inside]
    # Where bytes and characters could part: a non-ASCII character among the five before a "://"
    # or right after it (the pattern's class needs one character there).
    before = found[:, None] - np.arange(1, 6)
    wide = (data[np.maximum(before, 0)] >= 0x80) & (before >= offsets[rows][:, None])
    after = found + 3
    wide_after = (data[np.minimum(after, len(data) - 1)] >= 0x80) & (after < offsets[rows + 1])
    by_text = set(rows[wide.any(axis=1) | wide_after].tolist())
    pairs: list[tuple[int, str]] = []
    row, end = -1, 0
    for at, n in zip(found.tolist(), rows.tolist(), strict=True):
        if n in by_text:
            continue
        if n != row:
            row, end = n, int(offsets[n])
        if at < end:  # inside the last match
            continue
        stop = int(offsets[n + 1])
        match = None
        for start in (at - 5, at - 4):
            if start >= end:
                match = _ASCII_URL.match(data, start, stop)
                if match:
                    break
        if match is None:
            continue
        end = match.end()
        if end < stop and data[end] >= 0x80:
            by_text.add(n)
            continue
        url = trim_url(match.group(0).decode("ascii"))
        if "://" in url and len(url) > url.index("://") + 3:
            pairs.append((n, url))
    pairs = [(n, url) for n, url in pairs if n not in by_text]
    if by_text:
        texts = strings.take(pa.array(sorted(by_text), pa.int64())).to_pylist()
        pairs += [(n, url) for n, text in zip(sorted(by_text), texts, strict=True) for url in find_urls(text)]
        pairs.sort(key=lambda pair: pair[0])  # stable: each string's URLs stay in order
    lengths = np.bincount(np.array([n for n, _ in pairs], np.int64), minlength=count)
    list_offsets = np.zeros(count + 1, np.int32)
    np.cumsum(lengths, out=list_offsets[1:])
    urls = pa.array([url for _, url in pairs], pa.large_string())
    return pa.ListArray.from_arrays(pa.array(list_offsets), urls)
