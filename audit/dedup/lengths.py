"""Lengths of string cells at some rows, read from the Arrow buffers: no Python string made.

Dedup's default ranking of copies needs the text length (in characters, as ``len``) of the
rows in its graph only; pandas' ``str.len`` counts every row of the column (at a million
abstracts, most of the ranking's time). A UTF-8 text's characters are its bytes less its
continuation bytes (``0b10xxxxxx``), counted here by a compiled loop over those rows' bytes.

Example:
    >>> import pandas as pd
    >>> char_lengths(pd.Series(["abc", "日本", None, ""], dtype="str"), np.array([0, 1, 2, 3])).tolist()
    [3, 2, 0, 0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from audit.dedup.jit import compiled
from audit.frames import arrow_strings


def char_lengths(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``len`` of the cell at each of ``rows`` (0 for a missing cell or a non-string)."""
    rows = np.asarray(rows, dtype=np.int64)
    chunks = arrow_strings(column)
    if chunks is None:
        if not (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)):
            return np.zeros(len(rows), dtype=np.int64)  # no strings at all (e.g. every URL missing)
        return column.iloc[rows].str.len().fillna(0).to_numpy(dtype=np.int64)
    found = np.zeros(len(rows), dtype=np.int64)
    starts = np.cumsum([0] + [len(chunk) for chunk in chunks.chunks])
    which = np.searchsorted(starts, rows, side="right") - 1
    for number in np.unique(which).tolist():
        at = np.flatnonzero(which == number)
        chunk = chunks.chunk(number)
        local = rows[at] - starts[number]
        _, offsets, data = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bounds = np.frombuffer(offsets, width)[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)
        payload = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        counted = _utf8_lengths(payload, bounds, local)
        if chunk.null_count:
            counted[chunk.is_null().to_numpy(zero_copy_only=False)[local]] = 0
        found[at] = counted
    return found


@compiled
def _utf8_lengths(data: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    lengths = np.zeros(len(rows), np.int64)
    for k in range(len(rows)):
        count = 0
        for i in range(offsets[rows[k]], offsets[rows[k] + 1]):
            count += (data[i] & 0xC0) != 0x80
        lengths[k] = count
    return lengths
