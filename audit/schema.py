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

Later stages add columns of their own (``norm_text`` from normalisation); they never change
the columns above. Findings, clusters and the cleaned corpus are separate DataFrames, see
:mod:`audit.checks.base`, :mod:`audit.dedup` and :mod:`audit.clean`.

Example:
    >>> from audit.schema import empty_records
    >>> list(empty_records().columns)[:4]
    ['id', 'source', 'line', 'title']
"""

from __future__ import annotations

import pandas as pd

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


def empty_records() -> pd.DataFrame:
    """A record DataFrame with no rows."""
    return records_frame([])


def quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    """Build the quarantine DataFrame: input that could not become a record, and why."""
    return pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))
