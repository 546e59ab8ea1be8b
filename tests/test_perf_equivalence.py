"""The fast paths of the run (issue 3) give exactly what the plain per-record code gave.

Each check's ``run`` looks only at the rows a whole-column prefilter lets through; here it is
compared with the per-record functions applied to every row, on the labelled fault corpus
(every fault kind) with Arrow-backed and with plain object columns.
"""

from __future__ import annotations

import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks import CHECKS, CheckContext, malformed_url, run_checks
from audit.checks.base import FINDING_COLUMNS, Finding
from audit.checks.boilerplate import furniture_findings
from audit.checks.encoding import encoding_findings
from audit.checks.malformed_url import url_field_findings, url_findings
from audit.checks.markup_residue import markup_findings
from audit.checks.prefilter import any_lowered, candidate_rows
from audit.checks.table import FindingTable
from audit.checks.truncation import (
    _LAST_LETTERS,
    _LAST_WORD,
    _WORD,
    Vocabulary,
    ascii_words_but_last,
    last_letters,
    last_word,
)
from audit.frames import row_dicts
from audit.parallel import forked_map

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import faults


@pytest.fixture(scope="module")
def corpus() -> faults.FaultCorpus:
    return faults.build(seed=5, per_kind=4, n_clean=120)


def _every_row(records: pd.DataFrame, name: str) -> list[Finding]:
    """The checks' per-record logic applied to every row, as before the prefilters."""
    found: list[Finding] = []
    for record_id, title, text, url in zip(
        records["id"], records["title"], records["text"], records["url"], strict=True
    ):
        if name == "malformed_url":
            found += url_findings(record_id, "text", text) + url_field_findings(record_id, url)
            continue
        function = {
            "boilerplate": furniture_findings,
            "markup_residue": markup_findings,
            "encoding": encoding_findings,
        }[name]
        found += function(record_id, "title", title) + function(record_id, "text", text)
    return found


@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("name", ["boilerplate", "markup_residue", "encoding", "malformed_url"])
def test_prefiltered_check_equals_every_row(corpus: faults.FaultCorpus, name: str, dtype: object) -> None:
    records = corpus.records.copy()
    for column in ("id", "title", "text", "url"):
        records[column] = records[column].astype(dtype)
    expected = _every_row(records, name)
    assert expected, f"the fault corpus has {name} findings"
    assert CHECKS[name]().run(records, CheckContext()) == expected


def test_furniture_hint_with_kelvin_sign_is_a_candidate() -> None:
    # "\u212a" lowers to "k": Python's hint test sees "byak"; the prefilter must too.
    records = pd.DataFrame({"title": ["byA\u212a", "plain", "BYAK"]})
    assert "byA\u212a".lower() == "byak"
    assert candidate_rows(records, ("title",), any_lowered(["byak"])) == [0, 2]


def test_edges_prefilter_counts_code_points() -> None:
    records = pd.DataFrame({"text": ["é" * 38 + "new" + "x" * 50, "é" * 37 + "new" + "x" * 50]})
    assert candidate_rows(records, ("text",), "new", edges=40) == [1]


@given(st.lists(st.text(alphabet="abAZ 1_.-\n\t'\"", max_size=30), max_size=40))
def test_ascii_words_but_last_equals_regex(values: list[str]) -> None:
    assert ascii_words_but_last(values) == [w for v in values for w in _WORD.findall(v.lower())[:-1]]


def test_vocabulary_equals_counted_words(corpus: faults.FaultCorpus) -> None:
    values = corpus.records["title"].tolist() + corpus.records["text"].tolist()
    values += ["Ünïcode wörds end", "a\x00b c"]
    counts: Counter[str] = Counter()
    for value in values:
        counts.update(_WORD.findall(value.lower())[:-1])
    assert Vocabulary(values).words == set(counts)


def test_findings_frame_equals_as_dict_rows(corpus: faults.FaultCorpus) -> None:
    findings = [f for name in CHECKS for f in CHECKS[name]().run(corpus.records, CheckContext())]
    expected = pd.DataFrame([f.as_dict() for f in findings], columns=FINDING_COLUMNS)
    pd.testing.assert_frame_equal(FindingTable.of(findings).frame(), expected)
    assert FindingTable.empty().frame().columns.tolist() == FINDING_COLUMNS


def test_row_dicts_equal_to_dict(corpus: faults.FaultCorpus) -> None:
    findings = run_checks(corpus.records).frame()
    for frame in (corpus.records, findings, findings.iloc[:0]):
        assert list(row_dicts(frame)) == frame.to_dict("records")


def test_checks_on_two_workers_equal_one(corpus: faults.FaultCorpus) -> None:
    context = CheckContext(clusters=corpus.clusters)
    one = run_checks(corpus.records, context=context, workers=1).frame()
    two = run_checks(corpus.records, context=context, workers=2).frame()
    pd.testing.assert_frame_equal(one, two)
    assert set(one["check"]) == set(CHECKS)


_URL_BITS = ["http", "HTTPS", "htps", "ttp", "://", ":/", "//", ": //", "::", "x", "a.org", " ", "{", "}"]
_URL_BITS += ["\\url{", "İ", "ſ", "_", "(", ")", "...", "…", ".", "/"]


def _url_findings_plain(value: str) -> list[Finding]:
    """url_findings with its fast paths off: every pattern run with finditer over the value."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(malformed_url, "_http_starts", lambda value: None)
        patch.setattr(malformed_url, "_typo_possible", lambda value: True)
        patch.setattr(malformed_url, "_plain_prose", lambda value: False)
        return url_findings("r", "text", value)


@given(st.lists(st.sampled_from(_URL_BITS), max_size=25).map("".join))
def test_url_fast_paths_equal_plain_scans(value: str) -> None:
    assert url_findings("r", "text", value) == _url_findings_plain(value)


#: Prose around URLs that are plain or nearly so: the cases :func:`malformed_url._plain_prose` decides.
# Each list mostly plain parts (repeated), so that values often hold only plain URLs.
_SCHEMES = st.sampled_from(
    ["https://"] * 12 + ["http://"] * 8 + ["HTTP://", "https:/", "htps://", "https://https://"]
)
_LABELS = st.lists(
    st.sampled_from(["x", "github", "a-b", "io"] * 10 + ["-a", "b-", "http", "x_y", "é", ""]),
    min_size=1,
    max_size=3,
)
_SEGMENTS = st.lists(
    st.sampled_from(["a", "b.c", "d_e", "~f"] * 8 + ["a..b", "(x)", "x)", "%20", "x#y", "...", ""]),
    max_size=3,
)
_ENDS = st.sampled_from(
    ["", ".", ",", ")", "')", ".)", "/", ":", ";", "!"] * 6
    + ["...", "...", "....", "…", ":8080", "?q", "//", "{x}"]
)
_AFTERS = st.sampled_from(
    [" ", "\n", "\t", "\r"] * 10 + ["", "\x0b", "x", "(", "https://y.org", " http", "\\url{", "{"]
)
_BEFORES = st.sampled_from(
    ["", " ", "(", "\n", "Code: "] * 8 + ["x", "h", "_", "é", "{", "see HTTP ", "a.b/"]
)
_PROSE_URL = st.tuples(_BEFORES, _SCHEMES, _LABELS, _SEGMENTS, _ENDS, _AFTERS).map(
    lambda p: p[0] + p[1] + ".".join([*p[2], "org"]) + "".join("/" + s for s in p[3]) + p[4] + p[5]
)


@settings(max_examples=500)
@given(st.lists(_PROSE_URL, min_size=1, max_size=3).map("".join))
def test_plain_prose_has_no_url_finding(value: str) -> None:
    if malformed_url._plain_prose(value):
        assert _url_findings_plain(value) == []
    assert url_findings("r", "text", value) == _url_findings_plain(value)


def test_plain_prose_decides_plain_urls_and_not_the_others() -> None:
    plain = "Code: https://github.com/a/b-c. See (http://x.org/d_e.f), https://x.org/ and https://a.b"
    assert malformed_url._plain_prose(plain) and malformed_url._plain_prose("no link at all")
    for value in [
        "Code at https://github.com/a/b... more",
        "see https://x.org:8080/a here",
        "HTTPS://X.ORG is loud",
        "xhttps://x.org",
        "https://x.org/https here",
        "https://x.org/a#b here",
        "a {https://x.org} b",
        "ünï https://x.org",
        "https://x.org/a;b",
        "http protocol",
        "https://localhost/a",
    ]:
        assert not malformed_url._plain_prose(value), value
    long_url = "see https://x.org" + "/a" * 50_000 + "# and " + "https://" + "a." * 30_000 + "#"
    assert not malformed_url._plain_prose(long_url)  # linear: a hostile value is refused quickly


def test_url_fast_paths_equal_plain_scans_on_fault_corpus(corpus: faults.FaultCorpus) -> None:
    values = corpus.records["text"].tolist() + corpus.records["url"].tolist()
    assert sum(len(url_findings("r", "text", v)) for v in values) > 20
    for value in values:
        assert url_findings("r", "text", value) == _url_findings_plain(value)


@given(st.text(alphabet="ab Z9_-.\n²é", max_size=30))
def test_last_word_and_letters_equal_their_regexes(text: str) -> None:
    text = text.rstrip()
    word, letters = _LAST_WORD.search(text), _LAST_LETTERS.search(text)
    assert last_word(text) == (word.group(1) if word else None)
    assert last_letters(text) == (letters.group(1) if letters else None)


def _square_plus(shared: int, item: int) -> int:
    return item * item + shared


def test_forked_map_keeps_order_and_runs_inside_a_pool_worker() -> None:
    assert forked_map(_square_plus, 1, list(range(7)), workers=2) == [n * n + 1 for n in range(7)]
    with ProcessPoolExecutor(max_workers=1) as pool:  # a daemonic worker: no children allowed
        assert pool.submit(forked_map, _square_plus, 0, [1, 2, 3], 2).result() == [1, 4, 9]
