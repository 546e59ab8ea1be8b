"""Turning one structured row (JSONL object, CSV row, Parquet row) into a record row."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from audit.ingest.base import FieldMap, ReadResult, SourceFile, make_row, text_problem


def _optional_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from a table reader
        return ""
    return value if isinstance(value, str) else str(value)


def row_from_mapping(
    value: Mapping[str, Any],
    source: SourceFile,
    line: int,
    fmt: str,
    fields: FieldMap,
    result: ReadResult,
    raw: str | None = None,
    offset: int | None = None,
) -> None:
    """Append a record row for ``value`` to ``result``, or quarantine it with the reason.

    The text field must be present and a string; title, url and id are optional and are
    turned into strings when they hold another scalar. A field holding a NUL or a lone
    surrogate (which no output could be written with) quarantines the row.
    """
    if raw is None:
        raw = json.dumps(dict(value), default=str, ensure_ascii=False)
    if fields.text not in value:
        result.quarantine_row(source, line, f"missing text field {fields.text!r}", raw, offset)
        return
    text = value[fields.text]
    if not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        result.quarantine_row(
            source, line, f"text field {fields.text!r} is {kind}, not a string", raw, offset
        )
        return
    values = {
        "text": text,
        "title": _optional_str(value.get(fields.title)),
        "url": _optional_str(value.get(fields.url)).strip(),
        "record_id": _optional_str(value.get(fields.id)),
    }
    for name, field_value in values.items():
        problem = text_problem(field_value)
        if problem:
            result.quarantine_row(source, line, f"{name} field: {problem}", raw, offset)
            return
    result.rows.append(make_row(source, line, fmt, **values))
