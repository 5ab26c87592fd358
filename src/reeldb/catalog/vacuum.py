"""VACUUM: delete files that no branch or tag reaches, through any commit of its history.

Files younger than the grace period are kept even when unreachable: a concurrent writer
may have written them and not yet won its compare-and-swap.
"""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.parquet as pq

from ..format.blobs import pack_key
from ..format.fragment import scol
from ..format.manifest import matrix_key, parquet_key
from ..format.types import BLOB
from .catalog import Catalog
from .refs import COMMITS

DEFAULT_GRACE = dt.timedelta(hours=1)
SWEPT = ("data/", "blobs/", "deletes/", "_reeldb/manifests/", COMMITS)


def reachable(cat: Catalog) -> set[str]:
    """Every key reachable from a branch or tag."""
    keep: set[str] = set()
    heads = list(cat.refs.branches().values()) + list(cat.refs.tags().values())
    stack = list(heads)
    seen_tables: set[str] = set()
    while stack:
        cid = stack.pop()
        key = COMMITS + cid
        if key in keep:
            continue
        keep.add(key)
        c = cat.commit(cid)
        stack.extend(c.parents)
        for mkey in c.tables.values():
            if mkey in seen_tables:
                continue
            seen_tables.add(mkey)
            keep.add(mkey)
            tm = cat.manifest(mkey)
            blob_cols = [col.id for col in tm.schema.columns if col.type.storage == BLOB]
            for seg in tm.segments:
                if seg.key:
                    keep.add(seg.key)
            for f in tm.fragments:
                pk = parquet_key(tm.table_id, f.id)
                if pk in keep:
                    continue
                keep.add(pk)
                for cid_, _ in f.mats:
                    keep.add(matrix_key(tm.table_id, f.id, cid_))
                if f.deletes:
                    keep.add(f.deletes)
                keep.update(_packs(cat, pk, blob_cols))
    return keep


def _packs(cat: Catalog, key: str, blob_cols: list[int]) -> set[str]:
    if not blob_cols:
        return set()
    names = [scol(c) for c in blob_cols]
    path = cat.store.local_path(key)
    pf = pq.ParquetFile(path if path else cat.store.open_input(key))
    present = [n for n in names if n in pf.schema_arrow.names]
    out: set[str] = set()
    if not present:
        return out
    t = pf.read(columns=present)
    for n in present:
        for p in t.column(n).combine_chunks().field("pack").drop_null().unique().to_pylist():
            out.add(pack_key(p))
    return out


def vacuum(cat: Catalog, grace: dt.timedelta = DEFAULT_GRACE) -> dict[str, int]:
    keep = reachable(cat)
    cutoff = time.time() - grace.total_seconds()
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
    tmp_files, tmp_bytes = cat.store.sweep_temporary(cutoff)
    return {"files": files + tmp_files, "bytes": size + tmp_bytes}
