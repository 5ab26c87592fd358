"""A SQL session: one branch (or a pinned commit), transactions, statement dispatch.

Outside ``BEGIN`` every statement is its own transaction and commit (autocommit), as the
brief's examples expect; inside, statements see their own writes and COMMIT publishes
them as one commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pglast import ast
from pglast.enums import DropBehavior, ObjectType, TransactionStmtKind, VariableSetKind

from .. import errors
from ..catalog.catalog import Catalog
from ..catalog.compact import maybe_compact
from ..catalog.transaction import Transaction
from ..engine.engine import Engine, ResultStream, internal_name
from ..format.manifest import Column, TableManifest
from . import (
    advisory,
    cursors,
    ddl,
    discard,
    dml,
    foreign_keys,
    indexes,
    large_objects,
    namespaces,
    notify,
    objects_ddl,
    point,
    prepared,
    result_types,
    sequences,
    temp,
    vector_plan,
    views,
)
from .characteristics import Characteristics, with_options
from .declared import type_declared
from .names import schemas as namespace_schemas
from .params import compile_params
from .parse import deparse, name_columns, parse, walk
from .pgcatalog import PgCatalog, settings
from .result import Result
from .rewrite import Rewriter, adapt_param, resolve_namespaces
from .rights import FULL, NEEDS, Rights
from .rowid_star import finish
from .series import expand_set_returning
from .settings import SHOWN_SERVER, Undo
from .versioning import VersioningMixin

MAX_REF_RELATIONS = 64  # tables of other branches/tags kept registered at once


# statements whose tables are all RangeVars in their tree; others bind every table
_NAMING = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.CopyStmt, ast.ExplainStmt)
# statements that read no table: they bind none (a SHOW must not open every table's files)
_TABLELESS = (ast.VariableSetStmt, ast.VariableShowStmt, ast.ListenStmt, ast.UnlistenStmt, ast.NotifyStmt,
              ast.DeallocateStmt, ast.ClosePortalStmt, ast.FetchStmt, ast.CreateExtensionStmt,
              ast.DiscardStmt, ast.CreateSchemaStmt, ast.CreateEnumStmt, ast.AlterEnumStmt, ast.CreateSeqStmt, ast.AlterSeqStmt,
              ast.CreateDomainStmt, ast.CompositeTypeStmt, ast.CommentStmt)


def referenced_tables(stmt: ast.Node) -> set[str] | None:
    """Unqualified (or ``public.``) table names a statement mentions; None when the
    statement is not one whose tables can be read off its tree."""
    if isinstance(stmt, _TABLELESS):
        return set()
    if not isinstance(stmt, _NAMING):
        return None
    found: set[str] = set()
    stack: list[Any] = [stmt]
    while stack:  # a loop, not recursion: expressions can nest deeper than Python's stack
        node = stack.pop()
        if isinstance(node, ast.RangeVar):
            if node.schemaname in (None, "public"):
                found.add(node.relname)
        elif isinstance(node, ast.Node):
            stack.extend(getattr(node, name) for name in node)
        elif isinstance(node, tuple | list):
            stack.extend(node)
    return found


@dataclass(frozen=True)
class SessionOptions:
    """Who a session serves and the limits its server set: given once, at login, by the wire
    server (``Session.configure``); an embedded connection keeps these defaults."""

    user: str = "reeldb"
    database: str = "reeldb"
    rights: Rights = FULL
    backend_pid: int | None = None  # None: this process's id
    statement_timeout_ms: int = 0  # the server's default; SET statement_timeout overrides it
    server_settings: Mapping[str, str] = field(default_factory=dict)  # SHOW-able, not SET-able


class Session(VersioningMixin):
    def __init__(self, catalog: Catalog, branch: str | None = "main", at: str | None = None, *,
                 file_access: bool = False, memory_limit: str | None = None):
        self.catalog = catalog
        self.memory_limit = memory_limit  # DuckDB's, and the bound on one value (sql/limits.py)
        self.engine = Engine(catalog.reader, file_access=file_access, memory_limit=memory_limit)
        if at is not None:
            self.branch: str | None = None
            self.pinned: str | None = catalog.resolve(at)
        else:
            catalog.head(branch or "main")  # the branch must exist
            self.branch, self.pinned = branch or "main", None
        self.rights: Rights = FULL  # what the login may do (the server sets a user's at login)
        self.txn: Transaction | None = None  # explicit (BEGIN ... COMMIT)
        self._auto: Transaction | None = None  # the statement's own, outside BEGIN
        self.failed = False
        self._savepoints: list[tuple[str, Any, Any]] = []  # (name, transaction state, settings), oldest first
        self.notices: list[str] = []
        self._bound_commit: str | None = None
        self._bound_names: set[str] | None = set()  # bound at _bound_commit; None: all
        self._stmt_names: set[str] | None = None  # tables the running statement names
        self._ref_rels: dict[tuple[str, str], str] = {}  # (commit, table) -> relation
        self._ref_seq = 0
        self.statement_time = dt.datetime.now(dt.timezone.utc)  # statement_timestamp()
        self.implicit = False  # the open transaction is a batch's, not BEGIN's (begin_implicit)
        # what Postgres clients see of the connection (the server sets them at login)
        self.user = "reeldb"
        self.database = "reeldb"
        self.backend_pid = os.getpid()
        self.query_text = ""  # the statement running, and xact_start: as pg_stat_activity shows them
        self.xact_start: dt.datetime | None = None
        self.settings: dict[str, str] = {}  # SET name = value, reported by SHOW and current_setting
        self.settings_undo = Undo()  # SET is transactional: undone by ROLLBACK
        # server configuration a client may SHOW but not SET; the server fills in its own
        self.server_settings: dict[str, str] = dict(SHOWN_SERVER)
        self.statement_timeout_ms = 0
        self.statement_deadline: float | None = None  # time.monotonic() the running statement must end by
        self.cancel_requested = False  # a CancelRequest came for the running statement
        self.default_characteristics = Characteristics()  # SET SESSION CHARACTERISTICS AS TRANSACTION ...
        self.txn_characteristics: Characteristics | None = None  # the open transaction's
        self.cursors: dict[str, cursors.Cursor] = {}  # DECLARE name -> its rows
        self.prepared: dict[str, prepared.PreparedStatement] = {}  # the wire protocol's, by name ("": unnamed)
        self.notifications = notify.new_queue()  # (sender pid, channel, payload) for LISTEN
        self.on_notify: Callable[[], None] | None = None  # called (any thread) when one arrives
        self.outbox: list[tuple[str, str]] = []  # NOTIFY of the open transaction
        self.describing = False  # running a statement only for its result's columns: no side effects
        self.temp_tables: dict[str, Any] = {}  # CREATE TEMPORARY TABLE name -> its ON COMMIT action
        self.temp_views: dict[str, dict] = {}  # CREATE TEMPORARY VIEW name -> its definition (views.py)
        self.large_objects = large_objects.Descriptors()  # lo_open's, until the transaction ends
        self.pg = PgCatalog(self)

    def configure(self, options: SessionOptions) -> None:
        """Apply the login's options, before the session's first statement."""
        if self.query_text or self.in_transaction:
            raise errors.InterfaceError("session options are set once, before the first statement")
        self.user, self.database, self.rights = options.user, options.database, options.rights
        if options.backend_pid is not None:
            self.backend_pid = options.backend_pid
        self.statement_timeout_ms = options.statement_timeout_ms
        self.server_settings.update(options.server_settings)

    # -- state -------------------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return self.txn is not None

    def head(self) -> str:
        if self.pinned is not None:
            return self.pinned
        assert self.branch is not None
        return self.catalog.head(self.branch)

    @property
    def open_txn(self) -> Transaction | None:
        """The transaction the current statement writes in: BEGIN's, or the statement's own."""
        return self.txn or self._auto

    def catalog_objects(self) -> dict[str, Any]:
        """Schemas, types, sequences and comments of the state the session sees
        (catalog/objects.py): the open transaction's, else the head's."""
        txn = self.txn or self._auto
        return txn.objects if txn is not None else self.catalog.objects(self.head())

    def statement_objects(self) -> dict[str, Any]:
        """The catalog objects of the state the running statement is bound to, without
        reading the branch's head again (the open transaction's, else the bound commit's)."""
        txn = self.txn or self._auto
        if txn is not None:
            return txn.objects
        if self._bound_commit is not None:
            return self.catalog.commit(self._bound_commit).objects
        return self.catalog_objects()

    def current_tables(self) -> dict[str, TableManifest]:
        txn = self.txn or self._auto
        if txn is not None:
            return txn.tables
        return self.catalog.snapshot(self.head())

    @property
    def characteristics(self) -> Characteristics:
        return self.txn_characteristics or self.default_characteristics

    def write_txn(self) -> Transaction:
        self.authorize("write", branch=None)
        if self.characteristics.read_only:
            raise errors.ReadOnlySqlTransaction("cannot execute a write in a read-only transaction")
        if self.pinned is not None:
            raise errors.ReadOnlySqlTransaction(
                "cannot execute a write in a read-only transaction: this connection reads a fixed commit"
            )
        if self.txn is not None:
            return self.txn
        if self._auto is None:
            # the statement writes on the commit it was bound to (one ref read fewer; a
            # head that moved since is caught by the commit's compare-and-swap)
            base = self._bound_commit if self._bound_commit is not None else self.head()
            self._auto = Transaction(self.catalog, self.branch, base, after_publish=maybe_compact)
            # the statement reads what it writes on
            self.engine.bind_snapshot(self._auto.tables, only=self._stmt_names)
            self._bound_commit = None
        return self._auto

    def finish_write(self) -> None:
        """Statement done: publish it unless inside BEGIN."""
        if self._auto is not None:
            foreign_keys.check_transaction(self, self._auto.tables, _changed_tables(self._auto))
            txn, self._auto = self._auto, None
            txn.commit()

    def notice(self, msg: str) -> None:
        self.notices.append(msg)

    def bind(self, names: set[str] | None = None) -> None:
        """Register with DuckDB the tables a statement sees: those it names, or all when
        ``names`` is None. Only their manifests and fragments are read, so a query over
        one table of many costs one table's reads (a cold start on object storage)."""
        txn = self.txn or self._auto
        if txn is not None:
            self.engine.bind_snapshot(txn.tables, only=names)
            self._bound_commit = None
            return
        head = self.head()
        if head != self._bound_commit:
            self._bound_names = set()
        elif self._bound_names is None or (names is not None and names <= self._bound_names):
            return
        self.engine.bind_snapshot(self.catalog.snapshot(head), only=names)
        self._bound_commit = head
        self._bound_names = None if names is None or self._bound_names is None else self._bound_names | names

    @property
    def statement_tables(self) -> set[str] | None:
        """The branch's tables the running statement names (None: it may read any)."""
        return self._stmt_names

    @contextlib.contextmanager
    def statement(self, names: set[str] | None) -> Iterator[None]:
        """Bound for a statement that names ``names`` (None: every table), while it runs:
        a write it makes binds the same tables on its transaction."""
        self._stmt_names = names
        try:
            self.bind(names)
            yield
        finally:
            self._stmt_names = None

    # -- execution -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Any = None) -> Result:
        with self.failing():
            text, binder = compile_params(sql, params)
            values = binder(params) if params is not None or binder.count else []
        return self.execute_parsed(text, values)

    @contextlib.contextmanager
    def failing(self) -> Iterator[None]:
        """Any error inside fails the open transaction (as every error does in Postgres:
        later statements get 25P02 and COMMIT rolls back), even one raised before a
        statement runs (a syntax error, a bad parameter, an aborted COPY)."""
        try:
            yield
        except BaseException:
            self.fail_transaction()
            raise

    @contextlib.contextmanager
    def one_transaction(self, needed: bool = True) -> Iterator[None]:
        """The work inside is one transaction: the open one, else one begun here that
        commits at the end (rolled back on any error). ``needed=False``: begin none."""
        own = needed and self.txn is None
        if own:
            self.begin()
        try:
            yield
        except BaseException:
            if own:
                self.rollback()
            raise
        if own:
            self.commit()

    def fail_transaction(self) -> None:
        """Put the open transaction, if any, in the failed state."""
        if self.txn is not None:
            self.failed = True

    def execute_parsed(self, text: str, values: list[Any], param_rows: list[list[Any]] | None = None) -> Result:
        self.notices = []
        self.query_text = text
        self.statement_time = dt.datetime.now(dt.timezone.utc)
        m = _OPTIMIZE.match(text)
        if m:  # not Postgres syntax, so pglast cannot parse it
            with self.failing():
                done = self.optimize(m.group(1))
            return Result(status="OPTIMIZE", rowcount=sum(c["rows_rewritten"] for c in done))
        with self.failing():
            stmts = parse(text)
        if not stmts:
            return Result(status="EMPTY")
        result = Result()
        for raw in stmts:
            result.close()  # only the last statement's rows are returned: an earlier one's are not read
            try:
                result = self._run(raw.stmt, values, param_rows)
            except RecursionError:  # the parser bounds depth; this is the net under it
                raise errors.StatementTooComplex(
                    "stack depth limit exceeded: the statement nests too deeply") from None
        result.notices = self.notices
        return result

    def executemany(self, sql: str, seq: Any) -> Result:
        rows = list(seq)
        if not rows:
            return Result(rowcount=0)
        with self.failing():
            text, binder = compile_params(sql, rows[0])
            bound = [binder(r) for r in rows]
            stmts = parse(text)
        if len(stmts) == 1 and isinstance(stmts[0].stmt, ast.InsertStmt) and stmts[0].stmt.returningClause is None:
            return self.execute_parsed(text, bound[0], param_rows=bound)
        total = 0
        with self.one_transaction():
            for values in bound:
                r = self.execute_parsed(text, values)
                total += max(r.rowcount, 0)
        return Result(rowcount=total, status="")

    def batchable(self, sql: str) -> bool:
        """Whether ``sql`` is one ``INSERT ... VALUES (row)`` without RETURNING, which
        ``execute_batch`` can run for many parameter rows as one write."""
        try:
            stmts = parse(sql)
        except errors.Error:
            return False
        if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.InsertStmt):
            return False
        ins = stmts[0].stmt
        sel = ins.selectStmt
        return (ins.returningClause is None and ins.onConflictClause is None and ins.withClause is None
                and sel is not None and sel.valuesLists is not None and len(sel.valuesLists) == 1
                and not sel.fromClause)

    def execute_batch(self, sql: str, rows: list[list[Any]]) -> Result | None:
        """A ``batchable`` INSERT for each row of parameters, in the open transaction, as
        one write (one fragment, one uniqueness check) instead of one per row: the wire's
        pipelined Bind/Execute of one prepared INSERT. When it fails, the transaction is
        put back as it was and None is returned, so the caller can run the rows one at a
        time and report the failing one as PostgreSQL would (the effect is the same: an
        error fails the transaction, and a savepoint taken before the rows undoes them all)."""
        if self.txn is None or self.failed:
            raise errors.InFailedSqlTransaction("execute_batch needs an open transaction that has not failed")
        state = self.txn.savepoint(), self.settings_undo.savepoint(self)
        try:
            text, binder = compile_params(sql, rows[0])
            bound = [binder(r) for r in rows]
            return self.execute_parsed(text, bound[0], param_rows=bound)
        except errors.Error as e:
            if isinstance(e, errors.QueryCanceled) and not isinstance(e, errors.StatementTimeout):
                raise  # the client cancelled: not retried row by row
            # (statement_timeout counts per row in PostgreSQL: one at a time, the rows may fit)
            self.txn.rollback_to(state[0])
            self.settings_undo.rollback_to(self, state[1])
            self.failed = False
            return None

    def _run(self, stmt: ast.Node, params: list[Any], param_rows: list[list[Any]] | None) -> Result:
        if isinstance(stmt, ast.TransactionStmt):
            return self._transaction_stmt(stmt)
        if self.failed:
            raise errors.InFailedSqlTransaction(
                "current transaction is aborted, commands ignored until end of transaction block"
            )
        timer = self._arm_timeout()
        try:
            stmt = type_declared(stmt, params)
            resolve_namespaces(stmt, lambda: namespace_schemas(self))
            names = referenced_tables(stmt)
            try:
                with self.statement(names):
                    if views.expand(self, stmt) and names is not None:  # a view read is its SELECT
                        self._stmt_names = names = referenced_tables(stmt)
                        self.bind(names)
                    return self._dispatch_checked(stmt, params, param_rows)
            except errors.UndefinedTable:
                if names is None or not isinstance(stmt, ast.SelectStmt):
                    raise
                with self.statement(None):  # named in a way the walk missed: bind all, once
                    return self._dispatch_checked(stmt, params, param_rows)
        except errors.QueryCanceled:
            self._disarm(timer)
            if self._auto is not None:
                self._auto.close()
            self._auto = None
            if self.txn is not None:
                self.failed = True
            if timer is not None and timer.fired:
                raise errors.StatementTimeout("canceling statement due to statement timeout") from None
            raise
        except BaseException:
            if self._auto is not None:  # nothing of a failed statement is published
                self._auto.close()
            self._auto = None
            if self.txn is not None:
                self.failed = True
            raise
        finally:
            self._disarm(timer)

    def _dispatch_checked(self, stmt: ast.Node, params: list[Any], param_rows: list[list[Any]] | None) -> Result:
        """Run a statement inside BEGIN; at its end, its foreign keys hold (Postgres checks
        them per statement; outside BEGIN, ``finish_write`` checks before the commit)."""
        txn = self.txn
        before = foreign_keys.state(txn.tables) if txn is not None else None
        result = self._dispatch(stmt, params, param_rows)
        if txn is not None and self.txn is txn:
            foreign_keys.check_statement(self, txn.tables, before)
        return result

    def start_deadline(self) -> None:
        """statement_timeout runs from now: for a statement, and for each Execute of a
        portal (as in PostgreSQL)."""
        ms = self.statement_timeout_ms
        self.statement_deadline = time.monotonic() + ms / 1000 if ms > 0 else None
        self.cancel_requested = False  # a cancel that came while idle does not carry over

    def check_deadline(self) -> None:
        """57014 once the statement is past its statement_timeout or was cancelled: front
        ends call this between chunks of the work they do after DuckDB (encoding and
        sending a result)."""
        if self.cancel_requested:
            self.cancel_requested = False
            raise errors.QueryCanceled("canceling statement due to user request")
        if self.statement_deadline is not None and time.monotonic() > self.statement_deadline:
            raise errors.StatementTimeout("canceling statement due to statement timeout")

    def cancel(self) -> None:
        """A CancelRequest (any thread): DuckDB is interrupted, and so is sending the
        result at its next chunk."""
        self.cancel_requested = True
        self.engine.con.interrupt()

    def _arm_timeout(self) -> _Timeout | None:
        """statement_timeout: DuckDB is interrupted when the statement runs too long; the
        deadline stays for what front ends do with the result (``check_deadline``)."""
        self.start_deadline()
        if self.statement_timeout_ms <= 0:
            return None
        timer = _Timeout(self.statement_timeout_ms / 1000, self.engine.con.interrupt)
        timer.start()
        return timer

    @staticmethod
    def _disarm(timer: _Timeout | None) -> None:
        if timer is not None:
            timer.cancel()

    def _dispatch(self, stmt: ast.Node, params: list[Any], param_rows: list[list[Any]] | None) -> Result:
        handler = HANDLERS.get(type(stmt))
        if handler is None:
            raise errors.FeatureNotSupported(f"{type(stmt).__name__} statements are not supported")
        return handler(self, stmt, params, param_rows)

    def _select(self, stmt: ast.SelectStmt, params: list[Any]) -> Result:
        name_columns(stmt)
        expand_set_returning(stmt, params)
        called = self.versioning_call(stmt, params)
        if called is not None:
            return called
        called = large_objects.select_call(self, stmt, params)
        if called is not None:
            return called
        registered = self._table_functions(stmt, params)
        kinds = self._column_kinds()
        planned = result_types.plan(stmt, kinds)
        try:  # tables registered for the statement go after it: its rows are read now
            got, desc = self.run_select(stmt, params, stream=not registered and not self.describing)
        finally:
            for name in registered:
                self.engine.unregister(name)
        desc = result_types.mark(planned, desc, kinds)
        if isinstance(got, ResultStream):
            return Result(None, desc, -1, "SELECT", stream=got, on_error=self.fail_transaction)
        return Result(got, desc, got.num_rows, f"SELECT {got.num_rows}")

    def _write(self, stmt: ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt, params: list[Any],
               param_rows: list[list[Any]] | None) -> Result:
        if isinstance(stmt, ast.InsertStmt) and stmt.selectStmt is not None:
            expand_set_returning(stmt.selectStmt, params)
        if temp.target(stmt) in self.temp_tables:
            return temp.run(self, stmt, params, param_rows)
        if stmt.returningClause is None:
            return self._dml(stmt, params, param_rows)
        kinds = self._column_kinds()
        planned = result_types.plan(stmt, kinds)
        result = self._dml(stmt, params, param_rows)
        result.description = result_types.mark(planned, result.description, kinds)
        return result

    def _dml(self, stmt: ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt, params: list[Any],
             param_rows: list[list[Any]] | None) -> Result:
        if isinstance(stmt, ast.InsertStmt):
            return dml.insert(self, stmt, params, param_rows)
        if isinstance(stmt, ast.UpdateStmt):
            return dml.update(self, stmt, params)
        return dml.delete(self, stmt, params)

    def _truncate(self, stmt: ast.TruncateStmt) -> Result:
        """TRUNCATE t [, ...]: a DELETE of every row of each (one commit for all of them).
        RESTART IDENTITY is refused: SERIAL sequences are global across branches."""
        if stmt.restart_seqs:
            raise errors.FeatureNotSupported("TRUNCATE ... RESTART IDENTITY is not supported: reeldb's SERIAL "
                                             "sequences are global across branches and never restart")
        views.check_truncate(self, [ddl.table_name(rel, self) for rel in stmt.relations])
        foreign_keys.check_truncate(self.current_tables(), [ddl.table_name(rel, self) for rel in stmt.relations],
                                    stmt.behavior == DropBehavior.DROP_CASCADE)
        with self.one_transaction(needed=len(stmt.relations) > 1):
            for rel in stmt.relations:
                self._dispatch(ast.DeleteStmt(relation=rel), [], None)
        return Result(status="TRUNCATE TABLE")

    def _drop(self, stmt: ast.DropStmt) -> Result:
        """DROP TABLE: temporary tables go here and now; the branch's in its transaction."""
        if stmt.removeType == ObjectType.OBJECT_INDEX:
            return indexes.drop(self, stmt)
        if stmt.removeType == ObjectType.OBJECT_EXTENSION:
            return ddl.drop_extension(self, stmt)
        if stmt.removeType == ObjectType.OBJECT_SCHEMA:
            views.before_drop_schema(self, stmt)
            return namespaces.drop_schema(self, stmt)
        if stmt.removeType in objects_ddl.DROPS:
            return objects_ddl.drop(self, stmt)
        if stmt.removeType in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
            return views.drop(self, stmt)
        if stmt.removeType == ObjectType.OBJECT_TABLE:
            views.before_drop_tables(self, stmt)
        if stmt.removeType == ObjectType.OBJECT_TABLE and self.temp_tables:
            ours = [o for o in stmt.objects if o[-1].sval in self.temp_tables
                    and (len(o) == 1 or o[-2].sval == "pg_temp")]
            temp.drop(self, [o[-1].sval for o in ours])
            stmt.objects = tuple(o for o in stmt.objects if o not in ours)
            if not stmt.objects:
                return Result(status="DROP TABLE")
        return ddl.drop(self, stmt)

    def _vacuum(self, stmt: ast.VacuumStmt) -> Result:
        """VACUUM [FULL] [table]: compact (the table, or all), then delete unreachable files.
        ANALYZE (the same statement to the parser) keeps no statistics here: it only checks
        its tables exist, and never vacuums."""
        rels = [r.relation.relname for r in (stmt.rels or ())]
        if not stmt.is_vacuumcmd:
            tables = self.current_tables()
            for name in rels:
                if name not in tables:
                    raise errors.UndefinedTable(f'relation "{name}" does not exist')
            self.notice("ANALYZE has no effect in reeldb: the engine keeps its own statistics")
            return Result(status="ANALYZE")
        self._no_txn("run VACUUM")
        self.authorize("vacuum")  # before compacting: a refused VACUUM changes nothing
        for name in rels or [None]:
            if self.branch is not None:
                self.optimize(name)
        out = self.vacuum()
        return Result(status="VACUUM", rowcount=out["files"])

    def _table_functions(self, stmt: ast.SelectStmt, params: list[Any]) -> list[str]:
        """Replace ``FROM reeldb_log()`` (and friends) by registered Arrow tables."""
        names: list[str] = []
        _replace_functions(self, stmt, params, names)
        return names

    # -- SELECT ------------------------------------------------------------------------------------
    def run_select(self, stmt: ast.SelectStmt, params: list[Any], *,
                   stream: bool = False) -> tuple[pa.Table | ResultStream, list]:
        """A SELECT's rows: held where reeldb computes them itself (vector search, point
        lookups: small by construction); with ``stream``, a long result of DuckDB's comes
        back as a ``ResultStream``. ``SELECT FROM t``: PostgreSQL's rows of no columns
        (DuckDB refuses an empty select list: counted with a constant, then dropped)."""
        if not stmt.targetList and not stmt.valuesLists and stmt.larg is None:
            stmt.targetList = (ast.ResTarget(name="_", val=ast.A_Const(val=ast.Integer(ival=1))),)
            table, _ = self.run_query(stmt, params)
            return table.drop_columns(table.column_names), []
        p = vector_plan.plan(self, stmt, params)
        if p is not None:
            got = vector_plan.run(self, stmt, p, params)
            if got is not None:
                return got
        got = point.run(self, stmt, params)
        if got is not None:
            return got
        if stream:
            sql = finish(deparse(self.rewriter(params)(stmt)))
            return self.engine.query(sql, self.duck_params(params, sql), self.statement_deadline)
        return self.run_query(stmt, params)

    def search(self, table: str, column: str, queries: np.ndarray, k: int, where: str | None, metric: str,
               columns: list[str] | None) -> list[tuple[pa.Table, list]]:
        if self.failed:
            raise errors.InFailedSqlTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        with self.statement({table}):
            if table not in self.engine.bound:
                raise errors.UndefinedTable(f'relation "{table}" does not exist')
            return vector_plan.search(self, table, column, queries, k, where, metric, columns)

    def run_query(self, stmt: ast.Node, params: list[Any]) -> tuple[pa.Table, list]:
        """A query's rows; when describing, none: only its columns (a Describe's NULL
        parameters must not reach a function that refuses NULL, as json_build_object's keys)."""
        sql = finish(deparse(self.rewriter(params)(stmt)))
        return self.engine.arrow(sql, self.duck_params(params, sql), columns_only=self.describing)

    def rewriter(self, params: list[Any], *, stored: bool = False) -> Rewriter:
        """``stored``: for an expression kept and run later (a temporary table's DEFAULT), so
        now() stays a call instead of this statement's clock."""
        rw = Rewriter(self._vector_dims(), params, self._resolve_schema, set(self.engine.bound), self.pg,
                      file_access=self.engine.file_access, temporary=set(self.temp_tables),
                      clock=None if stored else (self.transaction_time(), self.statement_time))
        rw.kinds = self._column_kinds()
        return rw

    def transaction_time(self) -> dt.datetime:
        """now(): when the transaction began (BEGIN, or the statement outside one), so it
        stays the same for every statement of a transaction, as in PostgreSQL."""
        if self.txn is not None and self.xact_start is not None:
            return self.xact_start
        return self.statement_time

    def _column_kinds(self) -> dict[str, str | None]:
        """Column name -> its type's kind over the tables the statement names (all bound ones
        when it is not known), None where two disagree."""
        kinds: dict[str, str | None] = {}
        names = self._stmt_names
        for name, bt in list(self.engine.bound.items()):
            if names is not None and name not in names:
                continue
            for c in bt.manifest.schema.columns:
                kinds[c.name] = c.type.kind if kinds.get(c.name, c.type.kind) == c.type.kind else None
        return kinds

    def _vector_dims(self) -> dict[str, int | None]:
        dims: dict[str, int | None] = {}
        for bt in list(self.engine.bound.values()):
            for c in bt.manifest.schema.columns:
                if c.type.kind in ("vector", "halfvec", "sparsevec"):
                    d = c.type.row_shape[0]
                    dims[c.name] = d if dims.get(c.name, d) == d else None
        return dims

    def resolve_schema_ref(self, schema: str) -> str:
        """The commit a schema in SQL names (a branch, tag or commit: DESIGN.md, Versioning),
        once the user may read it; an unknown one is Postgres' unknown schema (3F000)."""
        try:
            return self.rights.check_read(self.catalog, schema, NEEDS["query"].action)
        except errors.UndefinedObject as e:
            ambiguous = "ambiguous" in str(e)
            raise errors.InvalidSchemaName(f'schema "{schema}" does not exist'
                                           + (f" ({e})" if ambiguous else "")) from None

    def check_copy(self, stmt: ast.CopyStmt) -> None:
        """A COPY a front end runs itself (the wire's COPY ... STDIN / STDOUT): 42809 when
        it names a view, as PostgreSQL answers, rather than reading the view's rows."""
        views.refuse_copy(self, stmt)

    def copy_into(self, schema: str | None) -> None:
        """Check that COPY ... FROM STDIN into ``schema`` writes this connection's branch:
        ``public`` (or no schema) and the branch's own name do; a tag or commit is read-only
        (25006); another branch is refused (0A000), since a session's writes are all
        transactions on its own branch."""
        if schema in (None, "public") or (self.pinned is None and schema == self.branch):
            return
        self.resolve_schema_ref(schema)
        if self.catalog.refs.branch(schema) is None:
            raise errors.ReadOnlySqlTransaction(f'cannot COPY into "{schema}": a tag or commit is read-only')
        raise errors.FeatureNotSupported(
            f'cannot COPY into branch "{schema}" from a connection on '
            + (f'branch "{self.branch}"' if self.pinned is None else f'commit "{self.pinned}"')
            + f": a connection writes only its own branch; SET reeldb.branch = '{schema}' first")

    def _resolve_schema(self, schema: str, table: str) -> str:
        cid = self.resolve_schema_ref(schema)
        key = (cid, table)
        rel = self._ref_rels.get(key)
        if rel is None:
            tables = self.catalog.snapshot(cid)
            if table not in tables:
                raise errors.UndefinedTable(f'relation "{schema}.{table}" does not exist')
            rel = internal_name(f"r{self._ref_seq}", table)
            self._ref_seq += 1
            self.engine.bind_table(rel, tables[table])
            self._ref_rels[key] = rel
            if len(self._ref_rels) > MAX_REF_RELATIONS:
                oldest = next(iter(self._ref_rels))
                self.engine.unbind(self._ref_rels.pop(oldest))
        return rel

    def relation_for(self, rv: ast.RangeVar) -> str:
        if rv.schemaname in (None, "public"):
            return rv.relname
        return self._resolve_schema(rv.schemaname, rv.relname)

    @staticmethod
    def duck_params(params: list[Any], sql: str) -> list[Any] | dict[str, Any] | None:
        """Only the parameters the final SQL still references (DuckDB counts them); by
        number where a rewrite consumed some (``$2`` without ``$1``)."""
        if not params or "$" not in sql:
            return None
        used = _param_numbers(sql)
        if not used:
            return None
        if max(used) > len(params):
            raise errors.UndefinedParameter(f"there is no parameter ${max(used)}")
        if max(used) != len(used):
            return {str(i): adapt_param(params[i - 1]) for i in sorted(used)}
        return [adapt_param(v) for v in params[: max(used)]]

    # -- defaults ---------------------------------------------------------------------------------
    def eval_default(self, col: Column) -> Any:
        assert col.default is not None
        sql = deparse(self.rewriter([])(parse(f"SELECT {col.default}")[0].stmt))
        try:
            table, _ = self.engine.arrow(sql)
        except errors.Error as e:
            raise type(e)(f'invalid default for column "{col.name}": {e}') from None
        return table.column(0)[0].as_py()

    def storable(self, col: Column, value: Any) -> Any:
        """A Python default value as JSON-able for the manifest (checked by the column type)."""
        from ..format.values import check_scalars

        arr = check_scalars(col.type, col.name, [value])
        v = arr[0].as_py()
        return v if isinstance(v, int | float | str | bool) or v is None else str(v)

    def default_values(self, tm: TableManifest, col: Column, n: int) -> list[Any]:
        if col.type.serial:
            start = self.catalog.sequence(tm.table_id, col.id, n)
            return list(range(start, start + n))
        if col.default is None:
            return [None] * n
        drawn = sequences.default_values(self, col.default, n)  # nextval('s'): a value per row
        if drawn is not None:
            return drawn
        low = col.default.lower().replace(" ", "")
        if low in ("now()", "current_timestamp", "localtimestamp", "transaction_timestamp()"):
            return [self.transaction_time()] * n
        return [self.eval_default(col)] * n

    @property
    def probe(self):
        from ..media.probe import probe_image, probe_video

        def probe(kind: str, data: bytes) -> dict:
            return probe_video(data) if kind == "video" else probe_image(data)

        return probe

    # -- transactions --------------------------------------------------------------------------
    def begin(self, options: tuple | None = None) -> None:
        if self.txn is not None and self.implicit:  # BEGIN inside a batch: the block is now explicit
            self.implicit = False
            self.txn_characteristics = with_options(self.default_characteristics, options)
            return
        if self.txn is not None:
            self.notice("there is already a transaction in progress")
            return
        self.txn_characteristics = with_options(self.default_characteristics, options)
        if self.pinned is not None:
            self.txn = Transaction(self.catalog, None, self.pinned)
        else:
            self.txn = Transaction(self.catalog, self.branch, self.head(), after_publish=maybe_compact)
        self.failed = False
        self.xact_start = dt.datetime.now(dt.timezone.utc)
        self.settings_undo.begin(self)

    def begin_implicit(self) -> None:
        """The statements of one batch (a query string of several statements, or the extended
        protocol's messages up to Sync) run as one transaction, as in PostgreSQL: an error in
        one rolls back the others. A BEGIN among them makes the block explicit."""
        if self.txn is None:
            self.begin()
            self.implicit = True

    def end_implicit(self) -> None:
        """The batch is over: its implicit transaction commits, or rolls back if it failed."""
        if self.txn is not None and self.implicit:
            self.commit()
        self.implicit = False

    def leave_implicit(self, what: str) -> None:
        """Before a statement that cannot run in a transaction block (a merge, a branch
        switch): an implicit transaction that changed nothing yet steps aside, as a batch of one
        statement would not have opened it; one that did is 25001."""
        if self.txn is not None and self.implicit:
            if self.txn.dirty or self.failed:
                raise errors.ActiveSqlTransaction(f"cannot {what} inside a transaction block")
            self.rollback()

    def commit(self, message: str = "", author: str | None = None) -> str | None:
        if self.txn is not None and not self.failed and self.txn.dirty:
            try:  # writes made through the Python API are checked here
                foreign_keys.check_transaction(self, self.txn.tables, _changed_tables(self.txn))
            except BaseException:
                self.rollback()
                raise
        txn, failed = self.txn, self.failed
        self.txn, self.failed = None, False
        self.implicit = False
        self._savepoints = []
        self.txn_characteristics = None
        if txn is not None:
            temp.end_of_transaction(self)
            cursors.end_of_transaction(self, committed=not failed)
            notify.end_of_transaction(self, committed=not failed)
            self.settings_undo.end(self, committed=not failed)
            advisory.end_of_transaction(self)
            large_objects.end_of_transaction(self)
        if txn is None:
            return None
        if failed:
            txn.close()
            return None  # COMMIT of a failed transaction rolls back, as in Postgres
        try:
            large_objects.before_commit(self, txn)  # the pages it wrote go to storage first
        except BaseException:
            txn.close()
            raise
        return txn.commit(message, author) if txn.dirty else txn.base

    def rollback(self) -> None:
        if self.txn is not None:
            self.txn.close()
            temp.end_of_transaction(self)
            cursors.end_of_transaction(self, committed=False)
            notify.end_of_transaction(self, committed=False)
            self.settings_undo.end(self, committed=False)
            advisory.end_of_transaction(self)
            large_objects.end_of_transaction(self)
        self.txn, self.failed = None, False
        self.implicit = False
        self._savepoints = []
        self.txn_characteristics = None

    def _transaction_stmt(self, stmt: ast.TransactionStmt) -> Result:
        k = stmt.kind
        if k in (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START):
            self.begin(stmt.options)
            return Result(status="BEGIN")
        if k == TransactionStmtKind.TRANS_STMT_COMMIT:
            if self.txn is None or self.implicit:  # PostgreSQL warns, and ends a batch's transaction
                self.notice("there is no transaction in progress")
            if self.txn is None:
                return Result(status="COMMIT")
            failed = self.failed
            self.commit()
            return Result(status="ROLLBACK" if failed else "COMMIT")
        if k == TransactionStmtKind.TRANS_STMT_ROLLBACK:
            if self.txn is None or self.implicit:
                self.notice("there is no transaction in progress")
            self.rollback()
            return Result(status="ROLLBACK")
        if k in (TransactionStmtKind.TRANS_STMT_SAVEPOINT, TransactionStmtKind.TRANS_STMT_RELEASE,
                 TransactionStmtKind.TRANS_STMT_ROLLBACK_TO):
            return self._savepoint(k, stmt.savepoint_name or "")
        raise errors.FeatureNotSupported(f"{k.name[11:]} is not supported")

    def _savepoint(self, kind: TransactionStmtKind, name: str) -> Result:
        """SAVEPOINT / RELEASE / ROLLBACK TO, as in Postgres: names may repeat (the newest
        wins); rolling back to one keeps it and clears the failed state."""
        if self.txn is None or self.implicit:
            raise errors.NoActiveSqlTransaction(f"{_SAVEPOINT_VERBS[kind]} can only be used in transaction blocks")
        if kind == TransactionStmtKind.TRANS_STMT_SAVEPOINT:
            if self.failed:
                raise errors.InFailedSqlTransaction(
                    "current transaction is aborted, commands ignored until end of transaction block")
            self._savepoints.append((name, self.txn.savepoint(), self.settings_undo.savepoint(self)))
            self.large_objects.savepoint()
            return Result(status="SAVEPOINT")
        at = next((i for i in range(len(self._savepoints) - 1, -1, -1) if self._savepoints[i][0] == name), None)
        if at is None:
            self.failed = True
            raise errors.InvalidSavepointSpecification(f'savepoint "{name}" does not exist')
        if kind == TransactionStmtKind.TRANS_STMT_RELEASE:
            if self.failed:
                raise errors.InFailedSqlTransaction(
                    "current transaction is aborted, commands ignored until end of transaction block")
            del self._savepoints[at:]
            self.large_objects.release(at)
            return Result(status="RELEASE")
        del self._savepoints[at + 1:]
        self.txn.rollback_to(self._savepoints[at][1])
        self.settings_undo.rollback_to(self, self._savepoints[at][2])
        self.large_objects.rollback_to(at)
        self.failed = False
        return Result(status="ROLLBACK")

    # -- misc statements ------------------------------------------------------------------------
    def _create_table_as(self, stmt: ast.CreateTableAsStmt, params: list[Any]) -> Result:
        from ..format.manifest import Schema
        from ..format.types import column_type

        kinds = self._column_kinds()
        expand_set_returning(stmt.query, params)
        planned = result_types.plan(stmt.query, kinds)
        table, desc = self.run_query(stmt.query, params)
        desc = result_types.mark(planned, desc, kinds)  # a citext column stays citext
        into = stmt.into
        name = ddl.table_name(into.rel)
        txn = self.write_txn()
        if name in txn.tables:
            if stmt.if_not_exists:
                return Result(status="SELECT 0")
            raise errors.DuplicateTable(f'relation "{name}" already exists')
        cols = []
        names = [c.sval for c in into.colNames] if into.colNames else [d[0] for d in desc]
        for i, (nm, d) in enumerate(zip(names, desc, strict=False)):
            cols.append(Column(i + 1, nm, _type_of_result(column_type, str(d[1]), table.schema.field(i).type)))
        txn.create_table(name, Schema(tuple(cols), (), (), len(cols) + 1))
        n = table.num_rows
        dml.write_rows(self, name, {nm: table.column(i) for i, nm in enumerate(names)}, n)
        self.finish_write()
        return Result(rowcount=n, status=f"SELECT {n}")

    def _explain(self, stmt: ast.ExplainStmt, params: list[Any]) -> Result:
        q = stmt.query
        if isinstance(q, ast.SelectStmt):
            p = vector_plan.plan(self, q, params)
            if p is not None:
                lines = vector_plan.explain(self, q, p, params)
                return Result(pa.table({"QUERY PLAN": lines}), [("QUERY PLAN", "VARCHAR")], len(lines), "EXPLAIN")
        was, self.describing = self.describing, True  # EXPLAIN runs nothing: no set_config, no signals
        try:
            sql = "EXPLAIN " + finish(deparse(self.rewriter(params)(q)))
        finally:
            self.describing = was
        table, _ = self.engine.arrow(sql, self.duck_params(params, sql))
        lines = [ln for row in table.column(1).to_pylist() for ln in str(row).splitlines()]
        return Result(pa.table({"QUERY PLAN": lines}), [("QUERY PLAN", "VARCHAR")], len(lines), "EXPLAIN")

    def _variable(self, stmt: ast.Node) -> Result:
        """SET / RESET / SHOW: settings are an allow-list (``settings``); none reaches DuckDB."""
        from . import settings as registry
        from .versioning import _const

        if isinstance(stmt, ast.VariableShowStmt):
            name = stmt.name.lower()
            values = settings(self)
            if name == "all":
                table = registry.show_all(self)
                return Result(table, [(c, "VARCHAR") for c in table.column_names], table.num_rows, "SHOW")
            value = values.get(name)
            if value is None:
                raise errors.UndefinedObject(f'unrecognized configuration parameter "{stmt.name}"')
            return Result(pa.table({name: [value]}), [(name, "VARCHAR")], 1, "SHOW")
        kind = stmt.kind
        if kind == VariableSetKind.VAR_RESET_ALL:
            registry.reset_all(self)
            return Result(status="RESET")
        name = (stmt.name or "").lower()
        if kind == VariableSetKind.VAR_SET_MULTI:
            if name == "transaction":
                if self.txn is None:
                    self.notice("SET TRANSACTION can only be used in transaction blocks")
                else:
                    self.txn_characteristics = with_options(self.characteristics, stmt.args)
                return Result(status="SET")
            if name == "session characteristics":
                self.default_characteristics = with_options(self.default_characteristics, stmt.args)
                return Result(status="SET")
            raise errors.FeatureNotSupported(f"SET {stmt.name} is not supported")
        if kind == VariableSetKind.VAR_SET_CURRENT:
            raise errors.FeatureNotSupported(f"SET {stmt.name} FROM CURRENT is not supported")
        if name == "reeldb.branch":
            if kind != VariableSetKind.VAR_SET_VALUE or not stmt.args or len(stmt.args) != 1:
                raise errors.InvalidParameterValue("SET reeldb.branch takes one branch, tag or commit")
            self.checkout(str(_const(stmt.args[0], [])))
            return Result(status="SET")
        value = None
        if kind == VariableSetKind.VAR_SET_VALUE:
            value = ", ".join(str(_const(a, [])) for a in stmt.args or ())
        registry.assign(self, name, value, stmt.name, local=stmt.is_local)
        return Result(status="RESET" if kind == VariableSetKind.VAR_RESET else "SET")


class _Timeout(threading.Timer):
    def __init__(self, seconds: float, interrupt: Callable[[], None]):
        super().__init__(seconds, self._fire)
        self.daemon = True
        self.fired = False
        self._interrupt = interrupt

    def _fire(self) -> None:
        self.fired = True
        self._interrupt()


Handler = Callable[[Session, Any, list[Any], "list[list[Any]] | None"], Result]


def _no_params(run: Callable[[Session, Any], Result]) -> Handler:
    return lambda s, stmt, params, rows: run(s, stmt)


def _with_params(run: Callable[[Session, Any, list[Any]], Result]) -> Handler:
    return lambda s, stmt, params, rows: run(s, stmt, params)


def _create(s: Session, stmt: ast.CreateStmt) -> Result:
    views.check_free(s, stmt.relation.relname, temp.is_temporary(stmt))
    return temp.create(s, stmt) if temp.is_temporary(stmt) else ddl.create_table(s, stmt)


def _create_as(s: Session, stmt: ast.CreateTableAsStmt, params: list[Any]) -> Result:
    if stmt.objtype == ObjectType.OBJECT_MATVIEW:
        return views.create_materialized(s, stmt, params, s._create_table_as)
    views.check_free(s, stmt.into.rel.relname, stmt.into.rel.relpersistence == "t")
    if stmt.into.rel.relpersistence == "t":
        return temp.create_as(s, stmt, params)
    return s._create_table_as(stmt, params)


def _alter_table(s: Session, stmt: ast.AlterTableStmt) -> Result:
    views.before_alter_table(s, stmt)
    return ddl.alter_table(s, stmt)


def _rename(s: Session, stmt: ast.RenameStmt) -> Result:
    if views.before_rename(s, stmt):
        return Result(status="ALTER MATERIALIZED VIEW" if stmt.renameType == ObjectType.OBJECT_MATVIEW
                      else "ALTER VIEW" if stmt.renameType == ObjectType.OBJECT_VIEW else "ALTER TABLE")
    return ddl.rename(s, stmt)


def _listen(s: Session, stmt: ast.ListenStmt) -> Result:
    notify.HUB.listen(s, stmt.conditionname)
    return Result(status="LISTEN")


def _unlisten(s: Session, stmt: ast.UnlistenStmt) -> Result:
    notify.HUB.unlisten(s, stmt.conditionname)
    return Result(status="UNLISTEN")


def _notify(s: Session, stmt: ast.NotifyStmt) -> Result:
    notify.notify(s, stmt.conditionname, stmt.payload)
    return Result(status="NOTIFY")


# statement class -> its handler: each statement family lives in a module of its own, which
# takes the session as an argument and never imports it back
def _comment(s: Session, stmt: ast.CommentStmt, params: list[Any]) -> Result:
    """COMMENT ON LARGE OBJECT is kept by the large object; any other by objects_ddl."""
    if stmt.objtype == ObjectType.OBJECT_LARGEOBJECT:
        return large_objects.comment(s, stmt)
    return objects_ddl.run(s, stmt, params)


HANDLERS: dict[type, Handler] = {
    ast.SelectStmt: _with_params(Session._select),
    ast.InsertStmt: Session._write,
    ast.UpdateStmt: Session._write,
    ast.DeleteStmt: Session._write,
    ast.CreateStmt: _no_params(_create),
    ast.DropStmt: _no_params(Session._drop),
    ast.AlterTableStmt: _no_params(_alter_table),
    ast.RenameStmt: _no_params(_rename),
    ast.ViewStmt: _no_params(views.create_view),
    ast.RefreshMatViewStmt: _no_params(views.refresh),
    ast.CreateTableAsStmt: _with_params(_create_as),
    ast.ExplainStmt: _with_params(Session._explain),
    ast.VacuumStmt: _no_params(Session._vacuum),
    ast.VariableSetStmt: _no_params(Session._variable),
    ast.VariableShowStmt: _no_params(Session._variable),
    ast.ListenStmt: _no_params(_listen),
    ast.UnlistenStmt: _no_params(_unlisten),
    ast.NotifyStmt: _no_params(_notify),
    ast.DeclareCursorStmt: _with_params(cursors.declare),
    ast.FetchStmt: _no_params(cursors.fetch),
    ast.ClosePortalStmt: _no_params(cursors.close),
    ast.CreateExtensionStmt: _no_params(ddl.create_extension),
    ast.DeallocateStmt: _no_params(prepared.deallocate),
    ast.DiscardStmt: _no_params(discard.discard),
    ast.IndexStmt: _no_params(indexes.create),
    ast.CreateSchemaStmt: _no_params(namespaces.create_schema),
    ast.ReindexStmt: _no_params(indexes.reindex),
    ast.TruncateStmt: _no_params(Session._truncate),
    ast.GrantStmt: _no_params(large_objects.grant),
    **{kind: _with_params(objects_ddl.run) for kind in objects_ddl.STATEMENTS},
    ast.CommentStmt: _with_params(_comment),
}


_SAVEPOINT_VERBS = {TransactionStmtKind.TRANS_STMT_SAVEPOINT: "SAVEPOINT",
                    TransactionStmtKind.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
                    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT"}
_DURATION_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def _changed_tables(txn: Transaction) -> set[str]:
    """The ids of the tables whose rows or definition ``txn`` changed."""
    return {ch.table_id for ch in txn.changes.values()
            if ch.added or ch.deleted or ch.created or ch.schema is not None}


def parse_duration_ms(value: str) -> int:
    """A Postgres time setting ('5s', '250ms', '1min', 5000) -> milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", value.lower())
    if m is None or m.group(2) not in ("", *_DURATION_UNITS):
        raise errors.InvalidParameterValue(
            f'invalid value for parameter "statement_timeout": "{value}" (valid units: us, ms, s, min, h, d)')
    return int(float(m.group(1)) * _DURATION_UNITS.get(m.group(2), 1))


def _replace_functions(s: Session, sel: Any, params: list[Any], names: list[str]) -> None:
    """Every FROM clause of the statement, CTEs and subqueries included: reeldb's table
    functions become registered tables; any other function call stays for the allow-list."""
    selects = [n for n in walk(sel) if isinstance(n, ast.SelectStmt) and n.fromClause]
    for node in selects:
        node.fromClause = tuple(_replace_function(s, f, params, names) for f in node.fromClause)


def _replace_function(s: Session, node: Any, params: list[Any], names: list[str]) -> Any:
    if isinstance(node, ast.RangeFunction) and len(node.functions) == 1:
        fc = node.functions[0][0]
        if isinstance(fc, ast.FuncCall):
            table = s.table_function(fc, params)
            if table is not None:
                name = internal_name(f"fn{len(names)}")
                s.engine.register(name, table)
                names.append(name)
                alias = node.alias or ast.Alias(aliasname=fc.funcname[-1].sval)
                return ast.RangeVar(relname=name, inh=True, relpersistence="p", alias=alias)
    if isinstance(node, ast.JoinExpr):
        node.larg = _replace_function(s, node.larg, params, names)
        node.rarg = _replace_function(s, node.rarg, params, names)
    return node


_OPTIMIZE = re.compile(r"^\s*OPTIMIZE(?:\s+(?:TABLE\s+)?\"?([A-Za-z_][\w$]*)\"?)?\s*;?\s*$", re.IGNORECASE)


def _param_numbers(sql: str) -> set[int]:
    return {int(m) for m in re.findall(r"\$(\d+)", _strip_strings(sql))}


def _strip_strings(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _type_of_result(column_type: Any, duck: str, arrow_type: pa.DataType):
    from ..format.blobs import is_blob_struct
    from ..format.types import ColumnType

    d = duck.upper()
    if is_blob_struct(arrow_type):
        return ColumnType("bytea")
    simple = {"INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "FLOAT": "float4", "DOUBLE": "float8",
              "BOOLEAN": "bool", "VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp",
              "TIMESTAMP WITH TIME ZONE": "timestamptz", "UUID": "uuid", "JSON": "jsonb", "JSONB": "jsonb", "BLOB": "bytea",
              "HUGEINT": "numeric", "CITEXT": "citext"}
    if d in simple:
        return column_type(simple[d])
    if d.startswith("DECIMAL"):
        p, s = d[8:-1].split(",")
        return column_type("numeric", [int(p), int(s)])
    if d.startswith("FLOAT[") and d.count("[") == 1:
        return column_type("vector", [int(d[6:-1])])
    from ..types import by_duck

    info = by_duck(d)
    if info is not None and info.category == "R":  # a range or multirange (types/ranges.py)
        return column_type(info.name)
    raise errors.FeatureNotSupported(f"CREATE TABLE AS with a column of type {duck}")

