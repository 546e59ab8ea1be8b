"""The cyclic garbage collector is off while the pipeline's steps run, and back on after the
run, also when a step fails."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from audit.pipeline import AuditResult, Step, audit

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


class _Probe(Step):
    name = "probe"

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[bool] = []
        self.fail = fail

    def run(self, state: AuditResult) -> None:
        self.seen.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("a failing step")


def test_steps_run_with_the_collector_paused() -> None:
    assert gc.isenabled()
    probe = _Probe()
    audit([SEEDS], steps=[probe, probe])
    assert probe.seen == [False, False]
    assert gc.isenabled()


def test_a_failing_step_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError, match="a failing step"):
        audit([SEEDS], steps=[_Probe(fail=True)])
    assert gc.isenabled()


def test_outputs_written_with_the_collector_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.report.writers as writers

    seen: list[bool] = []
    real = writers.forked_map

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writers, "forked_map", recording)
    writers.write_outputs(audit([SEEDS]), tmp_path / "out")
    assert seen == [False]
    assert gc.isenabled()
    assert (tmp_path / "out" / "clean.jsonl").exists()
