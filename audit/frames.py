"""Reading DataFrame rows fast.

``DataFrame.to_dict("records")`` boxes each cell through the column's scalar iterator, which
for pandas' Arrow-backed string columns costs about a microsecond a cell: most of the time of
the clean step and the JSONL writers on large corpora. Converting each column once with
``tolist()`` and zipping gives the same Python values (str, int, float, None, lists) several
times faster.

Example:
    >>> import numpy as np
import pandas as pd
import pyarrow as pa
    >>> list(row_dicts(pd.DataFrame({"id": ["a", "b"], "line": [1, 2]})))
    [{'id': 'a', 'line': 1}, {'id': 'b', 'line': 2}]
"""

from __future__ import annotations

import contextlib
import ctypes
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def column_values(column: pd.Series) -> list[Any]:
    """The cells of ``column`` as Python values, missing ones as None where pandas says pd.NA."""
    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype) and not pa.types.is_temporal(dtype.pyarrow_dtype):
        # pandas boxes each cell of an Arrow column through an Arrow scalar (~5 µs a cell for the
        # dedup's list columns); Arrow's own conversion gives the same values, None for missing.
        return pa.chunked_array(column).to_pylist()
    cells = column.tolist()
    if getattr(column.dtype, "na_value", None) is pd.NA:
        # Nullable ints, floats, booleans, strings: to_dict gives None for a missing cell, tolist pd.NA.
        cells = [None if cell is pd.NA else cell for cell in cells]
    return cells


def row_dicts(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The rows of ``frame`` as dicts, like ``frame.to_dict("records")`` but lazily and faster."""
    columns = [str(c) for c in frame.columns]
    values = [column_values(frame.iloc[:, n]) for n in range(len(columns))]
    for row in zip(*values, strict=True):
        yield dict(zip(columns, row, strict=True))


def arrow_chunks(column: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow chunks behind any Arrow-backed column (shared, not copied), else None."""
    dtype = column.dtype
    backed = isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    )
    return pa.chunked_array(column) if backed else None


def take_values(column: pd.Series, rows: np.ndarray) -> list[Any]:
    """The cells of ``column`` at positions ``rows`` as Python values (``column_values`` of a take).

    Arrow's take on a many-chunk column first concatenates the chunks: a copy of the whole
    column (every text of the corpus) for a few rows. Here each chunk takes its own rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    chunks = arrow_chunks(column)
    if chunks is None or chunks.num_chunks <= 1:
        return column_values(column.take(rows)) if len(rows) else []
    starts = np.cumsum([0] + [len(chunk) for chunk in chunks.chunks])
    which = np.searchsorted(starts, rows, side="right") - 1
    cells: list[Any] = [None] * len(rows)
    for number in np.unique(which).tolist():
        at = np.flatnonzero(which == number)
        values = chunks.chunk(number).take(pa.array(rows[at] - starts[number])).to_pylist()
        for n, value in zip(at.tolist(), values, strict=True):
            cells[n] = value
    missing = getattr(column.dtype, "na_value", None)
    if missing is not None and missing is not pd.NA and chunks.null_count:
        cells = [missing if cell is None else cell for cell in cells]  # as tolist() gives them
    return cells


def take_chunks(chunks: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """The values of ``chunks`` at positions ``rows`` (any order, repeats allowed) as one array,
    each chunk taking its own rows.

    Arrow's take on a many-chunk array first concatenates the chunks: a copy of the whole column
    (at a million findings, 224 MB of evidence) for a few rows. Rows out of range raise
    ``IndexError``, as Arrow's take does.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(chunks)):
        raise IndexError(f"row out of bounds for {len(chunks)} values")
    if chunks.num_chunks == 1:
        return chunks.chunk(0).take(pa.array(rows))
    if not len(rows):
        return chunks.slice(0, 0).combine_chunks()
    ascending = bool((np.diff(rows) >= 0).all())
    order = None if ascending else np.argsort(rows, kind="stable")
    wanted = rows if order is None else rows[order]
    starts = np.cumsum([0] + [len(chunk) for chunk in chunks.chunks])
    bounds = np.searchsorted(wanted, starts)  # chunk n's rows: wanted[bounds[n] : bounds[n + 1]]
    parts = [
        chunks.chunk(n).take(pa.array(wanted[bounds[n] : bounds[n + 1]] - starts[n]))
        for n in range(chunks.num_chunks)
        if bounds[n + 1] > bounds[n]
    ]
    taken = pa.concat_arrays(parts)
    if order is None:
        return taken
    back = np.empty(len(rows), np.int64)
    back[order] = np.arange(len(rows))
    return taken.take(pa.array(back))


def take_arrow(column: pd.Series, rows: np.ndarray) -> pa.Array:
    """The cells of ``column`` at positions ``rows`` (any order) as one Arrow array, a chunk at a
    time (:func:`take_chunks`); a numpy column is converted for those rows only."""
    rows = np.asarray(rows, dtype=np.int64)
    chunks = arrow_chunks(column)
    if chunks is None:
        return pa.array(column.to_numpy()[rows])
    return take_chunks(chunks, rows)


def arrow_values(column: pd.Series) -> pa.Array | None:
    """``column`` as Arrow values holding what ``column_values`` gives, a missing cell as null;
    None for a column of Python objects (or another dtype Arrow does not hold as such)."""
    chunks = arrow_chunks(column)
    if chunks is not None:
        return chunks.combine_chunks() if chunks.num_chunks != 1 else chunks.chunk(0)
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        return pa.array(column.to_numpy())
    if isinstance(column.array, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray):
        return pa.array(column.array)  # pandas' nullable numbers: pd.NA as null
    return None


@dataclass(frozen=True)
class Patched:
    """An Arrow column whose values at some rows are the given Python values instead: the few
    records a step changed, over the column read from the corpus."""

    base: pa.Array
    #: Row positions (ascending) and the values there (Python values, or Arrow values of them).
    rows: np.ndarray
    values: Sequence[Any] | pa.Array

    def to_pylist(self) -> list[Any]:
        cells = self.base.to_pylist()
        values = self.values.to_pylist() if isinstance(self.values, pa.Array) else self.values
        for row, value in zip(np.asarray(self.rows).tolist(), values, strict=True):
            cells[row] = value
        return cells


@dataclass(frozen=True)
class JsonText:
    """A column of values already encoded as JSON text (findings' evidence): written as it is."""

    text: pa.Array

    def to_pylist(self) -> list[Any]:
        return [json.loads(value) for value in self.text.to_pylist()]


#: A column of rows read a batch at a time: Arrow values, Python values, patched Arrow values,
#: or JSON text.
Column = pa.Array | pa.ChunkedArray | Sequence[Any] | Patched | JsonText


def column_cells(column: Column) -> list[Any]:
    """The Python values of a :data:`Column`."""
    if isinstance(column, pa.Array | pa.ChunkedArray | Patched | JsonText):
        return column.to_pylist()
    return list(column)


def batch_rows(batches: Iterable[Mapping[str, Column]]) -> Iterator[dict[str, Any]]:
    """The rows of column batches as dicts."""
    for columns in batches:
        names = list(columns)
        for values in zip(*(column_cells(c) for c in columns.values()), strict=True):
            yield dict(zip(names, values, strict=True))


def arrow_strings(column: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow chunks behind a string column, shared, not copied; None when it is not Arrow-backed."""
    dtype = column.dtype
    if isinstance(dtype, pd.ArrowDtype):
        backed = pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    else:
        backed = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    return pa.chunked_array(column) if backed else None


def cell_reader(column: pd.Series, block: int = 512) -> Callable[[int], Any]:
    """A function giving the cell at a row position, without converting the whole column.

    An Arrow-backed column is converted a block of rows at a time, the last block kept: rows
    asked for in ascending order (dedup's ranking of duplicate copies) cost well under a
    microsecond each, and no list of every value is built.
    """
    chunks = arrow_strings(column)
    if chunks is None:
        values = column.to_numpy(dtype=object)
        return lambda row: values[row]
    cached: list[Any] = [0, []]  # first row of the block, its values

    def cell(row: int) -> Any:
        start, values = cached
        if not start <= row < start + len(values):
            start, values = row, chunks.slice(row, block).to_pylist()
            cached[:] = start, values
        return values[row - start]

    return cell


def release_memory() -> None:
    """Hand memory freed by a stage back to the OS (Arrow's pool, then glibc's heap).

    A stage that built and dropped millions of Python strings leaves their pages with the
    allocators; later stages (and the workers they fork) would otherwise start from that
    high-water mark. A no-op where glibc's ``malloc_trim`` is not available.
    """
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
