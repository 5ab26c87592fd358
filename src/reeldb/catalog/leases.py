"""Writer leases: what keeps VACUUM from deleting files a running transaction has written
but not yet committed.

Each writing process keeps one small object, ``_reeldb/writers/<id>``, holding the start
time of its oldest open transaction. VACUUM keeps every unreachable file newer than the
oldest live lease, whatever grace period it was given. The lease is written when a process
opens its first transaction and refreshed at most once a minute after that, so a stream of
single-row INSERTs pays for one small write a minute, not one per commit. A lease not
refreshed for ``LEASE_TTL``, or whose process on this machine is gone, belongs to a writer
that died: VACUUM ignores it.

The lease is written through the store of the connection whose transaction needs it (each
connection may carry its own credentials), and deleted when the last catalog of this
process using it closes, or at exit for catalogs never closed.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import threading
import time
import uuid
import weakref
from typing import Any

from ..format.keys import WRITERS
from ..storage import ObjectStore

REFRESH = 60.0  # seconds between lease writes of a busy process
LEASE_TTL = 3600.0  # a lease older than this is a dead process's
# At exit, leases are deleted concurrently for at most this long: an unreachable store must
# not hold the process. A lease left behind is ignored once its process is gone (same
# machine) or after LEASE_TTL (another machine).
EXIT_BUDGET_S = 2.0


_LEASES: dict[str, Lease] = {}  # store url -> this process's lease on it, while a catalog uses it
_LEASES_LOCK = threading.Lock()


def lease_for(store: ObjectStore) -> Lease:
    """This process's lease on a database (one, however many connections it opens),
    attached to ``store`` until ``detach``: the last catalog to let go releases it."""
    with _LEASES_LOCK:
        lease = _LEASES.get(store.url)
        if lease is None:
            lease = _LEASES[store.url] = Lease(store)
        lease._stores.append(store)
        return lease


def detach(lease: Lease, store: ObjectStore) -> None:
    """A catalog on ``store`` closed: once no catalog of this process uses the lease and
    no transaction is open under it, its object is deleted now (not at exit)."""
    with _LEASES_LOCK:
        if store in lease._stores:
            lease._stores.remove(store)
        last = not lease._stores and lease.oldest_here() is None
        if last and _LEASES.get(store.url) is lease:
            del _LEASES[store.url]
    if last:
        lease.release(store)


class Lease:
    def __init__(self, store: ObjectStore):
        # the stores of the catalogs using this lease: it is written through the one of the
        # transaction that needs it, so each connection's own credentials are used
        self._stores: list[ObjectStore] = []
        self._last_store = store
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()  # open transactions (have .started)
        self._lock = threading.Lock()
        self._reset()

    @property
    def store(self) -> ObjectStore:
        """A store of a catalog still open (the last one used when none is)."""
        return self._stores[-1] if self._stores else self._last_store

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._key = f"{WRITERS}{self._pid}-{uuid.uuid4().hex[:12]}"
        self._written_at = 0.0
        self._written_since: float | None = None

    def opened(self, txn: Any) -> None:
        """A transaction started (``txn.started``) on ``txn.catalog``: make sure the lease
        covers it, writing through that catalog's store."""
        store = txn.catalog.store
        with self._lock:
            self._last_store = store
            if self._pid != os.getpid():  # a forked child writes its own lease
                self._open = weakref.WeakSet()
                self._reset()
            self._open.add(txn)
            now = time.time()
            since = min((t.started for t in self._open if t.open), default=txn.started)
            stale = now - self._written_at > REFRESH
            if self._written_since is None or since < self._written_since or stale:
                body = {"since": since, "pid": self._pid, "host": socket.gethostname()}
                store.put(self._key, json.dumps(body).encode())
                self._written_at, self._written_since = now, since

    def oldest_here(self) -> float | None:
        """This process's oldest open transaction (its own lease may lag behind)."""
        if self._pid != os.getpid():
            return None
        return min((t.started for t in self._open if t.open), default=None)

    @property
    def key(self) -> str:
        return self._key

    @property
    def held(self) -> bool:
        """This process has written the lease object (so must delete it)."""
        return self._written_since is not None and self._pid == os.getpid()

    def release(self, store: ObjectStore | None = None) -> None:
        """Delete the lease object (through ``store``, else an open catalog's)."""
        if self.held:
            try:
                (store or self.store).delete(self._key)
            except Exception:  # noqa: BLE001 - best effort at exit; a stale lease expires
                pass
            self._written_since = None


@atexit.register
def _release_all() -> None:
    """Delete this process's leases, all at once and within ``EXIT_BUDGET_S``."""
    with _LEASES_LOCK:
        leases = list(_LEASES.values())
    threads = [threading.Thread(target=lease.release, daemon=True) for lease in leases
               if lease.held]
    for t in threads:
        t.start()
    deadline = time.monotonic() + EXIT_BUDGET_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


def oldest_open(store: ObjectStore, here: Lease | None = None) -> float | None:
    """The start of the oldest transaction any live writer may still commit, or None.
    ``here``: this process's lease, read from memory rather than from its object."""
    now = time.time()
    oldest = here.oldest_here() if here is not None else None
    for key in store.list(WRITERS):
        if here is not None and key == here.key:
            continue
        try:
            if now - store.mtime(key) > LEASE_TTL:
                continue
            body = json.loads(store.get(key))
            since = float(body["since"])
        except (KeyError, FileNotFoundError, ValueError):
            continue
        if body.get("host") == socket.gethostname():
            pid = int(body.get("pid", 0))
            if pid == os.getpid() and here is not None:
                continue  # this process: its open transactions are known from memory
            if not _alive(pid):
                continue  # a writer on this machine that died (killed before it could release)
        oldest = since if oldest is None else min(oldest, since)
    return oldest


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, owned by someone else
    return True


def drop_dead_leases(store: ObjectStore) -> None:
    now = time.time()
    for key in store.list(WRITERS):
        try:
            if now - store.mtime(key) > LEASE_TTL:
                store.delete(key)
        except (KeyError, FileNotFoundError):
            continue
