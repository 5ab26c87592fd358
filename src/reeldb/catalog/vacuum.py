"""Garbage collection: delete files that no branch or tag reaches, and drop old history
on request.

``vacuum`` keeps the files of every commit in the history of a branch or tag, or with
``retain`` only those of commits newer than that (and of every branch and tag head): time
travel further back then fails with a clear error. ``expire`` drops old commits from the
history itself. Unreachable files are kept when younger than the grace period, or written
since the oldest open transaction of any live writer (its lease, ``leases.py``): a
concurrent writer may have written them and not yet won its compare-and-swap.
"""

from __future__ import annotations

import datetime as dt
import io
import time

import pyarrow.parquet as pq

from ..format.fragment import open_verified, scol
from ..format.keys import (
    COMMITS,
    IMMUTABLE,
    INTENTS,
    commit_id,
    commit_key,
    index_fragments_key,
    matrix_key,
    pack_key,
    parquet_key,
)
from ..format.manifest import Fragment, Schema
from ..format.types import BLOB
from .catalog import Catalog
from .leases import drop_dead_leases, oldest_open

DEFAULT_GRACE = dt.timedelta(hours=1)
CLOCK_SLACK = 2.0  # seconds: file times and the writer's clock may disagree a little
SWEPT = IMMUTABLE  # what is written once is garbage once no ref reaches it; refs, counters, intents never are


def reachable(cat: Catalog, retain: dt.timedelta | None = None) -> set[str]:
    """Every key reachable from a branch or tag (data only of retained commits, of ref
    heads and of the merge bases of every two branches)."""
    keep: set[str] = set()
    branch_heads = sorted(set(cat.refs.branches().values()))
    heads = set(branch_heads) | set(cat.refs.tags().values())
    if retain is not None:  # merges of live branches need their merge bases' data
        from .merge import merge_bases

        for i, a in enumerate(branch_heads):
            for b in branch_heads[i + 1:]:
                heads.update(merge_bases(cat, a, b))
    since = None if retain is None else time.time() - retain.total_seconds()
    stack = list(heads)
    seen_tables: set[str] = set()
    while stack:
        cid = stack.pop()
        key = commit_key(cid)
        if key in keep:
            continue
        keep.add(key)
        c = cat.commit(cid)
        stack.extend(cat.parents(cid))
        if since is not None and c.time < since and cid not in heads:
            continue
        for mkey in c.tables.values():
            if mkey in seen_tables:
                continue
            seen_tables.add(mkey)
            keep.add(mkey)
            tm = cat.manifest(mkey)
            for ix in tm.indexes:
                if ix.key:  # "": an index recorded but not built (expression, untrained ivfflat)
                    keep.update((ix.key, index_fragments_key(ix.key)))
            blob_cols = [col.id for col in tm.schema.columns if col.type.storage == BLOB]
            for seg in tm.segments:
                if seg.key:
                    keep.add(seg.key)
            for f in tm.fragments:
                if f.deletes:  # one fragment has other deletion vectors in other commits
                    keep.add(f.deletes)
                if parquet_key(tm.table_id, f.id) not in keep:
                    keep |= _fragment_files(cat, tm.table_id, f, blob_cols)
    return keep


def _fragment_files(cat: Catalog, table_id: str, f: Fragment, blob_cols: list[int]) -> set[str]:
    """A fragment's Parquet file, its matrix files and the blob packs its cells point into."""
    pk = parquet_key(table_id, f.id)
    return {pk, *(matrix_key(table_id, f.id, cid_) for cid_, _ in f.mats), *_packs(cat, pk, f, blob_cols)}


def _pending_intents(cat: Catalog, cutoff: float) -> set[str]:
    """Group-commit intents (group.py) are roots until a commit includes them: the files
    of those younger than ``cutoff``; older ones were left by writers that died, and go."""
    from .group import Intent

    keep: set[str] = set()
    for key in cat.store.list(INTENTS):
        try:
            if cat.store.mtime(key) < cutoff:
                cat.store.delete(key)
                continue
            intent = Intent.from_bytes(cat.store.get(key), key)
        except KeyError:
            continue  # included (and deleted) meanwhile
        for tid, frags in intent.fragments().items():
            schema = Schema.from_json(intent.tables[tid]["schema"])
            blob_cols = [col.id for col in schema.columns if col.type.storage == BLOB]
            for f in frags:
                keep |= _fragment_files(cat, tid, f, blob_cols)
    return keep


def _packs(cat: Catalog, key: str, f: Fragment, blob_cols: list[int]) -> set[str]:
    """The packs a fragment's cells point into, read from its verified Parquet file: a
    damaged one is XX001, never a wrong list of what to keep."""
    if not blob_cols:
        return set()
    names = [scol(c) for c in blob_cols]
    path, data = open_verified(cat.store, key, f.checksum("parquet"))
    pf = pq.ParquetFile(path if path else io.BytesIO(data))
    present = [n for n in names if n in pf.schema_arrow.names]
    out: set[str] = set()
    if not present:
        return out
    t = pf.read(columns=present)
    for n in present:
        for p in t.column(n).combine_chunks().field("pack").drop_null().unique().to_pylist():
            out.add(pack_key(p))
    return out


def expire(cat: Catalog, older_than: dt.timedelta | dt.datetime) -> int:
    """Drop commits older than ``older_than`` from history (branch and tag heads stay);
    their files go at the next ``vacuum``. Returns how many commits were dropped."""
    if isinstance(older_than, dt.timedelta):
        cutoff = time.time() - older_than.total_seconds()
    else:
        cutoff = older_than.timestamp()
    heads = set(cat.refs.branches().values()) | set(cat.refs.tags().values())
    dropped = 0
    for key in cat.store.list(COMMITS):
        cid = commit_id(key)
        if cid in heads:
            continue
        try:
            if cat.commit(cid).time >= cutoff:
                continue
        except Exception:  # noqa: BLE001 - a commit deleted meanwhile is already gone
            continue
        cat.store.delete(key)
        cat.forget_commit(cid)
        dropped += 1
    return dropped


def vacuum(cat: Catalog, grace: dt.timedelta = DEFAULT_GRACE, retain: dt.timedelta | None = None) -> dict[str, int]:
    keep = reachable(cat, retain)
    cutoff = time.time() - grace.total_seconds()
    oldest = oldest_open(cat.store, cat.lease)
    if oldest is not None:  # a live writer may still commit what it wrote since then
        cutoff = min(cutoff, oldest - CLOCK_SLACK)
    keep |= _pending_intents(cat, cutoff)
    files = size = 0
    for prefix in SWEPT:
        for key in cat.store.list(prefix):
            if key in keep:
                continue
            try:
                if cat.store.mtime(key) > cutoff:
                    continue
                n = cat.store.size(key)
            except (KeyError, FileNotFoundError):
                continue
            cat.store.delete(key)
            files += 1
            size += n
    tmp_files, tmp_bytes = cat.store.sweep_temporary(cutoff)  # the store skips live writers' files
    drop_dead_leases(cat.store)
    return {"files": files + tmp_files, "bytes": size + tmp_bytes}
