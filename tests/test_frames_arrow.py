"""Reading a few cells of many-chunk Arrow columns without copying the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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
