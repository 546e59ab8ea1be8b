"""What the parent works out between the checks' rounds (audit.checks.batches): the distinct
lengths counted by hashing are those of np.unique over the rows, the titled sources those of
the column's set, and each piece of proven copies holds exactly the rows of its clusters' members."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from audit.checks import batches
from audit.checks.empty_or_short import titled
from audit.checks.truncation import TruncationCheck, distinct_length_counts


@pytest.mark.parametrize("seed", range(5))
def test_distinct_length_counts_are_those_of_unique_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 4, size=(300, 3)).astype(np.uint64)
    rows[:, 1:] *= np.uint64(2**62)  # digests that differ in their high bits only
    found = np.concatenate([rows, rows[::3]])  # repeated rows, as from batches sharing a value
    expected = Counter(np.unique(found, axis=0)[:, 0].tolist())
    assert distinct_length_counts(found) == expected
    assert distinct_length_counts(np.zeros((0, 3), np.uint64)) == Counter()


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", object])
def test_titled_sources_are_the_sources_of_titled_records(dtype) -> None:
    records = pd.DataFrame(
        {
            "title": pd.Series(["A", " ", "", "B", "C"], dtype=dtype),
            "source": pd.Series(["s1", "s2", "s3", "s1", "s4"], dtype=dtype),
        }
    )
    assert titled(records) == {"s1", "s4"} == set(records.loc[records["title"].str.strip() != "", "source"])


def test_proven_pieces_hold_the_rows_of_their_members(monkeypatch) -> None:
    ids = [f"r{n}" for n in range(40)]
    records = pd.DataFrame({"id": pd.Series(ids, dtype="string[pyarrow]"), "title": "t", "text": "x"})
    groups = [["r3", "r1"], ["r7", "r39", "r0"], ["r5", "missing"], ["r10", "r11"], ["r20", "r21", "r22"]]
    run = batches._Run(records, {"truncation": TruncationCheck()}, pd.DataFrame({"members": groups}), 10)
    monkeypatch.setattr(batches, "PROVEN_MEMBERS", 4)
    pieces = batches._proven_pieces(run)
    assert [list(members) for _, (members, _) in pieces] == [groups[0:2], groups[2:4], groups[4:]]
    for _, (members, rows) in pieces:
        wanted = pa.array([m for group in members for m in group])
        expected = np.flatnonzero(pc.is_in(pa.array(ids), value_set=wanted).to_numpy(zero_copy_only=False))
        assert rows.tolist() == expected.tolist()
