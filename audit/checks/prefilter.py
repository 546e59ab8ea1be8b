"""Cheap whole-column prefilters: which records a per-record check needs to look at at all.

Most records have nothing a check looks for (no URL, no markup character, only ASCII). A check
names a regex every one of its matches needs, and runs its per-record Python only on the rows
where that regex occurs. For pandas' Arrow-backed string columns the regex runs in Arrow's
compute kernels (RE2) over the whole column at once, ~1 GB/s; other columns fall back to
Python's ``re`` with the same result. A prefilter may let through rows without findings (the
check then finds nothing there), never drop a row with one: patterns are written with only
the syntax RE2 and ``re`` read alike (literals, character classes, ``|``).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"title": ["a", "see http://x", "b"], "text": ["c", "d", "<b>e"]})
    >>> candidate_rows(frame, ("title", "text"), r"://|<")
    [1, 2]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import CheckContext, Finding, column, for_record


def candidate_mask(values: pd.Series, pattern: str | Sequence[str], edges: int | None = None) -> np.ndarray:
    """Which values hold ``pattern`` (or one of several), or are missing.

    With ``edges``, only within a value's first or last ``edges`` characters. Several patterns
    are each matched over the column: a literal (``"://"``, ``"<"``) is found by a fast byte
    search, ~20x faster than the alternation of the same literals, which is matched character
    by character.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    mask = np.zeros(len(values), dtype=bool)
    for one in patterns:
        mask |= _contains(values, one, edges)
    return mask


def candidate_rows(
    records: pd.DataFrame, fields: Sequence[str], pattern: str | Sequence[str], edges: int | None = None
) -> list[int]:
    """Positions (in order) of the rows where ``pattern`` (or one of several) occurs in at least one
    of ``fields`` (see :func:`candidate_mask`)."""
    mask = np.zeros(len(records), dtype=bool)
    for name in fields:
        mask |= candidate_mask(records[name], pattern, edges)
    return np.flatnonzero(mask).tolist()


def field_findings(
    records: pd.DataFrame,
    searched: Mapping[str, np.ndarray],
    finder: Callable[[str, str, str], list[Finding]],
    context: CheckContext | None = None,
) -> list[Finding]:
    """``finder(record_id, field, value)`` for each field of ``searched`` on the rows its mask
    marks (the others cannot have a finding there), row by row, fields in the order given.

    A value seen before in the same field (copies of a record) is not searched again: its
    findings are copied for the new record.
    """
    ids = column(records, "id", context)
    masks = list(searched.values())
    rows = np.flatnonzero(np.logical_or.reduce(masks)) if masks else np.zeros(0, np.int64)
    # Plain lists: indexed once a row and field, a numpy bool each time would cost more.
    columns = [(name, column(records, name, context), mask.tolist()) for name, mask in searched.items()]
    findings: list[Finding] = []
    done: dict[str, dict[str, list[Finding]]] = {name: {} for name in searched}
    for row in rows.tolist():
        for name, values, mask in columns:
            if not mask[row]:
                continue
            value = values[row]
            found = done[name].get(value)
            if found is None:
                found = done[name][value] = finder(ids[row], name, value)
                findings.extend(found)
            else:
                findings.extend(for_record(ids[row], found))
    return findings


def _contains(values: pd.Series, pattern: str, edges: int | None) -> np.ndarray:
    # Arrow's kernels are called directly: pandas' own str.contains sends some patterns (``$``
    # with newlines in the data) to Python's re row by row, 100x slower.
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        arrow = pa.chunked_array(values.array.__arrow_array__())
        parts = (
            [arrow]
            if edges is None
            else [
                pc.utf8_slice_codeunits(arrow, 0, edges),  # code points, like Python's slicing
                pc.utf8_slice_codeunits(arrow, -edges),
            ]
        )
        found = np.zeros(len(values), dtype=bool)
        for part in parts:
            matched = pc.fill_null(pc.match_substring_regex(part, pattern), True)  # missing: look
            found |= matched.to_numpy(zero_copy_only=False).astype(bool)
        return found
    compiled = re.compile(pattern)

    def hit(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if edges is None:
            return bool(compiled.search(value))
        return bool(compiled.search(value[:edges]) or compiled.search(value[-edges:]))

    return np.fromiter((hit(v) for v in values), bool, len(values))


#: Printable ASCII, tab, LF and CR: a value made only of these holds no encoding problem.
_NOT_PLAIN_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")


def not_plain_ascii(values: pd.Series) -> np.ndarray:
    """Which values hold a character outside printable ASCII, tab, LF and CR (or are missing).

    For Arrow-backed columns, read from the UTF-8 bytes at once, ~3x faster than the regex: every
    byte of a non-ASCII character is 0x80 or more, so a value holds such a character exactly
    when one of its bytes is outside those.
    """
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        hits = (not isinstance(v, str) or _NOT_PLAIN_ASCII.search(v) is not None for v in values)
        return np.fromiter(hits, bool, len(values))
    found = [values.isna().to_numpy()]
    for chunk in pa.chunked_array(values.array.__arrow_array__()).chunks:
        _, offsets, data = chunk.buffers()
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bounds = np.frombuffer(offsets, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
        bounds = bounds.astype(np.int64)
        rows = np.zeros(len(chunk), dtype=bool)
        if data is not None and bounds[-1] > bounds[0]:
            body = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]
            outside = np.flatnonzero(body - np.uint8(32) > 94)  # printable ASCII is 32..126
            byte = body[outside]
            outside = outside[(byte != 9) & (byte != 10) & (byte != 13)] + bounds[0]
            rows[np.searchsorted(bounds, outside, side="right") - 1] = True
        found.append(rows)
    return found[0] | np.concatenate(found[1:]) if len(found) > 1 else found[0]


def byte_contexts(values: pd.Series, byte: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every occurrence of the ASCII ``byte`` in an Arrow-backed string column's values, found in
    its UTF-8 buffers at once: the row of each, and a ``(hits, 2 * width + 1)`` uint8 array of the
    bytes from ``width`` before it to ``width`` after it (0 outside its value). None for other
    columns. An ASCII byte is never part of a non-ASCII character, so each hit is that character.
    """
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        return None
    rows, contexts, row = [], [], 0
    steps = np.arange(-width, width + 1)
    for chunk in pa.chunked_array(values.array.__arrow_array__()).chunks:
        _, offsets, data = chunk.buffers()
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        bounds = np.frombuffer(offsets, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
        bounds = bounds.astype(np.int64)
        if data is not None and bounds[-1] > bounds[0]:
            body = np.frombuffer(data, dtype=np.uint8)
            at = np.flatnonzero(body[bounds[0] : bounds[-1]] == byte) + bounds[0]
            of = np.searchsorted(bounds, at, side="right") - 1
            near = at[:, None] + steps
            inside = (near >= bounds[of][:, None]) & (near < bounds[of + 1][:, None])
            contexts.append(np.where(inside, body[np.clip(near, 0, len(body) - 1)], 0).astype(np.uint8))
            rows.append(of + row)
        row += len(chunk)
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 2 * width + 1), np.uint8)
    return np.concatenate(rows), np.concatenate(contexts)


def edge_bytes(values: pd.Series, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first and the last ``width`` UTF-8 bytes of every value, as two ``(rows, width)`` uint8
    arrays (a short value's bytes padded with NUL: the head's on the right, the tail's on the
    left), and which values are missing.

    For Arrow-backed columns the bytes are gathered from the column's buffers at once, without a
    Python string per value.
    """
    count = len(values)
    head = np.zeros((count, width), dtype=np.uint8)
    tail = np.zeros((count, width), dtype=np.uint8)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        missing = values.isna().to_numpy()
        row = 0
        for chunk in pa.chunked_array(values.array.__arrow_array__()).chunks:
            _, offsets, data = chunk.buffers()
            kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            bounds = np.frombuffer(offsets, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
            body = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
            starts, ends = bounds[:-1].astype(np.int64), bounds[1:].astype(np.int64)
            steps = np.arange(width)
            for out, at in ((head, starts[:, None] + steps), (tail, ends[:, None] - width + steps)):
                inside = (at >= starts[:, None]) & (at < ends[:, None])
                if len(body):
                    out[row : row + len(chunk)] = np.where(inside, body[np.clip(at, 0, len(body) - 1)], 0)
            row += len(chunk)
        return head, tail, missing
    missing = np.zeros(count, dtype=bool)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            missing[row] = True
            continue
        data = value.encode("utf-8", "surrogatepass")
        first, last = data[:width], data[-width:] if data else b""
        head[row, : len(first)] = np.frombuffer(first, dtype=np.uint8)
        tail[row, width - len(last) :] = np.frombuffer(last, dtype=np.uint8)
    return head, tail, missing


def scan(pattern: re.Pattern[str], value: str, *hints: str) -> Iterator[re.Match[str]]:
    """``pattern.finditer(value)``, skipped when no ``hint`` (a substring every match has) is in ``value``."""
    for hint in hints:  # a loop, not any() over a generator: called for every pattern and value
        if hint in value:
            return pattern.finditer(value)
    return iter(())


def offsets(value: str, part: str) -> list[int]:
    """Every offset where ``part`` occurs in ``value`` (overlaps included), in order."""
    found, at = [], value.find(part)
    while at >= 0:
        found.append(at)
        at = value.find(part, at + 1)
    return found


def scan_at(pattern: re.Pattern[str], value: str, starts: Iterable[int]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(value)`` for a pattern whose every match is non-empty and begins at one of
    the sorted ``starts``, trying those offsets alone.

    For patterns that begin with a look-behind or an optional character, which ``re`` otherwise
    tries at every offset. The same matches: leftmost first, the next one tried from the end of
    the last (``match`` at an offset still sees the characters before it, for look-behinds).
    """
    end = 0
    for start in starts:
        if start < end:
            continue
        match = pattern.match(value, start)
        if match:
            yield match
            end = match.end()


#: The only non-ASCII characters whose ``str.lower()`` holds an ASCII letter (checked over all
#: of Unicode): the Kelvin sign lowers to "k", the dotted capital I to "i" plus a combining dot.
_LOWERS_TO = {"k": "\u212a", "i": "\u0130"}


def lowered_literal(literal: str) -> str:
    """A regex matching every string whose ``str.lower()`` holds the ASCII ``literal`` (and a few
    more), alike in Arrow (RE2) and Python.

    The literal ignoring case (``(?i:...)``): in both, it matches each letter's upper case and
    the Kelvin sign for "k" (Python's lowering gives an ASCII letter for no other character but
    the dotted capital I, which lowers to "i" plus a combining dot, so only a literal ending in
    "i" can be held by it: there each letter becomes ``[xX]`` plus the non-ASCII letters that
    lower to it, as RE2's case folding leaves the dotted I out). An ignored case is matched as
    fast as a literal; a character class at every letter several times slower.
    """
    if not literal.endswith("i"):
        return f"(?i:{re.escape(literal)})"
    parts = []
    for char in literal:
        if char.isalpha():
            parts.append(f"[{char}{char.upper()}{_LOWERS_TO.get(char, '')}]")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def any_lowered(literals: Iterable[str]) -> str:
    """A regex for: ``value.lower()`` contains one of the ASCII ``literals``."""
    return "|".join(lowered_literal(literal) for literal in literals)
