"""The checks over record batches (audit.checks.batches) and the compact findings
(audit.checks.table): the findings of any batch size and number of processes are those of each
check run once over every record; the compact form decodes to the findings' DataFrame, and
findings.jsonl written from it is byte for byte what the DataFrame gave."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import CHECKS, CheckContext, batches, make_check, run_checks
from audit.checks.base import FINDING_COLUMNS, Finding
from audit.checks.table import FindingTable
from audit.checks.truncation import ValueChunks, Vocabulary
from audit.pipeline import AuditConfig, audit
from audit.report import views
from audit.report.writers import write_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import faults

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture(scope="module")
def corpus() -> faults.FaultCorpus:
    return faults.build(seed=7, per_kind=4, n_clean=120)


@pytest.fixture(scope="module")
def seeds_run():
    return audit([SEEDS], AuditConfig())


def _as_dict_frame(findings: list[Finding]) -> pd.DataFrame:
    """The findings frame made the plain way: a row of each finding's ``as_dict``."""
    return pd.DataFrame([f.as_dict() for f in findings], columns=FINDING_COLUMNS)


def _whole(records: pd.DataFrame, clusters: pd.DataFrame | None, names=None) -> FindingTable:
    """Each check run once over every record (what run_checks did before batches)."""
    context = CheckContext(clusters=clusters)
    names = list(CHECKS) if names is None else names
    return FindingTable.of([f for name in names for f in make_check(name, {}).run(records, context)])


def _same(found: FindingTable, expected: FindingTable) -> None:
    pd.testing.assert_frame_equal(found.frame(), expected.frame())


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (3, 2), (7, 1), (50, 2), (10**6, 1)])
def test_batches_give_the_findings_of_one_run(corpus: faults.FaultCorpus, batch: int, workers: int) -> None:
    expected = _whole(corpus.records, corpus.clusters)
    assert {"truncation", "conflicting_copies", "empty_or_short"} <= set(expected.values("check"))
    context = CheckContext(clusters=corpus.clusters)
    found = run_checks(corpus.records, context=context, workers=workers, batch=batch)
    _same(found, expected)


def _cut_copies(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``records`` and a cut-off copy of each of the first 20, at the end; the clusters pair
    each with its copy (so each cluster spans the batches between)."""
    originals = records.iloc[:20]
    copies = originals.assign(
        id=[f"{i}-cut" for i in originals["id"]], text=[t[: len(t) * 2 // 3] for t in originals["text"]]
    )
    both = pd.concat([records, copies], ignore_index=True)
    members = [[cut, original] for original, cut in zip(originals["id"], copies["id"], strict=True)]
    return both, pd.DataFrame({"members": members})


def test_clusters_spanning_batches_and_proven_pieces(seeds_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut-off copies in clusters spanning batches of 2, proven in pieces of 3 members."""
    records, clusters = _cut_copies(seeds_run.records)
    expected = _whole(records, clusters)
    proven = [e for e in expected.values("evidence") if e.get("signal") == "prefix of a longer copy"]
    assert len(proven) >= 10
    monkeypatch.setattr(batches, "PROVEN_MEMBERS", 3)
    context = CheckContext(clusters=clusters)
    for workers in (1, 2):
        _same(run_checks(records, context=context, workers=workers, batch=2), expected)


def test_the_named_checks_in_their_order(corpus: faults.FaultCorpus) -> None:
    names = ["empty_or_short", "conflicting_copies", "truncation", "empty_or_short"]
    found = run_checks(corpus.records, names, CheckContext(clusters=corpus.clusters), batch=5)
    _same(found, _whole(corpus.records, corpus.clusters, names))


_PIECES = [*'ab cd.…("“»\x00\t\n\\é-', "http://x.org/(", "the", "meth"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_URL = st.sampled_from(["", "http://a.org/x", "https://A.org/x/"])


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.tuples(_TEXT, _TEXT, _URL), min_size=1, max_size=14),
    batch=st.integers(1, 5),
    cluster_cut=st.integers(0, 6),
)
def test_batches_on_generated_records(rows: list[tuple[str, str, str]], batch: int, cluster_cut: int) -> None:
    records = pd.DataFrame(
        {
            "id": [f"r{n}" for n in range(len(rows))],
            "source": ["s" if n % 2 else "t" for n in range(len(rows))],
            "title": [title for title, _, _ in rows],
            "text": [text for _, text, _ in rows],
            "url": [url for _, _, url in rows],
        }
    )
    ids = records["id"].tolist()
    groups = [ids[n : n + 3] for n in range(0, min(cluster_cut, len(ids)), 3)]
    clusters = pd.DataFrame({"members": [g for g in groups if len(g) > 1]})
    options = {
        "truncation": {"min_prefix_chars": 1, "min_limit_count": 2},
        "conflicting_copies": {"min_title_words": 1},
    }
    context = CheckContext(clusters=clusters)
    expected = FindingTable.of(
        [f for name in CHECKS for f in make_check(name, options.get(name, {})).run(records, context)]
    )
    _same(run_checks(records, context=context, options=options, workers=1, batch=batch), expected)


def test_vocabulary_read_in_chunks_answers_as_the_list(corpus: faults.FaultCorpus, monkeypatch) -> None:
    records = corpus.records
    values = records["title"].tolist() + records["text"].tolist()
    words = {w for v in values for w in v.split()[-1:]} | {"meth", "xq", "th"}
    expected = Vocabulary(values).fragments(words)
    monkeypatch.setattr("audit.checks.truncation._VOCABULARY_CHUNK", 7)  # many chunks, repeats across them
    assert Vocabulary(ValueChunks([records["title"], records["text"]])).fragments(words) == expected


_HOSTILE = [
    {"match": 'a"b\\c\n\x00\x1f\u2028', "offset": 3, "tail": "é😀", "others": ["x", "y"]},
    {"limit": 120, "count": 7, "neighbour_mean": 0.35, "match": "", "offset": 0},
    {"big": 2**70, "neg": -1, "f": 1e-7, "nested": {"k": [1, 2.5, None, True]}},
    {},
]


def test_compact_form_decodes_to_the_frame() -> None:
    findings = [
        Finding(
            f"r{n}",
            "check_" + "ab"[n % 2],
            ("error", "warning", "info")[n % 3],
            "text",
            f"m{n}",
            evidence,
            {"offset": n, "old": "x", "new": "y", "description": "d"} if n % 2 else None,
        )
        for n, evidence in enumerate(_HOSTILE * 3)
    ]
    table = FindingTable.of(findings)
    pd.testing.assert_frame_equal(table.frame(), _as_dict_frame(findings))
    assert FindingTable.from_frame(table.frame()).table.equals(table.table)
    both = FindingTable.concat([table, FindingTable.empty(), FindingTable.of(findings[:2])])
    pd.testing.assert_frame_equal(both.frame(), _as_dict_frame(findings + findings[:2]))
    rows, ids, fields, repairs = table.repairs()
    assert rows.tolist() == [n for n, f in enumerate(findings) if f.repair is not None]
    assert ids == [findings[n].record_id for n in rows] and set(fields) == {"text"}
    assert repairs == [f.repair for f in findings if f.repair is not None]
    assert table.counts() == {
        key: sum(1 for f in findings if (f.check, f.severity) == key)
        for key in sorted({(f.check, f.severity) for f in findings})
    }


def test_findings_jsonl_from_the_compact_form(tmp_path: Path, corpus: faults.FaultCorpus) -> None:
    found = run_checks(corpus.records, context=CheckContext(clusters=corpus.clusters), batch=9)
    found = found.with_applied(np.arange(len(found)) % 3 == 0)
    hostile = FindingTable.of([Finding("r", "c", "info", "text", 'm\n"', e) for e in _HOSTILE])
    none = FindingTable.empty().with_applied(np.zeros(0, bool))
    for table in (found, hostile.with_applied(np.zeros(len(hostile), bool)), none):
        write_jsonl(table.frame(), tmp_path / "frame.jsonl")  # the DataFrame, as written before
        write_jsonl(table.batches(size=13), tmp_path / "compact.jsonl")
        assert (tmp_path / "compact.jsonl").read_bytes() == (tmp_path / "frame.jsonl").read_bytes()


def test_lazy_findings_are_the_compact_form_decoded(seeds_run) -> None:
    assert len(seeds_run.found) and "applied" in seeds_run.found.table.column_names
    pd.testing.assert_frame_equal(seeds_run.findings, seeds_run.found.frame())
    assert seeds_run.findings is seeds_run.findings  # built once
    assert seeds_run.findings.columns.tolist() == [*FINDING_COLUMNS, "applied"]


def _shown_reference(findings: pd.DataFrame) -> list[int]:
    """The rows report.html showed, by pandas (before the compact form)."""
    rank = {"error": 0, "warning": 1, "info": 2}
    ordered = findings.assign(_rank=findings["severity"].map(rank)).sort_values(
        ["_rank", "check", "record_id"], kind="stable"
    )
    if len(ordered) > views.MAX_FINDING_ROWS:
        groups = ordered.groupby(["_rank", "check"], sort=False)
        share = max(1, views.MAX_FINDING_ROWS // groups.ngroups)
        sampled = groups.head(share).head(views.MAX_FINDING_ROWS).index
        filler = ordered.index[~ordered.index.isin(sampled)][: views.MAX_FINDING_ROWS - len(sampled)]
        ordered = ordered[ordered.index.isin(sampled.union(filler))]
    return ordered.index.tolist()


@pytest.mark.parametrize("most", [5, 40, 10_000])
def test_shown_findings_as_pandas_sampled_them(corpus: faults.FaultCorpus, monkeypatch, most: int) -> None:
    found = run_checks(corpus.records, context=CheckContext(clusters=corpus.clusters))
    monkeypatch.setattr(views, "MAX_FINDING_ROWS", most)
    assert views.shown_findings(found).tolist() == _shown_reference(found.frame())


def test_length_limit_read_from_the_json_text() -> None:
    evidence = [{"limit": 120}, {"match": '"limit": 5'}, {"limit": 80}, {"limit": 120}, {"limit": "x"}]
    table = FindingTable.of([Finding("r", "c", "info", "text", "m", e) for e in evidence])
    assert views.length_limit(table) == 120
    assert views.length_limit(FindingTable.empty()) is None
    assert json.loads(table.table["evidence"][1].as_py()) == evidence[1]


def test_the_cli_run_never_decodes_every_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.cli import main

    decoded: list[int | None] = []
    frame = FindingTable.frame

    def counted(self: FindingTable, rows: np.ndarray | None = None) -> pd.DataFrame:
        decoded.append(None if rows is None else len(rows))
        return frame(self, rows)

    monkeypatch.setattr(FindingTable, "frame", counted)
    assert main(["run", str(SEEDS), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert decoded and None not in decoded  # only the rows report.html and report.md show
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    lines = (tmp_path / "out" / "findings.jsonl").read_bytes().count(b"\n")
    assert lines == report["findings"] > 0
