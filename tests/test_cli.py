"""The CLI is a thin layer: help, version, exit codes, output directory rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit._version import __version__
from audit.cli import main


def test_help_explains_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "examples:" in out


def test_run_help_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--threshold", "--text-field", "--title-field", "--url-field", "--id-field"):
        assert option in out


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == f"scrape-audit {__version__}"


def test_missing_path_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_non_empty_output_dir_needs_force(tmp_path: Path, seeds_dir: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("do not mix")
    one_file = str(seeds_dir / "000_1a2e1162499fffc1.txt")
    assert main(["run", one_file, "--out", str(out), "--quiet"]) == 2
    assert (out / "mine.txt").exists()
    assert main(["run", one_file, "--out", str(out), "--force", "--quiet"]) == 0
    assert not (out / "mine.txt").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["input"] == 53


def test_threshold_out_of_range_is_a_usage_error(tmp_path: Path, seeds_dir: Path) -> None:
    assert main(["run", str(seeds_dir), "--out", str(tmp_path / "o"), "--threshold", "1.5"]) == 2


def test_summary_is_printed(tmp_path: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(seeds_dir), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "588 in, 526 kept, 62 removed, 0 quarantined" in out
    assert "53 clusters covering 115 records" in out
