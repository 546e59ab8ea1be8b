"""How each value of a string column ends, for the truncation check, over its UTF-8 bytes at once.

One compiled pass (:func:`endings`) over an Arrow string array's offsets and bytes classifies
every ASCII value's ending the way :meth:`audit.checks.truncation.TruncationCheck._ending` does
(rstrip, ellipsis, dangling function word, unclosed bracket, open quote, a URL or final
punctuation at the end, the last letters), instead of a dozen Python string operations per value.
A value the kernel cannot decide exactly is marked :data:`FALLBACK` and left to the Python
code: any non-ASCII byte (Unicode whitespace, letters, quote marks, case rules) and a value
where a URL holds a bracket (the Python code blanks its URLs first).

For an ASCII value a character is a byte, so every offset here is also a character offset.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audit.dedup.jit import compiled
from audit.dedup.kernel import _xxh64

#: Kinds of ending (:func:`endings`' ``kind``).
NONE, ELLIPSIS, DANGLING, BRACKET, QUOTE, OPEN_END, FALLBACK = range(7)

#: Characters of a value's end its last word and last letters are looked for in (as in the
#: Python code's reversed end), and of its tail a URL is looked for in.
END_CHARS = 200
URL_TAIL_CHARS = 2000


def _byte_table(chars: str) -> np.ndarray:
    table = np.zeros(256, np.bool_)
    table[[ord(c) for c in chars]] = True
    return table


_ASCII = "".join(map(chr, range(128)))
#: str.isspace (and regex ``\s``) of the ASCII characters: what rstrip removes.
SPACE = _byte_table("".join(c for c in _ASCII if c.isspace()))
#: ``\w``, str.isalnum, and letters (``[^\W\d_]``) of the ASCII characters.
WORD = _byte_table("".join(c for c in _ASCII if c.isalnum() or c == "_"))
LETTER = _byte_table("".join(c for c in _ASCII if c.isalpha()))
#: The ASCII final punctuation (the truncation check's ``_FINAL_CHARS``).
FINAL = _byte_table(".!?)]}\"':;")
#: Characters URL_PATTERN's runs hold: not ``\s`` nor ``<>"{}|\\^`[]``.
URL_CHAR = ~(SPACE | _byte_table('<>"{}|\\^`[]'))
#: Characters of a URL run that may come before a bracket in it (``_MARK_IN_URL_RUN``).
URL_RUN_CHAR = URL_CHAR & ~_byte_table("()")


def word_key(word: bytes) -> int:
    """An ASCII word of up to 8 bytes as one number (its bytes, little-endian): what the kernel
    compares a lowered last word with."""
    return int.from_bytes(word[:8].ljust(8, b"\x00"), "little")


def word_keys(words: frozenset[str]) -> np.ndarray:
    """The sorted keys of ``words`` (lower-case ASCII letters, at most 8 each)."""
    assert all(len(w) <= 8 and w.isascii() and w.isalpha() and w.islower() for w in words)
    return np.array(sorted(word_key(w.encode("ascii")) for w in words), np.uint64)


def buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets (absolute in ``data``) and the bytes of a string or binary array."""
    if not (pa.types.is_large_string(strings.type) or pa.types.is_large_binary(strings.type)):
        strings = strings.cast(pa.large_binary() if pa.types.is_binary(strings.type) else pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], np.int64, len(strings) + 1, strings.offset * 8)
    buffer = strings.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None and buffer.size else np.zeros(1, np.uint8)
    return offsets, data


@compiled
def _is_colon_slashes(data, at):  # type: ignore[no-untyped-def]
    return data[at] == 58 and data[at + 1] == 47 and data[at + 2] == 47


@compiled
def _ends_with_url(data, start, end, url_char):  # type: ignore[no-untyped-def]
    """Whether ``data[start:end]`` (ASCII, not empty) ends with a URL_PATTERN match: its final run
    of URL characters within the last URL_TAIL_CHARS holds ``http(s)://`` and a character after."""
    tail = max(start, end - URL_TAIL_CHARS)
    run = end
    while run > tail and url_char[data[run - 1]]:
        run -= 1
    # "http" in any case, maybe "s", "://", then at least one more character of the run.
    for at in range(run, end - 7):
        if (data[at] | 32) != 104 or (data[at + 1] | 32) != 116 or (data[at + 2] | 32) != 116:
            continue
        if (data[at + 3] | 32) != 112:
            continue
        after = at + 4
        # "s": the pattern tries it first, then without
        if (data[after] | 32) == 115 and after + 4 < end and _is_colon_slashes(data, after + 1):
            return True
        if after + 3 < end and data[after] == 58 and data[after + 1] == 47 and data[after + 2] == 47:
            return True
    return False


@compiled
def _url_holds_bracket(data, start, end, url_run_char):  # type: ignore[no-untyped-def]
    """Whether a "://" in ``data[start:end]`` is followed by a run of URL characters and a bracket."""
    for at in range(start, end - 3):
        if data[at] != 58 or data[at + 1] != 47 or data[at + 2] != 47:
            continue
        after = at + 3
        while after < end and url_run_char[data[after]]:
            after += 1
        if after < end and (data[after] == 40 or data[after] == 41):
            return True
    return False


#: Bytes the one pass over a value stops at: brackets, the straight quote, and non-ASCII ones.
SPECIAL = _byte_table('()[]"') | (np.arange(256) >= 128)


@compiled
def _endings(  # type: ignore[no-untyped-def]
    offsets, data, space, word, letter, final, special, url_char, url_run_char, function_keys,
    kind, match_start, match_end, length, letters_start, stack,
):  # fmt: skip
    for value in range(len(offsets) - 1):
        start, end = offsets[value], offsets[value + 1]
        kind[value] = NONE
        match_start[value] = match_end[value] = letters_start[value] = length[value] = -1
        # One pass over the bytes: non-ASCII ones, the brackets' stack (the trailing whitespace
        # holds none), the straight quotes.
        plain, opener, depth, quotes, last_quote = True, False, 0, 0, -1
        for at in range(start, end):
            byte = data[at]
            if not special[byte]:
                continue
            if byte >= 128:
                plain = False
                break
            opener = True
            if byte == 40 or byte == 91:  # "(" "["
                stack[depth] = at
                depth += 1
            elif byte == 41 or byte == 93:  # ")" "]": pops its own opener only
                if depth and data[stack[depth - 1]] == byte - (1 if byte == 41 else 2):
                    depth -= 1
            else:  # '"', a quote unless after a backslash (rfind finds it either way)
                last_quote = at
                if not (at > start and data[at - 1] == 92):
                    quotes += 1
        if not plain:
            kind[value] = FALLBACK
            continue
        while end > start and space[data[end - 1]]:
            end -= 1
        size = end - start
        length[value] = size
        if not size:
            continue
        last = data[end - 1]
        window = min(size, END_CHARS)
        # The last letters (two or more at a word boundary), asked of the vocabulary.
        run = 0
        while run < window and letter[data[end - 1 - run]]:
            run += 1
        if run >= 2 and not (run < window and word[data[end - 1 - run]]):
            letters_start[value] = size - run
        complete = final[last] or _ends_with_url(data, start, end, url_char)
        if last == 46 and size >= 3 and data[end - 2] == 46 and data[end - 3] == 46:
            kind[value], match_start[value], match_end[value] = ELLIPSIS, size - 3, size
            continue
        if word[last] and not complete:
            run = 0
            while run < window and run <= 8 and word[data[end - 1 - run]]:
                run += 1
            if run <= 8 and not (run < size and data[end - 1 - run] == 45):  # not after a "-"
                key = np.uint64(0)
                for n in range(run):
                    byte = data[end - run + n]
                    if 65 <= byte <= 90:
                        byte += 32
                    key |= np.uint64(byte) << np.uint64(8 * n)
                at = np.searchsorted(function_keys, key)
                if at < len(function_keys) and function_keys[at] == key:
                    kind[value], match_start[value], match_end[value] = DANGLING, size - run, size
                    continue
        if opener:
            if _url_holds_bracket(data, start, end, url_run_char):
                kind[value] = FALLBACK  # brackets in URLs are blanked first (Python)
                continue
            if depth:
                kind[value] = BRACKET
                match_start[value] = stack[depth - 1] - start
                match_end[value] = match_start[value] + 1
                continue
            if quotes % 2:
                kind[value] = QUOTE
                match_start[value] = last_quote - start
                match_end[value] = match_start[value] + 1
                continue
        if complete:
            continue
        kind[value] = OPEN_END
        match_start[value], match_end[value] = size - 1, size


@compiled
def _last_letters(offsets, data, space, word, letter, starts, ends):  # type: ignore[no-untyped-def]
    """Each value's last letters (:func:`last_letters` of its rstripped last END_CHARS
    characters) as a byte span ``[starts, ends)`` of ``data``: start -1 for none, -2 where a
    non-ASCII byte is in the way (ending the value, or in its last END_CHARS bytes). Only the
    end of a value is read."""
    for value in range(len(offsets) - 1):
        start, end = offsets[value], offsets[value + 1]
        while end > start and data[end - 1] < 128 and space[data[end - 1]]:
            end -= 1
        starts[value], ends[value] = -1, end
        window = min(end - start, END_CHARS)
        for at in range(end - window, end):
            if data[at] >= 128:
                starts[value] = -2
                break
        if starts[value] == -2:
            continue
        run = 0
        while run < window and letter[data[end - 1 - run]]:
            run += 1
        if run >= 2 and not (run < window and word[data[end - 1 - run]]):
            starts[value] = end - run


def last_letters_spans(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, starts, ends)``: :func:`buffers`' bytes of ``strings`` and each value's last
    letters' byte span in them (:func:`_last_letters`: start -1 for none, -2: left to Python)."""
    offsets, data = buffers(strings)
    starts, ends = np.empty(len(strings), np.int64), np.empty(len(strings), np.int64)
    _last_letters(offsets, data, SPACE, WORD, LETTER, starts, ends)
    return data, starts, ends


class Endings:
    """How each value of a string array ends (:func:`endings`): per value its ``kind``, the
    match's offsets (``match_start``, ``match_end``; for OPEN_END the last character), the
    rstripped ``length`` and ``letters_start`` (its last letters' offset, -1: none), all
    relative to the value's first byte at ``offsets[n]`` of ``data``."""

    def __init__(self, strings: pa.Array, function_keys: np.ndarray) -> None:
        self.offsets, self.data = buffers(strings)
        count = len(strings)
        self.kind = np.empty(count, np.int8)
        self.match_start, self.match_end, self.length, self.letters_start = (
            np.empty(count, np.int64) for _ in range(4)
        )
        longest = int(np.diff(self.offsets).max()) if count else 0
        _endings(
            self.offsets, self.data, SPACE, WORD, LETTER, FINAL, SPECIAL, URL_CHAR, URL_RUN_CHAR,
            function_keys,
            self.kind, self.match_start, self.match_end, self.length, self.letters_start,
            np.empty(longest + 1, np.int64),
        )  # fmt: skip

    def strings(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
        """The substrings ``[starts, ends)`` (relative offsets) of the values at ``rows``."""
        return substrings(self.data, self.offsets[rows] + starts, self.offsets[rows] + ends)


def substrings(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """The large_string array of ``data[starts[n]:ends[n]]`` (valid UTF-8 slices)."""
    lengths = ends - starts
    new_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    index = np.arange(new_offsets[-1], dtype=np.int64) + np.repeat(starts - new_offsets[:-1], lengths)
    gathered = data[index]
    return pa.LargeStringArray.from_buffers(
        len(lengths), pa.py_buffer(new_offsets), pa.py_buffer(gathered.tobytes() or b"\x00")
    )


#: ASCII letters and digits lower-cased, every other byte 0: what normalise_text keeps of ASCII.
ALNUM_LOWER = np.array(
    [ord(chr(c).lower()) if c < 128 and chr(c).isalnum() else 0 for c in range(256)], np.uint8
)


@compiled
def _normalised(offsets, data, rows, alnum_lower, out_offsets, out, plain):  # type: ignore[no-untyped-def]
    """normalise_text of each ASCII value at ``rows``, into ``out`` from ``out_offsets[n]``:
    letters and digits lower-cased, every run of other characters one space, trimmed.
    ``plain[n]``: whether the value is ASCII (else its normalised form is left empty)."""
    pos = 0
    for n in range(len(rows)):
        first = pos
        out_offsets[n] = pos
        plain[n] = True
        pending = False
        for at in range(offsets[rows[n]], offsets[rows[n] + 1]):
            byte = data[at]
            kept = alnum_lower[byte]
            if kept:  # most bytes
                if pending:
                    out[pos] = 32
                    pos += 1
                    pending = False
                out[pos] = kept
                pos += 1
            elif byte >= 128:
                plain[n] = False
                pos = first
                break
            else:
                pending = pos > first
    out_offsets[len(rows)] = pos


@compiled
def _longer_copies(starts, ends, chars, norm, cluster_starts, min_chars, longer):  # type: ignore[no-untyped-def]
    """For each member (a normalised text each: UTF-8 ``norm[starts[n]:ends[n]]`` of ``chars[n]``
    characters; clusters' members one after the other from ``cluster_starts``), the member of its
    cluster with the most characters of those longer than its own that begin with it (the first
    of as many), -1 for none or for a text of fewer than ``min_chars`` characters. A UTF-8 text
    begins with another exactly where its bytes begin with the other's."""
    for cluster in range(len(cluster_starts) - 1):
        first, stop = cluster_starts[cluster], cluster_starts[cluster + 1]
        for member in range(first, stop):
            longer[member] = -1
            start, size = starts[member], ends[member] - starts[member]
            if chars[member] < min_chars:
                continue
            best = -1
            for other in range(first, stop):
                if chars[other] <= chars[member] or (best >= 0 and chars[other] <= chars[best]):
                    continue
                if ends[other] - starts[other] < size:
                    continue
                same = True
                for n in range(size):
                    if norm[starts[other] + n] != norm[start + n]:
                        same = False
                        break
                if same:
                    best = other
            longer[member] = best


def normalised(strings: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(offsets, data, plain)``: the ASCII normalise_text of the values at ``rows`` (each
    ``data[offsets[n]:offsets[n + 1]]``) and which of them are ASCII (the others left empty)."""
    offsets, data = buffers(strings)
    rows = np.asarray(rows, np.int64)
    out_offsets = np.empty(len(rows) + 1, np.int64)
    out = np.empty(int((offsets[rows + 1] - offsets[rows]).sum()) + 1, np.uint8)
    plain = np.empty(len(rows), np.bool_)
    _normalised(offsets, data, rows, ALNUM_LOWER, out_offsets, out, plain)
    return out_offsets, out, plain


def longer_copies(
    starts: np.ndarray,
    ends: np.ndarray,
    chars: np.ndarray,
    norm: np.ndarray,
    cluster_starts: np.ndarray,
    min_chars: int,
) -> np.ndarray:
    """:func:`_longer_copies`: each member's longer copy (its position among the members), or -1."""
    longer = np.empty(len(starts), np.int64)
    _longer_copies(starts, ends, chars, norm, cluster_starts, min_chars, longer)
    return longer


@compiled
def _stripped_lengths(offsets, data, space, lengths, digests, undecided):  # type: ignore[no-untyped-def]
    """Of each value rstripped: its length in characters (0: blank) and the XXH64 of its bytes;
    ``undecided`` where it ends in a non-ASCII character (maybe Unicode whitespace: Python)."""
    for value in range(len(offsets) - 1):
        start, end = offsets[value], offsets[value + 1]
        while end > start and data[end - 1] < 128 and space[data[end - 1]]:
            end -= 1
        lengths[value], digests[value] = 0, 0
        undecided[value] = end > start and data[end - 1] >= 128
        if undecided[value] or end == start:
            continue
        chars = 0
        for at in range(start, end):
            chars += (data[at] & 0xC0) != 0x80  # not a UTF-8 continuation byte
        lengths[value] = chars
        digests[value] = _xxh64(data, start, end)


def stripped_lengths(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_stripped_lengths` of a string or binary array: ``(lengths, digests, undecided)``."""
    offsets, data = buffers(strings)
    lengths, digests = np.empty(len(strings), np.int64), np.empty(len(strings), np.uint64)
    undecided = np.empty(len(strings), np.bool_)
    _stripped_lengths(offsets, data, SPACE, lengths, digests, undecided)
    return lengths, digests, undecided
