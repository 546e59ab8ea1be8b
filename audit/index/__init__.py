"""An incremental index across scrape runs: dedup today's records against everything kept before.

``scrape-audit run PATH... --index LOCATION`` checks each record against the records kept by
earlier runs into the same index and adds the ones it keeps; ``scrape-audit index
stats|verify|compact LOCATION`` inspect and maintain it. LOCATION is a file path (SQLite,
:mod:`audit.index.sqlite`) or ``redis://HOST:PORT/DB`` (:mod:`audit.index.redis`). Backends
share one interface (:class:`audit.index.base.IndexBackend`); the run logic is in
:mod:`audit.index.session`.

Example:
    >>> import tempfile, os
    >>> index = open_index(os.path.join(tempfile.mkdtemp(), "idx.sqlite"))
    >>> index.stats()["records"], verify_index(index)
    (0, [])
"""

from __future__ import annotations

import os

import numpy as np

from audit.dedup.signer import SignerSettings, sign_texts
from audit.index.base import IndexBackend, IndexLockedError, IndexParams, IndexStoreError
from audit.index.session import (
    IndexedRun,
    IndexSession,
    dedup_with_index,
    earlier_id,
    parse_earlier_id,
    with_runs,
)
from audit.index.sqlite import SQLiteIndex

__all__ = [
    "IndexBackend",
    "IndexLockedError",
    "IndexSession",
    "IndexStoreError",
    "IndexedRun",
    "SQLiteIndex",
    "dedup_with_index",
    "earlier_id",
    "open_index",
    "parse_earlier_id",
    "render_index",
    "verify_index",
    "with_runs",
]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_index(location: str | os.PathLike[str], wait: float = 60.0, create: bool = True) -> IndexBackend:
    """The backend for ``location``: ``redis://HOST:PORT/DB`` is Redis, anything else a SQLite file."""
    text = str(location)
    if text.startswith(REDIS_SCHEMES):
        from audit.index.redis import RedisIndex  # redis-py is needed only for a Redis index

        return RedisIndex(text, wait)
    return SQLiteIndex(text, wait, create)


def verify_index(index: IndexBackend, batch: int = 2_000) -> list[str]:
    """The backend's structural checks, then every record re-signed from its stored text:
    its signatures and band keys must be what this version computes (else lookups would miss)."""
    problems = index.verify()
    stats = index.stats()
    if stats["params"] is None:
        return problems
    params = IndexParams(**stats["params"])
    settings = SignerSettings(
        num_perm=params.num_perm,
        seed=params.seed,
        word_n=params.word_n,
        char_n=params.char_n,
        prefix_shingles=params.prefix_shingles,
        workers=1,
    )
    refs = index.refs()
    for start in range(0, len(refs), batch):
        chunk = refs[start : start + batch]
        stored = index.fetch(chunk)
        signed = sign_texts(stored["norm_text"].tolist(), settings)
        sigs, prefix = index.signatures(chunk)
        differ = np.flatnonzero(
            ~(signed.signatures == sigs).all(axis=1) | ~(signed.prefix_signatures == prefix).all(axis=1)
        )
        problems += [f"record ref {chunk[n]}: stored signature differs from its text's" for n in differ[:10]]
    return problems


def render_index(action: str, found: dict) -> str:
    """``scrape-audit index ACTION`` output as text.

    >>> render_index("verify", {"location": "x.sqlite", "problems": [], "ok": True})
    'x.sqlite: ok'
    """
    if action == "verify":
        lines = [f"{found['location']}: " + ("ok" if found["ok"] else f"{len(found['problems'])} problem(s)")]
        return "\n".join(lines + [f"  {p}" for p in found["problems"]])
    if action == "compact":
        return (
            f"compacted: {found['bytes_before']:,} -> {found['bytes_after']:,} bytes in {found['seconds']} s"
        )
    runs = found["runs"]
    lines = [
        f"index: {found['location']} ({found['backend']})",
        f"records: {found['records']:,} kept and {found['removed_copies']:,} removed copies from "
        f"{len(runs)} run(s); band keys: {found['band_keys']:,}; size: {found['bytes']:,} bytes",
    ]
    lines += [f"  run {r['run']}: {r['added']:,} records  {r['finished']}  {r['label']}" for r in runs[-10:]]
    if len(runs) > 10:
        lines.insert(2, f"  (last 10 of {len(runs)} runs; --json lists all)")
    return "\n".join(lines)
