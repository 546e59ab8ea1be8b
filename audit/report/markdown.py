"""report.md: the summary in GitHub-flavoured Markdown, short enough for a PR comment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from audit.checks.table import FindingTable


#: GitHub refuses comments over 65,536 characters; stay well under.
MAX_CHARS = 60_000
TOP_FINDINGS = 50
TOP_CLUSTERS = 10


def _cell(value: Any, limit: int = 120) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _gate_section(gate: dict[str, Any] | None) -> list[str]:
    """The gate's verdict and each failed criterion (``scrape-audit check`` only)."""
    if gate is None:
        return []
    verdict = "passed" if gate["passed"] else "FAILED"
    lines = [
        f"## Gate: {verdict}",
        "",
        f"{gate['failed']} of {gate['evaluated']} criteria failed (fail-on `{gate['fail_on']}`).",
        "",
    ]
    failed = [c for c in gate["criteria"] if not c["passed"]]
    if failed:
        lines += ["| criterion | why | records |", "|---|---|---|"]
        for c in failed[:TOP_FINDINGS]:
            ids = ", ".join(f"`{i}`" for i in c["record_ids"][:5])
            more = f" (+{len(c['record_ids']) - 5})" if len(c["record_ids"]) > 5 else ""
            lines.append(f"| {_cell(c['name'], 100)} | {_cell(c['message'])} | {ids}{more} |")
        lines.append("")
    return lines


def _expectations_section(expectations: dict[str, Any] | None) -> list[str]:
    """One row per Great Expectations result, failures first."""
    if not expectations or not expectations["suites"]:
        return []
    rows = [(s["name"], r) for s in expectations["suites"] for r in s["results"]]
    rows.sort(key=lambda row: row[1]["success"])
    lines = [
        f"## Expectations ({expectations['evaluated'] - expectations['failed']} of "
        f"{expectations['evaluated']} passed)",
        "",
        "| suite | expectation | severity | result | observed | failing records |",
        "|---|---|---|---|---|---|",
    ]
    for suite, r in rows:
        ids = ", ".join(f"`{i}`" for i in r["failing_ids"][:5])
        result = "pass" if r["success"] else "**fail**"
        lines.append(
            f"| {suite} | {_cell(r['name'], 100)} | {r['severity']} | {result} "
            f"| {_cell(r['observed'], 60)} | {ids} |"
        )
    lines.append("")
    return lines


def render_markdown(report: dict[str, Any], findings: FindingTable, clusters: pd.DataFrame) -> str:
    counts, dup = report["counts"], report["duplicates"]
    lines = [
        "# scrape-audit report",
        "",
        "| input | kept | removed | quarantined | duplicate clusters | duplicate rate |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {counts['input']} | {counts['kept']} | {counts['removed']} | {counts['quarantined']} "
        f"| {dup['clusters']} | {dup['duplicate_rate']:.2%} |",
        "",
        *_gate_section(report.get("gate")),
        "## Findings by check",
        "",
        "| check | error | warning | info |",
        "|---|---:|---:|---:|",
    ]
    for check, by_severity in sorted(report["findings_by_check_severity"].items()):
        cells = " | ".join(str(by_severity.get(s, 0)) for s in ("error", "warning", "info"))
        lines.append(f"| {check} | {cells} |")
    if not report["findings_by_check_severity"]:
        lines.append("| (none) | 0 | 0 | 0 |")
    lines += ["", f"Repairs applied in the cleaned corpus: {report['repairs_applied']}.", ""]

    if len(findings):
        top = findings.frame(findings.ranked()[:TOP_FINDINGS])  # only the rows shown are decoded
        lines += [
            f"## Top findings (first {len(top)} of {len(findings)})",
            "",
            "| severity | check | record | field | message | evidence | repair |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in top.itertuples():
            evidence = row.evidence.get("match", "") if isinstance(row.evidence, dict) else ""
            repair = row.repair["description"] if isinstance(row.repair, dict) else ""
            lines.append(
                f"| {row.severity} | {row.check} | `{_cell(row.record_id, 60)}` | {row.field} "
                f"| {_cell(row.message)} | `{_cell(evidence, 80)}` | {_cell(repair)} |"
            )
        lines.append("")
    lines += _expectations_section(report.get("expectations"))
    if len(clusters):
        biggest = clusters.sort_values(["size", "cluster_id"], ascending=[False, True], kind="stable")
        lines += [
            f"## Largest duplicate clusters (first {min(TOP_CLUSTERS, len(clusters))} of {len(clusters)})",
            "",
            "| cluster | size | kept | removed copies |",
            "|---|---:|---|---|",
        ]
        for row in biggest.head(TOP_CLUSTERS).itertuples():
            others = ", ".join(f"`{m}`" for m in row.members if m != row.representative)
            lines.append(f"| {row.cluster_id} | {row.size} | `{row.representative}` | {_cell(others, 300)} |")
        lines.append("")
    text = "\n".join(lines)
    if len(text) > MAX_CHARS:
        text = (
            text[: MAX_CHARS - 80].rsplit("\n", 1)[0]
            + "\n\n_(cut to fit a PR comment; see findings.jsonl)_\n"
        )
    return text
