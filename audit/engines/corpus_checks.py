"""The checks that look beyond one record, on a corpus held in partitions (:mod:`audit.engines.shards`).

- **truncation**: what it needs of the whole corpus is gathered first, as the local run's
  batches gather it (:func:`_census`): the number of distinct values of each length (per field,
  as (length, XXH64) rows, so no text comes back) gives each field's length limit
  (:meth:`TruncationCheck.limit_of`); the last words a value may end in are asked of every
  partition's vocabulary (a word is a fragment when no partition has it, and its longer word is
  the smallest any partition has). Each partition then runs the check itself with those values
  (:meth:`TruncationCheck.corpus_values`). The proven cut-off copies need a cluster's members
  together: their texts are shuffled on the cluster (dask.dataframe) and
  :meth:`TruncationCheck._proven_findings` runs on each cluster where it lands.
- **conflicting_copies**: each partition gives a hash of every record's title and url keys;
  the rows sharing a key with a record of another cluster are the only ones the check can
  report. Those rows (with their texts) are shuffled on ``(kind, key)`` so that a key's group
  lands in one partition, where :meth:`ConflictingCopiesCheck.group_findings` reports it; only
  the findings come back, put in the check's order (kind, then the group's first row).

The findings are those of one run over every record, in the same order.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks import CheckContext, make_check
from audit.checks.base import FindingRow, finding_rows
from audit.checks.conflicting_copies import ConflictingCopiesCheck, _url_key, shared_rows_of_kind
from audit.checks.truncation import Vocabulary, distinct_length_counts, ending_words, length_digests
from audit.engines.held_findings import pack
from audit.engines.worker_memory import releasing

try:
    import dask
    import dask.dataframe as dd
    from distributed import Future
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

from audit.engines.shards import Shards

_INFLECTIONS = ("", "s", "es")  # a word counts as present with these endings (Vocabulary.is_fragment)
_PROVEN_META = pd.DataFrame(
    {"cluster": pd.Series(dtype=np.int64), "seq": pd.Series(dtype=np.int64), "row": pd.Series(dtype=object)}
)
_MEMBER_META = pd.DataFrame(
    {
        "cluster": pd.Series(dtype=np.int64),
        "order": pd.Series(dtype=np.int64),
        "id": pd.Series(dtype=object),
        "text": pd.Series(dtype=object),
        "title": pd.Series(dtype=object),
    }
)
_CONFIG = {"dataframe.convert-string": False}


def _census(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """A partition's distinct title and text lengths (:func:`length_digests`) and every word a
    value may end in (:func:`ending_words`): what the local run's batches send (audit.checks.batches)."""
    titles, texts = frame["title"], frame["text"]
    return length_digests(titles), length_digests(texts), ending_words([titles, texts])


def partition_values(
    frame: pd.DataFrame, census: bool, conflicting: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What the corpus checks need of a partition alone, made in the record checks' pass over it
    (a partition is read once for all: a spilled one comes back from disk once): truncation's
    :func:`_census` and conflicting_copies' :func:`_key_hashes` with its options ``conflicting``
    (None: not run)."""
    values: dict[str, Any] = {}
    if census:
        values["census"] = _census(frame)
    if conflicting is not None:
        values["keys"] = _key_hashes(frame, conflicting)
    return values


@releasing
def _word_census(frame: pd.DataFrame, words: list[str]) -> tuple[np.ndarray, dict[int, str]]:
    """For each of ``words``: whether this partition has it (or an inflection) inside a value, and
    (by its number, for those that have one) the smallest longer word of the partition beginning
    with it."""
    vocabulary = Vocabulary(frame["title"].tolist() + frame["text"].tolist())
    found, ordered = vocabulary.words, sorted(vocabulary.words)
    present = np.zeros(len(words), bool)
    longer: dict[int, str] = {}
    for n, word in enumerate(words):
        low = word.lower()
        if any(low + ending in found for ending in _INFLECTIONS):
            present[n] = True
            continue
        at = bisect.bisect_right(ordered, low)
        if at < len(ordered) and ordered[at].startswith(low):
            longer[n] = ordered[at]
    return present, longer


class _Fragments:
    """The corpus vocabulary's answers, worked out beforehand: what ``Vocabulary.fragments`` gives."""

    def __init__(self, longer_of: dict[str, str | None]) -> None:
        self.longer_of = longer_of

    def fragments(self, words: set[str]) -> dict[str, str | None]:
        return {word: self.longer_of.get(word) for word in words}


@releasing
def _truncation_part(
    frame: pd.DataFrame, options: Mapping[str, Any], longer_of: dict[str, str | None], limits: dict
) -> bytes:
    """The truncation check on one partition, with the whole corpus' vocabulary and limits (its
    rows :func:`pack`'d)."""
    check = make_check("truncation", options)
    vocabulary = _Fragments(longer_of) if check.mid_word else None
    check.corpus_values = lambda titles, texts: (vocabulary, limits)  # type: ignore[method-assign]
    return pack(finding_rows(check.run(frame, CheckContext())))


@releasing
def _members(frame: pd.DataFrame, local: np.ndarray, cluster: np.ndarray, order: np.ndarray) -> pd.DataFrame:
    """Rows ``(cluster, order, id, text, title)`` of this partition's cluster members."""
    return pd.DataFrame(
        {
            "cluster": cluster.astype(np.int64),
            "order": order.astype(np.int64),
            "id": pd.Series(frame["id"].take(local).tolist(), dtype=object),
            "text": pd.Series(frame["text"].take(local).tolist(), dtype=object),
            "title": pd.Series(frame["title"].take(local).tolist(), dtype=object),
        }
    )


@releasing
def _proven(frame: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """Truncation's proven findings of the clusters whose members landed in this partition."""
    if len(frame) == 0:
        return _PROVEN_META.copy()
    frame = frame.sort_values(["cluster", "order"], kind="stable")
    clusters = frame.groupby("cluster", sort=True)["id"].agg(list)
    records = frame[["id", "text", "title"]].reset_index(drop=True)
    check = make_check("truncation", options)
    rows = finding_rows(
        check._proven_findings(records, CheckContext(clusters=pd.DataFrame({"members": clusters})))
    )
    cluster_of = dict(zip(frame["id"].tolist(), frame["cluster"].tolist(), strict=True))
    return pd.DataFrame(
        {
            "cluster": np.asarray([cluster_of[row[0]] for row in rows], np.int64),
            "seq": np.arange(len(rows), dtype=np.int64),
            "row": pd.Series(rows, dtype=object),
        }
    )


def _key_hashes(frame: pd.DataFrame, options: Mapping[str, Any]) -> np.ndarray:
    """:meth:`ConflictingCopiesCheck.key_hashes` of a partition."""
    check = make_check("conflicting_copies", options)
    assert isinstance(check, ConflictingCopiesCheck)
    return check.key_hashes(frame["title"].tolist(), frame["url"].tolist())


#: conflicting_copies' kinds of key, in the order the check reports them.
_KINDS = ("same title", "same url")
_KEYED_META = pd.DataFrame(
    {
        "kind": pd.Series(dtype=np.int8),
        "key": pd.Series(dtype=np.uint64),
        "row": pd.Series(dtype=np.int64),
        "cluster": pd.Series(dtype=np.int64),
        **{name: pd.Series(dtype=object) for name in ("id", "text", "title", "url")},
    }
)
_CONFLICT_META = pd.DataFrame(
    {
        "kind": pd.Series(dtype=np.int8),
        "first": pd.Series(dtype=np.int64),
        "seq": pd.Series(dtype=np.int64),
        "row": pd.Series(dtype=object),
    }
)


@releasing
def _keyed_rows(frame: pd.DataFrame, keyed: pd.DataFrame) -> pd.DataFrame:
    """``keyed`` (kind, key, row, cluster, local) with the fields of each local row of this partition."""
    local = keyed["local"].to_numpy(np.int64)
    fields = {
        name: pd.Series(frame[name].take(local).tolist(), dtype=object)
        for name in ("id", "text", "title", "url")
    }
    return keyed.drop(columns="local").reset_index(drop=True).assign(**fields)


@releasing
def _conflicts(frame: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """conflicting_copies' findings of the key groups that landed in this partition (all rows of
    a key are here), each with its kind and its group's first row."""
    check = make_check("conflicting_copies", options)
    assert isinstance(check, ConflictingCopiesCheck)
    kinds, firsts, seqs, rows = [], [], [], []
    for code, kind in enumerate(_KINDS):
        mine = frame[frame["kind"] == code].sort_values("row", kind="stable")
        if len(mine) < 2:
            continue
        ids, texts, titles = (mine[name].tolist() for name in ("id", "text", "title"))
        key = check._title_key if kind == "same title" else _url_key
        values = [key(v) for v in (titles if kind == "same title" else mine["url"].tolist())]
        clusters = mine["cluster"].to_numpy(np.int64)
        cluster_of = {i: int(c) for i, c in zip(ids, clusters.tolist(), strict=True) if c >= 0}
        at = mine["row"].to_numpy(np.int64)
        for first, found in check.group_findings(kind, values, ids, texts, titles, cluster_of):
            for n, row in enumerate(finding_rows(found)):
                kinds.append(code)
                firsts.append(int(at[first]))
                seqs.append(n)
                rows.append(row)
    return pd.DataFrame(
        {
            "kind": np.asarray(kinds, np.int8),
            "first": np.asarray(firsts, np.int64),
            "seq": np.asarray(seqs, np.int64),
            "row": pd.Series(rows, dtype=object),
        }
    )


class CorpusChecks:
    """The truncation and conflicting_copies findings of a corpus held as :class:`Shards`."""

    def __init__(self, shards: Shards, clusters: pd.DataFrame | None) -> None:
        self.shards = shards
        self.client = shards.client
        self.clusters = clusters if clusters is not None and len(clusters) else None
        #: Per row, its cluster's number (-1: in no cluster of two or more), and its place in its
        #: cluster's list of members.
        self.cluster_of, self.place = self._cluster_rows()

    def _cluster_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`cluster_of` and :attr:`place`, found by Arrow's hashing of the members' ids (no
        Python string per record or member)."""
        cluster_of = np.full(len(self.shards), -1, np.int64)
        place = np.zeros(len(self.shards), np.int64)
        if self.clusters is None:
            return cluster_of, place
        members = pa.Table.from_pandas(self.clusters[["members"]], preserve_index=False)["members"]
        members = members.combine_chunks()
        sizes = pc.list_value_length(members).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        ids = pa.Table.from_pandas(self.shards.compact[["id"]], preserve_index=False)["id"]
        flat = pc.list_flatten(members).cast(pa.large_string())
        rows = pc.index_in(flat, value_set=ids.cast(pa.large_string()).combine_chunks())
        rows = rows.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        numbers = np.repeat(np.arange(len(sizes)), sizes)
        places = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        known = rows >= 0
        cluster_of[rows[known]] = numbers[known]
        place[rows[known]] = places[known]
        return cluster_of, place

    def _per_part(self, rows: np.ndarray) -> list[np.ndarray]:
        """``rows`` (sorted) split by partition, as local row numbers."""
        starts = self.shards.starts
        bounds = np.searchsorted(rows, starts)
        return [rows[bounds[n] : bounds[n + 1]] - starts[n] for n in range(len(starts) - 1)]

    def truncation(self, options: Mapping[str, Any], censuses: list[Future] | None = None) -> list[Future]:
        """Truncation's findings (:func:`pack`'d): one part per partition, held there, then the
        proven copies'.
        ``censuses``: each partition's :func:`_census`, when an earlier pass made them."""
        check = make_check("truncation", options)
        client, frames = self.client, self.shards.frames
        if censuses is None:
            censuses = [client.submit(_census, frame, pure=False) for frame in frames]
        nothing = np.zeros((0, 3), np.uint64)
        titles, texts, words = [nothing], [nothing], set()
        for future in censuses:
            title_lengths, text_lengths, part_words = future.result()
            titles.append(title_lengths)
            texts.append(text_lengths)
            words |= part_words
            future.release()
        limits = {
            name: check.limit_of(distinct_length_counts(np.concatenate(found)))
            for name, found in (("title", titles), ("text", texts))
        }
        longer_of: dict[str, str | None] = {}
        if check.mid_word and words:
            asked = sorted(words)
            [asked_future] = client.scatter([asked], broadcast=True, hash=False)
            present = np.zeros(len(asked), bool)
            smallest: dict[int, str] = {}
            for future in [client.submit(_word_census, frame, asked_future, pure=False) for frame in frames]:
                part_present, part_longer = future.result()
                present |= part_present
                for n, word in part_longer.items():
                    if n not in smallest or word < smallest[n]:
                        smallest[n] = word
            # A word absent from the dict is answered None: present words, and words with no longer one.
            longer_of = {asked[n]: word for n, word in smallest.items() if not present[n]}
        [answers] = client.scatter([longer_of], broadcast=True, hash=False)  # sent once, not per task
        parts = [
            client.submit(_truncation_part, frame, dict(options), answers, limits, pure=False)
            for frame in frames
        ]
        return [*parts, *client.scatter([pack(self._proven(options))], hash=False)]

    def _proven(self, options: Mapping[str, Any]) -> list[FindingRow]:
        """Truncation's cut-off copies proven within clusters, in the order of the clusters."""
        if self.clusters is None:
            return []
        rows = np.flatnonzero(self.cluster_of >= 0)
        if len(rows) == 0:
            return []
        order = self.place
        starts = self.shards.starts
        pieces = [
            self.client.submit(
                _members, frame, local, self.cluster_of[local + start], order[local + start], pure=False
            )
            for frame, local, start in zip(
                self.shards.frames, self._per_part(rows), starts.tolist(), strict=False
            )
            if len(local)
        ]
        with dask.config.set(_CONFIG):
            frame = dd.from_delayed(pieces, meta=_MEMBER_META, verify_meta=False)
            shuffled = frame.shuffle(on="cluster", npartitions=max(1, len(pieces)))
            proven = self.client.compute(
                shuffled.map_partitions(_proven, dict(options), meta=_PROVEN_META)
            ).result()
        proven = proven.sort_values(["cluster", "seq"], kind="stable")
        return list(proven["row"])

    def conflicting_copies(
        self, options: Mapping[str, Any], keys: list[Future] | None = None
    ) -> list[Future]:
        """conflicting_copies' findings, as one part held on a worker (:func:`pack`'d). ``keys``:
        each partition's :func:`_key_hashes`, when an earlier pass made them."""
        return self.client.scatter([pack(self._conflicting_copies(options, keys))], hash=False)

    def _conflicting_copies(
        self, options: Mapping[str, Any], futures: list[Future] | None
    ) -> list[FindingRow]:
        check = make_check("conflicting_copies", options)
        assert isinstance(check, ConflictingCopiesCheck)
        client = self.client
        if futures is None:
            futures = [
                client.submit(_key_hashes, frame, dict(options), pure=False) for frame in self.shards.frames
            ]
        keys = (
            np.concatenate([future.result() for future in futures])
            if futures
            else np.zeros((0, 2), np.uint64)
        )
        # A record's version group: its cluster, or itself (as the check's cluster_of). Only rows
        # sharing a key with a record of another group can be reported: they alone are shuffled.
        own = np.where(self.cluster_of >= 0, self.cluster_of, -1 - np.arange(len(keys)))
        keyed = []
        for code in range(len(_KINDS)):
            rows = shared_rows_of_kind(keys, own, code)
            keyed.append(
                pd.DataFrame(
                    {
                        "kind": np.full(len(rows), code, np.int8),
                        "key": keys[rows, code],
                        "row": rows,
                        "cluster": self.cluster_of[rows],
                    }
                )
            )
        wanted = pd.concat(keyed, ignore_index=True).sort_values("row", kind="stable")
        starts = self.shards.starts
        part_of = np.searchsorted(starts, wanted["row"].to_numpy(), side="right") - 1
        pieces = []
        for n, frame in enumerate(self.shards.frames):
            mine = wanted[part_of == n]
            if len(mine):
                pieces.append(
                    client.submit(_keyed_rows, frame, mine.assign(local=mine["row"] - starts[n]), pure=False)
                )
        if not pieces:
            return []
        with dask.config.set(_CONFIG):
            frame = dd.from_delayed(pieces, meta=_KEYED_META, verify_meta=False)
            shuffled = frame.shuffle(on=["kind", "key"], npartitions=max(1, len(pieces)))
            found = self.client.compute(
                shuffled.map_partitions(_conflicts, dict(options), meta=_CONFLICT_META)
            ).result()
        found = found.sort_values(["kind", "first", "seq"], kind="stable")
        return list(found["row"])
