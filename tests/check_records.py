"""A record DataFrame from a few titles and texts, for the check tests."""

from __future__ import annotations

import pandas as pd

from audit.schema import records_frame


def make_records(
    texts: list[str], titles: list[str] | None = None, urls: list[str] | None = None
) -> pd.DataFrame:
    titles = titles if titles is not None else ["A Title"] * len(texts)
    urls = urls if urls is not None else [""] * len(texts)
    return records_frame(
        [
            {
                "id": f"r{i}",
                "source": "s.jsonl",
                "line": i + 1,
                "title": title,
                "text": text,
                "url": url,
                "urls": [],
                "scraped_date": None,
                "format": "jsonl",
            }
            for i, (title, text, url) in enumerate(zip(titles, texts, urls, strict=True))
        ]
    )
