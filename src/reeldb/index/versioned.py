"""Vector indexes as versioned data: an index object covers a list of fragments and is
never changed once written.

``indexes/<id>`` holds the faiss index; ``indexes/<id>.json`` the fragments it covers, in
label order (label = the fragment's first label + the row's position in it). Rows of
fragments added later are not in it (the query searches them exactly); rows deleted
later are still in it (the query never allows their labels). ``fold`` writes a new object
with the new fragments added, or rebuilds when most labels have gone dead. Opening
memory-maps the object.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from tqdm.auto import tqdm

from ..format import checksum
from ..format.fragment import FragmentReader, ncol, open_verified
from ..format.keys import index_fragments_key, index_key
from ..format.manifest import Fragment, IndexDef, TableManifest
from ..storage import ObjectStore
from . import ann

SAMPLE = 65536  # rows an IVF / int8 index trains on
REBUILD_DEAD = 0.3  # fold rebuilds when this share of labels is deleted or rewritten
PROGRESS_ROWS = 200_000  # builds over this many rows show a progress bar


@dataclass(frozen=True)
class Covered:
    """An index object's fragment list: label ranges by fragment id."""

    fragments: tuple[tuple[str, int], ...]  # (fragment id, rows), in label order
    metric: str
    dim: int
    checksum: str | None = None  # of the index object; None for objects written before checksums

    @property
    def labels(self) -> int:
        return sum(r for _, r in self.fragments)

    def bases(self) -> dict[str, int]:
        out, b = {}, 0
        for fid, rows in self.fragments:
            out[fid] = b
            b += rows
        return out

    def to_json(self) -> bytes:
        """The fragment list, the index object's checksum, and a checksum of the list itself."""
        d: dict = {"format": 1, "fragments": [list(f) for f in self.fragments], "metric": self.metric,
                   "dim": self.dim}
        if self.checksum is not None:
            d["object"] = self.checksum
        return checksum.signed_json(d)

    @staticmethod
    def from_json(b: bytes, key: str = "index list", strict: bool = False) -> Covered:
        d = checksum.load_signed_json(key, b, strict)
        try:
            return Covered(tuple((f, r) for f, r in d["fragments"]), d["metric"], d["dim"], d.get("object"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise checksum.damaged(key, f"it is not an index's fragment list ({e!r})") from None


@dataclass
class Opened:
    key: str
    index: object
    covered: Covered
    bases: dict[str, int]
    binary: bool  # faiss keeps binary-code indexes in their own class family


_OPEN: OrderedDict[str, Opened] = OrderedDict()
_OPEN_MAX = 16
_open_lock = threading.Lock()


def metric_of(ix: IndexDef) -> str:
    return ann.OPCLASSES[ix.opclass]


def build(reader: FragmentReader, tm: TableManifest, ix: IndexDef) -> IndexDef:
    """Index every fragment of ``tm``; returns ``ix`` with the new object's key."""
    col = tm.schema.by_id(ix.column)
    opts = ix.options
    metric = metric_of(ix)
    dim = col.type.row_shape[0]
    index = ann.new(ix.method, metric, dim, opts)
    frags = [f for f in tm.fragments if f.live]
    if ann.needs_training(index):
        sample = _sample(reader, tm, frags, ix, SAMPLE)
        if ix.method == "ivfflat" and len(sample) < opts["lists"]:
            return replace(ix, key="")  # too few rows to train the lists on: untrained, searched exactly
        ann.train(index, ann.prepare(sample, metric, opts["quantization"]))
    return _write(reader, tm, ix, index, (), frags, metric, dim)


def fold(reader: FragmentReader, tm: TableManifest, ix: IndexDef) -> IndexDef:
    """Bring the index up to date with ``tm``: add fragments it does not cover, or rebuild
    it when too many of its labels are dead. Returns ``ix`` unchanged when it is current.
    An untrained ivfflat index is built once the table has as many rows as lists; an
    expression index is never built."""
    if not ix.key:
        return ix if ix.expression else build(reader, tm, ix)
    opened = open_index(reader, ix.key)
    current = {f.id: f for f in tm.fragments}
    live_covered = sum(current[fid].live for fid, _ in opened.covered.fragments if fid in current)
    dead = opened.covered.labels - live_covered
    new = [f for f in tm.fragments if f.id not in opened.bases and f.live]
    if dead > REBUILD_DEAD * max(opened.covered.labels, 1) or (
            ix.method == "ivfflat" and sum(f.rows for f in new) > opened.covered.labels):
        return build(reader, tm, ix)  # IVF lists trained on half the rows or less: retrain
    if not new:
        return ix
    path, data = open_verified(reader.store, ix.key, opened.covered.checksum)
    index = ann.copy(path, data, opened.binary)
    return _write(reader, tm, ix, index, opened.covered.fragments, new, opened.covered.metric,
                  opened.covered.dim)


def _write(reader: FragmentReader, tm: TableManifest, ix: IndexDef, index: object,
           covered: tuple[tuple[str, int], ...], frags: list[Fragment], metric: str, dim: int) -> IndexDef:
    col = tm.schema.by_id(ix.column)
    q = ix.options["quantization"]
    total = sum(f.rows for f in frags)
    bar = tqdm(total=total, unit="rows", desc=f"index {ix.name}", disable=total < PROGRESS_ROWS, leave=False)
    with bar:
        ann.add(index, (ann.prepare(x, metric, q) for x in _chunks(reader, tm, frags, col)), bar)
    body = ann.serialize(index)
    cov = Covered(covered + tuple((f.id, f.rows) for f in frags), metric, dim, checksum.digest(body))
    key = index_key(uuid.uuid4().hex)
    store = reader.store
    store.put(index_fragments_key(key), cov.to_json())
    store.put(key, body)
    return replace(ix, key=key)


def _chunks(reader: FragmentReader, tm: TableManifest, frags: list[Fragment], col) -> Iterator[np.ndarray]:
    """Each fragment's rows in order, NULL cells as NaN rows (stored as zeros)."""
    for f in frags:
        mat = reader.matrix(tm.table_id, f, col) if col.id in dict(f.mats) else None
        nulls = reader.table(tm.table_id, f).column(ncol(col.id)).is_null().to_numpy(zero_copy_only=False) \
            if mat is not None else None
        for s in range(0, f.rows, ann.ADD_CHUNK):
            e = min(f.rows, s + ann.ADD_CHUNK)
            if mat is None:
                yield np.full((e - s, col.type.row_shape[0]), np.nan, np.float32)
                continue
            x = np.asarray(mat[s:e], dtype=np.float32).reshape(e - s, -1)
            if nulls[s:e].any():
                x = x.copy()
                x[nulls[s:e]] = np.nan
            yield x


def _sample(reader: FragmentReader, tm: TableManifest, frags: list[Fragment], ix: IndexDef, n: int) -> np.ndarray:
    col = tm.schema.by_id(ix.column)
    parts, total = [], sum(f.rows for f in frags)
    rng = np.random.default_rng(0)
    for f in frags:
        if col.id not in dict(f.mats):
            continue
        take = max(1, round(n * f.rows / max(total, 1)))
        rows = np.sort(rng.choice(f.rows, size=min(take, f.rows), replace=False))
        x = np.asarray(reader.matrix(tm.table_id, f, col)[rows], dtype=np.float32).reshape(len(rows), -1)
        parts.append(x[np.isfinite(x).all(axis=1) & (np.abs(x).sum(axis=1) > 0)])
    return np.concatenate(parts) if parts else np.empty((0, col.type.row_shape[0]), np.float32)


def open_index(reader: FragmentReader, key: str) -> Opened:
    """The index object at ``key``, memory-mapped, shared by every snapshot that lists it."""
    with _open_lock:
        got = _OPEN.get(key)
        if got is not None:
            _OPEN.move_to_end(key)
            return got
    store = reader.store
    covered = read_covered(store, key)
    try:
        path, data = open_verified(store, key, covered.checksum)
    except KeyError:
        raise checksum.damaged(key, "the index object is missing") from None
    binary = _is_binary(path, data)
    try:
        index = ann.load(path, data, binary)
    except RuntimeError as e:  # faiss cannot read it: damaged, where no checksum was recorded
        raise checksum.damaged(key, f"it is not a readable index ({str(e).splitlines()[0] if str(e) else e!r})") from None
    opened = Opened(key, index, covered, covered.bases(), binary)
    with _open_lock:
        _OPEN[key] = opened
        while len(_OPEN) > _OPEN_MAX:
            _OPEN.popitem(last=False)
    return opened


def read_covered(store: ObjectStore, key: str) -> Covered:
    """The fragment list of the index object ``key``, verified (XX001 when damaged or missing)."""
    listing = index_fragments_key(key)
    try:
        return Covered.from_json(store.get(listing), listing)
    except KeyError:
        raise checksum.damaged(listing, "the index's fragment list is missing") from None


def _is_binary(path: str | None, data: bytes | None) -> bool:
    """faiss binary indexes start with a fourcc beginning with ``IB``."""
    if path is not None:
        with open(path, "rb") as f:
            head = f.read(4)
    else:
        head = (data or b"")[:4]
    return head[:2] == b"IB"
