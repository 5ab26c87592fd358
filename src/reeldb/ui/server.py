"""Running the web app: the address check, the login and uvicorn.

The app listens on 127.0.0.1 unless told otherwise; any address a browser elsewhere could
reach needs a login: a random token that every request must carry (printed at start as a
link that sets it as a cookie), or the database's users, each with its own rights.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors
from .app import build_app
from .guard import is_loopback
from .labels import Labelling
from .logins import CURRENT_USER, Logins, PerUser, VerifiedCache
from .snapshots import DEFAULT_STATEMENT_TIMEOUT_MS, Snapshots

if TYPE_CHECKING:
    from ..connection import Connection

DEFAULT_PORT = 8700


def check_bind(host: str, login: bool) -> None:
    """Refuse (28000) to serve a non-loopback address without a login."""
    if not is_loopback(host) and not login:
        raise errors.InvalidAuthorizationSpecification(
            f"reeldb ui on {host} would show the database to anyone who can reach that address: "
            "add --login (a token is printed at start), or listen on 127.0.0.1")


class UIHandle:
    """A running ``reeldb ui``: ``url`` opens it (with the token, if any); ``close()`` stops it."""

    def __init__(self, server: Any, thread: threading.Thread | None, url: str, token: str | None,
                 owned: Connection | None, per_user: PerUser | None = None):
        self._server = server
        self._thread = thread
        self.url = url
        self.token = token
        self._owned = owned
        self._per_user = per_user

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._per_user is not None:
            self._per_user.close()  # the users' own connections
            self._per_user = None
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> UIHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<reeldb ui at {self.url}>"

    def _repr_html_(self) -> str:  # a notebook shows a link
        return f'<a href="{self.url}" target="_blank">reeldb ui: {self.url}</a>'


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise errors.OperationalError(f"reeldb ui cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def start(db: Connection, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          branch: str | None = None, login: bool | str = False, token: str | None = None,
          logins: Logins | None = None,
          statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS, background: bool = True,
          owned: bool = False, announce: Any = None, label_branch: str | None = None,
          label_column: str = "human_preference",
          connect_branch: Callable[[str], Connection] | None = None,
          embed: Callable[[str], Any] | None = None) -> UIHandle:
    """Serve ``db`` (its login's rights apply); ``port=0`` picks a free port. With
    ``background`` the server runs on a thread and this returns at once; else it runs
    until interrupted. ``owned``: close ``db`` when the server stops.

    ``label_branch`` turns on labelling: labels are written to ``label_column`` of the rows
    on that branch through connections ``connect_branch(branch)`` opens (one per batch).

    ``embed`` (text -> vector, e.g. a text encoder) lets the grid be ordered by the
    similarity of a vector column to a typed text.

    ``login``: False (loopback only), True or ``"token"`` (a random token, in ``url``), or
    ``"users"``: the database's users, by HTTP Basic, through ``logins``; each reads and
    labels with its own rights."""
    import uvicorn

    if login is True:
        mode: str | None = "token"
    elif login is False:
        mode = "token" if token is not None else None
    else:
        mode = login
    if mode not in (None, "token", "users"):
        raise errors.InvalidParameterValue(f"login is token or users, not {login!r}")
    if mode == "users" and logins is None:
        raise errors.InvalidParameterValue("a login by the database's users needs its user store")
    check_bind(host, mode is not None)
    if mode == "token" and token is None:
        token = secrets.token_urlsafe(24)
    default_ref = branch or db.current_branch or db.head
    with db.at(default_ref):  # fail now on a branch that does not exist
        pass
    snapshots: Any = Snapshots(db, default_ref, statement_timeout_ms)
    users = None
    if mode == "users":
        assert logins is not None
        snapshots = PerUser(logins, lambda conn: Snapshots(conn, default_ref, statement_timeout_ms))
        users = VerifiedCache(logins)
        connect_branch = lambda branch_name: logins.connect(CURRENT_USER.get() or "", branch_name)  # noqa: E731
    labelling = None
    if label_branch is not None:
        if connect_branch is None:
            raise errors.InvalidParameterValue("labelling needs a way to open the labelling branch")
        labelling = Labelling(snapshots, label_branch, label_column, connect_branch)
    app = build_app(snapshots, token if mode == "token" else None, labelling, users, embed)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    handle = UIHandle(server, None, url, token, db if owned else None,
                      snapshots if isinstance(snapshots, PerUser) else None)
    if announce is not None:
        announce(url)
    if not background:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        finally:
            sock.close()
            handle.close()
        return handle
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_serve(server, sock, started))
        finally:
            loop.close()
            sock.close()

    thread = threading.Thread(target=run, name="reeldb-ui", daemon=True)
    handle._thread = thread
    thread.start()
    started.wait(10)
    return handle


async def _serve(server: Any, sock: socket.socket, started: threading.Event) -> None:
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    started.set()
    await task
