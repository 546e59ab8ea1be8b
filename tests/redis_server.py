"""A throwaway ``redis-server`` on a free loopback port for the Redis index tests.

Debian's ``redis-server`` package is installed when missing (as root, with apt-get); where that
cannot be done the tests are skipped and say why. The server keeps nothing on disk and is
stopped when the tests end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import debian_package


class RedisUnavailable(Exception):
    """redis-server is not installed and could not be installed here (the reason says why)."""


def find_or_install() -> str:
    """The redis-server binary; installs Debian's package when missing and we are root."""
    return debian_package.find_or_install("redis-server", "redis-server", RedisUnavailable)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server on 127.0.0.1 (no persistence); yield its ``redis://`` URL; stop it."""
    binary = find_or_install()
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="scrape-audit-redis-")
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--protected-mode",
        "yes",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RedisUnavailable(f"redis-server did not start: {process.stderr.read().decode()[-400:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
