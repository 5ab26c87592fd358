"""Scrubbing a database (``reeldb check``): every object the refs reach is read whole and
verified against the checksum recorded where it is named, like ``git fsck``.

Reached from each branch and tag head (with ``all_history``, from every commit in their
history): the refs themselves, commits, table manifests and their segments, each
fragment's Parquet file, matrix files and deletion vector, every blob value its cells
point to (each value against its own checksum, and that its pack holds it), and index
objects with their fragment lists. An object is checked once however many commits reach
it; a problem names the object and the first ref (and commit, table) found reaching it.

Objects written before reeldb recorded checksums have none to compare: they are counted
as unverified (their sizes are still checked where the metadata implies one), never
reported as damaged.
"""

from __future__ import annotations

import io
import mmap
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import errors
from ..format import checksum
from ..format.fragment import read_deletes, scol, upgrade_blob_columns
from ..format.keys import (
    BRANCHES,
    COMMITS,
    TAGS,
    index_fragments_key,
    matrix_key,
    pack_key,
    parquet_key,
)
from ..format.manifest import Fragment, TableManifest, load_manifest
from ..format.types import BLOB
from .catalog import Catalog
from .refs import Commit, read_ref

Progress = Callable[[str, int], None]  # (object key, bytes verified) after each object


@dataclass(frozen=True)
class Problem:
    """One damaged or missing object, and what reaches it."""

    key: str
    state: str  # "damaged" | "missing"
    detail: str
    reached_by: str

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.state} {self.key}{detail} (reached from {self.reached_by})"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    objects: int = 0  # objects verified against a checksum (or a content address)
    unverified: int = 0  # objects written before checksums: read, sizes checked, nothing to compare
    bytes: int = 0
    commits: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check(cat: Catalog, all_history: bool = False, progress: Progress | None = None) -> Report:
    """Scrub what the refs reach; see the module docstring."""
    return _Scrub(cat, progress).run(all_history)


class _Scrub:
    def __init__(self, cat: Catalog, progress: Progress | None):
        self.cat = cat
        self.store = cat.store
        self.progress = progress or (lambda key, n: None)
        self.report = Report()
        self.seen: set[str] = set()
        self.values: set[tuple[str, int]] = set()  # blob values checked: (pack key, offset)

    # -- bookkeeping ------------------------------------------------------------------------
    def problem(self, key: str, state: str, detail: str, via: str) -> None:
        self.report.problems.append(Problem(key, state, detail, via))

    def done(self, key: str, nbytes: int, verified: bool) -> None:
        if verified:
            self.report.objects += 1
        else:
            self.report.unverified += 1
        self.report.bytes += nbytes
        self.progress(key, nbytes)

    def first(self, key: str) -> bool:
        """True the first time ``key`` is met (each object is checked once)."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def guarded(self, key: str, via: str, fn: Callable[[], None]) -> bool:
        """Run one object's check; a missing or damaged object becomes a problem."""
        try:
            fn()
            return True
        except (KeyError, FileNotFoundError):
            self.problem(key, "missing", "", via)
        except errors.DataCorrupted as e:
            self.problem(*_named(str(e), key), via)
        except errors.UndefinedObject as e:
            self.problem(key, "missing", str(e), via)
        return False

    # -- refs and commits -------------------------------------------------------------------
    def run(self, all_history: bool) -> Report:
        heads: list[tuple[str, str]] = []  # (commit id, "branch main" / "tag v1")
        for prefix, what in ((BRANCHES, "branch"), (TAGS, "tag")):
            for key in self.store.list(prefix):
                name = f"{what} {unquote(key[len(prefix):])}"
                try:
                    heads.append((read_ref(key, self.store.get(key)), name))
                except KeyError:
                    continue  # deleted while listing
                except errors.DataCorrupted as e:
                    self.problem(*_named(str(e), key), name)
        for cid, name in heads:
            for commit_id, via in self.commits(cid, name, all_history):
                self.commit(commit_id, via)
        return self.report

    def commits(self, head: str, name: str, all_history: bool) -> Iterator[tuple[str, str]]:
        yield head, f"{name} (commit {head[:12]})"
        if not all_history:
            return
        stack, seen = [head], {head}
        while stack:
            cid = stack.pop()
            try:
                parents = self.cat.commit(cid).parents
            except errors.Error:
                continue  # reported when the commit itself is checked
            for p in parents:
                if p in seen or not self.cat.has_commit(p):
                    continue  # a parent ``expire`` dropped is not damage
                seen.add(p)
                stack.append(p)
                yield p, f"commit {p[:12]} in the history of {name}"

    def commit(self, cid: str, via: str) -> None:
        key = COMMITS + cid
        if not self.first(key):
            return
        self.report.commits += 1

        def verify() -> None:
            data = self.store.get(key)
            c = Commit.from_bytes(data, key, strict=True)
            self.done(key, len(data), True)
            for table, mkey in sorted(c.tables.items()):
                self.manifest(mkey, f"table {table} at {via}")

        self.guarded(key, via, verify)

    # -- manifests and fragments ------------------------------------------------------------
    def manifest(self, mkey: str, via: str) -> None:
        if not self.first(mkey):
            return
        tm: list[TableManifest] = []

        def load() -> None:
            tm.append(load_manifest(self.store, mkey, {}))

        if not self.guarded(mkey, via, load):
            return
        m = tm[0]
        self.done(mkey, 0, True)
        for seg in m.segments:
            if seg.key and self.first(seg.key):
                self.done(seg.key, 0, True)
        for ix in m.indexes:
            if ix.key:  # no key: nothing built (expression or untrained ivfflat index)
                self.index(ix.key, f"{via}, index {ix.name}")
        blob_cols = [c.id for c in m.schema.columns if c.type.storage == BLOB]
        for f in m.fragments:
            self.fragment(m, f, blob_cols, f"{via}, fragment {f.id[:12]}")

    def fragment(self, tm: TableManifest, f: Fragment, blob_cols: list[int], via: str) -> None:
        pk = parquet_key(tm.table_id, f.id)
        if self.first(pk):
            self.guarded(pk, via, lambda: self.parquet(pk, f, tm, blob_cols, via))
        for cid, dtype in f.mats:
            mk = matrix_key(tm.table_id, f.id, cid)
            if self.first(mk):
                col = next((c for c in tm.schema.columns if c.id == cid), None)
                size = None if col is None else \
                    np.dtype(dtype).itemsize * f.rows * int(np.prod(col.type.row_shape, dtype=np.int64))
                self.guarded(mk, via, lambda mk=mk, cid=cid, size=size: self.whole(mk, f.checksum(f"m{cid}"), size))
        if f.deletes and self.first(f.deletes):
            dk = f.deletes

            def deletes() -> None:
                data = self.store.get(dk)
                checksum.check_size(dk, len(data), f.ndel * 4)
                want = f.checksum("deletes")
                if want is not None and checksum.digest(data) != want:
                    raise checksum.damaged(dk, f"{checksum.ALGORITHM} checksum is {checksum.digest(data)}, "
                                               f"the manifest recorded {want}")
                read_deletes(self.store, f)  # and its positions fit the fragment
                self.done(dk, len(data), want is not None)

            self.guarded(dk, via, deletes)

    def whole(self, key: str, expected: str | None, size: int | None) -> bytes | None:
        """Hash a whole object against its recorded checksum; returns its bytes when it was
        read into memory (a remote store), None for a local file."""
        path = self.store.local_path(key)
        data = None
        if path is not None:
            with open(path, "rb") as fh:
                n = fh.seek(0, io.SEEK_END)
            got = checksum.file_digest(path) if expected is not None else None
        else:
            data = self.store.get(key)
            n = len(data)
            got = checksum.digest(data) if expected is not None else None
        if size is not None and n != size:
            raise checksum.damaged(key, f"it is {n} bytes, {size} expected")
        if expected is not None and got != expected:
            raise checksum.damaged(key, f"{checksum.ALGORITHM} checksum is {got}, the manifest recorded {expected}")
        self.done(key, n, expected is not None)
        return data

    def parquet(self, key: str, f: Fragment, tm: TableManifest, blob_cols: list[int], via: str) -> None:
        data = self.whole(key, f.checksum("parquet"), None)
        try:
            pf = pq.ParquetFile(io.BytesIO(data) if data is not None else self.store.local_path(key))
            if pf.metadata.num_rows != f.rows:
                raise checksum.damaged(key, f"it has {pf.metadata.num_rows} rows, the manifest says {f.rows}")
            names = [scol(c) for c in blob_cols if scol(c) in pf.schema_arrow.names]
            t = upgrade_blob_columns(pf.read(columns=names)) if names else None
        except (OSError, pa.ArrowException) as e:
            raise checksum.damaged(key, f"it is not a readable Parquet file ({e})") from None
        if t is not None:
            for name in t.column_names:
                self.blob_values(t.column(name).combine_chunks(), f"{via}, column {_column_name(tm, name)}")

    # -- blobs ------------------------------------------------------------------------------
    def blob_values(self, cells: pa.StructArray, via: str) -> None:
        """Every packed value of a column, each against its own checksum."""
        packs = cells.field("pack")
        present = packs.is_valid().to_numpy(zero_copy_only=False) & cells.is_valid().to_numpy(zero_copy_only=False)
        if not present.any():
            return
        rows = np.flatnonzero(present)
        pack_names = packs.to_pylist()
        offsets = cells.field("offset").to_numpy(zero_copy_only=False)
        lengths = cells.field("length").to_numpy(zero_copy_only=False)
        sums = cells.field("sums").to_pylist()
        by_pack: dict[str, list[int]] = {}
        for r in rows.tolist():
            by_pack.setdefault(pack_names[r], []).append(r)
        for pack, rs in sorted(by_pack.items()):
            key = pack_key(pack)
            pack_via = f"{via}, row {rs[0]}"
            self.guarded(key, pack_via, lambda key=key, rs=rs, pack_via=pack_via: self.pack(
                key, [(int(offsets[r]), int(lengths[r]), sums[r], f"{via}, row {r}") for r in rs]))

    def pack(self, key: str, values: list[tuple[int, int, bytes | None, str]]) -> None:
        path = self.store.local_path(key)
        if path is not None:
            with open(path, "rb") as fh:
                size = fh.seek(0, io.SEEK_END)
                m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            try:
                for off, n, sums, via in values:
                    self.value(key, off, n, sums, via, memoryview(m)[off : off + n] if off + n <= size else None, size)
            finally:
                if isinstance(m, mmap.mmap):
                    m.close()
        else:
            size = self.store.size(key)
            inside = [v for v in values if v[0] + v[1] <= size]
            got = iter(self.store.read_ranges([(key, off, n) for off, n, _, _ in inside]))
            for off, n, sums, via in values:
                self.value(key, off, n, sums, via, next(got) if off + n <= size else None, size)

    def value(self, key: str, off: int, n: int, sums: bytes | None, via: str, data: Any, size: int) -> None:
        """One blob value (``data`` None: past the end of its pack)."""
        if (key, off) in self.values:
            return
        self.values.add((key, off))
        try:
            if data is None:
                raise checksum.damaged(key, f"the blob value at offset {off} ({n} bytes) ends past the "
                                            f"pack's {size} bytes (the pack is truncated)")
            if sums is not None:
                got = checksum.digest(data)
                if bytes.fromhex(got) != sums[:8]:
                    raise checksum.damaged(key, f"the blob value at offset {off} ({n} bytes) has "
                                                f"{checksum.ALGORITHM} checksum {got}, its row recorded {sums[:8].hex()}")
            self.done(key, n, sums is not None)
        except errors.DataCorrupted as e:
            self.problem(*_named(str(e), key), via)
        finally:
            if isinstance(data, memoryview):
                data.release()

    # -- indexes ----------------------------------------------------------------------------
    def index(self, key: str, via: str) -> None:
        if not self.first(key):
            return
        jkey = index_fragments_key(key)
        listing: list[dict] = []

        def verify_list() -> None:
            data = self.store.get(jkey)
            listing.append(checksum.load_signed_json(jkey, data, strict=True))
            self.done(jkey, len(data), b'"sum"' in data)

        if self.guarded(jkey, via, verify_list):
            self.guarded(key, via, lambda: self.whole(key, listing[0].get("object"), None))


def _column_name(tm: TableManifest, parquet_name: str) -> str:
    cid = int(parquet_name[1:])
    col = next((c for c in tm.schema.columns if c.id == cid), None)
    return col.name if col is not None else parquet_name


def _named(message: str, key: str) -> tuple[str, str, str]:
    """(object, "damaged" or "missing", detail) of an XX001 message, which names the object
    (a manifest's segment, say, rather than the manifest being checked)."""
    m = re.match(r'stored object "([^"]+)" is damaged: (.*)', message, re.S)
    if m is None:
        return key, "damaged", message
    state = "missing" if m.group(2).endswith(" is missing") or m.group(2).startswith("it is missing") else "damaged"
    return m.group(1), state, m.group(2)
