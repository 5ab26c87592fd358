"""Streamed results: a SELECT's rows come from DuckDB a batch at a time as the consumer
asks (Python cursor, wire server, extended-protocol portals, DECLAREd cursors), with
statement_timeout and cancel honoured while streaming and memory bounded by a batch."""

from __future__ import annotations

import asyncio
import os
import struct
import time

import psycopg
import pytest

import reeldb
from reeldb.engine.engine import ResultStream
from reeldb.server.conn import ClientSession
from reeldb.server.server import BackgroundServer

BIG = 5_000_000
WIDE = "SELECT i, 'row number ' || i AS label FROM generate_series(1, {n}) t(i)"


def rss_mib() -> float:
    """This process's resident memory now (the server under test runs in it too)."""
    with open(f"/proc/{os.getpid()}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.fixture
def db(tmp_path):
    conn = reeldb.connect(tmp_path / "db")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("streamed") / "video-gen"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO t VALUES (%s, %s)", [(i, f"n{i}") for i in range(10)])
    db.close()
    srv = BackgroundServer(str(path), port=0)
    yield srv
    srv.stop()


def connect(server, **kw) -> psycopg.Connection:
    host, port = server.address
    return psycopg.connect(host=host, port=port, dbname="video-gen", user="tester", autocommit=True, **kw)


# ------------------------------------------------------------------------------- Python API


def test_a_large_select_streams_through_the_api_in_bounded_memory(db) -> None:
    cur = db.execute(WIDE.format(n=BIG))
    assert cur.rowcount == -1  # not known before the last row is read
    before, peak, rows, held = rss_mib(), 0.0, 0, 0
    for batch in cur.fetch_record_batch(100_000):
        rows += batch.num_rows
        held += batch.nbytes
        assert batch.column(0)[0].as_py() == rows - batch.num_rows + 1  # in order, none skipped
        peak = max(peak, rss_mib() - before)
    assert rows == BIG and cur.rowcount == BIG
    assert held > 120 * 2**20  # the result is large ...
    assert peak < 64, f"{peak:.0f} MiB held while streaming {held / 2**20:.0f} MiB"  # ... memory is not


def test_fetch_methods_read_one_stream_in_order(db) -> None:
    n = 200_000  # more than two batches, so it streams
    cur = db.execute("SELECT i FROM generate_series(1, %s) t(i)", (n,))
    assert cur.description[0][0] == "i" and cur.statusmessage == "SELECT"
    assert cur.fetchone() == (1,)
    assert cur.fetchmany(3) == [(2,), (3,), (4,)]
    assert [next(iter(cur))] == [(5,)]
    batches = cur.fetch_record_batch(70_000)
    first = batches.read_next_batch()
    assert first.num_rows == 70_000 and first.column(0)[0].as_py() == 6
    rest = cur.arrow()  # what the batch reader has not handed out yet
    assert rest.column(0)[0].as_py() == 70_006 and rest.num_rows == n - 70_005
    assert cur.fetchall() == [] and cur.fetchone() is None
    assert cur.rowcount == n and cur.statusmessage == f"SELECT {n}"
    cur = db.execute("SELECT i FROM generate_series(1, %s) t(i)", (n,))
    cur.fetchmany(70_000)
    assert cur.fetchall() == [(i,) for i in range(70_001, n + 1)]


def test_a_second_statement_keeps_the_first_cursors_rows_readable(db) -> None:
    first = db.cursor().execute("SELECT i FROM generate_series(1, 300000) t(i)")
    assert first.fetchone() == (1,)
    second = db.cursor().execute("SELECT i * 2 FROM generate_series(1, 300000) t(i)")  # DuckDB: one open result
    assert second.fetchone() == (2,)
    db.execute("CREATE TABLE t (a INT)")
    assert first.fetchone() == (2,)
    assert sum(1 for _ in first) == 299_998 and first.rowcount == 300_000
    assert len(second.fetchall()) == 299_999


def test_the_rest_read_past_the_memory_bound_is_refused_when_read(tmp_path) -> None:
    conn = reeldb.connect(tmp_path / "db", memory_limit="64MB")
    try:
        first = conn.cursor().execute(WIDE.format(n=3_000_000))  # ~150 MB of Arrow
        assert first.fetchone() == (1, "row number 1")
        other = conn.execute("SELECT 42").fetchone()  # runs: the first's rest did not fit
        assert other == (42,)
        with pytest.raises(reeldb.OperationalError) as e:
            first.fetchall()
        assert e.value.sqlstate == "53200"
        assert "another statement" in str(e.value) and "64MB" in str(e.value)
        assert conn.execute("SELECT count(*) FROM generate_series(1, 10)").fetchone() == (10,)
    finally:
        conn.close()


def test_closing_a_cursor_ends_its_stream(db) -> None:
    cur = db.cursor().execute("SELECT i FROM generate_series(1, 1000000) t(i)")
    assert cur.fetchone() == (1,)
    cur.close()
    with pytest.raises(reeldb.InterfaceError):
        cur.execute("SELECT 1")
    t0 = time.monotonic()
    assert db.execute("SELECT 7").fetchone() == (7,)
    assert time.monotonic() - t0 < 0.5  # nothing of the closed result was read


def test_an_error_while_streaming_keeps_its_sqlstate_and_fails_the_transaction(db) -> None:
    db.execute("CREATE TABLE t (a INT)")
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(reeldb.DataError) as e:  # met at execute or while reading, as DuckDB runs ahead
        db.execute("SELECT 1 / (i - 2900000) FROM generate_series(1, 3000000) t(i)").fetchall()
    assert e.value.sqlstate == "22012"
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("SELECT 1")
    assert e.value.sqlstate == "25P02"
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_statement_timeout_covers_reading_the_stream(db) -> None:
    db.execute("SET statement_timeout = '300ms'")
    cur = db.execute("SELECT i FROM generate_series(1, 1000000) t(i)")
    assert cur.fetchone() == (1,)
    time.sleep(0.4)
    with pytest.raises(reeldb.OperationalError) as e:
        cur.fetchall()
    assert e.value.sqlstate == "57014" and "statement timeout" in str(e.value)
    assert db.execute("SELECT 3").fetchone() == (3,)


def test_small_and_reeldb_computed_results_stay_held(db) -> None:
    db.execute("CREATE TABLE k (id INT PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO k VALUES (%s, %s)", [(i, f"v{i}") for i in range(5)])
    cur = db.execute("SELECT v FROM k WHERE id = 3")  # a point lookup
    assert cur.rowcount == 1 and cur.fetchall() == [("v3",)]
    cur = db.execute("SELECT id FROM k ORDER BY id")
    assert cur.rowcount == 5 and cur.statusmessage == "SELECT 5"


# -------------------------------------------------------------------------------- SQL cursors


def test_a_forward_cursor_streams_and_refuses_going_back(db) -> None:
    db.execute("BEGIN")
    db.execute("DECLARE c CURSOR FOR SELECT i FROM generate_series(1, 400000) t(i)")
    assert db.execute("FETCH 2 FROM c").fetchall() == [(1,), (2,)]
    assert db._session.cursors["c"].result.streaming  # its rest is still DuckDB's
    assert db.execute("MOVE FORWARD 100000 IN c").rowcount == 100_000
    assert db.execute("FETCH RELATIVE 0 FROM c").fetchall() == [(100_002,)]
    assert db.execute("FETCH ABSOLUTE 200000 FROM c").fetchall() == [(200_000,)]
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("FETCH BACKWARD 1 FROM c")
    assert e.value.sqlstate == "55000" and "SCROLL" in str(e.value)
    db.execute("ROLLBACK")
    db.execute("BEGIN")
    db.execute("DECLARE c CURSOR FOR SELECT i FROM generate_series(1, 400000) t(i)")
    db.execute("MOVE 399999 IN c")
    assert db.execute("FETCH ALL FROM c").fetchall() == [(400_000,)]
    assert db.execute("FETCH NEXT FROM c").fetchall() == []
    assert db.execute("FETCH RELATIVE 0 FROM c").fetchall() == []  # after the last row: none
    db.execute("COMMIT")


def test_a_held_cursor_survives_commit_and_another_statement(db) -> None:
    db.execute("BEGIN")
    db.execute("DECLARE h CURSOR WITH HOLD FOR SELECT i FROM generate_series(1, 300000) t(i)")
    assert db.execute("FETCH 1 FROM h").fetchall() == [(1,)]
    db.execute("COMMIT")
    assert db.execute("SELECT 5").fetchone() == (5,)
    assert db.execute("FETCH 2 FROM h").fetchall() == [(2,), (3,)]
    db.execute("CLOSE h")


def test_psycopg_named_cursor_reads_a_large_result_in_pieces(server) -> None:
    with connect(server) as c, c.transaction():
        with c.cursor("big") as cur:
            cur.itersize = 2_000  # FETCH FORWARD 2000, again and again
            cur.execute(WIDE.format(n=100_000))
            got = [row[0] for row in cur]
        assert got == list(range(1, 100_001))


# ------------------------------------------------------------------------------------ wire


def test_statement_timeout_ends_a_5m_row_select_over_the_wire_near_1s(server) -> None:
    with connect(server) as c:
        c.execute("SET statement_timeout = '1s'")
        before = rss_mib()
        t0 = time.monotonic()
        n = 0
        with pytest.raises(psycopg.errors.QueryCanceled) as e:
            for _ in c.cursor().stream(WIDE.format(n=BIG)):  # psycopg keeps one row at a time
                n += 1
        took = time.monotonic() - t0
        assert "statement timeout" in str(e.value)
        assert 0.9 < took < 2.5, took
        assert 0 < n < BIG
        assert rss_mib() - before < 150
        c.execute("SET statement_timeout = 0")
        assert c.execute("SELECT count(*) FROM t").fetchone() == (10,)


def test_a_cancel_request_stops_a_streamed_select(server) -> None:
    import threading

    with connect(server) as c:
        threading.Timer(0.5, c.cancel_safe).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as e:
            for _ in c.cursor().stream(WIDE.format(n=BIG)):
                pass
        assert "user request" in str(e.value)
        assert time.monotonic() - t0 < 2.5
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_asyncpg_cursor_reads_a_portal_in_pieces_of_one_stream(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def main() -> list[int]:
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="video-gen")
        try:
            got = []
            async with conn.transaction():
                cur = await conn.cursor("SELECT i FROM generate_series(1, 3000000) t(i)")
                got += [r[0] for r in await cur.fetch(1000)]
                assert await conn.fetchval("SELECT 2 + 2") == 4  # another statement between Executes
                got += [r[0] for r in await cur.fetch(1000)]
                got.append(await cur.fetchrow())
            return got
        finally:
            await conn.close()

    t0 = time.monotonic()
    got = asyncio.run(main())
    assert got[:1000] == list(range(1, 1001)) and got[1000:2000] == list(range(1001, 2001))
    assert got[2000][0] == 2001
    assert time.monotonic() - t0 < 10


def _msg(kind: str, body: bytes) -> tuple[str, bytes]:
    return kind, body


def test_execute_with_a_row_limit_continues_the_same_stream(tmp_path) -> None:
    """PortalSuspended, then the next Execute reads on from the same open result: the
    query does not run again, nor is its result held whole."""
    conn = reeldb.connect(tmp_path / "db")
    try:
        cs = ClientSession(conn, "u", "db", 1)
        query = b"SELECT i FROM generate_series(1, 300000) t(i)"
        first = cs.handle_all([_msg("P", b"\0" + query + b"\0\0\0"), _msg("B", b"\0\0" + b"\0" * 6),
                               _msg("E", b"\0" + struct.pack("!i", 1000)), _msg("H", b"")])
        assert sum(m[:1] == b"D" for m in first) == 1000 and first[-1][:1] == b"s"  # PortalSuspended
        result = cs.portals[""].result
        assert result is not None and result.streaming  # the rest is still DuckDB's
        second = cs.handle_all([_msg("E", b"\0" + struct.pack("!i", 1000)), _msg("H", b"")])
        rows = [m for m in second if m[:1] == b"D"]
        assert len(rows) == 1000 and rows[0].endswith(b"1001") and rows[-1].endswith(b"2000")
        assert cs.portals[""].result is result and result.streaming
        last = cs.handle_all([_msg("E", b"\0" + struct.pack("!i", 0)), _msg("S", b"")])
        assert sum(m[:1] == b"D" for m in last) == 298_000
        assert b"SELECT 300000" in last[-2]
    finally:
        conn.close()


def test_a_multi_statement_string_returns_the_last_rows_and_reads_no_earlier_stream(db, monkeypatch) -> None:
    detached = []
    real = ResultStream.detach
    monkeypatch.setattr(ResultStream, "detach", lambda self: (detached.append(self), real(self)))
    cur = db.execute("SELECT i FROM generate_series(1, 5000000) t(i); SELECT 5 AS five")
    assert cur.fetchall() == [(5,)] and cur.description[0][0] == "five"
    assert detached == []  # the first SELECT's rows were dropped, not read into memory
    db.execute("SELECT i FROM generate_series(1, 5000000) t(i)")  # its cursor dropped unread
    assert db.execute("SELECT 2").fetchone() == (2,)
    assert detached == []
    first = db.cursor().execute("SELECT i FROM generate_series(1, 300000) t(i)")
    db.execute("SELECT 1")
    assert len(detached) == 1 and first.fetchone() == (1,)  # the spy sees what an open stream gets


def test_a_table_with_blobs_streams_and_its_blobs_stay_lazy(db) -> None:
    n = 150_000
    db.execute("CREATE TABLE clips (id INT, label TEXT, video BYTEA)")
    big = os.urandom(40_000)  # a blob-pack value, fetched only when read
    db.insert("clips", {"id": list(range(n)), "label": [f"clip {i}" for i in range(n)],
                        "video": [big if i % 50_000 == 7 else i.to_bytes(4, "big") for i in range(n)]})
    cur = db.execute("SELECT id, label, video FROM clips ORDER BY id")
    assert cur.rowcount == -1  # streamed: more than one batch
    seen = 0
    while rows := cur.fetchmany(20_000):
        for rid, label, video in rows:
            assert label == f"clip {rid}"
            if rid % 50_000 == 7:
                assert hasattr(video, "_blob_ref") and bytes(video) == big  # lazy until read
            else:
                assert bytes(video) == rid.to_bytes(4, "big")
        seen += len(rows)
    assert seen == n and cur.rowcount == n
