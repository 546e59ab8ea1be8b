"""Running independent pieces of work on every core, with big shared input inherited by fork.

The shared input (a records frame, the clusters) is set as a module global before the pool
forks, so workers read it from copy-on-write memory instead of receiving a pickled copy; only
each piece's result is pickled back. Where ``fork`` is unavailable (Windows, macOS default
``spawn``), inside a daemonic pool worker, or when one worker is asked for, the work runs in
this process, with the same result.

Example:
    >>> forked_map(pow, 2, [3, 4, 5], workers=1)
    [8, 16, 32]
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: The shared input of the running :func:`forked_map`, inherited by its forked workers; set
#: only while a pool runs.
_SHARED: Any = None


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def idle_cores() -> float:
    """Cores no other job is running on right now: the cores less the runnable tasks of
    ``/proc/loadavg`` besides this one (elsewhere the 1-minute load average)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            running = int(handle.read().split()[3].split("/")[0]) - 1  # this process is one
    except (OSError, ValueError, IndexError):
        try:
            running = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): assume the cores are free
            running = 0
    return cores() - running


def _call(args: tuple[Callable[[Any, Any], Any], Any]) -> Any:
    function, item = args
    return function(_SHARED, item)


def forked_map(
    function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], workers: int
) -> list[Result]:
    """``[function(shared, item) for item in items]``, on up to ``workers`` forked processes.

    ``function`` must be a module-level function (it is pickled by name); results come back
    in the order of ``items``.
    """
    global _SHARED
    workers = min(workers, len(items))
    # A daemonic process (a pool worker, e.g. of a Dask or executor engine) may not have children.
    daemon = multiprocessing.current_process().daemon
    if workers <= 1 or daemon or "fork" not in multiprocessing.get_all_start_methods():
        return [function(shared, item) for item in items]
    _SHARED = shared
    try:
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=fork) as pool:
            return list(pool.map(_call, [(function, item) for item in items], chunksize=1))
    finally:
        _SHARED = None
