"""Checks: records -> findings. One module per check; adding a check means adding one file
and listing its class in :data:`CHECKS`.

Example:
    >>> sorted(CHECKS)
    ['boilerplate', 'empty_or_short', 'encoding', 'malformed_url', 'markup_residue', 'truncation']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, findings_frame
from audit.checks.boilerplate import BoilerplateCheck
from audit.checks.empty_or_short import EmptyOrShortCheck
from audit.checks.encoding import EncodingCheck
from audit.checks.malformed_url import MalformedUrlCheck
from audit.checks.markup_residue import MarkupResidueCheck
from audit.checks.truncation import TruncationCheck

__all__ = ["CHECKS", "Check", "CheckContext", "Finding", "run_checks"]

CHECKS: dict[str, type[Check]] = {
    cls.name: cls
    for cls in (
        TruncationCheck,
        MalformedUrlCheck,
        BoilerplateCheck,
        MarkupResidueCheck,
        EncodingCheck,
        EmptyOrShortCheck,
    )
}


def run_checks(
    records: pd.DataFrame,
    names: Iterable[str] | None = None,
    context: CheckContext | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Run the named checks (default: all) and return their findings as a DataFrame.

    ``options[name]`` are keyword arguments for that check's class (its thresholds).
    """
    selected = list(names) if names is not None else list(CHECKS)
    unknown = [n for n in selected if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    context = context or CheckContext()
    findings: list[Finding] = []
    for name in selected:
        findings.extend(CHECKS[name](**(options or {}).get(name, {})).run(records, context))
    return findings_frame(findings)
