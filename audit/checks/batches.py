"""The checks run over record batches, on this process and a forked child, findings as Arrow.

No piece of work lists a whole column of the corpus as Python values (at a million records the
id, title and text lists took 1.5 GB, in each process). Two rounds of pieces:

1. **census**, one piece a batch: what the checks need of the whole corpus, small: the
   distinct title and text lengths (as hashes) and the words values may end in (truncation),
   each record's title and url key hash (conflicting_copies). Gathered here into truncation's
   length limits and vocabulary answers (the vocabulary reads the corpus a chunk at a time,
   :class:`~audit.checks.truncation.ValueChunks`), and the rows conflicting_copies can report.
2. **findings**: one piece a batch (every check but truncation's proven copies and
   conflicting_copies, with those corpus values), one piece of clusters a time for truncation's
   proven cut-off copies (a cluster's members together, taken from the records by id), and one
   for conflicting_copies over the rows sharing a key with another version group.

Each piece sends back its findings as a :class:`~audit.checks.table.FindingTable`; they are
put together in the order of one run over every record: check by check (as named), batches
in order, truncation's proven findings after its batches in the order of the clusters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import Check, CheckContext
from audit.checks.conflicting_copies import ConflictingCopiesCheck, shared_key_rows
from audit.checks.empty_or_short import titled
from audit.checks.table import FindingTable
from audit.checks.truncation import (
    KnownFragments,
    TruncationCheck,
    ValueChunks,
    Vocabulary,
    distinct_lengths,
    last_words,
)
from audit.frames import arrow_strings, column_values, take_values
from audit.parallel import forked_map, paused_gc

TRUNCATION, CONFLICTING = "truncation", "conflicting_copies"
#: Records per batch: enough pieces to keep two processes busy to the end, each small enough
#: that its column lists and findings are a few MB.
BATCH_RECORDS = 10_000
#: Cluster members per piece of truncation's proven copies (their texts are listed there).
PROVEN_MEMBERS = 50_000


@dataclass
class _Run:
    """What every piece reads (inherited by the forked child, never pickled)."""

    records: pd.DataFrame
    checks: dict[str, Check]
    clusters: pd.DataFrame | None
    batch: int
    corpus: dict[str, Any] = field(default_factory=dict)


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
        titles, texts = column_values(frame["title"]), column_values(frame["text"])
        # Python's string hash: the batches are read by this process and its forks (one hash seed).
        title_lengths, text_lengths = distinct_lengths(titles, hash), distinct_lengths(texts, hash)
        if isinstance(truncation, TruncationCheck) and truncation.mid_word:
            words = last_words([*titles, *texts])
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
            return {name: FindingTable.of(run.checks[name].run(frame, context)) for name in names}
        if kind == CONFLICTING:
            frame = _rows(run.records, where, ("id", "title", "text", "url"))
            return {kind: FindingTable.of(run.checks[kind].run(frame, CheckContext(clusters=run.clusters)))}
        members, rows = where
        check = run.checks[TRUNCATION]
        assert isinstance(check, TruncationCheck)
        context = CheckContext(clusters=pd.DataFrame({"members": members}))
        return {TRUNCATION: FindingTable.of(check._proven_findings(_rows(run.records, rows), context))}


def _rows(
    records: pd.DataFrame, rows: np.ndarray, names: Sequence[str] = ("id", "title", "text")
) -> pd.DataFrame:
    """The columns ``names`` of ``records`` at ``rows`` (ascending), as Python values."""
    return pd.DataFrame({name: pd.Series(take_values(records[name], rows), dtype=object) for name in names})


def _id_array(records: pd.DataFrame) -> pa.ChunkedArray | pa.Array:
    """The records' ids as Arrow strings (shared when the column is Arrow-backed)."""
    chunks = arrow_strings(records["id"])
    return chunks if chunks is not None else pa.array(column_values(records["id"]), pa.large_string())


def _proven_pieces(run: _Run) -> list[tuple[str, Any]]:
    """Truncation's proven copies, a piece per run of clusters: their members and their rows."""
    clusters = run.clusters
    if clusters is None or clusters.empty or "members" not in clusters:
        return []
    ids = _id_array(run.records)
    pieces, members = [], column_values(clusters["members"])
    start = 0
    while start < len(members):
        stop, size = start, 0
        while stop < len(members) and (size < PROVEN_MEMBERS or stop == start):
            size += len(members[stop])
            stop += 1
        group = members[start:stop]
        wanted = pa.array([m for cluster in group for m in cluster], pa.large_string())
        rows = np.flatnonzero(pc.is_in(ids, value_set=wanted).to_numpy(zero_copy_only=False))
        pieces.append(("proven", (pd.Series(group, dtype=object), rows)))
        start = stop
    return pieces


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
    """The corpus values from the batches' censuses (into ``run.corpus``); the pieces over rows."""
    pieces: list[tuple[str, Any]] = []
    truncation = run.checks.get(TRUNCATION)
    if isinstance(truncation, TruncationCheck):
        limits = {}
        for name, n in (("title", 0), ("text", 1)):
            found = np.concatenate([np.zeros((0, 3), np.uint64), *(census[n] for census in censuses)])
            counts = Counter(np.unique(found, axis=0)[:, 0].tolist()) if len(found) else Counter()
            limits[name] = truncation.limit_of(counts)
        vocabulary = None
        if truncation.mid_word:
            words = set().union(*(census[2] for census in censuses))
            values = ValueChunks([run.records["title"], run.records["text"]])
            vocabulary = KnownFragments(Vocabulary(values).fragments(words) if words else {})
        run.corpus[TRUNCATION] = (vocabulary, limits)
        pieces += _proven_pieces(run)
    if isinstance(run.checks.get(CONFLICTING), ConflictingCopiesCheck):
        keys = np.concatenate([np.zeros((0, 2), np.uint64), *(census[3] for census in censuses)])
        rows = shared_key_rows(keys, _version_groups(run))
        if len(rows):
            pieces.insert(0, (CONFLICTING, rows))
    return pieces


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
    pieces: list[tuple[str, Any]] = []
    if TRUNCATION in run.checks or CONFLICTING in run.checks:
        pieces = _gather(run, forked_map(_census, run, starts, workers))
    # The pieces over rows first: the largest; the batches then even out the two processes.
    pieces += [("batch", start) for start in starts]
    found = forked_map(_findings, run, pieces, workers)
    by_check: dict[str, list[FindingTable]] = {name: [] for name in run.checks}
    # Truncation's proven findings come after its batches' (stable sort: each kind in order).
    done = sorted(zip(pieces, found, strict=True), key=lambda piece: piece[0][0] == "proven")
    for _, tables in done:
        for name, table in tables.items():
            by_check[name].append(table)
    return FindingTable.concat([table for name in order for table in by_check[name]])
