"""What every check shares: the finding model and the check interface.

A check turns records into findings. A finding names the record, the field, what is wrong
(``message``), why we think so (``evidence``: the matched substring and its offset, a limit, a
longer copy's id...) and, when a repair is safe, the ``repair`` that the cleaned corpus gets.

A repair is a substring replacement in one field::

    {"offset": 120, "old": "https: //", "new": "https://", "description": "..."}

Example:
    >>> finding = Finding("r1", "demo", "info", "text", "just a demo", {"match": "x", "offset": 0})
    >>> finding.as_dict()["severity"]
    'info'
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import pandas as pd

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
FINDING_COLUMNS = ["record_id", "check", "severity", "field", "message", "evidence", "repair"]


class Finding(NamedTuple):
    """One finding. A named tuple, not a dataclass: a check makes one per finding (130k on the
    100k benchmark corpus), and a tuple is built, read as a frame row and pickled back from a
    worker process several times faster; it is already the row of :data:`FINDING_COLUMNS`."""

    record_id: str
    check: str
    severity: Severity
    field: str
    message: str
    evidence: dict[str, Any]
    repair: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The finding as a dict, with its own copies of the evidence and repair dicts."""
        values = dict(zip(FINDING_COLUMNS, self, strict=True))
        values["evidence"] = copy.deepcopy(self.evidence)
        values["repair"] = copy.deepcopy(self.repair)
        return values


def make_repair(offset: int, old: str, new: str, description: str) -> dict[str, Any]:
    """A substring replacement at ``offset`` of one field."""
    return {"offset": offset, "old": old, "new": new, "description": description}


def for_record(record_id: str, found: list[Finding]) -> list[Finding]:
    """Copies of ``found`` (made for another record with the same value) naming ``record_id``,
    each with its own evidence and repair dicts."""
    return [
        Finding(
            record_id,
            f.check,
            f.severity,
            f.field,
            f.message,
            dict(f.evidence),
            dict(f.repair) if f.repair is not None else None,
        )
        for f in found
    ]


#: A finding as a plain tuple, in the order of :data:`FINDING_COLUMNS`.
FindingRow = tuple[str, str, str, str, str, dict[str, Any], dict[str, Any] | None]


def finding_rows(findings: list[Finding]) -> list[FindingRow]:
    """The findings as plain tuples: what a Dask partition holds and sends back (a plain tuple
    unpickles faster than a named one: no class to call)."""
    return list(map(tuple, findings))


@dataclass
class CheckContext:
    """What a check may know beyond the records: the dedup clusters, when dedup ran; and the
    records' columns as Python lists, made once for all the checks that run with this context."""

    clusters: pd.DataFrame | None = None
    #: What checks run over one batch of a corpus need of the whole corpus, by name (gathered
    #: first by :func:`audit.checks.run_checks`): ``"truncation"`` (its vocabulary's answers and
    #: length limits), ``"titled_sources"`` (empty_or_short). Empty: the records are the corpus.
    corpus: dict[str, Any] = dataclasses.field(default_factory=dict)
    _columns: dict[str, tuple[pd.DataFrame, list[Any]]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def column(self, records: pd.DataFrame, name: str) -> list[Any]:
        """``records[name].tolist()``, made once per frame and column (the text column of 100k
        records takes 0.26 s to turn into Python strings, and most checks read it). Read only."""
        held = self._columns.get(name)
        if held is None or held[0] is not records:
            held = self._columns[name] = (records, records[name].tolist())
        return held[1]

    def __getstate__(self) -> dict[str, Any]:
        # The column lists are remade, never sent.
        return {"clusters": self.clusters, "corpus": self.corpus, "_columns": {}}


def column(records: pd.DataFrame, name: str, context: CheckContext | None) -> list[Any]:
    """``records[name].tolist()``, shared through ``context`` when there is one."""
    return context.column(records, name) if context is not None else records[name].tolist()


class Check(ABC):
    """Records -> findings. Subclasses set ``name`` and implement :meth:`run`."""

    name: str
    #: One line for ``--help`` and the README.
    description: str

    @abstractmethod
    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        """Findings for ``records`` (schema of :mod:`audit.schema`)."""
