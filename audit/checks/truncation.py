"""truncation: a title or text that was cut off.

Signals, each a finding with evidence a person can check:

- **proven** (``error``): the text is a proper prefix, after normalisation, of a longer copy of
  the same record in its duplicate cluster; evidence names the longer copy. The cleaned corpus
  keeps the complete copy (the cluster representative is the most complete copy).
- **ending** (``warning``): ends with an ellipsis (``...``, ``…``), a dangling function word
  (``... the``), inside an open bracket or quote, or mid-word (the last word occurs nowhere
  else in the corpus and is the beginning of a word that does: ``... a new meth``).
- **length limit** (``warning``): many distinct texts of exactly one length, far more than the
  neighbouring lengths hold (a scraper's character limit); evidence gives the limit.
- **no final punctuation** (``info`` only): real abstracts sometimes end without a period.

Example:
    >>> ends_cut_off("We study the effect of")
    ('dangling function word', 'of')
    >>> ends_cut_off("A complete sentence.") is None
    True
    >>> open_quote('He said “stop')
    '“'
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable
from functools import cached_property

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, Severity
from audit.normalise import normalised_texts
from audit.urls import URL_PATTERN, find_url_spans

NAME = "truncation"

FUNCTION_WORDS = frozenset(
    (
        "a an the of and or but nor with without to for from in into on onto at by as via "
        "than that which whose who whom where when while if because although since about "
        "between among under over through during against our their its his her we is are was "
        "were be been this these those such"
    ).split()
)

_ELLIPSIS = re.compile(r"(?:\.\.\.|…)\s*$")
# The last word, unless it ends a hyphenated compound ("Try-On" is not a dangling "on").
_LAST_WORD = re.compile(r"(?<![\w-])(\w+)\s*$")
_FINAL_PUNCTUATION = tuple(".!?)]}\"'”’:;")
_SENTENCE_END = tuple(".!?")
# Letters only: digits, underscores and punctuation split words.
_WORD = re.compile(r"[^\W\d_]+")
_LAST_LETTERS = re.compile(r"\b([^\W\d_]{2,})$")
_WORD_CHARS = re.compile(r"\w+")
_LETTERS = re.compile(r"[^\W\d_]+")
_OPENER_OF = {")": "(", "]": "["}
_BRACKET = re.compile(r"[()\[\]]")
_INFLECTIONS = ("s", "es")
_QUOTE_PAIRS = {"“": "”", "«": "»", "„": "“"}


def ends_cut_off(text: str) -> tuple[str, str] | None:
    """``(signal, matched text)`` when ``text`` ends with an ellipsis or a dangling function word."""
    stripped = text.rstrip()
    if not stripped:
        return None
    match = _ELLIPSIS.search(stripped[-20:])  # the tail only: these patterns end at "$"
    if match:
        return "ends with an ellipsis", match.group(0).strip()
    if stripped.endswith(_FINAL_PUNCTUATION) or _ends_with_url(stripped):
        return None
    word = last_word(stripped[-100:])
    if word and word.lower() in FUNCTION_WORDS:
        return "dangling function word", word
    return None


def _trailing_run(pattern: re.Pattern[str], text: str) -> tuple[str, int]:
    """The run of ``pattern``'s characters that ends ``text``, and its offset.

    Matched on the reversed text: a search for a run anchored at ``$`` tries every offset.
    """
    match = pattern.match(text[::-1])
    length = match.end() if match else 0
    return text[len(text) - length :], len(text) - length


def last_word(text: str) -> str | None:
    """``_LAST_WORD.search(text).group(1)`` for a ``text`` without trailing whitespace, faster."""
    word, start = _trailing_run(_WORD_CHARS, text)
    if not word or (start > 0 and text[start - 1] == "-"):
        return None
    return word


def last_letters(text: str) -> str | None:
    """``_LAST_LETTERS.search(text).group(1)``, faster: two or more letters ending ``text`` at a
    word boundary."""
    letters, start = _trailing_run(_LETTERS, text)
    if len(letters) < 2:
        return None
    before = text[start - 1] if start else ""
    if before.isalnum() or before == "_":  # a digit or "_" glued to the letters: no word boundary
        return None
    return letters


def unclosed_bracket(text: str) -> tuple[str, int] | None:
    """The innermost bracket still open at the end of ``text`` and its offset, or None."""
    stack: list[tuple[str, int]] = []
    for match in _BRACKET.finditer(text):
        char = match.group(0)
        if char in "([":
            stack.append((char, match.start()))
        elif stack and stack[-1][0] == _OPENER_OF[char]:
            stack.pop()
    return stack[-1] if stack else None


def open_quote(text: str) -> str | None:
    """The quote mark left open at the end of ``text``: an unpaired ``“`` or an odd number of ``"``.

    A ``\\"`` (LaTeX umlaut, ``Schr\\"odinger``) is not a quote.
    """
    for opener, closer in _QUOTE_PAIRS.items():
        last_open = text.rfind(opener)
        if last_open >= 0 and text.find(closer, last_open + 1) < 0 and opener != closer:
            return opener
    straight = text.count('"') - text.count('\\"')
    return '"' if straight % 2 else None


def _without_urls(text: str) -> str:
    """``text`` with every URL blanked out (same length, so offsets still hold)."""
    if "://" not in text:
        return text
    pieces, last = [], 0
    for start, end, _ in find_url_spans(text):
        pieces += [text[last:start], " " * (end - start)]
        last = end
    return "".join([*pieces, text[last:]])


#: ASCII bytes -> a lower-case letter, or a space (NUL, the separator, stays): the ASCII case
#: of ``_WORD`` on lowered text.
_ASCII_LETTERS = bytes(c if chr(c).isalpha() or c == 0 else 32 for c in range(128)).lower() + bytes(128)
# Matched on the reversed bytes: a pattern that starts with a literal is found by a fast scan,
# ~10x faster than "(?<![a-z])[a-z]* *\x00" on the text as it reads.
_LAST_ASCII_WORD_REVERSED = re.compile(rb"\x00 *[a-z]*")
_VOCABULARY_CHUNK = 5000


def ascii_words_but_last(values: list[str]) -> list[str]:
    """Every ``_WORD`` of the lowered ASCII ``values`` except each value's last, in one pass.

    Equal to ``[w for v in values for w in _WORD.findall(v.lower())[:-1]]``, but the values are
    joined with NUL, letters kept by one byte translation, and each value's last word (the one
    before each NUL) cut with one regex substitution, instead of a regex scan per value.
    """
    if any("\x00" in value for value in values):  # NUL would break the joining; never in ingested text
        return [w for value in values for w in _WORD.findall(value.lower())[:-1]]
    joined = "\x00".join([*values, ""]).encode("ascii").translate(_ASCII_LETTERS)
    return _LAST_ASCII_WORD_REVERSED.sub(b" ", joined[::-1])[::-1].decode("ascii").split()


def _ends_with_url(text: str) -> bool:
    tail = text[-2000:]
    if "://" not in tail:  # every URL_PATTERN match holds it
        return False
    last = None
    for last in URL_PATTERN.finditer(tail):  # noqa: B007 - we want the last one
        pass
    return last is not None and last.end() == len(tail)


class Vocabulary:
    """Words of the corpus, to tell a word cut in half from a real last word.

    The last word of each value is left out: cut-off fragments ("meth") repeat at the ends of
    cut texts, never inside a text.
    """

    def __init__(self, values: Iterable[str]) -> None:
        self._values = values

    @cached_property
    def words(self) -> set[str]:
        """Built on first use: most corpora have few values that end without punctuation."""
        words: set[str] = set()
        ascii_values = []
        for value in dict.fromkeys(self._values):  # a set of words: each distinct value once
            if value.isascii():
                ascii_values.append(value)
            else:
                words.update(_WORD.findall(value.lower())[:-1])
        for start in range(0, len(ascii_values), _VOCABULARY_CHUNK):
            words.update(ascii_words_but_last(ascii_values[start : start + _VOCABULARY_CHUNK]))
        return words

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self.words)

    def is_fragment(self, word: str) -> str | None:
        """A longer corpus word that ``word`` begins, when ``word`` itself never occurs inside a value."""
        word = word.lower()
        if word in self.words:
            return None
        if any(word + ending in self.words for ending in _INFLECTIONS):
            return None  # "game" with "games" in the corpus is a word, not a fragment
        at = bisect.bisect_right(self._sorted, word)
        if at < len(self._sorted) and self._sorted[at].startswith(word):
            return self._sorted[at]
        return None


class TruncationCheck(Check):
    """Cut-off titles and texts.

    Options (keyword arguments):
        min_limit_count: distinct texts needed at one length to call it a limit (default 5).
        limit_spike_ratio: how many times the mean count of the neighbouring lengths (±20) that
            length must hold (default 5).
        min_prefix_chars: shortest normalised text that can be a proven prefix (default 40).
        mid_word: look for a last word cut in half (default True).
    """

    name = NAME
    description = "titles and texts that were cut off (ellipsis, dangling word, open bracket/quote, limit)"

    def __init__(
        self,
        min_limit_count: int = 5,
        limit_spike_ratio: float = 5.0,
        min_prefix_chars: int = 40,
        mid_word: bool = True,
    ) -> None:
        self.min_limit_count = min_limit_count
        self.limit_spike_ratio = limit_spike_ratio
        self.min_prefix_chars = min_prefix_chars
        self.mid_word = mid_word

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        ids, titles, texts = records["id"].tolist(), records["title"].tolist(), records["text"].tolist()
        vocabulary = Vocabulary(titles + texts) if self.mid_word else None
        limits = {"title": self.length_limit(titles), "text": self.length_limit(texts)}
        findings: list[Finding] = []
        for record_id, title, text in zip(ids, titles, texts, strict=True):
            for field_name, value in (("title", title), ("text", text)):
                findings.extend(self._ending_findings(record_id, field_name, value, vocabulary))
                findings.extend(self._limit_findings(record_id, field_name, value, limits[field_name]))
        findings.extend(self._proven_findings(records, context))
        return findings

    # -- corpus level: a character limit -------------------------------------------------
    def length_limit(self, values: list[str]) -> dict[str, float] | None:
        """The length many distinct values share far more than nearby lengths do, or None."""
        distinct = {v.rstrip() for v in values if v.strip()}
        counts = Counter(len(v) for v in distinct)
        best = None
        for length, count in counts.items():
            if count < self.min_limit_count:
                continue
            neighbours = [counts.get(length + d, 0) for d in range(-20, 21) if d]
            expected = sum(neighbours) / len(neighbours)
            if count >= self.limit_spike_ratio * max(expected, 1.0) and (best is None or count > best[1]):
                best = (length, count, expected)
        if best is None:
            return None
        return {"limit": best[0], "count": best[1], "neighbour_mean": round(best[2], 2)}

    def _limit_findings(
        self, record_id: str, field_name: str, value: str, limit: dict[str, float] | None
    ) -> list[Finding]:
        stripped = value.rstrip()
        # A value at the limit that ends a sentence is most likely complete.
        if limit is None or len(stripped) != limit["limit"] or stripped.endswith(_SENTENCE_END):
            return []
        return [
            Finding(
                record_id,
                self.name,
                "warning",
                field_name,
                f"{field_name} is exactly {limit['limit']} characters long, a length {limit['count']} "
                "distinct values share (a scraper's character limit?)",
                {
                    "signal": "length limit",
                    **limit,
                    "match": stripped[-20:],
                    "offset": len(stripped) - len(stripped[-20:]),
                },
            )
        ]

    # -- one value: how it ends ----------------------------------------------------------
    def _ending_findings(
        self, record_id: str, field_name: str, value: str, vocabulary: Vocabulary | None
    ) -> list[Finding]:
        stripped = value.rstrip()
        if not stripped:
            return []
        tail = stripped[-80:]

        def finding(severity: Severity, message: str, signal: str, match: str, offset: int) -> Finding:
            evidence = {"signal": signal, "match": match, "offset": offset, "tail": tail}
            return Finding(record_id, self.name, severity, field_name, message, evidence)

        cut = ends_cut_off(stripped)
        if cut:
            signal, matched = cut
            offset = len(stripped) - len(matched)
            return [finding("warning", f"{field_name} looks cut off: {signal}", signal, matched, offset)]
        # Brackets and quotes inside URLs ("/wiki/Foo_(bar", "?q=\"x") are not the prose's.
        prose = _without_urls(stripped)
        bracket = unclosed_bracket(prose)
        if bracket:
            char, offset = bracket
            message = f"{field_name} ends inside an open bracket {char!r}"
            return [finding("warning", message, "unclosed bracket", char, offset)]
        quote = open_quote(prose)
        if quote:
            offset = prose.rfind(quote)
            message = f"{field_name} ends inside an open quote {quote!r}"
            return [finding("warning", message, "open quote", quote, offset)]
        if stripped.endswith(_FINAL_PUNCTUATION) or _ends_with_url(stripped):
            return []
        last = last_letters(stripped[-200:])
        longer = vocabulary.is_fragment(last) if vocabulary and last else None
        if last and longer:
            word = last
            message = f"{field_name} ends mid-word: {word!r} occurs nowhere else; the corpus has {longer!r}"
            found = finding("warning", message, "mid-word", word, len(stripped) - len(word))
            found.evidence["longer_word"] = longer
            return [found]
        if field_name != "text":
            return []
        message = "text has no final punctuation"
        return [finding("info", message, "no final punctuation", stripped[-1], len(stripped) - 1)]

    # -- proven: a longer copy in the same cluster ---------------------------------------
    def _proven_findings(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        clusters = context.clusters
        if clusters is None or clusters.empty or "members" not in clusters:
            return []
        norm = records["norm_text"] if "norm_text" in records else normalised_texts(records)
        norm_of = dict(zip(records["id"], norm, strict=True))
        length_of = dict(zip(records["id"], records["text"].str.len(), strict=True))
        findings: list[Finding] = []
        for members in clusters["members"]:
            present = [m for m in members if m in norm_of]
            by_length = sorted(present, key=lambda m: len(norm_of[m]), reverse=True)
            for member in present:
                short = norm_of[member]
                if len(short) < self.min_prefix_chars:
                    continue
                longer = next(
                    (m for m in by_length if len(norm_of[m]) > len(short) and norm_of[m].startswith(short)),
                    None,
                )
                if longer is None:
                    continue
                findings.append(
                    Finding(
                        member,
                        self.name,
                        "error",
                        "text",
                        f"text is a cut-off copy of {longer}: its {length_of[member]} characters are the "
                        f"start of that record's {length_of[longer]}",
                        {
                            "signal": "prefix of a longer copy",
                            "longer_copy": longer,
                            "length": int(length_of[member]),
                            "longer_length": int(length_of[longer]),
                            "match": short[-40:],
                            "offset": int(length_of[member]),
                        },
                    )
                )
        return findings
