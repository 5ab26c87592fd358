"""Concurrent writers and crash safety.

* several processes inserting into one table on ``main`` at once lose nothing and never
  hand out an id or hidden ``_rowid`` twice (optimistic commits, rebase, retry);
* two connections updating the same row: the second commit fails with SQLSTATE 40001;
  different rows both commit; the same primary key inserted twice fails with 23505;
* a writer killed with SIGKILL at random moments leaves the database openable, every
  visible row complete and no statement half visible; VACUUM then removes the orphans.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import reeldb
from reeldb.catalog.vacuum import reachable
from reeldb.format.fragment import ROWID
from reeldb.storage.local import TMP_PREFIX


def live_rowids(db: reeldb.Connection, table: str) -> list[int]:
    """The hidden _rowid of every live row of ``table`` at the connection's head."""
    cat = db.catalog
    tm = cat.snapshot(db.head)[table]
    out: list[int] = []
    for frag in tm.fragments:
        t = cat.reader.table(tm.table_id, frag)
        ids = np.asarray(t.column(ROWID).to_numpy())
        out.extend(ids[cat.reader.live_mask(frag)].tolist())
    return out


# --- many processes inserting at once ---------------------------------------------------------


def _insert_worker(path: str, worker: int, n: int, start_at: float, q) -> None:
    try:
        db = reeldb.connect(path)
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(n):
            db.execute("INSERT INTO t (worker, seq) VALUES (%s, %s)", (worker, i))
        db.close()
        q.put((worker, None))
    except BaseException as e:  # report instead of dying silently
        q.put((worker, f"{type(e).__name__}: {e}"))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_concurrent_inserts_processes(path: str, method: str) -> None:
    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, worker INT NOT NULL, seq INT NOT NULL)")
    ctx = mp.get_context(method)
    q = ctx.Queue()
    workers, per = 4, 25
    start_at = time.time() + (2.0 if method == "spawn" else 0.3)
    procs = [ctx.Process(target=_insert_worker, args=(path, w, per, start_at, q)) for w in range(workers)]
    for p in procs:
        p.start()
    results = dict(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert all(err is None for err in results.values()), results
    assert all(p.exitcode == 0 for p in procs)

    check = reeldb.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == workers * per
    assert check.execute("SELECT count(DISTINCT id) FROM t").fetchone()[0] == workers * per
    # no lost row: every (worker, seq) pair is there exactly once
    pairs = check.execute("SELECT worker, seq FROM t ORDER BY worker, seq").fetchall()
    assert pairs == [(w, i) for w in range(workers) for i in range(per)]
    rowids = live_rowids(check, "t")
    assert len(rowids) == workers * per
    assert len(set(rowids)) == workers * per
    # every statement's row in main's history once: one commit each, or a group commit of
    # several (catalog/group.py) when they waited on the head together
    commits = check.catalog.log(check.head)
    assert sum(c.stats.get("t", [0])[0] for c in commits) == workers * per
    assert sum(max(len(c.group), 1) for c in commits if c.stats.get("t", [0])[0]) == workers * per


def test_concurrent_inserts_threads_separate_connections(path: str) -> None:
    """Same protocol between connections of one process (each its own catalog)."""
    import threading

    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, worker INT, seq INT)")
    errs: list[BaseException] = []

    def run(w: int) -> None:
        try:
            c = reeldb.connect(path)
            for i in range(10):
                c.execute("INSERT INTO t (worker, seq) VALUES (%s, %s)", (w, i))
            c.close()
        except BaseException as e:
            errs.append(e)

    ts = [threading.Thread(target=run, args=(w,)) for w in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errs, errs
    check = reeldb.connect(path)
    assert check.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (30, 30)
    assert len(set(live_rowids(check, "t"))) == 30


def _increment_worker(path: str, row: int, n: int, start_at: float, q) -> None:
    """UPDATE ... SET n = n + 1, retrying on 40001 as a client of Postgres would."""
    try:
        db = reeldb.connect(path)
        while time.time() < start_at:
            time.sleep(0.001)
        conflicts = 0
        for _ in range(n):
            while True:
                try:
                    db.execute("UPDATE c SET n = n + 1 WHERE id = %s", (row,))
                    break
                except reeldb.Error as e:
                    if e.sqlstate != "40001":
                        raise
                    conflicts += 1
        db.close()
        q.put((None, conflicts))
    except BaseException as e:
        q.put((f"{type(e).__name__}: {e}", 0))


def _run_incrementers(path: str, rows: list[int], n: int) -> int:
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 0.3
    procs = [ctx.Process(target=_increment_worker, args=(path, r, n, start_at, q)) for r in rows]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [err for err, _ in results if err] == []
    return sum(c for _, c in results)


@pytest.mark.slow
def test_concurrent_increments_same_row_no_lost_update(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT)")
    db.execute("INSERT INTO c VALUES (1, 0), (2, 0)")
    rowids = sorted(live_rowids(db, "c"))
    _run_incrementers(path, [1, 1, 1], 8)
    check = reeldb.connect(path)
    assert check.execute("SELECT id, n FROM c ORDER BY id").fetchall() == [(1, 24), (2, 0)]
    assert sorted(live_rowids(check, "c")) == rowids  # an UPDATE keeps the row's _rowid


def test_concurrent_increments_different_rows_rebase(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT)")
    db.execute("INSERT INTO c VALUES (1, 0), (2, 0), (3, 0)")
    conflicts = _run_incrementers(path, [1, 2, 3], 8)
    check = reeldb.connect(path)
    assert check.execute("SELECT id, n FROM c ORDER BY id").fetchall() == [(1, 8), (2, 8), (3, 8)]
    assert conflicts == 0  # different rows never conflict: the commits re-base


# --- conflicting transactions in one process -----------------------------------------------------


@pytest.fixture
def two(path: str) -> tuple[reeldb.Connection, reeldb.Connection]:
    a = reeldb.connect(path)
    a.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    a.execute("INSERT INTO t VALUES (1, 'orig'), (2, 'orig'), (3, 'orig')")
    b = reeldb.connect(path)
    return a, b


def _values(db: reeldb.Connection) -> dict[int, str]:
    return dict(db.execute("SELECT id, v FROM t ORDER BY id").fetchall())


def test_update_same_row_second_commit_fails(two) -> None:
    a, b = two
    with pytest.raises(reeldb.Error) as ei, b.transaction():
        b.execute("UPDATE t SET v = 'b' WHERE id = 1")
        with a.transaction():
            a.execute("UPDATE t SET v = 'a' WHERE id = 1")
            # a has committed; b commits when its block ends
    assert ei.value.sqlstate == "40001", ei.value
    assert isinstance(ei.value, reeldb.OperationalError)
    assert _values(a) == {1: "a", 2: "orig", 3: "orig"}
    assert _values(b) == {1: "a", 2: "orig", 3: "orig"}
    assert reeldb.connect(a.catalog.store.url).execute("SELECT count(*) FROM t").fetchone()[0] == 3
    # b is usable again and sees a's value; a retry succeeds
    b.execute("UPDATE t SET v = 'b2' WHERE id = 1")
    assert _values(a)[1] == "b2"


def test_update_same_row_sql_begin_commit(two) -> None:
    a, b = two
    a.execute("BEGIN")
    b.execute("BEGIN")
    a.execute("UPDATE t SET v = 'a' WHERE id = 2")
    b.execute("UPDATE t SET v = 'b' WHERE id = 2")
    a.execute("COMMIT")
    with pytest.raises(reeldb.Error) as ei:
        b.execute("COMMIT")
    assert ei.value.sqlstate == "40001"
    assert _values(b) == {1: "orig", 2: "a", 3: "orig"}


def test_delete_vs_update_same_row_conflicts(two) -> None:
    a, b = two
    with pytest.raises(reeldb.Error) as ei, b.transaction():
        b.execute("DELETE FROM t WHERE id = 3")
        with a.transaction():
            a.execute("UPDATE t SET v = 'a' WHERE id = 3")
    assert ei.value.sqlstate == "40001"
    assert _values(a) == {1: "orig", 2: "orig", 3: "a"}


def test_update_different_rows_both_commit(two) -> None:
    a, b = two
    with b.transaction():
        b.execute("UPDATE t SET v = 'b' WHERE id = 1")
        with a.transaction():
            a.execute("UPDATE t SET v = 'a' WHERE id = 2")
    assert _values(a) == {1: "b", 2: "a", 3: "orig"}
    assert a.execute("SELECT count(*) FROM t").fetchone()[0] == 3


def test_update_and_insert_both_commit(two) -> None:
    a, b = two
    with b.transaction():
        b.execute("INSERT INTO t VALUES (10, 'new')")
        with a.transaction():
            a.execute("UPDATE t SET v = 'a' WHERE id = 1")
    assert _values(b) == {1: "a", 2: "orig", 3: "orig", 10: "new"}


def test_concurrent_same_primary_key_fails_23505(two) -> None:
    a, b = two
    with pytest.raises(reeldb.Error) as ei, b.transaction():
        b.execute("INSERT INTO t VALUES (7, 'b')")
        with a.transaction():
            a.execute("INSERT INTO t VALUES (7, 'a')")
    assert ei.value.sqlstate == "23505", ei.value
    assert isinstance(ei.value, reeldb.IntegrityError)
    assert a.execute("SELECT v FROM t WHERE id = 7").fetchall() == [("a",)]
    assert a.execute("SELECT count(*) FROM t").fetchone()[0] == 4


def test_concurrent_different_primary_keys_both_commit(two) -> None:
    a, b = two
    with b.transaction():
        b.execute("INSERT INTO t VALUES (8, 'b')")
        with a.transaction():
            a.execute("INSERT INTO t VALUES (9, 'a')")
    assert _values(a) == {1: "orig", 2: "orig", 3: "orig", 8: "b", 9: "a"}


def test_concurrent_unique_text_key_fails_23505(path: str) -> None:
    a = reeldb.connect(path)
    a.execute("CREATE TABLE u (id SERIAL PRIMARY KEY, name TEXT UNIQUE)")
    b = reeldb.connect(path)
    with pytest.raises(reeldb.Error) as ei, b.transaction():
        b.execute("INSERT INTO u (name) VALUES ('same')")
        with a.transaction():
            a.execute("INSERT INTO u (name) VALUES ('same')")
    assert ei.value.sqlstate == "23505"
    assert a.execute("SELECT count(*) FROM u").fetchone()[0] == 1


def test_concurrent_alters_conflict(two) -> None:
    a, b = two
    with pytest.raises(reeldb.Error) as ei, b.transaction():
        b.execute("ALTER TABLE t ADD COLUMN extra INT")
        with a.transaction():
            a.execute("ALTER TABLE t ADD COLUMN other TEXT")
    assert ei.value.sqlstate == "40001"
    cols = [d[0] for d in a.execute("SELECT * FROM t").description]
    assert cols == ["id", "v", "other"]


# --- crash safety --------------------------------------------------------------------------------

ROWS_PER_STATEMENT = 20
BLOB_BYTES = 200_000
DIM = 1024

WRITER = textwrap.dedent(
    """
    import hashlib, os, sys
    import numpy as np
    import reeldb

    db = reeldb.connect(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))
    n, dim, size = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    one = "(%s, %s, %s, %s, %s)"
    sql = "INSERT INTO big (batch, v, vsum, b, bsum) VALUES " + ", ".join([one] * n)
    print("ready", flush=True)
    batch = int(sys.argv[2]) * 1_000_000
    while True:
        params = []
        for _ in range(n):
            v = rng.standard_normal(dim).astype(np.float32)
            b = os.urandom(size)
            params += [batch, v, hashlib.sha256(v.tobytes()).hexdigest(),
                       b, hashlib.sha256(b).hexdigest()]
        db.execute(sql, params)
        batch += 1
    """
)


def _files(root: str, *dirs: str) -> list[str]:
    """Every file under the folders (temp files included), or every object on S3."""
    if root.startswith("s3://"):
        from reeldb.storage import open_store

        store = open_store(root, create=False)
        return sorted(k for d in dirs for k in store.list(d + "/"))
    out = []
    for d in dirs:
        for dirpath, _, names in os.walk(os.path.join(root, d)):
            for n in names:
                out.append(os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/"))
    return sorted(out)


def _is_tmp(key: str) -> bool:
    return os.path.basename(key).startswith(TMP_PREFIX)


def _wait_for_rows(path: str, more_than: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    db = reeldb.connect(path)
    try:
        while db.execute("SELECT count(*) FROM big").fetchone()[0] <= more_than:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the writer committed nothing in time"
            time.sleep(0.05)
    finally:
        db.close()


def _check_complete(path: str) -> int:
    """Open, count, read every row fully; returns the row count."""
    db = reeldb.connect(path)
    n = db.execute("SELECT count(*) FROM big").fetchone()[0]
    assert n % ROWS_PER_STATEMENT == 0, n
    bad = db.execute(
        "SELECT batch, count(*) FROM big GROUP BY batch HAVING count(*) <> %s", (ROWS_PER_STATEMENT,)
    ).fetchall()
    assert bad == []
    rows = db.execute("SELECT v, vsum, b, bsum FROM big").fetchall()
    assert len(rows) == n
    for v, vsum, b, bsum in rows:
        assert v is not None and v.shape == (DIM,)
        assert hashlib.sha256(np.asarray(v, dtype=np.float32).tobytes()).hexdigest() == vsum
        assert len(b) == BLOB_BYTES
        assert hashlib.sha256(bytes(b)).hexdigest() == bsum
    db.close()
    return n


@pytest.mark.slow
def test_sigkill_writer_leaves_consistent_database(path: str) -> None:
    db = reeldb.connect(path)
    db.execute(f"CREATE TABLE big (id SERIAL PRIMARY KEY, batch BIGINT, v VECTOR({DIM}), "
               "vsum TEXT, b BYTEA, bsum TEXT)")
    db.close()
    rnd = random.Random(1234)
    counts = []
    for it in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, path, str(it + 1), str(ROWS_PER_STATEMENT), str(DIM),
             str(BLOB_BYTES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            line = proc.stdout.readline()
            assert line.strip() == b"ready", (line, proc.stderr.read() if proc.poll() is not None else b"")
            if it == 4:  # the last writer is killed only after it committed once, however slow
                _wait_for_rows(path, counts[-1] if counts else 0, proc)
            time.sleep(rnd.uniform(0.2, 1.0))
            assert proc.poll() is None, proc.stderr.read()  # still writing when killed
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        counts.append(_check_complete(path))
    assert counts == sorted(counts)
    assert counts[-1] > 0, "the writer never committed anything"

    # a rolled-back transaction is a guaranteed orphan, whatever the kills hit
    db = reeldb.connect(path)
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO big (batch, v, vsum, b, bsum) VALUES (-1, %s, 'x', %s, 'x')",
                   (np.zeros(DIM, np.float32), os.urandom(BLOB_BYTES)))
        raise RuntimeError("roll back")
    before = _files(path, "data", "blobs")
    keep = reachable(db.catalog)
    orphans = [k for k in before if k not in keep]
    assert orphans, "expected unreferenced files after kills and a rollback"
    out = db.vacuum(grace=dt.timedelta(0))
    after = _files(path, "data", "blobs")
    assert out["files"] >= len(orphans)
    assert len(after) < len(before)
    # nothing unreferenced is left, temp files of a put cut short by the kill included
    left = sorted(set(after) - keep)
    assert left == [], f"left unreferenced: {left[:5]}"
    assert not any(_is_tmp(k) for k in _files(path, "_reeldb", "deletes"))
    # every row still reads in full
    assert _check_complete(path) == counts[-1]
    db.close()


def test_vacuum_keeps_young_orphans(path: str) -> None:
    """Within the grace period an unreferenced file may belong to a writer about to commit."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, b BYTEA)")
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO t VALUES (1, %s)", (os.urandom(10_000),))
        raise RuntimeError("roll back")
    before = _files(path, "data", "blobs")
    assert db.vacuum()["files"] == 0  # default grace: an hour
    assert _files(path, "data", "blobs") == before
    assert db.vacuum(grace=dt.timedelta(0))["files"] >= 2  # parquet + pack
    assert _files(path, "data", "blobs") == []


@pytest.mark.local_only
def test_vacuum_removes_temp_files_left_by_a_killed_put(path: str) -> None:
    """A writer killed inside put() leaves a '.tmp-' file: no ref reaches it, so VACUUM
    (past the grace period) should delete it too."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, b BYTEA)")
    db.execute("INSERT INTO t VALUES (1, %s)", (os.urandom(10_000),))
    stray = os.path.join(path, "blobs", TMP_PREFIX + "0123456789abcdef")
    with open(stray, "wb") as f:
        f.write(b"half a pack")
    old = time.time() - 7200
    os.utime(stray, (old, old))
    db.vacuum(grace=dt.timedelta(hours=1))
    assert not os.path.exists(stray), "VACUUM left a temp file from a killed writer"
    assert bytes(db.execute("SELECT b FROM t").fetchone()[0])


def test_forked_children_do_not_reuse_the_parents_serial_blocks(tmp_path) -> None:
    """A connection opened before fork (a DataLoader worker, say) must not hand out the
    SERIAL values or row ids its parent already reserved."""
    import multiprocessing as mp

    path = str(tmp_path / "db")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, who INT)")
    db.execute("INSERT INTO t (who) VALUES (0)")  # the parent now caches a block of ids

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_insert_with_inherited, args=(db, w)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    db.execute("INSERT INTO t (who) VALUES (0)")
    fresh = reeldb.connect(path)
    assert fresh.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() == (22, 22)


def _insert_with_inherited(db: reeldb.Connection, who: int) -> None:
    for _ in range(10):
        db.execute("INSERT INTO t (who) VALUES (%s)", [who])
