"""What Postgres tools read about a reeldb database over the wire: psql's backslash
commands, SQLAlchemy 2's reflection, pgvector-python's type registration, a BI tool's
version probe; plus settings, the statement timeout and savepoints."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "video-gen"
    db = reeldb.connect(path)
    db.execute("""CREATE TABLE generations (
        id BIGSERIAL PRIMARY KEY, prompt TEXT NOT NULL UNIQUE, model VARCHAR(32) DEFAULT 'v1',
        score REAL, price NUMERIC(10, 2), embedding VECTOR(3), meta JSONB, clip VIDEO,
        latent TENSOR(float16, 4, 8), created_at TIMESTAMPTZ DEFAULT now())""")
    db.execute("INSERT INTO generations (prompt, score, embedding) VALUES ('a cat', 0.5, '[1,2,3]'), "
               "('a dog', 0.9, '[3,2,1]')")
    db.execute("CREATE TABLE prefs (a INT, b TEXT)")
    db.execute("CREATE INDEX ON generations USING hnsw (embedding vector_cosine_ops) WITH (m = 8)")
    db.branch("experiment/x", checkout=False)
    db.close()
    srv = BackgroundServer(str(path), port=0)
    yield srv
    srv.stop()


def dsn(server, database: str = "video-gen") -> str:
    host, port = server.address
    return f"host={host} port={port} dbname={database} user=tester"


def psql(server, command: str) -> str:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed (make test installs postgresql-client)")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port), "-U", "tester",
                          "-d", "video-gen", "-c", command], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return out.stdout


def test_psql_lists_databases_tables_schemas_and_indexes(server) -> None:
    out = psql(server, r"\l")
    assert "video-gen " in out and "video-gen/experiment/x" in out and "UTF8" in out
    out = psql(server, r"\dt")
    assert "public | generations | table | tester" in out and "public | prefs       | table" in out
    assert "(2 rows)" in out
    out = psql(server, r"\dn")
    assert "experiment/x" in out and " main " in out and " public " in out
    out = psql(server, r"\di")
    assert "generations_pkey" in out and "generations_prompt_key" in out and "| generations" in out
    assert "generations_embedding_idx" in out
    out = psql(server, r'\dt "experiment/x".*')
    assert "experiment/x | generations | table" in out


def test_psql_describes_a_table_and_an_index(server) -> None:
    out = psql(server, r"\d generations")
    lines = {ln.split("|")[0].strip(): [c.strip() for c in ln.split("|")[1:]] for ln in out.splitlines() if "|" in ln}
    assert lines["id"] == ["bigint", "", "not null", "nextval('generations_id_seq'::regclass)"]
    assert lines["prompt"][:3] == ["text", "", "not null"]
    assert lines["model"] == ["character varying(32)", "", "", "'v1'"]
    assert lines["price"][0] == "numeric(10,2)"
    assert lines["embedding"][0] == "vector(3)"
    assert lines["meta"][0] == "jsonb"
    assert lines["clip"][0] == "video"
    assert lines["latent"][0] == "tensor(float16, 4, 8)"
    assert lines["created_at"] == ["timestamp with time zone", "", "", "now()"]
    assert '"generations_pkey" PRIMARY KEY, btree (id)' in out
    assert '"generations_prompt_key" UNIQUE CONSTRAINT, btree (prompt)' in out
    assert "\"generations_embedding_idx\" hnsw (embedding vector_cosine_ops) WITH (m='8')" in out  # as given
    out = psql(server, r"\d generations_pkey")
    assert "primary key, btree, for table \"public.generations\"" in out
    out = psql(server, r'\d "experiment/x".prefs')
    assert 'Table "experiment/x.prefs"' in out and "integer" in out


def test_sqlalchemy_reflects_tables_columns_and_keys(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("pgvector.sqlalchemy")  # registers the vector type with the dialect
    host, port = server.address
    for driver in ("psycopg", "psycopg2"):
        engine = sa.create_engine(f"postgresql+{driver}://tester@{host}:{port}/video-gen")
        try:
            insp = sa.inspect(engine)
            assert insp.get_table_names() == ["generations", "prefs"]
            assert {"public", "main", "experiment/x"} <= set(insp.get_schema_names())
            cols = {c["name"]: c for c in insp.get_columns("generations")}
            assert isinstance(cols["id"]["type"], sa.BigInteger) and cols["id"]["autoincrement"] is True
            assert cols["prompt"]["nullable"] is False
            assert isinstance(cols["model"]["type"], sa.String) and cols["model"]["type"].length == 32
            assert cols["price"]["type"].precision == 10 and cols["price"]["type"].scale == 2
            assert type(cols["embedding"]["type"]).__name__.upper() == "VECTOR"
            assert insp.get_pk_constraint("generations")["constrained_columns"] == ["id"]
            assert insp.get_unique_constraints("generations")[0]["column_names"] == ["prompt"]
            assert insp.has_table("prefs") and not insp.has_table("nope")
            table = sa.Table("generations", sa.MetaData(), autoload_with=engine)
            with engine.connect() as conn:
                rows = conn.execute(sa.select(table.c.prompt).where(table.c.score > 0.6)).fetchall()
            assert rows == [("a dog",)]
        finally:
            engine.dispose()


def test_pgvector_register_vector(server) -> None:
    pgv = pytest.importorskip("pgvector.psycopg")
    pgv2 = pytest.importorskip("pgvector.psycopg2")
    import psycopg2

    q = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        pgv.register_vector(conn)
        for binary in (False, True):
            row = conn.execute("SELECT prompt, embedding FROM generations ORDER BY embedding <-> %s LIMIT 1",
                               (q,), binary=binary).fetchone()
            assert row[0] == "a cat" and np.array_equal(row[1].to_numpy(), q)
    conn2 = psycopg2.connect(dsn(server))
    try:
        pgv2.register_vector(conn2)
        cur = conn2.cursor()
        cur.execute("SELECT embedding FROM generations ORDER BY embedding <-> %s LIMIT 1", (q[::-1].copy(),))
        assert np.array_equal(cur.fetchone()[0].to_numpy(), q[::-1])
    finally:
        conn2.close()


def test_asyncpg_reads_vectors_with_and_without_pgvector(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    pgva = pytest.importorskip("pgvector.asyncpg")
    import asyncio

    host, port = server.address

    async def main() -> tuple:
        conn = await asyncpg.connect(host=host, port=port, database="video-gen", user="tester")
        try:
            plain = await conn.fetchval("SELECT embedding FROM generations WHERE prompt = 'a cat'")
            await pgva.register_vector(conn)  # asyncpg's own type introspection, then a codec
            q = np.array([3.0, 2.0, 1.0], dtype=np.float32)
            row = await conn.fetchrow("SELECT prompt, embedding FROM generations ORDER BY embedding <-> $1 LIMIT 1", q)
            kinds = await conn.fetch("SELECT typname, typtype FROM pg_type WHERE typname IN ('vector', 'int4') "
                                     "ORDER BY 1")
            return plain, row, kinds
        finally:
            await conn.close()

    plain, row, kinds = asyncio.run(main())
    assert plain == "[1,2,3]"
    assert row["prompt"] == "a dog" and np.array_equal(row["embedding"].to_numpy(), [3.0, 2.0, 1.0])
    assert [tuple(k) for k in kinds] == [("int4", b"b"), ("vector", b"b")]  # "char" is bytes in asyncpg


def test_bi_probes_and_settings(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        version, num, db, user, schema = conn.execute(
            "SELECT version(), current_setting('server_version_num'), current_database(), current_user, "
            "current_schema()").fetchone()
        assert version.startswith("PostgreSQL 16.4 (reeldb") and num == "160004"
        assert (db, user, schema) == ("video-gen", "tester", "public")
        assert conn.execute("SHOW transaction isolation level").fetchone() == ("repeatable read",)
        assert conn.execute("SELECT current_setting('nope', true)").fetchone() == (None,)
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT current_setting('nope')")
        conn.execute("SET application_name = 'dash'")
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("dash",)
        cols = conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = 'prefs' ORDER BY ordinal_position"
                            ).fetchall()
        assert cols == [("prefs", "a", "integer"), ("prefs", "b", "text")]
        assert conn.execute("SELECT 'generations'::regclass::oid = "
                            "(SELECT oid FROM pg_class WHERE relname = 'generations' "
                            "AND relnamespace = 'public'::regnamespace::oid)").fetchone() == (True,)
        assert conn.execute("SELECT relnamespace::regnamespace::text, oid::regclass::text FROM pg_class "
                            "WHERE oid = 'generations'::regclass").fetchone() == ("public", "generations")
        assert conn.execute("SELECT count(*), 1 + 1, upper('x')").description[0].name == "count"


def test_statement_timeout_cancels_with_57014(tmp_path) -> None:
    path = tmp_path / "video-gen"  # the database name clients give
    reeldb.connect(path).close()
    srv = BackgroundServer(str(path), port=0, statement_timeout_ms=300)
    slow = "SELECT count(*) FROM generate_series(1, 100000000000) a, generate_series(1, 10) b WHERE a % 7 = b"
    try:
        with psycopg.connect(dsn(srv), autocommit=True) as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                conn.execute(slow)
            assert conn.execute("SELECT 1").fetchone() == (1,)  # the session goes on
            conn.execute("SET statement_timeout = '50ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(slow)
            conn.execute("SET statement_timeout = 0")
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                conn.execute("SET statement_timeout = 'soon'")
    finally:
        srv.stop()


def test_savepoints_over_the_wire(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS sp (id INT PRIMARY KEY)")
        conn.commit()
        with conn.transaction():
            conn.execute("INSERT INTO sp VALUES (1)")
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():  # a savepoint
                conn.execute("INSERT INTO sp VALUES (2)")
                conn.execute("INSERT INTO sp VALUES (1)")
            conn.execute("INSERT INTO sp VALUES (3)")
        assert conn.execute("SELECT id FROM sp ORDER BY id").fetchall() == [(1,), (3,)]
        conn.commit()
        with pytest.raises(psycopg.errors.InvalidSavepointSpecification):
            conn.execute("ROLLBACK TO SAVEPOINT nope")
        conn.rollback()


def test_listen_notify_between_clients(server) -> None:
    import select

    psycopg2 = pytest.importorskip("psycopg2")
    listener = psycopg2.connect(dsn(server))
    listener.autocommit = True
    sender = psycopg2.connect(dsn(server))
    try:
        listener.cursor().execute("LISTEN jobs")
        cur = sender.cursor()
        cur.execute("NOTIFY jobs, 'one'")
        cur.execute("NOTIFY jobs, 'one'")  # the same, in one transaction: sent once
        cur.execute("SELECT pg_notify('jobs', %s)", ("two",))
        cur.execute("NOTIFY elsewhere, 'x'")
        listener.poll()
        assert listener.notifies == []  # nothing before COMMIT
        sender.commit()
        deadline = time.monotonic() + 10
        waiter = select.poll()  # not select(): the suite may hold more than 1024 descriptors
        waiter.register(listener.fileno(), select.POLLIN)
        while len(listener.notifies) < 2 and time.monotonic() < deadline:
            waiter.poll(1000)  # pushed while the listener is idle
            listener.poll()
        assert [(n.channel, n.payload) for n in listener.notifies] == [("jobs", "one"), ("jobs", "two")]
        cur.execute("NOTIFY jobs, 'dropped'")
        sender.rollback()
        listener.cursor().execute("UNLISTEN *")
        cur.execute("NOTIFY jobs, 'after unlisten'")
        sender.commit()
        listener.cursor().execute("SELECT 1")
        assert len(listener.notifies) == 2
    finally:
        listener.close()
        sender.close()
