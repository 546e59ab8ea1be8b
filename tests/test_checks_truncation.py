"""truncation: every signal, its evidence, and what must not be flagged."""

from __future__ import annotations

import pandas as pd
import pytest
from check_records import make_records

from audit.checks import CheckContext
from audit.checks.truncation import TruncationCheck, ends_cut_off, open_quote, unclosed_bracket
from audit.pipeline import completeness

BODY = "We study sparse networks and show that pruning keeps accuracy on every benchmark we tried."


def frame(texts: list[str], titles: list[str] | None = None) -> pd.DataFrame:
    return make_records(texts, titles)


def signals(text: str, title: str = "A Title", others: list[str] | None = None) -> list[tuple[str, str]]:
    records = frame([text, *(others or [])], [title] + ["A Title"] * len(others or []))
    findings = TruncationCheck().run(records, CheckContext())
    return [(f.evidence["signal"], f.severity) for f in findings if f.record_id == "r0"]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("We study the effect of pruning on the...", "ends with an ellipsis"),
        ("We study the effect of pruning …", "ends with an ellipsis"),
        ("We study the effect of", "dangling function word"),
        ("We compare two settings (dense and sparse", "unclosed bracket"),
        ("We call this the “lottery", "open quote"),
        ('We call this the "lottery', "open quote"),
    ],
)
def test_ending_signals_are_warnings(text: str, signal: str) -> None:
    assert signals(text) == [(signal, "warning")]


def test_mid_word_needs_a_longer_word_elsewhere_in_the_corpus() -> None:
    others = ["Our method uses pruning. The method is fast."]
    assert signals("We propose a new meth", others=others) == [("mid-word", "warning")]
    # "game" with "games" elsewhere is a word, and "zyx" begins no corpus word: at most info.
    assert signals("We study a game", others=["Many games exist."]) == [("no final punctuation", "info")]
    assert signals("We study zyx", others=others) == [("no final punctuation", "info")]


@pytest.mark.parametrize(
    "text",
    [
        BODY,
        "Code is at https://github.com/org/repo",  # ends with a URL
        "Code is at https://example.xn--mnchen-3ya.de/a",  # a URL ending in a function word
        "See https://en.wikipedia.org/wiki/Foo_(bar and more).",
        'He said "stop" and left.',
        'Schr\\"odinger equations (see Sec. 3) are solved.',
        "We (i) prune and (ii) test, as shown by Smith et al.",
        "Virtual Try-On",
    ],
)
def test_complete_texts_are_not_warned(text: str) -> None:
    assert [s for s in signals(text) if s[1] != "info"] == []


def test_no_final_punctuation_is_only_info() -> None:
    assert signals("We show that pruning works across every benchmark we tried") == [
        ("no final punctuation", "info")
    ]


def test_title_cut_is_found_but_titles_need_no_period() -> None:
    assert signals(BODY, title="Sparse Networks for the...") == [("ends with an ellipsis", "warning")]
    assert signals(BODY, title="Sparse Networks for Vision") == []


def test_helpers() -> None:
    assert ends_cut_off("It is in the") == ("dangling function word", "the")
    assert unclosed_bracket("a (b [c] d") == ("(", 2)
    assert unclosed_bracket("a (b) [c]") is None
    assert open_quote("a “b” c") is None and open_quote("a “b") == "“"


def test_corpus_length_limit_is_reported_with_the_limit() -> None:
    long = "word " * 300
    # Eight distinct texts cut at 700 characters, plus texts of varied natural lengths.
    cut = [f"{i} {long}"[:700] for i in range(8)]
    natural = [f"{'x' * n} end." for n in range(300, 1300, 37)]
    records = frame(cut + natural)
    findings = [
        f for f in TruncationCheck().run(records, CheckContext()) if f.evidence["signal"] == "length limit"
    ]
    assert {f.record_id for f in findings} == {f"r{i}" for i in range(8)}
    assert all(f.evidence["limit"] == 700 and f.evidence["count"] == 8 for f in findings)
    assert all(f.severity == "warning" for f in findings)


def test_no_limit_without_a_spike() -> None:
    natural = [f"{'x' * n} end." for n in range(300, 1300, 3)]
    assert TruncationCheck().length_limit(natural) is None
    # Exact duplicates count once: five copies of one text are not a limit.
    assert TruncationCheck().length_limit(["same text here."] * 5) is None


def test_limit_options_are_used() -> None:
    values = [f"{i:03d}" + "x" * 97 for i in range(3)]
    assert TruncationCheck().length_limit(values) is None
    assert TruncationCheck(min_limit_count=3, limit_spike_ratio=3).length_limit(values)["limit"] == 100


def test_proven_truncation_from_a_hand_built_cluster() -> None:
    full = BODY + " We also release the code and the data for every experiment in the paper."
    cut = full[:120]  # mid-sentence, mid-word
    other = "An unrelated record that happens to share nothing with the others at all, none."
    records = frame([full, cut, other])
    clusters = pd.DataFrame({"members": [["r0", "r1"]], "representative": ["r0"]})
    findings = TruncationCheck().run(records, CheckContext(clusters=clusters))
    proven = [f for f in findings if f.severity == "error"]
    assert len(proven) == 1
    assert proven[0].record_id == "r1"
    assert proven[0].evidence["longer_copy"] == "r0"
    assert proven[0].evidence["length"] == 120 and proven[0].evidence["longer_length"] == len(full)
    # Without clusters nothing is proven.
    assert not [f for f in TruncationCheck().run(records, CheckContext()) if f.severity == "error"]


def test_proven_ignores_copies_that_are_not_prefixes() -> None:
    records = frame([BODY, "Different start. " + BODY])
    clusters = pd.DataFrame({"members": [["r0", "r1"]]})
    assert not [
        f for f in TruncationCheck().run(records, CheckContext(clusters=clusters)) if f.severity == "error"
    ]


def test_the_complete_copy_ranks_first_for_the_cleaned_corpus() -> None:
    full = BODY + " We also release the code."
    records = frame([full[:70], full])
    rank = completeness(records)
    assert rank(1) > rank(0)  # the representative (kept copy) is the complete one
