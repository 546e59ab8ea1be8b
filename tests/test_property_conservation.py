"""Property tests over generated corpora with random duplicates and damage.

Conservation: every input item (JSONL line, CSV row, page-dump record) becomes exactly one
record or one quarantine row; every record ends in exactly one of clean.jsonl / removed.jsonl;
every ``duplicate_of`` points at a kept record; report.json counts add up.
Determinism: byte-identical clean/removed/clusters/findings/quarantine JSONL across runs and
across the order in which files are given.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import audit
from audit.index import open_index

OUTPUTS = ("clean.jsonl", "removed.jsonl", "clusters.jsonl", "findings.jsonl", "quarantine.jsonl")
WORDS = (
    "model data learning graph neural sparse attention token video diffusion robot policy reward "
    "language vision benchmark dataset training inference scaling memory retrieval agent"
).split()

word_texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=25).map(" ".join)
# Copies a scraper makes of a text: as is, re-cased, re-punctuated, cut short, with a URL added.
variants = st.sampled_from(["same", "upper", "punct", "cut", "url"])
damage = st.sampled_from(
    [
        b'{"text": "broken\n',
        b"[1, 2]\n",
        b'{"title": "no text"}\n',
        b'{"text": 42}\n',
        b'{"text": null}\n',
        b'{"text": "bad \xff byte"}\n',
        b'{"text": "nul \\u0000"}\n',
        b'{"text": "http://x.org/a{b}c https: //y.org htps://z.org ((("}\n',
    ]
)


def make_variant(text: str, how: str) -> str:
    return {
        "same": text,
        "upper": text.upper(),
        "punct": text.replace(" ", ", ") + ".",
        "cut": " ".join(text.split()[: max(1, len(text.split()) - 1)]) + " ...",
        "url": text + " see https://github.com/org/repo.",
    }[how]


@dataclass
class Corpus:
    files: dict[str, bytes]
    #: JSONL lines + CSV rows + page-dump records written: each must be one record or quarantine row.
    items: int


@st.composite
def corpora(draw: st.DrawFn) -> Corpus:
    originals = draw(st.lists(word_texts, min_size=1, max_size=12))
    entries: list[tuple[str, str]] = []  # (title, text)
    for text in originals:
        entries.append((draw(word_texts), text))
        for how in draw(st.lists(variants, max_size=3)):
            entries.append((draw(word_texts), make_variant(text, how)))
    entries = draw(st.permutations(entries))
    n_files = draw(st.integers(1, 4))
    files: dict[str, bytes] = {}
    items = 0
    for number in range(n_files):
        part = entries[number::n_files]
        fmt = draw(st.sampled_from(["jsonl", "csv", "txt"]))
        name = f"f{number}.{fmt}"
        if fmt == "jsonl":
            lines = [
                json.dumps(
                    {"title": t, "text": x, "id": draw(st.sampled_from(["", "dup", f"i{i}"]))}
                ).encode()
                + b"\n"
                for i, (t, x) in enumerate(part)
            ]
            bad = draw(st.lists(damage, max_size=3))
            for line in bad:
                lines.insert(draw(st.integers(0, len(lines))), line)
            files[name] = b"".join(lines)
            items += len(lines)
        elif fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
            writer.writerow(["title", "text"])
            writer.writerows(part)
            files[name] = buffer.getvalue().encode()
            items += len(part)
        else:
            # Titles and abstracts that cannot be taken for furniture or for each other.
            blocks = [f"T {t}\n{x} end.\n" for t, x in part]
            files[name] = "\n".join(blocks).encode()
            items += len(part)
    return Corpus(files, items)


def write_corpus(corpus: Corpus, root: Path) -> list[Path]:
    root.mkdir(parents=True)
    paths = []
    for name, data in corpus.files.items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    return paths


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@given(corpora())
def test_every_input_item_ends_in_exactly_one_place(corpus: Corpus) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_corpus(corpus, Path(tmp) / "in")
        result = audit.run(paths, out=Path(tmp) / "out")
        out = Path(tmp) / "out"
        clean, removed = read_jsonl(out / "clean.jsonl"), read_jsonl(out / "removed.jsonl")
        quarantine = read_jsonl(out / "quarantine.jsonl")
        report = json.loads((out / "report.json").read_text())

    assert len(result.records) + len(quarantine) == corpus.items
    counts = report["counts"]
    assert counts["input"] == corpus.items
    assert counts["input"] == counts["kept"] + counts["removed"] + counts["quarantined"]
    assert (counts["kept"], counts["removed"], counts["quarantined"]) == (
        len(clean),
        len(removed),
        len(quarantine),
    )
    record_ids = result.records["id"].tolist()
    assert len(set(record_ids)) == len(record_ids)
    kept_ids = [r["id"] for r in clean]
    removed_ids = [r["id"] for r in removed]
    assert sorted(kept_ids + removed_ids) == sorted(record_ids)  # each exactly once
    assert all(r["duplicate_of"] in set(kept_ids) for r in removed)
    assert all(r["reason"] in ("exact_duplicate", "near_duplicate", "truncated_copy") for r in removed)
    # Every input copy a kept record stands for is named in its sources, once overall.
    represented = [s["id"] for r in clean for s in r["sources"]]
    assert sorted(represented) == sorted(record_ids)
    assert all(q["source"] and q["error"] for q in quarantine)


@given(corpora(), st.randoms(use_true_random=False))
def test_outputs_are_byte_identical_across_runs_and_file_order(corpus: Corpus, rng) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_corpus(corpus, Path(tmp) / "in")
        shuffled = list(paths)
        rng.shuffle(shuffled)
        audit.run(paths, out=Path(tmp) / "a")
        audit.run(list(reversed(paths)), out=Path(tmp) / "b")
        audit.run([*shuffled, Path(tmp) / "in"], out=Path(tmp) / "c")  # files and their directory
        for name in OUTPUTS:
            first = (Path(tmp) / "a" / name).read_bytes()
            assert (Path(tmp) / "b" / name).read_bytes() == first, name
            assert (Path(tmp) / "c" / name).read_bytes() == first, name


def test_outputs_are_byte_identical_across_processes_and_hash_seeds(tmp_path: Path, seeds_dir: Path) -> None:
    """Separate interpreters with different PYTHONHASHSEED: set and dict order cannot leak."""
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        "".join(
            json.dumps({"text": f"{w} shared words for a duplicate set {i % 3}"}) + "\n"
            for i, w in enumerate(WORDS)
        )
    )
    files = [*sorted(str(p) for p in seeds_dir.iterdir()), str(extra)]
    for run, (seed, order) in enumerate((("1", files), ("2", files[::-1]))):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        args = [sys.executable, "-m", "audit", "run", *order, "--out", str(tmp_path / f"out{run}"), "--quiet"]
        subprocess.run(args, check=True, env=env, capture_output=True)
    for name in OUTPUTS:
        assert (tmp_path / "out0" / name).read_bytes() == (tmp_path / "out1" / name).read_bytes(), name
    assert (tmp_path / "out0" / "clusters.jsonl").read_text().count("\n") >= 53


@given(corpora())
def test_runs_through_an_index_conserve_records_and_point_at_kept_ones(corpus: Corpus) -> None:
    """Each file a run of its own through one index: every record of a run is in its clean.jsonl
    or removed.jsonl once; ``duplicate_of`` names a record kept by this run or, with
    ``duplicate_of_run``, one kept by that earlier run; the index holds every kept record."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_corpus(corpus, Path(tmp) / "in")
        config = audit.AuditConfig(index=str(Path(tmp) / "idx.sqlite"), expectations=None)
        kept_by_run: dict[int, set[str]] = {}
        for number, path in enumerate(sorted(paths), start=1):
            out = Path(tmp) / f"out{number}"
            result = audit.run([path], out=out, config=config)
            clean, removed = read_jsonl(out / "clean.jsonl"), read_jsonl(out / "removed.jsonl")
            kept_ids, removed_ids = [r["id"] for r in clean], [r["id"] for r in removed]
            assert sorted(kept_ids + removed_ids) == sorted(result.records["id"])
            for row in removed:
                run = row["duplicate_of_run"]
                assert row["duplicate_of"] in (set(kept_ids) if run is None else kept_by_run[run])
            assert json.loads((out / "report.json").read_text())["index"]["run"] == number
            kept_by_run[number] = set(kept_ids)
        index = open_index(Path(tmp) / "idx.sqlite", create=False)
        stats = index.stats()
        index.close()
        assert stats["records"] == sum(len(k) for k in kept_by_run.values())
