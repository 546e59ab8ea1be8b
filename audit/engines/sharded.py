"""``scrape-audit run --engine dask``: the whole run over partitions, the texts never in this process.

The steps of :mod:`audit.pipeline`, each on the corpus held by :mod:`audit.engines.shards`:

1. **ingest**: partitions read on the workers; here the compact columns, quarantine, files.
2. **dedup**: :func:`audit.dedup.find_duplicates` on the compact columns, the held partitions
   signed, candidates found, pairs verified and components labelled by the Dask engine.
3. **checks**: the record checks per partition; truncation and conflicting_copies as
   :mod:`audit.engines.corpus_checks` runs them. The findings stay on the workers in parts, in
   the order of one run; here only their lean frame (:mod:`audit.engines.held_findings`).
4. **clean**: :func:`audit.clean.plan_fates` here, on the compact columns: each record's fate,
   the repairs of kept records and, for a representative lacking a title or url, the copy it
   takes it from (read of the titles and urls). Each partition's share goes to its worker,
   where :func:`audit.clean.look_at` (the local run's own) applies it to the texts there; the
   changed values and repair notes stay on the worker (:attr:`ShardedResult.looked`) until its
   part of clean.jsonl is made, and only each repair's ``applied`` flag comes back. No text of
   the clean step comes here.
5. **summarise**, **gate**: :mod:`audit.pipeline`'s own steps (they read no text).

Writing: each partition's lines of clean.jsonl and removed.jsonl are made on its worker by
:class:`audit.clean.CleanCorpus` and :func:`audit.report.writers.write_jsonl` with its part of
the plan, and copied here into the files in partition order (a few parts in flight): the bytes
of the local engine's files; findings.jsonl likewise from the held findings' parts, with the
``applied`` flags of the plan. report.html gets the texts of the rows it shows only.

6. **expectations**: each partition's rows of the suites' tables validated on its worker, the
   results added up (:mod:`audit.engines.shard_expectations`).

With an index (``--index``), dedup and the index's update run over the partitions too
(:mod:`audit.engines.sharded_index`); the index is committed after the outputs are written.

What this process still holds per record, and why (bytes a record measured at 100k records,
``memory_usage(deep=True)`` and Arrow's ``nbytes``; README, "What it still holds per record"):

- the **compact columns**, ~150 B: id (18), title (88), url (25), line, the text's length and
  cut flag (8 + 8 + 1), source and scraped_date as categoricals (1 + 1; format is not held:
  nothing here reads it). Dedup's choice of representative reads them (global dedup needs
  them in one place: which record of a cluster is kept depends on every member), as do the
  clean plan's fates, the representatives lent a field and the ``sources`` of their members;
- **dedup's result**, ~105 B: the clusters (Arrow lists, 62) and edges (26), ``duplicate_of``
  and ``relation_of`` as :class:`audit.dedup.idmap.IdMap` (Arrow arrays: 17 for the two);
- the **lean findings**, ~107 B at 1.5 findings a record: record id (28), check, severity and
  field as dictionary codes (18), message, evidence and repair as dictionary codes with the
  texts of the rows the outputs show and of every repair (61; made as Arrow text on the
  workers, :mod:`audit.engines.held_findings`);
- the **clean plan**, ~38 B: kept and removed rows, representatives' member rows (8 B a row),
  ``removed_info`` (its id, reason and duplicate_of Arrow strings: 22).

No text, no repaired value, no Python object per record. Above them: the imports, the Client
and the scheduler (~265 MiB here), and ~95 MiB the dedup step leaves (at 100k: its RSS rise
less its result; compiled kernels and their caches). At 1M: ~570 B a record above the
baseline after clean, ~850 B at the write step's peak (1,116 MiB; README).

Not done this way (the run then holds the records in memory, as before, and only dedup runs on
Dask): a run with a suite holding an expectation that cannot be validated a partition at a
time (an aggregate, a dtype, an order: :func:`~audit.engines.shard_expectations.unsplittable`).
"""

from __future__ import annotations

import operator
import os
import pickle
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from distributed import Future

from audit.checks import CHECKS
from audit.checks.table import FindingTable
from audit.clean import CleanCorpus, CleanPlan, _Sources, look_at, plan_fates
from audit.dedup.idmap import IdMap
from audit.engines import shards as shards_module
from audit.engines.corpus_checks import CorpusChecks, partition_values
from audit.engines.dask import DaskEngine, dask_engine
from audit.engines.held_findings import HeldFindings, hold, write_findings
from audit.engines.partitions import input_bytes
from audit.engines.shard_expectations import unsplittable, validate_sharded
from audit.engines.sharded_index import ShardIndexDedup, ShardIndexUpdate
from audit.engines.shards import RECORD_CHECKS, ShardEngine, Shards, ingest_shards
from audit.engines.worker_memory import map_large_blocks, partition_bytes, releasing
from audit.expectations import load_suites
from audit.frames import release_memory
from audit.pipeline import AuditConfig, AuditResult, Gate, ProgressHook, Step, Summarise
from audit.report import views
from audit.report.writers import ensure_writable, write_jsonl, write_outputs

#: Parts being written at once per worker (bounds the part files' bytes held here).
WRITE_WINDOW_PER_WORKER = 2


def sharded(config: AuditConfig) -> bool:
    """Whether a run with ``config`` runs over partitions (see the module's doc); if its suites
    keep it in memory, says why on stderr."""
    if config.engine != "dask":
        return False
    if config.expectations is None:
        return True
    unsplit = unsplittable(load_suites(config.expectations))
    for expectation in unsplit:
        print(
            f"--engine dask: {expectation} cannot be validated a partition at a time; "
            "the run holds the records in memory",
            file=sys.stderr,
        )
    return not unsplit


@dataclass
class ShardedResult(AuditResult):
    """An :class:`AuditResult` whose records are held on the workers: ``records`` holds the
    compact columns (:data:`audit.engines.shards.COMPACT_COLUMNS`), no text."""

    engine: DaskEngine | None = field(default=None, repr=False)
    shards: Shards | None = field(default=None, repr=False)
    #: The whole findings, on the workers; ``findings`` is their lean frame
    #: (:mod:`audit.engines.held_findings`).
    held_findings: HeldFindings | None = field(default=None, repr=False)
    #: The size JSON Lines files are cut at (chosen from the workers' memory limits; None: the default).
    part_bytes: int | None = None
    #: Per partition, on its worker: the values the clean step changed and its repair notes
    #: (``{"changed": ..., "notes": ...}``, rows counted from the partition's first; None: none).
    looked: list[Future | None] = field(default_factory=list, repr=False)

    @property
    def clean(self) -> pd.DataFrame:
        raise RuntimeError("a run over partitions does not hold the cleaned corpus: read clean.jsonl")

    @property
    def removed(self) -> pd.DataFrame:
        raise RuntimeError("a run over partitions does not hold the removed records: read removed.jsonl")

    def write_corpus(self, directory: Path) -> tuple[str, ...]:
        """clean.jsonl, removed.jsonl and findings.jsonl in ``directory``, made per partition on
        the workers; returns their names."""
        assert self.shards is not None and self.corpus is not None and self.held_findings is not None
        write_parts(self.shards, self.corpus, self.looked, directory)
        with (directory / "findings.jsonl").open("wb") as handle:
            applied = self.found.table["applied"].to_numpy(zero_copy_only=False)
            write_findings(self.held_findings, applied, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return ("clean.jsonl", "removed.jsonl", "findings.jsonl")

    def report_view(self) -> _ReportView:
        """What report.html shows, with the texts of the rows it shows (fetched from the workers)."""
        assert self.shards is not None
        compact = self.records
        removed = self.removed_summary()
        blank = compact.assign(text="")
        wanted = {row.record_id for row in views.finding_rows(self.found, compact)}
        for view in views.explorer(self.clusters, blank, removed):
            wanted |= {view.kept.id, *(copy.id for copy in view.copies)}
        rows = np.flatnonzero(compact["id"].isin(list(wanted)).to_numpy())
        texts = np.full(len(compact), "", object)
        texts[rows] = fetch(self.shards, rows, "text")
        return _ReportView(self.report, compact.assign(text=texts), self.found, self.clusters, removed)


@dataclass
class _ReportView:
    report: dict[str, Any]
    records: pd.DataFrame
    found: FindingTable
    clusters: pd.DataFrame
    removed: pd.DataFrame

    def removed_summary(self) -> pd.DataFrame:
        return self.removed


def _take(frame: pd.DataFrame, local: np.ndarray, column: str) -> list[Any]:
    return frame[column].take(local).tolist()


def fetch(shards: Shards, rows: np.ndarray, column: str) -> list[Any]:
    """The cells of ``column`` at ``rows`` (sorted), from the partitions that hold them."""
    starts = shards.starts
    bounds = np.searchsorted(rows, starts)
    futures = [
        shards.client.submit(_take, frame, rows[bounds[n] : bounds[n + 1]] - starts[n], column, pure=False)
        for n, frame in enumerate(shards.frames)
        if bounds[n + 1] > bounds[n]
    ]
    return [value for future in futures for value in future.result()]


class ShardIngest(Step):
    name = "ingest"

    def run(self, state: AuditResult) -> None:
        assert isinstance(state, ShardedResult) and state.engine is not None
        shards = ingest_shards(state.engine.client, state.paths, state.config.fields, state.part_bytes)
        state.shards, state.records = shards, shards.compact
        state.quarantine, state.files, state.skipped = shards.quarantine, shards.files, shards.skipped


class ShardDedup(Step):
    name = "dedup"

    def run(self, state: AuditResult) -> None:
        from audit.dedup import find_duplicates

        assert isinstance(state, ShardedResult) and state.engine is not None and state.shards is not None
        if state.config.index is not None:
            ShardIndexDedup().run(state)
        else:
            shards = state.shards
            engine = ShardEngine(state.engine.client, shards)
            config = state.config.dedup_config()
            state.dedup = find_duplicates(shards.dedup_frame(), config, shards.completeness(), engine=engine)
        assert state.dedup is not None
        # Held until the outputs are written: as Arrow arrays, not dicts of Python strings.
        state.dedup = replace(
            state.dedup,
            duplicate_of=IdMap.of(state.dedup.duplicate_of),
            relation_of=IdMap.of(state.dedup.relation_of),
        )


class ShardChecks(Step):
    name = "checks"

    def run(self, state: AuditResult) -> None:
        assert isinstance(state, ShardedResult) and state.shards is not None
        selected = list(state.config.checks) if state.config.checks is not None else list(CHECKS)
        options = state.config.check_options
        record = [name for name in selected if name in RECORD_CHECKS]
        # One pass over each partition makes its record checks' findings and what the corpus
        # checks need of it.
        also = partial(
            partition_values,
            census="truncation" in selected,
            conflicting=(
                dict(options.get("conflicting_copies", {})) if "conflicting_copies" in selected else None
            ),
        )
        parts, values = state.shards.record_checks(record, options, also)
        client = state.shards.client
        corpus = CorpusChecks(state.shards, state.clusters if state.dedup is not None else None)
        if "truncation" in selected:
            censuses = [client.submit(operator.getitem, v, "census", pure=False) for v in values]
            parts["truncation"] = corpus.truncation(options.get("truncation", {}), censuses)
        if "conflicting_copies" in selected:
            keys = [client.submit(operator.getitem, v, "keys", pure=False) for v in values]
            parts["conflicting_copies"] = corpus.conflicting_copies(
                options.get("conflicting_copies", {}), keys
            )
        del values
        ordered = [part for name in selected for part in parts[name]]
        state.held_findings, state.found = hold(state.shards.client, ordered)


class ShardExpectations(Step):
    """The suites over the partitions (:func:`~audit.engines.shard_expectations.validate_sharded`)."""

    name = "expectations"

    def run(self, state: AuditResult) -> None:
        if state.config.expectations is None:
            return
        assert isinstance(state, ShardedResult) and state.shards is not None and state.corpus is not None
        suites = load_suites(state.config.expectations)
        state.expectations = validate_sharded(
            suites, state.shards, state.corpus, state.looked, state.quarantine, state.found
        )


class ShardClean(Step):
    """:func:`plan_fates` on the compact columns; the records it looks at one by one looked at
    on their workers (:func:`look_at_parts`)."""

    name = "clean"

    def run(self, state: AuditResult) -> None:
        assert isinstance(state, ShardedResult) and state.dedup is not None and state.shards is not None
        plan = plan_fates(state.records, state.dedup, state.found)
        state.corpus = plan.corpus
        state.looked, applied = look_at_parts(state.shards, plan, len(state.found))
        state.found = state.found.with_applied(applied)


@releasing
def _look_at_part(frame: pd.DataFrame, packed: bytes) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray]]:
    """On a worker: :func:`look_at` on a partition given its share of the plan (``packed``, see
    :func:`look_at_parts`); what it changed (kept here), and each repair's finding and flag."""
    part = pickle.loads(packed)
    looked = look_at(frame, part["rows"], part["repairs"], part["lent"])
    return {"changed": looked.changed, "notes": looked.notes}, (looked.positions, looked.applied)


def look_share(plan: CleanPlan, start: int, stop: int) -> dict[str, Any] | None:
    """What :func:`_look_at_part` is given of the rows ``start:stop`` (one partition), renumbered
    from 0: the rows it looks at, their repairs and what they may take from a copy (None: none)."""
    lo, hi = np.searchsorted(plan.todo, [start, stop])
    rows = plan.todo[lo:hi]
    if not len(rows):
        return None
    return {
        "rows": rows - start,
        "repairs": plan.repairs.between(start, stop, origin=start),
        "lent": {row - start: plan.lent[row] for row in rows.tolist() if row in plan.lent},
    }


def look_at_parts(shards: Shards, plan: CleanPlan, findings: int) -> tuple[list[Future | None], np.ndarray]:
    """The records ``plan`` looks at, looked at on the workers that hold them: per partition the
    future of what it changed (None where nothing is looked at), and the ``applied`` flag of
    each of the ``findings``."""
    client, starts = shards.client, shards.starts.tolist()
    looked: list[Future | None] = [None] * len(shards.frames)
    flags: list[Future] = []
    for n, frame in enumerate(shards.frames):
        share = look_share(plan, starts[n], starts[n + 1])
        if share is None:
            continue
        both = client.submit(_look_at_part, frame, pickle.dumps(share, pickle.HIGHEST_PROTOCOL), pure=False)
        looked[n] = client.submit(operator.getitem, both, 0, pure=False)
        flags.append(client.submit(operator.getitem, both, 1, pure=False))
    applied = np.zeros(findings, bool)
    for future in flags:
        positions, done = future.result()
        applied[positions] = done
        future.release()
    return looked, applied


SHARDED_STEPS: tuple[Step, ...] = (
    ShardIngest(),
    ShardDedup(),
    ShardChecks(),
    ShardClean(),
    ShardIndexUpdate(),
    ShardExpectations(),
    Summarise(),
    Gate(),
)


#: The columns a representative's ``sources`` list of each member.
SOURCE_COLUMNS = ["id", "source", "line"]


def part_plan(corpus: CleanCorpus, start: int, stop: int) -> dict[str, Any]:
    """The plan of rows ``start:stop`` (one partition), renumbered from 0; its representatives'
    members as their rows in ``members`` (the compact columns :data:`SOURCE_COLUMNS` of them),
    placed after the partition's own rows. (What the clean step changed is on the worker.)"""
    kept = corpus.kept[(corpus.kept >= start) & (corpus.kept < stop)]
    low, high = np.searchsorted(corpus.removed_at, [start, stop])
    sources = corpus.sources
    assert isinstance(sources, _Sources) and not sources._set and not sources._deleted  # plan_clean's
    first, last = np.searchsorted(sources.reps, [start, stop])
    members = sources.members[sources.bounds[first] : sources.bounds[last]]
    return {
        "kept": kept - start,
        "reps": sources.reps[first:last] - start,
        "bounds": sources.bounds[first : last + 1] - sources.bounds[first],
        "members": corpus.records[SOURCE_COLUMNS].take(members).reset_index(drop=True),
        "removed_at": corpus.removed_at[low:high] - start,
        "removed_info": corpus.removed_info.iloc[low:high].reset_index(drop=True),
    }


def part_corpus(frame: pd.DataFrame, plan: dict[str, Any], looked: dict[str, Any] | None) -> CleanCorpus:
    """On a worker: one partition's :class:`CleanCorpus`, from its :func:`part_plan` and what the
    clean step changed there (:func:`_look_at_part`; None: nothing)."""
    own = frame[SOURCE_COLUMNS]
    lenders = pd.concat([own, plan.pop("members").astype(own.dtypes.to_dict())], ignore_index=True)
    members = np.arange(len(frame), len(lenders), dtype=np.int64)
    sources = _Sources(lenders, plan.pop("reps"), plan.pop("bounds"), members)
    looked = looked or {"changed": {}, "notes": {}}
    return CleanCorpus(frame, sources=sources, changed=looked["changed"], notes=looked["notes"], **plan)


@releasing
def _write_part(frame: pd.DataFrame, packed: bytes, looked: dict[str, Any] | None) -> tuple[bytes, bytes]:
    """One partition's lines of clean.jsonl and removed.jsonl, made on its worker (``packed``:
    its pickled :func:`part_plan`, which Dask then sends as it is, not walking its dicts;
    ``looked``: what the clean step changed there)."""
    corpus = part_corpus(frame, pickle.loads(packed), looked)
    with tempfile.TemporaryDirectory(prefix="scrape-audit-part-") as directory:
        clean, removed = Path(directory) / "clean.jsonl", Path(directory) / "removed.jsonl"
        write_jsonl(corpus.clean_batches(), clean)
        write_jsonl(corpus.removed_batches(), removed)
        return clean.read_bytes(), removed.read_bytes()


def write_parts(shards: Shards, corpus: CleanCorpus, looked: list[Future | None], directory: Path) -> None:
    """clean.jsonl and removed.jsonl: each partition's part made on its worker (with what the clean
    step changed there, ``looked``), copied here in order."""
    client = shards.client
    window = WRITE_WINDOW_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
    starts = shards.starts.tolist()
    pending: deque = deque()
    with (directory / "clean.jsonl").open("wb") as clean, (directory / "removed.jsonl").open("wb") as removed:

        def receive() -> None:
            future = pending.popleft()
            clean_part, removed_part = future.result()
            clean.write(clean_part)
            removed.write(removed_part)
            future.release()

        for n, frame in enumerate(shards.frames):
            if len(pending) >= window:
                receive()
            plan = pickle.dumps(part_plan(corpus, starts[n], starts[n + 1]), pickle.HIGHEST_PROTOCOL)
            pending.append(client.submit(_write_part, frame, plan, looked[n], pure=False))
        while pending:
            receive()
        for handle in (clean, removed):
            handle.flush()
            os.fsync(handle.fileno())


def run_sharded(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None,
    config: AuditConfig,
    force: bool = False,
    progress: ProgressHook | None = None,
) -> ShardedResult:
    """:func:`audit.run` over partitions on Dask (the cluster at ``config.scheduler``, or a
    LocalCluster started for the run and closed after its outputs are written)."""
    paths = [str(p) for p in paths]
    map_large_blocks()  # this process's large buffers given back when freed (see there)
    if out is not None:
        ensure_writable(out, force, inputs=paths)
    if config.checks is not None:
        unknown = [c for c in config.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    with dask_engine(config.scheduler) as engine:
        # Partitions the workers' limits fit, or a clear error rather than a stalled run.
        part_bytes = partition_bytes(engine.client, input_bytes(paths), shards_module.PART_BYTES)
        state = ShardedResult(paths=paths, config=config, engine=engine, part_bytes=part_bytes)
        try:
            for step in [*SHARDED_STEPS, *([_Write(out, force)] if out is not None else [])]:
                if progress:
                    progress(step.name, "start", 0.0)
                started = time.perf_counter()
                step.run(state)
                # A step's freed working memory (Python strings, Arrow buffers) given back to the OS:
                # else the next step's peak starts from this one's high-water mark.
                release_memory()
                if step.name != "write":
                    state.timings[step.name] = time.perf_counter() - started
                if progress:
                    progress(step.name, "done", time.perf_counter() - started)
        except BaseException:
            if state.index is not None:
                state.index.abort()  # the index as before the run
            raise
        if state.index is not None:
            state.index.commit()  # after the outputs, as a local run commits
        state.engine = state.shards = state.held_findings = None  # the cluster closes here
        state.looked = []
    return state


class _Write(Step):
    name = "write"

    def __init__(self, out: str | os.PathLike[str], force: bool) -> None:
        self.out, self.force = out, force

    def run(self, state: AuditResult) -> None:
        write_outputs(state, self.out, force=self.force)
