"""Findings held on the workers, a part at a time; the calling process keeps a lean frame of them.

A run over partitions finds ~1.5 findings per record (1.55M on 1M records), each with its
message and evidence dict: held in the calling process they were larger than the records' compact
columns. Here each check's findings stay where they were made, one part per partition (a part
is a list of :data:`audit.checks.base.FindingRow`, in the order of one run over every record);
the parts of all checks, in the run's order, are the findings. A part is held pickled (a few
hundred bytes a finding instead of ~1 KB of Python objects, and nothing to pickle again when
Dask spills it), pickled by the task that made it (:func:`pack`). findings.jsonl is written
part by part on the workers (:func:`write_findings`) and joined here in order.

What comes back (:func:`lean_table`, a :class:`~audit.checks.table.FindingTable`) is one row
per finding with ``record_id``, ``check``, ``severity`` and ``field`` (what the summary, the
gate and the charts count), and the message, evidence and repair of the rows the outputs read
only (:func:`shown`): those with a repair (the clean plan applies them), the first
:data:`SHOWN_PER_GROUP` of each severity and check in the order report.html and report.md sort
them, and the first :data:`audit.gate.MAX_ANNOTATIONS` of each check (the gate's annotations).
Every other row's message is None and its evidence None, or ``{"limit": N}`` when the evidence
gives a length limit (the length chart's mark reads it of every finding).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from audit.checks.base import FINDING_COLUMNS, SEVERITIES, FindingRow
from audit.checks.table import FindingTable
from audit.engines.worker_memory import releasing
from audit.gate import MAX_ANNOTATIONS
from audit.report.markdown import TOP_FINDINGS
from audit.report.views import MAX_FINDING_ROWS
from audit.report.writers import write_jsonl

try:
    from distributed import Client, Future
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: Rows per severity and check whose message, evidence and repair come back: as many as
#: report.html's table or report.md's top findings may show of one group.
SHOWN_PER_GROUP = max(MAX_FINDING_ROWS, TOP_FINDINGS)
#: Parts being written at once per worker.
WRITE_WINDOW_PER_WORKER = 2


def pack(rows: list[FindingRow]) -> bytes:
    """A part of the findings as it is held: pickled, in the task that made its rows. Held as
    Python objects (tuples, strings, evidence dicts), a part's rows took pymalloc's arenas that
    were not given back once the part was packed and the rows freed (Dask does not count them
    either): at 100k records the workers kept ~50 MB each that way after the checks."""
    return pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)


@releasing
def _lean(packed: bytes) -> dict[str, Any]:
    """What the calling process gets of one part: the columns it counts, and per row whether it
    has a repair and the length limit its evidence gives (-1: none)."""
    rows: list[FindingRow] = pickle.loads(packed)
    limits = [
        e["limit"] if isinstance(e, dict) and isinstance(e.get("limit"), int) else -1
        for e in (r[5] for r in rows)
    ]
    return {
        "record_id": pa.array([r[0] for r in rows], pa.large_string()),
        "check": pa.array([r[1] for r in rows], pa.large_string()),
        "severity": pa.array([r[2] for r in rows], pa.large_string()),
        "field": pa.array([r[3] for r in rows], pa.large_string()),
        "repaired": np.fromiter((isinstance(r[6], dict) for r in rows), bool, len(rows)),
        "limit": np.asarray(limits, np.int64),
    }


def _take(packed: bytes, local: np.ndarray) -> list[FindingRow]:
    rows: list[FindingRow] = pickle.loads(packed)
    return [rows[n] for n in local.tolist()]


@dataclass
class HeldFindings:
    """The findings of a run, held on the workers in parts (in the run's order)."""

    client: Client
    parts: list[Future]
    #: The first finding of each part, then the number of findings.
    starts: np.ndarray

    def __len__(self) -> int:
        return int(self.starts[-1])

    def rows(self, positions: np.ndarray) -> list[FindingRow]:
        """The whole findings at ``positions`` (sorted), from the parts that hold them."""
        bounds = np.searchsorted(positions, self.starts)
        futures = [
            self.client.submit(_take, part, positions[bounds[n] : bounds[n + 1]] - self.starts[n], pure=False)
            for n, part in enumerate(self.parts)
            if bounds[n + 1] > bounds[n]
        ]
        return [row for future in futures for row in future.result()]


def hold(client: Client, parts: list[Future]) -> tuple[HeldFindings, FindingTable]:
    """``parts`` (futures of :func:`pack`'d finding rows, in order) held, and their lean frame."""
    leans = [client.submit(_lean, part, pure=False) for part in parts]
    columns: dict[str, list[Any]] = {}
    for future in leans:
        for name, values in future.result().items():
            columns.setdefault(name, []).append(values)
        future.release()
    sizes = [len(values) for values in columns.get("limit", [])]
    held = HeldFindings(client, parts, np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))))
    return held, lean_table(held, columns)


def shown(frame: pd.DataFrame, repaired: np.ndarray) -> np.ndarray:
    """Positions of the findings the outputs read whole (see the module's doc), sorted."""
    rank = frame["severity"].map({s: n for n, s in enumerate(SEVERITIES)}).to_numpy(np.int64)
    ordered = pd.DataFrame(
        {"rank": rank, "check": frame["check"], "record_id": frame["record_id"], "at": np.arange(len(frame))}
    ).sort_values(["rank", "check", "record_id", "at"], kind="stable")
    firsts = ordered.groupby(["rank", "check"], sort=False).head(SHOWN_PER_GROUP)["at"].to_numpy(np.int64)
    annotated = frame.groupby("check", sort=False).head(MAX_ANNOTATIONS).index.to_numpy(np.int64)
    return np.unique(np.concatenate((firsts, annotated, np.flatnonzero(repaired)))).astype(np.int64)


def lean_table(held: HeldFindings, columns: dict[str, list[Any]]) -> FindingTable:
    """The lean findings (see the module's doc) of ``held``, given its parts' lean columns."""
    if not len(held):
        return FindingTable.empty()

    def joined(name: str) -> pa.Array:
        return pa.chunked_array(columns[name], pa.large_string()).combine_chunks()

    ids, checks, severities, fields = (joined(name) for name in FINDING_COLUMNS[:4])
    repaired, limits = np.concatenate(columns["repaired"]), np.concatenate(columns["limit"])
    message, evidence, repair = ([None] * len(ids) for _ in range(3))
    stubs: dict[int, dict[str, int]] = {}
    for at in np.flatnonzero(limits >= 0).tolist():
        evidence[at] = stubs.setdefault(int(limits[at]), {"limit": int(limits[at])})
    counted = pd.DataFrame({"record_id": ids, "check": checks, "severity": severities}).astype(object)
    positions = shown(counted, repaired)
    for at, row in zip(positions.tolist(), held.rows(positions), strict=True):
        message[at], evidence[at], repair[at] = row[4], row[5], row[6]
    return FindingTable.of_columns(ids, checks, severities, fields, message, evidence, repair)


@releasing
def _write_part(packed: bytes, applied: np.ndarray) -> bytes:
    """One part's lines of findings.jsonl, made on its worker."""
    rows: list[FindingRow] = pickle.loads(packed)
    with tempfile.TemporaryDirectory(prefix="scrape-audit-findings-") as directory:
        path = Path(directory) / "findings.jsonl"
        write_jsonl(FindingTable.of(rows).with_applied(applied).batches(), path)  # as the local run writes it
        return path.read_bytes()


def _written(held: HeldFindings, applied: np.ndarray) -> Iterator[Future]:
    for n, part in enumerate(held.parts):
        start, stop = int(held.starts[n]), int(held.starts[n + 1])
        if stop > start:
            yield held.client.submit(_write_part, part, applied[start:stop], pure=False)


def write_findings(held: HeldFindings, applied: np.ndarray, handle: BinaryIO) -> None:
    """findings.jsonl: each part's lines made on its worker (with its ``applied`` flags), in order."""
    window = WRITE_WINDOW_PER_WORKER * max(1, len(held.client.scheduler_info()["workers"]))
    pending: list[Future] = []
    for future in _written(held, np.asarray(applied, bool)):
        pending.append(future)
        if len(pending) >= window:
            handle.write(pending.pop(0).result())
    for future in pending:
        handle.write(future.result())
