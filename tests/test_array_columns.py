"""Columns of arrays of scalar types (int[], text[], numeric(5,2)[], ...): stored as Parquet
lists, typed as Postgres' array types in the catalog and on the wire, in both wire formats,
through psycopg 3 (text and binary), psycopg2, asyncpg, psql and the Python API. Every
expected answer below is PostgreSQL 16's (checked against a real one); where reeldb cannot
give it, the statement is refused (0A000) and nothing changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import reeldb
from reeldb import errors
from reeldb.format.fragment import scol
from served import served

psycopg = pytest.importorskip("psycopg")

COLUMNS = ("id int, a int[], tags text[], n numeric(5,2)[], b bytea[], j jsonb[], u uuid[], f real[], "
           "d date[], ts timestamptz[], bo bool[], big bigint[], s smallint[], f8 float8[], v varchar(3)[], "
           "tsn timestamp[]")
U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
ROW = (1, [1, None, 3], ["a b", 'q"x', None, "", "NULL", "\x1c", "x\\y", "{}"], [decimal.Decimal("1.5"), None],
       [b"\x00\x01", None], None, [U, None], [0.1, 2.5], [dt.date(2020, 1, 2)],
       [dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)], [True, None, False], [2**40], [-1, 2], [0.1, 1e100],
       ["ab", None], [dt.datetime(2020, 1, 2, 3, 4, 5, 500000)])
INSERT = f"INSERT INTO {{}} VALUES ({', '.join(['%s'] * len(ROW))})"
# Postgres' array OIDs of the columns after id, as RowDescription and pg_attribute give them
ARRAY_OIDS = [1007, 1009, 1231, 1001, 3807, 2951, 1021, 1182, 1185, 1000, 1016, 1005, 1022, 1015, 1115]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory, "arrays", f"CREATE TABLE ops ({COLUMNS})",
                "INSERT INTO ops (id, a, tags) VALUES (1, ARRAY[1,2,NULL], '{a,\"b c\",NULL}'), (2, '{}', '{}'), "
                "(3, NULL, NULL), (4, '{3,1}', '{x}')") as srv:
        yield srv


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=arrays user=tester"


def fresh_table(conn, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} ({COLUMNS})")


def expected_rows(row: tuple) -> tuple:
    """ROW as Postgres gives it back: numeric(5,2) keeps two places, varchar(3)[] as sent."""
    out = list(row)
    out[3] = [None if x is None else x.quantize(decimal.Decimal("0.01")) for x in row[3]]
    return tuple(out)


def rows_equal(got: tuple, want: tuple) -> None:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if i == 7:  # real[]: float4 values, read back as the doubles nearest them
            assert g == pytest.approx(w, rel=1e-7), i
        elif i == 9 and g is not None:  # timestamptz: the same instant whatever tzinfo the client attaches
            assert [x.astimezone(dt.timezone.utc) for x in g] == w
        elif isinstance(w, list) and w and isinstance(w[0], bytes):
            assert [None if x is None else bytes(x) for x in g] == w
        else:
            assert g == w, (i, g, w)


# -- the Python API -------------------------------------------------------------------------------
def test_python_api_stores_lists_in_parquet_and_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = reeldb.connect(path)
    db.execute(f"CREATE TABLE t ({COLUMNS})")
    db.execute(INSERT.format("t"), ROW)
    db.execute("INSERT INTO t (id, a, tags, j) VALUES (%s, %s, %s, %s)", (2, [], [], [{"k": [1, 2]}, 3, '"s"']))
    db.execute("INSERT INTO t (id, a, tags, n) VALUES (3, '{7,NULL}', ARRAY['p', NULL], '{1.005}')")
    db.close()
    db = reeldb.connect(path)  # read back from storage, not from memory
    rows = db.execute("SELECT * FROM t ORDER BY id").fetchall()
    rows_equal(rows[0], expected_rows(ROW))
    assert rows[1][1:3] == ([], []) and rows[1][5] == [{"k": [1, 2]}, 3, "s"]
    assert rows[2][1:4] == ([7, None], ["p", None], [decimal.Decimal("1.01")])  # numeric(5,2) rounds half up
    assert isinstance(rows[0][6][0], uuid.UUID)
    files = list((path / "data").rglob("*.parquet"))
    assert files
    types = {f.name: f.type for f in pq.read_schema(files[0])}
    assert types[scol(2)] == pa.list_(pa.int32()) and types[scol(3)] == pa.list_(pa.string())  # columns a, tags (id is 1)
    assert types[scol(4)] == pa.list_(pa.decimal128(5, 2)) and types[scol(5)] == pa.list_(pa.binary())
    db.close()


def refused(db, sql: str, sqlstate: str, params: tuple | None = None, match: str | None = None) -> None:
    with pytest.raises(errors.Error, match=match) as e:
        db.execute(sql, params)
    assert e.value.sqlstate == sqlstate, e.value


@pytest.mark.parametrize(("value", "sqlstate", "match"), [
    ("{{1,2},{3,4}}", "0A000", "multi-dimensional arrays are not supported"),
    ([[1, 2], [3, 4]], "0A000", r"multi-dimensional arrays are not supported \(column a is integer\[\]\)"),
    ("{1,x}", "22P02", 'invalid input syntax for type integer: "x"'),
    ("{1,2", "22P02", "malformed array literal"),
    ("1,2", "22P02", "malformed array literal"),
    ("{99999999999}", "22003", "integer out of range"),
    ("[0:1]={1,2}", "0A000", "subscripts do not start at 1"),
    ("[1:3]={1,2}", "22P02", "malformed array literal"),
    ([1, 2**40], "22003", "integer out of range"),
    ([1, "x"], "42804", r'column "a" is of type integer\[\] but expression is of type text\[\]'),
    ([1, True], "42804", r"integer\[\] but an element is of type bool|of type bool"),
])
def test_bad_values_are_refused_with_postgres_errors_and_nothing_is_written(tmp_path: Path, value, sqlstate: str,
                                                                           match: str) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a int[], v varchar(3)[])")
    db.execute("INSERT INTO t VALUES ('{1}', '{a}')")
    refused(db, "INSERT INTO t (a) VALUES (%s)", sqlstate, (value,), match)
    if isinstance(value, str):  # a list parameter of UPDATE reaches DuckDB first, which types it
        refused(db, "UPDATE t SET a = %s", sqlstate, (value,), match)
    assert db.execute("SELECT a, v FROM t").fetchall() == [([1], ["a"])]
    refused(db, "INSERT INTO t (v) VALUES ('{abcd}')", "22001", match=r"character varying\(3\)")
    refused(db, "INSERT INTO t (a) VALUES (ARRAY['1'])", "42804", match=r"integer\[\] but expression is of type text")
    refused(db, "INSERT INTO t (a) SELECT v FROM t", "42804", match=r"integer\[\] but expression is of type text")
    refused(db, "INSERT INTO t (a) SELECT ARRAY[ARRAY[1]]", "0A000", match="multi-dimensional")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_array_types_reeldb_does_not_keep_are_refused(tmp_path: Path) -> None:
    db = reeldb.connect(tmp_path / "db")
    refused(db, "CREATE TABLE t (j json[])", "0A000", match=r"arrays of type json are not supported")
    refused(db, "CREATE TABLE t (s serial[])", "0A000", match="serial")
    refused(db, "CREATE TABLE t (k int[] PRIMARY KEY)", "0A000", match=r"integer\[\] column cannot be a key")
    refused(db, "CREATE TABLE t (k text[], UNIQUE (k))", "0A000", match=r"text\[\] column cannot be a key")
    refused(db, "CREATE TEMP TABLE tt (k text[])", "0A000", match=r"temporary table cannot hold text\[\]")
    db.execute("CREATE TABLE t (m int[3][4])")  # Postgres ignores declared sizes and dimensions
    db.execute("INSERT INTO t VALUES ('{1,2,3,4,5}'), ('[1:2]={6,7}')")
    assert db.execute("SELECT m FROM t").fetchall() == [([1, 2, 3, 4, 5],), ([6, 7],)]
    assert db.execute("SELECT format_type(atttypid, atttypmod), attndims FROM pg_attribute "
                      "WHERE attrelid = 't'::regclass AND attname = 'm'").fetchone() == ("integer[]", 1)


def test_update_and_insert_select_check_the_elements(tmp_path: Path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id int, a int[], big bigint[])")
    db.execute("INSERT INTO t VALUES (1, '{1,2}', NULL)")
    db.execute("UPDATE t SET a = array_append(a, 3), big = a")
    db.execute("INSERT INTO t (id, a) SELECT 2, ARRAY[1.5, 2.4]")  # numeric -> int rounds, as Postgres' assignment
    db.execute("CREATE TABLE texts (t text[])")
    db.execute("INSERT INTO texts VALUES (ARRAY[true, false]), (ARRAY[1, 20]), (ARRAY[0.1::real, 1e30::real])")
    db.execute("INSERT INTO texts SELECT ARRAY[0.1::real]")  # assignment casts to text; float4 prints its digits
    assert db.execute("SELECT t FROM texts").fetchall() == [(["true", "false"],), (["1", "20"],), (["0.1", "1e+30"],),
                                                           (["0.1"],)]
    refused(db, "UPDATE texts SET t = ARRAY[now()]", "0A000", match="cast its elements to text")
    # DuckDB gives ARRAY[1.5, 2] one scale (2.0), where Postgres' text of each element keeps its own (2)
    refused(db, "INSERT INTO texts VALUES (ARRAY[1.5, 2])", "0A000", match="cast its elements to text")
    assert db.execute("SELECT count(*) FROM texts").fetchone() == (4,)
    assert db.execute("SELECT id, a, big FROM t ORDER BY id").fetchall() == [(1, [1, 2, 3], [1, 2]), (2, [2, 2], None)]
    refused(db, "INSERT INTO t (id, a) SELECT 3, ARRAY[2147483648]", "22003")
    refused(db, "UPDATE t SET a[1] = 5", "0A000", match="UPDATE of a field or element")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (2,)


# -- catalog ----------------------------------------------------------------------------------------
def test_catalog_shows_postgres_array_types(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        fresh_table(conn, "cat")
        cols = conn.execute("SELECT column_name, data_type, udt_name, character_maximum_length, numeric_precision "
                            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'cat' "
                            "ORDER BY ordinal_position").fetchall()
        atts = conn.execute("SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod), attndims "
                            "FROM pg_attribute WHERE attrelid = 'cat'::regclass AND attnum > 0 "
                            "ORDER BY attnum").fetchall()
    assert cols[1:4] == [("a", "ARRAY", "_int4", None, None), ("tags", "ARRAY", "_text", None, None),
                         ("n", "ARRAY", "_numeric", None, None)]
    assert [c[2] for c in cols[1:]] == ["_int4", "_text", "_numeric", "_bytea", "_jsonb", "_uuid", "_float4", "_date",
                                        "_timestamptz", "_bool", "_int8", "_int2", "_float8", "_varchar",
                                        "_timestamp"]
    assert [a[1] for a in atts[1:]] == ARRAY_OIDS
    assert atts[3] == ("n", 1231, 327686, "numeric(5,2)[]", 1)
    assert atts[14] == ("v", 1015, 7, "character varying(3)[]", 1)
    assert atts[0][4] == 0


# -- psycopg 3, text and binary -------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_round_trips_every_element_type(server, binary: bool) -> None:
    table = f"rt_{int(binary)}"
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        fresh_table(conn, table)
        cur = conn.cursor(binary=binary)
        cur.execute(INSERT.format(table), ROW)
        cur.execute(f"INSERT INTO {table} (id, a, tags) VALUES (%s, %s, %s)", (2, [], []))
        from psycopg.types.json import Jsonb

        cur.execute(f"INSERT INTO {table} (id, j) VALUES (%s, %s)", (3, [Jsonb({"a": [1, 2]}), Jsonb("x")]))
        cur.execute(f"SELECT * FROM {table} ORDER BY id")
        oids = [d.type_code for d in cur.description]
        rows = cur.fetchall()
    assert oids[1:] == ARRAY_OIDS[:-2] + [1009, 1115]  # varchar[] goes as text[], as reeldb sends varchar as text
    rows_equal(rows[0], expected_rows(ROW))
    assert rows[1][1:3] == ([], [])
    assert rows[2][5] == [{"a": [1, 2]}, "x"]


def _raw(data) -> bytes:
    return bytes(data)


def test_binary_wire_form_is_postgres_array_send(server) -> None:
    """ndim, has-NULL flag, element OID, then (length, lower bound 1) per dimension, then each
    element's length and bytes; an empty array is ndim 0."""
    from psycopg.adapt import Loader

    class RawLoader(Loader):
        format = psycopg.pq.Format.BINARY

        def load(self, data) -> bytes:
            return bytes(data)

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        for oid in (1007, 1009, 1021):
            conn.adapters.register_loader(oid, RawLoader)
        cur = conn.cursor(binary=True)
        got = cur.execute("SELECT a, tags FROM ops WHERE id IN (1, 2) ORDER BY id").fetchall()
        real = cur.execute("SELECT '{0.5}'::real[]").fetchone()[0]
    one = struct.pack("!iiiii", 1, 1, 23, 3, 1) + struct.pack("!ii", 4, 1) + struct.pack("!ii", 4, 2) \
        + struct.pack("!i", -1)
    assert got[0][0] == one
    assert got[0][1] == struct.pack("!iiiii", 1, 1, 25, 3, 1) + struct.pack("!i", 1) + b"a" \
        + struct.pack("!i", 3) + b"b c" + struct.pack("!i", -1)
    assert got[1] == (struct.pack("!iii", 0, 0, 23), struct.pack("!iii", 0, 0, 25))
    assert real == struct.pack("!iiiiii", 1, 0, 700, 1, 1, 4) + struct.pack("!f", 0.5)


def psql(server, sql: str) -> str:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "arrays",
                          "-c", sql], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.rstrip("\n")


def test_text_wire_form_quotes_as_postgres(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        fresh_table(conn, "txt")
        conn.execute(INSERT.format("txt"), ROW)
        conn.execute("INSERT INTO txt (id, j) VALUES (2, ARRAY['{\"a\": [1,2]}'::jsonb, '3', '\"x\"', "
                     "'{\"bb\":1,\"a\":2}'])")
    got = psql(server, "SELECT a, tags, n, b, u, f, d, ts, bo, f8, v, tsn FROM txt WHERE id = 1").split("|")
    assert got == ["{1,NULL,3}", '{"a b","q\\"x",NULL,"","NULL",\x1c,"x\\\\y","{}"}', "{1.50,NULL}",
                   '{"\\\\x0001",NULL}', "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}", "{0.1,2.5}", "{2020-01-02}",
                   '{"2020-01-02 03:04:05+00"}', "{t,NULL,f}", "{0.1,1e+100}", "{ab,NULL}",
                   '{"2020-01-02 03:04:05.5"}']
    assert psql(server, "SELECT j FROM txt WHERE id = 2") == \
        '{"{\\"a\\": [1, 2]}",3,"\\"x\\"","{\\"a\\": 2, \\"bb\\": 1}"}'
    assert psql(server, "SELECT a, tags FROM ops WHERE id = 2") == "{}|{}"


# -- psycopg2 and asyncpg ------------------------------------------------------------------------------
def test_psycopg2_round_trips_lists(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    host, port = server.address
    conn = psycopg2.connect(host=host, port=port, dbname="arrays", user="tester")
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS pg2")
        cur.execute(f"CREATE TABLE pg2 ({COLUMNS})")
        cur.execute("INSERT INTO pg2 (id, a, tags, n, d, bo, f8) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (1, [1, None], ["a b", 'q"x', None, ""], [decimal.Decimal("1.5")], [dt.date(2020, 1, 2)],
                     [True], [0.1]))
        cur.execute("INSERT INTO pg2 (id, a, tags) VALUES (%s, %s, %s)", (2, [], []))
        cur.execute("SELECT id, a, tags, n, d, bo, f8 FROM pg2 ORDER BY id")
        assert cur.fetchall() == [(1, [1, None], ["a b", 'q"x', None, ""], [decimal.Decimal("1.50")],
                                   [dt.date(2020, 1, 2)], [True], [0.1]), (2, [], [], None, None, None, None)]
        cur.execute("SELECT id FROM pg2 WHERE %s = ANY(tags)", ("a b",))
        assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


def test_asyncpg_round_trips_lists_in_binary(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def run() -> list:
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="arrays")
        try:
            await conn.execute("DROP TABLE IF EXISTS apg")
            await conn.execute(f"CREATE TABLE apg ({COLUMNS})")
            await conn.execute("INSERT INTO apg (id, a, tags, n, u, d, bo, b, ts, f, big, j) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                               1, [1, None], ["a b", 'q"x', None, ""], [decimal.Decimal("1.5")], [U],
                               [dt.date(2020, 1, 2)], [True], [b"\x01"], [dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc)],
                               [0.5], [2**40], [json.dumps({"a": 1})])
            await conn.execute("INSERT INTO apg (id, a, tags) VALUES ($1, $2, $3)", 2, [], [])
            rows = [tuple(r) for r in await conn.fetch("SELECT id, a, tags, n, u, d, bo, b, ts, f, big, j "
                                                        "FROM apg ORDER BY id")]
            rows.append(await conn.fetchval("SELECT count(*) FROM apg WHERE $1 = ANY(tags)", "a b"))
            rows.append(await conn.fetchval("SELECT count(*) FROM apg WHERE tags @> $1", ["a b", ""]))
            return rows
        finally:
            await conn.close()

    rows = asyncio.run(run())
    assert rows[0] == (1, [1, None], ["a b", 'q"x', None, ""], [decimal.Decimal("1.50")], [U], [dt.date(2020, 1, 2)],
                       [True], [b"\x01"], [dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc)], [0.5], [2**40],
                       ['{"a": 1}'])
    assert rows[1][:3] == (2, [], [])
    assert rows[2:] == [1, 1]


def test_psycopg_copy_reads_array_text(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS cp")
        conn.execute("CREATE TABLE cp (id int, a int[], tags text[])")
        with conn.cursor().copy("COPY cp FROM STDIN") as copy:
            copy.write_row((1, [1, None], ["a b", None, 'q"x']))
            copy.write_row((2, [], None))
        got = conn.execute("SELECT * FROM cp ORDER BY id").fetchall()
    assert got == [(1, [1, None], ["a b", None, 'q"x']), (2, [], None)]


# -- operators and functions: PostgreSQL 16's answers ------------------------------------------------
# over ops: (1, {1,2,NULL}, {a,"b c",NULL}), (2, {}, {}), (3, NULL, NULL), (4, {3,1}, {x})
OPERATOR_CASES = [
    ("SELECT id, 2 = ANY(a), 9 <> ALL(a) FROM ops ORDER BY id",
     [(1, True, None), (2, False, True), (3, None, None), (4, False, True)]),
    ("SELECT id, a @> ARRAY[1], a @> ARRAY[NULL::int], ARRAY[1] <@ a, a && ARRAY[2,9], a @> '{}' FROM ops ORDER BY id",
     [(1, True, False, True, True, True), (2, False, False, False, False, True), (3, None, None, None, None, None),
      (4, True, False, True, False, True)]),
    ("SELECT id, NULL::int = ANY(a), 1 = ANY('{1,2}'), a IS DISTINCT FROM '{3,1}', 3 <> ALL(a), 0 < ALL(a) "
     "FROM ops ORDER BY id",
     [(1, None, True, True, None, None), (2, False, True, True, True, True), (3, None, True, True, None, None),
      (4, None, True, False, False, True)]),
    ("SELECT id FROM ops WHERE tags @> '{a}' OR tags && '{x,y}' ORDER BY id", [(1,), (4,)]),
    ("SELECT id, array_length(a, 1), cardinality(a), array_upper(a, 1), array_lower(a, 1) FROM ops ORDER BY id",
     [(1, 3, 3, 3, 1), (2, None, 0, None, None), (3, None, None, None, None), (4, 2, 2, 2, 1)]),
    ("SELECT id, a[1], a[0], a[-1], a[4], a[2:3], a[-5:1], a[2:-1], a[:1], a[2:] FROM ops ORDER BY id",
     [(1, 1, None, None, None, [2, None], [1], [], [1], [2, None]), (2, None, None, None, None, [], [], [], [], []),
      (3, None, None, None, None, None, None, None, None, None), (4, 3, None, None, None, [1], [3], [], [3], [1])]),
    ("SELECT id, unnest(tags) FROM ops ORDER BY id, 2", [(1, "a"), (1, "b c"), (1, None), (4, "x")]),
    ("SELECT array_agg(id ORDER BY id), array_agg(a ORDER BY id) FILTER (WHERE id = 4) FROM ops",
     [([1, 2, 3, 4], [[3, 1]])]),
    ("SELECT id, a::text, tags::text FROM ops ORDER BY id",
     [(1, "{1,2,NULL}", '{a,"b c",NULL}'), (2, "{}", "{}"), (3, None, None), (4, "{3,1}", "{x}")]),
    ("SELECT id, a = '{}', a = ARRAY[1,2,NULL], a < ARRAY[2] FROM ops ORDER BY id",
     [(1, False, True, True), (2, True, False, True), (3, None, None, None), (4, False, False, False)]),
    ("SELECT id FROM ops ORDER BY a DESC NULLS LAST, id", [(4,), (1,), (2,), (3,)]),
    ("SELECT ARRAY[1.5::float8, 0.1]::text, ARRAY[0.1::real]::text, ARRAY[true, false]::text, "
     "'{\"a b\",c}'::text[]::text", [("{1.5,0.1}", "{0.1}", "{t,f}", '{"a b",c}')]),
    ("SELECT pg_typeof(a)::text, pg_typeof(array_length(a, 1))::text FROM ops WHERE id = 1", [("integer[]", "integer")]),
    ("SELECT s.y::text FROM (SELECT a AS y FROM ops WHERE id = 1) s", [("{1,2,NULL}",)]),
    ("WITH c AS (SELECT tags AS y FROM ops WHERE id = 4) SELECT y::text, y @> '{x}', 'x' = ANY(y) FROM c",
     [("{x}", True, True)]),
]


@pytest.mark.parametrize("binary", [False, True])
def test_list_parameters_and_json_arrays_print_as_postgres(server, binary: bool) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        got = cur.execute("SELECT %s::text, %s::text, %s::text", ([1, None], ["a b", ""], [0.5, 1e100])).fetchone()
        assert got == ("{1,NULL}", '{"a b",""}', "{0.5,1e+100}")
        assert cur.execute("""SELECT ARRAY['{"a":  1}'::json, 'true']::text""").fetchone() == ('{"{\\"a\\":  1}",true}',)
        # jsonb prints its keys shorter first and its numbers as numeric does
        assert cur.execute("""SELECT ARRAY['{"bb":1,"a":[1e2, 2.50]}'::jsonb, 'null']::text""").fetchone() == \
            ('{"{\\"a\\": [100, 2.50], \\"bb\\": 1}","null"}',)


@pytest.mark.parametrize("binary", [False, True])
def test_text_array_parameters_of_two_dimensions_are_refused(server, binary: bool) -> None:
    """They reached DuckDB as JSON text and came back as one string per row (['["a", "b"]'])."""
    with psycopg.connect(dsn(server), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.FeatureNotSupported, match="more than one dimension"):
        conn.cursor(binary=binary).execute("SELECT %s::text[]", ([["a", "b"], ["c", "d"]],))


@pytest.mark.parametrize(("sql", "want"), OPERATOR_CASES)
def test_array_operators_give_postgres_answers(server, sql: str, want: list) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute(sql).fetchall() == want
        assert conn.cursor(binary=True).execute(sql).fetchall() == want


@pytest.mark.parametrize(("sql", "match"), [
    ("SELECT array_length(a, 2) FROM ops", "dimension other than 1"),
    ("SELECT n::text FROM ops", r"casting an array of numeric to text is not supported"),
    ("SELECT array_agg(id + 1)::text FROM ops", "casting this array to text is not supported"),
])
def test_what_reeldb_cannot_answer_as_postgres_is_refused(server, sql: str, match: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn, \
            pytest.raises(psycopg.errors.FeatureNotSupported, match=match):
        conn.execute(sql)


def test_sqlalchemy_reflects_and_round_trips_array_columns(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.dialects.postgresql import ARRAY

    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/arrays")
    md = sa.MetaData()
    t = sa.Table("sa_items", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("tags", ARRAY(sa.Text)),
                 sa.Column("scores", ARRAY(sa.Float)), sa.Column("n", ARRAY(sa.Numeric(5, 2))))
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(t.insert(), [{"id": 1, "tags": ["a b", None], "scores": [0.5], "n": [decimal.Decimal("1.5")]},
                                      {"id": 2, "tags": [], "scores": None, "n": None}])
            assert conn.execute(sa.select(t).order_by(t.c.id)).fetchall() == [
                (1, ["a b", None], [0.5], [decimal.Decimal("1.50")]), (2, [], None, None)]
            assert conn.execute(sa.select(t.c.id).where(t.c.tags.contains(["a b"]))).fetchall() == [(1,)]
            assert conn.execute(sa.select(t.c.id).where(sa.literal("a b") == sa.any_(t.c.tags))).fetchall() == [(1,)]
        reflected = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("sa_items")}
        assert isinstance(reflected["tags"], ARRAY) and isinstance(reflected["tags"].item_type, sa.Text)
        assert isinstance(reflected["n"], ARRAY) and (reflected["n"].item_type.precision,
                                                      reflected["n"].item_type.scale) == (5, 2)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("where", "message"), [
    ("id = 3", "cannot accumulate null arrays"),
    ("id = 2", "cannot accumulate empty arrays"),
    ("id IN (1, 4)", "cannot accumulate arrays of different dimensionality"),
])
def test_array_agg_of_arrays_raises_where_postgres_does(server, where: str, message: str) -> None:
    """array_agg(int[]) builds a two-dimensional array: a NULL or empty input, or inputs of
    different lengths, are errors in Postgres (class 22), not a ragged list of lists."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT array_agg(a ORDER BY id DESC) FROM ops WHERE id IN (1, 1)").fetchone() == \
            ([[1, 2, None]],)
        with pytest.raises(psycopg.errors.DataError, match=message) as e:
            conn.execute(f"SELECT array_agg(a) FROM ops WHERE {where}")
        assert e.value.sqlstate.startswith("22")


def test_binary_array_parameter_with_another_lower_bound_is_refused(server) -> None:
    """PostgreSQL keeps the lower bound (a[0] is the first element of '[0:1]={1,2}'); reeldb's
    lists count from 1, so such a parameter is refused rather than shifted."""
    from psycopg.adapt import Dumper

    class ZeroBased(Dumper):
        format = psycopg.pq.Format.BINARY
        oid = 1007  # int4[]

        def dump(self, obj) -> bytes:
            return struct.pack("!iiiii", 1, 0, 23, len(obj), 0) + b"".join(struct.pack("!ii", 4, x) for x in obj)

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.adapters.register_dumper(tuple, ZeroBased)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="start at 0"):
            cur.execute("SELECT %b::int[]", ((1, 2),))
        cur.adapters.register_dumper(tuple, type("OneBased", (ZeroBased,), {"dump": lambda self, obj: struct.pack(
            "!iiiii", 1, 0, 23, len(obj), 1) + b"".join(struct.pack("!ii", 4, x) for x in obj)}))
        assert cur.execute("SELECT %b::int[]", ((1, 2),)).fetchone() == ([1, 2],)
