"""Compaction (``db.optimize``, ``OPTIMIZE``, automatic tiers) and garbage collection
(``db.vacuum``, ``VACUUM``, ``db.expire``).

Compaction must not change any query result, ``_rowid`` or blob; VACUUM must remove only
what nothing reaches, keep time travel to retained commits working, and never delete the
files of a writer that is about to commit.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import time
from typing import Any

import numpy as np
import pytest

import reeldb
from reeldb.catalog.vacuum import reachable
from versioning_helpers import du, files, fragments, rows, sqlstate

DIM = 4
ZERO = dt.timedelta(0)


@pytest.fixture
def no_auto(monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")


def _vec(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.standard_normal(DIM).astype(np.float32)


def build(path: str, mp4: bytes) -> tuple[reeldb.Connection, dict[int, bytes]]:
    """A table written by many small commits, then updated and deleted from."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE g (id SERIAL PRIMARY KEY, grp INT, score REAL, txt TEXT, e VECTOR(4), "
               "raw BYTEA, clip VIDEO, meta JSONB)")
    db.execute("CREATE TABLE labels (gid INT, label TEXT)")
    payloads: dict[int, bytes] = {}
    # one bulk fragment that will end up mostly deleted
    db.executemany("INSERT INTO g (grp, score, txt, e, meta) VALUES (%s, %s, %s, %s, %s)",
                   [(i % 4, (i % 10) / 10, f"bulk {i}", _vec(1000 + i), {"k": i, "even": i % 2 == 0})
                    for i in range(50)])
    for i in range(40):
        raw = os.urandom(5000 + i) if i % 3 == 0 else (bytes([i]) * 10 if i % 3 == 1 else None)
        clip = mp4 if i in (5, 25) else None
        (rid,) = db.execute(
            "INSERT INTO g (grp, score, txt, e, raw, clip, meta) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [i % 4, (i * 7 % 10) / 10, f"row {i}", _vec(i) if i % 5 else None, raw, clip,
             {"k": i, "even": i % 2 == 0}]).fetchone()
        if raw is not None:
            payloads[rid] = raw
        if i % 4 == 0:
            db.execute("INSERT INTO labels VALUES (%s, %s)", [rid, f"label {i}"])
    db.execute("DELETE FROM g WHERE txt LIKE 'bulk %' AND id % 5 <> 0")  # 40 of 50 bulk rows
    for i in range(8):
        db.execute("UPDATE g SET score = score + 1, e = %s WHERE id = %s", [_vec(500 + i), 52 + i * 4])
    db.execute("UPDATE g SET txt = txt || '!' WHERE grp = 3")
    for rid in (53, 61, 70):
        db.execute("DELETE FROM g WHERE id = %s", [rid])
        payloads.pop(rid, None)
    return db, payloads


def _norm(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [round(float(x), 5) for x in v.ravel()]
    if isinstance(v, float):
        return round(v, 5)
    if isinstance(v, reeldb.Blob):
        return bytes(v)
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    return v


QUERIES = [
    "SELECT count(*) FROM g",
    "SELECT id, grp, score, txt, meta FROM g ORDER BY id",
    "SELECT grp, count(*), avg(score), sum(id), min(txt) FROM g GROUP BY grp ORDER BY grp",
    "SELECT id FROM g WHERE score > 0.5 AND grp = 1 ORDER BY id",
    "SELECT id, e <=> :q AS d FROM g ORDER BY e <=> :q LIMIT 5",
    "SELECT id FROM g WHERE grp = 2 ORDER BY e <-> :q LIMIT 3",
    "SELECT id, cosine_similarity(e, :q) AS s FROM g WHERE id % 3 = 0 ORDER BY s DESC NULLS LAST, id",
    "SELECT g.id, l.label FROM g JOIN labels l ON l.gid = g.id ORDER BY g.id",
    "SELECT id, blob_length(raw) FROM g ORDER BY id",
    "SELECT id, raw FROM g WHERE raw IS NOT NULL ORDER BY id",
    "SELECT id, meta->>'k' FROM g WHERE meta @> '{\"even\": true}' ORDER BY id",
    "SELECT max(txt), min(score), count(e), count(raw) FROM g",
    "SELECT id, e FROM g ORDER BY id",
    "SELECT id, row_number() OVER (PARTITION BY grp ORDER BY score DESC, id) FROM g ORDER BY id",
    "SELECT id, video_frames(clip), video_fps(clip) FROM g WHERE clip IS NOT NULL ORDER BY id",
    "SELECT count(*) FROM g WHERE e IS NULL",
]


def battery(db: reeldb.Connection, schema: str = "") -> list[Any]:
    q = _vec(7)
    out = []
    for sql in QUERIES:
        if schema:
            sql = sql.replace(" FROM g", f' FROM "{schema}".g').replace("JOIN labels", f'JOIN "{schema}".labels')
        out.append(_norm(db.execute(sql, {"q": q} if ":q" in sql else None).fetchall()))
    return out


def check_blobs(db: reeldb.Connection, payloads: dict[int, bytes], mp4: bytes) -> None:
    for rid, raw in payloads.items():
        got = db.execute("SELECT raw FROM g WHERE id = %s", [rid]).fetchone()[0]
        assert bytes(got) == raw
    clips = db.execute("SELECT clip FROM g WHERE clip IS NOT NULL").fetchall()
    assert len(clips) == 2
    for (c,) in clips:
        assert bytes(c) == mp4 and c.meta.get("frames") == 12


@pytest.mark.slow
def test_optimize_changes_no_result_rowid_or_blob(path: str, no_auto: None, mp4_bytes: bytes) -> None:
    db, payloads = build(path, mp4_bytes)
    before_frags = fragments(db, "g")
    assert before_frags > 40
    want = battery(db)
    want_rows = rows(db, "g")
    pre = db.tag("pre-compaction")
    blobs = files(path, "blobs")

    done = db.optimize()
    by_table = {c["table"]: c for c in done}
    assert by_table["g"]["fragments_before"] == before_frags
    assert by_table["g"]["fragments_after"] == fragments(db, "g") <= 2
    assert by_table["g"]["rows_rewritten"] == len(want_rows)
    assert "optimize" in db.log(limit=1)[0]["message"]
    assert battery(db) == want
    assert rows(db, "g") == want_rows, "compaction changed a _rowid, a value or a blob reference"
    assert files(path, "blobs") == blobs, "compaction wrote blob packs"
    check_blobs(db, payloads, mp4_bytes)
    assert db.diff(pre) == {}, "a diff across a compaction shows moved rows as changes"
    assert db.optimize() == [], "a second optimize has nothing to do"

    # VACUUM with full history: nothing reachable goes, time travel still works
    db.vacuum(grace=ZERO)
    assert battery(db) == want
    assert battery(db, "pre-compaction") == want
    old = reeldb.connect(path, at=pre)
    assert battery(old) == want
    old.close()

    # dropping the tag and the history: the pre-compaction fragments go
    db.delete_tag("pre-compaction")
    data_before = du(path, "data")
    out = db.vacuum(retain=ZERO, grace=ZERO)
    assert out["files"] > 0 and out["bytes"] > 0
    assert du(path, "data") < data_before
    assert battery(db) == want
    check_blobs(db, payloads, mp4_bytes)
    fresh = reeldb.connect(path)
    assert battery(fresh) == want
    assert rows(fresh, "g") == want_rows
    with pytest.raises(reeldb.Error):
        reeldb.connect(path, at=pre).execute("SELECT count(*) FROM g").fetchall()
    fresh.close()
    db.close()


def test_time_travel_to_tagged_commit_survives_vacuum_with_retain(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, b BYTEA)")
    for i in range(10):
        db.execute("INSERT INTO t VALUES (%s, %s)", [i, bytes([i]) * 6000])
    db.execute("DELETE FROM t WHERE id < 5")
    db.tag("keep")
    untagged = db.head
    db.execute("UPDATE t SET id = id + 100")
    db.optimize()
    db.vacuum(retain=ZERO, grace=ZERO)
    kept = reeldb.connect(path, at="keep")
    assert kept.execute("SELECT id FROM t ORDER BY id").fetchall() == [(i,) for i in range(5, 10)]
    assert bytes(kept.execute("SELECT b FROM t WHERE id = 7").fetchone()[0]) == bytes([7]) * 6000
    kept.close()
    assert db.execute("SELECT min(id) FROM t").fetchone() == (105,)
    assert db.head != untagged
    db.close()


def test_optimize_one_table_and_sql_forms(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE a (x INT)")
    db.execute("CREATE TABLE b (x INT)")
    for i in range(6):
        db.execute("INSERT INTO a VALUES (%s)", [i])
        db.execute("INSERT INTO b VALUES (%s)", [i])
    assert [c["table"] for c in db.optimize("a")] == ["a"]
    assert (fragments(db, "a"), fragments(db, "b")) == (1, 6)
    for i in range(3):
        db.execute("INSERT INTO a VALUES (%s)", [10 + i])
    cur = db.execute("OPTIMIZE b")
    assert cur.rowcount == 6
    assert (fragments(db, "a"), fragments(db, "b")) == (4, 1)
    (msg,) = db.execute("SELECT reeldb_optimize('a')").fetchone()
    assert "a" in msg and fragments(db, "a") == 1
    assert db.execute("SELECT reeldb_optimize()").fetchone() == ("nothing to compact",)
    db.execute("INSERT INTO a VALUES (99)")
    db.execute("INSERT INTO b VALUES (99)")
    db.execute("OPTIMIZE")
    assert (fragments(db, "a"), fragments(db, "b")) == (1, 1)
    db.execute("INSERT INTO b VALUES (100)")
    db.execute("VACUUM b")  # compacts b, then removes what nothing reaches
    assert fragments(db, "b") == 1
    db.execute("INSERT INTO a VALUES (100)")
    db.execute("VACUUM")
    assert fragments(db, "a") == 1
    assert db.execute("SELECT count(*), sum(x) FROM a").fetchone() == (11, 6 * 5 // 2 + 33 + 199)
    assert sqlstate(lambda: db.optimize("nope")) == "42P01"
    assert sqlstate(lambda: db.execute("OPTIMIZE nope")) == "42P01"
    with db.transaction():
        assert sqlstate(lambda: db.optimize()) == "25001"
    db.execute("BEGIN")
    assert sqlstate(lambda: db.execute("VACUUM")) == "25001"
    db.execute("ROLLBACK")
    db.execute("INSERT INTO a VALUES (1)")
    db.protect("main")
    head = db.head
    assert sqlstate(lambda: db.optimize()) == "25006"
    assert db.head == head
    db.unprotect("main")
    db.close()


def test_optimize_on_a_branch_leaves_main_alone(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (x INT)")
    for i in range(5):
        db.execute("INSERT INTO t VALUES (%s)", [i])
    db.branch("side")
    db.optimize()
    assert fragments(db, "t") == 1
    assert fragments(db, "t", "main") == 5
    db.checkout("main")
    db.execute("UPDATE t SET x = 40 WHERE x = 4")
    assert not db.merge("side").conflicts  # a compaction on one side merges with edits on the other
    assert db.execute("SELECT x FROM t ORDER BY x").fetchall() == [(0,), (1,), (2,), (3,), (40,)]
    db.close()


def test_concurrent_delete_and_update_during_optimize(path: str, no_auto: None) -> None:
    """A transaction that deleted / updated rows which a compaction then moved still
    commits its changes (found by _rowid), and loses nothing."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, v TEXT)")
    for i in range(10):
        db.execute("INSERT INTO t VALUES (%s, 'x')", [i])
    other = reeldb.connect(path)
    with other.transaction():
        other.execute("DELETE FROM t WHERE id = 3")
        other.execute("UPDATE t SET v = 'y' WHERE id = 7")
        db.optimize()
        assert fragments(db, "t") == 1
    got = db.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert got == [(i, "y" if i == 7 else "x") for i in range(10) if i != 3]
    other.close()
    db.close()


# --- automatic compaction -------------------------------------------------------------------------


@pytest.mark.slow
def test_auto_compaction_bounds_fragments(path: str, monkeypatch) -> None:
    monkeypatch.delenv("REELDB_AUTO_COMPACT", raising=False)
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, e VECTOR(2), note TEXT)")
    most = 0
    for i in range(300):
        db.execute("INSERT INTO t VALUES (%s, %s, %s)", [i, [i, -i], f"n{i}"])
        if i % 50 == 0:
            most = max(most, fragments(db, "t"))
    most = max(most, fragments(db, "t"))
    assert most < 50, f"{most} fragments for 300 one-row commits"
    assert db.execute("SELECT count(*), sum(id), count(DISTINCT note) FROM t").fetchone() == (300, 44850, 300)
    got = db.execute("SELECT id, e FROM t ORDER BY e <-> '[10, -10]' LIMIT 2").fetchall()
    assert [r[0] for r in got] == [10, 9] or [r[0] for r in got] == [10, 11]
    ids = sorted(rows(db, "t"))
    assert len(ids) == len(set(ids)) == 300
    # updates and deletes between tiers keep their rows
    db.execute("DELETE FROM t WHERE id % 10 = 0")
    db.execute("UPDATE t SET note = 'u' WHERE id % 10 = 1")
    for i in range(300, 340):
        db.execute("INSERT INTO t VALUES (%s, %s, 'late')", [i, [i, 0]])
    assert fragments(db, "t") < 50
    assert db.execute("SELECT count(*), count(*) FILTER (WHERE note = 'u') FROM t").fetchone() == (310, 30)
    db.close()


def test_auto_compaction_can_be_disabled(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    for i in range(40):
        db.execute("INSERT INTO t VALUES (%s)", [i])
    assert fragments(db, "t") == 40
    db.close()


# --- VACUUM ----------------------------------------------------------------------------------------


def test_vacuum_removes_only_unreachable(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, b BYTEA)")
    db.execute("INSERT INTO t VALUES (1, %s)", [b"k" * 9000])
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO t VALUES (2, %s)", [b"r" * 9000])
        raise RuntimeError("roll back")
    db.branch("gone")
    db.execute("INSERT INTO t VALUES (3, %s)", [b"g" * 9000])
    db.checkout("main")
    db.delete_branch("gone")
    keep = reachable(db.catalog)
    out = db.vacuum(grace=ZERO)
    assert out["files"] >= 4  # rolled-back and deleted-branch parquet + packs
    left = files(path, "data") | files(path, "blobs") | files(path, "deletes")
    assert left <= keep
    assert bytes(db.execute("SELECT b FROM t").fetchone()[0]) == b"k" * 9000
    assert db.vacuum(grace=ZERO)["files"] == 0
    db.close()


def test_expire_drops_history_then_vacuum_frees_it(path: str, no_auto: None) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, v TEXT)")
    for i in range(6):
        db.execute("INSERT INTO t VALUES (%s, 'x')", [i])
    db.execute("UPDATE t SET v = 'y'")
    first = db.log()[-1]["id"]
    db.optimize()
    assert db.expire(older_than=dt.timedelta(days=1)) == 0
    dropped = db.expire(older_than=ZERO)
    assert dropped >= 8
    log = db.log()
    assert [c["id"] for c in log] == [db.head], "only the branch head is left in history"
    assert sqlstate(lambda: db.diff(first)) == "42704"
    before = du(path, "data")
    db.vacuum(grace=ZERO)
    assert du(path, "data") < before
    assert db.execute("SELECT count(*), min(v) FROM t").fetchone() == (6, "y")
    db.execute("INSERT INTO t VALUES (9, 'z')")
    assert len(db.log()) == 2
    db.close()


def _writer(path: str, start: int, n: int, q: Any) -> None:
    try:
        db = reeldb.connect(path)
        for i in range(start, start + n):
            db.execute("INSERT INTO t VALUES (%s, %s)", [i, bytes([i % 256]) * (5000 + i)])
        db.close()
        q.put(None)
    except BaseException as e:  # report instead of dying silently
        q.put(f"{type(e).__name__}: {e}")


@pytest.mark.slow
def test_concurrent_writer_during_vacuum_loses_nothing(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, b BYTEA)")
    db.execute("INSERT INTO t VALUES (-1, 'seed')")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    n = 40
    proc = ctx.Process(target=_writer, args=(path, 0, n, q))
    proc.start()
    runs = 0
    deadline = time.time() + 60
    try:
        while proc.is_alive() and time.time() < deadline:
            db.vacuum(grace=ZERO)
            runs += 1
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert q.get(timeout=5) is None
    assert runs > 1
    db.vacuum(grace=ZERO)
    fresh = reeldb.connect(path)
    assert fresh.execute("SELECT count(*) FROM t WHERE id >= 0").fetchone() == (n,)
    for i, b in fresh.execute("SELECT id, b FROM t WHERE id >= 0 ORDER BY id").fetchall():
        assert bytes(b) == bytes([i % 256]) * (5000 + i), f"row {i} lost its blob"
    fresh.close()
    db.close()


def test_vacuum_with_retain_keeps_what_merges_need(path: str) -> None:
    """``retain`` ends time travel to old commits, not merges: the merge base of two live
    branches must stay readable (or the merge must still work without it)."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, v TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    db.branch("x")
    db.execute("UPDATE t SET v = 'X' WHERE id = 1")
    db.checkout("main")
    db.execute("UPDATE t SET v = 'M' WHERE id = 2")
    db.vacuum(retain=ZERO, grace=ZERO)
    for conn in (db, reeldb.connect(path)):  # with and without the manifests cached
        conn.branch(f"try-{id(conn)}", checkout=True)
        r = conn.merge("x")
        assert not r.conflicts
        assert conn.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "X"), (2, "M")]
    db.close()
