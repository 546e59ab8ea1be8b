"""Report: the run's outputs on disk (JSONL, report.json, report.md, report.html), written atomically.

Outputs under ``--out DIR``:

==================  ==============================================================
clean.jsonl         the cleaned corpus: one kept record a line, with ``sources``
removed.jsonl       every record not kept, with ``reason`` and ``duplicate_of``
quarantine.jsonl    input that could not become a record: file, line, raw, error
findings.jsonl      every finding, with ``applied`` for its repair
clusters.jsonl      one duplicate cluster a line: representative, members, similarities
report.json         counts, findings by check, parameters, inputs, timings
report.md           the summary as Markdown, for a PR comment
report.html         one self-contained page: cards, charts, near-duplicate explorer, findings
==================  ==============================================================
"""

from audit.report.html import render_html
from audit.report.summary import summarise
from audit.report.writers import OutputDirError, ensure_writable, write_outputs

__all__ = ["OutputDirError", "ensure_writable", "render_html", "summarise", "write_outputs"]
