"""Conflicting copies: records that share a title, or a URL, but whose texts differ.

Two records with the same title (or the same url field) and texts that are not duplicates of
each other are likely a new version of the record or a scrape error (a text pasted under the
wrong title). Texts count as the same when they are in one dedup cluster, or equal once
normalised, or (when no dedup ran) their shingle sets reach Jaccard or containment
``same_text_threshold``, dedup's own test. Reported, not removed: each record after the first
of such a group gets a warning naming the others.

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
from audit.dedup.shingles import shingle_hashes
from audit.dedup.verify import similarity
from audit.normalise import normalise_text, normalised_texts

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

    def __init__(self, min_title_words: int = 3, same_text_threshold: float = 0.8) -> None:
        #: Shorter titles ("Introduction") are shared by unrelated records: not compared.
        self.min_title_words = min_title_words
        self.same_text_threshold = same_text_threshold
        self._cluster_of: dict[str, str] = {}

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        ids = records["id"].tolist()
        norm_texts = (
            records["norm_text"].tolist()
            if "norm_text" in records
            else normalised_texts(records)
        )
        text_of = {record_id: text for record_id, text in zip(ids, norm_texts, strict=True)}
        cluster_of: dict[str, str] = {}
        if context.clusters is not None and len(context.clusters):
            for members in context.clusters["members"]:
                cluster_of.update((member, members[0]) for member in members)
        self._cluster_of = cluster_of
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
        # Versions: each member joins the first earlier version whose text is the same.
        version_of: dict[str, int] = {}
        firsts: list[str] = []
        for record_id in members:
            same = next((n for n, first in enumerate(firsts) if self._same(first, record_id, text_of)), None)
            if same is None:
                same = len(firsts)
                firsts.append(record_id)
            version_of[record_id] = same
        if len(firsts) < 2:
            return []
        findings = []
        field = "title" if kind == "same title" else "url"
        for record_id in firsts[1:]:
            others = [m for m in members if version_of[m] != version_of[record_id]][:MAX_OTHERS]
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

    def _same(self, a: str, b: str, text_of: dict[str, str]) -> bool:
        """Records ``a`` and ``b`` hold the same text: one cluster, equal, or similar shingles."""
        cluster = self._cluster_of.get(a)
        if text_of[a] == text_of[b] or (cluster is not None and cluster == self._cluster_of.get(b)):
            return True
        jaccard, containment = similarity(shingle_hashes(text_of[a]), shingle_hashes(text_of[b]))
        return max(jaccard, containment) >= self.same_text_threshold
