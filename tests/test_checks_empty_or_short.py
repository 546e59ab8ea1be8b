"""empty_or_short: empty and short texts, empty titles where the source has titles."""

from __future__ import annotations

import pytest
from check_records import make_records

from audit.checks import CheckContext, run_checks
from audit.checks.empty_or_short import EmptyOrShortCheck

LONG = "We study sparse networks. " * 10


def kinds(records, **options) -> list[tuple[str, str, str]]:
    findings = EmptyOrShortCheck(**options).run(records, CheckContext())
    return [(f.record_id, f.evidence["kind"], f.severity) for f in findings]


def test_empty_short_and_untitled() -> None:
    records = make_records([LONG, "", "Too short.", LONG], titles=["T", "T", "T", ""])
    assert kinds(records) == [
        ("r1", "empty text", "error"),
        ("r2", "short text", "warning"),
        ("r3", "empty title", "warning"),
    ]


def test_threshold_is_configurable_through_run_checks() -> None:
    records = make_records(["x" * 150 + "."])
    assert kinds(records) == [("r0", "short text", "warning")]
    assert kinds(records, min_text_chars=100) == []
    found = run_checks(records, ["empty_or_short"], options={"empty_or_short": {"min_text_chars": 100}})
    assert len(found) == 0


def test_sources_without_titles_are_not_reported() -> None:
    records = make_records([LONG, LONG], titles=["", ""])
    assert kinds(records) == []
    assert kinds(make_records([LONG], titles=[""]), require_title=False) == []


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="min_text_chars, require_title"):
        run_checks(make_records([LONG]), ["empty_or_short"], options={"empty_or_short": {"min_chars": 5}})
    with pytest.raises(ValueError, match="known: none"):
        run_checks(make_records([LONG]), ["boilerplate"], options={"boilerplate": {"x": 1}})
