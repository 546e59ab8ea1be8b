"""boilerplate: page furniture that leaked into a record field.

Newsletter prompts ("Get trending papers in your email inbox!"), cookie and login prompts,
Cloudflare's ``[email protected]`` placeholder, furniture words glued to a field edge
(``SubscribeEfficient Geometry...``, ``...results.Subscribe``) and date headers (``Mar 13``).
The patterns live in :mod:`audit.furniture`, shared with the page-dump reader.

Repair: remove the furniture (with one space next to it, so no double space is left). The
``[email protected]`` placeholder replaced real text (``mAP@0.5``), so it is reported, never
repaired.

Example:
    >>> [f.evidence["match"] for f in furniture_findings("r", "title", "SubscribeEfficient Nets")]
    ['Subscribe']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, make_repair
from audit.checks.prefilter import (
    candidate_mask,
    edge_bytes,
    field_findings,
    lowered_literal,
    offsets,
    scan_at,
)
from audit.frames import take_values
from audit.furniture import LEAKED_FURNITURE, LeakedFurniture

NAME = "boilerplate"
#: A field can hold furniture only if it holds one of the kinds' hints (at its edges, for
#: edge-only kinds); the rest are not looked at. A kind with ``cased`` substrings is looked for
#: by those, the others by their lower-case hints, each its own pattern (an alternation is
#: matched character by character, several times slower than its parts one by one).
_HINTS = tuple(
    lowered_literal(part) if not f.cased else re.escape(part)
    for f in LEAKED_FURNITURE
    if not f.edges_only
    for part in (f.cased or f.hints)
)
#: The edge kinds ("furniture word", "date header") match only at a field's very start (their
#: ``^`` alternatives: these words, case as written) or very end (``$``, which also matches before
#: a final newline: "Subscribe", "new", or a date's last digit).
_EDGE_STARTS = ("Subscribe", "new", *"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
_EDGE_ENDS = ("Subscribe", "new")
_EDGE_WIDTH = 1 + max(len(word) for word in (*_EDGE_STARTS, *_EDGE_ENDS))
#: Kinds whose removal would lose record content: reported only.
_NOT_REPAIRED = frozenset({"email protection"})


def edge_rows(values: pd.Series) -> np.ndarray:
    """Which values an edge kind may match: they begin with one of :data:`_EDGE_STARTS`, or, a
    final newline aside, end with one of :data:`_EDGE_ENDS` or a digit (``\\d``: an ASCII digit,
    or a non-ASCII decimal digit). Read from each value's first and last bytes alone
    (:func:`edge_bytes`), no regex over the column; only the values ending in a non-ASCII
    character (last UTF-8 byte 0x80 or more, mostly an ellipsis) are read as strings, to test it."""
    head, tail, missing = edge_bytes(values, _EDGE_WIDTH)
    found = missing.copy()
    for word in _EDGE_STARTS:
        found |= (head[:, : len(word)] == np.frombuffer(word.encode("ascii"), np.uint8)).all(axis=1)
    end = np.where((tail[:, -1] == ord("\n"))[:, None], tail[:, :-1], tail[:, 1:])
    for word in _EDGE_ENDS:
        found |= (end[:, -len(word) :] == np.frombuffer(word.encode("ascii"), np.uint8)).all(axis=1)
    last = end[:, -1]
    found |= (last >= ord("0")) & (last <= ord("9"))
    wide = np.flatnonzero((last >= 0x80) & ~found)
    if len(wide):
        found[wide] = [_ends_in_digit(value) for value in take_values(values, wide)]
    return found


def _ends_in_digit(value: str | None) -> bool:
    """Whether ``\\d$`` can match ``value``: its last character, a final newline aside, is a
    decimal digit (Unicode category Nd, what ``\\d`` matches; a missing value: maybe)."""
    if not isinstance(value, str):
        return True
    return value.removesuffix("\n")[-1:].isdecimal()


def _removal(value: str, start: int, end: int) -> tuple[int, str]:
    """The span to delete for furniture at ``start:end``: the furniture and one adjacent space."""
    if end < len(value) and value[end] == " " and (start == 0 or value[start - 1] == " "):
        end += 1
    elif start > 0 and value[start - 1] == " " and end == len(value):
        start -= 1
    return start, value[start:end]


def _edge_starts(value: str) -> list[int]:
    """Where an edge kind's match can begin: the field's start (``^``), or right after the
    sentence end its look-behind needs."""
    ends = sorted([*offsets(value, "."), *offsets(value, "!"), *offsets(value, "?")])
    return [0, *(at + 1 for at in ends)]


def _login_starts(value: str) -> list[int]:
    """Where a login prompt can begin: at one of the (case-sensitive) words that open it."""
    return sorted({at for word in _LOGIN_OPENERS for at in offsets(value, word)})


_LOGIN_OPENERS = ("Please ", "Log", "Sign", "Already have an account? ")


#: Kinds whose pattern begins with a look-behind, an anchor or an optional word: ``re`` would try
#: it at every offset of the value; these give the few offsets where a match can begin.
_STARTS: dict[str, Callable[[str], list[int]]] = {
    "login prompt": _login_starts,
    "furniture word": _edge_starts,
    "date header": _edge_starts,
}


def _matches(furniture: LeakedFurniture, value: str, lowered: str) -> Iterator[re.Match[str]]:
    """``furniture.finditer(value, lowered)``, tried only where a match can begin."""
    starts = _STARTS.get(furniture.kind)
    if starts is None:
        return furniture.finditer(value, lowered)
    return scan_at(furniture.pattern, value, starts(value)) if furniture.hinted(value, lowered) else iter(())


def furniture_findings(record_id: str, field: str, value: str) -> list[Finding]:
    """Leaked-furniture findings for one field value."""
    found: list[Finding] = []
    lowered = value.lower()  # once for all kinds' hint tests
    for furniture in LEAKED_FURNITURE:
        kind = furniture.kind
        for match in _matches(furniture, value, lowered):
            text = match.group(0).strip()
            if not text:
                continue
            start = match.start() + match.group(0).index(text)
            repair = None
            if kind not in _NOT_REPAIRED:
                offset, old = _removal(value, start, start + len(text))
                repair = make_repair(offset, old, "", f"remove leaked page furniture ({kind})")
            found.append(
                Finding(
                    record_id,
                    NAME,
                    "warning",
                    field,
                    f"page furniture in the {field}: {kind}",
                    {"kind": kind, "match": text, "offset": start},
                    repair,
                )
            )
    return found


class BoilerplateCheck(Check):
    """Leaked page furniture in titles and texts. No options."""

    name = NAME
    description = "page furniture leaked into a record (Subscribe, newsletter/cookie/login prompts, dates)"

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        searched = {
            name: candidate_mask(records[name], _HINTS) | edge_rows(records[name])
            for name in ("title", "text")
        }
        return field_findings(records, searched, furniture_findings, context=context)
