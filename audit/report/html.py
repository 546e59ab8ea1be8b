"""report.html: one self-contained page (CSS, JS and SVG charts inline; no network), rendered
with Jinja2 with autoescaping on, so every string from the scraped data shows as text.

The page also carries a Content-Security-Policy that allows only its own script (by hash) and
no external resource: should a string ever slip through unescaped, the browser still refuses to
run it, and reports the refusal as a console error (which the browser test catches).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from audit.report import views


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("audit.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = lambda value: "" if value is None else f"{value:.1%}"
    env.filters["thousands"] = lambda value: f"{value:,}" if isinstance(value, int | float) else value
    return env


def _asset(name: str) -> str:
    return (files("audit.report") / "templates" / name).read_text(encoding="utf-8")


def _sha256_source(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def context(result: Any) -> dict[str, Any]:
    """Everything the template shows, from an :class:`audit.pipeline.AuditResult`."""
    report = result.report
    records, findings, clusters = result.records, result.found, result.clusters
    sources = views.SourceLookup(records)
    length_chart, limit = views.length_chart(records, findings)
    overlap_chart, overlap_sources = views.source_overlap_chart(clusters, sources)
    by_source_chart, finding_sources = views.findings_by_source_chart(findings, sources)
    rows = views.finding_rows(findings, records)
    return {
        "report": report,
        "cards": views.cards(report),
        "gate": views.gate_view(report.get("gate")),
        "suites": views.suites_view(report.get("expectations")),
        "length_chart": length_chart,
        "length_limit": limit,
        "overlap_chart": overlap_chart,
        "overlap_sources": overlap_sources,
        "findings_by_check_chart": views.findings_by_check_chart(report),
        "findings_by_source_chart": by_source_chart,
        "finding_sources": finding_sources,
        "cluster_size_chart": views.cluster_size_chart(clusters),
        "clusters": views.explorer(clusters, records, _removed_summary(result)),
        "cluster_count": len(clusters),
        "rows": rows,
        "finding_count": len(findings),
        "row_checks": sorted({r.check for r in rows}),
        "row_sources": sorted({r.source for r in rows}),
        "severities": ["error", "warning", "info"],
        "parameters": views.parameters(report),
        "timings": views.timings(report),
        "max_sources": views.MAX_SOURCES,
    }


def render_html(result: Any) -> str:
    view = getattr(result, "report_view", None)  # a run over partitions: the shown rows' texts only
    if view is not None:
        result = view()
    script = _asset("report.js")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            context(result),
            css=Markup(_asset("report.css")),
            script=Markup(script),
            script_hash=_sha256_source(script),
        )
    )


def _removed_summary(result: Any) -> pd.DataFrame:
    """The removed records' ids and reasons; without building removed.jsonl's texts when avoidable."""
    summary = getattr(result, "removed_summary", None)
    return summary() if summary is not None else result.removed
