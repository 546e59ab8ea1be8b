"""truncation: a title or text that was cut off.

Signals (each a finding with its evidence): an ellipsis at the end (``...``, ``…``), a
dangling function word at the end (``... the``), an opening bracket never closed; a text
that simply lacks final punctuation is only ``info`` (real abstracts sometimes do).

Example:
    >>> ends_cut_off("We study the effect of")
    ('dangling function word', 'of')
    >>> ends_cut_off("A complete sentence.") is None
    True
"""

from __future__ import annotations

import re

import pandas as pd

from audit.checks.base import Check, CheckContext, Finding
from audit.urls import URL_PATTERN

FUNCTION_WORDS = frozenset(
    (
        "a an the of and or but nor with without to for from in into on onto at by as via "
        "than that which whose who whom where when while if because although since about "
        "between among under over through during against our their its his her we is are was "
        "were be been this these those such"
    ).split()
)

_ELLIPSIS = re.compile(r"(?:\.\.\.|…)\s*$")
# The last word, unless it ends a hyphenated compound ("Try-On" is not a dangling "on").
_LAST_WORD = re.compile(r"(?<![\w-])(\w+)\s*$")
_FINAL_PUNCTUATION = tuple(".!?)]}\"'”’:;")


def _unclosed_bracket(text: str) -> str | None:
    depth: dict[str, int] = {"(": 0, "[": 0}
    for char in text:
        if char in "([":
            depth[char] += 1
        elif char == ")" and depth["("]:
            depth["("] -= 1
        elif char == "]" and depth["["]:
            depth["["] -= 1
    return next((b for b, d in depth.items() if d), None)


def ends_cut_off(text: str) -> tuple[str, str] | None:
    """``(signal, matched text)`` when ``text`` ends the way a cut-off text does, else None."""
    stripped = text.rstrip()
    if not stripped:
        return None
    match = _ELLIPSIS.search(stripped)
    if match:
        return "ends with an ellipsis", match.group(0).strip()
    if stripped.endswith(_FINAL_PUNCTUATION):
        return None
    word = _LAST_WORD.search(stripped)
    if word and word.group(1).lower() in FUNCTION_WORDS:
        return "dangling function word", word.group(1)
    return None


class TruncationCheck(Check):
    name = "truncation"
    description = "titles and texts that were cut off (ellipsis, dangling word, open bracket)"

    def run(self, records: pd.DataFrame, context: CheckContext) -> list[Finding]:
        findings: list[Finding] = []
        for record_id, title, text in zip(records["id"], records["title"], records["text"], strict=True):
            for field_name, value in (("title", title), ("text", text)):
                findings.extend(self._field_findings(record_id, field_name, value))
        return findings

    def _field_findings(self, record_id: str, field_name: str, value: str) -> list[Finding]:
        stripped = value.rstrip()
        if not stripped:
            return []
        cut = ends_cut_off(stripped)
        if cut:
            signal, matched = cut
            return [
                Finding(
                    record_id,
                    self.name,
                    "warning",
                    field_name,
                    f"{field_name} looks cut off: {signal}",
                    {
                        "signal": signal,
                        "match": matched,
                        "offset": len(stripped) - len(matched),
                        "tail": stripped[-80:],
                    },
                )
            ]
        if field_name != "text":
            return []
        bracket = _unclosed_bracket(stripped)
        if bracket:
            offset = stripped.rfind(bracket)
            return [
                Finding(
                    record_id,
                    self.name,
                    "warning",
                    field_name,
                    f"text ends inside an open bracket {bracket!r}",
                    {
                        "signal": "unclosed bracket",
                        "match": bracket,
                        "offset": offset,
                        "tail": stripped[-80:],
                    },
                )
            ]
        last_url = None
        for last_url in URL_PATTERN.finditer(stripped):  # noqa: B007 - we want the last one
            pass
        ends_with_url = last_url is not None and last_url.end() == len(stripped)
        if not stripped.endswith(_FINAL_PUNCTUATION) and not ends_with_url:
            return [
                Finding(
                    record_id,
                    self.name,
                    "info",
                    field_name,
                    "text has no final punctuation",
                    {
                        "signal": "no final punctuation",
                        "match": stripped[-1],
                        "offset": len(stripped) - 1,
                        "tail": stripped[-80:],
                    },
                )
            ]
        return []
