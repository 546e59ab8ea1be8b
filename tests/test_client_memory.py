"""What the client of a run over partitions holds per record stays compact (audit/engines/sharded.py):
the forms it holds give what the local forms give, and hold no Python value per record.

- ``duplicate_of``/``relation_of`` as :class:`audit.dedup.idmap.IdMap` (Arrow arrays): a
  mapping equal to the dicts, and the clean plan made of it equals the plan made of the dicts;
- the compact columns' categoricals (``source``, ``scraped_date``): the report's source lookup
  and the ranking's date presence read them as they read the strings;
- the lean findings' dictionary columns: the length chart's search finds what it finds in strings.

The Dask runs themselves (byte-identical outputs, the held forms' types) are in
tests/test_engine_dask_shards.py (``test_the_client_holds_compact_forms``)."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import audit
from audit.checks.table import FindingTable
from audit.clean import plan_fates
from audit.dedup import DedupResult
from audit.dedup.idmap import IdMap
from audit.engines.held_findings import LEAN_TEXT
from audit.engines.shards import _filled
from audit.report import views

HOSTILE = ["", "a", "é", "x\x00y", "id with spaces", "😀", "a", "null", "None", "0"]


def test_idmap_is_the_dict() -> None:
    rng = random.Random(3)
    keys = list(dict.fromkeys(f"{rng.choice(HOSTILE)}-{n}" for n in range(3000)))
    mapping = {key: rng.choice(["near_duplicate", "exact_duplicate", "truncated_copy"]) for key in keys}
    held = IdMap.of(mapping)
    assert held == mapping and mapping == held and len(held) == len(mapping)
    assert list(held) == list(mapping) and held.items() == list(mapping.items())
    assert held.values() == list(mapping.values())
    assert all(held[key] == value for key, value in list(mapping.items())[:50])
    assert keys[7] in held and "no such id" not in held and 3 not in held
    with pytest.raises(KeyError):
        held["no such id"]
    asked = pa.array([keys[5], "no such id", keys[0]], pa.large_string())
    assert held.lookup(asked).to_pylist() == [mapping[keys[5]], None, mapping[keys[0]]]
    assert held.positions(asked).tolist() == [5, -1, 0]
    assert IdMap.of(held) is held
    empty = IdMap.of({})
    assert empty == {} and list(empty) == [] and empty.lookup(asked).to_pylist() == [None] * 3
    # The values are held once each (dictionary-encoded), the keys as one Arrow array.
    assert pa.types.is_dictionary(held.values_array.type) and len(held.values_array.dictionary) == 3


def test_the_clean_plan_of_idmaps_is_the_plan_of_dicts(corpus_dir_small: audit.AuditResult) -> None:
    result = corpus_dir_small
    assert result.dedup is not None and len(result.dedup.duplicate_of) > 20
    compact = result.records.drop(columns=["text", "urls"])
    held = DedupResult(
        result.dedup.clusters,
        result.dedup.edges,
        IdMap.of(result.dedup.duplicate_of),
        IdMap.of(result.dedup.relation_of),
        result.dedup.stats,
    )
    found = FindingTable.from_frame(result.findings.drop(columns=["applied"]))
    ours, theirs = plan_fates(compact, held, found), plan_fates(compact, result.dedup, found)
    pd.testing.assert_frame_equal(ours.corpus.removed_info, theirs.corpus.removed_info)
    assert ours.corpus.kept.tolist() == theirs.corpus.kept.tolist()
    assert ours.corpus.removed_at.tolist() == theirs.corpus.removed_at.tolist()
    assert ours.todo.tolist() == theirs.todo.tolist() and ours.lent == theirs.lent
    # No Python string per removed record: the info's id and reason columns are Arrow-backed.
    assert all(
        str(ours.corpus.removed_info[name].dtype) == "str" for name in ("id", "reason", "duplicate_of")
    )


@pytest.fixture(scope="module")
def corpus_dir_small(tmp_path_factory: pytest.TempPathFactory) -> audit.AuditResult:
    """A local run of a generated corpus with copies (its dedup's dicts and its findings)."""
    from bench.corpus import generate

    path = tmp_path_factory.mktemp("small") / "corpus.jsonl"
    generate(600, 5)[["id", "title", "text", "url"]].to_json(path, orient="records", lines=True)
    return audit.run([path], out=None, config=audit.AuditConfig())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_source_lookup_reads_a_categorical_as_strings(seed: int) -> None:
    rng = random.Random(seed)
    names = ["b.jsonl", "a.jsonl", "c.csv", "é.parquet"]
    sources = [rng.choice(names[: rng.randint(1, 4)]) for _ in range(500)]
    ids = [f"r{n}" for n in range(500)]
    strings = pd.DataFrame({"id": pd.array(ids, dtype="str"), "source": pd.array(sources, dtype="str")})
    coded = strings.astype({"source": "category"})
    # Categories unused, and in another order than first seen: the numbering is still the strings'.
    coded["source"] = coded["source"].cat.set_categories(["zz.jsonl", *sorted(names, reverse=True)])
    theirs, ours = views.SourceLookup(strings), views.SourceLookup(coded)
    assert ours.names == theirs.names and ours.codes.tolist() == theirs.codes.tolist()
    asked = [*rng.sample(ids, 50), "missing"]
    assert ours.of(asked) == theirs.of(asked)


def test_filled_is_bool_of_each_cell() -> None:
    values = [None, "Mar 13", "", None, "Mar 14", "Mar 13", ""]
    column = pd.Series(values, dtype=object).astype("category")
    assert _filled(column).tolist() == [bool(v) for v in values]
    assert _filled(pd.Series([], dtype=object).astype("category")).tolist() == []


def test_the_length_limit_is_found_in_dictionary_evidence() -> None:
    rng = random.Random(9)
    evidence = [
        rng.choice(['{"limit": 280}', '{"limit": 500}', '{"offset": 3}', "{}", '{"limit": "x"}'])
        for _ in range(400)
    ]
    rows = [(f"r{n}", "truncation", "warning", "text", "m", e, None) for n, e in enumerate(evidence)]
    plain = FindingTable.of([(*row[:5], json.loads(row[5]), None) for row in rows])
    table = plain.table
    coded = FindingTable(table.set_column(5, "evidence", table["evidence"].cast(LEAN_TEXT)))
    assert pa.types.is_dictionary(coded.table["evidence"].type)
    assert views.length_limit(coded) == views.length_limit(plain) is not None
    assert views._matching(coded.table["evidence"], '"limit": ').tolist() == [
        '"limit": ' in e for e in evidence
    ]
    with_nulls = pa.chunked_array(
        [pa.DictionaryArray.from_arrays(pa.array([0, None, 1]), pa.array(["a", "b"]))]
    )
    assert views._matching(with_nulls, "b").tolist() == [False, False, True]
    assert np.array_equal(views._matching(pa.chunked_array([], LEAN_TEXT), "b"), np.zeros(0, bool))
