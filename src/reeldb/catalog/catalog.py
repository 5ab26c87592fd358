"""The catalog of one database: commits, table manifests, refs and counters, cached.

Commits and manifests are immutable, so every cache here is valid forever; only branch
heads are read fresh.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from .. import errors
from ..config import Config, from_environment
from ..format.fragment import FragmentReader
from ..format.keys import COMMITS
from ..format.manifest import Segment, TableManifest, load_manifest
from ..storage import ObjectStore
from .leases import detach, lease_for
from .refs import Commit, Counters, Refs, new_commit_id
from .sequences import SequenceCounters

ROWID_BLOCK = 4096
SERIAL_BLOCK = 32
ADDED_COLUMN_BASE = 1 << 20  # ids of columns added by ALTER TABLE: global, above any CREATE TABLE's


class Catalog:
    def __init__(self, store: ObjectStore, config: Config | None = None):
        self.store = store
        self.config = config or from_environment()
        self.refs = Refs(store)
        self.counters = Counters(store)
        self.sequences = SequenceCounters(store)
        self.reader = FragmentReader(store)
        self.lease = lease_for(store)
        self._commits: dict[str, Commit] = {}
        self._manifests: dict[str, TableManifest] = {}
        self._segments: dict[str, Segment] = {}
        self._blocks: dict[str, tuple[int, int]] = {}  # counter -> (next, end) cached here
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # until then (time.monotonic()), appends go straight to group commit: this process
        # lost the head's compare-and-swap lately, so a lone attempt would likely lose again
        self.contended_until = 0.0

    def close(self) -> None:
        """Done with this database: the process's writer lease lets go of this catalog
        (its object is deleted once no catalog uses it), then the store's connections close."""
        detach(self.lease, self.store)
        self.store.close()

    @classmethod
    def open(cls, store: ObjectStore, create: bool = True, config: Config | None = None) -> Catalog:
        """The database on ``store`` (created when ``create``); on failure the store is
        left to the caller to close."""
        cat = cls(store, config)
        try:
            cat._open(create)
        except BaseException:
            detach(cat.lease, store)
            raise
        return cat

    def _open(self, create: bool) -> None:
        if self.refs.branch("main") is None and not self.refs.branches():
            if not create:
                raise errors.OperationalError(f"no reeldb database at {self.store.url}", sqlstate="3D000")
            root = Commit(new_commit_id(), (), time.time(), self.config.author, "create database", {})
            self.store.put(COMMITS + root.id, root.to_bytes())
            try:
                self.refs.create_branch("main", root.id)
            except errors.DuplicateObject:
                pass  # another process created the database at the same moment

    # -- immutable objects ----------------------------------------------------------------
    def commit(self, cid: str) -> Commit:
        c = self._commits.get(cid)
        if c is None:
            try:
                c = Commit.from_bytes(self.store.get(COMMITS + cid), COMMITS + cid)
            except KeyError:
                raise errors.UndefinedObject(f'commit "{cid}" does not exist') from None
            self._commits[cid] = c
        return c

    def save_commit(self, parents: tuple[str, ...], tables: MutableMapping[str, TableManifest], message: str,
                    author: str | None = None, stats: dict[str, list[int]] | None = None,
                    group: tuple[str, ...] = (), rejected: dict[str, list[str]] | None = None,
                    objects: dict[str, Any] | None = None) -> Commit:
        """Save the tables' manifests (only what changed is written) and a commit of them.
        ``objects`` (schemas, types, sequences, comments) default to the first parent's, so
        a commit that only moves rows keeps them."""
        if objects is None:
            objects = self.commit(parents[0]).objects if parents else {}
        if not isinstance(tables, Snapshot):
            tables = Snapshot(self, dict(tables))
        keys = tables.save(self.store)
        for tm in tables.loaded():
            self.remember(tm)
        c = Commit(new_commit_id(), parents, time.time(), author or self.config.author, message, keys,
                   stats or {}, group, rejected or {}, dict(objects))
        self.store.put(COMMITS + c.id, c.to_bytes())
        self._commits[c.id] = c
        return c

    def parents(self, cid: str) -> tuple[str, ...]:
        """A commit's parents that still exist (``expire`` may have dropped older history)."""
        return tuple(p for p in self.commit(cid).parents if self.has_commit(p))

    def forget_commit(self, cid: str) -> None:
        self._commits.pop(cid, None)

    def has_commit(self, cid: str) -> bool:
        return cid in self._commits or self.store.exists(COMMITS + cid)

    def manifest(self, key: str) -> TableManifest:
        """A private copy: callers may edit it."""
        m = self._manifests.get(key)
        if m is None:
            try:
                m = load_manifest(self.store, key, self._segments)
            except KeyError:
                raise errors.UndefinedObject(
                    "this commit's data was removed by VACUUM (it was older than the retained history)"
                ) from None
            self._manifests[key] = m
        return m.copy()

    def remember(self, tm: TableManifest) -> None:
        """Cache a manifest this process just saved, so reading it back costs nothing."""
        assert tm.key is not None
        for seg in tm.segments:
            if seg.key is not None:
                self._segments.setdefault(seg.key, seg)
        self._manifests.setdefault(tm.key, tm.copy())

    def objects(self, cid: str) -> dict[str, Any]:
        """The commit's catalog objects other than tables (a copy: callers may edit it)."""
        return dict(self.commit(cid).objects)

    def snapshot(self, cid: str) -> Snapshot:
        return Snapshot(self, dict(self.commit(cid).tables))

    # -- refs -------------------------------------------------------------------------------
    def head(self, branch: str) -> str:
        got = self.refs.branch(branch)
        if got is None:
            raise errors.UndefinedObject(f'branch "{branch}" does not exist')
        return got[0]

    def resolve(self, ref: str) -> str:
        """Branch, tag, full commit id or unique id prefix -> commit id."""
        got = self.refs.branch(ref)
        if got is not None:
            return got[0]
        tag = self.refs.tag(ref)
        if tag is not None:
            return tag
        if ref in self._commits or self.store.exists(COMMITS + ref):
            return ref
        if len(ref) >= 6 and all(ch in "0123456789abcdef" for ch in ref):
            hits = [k[len(COMMITS):] for k in self.store.list(COMMITS) if k[len(COMMITS):].startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise errors.UndefinedObject(f'commit prefix "{ref}" is ambiguous')
        raise errors.UndefinedObject(f'no branch, tag or commit named "{ref}"')

    def log(self, cid: str, limit: int | None = None) -> list[Commit]:
        """Commits reachable from ``cid``, newest first."""
        seen: set[str] = set()
        frontier = [cid]
        out: list[Commit] = []
        while frontier:
            frontier.sort(key=lambda c: self.commit(c).time)
            c = self.commit(frontier.pop())
            if c.id in seen:
                continue
            seen.add(c.id)
            out.append(c)
            if limit is not None and len(out) >= limit:
                break
            frontier.extend(p for p in self.parents(c.id) if p not in seen)
        return out

    # -- counters ---------------------------------------------------------------------------
    def allocate(self, counter: str, n: int, block: int) -> int:
        """``n`` consecutive values of a global counter, cached in blocks per process."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not reuse its parent's blocks
                self._blocks, self._pid = {}, os.getpid()
            nxt, end = self._blocks.get(counter, (0, 0))
            if end - nxt >= n:
                self._blocks[counter] = (nxt + n, end)
                return nxt
            size = max(n, block)
            start = self.counters.allocate(counter, size)
            self._blocks[counter] = (start + n, start + size)
            return start

    def rowids(self, n: int) -> int:
        return self.allocate("rowid", n, ROWID_BLOCK)

    def column_id(self) -> int:
        """An id for a column added to an existing table, unique across every branch."""
        return ADDED_COLUMN_BASE + self.allocate("column", 1, 16)

    def sequence(self, table_id: str, col_id: int, n: int) -> int:
        return self.allocate(f"seq-{table_id}-{col_id}", n, SERIAL_BLOCK)


class Snapshot(MutableMapping[str, TableManifest]):
    """The tables of a commit, each manifest read on first use: a query over one table of
    a database of twenty reads one manifest, which is what keeps a cold start on object
    storage to a few requests. Entries are manifest keys until loaded; a loaded manifest is
    this snapshot's private copy (callers may edit it, as they edit a transaction's)."""

    def __init__(self, catalog: Catalog, entries: dict[str, str | TableManifest]):
        self._catalog = catalog
        self._entries = entries

    def __getitem__(self, name: str) -> TableManifest:
        e = self._entries[name]
        if isinstance(e, str):
            e = self._entries[name] = self._catalog.manifest(e)
        return e

    def __setitem__(self, name: str, tm: TableManifest) -> None:
        self._entries[name] = tm

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def copy(self) -> Snapshot:
        """Independent of this one: loaded manifests are copied, the rest stay keys."""
        return Snapshot(self._catalog, {n: e if isinstance(e, str) else e.copy() for n, e in self._entries.items()})

    def loaded(self) -> list[TableManifest]:
        return [e for e in self._entries.values() if not isinstance(e, str)]

    def save(self, store: ObjectStore) -> dict[str, str]:
        """Table name -> manifest key, writing the manifests that changed."""
        return {n: e if isinstance(e, str) else e.save(store) for n, e in self._entries.items()}
