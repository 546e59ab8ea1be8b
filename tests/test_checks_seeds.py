"""What the checks report on the real seed files, judged by hand."""

from __future__ import annotations

from collections import Counter

import audit


def _of(result: audit.AuditResult, check: str):
    return result.findings[result.findings["check"] == check]


def test_every_real_malformed_url_is_found(seeds_result: audit.AuditResult) -> None:
    kinds = Counter(e["kind"] for e in _of(seeds_result, "malformed_url")["evidence"])
    # 4 "https: //", 1 glued pair, 4 LaTeX brace cases: nothing more, nothing less.
    assert kinds == Counter({"space after scheme": 4, "glued URLs": 1, "latex braces": 4})


def test_no_real_abstract_is_warned_as_truncated_short_or_misencoded(seeds_result: audit.AuditResult) -> None:
    serious = seeds_result.findings[seeds_result.findings["severity"].isin(["error", "warning"])]
    assert set(serious["check"]) == {"malformed_url", "markup_residue", "boilerplate"}


def test_latex_residue_in_seed_abstracts(seeds_result: audit.AuditResult) -> None:
    markup = _of(seeds_result, "markup_residue")
    matches = Counter((e["kind"], e["match"]) for e in markup["evidence"])
    assert matches[("latex escape", "\\%")] == 20  # "4\%": the backslash is LaTeX, the % is content
    assert matches[("latex escape", "\\&")] == 1
    assert matches[("latex accent", "\\'e")] == 10
    assert matches[("latex command", "{\\em dynamical stability}")] == 1
    assert matches[("latex command", "\\tool")] == 6
    assert matches[("latex comment", "%")] == 1  # "schemes %that were proposed"
    # "0.51% higher" is a percent sign, not a comment
    assert all(not e["match"].startswith("%") or e["kind"] == "latex comment" for e in markup["evidence"])
    # escapes and accents are repaired in the cleaned corpus; commands are only reported
    texts = " ".join(seeds_result.clean["text"])
    assert "4\\%" not in texts and "less than 4% of the total" in texts
    assert "Poincaré ResNet" in texts and "Poincar\\'e" not in texts
    assert "{\\em dynamical stability}" in texts


def test_cloudflare_email_placeholder_is_leaked_furniture(seeds_result: audit.AuditResult) -> None:
    boilerplate = _of(seeds_result, "boilerplate")
    assert list(boilerplate["record_id"]) == ["003_30f5b1fc1d268bd4.txt:107"] * 2
    assert {e["kind"] for e in boilerplate["evidence"]} == {"email protection"}
    assert boilerplate["repair"].isna().all()  # the placeholder replaced real content: not repairable


def test_seed_counts_are_unchanged(seeds_result: audit.AuditResult) -> None:
    assert seeds_result.report["counts"] == {
        "input": 588,
        "records": 588,
        "kept": 526,
        "removed": 62,
        "quarantined": 0,
    }
    assert seeds_result.report["findings_by_check"]["malformed_url"] == 9
    assert seeds_result.report["findings_by_check"]["truncation"] == 3
