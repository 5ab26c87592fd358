"""The Python API: a PEP 249 connection with sqlite3's ``db.execute`` shortcut, bulk
inserts, transactions and git-like branches."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from . import errors
from .catalog.catalog import Catalog
from .catalog.vacuum import DEFAULT_GRACE, vacuum
from .cursor import Cursor
from .format.types import MATRIX
from .sql import dml
from .sql.session import Session
from .storage import open_store


def connect(path: str | os.PathLike, branch: str = "main", at: str | None = None, create: bool = True) -> Connection:
    """Open (or create) a database: a folder path or ``file://`` URL.

    ``branch`` picks the branch this connection reads and writes; ``at`` (a commit id or
    tag) opens a read-only view of that commit instead.
    """
    store = open_store(str(path), create=create)
    catalog = Catalog.open(store, create=create)
    return Connection(catalog, branch, at)


class Connection:
    # PEP 249 module-level exceptions, also reachable from the connection
    Error = errors.Error
    Warning = errors.Warning
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(self, catalog: Catalog, branch: str = "main", at: str | None = None):
        self.catalog = catalog
        self._session = Session(catalog, branch, at)
        self._closed = False

    # -- PEP 249 -----------------------------------------------------------------------------
    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def execute(self, sql: str, params: Any = None) -> Cursor:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, seq_of_params: Any) -> Cursor:
        return self.cursor().executemany(sql, seq_of_params)

    def commit(self) -> None:
        """Commit an open BEGIN; outside one every statement is already committed."""
        self._check()
        self._session.commit()

    def rollback(self) -> None:
        self._check()
        self._session.rollback()

    def close(self) -> None:
        if not self._closed:
            self._session.rollback()
            self._session.engine.close()
            self._closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check(self) -> None:
        if self._closed:
            raise errors.InterfaceError("connection already closed")

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, message: str = "", author: str | None = None) -> Iterator[Connection]:
        """Everything inside becomes one commit; an exception rolls it all back."""
        self._check()
        if self._session.in_transaction:
            yield self  # nested: part of the outer transaction
            return
        self._session.begin()
        try:
            yield self
        except BaseException:
            self._session.rollback()
            raise
        self._session.commit(message, author)

    # -- bulk ingest -------------------------------------------------------------------------
    def insert(self, table: str, data: Any) -> int:
        """Append rows from a pyarrow Table, a pandas or polars DataFrame, a dict of
        columns or a list of row dicts; one commit, fragments of 64k rows."""
        self._check()
        columns, n = _columns_of(data)
        s = self._session
        s.bind()
        own = not s.in_transaction
        try:
            tm = s.write_txn().table(table)
            mats = {}
            for name in list(columns):
                col = tm.schema.find(name)
                if col is not None and col.type.storage == MATRIX and isinstance(columns[name], np.ndarray) \
                        and columns[name].dtype != object:
                    from .format.types import check_matrix, MatrixColumn  # noqa: I001

                    arr = columns.pop(name)
                    if arr.shape[1:] == col.type.row_shape and arr.shape[0] == n:
                        if col.type.kind in ("vector", "halfvec") and not np.isfinite(arr).all():
                            raise errors.DataError(f"NaN or infinity not allowed in vector (column {name})")
                        mats[name] = MatrixColumn(np.ascontiguousarray(arr, dtype=col.type.np_dtype),
                                                  np.ones(n, dtype=bool))
                    else:
                        mats[name] = check_matrix(col.type, name, list(arr))
            for start in _progress(n, table):
                stop = min(n, start + dml.FRAGMENT_ROWS)
                part = {k: v[start:stop] for k, v in columns.items()}
                mpart = {k: MatrixColumn(m.values[start:stop], m.valid[start:stop]) for k, m in mats.items()}
                dml.write_rows(s, table, part, stop - start, matrices=mpart)
            if own:
                s.finish_write()
        except BaseException:
            if own:
                s._auto = None
            else:
                s.failed = True  # as any failed statement inside BEGIN
            raise
        return n

    # -- versioning --------------------------------------------------------------------------
    @property
    def current_branch(self) -> str | None:
        return self._session.branch

    @property
    def head(self) -> str:
        return self._session.head()

    def branch(self, name: str, checkout: bool = True, at: str | None = None) -> str:
        """Create a branch at the current commit (or ``at``), O(1); switch to it unless
        ``checkout=False``. Returns the commit it points at."""
        self._check()
        if self._session.in_transaction:
            raise errors.ActiveSqlTransaction("cannot create a branch inside a transaction")
        commit = self.catalog.resolve(at) if at else self._session.head()
        self.catalog.refs.create_branch(name, commit)
        if checkout:
            self.checkout(name)
        return commit

    def checkout(self, name: str) -> None:
        self._check()
        if self._session.in_transaction:
            raise errors.ActiveSqlTransaction("cannot switch branches inside a transaction")
        self.catalog.head(name)
        self._session = _switch(self._session, name)

    def branches(self) -> list[dict[str, Any]]:
        cur = self._session.branch
        return [{"name": n, "commit": c, "current": n == cur} for n, c in sorted(self.catalog.refs.branches().items())]

    def tag(self, name: str, at: str | None = None) -> str:
        commit = self.catalog.resolve(at) if at else self._session.head()
        self.catalog.refs.create_tag(name, commit)
        return commit

    def tags(self) -> dict[str, str]:
        return self.catalog.refs.tags()

    def log(self, branch: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        start = self.catalog.resolve(branch) if branch else self._session.head()
        return [{"id": c.id, "parents": list(c.parents),
                 "time": dt.datetime.fromtimestamp(c.time, dt.timezone.utc), "author": c.author,
                 "message": c.message} for c in self.catalog.log(start, limit)]

    def dataloader(self, table: str | None = None, *, sql: str | None = None) -> Any:
        """A ``reeldb.loader.DataLoader`` over a table or a query, pinned to this snapshot."""
        self._check()
        from .loader import DataLoader

        return DataLoader(self, table, sql=sql)

    def tables(self) -> list[str]:
        return sorted(self._session.current_tables())

    def vacuum(self, grace: dt.timedelta = DEFAULT_GRACE) -> dict[str, int]:
        """Delete files no branch or tag reaches and older than ``grace``."""
        return vacuum(self.catalog, grace)


def _switch(old: Session, branch: str) -> Session:
    old.engine.close()
    return Session(old.catalog, branch)


def _progress(n: int, table: str) -> Any:
    return dml.progress(range(0, n, dml.FRAGMENT_ROWS), f"insert {table}", "fragment")


def _columns_of(data: Any) -> tuple[dict[str, Any], int]:
    """Any tabular input -> {column: Arrow array | numpy matrix | list}, row count."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return {name: _matrix_or_array(data.column(name)) for name in data.column_names}, data.num_rows
    mod = type(data).__module__
    if mod.startswith("pandas"):
        cols = {}
        for name in data.columns:
            s = data[name]
            if s.dtype == object:
                cols[str(name)] = list(s)
            else:
                cols[str(name)] = pa.array(s)
        return cols, len(data)
    if mod.startswith("polars"):
        return _columns_of(data.to_arrow())
    if isinstance(data, dict):
        n = len(next(iter(data.values()))) if data else 0
        return {k: (v if isinstance(v, np.ndarray) and v.ndim > 1 else list(v) if not isinstance(v, pa.Array)
                    else v) for k, v in data.items()}, n
    if isinstance(data, Sequence):
        rows = list(data)
        names: dict[str, None] = {}
        for r in rows:
            names.update(dict.fromkeys(r))
        return {k: [r.get(k) for r in rows] for k in names}, len(rows)
    raise errors.DataError(f"cannot insert rows from a {type(data).__name__}")


def _matrix_or_array(col: pa.ChunkedArray) -> Any:
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
