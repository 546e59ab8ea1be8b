"""Running independent pieces of work on every core, with big shared input inherited by fork.

The shared input (a records frame, the clusters) is inherited by forked children from
copy-on-write memory instead of being pickled to them; only each piece's result is pickled
back. This process works too: it and ``workers - 1`` children take the next piece in turn, so
the pieces this process takes (the first: put the one with the largest result first) are never
pickled. Where ``fork`` is unavailable (Windows, macOS default ``spawn``), inside a daemonic
process (a pool worker), or when one worker is asked for, the work runs in this process alone,
with the same result.

Example:
    >>> forked_map(pow, 2, [3, 4, 5], workers=1)
    [8, 16, 32]
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Looks at the runnable tasks, and the seconds between them, before a core counts as busy.
LOOKS, LOOK_GAP = 3, 0.01


def idle_cores() -> float:
    """Cores no other job is running on right now: the cores less the runnable tasks of
    ``/proc/loadavg`` besides this one, the fewest of :data:`LOOKS` looks (a task that ran for
    an instant, such as a shell command, does not make the run go serial); elsewhere the
    1-minute load average."""
    try:
        seen = []
        for look in range(LOOKS):
            if look:
                time.sleep(LOOK_GAP)
            with open("/proc/loadavg", encoding="ascii") as handle:
                seen.append(int(handle.read().split()[3].split("/")[0]) - 1)  # this process is one
        running = min(seen)
    except (OSError, ValueError, IndexError):
        try:
            running = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): assume the cores are free
            running = 0
    return cores() - running


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off inside the block (and in children forked there).

    For work that allocates many containers that stay alive (findings and their evidence dicts):
    each collection would walk every live object again, for no garbage. Objects that become
    unreachable are still freed by reference counting; only cycles wait for the next collection.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Counter:
    """The index of the next piece to take, shared by this process and its forked children."""

    def __init__(self, context: Any) -> None:
        self._value = context.Value("q", 0)

    def take(self) -> int:
        with self._value.get_lock():
            index = self._value.value
            self._value.value = index + 1
        return index


def _take_all(
    function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], counter: _Counter
) -> dict[int, Result]:
    """Take the next piece until none is left; the results by the pieces' index."""
    done = {}
    index = counter.take()
    while index < len(items):
        done[index] = function(shared, items[index])
        index = counter.take()
    return done


def _child(
    function: Callable[[Any, Item], Result],
    shared: Any,
    items: Sequence[Item],
    counter: _Counter,
    writer: Connection,
) -> None:
    """A forked child's work: its pieces' results, a message each, then ``done``; or the error
    that stopped it. One message per piece: the parent unpickles one piece's result at a time
    (all of them in one message held the message and its unpickled copy at once: for the
    checks at a million records, about half of the 370 MB of findings, twice)."""
    try:
        done = _take_all(function, shared, items, counter)
    except BaseException as error:  # every error goes back to the parent
        done, failure = {}, error
    else:
        failure = None
    try:
        if failure is not None:
            writer.send(("error", failure))
        else:
            for index in list(done):
                writer.send(("piece", (index, done.pop(index))))
            writer.send(("done", None))
    except Exception as error:  # an error or a result that does not pickle
        status = "error" if failure is not None else "done"
        writer.send(("error", RuntimeError(f"{status}: could not send back: {error!r}")))
    writer.close()


def _receive(child: Any, reader: Connection, results: dict[int, Any]) -> None:
    """A child's results, a piece at a time, into ``results``; its error raised here."""
    while True:
        try:
            status, payload = reader.recv()
        except EOFError:
            child.join(timeout=1)
            message = f"a worker process ended without a result (exit code {child.exitcode})"
            raise RuntimeError(message) from None
        if status == "error":
            raise payload
        if status == "done":
            return
        index, result = payload
        results[index] = result


def forked_map(
    function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], workers: int
) -> list[Result]:
    """``[function(shared, item) for item in items]``, on this process and up to ``workers - 1``
    forked children; results come back in the order of ``items``. An error in a child is raised here.
    """
    workers = min(workers, len(items))
    # A daemonic process (a pool worker, e.g. of a Dask or executor engine) may not have children.
    daemon = multiprocessing.current_process().daemon
    if workers <= 1 or daemon or "fork" not in multiprocessing.get_all_start_methods():
        return [function(shared, item) for item in items]
    fork = multiprocessing.get_context("fork")
    counter = _Counter(fork)
    children = []
    # The objects alive now are never collected in a child: a collection there would touch them
    # all and copy every page of this process's heap.
    gc.freeze()
    try:
        for _ in range(workers - 1):
            reader, writer = fork.Pipe(duplex=False)
            child = fork.Process(target=_child, args=(function, shared, items, counter, writer), daemon=True)
            child.start()
            writer.close()
            children.append((child, reader))
        results = _take_all(function, shared, items, counter)
        for child, reader in children:
            _receive(child, reader, results)
    finally:
        for child, reader in children:
            reader.close()
            # After a result, the child is ending by itself; after an error here, it is stopped.
            child.join(timeout=1)
            if child.is_alive():
                child.terminate()
                child.join()
        gc.unfreeze()
    return [results[index] for index in range(len(items))]
