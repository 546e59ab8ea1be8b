"""The ``scrape-audit`` command: parses arguments and calls the library (:mod:`audit`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import audit
from audit.checks import CHECKS
from audit.config import SETTINGS, ConfigError, Settings, resolve
from audit.expectations import SuiteError
from audit.gate import gate_summary, github_annotations, junit_xml, load_report
from audit.index import open_index, render_index, verify_index
from audit.terminal import stage_progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
examples:
  scrape-audit run seeds/                       audit every file below seeds/ into reports/
  scrape-audit run dump.jsonl --out out/ --force --text-field body --id-field doc_id
  scrape-audit run a.csv b.parquet --threshold 0.9 --checks malformed_url
  scrape-audit check seeds/ --max-duplicate-rate 0.15 --max-findings malformed_url=20
  scrape-audit check --print-config             show the effective configuration and its origins
  scrape-audit run today/ --index scrapes.sqlite  dedup against every earlier run into scrapes.sqlite
  scrape-audit index stats scrapes.sqlite       runs, records and size of an index

settings come from flags, else scrape-audit.toml or pyproject.toml [tool.scrape-audit], else defaults.
exit codes: run: 0 done; check: 0 passed, 1 the data failed the gate;
            both: 2 usage error or unreadable input (the message names the file), 130 interrupted.
"""


def _add_input_options(parser: argparse.ArgumentParser, out_default: str | None) -> None:
    """Options shared by ``run`` and ``check``. Settings default to SUPPRESS, so that only flags
    actually given override the config file."""
    keep = argparse.SUPPRESS
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to audit")
    out_help = "output directory (default: reports)" if out_default else "also write every output to DIR"
    parser.add_argument("--out", default=out_default, metavar="DIR", help=out_help)
    parser.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: scrape-audit.toml or "
        "pyproject.toml [tool.scrape-audit] in the working directory)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=keep,
        help="exact shingle Jaccard at which two records are duplicates (default: 0.8)",
    )
    parser.add_argument("--num-perm", type=int, default=keep, help="MinHash permutations (default: 128)")
    parser.add_argument("--shingle-size", type=int, default=keep, help="words per shingle (default: 5)")
    parser.add_argument(
        "--checks",
        metavar="NAME[,NAME]",
        default=keep,
        help=f"checks to run (default: all): {', '.join(sorted(CHECKS))}",
    )
    for name, default in (("text", "text"), ("title", "title"), ("url", "url"), ("id", "id")):
        parser.add_argument(
            f"--{name}-field",
            default=keep,
            metavar="FIELD",
            help=f"field holding the {name} in JSONL/CSV/Parquet (default: {default})",
        )
    parser.add_argument(
        "--expectations",
        metavar="DIR",
        default=keep,
        help="Great Expectations suites (*.json) to validate (default: expectations/, when it exists)",
    )
    parser.add_argument(
        "--no-expectations",
        dest="expectations",
        action="store_false",
        default=keep,
        help="run no Great Expectations suites",
    )
    parser.add_argument(
        "--index",
        metavar="LOCATION",
        default=keep,
        help="dedup against every record kept by earlier runs into this index, then add the kept "
        "ones: a SQLite file, or redis://HOST:PORT/DB",
    )
    parser.add_argument(
        "--index-wait",
        type=float,
        metavar="SECONDS",
        default=keep,
        help="how long to wait for an index another run is using (default: 60)",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default=keep,
        help="where dedup signs and finds candidates: this machine (default) or a Dask cluster",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=keep,
        help="with --engine dask: a running scheduler (tcp://HOST:PORT); default: a LocalCluster "
        "on 127.0.0.1, one worker process per core",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress; only the final summary")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scrape-audit",
        description="Find near-duplicates and data-quality defects in scraped text corpora, "
        "and write a cleaned corpus with a record of every change.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scrape-audit {audit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="audit files and write the cleaned corpus and reports",
        description="Audit scrape files (page dumps .txt, .jsonl, .csv, .parquet, optionally .gz; "
        "a directory means every supported file below it) and write clean.jsonl, removed.jsonl, "
        "quarantine.jsonl, findings.jsonl, clusters.jsonl, report.json and report.md.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(run, out_default="reports")
    check = commands.add_parser(
        "check",
        help="audit files and pass or fail them against thresholds (a CI gate)",
        description="Audit scrape files like `run`, then decide: exit 0 when every criterion passes, "
        "1 when the data fails the gate (each failed criterion is named), 2 on a usage error.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(check, out_default=None)
    keep = argparse.SUPPRESS
    check.add_argument(
        "--max-duplicate-rate",
        type=float,
        metavar="RATE",
        default=keep,
        help="fail when more than RATE of the records are removed as duplicates (e.g. 0.15)",
    )
    check.add_argument(
        "--max-findings",
        action="append",
        metavar="CHECK=N",
        default=keep,
        help="fail when CHECK has more than N findings of any severity; replaces --fail-on for "
        "that check (repeatable)",
    )
    check.add_argument(
        "--fail-on",
        choices=("error", "warning", "info"),
        default=keep,
        help="lowest severity of a finding or expectation that fails the gate (default: error)",
    )
    check.add_argument(
        "--baseline",
        metavar="REPORT",
        default=keep,
        help="a previous report.json: fail when quality regressed against it",
    )
    check.add_argument(
        "--baseline-tolerance",
        type=float,
        metavar="RATE",
        default=keep,
        help="allowed increase of the duplicate rate and of each check's findings per record "
        "over the baseline (default: 0.0)",
    )
    index = commands.add_parser(
        "index",
        help="inspect or maintain an index of earlier runs (see run --index)",
        description="stats: runs, records, band keys and size; verify: check the index is whole "
        "and its signatures match its texts (exit 1 when not); compact: reclaim space (and, in "
        "Redis, drop the unseen records of a killed run).",
    )
    index.add_argument("action", choices=("stats", "verify", "compact"))
    index.add_argument("location", metavar="LOCATION", help="a SQLite file or redis://HOST:PORT/DB")
    index.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.add_argument("--junit", metavar="FILE", help="write JUnit XML (one test case per criterion)")
    check.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration and where each value came from, then exit",
    )
    return parser


def _max_findings(pairs: list[str]) -> dict[str, int]:
    table = {}
    for pair in pairs:
        check, sep, limit = pair.partition("=")
        if not sep or not limit.strip().isdigit():
            raise ConfigError(f"--max-findings expects CHECK=N (N an integer >= 0), got {pair!r}")
        table[check.strip()] = int(limit)
    return table


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (keys of :data:`audit.config.SETTINGS`)."""
    flags = {
        key: getattr(args, key.replace("-", "_")) for key in SETTINGS if hasattr(args, key.replace("-", "_"))
    }
    if "checks" in flags:
        flags["checks"] = [c.strip() for c in flags["checks"].split(",") if c.strip()]
    if "max-findings" in flags:
        flags["max-findings"] = _max_findings(flags["max-findings"])
    if "threshold" in flags and flags["threshold"] <= 0:
        raise ConfigError(f"--threshold must be in (0, 1], got {flags['threshold']}")
    return flags


def _summary(result: audit.AuditResult, out: str | None) -> str:
    counts, dup = result.report["counts"], result.report["duplicates"]
    lines = [
        f"records: {counts['input']} in, {counts['kept']} kept, {counts['removed']} removed, "
        f"{counts['quarantined']} quarantined",
        f"duplicates: {dup['clusters']} clusters covering {dup['records_in_clusters']} records "
        f"(duplicate rate {dup['duplicate_rate']:.2%})",
        "findings: "
        + (", ".join(f"{k} {v}" for k, v in result.report["findings_by_check"].items()) or "none"),
    ]
    notes = [f"{f['source']}: {f['note']}" for f in result.report.get("inputs", []) if f.get("note")]
    notes += [f"{s['source']}: {s['reason']}" for s in result.report.get("skipped_inputs", [])]
    if notes:  # an input that gave nothing is said, never silent
        more = f"; and {len(notes) - 5} more (report.json)" if len(notes) > 5 else ""
        shown = "; ".join(notes[:5]) + more
        lines.insert(1, f"notes on inputs: {shown}")
    expectations = result.report.get("expectations")
    if expectations is not None:
        lines.append(
            f"expectations: {expectations['evaluated'] - expectations['failed']} of "
            f"{expectations['evaluated']} passed in {len(expectations['suites'])} suite(s)"
        )
    if out is None:
        lines.append("outputs: none written (give --out DIR to write them)")
    else:
        lines.append(
            f"outputs: {str(out).rstrip('/')}/ (clean.jsonl, removed.jsonl, findings.jsonl, "
            "clusters.jsonl, report.json, report.md, report.html)"
        )
    if "gate" in result.report:
        lines += gate_summary(result.report["gate"])
    return "\n".join(lines)


def _progress(args: argparse.Namespace):
    """A progress bar over the stages on a terminal; nothing when piped or with --quiet."""
    return stage_progress(enabled=not args.quiet and sys.stderr.isatty())


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if not args.paths:
        raise ConfigError("give at least one PATH to audit")
    with _progress(args) as progress:
        result = audit.run(
            args.paths, out=args.out, config=settings.audit_config(), force=args.force, progress=progress
        )
    print(_summary(result, args.out))
    return EXIT_OK


def _check(args: argparse.Namespace, settings: Settings) -> int:
    if args.print_config:
        print(settings.render())
        return EXIT_OK
    if not args.paths:
        raise ConfigError("give at least one PATH to check (or --print-config)")
    baseline_path = settings.values["baseline"]
    baseline = load_report(baseline_path) if baseline_path else None
    config = settings.audit_config(gate=True, baseline=baseline)
    with _progress(args) as progress:
        result = audit.run(args.paths, out=args.out, config=config, force=args.force, progress=progress)
    assert result.gate is not None
    gate = result.report["gate"]
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(gate, result.found, result.records, result.files):
            print(line)
    print(_summary(result, args.out))
    if args.junit:
        Path(args.junit).write_text(junit_xml(gate), encoding="utf-8")
    return EXIT_OK if result.gate.passed else EXIT_FAILED


def _index(args: argparse.Namespace) -> int:
    backend = open_index(args.location, wait=5.0, create=False)
    try:
        if args.action == "stats":
            found: dict[str, Any] = backend.stats()
            problems: list[str] = []
        elif args.action == "verify":
            problems = verify_index(backend)
            found = {"location": backend.location, "problems": problems, "ok": not problems}
        else:
            found, problems = backend.compact(), []
    finally:
        backend.close()
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(render_index(args.action, found))
    return EXIT_FAILED if problems else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "index":
            return _index(args)
        settings = resolve(_flags(args), args.config)
        return _check(args, settings) if args.command == "check" else _run(args, settings)
    except (audit.InputError, audit.OutputDirError, SuiteError, OSError, ValueError) as error:
        print(f"scrape-audit: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outputs are renamed into place last: nothing half-written is left
        print("scrape-audit: interrupted; no outputs written", file=sys.stderr)
        return EXIT_INTERRUPTED
