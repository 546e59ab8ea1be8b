"""Atomic outputs, inputs never modified, no network, and linear time on hostile text."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import audit
from audit.cli import main
from audit.report import writers

SMALL = b'{"text": "one two three four five six"}\n{"text": "One two three four five six!"}\n'


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """A generous guard against quadratic blow-up, not a timing assertion."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def small_input(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "a.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SMALL)
    return path.parent


# --- atomic outputs -------------------------------------------------------------------------


def test_a_failure_while_writing_leaves_the_previous_outputs_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, out = small_input(tmp_path), tmp_path / "out"
    audit.run([inputs], out=out)
    before = tree_digest(out)

    def fail(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "render_markdown", fail)  # after the JSONL files, before report.json
    with pytest.raises(audit.OutputDirError, match=r"writing outputs failed: .*No space left on device"):
        audit.run([inputs], out=out, force=True)
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging left behind


def test_an_interrupt_while_writing_leaves_no_output_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = small_input(tmp_path), tmp_path / "out"
    real = writers.write_jsonl
    calls = []

    def interrupted(frame, path):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(frame, path)

    monkeypatch.setattr(writers, "write_jsonl", interrupted)
    assert main(["run", str(inputs), "--out", str(out), "--quiet"]) == 130
    assert capsys.readouterr().err == "scrape-audit: interrupted; no outputs written\n"
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_existing_output_dir_refused_or_replaced_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = small_input(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "stale.jsonl").write_text("from another run\n")
    assert main(["run", str(inputs), "--out", str(out), "--quiet"]) == 2
    assert "output directory is not empty (1 entries); use --force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["stale.jsonl"]
    assert main(["run", str(inputs), "--out", str(out), "--quiet", "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "clean.jsonl",
        "clusters.jsonl",
        "findings.jsonl",
        "quarantine.jsonl",
        "removed.jsonl",
        "report.html",
        "report.json",
        "report.md",
    ]


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_output_dir_overlapping_an_input_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    inputs = small_input(tmp_path)
    before = tree_digest(tmp_path)
    out = {"same": inputs, "parent": tmp_path, "inside": inputs / "reports"}[where]
    assert main(["run", str(inputs), "--out", str(out), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scrape-audit: error: {out}: output directory ")
    assert tree_digest(tmp_path) == before


def test_output_dir_that_cannot_be_created_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = small_input(tmp_path)
    (tmp_path / "file").write_text("a file, not a directory")
    assert main(["run", str(inputs), "--out", str(tmp_path / "file" / "out"), "--quiet"]) == 2
    assert "cannot create the output directory" in capsys.readouterr().err


def test_inputs_are_never_modified(tmp_path: Path, seeds_dir: Path) -> None:
    before = tree_digest(seeds_dir)
    audit.run([seeds_dir], out=tmp_path / "out")
    assert tree_digest(seeds_dir) == before


# --- no network -----------------------------------------------------------------------------


def disable_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every connection, datagram and name lookup raise; return the attempts made.

    Creating a socket is allowed (urllib3, imported by Great Expectations, probes for IPv6
    by opening one on import); reaching anything is not.
    """
    attempts: list[str] = []

    def refuse(name: str):
        def blocked(*args: object, **kwargs: object):
            attempts.append(name)
            raise OSError(f"network access attempted: socket.{name}")

        return blocked

    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        monkeypatch.setattr(socket.socket, name, refuse(name))
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        monkeypatch.setattr(socket, name, refuse(name))
    return attempts


def test_whole_pipeline_runs_with_sockets_disabled(
    tmp_path: Path, seeds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = disable_sockets(monkeypatch)
    result = audit.run([seeds_dir], out=tmp_path / "out")
    assert attempts == []
    assert result.report["counts"]["kept"] == 526
    assert (tmp_path / "out" / "report.json").exists()


def test_check_command_with_expectations_runs_with_sockets_disabled(
    tmp_path: Path, seeds_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attempts = disable_sockets(monkeypatch)
    code = main(["check", str(seeds_dir), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert attempts == []
    assert code == 1 and "expectations: 11 of 11 passed" in out  # the documented seeds verdict


# --- hostile text ---------------------------------------------------------------------------

MEGABYTE = 1_000_000


@pytest.mark.parametrize(
    "line",
    [
        "http://" * (MEGABYTE // 7),
        "(" * MEGABYTE,
        "{" * MEGABYTE,
        "{http://" * (MEGABYTE // 8),
        "http://x" + ")" * MEGABYTE,
        "http: " * (MEGABYTE // 6),
        "a." * (MEGABYTE // 2),
    ],
    ids=["http", "open-paren", "open-brace", "brace-http", "close-paren", "space-after-scheme", "dots"],
)
def test_one_megabyte_hostile_line_finishes(tmp_path: Path, line: str) -> None:
    path = tmp_path / "in" / "hostile.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"text": line, "url": line[:1000]}) + "\n")
    with time_limit(120):  # the whole run, outputs (JSONL, Markdown, HTML) included
        result = audit.run([path.parent], out=tmp_path / "out")
    assert result.report["counts"]["kept"] == 1
    assert result.clean.iloc[0]["id"] == "hostile.jsonl:1"
    assert (tmp_path / "out" / "report.html").stat().st_size > 0


def test_linear_time_rewrites_keep_what_the_patterns_find() -> None:
    from audit.checks.malformed_url import url_findings
    from audit.clean import apply_repairs
    from audit.urls import find_urls, trim_url

    text = "see https://x.org/a{link} and {{https://y.org}} and \\url{https://z.org}{z}"
    found = [
        (f.evidence["kind"], f.evidence["match"], f.evidence["offset"]) for f in url_findings("r", "t", text)
    ]
    assert found == [
        ("latex command", "\\url{https://z.org}{z}", 52),
        ("latex braces", "https://x.org/a{link}", 4),
        ("latex braces", "{{https://y.org}}", 30),
    ]
    assert trim_url("https://x.org/a_(b)).") == "https://x.org/a_(b)"
    assert trim_url("https://x.org/[a]]];") == "https://x.org/[a]"
    assert find_urls("(see https://x.org/wiki/Foo_(bar)), and http://y.org.") == [
        "https://x.org/wiki/Foo_(bar)",
        "http://y.org",
    ]
    repairs = [
        {"offset": 0, "old": "ab", "new": "X"},
        {"offset": 1, "old": "b", "new": "Y"},  # overlaps the first: skipped
        {"offset": 3, "old": "d", "new": "ZZ"},
    ]
    assert apply_repairs("abcde", repairs) == ("XcZZe", [True, False, True])
