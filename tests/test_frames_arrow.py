"""Reading a few cells of many-chunk Arrow columns without copying the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audit.frames import cell_reader, column_values, take_values
from audit.normalise import comparable_texts


def chunked_strings(*chunks: list[str | None]) -> pd.Series:
    return pd.Series(
        pd.array(pa.chunked_array([pa.array(c, pa.large_string()) for c in chunks]), dtype="str")
    )


def test_take_values_is_a_take_chunk_by_chunk() -> None:
    column = chunked_strings(["a", "b", None], [], ["c", "d"], ["e"])
    rows = np.array([5, 0, 2, 3, 1, 5, 4])
    assert take_values(column, rows) == column_values(column.take(rows))
    assert take_values(column, np.array([], np.int64)) == []
    lists = pd.Series(
        pd.array(
            pa.chunked_array([pa.array([["x"], []]), pa.array([None, ["y", "z"]])]),
            dtype=pd.ArrowDtype(pa.list_(pa.string())),
        )
    )
    assert take_values(lists, np.array([3, 0, 2])) == [["y", "z"], ["x"], None]
    plain = pd.Series(["p", "q", "r"], dtype=object)
    assert take_values(plain, np.array([2, 0])) == ["r", "p"]


def test_cell_reader_reads_any_order() -> None:
    column = chunked_strings([f"t{n}" for n in range(700)], [f"u{n}" for n in range(700)])
    cell = cell_reader(column, block=64)
    for row in [0, 5, 699, 700, 1399, 3, 64, 63]:
        assert cell(row) == column.iloc[row]


def test_comparable_texts_share_chunks_without_blank_texts() -> None:
    frame = pd.DataFrame(
        {
            "text": chunked_strings(["a", " \u3000\x1c"], ["b", "c"]),
            "title": chunked_strings(["T1", "T2"], ["T3", "T4"]),
        }
    )
    body = comparable_texts(frame)
    assert body.tolist() == ["a", "T2", "b", "c"]  # what str.strip() leaves empty is blank
    untouched = pa.chunked_array(body).chunk(1)
    assert untouched.buffers()[2].address == pa.chunked_array(frame["text"]).chunk(1).buffers()[2].address


def test_column_values_of_arrow_columns_are_what_pandas_gives_with_none_for_missing() -> None:
    members = pa.array([[{"id": "a", "jaccard": 0.5}], None, [], [{"id": "b", "jaccard": None}]])
    frame = pd.DataFrame(
        {
            "members": pd.Series(pd.arrays.ArrowExtensionArray(members)),
            "count": pd.Series([1, None, 3, 4], dtype="int64[pyarrow]"),
            "score": pd.Series([0.5, None, float("nan"), 1.0], dtype="float64[pyarrow]"),
            "name": pd.Series(["x", None, "z", ""], dtype="string[pyarrow]"),
        }
    )
    for name in frame.columns:
        expected = [None if cell is pd.NA else cell for cell in frame[name].tolist()]
        got = column_values(frame[name])
        assert repr(got) == repr(expected), name


def test_is_in_matches_pandas_isin_on_arrow_and_plain_columns() -> None:
    from audit.clean import _is_in

    values = ["r1", "r2", "r3", "r1", ""]
    for dtype in ("string[pyarrow]", object):
        column = pd.Series(values, dtype=dtype)
        for wanted in ([], ["r1"], ["r3", "", "nope"]):
            assert _is_in(column, wanted).tolist() == column.isin(wanted).tolist()
    assert _is_in(pd.Series([], dtype="string[pyarrow]"), ["a"]).tolist() == []


def _chunked(kind: str, sizes: list[int], seed: int) -> pa.ChunkedArray:
    rng = np.random.default_rng(seed)
    chunks = []
    for size in sizes:
        values = [None if rng.random() < 0.2 else f"v{rng.integers(0, 5)}" for _ in range(size)]
        array = pa.array(values, pa.large_string())
        chunks.append(array.dictionary_encode() if kind == "dictionary" else array)
    kind_type = pa.dictionary(pa.int32(), pa.large_string()) if kind == "dictionary" else pa.large_string()
    return pa.chunked_array(chunks, kind_type)


@pytest.mark.parametrize("kind", ["plain", "dictionary"])
@pytest.mark.parametrize("sizes", [[], [0], [7], [3, 0, 5, 1], [4, 4, 4, 4, 4]])
def test_take_chunks_is_arrows_take_without_the_copy(kind: str, sizes: list[int]) -> None:
    from audit.frames import take_chunks

    chunks = _chunked(kind, sizes, seed=len(sizes))
    rng = np.random.default_rng(7)
    total = len(chunks)
    cases = [np.zeros(0, np.int64)]
    if total:
        cases += [
            np.arange(total),  # every row, ascending
            np.arange(total)[::-1],  # descending
            rng.integers(0, total, 3 * total),  # any order, repeats
            np.sort(rng.integers(0, total, total)),  # ascending with repeats
        ]
    for rows in cases:
        taken = take_chunks(chunks, rows)
        assert isinstance(taken, pa.Array) and taken.type == chunks.type
        assert taken.to_pylist() == chunks.combine_chunks().take(pa.array(rows, pa.int64())).to_pylist()
    for bad in ([total], [-1]):
        with pytest.raises(IndexError):
            take_chunks(chunks, np.array(bad))


def test_take_arrow_of_any_order_is_the_rows_values() -> None:
    from audit.frames import take_arrow

    column = chunked_strings(["a", "b", None], [], ["c", "d"], ["e"])
    rows = np.array([5, 0, 2, 3, 1, 5, 4])
    assert take_arrow(column, rows).to_pylist() == ["e", "a", None, "c", "b", "e", "d"]
    numbers = pd.Series([10, 11, 12])
    assert take_arrow(numbers, np.array([2, 0, 2])).to_pylist() == [12, 10, 12]


def test_finding_values_at_rows_are_the_column_values_at_those_rows() -> None:
    from audit.checks.base import Finding
    from audit.checks.table import FindingTable

    def finding(n: int, check: str, severity: str) -> Finding:
        return Finding(f"r{n}", check, severity, "text", f"m{n}", {"n": n}, {"old": "a"} if n % 2 else None)

    groups = ((0, "a", "error"), (4, "b", "info"), (8, "a", "warning"))
    parts = [FindingTable.of([finding(n, c, s) for n in range(at, at + 4)]) for at, c, s in groups]
    table = FindingTable.concat(parts)
    assert table.table["record_id"].num_chunks == 3
    rows = np.array([11, 0, 5, 5, 3])
    for name in ("record_id", "check", "severity", "field", "message", "evidence", "repair"):
        every = table.values(name)
        assert table.values(name, rows) == [every[row] for row in rows], name
    assert table.values("check", np.zeros(0, np.int64)) == []
    assert FindingTable.empty().values("evidence", np.zeros(0, np.int64)) == []


def test_ranked_and_names_over_chunks_with_their_own_dictionaries() -> None:
    from audit.checks.base import SEVERITIES, Finding
    from audit.checks.table import FindingTable

    rng = np.random.default_rng(3)
    checks, severities = ["zeta", "alpha", "Beta", "mid"], ["info", "error", "warning"]
    parts = []
    for _ in range(4):  # each part's dictionaries in the order of its own first appearances
        size = rng.integers(0, 9)
        ids, names = rng.integers(0, 6, size), rng.choice(checks, size)
        picks = zip(ids, names, rng.choice(severities, size), strict=True)
        parts.append(FindingTable.of([Finding(f"r{r}", str(c), str(v), "t", "m", {}) for r, c, v in picks]))
    table = FindingTable.concat(parts)
    rows = list(zip(table.values("severity"), table.values("check"), table.values("record_id"), strict=True))
    expected = sorted(range(len(rows)), key=lambda n: (SEVERITIES.index(rows[n][0]), *rows[n][1:], n))
    assert table.ranked().tolist() == expected
    names, codes = table.names("check"), table.codes("check")
    assert [names[code] for code in codes] == table.values("check")
    assert FindingTable.empty().names("check") == [] and FindingTable.empty().ranked().tolist() == []
