"""Parquet exports (``.parquet``); a record's ``line`` is its 1-based row number.

A large file can be read a few row groups at a time (:func:`read_row_groups`), its rows numbered
as in the whole file. A value Python cannot take (an invalid UTF-8 string, a date out of range)
makes the whole file one quarantine row: a part of the file that meets one says so
(``ReadResult.file_error``), and the file is read whole again.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile
from audit.ingest.fields import row_from_mapping


class ParquetReader(Reader):
    name = "parquet"
    suffixes = (".parquet", ".pq")

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        import pyarrow.parquet as pq  # imported here: only Parquet inputs pay for it

        result = ReadResult()
        try:
            table = pq.read_table(io.BytesIO(source.read_bytes()))
        except Exception as error:  # pyarrow raises several types for damaged files
            result.quarantine_row(source, None, f"unreadable Parquet file: {error}")
            return result
        if fields.text not in table.column_names:
            result.quarantine_row(
                source,
                None,
                f"missing text column {fields.text!r} (columns: {', '.join(table.column_names)}); "
                f"{table.num_rows} rows not read",
            )
            return result
        return _read_table(table, 0, source, fields)


def _read_table(table: Any, rows_before: int, source: SourceFile, fields: FieldMap) -> ReadResult:
    """The records of ``table`` (a ``pyarrow.Table``), its rows after ``rows_before`` of the file."""
    result = ReadResult()
    number = rows_before
    # Converted a batch at a time: no dict per record of the whole file at once.
    for batch in table.to_batches(max_chunksize=20_000):
        try:
            rows = batch.to_pylist()
        except Exception as error:  # values pyarrow cannot turn into Python (dates out of range...)
            result = ReadResult(file_error=True)  # as before: such a file gives no records, only this row
            result.quarantine_row(source, None, f"unreadable Parquet values: {error}")
            return result
        for row in rows:
            number += 1
            row_from_mapping(row, source, number, ParquetReader.name, fields, result)
        result.spill()
    return result


def read_row_groups(
    source: SourceFile, fields: FieldMap, groups: Sequence[int], rows_before: int
) -> ReadResult:
    """The records of row groups ``groups`` (consecutive) of a file whose text column is there,
    after ``rows_before`` rows, as the whole file numbers and quarantines them."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(source.path) as parquet:
            table = parquet.read_row_groups(list(groups), use_threads=False)
    except Exception as error:  # as damaged as a whole file: read whole again, as it is
        result = ReadResult(file_error=True)
        result.quarantine_row(source, None, f"unreadable Parquet file: {error}")
        return result
    return _read_table(table, rows_before, source, fields)
