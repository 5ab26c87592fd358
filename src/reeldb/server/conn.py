"""One client's protocol state: startup, simple and extended query, transaction status.

``ClientSession.handle(kind, payload)`` takes one frontend message and returns the
backend messages to send, so the whole conversation is testable without a socket. It
runs SQL on a reeldb ``Connection`` and blocks while it does: the server calls it from
the client's own worker thread, never on the event loop.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pglast

from .. import __version__, errors
from ..connection import Connection
from ..rows import to_rows
from ..sql.parse import check_length, deparse, parse
from ..sql.pgcatalog import SERVER_VERSION
from ..sql.prepared import PreparedStatement as Statement
from ..sql.session import Result
from . import protocol as p
from .copy import CopyOptions, copy_options, format_row, header_row, parse_rows, source_query
from .describe import param_oids, returning_query
from .types import decode_param, encode_columns, field_specs

ROWS_PER_CHUNK = 2048  # result rows encoded at a time (the deadline is checked between)
SEND_BYTES = 1 << 20  # encoded rows sent once this many bytes are ready


@dataclass
class Portal:
    statement: Statement
    values: list[Any]
    result_formats: list[int]
    result: Result | None = None  # run at the first Describe or Execute
    rows: int | None = None  # rows of its result (None: the statement returns none)
    fields: list[p.FieldSpec] = field(default_factory=list)
    sent: int = 0  # rows sent by earlier Executes (each encodes only the rows it sends)


class ClientSession:
    """The state of one client connection after its startup packet."""

    def __init__(self, db: Connection, user: str, database: str, pid: int):
        self.db = db
        self.user = user
        self.database = database
        self.pid = pid
        self.secret = secrets.randbits(31)
        self.statements = db._session.prepared  # shared with SQL: DEALLOCATE drops them too
        self.portals: dict[str, Portal] = {}
        self.skipping = False  # after an error in extended query: discard until Sync
        self.terminated = False
        self.copy_in: tuple[CopyOptions, list[str]] | None = None  # COPY FROM STDIN, statements after it
        self._copy_data = bytearray()
        # where answers go while a result is sent (the server sets it): big results leave
        # in chunks, so neither they nor their encoding are ever held whole
        self.send: Callable[[list[bytes]], None] | None = None
        self._unsent: list[bytes] = []  # answers to earlier messages of the batch

    # -- startup ---------------------------------------------------------------------
    def greeting(self, params: dict[str, str]) -> list[bytes]:
        out = [p.authentication_ok()]
        for key, value in (("server_version", SERVER_VERSION), ("server_encoding", "UTF8"),
                           ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
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
        s = self.db._session
        if s.failed:
            return "E"
        return "T" if s.in_transaction else "I"

    # -- messages --------------------------------------------------------------------
    def handle_all(self, messages: list[tuple[str, bytes]]) -> list[bytes]:
        """Several messages in order (a pipeline), answers concatenated."""
        self._unsent = []
        for kind, payload in messages:
            self._unsent += self.handle(kind, payload)
            if self.terminated:
                break
        out, self._unsent = self._unsent, []
        return out + self.notifications()

    def notifications(self) -> list[bytes]:
        """NotificationResponse for each NOTIFY received, between transactions only."""
        queue = self.db._session.notifications
        if self.db._session.in_transaction or self.copy_in is not None:
            return []
        out = []
        while queue:
            pid, channel, payload = queue.popleft()
            out.append(p.notification_response(pid, channel, payload))
        return out

    def handle(self, kind: str, payload: bytes) -> list[bytes]:
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
                self.db._session.fail_transaction()
                return [p.error_for(e), p.ready_for_query(self.status)]
            return self._simple(query)
        if kind == "S":
            self.skipping = False
            return [p.ready_for_query(self.status)]
        if kind == "H":
            return []
        if self.skipping:
            return []
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
            self.db._session.fail_transaction()  # as any error does, a Parse or Bind one too
            return [p.error_for(e)]

    # -- simple query ----------------------------------------------------------------
    def _simple(self, query: str) -> list[bytes]:
        try:
            parts = _split(query)
        except errors.Error as e:
            self.db._session.fail_transaction()
            return [p.error_for(e), p.ready_for_query(self.status)]
        if not parts:
            return [p.empty_query_response(), p.ready_for_query(self.status)]
        return self._statements(parts)

    def _statements(self, parts: list[str]) -> list[bytes]:
        out: list[bytes] = []
        for i, sql in enumerate(parts):
            try:
                copy = _copy_stmt(sql)
                if copy is not None:
                    opts = copy_options(copy)
                    if opts.from_stdin:
                        self._check_copy_target(opts)
                        self.copy_in, self._copy_data = (opts, parts[i + 1 :]), bytearray()
                        ncols = len(opts.columns or self._table_columns(opts.table))
                        return out + [p.message("G", struct.pack("!bh", 0, ncols) + b"\0\0" * ncols)]
                    out += self._copy_out(opts)
                    continue
                result = self.db._session.execute(sql)
                out += self._notices(result)
                out += self._result(result, [], out)
            except Exception as e:  # noqa: BLE001
                self.db._session.fail_transaction()
                out.append(p.error_for(e))
                break
        out.append(p.ready_for_query(self.status))
        return out

    # -- COPY ------------------------------------------------------------------------
    def _table_columns(self, table: str | None) -> list[str]:
        return [name for name, _ in self._copy_columns(table)]

    def _copy_columns(self, table: str | None) -> list[tuple[str, bool]]:
        """(name, takes bytes) of each column of a COPY's table, temporary ones included."""
        session = self.db._session
        if table in session.temp_tables:
            r = session.execute(f"SELECT * FROM {_ident(table)} LIMIT 0")
            return [(d[0], str(d[1]) == "BLOB") for d in r.description or ()]
        tm = session.current_tables().get(table or "")
        if tm is None:
            raise errors.UndefinedTable(f'relation "{table}" does not exist')
        return [(c.name, c.type.kind in ("bytea", "image", "video")) for c in tm.schema.columns]

    def _check_copy_target(self, opts: CopyOptions) -> None:
        """Before CopyInResponse: the rows will go to this connection's branch (the schema,
        if any, names it), into a table and columns that exist."""
        if opts.database is not None and opts.database != self.db._session.database:
            raise errors.FeatureNotSupported("cross-database references are not implemented: "
                                             f'"{opts.database}.{opts.schema}.{opts.table}"')
        self.db._session.copy_into(opts.schema)
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
        session = self.db._session
        if kind == "f":  # CopyFail: the client gave up (an exception inside psycopg's `with copy`)
            msg = p.Payload(payload).cstring() if payload else ""
            session.fail_transaction()
            return [p.error_response("57014", f"COPY from stdin failed: {msg}"), p.ready_for_query(self.status)]
        if kind != "c":
            session.fail_transaction()
            e = p.ProtocolViolation(f"unexpected message type {kind!r} during COPY from stdin")
            return [p.error_for(e), p.ready_for_query(self.status)]
        try:
            with session.failing():
                tag = self._copy_insert(opts, data)
        except Exception as e:  # noqa: BLE001 - reported; nothing was written
            return [p.error_for(e), p.ready_for_query(self.status)]
        if rest:
            return [p.command_complete(tag), *self._statements(rest)]
        return [p.command_complete(tag), p.ready_for_query(self.status)]

    def _copy_insert(self, opts: CopyOptions, data: bytes) -> str:
        """All the rows in one statement, so one commit (or none, on any error)."""
        assert opts.table is not None
        takes_bytes = dict(self._copy_columns(opts.table))
        names = opts.columns or list(takes_bytes)
        rows: list[list[Any]] = parse_rows(data, opts, len(names))  # type: ignore[assignment]
        if not rows:
            return "COPY 0"
        binary = [i for i, n in enumerate(names) if takes_bytes[n]]
        for row in rows:
            for i in binary:
                v = row[i]
                if v is not None:
                    row[i] = bytes.fromhex(v[2:]) if v.startswith("\\x") else v.encode("utf-8")
        cols = ", ".join(_ident(n) for n in names)
        marks = ", ".join(f"${i + 1}" for i in range(len(names)))
        self.db._session.executemany(f"INSERT INTO {_ident(opts.table)} ({cols}) VALUES ({marks})", rows)
        return f"COPY {len(rows)}"

    def _copy_out(self, opts: CopyOptions) -> list[bytes]:
        sql = deparse(opts.query) if opts.query is not None else source_query(opts)
        r = self.db._session.execute(sql)
        assert r.table is not None and r.description is not None
        names = [d[0] for d in r.description]
        out = [p.message("H", struct.pack("!bh", 0, len(names)) + b"\0\0" * len(names))]
        if opts.header:
            out.append(p.message("d", header_row(names, opts)))
        rows = to_rows(r.table, r.description, self.db.catalog.store)
        out += [p.message("d", format_row(list(row), opts)) for row in rows]
        return out + [p.message("c"), p.command_complete(f"COPY {len(rows)}")]

    def _notices(self, result: Result) -> list[bytes]:
        return [p.notice_response(n, getattr(n, "sqlstate", "00000"), getattr(n, "severity", "NOTICE"))
                for n in result.notices]

    def _result(self, result: Result, formats: list[int], before: list[bytes]) -> list[bytes]:
        """RowDescription (simple query only), DataRows and CommandComplete; ``before``:
        this message's answers so far, sent ahead of the rows when they leave in chunks."""
        if result.table is None or result.description is None:
            return [p.command_complete(result.status or "OK")]
        fields = _with_formats(field_specs(result.table, result.description), formats)
        before.append(p.row_description(fields))
        n = result.table.num_rows if fields else 0
        return self._data_rows(result, fields, 0, n, before) + [p.command_complete(_select_tag(result, n))]

    def _data_rows(self, result: Result, fields: list[p.FieldSpec], start: int, stop: int,
                   before: list[bytes]) -> list[bytes]:
        """DataRows of result rows ``[start, stop)``, encoded a chunk at a time. Between
        chunks the statement's deadline (statement_timeout) is checked, and once enough is
        encoded it is sent with everything ahead of it; the rest is returned."""
        assert result.table is not None and result.description is not None
        out: list[bytes] = []
        size = 0
        for lo in range(start, stop, ROWS_PER_CHUNK):
            self.db._session.check_deadline()
            part = result.table.slice(lo, min(ROWS_PER_CHUNK, stop - lo))
            columns = encode_columns(part, result.description, fields, self.db.catalog.store)
            rows = [p.data_row(r) for r in zip(*columns, strict=True)]
            out += rows
            size += sum(len(r) for r in rows)
            if self.send is not None and size >= SEND_BYTES:
                self.send(self._unsent + before + out)
                self._unsent, size = [], 0
                before.clear()
                out = []
        return out

    # -- extended query --------------------------------------------------------------
    def _parse(self, msg: p.Parse) -> list[bytes]:
        parts = _split(msg.query)
        if len(parts) > 1:
            raise errors.SyntaxError("cannot insert multiple commands into a prepared statement")
        query = parts[0] if parts else ""
        if msg.name and msg.name in self.statements:
            raise errors.Error(f'prepared statement "{msg.name}" already exists', sqlstate="42P05")
        oids = param_oids(query, msg.param_oids, self.db._session.current_tables(), _param_count(query))
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

    def _bind(self, msg: p.Bind) -> list[bytes]:
        st = self._statement(msg.statement)
        n = len(msg.values)
        if msg.param_formats and len(msg.param_formats) not in (1, n):
            raise p.ProtocolViolation(f"bind message has {len(msg.param_formats)} parameter formats "
                                      f"but {n} parameters")
        formats = msg.param_formats * n if len(msg.param_formats) == 1 else msg.param_formats or [0] * n
        oids = st.param_oids + [0] * (n - len(st.param_oids))
        values = [decode_param(v, oid, f) for v, oid, f in zip(msg.values, oids, formats, strict=True)]
        self.portals[msg.portal] = Portal(st, values, msg.result_formats)
        return [p.bind_complete()]

    def _run(self, portal: Portal) -> None:
        if portal.result is not None:
            return
        st = portal.statement
        if not st.query.strip():
            portal.result = Result(status="")
            return
        portal.result = self.db._session.execute(st.query, portal.values or None)
        r = portal.result
        if r.table is not None and r.description is not None:
            portal.fields = _with_formats(field_specs(r.table, r.description), portal.result_formats)
            portal.rows = r.table.num_rows if portal.fields else 0

    def _describe(self, kind: str, name: str) -> list[bytes]:
        if kind == "S":
            st = self._statement(name)
            out = [p.parameter_description(st.param_oids)]
            fields = self._statement_fields(st)
            return out + ([p.row_description(fields)] if fields else [p.no_data()])
        if name not in self.portals and name in self.db._session.cursors:
            cur = self.db._session.cursors[name]  # DECLAREd in SQL: a portal too, as in Postgres
            return [p.row_description(field_specs(cur.table.slice(0, 0), cur.description))]
        portal = self._portal(name)
        self._run(portal)
        return [p.row_description(portal.fields)] if portal.rows is not None else [p.no_data()]

    def _statement_fields(self, st: Statement) -> list[p.FieldSpec] | None:
        """Result columns of a query before Bind. A query only reads, so it runs here
        with NULL for every parameter; its columns' types do not depend on the values."""
        query = st.query if _is_query(st.query) else returning_query(st.query)
        if query is None:
            return None
        session = self.db._session
        session.describing = True
        try:
            r = session.execute(query, ([None] * len(st.param_oids) or None) if query is st.query else None)
        finally:
            session.describing = False
        if r.table is None or r.description is None:
            return None
        return field_specs(r.table, r.description)

    def _execute(self, name: str, limit: int) -> list[bytes]:
        if name not in self.portals and name in self.db._session.cursors:
            return self._execute_cursor(name, limit)
        portal = self._portal(name)
        if portal.sent:  # a suspended portal's next rows: statement_timeout counts afresh
            self.db._session.start_deadline()
        self._run(portal)
        r = portal.result
        assert r is not None
        out = self._notices(r)
        r.notices = []
        if portal.rows is None:
            if not portal.statement.query.strip():
                return out + [p.empty_query_response()]
            return out + [p.command_complete(r.status or "OK")]
        stop = portal.rows if limit <= 0 else min(portal.rows, portal.sent + limit)
        out += self._data_rows(r, portal.fields, portal.sent, stop, out)
        portal.sent = stop
        if stop < portal.rows:
            return out + [p.portal_suspended()]
        return out + [p.command_complete(_select_tag(r, portal.rows))]

    def _execute_cursor(self, name: str, limit: int) -> list[bytes]:
        """Execute of a DECLAREd cursor's portal: its next ``limit`` rows (all when 0),
        fetched as SQL FETCH does; PortalSuspended while rows may remain."""
        r = self.db._session.execute(f"FETCH FORWARD {limit if limit > 0 else 'ALL'} FROM {_ident(name)}")
        assert r.table is not None and r.description is not None
        fields = field_specs(r.table, r.description)
        columns = encode_columns(r.table, r.description, fields, self.db.catalog.store)
        out = [p.data_row(row) for row in zip(*columns, strict=True)] if columns else []
        if limit > 0 and len(out) == limit:
            return out + [p.portal_suspended()]
        return out + [p.command_complete(f"SELECT {len(out)}")]

    def _close(self, kind: str, name: str) -> list[bytes]:
        if kind == "S":
            self.statements.pop(name, None)
        elif self.portals.pop(name, None) is None:
            self.db._session.cursors.pop(name, None)  # a DECLAREd cursor's portal: CLOSE it
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
