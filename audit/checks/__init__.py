"""Checks: records -> findings. One module per check; adding a check means adding one file
and listing its class in :data:`CHECKS`.

Example:
    >>> sorted(CHECKS)
    ['boilerplate', 'conflicting_copies', 'empty_or_short', 'encoding', 'malformed_url', 'markup_residue',
     'truncation']
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding, FindingRow, finding_rows, findings_frame
from audit.checks.boilerplate import BoilerplateCheck
from audit.checks.conflicting_copies import ConflictingCopiesCheck
from audit.checks.empty_or_short import EmptyOrShortCheck
from audit.checks.encoding import EncodingCheck
from audit.checks.malformed_url import MalformedUrlCheck
from audit.checks.markup_residue import MarkupResidueCheck
from audit.checks.truncation import TruncationCheck
from audit.parallel import cores, forked_map, idle_cores, paused_gc

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


#: From this many records up, the checks run side by side on every core (below, a pool's
#: start-up and the pickled findings cost more than they save), when one is idle: on a busy
#: machine a second process only competes with the other jobs (measured at 100k records, load
#: 8-9 on 2 cores: 1 process 23.8 s wall / 12.5 s CPU, 2 processes 37.9 s / 15.6 s).
PARALLEL_MIN_RECORDS = 20_000
#: The order the checks are taken in by the processes: truncation first, taken by this process
#: (it has the most findings, so the most to pickle back), then the slowest first, so the last
#: one to start is a quick one (measured on 100k records).
_TAKEN_FIRST = ("truncation", "malformed_url", "conflicting_copies", "markup_residue", "boilerplate")


def _run_one(
    shared: tuple[pd.DataFrame, CheckContext, Mapping[str, Mapping[str, Any]]], name: str
) -> list[FindingRow]:
    records, context, options = shared
    return finding_rows(make_check(name, options.get(name, {})).run(records, context))


def run_checks(
    records: pd.DataFrame,
    names: Iterable[str] | None = None,
    context: CheckContext | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Run the named checks (default: all) and return their findings as a DataFrame.

    ``options[name]`` are keyword arguments for that check's class (its thresholds).
    ``workers``: processes to run the checks on (None: every core from
    :data:`PARALLEL_MIN_RECORDS` records up when a core is idle, else one). The findings are
    the same, in the same order, whatever the number.
    """
    selected = list(names) if names is not None else list(CHECKS)
    unknown = [n for n in selected if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    # A context of this run's own: the column lists it holds are dropped when the run ends.
    context = dataclasses.replace(context) if context is not None else CheckContext()
    options = options or {}
    for name in selected:
        make_check(name, options.get(name, {}))  # a bad option fails here, not inside a worker
    if workers is None:
        workers = cores() if len(records) >= PARALLEL_MIN_RECORDS and idle_cores() >= 1 else 1
    rank = {name: n for n, name in enumerate(_TAKEN_FIRST)}
    order = sorted(set(selected), key=lambda name: rank.get(name, len(rank)))
    if workers > 1:
        # Made before the fork, so each process reads them instead of decoding the text again.
        for name in ("id", "title", "text"):
            if name in records:
                context.column(records, name)
    with paused_gc():  # the findings are many small containers that all stay alive
        found = forked_map(_run_one, (records, context, options), order, workers)
        results = dict(zip(order, found, strict=True))
        return findings_frame([], [row for name in selected for row in results[name]])
