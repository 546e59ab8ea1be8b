"""The memory-lean paths against their references: candidates shingled again after signing,
clusters as Arrow columns read back as before, and the cleaned corpus's sources made a block at
a time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks.table import FindingTable
from audit.clean import _Sources, plan_clean
from audit.dedup import DedupConfig, find_duplicates
from audit.dedup.engine import LocalEngine
from audit.dedup.kernel import prepare_batch, sign_prepared
from audit.dedup.signer import shingle_rows, sign_texts
from audit.dedup.verify import verify_sequences
from audit.schema import records_from_tables, rows_table
from audit.urls import find_urls
from bench.corpus import generate

HOSTILE = st.sampled_from(
    ["", " ", "a", "tiny text", "Ｆｕｌｌ width ｔｅｘｔ here and more words", "日本語のテキスト です 本当に",
     "one two three four five six seven", "Cookie policy. Accept all cookies. one two three four five",
     "A study of deep nets for vision tasks in the wild. " * 4, "emoji 🎉 party " * 6]
)  # fmt: skip


def _settings(normalise: bool = True):
    config = DedupConfig()
    return replace(config.signer(), normalise=normalise, banding=config.banding(), keep_signatures=False)


@given(st.lists(HOSTILE, min_size=1, max_size=25), st.data())
@settings(max_examples=40, deadline=None)
def test_shingling_rows_again_gives_the_signing_hashes(texts: list[str], data: st.DataObject) -> None:
    full = sign_texts(texts, replace(_settings(), batch_docs=4))
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, len(texts) - 1)))), np.int64)
    column = pd.Series(texts, dtype="str")
    again = shingle_rows(column, rows, replace(_settings(), batch_docs=3), full.sequences.counts)
    expected = full.sequences.take(rows)
    assert np.array_equal(again.offsets, expected.offsets) and np.array_equal(again.hashes, expected.hashes)


def test_signing_keeps_no_hashes_when_told() -> None:
    texts = generate(300, seed=2)["text"]
    kept, lean = sign_texts(texts, _settings()), sign_texts(texts, replace(_settings(), keep_sequences=False))
    assert len(lean.sequences.hashes) == 0 and np.array_equal(lean.sequences.offsets, kept.sequences.offsets)
    assert np.array_equal(lean.band_keys, kept.band_keys) and np.array_equal(
        lean.text_hashes, kept.text_hashes
    )


def test_the_kernel_without_permutations_makes_the_same_shingle_and_text_hashes() -> None:
    data, offsets = prepare_batch([*generate(50, seed=4)["text"], "", "x"], True)
    common = {"seed": 1, "word_n": 5, "char_n": 5, "prefix_shingles": 24}
    full, bare = (
        sign_prepared(data, offsets, num_perm=128, **common),
        sign_prepared(data, offsets, num_perm=0, **common),
    )
    assert np.array_equal(full.hashes, bare.hashes) and np.array_equal(full.offsets, bare.offsets)
    assert np.array_equal(full.text_hashes, bare.text_hashes) and bare.signatures.shape == (52, 0)


def test_local_verifier_on_shingles_made_again_equals_verification_on_every_shingle() -> None:
    texts = generate(1200, seed=3)["text"]
    engine = LocalEngine()
    signed = engine.sign_held(texts, _settings())
    pairs = engine.candidates(signed, np.arange(len(texts)))
    rows = np.unique(pairs)
    assert len(rows) < len(texts)  # only the candidates are shingled again
    verify = engine.verifier(signed, rows)
    assert signed.held.band_keys is None  # freed before the shingles were made
    every = sign_texts(texts, _settings()).sequences
    for near in (None, 0.65):
        got = verify(pairs[:, 0], pairs[:, 1], 0.8, near)
        want = verify_sequences(every, pairs[:, 0], pairs[:, 1], 0.8, near)
        assert np.array_equal(got.jaccard, want.jaccard) and np.array_equal(got.relation, want.relation)
        assert np.array_equal(got.containment, want.containment)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, object]:
    frame = generate(2000, seed=7)[["id", "title", "text", "url"]]
    frame.loc[frame.index[::7], "url"] = ""  # representatives lacking a field borrow it
    frame.loc[frame.index[::11], "title"] = ""
    frame["source"], frame["line"] = "corpus.jsonl", np.arange(1, len(frame) + 1)
    rows = [
        {**row, "urls": find_urls(row["text"]), "scraped_date": None, "format": "jsonl"}
        for row in frame.to_dict("records")
    ]
    records = records_from_tables([rows_table(rows)])
    return records, find_duplicates(records)


def test_arrow_cluster_columns_read_back_as_lists_of_dicts(planted) -> None:
    result = planted[1]
    clusters = result.clusters
    assert len(clusters) > 50
    for row in clusters.itertuples():
        members = row.members
        assert isinstance(members, list) and len(members) == row.size and row.representative in members
        entries = row.to_representative
        assert [e["id"] for e in entries] == [m for m in members if m != row.representative]
        assert all(list(e) == ["id", "jaccard", "containment", "relation"] for e in entries)
        assert all(list(e) == list(result.edges.columns) for e in row.similarities)
    edges = result.edges
    assert len(edges) == sum(len(s) for s in clusters["similarities"])
    assert edges["jaccard"].dtype == np.float64 and set(edges["relation"]) <= {
        "exact_duplicate", "near_duplicate", "truncated_copy"
    }  # fmt: skip
    for copy_id, rep_id in result.duplicate_of.items():
        (row,) = clusters.index[clusters["representative"] == rep_id]
        assert copy_id in clusters.at[row, "members"]


def test_clean_plan_is_the_same_from_arrow_or_python_cluster_columns(planted) -> None:
    frame, result = planted
    as_python = result.clusters.copy()
    for name in ("members", "to_representative", "similarities"):
        as_python[name] = pd.Series(result.clusters[name].tolist(), dtype=object)
    findings = FindingTable.empty()
    arrow_plan, _ = plan_clean(frame, result, findings)
    python_plan, _ = plan_clean(frame, replace(result, clusters=as_python), findings)
    assert list(arrow_plan.clean_rows()) == list(python_plan.clean_rows())
    assert list(arrow_plan.removed_rows()) == list(python_plan.removed_rows())
    assert any("filled from duplicate" in note for notes in arrow_plan.notes.values() for note in notes)


@pytest.mark.parametrize("block", [1, 3, 2000])
def test_sources_made_a_block_at_a_time_equal_every_members_dicts(block: int, monkeypatch) -> None:
    rows = [
        {"id": f"r{n}", "source": f"f{n % 3}.jsonl", "line": n + 1, "title": "", "text": "", "url": "",
         "urls": [], "scraped_date": None, "format": "jsonl"}
        for n in range(40)
    ]  # fmt: skip
    records = records_from_tables([rows_table(rows)])
    rng = np.random.default_rng(block)
    reps = np.sort(rng.choice(40, 9, replace=False))
    sizes = rng.integers(1, 5, len(reps))
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    members = rng.integers(0, 40, int(bounds[-1]))
    monkeypatch.setattr(_Sources, "block", block)
    sources = _Sources(records, reps, bounds, members)
    expected = {
        int(rep): [{"id": f"r{m}", "source": f"f{m % 3}.jsonl", "line": int(m) + 1} for m in members[lo:hi]]
        for rep, lo, hi in zip(reps, bounds[:-1], bounds[1:], strict=True)
    }
    for rep in rng.permutation(reps).tolist() + reps.tolist():  # out of order, then in order
        assert sources[rep] == expected[rep]
    assert dict(sources.items()) == expected and len(sources) == len(reps)
    outside = int(np.setdiff1d(np.arange(40), reps)[0])
    assert sources.get(outside) is None
    # Set and deleted like a dict's entries (a caller may patch what is written).
    sources[outside], sources[int(reps[0])] = [{"id": "x"}], [{"id": "y"}]
    del sources[int(reps[1])]
    expected |= {outside: [{"id": "x"}], int(reps[0]): [{"id": "y"}]}
    del expected[int(reps[1])]
    assert dict(sources.items()) == expected and len(sources) == len(expected)
    with pytest.raises(KeyError):
        sources[int(reps[1])]
