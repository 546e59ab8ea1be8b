"""The run summary behind report.json and report.md."""

from __future__ import annotations

from collections.abc import Sized
from typing import TYPE_CHECKING, Any

import pandas as pd

from audit._version import __version__
from audit.checks.base import SEVERITIES

if TYPE_CHECKING:
    from audit.checks.table import FindingTable


def summarise(
    *,
    records: pd.DataFrame,
    quarantine: pd.DataFrame,
    clusters: pd.DataFrame,
    clean: Sized,
    removed: pd.DataFrame,
    findings: FindingTable,
    files: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    parameters: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The machine-readable summary of one run (report.json).

    ``clean`` is only counted (the cleaned corpus or anything of its length); of ``removed``
    only ``reason`` is read.
    """
    by_check: dict[str, int] = {}
    by_severity = dict.fromkeys(SEVERITIES, 0)
    by_check_severity: dict[str, dict[str, int]] = {}
    for (check, severity), count in findings.counts().items():  # in order of (check, severity)
        by_check_severity.setdefault(check, {})[severity] = count
        by_check[check] = by_check.get(check, 0) + count
        if severity in by_severity:
            by_severity[severity] += count
    input_count = len(records) + len(quarantine)
    removed_reasons = removed["reason"].value_counts().to_dict() if len(removed) else {}
    return {
        "tool": {"name": "scrape-audit", "version": __version__},
        "parameters": parameters,
        "inputs": files,
        "skipped_inputs": skipped,
        "counts": {
            "input": input_count,
            "records": len(records),
            "kept": len(clean),
            "removed": len(removed),
            "quarantined": len(quarantine),
        },
        "duplicates": {
            "clusters": len(clusters),
            "records_in_clusters": int(clusters["size"].sum()) if len(clusters) else 0,
            "removed": len(removed),
            "duplicate_rate": round(len(removed) / len(records), 6) if len(records) else 0.0,
            "removed_by_reason": {k: int(v) for k, v in removed_reasons.items()},
        },
        "findings": len(findings),
        "findings_by_check": {k: int(v) for k, v in sorted(by_check.items())},
        "findings_by_severity": by_severity,
        "findings_by_check_severity": by_check_severity,
        "repairs_applied": findings.applied_count(),
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
    }
