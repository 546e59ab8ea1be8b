"""The CI gate: exit codes, each kind of failure named, baseline, JUnit, GitHub annotations.

These tests run without Great Expectations (``--no-expectations``, or no suite directory) to
stay fast; tests/test_expectations.py covers the suites.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from gate_corpus import good_records, write_jsonl

import audit
from audit.checks import CHECKS
from audit.checks.table import FindingTable
from audit.cli import main
from audit.gate import GateConfig, evaluate_gate, github_annotations, junit_xml
from audit.report.markdown import MAX_CHARS, render_markdown


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory: no pyproject.toml, no expectations/ from the repository."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def _corpus(tmp_path: Path, records: list[dict[str, str]] | None = None) -> str:
    return str(write_jsonl(tmp_path / "data.jsonl", records if records is not None else good_records()))


def _failed(report_path: Path) -> list[str]:
    gate = json.loads(report_path.read_text())["gate"]
    return [c["name"] for c in gate["criteria"] if not c["passed"]]


def test_passing_corpus_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", _corpus(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"gate: PASSED (0 of {1 + len(CHECKS)} criteria failed, fail-on error)" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["gate"]["passed"] is True
    assert "expectations" not in report  # no suite directory here: GX never ran
    assert "## Gate: passed" in (tmp_path / "out" / "report.md").read_text()


def test_check_without_out_writes_nothing(tmp_path: Path) -> None:
    assert main(["check", _corpus(tmp_path), "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_error_finding_fails_naming_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = good_records()
    records[2]["text"] = records[2]["text"].replace("https://", "https: //")
    code = main(["check", _corpus(tmp_path, records), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL findings:malformed_url: 1 findings at or above error (1 repaired" in out
    assert "[r2]" in out
    assert _failed(tmp_path / "out" / "report.json") == ["findings:malformed_url"]


def test_duplicate_rate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = good_records()
    records.append(dict(records[0], id="r0-copy"))  # 1 of 6 records removed: 16.67%
    path = _corpus(tmp_path, records)
    assert main(["check", path, "--max-duplicate-rate", "0.2", "--quiet"]) == 0
    assert main(["check", path, "--max-duplicate-rate", "0.1", "--quiet"]) == 1
    assert "FAIL duplicates: duplicate rate 16.67% is above the limit 10.00%" in capsys.readouterr().out


def test_fail_on_warning_and_max_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = good_records()
    records[1]["text"] = records[1]["text"].rstrip(".") + " and the..."  # warning (and long enough)
    path = _corpus(tmp_path, records)
    assert main(["check", path, "--quiet"]) == 0  # a warning is below the default fail-on error
    assert main(["check", path, "--fail-on", "warning", "--quiet"]) == 1
    assert "FAIL findings:truncation: 1 findings at or above warning" in capsys.readouterr().out
    # --max-findings replaces fail-on for its check: one truncation finding allowed, none for 0
    assert main(["check", path, "--fail-on", "warning", "--max-findings", "truncation=1", "--quiet"]) == 0
    assert main(["check", path, "--max-findings", "truncation=0", "--quiet"]) == 1
    assert "FAIL findings:truncation: 1 findings (any severity), limit 0" in capsys.readouterr().out


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-findings", "truncation"], "CHECK=N"),
        (["--max-findings", "nosuchcheck=3"], "nosuchcheck"),
        (["--max-duplicate-rate", "1.5"], "max-duplicate-rate"),
        (["--baseline", "nope.json"], "nope.json"),
        (["--expectations", "no-such-dir"], "no-such-dir"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["check", _corpus(tmp_path), "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_no_paths_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert "PATH" in capsys.readouterr().err


def test_baseline_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean_out = tmp_path / "before"
    assert main(["check", _corpus(tmp_path), "--out", str(clean_out), "--quiet"]) == 0
    records = good_records()
    records.append(dict(records[3], id="r3-copy"))
    worse = _corpus(tmp_path, records)
    baseline = str(clean_out / "report.json")
    assert main(["check", worse, "--baseline", baseline, "--out", str(tmp_path / "after"), "--quiet"]) == 1
    assert "FAIL baseline:duplicates: duplicate rate 16.67%, baseline 0.00%" in capsys.readouterr().out
    assert _failed(tmp_path / "after" / "report.json") == ["baseline:duplicates"]
    # within the tolerance, and against itself, it passes
    assert main(["check", worse, "--baseline", baseline, "--baseline-tolerance", "0.2", "--quiet"]) == 0
    assert main(["check", worse, "--baseline", str(tmp_path / "after" / "report.json"), "--quiet"]) == 0


def test_baseline_findings_per_record(seeds_result: audit.AuditResult) -> None:
    report = seeds_result.report
    fewer = json.loads(json.dumps(report))
    fewer["findings_by_check"]["truncation"] = 1
    allow = {"malformed_url": 9}
    gate = evaluate_gate(report, seeds_result.found, GateConfig(max_findings=allow, baseline=fewer))
    failed = {c.name: c for c in gate.failures}
    assert list(failed) == ["baseline:findings:truncation"]
    assert failed["baseline:findings:truncation"].message.startswith("3 findings (0.0051 per record)")
    same = evaluate_gate(report, seeds_result.found, GateConfig(max_findings=allow, baseline=report))
    assert same.passed


def test_baseline_must_be_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "old.json").write_text('{"hello": 1}')
    assert main(["check", _corpus(tmp_path), "--baseline", str(tmp_path / "old.json"), "--quiet"]) == 2
    assert "old.json: not a report.json" in capsys.readouterr().err


def test_seeds_default_gate(seeds_result: audit.AuditResult) -> None:
    """On seeds/ the default gate fails on exactly one criterion: the 9 malformed-URL errors."""
    gate = evaluate_gate(seeds_result.report, seeds_result.found, GateConfig())
    assert not gate.passed
    assert [c.name for c in gate.failures] == ["findings:malformed_url"]
    failure = gate.failures[0]
    assert failure.observed == 9
    assert failure.message == "9 findings at or above error (6 repaired in the cleaned corpus)"
    assert len(failure.record_ids) == 9 and "000_1a2e1162499fffc1.txt:155" in failure.record_ids
    # allowing those 9 (repaired or not) makes seeds/ pass
    allowed = GateConfig(max_findings={"malformed_url": 9}, max_duplicate_rate=0.11)
    assert evaluate_gate(seeds_result.report, seeds_result.found, allowed).passed


def test_junit_counts_and_failures(tmp_path: Path) -> None:
    records = good_records()
    records[0]["text"] = records[0]["text"].replace("https://", "https: //")
    records.append(dict(records[4], id="r4-copy"))
    junit = tmp_path / "junit.xml"
    code = main(
        ["check", _corpus(tmp_path, records), "--max-duplicate-rate", "0.1", "--junit", str(junit), "--quiet"]
    )
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("tests", "-1")) == len(cases) == 1 + len(CHECKS)  # duplicates + one per check
    assert int(suite.get("failures", "-1")) == int(root.get("failures", "-1")) == len(failures) == 2
    by_name = {c.get("name"): c for c in failures}
    assert set(by_name) == {"duplicates", "findings:malformed_url"}
    assert "r0" in (by_name["findings:malformed_url"].find("failure").text or "").split("\n")
    assert by_name["duplicates"].get("classname") == "scrape-audit.duplicates"


def test_junit_escapes_markup() -> None:
    gate = {
        "passed": False,
        "criteria": [
            {"name": "x<&>", "kind": "findings", "passed": False, "message": 'a "b" <c>', "record_ids": []}
        ],
    }
    root = ET.fromstring(junit_xml(gate))
    assert root.find("testsuite/testcase/failure").get("message") == 'a "b" <c>'


def test_github_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = good_records()
    records[3]["text"] = records[3]["text"].replace("https://", "https: //")
    path = _corpus(tmp_path, records)
    assert main(["check", path, "--quiet"]) == 1
    assert "::error" not in capsys.readouterr().out
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["check", path, "--quiet"]) == 1
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert annotations == [
        f"::error file={path.replace(':', '%3A').replace(',', '%2C')},line=4,"
        "title=scrape-audit malformed_url (error)::r3: space after the URL scheme"
    ]


def test_annotations_are_capped_and_escaped() -> None:
    gate = {
        "criteria": [
            {"name": "findings:c", "kind": "findings", "passed": False},
            {"name": "duplicates", "kind": "duplicates", "passed": False, "message": "50%\nup"},
        ]
    }
    records = pd.DataFrame({"id": [f"r{i}" for i in range(30)], "source": "a,b.jsonl", "line": range(1, 31)})
    findings = FindingTable.of([(i, "c", "error", "text", "m", {}, None) for i in records["id"]])
    lines = github_annotations(gate, findings, records, [{"source": "a,b.jsonl", "path": "d/a,b.jsonl"}])
    assert len(lines) == 10
    assert lines[0] == "::error title=scrape-audit duplicates::50%25%0Aup"
    assert lines[1] == "::error file=d/a%2Cb.jsonl,line=1,title=scrape-audit c (error)::r0: m"


def test_report_md_fits_a_pr_comment_with_the_gate_first(seeds_result: audit.AuditResult) -> None:
    report = dict(seeds_result.report)
    report["gate"] = evaluate_gate(report, seeds_result.found, GateConfig()).as_dict()
    many = FindingTable.concat([seeds_result.found] * 2000)  # 24,000 findings
    text = render_markdown(report, many, seeds_result.clusters)
    assert len(text) < MAX_CHARS
    assert text.index("## Gate: FAILED") < text.index("## Top findings")
    assert "| findings:malformed_url | 9 findings at or above error" in text
