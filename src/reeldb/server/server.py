"""``reeldb serve``: the protocol on asyncio, each client's SQL on its own thread.

The event loop only moves bytes. A client's messages are handled in order on a
single-thread executor of its own, because a reeldb connection (and the DuckDB
connection under it) belongs to one thread at a time; other clients keep being served
meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import secrets
import socket
import ssl
import struct
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..connection import connect
from ..format import keys
from ..sql.activity import Activity, Backend
from ..sql.session import SessionOptions
from ..sql.settings import apply_startup, idle_timeouts_ms, reported_settings
from ..storage import open_store
from . import protocol as p
from . import users as user_store
from .auth import ScramServer
from .conn import ClientSession

log = logging.getLogger("reeldb.server")


DEFAULT_STATEMENT_MEMORY = "2GB"


@dataclass
class ServerOptions:
    path: str
    host: str = "127.0.0.1"
    port: int = 5433
    max_connections: int = 100
    max_message: int = p.DEFAULT_MAX_MESSAGE
    statement_timeout_ms: int = 0  # each session's default statement_timeout (0: none)
    authentication_timeout: float = 60.0  # seconds a client has to log in (PostgreSQL's default)
    max_pending_logins: int = 64  # clients not logged in yet; beyond, the oldest is closed
    # DuckDB's memory limit for the server's queries (53200 beyond it); None: DuckDB's own
    # default (80% of the machine's memory). Shared by the statements running at once.
    statement_memory: str | None = DEFAULT_STATEMENT_MEMORY
    idle_exit: float | None = None  # stop when no client has been connected this long
    sockets: list[socket.socket] | None = None  # given by the service manager (LISTEN_FDS)
    ssl_context: ssl.SSLContext | None = None  # TLS for clients that ask (SSLRequest)


class Server:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.clients: dict[int, ClientSession] = {}
        self.activity = Activity()  # what pg_stat_activity lists, and pg_terminate_backend signals
        self._pids = itertools.count(os.getpid() * 1000 % 2**31)
        self._server: asyncio.base_events.Server | None = None
        self._last_client = time.monotonic()
        # connections still logging in, oldest first: separate from max_connections, so
        # that sockets which never log in cannot keep real clients out
        self._pending: OrderedDict[int, asyncio.StreamWriter] = OrderedDict()
        # fail now on a path that is not a database, or a memory limit DuckDB refuses; and
        # warm the process (lazy imports: pandas alone takes 0.4 s) so that a client's
        # first statement does not spend it against its statement_timeout
        with connect(options.path, create=False, memory_limit=options.statement_memory) as db:
            db.execute("SHOW statement_timeout").fetchall()
            db.execute("SELECT 1").fetchall()
        self.store = open_store(options.path, create=False)
        self.mock_secret = _mock_secret(self.store)
        if not user_store.list_users(self.store):
            log.warning("no users exist: trusting clients on loopback only, without a password "
                        "(add one with `reeldb user add %s NAME`)", options.path)

    async def start(self) -> None:
        o = self.options
        if o.sockets:
            self._server = await asyncio.start_server(self._client, sock=o.sockets[0])
        else:
            self._server = await asyncio.start_server(self._client, o.host, o.port)

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    async def serve(self) -> None:
        """Serve until cancelled, or until idle for ``idle_exit`` seconds."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            if self.options.idle_exit is None:
                await self._server.serve_forever()
                return
            while True:
                await asyncio.sleep(min(1.0, self.options.idle_exit / 4))
                if not self.clients and time.monotonic() - self._last_client >= self.options.idle_exit:
                    log.info("no client for %.0f s: exiting", self.options.idle_exit)
                    return

    # -- one client ------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = p.MessageReader(self.options.max_message)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reeldb-client")
        loop = asyncio.get_running_loop()
        session: ClientSession | None = None
        self._admit(writer)
        try:
            deadline = loop.time() + self.options.authentication_timeout
            try:
                session = await self._startup(reader, writer, frames, executor, deadline)
            finally:
                self._pending.pop(id(writer), None)
            if session is None:
                return
            session.send = _sender(writer, loop, session)
            wake = asyncio.Event()  # a NOTIFY for this client arrived (from any thread)
            session.db.session.on_notify = lambda: loop.call_soon_threadsafe(wake.set)
            killed = asyncio.Event()  # pg_terminate_backend (from any thread)
            backend = self._register(session, writer, loop, killed)
            held: list[tuple[str, bytes]] = []  # a pipeline's first part, until its Sync arrives
            while not session.terminated:
                batch = held + _pipeline(frames)
                held = []
                if not batch or (session.copy_in is None and _unfinished(batch)):
                    held = batch
                    data = await self._read_or_notify(reader, writer, session, wake, killed)
                    if not data:
                        break
                    frames.feed(data)
                    continue
                if any(kind in ("Q", "P", "B", "E") for kind, _ in batch):  # not a lone Sync
                    backend.run(_query_of(batch, session) or backend.query, in_transaction=session.status != "I")
                s = session.db.session
                reported = reported_settings(s)
                out = await loop.run_in_executor(executor, session.handle_all, batch)
                if killed.is_set():  # its answers are dropped: the client gets the FATAL only
                    raise _Closing("57P01", "terminating connection due to administrator command")
                _report_changes(out, reported, reported_settings(s))
                backend.application_name = s.settings.get("application_name",
                                                          s.server_settings.get("application_name", ""))
                if session.copy_in is None:  # COPY FROM STDIN is active while the client sends rows
                    backend.idle(session.status)
                if out:
                    writer.write(b"".join(out))
                    await writer.drain()
        except _Closing as e:
            await _say_and_close(writer, p.error_response(e.sqlstate, e.message, severity="FATAL"))
        except (p.ProtocolViolation, errors.ProgramLimitExceeded, errors.CharacterNotInRepertoire) as e:
            await _say_and_close(writer, p.error_for(e).replace(b"SERROR", b"SFATAL", 1))
        except _LoginTimeout:
            await _say_and_close(writer, p.error_response("57014", "canceling authentication due to timeout",
                                                          severity="FATAL"))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping: clean up below
        finally:
            if session is not None:
                self.clients.pop(session.pid, None)
                self.activity.remove(session.pid)
                await loop.run_in_executor(executor, session.db.close)
            executor.shutdown(wait=False)
            self._last_client = time.monotonic()
            writer.close()

    def _admit(self, writer: asyncio.StreamWriter) -> None:
        """Count a new connection among those logging in; past ``max_pending_logins``
        the oldest of them is told and closed (refusing the newest instead would let a
        few silent sockets keep every real client out until they time out)."""
        self._pending[id(writer)] = writer
        while len(self._pending) > max(1, self.options.max_pending_logins):
            _, oldest = self._pending.popitem(last=False)
            try:
                oldest.write(p.error_response("53300", "too many connections are logging in at once",
                                              severity="FATAL"))
            except (ConnectionError, RuntimeError):
                pass
            oldest.close()  # its task reads the end of the stream and cleans up

    def _register(self, session: ClientSession, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop,
                  killed: asyncio.Event) -> Backend:
        """List a logged-in client in pg_stat_activity; pg_terminate_backend sets ``killed``
        and interrupts its running statement, pg_cancel_backend only the latter."""
        s = session.db.session
        peer = writer.get_extra_info("peername")
        tcp = isinstance(peer, tuple) and len(peer) >= 2

        def cancel() -> None:
            try:
                s.cancel()
            except Exception:  # noqa: BLE001 - it closed meanwhile: nothing left to cancel
                pass

        def terminate() -> None:
            cancel()  # first: once killed is set, the session may close at any moment
            loop.call_soon_threadsafe(killed.set)

        backend = Backend(session.pid, s.user, s.database, terminate, cancel,
                          application_name=s.server_settings.get("application_name", ""),
                          client_addr=peer[0] if tcp else None, client_port=peer[1] if tcp else -1)
        self.activity.add(backend)
        s.pg.activity = self.activity
        return backend

    async def _read_or_notify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              session: ClientSession, wake: asyncio.Event, killed: asyncio.Event) -> bytes:
        """The client's next bytes; while it is idle, notifications are pushed to it. A
        session idle past idle_in_transaction_session_timeout / idle_session_timeout, or
        terminated, is closed (_Closing), as PostgreSQL closes it."""
        loop = asyncio.get_running_loop()
        in_transaction_ms, idle_ms = idle_timeouts_ms(session.db.session)
        limit_ms = in_transaction_ms if session.status != "I" else idle_ms
        if session.copy_in is not None:  # not idle: the statement waits for the client's rows
            limit_ms = 0
        deadline = loop.time() + limit_ms / 1000 if limit_ms > 0 else None
        read = asyncio.ensure_future(reader.read(65536))
        kill = asyncio.ensure_future(killed.wait())
        waiter: asyncio.Future | None = None
        try:
            while True:
                waiter = asyncio.ensure_future(wake.wait())
                left = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait({read, waiter, kill}, timeout=left,
                                             return_when=asyncio.FIRST_COMPLETED)
                if kill in done:
                    raise _Closing("57P01", "terminating connection due to administrator command")
                if not done:  # idle past the timeout
                    if session.status != "I":
                        raise _Closing("25P03", "terminating connection due to idle-in-transaction timeout")
                    raise _Closing("57P05", "terminating connection due to idle-session timeout")
                if waiter in done:
                    wake.clear()
                    out = session.notifications()
                    if out:
                        writer.write(b"".join(out))
                        await writer.drain()
                else:
                    waiter.cancel()
                if read in done:
                    return read.result()
        finally:
            for f in (read, waiter, kill):
                if f is not None and not f.done():
                    f.cancel()

    async def _startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       frames: p.MessageReader, executor: ThreadPoolExecutor,
                       deadline: float) -> ClientSession | None:
        """Startup packet, TLS, authentication: all by ``deadline`` (else _LoginTimeout)."""
        while True:
            msg = frames.next()
            if msg is None:
                data = await _read_by(reader, deadline)
                if not data:
                    return None
                frames.feed(data)
                continue
            start = p.parse_startup(msg[1])
            if start.code == p.SSL_REQUEST and self.options.ssl_context is not None:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.options.ssl_context,
                                       ssl_handshake_timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
                continue
            if start.code in (p.SSL_REQUEST, p.GSSENC_REQUEST):
                writer.write(b"N")  # the client goes on in the clear, or gives up (sslmode=require)
                await writer.drain()
                continue
            if start.code == p.CANCEL_REQUEST:
                assert start.cancel is not None
                self._cancel(*start.cancel)
                return None
            break
        frames.started = True
        frames.max_message = min(self.options.max_message, p.MAX_AUTH_MESSAGE)  # until logged in
        if len(self.clients) >= self.options.max_connections:
            await _say_and_close(writer, p.error_response("53300", "sorry, too many clients already",
                                                          severity="FATAL"))
            return None
        user = start.params.get("user", "")
        database = start.params.get("database", user)
        branch = _branch_of(database)
        loop = asyncio.get_running_loop()
        try:
            account = await self._authenticate(reader, writer, frames, executor, user, deadline)
            rights = user_store.rights_of(account)
            if not rights.may_name(branch):
                raise errors.InsufficientPrivilege(f'user "{user}" may not use branch "{branch}"')
        except (errors.Error, ConnectionError) as e:
            if isinstance(e, errors.Error):
                await _say_and_close(writer, p.error_for(e).replace(b"SERROR", b"SFATAL", 1))
            return None
        if not _names_database(database, self.options.path):
            await _say_and_close(writer, p.error_response("3D000", f'database "{database}" does not exist',
                                                          severity="FATAL"))
            return None
        try:
            db = await loop.run_in_executor(executor, lambda: connect(
                self.options.path, branch=branch, create=False, memory_limit=self.options.statement_memory))
        except errors.Error as e:
            await _say_and_close(writer, p.error_response(
                "3D000" if e.sqlstate in ("3D000", "42704") else e.sqlstate,
                f'database "{database}" does not exist: {e.message}', severity="FATAL"))
            return None
        pid = next(self._pids)
        db.session.configure(SessionOptions(
            user=user or "reeldb", database=database.partition("/")[0] or "reeldb", rights=rights,
            backend_pid=pid, statement_timeout_ms=self.options.statement_timeout_ms,
            server_settings={"max_connections": str(self.options.max_connections),
                             "statement_timeout": f"{self.options.statement_timeout_ms}ms"}))
        try:  # the packet's settings (application_name, options=-c name=value, ...), as if SET
            await loop.run_in_executor(executor, apply_startup, db.session, start.params)
        except errors.Error as e:
            await loop.run_in_executor(executor, db.close)
            await _say_and_close(writer, p.error_for(e).replace(b"SERROR", b"SFATAL", 1))
            return None
        frames.max_message = self.options.max_message
        session = ClientSession(db, user, database, pid)
        self.clients[session.pid] = session
        writer.write(b"".join(session.greeting(start.params)))
        await writer.drain()
        return session

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            frames: p.MessageReader, executor: ThreadPoolExecutor,
                            user: str, deadline: float) -> user_store.User | None:
        """SCRAM-SHA-256 when users exist; else trust, for loopback peers only. Returns
        the user (None: the trusted loopback session)."""
        loop = asyncio.get_running_loop()
        accounts = await loop.run_in_executor(executor, user_store.list_users, self.store)
        if not accounts:
            host = writer.get_extra_info("peername")[0]
            if host not in ("127.0.0.1", "::1") and not host.startswith("::ffff:127."):
                raise errors.InvalidAuthorizationSpecification(
                    f"no users exist, so only loopback clients are trusted; {host} is not one "
                    "(add a user with `reeldb user add`)")
            return None
        known = next((a for a in accounts if a.name == user), None)
        # an unknown user gets PostgreSQL's mock exchange: the same messages, the same work
        scram = ScramServer(user, known.verifier if known else None, self.mock_secret)
        writer.write(p.message("R", struct.pack("!i", 10) + b"SCRAM-SHA-256\0\0"))
        await writer.drain()
        initial = p.Payload(await _next_message(reader, frames, "p", deadline))
        mechanism = initial.cstring()
        if mechanism != "SCRAM-SHA-256":
            raise errors.ProtocolViolation(f"unsupported SASL mechanism {mechanism!r}")
        n = initial.int32()
        writer.write(p.message("R", struct.pack("!i", 11) + scram.first(initial.take(n))))
        await writer.drain()
        final = scram.final(await _next_message(reader, frames, "p", deadline))
        writer.write(p.message("R", struct.pack("!i", 12) + final))
        assert known is not None  # an unknown user's exchange has failed above
        return known

    def _cancel(self, pid: int, secret: int) -> None:
        """CancelRequest: interrupt the client's running statement (57014 for it)."""
        session = self.clients.get(pid)
        if session is not None and session.secret == secret:
            session.db.session.cancel()


def _pipeline(frames: p.MessageReader) -> list[tuple[str, bytes]]:
    """The complete messages received, up to the first that asks for an answer (Sync,
    Query, Flush, Terminate): one trip to the session's thread and one write for a whole
    Bind / Execute / Sync exchange."""
    batch: list[tuple[str, bytes]] = []
    while (msg := frames.next()) is not None:
        batch.append(msg)
        if msg[0] in ("S", "Q", "H", "X"):
            break
    return batch


HOLD_BYTES = 4 << 20  # a pipeline's messages held for its Sync at most (then they run)


def _unfinished(batch: list[tuple[str, bytes]]) -> bool:
    """Extended-query messages whose Sync (or Flush) is still on its way: a client's
    pipeline split by the socket. Held until it comes, so a run of Bind/Execute of one
    INSERT is written at once (the answers wait for Sync in PostgreSQL too)."""
    return (batch[-1][0] not in ("S", "Q", "H", "X") and all(kind in "PBDEC" for kind, _ in batch)
            and sum(len(payload) for _, payload in batch) < HOLD_BYTES)


def database_name(path: str) -> str:
    """The name clients connect to: the database folder's (or object-store prefix's)
    last part, as ``-d video-gen`` for ``reeldb serve ./video-gen``."""
    if "://" in path:
        return path.split("://", 1)[1].rstrip("/").rsplit("/", 1)[-1]
    return os.path.basename(os.path.abspath(path))


def _names_database(database: str, path: str) -> bool:
    """``NAME`` or ``NAME/BRANCH`` for this server's database; anything else is a
    database that does not exist here (3D000), not silently this one."""
    return database.partition("/")[0] == database_name(path)


def _branch_of(database: str) -> str:
    """``video-gen`` is main; ``video-gen/experiment/x`` is branch ``experiment/x``."""
    _, _, branch = database.partition("/")
    return branch or "main"


def _sender(writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop,
            session: ClientSession) -> Callable[[list[bytes]], None]:
    """How the client's worker thread sends part of a long answer: written on the event
    loop, and the worker waits until the client has taken it (so a result is held in
    chunks, never whole), or until the statement's deadline."""

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    def send(chunks: list[bytes]) -> None:
        sent = asyncio.run_coroutine_threadsafe(write(b"".join(chunks)), loop)
        while True:
            try:
                sent.result(0.5)
                return
            except concurrent.futures.TimeoutError:
                if not loop.is_running():  # the server is stopping: never wait on it forever
                    raise ConnectionError("the server is shutting down") from None
                # the rows are queued whole, so an error after them keeps the stream sound
                session.db.session.check_deadline()

    return send


class _Closing(Exception):
    """The server closes the session with a FATAL error (terminated, idle too long)."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(message)
        self.sqlstate, self.message = sqlstate, message


def _report_changes(out: list[bytes], before: dict[str, str], after: dict[str, str]) -> None:
    """ParameterStatus for each reported setting a batch changed (SET application_name, a
    ROLLBACK that undid one), just before its last ReadyForQuery, where PostgreSQL sends it.
    client_encoding is not among them: the session reports it at the message that changed
    it, since the messages after are encoded in it."""
    changed = [(name, value) for name, value in after.items()
               if before.get(name) != value and name != "client_encoding"]
    if not changed:
        return
    for i in range(len(out) - 1, -1, -1):
        if out[i][:1] == b"Z" and len(out[i]) == 6:
            out[i:i] = [p.parameter_status(name, value) for name, value in changed]
            return


def _query_of(batch: list[tuple[str, bytes]], session: ClientSession) -> str:
    """The SQL a batch of messages runs, as pg_stat_activity shows it: a simple Query's
    text, a Parse's, or the prepared statement a Bind names, read in the client's encoding
    (this connection's task has a context of its own)."""
    p.use_client_encoding(session.encoding)
    for kind, payload in batch:
        try:
            if kind == "Q":
                return p.parse_query(payload)
            if kind == "P":
                return p.parse_parse(payload).query
            if kind == "B":
                statement = session.statements.get(p.parse_bind(payload).statement)
                if statement is not None:
                    return statement.query
        except (errors.Error, ValueError, UnicodeDecodeError, struct.error):
            return ""  # the session answers a bad message itself
    return ""


class _LoginTimeout(Exception):
    """The client did not log in within ``authentication_timeout``."""


async def _read_by(reader: asyncio.StreamReader, deadline: float) -> bytes:
    """The client's next bytes, if they come before ``deadline`` (loop time)."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise _LoginTimeout
    try:
        return await asyncio.wait_for(reader.read(65536), left)
    except asyncio.TimeoutError:
        raise _LoginTimeout from None


def _mock_secret(store: Any) -> bytes:
    """The database's lasting secret for mock authentication (like PostgreSQL's
    mock_auth_nonce): an unknown user's fake salt stays the same across restarts, as a
    real user's does. A store that cannot be written gets a per-process secret."""
    key = keys.MOCK_SECRET
    try:
        store.put_if_absent(key, secrets.token_bytes(32))
        return store.get(key)
    except (OSError, KeyError, errors.Error) as e:
        log.warning("no lasting mock-authentication secret (%s): using one for this process", e)
        return secrets.token_bytes(32)


async def _next_message(reader: asyncio.StreamReader, frames: p.MessageReader, kind: str,
                        deadline: float) -> bytes:
    """The payload of the next message, which must be of type ``kind``."""
    while True:
        msg = frames.next()
        if msg is not None:
            if msg[0] != kind:
                raise errors.ProtocolViolation(f"expected a password message, got {msg[0]!r}")
            return msg[1]
        data = await _read_by(reader, deadline)
        if not data:
            raise ConnectionError("client closed the connection during authentication")
        frames.feed(data)


async def _say_and_close(writer: asyncio.StreamWriter, message: bytes) -> None:
    try:
        writer.write(message)
        await writer.drain()
    except ConnectionError:
        pass


def systemd_sockets() -> list[socket.socket] | None:
    """Listening sockets passed by socket activation (``LISTEN_FDS``, from fd 3)."""
    fds, pid = os.environ.get("LISTEN_FDS"), os.environ.get("LISTEN_PID")
    if not fds or (pid is not None and pid != str(os.getpid())):
        return None
    return [socket.socket(fileno=3 + i) for i in range(int(fds))]


def run(options: ServerOptions) -> int:
    """Run a server in the foreground until interrupted or idle."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s reeldb serve: %(message)s", stream=sys.stderr)
    options.sockets = options.sockets or systemd_sockets()
    server = Server(options)

    async def main() -> None:
        await server.start()
        host, port = server.address
        log.info("serving %s on %s:%s", options.path, host, port)
        await server.serve()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


class BackgroundServer:
    """A server on its own event-loop thread (tests, notebooks): listening once made;
    ``stop()`` closes it."""

    def __init__(self, path: str, **options: Any):
        import threading

        self.server = Server(ServerOptions(path, **options))
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        failed: list[BaseException] = []

        def run_loop() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.server.start())
            except BaseException as e:  # noqa: BLE001 - handed to the constructor
                failed.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run_loop, name="reeldb-server", daemon=True)
        self.thread.start()
        ready.wait(30)
        if failed:
            raise failed[0]

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def stop(self) -> None:
        """Close the listener, end every client's task, then the loop."""

        async def shutdown() -> None:
            if self.server._server is not None:
                self.server._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
