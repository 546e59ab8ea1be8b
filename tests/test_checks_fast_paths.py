"""The checks' fast paths (issue 3, the checks stage) find exactly what the plain code found.

Each fast path is switched off (or replaced by the plain computation it stands for) and the
check's findings compared, on the labelled fault corpus (every fault kind) and on generated
values; a fast path that hid a finding, or added one, fails here.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.checks import CHECKS, CheckContext, boilerplate, malformed_url, markup_residue, truncation
from audit.checks.base import Finding, finding_rows
from audit.checks.boilerplate import furniture_findings
from audit.checks.conflicting_copies import MAX_OTHERS, ConflictingCopiesCheck, _url_key
from audit.checks.malformed_url import _PLAIN_URL, url_field_findings, url_findings
from audit.checks.prefilter import offsets, scan_at
from audit.checks.table import FindingTable
from audit.checks.truncation import TruncationCheck, Vocabulary, unclosed_bracket
from audit.dedup.shingles import shingle_hashes
from audit.dedup.verify import similarity
from audit.furniture import LEAKED_FURNITURE
from audit.normalise import add_normalised, normalise_text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import faults


@pytest.fixture(scope="module")
def corpus() -> faults.FaultCorpus:
    return faults.build(seed=11, per_kind=4, n_clean=120)


# -- truncation ------------------------------------------------------------------------------
def _unclosed_bracket_stack(text: str) -> tuple[str, int] | None:
    """The plain stack walk over every bracket (what unclosed_bracket's shortcut stands for)."""
    stack: list[tuple[str, int]] = []
    for at, char in enumerate(text):
        if char in "([":
            stack.append((char, at))
        elif char in ")]" and stack and stack[-1][0] == {")": "(", "]": "["}[char]:
            stack.pop()
    return stack[-1] if stack else None


@given(st.text(alphabet="()[]a ", max_size=30))
def test_unclosed_bracket_shortcut_equals_the_stack_walk(text: str) -> None:
    assert unclosed_bracket(text) == _unclosed_bracket_stack(text)


def _plain_truncation(records: pd.DataFrame, context: CheckContext) -> list[Finding]:
    """Truncation as before the two passes: one value at a time, every word of the corpus
    collected, proven prefixes compared on the norm_text column of the whole frame."""
    check = TruncationCheck()
    ids, titles, texts = records["id"].tolist(), records["title"].tolist(), records["text"].tolist()
    vocabulary = Vocabulary(titles + texts)
    vocabulary.words  # noqa: B018 - every word collected up front
    limits = {"title": check.length_limit(titles), "text": check.length_limit(texts)}
    found: list[Finding] = []
    for record_id, title, text in zip(ids, titles, texts, strict=True):
        for name, value in (("title", title), ("text", text)):
            found += check._ending_findings(record_id, name, value, vocabulary)
            found += check._limit_findings(record_id, name, value, limits[name])
    norm_of = dict(zip(ids, add_normalised(records)["norm_text"], strict=True))
    for members in context.clusters["members"] if context.clusters is not None else []:
        present = [m for m in members if m in norm_of]
        by_length = sorted(present, key=lambda m: len(norm_of[m]), reverse=True)
        for member in present:
            short = norm_of[member]
            longer = next(
                (m for m in by_length if len(norm_of[m]) > len(short) and norm_of[m].startswith(short)), None
            )
            if len(short) >= check.min_prefix_chars and longer is not None:
                evidence = {"signal": "prefix of a longer copy", "longer_copy": longer}
                found.append(Finding(member, "truncation", "error", "text", "", evidence))
    return found


def _comparable(findings: list[Finding]) -> list[tuple]:
    return [
        (f.record_id, f.field, f.severity, f.evidence.get("signal"), f.evidence.get("longer_copy"))
        for f in findings
    ]


def _with_cut_texts(records: pd.DataFrame) -> pd.DataFrame:
    """The corpus plus texts ending in a rare word, a real fragment and an empty-text copy."""
    extra = records.iloc[:6].copy()
    extra["id"] = [f"x{n}" for n in range(6)]
    extra["text"] = [
        "We study models and then Subscribe",
        "Our results improve generalization and the rest of the generalizat",
        "A text that ends in a word found nowhere else zyzzyvas",
        "",
        "Ünïcode wörds and a cut in the métho",
        "Caf\u00e9 methods, a method and methodolo",
    ]
    return pd.concat([records, extra], ignore_index=True)


@pytest.mark.parametrize("chunk", [5000, 7])
def test_truncation_equals_the_one_pass_code(
    corpus: faults.FaultCorpus, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chunk of 7 values makes the vocabulary stop early and search for the words left over.
    monkeypatch.setattr(truncation, "_VOCABULARY_CHUNK", chunk)
    records = _with_cut_texts(corpus.records)
    clusters = pd.concat(
        [
            corpus.clusters,
            pd.DataFrame({"cluster_id": ["cx"], "representative": ["f00000"], "members": [["f00000", "x3"]]}),
        ],
        ignore_index=True,
    )
    context = CheckContext(clusters=clusters)
    fast = TruncationCheck().run(records, context)
    assert _comparable(fast) == _comparable(_plain_truncation(records, context))
    signals = {f.evidence["signal"] for f in fast}
    assert {"mid-word", "prefix of a longer copy", "no final punctuation"} <= signals


@pytest.mark.parametrize("chunk", [1, 3, 5000])
def test_vocabulary_fragments_equal_is_fragment(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truncation, "_VOCABULARY_CHUNK", chunk)
    values = [
        "a method for methods and more",
        "the methodology of it",
        "gamez games were played end",
        "Ünïcode wörds métho métier here",
        "a\x00b subscribe c and meth",
        "Die Straße ist lang und breit",
        "generalization of the rules",
        "subscribe",
    ]
    words = [
        "meth",
        "Meth",
        "game",
        "gamez",
        "met",
        "subscribe",
        "métho",
        "stra",
        "generalizat",
        "zzz",
        "the",
        "rules",
        "end",
        "breit",
    ]
    expected = {word: Vocabulary(values).is_fragment(word) for word in words}
    assert expected["meth"] == "method" and expected["generalizat"] == "generalization"
    assert Vocabulary(values).fragments(words) == expected


def test_vocabulary_search_gives_up_on_too_many_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truncation, "_VOCABULARY_CHUNK", 1)
    monkeypatch.setattr(truncation, "_TARGETED_STEPS_MAX", 2)
    values = ["a method and methods end", "the method again end", "one more method end"]
    assert Vocabulary(values)._words_beginning({"meth"}) is None
    assert Vocabulary(values).fragments(["meth"]) == {"meth": "method"}


# -- conflicting_copies ------------------------------------------------------------------------
def _plain_conflicts(records: pd.DataFrame, context: CheckContext) -> list[tuple]:
    """The check as before: every text normalised (norm_text: the title when the text is
    blank), every group compared, shingles hashed per comparison."""
    ids = records["id"].tolist()
    text_of = dict(zip(ids, add_normalised(records)["norm_text"], strict=True))
    cluster_of = {}
    for members in context.clusters["members"] if context.clusters is not None else []:
        cluster_of.update((m, members[0]) for m in members)

    def same(a: str, b: str) -> bool:
        cluster = cluster_of.get(a)
        if text_of[a] == text_of[b] or (cluster is not None and cluster == cluster_of.get(b)):
            return True
        return max(similarity(shingle_hashes(text_of[a]), shingle_hashes(text_of[b]))) >= 0.8

    found = []
    titles = [normalise_text(t) for t in records["title"]]
    keys = {
        "same title": [t if len(t.split()) >= 3 else "" for t in titles],
        "same url": [_url_key(u) for u in records["url"]],
    }
    for kind, values in keys.items():
        groups: dict[str, list[str]] = defaultdict(list)
        for record_id, value in zip(ids, values, strict=True):
            if value and text_of[record_id]:
                groups[value].append(record_id)
        for members in groups.values():
            firsts: list[str] = []
            version = {}
            for m in members:
                n = next((n for n, first in enumerate(firsts) if same(first, m)), None)
                if n is None:
                    n, _ = len(firsts), firsts.append(m)
                version[m] = n
            for m in firsts[1:]:
                found.append((m, kind, [o for o in members if version[o] != version[m]][:MAX_OTHERS]))
    return found


def test_conflicting_copies_equal_the_plain_code(corpus: faults.FaultCorpus) -> None:
    records = corpus.records.copy()
    base = records.iloc[0]
    rows = [
        # same title: two versions, a near copy, an empty text (its title stands in), one cluster
        ("c1", "Graph Nets For All", base["text"], "https://x.org/a"),
        (
            "c2",
            "graph nets for all!",
            "An entirely different abstract about other things.",
            "http://X.org/a/",
        ),
        ("c3", "Graph nets for all", base["text"][:-3], ""),
        ("c4", "Graph Nets For All", "", ""),
        ("c5", "Graph Nets For All", "   ", "https://x.org/a"),
        ("d1", "Only Copies Of One", "First text of the cluster here.", "https://y.org/1"),
        ("d2", "Only copies of one", "A second text, same cluster.", "https://y.org/1"),
    ]
    extra = pd.DataFrame(rows, columns=["id", "title", "text", "url"])
    records = pd.concat([records, extra.assign(source="x", line=1)], ignore_index=True)
    one_cluster = pd.DataFrame({"cluster_id": ["d"], "representative": ["d1"], "members": [["d1", "d2"]]})
    clusters = pd.concat([corpus.clusters, one_cluster], ignore_index=True)
    context = CheckContext(clusters=clusters)
    fast = ConflictingCopiesCheck().run(records, context)
    assert [(f.record_id, f.evidence["kind"], f.evidence["others"]) for f in fast] == _plain_conflicts(
        records, context
    )
    assert {f.record_id for f in fast} >= {"c2", "c4"}
    assert "norm_text" not in records


# -- malformed_url -------------------------------------------------------------------------------
_LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_SEGMENT = st.from_regex(r"[A-Za-z0-9_~-]{1,6}(?:\.[A-Za-z0-9_~-]{1,4})?", fullmatch=True)
_PLAIN = st.builds(
    lambda scheme, labels, path, end: f"{scheme}://{'.'.join(labels)}{''.join('/' + s for s in path)}{end}",
    st.sampled_from(["http", "https"]),
    st.lists(_LABEL, min_size=2, max_size=4),
    st.lists(_SEGMENT, max_size=4),
    st.sampled_from(["", "/"]),
)


@given(_PLAIN)
def test_plain_url_fields_have_no_finding(url: str) -> None:
    assert _PLAIN_URL.fullmatch(url)
    assert url_findings("r", "url", url) == []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(malformed_url, "_PLAIN_URL", re.compile(r"(?!)"))
        assert url_field_findings("r", url) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://a..b.org",
        "https://-x-.com/a",
        "https://a.org/http//b",
        "https://a.org/x...",
        "https://a.org:99999",
        "https://" + "a" * 64 + ".org",
        "https://ab",
        "HTTPS://a.org",
        "https://a.org/x y",
        "https://a.org/a(b",
    ],
)
def test_doubtful_url_fields_are_not_taken_as_plain(url: str) -> None:
    assert not _PLAIN_URL.fullmatch(url.strip())


def test_malformed_url_equals_the_check_without_shortcuts(corpus: faults.FaultCorpus) -> None:
    records = corpus.records
    fast = CHECKS["malformed_url"]().run(records, CheckContext())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(malformed_url, "_PLAIN_URL", re.compile(r"(?!)"))
        patch.setattr(malformed_url, "_URL_HINT", r"")  # every row a candidate
        plain = CHECKS["malformed_url"]().run(records, CheckContext())
    assert finding_rows(fast) == finding_rows(plain)
    assert len(fast) > 20


# -- match offsets: markup_residue, boilerplate ---------------------------------------------
_MARKUP_BITS = ["%", "% ", "\\", "{", "}", "em", "a", "1", " ", "\\%", "{\\", "x", "\t", "\n"]


@given(st.lists(st.sampled_from(_MARKUP_BITS), max_size=30).map("".join))
def test_markup_patterns_tried_at_their_starts_equal_finditer(value: str) -> None:
    spans = [m.span() for m in scan_at(markup_residue._COMMENT, value, offsets(value, "%"))]
    assert spans == [m.span() for m in markup_residue._COMMENT.finditer(value)]
    spans = [m.span() for m in scan_at(markup_residue._COMMAND, value, markup_residue._command_starts(value))]
    assert spans == [m.span() for m in markup_residue._COMMAND.finditer(value)]


_FURNITURE_BITS = [
    "Subscribe",
    "new",
    "Mar 13",
    "Sign in to continue.",
    "Please ",
    "Log",
    "in or register",
    ". ",
    "!",
    "?",
    "Already have an account? ",
    "x",
    " ",
    "A",
    "\t",
    "\n",
]


@given(st.lists(st.sampled_from(_FURNITURE_BITS), max_size=12).map("".join))
def test_furniture_tried_at_their_starts_equals_finditer(value: str) -> None:
    for furniture in LEAKED_FURNITURE:
        expected = [m.span() for m in furniture.finditer(value)]
        assert [m.span() for m in boilerplate._matches(furniture, value, value.lower())] == expected


@pytest.mark.parametrize("name", ["boilerplate", "markup_residue"])
def test_checks_equal_plain_finditer_on_fault_corpus(corpus: faults.FaultCorpus, name: str) -> None:
    records = corpus.records
    fast = CHECKS[name]().run(records, CheckContext())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boilerplate, "_STARTS", {})
        patch.setattr(markup_residue, "scan_at", lambda pattern, value, starts: pattern.finditer(value))
        plain = CHECKS[name]().run(records, CheckContext())
    assert finding_rows(fast) == finding_rows(plain) and fast


def test_furniture_findings_of_a_login_prompt_and_an_edge_date() -> None:
    found = furniture_findings("r", "text", "Results are good. Mar 13")
    assert [(f.evidence["kind"], f.evidence["match"]) for f in found] == [("date header", "Mar 13")]
    found = furniture_findings("r", "text", "Please Sign in to continue reading. The text.")
    assert [f.evidence["kind"] for f in found] == ["login prompt"]


# -- every check on Arrow-backed and on object columns, one process and two ------------------------
@pytest.mark.parametrize("name", ["truncation", "conflicting_copies", "empty_or_short"])
def test_checks_same_on_arrow_and_object_columns(corpus: faults.FaultCorpus, name: str) -> None:
    context = CheckContext(clusters=corpus.clusters)
    arrow = corpus.records.copy()
    plain = corpus.records.copy()
    for column in ("id", "source", "title", "text", "url"):
        arrow[column] = arrow[column].astype("str")
        plain[column] = plain[column].astype(object)
    one = CHECKS[name]().run(arrow, context)
    assert one and finding_rows(one) == finding_rows(CHECKS[name]().run(plain, context))


def test_findings_frame_from_rows_equals_from_findings(corpus: faults.FaultCorpus) -> None:
    findings = CHECKS["truncation"]().run(corpus.records, CheckContext(clusters=corpus.clusters))
    by_rows = FindingTable.of(finding_rows(findings)).frame()
    pd.testing.assert_frame_equal(FindingTable.of(findings).frame(), by_rows)


@pytest.mark.parametrize(("idle", "workers"), [(0.0, 1), (-3.0, 1), (1.0, 2), (2.0, 2)])
def test_checks_run_side_by_side_only_with_an_idle_core(
    monkeypatch: pytest.MonkeyPatch, idle: float, workers: int
) -> None:
    import audit.checks as checks
    from audit.checks import batches

    used = []

    def fake_map(function, shared, items, workers):  # type: ignore[no-untyped-def]
        used.append(workers)
        return [function(shared, item) for item in items]

    monkeypatch.setattr(checks, "PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(checks, "cores", lambda: 2)
    monkeypatch.setattr(checks, "idle_cores", lambda: idle)
    monkeypatch.setattr(batches, "forked_map", fake_map)
    records = pd.DataFrame({"id": ["a", "b"], "source": ["s", "s"], "title": ["T", ""], "text": ["x", "y"]})
    checks.run_checks(records, ["empty_or_short"])
    assert used == [workers]


def test_idle_cores_is_at_most_the_cores() -> None:
    from audit.parallel import cores, idle_cores

    assert idle_cores() <= cores()


@pytest.mark.parametrize("name", ["truncation", "boilerplate", "markup_residue", "encoding", "malformed_url"])
def test_repeated_values_get_their_own_findings(corpus: faults.FaultCorpus, name: str) -> None:
    # Each value is looked at once; its copies in other records get copies of its findings.
    once = corpus.records
    twice = pd.concat([once, once.assign(id=once["id"] + "-copy")], ignore_index=True)
    first = CHECKS[name]().run(once, CheckContext())
    second = CHECKS[name]().run(twice, CheckContext())
    expected = sorted(finding_rows(first) + [(f"{r[0]}-copy", *r[1:]) for r in finding_rows(first)], key=str)
    assert sorted(finding_rows(second), key=str) == expected and first
    evidence_ids = [id(f.evidence) for f in second]
    assert len(set(evidence_ids)) == len(evidence_ids)


_END_BITS = ["http://", "HTTPS://", "httpſ://", "a", ".", " ", "(", ")", '"', "[", "]", "<", "{", "\n", "é"]
_END_BITS += ["x.org/"]


@given(st.lists(st.sampled_from(_END_BITS), max_size=14).map("".join))
def test_ends_with_url_equals_the_last_url_match(text: str) -> None:
    assert truncation._ends_with_url(text) == truncation._ends_with_url_plain(text)


def test_ends_with_url_on_the_fault_corpus(corpus: faults.FaultCorpus) -> None:
    values = corpus.records["text"].tolist() + [t.rstrip(".") for t in corpus.records["text"]]
    assert any(truncation._ends_with_url(v) for v in values)
    plain = [truncation._ends_with_url_plain(v) for v in values]
    assert [truncation._ends_with_url(v) for v in values] == plain


def test_a_task_running_for_an_instant_does_not_make_a_core_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import audit.parallel as parallel

    looks = iter(["1.0 1.0 1.0 3/200 9\n", "1.0 1.0 1.0 1/200 9\n", "1.0 1.0 1.0 2/200 9\n"])
    monkeypatch.setattr(parallel, "open", lambda *a, **k: io.StringIO(next(looks)), raising=False)
    assert parallel.idle_cores() == parallel.cores()  # 0 others runnable in one of three looks
    busy = iter(["1.0 1.0 1.0 2/200 9\n"] * 3)
    monkeypatch.setattr(parallel, "open", lambda *a, **k: io.StringIO(next(busy)), raising=False)
    assert parallel.idle_cores() == parallel.cores() - 1
