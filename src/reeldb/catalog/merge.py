"""Three-way merge of two commits against their merge base, row by row and cell by cell
by ``_rowid``.

The merge is planned first, without writing anything, so a ``fail`` merge with conflicts
leaves no trace. Applying a plan shares whole fragments: rows taken from the other side
stay in that side's fragments (a deletion vector hides the rest of a fragment), and only
rows whose cells come from both sides are written anew. Blob packs are never copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import errors
from ..format.fragment import Batch, concat_batches, scol, write_deletes, write_fragment
from ..format.manifest import CheckConstraint, Column, Fragment, Schema, TableManifest
from ..format.types import MatrixColumn
from . import objects
from .catalog import Catalog
from .delta import Located, changed_cells, delta
from .diff import column_values, render

STRATEGIES = ("fail", "ours", "theirs")


@dataclass(frozen=True)
class Conflict:
    table: str
    rowid: int | None
    column: str | None
    kind: str  # cell, update/delete, delete/update, unique, schema, table
    base: Any = None
    ours: Any = None
    theirs: Any = None
    key: dict[str, Any] | None = None  # the row's primary key (or first unique key) columns

    def __str__(self) -> str:
        where = self.table + self.row_name() + (f" column {self.column}" if self.column else "")
        return (f"{self.kind} conflict in {where}: base={render(self.base)!r} ours={render(self.ours)!r} "
                f"theirs={render(self.theirs)!r}")

    def row_name(self) -> str:
        """How a user names the row: by its key columns (``(id=51)``), by ``_rowid`` only
        when the table has no key."""
        if self.key:
            return " (" + ", ".join(f"{k}={render(v)!r}" for k, v in self.key.items()) + ")"
        return f" _rowid={self.rowid}" if self.rowid is not None else ""


@dataclass
class MergeResult:
    commit: str
    fast_forward: bool = False
    up_to_date: bool = False
    conflicts: list[Conflict] = field(default_factory=list)  # resolved by the strategy
    stats: dict[str, list[int]] = field(default_factory=dict)  # table -> [inserted, deleted, updated]


# -- history ---------------------------------------------------------------------------------
def ancestors(cat: Catalog, cid: str) -> set[str]:
    """``cid`` and every commit before it (history dropped by ``expire`` ends the walk)."""
    seen: set[str] = set()
    stack = [cid]
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        stack.extend(cat.parents(c))
    return seen


def merge_bases(cat: Catalog, a: str, b: str) -> list[str]:
    """The lowest common ancestors of two commits (more than one after criss-cross merges)."""
    anc_a = ancestors(cat, a)
    frontier: set[str] = set()
    seen: set[str] = set()
    stack = [b]
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        if c in anc_a:
            frontier.add(c)
            continue
        stack.extend(cat.parents(c))
    lowest = set(frontier)
    for c in frontier:
        if c in lowest:
            lowest -= ancestors(cat, c) - {c}
    return sorted(lowest, key=lambda c: (cat.commit(c).time, c))


def base_snapshot(cat: Catalog, a: str, b: str, depth: int = 0) -> dict[str, TableManifest]:
    """The merge base's tables. With several lowest common ancestors (criss-cross), the
    base is their own merge (recursively, conflicts resolved as ``ours``), as git does."""
    bases = merge_bases(cat, a, b)
    if not bases:
        return {}
    snap = cat.snapshot(bases[0])
    acc = bases[0]
    for other in bases[1:]:
        if depth > 8:
            break
        inner = base_snapshot(cat, acc, other, depth + 1)
        plan = plan_merge(cat, inner, snap, cat.snapshot(other), "ours")
        snap = apply_plan(cat, plan, virtual=True)
        acc = other
    return snap


# -- planning --------------------------------------------------------------------------------
@dataclass
class RowPlan:
    """What the merge does to one table's rows (ours = the result's starting point)."""

    ours_delete: dict[str, set[int]] = field(default_factory=dict)  # our fragment id -> positions
    take: dict[str, tuple[Fragment, set[int]]] = field(default_factory=dict)  # their fragment -> positions
    merged: list[tuple[int, tuple[str, int], tuple[Fragment, int], set[int]]] = field(default_factory=list)
    # rowid -> columns theirs changed, for rows taken as updates: a unique key they did
    # not change can only collide with rows ours changed
    changed_cols: dict[int, set[int]] = field(default_factory=dict)
    inserted: int = 0
    deleted: int = 0
    updated: int = 0

    def delete_ours(self, loc: tuple[str, int]) -> None:
        self.ours_delete.setdefault(loc[0], set()).add(loc[1])

    def take_theirs(self, frag: Fragment, pos: int) -> None:
        self.take.setdefault(frag.id, (frag, set()))[1].add(pos)


@dataclass
class TablePlan:
    name: str
    action: str  # keep, theirs, drop, rows
    ours: TableManifest | None = None
    theirs: TableManifest | None = None
    schema: Schema | None = None
    rows: RowPlan | None = None


@dataclass
class MergePlan:
    ours: dict[str, TableManifest]
    tables: list[TablePlan]
    conflicts: list[Conflict]
    stats: dict[str, list[int]]


def plan_merge(cat: Catalog, base: dict[str, TableManifest], ours: dict[str, TableManifest],
               theirs: dict[str, TableManifest], strategy: str) -> MergePlan:
    if strategy not in STRATEGIES:
        raise errors.InvalidParameterValue(f"merge strategy must be one of {', '.join(STRATEGIES)}: {strategy!r}")
    b_id = {t.table_id: t for t in base.values()}
    o_id = {t.table_id: t for t in ours.values()}
    t_id = {t.table_id: t for t in theirs.values()}
    plans: list[TablePlan] = []
    conflicts: list[Conflict] = []
    stats: dict[str, list[int]] = {}
    for tid in list(dict.fromkeys([*o_id, *t_id, *b_id])):
        b, o, t = b_id.get(tid), o_id.get(tid), t_id.get(tid)
        name = (o or t or b).name  # type: ignore[union-attr]
        if t is None or (b is not None and _same(t, b)) or (o is not None and _same(o, t)):
            if t is None and b is not None and o is not None:  # dropped on theirs
                if _same(o, b):
                    plans.append(TablePlan(name, "drop", o))
                else:
                    c = Conflict(name, None, None, "table", "table", "changed", "dropped")
                    conflicts.append(c)
                    if strategy == "theirs":
                        plans.append(TablePlan(name, "drop", o))
            continue
        if o is None:
            if b is not None:  # dropped on ours, changed on theirs
                conflicts.append(Conflict(name, None, None, "table", "table", "dropped", "changed"))
                if strategy == "theirs":
                    plans.append(TablePlan(t.name, "theirs", None, t))
            else:
                plans.append(TablePlan(t.name, "theirs", None, t))
                s = stats.setdefault(t.name, [0, 0, 0])
                s[0] += t.rows
            continue
        if b is not None and _same(o, b):
            plans.append(TablePlan(t.name, "theirs", o, t))
            d = delta(cat.reader, b, t)
            ins, dele, upd = len(d.inserted_ids()), len(d.deleted_ids()), len(d.updated_ids())
            stats[t.name] = [ins, dele, upd]
            continue
        plan, found = _plan_rows(cat, b, o, t, strategy)
        conflicts += found
        plans.append(plan)
        if plan.rows is not None:
            stats[plan.name] = [plan.rows.inserted, plan.rows.deleted, plan.rows.updated]
    conflicts += _name_clashes(plans, ours, strategy)
    return MergePlan(ours, plans, conflicts, stats)


def _same(a: TableManifest, b: TableManifest) -> bool:
    return a.key is not None and a.key == b.key


def _name_clashes(plans: list[TablePlan], ours: dict[str, TableManifest], strategy: str) -> list[Conflict]:
    """Two different tables that would end up with one name."""
    out = []
    kept = {tm.name: tm.table_id for tm in ours.values()}
    for p in plans:
        if p.action == "drop" and p.ours is not None:
            kept.pop(p.ours.name, None)
    for p in list(plans):
        if p.action in ("theirs", "rows") and p.theirs is not None:
            other = kept.get(p.name)
            if other is not None and other != p.theirs.table_id:
                out.append(Conflict(p.name, None, None, "table", None, "exists", "exists"))
                if strategy == "theirs":
                    plans.append(TablePlan(p.name, "drop", next(t for t in ours.values() if t.table_id == other)))
                else:
                    plans.remove(p)
    return out


def merge_schemas(name: str, b: Schema, o: Schema, t: Schema, strategy: str) -> tuple[Schema, list[Conflict]]:
    """Columns by stable id: additions from either side appear, drops and renames of one
    side apply, incompatible edits of both sides are conflicts."""
    bi, oi, ti = ({c.id: c for c in s.columns} for s in (b, o, t))
    conflicts: list[Conflict] = []
    cols: list[Column] = []
    dropped: set[int] = set()
    for c in o.columns:
        bc, tc = bi.get(c.id), ti.get(c.id)
        if bc is None or tc is None:
            if bc is not None and tc is None:  # theirs dropped it
                if c != bc:
                    conflicts.append(Conflict(name, None, c.name, "schema", bc.name, c.name, "dropped"))
                    if strategy != "theirs":
                        cols.append(c)
                        continue
                dropped.add(c.id)
                continue
            cols.append(c)
            continue
        if tc != bc and c != bc and tc != c:
            conflicts.append(Conflict(name, None, c.name, "schema", bc.name, c.name, tc.name))
            cols.append(tc if strategy == "theirs" else c)
        else:
            cols.append(tc if c == bc else c)
    for c in t.columns:
        if c.id in oi:
            continue
        bc = bi.get(c.id)
        if bc is not None:  # ours dropped it
            if c != bc:
                conflicts.append(Conflict(name, None, c.name, "schema", bc.name, "dropped", c.name))
                if strategy == "theirs":
                    cols.append(c)
            continue
        cols.append(c)
    by_name: dict[str, Column] = {}
    for c in list(cols):
        prev = by_name.get(c.name)
        if prev is None:
            by_name[c.name] = c
            continue
        ours_c, theirs_c = (prev, c) if prev.id in oi else (c, prev)
        conflicts.append(Conflict(name, None, c.name, "schema", None, ours_c.type.sql(), theirs_c.type.sql()))
        cols.remove(theirs_c if strategy != "theirs" else ours_c)
        by_name[c.name] = ours_c if strategy != "theirs" else theirs_c
    ids = {c.id for c in cols}
    uniques = tuple(dict.fromkeys(u for u in (*o.uniques, *t.uniques) if set(u) <= ids))
    pk = o.primary_key if set(o.primary_key) <= ids else t.primary_key if set(t.primary_key) <= ids else ()
    next_id = max(o.next_id, t.next_id, max(ids, default=0) + 1)
    checks = _merge_checks(name, b, o, t, ids, strategy, conflicts)
    # foreign keys: ours, with those theirs added and without those theirs dropped; the
    # merged rows are checked against them afterwards (sql/foreign_keys.py)
    fks = [f for f in o.foreign_keys if f in t.foreign_keys or f not in b.foreign_keys]
    fks += [f for f in t.foreign_keys if f not in b.foreign_keys and f not in fks]
    ixs = [i for i in o.btree_indexes if i in t.btree_indexes or i not in b.btree_indexes]  # the same for indexes
    ixs += [i for i in t.btree_indexes if i not in b.btree_indexes and i.name not in {x.name for x in ixs}]
    return Schema(tuple(cols), pk, uniques, next_id, checks, tuple(f for f in fks if set(f.columns) <= ids),
                  tuple(i for i in ixs if set(i.columns + i.include) <= ids),
                  tuple(dict.fromkeys((k, n) for k, n in (*o.key_names, *t.key_names) if set(k) <= ids))), conflicts


def _merge_checks(name: str, b: Schema, o: Schema, t: Schema, ids: set[int], strategy: str,
                  conflicts: list[Conflict]) -> tuple[CheckConstraint, ...]:
    """CHECK constraints by name: one side's addition, drop or change applies; both sides
    changing one differently is a conflict. The merged rows are checked against the result
    by the caller (merge's ``verify``)."""
    bc, oc, tc = ({c.name: c for c in s.checks} for s in (b, o, t))
    out = []
    for cname in dict.fromkeys([*oc, *tc]):
        base, ours, theirs = bc.get(cname), oc.get(cname), tc.get(cname)
        if ours == theirs or theirs == base:
            pick = ours
        elif ours == base:
            pick = theirs
        else:
            conflicts.append(Conflict(name, None, cname, "schema", base and base.expr,
                                      ours.expr if ours else "dropped", theirs.expr if theirs else "dropped"))
            pick = theirs if strategy == "theirs" else ours
        if pick is not None and set(pick.columns) <= ids:
            out.append(pick)
    return tuple(out)


def _union(*schemas: Schema) -> Schema:
    cols: dict[int, Column] = {}
    for s in schemas:
        for c in s.columns:
            cols.setdefault(c.id, c)
    return Schema(tuple(cols.values()))


def _plan_rows(cat: Catalog, b: TableManifest | None, o: TableManifest, t: TableManifest,
               strategy: str) -> tuple[TablePlan, list[Conflict]]:
    reader = cat.reader
    name = t.name if (b is not None and o.name == b.name and t.name != b.name) else o.name
    bs = b.schema if b is not None else Schema(())
    schema, conflicts = merge_schemas(name, bs, o.schema, t.schema, strategy)
    u = _union(o.schema, t.schema, bs)
    dO, dT = delta(reader, b, o), delta(reader, b, t)
    tid = o.table_id

    def cells(d_gone: Located, d_new: Located, ids: np.ndarray, own: Schema) -> dict[int, set[int]]:
        """rowid -> ids of the columns the side really changed (empty: the row only moved)."""
        if not len(ids):
            return {}
        old = d_gone.where(ids).read(reader, tid, u)
        new = d_new.where(ids).read(reader, tid, u)
        masks = changed_cells(old, new, u, u)
        own_ids = {c.id for c in own.columns}
        out: dict[int, set[int]] = {int(r): set() for r in ids}
        for cid, m in masks.items():
            if cid in own_ids:
                for i in np.flatnonzero(m):
                    out[int(ids[i])].add(cid)
        return out

    o_upd = cells(dO.gone, dO.new, dO.updated_ids(), o.schema)
    t_upd = cells(dT.gone, dT.new, dT.updated_ids(), t.schema)
    o_ins, o_del = set(dO.inserted_ids().tolist()), set(dO.deleted_ids().tolist())
    o_new = _locations(dO.new)
    o_frag = {f.id for f in o.fragments}
    plan = RowPlan()
    col_name = {c.id: c.name for c in u.columns}
    kept_cols = {c.id for c in schema.columns}

    def ours_loc(rowid: int, base_loc: tuple[Fragment, int] | None) -> tuple[str, int]:
        got = o_new.get(rowid)
        if got is not None:
            return got[0].id, got[1]
        assert base_loc is not None and base_loc[0].id in o_frag
        return base_loc[0].id, base_loc[1]

    t_new, t_gone = _locations(dT.new), _locations(dT.gone)
    values = _ValueCache(reader, tid, u)
    values.fill(dO.new, dT.new, dT.gone)
    key_cols = [(c, col_name[c]) for c in (schema.primary_key or (schema.uniques[0] if schema.uniques else ()))
                if c in col_name]

    def row_key(side: str, loc: tuple[Fragment, int]) -> dict[str, Any] | None:
        """The key columns' values of the row at ``loc``."""
        if not key_cols:
            return None
        return {name: values.get((side,) + _key(loc), cid) for cid, name in key_cols}
    # rows theirs inserted
    for rowid in dT.inserted_ids().tolist():
        tloc = t_new[rowid]
        if rowid in o_ins:  # both sides hold it (an earlier merge): equal rows are no change
            diff = [cid for cid in kept_cols if not values.same(("o",) + _key(o_new[rowid]), ("t",) + _key(tloc), cid)]
            if not diff:
                continue
            for cid in diff:
                conflicts.append(Conflict(name, rowid, col_name[cid], "cell", None,
                                          values.get(("o",) + _key(o_new[rowid]), cid),
                                          values.get(("t",) + _key(tloc), cid), row_key("t", tloc)))
            if strategy == "theirs":
                plan.delete_ours((o_new[rowid][0].id, o_new[rowid][1]))
                plan.take_theirs(*tloc)
            continue
        plan.take_theirs(*tloc)
        plan.inserted += 1
    # rows theirs deleted
    for rowid in dT.deleted_ids().tolist():
        if rowid in o_del:
            continue
        bloc = t_gone[rowid]
        if o_upd.get(rowid):
            conflicts.append(Conflict(name, rowid, None, "delete/update", "row", "updated", "deleted",
                                      row_key("b", bloc)))
            if strategy != "theirs":
                continue
        plan.delete_ours(ours_loc(rowid, bloc))
        plan.deleted += 1
    # rows theirs updated
    for rowid, tcols in t_upd.items():
        tcols &= kept_cols
        if not tcols:
            continue  # moved by compaction, or only dropped columns changed
        tloc, bloc = t_new[rowid], t_gone[rowid]
        if rowid in o_del:
            conflicts.append(Conflict(name, rowid, None, "update/delete", "row", "deleted", "updated",
                                      row_key("t", tloc)))
            if strategy == "theirs":
                plan.take_theirs(*tloc)
                plan.updated += 1
            continue
        ocols = o_upd.get(rowid, set()) & kept_cols
        oloc = ours_loc(rowid, bloc)
        if not ocols:
            plan.delete_ours(oloc)
            plan.take_theirs(*tloc)
            plan.changed_cols[rowid] = tcols
            plan.updated += 1
            continue
        okey, tkey, bkey = ("o",) + _key(o_new[rowid]), ("t",) + _key(tloc), ("b",) + _key(bloc)
        take_cols = set()
        for cid in tcols:
            if cid in ocols and not values.same(okey, tkey, cid):
                conflicts.append(Conflict(name, rowid, col_name[cid], "cell", values.get(bkey, cid),
                                          values.get(okey, cid), values.get(tkey, cid), row_key("t", tloc)))
                if strategy == "theirs":
                    take_cols.add(cid)
            elif cid not in ocols:
                take_cols.add(cid)
        if not take_cols:
            continue
        if ocols <= take_cols or all(values.same(okey, tkey, c) for c in ocols - take_cols):
            plan.delete_ours(oloc)
            plan.take_theirs(*tloc)
        else:
            plan.merged.append((rowid, oloc, tloc, take_cols))
            plan.delete_ours(oloc)
        plan.updated += 1
    ours_changed = {f.id for f in dO.new.frags}
    conflicts += _unique_conflicts(cat, name, o, t, schema, plan, strategy, ours_changed)
    return TablePlan(name, "rows", o, t, schema, plan), conflicts


def _key(loc: tuple[Fragment, int]) -> tuple[str, int]:
    return loc[0].id, loc[1]


def _locations(loc: Located) -> dict[int, tuple[Fragment, int]]:
    return {int(r): (loc.frags[int(f)], int(p)) for r, f, p in zip(loc.rowids, loc.fidx, loc.pos)}


class _ValueCache:
    """Cell values of single rows, read once per fragment on first use."""

    def __init__(self, reader: Any, table_id: str, schema: Schema):
        self.reader, self.table_id, self.schema = reader, table_id, schema
        self._frags: dict[str, Fragment] = {}
        self._rows: dict[tuple[str, str, int], Batch] = {}

    def fill(self, *sets: Located) -> None:
        """Make the fragments of these row sets known (for later lookups by id)."""
        for s in sets:
            for f in s.frags:
                self._frags.setdefault(f.id, f)

    def _row(self, key: tuple[str, str, int]) -> Batch:
        got = self._rows.get(key)
        if got is None:
            frag = self._frags.get(key[1])
            if frag is None:
                raise KeyError(key)
            got = self.reader.batch(self.table_id, frag, self.schema, np.array([key[2]]))
            self._rows[key] = got
        return got

    def get(self, key: tuple[str, str, int], cid: int) -> Any:
        return column_values(self._row(key), self.schema, cid, np.array([0]))[0]

    def same(self, a: tuple[str, str, int], b: tuple[str, str, int], cid: int) -> bool:
        ra, rb = self._row(a), self._row(b)
        return bool(not changed_cells(ra, rb, self.schema, self.schema)[cid][0])


def _unique_conflicts(cat: Catalog, name: str, o: TableManifest, t: TableManifest, schema: Schema,
                      plan: RowPlan, strategy: str, ours_changed: set[str]) -> list[Conflict]:
    """Unique keys of rows coming from theirs that rows staying from ours already hold.

    A key theirs did not change is checked only against the fragments where ours changed
    rows; new keys against every fragment whose key range can hold them. Only key columns
    are read, and single-column keys are matched by Arrow, not row by row."""
    if not schema.uniques or not (plan.take or plan.merged):
        return []
    reader = cat.reader
    ofr = {f.id: f for f in o.fragments}
    conflicts = []
    for ucols in schema.uniques:
        names = [schema.by_id(c).name for c in ucols]
        new_keys: dict[tuple, tuple[int, tuple[Fragment, int] | None]] = {}
        kept_keys: dict[tuple, tuple[int, tuple[Fragment, int] | None]] = {}
        for frag, positions in plan.take.values():
            pos = np.array(sorted(positions), np.int64)
            ids = reader.rowids(t.table_id, frag, pos)
            for i, k in enumerate(_keys(reader, t.table_id, frag, schema, ucols, pos)):
                if None in k:
                    continue
                rid = int(ids[i])
                changed = plan.changed_cols.get(rid)
                target = kept_keys if changed is not None and not changed & set(ucols) else new_keys
                target[k] = (rid, (frag, int(pos[i])))
        for rowid, oloc, tloc, cols in plan.merged:
            src = (tloc[0], t.table_id, tloc[1]) if set(ucols) & cols else (ofr[oloc[0]], o.table_id, oloc[1])
            k = _keys(reader, src[1], src[0], schema, ucols, np.array([src[2]]))[0]
            if None not in k:
                new_keys[k] = (rowid, None)
        if not new_keys and not kept_keys:
            continue
        lo_hi = _range(new_keys) if len(ucols) == 1 else None
        for f in o.fragments:
            incoming = dict(new_keys)
            if f.id in ours_changed:
                incoming.update(kept_keys)
            if not incoming:
                continue
            if lo_hi is not None and f.id not in ours_changed:
                fb = reader.bounds(o.table_id, f, scol(ucols[0]))
                if fb is not None and (lo_hi[1] < fb[0] or lo_hi[0] > fb[1]):
                    continue
            gone = plan.ours_delete.get(f.id, set())
            live = np.flatnonzero(reader.live_mask(f))
            if gone:
                live = live[~np.isin(live, list(gone))]
            if not len(live):
                continue
            live = _maybe_hits(reader, o.table_id, f, schema, ucols, live, incoming)
            ids = reader.rowids(o.table_id, f, live)
            for i, k in enumerate(_keys(reader, o.table_id, f, schema, ucols, live)):
                hit = incoming.get(k)
                if hit is None or int(ids[i]) == hit[0]:
                    continue
                conflicts.append(Conflict(name, hit[0], ", ".join(names), "unique", None,
                                          {"_rowid": int(ids[i]), "key": list(k)},
                                          {"_rowid": hit[0], "key": list(k)}, dict(zip(names, k))))
                if strategy == "theirs":
                    plan.delete_ours((f.id, int(live[i])))
                else:
                    _drop_incoming(plan, hit[0], hit[1])
    return conflicts


def _range(keys: dict[tuple, Any]) -> tuple[Any, Any] | None:
    vals = [k[0] for k in keys]
    try:
        return (min(vals), max(vals)) if vals else None
    except TypeError:
        return None


def _maybe_hits(reader: Any, table_id: str, frag: Fragment, schema: Schema, ucols: tuple[int, ...],
                live: np.ndarray, incoming: dict[tuple, Any]) -> np.ndarray:
    """The positions whose single-column key is among the incoming ones (all positions
    for a multi-column key)."""
    if len(ucols) != 1:
        return live
    t = reader.table(table_id, frag)
    name = scol(ucols[0])
    if name not in t.column_names:
        return live
    col = t.column(name).take(pa.array(live, pa.int64()))
    try:
        mask = pc.is_in(col, value_set=pa.array([k[0] for k in incoming], col.type))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return live
    return live[pc.fill_null(mask, False).to_numpy(zero_copy_only=False)]


def _keys(reader: Any, table_id: str, frag: Fragment, schema: Schema, ucols: tuple[int, ...],
          pos: np.ndarray) -> list[tuple]:
    t = reader.table(table_id, frag)
    idx = pa.array(pos, pa.int64())
    cols = []
    for cid in ucols:
        name = scol(cid)
        cols.append(t.column(name).take(idx).to_pylist() if name in t.column_names
                    else [schema.by_id(cid).fill] * len(pos))
    return list(zip(*cols))


def _drop_incoming(plan: RowPlan, rowid: int, tloc: tuple[Fragment, int] | None) -> None:
    if tloc is not None:
        plan.take[tloc[0].id][1].discard(tloc[1])
    plan.merged = [m for m in plan.merged if m[0] != rowid]


def _combine(ours: Batch, theirs: Batch, cols: set[int]) -> Batch:
    """Our row with their cells for ``cols``."""
    out = Batch(ours.rowids.copy())
    out.scalars = {cid: (theirs.scalars[cid] if cid in cols else arr) for cid, arr in ours.scalars.items()}
    out.matrices = {cid: (theirs.matrices[cid] if cid in cols else m) for cid, m in ours.matrices.items()}
    return out


# -- applying --------------------------------------------------------------------------------
def apply_plan(cat: Catalog, plan: MergePlan, virtual: bool = False) -> dict[str, TableManifest]:
    """Write what the plan needs (deletion vectors, combined rows) and return the result's
    tables (not saved). ``virtual``: keep them in memory instead (a virtual merge base,
    which nothing commits), so a merge that then fails leaves no file behind."""
    out = dict(plan.ours)

    def remove(tm: TableManifest | None) -> None:
        if tm is not None:
            for name, cur in list(out.items()):
                if cur.table_id == tm.table_id:
                    del out[name]

    for tp in sorted(plan.tables, key=lambda p: p.action != "drop"):  # drops first: names free up
        if tp.action == "drop":
            remove(tp.ours)
        elif tp.action == "theirs":
            assert tp.theirs is not None
            remove(tp.ours)
            out[tp.theirs.name] = tp.theirs
        elif tp.action == "rows":
            remove(tp.ours)
            out[tp.name] = _apply_rows(cat, tp, virtual)
    return out


def _apply_rows(cat: Catalog, tp: TablePlan, virtual: bool) -> TableManifest:
    assert tp.ours is not None and tp.theirs is not None and tp.rows is not None and tp.schema is not None
    reader, store = cat.reader, cat.store
    rp = tp.rows

    def deletes(frag: Fragment, positions: np.ndarray) -> Fragment:
        return reader.adopt_deletes(frag, positions) if virtual else write_deletes(store, frag, positions)

    tm = tp.ours.with_schema(tp.schema)
    ids = {c.id for c in tp.schema.columns}
    mine = {ix.name for ix in tm.indexes}
    # an index made on their side comes along; it covers the fragments taken whole from them
    tm = tm.with_indexes(tm.indexes + tuple(ix for ix in tp.theirs.indexes if ix.name not in mine and ix.column in ids))
    tm.name = tp.name
    tid = tm.table_id
    ofr = {f.id: f for f in tm.fragments}
    for fid, positions in rp.ours_delete.items():
        f = ofr[fid]
        merged = np.union1d(reader.deleted(f), np.fromiter(positions, np.int64)).astype(np.uint32)
        tm.replace_fragment(deletes(f, merged))
    copies: list[Batch] = []
    for fid, (frag, positions) in rp.take.items():
        if not positions:
            continue
        pos = np.fromiter(positions, np.int64)
        if fid in ofr:  # the fragment is ours too (an earlier merge): copy the rows
            copies.append(reader.batch(tid, frag, tp.schema, np.sort(pos)))
            continue
        live = reader.live_mask(frag)
        keep = np.zeros(frag.rows, bool)
        keep[pos] = True
        if np.array_equal(keep, live):
            tm.append(frag)
        else:
            dels = np.flatnonzero(~keep).astype(np.uint32)
            tm.append(deletes(frag, dels))
    if rp.merged:
        for rowid, oloc, tloc, cols in rp.merged:
            ob = reader.batch(tid, ofr[oloc[0]], tp.schema, np.array([oloc[1]]))
            tb = reader.batch(tid, tloc[0], tp.schema, np.array([tloc[1]]))
            assert int(ob.rowids[0]) == rowid
            copies.append(_combine(ob, tb, cols))
    if copies:
        batch = _dense(concat_batches(copies, tp.schema))
        tm.append(reader.adopt(tid, batch) if virtual else write_fragment(store, tid, batch))
    return tm


def _dense(b: Batch) -> Batch:
    """Contiguous matrices, as write_fragment expects."""
    b.matrices = {cid: MatrixColumn(np.ascontiguousarray(m.values), m.valid) for cid, m in b.matrices.items()}
    return b


Verify = Callable[[dict[str, TableManifest], dict[str, TableManifest]], None]


# -- the operations ----------------------------------------------------------------------------
def merge(cat: Catalog, source: str, into: str, strategy: str = "fail", message: str | None = None,
          author: str | None = None, verify: Verify | None = None) -> MergeResult:
    """``verify(ours, merged)``: called with the tables of the head and of the merge result
    before it is committed; it raises to refuse the merge (the SQL layer checks CHECK
    constraints there)."""
    if strategy not in STRATEGIES:
        raise errors.InvalidParameterValue(f"merge strategy must be one of {', '.join(STRATEGIES)}: {strategy!r}")
    cat.refs.check_writable(into)
    src = cat.resolve(source)
    delay = 0.002
    for _ in range(100):
        got = cat.refs.branch(into)
        if got is None:
            raise errors.UndefinedObject(f'branch "{into}" does not exist')
        head, version = got
        if src in ancestors(cat, head):
            return MergeResult(head, up_to_date=True)
        if head in ancestors(cat, src):
            if cat.refs.move_branch(into, version, src):
                return MergeResult(src, fast_forward=True)
            continue
        plan = plan_merge(cat, base_snapshot(cat, head, src), cat.snapshot(head), cat.snapshot(src), strategy)
        if plan.conflicts and strategy == "fail":
            raise _conflict_error(source, into, plan.conflicts)
        objs = _merge_objects(cat, head, src, strategy, source, into)
        tables = apply_plan(cat, plan)
        if verify is not None:
            verify(cat.snapshot(head), tables)
        c = cat.save_commit((head, src), tables, message or f"merge {source} into {into}", author, plan.stats,
                            objects=objs)
        if cat.refs.move_branch(into, version, c.id):
            return MergeResult(c.id, conflicts=plan.conflicts, stats=plan.stats)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    raise errors.SerializationFailure(f'could not merge into "{into}": its head kept moving')


def revert(cat: Catalog, commit: str, branch: str, message: str | None = None,
           author: str | None = None, verify: Verify | None = None) -> MergeResult:
    """A new commit on ``branch`` that undoes ``commit``: a three-way merge whose base is
    the commit and whose other side is its (first) parent."""
    cat.refs.check_writable(branch)
    c = cat.commit(cat.resolve(commit))
    parent = cat.snapshot(c.parents[0]) if c.parents else {}
    while True:
        got = cat.refs.branch(branch)
        if got is None:
            raise errors.UndefinedObject(f'branch "{branch}" does not exist')
        head, version = got
        if c.id not in ancestors(cat, head):
            raise errors.InvalidParameterValue(f'commit {c.id} is not in the history of branch "{branch}"')
        plan = plan_merge(cat, cat.snapshot(c.id), cat.snapshot(head), parent, "fail")
        if plan.conflicts:
            raise _conflict_error(f"revert of {c.id[:12]}", branch, plan.conflicts)
        objs, clash = objects.merge3(cat.objects(c.id), cat.objects(head),
                                     cat.objects(c.parents[0]) if c.parents else {})
        if clash:
            raise errors.MergeConflict(f"revert of {c.id[:12]} into {branch} conflicts on "
                                       f"{objects.describe(clash[0])}; nothing was written", [])
        tables = apply_plan(cat, plan)
        if verify is not None:
            verify(cat.snapshot(head), tables)
        new = cat.save_commit((head,), tables, message or f"revert {c.id[:12]}: {c.message}", author, plan.stats,
                              objects=objs)
        if cat.refs.move_branch(branch, version, new.id):
            return MergeResult(new.id, stats=plan.stats)


def _merge_objects(cat: Catalog, head: str, src: str, strategy: str, source: str, into: str) -> dict:
    """Schemas, types, sequences and comments, merged three-way by name: two different
    changes to one object are a conflict (``ours``/``theirs`` pick a side)."""
    bases = merge_bases(cat, head, src)
    base = cat.objects(bases[0]) if bases else {}
    ours, theirs = cat.objects(head), cat.objects(src)
    merged, clash = objects.merge3(base, ours, theirs)
    if clash:
        if strategy == "fail":
            raise errors.MergeConflict(
                f"merge of {source} into {into} conflicts on {', '.join(objects.describe(k) for k in clash)}: "
                "both sides changed it; nothing was written. Resolve with strategy 'ours' or 'theirs'", [])
        for k in clash:
            v = (ours if strategy == "ours" else theirs).get(k)
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
    return merged


def _conflict_error(source: str, into: str, conflicts: list[Conflict]) -> errors.MergeConflict:
    shown = "\n  ".join(str(c) for c in conflicts[:10])
    more = f"\n  ... and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    return errors.MergeConflict(
        f"merge of {source} into {into} has {len(conflicts)} conflict(s); nothing was written. "
        f"Resolve with strategy 'ours' or 'theirs':\n  {shown}{more}", conflicts)
