"""The labelled fault corpus (bench/faults.py), small: the quality targets of the checks hold."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import faults


@pytest.fixture(scope="module")
def scores() -> faults.Scores:
    return faults.measure(faults.build(seed=7, per_kind=6, n_clean=200))


def test_corpus_is_deterministic() -> None:
    a, b = faults.build(seed=3, per_kind=2, n_clean=20), faults.build(seed=3, per_kind=2, n_clean=20)
    assert a.records.equals(b.records) and a.labels == b.labels


def test_every_fault_kind_is_injected(scores: faults.Scores) -> None:
    assert (scores.per_kind["faults"] == 6).all()
    kinds = set(zip(scores.per_kind["check"], scores.per_kind["kind"], strict=True))
    assert ("truncation", "proven") in kinds and ("truncation", "length limit") in kinds
    assert len(kinds) >= 45


@pytest.mark.parametrize("check", ["truncation", "malformed_url"])
def test_truncation_and_url_targets(scores: faults.Scores, check: str) -> None:
    row = scores.per_check.set_index("check").loc[check]
    assert row["recall"] >= 0.95 and row["precision"] >= 0.95, row.to_dict()


def test_other_checks_find_their_faults(scores: faults.Scores) -> None:
    table = scores.per_check.set_index("check")
    assert (table["recall"] >= 0.9).all() and (table["precision"] >= 0.9).all(), table


def test_clean_controls_are_rarely_flagged(scores: faults.Scores) -> None:
    assert scores.clean_total >= 200  # plus the complete copies of the proven pairs
    assert scores.clean_flag_rate < 0.01, scores.clean_flagged
