"""Great Expectations suites over partitions: each partition's rows validated on its worker.

A column map expectation (GX's ``ColumnMapExpectation``) judges each row by itself, so a
table's result is its parts' results added up: rows, missing values and failing rows counted
per partition, the failing rows sent back as their positions in the whole table (the first
:data:`~audit.expectations.MAX_FAILING_IDS` are named by id here, from the compact columns).
Success is then decided as GX decides it, on the sums: the share of passing rows among the
non-null ones against ``mostly`` (among all rows for the two null expectations).

``expect_column_values_to_be_unique`` compares rows with each other: each partition sends the
128-bit hash (xxh3) of every non-null value with its position, and the rows whose value occurs
twice in the whole table fail, as in GX's own test (every copy fails, nulls are not compared).

Any other expectation cannot be split this way (an aggregate such as a mean or a row count, a
check of the column's dtype, an order of the rows): :func:`unsplittable` names them, and such a
run holds its records in memory (:func:`audit.engines.sharded.sharded`).

The ``corpus`` table is validated in the order of one table: the kept rows of every partition,
then the removed ones, then the quarantined inputs (those hold no text: validated here).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from audit.checks.table import FindingTable
from audit.clean import CleanCorpus
from audit.engines.shards import Shards
from audit.expectations import (
    CORPUS_COLUMNS,
    MAX_FAILING_IDS,
    RECORD_COLUMNS,
    SuiteFile,
    build_suites,
    corpus_table,
    describe,
    kept_table,
    quarantined_table,
    raised,
    read_columns,
    removed_accounted,
    removed_table,
    summary,
    unrepaired_errors,
)
from audit.frames import column_values, take_arrow, take_values

UNIQUE = "expect_column_values_to_be_unique"
#: Map expectations whose success counts every row, not only the non-null ones.
OVER_ALL_ROWS = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"})
#: Map expectations that read the whole column (its dtype, its order): not split.
WHOLE_COLUMN = frozenset(
    {
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_increasing",
        "expect_column_values_to_be_decreasing",
    }
)


def unsplittable(suites: Sequence[SuiteFile]) -> list[str]:
    """The expectations of ``suites`` that cannot be validated a partition at a time, as
    ``"file: type"`` (empty: every suite can). Raises :class:`~audit.expectations.SuiteError`
    for a suite GX cannot load, before any work is done."""
    from great_expectations.expectations.expectation import ColumnMapExpectation

    _, gx_suites = _session(suites)  # the same session validates the run's parts here later
    return [
        f"{suite.path}: {expectation.expectation_type}"
        for suite, gx_suite in zip(suites, gx_suites, strict=True)
        for expectation in gx_suite.expectations
        if not isinstance(expectation, ColumnMapExpectation) or expectation.expectation_type in WHOLE_COLUMN
    ]


def value_hashes(values: pd.Series) -> np.ndarray:
    """The 128-bit hash of each value as two uint64 columns; equal values, equal hashes (a
    number hashed by its float value, as ``1 == 1.0 == True`` in the column's comparison)."""
    out = np.empty((len(values), 2), np.uint64)
    for n, value in enumerate(column_values(values)):
        if isinstance(value, str):
            key = b"s" + value.encode("utf-8", "surrogatepass")
        elif isinstance(value, bool | int | float | np.number):
            key = b"n" + float(value).hex().encode()
        else:
            key = b"r" + repr(value).encode("utf-8", "surrogatepass")
        digest = xxhash.xxh3_128_intdigest(key)
        out[n] = (digest >> 64, digest & 0xFFFFFFFFFFFFFFFF)
    return out


@dataclass(frozen=True)
class PartCounts:
    """One expectation's result over one part of a table."""

    rows: int
    missing: int
    #: Positions (in the whole table) of the failing rows; of a unique expectation, of every
    #: non-null row, with ``hashes`` their values' hashes.
    positions: np.ndarray
    hashes: np.ndarray | None = None
    exception: str | None = None


def _column_counts(frame: pd.DataFrame, column: str) -> PartCounts:
    """A unique expectation's part: the non-null values' positions and hashes."""
    values = frame[column]
    present = values.notna().to_numpy()
    kept = values[present]
    return PartCounts(len(frame), int((~present).sum()), kept.index.to_numpy(np.int64), value_hashes(kept))


@dataclass(frozen=True)
class PartResults:
    """One suite over one part of its table."""

    #: The suite's expectation numbers in the order GX reports them (it groups them by column).
    order: list[int]
    #: Each expectation's counts, by its number in the suite.
    counts: list[PartCounts]


def validate_part(suites: Sequence[SuiteFile], tables: dict[str, pd.DataFrame]) -> list[PartResults | None]:
    """Each suite over one part of its table (a frame indexed by position in the whole table;
    None for a suite whose table has no rows here). Uniqueness is left to :func:`combine`: the
    part gives its values' hashes."""
    session, gx_suites = _session(suites)
    out: list[PartResults | None] = []
    for suite, gx_suite in zip(suites, gx_suites, strict=True):
        frame = tables.get(suite.table)
        if frame is None or not len(frame):
            out.append(None)
            continue
        results = session.validate(suite, gx_suite, read_columns(frame, gx_suite), None).results
        order = _numbers(gx_suite, results)
        counts: list[PartCounts] = [None] * len(order)  # type: ignore[list-item]
        for n, result in zip(order, results, strict=True):
            expectation = gx_suite.expectations[n]
            if expectation.expectation_type == UNIQUE and raised(result) is None:
                counts[n] = _column_counts(frame, expectation.column)
            else:
                found = result.result or {}
                counts[n] = PartCounts(
                    int(found.get("element_count") or len(frame)),
                    int(found.get("missing_count") or 0),
                    np.asarray(found.get("unexpected_index_list") or [], np.int64),
                    exception=raised(result),
                )
        out.append(PartResults(order, counts))
    return out


def _key(configuration: Any) -> tuple[str, str]:
    kwargs = {k: v for k, v in configuration.kwargs.items() if k != "batch_id"}
    return configuration.type, json.dumps(kwargs, sort_keys=True, default=str)


def _numbers(gx_suite: Any, results: Sequence[Any]) -> list[int]:
    """The number in ``gx_suite`` of each of GX's ``results`` (equal expectations in turn)."""
    free: dict[tuple[str, str], list[int]] = {}
    for n, expectation in enumerate(gx_suite.expectations):
        free.setdefault(_key(expectation.configuration), []).append(n)
    return [free[_key(result.expectation_config)].pop(0) for result in results]


_SESSIONS: dict[str, Any] = {}


def _session(suites: Sequence[SuiteFile]) -> Any:
    """A GX session and the built suites, made once per process and set of suites (a worker
    validates many parts); keyed by the suites' contents, so an edited suite is built again."""
    key = json.dumps([(str(s.path), s.name, s.table, s.expectations) for s in suites], default=str)
    if key not in _SESSIONS:
        _SESSIONS[key] = build_suites(suites)
    return _SESSIONS[key]


def _duplicated(positions: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The positions (ascending) whose hash occurs more than once."""
    if not len(positions):
        return positions
    _, inverse, counts = np.unique(hashes, axis=0, return_inverse=True, return_counts=True)
    return np.sort(positions[counts[inverse.ravel()] > 1])


def combine(
    config: Any, parts: Sequence[PartCounts], ids_at: Callable[[np.ndarray], list[str]]
) -> dict[str, Any]:
    """One expectation's report entry (:func:`~audit.expectations.describe`) from its parts;
    ``ids_at(positions)`` names rows of the whole table."""
    exception = next((p.exception for p in parts if p.exception), None)
    if exception is not None:
        return describe(config, {}, False, exception)
    rows = sum(p.rows for p in parts)
    missing = sum(p.missing for p in parts)
    positions = np.concatenate([np.zeros(0, np.int64), *(p.positions for p in parts)])
    if config.type == UNIQUE and all(p.hashes is not None for p in parts):
        hashes = np.concatenate([np.zeros((0, 2), np.uint64), *(p.hashes for p in parts)])
        failing = _duplicated(positions, hashes)
    else:
        failing = np.sort(positions)
    considered = rows if config.type in OVER_ALL_ROWS else rows - missing
    mostly = config.kwargs.get("mostly")
    mostly = 1.0 if mostly is None else float(mostly)
    success = considered == 0 or (considered - len(failing)) / considered >= mostly
    result = {
        "element_count": rows,
        "missing_count": missing,
        "unexpected_count": len(failing),
        "unexpected_index_list": [{"id": i} for i in ids_at(failing[:MAX_FAILING_IDS])],
    }
    return describe(config, result, success, None)


def _records_part(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    table = frame.reindex(columns=RECORD_COLUMNS)
    table.index = pd.RangeIndex(start, start + len(table))
    return table


def _corpus_part(
    frame: pd.DataFrame,
    packed: bytes,
    looked: dict[str, Any] | None,
    unrepaired: dict[str, int],
    accounted: list[bool],
    at: tuple[int, int],
) -> pd.DataFrame:
    """One partition's kept and removed rows of the ``corpus`` table (``packed``: its pickled
    :func:`~audit.engines.sharded.part_plan`; ``looked``: what the clean step changed there), at
    positions ``at`` (of its first kept row, of its first removed row)."""
    from audit.engines.sharded import part_corpus

    corpus = part_corpus(frame, pickle.loads(packed), looked)
    kept = kept_table(corpus.clean_frame(), unrepaired)
    kept.index = pd.RangeIndex(at[0], at[0] + len(kept))
    gone = removed_table(corpus.removed_info, accounted)
    gone.index = pd.RangeIndex(at[1], at[1] + len(gone))
    return corpus_table(kept, gone)


def _validate_partition(
    frame: pd.DataFrame,
    suites: list[SuiteFile],
    start: int,
    corpus_args: tuple[bytes, Any, dict[str, int], list[bool], tuple[int, int]] | None,
) -> list[list[PartCounts]]:
    """On a worker: the suites over one partition's rows of their tables."""
    tables = {"records": _records_part(frame, start)}
    if corpus_args is not None:
        tables["corpus"] = _corpus_part(frame, *corpus_args)
    return validate_part(suites, tables)


class _CorpusPositions:
    """Names rows of the ``corpus`` table (kept rows, then removed ones, then quarantined) by id."""

    def __init__(self, corpus: CleanCorpus, held_ids: list[str]) -> None:
        self.ids, self.kept, self.removed_at, self.held_ids = (
            corpus.records["id"],
            corpus.kept,
            corpus.removed_at,
            held_ids,
        )

    def __call__(self, positions: np.ndarray) -> list[str]:
        n_kept, n_removed = len(self.kept), len(self.removed_at)
        names = {}
        kept, removed = (
            positions[positions < n_kept],
            positions[(positions >= n_kept) & (positions < n_kept + n_removed)],
        )
        names.update(zip(kept.tolist(), take_values(self.ids, self.kept[kept]), strict=True))
        names.update(
            zip(removed.tolist(), take_values(self.ids, self.removed_at[removed - n_kept]), strict=True)
        )
        for p in positions[positions >= n_kept + n_removed].tolist():
            names[p] = self.held_ids[p - n_kept - n_removed]
        return [names[p] for p in positions.tolist()]


def validate_sharded(
    suites: Sequence[SuiteFile],
    shards: Shards,
    corpus: CleanCorpus,
    looked: Sequence[Any],
    quarantine: pd.DataFrame,
    found: FindingTable,
) -> dict[str, Any]:
    """The ``expectations`` section of report.json for a run over partitions: what
    :func:`~audit.expectations.validate_suites` gives over the whole tables.

    ``corpus``: the clean plan over the compact columns (its ``records``: ids, no text);
    ``looked``: per partition, the future of what the clean step changed there (or None)."""
    from audit.engines.sharded import part_plan

    suites = list(suites)
    if not suites:
        return summary([], [], [])
    ids = corpus.records["id"]
    unrepaired = unrepaired_errors(found)
    unrepaired_rows = np.flatnonzero(ids.isin(list(unrepaired)).to_numpy(bool))
    info = corpus.removed_info
    kept_ids = pd.Series(pd.arrays.ArrowExtensionArray(take_arrow(ids, corpus.kept)))
    accounted = removed_accounted(info, kept_ids)
    n_kept, n_removed = len(corpus.kept), len(corpus.removed_at)
    wants_corpus = any(s.table == "corpus" for s in suites)
    starts = shards.starts.tolist()
    futures = []
    for n, frame in enumerate(shards.frames):
        start, stop = starts[n], starts[n + 1]
        args = None
        if wants_corpus:
            low, high = (int(x) for x in np.searchsorted(corpus.removed_at, [start, stop]))
            first, last = np.searchsorted(unrepaired_rows, [start, stop])
            args = (
                pickle.dumps(part_plan(corpus, start, stop), pickle.HIGHEST_PROTOCOL),
                looked[n],
                {i: unrepaired[i] for i in take_values(ids, unrepaired_rows[first:last])},
                accounted[low:high],
                (int(np.searchsorted(corpus.kept, start)), n_kept + low),
            )
        futures.append(shards.client.submit(_validate_partition, frame, suites, start, args, pure=False))
    held = quarantined_table(quarantine)
    held.index = pd.RangeIndex(n_kept + n_removed, n_kept + n_removed + len(held))
    parts = [future.result() for future in futures]
    parts.append(validate_part(suites, {"corpus": corpus_table(held)}))
    positions = {
        "records": lambda rows: take_values(ids, rows),
        "corpus": _CorpusPositions(corpus, held["id"].tolist()),
    }
    session, gx_suites = _session(suites)
    results = []
    for s, (suite, gx_suite) in enumerate(zip(suites, gx_suites, strict=True)):
        done = [part[s] for part in parts if part[s] is not None]
        if not done:  # no row in the table: GX says what it says of an empty one
            empty = pd.DataFrame(columns=RECORD_COLUMNS if suite.table == "records" else CORPUS_COLUMNS)
            validation = session.validate(suite, gx_suite, empty, ["id"])
            results.append(
                [
                    describe(r.expectation_config, r.result or {}, r.success, raised(r))
                    for r in validation.results
                ]
            )
            continue
        configurations = [expectation.configuration for expectation in gx_suite.expectations]
        results.append(
            [
                combine(configurations[n], [d.counts[n] for d in done], positions[suite.table])
                for n in done[0].order
            ]
        )
    rows = {"records": len(ids), "corpus": n_kept + n_removed + len(held)}
    return summary(suites, results, [rows[s.table] for s in suites])
