"""``duplicate_of`` and ``relation_of`` held as Arrow arrays instead of dicts of Python strings.

:class:`audit.dedup.DedupResult` maps each copy's id to its representative's id
(``duplicate_of``) and to its relation (``relation_of``). As dicts of Python strings they cost
~70 B a record of the corpus (a third of the records are copies); a run over partitions keeps
them until its outputs are written, in the one process that must stay small
(:mod:`audit.engines.sharded`). :class:`IdMap` is the same mapping in two Arrow arrays: the
keys, and the values dictionary-encoded (a representative has several copies; three relations).

It is a read-only ``Mapping``: ``==`` a dict with the same items, iteration in the dict's
order. Reading many keys at once is :meth:`IdMap.lookup` (Arrow's hash table); a single
``map[key]`` scans the keys, for tests and the odd lookup only.

Example:
    >>> copies = IdMap.of({"b": "a", "c": "a"})
    >>> copies.lookup(pa.array(["c", "x"])).to_pylist()
    ['a', None]
    >>> copies == {"b": "a", "c": "a"}
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_STRING = pa.large_string()
#: Keys converted to Python strings per block when iterated.
_BLOCK = 65_536


class IdMap(Mapping[str, str]):
    """A mapping of string keys to string values, held as Arrow arrays (see the module's doc)."""

    def __init__(self, keys: pa.Array, values: pa.Array) -> None:
        assert len(keys) == len(values), "one value per key"
        self.keys_array = keys.cast(_STRING)
        self.values_array = values if pa.types.is_dictionary(values.type) else values.dictionary_encode()

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> IdMap:
        """``mapping`` (a dict, or an :class:`IdMap` returned as it is) as an :class:`IdMap`."""
        if isinstance(mapping, IdMap):
            return mapping
        return cls(pa.array(list(mapping), _STRING), pa.array(list(mapping.values()), _STRING))

    def __len__(self) -> int:
        return len(self.keys_array)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.keys_array), _BLOCK):
            yield from self.keys_array.slice(start, _BLOCK).to_pylist()

    def __getitem__(self, key: object) -> str:
        value = self.lookup(pa.array([key], _STRING))[0].as_py() if isinstance(key, str) else None
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.positions(pa.array([key], _STRING))[0] >= 0)

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """The (key, value) pairs in order (not a lookup per key)."""
        values = self.values_array.cast(_STRING)
        pairs = (
            zip(
                self.keys_array.slice(start, _BLOCK).to_pylist(),
                values.slice(start, _BLOCK).to_pylist(),
                strict=True,
            )
            for start in range(0, len(self), _BLOCK)
        )
        return [pair for block in pairs for pair in block]

    def values(self) -> list[str]:  # type: ignore[override]
        return self.values_array.cast(_STRING).to_pylist()

    def positions(self, ids: pa.Array) -> np.ndarray:
        """The position of each of ``ids`` among the keys, -1 for an id that is no key."""
        found = pc.index_in(ids.cast(_STRING), value_set=self.keys_array)
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)

    def lookup(self, ids: pa.Array) -> pa.Array:
        """The value of each of ``ids`` (large_string; null for an id that is no key)."""
        found = pc.index_in(ids.cast(_STRING), value_set=self.keys_array)
        return self.values_array.take(found).cast(_STRING)

    def __repr__(self) -> str:
        return f"IdMap({dict(self.items())!r})"
