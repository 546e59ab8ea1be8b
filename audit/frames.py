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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def column_values(column: pd.Series) -> list[Any]:
    """The cells of ``column`` as Python values, missing ones as None where pandas says pd.NA."""
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
