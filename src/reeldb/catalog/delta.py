"""Row-level changes between two versions of one table, found by ``_rowid``.

Fragments are immutable and keep their id across commits, so a fragment present on both
sides with the same deletion vector holds the same rows and is skipped without being
read: the cost of a delta grows with what changed, not with the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..format.fragment import Batch, FragmentReader, concat_batches
from ..format.manifest import Fragment, Schema, TableManifest
from ..format.types import MATRIX


@dataclass
class Located:
    """Rows of one table version: ``_rowid`` and where each row lives."""

    frags: list[Fragment]
    rowids: np.ndarray  # int64
    fidx: np.ndarray  # index into frags
    pos: np.ndarray  # position within the fragment

    @staticmethod
    def empty() -> Located:
        return Located([], np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.rowids)

    def select(self, mask: np.ndarray) -> Located:
        return Located(self.frags, self.rowids[mask], self.fidx[mask], self.pos[mask])

    def where(self, rowids: np.ndarray) -> Located:
        """The rows with these ids, in the order given (every id must be present)."""
        order = np.argsort(self.rowids, kind="stable")
        at = order[np.searchsorted(self.rowids, rowids, sorter=order)]
        return Located(self.frags, self.rowids[at], self.fidx[at], self.pos[at])

    def by_fragment(self) -> dict[int, np.ndarray]:
        """Fragment index -> indexes into this set, in fragment order."""
        out: dict[int, np.ndarray] = {}
        for i in np.unique(self.fidx):
            out[int(i)] = np.flatnonzero(self.fidx == i)
        return out

    def read(self, reader: FragmentReader, table_id: str, schema: Schema) -> Batch:
        """Every row's values under ``schema``, in this set's order."""
        if not len(self):
            return _empty_batch(schema)
        parts, order = [], []
        for i, sel in self.by_fragment().items():
            parts.append(reader.batch(table_id, self.frags[i], schema, self.pos[sel]))
            order.append(sel)
        b = concat_batches(parts, schema)
        inv = np.empty(len(self), np.int64)
        inv[np.concatenate(order)] = np.arange(len(self))
        return take_batch(b, inv)


@dataclass
class Delta:
    """What changed from version ``a`` to version ``b`` of a table, by location.

    ``gone``: rows live in ``a`` that are not live (there) in ``b``; ``new``: the reverse.
    A rowid in both was updated (or moved by compaction: compare the cells to tell).
    """

    gone: Located
    new: Located

    def updated_ids(self) -> np.ndarray:
        return np.intersect1d(self.gone.rowids, self.new.rowids)

    def inserted_ids(self) -> np.ndarray:
        return np.setdiff1d(self.new.rowids, self.gone.rowids)

    def deleted_ids(self) -> np.ndarray:
        return np.setdiff1d(self.gone.rowids, self.new.rowids)


def delta(reader: FragmentReader, a: TableManifest | None, b: TableManifest | None) -> Delta:
    fa = {f.id: f for f in a.fragments} if a is not None else {}
    fb = {f.id: f for f in b.fragments} if b is not None else {}
    gone: list[tuple[Fragment, np.ndarray]] = []
    new: list[tuple[Fragment, np.ndarray]] = []
    for fid, f in fa.items():
        g = fb.get(fid)
        if g is None:
            gone.append((f, np.flatnonzero(reader.live_mask(f))))
        elif g.deletes != f.deletes:
            la, lb = reader.live_mask(f), reader.live_mask(g)
            gone.append((f, np.flatnonzero(la & ~lb)))
            new.append((g, np.flatnonzero(lb & ~la)))
    for fid, g in fb.items():
        if fid not in fa:
            new.append((g, np.flatnonzero(reader.live_mask(g))))
    ta = a.table_id if a is not None else ""
    tb = b.table_id if b is not None else ""
    return Delta(_locate(reader, ta, gone), _locate(reader, tb, new))


def _locate(reader: FragmentReader, table_id: str, parts: list[tuple[Fragment, np.ndarray]]) -> Located:
    parts = [(f, p) for f, p in parts if len(p)]
    if not parts:
        return Located.empty()
    frags = [f for f, _ in parts]
    rowids = np.concatenate([reader.rowids(table_id, f, p) for f, p in parts]).astype(np.int64)
    fidx = np.concatenate([np.full(len(p), i, np.int64) for i, (_, p) in enumerate(parts)])
    pos = np.concatenate([p for _, p in parts]).astype(np.int64)
    return Located(frags, rowids, fidx, pos)


def locate_all(reader: FragmentReader, tm: TableManifest, rowids: np.ndarray) -> Located:
    """Where the live rows with these ids are in ``tm`` (ids not found are left out).

    Fragments whose ``_rowid`` range cannot hold any of the ids are not read."""
    if not len(rowids):
        return Located.empty()
    want = np.unique(rowids)
    lo, hi = int(want[0]), int(want[-1])
    parts = []
    for f in tm.fragments:
        bounds = reader.bounds(tm.table_id, f, "_rowid")
        if bounds is None or bounds[1] < lo or bounds[0] > hi:
            continue
        ids = reader.rowids(tm.table_id, f)
        hit = np.isin(ids, want) & reader.live_mask(f)
        if hit.any():
            parts.append((f, np.flatnonzero(hit)))
    return _locate(reader, tm.table_id, parts)


def _empty_batch(schema: Schema) -> Batch:
    from ..format.types import MatrixColumn

    b = Batch(np.empty(0, np.int64))
    for c in schema.columns:
        if c.type.storage == MATRIX:
            b.matrices[c.id] = MatrixColumn(np.zeros((0, *c.type.row_shape), c.type.np_dtype), np.zeros(0, bool))
        else:
            b.scalars[c.id] = pa.array([], c.type.arrow())
    return b


def take_batch(b: Batch, idx: np.ndarray) -> Batch:
    from ..format.types import MatrixColumn

    out = Batch(b.rowids[idx])
    ia = pa.array(idx, pa.int64())
    out.scalars = {cid: arr.take(ia) for cid, arr in b.scalars.items()}
    out.matrices = {cid: MatrixColumn(m.values[idx], m.valid[idx]) for cid, m in b.matrices.items()}
    return out


def changed_cells(a: Batch, b: Batch, schema_a: Schema, schema_b: Schema) -> dict[int, np.ndarray]:
    """Column id -> bool mask of rows whose cell differs, for columns of both schemas.

    ``a`` and ``b`` hold the same rows in the same order."""
    out: dict[int, np.ndarray] = {}
    ids_a = {c.id for c in schema_a.columns}
    for c in schema_b.columns:
        if c.id not in ids_a:
            continue
        if c.type.storage == MATRIX:
            ma, mb = a.matrices[c.id], b.matrices[c.id]
            n = len(ma.valid)
            same_vals = (ma.values.reshape(n, -1) == mb.values.reshape(n, -1)).all(axis=1) if n else np.ones(0, bool)
            diff = (ma.valid != mb.valid) | (ma.valid & ~same_vals)
        else:
            diff = ~_equal(a.scalars[c.id], b.scalars[c.id])
        out[c.id] = diff
    return out


def _equal(x: pa.Array, y: pa.Array) -> np.ndarray:
    """Element-wise equality with NULL == NULL (struct and JSON cells compared by value)."""
    import pyarrow.compute as pc

    if x.type != y.type:
        return np.array([u == v for u, v in zip(x.to_pylist(), y.to_pylist())], dtype=bool)
    try:
        eq = pc.equal(x, y)
    except pa.ArrowNotImplementedError:
        return np.array([u == v for u, v in zip(x.to_pylist(), y.to_pylist())], dtype=bool)
    both_null = pc.and_(pc.is_null(x), pc.is_null(y))
    return pc.fill_null(pc.or_kleene(eq, both_null), False).to_numpy(zero_copy_only=False)
