"""boilerplate: leaked page furniture is found and removed; prose that mentions such words is not."""

from __future__ import annotations

import pytest

from audit.checks.boilerplate import furniture_findings
from audit.clean import apply_repairs


def repaired(value: str) -> tuple[list[str], str]:
    found = furniture_findings("r", "text", value)
    fixed, _ = apply_repairs(value, [f.repair for f in found if f.repair])
    return [f.evidence["kind"] for f in found], fixed


@pytest.mark.parametrize(
    ("value", "kind", "fixed"),
    [
        ("SubscribeEfficient Geometry Networks", "furniture word", "Efficient Geometry Networks"),
        ("newPoseTalk: Talking Heads", "furniture word", "PoseTalk: Talking Heads"),
        ("Subscribe", "furniture word", ""),
        ("It works well. Subscribe", "furniture word", "It works well."),
        ("It works well.Subscribe", "furniture word", "It works well."),
        ("Mar 13PoseTalk: Talking Heads", "date header", "PoseTalk: Talking Heads"),
        ("Mar 13i-RevNet: Invertible Networks", "date header", "i-RevNet: Invertible Networks"),
        (
            "It works. Get trending papers in your email inbox! We test it.",
            "newsletter prompt",
            "It works. We test it.",
        ),
        ("It works. Subscribe to our newsletter for weekly updates.", "newsletter prompt", "It works."),
        (
            "It works. We use cookies to improve your experience. We test.",
            "cookie prompt",
            "It works. We test.",
        ),
        ("It works. Accept all cookies", "cookie prompt", "It works."),
        ("It works. Sign in to continue reading. We test.", "login prompt", "It works. We test."),
    ],
)
def test_furniture_is_found_and_removed(value: str, kind: str, fixed: str) -> None:
    kinds, result = repaired(value)
    assert kinds == [kind]
    assert result == fixed


def test_email_placeholder_is_reported_not_repaired() -> None:
    value = "It gains +1.9 [email\xa0protected] on ScanNet."
    found = furniture_findings("r", "text", value)
    assert [(f.evidence["kind"], f.evidence["offset"], f.repair) for f in found] == [
        ("email protection", 14, None)
    ]


@pytest.mark.parametrize(
    "value",
    [
        "We propose a new method for publish/subscribe systems.",
        "Results released in May 2023 and on Mar 13, 2024 are compared.",
        "Users can sign in with one click; the log in step is optional.",
        "New Results on Sparse Networks",
        "A cookie-cutter approach to newsletters.",
    ],
)
def test_prose_is_not_furniture(value: str) -> None:
    assert furniture_findings("r", "text", value) == []
