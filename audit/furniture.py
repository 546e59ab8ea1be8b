"""Page furniture of scraped paper listings: lines that belong to the page, not to a record.

Shared by the page-dump reader (furniture lines are skipped, never records) and by the checks
that look for furniture leaking into record fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

#: Whole lines that are page furniture.
FURNITURE_LINE = re.compile(
    r"^(?:new|subscribe|byAK and the research community"
    r"|get trending papers in your email inbox(?: once a day)?!?)$",
    re.IGNORECASE,
)

#: A date header such as ``Mar 13`` or ``September 2``: furniture, but it dates what follows.
DATE_HEADER = re.compile(
    r"^(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:, \d{4})?$"
)

#: "Subscribe" glued to the start of the next line, as in ``SubscribeEfficient Geometry...``:
#: the glued word starts with a capital letter or digit.
GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=[A-Z0-9])")


def is_furniture(line: str) -> bool:
    """True when a whole (stripped) line is page furniture (a date header included)."""
    return bool(FURNITURE_LINE.match(line) or DATE_HEADER.match(line))


def strip_glued_furniture(line: str) -> tuple[str, str | None]:
    """Remove furniture glued to the front of a line; return (line, what was removed)."""
    match = GLUED_SUBSCRIBE.match(line)
    if match:
        return line[match.end() :], match.group(0)
    return line, None


#: How far from a field's start or end an ``edges_only`` kind is looked for.
EDGE_CHARS = 40

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}"


@dataclass(frozen=True)
class LeakedFurniture:
    """One kind of furniture that leaks into record fields.

    ``pattern`` matches the furniture itself (no surrounding prose), so removing the match is
    the repair. ``hints`` are lower-case substrings one of which every match contains: a field
    without any is not searched (the common case, and much faster). ``edges_only``: the pattern
    only matches within the first or last 40 characters of a field. ``cased``: substrings, case
    as written, one of which every match contains, for a case-sensitive pattern whose hints
    are common in prose ("signin" is in "designing"; "Sign in" is not) or slow to look for
    ignoring case: empty when none.
    """

    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...]
    edges_only: bool = False
    cased: tuple[str, ...] = ()

    def finditer(self, value: str, lowered: str | None = None) -> Iterator[re.Match[str]]:
        """Matches in ``value``; ``lowered`` is ``value.lower()`` when the caller has it already."""
        return self.pattern.finditer(value) if self.hinted(value, lowered) else iter(())

    def hinted(self, value: str, lowered: str | None = None) -> bool:
        """Whether ``value`` holds one of the hints (at its edges, for ``edges_only``): else no match."""
        if self.edges_only:
            lowered = f"{value[:EDGE_CHARS]}\n{value[-EDGE_CHARS:]}".lower()
        elif lowered is None:
            lowered = value.lower()
        return any(h in lowered for h in self.hints)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

#: Furniture that leaked into a record field. Patterns are anchored to a field edge, a sentence
#: edge or a glued capital, so ordinary prose ("a new method", "publish/subscribe") is never
#: furniture.
LEAKED_FURNITURE: tuple[LeakedFurniture, ...] = (
    LeakedFurniture(
        "newsletter prompt",
        re.compile(
            r"Get trending papers in your email inbox(?: once a day)?!?"
            r"|(?:Subscribe|Sign up) (?:to|for) (?:our|the) (?:weekly |daily )?newsletter[^.!?\n]{0,80}[.!]?"
            r"|byAK and the research community",
            re.IGNORECASE,
        ),
        ("inbox", "newsletter", "byak"),
    ),
    LeakedFurniture(
        "cookie prompt",
        re.compile(
            r"(?:We|This (?:web)?site) uses? cookies[^.!?\n]{0,160}[.!]"
            r"|By (?:continuing|using)[^.!?\n]{0,80}cookies[^.!?\n]{0,80}[.!]"
            r"|Accept (?:all )?cookies|Cookie (?:settings|policy|preferences)"
        ),
        ("cookie",),
        cased=("kie",),  # every match holds "cookies" or "Cookie"
    ),
    LeakedFurniture(
        "login prompt",
        re.compile(
            r"(?:Please )?(?:Log|Sign) ?in to (?:continue|read|view|download|access)[^.!?\n]{0,60}[.!]?"
            r"|(?:Already have an account\? )?(?:Log|Sign) ?in or (?:sign|register)[^.!?\n]{0,40}[.!]?"
        ),
        ("log in", "login", "sign in", "signin"),
        cased=("Log in", "Login", "Sign in", "Signin"),
    ),
    # Cloudflare's placeholder for something that looked like an e-mail address ("mAP@0.5").
    LeakedFurniture("email protection", re.compile(r"\[email\sprotected\]"), ("[email",), cased=("[email",)),
    # Single furniture words glued to the start or end of a field: "SubscribeEfficient ...",
    # "newPoseTalk", "...tasks.Subscribe", a date header "Mar 13" glued or alone at an edge.
    LeakedFurniture(
        "furniture word",
        re.compile(r"^(?:Subscribe|new)(?=[A-Z0-9])|^(?:Subscribe|new)$|(?<=[.!?])[ \t]*(?:Subscribe|new)$"),
        ("subscribe", "new"),
        edges_only=True,
    ),
    LeakedFurniture(
        "date header",
        re.compile(rf"^{_MONTH}(?=[^\W\d_])|^{_MONTH}$|(?<=[.!?])[ \t]*{_MONTH}$"),
        _MONTHS,
        edges_only=True,
    ),
)


#: Furniture phrases as they read after :func:`audit.normalise.normalise_text`, longest first.
NORMALISED_FURNITURE = (
    "get trending papers in your email inbox once a day",
    "get trending papers in your email inbox",
    "byak and the research community",
)
#: Furniture words removed only at the very start or end of a normalised text.
NORMALISED_EDGE_WORDS = ("subscribe",)


def strip_normalised_furniture(norm_text: str) -> str:
    """Remove page furniture that leaked into a normalised text (dedup compares the rest).

    >>> strip_normalised_furniture("subscribe deep nets get trending papers in your email inbox")
    'deep nets'
    """
    for phrase in NORMALISED_FURNITURE:
        if phrase in norm_text:
            norm_text = " ".join(norm_text.replace(phrase, " ").split())
    for word in NORMALISED_EDGE_WORDS:
        if norm_text.startswith(word + " "):
            norm_text = norm_text[len(word) + 1 :]
        if norm_text.endswith(" " + word):
            norm_text = norm_text[: -len(word) - 1]
    return norm_text
