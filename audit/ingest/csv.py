"""CSV exports (``.csv``) with a header row; quoted fields may span lines."""

from __future__ import annotations

import csv
import io
import sys

from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile
from audit.ingest.fields import row_from_mapping

# Scraped fields can be huge; the default limit (128 KiB) would reject them.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CsvReader(Reader):
    name = "csv"
    suffixes = (".csv",)

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        result = ReadResult()
        data = source.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            result.quarantine_row(
                source, line, f"invalid UTF-8 at byte {error.start}; CSV not read", data[:200], error.start
            )
            return result
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            return result
        except csv.Error as error:
            result.quarantine_row(source, 1, f"unreadable CSV header: {error}", text[:200])
            return result
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                result.quarantine_row(source, start, f"unreadable CSV row: {error}")
                start = reader.line_num + 1
                continue
            if row and len(row) != len(header):
                result.quarantine_row(
                    source,
                    start,
                    f"row has {len(row)} fields, header has {len(header)}",
                    ",".join(row),
                )
            elif row:
                row_from_mapping(
                    dict(zip(header, row, strict=True)), source, start, self.name, fields, result
                )
            start = reader.line_num + 1
        return result
