"""Shared fixtures: the real seed files and one audit of them, computed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import audit

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture(scope="session")
def seeds_result() -> audit.AuditResult:
    """The full pipeline over seeds/, in memory (nothing written). Treat as read-only."""
    return audit.run([SEEDS], out=None)


@pytest.fixture(scope="session")
def seeds_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """seeds/ audited through the CLI into a temporary output directory."""
    from audit.cli import main

    out = tmp_path_factory.mktemp("seeds-out") / "reports"
    assert main(["run", str(SEEDS), "--out", str(out), "--quiet"]) == 0
    return out
