"""The adoption files at the repository root: pre-commit hook and composite GitHub Action."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
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


def _run_step(step: dict, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one composite step's script as a GitHub runner does (``shell: bash``)."""
    script = cwd / f"step_{step.get('id', step['name']).replace(' ', '_')}.sh"
    script.write_text(step["run"])
    step_env = {name: _substitute(value, env) for name, value in step.get("env", {}).items()}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=os.environ | env | step_env,
        capture_output=True,
        text=True,
    )


def _substitute(value: str, env: dict[str, str]) -> str:
    """Fill ``${{ inputs.NAME }}`` from the test's inputs (the runner's expression syntax)."""
    return re.sub(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}", lambda m: env[f"INPUT_{m.group(1)}"], value)


@pytest.mark.parametrize(
    ("args", "expected_exit"),
    # seeds/ has 9 malformed URLs at error severity: the default gate fails on them
    [("--max-findings malformed_url=9", 0), ("", 1), ("--max-findings malformed_url=8", 1)],
)
def test_action_check_and_summary_steps_run_as_on_a_runner(
    tmp_path: Path, args: str, expected_exit: int
) -> None:
    """The action's own scripts, run by bash with a runner's variables; the install step is
    replaced by a `scrape-audit` in `$RUNNER_TEMP` that runs this checkout (no network here)."""
    action = _yaml("action.yml")
    steps = {s.get("id", s.get("name")): s for s in action["runs"]["steps"]}
    runner_temp = tmp_path / "runner"
    program = runner_temp / "scrape-audit" / "bin" / "scrape-audit"
    program.parent.mkdir(parents=True)
    program.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m audit "$@"\n')
    program.chmod(0o755)
    workspace = tmp_path / "repo"
    shutil.copytree(ROOT / "seeds", workspace / "scrapes")
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    env = {
        "GITHUB_ACTIONS": "true",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "INPUT_paths": "scrapes/",
        "INPUT_args": args,
        "INPUT_out": action["inputs"]["out"]["default"],
    }
    check = _run_step(steps["check"], env, workspace)
    assert check.returncode == expected_exit, check.stderr
    report = workspace / "scrape-audit-report" / "report.md"
    assert output.read_text() == f"report={action['inputs']['out']['default']}/report.md\n"
    assert (workspace / "scrape-audit-report" / "junit.xml").exists()
    # the failed criterion is annotated on the files, at most 10 lines a criterion
    annotations = [line for line in check.stdout.splitlines() if line.startswith("::error")]
    if expected_exit:
        assert "file=scrapes/" in annotations[0] and 1 < len(annotations) <= 10
    else:
        assert annotations == []
    [summary_step] = [s for s in action["runs"]["steps"] if s.get("name") == "Job summary"]
    assert summary_step.get("if") == "always()"  # the summary is written when the gate fails too
    assert _run_step(summary_step, env, workspace).returncode == 0
    assert summary.read_text() == report.read_text()
