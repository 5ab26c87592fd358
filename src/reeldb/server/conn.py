"""One client's protocol state: startup, simple and extended query, transaction status.

``ClientSession.handle(kind, payload)`` takes one frontend message and returns the
backend messages to send, so the whole conversation is testable without a socket. It
runs SQL on a reeldb ``Connection`` and blocks while it does: the server calls it from
the client's own worker thread, never on the event loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pglast

from .. import errors
from ..connection import Connection
from ..sql.encodings import client_encoding
from ..sql.parse import check_length, deparse, parse
from ..sql.prepared import PreparedStatement as Statement
from ..sql.result import Result
from ..sql.server_version import SERVER_VERSION
from ..sql.settings import reported_settings
from ..types.oids import BYTEA
from ..version import __version__
from . import fastpath
from . import protocol as p
from .copy import (
    CopyOptions,
    copy_options,
    copy_response,
    out_rows,
    parse_binary_rows,
    parse_rows,
    source_query,
)
from .describe import oid_of, param_oids, returning_query
from .types import decode_param, encode_columns, field_specs, type_of

ROWS_PER_CHUNK = 2048  # result rows encoded at a time (the deadline is checked between)
SEND_BYTES = 1 << 20  # encoded rows sent once this many bytes are ready


@dataclass
class Portal:
    statement: Statement
    values: list[Any]
    result_formats: list[int]
    result: Result | None = None  # run at the first Describe or Execute; its rows are read as sent
    returns_rows: bool = False
    fields: list[p.FieldSpec] = field(default_factory=list)
    sent: int = 0  # rows sent by earlier Executes


class ClientSession:
    """The state of one client connection after its startup packet."""

    def __init__(self, db: Connection, user: str, database: str, pid: int):
        self.db = db
        self.user = user
        self.database = database
        self.pid = pid
        self.secret = secrets.randbits(31)
        self.statements = db.session.prepared  # shared with SQL: DEALLOCATE drops them too
        self.portals: dict[str, Portal] = {}
        self.skipping = False  # after an error in extended query: discard until Sync
        self.terminated = False
        self.copy_in: tuple[CopyOptions, list[str]] | None = None  # COPY FROM STDIN, statements after it
        self._copy_data = bytearray()
        # where answers go while a result is sent (the server sets it): big results leave
        # in chunks, so neither they nor their encoding are ever held whole
        self.send: Callable[[list[bytes]], None] | None = None
        self._unsent: list[bytes] = []  # answers to earlier messages of the batch
        self.encoding = "UTF8"  # the client encoding the client was last told of

    # -- startup ---------------------------------------------------------------------
    def greeting(self, params: dict[str, str]) -> list[bytes]:
        if "client_encoding" in params:  # libpq sends it for PGCLIENTENCODING / client_encoding=
            try:
                self.encoding = client_encoding(params["client_encoding"])
            except errors.Error as e:
                self.terminated = True
                return [p.error_for(e).replace(b"SERROR", b"SFATAL", 1)]
        out = [p.authentication_ok()]
        for key, value in (("server_version", SERVER_VERSION), ("server_encoding", "UTF8"),
                           ("client_encoding", self.encoding), ("DateStyle", "ISO, MDY"),
                           ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                           ("TimeZone", "UTC"), ("IntervalStyle", "postgres"),
                           ("application_name", params.get("application_name", "")),
                           ("is_superuser", "off"), ("session_authorization", self.user),
                           ("reeldb_version", __version__)):
            out.append(p.parameter_status(key, value))
        out += [p.backend_key_data(self.pid, self.secret), p.ready_for_query(self.status)]
        return out

    @property
    def status(self) -> str:
        s = self.db.session
        if s.failed:
            return "E"
        return "T" if s.in_transaction else "I"

    # -- messages --------------------------------------------------------------------
    def handle_all(self, messages: list[tuple[str, bytes]]) -> list[bytes]:
        """Several messages in order (a pipeline), answers concatenated."""
        self._unsent = []
        i = 0
        while i < len(messages) and not self.terminated:
            run = self._insert_run(messages, i)
            n = sum(len(step) for step in run) if run else 1
            answers = self._batch(run) if run else None
            if answers is not None:
                self._unsent += answers
            else:  # one message at a time; a run whose batch failed is not tried again
                for kind, payload in messages[i:i + n]:
                    answers = self.handle(kind, payload)  # it may send (and empty) _unsent meanwhile
                    self._unsent += answers
                    if self.terminated:
                        break
            i += n
        out, self._unsent = self._unsent, []
        return out + self.notifications()

    def _insert_run(self, messages: list[tuple[str, bytes]], i: int) -> list[list[tuple[str, Any]]]:
        """The pipelined rows of one prepared INSERT starting at ``messages[i]``: Bind,
        (Describe,) Execute of the unnamed portal, again and again (psycopg's and asyncpg's
        executemany), as [[("B", Bind), ("D", portal) | ..., ("E", limit)], ...]; empty
        unless there are at least two."""
        if self.skipping or self.copy_in is not None or messages[i][0] != "B":
            return []
        steps: list[list[tuple[str, Any]]] = []
        statement: str | None = None
        while i < len(messages) and messages[i][0] == "B":
            try:
                bind = p.parse_bind(messages[i][1])
            except p.ProtocolViolation:
                break
            if bind.portal or (statement is not None and bind.statement != statement):
                break
            if statement is None and not self._batchable(bind.statement):
                return []  # decided by the first Bind: no scan of a run that cannot batch
            step: list[tuple[str, Any]] = [("B", bind)]
            j = i + 1
            if j < len(messages) and messages[j][0] == "D" and messages[j][1] == b"P\0":
                step.append(("D", None))
                j += 1
            if j >= len(messages) or messages[j][0] != "E" or not messages[j][1].startswith(b"\0"):
                break
            step.append(("E", None))
            steps.append(step)
            statement = bind.statement
            i = j + 1
        return steps if len(steps) >= 2 else []

    def _batchable(self, name: str) -> bool:
        """Whether the prepared statement ``name`` is an INSERT whose rows can go at once
        (asked of the session once per statement)."""
        st = self.statements.get(name)
        if st is None:
            return False
        if st.batchable is None:
            st.batchable = self.db.session.batchable(st.query)
        return st.batchable

    def _batch(self, steps: list[list[tuple[str, Any]]]) -> list[bytes] | None:
        """Answers to a run of ``_insert_run``, written as one INSERT of all its rows; None
        (nothing done) when the rows must go one at a time: a Bind that does not decode, or
        an INSERT that fails (then the row-at-a-time path reports the failing row)."""
        p.use_client_encoding(self.encoding)
        session = self.db.session
        try:
            binds = [step[0][1] for step in steps]
            values = [self._bound_values(bind) for bind in binds]
        except Exception:  # noqa: BLE001 - the message-at-a-time path reports it
            return None
        session.begin_implicit()  # the statements up to Sync are one transaction, as in PostgreSQL
        if session.failed:
            return None
        st = self._statement(binds[0].statement)
        try:
            result = session.execute_batch(st.query, values)
        except errors.QueryCanceled as e:
            self.skipping = True
            session.fail_transaction()
            return [p.error_for(e)]
        if result is None:
            return None
        out: list[bytes] = []
        for step in steps:
            out.append(p.bind_complete())
            if len(step) == 3:
                out.append(p.no_data())
            out.append(p.command_complete("INSERT 0 1"))
        last = self.portals.get("")
        if last is not None and last.result is not None:
            last.result.close()
        self.portals[""] = Portal(st, values[-1], binds[-1].result_formats, result=Result(status="INSERT 0 1"))
        return out

    def notifications(self) -> list[bytes]:
        """NotificationResponse for each NOTIFY received, between transactions only."""
        queue = self.db.session.notifications
        if self.db.session.in_transaction or self.copy_in is not None:
            return []
        out = []
        while queue:
            pid, channel, payload = queue.popleft()
            out.append(p.notification_response(pid, channel, payload, self.encoding))
        return out

    def handle(self, kind: str, payload: bytes) -> list[bytes]:
        """The answers to one message, text in the client's encoding; a SET of
        client_encoding is reported with ParameterStatus ahead of ReadyForQuery."""
        p.use_client_encoding(self.encoding)
        out = self._handle(kind, payload)
        now = reported_settings(self.db.session)["client_encoding"]  # RESET goes back to the startup's
        if now != self.encoding:
            self.encoding = now
            p.use_client_encoding(now)
            at = len(out) - 1 if out and out[-1][:1] == b"Z" else len(out)
            out.insert(at, p.parameter_status("client_encoding", now))
        return out

    def _handle(self, kind: str, payload: bytes) -> list[bytes]:
        if kind == "X":
            self.terminated = True
            return []
        if self.copy_in is not None:
            return self._copy_message(kind, payload)
        if kind == "Q":
            self.skipping = False
            try:
                query = p.parse_query(payload)
            except errors.CharacterNotInRepertoire as e:  # not UTF-8: this query fails, not the connection
                self.db.session.fail_transaction()
                return [p.error_for(e), *self._ready()]
            return self._simple(query)
        if kind == "S":
            self.skipping = False
            return [*self._ready()]
        if kind == "H":
            return []
        if self.skipping:
            return []
        if kind == "F":  # a fastpath function call: libpq's lo_* (fastpath.py)
            return [*fastpath.answer(self.db.session, payload), *self._ready()]
        try:
            if kind == "P":
                return self._parse(p.parse_parse(payload))
            if kind == "B":
                return self._bind(p.parse_bind(payload))
            if kind == "D":
                return self._describe(*p.parse_describe_or_close(payload))
            if kind == "E":
                return self._execute(*p.parse_execute(payload))
            if kind == "C":
                return self._close(*p.parse_describe_or_close(payload))
            if kind in ("d", "c", "f"):  # COPY data outside COPY: ignored, as Postgres does
                return []
            raise p.ProtocolViolation(f"invalid frontend message type {kind!r}")
        except Exception as e:  # noqa: BLE001 - every failure becomes an ErrorResponse
            self.skipping = True
            self.db.session.fail_transaction()  # as any error does, a Parse or Bind one too
            return [p.error_for(e)]

    # -- simple query ----------------------------------------------------------------
    def _simple(self, query: str) -> list[bytes]:
        try:
            parts = _split(query)
        except errors.Error as e:
            self.db.session.fail_transaction()
            return [p.error_for(e), *self._ready()]
        if not parts:
            return [p.empty_query_response(), *self._ready()]
        return self._statements(parts)

    def _ready(self) -> list[bytes]:
        """ReadyForQuery, once the batch's implicit transaction has ended (its commit can
        fail, e.g. with 40001: then the client hears it before ReadyForQuery)."""
        try:
            self.db.session.end_implicit()
        except Exception as e:  # noqa: BLE001 - reported; the transaction is over either way
            return [p.error_for(e), p.ready_for_query(self.status)]
        return [p.ready_for_query(self.status)]

    def _statements(self, parts: list[str]) -> list[bytes]:
        out: list[bytes] = []
        for i, sql in enumerate(parts):
            if len(parts) > 1 or self.db.session.implicit:  # one query string, one transaction
                self.db.session.begin_implicit()
            try:
                copy = _copy_stmt(sql)
                if copy is not None:
                    self.db.session.check_copy(copy)
                    opts = copy_options(copy)
                    if opts.from_stdin:
                        self._check_copy_target(opts)
                        self.copy_in, self._copy_data = (opts, parts[i + 1 :]), bytearray()
                        ncols = len(opts.columns or self._table_columns(opts.table))
                        return out + [copy_response("G", opts, ncols)]
                    out += self._copy_out(opts)
                    continue
                result = self.db.session.execute(sql)
                out += self._notices(result)
                out += self._result(result, [], out)
            except Exception as e:  # noqa: BLE001
                self.db.session.fail_transaction()
                out.append(p.error_for(e))
                break
        out += self._ready()
        return out

    # -- COPY ------------------------------------------------------------------------
    def _table_columns(self, table: str | None) -> list[str]:
        return [name for name, _ in self._copy_columns(table)]

    def _copy_columns(self, table: str | None) -> list[tuple[str, int]]:
        """(name, type OID) of each column of a COPY's table, temporary ones included."""
        session = self.db.session
        if table in session.temp_tables:
            r = session.execute(f"SELECT * FROM {_ident(table)} LIMIT 0")
            assert r.table is not None
            return [(d[0], type_of(str(d[1]), f.type)[0]) for d, f in zip(r.description or (), r.table.schema,
                                                                           strict=True)]
        tm = session.current_tables().get(table or "")
        if tm is None:
            raise errors.UndefinedTable(f'relation "{table}" does not exist')
        return [(c.name, oid_of(c.type)) for c in tm.schema.columns]

    def _check_copy_target(self, opts: CopyOptions) -> None:
        """Before CopyInResponse: the rows will go to this connection's branch (the schema,
        if any, names it), into a table and columns that exist."""
        if opts.database is not None and opts.database != self.db.session.database:
            raise errors.FeatureNotSupported("cross-database references are not implemented: "
                                             f'"{opts.database}.{opts.schema}.{opts.table}"')
        self.db.session.copy_into(opts.schema)
        names = self._table_columns(opts.table)
        for c in opts.columns or ():
            if c not in names:
                raise errors.UndefinedColumn(f'column "{c}" of relation "{opts.table}" does not exist')

    def _copy_message(self, kind: str, payload: bytes) -> list[bytes]:
        assert self.copy_in is not None
        opts, rest = self.copy_in
        if kind == "d":
            self._copy_data += payload
            return []
        if kind in ("H", "S"):
            return []
        self.copy_in = None
        data, self._copy_data = bytes(self._copy_data), bytearray()
        session = self.db.session
        if kind == "f":  # CopyFail: the client gave up (an exception inside psycopg's `with copy`)
            msg = p.Payload(payload).cstring() if payload else ""
            session.fail_transaction()
            return [p.error_response("57014", f"COPY from stdin failed: {msg}"), *self._ready()]
        if kind != "c":
            session.fail_transaction()
            e = p.ProtocolViolation(f"unexpected message type {kind!r} during COPY from stdin")
            return [p.error_for(e), *self._ready()]
        try:
            with session.failing():
                tag = self._copy_insert(opts, data)
        except Exception as e:  # noqa: BLE001 - reported; nothing was written
            return [p.error_for(e), *self._ready()]
        if rest:
            return [p.command_complete(tag), *self._statements(rest)]
        return [p.command_complete(tag), *self._ready()]

    def _copy_insert(self, opts: CopyOptions, data: bytes) -> str:
        """All the rows in one statement, so one commit (or none, on any error)."""
        assert opts.table is not None
        oids = dict(self._copy_columns(opts.table))
        names = opts.columns or list(oids)
        if opts.binary:
            rows: list[list[Any]] = parse_binary_rows(data, [oids[n] for n in names])
        else:
            rows = parse_rows(data, opts, len(names))  # type: ignore[assignment]
        if not rows:
            return "COPY 0"
        binary = [] if opts.binary else [i for i, n in enumerate(names) if oids[n] == BYTEA]
        for row in rows:
            for i in binary:
                v = row[i]
                if v is not None:
                    row[i] = bytes.fromhex(v[2:]) if v.startswith("\\x") else v.encode("utf-8")
        cols = ", ".join(_ident(n) for n in names)
        marks = ", ".join(f"${i + 1}" for i in range(len(names)))
        self.db.session.executemany(f"INSERT INTO {_ident(opts.table)} ({cols}) VALUES ({marks})", rows)
        return f"COPY {len(rows)}"

    def _copy_out(self, opts: CopyOptions) -> list[bytes]:
        sql = deparse(opts.query) if opts.query is not None else source_query(opts)
        r = self.db.session.execute(sql)
        assert r.table is not None and r.description is not None
        names = [d[0] for d in r.description]
        fields = _with_formats(field_specs(r.table, r.description), [int(opts.binary)])
        cells = encode_columns(r.table, r.description, fields, self.db.catalog.store)
        rows = list(zip(*cells, strict=True)) if cells else [()] * r.table.num_rows
        out = [copy_response("H", opts, len(names))]
        out += [p.message("d", data) for data in out_rows(rows, names, opts)]
        return out + [p.message("c"), p.command_complete(f"COPY {len(rows)}")]

    def _notices(self, result: Result) -> list[bytes]:
        return [p.notice_response(n, getattr(n, "sqlstate", "00000"), getattr(n, "severity", "NOTICE"))
                for n in result.notices]

    def _result(self, result: Result, formats: list[int], before: list[bytes]) -> list[bytes]:
        """RowDescription (simple query only), DataRows and CommandComplete; ``before``:
        this message's answers so far, sent ahead of the rows when they leave in chunks."""
        if not result.returns_rows or result.description is None:
            return [p.command_complete(result.status or "OK")]
        assert result.schema is not None
        fields = _with_formats(field_specs(result.schema.empty_table(), result.description), formats)
        before.append(p.row_description(fields))
        out, n = self._data_rows(result, fields, None, before)
        return out + [p.command_complete(_select_tag(result, n))]

    def _data_rows(self, result: Result, fields: list[p.FieldSpec], limit: int | None,
                   before: list[bytes]) -> tuple[list[bytes], int]:
        """DataRows of the result's next rows (``limit`` of them; None: all), read from
        it and encoded a chunk at a time, so a streamed result is never held whole. Between
        chunks the statement's deadline (statement_timeout) and a CancelRequest are
        checked, and once enough is encoded it is sent with everything ahead of it; the
        rest is returned, with the number of rows."""
        assert result.description is not None
        out: list[bytes] = []
        size = sent = 0
        try:
            while limit is None or sent < limit:
                self.db.session.check_deadline()
                want = ROWS_PER_CHUNK if limit is None else min(ROWS_PER_CHUNK, limit - sent)
                part = result.read(want)
                if part is None:
                    break
                columns = encode_columns(part, result.description, fields, self.db.catalog.store)
                rows = [p.data_row(r) for r in zip(*columns, strict=True)] if columns else \
                    [p.data_row([])] * part.num_rows  # SELECT FROM t: rows of no columns
                out += rows
                sent += len(rows)
                size += sum(len(r) for r in rows)
                if self.send is not None and size >= SEND_BYTES:
                    self.send(self._unsent + before + out)
                    self._unsent, size = [], 0
                    before.clear()
                    out = []
        except BaseException:
            result.close()  # a statement that fails (timeout, cancel, error) ends its rows
            self.db.session.fail_transaction()
            raise
        return out, sent

    # -- extended query --------------------------------------------------------------
    def _parse(self, msg: p.Parse) -> list[bytes]:
        parts = _split(msg.query)
        if len(parts) > 1:
            raise errors.SyntaxError("cannot insert multiple commands into a prepared statement")
        query = parts[0] if parts else ""
        if msg.name and msg.name in self.statements:
            raise errors.Error(f'prepared statement "{msg.name}" already exists', sqlstate="42P05")
        oids = param_oids(query, msg.param_oids, self.db.session.current_tables(), _param_count(query))
        self.statements[msg.name] = Statement(query, oids)
        return [p.parse_complete()]

    def _statement(self, name: str) -> Statement:
        st = self.statements.get(name)
        if st is None:
            raise errors.Error(f'prepared statement "{name}" does not exist', sqlstate="26000")
        return st

    def _portal(self, name: str) -> Portal:
        portal = self.portals.get(name)
        if portal is None:
            raise errors.Error(f'portal "{name}" does not exist', sqlstate="34000")
        return portal

    def _bound_values(self, msg: p.Bind) -> list[Any]:
        """A Bind's parameters, decoded by their statement's types and formats."""
        st = self._statement(msg.statement)
        n = len(msg.values)
        if msg.param_formats and len(msg.param_formats) not in (1, n):
            raise p.ProtocolViolation(f"bind message has {len(msg.param_formats)} parameter formats "
                                      f"but {n} parameters")
        formats = msg.param_formats * n if len(msg.param_formats) == 1 else msg.param_formats or [0] * n
        oids = st.param_oids + [0] * (n - len(st.param_oids))
        return [decode_param(v, oid, f) for v, oid, f in zip(msg.values, oids, formats, strict=True)]

    def _bind(self, msg: p.Bind) -> list[bytes]:
        st = self._statement(msg.statement)
        values = self._bound_values(msg)
        old = self.portals.get(msg.portal)
        if old is not None and old.result is not None:
            old.result.close()  # a portal bound again ends its rows
        self.portals[msg.portal] = Portal(st, values, msg.result_formats)
        return [p.bind_complete()]

    def _run(self, portal: Portal) -> None:
        if portal.result is not None:
            return
        st = portal.statement
        if not st.query.strip():
            portal.result = Result(status="")
            return
        self.db.session.begin_implicit()  # the statements up to Sync are one transaction, as in PostgreSQL
        portal.result = self.db.session.execute(st.query, portal.values or None)
        r = portal.result
        if r.returns_rows and r.description is not None:
            assert r.schema is not None
            portal.fields = _with_formats(field_specs(r.schema.empty_table(), r.description), portal.result_formats)
            portal.returns_rows = True

    def _describe(self, kind: str, name: str) -> list[bytes]:
        if kind == "S":
            st = self._statement(name)
            out = [p.parameter_description(st.param_oids)]
            fields = self._statement_fields(st)
            return out + ([p.row_description(fields)] if fields is not None else [p.no_data()])
        if name not in self.portals and name in self.db.session.cursors:
            cur = self.db.session.cursors[name]  # DECLAREd in SQL: a portal too, as in Postgres
            return [p.row_description(field_specs(cur.schema.empty_table(), cur.description))]
        portal = self._portal(name)
        self._run(portal)
        return [p.row_description(portal.fields)] if portal.returns_rows else [p.no_data()]

    def _statement_fields(self, st: Statement) -> list[p.FieldSpec] | None:
        """Result columns of a query before Bind. A query only reads, so it runs here
        with NULL for every parameter; its columns' types do not depend on the values."""
        query = st.query if _is_query(st.query) else returning_query(st.query)
        if query is None:
            return None
        session = self.db.session
        session.describing = True
        try:
            r = session.execute(query, ([None] * len(st.param_oids) or None) if query is st.query else None)
        finally:
            session.describing = False
        if r.table is None or r.description is None:
            return None
        return field_specs(r.table, r.description)

    def _execute(self, name: str, limit: int) -> list[bytes]:
        if name not in self.portals and name in self.db.session.cursors:
            return self._execute_cursor(name, limit)
        portal = self._portal(name)
        self._run(portal)
        r = portal.result
        assert r is not None
        if portal.sent:  # a suspended portal's next rows: statement_timeout counts afresh
            self.db.session.start_deadline()
            r.restart_deadline(self.db.session.statement_deadline)
        out = self._notices(r)
        r.notices = []
        if not portal.returns_rows:
            if not portal.statement.query.strip():
                return out + [p.empty_query_response()]
            return out + [p.command_complete(r.status or "OK")]
        rows, sent = self._data_rows(r, portal.fields, limit if limit > 0 else None, out)
        out += rows
        portal.sent += sent
        if limit > 0 and sent == limit and not r.exhausted():  # the same stream goes on at the next Execute
            return out + [p.portal_suspended()]
        return out + [p.command_complete(_select_tag(r, portal.sent))]

    def _execute_cursor(self, name: str, limit: int) -> list[bytes]:
        """Execute of a DECLAREd cursor's portal: its next ``limit`` rows (all when 0),
        fetched as SQL FETCH does (a chunk at a time for all), each chunk read on from
        the cursor's stream; PortalSuspended while rows may remain."""
        session = self.db.session
        want = limit if limit > 0 else None
        out: list[bytes] = []
        sent = 0
        while want is None or sent < want:
            chunk = ROWS_PER_CHUNK if want is None else min(ROWS_PER_CHUNK, want - sent)
            r = session.execute(f"FETCH FORWARD {chunk} FROM {_ident(name)}")
            rows, n = self._data_rows(r, field_specs(r.table, r.description), None, out)
            out += rows
            sent += n
            if n < chunk:
                break
        if limit > 0 and sent == limit:
            return out + [p.portal_suspended()]
        return out + [p.command_complete(f"SELECT {sent}")]

    def _close(self, kind: str, name: str) -> list[bytes]:
        if kind == "S":
            self.statements.pop(name, None)
        elif (portal := self.portals.pop(name, None)) is not None:
            if portal.result is not None:
                portal.result.close()
        else:
            self.db.session.cursors.pop(name, None)  # a DECLAREd cursor's portal: CLOSE it
        return [p.close_complete()]


def _split(query: str) -> list[str]:
    """The statements of a query string, without empty ones."""
    check_length(query)  # before libpg_query sees it
    try:
        return [s for s in pglast.split(query) if s.strip()]
    except pglast.parser.ParseError:
        # not Postgres syntax (OPTIMIZE, or an error): the SQL layer says which
        return [query] if query.strip() else []


def _copy_stmt(sql: str) -> Any:
    if sql.lstrip()[:4].upper() != "COPY":
        return None
    stmt = parse(sql)[0].stmt
    return stmt if type(stmt).__name__ == "CopyStmt" else None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _param_count(query: str) -> int:
    import re

    stripped = re.sub(r"'(?:[^']|'')*'", "''", query)
    return max((int(n) for n in re.findall(r"\$(\d+)", stripped)), default=0)


def _is_query(query: str) -> bool:
    head = query.lstrip().split(None, 1)
    return bool(head) and head[0].upper() in ("SELECT", "VALUES", "WITH", "SHOW", "TABLE")


def _with_formats(fields: list[p.FieldSpec], formats: list[int]) -> list[p.FieldSpec]:
    if not formats:
        return fields
    if len(formats) == 1:
        formats = formats * len(fields)
    if len(formats) != len(fields):
        raise p.ProtocolViolation(f"bind message has {len(formats)} result formats but the query "
                                  f"has {len(fields)} columns")
    return [replace(f, format=fmt) for f, fmt in zip(fields, formats, strict=True)]


def _select_tag(result: Result, rows: int) -> str:
    status = result.status or "SELECT"
    if status.startswith("SELECT") or status == "SHOW":
        return f"SELECT {rows}" if status.startswith("SELECT") else "SHOW"
    return status
