"""The checks that look beyond one record, on a corpus held in partitions (:mod:`audit.engines.shards`).

- **truncation**: what it needs of the whole corpus is gathered first: the number of distinct
  values of each length (per field, as 128-bit hashes, so no text comes back) gives each field's
  length limit (:meth:`TruncationCheck.limit_of`); the last words a value may end in are asked
  of every partition's vocabulary (a word is a fragment when no partition has it, and its
  longer word is the smallest any partition has). Each partition then runs the check itself
  with those values (:meth:`TruncationCheck.corpus_values`). The proven cut-off copies need a
  cluster's members together: their texts are shuffled on the cluster (dask.dataframe) and
  :meth:`TruncationCheck._proven_findings` runs on each cluster where it lands.
- **conflicting_copies**: each partition gives a hash of every record's title and url keys;
  the rows sharing a key with a record of another cluster are the only ones the check can
  report, and it runs here on those rows alone (their texts fetched from the workers).

The findings are those of one run over every record, in the same order.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit.checks import CheckContext, make_check
from audit.checks.base import FindingRow, finding_rows
from audit.checks.conflicting_copies import ConflictingCopiesCheck, shared_key_rows
from audit.checks.truncation import Vocabulary, distinct_lengths, last_words

try:
    import dask
    import dask.dataframe as dd
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
    """A partition's distinct title and text lengths, and every last word a value may end in."""
    titles, texts = frame["title"].tolist(), frame["text"].tolist()
    return distinct_lengths(titles), distinct_lengths(texts), last_words([*titles, *texts])


def _word_census(frame: pd.DataFrame, words: list[str]) -> tuple[np.ndarray, list[str | None]]:
    """For each of ``words``: whether this partition has it (or an inflection) inside a value, and
    the smallest longer word of the partition beginning with it."""
    vocabulary = Vocabulary(frame["title"].tolist() + frame["text"].tolist())
    found, ordered = vocabulary.words, sorted(vocabulary.words)
    present = np.zeros(len(words), bool)
    longer: list[str | None] = [None] * len(words)
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


def _truncation_part(
    frame: pd.DataFrame, options: Mapping[str, Any], longer_of: dict[str, str | None], limits: dict
) -> list[FindingRow]:
    """The truncation check on one partition, with the whole corpus' vocabulary and limits."""
    check = make_check("truncation", options)
    vocabulary = _Fragments(longer_of) if check.mid_word else None
    check.corpus_values = lambda titles, texts: (vocabulary, limits)  # type: ignore[method-assign]
    return finding_rows(check.run(frame, CheckContext()))


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


def _rows_of(frame: pd.DataFrame, local: np.ndarray) -> pd.DataFrame:
    return frame.take(local)[["id", "title", "text", "url"]]


class CorpusChecks:
    """The truncation and conflicting_copies findings of a corpus held as :class:`Shards`."""

    def __init__(self, shards: Shards, clusters: pd.DataFrame | None) -> None:
        self.shards = shards
        self.client = shards.client
        self.clusters = clusters if clusters is not None and len(clusters) else None
        #: Per row, its cluster's number (-1: in no cluster of two or more).
        self.cluster_of = self._cluster_numbers()

    def _cluster_numbers(self) -> np.ndarray:
        cluster_of = np.full(len(self.shards), -1, np.int64)
        if self.clusters is None:
            return cluster_of
        members = self.clusters["members"].tolist()
        ids = [m for group in members for m in group]
        numbers = np.repeat(np.arange(len(members)), [len(group) for group in members])
        rows = pd.Index(self.shards.compact["id"]).get_indexer(ids)
        known = rows >= 0
        cluster_of[rows[known]] = numbers[known]
        return cluster_of

    def _per_part(self, rows: np.ndarray) -> list[np.ndarray]:
        """``rows`` (sorted) split by partition, as local row numbers."""
        starts = self.shards.starts
        bounds = np.searchsorted(rows, starts)
        return [rows[bounds[n] : bounds[n + 1]] - starts[n] for n in range(len(starts) - 1)]

    def truncation(self, options: Mapping[str, Any]) -> list[FindingRow]:
        check = make_check("truncation", options)
        client, frames = self.client, self.shards.frames
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
            name: check.limit_of(Counter(np.unique(np.concatenate(found), axis=0)[:, 0].tolist()))
            for name, found in (("title", titles), ("text", texts))
        }
        longer_of: dict[str, str | None] = {}
        if check.mid_word and words:
            asked = sorted(words)
            [asked_future] = client.scatter([asked], broadcast=True, hash=False)
            present = np.zeros(len(asked), bool)
            for future in [client.submit(_word_census, frame, asked_future, pure=False) for frame in frames]:
                part_present, part_longer = future.result()
                present |= part_present
                for n, word in enumerate(part_longer):
                    if word is not None and (longer_of.get(asked[n]) is None or word < longer_of[asked[n]]):
                        longer_of[asked[n]] = word
            longer_of = {word: None if present[n] else longer_of.get(word) for n, word in enumerate(asked)}
        found: list[FindingRow] = []
        parts = [
            client.submit(_truncation_part, frame, dict(options), longer_of, limits, pure=False)
            for frame in frames
        ]
        for future in parts:
            found += future.result()
            future.release()
        return found + self._proven(options)

    def _proven(self, options: Mapping[str, Any]) -> list[FindingRow]:
        """Truncation's cut-off copies proven within clusters, in the order of the clusters."""
        if self.clusters is None:
            return []
        rows = np.flatnonzero(self.cluster_of >= 0)
        if len(rows) == 0:
            return []
        order = np.zeros(len(self.shards), np.int64)  # each member's place in its cluster's list
        members = self.clusters["members"].tolist()
        ids = [m for group in members for m in group]
        places = np.concatenate([np.arange(len(group)) for group in members])
        at = pd.Index(self.shards.compact["id"]).get_indexer(ids)
        order[at[at >= 0]] = places[at >= 0]
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

    def conflicting_copies(self, options: Mapping[str, Any]) -> list[FindingRow]:
        check = make_check("conflicting_copies", options)
        assert isinstance(check, ConflictingCopiesCheck)
        client = self.client
        frames = self.shards.frames
        futures = [client.submit(_key_hashes, frame, dict(options), pure=False) for frame in frames]
        keys = (
            np.concatenate([future.result() for future in futures])
            if futures
            else np.zeros((0, 2), np.uint64)
        )
        # A record's version group: its cluster, or itself (as the check's cluster_of).
        own = np.where(self.cluster_of >= 0, self.cluster_of, -1 - np.arange(len(keys)))
        rows = shared_key_rows(keys, own)
        pieces = [
            client.submit(_rows_of, frame, local, pure=False)
            for frame, local in zip(self.shards.frames, self._per_part(rows), strict=True)
            if len(local)
        ]
        if not pieces:
            return []
        subset = pd.concat([future.result() for future in pieces], ignore_index=True)
        return finding_rows(check.run(subset, CheckContext(clusters=self.clusters)))
