"""Parquet exports (``.parquet``); a record's ``line`` is its 1-based row number."""

from __future__ import annotations

import io

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
        number = 0
        # Converted a batch at a time: no dict per record of the whole file at once.
        for batch in table.to_batches(max_chunksize=20_000):
            try:
                rows = batch.to_pylist()
            except Exception as error:  # values pyarrow cannot turn into Python (dates out of range...)
                result = ReadResult()  # as before: such a file gives no records, only this row
                result.quarantine_row(source, None, f"unreadable Parquet values: {error}")
                return result
            for row in rows:
                number += 1
                row_from_mapping(row, source, number, self.name, fields, result)
            result.spill()
        return result
