"""The built-in range types (int4range, int8range, numrange, daterange, tsrange, tstzrange)
and their multiranges: text and binary forms, constructors, functions and operators, columns and COPY, each
answer checked against a real PostgreSQL 16; psycopg 3, psycopg2 and the Python API; the
range parser's refusals, which change nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import reeldb
from reeldb.format.ranges import Range
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")
from psycopg.types.multirange import Multirange, MultirangeInfo  # noqa: E402
from psycopg.types.range import Range as PgRange  # noqa: E402
from psycopg.types.range import RangeInfo  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "ranges"
    reeldb.connect(path).close()
    srv = BackgroundServer(str(path), port=0, max_connections=8)
    yield srv
    srv.stop()


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=ranges user=tester"


@pytest.fixture(scope="module")
def conn(server):
    with psycopg.connect(dsn(server), autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def pg(postgres):
    with psycopg.connect(postgres, autocommit=True) as c:
        yield c


def answer(conn, sql: str, params: Any = None, binary: bool = False) -> tuple[str, Any]:
    """('ok', the rows) or ('error', the SQLSTATE)."""
    try:
        with conn.cursor(binary=binary) as cur:
            cur.execute(sql, params)
            return "ok", cur.fetchall()
    except psycopg.Error as e:
        return "error", e.sqlstate


# Each is run as SELECT (expr)::text on both servers: the same text, or the same SQLSTATE.
EXPRESSIONS = """
'[1,5)'::int4range | '(1,5]'::int4range | '[1,5]'::int8range | '(,)'::int4range | '[,]'::int4range
' [ 1 , 5 ) '::int4range | 'empty'::int4range | ' EMPTY '::int4range | '[5,5)'::int4range | '(4,5)'::int4range
'[5,1)'::int4range | '[1,5'::int4range | '[1,5)x'::int4range | '[1,5,6)'::int4range | '[a,5)'::int4range
'["1","5")'::int4range | 'emptyx'::int4range | '{1,5}'::int4range | '[1,5]'::numrange | '[1.5,2.25)'::numrange
'(1,1)'::numrange | '[1,1]'::numrange | '[2000-01-01,2000-02-01]'::daterange | '(2000-01-01,2000-02-01]'::daterange
'["2000-01-01 10:00","2000-01-02 11:30:00.5"]'::tsrange | '[2000-01-01 10:00+05,2000-01-02 00:00+02)'::tstzrange
int4range(1,5) | int4range(1,5,'(]') | int4range(NULL,5) | int4range(1,NULL,'[]') | int4range(5,1)
int4range(1,5,'xx') | int4range(1,5,NULL) | int4range(1,2147483647,'[]') | int8range(1,9223372036854775807,'[]')
numrange(1.5, 3) | numrange(1, 5) | daterange('2000-01-01','2000-01-10','[]') | tsrange('2000-01-01','2000-01-10','()')
int4range(1.5, 2) | daterange('2000-01-01'::timestamp, '2000-02-01') | tsrange('2000-01-01'::date, '2000-02-01'::date)
lower(int4range(1,5)) | upper(int4range(1,5,'[]')) | lower('empty'::int4range) | upper('(,)'::int4range)
isempty('empty'::int4range) | isempty('[1,2)'::int4range) | lower_inc('[1,2)'::int4range) | upper_inc('[1,2]'::numrange)
lower_inf('(,2]'::numrange) | upper_inf('(,2]'::numrange) | lower_inc('empty'::int4range) | lower_inf('empty'::int4range)
'[1,5)'::int4range @> 3 | '[1,5)'::int4range @> 5 | '[1,5)'::int4range @> '[2,3)' | '[1,5)'::int4range @> 'empty'
'empty'::int4range @> '[1,2)' | 3 <@ '[1,5)'::int4range | '[2,3)'::int4range <@ '[1,5)' | int8range(1,5) @> 3
'[1,5)'::numrange @> 3 | '[1,5)'::numrange @> 3.5 | '[1,5)'::int4range @> '3'
'[2000-01-01,2000-02-01)'::daterange @> '2000-01-15'::date | '2000-01-03'::timestamp <@ tsrange('2000-01-01','2000-02-01')
'[1,5)'::int4range && '[4,6)' | '[1,5)'::int4range && '[5,6)' | '[1,5]'::numrange && '[5,6)' | '(,1)'::int4range && '(0,)'
'[1,5)'::int4range << '[5,6)' | '[1,5]'::numrange << '[5,6)' | '[1,5)'::numrange << '(5,6)' | '[6,7)'::int4range >> '[1,5)'
'[1,5)'::int4range &< '[2,6)' | '[1,7)'::int4range &< '[2,6)' | '[3,7)'::int4range &> '[2,6)' | '[1,7)'::int4range &> '[2,6)'
'[1,5)'::int4range -|- '[5,7)' | '[1,5)'::numrange -|- '[5,7)' | '[1,5]'::numrange -|- '[5,7)' | '[1,5]'::numrange -|- '(5,7)'
'[1,4]'::int4range -|- '[5,7)' | 'empty'::int4range -|- '[5,7)'
'[1,5)'::int4range + '[3,7)' | '[1,5)'::int4range + '[5,7)' | '[1,5)'::int4range + '[6,7)' | '(,5)'::int4range + '[3,)'
'[1,5)'::int4range * '[3,7)' | '[1,5)'::int4range * '[6,7)' | '[1,5]'::numrange * '[5,7)'
'[1,5)'::int4range - '[3,7)' | '[1,5)'::int4range - '[0,3)' | '[1,10)'::int4range - '[3,7)' | '[1,5)'::int4range - '[1,5)'
'[1,5]'::numrange - '[1,3)' | '[1,5]'::numrange - '(3,5]' | '[1,5]'::numrange - '[3,5]'
daterange('2000-01-31', '2000-03-01', '(]') - daterange('2000-02-10', '2000-03-05')
range_merge('[1,2)'::int4range, '[5,7)') | range_merge('empty'::int4range, '[5,7)')
'[1,5)'::int4range = '[1,4]' | '[1.0,5)'::numrange = '[1,5)' | '[1,5)'::int4range < '[1,6)' | '[1,5)'::int4range < '[2,3)'
'(,5)'::int4range < '[1,2)' | 'empty'::int4range < '(,5)' | '(,)'::int4range > '(,5)' | '[1,5]'::numrange > '[1,5)'
'(1,5]'::numrange > '[1,5]' | '[1,5)'::int4range <> '[1,6)' | '[1,5)'::int4range <= '[1,5)'
'[1,5)'::int4range = '[1,5)'::int8range | '[1,5)'::int4range || '[1,5)' | '[1,5)'::int4range::int4
'[1,5)'::int4range IN ('[1,5)', '[1,6)') | '[1,5)'::int4range IS DISTINCT FROM '[1,5)'
coalesce(NULL, '[1,2)'::int4range) | nullif('[1,2)'::int4range, '[1,2)') | NULL::int4range @> 3
'{}'::int4multirange | '{[1,3), (2,5], empty}'::int4multirange | ' { [1,3) , [5,7) } '::int4multirange
'{[5,7),[1,3)}'::int4multirange | '{[1,3),[3,5)}'::nummultirange | '{(1,3),[3,5)}'::nummultirange
'{(1,3),(3,5)}'::nummultirange | '{[2000-01-01,2000-01-05],[2000-01-06,2000-01-09)}'::datemultirange
'{["2000-01-01 10:00","2000-01-02 10:00")}'::tsmultirange | '{[2000-01-01 10:00+02,)}'::tstzmultirange
'{EMPTY}'::int8multirange | '{[1,3)'::int4multirange | '[1,3)'::int4multirange | '{[1,3)}x'::int4multirange
'{[1,3) [4,5)}'::int4multirange | '{,}'::int4multirange | '{[a,3)}'::int4multirange | int4multirange()
int4multirange(int4range(5,7), int4range(1,3), int4range(3,4), 'empty') | int4multirange(int4range(1,2), NULL)
nummultirange(numrange(1,2)) | '{[1,3)}'::int4multirange = '{[1,2),[2,3)}' | '{[1,3)}'::int4multirange < '{[1,3),[4,5)}'
'{[1,3)}'::int4multirange < '{[1,4)}' | '{}'::int4multirange < '{[1,4)}' | int4range(1,3)::int4multirange
'{[1,3)}'::int4multirange = '{[1,3)}'::int8multirange | pg_typeof('{[1,2)}'::int4multirange) | pg_typeof('[1,2)'::numrange)
'{[1,5),[7,9)}'::int4multirange @> 3 | '{[1,5),[7,9)}'::int4multirange @> 6 | '{[1,5),[7,9)}'::int4multirange @> '{[2,3),[7,8)}'
'{[1,5),[7,9)}'::int4multirange @> '{[2,8)}' | '{[1,5),[7,9)}'::int4multirange @> '[2,3)'::int4range
'{[1,5),[7,9)}'::int4multirange @> 'empty'::int4range | '{}'::int4multirange @> '{}' | '[1,10)'::int4range @> '{[1,5),[7,9)}'::int4multirange
'[1,8)'::int4range @> '{[1,5),[7,9)}'::int4multirange | 3 <@ '{[1,5),[7,9)}'::int4multirange
'[2,3)'::int4range <@ '{[1,5),[7,9)}'::int4multirange | '{[2,3)}'::int4multirange <@ '{[1,5),[7,9)}'
'{[1,5),[7,9)}'::int4multirange && '{[5,7)}' | '{[1,5),[7,9)}'::int4multirange && '[4,6)'::int4range
'[4,6)'::int4range && '{[1,5),[7,9)}'::int4multirange | '{[1,5),[7,9)}'::int4multirange << '{[9,10)}'
'{[1,5),[7,9)}'::int4multirange << '[8,10)'::int4range | '{[1,5),[7,9)}'::int4multirange >> '{[-3,0)}'
'{[1,5),[7,9)}'::int4multirange &< '{[0,9)}' | '{[1,5),[7,9)}'::int4multirange &< '[0,8)'::int4range
'{[1,5),[7,9)}'::int4multirange &> '{[0,9)}' | '{[1,5),[7,9)}'::int4multirange &> '[2,3)'::int4range
'{[1,5),[7,9)}'::int4multirange -|- '{[9,10)}' | '{[1,5),[7,9)}'::int4multirange -|- '[-1,1)'::int4range
'{[1,5),[7,9)}'::nummultirange -|- '{[9,10)}' | '{}'::int4multirange -|- '{[9,10)}' | '{[1,5),[7,9)}'::int4multirange + '{[5,7)}'
'{[1,5),[7,9)}'::int4multirange * '{[3,8)}' | '{[1,5),[7,9)}'::int4multirange - '{[3,8)}' | '{[1,10)}'::int4multirange - '{[3,4),[6,7)}'
'{[1,10]}'::nummultirange - '{[3,4),(6,7]}' | '{[1,5),[7,9)}'::int4multirange - '{}' | '{}'::int4multirange - '{[1,2)}'
'{[1,5),[7,9)}'::int4multirange * '{}' | lower('{[1,5),[7,9)}'::int4multirange) | upper('{[1,5),[7,9)}'::int4multirange)
lower('{}'::int4multirange) | isempty('{}'::int4multirange) | isempty('{[1,2)}'::int4multirange)
lower_inc('{[1,5),[7,9)}'::int4multirange) | upper_inc('{[1,5),[7,9]}'::nummultirange) | lower_inf('{(,5),[7,9)}'::int4multirange)
upper_inf('{(,5),[7,9)}'::int4multirange) | lower_inc('{}'::int4multirange) | range_merge('{[1,5),[7,9)}'::int4multirange)
range_merge('{}'::int4multirange) | multirange('[1,2)'::int4range) | '{[1,5)}'::int4multirange + '[7,8)'::int4range
'{[1,5)}'::int4multirange = '[1,5)'::int4range | '{[1,5)}'::int4multirange @> '[2,3)' | '{[1,5)}'::int4multirange @> 3::int8
'{[1,5)}'::int4multirange @> '[1,5)'::int8range
"""


def _expressions() -> list[str]:
    return [e.strip() for line in EXPRESSIONS.strip().splitlines() for e in line.split(" | ") if e.strip()]


def test_range_answers_are_postgresqls(conn, pg) -> None:
    """Text input and output, canonical forms, constructors, functions and operators: the
    text PostgreSQL 16 answers, or its error's SQLSTATE (reeldb's refusals are tested below)."""
    differ = []
    exprs = _expressions()
    assert len(exprs) > 100
    for e in exprs:
        want, got = answer(pg, f"SELECT ({e})::text"), answer(conn, f"SELECT ({e})::text")
        if want != got:
            differ.append((e, want, got))
    assert not differ


def test_ranges_through_subqueries_ctes_and_arrays(conn, pg) -> None:
    """A range computed in a subquery, a CTE, a UNION or an array is still a range outside
    it (its text, its functions), or refused; never DuckDB's text of the struct."""
    queries = [
        "SELECT x::text, lower(x), x @> 1, x = '[1,2)', x || 'a' FROM (SELECT '[1,2)'::int4range AS x) s",
        "WITH c AS (SELECT int4range(1,3) AS x) SELECT x::text FROM c",
        "WITH c(x) AS (SELECT int4range(1,2)) SELECT x::text FROM c",
        "SELECT string_agg(x::text, ',' ORDER BY x) FROM (SELECT int4range(3,4) UNION ALL SELECT int4range(1,2)) u(x)",
        "SELECT ((SELECT x FROM (SELECT '{[1,2),[5,6)}'::int4multirange AS x) s))::text",
        "SELECT (array['[1,2)'::int4range, 'empty'])[2]::text",
    ]
    for q in queries:
        assert answer(conn, q) == answer(pg, q), q
    assert answer(conn, "SELECT row('[1,2)'::int4range)::text") == ("error", "0A000")
    assert answer(conn, "SELECT max(x) FROM (SELECT '[1,2)'::int4range AS x) s") == ("error", "0A000")


def test_range_results_and_parameters_in_text_and_binary(conn, pg) -> None:
    """Results in both formats read back as psycopg's Range; parameters sent in both
    formats (typed by psycopg, or untyped beside a range) compare equal on both servers."""
    samples = [
        ("int4range", PgRange(10, 20, "[]")), ("int4range", PgRange(-(2**31), 2**31 - 1)),
        ("int8range", PgRange(None, 2**40, "(]")), ("numrange", PgRange(Decimal("-100"), Decimal("100.123"), "(]")),
        ("daterange", PgRange(dt.date(2000, 1, 1), dt.date(2020, 1, 1))),
        ("tsrange", PgRange(dt.datetime(2000, 1, 1), dt.datetime(2020, 1, 1, 23, 59, 59, 999999), "[]")),
        ("tstzrange", PgRange(dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))), None, "()")),
        ("numrange", PgRange(empty=True)),
        ("int4multirange", Multirange([PgRange(5, 7), PgRange(1, 3, "[]"), PgRange(empty=True)])),
        ("datemultirange", Multirange([PgRange(dt.date(2000, 1, 1), None)])), ("nummultirange", Multirange()),
    ]
    for pgtype, r in samples:
        for binary in (False, True):
            sql = f"SELECT %s::{pgtype}, %s::{pgtype} = %s, (%s::{pgtype})::text"
            got = answer(conn, sql, (r, r, r, r), binary=binary)
            assert got == answer(pg, sql, (r, r, r, r), binary=binary), (pgtype, r, binary)
            assert got[0] == "ok" and got[1][0][1] is True
        for binary in (False, True):
            if "multi" not in pgtype:
                sql = f"SELECT array['empty'::{pgtype}, '(,)'::{pgtype}], '{{empty,\"(,)\"}}'::{pgtype}[]"
            else:
                sql = f"SELECT array['{{}}'::{pgtype}, '{{(,)}}'::{pgtype}], '{{\"{{}}\",\"{{(,)}}\"}}'::{pgtype}[]"
            assert answer(conn, sql, binary=binary) == answer(pg, sql, binary=binary)


def test_range_columns_insert_order_filter_and_copy(conn, pg) -> None:
    """Range columns: INSERT from literals and parameters, ORDER BY in PostgreSQL's range
    order, filters with the operators, COPY out in text and COPY in text and binary."""
    rows = [(1, "[3,7)", "[2000-01-01,2000-02-01)", "(1.5,2]"), (2, "empty", "(,2000-01-01]", None),
            (3, "(,5)", None, "[0,)"), (4, "[3,7]", "empty", "(,)"), (5, "(2,3]", "[2000-01-05,)", "empty")]
    for c in (conn, pg):
        c.execute("DROP TABLE IF EXISTS spans")
        c.execute("CREATE TABLE spans (id int, r int4range, d daterange, n numrange, m int8multirange)")
        for i, row in enumerate(rows):
            c.execute("INSERT INTO spans VALUES (%s, %s, %s, %s, %s)", (*row, ["{}", "{[1,3),[2,9)}", None][i % 3]))
        c.execute("INSERT INTO spans VALUES (%s, %s, %s, %s, %s)",
                  (6, PgRange(1, 2, "[]"), PgRange(dt.date(2001, 1, 1), None), PgRange(Decimal(1), Decimal(2)),
                   Multirange([PgRange(2**40, None), PgRange(None, 5, "(]")])))
    queries = [
        "SELECT id, r::text, d::text, n::text, m::text FROM spans ORDER BY r, id",
        "SELECT id, m FROM spans ORDER BY m, id",
        "SELECT id FROM spans ORDER BY d DESC NULLS LAST, id",
        "SELECT id FROM spans WHERE r @> 4 ORDER BY id",
        "SELECT id FROM spans WHERE r && '[6,9)' ORDER BY id",
        "SELECT id FROM spans WHERE d @> '2000-01-10'::date ORDER BY id",
        "SELECT id, lower(r), upper(r), isempty(r), upper_inf(r) FROM spans ORDER BY id",
        "SELECT id, (r + '[0,3)')::text FROM spans WHERE r && '[0,3)' OR r -|- '[0,3)' ORDER BY id",
        "SELECT id, lag(r) OVER (ORDER BY id), count(m) OVER () FROM spans ORDER BY id",
        "SELECT r, count(*) FROM spans GROUP BY r ORDER BY r",
    ]
    for q in queries:
        assert answer(conn, q) == answer(pg, q), q
    for binary in (False, True):
        assert answer(conn, "SELECT id, r, d, n, m FROM spans ORDER BY id", binary=binary) == \
            answer(pg, "SELECT id, r, d, n, m FROM spans ORDER BY id", binary=binary)

    def copy_out(c) -> bytes:
        with c.cursor().copy("COPY (SELECT id, r, d, n, m FROM spans ORDER BY id) TO STDOUT") as cp:
            return b"".join(bytes(b) for b in cp)

    assert copy_out(conn) == copy_out(pg)
    for fmt in ("text", "binary"):
        for c in (conn, pg):
            c.execute("DELETE FROM spans")
            with c.cursor().copy(f"COPY spans (id, r, d) FROM STDIN (FORMAT {fmt})") as cp:
                cp.set_types(["int4", "int4range", "daterange"])
                cp.write_row([7, PgRange(1, 3, "(]"), PgRange(empty=True)])
                cp.write_row([8, PgRange(None, 3), PgRange(dt.date(2000, 1, 1), dt.date(2000, 1, 2), "[]")])
        q = "SELECT id, r::text, d::text FROM spans ORDER BY id"
        assert answer(conn, q) == answer(pg, q) == ("ok", [(7, "[2,4)", "empty"), (8, "(,3)", "[2000-01-01,2000-01-03)")])


def test_malformed_ranges_are_refused_and_change_nothing(conn) -> None:
    """The range parser is attacker-controlled input: a malformed literal (in SQL, in a
    parameter, in COPY) is 22P02 naming it, an overlong one is refused before it is read,
    and the table keeps its rows."""
    conn.execute("DROP TABLE IF EXISTS guarded")
    conn.execute("CREATE TABLE guarded (id int, r int4range)")
    conn.execute("INSERT INTO guarded VALUES (1, '[1,2)')")
    before = conn.execute("SELECT id, r::text FROM guarded").fetchall()
    bad = ["[1,2", "(1,2]]", "[1,,2)", '["1,2)', "\\", "[1,2)\\", "x" * 2_000_000, "[" + "(" * 100_000 + ",)"]
    for value in bad:
        tries = [("INSERT INTO guarded VALUES (2, %s::int4range)", (value,)), ("INSERT INTO guarded VALUES (2, %s)", (value,))]
        if len(value) < 1000:  # a longer statement is refused whole, by its size (54001)
            tries.append((f"INSERT INTO guarded VALUES (2, '{value}'::int4range)", None))
        for sql, params in tries:
            with pytest.raises(psycopg.Error) as e:
                conn.execute(sql, params)
            assert e.value.sqlstate == "22P02", value[:20]
            assert value[1:8] in str(e.value) or "characters, more than" in str(e.value)  # it names the value
    with pytest.raises(psycopg.Error) as e, conn.cursor().copy("COPY guarded FROM STDIN") as cp:
        cp.write(b"3\t[1,\n")
    assert e.value.sqlstate == "22P02"
    assert conn.execute("SELECT id, r::text FROM guarded").fetchall() == before


def test_what_reeldb_does_not_build_is_refused(conn) -> None:
    """Multiranges, other functions of a range, casts PostgreSQL has not, infinite date
    bounds (which DuckDB cannot hand over apart from real dates): refused, never answered."""
    refused = {
        "SELECT '{[1,5)}'::int4multirange + '[7,8)'::int4range": "42883",
        "SELECT length('{[1,5)}'::int4multirange)": "0A000",
        "SELECT range_agg(int4range(1, 2))": "0A000",
        "SELECT length('[1,5)'::int4range)": "0A000",
        "SELECT '[1,5)'::int4range::int4": "42846",
        "SELECT '[1,5)'::int4range = '[1,5)'::int8range": "42883",
        "SELECT int4range(1, 5) @> 3::int8": "42883",
        "SELECT '[2000-01-01,infinity)'::daterange": "0A000",
        "SELECT numrange(1.12345678901, 2)": "0A000",  # more places than reeldb's numeric keeps: never rounded
        "SELECT '{[0,1.12345678901)}'::nummultirange": "0A000",
    }
    for sql, state in refused.items():
        assert answer(conn, sql) == ("error", state), sql
    # a multirange whose bounds need their subtype's cast (hex) is read range by range in SQL: at most 1000
    many = "{" + ",".join(f"[0x{2 * i:x},0x{2 * i + 1:x})" for i in range(1001)) + "}"
    assert answer(conn, "SELECT %s::int4multirange", (many,)) == ("error", "54000")
    plain = "{" + ",".join(f"[{2 * i},{2 * i + 1})" for i in range(5_000)) + "}"  # read in Python, whole
    got = answer(conn, "SELECT %s::int4multirange = %s::int4multirange", (plain, "{" + plain[1:].replace(")", "]")))
    assert got == ("ok", [(False,)])
    assert answer(conn, "SELECT upper(%s::int4multirange)", (plain,)) == ("ok", [(9_999,)])


def test_range_catalog_rows_let_psycopg_fetch_their_info(conn) -> None:
    """pg_type (typtype 'r') and pg_range have PostgreSQL 16's rows: RangeInfo.fetch works."""
    for name, oid, array, sub in [("int4range", 3904, 3905, 23), ("numrange", 3906, 3907, 1700),
                                  ("daterange", 3912, 3913, 1082), ("tstzrange", 3910, 3911, 1184)]:
        info = RangeInfo.fetch(conn, name)
        assert (info.oid, info.array_oid, info.subtype_oid) == (oid, array, sub)
    assert conn.execute("SELECT typtype, typcategory FROM pg_type WHERE oid = 3926").fetchall() == [("r", "R")]
    assert RangeInfo.fetch(conn, "nosuchrange") is None
    multi = MultirangeInfo.fetch(conn, "datemultirange")
    assert (multi.oid, multi.array_oid, multi.range_oid, multi.subtype_oid) == (4535, 6155, 3912, 1082)
    assert conn.execute("SELECT typtype FROM pg_type WHERE oid = 4451").fetchall() == [("m",)]


def test_psycopg2_reads_and_sends_ranges(server) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    from psycopg2.extras import DateRange, NumericRange

    c = psycopg2.connect(dsn(server))
    try:
        cur = c.cursor()
        cur.execute("SELECT int4range(1, 5, '[]'), '[2000-01-01,2000-02-01)'::daterange, 'empty'::numrange")
        r, d, n = cur.fetchone()
        assert r == NumericRange(1, 6, "[)") and d == DateRange(dt.date(2000, 1, 1), dt.date(2000, 2, 1))
        assert n.isempty
        cur.execute("SELECT %s::int4range @> 4, %s::daterange", (NumericRange(1, 4, "[]"), DateRange(None, None)))
        assert cur.fetchone() == (True, DateRange(None, None, "()"))
    finally:
        c.close()


def test_python_api_hands_out_and_takes_ranges(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id INT, r int8range, ts tsrange)")
    db.execute("INSERT INTO t VALUES (%s, %s, %s)", [1, Range(2, 4, "[]"), "[2000-01-01 10:00,)"])
    db.execute("INSERT INTO t VALUES (%s, %s, %s)", [2, Range(empty=True), None])
    rows = db.execute("SELECT id, r, ts FROM t ORDER BY r").fetchall()
    assert rows == [(2, Range(empty=True), None),
                    (1, Range(2, 5, "[)"), Range(dt.datetime(2000, 1, 1, 10), None, "[)"))]
    assert db.execute("SELECT id FROM t WHERE r @> 4::int8").fetchall() == [(1,)]
    with pytest.raises(reeldb.errors.DataError):
        db.execute("INSERT INTO t VALUES (3, '[5,1)', NULL)")
    assert db.execute("SELECT count(*) FROM t").fetchall() == [(2,)]
    db.execute("UPDATE t SET r = r + '[5,9)' WHERE id = 1")
    db.execute("CREATE TABLE t2 AS SELECT id, r, int4multirange(int4range(1, 3), int4range(3, 4)) AS m FROM t")
    assert db.execute("SELECT id, r::text, m::text, pg_typeof(m) FROM t2 ORDER BY id").fetchall() == [
        (1, "[2,9)", "{[1,4)}", "int4multirange"), (2, "empty", "{[1,4)}", "int4multirange")]


def test_arrow_inserts_of_range_structs_are_checked(tmp_path) -> None:
    """db.insert of an Arrow table whose column already has the stored struct type: a
    struct that is no range (lower above upper) is refused, nothing written."""
    import pyarrow as pa

    from reeldb.format.ranges import KINDS

    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id INT, r int4range)")
    bad = {"rng_nonempty": True, "rng_lower_fin": True, "rng_lower": 9, "rng_lower_exc": False,
           "rng_upper_inf": False, "rng_upper": 1, "rng_upper_inc": False}
    with pytest.raises(reeldb.errors.DataError) as e:
        db.insert("t", pa.table({"id": [1], "r": pa.array([bad], KINDS["int4range"].arrow)}))
    assert e.value.sqlstate == "22000" and "column r" in str(e.value)
    good = dict(bad, rng_lower=1, rng_upper=9, rng_lower_exc=True)  # (1,9) -> [2,9)
    db.insert("t", pa.table({"id": [2], "r": pa.array([good], KINDS["int4range"].arrow)}))
    assert db.execute("SELECT id, r::text FROM t").fetchall() == [(2, "[2,9)")]


def test_asyncpg_binary_ranges_and_multiranges(server) -> None:
    """asyncpg reads and sends every range in binary, by the OIDs reeldb describes."""
    import asyncio

    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def run() -> list[Any]:
        c = await asyncpg.connect(f"postgresql://tester@{host}:{port}/ranges")
        try:
            row = await c.fetchrow("SELECT int4range(1, 5, '[]'), 'empty'::numrange, '[2000-01-01,)'::daterange, "
                                   "'{[5,7),[1,3)}'::int4multirange")
            contains = await c.fetchval("SELECT $1::int4range @> 3", asyncpg.Range(1, 4))
            merged = await c.fetchval("SELECT $1::nummultirange",
                                      [asyncpg.Range(Decimal(1), Decimal(2)), asyncpg.Range(Decimal(2), Decimal(3))])
            return [*row, contains, merged]
        finally:
            await c.close()

    got = asyncio.run(run())
    assert got[0] == asyncpg.Range(1, 6) and got[1].isempty and got[2] == asyncpg.Range(dt.date(2000, 1, 1), None)
    assert got[3] == [asyncpg.Range(1, 3), asyncpg.Range(5, 7)]
    assert got[4] is True and got[5] == [asyncpg.Range(Decimal(1), Decimal(3))]


def test_range_array_columns(conn, pg) -> None:
    """daterange[] / tstzrange[] / int4range[] columns: literals, ARRAY[...], psycopg lists in
    text and binary, subscripts, ::text and COPY, as PostgreSQL."""
    rows = [(1, '{"[2000-01-01,2000-02-01)",empty}', None), (2, None, '{"(1,3]","(,)"}')]
    for c in (conn, pg):
        c.execute("DROP TABLE IF EXISTS spans_arr")
        c.execute("CREATE TABLE spans_arr (id int, d daterange[], i int4range[], t tstzrange[])")
        for row in rows:
            c.execute("INSERT INTO spans_arr (id, d, i) VALUES (%s, %s, %s)", row)
        c.execute("INSERT INTO spans_arr VALUES (3, ARRAY['[2000-01-01,2000-01-05]'::daterange], "
                  "ARRAY[int4range(1, 2), 'empty'], ARRAY[tstzrange('2000-01-01 10:00+02', NULL)])")
        for binary in (False, True):
            c.cursor(binary=binary).execute(
                "INSERT INTO spans_arr VALUES (%s, %s, %s, %s)",
                (4 + binary, [PgRange(dt.date(2001, 1, 1), None)], [PgRange(5, 6, "[]"), None],
                 [PgRange(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), None)]))
    queries = ["SELECT id, d::text, i::text, t::text FROM spans_arr ORDER BY id",
               "SELECT id, d[1]::text, i[2], cardinality(t) FROM spans_arr ORDER BY id",
               "SELECT id FROM spans_arr WHERE i = '{\"[2,4)\",\"(,)\"}' ORDER BY id"]
    for q in queries:
        assert answer(conn, q) == answer(pg, q), q
    for binary in (False, True):
        q = "SELECT id, d, i, t FROM spans_arr ORDER BY id"
        assert answer(conn, q, binary=binary) == answer(pg, q, binary=binary)
