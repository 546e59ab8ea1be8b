"""Configuration: defaults < config file < flags, with origins; --print-config; run reads it too."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from gate_corpus import good_records, write_jsonl

from audit.cli import main
from audit.config import ConfigError, resolve


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


PYPROJECT = """\
[project]
name = "my-scraper"

[tool.scrape-audit]
threshold = 0.9
checks = ["truncation"]
fail-on = "warning"
max-duplicate-rate = 0.15

[tool.scrape-audit.max-findings]
truncation = 4

[tool.scrape-audit.check-options.truncation]
"""


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = resolve({}, cwd=tmp_path)
    assert set(settings.origins.values()) == {"default"}
    config = settings.audit_config(gate=True)
    assert config.threshold == 0.8 and config.checks is None and config.expectations is None
    assert (
        config.gate is not None and config.gate.fail_on == "error" and config.gate.max_duplicate_rate is None
    )


def test_pyproject_then_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    settings = resolve({"fail-on": "error", "max-findings": {"malformed_url": 2}}, cwd=tmp_path)
    origin = "pyproject.toml [tool.scrape-audit]"
    assert settings.values["threshold"] == 0.9 and settings.origins["threshold"] == origin
    assert settings.values["fail-on"] == "error" and settings.origins["fail-on"] == "--fail-on"
    assert settings.values["max-findings"] == {"truncation": 4, "malformed_url": 2}
    assert settings.origins["max-findings"] == f"{origin}, then --max-findings"
    assert settings.origins["num-perm"] == "default"
    config = settings.audit_config(gate=True)
    assert config.checks == ("truncation",)
    assert config.check_options == {"truncation": {}}
    assert config.gate is not None and config.gate.max_duplicate_rate == 0.15


def test_scrape_audit_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "scrape-audit.toml").write_text('fail-on = "info"\n')
    settings = resolve({}, cwd=tmp_path)
    assert settings.values["fail-on"] == "info" and settings.origins["fail-on"] == "scrape-audit.toml"
    assert settings.values["threshold"] == 0.8  # pyproject.toml is not read when scrape-audit.toml exists


def test_pyproject_without_our_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert set(resolve({}, cwd=tmp_path).origins.values()) == {"default"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresold = 0.9\n", "unknown key 'thresold'"),
        ('fail-on = "fatal"\n', "fail-on must be one of error, warning, info"),
        ('checks = ["nope"]\n', "nope"),
        ("max-findings = { truncation = -1 }\n", "max-findings must be"),
        ("num-perm = 1.5\n", "num-perm must be an integer"),
        ("threshold = \n", "cannot read the config file"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "scrape-audit.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"scrape-audit\.toml") as error:
        resolve({}, cwd=tmp_path)
    assert message in str(error.value)


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scrape-audit.toml").write_text("thresold = 0.9\n")
    assert main(["check", "--print-config"]) == 2
    assert "scrape-audit.toml: unknown key 'thresold'" in capsys.readouterr().err


def test_explicit_config_file(tmp_path: Path) -> None:
    (tmp_path / "ci.toml").write_text("max-duplicate-rate = 0.05\n")
    settings = resolve({}, config_file=tmp_path / "ci.toml", cwd=tmp_path)
    assert settings.values["max-duplicate-rate"] == 0.05
    assert settings.origins["max-duplicate-rate"] == str(tmp_path / "ci.toml")
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        resolve({}, config_file=tmp_path / "missing.toml")


def test_print_config_shows_values_and_origins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert main(["check", "--print-config", "--max-duplicate-rate", "0.2", "--no-expectations"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("=")[0].strip("# ").strip(): line for line in out.splitlines()}
    assert lines["threshold"].endswith("# pyproject.toml [tool.scrape-audit]")
    assert "max-duplicate-rate = 0.2" in lines["max-duplicate-rate"]
    assert lines["max-duplicate-rate"].endswith("# --max-duplicate-rate")
    assert (
        lines["expectations"].startswith("expectations = false")
        and "--no-expectations" in lines["expectations"]
    )
    assert lines["num-perm"].endswith("# default")
    # the output is TOML: paste it into scrape-audit.toml and get the same values
    pasted = tomllib.loads("\n".join(line.split("  #")[0] for line in out.splitlines()))
    assert pasted["max-duplicate-rate"] == 0.2 and pasted["checks"] == ["truncation"]
    assert pasted["max-findings"] == {"truncation": 4}


def test_run_reads_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = good_records()
    records[0]["text"] = records[0]["text"].replace("https://", "https: //")  # a malformed_url finding
    data = str(write_jsonl(tmp_path / "data.jsonl", records))
    (tmp_path / "scrape-audit.toml").write_text('checks = ["truncation"]\nthreshold = 0.95\n')
    assert main(["run", data, "--out", "out", "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["parameters"]["checks"] == ["truncation"]
    assert report["parameters"]["threshold"] == 0.95
    assert report["findings_by_check"] == {}  # malformed_url did not run
    assert "gate" not in report
    # a flag still wins over the file
    assert main(["run", data, "--out", "out2", "--checks", "malformed_url", "--quiet"]) == 0
    assert json.loads((tmp_path / "out2" / "report.json").read_text())["findings_by_check"] == {
        "malformed_url": 1
    }


def test_config_file_thresholds_drive_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = good_records()
    records.append(dict(records[0], id="copy"))
    data = str(write_jsonl(tmp_path / "data.jsonl", records))
    (tmp_path / "scrape-audit.toml").write_text("max-duplicate-rate = 0.1\n")
    assert main(["check", data, "--quiet"]) == 1
    assert "FAIL duplicates" in capsys.readouterr().out
    assert main(["check", data, "--max-duplicate-rate", "0.5", "--quiet"]) == 0
