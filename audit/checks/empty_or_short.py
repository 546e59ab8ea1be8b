"""empty_or_short: records with no text, a text too short to be a document, or no title.

- empty text: ``error`` (nothing to keep);
- text shorter than ``min_text_chars`` (default 200; abstracts are rarely under 300): ``warning``;
- empty title: ``warning``, but only for records from a source where other records have titles
  (a JSONL export without a title field is not a defect on every line).

Example:
    >>> import pandas as pd
    >>> records = pd.DataFrame({"id": ["a", "b"], "source": ["s", "s"], "title": ["T", ""],
    ...                         "text": ["x" * 300, "Too short."]})
    >>> [(f.record_id, f.evidence["kind"]) for f in EmptyOrShortCheck().run(records, None)]
    [('b', 'empty title'), ('b', 'short text')]
"""

from __future__ import annotations

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, column

NAME = "empty_or_short"


def titled(records: pd.DataFrame) -> set[str]:
    """The sources with a titled record: there, an empty title is a finding."""
    # unique() first: a set of the column would box every cell (~1 µs each at 1M records).
    return set(records.loc[records["title"].str.strip() != "", "source"].unique().tolist())


class EmptyOrShortCheck(Check):
    """Empty titles and texts, and texts too short to be a document.

    Options (keyword arguments):
        min_text_chars: a non-empty text shorter than this (after stripping) is short (default 200).
        require_title: report empty titles where the source has titles (default True).
    """

    name = NAME
    description = "empty title or text, text too short to be a document (min_text_chars)"

    def __init__(self, min_text_chars: int = 200, require_title: bool = True) -> None:
        self.min_text_chars = min_text_chars
        self.require_title = require_title

    def run(self, records: pd.DataFrame, context: CheckContext | None) -> list[Finding]:
        titled_sources = context.corpus.get("titled_sources") if context is not None else None
        if titled_sources is None:  # the records are the whole corpus
            titled_sources = titled(records)
        findings: list[Finding] = []
        # tolist(), not the Series: iterating an Arrow-backed column boxes each value (~1 µs).
        columns = (column(records, name, context) for name in ("id", "source", "title", "text"))
        for record_id, source, title, text in zip(*columns, strict=True):
            if self.require_title and not title.strip() and source in titled_sources:
                findings.append(
                    Finding(
                        record_id,
                        self.name,
                        "warning",
                        "title",
                        "empty title (other records of this source have one)",
                        {"kind": "empty title", "match": title, "offset": 0},
                    )
                )
            length = len(text.strip())
            if length == 0:
                findings.append(
                    Finding(
                        record_id,
                        self.name,
                        "error",
                        "text",
                        "empty text",
                        {"kind": "empty text", "match": text, "offset": 0, "length": 0},
                    )
                )
            elif length < self.min_text_chars:
                findings.append(
                    Finding(
                        record_id,
                        self.name,
                        "warning",
                        "text",
                        f"text has {length} characters, fewer than {self.min_text_chars}",
                        {
                            "kind": "short text",
                            "match": text.strip()[:80],
                            "offset": 0,
                            "length": length,
                            "min_text_chars": self.min_text_chars,
                        },
                    )
                )
        return findings
