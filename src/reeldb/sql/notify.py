"""LISTEN / NOTIFY between the sessions of one process (the server's clients, or
connections of one program), per database, as Postgres delivers them: a NOTIFY inside a
transaction is sent when it commits (and never if it rolls back); duplicates of one
transaction are sent once; a listener gets them between its own transactions."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:
    from .session import Session

MAX_PAYLOAD = 8000  # bytes, as Postgres


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, str], weakref.WeakSet[Session]] = {}

    def listen(self, s: Session, channel: str) -> None:
        with self._lock:
            self._listeners.setdefault((_database(s), channel), weakref.WeakSet()).add(s)

    def unlisten(self, s: Session, channel: str | None) -> None:
        with self._lock:
            for (db, ch), sessions in self._listeners.items():
                if db == _database(s) and (channel is None or ch == channel):
                    sessions.discard(s)

    def publish(self, s: Session, notes: list[tuple[str, str]]) -> None:
        with self._lock:
            targets = [(ch, payload, list(self._listeners.get((_database(s), ch), ())))
                       for ch, payload in notes]
        for ch, payload, sessions in targets:
            for listener in sessions:
                listener.notifications.append((s.backend_pid, ch, payload))
                if listener.on_notify is not None:
                    listener.on_notify()


HUB = Hub()


def _database(s: Session) -> str:
    return str(getattr(s.catalog.store, "url", id(s.catalog.store)))


def notify(s: Session, channel: str, payload: str | None) -> None:
    """NOTIFY: now outside a transaction, at COMMIT inside one."""
    if not channel:
        raise errors.InvalidParameterValue("channel name cannot be empty")
    payload = payload or ""
    if len(payload.encode("utf-8")) >= MAX_PAYLOAD:
        raise errors.InvalidParameterValue("payload string too long")
    if s.txn is None:
        HUB.publish(s, [(channel, payload)])
    elif (channel, payload) not in s.outbox:
        s.outbox.append((channel, payload))


def end_of_transaction(s: Session, committed: bool) -> None:
    notes, s.outbox = s.outbox, []
    if committed and notes:
        HUB.publish(s, notes)


def new_queue() -> deque[tuple[int, str, str]]:
    return deque()
