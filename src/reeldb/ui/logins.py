"""Logins by the database's own users (``reeldb ui --login users``).

The browser sends HTTP Basic credentials; they are checked against the SCRAM verifiers
the database stores for ``reeldb serve`` (only hashes are stored), and every page, API
call and media request then reads through a connection that carries that user's rights:
read-only logins write nothing, branch patterns hide the branches they do not name.
Basic sends the password with every request: use it on loopback or behind TLS.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import errors

if TYPE_CHECKING:
    from ..connection import Connection
    from .snapshots import Snapshots

CURRENT_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar("reeldb_ui_user", default=None)
VERIFIED_FOR = 60.0  # seconds a checked password is trusted without stretching it again


class Logins(Protocol):
    """What the app needs of a user store: a password check, and a connection as a user
    (on ``branch``, or the default one)."""

    def authenticate(self, name: str, password: str) -> bool: ...

    def connect(self, name: str, branch: str | None = None) -> Connection: ...


class VerifiedCache:
    """Passwords checked lately (by digest, never in clear), so a page's many media range
    requests do not each pay the key stretching."""

    def __init__(self, logins: Logins, capacity: int = 1024):
        self._logins = logins
        self._seen: dict[bytes, float] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def check(self, name: str, password: str) -> bool:
        key = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            if self._seen.get(key, 0.0) > now:
                return True
        if not self._logins.authenticate(name, password):
            return False
        with self._lock:
            if len(self._seen) >= self._capacity:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            self._seen[key] = now + VERIFIED_FOR
        return True


class PerUser:
    """Stands in for ``Snapshots``: each attribute is the current request's user's own
    ``Snapshots`` (made on first use, over a connection with that user's rights)."""

    def __init__(self, logins: Logins, make: Callable[[Connection], Snapshots]):
        self._logins = logins
        self._make = make
        self._by_user: dict[str, Snapshots] = {}
        self._lock = threading.Lock()

    def current(self) -> Snapshots:
        user = CURRENT_USER.get()
        if user is None:
            raise errors.InvalidAuthorizationSpecification("no user is logged in")
        with self._lock:
            snapshots = self._by_user.get(user)
            if snapshots is None:
                snapshots = self._by_user[user] = self._make(self._logins.connect(user))
            return snapshots

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    def close(self) -> None:
        with self._lock:
            for s in self._by_user.values():
                s.root.close()
            self._by_user.clear()
