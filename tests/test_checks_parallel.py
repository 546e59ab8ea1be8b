"""audit.parallel: the work split between this process and forked children gives the plain map's
result, errors and crashes in a child are raised here, and the paused collector comes back."""

from __future__ import annotations

import gc
import os
import time

import pytest

from audit.parallel import forked_map, paused_gc


def _square_plus(shared: int, item: int) -> int:
    return item * item + shared


def _fail_on_three(shared: int, item: int) -> int:
    if item == 3:
        raise ValueError("three")
    return item


def _crash_in_child(parent: int, item: int) -> int:
    if os.getpid() != parent:
        os._exit(3)  # a child that dies without a word
    time.sleep(0.3)  # this process is slow, so a child takes the next pieces
    return item


def _pid(shared: None, item: int) -> int:
    time.sleep(0.05)
    return os.getpid()


@pytest.mark.parametrize("workers", [1, 2, 3, 9])
def test_forked_map_equals_the_plain_map(workers: int) -> None:
    items = list(range(23))
    assert forked_map(_square_plus, 5, items, workers) == [_square_plus(5, item) for item in items]


def test_forked_map_shares_the_work_with_this_process() -> None:
    pids = set(forked_map(_pid, None, list(range(12)), workers=2))
    assert os.getpid() in pids and len(pids) == 2


def test_an_error_in_any_process_is_raised() -> None:
    with pytest.raises(ValueError, match="three"):
        forked_map(_fail_on_three, 0, list(range(8)), workers=2)


def test_a_child_that_dies_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="without a result"):
        forked_map(_crash_in_child, os.getpid(), list(range(4)), workers=2)


def test_paused_gc_restores_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_context_columns_are_made_once_per_frame_and_never_sent() -> None:
    import pickle

    import pandas as pd

    from audit.checks import CheckContext, run_checks

    records = pd.DataFrame({"id": ["a", "b"], "source": ["s", "s"], "title": ["T", ""], "text": ["x", "y"]})
    context = CheckContext()
    first = context.column(records, "text")
    assert first == ["x", "y"] and context.column(records, "text") is first
    other = records.assign(text=["z", "w"])
    assert context.column(other, "text") == ["z", "w"]  # another frame: its own lists
    assert pickle.loads(pickle.dumps(context))._columns == {}
    fresh = CheckContext()
    run_checks(records, ["empty_or_short"], context=fresh)
    assert fresh._columns == {}  # the run's lists are not left in the caller's context


def _big(shared: int, item: int) -> bytes:
    return bytes([item % 256]) * shared  # each result larger than a pipe's buffer


@pytest.mark.parametrize("workers", [2, 3])
def test_results_larger_than_a_pipe_come_back_a_piece_at_a_time(workers: int) -> None:
    items = list(range(9))
    assert forked_map(_big, 300_000, items, workers) == [_big(300_000, item) for item in items]


def _unpicklable_in_child(parent: int, item: int) -> object:
    if os.getpid() != parent:
        return lambda: item  # a lambda does not pickle
    time.sleep(0.3)  # this process is slow, so a child takes the next pieces
    return item


def test_a_result_that_does_not_pickle_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="could not send back"):
        forked_map(_unpicklable_in_child, os.getpid(), list(range(4)), workers=2)
