"""Inputs other than plain JSON Lines cut into partitions (:mod:`audit.engines.partitions`): CSV at
record starts, Parquet by row groups (a large group rewritten smaller), gzipped files through an
uncompressed copy. Each partition read apart gives, put together, the records and quarantine rows
of the file read whole; a ``--engine dask`` run over them writes the local engine's outputs."""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client
from test_engine_dask_shards import both_runs, hostile_jsonl

import audit
from audit.engines import partitions
from audit.engines.partitions import Part, plan_file, read_part
from audit.engines.shards import ingest_shards
from audit.ingest import _read_one, read_inputs
from audit.ingest.base import SourceFile
from bench.corpus import generate

FIELDS = audit.FieldMap()


@pytest.fixture(scope="module")
def client(scheduler: str) -> Iterator[Client]:
    with Client(scheduler) as connected:
        yield connected


def records(count: int, seed: int) -> list[dict]:
    return generate(count, seed=seed)[["id", "title", "text", "url"]].to_dict("records")


def hostile_csv(count: int = 800, seed: int = 5, bom: bool = True, end: str = "\r\n") -> bytes:
    """A CSV export with quoted newlines (LF, CRLF and CR inside fields), CRLF ends, a byte-order
    mark, rows with too few or too many fields, invalid UTF-8, blank lines and rows without an id."""
    rng = random.Random(seed)
    rows = records(count, seed)
    for row in rows[::7]:
        row["text"] = (
            row["text"].replace(". ", ".\n", 2).replace(", ", ",\r\n", 1).replace(" the ", ' "the"\r', 1)
        )
    for row in rows[::13]:
        row["id"] = ""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=end)
    writer.writerow(["id", "title", "text", "url"])
    lines = []
    for row in rows:
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=end).writerow([row["id"], row["title"], row["text"], row["url"]])
        lines.append(buffer.getvalue().encode())
    for n in rng.sample(range(count), 30):
        kind = n % 4
        if kind == 0:
            lines[n] = b"only,three,fields" + end.encode()
        elif kind == 1:
            lines[n] = lines[n].replace(b",", b",\xff", 1)
        elif kind == 2:
            lines[n] = end.encode()  # a blank line
        else:
            lines[n] = b"a,b,c,d,e" + end.encode()
    data = out.getvalue().encode() + b"".join(lines)
    return (b"\xef\xbb\xbf" if bom else b"") + data


def pieces(parts: list[Part]) -> tuple[pd.DataFrame, list[dict]]:
    """The partitions read apart and put together: records (as one frame) and quarantine rows."""
    results = [read_part(part, FIELDS) for part in parts]
    assert not any(result.file_error for result in results)
    tables = [table for result in results for table in result.record_tables()]
    frame = pa.concat_tables(tables).to_pandas() if tables else None
    return frame, [row for result in results for row in result.quarantine]


def same_as_whole(source: SourceFile, parts: list[Part]) -> None:
    whole = _read_one(source, FIELDS)
    tables = whole.record_tables()
    frame, quarantine = pieces(parts)
    assert quarantine == whole.quarantine
    if tables:
        pd.testing.assert_frame_equal(frame, pa.concat_tables(tables).to_pandas())
    else:
        assert frame is None


def planned(path: Path, part_bytes: int, tmp_path: Path) -> list[Part] | None:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return plan_file(SourceFile(path, path.name), FIELDS, part_bytes, scratch, 0)


@pytest.mark.parametrize(("bom", "end"), [(True, "\r\n"), (False, "\n"), (False, "\r")])
def test_csv_cut_at_records_reads_as_the_whole_file(tmp_path: Path, bom: bool, end: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(hostile_csv(bom=bom, end=end))
    parts = planned(path, 4096, tmp_path)
    assert parts is not None and len(parts) > 50
    assert all(part.header == ("id", "title", "text", "url") for part in parts)
    same_as_whole(SourceFile(path, path.name), parts)
    whole = _read_one(SourceFile(path, path.name), FIELDS)
    assert len(whole.quarantine) >= 15 and whole.record_count > 700


def test_csv_an_open_quote_runs_to_the_end_as_in_the_whole_file(tmp_path: Path) -> None:
    data = hostile_csv(count=300, bom=False)
    path = tmp_path / "open.csv"
    path.write_bytes(data + b'x,y,"never closed\n' + data.split(b"\r\n", 1)[1])
    parts = planned(path, 2048, tmp_path)
    assert parts is not None
    same_as_whole(SourceFile(path, path.name), parts)


@pytest.mark.parametrize(
    "data", [b"", b"id,title,text,url\r\n", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, b"\xef\xbb\xbf"]
)
def test_csv_that_cannot_be_cut_is_read_whole(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    assert planned(path, 16, tmp_path) is None


def test_jsonl_gz_is_cut_in_its_uncompressed_copy(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    hostile_jsonl(plain, count=600)
    path = tmp_path / "dump.jsonl.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    parts = planned(path, 8192, tmp_path)
    assert parts is not None and len(parts) > 20
    assert {part.copy for part in parts} == {tmp_path / "scratch" / "0.jsonl"}
    same_as_whole(SourceFile(path, path.name), parts)


def test_csv_gz_is_cut_in_its_uncompressed_copy(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(hostile_csv()))
    parts = planned(path, 4096, tmp_path)
    assert parts is not None and len(parts) > 50
    same_as_whole(SourceFile(path, path.name), parts)


@pytest.mark.parametrize("cut", [0.3, 0.999])
def test_a_damaged_gzip_stream_is_read_whole(tmp_path: Path, cut: float) -> None:
    plain = tmp_path / "plain.jsonl"
    hostile_jsonl(plain, count=300)
    packed = gzip.compress(plain.read_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: int(len(packed) * cut)] + packed[-4:])  # its trailer's size kept
    assert planned(path, 4096, tmp_path) is None
    assert list((tmp_path / "scratch").iterdir()) == []  # no copy left
    corrupt = tmp_path / "crc.jsonl.gz"
    corrupt.write_bytes(packed[:-8] + b"\0\0\0\0" + packed[-4:])  # a wrong CRC
    assert planned(corrupt, 4096, tmp_path) is None
    rows = _read_one(SourceFile(path, path.name), FIELDS).quarantine
    assert [row["error"].split(":")[0] for row in rows] == ["corrupt or truncated gzip file"]


def write_parquet(path: Path, table: pa.Table, row_group_size: int | None = None) -> None:
    pq.write_table(table, path, row_group_size=row_group_size)


def hostile_table(count: int = 1500, seed: int = 9) -> pa.Table:
    """Records with null, numeric and missing titles and ids, texts that are null or not strings
    (quarantined), NUL characters and other columns (kept in the quarantine rows)."""
    rows = records(count, seed)
    rng = random.Random(seed)
    frame = pd.DataFrame(rows)
    frame["extra"] = [rng.random() for _ in range(count)]
    frame.loc[::11, "id"] = None
    frame.loc[::17, "title"] = None
    frame.loc[5::23, "text"] = None
    frame.loc[7::31, "title"] = "a \x00 title"
    return pa.Table.from_pandas(frame)


@pytest.mark.parametrize("group_rows", [None, 10, 1])
def test_parquet_in_row_groups_reads_as_the_whole_file(tmp_path: Path, group_rows: int | None) -> None:
    path = tmp_path / "export.parquet"
    write_parquet(path, hostile_table(), group_rows)
    parts = planned(path, 30_000, tmp_path)
    assert parts is not None and len(parts) > 20
    # One large group (None): rewritten smaller into a copy; small groups are read where they are.
    assert all((part.copy is not None) == (group_rows is None) for part in parts)
    same_as_whole(SourceFile(path, path.name), parts)
    assert len(_read_one(SourceFile(path, path.name), FIELDS).quarantine) > 50


def test_parquet_without_the_text_column_or_damaged_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "notext.parquet"
    write_parquet(path, hostile_table().drop_columns(["text"]), 50)
    assert planned(path, 2000, tmp_path) is None
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + bytes(50_000) + b"PAR1")
    assert planned(broken, 2000, tmp_path) is None


def test_parquet_gz_is_decompressed_then_cut(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    write_parquet(plain, hostile_table(), 100)
    path = tmp_path / "export.parquet.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    parts = planned(path, 20_000, tmp_path)
    assert parts is not None and len(parts) > 10
    same_as_whole(SourceFile(path, path.name), parts)


def test_page_dumps_and_small_files_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(b"A title\nAn abstract.\n" * 5000)
    assert planned(path, 100, tmp_path) is None
    small = tmp_path / "small.csv"
    small.write_bytes(hostile_csv(count=60))
    assert planned(small, 1 << 20, tmp_path) is None


def invalid_utf8_parquet(path: Path, bad_row: int, count: int = 400) -> None:
    """A Parquet file whose string column holds invalid UTF-8 at ``bad_row``: Python cannot take
    it, so the local engine quarantines the whole file as one row."""
    texts = [f"text number {n} " * 5 for n in range(count)]
    data = b"".join(t.encode() for t in texts)
    offsets, at = [0], 0
    for text in texts:
        at += len(text.encode())
        offsets.append(at)
    raw = bytearray(data)
    raw[offsets[bad_row]] = 0xFF
    array = pa.Array.from_buffers(
        pa.string(), count, [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(bytes(raw))]
    )
    pq.write_table(pa.table({"id": [f"r{n}" for n in range(count)], "text": array}), path, row_group_size=20)


def test_a_value_python_cannot_take_reads_the_file_whole_again(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    invalid_utf8_parquet(tmp_path / "bad.parquet", bad_row=300)
    (tmp_path / "good.csv").write_bytes(hostile_csv(count=200))
    parts = planned(tmp_path / "bad.parquet", 2000, tmp_path)
    assert parts is not None and len(parts) > 5
    assert [read_part(part, FIELDS).file_error for part in parts].count(True) == 1
    shards = ingest_shards(client, [str(tmp_path)], part_bytes=2000)
    batch = read_inputs([str(tmp_path)])
    assert len(shards.parts) > 10
    pd.testing.assert_frame_equal(shards.records(), batch.records)
    pd.testing.assert_frame_equal(shards.quarantine, batch.quarantine)
    assert shards.files == batch.files
    assert "unreadable Parquet values" in batch.quarantine["error"].tolist()[0]


def test_a_copy_the_workers_cannot_see_leaves_the_file_whole(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(hostile_csv(count=200)))
    source = SourceFile(path, path.name)
    assert len(partitions.plan(client, [source], FIELDS, 2000).parts) > 5
    # Workers on other machines: the client's scratch directory is not there.
    monkeypatch.setattr(client, "run", lambda function, paths: {"elsewhere": dict.fromkeys(paths, -1)})
    plan = partitions.plan(client, [source], FIELDS, 2000)
    assert plan.parts == [Part(source)]


@pytest.fixture(scope="module")
def formats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One corpus given as Parquet (one large row group), CSV and gzipped JSON Lines."""
    root = tmp_path_factory.mktemp("formats")
    frame = generate(1500, seed=11)[["id", "title", "text", "url"]]
    thirds = [frame.iloc[:500], frame.iloc[500:1000], frame.iloc[1000:]]
    thirds[0].to_parquet(root / "a.parquet")
    (root / "b.csv").write_bytes(
        b"\xef\xbb\xbf" + thirds[1].to_csv(index=False, lineterminator="\r\n").encode()
    )
    lines = "".join(json.dumps(r) + "\n" for r in thirds[2].to_dict("records"))
    (root / "c.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    return root


def test_a_dask_run_over_cut_formats_gives_the_local_outputs(
    formats_dir: Path, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit.engines.shards as shards_module

    monkeypatch.setattr(shards_module, "PART_BYTES", 40_000)
    plans: list[partitions.Plan] = []
    plan = partitions.plan

    def kept(*args: object) -> partitions.Plan:
        plans.append(plan(*args))
        return plans[-1]

    monkeypatch.setattr(partitions, "plan", kept)
    both_runs([formats_dir], tmp_path, scheduler)
    [made] = plans
    cut = Counter(part.source.name for part in made.parts)
    assert set(cut) == {"a.parquet", "b.csv", "c.jsonl.gz"} and min(cut.values()) > 5, cut
    scratch = Path(made.scratch.name)
    assert scratch.exists()
    del made, plans[:]
    gc.collect()
    assert not scratch.exists()  # the copies removed with the plan


def test_rows_larger_than_a_partition_are_rewritten_once(tmp_path: Path) -> None:
    path = tmp_path / "wide.parquet"
    write_parquet(path, hostile_table(count=40))
    parts = planned(path, 100, tmp_path)  # every row larger than a partition: a group each
    assert parts is not None and [part.row_groups for part in parts] == [(n,) for n in range(40)]
    same_as_whole(SourceFile(path, path.name), parts)


def test_input_bytes_count_a_gzipped_file_uncompressed(tmp_path: Path) -> None:
    data = hostile_csv(count=100)
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.csv").write_bytes(data)
    assert partitions.input_bytes([str(tmp_path)]) == 2 * len(data)
