"""Page furniture of scraped paper listings: lines that belong to the page, not to a record.

Shared by the page-dump reader (furniture lines are skipped, never records) and by the checks
that look for furniture leaking into record fields.
"""

from __future__ import annotations

import re

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
