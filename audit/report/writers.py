"""Writing a run's outputs: every file goes to a temporary directory first, which then
replaces the output directory in one rename, so an interrupted run never leaves a
half-written corpus that looks complete."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from audit.frames import column_values
from audit.report.html import render_html
from audit.report.markdown import render_markdown

#: Files in an output directory that do not make it "used" (kept across runs).
KEEP_FILES = {".gitkeep"}


class OutputDirError(Exception):
    """The output directory holds files and ``force`` was not given."""


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/None to None."""
    if type(value) is str:  # most cells: skip the tests below
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


#: One encoder for every line: ``json.dumps`` with options builds a new one per call.
_JSONL_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _plain_rows(frame: pd.DataFrame, batch: int = 50_000) -> Iterator[dict[str, Any]]:
    """The rows of ``frame`` with JSON-safe values; only columns that may hold other values
    (floats with NaN, numpy scalars in object columns, missing strings) go through :func:`_plain`."""
    columns = [str(c) for c in frame.columns]
    for start in range(0, len(frame), batch):  # a slice at a time: no list of a whole column
        part = frame.iloc[start : start + batch]
        values = []
        for n in range(len(columns)):
            column = part.iloc[:, n]
            cells = column_values(column)
            exact = pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
            strings = isinstance(column.dtype, pd.StringDtype) and not column.hasnans
            values.append(cells if exact or strings else [_plain(cell) for cell in cells])
        for row in zip(*values, strict=True):
            yield dict(zip(columns, row, strict=True))


def write_jsonl(frame: pd.DataFrame | Iterable[dict[str, Any]], path: Path) -> None:
    """One JSON object a line: the rows of a DataFrame, or streamed row dicts of plain JSON values
    (str, int, float, bool, None, lists and dicts of them)."""
    rows = _plain_rows(frame) if isinstance(frame, pd.DataFrame) else frame
    encode = _JSONL_ENCODER.encode
    with path.open("w", encoding="utf-8") as handle:
        lines: list[str] = []
        for row in rows:
            lines.append(encode(row))
            if len(lines) >= 2_000:  # written in blocks: one write call per line costs more
                lines.append("")
                handle.write("\n".join(lines))
                lines = []
        if lines:
            lines.append("")
            handle.write("\n".join(lines))
        _sync(handle)


def _rows(result: Any, name: str) -> pd.DataFrame | Iterable[dict[str, Any]]:
    """``result``'s clean or removed rows: streamed by an AuditResult, else its DataFrame."""
    stream = getattr(result, f"{name}_rows", None)
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


def write_outputs(result: Any, out: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``result`` (an :class:`audit.pipeline.AuditResult`) under ``out``; return its path.

    Refuses a non-empty ``out`` unless ``force``, which replaces it whole.
    """
    ensure_writable(out, force)
    out_dir = Path(out)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as error:
        raise OutputDirError(f"{out_dir}: cannot create the output directory: {error.strerror}") from error
    try:
        # Streamed from the records when the result can (no DataFrame of the whole corpus).
        write_corpus = getattr(result, "write_corpus", None)  # a run over partitions writes its own
        if write_corpus is not None:
            write_corpus(staging)
        else:
            write_jsonl(_rows(result, "clean"), staging / "clean.jsonl")
            write_jsonl(_rows(result, "removed"), staging / "removed.jsonl")
        write_jsonl(result.quarantine, staging / "quarantine.jsonl")
        write_jsonl(result.findings, staging / "findings.jsonl")
        write_jsonl(result.clusters, staging / "clusters.jsonl")
        _write_text(staging / "report.md", render_markdown(result.report, result.findings, result.clusters))
        _write_text(staging / "report.html", render_html(result))
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
