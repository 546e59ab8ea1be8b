"""Great Expectations suites: the shipped suites on seeds/, failing ids, and the GX 1.x pitfalls.

GX costs ~3 s to import; every test here shares one process-wide import, and the seeds
validation is computed once per module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from gate_corpus import good_records, write_jsonl

import audit
from audit.checks import CHECKS
from audit.checks.table import FindingTable
from audit.cli import main
from audit.expectations import RECORD_COLUMNS, SuiteError, load_suites, validate_suites, validation_tables
from audit.gate import GateConfig, evaluate_gate

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "expectations"


def _tables(result: audit.AuditResult) -> dict[str, pd.DataFrame]:
    return validation_tables(result.records, result.clean, result.removed, result.quarantine, result.found)


@pytest.fixture(scope="module")
def seeds_expectations(seeds_result: audit.AuditResult) -> dict[str, Any]:
    return validate_suites(load_suites(SUITES), _tables(seeds_result))


def _results(summary: dict[str, Any], suite: str) -> dict[str, dict[str, Any]]:
    [found] = [s for s in summary["suites"] if s["name"] == suite]
    return {r["name"]: r for r in found["results"]}


def _records(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {"source": "a.jsonl", "line": 1, "title": "A title", "text": "x" * 200, "url": ""}
    return pd.DataFrame([base | row for row in rows]).reindex(columns=RECORD_COLUMNS)


def _write_suite(folder: Path, name: str, expectations: list[dict[str, Any]], table: str = "records") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "meta": {"table": table}, "expectations": expectations}))
    return path


def test_shipped_suites_pass_on_seeds(seeds_expectations: dict[str, Any]) -> None:
    """Both suites load completely (6 + 5 expectations) and every expectation holds on seeds/."""
    counts = {s["name"]: (s["table"], s["rows"], s["evaluated"]) for s in seeds_expectations["suites"]}
    assert counts == {"input_records": ("records", 588, 6), "cleaned_corpus": ("corpus", 588, 5)}
    assert seeds_expectations["failed"] == 0 and seeds_expectations["evaluated"] == 11
    kinds = set(_results(seeds_expectations, "input_records"))
    assert "expect_column_values_to_be_well_formed_urls(url)" in kinds  # the custom expectation ran
    results = _results(seeds_expectations, "cleaned_corpus")
    # 526 kept texts are unique; 62 removed rows have no norm_text and are not compared
    assert results["expect_column_values_to_be_unique(norm_text)"]["element_count"] == 588
    assert results["expect_column_values_to_be_unique(norm_text)"]["observed"] == "0 of 588 rows unexpected"


def test_corpus_table_on_seeds(seeds_result: audit.AuditResult) -> None:
    corpus = _tables(seeds_result)["corpus"]
    assert corpus["status"].value_counts().to_dict() == {"kept": 526, "removed": 62}
    assert corpus["accounted"].all()
    # the 3 unrepaired "https: //" errors are on removed copies; kept records have none open
    assert corpus.loc[corpus["status"] == "kept", "unrepaired_errors"].sum() == 0


def test_failing_records_are_named_by_id(seeds_expectations: dict[str, Any]) -> None:
    """result_format goes to validate() and unexpected_index_column_names gives ids, not row numbers."""
    records = _records(
        [
            {"id": "ok"},
            {"id": "bad-url", "url": "https: //example.org"},
            {"id": "furniture", "title": "Subscribe"},
            {"id": "short", "text": "too short"},
        ]
    )
    suites = [s for s in load_suites(SUITES) if s.table == "records"]
    summary = validate_suites(suites, {"records": records, "corpus": pd.DataFrame()})
    results = _results(summary, "input_records")
    assert results["expect_column_values_to_be_well_formed_urls(url)"]["failing_ids"] == ["bad-url"]
    assert results["expect_column_values_to_not_be_page_furniture(title)"]["failing_ids"] == ["furniture"]
    assert results["expect_column_value_lengths_to_be_between(text)"]["failing_ids"] == ["short"]
    assert summary["failed"] == 3 and summary["failed_by_severity"] == {"error": 3}


def test_cleaned_corpus_suite_catches_defects(seeds_expectations: dict[str, Any]) -> None:
    clean = pd.DataFrame(
        {"id": ["a", "b"], "title": ["T", "T"], "text": ["Same text.", "same   TEXT"], "url": ["", ""]}
    )
    removed = pd.DataFrame({"id": ["c"], "reason": ["near_duplicate"], "duplicate_of": ["gone"]})
    findings = FindingTable.of([(i, "x", "error", "text", "m", {}, None) for i in ("a", "b")])
    findings = findings.with_applied(np.array([False, True]))
    quarantine = pd.DataFrame(columns=["source", "line", "offset", "raw", "error"])
    tables = validation_tables(pd.DataFrame(columns=RECORD_COLUMNS), clean, removed, quarantine, findings)
    suites = [s for s in load_suites(SUITES) if s.table == "corpus"]
    results = _results(validate_suites(suites, tables), "cleaned_corpus")
    assert sorted(results["expect_column_values_to_be_unique(norm_text)"]["failing_ids"]) == ["a", "b"]
    assert results["expect_column_values_to_be_between(unrepaired_errors)"]["failing_ids"] == ["a"]
    assert results["expect_column_values_to_be_in_set(accounted)"]["failing_ids"] == ["c"]
    assert results["expect_column_values_to_be_in_set(status)"]["success"]


def test_unknown_expectation_type_fails_loudly(tmp_path: Path) -> None:
    """GX drops an unregistered type silently; we refuse the suite, naming file and type."""
    path = _write_suite(
        tmp_path / "suites",
        "typo",
        [
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
            {"type": "expect_column_values_to_be_uniqe", "kwargs": {"column": "id"}},
        ],
    )
    with pytest.raises(
        SuiteError, match="expectation 2: unknown expectation type 'expect_column_values_to_be_uniqe'"
    ):
        validate_suites(load_suites(path.parent), {"records": _records([{"id": "a"}])})


def test_unknown_expectation_type_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_suite(tmp_path / "suites", "typo", [{"type": "expect_nothing_at_all", "kwargs": {}}])
    data = str(write_jsonl(tmp_path / "data.jsonl", good_records()))
    assert main(["check", data, "--expectations", "suites", "--quiet"]) == 2
    assert (
        "typo.json: expectation 1: unknown expectation type 'expect_nothing_at_all'"
        in capsys.readouterr().err
    )


def test_a_great_expectations_crash_exits_2_not_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX failing is a tool failure (exit 2), never mistaken for data failing the gate (exit 1)."""
    import great_expectations as gx

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated GX failure")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gx, "get_context", broken)
    data = str(write_jsonl(tmp_path / "data.jsonl", good_records()))
    assert main(["check", data, "--expectations", str(SUITES), "--quiet"]) == 2
    assert "Great Expectations could not start: simulated GX failure" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a readable JSON suite"),
        ('{"name": "x"}', "'expectations' list"),
        ('{"meta": {"table": "rows"}, "expectations": []}', "meta.table 'rows'"),
    ],
)
def test_bad_suite_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(SuiteError, match=message):
        load_suites(tmp_path)


def test_warning_severity_does_not_fail_an_error_gate(tmp_path: Path) -> None:
    """GX marks the suite failed even when only a warning expectation fails: the gate uses severity."""
    path = _write_suite(
        tmp_path / "suites",
        "soft",
        [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "title"}, "severity": "warning"}],
    )
    summary = validate_suites(load_suites(path.parent), {"records": _records([{"id": "a"}, {"id": "b"}])})
    [result] = summary["suites"][0]["results"]
    assert (result["success"], result["severity"], summary["suites"][0]["success"]) == (
        False,
        "warning",
        False,
    )
    report = {
        "counts": {"records": 2},
        "duplicates": {"duplicate_rate": 0.0},
        "parameters": {"checks": []},
        "expectations": summary,
    }
    assert evaluate_gate(report, None, GateConfig(fail_on="error")).passed
    failed = evaluate_gate(report, None, GateConfig(fail_on="warning")).failures
    assert [c.name for c in failed] == ["expectation:soft:expect_column_values_to_be_unique(title)"]
    assert sorted(failed[0].record_ids) == ["a", "b"]


PLUGIN = '''
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial


class ColumnValuesShoutFree(ColumnMapMetricProvider):
    condition_metric_name = "column_values.shout_free"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return ~column.str.isupper()


class ExpectColumnValuesToBeShoutFree(ColumnMapExpectation):
    """Expect no value in capitals only."""

    map_metric = "column_values.shout_free"
    success_keys = ("mostly",)
'''


def test_user_suite_with_custom_expectation_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user drops a .py (custom expectation) and a .json (suite) in the suite directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    suites = tmp_path / "my-suites"
    _write_suite(
        suites, "style", [{"type": "expect_column_values_to_be_shout_free", "kwargs": {"column": "title"}}]
    )
    (suites / "shout.py").write_text(PLUGIN)
    records = good_records()
    records[1]["title"] = "A STUDY OF PROTEIN FOLDING"
    data = str(write_jsonl(tmp_path / "data.jsonl", records))
    code = main(["check", data, "--expectations", str(suites), "--out", "out", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL expectation:style:expect_column_values_to_be_shout_free(title): style:" in out
    assert "1 of 5 rows unexpected [r1]" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["expectations"]["failed"] == 1
    assert report["expectations"]["suites"][0]["results"][0]["failing_ids"] == ["r1"]
    assert "## Expectations (0 of 1 passed)" in (tmp_path / "out" / "report.md").read_text()


def test_importing_audit_does_not_import_gx() -> None:
    code = "import sys, audit, audit.cli, audit.pipeline, audit.expectations, audit.gate, audit.config; "
    code += "print('great_expectations' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert proc.stdout.strip() == "False"


def test_check_writes_nothing_outside_out(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a fresh HOME and working directory: exit 0, JUnit with the expectations, no GX
    project folder or any other file outside --out, no progress bars on stderr."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    shutil.copytree(SUITES, work / "expectations")
    write_jsonl(work / "data.jsonl", good_records())
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert main(["check", "data.jsonl", "--out", "out", "--junit", "out/junit.xml"]) == 0
    captured = capfd.readouterr()
    assert "expectations: 11 of 11 passed in 2 suite(s)" in captured.out
    criteria = 1 + len(CHECKS) + 11  # duplicates, one per check, the 11 expectations
    assert f"gate: PASSED (0 of {criteria} criteria failed, fail-on error)" in captured.out
    assert "Calculating Metrics" not in captured.err
    new = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} - before
    assert Path("work/out/report.json") in new
    assert {p for p in new if p.parts[:2] != ("work", "out")} == set()
    cases = ET.parse(work / "out" / "junit.xml").getroot().findall("testsuite/testcase")
    assert sum(c.get("classname") == "scrape-audit.expectation" for c in cases) == 11


def test_an_expectation_on_a_missing_column_names_the_error(tmp_path: Path) -> None:
    """GX reports a failed metric per metric id; the report names the exception, not 'None of None'."""
    folder = tmp_path / "suites"
    folder.mkdir()
    spec = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "norm_text", "value_set": [""]}}
    _write_suite(folder, "missing", [spec])
    records = _records([{"id": "a"}])
    (result,) = validate_suites(load_suites(folder), {"records": records})["suites"][0]["results"]
    assert not result["success"]
    assert 'The column "norm_text" in BatchData does not exist' in result["exception"]


@pytest.mark.filterwarnings("ignore:.*(condition_parser|row_condition).*:DeprecationWarning")
def test_validation_reads_only_the_columns_a_suite_names(tmp_path: Path) -> None:
    from audit.expectations import build_suites, read_columns

    folder = tmp_path / "suites"
    frame = _records([{"id": "a"}, {"id": "b"}])
    title = {"column": "title", "min_value": 1}
    lengths = {"type": "expect_column_value_lengths_to_be_between", "kwargs": title}
    columns = {"column_A": "url", "column_B": "text"}
    pair = {"type": "expect_column_pair_values_to_be_equal", "kwargs": columns}
    _write_suite(folder, "a", [lengths, pair])
    _, (suite,) = build_suites(load_suites(folder))
    assert list(read_columns(frame, suite).columns) == ["id", "title", "text", "url"]
    _write_suite(folder, "a", [lengths])
    _, (suite,) = build_suites(load_suites(folder))
    assert list(read_columns(frame, suite).columns) == ["id", "title"]
    for whole in (
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},  # names no column
        {**lengths, "kwargs": {**title, "row_condition": 'url==""', "condition_parser": "pandas"}},
    ):
        _write_suite(folder, "a", [lengths, whole])
        _, (suite,) = build_suites(load_suites(folder))
        assert read_columns(frame, suite) is frame
