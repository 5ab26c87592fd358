"""Helpers shared by the merge, diff, compaction and history tests.

``rows`` reads a table as ``{_rowid: {column: value}}``. It reads through the catalog (the
hidden ``_rowid`` is not a column of the user's SQL view), so values are the stored ones:
text and integers as Python values, vectors as lists, blob cells as their stored
references (a dict with ``pack``/``offset``/``length``), JSON as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import reeldb
from reeldb.catalog.diff import batch_table
from reeldb.format.fragment import FragmentReader


def rows(db: reeldb.Connection, table: str, ref: str | None = None) -> dict[int, dict[str, Any]]:
    """Every live row of ``table`` at ``ref`` (default: the connection's head) by ``_rowid``."""
    cat = db.catalog
    commit = cat.resolve(ref) if ref is not None else db.head
    tm = cat.snapshot(commit)[table]
    out: dict[int, dict[str, Any]] = {}
    for frag in tm.fragments:
        live = np.flatnonzero(cat.reader.live_mask(frag))
        if not len(live):
            continue
        t = batch_table(cat.reader.batch(tm.table_id, frag, tm.schema, live), tm.schema)
        for r in t.to_pylist():
            rowid = r.pop("_rowid")
            assert rowid not in out, f"_rowid {rowid} is live twice in {table}"
            out[rowid] = r
    return out


def fragments(db: reeldb.Connection, table: str, ref: str | None = None) -> int:
    cat = db.catalog
    return len(cat.snapshot(cat.resolve(ref) if ref else db.head)[table].fragments)


def files(root: str, sub: str, suffix: str = "") -> set[str]:
    """Keys of the objects under ``root/sub`` (ending with ``suffix``): a folder's
    files, or an S3 prefix's objects."""
    from reeldb.storage import open_store

    return {k for k in open_store(root, create=False).list(sub.rstrip("/") + "/") if k.endswith(suffix)}


def all_files(root: str) -> set[str]:
    return {f for sub in ("data", "blobs", "deletes", "_reeldb/manifests", "_reeldb/commits")
            for f in files(root, sub)}


def du(root: str, sub: str) -> int:
    from reeldb.storage import open_store

    store = open_store(root, create=False)
    return sum(store.size(f) for f in files(root, sub))


def commits(root: str) -> set[str]:
    return files(root, "_reeldb/commits")


@contextmanager
def fragment_reads(monkeypatch: Any) -> Iterator[list[str]]:
    """Collect the ids of the fragments whose Parquet file is read (cached or not)."""
    seen: list[str] = []
    orig: Callable = FragmentReader.table

    def spy(self: FragmentReader, table_id: str, frag: Any) -> Any:
        seen.append(frag.id)
        return orig(self, table_id, frag)

    monkeypatch.setattr(FragmentReader, "table", spy)
    try:
        yield seen
    finally:
        monkeypatch.setattr(FragmentReader, "table", orig)


def sqlstate(fn: Callable[[], Any]) -> str:
    """Run ``fn``; it must raise a reeldb error; return its SQLSTATE."""
    try:
        fn()
    except reeldb.Error as e:
        return e.sqlstate
    raise AssertionError("no error raised")
