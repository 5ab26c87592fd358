"""On-disk format: matrix layout, manifest segments shared between commits, deletion
vectors, and the engine's view of fragments."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import reeldb
from reeldb.catalog.catalog import Catalog
from reeldb.format.manifest import SEGMENT_SIZE
from reeldb.storage import LocalStore


@pytest.fixture()
def path(tmp_path) -> str:
    return str(tmp_path / "db")


def _table(path: str, name: str):
    cat = Catalog.open(LocalStore(path))
    return cat, cat.snapshot(cat.head("main"))[name]


def test_matrix_file_is_raw_row_major(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, e VECTOR(8), h HALFVEC(4))")
    e = np.arange(40, dtype=np.float32).reshape(5, 8)
    h = np.arange(20, dtype=np.float16).reshape(5, 4)
    db.insert("t", {"id": list(range(5)), "e": e, "h": h})
    cat, tm = _table(path, "t")
    frag = tm.fragments[0]
    e_col, h_col = tm.schema.column("e"), tm.schema.column("h")
    raw = np.fromfile(os.path.join(path, f"data/{tm.table_id}/{frag.id}.{e_col.id}.mat"), dtype=np.float32)
    assert raw.size == 5 * 8
    assert np.array_equal(raw.reshape(5, 8)[3], e[3])  # row i at i * row_bytes
    raw_h = np.fromfile(os.path.join(path, f"data/{tm.table_id}/{frag.id}.{h_col.id}.mat"), dtype=np.float16)
    assert np.array_equal(raw_h.reshape(5, 4), h)  # HALFVEC stays float16 on disk
    mm = cat.reader.matrix(tm.table_id, frag, e_col)
    assert isinstance(mm, np.memmap)


@pytest.mark.slow
def test_append_rewrites_only_the_last_segment(path: str, monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")  # keep one fragment per row
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    n = SEGMENT_SIZE + 10
    with db.transaction():
        for i in range(n):
            db.execute("INSERT INTO t VALUES (%s)", [i])
    _, before = _table(path, "t")
    assert len(before.segments) == 2
    db.execute("INSERT INTO t VALUES (-1)")
    _, after = _table(path, "t")
    assert len(after.fragments) == n + 1
    assert after.segments[0].key == before.segments[0].key  # full segment shared
    assert after.segments[1].key != before.segments[1].key
    with open(os.path.join(path, after.key), "rb") as f:
        body = json.loads(f.read())
    assert len(body["segments"]) == 2
    assert db.execute("SELECT count(*), min(id) FROM t").fetchone() == (n + 1, -1)


def test_unchanged_tables_share_their_manifest(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE a (x INT)")
    db.execute("CREATE TABLE b (x INT)")
    db.execute("INSERT INTO a VALUES (1)")
    cat = Catalog.open(LocalStore(path))
    c1 = cat.commit(cat.head("main"))
    db.execute("INSERT INTO b VALUES (1)")
    c2 = cat.commit(cat.head("main"))
    assert c1.tables["a"] == c2.tables["a"]
    assert c1.tables["b"] != c2.tables["b"]


def test_delete_writes_a_deletion_vector_not_a_new_fragment(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, e VECTOR(2))")
    db.insert("t", {"id": list(range(10)), "e": np.ones((10, 2), np.float32)})
    db.execute("DELETE FROM t WHERE id IN (2, 5)")
    cat, tm = _table(path, "t")
    assert len(tm.fragments) == 1
    frag = tm.fragments[0]
    assert frag.ndel == 2
    assert list(cat.reader.deleted(frag)) == [2, 5]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (8,)


def test_rename_and_drop_column_keep_data_files(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, a TEXT, b TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'x', 'y')")
    files = sorted(os.listdir(os.path.join(path, "data", _table(path, "t")[1].table_id)))
    db.execute("ALTER TABLE t RENAME COLUMN a TO aa")
    db.execute("ALTER TABLE t DROP COLUMN b")
    db.execute("ALTER TABLE t ADD COLUMN c INT DEFAULT 7")
    assert sorted(os.listdir(os.path.join(path, "data", _table(path, "t")[1].table_id))) == files
    assert db.execute("SELECT * FROM t").fetchall() == [(1, "x", 7)]
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "aa", "c"]


def test_update_keeps_rowid_and_shares_blob_packs(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, v BYTEA)")
    db.execute("INSERT INTO t VALUES (1, %s)", [os.urandom(100_000)])
    packs = sorted(os.listdir(os.path.join(path, "blobs")))
    cat, tm = _table(path, "t")
    rowid = cat.reader.table(tm.table_id, tm.fragments[0]).column("_rowid")[0].as_py()
    db.execute("UPDATE t SET id = 2")
    cat, tm = _table(path, "t")
    live = [f for f in tm.fragments if f.live]
    assert len(live) == 1
    assert cat.reader.table(tm.table_id, live[0]).column("_rowid")[0].as_py() == rowid
    assert sorted(os.listdir(os.path.join(path, "blobs"))) == packs
