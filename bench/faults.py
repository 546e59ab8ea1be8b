"""A labelled fault corpus built from the seed records, and the checks' precision and recall on it.

The corpus is deterministic for a seed. It holds:

- **faulty records**: a clean seed record with exactly one injected fault of a known check and
  kind (``truncation/mid-word``, ``malformed_url/glued``, ``encoding/mojibake``...);
- **clean controls**: clean seed records, some made tricky on purpose: valid URLs of every
  shape (queries, fragments, ports, percent-escapes, ``/wiki/Foo_(bar)``, ``++``, non-ASCII
  hosts), abstracts that end without a period, ``e.g.``/``et al.``, percentages, ``R&D``,
  ``x < y``, correctly encoded non-ASCII, "a new method", "publish/subscribe".

A seed record is a clean base when simple rules independent of the checks say so: ASCII only,
ends with a period, no backslash, brace, angle bracket, ``&``, ``%`` or ``$``, balanced
brackets and quotes, no broken URL, at least 600 characters.

Proven truncation needs a duplicate cluster; dedup v1 does not cluster a half-length copy, so
the corpus comes with hand-built clusters (full copy + cut copy) for :class:`CheckContext`.

Usage (prints the README table)::

    .venv/bin/python bench/faults.py [--seed 0] [--per-kind 40] [--clean 600]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ftfy.bad_codecs  # noqa: F401 - registers the "sloppy-windows-1252" codec
import pandas as pd

from audit.checks import CHECKS, CheckContext, run_checks
from audit.ingest import read_inputs
from audit.normalise import normalise_text
from audit.schema import records_frame

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
Record = dict[str, str]
Injector = Callable[[random.Random, Record], Record | None]

#: Severity counted as "flagged" per check: truncation's ``info`` (no final period) is not.
CROSS_RECORD_CHECKS = {"conflicting_copies"}
COUNTED = {name: ("error", "warning", "info") for name in CHECKS} | {"truncation": ("error", "warning")}

_WORDS = re.compile(r"[^\W\d_]+")
_FUNCTION = ("the", "of", "and", "with", "for", "to", "in", "a", "on", "by", "from")


# -- clean bases -----------------------------------------------------------------------------
def _is_clean_base(title: str, text: str) -> bool:
    return (
        len(text) >= 600
        and text.endswith(".")
        and bool(title.strip())
        and (title + text).isascii()
        and not re.search(r"[\\{}<>&%$\"]|\[email|https?:\s|\S(?:https?://)|https?//", title + text)
        and text.count("(") == text.count(")")
        and text.count("[") == text.count("]")
    )


def clean_bases(seeds_dir: Path = SEEDS) -> list[Record]:
    """Distinct seed records that pass the clean-base rules, in file order."""
    records = read_inputs([seeds_dir]).records
    seen: set[str] = set()
    bases = []
    for title, text in zip(records["title"], records["text"], strict=True):
        key = normalise_text(text)
        if key in seen or not _is_clean_base(title, text):
            continue
        seen.add(key)
        bases.append({"title": title, "text": text, "url": ""})
    return bases


# -- helpers ---------------------------------------------------------------------------------
def _cut_at_word(rng: random.Random, text: str, low: float = 0.4, high: float = 0.9) -> str:
    """``text`` cut at a word boundary between ``low`` and ``high`` of its length, no final punctuation."""
    for _ in range(50):
        at = text.rfind(" ", 0, int(len(text) * rng.uniform(low, high)))
        cut = text[:at].rstrip(" ,;:.")
        last = cut.rsplit(" ", 1)[-1]
        if cut and last.isalpha() and last.lower() not in _FUNCTION and cut[-1].isalpha():
            return cut
    return text[: len(text) // 2].rsplit(" ", 1)[0]


def _next_words(text: str, start: int, n: int) -> str:
    return " ".join(text[start:].split()[:n])


def _add_sentence(rng: random.Random, text: str, sentence: str) -> str:
    """Put ``sentence`` at the end, or after a sentence in the middle."""
    if rng.random() < 0.5:
        return f"{text} {sentence}"
    stops = [m.end() for m in re.finditer(r"\. (?=[A-Z])", text)]
    if not stops:
        return f"{text} {sentence}"
    at = rng.choice(stops)
    return f"{text[:at]}{sentence} {text[at:]}"


def _mid_sentence(text: str, sentence: str) -> str:
    """Put ``sentence`` after the first sentence of ``text``."""
    at = text.find(". ") + 2 if ". " in text else 0
    return f"{text[:at]}{sentence} {text[at:]}"


def _insert_in_word(rng: random.Random, text: str, make: Callable[[str], str]) -> str:
    """Replace one word of 5+ letters with ``make(word)``."""
    words = [m for m in re.finditer(r"\b[a-z]{5,}\b", text)]
    m = rng.choice(words)
    return text[: m.start()] + make(m.group(0)) + text[m.end() :]


_USERS = ["openai", "facebookresearch", "google-research", "haochen-rye", "mv-lab", "Sennadir", "ml-jku"]
_REPOS = ["HNeRV", "nilut", "GCORN", "hopfield-layers", "DiMR", "Poly_INR", "SNN-delays", "objectsdf"]


def _url(rng: random.Random) -> str:
    user, repo = rng.choice(_USERS), rng.choice(_REPOS)
    return rng.choice(
        [
            f"https://github.com/{user}/{repo}",
            f"https://{user.lower()}.github.io/{repo.lower()}",
            f"http://www.cs.{user.lower()}.edu/projects/{repo}/",
            f"https://huggingface.co/{user}/{repo}",
        ]
    )


def _code_sentence(rng: random.Random, url: str) -> str:
    return rng.choice(
        ["Code is available at {}.", "Project page: {}.", "Our code: {}", "See {} for details."]
    ).format(url)


#: Valid URLs of every shape the issue lists: none may be a finding.
GOOD_URLS = [
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
    "https://xn--mnchen-3ya.de/a",
    "https://github.com/org/repo.git",
    "https://x.org/~user/index.html",
    "https://arxiv.org/abs/2301.00001v2",
]


# -- injectors: (check, kind) -> function ------------------------------------------------------
def _truncation(vocabulary: set[str]) -> dict[str, Injector]:
    def ellipsis(rng: random.Random, r: Record) -> Record:
        return r | {"text": _cut_at_word(rng, r["text"]) + rng.choice(["...", "…", " ...", " …"])}

    def dangling(rng: random.Random, r: Record) -> Record | None:
        text = r["text"]
        spots = [m.end() for m in re.finditer(r" (?:the|of|and|with|for|to|in|a|on|by) ", text)]
        spots = [s - 1 for s in spots if 0.3 * len(text) < s < 0.95 * len(text)]
        return r | {"text": text[: rng.choice(spots)]} if spots else None

    def open_bracket(rng: random.Random, r: Record) -> Record:
        text = r["text"]
        cut = _cut_at_word(rng, text)
        return r | {"text": f"{cut} ({_next_words(text, len(cut), rng.randint(1, 4)).strip('()')}"}

    def open_quote(rng: random.Random, r: Record) -> Record:
        text = r["text"]
        cut = _cut_at_word(rng, text)
        quote = rng.choice(['"', "“"])
        return r | {"text": f"{cut} {quote}{_next_words(text, len(cut), rng.randint(1, 4)).strip('()')}"}

    def mid_word(rng: random.Random, r: Record) -> Record | None:
        text = r["text"]
        words = [m for m in re.finditer(r"\b[a-zA-Z]{6,}\b", text) if 0.3 * len(text) < m.start()]
        rng.shuffle(words)
        for m in words:
            k = rng.randint(3, len(m.group(0)) - 2)
            fragment = m.group(0)[:k].lower()
            if fragment not in vocabulary:
                return r | {"text": text[: m.start() + k]}
        return None

    def title_cut(rng: random.Random, r: Record) -> Record | None:
        words = r["title"].split()
        if len(words) < 5:
            return None
        cut = " ".join(words[: rng.randint(3, len(words) - 1)])
        return r | {"title": cut.rstrip(":,-") + rng.choice(["...", "…"])}

    return {
        "ellipsis": ellipsis,
        "dangling word": dangling,
        "open bracket": open_bracket,
        "open quote": open_quote,
        "mid-word": mid_word,
        "title ellipsis": title_cut,
    }


def _malformed_url() -> dict[str, Injector]:
    def in_text(make: Callable[[str], str]) -> Injector:
        def inject(rng: random.Random, r: Record) -> Record:
            broken = make(_url(rng)).replace("{TYPO}", rng.choice(["htps", "htp", "htttps", "hhttps"]))
            broken = broken.replace("{SEP}", rng.choice(["", "."]))
            return r | {"text": _add_sentence(rng, r["text"], _code_sentence(rng, broken))}

        return inject

    def in_field(make: Callable[[str], str]) -> Injector:
        return lambda rng, r: r | {"url": make(_url(rng))}

    return {
        "space after scheme": in_text(lambda u: u.replace("://", ": //", 1)),
        "missing colon": in_text(lambda u: u.replace("://", "//", 1)),
        "single slash": in_text(lambda u: u.replace("://", ":/", 1)),
        "extra colon": in_text(lambda u: u.replace("://", ":://", 1)),
        "scheme typo": in_text(lambda u: re.sub(r"^https?", "{TYPO}", u)),
        "doubled scheme": in_text(lambda u: "https://" + u),
        "glued": in_text(lambda u: u + "{SEP}" + u.replace("github.com", "gitlab.com")),
        "latex braces": in_text(lambda u: "{" + u + "}"),
        "latex link text": in_text(lambda u: u + "{Project}"),
        "href": in_text(lambda u: "\\href{" + u + "}{code}"),
        "empty host": in_text(lambda u: re.sub(r"://[^/]+", ":///", u, count=1)),
        "double dot": in_text(lambda u: re.sub(r"\.(?=[a-z]+/|[a-z]+$)", "..", u, count=1)),
        "space in host": in_text(lambda u: re.sub(r"://([a-z]{2})", r"://\1 ", u, count=1)),
        "bad port": in_text(lambda u: re.sub(r"(://[^/]+)", r"\1:99999", u, count=1)),
        "unbalanced bracket": in_text(lambda u: u.rstrip("/") + "/a_(b"),
        # Mid-text only: a text that ends in "https://github.com/a/H…" was cut off as a whole.
        "url ellipsis": lambda rng, r: (
            r | {"text": _mid_sentence(r["text"], f"See {_url(rng)[:-4]}… for code.")}
        ),
        "url field no scheme": in_field(lambda u: u.split("://", 1)[1]),
        "url field space": in_field(lambda u: u.replace("://", ": //", 1)),
    }


def _boilerplate() -> dict[str, Injector]:
    def title_prefix(prefix: str) -> Injector:
        return lambda rng, r: r | {"title": prefix + r["title"]} if r["title"][:1].isupper() else None

    def sentence(*options: str) -> Injector:
        return lambda rng, r: r | {"text": _add_sentence(rng, r["text"], rng.choice(options))}

    return {
        "glued Subscribe": title_prefix("Subscribe"),
        "glued new": title_prefix("new"),
        "glued date": lambda rng, r: (
            r | {"title": rng.choice(["Mar 13", "Sep 2", "December 24"]) + r["title"]}
        ),
        "trailing Subscribe": lambda rng, r: (
            r | {"text": r["text"] + rng.choice(["Subscribe", " Subscribe"])}
        ),
        "newsletter prompt": sentence(
            "Get trending papers in your email inbox!",
            "Get trending papers in your email inbox once a day!",
            "Subscribe to our newsletter for weekly updates.",
        ),
        "cookie prompt": sentence(
            "We use cookies to improve your experience.",
            "This website uses cookies to ensure you get the best experience.",
            "Accept all cookies",
        ),
        "login prompt": sentence("Sign in to continue reading.", "Log in to download the full text."),
        "email placeholder": lambda rng, r: (
            r | {"text": _add_sentence(rng, r["text"], "It gains +1.9 [email\xa0protected] on ScanNet.")}
        ),
    }


def _markup_residue() -> dict[str, Injector]:
    def word(make: Callable[[str], str]) -> Injector:
        return lambda rng, r: r | {"text": _insert_in_word(rng, r["text"], make)}

    def sentence(*options: str) -> Injector:
        return lambda rng, r: r | {"text": _add_sentence(rng, r["text"], rng.choice(options))}

    return {
        "latex em": word(lambda w: "{\\em " + w + "}"),
        "latex command": word(lambda w: w + " \\cite{smith2020}"),
        "latex macro": word(lambda w: "\\tool"),
        "latex accent": sentence(
            "We work on the Poincar\\'e ball.", 'It solves the Schr\\"{o}dinger equation.'
        ),
        "latex escape": sentence("It improves accuracy by 4.2\\% on average.", "We study R\\&D pipelines."),
        "latex script": sentence(
            "The cost is O(n^{2}) in the worst case.", "We bound the error by $\\epsilon_{t}$."
        ),
        "latex comment": sentence("These schemes %that were proposed recently are slow."),
        "html tag": lambda rng, r: r | {"text": _insert_in_word(rng, r["text"], rng.choice(_TAGS).format)},
        "html entity": sentence(
            "We compare speed &amp; accuracy.",
            "The model&#39;s output is stable.",
            "Values &lt; 5 are dropped.",
        ),
    }


_TAGS = ["<b>{}</b>", "<i>{}</i>", "{}<br/>", "<p>{}</p>", '<span class="x">{}</span>']


def _encoding() -> dict[str, Injector]:
    def mojibake(rng: random.Random, r: Record) -> Record:
        good = rng.choice(
            ["Poincaré", "naïve", "Schrödinger", "café-style", "“robust”", "model’s", "Łojasiewicz"]
        )
        bad = good.encode("utf-8").decode(
            "sloppy-windows-1252"
        )  # what browsers do with bytes cp1252 leaves undefined
        return r | {"text": _add_sentence(rng, r["text"], f"We revisit the {bad} setting.")}

    def char(*options: str) -> Injector:
        def inject(rng: random.Random, r: Record) -> Record:
            bad = rng.choice(options)
            return r | {"text": _insert_in_word(rng, r["text"], lambda w: w[:2] + bad + w[2:])}

        return inject

    return {
        "mojibake": mojibake,
        "replacement character": char("\ufffd"),
        "control character": char("\x00", "\x1b", "\x0c", "\x7f", "\x85"),
        "zero-width": char("\u200b", "\ufeff", "\u2060"),
        "non-breaking space": lambda rng, r: (
            r | {"text": r["text"].replace(" ", "\u00a0", rng.randint(1, 3))}
        ),
    }


def _short(text: str) -> str:
    """A complete sentence of under 150 characters: the first one, or a shortened one."""
    first = text[: text.find(". ") + 1]
    if 0 < len(first) < 150:
        return first
    cut = text[: text.rfind(" ", 0, 120)]
    if cut.count("(") > cut.count(")"):  # do not leave a bracket open: that would be a truncation
        cut = cut[: cut.rfind("(")]
    return cut.rstrip(",;: ") + "."


def _empty_or_short() -> dict[str, Injector]:
    return {
        "empty text": lambda rng, r: r | {"text": ""},
        "short text": lambda rng, r: r | {"text": _short(r["text"])},
        "empty title": lambda rng, r: r | {"title": ""},
    }


def injectors(vocabulary: set[str]) -> dict[str, dict[str, Injector]]:
    """Every fault kind, by check. ``vocabulary``: the bases' words (mid-word cuts avoid them)."""
    return {
        "truncation": _truncation(vocabulary),
        "malformed_url": _malformed_url(),
        "boilerplate": _boilerplate(),
        "markup_residue": _markup_residue(),
        "encoding": _encoding(),
        "empty_or_short": _empty_or_short(),
    }


#: Prose that looks like a fault and is not one.
TRICKY_SENTENCES = [
    "As shown by Smith et al. (2020), e.g. in vision, gains reach 4.2% and 50 % of cases.",
    "It holds when x < y and y > z, for R&D teams and C++ code costing $5 to $10.",
    "We extend the Poincaré and Łojasiewicz results to naïve “robust” models, 深度学习 included.",
    "We propose a new method for publish/subscribe systems released in May 2023.",
    "We (i) prune, (ii) quantise and 1) test, 2) ship the model, cf. Fig. 1 and Sec. 3.",
    'The so-called "lottery ticket" view, i.e. sparse subnetworks, still holds.',
    "Users can sign in with one click, and the log in step is optional.",
    "Our dataset (with 1,000 images [see the appendix]) is public.",
]


def _tricky(rng: random.Random, r: Record, i: int) -> Record:
    """A clean control, made tricky in one of several ways (``i`` picks the way)."""
    text, url = r["text"], GOOD_URLS[(i // 5) % len(GOOD_URLS)]
    kind = i % 5
    if kind == 0:  # a valid URL of every shape, in prose and in the url field
        template = rng.choice(["Code: {}.", "See ({}).", "Data at {}, and more.", "Code: {}"])
        return r | {"text": _add_sentence(rng, text, template.format(url)), "url": rng.choice(GOOD_URLS)}
    if kind == 1:  # real abstracts sometimes end without a period
        return r | {"text": text.rstrip(".")}
    if kind == 2:  # ends with a URL
        return r | {"text": f"{text} Code: {url}"}
    if kind == 3:  # a title that ends with a question mark or a closing bracket
        return r | {"title": r["title"] + rng.choice([": Is Attention Enough?", " (Extended Version)"])}
    return r | {"text": _add_sentence(rng, text, TRICKY_SENTENCES[(i // 5) % len(TRICKY_SENTENCES)])}


@dataclass
class FaultCorpus:
    records: pd.DataFrame
    #: record id -> (check, kind) of its injected fault; clean controls are not in it.
    labels: dict[str, tuple[str, str]]
    clean_ids: list[str]
    clusters: pd.DataFrame
    limit: int = 0
    skipped: Counter = field(default_factory=Counter)


def build(seed: int = 0, per_kind: int = 40, n_clean: int = 600, seeds_dir: Path = SEEDS) -> FaultCorpus:
    """The labelled corpus: ``per_kind`` records per fault kind plus ``n_clean`` clean controls."""
    rng = random.Random(seed)
    bases = clean_bases(seeds_dir)
    vocabulary = {w.lower() for b in bases for w in _WORDS.findall(b["title"] + " " + b["text"])}
    rows: list[Record] = []
    labels: dict[str, tuple[str, str]] = {}
    clean_ids: list[str] = []
    skipped: Counter = Counter()

    def add(record: Record, label: tuple[str, str] | None) -> str:
        record_id = f"f{len(rows):05d}"
        rows.append(record | {"id": record_id})
        if label:
            labels[record_id] = label
        else:
            clean_ids.append(record_id)
        return record_id

    for i in range(n_clean):
        add(_tricky(rng, rng.choice(bases), i), None)
    for check, kinds in injectors(vocabulary).items():
        for kind, inject in kinds.items():
            made = 0
            for _ in range(per_kind * 5):
                if made == per_kind:
                    break
                faulty = inject(rng, dict(rng.choice(bases)))
                if faulty is None:
                    skipped[(check, kind)] += 1
                    continue
                add(faulty, (check, kind))
                made += 1
    # Proven truncation: a complete copy and a copy cut at a word boundary, in one cluster.
    cluster_rows = []
    for _ in range(per_kind):
        base = rng.choice(bases)
        full = add(dict(base), None)
        cut = add(base | {"text": _cut_at_word(rng, base["text"], 0.5, 0.9)}, ("truncation", "proven"))
        cluster_rows.append(
            {"cluster_id": f"c{len(cluster_rows):05d}", "representative": full, "members": [full, cut]}
        )
    # A scraper's character limit: every long text of one group cut to exactly `limit` characters.
    limit = rng.randint(700, 1000)
    long_bases = [b for b in bases if len(b["text"]) > limit + 20 and b["text"][limit - 1] not in " .!?"]
    for base in rng.sample(long_bases, min(per_kind, len(long_bases))):
        add(base | {"text": base["text"][:limit]}, ("truncation", "length limit"))
    frame = records_frame(
        [
            {
                "source": "faults.jsonl",
                "line": n + 1,
                "urls": [],
                "scraped_date": None,
                "format": "jsonl",
                **row,
            }
            for n, row in enumerate(rows)
        ]
    )
    return FaultCorpus(frame, labels, clean_ids, pd.DataFrame(cluster_rows), limit, skipped)


@dataclass
class Scores:
    per_check: pd.DataFrame
    per_kind: pd.DataFrame
    clean_flagged: list[str]
    clean_total: int
    findings: pd.DataFrame

    @property
    def clean_flag_rate(self) -> float:
        return len(self.clean_flagged) / self.clean_total if self.clean_total else 0.0


def measure(corpus: FaultCorpus) -> Scores:
    """Run every check; per check: precision and recall over records; clean controls flagged."""
    # conflicting_copies compares records with each other; this corpus gives unrelated clean
    # controls the same url field on purpose (GOOD_URLS) and injects no conflicts: not measured here.
    per_record = [name for name in CHECKS if name not in CROSS_RECORD_CHECKS]
    findings = run_checks(corpus.records, per_record, context=CheckContext(clusters=corpus.clusters)).frame()
    flagged: dict[str, set[str]] = defaultdict(set)
    for record_id, check, severity in zip(
        findings["record_id"], findings["check"], findings["severity"], strict=True
    ):
        if severity in COUNTED[check]:
            flagged[check].add(record_id)
    rows = []
    for check in CHECKS:
        positives = {i for i, (c, _) in corpus.labels.items() if c == check}
        hits = flagged[check] & positives
        rows.append(
            {
                "check": check,
                "faults": len(positives),
                "flagged": len(flagged[check]),
                "true_positives": len(hits),
                "precision": len(hits) / len(flagged[check]) if flagged[check] else 1.0,
                "recall": len(hits) / len(positives) if positives else 1.0,
            }
        )
    kind_rows = []
    by_kind: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record_id, label in corpus.labels.items():
        by_kind[label].append(record_id)
    for (check, kind), ids in sorted(by_kind.items()):
        found = sum(i in flagged[check] for i in ids)
        kind_rows.append(
            {"check": check, "kind": kind, "faults": len(ids), "found": found, "recall": found / len(ids)}
        )
    serious = set(findings.loc[findings["severity"].isin(["error", "warning"]), "record_id"])
    clean_flagged = [i for i in corpus.clean_ids if i in serious]
    return Scores(pd.DataFrame(rows), pd.DataFrame(kind_rows), clean_flagged, len(corpus.clean_ids), findings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--clean", type=int, default=600)
    parser.add_argument("--kinds", action="store_true", help="also print recall per fault kind")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = build(args.seed, args.per_kind, args.clean)
    built = time.perf_counter() - started
    scores = measure(corpus)
    print(
        f"corpus: {len(corpus.records)} records, {len(corpus.labels)} with one injected fault, "
        f"{len(corpus.clean_ids)} clean controls (seed {args.seed}, limit {corpus.limit}); "
        f"built in {built:.1f} s, checked in {time.perf_counter() - started - built:.1f} s"
    )
    print("\n| check | faults | flagged | true positives | precision | recall |\n|---|---|---|---|---|---|")
    for row in scores.per_check.to_dict("records"):
        print(
            f"| {row['check']} | {row['faults']} | {row['flagged']} | {row['true_positives']} "
            f"| {row['precision']:.3f} | {row['recall']:.3f} |"
        )
    print(
        f"\nclean controls flagged at warning or above: {len(scores.clean_flagged)} / {scores.clean_total} "
        f"({100 * scores.clean_flag_rate:.2f} %)"
    )
    if args.kinds:
        print(scores.per_kind.to_string(index=False))
    for record_id in scores.clean_flagged[:10]:
        hits = scores.findings[scores.findings["record_id"] == record_id]
        print("clean but flagged:", record_id, hits[["check", "severity", "message"]].to_dict("records"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
