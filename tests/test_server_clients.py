"""`reeldb serve` against real clients on 127.0.0.1: psql, psycopg 3 (text, binary,
server-side prepared), psycopg2, asyncpg; branches by database name; limits; a stream of
random and mutated messages that must not hurt other clients or the data."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import reeldb
from reeldb.demo import SCHEMA
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "video-gen"
    db = reeldb.connect(path)
    db.execute(SCHEMA)
    db.execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT, score FLOAT)")
    db.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(i, f"item {i}", i / 10) for i in range(20)])
    db.branch("experiment/x", checkout=False)
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=8, max_message=1 << 20)
    yield srv
    srv.stop()


def dsn(server, database: str = "video-gen") -> str:
    host, port = server.address
    return f"host={host} port={port} dbname={database} user=tester"


def psql_command(server) -> list[str]:
    """psql against the test server, unaligned, tuples only, no psqlrc."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (make test installs postgresql-client)")
    host, port = server.address
    return [psql, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "video-gen"]


def test_psql_runs_queries_and_reports_errors(server) -> None:
    base = psql_command(server)
    out = subprocess.run(base + ["-c", "SELECT id, name FROM items WHERE id < 3 ORDER BY id"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0|item", "0", "1|item", "1", "2|item", "2"]
    out = subprocess.run(base + ["-v", "ON_ERROR_STOP=1", "-c", "SELECT nope FROM items"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "nope" in out.stderr


def test_the_briefs_ingest_and_curation_over_psycopg(server) -> None:
    from reeldb.demo import CURATION

    rng = np.random.default_rng(0)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for i in range(3):
            conn.execute(
                """INSERT INTO generations (prompt, prompt_embedding, conditioning_image, output_video,
                model_version, cfg_scale, num_frames, fps, quality_score)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                [f"prompt {i}", str(rng.standard_normal(4096).astype(np.float32).tolist()),
                 b"\x89PNG" + bytes([i]) * 10, b"video" * 100, "seedance-v2", 7.5, 48, 24, 0.9])
        target = "[" + ",".join(["0.01"] * 4096) + "]"
        rows = conn.execute(CURATION.replace(":target_vec", "%(target_vec)s"), {"target_vec": target}).fetchall()
    assert len(rows) == 3
    assert all(isinstance(r[1], bytes) and r[1] == b"video" * 100 for r in rows)


def test_psycopg_text_binary_and_prepared(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        q = "SELECT id, name, score FROM items WHERE id = %s"
        assert conn.execute(q, [3]).fetchone() == (3, "item 3", 0.3)
        assert conn.execute(q, [4], binary=True).fetchone() == (4, "item 4", 0.4)
        for i in range(6):  # psycopg prepares server-side after a few runs
            assert conn.execute(q, [i], prepare=True).fetchone()[0] == i
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO items VALUES (%s, %s, %s)", [1, "dup", 0.0])


def test_transactions_and_failed_state(server) -> None:
    with psycopg.connect(dsn(server)) as conn:  # psycopg opens a transaction per block
        conn.execute("INSERT INTO items VALUES (%s, %s, %s)", [100, "in txn", 1.0])
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT nope FROM items")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM items WHERE id = 100").fetchone()[0] == 0
        conn.execute("INSERT INTO items VALUES (%s, %s, %s)", [101, "kept", 1.0])
        conn.commit()
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT name FROM items WHERE id = 101").fetchone() == ("kept",)
        conn.execute("DELETE FROM items WHERE id = 101")


def test_database_name_picks_the_branch(server) -> None:
    with psycopg.connect(dsn(server, "video-gen/experiment/x"), autocommit=True) as conn:
        conn.execute("INSERT INTO items VALUES (%s, %s, %s)", [500, "branch only", 0.0])
        assert conn.execute("SHOW reeldb.branch").fetchone() == ("experiment/x",)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM items WHERE id = 500").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(dsn(server, "video-gen/no-such-branch"))


def test_psycopg2(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("SELECT name, score FROM items WHERE id = %s", (5,))
        assert cur.fetchall() == [("item 5", 0.5)]
        cur.execute("UPDATE items SET score = %s WHERE id = %s", (0.55, 5))
        conn.commit()
        cur.execute("SELECT score FROM items WHERE id = 5")
        assert cur.fetchone() == (0.55,)
    finally:
        conn.close()


def test_asyncpg_strict_binary_protocol(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def main() -> None:
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="video-gen")
        try:
            row = await conn.fetchrow("SELECT id, name, score FROM items WHERE id = $1", 7)
            assert tuple(row) == (7, "item 7", 0.7)
            await conn.execute("INSERT INTO items (id, name, score) VALUES ($1, $2, $3)", 200, "async", 2.5)
            assert await conn.fetchval("SELECT score FROM items WHERE name = $1", "async") == 2.5
            stmt = await conn.prepare("SELECT count(*) FROM items WHERE score > $1")
            assert await stmt.fetchval(0.0) >= 19
            await conn.execute("DELETE FROM items WHERE id = $1", 200)
        finally:
            await conn.close()

    asyncio.run(main())


def test_connection_limit_and_oversized_messages_affect_one_client(server) -> None:
    conns = [psycopg.connect(dsn(server), autocommit=True) for _ in range(8 - len(server.server.clients))]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(dsn(server))
    finally:
        for c in conns:
            c.close()
    deadline = time.monotonic() + 10
    while len(server.server.clients) >= 7 and time.monotonic() < deadline:
        time.sleep(0.01)  # the server sees the closed connections go a moment later
    host, port = server.address
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(_startup())
        _read_until_ready(s)
        s.sendall(b"Q" + struct.pack("!i", 10 << 20))  # over the 1 MiB limit
        data = _read_all(s)
        assert b"54000" in data
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] >= 20


def _startup(database: str = "video-gen") -> bytes:
    body = struct.pack("!i", 196608) + b"user\0fuzz\0database\0" + database.encode() + b"\0\0"
    return struct.pack("!i", len(body) + 4) + body


def _read_until_ready(s: socket.socket) -> bytes:
    data = b""
    while b"Z\0\0\0\x05" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(s: socket.socket) -> bytes:
    data = b""
    s.settimeout(5)
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_random_and_mutated_messages_leave_the_server_and_data_intact(server) -> None:
    rng = random.Random(1)
    host, port = server.address
    valid = [b"Q" + struct.pack("!i", 4 + 9) + b"SELECT 1\0",
             b"P" + struct.pack("!i", 4 + 12) + b"\0SELECT 1\0\0\0",
             b"B" + struct.pack("!i", 4 + 10) + b"\0\0\0\0\0\0\0\0\0\0",
             b"E" + struct.pack("!i", 4 + 5) + b"\0\0\0\0\0", b"S\0\0\0\x04", b"H\0\0\0\x04"]
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        before = conn.execute("SELECT count(*), sum(score) FROM items").fetchone()
    for _ in range(30):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(_startup())
            _read_until_ready(s)
            stream = bytearray()
            for _ in range(100):
                m = bytearray(rng.choice(valid))
                for _ in range(rng.randrange(3)):
                    m[rng.randrange(len(m))] = rng.randrange(256)
                if rng.random() < 0.2:
                    m = bytearray(rng.randbytes(rng.randrange(1, 40)))
                stream += m
            try:
                s.sendall(bytes(stream))
                s.shutdown(socket.SHUT_WR)
                _read_all(s)
            except (ConnectionError, TimeoutError):
                pass
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(score) FROM items").fetchone() == before


def serve_process(tmp_path, *options: str) -> tuple[subprocess.Popen, str]:
    """`reeldb serve` on a new database in a child process, and its conninfo."""
    path = tmp_path / "db"
    reeldb.connect(path).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "reeldb", "serve", str(path), "--port", str(port), *options],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, f"host=127.0.0.1 port={port} dbname=db user=u"


def test_cli_serve_exits_when_idle(tmp_path) -> None:
    proc, conninfo = serve_process(tmp_path, "--idle-exit", "1")
    try:
        with _connect_when_up(conninfo) as c:
            assert c.execute("SELECT 41 + 1").fetchone() == (42,)
        assert proc.wait(timeout=30) == 0
        assert "serving" in proc.stderr.read()
    finally:
        proc.kill()


def test_cancel_request_stops_the_running_statement(tmp_path) -> None:
    """psycopg's cancel() blocks holding the GIL, so the server runs in its own process."""
    import threading

    proc, conninfo = serve_process(tmp_path)
    try:
        conn = _connect_when_up(conninfo)
        with conn:
            timer = threading.Timer(0.5, conn.cancel)
            timer.start()
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT count(*) FROM generate_series(1, 100000000000) AS g(x) WHERE x % 7 = 3")
            timer.join()
            assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection goes on
    finally:
        proc.kill()
        proc.wait()


def _connect_when_up(conninfo: str) -> psycopg.Connection:
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_socket_activation_serves_on_the_inherited_socket(tmp_path) -> None:
    """systemd passes the listening socket as fd 3 with LISTEN_FDS=1."""
    path = tmp_path / "db"
    reeldb.connect(path).close()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
            "from reeldb.cli import main; sys.exit(main(['serve', sys.argv[2], '--port', '1', '--idle-exit', '1']))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(listener.fileno()), str(path)],
                            pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True)
    listener.close()  # only the server holds it now
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} dbname=db user=u", autocommit=True,
                             connect_timeout=20) as c:
            assert c.execute("SELECT 2 * 21").fetchone() == (42,)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_copy_in_and_out_with_psycopg(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE clips (id INT, name TEXT, data BYTEA, emb VECTOR(2))")
        with conn.cursor().copy("COPY clips (id, name, data, emb) FROM STDIN") as cp:
            for i in range(500):
                cp.write_row((i, f"tab\there {i}", bytes([i % 256, 0]), f"[{i},0.5]"))
            cp.write_row((500, None, None, None))
        assert conn.execute("SELECT count(*), count(name), sum(id) FROM clips").fetchone() == (501, 500, 125250)
        assert conn.execute("SELECT name, data FROM clips WHERE id = 7").fetchone() == ("tab\there 7", b"\x07\x00")
        with conn.cursor().copy("COPY (SELECT id, name FROM clips WHERE id < 2 ORDER BY id) TO STDOUT "
                                "WITH (FORMAT csv, HEADER)") as cp:
            text = b"".join(bytes(chunk) for chunk in cp).decode()
        assert text == "id,name\n0,tab\there 0\n1,tab\there 1\n"
        conn.execute("CREATE TABLE notes (id INT, note TEXT)")
        with conn.cursor().copy("COPY notes FROM STDIN WITH (FORMAT csv)") as cp:
            cp.write(b'1,""\n2,\n3,"a,""b"""\n')  # quoted empty: a string; unquoted empty: NULL
        assert conn.execute("SELECT id, note FROM notes ORDER BY id").fetchall() == [
            (1, ""), (2, None), (3, 'a,"b"')]
        with conn.cursor().copy("COPY notes TO STDOUT WITH (FORMAT csv)") as cp:
            text = b"".join(bytes(chunk) for chunk in cp).decode()
        assert sorted(text.splitlines()) == ['1,""', "2,", '3,"a,""b"""']
        with pytest.raises(psycopg.errors.InvalidTextRepresentation), \
                conn.cursor().copy("COPY clips (id) FROM STDIN") as cp:
            cp.write(b"1\nnot a number\n")
        assert conn.execute("SELECT count(*) FROM clips").fetchone() == (501,)  # nothing of it written


def test_psql_backslash_copy(server) -> None:
    base = psql_command(server)
    subprocess.run(base + ["-c", "CREATE TABLE scores (id INT, score FLOAT)"], check=True, timeout=30)
    out = subprocess.run(base + ["-c", "\\copy scores FROM STDIN WITH (FORMAT csv)"], input="1,0.5\n2,0.75\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "COPY 2" in out.stdout, out.stderr
    out = subprocess.run(base + ["-c", "COPY scores TO STDOUT"], capture_output=True, text=True, timeout=30)
    assert sorted(out.stdout.splitlines()) == ["1\t0.5", "2\t0.75"]


def test_non_utf8_query_fails_alone_and_other_encodings_are_refused(server) -> None:
    host, port = server.address
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(_startup())
        _read_until_ready(s)
        body = b"SELECT '\xe9t\xe9'\0"  # Latin-1 bytes
        s.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
        assert b"22021" in _read_until_ready(s)
        body = b"SELECT 41 + 1\0"
        s.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
        assert b"42" in _read_until_ready(s)  # the connection goes on
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="MULE_INTERNAL and UTF8"):
            conn.execute("SET client_encoding TO 'MULE_INTERNAL'")  # LATIN1 and others are honoured since
        conn.execute("SET client_encoding TO 'UTF8'")


def test_show_max_connections_is_the_servers_own(server) -> None:
    """SHOW reports the limit the server was started with, not a stock 100, and no
    client may change it."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("8",)
        assert conn.execute("SELECT current_setting('max_connections')").fetchone() == ("8",)
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            conn.execute("SET max_connections = 1000")
        conn.execute("RESET ALL")
        assert conn.execute("SHOW max_connections").fetchone() == ("8",)
