"""Group commit (catalog/group.py): appends that wait on one branch head combine into
one commit, each exactly once, each refused alone when it cannot go in. Run on a local
folder and on S3.

Two connections inside BEGIN make two transactions on one base. One publishes its intent
by hand (as a writer that lost the head would); the other commits with the head marked
contended, so it publishes too and, after the first writer's turn passes unused, combines
both. Then several processes insert single rows into one branch at once: nothing is lost
and nothing is duplicated.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time

import pytest

import reeldb
from reeldb import errors
from reeldb.catalog import group


def _txn(db: reeldb.Connection):
    return db._session.txn


def _contend(db: reeldb.Connection) -> None:
    db.catalog.contended_until = time.monotonic() + 60


def _two_writers(path: str, ddl: str) -> tuple[reeldb.Connection, reeldb.Connection]:
    setup = reeldb.connect(path)
    setup.execute(ddl)
    setup.close()
    return reeldb.connect(path), reeldb.connect(path)


def test_two_waiting_appends_become_one_commit(path: str) -> None:
    a, b = _two_writers(path, "CREATE TABLE log (id BIGINT PRIMARY KEY, who TEXT)")
    before = len(a.log())
    b.execute("BEGIN")
    b.execute("INSERT INTO log VALUES (1, 'b')")
    intent_b = group.publish(_txn(b), "b's insert", "b")
    a.execute("BEGIN")
    a.execute("INSERT INTO log VALUES (2, 'a')")
    _contend(a)
    a.execute("COMMIT")  # publishes a's intent, takes over from b's idle writer, combines both
    cid, _, combined = group.commit(_txn(b), intent_b)
    assert not combined  # b found its intent already in a's commit
    b.rollback()  # its rows are committed; only the session's transaction is dropped
    head = a.catalog.commit(a.head)
    assert cid == head.id and intent_b.id in head.group and len(head.group) == 2
    assert head.message.startswith("group commit of 2 transactions")
    assert head.stats == {"log": [2, 0, 0]}
    assert len(a.log()) == before + 1
    assert a.execute("SELECT id, who FROM log ORDER BY id").fetchall() == [(1, "b"), (2, "a")]
    assert a.catalog.store.list(group.INTENTS) == []  # included intents are deleted


def test_a_taken_key_rejects_that_writer_alone(path: str) -> None:
    a, b = _two_writers(path, "CREATE TABLE log (id BIGINT PRIMARY KEY, who TEXT)")
    b.execute("BEGIN")
    b.execute("INSERT INTO log VALUES (7, 'b')")
    intent_b = group.publish(_txn(b), "b", "b")
    a.execute("BEGIN")
    a.execute("INSERT INTO log VALUES (7, 'a'), (8, 'a')")
    _contend(a)
    with pytest.raises(errors.UniqueViolation) as info:
        a.execute("COMMIT")  # b's intent is older: it goes in first, and a's clashes
    assert info.value.sqlstate == "23505"
    group.commit(_txn(b), intent_b)
    b.rollback()
    assert a.execute("SELECT id, who FROM log ORDER BY id").fetchall() == [(7, "b")]
    a.execute("INSERT INTO log VALUES (8, 'a')")  # the connection goes on
    assert a.execute("SELECT count(*) FROM log").fetchone() == (2,)


def test_a_table_altered_meanwhile_rejects_the_intent(path: str) -> None:
    a, b = _two_writers(path, "CREATE TABLE log (id BIGINT, who TEXT)")
    a.execute("BEGIN")
    a.execute("INSERT INTO log VALUES (1, 'a')")
    intent = group.publish(_txn(a), "a", "a")
    b.execute("ALTER TABLE log ADD COLUMN score REAL")
    with pytest.raises(errors.SerializationFailure) as info:
        group.commit(_txn(a), intent)
    assert info.value.sqlstate == "40001" and "changed by a concurrent commit" in str(info.value)
    a.rollback()
    assert b.execute("SELECT count(*) FROM log").fetchone() == (0,)


def test_vacuum_keeps_a_waiting_intents_files(path: str) -> None:
    a, b = _two_writers(path, "CREATE TABLE clips (id BIGINT, clip BYTEA)")
    a.execute("BEGIN")
    a.execute("INSERT INTO clips VALUES (1, %s)", (b"x" * 50_000,))
    intent = group.publish(_txn(a), "a", "a")
    b.vacuum(grace=dt.timedelta(0))  # a's transaction is open: its intent and files stay
    group.commit(_txn(a), intent)
    a.rollback()
    assert bytes(b.execute("SELECT clip FROM clips").fetchone()[0]) == b"x" * 50_000


def test_vacuum_drops_an_intent_left_by_a_dead_writer(path: str) -> None:
    a, b = _two_writers(path, "CREATE TABLE log (id BIGINT)")
    a.execute("BEGIN")
    a.execute("INSERT INTO log VALUES (1)")
    intent = group.publish(_txn(a), "a", "a")
    a.rollback()  # the writer is gone: nothing holds its transaction open
    time.sleep(0.05)
    b.vacuum(grace=dt.timedelta(0))
    assert b.catalog.store.list(group.INTENTS) == []
    assert not b.catalog.store.exists(intent.key)
    b.execute("INSERT INTO log VALUES (2)")  # the dropped intent never shows up
    assert b.execute("SELECT id FROM log").fetchall() == [(2,)]


def _writer(path: str, worker: int, n: int, go, q) -> None:
    db = reeldb.connect(path)
    db.execute("SELECT count(*) FROM log").fetchall()
    go.wait()
    for i in range(n):
        db.execute("INSERT INTO log VALUES (%s, %s)", (worker * 1000 + i, worker))
    q.put(worker)


@pytest.mark.slow
def test_concurrent_single_row_writers_lose_and_duplicate_nothing(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE log (id BIGINT PRIMARY KEY, worker INT)")
    ctx = mp.get_context("spawn")
    go, q = ctx.Event(), ctx.Queue()
    workers, n = 6, 12
    procs = [ctx.Process(target=_writer, args=(path, w, n, go, q)) for w in range(workers)]
    for p in procs:
        p.start()
    go.set()
    done = sorted(q.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert done == list(range(workers))
    rows = db.execute("SELECT id FROM log ORDER BY id").fetchall()
    assert [r[0] for r in rows] == sorted(w * 1000 + i for w in range(workers) for i in range(n))
    assert db.catalog.store.list(group.INTENTS) == []
    ids = [i for c in db.catalog.log(db.head) for i in c.group]
    assert len(ids) == len(set(ids))  # every intent in one commit only
