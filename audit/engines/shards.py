"""A corpus read into partitions on a Dask cluster: the texts stay on the workers.

- **ingest** (:func:`ingest_shards`): the input files are cut into partitions
  (:mod:`audit.engines.partitions`); each is read on a worker by the readers of
  :mod:`audit.ingest` into a record DataFrame that stays there (a future per partition; Dask
  spills it to disk past the worker's memory limit). The caller gets the quarantine rows, the
  report's line per file, and the **compact columns** of every record (:data:`COMPACT_COLUMNS`:
  no text, and no urls found in it). Ids repeated across partitions are made unique by
  :func:`audit.ingest._unique_ids` on the compact columns, and the fixed ids sent back.
- **signing** (:class:`ShardEngine`): a :class:`audit.engines.dask.DaskEngine` whose
  ``sign_held`` signs the held partitions where they are (their comparable texts, in the
  signer's batches), so :func:`audit.dedup.find_duplicates` runs on the compact columns.
- **checks** (:meth:`Shards.record_checks`): the checks that look at one record at a time run
  on each partition; ``empty_or_short`` is told which sources have titles in the whole corpus.
  Each partition's findings stay there (:mod:`audit.engines.held_findings`), in partition order:
  the findings of one whole run.

Example::

    >>> with dask_engine(None, workers=2) as engine:                     # doctest: +SKIP
    ...     shards = ingest_shards(engine.client, ["corpus.jsonl"], FieldMap())
    ...     dedup = find_duplicates(shards.dedup_frame(), config, shards.completeness(),
    ...                             engine=ShardEngine(engine.client, shards))
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from audit.checks import CheckContext, make_check
from audit.checks.base import finding_rows
from audit.checks.empty_or_short import NAME as EMPTY_OR_SHORT
from audit.checks.malformed_url import url_field_findings
from audit.checks.truncation import ends_cut_off
from audit.dedup.engine import Signed
from audit.dedup.signer import SignerSettings, Texts, sign_batch
from audit.engines import partitions
from audit.engines.dask import DaskEngine, _Held, _summary
from audit.engines.held_findings import pack
from audit.engines.partitions import Part, read_part
from audit.engines.worker_memory import releasing
from audit.frames import cell_reader
from audit.ingest import _empty_note, _expand, _file_digest, _unique_ids, reader_for
from audit.ingest.base import FieldMap
from audit.ingest.pagedump import PageDumpReader
from audit.normalise import comparable_texts
from audit.schema import quarantine_frame, records_from_tables

try:
    from distributed import Client, Future
except ImportError as missing:  # pragma: no cover - the test extra installs it
    raise ImportError("--engine dask needs Dask: pip install 'scrape-audit[dask]'") from missing

#: What the caller holds per record: the fields it reads (not the text, its urls nor the
#: format), plus the text's length and whether it ends cut off (what dedup's choice of
#: representative reads of it). ``source`` and ``scraped_date`` repeat: they are held as
#: categoricals (a code a record), see :func:`_coded`.
COMPACT_COLUMNS = (
    *("id", "source", "line", "title", "url", "scraped_date"),
    *("text_length", "text_cut"),
)
#: The compact columns held as categoricals (a few distinct values: a file name, a date header).
CODED_COLUMNS = ("source", "scraped_date")
_KEY_TYPES = pa.schema([("id", pa.large_string()), ("source", pa.large_string()), ("line", pa.int64())])
#: Checks that look at one record at a time (no corpus-wide value, no clusters).
RECORD_CHECKS = ("malformed_url", "boilerplate", "markup_residue", "encoding", EMPTY_OR_SHORT)
#: Bytes per partition of a JSON Lines file: a worker holds a few partitions' records at once,
#: and signs one a batch at a time.
PART_BYTES = 16 << 20
#: An id no record has (ingest quarantines NUL): rows that tell a partition about the others.
_CONTEXT_ID = "\x00context"


@releasing
def _ingest(part: Part, fields: FieldMap) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One partition read on a worker: its record DataFrame, and what the caller gets of it."""
    result = read_part(part, fields)
    frame = records_from_tables(result.record_tables())
    info = {"quarantine": result.quarantine, "furniture_lines": result.furniture_lines}
    return frame, info | {"file_error": result.file_error}


@releasing
def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """:data:`COMPACT_COLUMNS` of a partition."""
    texts = frame["text"]
    cut = np.fromiter((ends_cut_off(t) is not None for t in texts.tolist()), bool, len(frame))
    lengths = texts.str.len().to_numpy(np.int64) if len(frame) else np.zeros(0, np.int64)
    return frame[list(COMPACT_COLUMNS[:6])].assign(text_length=lengths, text_cut=cut)


def _coded(compact: pd.DataFrame) -> pd.DataFrame:
    """The compact columns with :data:`CODED_COLUMNS` as categoricals: as Python objects or Arrow
    strings they took ~55 B a record (the same file name and ``None`` a million times)."""
    return compact.astype(dict.fromkeys(CODED_COLUMNS, "category"))


def _filled(column: pd.Series) -> np.ndarray:
    """``bool(cell)`` of each cell of a categorical column (a missing cell: False), from its
    categories: no Python value per row."""
    truth = np.array([bool(value) for value in column.cat.categories.tolist()] + [False], bool)
    return truth[column.cat.codes.to_numpy()]  # code -1 (missing) reads the last: False


def _no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def _with_ids(frame: pd.DataFrame, ids: pa.Array) -> pd.DataFrame:
    return frame.assign(id=pd.array(pa.chunked_array([ids]), dtype=frame["id"].dtype))


@releasing
def _sign_frame(frame: pd.DataFrame, settings: SignerSettings) -> tuple[np.ndarray, ...]:
    """A held partition signed on its worker, a signer's batch at a time (bounded working memory):
    (shingle hashes, offsets, text hashes, band keys), as :func:`audit.engines.dask._sign_held`,
    then the signatures and prefix signatures (no columns unless ``settings.keep_signatures``:
    an indexed run keeps them for the index)."""
    texts = comparable_texts(frame)
    per = max(1, settings.batch_docs)
    hashes, offsets, text_hashes, band_keys = [], [np.zeros(1, np.int64)], [], []
    signatures, prefixes = [], []
    for start in range(0, len(texts), per):
        batch_hashes, batch_offsets, batch_sigs, batch_prefix, batch_text_hashes, batch_keys = sign_batch(
            texts.iloc[start : start + per].tolist(), settings
        )
        offsets.append(batch_offsets[1:].astype(np.int64) + offsets[-1][-1])
        hashes.append(batch_hashes)
        text_hashes.append(batch_text_hashes)
        band_keys.append(batch_keys)
        signatures.append(batch_sigs)
        prefixes.append(batch_prefix)
    bands = settings.key_bands()
    width = settings.num_perm if settings.keep_signatures else 0
    return (
        np.concatenate(hashes) if hashes else np.zeros(0, np.uint32),
        np.concatenate(offsets),
        np.concatenate(text_hashes) if text_hashes else np.zeros(0, np.uint64),
        np.concatenate(band_keys, axis=1) if band_keys else np.zeros((bands, 0), np.uint64),
        np.concatenate(signatures) if signatures else np.zeros((0, width), np.uint32),
        np.concatenate(prefixes) if prefixes else np.zeros((0, width), np.uint32),
    )


@releasing
def _record_checks(
    frame: pd.DataFrame,
    names: Sequence[str],
    options: Mapping[str, Mapping[str, Any]],
    titled: list[str],
    also: Callable[[pd.DataFrame], Any] | None = None,
) -> tuple[dict[str, bytes], Any]:
    """The record checks ``names`` on one partition, each one's rows :func:`pack`'d.
    ``empty_or_short`` runs with a context row per source titled in the whole corpus (its
    findings dropped): the check sees them titled."""
    found: dict[str, bytes] = {}
    for name in names:
        records = frame
        if name == EMPTY_OR_SHORT and titled:
            context = pd.DataFrame({"id": _CONTEXT_ID, "source": titled, "title": "titled", "text": ""})
            records = pd.concat([frame[["id", "source", "title", "text"]], context], ignore_index=True)
        rows = finding_rows(make_check(name, options.get(name, {})).run(records, CheckContext()))
        found[name] = pack([row for row in rows if row[0] != _CONTEXT_ID])
    return found, also(frame) if also is not None else None


def _found(result: tuple[dict[str, bytes], Any], name: str) -> bytes:
    return result[0][name]


def _valid_url(url: str) -> bool:
    return bool(url) and not any(f.severity == "error" for f in url_field_findings("", url))


@dataclass
class Shards:
    """A corpus held on the workers a partition at a time, and its compact columns here."""

    client: Client
    parts: list[Part]
    #: One record DataFrame per partition, on the workers.
    frames: list[Future]
    #: The first row of each partition, then the row count.
    starts: np.ndarray
    #: :data:`COMPACT_COLUMNS` of every record, in record order.
    compact: pd.DataFrame
    quarantine: pd.DataFrame
    files: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    #: The partitions' scratch copies (:class:`audit.engines.partitions.Plan`), removed with this.
    scratch: Any = None

    def __len__(self) -> int:
        return len(self.compact)

    def records(self) -> pd.DataFrame:
        """Every record gathered here (the whole corpus: for tests and small runs)."""
        frames = [future.result() for future in self.frames]
        return pd.concat(frames, ignore_index=True) if frames else records_from_tables([])

    def dedup_frame(self) -> pd.DataFrame:
        """What :func:`audit.dedup.find_duplicates` reads here: ids, titles, and an empty text
        column (the engine signs the held texts)."""
        return pd.DataFrame({"id": self.compact["id"], "title": self.compact["title"], "text": ""})

    def completeness(self) -> Callable[[int], tuple]:
        """:func:`audit.pipeline.completeness` of the compact columns (the text's part precomputed)."""
        titles, urls = cell_reader(self.compact["title"]), cell_reader(self.compact["url"])
        dated = _filled(self.compact["scraped_date"])
        cut, lengths = self.compact["text_cut"].to_numpy(), self.compact["text_length"].to_numpy()
        return lambda row: (
            not cut[row],
            ends_cut_off(titles(row)) is None,
            int(lengths[row]),
            _valid_url(urls(row)),
            bool(titles(row)) + bool(urls(row)) + bool(dated[row]),
        )

    def record_checks(
        self,
        names: Sequence[str],
        options: Mapping[str, Mapping[str, Any]] | None = None,
        also: Callable[[pd.DataFrame], Any] | None = None,
    ) -> tuple[dict[str, list[Future]], list[Future]]:
        """The findings of each of the record checks ``names`` (:data:`RECORD_CHECKS`), run per
        partition and held there: per check, one future per partition (its finding rows,
        :func:`pack`'d), in partition order (the order of one run over every record). ``also``: a
        function of a partition run in the same task; its result per partition is the second list."""
        options = options or {}
        unknown = [name for name in names if name not in RECORD_CHECKS]
        assert not unknown, f"not record checks: {unknown}"
        for name in names:
            make_check(name, options.get(name, {}))  # a bad option fails here, not on a worker
        compact = self.compact
        # The distinct sources only become Python strings (not one per record).
        titled = sorted(set(compact.loc[compact["title"].str.strip() != "", "source"].unique().tolist()))
        futures = [
            self.client.submit(_record_checks, frame, list(names), dict(options), titled, also, pure=False)
            for frame in self.frames
        ]
        found = {
            name: [self.client.submit(_found, future, name, pure=False) for future in futures]
            for name in names
        }
        return found, [self.client.submit(operator.getitem, future, 1, pure=False) for future in futures]


def _files_entries(
    client: Client, sources: list, parts: list[Part], infos: list[dict[str, Any]], counts: list[int]
) -> list[dict[str, Any]]:
    """The report's line per input file, as :func:`audit.ingest.read_inputs` makes it."""
    digests = client.map(_file_digest, [s.path for s in sources], pure=False)
    entries = []
    for n, source in enumerate(sources):
        mine = [k for k, part in enumerate(parts) if part.source == source]
        count = sum(counts[k] for k in mine)
        quarantined = sum(len(infos[k]["quarantine"]) for k in mine)
        try:
            size = source.path.stat().st_size
        except OSError:
            size = None
        note = _empty_note(source) if not count and not quarantined else None
        entries.append(
            {
                "source": source.name,
                "path": source.path.as_posix().encode("utf-8", "backslashreplace").decode("utf-8"),
                "format": (reader_for(source) or PageDumpReader()).name,
                "bytes": size,
                "sha256": digests[n].result(),
                "records": count,
                "quarantined": quarantined,
                "furniture_lines": sum(infos[k]["furniture_lines"] for k in mine),
                **({"note": note} if note else {}),
            }
        )
    return entries


def ingest_shards(
    client: Client, paths: Sequence[str], fields: FieldMap | None = None, part_bytes: int | None = None
) -> Shards:
    """Read ``paths`` into partitions on the workers behind ``client`` (see the module's doc);
    ``part_bytes``: the size of a partition (default :data:`PART_BYTES`)."""
    fields = fields or FieldMap()
    part_bytes = part_bytes or PART_BYTES
    sources, skipped = _expand(list(paths))
    plan = partitions.plan(client, sources, fields, part_bytes)
    parts = plan.parts
    read = [client.submit(_ingest, part, fields, pure=False) for part in parts]
    frames = [client.submit(operator.getitem, future, 0, pure=False) for future in read]
    infos_at = [client.submit(operator.getitem, future, 1, pure=False) for future in read]
    compacts_at = [client.submit(_compact, frame, pure=False) for frame in frames]
    del read  # each partition's reading result is released once split
    infos = [future.result() for future in infos_at]
    # A file a partition of which reads as quarantine rows alone is read whole again, as the local
    # engine reads it; its other partitions give nothing.
    for k, whole in partitions.whole_again(parts, infos).items():
        again = client.submit(_ingest, whole, fields, pure=False)
        for j, part in enumerate(parts):
            if part.source == whole.source:
                if j == k:
                    frames[j] = client.submit(operator.getitem, again, 0, pure=False)
                else:
                    frames[j] = client.submit(_no_rows, frames[j], pure=False)
                compacts_at[j] = client.submit(_compact, frames[j], pure=False)
                infos[j] = {"quarantine": [], "furniture_lines": 0}
        infos[k] = client.submit(operator.getitem, again, 1, pure=False).result()
    compacts = [future.result() for future in compacts_at]
    counts = [len(compact) for compact in compacts]
    # Ids made unique over every partition, as over every file; only changed partitions are sent.
    keys = [pa.Table.from_pandas(c[list(_KEY_TYPES.names)], preserve_index=False) for c in compacts]
    keys = [table.cast(_KEY_TYPES) for table in keys]
    for k, (before, after) in enumerate(zip(keys, _unique_ids(keys), strict=True)):
        if after is not before and not after.column("id").equals(before.column("id")):
            ids = after.column("id").combine_chunks()
            frames[k] = client.submit(_with_ids, frames[k], ids, pure=False)
            compacts[k] = _with_ids(compacts[k], ids)
    compact = _coded(
        pd.concat(compacts, ignore_index=True) if compacts else _compact(records_from_tables([]))
    )
    del compacts
    quarantine = quarantine_frame([row for info in infos for row in info["quarantine"]])
    files = _files_entries(client, sources, parts, infos, counts)
    starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    return Shards(client, parts, frames, starts, compact, quarantine, files, skipped, plan.scratch)


class ShardEngine(DaskEngine):
    """The Dask engine over a corpus already held on the workers: it signs the held partitions
    (the texts given to :meth:`sign_held` are the placeholder column of ``Shards.dedup_frame``)."""

    def __init__(self, client: Client, shards: Shards, **options: Any) -> None:
        super().__init__(client, **options)
        self.shards = shards

    def sign_held(self, texts: Texts, settings: SignerSettings) -> Signed:
        shards = self.shards
        assert len(texts) == len(shards), "sign the records of these shards"
        held = [self.client.submit(_sign_frame, frame, settings, pure=False) for frame in shards.frames]
        summaries = [self.client.submit(_summary, future, pure=False) for future in held]
        text_hashes = np.empty(len(shards), np.uint64)
        counts = np.empty(len(shards), np.int64)
        for n, future in enumerate(summaries):
            start, stop = int(shards.starts[n]), int(shards.starts[n + 1])
            text_hashes[start:stop], counts[start:stop] = future.result()
            future.release()
        return Signed(text_hashes, counts, _Held(held, shards.starts, settings.key_bands()))
