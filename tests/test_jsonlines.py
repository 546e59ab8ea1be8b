"""JSON Lines built a column at a time are byte for byte what json writes a row at a time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.frames import Patched, batch_rows, column_values, take_arrow
from audit.report import jsonlines
from audit.report.writers import _plain, frame_batches, write_jsonl

REFERENCE = json.JSONEncoder(ensure_ascii=False, default=str)

#: Text json escapes or might be thought to: controls, quotes, backslashes, U+2028/9, DEL, non-BMP.
hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=["Cs"]),
        st.sampled_from(
            ['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "\u2028", "\u2029"]
        ),
        st.sampled_from(["\x85", "\ufeff", "é", "…", "😀", "\U0010ffff", "/"]),
    ),
    max_size=40,
)
scores = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e16, 1e-05, 0.1, 0.7778, 5e-324, 1.7976931348623157e308]),
)


def reference_lines(rows: list[dict]) -> bytes:
    return "".join(REFERENCE.encode(row) + "\n" for row in rows).encode("utf-8")


def encoded(columns: dict) -> bytes:
    text = jsonlines.lines(columns)
    return b"".join(value.encode("utf-8") for value in text.to_pylist())


def test_every_character_is_escaped_as_json_does() -> None:
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    chunks = [characters[n : n + 4096] for n in range(0, len(characters), 4096)]
    values = pa.array(["".join(chunk) for chunk in chunks] + characters[:300], pa.large_string())
    expected = [REFERENCE.encode(v) for v in values.to_pylist()]
    assert jsonlines.fragments(values).to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), hostile_text), max_size=30))
def test_strings_with_nulls(values: list[str | None]) -> None:
    array = pa.array(values, pa.large_string())
    assert jsonlines.fragments(array).to_pylist() == [REFERENCE.encode(v) for v in values]
    assert jsonlines.escaped(array).to_pylist() == [REFERENCE.encode(v or "")[1:-1] for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(hostile_text, min_size=1, max_size=20), st.integers(0, 19), st.integers(0, 20))
def test_a_sliced_array_is_encoded_from_its_own_bytes(values: list[str], start: int, length: int) -> None:
    array = pa.array(values, pa.string()).slice(start, length)
    assert jsonlines.fragments(array).to_pylist() == [REFERENCE.encode(v) for v in array.to_pylist()]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            hostile_text,
            st.integers(-(2**63), 2**63 - 1),
            scores,
            st.booleans(),
            st.lists(st.one_of(st.none(), hostile_text), max_size=4),
            st.lists(scores, max_size=3),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_rows_of_every_arrow_type(rows: list[tuple]) -> None:
    texts, ints, floats, flags, lists, float_lists = (list(c) for c in zip(*rows, strict=True))
    columns = {
        "text": pa.array(texts, pa.string()),
        'odd "key"\n': pa.array(ints, pa.int64()),
        "score": pa.array(floats, pa.float64()),
        "flag": pa.array(flags),
        "urls": pa.array(lists, pa.list_(pa.large_string())),
        "scores": pa.array(float_lists, pa.large_list(pa.float64())),
        "pair": pa.StructArray.from_arrays([pa.array(texts), pa.array(ints)], names=["a", "b"]),
        "python": [{"x": [v, None]} for v in texts],
    }
    # A float column's NaN is a missing value (null); inside a list it is json's NaN.
    expected = [
        {
            "text": t,
            'odd "key"\n': i,
            "score": None if math.isnan(f) else f,
            "flag": b,
            "urls": u,
            "scores": s,
            "pair": {"a": t, "b": i},
            "python": {"x": [t, None]},
        }
        for t, i, f, b, u, s in rows
    ]
    assert encoded(columns) == reference_lines(expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(hostile_text, min_size=1, max_size=20), st.data())
def test_patched_columns(values: list[str], data: st.DataObject) -> None:
    rows = sorted(data.draw(st.sets(st.integers(0, len(values) - 1))))
    patches = data.draw(
        st.lists(st.one_of(hostile_text, st.none(), st.integers()), min_size=len(rows), max_size=len(rows))
    )
    column = Patched(pa.array(values, pa.large_string()), np.array(rows, np.int64), patches)
    expected = list(values)
    for row, value in zip(rows, patches, strict=True):
        expected[row] = value
    assert encoded({"v": column}) == reference_lines([{"v": v} for v in expected])
    assert list(batch_rows([{"v": column}])) == [{"v": v} for v in expected]
    texts = [p if type(p) is str else None for p in patches]  # patches given as Arrow values
    arrow = Patched(column.base, column.rows, pa.array(texts, pa.large_string()))
    expected = list(values)
    for row, value in zip(rows, texts, strict=True):
        expected[row] = value
    assert encoded({"v": arrow}) == reference_lines([{"v": v} for v in expected])
    assert list(batch_rows([{"v": arrow}])) == [{"v": v} for v in expected]


def test_take_arrow_takes_across_chunks() -> None:
    column = pd.Series(
        pd.array(pa.chunked_array([pa.array(["a", "b"]), pa.array(["c"]), pa.array(["d", "e"])]), dtype="str")
    )
    assert take_arrow(column, np.array([0, 2, 3, 4])).to_pylist() == ["a", "c", "d", "e"]
    assert take_arrow(column, np.array([4, 0])).to_pylist() == ["e", "a"]
    assert take_arrow(pd.Series([5, 6, 7]), np.array([2, 0])).to_pylist() == [7, 5]


def plain_rows(frame: pd.DataFrame) -> list[dict]:
    """The rows the writer wrote before it worked by columns (a row at a time, through _plain)."""
    columns = [str(c) for c in frame.columns]
    values = []
    for n in range(len(columns)):
        column = frame.iloc[:, n]
        cells = column_values(column)
        exact = pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
        strings = isinstance(column.dtype, pd.StringDtype) and not column.hasnans
        values.append(cells if exact or strings else [_plain(cell) for cell in cells])
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def test_dataframes_are_written_as_json_writes_their_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.array(["a", None, 'q"'], dtype="str"),
            "n": [1, 2, 3],
            "maybe": pd.array([1, None, 3], dtype="Int64"),
            "score": [0.5, float("nan"), float("inf")],
            "small": np.array([0.1, 2.5, -0.0], np.float32),
            "flag": [True, False, True],
            "evidence": [{"k": np.int64(3), "f": float("nan")}, None, float("nan")],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
            "urls": pd.array([["x"], [], None], dtype=pd.ArrowDtype(pa.list_(pa.string()))),
            "objects": ["x", np.str_("y"), None],
            "ints": [np.int64(1), 2, np.uint8(3)],
        }
    )
    frame.columns = [*frame.columns[:-1], "n"]  # a name given twice
    write_jsonl(frame, tmp_path / "f.jsonl")
    assert (tmp_path / "f.jsonl").read_bytes() == reference_lines(plain_rows(frame))
    write_jsonl(frame.iloc[:0], tmp_path / "empty.jsonl")
    assert (tmp_path / "empty.jsonl").read_bytes() == b""
    write_jsonl(pd.DataFrame(index=range(2)), tmp_path / "none.jsonl")
    assert (tmp_path / "none.jsonl").read_bytes() == b"{}\n{}\n"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), hostile_text), scores, st.one_of(st.none(), st.integers(-5, 5))),
        max_size=30,
    ),
    st.integers(1, 7),
)
def test_frames_in_batches(rows: list[tuple], batch: int) -> None:
    frame = pd.DataFrame(
        {
            "s": pd.array([r[0] for r in rows], dtype="str"),
            "f": pd.array([r[1] for r in rows], dtype="float64"),
            "i": pd.array([r[2] for r in rows], dtype="Int64"),
            "o": pd.Series([r[0] for r in rows], dtype=object),
        }
    )
    text = b"".join(encoded(columns) for columns in frame_batches(frame, batch))
    assert text == reference_lines(plain_rows(frame))


def test_a_lone_surrogate_is_refused_as_json_output_is() -> None:
    with pytest.raises(UnicodeEncodeError):
        jsonlines.lines({"v": ["\ud800"]})


leaf = st.one_of(
    st.none(),
    hostile_text,
    st.integers(-(2**70), 2**70),
    scores,
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(["signal", "match", "offset", 'q"k\n']), hostile_text)
evidence = st.one_of(
    st.dictionaries(keys, leaf, max_size=4),
    st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none()), leaf, max_size=2),
    st.fixed_dictionaries({"signal": hostile_text, "offset": st.integers(0, 9)}),
    st.fixed_dictionaries({"signal": hostile_text, "offset": scores}),
    leaf,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(evidence, max_size=30))
def test_python_values_of_mixed_layouts(values: list) -> None:
    assert jsonlines.python_text(values).to_pylist() == [REFERENCE.encode(v) for v in values]
