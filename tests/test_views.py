"""Views, temporary views and materialized views, as PostgreSQL 16 has them: the Python API,
and over the wire with psycopg and SQLAlchemy's reflection against a real `reeldb serve`.
Every refusal is checked to have changed nothing."""

from __future__ import annotations

import pytest

import reeldb
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")


def _err(db: reeldb.Connection, sql: str) -> reeldb.Error:
    with pytest.raises(reeldb.Error) as e:
        db.execute(sql)
    return e.value


def _views(db: reeldb.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT viewname FROM pg_views ORDER BY 1").fetchall()]


@pytest.fixture
def shop(tmp_path) -> reeldb.Connection:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT, b VARCHAR(20))")
    db.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z')")
    yield db
    db.close()


# -- reading -------------------------------------------------------------------------------------
def test_view_reads_its_select_with_its_column_names(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT * FROM t WHERE a > 1")
    shop.execute("CREATE VIEW w (n, label) AS SELECT a * 10, upper(b) FROM v")
    assert shop.execute("SELECT * FROM v ORDER BY a").fetchall() == [(2, "y"), (3, "z")]
    cur = shop.execute("SELECT * FROM w ORDER BY n")
    assert [d[0] for d in cur.description] == ["n", "label"]
    assert cur.fetchall() == [(20, "Y"), (30, "Z")]
    # joined with a table, aliased, in a subquery and a CTE
    got = shop.execute("WITH c AS (SELECT n FROM w) SELECT x.a, (SELECT count(*) FROM c) FROM t x "
                       "JOIN v AS y ON y.a = x.a ORDER BY 1").fetchall()
    assert got == [(2, 2), (3, 2)]
    shop.execute("INSERT INTO t VALUES (4, 'q')")  # a view is its query, not a copy
    assert shop.execute("SELECT count(*) FROM w").fetchone() == (3,)


def test_star_is_expanded_when_the_view_is_made(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT * FROM t")
    shop.execute("ALTER TABLE t ADD COLUMN c INT")
    cur = shop.execute("SELECT * FROM v ORDER BY a")
    assert [d[0] for d in cur.description] == ["a", "b"]  # as PostgreSQL: c is not the view's
    assert shop.execute("SELECT definition FROM pg_views WHERE viewname = 'v'").fetchone() == (" SELECT a, b FROM t;",)


def test_catalog_shows_views(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT a, b AS label FROM t")
    rel = shop.execute("SELECT relkind, relnatts FROM pg_class WHERE relname = 'v' AND relnamespace = 2200").fetchall()
    assert rel == [("v", 2)]
    atts = shop.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute a JOIN pg_class c "
                        "ON c.oid = a.attrelid WHERE c.relname = 'v' ORDER BY attnum").fetchall()
    assert atts == [("a", "integer"), ("label", "character varying(20)")]
    assert shop.execute("SELECT pg_get_viewdef('v'::regclass), pg_get_viewdef('v')").fetchone() == \
        (" SELECT a, b AS label FROM t;",) * 2
    assert shop.execute("SELECT table_type, is_insertable_into FROM information_schema.tables "
                        "WHERE table_name = 'v'").fetchall() == [("VIEW", "NO")]
    assert shop.execute("SELECT view_definition FROM information_schema.views WHERE table_name = 'v'").fetchall() \
        == [(" SELECT a, b AS label FROM t;",)]
    assert shop.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'v' "
                        "ORDER BY ordinal_position").fetchall() == [("a", "integer"), ("label", "character varying")]


# -- refusals ------------------------------------------------------------------------------------
def test_views_are_read_only(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT * FROM t")
    for sql in ("INSERT INTO v VALUES (9, 'n')", "UPDATE v SET a = 0", "DELETE FROM v"):
        assert _err(shop, sql).sqlstate == "55000"
    assert _err(shop, "COPY v TO STDOUT").sqlstate == "42809"
    assert shop.execute("SELECT count(*), sum(a) FROM t").fetchone() == (3, 6)


def test_create_view_errors_as_postgres(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT a, b FROM t")
    cases = {"CREATE VIEW v AS SELECT 1": "42P07", "CREATE VIEW t AS SELECT 1": "42P07",
             "CREATE TABLE v (x INT)": "42P07", "CREATE VIEW d AS SELECT a, a FROM t": "42701",
             "CREATE VIEW d (x, y, z) AS SELECT a, b FROM t": "42601",
             "CREATE OR REPLACE VIEW v AS SELECT a FROM t": "42P16",
             "CREATE OR REPLACE VIEW v AS SELECT a, b AS c FROM t": "42P16",
             "CREATE OR REPLACE VIEW v AS SELECT a::text AS a, b FROM t": "42P16",
             "CREATE OR REPLACE VIEW t AS SELECT 1": "42809", "DROP VIEW t": "42809", "DROP TABLE v": "42809",
             "DROP VIEW nope": "42P01", "DROP MATERIALIZED VIEW v": "42809",
             "CREATE VIEW q AS SELECT * FROM nope": "42P01", "CREATE VIEW q AS SELECT read_csv('/etc/passwd')": "42883"}
    for sql, state in cases.items():
        assert _err(shop, sql).sqlstate == state, sql
    assert _views(shop) == ["v"]
    assert shop.execute("SELECT * FROM v ORDER BY a").fetchall() == [(1, "x"), (2, "y"), (3, "z")]
    shop.execute("CREATE OR REPLACE VIEW v AS SELECT a, b, a + 1 AS c FROM t")  # a column added at the end
    assert shop.execute("SELECT c FROM v ORDER BY a").fetchall() == [(2,), (3,), (4,)]
    shop.execute("DROP VIEW IF EXISTS nope, v")
    assert _views(shop) == []


def test_read_only_login_cannot_create_views(shop) -> None:
    from reeldb.sql.rights import Rights

    shop._session.rights = Rights(user="reader", read_only=True)  # as `reeldb user add --readonly`
    for sql in ("CREATE VIEW v AS SELECT * FROM t", "CREATE MATERIALIZED VIEW m AS SELECT * FROM t"):
        assert _err(shop, sql).sqlstate in ("25006", "42501")
    assert _views(shop) == []
    assert shop.execute("SELECT count(*) FROM pg_class WHERE relkind IN ('v', 'm') AND relnamespace = 2200").fetchone() == (0,)
    shop.execute("CREATE TEMP VIEW tv AS SELECT a FROM t")  # temporary: the session's only, as a temp table
    assert shop.execute("SELECT count(*) FROM tv").fetchone() == (3,)


# -- dependencies ----------------------------------------------------------------------------------
def test_drop_table_a_view_reads(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT * FROM t")
    shop.execute("CREATE VIEW w AS SELECT a FROM v")
    e = _err(shop, "DROP TABLE t")
    assert e.sqlstate == "2BP01" and str(e) == "cannot drop table t because other objects depend on it"
    assert e.detail == "view v depends on table t\nview w depends on view v"
    assert e.hint == "Use DROP ... CASCADE to drop the dependent objects too."
    e = _err(shop, "ALTER TABLE t DROP COLUMN a")
    assert e.sqlstate == "2BP01" and e.detail.startswith("view v depends on column a of table t")
    e = _err(shop, "ALTER TABLE t ALTER COLUMN a TYPE BIGINT")
    assert e.sqlstate == "0A000" and str(e) == "cannot alter type of a column used by a view or rule"
    assert _err(shop, "DROP VIEW v").sqlstate == "2BP01"
    assert _views(shop) == ["v", "w"] and shop.execute("SELECT count(*) FROM w").fetchone() == (3,)
    shop.execute("DROP TABLE t CASCADE")
    assert _views(shop) == []
    assert shop.execute("SELECT count(*) FROM pg_class WHERE relname IN ('t', 'v', 'w') AND relnamespace = 2200").fetchone() == (0,)


def test_drop_column_cascade_drops_the_view(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT b FROM t")
    shop.execute("ALTER TABLE t DROP COLUMN a")  # v does not read a
    shop.execute("ALTER TABLE t DROP COLUMN b CASCADE")
    assert _views(shop) == []


# -- temporary views -------------------------------------------------------------------------------
def test_temporary_view_lives_in_the_session(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1), (2)")
    db.execute("CREATE TEMP VIEW tv AS SELECT a * 2 AS d FROM t")
    db.execute("CREATE TEMP TABLE scratch (x INT)")
    db.execute("INSERT INTO scratch VALUES (5)")
    cur = db.execute("CREATE VIEW over_temp AS SELECT x FROM scratch")  # PostgreSQL makes it temporary
    assert cur.notices == ['view "over_temp" will be a temporary view']
    assert db.execute("SELECT sum(d) FROM tv").fetchone() == (6,)
    assert db.execute("SELECT x FROM over_temp").fetchall() == [(5,)]
    assert db.execute("SELECT relname, relpersistence FROM pg_class WHERE relkind = 'v' AND relnamespace <> 13000 ORDER BY 1").fetchall() == \
        [("over_temp", "t"), ("tv", "t")]
    other = reeldb.connect(tmp_path / "db")
    assert _err(other, "SELECT * FROM tv").sqlstate == "42P01"
    assert other.execute("SELECT count(*) FROM pg_class WHERE relkind = 'v' AND relnamespace <> 13000").fetchone() == (0,)
    other.close()
    db.close()
    db = reeldb.connect(tmp_path / "db")
    assert _err(db, "SELECT * FROM tv").sqlstate == "42P01"  # gone with its session
    db.close()


# -- materialized views ------------------------------------------------------------------------
def test_materialized_view(shop) -> None:
    cur = shop.execute("CREATE MATERIALIZED VIEW m AS SELECT a, b FROM t WHERE a < 3")
    assert cur.rowcount == 2
    shop.execute("INSERT INTO t VALUES (0, 'w')")
    assert shop.execute("SELECT a FROM m ORDER BY a").fetchall() == [(1,), (2,)]  # stored rows
    shop.execute("REFRESH MATERIALIZED VIEW m")
    assert shop.execute("SELECT a FROM m ORDER BY a").fetchall() == [(0,), (1,), (2,)]
    for sql in ("INSERT INTO m VALUES (9, 'n')", "UPDATE m SET a = 0", "DELETE FROM m"):
        e = _err(shop, sql)
        assert e.sqlstate == "42809" and str(e) == 'cannot change materialized view "m"'
    assert shop.execute("SELECT count(*) FROM m").fetchone() == (3,)
    shop.execute("CREATE INDEX m_b ON m (b)")  # SQLAlchemy's reflection fixture indexes one
    assert shop.execute("SELECT relkind, relispopulated FROM pg_class WHERE relname = 'm' AND relnamespace = 2200").fetchone() == ("m", True)
    assert shop.execute("SELECT matviewname, ispopulated, definition FROM pg_matviews").fetchall() == \
        [("m", True, " SELECT a, b FROM t WHERE a < 3;")]
    assert shop.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'm' AND table_schema = 'public'").fetchone() == (0,)
    assert _err(shop, "DROP VIEW m").sqlstate == "42809"
    assert _err(shop, "DROP TABLE t").sqlstate == "2BP01"
    shop.execute("DROP MATERIALIZED VIEW m")
    assert shop.execute("SELECT count(*) FROM pg_class WHERE relname = 'm' AND relnamespace = 2200").fetchone() == (0,)


def test_materialized_view_with_no_data(shop) -> None:
    shop.execute("CREATE MATERIALIZED VIEW m AS SELECT a FROM t WITH NO DATA")
    e = _err(shop, "SELECT * FROM m")
    assert e.sqlstate == "55000" and str(e) == 'materialized view "m" has not been populated'
    assert e.hint == "Use the REFRESH MATERIALIZED VIEW command."
    assert shop.execute("SELECT relispopulated FROM pg_class WHERE relname = 'm' AND relnamespace = 2200").fetchone() == (False,)
    shop.execute("REFRESH MATERIALIZED VIEW m")
    assert shop.execute("SELECT sum(a) FROM m").fetchone() == (6,)


# -- branches ----------------------------------------------------------------------------------
def test_views_are_versioned_with_the_branch(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.branch("exp")  # checked out
    db.execute("INSERT INTO t VALUES (10), (20)")
    db.execute("CREATE VIEW big AS SELECT a FROM t WHERE a >= 10")
    assert db.execute("SELECT count(*) FROM big").fetchone() == (2,)
    db.checkout("main")
    assert _err(db, "SELECT * FROM big").sqlstate == "42P01"
    # read from main by schema-qualified name: the view's tables are exp's
    assert db.execute('SELECT sum(a) FROM "exp".big').fetchone() == (30,)
    db.merge("exp")
    assert db.execute("SELECT sum(a) FROM big").fetchone() == (30,)
    assert _views(db) == ["big"]
    db.close()


# -- over the wire: psycopg, rights, SQLAlchemy -----------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reeldb.server import users

    path = tmp_path_factory.mktemp("views") / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(50))")
    db.execute("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')")
    db.branch("secret", checkout=False)
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "writer", "w")
    users.add_user(store, "mainonly", "m", branches=["main"])
    srv = BackgroundServer(str(path), port=0)
    yield srv
    srv.stop()


def dsn(server, user: str = "writer", password: str = "w") -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=db user={user} password={password} sslmode=disable"


def test_psycopg_views_and_temp_view_gone_after_session(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE VIEW names AS SELECT name FROM users")
        conn.execute("CREATE TEMPORARY VIEW firsts AS SELECT id FROM users WHERE id = 1")
        assert conn.execute("SELECT * FROM names ORDER BY 1").fetchall() == [("ann",), ("bob",)]
        assert conn.execute("SELECT * FROM firsts").fetchall() == [(1,)]
        assert conn.cursor(binary=True).execute("SELECT * FROM firsts").fetchall() == [(1,)]
    with psycopg.connect(dsn(server), autocommit=True) as conn, pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM firsts")
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DROP VIEW names")


def test_view_gives_no_more_rights_than_the_login_has(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute('CREATE VIEW leak AS SELECT id FROM "secret".users')
        conn.execute("CREATE VIEW mine AS SELECT id FROM users")
        assert conn.execute("SELECT count(*) FROM leak").fetchone() == (2,)
        conn.execute("SET reeldb.branch = 'secret'")
        conn.execute("CREATE VIEW hidden AS SELECT name FROM users")
        conn.execute("SET reeldb.branch = 'main'")
        assert conn.execute('SELECT count(*) FROM "secret".hidden').fetchone() == (2,)
    try:
        with psycopg.connect(dsn(server, "mainonly", "m"), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM mine").fetchone() == (2,)
            with pytest.raises(psycopg.Error) as e:
                conn.execute("SELECT * FROM leak")
            assert e.value.sqlstate in ("42501", "3F000")
            with pytest.raises(psycopg.Error) as e:  # a view of a branch it may not read
                conn.execute('SELECT * FROM "secret".hidden')
            assert e.value.sqlstate in ("42501", "3F000")
    finally:
        with psycopg.connect(dsn(server), autocommit=True) as conn:
            conn.execute("DROP VIEW leak, mine")
            conn.execute("SET reeldb.branch = 'secret'")
            conn.execute("DROP VIEW hidden")


def test_psycopg_cursor_and_copy_over_a_view(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE VIEW named AS SELECT id, upper(name) AS big FROM users")
        try:
            with conn.transaction(), conn.cursor(name="over_view") as cur:  # DECLARE ... CURSOR
                cur.execute("SELECT big FROM named ORDER BY id")
                assert cur.fetchall() == [("ANN",), ("BOB",)]
            with conn.cursor().copy("COPY (SELECT * FROM named ORDER BY id) TO STDOUT") as copy:
                assert b"".join(bytes(b) for b in copy) == b"1\tANN\n2\tBOB\n"
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                conn.execute("INSERT INTO named VALUES (3, 'C')")
            # COPY of the view itself, either way: PostgreSQL's 42809, with its hint
            with pytest.raises(psycopg.errors.WrongObjectType) as err, \
                    conn.cursor().copy("COPY named TO STDOUT") as copy:
                list(copy)
            assert err.value.diag.message_hint == "Try the COPY (SELECT ...) TO variant."
            with pytest.raises(psycopg.errors.WrongObjectType) as err, \
                    conn.cursor().copy("COPY named FROM STDIN") as copy:
                copy.write_row((3, "C"))
            assert err.value.diag.message_primary == 'cannot copy to view "named"'
            assert err.value.diag.message_hint == "To enable copying to a view, provide an INSTEAD OF INSERT trigger."
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)
        finally:
            conn.execute("DROP VIEW named")


def test_sqlalchemy_reflects_views(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://writer:w@{host}:{port}/db")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE VIEW users_v AS SELECT * FROM users")
            conn.exec_driver_sql("CREATE MATERIALIZED VIEW users_m AS SELECT id FROM users")
        insp = sa.inspect(engine)
        assert insp.get_view_names() == ["users_v"]
        assert insp.get_materialized_view_names() == ["users_m"]
        assert "users_v" not in insp.get_table_names()
        assert insp.get_view_definition("users_v") == " SELECT id, name FROM users;"
        cols = insp.get_columns("users_v")
        assert [(c["name"], str(c["type"])) for c in cols] == [("id", "INTEGER"), ("name", "VARCHAR(50)")]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM users_v ORDER BY id").fetchall() == [("ann",), ("bob",)]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP VIEW IF EXISTS users_v")
            conn.exec_driver_sql("DROP MATERIALIZED VIEW IF EXISTS users_m")
        engine.dispose()


def test_add_column_under_a_star_left_as_written_is_refused(shop) -> None:
    shop.execute("CREATE TABLE u (a INT, c INT)")
    shop.execute("INSERT INTO u VALUES (1, 7)")
    shop.execute("CREATE VIEW j AS SELECT * FROM t JOIN u USING (a)")  # a join USING: * kept as written
    assert shop.execute("SELECT * FROM j").fetchall() == [(1, "x", 7)]
    assert _err(shop, "ALTER TABLE t ADD COLUMN d INT").sqlstate == "0A000"
    assert shop.execute("SELECT * FROM j").fetchall() == [(1, "x", 7)]
    shop.execute("CREATE VIEW k AS SELECT t.*, u.c FROM t JOIN u ON t.a = u.a")  # expanded: fine
    shop.execute("DROP VIEW j")
    shop.execute("ALTER TABLE t ADD COLUMN d INT")
    assert shop.execute("SELECT * FROM k").fetchall() == [(1, "x", 7)]


def test_views_of_a_schema_and_drop_schema(shop) -> None:
    shop.execute("CREATE SCHEMA s")
    shop.execute("CREATE TABLE s.u (a INT)")
    shop.execute("INSERT INTO s.u VALUES (4)")
    shop.execute("CREATE VIEW s.uv AS SELECT * FROM s.u")
    shop.execute("CREATE VIEW reads_s AS SELECT a FROM s.uv")
    assert shop.execute("SELECT a FROM s.uv").fetchall() == [(4,)]
    assert shop.execute("SELECT a FROM reads_s").fetchall() == [(4,)]
    assert shop.execute("SELECT schemaname, viewname FROM pg_views ORDER BY 2").fetchall() == \
        [("public", "reads_s"), ("s", "uv")]
    assert _err(shop, "DROP SCHEMA s").sqlstate == "2BP01"
    assert _views(shop) == ["reads_s", "uv"]
    shop.execute("DROP SCHEMA s CASCADE")
    assert _views(shop) == []


def test_alter_view_rename_and_renames_under_a_view(shop) -> None:
    shop.execute("CREATE VIEW v AS SELECT a FROM t")
    shop.execute("ALTER VIEW v RENAME TO v2")
    assert _views(shop) == ["v2"] and shop.execute("SELECT count(*) FROM v2").fetchone() == (3,)
    assert _err(shop, "SELECT * FROM v").sqlstate == "42P01"
    for sql in ("ALTER TABLE t RENAME TO t2", "ALTER TABLE t RENAME COLUMN a TO aa"):
        assert _err(shop, sql).sqlstate == "0A000", sql  # the view keeps its SELECT as text
    assert shop.execute("SELECT count(*) FROM t WHERE a > 0").fetchone() == (3,)
    shop.execute("ALTER TABLE t RENAME COLUMN b TO label")  # a column no view reads
    assert shop.execute("SELECT sum(a) FROM v2").fetchone() == (6,)


def test_a_view_changed_on_two_branches_conflicts_on_merge(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT)")
    db.execute("CREATE VIEW v AS SELECT a FROM t")
    db.branch("exp")
    db.execute("CREATE OR REPLACE VIEW v AS SELECT a, a + 1 AS b FROM t")
    db.checkout("main")
    db.execute("CREATE OR REPLACE VIEW v AS SELECT a, a * 2 AS c FROM t")
    with pytest.raises(reeldb.Error) as e:
        db.merge("exp")
    assert e.value.sqlstate == "RD001" and "view" in str(e.value)
    assert [d[0] for d in db.execute("SELECT * FROM v").description] == ["a", "c"]
    db.close()
