"""Near-duplicate detection: normalised text -> shingles -> MinHash -> LSH -> exact proof -> clusters.

1. Copies with identical normalised text are grouped by hash first (cheap, exact).
2. One copy per group is shingled and signed in numpy batches on all cores
   (:mod:`audit.dedup.signer`): a MinHash of the whole text and one of its first shingles.
3. LSH banding (:mod:`audit.dedup.lsh`) proposes candidates from both signatures, tuned for
   recall; every candidate is verified on the exact shingle sets (:mod:`audit.dedup.verify`):
   ``near_duplicate`` (Jaccard >= threshold) or ``truncated_copy`` (the shorter copy is a cut
   of the longer: containment and prefix containment >= threshold).
4. Connected components of the edges are clusters (:mod:`audit.dedup.clusters`); each keeps
   its most complete member as representative, and members that are not duplicates of it
   are split off into their own clusters (the chaining guard).

Example:
    >>> import pandas as pd
    >>> from audit.normalise import add_normalised
    >>> text = "one two three four five six seven eight nine ten"
    >>> records = add_normalised(pd.DataFrame({"id": ["a", "b", "c"], "title": ["", "", ""],
    ...     "text": [text, text.upper(), "something else entirely, not a copy at all"], "url": ""}))
    >>> result = find_duplicates(records)
    >>> result.duplicate_of
    {'b': 'a'}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz import fuzz, process

from audit.dedup.clusters import sort_order, split_chains_bulk
from audit.dedup.engine import Engine, LocalEngine, Signed
from audit.dedup.kernel import normalise_many
from audit.dedup.lsh import Banding, choose_banding, first_of_equal, sorted_unique
from audit.dedup.ranking import char_lengths
from audit.dedup.signer import SignerSettings
from audit.dedup.verify import (
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    RELATION_CODES,
    TRUNCATED_COPY,
    at_near_threshold,
)
from audit.frames import arrow_strings, take_values
from audit.normalise import normalise_text
from audit.parallel import cores, forked_map, idle_cores

__all__ = ["DedupConfig", "DedupResult", "find_duplicates"]

CLUSTER_COLUMNS = ["cluster_id", "representative", "members", "size", "to_representative", "similarities"]
EDGE_COLUMNS = ["a", "b", "jaccard", "containment", "relation", "title_similarity"]
RELATIONS = (EXACT_DUPLICATE, NEAR_DUPLICATE, TRUNCATED_COPY)
#: Names of the relation codes of ``to_representative`` while clustering: verification's
#: codes (:data:`audit.dedup.verify.RELATION_CODES`), then the exact duplicate.
RELATION_NAMES = np.array([*RELATION_CODES, EXACT_DUPLICATE], dtype=object)
_EXACT_CODE = len(RELATION_CODES)
PREFIX_BANDING = Banding(16, 4)


@dataclass(frozen=True)
class DedupConfig:
    """Dedup parameters.

    ``threshold``: the exact Jaccard (near duplicates) or containment (truncated copies) a pair
    must reach. ``remove``: the relations whose copies leave the cleaned corpus.
    """

    threshold: float = 0.8
    num_perm: int = 128
    word_n: int = 5
    char_n: int = 5
    seed: int = 1
    #: Shingles in the prefix signature that finds truncated copies.
    prefix_shingles: int = 24
    #: Bands x rows of the prefix signature's LSH (rows of 4: a prefix Jaccard of 0.66 is found 97 %).
    prefix_banding: Banding = PREFIX_BANDING
    remove: tuple[str, ...] = RELATIONS
    #: Chaining guard: a member stays in a cluster when it is a near duplicate of the
    #: representative at Jaccard ``threshold - chain_slack`` (a copy two small edits away stays;
    #: a chain drifting further is split), or a truncated copy of it at ``threshold``.
    chain_slack: float = 0.15
    workers: int | None = None
    batch_docs: int = 2_000

    def signer(self) -> SignerSettings:
        return SignerSettings(
            num_perm=self.num_perm,
            seed=self.seed,
            word_n=self.word_n,
            char_n=self.char_n,
            prefix_shingles=self.prefix_shingles,
            batch_docs=self.batch_docs,
            workers=self.workers,
        )

    def banding(self) -> Banding:
        return choose_banding(self.threshold, self.num_perm)


@dataclass
class DedupResult:
    """Clusters (one row each), verified edges, removed id -> representative id and its relation."""

    clusters: pd.DataFrame
    edges: pd.DataFrame
    #: A dict; a run over partitions holds it as an :class:`audit.dedup.idmap.IdMap`.
    duplicate_of: Mapping[str, str] = field(default_factory=dict)
    relation_of: Mapping[str, str] = field(default_factory=dict)
    #: Counts and parameters: candidates, verified edges by relation, chain splits, banding.
    stats: dict[str, Any] = field(default_factory=dict)


class _Stopwatch:
    """Seconds per stage, for ``DedupResult.stats``: wall time, and this process's CPU time
    (on a shared machine the wall time also counts waiting for a core); and within a stage,
    seconds per part (:meth:`part`)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.cpu_laps: dict[str, float] = {}
        self.parts: dict[str, float] = {}
        self.cpu_parts: dict[str, float] = {}
        self._last, self._last_cpu = time.perf_counter(), time.process_time()
        self._part, self._part_cpu = self._last, self._last_cpu

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.laps[name] = round(now - self._last, 3)
        self.cpu_laps[name] = round(cpu - self._last_cpu, 3)
        self._last, self._last_cpu = self._part, self._part_cpu = now, cpu

    def part(self, name: str) -> None:
        """The time since the stage's previous part (or its start) is part ``name`` of the stage."""
        now, cpu = time.perf_counter(), time.process_time()
        self.parts[name] = round(now - self._part, 3)
        self.cpu_parts[name] = round(cpu - self._part_cpu, 3)
        self._part, self._part_cpu = now, cpu

    def total(self, stages: tuple[str, ...]) -> dict[str, Any]:
        """Wall and CPU seconds of ``stages`` together, with their parts."""
        return {
            "stages": list(stages),
            "seconds": round(sum(self.laps[name] for name in stages), 3),
            "cpu_seconds": round(sum(self.cpu_laps[name] for name in stages), 3),
            "parts_seconds": dict(self.parts),
            "parts_cpu_seconds": dict(self.cpu_parts),
        }


def _default_completeness(records: pd.DataFrame) -> Callable[[int], tuple]:
    """Longest text, then a URL, then a title: the key :func:`_rank` sorts by in numpy, per row
    in Python (the reference the tests compare it to)."""

    def lengths(column: str) -> list[int]:
        values = records[column].tolist() if column in records else [None] * len(records)
        return [len(v) if isinstance(v, str) else 0 for v in values]

    texts, urls, titles = lengths("text"), lengths("url"), lengths("title")
    return lambda row: (texts[row], urls[row] > 0, titles[row] > 0)


#: From this many ranked rows up, the completeness keys are made on two cores when one is idle
#: (a million-record corpus ranks ~0.5M copies: ~7 CPU s of per-row Python in one process).
PARALLEL_RANK_ROWS = 50_000


def _keys_of(completeness: Callable[[int], tuple], rows: np.ndarray) -> list[tuple]:
    return [completeness(row) for row in rows.tolist()]


def _completeness_keys(completeness: Callable[[int], tuple], rows: np.ndarray) -> list[tuple]:
    """``[completeness(row) for row in rows]``, the two halves on two processes for many rows."""
    workers = cores() if len(rows) >= PARALLEL_RANK_ROWS and idle_cores() >= 1 else 1
    halves = np.array_split(rows, min(workers, 2))
    return [key for half in forked_map(_keys_of, completeness, halves, len(halves)) for key in half]


def _rank(rows: np.ndarray, completeness: Callable[[int], tuple] | None, records: pd.DataFrame) -> np.ndarray:
    """1 + position of each row in ascending ``(completeness(row), -row)`` order (the highest: the
    representative); the default key is sorted in numpy, from the lengths at ``rows`` only."""
    if completeness is None:
        texts, urls, titles = (char_lengths(records.get(name), rows) for name in ("text", "url", "title"))
        order = rows[sort_order((-rows, titles > 0, urls > 0, texts))]
    else:
        keys = _completeness_keys(completeness, rows)
        ranked = sorted(zip(keys, (-rows).tolist(), strict=True))  # ties (equal keys): the later row lower
        order = np.asarray([-negative for _, negative in ranked], dtype=np.int64)
    rank = np.zeros(len(records), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def _normalised_titles(titles: pd.Series | None, rows: np.ndarray) -> dict[int, str]:
    """Normalised title of each row (``normalise_text``); rows without a title left out: the
    reference :func:`_title_similarities` is tested against. ``titles``: the title column (None:
    no titles), read at ``rows`` only."""
    unique = sorted_unique(rows)
    row_titles = take_values(titles, unique) if titles is not None else [""] * len(unique)
    pairs = zip(unique.tolist(), row_titles, strict=True)
    return {row: normalise_text(title) for row, title in pairs if title}


def _title_similarity(title_of: dict[int, str], a: int, b: int) -> float | None:
    """rapidfuzz's ratio of the normalised titles of rows ``a`` and ``b``, 0..1 (None when one is missing)."""
    if a not in title_of or b not in title_of:
        return None
    return round(fuzz.ratio(title_of[a], title_of[b]) / 100, 4)


def _title_similarities(titles: pd.Series | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_title_similarity` of every pair of rows ``(a[k], b[k])``, NaN where it is None.

    Copies mostly share their title: each distinct title is normalised once (the ASCII ones by
    the kernel, :func:`audit.dedup.kernel.normalise_many`) and each distinct pair of titles
    compared once, by rapidfuzz in one call (the same float64 values as one ``fuzz.ratio``
    call per pair). ``titles``: the title column (None: no titles), read at ``a`` and ``b`` only.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    rows = sorted_unique(np.concatenate((a, b)))
    row_titles = take_values(titles, rows) if titles is not None else [""] * len(rows)
    index: dict[str, int] = {}
    code_of = (index.setdefault(title, len(index)) if title else -1 for title in row_titles)
    codes = np.fromiter(code_of, np.int64, len(rows))
    code_a, code_b = codes[np.searchsorted(rows, a)], codes[np.searchsorted(rows, b)]
    found = np.full(len(a), np.nan)
    both = np.flatnonzero((code_a >= 0) & (code_b >= 0))
    if len(both):
        normalised = normalise_many(list(index))
        pairs, inverse = np.unique(code_a[both] * len(index) + code_b[both], return_inverse=True)
        left = [normalised[code] for code in (pairs // len(index)).tolist()]
        right = [normalised[code] for code in (pairs % len(index)).tolist()]
        ratios = process.cpdist(left, right, scorer=fuzz.ratio, dtype=np.float64)
        found[both] = _round4(ratios / 100)[inverse]
    return found


def _round4(values: np.ndarray) -> np.ndarray:
    """``round(value, 4)`` of each value, Python's rounding (as the output always had), in numpy.

    ``rint(x * 1e4) / 1e4`` is the same double wherever ``x * 1e4`` is not within its rounding
    error (~1e-12 for values up to 1) of a half: the integer is the correctly rounded one, and
    both divide it by 10**4 to the nearest double. The values near a half (and any not finite or
    large) are rounded by Python.
    """
    values = np.asarray(values, dtype=np.float64)
    scaled = values * 10_000
    rounded = np.rint(scaled) / 10_000
    with np.errstate(invalid="ignore"):
        doubtful = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6) | ~(np.abs(values) < 1e9)
    for k in np.flatnonzero(doubtful).tolist():
        rounded[k] = round(float(values[k]), 4)
    return rounded


def _rounded(values: np.ndarray) -> pa.Array:
    """:func:`_round4` of each value, as Arrow doubles."""
    return pa.array(_round4(values), pa.float64())


def _ids_at(id_column: pd.Series, rows: np.ndarray) -> pa.Array:
    """The ids at ``rows`` as one Arrow string array: no Python string per id."""
    chunks = arrow_strings(id_column)
    if chunks is None:
        return pa.array(take_values(id_column, rows), pa.large_string())
    return chunks.take(pa.array(rows, pa.int64())).combine_chunks().cast(pa.large_string())


def _lists(bounds: np.ndarray, values: list[pa.Array], names: list[str]) -> pa.Array:
    """One list of structs (fields ``names``) per ``bounds[k]:bounds[k + 1]`` of ``values``."""
    return pa.ListArray.from_arrays(pa.array(bounds, pa.int32()), pa.StructArray.from_arrays(values, names))


def _column(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    """An Arrow array as a pandas column: strings as pandas ``str``, lists as ``pd.ArrowDtype``."""
    if pa.types.is_large_string(values.type) or pa.types.is_string(values.type):
        return pd.array(values, dtype="str")
    return pd.array(values, dtype=pd.ArrowDtype(values.type))


def _output(
    id_column: pd.Series,
    titles: pd.Series | None,
    config: DedupConfig,
    edges: np.ndarray,
    edge_a: np.ndarray,
    edge_b: np.ndarray,
    edge_jaccard: np.ndarray,
    edge_containment: np.ndarray,
    edge_relation: np.ndarray,
    cluster: np.ndarray,
    representative: np.ndarray,
    to_rep_jaccard: np.ndarray,
    to_rep_containment: np.ndarray,
    to_rep_relation: np.ndarray,
) -> DedupResult:
    """The result without its stats: cluster rows, the edges inside clusters, ``duplicate_of``,
    ``relation_of``; ``stats["weak_edges"]`` counts the edges the chaining guard cut.

    The cluster rows' lists (members, ``to_representative``, ``similarities``) are Arrow
    columns made from the arrays at once: a million records' clusters as Python dicts and
    lists held ~0.4 GB until the run ended, as Arrow ~0.05 GB. Read back (``tolist``,
    iteration) they are the same lists of dicts, keys in the same order. Python strings are
    made only for ``duplicate_of`` and ``relation_of``.
    """
    if len(representative) == 0:
        return DedupResult(
            pd.DataFrame([], columns=CLUSTER_COLUMNS),
            pd.DataFrame([], columns=EDGE_COLUMNS),
            stats={"weak_edges": len(edges)},
        )
    # Edges inside a cluster, by cluster then (a, b); the others are the ones the guard cut.
    cluster_a, cluster_b = cluster[edge_a], cluster[edge_b]
    inside = np.flatnonzero((cluster_a >= 0) & (cluster_a == cluster_b))
    inside = inside[sort_order((edge_b[inside], edge_a[inside], cluster_a[inside]))]
    numbers = np.arange(len(representative) + 1)
    edge_bounds = np.searchsorted(cluster_a[inside], numbers)
    inside_a, inside_b = edge_a[inside], edge_b[inside]
    title_similarity = _title_similarities(titles, inside_a, inside_b)
    edge_columns = {
        "a": _ids_at(id_column, inside_a),
        "b": _ids_at(id_column, inside_b),
        "jaccard": _rounded(edge_jaccard[inside]),
        "containment": _rounded(edge_containment[inside]),
        "relation": pa.array(edge_relation[inside].tolist(), pa.string()),
        "title_similarity": pa.array(title_similarity, pa.float64(), mask=np.isnan(title_similarity)),
    }

    # Members by cluster, ascending rows within one; those that are not the representative
    # are its ``to_representative`` entries.
    members_sorted = np.flatnonzero(cluster >= 0)
    members_sorted = members_sorted[np.argsort(cluster[members_sorted], kind="stable")]
    member_bounds = np.searchsorted(cluster[members_sorted], numbers)
    copies = members_sorted[members_sorted != representative[cluster[members_sorted]]]
    copy_bounds = np.searchsorted(cluster[copies], numbers)
    copy_ids = take_values(id_column, copies)
    rep_ids = take_values(id_column, representative)
    copy_rep_ids = [rep_ids[k] for k in cluster[copies].tolist()]
    copy_relations = RELATION_NAMES[to_rep_relation[copies]].tolist()
    relation_of = dict(zip(copy_ids, copy_relations, strict=True))
    removed = set(config.remove)
    duplicate_of = {
        copy_id: rep_id
        for copy_id, rep_id, relation in zip(copy_ids, copy_rep_ids, copy_relations, strict=True)
        if relation in removed
    }
    to_representative = [
        pa.array(copy_ids, pa.large_string()),
        _rounded(to_rep_jaccard[copies]),
        _rounded(to_rep_containment[copies]),
        pa.array(copy_relations, pa.string()),
    ]
    clusters = pd.DataFrame(
        {
            "cluster_id": pd.array([f"c{number:06d}" for number in range(len(representative))], dtype="str"),
            "representative": pd.array(rep_ids, dtype="str"),
            "members": _column(
                pa.ListArray.from_arrays(
                    pa.array(member_bounds, pa.int32()), _ids_at(id_column, members_sorted)
                )
            ),
            "size": np.diff(member_bounds).astype(np.int64),
            "to_representative": _column(
                _lists(copy_bounds, to_representative, ["id", "jaccard", "containment", "relation"])
            ),
            "similarities": _column(_lists(edge_bounds, list(edge_columns.values()), EDGE_COLUMNS)),
        },
        columns=CLUSTER_COLUMNS,
    )
    if len(inside):
        edge_frame = pd.DataFrame(
            {
                "a": _column(edge_columns["a"]),
                "b": _column(edge_columns["b"]),
                "jaccard": edge_columns["jaccard"].to_numpy(),
                "containment": edge_columns["containment"].to_numpy(),
                "relation": _column(edge_columns["relation"]),
                # As a frame of dicts had it: float64 with NaN, or None (object) when no title.
                "title_similarity": pd.Series(edge_columns["title_similarity"].to_pylist()),
            },
            columns=EDGE_COLUMNS,
        )
    else:
        edge_frame = pd.DataFrame([], columns=EDGE_COLUMNS)
    return DedupResult(
        clusters, edge_frame, duplicate_of, relation_of, stats={"weak_edges": len(edges) - len(inside)}
    )


def find_duplicates(
    records: pd.DataFrame,
    config: DedupConfig | None = None,
    completeness: Callable[[int], tuple] | None = None,
    engine: Engine | None = None,
    signed: Signed | None = None,
) -> DedupResult:
    """Cluster duplicate records; needs ``id`` and ``text`` (``norm_text`` is used when present).

    ``completeness(row)`` ranks copies (higher is more complete); the best is the
    representative, ties going to the earliest row. ``engine`` signs, finds candidates,
    verifies pairs and labels components (default :class:`audit.dedup.engine.LocalEngine`);
    the chaining guard's rounds and the output rows run here, and the result does not depend
    on the engine. ``signed``: the rows already signed with these settings (an indexed run
    signs its records once, for the index and for this), handed to the engine by ``engine.held``.
    """
    engine = engine or LocalEngine()
    config = config or DedupConfig()
    clock = _Stopwatch()
    count = len(records)  # ids and titles are read for clustered rows only, by ``_output``
    normalised = "norm_text" in records
    # The texts stay a pandas column: each signing batch takes its slice as Python strings
    # (in the worker that signs it), so no list of every text is built in this process.
    texts = records["norm_text" if normalised else "text"]

    # 1. Normalise (unless done), shingle and sign every text, in batches on all cores.
    # Band keys are made in the workers; the signatures themselves are not kept.
    banding = config.banding()
    settings = replace(
        config.signer(),
        normalise=not normalised,
        banding=banding,
        prefix_banding=config.prefix_banding,
        keep_signatures=False,
    )
    if signed is None:
        signed = engine.sign_held(texts, settings)  # shingles and band keys stay with the engine
    counts = signed.counts
    clock.lap("sign")

    # 2. Exact copies: one leader per distinct normalised text; empty texts are never copies.
    leader_row = first_of_equal(signed.text_hashes)
    is_first = leader_row == np.arange(count)
    follower = np.flatnonzero((counts > 0) & ~is_first)
    leaders = np.flatnonzero(is_first & (counts > 0))
    clock.part("exact_copies")

    # 3. Candidates among leaders from both signatures, each verified (numpy, all pairs at once).
    candidates = engine.candidates(signed, leaders)  # whole-text bands, then prefix bands: one search
    clock.part("band_buckets")  # the bands' buckets, their pairs, duplicate pairs removed
    clock.lap("candidates")
    # Verified where the shingles are (this process: compiled, straight from the shingles in text
    # order; a cluster: on the workers); every cluster's leaders are among the candidates.
    verify = engine.verifier(signed, sorted_unique(candidates.ravel()))
    del signed  # its band keys (8 bytes per band and text) are no longer needed
    verified = verify(candidates[:, 0], candidates[:, 1], config.threshold, None)
    found = verified.relation > 0
    edge_a = np.concatenate((leader_row[follower], candidates[found, 0]))
    edge_b = np.concatenate((follower, candidates[found, 1]))
    exact = np.ones(len(follower))
    edge_jaccard = np.concatenate((exact, verified.jaccard[found]))
    edge_containment = np.concatenate((exact, verified.containment[found]))
    edge_relation = np.concatenate((np.full(len(follower), EXACT_DUPLICATE, object), verified.names()[found]))
    clock.lap("verify")

    # 4. Clusters, split where a member is no duplicate of its representative. Each member's
    # last comparison with a representative is kept: the final one is its ``to_representative``.
    chain_threshold = config.threshold - config.chain_slack
    to_rep_jaccard, to_rep_containment = np.ones(count), np.ones(count)
    # Relation codes (:data:`RELATION_NAMES`): an object array of a million names took ~0.2 s to fill.
    to_rep_relation = np.full(count, _EXACT_CODE, dtype=np.int8)

    # The chaining guard compares members with their representative, and most of those pairs
    # are candidates verified already: their numbers are looked up (at the guard's near
    # threshold, :func:`audit.dedup.verify.at_near_threshold`), not verified again; where the
    # answer depends on the pair's order, only when the representative is the pair's first row.
    candidate_codes = candidates[:, 0] << 32 | candidates[:, 1]  # sorted: candidates are
    guard_relation, order_matters = at_near_threshold(verified, config.threshold, chain_threshold)

    def compare(reps: np.ndarray, members: np.ndarray, verify: Callable = verify) -> np.ndarray:
        lead_rep, lead_member = leader_row[reps], leader_row[members]
        differ = np.flatnonzero(lead_rep != lead_member)
        pair_rep, pair_member = lead_rep[differ], lead_member[differ]
        codes = np.minimum(pair_rep, pair_member) << 32 | np.maximum(pair_rep, pair_member)
        at, known = np.zeros(len(codes), np.int64), np.zeros(len(codes), bool)
        if len(candidate_codes):
            at = np.minimum(np.searchsorted(candidate_codes, codes), len(candidate_codes) - 1)
            known = (candidate_codes[at] == codes) & (~order_matters[at] | (pair_rep < pair_member))
        unknown = np.flatnonzero(~known)
        result = verify(pair_rep[unknown], pair_member[unknown], config.threshold, chain_threshold)
        to_rep_jaccard[members] = 1.0
        to_rep_containment[members] = 1.0
        to_rep_relation[members] = _EXACT_CODE
        looked_up = members[differ[known]]
        to_rep_jaccard[looked_up] = verified.jaccard[at[known]]
        to_rep_containment[looked_up] = verified.containment[at[known]]
        to_rep_relation[looked_up] = guard_relation[at[known]]
        verified_now = members[differ[unknown]]
        to_rep_jaccard[verified_now] = result.jaccard
        to_rep_containment[verified_now] = result.containment
        to_rep_relation[verified_now] = result.relation
        return to_rep_relation[members] != RELATION_CODES.index(None)

    edges = np.column_stack((edge_a, edge_b)).astype(np.int64)
    in_graph = sorted_unique(edges)
    clock.part("graph")  # the edges as one array, the rows in them, the guard's lookups
    rank = _rank(in_graph, completeness, records)
    clock.part("rank")
    labels = engine.components(count, edges)
    clock.part("components")
    cluster, representative = split_chains_bulk(count, edges, rank, compare, engine.components, labels)
    components_count = int(np.count_nonzero(np.bincount(labels) > 1))
    del compare, verify  # the shingles are done with: freed before the output's Python objects
    clock.part("chain_guard")  # its rounds, with their verification of members against representatives
    clock.lap("cluster")

    result = _output(
        records["id"], records.get("title"), config, edges, edge_a, edge_b, edge_jaccard,
        edge_containment, edge_relation, cluster, representative, to_rep_jaccard, to_rep_containment,
        to_rep_relation,
    )  # fmt: skip
    clock.lap("output")  # cluster rows and edges as Arrow columns, title similarities
    relations = pd.Series(edge_relation, dtype=object).value_counts().to_dict()
    stats = {
        "records": count,
        "distinct_texts": len(leaders),
        "shingles": int(counts.sum()),  # in text order, repeats included
        "candidate_pairs": len(candidates),
        "edges": {str(k): int(v) for k, v in relations.items()},
        "components": components_count,
        "clusters": len(representative),
        "chain_splits": len(representative) - components_count,
        "weak_edges": result.stats["weak_edges"],
        "banding": {
            "bands": banding.bands,
            "rows": banding.rows,
            "false_negative_rate_at_threshold": banding.false_negative_rate(config.threshold),
        },
        "prefix_banding": {"bands": config.prefix_banding.bands, "rows": config.prefix_banding.rows},
        "seconds": clock.laps,
        "cpu_seconds": clock.cpu_laps,  # this process only (signing workers not counted)
        # Issue 3's "LSH bucketing + clustering": the whole of both stages, from the signed
        # corpus to each record's cluster (grouping exact copies, bucketing both signatures'
        # bands, removing duplicate pairs; ranking copies, components, the chaining guard with
        # its own verification). Not in it: signing, verifying the candidates, the output rows.
        "lsh_bucketing_and_clustering": clock.total(("candidates", "cluster")),
    }
    result.stats = stats
    return result
