"""Schemas, enum types, sequences, identity columns and comments: what Postgres clients
and ORMs create, persisted in the database and versioned with branches like tables.
Checked from the Python API and over the wire (psycopg 3, SQLAlchemy, psql) against a
real ``reeldb serve``, with PostgreSQL 16's answers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import reeldb
from reeldb.server.server import BackgroundServer
from reeldb.sql.rights import Rights

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddl") / "objs"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE base (id INT)")
    db.branch("exp", checkout=False)
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=objs user=tester"


def connect(server):
    return psycopg.connect(dsn(server), autocommit=True)


def psql(server, sql: str) -> subprocess.CompletedProcess:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    return subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "objs"],
                          input=sql, capture_output=True, text=True, timeout=30)


def read_only(db: reeldb.Connection) -> None:
    """The connection's login becomes a read-only one (as ``reeldb user add --readonly``)."""
    db._session.rights = Rights(user="reader", read_only=True)


def objects_of(db: reeldb.Connection) -> dict:
    return db._session.catalog_objects()


# -- schemas ------------------------------------------------------------------------------------
def test_schema_is_a_namespace_of_tables_inside_the_branch(db) -> None:
    db.execute("CREATE SCHEMA sales")
    db.execute("CREATE TABLE sales.orders (id INT PRIMARY KEY, amount INT)")
    db.execute("CREATE TABLE orders (id INT)")  # public.orders: another table
    db.execute("INSERT INTO sales.orders VALUES (1, 10), (2, 20)")
    db.execute("INSERT INTO orders VALUES (7)")
    assert db.execute("SELECT * FROM sales.orders ORDER BY id").fetchall() == [(1, 10), (2, 20)]
    assert db.execute("SELECT * FROM orders").fetchall() == [(7,)]
    assert db.execute("SELECT orders.amount FROM sales.orders WHERE orders.id = 2").fetchall() == [(20,)]
    db.execute("UPDATE sales.orders SET amount = amount + 1 WHERE id = 1")
    db.execute("DELETE FROM sales.orders WHERE id = 2")
    assert db.execute("SELECT o.amount, p.id FROM sales.orders o JOIN orders p ON true").fetchall() == [(11, 7)]
    db.execute("ALTER TABLE sales.orders RENAME TO archive")  # stays in its schema, as in Postgres
    assert db.execute("SELECT amount FROM sales.archive").fetchall() == [(11,)]
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("SELECT * FROM sales.orders")
    assert e.value.sqlstate == "42P01"


def test_schema_is_versioned_with_the_branch(db) -> None:
    db.execute("CREATE SCHEMA lab")
    db.execute("CREATE TABLE lab.runs (id INT)")
    db.execute("INSERT INTO lab.runs VALUES (1)")
    db.branch("exp")  # checks it out
    db.execute("INSERT INTO lab.runs VALUES (2)")
    db.execute("CREATE SCHEMA extra")
    db.checkout("main")
    assert db.execute("SELECT id FROM lab.runs").fetchall() == [(1,)]
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("CREATE TABLE extra.t (a INT)")  # a schema of the other branch only
    assert e.value.sqlstate == "3F000"
    assert db.execute('SELECT id FROM exp."lab.runs" ORDER BY id').fetchall() == [(1,), (2,)]
    db.merge("exp")
    assert db.execute("SELECT id FROM lab.runs ORDER BY id").fetchall() == [(1,), (2,)]
    assert "schema/extra" in objects_of(db)
    log_before = len(db.log())
    db.execute("BEGIN")
    db.execute("CREATE SCHEMA gone")
    db.execute("ROLLBACK")
    assert "schema/gone" not in objects_of(db) and len(db.log()) == log_before


def test_schema_errors_are_postgres_ones(db) -> None:
    db.execute("CREATE SCHEMA s")
    db.execute("CREATE TABLE s.t (a INT)")
    db.branch("exp", checkout=False)
    cases = [("CREATE SCHEMA s", "42P06"), ("CREATE SCHEMA public", "42P06"), ("CREATE SCHEMA pg_x", "42939"),
             ("CREATE SCHEMA exp", "42P06"),  # the name of a branch
             ("DROP SCHEMA nope", "3F000"), ("DROP SCHEMA s", "2BP01"), ("DROP SCHEMA s RESTRICT", "2BP01"),
             ('CREATE TABLE "x.y" (a INT)', "22023")]
    heads = db.log()[0]["id"]
    for sql, state in cases:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == state, sql
    assert db.log()[0]["id"] == heads  # nothing was committed
    db.execute("CREATE SCHEMA IF NOT EXISTS s")
    db.execute("DROP SCHEMA IF EXISTS nope")
    assert db.execute("SELECT a FROM s.t").fetchall() == []
    db.execute("DROP SCHEMA s CASCADE")
    assert "s.t" not in db.tables() and "schema/s" not in objects_of(db)
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT * FROM s.t")
    assert e.value.sqlstate == "3F000"


def test_read_only_login_cannot_create_or_drop_a_schema(db) -> None:
    db.execute("CREATE SCHEMA kept")
    head = db.log()[0]["id"]
    read_only(db)
    for sql in ("CREATE SCHEMA other", "DROP SCHEMA kept", "CREATE TABLE kept.t (a INT)"):
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == "25006", sql
    assert db.log()[0]["id"] == head and set(objects_of(db)) == {"schema/kept"}


def test_schemas_over_the_wire_psycopg_and_sqlalchemy(server) -> None:
    with connect(server) as conn:
        conn.execute("DROP SCHEMA IF EXISTS wire CASCADE")
        conn.execute("CREATE SCHEMA wire")
        conn.execute("CREATE TABLE wire.items (id INT PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO wire.items VALUES (%s, %s)", (1, "one"))
        assert conn.execute("SELECT name FROM wire.items WHERE id = %s", (1,)).fetchall() == [("one",)]
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname IN ('wire', 'public')").fetchall()
        assert sorted(r[0] for r in rows) == ["public", "wire"]
        assert conn.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'wire'"
                            ).fetchall() == [("wire",)]
        assert conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'wire'"
                            ).fetchall() == [("items",)]
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            conn.execute("DROP SCHEMA wire")
        with pytest.raises(psycopg.errors.DuplicateSchema):
            conn.execute("CREATE SCHEMA exp")
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/objs")
    try:
        insp = sa.inspect(engine)
        assert "wire" in insp.get_schema_names()
        assert insp.get_table_names(schema="wire") == ["items"]
        assert [c["name"] for c in insp.get_columns("items", schema="wire")] == ["id", "name"]
        assert insp.get_pk_constraint("items", schema="wire")["constrained_columns"] == ["id"]
    finally:
        engine.dispose()
    out = psql(server, "DROP SCHEMA wire CASCADE;\n")
    assert out.returncode == 0 and "DROP SCHEMA" in out.stdout, out.stderr
    assert "drop cascades to table wire.items" in out.stderr
