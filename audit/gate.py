"""The CI gate: decide pass/fail from a run's report, its thresholds and an optional baseline.

Each rule is a :class:`Criterion` (one JUnit test case); the gate passes when all pass:

- ``duplicates``: the duplicate rate is at most ``max_duplicate_rate`` (when set);
- ``findings:<check>``, one per check that ran: no finding at or above ``fail_on`` severity, or,
  when ``max_findings[check] = N`` is set, at most N findings of that check (any severity);
- ``expectation:<suite>:<expectation>``, one per expectation: it succeeded, or its severity
  (GX ``critical`` = error, ``warning``, ``info``) is below ``fail_on``;
- ``baseline:*`` (with a baseline report): the duplicate rate and each check's findings per
  record are no higher than the baseline's plus ``baseline_tolerance`` (in rate points: 0.01 is
  one record in a hundred); no more failed expectations than the baseline.

Example:
    >>> report = {"counts": {"records": 10}, "duplicates": {"duplicate_rate": 0.2},
    ...           "parameters": {"checks": ["truncation"]}, "findings_by_check_severity": {}}
    >>> gate = evaluate_gate(report, None, GateConfig(max_duplicate_rate=0.1))
    >>> gate.passed, gate.failures[0].message
    (False, 'duplicate rate 20.00% is above the limit 10.00%')
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from audit.checks.base import SEVERITIES

if TYPE_CHECKING:
    from audit.checks.table import FindingTable

#: Failing record ids kept per criterion (report.json, JUnit).
MAX_RECORD_IDS = 50
#: GitHub shows at most 10 error annotations per step; more are dropped, so we send no more.
MAX_ANNOTATIONS = 10
#: Failed criteria listed in the one-screen summary.
MAX_SUMMARY_FAILURES = 12


def at_or_above(severity: str, fail_on: str) -> bool:
    """True when ``severity`` is ``fail_on`` or more severe (error > warning > info)."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(fail_on)


@dataclass(frozen=True)
class GateConfig:
    """The thresholds of ``scrape-audit check`` (see the module docstring)."""

    fail_on: str = "error"
    max_duplicate_rate: float | None = None
    max_findings: Mapping[str, int] = field(default_factory=dict)
    #: A previous run's report.json, already loaded; ``baseline_path`` only names it.
    baseline: Mapping[str, Any] | None = None
    baseline_path: str | None = None
    baseline_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITIES:
            raise ValueError(f"fail-on must be one of {', '.join(SEVERITIES)}, got {self.fail_on!r}")
        if self.max_duplicate_rate is not None and not 0.0 <= self.max_duplicate_rate <= 1.0:
            raise ValueError(f"max-duplicate-rate must be in [0, 1], got {self.max_duplicate_rate}")
        if self.baseline_tolerance < 0:
            raise ValueError(f"baseline-tolerance must be >= 0, got {self.baseline_tolerance}")
        for check, limit in self.max_findings.items():
            if not isinstance(limit, int) or limit < 0:
                raise ValueError(f"max-findings {check}={limit!r}: the limit must be an integer >= 0")
        if self.baseline is not None:
            for key in ("counts", "duplicates", "findings_by_check"):
                if key not in self.baseline:
                    raise ValueError(f"{self.baseline_path or 'baseline'}: not a report.json (no {key!r})")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self) | {"max_findings": dict(self.max_findings)}
        values.pop("baseline")
        return values


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A previous run's report.json, for ``baseline``; ValueError naming the file if unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the baseline report: {error}") from error
    if not isinstance(report, dict):
        raise ValueError(f"{path}: not a report.json (not a JSON object)")
    return report


@dataclass(frozen=True)
class Criterion:
    """One rule of the gate and its outcome."""

    name: str
    kind: str  # duplicates | findings | expectation | baseline
    passed: bool
    message: str
    observed: Any = None
    limit: Any = None
    record_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    fail_on: str
    criteria: list[Criterion]

    @property
    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        """The ``gate`` section of report.json."""
        return {
            "passed": self.passed,
            "fail_on": self.fail_on,
            "evaluated": len(self.criteria),
            "failed": len(self.failures),
            "criteria": [asdict(c) for c in self.criteria],
        }


def _duplicates(report: Mapping[str, Any], gate: GateConfig) -> Criterion:
    rate = report["duplicates"]["duplicate_rate"]
    limit = gate.max_duplicate_rate
    if limit is None:
        return Criterion("duplicates", "duplicates", True, f"duplicate rate {rate:.2%} (no limit set)", rate)
    passed = rate <= limit
    relation = "is within" if passed else "is above"
    return Criterion(
        "duplicates",
        "duplicates",
        passed,
        f"duplicate rate {rate:.2%} {relation} the limit {limit:.2%}",
        rate,
        limit,
    )


def _first_ids(findings: FindingTable, rows: np.ndarray, most: int) -> list[str]:
    """The first ``most`` distinct record ids of the findings at ``rows``, in order."""
    ids: dict[str, None] = {}
    for start in range(0, len(rows), 10_000):  # read a slice at a time, up to the ids wanted
        ids.update(dict.fromkeys(findings.values("record_id", rows[start : start + 10_000])))
        if len(ids) >= most:
            break
    return list(ids)[:most]


def _findings(report: Mapping[str, Any], findings: FindingTable | None, gate: GateConfig) -> list[Criterion]:
    by_check = report.get("findings_by_check_severity", {})
    checks = list(report.get("parameters", {}).get("checks") or []) or sorted(by_check)
    criteria = []
    for check in checks:
        counts = by_check.get(check, {})
        known = findings is not None and len(findings) > 0
        if check in gate.max_findings:
            observed, limit = sum(counts.values()), gate.max_findings[check]
            what = f"{observed} findings (any severity), limit {limit}"
            severities = None
        else:
            observed = sum(n for s, n in counts.items() if at_or_above(s, gate.fail_on))
            limit = 0
            what = f"{observed} findings at or above {gate.fail_on}"
            severities = [s for s in SEVERITIES if at_or_above(s, gate.fail_on)]
        passed = observed <= limit
        ids: list[str] = []
        if known:
            assert findings is not None
            failing = np.flatnonzero(findings.mask([check], severities))
            ids = [] if passed else _first_ids(findings, failing, MAX_RECORD_IDS)
            if "applied" in findings.table.column_names and len(failing):
                applied = int(findings.table["applied"].to_numpy()[failing].sum())
                what += f" ({applied} repaired in the cleaned corpus)"
        criteria.append(
            Criterion(
                f"findings:{check}",
                "findings",
                passed,
                what,
                observed,
                limit,
                [] if passed else ids[:MAX_RECORD_IDS],
            )
        )
    return criteria


def _expectations(report: Mapping[str, Any], gate: GateConfig) -> list[Criterion]:
    criteria = []
    for suite in (report.get("expectations") or {}).get("suites", []):
        for result in suite["results"]:
            counts = at_or_above(result["severity"], gate.fail_on)
            passed = result["success"] or not counts
            state = "passed" if result["success"] else f"failed ({result['severity']})"
            if result.get("exception"):
                state += f": {result['exception']}"
            observed = result["observed_value"]
            state += f"; {result['observed']}"
            criteria.append(
                Criterion(
                    f"expectation:{suite['name']}:{result['name']}",
                    "expectation",
                    passed,
                    f"{suite['name']}: {result['name']} {state}",
                    observed,
                    None,
                    [] if result["success"] else result["failing_ids"][:MAX_RECORD_IDS],
                )
            )
    return criteria


def _per_record(report: Mapping[str, Any], count: int) -> float:
    records = report["counts"].get("records") or 0
    return count / records if records else 0.0


def _baseline(report: Mapping[str, Any], gate: GateConfig) -> list[Criterion]:
    old, tol = gate.baseline, gate.baseline_tolerance
    if old is None:
        return []
    new_rate, old_rate = report["duplicates"]["duplicate_rate"], old["duplicates"]["duplicate_rate"]
    passed = new_rate <= old_rate + tol + 1e-12
    criteria = [
        Criterion(
            "baseline:duplicates",
            "baseline",
            passed,
            f"duplicate rate {new_rate:.2%}, baseline {old_rate:.2%}"
            + ("" if passed else f" (worse by more than the tolerance {tol:.2%})"),
            new_rate,
            old_rate + tol,
        )
    ]
    new_checks, old_checks = report.get("findings_by_check", {}), old.get("findings_by_check", {})
    for check in sorted(set(new_checks) | set(old_checks)):
        new_n, old_n = new_checks.get(check, 0), old_checks.get(check, 0)
        new_r, old_r = _per_record(report, new_n), _per_record(old, old_n)
        passed = new_r <= old_r + tol + 1e-12
        criteria.append(
            Criterion(
                f"baseline:findings:{check}",
                "baseline",
                passed,
                f"{new_n} findings ({new_r:.4f} per record), baseline {old_n} ({old_r:.4f})"
                + ("" if passed else " — regressed"),
                new_n,
                old_n,
            )
        )
    if report.get("expectations") and old.get("expectations"):
        new_f, old_f = report["expectations"]["failed"], old["expectations"]["failed"]
        criteria.append(
            Criterion(
                "baseline:expectations",
                "baseline",
                new_f <= old_f,
                f"{new_f} failed expectations, baseline {old_f}",
                new_f,
                old_f,
            )
        )
    return criteria


def evaluate_gate(report: Mapping[str, Any], findings: FindingTable | None, gate: GateConfig) -> GateResult:
    """Every criterion for one run's ``report`` (report.json content) and its ``findings``."""
    criteria = [_duplicates(report, gate), *_findings(report, findings, gate)]
    criteria += _expectations(report, gate) + _baseline(report, gate)
    return GateResult(all(c.passed for c in criteria), gate.fail_on, criteria)


def gate_summary(gate: Mapping[str, Any]) -> list[str]:
    """A few lines for the terminal: the verdict, then each failed criterion."""
    failed = [c for c in gate["criteria"] if not c["passed"]]
    verdict = "PASSED" if gate["passed"] else "FAILED"
    counts = f"{gate['failed']} of {gate['evaluated']} criteria failed, fail-on {gate['fail_on']}"
    lines = [f"gate: {verdict} ({counts})"]
    for criterion in failed[:MAX_SUMMARY_FAILURES]:
        ids = criterion["record_ids"]
        shown = f" [{', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}]" if ids else ""
        lines.append(f"  FAIL {criterion['name']}: {criterion['message']}{shown}")
    if len(failed) > MAX_SUMMARY_FAILURES:
        lines.append(f"  ... and {len(failed) - MAX_SUMMARY_FAILURES} more (see report.json)")
    return lines


def junit_xml(gate: Mapping[str, Any]) -> str:
    """JUnit XML: one test case per criterion; a failure lists the failing record ids."""
    criteria = gate["criteria"]
    failures = sum(not c["passed"] for c in criteria)
    suites = ET.Element("testsuites", name="scrape-audit", tests=str(len(criteria)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="scrape-audit gate",
        tests=str(len(criteria)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for criterion in criteria:
        case = ET.SubElement(
            suite, "testcase", classname=f"scrape-audit.{criterion['kind']}", name=criterion["name"]
        )
        if criterion["passed"]:
            ET.SubElement(case, "system-out").text = criterion["message"]
        else:
            failure = ET.SubElement(case, "failure", message=criterion["message"], type=criterion["kind"])
            failure.text = (
                "\n".join(["failing records:", *criterion["record_ids"]])
                if criterion["record_ids"]
                else criterion["message"]
            )
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(
    gate: Mapping[str, Any], findings: FindingTable, records: pd.DataFrame, files: list[dict[str, Any]]
) -> list[str]:
    """GitHub Actions workflow commands: one ``::error`` per failed criterion that is not a
    check, then one per finding of a failed check (with the record's file and line); at most
    :data:`MAX_ANNOTATIONS` (GitHub drops the rest)."""
    paths = {f["source"]: f["path"] for f in files}
    where = {
        rid: (paths.get(src, src), int(line))
        for rid, src, line in zip(records["id"], records["source"], records["line"], strict=True)
    }
    failing_checks = {
        c["name"].split(":", 1)[1] for c in gate["criteria"] if not c["passed"] and c["kind"] == "findings"
    }
    lines = []
    for criterion in gate["criteria"]:
        if not criterion["passed"] and criterion["kind"] != "findings":
            title = _escape_property(f"scrape-audit {criterion['name']}")
            lines.append(f"::error title={title}::" + _escape_data(criterion["message"]))
    rows = np.flatnonzero(findings.mask(sorted(failing_checks))) if len(findings) else np.zeros(0, np.int64)
    for start in range(0, len(rows), 10_000):  # a slice of findings at a time, up to the most shown
        if len(lines) >= MAX_ANNOTATIONS:
            break
        part = rows[start : start + 10_000]
        columns = (findings.values(name, part) for name in ("record_id", "check", "severity", "message"))
        for record_id, check, severity, message in zip(*columns, strict=True):
            if record_id not in where:
                continue
            path, line = where[record_id]
            title = _escape_property(f"scrape-audit {check} ({severity})")
            lines.append(
                f"::error file={_escape_property(path)},line={line},title={title}::"
                + _escape_data(f"{record_id}: {message}")
            )
    return lines[:MAX_ANNOTATIONS]
