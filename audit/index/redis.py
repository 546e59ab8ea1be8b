"""The shared index: one Redis database (``redis://HOST:PORT/DB``), for several scrapers or workers.

Same protocol as the SQLite file (:class:`audit.index.base.IndexBackend`), over redis-py:

- the LSH buckets are kept by datasketch's Redis storage (:class:`datasketch.storage.RedisSetStorage`,
  the storage ``MinHashLSH`` uses for a Redis ``storage_config``), named ``scrape-audit:band:``:
  a bucket is the set ``scrape-audit:band:BAND:KEY`` of the refs of the records in it, and the
  hash ``scrape-audit:band:`` lists the buckets (datasketch's ``keys()``). Records are hashes
  ``scrape-audit:rec:REF``, ``scrape-audit:refs`` is a sorted set of every ref, runs a hash;
- a run holds the lock ``scrape-audit:lock`` (``SET NX`` with a time-to-live, renewed by a
  thread while the run lives): a second run waits up to ``wait`` seconds, then fails with
  :class:`IndexLockedError`; a killed run's lock expires after ``lock_ttl`` seconds;
- a run's additions are written a part at a time (so the client holds one part, not the run):
  the part's records in one ``MULTI``/``EXEC``, then its bucket entries through the storage's
  buffer (a ``MULTI``/``EXEC`` per 100,000 commands), under refs reserved for the run and listed
  as *unfinished* (``scrape-audit:unfinished``, a hash ``scrape-audit:unfinished:TOKEN`` per
  run: its first ref and how many). Every read leaves out the refs of unfinished runs; commit
  is one small ``MULTI``/``EXEC`` (the run's row, the counters, the run struck from the
  unfinished list), so the index shows all of a run or none of it. A run killed before that
  ``EXEC`` leaves records and bucket entries nobody sees; the next run (holding the lock) or
  ``index compact`` removes them (bucket entries first, found from the records' stored
  signatures), and ``rollback`` does at once.

Example (needs a server)::

    >>> index = RedisIndex("redis://127.0.0.1:6379/0")           # doctest: +SKIP
    >>> index.stats()["records"]                                 # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
from datasketch.storage import UnorderedStorage, unordered_storage

from audit.index.base import (
    FETCH_COLUMNS,
    IndexBackend,
    IndexLockedError,
    IndexParams,
    IndexStoreError,
    NewEntries,
    all_band_keys,
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
#: 2: the buckets kept by datasketch's storage (its list of buckets added to the sets of 1).
SCHEMA_VERSION = "2"
#: The name of the buckets' storage: datasketch prefixes each bucket's key with it.
BUCKETS = (PREFIX + "band:").encode()
#: Commands the buckets' storage queues before it sends them in one ``MULTI``/``EXEC``.
BUCKET_BUFFER = 100_000
#: Records of an unfinished run dropped (or buckets counted by verify) per round trip.
DROP_CHUNK = 5_000
FIELDS = ("run", "id", "source", "line", "title", "url", "norm_text", "duplicate_of")
#: Deletes the lock only when this run still owns it (another may hold it after it expired).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


def _key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)


def _bucket(band: int, key: int) -> bytes:
    """A bucket's key in the buckets' storage (its Redis set: :data:`BUCKETS` + this)."""
    return f"{band}:{key}".encode()


def _connection(db: redis.Redis) -> dict[str, Any]:
    """The ``redis.Redis`` arguments of ``db``'s server, for datasketch's storage config."""
    given = db.connection_pool.connection_kwargs
    names = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout")
    found = {name: given[name] for name in names if given.get(name) is not None}
    if "path" in given:  # a unix:// URL
        found["unix_socket_path"] = given["path"]
    if issubclass(db.connection_pool.connection_class, redis.SSLConnection):
        found["ssl"] = True
    return found


def bucket_storage(db: redis.Redis) -> UnorderedStorage:
    """The LSH buckets of the index in ``db``: datasketch's Redis set storage, as ``MinHashLSH``
    makes one for a Redis ``storage_config`` (``get(b"BAND:KEY")`` gives a bucket's refs)."""
    storage = unordered_storage({"type": "redis", "redis": _connection(db)}, name=BUCKETS)
    storage.buffer_size = BUCKET_BUFFER
    return storage


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
        self._buckets = bucket_storage(self._db)
        self._token: str | None = None
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()
        #: This run's commit, once begun: its row and counters, written by one ``EXEC``.
        self._commit: Any = None
        self._counts = {"kept": 0, "copies": 0, "bands": 0}
        self._params: IndexParams | None = None

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
        self._token, self._commit = None, None

    # -- a run -----------------------------------------------------------------------------
    def begin(self, params: IndexParams, label: str) -> int:
        self._acquire()
        try:
            meta = {k.decode(): v.decode() for k, v in self._db.hgetall(_key("meta")).items()}
            if not meta:
                self._db.hset(_key("meta"), mapping={"schema": SCHEMA_VERSION, "params": params.to_json()})
            elif meta.get("schema") != SCHEMA_VERSION:
                raise IndexStoreError(
                    f"{self.location}: index schema {meta.get('schema')}, "
                    f"this version reads {SCHEMA_VERSION} "
                    "(schema 1 kept its buckets as plain sets); build a new index in another database, "
                    "or delete this one's keys (scrape-audit:*) and run the batches again"
                )
            else:
                IndexParams.from_json(meta["params"]).check_matches(params, self.location)
            self._params = params
            self._drop_unfinished()  # a killed run's records, under the lock no run writes now
        except BaseException:
            self._release()
            raise
        self._commit = self._db.pipeline(transaction=True)
        self._counts = {"kept": 0, "copies": 0, "bands": 0}
        return int(self._db.get(_key("last_run")) or 0) + 1

    # -- unfinished runs ---------------------------------------------------------------------
    def _unfinished(self) -> list[tuple[str, int, int]]:
        """``(token, first ref, count)`` of every run not committed."""
        tokens = sorted(t.decode() for t in self._db.smembers(_key("unfinished")))
        found = []
        for token in tokens:
            first, count = self._db.hmget(_key("unfinished", token), ("first", "count"))
            if first is not None:
                found.append((token, int(first), int(count)))
        return found

    def _visible(self, refs: list[int]) -> list[int]:
        """``refs`` without those of unfinished runs (this one's, or a killed one's)."""
        hidden = [(first, first + count) for _, first, count in self._unfinished()]
        if not hidden:
            return refs
        return [r for r in refs if not any(lo <= r < hi for lo, hi in hidden)]

    def _drop_unfinished(self, only: str | None = None) -> None:
        """Remove the records of unfinished runs (``only``: that run's), band keys first.

        Each step may be repeated (a run killed while dropping is dropped again by the next):
        the run leaves the unfinished list last, and a record already gone has no bands left.
        """
        for token, first, count in self._unfinished():
            if only is not None and token != only:
                continue
            refs = [int(r) for r in self._db.zrangebyscore(_key("refs"), first, first + count - 1)]
            for start in range(0, len(refs), DROP_CHUNK):
                chunk = refs[start : start + DROP_CHUNK]
                self._drop_entries(self._entries(chunk))
                self._db.delete(*(_key("rec", ref) for ref in chunk))
                self._db.zrem(_key("refs"), *chunk)
            self._db.delete(_key("unfinished", token))
            self._db.srem(_key("unfinished"), token)

    def _entries(self, refs: list[int]) -> list[tuple[int, bytes]]:
        """``(ref, bucket)`` of every bucket the stored records ``refs`` go in (from their
        stored signatures: a record not stored has none)."""
        assert self._params is not None
        rows = self._hashes(refs, ("signature", "prefix_signature"))
        present = [(ref, s, p) for ref, (s, p) in zip(refs, rows, strict=True) if s is not None]
        if not present:
            return []
        sigs = np.array([np.frombuffer(s, np.uint32) for _, s, _ in present])
        prefix = np.array([np.frombuffer(p, np.uint32) for _, _, p in present])
        keys = all_band_keys(sigs, prefix, self._params)
        return [
            (ref, _bucket(band, key))
            for (ref, _, _), ref_keys in zip(present, keys, strict=True)
            for band, key in ref_keys.tolist()
        ]

    def _drop_entries(self, entries: list[tuple[int, bytes]]) -> None:
        """Take each ref out of its bucket, and a bucket left empty off the storage's list.

        Not by the storage's ``remove_val``: it leaves an emptied bucket listed (it deletes the
        list's field named after the bucket's Redis key, where ``insert`` named it by the key).
        """
        if not entries:
            return
        buckets = sorted({bucket for _, bucket in entries})
        pipe = self._db.pipeline(transaction=False)
        for ref, bucket in entries:
            pipe.srem(self._buckets.redis_key(bucket), ref)
        for bucket in buckets:
            pipe.exists(self._buckets.redis_key(bucket))
        left = pipe.execute()[len(entries) :]
        emptied = [bucket for bucket, exists in zip(buckets, left, strict=True) if not exists]
        if emptied:
            self._db.hdel(BUCKETS, *emptied)

    def lookup(self, keys: np.ndarray) -> list[int]:
        if len(keys) == 0:
            return []
        unique = np.unique(np.asarray(keys, np.int64).reshape(-1, 2), axis=0)
        found: set[int] = set()
        for members in self._buckets.getmany(*(_bucket(band, key) for band, key in unique.tolist())):
            found.update(int(m) for m in members)
        return self._visible(sorted(found))

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
        assert self._token is not None, "reserve() needs begin() first"
        first = int(self._db.incrby(_key("last_ref"), count)) - count + 1  # refs gone if killed
        listed = self._db.pipeline(transaction=True)
        listed.hset(_key("unfinished", self._token), mapping={"first": first, "count": count})
        listed.sadd(_key("unfinished"), self._token)
        listed.execute()
        return first

    def add_run(self, run: int, count: int, summary: dict[str, Any]) -> None:
        commit = self._commit
        assert commit is not None, "add_run() needs begin() first"
        commit.hset(
            _key("runs"),
            str(run),
            json.dumps(
                {"run": run, "label": summary.get("label", ""), "finished": utc_now(), "added": count}
            ),
        )
        commit.set(_key("last_run"), run)

    def add_part(self, entries: NewEntries, run: int, first: int, offset: int) -> None:
        frame, token = entries.frame, self._token
        assert token is not None, "add_part() needs begin() first"
        # The part's records at once, then their bucket entries (found from the records when a
        # killed run is dropped): all unseen until the commit.
        part = self._db.pipeline(transaction=True)
        refs = list(range(first + offset, first + offset + len(frame)))
        copies = 0
        for n, (ref, row) in enumerate(zip(refs, frame.itertuples(index=False), strict=True)):
            rep = (
                row.rep_ref
                if pd.notna(row.rep_ref)
                else (first + int(row.rep_row) if pd.notna(row.rep_row) else None)
            )
            copies += rep is not None
            part.hset(
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
            part.zadd(_key("refs"), {str(ref): ref})
        part.execute()
        fault_point("after-records")
        for ref, keys in zip(refs, entries.keys, strict=True):
            for band, key in keys.tolist():
                self._buckets.insert(_bucket(band, key), ref, buffer=True)
                self._counts["bands"] += 1
        self._buckets.empty_buffer()
        fault_point("after-bands")
        self._counts["kept"] += len(frame) - copies
        self._counts["copies"] += copies

    def commit(self) -> None:
        fault_point("before-commit")
        try:
            if self._commit is not None and self._token is not None:
                commit, token = self._commit, self._token
                for name, added in self._counts.items():
                    commit.incrby(_key("count", name), added)
                commit.delete(_key("unfinished", token))
                commit.srem(_key("unfinished"), token)
                commit.execute()
        except BaseException:
            self._drop_own()
            raise
        finally:
            self._release()

    def rollback(self) -> None:
        if self._commit is not None:
            self._commit.reset()
            self._drop_own()
        self._release()

    def _drop_own(self) -> None:
        """This run's records dropped, as far as the server lets us (else the next run does).

        Safe after an ``EXEC`` whose reply was lost: if it was applied, the run is no longer
        listed as unfinished and nothing is dropped.
        """
        if self._token is not None:
            with contextlib.suppress(redis.RedisError):
                self._drop_unfinished(only=self._token)

    # -- inspection ------------------------------------------------------------------------
    def signatures(self, refs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = self._hashes(sorted(refs), ("signature", "prefix_signature"))
        sigs = np.array([np.frombuffer(s, np.uint32) for s, _ in rows]).reshape(len(rows), -1)
        prefix = np.array([np.frombuffer(p, np.uint32) for _, p in rows]).reshape(len(rows), -1)
        return sigs, prefix

    def refs(self) -> list[int]:
        return self._visible([int(r) for r in self._db.zrange(_key("refs"), 0, -1)])

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
        buckets = keys = 0
        found = self._db.scan_iter(BUCKETS + b"?*", count=1000)  # the sets, not their list
        while chunk := list(itertools.islice(found, DROP_CHUNK)):  # a chunk of buckets at a time
            pipe = self._db.pipeline(transaction=False)
            for bucket in chunk:
                pipe.scard(bucket)
            buckets, keys = buckets + len(chunk), keys + sum(pipe.execute())
        keys -= self._unfinished_entries()  # written, not committed
        if keys != stats["band_keys"]:
            problems.append(f"{keys} band keys stored, the counter says {stats['band_keys']}")
        listed = self._db.hlen(BUCKETS)
        if listed != buckets:
            problems.append(f"{buckets} buckets stored, the buckets' storage lists {listed}")
        return problems

    def _unfinished_entries(self) -> int:
        """The bucket entries unfinished runs have written so far."""
        if self._params is None:
            self._params = self.params()
        count = 0
        for _, first, n in self._unfinished():
            refs = [int(r) for r in self._db.zrangebyscore(_key("refs"), first, first + n - 1)]
            for start in range(0, len(refs), DROP_CHUNK):
                pipe = self._db.pipeline(transaction=False)
                for ref, bucket in self._entries(refs[start : start + DROP_CHUNK]):
                    pipe.sismember(self._buckets.redis_key(bucket), ref)
                count += sum(pipe.execute())
        return count

    def _reclaim(self) -> None:
        if self._params is None:
            self._params = self.params()
        if self._params is not None:
            self._acquire()  # no run writes while a killed run's records go
            try:
                self._drop_unfinished()
            finally:
                self._release()
        with contextlib.suppress(redis.ResponseError):  # not every allocator purges; nothing else to do
            self._db.memory_purge()

    def close(self) -> None:
        self.rollback()
        self._db.close()
