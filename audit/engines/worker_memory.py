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
under the pause fraction. And a worker below its pause threshold starts a task, whose peak then
rises above it: the worker's memory at pause plus the largest task's peak (:func:`task_peak`)
must stay under the fraction where its nanny restarts it (``terminate``, 95 % by default;
:func:`part_bounds`). Under a limit, a run is cut into the largest partitions that satisfy both
(:func:`partition_bytes`), and refused, naming the one broken, only when the smallest would not.
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
#: A task's peak: the most a worker task rises above the worker's memory at its start, measured
#: per kind of task by ``bench/worker_peaks.py`` (the kernel's high-water mark reset around every
#: task) in whole 100k runs with suites and an index, 2 workers, no limit (MiB; load 12-20):
#:
#: ==========================================  =============  =============
#: task (Dask's name prefix)                   4 MiB parts    16 MiB parts
#:                                             max (median)   max (median)
#: ==========================================  =============  =============
#: expectations (``validate_partition``)       86 (4)         148 (29)
#: index (``entries``)                         30 (13)        128 (61)
#: word census (``word_census``)               40 (30)        99 (93)
#: ingest/read (``ingest``)                    22 (13)        98 (87)
#: sign (``sign_frame``)                       63 (13)        97 (48)
#: write parts (``write_part``)                34 (0)         77 (3)
#: shuffles (``shuffle-transfer``)             18 (4)         74 (23)
#: corpus checks' groups (``conflicts``)       33 (17)        65 (37)
#: record checks (``record_checks``)           22 (18)        65 (63)
#: truncation (``truncation_part``)            50 (15)        58 (50)
#: near-duplicates proven (``proven``)         16 (11)        40 (32)
#: shuffles' outputs (``p2pshuffle``)          15 (2)         36 (2)
#: verification (``verify_partition``)         9 (1)          34 (3)
#: census (``count_lines``)                    8 (8)          32 (32)
#: look_at (``look_at_part``)                  2 (1)          11 (8)
#: the rest (joins, band rows, ...)            < 26           < 26
#: ==========================================  =============  =============
#:
#: None of them stays flat as the partition grows (the shuffles and verification batches are cut
#: as many as the partitions, so they follow them too); the largest rises ~5 x the partition on
#: top of ~65 MiB (expectations; without suites the index or signing, ~60 MiB + 4-8 x). The
#: model is an envelope over every row: :data:`TASK_PEAK_FIXED` + :data:`TASK_PEAK_PER_PART_BYTE`
#: x the partition (88 MiB at 4 MiB, 160 at 16). Between tasks a worker rose ~201 MiB once, before
#: its first (the run's imports, part of the baseline); the rises between later tasks were not
#: told apart from that one in these runs. Checked at 100k, 2 workers x 700MB (668 MiB): the
#: peak's term binds (6.0 MiB partitions; the floor alone: 10.1), the workers peaked at 521 and 549
#: MiB (VmHWM; pause 534, terminate 634), none restarted, outputs as the reference's (load 16).
TASK_PEAK_FIXED = 64 << 20
#: A task's peak per byte of its partition (see :data:`TASK_PEAK_FIXED`).
TASK_PEAK_PER_PART_BYTE = 6


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
    #: The fraction of its limit a worker pauses at (see :attr:`Thresholds.floor`).
    pause: float

    @property
    def unspillable(self) -> int:
        return self.baseline + self.fixed + self.corpus + self.partition

    @property
    def residue(self) -> int:
        """What the worker cannot spill between tasks: the floor less a task's working memory."""
        return self.unspillable - WORK_PER_PART_BYTE * self.part_bytes

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


@dataclass(frozen=True)
class Thresholds:
    """The fractions of its memory limit at which Dask pauses a worker and its nanny restarts it
    (``distributed.worker.memory.pause`` and ``terminate``; None: off)."""

    pause: float | None
    terminate: float | None

    @property
    def floor(self) -> float:
        """The fraction the floor must stay under: ``pause``; with pausing off, ``terminate`` (the
        nanny restarts the worker there); with both off, the limit itself."""
        return self.pause or self.terminate or 1.0


def thresholds(config: Mapping[str, object]) -> Thresholds:
    """The :class:`Thresholds` of a worker whose Dask config ``distributed.worker.memory`` is ``config``."""

    def fraction(name: str) -> float | None:
        value = config.get(name)
        return float(value) if value else None  # type: ignore[arg-type]

    return Thresholds(pause=fraction("pause"), terminate=fraction("terminate"))


def task_peak(part_bytes: int) -> int:
    """The most a worker task rises above the worker's memory at its start, in partitions of
    ``part_bytes`` (see :data:`TASK_PEAK_FIXED`)."""
    return TASK_PEAK_FIXED + TASK_PEAK_PER_PART_BYTE * part_bytes


def task_start(limit: int, floor: MemoryFloor, fractions: Thresholds) -> int:
    """The most a worker holds when it starts a task: just under its pause threshold (it starts
    tasks below it, whatever it holds); with pausing off, what it cannot spill between tasks
    (its floor without a task's work; the rest it spills, at best)."""
    return int(fractions.pause * limit) if fractions.pause else floor.residue


def part_bounds(limit: int, baseline: int, input_per_worker: int, fractions: Thresholds) -> dict[str, int]:
    """The largest partition size each constraint allows a worker with ``limit`` bytes (below 0:
    none): ``floor``, its :func:`memory_floor` under :attr:`Thresholds.floor`; ``peak``, a task's
    peak (:func:`task_peak`) above :func:`task_start` under the terminate threshold (only with
    one: without, nothing restarts the worker)."""
    empty = memory_floor(baseline, 0, input_per_worker, fractions.floor)
    room = fractions.floor * limit - empty.unspillable
    bounds = {"floor": int(room // (RESIDUE_PER_PART_BYTE + WORK_PER_PART_BYTE))}
    if fractions.terminate:
        # The start grows with the partition only with pausing off (by the residue it leaves).
        grows = 0 if fractions.pause else RESIDUE_PER_PART_BYTE
        above = fractions.terminate * limit - task_start(limit, empty, fractions) - TASK_PEAK_FIXED
        bounds["peak"] = int(above // (grows + TASK_PEAK_PER_PART_BYTE))
    return bounds


def fitting_part_bytes(
    limit: int, baseline: int, input_per_worker: int, fractions: Thresholds, largest: int
) -> int | None:
    """The largest partition size, at most ``largest``, that a worker with ``limit`` bytes runs
    under (every one of :func:`part_bounds`); None when not even :data:`MIN_PART_BYTES` fits."""
    fits = min(largest, *part_bounds(limit, baseline, input_per_worker, fractions).values())
    return fits if fits >= min(MIN_PART_BYTES, largest) else None


def _worker_memory() -> tuple[int, Thresholds]:
    """This worker's resident memory after the run's imports (bytes), and its :class:`Thresholds`
    (its own Dask config: the user's, which may differ from the client's)."""
    import audit.engines.sharded  # noqa: F401  (what the run's tasks import)

    status = Path("/proc/self/status").read_text()
    rss = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))
    return rss, thresholds(dask.config.get("distributed.worker.memory"))


def partition_bytes(client: Client, input_bytes: int, largest: int) -> int:
    """The partition size a run of ``input_bytes`` over the workers behind ``client`` is cut into:
    ``largest`` without memory limits, else the largest size (down to :data:`MIN_PART_BYTES`)
    every worker's limit fits (:func:`fitting_part_bytes`). Raises :class:`MemoryLimitError`,
    naming the constraint the smallest size breaks (the floor, or a task's peak) and its parts:
    such a run would stall, or its workers be restarted."""
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
        baseline, fractions = measured[address]
        fits = fitting_part_bytes(limit, baseline, per_worker, fractions, largest)
        if fits is None:
            smallest = min(MIN_PART_BYTES, largest)
            bounds = part_bounds(limit, baseline, per_worker, fractions)
            floor = memory_floor(baseline, smallest, per_worker, fractions.floor)
            if bounds["floor"] < smallest:
                why = (
                    f"below the floor of a run of {input_bytes / 2**20:.0f} MiB of input over "
                    f"{len(workers)} worker(s) in the smallest partitions, {floor.explain()}, "
                    "so the run would stall"
                )
            else:
                why = _peak_explained(limit, floor, fractions)
            raise MemoryLimitError(
                f"--engine dask: the worker at {address} has a memory limit of {limit // 2**20} MiB, "
                f"{why}. Give each worker a larger memory limit (or none), or more workers."
            )
        chosen = min(chosen, fits)
    return chosen


def _peak_explained(limit: int, floor: MemoryFloor, fractions: Thresholds) -> str:
    """Why a task's peak in ``floor``'s partitions restarts a worker with ``limit`` bytes."""
    mb, start, peak = 2**20, task_start(limit, floor, fractions), task_peak(floor.part_bytes)
    terminate = fractions.terminate or 1.0  # set: the peak constraint exists only then
    held = f"its pause threshold ({fractions.pause:.0%})" if fractions.pause else "what it cannot spill"
    return (
        f"too small for a task's peak: a worker starts a task holding up to {start // mb} MiB "
        f"({held}), a task in {floor.part_bytes / mb:.1f} MiB partitions rises ~{peak // mb} MiB "
        f"above that, past the {int(terminate * limit) // mb} MiB where its nanny restarts it "
        f"(terminate, {terminate:.0%} of its limit)"
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
