"""What every reader shares: the reader interface, field names, decoding and quarantine rows."""

from __future__ import annotations

import gzip
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.urls import find_urls

#: Raw content kept in a quarantine row is cut to this many characters.
RAW_PREVIEW_CHARS = 2000


class InputError(Exception):
    """Input the run cannot start on at all (a path that does not exist, an unknown format)."""


@dataclass(frozen=True)
class FieldMap:
    """Which field of a structured export holds what; title and url are optional."""

    text: str = "text"
    title: str = "title"
    url: str = "url"
    id: str = "id"


@dataclass(frozen=True)
class SourceFile:
    """One input file: where it is on disk and the name records cite it by."""

    path: Path
    name: str

    @property
    def compressed(self) -> bool:
        return self.path.suffix.lower() == ".gz"

    @property
    def format_suffix(self) -> str:
        """The suffix that decides the format, looking through ``.gz``."""
        suffixes = [s.lower() for s in self.path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        return suffixes[-1] if suffixes else ""

    def read_bytes(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.compressed else data


@dataclass
class ReadResult:
    """What a reader got out of one file: record rows and quarantine rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    furniture_lines: int = 0

    def quarantine_row(
        self, source: SourceFile, line: int | None, error: str, raw: Any = "", offset: int | None = None
    ) -> None:
        text = raw if isinstance(raw, str) else repr(raw)
        self.quarantine.append(
            {
                "source": source.name,
                "line": line,
                "offset": offset,
                "raw": text[:RAW_PREVIEW_CHARS],
                "error": error,
            }
        )


def make_row(
    source: SourceFile,
    line: int,
    fmt: str,
    text: str,
    title: str = "",
    url: str = "",
    record_id: str = "",
    scraped_date: str | None = None,
) -> dict[str, Any]:
    """One record row in the schema of :mod:`audit.schema`."""
    return {
        "id": record_id or f"{source.name}:{line}",
        "source": source.name,
        "line": line,
        "title": title,
        "text": text,
        "url": url,
        "urls": find_urls(text),
        "scraped_date": scraped_date,
        "format": fmt,
    }


def decode_lines(data: bytes, source: SourceFile, result: ReadResult) -> Iterator[tuple[int, int, str]]:
    """Yield ``(line number, byte offset, text)`` for every line that decodes as UTF-8.

    A line that does not decode is quarantined with its number and offset; the rest of the
    file still reads. A UTF-8 byte-order mark is dropped. CRLF and lone CR end lines too.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    offset = 0
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            result.quarantine_row(
                source, number, f"invalid UTF-8 at byte {offset + error.start}", raw, offset
            )
        else:
            yield number, offset, text.rstrip("\r\n")
        offset += len(raw)


class Reader(ABC):
    """Turns one input file into record rows (and quarantine rows for what it cannot read)."""

    #: Short name of the format, stored in the ``format`` column.
    name: str
    #: File suffixes this reader handles (``.gz`` is looked through).
    suffixes: tuple[str, ...]

    @abstractmethod
    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        """Read ``source``; never raise for bad content, quarantine it instead."""
