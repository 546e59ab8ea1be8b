"""Writing a run's outputs: every file goes to a temporary directory first, which then
replaces the output directory in one rename, so an interrupted run never leaves a
half-written corpus that looks complete."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from audit.frames import Column, arrow_values, column_values, release_memory
from audit.parallel import cores, forked_map, idle_cores
from audit.report.html import render_html
from audit.report.jsonlines import encodable, lines, write_lines
from audit.report.markdown import render_markdown

#: Files in an output directory that do not make it "used" (kept across runs).
KEEP_FILES = {".gitkeep"}


class OutputDirError(Exception):
    """The output directory holds files and ``force`` was not given."""


#: Types :func:`_plain` gives back as they are (checked first: most cells are of these).
_PLAIN_TYPES = frozenset({str, dict, list, int, bool, type(None)})


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/None to None."""
    if type(value) in _PLAIN_TYPES:  # most cells (evidence dicts, None): skip the tests below
        return value
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _sync(handle: Any) -> None:
    """Flush a file to disk before it is renamed into place: a crash leaves no short file."""
    handle.flush()
    os.fsync(handle.fileno())


def frame_batches(frame: pd.DataFrame, batch: int = 20_000) -> Iterator[dict[str, Column]]:
    """The rows of ``frame`` a slice at a time, as columns: Arrow values where the column holds
    numbers, booleans or strings (or lists of them) as such, else JSON-safe Python values (numpy
    scalars to Python, NaN to None: :func:`_plain`)."""
    names = [str(c) for c in frame.columns]
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        columns: dict[str, Column] = {}
        for n, name in enumerate(names):
            column = part.iloc[:, n]
            values = arrow_values(column)
            if values is None or not encodable(values.type):
                values = [_plain(cell) for cell in column_values(column)]
            columns[name] = values  # a name given twice: its last column, at its first place
        yield columns


def write_jsonl(rows: pd.DataFrame | Iterable[Mapping[str, Column]], path: Path) -> None:
    """One JSON object a line (as ``json`` writes it, not ASCII-escaped): the rows of a DataFrame,
    or of column batches (see :mod:`audit.report.jsonlines`)."""
    with path.open("wb") as handle:
        if isinstance(rows, pd.DataFrame) and not len(rows.columns):
            handle.write(b"{}\n" * len(rows))
        else:
            for columns in frame_batches(rows) if isinstance(rows, pd.DataFrame) else rows:
                write_lines(handle, lines(columns))
        _sync(handle)


def _rows(result: Any, name: str) -> pd.DataFrame | Iterable[Mapping[str, Column]]:
    """``result``'s clean or removed rows: column batches from an AuditResult, else its DataFrame."""
    stream = getattr(result, f"{name}_batches", None)
    return stream() if stream is not None else getattr(result, name)


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        _sync(handle)


def refuse_input_overlap(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise :class:`OutputDirError` when ``out`` is, holds, or lies inside an input path.

    Replacing the output directory would delete inputs; outputs inside an input directory
    would be read as input by the next run.
    """
    out_dir = Path(os.path.realpath(out))  # realpath, unlike resolve(), never raises on a link loop
    for given in inputs:
        path = Path(os.path.realpath(given))
        if path == out_dir or out_dir in path.parents:
            raise OutputDirError(f"{out}: output directory holds the input {given}; choose another --out")
        if path.is_dir() and path in out_dir.parents:
            raise OutputDirError(
                f"{out}: output directory is inside the input directory {given} "
                "(the next run would read its outputs as input); choose another --out"
            )


def ensure_writable(
    out: str | os.PathLike[str], force: bool = False, inputs: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Raise :class:`OutputDirError` unless ``out`` may receive a run's outputs.

    A non-empty ``out`` is refused unless ``force``, which replaces it whole; an ``out`` that
    overlaps one of ``inputs`` is always refused (inputs are never modified).
    """
    out_dir = Path(out)
    refuse_input_overlap(out_dir, inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir}: exists and is not a directory")
    try:
        existing = [p for p in out_dir.iterdir() if p.name not in KEEP_FILES] if out_dir.exists() else []
    except OSError as error:
        raise OutputDirError(f"{out_dir}: cannot read the output directory: {error.strerror}") from error
    if existing and not force:
        raise OutputDirError(
            f"{out_dir}: output directory is not empty ({len(existing)} entries); "
            "use --force to replace it, or choose another --out"
        )


#: Outputs written side by side when a run has this many records; below, one process is quicker.
PARALLEL_MIN_RECORDS = 20_000
#: The outputs besides report.json, the slowest first (measured on 1M records), so the last one
#: a worker starts is a quick one.
_OUTPUTS = (
    "report.html",
    "clean.jsonl",
    "findings.jsonl",
    "removed.jsonl",
    "clusters.jsonl",
    "report.md",
    "quarantine.jsonl",
)


def _write_output(shared: tuple[Any, Path], name: str) -> None:
    """Write the output file ``name`` of ``result`` into ``staging``."""
    result, staging = shared
    path = staging / name
    if name == "report.html":
        _write_text(path, render_html(result))
    elif name == "report.md":
        _write_text(path, render_markdown(result.report, result.found, result.clusters))
    elif name == "findings.jsonl":
        write_jsonl(result.found.batches(), path)  # the evidence's JSON text as it is
    elif name in ("clean.jsonl", "removed.jsonl"):
        # Streamed from the records when the result can (no DataFrame of the whole corpus).
        write_jsonl(_rows(result, name.removesuffix(".jsonl")), path)
    else:
        write_jsonl(getattr(result, name.removesuffix(".jsonl")), path)
    # What this output built and dropped goes back to the OS before the next one builds its own.
    release_memory()


def write_outputs(
    result: Any, out: str | os.PathLike[str], force: bool = False, workers: int | None = None
) -> Path:
    """Write ``result`` (an :class:`audit.pipeline.AuditResult`) under ``out``; return its path.

    Refuses a non-empty ``out`` unless ``force``, which replaces it whole. ``workers``: processes
    writing the files side by side (forked: the run is over, they read its results from shared
    memory), None for every core from :data:`PARALLEL_MIN_RECORDS` records up when a core is idle.
    """
    ensure_writable(out, force)
    out_dir = Path(out)
    if workers is None:
        workers = cores() if len(result.records) >= PARALLEL_MIN_RECORDS and idle_cores() >= 1 else 1
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as error:
        raise OutputDirError(f"{out_dir}: cannot create the output directory: {error.strerror}") from error
    try:
        names = _OUTPUTS
        write_corpus = getattr(result, "write_corpus", None)
        if write_corpus is not None:
            # A run over partitions: its workers write clean/removed/findings, and report.html asks them for
            # the texts it shows, so nothing is forked (a fork would copy the Dask client's threads).
            written = write_corpus(staging)
            names, workers = tuple(n for n in _OUTPUTS if n not in written), 1
        forked_map(_write_output, (result, staging), names, workers)
        # report.json last: its presence marks a complete run.
        _write_text(
            staging / "report.json",
            json.dumps(result.report, indent=2, ensure_ascii=False, default=_plain) + "\n",
        )
        if out_dir.exists():
            for name in KEEP_FILES:
                if (out_dir / name).exists():
                    shutil.copy2(out_dir / name, staging / name)
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, retired / "dir")
            os.rename(staging, out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, out_dir)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputDirError(f"{out_dir}: writing outputs failed: {error}") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.chmod(out_dir, 0o755)  # mkdtemp makes it 0700
    return out_dir
