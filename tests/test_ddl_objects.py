"""Schemas, enum types, sequences, identity columns and comments: what Postgres clients
and ORMs create, persisted in the database and versioned with branches like tables.
Checked from the Python API and over the wire (psycopg 3, SQLAlchemy, psql) against a
real ``reeldb serve``, with PostgreSQL 16's answers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import reeldb
from reeldb.sql.rights import Rights
from served import served

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory, "objs", "CREATE TABLE base (id INT)", branches=("exp",)) as srv:
        yield srv


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
    for make in (lambda: db.branch("s", checkout=False), lambda: db.tag("s")):  # the other way round
        with pytest.raises(reeldb.Error) as e:
            make()
        assert e.value.sqlstate == "42P06"
    assert "s" not in [b["name"] for b in db.branches()]
    db.execute("CREATE SCHEMA IF NOT EXISTS s")
    db.execute("DROP SCHEMA IF EXISTS nope")
    db.execute("DROP TABLE IF EXISTS nope.t")  # a notice, as in Postgres
    assert db.execute("SELECT a FROM s.t").fetchall() == []
    db.execute("CREATE SEQUENCE s.counter")
    db.execute("CREATE TYPE s.level AS ENUM ('low', 'high')")
    assert db.execute("SELECT nextval('s.counter'), 'high'::s.level").fetchall() == [(1, "high")]
    db.execute("DROP TABLE s.t")
    with pytest.raises(reeldb.Error) as e:
        db.execute("DROP SCHEMA s")  # its sequence and type depend on it too
    assert e.value.sqlstate == "2BP01" and "sequence s.counter" in str(e.value)
    db.execute("CREATE TABLE s.t (a INT GENERATED ALWAYS AS IDENTITY)")
    db.execute("DROP SCHEMA s CASCADE")
    assert "s.t" not in db.tables()
    assert not [k for k in objects_of(db) if k.startswith(("schema/s", "sequence/s.", "type/s."))]
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


# -- enum types ---------------------------------------------------------------------------------
def test_enum_columns_order_by_declaration_and_refuse_bad_labels(db) -> None:
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    db.execute("CREATE TABLE people (name TEXT, m mood)")
    db.execute("INSERT INTO people VALUES ('a', 'happy'), ('b', 'sad'), ('c', NULL), ('d', 'ok')")
    # PostgreSQL 16: declaration order, not alphabetical; NULLs last ascending
    assert db.execute("SELECT name FROM people ORDER BY m").fetchall() == [("b",), ("d",), ("a",), ("c",)]
    assert db.execute("SELECT name FROM people WHERE m > 'sad' ORDER BY name").fetchall() == [("a",), ("d",)]
    assert db.execute("SELECT name FROM people WHERE 'ok' >= m ORDER BY name").fetchall() == [("b",), ("d",)]
    assert db.execute("SELECT min(m), max(m) FROM people").fetchall() == [("sad", "happy")]
    assert db.execute("SELECT 'happy'::mood > 'sad'::mood").fetchall() == [(True,)]
    assert db.execute("SELECT name FROM people WHERE m = %s", ("ok",)).fetchall() == [("d",)]
    before = db.execute("SELECT count(*) FROM people").fetchall()
    for sql, params in [("INSERT INTO people VALUES ('x', 'angry')", None), ("SELECT * FROM people WHERE m = 'nope'", None),
                        ("SELECT 'x'::mood", None), ("UPDATE people SET m = 'meh' WHERE name = 'a'", None),
                        ("SELECT * FROM people WHERE m < %s", ("zzz",))]:
        with pytest.raises(reeldb.DataError) as e:
            db.execute(sql, params)
        assert e.value.sqlstate == "22P02" and "invalid input value for enum mood" in str(e.value), sql
    assert db.execute("SELECT count(*) FROM people").fetchall() == before
    assert db.execute("SELECT m FROM people WHERE name = 'a'").fetchall() == [("happy",)]
    db.execute("ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'")
    db.execute("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh'")
    db.execute("INSERT INTO people VALUES ('e', 'meh')")
    assert db.execute("SELECT name FROM people WHERE m IS NOT NULL ORDER BY m").fetchall() == \
        [("b",), ("e",), ("d",), ("a",)]
    for sql, state in [("ALTER TYPE mood ADD VALUE 'meh'", "42710"), ("ALTER TYPE mood ADD VALUE 'x' AFTER 'nope'", "22023"),
                       ("CREATE TYPE mood AS ENUM ('a')", "42710"), ("CREATE TYPE twice AS ENUM ('a', 'a')", "23505"),
                       ("DROP TYPE mood", "2BP01"), ("DROP TYPE nope", "42704"),
                       ("ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'", "0A000"),
                       ("CREATE TYPE mood AS (a INT, b TEXT)", "42710"), ("CREATE DOMAIN pos AS INT CHECK (VALUE > 0)", "0A000"),
                       ("DROP DOMAIN mood", "42809")]:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == state, sql
    db.execute("DROP TYPE IF EXISTS nope")
    db.execute("CREATE TYPE hugeint AS ENUM ('a')")  # a DuckDB type's name: only ever reeldb's cast reaches DuckDB
    assert db.execute("SELECT 'a'::hugeint").fetchall() == [("a",)]
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT CAST('a' AS hugeint[])")
    assert e.value.sqlstate == "22P02"  # malformed array literal, as in PostgreSQL
    assert db.execute("SELECT CAST('{a}' AS hugeint[])").fetchall() == [(["a"],)]
    db.execute("CREATE TYPE blank AS ENUM ('')")  # allowed, as in PostgreSQL 16
    with pytest.raises(reeldb.Error) as e:
        db.execute(f"CREATE TYPE long AS ENUM ('{'x' * 64}')")
    assert e.value.sqlstate == "42602"
    db.execute("DROP TYPE mood CASCADE")  # drops the column, as Postgres does
    assert [c.name for c in db.session.current_tables()["people"].schema.columns] == ["name"]
    assert "type/mood" not in objects_of(db)


def test_enum_comparison_reads_only_the_tables_the_statement_names(db) -> None:
    """A text column named like another table's enum column compares as text: the label
    check and declaration order apply to the statement's own enum columns, other
    branches' tables included, as PostgreSQL scopes a column name."""
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
    db.execute("CREATE TABLE e (m mood)")
    db.execute("INSERT INTO e VALUES ('ok'), ('sad')")
    db.branch("exp", checkout=False)
    db.execute("CREATE TABLE g (m TEXT)")
    db.execute("INSERT INTO g VALUES ('happy'), ('apple')")
    assert db.execute("SELECT m FROM e WHERE m < 'ok'").fetchall() == [("sad",)]
    assert db.execute("SELECT m FROM exp.e WHERE m < %s", ("ok",)).fetchall() == [("sad",)]
    assert db.execute("SELECT m < 'ok' FROM exp.e ORDER BY m").fetchall() == [(True,), (False,)]
    assert db.execute("SELECT m FROM g WHERE m = 'happy'").fetchall() == [("happy",)]
    assert db.execute("SELECT m FROM g WHERE m < %s", ("b",)).fetchall() == [("apple",)]
    with pytest.raises(reeldb.DataError, match="invalid input value for enum mood"):
        db.execute("SELECT m FROM exp.e WHERE m = 'happy'")


def test_enum_type_is_versioned_and_merged(db) -> None:
    db.execute("CREATE TYPE color AS ENUM ('red')")
    db.branch("exp")
    db.execute("ALTER TYPE color ADD VALUE 'green'")
    db.checkout("main")
    with pytest.raises(reeldb.DataError):
        db.execute("SELECT 'green'::color")
    db.merge("exp")
    assert db.execute("SELECT 'green'::color").fetchall() == [("green",)]
    db.branch("b1")
    db.execute("ALTER TYPE color ADD VALUE 'blue'")
    db.checkout("main")
    db.execute("ALTER TYPE color ADD VALUE 'black'")
    head = db.log()[0]["id"]
    with pytest.raises(reeldb.IntegrityError) as e:
        db.merge("b1")  # both sides changed the type: a conflict, nothing written
    assert 'type "color"' in str(e.value) and db.log()[0]["id"] == head
    db.merge("b1", strategy="theirs")
    assert objects_of(db)["type/color"]["labels"] == ["red", "green", "blue"]


def test_psycopg_enum_info_and_sqlalchemy_get_enums(server) -> None:
    from psycopg.types.enum import EnumInfo

    with connect(server) as conn:
        conn.execute("DROP TABLE IF EXISTS shirts")
        conn.execute("DROP TYPE IF EXISTS size")
        conn.execute("CREATE TYPE size AS ENUM ('small', 'medium', 'large')")
        conn.execute("CREATE TABLE shirts (id INT, s size)")
        conn.execute("INSERT INTO shirts VALUES (1, %s), (2, %s), (3, %s)", ("large", "small", "medium"))
        info = EnumInfo.fetch(conn, "size")
        assert info is not None and info.labels == ["small", "medium", "large"]
        assert conn.execute("SELECT id FROM shirts ORDER BY s").fetchall() == [(2,), (3,), (1,)]
        assert conn.execute("SELECT id FROM shirts WHERE s >= %s ORDER BY id", ("medium",)).fetchall() == [(1,), (3,)]
        with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="invalid input value for enum size"):
            conn.execute("INSERT INTO shirts VALUES (4, 'huge')")
        import enum

        from psycopg.types.enum import register_enum

        class Size(enum.Enum):
            small = "small"
            medium = "medium"
            large = "large"

        register_enum(info, conn, Size)  # values go out and come back with the type's OID, as Python enums
        conn.execute("INSERT INTO shirts VALUES (%s, %s)", (4, Size.medium))
        assert conn.execute("SELECT s FROM shirts WHERE id = 4").fetchone() == (Size.medium,)
        assert conn.execute("SELECT %s::size", (Size.large,)).fetchone() == (Size.large,)
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/objs")
    try:
        enums = sa.inspect(engine).get_enums()
        assert {"name": "size", "schema": "public", "visible": True,
                "labels": ["small", "medium", "large"]} in [{k: e[k] for k in ("name", "schema", "visible", "labels")}
                                                            for e in enums]
    finally:
        engine.dispose()


# -- sequences and identity ---------------------------------------------------------------------
def test_sequences_as_postgres_answers(db) -> None:
    db.execute("CREATE SEQUENCE s")
    assert db.execute("SELECT nextval('s'), nextval('s')").fetchall() == [(1, 2)]
    assert db.execute("SELECT currval('s'), lastval()").fetchall() == [(2, 2)]
    assert db.execute("SELECT nextval('s') FROM generate_series(1, 3)").fetchall() == [(3,), (4,), (5,)]
    assert db.execute("SELECT setval('s', 100)").fetchall() == [(100,)]
    assert db.execute("SELECT nextval('public.s')").fetchall() == [(101,)]
    assert db.execute("SELECT setval('s', 5, false), nextval('s')").fetchall() == [(5, 5)]
    db.execute("CREATE SEQUENCE down INCREMENT -2 MINVALUE 5 MAXVALUE 10")
    assert db.execute("SELECT nextval('down'), nextval('down'), nextval('down')").fetchall() == [(10, 8, 6)]
    db.execute("CREATE SEQUENCE ring MINVALUE 1 MAXVALUE 2 CYCLE")
    assert db.execute("SELECT nextval('ring') FROM generate_series(1, 5)").fetchall() == [(1,), (2,), (1,), (2,), (1,)]
    db.execute("ALTER SEQUENCE s RESTART WITH 42")
    assert db.execute("SELECT nextval('s')").fetchall() == [(42,)]
    errors_expected = [
        ("SELECT nextval('down')", "2200H", 'nextval: reached minimum value of sequence "down" (5)'),
        ("SELECT nextval('nope')", "42P01", 'relation "nope" does not exist'),
        ("SELECT setval('s', 0)", "22003", 'setval: value 0 is out of bounds for sequence "s" (1..9223372036854775807)'),
        ("CREATE SEQUENCE s", "42P07", 'relation "s" already exists'),
        ("CREATE SEQUENCE z INCREMENT 0", "22023", "INCREMENT must not be zero"),
        ("CREATE SEQUENCE z MINVALUE 10 MAXVALUE 5", "22023", "MINVALUE (10) must be less than MAXVALUE (5)"),
        ("CREATE SEQUENCE z START 0", "22023", "START value (0) cannot be less than MINVALUE (1)"),
        ("DROP SEQUENCE nope", "42P01", 'sequence "nope" does not exist'),
    ]
    for sql, state, message in errors_expected:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == state and message in str(e.value), sql
    for sql in ("SELECT nextval('s'), nextval('s') FROM generate_series(1, 3)",  # Postgres: (1, 2), (3, 4), ...
                "SELECT nextval('s'), currval('s') FROM generate_series(1, 3)"):
        with pytest.raises(reeldb.NotSupportedError):
            db.execute(sql)
    assert db.execute("SELECT nextval('s') + nextval('s')").fetchall() == [(43 + 44,)]  # one row: as Postgres
    db.execute("DROP SEQUENCE down, ring")
    assert "sequence/down" not in objects_of(db)


def test_currval_and_lastval_before_any_nextval(db) -> None:
    db.execute("CREATE SEQUENCE fresh")
    for sql, message in [("SELECT currval('fresh')", 'currval of sequence "fresh" is not yet defined in this session'),
                         ("SELECT lastval()", "lastval is not yet defined in this session")]:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == "55000" and message in str(e.value)


def test_identity_columns(db) -> None:
    db.execute("CREATE TABLE t (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO t (v) VALUES ('a'), ('b')")
    assert db.execute("INSERT INTO t VALUES (DEFAULT, 'c') RETURNING id").fetchall() == [(3,)]
    with pytest.raises(reeldb.Error) as e:
        db.execute("INSERT INTO t VALUES (10, 'x')")
    assert e.value.sqlstate == "428C9" and 'cannot insert a non-DEFAULT value into column "id"' in str(e.value)
    db.execute("INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (10, 'd')")
    assert db.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b"), (3, "c"), (10, "d")]
    db.execute("CREATE TABLE t2 (id BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 10), v TEXT)")
    assert db.execute("INSERT INTO t2 (v) VALUES ('x'), ('y') RETURNING id").fetchall() == [(100,), (110,)]
    assert db.execute("INSERT INTO t2 VALUES (5, 'z') RETURNING id").fetchall() == [(5,)]
    assert db.execute("SELECT currval('t2_id_seq')").fetchall() == [(110,)]
    assert db.execute("SELECT attname, attidentity FROM pg_attribute WHERE attrelid = 't2'::regclass "
                      "ORDER BY attnum").fetchall() == [("id", "d"), ("v", "")]
    db.execute("CREATE TABLE t3 (id INT DEFAULT nextval('t2_id_seq'), v TEXT)")  # one value per row
    assert db.execute("INSERT INTO t3 (v) SELECT 'r' FROM generate_series(1, 3) RETURNING id").fetchall() == \
        [(120,), (130,), (140,)]
    with pytest.raises(reeldb.Error) as e:
        db.execute("DROP SEQUENCE t2_id_seq")
    assert e.value.sqlstate == "2BP01"
    db.execute("DROP TABLE t")
    assert "sequence/t_id_seq" not in objects_of(db)  # an identity's sequence goes with its table


def _draw(path: str, n: int, queue) -> None:
    import reeldb as r

    conn = r.connect(path)
    queue.put([conn.execute("SELECT nextval('ids')").fetchall()[0][0] for _ in range(n)]
              + [row[0] for row in conn.execute("INSERT INTO items (v) SELECT 'p' FROM generate_series(1, 20) "
                                                "RETURNING id").fetchall()])
    conn.close()


def test_two_processes_never_draw_the_same_value(tmp_path) -> None:
    import multiprocessing as mp

    path = str(tmp_path / "db")
    db = reeldb.connect(path)
    db.execute("CREATE SEQUENCE ids")
    db.execute("CREATE TABLE items (id BIGINT GENERATED ALWAYS AS IDENTITY, v TEXT)")
    db.close()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_draw, args=(path, 25, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    seq_values = got[0][:25] + got[1][:25]
    assert sorted(seq_values) == list(range(1, 51))  # CACHE 1: every value once, none skipped
    ids = got[0][25:] + got[1][25:]
    assert len(set(ids)) == 40
    db = reeldb.connect(path)
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchall() == [(40, 40)]


def test_read_only_login_cannot_draw_or_change_sequences(db) -> None:
    db.execute("CREATE SEQUENCE s")
    db.execute("CREATE TYPE t AS ENUM ('a')")
    db.execute("CREATE TABLE x (id INT)")
    head = db.log()[0]["id"]
    read_only(db)
    for sql in ("SELECT nextval('s')", "SELECT setval('s', 10)", "CREATE SEQUENCE s2", "ALTER SEQUENCE s RESTART",
                "DROP SEQUENCE s", "CREATE TYPE u AS ENUM ('b')", "ALTER TYPE t ADD VALUE 'c'", "DROP TYPE t",
                "COMMENT ON TABLE x IS 'no'"):
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == "25006", sql
    assert db.log()[0]["id"] == head
    db._session.rights = Rights()  # full rights again: the refused nextval drew nothing
    assert db.execute("SELECT nextval('s')").fetchall() == [(1,)]


def test_sequences_and_identity_over_the_wire(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/objs")
    meta = sa.MetaData()
    users = sa.Table("wire_users", meta, sa.Column("id", sa.Integer, sa.Identity(always=True), primary_key=True),
                     sa.Column("name", sa.String(50)), comment="people who log in")
    seq = sa.Sequence("wire_seq", start=7)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS wire_users"))
            conn.execute(sa.text("DROP SEQUENCE IF EXISTS wire_seq"))
        meta.create_all(engine)
        seq.create(engine)
        with engine.begin() as conn:
            ids = [conn.execute(users.insert().values(name=n)).inserted_primary_key[0] for n in ("ann", "bob")]
            assert ids == [1, 2]
            assert conn.execute(seq.next_value()).scalar() == 7
            assert conn.execute(seq.next_value()).scalar() == 8
        insp = sa.inspect(engine)
        assert insp.get_table_comment("wire_users") == {"text": "people who log in"}
        cols = insp.get_columns("wire_users")
        assert [c["name"] for c in cols] == ["id", "name"]
        assert cols[0]["identity"] == {"always": True, "start": 1, "increment": 1, "minvalue": 1,
                                       "maxvalue": 2147483647, "cache": 1, "cycle": False}  # as PostgreSQL 16 reflects it
        assert "wire_seq" in insp.get_sequence_names()
    finally:
        engine.dispose()
    with connect(server) as conn:
        conn.execute("COMMENT ON COLUMN wire_users.name IS 'display name'")
        assert conn.execute("SELECT col_description('wire_users'::regclass, 2)").fetchone() == ("display name",)
        with pytest.raises(psycopg.errors.GeneratedAlways):
            conn.execute("INSERT INTO wire_users (id, name) VALUES (99, 'x')")
    with connect(server) as conn:  # prepared: Parse, Describe, Execute draw one value each time
        got = [conn.execute("SELECT nextval('wire_seq')", prepare=True).fetchone()[0] for _ in range(3)]
        assert got == [9, 10, 11]
    out = psql(server, "SELECT nextval('wire_seq');\n")
    assert out.returncode == 0 and out.stdout.split() == ["12"], out.stderr


# -- comments -----------------------------------------------------------------------------------
def test_comments_are_stored_shown_and_follow_renames(db) -> None:
    db.execute("CREATE TABLE docs (id INT, body TEXT)")
    db.execute("COMMENT ON TABLE docs IS 'the documents'")
    db.execute("COMMENT ON COLUMN docs.body IS 'markdown'")
    q = "SELECT obj_description('docs'::regclass, 'pg_class'), col_description('docs'::regclass, 2)"
    assert db.execute(q).fetchall() == [("the documents", "markdown")]
    db.execute("ALTER TABLE docs RENAME COLUMN body TO text_body")
    db.execute("ALTER TABLE docs RENAME TO papers")
    assert db.execute(q.replace("docs", "papers")).fetchall() == [("the documents", "markdown")]
    db.execute("COMMENT ON TABLE papers IS NULL")
    assert db.execute(q.replace("docs", "papers")).fetchall() == [(None, "markdown")]
    with pytest.raises(reeldb.Error) as e:
        db.execute("COMMENT ON COLUMN papers.nope IS 'x'")
    assert e.value.sqlstate == "42703"
    db.execute("DROP TABLE papers")
    assert not [k for k in objects_of(db) if k.startswith("comment/")]


def test_asyncpg_reads_and_writes_enum_columns(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    import asyncio

    with connect(server) as conn:
        conn.execute("DROP TABLE IF EXISTS lights")
        conn.execute("DROP TYPE IF EXISTS signal")
        conn.execute("CREATE TYPE signal AS ENUM ('red', 'amber', 'green')")
        conn.execute("CREATE TABLE lights (id INT, s signal)")

    async def run() -> list:
        host, port = server.address
        c = await asyncpg.connect(host=host, port=port, user="tester", database="objs")
        try:
            await c.executemany("INSERT INTO lights VALUES ($1, $2)", [(1, "green"), (2, "red"), (3, "amber")])
            with pytest.raises(asyncpg.InvalidTextRepresentationError):
                await c.execute("INSERT INTO lights VALUES ($1, $2)", 4, "blue")
            return [tuple(r) for r in await c.fetch("SELECT id, s FROM lights ORDER BY s")]
        finally:
            await c.close()

    assert asyncio.run(run()) == [(2, "red"), (3, "amber"), (1, "green")]


def test_serial_and_identity_sequences_are_named_as_in_postgres(db) -> None:
    db.execute("CREATE TABLE s1 (id SERIAL PRIMARY KEY, v TEXT)")
    db.execute("CREATE TABLE s2 (id INT GENERATED ALWAYS AS IDENTITY, v TEXT)")
    db.execute("INSERT INTO s1 (v) VALUES ('a')")
    assert db.execute("SELECT pg_get_serial_sequence('s1', 'id'), pg_get_serial_sequence('public.s2', 'id'), "
                      "pg_get_serial_sequence('s1', 'v')").fetchall() == [("public.s1_id_seq", "public.s2_id_seq", None)]
    drawn = db.execute("SELECT nextval('s1_id_seq')").fetchall()[0][0]
    assert drawn > 1 and db.execute("SELECT currval('s1_id_seq')").fetchall() == [(drawn,)]
    db.execute("INSERT INTO s1 (v) VALUES ('b')")  # the same counter: never a value already drawn
    assert db.execute("SELECT id FROM s1 WHERE v = 'b'").fetchall()[0][0] > drawn
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT setval('s1_id_seq', 5)")
    assert e.value.sqlstate == "0A000"
    with pytest.raises(reeldb.Error) as e:
        db.execute("SELECT pg_get_serial_sequence('nope', 'id')")
    assert e.value.sqlstate == "42P01"


def test_concurrent_object_changes_rebase_or_conflict(path) -> None:
    a, b = reeldb.connect(path), reeldb.connect(path)
    a.execute("BEGIN")
    a.execute("CREATE SCHEMA from_a")
    a.execute("CREATE TYPE shared AS ENUM ('x')")
    b.execute("CREATE SCHEMA from_b")  # commits first: a re-bases onto it
    a.execute("COMMIT")
    assert {"schema/from_a", "schema/from_b", "type/shared"} <= set(objects_of(b))
    a.execute("BEGIN")
    a.execute("ALTER TYPE shared ADD VALUE 'y'")
    b.execute("ALTER TYPE shared ADD VALUE 'z'")  # the same object, changed differently
    with pytest.raises(reeldb.OperationalError) as e:
        a.execute("COMMIT")
    assert e.value.sqlstate == "40001" and 'type "shared"' in str(e.value)
    assert objects_of(b)["type/shared"]["labels"] == ["x", "z"]
    a.close()
    b.close()


def test_domains_give_their_columns_base_type_not_null_and_default(db) -> None:
    db.execute("CREATE DOMAIN posint AS INT NOT NULL DEFAULT 7")
    db.execute("CREATE DOMAIN name50 AS VARCHAR(50)")
    db.execute("CREATE TABLE d (a posint, b name50, c INT)")
    db.execute("INSERT INTO d (c) VALUES (1)")
    assert db.execute("SELECT * FROM d").fetchall() == [(7, None, 1)]
    with pytest.raises(reeldb.IntegrityError) as e:
        db.execute("INSERT INTO d (a, b) VALUES (NULL, 'x')")
    assert e.value.sqlstate == "23502"
    assert db.execute("SELECT 5::posint, 'abc'::name50, NULL::name50").fetchall() == [(5, "abc", None)]
    with pytest.raises(reeldb.IntegrityError, match="domain posint does not allow null values"):
        db.execute("SELECT NULL::posint")
    assert db.execute("SELECT typname, typtype, typnotnull, typdefault FROM pg_type WHERE typtype = 'd' "
                      "ORDER BY 1").fetchall() == [("name50", "d", False, None), ("posint", "d", True, "7")]
    assert db.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                      "WHERE attrelid = 'd'::regclass ORDER BY attnum").fetchall() == \
        [("a", "posint"), ("b", "name50"), ("c", "integer")]
    with pytest.raises(reeldb.Error) as e:
        db.execute("DROP DOMAIN posint")
    assert e.value.sqlstate == "2BP01"
    db.execute("DROP DOMAIN posint CASCADE")
    assert db.execute("SELECT * FROM d").fetchall() == [(None, 1)]
    for sql, state in [("CREATE DOMAIN c AS INT CHECK (VALUE > 0)", "0A000"), ("DROP DOMAIN nope", "42704")]:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == state


# -- generated columns --------------------------------------------------------------------------
def test_generated_columns_follow_their_row(db) -> None:
    db.execute("CREATE TABLE g (a INT, b INT GENERATED ALWAYS AS (a * 2) STORED, "
               "c TEXT GENERATED ALWAYS AS (upper(t)) STORED, t TEXT)")
    db.execute("INSERT INTO g (a, t) VALUES (1, 'x'), (NULL, 'y')")
    assert db.execute("INSERT INTO g VALUES (3, DEFAULT, DEFAULT, 'z') RETURNING *").fetchall() == [(3, 6, "Z", "z")]
    db.execute("UPDATE g SET a = 10 WHERE a = 1")
    db.insert("g", {"a": [4], "t": ["w"]})  # the bulk path computes them too
    # PostgreSQL 16's rows
    assert db.execute("SELECT * FROM g ORDER BY a").fetchall() == \
        [(3, 6, "Z", "z"), (4, 8, "W", "w"), (10, 20, "X", "x"), (None, None, "Y", "y")]
    before = db.execute("SELECT count(*) FROM g").fetchall()
    for sql, state, message in [
            ("INSERT INTO g (a, b) VALUES (1, 5)", "428C9", 'cannot insert a non-DEFAULT value into column "b"'),
            ("INSERT INTO g OVERRIDING SYSTEM VALUE VALUES (1, 2, 'a', 'b')", "428C9", "non-DEFAULT"),
            ("UPDATE g SET b = 10", "428C9", 'column "b" can only be updated to DEFAULT'),
            ("CREATE TABLE g2 (a INT, b INT GENERATED ALWAYS AS (nope * 2) STORED)", "42703", 'column "nope"'),
            ("CREATE TABLE g2 (a INT, b INT GENERATED ALWAYS AS (random()) STORED)", "42P17", "not immutable"),
            ("CREATE TABLE g2 (a INT, b INT GENERATED ALWAYS AS (a) STORED, c INT GENERATED ALWAYS AS (b) STORED)",
             "42P17", 'cannot use generated column "b"'),
            ("CREATE TABLE g2 (a INT, b INT GENERATED ALWAYS AS ((SELECT 1)) STORED)", "0A000", "subquery"),
            ("CREATE TABLE g2 (a INT, b INT DEFAULT 1 GENERATED ALWAYS AS (a) STORED)", "42601", "both default"),
            ("CREATE TABLE g2 (a INT, b INT GENERATED ALWAYS AS (sum(a)) STORED)", "42803", "aggregate")]:
        with pytest.raises(reeldb.Error) as e:
            db.execute(sql)
        assert e.value.sqlstate == state and message in str(e.value), sql
    assert db.execute("SELECT count(*) FROM g").fetchall() == before and "g2" not in db.tables()
    db.execute("CREATE TABLE g3 (a INT, b INT GENERATED ALWAYS AS (a / 0) STORED)")
    with pytest.raises(reeldb.Error) as e:
        db.execute("INSERT INTO g3 (a) VALUES (1)")
    assert e.value.sqlstate == "22012" and db.execute("SELECT count(*) FROM g3").fetchall() == [(0,)]
    assert db.execute("SELECT attname, attgenerated, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
                      "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                      "WHERE attrelid = 'g'::regclass AND attnum > 0 ORDER BY attnum").fetchall() == \
        [("a", "", None), ("b", "s", "(a * 2)"), ("c", "s", "upper(t)"), ("t", "", None)]


def test_generated_columns_follow_rename_and_drop_of_what_they_read(db) -> None:
    """As PostgreSQL 16: RENAME COLUMN keeps the expression reading the renamed column;
    DROP COLUMN of a column a generated one reads is 2BP01 unless CASCADE, which drops the
    generated column too (with a NOTICE) and the CHECKs that read either."""
    db.execute("CREATE TABLE t (a INT, b INT GENERATED ALWAYS AS (a * 2) STORED, c INT CHECK (a > 0))")
    db.execute("INSERT INTO t (a) VALUES (1)")
    db.execute("ALTER TABLE t RENAME COLUMN a TO x")
    db.execute("INSERT INTO t (x) VALUES (2)")
    assert db.execute("SELECT x, b FROM t ORDER BY x").fetchall() == [(1, 2), (2, 4)]
    with pytest.raises(reeldb.Error) as e:
        db.execute("ALTER TABLE t DROP COLUMN x")
    assert e.value.sqlstate == "2BP01" and "column b of table t" in str(e.value)
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["x", "b", "c"]
    db.execute("ALTER TABLE t DROP COLUMN x CASCADE")
    assert db.session.notices[-1] == "drop cascades to column b of table t"
    db.execute("INSERT INTO t VALUES (-3)")  # the CHECK on x went with it
    assert db.execute("SELECT * FROM t ORDER BY c").fetchall() == [(-3,), (None,), (None,)]


def test_sqlalchemy_computed_columns(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/objs")
    meta = sa.MetaData()
    boxes = sa.Table("boxes", meta, sa.Column("w", sa.Integer), sa.Column("h", sa.Integer),
                     sa.Column("area", sa.Integer, sa.Computed("w * h", persisted=True)))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS boxes"))
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(boxes.insert(), [{"w": 2, "h": 3}, {"w": 4, "h": 5}])
            assert conn.execute(sa.select(boxes.c.area).order_by(boxes.c.area)).scalars().all() == [6, 20]
        cols = {c["name"]: c for c in sa.inspect(engine).get_columns("boxes")}
        assert cols["area"]["computed"] == {"sqltext": "(w * h)", "persisted": True}
    finally:
        engine.dispose()
