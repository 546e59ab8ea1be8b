"""Conflicting copies: records that share a title, or a URL, but whose texts differ.

Two records with the same title (or the same url field) and texts that are not duplicates of
each other (not in one dedup cluster, not equal once normalised) are likely a new version of
the record or a scrape error (a text pasted under the wrong title). Both are reported, not
removed: each record after the first of such a group gets a warning naming the others.

Example:
    >>> import pandas as pd
    >>> records = pd.DataFrame({"id": ["a", "b"], "title": ["Deep Nets Work", "deep nets work!"],
    ...     "text": ["One text about nets.", "Another text entirely."], "url": ["", ""]})
    >>> [f.evidence["kind"] for f in ConflictingCopiesCheck().run(records, CheckContext())]
    ['same title']
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding
from audit.normalise import normalise_text

NAME = "conflicting_copies"
#: At most this many other ids are listed in a finding's evidence.
MAX_OTHERS = 10


def _url_key(url: str) -> str:
    """A url compared loosely: case, scheme and a trailing slash do not matter."""
    key = url.strip().lower()
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    return key.removeprefix("www.").rstrip("/")


class ConflictingCopiesCheck(Check):
    name = NAME
    description = "same title or same URL but a different text (a new version or a scrape error)"

    def __init__(self, min_title_words: int = 3) -> None:
        #: Shorter titles ("Introduction") are shared by unrelated records: not compared.
        self.min_title_words = min_title_words

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        ids = records["id"].tolist()
        norm_texts = (
            records["norm_text"].tolist()
            if "norm_text" in records
            else [normalise_text(t) for t in records["text"].tolist()]
        )
        # Records of one dedup cluster, or with equal normalised texts, are one text.
        text_of = {record_id: text for record_id, text in zip(ids, norm_texts, strict=True)}
        if context.clusters is not None and len(context.clusters):
            for members in context.clusters["members"]:
                for member in members:
                    text_of[member] = "\x00cluster:" + members[0]
        findings: list[Finding] = []
        titles = [normalise_text(t) for t in records["title"].tolist()]
        keys = {
            "same title": [t if len(t.split()) >= self.min_title_words else "" for t in titles],
            "same url": [_url_key(u) for u in records["url"].tolist()],
        }
        for kind, values in keys.items():
            groups: dict[str, list[str]] = defaultdict(list)
            for record_id, value, text in zip(ids, values, norm_texts, strict=True):
                if value and text:
                    groups[value].append(record_id)
            for value, members in groups.items():
                findings.extend(self._group_findings(kind, value, members, text_of))
        return findings

    def _group_findings(
        self, kind: str, value: str, members: list[str], text_of: dict[str, str]
    ) -> list[Finding]:
        if len({text_of[m] for m in members}) < 2:
            return []
        findings = []
        seen: set[str] = set()
        for record_id in members:
            text = text_of[record_id]
            if not seen or text in seen:
                seen.add(text)
                continue
            seen.add(text)
            others = [m for m in members if text_of[m] != text][:MAX_OTHERS]
            field = "title" if kind == "same title" else "url"
            findings.append(
                Finding(
                    record_id,
                    NAME,
                    "warning",
                    field,
                    f"{kind} as {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}, different text",
                    {"kind": kind, "match": value, "others": others},
                )
            )
        return findings
