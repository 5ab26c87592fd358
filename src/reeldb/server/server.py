"""``reeldb serve``: the protocol on asyncio, each client's SQL on its own thread.

The event loop only moves bytes. A client's messages are handled in order on a
single-thread executor of its own, because a reeldb connection (and the DuckDB
connection under it) belongs to one thread at a time; other clients keep being served
meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import ssl
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..connection import connect
from ..storage import open_store
from . import protocol as p
from . import users as user_store
from .conn import ClientSession

log = logging.getLogger("reeldb.server")


@dataclass
class ServerOptions:
    path: str
    host: str = "127.0.0.1"
    port: int = 5433
    max_connections: int = 100
    max_message: int = p.DEFAULT_MAX_MESSAGE
    statement_timeout_ms: int = 0  # each session's default statement_timeout (0: none)
    idle_exit: float | None = None  # stop when no client has been connected this long
    sockets: list[socket.socket] | None = None  # given by the service manager (LISTEN_FDS)
    ssl_context: ssl.SSLContext | None = None  # TLS for clients that ask (SSLRequest)


class Server:
    def __init__(self, options: ServerOptions):
        self.options = options
        self.clients: dict[int, ClientSession] = {}
        self._pids = itertools.count(os.getpid() * 1000 % 2**31)
        self._server: asyncio.base_events.Server | None = None
        self._last_client = time.monotonic()
        connect(options.path, create=False).close()  # fail now on a path that is not a database
        self.store = open_store(options.path, create=False)
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
        try:
            session = await self._startup(reader, writer, frames, executor)
            if session is None:
                return
            wake = asyncio.Event()  # a NOTIFY for this client arrived (from any thread)
            session.db._session.on_notify = lambda: loop.call_soon_threadsafe(wake.set)
            while not session.terminated:
                batch = _pipeline(frames)
                if not batch:
                    data = await self._read_or_notify(reader, writer, session, wake)
                    if not data:
                        break
                    frames.feed(data)
                    continue
                out = await loop.run_in_executor(executor, session.handle_all, batch)
                if out:
                    writer.write(b"".join(out))
                    await writer.drain()
        except (p.ProtocolViolation, errors.ProgramLimitExceeded, errors.CharacterNotInRepertoire) as e:
            await _say_and_close(writer, p.error_for(e).replace(b"SERROR", b"SFATAL", 1))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping: clean up below
        finally:
            if session is not None:
                self.clients.pop(session.pid, None)
                await loop.run_in_executor(executor, session.db.close)
            executor.shutdown(wait=False)
            self._last_client = time.monotonic()
            writer.close()

    async def _read_or_notify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              session: ClientSession, wake: asyncio.Event) -> bytes:
        """The client's next bytes; while it is idle, notifications are pushed to it."""
        read = asyncio.ensure_future(reader.read(65536))
        waiter: asyncio.Future | None = None
        try:
            while True:
                waiter = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait({read, waiter}, return_when=asyncio.FIRST_COMPLETED)
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
            for f in (read, waiter):
                if f is not None and not f.done():
                    f.cancel()

    async def _startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       frames: p.MessageReader, executor: ThreadPoolExecutor) -> ClientSession | None:
        while True:
            msg = frames.next()
            if msg is None:
                data = await reader.read(65536)
                if not data:
                    return None
                frames.feed(data)
                continue
            start = p.parse_startup(msg[1])
            if start.code == p.SSL_REQUEST and self.options.ssl_context is not None:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.options.ssl_context)
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
        if len(self.clients) >= self.options.max_connections:
            await _say_and_close(writer, p.error_response("53300", "sorry, too many clients already",
                                                          severity="FATAL"))
            return None
        user = start.params.get("user", "")
        database = start.params.get("database", user)
        branch = _branch_of(database)
        loop = asyncio.get_running_loop()
        try:
            account = await self._authenticate(reader, writer, frames, executor, user)
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
            db = await loop.run_in_executor(executor, lambda: connect(self.options.path, branch=branch,
                                                                      create=False))
        except errors.Error as e:
            await _say_and_close(writer, p.error_response(
                "3D000" if e.sqlstate in ("3D000", "42704") else e.sqlstate,
                f'database "{database}" does not exist: {e.message}', severity="FATAL"))
            return None
        db._session.rights = rights
        db._session.user = user or "reeldb"
        db._session.database = database.partition("/")[0] or "reeldb"
        db._session.statement_timeout_ms = self.options.statement_timeout_ms
        session = ClientSession(db, user, database, next(self._pids))
        db._session.backend_pid = session.pid
        self.clients[session.pid] = session
        writer.write(b"".join(session.greeting(start.params)))
        await writer.drain()
        return session

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            frames: p.MessageReader, executor: ThreadPoolExecutor,
                            user: str) -> user_store.User | None:
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
        scram = await loop.run_in_executor(executor, user_store.check_login, self.store, user)
        writer.write(p.message("R", struct.pack("!i", 10) + b"SCRAM-SHA-256\0\0"))
        await writer.drain()
        initial = p.Payload(await _next_message(reader, frames, "p"))
        mechanism = initial.cstring()
        if mechanism != "SCRAM-SHA-256":
            raise errors.ProtocolViolation(f"unsupported SASL mechanism {mechanism!r}")
        n = initial.int32()
        writer.write(p.message("R", struct.pack("!i", 11) + scram.first(initial.take(n))))
        await writer.drain()
        final = scram.final(await _next_message(reader, frames, "p"))
        writer.write(p.message("R", struct.pack("!i", 12) + final))
        accounts = {a.name: a for a in accounts}
        return accounts[user]

    def _cancel(self, pid: int, secret: int) -> None:
        """CancelRequest: interrupt the client's running statement (57014 for it)."""
        session = self.clients.get(pid)
        if session is not None and session.secret == secret:
            session.db._session.engine.con.interrupt()


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


async def _next_message(reader: asyncio.StreamReader, frames: p.MessageReader, kind: str) -> bytes:
    """The payload of the next message, which must be of type ``kind``."""
    while True:
        msg = frames.next()
        if msg is not None:
            if msg[0] != kind:
                raise errors.ProtocolViolation(f"expected a password message, got {msg[0]!r}")
            return msg[1]
        data = await reader.read(65536)
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
