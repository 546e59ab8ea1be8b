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
from audit.checks.truncation import TruncationCheck, distinct_length_counts, ending_words


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


@pytest.mark.parametrize("seed", range(3))
def test_partition_censuses_merge_into_the_whole_corpus_values(seed: int) -> None:
    """The Dask engine's census of each partition (:func:`audit.engines.corpus_checks._census`),
    merged as it merges them, gives the length limit found over every value at once and every
    word a value may end in; copies of a value spread over partitions (some with trailing
    whitespace, Unicode too) count once."""
    from audit.engines.corpus_checks import _census

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzé"))

    def word(length: int) -> str:
        return "".join(rng.choice(letters, length))

    values = [word(int(n)) for n in rng.integers(3, 90, 300)] + [word(50) for _ in range(40)]
    values = [
        v + str(rng.choice(["", " ", "\u00a0", "\t\n"])) for v in values for _ in range(rng.integers(1, 4))
    ]
    values += ["", "  "]
    rng.shuffle(values)
    frame = pd.DataFrame({"title": values, "text": values[::-1]}, dtype=object)
    cuts = sorted(rng.choice(np.arange(1, len(values)), 6, replace=False).tolist())
    parts = [
        frame.iloc[a:b].reset_index(drop=True) for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)
    ]
    censuses = [_census(part) for part in parts]
    check = TruncationCheck()
    for n, name in enumerate(("title", "text")):
        merged = np.concatenate([census[n] for census in censuses])
        limit = check.limit_of(distinct_length_counts(merged))
        assert limit == check.length_limit(frame[name].tolist()) and limit is not None
        assert limit["limit"] == 50
    assert set().union(*(census[2] for census in censuses)) == ending_words([frame["title"], frame["text"]])
