"""PostgreSQL's advisory locks: ``pg_advisory_lock``, ``pg_try_advisory_lock``,
``pg_advisory_unlock``, ``pg_advisory_unlock_all`` and the ``_xact_`` variants.

One lock table per process and database: every session of one ``reeldb serve`` (or of
one program, embedded) shares it, as every backend of one Postgres database does. A
session lock is re-entrant (taken n times, it needs n unlocks) and is released when its
session ends; a transaction lock is released when the transaction ends (a statement
outside a transaction block is its own transaction, so there it is released at once).
Any login may take advisory locks, as in PostgreSQL: they guard nothing but each other.

The calls are answered while the statement is rewritten (their arguments must be
constants or parameters), never while a Describe runs the statement for its columns.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from .. import errors
from .activity import WarningNotice

if TYPE_CHECKING:
    from .session import Session

FUNCTIONS = frozenset({
    "pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_unlock", "pg_advisory_unlock_all",
    "pg_advisory_xact_lock", "pg_try_advisory_xact_lock",
})

_POLL_S = 0.05  # a waiting lock call checks for cancel and statement_timeout this often
MAX_LOCKS = 100_000  # distinct keys held at once per database: Postgres' lock table is bounded too


class _Table:
    """Holders of each lock: key -> {session id: (session-level count, transaction count)}."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.held: dict[Hashable, tuple[int, int, int]] = {}  # key -> (holder, session n, xact n)
        self.by_session: dict[int, set[Hashable]] = {}

    def try_take(self, holder: int, key: Hashable, xact: bool) -> bool:
        got = self.held.get(key)
        if got is not None and got[0] != holder:
            return False
        if got is None and len(self.held) >= MAX_LOCKS:
            raise errors.OutOfMemory("out of shared memory: too many advisory locks are held "
                                     f"({MAX_LOCKS}); release some with pg_advisory_unlock()")
        _, n_session, n_xact = got or (holder, 0, 0)
        self.held[key] = (holder, n_session + (not xact), n_xact + xact)
        self.by_session.setdefault(holder, set()).add(key)
        return True

    def release(self, holder: int, key: Hashable) -> bool:
        got = self.held.get(key)
        if got is None or got[0] != holder or got[1] == 0:
            return False
        self._set(holder, key, got[1] - 1, got[2])
        return True

    def release_all(self, holder: int, xact: bool) -> None:
        for key in list(self.by_session.get(holder, ())):
            _, n_session, n_xact = self.held[key]
            self._set(holder, key, n_session if xact else 0, 0 if xact else n_xact)

    def _set(self, holder: int, key: Hashable, n_session: int, n_xact: int) -> None:
        if n_session or n_xact:
            self.held[key] = (holder, n_session, n_xact)
            return
        del self.held[key]
        keys = self.by_session.get(holder)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_session[holder]
        self.cond.notify_all()


_TABLES: dict[str, _Table] = {}
_TABLES_LOCK = threading.Lock()
_FINALIZED: set[int] = set()


def _table(s: Session) -> _Table:
    db = str(getattr(s.catalog.store, "url", id(s.catalog.store)))
    with _TABLES_LOCK:
        return _TABLES.setdefault(db, _Table())


def _key(name: str, args: list[Any]) -> Hashable:
    """pg_advisory_lock(bigint) and (int, int) are two key spaces, as in Postgres."""
    if any(a is None for a in args):
        return None
    try:
        if len(args) == 1:
            k = int(args[0])
            if not -(2**63) <= k < 2**63:
                raise errors.NumericValueOutOfRange("bigint out of range")
            return ("int8", k)
        if len(args) == 2:
            a, b = int(args[0]), int(args[1])
            if not all(-(2**31) <= x < 2**31 for x in (a, b)):
                raise errors.NumericValueOutOfRange("integer out of range")
            return ("int4", a, b)
    except (TypeError, ValueError):
        pass
    raise errors.UndefinedFunction(f"function {name}({', '.join('...' for _ in args)}) does not exist")


def call(s: Session, name: str, args: list[Any]) -> Any:
    """The value of one advisory-lock call (None for void), taking or releasing the lock."""
    if name == "pg_advisory_unlock_all":
        if args:
            raise errors.UndefinedFunction("function pg_advisory_unlock_all(...) does not exist")
        if not s.describing:
            release_session(s)
        return None
    key = _key(name, args)
    if key is None:  # a NULL argument: the function is strict
        return None
    if s.describing:
        return True if name.startswith(("pg_try", "pg_advisory_unlock")) else None
    table = _table(s)
    holder = id(s)
    _watch(s, table)
    xact = "_xact_" in name
    keep = not xact or s.txn is not None  # outside a block the statement's transaction ends now
    with table.cond:
        if name == "pg_advisory_unlock":
            if table.release(holder, key):
                return True
            s.notice(WarningNotice("you don't own a lock of type ExclusiveLock"))
            return False
        if name.startswith("pg_try"):
            got = table.try_take(holder, key, xact)
            if got and not keep:
                table.release_all(holder, xact=True)
            return got
        while not table.try_take(holder, key, xact):
            table.cond.wait(_POLL_S)
            s.check_deadline()  # 57014 on cancel or statement_timeout, as Postgres' lock wait
        if not keep:
            table.release_all(holder, xact=True)
        return None


def release_session(s: Session) -> None:
    """Every advisory lock ``s`` holds (pg_advisory_unlock_all, and the session's end)."""
    table = _table(s)
    with table.cond:
        table.release_all(id(s), xact=False)


def end_of_transaction(s: Session) -> None:
    """The transaction-level locks ``s`` took in the transaction that just ended."""
    table = _table(s)
    with table.cond:
        table.release_all(id(s), xact=True)


def _watch(s: Session, table: _Table) -> None:
    """A session dropped without being closed still gives its locks back."""
    holder = id(s)
    if holder in _FINALIZED:
        return
    _FINALIZED.add(holder)

    def gone() -> None:
        _FINALIZED.discard(holder)
        with table.cond:
            table.release_all(holder, xact=False)
            table.release_all(holder, xact=True)

    weakref.finalize(s, gone)
