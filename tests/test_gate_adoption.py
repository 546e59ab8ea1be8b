"""The adoption files at the repository root: pre-commit hook and composite GitHub Action."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from audit.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _yaml(name: str):
    return YAML(typ="safe").load((ROOT / name).read_text())


def _check_options(capsys: pytest.CaptureFixture[str]) -> set[str]:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    return set(re.findall(r"--[a-z-]+", capsys.readouterr().out))


def test_pre_commit_hook_runs_the_check_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [hook] = _yaml(".pre-commit-hooks.yaml")
    assert hook["id"] == "scrape-audit" and hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["require_serial"] is True
    assert re.search(hook["files"], "scrapes/2024-05-01.jsonl.gz")
    assert not re.search(hook["files"], "src/scraper.py")
    program, *args = shlex.split(hook["entry"])
    assert program == "scrape-audit"
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--print-config"]) == 0  # the entry is a valid command line
    assert "fail-on" in capsys.readouterr().out


def test_action_is_composite_and_uses_real_options(capsys: pytest.CaptureFixture[str]) -> None:
    action = _yaml("action.yml")
    assert action["runs"]["using"] == "composite"
    assert action["inputs"]["paths"]["required"] is True
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == "check"]
    assert "${{" not in step["run"]  # inputs reach the script through env only (no injection)
    assert '/bin/scrape-audit" check $SA_PATHS' in step["run"]
    used = set(re.findall(r"--[a-z-]+", step["run"]))
    assert used and used <= _check_options(capsys)
    assert action["outputs"]["report"]["value"] == "${{ steps.check.outputs.report }}"
