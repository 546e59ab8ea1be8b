"""Findings held compactly: one Arrow table, the evidence and repairs already JSON text.

A run over a million records has about 1.5M findings; as Python tuples with evidence and
repair dicts they took 1.3 GB, and were pickled back from the checks' worker process. Here
each piece of the checks' work encodes its findings once into columns, and everything the
pipeline does with them (clean's repairs, the summary, the gate, the writers, the report views)
reads the columns, decoding only the few rows it shows. :class:`FindingTable` is that form.

Schema of :attr:`FindingTable.table` (one row a finding, in the order the checks found them):

=============  ==============================  ============================================
column         Arrow type                      value
=============  ==============================  ============================================
record_id      large_string                    the record's id
check          dictionary<int32, string>       the check's name
severity       dictionary<int32, string>       ``error``, ``warning`` or ``info``
field          string                          the field the finding is about
message        large_string                    what is wrong
evidence       large_string                    the evidence dict as JSON text
repair         large_string (null: none)       the repair dict as JSON text
applied        bool (only after clean)         whether the repair is in the cleaned corpus
=============  ==============================  ============================================

The JSON text is what findings.jsonl holds (:data:`audit.report.jsonlines.REFERENCE`'s
encoding), so the file is written from these columns without decoding them. The DataFrame of
:data:`audit.checks.base.FINDING_COLUMNS` with evidence and repair dicts (``AuditResult.findings``)
is :meth:`FindingTable.frame`, built only when asked for.

Example:
    >>> from audit.checks.base import Finding
    >>> table = FindingTable.of([Finding("r1", "demo", "info", "text", "just a demo", {"offset": 0})])
    >>> table.table["evidence"].to_pylist()
    ['{"offset": 0}']
    >>> table.frame()["evidence"].tolist()
    [{'offset': 0}]
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audit.checks.base import FINDING_COLUMNS, SEVERITIES, Finding
from audit.frames import JsonText, take_chunks
from audit.report.jsonlines import python_text

_STRING = pa.large_string()
_NAME = pa.dictionary(pa.int32(), pa.string())
SCHEMA = pa.schema(
    [
        ("record_id", _STRING),
        ("check", _NAME),
        ("severity", _NAME),
        ("field", pa.string()),
        ("message", _STRING),
        ("evidence", _STRING),
        ("repair", _STRING),
    ]
)
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def _strings(values: Sequence[str | None] | pa.Array, kind: pa.DataType) -> pa.Array:
    return values.cast(kind) if isinstance(values, pa.Array) else pa.array(values, kind)


def _names(values: Sequence[str] | pa.Array) -> pa.Array:
    return _strings(values, pa.string()).dictionary_encode()


def _decode(texts: list[str | None]) -> list[Any]:
    return [None if text is None else json.loads(text) for text in texts]


@dataclass(frozen=True)
class FindingTable:
    """Findings as one Arrow table (see the module docstring for its columns)."""

    table: pa.Table

    @classmethod
    def empty(cls) -> FindingTable:
        return cls(SCHEMA.empty_table())

    @classmethod
    def of(cls, findings: Sequence[Finding] | Sequence[tuple]) -> FindingTable:
        """The table of findings (or plain tuples in the order of :data:`FINDING_COLUMNS`)."""
        if not findings:
            return cls.empty()
        return cls.of_columns(*zip(*findings, strict=True))

    @classmethod
    def of_columns(
        cls,
        record_ids: Sequence[str] | pa.Array,
        checks: Sequence[str] | pa.Array,
        severities: Sequence[str] | pa.Array,
        fields: Sequence[str] | pa.Array,
        messages: Sequence[str | None],
        evidence: Sequence[Any],
        repairs: Sequence[dict[str, Any] | None],
    ) -> FindingTable:
        """The table of findings given column by column (strings as Python values or Arrow
        arrays; evidence and repairs as Python values, a repair None for none)."""
        if not len(record_ids):
            return cls.empty()
        repair_text = python_text(repairs)
        if any(repair is None for repair in repairs):
            missing = pa.array([repair is None for repair in repairs])
            repair_text = pc.if_else(missing, pa.scalar(None, _STRING), repair_text)
        columns = [
            _strings(record_ids, _STRING),
            _names(checks),
            _names(severities),
            _strings(fields, pa.string()),
            _strings(messages, _STRING),
            python_text(evidence).cast(_STRING),
            repair_text.cast(_STRING),
        ]
        return cls(pa.Table.from_arrays(columns, schema=SCHEMA))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> FindingTable:
        """The table of a findings DataFrame (with evidence and repair dicts, maybe ``applied``)."""
        table = cls.of(list(frame[FINDING_COLUMNS].itertuples(index=False, name=None)))
        if "applied" in frame:
            table = table.with_applied(frame["applied"].to_numpy(bool))
        return table

    @classmethod
    def concat(cls, parts: Sequence[FindingTable]) -> FindingTable:
        """The findings of ``parts``, one after the other (their chunks shared, not copied)."""
        tables = [part.table for part in parts if part.table.num_rows]
        if not tables:
            return cls.empty()
        return cls(pa.concat_tables(tables).unify_dictionaries())

    def __len__(self) -> int:
        return self.table.num_rows

    def with_applied(self, applied: np.ndarray) -> FindingTable:
        """This table with the ``applied`` column (replacing one it has)."""
        table = self.table.drop_columns(["applied"]) if "applied" in self.table.column_names else self.table
        return FindingTable(table.append_column("applied", pa.array(np.asarray(applied, bool))))

    def strings(self, name: str) -> pa.ChunkedArray:
        """Column ``name`` as plain strings (the dictionary columns decoded)."""
        column = self.table[name]
        return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column

    def values(self, name: str, rows: np.ndarray | None = None) -> list[Any]:
        """Python values of column ``name`` (at ``rows``); evidence and repair decoded to dicts."""
        if rows is None:
            column: pa.Array | pa.ChunkedArray = self.strings(name)
        else:  # the rows taken first (chunk by chunk: no copy of the column), then decoded
            column = take_chunks(self.table[name], rows)
            if pa.types.is_dictionary(column.type):
                column = column.cast(pa.string())
        values = column.to_pylist()
        return _decode(values) if name in ("evidence", "repair") else values

    def frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The findings (at ``rows``) as the DataFrame of :data:`FINDING_COLUMNS` (and ``applied``),
        evidence and repair as dicts."""
        names = [name for name in (*FINDING_COLUMNS, "applied") if name in self.table.column_names]
        # Dtypes inferred from the Python values, as the frame made from the findings' tuples.
        frame = pd.DataFrame({name: self.values(name, rows) for name in names}, columns=names)
        return frame.astype({"applied": bool}) if "applied" in names else frame

    def repairs(self) -> tuple[np.ndarray, list[str], list[str], list[dict[str, Any]]]:
        """The findings with a repair (a few percent): their rows, record ids, fields and repairs."""
        rows = np.flatnonzero(self.table["repair"].is_valid().to_numpy(zero_copy_only=False))
        return rows, self.values("record_id", rows), self.values("field", rows), self.values("repair", rows)

    def counts(self) -> dict[tuple[str, str], int]:
        """The number of findings of each (check, severity), in order of the pair."""
        if not len(self):
            return {}
        grouped = pa.table({"check": self.strings("check"), "severity": self.strings("severity")})
        counted = grouped.group_by(["check", "severity"]).aggregate([([], "count_all")])
        pairs = zip(counted["check"].to_pylist(), counted["severity"].to_pylist(), strict=True)
        return dict(sorted(zip(pairs, counted["count_all"].to_pylist(), strict=True)))

    def codes(self, name: str) -> np.ndarray:
        """The dictionary column ``name``'s codes: one number per distinct value (in this table)."""
        chunks = self.table[name].unify_dictionaries().chunks if len(self) else []
        parts = [chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunks]
        return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)

    def names(self, name: str) -> list[str]:
        """The values :meth:`codes` numbers, in the order of their codes."""
        if not len(self):
            return []
        return self.table[name].unify_dictionaries().chunk(0).dictionary.to_pylist()

    def applied_count(self) -> int:
        """How many findings' repairs are in the cleaned corpus (0 before clean)."""
        if "applied" not in self.table.column_names or not len(self):
            return 0
        return int(pc.sum(self.table["applied"]).as_py() or 0)

    def mask(
        self, checks: Sequence[str] | None = None, severities: Sequence[str] | None = None
    ) -> np.ndarray:
        """Whether each finding is of one of ``checks`` and ``severities`` (None: any)."""
        keep = np.ones(len(self), bool)
        for name, wanted in (("check", checks), ("severity", severities)):
            if wanted is not None:
                found = pc.is_in(self.strings(name), value_set=pa.array(list(wanted), pa.string()))
                keep &= found.to_numpy(zero_copy_only=False)
        return keep

    def ranked(self) -> np.ndarray:
        """Row positions, errors first, then by check and record id (ties in finding order)."""
        if not len(self):
            return np.zeros(0, np.int64)
        ranks = []
        for chunk in self.table["severity"].chunks:  # a rank per dictionary value, taken by index
            of_value = np.array([_RANK.get(s, len(_RANK)) for s in chunk.dictionary.to_pylist()], np.int8)
            ranks.append(of_value[chunk.indices.to_numpy(zero_copy_only=False)])
        # Checks by their place in name order, as numbers: the names are not decoded per finding.
        names = self.names("check")
        place = {value: n for n, value in enumerate(sorted(set(names)))}
        check_place = np.array([place[value] for value in names], np.int32)[self.codes("check")]
        keys = pa.table(
            {
                "rank": pa.array(np.concatenate(ranks)),
                "check": pa.array(check_place),
                "record_id": self.table["record_id"],
            }
        )
        by = [("rank", "ascending"), ("check", "ascending"), ("record_id", "ascending")]
        order = pc.sort_indices(keys, sort_keys=by)
        return order.to_numpy(zero_copy_only=False).astype(np.int64)

    def batches(self, size: int = 50_000) -> Iterator[dict[str, Any]]:
        """findings.jsonl's rows a slice at a time, as columns for :mod:`audit.report.jsonlines`:
        the evidence and repairs as their JSON text, written as it is."""
        names = [name for name in (*FINDING_COLUMNS, "applied") if name in self.table.column_names]
        for start in range(0, len(self), size):
            part = self.table.slice(start, size)
            columns: dict[str, Any] = {}
            for name in names:
                column = part[name].combine_chunks()
                if pa.types.is_dictionary(column.type):
                    column = column.cast(pa.string())
                if name == "evidence":
                    column = JsonText(column)
                elif name == "repair":
                    column = JsonText(column.fill_null("null"))
                columns[name] = column
            yield columns
