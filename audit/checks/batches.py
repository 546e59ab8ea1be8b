"""The checks run over record batches, on this process and a forked child, findings as Arrow.

No piece of work lists a whole column of the corpus as Python values (at a million records the
id, title and text lists took 1.5 GB, in each process). Three rounds of pieces, each round
taken in turn by this process and the child (:func:`audit.parallel.forked_map`):

1. **census**, one piece a batch: what the checks need of the whole corpus, small: the
   distinct title and text lengths (as hashes) and the words values may end in (truncation),
   each record's title and url key hash (conflicting_copies). Gathered here into truncation's
   length limits and the rows conflicting_copies can report.
2. **rows**: truncation's vocabulary answers for those words (the vocabulary reads the corpus a
   chunk at a time, :class:`~audit.checks.truncation.ValueChunks`), beside conflicting_copies
   over the rows sharing a key with another version group, a piece of whole key groups at a
   time (:func:`~audit.checks.conflicting_copies.key_pieces`), and truncation's proven cut-off
   copies, a piece of clusters at a time (a cluster's members together, taken by id).
3. **batches**, one piece a batch: every check but those two, with the corpus values.

Each piece sends back its findings as a :class:`~audit.checks.table.FindingTable`; they are
put together in the order of one run over every record: check by check (as named), batches
in order, truncation's proven findings after its batches in the order of the clusters,
conflicting_copies' sorted by kind, their group's first row and their place in the group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import Check, CheckContext
from audit.checks.conflicting_copies import ConflictingCopiesCheck, key_pieces, shared_key_rows
from audit.checks.empty_or_short import titled
from audit.checks.table import FindingTable
from audit.checks.truncation import (
    KnownFragments,
    TruncationCheck,
    ValueChunks,
    Vocabulary,
    distinct_length_counts,
    ending_words,
    length_digests,
)
from audit.frames import arrow_strings, column_values, release_memory, take_arrow, take_values
from audit.parallel import forked_map, paused_gc

TRUNCATION, CONFLICTING, VOCABULARY = "truncation", "conflicting_copies", "vocabulary"
#: Records per batch: enough pieces to keep two processes busy to the end, each small enough
#: that its column lists and findings are a few MB.
BATCH_RECORDS = 10_000
#: Cluster members per piece of truncation's proven copies (their texts are listed there).
PROVEN_MEMBERS = 20_000
#: Rows per piece of conflicting_copies (their texts are listed there; a key group is never
#: split, so a piece holds more when one group does).
CONFLICTING_ROWS = 20_000


@dataclass
class _Run:
    """What every piece reads (inherited by the forked child, never pickled)."""

    records: pd.DataFrame
    checks: dict[str, Check]
    clusters: pd.DataFrame | None
    batch: int
    corpus: dict[str, Any] = field(default_factory=dict)
    #: Each record's version group (conflicting_copies; see :func:`_version_groups`).
    versions: np.ndarray | None = None


def _batch(run: _Run, start: int) -> pd.DataFrame:
    return run.records.iloc[start : start + run.batch].reset_index(drop=True)


def _census(run: _Run, start: int) -> tuple[np.ndarray, np.ndarray, set[str], np.ndarray | None]:
    """One batch's distinct lengths and last words (truncation), and key hashes (conflicting)."""
    frame = _batch(run, start)
    title_lengths = text_lengths = np.zeros((0, 3), np.uint64)
    words: set[str] = set()
    keys = None
    truncation = run.checks.get(TRUNCATION)
    if truncation is not None:
        title_lengths, text_lengths = length_digests(frame["title"]), length_digests(frame["text"])
        if isinstance(truncation, TruncationCheck) and truncation.mid_word:
            words = ending_words([frame["title"], frame["text"]])
    conflicting = run.checks.get(CONFLICTING)
    if isinstance(conflicting, ConflictingCopiesCheck):
        keys = conflicting.key_hashes(column_values(frame["title"]), column_values(frame["url"]))
    return title_lengths, text_lengths, words, keys


def _findings(run: _Run, piece: tuple[str, Any]) -> dict[str, FindingTable]:
    """The findings of one piece, by check."""
    kind, where = piece
    with paused_gc():  # the findings are many small containers that all stay alive
        if kind == "batch":
            frame, context = _batch(run, where), CheckContext(corpus=run.corpus)
            names = [name for name in run.checks if name != CONFLICTING]
            return {name: _check_table(run.checks[name], frame, context) for name in names}
        members, rows = where
        check = run.checks[TRUNCATION]
        assert isinstance(check, TruncationCheck)
        context = CheckContext(clusters=pd.DataFrame({"members": members}))
        return {TRUNCATION: FindingTable.of(check._proven_findings(_rows(run.records, rows), context))}


def _check_table(check: Check, frame: pd.DataFrame, context: CheckContext) -> FindingTable:
    """A check's findings over ``frame``; truncation's built a column at a time."""
    if isinstance(check, TruncationCheck):
        return check.table(frame, context)
    return FindingTable.of(check.run(frame, context))


def _conflicting(run: _Run, rows: np.ndarray) -> tuple[FindingTable, np.ndarray]:
    """conflicting_copies' findings over ``rows`` (whole key groups, see :func:`key_pieces`),
    with each finding's place in a run over every record: (kind, its group's first row, its
    number in the group), an (n, 3) array."""
    check = run.checks[CONFLICTING]
    assert isinstance(check, ConflictingCopiesCheck) and run.versions is not None
    names = ("id", "title", "text", "url")
    ids, titles, texts, urls = (take_values(run.records[name], rows) for name in names)
    # A record's version: its cluster's number (as the check's cluster_of: one value per cluster).
    versions = run.versions[rows].tolist()
    cluster_of = {record: version for record, version in zip(ids, versions, strict=True) if version >= 0}
    with paused_gc():  # the findings are many small containers that all stay alive
        groups = check.keyed_findings(ids, texts, titles, urls, cluster_of)
        places = [(code, first, n) for code, first, found in groups for n in range(len(found))]
        table = FindingTable.of([finding for _, _, found in groups for finding in found])
    places_array = np.array(places, np.int64).reshape(-1, 3)
    places_array[:, 1] = rows[places_array[:, 1]]  # the piece's rows as the corpus's
    return table, places_array


def _in_order(parts: list[tuple[FindingTable, np.ndarray]]) -> FindingTable:
    """conflicting_copies' findings of every piece, in the order of one run over every record."""
    table = FindingTable.concat([found for found, _ in parts])
    if not len(table):
        return table
    places = np.concatenate([place for _, place in parts])
    order = np.lexsort((places[:, 2], places[:, 1], places[:, 0]))
    return FindingTable(table.table.take(pa.array(order)))


def _rows(records: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The id, title and text of ``records`` at ``rows`` (ascending): Arrow-backed where the
    columns are (the proven pieces read the bodies' bytes; no Python string per text)."""
    names = ("id", "title", "text")
    return pd.DataFrame({name: _taken(records[name], rows) for name in names})


def _taken(column: pd.Series, rows: np.ndarray) -> pd.Series:
    if arrow_strings(column) is None:
        return pd.Series(take_values(column, rows), dtype=object)
    return pd.Series(pd.arrays.ArrowExtensionArray(take_arrow(column, rows)))


def _id_array(records: pd.DataFrame) -> pa.ChunkedArray | pa.Array:
    """The records' ids as Arrow strings (shared when the column is Arrow-backed)."""
    chunks = arrow_strings(records["id"])
    return chunks if chunks is not None else pa.array(column_values(records["id"]), pa.large_string())


def _proven_pieces(run: _Run) -> list[tuple[str, Any]]:
    """Truncation's proven copies, a piece per run of clusters: their members and their rows."""
    clusters = run.clusters
    if clusters is None or clusters.empty or "members" not in clusters:
        return []
    # Each record's cluster number (found once; a piece's rows are then a range of numbers).
    number = _versions(run)
    pieces, members = [], column_values(clusters["members"])
    start = 0
    while start < len(members):
        stop, size = start, 0
        while stop < len(members) and (size < PROVEN_MEMBERS or stop == start):
            size += len(members[stop])
            stop += 1
        rows = np.flatnonzero((number >= start) & (number < stop))
        pieces.append(("proven", (pd.Series(members[start:stop], dtype=object), rows)))
        start = stop
    return pieces


def _versions(run: _Run) -> np.ndarray:
    """:func:`_version_groups`, found once a run (both truncation's proven pieces and
    conflicting_copies need them; each look-up of every id among the clusters' members took
    ~0.02 s CPU per 100k records in this process while the child waited)."""
    if run.versions is None:
        run.versions = _version_groups(run)
    return run.versions


def _version_groups(run: _Run) -> np.ndarray:
    """Each record's version group: its cluster's number, or a number of its own."""
    groups = -1 - np.arange(len(run.records), dtype=np.int64)
    clusters = run.clusters
    if clusters is None or not len(clusters) or "members" not in clusters:
        return groups
    members = column_values(clusters["members"])
    flat = pa.array([m for group in members for m in group], pa.large_string())
    number = np.repeat(np.arange(len(members)), [len(group) for group in members])
    at = pc.index_in(_id_array(run.records), value_set=flat).fill_null(-1).to_numpy(zero_copy_only=False)
    known = at >= 0
    groups[known] = number[at[known]]
    return groups


def _gather(run: _Run, censuses: list[tuple]) -> list[tuple[str, Any]]:
    """The corpus values from the batches' censuses (into ``run.corpus``); the pieces over rows
    (and the vocabulary's, whose answers the batches' truncation needs)."""
    pieces: list[tuple[str, Any]] = []
    truncation = run.checks.get(TRUNCATION)
    if isinstance(truncation, TruncationCheck):
        limits = {}
        for name, n in (("title", 0), ("text", 1)):
            found = np.concatenate([np.zeros((0, 3), np.uint64), *(census[n] for census in censuses)])
            limits[name] = truncation.limit_of(distinct_length_counts(found))
        run.corpus[TRUNCATION] = (None, limits)
        if truncation.mid_word:
            words = set().union(*(census[2] for census in censuses))
            run.corpus[TRUNCATION] = (KnownFragments({}), limits)
            if words:
                pieces.append((VOCABULARY, words))
        pieces += _proven_pieces(run)
    if isinstance(run.checks.get(CONFLICTING), ConflictingCopiesCheck):
        keys = np.concatenate([np.zeros((0, 2), np.uint64), *(census[3] for census in censuses)])
        conflicting = [
            (CONFLICTING, rows)
            for rows in key_pieces(keys, shared_key_rows(keys, _versions(run)), CONFLICTING_ROWS)
        ]
        pieces = conflicting + pieces  # run_batched takes the vocabulary's first
    return pieces


def _rows_round(run: _Run, piece: tuple[str, Any]) -> dict[str, Any]:
    """A piece of the middle round: the vocabulary's answers, or findings over rows."""
    kind, where = piece
    if kind == VOCABULARY:
        values = ValueChunks([run.records["title"], run.records["text"]])
        return {VOCABULARY: Vocabulary(values).fragments(where)}
    if kind == CONFLICTING:
        return {CONFLICTING: _conflicting(run, where)}
    return _findings(run, piece)


def run_batched(
    records: pd.DataFrame,
    checks: Mapping[str, Check],
    order: Sequence[str],
    clusters: pd.DataFrame | None,
    workers: int,
    batch: int = BATCH_RECORDS,
) -> FindingTable:
    """The findings of ``checks`` (by name) over ``records``, for the names in ``order``."""
    run = _Run(records, dict(checks), clusters, max(1, batch))
    starts = list(range(0, len(records), run.batch))
    if "empty_or_short" in run.checks:
        run.corpus["titled_sources"] = titled(records)
    by_check: dict[str, list[FindingTable]] = {name: [] for name in run.checks}
    proven: list[FindingTable] = []
    conflicting: list[tuple[FindingTable, np.ndarray]] = []
    if TRUNCATION in run.checks or CONFLICTING in run.checks:
        pieces = _gather(run, forked_map(_census, run, starts, workers))
        # The vocabulary first: one piece that cannot be split (9 s at 1M records), it would
        # leave the other process idle if taken last. The rest keep their order.
        pieces.sort(key=lambda piece: piece[0] != VOCABULARY)
        # The vocabulary (the batches' truncation needs its answers) beside the pieces over rows.
        for (kind, _), done in zip(pieces, forked_map(_rows_round, run, pieces, workers), strict=True):
            if kind == VOCABULARY:
                run.corpus[TRUNCATION] = (KnownFragments(done[VOCABULARY]), run.corpus[TRUNCATION][1])
            elif kind == CONFLICTING:
                conflicting.append(done[CONFLICTING])
            else:
                proven.append(done[TRUNCATION])
        if conflicting:
            by_check[CONFLICTING].append(_in_order(conflicting))
        # The vocabulary's words and the pieces' texts are gone: their pages go back to the OS
        # before the batches round, which holds the findings as they arrive (at 100k records
        # the rows round left 45-70 MB of freed heap in this process).
        release_memory()
    for tables in forked_map(_findings, run, [("batch", start) for start in starts], workers):
        for name, table in tables.items():
            by_check[name].append(table)
    if TRUNCATION in by_check:
        by_check[TRUNCATION] += proven  # after its batches', in the order of the clusters
    return FindingTable.concat([table for name in order for table in by_check[name]])
