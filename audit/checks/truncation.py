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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import Check, CheckContext, Finding, column
from audit.checks.prefilter import offsets
from audit.checks.table import SCHEMA, FindingTable
from audit.checks.truncation_kernel import (
    BRACKET,
    ELLIPSIS,
    FALLBACK,
    OPEN_END,
    QUOTE,
    Endings,
    last_letters_spans,
    longer_copies,
    normalised,
    stripped_lengths,
    substrings,
    word_keys,
)
from audit.dedup.kernel import xxh64
from audit.frames import arrow_strings, column_values, take_values
from audit.normalise import comparable_texts, normalise_text
from audit.report.jsonlines import encode_value, escaped
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
_FINAL_CHARS = frozenset(_FINAL_PUNCTUATION)
_SENTENCE_END = tuple(".!?")
# Letters only: digits, underscores and punctuation split words.
_WORD = re.compile(r"[^\W\d_]+")
_LAST_LETTERS = re.compile(r"\b([^\W\d_]{2,})$")
_WORD_CHARS = re.compile(r"\w+")
_LETTERS = re.compile(r"[^\W\d_]+")
_OPENER_OF = {")": "(", "]": "["}
_CLOSER_OF = {"(": ")", "[": "]"}
#: URL_PATTERN's characters, and its beginning with one of them after it (same flags).
_URL_CHARS = re.compile(r"[^\s<>\"{}|\\^`\[\]]+")
_URL_START = re.compile(r"https?://[^\s<>\"{}|\\^`\[\]]", re.IGNORECASE)
_INFLECTIONS = ("s", "es")
_QUOTE_PAIRS = {"“": "”", "«": "»", "„": "“"}
#: What an open bracket or quote needs: one of these characters.
_OPENERS = ("(", "[", '"', *_QUOTE_PAIRS)


def ends_cut_off(text: str) -> tuple[str, str] | None:
    """``(signal, matched text)`` when ``text`` ends with an ellipsis or a dangling function word."""
    return _cut_off(text.rstrip())


def _cut_off(
    stripped: str, ends_complete: bool | None = None, reversed_end: str | None = None
) -> tuple[str, str] | None:
    """:func:`ends_cut_off` of a ``stripped`` text; ``ends_complete``: whether it ends with final
    punctuation or a URL, and ``reversed_end``: its :func:`_reversed_end`, when the caller has them."""
    if not stripped:
        return None
    # What _ELLIPSIS finds in a text without trailing whitespace ("\s*" there matches nothing).
    last = stripped[-1]
    if last == "." and stripped.endswith("..."):
        return "ends with an ellipsis", "..."
    if last == "…":
        return "ends with an ellipsis", "…"
    if not (last.isalnum() or last == "_"):  # no word ("\w") ends the text
        return None
    if ends_complete is None:
        ends_complete = _ends_complete(stripped)
    if ends_complete:
        return None
    word = _reversed_word(reversed_end if reversed_end is not None else _reversed_end(stripped))
    if word and word.lower() in FUNCTION_WORDS:
        return "dangling function word", word
    return None


def _ends_complete(stripped: str) -> bool:
    """``stripped`` (not empty) ends with final punctuation or a URL."""
    return stripped[-1] in _FINAL_CHARS or _ends_with_url(stripped)


def _trailing_run(pattern: re.Pattern[str], text: str) -> tuple[str, int]:
    """The run of ``pattern``'s characters that ends ``text``, and its offset.

    Matched on the reversed text: a search for a run anchored at ``$`` tries every offset.
    """
    match = pattern.match(text[::-1])
    length = match.end() if match else 0
    return text[len(text) - length :], len(text) - length


#: Characters of a value's end that its last word and last letters are looked for in.
_END_CHARS = 200


def _reversed_end(stripped: str) -> str:
    """The last :data:`_END_CHARS` characters of ``stripped``, reversed: its last word and last
    letters are each one ``match`` at its start (:func:`_reversed_word`, :func:`_reversed_letters`)."""
    return stripped[-_END_CHARS:][::-1]


def _reversed_word(reversed_end: str) -> str | None:
    """:func:`last_word` of the text whose :func:`_reversed_end` is ``reversed_end``.

    The end is 200 characters where the dangling-word test read 100: a word of 100 characters
    or more (then cut at 100, or told apart by the hyphen before it) is no function word either way.
    """
    length = _WORD_CHARS.match(reversed_end)
    end = length.end() if length else 0
    if not end or (end < len(reversed_end) and reversed_end[end] == "-"):
        return None
    return reversed_end[end - 1 :: -1]


def _reversed_letters(reversed_end: str) -> str | None:
    """:func:`last_letters` of the text whose :func:`_reversed_end` is ``reversed_end``."""
    length = _LETTERS.match(reversed_end)
    end = length.end() if length else 0
    if end < 2:
        return None
    before = reversed_end[end] if end < len(reversed_end) else ""
    if before.isalnum() or before == "_":  # a digit or "_" glued to the letters: no word boundary
        return None
    return reversed_end[end - 1 :: -1]


def last_word(text: str) -> str | None:
    """``_LAST_WORD.search(text).group(1)`` for a ``text`` without trailing whitespace, faster."""
    word, start = _trailing_run(_WORD_CHARS, text)
    if not word or (start > 0 and text[start - 1] == "-"):
        return None
    return word


def last_letters(text: str) -> str | None:
    """``_LAST_LETTERS.search(text).group(1)``, faster: two or more letters ending ``text`` at a
    word boundary."""
    return _reversed_letters(text[::-1])


def unclosed_bracket(text: str) -> tuple[str, int] | None:
    """The innermost bracket still open at the end of ``text`` and its offset, or None."""
    last = max(text.rfind("("), text.rfind("["))
    if last < 0:
        return None
    if text.find(_CLOSER_OF[text[last]], last + 1) < 0:
        # The last opener is on top of the stack at the end: nothing is pushed after it, and
        # closers of the other kind do not pop it.
        return text[last], last
    opener = text[last]
    if (text.find("[") if opener == "(" else text.find("(")) < 0:
        return _unclosed_one_kind(text, opener, last)
    # The walk over the brackets alone, found by str.find (a few per text; no regex scan of
    # every character).
    brackets = sorted(at for char in "()[]" for at in offsets(text, char))
    stack: list[int] = []
    for at in brackets:
        char = text[at]
        if char == "(" or char == "[":
            stack.append(at)
        elif stack and text[stack[-1]] == _OPENER_OF[char]:
            stack.pop()
    return (text[stack[-1]], stack[-1]) if stack else None


def _unclosed_one_kind(text: str, opener: str, last: int) -> tuple[str, int] | None:
    """:func:`unclosed_bracket` of a ``text`` whose only opening brackets are ``opener``s, the
    last at ``last``: the other kind's closers pop nothing, so they are left out.

    With one kind, the stack's top at the end is the last opener that no closer after it
    matches: walking back from the end over the openers, each takes one of the closers after
    it that are still free; the first that finds none is open. Two C scans per opener.
    """
    closer = _CLOSER_OF[opener]
    free, end, at = 0, len(text), last
    while at >= 0:
        free += text.count(closer, at + 1, end)
        if not free:
            return opener, at
        free -= 1
        end, at = at, text.rfind(opener, 0, at)
    return None


def open_quote(text: str) -> str | None:
    """The quote mark left open at the end of ``text``: an unpaired ``“`` or an odd number of ``"``.

    A ``\\"`` (LaTeX umlaut, ``Schr\\"odinger``) is not a quote.
    """
    for opener, closer in _QUOTE_PAIRS.items() if not text.isascii() else ():  # isascii is O(1)
        last_open = text.rfind(opener)
        if last_open >= 0 and text.find(closer, last_open + 1) < 0 and opener != closer:
            return opener
    straight = text.count('"') - text.count('\\"')
    return '"' if straight % 2 else None


#: A bracket or quote mark (one URLs may hold: not ``"[]``) in a run of URL characters after
#: a "://": where no URL holds one, blanking the URLs changes nothing the prose tests read.
_MARK_IN_URL_RUN = re.compile(r"://[^\s<>\"{}|\\^`\[\]()“”«»„]*[()“”«»„]")


def _without_urls(text: str) -> str:
    """``text`` with every URL blanked out (same length, so offsets still hold), or ``text`` itself
    where no URL holds a bracket or quote mark: then the two read the same to
    :func:`unclosed_bracket` and :func:`open_quote` (what this is for)."""
    if "://" not in text or not _MARK_IN_URL_RUN.search(text):
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
#: Vocabulary lookups left after the first chunk that are searched for one by one (more: every
#: word is collected), and the most substring hits that search may step through.
_TARGETED_WORDS_MAX = 32
_TARGETED_STEPS_MAX = 2_000_000
_IS_ASCII_LETTER = [97 <= byte <= 122 for byte in range(256)]
_ASCII_LETTER_RUN = re.compile(rb"[a-z]*")
#: After a word: only spaces to the end of its value (NUL), so it is the value's last word.
_ASCII_LAST_WORD_END = re.compile(rb" *\x00")


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
    """Whether the last ``URL_PATTERN`` match of ``text[-2000:]`` ends it.

    A match cannot cross a character the pattern excludes and runs greedily to the next one,
    so that match lies in the final run of URL characters, and is there exactly when the run
    holds ``http(s)://`` and a character after it.
    """
    tail = text[-2000:]
    if "://" not in tail:  # every URL_PATTERN match holds it
        return False
    run, _ = _trailing_run(_URL_CHARS, tail)
    return _URL_START.search(run) is not None


def _ends_with_url_plain(text: str) -> bool:
    """:func:`_ends_with_url` by running ``URL_PATTERN`` over the tail (what it stands for; tests)."""
    tail = text[-2000:]
    last = None
    for last in URL_PATTERN.finditer(tail):  # noqa: B007 - we want the last one
        pass
    return last is not None and last.end() == len(tail)


class ValueChunks:
    """The values of some string columns of a records frame (one column after the other), read
    a chunk at a time: the corpus the :class:`Vocabulary` of a run over batches reads."""

    def __init__(self, columns: Sequence[pd.Series]) -> None:
        self.columns = columns

    def chunks(self, size: int, containing: Iterable[str] | None = None) -> Iterator[list[str]]:
        """The values ``size`` rows at a time. With ``containing`` (lower-case words), of each
        chunk only the values that may hold one of them: for an Arrow-backed column, the values
        where one of the ASCII words occurs ignoring ASCII case (found over the whole column by
        one regex in Arrow's kernel, instead of listing every value in Python) and every
        non-ASCII or missing value; other columns' values all."""
        for values in self.columns:
            wanted = _maybe_containing(values, containing) if containing is not None else None
            for start in range(0, len(values), size):
                if wanted is None:
                    yield column_values(values.iloc[start : start + size])
                else:
                    yield take_values(values, start + np.flatnonzero(wanted[start : start + size]))


def _maybe_containing(values: pd.Series, words: Iterable[str]) -> np.ndarray | None:
    """Which of ``values`` may hold one of ``words`` (see :meth:`ValueChunks.chunks`), or None
    (all) when the column is not Arrow-backed."""
    strings = arrow_strings(values)
    if strings is None:
        return None
    # Lower-case ASCII words: for an ASCII value, a word occurs in value.lower() exactly where it
    # occurs in the value ignoring ASCII case. Non-ASCII values (Unicode lowering) are all kept.
    wanted = pc.invert(pc.string_is_ascii(strings))
    ascii_words = sorted(word for word in words if word.isascii())
    if ascii_words:
        pattern = "(?i)(?:" + "|".join(map(re.escape, ascii_words)) + ")"
        wanted = pc.or_(wanted, pc.match_substring_regex(strings, pattern))
    return pc.fill_null(wanted, True).to_numpy(zero_copy_only=False).astype(bool)


class KnownFragments:
    """The corpus vocabulary's answers worked out beforehand (for a run over one batch of the
    corpus): what :meth:`Vocabulary.fragments` gives for each word asked."""

    def __init__(self, longer_of: Mapping[str, str | None]) -> None:
        self.longer_of = longer_of

    def fragments(self, words: Iterable[str]) -> dict[str, str | None]:
        return {word: self.longer_of.get(word) for word in words}


def length_digests(values: pd.Series) -> np.ndarray:
    """(length, XXH64 digest, 0) of each non-blank value of a string column rstripped, as an (n, 3)
    uint64 array: merged over batches of a corpus (duplicate rows dropped), the number of
    distinct values of each length that :meth:`TruncationCheck.length_limit` counts, without the
    texts. One compiled pass over the UTF-8 bytes; a value ending in a non-ASCII character
    (Unicode whitespace?) is stripped by Python and its bytes hashed the same way."""
    lengths, digests, undecided = stripped_lengths(_utf8(values))
    rows = np.flatnonzero(undecided)
    for row, value in zip(rows.tolist(), take_values(values, rows), strict=True):
        stripped = value.rstrip()
        lengths[row] = len(stripped)
        digests[row] = xxh64(stripped.encode("utf-8", "surrogatepass"))
    kept = lengths > 0
    found = np.zeros((int(kept.sum()), 3), np.uint64)
    found[:, 0], found[:, 1] = lengths[kept], digests[kept]
    return found[~pd.DataFrame(found).duplicated().to_numpy()]  # copies of a value: one row


def distinct_length_counts(found: np.ndarray) -> Counter[int]:
    """The number of distinct (length, digest) rows of ``found`` (:func:`length_digests` of
    batches or partitions, concatenated) of each length: what :meth:`TruncationCheck.limit_of` reads.

    Duplicate rows dropped by hashing (pandas), not by ``np.unique(axis=0)``, which sorts the
    rows as opaque bytes: three times slower, and this runs in the parent between two rounds.
    """
    if not len(found):
        return Counter()
    lengths = found[~pd.DataFrame(found).duplicated().to_numpy(), 0]
    values, counts = np.unique(lengths, return_counts=True)
    return Counter(dict(zip(values.tolist(), counts.tolist(), strict=True)))


class Vocabulary:
    """Words of the corpus, to tell a word cut in half from a real last word.

    The last word of each value is left out: cut-off fragments ("meth") repeat at the ends of
    cut texts, never inside a text. Words are collected a chunk of values at a time, only as far
    as a lookup needs: a real last word is usually found in the first chunks, and only a word
    found nowhere (a fragment, a rare word) makes the whole corpus be read.
    """

    def __init__(self, values: Iterable[str] | ValueChunks) -> None:
        self._values = values
        self._found: set[str] = set()
        self._pending: Iterator[list[str]] | None = None
        self._complete = False

    def _value_chunks(self, containing: Iterable[str] | None = None) -> Iterator[list[str]]:
        """The values a chunk at a time: of a list, its distinct values; of :class:`ValueChunks`,
        each chunk's distinct values (read from the records a chunk at a time, never listed whole:
        a value repeated in two chunks is only read twice, the answers are the same). With
        ``containing``, a chunk's values without those words may be left out."""
        if isinstance(self._values, ValueChunks):
            for chunk in self._values.chunks(_VOCABULARY_CHUNK, containing):
                yield list(dict.fromkeys(chunk))
            return
        distinct = self._distinct
        for start in range(0, len(distinct), _VOCABULARY_CHUNK):
            yield distinct[start : start + _VOCABULARY_CHUNK]

    def _chunks(self) -> Iterator[list[str]]:
        """The words of each next chunk of distinct values (a set of words: each value once)."""
        for chunk in self._value_chunks():
            ascii_values, words = [], []
            for value in chunk:
                if value.isascii():
                    ascii_values.append(value)
                else:
                    words += _WORD.findall(value.lower())[:-1]
            yield words + ascii_words_but_last(ascii_values)

    @cached_property
    def _distinct(self) -> list[str]:
        return list(dict.fromkeys(self._values))

    def _read_more(self) -> bool:
        """Add the next chunk's words; False once every value has been read."""
        if self._complete:
            return False
        if self._pending is None:
            self._pending = self._chunks()
        chunk = next(self._pending, None)
        if chunk is None:
            self._complete = True
            return False
        self._found.update(chunk)
        return True

    def _has_any(self, words: Iterable[str]) -> bool:
        """Whether one of ``words`` is a corpus word, reading no more values than needed."""
        words = tuple(words)
        while not any(word in self._found for word in words):
            if not self._read_more():
                return False
        return True

    @cached_property
    def words(self) -> set[str]:
        """Every word (each value's last left out)."""
        while self._read_more():
            pass
        return self._found

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self.words)

    def fragments(self, words: Iterable[str]) -> dict[str, str | None]:
        """``{word: self.is_fragment(word)}`` for many words, reading the corpus as little as possible.

        Words are collected chunk by chunk until all but a few lookups are found (with an
        inflection: real words too); the few left over (often one leaked furniture word, e.g.
        "subscribe") are searched for in the corpus, instead of collecting every word.
        """
        words = set(words)
        lowered = {word: word.lower() for word in words}
        open_words = set(lowered.values())
        # Chunk by chunk until few enough are left to search for.
        while open_words and (len(open_words) > _TARGETED_WORDS_MAX or not self._found):
            if not self._read_more():
                return {word: self.is_fragment(word) for word in words}  # every word collected
            open_words = {
                low
                for low in open_words
                if not any(form in self._found for form in (low, *(low + ending for ending in _INFLECTIONS)))
            }
        if not open_words:
            return dict.fromkeys(words)
        beginning = self._words_beginning(open_words)
        if beginning is None:  # too common as substrings to search one by one
            return {word: self.is_fragment(word) for word in words}
        result: dict[str, str | None] = {}
        for word, low in lowered.items():
            found = beginning.get(low)
            if found is None or any(form in found for form in (low, *(low + e for e in _INFLECTIONS))):
                result[word] = None  # a real word, or not searched: found in the chunks read
            else:
                # The smallest longer word: what the bisection in is_fragment finds.
                result[word] = min(found) if found else None
        return result

    def _words_beginning(self, prefixes: set[str]) -> dict[str, set[str]] | None:
        """For each of ``prefixes`` (lower case), the corpus words (each value's last left out)
        that begin with it; None when the search would take longer than collecting every word."""
        found: dict[str, set[str]] = {prefix: set() for prefix in prefixes}
        ascii_prefixes = [(prefix, prefix.encode("ascii")) for prefix in prefixes if prefix.isascii()]
        budget = _TARGETED_STEPS_MAX
        # The chunks as in the first pass (the budget is spent the same), without the values that
        # hold none of the prefixes: they add no step and no word.
        for chunk in self._value_chunks(prefixes):
            plain = [v for v in chunk if v.isascii() and "\x00" not in v]
            for value in chunk:
                if value.isascii() and "\x00" not in value:
                    continue
                lowered = value.lower()
                if any(prefix in lowered for prefix in prefixes):
                    for word in _WORD.findall(lowered)[:-1]:
                        for prefix in prefixes:
                            if word.startswith(prefix):
                                found[prefix].add(word)
            if not plain:
                continue
            # As in ascii_words_but_last: letters lower-cased, everything else a space, NUL between values.
            data = "\x00".join([*plain, ""]).encode("ascii")
            data = data.translate(_ASCII_LETTERS)
            for prefix, needle in ascii_prefixes:
                at = data.find(needle)
                while at >= 0:
                    budget -= 1
                    if budget < 0:
                        return None
                    if at and _IS_ASCII_LETTER[data[at - 1]]:  # inside a word, not its beginning
                        at = data.find(needle, at + 1)
                        continue
                    end = _ASCII_LETTER_RUN.match(data, at).end()  # type: ignore[union-attr]
                    if not _ASCII_LAST_WORD_END.match(data, end):  # a value's last word does not count
                        found[prefix].add(data[at:end].decode("ascii"))
                    at = data.find(needle, end)
        return found

    def is_fragment(self, word: str) -> str | None:
        """A longer corpus word that ``word`` begins, when ``word`` itself never occurs inside a value."""
        word = word.lower()
        # "game" with "games" in the corpus is a word, not a fragment
        if self._has_any((word, *(word + ending for ending in _INFLECTIONS))):
            return None
        at = bisect.bisect_right(self._sorted, word)
        if at < len(self._sorted) and self._sorted[at].startswith(word):
            return self._sorted[at]
        return None


class Fragments(Protocol):
    """What the mid-word test asks of the corpus: :class:`Vocabulary` or :class:`KnownFragments`."""

    def fragments(self, words: Iterable[str]) -> dict[str, str | None]: ...


class _MidWord(NamedTuple):
    """A value that ends in letters, waiting for the vocabulary: is its last word cut in half?"""

    record_id: str
    field_name: str
    stripped: str
    tail: str
    word: str | None


def _warning(
    record_id: str, field_name: str, message: str, signal: str, match: str, offset: int, tail: str
) -> Finding:
    """A truncation warning about how a value ends."""
    evidence = {"signal": signal, "match": match, "offset": offset, "tail": tail}
    return Finding(record_id, NAME, "warning", field_name, message, evidence)


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
        return [
            Finding(*row) for row in self.table(records, context).frame().itertuples(index=False, name=None)
        ]

    def table(self, records: pd.DataFrame, context: CheckContext) -> FindingTable:
        """The findings of :meth:`run` as a :class:`FindingTable`, built a column at a time: each
        field's endings are classified by one compiled pass over its UTF-8 bytes
        (:mod:`audit.checks.truncation_kernel`); the values it leaves (non-ASCII, a URL holding
        a bracket) go through :meth:`_ending` one at a time."""
        # Over a batch of the corpus, what it needs of the whole corpus is given (run_checks).
        given = context.corpus.get(NAME)
        if given is None:
            titles, texts = (column(records, name, context) for name in ("title", "text"))
            given = self.corpus_values(titles, texts)
        vocabulary, limits = given
        ids = _id_strings(records["id"])
        fields = [_FieldEndings(self, records, name, slot) for slot, name in enumerate(("title", "text"))]
        # The vocabulary is asked about every value's last letters at once (most need only a
        # small part of the corpus).
        words: set[str] = set()
        for field in fields:
            words.update(field.words)
            words.update(e.word for e in field.fallback_endings() if e.__class__ is _MidWord and e.word)
        longer_of = vocabulary.fragments(words) if vocabulary and words else {}
        parts: list[tuple[np.ndarray, FindingTable]] = []
        for field in fields:
            parts.append(field.kernel_findings(ids, longer_of))
            parts.append(field.fallback_findings(self, longer_of))
            limit = limits[field.name]
            if limit is not None:  # most corpora have no limit
                parts.append(self._limit_table(records, context, field, limit))
        keys = np.concatenate([key for key, _ in parts])
        table = FindingTable.concat([found for _, found in parts])
        ordered = FindingTable(table.table.take(pa.array(np.argsort(keys, kind="stable"))))
        proven = self._proven_findings(records, context)
        return FindingTable.concat([ordered, FindingTable.of(proven)]) if proven else ordered

    def _limit_table(
        self, records: pd.DataFrame, context: CheckContext, field: _FieldEndings, limit: dict[str, float]
    ) -> tuple[np.ndarray, FindingTable]:
        """The length-limit findings of ``field``, with their sort keys."""
        ids, values = column(records, "id", context), column(records, field.name, context)
        keys, found = [], []
        for row, (record_id, value) in enumerate(zip(ids, values, strict=True)):
            limit_findings = self._limit_findings(record_id, field.name, value, limit)
            keys += [field.key(row) + 1] * len(limit_findings)
            found += limit_findings
        return np.array(keys, np.int64), FindingTable.of(found)

    def corpus_values(
        self, titles: list[str], texts: list[str]
    ) -> tuple[Fragments | None, dict[str, dict[str, float] | None]]:
        """What :meth:`run` needs of the whole corpus: its vocabulary and each field's length
        limit. A run over one partition of a corpus is given the whole corpus' (audit.engines)."""
        vocabulary = Vocabulary(titles + texts) if self.mid_word else None
        return vocabulary, {"title": self.length_limit(titles), "text": self.length_limit(texts)}

    # -- corpus level: a character limit -------------------------------------------------
    def length_limit(self, values: list[str]) -> dict[str, float] | None:
        """The length many distinct values share far more than nearby lengths do, or None."""
        # Distinct values first (their hashes are cached in the strings); only the few with
        # trailing whitespace are stripped (a copy) and hashed again.
        distinct = dict.fromkeys(values)
        counts = Counter(len(v) for v in distinct if v and not v[-1].isspace())  # their own rstrip
        trimmed = {s for v in distinct if v and v[-1].isspace() and (s := v.rstrip()) and s not in distinct}
        counts.update(len(s) for s in trimmed)
        return self.limit_of(counts)

    def limit_of(self, counts: Counter[int]) -> dict[str, float] | None:
        """:meth:`length_limit` given the number of distinct values of each length."""
        best = None
        # In length order: of two lengths as common, the shorter wins, however the counts were
        # gathered (one pass here, or partitions merged by the Dask engine).
        for length, count in sorted(counts.items()):
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
        """The findings on how one value ends."""
        ending = self._ending(record_id, field_name, value)
        if not isinstance(ending, _MidWord):
            return ending
        longer = vocabulary.is_fragment(ending.word) if vocabulary and ending.word else None
        return self._mid_word(ending, longer)

    def _ending(self, record_id: str, field_name: str, value: str) -> list[Finding] | _MidWord:
        """The findings on how one value ends, or, for a value ending in letters, what the
        mid-word test needs (:meth:`_mid_word`)."""
        stripped = value.rstrip()
        if not stripped:
            return []
        tail = stripped[-80:]
        last = stripped[-1]
        # Final punctuation (an ellipsis's "." too) needs no URL test; only a value ending in a
        # word character needs its reversed end (for its last word and last letters).
        ends_complete = last in _FINAL_CHARS or _ends_with_url(stripped)
        in_word = not ends_complete and (last.isalnum() or last == "_")
        reversed_end = _reversed_end(stripped) if in_word else ""
        cut = _cut_off(stripped, ends_complete, reversed_end)
        if cut:
            signal, matched = cut
            offset = len(stripped) - len(matched)
            message = f"{field_name} looks cut off: {signal}"
            return [_warning(record_id, field_name, message, signal, matched, offset, tail)]
        # Brackets and quotes inside URLs ("/wiki/Foo_(bar", "?q=\"x") are not the prose's.
        # A value with no opening bracket or quote mark at all has neither (blanking URLs only
        # removes characters): the URL scan is skipped.
        if stripped.isascii():  # O(1); the other openers are not ASCII
            has_opener = "(" in stripped or "[" in stripped or '"' in stripped
        else:
            has_opener = any(c in stripped for c in _OPENERS)
        if has_opener:  # else neither test finds anything
            prose = _without_urls(stripped)
            bracket = unclosed_bracket(prose)
            if bracket:
                char, offset = bracket
                message = f"{field_name} ends inside an open bracket {char!r}"
                return [_warning(record_id, field_name, message, "unclosed bracket", char, offset, tail)]
            quote = open_quote(prose)
            if quote:
                offset = prose.rfind(quote)
                message = f"{field_name} ends inside an open quote {quote!r}"
                return [_warning(record_id, field_name, message, "open quote", quote, offset, tail)]
        if ends_complete:
            return []
        return _MidWord(record_id, field_name, stripped, tail, _reversed_letters(reversed_end))

    def _mid_word(self, ending: _MidWord, longer: str | None) -> list[Finding]:
        """The findings of a value ending in letters: its last word cut in half (a ``longer``
        corpus word begins with it), else, for a text, no final punctuation."""
        record_id, field_name, stripped, tail, last = ending
        if last and longer:
            message = f"{field_name} ends mid-word: {last!r} occurs nowhere else; the corpus has {longer!r}"
            evidence = {
                "signal": "mid-word",
                "match": last,
                "offset": len(stripped) - len(last),
                "tail": tail,
                "longer_word": longer,
            }
            return [Finding(record_id, self.name, "warning", field_name, message, evidence)]
        if field_name != "text":
            return []
        evidence = {
            "signal": "no final punctuation",
            "match": stripped[-1],
            "offset": len(stripped) - 1,
            "tail": tail,
        }
        return [Finding(record_id, self.name, "info", field_name, "text has no final punctuation", evidence)]

    # -- proven: a longer copy in the same cluster ---------------------------------------
    def _proven_findings(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        clusters = context.clusters
        if clusters is None or clusters.empty or "members" not in clusters:
            return []
        ids = column(records, "id", context)
        row_of = {record_id: row for row, record_id in enumerate(ids)}
        present = [[m for m in members if m in row_of] for members in clusters["members"]]
        # Every cluster's members one after the other, each with its body normalised (what is
        # normalised: the text, or the title when the text is blank), and its longer copy found
        # by one compiled pass over the clusters.
        flat = [m for members in present for m in members]
        cluster_starts = np.zeros(len(present) + 1, np.int64)
        np.cumsum([len(members) for members in present], out=cluster_starts[1:])
        rows = np.fromiter((row_of[m] for m in flat), np.int64, len(flat))
        bodies = comparable_texts(records)
        norm = _Normalised(bodies, rows)
        longer = longer_copies(
            norm.starts, norm.ends, norm.chars, norm.data, cluster_starts, self.min_prefix_chars
        )
        lengths = _char_lengths(records["text"])
        findings: list[Finding] = []
        for at in np.flatnonzero(longer >= 0).tolist():  # in the order of the clusters and their members
            other = int(longer[at])
            length, longer_length = int(lengths[rows[at]]), int(lengths[rows[other]])
            findings.append(self._proven(flat[at], flat[other], length, longer_length, norm.end(at)))
        return findings

    def _proven(self, member: str, longer: str, length: int, longer_length: int, match: str) -> Finding:
        """The finding that ``member``'s text is a cut-off copy of ``longer``'s."""
        return Finding(
            member,
            self.name,
            "error",
            "text",
            f"text is a cut-off copy of {longer}: its {length} characters are the "
            f"start of that record's {longer_length}",
            {
                "signal": "prefix of a longer copy",
                "longer_copy": longer,
                "length": int(length),
                "longer_length": int(longer_length),
                "match": match,
                "offset": int(length),
            },
        )


_FUNCTION_KEYS = word_keys(FUNCTION_WORDS)


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


#: Characters of a value's end its findings show (evidence "tail").
_TAIL_CHARS = 80


class _Normalised:
    """normalise_text of the bodies at ``rows`` (duplicates allowed): each ``data[starts[n]:ends[n]]``
    (UTF-8) of ``chars[n]`` characters. ASCII bodies in one compiled pass; the others (NFKC,
    case folding) one at a time in Python, their bytes after the ASCII ones'."""

    def __init__(self, bodies: pd.Series, rows: np.ndarray) -> None:
        offsets, data, plain = normalised(_utf8(bodies), rows)
        self.starts, self.ends = offsets[:-1].copy(), offsets[1:].copy()
        self.chars = self.ends - self.starts
        self.unicode: dict[int, str] = {}
        others = np.flatnonzero(~plain)
        if len(others):
            other_rows = rows[others].tolist()
            body_of = dict(zip(other_rows, take_values(bodies, rows[others]), strict=True))
            # Copies share one body: each distinct one is normalised once.
            norm_of_body = {body: normalise_text(body) for body in set(body_of.values())}
            norm_of = {row: norm_of_body[body] for row, body in body_of.items()}
            encoded = [norm_of[row].encode("utf-8", "surrogatepass") for row in other_rows]
            size = np.fromiter(map(len, encoded), np.int64, len(encoded))
            self.starts[others] = len(data) + np.cumsum(size) - size
            self.ends[others] = self.starts[others] + size
            self.chars[others] = [len(norm_of[row]) for row in other_rows]
            data = np.concatenate([data, np.frombuffer(b"".join(encoded), np.uint8)])
            self.unicode = {n: norm_of[row] for n, row in zip(others.tolist(), other_rows, strict=True)}
        self.data = data

    def end(self, member: int) -> str:
        """The last 40 characters of the member's normalised body."""
        if member in self.unicode:
            return self.unicode[member][-40:]
        end = int(self.ends[member])
        return self.data[max(int(self.starts[member]), end - 40) : end].tobytes().decode("ascii")


def _char_lengths(values: pd.Series) -> np.ndarray:
    """The length in characters of each value of a string column."""
    chunks = arrow_strings(values)
    if chunks is None:
        return np.fromiter(map(len, column_values(values)), np.int64, len(values))
    return pc.utf8_length(chunks).to_numpy().astype(np.int64)


def _id_strings(values: pd.Series) -> pa.Array:
    """The record ids as one Arrow string array (shared when the column is Arrow-backed)."""
    chunks = arrow_strings(values)
    if chunks is None:
        return pa.array(column_values(values), pa.large_string())
    return chunks.combine_chunks() if chunks.num_chunks != 1 else chunks.chunk(0)


def _utf8(values: pd.Series) -> pa.Array:
    """A string column as one Arrow array of UTF-8 bytes (shared when Arrow-backed). Python
    strings are encoded with their lone surrogates: such a value is not ASCII, left to Python."""
    chunks = arrow_strings(values)
    if chunks is None:
        return pa.array(
            [v.encode("utf-8", "surrogatepass") for v in column_values(values)], pa.large_binary()
        )
    return chunks.combine_chunks() if chunks.num_chunks != 1 else chunks.chunk(0)


def ending_words(columns: Sequence[pd.Series]) -> set[str]:
    """Every word a value of ``columns`` may end in that the mid-word test asks the vocabulary
    about (a superset): the last letters of each value ending in a letter."""
    words: set[str] = set()
    for values in columns:
        data, starts, ends = last_letters_spans(_utf8(values))
        found = np.flatnonzero(starts >= 0)
        words.update(pc.unique(substrings(data, starts[found], ends[found])).to_pylist())
        for value in take_values(values, np.flatnonzero(starts == -2)):  # a non-ASCII end
            stripped = value.rstrip()
            # last_letters finds none unless the last character is a letter (alphanumeric: a superset)
            if stripped and stripped[-1].isalnum():
                word = last_letters(stripped[-_END_CHARS:])  # what TruncationCheck._ending asks about
                if word:
                    words.add(word)
    return words


def _severities(codes: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(["warning", "info"]))


class _FieldEndings:
    """One field of a frame's records, each value's ending classified (:class:`Endings`): what
    the truncation check finds about how its values end, as columns."""

    def __init__(self, check: TruncationCheck, records: pd.DataFrame, name: str, slot: int) -> None:
        self.check, self.records, self.name, self.slot = check, records, name, slot
        self.endings = endings = Endings(_utf8(records[name]), _FUNCTION_KEYS)
        # The values ending in letters that are not a whole word: the vocabulary is asked about
        # their last letters (each distinct word once, numbered by its code).
        self.asked = np.flatnonzero((endings.kind == OPEN_END) & (endings.letters_start >= 0))
        asked = endings.strings(self.asked, endings.letters_start[self.asked], endings.length[self.asked])
        encoded = asked.dictionary_encode()
        self.codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self.words: list[str] = encoded.dictionary.to_pylist()
        self.fallback = np.flatnonzero(endings.kind == FALLBACK)

    def key(self, rows: np.ndarray | int) -> np.ndarray | int:
        """The sort key of a finding about the values at ``rows`` (their record's order, title
        before text, an ending before a length limit)."""
        return rows * 4 + self.slot * 2

    @cached_property
    def _fallback_endings(self) -> list[list[Finding] | _MidWord]:
        ids = take_values(self.records["id"], self.fallback)
        values = take_values(self.records[self.name], self.fallback)
        return [self.check._ending(i, self.name, value) for i, value in zip(ids, values, strict=True)]

    def fallback_endings(self) -> list[list[Finding] | _MidWord]:
        """:meth:`TruncationCheck._ending` of each value the kernel left (in row order)."""
        return self._fallback_endings

    def fallback_findings(
        self, check: TruncationCheck, longer_of: Mapping[str, str | None]
    ) -> tuple[np.ndarray, FindingTable]:
        """The findings about the values the kernel left, with their sort keys."""
        keys, found = [], []
        for row, ending in zip(self.fallback.tolist(), self._fallback_endings, strict=True):
            if ending.__class__ is _MidWord:
                word = ending.word  # type: ignore[union-attr]
                ending = check._mid_word(ending, longer_of.get(word) if word else None)  # type: ignore[arg-type]
            keys += [self.key(row)] * len(ending)  # type: ignore[arg-type]
            found += ending  # type: ignore[arg-type]
        return np.array(keys, np.int64), FindingTable.of(found)

    def kernel_findings(
        self, ids: pa.Array, longer_of: Mapping[str, str | None]
    ) -> tuple[np.ndarray, FindingTable]:
        """The findings about the values the kernel classified, a column at a time, with their
        sort keys: what :meth:`TruncationCheck._ending` and :meth:`TruncationCheck._mid_word`
        make of each, the evidence written as its JSON text."""
        endings, name = self.endings, self.name
        kind = endings.kind
        # Variants of finding: (severity code, message, evidence up to the match, after the tail).
        variants = [
            (0, f"{name} looks cut off: ends with an ellipsis", "ends with an ellipsis", '"}'),
            (0, f"{name} looks cut off: dangling function word", "dangling function word", '"}'),
            (0, f"{name} ends inside an open bracket {'('!r}", "unclosed bracket", '"}'),
            (0, f"{name} ends inside an open bracket {'['!r}", "unclosed bracket", '"}'),
            (0, f"{name} ends inside an open quote {chr(34)!r}", "open quote", '"}'),
            (1, f"{name} has no final punctuation", "no final punctuation", '"}'),
        ]
        cut = np.flatnonzero((kind >= ELLIPSIS) & (kind <= QUOTE))
        cut_variant = np.array([-1, 0, 1, 2, 4], np.int64)[kind[cut]]
        square = endings.data[endings.offsets[cut] + endings.match_start[cut]] == ord("[")
        cut_variant[(kind[cut] == BRACKET) & square] = 3
        # The values ending in a word cut in half: a longer corpus word begins with their letters.
        longer = [longer_of.get(word) for word in self.words]
        variant_of_code = np.full(len(self.words), -1, np.int64)
        for code, (word, other) in enumerate(zip(self.words, longer, strict=True)):
            if other is not None:
                variant_of_code[code] = len(variants)
                message = f"{name} ends mid-word: {word!r} occurs nowhere else; the corpus has {other!r}"
                variants.append((0, message, "mid-word", '", "longer_word": ' + encode_value(other) + "}"))
        mid_variant = variant_of_code[self.codes]
        cut_in_half = mid_variant >= 0
        mid = self.asked[cut_in_half]
        # Else a text's open end: no final punctuation (a title's: nothing).
        if name == "text":
            open_end = kind == OPEN_END
            open_end[mid] = False
            plain = np.flatnonzero(open_end)
        else:
            plain = np.zeros(0, np.int64)
        rows = np.concatenate([cut, mid, plain])
        variant = np.concatenate([cut_variant, mid_variant[cut_in_half], np.full(len(plain), 5, np.int64)])
        starts = np.concatenate(
            [endings.match_start[cut], endings.letters_start[mid], endings.match_start[plain]]
        )
        order = np.argsort(rows, kind="stable")
        rows, variant, starts = rows[order], variant[order], starts[order]
        length = endings.length[rows]
        ends = np.where(variant >= 6, length, endings.match_end[rows])
        severity, messages, signals, suffixes = zip(*variants, strict=True)
        prefixes = pa.array(
            ['{"signal": ' + encode_value(s) + ', "match": "' for s in signals], pa.large_string()
        )
        taken = pa.array(variant)
        evidence = pc.binary_join_element_wise(
            prefixes.take(taken),
            escaped(endings.strings(rows, starts, ends)),
            _large('", "offset": '),
            pa.array(starts).cast(pa.large_string()),
            _large(', "tail": "'),
            escaped(endings.strings(rows, np.maximum(length - _TAIL_CHARS, 0), length)),
            pa.array(suffixes, pa.large_string()).take(taken),
            _large(""),
        )
        columns = [
            ids.take(pa.array(rows)).cast(pa.large_string()),
            pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rows), np.int32)), pa.array([NAME])),
            _severities(np.array(severity, np.int32)[variant]),
            pa.array([name] * len(rows), pa.string()),
            pa.array(messages, pa.large_string()).take(taken),
            evidence.cast(pa.large_string()),
            pa.nulls(len(rows), pa.large_string()),
        ]
        table = FindingTable(pa.Table.from_arrays(columns, schema=SCHEMA))
        return self.key(rows), table  # type: ignore[return-value]
