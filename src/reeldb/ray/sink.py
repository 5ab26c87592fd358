"""``reeldb.ray.write``: a Ray Dataset into a table, as one commit.

Workers check their rows and write fragments (Parquet, matrix files, blob packs) straight
to the store with the same code an INSERT runs (``sql.dml.build_batch`` and
``format.fragment.write_fragment``), and return only the fragments' descriptions. The
driver holds one transaction open on the branch for the whole job and, once every task
has finished, appends exactly the fragments of the tasks' final results and commits them
through the ordinary optimistic protocol (re-based onto a moved head, 40001 on a conflict).

So a job is all or nothing: a task Ray retries writes new files and only the retry's
fragments are committed; a job that fails, or a driver that dies, commits nothing and
leaves unreferenced files that ``VACUUM`` removes (the open transaction keeps VACUUM away
from them while the job runs).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from ..connection import Connection, connect
from ..engine.engine import quote_ident
from ..format.fragment import write_fragment
from ..format.manifest import Fragment, TableManifest
from ..format.types import MATRIX, MatrixColumn, check_matrix, to_stored
from ..sql.dml import FRAGMENT_ROWS, build_batch
from .stores import open_database

MODES = ("append", "create", "overwrite")


@dataclass(frozen=True)
class WriteSpec:
    """What every write task needs; picklable. ``table`` carries the schema only."""

    url: str
    options: dict | None
    branch: str
    table: TableManifest


def write(ds: Any, uri: str, table: str, *, branch: str | None = None, mode: str = "append",
          message: str | None = None, storage_options: dict[str, Any] | None = None) -> str:
    """Write the rows of ``ds`` into ``table`` on ``branch`` (default ``main``) in one
    commit, and return its id. ``mode``: "append" to an existing table, "create" a new
    table typed from the dataset's schema, or "overwrite" the table's rows (delete them and
    write these, in the same commit)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    db = open_database(uri, branch, None, storage_options)
    try:
        with db.transaction(message or f"ray write {table} ({mode})"):
            txn = db.session.write_txn()
            if mode == "create":
                db.execute(create_table_sql(table, _arrow_schema(ds)))
            elif table not in txn.tables:
                raise errors.UndefinedTable(f'relation "{table}" does not exist')
            if mode == "overwrite":
                db.execute(f"DELETE FROM {quote_ident(table)}")
            frags = run_write_tasks(ds, db, table)
            stage(db, table, frags)
        return db.head
    finally:
        db.close()


def run_write_tasks(ds: Any, db: Connection, table: str) -> list[Fragment]:
    """Run one write task per block of ``ds``; the fragments of their final results."""
    txn = db.session.write_txn()
    tm = txn.table(table)
    store = db.catalog.store
    assert db.current_branch is not None
    spec = WriteSpec(store.url, store.options, db.current_branch, TableManifest(tm.table_id, tm.name, tm.schema))
    written = ds.map_batches(_write_block, fn_args=(spec,), batch_format="pyarrow", batch_size=None,
                             zero_copy_batch=True)
    return fragments_of(written)


def fragments_of(written: Any) -> list[Fragment]:
    return [Fragment.from_json(json.loads(r["fragment"])) for r in written.take_all()]


def stage(db: Connection, table: str, frags: list[Fragment]) -> None:
    """Add the workers' fragments to the driver's transaction, as an INSERT does."""
    txn = db.session.write_txn()
    for f in frags:
        txn.append(table, f)
    txn.check_unique(table, frags)


# -- in the workers ---------------------------------------------------------------------------
_SESSIONS: dict[tuple[str, str], Connection] = {}
_LOCK = threading.Lock()


def worker_connection(url: str, branch: str, options: dict | None) -> Connection:
    """This worker process's connection (defaults, CHECK constraints, row ids and SERIAL
    values need a session), opened once per process and never committed through."""
    key = (url, branch)
    with _LOCK:
        db = _SESSIONS.get(key)
        if db is None or db.closed:
            db = _SESSIONS[key] = connect(url, branch=branch, create=False, storage_options=options or None)
        return db


def _write_block(block: pa.Table, spec: WriteSpec) -> pa.Table:
    """A write task: check the block's rows, write its fragments; their descriptions."""
    db = worker_connection(spec.url, spec.branch, spec.options)
    tm = spec.table
    out = []
    n = block.num_rows
    for start in range(0, n, FRAGMENT_ROWS):
        part = block.slice(start, min(FRAGMENT_ROWS, n - start))
        data, mats = columns_of(tm, part)
        batch = build_batch(db.session, tm, data, part.num_rows, matrices=mats)
        frag = write_fragment(db.catalog.store, tm.table_id, batch)
        out.append(json.dumps(frag.to_json()))
    return pa.table({"fragment": pa.array(out, pa.string())})


def columns_of(tm: TableManifest, block: pa.Table) -> tuple[dict[str, Any], dict[str, MatrixColumn]]:
    """A block's columns by name; tensor columns of vector / fixed-shape tensor columns as
    matrices, checked (shape, dtype range, no NaN in a vector)."""
    data: dict[str, Any] = {}
    mats: dict[str, MatrixColumn] = {}
    for name in block.column_names:
        arr = block.column(name)
        col = tm.schema.find(name)
        if col is not None and col.type.storage == MATRIX and _is_tensor(arr.type):
            values = _tensor_numpy(arr)
            if values.dtype != object and values.shape[1:] == col.type.row_shape:
                mats[name] = MatrixColumn(np.ascontiguousarray(to_stored(col.type, name, values)),
                                          np.ones(len(values), dtype=bool))
            else:
                mats[name] = check_matrix(col.type, name, list(values))
        elif _is_tensor(arr.type):
            data[name] = list(_tensor_numpy(arr))
        else:
            data[name] = arr
    return data, mats


def _is_tensor(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType) and "Tensor" in type(t).__name__


def _tensor_numpy(arr: pa.ChunkedArray) -> np.ndarray:
    parts = [c.to_numpy() for c in arr.chunks]
    if not parts:
        return np.empty((0,), dtype=object)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# -- create -----------------------------------------------------------------------------------
def _arrow_schema(ds: Any) -> pa.Schema:
    schema = ds.schema()
    if schema is None:
        raise errors.InvalidParameterValue("cannot create a table from an empty dataset: it has no schema")
    base = getattr(schema, "base_schema", schema)
    if not isinstance(base, pa.Schema):
        raise errors.FeatureNotSupported("the dataset's schema is not an Arrow schema (a dataset of Python "
                                         "objects): convert it to columns first")
    return base


_SCALARS = {
    "int8": "SMALLINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
    "uint8": "SMALLINT", "uint16": "INTEGER", "uint32": "BIGINT",
    "float": "REAL", "double": "DOUBLE PRECISION", "bool": "BOOLEAN",
    "string": "TEXT", "large_string": "TEXT", "binary": "BYTEA", "large_binary": "BYTEA",
    "date32[day]": "DATE",
}


def sql_type(name: str, t: pa.DataType) -> str:
    """The SQL type ``mode="create"`` gives a column of Arrow type ``t``."""
    if _is_tensor(t):
        dtype = np.dtype(t.value_type.to_pandas_dtype())
        shape = getattr(t, "shape", None)
        if shape is None or any(d is None or d < 0 for d in shape):  # variable-shaped tensors
            return f"TENSOR({dtype.name})"
        if len(shape) == 1 and dtype == np.float32:
            return f"VECTOR({shape[0]})"
        if len(shape) == 1 and dtype == np.float16:
            return f"HALFVEC({shape[0]})"
        return f"TENSOR({dtype.name}, {', '.join(str(d) for d in shape)})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision}, {t.scale})"
    got = _SCALARS.get(str(t))
    if got is None:
        raise errors.FeatureNotSupported(
            f'column "{name}" of the dataset is of Arrow type {t}, which mode="create" does not map to a SQL type: '
            "create the table with SQL first and write with mode=\"append\"")
    return got


def create_table_sql(table: str, schema: pa.Schema) -> str:
    if not len(schema):
        raise errors.InvalidParameterValue("cannot create a table from a dataset without columns")
    cols = ", ".join(f"{quote_ident(f.name)} {sql_type(f.name, f.type)}" for f in schema)
    return f"CREATE TABLE {quote_ident(table)} ({cols})"
