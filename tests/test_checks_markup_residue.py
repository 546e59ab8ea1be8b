"""markup_residue: LaTeX and HTML residue with the matched text; repairs only where unambiguous."""

from __future__ import annotations

import pytest

from audit.checks.markup_residue import markup_findings
from audit.clean import apply_repairs


@pytest.mark.parametrize(
    ("value", "kind", "match", "severity", "new"),
    [
        ("less than 4\\% of the loss", "latex escape", "\\%", "info", "%"),
        ("Medical 2D \\& 3D segmentation", "latex escape", "\\&", "info", "&"),
        ("on the Poincar\\'e ball", "latex accent", "\\'e", "info", "é"),
        ('the Schr\\"{o}dinger equation', "latex accent", '\\"{o}', "info", "ö"),
        ('na\\"ive training', "latex accent", '\\"i', "info", "ï"),
        (
            "through the lens of {\\em dynamical stability} here",
            "latex command",
            "{\\em dynamical stability}",
            "warning",
            None,
        ),
        ("the Kurdyka-{\\L}ojasiewicz inequality", "latex command", "{\\L}", "warning", None),
        ("we propose \\tool, a compiler", "latex command", "\\tool", "warning", None),
        ("as shown in \\cite{smith2020} before", "latex command", "\\cite{smith2020}", "warning", None),
        ("a cost of O(n^{2}) time", "latex script", "^{2}", "warning", None),
        ("bounded by $\\epsilon_t$ here", "latex math", "$\\epsilon_t$", "warning", None),
        ("augmentation schemes %that were proposed", "latex comment", "%", "warning", None),
        ("a <b>bold</b> claim", "html tag", "<b>", "warning", None),
        ("speed &amp; accuracy", "html entity", "&amp;", "info", "&"),
        ("the model&#39;s output", "html entity", "&#39;", "info", "'"),
    ],
)
def test_residue_is_found(value: str, kind: str, match: str, severity: str, new: str | None) -> None:
    found = markup_findings("r", "text", value)
    assert found, value
    first = found[0]
    assert (first.evidence["kind"], first.evidence["match"], first.severity) == (kind, match, severity)
    assert value[first.evidence["offset"] :].startswith(match)
    if new is None:
        assert first.repair is None
    else:
        fixed, applied = apply_repairs(value, [first.repair])
        assert applied == [True] and fixed == value.replace(match, new, 1)


@pytest.mark.parametrize(
    "value",
    [
        "gains reach 4.2% and 50 % of cases, 100%.",
        "It holds when x < y and y > z.",
        "R&D teams and AT&T write C++ code costing $5 to $10.",
        "e.g. in vision, as shown by Smith et al. (2020).",
        "the Poincaré ball and Łojasiewicz inequality",
        "Code: https://example.com/a?b=1&c=2#x and https://x.org/~u/%20a.",
    ],
)
def test_plain_prose_is_not_residue(value: str) -> None:
    assert markup_findings("r", "text", value) == []


def test_url_latex_is_left_to_malformed_url() -> None:
    assert markup_findings("r", "text", "see \\href{https://x.org}{code} and \\url{https://y.org}") == []
