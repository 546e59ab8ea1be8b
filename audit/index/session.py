"""One run against an index: find earlier records a new one may duplicate, dedup, add the kept ones.

1. The run's records are signed (the dedup engine's signer) and their band keys, whole-text and
   prefix, are looked up in the index: every earlier record sharing a key is a candidate.
2. The candidates are fetched and put in front of the run's records, and the dedup engine runs
   over both (:func:`audit.dedup.find_duplicates`, unchanged): the same verification, relations
   and chaining guard as one run over all the data. Earlier records rank above every new one,
   so a cluster holding one keeps it as representative: it was kept (and published) already.
3. Results name earlier records ``index:RUN:ID`` (:func:`earlier_id`); removed.jsonl gets their
   plain id in ``duplicate_of`` and the run in ``duplicate_of_run`` (:func:`with_runs`).
4. The records the run keeps are added (:meth:`IndexedRun.stage`) and committed with the run.

Example:
    >>> earlier_id(3, "a.jsonl:12"), parse_earlier_id("index:3:a.jsonl:12")
    ('index:3:a.jsonl:12', (3, 'a.jsonl:12'))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from audit.dedup import DedupConfig, DedupResult, find_duplicates
from audit.dedup.engine import Engine, LocalEngine
from audit.dedup.shingles import ShingleBatch
from audit.dedup.signer import SignedCorpus, SignerSettings
from audit.index.base import IndexBackend, IndexParams, NewEntries, all_band_keys
from audit.normalise import normalise_text, normalised_texts

EARLIER_PREFIX = "index:"


def earlier_id(run: int, record_id: str) -> str:
    """How results name a record of an earlier run (never an id of this run: ids have no such prefix)."""
    return f"{EARLIER_PREFIX}{run}:{record_id}"


def parse_earlier_id(value: str) -> tuple[int, str] | None:
    """``(run, id)`` of an :func:`earlier_id`, else None."""
    if not isinstance(value, str) or not value.startswith(EARLIER_PREFIX):
        return None
    run, _, record_id = value[len(EARLIER_PREFIX) :].partition(":")
    return (int(run), record_id) if run.isdigit() else None


@dataclass
class IndexSession:
    """A run's open session on an index: its number, what it found, and its report."""

    backend: IndexBackend
    run: int
    label: str
    #: Earlier records fetched as candidates (and the kept records those copy).
    candidates: int = 0
    #: ``index:RUN:ID`` -> ref, for the earlier records fetched.
    ref_of: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    committed: bool = False

    def plan(self, ids: pd.Series, kept_ids: set[str], removed: pd.DataFrame) -> EntryPlan:
        """Which of the run's records (ids ``ids``, in record order) are added, and what each copies.

        ``removed`` is removed.jsonl's frame (or its id and duplicate_of columns) after
        :func:`with_runs`. Also sets :attr:`report`.
        """
        position = {record_id: n for n, record_id in enumerate(ids)}
        targets = zip(removed["duplicate_of"], removed["duplicate_of_run"], strict=True)
        copies = dict(zip(removed["id"], targets, strict=True))
        rows = np.flatnonzero(ids.isin(kept_ids | copies.keys()).to_numpy())
        row_in_entries = {int(row): n for n, row in enumerate(rows)}
        rep_ref, rep_row = [], []
        for record_id in ids.to_numpy()[rows]:
            rep, run = copies.get(record_id, (None, None))
            rep_ref.append(
                self.ref_of.get(earlier_id(int(run), rep)) if rep is not None and pd.notna(run) else None
            )
            rep_row.append(row_in_entries[position[rep]] if rep is not None and pd.isna(run) else None)
        self.report = {
            "location": self.backend.location,
            "run": self.run,
            "label": self.label,
            "candidates_from_index": self.candidates,
            "removed_as_copies_of_earlier_runs": int(removed["duplicate_of_run"].notna().sum()),
            "added": len(kept_ids),
            "added_copies": len(rows) - len(kept_ids),
        }
        return EntryPlan(rows, rep_ref, rep_row)

    def commit(self) -> None:
        if not self.committed:
            self.backend.commit()
            self.committed = True
        self.backend.close()

    def abort(self) -> None:
        self.backend.rollback()
        self.backend.close()


@dataclass(frozen=True)
class EntryPlan:
    """The records a run adds (their rows, ascending) and, per added record, the ref of the
    earlier record it copies or its entry number among the added (None: neither)."""

    rows: np.ndarray
    rep_ref: list[int | None]
    rep_row: list[int | None]


def new_entries(
    fields: pd.DataFrame,
    norm_texts: list[str],
    text_hashes: np.ndarray,
    signed: tuple[np.ndarray, np.ndarray],
    keys: np.ndarray,
    has_shingles: np.ndarray,
    reps: tuple[list[int | None], list[int | None]],
) -> NewEntries:
    """:class:`NewEntries` of added records: ``fields`` (id, source, line, title, url), their
    normalised texts, text hashes, ``(signatures, prefix signatures)``, band keys (none stored
    for a record without shingles: an empty text is nobody's copy) and ``(rep_ref, rep_row)``."""
    frame = fields.reset_index(drop=True)
    frame["norm_text"] = norm_texts
    frame["text_hash"] = np.asarray(text_hashes, np.uint64).view(np.int64)
    frame["rep_ref"] = pd.Series(reps[0], dtype=object)
    frame["rep_row"] = pd.Series(reps[1], dtype=object)
    stored = [row_keys if ok else row_keys[:0] for row_keys, ok in zip(keys, has_shingles, strict=True)]
    return NewEntries(frame, signed[0], signed[1], stored)


@dataclass
class IndexedRun(IndexSession):
    """A session whose records are held here: signed once, staged at once by :meth:`stage`."""

    signed: SignedCorpus | None = None
    keys: np.ndarray | None = None

    def stage(self, records: pd.DataFrame, kept_ids: set[str], removed: pd.DataFrame) -> None:
        """Add this run's records, kept and removed (not yet visible; :meth:`commit` makes them so).

        ``removed`` is removed.jsonl's frame after :func:`with_runs`.
        """
        assert self.signed is not None and self.keys is not None
        plan = self.plan(records["id"], kept_ids, removed)
        rows = plan.rows
        # Columns first, then rows: iloc on the whole frame would copy every text.
        fields = records[["id", "source", "line", "title", "url"]].iloc[rows]
        # Normalised for the rows added only: the records carry no norm_text column.
        stored = records["norm_text"].to_numpy()[rows] if "norm_text" in records else None
        entries = new_entries(
            fields,
            stored if stored is not None else normalised_texts(records, rows),
            self.signed.text_hashes[rows],
            (self.signed.signatures[rows], self.signed.prefix_signatures[rows]),
            self.keys[rows],
            self.signed.sequences.counts[rows] > 0,
            (plan.rep_ref, plan.rep_row),
        )
        self.backend.add(entries, self.run, {"label": self.label, **self.report})


def dedup_with_index(
    records: pd.DataFrame,
    config: DedupConfig,
    completeness: Callable[[int], tuple],
    backend: IndexBackend,
    label: str,
    engine: Engine | None = None,
) -> tuple[DedupResult, IndexedRun]:
    """Dedup ``records`` against themselves and every earlier record in ``backend``.

    Takes the index's write lock (held until :meth:`IndexedRun.commit` or ``abort``).
    """
    params = IndexParams.from_config(config)
    with begun_run(backend, params, label) as run:
        texts = records["norm_text"] if "norm_text" in records else records["text"].map(normalise_text)
        engine = engine or LocalEngine()
        # Signed once, with the dedup's band keys too: the signatures go to the index, the
        # shingles and band keys to the dedup below (with the fetched earlier records' in front).
        settings = index_signer(config, normalise=False)
        signed = engine.sign(texts.tolist(), settings)
        keys = all_band_keys(signed.signatures, signed.prefix_signatures, params)
        probe = keys[signed.sequences.counts > 0].reshape(-1, 2)  # an empty text is nobody's copy
        earlier = Earlier.fetch(backend, backend.lookup(probe))
        combined = pd.concat(
            [
                pd.DataFrame({"id": earlier.names, "title": earlier.frame["title"]}).assign(
                    norm_text=earlier.frame["norm_text"]
                ),
                pd.DataFrame({"id": records["id"], "title": records["title"], "norm_text": texts}),
            ],
            ignore_index=True,
        )
        if len(earlier.frame):  # only the fetched earlier records are signed again here
            both = engine.held(_concat(engine.sign(earlier.frame["norm_text"].tolist(), settings), signed))
        else:
            both = engine.held(signed)
        result = find_duplicates(combined, config, earlier.rank(completeness), engine=engine, signed=both)
        session = IndexedRun(backend, run, label, len(earlier.frame), earlier.ref_of())
        session.signed, session.keys = signed, keys
        return earlier.this_run_only(result), session


@contextmanager
def begun_run(backend: IndexBackend, params: IndexParams, label: str) -> Iterator[int]:
    """A run begun on ``backend`` (its number; the write lock taken, :meth:`IndexBackend.begin`):
    if the block fails, the index is rolled back to before the run and closed (the lock released)."""
    run = backend.begin(params, label)
    try:
        yield run
    except BaseException:
        backend.rollback()
        backend.close()
        raise


def index_signer(config: DedupConfig, normalise: bool) -> SignerSettings:
    """The signer of an indexed run: signatures kept (the index stores them), and the dedup's
    band keys (its candidates, and the index's keys: :func:`audit.index.base.all_band_keys`)."""
    return replace(
        config.signer(),
        normalise=normalise,
        banding=config.banding(),
        prefix_banding=config.prefix_banding,
        keep_signatures=True,
    )


@dataclass(frozen=True)
class Earlier:
    """The earlier records fetched for a run (:data:`audit.index.base.FETCH_COLUMNS`), which the
    dedup puts in front of the run's records, and their names in its results."""

    frame: pd.DataFrame
    names: list[str]

    @classmethod
    def fetch(cls, backend: IndexBackend, refs: list[int]) -> Earlier:
        """The records ``refs`` and the kept records those that are removed copies stand for
        (one run over all the data would see them too), in ref order."""
        earlier = backend.fetch(refs)
        reps = sorted({int(r) for r in earlier["duplicate_of"].dropna()} - set(earlier["ref"]))
        if reps:
            earlier = pd.concat([earlier, backend.fetch(reps)]).sort_values("ref", ignore_index=True)
        names = [earlier_id(r, i) for r, i in zip(earlier["run"], earlier["id"], strict=True)]
        return cls(earlier, names)

    def ref_of(self) -> dict[str, int]:
        return dict(zip(self.names, self.frame["ref"].astype(int), strict=True))

    def rank(self, completeness: Callable[[int], tuple]) -> Callable[[int], tuple]:
        """The dedup's ranking of the earlier rows then the run's (ranked by ``completeness``)."""
        first_new = len(self.frame)
        was_kept = self.frame["duplicate_of"].isna().tolist()

        def rank(row: int) -> tuple:
            # Kept earlier records first (they were published), then earlier copies, then this run's.
            if row < first_new:
                return (2,) if was_kept[row] else (1,)
            return (0, *completeness(row - first_new))

        return rank

    def this_run_only(self, result: DedupResult) -> DedupResult:
        was_kept = self.frame["duplicate_of"].isna().tolist()
        copies = {n for n, kept in zip(self.names, was_kept, strict=True) if not kept}
        return _this_run_only(result, set(self.names), copies)


def _concat(first: SignedCorpus, second: SignedCorpus) -> SignedCorpus:
    """Two signed corpora as one, ``first``'s rows first."""
    offsets = np.concatenate(
        (first.sequences.offsets, second.sequences.offsets[1:] + first.sequences.offsets[-1])
    )
    keys = None
    if first.band_keys is not None and second.band_keys is not None:
        keys = np.concatenate((first.band_keys, second.band_keys), axis=1)
    return SignedCorpus(
        ShingleBatch(np.concatenate((first.sequences.hashes, second.sequences.hashes)), offsets),
        np.concatenate((first.signatures, second.signatures)),
        np.concatenate((first.prefix_signatures, second.prefix_signatures)),
        np.concatenate((first.text_hashes, second.text_hashes)),
        keys,
    )


def _this_run_only(result: DedupResult, earlier: set[str], earlier_copies: set[str]) -> DedupResult:
    """Earlier records are never removed again; clusters with no record of this run are dropped.

    A record whose representative is an earlier *removed* copy (their only link to that copy's
    kept record was a chain through records not fetched) is kept: the conservative side.
    """
    mine = np.array([not set(m) <= earlier for m in result.clusters["members"]], dtype=bool)
    clusters = result.clusters.loc[mine].copy()
    clusters["cluster_id"] = [f"c{n:06d}" for n in range(len(clusters))]
    kept_members = {m for members in clusters["members"] for m in members}
    edges = result.edges[result.edges["a"].isin(kept_members) & result.edges["b"].isin(kept_members)]
    duplicate_of = {
        k: v for k, v in result.duplicate_of.items() if k not in earlier and v not in earlier_copies
    }
    return DedupResult(
        clusters.reset_index(drop=True),
        edges.reset_index(drop=True),
        duplicate_of,
        {k: v for k, v in result.relation_of.items() if k in duplicate_of},
        result.stats | {"earlier_records": len(earlier)},
    )


def with_runs(removed: pd.DataFrame) -> pd.DataFrame:
    """removed.jsonl rows naming an earlier record by its plain id, with ``duplicate_of_run``.

    >>> frame = pd.DataFrame({"id": ["b", "c"], "duplicate_of": ["index:2:a", "b"]})
    >>> with_runs(frame)[["duplicate_of", "duplicate_of_run"]].values.tolist()
    [['a', 2], ['b', None]]
    """
    parsed = [parse_earlier_id(value) for value in removed["duplicate_of"]]
    frame = removed.copy()
    frame["duplicate_of"] = [p[1] if p else v for p, v in zip(parsed, removed["duplicate_of"], strict=True)]
    position = list(frame.columns).index("duplicate_of") + 1
    frame.insert(
        position,
        "duplicate_of_run",
        pd.Series([p[0] if p else None for p in parsed], dtype=object, index=frame.index),
    )
    return frame
