"""Pipelined rows of one prepared INSERT (psycopg's and asyncpg's ``executemany``) are
written as one INSERT, and still answer as PostgreSQL does row by row: a failing row
fails the transaction with its own error, a savepoint taken before undoes them all,
and sequence defaults follow the rows' order."""

from __future__ import annotations

import asyncio

import pytest

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch") / "db"
    reeldb.connect(path).close()
    srv = BackgroundServer(str(path), port=0)
    srv.db_path = path
    yield srv
    srv.stop()


@pytest.fixture
def dsn(server):
    host, port = server.address
    dsn = f"host={host} port={port} dbname=db user=tester"
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS bt")
        c.execute("CREATE TABLE bt (id INT PRIMARY KEY, name TEXT, n SERIAL)")
    return dsn


def rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute("SELECT id, name, n FROM bt ORDER BY id").fetchall()


def test_many_rows_in_one_transaction(dsn):
    data = [(i, f"p{i}") for i in range(500)]
    with psycopg.connect(dsn) as c:
        cur = c.cursor()
        cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", data)
        assert cur.rowcount == 500
    got = rows(dsn)
    assert [(i, name) for i, name, _ in got] == data
    serial = [n for *_, n in got]
    assert serial == sorted(set(serial))  # SERIAL drawn in the rows' order (cached in blocks: gaps allowed)


def fragments(server, table: str) -> int:
    db = reeldb.connect(server.db_path)
    try:
        return len(db.catalog.snapshot(db.head)[table].fragments)
    finally:
        db.close()


def test_one_write_per_pipeline(server, dsn):
    """The rows go in as one INSERT: one fragment, not one per row."""
    with psycopg.connect(dsn) as c:
        c.cursor().executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(i, "x") for i in range(300)])
    assert fragments(server, "bt") == 1
    assert len(rows(dsn)) == 300


def test_failing_row_fails_the_transaction_and_names_its_key(dsn):
    with psycopg.connect(dsn) as c:
        cur = c.cursor()
        with pytest.raises(psycopg.errors.UniqueViolation) as err:
            cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(1, "a"), (2, "b"), (1, "c"), (3, "d")])
        assert err.value.diag.message_detail == "Key (id)=(1) already exists."
        assert c.info.transaction_status.name == "INERROR"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("INSERT INTO bt (id, name) VALUES (9, 'z')")
        c.rollback()
    assert rows(dsn) == []


def test_savepoint_before_the_rows_undoes_them_all(dsn):
    with psycopg.connect(dsn) as c:
        cur = c.cursor()
        c.execute("INSERT INTO bt (id, name) VALUES (10, 'x')")
        c.execute("SAVEPOINT s")
        with pytest.raises(psycopg.errors.UniqueViolation):
            cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(11, "a"), (10, "b")])
        c.execute("ROLLBACK TO SAVEPOINT s")
        cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(12, "a"), (13, "b"), (14, None)])
        assert cur.rowcount == 3
    assert [(i, name) for i, name, _ in rows(dsn)] == [(10, "x"), (12, "a"), (13, "b"), (14, None)]


def test_autocommit_pipeline_is_one_transaction(dsn):
    """psycopg's pipeline ends with one Sync: a bad row loses the rows before it too,
    as PostgreSQL's implicit transaction does."""
    with psycopg.connect(dsn, autocommit=True) as c:
        cur = c.cursor()
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(20, "a"), ("x", "b"), (21, "c")])
        cur.executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(30, "a"), (31, "b")])
    assert [i for i, *_ in rows(dsn)] == [30, 31]


def test_read_only_transaction_changes_nothing(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.cursor().executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", [(1, "a"), (2, "b")])
    assert rows(dsn) == []


def test_asyncpg_executemany(server, dsn):
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def go():
        conn = await asyncpg.connect(host=host, port=port, database="db", user="tester")
        try:
            await conn.executemany("INSERT INTO bt (id, name) VALUES ($1, $2)", [(i, f"a{i}") for i in range(50)])
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.executemany("INSERT INTO bt (id, name) VALUES ($1, $2)", [(100, "x"), (3, "dup")])
        finally:
            await conn.close()

    asyncio.run(go())
    assert [i for i, *_ in rows(dsn)] == list(range(50))
    assert fragments(server, "bt") == 1


def test_a_failed_run_goes_one_row_at_a_time_and_is_not_batched_again(dsn, monkeypatch):
    """Once the batch of a run fails, its rows run one by one: not a batch attempt per
    remaining row (which would cost as many rollbacks as rows)."""
    from reeldb.sql.session import Session

    calls = []
    real = Session.execute_batch

    def counting(self, sql, rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        return real(self, sql, rows)

    monkeypatch.setattr(Session, "execute_batch", counting)
    data = [(i, "x") for i in range(200)] + [(5, "dup")]
    with psycopg.connect(dsn) as c:
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.cursor().executemany("INSERT INTO bt (id, name) VALUES (%s, %s)", data)
        c.rollback()
    assert calls and calls[0] == len(data) and len(calls) == 1, calls
    assert rows(dsn) == []
