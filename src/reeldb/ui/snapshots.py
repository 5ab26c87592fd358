"""Read-only snapshots of the database for the UI's requests.

Each request reads one commit through ``Connection.at``: a read-only connection with the
serving login's rights, sandbox and limits, used by one thread and closed after. So a
page and the media it links to see the same data however the branch moves meanwhile,
and nothing a browser sends can write. Column types and the blobs behind media URLs are
cached per commit: commits never change.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import errors
from .query import column_kind, quote_ident

if TYPE_CHECKING:
    from ..connection import Connection

DEFAULT_STATEMENT_TIMEOUT_MS = 30_000


class _LRU:
    """A small thread-safe least-recently-used cache, bounded by a cost (entries or bytes)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._cost = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any, cost: int = 1) -> None:
        if cost > self.capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._cost -= old[1]
            self._items[key] = (value, cost)
            self._cost += cost
            while self._cost > self.capacity:
                _, (_, c) = self._items.popitem(last=False)
                self._cost -= c


class _ExpiringSet:
    """Keys remembered for ``seconds`` (a bounded, thread-safe cache of checks passed)."""

    def __init__(self, seconds: float, capacity: int = 4096):
        self.seconds = seconds
        self._lru = _LRU(capacity)

    def get(self, key: Any) -> bool:
        until = self._lru.get(key)
        return until is not None and until > time.monotonic()

    def put(self, key: Any, _: bool = True) -> None:
        self._lru.put(key, time.monotonic() + self.seconds)


class Snapshots:
    """The UI's way into the database: ``root`` is the serving connection (its login's
    rights apply to every read), ``default_ref`` the branch shown when a URL names none."""

    def __init__(self, root: Connection, default_ref: str,
                 statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS):
        self.root = root
        self.default_ref = default_ref
        self.statement_timeout_ms = statement_timeout_ms
        self._root_lock = threading.Lock()  # the root connection belongs to one thread at a time
        self._columns = _LRU(512)
        self.blobs = _LRU(4096)
        self.posters = _LRU(64 << 20)  # PNG bytes
        self._commits = _LRU(4096)  # commit ids this app has read: they name fixed data
        # refs this login was found to may read, checked again after a few seconds
        self._readable = _ExpiringSet(seconds=5.0)

    @contextlib.contextmanager
    def open(self, ref: str | None) -> Iterator[Connection]:
        """A read-only connection to ``ref`` (a branch, tag or commit; default: the
        default branch), closed when the block ends."""
        ref = ref or self.default_ref
        with self._root_lock:
            if not self._readable.get(ref):
                # the login's rights (branch patterns): reading a ref's history needs the
                # same right as reading it, and Connection.at alone does not check it
                self.root.log(branch=ref, limit=1)
                self._readable.put(ref, True)
            view = self.root.at(ref)
        try:
            view.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
            self._commits.put(view.head, True)
            yield view
        finally:
            view.close()

    def refs(self) -> dict[str, Any]:
        with self._root_lock:
            branches = [{"name": b["name"], "commit": b["commit"]} for b in self.root.branches()]
            tags = [{"name": n, "commit": c} for n, c in sorted(self.root.tags().items())]
        return {"default": self.default_ref, "branches": branches, "tags": tags}

    def create_branch(self, name: str) -> None:
        """A new branch at the default ref (for labels), if nobody made it meanwhile."""
        with self._root_lock:
            if not any(b["name"] == name for b in self.root.branches()):
                try:
                    self.root.branch(name, checkout=False, at=self.default_ref)
                except errors.DuplicateObject:  # another process made it first
                    pass

    def columns(self, view: Connection, table: str) -> list[dict[str, str]]:
        """The table's columns with their SQL type and UI kind (UndefinedTable if the
        snapshot has no such table)."""
        key = (view.head, table)
        cached = self._columns.get(key)
        if cached is not None:
            return cached
        if table not in view.tables():
            raise errors.UndefinedTable(f'relation "{table}" does not exist')
        rows = view.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = CAST($1 AS regclass) AND attnum > 0 AND NOT attisdropped "
                            "ORDER BY attnum", (quote_ident(table),)).fetchall()
        cols = [{"name": name, "type": type_name, "kind": column_kind(type_name)} for name, type_name in rows]
        self._columns.put(key, cols)
        return cols

    def commit_of(self, ref: str) -> str:
        """The commit id ``ref`` names now: itself when it is a commit this app has read
        (no lookup), else what the branch or tag points at (caches key by commit, never by
        a name that moves)."""
        if self._commits.get(ref):
            return ref
        with self.open(ref) as view:
            return view.head

    def blob(self, commit: str, table: str, column: str, rowid: int) -> Any:
        """The stored blob (a ``reeldb.Blob``) of one cell of commit ``commit`` (a commit id,
        from ``commit_of``), or None."""
        key = (commit, table, column, rowid)
        hit = self.blobs.get(key)
        if hit is not None:
            return hit
        with self.open(commit) as view:
            kinds = {c["name"]: c["kind"] for c in self.columns(view, table)}
            if kinds.get(column) not in ("video", "image", "bytes", "tensor"):
                raise errors.UndefinedColumn(f'table "{table}" has no blob column "{column}"')
            row = view.execute(f"SELECT {quote_ident(column)} FROM {quote_ident(table)} WHERE _rowid = $1",
                               (rowid,)).fetchone()
        value = None if row is None else row[0]
        if value is not None and not hasattr(value, "read"):
            raise errors.WrongObjectType(f'column "{column}" of row {rowid} is not stored as a blob')
        if value is not None:
            self.blobs.put(key, value)
        return value
