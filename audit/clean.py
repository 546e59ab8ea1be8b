"""Clean: representatives and untouched records, with safe repairs applied -> the cleaned corpus.

Every input record ends in exactly one place: the cleaned corpus (kept, maybe repaired), the
removed records (with ``reason`` and ``duplicate_of``), or quarantine (from ingest).

A repair from a finding is applied to a kept record when the field still holds the finding's
``old`` text at its ``offset``; overlapping repairs on one field apply the first (by offset)
and skip the rest, which stay reported with ``applied`` false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from audit.dedup import DedupResult
from audit.frames import row_dicts
from audit.urls import find_urls

CLEAN_COLUMNS = ["id", "title", "text", "url", "urls", "sources", "repairs"]
REMOVED_COLUMNS = [
    "id",
    "source",
    "line",
    "title",
    "text",
    "url",
    "reason",
    "duplicate_of",
    "jaccard",
    "containment",
]


@dataclass
class CleanResult:
    clean: pd.DataFrame
    removed: pd.DataFrame
    #: The findings, with an ``applied`` column: whether its repair is in the cleaned corpus.
    findings: pd.DataFrame


def apply_repairs(value: str, repairs: list[dict[str, Any]]) -> tuple[str, list[bool]]:
    """Apply substring repairs to ``value``; return the new value and which were applied."""
    order = sorted(range(len(repairs)), key=lambda i: (repairs[i]["offset"], i))
    applied = [False] * len(repairs)
    chosen: list[int] = []
    end = -1
    for i in order:
        repair = repairs[i]
        start, old = repair["offset"], repair["old"]
        if start < end or value[start : start + len(old)] != old:
            continue
        chosen.append(i)
        end = start + len(old)
    pieces, position = [], 0  # joined once: linear even with thousands of repairs in one field
    for i in chosen:
        start, old = repairs[i]["offset"], repairs[i]["old"]
        pieces += [value[position:start], repairs[i]["new"]]
        position = start + len(old)
        applied[i] = True
    pieces.append(value[position:])
    return "".join(pieces), applied


def build_clean(records: pd.DataFrame, dedup: DedupResult, findings: pd.DataFrame) -> CleanResult:
    """Build the cleaned corpus and the removed records from records, clusters and findings."""
    # Only the columns the outputs use: norm_text, urls and the rest would be copied for nothing.
    rows = list(row_dicts(records[["id", "source", "line", "title", "text", "url"]]))
    by_id = {row["id"]: row for row in rows}
    clusters = list(row_dicts(dedup.clusters))
    members_of = {row["representative"]: row["members"] for row in clusters}
    rep_similarity = {m["id"]: m for row in clusters for m in row["to_representative"]}

    repairs_at: dict[tuple[str, str], list[int]] = {}
    for position, (record_id, field, repair) in enumerate(
        zip(findings["record_id"], findings["field"], findings["repair"], strict=True)
    ):
        if isinstance(repair, dict) and record_id not in dedup.duplicate_of:
            repairs_at.setdefault((record_id, field), []).append(position)

    clean_rows, removed_rows = [], []
    repair_list = findings["repair"].tolist()
    applied_flags = [False] * len(repair_list)
    for record in rows:
        record_id = record["id"]
        if record_id in dedup.duplicate_of:
            similarity = rep_similarity.get(record_id, {})
            removed_rows.append(
                {
                    **{k: record[k] for k in ("id", "source", "line", "title", "text", "url")},
                    "reason": dedup.relation_of[record_id],
                    "duplicate_of": dedup.duplicate_of[record_id],
                    "jaccard": similarity.get("jaccard"),
                    "containment": similarity.get("containment"),
                }
            )
            continue
        fields = {k: record[k] for k in ("title", "text", "url")}
        repair_notes: list[str] = []
        for field in fields:
            positions = repairs_at.get((record_id, field), [])
            if not positions:
                continue
            repairs = [repair_list[p] for p in positions]
            fields[field], applied = apply_repairs(fields[field], repairs)
            for p, done, repair in zip(positions, applied, repairs, strict=True):
                applied_flags[p] = done
                if done:
                    repair_notes.append(f"{field}: {repair['description']}")
        members = members_of.get(record_id, [record_id])
        for name in ("url", "title"):  # a field the representative lacks, taken from a copy
            if not fields[name]:
                donor = next((m for m in members if by_id[m][name]), None)
                if donor is not None:
                    fields[name] = by_id[donor][name]
                    repair_notes.append(f"{name}: filled from duplicate {donor}")
        clean_rows.append(
            {
                "id": record_id,
                **fields,
                "urls": find_urls(fields["text"]),
                "sources": [
                    {"id": m, "source": by_id[m]["source"], "line": int(by_id[m]["line"])} for m in members
                ],
                "repairs": repair_notes,
            }
        )
    findings = findings.assign(applied=applied_flags)
    return CleanResult(
        pd.DataFrame(clean_rows, columns=CLEAN_COLUMNS),
        pd.DataFrame(removed_rows, columns=REMOVED_COLUMNS),
        findings,
    )
