"""markup_residue: LaTeX and HTML left in prose.

Found (each with the matched substring and its offset):

- LaTeX commands (``\\em``, ``\\tool``, ``{\\L}``, ``\\cite{...}``) and math (``^{2}``, ``_{i}``,
  ``$x^2$``): ``warning``, reported only: what they stood for is not always knowable;
- LaTeX accents (``Poincar\\'e``, ``Schr\\"{o}dinger``) and escaped specials (``4\\%``, ``\\&``):
  ``info``, repaired (``Poincaré``, ``4%``, ``&``): each has exactly one meaning;
- a LaTeX ``%`` comment left in prose (``schemes %that were``; a ``%`` after a number is a
  percent sign, not a comment): ``warning``, reported only;
- HTML tags (``<b>``, ``</p>``, ``<br/>``; only real tag names, so ``x<y`` is not a tag):
  ``warning``, reported only;
- HTML entities (``&amp;``, ``&#39;``): ``info``, repaired with :func:`html.unescape`.

``\\href``/``\\url`` and braces around URLs belong to ``malformed_url``; anything inside a URL is
skipped here.

Example:
    >>> [(f.evidence["kind"], f.repair["new"] if f.repair else None)
    ...  for f in markup_findings("r", "text", "less than 4\\\\% in {\\\\em this} case")]
    [('latex escape', '%'), ('latex command', None)]
"""

from __future__ import annotations

import html
import re
import unicodedata

import numpy as np
import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, Severity, make_repair
from audit.checks.prefilter import byte_contexts, candidate_mask, field_findings, offsets, scan, scan_at
from audit.urls import find_url_spans

NAME = "markup_residue"

# LaTeX accent command -> Unicode combining mark.
_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
}
_ACCENT = re.compile(r"""\\(['`^"~=.])(?:\{([A-Za-z])\}|([A-Za-z]))""")
_ESCAPE = re.compile(r"\\([%&#_$])")
# A command and, when it directly follows, one brace group: "\em", "\cite{x}", "{\L}", and a
# group the command opens: "{\em dynamical stability}".
_COMMAND = re.compile(r"\{\\([A-Za-z]+) [^{}\\\n]{1,200}\}|\{?\\([A-Za-z]+)\*?(?:\{[^{}\n]{0,200}\})?\}?")
_SCRIPT = re.compile(r"[\^_]\{[^{}\n]{1,100}\}")
_MATH = re.compile(r"\$[^$\n]{1,200}\$")
# "%" not after a digit (percent), a backslash (escaped) or another "%", followed by a word.
_COMMENT = re.compile(r"(?<![\d\\%])(?<!\d )%[ \t]?(?=[A-Za-z])")
_TAG_NAMES = (
    "a|abbr|b|blockquote|br|code|div|em|font|h[1-6]|hr|i|img|li|ol|p|pre|small|span|strong|sub|sup"
    "|table|td|th|tr|tt|u|ul"
)
_TAG = re.compile(rf"</?(?:{_TAG_NAMES})(?:\s[^<>\n]{{0,200}})?/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
#: One of these characters begins or is part of every match above.
_MARKUP_CHARS = r"[\\<&%{]"
_MARKUP_CHAR = re.compile(_MARKUP_CHARS)
#: The characters but ``%`` every match but a % comment's or (with ``%``) a math span's holds,
#: one pattern each: each is found by a fast byte search over the column.
_NOT_PERCENT_LITERALS = (r"\\", "<", "&", r"\{")
#: Commands that malformed_url reports (they wrap a URL).
_URL_COMMANDS = frozenset({"href", "url"})


def _accented(mark: str, letter: str) -> str:
    return unicodedata.normalize("NFC", letter + _ACCENTS[mark])


def _command_starts(value: str) -> list[int]:
    """Where a :data:`_COMMAND` match can begin: at a backslash, or at a brace right before one."""
    starts = []
    for at in offsets(value, "\\"):
        if at and value[at - 1] == "{":
            starts.append(at - 1)
        starts.append(at)
    return starts


def markup_findings(record_id: str, field: str, value: str) -> list[Finding]:
    """Markup-residue findings for one field value."""
    if not _MARKUP_CHAR.search(value):
        return []  # the common case: nothing to look at
    # Characters already explained (URLs, earlier matches): a mask keeps the overlap test linear.
    # Made at the first match: most values scanned here have none, and need no URL scan.
    taken: bytearray | None = None
    found: list[Finding] = []
    # Each pattern is run only when the character(s) every match of it holds are in the value.

    def add(
        kind: str, severity: Severity, message: str, start: int, end: int, new: str | None = None
    ) -> None:
        nonlocal taken
        if taken is None:
            taken = bytearray(len(value))
            for url_start, url_end, _ in find_url_spans(value):
                taken[url_start:url_end] = b"\x01" * (url_end - url_start)
        if any(taken[start:end]):
            return
        taken[start:end] = b"\x01" * (end - start)
        match = value[start:end]
        repair = make_repair(start, match, new, f"{kind}: {match} -> {new}") if new else None
        evidence = {"kind": kind, "match": match, "offset": start}
        found.append(Finding(record_id, NAME, severity, field, message, evidence, repair))

    for m in scan(_ACCENT, value, "\\"):
        letter = m.group(2) or m.group(3)
        add("latex accent", "info", "LaTeX accent command", *m.span(), _accented(m.group(1), letter))
    for m in scan(_ESCAPE, value, "\\"):
        add("latex escape", "info", f"LaTeX-escaped {m.group(1)!r}", *m.span(), m.group(1))
    for m in scan(_MATH, value, "$"):
        if any(c in m.group(0) for c in "\\^_{"):
            add("latex math", "warning", "LaTeX inline math", *m.span())
    for m in scan_at(_COMMAND, value, _command_starts(value)):
        command = m.group(1) or m.group(2)
        if command.lower() in _URL_COMMANDS:
            continue
        add("latex command", "warning", f"LaTeX command \\{command}", *m.span())
    for m in scan(_SCRIPT, value, "^{", "_{"):
        add("latex script", "warning", "LaTeX superscript/subscript", *m.span())
    for m in scan_at(_COMMENT, value, offsets(value, "%")):  # every match begins with "%"
        add("latex comment", "warning", "LaTeX % comment marker in prose", *m.span())
    for m in scan(_TAG, value, "<"):
        add("html tag", "warning", "HTML tag in text", *m.span())
    for m in scan(_ENTITY, value, "&"):
        decoded = html.unescape(m.group(0))
        if decoded != m.group(0):
            add("html entity", "info", f"HTML entity {m.group(0)}", *m.span(), decoded)
    found.sort(key=lambda f: f.evidence["offset"])
    return found


def _letter(byte: np.ndarray) -> np.ndarray:
    return ((byte >= ord("A")) & (byte <= ord("Z"))) | ((byte >= ord("a")) & (byte <= ord("z")))


def comment_rows(values: pd.Series) -> np.ndarray:
    """Which values a % comment (:data:`_COMMENT`) may be in, or are missing: a ``%`` after
    neither an ASCII digit, a backslash nor a ``%``, and before a letter (maybe after a space or
    tab). A percent sign ("95% of") is not; the rule is looser than the pattern's (a non-ASCII
    digit before, "5 %x"), never stricter. Read from the bytes around each ``%`` of an
    Arrow-backed column at once, else by the pattern itself."""
    found = byte_contexts(values, ord("%"), 2)
    if found is None:
        hits = (not isinstance(v, str) or _COMMENT.search(v) is not None for v in values)
        return np.fromiter(hits, bool, len(values))
    rows, around = found
    before, after, then = around[:, 1], around[:, 3], around[:, 4]
    no_digit = ((before < ord("0")) | (before > ord("9"))) & (before != ord("\\")) & (before != ord("%"))
    spaced = ((after == ord(" ")) | (after == ord("\t"))) & _letter(then)
    hit = np.zeros(len(values), bool)
    hit[rows[no_digit & (_letter(after) | spaced)]] = True
    return hit | values.isna().to_numpy()


def markup_rows(values: pd.Series) -> np.ndarray:
    """Which values :func:`markup_findings` may find something in: they hold a backslash, ``<``,
    ``&`` or ``{``, a ``%`` that may begin a comment (:func:`comment_rows`), or both a ``%`` and
    a ``$`` (a math span, looked at when the value holds a markup character)."""
    math = candidate_mask(values, "%") & candidate_mask(values, r"\$")
    return candidate_mask(values, _NOT_PERCENT_LITERALS) | comment_rows(values) | math


class MarkupResidueCheck(Check):
    """LaTeX and HTML residue in titles and texts. No options."""

    name = NAME
    description = "LaTeX (commands, accents, escapes, math, % comments) and HTML (tags, entities) in text"

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        searched = {name: markup_rows(records[name]) for name in ("title", "text")}
        return field_findings(records, searched, markup_findings, context=context)
