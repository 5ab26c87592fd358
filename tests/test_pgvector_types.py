"""pgvector's types through `reeldb serve`, as pgvector 0.8 on PostgreSQL 16 answers:
halfvec results typed halfvec, sparsevec(n), bit(n) / bit varying, vector[] columns and
parameters, and PostgreSQL's advisory locks. Each is checked with real clients (psycopg 3
text and binary, psycopg2, asyncpg) against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct
import threading
import time

import numpy as np
import pytest

from served import served

psycopg = pytest.importorskip("psycopg")
psycopg2 = pytest.importorskip("psycopg2")
asyncpg = pytest.importorskip("asyncpg")
pgvector = pytest.importorskip("pgvector")
from pgvector import HalfVector, SparseVector, Vector  # noqa: E402
from pgvector.asyncpg import register_vector as register_asyncpg  # noqa: E402
from pgvector.psycopg import register_vector as register_psycopg  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory, "vecs",
                "CREATE TABLE items (id INT PRIMARY KEY, v vector(3), h halfvec(3), s sparsevec(5), "
                "b bit(3), vb varbit(4), vs vector[])",
                "INSERT INTO items (id, v, h, s, b, vb, vs) VALUES "
                "(1, '[1,2,3]', '[1.5,2,3]', '{1:1.5,3:2}/5', '101', '11', '{\"[1,2]\",\"[3,4.5]\"}'), "
                "(2, '[4,5,6]', '[4,5,6]', '{2:1}/5', '011', '1', NULL)") as srv:
        yield srv


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=vecs user=tester"


def run_asyncpg(server, fn):
    host, port = server.address

    async def go():
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="vecs")
        try:
            await register_asyncpg(conn)
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def type_oid(conn, name: str) -> int:
    return conn.execute("SELECT oid FROM pg_type WHERE typname = %s", (name,)).fetchone()[0]


# -- 1. halfvec ---------------------------------------------------------------------------------
def test_halfvec_column_and_cast_come_back_typed_halfvec_text_and_binary(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        halfvec = type_oid(conn, "halfvec")
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute("SELECT h, '[1,2]'::halfvec AS c, v FROM items WHERE id = 1")
            assert [d.type_code for d in cur.description][:2] == [halfvec, halfvec]
            assert cur.description[2].type_code == type_oid(conn, "vector")
        raw = conn.cursor(binary=True).execute("SELECT h FROM items WHERE id = 1").fetchone()[0]
        assert bytes(raw) == struct.pack("!hh", 3, 0) + np.array([1.5, 2, 3], dtype=">f2").tobytes()  # halfvec_send
        register_psycopg(conn)
        assert conn.execute("SELECT h FROM items WHERE id = 1").fetchone()[0] == HalfVector([1.5, 2, 3])
        assert conn.execute("SELECT h::text FROM items WHERE id = 1").fetchone()[0] == "[1.5,2,3]"

    async def fetch(conn):
        return await conn.fetch("SELECT * FROM items ORDER BY id")

    rows = run_asyncpg(server, fetch)
    assert rows[0]["h"] == HalfVector([1.5, 2, 3]) and isinstance(rows[0]["h"], HalfVector)
    assert isinstance(rows[0]["v"], Vector)


# -- 2. sparsevec -------------------------------------------------------------------------------
def test_sparsevec_text_binary_and_casts(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT s::text FROM items ORDER BY id").fetchall() == [("{1:1.5,3:2}/5",), ("{2:1}/5",)]
        assert conn.execute("SELECT s FROM items WHERE id = 1").fetchone()[0] == "{1:1.5,3:2}/5"
        raw = conn.cursor(binary=True).execute("SELECT s FROM items WHERE id = 1").fetchone()[0]
        assert bytes(raw) == struct.pack("!iiiiiff", 5, 2, 0, 0, 2, 1.5, 2.0)  # indices from 0 in binary
        assert conn.execute("SELECT '[1,0,2]'::vector::sparsevec::text").fetchone()[0] == "{1:1,3:2}/3"
        assert conn.execute("SELECT '{1:1.5,3:2}/4'::sparsevec::vector::text").fetchone()[0] == "[1.5,0,2,0]"
        register_psycopg(conn)
        got = conn.execute("SELECT %b::sparsevec", (SparseVector([1.5, 0, 2, 0, 3, 0]),), binary=True).fetchone()[0]
        assert got == SparseVector([1.5, 0, 2, 0, 3, 0])
        got = conn.execute("SELECT %t::sparsevec", (SparseVector({1: 2.5}, 4),)).fetchone()[0]
        assert got == SparseVector({1: 2.5}, 4)


def test_sparsevec_distances_are_pgvectors(server) -> None:
    a = np.array([1.5, 0, 2, 0, 0], dtype=np.float32)
    q = np.array([0, 1, 1, 0, 0], dtype=np.float32)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        got = conn.execute("SELECT s <-> '{2:1,3:1}/5', s <#> '{2:1,3:1}/5', s <=> '{2:1,3:1}/5', "
                           "s <+> '{2:1,3:1}/5' FROM items WHERE id = 1").fetchone()
    assert got[0] == pytest.approx(float(np.linalg.norm(a - q)), rel=1e-6)
    assert got[1] == pytest.approx(-float(a @ q), rel=1e-6)
    assert got[2] == pytest.approx(1 - float(a @ q) / float(np.linalg.norm(a) * np.linalg.norm(q)), rel=1e-6)
    assert got[3] == pytest.approx(float(np.abs(a - q).sum()), rel=1e-6)


def test_sparsevec_of_the_wrong_dimension_is_refused_and_nothing_written(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        with pytest.raises(psycopg.errors.DataException, match="expected 5 dimensions, not 3"):
            conn.execute("INSERT INTO items (id, s) VALUES (9, '{1:1}/3')")
        with pytest.raises(psycopg.errors.DataException, match="ascending"):
            conn.execute("INSERT INTO items (id, s) VALUES (9, '{3:1,1:1}/5')")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="dense"):
            conn.execute("SELECT '{1:1}/100000'::sparsevec")
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == before


def test_sparsevec_through_asyncpg(server) -> None:
    async def go(conn):
        await conn.execute("CREATE TABLE IF NOT EXISTS sp (id INT, e sparsevec(3))")
        await conn.execute("DELETE FROM sp")
        await conn.execute("INSERT INTO sp VALUES (1, $1), (2, $2)", SparseVector([1.5, 0, 3]), None)
        return await conn.fetch("SELECT e, e::text AS t FROM sp ORDER BY id")

    rows = run_asyncpg(server, go)
    assert rows[0]["e"] == SparseVector([1.5, 0, 3]) and rows[0]["t"] == "{1:1.5,3:3}/3"
    assert rows[1]["e"] is None


# -- 3. bit strings -----------------------------------------------------------------------------
def test_bit_text_binary_operators_and_bit_count(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT b, vb FROM items ORDER BY id").fetchall() == [("101", "11"), ("011", "1")]
        cur = conn.cursor(binary=True)
        cur.execute("SELECT b, vb FROM items WHERE id = 1")
        assert [d.type_code for d in cur.description] == [1560, 1562]  # bit, varbit
        assert [bytes(x) for x in cur.fetchone()] == [struct.pack("!i", 3) + b"\xa0", struct.pack("!i", 2) + b"\xc0"]
        got = conn.execute("SELECT b <~> B'111', b <%> '111', bit_count(b), B'1011'::bit(3), '1'::varbit(4) "
                           "FROM items ORDER BY id").fetchall()
        # hamming: differing bits; jaccard: 1 - |a&b| / |a|b|
        assert got == [(1.0, 1 - 2 / 3, 2, "101", "1"), (1.0, 1 - 2 / 3, 2, "101", "1")]
        assert conn.execute("SELECT B'000' <%> B'000'").fetchone()[0] == 1.0  # pgvector: no common bit -> 1
        with pytest.raises(psycopg.errors.DataException, match="different bit lengths 3 and 4"):
            conn.execute("SELECT b <~> B'1111' FROM items")


def test_bit_length_mismatch_is_22026_as_postgres_and_nothing_written(server) -> None:
    conn = psycopg2.connect(dsn(server))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM items")
        before = cur.fetchone()[0]
        with pytest.raises(psycopg2.errors.StringDataLengthMismatch, match="does not match type bit\\(3\\)"):
            cur.execute("INSERT INTO items (id, b) VALUES (9, %s)", ("10",))
        with pytest.raises(psycopg2.errors.StringDataRightTruncation, match="bit varying\\(4\\)"):
            cur.execute("INSERT INTO items (id, vb) VALUES (9, B'10101')")
        with pytest.raises(psycopg2.errors.InvalidTextRepresentation, match='"2" is not a valid binary digit'):
            cur.execute("INSERT INTO items (id, b) VALUES (9, '102')")
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == before
    finally:
        conn.close()


def test_bit_through_asyncpg_binary(server) -> None:
    async def go(conn):
        await conn.execute("CREATE TABLE IF NOT EXISTS bits (id INT, e bit(3))")
        await conn.execute("DELETE FROM bits")
        await conn.execute("INSERT INTO bits VALUES (1, $1), (2, $2)", asyncpg.BitString("101"), None)
        return await conn.fetch("SELECT e, e::text AS t FROM bits ORDER BY id")

    rows = run_asyncpg(server, go)
    assert rows[0]["e"].as_string() == "101" and rows[0]["e"].to_int() == 5 and rows[0]["t"] == "101"
    assert rows[1]["e"] is None


# -- 4. vector[] --------------------------------------------------------------------------------
def test_vector_array_columns_and_parameters_asyncpg(server) -> None:
    async def go(conn):
        await conn.execute("CREATE TABLE IF NOT EXISTS va (id INT, es vector[])")
        await conn.execute("DELETE FROM va")
        await conn.execute("INSERT INTO va VALUES (1, $1)", [Vector([1.5, 2, 3]), Vector([4.5, 5, 6])])
        await conn.execute("INSERT INTO va VALUES (2, ARRAY[$1, $2]::vector[])", [1.5, 2, 3], np.array([4.5, 5, 6]))
        return await conn.fetch("SELECT es FROM va ORDER BY id")

    rows = run_asyncpg(server, go)
    assert rows[0]["es"] == [Vector([1.5, 2, 3]), Vector([4.5, 5, 6])]
    assert rows[1]["es"] == [Vector([1.5, 2, 3]), Vector([4.5, 5, 6])]


def test_vector_array_text_psycopg2_and_psycopg(server) -> None:
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("SELECT vs, vs::text FROM items WHERE id = 1")
        assert cur.fetchone() == ('{"[1,2]","[3,4.5]"}', '{"[1,2]","[3,4.5]"}')
        cur.execute("SELECT ARRAY['[1.5,2,3]', '[4,5,6]']::vector[]")
        assert cur.fetchone()[0] == '{"[1.5,2,3]","[4,5,6]"}'
        with pytest.raises(psycopg2.errors.DataException, match="expected 3 dimensions, not 2"):
            cur.execute("SELECT ARRAY['[1,2,3]', '[4,5]']::vector(3)[]")
    finally:
        conn.close()
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        register_psycopg(conn)
        got = conn.cursor(binary=True).execute("SELECT vs FROM items WHERE id = 1").fetchone()[0]
        assert got == [Vector([1, 2]), Vector([3, 4.5])]


def test_vector_aggregates_keep_the_type(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        register_psycopg(conn)
        row = conn.execute("SELECT avg(v), sum(v), avg(h), sum(h) FROM items").fetchone()
    assert row[0] == Vector([2.5, 3.5, 4.5]) and row[1] == Vector([5, 7, 9])
    assert row[2] == HalfVector([2.75, 3.5, 4.5]) and row[3] == HalfVector([5.5, 7, 9])


def test_vector_arithmetic_is_element_wise_as_pgvectors(server) -> None:
    """pgvector 0.8's + - * of vectors and halfvecs, and the text of an aggregate or
    arithmetic result: [2,4,6], never DuckDB's concatenation or list text."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        register_psycopg(conn)
        row = conn.execute("SELECT v + v, v - '[1,1,1]', v * v, (v + v)::text, avg(v)::text, sum(v)::text "
                           "FROM items WHERE id = 1 GROUP BY v").fetchone()
        assert row[:3] == (Vector([2, 4, 6]), Vector([0, 1, 2]), Vector([1, 4, 9]))
        assert row[3:] == ("[2,4,6]", "[1,2,3]", "[1,2,3]")
        assert conn.execute("SELECT h + h FROM items WHERE id = 1").fetchone()[0] == HalfVector([3, 4, 6])
        for sql, state, message in [
                ("SELECT v + '[1,1]' FROM items", "22000", "different vector dimensions 3 and 2"),
                ("SELECT '[1e38,1,1]'::vector * '[10,1,1]'::vector", "22003", "value out of range: overflow"),
                ("SELECT '[1e-30,1,1]'::vector * '[1e-30,1,1]'::vector", "22003", "value out of range: underflow"),
                ("SELECT h * '[60000,1,1]' FROM items", "22003", "value out of range: overflow")]:
            with pytest.raises(psycopg.Error) as e:
                conn.execute(sql)
            assert e.value.sqlstate == state and str(e.value).startswith(message), sql


def test_halfvec_casts_round_to_float2_and_refuse_what_it_cannot_hold(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        got = conn.execute("SELECT '[0.1,1,1]'::halfvec(3)::text, '[0.1,1,1]'::vector(3)::halfvec::text, "
                           "'[0.1,1,1]'::vector(3)::text").fetchone()
        assert got == ("[0.099975586,1,1]", "[0.099975586,1,1]", "[0.1,1,1]")
        for sql in ("SELECT '[70000,1,1]'::halfvec(3)", "SELECT '[70000,1,1]'::vector(3)::halfvec(3)",
                    "INSERT INTO items (id, h) VALUES (9, '[70000,1,1]')"):
            with pytest.raises(psycopg.errors.NumericValueOutOfRange, match='"70000" is out of range for type halfvec'):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM items WHERE id = 9").fetchone() == (0,)


# -- 5. advisory locks --------------------------------------------------------------------------
def test_advisory_locks_are_server_wide_and_released_with_the_session(server) -> None:
    a = psycopg.connect(dsn(server), autocommit=True)
    b = psycopg.connect(dsn(server), autocommit=True)
    try:
        assert a.execute("SELECT pg_try_advisory_lock(42)").fetchone()[0] is True
        assert a.execute("SELECT pg_try_advisory_lock(42)").fetchone()[0] is True  # re-entrant
        assert b.execute("SELECT pg_try_advisory_lock(42)").fetchone()[0] is False
        assert b.execute("SELECT pg_try_advisory_lock(4, 2)").fetchone()[0] is True  # another key space
        warnings: list = []  # a notice's fields are readable only inside the handler
        b.add_notice_handler(lambda d: warnings.append((d.severity, d.sqlstate, d.message_primary)))
        assert b.execute("SELECT pg_advisory_unlock(42)").fetchone()[0] is False
        assert warnings == [
            ("WARNING", "01000", "you don't own a lock of type ExclusiveLock")]
        assert a.execute("SELECT pg_advisory_unlock(42)").fetchone()[0] is True
        assert b.execute("SELECT pg_try_advisory_lock(42)").fetchone()[0] is False  # still held once
        a.close()  # the session's end releases it (once the server has seen the connection go, as Postgres)
        deadline = time.monotonic() + 10
        while not b.execute("SELECT pg_try_advisory_lock(42)").fetchone()[0]:
            assert time.monotonic() < deadline, "the closed session's lock was never released"
            time.sleep(0.05)
        b.execute("SELECT pg_advisory_unlock_all()")
    finally:
        a.close()
        b.close()
    with psycopg.connect(dsn(server), autocommit=True) as c:
        assert c.execute("SELECT pg_try_advisory_lock(42), pg_try_advisory_lock(4, 2)").fetchone() == (True, True)


def test_advisory_lock_waits_for_the_holder_and_xact_locks_end_with_the_transaction(server) -> None:
    holder = psycopg.connect(dsn(server))
    waiter = psycopg.connect(dsn(server), autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_xact_lock(7)")  # inside the transaction psycopg opened
        done: list[float] = []

        def wait() -> None:
            waiter.execute("SELECT pg_advisory_lock(7)")
            done.append(time.monotonic())

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        assert not done  # blocked while the transaction holds it
        released = time.monotonic()
        holder.commit()
        t.join(10)
        assert done and done[0] >= released
        assert holder.execute("SELECT pg_try_advisory_xact_lock(7)").fetchone()[0] is False
        holder.rollback()
    finally:
        holder.close()
        waiter.close()


def test_asyncpg_pool_reset_runs_pg_advisory_unlock_all(server) -> None:
    host, port = server.address

    async def go():
        pool = await asyncpg.create_pool(host=host, port=port, user="tester", database="vecs", min_size=1, max_size=1,
                                         init=register_asyncpg)
        try:
            for _ in range(2):  # release and re-acquire: the reset calls pg_advisory_unlock_all()
                async with pool.acquire() as conn:
                    assert await conn.fetchval("SELECT pg_try_advisory_lock(99)") is True
            async with pool.acquire() as conn:
                return await conn.fetchval("SELECT v FROM items WHERE id = 1")
        finally:
            await pool.close()

    assert asyncio.run(go()) == Vector([1, 2, 3])


# -- TRUNCATE (peewee empties its tables with it) -----------------------------------------------
def test_truncate_empties_tables_and_refuses_restart_identity(server) -> None:
    conn = psycopg2.connect(dsn(server))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS tr1 (id SERIAL, x INT)")
        cur.execute("CREATE TABLE IF NOT EXISTS tr2 (x INT)")
        cur.execute("INSERT INTO tr1 (x) VALUES (1), (2)")
        cur.execute("INSERT INTO tr2 VALUES (3)")
        with pytest.raises(psycopg2.errors.FeatureNotSupported, match="RESTART IDENTITY"):
            cur.execute("TRUNCATE tr1 RESTART IDENTITY")
        with pytest.raises(psycopg2.errors.UndefinedTable):
            cur.execute("TRUNCATE tr2, nosuch")
        cur.execute("SELECT (SELECT count(*) FROM tr1), (SELECT count(*) FROM tr2)")
        assert cur.fetchone() == (2, 1)  # refused: nothing changed
        cur.execute("TRUNCATE TABLE tr1, tr2")
        assert cur.statusmessage == "TRUNCATE TABLE"
        cur.execute("SELECT (SELECT count(*) FROM tr1), (SELECT count(*) FROM tr2)")
        assert cur.fetchone() == (0, 0)
    finally:
        conn.close()


# -- Describe of INSERT ... RETURNING (pg8000 Describes before Bind) ------------------------------
def test_describe_of_returning_gives_its_columns_without_running_it(server) -> None:
    async def go(conn):
        await conn.execute("CREATE TABLE IF NOT EXISTS ret (id BIGSERIAL, h halfvec(2))")
        before = await conn.fetchval("SELECT count(*) FROM ret")
        stmt = await conn.prepare("INSERT INTO ret (h) VALUES ($1) RETURNING id, h AS half")
        described = [(a.name, a.type.name) for a in stmt.get_attributes()]
        after_describe = await conn.fetchval("SELECT count(*) FROM ret")
        got = await stmt.fetch(HalfVector([1, 2]))
        return before, described, after_describe, got

    before, described, after_describe, got = run_asyncpg(server, go)
    assert described == [("id", "int8"), ("half", "halfvec")]
    assert after_describe == before  # describing ran nothing
    assert len(got) == 1 and got[0]["half"] == HalfVector([1, 2])
