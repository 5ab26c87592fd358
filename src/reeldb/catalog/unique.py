"""Unique and primary keys at commit: a key of the new fragments must not exist elsewhere
in the table. Shared by plain and group commits."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .. import errors
from ..format.fragment import FragmentReader, scol
from ..format.manifest import Fragment, TableManifest


def _key_table(reader: FragmentReader, tm: TableManifest, frag: Fragment, cids: tuple[int, ...]) -> pa.Table:
    t = reader.table(tm.table_id, frag)
    cols = {}
    for cid in cids:
        name = scol(cid)
        if name in t.column_names:
            cols[name] = t.column(name)
        else:
            fill = tm.schema.by_id(cid).fill
            cols[name] = pa.array([fill] * t.num_rows, tm.schema.by_id(cid).type.arrow())
    kt = pa.table(cols)
    if frag.ndel:
        kt = kt.filter(pa.array(reader.live_mask(frag)))
    # NULLs never collide (Postgres semantics): drop rows with a NULL in the key
    mask = None
    for name in kt.column_names:
        m = pc.is_valid(kt.column(name))
        mask = m if mask is None else pc.and_(mask, m)
    return kt.filter(mask) if mask is not None else kt


def check_unique(reader: FragmentReader, tm: TableManifest, new_frags: list[Fragment]) -> None:
    """Raise UniqueViolation if a key of the new fragments exists elsewhere in the table."""
    if not tm.schema.uniques or not new_frags:
        return
    new_ids = {f.id for f in new_frags}
    current = {f.id: f for f in tm.fragments}
    new_frags = [current[f.id] for f in new_frags if f.id in current]
    for cids in tm.schema.uniques:
        names = [scol(c) for c in cids]
        new = pa.concat_tables([_key_table(reader, tm, f, cids) for f in new_frags])
        if new.num_rows == 0:
            continue
        counts = new.group_by(names).aggregate([([], "count_all")])
        dup = counts.filter(pc.greater(counts.column("count_all"), 1))
        if dup.num_rows:
            raise _violation(tm, cids, dup.slice(0, 1))
        lo_hi = _bounds(new, names) if len(names) == 1 else None
        for frag in tm.fragments:
            if frag.id in new_ids:
                continue
            if lo_hi is not None:
                fb = reader.bounds(tm.table_id, frag, names[0])
                if fb is not None and (lo_hi[1] < fb[0] or lo_hi[0] > fb[1]):
                    continue  # min/max of the fragment rule out every new key
            old = _key_table(reader, tm, frag, cids)
            if old.num_rows == 0:
                continue
            if len(names) == 1:
                hit = old.filter(pc.is_in(old.column(names[0]), value_set=new.column(names[0])))
            else:
                hit = old.join(new, keys=names, join_type="inner")
            if hit.num_rows:
                raise _violation(tm, cids, hit.slice(0, 1))


def _bounds(t: pa.Table, names: list[str]) -> tuple | None:
    col = t.column(names[0])
    if not (pa.types.is_integer(col.type) or pa.types.is_string(col.type) or pa.types.is_temporal(col.type)):
        return None
    mm = pc.min_max(col)
    return mm["min"].as_py(), mm["max"].as_py()


def _violation(tm: TableManifest, cids: tuple[int, ...], row: pa.Table) -> errors.UniqueViolation:
    cols = [tm.schema.by_id(c).name for c in cids]
    vals = [str(row.column(scol(c))[0].as_py()) for c in cids]
    name = tm.schema.key_name(tm.name.rpartition(".")[2], cids)
    name = next((ix.name for ix in tm.schema.btree_indexes if ix.unique and ix.columns == tuple(cids)), name)
    err = errors.UniqueViolation(f'duplicate key value violates unique constraint "{name}"')
    # Postgres' DETAIL, sent as its own field of the ErrorResponse
    err.detail = f"Key ({', '.join(cols)})=({', '.join(vals)}) already exists."  # type: ignore[attr-defined]
    return err
