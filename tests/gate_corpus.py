"""Small JSONL corpora for the gate, config and expectations tests."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = [
    "graph neural networks",
    "protein folding",
    "speech recognition",
    "image segmentation",
    "reinforcement learning",
]


def good_records() -> list[dict[str, str]]:
    """Five distinct, well-formed records: no duplicates, no findings."""
    return [
        {
            "id": f"r{n}",
            "title": f"A study of {topic}",
            "text": f"We study {topic} on a new benchmark with {n + 3} tasks. Our method improves the "
            f"state of the art on every task of the benchmark by a clear margin over {topic} baselines. "
            f"Code is at https://github.com/example/project-{n}.",
            "url": f"https://example.org/paper/{n}",
        }
        for n, topic in enumerate(TOPICS)
    ]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
