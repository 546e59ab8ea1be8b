"""The ``scrape-audit`` command: parses arguments and calls the library (:mod:`audit`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import audit
from audit.checks import CHECKS
from audit.ingest import FieldMap

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
examples:
  scrape-audit run seeds/                       audit every file below seeds/ into reports/
  scrape-audit run dump.jsonl --out out/ --force --text-field body --id-field doc_id
  scrape-audit run a.csv b.parquet --threshold 0.9 --checks malformed_url

exit codes: 0 done, 2 usage error or unreadable input (the message names the file), 130 interrupted.
"""


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
    run.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to audit")
    run.add_argument("--out", default="reports", metavar="DIR", help="output directory (default: reports)")
    run.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    run.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="exact shingle Jaccard at which two records are duplicates (default: 0.8)",
    )
    run.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default: 128)")
    run.add_argument("--shingle-size", type=int, default=5, help="words per shingle (default: 5)")
    run.add_argument(
        "--checks", metavar="NAME[,NAME]", help=f"checks to run (default: all): {', '.join(sorted(CHECKS))}"
    )
    for name, default in (("text", "text"), ("title", "title"), ("url", "url"), ("id", "id")):
        run.add_argument(
            f"--{name}-field",
            default=default,
            metavar="FIELD",
            help=f"field holding the {name} in JSONL/CSV/Parquet (default: {default})",
        )
    run.add_argument("--quiet", action="store_true", help="no progress; only the final summary")
    return parser


def _config(args: argparse.Namespace) -> audit.AuditConfig:
    if not 0.0 < args.threshold <= 1.0:
        raise ValueError(f"--threshold must be in (0, 1], got {args.threshold}")
    checks = tuple(c.strip() for c in args.checks.split(",") if c.strip()) if args.checks else None
    return audit.AuditConfig(
        threshold=args.threshold,
        num_perm=args.num_perm,
        shingle_size=args.shingle_size,
        checks=checks,
        fields=FieldMap(text=args.text_field, title=args.title_field, url=args.url_field, id=args.id_field),
    )


def _progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None

    def show(step: str, phase: str, seconds: float) -> None:
        if phase == "done":
            print(f"  {step:<10} {seconds:7.2f} s", file=sys.stderr)

    return show


def _summary(result: audit.AuditResult, out: str) -> str:
    counts, dup = result.report["counts"], result.report["duplicates"]
    lines = [
        f"records: {counts['input']} in, {counts['kept']} kept, {counts['removed']} removed, "
        f"{counts['quarantined']} quarantined",
        f"duplicates: {dup['clusters']} clusters covering {dup['records_in_clusters']} records "
        f"(duplicate rate {dup['duplicate_rate']:.2%})",
        "findings: "
        + (", ".join(f"{k} {v}" for k, v in result.report["findings_by_check"].items()) or "none"),
        f"outputs: {str(out).rstrip('/')}/ (clean.jsonl, removed.jsonl, findings.jsonl, "
        "clusters.jsonl, report.json, report.md)",
    ]
    notes = [f"{f['source']}: {f['note']}" for f in result.report.get("inputs", []) if f.get("note")]
    notes += [f"{s['source']}: {s['reason']}" for s in result.report.get("skipped_inputs", [])]
    if notes:  # an input that gave nothing is said, never silent
        more = f"; and {len(notes) - 5} more (report.json)" if len(notes) > 5 else ""
        shown = "; ".join(notes[:5]) + more
        lines.insert(1, f"notes on inputs: {shown}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        config = _config(args)
        result = audit.run(
            args.paths, out=args.out, config=config, force=args.force, progress=_progress(args.quiet)
        )
    except (audit.InputError, audit.OutputDirError, ValueError) as error:
        print(f"scrape-audit: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outputs are renamed into place last: nothing half-written is left
        print("scrape-audit: interrupted; no outputs written", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(_summary(result, args.out))
    return EXIT_OK
