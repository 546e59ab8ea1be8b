"""Conflicting copies: records that share a title, or a URL, but whose texts differ.

Two records with the same title (or the same url field) and texts that are not duplicates of
each other are likely a new version of the record or a scrape error (a text pasted under the
wrong title). Texts count as the same when they are in one dedup cluster, or equal once
normalised, or (when no dedup ran) their shingle sets reach Jaccard or containment
``same_text_threshold``, dedup's own test. Reported, not removed: each record after the first
of such a group gets a warning naming the others.

Example:
    >>> import pandas as pd
    >>> records = pd.DataFrame({"id": ["a", "b"], "title": ["Deep Nets Work", "deep nets work!"],
    ...     "text": ["One text about nets.", "Another text entirely."], "url": ["", ""]})
    >>> [f.evidence["kind"] for f in ConflictingCopiesCheck().run(records, CheckContext())]
    ['same title']
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xxhash
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from audit.checks.base import Check, CheckContext, Finding, column
from audit.dedup.shingles import hash_batch
from audit.dedup.verify import similarity
from audit.normalise import normalise_text, normalised_body

NAME = "conflicting_copies"
#: The kinds of key, in the order the check reports them (a kind's number is its index).
KINDS = ("same title", "same url")
#: At most this many other ids are listed in a finding's evidence.
MAX_OTHERS = 10


def _url_key(url: str) -> str:
    """A url compared loosely: case, scheme and a trailing slash do not matter."""
    key = url.strip().lower()
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    return key.removeprefix("www.").rstrip("/")


#: Groups compared per batch of shingle hashing (bounds the hashing's working memory).
_GROUP_CHUNK = 2_000
#: Texts shingled and hashed at a time.
_HASH_TEXTS = 1_000


def _key_hash(key: str) -> int:
    """A key's xxh64, odd (never 0: 0 is no key)."""
    return xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass")) | 1 if key else 0


def shared_rows_of_kind(keys: np.ndarray, groups: np.ndarray, kind: int) -> np.ndarray:
    """The rows (ascending) sharing key ``kind`` (column of ``keys``: 0 title, 1 url) with a row
    of another version group."""
    frame = pd.DataFrame({"key": keys[:, kind], "group": groups})
    frame = frame[frame["key"] != 0]
    counts = frame.groupby("key")["group"].nunique()
    shared = counts.index[counts.to_numpy() >= 2]
    return frame.index[frame["key"].isin(shared)].to_numpy(np.int64)


def shared_key_rows(keys: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The rows (ascending) sharing a title or url key with a row of another version group.

    ``keys``: :meth:`ConflictingCopiesCheck.key_hashes` of every record; ``groups``: each
    record's version group (its cluster, or a number of its own). The check run on these rows
    alone finds what it finds on every row: a key group of one version is never reported.
    """
    wanted = np.zeros(len(keys), bool)
    for kind in range(keys.shape[1]):
        wanted[shared_rows_of_kind(keys, groups, kind)] = True
    return np.flatnonzero(wanted)


def key_pieces(keys: np.ndarray, rows: np.ndarray, size: int) -> list[np.ndarray]:
    """``rows`` (ascending) in pieces of about ``size`` rows, each ascending, such that the rows
    sharing a title or url key are in one piece (closed over both keys: a key group is whole
    wherever its rows are reached from). The check run on each piece finds, group by group, what
    it finds on all of ``rows``. A piece is larger than ``size`` only by its last key component.

    ``keys``: :meth:`ConflictingCopiesCheck.key_hashes` of every record (0: no key).
    """
    if not len(rows):
        return []
    at = keys[rows]
    # A graph of the rows and the keys (one node per distinct non-zero key of each kind), an
    # edge from each row to each of its keys: its components are the closed key groups.
    nodes, edges_from, edges_to = len(rows), [], []
    for kind in range(at.shape[1]):
        has = np.flatnonzero(at[:, kind] != 0)
        distinct, number = np.unique(at[has, kind], return_inverse=True)
        edges_from.append(has)
        edges_to.append(nodes + number.reshape(-1))
        nodes += len(distinct)
    sources, targets = np.concatenate(edges_from), np.concatenate(edges_to)
    graph = coo_matrix((np.ones(len(sources), np.int8), (sources, targets)), shape=(nodes, nodes))
    labels = connected_components(graph, directed=False)[1][: len(rows)]
    # Components in order of their first row, packed by the running count of rows before them.
    _, first, component = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sizes = np.bincount(component)[order]
    piece_of = np.empty(len(order), np.int64)
    piece_of[order] = (np.cumsum(sizes) - sizes) // max(1, size)
    row_piece = piece_of[component.reshape(-1)]
    by_piece = np.argsort(row_piece, kind="stable")
    bounds = np.flatnonzero(np.diff(row_piece[by_piece])) + 1
    return [rows[part] for part in np.split(by_piece, bounds)]


@dataclass
class _Shared:
    """What :meth:`ConflictingCopiesCheck.group_findings` calls over the same rows share: each
    row's normalised text, by row and by (text, title)."""

    bodies: dict[int, str] = field(default_factory=dict)
    normalised: dict[tuple[str, str], str] = field(default_factory=dict)


def _each_distinct(function: Callable[[str], str], values: list[str]) -> list[str]:
    """``[function(v) for v in values]``, computed once per distinct value (titles and urls repeat)."""
    done = {value: function(value) for value in dict.fromkeys(values)}
    return [done[value] for value in values]


class ConflictingCopiesCheck(Check):
    name = NAME
    description = "same title or same URL but a different text (a new version or a scrape error)"

    def __init__(self, min_title_words: int = 3, same_text_threshold: float = 0.8) -> None:
        #: Shorter titles ("Introduction") are shared by unrelated records: not compared.
        self.min_title_words = min_title_words
        self.same_text_threshold = same_text_threshold
        self._cluster_of: Mapping[str, Hashable] = {}
        #: Sorted unique shingle hashes of the normalised texts being compared (see _prefetch_shingles).
        self._shingles: dict[str, np.ndarray] = {}

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        ids, texts, titles, urls = (column(records, name, context) for name in ("id", "text", "title", "url"))
        cluster_of: dict[str, str] = {}
        if context.clusters is not None and len(context.clusters):
            for members in context.clusters["members"]:
                cluster_of.update((member, members[0]) for member in members)
        return [
            finding
            for _, _, found in self.keyed_findings(ids, texts, titles, urls, cluster_of)
            for finding in found
        ]

    def keyed_findings(
        self,
        ids: list[str],
        texts: list[str],
        titles: list[str],
        urls: list[str],
        cluster_of: Mapping[str, Hashable],
    ) -> list[tuple[int, int, list[Finding]]]:
        """The findings of each key group: (its kind's number in :data:`KINDS`, its first row,
        its findings), kind by kind, in order of first rows (the order :meth:`run` reports)."""
        values = (_each_distinct(self._title_key, titles), _each_distinct(_url_key, urls))
        # A row in a title group and a url group is normalised and shingled once, for both.
        shared = _Shared()
        try:
            return [
                (code, first, found)
                for code, kind in enumerate(KINDS)
                for first, found in self.group_findings(
                    kind, values[code], ids, texts, titles, cluster_of, shared
                )
            ]
        finally:
            self._shingles = {}

    def group_findings(
        self,
        kind: str,
        values: list[str],
        ids: list[str],
        texts: list[str],
        titles: list[str],
        cluster_of: Mapping[str, Hashable],
        shared: _Shared | None = None,
    ) -> list[tuple[int, list[Finding]]]:
        """The findings of each group of rows sharing a key ``values`` (of ``kind``), with the
        group's first row, in the order of first rows. ``cluster_of``: a record's dedup cluster
        (records of one cluster are one version). A group's findings depend on its rows only.

        ``shared``: the normalised texts and shingles of calls over the same rows (kept until
        the caller drops them); None: kept for a chunk of groups at a time.
        """
        self._cluster_of = cluster_of
        # Texts are normalised only for rows that share a key with another row: the rest are in
        # no group of two or more, so cannot conflict.
        bodies: dict[int, str] = shared.bodies if shared is not None else {}
        normalised: dict[tuple[str, str], str] = shared.normalised if shared is not None else {}
        rows_of: dict[str, list[int]] = defaultdict(list)
        for row, value in enumerate(values):
            if value:
                rows_of[value].append(row)
        groups = []
        for value, rows in rows_of.items():
            if len(rows) < 2 or len({cluster_of.get(ids[row], ids[row]) for row in rows}) < 2:
                continue  # one record, or copies of one dedup cluster: all one version
            for row in rows:
                if row not in bodies:
                    key = (texts[row], titles[row])
                    if key not in normalised:  # copies of a record share it
                        normalised[key] = normalised_body(*key)
                    bodies[row] = normalised[key]
            members = [row for row in rows if bodies[row]]  # an empty text is in no group
            if len(members) > 1:
                groups.append((value, members))
        groups.sort(key=lambda group: group[1][0])  # in order of first member, as rows are read
        found: list[tuple[int, list[Finding]]] = []
        for start in range(0, len(groups), _GROUP_CHUNK):
            chunk = groups[start : start + _GROUP_CHUNK]
            text_of = {ids[row]: bodies[row] for _, members in chunk for row in members}
            if shared is None:
                self._shingles = {}
            self._prefetch_shingles(chunk, ids, text_of)
            for value, members in chunk:
                found.append(
                    (members[0], self._group_findings(kind, value, [ids[m] for m in members], text_of))
                )
        if shared is None:
            self._shingles = {}
        return found

    def key_hashes(self, titles: list[str], urls: list[str]) -> np.ndarray:
        """The hash of each record's title key and url key (0: none), an (n, 2) uint64 array
        (for :func:`shared_key_rows`: computed per batch or partition, no text kept)."""

        def hashes(values: list[str], key: Callable[[str], str]) -> np.ndarray:
            done = {value: _key_hash(key(value)) for value in dict.fromkeys(values)}
            return np.fromiter((done[v] for v in values), np.uint64, len(values))

        return np.stack((hashes(titles, self._title_key), hashes(urls, _url_key)), 1).reshape(-1, 2)

    def _title_key(self, title: str) -> str:
        """The normalised title, or "" for one of fewer than ``min_title_words`` words."""
        key = normalise_text(title)
        return key if len(key.split()) >= self.min_title_words else ""

    def _prefetch_shingles(
        self, groups: list[tuple[str, list[int]]], ids: list[str], text_of: dict[str, str]
    ) -> None:
        """Shingle sets of every member of the groups holding two texts or more, hashed in one batch
        (one call per text cost more than the comparisons themselves)."""
        wanted = []
        for _, rows in groups:
            members = [ids[row] for row in rows]
            if len({text_of[m] for m in members}) < 2:
                continue
            # Only a member with a different text outside its own cluster is ever compared by
            # shingles: counted, not paired, so a group of thousands stays linear.
            keyed = [(text_of[m], self._cluster_of.get(m, m)) for m in members]
            texts, clusters, both = Counter(t for t, _ in keyed), Counter(c for _, c in keyed), Counter(keyed)
            wanted += [
                member
                for member, (text, cluster) in zip(members, keyed, strict=True)
                if len(members) - texts[text] - clusters[cluster] + both[text, cluster] > 0
            ]
        # Each text not shingled yet, once (copies and the other kind's groups share them).
        todo = [
            text for text in dict.fromkeys(text_of[member] for member in wanted) if text not in self._shingles
        ]
        # Hashed a slice of texts at a time: hash_batch's working arrays take ~20 bytes per byte
        # of text (a chunk of large groups held 350 MB of them at 100k records).
        for start in range(0, len(todo), _HASH_TEXTS):
            part = todo[start : start + _HASH_TEXTS]
            sets = hash_batch(part).as_sets()
            self._shingles.update((text, sets.of(n)) for n, text in enumerate(part))

    def _group_findings(
        self, kind: str, value: str, members: list[str], text_of: dict[str, str]
    ) -> list[Finding]:
        if len({text_of[m] for m in members}) < 2:
            return []
        # Versions: each member joins the first earlier version whose text is the same.
        version_of: dict[str, int] = {}
        firsts: list[str] = []
        for record_id in members:
            same = next((n for n, first in enumerate(firsts) if self._same(first, record_id, text_of)), None)
            if same is None:
                same = len(firsts)
                firsts.append(record_id)
            version_of[record_id] = same
        if len(firsts) < 2:
            return []
        findings = []
        field = "title" if kind == "same title" else "url"
        for record_id in firsts[1:]:
            others = [m for m in members if version_of[m] != version_of[record_id]][:MAX_OTHERS]
            findings.append(
                Finding(
                    record_id,
                    NAME,
                    "warning",
                    field,
                    f"{kind} as {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}, different text",
                    {"kind": kind, "match": value, "others": others},
                )
            )
        return findings

    def _same(self, a: str, b: str, text_of: dict[str, str]) -> bool:
        """Records ``a`` and ``b`` hold the same text: one cluster, equal, or similar shingles."""
        cluster = self._cluster_of.get(a)
        if text_of[a] == text_of[b] or (cluster is not None and cluster == self._cluster_of.get(b)):
            return True
        jaccard, containment = similarity(self._shingles[text_of[a]], self._shingles[text_of[b]])
        return max(jaccard, containment) >= self.same_text_threshold
