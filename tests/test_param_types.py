"""Parameters keep the type a client declares for them, and regtype is PostgreSQL's: found
by psycopg 3's own suite (test_numeric, test_numpy, test_datetime, test_json), checked here
with psycopg 3 in text and binary against reeldb serve and a real PostgreSQL 16."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")
from psycopg.types.json import Json, Jsonb  # noqa: E402
from psycopg.types.numeric import Float4, Int2, Int4, Int8  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "main"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE small (id INT PRIMARY KEY, s SMALLINT)")
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=8)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def reel(server):
    host, port = server.address
    with psycopg.connect(f"host={host} port={port} dbname=main user=tester", autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def pg(postgres):
    with psycopg.connect(postgres, autocommit=True) as conn:
        yield conn


def answers(conn, sql: str, params: list, binary: bool = False) -> tuple[list, list[int]]:
    cur = conn.cursor(binary=binary)
    cur.execute(sql, params)
    return cur.fetchall(), [d.type_code for d in cur.description]


PARAMS = [Int2(7), Int4(7), Int8(7), Float4(1.5), 7, 2**40, 1.5, [Int2(1), None], [Int8(3)],
          Jsonb({"a": 1}), Json([1])]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("value", PARAMS, ids=repr)
def test_a_parameter_keeps_its_declared_type(reel, pg, value, binary: bool) -> None:
    """``SELECT $1`` and ``pg_typeof($1)`` answer the type the client declared (an int2 is
    not widened to int4, a small int8 not narrowed), as PostgreSQL does."""
    fmt = "%b" if binary else "%s"
    sql = f"SELECT {fmt}, pg_typeof({fmt}), pg_typeof({fmt})::oid::int"
    assert answers(reel, sql, [value] * 3, binary) == answers(pg, sql, [value] * 3, binary)


def test_declared_int2_arithmetic_overflows_as_int2(reel) -> None:
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        reel.execute("SELECT %s + %s", [Int2(30000), Int2(30000)])
    assert reel.execute("SELECT %s::int4 + 30000", [Int2(30000)]).fetchone() == (60000,)


def test_declared_int2_inserts_into_a_column(reel) -> None:
    reel.execute("DELETE FROM small")
    reel.execute("INSERT INTO small VALUES (%s, %s)", [Int8(1), Int2(-5)])
    assert reel.execute("SELECT id, s, pg_typeof(s) FROM small").fetchall() == [(1, -5, "smallint")]


REGTYPE_QUERIES = [
    ("SELECT pg_typeof(%s)::regtype = %s::regtype", [Jsonb([]), "jsonb"]),
    ("SELECT pg_typeof(%s)::regtype = %s::regtype", [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                                                      "timestamptz"]),
    ("SELECT pg_typeof(%s)::regtype = 'int4'::regtype", [Int4(0)]),
    ("SELECT 'int4'::regtype, 'int4'::regtype::oid::int, 'int4'::regtype::text", []),
    ("SELECT pg_typeof('int4'::regtype), pg_typeof(pg_typeof(1)), 'x' || pg_typeof(1.5)", []),
    ("SELECT oid::int, oid::regtype FROM pg_type WHERE typname = 'int4'", []),
    ("SELECT typname::text FROM pg_type WHERE oid = 'int8'::regtype", []),
    ("SELECT pg_typeof(1)::text = 'integer', to_regtype('int8'), to_regtype('int8')::oid::int", []),
    ("SELECT pg_typeof(a), pg_typeof(a)::oid::int FROM (VALUES (1::int2)) v(a)", []),
]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("sql, params", REGTYPE_QUERIES)
def test_regtype_as_postgresql(reel, pg, sql: str, params: list, binary: bool) -> None:
    """A regtype is its OID inside an expression, its name in a select list (text), its
    OID in binary; the column's type is regtype (2206)."""
    assert answers(reel, sql, params, binary) == answers(pg, sql, params, binary)


def test_regtype_compared_with_a_type_name_literal_is_refused_as_in_postgresql(reel, pg) -> None:
    for conn in (reel, pg):
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT pg_typeof(1) = 'integer'")


SERIES_QUERIES = [
    ("SELECT pg_typeof(x), x FROM generate_series(1, 2) x", []),
    ("SELECT x FROM generate_series(1, 2) AS t(x)", []),
    ("SELECT t FROM generate_series(1, 2) AS t", []),
    ("SELECT * FROM generate_series(1, 2)", []),
    ("SELECT pg_typeof(x) FROM generate_series(1::int8, 2) x", []),
    ("SELECT i, '2021-01-01'::date + i FROM generate_series(1, %s) AS i", [2]),
    ("SELECT generate_series(1, 3)::int4", []),
    ("SELECT generate_series(1, 2) + 1, 'a'", []),
    ("SELECT pg_typeof(generate_series(1, 2))", []),
    ("SELECT * FROM generate_series(1, 2) a JOIN generate_series(2, 3) b ON a = b", []),
    ("SELECT 1 FROM generate_series(1, 0)", []),
]


@pytest.mark.parametrize("sql, params", SERIES_QUERIES)
def test_generate_series_rows_and_types_as_postgresql(reel, pg, sql: str, params: list) -> None:
    """A select-list generate_series gives rows, anywhere in the item; of int4 bounds its
    values are int4 (so ``date + i`` works), in FROM too."""
    assert answers(reel, sql, params) == answers(pg, sql, params)


def test_insert_select_generate_series_inserts_rows(reel) -> None:
    reel.execute("DELETE FROM small")
    cur = reel.execute("INSERT INTO small SELECT generate_series(1, 42), 1")
    assert cur.rowcount == 42
    assert reel.execute("SELECT count(*), sum(id) FROM small").fetchone() == (42, 903)


DATE_QUERIES = [
    ("SELECT %t + %s::int", [dt.date(2000, 1, 1), 1]),
    ("SELECT %t + %s::int", [dt.date(2000, 3, 1), -1]),
    ("SELECT pg_typeof(%t), %t + interval '1 hour'", [dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 1)]),
    ("SELECT %t::text", [dt.date(2000, 1, 1)]),
]


@pytest.mark.parametrize("sql, params", DATE_QUERIES)
def test_declared_date_and_time_parameters_are_of_their_type(reel, pg, sql: str, params: list) -> None:
    """A date the client sends as text with the date OID is a date: ``$1 + 1`` adds days."""
    assert answers(reel, sql, params) == answers(pg, sql, params)


def test_select_of_no_columns_gives_rows_of_no_columns(reel, pg, server) -> None:
    """``SELECT`` and ``SELECT FROM t`` answer rows of no columns, as PostgreSQL does
    (psycopg's test_no_column), through the simple and the extended protocol and psql."""
    for sql, params in [("SELECT", None), ("SELECT FROM generate_series(1, 3)", None),
                        ("SELECT FROM generate_series(1, %s) WHERE true", [2])]:
        for conn in (reel, pg):
            cur = conn.execute(sql, params)
            assert cur.description == []
        assert reel.execute(sql, params).fetchall() == pg.execute(sql, params).fetchall()
    assert list(reel.cursor().stream("SELECT")) == [()]
    host, port = server.address
    out = subprocess.run(["psql", "-h", host, "-p", str(port), "-d", "main", "-U", "tester", "-X", "-c",
                          "SELECT FROM generate_series(1, 2)"], capture_output=True, text=True, check=True)
    assert "(2 rows)" in out.stdout


def test_cursor_over_no_columns_is_refused(reel) -> None:
    with reel.transaction(), pytest.raises(psycopg.errors.FeatureNotSupported):
        reel.execute("DECLARE c CURSOR FOR SELECT FROM generate_series(1, 3)")


@pytest.mark.parametrize("binary", [False, True])
def test_set_byte_and_get_byte_as_postgresql(reel, pg, binary: bool) -> None:
    sql = "SELECT set_byte('x', 0, %s), get_byte(set_byte('abc'::bytea, 2, %s), 2), %s = set_byte('x', 0, %s)"
    for i in (0, 65, 255, 321):
        params = [i, i, bytes([i & 0xFF]), i]
        assert answers(reel, sql, params, binary) == answers(pg, sql, params, binary)
    for conn in (reel, pg):
        with pytest.raises(psycopg.errors.ArraySubscriptError, match=r"index 1 out of valid range, 0\.\.0"):
            conn.execute("SELECT set_byte('x', 1, 0)")
        with pytest.raises(psycopg.errors.ArraySubscriptError):
            conn.execute("SELECT get_byte(''::bytea, 0)")


@pytest.mark.parametrize("binary", [False, True])
def test_timetz_results_keep_their_offset(reel, pg, binary: bool) -> None:
    """time with time zone results (DuckDB's Arrow export would drop the offset) are sent
    as PostgreSQL sends them, in text and binary; a parameter round-trips."""
    sql = ("SELECT '01:02:03.5-10:00'::timetz, '23:00:00+05:30'::timetz AS b, '12:00:00+00'::timetz AS c, "
           "%s::timetz AS d, pg_typeof('01:02:03+01'::timetz)::text AS e")
    value = dt.time(4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30)))
    assert answers(reel, sql, [value], binary) == answers(pg, sql, [value], binary)


def test_timetz_in_python_api(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    got = db.execute("SELECT '01:02:03.5-10:00'::timetz").fetchone()[0]
    assert got == dt.time(1, 2, 3, 500000, tzinfo=dt.timezone(dt.timedelta(hours=-10)))
    assert got.utcoffset() == dt.timedelta(hours=-10)


INTERVAL_FIELDS = ["interval '1.5' hour", "interval '999' hour", "'5'::interval hour to minute",
                   "interval '-3' day", "interval '1.5' day", "interval '90' minute", "interval '1.25' second",
                   "'1 day'::interval(6)", "interval '2' year"]


@pytest.mark.parametrize("expr", INTERVAL_FIELDS)
def test_interval_field_restrictions_as_postgresql(reel, pg, expr: str) -> None:
    """A bare number with a field (``interval '999' hour``) is in that field's unit, finer
    fields dropped, as PostgreSQL reads it (DuckDB would read 999 seconds)."""
    sql = f"SELECT {expr}"
    assert answers(reel, sql, []) == answers(pg, sql, [])


def test_interval_field_restriction_of_a_value_with_units_is_refused(reel) -> None:
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        reel.execute("SELECT interval '2 days 3:04:05' hour")
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        reel.execute("SELECT '1.23456'::interval(3)")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM (SELECT pg_typeof(1) AS t, 'int4'::regtype AS r) s",
    "WITH c AS (SELECT pg_typeof(1.5) AS t) SELECT t::text FROM c",
    "SELECT typname::text FROM pg_type WHERE oid IN (SELECT 'int4'::regtype)",
])
def test_regtype_through_subqueries_and_ctes(reel, pg, sql: str) -> None:
    """A regtype a subquery in FROM or a CTE selects is shown by name; one a subquery
    compared with IN gives is an OID, as PostgreSQL reads both."""
    assert reel.execute(sql).fetchall() == pg.execute(sql).fetchall()
