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
only (:func:`shown`), made as Arrow text on the workers (:meth:`HeldFindings.texts`): those
with a repair (the clean plan applies them), the first
:data:`SHOWN_PER_GROUP` of each severity and check in the order report.html and report.md sort
them, and the first :data:`audit.gate.MAX_ANNOTATIONS` of each check (the gate's annotations).
Every other row's message is None and its evidence None, or ``{"limit": N}`` when the evidence
gives a length limit (the length chart's mark reads it of every finding).
The text columns are dictionary arrays (:data:`LEAN_SCHEMA`: a 4-byte code a finding).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import FindingRow
from audit.checks.table import SCHEMA, FindingTable
from audit.engines.worker_memory import releasing
from audit.gate import MAX_ANNOTATIONS
from audit.report.jsonlines import python_text
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


def _names(values: list[str]) -> pa.DictionaryArray:
    return pa.array(values, pa.string()).dictionary_encode()


@releasing
def _lean(packed: bytes) -> dict[str, Any]:
    """What the calling process gets of one part: the columns it counts (the check, severity and
    field as dictionary arrays: a few names, a code a row), and per row whether it has a repair
    and the length limit its evidence gives (-1: none)."""
    rows: list[FindingRow] = pickle.loads(packed)
    limits = [
        e["limit"] if isinstance(e, dict) and isinstance(e.get("limit"), int) else -1
        for e in (r[5] for r in rows)
    ]
    return {
        "record_id": pa.array([r[0] for r in rows], pa.large_string()),
        "check": _names([r[1] for r in rows]),
        "severity": _names([r[2] for r in rows]),
        "field": _names([r[3] for r in rows]),
        "repaired": np.fromiter((isinstance(r[6], dict) for r in rows), bool, len(rows)),
        "limit": np.asarray(limits, np.int64),
    }


def _take(packed: bytes, local: np.ndarray) -> list[FindingRow]:
    rows: list[FindingRow] = pickle.loads(packed)
    return [rows[n] for n in local.tolist()]


def _repair_text(repairs: list[Any]) -> pa.Array:
    """The repairs' JSON text, null where a finding has none."""
    text = python_text(repairs)
    if any(repair is None for repair in repairs):
        missing = pa.array([repair is None for repair in repairs])
        text = pc.if_else(missing, pa.scalar(None, text.type), text)
    return text.cast(pa.large_string())


@releasing
def _shown_texts(packed: bytes, local: np.ndarray) -> dict[str, pa.Array]:
    """On a worker: :func:`texts_of` the rows ``local`` of a part."""
    return texts_of(_take(packed, local))


def texts_of(rows: list[FindingRow]) -> dict[str, pa.Array]:
    """The message, the evidence's JSON text and the repair's (null: none) of ``rows``, as Arrow
    arrays (made on the workers: the client makes no Python value of them)."""
    return {
        "message": pa.array([row[4] for row in rows], pa.large_string()),
        "evidence": python_text([row[5] for row in rows]).cast(pa.large_string()),
        "repair": _repair_text([row[6] for row in rows]),
    }


@dataclass
class HeldFindings:
    """The findings of a run, held on the workers in parts (in the run's order)."""

    client: Client
    parts: list[Future]
    #: The first finding of each part, then the number of findings.
    starts: np.ndarray

    def __len__(self) -> int:
        return int(self.starts[-1])

    def texts(self, positions: np.ndarray) -> dict[str, pa.Array]:
        """The message, evidence and repair (JSON text) of the findings at ``positions`` (sorted),
        made on the workers that hold them (:func:`_shown_texts`)."""
        bounds = np.searchsorted(positions, self.starts)
        futures = [
            self.client.submit(
                _shown_texts, part, positions[bounds[n] : bounds[n + 1]] - self.starts[n], pure=False
            )
            for n, part in enumerate(self.parts)
            if bounds[n + 1] > bounds[n]
        ]
        columns: dict[str, list[pa.Array]] = {"message": [], "evidence": [], "repair": []}
        for future in futures:
            for name, values in future.result().items():
                columns[name].append(values)
            future.release()
        return {
            name: pa.concat_arrays(arrays) if arrays else pa.array([], pa.large_string())
            for name, arrays in columns.items()
        }


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


def _group_heads(keys: np.ndarray, most: int) -> np.ndarray:
    """Whether each element of ``keys`` (equal keys adjacent) is among the first ``most`` of its run."""
    if not len(keys):
        return np.zeros(0, bool)
    at = np.arange(len(keys))
    begins = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    first = np.repeat(begins, np.diff(np.append(begins, len(keys))))
    return at - first < most


def shown(found: FindingTable, repaired: np.ndarray) -> np.ndarray:
    """Positions of the findings the outputs read whole (see the module's doc), sorted: worked out
    on the table's codes and its Arrow sort, no Python value per finding."""
    if not len(found):
        return np.zeros(0, np.int64)
    checks, severities = found.codes("check"), found.codes("severity")
    # (severity, check) groups in report order (FindingTable.ranked: errors first, then by check
    # name and record id, ties in finding order): each group's first SHOWN_PER_GROUP.
    order = found.ranked()
    group = severities.astype(np.int64) * (int(checks.max()) + 1) + checks
    firsts = order[_group_heads(group[order], SHOWN_PER_GROUP)]
    # Each check's first MAX_ANNOTATIONS findings in finding order (the gate's annotations).
    by_check = np.argsort(checks, kind="stable")
    annotated = by_check[_group_heads(checks[by_check], MAX_ANNOTATIONS)]
    return np.unique(np.concatenate((firsts, annotated, np.flatnonzero(repaired)))).astype(np.int64)


#: The lean frame's text columns: a code per finding into their few distinct texts
#: (:class:`~audit.checks.table.FindingTable` decodes dictionary columns where it reads them).
LEAN_TEXT = pa.dictionary(pa.int32(), pa.large_string())
LEAN_SCHEMA = pa.schema(
    [
        SCHEMA.field("record_id"),
        SCHEMA.field("check"),
        SCHEMA.field("severity"),
        *(pa.field(name, LEAN_TEXT) for name in ("field", "message", "evidence", "repair")),
    ]
)


def _scattered(size: int, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """A column of ``size`` rows: ``values`` at ``positions``, null elsewhere, as a dictionary
    array (4 B a row; decoded, the nulls' offsets alone took 8)."""
    codes = np.zeros(size, np.int32)
    codes[positions] = np.arange(len(positions), dtype=np.int32)
    missing = np.ones(size, bool)
    missing[positions] = False
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=missing), values.cast(pa.large_string()))


def lean_table(held: HeldFindings, columns: dict[str, list[Any]]) -> FindingTable:
    """The lean findings (see the module's doc) of ``held``, given its parts' lean columns."""
    if not len(held):
        return FindingTable.empty()

    def joined(name: str) -> pa.Array:
        return pa.chunked_array(columns.pop(name)).unify_dictionaries().combine_chunks()

    ids = pa.chunked_array(columns.pop("record_id"), pa.large_string()).combine_chunks()
    checks, severities = joined("check"), joined("severity")
    fields = joined("field").cast(LEAN_TEXT)
    repaired, limits = np.concatenate(columns.pop("repaired")), np.concatenate(columns.pop("limit"))
    size = len(ids)
    nothing = pa.DictionaryArray.from_arrays(pa.nulls(size, pa.int32()), pa.array([], pa.large_string()))
    counted = FindingTable(
        pa.Table.from_arrays([ids, checks, severities, fields, nothing, nothing, nothing], schema=LEAN_SCHEMA)
    )
    positions = shown(counted, repaired)
    texts = held.texts(positions)
    # Evidence: the shown rows' own; else {"limit": N} where the evidence gives a limit, else None.
    stubbed = np.flatnonzero(limits >= 0)
    stubbed = stubbed[~np.isin(stubbed, positions)]
    limit_values, limit_codes = np.unique(limits[stubbed], return_inverse=True)
    stubs = python_text([None, *({"limit": int(limit)} for limit in limit_values)]).cast(pa.large_string())
    evidence_codes = np.zeros(size, np.int32)
    evidence_codes[stubbed] = limit_codes.astype(np.int32) + 1
    evidence_codes[positions] = np.arange(len(positions), dtype=np.int32) + 1 + len(limit_values)
    evidence = pa.DictionaryArray.from_arrays(
        pa.array(evidence_codes), pa.concat_arrays([stubs, texts["evidence"]])
    )
    table = pa.Table.from_arrays(
        [
            ids,
            checks,
            severities,
            fields,
            _scattered(size, positions, texts["message"]),
            evidence,
            _scattered(size, positions, texts["repair"]),
        ],
        schema=LEAN_SCHEMA,
    )
    return FindingTable(table)


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
