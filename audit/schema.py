"""The record model: one pandas DataFrame that flows through every stage.

Each row is one record read from a scrape file. Columns:

============  ========  ==============================================================
column        type      meaning
============  ========  ==============================================================
id            str       the record's id field, else ``<source>:<line>``; unique
source        str       the file the record came from (path relative to the argument)
line          int       1-based line where the record starts in ``source``
title         str       title, ``""`` when the input has none
text          str       the body text (abstract, document); ``""`` when empty
url           str       the url field, ``""`` when the input has none
urls          list[str] every URL found in ``text``; sentence punctuation after a URL
                        (``. , ) ;``) is not part of it
scraped_date  str|None  date header of a page dump (``"Mar 13"``) the record followed
format        str       reader that produced it: ``pagedump``, ``jsonl``, ``csv``, ``parquet``
============  ========  ==============================================================

String columns are pandas ``str`` columns backed by Arrow (one chunk per ingest batch, see
:func:`records_from_tables`); ``urls`` is an Arrow list column. No stage adds or changes
columns: the normalised text is computed where it is used (:mod:`audit.normalise`).
Findings, clusters and the cleaned corpus are separate DataFrames, see :mod:`audit.checks.base`,
:mod:`audit.dedup` and :mod:`audit.clean`.

Example:
    >>> from audit.schema import empty_records
    >>> list(empty_records().columns)[:4]
    ['id', 'source', 'line', 'title']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "source",
    "line",
    "title",
    "text",
    "url",
    "urls",
    "scraped_date",
    "format",
)

QUARANTINE_COLUMNS: tuple[str, ...] = ("source", "line", "offset", "raw", "error")


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a record DataFrame from row dicts, with every schema column present and typed."""
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    frame["line"] = frame["line"].astype("int64")
    for column in ("id", "source", "title", "text", "url", "format"):
        frame[column] = frame[column].fillna("").astype(str)
    frame["urls"] = [list(u) if isinstance(u, list | tuple) else [] for u in frame["urls"]]
    frame["scraped_date"] = frame["scraped_date"].astype(object).where(frame["scraped_date"].notna(), None)
    return frame


#: The Arrow types of the record columns: strings are ``large_string`` (pandas' ``str`` dtype
#: holds them without a copy), ``urls`` a list of them.
RECORD_TYPES = pa.schema(
    [
        ("id", pa.large_string()),
        ("source", pa.large_string()),
        ("line", pa.int64()),
        ("title", pa.large_string()),
        ("text", pa.large_string()),
        ("url", pa.large_string()),
        ("urls", pa.list_(pa.large_string())),
        ("scraped_date", pa.large_string()),
        ("format", pa.large_string()),
    ]
)
_STRING_COLUMNS = ("id", "source", "title", "text", "url", "format")


class RecordColumns:
    """Record rows gathered column by column, then turned into an Arrow table in one go.

    Readers fill one of these per batch instead of a dict per record: a batch's strings live as
    Python objects only until :meth:`table`, so no list of every text of a corpus exists at once.
    """

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in RECORD_COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["id"])

    def add(self, row: dict[str, Any]) -> None:
        """Append one row in the shape of :func:`audit.ingest.base.make_row`."""
        for name, values in self.columns.items():
            values.append(row[name])

    def table(self) -> pa.Table:
        """The gathered rows as an Arrow table of :data:`RECORD_TYPES`; the builder is emptied."""
        columns, self.columns = self.columns, {name: [] for name in RECORD_COLUMNS}
        return pa.Table.from_arrays(
            [pa.array(columns[f.name], f.type) for f in RECORD_TYPES], schema=RECORD_TYPES
        )


def records_from_tables(tables: Sequence[pa.Table]) -> pd.DataFrame:
    """The record DataFrame of Arrow tables of :data:`RECORD_TYPES`, without copying the strings.

    String columns become pandas ``str`` columns over the tables' buffers (one chunk per table),
    ``urls`` a column of lists (Arrow-backed) and ``scraped_date`` an object column (None or str).
    """
    table = pa.concat_tables(tables) if tables else RECORD_TYPES.empty_table()
    data: dict[str, Any] = {}
    for name in RECORD_COLUMNS:
        column = table.column(name)
        if name in _STRING_COLUMNS:
            data[name] = pd.array(column, dtype="str")
        elif name == "line":
            data[name] = column.to_numpy().astype("int64", copy=False)
        elif name == "urls":
            data[name] = pd.array(column, dtype=pd.ArrowDtype(column.type))
        else:
            data[name] = pd.Series(column.to_pylist(), dtype=object)
    return pd.DataFrame(data, columns=list(RECORD_COLUMNS))


def rows_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Record rows (dicts with every schema column) as one Arrow table of :data:`RECORD_TYPES`."""
    builder = RecordColumns()
    for row in rows:
        builder.add(row)
    return builder.table()


def empty_records() -> pd.DataFrame:
    """A record DataFrame with no rows."""
    return records_frame([])


def quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    """Build the quarantine DataFrame: input that could not become a record, and why."""
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))
