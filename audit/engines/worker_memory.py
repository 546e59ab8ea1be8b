"""A worker's memory under a ``memory_limit``: tasks that give back what they freed, the
smallest limit a run over partitions can work in, and the partition size a limit allows.

Dask spills the results it holds when a worker's process memory passes a fraction of its limit
(``distributed.worker.memory.spill``, 70 % by default), and pauses the worker past another
(``pause``, 80 %). Memory a task freed but the allocators kept (Arrow's mimalloc pool, glibc's
heap: the Python strings of a partition's texts, the JSON parsed at ingest) is neither a result
Dask can spill nor given back to the OS: it is counted as the worker's *unmanaged* memory.
Measured on a 16 MB partition of the benchmark corpus, a task left ~60-70 MB that way, and a
worker doing task after task grew by that much each time, until it sat above the pause
threshold with every result spilled: paused for good, the run stalled. Each task below hands
that memory back when it ends (:func:`audit.frames.release_memory`, ~3 ms), on the thread that
ran it (mimalloc's heaps are per thread).

What is left still cannot be spilled, and sets a floor (:func:`memory_floor`): the worker's
imports (measured on it), a run's residue (a fixed part, a part per byte of partition, a part
per byte of input the worker holds) and a task's working memory (per byte of partition), all
under the pause fraction. Under a limit, a run is cut into the largest partitions that fit
(:func:`partition_bytes`), and refused only when the smallest would not.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import dask

from audit.frames import release_memory

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

P = ParamSpec("P")
R = TypeVar("R")

#: glibc's ``mallopt`` parameter of the mmap threshold (malloc.h).
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get pages of their own, unmapped when freed (glibc's starting value).
MMAP_THRESHOLD = 128 << 10


def map_large_blocks() -> None:
    """Hold glibc's mmap threshold at :data:`MMAP_THRESHOLD` in this process, for good (a no-op
    without glibc): a block from that size up that the heap's free space cannot hold gets pages
    of its own, unmapped when freed, instead of growing the heap.

    glibc raises the threshold to the size of each such block freed (up to 32 MB): after the
    first few, a run's large buffers (a partition's lines received, the results of its tasks,
    numpy arrays, pickles) grew the heap, where any small block left above them keeps their
    pages from being trimmed. Setting the threshold stops the rise. Called by the client of a
    run over partitions: its peak RSS at 100k 550 -> 502 MB (write step; load 7-9), at 1M
    1,423 -> 1,325 MB (with clean on the workers; load 7-13).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def releasing(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` as a worker task that gives the memory its work freed back to the OS."""

    @functools.wraps(function)
    def task(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            release_memory()

    return task


#: The floor model: what a worker keeps between tasks above its imports (no result Dask can
#: spill), measured by sampling each worker of whole runs every 0.2 s (RSS, and the results Dask
#: holds in memory; unmanaged = the difference, taken when no task runs), 2 workers:
#:
#: =======================================  ==========  ========  ======================
#: run                                      input per   measured  the model: fixed
#:                                          worker                + 5 x partition
#:                                                                + 0.2 x input per worker
#: =======================================  ==========  ========  ======================
#: seeds/ (small files), 1 worker           0.8 MB      +75 MiB   +135
#: 10k, one 14 MB partition (its worker)    14 MB       +197      +208
#: 100k, 16 MiB partitions, no limit        70 MB       +208/226  +229
#: 100k, 4 MiB partitions, no limit         70 MB       +157/157  +169
#: 100k, 4 MiB partitions, 650 MB limit     70 MB       +148/142  +169
#: 1M, 16 MiB partitions, 800 MB limit      706 MB      ~+350     +356
#:   (stalled: paused, every result spilled)
#: =======================================  ==========  ========  ======================
#:
#: The residue follows the partition size (16 -> 4 MiB partitions: ~55 MiB less; what a
#: partition's tasks leave in the allocators) and grows with the input a worker holds (100k ->
#: 1M at 16 MiB partitions: +125-140 MiB for ~636 MB more a worker); the number of partitions
#: a worker holds adds nothing seen (4 MiB partitions, 4x as many: less residue, not more). The rest is
#: fixed (compiled kernels, caches, Dask's state, the verification's and shuffles' buffers):
#: :data:`RUN_FIXED`, the fit's intercept (above the small run's +75 MiB: a floor that lets a
#: run stall is worse than one that refuses a limit a little too early).
RUN_FIXED = 135 << 20
#: What a worker keeps per byte of a partition after its tasks ended (see above).
RESIDUE_PER_PART_BYTE = 5
#: What a worker keeps per byte of input it holds (the input's bytes over the workers; see above).
RESIDUE_PER_INPUT_BYTE = 0.2
#: A task's working memory per byte of its partition's JSON Lines (measured: reading a 16 MB
#: partition took ~106 MB at its peak, signing it ~65 MB, its record checks ~35 MB).
WORK_PER_PART_BYTE = 7
#: The smallest partition a run is cut into under a memory limit (a bound chosen, not measured:
#: each MiB less saves ~12 MiB of floor, but the tasks get many and small: ~700 at 1M).
MIN_PART_BYTES = 2 << 20


class MemoryLimitError(ValueError):
    """The workers' memory limit is below what a run over partitions needs."""


@dataclass(frozen=True)
class MemoryFloor:
    """The smallest memory limit a worker can run partitions of ``part_bytes`` under, and its parts
    (bytes): everything but the results Dask holds must stay under the pause threshold, since
    none of it can be spilled; a worker above it with nothing left to spill stays paused."""

    baseline: int  #: the worker's interpreter and libraries (measured on the worker)
    fixed: int  #: :data:`RUN_FIXED`
    corpus: int  #: :data:`RESIDUE_PER_INPUT_BYTE` x the input per worker
    partition: int  #: (:data:`RESIDUE_PER_PART_BYTE` + :data:`WORK_PER_PART_BYTE`) x the partition
    part_bytes: int
    #: The fraction of its limit a worker pauses at (see :func:`pause_fraction`).
    pause: float

    @property
    def unspillable(self) -> int:
        return self.baseline + self.fixed + self.corpus + self.partition

    @property
    def limit(self) -> int:
        return int(self.unspillable / self.pause)

    def explain(self) -> str:
        mb = 2**20
        return (
            f"{-(-self.limit // mb)} MiB: its interpreter and libraries take {self.baseline // mb} MiB "
            f"(measured), a run keeps ~{self.fixed // mb} MiB more (compiled kernels, caches, Dask's "
            f"state) and ~{self.corpus // mb} MiB for the input it holds, and {self.part_bytes / mb:.1f} "
            f"MiB partitions ~{self.partition // mb} MiB (a task's work and what it leaves); none of "
            f"that can be spilled, and Dask pauses a worker at {self.pause:.0%} of its limit"
        )


def memory_floor(baseline: int, part_bytes: int, input_per_worker: int, pause: float) -> MemoryFloor:
    """The floor of a worker whose imports take ``baseline`` bytes, holding ``input_per_worker``
    bytes of input in partitions of ``part_bytes``, pausing at ``pause`` of its limit."""
    return MemoryFloor(
        baseline=baseline,
        fixed=RUN_FIXED,
        corpus=int(RESIDUE_PER_INPUT_BYTE * input_per_worker),
        partition=(RESIDUE_PER_PART_BYTE + WORK_PER_PART_BYTE) * part_bytes,
        part_bytes=part_bytes,
        pause=pause,
    )


def fitting_part_bytes(
    limit: int, baseline: int, input_per_worker: int, pause: float, largest: int
) -> int | None:
    """The largest partition size, at most ``largest``, that a worker with ``limit`` bytes runs
    under (:func:`memory_floor`); None when not even :data:`MIN_PART_BYTES` fits."""
    room = pause * limit - memory_floor(baseline, 0, input_per_worker, pause).unspillable
    fits = min(largest, int(room // (RESIDUE_PER_PART_BYTE + WORK_PER_PART_BYTE)))
    return fits if fits >= min(MIN_PART_BYTES, largest) else None


def pause_fraction(config: Mapping[str, object]) -> float:
    """The fraction of its limit past which a worker whose Dask config ``distributed.worker.memory``
    is ``config`` stops running tasks: ``pause``; with pausing off, ``terminate`` (its nanny
    restarts it there); with both off, the limit itself."""
    for name in ("pause", "terminate"):
        value = config.get(name)
        if value:
            return float(value)  # type: ignore[arg-type]
    return 1.0


def _worker_memory() -> tuple[int, float]:
    """This worker's resident memory after the run's imports (bytes), and its pause fraction
    (its own Dask config: the user's, which may differ from the client's)."""
    import audit.engines.sharded  # noqa: F401  (what the run's tasks import)

    status = Path("/proc/self/status").read_text()
    rss = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))
    return rss, pause_fraction(dask.config.get("distributed.worker.memory"))


def partition_bytes(client: Client, input_bytes: int, largest: int) -> int:
    """The partition size a run of ``input_bytes`` over the workers behind ``client`` is cut into:
    ``largest`` without memory limits, else the largest size (down to :data:`MIN_PART_BYTES`)
    every worker's limit fits (:func:`fitting_part_bytes`). Raises :class:`MemoryLimitError`,
    naming the floor and its parts, when not even the smallest fits: such a run would stall."""
    workers = client.scheduler_info()["workers"]
    limits = {address: info.get("memory_limit") for address, info in workers.items()}
    if not any(limits.values()):
        return largest
    measured = client.run(_worker_memory)
    per_worker = input_bytes // max(1, len(workers))
    chosen = largest
    for address, limit in limits.items():
        if not limit or address not in measured:
            continue
        baseline, pause = measured[address]
        fits = fitting_part_bytes(limit, baseline, per_worker, pause, largest)
        if fits is None:
            floor = memory_floor(baseline, min(MIN_PART_BYTES, largest), per_worker, pause)
            raise MemoryLimitError(
                f"--engine dask: the worker at {address} has a memory limit of {limit // 2**20} MiB, "
                f"below the floor of a run of {input_bytes / 2**20:.0f} MiB of input over "
                f"{len(workers)} worker(s) in the smallest partitions, {floor.explain()}, so the run "
                "would stall. Give each worker a larger memory limit (or none), or more workers."
            )
        chosen = min(chosen, fits)
    return chosen


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
