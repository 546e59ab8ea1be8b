"""The sections of report.html as plain data: cards, charts, the near-duplicate explorer, the
findings table and the run metadata. :mod:`audit.report.html` puts them into the template.

Large runs are sampled so the page stays small (under 5 MB for 100k records): the findings
table and the explorer show a bounded number of rows and say how many the JSONL files hold.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from markupsafe import Markup

from audit.checks.base import SEVERITIES
from audit.frames import arrow_chunks, arrow_strings, column_values, take_values
from audit.report.charts import SEVERITY_COLOURS, Column, column_chart, heat_map, stacked_bars
from audit.report.diffs import Segment, changed_chars, word_diff

if TYPE_CHECKING:
    from audit.checks.table import FindingTable

MAX_FINDING_ROWS = 2_000
MAX_CLUSTERS = 100
MAX_SOURCES = 25
MAX_EXPLORER_CHARS = 4_000
CONTEXT_CHARS = 60
LENGTH_BINS = 40


# ---------------------------------------------------------------- summary cards


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str = ""
    tone: str = ""  # "", "good", "bad", "warn"


def cards(report: dict[str, Any]) -> list[Card]:
    counts, dup = report["counts"], report["duplicates"]
    severity = report.get("findings_by_severity", {})
    gate = gate_view(report.get("gate"))
    suites = suites_view(report.get("expectations"))
    passed_suites = sum(1 for s in suites if s.success)
    return [
        Card("records in", f"{counts['input']:,}", f"{len(report.get('inputs', []))} input files"),
        Card("kept", f"{counts['kept']:,}", "in clean.jsonl", "good"),
        Card("removed", f"{counts['removed']:,}", "in removed.jsonl", "warn" if counts["removed"] else ""),
        Card(
            "quarantined",
            f"{counts['quarantined']:,}",
            "unreadable input",
            "bad" if counts["quarantined"] else "",
        ),
        Card(
            "duplicate rate",
            f"{dup['duplicate_rate']:.2%}",
            f"{dup['clusters']:,} clusters covering {dup['records_in_clusters']:,} records",
        ),
        Card(
            "findings",
            f"{report.get('findings', 0):,}",
            " · ".join(f"{severity.get(s, 0):,} {s}" for s in SEVERITIES),
            "bad" if severity.get("error") else "",
        ),
        Card("repairs applied", f"{report.get('repairs_applied', 0):,}", "in the cleaned corpus"),
        Card(
            "gate",
            gate.status if gate else "not run",
            f"{len(gate.failures)} of {len(gate.criteria)} criteria failed" if gate else "",
            ("good" if gate.passed else "bad") if gate else "",
        ),
        Card(
            "GE suites",
            f"{passed_suites}/{len(suites)}" if suites else "not run",
            f"suites passed · {sum(len(s.results) for s in suites)} expectations" if suites else "",
            ("good" if passed_suites == len(suites) else "bad") if suites else "",
        ),
    ]


# ---------------------------------------------------------------- gate and expectations


MAX_IDS_SHOWN = 20


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_describe(v) for v in value)
    return "" if value is None else str(value)


def _ids(ids: Any) -> str:
    ids = ids if isinstance(ids, list) else []
    return ", ".join(map(str, ids[:MAX_IDS_SHOWN])) + (
        f" … ({len(ids):,} in all)" if len(ids) > MAX_IDS_SHOWN else ""
    )


@dataclass(frozen=True)
class CriterionView:
    name: str
    kind: str
    passed: bool
    message: str
    record_ids: str


@dataclass(frozen=True)
class GateView:
    passed: bool
    fail_on: str
    criteria: list[CriterionView]

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def failures(self) -> list[CriterionView]:
        return [c for c in self.criteria if not c.passed]


def gate_view(gate: dict[str, Any] | None) -> GateView | None:
    """report.json's ``gate`` (from ``scrape-audit check``); None when the gate did not run."""
    if not gate:
        return None
    criteria = [
        CriterionView(
            str(c.get("name", "")),
            str(c.get("kind", "")),
            bool(c.get("passed")),
            str(c.get("message", "")),
            _ids(c.get("record_ids")),
        )
        for c in gate.get("criteria", [])
    ]
    # Failed criteria first: they are what a reader opens this section for.
    criteria.sort(key=lambda c: c.passed)
    return GateView(bool(gate.get("passed")), str(gate.get("fail_on", "")), criteria)


@dataclass(frozen=True)
class ExpectationView:
    name: str
    severity: str
    success: bool
    observed: str
    failing: str
    description: str


@dataclass(frozen=True)
class SuiteView:
    name: str
    table: str
    rows: int
    success: bool
    results: list[ExpectationView] = field(default_factory=list)


def suites_view(expectations: dict[str, Any] | None) -> list[SuiteView]:
    """report.json's ``expectations`` (Great Expectations suites); [] when no suite ran."""
    if not expectations:
        return []
    return [
        SuiteView(
            str(suite.get("name", "")),
            str(suite.get("table", "")),
            int(suite.get("rows", 0)),
            bool(suite.get("success")),
            [
                ExpectationView(
                    str(r.get("name") or r.get("expectation", "")),
                    str(r.get("severity", "")),
                    bool(r.get("success")),
                    _describe(r.get("observed") or r.get("observed_value")),
                    _ids(r.get("failing_ids")),
                    str(r.get("description") or ""),
                )
                for r in suite.get("results", [])
            ],
        )
        for suite in expectations.get("suites", [])
    ]


# ---------------------------------------------------------------- charts


def _matching(column: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Whether each text of ``column`` holds ``pattern`` (a null: False); a dictionary column's
    distinct texts are searched once (a run over partitions' lean findings)."""
    parts = [np.zeros(0, bool)]
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            hits = (
                pc.match_substring(chunk.dictionary, pattern).fill_null(False).to_numpy(zero_copy_only=False)
            )
            codes = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            parts.append(np.append(hits, False)[codes])  # code -1 (null) reads the last: False
        else:
            parts.append(pc.match_substring(chunk, pattern).fill_null(False).to_numpy(zero_copy_only=False))
    return np.concatenate(parts)


def length_limit(findings: FindingTable) -> int | None:
    """The scraper's character limit, when a check reported one in its evidence."""
    if not len(findings):
        return None
    # Only the evidence whose JSON text holds the key is decoded: a million findings, a few with a limit.
    holds = _matching(findings.table["evidence"], '"limit": ')
    evidence = findings.values("evidence", np.flatnonzero(holds))
    limits = [
        e["limit"] for e in evidence if isinstance(e, dict) and "limit" in e and isinstance(e["limit"], int)
    ]
    return Counter(limits).most_common(1)[0][0] if limits else None


def detect_length_limit(lengths: np.ndarray) -> int | None:
    """A length many more texts have than their neighbours: the mark of a cut at N characters."""
    if len(lengths) < 20:
        return None
    counts = np.bincount(lengths)
    top = int(counts.argmax())
    window = counts[max(0, top - 25) : top + 26]
    neighbours = (window.sum() - counts[top]) / max(len(window) - 1, 1)
    if counts[top] >= max(5, 0.01 * len(lengths)) and counts[top] >= 10 * (neighbours + 0.1):
        return top
    return None


def _nice_width(span: int, bins: int) -> int:
    raw = max(span / bins, 1)
    power = 10 ** int(np.floor(np.log10(raw)))
    return int(next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw))


def _char_lengths(texts: pd.Series) -> np.ndarray:
    """Each text's length in characters; counted on the Arrow buffers when the column has them
    (pandas' ``str.len`` on a million texts held ~180 MB more at its peak)."""
    chunks = arrow_strings(texts)
    if chunks is None:
        return texts.str.len().to_numpy(dtype=np.int64) if len(texts) else np.zeros(0, np.int64)
    counted = [pc.utf8_length(chunk).to_numpy(zero_copy_only=False) for chunk in chunks.chunks]
    return np.concatenate([np.zeros(0, np.int64), *counted]).astype(np.int64)


def length_chart(records: pd.DataFrame, findings: FindingTable) -> tuple[Markup, int | None]:
    """Histogram of text lengths in characters, with the truncation limit marked if there is one."""
    # A run over partitions gives the lengths, not every text.
    lengths = (
        records["text_length"].to_numpy(dtype=np.int64)
        if "text_length" in records
        else _char_lengths(records["text"])
    )
    limit = length_limit(findings)
    if limit is None:
        limit = detect_length_limit(lengths)
    top = int(max(lengths.max() if len(lengths) else 0, limit or 0)) + 1
    width = _nice_width(top, LENGTH_BINS)
    bins = int(np.ceil(top / width)) or 1
    counts = np.bincount(lengths // width, minlength=bins)
    label_every = max(1, bins // 8)
    columns = [
        Column(
            int(c),
            f"{i * width:,}" if i % label_every == 0 else "",
            f"{i * width:,}–{(i + 1) * width - 1:,} characters: {int(c):,} records",
        )
        for i, c in enumerate(counts)
    ]
    marker = (limit / width, f"limit: {limit:,} characters") if limit is not None else None
    chart = column_chart(
        columns, x_title="text length (characters)", y_title="records", marker=marker, width=1000, height=230
    )
    return chart, limit


def cluster_size_chart(clusters: pd.DataFrame, largest_alone: int = 12) -> Markup:
    sizes = Counter(int(s) for s in column_values(clusters["size"])) if len(clusters) else Counter()
    columns = [
        Column(sizes.get(s, 0), str(s), f"{sizes.get(s, 0):,} clusters of {s} copies")
        for s in range(2, largest_alone + 1)
    ]
    bigger = sum(n for s, n in sizes.items() if s > largest_alone)
    if bigger:
        columns.append(
            Column(
                bigger, f"{largest_alone + 1}+", f"{bigger:,} clusters of more than {largest_alone} copies"
            )
        )
    while len(columns) > 1 and columns[-1].count == 0:  # no empty tail
        columns.pop()
    return column_chart(columns, x_title="copies in the cluster", y_title="clusters", width=420)


def _top(counter: Counter[str], limit: int) -> list[str]:
    return [name for name, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _first_seen_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A categorical column's values as numbers into names in the order they first occur (as
    Arrow's ``dictionary_encode`` numbers them), from its codes: no Python value per row."""
    codes = column.cat.codes.to_numpy().astype(np.int64)
    present, first = np.unique(codes, return_index=True)
    order = present[np.argsort(first, kind="stable")]
    renumber = np.full(len(column.cat.categories) + 1, -1, np.int64)
    renumber[order] = np.arange(len(order))
    categories = column.cat.categories.tolist()
    return renumber[codes], [categories[code] for code in order.tolist()]


class SourceLookup:
    """The source file of records by id, looked up in Arrow's hash table (no dict of every id)."""

    def __init__(self, records: pd.DataFrame) -> None:
        self.ids = _record_ids(records) if len(records) else pa.array([], pa.large_string())
        sources = records["source"] if len(records) else pd.Series([], dtype=object)
        if isinstance(sources.dtype, pd.CategoricalDtype):  # a run over partitions' compact column
            self.codes, self.names = _first_seen_codes(sources)
            return
        chunks = arrow_strings(sources)
        values = (
            chunks.combine_chunks() if chunks is not None else pa.array(sources.tolist(), pa.large_string())
        )
        encoded = values.dictionary_encode()
        #: Each record's source as a number into ``names``.
        self.codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
        self.names: list[str] = encoded.dictionary.to_pylist()

    def codes_of(self, ids: pa.Array | list[str]) -> np.ndarray:
        """The source number of each id, -1 for an id that is no record."""
        values = ids.cast(self.ids.type) if isinstance(ids, pa.Array) else pa.array(ids, self.ids.type)
        if not len(values):
            return np.empty(0, np.int64)
        rows = pc.index_in(values, value_set=self.ids).fill_null(-1).to_numpy(zero_copy_only=False)
        rows = np.asarray(rows, np.int64)
        return np.where(rows >= 0, self.codes[np.maximum(rows, 0)] if len(self.codes) else -1, -1)

    def of(self, ids: pa.Array | list[str]) -> list[str]:
        """The source of each id, ``"?"`` for an id that is no record."""
        names = [*self.names, "?"]  # code -1: the last
        return [names[code] for code in self.codes_of(ids).tolist()]


def _member_lists(clusters: pd.DataFrame) -> pa.ListArray:
    """The clusters' members as one Arrow list array."""
    chunks = arrow_chunks(clusters["members"])
    if chunks is None:
        return pa.array(column_values(clusters["members"]), pa.large_list(pa.large_string()))
    return chunks.combine_chunks() if chunks.num_chunks != 1 else chunks.chunk(0)


def source_overlap_chart(clusters: pd.DataFrame, sources: SourceLookup) -> tuple[Markup | None, int]:
    """Clusters with copies in both files (diagonal: clusters with two or more copies in one file)."""
    pairs: Counter[tuple[str, str]] = Counter()
    involvement: set[str] = set()
    if len(clusters):
        members = _member_lists(clusters)
        sizes = pc.list_value_length(members).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = sources.codes_of(members.flatten()) + 1  # 0: no record ("?")
        names = ["?", *sources.names]
        cluster = np.repeat(np.arange(len(sizes)), sizes)
        # Copies of each cluster in each file, one row per (cluster, file), clusters in order.
        keys, copies = np.unique(cluster * len(names) + codes, return_counts=True)
        owner, code = keys // len(names), keys % len(names)
        files = np.bincount(owner, minlength=len(sizes))
        involvement.update(names[c] for c in np.unique(code).tolist())
        # A cluster in one file: a diagonal pair when it has two copies there (most clusters).
        alone = (files[owner] == 1) & (copies > 1)
        for c, count in zip(*np.unique(code[alone], return_counts=True), strict=True):
            pairs[names[int(c)], names[int(c)]] += int(count)
        several = np.flatnonzero(files[owner] > 1)  # rows of clusters in several files, in order
        by_cluster: dict[int, dict[str, int]] = {}
        for k, c, count in zip(
            owner[several].tolist(), code[several].tolist(), copies[several].tolist(), strict=True
        ):
            found = by_cluster.setdefault(k, {})
            found[names[c]] = found.get(names[c], 0) + count  # a file named "?" is one with "?"
        for found in by_cluster.values():
            for a, b in combinations_with_replacement(sorted(found), 2):
                if a != b or found[a] > 1:
                    pairs[a, b] += 1
    if not pairs:
        return None, 0
    # The files of the heaviest overlaps, so a large run shows where its duplicates are.
    chosen: list[str] = []
    for (a, b), _ in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        chosen += [name for name in dict.fromkeys((a, b)) if name not in chosen]
        if len(chosen) >= MAX_SOURCES:
            break
    names = sorted(chosen[:MAX_SOURCES])
    cells = [[pairs.get((min(a, b), max(a, b)), 0) for b in names] for a in names]
    return heat_map(names, names, cells, unit="duplicate clusters"), len(involvement)


def findings_by_check_chart(report: dict[str, Any]) -> Markup | None:
    by_check = report.get("findings_by_check_severity", {})
    if not by_check:
        return None
    checks = sorted(by_check)
    values = [[by_check[c].get(s, 0) for s in SEVERITIES] for c in checks]
    return stacked_bars(checks, SEVERITIES, values, SEVERITY_COLOURS)


def findings_by_source_chart(findings: FindingTable, lookup: SourceLookup) -> tuple[Markup | None, int]:
    if not len(findings):
        return None, 0
    # Counted as numbers: each finding's source code (-1: no record) and check code.
    source_codes = lookup.codes_of(findings.table["record_id"].combine_chunks())
    check_names = findings.names("check")
    check_codes = findings.codes("check").astype(np.int64)
    source_names = [*lookup.names, "?"]  # code -1: the last
    width = len(check_names)
    pair_counts = np.bincount((source_codes % len(source_names)) * width + check_codes)
    per_pair: Counter[tuple[str, str]] = Counter(
        {
            (source_names[pair // width], check_names[pair % width]): int(count)
            for pair, count in enumerate(pair_counts.tolist())
            if count
        }
    )
    per_source: Counter[str] = Counter()
    for (source, _), count in per_pair.items():
        per_source[source] += count
    names = sorted(_top(per_source, MAX_SOURCES))
    checks = sorted({check for _, check in per_pair})
    cells = [[per_pair.get((s, c), 0) for c in checks] for s in names]
    return heat_map(names, checks, cells, unit="findings"), len(per_source)


# ---------------------------------------------------------------- near-duplicate explorer


@dataclass(frozen=True)
class Copy:
    id: str
    source: str
    line: int
    status: str  # "kept" or the removal reason
    jaccard: float | None
    containment: float | None
    title: list[Segment]
    text: list[Segment]
    changed: int
    text_changed: int
    cut: bool

    @property
    def place(self) -> str:
        """Where the copy came from; the id too when it is not just ``source:line``."""
        where = f"{self.source} line {self.line}"
        return where if self.id == f"{self.source}:{self.line}" else f"{self.id} · {where}"


@dataclass(frozen=True)
class ClusterView:
    cluster_id: str
    size: int
    min_jaccard: float
    kept: Copy
    copies: list[Copy]


def _clip(text: str) -> tuple[str, bool]:
    return (text, False) if len(text) <= MAX_EXPLORER_CHARS else (text[:MAX_EXPLORER_CHARS], True)


def _record_ids(records: pd.DataFrame) -> pa.Array:
    """The record ids as one Arrow array, to look ids up in (Arrow's hash table; pandas' isin on
    a string column makes a Python list of every value)."""
    chunks = arrow_strings(records["id"])
    return (
        chunks.combine_chunks() if chunks is not None else pa.array(records["id"].tolist(), pa.large_string())
    )


def _min_jaccards(to_representative: pd.Series) -> list[float]:
    """Each cluster's least ``jaccard`` to its representative (1.0 for none), as Python's ``min``
    gives it: from the Arrow values when the column has them (no dict per entry), unless a NaN
    is among them (then ``min``'s result depends on the order: Python decides)."""
    chunks = arrow_chunks(to_representative)
    if chunks is not None and chunks.num_chunks:
        lists = chunks.combine_chunks()
        scores = lists.flatten().field("jaccard").to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.isnan(scores).any():
            lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
            owners = np.repeat(np.arange(len(lists)), lengths)
            # Each cluster's first smallest entry (min keeps the first of equals: -0.0 or 0.0).
            order = np.lexsort((np.arange(len(scores)), scores, owners))
            first = order[np.flatnonzero(np.diff(owners[order], prepend=-1))]
            least = np.ones(len(lists))
            least[owners[first]] = scores[first]
            return least.tolist()
    return [min((t["jaccard"] for t in tr), default=1.0) for tr in column_values(to_representative)]


def explorer(clusters: pd.DataFrame, records: pd.DataFrame, removed: pd.DataFrame) -> list[ClusterView]:
    """The clusters most worth a look first: least similar copies, then the largest clusters."""
    if not len(clusters):
        return []
    ids = _record_ids(records)
    reasons = (
        dict(zip(removed["id"].tolist(), removed["reason"].tolist(), strict=True)) if len(removed) else {}
    )
    least = np.asarray(_min_jaccards(clusters["to_representative"]), np.float64)
    # Sorted on the keys alone, then the shown clusters taken: sorting the clusters themselves
    # copied their list columns (members, similarities) twice, for a hundred rows.
    keys = clusters[["size", "cluster_id"]].assign(min_jaccard=least, position=np.arange(len(clusters)))
    order = keys.sort_values(
        ["min_jaccard", "size", "cluster_id"], ascending=[True, False, True], kind="stable"
    )["position"].to_numpy()
    # With an index, a cluster's representative may be a record of an earlier run, not in
    # ``records``: clusters.jsonl and removed.jsonl explain those matches; the explorer skips them.
    chunks = arrow_strings(clusters["representative"])
    representatives = (
        chunks.cast(ids.type)
        if chunks is not None
        else pa.array(clusters["representative"].tolist(), ids.type)
    )
    known = pc.is_in(representatives, value_set=ids).to_numpy(zero_copy_only=False).astype(bool)
    top = order[known[order]][:MAX_CLUSTERS]
    shown = list(clusters.iloc[top].assign(min_jaccard=least[top]).itertuples())
    # The fields shown, read for the shown clusters' records only (not a row Series per copy).
    wanted = sorted({m for row in shown for m in row.members} | {row.representative for row in shown})
    at = pc.index_in(pa.array(wanted, ids.type), value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False)
    present = [record_id for record_id, row in zip(wanted, at.tolist(), strict=True) if row >= 0]
    rows_at = at[at >= 0]
    columns = {name: take_values(records[name], rows_at) for name in ("source", "line", "title", "text")}
    by_id = {
        record_id: {name: values[n] for name, values in columns.items()}
        for n, record_id in enumerate(present)
    }
    views = []
    for row in shown:
        rep = by_id[row.representative]
        rep_text, rep_cut = _clip(rep["text"])
        kept = Copy(
            row.representative,
            rep["source"],
            int(rep["line"]),
            "kept",
            None,
            None,
            [Segment("equal", rep["title"])],
            [Segment("equal", rep_text)],
            0,
            0,
            rep_cut,
        )
        similarity = {t["id"]: t for t in row.to_representative}
        copies = []
        for member in row.members:
            if member == row.representative or member not in by_id:
                continue
            record = by_id[member]
            text, cut = _clip(record["text"])
            title_diff, text_diff = word_diff(rep["title"], record["title"]), word_diff(rep_text, text)
            sim = similarity.get(member, {})
            copies.append(
                Copy(
                    member,
                    record["source"],
                    int(record["line"]),
                    reasons.get(member, "kept"),
                    sim.get("jaccard"),
                    sim.get("containment"),
                    title_diff,
                    text_diff,
                    changed_chars(title_diff) + changed_chars(text_diff),
                    changed_chars(text_diff),
                    cut or rep_cut,
                )
            )
        copies.sort(key=lambda c: (c.jaccard if c.jaccard is not None else 1.0, c.id))  # most different first
        views.append(ClusterView(row.cluster_id, int(row.size), float(row.min_jaccard), kept, copies))
    return views


# ---------------------------------------------------------------- findings table


@dataclass(frozen=True)
class FindingRow:
    record_id: str
    source: str
    check: str
    severity: str
    field: str
    message: str
    before: str
    match: str
    after: str
    evidence: str
    repair: str
    applied: bool


def _in_context(evidence: Any, value: Any) -> tuple[str, str, str]:
    """(before, match, after) around the evidence's offset in the field, when it says where."""
    if not isinstance(evidence, dict) or not isinstance(value, str):
        return "", "", ""
    offset, match = evidence.get("offset"), evidence.get("match")
    if not isinstance(offset, int) or not isinstance(match, str) or not 0 <= offset <= len(value):
        return "", "", ""
    end = offset + len(match)
    before = value[max(0, offset - CONTEXT_CHARS) : offset]
    after = value[end : end + CONTEXT_CHARS]
    return (
        ("…" if offset > CONTEXT_CHARS else "") + before,
        value[offset:end] or match,
        after + ("…" if end + CONTEXT_CHARS < len(value) else ""),
    )


def _repair_text(repair: Any) -> str:
    if not isinstance(repair, dict):
        return ""
    return f"{repair.get('description', '')}: {repair.get('old', '')!r} → {repair.get('new', '')!r}"


def shown_findings(findings: FindingTable) -> np.ndarray:
    """The rows of the findings table, in order: errors first, then by check and record id;
    past :data:`MAX_FINDING_ROWS`, the first of each (severity, check) group in an even share,
    filled up with the first of the others."""
    ordered = findings.ranked()
    if len(ordered) <= MAX_FINDING_ROWS:
        return ordered
    # Rows of one (severity, check) are side by side in this order: a group starts where it changes.
    severity, check = findings.codes("severity")[ordered], findings.codes("check")[ordered]
    group = severity.astype(np.int64) * (1 << 32) + check
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    share = max(1, MAX_FINDING_ROWS // len(starts))
    within = np.arange(len(ordered)) - np.repeat(starts, np.diff(np.r_[starts, len(ordered)]))
    keep = np.zeros(len(ordered), bool)
    sampled = np.flatnonzero(within < share)[:MAX_FINDING_ROWS]
    keep[sampled] = True
    keep[np.flatnonzero(~keep)[: MAX_FINDING_ROWS - len(sampled)]] = True
    return ordered[keep]


def finding_rows(findings: FindingTable, records: pd.DataFrame) -> list[FindingRow]:
    """Errors first; past :data:`MAX_FINDING_ROWS`, an even share per check and severity."""
    if not len(findings):
        return []
    ordered = findings.frame(shown_findings(findings))  # only the rows shown are decoded
    # The cells shown are read for the findings' records only, not a row Series per finding.
    ids = _record_ids(records)
    shown_ids = pa.array(ordered["record_id"].tolist(), ids.type)
    at = pc.index_in(shown_ids, value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False)
    shown = np.unique(at[at >= 0])
    fields = (set(ordered["field"].tolist()) | {"source"}) & (set(records.columns) - {"id"})
    cells = {
        name: dict(zip(shown.tolist(), take_values(records[name], shown), strict=True)) for name in fields
    }
    rows = []
    for row, finding in zip(at.tolist(), ordered.itertuples(), strict=True):
        known = row >= 0
        value = cells[finding.field][row] if known and finding.field in cells else None
        before, match, after = _in_context(finding.evidence, value)
        evidence = "" if match else _describe(finding.evidence)
        rows.append(
            FindingRow(
                finding.record_id,
                cells["source"][row] if known else "",
                finding.check,
                finding.severity,
                finding.field,
                finding.message,
                before,
                match,
                after,
                evidence,
                _repair_text(finding.repair),
                bool(getattr(finding, "applied", False)),
            )
        )
    return rows


# ---------------------------------------------------------------- run metadata


def parameters(report: dict[str, Any]) -> list[tuple[str, str]]:
    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, default=str)

    return [(k, show(v)) for k, v in sorted(report.get("parameters", {}).items())]


def timings(report: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(stage, seconds, share of the slowest stage) per stage, in run order."""
    stages = report.get("timings_seconds", {})
    slowest = max(stages.values(), default=0) or 1
    return [(name, seconds, seconds / slowest) for name, seconds in stages.items()]
