"""Clean: representatives and untouched records, with safe repairs applied -> the cleaned corpus.

Every input record ends in exactly one place: the cleaned corpus (kept, maybe repaired), the
removed records (with ``reason`` and ``duplicate_of``), or quarantine (from ingest).

A repair from a finding is applied to a kept record when the field still holds the finding's
``old`` text at its ``offset``; overlapping repairs on one field apply the first (by offset)
and skip the rest, which stay reported with ``applied`` false.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.table import FindingTable
from audit.dedup import DedupResult
from audit.dedup.idmap import IdMap
from audit.frames import (
    Column,
    Patched,
    arrow_chunks,
    arrow_strings,
    arrow_values,
    batch_rows,
    column_values,
    take_arrow,
    take_chunks,
    take_values,
)
from audit.urls import find_urls

CLEAN_COLUMNS = ["id", "title", "text", "url", "urls", "sources", "repairs"]
REMOVED_COLUMNS = [
    "id",
    "source",
    "line",
    "title",
    "text",
    "url",
    "reason",
    "duplicate_of",
    "jaccard",
    "containment",
]
#: Rows per batch of clean.jsonl and removed.jsonl: a batch's texts are taken, patched and
#: encoded at once, ~6 times their size in working memory (+170 MB a batch of 20,000, at the
#: end of the run when the records, clusters and findings are all held; 5,000: +60 MB).
WRITE_BATCH = 5_000


@dataclass
class CleanResult:
    clean: pd.DataFrame
    removed: pd.DataFrame
    #: The findings, with an ``applied`` column: whether its repair is in the cleaned corpus.
    findings: pd.DataFrame


def apply_repairs(value: str, repairs: list[dict[str, Any]]) -> tuple[str, list[bool]]:
    """Apply substring repairs to ``value``; return the new value and which were applied."""
    order = sorted(range(len(repairs)), key=lambda i: (repairs[i]["offset"], i))
    applied = [False] * len(repairs)
    chosen: list[int] = []
    end = -1
    for i in order:
        repair = repairs[i]
        start, old = repair["offset"], repair["old"]
        if start < end or value[start : start + len(old)] != old:
            continue
        chosen.append(i)
        end = start + len(old)
    pieces, position = [], 0  # joined once: linear even with thousands of repairs in one field
    for i in chosen:
        start, old = repairs[i]["offset"], repairs[i]["old"]
        pieces += [value[position:start], repairs[i]["new"]]
        position = start + len(old)
        applied[i] = True
    pieces.append(value[position:])
    return "".join(pieces), applied


class _Positions:
    """Row positions of record ids, looked up in Arrow's hash table (no dict of every id)."""

    def __init__(self, records: pd.DataFrame) -> None:
        chunks = arrow_strings(records["id"])
        values = records["id"].tolist() if chunks is None else None
        self.ids = pa.array(values, pa.large_string()) if chunks is None else chunks.combine_chunks()

    def __call__(self, ids: list[str] | pa.Array) -> np.ndarray:
        """The position of each of ``ids``, -1 for an id that is no record."""
        if not len(ids):
            return np.empty(0, np.int64)
        values = ids.cast(self.ids.type) if isinstance(ids, pa.Array) else pa.array(ids, self.ids.type)
        found = pc.index_in(values, value_set=self.ids)
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)


def _take(records: pd.DataFrame, column: str, rows: np.ndarray) -> list[Any]:
    """The cells of ``column`` at ``rows`` as Python values (only those rows converted)."""
    return take_values(records[column], rows)


#: Kept records looked at one by one per chunk (repaired ones, representatives lacking a field).
TODO_CHUNK = 10_000
_TEXT_LISTS = pa.large_list(pa.large_string())
_SOURCE_LISTS = pa.large_list(
    pa.struct([("id", pa.large_string()), ("source", pa.large_string()), ("line", pa.int64())])
)
_SOURCE_KEYS = ("id", "source", "line")


def _text_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _source_list(value: Any) -> bool:
    """A list of ``{id, source, line}`` dicts (keys in that order) of a str, a str and an int."""
    return type(value) is list and all(
        type(member) is dict
        and tuple(member) == _SOURCE_KEYS
        and type(member["id"]) is str
        and type(member["source"]) is str
        and type(member["line"]) is int
        for member in value
    )


def _as_arrow(values: list[Any], kind: pa.DataType, plain: Callable[[Any], bool]) -> pa.Array | list[Any]:
    """``values`` as Arrow values of ``kind`` when each is ``plain`` (Arrow then holds exactly it,
    and JSON is written from it a column at a time), else as they are."""
    return pa.array(values, kind) if all(map(plain, values)) else values


def _among(rows: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Where in ``rows`` the values of the sorted ``chosen`` are (np.isin would sort ``chosen`` again
    for every batch)."""
    if not len(chosen):
        return np.empty(0, np.int64)
    at = np.minimum(np.searchsorted(chosen, rows), len(chosen) - 1)
    return np.flatnonzero(chosen[at] == rows)


def _source_lists(
    records: pd.DataFrame,
    rows: np.ndarray,
    reps: np.ndarray,
    bounds: np.ndarray,
    members: np.ndarray,
    skipped: np.ndarray,
) -> pa.LargeListArray:
    """The ``sources`` of the records at ``rows`` (ascending) as Arrow lists of ``{id, source, line}``:
    for a representative in ``reps`` (not in ``skipped``) with members, its members (record rows
    ``members[bounds[k]:bounds[k + 1]]``), else the record itself."""
    at = _among(rows, reps)
    k = np.searchsorted(reps, rows[at])
    counts = bounds[k + 1] - bounds[k]
    lending = (counts > 0) & ~np.isin(rows[at], skipped)
    at, k, counts = at[lending], k[lending], counts[lending]
    lengths = np.ones(len(rows), np.int64)
    lengths[at] = counts
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    listed = np.repeat(rows, lengths)  # every row itself, then each lender's members over its place
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    listed[np.repeat(offsets[at], counts) + within] = members[np.repeat(bounds[k], counts) + within]
    fields = [
        take_arrow(records["id"], listed),
        take_arrow(records["source"], listed),
        take_arrow(records["line"], listed).cast(pa.int64()),
    ]
    entries = pa.StructArray.from_arrays(fields, names=list(_SOURCE_KEYS))
    return pa.LargeListArray.from_arrays(pa.array(offsets), entries)


@dataclass
class CleanCorpus:
    """The cleaned corpus and the removed records as row positions into ``records``, plus what changed.

    No text is copied: rows are read from ``records`` a batch at a time when written
    (:meth:`clean_rows`, :meth:`removed_rows`), or turned into DataFrames when asked for
    (:meth:`clean_frame`, :meth:`removed_frame`).
    """

    records: pd.DataFrame
    #: Positions of the kept records, in record order.
    kept: np.ndarray
    #: Kept position -> its title, text and url after repairs and fills (only records changed).
    changed: dict[int, dict[str, str]]
    #: Kept position -> its repair notes (only records with some).
    notes: dict[int, list[str]]
    #: Representative position -> its cluster's members as ``{id, source, line}`` (a
    #: :class:`_Sources` reads them from records of its own, these records' rows first).
    sources: MutableMapping[int, list[dict[str, Any]]]
    #: Positions of the removed records, in record order.
    removed_at: np.ndarray
    #: One row per removed record (same order): id, reason, duplicate_of, jaccard, containment.
    removed_info: pd.DataFrame

    def __len__(self) -> int:
        return len(self.kept)

    def kept_ids(self) -> list[str]:
        return _take(self.records, "id", self.kept)

    def clean_batches(self, batch: int = WRITE_BATCH) -> Iterator[dict[str, Column]]:
        """clean.jsonl's rows (the columns of :data:`CLEAN_COLUMNS`) a batch at a time, as columns.

        The records' own Arrow values (their ``urls`` are those of their text, see
        :mod:`audit.schema`), with the values of the records changed, lending sources or
        carrying repair notes patched in: no text goes through Python unless it was changed.
        """
        records = self.records
        changed, noted = (np.fromiter(sorted(d), np.int64, len(d)) for d in (self.changed, self.notes))
        reps, bounds, members, explicit = _source_parts(self.sources)
        # The records the sources' rows are of: a _Sources' own, whose first rows are these
        # records' (a partition's lists members of other partitions, placed after its rows).
        lenders = self.sources.records if isinstance(self.sources, _Sources) else records
        set_rows = np.fromiter(sorted(explicit), np.int64, len(explicit))
        for start in range(0, len(self.kept), batch):
            rows = self.kept[start : start + batch]
            ids = take_arrow(records["id"], rows)
            at = _among(rows, changed)
            fields = [self.changed[row] for row in rows[at].tolist()]
            columns: dict[str, Column] = {"id": ids}
            for name in ("title", "text", "url"):
                columns[name] = Patched(take_arrow(records[name], rows), at, [f[name] for f in fields])
            columns["urls"] = Patched(
                take_arrow(records["urls"], rows),
                at,
                _as_arrow([find_urls(f["text"]) for f in fields], _TEXT_LISTS, _text_list),
            )
            at = _among(rows, set_rows)
            lent = [(n, explicit[row]) for n, row in zip(at.tolist(), rows[at].tolist(), strict=True)]
            lent = [(n, members) for n, members in lent if members]  # an empty list: its own source
            columns["sources"] = Patched(
                _source_lists(lenders, rows, reps, bounds, members, set_rows),
                np.array([n for n, _ in lent], np.int64),
                _as_arrow([members for _, members in lent], _SOURCE_LISTS, _source_list),
            )
            at = _among(rows, noted)
            no_notes = pa.LargeListArray.from_arrays(
                pa.array(np.zeros(len(rows) + 1, np.int64)), pa.array([], pa.large_string())
            )
            notes = [self.notes[row] for row in rows[at].tolist()]
            columns["repairs"] = Patched(no_notes, at, _as_arrow(notes, _TEXT_LISTS, _text_list))
            yield columns

    def removed_batches(self, batch: int = WRITE_BATCH) -> Iterator[dict[str, Column]]:
        """removed.jsonl's rows (the columns of :data:`REMOVED_COLUMNS`) a batch at a time, as columns."""
        info = self.removed_info
        for start in range(0, len(self.removed_at), batch):
            rows = self.removed_at[start : start + batch]
            part = info.iloc[start : start + batch]
            columns: dict[str, Column] = {
                name: take_arrow(self.records[name], rows)
                for name in ("id", "source", "line", "title", "text", "url")
            }
            # duplicate_of_run: a run with an index names the run of an earlier record copied.
            for name in ("reason", "duplicate_of", "duplicate_of_run"):
                if name not in part:
                    continue
                values = arrow_values(part[name])
                columns[name] = values if values is not None else column_values(part[name])
            # A removed record with no similarity has None (NaN in the float column).
            for name in ("jaccard", "containment"):
                scores = part[name]
                columns[name] = (
                    pa.array(scores.to_numpy(), from_pandas=True)  # NaN as null
                    if scores.dtype.kind == "f"
                    else [None if v != v else v for v in column_values(scores)]
                )
            yield columns

    def clean_rows(self) -> Iterator[dict[str, Any]]:
        """clean.jsonl's rows as dicts (:meth:`clean_batches` a row at a time)."""
        return batch_rows(self.clean_batches())

    def removed_rows(self) -> Iterator[dict[str, Any]]:
        """removed.jsonl's rows as dicts (:meth:`removed_batches` a row at a time)."""
        return batch_rows(self.removed_batches())

    def clean_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.clean_rows()), columns=CLEAN_COLUMNS)

    def removed_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.removed_rows()), columns=REMOVED_COLUMNS)


def build_clean(records: pd.DataFrame, dedup: DedupResult, findings: pd.DataFrame) -> CleanResult:
    """Build the cleaned corpus and the removed records from records, clusters and findings."""
    corpus, table = plan_clean(records, dedup, FindingTable.from_frame(findings))
    return CleanResult(corpus.clean_frame(), corpus.removed_frame(), table.frame())


_NONE = np.empty(0, np.int64)


class _Sources(MutableMapping[int, list[dict[str, Any]]]):
    """Representative position -> its cluster's members as ``{id, source, line}`` dicts, made a
    block of representatives at a time when read (the cleaned corpus is written in record
    order): a million records' clusters held as dicts took ~0.2 GB until the run ended."""

    #: Representatives made per block.
    block = 2_000

    def __init__(
        self, records: pd.DataFrame, reps: np.ndarray, bounds: np.ndarray, members: np.ndarray
    ) -> None:
        #: ``reps`` ascending; rep ``reps[k]`` has members ``members[bounds[k]:bounds[k + 1]]``.
        self.records, self.reps, self.bounds, self.members = records, reps, bounds, members
        self._first, self._block = 0, []  # the block made last: its first rep number and lists
        self._set: dict[int, list[dict[str, Any]]] = {}  # lists set by a caller, over the made ones
        self._deleted: set[int] = set()

    def _number(self, row: int) -> int:
        k = int(np.searchsorted(self.reps, row))
        if k == len(self.reps) or self.reps[k] != row:
            raise KeyError(row)
        return k

    def __getitem__(self, row: int) -> list[dict[str, Any]]:
        if row in self._set:
            return self._set[row]
        if row in self._deleted:
            raise KeyError(row)
        k = self._number(row)
        if not self._first <= k < self._first + len(self._block):
            self._first, self._block = k, self._make(k, min(k + self.block, len(self.reps)))
        return self._block[k - self._first]

    def _make(self, lo: int, hi: int) -> list[list[dict[str, Any]]]:
        rows = self.members[self.bounds[lo] : self.bounds[hi]]
        ids, sources, lines = (_take(self.records, c, rows) for c in ("id", "source", "line"))
        found = [
            {"id": i, "source": source, "line": int(line)}
            for i, source, line in zip(ids, sources, lines, strict=True)
        ]
        starts = (self.bounds[lo : hi + 1] - self.bounds[lo]).tolist()
        return [found[starts[n] : starts[n + 1]] for n in range(hi - lo)]

    def __setitem__(self, row: int, members: list[dict[str, Any]]) -> None:
        self._set[row] = members
        self._deleted.discard(row)

    def __delitem__(self, row: int) -> None:
        self[row]  # a KeyError when there is none
        self._set.pop(row, None)
        self._deleted.add(row)

    def __iter__(self) -> Iterator[int]:
        made = (row for row in self.reps.tolist() if row not in self._deleted and row not in self._set)
        return iter([*made, *self._set])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _source_parts(
    sources: Mapping[int, list[dict[str, Any]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, list[dict[str, Any]]]]:
    """``sources`` as member arrays (representatives, bounds, members: see :class:`_Sources`) and
    the lists set over them (an empty list: the record's own source); any other mapping as lists
    set only."""
    if isinstance(sources, _Sources):
        explicit = {row: [] for row in sources._deleted} | sources._set
        return sources.reps, sources.bounds, sources.members, explicit
    return _NONE, np.zeros(1, np.int64), _NONE, dict(sources)


def _similarities(clusters: pd.DataFrame, removed_ids: pa.Array) -> tuple[Any, Any]:
    """The ``jaccard`` and ``containment`` of each removed record to its representative (from the
    clusters' ``to_representative`` entries; None when it has none), as removed_info's columns
    hold them: what pandas makes of the Python values. Arrow-backed clusters are looked up by
    Arrow (no dict per entry)."""
    if not len(clusters):
        return [None] * len(removed_ids), [None] * len(removed_ids)
    chunks = arrow_chunks(clusters["to_representative"])
    if chunks is None:
        entries = [m for members in clusters["to_representative"].tolist() for m in members]
        at = {m["id"]: n for n, m in enumerate(entries)}  # the last entry of an id wins
        found = [at.get(i) for i in removed_ids.to_pylist()]
        return tuple(
            [None if n is None else entries[n][name] for n in found] for name in ("jaccard", "containment")
        )
    flat = pa.chunked_array([chunk.flatten() for chunk in chunks.chunks], chunks.type.value_type)
    flat = flat.combine_chunks()
    ids = flat.field("id").cast(pa.large_string())
    # The last entry of an id, as a dict built in order would keep: looked up in reverse.
    last = pc.index_in(removed_ids.cast(pa.large_string()), value_set=ids[::-1])
    at = pc.subtract(pa.scalar(len(ids) - 1, pa.int64()), last.cast(pa.int64()))
    columns = []
    for name in ("jaccard", "containment"):
        scores = flat.field(name).take(at)
        if scores.null_count == len(scores):
            columns.append([None] * len(scores))  # pandas: an object column of None
        elif pa.types.is_floating(scores.type):
            columns.append(scores.cast(pa.float64()).to_numpy(zero_copy_only=False))  # None as NaN
        else:
            columns.append(scores.to_pylist())
    return tuple(columns)


def _strings(values: pa.Array) -> pd.Series | list[str]:
    """An Arrow string array as the column pandas makes of a list of its Python strings (``str``;
    none: the empty list, which pandas makes a float column of)."""
    if not len(values):
        return []
    return pd.Series(pd.array(pa.chunked_array([values.cast(pa.large_string())]), dtype="str"))


def _is_in(column: pd.Series, values: list[str] | pa.Array) -> np.ndarray:
    """Whether each cell of the string ``column`` is one of ``values``, as a numpy bool array
    (Arrow's hash table on an Arrow-backed column: pandas' ``isin`` boxes every cell first)."""
    chunks = arrow_strings(column)
    if chunks is None:
        if isinstance(values, pa.Array):
            values = values.to_pylist()
        return column.isin(values).to_numpy(bool) if len(column) else np.zeros(0, bool)
    wanted = values.cast(chunks.type) if isinstance(values, pa.Array) else pa.array(values, chunks.type)
    found = pc.is_in(chunks, value_set=wanted)
    return np.asarray(found.to_numpy(zero_copy_only=False), bool) if len(column) else np.zeros(0, bool)


@dataclass(frozen=True)
class _KeptClusters:
    """The clusters whose representative is kept, in record order of it: representative ``k`` is at
    row ``rows[k]`` and its members (itself included) at ``member_rows[bounds[k]:bounds[k + 1]]``."""

    rows: np.ndarray
    bounds: np.ndarray
    member_rows: np.ndarray


def _arrow_column(column: pd.Series, kind: pa.DataType) -> pa.Array:
    """A column as one Arrow array of ``kind`` (its own Arrow values when it has them)."""
    chunks = arrow_chunks(column)
    if chunks is None:
        return pa.array(column_values(column), kind)
    return (chunks.combine_chunks() if chunks.num_chunks != 1 else chunks.chunk(0)).cast(kind)


def _kept_clusters(clusters: pd.DataFrame, duplicate: np.ndarray, positions: _Positions) -> _KeptClusters:
    """The clusters of a kept representative, their members found by id (a member that is no record
    of this run is an error) in one lookup, without a Python list of the members."""
    if not len(clusters):
        return _KeptClusters(_NONE, np.zeros(1, np.int64), _NONE)
    reps = _arrow_column(clusters["representative"], pa.large_string())
    members = _arrow_column(clusters["members"], pa.large_list(pa.large_string()))
    sizes = pc.list_value_length(members).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = members.flatten()
    found = positions(pa.concat_arrays([reps, flat]))
    rep_rows, flat_rows = found[: len(reps)], found[len(reps) :]
    kept = np.flatnonzero(rep_rows >= 0)
    kept = kept[~duplicate[rep_rows[kept]]]
    kept = kept[np.argsort(rep_rows[kept], kind="stable")]
    counts = sizes[kept]
    bounds = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(counts, out=bounds[1:])
    starts = np.cumsum(sizes) - sizes
    gather = np.repeat(starts[kept] - bounds[:-1], counts) + np.arange(bounds[-1])
    member_rows = flat_rows[gather]
    if (member_rows < 0).any():  # as before: a member that is no record of this run is an error
        raise KeyError(min(flat.take(pa.array(gather[member_rows < 0])).to_pylist()))
    return _KeptClusters(rep_rows[kept], bounds, member_rows)


def _blank(strings: pa.Array) -> np.ndarray:
    """Whether each string is empty or missing."""
    empty = pc.equal(pc.binary_length(strings), 0).fill_null(True)
    return np.asarray(empty.to_numpy(zero_copy_only=False), bool)


#: The fields repairs are applied to and the fields a representative may take from a copy.
REPAIRED_FIELDS = ("title", "text", "url")
LENT_FIELDS = ("url", "title")


@dataclass(frozen=True)
class Repairs:
    """Repairs to apply to kept records, one per finding with a repair of a ``title``, ``text`` or
    ``url``: by record row, then in finding order (the order :func:`apply_repairs` breaks ties in).
    The repairs are the findings' JSON text, decoded only where applied."""

    #: The row of each repair's record (ascending).
    rows: np.ndarray
    fields: list[str]
    #: The finding of each (its position in the findings).
    positions: np.ndarray
    texts: pa.Array

    def between(self, low: int, high: int, origin: int = 0) -> Repairs:
        """The repairs of rows ``low:high``, their rows counted from ``origin`` (texts copied:
        a slice would carry, pickled, the whole column)."""
        lo, hi = (int(x) for x in np.searchsorted(self.rows, [low, high]))
        return Repairs(
            self.rows[lo:hi] - origin,
            self.fields[lo:hi],
            self.positions[lo:hi],
            pa.concat_arrays([self.texts.slice(lo, hi - lo)]),
        )

    @classmethod
    def of(cls, findings: FindingTable, positions: _Positions, duplicate: np.ndarray) -> Repairs:
        """The repairs of the findings (a few percent have one) whose record is kept."""
        if not len(findings):
            return cls(_NONE, [], _NONE, pa.array([], pa.large_string()))
        with_repair = np.flatnonzero(findings.table["repair"].is_valid().to_numpy(zero_copy_only=False))
        rows = positions(take_chunks(findings.table["record_id"], with_repair))
        fields = findings.values("field", with_repair)
        wanted = np.fromiter((field in REPAIRED_FIELDS for field in fields), bool, len(fields))
        wanted &= rows >= 0
        wanted[wanted] &= ~duplicate[rows[wanted]]
        at = np.flatnonzero(wanted)
        at = at[np.argsort(rows[at], kind="stable")]  # finding order kept within a record
        texts = take_chunks(findings.table["repair"], with_repair[at]).cast(pa.large_string())
        return cls(rows[at], [fields[n] for n in at.tolist()], with_repair[at], texts)


#: Kept row -> the copy each field it may lack is taken from: field -> (lender id, its value).
Lent = dict[int, dict[str, tuple[str, str]]]


def _first_with(records: pd.DataFrame, name: str, rows: np.ndarray, clusters: _KeptClusters) -> np.ndarray:
    """For each of the kept records at ``rows``, the row of the copy it takes field ``name`` from
    (-1: none): the first member of its cluster with a value (members in cluster order, itself
    among them), or for a record outside clusters itself when it has one. Found by Arrow on the
    field's values, no Python value per member."""
    donors = np.full(len(rows), -1, np.int64)
    if not len(rows):
        return donors
    reps = clusters.rows
    k = np.minimum(np.searchsorted(reps, rows), max(len(reps) - 1, 0))
    is_rep = reps[k] == rows if len(reps) else np.zeros(len(rows), bool)
    alone = np.flatnonzero(~is_rep)
    has = ~_blank(take_arrow(records[name], rows[alone]))
    donors[alone[has]] = rows[alone[has]]
    at = np.flatnonzero(is_rep)
    lows, counts = clusters.bounds[k[at]], np.diff(clusters.bounds)[k[at]]
    members = np.repeat(lows - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    member_rows = clusters.member_rows[members]
    valued = np.flatnonzero(~_blank(take_arrow(records[name], member_rows)))
    owner = np.repeat(np.arange(len(at)), counts)[valued]
    owners, first = np.unique(owner, return_index=True)  # valued is ascending: each one's first
    donors[at[owners]] = member_rows[valued[first]]
    return donors


def _lenders(records: pd.DataFrame, rows: np.ndarray, kept_clusters: _KeptClusters, repairs: Repairs) -> Lent:
    """What each of the kept records at ``rows`` (ascending) may take for a field it lacks
    (:func:`_first_with`, read of the titles and urls only, as they were before any repair).
    Only fields that are blank or repaired (so may end blank) are listed."""
    fields = np.array(repairs.fields, dtype=object)
    lent: Lent = {}
    for name in LENT_FIELDS:
        need = _blank(take_arrow(records[name], rows)) | np.isin(rows, repairs.rows[fields == name])
        wanted = rows[need]
        donors = _first_with(records, name, wanted, kept_clusters)
        given = donors >= 0
        ids, values = (_take(records, column, donors[given]) for column in ("id", name))
        for row, donor, value in zip(wanted[given].tolist(), ids, values, strict=True):
            lent.setdefault(row, {})[name] = (donor, value)
    return lent


@dataclass
class Looked:
    """What :func:`look_at` made of the records it looked at: their changed values and repair
    notes (by row), and the ``applied`` flag of each repair (by finding position)."""

    changed: dict[int, dict[str, str]]
    notes: dict[int, list[str]]
    positions: np.ndarray
    applied: np.ndarray


def look_at(records: pd.DataFrame, rows: np.ndarray, repairs: Repairs, lent: Lent) -> Looked:
    """The kept records at ``rows`` (ascending) looked at one by one: their ``repairs`` (those of
    these rows) applied, a field left blank taken from the copy ``lent`` names.

    The one implementation of the repairs: the local run calls it on the whole records a chunk
    of rows at a time, a run over partitions on each worker on its partition (rows counted from
    the partition's first)."""
    values = {name: _take(records, name, rows) for name in ("id", *REPAIRED_FIELDS)}
    texts = repairs.texts.to_pylist()
    repair_rows = repairs.rows.tolist()
    applied = np.zeros(len(repair_rows), bool)
    changed: dict[int, dict[str, str]] = {}
    notes: dict[int, list[str]] = {}
    k = 0  # the next repair (repairs are by row, as rows are)
    for n, row in enumerate(rows.tolist()):
        fields = {name: values[name][n] for name in REPAIRED_FIELDS}
        mine: dict[str, list[int]] = {}
        while k < len(repair_rows) and repair_rows[k] <= row:
            if repair_rows[k] == row:
                mine.setdefault(repairs.fields[k], []).append(k)
            k += 1
        repair_notes: list[str] = []
        for field in REPAIRED_FIELDS:
            ks = mine.get(field)
            if not ks:
                continue
            decoded = [json.loads(texts[j]) for j in ks]
            fields[field], done = apply_repairs(fields[field], decoded)
            applied[ks] = done
            repair_notes += [f"{field}: {r['description']}" for r, d in zip(decoded, done, strict=True) if d]
        for name, (donor, value) in lent.get(row, {}).items():  # a field it lacks, from a copy
            if not fields[name]:
                fields[name] = value
                repair_notes.append(f"{name}: filled from duplicate {donor}")
        if repair_notes or any(fields[name] != values[name][n] for name in REPAIRED_FIELDS):
            changed[row] = fields
        if repair_notes:
            notes[row] = repair_notes
    return Looked(changed, notes, repairs.positions, applied)


@dataclass
class CleanPlan:
    """Every record's fate (the :class:`CleanCorpus`, its ``changed`` and ``notes`` still empty) and
    what :func:`look_at` is given: the kept rows it looks at (repaired ones, representatives
    lacking a field), their repairs and what they may take from a copy. Made of the records'
    ids, sources, lines, titles and urls: no text."""

    corpus: CleanCorpus
    todo: np.ndarray
    repairs: Repairs
    lent: Lent


def plan_fates(records: pd.DataFrame, dedup: DedupResult, findings: FindingTable) -> CleanPlan:
    """The :class:`CleanPlan` of ``records`` (the text is not read)."""
    # The copies' ids and their values as Arrow arrays, looked up by Arrow: no Python string
    # per removed record (a run over partitions holds them so, :class:`IdMap`).
    copies, relations = IdMap.of(dedup.duplicate_of), IdMap.of(dedup.relation_of)
    duplicate = _is_in(records["id"], copies.keys_array)
    kept, removed_at = np.flatnonzero(~duplicate), np.flatnonzero(duplicate)

    # Only the columns used are read (not the clusters' similarities).
    removed_arrow = take_arrow(records["id"], removed_at)
    jaccard, containment = _similarities(dedup.clusters, removed_arrow)
    removed_info = pd.DataFrame(
        {
            "id": _strings(removed_arrow),
            "reason": _strings(relations.lookup(removed_arrow)),
            "duplicate_of": _strings(copies.lookup(removed_arrow)),
            "jaccard": jaccard,
            "containment": containment,
        },
        columns=["id", "reason", "duplicate_of", "jaccard", "containment"],
    )
    del removed_arrow, jaccard, containment

    # Clusters with a kept representative: their members' positions (for ``sources``, read when
    # written) and, for representatives lacking a field, the fields to lend.
    positions = _Positions(records)
    kept_clusters = _kept_clusters(dedup.clusters, duplicate, positions)
    sources = _Sources(records, kept_clusters.rows, kept_clusters.bounds, kept_clusters.member_rows)
    repairs = Repairs.of(findings, positions, duplicate)

    # The kept records looked at one by one: repaired ones, and representatives (a field to fill).
    titles, urls = (take_arrow(records[name], kept_clusters.rows) for name in ("title", "url"))
    lacking = kept_clusters.rows[_blank(titles) | _blank(urls)]
    todo = np.union1d(repairs.rows, lacking).astype(np.int64)
    lent = _lenders(records, todo, kept_clusters, repairs)
    corpus = CleanCorpus(records, kept, {}, {}, sources, removed_at, removed_info)
    return CleanPlan(corpus, todo, repairs, lent)


def plan_clean(
    records: pd.DataFrame, dedup: DedupResult, findings: FindingTable
) -> tuple[CleanCorpus, FindingTable]:
    """Decide every record's fate and every kept record's repairs, without copying the corpus.

    Returns the :class:`CleanCorpus` and the findings with an ``applied`` column (whether its
    repair is in the cleaned corpus). Only records with repairs, and representatives lacking a
    field a copy has, are looked at one by one (:func:`look_at`).
    """
    plan = plan_fates(records, dedup, findings)
    corpus, todo = plan.corpus, plan.todo
    applied = np.zeros(len(findings), bool)
    # A chunk of rows at a time: only its texts are Python strings at once (at a million
    # records the repaired ones alone are ~100 MB of text).
    for first in range(0, len(todo), TODO_CHUNK):
        chunk = todo[first : first + TODO_CHUNK]
        looked = look_at(records, chunk, plan.repairs.between(int(chunk[0]), int(chunk[-1]) + 1), plan.lent)
        corpus.changed.update(looked.changed)
        corpus.notes.update(looked.notes)
        applied[looked.positions] = looked.applied
    return corpus, findings.with_applied(applied)
