"""The shared index: one Redis database (``redis://HOST:PORT/DB``), for several scrapers or workers.

Same protocol as the SQLite file (:class:`audit.index.base.IndexBackend`), over redis-py:

- band keys are Redis sets ``scrape-audit:band:BAND:KEY`` of record refs (the layout of
  datasketch's Redis LSH storage: one set per bucket), records are hashes
  ``scrape-audit:rec:REF``, ``scrape-audit:refs`` is a sorted set of every ref, runs a hash;
- a run holds the lock ``scrape-audit:lock`` (``SET NX`` with a time-to-live, renewed by a
  thread while the run lives): a second run waits up to ``wait`` seconds, then fails with
  :class:`IndexLockedError`; a killed run's lock expires after ``lock_ttl`` seconds;
- a run's additions are queued in one ``MULTI``/``EXEC`` transaction sent at commit, so other
  clients see all of them or none, and a run killed before ``EXEC`` adds nothing.

Example (needs a server)::

    >>> index = RedisIndex("redis://127.0.0.1:6379/0")           # doctest: +SKIP
    >>> index.stats()["records"]                                 # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
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

try:
    import redis
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise IndexStoreError("a redis:// index needs redis-py: pip install 'scrape-audit[redis]'") from missing

PREFIX = "scrape-audit:"
SCHEMA_VERSION = "1"
FIELDS = ("run", "id", "source", "line", "title", "url", "norm_text", "duplicate_of")
#: Deletes the lock only when this run still owns it (another may hold it after it expired).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


def _key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)


class RedisIndex(IndexBackend):
    """An index in the Redis database at ``url``."""

    def __init__(self, url: str, wait: float = 60.0, lock_ttl: float = 30.0) -> None:
        self.location = url
        self.wait = wait
        self.lock_ttl = lock_ttl
        try:
            self._db = redis.Redis.from_url(url, socket_timeout=30)
            self._db.ping()
        except (redis.RedisError, ValueError) as error:
            raise IndexStoreError(f"{url}: cannot reach the Redis server: {error}") from error
        self._token: str | None = None
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: Any = None

    # -- the lock --------------------------------------------------------------------------
    def _acquire(self) -> None:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait
        while not self._db.set(_key("lock"), token, nx=True, px=int(self.lock_ttl * 1000)):
            if time.monotonic() >= deadline:
                raise IndexLockedError(
                    f"{self.location}: the index is in use by another run (waited {self.wait:g} s for "
                    "its lock); try again when it has finished, or wait longer with --index-wait SECONDS"
                )
            time.sleep(0.05)
        self._token = token
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lock_ttl / 3):
            self._db.eval(_RENEW, 1, _key("lock"), self._token, int(self.lock_ttl * 1000))

    def _release(self) -> None:
        if self._token is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        self._db.eval(_RELEASE, 1, _key("lock"), self._token)
        self._token, self._queue = None, None

    # -- a run -----------------------------------------------------------------------------
    def begin(self, params: IndexParams, label: str) -> int:
        self._acquire()
        try:
            meta = {k.decode(): v.decode() for k, v in self._db.hgetall(_key("meta")).items()}
            if not meta:
                self._db.hset(_key("meta"), mapping={"schema": SCHEMA_VERSION, "params": params.to_json()})
            elif meta.get("schema") != SCHEMA_VERSION:
                raise IndexStoreError(
                    f"{self.location}: index schema {meta.get('schema')}, this version reads {SCHEMA_VERSION}"
                )
            else:
                IndexParams.from_json(meta["params"]).check_matches(params, self.location)
        except BaseException:
            self._release()
            raise
        self._queue = self._db.pipeline(transaction=True)
        return int(self._db.get(_key("last_run")) or 0) + 1

    def lookup(self, keys: np.ndarray) -> list[int]:
        if len(keys) == 0:
            return []
        unique = np.unique(np.asarray(keys, np.int64).reshape(-1, 2), axis=0)
        pipe = self._db.pipeline(transaction=False)
        for band, key in unique.tolist():
            pipe.smembers(_key("band", band, key))
        found: set[int] = set()
        for members in pipe.execute():
            found.update(int(m) for m in members)
        return sorted(found)

    def _hashes(self, refs: list[int], fields: tuple[str, ...]) -> list[list[bytes | None]]:
        pipe = self._db.pipeline(transaction=False)
        for ref in refs:
            pipe.hmget(_key("rec", ref), fields)
        return pipe.execute()

    def fetch(self, refs: list[int]) -> pd.DataFrame:
        refs = sorted(int(r) for r in refs)
        rows = []
        for ref, values in zip(refs, self._hashes(refs, FIELDS), strict=True):
            run, rid, source, line, title, url, norm, rep = values
            rows.append(
                (
                    ref,
                    int(run),
                    rid.decode(),
                    source.decode(),
                    int(line),
                    title.decode(),
                    url.decode(),
                    unpack_text(norm),
                    int(rep) if rep else None,
                )
            )
        frame = pd.DataFrame(rows, columns=FETCH_COLUMNS)
        frame["duplicate_of"] = (
            frame["duplicate_of"].astype(object).where(frame["duplicate_of"].notna(), None)
        )
        return frame

    def reserve(self, count: int) -> int:
        return int(self._db.incrby(_key("last_ref"), count)) - count + 1  # refs gone if killed

    def add_run(self, run: int, count: int, summary: dict[str, Any]) -> None:
        queue = self._queue
        assert queue is not None, "add_run() needs begin() first"
        queue.hset(
            _key("runs"),
            str(run),
            json.dumps(
                {"run": run, "label": summary.get("label", ""), "finished": utc_now(), "added": count}
            ),
        )
        queue.set(_key("last_run"), run)

    def add_part(self, entries: NewEntries, run: int, first: int, offset: int) -> None:
        frame, queue = entries.frame, self._queue
        assert queue is not None, "add_part() needs begin() first"
        refs = list(range(first + offset, first + offset + len(frame)))
        copies = 0
        for n, (ref, row) in enumerate(zip(refs, frame.itertuples(index=False), strict=True)):
            rep = (
                row.rep_ref
                if pd.notna(row.rep_ref)
                else (first + int(row.rep_row) if pd.notna(row.rep_row) else None)
            )
            copies += rep is not None
            queue.hset(
                _key("rec", ref),
                mapping={
                    "run": run,
                    "id": row.id,
                    "source": row.source,
                    "line": int(row.line),
                    "title": row.title,
                    "url": row.url,
                    "text_hash": int(row.text_hash),
                    "norm_text": pack_text(row.norm_text),
                    "duplicate_of": "" if rep is None else int(rep),
                    "signature": entries.signatures[n].tobytes(),
                    "prefix_signature": entries.prefix_signatures[n].tobytes(),
                },
            )
            queue.zadd(_key("refs"), {str(ref): ref})
        fault_point("after-records")
        band_count = 0
        for ref, keys in zip(refs, entries.keys, strict=True):
            for band, key in keys.tolist():
                queue.sadd(_key("band", band, key), ref)
                band_count += 1
        fault_point("after-bands")
        # Counted per part: the increments add up to the run's in the one transaction.
        queue.incrby(_key("count", "kept"), len(frame) - copies)
        queue.incrby(_key("count", "copies"), copies)
        queue.incrby(_key("count", "bands"), band_count)

    def commit(self) -> None:
        fault_point("before-commit")
        try:
            if self._queue is not None:
                self._queue.execute()
        finally:
            self._release()

    def rollback(self) -> None:
        if self._queue is not None:
            self._queue.reset()
        self._release()

    # -- inspection ------------------------------------------------------------------------
    def signatures(self, refs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = self._hashes(sorted(refs), ("signature", "prefix_signature"))
        sigs = np.array([np.frombuffer(s, np.uint32) for s, _ in rows]).reshape(len(rows), -1)
        prefix = np.array([np.frombuffer(p, np.uint32) for _, p in rows]).reshape(len(rows), -1)
        return sigs, prefix

    def refs(self) -> list[int]:
        return [int(r) for r in self._db.zrange(_key("refs"), 0, -1)]

    def params(self) -> IndexParams | None:
        found = self._db.hget(_key("meta"), "params")
        return IndexParams.from_json(found.decode()) if found else None

    def stats(self) -> dict[str, Any]:
        runs = sorted((json.loads(v) for v in self._db.hvals(_key("runs"))), key=lambda r: r["run"])
        count = {name: int(self._db.get(_key("count", name)) or 0) for name in ("kept", "copies", "bands")}
        params = self.params()
        return {
            "location": self.location,
            "backend": "redis",
            "runs": runs,
            "records": count["kept"],
            "removed_copies": count["copies"],
            "band_keys": count["bands"],
            "bytes": int(self._db.info("memory")["used_memory"]),
            "params": json.loads(params.to_json()) if params else None,
        }

    def verify(self) -> list[str]:
        problems: list[str] = []
        stats = self.stats()
        refs = self.refs()
        if len(refs) != stats["records"] + stats["removed_copies"]:
            problems.append(
                f"{len(refs)} records stored, the counters say {stats['records'] + stats['removed_copies']}"
            )
        rows = self._hashes(refs, ("run", "duplicate_of"))
        kept = {ref for ref, (_, rep) in zip(refs, rows, strict=True) if not rep}
        per_run: dict[int, int] = {}
        for ref, (run, rep) in zip(refs, rows, strict=True):
            if run is None:
                problems.append(f"record ref {ref} is missing")
                continue
            per_run[int(run)] = per_run.get(int(run), 0) + 1
            if rep and int(rep) not in kept:
                problems.append(f"record ref {ref} copies ref {int(rep)}, which is no kept record")
        for run in stats["runs"]:
            if per_run.get(run["run"], 0) != run["added"]:
                problems.append(
                    f"run {run['run']} added {run['added']} records but "
                    f"{per_run.get(run['run'], 0)} are stored"
                )
        keys = sum(self._db.scard(k) for k in self._db.scan_iter(_key("band", "*"), count=1000))
        if keys != stats["band_keys"]:
            problems.append(f"{keys} band keys stored, the counter says {stats['band_keys']}")
        return problems

    def _reclaim(self) -> None:
        with contextlib.suppress(redis.ResponseError):  # not every allocator purges; nothing else to do
            self._db.memory_purge()

    def close(self) -> None:
        self.rollback()
        self._db.close()
