"""The audit pipeline: a list of small steps, each with one job, run in order over one state.

    ingest -> normalise -> dedup (clusters) -> checks (findings) -> clean
        -> expectations (GX suites, when a suite directory is set) -> summarise
        -> gate (pass/fail, when thresholds are set)

Each step reads and sets fields of :class:`AuditResult`; a step can be run alone in a test
by giving it a result with the fields it reads already set.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from audit.checks import CHECKS, CheckContext, run_checks
from audit.checks.malformed_url import url_field_findings
from audit.checks.table import FindingTable
from audit.checks.truncation import ends_cut_off
from audit.clean import CleanCorpus, plan_clean
from audit.dedup import DedupConfig, DedupResult, find_duplicates
from audit.dedup.engine import Engine
from audit.expectations import load_suites, validate_suites, validation_tables
from audit.frames import Column, cell_reader, release_memory
from audit.gate import GateConfig, GateResult, evaluate_gate
from audit.index import IndexedRun, dedup_with_index, open_index, with_runs
from audit.ingest import FieldMap, read_inputs
from audit.normalise import comparable_texts
from audit.report.summary import summarise
from audit.schema import empty_records, quarantine_frame


@dataclass(frozen=True)
class AuditConfig:
    """Everything a run can be told; the defaults are the documented defaults."""

    threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 5
    seed: int = 1
    checks: tuple[str, ...] | None = None
    #: Per-check keyword options, e.g. ``{"empty_or_short": {"min_text_chars": 100}}``.
    check_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fields: FieldMap = field(default_factory=FieldMap)
    #: Directory of Great Expectations suites (``*.json``); None: no suites run.
    expectations: str | None = None
    #: Thresholds of the CI gate; None: no gate (``scrape-audit run``).
    gate: GateConfig | None = None
    #: An index of earlier runs (SQLite file or ``redis://HOST:PORT/DB``); None: this run alone.
    index: str | None = None
    #: Seconds to wait for an index another run holds, before failing.
    index_wait: float = 60.0
    #: Where dedup signs and finds candidates: ``local`` (this machine) or ``dask``.
    engine: str = "local"
    #: With ``engine="dask"``: a running scheduler's address; None starts a LocalCluster.
    scheduler: str | None = None

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(
            threshold=self.threshold, num_perm=self.num_perm, word_n=self.shingle_size, seed=self.seed
        )

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["checks"] = list(self.checks) if self.checks is not None else sorted(CHECKS)
        values["check_options"] = {k: dict(v) for k, v in self.check_options.items()}
        values["gate"] = self.gate.as_dict() if self.gate is not None else None
        if self.index is None:  # runs without an index report exactly what they did before
            del values["index"], values["index_wait"]
        if self.engine == "local":
            del values["engine"], values["scheduler"]
        return values


@dataclass
class AuditResult:
    """The state that flows through the steps; after a run, every DataFrame of the audit."""

    paths: list[str]
    config: AuditConfig
    records: pd.DataFrame = field(default_factory=empty_records)
    quarantine: pd.DataFrame = field(default_factory=lambda: quarantine_frame([]))
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    dedup: DedupResult | None = None
    #: What dedup compares each record by (text, or title when the text is blank), from normalise.
    comparable: pd.Series | None = None
    #: The cleaned corpus and removed records as row positions and changes (no copy of the texts);
    #: ``clean`` and ``removed`` are built from it when first asked for.
    corpus: CleanCorpus | None = None
    #: The ``expectations`` section of report.json, when suites ran.
    expectations: dict[str, Any] | None = None
    gate: GateResult | None = None
    #: The open index session of a run with ``config.index`` (committed by :func:`audit`/``run``).
    index: IndexedRun | None = None
    report: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    _clean: pd.DataFrame | None = field(default=None, init=False, repr=False)
    _found: FindingTable = field(default_factory=FindingTable.empty, init=False, repr=False)
    _findings: pd.DataFrame | None = field(default=None, init=False, repr=False)
    _removed: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def found(self) -> FindingTable:
        """The findings, compact (:mod:`audit.checks.table`): what the steps and writers read."""
        return self._found

    @found.setter
    def found(self, table: FindingTable) -> None:
        self._found, self._findings = table, None

    @property
    def findings(self) -> pd.DataFrame:
        """The findings as a DataFrame (findings.jsonl's columns, evidence and repair as dicts),
        built from :attr:`found` when first read."""
        if self._findings is None:
            self._findings = self.found.frame()
        return self._findings

    @findings.setter
    def findings(self, frame: pd.DataFrame) -> None:
        self._found, self._findings = FindingTable.from_frame(frame), frame

    @property
    def clean(self) -> pd.DataFrame:
        """The cleaned corpus (clean.jsonl) as a DataFrame, built from :attr:`corpus` when first read."""
        if self._clean is None:
            self._clean = self.corpus.clean_frame() if self.corpus is not None else pd.DataFrame()
        return self._clean

    @clean.setter
    def clean(self, frame: pd.DataFrame) -> None:
        self._clean = frame

    @property
    def removed(self) -> pd.DataFrame:
        """The removed records (removed.jsonl) as a DataFrame, built from :attr:`corpus` when first read."""
        if self._removed is None:
            self._removed = self.corpus.removed_frame() if self.corpus is not None else pd.DataFrame()
        return self._removed

    @removed.setter
    def removed(self, frame: pd.DataFrame) -> None:
        self._removed = frame

    def clean_batches(self) -> Iterable[dict[str, Column]] | pd.DataFrame:
        """clean.jsonl's rows: column batches from :attr:`corpus`, unless ``clean`` was built or set."""
        if self._clean is None and self.corpus is not None:
            return self.corpus.clean_batches()
        return self.clean

    def removed_batches(self) -> Iterable[dict[str, Column]] | pd.DataFrame:
        """removed.jsonl's rows: column batches from :attr:`corpus`, unless ``removed`` was built or set."""
        if self._removed is None and self.corpus is not None:
            return self.corpus.removed_batches()
        return self.removed

    def removed_summary(self) -> pd.DataFrame:
        """The removed records' id, reason and duplicate_of without their texts (cheap)."""
        if self._removed is None and self.corpus is not None:
            return self.corpus.removed_info
        return self.removed

    def kept_count(self) -> int:
        return len(self.corpus) if self._clean is None and self.corpus is not None else len(self.clean)

    @property
    def clusters(self) -> pd.DataFrame:
        return self.dedup.clusters if self.dedup is not None else pd.DataFrame()


class Step(ABC):
    name: str

    @abstractmethod
    def run(self, state: AuditResult) -> None: ...


class Ingest(Step):
    name = "ingest"

    def run(self, state: AuditResult) -> None:
        batch = read_inputs(state.paths, state.config.fields)
        state.records, state.quarantine = batch.records, batch.quarantine
        state.files, state.skipped = batch.files, batch.skipped
        release_memory()  # the batches' Python strings are gone; dedup forks its workers next


class Normalise(Step):
    """What dedup compares each record by: its text, or its title when the text is blank.

    Only that choice is made here (sharing the text column's memory); the normalised form is
    computed where it is used, for the rows that use it (dedup's signing workers, checks), and
    never stored as a column: at a million records it would double the memory of the texts.
    """

    name = "normalise"

    def run(self, state: AuditResult) -> None:
        state.comparable = comparable_texts(state.records)


def completeness(records: pd.DataFrame) -> Callable[[int], tuple]:
    """Rank copies of one record, most complete highest; dedup keeps the highest as representative.

    In order: text not cut off, title not cut off, longest text, a valid url, most fields
    filled (title, url, date); ties go to the earliest file and line (dedup's row order).

    >>> frame = pd.DataFrame({"text": ["A full text.", "A full text.", "A full te..."],
    ...     "title": ["T", "T", "T"], "url": ["", "https://x.org/a", "https://x.org/a"]})
    >>> rank = completeness(frame)
    >>> max(range(3), key=lambda row: (rank(row), -row))
    1
    """
    # Cells are read for the rows ranked only (copies in clusters), not converted column-wide.
    texts, titles, urls = (cell_reader(records[name]) for name in ("text", "title", "url"))
    dates = cell_reader(records["scraped_date"]) if "scraped_date" in records else lambda row: None

    def valid_url(url: str) -> bool:
        return bool(url) and not any(f.severity == "error" for f in url_field_findings("", url))

    def rank(row: int) -> tuple:
        text, title, url = texts(row), titles(row), urls(row)  # each cell read once
        return (
            ends_cut_off(text) is None,
            ends_cut_off(title) is None,
            len(text),
            valid_url(url),
            bool(title) + bool(url) + bool(dates(row)),
        )

    return rank


class Dedup(Step):
    name = "dedup"

    def run(self, state: AuditResult) -> None:
        config, rank = state.config.dedup_config(), completeness(state.records)
        # Dedup signs the comparable text (normalised in its workers); a shallow column swap.
        body = state.comparable if state.comparable is not None else comparable_texts(state.records)
        compared = state.records.assign(text=body)
        with dedup_engine(state.config) as engine:
            if state.config.index is None:
                state.dedup = find_duplicates(compared, config, rank, engine=engine)
            else:
                backend = open_index(state.config.index, wait=state.config.index_wait)
                label = "; ".join(state.paths)
                state.dedup, state.index = dedup_with_index(
                    compared, config, rank, backend, label, engine=engine
                )
        release_memory()  # the signing threads' batches and the shingles: the checks fork next


@contextlib.contextmanager
def dedup_engine(config: AuditConfig) -> Iterator[Engine | None]:
    """The engine ``config.engine`` names, for the length of the dedup step (None: local)."""
    if config.engine == "local":
        yield None
        return
    if config.engine != "dask":
        raise ValueError(f"unknown engine {config.engine!r}; known: local, dask")
    from audit.engines.dask import dask_engine  # Dask is imported only when asked for

    with dask_engine(config.scheduler) as engine:
        yield engine


class Checks(Step):
    name = "checks"

    def run(self, state: AuditResult) -> None:
        context = CheckContext(clusters=state.clusters if state.dedup is not None else None)
        state.found = run_checks(state.records, state.config.checks, context, state.config.check_options)
        release_memory()  # the pieces' findings, encoded


class Clean(Step):
    name = "clean"

    def run(self, state: AuditResult) -> None:
        assert state.dedup is not None, "clean needs the dedup step first"
        state.corpus, state.found = plan_clean(state.records, state.dedup, state.found)
        release_memory()


class IndexUpdate(Step):
    """With an index: removed.jsonl names earlier records by id and run; the kept records are staged."""

    name = "index"

    def run(self, state: AuditResult) -> None:
        if state.index is None:
            return
        state.removed = with_runs(state.removed)
        kept = set(state.corpus.kept_ids()) if state.corpus is not None else set(state.clean["id"])
        state.index.stage(state.records, kept, state.removed)


class Expectations(Step):
    name = "expectations"

    def run(self, state: AuditResult) -> None:
        if state.config.expectations is None:
            return
        tables = validation_tables(state.records, state.clean, state.removed, state.quarantine, state.found)
        state.expectations = validate_suites(load_suites(state.config.expectations), tables)


class Summarise(Step):
    name = "summarise"

    def run(self, state: AuditResult) -> None:
        state.report = summarise(
            records=state.records,
            quarantine=state.quarantine,
            clusters=state.clusters,
            clean=range(state.kept_count()),  # only counted: the corpus is not built for it
            removed=state.removed_summary(),
            findings=state.found,
            files=state.files,
            skipped=state.skipped,
            parameters=state.config.as_dict() | {"fields": asdict(state.config.fields)},
            timings=state.timings,
        )
        if state.expectations is not None:
            state.report["expectations"] = state.expectations
        if state.index is not None:
            state.report["index"] = state.index.report


class Gate(Step):
    name = "gate"

    def run(self, state: AuditResult) -> None:
        if state.config.gate is None:
            return
        state.gate = evaluate_gate(state.report, state.found, state.config.gate)
        state.report["gate"] = state.gate.as_dict()


DEFAULT_STEPS: tuple[Step, ...] = (
    Ingest(),
    Normalise(),
    Dedup(),
    Checks(),
    Clean(),
    IndexUpdate(),
    Expectations(),
    Summarise(),
    Gate(),
)

#: Called before and after each step: ``(step name, "start" | "done", seconds so far)``.
ProgressHook = Callable[[str, str, float], None]


def audit(
    paths: Iterable[str | os.PathLike[str]],
    config: AuditConfig | None = None,
    steps: Sequence[Step] = DEFAULT_STEPS,
    progress: ProgressHook | None = None,
    commit_index: bool = True,
) -> AuditResult:
    """Run the pipeline over ``paths`` in memory and return every result as DataFrames.

    With ``config.index``, the run's kept records are committed to the index at the end, unless
    ``commit_index`` is False (then the caller commits ``result.index`` or aborts it; the
    index stays locked until then). A failing step leaves the index as it was.
    """
    config = config or AuditConfig()
    if config.checks is not None:
        unknown = [c for c in config.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(CHECKS))}")
    if config.expectations is not None:
        load_suites(config.expectations)  # a missing directory or bad JSON fails before the work
    state = AuditResult(paths=[str(p) for p in paths], config=config)
    try:
        for step in steps:
            if progress:
                progress(step.name, "start", 0.0)
            started = time.perf_counter()
            step.run(state)
            state.timings[step.name] = time.perf_counter() - started
            if progress:
                progress(step.name, "done", state.timings[step.name])
    except BaseException:
        if state.index is not None:
            state.index.abort()
        raise
    if state.index is not None and commit_index:
        state.index.commit()
    return state
