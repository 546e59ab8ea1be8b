"""scrape-audit: dedup and data-quality auditing for scraped text corpora.

The library does the work; the CLI (:mod:`audit.cli`) only parses arguments and calls it.

Example:
    >>> import audit
    >>> result = audit.run(["seeds/"], out="reports/", force=True)   # doctest: +SKIP
    >>> result.report["counts"]                                      # doctest: +SKIP
    {'input': 588, 'records': 588, 'kept': 526, 'removed': 62, 'quarantined': 0}
    >>> result.clean.head()                                          # doctest: +SKIP

The CI gate is the same run with thresholds (``scrape-audit check``)::

    >>> gate = audit.GateConfig(max_duplicate_rate=0.15)
    >>> config = audit.AuditConfig(expectations="expectations", gate=gate)
    >>> result = audit.run(["seeds/"], out=None, config=config)      # doctest: +SKIP
    >>> result.gate.passed, [c.name for c in result.gate.failures]   # doctest: +SKIP
    (False, ['findings:malformed_url'])
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from audit._version import __version__
from audit.checks import CHECKS, run_checks
from audit.dedup import DedupConfig, find_duplicates
from audit.expectations import SuiteError
from audit.gate import GateConfig, GateResult, evaluate_gate
from audit.index import IndexLockedError, IndexStoreError, open_index, verify_index
from audit.ingest import FieldMap, InputError, read_inputs
from audit.pipeline import AuditConfig, AuditResult, ProgressHook, audit
from audit.report import OutputDirError, ensure_writable, write_outputs

__all__ = [
    "CHECKS",
    "AuditConfig",
    "AuditResult",
    "DedupConfig",
    "FieldMap",
    "GateConfig",
    "GateResult",
    "IndexLockedError",
    "IndexStoreError",
    "InputError",
    "OutputDirError",
    "SuiteError",
    "__version__",
    "audit",
    "evaluate_gate",
    "find_duplicates",
    "open_index",
    "read_inputs",
    "run",
    "run_checks",
    "verify_index",
    "write_outputs",
]


def run(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = "reports",
    config: AuditConfig | None = None,
    force: bool = False,
    progress: ProgressHook | None = None,
) -> AuditResult:
    """Audit ``paths`` and, unless ``out`` is None, write every output under ``out``."""
    paths = list(paths)  # read twice: the overlap check and the run
    if config is not None and config.engine == "dask":
        from audit.engines.sharded import run_sharded, sharded  # Dask is imported only when asked for

        if sharded(config):
            return run_sharded(paths, out, config, force, progress)
    if out is not None:
        ensure_writable(out, force, inputs=paths)  # fail before the work, not after it
    result = audit(paths, config, progress=progress, commit_index=out is None)
    if out is not None:
        if progress:
            progress("write", "start", 0.0)
        started = time.perf_counter()
        try:
            write_outputs(result, out, force=force)
        except BaseException:
            if result.index is not None:
                result.index.abort()
            raise
        if result.index is not None:
            # After the outputs: a crash in between leaves outputs and the index as before the
            # run, never an index holding records whose outputs were not written.
            result.index.commit()
        if progress:
            progress("write", "done", time.perf_counter() - started)
    return result
