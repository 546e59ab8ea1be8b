"""Precision and recall of a dedup result against a planted corpus's truth (:mod:`bench.corpus`).

A result is a cluster label per record (records sharing a label were judged duplicates).
Recall is per planted copy (found: same label as its base), split by kind and true Jaccard
band; precision is pairwise over the predicted clusters, records marked ``ambiguous`` left out.

Example:
    >>> truth = pd.DataFrame({"kind": ["base", "noise", "negative"], "base": [0, 0, 0],
    ...     "jaccard": [1.0, 0.95, 0.4], "kept": [1.0, 1.0, 1.0], "ambiguous": [False] * 3,
    ...     "group": [0, 0, 2]})
    >>> score(truth, np.array([0, 0, 0]))["precision"]
    0.3333
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def labels_from_pairs(size: int, pairs: np.ndarray) -> np.ndarray:
    """Cluster labels from predicted duplicate pairs (connected components)."""
    from audit.dedup.clusters import components

    labels = np.arange(size)
    for group in components(size, pairs):
        labels[group] = group[0]
    return labels


def _pairs(counts: pd.Series) -> int:
    return int((counts * (counts - 1) // 2).sum())


def score(truth: pd.DataFrame, labels: np.ndarray) -> dict[str, Any]:
    """Recall by category, pairwise precision and recall, F1."""
    kind = truth["kind"].to_numpy()
    jaccard, kept = truth["jaccard"].to_numpy(), truth["kept"].to_numpy()
    found = labels == labels[truth["base"].to_numpy()]
    copy = (kind != "base") & (kind != "negative") & ~truth["ambiguous"].to_numpy()
    categories = {
        "jaccard>=0.9": copy & (kind != "truncated") & (jaccard >= 0.9),
        "jaccard 0.8-0.9": copy & (kind != "truncated") & (jaccard >= 0.8) & (jaccard < 0.9),
        "truncated kept>=50%": (kind == "truncated") & (kept >= 0.5),
        "truncated kept<50%": (kind == "truncated") & (kept < 0.5),
    }
    recall = {
        name: round(float(found[mask].mean()), 4) if mask.any() else None for name, mask in categories.items()
    }
    counts = {name: int(mask.sum()) for name, mask in categories.items()}
    judged = truth["group"].to_numpy() >= 0
    frame = pd.DataFrame({"label": labels[judged], "group": truth["group"].to_numpy()[judged]})
    predicted = _pairs(frame.groupby("label").size())
    true_pairs = _pairs(frame.groupby("group").size())
    correct = _pairs(frame.groupby(["label", "group"]).size())
    precision = correct / predicted if predicted else 1.0
    pair_recall = correct / true_pairs if true_pairs else 1.0
    negatives = kind == "negative"
    return {
        "recall": recall,
        "copies": counts,
        "precision": round(precision, 4),
        "pair_recall": round(pair_recall, 4),
        "f1": round(2 * precision * pair_recall / (precision + pair_recall), 4) if correct else 0.0,
        "hard_negatives_merged": int((negatives & found).sum()),
    }
