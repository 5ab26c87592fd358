"""Fragments on disk: one Parquet file of scalar columns, one raw matrix file per
vector/tensor column, and an optional deletion vector.

Parquet columns are named by stable column id (``c7``), so renaming a column never
rewrites data. Each matrix column also gets a hidden ``n7`` float32 Parquet column: the
row's L2 norm (NULL when the cell is NULL), so cosine similarity needs no second pass.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import errors
from ..storage import ObjectStore
from . import checksum
from .keys import deletes_key, matrix_key, memory_deletes_key, parquet_key
from .manifest import Column, Fragment, Schema
from .types import BLOB_STRUCT, MATRIX, OLD_BLOB_FIELDS, MatrixColumn
from .values import check_scalars

ROWID = "_rowid"


def scol(cid: int) -> str:
    return f"c{cid}"


def ncol(cid: int) -> str:
    return f"n{cid}"


@dataclass
class Batch:
    """Checked values of one write, by column id, ready to become a fragment."""

    rowids: np.ndarray
    scalars: dict[int, pa.Array] = field(default_factory=dict)
    matrices: dict[int, MatrixColumn] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rowids)


def write_fragment(store: ObjectStore, table_id: str, batch: Batch) -> Fragment:
    """Write the fragment's files; the Fragment records each one's checksum."""
    frag, table, mats = build_fragment(batch)
    sums: list[tuple[str, str]] = []
    for cid, values in mats.items():
        data = values.tobytes()
        sums.append((f"m{cid}", checksum.digest(data)))
        store.put(matrix_key(table_id, frag.id, cid), data)
    buf = io.BytesIO()
    # page checksums (CRC-32 per data page): a reader of some columns verifies the pages it reads
    pq.write_table(table, buf, compression="snappy", write_page_checksum=True)
    body = buf.getbuffer()
    sums.append(("parquet", checksum.digest(body)))
    sums.append(("footer", footer_checksum(body)))
    store.put(parquet_key(table_id, frag.id), bytes(body))
    return dataclasses.replace(frag, sums=tuple(sorted(sums)))


def build_fragment(batch: Batch) -> tuple[Fragment, pa.Table, dict[int, np.ndarray]]:
    """A fragment's Parquet table and matrix values, in memory."""
    fid = uuid.uuid4().hex
    n = len(batch)
    arrays: dict[str, pa.Array] = {ROWID: pa.array(batch.rowids, pa.int64())}
    for cid, arr in batch.scalars.items():
        arrays[scol(cid)] = arr
    mats: dict[int, np.ndarray] = {}
    for cid, m in batch.matrices.items():
        values = np.ascontiguousarray(m.values)
        flat = values.reshape(n, -1)
        norms = np.sqrt(np.einsum("ij,ij->i", flat, flat, dtype=np.float64)).astype(np.float32) \
            if np.issubdtype(values.dtype, np.number) else np.ones(n, np.float32)
        arrays[ncol(cid)] = pa.array(norms, pa.float32(), mask=~m.valid)
        mats[cid] = values
    frag = Fragment(fid, n, tuple(batch.scalars), tuple((cid, v.dtype.name) for cid, v in mats.items()))
    return frag, pa.table(arrays), mats


def write_deletes(store: ObjectStore, frag: Fragment, positions: np.ndarray) -> Fragment:
    """``frag`` with a new deletion vector of ``positions`` (written, checksum recorded)."""
    key = deletes_key(uuid.uuid4().hex)
    data = np.unique(positions).astype("<u4").tobytes()
    store.put(key, data)
    return frag.with_deletes(key, len(data) // 4, checksum.digest(data))


class FragmentReader:
    """Reads fragments of one store, caching what it read: every file is immutable."""

    def __init__(self, store: ObjectStore, max_bytes: int = 1 << 30):
        self.store = store
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes
        self._lock = threading.Lock()
        self._deletes: dict[str, np.ndarray] = {}
        self._mats: dict[str, np.ndarray] = {}
        self._bounds: dict[tuple[str, str], tuple | None] = {}
        self._memory: dict[str, pa.Table] = {}  # fragments adopted, never written

    def adopt(self, table_id: str, batch: Batch) -> Fragment:
        """A fragment that lives only in this reader (a merge's virtual base): readable
        like any other, never written."""
        frag, table, mats = build_fragment(batch)
        with self._lock:
            self._memory[parquet_key(table_id, frag.id)] = table
            for cid, values in mats.items():
                self._mats[matrix_key(table_id, frag.id, cid)] = values
        return frag

    def adopt_deletes(self, frag: Fragment, positions: np.ndarray) -> Fragment:
        """``frag`` with a deletion vector that lives only in this reader (see ``adopt``)."""
        key = memory_deletes_key(uuid.uuid4().hex)
        d = self._deletes[key] = np.unique(positions).astype("<u4")
        return frag.with_deletes(key, len(d), None)

    def table(self, table_id: str, frag: Fragment) -> pa.Table:
        key = parquet_key(table_id, frag.id)
        mem = self._memory.get(key)
        if mem is not None:
            return mem
        with self._lock:
            t = self._tables.get(key)
            if t is not None:
                self._tables.move_to_end(key)
                return t
        path, data = open_verified(self.store, key, frag.checksum("parquet"))
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose
        # import alone costs a cold start ~250 ms
        try:
            t = pq.ParquetFile(path if path else io.BytesIO(data)).read()
        except (OSError, pa.ArrowException) as e:
            raise checksum.damaged(key, f"it is not a readable Parquet file ({e})") from None
        t = upgrade_blob_columns(t)
        with self._lock:
            self._tables[key] = t
            self._bytes += t.nbytes
            while self._bytes > self._max and len(self._tables) > 1:
                _, old = self._tables.popitem(last=False)
                self._bytes -= old.nbytes
        return t

    def cached(self, table_id: str, frag: Fragment) -> bool:
        return parquet_key(table_id, frag.id) in self._tables

    def columns(self, table_id: str, frag: Fragment, names: list[str]) -> pa.Table:
        """The Parquet columns ``names`` of a fragment (those it has): the whole file when
        this reader holds it already, else only those columns are read (and not kept)."""
        key = parquet_key(table_id, frag.id)
        if key in self._memory or key in self._tables:
            t = self.table(table_id, frag)
            return t.select([n for n in names if n in t.column_names])
        return parquet_columns(self.store, key, names, frag)

    def bounds(self, table_id: str, frag: Fragment, column: str) -> tuple | None:
        """(min, max) of a Parquet column of the fragment, deleted rows included (a safe
        superset for pruning); None when the column is absent or all NULL. Read from the
        file's footer statistics when the fragment is not cached, so pruning a fragment
        does not read it."""
        key = (frag.id, column)
        got = self._bounds.get(key, False)
        if got is False:
            pk = parquet_key(table_id, frag.id)
            cached = pk in self._tables or pk in self._memory
            got = _NO_STATS
            if not cached and self.store.file_path(pk):
                open_verified(self.store, pk, frag.checksum("parquet"))  # its footer is trusted once the file is
                got = _footer_bounds(self.store, pk, column)
            if got is _NO_STATS:
                t = self.table(table_id, frag)
                got = None
                if column in t.column_names:
                    col = t.column(column)
                    if pa.types.is_integer(col.type) or pa.types.is_string(col.type) or pa.types.is_temporal(col.type):
                        mm = pc.min_max(col)
                        got = (mm["min"].as_py(), mm["max"].as_py()) if mm["min"].is_valid else None
            self._bounds[key] = got
        return got

    def matrix(self, table_id: str, frag: Fragment, col: Column) -> np.ndarray:
        """The column's values as (rows, *shape), memory-mapped when the store is local."""
        key = matrix_key(table_id, frag.id, col.id)
        m = self._mats.get(key)
        if m is not None:
            return m
        dtype = np.dtype(dict(frag.mats)[col.id])
        shape = (frag.rows, *col.type.row_shape)
        size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        expected = frag.checksum(f"m{col.id}")
        path = self.store.file_path(key)
        if path:
            try:
                checksum.check_size(key, os.path.getsize(path), size)
            except FileNotFoundError:
                raise checksum.damaged(key, "it is missing") from None
            m = np.memmap(path, dtype=dtype, mode="r", shape=shape) if size else np.zeros(shape, dtype)
            # hashed through the mapping the scans use: its pages are mapped for them after
            checksum.check_once(self.store.url, key, m.reshape(-1).view(np.uint8), expected)
        else:
            _, data = open_verified(self.store, key, expected)
            assert data is not None
            checksum.check_size(key, len(data), size)
            m = np.frombuffer(data, dtype=dtype).reshape(shape)
        self._mats[key] = m
        return m

    def deleted(self, frag: Fragment) -> np.ndarray:
        """Sorted positions deleted from the fragment (empty when none)."""
        if not frag.deletes:
            return np.empty(0, np.uint32)
        d = self._deletes.get(frag.deletes)
        if d is None:
            d = read_deletes(self.store, frag)
            self._deletes[frag.deletes] = d
        return d

    def live_mask(self, frag: Fragment) -> np.ndarray:
        mask = np.ones(frag.rows, dtype=bool)
        mask[self.deleted(frag)] = False
        return mask

    def rowids(self, table_id: str, frag: Fragment, positions: np.ndarray | None = None) -> np.ndarray:
        ids = self.table(table_id, frag).column(ROWID).to_numpy()
        return ids if positions is None else ids[positions]

    def batch(self, table_id: str, frag: Fragment, schema: Schema, positions: np.ndarray) -> Batch:
        """Rows of a fragment at ``positions`` under ``schema``: columns the fragment lacks
        show their fill value, columns the schema dropped are left out. Blob cells stay
        references, so rewriting rows (compaction, merge) never copies blob bytes."""
        t = self.table(table_id, frag)
        idx = pa.array(positions, pa.int64())
        n = len(positions)
        out = Batch(t.column(ROWID).to_numpy()[positions])
        mats = dict(frag.mats)
        for c in schema.columns:
            if c.type.storage == MATRIX:
                if c.id in mats:
                    values = np.asarray(self.matrix(table_id, frag, c)[positions])
                    valid = t.column(ncol(c.id)).take(idx).is_valid().to_numpy(zero_copy_only=False)
                else:
                    values = np.zeros((n, *c.type.row_shape), c.type.np_dtype)
                    valid = np.zeros(n, bool)
                out.matrices[c.id] = MatrixColumn(values, valid)
            elif scol(c.id) in t.column_names:
                out.scalars[c.id] = t.column(scol(c.id)).take(idx).combine_chunks()
            elif c.fill is None:
                out.scalars[c.id] = pa.nulls(n, c.type.arrow())
            else:
                out.scalars[c.id] = pa.repeat(fill_value(c), n)
        return out


def fill_value(c: Column) -> pa.Scalar:
    """The value fragments written before column ``c`` was added show in it. The manifest
    keeps it JSON-able (a date, a timestamp, a NUMERIC or a UUID as its text), so it is
    converted as a written value is, not cast: Arrow reads no date from a string."""
    try:
        return check_scalars(c.type, c.name, [c.fill])[0]
    except errors.Error:
        raise errors.DataError(f'column "{c.name}" was added with a DEFAULT stored as {c.fill!r}, which reeldb '
                               f"cannot read back as {c.type.sql()}") from None


def open_verified(store: ObjectStore, key: str, expected: str | None) -> tuple[str | None, bytes | None]:
    """A whole object as a local file path or else its bytes, verified on first open in
    this process (XX001 on a mismatch or when missing). Parquet fragments and
    matrices are checked this way: whole, once per process, as they are immutable."""
    try:
        path = store.file_path(key)
        if path:
            checksum.check_file(store.url, key, path, expected)
            return path, None
        data = store.get(key)
    except (KeyError, FileNotFoundError):
        raise checksum.damaged(key, "it is missing") from None
    checksum.check_once(store.url, key, data, expected)
    return None, data


def parquet_columns(store: ObjectStore, key: str, names: list[str], frag: Fragment | None = None) -> pa.Table:
    """The columns ``names`` of a Parquet object (those it has): the column chunks of
    the others are never read. ``pre_buffer`` is off so reads are not coalesced across
    chunks of columns that were not asked for. ``frag`` holds the file's recorded
    checksums: a local file is verified whole on first open in the process; remotely the
    footer and every page read are (XX001 on damage)."""
    expected = frag.checksum("parquet") if frag is not None else None
    footer = frag.checksum("footer") if frag is not None else None
    path = store.local_path(key)
    try:
        if path is not None:
            checksum.check_file(store.url, key, path, expected)  # the whole file, once per process
            pf = pq.ParquetFile(path, pre_buffer=False)
            return upgrade_blob_columns(pf.read(columns=[n for n in names if n in pf.schema_arrow.names]))
        # remotely only the columns asked for are read: their pages carry CRCs, checked as
        # they are read, and the footer is checked against the manifest's checksum of it
        meta = verified_footer(store, key, footer) if footer is not None and checksum.enabled() else None
        with store.open_input(key) as f:
            pf = pq.ParquetFile(f, pre_buffer=False, metadata=meta, page_checksum_verification=meta is not None)
            return upgrade_blob_columns(pf.read(columns=[n for n in names if n in pf.schema_arrow.names]))
    except (OSError, pa.ArrowException) as e:
        raise checksum.damaged(key, f"it is not a readable Parquet file ({e})") from None


def verify_once(store: ObjectStore, key: str, expected: str | None) -> None:
    """Verify an object this process reads in pieces (ranged reads) before its first
    piece: whole, once per process (on a remote store, from the disk cache when there is
    one)."""
    if expected is not None and checksum.enabled() and not checksum.verified(store.url, key, expected):
        open_verified(store, key, expected)


def footer_checksum(body: Any) -> str:
    """``"<offset>:<length>:<checksum>"`` of a Parquet file's tail (footer, its length and
    magic): a reader that reads only some columns verifies the footer with it, and the
    data pages with their own CRCs."""
    view = memoryview(body)
    n = len(view)
    start = n - 8 - int.from_bytes(view[n - 8 : n - 4], "little")
    return f"{start}:{n - start}:{checksum.digest(view[start:])}"


def verified_footer(store: ObjectStore, key: str, recorded: str) -> pq.FileMetaData:
    """A Parquet file's metadata, from its tail checked against ``recorded``
    (``footer_checksum``): one ranged read, XX001 on damage."""
    start, length, expected = recorded.split(":")
    tail = store.get_range(key, int(start), int(length))
    if len(tail) != int(length):
        raise checksum.damaged(key, f"its footer is cut short ({len(tail)} of {length} bytes: truncated)")
    checksum.check(key, tail, expected)
    try:
        return pq.read_metadata(pa.BufferReader(tail))
    except (OSError, pa.ArrowException) as e:
        raise checksum.damaged(key, f"its footer is not Parquet metadata ({e})") from None


def read_deletes(store: ObjectStore, frag: Fragment) -> np.ndarray:
    """A fragment's deletion vector, verified: its size must match the deleted-row count
    and its bytes the recorded checksum, else XX001 (never rows brought back)."""
    key = frag.deletes
    assert key is not None
    try:
        data = store.get(key)
    except KeyError:
        raise checksum.damaged(key, f"the deletion vector of fragment {frag.id} is missing") from None
    checksum.check_size(key, len(data), frag.ndel * 4)
    checksum.check(key, data, frag.checksum("deletes"))
    d = np.frombuffer(data, dtype="<u4")
    if len(d) and int(d[-1]) >= frag.rows:
        raise checksum.damaged(key, f"it deletes row {int(d[-1])} of a fragment of {frag.rows} rows")
    return d


def upgrade_blob_columns(t: pa.Table) -> pa.Table:
    """Blob cells written before per-value checksums lack the ``sums`` field: add it (NULL:
    unverified) so every reader sees one cell layout."""
    for i, f in enumerate(t.schema):
        if pa.types.is_struct(f.type) and tuple(x.name for x in f.type) == OLD_BLOB_FIELDS:
            t = t.set_column(i, f.name, t.column(i).cast(BLOB_STRUCT))
    return t


_NO_STATS = object()


def _footer_bounds(store: ObjectStore, key: str, column: str) -> object:
    """(min, max) from the Parquet footer for integer and string columns; None when the
    column is absent; _NO_STATS when the footer cannot tell (the caller reads the data)."""
    path = store.file_path(key)
    if path is None:
        return _NO_STATS
    md = pq.ParquetFile(path).metadata
    lo = hi = None
    found = False
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        for j in range(rg.num_columns):
            cc = rg.column(j)
            if cc.path_in_schema != column:
                continue
            found = True
            if cc.physical_type not in ("INT32", "INT64", "BYTE_ARRAY"):
                return _NO_STATS
            st = cc.statistics
            if st is None or not st.has_min_max:
                if st is not None and st.null_count == rg.num_rows:
                    continue  # all NULL: no bounds to add
                return _NO_STATS
            lo = st.min if lo is None else min(lo, st.min)
            hi = st.max if hi is None else max(hi, st.max)
    if not found or lo is None:
        return None
    if isinstance(lo, bytes) or isinstance(hi, bytes):
        return _NO_STATS
    return lo, hi


def concat_batches(batches: list[Batch], schema: Schema) -> Batch:
    out = Batch(np.concatenate([b.rowids for b in batches]) if batches else np.empty(0, np.int64))
    for c in schema.columns:
        if c.type.storage == MATRIX:
            out.matrices[c.id] = MatrixColumn(np.concatenate([b.matrices[c.id].values for b in batches]),
                                              np.concatenate([b.matrices[c.id].valid for b in batches]))
        else:
            out.scalars[c.id] = pa.concat_arrays([b.scalars[c.id] for b in batches])
    return out
