"""Seeded planted-duplicate corpora for the dedup benchmark and tests.

Base records are new texts drawn from a word-bigram chain trained on the seed abstracts (so
they read like abstracts, share their common phrases, and are distinct from each other).
Then copies are planted, each remembering its base and its true similarity to it:

- ``noise``: case, whitespace, punctuation and page-furniture changes only;
- ``edited``: word substitutions, deletions and insertions (true Jaccard from ~0.6 to ~1);
- ``truncated``: the base cut at 25-95 % of its words (sometimes with an ellipsis and noise);
- ``negative``: a *different* record that shares a long passage (30-70 %) of a base, the rest
  new text: true Jaccard 0.2-0.6, containment below 0.8; it must not be clustered.

``truth`` columns: ``group`` (records of one group are duplicates), ``kind``, ``base`` (row of
the base), ``jaccard`` and ``containment`` to the base (exact, on this project's shingles),
``kept`` (share of the base's words a truncated copy keeps), ``ambiguous`` (an edited copy
whose true Jaccard fell below 0.8: neither counted as a duplicate nor as a mistake).

Example:
    >>> corpus = generate(300, seed=1)
    >>> len(corpus), sorted(corpus["kind"].unique())
    (300, ['base', 'edited', 'negative', 'noise', 'truncated'])
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from audit.dedup.shingles import shingle_hashes
from audit.dedup.verify import similarity
from audit.ingest import read_inputs
from audit.normalise import normalise_text

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
#: Share of records of each kind; the rest are bases.
SHARES = {"noise": 0.08, "edited": 0.12, "truncated": 0.10, "negative": 0.10}
FURNITURE = [
    "Get trending papers in your email inbox!",
    "Subscribe",
    "new",
    "byAK and the research community",
]


class BigramChain:
    """Word-bigram chain over the seed texts; generates many texts at once in numpy."""

    def __init__(self, texts: list[str]) -> None:
        tokens = [t.split() for t in texts if t.split()]
        self.vocab, codes = np.unique(
            np.concatenate([np.array(t, dtype=object) for t in tokens]), return_inverse=True
        )
        self.lengths = np.array([len(t) for t in tokens])
        doc_ends = np.cumsum(self.lengths)
        nxt = np.append(codes[1:], -1)
        nxt[doc_ends - 1] = -1  # no bigram across texts
        valid = nxt >= 0
        order = np.argsort(codes[valid], kind="stable")
        self.successors = nxt[valid][order]
        counts = np.bincount(codes[valid], minlength=len(self.vocab))
        self.offsets = np.concatenate(([0], np.cumsum(counts)))
        self.starts = codes[np.concatenate(([0], doc_ends[:-1]))]

    def generate(self, rng: np.random.Generator, count: int, lengths: np.ndarray) -> list[str]:
        longest = int(lengths.max()) if count else 0
        words = np.empty((count, longest), dtype=np.int64)
        current = rng.choice(self.starts, count)
        for step in range(longest):
            words[:, step] = current
            n_succ = self.offsets[current + 1] - self.offsets[current]
            pick = self.offsets[current] + (rng.random(count) * np.maximum(n_succ, 1)).astype(np.int64)
            jump = (n_succ == 0) | (rng.random(count) < 0.03)  # restarts keep texts apart
            current = np.where(
                jump,
                rng.integers(0, len(self.vocab), count),
                self.successors[np.minimum(pick, len(self.successors) - 1)],
            )
        return [" ".join(self.vocab[row[:n]].tolist()) for row, n in zip(words, lengths, strict=True)]


def _noise(rng: np.random.Generator, text: str) -> str:
    choice = rng.integers(0, 4)
    if choice == 0:
        text = text.upper() if rng.random() < 0.5 else text.lower()
    elif choice == 1:
        text = text.replace(" ", "  \n ", int(rng.integers(1, 20)))
    elif choice == 2:
        text = text.replace(",", "").replace(".", " .")
    return text + " " + FURNITURE[int(rng.integers(0, len(FURNITURE)))] if choice == 3 else text


def _edit(rng: np.random.Generator, text: str, vocab: np.ndarray) -> str:
    words = text.split()
    rate = rng.uniform(0.002, 0.04)
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < rate / 3:
            continue  # deletion
        if roll < 2 * rate / 3:
            out.append(str(vocab[rng.integers(0, len(vocab))]))  # substitution
            continue
        out.append(word)
        if roll < rate:
            out.append(str(vocab[rng.integers(0, len(vocab))]))  # insertion
    return " ".join(out)


def generate(records: int, seed: int = 0, seeds_dir: Path = SEEDS) -> pd.DataFrame:
    """A corpus of ``records`` rows (``id``, ``title``, ``text``, ``url``) with truth columns."""
    rng = np.random.default_rng(seed)
    seed_records = read_inputs([str(seeds_dir)]).records
    text_chain = BigramChain(seed_records["text"].tolist())
    title_chain = BigramChain(seed_records["title"].tolist())
    counts = {kind: int(records * share) for kind, share in SHARES.items()}
    bases = records - sum(counts.values())
    lengths = np.maximum(rng.choice(text_chain.lengths, bases), 20)
    texts = text_chain.generate(rng, bases, lengths)
    titles = title_chain.generate(rng, bases, rng.integers(6, 15, bases))
    rows = [
        {"title": t, "text": x, "kind": "base", "base": i, "kept": 1.0}
        for i, (t, x) in enumerate(zip(titles, texts, strict=True))
    ]
    negative_tails = text_chain.generate(
        rng, counts["negative"], np.maximum(rng.choice(lengths, counts["negative"]), 40)
    )
    for kind, count in counts.items():
        for n, base in enumerate(rng.integers(0, bases, count).tolist()):
            title, text = titles[base], texts[base]
            kept = 1.0
            if kind == "noise":
                text = _noise(rng, text)
            elif kind == "edited":
                text = _edit(rng, text, text_chain.vocab)
            elif kind == "truncated":
                words = text.split()
                kept = float(rng.uniform(0.25, 0.95))
                text = " ".join(words[: max(1, round(len(words) * kept))])
                text += "…" if rng.random() < 0.3 else ""
                text = _noise(rng, text) if rng.random() < 0.3 else text
            else:  # negative: a long passage of the base, then new text
                words, tail = text.split(), negative_tails[n].split()
                share = rng.uniform(0.3, 0.7)
                cut = round(len(words) * share)
                start = int(rng.integers(0, len(words) - cut + 1))
                text = " ".join(words[start : start + cut] + tail[: max(len(words) - cut, 10)])
                title = title_chain.generate(rng, 1, np.array([10]))[0]
            rows.append({"title": title, "text": text, "kind": kind, "base": base, "kept": kept})
    order = rng.permutation(len(rows))
    frame = pd.DataFrame([rows[i] for i in order])
    frame["base"] = np.argsort(order)[frame["base"].to_numpy()]  # base rows after shuffling
    frame.insert(0, "id", [f"doc{n:07d}" for n in range(len(frame))])
    frame["url"] = [f"https://example.org/{row}" if row % 3 else "" for row in frame["base"]]
    return _add_truth(frame)


def _add_truth(frame: pd.DataFrame) -> pd.DataFrame:
    norm = [normalise_text(t) for t in frame["text"]]
    jaccard, containment = np.ones(len(frame)), np.ones(len(frame))
    for row in np.flatnonzero(frame["kind"].to_numpy() != "base").tolist():
        base = int(frame["base"].iat[row])
        jaccard[row], containment[row] = similarity(shingle_hashes(norm[row]), shingle_hashes(norm[base]))
    kind = frame["kind"].to_numpy()
    ambiguous = (kind == "edited") & (jaccard < 0.8)
    group = np.where(kind == "negative", np.arange(len(frame)), frame["base"].to_numpy())
    group = np.where(ambiguous, -1, group)
    return frame.assign(jaccard=jaccard, containment=containment, ambiguous=ambiguous, group=group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", type=int)
    parser.add_argument("out", help="a .parquet file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generate(args.records, args.seed).to_parquet(args.out)


if __name__ == "__main__":
    main()
