"""A fuzz target per ingest format: generated contents never raise out of ``read_inputs``.

For every generated file: no exception, no reader bug turned into an "internal error" row, every
record and quarantine row can be written as UTF-8 JSON, and where the number of input items is
known (JSONL lines, CSV rows, Parquet rows) each is exactly one record or one quarantine row.
Bounded in the normal run; ``SCRAPE_AUDIT_FUZZ=1`` runs thousands of examples (README).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from audit.ingest import IngestResult, read_inputs
from audit.report.writers import write_jsonl

# Text that hits the readers' edge cases: furniture words, separators, BOM, NUL, surrogates.
tricky_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(categories=["Cs"]),  # lone surrogates: from JSON escapes, undecodable bytes
        st.sampled_from(["\n", "\r", "\x00", "\ufeff", "\u2028", "\x85", '"', ",", "{", "("]),
    ),
    max_size=60,
) | st.sampled_from(["Subscribe", "SubscribeNew Title", "new", "Mar 13", "", "   ", "x" * 400 + "."])
tricky_line = st.one_of(
    tricky_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)


def read_one(name: str, data: bytes) -> IngestResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        batch = read_inputs([path])
        # Everything read must be writable as the outputs are (UTF-8 JSON Lines).
        write_jsonl(batch.records, Path(tmp) / "records.jsonl")
        write_jsonl(batch.quarantine, Path(tmp) / "quarantine.jsonl")
    assert not any(str(e).startswith("internal error") for e in batch.quarantine["error"])
    assert batch.records["id"].is_unique
    return batch


@given(st.lists(tricky_line, max_size=30), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_fuzz_pagedump(lines: list[bytes], newline: bytes) -> None:
    data = newline.join(lines)
    batch = read_one("dump.txt", data)
    assert len(batch.records) + len(batch.quarantine) <= max(1, len(data.splitlines()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.fixed_dictionaries(
    {},
    optional={"text": json_values, "title": json_values, "url": json_values, "id": json_values},
)


@given(st.lists(st.one_of(json_objects, json_values), max_size=20), st.lists(tricky_line, max_size=5))
def test_fuzz_jsonl(values: list[object], raw_lines: list[bytes]) -> None:
    lines = [json.dumps(v).encode() for v in values]
    lines += [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in raw_lines]  # one line each
    batch = read_one("export.jsonl", b"\n".join(lines) + b"\n")
    # Lines of only (Unicode) whitespace are blank lines, not records.
    non_blank = [line for line in lines if line.decode("utf-8", "replace").strip()]
    if not batch.quarantine["line"].isna().any():  # unless the whole file was judged not text
        assert len(batch.records) + len(batch.quarantine) == len(non_blank)


@given(
    st.lists(st.lists(tricky_text, min_size=2, max_size=2), max_size=15),
    st.sampled_from(["\n", "\r\n"]),
    st.binary(max_size=30),
)
def test_fuzz_csv(rows: list[list[str]], newline: str, damage: bytes) -> None:
    buffer = io.StringIO()
    # Quote every field: an unquoted lone CR inside a field would be a line end to any reader.
    writer = csv.writer(buffer, lineterminator=newline, quoting=csv.QUOTE_ALL)
    writer.writerow(["text", "title"])
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8", "surrogatepass")
    batch = read_one("export.csv", data)
    if not batch.quarantine["line"].isna().any():
        assert len(batch.records) + len(batch.quarantine) == len(rows)
    read_one("damaged.csv", data[: len(data) // 2] + damage)


@given(
    st.lists(st.one_of(st.none(), tricky_text), max_size=15),
    st.sampled_from(["text", "body"]),
    st.integers(0, 200),
)
def test_fuzz_parquet(texts: list[str | None], column: str, cut: int) -> None:
    buffer = io.BytesIO()
    safe = [t.encode("utf-8", "replace").decode("utf-8") if t is not None else None for t in texts]
    pq.write_table(pa.table({column: pa.array(safe, type=pa.string()), "n": list(range(len(safe)))}), buffer)
    data = buffer.getvalue()
    batch = read_one("export.parquet", data)
    if column == "text":
        assert len(batch.records) + len(batch.quarantine) == len(texts)
    else:
        assert batch.records.empty and len(batch.quarantine) == 1
    read_one("cut.parquet", data[: max(0, len(data) - cut)])


@given(st.binary(max_size=300), st.sampled_from(["a.txt.gz", "a.jsonl.gz", "a.csv.gz"]), st.booleans())
def test_fuzz_gzip_wrapped(data: bytes, name: str, truncate: bool) -> None:
    packed = gzip.compress(data)
    read_one(name, packed[: len(packed) // 2] if truncate else packed)
