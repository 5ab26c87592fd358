"""Reading a plan's rows as numpy batches, in whichever process holds the Reader.

Per column, the cheapest route to an array:
- vectors and fixed-shape tensors: a batch that is one run of rows of a fragment is the
  memory-mapped slice of its matrix file itself (no copy); any other batch is one
  ``np.take`` per fragment from the mapping into one array (on a remote store, one
  byte-range read per run of consecutive rows);
- numbers: the fragment's Parquet column, read once (only that column) and indexed;
- blobs: on a local store, views of the memory-mapped pack (no copy); remotely the
  batch's references are sorted by (pack, offset), adjacent ones merged, and each run is
  read by byte range into one buffer that every value views;
- decoded media: ``Blob.decode`` per value (VIDEO reads from the keyframe before the
  first wanted frame), stacked channels-first when the shapes agree.

Nothing here imports torch.
"""

from __future__ import annotations

import json
import mmap
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import errors
from ..format import checksum
from ..format.fragment import parquet_columns, scol, verified_footer, verify_once
from ..format.keys import matrix_key, pack_key, parquet_key
from ..format.manifest import Fragment
from ..storage import ObjectStore, open_store

CACHE_BYTES = 512 << 20  # Parquet columns kept per process, by fragment
MAPPINGS = 256  # matrix files and packs kept mapped per Reader (far below vm.max_map_count)
# glibc raises its mmap threshold to the size of a freed block (up to 32 MiB), so blocks
# this small come back from the heap with their pages in place after the first batch
SMALL_BUFFER = 4 << 20


def parquet_null_counts(store: ObjectStore, key: str, names: list[str],
                        frag: Fragment | None = None) -> dict[str, int | None]:
    """NULLs per column from the footer's statistics (None: not recorded). A struct
    column counts as the fewest NULLs of its fields: a NULL struct nulls them all."""
    if not names:
        return {}
    path = store.local_path(key)
    footer = frag.checksum("footer") if frag is not None else None
    try:
        if path is not None:
            checksum.check_file(store.url, key, path, frag.checksum("parquet") if frag is not None else None)
            meta = pq.ParquetFile(path).metadata
        elif footer is not None and checksum.enabled():
            meta = verified_footer(store, key, footer)
        else:
            with store.open_input(key) as f:
                meta = pq.ParquetFile(f).metadata
    except (OSError, pa.ArrowException) as e:
        raise checksum.damaged(key, f"it is not a readable Parquet file ({e})") from None
    out: dict[str, int | None] = {}
    for name in names:
        best: int | None = None
        leaves = [i for i in range(meta.num_columns)
                  if (p := meta.schema.column(i).path) == name or p.startswith(name + ".")]
        for i in leaves:
            total = 0
            for rg in range(meta.num_row_groups):
                st = meta.row_group(rg).column(i).statistics
                if st is None or not st.has_null_count:
                    total = -1
                    break
                total += st.null_count
            if total >= 0:
                best = total if best is None else min(best, total)
        out[name] = best
    return out


def _bytes_view(m: np.ndarray) -> np.ndarray:
    """A C-contiguous array's bytes, flat, without a copy (what a hash reads)."""
    return m.reshape(-1).view(np.uint8) if m.size else np.empty(0, np.uint8)


def _runs(pos: np.ndarray, slots: np.ndarray) -> list[tuple[int, int, int]]:
    """``(position, slot, count)`` per run of rows that are consecutive both in the file
    and in the batch, so each run is one read into its place."""
    if len(pos) == 0:
        return []
    order = np.argsort(pos, kind="stable")
    p, s = pos[order].astype(np.int64), slots[order].astype(np.int64)
    cut = np.flatnonzero((np.diff(p) != 1) | (np.diff(s) != 1)) + 1
    starts = np.concatenate([[0], cut])
    counts = np.diff(np.concatenate([starts, [len(p)]]))
    return list(zip(p[starts].tolist(), s[starts].tolist(), counts.tolist(), strict=True))


class BufferPool:
    """Batch buffers that come back once every array cut from one is gone.

    A fresh allocation of tens of megabytes (a batch of decoded clips) costs a page fault
    per 4 KiB on first write, more than the copy into it: the allocator hands such blocks
    back to the kernel when they are freed. Buffers here are anonymous mappings reused while their pages are still
    in place. Sizes are rounded up to powers of two; a few free ones are kept per size.
    """

    def __init__(self, keep: int = 4):
        self._keep = keep
        self._free: dict[int, list[mmap.mmap]] = {}
        self._lock = threading.Lock()

    def array(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < SMALL_BUFFER:  # the allocator keeps these in place anyway
            return np.empty(shape, dtype=dtype)
        size = 1 << (nbytes - 1).bit_length()
        with self._lock:
            free = self._free.get(size)
            raw = free.pop() if free else mmap.mmap(-1, size)
        owner = np.frombuffer(raw, dtype=np.uint8, count=nbytes)
        weakref.finalize(owner, self._give_back, size, raw)
        return owner.view(dtype).reshape(shape)

    def _give_back(self, size: int, raw: mmap.mmap) -> None:
        with self._lock:
            free = self._free.setdefault(size, [])
            if len(free) < self._keep:
                free.append(raw)


class _Segment:
    """What one process read of one fragment (or of the query's result)."""

    __slots__ = ("table", "derived", "nbytes")

    def __init__(self, table: pa.Table | None):
        self.table = table
        self.derived: dict[str, Any] = {}
        self.nbytes = table.nbytes if table is not None else 0


class _Refs:
    """Blob references of one segment's column, as arrays."""

    __slots__ = ("array", "valid", "inline", "pack", "offset", "length", "sums")

    def __init__(self, array: pa.StructArray, codes: np.ndarray):
        self.array = array
        self.valid = array.is_valid().to_numpy(zero_copy_only=False)
        self.inline = array.field("data").is_valid().to_numpy(zero_copy_only=False)
        self.pack = codes
        self.offset = pc.fill_null(array.field("offset"), 0).to_numpy()
        self.length = pc.fill_null(array.field("length"), 0).to_numpy()
        self.sums = array.field("sums") if array.type.get_field_index("sums") >= 0 else None

    def checksums(self, pos: int) -> bytes | None:
        """The value's checksums (None: written before checksums)."""
        if self.sums is None:
            return None
        if not isinstance(self.sums, list):
            self.sums = self.sums.to_pylist()  # once per segment: cheaper than a scalar per value
        return self.sums[pos]


class Reader:
    """Reads batches of one plan; one per process (and per thread using it).

    ``store`` is the store to read from; None opens the plan's URL, as a DataLoader
    worker does."""

    def __init__(self, plan: Any, store: ObjectStore | None = None):
        self.plan = plan
        self._store = store
        self._segments: OrderedDict[int, _Segment] = OrderedDict()
        self._bytes = 0
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()
        # per mapped pack, offsets of the values verified through that mapping (see _blob_bytes)
        self._checked: dict[str, set[int]] = {}
        self._results: dict[str, np.ndarray] = {}  # sql mode: the result's arrays
        self._packs: list[str] = []
        self._pack_codes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pool = BufferPool()
        self._parquet = sorted({scol(c.cid) for c in plan.columns if c.kind != "matrix" and c.cid is not None})

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_store(self.plan.url, create=False, options=self.plan.options or None)
        return self._store

    @property
    def waits(self) -> bool:
        """Whether reading a batch waits on something a read-ahead thread can hide:
        byte ranges from a remote store, or media decoding. Memory-mapped reads from a
        local store are memory copies that would only contend with the loop for the GIL."""
        decodes = any(c.decode is not None and c.decode.type in ("video", "image") for c in self.plan.columns)
        return decodes or self.store.local_path("_reeldb") is None

    def close(self) -> None:
        """Drop the mappings and caches (arrays already handed out stay valid)."""
        self._maps.clear()
        self._checked.clear()
        self._segments.clear()
        self._bytes = 0

    # -- batches -----------------------------------------------------------------------
    def read(self, rows: np.ndarray, key: tuple[int, ...] = (0,)) -> dict[str, Any]:
        """The columns of ``rows`` (loader row numbers, in batch order) as numpy arrays
        or lists. ``key`` seeds per-batch randomness (a video's random start)."""
        with self._lock:  # the caches are this Reader's; one batch at a time
            return self._read(rows, key)

    def _read(self, rows: np.ndarray, key: tuple[int, ...]) -> dict[str, Any]:
        groups = self.plan.locate(np.asarray(rows, dtype=np.int64))
        n = len(rows)
        out: dict[str, Any] = {}
        for col in self.plan.columns:
            if col.kind == "matrix":
                out[col.name] = self._matrix(col, groups, n)
            elif col.kind == "number":
                out[col.name] = self._numbers(col, groups, n)
            elif col.kind == "value":
                out[col.name] = self._values(col, groups, n)
            elif col.decode is None:
                out[col.name] = self._blob_bytes(col, groups, n)
            else:
                value, mask = self._decoded(col, groups, n, key)
                out[col.name] = value
                if mask is not None:
                    out[col.mask] = mask
        return out

    # -- segments ----------------------------------------------------------------------
    def _segment(self, s: int) -> _Segment:
        seg = self._segments.get(s)
        if seg is not None:
            self._segments.move_to_end(s)
            return seg
        plan = self.plan
        if plan.result is not None:
            seg = _Segment(plan.result)
            seg.nbytes = 0  # the plan holds it anyway
        else:
            frag = plan.fragments[s]
            names = [c for c in self._parquet if int(c[1:]) in frag.cols]
            seg = _Segment(parquet_columns(self.store, parquet_key(plan.table_id, frag.id), names, frag)
                           if names else None)
        self._segments[s] = seg
        self._bytes += seg.nbytes
        while self._bytes > CACHE_BYTES and len(self._segments) > 1:
            _, old = self._segments.popitem(last=False)
            self._bytes -= old.nbytes
        return seg

    def _column(self, s: int, col: Any) -> pa.Array | None:
        """The segment's Arrow column for ``col``; None when the fragment predates it."""
        seg = self._segment(s)
        name = col.name if self.plan.result is not None else scol(col.cid)
        if seg.table is None or name not in seg.table.column_names:
            return None
        c = seg.table.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def _rows_in(self, s: int) -> int:
        plan = self.plan
        return plan.result.num_rows if plan.result is not None else plan.fragments[s].rows

    # -- files -------------------------------------------------------------------------
    def _mapping(self, key: str, dtype: Any, shape: tuple[int, ...] | None,
                 expected: str | None = None) -> np.ndarray | None:
        """A local file, memory-mapped copy-on-write (torch gets writable arrays, the
        file never changes); None on a store without local files. Gathering rows from a
        mapping beats a read per run, and pages stay mapped for the next epoch. A matrix
        (``shape`` given) is verified on first open in the process: its size, and its
        ``expected`` checksum."""
        m = self._maps.get(key)
        if m is not None:
            self._maps.move_to_end(key)
            return m
        path = self.store.local_path(key)
        if path is None:
            return None
        if shape is not None:
            checksum.check_size(key, os.path.getsize(path), np.dtype(dtype).itemsize * int(np.prod(shape)))
        m = np.memmap(path, dtype=dtype, mode="c", shape=shape)
        if shape is not None:  # hashed through this mapping: its pages are then mapped for the batches
            checksum.check_once(self.store.url, key, _bytes_view(m), expected)
        self._maps[key] = m
        if len(self._maps) > MAPPINGS:
            gone, _ = self._maps.popitem(last=False)
            self._checked.pop(gone, None)
        return m

    def _read_into(self, reads: list[tuple[str, int, memoryview]]) -> None:
        """Each ``(key, offset, dest)``: bytes ``[offset, offset + len(dest))`` of a remote
        object into ``dest``, all requested at once."""
        got = self.store.read_ranges([(key, offset, len(dest)) for key, offset, dest in reads])
        for (key, offset, dest), data in zip(reads, got, strict=True):
            if len(data) != len(dest):
                raise checksum.damaged(key, f"it is shorter than its references say ({len(data)} of the "
                                            f"{len(dest)} bytes at offset {offset})")
            dest[:] = data

    # -- matrices ----------------------------------------------------------------------
    def _matrix_of(self, s: int, col: Any) -> np.ndarray | None:
        """The segment's values of a matrix column as (rows, *shape): mapped from the
        fragment's file, or the query result's array; None on a remote store."""
        plan = self.plan
        if plan.result is not None:
            m = self._results.get(col.name)
            if m is None:
                m = self._results[col.name] = _fixed_values(self._column(s, col), col)
            return m
        frag = plan.fragments[s]
        return self._mapping(matrix_key(plan.table_id, frag.id, col.cid), np.dtype(dict(frag.mats)[col.cid]),
                             (frag.rows, *col.shape), frag.checksum(f"m{col.cid}"))

    def _matrix(self, col: Any, groups: list, n: int) -> np.ndarray:
        if len(groups) == 1:
            s, _, pos = groups[0]
            if len(pos) and int(pos[-1]) - int(pos[0]) == len(pos) - 1 and _ascending(pos):
                m = self._matrix_of(s, col)
                if m is not None:  # one run of rows: the mapped slice itself
                    return m[int(pos[0]) : int(pos[-1]) + 1]
        out = self._pool.array((n, *col.shape), col.dtype)
        for s, slots, pos in groups:
            m = self._matrix_of(s, col)
            if m is None:
                self._matrix_ranges(s, col, slots, pos, out)
            elif int(slots[-1]) - int(slots[0]) == len(slots) - 1:  # slots ascend: take in place
                np.take(m, pos, axis=0, out=out[int(slots[0]) : int(slots[-1]) + 1], mode="clip")
            else:
                out[slots] = np.take(m, pos, axis=0, mode="clip")
        return out

    def _matrix_ranges(self, s: int, col: Any, slots: np.ndarray, pos: np.ndarray, out: np.ndarray) -> None:
        """Rows of a remote matrix file: one byte-range read per run of rows."""
        frag = self.plan.fragments[s]
        key = matrix_key(self.plan.table_id, frag.id, col.cid)
        verify_once(self.store, key, frag.checksum(f"m{col.cid}"))
        row = out.itemsize * int(np.prod(col.shape, dtype=np.int64))
        dest = memoryview(out).cast("B")
        self._read_into([(key, p * row, dest[slot * row : (slot + count) * row])
                         for p, slot, count in _runs(pos, slots)])

    # -- scalars -----------------------------------------------------------------------
    def _numbers(self, col: Any, groups: list, n: int) -> np.ndarray:
        out = np.empty(n, dtype=col.dtype)
        for s, slots, pos in groups:
            seg = self._segment(s)
            arr = seg.derived.get(col.name)
            if arr is None:
                a = self._column(s, col)
                if a is None:
                    arr = np.full(self._rows_in(s), col.fill, dtype=col.dtype)
                else:
                    zero = pa.scalar(False if pa.types.is_boolean(a.type) else 0, a.type)
                    arr = (pc.fill_null(a, zero) if a.null_count else a).to_numpy(zero_copy_only=False)
                seg.derived[col.name] = arr
            out[slots] = arr[pos]
        return out

    def _values(self, col: Any, groups: list, n: int) -> list[Any]:
        out: list[Any] = [None] * n
        for s, slots, pos in groups:
            a = self._column(s, col)
            vals = [col.fill] * len(pos) if a is None else a.take(pa.array(pos, pa.int64())).to_pylist()
            if col.convert == "json":
                vals = [None if v is None else json.loads(v) for v in vals]
            elif col.convert == "uuid":
                vals = [None if v is None else uuid.UUID(str(v)) for v in vals]
            for i, v in zip(slots.tolist(), vals, strict=True):
                out[i] = v
        return out

    # -- blobs -------------------------------------------------------------------------
    def _refs(self, s: int, col: Any) -> _Refs | None:
        seg = self._segment(s)
        refs = seg.derived.get(col.name)
        if refs is None:
            a = self._column(s, col)
            if a is None:
                return None
            packs = a.field("pack")
            codes = np.full(len(a), -1, dtype=np.int64)
            if packs.null_count < len(packs):
                enc = pc.dictionary_encode(packs)
                table = np.array([self._pack_code(p) for p in enc.dictionary.to_pylist()], dtype=np.int64)
                idx = enc.indices
                valid = idx.is_valid().to_numpy(zero_copy_only=False)
                codes[valid] = table[pc.fill_null(idx, 0).to_numpy()[valid]]
            refs = seg.derived[col.name] = _Refs(a, codes)
        return refs

    def _pack_code(self, pack: str) -> int:
        code = self._pack_codes.get(pack)
        if code is None:
            code = self._pack_codes[pack] = len(self._packs)
            self._packs.append(pack)
        return code

    def _blob_bytes(self, col: Any, groups: list, n: int) -> list[np.ndarray | None]:
        """Encoded bytes, one 1-D uint8 array per row (None for NULL). On a local store
        each is a view of the mapped pack: no copy, and its pages stay mapped for the
        next epoch. Remotely the batch's values are sorted by (pack, offset) and each
        run of adjacent values is one byte-range read into one buffer they all view."""
        out: list[np.ndarray | None] = [None] * n
        slot_l, pack_l, off_l, len_l, sums = [], [], [], [], []
        for s, slots, pos in groups:
            refs = self._refs(s, col)
            if refs is None:
                continue
            keep = refs.valid[pos]
            slots, pos = slots[keep], pos[keep]
            inl = refs.inline[pos]
            if inl.any():
                data = refs.array.field("data")
                for slot, p in zip(slots[inl].tolist(), pos[inl].tolist(), strict=True):
                    out[slot] = np.frombuffer(data[p].as_py(), dtype=np.uint8).copy()  # small; writable
            slots, pos = slots[~inl], pos[~inl]
            slot_l.append(slots)
            pack_l.append(refs.pack[pos])
            off_l.append(refs.offset[pos])
            len_l.append(refs.length[pos])
            sums.extend(refs.checksums(p) for p in pos.tolist())
        if not slot_l:
            return out
        slots, packs, offs, lens = (np.concatenate(x) for x in (slot_l, pack_l, off_l, len_l))
        remote = np.zeros(len(slots), dtype=bool)
        for code in np.unique(packs).tolist():
            at = np.flatnonzero(packs == code)
            key = pack_key(self._packs[code])
            src = self._mapping(key, np.uint8, None)
            if src is None:
                remote[at] = True
                continue
            src = src.view(np.ndarray)  # plain views: no memmap bookkeeping per value
            # each value's own bytes are hashed against its checksum the first time this
            # mapping serves it: later epochs read the same verified, immutable mapped pages
            # (as matrices, verified on first open); values read remotely, or through the
            # Blob API, are verified on every read
            checked = self._checked.setdefault(key, set())
            for i, slot, o, ln in zip(at.tolist(), slots[at].tolist(), offs[at].tolist(), lens[at].tolist(),
                                      strict=True):
                value = out[slot] = src[o : o + ln]
                if o not in checked:
                    checksum.check_value(key, o, value, ln, sums[i])
                    checked.add(o)
        if remote.any():
            self._blob_ranges(slots[remote], packs[remote], offs[remote], lens[remote], out)
            for i in np.flatnonzero(remote).tolist():
                checksum.check_value(pack_key(self._packs[packs[i]]), int(offs[i]), out[slots[i]], int(lens[i]),
                                     sums[i])
        return out

    def _blob_ranges(self, slots: np.ndarray, packs: np.ndarray, offs: np.ndarray, lens: np.ndarray,
                     out: list[np.ndarray | None]) -> None:
        """Values from a remote store: one byte-range read per run of adjacent values."""
        order = np.lexsort((offs, packs))
        slots, packs, offs, lens = slots[order], packs[order], offs[order], lens[order]
        dest = np.concatenate([[0], np.cumsum(lens)])
        buf = self._pool.array((int(dest[-1]),), np.uint8)
        same = (packs[1:] == packs[:-1]) & (offs[1:] == offs[:-1] + lens[:-1])
        starts = np.concatenate([[0], np.flatnonzero(~same) + 1])
        stops = np.concatenate([starts[1:], [len(slots)]])
        self._read_into([(pack_key(self._packs[packs[a]]), int(offs[a]), memoryview(buf[int(dest[a]) : int(dest[b])]))
                         for a, b in zip(starts.tolist(), stops.tolist(), strict=True)])
        for i, slot in enumerate(slots.tolist()):
            out[slot] = buf[dest[i] : dest[i + 1]]

    def _decoded(self, col: Any, groups: list, n: int, key: tuple[int, ...]) -> tuple[Any, np.ndarray | None]:
        from ..media.blob import Blob

        d = col.decode
        store = self.store
        blobs: list[Any] = [None] * n
        for s, slots, pos in groups:
            refs = self._refs(s, col)
            assert refs is not None  # NULLs were refused when the plan was built
            rows = refs.array.take(pa.array(pos, pa.int64())).to_pylist()
            for slot, ref in zip(slots.tolist(), rows, strict=True):
                if d.type != ref["kind"]:
                    ref["kind"] = d.type  # a BYTEA value decoded as the spec says
                    ref["meta"] = None
                blobs[slot] = Blob(store, ref)
        starts = _starts(d, blobs, key)
        arrays = []
        for b, start in zip(blobs, starts, strict=True):
            if d.type == "video":
                a = b.decode(start=start, frames=d.frames, stride=d.stride, size=d.size)
                arrays.append(a.transpose(0, 3, 1, 2))
            elif d.type == "image":
                arrays.append(b.decode(size=d.size).transpose(2, 0, 1))
            else:
                arrays.append(b.numpy())
        return _assemble(col.name, arrays, d.pad, d.frames if d.type == "video" else None, self._pool.array)


def _ascending(pos: np.ndarray) -> bool:
    return len(pos) < 2 or bool((np.diff(pos.astype(np.int64)) == 1).all())


def _fixed_values(a: pa.Array | None, col: Any) -> np.ndarray:
    """A result's nested fixed-size list column as one (rows, *shape) array, no copy."""
    assert a is not None
    flat: pa.Array = a
    for d in col.shape:
        flat = flat.values.slice(flat.offset * d, len(flat) * d)
    return flat.to_numpy(zero_copy_only=False).reshape((len(a), *col.shape))


def _starts(d: Any, blobs: list[Any], key: tuple[int, ...]) -> list[int]:
    """First frame per value: fixed, or uniform over the starts that leave room for
    ``frames`` frames, seeded by ``key`` (seed, epoch, batch) so every run agrees."""
    if d.start != "random":
        return [int(d.start)] * len(blobs)
    rng = np.random.default_rng(list(key))
    span = (d.frames - 1) * d.stride + 1
    return [int(rng.integers(0, max(1, int(b.meta.get("frames") or span) - span + 1))) for b in blobs]


def _assemble(name: str, arrays: list[np.ndarray], pad: bool, length: int | None,
              allocate: Callable[[tuple[int, ...], Any], np.ndarray]) -> tuple[Any, np.ndarray | None]:
    """Stack values that share a shape; pad the first axis (with a mask) when asked;
    else a list of arrays."""
    if not arrays:
        return [], None
    if pad:
        rest = {a.shape[1:] for a in arrays}
        if len(rest) != 1 or arrays[0].ndim == 0:
            raise errors.DataError(
                f"column {name}: pad=True pads the first axis only, but the values' other axes differ "
                f"({sorted(rest)}); give the decode a size")
        longest = length or max(a.shape[0] for a in arrays)
        out = allocate((len(arrays), longest, *arrays[0].shape[1:]), arrays[0].dtype)
        mask = np.zeros((len(arrays), longest), dtype=bool)
        for i, a in enumerate(arrays):
            k = min(len(a), longest)
            out[i, :k] = a[:k]
            out[i, k:] = 0
            mask[i, :k] = True
        return out, mask
    first = arrays[0]
    if all(a.shape == first.shape and a.dtype == first.dtype for a in arrays):
        out = allocate((len(arrays), *first.shape), first.dtype)
        for i, a in enumerate(arrays):
            out[i] = a
        return out, None
    return [np.ascontiguousarray(a) if a.flags.writeable else np.array(a) for a in arrays], None
