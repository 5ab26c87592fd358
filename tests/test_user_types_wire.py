"""Enum and composite types, and anonymous records, as drivers see them over the wire: the
catalog rows psycopg's EnumInfo / CompositeInfo read, values sent with the type's OID in
PostgreSQL's text and binary forms, parameters typed with the type's OID, and the rights
CREATE / DROP TYPE need. Each answer is checked against a real PostgreSQL 16 where the
fixture ``postgres`` gives one."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator

import pytest

from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")
from psycopg.types.composite import CompositeInfo, register_composite  # noqa: E402
from psycopg.types.enum import EnumInfo, register_enum  # noqa: E402

import reeldb  # noqa: E402

TYPES = [
    "CREATE TYPE \"CamelMood\" AS ENUM ('sad', 'ok', 'Xà', 'foo,bar')",
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE TYPE inner_t AS (foo text, bar int8, baz float8)",
    "CREATE TYPE outer_t AS (qux int8, quux inner_t, m mood)",
]
# rows whose text and binary wire forms must be PostgreSQL's byte for byte
RECORD_QUERIES = [
    "SELECT row(1, 'a b'::text, NULL::text, ''::text, 'x\"y\\z'::text, '(p)'::text)",
    "SELECT row(), (1, 2.5::float8), row(row(1::int2, 2::int8), 'q'::text)",
    "SELECT ARRAY[row(1, 'a'::text)], ARRAY[row()]",
    "SELECT row(true, 'c'::text, NULL::int4)",
    "SELECT row(NULL, 'a b', 1, 'b'::text), (1, 'z'), row('x')",  # untyped literals: unknown fields
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BackgroundServer]:
    path = tmp_path_factory.mktemp("served") / "types"
    db = reeldb.connect(path)
    for sql in TYPES:
        db.execute(sql)
    db.execute("CREATE TABLE moods (id INT, m mood)")
    db.execute("INSERT INTO moods VALUES (1, 'ok'), (2, 'happy')")
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "owner", "own")
    users.add_user(store, "reader", "r3ad", readonly=True)
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


def connect(server: BackgroundServer, user: str = "owner", password: str = "own") -> psycopg.Connection:
    host, port = server.address
    return psycopg.connect(f"host={host} port={port} dbname=types user={user} password={password}",
                           autocommit=True)


@pytest.fixture(scope="module")
def pg(postgres: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS moods")
        for name in ("outer_t", "inner_t", "mood", '"CamelMood"'):
            conn.execute(f"DROP TYPE IF EXISTS {name} CASCADE")
        for sql in TYPES:
            conn.execute(sql)
        yield conn


def raw(conn: psycopg.Connection, query: str, fmt: int) -> list[tuple[str, bytes | None]]:
    """Each result column's type name (as that server's catalog names it) and wire bytes."""
    res = conn.pgconn.exec_params(query.encode(), [], result_format=fmt)
    assert res.status == psycopg.pq.ExecStatus.TUPLES_OK, res.error_message
    out = []
    for i in range(res.nfields):
        oid = res.ftype(i)
        name = conn.execute("SELECT format_type(%s, NULL)", [oid]).fetchone()[0]
        out.append((name, res.get_value(0, i)))
    return out


# -- anonymous records --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", [0, 1])
@pytest.mark.parametrize("query", RECORD_QUERIES)
def test_records_go_out_as_postgresql_sends_them(server, pg, query: str, fmt: int) -> None:
    with connect(server) as conn:
        assert raw(conn, query, fmt) == raw(pg, query, fmt)


def test_records_loaded_by_psycopg(server) -> None:
    with connect(server) as conn:
        assert conn.execute("SELECT row(42, 'ba,r'::text, NULL::text)").fetchone()[0] == ("42", "ba,r", None)
        got = conn.cursor(binary=True).execute("SELECT row(10::int, 20::float8, 'bar'::bytea)").fetchone()[0]
        assert got == (10, 20.0, b"bar")


# -- enums --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mood", "MOOD", "public.mood", '"CamelMood"'])
def test_enum_info_fetch_finds_the_type_its_array_and_labels(server, pg, name: str) -> None:
    with connect(server) as conn:
        info = EnumInfo.fetch(conn, name)
        want = EnumInfo.fetch(pg, name)
        assert info is not None and want is not None
        assert (info.name, info.labels, info.regtype) == (want.name, want.labels, want.regtype)
        assert info.oid > 0 and info.array_oid > 0 and info.oid != info.array_oid
        again = EnumInfo.fetch(connect(server), name)
        assert (again.oid, again.array_oid) == (info.oid, info.array_oid)  # stable across connections


def test_quoted_enum_name_keeps_its_case(server) -> None:
    with connect(server) as conn:
        assert EnumInfo.fetch(conn, "camelmood") is None
        assert conn.execute("SELECT to_regtype('CamelMood')").fetchone()[0] is None


@pytest.mark.parametrize("binary", [False, True])
def test_enum_values_arrays_and_parameters_round_trip(server, binary: bool) -> None:
    with connect(server) as conn:
        info = EnumInfo.fetch(conn, '"CamelMood"')
        register_enum(info, conn)
        enum = info.enum
        cur = conn.cursor(binary=binary)
        for member in enum:
            assert cur.execute("SELECT %s", [member]).fetchone()[0] is member
            assert cur.execute('SELECT %s::"CamelMood"', [member.name]).fetchone()[0] is member
        assert cur.execute('SELECT %s::"CamelMood"[]', [list(enum)]).fetchone()[0] == list(enum)
        assert cur.execute("""SELECT '{Xà,"foo,bar",NULL}'::"CamelMood"[]""").fetchone()[0] == \
            [enum["Xà"], enum["foo,bar"], None]
        # mood is not registered: psycopg loads its binary form as bytes, as from PostgreSQL
        want = [(b"ok",), (b"happy",)] if binary else [("ok",), ("happy",)]
        assert cur.execute("SELECT m FROM moods ORDER BY id").fetchall() == want


def test_enum_binary_output_is_in_the_client_encoding(server, pg) -> None:
    for conn in (connect(server), pg):
        conn.execute("SET client_encoding TO latin1")
        try:
            got = conn.cursor(binary=True).execute("""SELECT 'Xà'::"CamelMood" """).fetchone()[0]
            assert got == "Xà".encode("latin1")
        finally:
            conn.execute("SET client_encoding TO utf8")


def test_bad_enum_label_in_a_typed_parameter_is_22p02(server) -> None:
    with connect(server) as conn:
        other = enum.Enum("Other", "nope")
        register_enum(EnumInfo.fetch(conn, "mood"), conn, other)  # sent with mood's OID
        with pytest.raises(psycopg.errors.InvalidTextRepresentation, match='invalid input value for enum mood: "nope"'):
            conn.execute("SELECT %s::text", [other.nope]).fetchone()
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT '{ok,nope}'::mood[]")


# -- composite types ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inner_t", "outer_t", "public.inner_t"])
def test_composite_info_fetch_lists_the_fields(server, pg, name: str) -> None:
    with connect(server) as conn:
        info = CompositeInfo.fetch(conn, name)
        want = CompositeInfo.fetch(pg, name)
        assert (info.name, info.field_names) == (want.name, want.field_names)
        builtin = {t for t in want.field_types if t < 16384}
        assert builtin <= set(info.field_types)
        assert info.oid > 0 and info.array_oid > 0 and info.oid != info.array_oid


@pytest.mark.parametrize("fmt", [0, 1])
def test_composite_values_go_out_as_postgresql_sends_them(server, pg, fmt: int) -> None:
    query = "SELECT row('hello', 10, 20)::inner_t, '(\"a b\",,1.5)'::inner_t, NULL::inner_t"
    with connect(server) as conn:
        assert raw(conn, query, fmt) == raw(pg, query, fmt)
    # binary forms of these hold the types' OIDs, which differ from server to server
    for text in ("SELECT ARRAY[row('x', 1, 2)::inner_t]", "SELECT row(42, row('hello', 10, 20)::inner_t, 'ok')::outer_t"):
        with connect(server) as conn:
            assert raw(conn, text, 0) == raw(pg, text, 0)


@pytest.mark.parametrize("binary", [False, True])
def test_composite_loaded_and_dumped_by_psycopg(server, binary: bool) -> None:
    with connect(server) as conn:
        inner, outer = CompositeInfo.fetch(conn, "inner_t"), CompositeInfo.fetch(conn, "outer_t")
        register_composite(inner, conn)
        register_composite(outer, conn)
        mood = EnumInfo.fetch(conn, "mood")
        register_enum(mood, conn)
        cur = conn.cursor(binary=binary)
        got = cur.execute("SELECT row(42, row('hello', 10, 20)::inner_t, 'ok')::outer_t").fetchone()[0]
        assert (got.qux, got.quux.foo, got.quux.baz, got.m) == (42, "hello", 20.0, mood.enum.ok)
        value = outer.python_type(7, inner.python_type("a (b), \"c\"", None, 1.5), mood.enum.sad)
        fmt = "%b" if binary else "%t"
        assert cur.execute(f"SELECT {fmt}", [value]).fetchone()[0] == value
        assert cur.execute(f"SELECT pg_typeof({fmt})::text, ({fmt}).qux", [value, value]).fetchone() == ("outer_t", 7)
        assert cur.execute("SELECT row('x', 1, NULL)::inner_t = %s", [inner.python_type("x", 1, None)]) \
            .fetchone()[0] is True


@pytest.mark.parametrize("sql, sqlstate", [
    ("SELECT row(1, 2)::inner_t", "42846"),
    ("SELECT '(1,2'::inner_t", "22P02"),
    ("SELECT '(a,b,c,d)'::inner_t", "22P02"),
    ("SELECT '(a,notanumber,1)'::inner_t", "22P02"),
])
def test_bad_composite_input_is_refused_as_postgresql_refuses_it(server, pg, sql: str, sqlstate: str) -> None:
    for conn in (connect(server), pg):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql)
        assert err.value.sqlstate == sqlstate


def test_composite_column_is_refused_and_nothing_is_made(server) -> None:
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="composite type inner_t"):
            conn.execute("CREATE TABLE holder (v inner_t)")
        assert conn.execute("SELECT to_regclass('holder')").fetchone()[0] is None


# -- DDL and rights -----------------------------------------------------------------------------
def test_drop_type_used_by_a_column_or_field_is_2bp01_and_changes_nothing(server) -> None:
    with connect(server) as conn:
        for name, user in (("mood", "column m of table moods"), ("inner_t", "column quux of composite type outer_t")):
            with pytest.raises(psycopg.errors.DependentObjectsStillExist, match=user):
                conn.execute(f"DROP TYPE {name}")
        assert CompositeInfo.fetch(conn, "outer_t").field_names == ("qux", "quux", "m")
        assert conn.execute("SELECT count(*) FROM moods").fetchone()[0] == 2


def test_drop_type_cascade_drops_the_dependent_field(server) -> None:
    with connect(server) as conn:
        conn.execute("CREATE TYPE leaf_t AS (a int4)")
        conn.execute("CREATE TYPE branch_t AS (b int4, leaf leaf_t)")
        conn.execute("DROP TYPE leaf_t CASCADE")
        assert CompositeInfo.fetch(conn, "branch_t").field_names == ("b",)
        assert conn.execute("SELECT '(5)'::branch_t").fetchone()[0] == "(5)"
        conn.execute("DROP TYPE IF EXISTS leaf_t")
        conn.execute("DROP TYPE branch_t")
        assert CompositeInfo.fetch(conn, "branch_t") is None


def test_read_only_login_cannot_create_or_drop_types(server) -> None:
    with connect(server, "reader", "r3ad") as conn:
        for sql in ("CREATE TYPE ro_t AS (a int)", "CREATE TYPE ro_e AS ENUM ('a')", "DROP TYPE mood CASCADE",
                    "DROP TYPE inner_t CASCADE"):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute(sql)
    with connect(server) as conn:
        assert conn.execute("SELECT to_regtype('ro_t'), to_regtype('ro_e')").fetchone() == (None, None)
        assert EnumInfo.fetch(conn, "mood").labels == ["sad", "ok", "happy"]
        assert CompositeInfo.fetch(conn, "outer_t").field_names == ("qux", "quux", "m")


def test_comment_on_a_composite_type_is_listed(server, pg) -> None:
    query = "SELECT obj_description('inner_t'::regtype, 'pg_type')"
    for conn in (connect(server), pg):
        conn.execute("COMMENT ON TYPE inner_t IS 'three fields'")
        try:
            assert conn.execute(query).fetchone()[0] == "three fields"
        finally:
            conn.execute("COMMENT ON TYPE inner_t IS NULL")


def test_python_api_gives_records_as_tuples(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TYPE pt AS (x int4, y text)")
    got = db.execute("SELECT row(1, 'a'::text), row(2, 'b')::pt, ARRAY[row(3, NULL)::pt], row(row(1, 2), 3)").fetchall()
    assert got == [((1, "a"), (2, "b"), [(3, None)], ((1, 2), 3))]
    with pytest.raises(reeldb.Error) as err:
        db.execute("CREATE TABLE holder (p pt)")
    assert err.value.sqlstate == "0A000"
    db.close()


def test_record_cast_to_text_in_a_select_list(server, pg) -> None:
    query = "SELECT row(1, 'a b'::text, 1.5::float4, true, NULL::int4)::text, row('x', 2, 3)::inner_t::varchar"
    with connect(server) as conn:
        for fmt in (0, 1):
            assert raw(conn, query, fmt) == raw(pg, query, fmt)


@pytest.mark.parametrize("sql", [
    "SELECT length(row(1, 'a')::text)",  # a record's text computed on: DuckDB would print its struct
    "SELECT x FROM (SELECT row('x', 1, 2)::inner_t::varchar AS x) s",
    "SELECT row(10, 'a')::text ORDER BY 1",  # sorted by the record, not its text
    "CREATE TABLE typed_holder OF inner_t",
    "ALTER TYPE inner_t ADD ATTRIBUTE extra int4",
])
def test_what_reeldb_cannot_answer_as_postgresql_is_0a000(server, sql: str) -> None:
    with connect(server) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute(sql)
        assert conn.execute("SELECT to_regclass('typed_holder')").fetchone()[0] is None
        assert CompositeInfo.fetch(conn, "inner_t").field_names == ("foo", "bar", "baz")


def test_composite_nesting_and_width_are_bounded(server, pg) -> None:
    """A value's STRUCT holds every nested field: deep or wide nesting is refused when the
    type is made, before a cast could build it."""
    with connect(server) as conn:
        conn.execute("CREATE TYPE wide0 AS (" + ", ".join(f"f{i} int4" for i in range(40)) + ")")
        conn.execute("CREATE TYPE wide1 AS (" + ", ".join(f"g{i} wide0" for i in range(40)) + ")")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("CREATE TYPE wide2 AS (a wide1, b wide1)")
        assert err.value.sqlstate == "54011"
        conn.execute("CREATE TYPE deep0 AS (a int4)")
        for i in range(1, 32):
            conn.execute(f"CREATE TYPE deep{i} AS (a deep{i - 1})")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="nested more than 32 deep"):
            conn.execute("CREATE TYPE deep32 AS (a deep31)")
        assert conn.execute("SELECT to_regtype('wide2'), to_regtype('deep32')").fetchone() == (None, None)
        info = CompositeInfo.fetch(conn, "deep1")
        # a binary record whose field claims to be a record of the type again, 40 deep
        value = b""
        for _ in range(40):
            value = struct.pack("!iIi", 1, info.oid, len(value)) + value if value else struct.pack("!iIi", 1, 23, 4) + \
                struct.pack("!i", 7)
        res = conn.pgconn.exec_params(b"SELECT $1::deep1", [value], [info.oid], [1])
        assert res.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"22P03"
        # quotes double at each level of record text: past 256 Mi characters it is 54000, not built
        conn.execute("CREATE TYPE tx0 AS (a text)")
        for i in range(1, 26):
            conn.execute(f"CREATE TYPE tx{i} AS (a tx{i - 1})")
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            conn.execute("SELECT " + "ROW(" * 26 + "repeat('\"', 100)" + ")" * 26 + "::tx25")
        nested = "SELECT " + "ROW(" * 3 + "'\"'" + ")" * 3 + "::tx2"
        for sql in ("CREATE TYPE tx0 AS (a text)", "CREATE TYPE tx1 AS (a tx0)", "CREATE TYPE tx2 AS (a tx1)"):
            pg.execute(sql)
        assert conn.execute(nested).fetchone()[0] == pg.execute(nested).fetchone()[0]
        pg.execute("DROP TYPE tx2, tx1, tx0")

