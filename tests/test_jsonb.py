"""jsonb answers as PostgreSQL 16 does (every expected value here was checked there): the
canonical text out (psql, psycopg text and binary, asyncpg, COPY TO), equality of values
(numbers as numeric, key order and spacing irrelevant), containment, ``||``, ``-``, ``?``,
and jsonb's btree order for ORDER BY and ``<``; ``json`` keeps its text. Through a real
server on 127.0.0.1 and the Python API."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest

import reeldb
from reeldb.format import jsonb as jsonb_format
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")

# (stored text, PostgreSQL's jsonb::text of it)
PREFERENCES = [
    (1, '{"winner":"a","scores":{"b":0.40,"a":0.9},"raters":["x","y"]}',
     '{"raters": ["x", "y"], "scores": {"a": 0.9, "b": 0.40}, "winner": "a"}'),
    (2, '{"age": 25.0, "b": 1e2, "b": 3}', '{"b": 3, "age": 25.0}'),
    (3, '[1, 2.50, -0, "é\\n"]', '[1, 2.50, 0, "é\\n"]'),
    (4, '"just a string"', '"just a string"'),
    (5, 'null', 'null'),
    (6, '{}', '{}'),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "gen"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE generations (id INT PRIMARY KEY, prompt TEXT, human_preference JSONB, raw_meta JSON)")
    db.executemany("INSERT INTO generations VALUES (%s, %s, %s, %s)",
                   [(i, f"prompt {i}", text, text) for i, text, _ in PREFERENCES])
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=8)
    yield srv
    srv.stop()


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=gen user=tester"


@pytest.fixture(scope="module")
def conn(server):
    with psycopg.connect(dsn(server), autocommit=True) as c:
        yield c


def one(conn, sql: str, params=None, binary: bool = False):
    return conn.execute(sql, params, binary=binary).fetchone()


class _RawLoader(psycopg.adapt.Loader):
    """The wire bytes of a value, as the server sent them."""

    def load(self, data):
        return bytes(data)


class _RawBinaryLoader(_RawLoader):
    format = psycopg.pq.Format.BINARY


def raw_cursor(conn):
    cur = conn.cursor()
    for name in ("jsonb", "json"):
        cur.adapters.register_loader(name, _RawLoader)
        cur.adapters.register_loader(name, _RawBinaryLoader)
    return cur


# -- 1. canonical text out --------------------------------------------------------------------
def test_jsonb_column_is_sent_in_postgres_canonical_text(conn) -> None:
    cur = raw_cursor(conn)
    rows = cur.execute("SELECT id, human_preference, raw_meta FROM generations ORDER BY id").fetchall()
    assert [(i, j.decode()) for i, j, _ in rows] == [(i, canon) for i, _, canon in PREFERENCES]
    assert [m.decode() for _, _, m in rows] == [text for _, text, _ in PREFERENCES]  # json keeps its text
    assert [d.type_code for d in cur.description] == [23, 3802, 114]


def test_jsonb_binary_is_version_one_then_the_canonical_text(conn) -> None:
    cur = raw_cursor(conn)
    rows = cur.execute("SELECT human_preference, raw_meta FROM generations ORDER BY id", binary=True).fetchall()
    assert [j for j, _ in rows] == [b"\x01" + canon.encode() for _, _, canon in PREFERENCES]
    assert [m for _, m in rows] == [text.encode() for _, text, _ in PREFERENCES]
    # and psycopg's own binary loader reads it back
    assert one(conn, "SELECT human_preference FROM generations WHERE id = 2", binary=True) == ({"age": 25.0, "b": 3},)


def test_jsonb_cast_to_text_and_literals_print_canonically(conn) -> None:
    got = one(conn, """SELECT '{"a":1, "b":[1,2]}'::jsonb::text, '1e2'::jsonb::text,
                              '[1.50e1, -0, -0.00, 1e-3, 0e10]'::jsonb::text, human_preference::text,
                              raw_meta::text
                       FROM generations WHERE id = 1""")
    assert got == ('{"a": 1, "b": [1, 2]}', "100", "[15.0, 0, 0.00, 0.001, 0]", PREFERENCES[0][2], PREFERENCES[0][1])


def test_psql_shows_jsonb_canonically(server) -> None:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "gen", "-c",
                          "SELECT human_preference, raw_meta FROM generations WHERE id = 2"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == f"{PREFERENCES[1][2]}|{PREFERENCES[1][1]}", out.stderr


def test_copy_to_writes_canonical_jsonb(conn) -> None:
    with conn.cursor().copy("COPY (SELECT id, human_preference FROM generations WHERE id <= 2 ORDER BY id) "
                            "TO STDOUT") as copy:
        data = b"".join(bytes(b) for b in copy).decode()
    assert data == "".join(f"{i}\t{canon}\n" for i, _, canon in PREFERENCES[:2])


def test_asyncpg_reads_canonical_jsonb(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def run():
        c = await asyncpg.connect(host=host, port=port, user="tester", database="gen")
        try:
            return (await c.fetch("SELECT human_preference FROM generations ORDER BY id"),
                    await c.fetchval("SELECT id FROM generations WHERE human_preference = $1::jsonb",
                                     '{"b": 3.000, "age": 25}'))
        finally:
            await c.close()

    rows, found = asyncio.run(run())
    assert [r[0] for r in rows] == [canon for _, _, canon in PREFERENCES]
    assert found == 2


def test_python_api_still_returns_parsed_values(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "api")
    db.execute("CREATE TABLE generations (id INT, human_preference JSONB)")
    db.execute("""INSERT INTO generations VALUES (1, '{"winner": "a", "score": 25.0}'), (2, '[1, 2]')""")
    assert db.execute("SELECT human_preference FROM generations ORDER BY id").fetchall() == [
        ({"winner": "a", "score": 25.0},), ([1, 2],)]
    assert db.execute("""SELECT id FROM generations WHERE human_preference @> '{"score": 25}'""").fetchall() == [(1,)]
    assert db.execute("SELECT human_preference || %s FROM generations WHERE id = 2",
                      ['{"b": 1}']).fetchone() == ([1, 2, {"b": 1}],)


# -- 2. equality and containment --------------------------------------------------------------
@pytest.mark.parametrize(("expr", "expected"), [
    ("""'{"a":1}'::jsonb = '{"a": 1}'::jsonb""", True),
    ("""'{"a":1,"b":2}'::jsonb = '{"b":2,"a":1}'""", True),
    ("""'{"age": 25.0}'::jsonb = '{"age": 25}'""", True),
    ("""'2.50'::jsonb = '2.5'::jsonb""", True),
    ("""'{"a":1}'::jsonb <> '{"a":2}'""", True),
    ("""'{"a":1,"a":2}'::jsonb = '{"a":2}'""", True),
    ("""'"1"'::jsonb = '1'::jsonb""", False),
    ("""'{"a":1}'::jsonb IN ('{"a": 1.0}', '[]')""", True),
    ("""'{"a":1}'::jsonb IS DISTINCT FROM '{"a":1.00}'""", False),
    ("""'{"age": 25.0}'::jsonb @> '{"age":25}'""", True),
    ("""'[1,2,3]'::jsonb @> '[3,1]'""", True),
    ("""'[1,[2]]'::jsonb @> '[[2]]'""", True),
    ("""'[1,2]'::jsonb @> '1'""", True),
    ("""'1'::jsonb @> '[1]'""", False),
    ("""'[[1,2]]'::jsonb @> '[1]'""", False),
    ("""'{"a":[1,2]}'::jsonb @> '{"a":1}'""", False),
    ("""'{"a":1}'::jsonb @> '1'""", False),
    ("""'[1]'::jsonb @> '[1,1,1]'""", True),
    ("""'{"age":25}'::jsonb <@ '{"age": 25.0, "b": 1}'""", True),
])
def test_jsonb_equality_and_containment_as_postgres(conn, expr: str, expected: bool) -> None:
    assert one(conn, f"SELECT {expr}") == (expected,)
    assert one(conn, f"SELECT {expr}", binary=True) == (expected,)


def test_jsonb_column_compared_with_parameters_and_columns(conn) -> None:
    assert conn.execute("SELECT id FROM generations WHERE human_preference = %s::jsonb",
                        ['{"b": 3.0, "age": 25}']).fetchall() == [(2,)]
    assert conn.execute("SELECT id FROM generations WHERE human_preference @> %s ORDER BY id",
                        [psycopg.types.json.Jsonb({"scores": {"a": 0.90}})]).fetchall() == [(1,)]
    assert conn.execute("""SELECT a.id, b.id FROM generations a JOIN generations b
                           ON a.human_preference = b.human_preference ORDER BY a.id""").fetchall() == [
        (i, i) for i, _, _ in PREFERENCES]


# -- 3. || - ? ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("expr", "expected"), [
    ("""'{"a":1}'::jsonb || '{"b":2}'::jsonb""", '{"a": 1, "b": 2}'),
    ("""'{"a":1,"b":1}'::jsonb || '{"b":2}'""", '{"a": 1, "b": 2}'),
    ("""'[1]'::jsonb || '[2, 3]'::jsonb""", "[1, 2, 3]"),
    ("""'1'::jsonb || '{"a":1}'::jsonb""", '[1, {"a": 1}]'),
    ("""'1'::jsonb || '2'::jsonb""", "[1, 2]"),
    ("""'{"a":1}'::jsonb || '[1]'""", '[{"a": 1}, 1]'),
    ("""'[]'::jsonb || '{}'::jsonb""", "[{}]"),
    ("""'{"a":1,"b":2}'::jsonb - 'a'""", '{"b": 2}'),
    ("""'["a","b",1]'::jsonb - 'a'""", '["b", 1]'),
    ("""'[1,2,3]'::jsonb - 1""", "[1, 3]"),
    ("""'[1,2,3]'::jsonb - -1""", "[1, 2]"),
])
def test_jsonb_concat_and_delete_as_postgres(conn, expr: str, expected: str) -> None:
    assert one(conn, f"SELECT ({expr})::text") == (expected,)
    assert raw_cursor(conn).execute(f"SELECT {expr}").fetchone() == (expected.encode(),)


def test_jsonb_concatenated_with_text_is_text_of_its_canonical_form(conn) -> None:
    assert one(conn, """SELECT '{"a":1}'::jsonb || '{"a":1}'::text""") == ('{"a": 1}{"a":1}',)


def test_jsonb_field_and_path_operators_as_postgres(conn) -> None:
    got = one(conn, """SELECT ('[1,2,3]'::jsonb -> -1)::text, ('[1,2,3]'::jsonb -> 5)::text, ('{"a":1}'::jsonb -> 0)::text,
                              ('[1]'::jsonb -> 'a')::text, ('"x"'::jsonb -> 0)::text, '{"a":null}'::jsonb ->> 'a',
                              '{"a":"s\\"t"}'::jsonb ->> 'a', ('{"a":{"b":[1,2.50]}}'::jsonb #> '{a,b,-1}')::text,
                              '{"a":{"b":[1,2]}}'::jsonb #> '{a,b,x}', '"abc"'::jsonb #>> '{}',
                              '{"a":[1]}'::jsonb #>> '{a}', '[1,2]'::jsonb -> '1', '{"a": 1.50}'::jsonb ->> 'a'""")
    assert got == ("3", None, None, None, '"x"', None, 's"t', "2.50", None, "abc", "[1]", None, "1.50")
    got = conn.execute("SELECT human_preference -> 'scores', human_preference #>> '{scores,b}' FROM generations "
                       "WHERE id = 1", binary=True).fetchone()
    assert got == ({"a": 0.9, "b": 0.4}, "0.40")


def test_jsonb_key_exists_operators(conn) -> None:
    got = one(conn, """SELECT '{"a":1}'::jsonb ? 'a', '["a"]'::jsonb ? 'a', '"a"'::jsonb ? 'a', '{"a":1}'::jsonb ? 'b',
                              '{"a":1,"b":2}'::jsonb ?| array['a','c'], '{"a":1,"b":2}'::jsonb ?& array['a','c']""")
    assert got == (True, True, True, False, True, False)
    assert conn.execute("SELECT id FROM generations WHERE human_preference ? 'winner'").fetchall() == [(1,)]


@pytest.mark.parametrize(("expr", "sqlstate"), [
    ("""'1'::jsonb - 'a'""", "22023"),
    ("""'{"a":1}'::jsonb - 0""", "22023"),
    ("""'"\\u0000"'::jsonb""", "22P05"),
    ("""'1e200000'::jsonb""", "22003"),
    ("""'{"a":NaN}'::jsonb""", "22P02"),
    ("""'"\\ud800"'::jsonb""", "22P02"),
    ("('[' || repeat('[', 5000) || repeat(']', 5000) || ']')::jsonb", "54001"),
    ("""'{"a":1}'::jsonb = '{"a":1}'::json""", "42883"),
    ("""'{"a":1}'::jsonb = '{"a":1}'::text""", "42883"),
    ("""human_preference @> raw_meta FROM generations""", "42883"),
    ("""'1'::jsonb = 1""", "42883"),
    ("max(human_preference) FROM generations", "42883"),
    ("raw_meta = raw_meta FROM generations", "42883"),
    ("1 FROM generations WHERE human_preference IN (SELECT human_preference FROM generations)", "0A000"),
])
def test_jsonb_errors_as_postgres(conn, expr: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as e:
        conn.execute(f"SELECT {expr}")
    assert e.value.sqlstate == sqlstate


@pytest.mark.parametrize(("value", "sqlstate"), [
    ('{"a": NaN}', "22P02"), ('"\\u0000"', "22P05"), ("1e200000", "22003")])
def test_jsonb_column_refuses_what_postgres_refuses_and_stores_nothing(tmp_path, value: str, sqlstate: str) -> None:
    db = reeldb.connect(tmp_path / "refuse")
    db.execute("CREATE TABLE generations (id INT, human_preference JSONB)")
    for insert in (lambda: db.execute("INSERT INTO generations VALUES (1, %s)", [value]),
                   lambda: db.execute(f"INSERT INTO generations VALUES (1, '{value}')")):
        with pytest.raises(reeldb.Error) as e:
            insert()
        assert e.value.sqlstate == sqlstate
    assert db.execute("SELECT count(*) FROM generations").fetchone() == (0,)


def test_refused_jsonb_update_changes_nothing(conn) -> None:
    before = raw_cursor(conn).execute("SELECT id, human_preference FROM generations ORDER BY id").fetchall()
    with pytest.raises(psycopg.Error) as e:
        conn.execute("UPDATE generations SET human_preference = human_preference - 0 WHERE id = 1")
    assert e.value.sqlstate == "22023"
    assert raw_cursor(conn).execute("SELECT id, human_preference FROM generations ORDER BY id").fetchall() == before


# -- 4. ordering -------------------------------------------------------------------------------
# PostgreSQL's ORDER BY of these values: [] < scalars (null < strings < numbers < booleans)
# < arrays (by length, then elements) < objects (by pair count, then keys in storage order)
PG_ORDER = ['[]', 'null', '"a"', '"b"', '-2.5', '1', '25.0', 'false', 'true', '[3]', '[1, 2]', '{}', '{"aa": 1}',
            '{"b": 1}', '{"a": 2, "b": 1}', '{"score": 0.9, "winner": "a"}']


def test_order_by_jsonb_is_postgres_btree_order(conn) -> None:
    values = ", ".join(f"('{v}'::jsonb)" for v in reversed(PG_ORDER))
    asc = conn.execute(f"SELECT v::text FROM (VALUES {values}) t(v) ORDER BY t.v::jsonb").fetchall()
    assert [r[0] for r in asc] == PG_ORDER
    desc = conn.execute(f"SELECT v::jsonb FROM (VALUES {values}) t(v) ORDER BY 1 DESC", binary=True).fetchall()
    assert [json.dumps(r[0]) for r in desc] == [json.dumps(json.loads(v)) for v in reversed(PG_ORDER)]
    # ORDER BY the name of a text output column sorts that text, as PostgreSQL
    by_text = conn.execute(f"SELECT v::text AS v FROM (VALUES {values}) t(v) ORDER BY v").fetchall()
    assert [r[0] for r in by_text] == sorted(PG_ORDER, key=lambda s: s.encode())


def test_order_by_a_jsonb_value_of_unknown_type_is_refused_not_sorted_as_text(conn) -> None:
    for sql in ("""SELECT v FROM (VALUES ('[]'::jsonb), ('null')) t(v) ORDER BY v""",
                "SELECT s.h FROM (SELECT human_preference AS h FROM generations) s ORDER BY h"):
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        assert e.value.sqlstate == "0A000"
    assert conn.execute("SELECT x FROM (VALUES (2), (1)) t(x) ORDER BY x").fetchall() == [(1,), (2,)]


@pytest.mark.parametrize("sql", [
    """SELECT s.h FROM (SELECT human_preference AS h FROM generations) s WHERE h = '{"b": 3, "age": 25}'""",
    "SELECT human_preference, count(*) FROM generations GROUP BY human_preference",
    "SELECT human_preference, count(*) FROM generations GROUP BY 1",
    "SELECT DISTINCT human_preference FROM generations",
])
def test_jsonb_compared_or_grouped_as_text_is_refused(conn, sql: str) -> None:
    with pytest.raises(psycopg.Error) as e:
        conn.execute(sql)
    assert e.value.sqlstate == "0A000"


def test_grouping_by_jsonb_text_and_comparing_untyped_text_still_work(conn) -> None:
    got = conn.execute("SELECT human_preference::text, count(*) FROM generations WHERE id <= 2 "
                       "GROUP BY human_preference::text ORDER BY 1").fetchall()
    assert got == sorted([(PREFERENCES[0][2], 1), (PREFERENCES[1][2], 1)])
    assert conn.execute("SELECT x FROM (VALUES ('a'), ('b')) t(x) WHERE x = 'a'").fetchall() == [("a",)]


def test_jsonb_less_than_and_column_order(conn) -> None:
    assert one(conn, """SELECT '[]'::jsonb < 'null'::jsonb, '1'::jsonb < '[]'::jsonb,
                               '{"aa":1,"c":1}'::jsonb > '{"b":1,"d":1}'::jsonb, '25.0'::jsonb <= '25'::jsonb""") == (
        True, False, True, True)
    ids = conn.execute("SELECT id FROM generations ORDER BY human_preference DESC, id").fetchall()
    assert [i for (i,) in ids] == [1, 2, 6, 3, 4, 5]


def test_sort_key_orders_as_equality_says() -> None:
    assert jsonb_format.sort_key('{"a": 25.0}') == jsonb_format.sort_key('{"a":25}')
    assert jsonb_format.sort_key("0.1") < jsonb_format.sort_key("0.11") < jsonb_format.sort_key("1e0")
    assert jsonb_format.sort_key("-0.11") < jsonb_format.sort_key("-0.1") < jsonb_format.sort_key("0")


# COALESCE / CASE / NULLIF / a scalar subquery of jsonb keep jsonb's type, as PostgreSQL
# resolves them; each answer is compared with a real PostgreSQL 16's (the postgres fixture)
TYPED_THROUGH = [
    """SELECT COALESCE(meta, '{}'::jsonb) || '{"b":2}'::jsonb FROM g ORDER BY id""",
    """SELECT COALESCE(meta, '{}') || '{"b":2}' FROM g ORDER BY id""",
    """SELECT COALESCE(meta, '{"a":1,"a":2}') FROM g ORDER BY id""",
    """SELECT CASE WHEN id = 1 THEN meta ELSE '{"z":1, "z":3}' END || '{"b":2}' FROM g ORDER BY id""",
    """SELECT CASE id WHEN 1 THEN meta END FROM g ORDER BY id""",
    """SELECT NULLIF(meta, '{}') || '{"c":3}' FROM g ORDER BY id""",
    """SELECT (SELECT meta FROM g WHERE id = 1) || '{"b":2}'::jsonb""",
    """SELECT COALESCE(t, 'x') || 'y' FROM g ORDER BY id""",
]


def test_jsonb_keeps_its_type_through_coalesce_case_and_subqueries(tmp_path, postgres):
    setup = ["CREATE TABLE g (id INT, meta JSONB, t TEXT)",
             """INSERT INTO g VALUES (1, '{"k": 0}', 'a'), (2, NULL, NULL), (3, '{}', 'c')"""]
    db = reeldb.connect(tmp_path / "db")
    with psycopg.connect(postgres, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS g")
        for sql in setup:
            db.execute(sql)
            pg.execute(sql)
        for sql in TYPED_THROUGH:
            assert db.execute(sql).fetchall() == pg.execute(sql).fetchall(), sql


def test_jsonb_whose_type_is_unknown_before_running_is_refused_not_joined_as_text(tmp_path):
    """A subquery's column: its type shows only when running, where DuckDB would join
    the texts end to end ('{"k": 0}{"b": 2}'); GREATEST would compare texts."""
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE g (id INT, meta JSONB, t TEXT)")
    db.execute("""INSERT INTO g VALUES (1, '{"k": 0}', 'a')""")
    with pytest.raises(reeldb.errors.FeatureNotSupported, match="cast it to jsonb"):
        db.execute("""SELECT x || '{"b":2}'::jsonb FROM (SELECT meta AS x FROM g) s""").fetchall()
    with pytest.raises(reeldb.errors.FeatureNotSupported, match="GREATEST"):
        db.execute("SELECT greatest(meta, '{}') FROM g").fetchall()
    # a text column of a subquery still concatenates
    assert db.execute("SELECT x || 'b' FROM (SELECT t AS x FROM g) s").fetchall() == [("ab",)]


def test_arrays_of_json_go_out_as_postgresqls(server, postgres):
    """An array of json or jsonb: each element's JSON text, quoted as an array element
    (a JSON array inside was sent as a sub-array: {{a,100}}); text and binary, read by
    psycopg's loaders, and the text itself as PostgreSQL 16 prints it."""
    host, port = server.address
    queries = ["""SELECT array['["a", 100]'::json]""", """SELECT array['{"k": "v"}'::json, NULL]""",
               """SELECT array['true'::jsonb, NULL]""", """SELECT array['"te''xt"'::jsonb]"""]
    with psycopg.connect(f"host={host} port={port} dbname=gen user=tester", autocommit=True) as ours, \
            psycopg.connect(postgres, autocommit=True) as pg:
        for sql in queries:
            for binary in (False, True):
                assert ours.cursor(binary=binary).execute(sql).fetchone() == \
                    pg.cursor(binary=binary).execute(sql).fetchone(), (sql, binary)
            assert ours.execute(sql).pgresult.get_value(0, 0) == pg.execute(sql).pgresult.get_value(0, 0), sql
