"""CSV exports (``.csv``) with a header row; quoted fields may span lines.

A row with invalid UTF-8 bytes, or with more or fewer fields than the header, is quarantined
with its line; the other rows still read.
"""

from __future__ import annotations

import csv
import io
import re
import sys

from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile, quarantined_as_not_text
from audit.ingest.fields import row_from_mapping

_SURROGATE = re.compile("[\udc80-\udcff]")

# Scraped fields can be huge; the default limit (128 KiB) would reject them.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class CsvReader(Reader):
    name = "csv"
    suffixes = (".csv",)

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        result = ReadResult()
        data = source.read_bytes()
        if quarantined_as_not_text(data, source, result):
            return result
        # Undecodable bytes become lone surrogates here, so the row holding them is found below.
        text = data.decode("utf-8-sig", errors="surrogateescape")
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
            if any(_SURROGATE.search(value) for value in row):
                result.quarantine_row(source, start, "invalid UTF-8 in row", ",".join(row))
            elif row and len(row) != len(header):
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
                result.spill()
            start = reader.line_num + 1
        return result
