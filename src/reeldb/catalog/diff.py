"""``db.diff(a, b)``: per table, the rows added, removed and changed between two commits,
with the changed cells."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..format.arrow import matrix_array
from ..format.fragment import Batch
from ..format.manifest import Schema, TableManifest
from ..format.types import MATRIX
from .catalog import Catalog
from .delta import changed_cells, delta

DIFF_SCHEMA = pa.schema([("table", pa.string()), ("_rowid", pa.int64()), ("change", pa.string()),
                         ("column", pa.string()), ("old", pa.string()), ("new", pa.string())])


@dataclass
class TableDiff:
    """One table's changes from ``a`` to ``b``.

    ``added`` / ``removed`` are whole rows (with ``_rowid``) as Arrow tables; ``changed`` has
    one row per changed cell: ``_rowid, column, old, new``, values as text."""

    table: str
    status: str  # "added", "dropped", "modified", "replaced" (dropped, another created by its name)
    added: pa.Table
    removed: pa.Table
    changed: pa.Table
    schema_changes: list[str] = field(default_factory=list)

    @property
    def changed_rows(self) -> int:
        return len(set(self.changed.column("_rowid").to_pylist()))

    def to_arrow(self) -> pa.Table:
        """The long form: one row per added row, removed row and changed cell."""
        rows: dict[str, list[Any]] = {f.name: [] for f in DIFF_SCHEMA}

        def emit(rowid: int, change: str, column: str | None, old: str | None, new: str | None) -> None:
            for k, v in zip(DIFF_SCHEMA.names, (self.table, rowid, change, column, old, new)):
                rows[k].append(v)

        for tbl, change in ((self.removed, "removed"), (self.added, "added")):
            names = [n for n in tbl.column_names if n != "_rowid"]
            for r in tbl.to_pylist():
                text = json.dumps({n: render(r[n]) for n in names})
                emit(r["_rowid"], change, None, text if change == "removed" else None,
                     text if change == "added" else None)
        for r in self.changed.to_pylist():
            emit(r["_rowid"], "changed", r["column"], r["old"], r["new"])
        return pa.table(rows, schema=DIFF_SCHEMA)

    def __repr__(self) -> str:
        return (f"<TableDiff {self.table} {self.status}: +{self.added.num_rows} -{self.removed.num_rows} "
                f"~{self.changed_rows} rows ({self.changed.num_rows} cells)>")


class Diff(dict[str, TableDiff]):
    """Table name -> TableDiff, for the tables that differ."""

    def to_arrow(self) -> pa.Table:
        parts = [td.to_arrow() for td in self.values()]
        return pa.concat_tables(parts) if parts else DIFF_SCHEMA.empty_table()

    def df(self) -> Any:
        return self.to_arrow().to_pandas()

    def summary(self) -> list[dict[str, Any]]:
        return [{"table": t, "status": d.status, "added": d.added.num_rows, "removed": d.removed.num_rows,
                 "changed": d.changed_rows, "schema": d.schema_changes} for t, d in self.items()]


def diff(cat: Catalog, a: str, b: str, table: str | None = None) -> Diff:
    """Commits ``a`` -> ``b``. Tables are matched by their stable id, so a rename is a
    change of one table, not a drop and a create."""
    sa, sb = cat.snapshot(a), cat.snapshot(b)
    by_id_a = {tm.table_id: tm for tm in sa.values()}
    by_id_b = {tm.table_id: tm for tm in sb.values()}
    out = Diff()
    for tid in list(by_id_a) + [t for t in by_id_b if t not in by_id_a]:
        ta, tb = by_id_a.get(tid), by_id_b.get(tid)
        name = (tb or ta).name  # type: ignore[union-attr]
        if table is not None and table not in {t.name for t in (ta, tb) if t is not None}:
            continue
        if ta is not None and tb is not None and ta.key is not None and ta.key == tb.key:
            continue
        td = table_diff(cat, ta, tb)
        if td.status != "modified" or td.added.num_rows or td.removed.num_rows or td.changed.num_rows \
                or td.schema_changes:
            prev = out.get(name)
            if prev is not None:  # dropped, and another table created under its name
                old, new = (prev, td) if prev.status == "dropped" else (td, prev)
                td = TableDiff(name, "replaced", new.added, old.removed, _empty_cells(),
                               ["drop table and create a new one with the same name"])
            out[name] = td
    if table is not None and table not in sa and table not in sb:
        from .. import errors

        raise errors.UndefinedTable(f'relation "{table}" does not exist in either commit')
    return out


def table_diff(cat: Catalog, ta: TableManifest | None, tb: TableManifest | None) -> TableDiff:
    reader = cat.reader
    d = delta(reader, ta, tb)
    sa = ta.schema if ta is not None else None
    sb = tb.schema if tb is not None else None
    status = "added" if ta is None else "dropped" if tb is None else "modified"
    both = np.intersect1d(d.gone.rowids, d.new.rowids)
    removed = d.gone.select(~np.isin(d.gone.rowids, both))
    added = d.new.select(~np.isin(d.new.rowids, both))
    removed_t = batch_table(removed.read(reader, ta.table_id, sa), sa) if ta is not None and sa is not None \
        else _empty_rows()
    added_t = batch_table(added.read(reader, tb.table_id, sb), sb) if tb is not None and sb is not None \
        else _empty_rows()
    changed = _empty_cells()
    if len(both) and sa is not None and sb is not None and ta is not None and tb is not None:
        # both sides under b's schema: a column b added shows a's rows with its fill value
        old = d.gone.where(both).read(reader, ta.table_id, sb)
        new = d.new.where(both).read(reader, tb.table_id, sb)
        changed = cells_table(old, new, sb, sb, both)
    changes = schema_changes(sa, sb) if sa is not None and sb is not None else []
    if ta is not None and tb is not None and ta.name != tb.name:
        changes.insert(0, f"rename table {ta.name} to {tb.name}")
    return TableDiff((tb or ta).name, status, added_t, removed_t, changed,  # type: ignore[union-attr]
                     changes)


def cells_table(old: Batch, new: Batch, sa: Schema, sb: Schema, rowids: np.ndarray) -> pa.Table:
    """One row per cell that differs between two reads of the same rows."""
    masks = changed_cells(old, new, sa, sb)
    ids, cols, olds, news = [], [], [], []
    for cid, mask in masks.items():
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        name = sb.by_id(cid).name
        ov, nv = column_values(old, sa, cid, rows), column_values(new, sb, cid, rows)
        for i, r in enumerate(rows):
            ids.append(int(rowids[r]))
            cols.append(name)
            olds.append(_text(ov[i]))
            news.append(_text(nv[i]))
    t = pa.table({"_rowid": pa.array(ids, pa.int64()), "column": pa.array(cols, pa.string()),
                  "old": pa.array(olds, pa.string()), "new": pa.array(news, pa.string())})
    return t.sort_by([("_rowid", "ascending"), ("column", "ascending")])


def column_values(b: Batch, schema: Schema, cid: int, rows: np.ndarray) -> list[Any]:
    col = schema.by_id(cid)
    if col.type.storage == MATRIX:
        m = b.matrices[cid]
        return [m.values[r] if m.valid[r] else None for r in rows]
    values = b.scalars[cid].take(pa.array(rows, pa.int64())).to_pylist()
    if col.type.kind == "float32":  # show REAL as Postgres does: 0.9, not 0.8999999761581421
        return [None if v is None else np.float32(v) for v in values]
    return values


def batch_table(b: Batch, schema: Schema) -> pa.Table:
    """A batch as Arrow with column names: vectors as fixed-size lists, blobs as their
    stored references."""
    arrays: dict[str, pa.Array] = {"_rowid": pa.array(b.rowids, pa.int64())}
    for c in schema.columns:
        if c.type.storage == MATRIX:
            m = b.matrices[c.id]
            arrays[c.name] = matrix_array(m.values, c.type, pa.array(m.valid))
        else:
            arrays[c.name] = b.scalars[c.id]
    return pa.table(arrays)


def schema_changes(a: Schema, b: Schema) -> list[str]:
    out = []
    ida = {c.id: c for c in a.columns}
    idb = {c.id: c for c in b.columns}
    for cid, c in idb.items():
        old = ida.get(cid)
        if old is None:
            out.append(f"add column {c.name} {c.type.sql()}")
        elif old.name != c.name:
            out.append(f"rename column {old.name} to {c.name}")
    out += [f"drop column {c.name}" for cid, c in ida.items() if cid not in idb]
    return out


def render(v: Any) -> Any:
    """A cell as JSON-able text parts: vectors as pgvector text, blobs as a short label."""
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return "[" + ",".join(f"{x:g}" for x in v.ravel().tolist()) + "]"
    if isinstance(v, dict) and "kind" in v and "length" in v:
        return f"<{v['kind']} {v['length']} bytes>"
    if isinstance(v, list):
        return [render(x) for x in v]
    if isinstance(v, np.floating):
        return str(v)
    if isinstance(v, int | float | str | bool):
        return v
    return str(v)


def _text(v: Any) -> str | None:
    r = render(v)
    if r is None:
        return None
    return r if isinstance(r, str) else json.dumps(r)


def _empty_rows() -> pa.Table:
    return pa.table({"_rowid": pa.array([], pa.int64())})


def _empty_cells() -> pa.Table:
    return pa.table({"_rowid": pa.array([], pa.int64()), "column": pa.array([], pa.string()),
                     "old": pa.array([], pa.string()), "new": pa.array([], pa.string())})
