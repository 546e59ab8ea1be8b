"""Normalisation: the comparable form of a text, used by dedup and exact-duplicate grouping.

``normalise_text`` applies Unicode NFKC, case folding, turns every run of non-word characters
into one space and trims: two copies that differ only in case, punctuation, whitespace or
Unicode compatibility forms normalise to the same string.

Example:
    >>> normalise_text("Ｄeep  Learning—a Survey!")
    'deep learning a survey'
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.frames import arrow_strings, take_values

_NON_WORD = re.compile(r"[\W_]+")


#: ASCII bytes -> themselves lower-cased if a letter or digit, else a space.
_ASCII_WORD = bytes(c if chr(c).isalnum() else 32 for c in range(128)).lower() + bytes(128)


def normalise_text(text: str) -> str:
    """NFKC, casefold, punctuation and whitespace runs to one space."""
    if text.isascii():  # same result, ~5x faster: NFKC and casefold change no ASCII but case
        return " ".join(text.encode("ascii").translate(_ASCII_WORD).decode("ascii").split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


@lru_cache(maxsize=1)
def _blank_pattern() -> str:
    """An RE2 pattern matching what ``str.strip()`` leaves empty (Python's whitespace, exactly)."""
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    return "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in spaces) + "]*$"


def comparable_texts(records: pd.DataFrame) -> pd.Series:
    """What a record is compared by: its text, or its title when the text is blank.

    For Arrow-backed columns the result shares the text column's buffers: only the chunks
    holding a blank text are rebuilt, so no copy of every text is made.
    """
    texts, titles = arrow_strings(records["text"]), arrow_strings(records["title"])
    if texts is None or titles is None:
        body = [
            text if text.strip() else title
            for text, title in zip(records["text"].tolist(), records["title"].tolist(), strict=True)
        ]
        return pd.Series(body, index=records.index, dtype=records["text"].dtype)
    chunks, start = [], 0
    for chunk in texts.chunks:
        blank = pc.match_substring_regex(chunk, _blank_pattern())
        if pc.any(blank).as_py():
            title = titles.slice(start, len(chunk)).combine_chunks().cast(chunk.type)
            chunk = pc.if_else(blank, title, chunk)
        chunks.append(chunk)
        start += len(chunk)
    body = pa.chunked_array(chunks, type=texts.type)
    return pd.Series(pd.array(body, dtype=records["text"].dtype), index=records.index, name="text")


def normalised_body(text: str, title: str) -> str:
    """``norm_text`` of one record: its text normalised, or its title when the text is blank."""
    return normalise_text(text if text.strip() else title)


def normalised_texts(records: pd.DataFrame, rows: Sequence[int] | None = None) -> list[str]:
    """``norm_text`` of the records at positions ``rows`` (default: all), computed now, not stored."""
    body = comparable_texts(records)
    values = body.tolist() if rows is None else take_values(body, np.asarray(rows))
    return [normalise_text(t) for t in values]


def add_normalised(records: pd.DataFrame) -> pd.DataFrame:
    """Return ``records`` with a ``norm_text`` column (the text, or the title if text is empty).

    The pipeline no longer stores this column (a second copy of every text); readers that need
    normalised texts compute them for the rows they need with :func:`normalised_texts`.
    """
    return records.assign(norm_text=normalised_texts(records))
