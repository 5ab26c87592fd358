"""``reeldb.ray.read``: a table at one commit as a Ray Dataset, one read task per group of
fragments.

The driver pins the commit, runs the filter (a Postgres boolean expression, as the
dataloader's ``.filter()``) over only the columns it names, and hands each read task its
fragments and the row positions the filter kept: a task reads only the Parquet columns,
matrix files and blob values of the columns asked for, and nothing of the rows left out.
Tasks carry the store's URL and options, never a connection, so they run on any node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from ..connection import Connection
from ..format.fragment import ROWID, fill_value, ncol, parquet_columns, scol
from ..format.keys import parquet_key
from ..format.manifest import Column, Fragment, TableManifest
from ..format.types import BLOB, MATRIX
from ..loader.plan import BLOB_COL, MATRIX_COL, OutColumn, Params, Plan, kept_rows, table_manifest
from ..loader.read import Reader, parquet_null_counts
from ..storage import ObjectStore
from .stores import open_database, store_of

#: rows per block a read task yields at most (blocks of 1 MiB clips stay near 256 MiB)
BLOCK_ROWS = 8192
BLOCK_BYTES = 256 << 20


@dataclass(frozen=True)
class ReadColumn:
    """One output column: ``col`` is the table's column, None for ``_rowid``."""

    name: str
    col: Column | None


@dataclass(frozen=True)
class ReadSpec:
    """What every read task of one ``read()`` shares; picklable."""

    url: str
    options: dict | None
    commit: str
    table: str
    table_id: str
    columns: tuple[ReadColumn, ...]


def read(uri: str, table: str, *, branch: str | None = None, at: str | None = None, filter: str | None = None,
         params: Params = None, columns: Sequence[str] | None = None, parallelism: int = -1,
         storage_options: dict[str, Any] | None = None, with_rowid: bool = False) -> Any:
    """``table`` as of ``at`` (a commit id or tag) or the head of ``branch`` (default
    ``main``), pinned now, as a ``ray.data.Dataset``: VECTOR / HALFVEC / fixed-shape TENSOR
    columns as fixed-shape tensor columns, BYTEA / IMAGE / VIDEO / any-shape TENSOR columns as
    their bytes, other columns as their stored Arrow values. ``filter`` keeps the rows where
    that Postgres expression is true (``params`` fill its placeholders); ``with_rowid`` adds
    the hidden ``_rowid`` (row identity, what ``update_column`` matches by)."""
    db = open_database(uri, branch, at, storage_options)
    try:
        spec, groups = plan_read(db, db.head, table, filter, params, columns, with_rowid)
    finally:
        db.close()
    return dataset(spec, groups, parallelism)


def dataset(spec: ReadSpec, groups: list[tuple[Fragment, np.ndarray]], parallelism: int = -1) -> Any:
    """The Ray Dataset of a planned read."""
    import ray.data

    return ray.data.read_datasource(ReeldbDatasource(spec, groups),
                                    override_num_blocks=None if parallelism == -1 else parallelism)


def plan_read(db: Connection, commit: str, table: str, filter: str | None, params: Params, columns: Sequence[str] | None,
              with_rowid: bool) -> tuple[ReadSpec, list[tuple[Fragment, np.ndarray]]]:
    """The rows of ``table`` at ``commit`` to read, per fragment, and the columns to read."""
    if filter is not None and (not isinstance(filter, str) or not filter.strip()):
        raise TypeError("filter= takes a SQL boolean expression as a string")
    if isinstance(columns, str):
        raise TypeError("columns= takes a list of column names, not one string")
    tm: TableManifest = table_manifest(db.catalog, commit, table)
    names = list(columns) if columns is not None else tm.schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"columns= names {dupes[0]!r} twice")
    out = []
    for n in names:
        if tm.schema.find(n) is None:
            raise errors.UndefinedColumn(f'column "{n}" of relation "{table}" does not exist')
        out.append(ReadColumn(n, tm.schema.column(n)))
    if with_rowid:
        if ROWID in names:
            raise ValueError(f"column {ROWID!r} clashes with the row identity with_rowid adds")
        out.insert(0, ReadColumn(ROWID, None))
    frags, positions = kept_rows(db, tm, [(filter, params)] if filter is not None else [])
    store = db.catalog.store
    for rc in out:
        if rc.col is not None and rc.col.type.storage == MATRIX:
            _refuse_nulls(store, tm.table_id, rc.col, frags, positions)
    spec = ReadSpec(store.url, store.options, commit, table, tm.table_id, tuple(out))
    return spec, list(zip(frags, positions, strict=True))


def _refuse_nulls(store: ObjectStore, table_id: str, col: Column, frags: Sequence[Fragment],
                  positions: Sequence[np.ndarray]) -> None:
    """A NULL vector has no fixed-shape tensor form: refused before any task starts.
    Parquet statistics of the norm column settle most fragments without reading it."""
    nulls = 0
    for frag, pos in zip(frags, positions, strict=True):
        if col.id not in dict(frag.mats):
            nulls += len(pos)  # the column was added after this fragment: NULL throughout
            continue
        key = parquet_key(table_id, frag.id)
        if parquet_null_counts(store, key, [ncol(col.id)], frag).get(ncol(col.id), 1):
            norms = parquet_columns(store, key, [ncol(col.id)], frag).column(ncol(col.id))
            nulls += norms.take(pa.array(pos, pa.int64())).null_count
    if nulls:
        raise _null_vectors(col.name, nulls)


def _null_vectors(name: str, n: int) -> errors.DataError:
    return errors.DataError(
        f'column "{name}" is NULL in {n} of the rows to read, and NULL has no place in a fixed-shape '
        f'tensor column: add filter="{name} IS NOT NULL" or leave the column out of columns=',
        sqlstate="22004")


class ReeldbDatasource:
    """Built lazily as a ``ray.data.Datasource`` subclass (see ``__new__``) so that importing
    this module does not import Ray."""

    def __new__(cls, spec: ReadSpec, groups: list[tuple[Fragment, np.ndarray]]) -> Any:
        return _datasource_class()(spec, groups)


_DATASOURCE: type | None = None


def _datasource_class() -> type:
    global _DATASOURCE
    if _DATASOURCE is not None:
        return _DATASOURCE
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class _Datasource(Datasource):
        def __init__(self, spec: ReadSpec, groups: list[tuple[Fragment, np.ndarray]]):
            super().__init__()
            self.spec = spec
            self.groups = groups

        def get_name(self) -> str:
            return f"reeldb({self.spec.table})"

        def estimate_inmemory_data_size(self) -> int | None:
            return sum(_row_bytes(self.spec) * len(p) for f, p in self.groups)

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            tasks = []
            for part in split_groups(self.groups, parallelism):
                rows = sum(len(p) for _, p in part)
                meta = BlockMetadata(num_rows=rows, size_bytes=sum(_row_bytes(self.spec) * len(p)
                                                                   for f, p in part),
                                     exec_stats=None, input_files=None)
                tasks.append(ReadTask(lambda part=part, spec=self.spec: read_fragments(spec, part), meta,
                                      per_task_row_limit=per_task_row_limit))
            return tasks

    _DATASOURCE = _Datasource
    return _Datasource


def split_groups(groups: list[tuple[Fragment, np.ndarray]], parallelism: int) -> list[list[tuple[Fragment, np.ndarray]]]:
    """Consecutive fragments in at most ``parallelism`` groups of about equal rows (a
    fragment is never split: its Parquet footer and matrix files are read by one task)."""
    if not groups:
        return []
    n = max(1, min(parallelism, len(groups)))
    total = sum(len(p) for _, p in groups)
    out: list[list[tuple[Fragment, np.ndarray]]] = [[]]
    done = 0
    for f, p in groups:
        if out[-1] and len(out) < n and done >= total * len(out) / n:
            out.append([])
        out[-1].append((f, p))
        done += len(p)
    return out


def _row_bytes(spec: ReadSpec) -> int:
    """A guess of one row's in-memory size, for Ray's scheduling only."""
    size = 8
    for rc in spec.columns:
        if rc.col is None:
            continue
        t = rc.col.type
        if t.storage == MATRIX:
            size += t.np_dtype.itemsize * int(np.prod(t.row_shape))
        elif t.storage == BLOB:
            size += 1 << 16
        else:
            size += 16
    return size


def read_fragments(spec: ReadSpec, part: list[tuple[Fragment, np.ndarray]]) -> Iterator[pa.Table]:
    """A read task: the rows ``part`` names, as Arrow tables of at most BLOCK_ROWS rows."""
    store = store_of(spec.url, spec.options)
    wide = [rc for rc in spec.columns if rc.col is not None and rc.col.type.storage in (MATRIX, BLOB)]
    out_cols = tuple(OutColumn(rc.name, MATRIX_COL, rc.col.id, rc.col.type.np_dtype.name, rc.col.type.row_shape)
                     if rc.col.type.storage == MATRIX else OutColumn(rc.name, BLOB_COL, rc.col.id,
                                                                     blob_kind=rc.col.type.kind)
                     for rc in wide if rc.col is not None)
    frags = tuple(f for f, _ in part)
    positions = tuple(p for _, p in part)
    plan = Plan(spec.url, spec.commit, spec.table, spec.table_id, out_cols, frags, positions,
                options=spec.options or {})
    reader = Reader(plan, store)
    start = 0
    try:
        for frag, pos in part:
            parquet = _parquet_names(spec, frag)
            t = parquet_columns(store, parquet_key(spec.table_id, frag.id), parquet, frag) if parquet else None
            step = _block_rows(spec)
            for lo in range(0, len(pos), step):
                hi = min(len(pos), lo + step)
                yield _block(spec, reader, frag, t, pos[lo:hi], np.arange(start + lo, start + hi, dtype=np.int64))
            start += len(pos)
    finally:
        reader.close()


def _block_rows(spec: ReadSpec) -> int:
    per_row = _row_bytes(spec)
    return max(1, min(BLOCK_ROWS, BLOCK_BYTES // per_row))


def _parquet_names(spec: ReadSpec, frag: Fragment) -> list[str]:
    names = []
    mats = dict(frag.mats)
    for rc in spec.columns:
        if rc.col is None:
            names.append(ROWID)
        elif rc.col.type.storage == MATRIX:
            if rc.col.id in mats:
                names.append(ncol(rc.col.id))
        elif rc.col.type.storage != BLOB and rc.col.id in frag.cols:
            names.append(scol(rc.col.id))
    return names


def _block(spec: ReadSpec, reader: Reader, frag: Fragment, t: pa.Table | None, pos: np.ndarray,
           rows: np.ndarray) -> pa.Table:
    from ray.data.extensions import ArrowTensorArray

    wide = reader.read(rows) if reader.plan.columns else {}
    idx = pa.array(pos, pa.int64())
    n = len(pos)
    arrays: dict[str, Any] = {}
    for rc in spec.columns:
        c = rc.col
        if c is None:
            assert t is not None
            arrays[rc.name] = t.column(ROWID).take(idx).combine_chunks()
        elif c.type.storage == MATRIX:
            present = t is not None and ncol(c.id) in t.column_names
            nulls = t.column(ncol(c.id)).take(idx).null_count if present else n  # type: ignore[union-attr]
            if nulls:  # refused by plan_read already: a defence, not a path
                raise _null_vectors(c.name, nulls)
            arrays[rc.name] = ArrowTensorArray.from_numpy(np.ascontiguousarray(wide[rc.name]))
        elif c.type.storage == BLOB:
            arrays[rc.name] = _binary(wide[rc.name])
        elif t is not None and scol(c.id) in t.column_names:
            arrays[rc.name] = t.column(scol(c.id)).take(idx).combine_chunks()
        elif c.fill is None:
            arrays[rc.name] = pa.nulls(n, c.type.arrow())
        else:
            arrays[rc.name] = pa.repeat(fill_value(c), n)
    return pa.table(arrays)


def _binary(values: list[np.ndarray | None]) -> pa.Array:
    """Blob values (uint8 views, None for NULL) as one large_binary array: one copy."""
    n = len(values)
    lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for i, v in enumerate(values):
        if v is not None and len(v):
            data[offsets[i]:offsets[i + 1]] = v
    valid = np.array([v is not None for v in values])
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.large_binary(), n, [mask, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=int(n - valid.sum()))
