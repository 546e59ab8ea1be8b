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


def releasing(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` as a worker task that gives the memory its work freed back to the OS."""

    @functools.wraps(function)
    def task(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            release_memory()

    return task


#: A worker's memory model, measured with a sampler on the workers of whole runs (RSS, and the
#: results Dask holds, every 0.2 s; ``unmanaged`` = RSS - results in memory) on 2 workers, in MiB.
#: What stays unmanaged between tasks, above the worker's imports:
#:
#: ===========================  ======================  ==========================
#: corpus (input per worker)    16 MiB partitions       4 MiB partitions
#: ===========================  ======================  ==========================
#: seeds/ (0.8 MB, 1 worker)    +75                     (one partition per file)
#: 10k (14 MB, one partition)   +197 (the worker that   —
#:                              held it; +20 the other)
#: 100k (70 MB)                 +208, +226              +157, +157 (+148, +142 under
#:                                                      a 650 MB limit, spilling)
#: 1M (706 MB)                  ~+350 (paused, every    see the README
#:                              result spilled)
#: ===========================  ======================  ==========================
#:
#: So: a fixed part (kernels compiled, caches, Dask's own state; the run on seeds), a part that
#: follows the partition size (what a partition's tasks leave in the allocators: 16 -> 4 MiB
#: partitions left ~55 MiB less), and a part that grows with the input a worker holds (100k
#: -> 1M: +125-140 MiB at the same partition size).
#: The fixed part: :data:`RUN_FIXED`; the others per byte below.
RUN_FIXED = 135 << 20
#: What a worker keeps per byte of its partitions after their tasks ended (fragmentation the
#: release cannot hand back: ~55 MiB between 4 and 16 MiB partitions, ~5 bytes a byte).
RESIDUE_PER_PART_BYTE = 5
#: A task's working memory per byte of its partition's JSON Lines (measured: reading a 16 MB
#: partition took ~106 MB at its peak, signing it ~65 MB, its record checks ~35 MB).
WORK_PER_PART_BYTE = 7
#: What a worker keeps per byte of input it holds (the corpus's bytes over the workers): the
#: residue's growth from 100k to 1M records at 16 MiB partitions (~135 MiB for 636 MiB more
#: input per worker).
RESIDUE_PER_INPUT_BYTE = 0.2
#: The smallest partition a run is cut into under a memory limit: below it, the tasks' overhead
#: (a Dask task, a pickled frame, a context row per partition) outweighs the memory saved.
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
