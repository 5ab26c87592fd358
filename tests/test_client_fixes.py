"""Fixes found by running real Postgres clients' own suites against `reeldb serve`: every
error fails the open transaction, binary NUMERIC, DEALLOCATE, CREATE EXTENSION, array
input whitespace, table constraints, unknown databases, named cursors, vector text and
halfvec parameters. Each is checked with the client that found it, against a real server
on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "shop"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)")
    db.execute("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"item {i}") for i in range(20)])
    db.branch("exp", checkout=False)
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


def dsn(server, database: str = "shop") -> str:
    host, port = server.address
    return f"host={host} port={port} dbname={database} user=tester"


def reset_accounts(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM acct")
        conn.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")


def balances(server) -> list[tuple[int, int]]:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        return conn.execute("SELECT id, bal FROM acct ORDER BY id").fetchall()


def psql(server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    return subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "shop", *args],
                          input=stdin, capture_output=True, text=True, timeout=30)


# -- 1. every error fails the open transaction ------------------------------------------------
TRANSFER = ["BEGIN;", "UPDATE acct SET bal = bal - 50 WHERE id = 1;", "SELEC 1;",
            "UPDATE acct SET bal = bal + 50 WHERE id = 2;", "COMMIT;"]


def test_psql_syntax_error_inside_begin_rolls_the_transaction_back(server) -> None:
    reset_accounts(server)
    out = psql(server, stdin="\n".join(TRANSFER) + "\n")  # psql sends each statement on its own
    assert 'syntax error at or near "SELEC"' in out.stderr
    assert "current transaction is aborted" in out.stderr  # the second UPDATE: 25P02
    assert out.stdout.split()[-1] == "ROLLBACK"
    assert balances(server) == [(1, 100), (2, 100)]


def test_one_query_string_with_a_syntax_error_runs_nothing(server) -> None:
    reset_accounts(server)
    out = psql(server, "-c", " ".join(TRANSFER))
    assert out.returncode != 0 and "SELEC" in out.stderr
    assert balances(server) == [(1, 100), (2, 100)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg_syntax_error_fails_the_transaction(server, binary: bool) -> None:
    reset_accounts(server)
    with psycopg.connect(dsn(server)) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute("UPDATE acct SET bal = bal - %s WHERE id = 1", [50])  # extended protocol
        with pytest.raises(psycopg.errors.SyntaxError):
            cur.execute("SELEC %s", [1])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            cur.execute("UPDATE acct SET bal = bal + %s WHERE id = 2", [50])
        with pytest.raises(psycopg.errors.SyntaxError):
            cur.execute("SELEC 1")  # simple protocol, still failed
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.commit()  # COMMIT of a failed transaction is a ROLLBACK
    assert balances(server) == [(1, 100), (2, 100)]


class _Short:
    """A value psycopg sends as a 2-byte binary int4: the server's Bind fails."""


class _ShortInt4Dumper(psycopg.adapt.Dumper):
    format = psycopg.pq.Format.BINARY
    oid = 23

    def dump(self, obj: object) -> bytes:
        return b"\x00\x01"


def test_bind_error_fails_the_transaction(server) -> None:
    reset_accounts(server)
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("UPDATE acct SET bal = 0 WHERE id = 1")
        conn.adapters.register_dumper(_Short, _ShortInt4Dumper)
        with pytest.raises(psycopg.errors.InvalidBinaryRepresentation):
            conn.execute("SELECT %b", [_Short()])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        assert conn.execute("COMMIT").statusmessage == "ROLLBACK"
    assert balances(server) == [(1, 100), (2, 100)]


def test_psycopg2_syntax_error_fails_the_transaction(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    reset_accounts(server)
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("UPDATE acct SET bal = bal - 50 WHERE id = 1")
        with pytest.raises(psycopg2.errors.SyntaxError):
            cur.execute("SELEC 1")
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("UPDATE acct SET bal = bal + 50 WHERE id = 2")
        conn.commit()
    finally:
        conn.close()
    assert balances(server) == [(1, 100), (2, 100)]


def test_python_api_syntax_error_inside_begin(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)")
    db.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")
    db.execute("BEGIN")
    db.execute("UPDATE acct SET bal = bal - 50 WHERE id = 1")
    with pytest.raises(reeldb.errors.SyntaxError):
        db.execute("SELEC 1")
    with pytest.raises(reeldb.errors.InFailedSqlTransaction):
        db.execute("UPDATE acct SET bal = bal + 50 WHERE id = 2")
    db.execute("COMMIT")
    assert db.execute("SELECT bal FROM acct ORDER BY id").fetchall() == [(100,), (100,)]
    with pytest.raises(reeldb.errors.SyntaxError), db.transaction():
        db.execute("UPDATE acct SET bal = 0 WHERE id = 1")
        db.execute("SELEC 1")
    assert db.execute("SELECT bal FROM acct ORDER BY id").fetchall() == [(100,), (100,)]
    db.close()


def test_copy_aborted_by_the_client_fails_the_transaction(server) -> None:
    reset_accounts(server)
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("UPDATE acct SET bal = 0 WHERE id = 1")
        cur = conn.cursor()
        with pytest.raises(ValueError, match="boom"), cur.copy("COPY acct (id, bal) FROM STDIN") as copy:
            copy.write_row((3, 300))
            raise ValueError("boom")  # psycopg sends CopyFail, then raises this
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("INSERT INTO acct VALUES (4, 400)")
        conn.commit()
    assert balances(server) == [(1, 100), (2, 100)]


def test_copy_with_bad_data_fails_the_transaction(server) -> None:
    reset_accounts(server)
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("UPDATE acct SET bal = 0 WHERE id = 1")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation), \
                conn.cursor().copy("COPY acct (id, bal) FROM STDIN") as copy:
            copy.write(b"3\tnot a number\n")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.commit()
    assert balances(server) == [(1, 100), (2, 100)]


class _FailingFile:
    def read(self, size: int = -1) -> str:
        raise ValueError("stop")

    readline = read


def test_copy_fail_answers_the_clients_message(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    reset_accounts(server)
    conn = psycopg2.connect(dsn(server))
    try:
        conn.autocommit = True
        cur = conn.cursor()
        with pytest.raises(psycopg2.errors.QueryCanceled, match="COPY from stdin failed: .*stop"):
            cur.copy_expert("COPY acct FROM STDIN", _FailingFile())
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        conn.autocommit = False
        cur.execute("UPDATE acct SET bal = 0 WHERE id = 1")
        with pytest.raises(psycopg2.errors.QueryCanceled):
            cur.copy_expert("COPY acct FROM STDIN", _FailingFile())
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        conn.commit()
    finally:
        conn.close()
    assert balances(server) == [(1, 100), (2, 100)]


# -- 2. binary NUMERIC ---------------------------------------------------------------------
def test_binary_numeric_with_leading_zero_decimals(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS price (p NUMERIC(12, 8))")
        conn.execute("DELETE FROM price")
        conn.execute("INSERT INTO price VALUES (0.05), (0.0012), (0.00012345), (-0.5), (0)")
        text = [r[0] for r in conn.execute("SELECT p FROM price ORDER BY p").fetchall()]
        binary = [r[0] for r in conn.cursor(binary=True).execute("SELECT p FROM price ORDER BY p").fetchall()]
    assert binary == text
    assert [str(v) for v in binary] == [str(v) for v in text]
    assert decimal.Decimal("0.00012345") in binary
    host, port = server.address

    async def read() -> list[decimal.Decimal]:
        c = await asyncpg.connect(host=host, port=port, user="tester", database="shop")
        try:
            return [r[0] for r in await c.fetch("SELECT p FROM price ORDER BY p")]
        finally:
            await c.close()

    got = asyncio.run(read())
    assert [str(v) for v in got] == [str(v) for v in text]


_NUMERICS = st.decimals(min_value=decimal.Decimal("-1e25"), max_value=decimal.Decimal("1e25"),
                        allow_nan=False, allow_infinity=False, places=12) | st.sampled_from(
    [decimal.Decimal(x) for x in ("0", "-0", "1E-12", "-1E-12", "9999.9999", "10000", "0.0001", "99999999999999999999999999")])


@pytest.fixture(scope="module")
def numeric_clients(server):
    """A psycopg connection and an asyncpg one (with its event loop), reused by every example."""
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address
    loop = asyncio.new_event_loop()
    aconn = loop.run_until_complete(asyncpg.connect(host=host, port=port, user="tester", database="shop"))
    conn = psycopg.connect(dsn(server), autocommit=True)
    yield conn, aconn, loop
    conn.close()
    loop.run_until_complete(aconn.close())
    loop.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_NUMERICS, scale=st.integers(0, 12))
@example(value=decimal.Decimal("-12345678901234567890123456.000000000001"), scale=12)  # 38 digits
@example(value=decimal.Decimal("0.000000000001"), scale=12)
def test_numeric_round_trips_through_binary_clients(numeric_clients, value: decimal.Decimal, scale: int) -> None:
    conn, aconn, loop = numeric_clients
    q = f"SELECT CAST(%s AS NUMERIC(38, {scale}))"
    as_text = conn.execute(q, [str(value)]).fetchone()[0]  # the text format is the reference
    with decimal.localcontext(decimal.Context(prec=60)):
        assert as_text == value.quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP)
    sent_binary = conn.cursor(binary=True).execute(q, [value]).fetchone()[0]  # binary in and out
    assert str(sent_binary) == str(as_text)
    from_asyncpg = loop.run_until_complete(aconn.fetchval(f"SELECT CAST($1 AS NUMERIC(38, {scale}))", value))
    assert from_asyncpg == as_text
    if scale:  # asyncpg writes a whole number with trailing zeros as 1E+4, as it does from Postgres
        assert str(from_asyncpg) == str(as_text)


# -- 3. DEALLOCATE and pg_prepared_statements ------------------------------------------------
def test_psycopg_prepares_then_deallocates_after_drop_and_rollback(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS prep (id INT)")
        conn.commit()
        for i in range(10):  # psycopg prepares it server-side after 5 runs
            assert conn.execute("SELECT count(*) + %s FROM items", [i]).fetchone() == (20 + i,)
        listed = conn.execute("SELECT name, statement, parameter_types, from_sql FROM pg_prepared_statements").fetchall()
        assert len(listed) == 1 and "count(*)" in listed[0][1] and listed[0][3] is False
        conn.execute("DROP TABLE prep")  # psycopg follows it with DEALLOCATE ALL
        conn.commit()
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        for i in range(10):  # prepared again under the same name
            assert conn.execute("SELECT count(*) + %s FROM items", [i]).fetchone() == (20 + i,)
        conn.rollback()  # DEALLOCATE ALL again
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (20,)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'prep'").fetchone() == (0,)


def test_deallocate_by_name_and_unknown(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.pgconn.prepare(b"mine", b"SELECT 1")
        assert conn.execute("SELECT name FROM pg_prepared_statements").fetchall() == [("mine",)]
        assert conn.execute("DEALLOCATE PREPARE mine").statusmessage == "DEALLOCATE"
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InvalidSqlStatementName, match='"mine" does not exist'):
            conn.execute("DEALLOCATE mine")
        assert conn.execute("DEALLOCATE ALL").statusmessage == "DEALLOCATE ALL"


def test_sqlalchemy_begin_block_surfaces_the_users_exception(server) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://tester@{host}:{port}/shop")
    try:
        for _ in range(3):
            with pytest.raises(ValueError, match="mine"), engine.begin() as conn:
                for i in range(8):  # prepared by psycopg along the way
                    conn.execute(sqlalchemy.text("SELECT count(*) FROM items WHERE id > :i"), {"i": i})
                conn.execute(sqlalchemy.text("INSERT INTO acct VALUES (99, 0)"))
                raise ValueError("mine")
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM acct WHERE id = 99")).scalar() == 0
    finally:
        engine.dispose()


# -- 4. CREATE EXTENSION ----------------------------------------------------------------------
def test_create_extension_vector_as_pgvector_python_does(server) -> None:
    from pgvector.psycopg import register_vector

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert conn.execute("CREATE EXTENSION IF NOT EXISTS vector").statusmessage == "CREATE EXTENSION"
        assert notices == ['extension "vector" already exists, skipping']
        assert conn.execute("CREATE EXTENSION vector").statusmessage == "CREATE EXTENSION"
        register_vector(conn)
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchall() == [("vector",)]
        got = conn.execute("SELECT %s::vector", [np.array([1.5, 2, 3], dtype=np.float32)]).fetchone()[0]
        assert got.to_list() == [1.5, 2, 3]


@pytest.mark.parametrize("name", ["postgis", "pg_trgm"])  # citext and hstore: tests/test_extensions.py
def test_other_extensions_are_refused_by_name(server, name: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM pg_extension").fetchone()
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=f'extension "{name}" is not available'):
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
        assert conn.execute("SELECT count(*) FROM pg_extension").fetchone() == before


def test_drop_extension(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='"vector" is built into reeldb'):
            conn.execute("DROP EXTENSION vector")
        with pytest.raises(psycopg.errors.UndefinedObject, match='extension "citext" does not exist'):
            conn.execute("DROP EXTENSION citext")
        conn.execute("DROP EXTENSION IF EXISTS citext")
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)


# -- 5. array input whitespace ------------------------------------------------------------------
_ODD = ["a\x1c", "\x1db", "\x1e", "c\x1f", " padded ", "tab\tin", "line\nbreak", "\u00a0nbsp\u2003", "NULL", "", "q\"b\\s"]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_text_array_elements_keep_control_characters_psycopg(server, binary: bool) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        assert cur.execute("SELECT %s::text[]", [_ODD]).fetchone()[0] == _ODD


def test_text_array_elements_keep_control_characters_psycopg2_and_asyncpg(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    asyncpg = pytest.importorskip("asyncpg")
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor()
        cur.execute("SELECT %s::text[]", (_ODD,))
        assert cur.fetchone()[0] == _ODD
    finally:
        conn.close()
    host, port = server.address

    async def main() -> list[str]:
        c = await asyncpg.connect(host=host, port=port, user="tester", database="shop")
        try:
            return await c.fetchval("SELECT $1::text[]", _ODD)
        finally:
            await c.close()

    assert asyncio.run(main()) == _ODD


def test_array_literal_whitespace_in_sql(server) -> None:
    out = psql(server, "-c", "SELECT E'{ a , \"b \" ,\\x1cc\\x1f,\\x1d}'::text[] = ARRAY['a', 'b ', E'\\x1cc\\x1f', E'\\x1d']")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "t"


# -- 6. table constraints reeldb does not enforce ------------------------------------------------
@pytest.mark.parametrize(("ddl", "kind"), [
    ("CREATE TABLE bad (id INT PRIMARY KEY, acct INT, EXCLUDE (acct WITH =))", "EXCLUDE"),
    ("CREATE TABLE bad (id INT, UNIQUE (id), CHECK (id > 0), EXCLUDE (id WITH =))", "EXCLUDE"),
])
def test_unenforced_constraints_are_refused_by_kind(server, ddl: str, kind: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=f"^{kind} constraints are not supported"):
            conn.execute(ddl)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'bad'").fetchone() == (0,)


def test_column_constraint_refusal_names_the_column_and_constraint(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=r'\(constraint "pos", column bal\)'):
            conn.execute("CREATE TABLE bad (bal INT CONSTRAINT pos REFERENCES acct (id) ON DELETE CASCADE)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match=r"ON DELETE SET NULL .*\(column bal2\)"):
            conn.execute("ALTER TABLE acct ADD COLUMN bal2 INT REFERENCES acct (id) ON DELETE SET NULL")
        cols = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'acct' AND table_schema = 'public'").fetchone()
        assert cols == (2,)
        conn.execute("CREATE TABLE good (id INT, name TEXT, PRIMARY KEY (id), UNIQUE (name))")
        conn.execute("INSERT INTO good VALUES (1, 'a')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO good VALUES (2, 'a')")
        conn.execute("DROP TABLE good")


# -- 7. unknown database names ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["nosuchdb", "postgres", "shop2", "SHOP", "/exp", "tester"])
def test_unknown_database_is_refused(server, name: str) -> None:
    with pytest.raises(psycopg.OperationalError, match=f'database "{name}" does not exist'):
        psycopg.connect(dsn(server, name))


def test_documented_database_names_connect(server) -> None:
    with psycopg.connect(dsn(server, "shop"), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("shop",)
    with psycopg.connect(dsn(server, "shop/exp"), autocommit=True) as conn:
        assert conn.execute("SHOW reeldb.branch").fetchone() == ("exp",)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(dsn(server, "shop/no-such-branch"))


def test_unknown_database_with_psql_and_asyncpg(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    exe = shutil.which("psql")
    if exe is not None:
        host, port = server.address
        out = subprocess.run([exe, "-X", "-h", host, "-p", str(port), "-U", "tester", "-d", "nosuchdb", "-c", "SELECT 1"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and 'database "nosuchdb" does not exist' in out.stderr
    host, port = server.address

    async def main() -> None:
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await asyncpg.connect(host=host, port=port, user="tester", database="nosuchdb")

    asyncio.run(main())


# -- 8. named (server-side) cursors -------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg_named_cursor(server, binary: bool) -> None:
    with psycopg.connect(dsn(server)) as conn:
        with conn.cursor(name="foo", binary=binary) as cur:
            cur.execute("SELECT id, name FROM items WHERE id < %s ORDER BY id", [10])
            assert [d.name for d in cur.description] == ["id", "name"]
            assert cur.fetchmany(3) == [(0, "item 0"), (1, "item 1"), (2, "item 2")]
            assert cur.fetchone() == (3, "item 3")
            assert list(cur) == [(i, f"item {i}") for i in range(4, 10)]
            listed = conn.execute("SELECT name FROM pg_cursors").fetchall()
            assert listed == [("foo",)]
        assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
        with conn.cursor(name="bar") as cur:
            cur.itersize = 4
            cur.execute("SELECT id FROM items ORDER BY id")
            assert [r[0] for r in cur] == list(range(20))
        with conn.cursor(name="held", withhold=True) as cur:
            cur.execute("SELECT id FROM items ORDER BY id")
            conn.commit()
            assert cur.fetchall() == [(i,) for i in range(20)]


def _msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _messages(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from("!i", data, i + 1)
        out.append((data[i:i + 1], data[i + 5:i + 1 + n]))
        i += 1 + n
    return out


def _exchange(sock: socket.socket, payload: bytes) -> list[tuple[bytes, bytes]]:
    """Send, then read up to ReadyForQuery."""
    sock.sendall(payload)
    data = b""
    while not (len(data) >= 6 and data[-6:-1] == b"Z\0\0\0\x05"):
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        data += chunk
    return _messages(data)


@contextlib.contextmanager
def _logged_in(server) -> Iterator[socket.socket]:
    """A raw socket past the startup packet, at the first ReadyForQuery."""
    host, port = server.address
    with socket.create_connection((host, port), timeout=10) as sock:
        body = struct.pack("!i", 196608) + b"user\0tester\0database\0shop\0\0"
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        data = b""
        while b"Z\0\0\0\x05I" not in data:
            data += sock.recv(65536)
        yield sock


def test_declared_cursor_executed_as_a_portal_with_a_row_limit(server) -> None:
    """A DECLAREd cursor is a portal: Describe it, Execute it 8 rows at a time, Close it."""
    with _logged_in(server) as sock:
        _exchange(sock, _msg(b"Q", b"BEGIN; DECLARE c CURSOR FOR SELECT id FROM items ORDER BY id\0"))
        execute = _msg(b"E", b"c\0" + struct.pack("!i", 8))
        got = _exchange(sock, _msg(b"D", b"Pc\0") + execute + execute + execute + _msg(b"S"))
        kinds = [k for k, _ in got]
        assert kinds == [b"T"] + [b"D"] * 8 + [b"s"] + [b"D"] * 8 + [b"s"] + [b"D"] * 4 + [b"C", b"Z"]
        ids = [int(b[6:].decode()) for k, b in got if k == b"D"]
        assert ids == list(range(20))
        assert got[-2][1] == b"SELECT 4\0" and got[-1][1] == b"T"
        got = _exchange(sock, _msg(b"C", b"Pc\0") + _msg(b"S"))
        assert [k for k, _ in got] == [b"3", b"Z"]
        got = _exchange(sock, _msg(b"Q", b"FETCH 1 FROM c\0"))
        assert got[0][0] == b"E" and b"34000" in got[0][1]  # closed: cursor "c" does not exist
        _exchange(sock, _msg(b"Q", b"ROLLBACK\0"))
        sock.sendall(_msg(b"X"))


def test_set_client_encoding_is_reported_once(server) -> None:
    """One ParameterStatus per change, just before ReadyForQuery, as PostgreSQL sends it."""
    with _logged_in(server) as sock:
        got = _exchange(sock, _msg(b"Q", b"SET client_encoding TO 'LATIN1'\0"))
        assert [k for k, _ in got] == [b"C", b"S", b"Z"]
        assert got[1][1] == b"client_encoding\0LATIN1\0"
        got = _exchange(sock, _msg(b"Q", b"SET application_name = 'a'; RESET client_encoding\0"))
        statuses = sorted(b for k, b in got if k == b"S")
        assert statuses == [b"application_name\0a\0", b"client_encoding\0UTF8\0"]
        sock.sendall(_msg(b"X"))


def test_pg_stat_activity_shows_a_query_in_the_clients_encoding(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as latin1, \
            psycopg.connect(dsn(server), autocommit=True) as watcher:
        latin1.execute("SET client_encoding TO 'LATIN1'")
        assert latin1.execute("SELECT 'café' AS x").fetchone() == ("café",)
        pid = latin1.info.backend_pid
        got = watcher.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        assert got == ("SELECT 'café' AS x",)


def test_a_prepare_runs_no_versioning_command(server) -> None:
    """A Describe runs nothing, as in PostgreSQL: asyncpg prepares every statement, and
    preparing ``SELECT reeldb_branch('x')`` created the branch before it was executed."""
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def go() -> tuple[bool, bool, list]:
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="shop")
        try:
            statement = await conn.prepare("SELECT reeldb_branch('prepared_only', false)")
            exists = "SELECT count(*) FROM reeldb_branches() WHERE name = 'prepared_only'"
            before = await conn.fetchval(exists)
            got = await statement.fetch()
            return before, await conn.fetchval(exists), got
        finally:
            await conn.close()

    before, after, got = asyncio.run(go())
    assert (before, after, len(got)) == (0, 1, 1)


# -- 9. vector text and halfvec binary parameters ------------------------------------------------
def test_vector_text_is_pgvectors(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS emb (id INT, e VECTOR(4), h HALFVEC(2))")
        conn.execute("DELETE FROM emb")
        conn.execute("INSERT INTO emb VALUES (1, '[1.5,2,-0,1e6]', '[0.5,0.1]')")
        assert conn.execute("SELECT '[1.5,2,3]'::vector::text").fetchone() == ("[1.5,2,3]",)
        row = conn.execute("SELECT e::text, CAST(e AS varchar), h::text, e FROM emb").fetchone()
        assert row[:3] == ("[1.5,2,-0,1e+06]", "[1.5,2,-0,1e+06]", "[0.5,0.099975586]")
        assert row[3] == "[1.5,2,-0,1e+06]"  # the wire's text format: the same
        assert conn.execute("SELECT 'plain'::text, 1e6::float4, 123456792::float8").fetchone() == (
            "plain", 1e6, 123456792.0)
    out = psql(server, "-c", "SELECT 1e6::float4, 0.1::float4, 1e15::float8, 123456792::float8, '[1e-5,100000]'::vector")
    assert out.stdout.split() == ["1e+06|0.1|1e+15|123456792|[1e-05,100000]"]


def test_halfvec_binary_parameters(server) -> None:
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS hv (id INT, h HALFVEC(3))")
        conn.execute("DELETE FROM hv")
        value = HalfVector([0.5, -1.25, 3])
        conn.cursor(binary=True).execute("INSERT INTO hv VALUES (%s, %b)", [1, value])
        conn.execute("INSERT INTO hv VALUES (%s, %t)", [2, value])
        rows = conn.execute("SELECT id, h::text FROM hv ORDER BY id").fetchall()
        assert rows == [(1, "[0.5,-1.25,3]"), (2, "[0.5,-1.25,3]")]
        _register_bad_half(conn)
        with pytest.raises(psycopg.errors.InvalidBinaryRepresentation, match="halfvec length"):
            conn.execute("INSERT INTO hv VALUES (3, %b)", [_BadHalf()])
        assert conn.execute("SELECT count(*) FROM hv").fetchone() == (2,)


class _BadHalf:
    """A halfvec whose header says 3 values but carries 2."""


def _register_bad_half(conn: psycopg.Connection) -> None:
    info_oid = conn.execute("SELECT oid FROM pg_type WHERE typname = 'halfvec'").fetchone()[0]

    class Dumper(psycopg.adapt.Dumper):
        format = psycopg.pq.Format.BINARY
        oid = info_oid

        def dump(self, obj: object) -> bytes:
            return struct.pack("!hh", 3, 0) + np.array([1, 2], dtype=">f2").tobytes()

    conn.adapters.register_dumper(_BadHalf, Dumper)


def test_discard_all_leaves_nothing_for_the_pools_next_user(server) -> None:
    """psycopg2's connection.reset() and pgbouncer send DISCARD ALL between users."""
    import psycopg2

    conn = psycopg2.connect(dsn(server))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET application_name = 'first user'")
    cur.execute("CREATE TEMPORARY TABLE scratch (a INT)")
    cur.execute("LISTEN jobs")
    cur.execute("SELECT pg_advisory_lock(4242)")
    cur.execute("CREATE SEQUENCE IF NOT EXISTS discard_seq")
    cur.execute("SELECT nextval('discard_seq')")
    cur.execute("BEGIN")
    cur.execute("DECLARE c CURSOR WITH HOLD FOR SELECT id FROM items")
    cur.execute("COMMIT")
    with pytest.raises(psycopg2.errors.ActiveSqlTransaction):  # 25001, as PostgreSQL
        cur.execute("BEGIN; DISCARD ALL")
    cur.execute("ROLLBACK")
    conn.autocommit = False
    conn.reset()  # DISCARD ALL
    cur = conn.cursor()
    cur.execute("SHOW application_name")
    assert cur.fetchone() == ("",)
    with pytest.raises(psycopg2.errors.UndefinedTable):
        cur.execute("SELECT * FROM scratch")
    conn.rollback()
    with pytest.raises(psycopg2.errors.InvalidCursorName):
        cur.execute("FETCH 1 FROM c")
    conn.rollback()
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState):  # currval forgotten
        cur.execute("SELECT currval('discard_seq')")
    conn.rollback()
    with psycopg.connect(dsn(server), autocommit=True) as other:  # the advisory lock was let go
        assert other.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)
    cur.execute("DISCARD PLANS")
    cur.execute("DISCARD TEMP")
    assert cur.statusmessage == "DISCARD TEMP"
    cur.execute("DISCARD SEQUENCES")
    conn.close()
    with psycopg.connect(dsn(server), autocommit=True) as other:  # the rows are all still there
        assert other.execute("SELECT count(*) FROM items").fetchone() == (20,)


# -- one batch, one transaction (PostgreSQL's implicit transactions) -----------------------------


def test_executemany_in_autocommit_is_all_or_nothing(server) -> None:
    """psycopg 3 sends every row's Execute before one Sync: PostgreSQL runs them as one
    transaction, so a failing row leaves none of the batch behind."""
    reset_accounts(server)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.cursor().executemany("INSERT INTO acct VALUES (%s, %s)", [(3, 1), (4, 1), (1, 1), (5, 1)])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        conn.cursor().executemany("INSERT INTO acct VALUES (%s, %s)", [(3, 1), (4, 1)])
    assert balances(server) == [(1, 100), (2, 100), (3, 1), (4, 1)]


def test_a_query_string_of_several_statements_is_one_transaction(server) -> None:
    reset_accounts(server)
    out = psql(server, "-c", "UPDATE acct SET bal = bal - 50 WHERE id = 1; "
                             "UPDATE acct SET bal = bal + 50 WHERE id = 2; SELECT 1/0")
    assert out.returncode != 0 and "division by zero" in out.stderr
    assert balances(server) == [(1, 100), (2, 100)]  # the two UPDATEs rolled back with it
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        # COMMIT inside the string ends the batch's transaction, with PostgreSQL's warning
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("UPDATE acct SET bal = 0 WHERE id = 1; COMMIT; UPDATE acct SET bal = 0 WHERE id = 2; "
                         "SELECT 1/0", prepare=False)
        assert notices == ["there is no transaction in progress"]
        # BEGIN inside it makes the block explicit: it stays open after the string
        conn.pgconn.exec_(b"UPDATE acct SET bal = 7 WHERE id = 2; BEGIN; UPDATE acct SET bal = 8 WHERE id = 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.execute("ROLLBACK")
        # SAVEPOINT needs a real transaction block, as in PostgreSQL
        with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
            conn.execute("SELECT 1; SAVEPOINT s", prepare=False)
    assert balances(server) == [(1, 0), (2, 100)]


def test_statements_that_cannot_run_in_a_block_still_run_alone(server) -> None:
    """A merge, a branch switch or VACUUM sent with the extended protocol in autocommit:
    their batch's transaction has changed nothing, so it steps aside."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("SELECT reeldb_branch(%s)", ["implicit-test"])
        assert ("implicit-test",) in conn.execute("SELECT name FROM reeldb_branches()").fetchall()
        conn.execute("VACUUM")
        conn.execute("DISCARD ALL")
