"""The Redis index (``--index redis://...``) against a real redis-server on a loopback port:
the same results as the SQLite index, shared by concurrent runs, and nothing half-written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisUnavailable, redis_server
from test_index_sqlite import CLI, SEED_FILES, _run_cli, batch_runs, kept_ids, union_run, write_batches

import audit
from audit.cli import main
from audit.index import open_index, verify_index
from audit.index.base import FAULT_ENV


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except RedisUnavailable as reason:
        pytest.skip(f"no redis-server: {reason}")


@pytest.fixture
def redis_url(server: str) -> str:
    """The server, emptied: each test starts from no index."""
    import redis

    redis.Redis.from_url(server).flushdb()
    return server


def test_seeds_and_generated_batches_equal_one_run_over_their_union(redis_url: str, tmp_path: Path) -> None:
    assert kept_ids(batch_runs(SEED_FILES, redis_url)) == set(union_run(SEED_FILES).clean["id"])
    index = open_index(redis_url)
    stats = index.stats()
    assert stats["backend"] == "redis" and stats["records"] == 526 and len(stats["runs"]) == 4
    assert verify_index(index) == []
    index.close()

    import redis

    redis.Redis.from_url(redis_url).flushdb()
    paths = write_batches(tmp_path, 600, batches=3, seed=5)
    assert kept_ids(batch_runs(paths, redis_url)) == set(union_run(paths).clean["id"])


def test_the_same_outputs_as_the_sqlite_index(redis_url: str, tmp_path: Path) -> None:
    for where, location in (("sqlite", str(tmp_path / "idx.sqlite")), ("redis", redis_url)):
        config = audit.AuditConfig(index=location, expectations=None)
        for n, path in enumerate(SEED_FILES[:3]):
            audit.run([path], out=tmp_path / where / str(n), config=config)
    for n in range(3):
        for name in ("clean.jsonl", "removed.jsonl", "clusters.jsonl"):
            sqlite_out = (tmp_path / "sqlite" / str(n) / name).read_bytes()
            assert sqlite_out == (tmp_path / "redis" / str(n) / name).read_bytes(), (n, name)


def test_concurrent_runs_share_the_index_and_a_held_lock_fails_clearly(
    redis_url: str, tmp_path: Path
) -> None:
    commands = [
        [
            *CLI,
            "run",
            str(p),
            "--index",
            redis_url,
            "--out",
            str(tmp_path / f"o{n}"),
            "--no-expectations",
            "--quiet",
        ]
        for n, p in enumerate(SEED_FILES[1:3])
    ]
    processes = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    union = audit.run(
        [str(p) for p in SEED_FILES[1:3]], out=None, config=audit.AuditConfig(expectations=None)
    )
    assert open_index(redis_url).stats()["records"] == union.report["counts"]["kept"]

    import redis

    # Held for longer than the CLI can take to start on a loaded machine (a 20 s lock once
    # expired first), and released once the blocked run has been seen to fail.
    holder = redis.Redis.from_url(redis_url)
    holder.set("scrape-audit:lock", "someone-else", px=300_000)
    blocked = _run_cli(
        [
            "run",
            str(SEED_FILES[0]),
            "--index",
            redis_url,
            "--index-wait",
            "0.3",
            "--out",
            str(tmp_path / "b"),
            "--no-expectations",
            "--quiet",
        ]
    )
    holder.delete("scrape-audit:lock")
    assert blocked.returncode == 2 and "in use by another run" in blocked.stderr


def _raw(url: str) -> dict[str, object]:
    """Every key of the index and its value, but the lock and the ref counter (refs a killed
    run reserved are not given out again)."""
    import redis

    db = redis.Redis.from_url(url)
    read = {
        b"string": db.get,
        b"hash": db.hgetall,
        b"set": db.smembers,
        b"zset": lambda k: db.zrange(k, 0, -1, withscores=True),
    }
    return {
        key: read[db.type(key)](key)
        for key in db.scan_iter("scrape-audit:*")
        if key not in (b"scrape-audit:lock", b"scrape-audit:last_ref")
    }


@pytest.mark.parametrize("fault", ["after-records", "after-bands", "before-commit"])
def test_kill_9_mid_write_leaves_the_index_as_before(
    redis_url: str, tmp_path: Path, capsys, fault: str
) -> None:
    """Killed anywhere, the run is invisible (stats, refs, verify); its records already written
    are dropped by the next run or ``index compact``, which leaves the keys as before the run."""
    import redis

    base = ["run", "--index", redis_url, "--no-expectations", "--quiet"]
    assert main([*base, str(SEED_FILES[0]), "--out", str(tmp_path / "a")]) == 0
    before = {k: v for k, v in open_index(redis_url).stats().items() if k != "bytes"}
    before_refs, before_raw = open_index(redis_url).refs(), _raw(redis_url)
    killed = _run_cli([*base, str(SEED_FILES[1]), "--out", str(tmp_path / "b")], {FAULT_ENV: fault})
    assert killed.returncode == -9
    db = redis.Redis.from_url(redis_url)
    # Every fault point is after the first part's records were written (and its bucket entries,
    # after-bands; the whole run's before its commit): they are in the database, unseen.
    written = db.zcard("scrape-audit:refs") - len(before_refs)
    assert written > 0
    entries = sum(db.scard(k) for k in db.scan_iter("scrape-audit:band:?*"))
    assert (entries > before["band_keys"]) == (fault != "after-records")
    index = open_index(redis_url)
    assert {k: v for k, v in index.stats().items() if k != "bytes"} == before
    assert index.refs() == before_refs
    assert verify_index(index) == []
    index.close()
    db.delete("scrape-audit:lock")  # the killed run's lock, expired
    capsys.readouterr()
    assert main(["index", "compact", redis_url]) == 0
    assert _raw(redis_url) == before_raw
    assert main([*base, str(SEED_FILES[1]), "--out", str(tmp_path / "c")]) == 0
    index = open_index(redis_url)
    assert [r["run"] for r in index.stats()["runs"]] == [1, 2] and verify_index(index) == []
    capsys.readouterr()
    assert main(["index", "stats", redis_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == len(union_run(SEED_FILES[:2]).clean)


def test_parts_are_written_before_the_commit_and_a_failed_run_drops_them(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client does not hold a run's entries until its commit: they are in the database,
    unseen by other readers, when the commit begins; a run failing there is rolled back and
    its records dropped."""
    import redis

    from audit.index.redis import RedisIndex

    config = audit.AuditConfig(index=redis_url, expectations=None)
    audit.run([SEED_FILES[0]], out=tmp_path / "a", config=config)
    before_refs, before_raw = open_index(redis_url).refs(), _raw(redis_url)
    seen = {}
    real_commit = RedisIndex.commit

    def failing_commit(self: RedisIndex) -> None:
        seen["stored"] = redis.Redis.from_url(redis_url).zcard("scrape-audit:refs")
        reader = open_index(redis_url)
        seen["visible"] = len(reader.refs())
        seen["records"] = reader.stats()["records"]
        reader.close()

        def failing_exec() -> None:
            raise redis.ConnectionError("the commit failed")

        self._commit.execute = failing_exec  # the EXEC lost on the way
        real_commit(self)

    monkeypatch.setattr(RedisIndex, "commit", failing_commit)
    with pytest.raises(redis.ConnectionError, match="the commit failed"):
        audit.run([SEED_FILES[1]], out=tmp_path / "b", config=config)
    assert seen["stored"] > len(before_refs)
    assert seen["visible"] == len(before_refs) and seen["records"] == 53
    assert _raw(redis_url) == before_raw


def test_runs_over_partitions_give_the_local_outputs_and_index(
    redis_url: str, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--engine dask with a Redis index: each partition's entries written as it comes, unseen
    until the commit, give the local run's outputs, and the same index (counts, verified)."""
    import redis

    import audit.engines.shards as shards_module

    monkeypatch.setattr(shards_module, "PART_BYTES", 30_000)
    paths = write_batches(tmp_path, 600, batches=2, seed=11)
    found = {}
    for engine in ("local", "dask"):
        redis.Redis.from_url(redis_url).flushdb()
        config = audit.AuditConfig(index=redis_url, expectations=None, engine=engine, scheduler=scheduler)
        for n, path in enumerate(paths):
            audit.run([path], out=tmp_path / engine / str(n), config=config)
        index = open_index(redis_url)
        stats = index.stats()
        assert verify_index(index) == []
        found[engine] = (
            {k: v for k, v in stats.items() if k != "bytes"} | {"runs": [r["added"] for r in stats["runs"]]},
            index.fetch(index.refs()),
        )
        index.close()
    assert found["local"][0] == found["dask"][0] and found["local"][0]["removed_copies"] > 10
    assert found["local"][1].equals(found["dask"][1])
    for n in range(len(paths)):
        for name in ("clean.jsonl", "removed.jsonl", "clusters.jsonl"):
            local = (tmp_path / "local" / str(n) / name).read_bytes()
            assert local == (tmp_path / "dask" / str(n) / name).read_bytes(), (n, name)


def test_the_buckets_are_datasketchs_redis_storage(redis_url: str, tmp_path: Path) -> None:
    """datasketch's own Redis set storage, opened on the index by its name, lists every bucket
    and gives each record's ref in the buckets of its stored signatures, as MinHashLSH reads it."""
    from datasketch.storage import RedisSetStorage, unordered_storage

    from audit.index.base import all_band_keys

    config = audit.AuditConfig(index=redis_url, expectations=None)
    for n, path in enumerate(SEED_FILES[:2]):
        audit.run([path], out=tmp_path / str(n), config=config)
    index = open_index(redis_url)
    stats = index.stats()
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    storage = unordered_storage(
        {"type": "redis", "redis": {"host": host, "port": int(port)}}, name=b"scrape-audit:band:"
    )
    assert isinstance(storage, RedisSetStorage)
    counts = storage.itemcounts()
    per_record = stats["params"]["bands"] + stats["params"]["prefix_bands"]
    assert (
        sum(counts.values())
        == stats["band_keys"]
        == per_record * (stats["records"] + stats["removed_copies"])
    )
    refs = index.refs()
    sigs, prefix = index.signatures(refs)
    keys = all_band_keys(sigs, prefix, index.params())
    assert len(counts) == len({(b, k) for row in keys.tolist() for b, k in row})
    for ref, row in zip(refs[::17], keys[::17], strict=True):
        for band, key in row.tolist():
            assert str(ref).encode() in storage.get(f"{band}:{key}".encode())
    index.close()


def test_an_index_of_another_schema_is_refused_clearly(redis_url: str, tmp_path: Path) -> None:
    import redis

    redis.Redis.from_url(redis_url).hset("scrape-audit:meta", mapping={"schema": "1", "params": "{}"})
    result = _run_cli(["run", str(SEED_FILES[0]), "--index", redis_url, "--out", str(tmp_path / "o")])
    assert result.returncode == 2, result.stderr
    assert "index schema 1, this version reads 2" in result.stderr and "scrape-audit:*" in result.stderr
