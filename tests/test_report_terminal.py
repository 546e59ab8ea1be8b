"""Terminal output: stage progress on a TTY only, nothing with --quiet or when piped, and the
one-screen summary on stdout either way."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import audit
from audit.terminal import STAGES, stage_progress

ONE_FILE = "000_1a2e1162499fffc1.txt"


def _plain(screen: str) -> str:
    """The text a person sees: terminal colour and cursor codes removed."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)


def test_progress_lists_every_stage(tmp_path: Path, seeds_dir: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with stage_progress(enabled=True, console=console) as hook:
        assert hook is not None
        audit.run([seeds_dir / ONE_FILE], out=tmp_path / "out", progress=hook)
    shown = _plain(screen.getvalue())
    for stage in STAGES:
        assert f"✓ {stage}" in shown
    assert STAGES[-1] == "write"


def test_progress_disabled_gives_no_hook() -> None:
    with stage_progress(enabled=False) as hook:
        assert hook is None


def _cli_on_a_tty(args: list[str], cwd: Path) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal (as in a shell); return (stdout, terminal)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audit", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=os.environ | {"COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    stdout = proc.communicate(timeout=120)[0].decode()
    os.close(leader)
    assert proc.returncode == 0
    return stdout, _plain(b"".join(chunks).decode(errors="replace"))


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_progress_only_on_a_terminal_without_quiet(tmp_path: Path, seeds_dir: Path, quiet: bool) -> None:
    args = ["run", str(seeds_dir / ONE_FILE), "--out", str(tmp_path / "out")] + (["--quiet"] if quiet else [])
    stdout, terminal = _cli_on_a_tty(args, tmp_path)
    assert stdout.startswith("records: 53 in, ")
    if quiet:
        assert terminal == ""
    else:
        for stage in STAGES:
            assert f"✓ {stage}" in terminal


def test_cli_silent_on_stderr_when_piped(tmp_path: Path, seeds_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "run", str(seeds_dir / ONE_FILE), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stderr == ""
    assert proc.stdout.splitlines()[0].startswith("records: 53 in, ")
    assert "report.html" in proc.stdout
    assert (tmp_path / "out" / "report.html").exists()
