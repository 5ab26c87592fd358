"""``reeldb.ray.update_column``: compute one column over a table on a cluster, in one commit.

The rows are read as of the driver's transaction base (with ``_rowid``), ``fn`` maps
batches to new values, and write tasks turn each block of results into an UPDATE of those
rows: the rows' other values are carried over (blob cells by reference: no blob byte is
read or copied), the new values are checked as an UPDATE checks them (type, NOT NULL,
CHECK, generated columns recomputed), and a new fragment is written with the same
``_rowid``s. The driver deletes the old row versions and adds the new fragments in one
commit, so a merge of the branch into another sees a change of that column only.

What it rewrites: for every updated row, its Parquet cells (scalar columns and blob
references) and its rows of the table's other vector / tensor matrix files, into the new
fragment; blob packs are never rewritten. reeldb's fragments keep a row's columns together
(one Parquet file and matrix files named by the fragment), so a column cannot be swapped
alone without a change of the format.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from ..catalog.delta import locate_all
from ..format.fragment import ROWID, FragmentReader, write_fragment
from ..format.manifest import Fragment, TableManifest
from ..format.types import MATRIX
from ..sql.dml import build_batch
from .sink import columns_of, worker_connection
from .source import dataset, plan_read
from .stores import open_database, store_of


@dataclass(frozen=True)
class UpdateSpec:
    url: str
    options: dict | None
    branch: str
    table: TableManifest  # as the transaction's base has it: where the rows are
    column: str


def update_column(uri: str, table: str, column: str, fn: Callable[..., Any], *, branch: str | None = None,
                  batch_size: int | None = 1024, columns: Sequence[str] | None = None, filter: str | None = None,
                  batch_format: str = "numpy", message: str | None = None,
                  storage_options: dict[str, Any] | None = None, **map_batches_args: Any) -> str:
    """Set ``column`` of ``table`` on ``branch`` (default ``main``) to what ``fn`` computes,
    in one commit; returns its id.

    ``fn`` gets batches (``batch_format``, Ray's ``map_batches``) of the rows' ``columns``
    (default: all of them) plus ``_rowid``, and returns a batch with ``_rowid`` and
    ``column``: the rows it returns are updated, the others are left as they were.
    ``filter`` (a Postgres expression) limits the rows read. Other keywords go to
    ``map_batches`` (``concurrency=`` for a class ``fn`` holding a model, ``num_gpus=``,
    ``max_retries=`` ...)."""
    db = open_database(uri, branch, None, storage_options)
    try:
        with db.transaction(message or f"ray update {table}.{column}"):
            txn = db.session.write_txn()
            tm = txn.table(table)
            target = tm.schema.column(column)
            if target.generated is not None or target.identity == "a":
                raise errors.ProgrammingError(f'column "{column}" can only be updated to DEFAULT: it is a '
                                              f'{"generated" if target.generated else "GENERATED ALWAYS identity"} column',
                                              sqlstate="428C9")
            spec, groups = plan_read(db, txn.base, table, filter, None, columns, with_rowid=True)
            ds = dataset(spec, groups).map_batches(fn, batch_size=batch_size, batch_format=batch_format,
                                                   **map_batches_args)
            assert db.current_branch is not None
            store = db.catalog.store
            uspec = UpdateSpec(store.url, store.options, db.current_branch, tm.copy(), column)
            written = ds.map_batches(_update_block, fn_args=(uspec,), batch_format="pyarrow", batch_size=None,
                                     zero_copy_batch=True).take_all()
            frags, deletes = _results(written, table)
            txn.delete(table, deletes)
            for f in frags:
                txn.append(table, f)
            txn.check_unique(table, frags)
        return db.head
    finally:
        db.close()


def _results(rows: list[dict[str, Any]], table: str) -> tuple[list[Fragment], dict[str, np.ndarray]]:
    """The fragments, and the old row positions per base fragment; a row updated twice
    (``fn`` returned one ``_rowid`` in two batches) is refused."""
    frags = []
    deletes: dict[str, list[np.ndarray]] = {}
    for r in rows:
        frags.append(Fragment.from_json(json.loads(r["fragment"])))
        for fid, pos in json.loads(r["deletes"]).items():
            deletes.setdefault(fid, []).append(np.asarray(pos, dtype=np.uint32))
    out = {}
    for fid, parts in deletes.items():
        pos = np.concatenate(parts)
        if len(np.unique(pos)) != len(pos):
            raise errors.ProgrammingError(
                f'update_column of "{table}": fn returned the same _rowid in more than one row', sqlstate="21000")
        out[fid] = np.sort(pos)
    return frags, out


_READERS: dict[str, FragmentReader] = {}
_LOCK = threading.Lock()


def _reader(spec: UpdateSpec) -> FragmentReader:
    with _LOCK:
        r = _READERS.get(spec.url)
        if r is None:
            r = _READERS[spec.url] = FragmentReader(store_of(spec.url, spec.options), max_bytes=256 << 20)
        return r


def _update_block(block: pa.Table, spec: UpdateSpec) -> pa.Table:
    """A write task: the block's rows with their new ``column`` value, as a new fragment,
    and the positions of their old versions."""
    tm = spec.table
    for need in (ROWID, spec.column):
        if need not in block.column_names:
            raise errors.InvalidParameterValue(
                f"update_column's fn must return {ROWID!r} and {spec.column!r}; it returned "
                f"{', '.join(block.column_names) or 'no columns'}")
    rowids = np.asarray(block.column(ROWID).to_numpy(), dtype=np.int64)
    if len(np.unique(rowids)) != len(rowids):
        raise errors.ProgrammingError(
            f'update_column of "{tm.name}": fn returned the same _rowid in more than one row', sqlstate="21000")
    reader = _reader(spec)
    found = locate_all(reader, tm, rowids)
    if len(found) != len(rowids):
        missing = np.setdiff1d(rowids, found.rowids)
        raise errors.InvalidParameterValue(
            f'update_column of "{tm.name}": fn returned _rowid {int(missing[0])}, which is not a row it was given')
    found = found.where(rowids)
    old = found.read(reader, tm.table_id, tm.schema)
    data: dict[str, Any] = {}
    mats = {}
    for c in tm.schema.columns:
        if c.type.storage == MATRIX:
            mats[c.name] = old.matrices[c.id]
        else:
            data[c.name] = old.scalars[c.id]
    new_data, new_mats = columns_of(tm, block.select([spec.column]))
    mats.pop(spec.column, None)  # the new values: a checked matrix, or values build_batch checks
    data.update(new_data)
    mats.update(new_mats)
    db = worker_connection(spec.url, spec.branch, spec.options)
    batch = build_batch(db.session, tm, data, len(rowids), rowids=rowids, matrices=mats)
    frag = write_fragment(reader.store, tm.table_id, batch)
    deletes: dict[str, list[int]] = {}
    for i, sel in found.by_fragment().items():
        deletes[found.frags[i].id] = found.pos[sel].tolist()
    return pa.table({"fragment": [json.dumps(frag.to_json())], "deletes": [json.dumps(deletes)]})
