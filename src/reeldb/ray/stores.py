"""Opening the database on the driver, and its store in Ray workers (once per process)."""

from __future__ import annotations

import threading
from typing import Any

from ..connection import Connection, connect
from ..storage import ObjectStore, open_store

_STORES: dict[tuple[str, str], ObjectStore] = {}
_LOCK = threading.Lock()


def open_database(uri: str, branch: str | None, at: str | None,
                  storage_options: dict[str, Any] | None) -> Connection:
    """The driver's connection: the branch's head, or the fixed commit ``at``. Never
    creates a database: a mistyped URI is an error, not an empty database."""
    if branch is not None and at is not None:
        raise ValueError("give branch= or at=, not both")
    return connect(str(uri), branch=branch or "main", at=at, create=False, storage_options=storage_options)


def store_of(url: str, options: dict | None) -> ObjectStore:
    """The store at ``url`` in this worker process, opened once (its caches are shared by
    every task the process runs)."""
    key = (url, repr(sorted((options or {}).items())))
    with _LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = open_store(url, create=False, options=options or None)
        return store
