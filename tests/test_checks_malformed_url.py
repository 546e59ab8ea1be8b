"""malformed_url: every kind of broken URL is found and located; valid URLs of every shape are not."""

from __future__ import annotations

import pytest
from check_records import make_records

from audit.checks import CheckContext
from audit.checks.malformed_url import MalformedUrlCheck, url_field_findings, url_findings
from audit.clean import apply_repairs

VALID = [
    "https://example.com/search?q=deep+learning&lang=en",
    "https://example.org/docs/page#section-2",
    "http://localhost:8080/demo",
    "https://example.com:8443/api/v1",
    "https://example.com/files/my%20paper.pdf",
    "https://en.wikipedia.org/wiki/Foo_(bar)",
    "https://qianyiwu.github.io/objectsdf++",
    "https://münchen.de/forschung",
    "https://例子.测试/路径",
    "http://127.0.0.1:5000/",
    "https://user@example.com/",
    "https://xn--mnchen-3ya.de/a",
    "https://x.org/~user/index.html",
    "https://web.archive.org/web/2020/https://example.com/",
]


@pytest.mark.parametrize("url", VALID)
@pytest.mark.parametrize(
    "template", ["Code: {}.", "See ({}).", "at {}, and", "{}", "Code at {}; then", '"{}"']
)
def test_valid_urls_are_not_findings(url: str, template: str) -> None:
    assert url_findings("r", "text", template.format(url)) == []


@pytest.mark.parametrize("url", VALID)
def test_valid_url_fields_are_not_findings(url: str) -> None:
    assert url_field_findings("r", url) == []


BROKEN = [
    ("https: //github.com/a/b", "space after scheme", "https://github.com/a/b"),
    ("https:// github.com/a/b", "space after scheme", "https://github.com/a/b"),
    ("https//github.com/a/b", "missing colon", "https://github.com/a/b"),
    ("http:/x.org/a", "single slash", "http://x.org/a"),
    ("https:://x.org/a", "extra colon", "https://x.org/a"),
    ("https://https://x.org/a", "doubled scheme", "https://x.org/a"),
    ("https://x.org/ahttps://y.org/b", "glued URLs", "https://x.org/a https://y.org/b"),
    ("https://x.org/a.https://y.org/b", "glued URLs", "https://x.org/a. https://y.org/b"),
    ("https://x.org/a/https://y.org/b", "glued URLs", "https://x.org/a/ https://y.org/b"),
    ("{https://x.org/a}", "latex braces", "https://x.org/a"),
    ("https://x.org/a{Project}", "latex braces", "https://x.org/a"),
    ("\\href{https://x.org/a}{code}", "latex command", "https://x.org/a"),
    ("htps://x.org/a", "scheme typo", None),
    ("https:///x", "invalid host", None),
    ("https://a..b.com/x", "invalid host", None),
    ("https://git hub.com/x", "space in host", None),
    ("https://x.org:99999/a", "bad port", None),
    ("https://x.org/a_(b", "unbalanced brackets", None),
    ("https://github.com/a/H…", "ellipsis", None),
]


@pytest.mark.parametrize(("broken", "kind", "repaired"), BROKEN)
def test_broken_urls_are_found_with_offset_and_safe_repair(
    broken: str, kind: str, repaired: str | None
) -> None:
    text = f"Our code: {broken} here."
    found = url_findings("r", "text", text)
    kinds = [f.evidence["kind"] for f in found]
    assert kind in kinds
    finding = found[kinds.index(kind)]
    assert text[finding.evidence["offset"] :].startswith(finding.evidence["match"][:5])
    if repaired is None:
        assert finding.repair is None  # unsafe: reported only
    else:
        fixed, applied = apply_repairs(text, [finding.repair])
        assert applied == [True]
        assert fixed == f"Our code: {repaired} here."


def test_sentence_punctuation_after_a_url_is_not_part_of_it() -> None:
    found = url_findings("r", "text", "Code: https://x.org/a_(b.")
    assert [f.evidence["match"] for f in found] == ["https://x.org/a_(b"]


def test_url_field_rules() -> None:
    assert [f.evidence["kind"] for f in url_field_findings("r", "github.com/a/b")] == ["missing scheme"]
    assert [f.evidence["kind"] for f in url_field_findings("r", "not a url at all")] == ["not a URL"]
    assert [f.evidence["kind"] for f in url_field_findings("r", "https: //x.org")] == ["space after scheme"]
    assert url_field_findings("r", "") == []


def test_check_reads_text_and_url_field() -> None:
    records = make_records(["Code: https: //x.org/a.", "Fine."], urls=["", "x.org/a"])
    findings = MalformedUrlCheck().run(records, CheckContext())
    assert [(f.record_id, f.field) for f in findings] == [("r0", "text"), ("r1", "url")]
