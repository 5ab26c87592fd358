"""Who is connected: the sessions ``pg_stat_activity`` lists and ``pg_terminate_backend`` /
``pg_cancel_backend`` signal, with PostgreSQL's rights.

A front end that serves several clients (``reeldb serve``) keeps one ``Activity`` and
registers a ``Backend`` per logged-in client, updating its state as statements run; the
catalog reads it through ``backends()`` and signals through ``signal()``, never through
the front end's own objects. An embedded connection has no registry: it is the one
session its ``pg_stat_activity`` shows.

Rights, as PostgreSQL 16 gives them: a login sees every row, but the details of another
user's session (query, client address, times, state) only with the admin right, which
plays the part of ``pg_read_all_stats`` and ``pg_signal_backend``; it may terminate or
cancel its own user's sessions, and an admin anyone's (no reeldb login is a superuser).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import errors

STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Backend:
    """One client session as ``pg_stat_activity`` shows it. The front end changes the
    state fields as the client works; ``terminate`` and ``cancel`` may be called from
    any thread."""

    pid: int
    user: str
    database: str
    terminate: Callable[[], None]
    cancel: Callable[[], None]
    application_name: str = ""
    client_addr: str | None = None
    client_port: int | None = None
    backend_start: dt.datetime = field(default_factory=now)
    xact_start: dt.datetime | None = None
    query_start: dt.datetime | None = None
    state_change: dt.datetime | None = None
    state: str = "idle"
    query: str = ""

    def run(self, query: str, in_transaction: bool) -> None:
        """A statement (or a batch of protocol messages) starts."""
        t = now()
        self.query, self.query_start, self.state, self.state_change = query, t, "active", t
        if not in_transaction:
            self.xact_start = t

    def idle(self, transaction: str) -> None:
        """It ended; ``transaction`` is the protocol's status: I, T or E."""
        state = {"I": "idle", "T": "idle in transaction", "E": "idle in transaction (aborted)"}[transaction]
        if state != self.state:
            self.state, self.state_change = state, now()
        if transaction == "I":
            self.xact_start = None


class Activity:
    """The live sessions of one server, by pid."""

    def __init__(self) -> None:
        self._backends: dict[int, Backend] = {}
        self._lock = threading.Lock()

    def add(self, backend: Backend) -> None:
        with self._lock:
            self._backends[backend.pid] = backend

    def remove(self, pid: int) -> None:
        with self._lock:
            self._backends.pop(pid, None)

    def backends(self) -> list[Backend]:
        with self._lock:
            return sorted(self._backends.values(), key=lambda b: b.pid)

    def get(self, pid: int) -> Backend | None:
        with self._lock:
            return self._backends.get(pid)


class WarningNotice(str):
    """A notice PostgreSQL sends with severity WARNING (SQLSTATE 01000), not NOTICE: front
    ends read ``severity`` and ``sqlstate`` off it; elsewhere it is the message text."""

    severity = "WARNING"
    sqlstate = "01000"


def may_see(viewer_user: str, viewer_admin: bool, backend: Backend) -> bool:
    """Whether a login sees the details of ``backend`` (PostgreSQL: a member of its role,
    or of pg_read_all_stats)."""
    return viewer_admin or backend.user == viewer_user


def signal(backend: Backend | None, pid: int, kind: str, user: str, admin: bool,
           notice: Callable[[str], None]) -> bool:
    """pg_terminate_backend / pg_cancel_backend of ``pid`` by a login: True once
    signalled; an unknown pid is a warning and False, as in PostgreSQL; another user's
    session without the admin right is 42501."""
    if backend is None:
        notice(WarningNotice(f"PID {pid} is not a PostgreSQL backend process"))
        return False
    if not admin and backend.user != user:
        if kind == "terminate":
            raise errors.InsufficientPrivilege("permission denied to terminate process")
        raise errors.InsufficientPrivilege("permission denied to cancel query")
    (backend.terminate if kind == "terminate" else backend.cancel)()
    return True
