"""What every reader shares: the reader interface, field names, decoding and quarantine rows."""

from __future__ import annotations

import codecs
import gzip
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from audit.schema import rows_table
from audit.urls import find_urls

#: Raw content kept in a quarantine row is cut to this many characters.
RAW_PREVIEW_CHARS = 2000
#: How much of a text file is looked at to tell text from binary or UTF-16.
SNIFF_BYTES = 8192
#: The UTF-8 byte-order mark, which every reader drops.
BOM = codecs.BOM_UTF8
#: Leading bytes of formats that are not text, for a clear message when one is given as text.
MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data (name it with a .gz suffix)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"PAR1", "a Parquet file (name it with a .parquet suffix)"),
    (b"\x7fELF", "an executable"),
)
# Bytes that do not occur in text: C0 controls other than tab, newlines, form feed and escape.
_CONTROL_BYTES = bytes([b for b in range(32) if b not in (9, 10, 12, 13, 27)] + [127])
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_SURROGATE = re.compile("[\ud800-\udfff]")


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

    def open(self) -> BinaryIO:
        """The file's bytes as a stream (decompressed as read when it is gzipped)."""
        return gzip.open(self.path, "rb") if self.compressed else self.path.open("rb")  # type: ignore[return-value]

    def read_bytes(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.compressed else data


@dataclass
class ReadResult:
    """What a reader got out of one file: record rows and quarantine rows.

    Records are row dicts (``rows``) and, for large files, Arrow tables of
    :data:`audit.schema.RECORD_TYPES` the earlier rows were turned into (``tables``, see
    :meth:`spill`): the file's records are the tables' rows, then ``rows``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    furniture_lines: int = 0
    tables: list[pa.Table] = field(default_factory=list)
    #: Read as a part of a file: what it met makes the whole file these quarantine rows alone (a
    #: Parquet value Python cannot take), so the file is to be read whole instead.
    file_error: bool = False

    @property
    def record_count(self) -> int:
        return len(self.rows) + sum(table.num_rows for table in self.tables)

    def spill(self, limit: int = 20_000) -> None:
        """Turn the row dicts gathered so far into an Arrow table once there are ``limit`` of them:
        a reader calls it as it goes, so a large file never holds a dict per record."""
        if len(self.rows) >= limit:
            self.tables.append(rows_table(self.rows))
            self.rows = []

    def record_tables(self) -> list[pa.Table]:
        """Every record of the file as Arrow tables (``rows`` converted, and then dropped)."""
        if self.rows:
            self.tables.append(rows_table(self.rows))
            self.rows = []
        return self.tables

    def quarantine_row(
        self, source: SourceFile, line: int | None, error: str, raw: Any = "", offset: int | None = None
    ) -> None:
        text = raw if isinstance(raw, str) else repr(raw)
        # Lone surrogates (undecodable bytes) would make the quarantine file unwritable.
        text = text[:RAW_PREVIEW_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
        self.quarantine.append(
            {
                "source": source.name,
                "line": line,
                "offset": offset,
                "raw": text,
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


def bom_bytes(path: Path) -> int:
    """The bytes of a byte-order mark at the start of the file ``path`` (0 or 3): the readers
    drop it, so a range of the file counts its offsets from after it."""
    with path.open("rb") as handle:
        return len(BOM) if handle.read(len(BOM)) == BOM else 0


def not_text_reason(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 text at all (binary, UTF-16), or None when it may be text.

    Judged on the first :data:`SNIFF_BYTES`: a byte-order mark or magic number, NUL bytes in
    every other position (UTF-16 without a mark), or many control bytes or undecodable bytes.
    A few bad bytes in a text file are not enough: those lines are quarantined one by one.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16/UTF-32 text (byte-order mark); re-encode the file as UTF-8"
    for magic, kind in MAGIC_NUMBERS:
        if data.startswith(magic):
            return f"not a text file: {kind}"
    head = data[:SNIFF_BYTES]
    if not head:
        return None
    quarter = len(head) // 4
    if len(head) >= 4 and (head[0::2].count(0) > quarter or head[1::2].count(0) > quarter):
        return "UTF-16 text without a byte-order mark; re-encode the file as UTF-8"
    control = len(head.translate(None, _NOT_CONTROL))  # deleting the rest leaves the controls
    undecodable = head.decode("utf-8", "replace").count("\ufffd") - head.count("\ufffd".encode())
    # Too little to judge on: a short file's bad lines are quarantined one by one instead.
    if len(head) >= 32 and (control > len(head) // 10 or undecodable > len(head) // 4):
        return (
            f"not a text file: {control} control and {undecodable} undecodable bytes "
            f"in the first {len(head)} bytes"
        )
    return None


def text_problem(value: str) -> str | None:
    """Why a decoded string cannot be a record field (NUL, lone surrogate), or None."""
    nul = value.find("\x00")
    if nul >= 0:
        return f"NUL character at position {nul}"
    if value.isascii():  # the common case; a surrogate is never ASCII
        return None
    surrogate = _SURROGATE.search(value)
    if surrogate:
        return f"lone surrogate {surrogate.group(0)!a} at position {surrogate.start()} (not valid Unicode)"
    return None


def quarantined_as_not_text(data: bytes, source: SourceFile, result: ReadResult) -> bool:
    """Quarantine the whole file as one row when ``data`` (its start) is not text; True if so."""
    reason = not_text_reason(data)
    if reason:
        result.quarantine_row(source, None, reason, data[:64], 0)
    return reason is not None


def decode_lines(data: bytes, source: SourceFile, result: ReadResult) -> Iterator[tuple[int, int, str]]:
    """Yield ``(line number, byte offset, text)`` for every line that decodes as UTF-8.

    A file that is not text at all (binary, UTF-16) is quarantined as one row and yields
    nothing. A line that does not decode, or holds a NUL byte, is quarantined with its number
    and offset; the rest of the file still reads. A UTF-8 byte-order mark is dropped. CRLF and
    lone CR end lines too.
    """
    if quarantined_as_not_text(data, source, result):
        return
    if data.startswith(BOM):
        data = data[len(BOM) :]
    offset = 0
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            result.quarantine_row(
                source, number, f"invalid UTF-8 at byte {offset + error.start}", raw, offset
            )
        else:
            nul = raw.find(b"\x00")
            if nul >= 0:
                result.quarantine_row(source, number, f"NUL byte at byte {offset + nul}", raw, offset)
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
