"""encoding: text that was decoded wrongly or carries invisible characters.

Found (each with the matched substring and its offset):

- mojibake (``cafÃ©``, ``â€œquotedâ€``): ``error``, repaired with ftfy's ``fix_encoding``,
  which changes text only when it is confident the bytes were decoded with the wrong codec;
- the replacement character ``\\ufffd`` (the original character is lost): ``error``, reported;
- control characters (C0 except tab/newline/CR, DEL, C1): ``warning``, removed;
- zero-width characters (``U+200B``, ``U+2060``, ``U+FEFF``; ``U+200C``/``U+200D`` only between
  Latin letters, since scripts and emoji use them): ``warning``, removed;
- non-breaking and narrow spaces (``U+00A0``, ``U+202F``, ``U+2007``): ``info``, replaced by a
  space.

Example:
    >>> [(f.evidence["kind"], f.repair["new"]) for f in encoding_findings("r", "text", "a cafÃ© bar")]
    [('mojibake', 'café')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import ftfy
import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, Severity, make_repair
from audit.checks.prefilter import field_findings, not_plain_ascii

NAME = "encoding"

# Tokens are split on ASCII whitespace only: mojibake often contains U+00A0 ("Ã\xa0" is "à").
_TOKEN = re.compile(r"[^ \t\n\r]+")
_SPACES = " \t\n\r"
_SPACE = re.compile(r"[ \t\n\r]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
_ZERO_WIDTH = re.compile(r"[\u200b\u2060\ufeff]+|(?<=[A-Za-z])[\u200c\u200d]+(?=[A-Za-z])")
_NBSP = re.compile(r"[\u00a0\u202f\u2007]+")
_REPLACEMENT = re.compile(r"\ufffd+")
_EMAIL_PLACEHOLDER = re.compile(r"\[email\sprotected\]")


def _non_ascii_tokens(value: str) -> Iterator[tuple[int, str]]:
    """``(offset, token)`` for every :data:`_TOKEN` match holding a non-ASCII character, in order.

    Found from each run of non-ASCII characters, widened to its token: a text's few such
    tokens, without a Python match object for each of its ASCII words.
    """
    end = 0
    for run in _NON_ASCII.finditer(value):
        if run.start() < end:
            continue  # in the token just given
        start = max(value.rfind(space, end, run.start()) for space in _SPACES) + 1
        start = max(start, end)
        after = _SPACE.search(value, run.end())
        end = after.start() if after else len(value)
        yield start, value[start:end]


def _mojibake(value: str) -> list[tuple[int, str, str]]:
    """``(offset, bad, fixed)`` for every token ftfy re-decodes (an ASCII token never is)."""
    found = []
    for offset, text in _non_ascii_tokens(value):
        fixed = ftfy.fix_encoding(text)
        if fixed != text:
            found.append((offset, text, fixed))
    return found


def encoding_findings(record_id: str, field: str, value: str) -> list[Finding]:
    """Encoding findings for one field value."""
    if value.isascii() and not _CONTROL.search(value):
        return []
    found: list[Finding] = []

    def add(kind: str, severity: Severity, message: str, offset: int, match: str, new: str | None) -> None:
        repair = make_repair(offset, match, new, f"{kind}: {match!r} -> {new!r}") if new is not None else None
        evidence = {"kind": kind, "match": match, "offset": offset}
        found.append(Finding(record_id, NAME, severity, field, message, evidence, repair))

    mojibake_spans = []
    for offset, bad, fixed in _mojibake(value):
        mojibake_spans.append((offset, offset + len(bad)))
        add("mojibake", "error", f"mojibake: {bad!r} reads {fixed!r}", offset, bad, fixed)

    def inside_mojibake(offset: int) -> bool:
        return any(s <= offset < e for s, e in mojibake_spans)

    for m in _REPLACEMENT.finditer(value):
        add("replacement character", "error", "U+FFFD: a character was lost", m.start(), m.group(0), None)
    for m in _CONTROL.finditer(value):
        if not inside_mojibake(m.start()):
            names = ", ".join(f"U+{ord(c):04X}" for c in m.group(0)[:5])
            add("control character", "warning", f"control character(s) {names}", m.start(), m.group(0), "")
    for m in _ZERO_WIDTH.finditer(value):
        names = ", ".join(f"U+{ord(c):04X}" for c in m.group(0)[:5])
        add("zero-width character", "warning", f"invisible character(s) {names}", m.start(), m.group(0), "")
    placeholders = [m.span() for m in _EMAIL_PLACEHOLDER.finditer(value)]
    for m in _NBSP.finditer(value):
        # Inside Cloudflare's "[email protected]" the space is part of furniture (boilerplate's).
        if not inside_mojibake(m.start()) and not any(s <= m.start() < e for s, e in placeholders):
            name = f"U+{ord(m.group(0)[0]):04X}"
            spaces = " " * len(m.group(0))
            add("non-breaking space", "info", f"non-breaking space {name}", m.start(), m.group(0), spaces)
    found.sort(key=lambda f: f.evidence["offset"])
    return found


class EncodingCheck(Check):
    """Mojibake, lost and invisible characters in titles and texts. No options."""

    name = NAME
    description = "mojibake (ftfy), replacement characters, control, zero-width and non-breaking spaces"

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        searched = {name: not_plain_ascii(records[name]) for name in ("title", "text")}
        return field_findings(records, searched, encoding_findings, context=context)
