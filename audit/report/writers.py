"""Writing a run's outputs: every file goes to a temporary directory first, which then
replaces the output directory in one rename, so an interrupted run never leaves a
half-written corpus that looks complete."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from audit.report.html import render_html
from audit.report.markdown import render_markdown

#: Files in an output directory that do not make it "used" (kept across runs).
KEEP_FILES = {".gitkeep"}


class OutputDirError(Exception):
    """The output directory holds files and ``force`` was not given."""


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/None to None."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in frame.to_dict("records"):
            handle.write(json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False, default=str))
            handle.write("\n")


def ensure_writable(out: str | os.PathLike[str], force: bool = False) -> None:
    """Raise :class:`OutputDirError` unless ``out`` may receive a run's outputs.

    A non-empty ``out`` is refused unless ``force``, which replaces it whole.
    """
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir}: exists and is not a directory")
    existing = [p for p in out_dir.iterdir() if p.name not in KEEP_FILES] if out_dir.exists() else []
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
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        write_jsonl(result.clean, staging / "clean.jsonl")
        write_jsonl(result.removed, staging / "removed.jsonl")
        write_jsonl(result.quarantine, staging / "quarantine.jsonl")
        write_jsonl(result.findings, staging / "findings.jsonl")
        write_jsonl(result.clusters, staging / "clusters.jsonl")
        (staging / "report.md").write_text(
            render_markdown(result.report, result.findings, result.clusters), encoding="utf-8"
        )
        (staging / "report.html").write_text(render_html(result), encoding="utf-8")
        # report.json last: its presence marks a complete run.
        (staging / "report.json").write_text(
            json.dumps(result.report, indent=2, ensure_ascii=False, default=_plain) + "\n", encoding="utf-8"
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
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.chmod(out_dir, 0o755)  # mkdtemp makes it 0700
    return out_dir
