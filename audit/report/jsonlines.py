"""JSON Lines built a column at a time: each line is byte for byte
``json.JSONEncoder(ensure_ascii=False).encode(row)`` (separators ``", "`` and ``": "``) in UTF-8.

The outputs hold every text of the corpus; encoding them a row at a time (json's C encoder, then
UTF-8 on write) was most of the write stage. Here a column's strings are escaped in their Arrow
UTF-8 buffer with numpy, numbers and lists are turned into JSON text by Arrow kernels, and the
lines are joined from those columns and the fixed keys in one Arrow call. Python values (a
DataFrame's object columns) are encoded as json encodes them: dicts of one key layout a key at a
time, as columns (:func:`python_text`), anything else one by one with json's C encoder; the few
rows whose values a caller changes are given as a :class:`~audit.frames.Patched` column.

What json writes with ``ensure_ascii=False``: a string's ``"``, ``\\`` and C0 controls are
escaped (``\\b \\t \\n \\f \\r`` short, the others ``\\u00XX`` in lowercase hex), every other
character, U+2028 and non-BMP ones included, as it is; an Arrow string is valid UTF-8, so a lone
surrogate never gets here (json's output holding one could not be written as UTF-8 either).
Integers are decimal; a float is its ``repr`` (``NaN``, ``Infinity``, ``-Infinity`` for the
others); a float column's NaN is ``null`` (a missing value, as the writers have always shown it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.frames import Column, JsonText, Patched

#: The encoder every line was written with (values of no Arrow-encodable column are encoded as it
#: does, by :func:`encode_value`).
REFERENCE = json.JSONEncoder(ensure_ascii=False, default=str)


def _value_encoder() -> Callable[[Any], str]:
    """``REFERENCE.encode``, without building json's C encoder again for every value (most of
    the time of encoding a small value). Without circular-reference check: a row never refers to
    itself (one that did would fail with RecursionError instead of ValueError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: json's Python encoder
        return REFERENCE.encode
    encoder = make(None, str, json.encoder.c_encode_basestring, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encoder(value, 0))


#: One value as :data:`REFERENCE` encodes it.
encode_value = _value_encoder()

#: Bytes scanned for characters to escape at a time: the masks stay in the CPU cache.
_SCAN_BYTES = 1 << 16
#: Bytes escaped at a time (np.insert's masks within the CPU's L2 cache, few calls).
_INSERT_BYTES = 1 << 20
_STRING = pa.large_string()


def _escape_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each byte: its escape's length less one, the escape's leading bytes, its last byte."""
    grow = np.zeros(256, np.int64)
    lead = np.zeros((256, 5), np.uint8)
    last = np.arange(256, dtype=np.uint8)
    for byte in [*range(0x20), ord('"'), ord("\\")]:
        escape = REFERENCE.encode(chr(byte))[1:-1].encode("ascii")  # json's own escape of it
        grow[byte] = len(escape) - 1
        lead[byte, : len(escape) - 1] = list(escape[:-1])
        last[byte] = escape[-1]
    return grow, lead, last


_GROW, _LEAD, _LAST = _escape_tables()


def _special_positions(data: np.ndarray) -> np.ndarray:
    """Positions of the bytes json escapes (``"``, ``\\``, below 0x20), in order."""
    found = []
    for start in range(0, len(data), _SCAN_BYTES):
        block = data[start : start + _SCAN_BYTES]
        mask = block < 0x20
        mask |= block == 0x22
        mask |= block == 0x5C
        at = np.flatnonzero(mask)
        if len(at):
            found.append(at + start)
    return np.concatenate(found) if found else np.empty(0, np.int64)


def _string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (from 0) and UTF-8 bytes of a large_string array, shared where possible."""
    offsets = np.frombuffer(strings.buffers()[1], np.int64, len(strings) + 1, strings.offset * 8)
    buffer = strings.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None and buffer.size else np.empty(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def escaped(strings: pa.Array) -> pa.Array:
    """Each string with json's escapes, without the quotes (a null as ``""``)."""
    strings = strings.cast(_STRING)
    offsets, data = _string_buffers(strings)
    special = _special_positions(data)
    if not len(special):
        return strings if not strings.null_count else strings.fill_null("")
    codes = data[special]
    grow = _GROW[codes]
    before = np.concatenate(([0], np.cumsum(grow)))  # bytes added before the n-th special
    out = np.empty(len(data) + int(before[-1]), np.uint8)
    # A block at a time, so np.insert's masks stay small; blocks without a special are copied.
    for start in range(0, len(data), _INSERT_BYTES):
        end = min(start + _INSERT_BYTES, len(data))
        first, stop = np.searchsorted(special, [start, end])
        shifted = start + int(before[first])
        if first == stop:
            out[shifted : shifted + end - start] = data[start:end]
            continue
        at, block_codes = special[first:stop] - start, codes[first:stop]
        block = data[start:end].copy()
        block[at] = _LAST[block_codes]
        lengths = grow[first:stop]
        row = np.repeat(np.arange(len(at)), lengths)
        column = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        inserted = np.insert(block, np.repeat(at, lengths), _LEAD[block_codes[row], column])
        out[shifted : shifted + len(inserted)] = inserted
    new_offsets = offsets + before[np.searchsorted(special, offsets)]
    return pa.LargeStringArray.from_buffers(len(strings), pa.py_buffer(new_offsets), pa.py_buffer(out))


def _texts(values: Iterable[str]) -> pa.Array:
    return pa.array(values, _STRING)


def _join(*parts: str | pa.Array) -> pa.Array:
    """The row-wise concatenation of arrays and constant strings (at least one array)."""
    scalars = [pa.scalar(p, _STRING) if isinstance(p, str) else p.cast(_STRING) for p in parts]
    return pc.binary_join_element_wise(*scalars, pa.scalar("", _STRING))


def _null_as_json(text: pa.Array, source: pa.Array) -> pa.Array:
    """``text`` with ``null`` where ``source`` is null."""
    if not source.null_count:
        return text
    return pc.if_else(source.is_null(), pa.scalar("null", _STRING), text)


def _float_text(value: float) -> str:
    """A float as json writes it."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _floats(values: pa.Array, nan_as_null: bool) -> pa.Array:
    """Floats as json writes them; null as ``null``, and NaN too if ``nan_as_null``."""
    numbers = values.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    # Few distinct values in practice (rounded scores): each is formatted once. Told apart by
    # their bits, so 0.0 and -0.0 stay apart.
    distinct, inverse = np.unique(numbers.view(np.int64), return_inverse=True)
    texts = _texts(_float_text(v) for v in distinct.view(np.float64).tolist())
    text = texts.take(pa.array(inverse.reshape(-1)))
    missing = np.isnan(numbers) if nan_as_null else values.is_null().to_numpy(zero_copy_only=False)
    return pc.if_else(pa.array(missing), pa.scalar("null", _STRING), text) if missing.any() else text


def encodable(kind: pa.DataType) -> bool:
    """Whether :func:`fragments` takes Arrow values of type ``kind``."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return encodable(kind.value_type)
    if pa.types.is_struct(kind):
        return all(encodable(kind.field(n).type) for n in range(kind.num_fields))
    return any(
        test(kind)
        for test in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_boolean,
            pa.types.is_floating,
            pa.types.is_null,
        )
    )


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def fragments(values: pa.Array | pa.ChunkedArray, top: bool = True) -> pa.Array:
    """The JSON text of each value of an Arrow array of a type :func:`encodable` takes.

    A NaN of a float column (``top``) is ``null``, as the writers have always shown a missing
    number; inside a list or struct it is ``NaN``, as json writes it.
    """
    values = _one_array(values)
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _null_as_json(_join('"', escaped(values), '"'), values)
    if pa.types.is_integer(kind):
        return _null_as_json(values.cast(_STRING), values)
    if pa.types.is_boolean(kind):
        return _null_as_json(pc.if_else(values, "true", "false").cast(_STRING), values)
    if pa.types.is_floating(kind):
        return _floats(values, nan_as_null=top)
    if pa.types.is_null(kind):
        return pa.array(["null"] * len(values), _STRING)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        items = fragments(values.flatten(), top=False)
        offsets = values.offsets.cast(pa.int64()).to_numpy()
        lists = pa.LargeListArray.from_arrays(pa.array(offsets - offsets[0]), items)
        return _null_as_json(_join("[", pc.binary_join(lists, pa.scalar(", ", _STRING)), "]"), values)
    if pa.types.is_struct(kind):
        if not kind.num_fields:
            return _null_as_json(pa.array(["{}"] * len(values), _STRING), values)
        parts: list[str | pa.Array] = []
        for n, field in enumerate(values.flatten()):
            parts += [
                ("{" if n == 0 else ", ") + REFERENCE.encode(kind.field(n).name) + ": ",
                fragments(field, top=False),
            ]
        return _null_as_json(_join(*parts, "}"), values)
    raise TypeError(f"no JSON text for Arrow type {kind}")


def column_text(column: Column) -> pa.Array:
    """The JSON text of each value of ``column``: Arrow values by :func:`fragments`, Python values by
    :data:`REFERENCE`; :class:`~audit.frames.JsonText` as it is."""
    if isinstance(column, JsonText):
        return column.text.cast(_STRING)
    if isinstance(column, Patched):
        text = column_text(column.base)
        if not len(column.rows):
            return text
        mask = np.zeros(len(text), bool)
        mask[np.asarray(column.rows, np.int64)] = True
        values = column.values
        patch = fragments(values) if isinstance(values, pa.Array) else python_text(values)
        return pc.replace_with_mask(text, pa.array(mask), patch)
    if isinstance(column, pa.Array | pa.ChunkedArray):
        return fragments(column)
    return python_text(column)


#: Python types whose values a column of one type holds as Arrow values of the given type.
_ARROW_TYPES = {str: _STRING, int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _field_text(values: list[Any]) -> pa.Array:
    """The JSON text of values found under one key: a column at a time when they are all of one
    plain type (or None), else a value at a time."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if len(kinds) == 1 and (kind := kinds.pop()) in _ARROW_TYPES:
        try:
            return fragments(pa.array(values, _ARROW_TYPES[kind]), top=False)
        except OverflowError:  # an int beyond 64 bits
            pass
    return _texts(map(encode_value, values))


def python_text(values: Sequence[Any]) -> pa.Array:
    """The JSON text of Python values, as :data:`REFERENCE` encodes each.

    Dicts (findings' evidence) are encoded a key layout at a time: the values under each key as
    a column (see :func:`_field_text`), joined with the keys; anything else a value at a time.
    """
    values = list(values)
    layouts: dict[tuple[Any, ...], list[int]] = {}
    others: list[int] = []
    for n, value in enumerate(values):
        if type(value) is dict and value:
            layouts.setdefault(tuple(value), []).append(n)
        else:
            others.append(n)
    for keys in [keys for keys in layouts if not all(type(key) is str for key in keys)]:
        others += layouts.pop(keys)  # json turns other keys into strings: a value at a time
    if not layouts:
        return _texts("null" if value is None else encode_value(value) for value in values)
    parts, order = [], []
    for keys, rows in layouts.items():
        pieces: list[str | pa.Array] = []
        for k, key in enumerate(keys):
            pieces += [("{" if k == 0 else ", ") + encode_value(key) + ": "]
            pieces.append(_field_text([values[n][key] for n in rows]))
        parts.append(_join(*pieces, "}"))
        order += rows
    if others:
        parts.append(_texts("null" if values[n] is None else encode_value(values[n]) for n in others))
        order += others
    text = pa.concat_arrays(parts)
    where = np.empty(len(order), np.int64)
    where[np.asarray(order, np.int64)] = np.arange(len(order))
    return text.take(pa.array(where))


def _is_text(values: pa.Array | pa.ChunkedArray) -> bool:
    return pa.types.is_string(values.type) or pa.types.is_large_string(values.type)


def _pieces(column: Column) -> list[str | pa.Array]:
    """Pieces whose row-wise concatenation is the JSON text of ``column``'s values: a string
    column with no nulls is its escaped values between constant quotes, which :func:`lines` joins
    with the keys (a copy of the texts fewer)."""
    if isinstance(column, pa.Array | pa.ChunkedArray) and _is_text(column) and not column.null_count:
        return ['"', escaped(_one_array(column)), '"']
    if isinstance(column, Patched) and _is_text(column.base) and not column.base.null_count:
        values = column.values
        if not isinstance(values, pa.Array) and all(type(value) is str for value in values):
            values = _texts(values)
        if isinstance(values, pa.Array) and _is_text(values) and not values.null_count:
            text = escaped(_one_array(column.base))
            if len(column.rows):
                mask = np.zeros(len(text), bool)
                mask[np.asarray(column.rows, np.int64)] = True
                text = pc.replace_with_mask(text, pa.array(mask), escaped(values))
            return ['"', text, '"']
    return [column_text(column)]


def lines(columns: Mapping[str, Column]) -> pa.Array:
    """A JSON object a row, each ``\\n``-terminated, keys in the order of ``columns`` (at least one)."""
    parts: list[str | pa.Array] = []
    for n, (name, column) in enumerate(columns.items()):
        parts += [("{" if n == 0 else ", ") + REFERENCE.encode(str(name)) + ": ", *_pieces(column)]
    parts.append("}\n")
    merged: list[str | pa.Array] = []
    for part in parts:  # constants side by side as one
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return _join(*merged)


def write_lines(handle: BinaryIO, text: pa.Array) -> None:
    """Write the bytes of a string array's values, back to back."""
    _, data = _string_buffers(text.cast(_STRING))
    if len(data):
        handle.write(memoryview(data))
