"""A worker's memory under a ``memory_limit``: tasks that give back what they freed.

Dask spills the results it holds when a worker's process memory passes 70 % of its limit, and
pauses the worker at 80 %. Memory a task freed but the allocators kept (Arrow's mimalloc pool,
glibc's heap: the Python strings of a partition's texts, the JSON parsed at ingest) is neither
a result Dask can spill nor given back to the OS: it is counted as the worker's *unmanaged*
memory. Measured on a 16 MB partition of the benchmark corpus, a task left ~60-70 MB that
way, and a worker doing task after task grew by that much each time, until it sat above the
pause threshold with every result spilled: paused for good, the run stalled. Each task below
hands that memory back when it ends (:func:`audit.frames.release_memory`, ~3 ms), on the thread
that ran it (mimalloc's heaps are per thread).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from audit.frames import release_memory

P = ParamSpec("P")
R = TypeVar("R")


def releasing(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` as a worker task that gives the memory its work freed back to the OS."""

    @functools.wraps(function)
    def task(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            release_memory()

    return task
