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

from audit.checks.base import Check, CheckContext, Finding
from audit.checks.batches import BATCH_RECORDS, run_batched
from audit.checks.boilerplate import BoilerplateCheck
from audit.checks.conflicting_copies import ConflictingCopiesCheck
from audit.checks.empty_or_short import EmptyOrShortCheck
from audit.checks.encoding import EncodingCheck
from audit.checks.malformed_url import MalformedUrlCheck
from audit.checks.markup_residue import MarkupResidueCheck
from audit.checks.table import FindingTable
from audit.checks.truncation import TruncationCheck
from audit.parallel import cores, idle_cores

__all__ = ["CHECKS", "Check", "CheckContext", "Finding", "FindingTable", "run_checks"]

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


def run_checks(
    records: pd.DataFrame,
    names: Iterable[str] | None = None,
    context: CheckContext | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int | None = None,
    batch: int = BATCH_RECORDS,
) -> FindingTable:
    """Run the named checks (default: all) and return their findings (see :mod:`audit.checks.table`;
    ``.frame()`` is the DataFrame with evidence and repair dicts).

    ``options[name]`` are keyword arguments for that check's class (its thresholds). The checks
    run over batches of ``batch`` records (:mod:`audit.checks.batches`) on ``workers``
    processes (None: every core from :data:`PARALLEL_MIN_RECORDS` records up when a core is
    idle, else one). The findings are the same, in the same order, whatever the two numbers.
    """
    selected = list(names) if names is not None else list(CHECKS)
    unknown = [n for n in selected if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    options = options or {}
    # Each check built here: a bad option fails before any work.
    checks = {name: make_check(name, options.get(name, {})) for name in dict.fromkeys(selected)}
    if workers is None:
        workers = cores() if len(records) >= PARALLEL_MIN_RECORDS and idle_cores() >= 1 else 1
    clusters = context.clusters if context is not None else None
    return run_batched(records, checks, selected, clusters, workers, batch)
