"""Great Expectations suites: load JSON suites from a directory, validate the audit's tables.

A suite is a GX 1.x ``ExpectationSuite`` as plain JSON, plus the table it validates in
``meta.table``::

    {"name": "input_records", "meta": {"table": "records"},
     "expectations": [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}]}

Tables (built by :func:`validation_tables`):

- ``records``: the input records as read (``id``, ``source``, ``line``, ``title``, ``text``,
  ``url``);
- ``corpus``: every input, with its fate: ``id``, ``status`` (``kept``/``removed``/``quarantined``),
  ``title``, ``text``, ``url`` (cleaned, for kept records), ``norm_text`` (kept records only),
  ``unrepaired_errors`` (kept records only: error findings whose repair was not applied),
  ``reason``, ``duplicate_of``, ``accounted`` (kept; or removed with a reason and a kept
  ``duplicate_of``; or quarantined with an error).

Validation uses an ephemeral GX context (no project folder, nothing written). Pitfalls of GX
1.x handled here: an expectation of an unregistered type is dropped silently by GX, so the
number built is compared with the number in the file (:class:`SuiteError` otherwise);
``result_format`` is passed to ``validate()``, where it takes effect; failing rows are named by
``unexpected_index_column_names=["id"]``; a suite "fails" even when only ``warning`` expectations
fail, so each result carries its own severity and the gate decides. great_expectations is
imported only when suites run (about 3 s).

Example:
    >>> suites = load_suites("expectations")                       # doctest: +SKIP
    >>> summary = validate_suites(suites, validation_tables(...))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from audit.normalise import add_normalised

if TYPE_CHECKING:
    from audit.checks.table import FindingTable

TABLES = ("records", "corpus")
#: GX severities -> the audit's finding severities (one scale for the gate).
SEVERITY_FROM_GX = {"critical": "error", "warning": "warning", "info": "info"}
#: Failing record ids kept per expectation in report.json.
MAX_FAILING_IDS = 100
RECORD_COLUMNS = ["id", "source", "line", "title", "text", "url"]


class SuiteError(Exception):
    """A suite file cannot be used as written (bad JSON, unknown table or expectation type)."""


@dataclass(frozen=True)
class SuiteFile:
    """One suite as read from disk, before GX sees it."""

    path: Path
    name: str
    table: str
    expectations: list[dict[str, Any]]


def load_suites(directory: str | os.PathLike[str]) -> list[SuiteFile]:
    """Every ``*.json`` suite in ``directory`` (sorted by file name), checked for shape."""
    folder = Path(directory)
    if not folder.is_dir():
        raise SuiteError(f"{folder}: expectations directory not found")
    suites = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SuiteError(f"{path}: not a readable JSON suite: {error}") from error
        if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
            raise SuiteError(f"{path}: a suite is a JSON object with an 'expectations' list")
        table = (data.get("meta") or {}).get("table", "records")
        if table not in TABLES:
            raise SuiteError(f"{path}: meta.table {table!r} is not one of {', '.join(TABLES)}")
        suites.append(SuiteFile(path, str(data.get("name") or path.stem), table, data["expectations"]))
    return suites


def unrepaired_errors(findings: FindingTable) -> Counter[str]:
    """Error findings whose repair was not applied, counted by record id."""
    if not len(findings):
        return Counter()
    errors = findings.mask(severities=["error"])
    if "applied" in findings.table.column_names:
        errors &= ~findings.table["applied"].to_numpy()
    return Counter(findings.values("record_id", np.flatnonzero(errors)))


def kept_table(clean: pd.DataFrame, unrepaired: Mapping[str, int]) -> pd.DataFrame:
    """The ``corpus`` table's rows of the kept records (``clean``: the cleaned corpus)."""
    kept = clean.reindex(columns=["id", "title", "text", "url"])
    kept = add_normalised(kept) if len(kept) else kept.assign(norm_text=pd.Series(dtype=object))
    return kept.assign(
        status="kept",
        unrepaired_errors=[float(unrepaired.get(i, 0)) for i in kept["id"]],
        reason=None,
        duplicate_of=None,
        accounted=True,
    )


def removed_accounted(removed: pd.DataFrame, kept_ids: pd.Series) -> list[bool]:
    """Whether each removed record is accounted for: it has a reason, and it copies a kept
    record (``kept_ids``; with an index, a record kept by an earlier run)."""
    copies_kept = removed["duplicate_of"].isin(kept_ids).to_numpy(bool)
    if "duplicate_of_run" in removed:
        copies_kept = copies_kept | removed["duplicate_of_run"].notna().to_numpy(bool)
    return [
        bool(reason) and copied
        for reason, copied in zip(removed["reason"], copies_kept.tolist(), strict=True)
    ]


def removed_table(removed: pd.DataFrame, accounted: Sequence[bool]) -> pd.DataFrame:
    """The ``corpus`` table's rows of the removed records (see :func:`removed_accounted`)."""
    gone = removed.reindex(columns=["id", "reason", "duplicate_of"])
    return gone.assign(status="removed", accounted=list(accounted))


def quarantined_table(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The ``corpus`` table's rows of the quarantined inputs (named ``source:line``)."""
    held = pd.DataFrame(
        {
            "id": [f"{s}:{n}" for s, n in zip(quarantine["source"], quarantine["line"], strict=True)],
            "status": "quarantined",
            "reason": list(quarantine["error"]),
        }
    )
    return held.assign(accounted=[bool(e) for e in held["reason"]])


CORPUS_COLUMNS = ["id", "status", "title", "text", "url", "norm_text", "unrepaired_errors", "reason"]
CORPUS_COLUMNS += ["duplicate_of", "accounted"]
_NUMERIC = ("unrepaired_errors", "accounted")


def corpus_table(*blocks: pd.DataFrame) -> pd.DataFrame:
    """The ``corpus`` table: its blocks (kept, removed, quarantined rows) one after another."""
    parts = [part.reindex(columns=CORPUS_COLUMNS) for part in blocks if len(part)]
    corpus = pd.concat(parts) if parts else pd.DataFrame(columns=CORPUS_COLUMNS)
    # One dtype per column whichever blocks a part of the table has (a part without kept rows
    # would get float columns of NaN where the whole table has strings).
    corpus = corpus.astype({name: object for name in CORPUS_COLUMNS if name not in _NUMERIC})
    corpus["accounted"] = corpus["accounted"].astype(bool)
    return corpus


def validation_tables(
    records: pd.DataFrame,
    clean: pd.DataFrame,
    removed: pd.DataFrame,
    quarantine: pd.DataFrame,
    findings: FindingTable,
) -> dict[str, pd.DataFrame]:
    """The DataFrames suites validate, by table name (see the module docstring)."""
    kept = kept_table(clean, unrepaired_errors(findings))
    gone = removed_table(removed, removed_accounted(removed, kept["id"]))
    corpus = corpus_table(kept, gone, quarantined_table(quarantine)).reset_index(drop=True)
    return {"records": records.reindex(columns=RECORD_COLUMNS), "corpus": corpus}


@contextmanager
def _quiet_gx_logging() -> Iterator[None]:
    """GX logs a traceback when it drops an expectation; we raise our own, clearer error."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _import_plugins(directories: Sequence[Path]) -> None:
    """Import every ``*.py`` next to the suites, so custom expectation classes register."""
    for folder in directories:
        for path in sorted(folder.glob("*.py")):
            name = f"scrape_audit_expectations_{path.stem}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise SuiteError(f"{path}: cannot import")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)


def _build_suite(suite: SuiteFile) -> Any:
    """A GX ExpectationSuite with every expectation of the file, or :class:`SuiteError`."""
    from great_expectations.core import ExpectationSuite

    built = []
    with _quiet_gx_logging():
        for number, spec in enumerate(suite.expectations, start=1):
            try:
                one = ExpectationSuite(name=suite.name, expectations=[spec]).expectations
            except Exception as error:  # GX raises many types for a bad configuration
                raise SuiteError(f"{suite.path}: expectation {number}: {error}") from error
            if len(one) != 1:  # GX dropped it: its type is not registered
                kind = spec.get("type") if isinstance(spec, dict) else spec
                raise SuiteError(f"{suite.path}: expectation {number}: unknown expectation type {kind!r}")
            built.extend(one)
    gx_suite = ExpectationSuite(name=suite.name, expectations=[e.configuration for e in built])
    if len(gx_suite.expectations) != len(suite.expectations):
        raise SuiteError(
            f"{suite.path}: {len(suite.expectations)} expectations in the file, "
            f"{len(gx_suite.expectations)} loaded"
        )
    return gx_suite


def _failing_ids(result: dict[str, Any]) -> list[str]:
    ids = []
    for row in result.get("unexpected_index_list") or []:
        if isinstance(row, dict) and "id" in row:
            ids.append(str(row["id"]))
    return ids


def describe(config: Any, result: dict[str, Any], success: bool, exception: str | None) -> dict[str, Any]:
    """One expectation's entry in report.json: its GX configuration, GX's ``result`` dict (or
    one combined the same way), whether it passed, and the exception it raised, if any."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    severity = getattr(config.severity, "value", str(config.severity))
    failing = _failing_ids(result)
    # Aggregate expectations report an observed value; per-row ones count unexpected rows.
    if "observed_value" in result:
        observed, observed_text = result["observed_value"], f"observed {result['observed_value']}"
    else:
        observed = result.get("unexpected_count")
        observed_text = f"{observed} of {result.get('element_count')} rows unexpected"
    column = kwargs.get("column")
    return {
        "expectation": config.type,
        "name": f"{config.type}({column})" if column else config.type,
        "column": column,
        "kwargs": kwargs,
        "severity": SEVERITY_FROM_GX.get(severity, "error"),
        "success": bool(success),
        "observed_value": observed,
        "observed": observed_text,
        "element_count": result.get("element_count"),
        "unexpected_count": result.get("unexpected_count"),
        "failing_ids": failing[:MAX_FAILING_IDS],
        "exception": exception,
        "description": (config.meta or {}).get("description"),
    }


def raised(gx_result: Any) -> str | None:
    """The message of the exception a GX expectation result carries, if it raised one.

    GX gives it as one entry, or (when a metric failed, e.g. a column that does not exist) as
    one entry per failed metric: the first is named."""
    info = gx_result.exception_info or {}
    entries = [info] if "raised_exception" in info else [e for e in info.values() if isinstance(e, dict)]
    return next((e.get("exception_message") for e in entries if e.get("raised_exception")), None)


class GxSession:
    """Great Expectations, ready to validate DataFrames: an ephemeral context (nothing written),
    the audit's and the suites' folders' expectation types registered, progress bars off."""

    def __init__(self, suites: Sequence[SuiteFile]) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        import audit.custom_expectations  # noqa: F401  (registers the audit's expectation types)

        _import_plugins(sorted({s.path.parent for s in suites}))
        try:
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._source = context.data_sources.add_pandas("scrape_audit")
        except Exception as error:  # a GX failure is not a data failure: exit 2, not 1
            raise SuiteError(f"Great Expectations could not start: {error}") from error
        self._definitions: dict[str, Any] = {}

    def validate(self, suite: SuiteFile, gx_suite: Any, frame: pd.DataFrame, index: list[str] | None) -> Any:
        """GX's validation of ``frame`` (the suite's table); failing rows named by the columns
        ``index``, or by the frame's index when None."""
        result_format: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": 20}
        if index is not None:
            result_format["unexpected_index_column_names"] = index
        try:
            if suite.table not in self._definitions:
                asset = self._source.add_dataframe_asset(suite.table)
                self._definitions[suite.table] = asset.add_batch_definition_whole_dataframe("whole")
            batch = self._definitions[suite.table].get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(gx_suite, result_format=result_format)
        except Exception as error:  # a GX failure is not a data failure: exit 2, not 1
            raise SuiteError(f"{suite.path}: Great Expectations failed while validating: {error}") from error


#: The kwargs that name the columns an expectation reads.
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


def read_columns(frame: pd.DataFrame, gx_suite: Any) -> pd.DataFrame:
    """``frame`` with only the columns ``gx_suite`` reads (and ``id``, which names failing rows).

    GX fingerprints each batch by hashing every cell of it; the columns no expectation reads are
    left out of that work. An expectation that names no column (a table expectation) or filters
    rows (``row_condition``) may read any: then the whole frame."""
    wanted = {"id"}
    for expectation in gx_suite.expectations:
        kwargs = expectation.configuration.kwargs
        named = [kwargs[k] for k in _COLUMN_KWARGS if k in kwargs]
        if not named or kwargs.get("row_condition"):
            return frame
        for value in named:
            wanted.update(value if isinstance(value, list) else [value])
    return frame[[name for name in frame.columns if name in wanted]]


def build_suites(suites: Sequence[SuiteFile]) -> tuple[GxSession, list[Any]]:
    """A GX session and each suite built in it (:class:`SuiteError` for a suite GX cannot load)."""
    session = GxSession(suites)
    return session, [_build_suite(s) for s in suites]


def summary(
    suites: Sequence[SuiteFile], results: Sequence[list[dict[str, Any]]], rows: Sequence[int]
) -> dict[str, Any]:
    """The ``expectations`` section of report.json from each suite's described results."""
    out = [
        {
            "name": suite.name,
            "file": str(suite.path),
            "table": suite.table,
            "rows": count,
            "success": all(r["success"] for r in described),
            "evaluated": len(described),
            "failed": sum(not r["success"] for r in described),
            "results": list(described),
        }
        for suite, described, count in zip(suites, results, rows, strict=True)
    ]
    failed = [r for s in out for r in s["results"] if not r["success"]]
    by_severity: dict[str, int] = {}
    for r in failed:
        by_severity[r["severity"]] = by_severity.get(r["severity"], 0) + 1
    return {
        "suites": out,
        "evaluated": sum(s["evaluated"] for s in out),
        "failed": len(failed),
        "failed_by_severity": by_severity,
    }


def validate_suites(suites: Sequence[SuiteFile], tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Validate each suite against its table; the ``expectations`` section of report.json."""
    if not suites:
        return summary([], [], [])
    session, gx_suites = build_suites(suites)
    results = []
    for suite, gx_suite in zip(suites, gx_suites, strict=True):
        validation = session.validate(suite, gx_suite, read_columns(tables[suite.table], gx_suite), ["id"])
        results.append(
            [describe(r.expectation_config, r.result or {}, r.success, raised(r)) for r in validation.results]
        )
    return summary(suites, results, [len(tables[s.table]) for s in suites])
