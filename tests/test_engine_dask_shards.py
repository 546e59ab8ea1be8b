"""``--engine dask`` over partitions: the run reads, checks, cleans and writes a partition at a time
on the workers, and gives the local engine's outputs byte for byte.

One LocalCluster (2 worker processes on 127.0.0.1) for the module; partitions made small so
that a few thousand records spread over many of them."""

from __future__ import annotations

import gzip
import itertools
import json
import pickle
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from distributed import Client, Future

import audit
import audit.engines.held_findings as held_findings
import audit.engines.sharded as sharded
import audit.engines.shards as shards_module
from audit.checks.table import FindingTable
from audit.engines.partitions import count_lines, cut_points, spans
from audit.engines.shards import ingest_shards
from audit.ingest import read_inputs
from audit.ingest.base import SourceFile
from audit.ingest.jsonl import JsonlReader, read_span
from audit.pipeline import completeness
from audit.report import views
from bench.corpus import generate

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
OUTPUTS = (
    "clean.jsonl",
    "removed.jsonl",
    "clusters.jsonl",
    "findings.jsonl",
    "quarantine.jsonl",
    "report.md",
)


@pytest.fixture(scope="module")
def client(scheduler: str) -> Iterator[Client]:
    with Client(scheduler) as connected:
        yield connected


def hostile_jsonl(path: Path, count: int = 3000, seed: int = 7) -> None:
    """A generated corpus (near, cut and exact copies, findings with repairs, untitled records and
    short texts) as JSON Lines with
    a byte-order mark, CRLF and lone-CR line ends, blank lines, lines to quarantine (invalid
    JSON and UTF-8, NUL, a non-object, a text that is no string), ids repeated far apart and
    records without an id (their ids are their line numbers)."""
    corpus = generate(count, seed=seed)[["id", "title", "text", "url"]].to_dict("records")
    for record in corpus[-80:]:  # whole partitions without a title, in a source that has titles
        record["title"] = ""
    for record in corpus[::200]:
        record["text"] = record["text"][:150]
    rng = random.Random(seed)
    lines = [json.dumps(record, ensure_ascii=rng.random() < 0.5).encode() for record in corpus]
    for n in rng.sample(range(count), 40):
        kind = n % 6
        if kind == 0:
            lines[n] = b"{not json"
        elif kind == 1:
            lines[n] = lines[n].replace(b'"text": "', b'"text": "\xff', 1)
        elif kind == 2:
            lines[n] = lines[n].replace(b'"title": "', b'"title": "\x00', 1)
        elif kind == 3:
            lines[n] = b"[1, 2]"
        elif kind == 4:
            lines[n] = json.dumps({"id": f"n{n}", "text": 5}).encode()
        else:
            lines[n] = b""
    for n in rng.sample(range(count), 30):  # ids repeated: made unique as in one reading
        lines[n] = json.dumps({**corpus[n], "id": corpus[n % 50]["id"]}).encode()
    for n in rng.sample(range(count), 30):  # no id: the line number is the id
        lines[n] = json.dumps({k: v for k, v in corpus[n].items() if k != "id"}).encode()
    ends = [b"\r\n" if n < count // 4 else b"\r" if n % 97 == 0 else b"\n" for n in range(count)]
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(line + end for line, end in zip(lines, ends, strict=True)))


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files of every format, one of them cut into many partitions."""
    root = tmp_path_factory.mktemp("inputs")
    hostile_jsonl(root / "big.jsonl")
    small = generate(300, seed=3)[["id", "title", "text", "url"]]
    small.to_csv(root / "small.csv", index=False)
    small.assign(id=small["id"] + "p").to_parquet(root / "small.parquet")
    lines = "".join(json.dumps(r) + "\n" for r in small.assign(id=small["id"] + "g").to_dict("records"))
    (root / "packed.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    (root / "image.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (root / "dump.txt").write_bytes((SEEDS / "001_02fc474db44ba42c.txt").read_bytes())
    return root


def test_line_ends_are_counted_as_splitlines_cuts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    monkeypatch.setattr("audit.ingest.jsonl.BLOCK_BYTES", 3)  # CRLF cut between blocks too
    for n in range(300):
        data = bytes(rng.choice(b"ab\r\n") for _ in range(rng.randrange(0, 30)))
        path = tmp_path / f"{n}.jsonl"
        path.write_bytes(data)
        assert count_lines(SourceFile(path, path.name), 0, len(data)) == len(data.splitlines()), data


def test_spans_cut_at_line_ends_and_number_as_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    hostile_jsonl(path, count=600)
    source = SourceFile(path, path.name)
    points = cut_points(source, 20_000)
    assert points is not None and len(points) > 10 and points[0] == 0 and points[-1] == path.stat().st_size
    data = path.read_bytes()
    assert all(data[p - 1 : p] == b"\n" for p in points[1:-1])
    parts = spans(source, points, [count_lines(source, a, b) for a, b in itertools.pairwise(points)])
    whole = JsonlReader().read(source, audit.FieldMap())
    pieces = [read_span(source, audit.FieldMap(), part.span) for part in parts]
    assert [q for piece in pieces for q in piece.quarantine] == whole.quarantine
    lines = [
        n for piece in pieces for table in piece.record_tables() for n in table.column("line").to_pylist()
    ]
    assert lines == [n for table in whole.record_tables() for n in table.column("line").to_pylist()]
    assert cut_points(source, path.stat().st_size) is None  # small enough: read whole


def test_ingest_over_partitions_gives_read_inputs(corpus_dir: Path, client: Client) -> None:
    shards = ingest_shards(client, [str(corpus_dir)], part_bytes=50_000)
    assert len(shards.parts) > 20
    batch = read_inputs([str(corpus_dir)])
    pd.testing.assert_frame_equal(shards.records(), batch.records)
    pd.testing.assert_frame_equal(shards.quarantine, batch.quarantine)
    assert shards.files == batch.files and shards.skipped == batch.skipped
    assert len(batch.quarantine) > 30 and batch.records["id"].str.contains("@").any()
    compact = shards.compact
    assert (
        "text" not in compact and compact["text_length"].tolist() == batch.records["text"].str.len().tolist()
    )
    rank, ours = completeness(batch.records), shards.completeness()
    assert all(rank(row) == ours(row) for row in range(len(compact)))


def same_outputs(local: Path, dask: Path, names: tuple[str, ...] = OUTPUTS) -> None:
    """The files ``names`` and report.json (but for parameters and timings) are the same."""
    for name in names:
        assert (local / name).read_bytes() == (dask / name).read_bytes(), name
    local_report, dask_report = (json.loads((d / "report.json").read_text()) for d in (local, dask))
    ignored = ("parameters", "timings_seconds")
    assert {k: v for k, v in local_report.items() if k not in ignored} == {
        k: v for k, v in dask_report.items() if k not in ignored
    }


def both_runs(paths: list[Path], out: Path, scheduler: str, **options) -> sharded.ShardedResult:
    audit.run(paths, out=out / "local", config=audit.AuditConfig(**options))
    result = audit.run(
        paths, out=out / "dask", config=audit.AuditConfig(engine="dask", scheduler=scheduler, **options)
    )
    assert isinstance(result, sharded.ShardedResult)
    same_outputs(out / "local", out / "dask")
    return result


@pytest.fixture(scope="module")
def local_run(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, audit.AuditResult]:
    """The local engine's run of every input (default checks): its output directory and result."""
    out = tmp_path_factory.mktemp("local") / "out"
    return out, audit.run([corpus_dir], out=out, config=audit.AuditConfig())


@dataclass
class DaskRun:
    out: Path
    result: sharded.ShardedResult
    #: Rows of each text fetch of the client (report.html's).
    fetched: list[int]
    #: Per step, what each result the client received then might hold of a text (see :func:`_texts`).
    received: dict[str, list[bool]]


def _texts(value: object) -> bool:
    """Whether ``value`` (a task's result) holds any string: a record's text could be among them.
    Numbers and numeric arrays hold none; anything else unknown counts as holding some."""
    if value is None or isinstance(value, bool | int | float | np.number):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "biuf"
    if isinstance(value, list | tuple):
        return any(_texts(item) for item in value)
    return True


@pytest.fixture(scope="module")
def dask_run(
    corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory, scheduler: str, local_run: tuple
) -> DaskRun:
    """The same run over partitions (50 kB), the client forbidden to read any input and its text
    fetches counted; shared by the tests that read it."""
    out = tmp_path_factory.mktemp("dask") / "out"
    fetched: list[int] = []
    fetch = sharded.fetch
    received: dict[str, list[bool]] = {}
    step = ["start"]
    result_of = Future.result

    def result(self: Future, *args: object, **kwargs: object) -> object:
        value = result_of(self, *args, **kwargs)
        received.setdefault(step[0], []).append(_texts(value))
        return value

    def progress(name: str, what: str, seconds: float) -> None:
        step[0] = name if what == "start" else "between"

    def counted(shards: object, rows: np.ndarray, column: str) -> list:
        fetched.append(len(rows))
        return fetch(shards, rows, column)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the client read an input file")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards_module, "PART_BYTES", 50_000)
        # Workers are other processes: these only stop this one from reading the records.
        patch.setattr(JsonlReader, "read", refuse)
        patch.setattr("audit.ingest.read_inputs", refuse)
        patch.setattr(sharded, "fetch", counted)
        patch.setattr(Future, "result", result)
        config = audit.AuditConfig(engine="dask", scheduler=scheduler)
        result = audit.run([corpus_dir], out=out, config=config, progress=progress)
    assert isinstance(result, sharded.ShardedResult)
    return DaskRun(out, result, fetched, received)


def test_a_run_over_partitions_gives_the_local_outputs(local_run: tuple, dask_run: DaskRun) -> None:
    same_outputs(local_run[0], dask_run.out)
    result = dask_run.result
    findings = result.findings
    assert findings["applied"].sum() > 50  # repairs made on the workers' texts
    assert set(findings["check"]) >= {"truncation", "conflicting_copies", "boilerplate", "empty_or_short"}
    written = [json.loads(line) for line in (dask_run.out / "findings.jsonl").open(encoding="utf-8")]
    assert sum(row["evidence"].get("signal") == "prefix of a longer copy" for row in written) > 10
    clean = [json.loads(line) for line in (dask_run.out / "clean.jsonl").open(encoding="utf-8")]
    assert any("filled from duplicate" in note for row in clean for note in row["repairs"])
    assert result.report["counts"]["quarantined"] > 30


def test_options_and_a_choice_of_checks_give_the_local_outputs(
    corpus_dir: Path, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards_module, "PART_BYTES", 80_000)
    options = {
        "truncation": {"min_limit_count": 2, "mid_word": False},
        "empty_or_short": {"min_text_chars": 400},
    }
    checks = ("empty_or_short", "truncation", "conflicting_copies")
    both_runs([corpus_dir / "big.jsonl"], tmp_path, scheduler, checks=checks, check_options=options)


def test_the_client_reads_no_input_and_holds_no_text(dask_run: DaskRun) -> None:
    """:func:`dask_run` read no input in the client (else it had failed) and fetched few texts."""
    result = dask_run.result
    assert "text" not in result.records.columns and "urls" not in result.records.columns
    # The clean step applied its repairs on the workers: no text came here, nor any value it
    # changed (its results here: numbers only), and its plan holds none.
    assert result.corpus is not None and "text" not in result.corpus.records.columns
    assert result.corpus.changed == {} and result.corpus.notes == {}
    clean = dask_run.received["clean"]
    assert len(clean) > 3 and not any(clean)
    assert any(dask_run.received["write"])  # what _texts tells: the write step gets lines
    # Texts came here only for the rows report.html shows (at most MAX_FINDING_ROWS findings'
    # records and the copies of MAX_CLUSTERS clusters).
    [shown] = dask_run.fetched
    largest = sorted(result.clusters["size"].tolist(), reverse=True)[: views.MAX_CLUSTERS]
    assert 0 < shown <= views.MAX_FINDING_ROWS + sum(largest)
    with pytest.raises(RuntimeError, match=r"clean\.jsonl"):
        result.clean  # noqa: B018 - the corpus is not held here


def test_no_records_at_all_give_the_local_outputs(tmp_path: Path, scheduler: str) -> None:
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jsonl").write_bytes(b"{bad\n[1]\n\n")
    (bad / "b.jsonl").write_bytes(b"")
    for inputs in ("empty", "bad"):
        both_runs([tmp_path / inputs], tmp_path / f"out-{inputs}", scheduler)


def test_findings_stay_on_the_workers(
    corpus_dir: Path, local_run: tuple, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """findings.jsonl is written part by part on the workers; the client gets the columns it
    counts and the whole rows of the findings the outputs show only."""
    monkeypatch.setattr(shards_module, "PART_BYTES", 50_000)
    monkeypatch.setattr(held_findings, "SHOWN_PER_GROUP", 4)
    monkeypatch.setattr(held_findings, "MAX_ANNOTATIONS", 2)
    fetched: list[int] = []
    texts = held_findings.HeldFindings.texts

    def counted(self: held_findings.HeldFindings, positions: np.ndarray) -> dict:
        fetched.append(len(positions))
        return texts(self, positions)

    monkeypatch.setattr(held_findings.HeldFindings, "texts", counted)
    local_out, local = local_run
    config = audit.AuditConfig(engine="dask", scheduler=scheduler)
    result = audit.run([corpus_dir], out=tmp_path / "dask", config=config)
    for name in OUTPUTS[:-1]:  # report.md shows more rows than 4 a group
        assert (local_out / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    lean, whole = result.findings, local.findings
    columns = ["record_id", "check", "severity", "field", "applied"]
    assert lean[columns].astype(object).equals(whole[columns].astype(object))
    assert result.report["findings_by_check_severity"] == local.report["findings_by_check_severity"]
    groups = whole.groupby(["severity", "check"]).ngroups
    repaired = int(whole["repair"].map(lambda r: isinstance(r, dict)).sum())
    [got] = fetched
    assert got <= 4 * groups + 2 * whole["check"].nunique() + repaired < len(whole) / 2
    shown = lean["message"].notna().to_numpy()
    assert shown.sum() == got
    assert lean["message"][shown].tolist() == whole["message"][shown].tolist()
    assert lean["repair"].tolist() == whole["repair"].tolist()  # the clean plan reads every repair
    limits = whole["evidence"].map(lambda e: e.get("limit"))
    assert lean["evidence"].map(lambda e: (e or {}).get("limit")).equals(limits)


def test_conflicting_copies_run_on_the_workers(corpus_dir: Path, client: Client) -> None:
    """The rows sharing a key are shuffled to their key's partition: the check's findings of one
    run over every record, in its order, and no text comes back."""
    from audit.checks import CheckContext
    from audit.checks.base import finding_rows
    from audit.checks.conflicting_copies import ConflictingCopiesCheck
    from audit.dedup import DedupConfig, find_duplicates
    from audit.engines.corpus_checks import CorpusChecks

    shards = ingest_shards(client, [str(corpus_dir)], part_bytes=100_000)
    records = shards.records()
    clusters = find_duplicates(records, DedupConfig(), completeness(records)).clusters
    for options, context in (({}, clusters), ({"min_title_words": 1}, clusters), ({}, None)):
        expected = finding_rows(
            ConflictingCopiesCheck(**options).run(records, CheckContext(clusters=context))
        )
        [part] = CorpusChecks(shards, context).conflicting_copies(options)
        assert pickle.loads(part.result()) == expected and len(expected) > 20


def test_the_lean_findings_hold_every_row_the_outputs_show(monkeypatch: pytest.MonkeyPatch) -> None:
    """report.html's table (sampled past its limit), report.md's top findings and the gate's
    annotations read the same rows of the lean frame as of the whole findings."""
    from audit.gate import github_annotations
    from audit.report.markdown import TOP_FINDINGS, render_markdown

    monkeypatch.setattr(views, "MAX_FINDING_ROWS", 40)
    monkeypatch.setattr(held_findings, "SHOWN_PER_GROUP", max(40, TOP_FINDINGS))  # as the module sets it
    rng = random.Random(5)
    count = 4000
    ids = [f"r{rng.randrange(600):04d}" for _ in range(count)]
    checks = [rng.choice(["truncation", "encoding", "boilerplate", "malformed_url"]) for _ in range(count)]
    whole = pd.DataFrame(
        {
            "record_id": ids,
            "check": checks,
            "severity": [rng.choice(["error", "warning", "info"]) for _ in range(count)],
            "field": [rng.choice(["text", "title"]) for _ in range(count)],
            "message": [f"finding {n}" for n in range(count)],
            "evidence": [{"offset": 0, "match": "r", "limit": n % 3} for n in range(count)],
            "repair": [
                {"offset": 0, "old": "a", "new": "b", "description": "d"} if n % 50 == 0 else None
                for n in range(count)
            ],
        }
    ).assign(applied=[n % 100 == 0 for n in range(count)])
    repaired = whole["repair"].notna().to_numpy()
    at = held_findings.shown(FindingTable.from_frame(whole), repaired)
    shown = set(at.tolist())
    lean = whole.assign(
        message=pd.Series([m if n in shown else None for n, m in enumerate(whole["message"])], dtype=object),
        evidence=[e if n in shown else {"limit": e["limit"]} for n, e in enumerate(whole["evidence"])],
        repair=[r if n in shown else None for n, r in enumerate(whole["repair"])],
    )
    assert len(at) < count / 2
    whole, lean = FindingTable.from_frame(whole), FindingTable.from_frame(lean)
    records = pd.DataFrame(
        {"id": sorted(set(ids)), "source": "s.jsonl", "line": 1, "title": "r", "text": "r"}
    )
    assert views.finding_rows(lean, records) == views.finding_rows(whole, records)
    assert views.length_limit(lean) == views.length_limit(whole)
    report = {
        "findings_by_check_severity": {},
        "repairs_applied": 0,
        "counts": dict.fromkeys(("input", "kept", "removed", "quarantined"), 0),
        "duplicates": {"clusters": 0, "duplicate_rate": 0.0},
    }
    top = render_markdown(report, whole, pd.DataFrame()).split("## Top findings")[1]
    assert render_markdown(report, lean, pd.DataFrame()).split("## Top findings")[1] == top
    gate = {"criteria": [{"name": f"findings:{c}", "kind": "findings", "passed": False} for c in set(checks)]}
    files = [{"source": "s.jsonl", "path": "s.jsonl"}]
    assert github_annotations(gate, lean, records, files) == github_annotations(gate, whole, records, files)


def _shown_reference(frame: pd.DataFrame, repaired: np.ndarray) -> np.ndarray:
    """:func:`held_findings.shown` as pandas sorts and groups the findings' Python values."""
    from audit.checks.base import SEVERITIES
    from audit.gate import MAX_ANNOTATIONS

    rank = frame["severity"].map({s: n for n, s in enumerate(SEVERITIES)}).to_numpy(np.int64)
    ordered = pd.DataFrame(
        {"rank": rank, "check": frame["check"], "record_id": frame["record_id"], "at": np.arange(len(frame))}
    ).sort_values(["rank", "check", "record_id", "at"], kind="stable")
    most = held_findings.SHOWN_PER_GROUP
    firsts = ordered.groupby(["rank", "check"], sort=False).head(most)["at"].to_numpy(np.int64)
    annotated = frame.groupby("check", sort=False).head(MAX_ANNOTATIONS).index.to_numpy(np.int64)
    return np.unique(np.concatenate((firsts, annotated, np.flatnonzero(repaired)))).astype(np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_shown_picks_the_rows_pandas_picked(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shown rows, worked out on the table's codes, are those of sorting and grouping the
    findings' values (ties of record ids, non-ASCII ids, one check, few rows, groups past the limit)."""
    rng = random.Random(seed)
    monkeypatch.setattr(held_findings, "SHOWN_PER_GROUP", rng.choice([1, 3, 40]))
    count = rng.choice([1, 2, 7, 500, 3000])
    names = ["truncation", "encoding", "boilerplate", "malformed_url"][: rng.randint(1, 4)]
    ids = [rng.choice(["r", "é", "\u4e2d", "Z", "a"]) + str(rng.randrange(count)) for _ in range(count)]
    frame = pd.DataFrame(
        {
            "record_id": ids,
            "check": [rng.choice(names) for _ in range(count)],
            "severity": [rng.choice(["error", "warning", "info"]) for _ in range(count)],
            "field": "text",
            "message": "m",
            "evidence": [{} for _ in range(count)],
            "repair": None,
        }
    )
    repaired = np.array([rng.random() < 0.05 for _ in range(count)], bool)
    got = held_findings.shown(FindingTable.from_frame(frame), repaired)
    assert got.tolist() == _shown_reference(frame, repaired).tolist()


class _LocalHeld:
    """:class:`held_findings.HeldFindings`' texts of rows, from a list here (no cluster)."""

    def __init__(self, rows: list) -> None:
        self.all = rows

    def __len__(self) -> int:
        return len(self.all)

    def texts(self, positions: np.ndarray) -> dict:
        return held_findings.texts_of([self.all[at] for at in positions.tolist()])


def test_the_lean_findings_make_no_python_value_per_finding() -> None:
    """The client's lean findings are made from the workers' columns with numpy and Arrow only:
    Python's allocations while they are made stay far below one string per finding (a frame of
    the findings' ids, checks and severities as Python values took ~380 bytes a finding)."""
    import tracemalloc

    rng = random.Random(3)
    count = 100_000
    rows = [
        (
            f"doc{rng.randrange(10**7):07d}",
            rng.choice(["truncation", "encoding", "boilerplate"]),
            rng.choice(["error", "warning", "info"]),
            rng.choice(["text", "title"]),
            f"message {n}",
            {"limit": 100 + n % 2} if n % 3 == 0 else {"offset": n},
            {"offset": 0, "old": "a", "new": "b", "description": "d"} if n % 97 == 0 else None,
        )
        for n in range(count)
    ]
    columns: dict[str, list] = {}
    for start in range(0, count, 25_000):
        for name, values in held_findings._lean(held_findings.pack(rows[start : start + 25_000])).items():
            columns.setdefault(name, []).append(values)
    assert all(
        isinstance(part, pa.DictionaryArray)
        for name in ("check", "severity", "field")
        for part in columns[name]
    )
    tracemalloc.start()
    try:
        lean = held_findings.lean_table(_LocalHeld(rows), columns)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120 * count, f"{peak / count:.0f} bytes a finding"
    whole = FindingTable.of(rows)
    for name in ("record_id", "check", "severity", "field"):
        assert lean.values(name) == whole.values(name)
    assert lean.values("repair") == whole.values("repair")
    shown = np.flatnonzero(lean.table["message"].is_valid().to_numpy(zero_copy_only=False))
    assert 0 < len(shown) < count / 4
    assert lean.values("message", shown) == whole.values("message", shown)
    assert lean.values("evidence", shown) == whole.values("evidence", shown)
    limits = [e.get("limit") if e else None for e in lean.values("evidence")]
    assert limits == [e.get("limit") for e in whole.values("evidence")]


def test_partition_plans_write_the_local_lines(corpus_dir: Path, tmp_path: Path) -> None:
    """Each partition's share of the clean plan (its records looked at there, with the repairs and
    the fields lent them from any partition; its representatives' members from any partition,
    sent as compact rows) writes its lines of clean.jsonl and removed.jsonl: joined in order, the
    local files, and the repairs' ``applied`` flags are the local ones. No cluster: the functions
    the workers run, called here."""
    from audit.report.writers import write_jsonl

    result = audit.run([corpus_dir / "big.jsonl"], out=None, config=audit.AuditConfig())
    corpus = result.corpus
    assert corpus is not None
    write_jsonl(corpus.clean_batches(), tmp_path / "clean.jsonl")
    write_jsonl(corpus.removed_batches(), tmp_path / "removed.jsonl")
    records = corpus.records
    compact = records.drop(columns=["text", "urls"])  # what the client holds
    found = result.found
    plan = sharded.plan_fates(compact, result.dedup, found)
    applied = np.zeros(len(found), bool)
    starts = [0, 1, 7, *range(100, len(records), 333), len(records)]
    lent = looked_at = 0
    clean, removed = b"", b""
    for start, stop in itertools.pairwise(starts):
        part = records.iloc[start:stop].reset_index(drop=True)
        share = sharded.look_share(plan, start, stop)
        changes = None
        if share is not None:
            looked_at += len(share["rows"])
            changes, (positions, done) = sharded._look_at_part(part, pickle.dumps(share))
            applied[positions] = done
        part_plan = sharded.part_plan(plan.corpus, start, stop)
        lent += int((~part_plan["members"]["id"].isin(records["id"].iloc[start:stop])).sum())
        lines = sharded._write_part(part, pickle.dumps(part_plan), changes)
        clean, removed = clean + lines[0], removed + lines[1]
    assert lent > 10  # members of other partitions were listed
    assert looked_at == len(plan.todo) > 50 and len(plan.lent) > 10
    assert applied.sum() > 50 and applied.tolist() == found.table["applied"].to_pylist()
    assert clean == (tmp_path / "clean.jsonl").read_bytes()
    assert removed == (tmp_path / "removed.jsonl").read_bytes()


def test_the_client_holds_compact_forms(dask_run: DaskRun) -> None:
    """What the client keeps per record (see audit/engines/sharded.py) holds no Python object per
    record: the compact columns are numbers, Arrow strings and categoricals; dedup's copies are
    Arrow arrays; the lean findings' texts are dictionary codes (the record id alone a string)."""
    from audit.dedup.idmap import IdMap

    result = dask_run.result
    records = result.records
    assert list(records.columns) == list(shards_module.COMPACT_COLUMNS)
    kinds = {name: str(dtype) for name, dtype in records.dtypes.items()}
    assert "object" not in kinds.values(), kinds
    assert all(isinstance(records[name].dtype, pd.CategoricalDtype) for name in shards_module.CODED_COLUMNS)
    assert result.dedup is not None and len(result.dedup.duplicate_of) > 10
    assert isinstance(result.dedup.duplicate_of, IdMap) and isinstance(result.dedup.relation_of, IdMap)
    table = result.found.table
    texts = ("check", "severity", "field", "message", "evidence", "repair")
    assert all(pa.types.is_dictionary(table[name].type) for name in texts)
    assert result.corpus is not None
    info = result.corpus.removed_info
    assert not any(info[name].dtype == object for name in ("id", "reason", "duplicate_of"))
