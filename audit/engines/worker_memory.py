"""A worker's memory under a ``memory_limit``: tasks that give back what they freed, and the
smallest limit a run over partitions can work in.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import dask

from audit.frames import release_memory

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

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


#: Dask pauses a worker (runs none of its tasks) past this fraction of its memory limit; memory
#: no spill can free that stays above it stalls the run (``distributed.worker.memory.pause``).
PAUSE_FRACTION = 0.8
#: What a worker keeps over a run besides its imports and the results Dask holds, after every
#: task gave back its freed memory: Dask's own state and shuffle buffers, the shingle hashing's
#: cached powers (~40 MB), memory the allocators keep. It grows with the corpus: ~210 MiB at 100k
#: records; at 1M (2 workers, 800 MB limit) the workers sat paused at ~612 MiB with every result
#: spilled, ~350 MiB above their imports. The 1M figure is used: a floor that lets a run stall
#: is worse than one that refuses a limit a small corpus could have run in.
RUN_RESIDUE = 350 << 20
#: A task's working memory per byte of its partition's JSON Lines (measured: reading a 16 MB
#: partition took ~106 MB at its peak, signing it ~65 MB, its record checks ~35 MB).
WORK_PER_PART_BYTE = 7


class MemoryLimitError(ValueError):
    """The workers' memory limit is below what a run over partitions needs."""


def _worker_rss() -> int:
    """This worker's resident memory now, bytes (run on each worker after its imports)."""
    import audit.engines.sharded  # noqa: F401  (what the run's tasks import)

    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))


def memory_floor(baseline: int, part_bytes: int) -> int:
    """The smallest memory limit a worker whose imports take ``baseline`` bytes can run partitions
    of ``part_bytes`` under: its imports, the run's residue and a task's working memory must stay
    under Dask's pause threshold, none of it being a result Dask could spill."""
    return int((baseline + RUN_RESIDUE + WORK_PER_PART_BYTE * part_bytes) / PAUSE_FRACTION)


def check_memory_limits(client: Client, part_bytes: int) -> None:
    """Raise :class:`MemoryLimitError` (naming the floor and why) when a worker's memory limit is
    below :func:`memory_floor` of its measured imports: such a run would stall, its workers paused."""
    limits = {
        address: info.get("memory_limit") for address, info in client.scheduler_info()["workers"].items()
    }
    if not any(limits.values()):
        return
    measured = client.run(_worker_rss)
    for address, limit in limits.items():
        if not limit or address not in measured:
            continue
        floor = memory_floor(measured[address], part_bytes)
        if limit < floor:
            mb = 2**20
            raise MemoryLimitError(
                f"--engine dask: the worker at {address} has a memory limit of {limit // mb} MiB, "
                f"below the {-(-floor // mb)} MiB a run over partitions needs: its interpreter and "
                f"libraries take {measured[address] // mb} MiB (measured), a run leaves ~"
                f"{RUN_RESIDUE // mb} MiB more with it, and a task on a {part_bytes // mb} MiB "
                f"partition works in ~{WORK_PER_PART_BYTE * part_bytes // mb} MiB; none of that can "
                f"be spilled, and Dask pauses a worker at {PAUSE_FRACTION:.0%} of its limit, so the "
                "run would stall. Give each worker a larger memory limit (or none)."
            )


@contextmanager
def local_cluster(workers: int, memory_limit: str | None = None) -> Iterator[LocalCluster]:
    """A LocalCluster of ``workers`` single-threaded processes on 127.0.0.1, as ``--engine dask``
    starts one: Dask's statistical profiler off in the workers (it samples their threads every
    10 ms and keeps a second-by-second history: ~20 MB of unmanaged memory a worker by 100k
    records, and CPU)."""
    from distributed import LocalCluster

    options = {"memory_limit": memory_limit} if memory_limit else {}
    with dask.config.set({"distributed.worker.profile.enabled": False}):  # read as workers start
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **options,
        )
    with cluster:
        yield cluster
