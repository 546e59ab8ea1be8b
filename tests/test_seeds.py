"""The foundation's promises, on the real seed files."""

from __future__ import annotations

import json
from pathlib import Path

import audit
from audit.furniture import is_furniture


def test_records_per_file(seeds_result: audit.AuditResult) -> None:
    per_file = seeds_result.records.groupby("source").size().to_dict()
    assert per_file == {
        "000_1a2e1162499fffc1.txt": 53,
        "001_02fc474db44ba42c.txt": 232,
        "002_e0810c16e6df6684.txt": 216,
        "003_30f5b1fc1d268bd4.txt": 87,
    }
    assert len(seeds_result.quarantine) == 0


def test_no_page_furniture_in_records(seeds_result: audit.AuditResult) -> None:
    records = seeds_result.records
    assert not records["title"].str.startswith("Subscribe").any()
    assert not any(is_furniture(t) for t in records["title"])
    assert not any(is_furniture(t) for t in records["text"])
    assert (records["title"] != "").all() and (records["text"] != "").all()
    # The glued "SubscribeEfficient Geometry..." became a clean title on its own line.
    first = records[records["id"] == "001_02fc474db44ba42c.txt:3"].iloc[0]
    assert first["title"] == "Efficient Geometry-aware 3D Generative Adversarial Networks"
    assert first["text"].startswith("Unsupervised generation of high-quality")


def test_date_headers_date_the_records_after_them(seeds_result: audit.AuditResult) -> None:
    dates = seeds_result.records.groupby("source")["scraped_date"].unique().to_dict()
    assert list(dates["000_1a2e1162499fffc1.txt"]) == ["Mar 13"]
    assert list(dates["003_30f5b1fc1d268bd4.txt"]) == ["Mar 12"]
    assert list(dates["001_02fc474db44ba42c.txt"]) == [None]


def test_duplicate_clusters(seeds_result: audit.AuditResult) -> None:
    clusters = seeds_result.clusters
    assert len(clusters) == 53
    assert clusters["size"].sum() == 115
    source_of = dict(zip(seeds_result.records["id"], seeds_result.records["source"], strict=True))
    for members in clusters["members"]:
        sources = [source_of[m] for m in members]
        assert len(set(sources)) == len(sources), f"cluster within one file: {members}"


def test_clean_and_removed(seeds_result: audit.AuditResult) -> None:
    clean, removed = seeds_result.clean, seeds_result.removed
    assert len(clean) == 526
    assert len(removed) == 62
    kept_ids = set(clean["id"])
    assert set(removed["duplicate_of"]) <= kept_ids
    assert set(removed["reason"]) == {"exact_duplicate"}
    all_ids = set(seeds_result.records["id"])
    assert kept_ids | set(removed["id"]) == all_ids
    assert kept_ids.isdisjoint(removed["id"])
    # sources: every copy a kept record stands for
    assert sum(len(s) for s in clean["sources"]) == 588
    counts = seeds_result.report["counts"]
    assert counts == {"input": 588, "records": 588, "kept": 526, "removed": 62, "quarantined": 0}


def _url_findings(result: audit.AuditResult):
    return result.findings[result.findings["check"] == "malformed_url"]


def test_real_malformed_urls_are_found(seeds_result: audit.AuditResult) -> None:
    findings = _url_findings(seeds_result)
    kinds = {e["kind"] for e in findings["evidence"]}
    assert {"space after scheme", "glued URLs", "latex braces"} <= kinds
    matches = " ".join(e["match"] for e in findings["evidence"])
    assert "https: //" in matches
    assert "Diversity-Driven-Synthesis.https://" in matches
    assert "MCNET{Project}" in matches
    assert "GCORN{https://github.com/Sennadir/GCORN}" in matches
    assert "{{https://github.com/giangdip2410/HyperRouter}}" in matches
    assert "xLSTM-UNet/{http://tianrun-chen.github.io/xLSTM-Unet/}" in matches
    assert (findings["severity"] == "error").all()


def test_sentence_final_url_is_not_a_finding(seeds_result: audit.AuditResult) -> None:
    records = seeds_result.records.set_index("id")
    # "... Code is available at https://github.com/VDIGPKU/CBNetV2."
    record = records.loc["003_30f5b1fc1d268bd4.txt:11"]
    assert record["text"].endswith("https://github.com/VDIGPKU/CBNetV2.")
    assert record["urls"] == ["https://github.com/VDIGPKU/CBNetV2"]
    assert "003_30f5b1fc1d268bd4.txt:11" not in set(_url_findings(seeds_result)["record_id"])
    # "(https://github.com/facebookresearch/mowst-gnn)." keeps neither bracket nor period
    mowst = [u for urls in records["urls"] for u in urls if "mowst" in u]
    assert mowst and set(mowst) == {"https://github.com/facebookresearch/mowst-gnn"}
    assert all(not u.endswith((".", ",", ")", ";")) for urls in records["urls"] for u in urls)


def test_repairs_reach_the_cleaned_corpus(seeds_result: audit.AuditResult) -> None:
    texts = " ".join(seeds_result.clean["text"])
    assert "https: //" not in texts
    assert "Diversity-Driven-Synthesis. https://github.com/AngusDujw" in texts
    assert "{{https://" not in texts and "MCNET{Project}" not in texts
    repaired = seeds_result.clean[seeds_result.clean["repairs"].map(len) > 0]
    assert len(repaired) >= 6


def test_no_real_abstract_flagged_truncated(seeds_result: audit.AuditResult) -> None:
    truncation = seeds_result.findings[seeds_result.findings["check"] == "truncation"]
    assert (truncation["severity"] == "info").all()


def test_output_files(seeds_out: Path) -> None:
    def lines(name: str) -> list[dict]:
        return [json.loads(line) for line in (seeds_out / name).read_text().splitlines()]

    clean, removed, clusters = lines("clean.jsonl"), lines("removed.jsonl"), lines("clusters.jsonl")
    assert (len(clean), len(removed), len(clusters)) == (526, 62, 53)
    assert set(clean[0]) >= {"id", "title", "text", "url", "urls", "sources"}
    assert all(r["reason"] and r["duplicate_of"] for r in removed)
    assert set(clusters[0]) >= {"cluster_id", "representative", "members", "similarities"}
    findings = lines("findings.jsonl")
    assert set(findings[0]) >= {"record_id", "check", "severity", "field", "message", "evidence", "repair"}
    report = json.loads((seeds_out / "report.json").read_text())
    assert report["counts"]["kept"] == 526 and report["findings_by_check"]["malformed_url"] == 9
    assert "# scrape-audit report" in (seeds_out / "report.md").read_text()
    assert (seeds_out / "quarantine.jsonl").exists()
