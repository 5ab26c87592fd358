"""Postgres behaviour the SQL layer keeps without a server: result column names,
LIKE ... ESCAPE, savepoints, settings, the statement timeout and the catalog."""

from __future__ import annotations

import pytest

import reeldb
from reeldb.sql.pgcatalog import format_type, type_oid
from reeldb.sql.session import parse_duration_ms


def names(db: reeldb.Connection, sql: str) -> list[str]:
    return [d[0] for d in db.execute(sql).description]


def test_unnamed_columns_are_named_as_postgres_names_them(db) -> None:
    db.execute("CREATE TABLE t (a INT, b TEXT)")
    assert names(db, "SELECT count(*), max(a) FROM t") == ["count", "max"]
    assert names(db, "SELECT a, t.b, a + 1, a::text, 'x'::int4, CASE WHEN a > 0 THEN 1 END, "
                     "ARRAY[1], coalesce(a, 0), (SELECT max(a) AS top FROM t), EXISTS (SELECT 1), "
                     "current_user, nullif(a, 1), greatest(a, 2) FROM t") == [
        "a", "b", "?column?", "a", "int4", "case", "array", "coalesce", "top", "exists",
        "current_user", "nullif", "greatest"]
    assert names(db, "SELECT a AS x FROM t UNION SELECT 1") == ["x"]


def test_like_escape(db) -> None:
    db.execute("CREATE TABLE t (s TEXT)")
    db.execute("INSERT INTO t VALUES ('pg_x'), ('pgax'), ('q')")
    got = db.execute("SELECT s FROM t WHERE s LIKE 'pg/_%' ESCAPE '/' ORDER BY s").fetchall()
    assert got == [("pg_x",)]
    got = db.execute("SELECT s FROM t WHERE s NOT ILIKE 'PG/_%' ESCAPE '/' ORDER BY s").fetchall()
    assert got == [("pgax",), ("q",)]


def test_like_escapes_with_a_backslash_by_default(db) -> None:
    """PostgreSQL 16's answers: LIKE's escape character is a backslash unless ESCAPE says
    otherwise, for LIKE, ILIKE, their NOT forms and the ~~ operators."""
    got = db.execute(r"SELECT 'defs_x' LIKE 'defs\_%', 'defsax' LIKE 'defs\_%', 'a\b' LIKE 'a\\b', "
                     r"'ab' LIKE 'a%' ESCAPE '', 'a%' LIKE 'a\%', 'A_b' ILIKE 'a\_B', 'ab' NOT LIKE 'a\b', "
                     r"'ab' LIKE 'a\b'").fetchall()
    assert got == [(True, False, True, True, True, True, False, True)]
    got = db.execute(r"SELECT 'x' ~~ 'x\%', 'X%' ~~* 'x\%', 'x' !~~ 'x\%', 'x' !~~* 'X', NULL LIKE 'a'").fetchall()
    assert got == [(False, True, True, False, None)]
    db.execute("CREATE TABLE names (n TEXT)")
    db.execute("INSERT INTO names VALUES ('pg_class'), ('pgxclass')")
    assert db.execute(r"SELECT n FROM names WHERE n LIKE 'pg\_%'").fetchall() == [("pg_class",)]
    with pytest.raises(reeldb.DataError) as e:
        db.execute(r"SELECT 'a\' LIKE 'a\'")
    assert e.value.sqlstate == "22025" and str(e.value) == "LIKE pattern must not end with escape character"


def test_pg_typeof_names_postgres_types(db) -> None:
    """PostgreSQL 16's (and pgvector's) names, never DuckDB's (varchar, float[3], decimal(5,2));
    a run-time type that stands for more than one of PostgreSQL's is refused."""
    db.execute("CREATE TYPE mood AS ENUM ('a', 'b')")
    db.execute("CREATE TABLE t (e VECTOR(3), h HALFVEC(3), s SPARSEVEC(3), b BIT(3), j JSONB, n NUMERIC(5,2), "
               "ts TIMESTAMPTZ, i INT2, tx TEXT, m mood, vc VARCHAR(4))")
    db.execute("INSERT INTO t VALUES ('[1,2,3]', '[1,2,3]', '{1:1}/3', '101', '{}', 1.5, now(), 1, 'a', 'a', 'x')")
    assert db.execute("SELECT pg_typeof(e), pg_typeof(h), pg_typeof(s), pg_typeof(b), pg_typeof(j), pg_typeof(n), "
                      "pg_typeof(ts), pg_typeof(i), pg_typeof(tx), pg_typeof(m), pg_typeof(vc) FROM t").fetchall() == \
        [("vector", "halfvec", "sparsevec", "bit", "jsonb", "numeric", "timestamp with time zone", "smallint",
          "text", "mood", "character varying")]
    assert db.execute("SELECT pg_typeof(1), pg_typeof(1.5), pg_typeof('a'), pg_typeof(NULL), pg_typeof(3000000000), "
                      "pg_typeof(true), pg_typeof(1::int8), pg_typeof(1.5::float4), pg_typeof(ARRAY[1, 2]), "
                      "pg_typeof(ARRAY['a']), pg_typeof('a'::text || 'x'), pg_typeof(count(*)), "
                      "pg_typeof('[1,2]'::halfvec)").fetchall() == \
        [("integer", "numeric", "unknown", "unknown", "bigint", "boolean", "bigint", "real", "integer[]",
          "text[]", "text", "bigint", "halfvec")]
    assert db.execute("SELECT pg_typeof(h + h), pg_typeof(e <-> e) FROM t").fetchall() == [("halfvec", "double precision")]
    with pytest.raises(reeldb.DataError):
        db.execute("SELECT pg_typeof('x'::int)")  # the cast still runs
    with pytest.raises(reeldb.NotSupportedError):
        db.execute("SELECT pg_typeof(j -> 'a') FROM t")  # DuckDB's JSON: json or jsonb?


def test_savepoints(db) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("SAVEPOINT a")
    db.execute("INSERT INTO t VALUES (2)")
    db.execute("SAVEPOINT b")
    db.execute("INSERT INTO t VALUES (3)")
    with pytest.raises(reeldb.IntegrityError):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(reeldb.OperationalError):  # the transaction is failed until ROLLBACK TO
        db.execute("SELECT 1")
    db.execute("ROLLBACK TO SAVEPOINT b")
    assert db.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,)]
    db.execute("ROLLBACK TO a")
    assert db.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,)]
    with pytest.raises(reeldb.OperationalError, match='savepoint "b" does not exist'):
        db.execute("RELEASE SAVEPOINT b")  # rolled back past it
    db.execute("ROLLBACK TO a")
    db.execute("INSERT INTO t VALUES (4)")
    db.execute("RELEASE a")
    db.execute("COMMIT")
    assert db.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (4,)]
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("SAVEPOINT outside")
    assert e.value.sqlstate == "25P01"


def test_settings_show_set_reset(db) -> None:
    assert db.execute("SHOW server_version").fetchone() == ("16.4",)
    db.execute("SET search_path TO public")
    assert db.execute("SELECT current_setting('search_path')").fetchone() == ("public",)
    db.execute("RESET search_path")
    assert db.execute("SHOW search_path").fetchone() == ('"$user", public',)
    db.execute("SET statement_timeout = '2s'")
    assert db.execute("SHOW statement_timeout").fetchone() == ("2s",)  # as PostgreSQL shows it
    assert parse_duration_ms("250") == 250 and parse_duration_ms("1min") == 60_000
    with pytest.raises(reeldb.DataError):
        parse_duration_ms("2 fortnights")


def test_statement_timeout_interrupts_and_the_session_goes_on(db) -> None:
    db.execute("SET statement_timeout = 100")
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("SELECT count(*) FROM generate_series(1, 100000000000) a, generate_series(1, 10) b WHERE a % 7 = b")
    assert e.value.sqlstate == "57014" and "statement timeout" in str(e.value)
    assert db.execute("SELECT 1").fetchone() == (1,)


def test_catalog_follows_the_tables_and_branches(db) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, v VECTOR(8))")
    q = ("SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
         "JOIN pg_class c ON c.oid = a.attrelid WHERE pg_table_is_visible(c.oid) AND c.relkind = 'r' "
         "AND c.relnamespace = 2200 ORDER BY 1, a.attnum")
    assert db.execute(q).fetchall() == [("t", "id", "integer"), ("t", "v", "vector(8)")]
    db.execute("ALTER TABLE t ADD COLUMN note VARCHAR(9)")
    assert db.execute(q).fetchall()[-1] == ("t", "note", "character varying(9)")
    db.branch("exp")  # checks it out
    db.execute("CREATE TABLE only_here (x INT)")
    assert {r[0] for r in db.execute(q).fetchall()} == {"t", "only_here"}
    found = db.execute("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE c.relname = 'only_here' ORDER BY 1").fetchall()
    assert found == [("exp",), ("public",)]


def test_format_type_and_type_names() -> None:
    assert format_type(type_oid("integer"), -1) == "integer"
    assert format_type(type_oid("vector"), 768) == "vector(768)"
    assert format_type(type_oid("_int8"), -1) == "bigint[]"
    assert format_type(type_oid("numeric"), ((10 << 16) | 2) + 4) == "numeric(10,2)"
    assert type_oid("public.vector") == 16385 and type_oid("nope") is None


def test_json_casts_and_no_extension_downloads(db) -> None:
    assert db.execute("""SELECT '{"a": 1}'::json, '{"a": 2}'::jsonb -> 'a'""").fetchone() == ({"a": 1}, 2)
    with pytest.raises(reeldb.ProgrammingError) as e:  # DuckDB would fetch the inet extension
        db.execute("SELECT '1.2.3.4'::inet")
    assert e.value.sqlstate == "42704" and str(e.value) == 'type "inet" does not exist'


def test_temporary_tables_are_the_sessions_own(db, path) -> None:
    db.execute("CREATE TABLE base (id INT PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO base VALUES (1, 'a'), (2, 'b')")
    head = db.execute("SELECT count(*) FROM reeldb_log()").fetchone()
    db.execute("CREATE TEMPORARY TABLE scratch (id SERIAL PRIMARY KEY, name TEXT DEFAULT 'x', emb VECTOR(2))")
    assert db.execute("INSERT INTO scratch (name, emb) VALUES ('a', '[1,2]'), (DEFAULT, '[3,4]')").rowcount == 2
    assert db.execute("UPDATE scratch SET name = %s WHERE id = %s RETURNING id, name", ("z", 2)).fetchall() == [
        (2, "z")]
    assert db.execute("SELECT s.name, b.v FROM scratch s JOIN base b USING (id) ORDER BY id").fetchall() == [
        ("a", "a"), ("z", "b")]
    with pytest.raises(reeldb.IntegrityError):
        db.execute("INSERT INTO scratch (id) VALUES (1)")
    db.execute("CREATE TEMP TABLE picked AS SELECT id FROM base WHERE v = 'b'")
    assert db.execute("SELECT * FROM picked").fetchall() == [(2,)]
    assert db.execute("SELECT count(*) FROM reeldb_log()").fetchone() == head  # nothing committed
    other = reeldb.connect(path)
    with pytest.raises(reeldb.ProgrammingError):
        other.execute("SELECT * FROM scratch")  # another session does not see it
    other.close()
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("CREATE TEMP TABLE base (x INT)")
    assert e.value.sqlstate == "42P07"
    db.execute("DROP TABLE scratch, picked")
    with pytest.raises(reeldb.ProgrammingError):
        db.execute("SELECT * FROM scratch")
    db.execute("BEGIN")
    db.execute("CREATE TEMP TABLE gone (a INT) ON COMMIT DROP")
    db.execute("INSERT INTO gone VALUES (1)")
    db.execute("COMMIT")
    with pytest.raises(reeldb.ProgrammingError):
        db.execute("SELECT * FROM gone")
    with pytest.raises(reeldb.NotSupportedError):
        db.execute("CREATE TEMP TABLE clips (v VIDEO)")


def test_cursors_declare_fetch_move_close(db) -> None:
    db.execute("CREATE TABLE t (a INT)")
    db.executemany("INSERT INTO t VALUES (%s)", [(i,) for i in range(10)])
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("DECLARE c CURSOR FOR SELECT a FROM t")
    assert e.value.sqlstate == "25P01"  # outside a transaction only WITH HOLD
    db.execute("BEGIN")
    db.execute("DECLARE c SCROLL CURSOR FOR SELECT a FROM t ORDER BY a")

    def fetch(q: str) -> list[int]:
        return [r[0] for r in db.execute(q).fetchall()]

    assert fetch("FETCH 3 FROM c") == [0, 1, 2]
    assert fetch("FETCH NEXT FROM c") == [3]
    assert fetch("FETCH BACKWARD 2 FROM c") == [2, 1]
    assert fetch("FETCH ABSOLUTE -1 FROM c") == [9]
    assert fetch("FETCH FORWARD 5 FROM c") == []
    assert fetch("FETCH PRIOR FROM c") == [9]
    assert db.execute("MOVE ABSOLUTE 0 IN c").rowcount == 0
    assert fetch("FETCH RELATIVE 2 FROM c") == [1]
    assert fetch("FETCH ALL FROM c") == list(range(2, 10))
    with pytest.raises(reeldb.ProgrammingError) as e:
        db.execute("DECLARE c CURSOR FOR SELECT 1")
    assert e.value.sqlstate == "42P03"
    db.rollback()
    db.execute("BEGIN")
    db.execute("DECLARE kept CURSOR WITH HOLD FOR SELECT a FROM t WHERE a > 7 ORDER BY a")
    db.execute("DECLARE gone NO SCROLL CURSOR FOR SELECT a FROM t")
    with pytest.raises(reeldb.OperationalError):
        db.execute("FETCH BACKWARD 1 FROM gone")
    db.rollback()  # a rollback takes even a WITH HOLD cursor declared in it
    with pytest.raises(reeldb.OperationalError):
        db.execute("FETCH 1 FROM kept")
    db.execute("BEGIN")
    db.execute("DECLARE kept CURSOR WITH HOLD FOR SELECT a FROM t WHERE a > 7 ORDER BY a")
    db.execute("DECLARE gone CURSOR FOR SELECT a FROM t")
    db.execute("COMMIT")
    assert fetch("FETCH ALL FROM kept") == [8, 9]
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("FETCH 1 FROM gone")  # ended with its transaction
    assert e.value.sqlstate == "34000"
    db.execute("CLOSE kept")
    with pytest.raises(reeldb.OperationalError):
        db.execute("CLOSE kept")


def test_transaction_characteristics(db) -> None:
    db.execute("CREATE TABLE t (a INT)")
    show = lambda name: db.execute(f"SHOW {name}").fetchone()[0]  # noqa: E731
    assert show("transaction_isolation") == "repeatable read"
    db.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY")
    assert (show("transaction_isolation"), show("transaction_read_only")) == ("read committed", "on")
    with pytest.raises(reeldb.OperationalError) as e:
        db.execute("INSERT INTO t VALUES (1)")
    assert e.value.sqlstate == "25006"
    db.execute("ROLLBACK")
    assert show("transaction_isolation") == "repeatable read"
    db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
    db.execute("BEGIN")
    assert show("transaction_isolation") == "read uncommitted"
    db.execute("SET TRANSACTION READ ONLY")
    assert show("transaction_read_only") == "on"
    db.execute("COMMIT")
    db.execute("SET default_transaction_read_only = on")
    with pytest.raises(reeldb.OperationalError):
        db.execute("INSERT INTO t VALUES (1)")
    db.execute("SET default_transaction_read_only TO off")
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(reeldb.NotSupportedError, match="snapshot isolation"):
        db.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    with pytest.raises(reeldb.DataError):
        db.execute("SET default_transaction_isolation = 'sometimes'")
