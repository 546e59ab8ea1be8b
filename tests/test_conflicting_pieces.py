"""conflicting_copies in pieces of whole key groups (audit.checks.conflicting_copies.key_pieces,
audit.checks.batches): every piece size and number of processes gives the findings of the
check run once over every record, in the same order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import CheckContext, batches, make_check, run_checks
from audit.checks.conflicting_copies import ConflictingCopiesCheck, _url_key, key_pieces, shared_key_rows
from audit.checks.table import FindingTable

NAME = "conflicting_copies"
#: Texts far apart, and a near copy of the first (the same text by shingles, not equal).
_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
TEXTS = [" ".join(_WORDS[n:] + _WORDS[:n]) * 3 + f" variant {n}" for n in range(6)]
TEXTS.append(TEXTS[0].replace("variant 0", "variant 0 again"))


def _whole(records: pd.DataFrame, clusters: pd.DataFrame | None) -> FindingTable:
    """The plain check, once over every record."""
    return FindingTable.of(make_check(NAME, {}).run(records, CheckContext(clusters=clusters)))


def _pieced(records: pd.DataFrame, clusters: pd.DataFrame | None, workers: int) -> FindingTable:
    return run_checks(records, [NAME], context=CheckContext(clusters=clusters), workers=workers)


def _same(found: FindingTable, expected: FindingTable) -> None:
    pd.testing.assert_frame_equal(found.frame(), expected.frame())


def _records(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """Records of (title, url, text) numbers: titles of three words or none, urls loosely equal
    in several spellings (keys shared across kinds chain the groups)."""
    spellings = ("https://www.site.org/page/{}", "http://site.org/page/{}/", "HTTPS://SITE.ORG/PAGE/{}")
    return pd.DataFrame(
        {
            "id": [f"r{n}" for n in range(len(rows))],
            "title": [f"The Title Number {t}" if t else "" for t, _, _ in rows],
            "url": [spellings[n % 3].format(u) if u else "" for n, (_, u, _) in enumerate(rows)],
            "text": [TEXTS[x] for _, _, x in rows],
        }
    )


def _clusters(records: pd.DataFrame, every: int) -> pd.DataFrame | None:
    """Pairs of records (every ``every + 1``-th with the next: disjoint, as dedup's clusters)
    as dedup clusters, or none."""
    if not every:
        return None
    ids = records["id"].tolist()
    members = [[ids[n], ids[n + 1]] for n in range(0, len(ids) - 1, every + 1)]
    return pd.DataFrame({"members": members}) if members else None


def _chained(groups: int) -> pd.DataFrame:
    """Chains: each record shares its title with the one before and its url with the one after
    (title A with r0, url B with r2, ...), so that every record is in one closed key group."""
    rows = []
    for n in range(groups):
        rows.append((n // 2 + 1, (n + 1) // 2 + 1, n % len(TEXTS)))
    return _records(rows)


@pytest.fixture(autouse=True)
def _small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pieces of a few rows, so that a few dozen records make many pieces.
    monkeypatch.setattr(batches, "CONFLICTING_ROWS", 3)


@pytest.mark.parametrize("workers", [1, 2])
def test_chained_key_groups_in_pieces(workers: int) -> None:
    records = pd.concat([_chained(9), _records([(40 + n % 4, 50 + n % 3, n % 7) for n in range(30)])])
    records = records.reset_index(drop=True).assign(id=lambda frame: [f"r{n}" for n in range(len(frame))])
    for every in (0, 5):
        expected = _whole(records, _clusters(records, every))
        assert len(expected) > 5
        _same(_pieced(records, _clusters(records, every), workers), expected)


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, len(TEXTS) - 1)), max_size=60
    ),
    every=st.integers(0, 4),
    size=st.integers(1, 30),
)
@settings(max_examples=60, deadline=None)
def test_pieces_give_the_findings_of_one_run(rows, every: int, size: int) -> None:
    records = _records(rows)
    clusters = _clusters(records, every)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "CONFLICTING_ROWS", size)
        _same(_pieced(records, clusters, workers=1), _whole(records, clusters))


def test_no_shared_key_and_no_records() -> None:
    records = _records([(n + 1, n + 1, n % 7) for n in range(12)])
    assert len(_pieced(records, None, workers=2)) == 0
    assert len(_pieced(records.iloc[:0], None, workers=2)) == 0
    assert key_pieces(np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), 3) == []


def test_all_records_one_group_is_one_piece() -> None:
    records = _records([(1, n % 2, n % 7) for n in range(20)])
    check = ConflictingCopiesCheck()
    keys = check.key_hashes(records["title"].tolist(), records["url"].tolist())
    rows = shared_key_rows(keys, -1 - np.arange(len(records)))
    assert [piece.tolist() for piece in key_pieces(keys, rows, 3)] == [list(range(20))]
    _same(_pieced(records, None, workers=2), _whole(records, None))


@given(
    keys=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=80),
    size=st.integers(1, 20),
)
@settings(max_examples=100, deadline=None)
def test_key_pieces_are_closed_over_both_keys(keys: list[tuple[int, int]], size: int) -> None:
    array = np.array(keys, np.uint64).reshape(-1, 2)
    rows = np.flatnonzero(np.arange(len(array)) % 3 != 1)  # some rows left out
    pieces = key_pieces(array, rows, size)
    assert sorted(np.concatenate(pieces).tolist()) == rows.tolist() if pieces else not len(rows)
    piece_of = {row: n for n, piece in enumerate(pieces) for row in piece.tolist()}
    for piece in pieces:
        assert len(piece) and (np.diff(piece) > 0).all()
    for kind in range(2):
        for row in rows.tolist():
            for other in rows.tolist():
                if array[row, kind] and array[row, kind] == array[other, kind]:
                    assert piece_of[row] == piece_of[other]
    # A piece is over ``size`` only by its last component (of the latest first row).
    for piece in pieces:
        components = {frozenset(_component(array, rows, row)) for row in piece.tolist()}
        assert set().union(*components) == set(piece.tolist())
        last = max(components, key=min)
        assert len(piece) - len(last) < size


def _component(keys: np.ndarray, rows: np.ndarray, start: int) -> set[int]:
    """The rows reached from ``start`` through shared keys (a plain search, for the test)."""
    reached, todo = {start}, [start]
    while todo:
        row = todo.pop()
        for other in rows.tolist():
            shared = any(keys[row, k] and keys[row, k] == keys[other, k] for k in range(2))
            if other not in reached and shared:
                reached.add(other)
                todo.append(other)
    return reached


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 6)), min_size=2, max_size=40))
def test_kinds_sharing_texts_and_shingles_equal_each_kind_alone(rows: list[tuple[int, int, int]]) -> None:
    """keyed_findings normalises and shingles a row once for both kinds; each kind's findings are
    those of group_findings over the same rows with nothing shared."""
    records = _records(rows)
    ids, texts, titles, urls = (records[name].tolist() for name in ("id", "text", "title", "url"))
    check = ConflictingCopiesCheck()
    found = check.keyed_findings(ids, texts, titles, urls, {})
    alone = []
    for code, (kind, values) in enumerate(
        (("same title", [check._title_key(t) for t in titles]), ("same url", [_url_key(u) for u in urls]))
    ):
        alone += [
            (code, first, group)
            for first, group in ConflictingCopiesCheck().group_findings(kind, values, ids, texts, titles, {})
        ]
    assert [(c, f, [tuple(x) for x in g]) for c, f, g in found] == [
        (c, f, [tuple(x) for x in g]) for c, f, g in alone
    ]
    assert check._shingles == {}
