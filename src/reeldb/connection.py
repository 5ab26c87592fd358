"""The Python API: a PEP 249 connection with sqlite3's ``db.execute`` shortcut, bulk
inserts, transactions and git-like branches."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from . import errors
from .catalog.catalog import Catalog
from .catalog.diff import Diff
from .catalog.merge import MergeResult
from .catalog.vacuum import DEFAULT_GRACE
from .config import Config
from .cursor import Cursor
from .format.types import MATRIX
from .sql import advisory, dml
from .sql.session import Session, SessionOptions
from .storage import open_store

if TYPE_CHECKING:
    from .loader import DataLoader


def connect(path: str | os.PathLike, branch: str = "main", at: str | None = None, create: bool = True,
            storage_options: dict[str, Any] | None = None, device: str | None = None, *,
            file_access: bool = False, memory_limit: str | None = None,
            auto_compact: bool | None = None, group_commit: bool | None = None,
            author: str | None = None, cache_size: int | str | None = None,
            cache_dir: str | None = None) -> Connection:
    """Open (or create) a database: a folder path, a ``file://`` URL, or S3 and
    S3-compatible object storage (``s3://bucket/prefix``).

    ``branch`` picks the branch this connection reads and writes; ``at`` (a commit id or
    tag) opens a read-only view of that commit instead. ``storage_options`` configure
    object storage: ``endpoint_url``, ``region_name``, ``access_key_id``, ``secret_access_key``
    (else the standard AWS chain: environment, profile, instance metadata), and the
    local disk cache (``cache_dir``, ``cache_size`` in bytes, 0 for none).

    ``device="cuda"`` answers exact vector top-k on the GPU, as ``SET reeldb.device``
    does (an error when this process has no CUDA device).

    SQL runs sandboxed: DuckDB reaches no file and no network, and only the functions on
    reeldb's allow-list run. ``file_access=True`` lets this connection's SQL read and write
    local files with DuckDB's file functions (``read_text``, ``read_csv``, ``read_parquet``,
    ``glob``, ...): an opt-in for trusted local code, never used by ``reeldb serve``.
    ``memory_limit`` (``'4GB'``, ``'50%'``) is DuckDB's memory limit for the queries of
    every connection in this process opened with the same two settings; a query that needs
    more fails with 53200 (out of memory).

    ``auto_compact``, ``group_commit``, ``author``, ``cache_size`` and ``cache_dir`` override
    their ``REELDB_*`` environment variables (``docs/configuration.md``); the result is
    ``Connection.config``.
    """
    config, storage_options = _configure(str(path), storage_options, auto_compact=auto_compact,
                                         group_commit=group_commit, author=author,
                                         cache_size=cache_size, cache_dir=cache_dir)
    store = open_store(str(path), create=create, options=storage_options)
    try:
        catalog = Catalog.open(store, create=create, config=config)
    except BaseException:
        store.close()
        raise
    try:
        db = Connection(catalog, branch, at, file_access=file_access, memory_limit=memory_limit)
    except BaseException:
        catalog.close()
        raise
    if device is not None:
        from .index.device import usable

        try:
            db._session.settings["reeldb.device"] = usable(device)
        except BaseException:
            db.close()
            raise
    return db


def _configure(path: str, storage_options: dict[str, Any] | None,
               **given: Any) -> tuple[Config, dict[str, Any] | None]:
    """The connection's configuration, and the storage options that carry its cache settings.

    The disk cache can be set by a keyword or by ``storage_options``: both are arguments, so
    giving both differently is an error; on a local folder there is no cache to set."""
    options = dict(storage_options or {})
    remote = "://" in path and not path.lower().startswith("file://")
    for name in ("cache_size", "cache_dir"):
        if given[name] is None:
            given[name] = options.get(name)
        elif name in options and options[name] != given[name]:
            raise errors.InvalidParameterValue(f"{name} given twice: {given[name]!r} and "
                                               f"storage_options {options[name]!r}")
        elif not remote:
            raise errors.InvalidParameterValue(f"{name} applies to object storage URLs only")
    config = Config.resolve(**given)
    if remote:
        options.update(cache_size=config.cache_size, cache_dir=config.cache_dir)
    return config, options or None


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

    def __init__(self, catalog: Catalog, branch: str = "main", at: str | None = None, *,
                 file_access: bool = False, memory_limit: str | None = None,
                 owns_store: bool = True):
        self.catalog = catalog
        self._session = Session(catalog, branch, at, file_access=file_access, memory_limit=memory_limit)
        self._owns_store = owns_store  # False for a view made by at(): the store is shared
        self._closed = False
        self._nesting = 0  # open nested transaction() blocks (savepoints)

    @property
    def session(self) -> Session:
        """The SQL session this connection drives: the seam reeldb's own front ends (the
        wire server, the dataloader) run statements and read transaction state through.
        Applications use the connection's methods instead."""
        return self._session

    def at(self, commit: str) -> Connection:
        """A read-only connection to ``commit`` (a commit id, tag or branch) of this
        database, sharing this connection's catalog and store (closing it leaves the store
        open), with this connection's login, rights, sandbox and limits: a ref the login may
        not read is refused (42501), as it is in SQL."""
        self._check()
        s = self._session
        cid = s.rights.check_read(self.catalog, commit)
        view = Connection(self.catalog, at=cid, owns_store=False, file_access=s.engine.file_access,
                          memory_limit=s.memory_limit)
        view._session.configure(SessionOptions(user=s.user, database=s.database, rights=s.rights,
                                               backend_pid=s.backend_pid,
                                               statement_timeout_ms=s.statement_timeout_ms))
        return view

    @property
    def config(self) -> Config:
        """This connection's settings: ``connect()``'s arguments over ``REELDB_*`` variables."""
        return self.catalog.config

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

    def stats(self) -> dict[str, Any]:
        """Where the database lives, the requests made to it and the disk cache's hits
        and misses (object storage)."""
        return self.catalog.store.stats()

    def close(self) -> None:
        if not self._closed:
            self._session.rollback()
            advisory.release_session(self._session)
            self._session.engine.close()
            if self._owns_store:
                self.catalog.close()  # its writer lease, its network connections (object storage)
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
        """Everything inside becomes one commit; an exception rolls it all back.

        Nested inside another, the block is a savepoint (as psycopg 3's nested
        ``transaction()``): an exception rolls back only the inner block's work and goes
        on to the caller, and the outer transaction stays usable and commits what it kept.

        A statement that failed inside the block fails the transaction (as in Postgres);
        if the block still ends normally (the error was caught in it), everything is
        rolled back and InFailedSqlTransaction (25P02) says so, rather than a silent
        rollback where a commit was expected."""
        self._check()
        if self._session.in_transaction:
            yield from self._savepoint_block()
            return
        self._session.begin()
        try:
            yield self
        except BaseException:
            self._session.rollback()
            raise
        failed = self._session.failed
        self._session.commit(message, author)
        if failed:
            raise errors.InFailedSqlTransaction(
                "the transaction was rolled back, not committed: a statement in it failed "
                "(and its error was caught inside the transaction block)")

    def _savepoint_block(self) -> Iterator[Connection]:
        self._nesting += 1
        name = f"reeldb_nested_{self._nesting}"
        s = self._session
        s.execute(f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            if s.in_transaction:  # the body may have ended the transaction itself
                s.execute(f"ROLLBACK TO SAVEPOINT {name}")
                s.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            s.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._nesting -= 1

    # -- bulk ingest -------------------------------------------------------------------------
    def insert(self, table: str, data: Any) -> int:
        """Append rows from a pyarrow Table, a pandas or polars DataFrame, a dict of
        columns or a list of row dicts; one commit, fragments of 64k rows."""
        self._check()
        columns, n = _columns_of(data)
        s = self._session
        with s.statement({table}):
            own = not s.in_transaction
            try:
                tm = s.write_txn().table(table)
                mats = {}
                for name in list(columns):
                    col = tm.schema.find(name)
                    if col is not None and col.type.storage == MATRIX and isinstance(columns[name], np.ndarray) \
                            and columns[name].dtype != object:
                        from .format.types import check_matrix, MatrixColumn, to_stored  # noqa: I001

                        arr = columns.pop(name)
                        if arr.shape[1:] == col.type.row_shape and arr.shape[0] == n:
                            mats[name] = MatrixColumn(np.ascontiguousarray(to_stored(col.type, name, arr)),
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
                if own:  # nothing of it is published (a failed commit included)
                    if s._auto is not None:
                        s._auto.close()
                        s._auto = None
                else:
                    s.failed = True  # as any failed statement inside BEGIN
                raise
        return n

    # -- versioning --------------------------------------------------------------------------
    @property
    def current_branch(self) -> str | None:
        """The branch this connection reads and writes; None when it reads a fixed commit."""
        return self._session.branch

    @property
    def head(self) -> str:
        return self._session.head()

    def branch(self, name: str, checkout: bool = True, at: str | None = None) -> str:
        """Create a branch at the current commit (or ``at``), O(1); switch to it unless
        ``checkout=False``. Returns the commit it points at."""
        self._check()
        return self._session.create_branch(name, checkout, at)

    def checkout(self, name: str) -> None:
        """Switch to a branch, or to a tag or commit (read-only)."""
        self._check()
        self._session.checkout(name)

    def delete_branch(self, name: str) -> None:
        self._check()
        self._session.delete_branch(name)

    def branches(self) -> list[dict[str, Any]]:
        return self._session.branches()

    def protect(self, branch: str) -> None:
        """Refuse every write to ``branch`` (commits, merges, resets) until unprotected."""
        self._check()
        self._session.protect(branch)

    def unprotect(self, branch: str) -> None:
        self._check()
        self._session.unprotect(branch)

    def tag(self, name: str, at: str | None = None) -> str:
        return self._session.create_tag(name, at)

    def delete_tag(self, name: str) -> None:
        self._check()
        self._session.delete_tag(name)

    def tags(self) -> dict[str, str]:
        return self._session.tags()

    def log(self, branch: str | None = None, table: str | None = None,
            limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: id, parents, time, author, message, and per table the rows
        inserted, deleted and updated. ``table`` keeps the commits that changed it."""
        return self._session.log(branch, table, limit)

    def diff(self, a: str, b: str | None = None, table: str | None = None) -> Diff:
        """Rows added, removed and changed (with the cells) from ``a`` to ``b`` (default:
        this connection's head); branches, tags or commits."""
        self._check()
        return self._session.diff(a, b, table)

    def merge(self, source: str, into: str | None = None, strategy: str = "fail",
              message: str | None = None, author: str | None = None) -> MergeResult:
        """Three-way merge of ``source`` into ``into`` (default: the current branch).

        ``strategy="fail"`` raises ``reeldb.MergeConflict`` listing every conflict and
        writes nothing; ``"ours"`` / ``"theirs"`` resolve conflicts for one side."""
        self._check()
        return self._session.merge(source, into, strategy, message, author)

    def reset(self, branch: str | None = None, to: str | None = None) -> str:
        """Point ``branch`` (default: the current one) at commit ``to``."""
        self._check()
        if to is None:
            raise errors.InvalidParameterValue("reset needs a commit, tag or branch to reset to")
        return self._session.reset(branch, to)

    def revert(self, commit: str, message: str | None = None) -> str:
        """A new commit on the current branch that undoes ``commit``."""
        self._check()
        return self._session.revert(commit, message)

    def search(self, table: str, column: str, q: Any, k: int = 10, filter: str | None = None,
               metric: str = "cosine", columns: Sequence[str] | None = None) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """The ``k`` rows nearest to ``q`` in ``column``, nearest first, as dicts with the
        distance under ``"_distance"`` (cosine distance, L2 distance or negative inner
        product: ``metric`` "cosine", "l2" or "ip", as pgvector's ``<=>``, ``<->``,
        ``<#>``). ``filter`` is a SQL condition on the table's columns. A 2-D ``q`` (one
        query per row) returns one list per query from one pass over the vectors.
        An index on the column is used as a SQL query would use it."""
        self._check()
        arr = np.asarray(q, dtype=np.float32)
        if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
            raise errors.DataError(f"q must be a vector or a 2-D array of vectors, not shape {arr.shape}")
        queries = arr.reshape(-1, arr.shape[-1])
        if not np.isfinite(queries).all():
            raise errors.DataError("q has NaN or infinite values")
        got = self._session.search(table, column, queries, k, filter, metric,
                                   None if columns is None else list(columns))
        from .rows import to_rows

        out = []
        for table_, description in got:
            names = [d[0] for d in description]
            out.append([dict(zip(names, r)) for r in to_rows(table_, description, self.catalog.store)])
        return out if arr.ndim == 2 else out[0]

    def optimize(self, table: str | None = None) -> list[dict[str, Any]]:
        """Rewrite small and mostly-deleted fragments into large ones (one commit)."""
        self._check()
        return self._session.optimize(table)

    def vacuum(self, retain: dt.timedelta | None = None, grace: dt.timedelta = DEFAULT_GRACE) -> dict[str, int]:
        """Delete files no branch or tag reaches; with ``retain``, also the files of
        commits older than that (time travel to them then fails). Files younger than
        ``grace`` stay: a concurrent writer may be about to commit them."""
        self._check()
        return self._session.vacuum(retain, grace)

    def expire(self, older_than: dt.timedelta | dt.datetime) -> int:
        """Drop commits older than ``older_than`` from history; branch and tag heads stay.
        Their files go at the next ``vacuum``."""
        self._check()
        return self._session.expire(older_than)

    def dataloader(self, table: str | None = None, *, sql: str | None = None) -> DataLoader:
        """A ``reeldb.loader.DataLoader`` over a table or a query, pinned to this snapshot."""
        self._check()
        from .loader import DataLoader

        return DataLoader(self, table, sql=sql)

    def tables(self) -> list[str]:
        return sorted(self._session.current_tables())

    def ui(self, host: str = "127.0.0.1", port: int = 8700, branch: str | None = None,
           login: bool = False, label_branch: str | None = None,
           label_column: str = "human_preference") -> Any:
        """Serve this database to a browser (``reeldb ui``, docs/ui.md) on a background
        thread; returns a handle with ``.url`` and ``.close()``. Pages read read-only
        snapshots with this connection's login; an address other than loopback needs
        ``login=True`` (a token, in ``.url``). ``label_branch`` turns on A/B labelling,
        committed to that branch. Needs the ``ui`` extra."""
        self._check()
        from .ui import start

        def on_branch(name: str) -> Connection:  # a writer for labels, with this login
            s = self._session
            c = Connection(self.catalog, name, owns_store=False, file_access=s.engine.file_access,
                           memory_limit=s.memory_limit)
            c._session.configure(SessionOptions(user=s.user, database=s.database, rights=s.rights,
                                                backend_pid=s.backend_pid,
                                                statement_timeout_ms=s.statement_timeout_ms))
            return c

        return start(self, host=host, port=port, branch=branch, login=login, label_branch=label_branch,
                     label_column=label_column, connect_branch=on_branch)


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
