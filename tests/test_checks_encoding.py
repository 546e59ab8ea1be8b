"""encoding: mojibake (ftfy), lost, control, zero-width and non-breaking characters."""

from __future__ import annotations

import pytest

from audit.checks.encoding import encoding_findings
from audit.clean import apply_repairs


def fixed(value: str) -> str:
    return apply_repairs(value, [f.repair for f in encoding_findings("r", "text", value) if f.repair])[0]


@pytest.mark.parametrize(
    ("good", "codec"),
    [
        ("Poincaré", "windows-1252"),
        ("naïve", "latin-1"),
        ("model’s", "windows-1252"),
        ("Schrödinger", "windows-1252"),
    ],
)
def test_mojibake_is_found_and_repaired(good: str, codec: str) -> None:
    bad = good.encode("utf-8").decode(codec)
    value = f"We revisit the {bad} setting."
    found = encoding_findings("r", "text", value)
    assert [(f.evidence["kind"], f.severity) for f in found] == [("mojibake", "error")]
    assert found[0].evidence["offset"] == value.index(bad)
    assert fixed(value) == f"We revisit the {good} setting."


@pytest.mark.parametrize(
    ("value", "kind", "severity", "repaired"),
    [
        ("a lo\ufffdt char", "replacement character", "error", None),
        ("con\x00trol and \x1b[0m", "control character", "warning", "control and [0m"),
        ("zero\u200bwidth\ufeff", "zero-width character", "warning", "zerowidth"),
        ("non\u00a0breaking", "non-breaking space", "info", "non breaking"),
    ],
)
def test_invisible_and_lost_characters(value: str, kind: str, severity: str, repaired: str | None) -> None:
    found = encoding_findings("r", "text", value)
    assert {(f.evidence["kind"], f.severity) for f in found} == {(kind, severity)}
    if repaired is not None:
        assert fixed(value) == repaired
    else:
        assert all(f.repair is None for f in found)


@pytest.mark.parametrize(
    "value",
    [
        "Poincaré, naïve, Schrödinger, Łojasiewicz, “quoted”, it’s — fine.",
        "深度学习 and العربية and emoji 👩\u200d💻 with a joiner.",
        "tabs\tand\nnewlines are fine",
        "It gains +1.9 [email\xa0protected] on ScanNet.",  # the placeholder is boilerplate's
    ],
)
def test_correct_text_is_not_flagged(value: str) -> None:
    assert encoding_findings("r", "text", value) == []
