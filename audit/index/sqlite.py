"""The embedded index: one SQLite file (stdlib ``sqlite3``), WAL mode, one transaction per run.

A run's session is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock before the
first lookup and holds it until the run's additions are committed, so two runs against one
file serialise (the second waits up to ``wait`` seconds, then fails with
:class:`IndexLockedError`), and a run killed at any point leaves the file as it was (SQLite
rolls the uncommitted transaction back on the next open). Readers (``index stats``) are never
blocked (WAL).

Tables: ``meta`` (settings), ``runs`` (one row per committed run), ``records`` (one row per
record of a run, kept or removed; ``ref`` is its number in the index, ``duplicate_of`` the ref
of the kept record a removed one copies) and ``bands`` (``band``, ``key``, ``ref``;
keyed on ``(band, key)`` so a lookup is one index search per key).

Example:
    >>> import tempfile, os
    >>> from audit.dedup import DedupConfig
    >>> path = os.path.join(tempfile.mkdtemp(), "idx.sqlite")
    >>> index = SQLiteIndex(path)
    >>> index.begin(IndexParams.from_config(DedupConfig()), "first")
    1
    >>> index.rollback(); index.stats()["records"]
    0
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.index.base import (
    FETCH_COLUMNS,
    IndexBackend,
    IndexLockedError,
    IndexParams,
    IndexStoreError,
    NewEntries,
    fault_point,
    pack_text,
    unpack_text,
    utc_now,
)

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY, label TEXT NOT NULL, finished TEXT NOT NULL,
    added INTEGER NOT NULL, summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    ref INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(run), id TEXT NOT NULL,
    source TEXT NOT NULL, line INTEGER NOT NULL, title TEXT NOT NULL, url TEXT NOT NULL,
    text_hash INTEGER NOT NULL, norm_text BLOB NOT NULL, signature BLOB NOT NULL,
    prefix_signature BLOB NOT NULL, duplicate_of INTEGER REFERENCES records(ref)
);
CREATE TABLE IF NOT EXISTS bands (
    band INTEGER NOT NULL, key INTEGER NOT NULL, ref INTEGER NOT NULL,
    PRIMARY KEY (band, key, ref)
) WITHOUT ROWID;
"""


class SQLiteIndex(IndexBackend):
    """An index in the SQLite file ``path`` (created on the first :meth:`begin`)."""

    def __init__(self, path: str | os.PathLike[str], wait: float = 60.0, create: bool = True) -> None:
        self.location = str(path)
        self.wait = wait
        if not create and not Path(path).is_file():
            raise IndexStoreError(f"{path}: no index there")
        # isolation_level=None: transactions are begun and ended here, explicitly.
        self._db = sqlite3.connect(self.location, timeout=wait, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            raise self._locked(error) from error
        self._db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut, not only a kill

    def _locked(self, error: sqlite3.OperationalError) -> Exception:
        if "locked" in str(error) or "busy" in str(error):
            return IndexLockedError(
                f"{self.location}: the index is in use by another run (waited {self.wait:g} s for its "
                "lock); try again when it has finished, or wait longer with --index-wait SECONDS"
            )
        return IndexStoreError(f"{self.location}: {error}")

    def _has_schema(self) -> bool:
        found = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
        return found is not None

    def begin(self, params: IndexParams, label: str) -> int:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise self._locked(error) from error
        for statement in SCHEMA.split(";"):  # executescript would commit the open transaction first
            if statement.strip():
                self._db.execute(statement)
        stored = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", SCHEMA_VERSION), ("params", params.to_json()), ("created", utc_now())],
            )
        else:
            if stored.get("schema") != SCHEMA_VERSION:
                self.rollback()
                raise IndexStoreError(
                    f"{self.location}: index schema {stored.get('schema')}, "
                    f"this version reads {SCHEMA_VERSION}"
                )
            try:
                IndexParams.from_json(stored["params"]).check_matches(params, self.location)
            except IndexStoreError:
                self.rollback()
                raise
        (last,) = self._db.execute("SELECT COALESCE(MAX(run), 0) FROM runs").fetchone()
        return int(last) + 1

    def _temp_refs(self, name: str, rows: list[tuple[int, ...]], columns: str) -> None:
        self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns})")
        self._db.execute(f"DELETE FROM {name}")
        placeholders = ", ".join("?" * len(columns.split(",")))
        self._db.executemany(f"INSERT INTO {name} VALUES ({placeholders})", rows)

    def lookup(self, keys: np.ndarray) -> list[int]:
        if len(keys) == 0 or not self._has_schema():
            return []
        unique = np.unique(np.asarray(keys, np.int64).reshape(-1, 2), axis=0)
        self._temp_refs("probe", [(int(b), int(k)) for b, k in unique.tolist()], "band INTEGER, key INTEGER")
        found = self._db.execute(
            "SELECT DISTINCT b.ref FROM probe p JOIN bands b ON b.band = p.band AND b.key = p.key ORDER BY 1"
        ).fetchall()
        return [ref for (ref,) in found]

    def fetch(self, refs: list[int]) -> pd.DataFrame:
        if not refs:
            return pd.DataFrame(columns=FETCH_COLUMNS)
        self._temp_refs("wanted", [(int(r),) for r in refs], "ref INTEGER")
        rows = self._db.execute(
            "SELECT r.ref, r.run, r.id, r.source, r.line, r.title, r.url, r.norm_text, r.duplicate_of "
            "FROM records r "
            "JOIN wanted w ON w.ref = r.ref ORDER BY r.ref"
        ).fetchall()
        frame = pd.DataFrame(rows, columns=FETCH_COLUMNS)
        frame["norm_text"] = [unpack_text(blob) for blob in frame["norm_text"]]
        frame["duplicate_of"] = (
            frame["duplicate_of"].astype(object).where(frame["duplicate_of"].notna(), None)
        )
        return frame

    def reserve(self, count: int) -> int:
        (last,) = self._db.execute("SELECT COALESCE(MAX(ref), 0) FROM records").fetchone()
        return int(last) + 1  # the write lock is held: no other run takes these refs

    def add_run(self, run: int, count: int, summary: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
            (run, summary.get("label", ""), utc_now(), count, json.dumps(summary, sort_keys=True)),
        )

    def add_part(self, entries: NewEntries, run: int, first: int, offset: int) -> None:
        frame = entries.frame
        refs = list(range(first + offset, first + offset + len(frame)))
        reps = [
            None if pd.isna(ref) and pd.isna(row) else int(ref) if pd.notna(ref) else first + int(row)
            for ref, row in zip(frame["rep_ref"], frame["rep_row"], strict=True)
        ]
        self._db.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    ref,
                    run,
                    rid,
                    source,
                    int(line),
                    title,
                    url,
                    int(text_hash),
                    pack_text(norm),
                    sig.tobytes(),
                    prefix.tobytes(),
                    rep,
                )
                for ref, rid, source, line, title, url, text_hash, norm, sig, prefix, rep in zip(
                    refs,
                    frame["id"],
                    frame["source"],
                    frame["line"],
                    frame["title"],
                    frame["url"],
                    frame["text_hash"],
                    frame["norm_text"],
                    entries.signatures,
                    entries.prefix_signatures,
                    reps,
                    strict=True,
                )
            ),
        )
        fault_point("after-records")
        self._db.executemany(
            "INSERT OR IGNORE INTO bands VALUES (?, ?, ?)",
            (
                (int(band), int(key), ref)
                for ref, keys in zip(refs, entries.keys, strict=True)
                for band, key in keys.tolist()
            ),
        )
        fault_point("after-bands")

    def commit(self) -> None:
        fault_point("before-commit")
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def signatures(self, refs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        self._temp_refs("wanted", [(int(r),) for r in refs], "ref INTEGER")
        rows = self._db.execute(
            "SELECT r.signature, r.prefix_signature FROM records r JOIN wanted w ON w.ref = r.ref "
            "ORDER BY r.ref"
        ).fetchall()
        sigs = np.array([np.frombuffer(s, np.uint32) for s, _ in rows]).reshape(len(rows), -1)
        prefix = np.array([np.frombuffer(p, np.uint32) for _, p in rows]).reshape(len(rows), -1)
        return sigs, prefix

    def refs(self) -> list[int]:
        if not self._has_schema():
            return []
        return [ref for (ref,) in self._db.execute("SELECT ref FROM records ORDER BY ref")]

    def params(self) -> IndexParams | None:
        if not self._has_schema():
            return None
        found = self._db.execute("SELECT value FROM meta WHERE key = 'params'").fetchone()
        return IndexParams.from_json(found[0]) if found else None

    def stats(self) -> dict[str, Any]:
        size = sum(
            Path(self.location + suffix).stat().st_size
            for suffix in ("", "-wal")
            if Path(self.location + suffix).exists()
        )
        if not self._has_schema():
            return {
                "location": self.location,
                "backend": "sqlite",
                "runs": [],
                "records": 0,
                "band_keys": 0,
                "bytes": size,
                "params": None,
            }
        runs = [
            {"run": run, "label": label, "finished": finished, "added": added}
            for run, label, finished, added in self._db.execute(
                "SELECT run, label, finished, added FROM runs ORDER BY run"
            )
        ]
        (records,) = self._db.execute("SELECT COUNT(*) FROM records WHERE duplicate_of IS NULL").fetchone()
        (copies,) = self._db.execute("SELECT COUNT(*) FROM records WHERE duplicate_of IS NOT NULL").fetchone()
        (keys,) = self._db.execute("SELECT COUNT(*) FROM bands").fetchone()
        params = self.params()
        return {
            "location": self.location,
            "backend": "sqlite",
            "runs": runs,
            "records": int(records),
            "removed_copies": int(copies),
            "band_keys": int(keys),
            "bytes": size,
            "params": json.loads(params.to_json()) if params else None,
        }

    def verify(self) -> list[str]:
        problems = [row[0] for row in self._db.execute("PRAGMA integrity_check") if row[0] != "ok"]
        params = self.params()
        if params is None:
            return problems
        per_record = params.bands + params.prefix_bands
        # The bands counted per ref in one pass, then joined: a join of records to bands on
        # ``ref`` (not a key of bands) scanned every band key for every record.
        bad_counts = self._db.execute(
            "SELECT c.ref, c.n FROM (SELECT ref, COUNT(*) AS n FROM bands GROUP BY ref HAVING n <> ?) c "
            "JOIN records r ON r.ref = c.ref LIMIT 10",
            (per_record,),
        ).fetchall()
        problems += [f"record ref {ref} has {n} band keys, expected {per_record}" for ref, n in bad_counts]
        (orphans,) = self._db.execute(
            "SELECT COUNT(*) FROM bands b LEFT JOIN records r ON r.ref = b.ref WHERE r.ref IS NULL"
        ).fetchone()
        if orphans:
            problems.append(f"{orphans} band keys point at no record")
        for run, added, actual in self._db.execute(
            "SELECT u.run, u.added, (SELECT COUNT(*) FROM records r WHERE r.run = u.run) FROM runs u"
        ):
            if added != actual:
                problems.append(f"run {run} added {added} records but {actual} are stored")
        (bad_reps,) = self._db.execute(
            "SELECT COUNT(*) FROM records c LEFT JOIN records k ON k.ref = c.duplicate_of "
            "WHERE c.duplicate_of IS NOT NULL AND (k.ref IS NULL OR k.duplicate_of IS NOT NULL)"
        ).fetchone()
        if bad_reps:
            problems.append(f"{bad_reps} removed copies point at no kept record")
        (strays,) = self._db.execute(
            "SELECT COUNT(*) FROM records r LEFT JOIN runs u ON u.run = r.run WHERE u.run IS NULL"
        ).fetchone()
        if strays:
            problems.append(f"{strays} records belong to no committed run")
        return problems

    def _reclaim(self) -> None:
        try:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA optimize")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # after VACUUM, which writes to the WAL
        except sqlite3.OperationalError as error:
            raise self._locked(error) from error

    def close(self) -> None:
        self.rollback()
        self._db.close()
