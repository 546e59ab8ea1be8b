"""Shared fixtures: the real seed files and one audit of them, computed once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import audit

# Property and fuzz tests: bounded in the normal run; SCRAPE_AUDIT_FUZZ=1 selects the long run
# (see README, "Guarantees and how they are tested").
settings.register_profile("ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True
)
settings.load_profile("fuzz" if os.environ.get("SCRAPE_AUDIT_FUZZ") else "ci")

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


@pytest.fixture(scope="session")
def scheduler() -> Iterator[str]:
    """A LocalCluster of 2 worker processes on 127.0.0.1 for the session's Dask tests; its address.

    One for every module (each start took seconds of CPU: two interpreters importing the
    package). No test given it kills, restarts or limits its workers: those start their own
    (:func:`audit.engines.worker_memory.local_cluster`)."""
    from distributed import LocalCluster  # only the Dask tests pay for importing it

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        yield cluster.scheduler_address
