"""Word-level differences between a kept record and a removed copy, for the near-duplicate explorer.

The texts are split into words, whitespace runs and punctuation marks, and aligned with
rapidfuzz's Levenshtein opcodes (bit-parallel, fast on abstracts of a few thousand words).
The result is a list of segments the template renders, escaped: ``equal`` as plain text,
``delete`` (only in the kept copy) struck through, ``insert`` (only in the removed copy) marked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import Levenshtein

TOKEN = re.compile(r"\s+|\w+|[^\w\s]")

SegmentKind = Literal["equal", "delete", "insert"]


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    text: str


def word_diff(kept: str, copy: str) -> list[Segment]:
    """Segments that turn ``kept`` into ``copy``; adjacent segments of one kind are merged."""
    old, new = TOKEN.findall(kept), TOKEN.findall(copy)
    segments: list[Segment] = []

    def add(kind: SegmentKind, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if segments and segments[-1].kind == kind:
            segments[-1] = Segment(kind, segments[-1].text + text)
        else:
            segments.append(Segment(kind, text))

    for op in Levenshtein.opcodes(old, new):
        if op.tag == "equal":
            add("equal", old[op.src_start : op.src_end])
        else:
            add("delete", old[op.src_start : op.src_end])
            add("insert", new[op.dest_start : op.dest_end])
    return segments


def changed_chars(segments: list[Segment]) -> int:
    """How many characters differ (deleted plus inserted): 0 means identical texts."""
    return sum(len(s.text) for s in segments if s.kind != "equal")
