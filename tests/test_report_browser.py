"""report.html in a real browser: headless Chromium loads it, with no console errors, the key
numbers visible, working filters, and scraped markup shown as text (no script runs)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_chromium import Chromium, ChromiumUnavailable, Page, find_or_install

from audit.cli import main


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    try:
        binary = find_or_install()
    except ChromiumUnavailable as reason:
        pytest.skip(f"no headless browser: {reason}")
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.new_page()
    yield tab
    tab.close()


def _cards(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            "[...document.querySelectorAll('.card')]"
            ".map(c => [c.dataset.card, c.querySelector('.value').textContent.trim()])"
        )
    )


def _shown_rows(page: Page, check: str = "", severity: str = "", source: str = "") -> int:
    return page.evaluate(
        f"""(() => {{
        const set = (id, v) => {{ const el = document.getElementById(id); el.value = v;
                                  el.dispatchEvent(new Event('change')); }};
        set('filter-check', {json.dumps(check)}); set('filter-severity', {json.dumps(severity)});
        set('filter-source', {json.dumps(source)});
        return [...document.querySelectorAll('#findings-table tbody tr')].filter(r => !r.hidden).length;
        }})()"""
    )


def test_seeds_report_in_chromium(seeds_out: Path, page: Page, tmp_path: Path) -> None:
    page.open((seeds_out / "report.html").as_uri(), height=1400)
    assert page.errors == []
    assert page.dialogs == []
    cards = _cards(page)
    assert cards["records in"] == "588"
    assert cards["kept"] == "526"
    assert cards["removed"] == "62"
    assert cards["quarantined"] == "0"
    assert cards["gate"] == "not run"
    text = page.evaluate("document.body.innerText")
    assert "53 clusters covering 115 records" in text
    assert page.evaluate("document.querySelectorAll('details.cluster').length") == 53
    # Every chart drew: length histogram, overlap matrix, cluster sizes, findings per check and source.
    assert page.evaluate("document.querySelectorAll('svg.chart').length") == 5
    # The filters work in the browser: 9 malformed_url errors, 3 truncation infos.
    assert _shown_rows(page) == 75  # boilerplate 2, malformed_url 9, markup_residue 61, truncation 3
    assert _shown_rows(page, check="truncation") == 3
    assert _shown_rows(page, severity="error") == 9
    assert _shown_rows(page, check="truncation", severity="error") == 0
    # 002: 3 malformed_url, 1 truncation, 26 markup_residue
    assert _shown_rows(page, source="002_e0810c16e6df6684.txt") == 30
    assert page.evaluate("document.getElementById('shown-count').textContent") == "30 shown"
    # expand all opens every cluster.
    page.evaluate("document.getElementById('expand-all').click()")
    assert page.evaluate("[...document.querySelectorAll('details.cluster')].every(d => d.open)")
    page.evaluate("document.getElementById('collapse-all').click()")

    shot = page.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few KB
    if os.environ.get("REPORT_SCREENSHOT"):  # refresh the README's picture
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])


SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def _hostile_corpus(directory: Path) -> Path:
    """Records whose every field carries markup: as title, text, url, id, file name, finding
    evidence (a malformed URL) and a near-duplicate copy (the explorer's diff)."""
    body = (
        f"A long enough abstract about graphs {SCRIPT} with a payload {IMG} inside, "
        "and more words so that the two copies share most of their shingles for dedup purposes here."
    )
    rows = [
        {"id": f"a{SCRIPT}", "title": f"Title {SCRIPT}", "text": body, "url": f"https://x.org/{IMG}"},
        {"id": f"b{IMG}", "title": f"Title {IMG}", "text": body + " Extra <b>bold</b>.", "url": ""},
        {"id": "c", "title": "Plain", "text": f"See https: //example.org/{SCRIPT} for code {IMG}", "url": ""},
    ]
    path = directory / f"scrape{IMG}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scraped_markup_is_text_in_chromium(tmp_path: Path, page: Page) -> None:
    source = _hostile_corpus(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(source), "--out", str(out), "--quiet"]) == 0
    findings = [json.loads(line) for line in (out / "findings.jsonl").read_text().splitlines()]
    assert any(SCRIPT in json.dumps(f["evidence"]) for f in findings)  # the payload reaches the table
    clusters = (out / "clusters.jsonl").read_text()
    assert clusters.strip()  # and the explorer

    page.open((out / "report.html").as_uri())
    assert page.dialogs == []
    assert page.errors == []
    assert page.evaluate("document.scripts.length") == 1  # only the report's own
    assert page.evaluate("document.images.length") == 0
    assert page.evaluate("document.querySelectorAll('b').length") == 0
    text = page.evaluate("document.body.innerText")
    assert f"a{SCRIPT}" in text  # a record id, in the findings table
    assert f"Title {IMG}" in text  # the kept copy's title, in the explorer
    assert f"See https: //example.org/{SCRIPT}" in text  # evidence in context
    assert f"scrape{IMG}.jsonl" in text
