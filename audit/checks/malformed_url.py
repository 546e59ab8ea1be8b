"""malformed_url: broken URLs in the url field and inside text.

Found: a space after the scheme (``https: //``), a missing colon or slash (``https//``,
``http:/x``), an extra colon (``https:://``), scheme typos (``htps://``), a doubled scheme, two
URLs glued together, LaTeX residue (braces in or around a URL, ``\\href``/``\\url``), an empty or
invalid host (``https:///x``, ``a..b.com``), a space in the host (``https://git hub.com``), a
port out of range, a URL cut off with an ellipsis, a url field without a scheme, unbalanced
brackets. Well-formed URLs (queries,
fragments, ports, percent-escapes, ``/wiki/Foo_(bar)``, ``++``, non-ASCII hosts) are not
findings; sentence punctuation after a URL is not part of it.

Safe repairs (space after scheme, missing colon/slash, doubled scheme, glued URLs, LaTeX
braces) are applied in the cleaned corpus; the rest are only reported.

Example:
    >>> [f.evidence["kind"] for f in url_findings("r", "text", "code: https: //github.com/a/b.")]
    ['space after scheme']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, column, for_record, make_repair
from audit.checks.prefilter import any_lowered, candidate_rows, scan, scan_at
from audit.urls import find_url_spans

NAME = "malformed_url"
#: Evidence of glued URLs quotes at most this much of the glued token.
EVIDENCE_MAX_CHARS = 500

# "https: //", "https:/ /", "https:// github.com": spaces inside the scheme separator.
_SPACE_AFTER_SCHEME = re.compile(
    r"\b(https?):(?:[ \t]+/[ \t]*/|/[ \t]+/)[ \t]*|\b(https?)://[ \t]+(?=[\w-]+\.\w)", re.IGNORECASE
)
_EXTRA_COLON = re.compile(r"\b(https?):{2,}//", re.IGNORECASE)
# A dotless first host part, spaces, then the rest of a domain: "https://git hub.com", "https://x .org".
_SPACE_IN_HOST = re.compile(
    r"\bhttps?://[\w-]+ {1,3}(?:\.[a-z]{2,}\b|[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b)", re.IGNORECASE
)
_MISSING_COLON = re.compile(r"\b(https?)//(?=[^\s/])", re.IGNORECASE)
_SINGLE_SLASH = re.compile(r"\b(https?):/(?=[^\s/])", re.IGNORECASE)
_SCHEME_TYPO = re.compile(r"\b(htps|htp|htttps?|hhttps?|htpps?|ttps?|httsp|hppts?)://", re.IGNORECASE)
_DOUBLED_SCHEME = re.compile(r"\b(https?://)(?=https?://)", re.IGNORECASE)
_RAW_TOKEN = re.compile(r"https?://\S+", re.IGNORECASE)
_INNER_SCHEME = re.compile(r"https?://", re.IGNORECASE)
# Bounded repeats and a look-behind keep these linear on "{{{{..." and long URLs.
_BRACED_URL = re.compile(r"(?<!\{)\{{1,3}\s{0,3}(https?://[^\s{}]+)\s{0,3}\}{1,3}", re.IGNORECASE)
_LINK_TEXT = re.compile(r"\{[^{}\s]{1,200}\}")
_LATEX_COMMAND = re.compile(r"\\(?:href|url)\s*\{\s*(https?://[^\s{}]+)\s*\}(?:\{[^{}]*\})?", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$", re.UNICODE)
_BARE_DOMAIN = re.compile(r"^(?:www\.)?[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?:[/:?#].*)?$", re.IGNORECASE)


#: A plainly well-formed host: labels of letters, digits and inner hyphens, at most 63
#: characters, two or more.
_PLAIN_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
#: A plain path: non-empty segments of letters, digits, ``_ ~ -`` and single inner dots.
_PLAIN_PATH = r"(?:/[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)*/?"
#: A url field that is plainly well formed: a lower-case scheme, a plain host and path. None of
#: the patterns of :func:`url_findings` can match it (no space, brace, backslash, bracket, second
#: colon or "//", no "..."), so it has no finding; most url fields are such, and skip the scans.
_PLAIN_URL = re.compile(r"https?://" + _PLAIN_HOST + _PLAIN_PATH)

#: What follows the "://" of a plain URL in prose: a plain host and path, at most two characters
#: of the sentence punctuation :func:`~audit.urls.trim_url` drops, then an ASCII space or the end.
_PLAIN_AFTER_SCHEME = re.compile(_PLAIN_HOST + _PLAIN_PATH + r"[.,;:!?')]{0,2}(?=[ \t\n\r]|\Z)")


def _plain_prose(value: str) -> bool:
    """True when :func:`url_findings` certainly finds nothing in ``value``: an ASCII value without
    a brace or backslash (no LaTeX), whose every ``://`` belongs to a plain URL (lower-case
    ``http://`` or ``https://`` after a non-word character or the start, then
    :data:`_PLAIN_AFTER_SCHEME`), and which holds no other ``http`` in any case.

    No pattern can match there: each begins at an ``http`` or needs ``://`` elsewhere, a brace,
    a backslash, a space or a second colon after the scheme, a scheme typo before a ``://``
    (every one follows a whole-word http(s)), a second scheme in a token, or a URL with a bad
    host, port, bracket or ellipsis. Most texts with URLs are such (four in five of the benchmark
    corpus's), and skip the scans (one fifth of the time).
    """
    if not value.isascii() or "{" in value or "\\" in value:
        return False
    urls = 0
    at = value.find("://")
    while at >= 0:
        if at >= 5 and value.startswith("https", at - 5):
            start = at - 5
        elif at >= 4 and value.startswith("http", at - 4):
            start = at - 4
        else:
            return False
        before = value[start - 1] if start else " "
        if before.isalnum() or before == "_" or not _PLAIN_AFTER_SCHEME.match(value, at + 3):
            return False
        urls += 1
        at = value.find("://", at + 3)
    return urls == value.lower().count("http")


#: Every pattern of :func:`url_findings` needs "://" or (any case) "http" in the value (two
#: patterns: each alone is matched over the column several times faster than the two as one).
_URL_HINT = ("://", any_lowered(["http"]))


def _finding(
    record_id: str,
    field: str,
    kind: str,
    message: str,
    match: str,
    offset: int,
    severity: str = "error",
    repair: dict | None = None,
) -> Finding:
    return Finding(
        record_id,
        NAME,
        severity,
        field,
        message,  # type: ignore[arg-type]
        {"kind": kind, "match": match, "offset": offset},
        repair,
    )


@functools.lru_cache(maxsize=1 << 16)  # URLs repeat across records (copies, common links)
def _host_problem(url: str) -> str | None:
    """Why the host or port of a URL that has a scheme is invalid, or None."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        return f"invalid host ({error})"
    try:
        parts.port  # noqa: B018 - parsing the port is the test
    except ValueError:
        return "port out of range (0-65535) or not a number"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host = netloc.split(":", 1)[0] if not netloc.startswith("[") else netloc
    if not host:
        return "empty host"
    if host.startswith("["):
        return None  # IPv6 literal: urlsplit validated the brackets
    labels = host.rstrip(".").split(".")
    if any(label == "" for label in labels):
        return "empty label in host"
    if not all(_HOST_LABEL.match(label) for label in labels):
        return "invalid character in host"
    return None


def _unbalanced(url: str) -> bool:
    return url.count("(") != url.count(")") or url.count("[") != url.count("]")


def _http_starts(value: str) -> list[int] | None:
    """Where ``http`` (any case) begins in an ASCII ``value``; None for other values.

    The ``\\bhttps?`` patterns can only match there, so they are tried at those offsets alone
    instead of at every character (a case-insensitive pattern gets no fast literal search).
    Not for non-ASCII text: ``str.lower`` may change its length, and so the offsets.
    """
    if not value.isascii():
        return None
    lowered, starts = value.lower(), []
    at = lowered.find("http")
    while at >= 0:
        starts.append(at)
        at = lowered.find("http", at + 1)
    return starts


#: At most this many "http" in a value: the patterns are tried there without a hint test first.
_FEW_STARTS = 4


def at_http(
    pattern: re.Pattern[str], value: str, starts: list[int] | None, *hints: str
) -> Iterator[re.Match[str]]:
    """``scan(pattern, value, *hints)`` for a pattern whose every match begins at one of ``starts``.

    The same matches as ``finditer``: leftmost first, the next one tried from the end of the
    last (``match`` at an offset still sees the characters before it, for ``\\b``).
    """
    if starts is None:
        yield from scan(pattern, value, *hints)
        return
    # With a few starts, trying them costs less than looking for the hints in the whole value.
    if len(starts) <= _FEW_STARTS or any(h in value for h in hints):
        yield from scan_at(pattern, value, starts)


def _typo_possible(value: str) -> bool:
    """False when every ``://`` follows a whole word ``http`` or ``https`` (any case): then no
    scheme typo can match, since the typo alternatives are whole words, none ``http(s)``."""
    at = value.find("://")
    while at >= 0:
        before = value[max(0, at - 6) : at]
        if not before.isascii():
            return True
        word = before.lower()
        scheme = 5 if word.endswith("https") else 4 if word.endswith("http") else 0
        if not scheme or at - scheme < 0:
            return True
        if at - scheme > 0:
            char = value[at - scheme - 1]
            if char.isalnum() or char == "_":
                return True
        at = value.find("://", at + 1)
    return False


#: Damage right after the scheme, in the order it is reported: (pattern, substrings every match
#: holds, kind, message, repair description — the repair rewrites the match to ``<scheme>://`` —
#: or None where no repair is safe).
_SCHEME_DAMAGE: tuple[tuple[re.Pattern[str], tuple[str, ...], str, str, str | None], ...] = (
    (_EXTRA_COLON, ("::",), "extra colon", "URL scheme with more than one colon", "drop the extra colon"),
    (_SPACE_IN_HOST, ("://",), "space in host", "URL host broken by a space", None),
    (_MISSING_COLON, ("//",), "missing colon", "URL scheme without its colon", "insert the missing colon"),
    (_SINGLE_SLASH, (":/",), "single slash", "URL scheme with one slash", "insert the missing slash"),
)


def url_findings(record_id: str, field: str, value: str) -> list[Finding]:
    """Malformed-URL findings for one field value (prose or a url field)."""
    if "://" not in value and "http" not in value.lower():
        return []  # every pattern below needs one of the two: most prose has neither
    if _plain_prose(value):
        return []
    found: list[Finding] = []
    starts = _http_starts(value)
    for m in at_http(_SPACE_AFTER_SCHEME, value, starts, ": ", ":\t", ":/ ", ":/\t", ":// ", "://\t"):
        scheme = m.group(1) or m.group(2)
        found.append(
            _finding(
                record_id,
                field,
                "space after scheme",
                "space after the URL scheme",
                m.group(0),
                m.start(),
                repair=make_repair(
                    m.start(), m.group(0), f"{scheme}://", "remove the space after the scheme"
                ),
            )
        )
    for pattern, hints, kind, message, repair in _SCHEME_DAMAGE:
        for m in at_http(pattern, value, starts, *hints):
            fix = make_repair(m.start(), m.group(0), f"{m.group(1)}://", repair) if repair else None
            found.append(_finding(record_id, field, kind, message, m.group(0), m.start(), repair=fix))
    for m in scan(_SCHEME_TYPO, value, "://") if _typo_possible(value) else ():
        found.append(
            _finding(
                record_id, field, "scheme typo", f"unknown URL scheme {m.group(1)!r}", m.group(0), m.start()
            )
        )
    doubled = set()
    for m in at_http(_DOUBLED_SCHEME, value, starts, "://"):
        doubled.add(m.end())
        found.append(
            _finding(
                record_id,
                field,
                "doubled scheme",
                "URL scheme written twice",
                value[m.start() : m.end() + 8],
                m.start(),
                repair=make_repair(m.start(), m.group(1), "", "drop the doubled scheme"),
            )
        )
    tokens = [(token.start(), token.group(0)) for token in at_http(_RAW_TOKEN, value, starts, "://")]
    for token_start, token in tokens:
        # Web archives wrap a second URL after a "/": https://web.archive.org/web/2020/https://x.org
        wrapper = "archive" in token[: token.find("/", 8) % (len(token) + 1)]
        for inner in _INNER_SCHEME.finditer(token, 1):
            at = token_start + inner.start()
            before = value[at - 1]
            wraps = before == "/" and wrapper
            if at in doubled or wraps or not (before.isalnum() or before in ".,;/"):
                continue
            found.append(
                _finding(
                    record_id,
                    field,
                    "glued URLs",
                    "two URLs glued together",
                    token[:EVIDENCE_MAX_CHARS],
                    token_start,
                    repair=make_repair(at, "", " ", "split the glued URLs with a space"),
                )
            )
    latex_spans: list[tuple[int, int]] = []
    for m in scan(_LATEX_COMMAND, value, "\\"):
        latex_spans.append(m.span())
        found.append(
            _finding(
                record_id,
                field,
                "latex command",
                "LaTeX \\href/\\url left around a URL",
                m.group(0),
                m.start(),
                repair=make_repair(m.start(), m.group(0), m.group(1), "keep only the URL"),
            )
        )
    for token_start, token in tokens:
        # A URL directly followed by a brace group: "https://x.org/{Project}", "...GCORN{https://...}".
        brace = token.find("{", 8)
        link_text = _LINK_TEXT.match(token, brace) if brace > 0 and "}" not in token[:brace] else None
        if link_text is None or any(s <= token_start < e for s, e in latex_spans):
            continue
        at = token_start + brace
        found.append(
            _finding(
                record_id,
                field,
                "latex braces",
                "LaTeX braces glued to a URL",
                token[: link_text.end()],
                token_start,
                repair=make_repair(at, link_text.group(0), "", "drop the LaTeX link text glued to the URL"),
            )
        )
        latex_spans.append((at, token_start + link_text.end()))
    for m in scan(_BRACED_URL, value, "{"):  # every match holds a brace
        if any(s <= m.start() < e for s, e in latex_spans):
            continue
        found.append(
            _finding(
                record_id,
                field,
                "latex braces",
                "URL wrapped in LaTeX braces",
                m.group(0),
                m.start(),
                repair=make_repair(m.start(), m.group(0), m.group(1), "strip the LaTeX braces"),
            )
        )
    for start, end, url in find_url_spans(value) if "://" in value else ():
        problem = _host_problem(url)
        if url.endswith("…") or value.startswith("...", end):
            found.append(
                _finding(
                    record_id,
                    field,
                    "ellipsis",
                    "URL cut off with an ellipsis",
                    value[start : end + 3].rstrip(),
                    start,
                    severity="warning",
                )
            )
        elif problem and problem.startswith("port"):
            found.append(_finding(record_id, field, "bad port", f"URL {problem}", url, start))
        elif problem:
            found.append(
                _finding(
                    record_id,
                    field,
                    "invalid host",
                    f"URL has an {problem}" if problem.startswith(("empty", "invalid")) else problem,
                    url,
                    start,
                )
            )
        elif _unbalanced(url):
            found.append(
                _finding(
                    record_id,
                    field,
                    "unbalanced brackets",
                    "URL has unbalanced brackets",
                    url,
                    start,
                    severity="warning",
                )
            )
    return found


def url_field_findings(record_id: str, value: str) -> list[Finding]:
    """Findings for a url field: the prose rules plus 'no scheme' and 'not a URL'."""
    stripped = value.strip()
    if not stripped or _PLAIN_URL.fullmatch(stripped):
        return []
    found = url_findings(record_id, "url", stripped)
    if found or re.match(r"^https?://", stripped, re.IGNORECASE):
        return found
    if _BARE_DOMAIN.match(stripped):
        return [
            _finding(
                record_id,
                "url",
                "missing scheme",
                "url field has no scheme (https://?)",
                stripped,
                0,
                severity="warning",
            )
        ]
    return [_finding(record_id, "url", "not a URL", "url field is not an http(s) URL", stripped, 0)]


class MalformedUrlCheck(Check):
    name = NAME
    description = "broken URLs in the url field and in text (spaces, typos, glued, LaTeX, bad host)"

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        ids, texts, urls = (column(records, name, context) for name in ("id", "text", "url"))
        with_url = {row for row, url in enumerate(urls) if url.strip()}
        in_text = set(candidate_rows(records, ("text",), _URL_HINT))
        # Values repeat (copies of one record): each distinct text and url field is checked once.
        url_found: dict[str, list[Finding]] = {}
        text_found: dict[str, list[Finding]] = {}
        findings: list[Finding] = []
        for row in sorted(with_url.union(in_text)):
            if row in in_text:  # the others hold neither "://" nor "http": nothing to find
                text = texts[row]
                if text not in text_found:
                    text_found[text] = found = url_findings(ids[row], "text", text)
                    findings.extend(found)
                else:
                    findings.extend(for_record(ids[row], text_found[text]))
            if row in with_url:
                url = urls[row]
                if url not in url_found:
                    url_found[url] = url_field_findings("", url)
                findings.extend(for_record(ids[row], url_found[url]))
        return findings
