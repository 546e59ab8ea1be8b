"""Checks: records -> findings. One module per check; adding a check means adding one file
and listing its class in :data:`CHECKS`.

Example:
    >>> sorted(CHECKS)
    ['boilerplate', 'conflicting_copies', 'empty_or_short', 'encoding', 'malformed_url', 'markup_residue',
     'truncation']
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, findings_frame
from audit.checks.boilerplate import BoilerplateCheck
from audit.checks.conflicting_copies import ConflictingCopiesCheck
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
        ConflictingCopiesCheck,
    )
}


def make_check(name: str, options: Mapping[str, Any]) -> Check:
    """The check ``name`` built with ``options``; an unknown option is a ValueError naming the known ones."""
    cls = CHECKS[name]
    parameters = inspect.signature(cls).parameters.values()
    known = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) for check {name}: {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
        )
    return cls(**options)


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
        findings.extend(make_check(name, (options or {}).get(name, {})).run(records, context))
    return findings_frame(findings)
