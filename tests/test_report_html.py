"""report.html without a browser: self-contained, escaped, sections present, small at 100k records."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import audit
from audit.checks.base import FINDING_COLUMNS
from audit.checks.table import FindingTable
from audit.report.diffs import Segment, changed_chars, word_diff
from audit.report.html import render_html
from audit.report.summary import summarise
from audit.report.views import MAX_CLUSTERS, MAX_FINDING_ROWS, detect_length_limit, gate_view, suites_view

ROOT = Path(__file__).resolve().parent.parent


def _card(html: str, label: str) -> str:
    """The value shown on a summary card."""
    card = rf'data-card="{label}">\s*<div class="label">[^<]*</div>\s*<div class="value">([^<]*)<'
    found = re.search(card, html)
    assert found, label
    return found.group(1)


@pytest.fixture(scope="module")
def seeds_html(seeds_result: audit.AuditResult) -> str:
    return render_html(seeds_result)


def test_written_with_the_other_outputs(seeds_out: Path) -> None:
    html = (seeds_out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert 'data-card="kept"' in html


def test_self_contained(seeds_html: str) -> None:
    # No external resource of any kind: no src/href to another file or host, no @import.
    assert not re.search(r"""\s(?:src|href)\s*=\s*(?!["']?#)""", seeds_html)
    assert "@import" not in seeds_html and "<link" not in seeds_html
    assert "default-src 'none'" in seeds_html  # and the browser is told so


def test_script_hash_matches_the_inline_script(seeds_html: str) -> None:
    import base64
    import hashlib

    script = re.search(r"<script>(.*?)</script>", seeds_html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in seeds_html


def test_seed_figures_and_sections(seeds_html: str, seeds_result: audit.AuditResult) -> None:
    for label, value in (("records in", "588"), ("kept", "526"), ("removed", "62"), ("quarantined", "0")):
        assert _card(seeds_html, label) == value
    assert "53 clusters covering 115 records" in seeds_html
    assert seeds_html.count('<details class="cluster"') == 53
    assert seeds_html.count("<tr data-check=") == len(seeds_result.findings) == 75  # every finding
    assert seeds_html.count('<svg class="chart') == 5
    for file in seeds_result.report["inputs"]:  # run metadata: every input with its hash
        assert file["sha256"] in seeds_html
    for stage in ("ingest", "normalise", "dedup", "checks", "clean"):
        assert f"<th>{stage}</th>" in seeds_html
    assert "no length limit detected" in seeds_html
    assert 'Gate: <span class="badge">not run</span>' in seeds_html


def test_evidence_shown_in_context(seeds_html: str) -> None:
    # The malformed URL from the README, highlighted inside its sentence, with its repair.
    assert re.search(r"[^<]{20,}<mark>https: //</mark>[^<]{20,}", seeds_html)
    assert "remove the space after the scheme: &#39;https: //&#39; → &#39;https://&#39;" in seeds_html


def test_word_diff_marks_what_changed() -> None:
    segments = word_diff("the cat sat on the mat.", "the dog sat on the mat")
    assert segments == [
        Segment("equal", "the "),
        Segment("delete", "cat"),
        Segment("insert", "dog"),
        Segment("equal", " sat on the mat"),
        Segment("delete", "."),
    ]
    assert changed_chars(segments) == 7
    assert changed_chars(word_diff("same text", "same text")) == 0


def test_length_limit_detected_from_a_spike() -> None:
    rng = np.random.default_rng(0)
    natural = rng.integers(400, 2000, size=2000)
    assert detect_length_limit(natural) is None
    cut = np.concatenate([natural, np.full(300, 1000)])
    assert detect_length_limit(cut) == 1000


@pytest.fixture(scope="module")
def gated_result(seeds_dir: Path) -> audit.AuditResult:
    """seeds/ through the gate with the project's suites, as ``scrape-audit check`` runs it."""
    config = audit.AuditConfig(expectations=str(ROOT / "expectations"), gate=audit.GateConfig())
    return audit.run([seeds_dir], out=None, config=config)


def test_gate_and_suites_rendered_when_present(gated_result: audit.AuditResult) -> None:
    gate, suites = gated_result.report["gate"], gated_result.report["expectations"]["suites"]
    html = render_html(gated_result)
    assert _card(html, "gate") == "failed"
    failed = [c for c in gate["criteria"] if not c["passed"]]
    assert failed and all(f"<code>{c['name']}</code>" in html for c in failed)
    passed = sum(s["success"] for s in suites)
    assert _card(html, "GE suites") == f"{passed}/{len(suites)}"
    for suite in suites:
        assert f'{suite["name"]} <span class="badge' in html
        for result in suite["results"]:
            assert result["name"] in html


def test_gate_and_suite_strings_are_escaped(gated_result: audit.AuditResult) -> None:
    report = copy.deepcopy(gated_result.report)
    report["expectations"]["suites"][0]["results"][0]["failing_ids"] = ["<b>x</b>"]
    report["gate"]["criteria"][0]["message"] = "<script>alert(1)</script>"
    html = render_html(dataclasses.replace(gated_result, report=report))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert gate_view(None) is None and suites_view(None) == []


def _synthetic_run(n: int, sources: int = 300) -> SimpleNamespace:
    """A run's frames at scale: many files, a length limit at 1,000 characters, clusters, findings."""
    rng = np.random.default_rng(1)
    words = np.array([f"w{i}" for i in range(3000)])
    bases = [" ".join(rng.choice(words, size=rng.integers(60, 300))) + "." for _ in range(2000)]
    texts = [bases[i % 2000][:1000] if i % 4 == 0 else bases[i % 2000] for i in range(n)]
    ids = [f"s{i % sources:03d}.jsonl:{i}" for i in range(n)]
    records = pd.DataFrame(
        {
            "id": ids,
            "source": [f"s{i % sources:03d}.jsonl" for i in range(n)],
            "line": np.arange(n) + 1,
            "title": [f"Title {i % 2000}" for i in range(n)],
            "text": texts,
            "url": "",
        }
    )
    members = [[ids[i], ids[i + 2000]] for i in range(0, n - 2000, 7)]
    clusters = pd.DataFrame(
        {
            "cluster_id": [f"c{i:06d}" for i in range(len(members))],
            "representative": [m[0] for m in members],
            "members": members,
            "size": 2,
            "to_representative": [[{"id": m[1], "jaccard": 0.9, "containment": 0.95}] for m in members],
        }
    )
    removed = pd.DataFrame({"id": [m[1] for m in members], "reason": "near_duplicate"})
    checks = ["truncation", "malformed_url", "empty_or_short", "encoding"]
    findings = pd.DataFrame(
        [
            {
                "record_id": ids[i],
                "check": checks[i % 4],
                "severity": ("error", "warning", "info")[i % 3],
                "field": "text",
                "message": "something is off",
                "evidence": {"match": texts[i][:5], "offset": 0},
                "repair": None,
                "applied": False,
            }
            for i in range(n)
        ],
        columns=[*FINDING_COLUMNS, "applied"],
    )
    found = FindingTable.from_frame(findings)
    report = summarise(
        records=records,
        quarantine=pd.DataFrame(),
        clusters=clusters,
        clean=records.iloc[: n - len(removed)],
        removed=removed,
        findings=found,
        files=[{"source": f"s{i:03d}.jsonl", "bytes": 1, "sha256": "0" * 64} for i in range(sources)],
        skipped=[],
        parameters=audit.AuditConfig().as_dict(),
        timings={"ingest": 1.0},
    )
    return SimpleNamespace(records=records, found=found, clusters=clusters, removed=removed, report=report)


def test_under_5_mb_for_100k_records() -> None:
    run = _synthetic_run(100_000)
    started = time.perf_counter()
    html = render_html(run)
    seconds = time.perf_counter() - started
    size = len(html.encode("utf-8"))
    assert size < 5_000_000, size
    assert seconds < 30, seconds
    assert html.count('<details class="cluster"') == MAX_CLUSTERS
    assert html.count("<tr data-check=") == MAX_FINDING_ROWS
    for check in ("truncation", "malformed_url", "empty_or_short", "encoding"):  # every check sampled
        assert f'<tr data-check="{check}"' in html
    assert f"A sample of {MAX_FINDING_ROWS:,} of 100,000 findings" in html
    assert "limit: 1,000 characters" in html  # the spike of texts cut at 1,000 is marked
    assert "the 25 files of the largest overlaps, of 300" in html


def test_explorer_marks_the_words_a_near_copy_changed(tmp_path: Path) -> None:
    words = " ".join(f"word{i}" for i in range(60))
    rows = [
        {"id": "full", "title": "A paper", "text": f"{words} and a closing clause."},
        {"id": "cut", "title": "A paper", "text": f"{words} and a <i>closing</i> clause."},
    ]
    source = tmp_path / "near.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = audit.run([source], out=None)
    assert len(result.clusters) == 1
    html = render_html(result)
    kept = result.clusters["representative"].iloc[0]
    assert kept == "cut"  # the longer text is kept: what it has extra is struck in the copy
    assert "<del>&lt;i&gt;</del>" in html and "<del>&lt;/i&gt;</del>" in html
    assert "near.jsonl line 1" in html and "Jaccard" in html


@pytest.mark.parametrize("seed", range(4))
def test_least_jaccard_of_arrow_clusters_is_pythons_min(seed: int) -> None:
    """From the Arrow entries as Python's min gives it: 1.0 for no entry, a NaN left to Python."""
    import pyarrow as pa

    from audit.report.views import _min_jaccards

    rng = np.random.default_rng(seed)
    kind = pa.large_list(pa.struct([("id", pa.large_string()), ("jaccard", pa.float64())]))
    lists = [
        [{"id": f"m{k}", "jaccard": float(rng.choice([0.5, 0.25, 1.0, -0.0, 0.0]))} for k in range(size)]
        for size in rng.integers(0, 4, 50)
    ]
    if seed % 2:
        lists[3] = [{"id": "n", "jaccard": float("nan")}, {"id": "o", "jaccard": 0.5}]
    arrow = pd.Series(
        pd.arrays.ArrowExtensionArray(
            pa.chunked_array([pa.array(lists[:20], kind), pa.array(lists[20:], kind)])
        )
    )
    expected = [min((t["jaccard"] for t in tr), default=1.0) for tr in lists]
    found = _min_jaccards(arrow)
    assert [repr(v) for v in found] == [repr(v) for v in expected]
    assert [repr(v) for v in _min_jaccards(pd.Series(lists, dtype=object))] == [repr(v) for v in expected]


def _overlap_reference(clusters: pd.DataFrame, source_of: dict[str, str]) -> tuple[Counter, set]:
    """The overlap counts as they were made: a dict of every record's source, a cluster at a time."""
    pairs: Counter = Counter()
    involvement: set[str] = set()
    for members in clusters["members"].tolist():
        copies: dict[str, int] = {}
        for source in (source_of.get(m, "?") for m in members):
            copies[source] = copies.get(source, 0) + 1
        for a, b in itertools.combinations_with_replacement(sorted(copies), 2):
            if a != b or copies[a] > 1:
                pairs[a, b] += 1
        involvement.update(copies)
    return pairs, involvement


@pytest.mark.parametrize("seed", range(5))
def test_source_overlap_from_arrow_lookups_equals_the_dict_of_sources(seed: int, monkeypatch) -> None:
    """Clusters in one file or several, members that are no record ("?"), a file named "?" too."""
    import pyarrow as pa

    from audit.report import views

    rng = np.random.default_rng(seed)
    names = ["a.jsonl", "b.jsonl", "?", "c d.jsonl"]
    records = pd.DataFrame(
        {"id": [f"r{n}" for n in range(200)], "source": [names[int(k)] for k in rng.integers(0, 4, 200)]}
    )
    if seed % 2:
        records = records.astype({"id": "str", "source": "str"})
    lists = [
        [f"r{int(m)}" if m < 200 else f"gone{int(m)}" for m in rng.integers(0, 215, size)]
        for size in rng.integers(1, 6, 60)
    ]
    kind = pa.large_list(pa.large_string())
    clusters = pd.DataFrame(
        {"members": pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(lists, kind)]))}
    )
    seen = {}
    monkeypatch.setattr(views, "heat_map", lambda rows, columns, cells, unit: seen.setdefault("cells", cells))
    _, involved = views.source_overlap_chart(clusters, views.SourceLookup(records))
    pairs, involvement = _overlap_reference(
        pd.DataFrame({"members": lists}), dict(zip(records["id"], records["source"], strict=True))
    )
    assert involved == len(involvement)
    shown = sorted({name for pair in pairs for name in pair})[: views.MAX_SOURCES]
    assert seen["cells"] == [[pairs.get((min(a, b), max(a, b)), 0) for b in shown] for a in shown]
    found = views.SourceLookup(records).of(["r3", "nope", "r7"])
    assert found == [records["source"][3], "?", records["source"][7]]


def test_char_lengths_count_characters_as_pandas_does() -> None:
    import pyarrow as pa

    from audit.report.views import _char_lengths

    texts = ["", "abc", "aé😀", "日本語のテキスト" * 50, "x" * 70_000]
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([texts[:2], texts[2:]])))
    for column in (arrow, pd.Series(texts, dtype=object), pd.Series(texts, dtype="str")):
        assert _char_lengths(column).tolist() == [len(t) for t in texts]
