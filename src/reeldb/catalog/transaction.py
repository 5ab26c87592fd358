"""A transaction's working state and the optimistic commit protocol.

Files are written as statements run; nothing is visible until the commit's
compare-and-swap of the branch head wins. When it loses, the transaction re-bases onto
the new head: inserts never conflict; deletes/updates of the same rows, schema changes
of the same table and unique-key collisions do (SQLSTATE 40001 / 23505).
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import errors
from ..format.fragment import FragmentReader, write_deletes
from ..format.manifest import Fragment, IndexDef, Schema, TableManifest, foreign_key_links
from . import group, objects
from .catalog import Catalog, Snapshot
from .group import MAX_ATTEMPTS
from .unique import check_unique


@dataclass
class TableChange:
    table_id: str
    name: str
    created: bool = False
    if_not_exists: bool = False
    dropped: bool = False
    schema: Schema | None = None
    indexes: tuple[IndexDef, ...] | None = None  # set by CREATE / DROP INDEX, REINDEX
    added: dict[str, Fragment] = field(default_factory=dict)  # our new fragments, by id
    deleted: dict[str, np.ndarray] = field(default_factory=dict)  # base fragment id -> positions
    check_unique: bool = False
    # compaction: (base fragments, as the base saw them) -> the fragments rewritten from them
    replaced: list[tuple[list[Fragment], list[Fragment]]] = field(default_factory=list)


class Transaction:
    def __init__(self, catalog: Catalog, branch: str | None, base: str, *,
                 after_publish: Callable[[Catalog, str, list[str], str], None] | None = None):
        """``after_publish(catalog, branch, written tables, commit)`` runs after each commit
        that wrote tables (auto-compaction; it must not fail the commit)."""
        self.catalog = catalog
        self.after_publish = after_publish
        self.branch = branch
        self.base = base
        self.tables: Snapshot = catalog.snapshot(base)
        self.changes: dict[str, TableChange] = {}
        self.objects: dict = catalog.objects(base)  # schemas, types, sequences, comments (objects.py)
        self.object_changes: dict = {}  # key -> new definition (None: dropped)
        self.started = time.time()
        self.open = True  # until committed: VACUUM keeps files newer than ``started``
        if branch is not None:
            catalog.lease.opened(self)

    def savepoint(self) -> tuple:
        """The transaction's state, to return to with ``rollback_to`` (SAVEPOINT)."""
        return self.tables.copy(), copy.deepcopy(self.changes), dict(self.objects), dict(self.object_changes)

    def rollback_to(self, state: tuple) -> None:
        """Forget what happened after the savepoint; files it wrote are left to VACUUM."""
        tables, changes, objects, object_changes = state
        self.tables = tables.copy()
        self.changes = copy.deepcopy(changes)
        self.objects, self.object_changes = dict(objects), dict(object_changes)

    @property
    def reader(self) -> FragmentReader:
        return self.catalog.reader

    @property
    def dirty(self) -> bool:
        return bool(self.changes or self.object_changes)

    def set_object(self, key: str, definition: Any) -> None:
        """Create, replace or (with None) drop a catalog object other than a table."""
        if definition is None:
            self.objects.pop(key, None)
        else:
            self.objects[key] = definition
        self.object_changes[key] = definition

    def table(self, name: str) -> TableManifest:
        tm = self.tables.get(name)
        if tm is None:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        return tm

    def _change(self, tm: TableManifest) -> TableChange:
        ch = self.changes.get(tm.table_id)
        if ch is None:
            ch = self.changes[tm.table_id] = TableChange(tm.table_id, tm.name)
        return ch

    # -- DDL -------------------------------------------------------------------------------
    def create_table(self, name: str, schema: Schema, if_not_exists: bool = False) -> TableManifest:
        if name in self.tables:
            raise errors.DuplicateTable(f'relation "{name}" already exists')
        tm = TableManifest(uuid.uuid4().hex[:16], name, schema)
        self.tables[name] = tm
        self.changes[tm.table_id] = TableChange(tm.table_id, name, created=True, if_not_exists=if_not_exists)
        return tm

    def drop_table(self, name: str) -> None:
        tm = self.table(name)
        ch = self._change(tm)
        del self.tables[name]
        if ch.created:
            del self.changes[tm.table_id]
        else:
            ch.dropped = True

    def alter_table(self, name: str, schema: Schema, new_name: str | None = None) -> TableManifest:
        tm = self.table(name)
        if new_name and new_name != name:
            if new_name in self.tables:
                raise errors.DuplicateTable(f'relation "{new_name}" already exists')
            del self.tables[name]
        tm = tm.with_schema(schema)
        tm.name = new_name or name
        self.tables[tm.name] = tm
        ch = self._change(tm)
        ch.name = tm.name
        ch.schema = schema
        return tm

    def set_indexes(self, name: str, indexes: tuple[IndexDef, ...]) -> TableManifest:
        tm = self.table(name).with_indexes(indexes)
        self.tables[name] = tm
        self._change(tm).indexes = indexes
        return tm

    # -- DML -------------------------------------------------------------------------------
    def append(self, name: str, frag: Fragment) -> None:
        tm = self.table(name)
        tm.append(frag)
        ch = self._change(tm)
        ch.added[frag.id] = frag
        if tm.schema.uniques:
            ch.check_unique = True

    def delete(self, name: str, positions: dict[str, np.ndarray]) -> None:
        """Mark rows deleted: fragment id -> positions within that fragment."""
        tm = self.table(name)
        ch = self._change(tm)
        for fid, pos in positions.items():
            if not len(pos):
                continue
            frag = tm.fragment(fid)
            assert frag is not None
            merged = np.union1d(self.reader.deleted(frag), pos).astype(np.uint32)
            new = write_deletes(self.catalog.store, frag, merged)
            tm.replace_fragment(new)
            if fid in ch.added:
                ch.added[fid] = new
            else:
                prev = ch.deleted.get(fid)
                ch.deleted[fid] = pos if prev is None else np.union1d(prev, pos)

    def replace(self, name: str, old: list[Fragment], new: list[Fragment]) -> None:
        """Compaction: the same live rows, rewritten into ``new``."""
        tm = self.table(name)
        tm.replace_fragments([f.id for f in old], new)
        self._change(tm).replaced.append((old, new))

    # -- constraints ------------------------------------------------------------------------
    def check_unique(self, name: str, new_frags: list[Fragment]) -> None:
        check_unique(self.reader, self.table(name), new_frags)

    # -- commit ------------------------------------------------------------------------------
    def commit(self, message: str = "", author: str | None = None) -> str:
        """Publish the transaction on its branch; returns the new head commit id."""
        try:
            return self._commit(message, author)
        finally:
            self.open = False

    def _commit(self, message: str, author: str | None) -> str:
        if not self.dirty:
            return self.base
        if self.branch is None:
            raise errors.ReadOnlySqlTransaction("cannot write: this connection reads a fixed commit")
        cat = self.catalog
        cat.refs.check_writable(self.branch)
        grouped = cat.config.group_commit and group.eligible(self)
        delay = 0.002
        for _ in range(MAX_ATTEMPTS):
            if grouped and (time.monotonic() < cat.contended_until or group.waiting(cat, self.branch)):
                # the head is contended: combine with the other waiting writers rather
                # than write a commit that will most likely lose
                intent = group.publish(self, message or _describe(self.changes, {}), author or cat.config.author)
                cid, tables, combined = group.commit(self, intent)
                # compaction is the combiner's job: the others would race it for the same tier
                return self._published(cid, tables, [ch.name for ch in self.changes.values()] if combined else [])
            got = cat.refs.branch(self.branch)
            if got is None:
                raise errors.UndefinedObject(f'branch "{self.branch}" does not exist any more')
            head, version = got
            tables = self.tables if head == self.base else self._rebase(head)
            objs = self.objects if head == self.base else self._rebase_objects(head)
            c = cat.save_commit((head,), tables, message or _describe(self.changes, self.object_changes), author,
                                self.stats(), objects=objs)
            if cat.refs.move_branch(self.branch, version, c.id):
                return self._published(c.id, tables, [ch.name for ch in self.changes.values()
                                                      if ch.added or ch.deleted])
            cat.contended_until = time.monotonic() + group.CONTENDED_S
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 0.1)
        raise errors.SerializationFailure(
            f'could not commit to branch "{self.branch}": the head kept moving ({MAX_ATTEMPTS} attempts)'
        )

    def _published(self, cid: str, tables: Snapshot, written: list[str]) -> str:
        """The transaction is in the branch's history as ``cid``."""
        self.base, self.tables, self.changes = cid, tables, {}
        self.objects, self.object_changes = self.catalog.objects(cid), {}
        if written and self.after_publish is not None and self.branch is not None:
            self.after_publish(self.catalog, self.branch, written, cid)
        return cid

    def stats(self) -> dict[str, list[int]]:
        """Table -> [rows inserted, deleted, updated] against the base, as ``db.log()``
        shows them. Only a mix of new and deleted rows needs their ids to tell updates."""
        out = {}
        for ch in self.changes.values():
            tm = self.tables.get(ch.name)
            if ch.dropped or tm is None:
                continue
            added = sum(f.live for f in ch.added.values())
            dels = sum(len(p) for p in ch.deleted.values())
            upd = 0
            if added and dels:
                new_ids = np.concatenate([self.reader.rowids(tm.table_id, f)[self.reader.live_mask(f)]
                                          for f in ch.added.values()])
                old_ids = np.concatenate([self.reader.rowids(tm.table_id, tm.fragment(fid), pos)
                                          for fid, pos in ch.deleted.items() if tm.fragment(fid) is not None])
                upd = len(np.intersect1d(new_ids, old_ids))
            if added or dels or ch.created:
                out[ch.name] = [added - upd, dels - upd, upd]
        return out

    def close(self) -> None:
        """Rolled back: nothing of it will be committed (VACUUM may take its files)."""
        self.open = False

    def _check_foreign_keys(self, base_by_id: dict[str, TableManifest], theirs_by_id: dict[str, TableManifest]) -> None:
        """Our rows were checked against the other side of each foreign key as the base had
        it: when a concurrent commit changed that side, the check no longer holds (a parent
        row deleted under our new child row, or the reverse), so refuse (40001; retry)."""
        touched = {ch.table_id for ch in self.changes.values() if ch.added or ch.deleted}
        if not touched:
            return
        for mine, other in foreign_key_links(list(self.tables.values()) + list(theirs_by_id.values())):
            if mine not in touched or other == mine:
                continue
            head_tm, base_tm = theirs_by_id.get(other), base_by_id.get(other)
            if (head_tm.key if head_tm else None) != (base_tm.key if base_tm else None):
                name = (head_tm or base_tm).name if head_tm or base_tm else other
                raise errors.SerializationFailure(
                    f'table "{name}", on the other side of a foreign key of rows this transaction wrote, was '
                    "changed by a concurrent commit")

    def _rebase_objects(self, head: str) -> dict:
        """The head's objects with ours changed: refused when a concurrent commit changed
        one of the same objects differently."""
        theirs = self.catalog.objects(head)
        clash = objects.conflicts(self.catalog.objects(self.base), theirs, self.object_changes)
        if clash:
            raise errors.SerializationFailure(
                f"{objects.describe(clash[0])} was changed by a concurrent commit")
        return objects.apply(theirs, self.object_changes)

    def _rebase(self, head: str) -> Snapshot:
        cat = self.catalog
        base_by_id = {tm.table_id: tm for tm in cat.snapshot(self.base).values()}
        theirs = cat.snapshot(head)
        theirs_by_id = {tm.table_id: tm for tm in theirs.values()}
        self._check_foreign_keys(base_by_id, theirs_by_id)
        out = theirs.copy()
        for ch in self.changes.values():
            ours = self.tables.get(ch.name)
            if ch.created:
                if ch.name in out:
                    if ch.if_not_exists and not ch.added:
                        continue  # a concurrent CREATE TABLE IF NOT EXISTS won; ours is a no-op
                    raise errors.DuplicateTable(f'relation "{ch.name}" was created by a concurrent commit')
                assert ours is not None
                out[ch.name] = ours
                continue
            head_tm = theirs_by_id.get(ch.table_id)
            base_tm = base_by_id[ch.table_id]
            if head_tm is None:
                if ch.dropped:
                    continue
                raise errors.SerializationFailure(f'table "{ch.name}" was dropped by a concurrent commit')
            if ch.dropped:
                if head_tm.key != base_tm.key:
                    raise errors.SerializationFailure(f'table "{ch.name}" was changed by a concurrent commit')
                del out[head_tm.name]
                continue
            if ch.schema is not None and head_tm.schema != base_tm.schema:
                raise errors.SerializationFailure(
                    f'table "{ch.name}" was altered by a concurrent commit'
                )
            if (ch.added and head_tm.schema.checks != base_tm.schema.checks) or \
                    (ch.schema is not None and ch.schema.checks != base_tm.schema.checks and head_tm.key != base_tm.key):
                # rows checked against other constraints than the table now has
                raise errors.SerializationFailure(
                    f'the check constraints or rows of "{ch.name}" were changed by a concurrent commit')
            if (ch.added and head_tm.schema.uniques != base_tm.schema.uniques) or \
                    (ch.schema is not None and ch.schema.uniques != base_tm.schema.uniques and head_tm.key != base_tm.key):
                # rows checked against other unique keys than the table now has (CREATE UNIQUE INDEX)
                raise errors.SerializationFailure(
                    f'the unique keys or rows of "{ch.name}" were changed by a concurrent commit')
            if ch.indexes is not None and head_tm.indexes != base_tm.indexes:
                raise errors.SerializationFailure(
                    f'the indexes of "{ch.name}" were changed by a concurrent commit'
                )
            tm = head_tm.copy()
            if ch.schema is not None:
                tm = tm.with_schema(ch.schema)
                del out[head_tm.name]
                tm.name = ch.name
            if ch.indexes is not None:
                ids = {c.id for c in tm.schema.columns}
                tm = tm.with_indexes(tuple(ix for ix in ch.indexes if ix.column in ids))
            for old, new in ch.replaced:
                for f in old:
                    hf = tm.fragment(f.id)
                    if hf is None or hf.deletes != f.deletes:
                        raise errors.SerializationFailure(
                            f'rows of "{ch.name}" changed while they were being compacted'
                        )
                tm.replace_fragments([f.id for f in old], new)
            for fid, pos in ch.deleted.items():
                hf, bf = tm.fragment(fid), base_tm.fragment(fid)
                if bf is not None and hf is None:
                    self._delete_moved(tm, base_tm, bf, pos, ch.name)
                    continue
                if hf is None or bf is None:
                    raise errors.SerializationFailure(
                        f'rows of "{ch.name}" were rewritten by a concurrent commit'
                    )
                theirs_new = np.setdiff1d(self.reader.deleted(hf), self.reader.deleted(bf))
                if np.intersect1d(theirs_new, pos).size:
                    raise errors.SerializationFailure(
                        f'could not serialize access due to concurrent update of "{ch.name}"'
                    )
                merged = np.union1d(self.reader.deleted(hf), pos).astype(np.uint32)
                tm.replace_fragment(write_deletes(cat.store, hf, merged))
            for frag in ch.added.values():
                tm.append(frag)
            if ch.check_unique:
                check_unique(self.reader, tm, list(ch.added.values()))
            out[tm.name] = tm
        return out


    def _delete_moved(self, tm: TableManifest, base_tm: TableManifest, bf: Fragment, pos: np.ndarray,
                      name: str) -> None:
        """Our delete of rows that a concurrent compaction moved: find them by ``_rowid``
        in the fragments the head has and our base had not."""
        from .delta import changed_cells, locate_all

        rowids = self.reader.rowids(base_tm.table_id, bf, pos)
        base_ids = {f.id for f in base_tm.fragments}
        fresh = tm.copy()
        fresh.segments = [s for s in tm.segments if any(f.id not in base_ids for f in s.fragments)]
        found = locate_all(self.reader, fresh, rowids)
        moved = len(found) == len(np.unique(rowids))
        if moved:  # a concurrent update of a row shows as a changed value; a move does not
            order = np.argsort(rowids)
            before = self.reader.batch(base_tm.table_id, bf, base_tm.schema, pos[order])
            after = found.where(rowids[order]).read(self.reader, tm.table_id, base_tm.schema)
            moved = not any(m.any() for m in changed_cells(before, after, base_tm.schema, base_tm.schema).values())
        if not moved:
            raise errors.SerializationFailure(
                f'could not serialize access due to concurrent update of "{name}"'
            )
        for i, sel in found.by_fragment().items():
            hf = found.frags[i]
            merged = np.union1d(self.reader.deleted(hf), found.pos[sel]).astype(np.uint32)
            tm.replace_fragment(write_deletes(self.catalog.store, hf, merged))


def _describe(changes: dict[str, TableChange], object_changes: dict) -> str:
    parts = [("drop " if v is None else "") + objects.describe(k) for k, v in object_changes.items()]
    for ch in changes.values():
        if ch.created:
            parts.append(f"create {ch.name}")
        elif ch.dropped:
            parts.append(f"drop {ch.name}")
        else:
            what = []
            rows = sum(f.live for f in ch.added.values())
            if rows:
                what.append(f"+{rows}")
            dels = sum(len(p) for p in ch.deleted.values())
            if dels:
                what.append(f"-{dels}")
            if ch.schema is not None:
                what.append("schema")
            if ch.indexes is not None:
                what.append("indexes")
            parts.append(f"{ch.name} {' '.join(what)}".strip())
    return "; ".join(parts)
