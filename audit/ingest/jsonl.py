"""JSON Lines exports (``.jsonl``, ``.ndjson``, ``.json`` with one object a line)."""

from __future__ import annotations

import json

from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile, decode_lines
from audit.ingest.fields import row_from_mapping


class JsonlReader(Reader):
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson", ".json")

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        result = ReadResult()
        for number, offset, line in decode_lines(source.read_bytes(), source, result):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                result.quarantine_row(
                    source, number, f"invalid JSON: {error.msg} at column {error.colno}", line, offset
                )
                continue
            except ValueError as error:  # e.g. an integer longer than Python's digit limit
                result.quarantine_row(source, number, f"invalid JSON: {error}", line, offset)
                continue
            except RecursionError:
                result.quarantine_row(source, number, "invalid JSON: nested too deeply", line, offset)
                continue
            if not isinstance(value, dict):
                result.quarantine_row(
                    source, number, f"JSON value is a {type(value).__name__}, not an object", line, offset
                )
                continue
            row_from_mapping(value, source, number, self.name, fields, result, raw=line, offset=offset)
        return result
