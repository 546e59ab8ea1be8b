"""The conflicting_copies check: same title or same URL, different text."""

from __future__ import annotations

import pandas as pd

from audit.checks import CHECKS, CheckContext
from audit.checks.conflicting_copies import ConflictingCopiesCheck


def _records(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "title", "text", "url"])


def test_same_title_different_text_is_reported_once_per_extra_version() -> None:
    records = _records(
        [
            ("a", "Graph Neural Networks Explained", "Version one of the text.", ""),
            ("b", "graph neural networks explained!", "A completely different abstract.", ""),
            ("c", "Graph neural networks explained", "Version one of the text", ""),
        ]
    )
    findings = ConflictingCopiesCheck().run(records, CheckContext())
    assert [(f.record_id, f.evidence["kind"], f.evidence["others"]) for f in findings] == [
        ("b", "same title", ["a", "c"])
    ]
    assert findings[0].severity == "warning" and findings[0].repair is None


def test_same_url_different_text() -> None:
    records = _records(
        [
            ("a", "One", "First text here.", "https://arxiv.org/abs/1"),
            ("b", "Two", "Second text here.", "http://ARXIV.org/abs/1/"),
            ("c", "Three", "Third text.", "https://arxiv.org/abs/2"),
        ]
    )
    findings = ConflictingCopiesCheck().run(records, CheckContext())
    assert [(f.record_id, f.field, f.evidence["kind"]) for f in findings] == [("b", "url", "same url")]


def test_members_of_one_duplicate_cluster_do_not_conflict() -> None:
    records = _records(
        [
            ("a", "A title of three", "The text, full and long.", "https://x.org/1"),
            ("b", "A title of three", "The text, full and lo", "https://x.org/1"),
        ]
    )
    clusters = pd.DataFrame({"members": [["a", "b"]], "representative": ["a"]})
    assert ConflictingCopiesCheck().run(records, CheckContext(clusters=clusters)) == []
    assert len(ConflictingCopiesCheck().run(records, CheckContext())) == 2


def test_short_generic_titles_and_empty_fields_are_ignored() -> None:
    records = _records(
        [("a", "Introduction", "One.", ""), ("b", "Introduction", "Two.", ""), ("c", "", "", "")]
    )
    assert ConflictingCopiesCheck().run(records, CheckContext()) == []


def test_registered_and_quiet_on_the_seeds(seeds_result) -> None:
    assert "conflicting_copies" in CHECKS
    assert (seeds_result.findings["check"] == "conflicting_copies").sum() == 0
