"""Values on the wire as PostgreSQL 16 sends them: transaction status after errors, binary
time / timetz / interval, COPY ... (FORMAT BINARY), infinite and far dates, parameter
types after Describe, and client encodings. Each is checked with a real client (psycopg 3
text and binary, asyncpg, psql) against `reeldb serve` on 127.0.0.1; the expected bytes
are what PostgreSQL 16.2 sent for the same statements."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import struct
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import reeldb
from reeldb.server.server import BackgroundServer

psycopg = pytest.importorskip("psycopg")
pq = psycopg.pq

INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN = 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    path = tmp_path_factory.mktemp("wire") / "films"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE shots (id INT, take SMALLINT, frames BIGINT, shot_on DATE, started TIMESTAMP, "
               "logged TIMESTAMPTZ, cue TIME, note TEXT)")
    db.execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)")
    db.close()
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


def dsn(server: BackgroundServer) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=films user=tester"


def raw(conn: Any, sql: str, fmt: int, params: list[bytes | None] | None = None,
        oids: list[int] | None = None, param_formats: list[int] | None = None) -> list[tuple[int, bytes | None]]:
    """The first row's (type OID, wire bytes) per column, as libpq received them."""
    r = conn.pgconn.exec_params(sql.encode(conn.info.encoding), params, oids, param_formats, result_format=fmt)
    if r.status != pq.ExecStatus.TUPLES_OK:
        state = (r.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        raise AssertionError(f"{state}: {r.error_message.decode()}")
    return [(r.ftype(i), r.get_value(0, i)) for i in range(r.nfields)]


def error_state(conn: Any, sql: str, params: list[bytes | None], oids: list[int]) -> str:
    r = conn.pgconn.exec_params(sql.encode(), params, oids, [1] * len(params), result_format=0)
    assert r.status == pq.ExecStatus.FATAL_ERROR, r.status
    return (r.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()


def run_asyncpg(server: BackgroundServer, fn: Any) -> Any:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def main() -> Any:
        conn = await asyncpg.connect(host=host, port=port, user="tester", database="films")
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def psql(server: BackgroundServer, sql: str) -> subprocess.CompletedProcess:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    return subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "films",
                           "-c", sql], capture_output=True, text=True, timeout=30)


# -- date / time edge values ------------------------------------------------------------------
EDGES = ("SELECT 'infinity'::date, '-infinity'::date, 'infinity'::timestamp, '-infinity'::timestamptz, "
         "'10000-01-01'::date, '0001-01-01 00:00:00+00'::timestamptz - interval '1 hour', '24:00'::time, "
         "'01:02:03.5'::time")


def test_infinite_and_far_dates_in_text_as_postgres_prints_them(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        got = raw(conn, EDGES, 0)
    assert got == [(1082, b"infinity"), (1082, b"-infinity"), (1114, b"infinity"), (1184, b"-infinity"),
                   (1082, b"10000-01-01"), (1184, b"0001-12-31 23:00:00+00 BC"), (1083, b"24:00:00"),
                   (1083, b"01:02:03.5")]
    out = psql(server, EDGES.replace("SELECT ", "SELECT 'x', "))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "x|infinity|-infinity|infinity|-infinity|10000-01-01|0001-12-31 23:00:00+00 BC|" \
                                 "24:00:00|01:02:03.5"


def test_infinite_and_far_dates_in_binary_as_postgres_sends_them(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        got = raw(conn, EDGES, 1)
    assert got == [(1082, struct.pack("!i", INT32_MAX)), (1082, struct.pack("!i", INT32_MIN)),
                   (1114, struct.pack("!q", INT64_MAX)), (1184, struct.pack("!q", INT64_MIN)),
                   (1082, struct.pack("!i", 2921940)), (1184, struct.pack("!q", -63082285200000000)),
                   (1083, struct.pack("!q", 86_400_000_000)), (1083, struct.pack("!q", 3_723_500_000))]


def test_asyncpg_round_trips_infinity(server) -> None:
    """asyncpg reads infinity as date.max / datetime.max and sends those back as infinity."""
    async def go(conn: Any) -> Any:
        row = await conn.fetchrow("SELECT $1::date AS d, $2::timestamp AS t, $1::date::text AS dt, "
                                  "$2::timestamp::text AS tt, 'infinity'::timestamptz AS z, $3::date AS plain",
                                  dt.date.max, dt.datetime.min, dt.date(2024, 2, 29))
        return tuple(row)

    assert run_asyncpg(server, go) == (dt.date.max, dt.datetime.min, "infinity", "-infinity",
                                       dt.datetime.max, dt.date(2024, 2, 29))  # as asyncpg reads it from PostgreSQL


@pytest.mark.parametrize(("oid", "value", "text"), [
    (1082, struct.pack("!i", INT32_MAX), "infinity"), (1082, struct.pack("!i", INT32_MIN), "-infinity"),
    (1114, struct.pack("!q", INT64_MAX), "infinity"), (1184, struct.pack("!q", INT64_MIN), "-infinity"),
    (1082, struct.pack("!i", 3_000_000), "10213-09-21"), (1083, struct.pack("!q", 86_400_000_000), "24:00:00"),
    (1266, struct.pack("!qi", 3_723_000_000, 10800), "01:02:03-03"),
    (1266, struct.pack("!qi", 3_723_000_000, -19800), "01:02:03+05:30"),
])
def test_binary_date_time_parameters_read_as_postgres_reads_them(server, oid: int, value: bytes, text: str) -> None:
    with psycopg.connect(dsn(server)) as conn:
        assert raw(conn, "SELECT $1::text", 0, [value], [oid], [1]) == [(25, text.encode())]


@pytest.mark.parametrize(("oid", "value"), [
    (1082, struct.pack("!i", INT32_MAX - 1)), (1082, struct.pack("!i", -2451546)),
    (1114, struct.pack("!q", 9223371331200000000)), (1184, struct.pack("!q", -211813488000000001)),
    (1083, struct.pack("!q", 86_400_000_001)), (1083, struct.pack("!q", -1)),
])
def test_binary_dates_outside_postgres_range_are_refused_with_22008(server, oid: int, value: bytes) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        column = {1082: "shot_on", 1114: "started", 1184: "logged", 1083: "cue"}[oid]
        assert error_state(conn, f"INSERT INTO shots (id, {column}) VALUES (1, $1)", [value], [oid]) == "22008"
        assert conn.execute("SELECT count(*) FROM shots").fetchone() == (0,)


# -- binary time, timetz, interval ---------------------------------------------------------------
INTERVALS = ["1 year 2 mons -3 days 04:05:06.5", "-1 year", "-14 mons", "1 day -00:00:01", "-1 days 1 hour",
             "0", "1 mon -1 day", "-1 mon -1 day -1 sec", "-0.000001 sec", "1 year -1 mon"]
# PostgreSQL 16's output of each, and its interval_send (microseconds, days, months)
INTERVAL_TEXT = ["1 year 2 mons -3 days +04:05:06.5", "-1 years", "-1 years -2 mons", "1 day -00:00:01",
                 "-1 days +01:00:00", "00:00:00", "1 mon -1 days", "-1 mons -1 days -00:00:01",
                 "-00:00:00.000001", "11 mons"]
INTERVAL_SEND = [(14706500000, -3, 14), (0, 0, -12), (0, 0, -14), (-1000000, 1, 0), (3600000000, -1, 0), (0, 0, 0),
                 (0, -1, 1), (-1000000, -1, -1), (-1, 0, 0), (0, 0, 11)]


def test_interval_results_in_text_and_binary(server) -> None:
    sql = "SELECT " + ", ".join(f"'{i}'::interval" for i in INTERVALS)
    with psycopg.connect(dsn(server)) as conn:
        assert raw(conn, sql, 0) == [(1186, t.encode()) for t in INTERVAL_TEXT]
        assert raw(conn, sql, 1) == [(1186, struct.pack("!qii", *s)) for s in INTERVAL_SEND]


def test_binary_interval_parameters_with_months(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        for text, send in zip(INTERVAL_TEXT, INTERVAL_SEND, strict=True):
            got = raw(conn, "SELECT $1::interval", 0, [struct.pack("!qii", *send)], [1186], [1])
            assert got == [(1186, text.encode())]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg_time_and_interval_columns_round_trip(server, binary: bool) -> None:
    values = [(1, dt.time(0, 0), dt.date(1, 1, 1)), (2, dt.time(23, 59, 59, 999999), dt.date(9999, 12, 31)),
              (3, dt.time(12, 0, 0, 5), dt.date(2024, 2, 29))]
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        cur = conn.cursor(binary=binary)
        cur.executemany("INSERT INTO shots (id, cue, shot_on) VALUES (%s, %s, %s)", values)
        cur.execute("SELECT id, cue, shot_on FROM shots ORDER BY id")
        assert cur.fetchall() == values
        assert [d.type_code for d in cur.description] == [23, 1083, 1082]
        cur.execute("SELECT %s, %s", [dt.time(1, 2, 3, 400), dt.timedelta(days=1, seconds=5, microseconds=7)])
        assert cur.fetchone() == (dt.time(1, 2, 3, 400), dt.timedelta(days=1, seconds=5, microseconds=7))


def test_asyncpg_time_and_interval(server) -> None:
    async def go(conn: Any) -> Any:
        row = await conn.fetchrow("SELECT $1::time AS t, $2::interval AS i, '1 mon 2 days 00:00:03'::interval AS m",
                                  dt.time(4, 5, 6, 7), dt.timedelta(days=-2, microseconds=1))
        return tuple(row)

    t, i, m = run_asyncpg(server, go)
    assert (t, i) == (dt.time(4, 5, 6, 7), dt.timedelta(days=-2, microseconds=1))
    assert m == dt.timedelta(days=32, seconds=3)  # asyncpg folds a month into 30 days, as for Postgres


def test_timetz_parameter_binary_and_result(server) -> None:
    tz = dt.timezone(dt.timedelta(hours=-3))
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.execute("SELECT %s::timetz::text", [dt.time(1, 2, 3, tzinfo=tz)])
        assert cur.fetchone() == ("01:02:03-03",)
        # DuckDB hands over a timetz result without its offset: sent from its text, offset kept
        got = conn.execute("SELECT '12:34:56+05:30'::timetz").fetchone()[0]
        assert got == dt.time(12, 34, 56, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="time with time zone"):
            conn.execute("SELECT ARRAY['12:34:56+05:30'::timetz]")


# -- COPY ... (FORMAT BINARY) -------------------------------------------------------------------
# What PostgreSQL 16 sent for COPY (SELECT id, take, note, shot_on, started, frames FROM shots) TO
# STDOUT (FORMAT BINARY) over the two rows below: the header rides with the first row.
COPY_ROWS = "(1, 2, 'a', '2021-01-01', '2020-01-01 01:02:03.5', 7), (2, NULL, NULL, '2020-01-01', NULL, NULL)"
PG_COPY_OUT = [b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x06" + b"\x00\x00\x00\x04\x00\x00\x00\x01"
               + b"\x00\x00\x00\x02\x00\x02" + b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x04\x00\x00\x1d\xf7"
               + b"\x00\x00\x00\x08\x00\x02>\x08d\xb2y\xe0" + b"\x00\x00\x00\x08" + struct.pack("!q", 7),
               b"\x00\x06\x00\x00\x00\x04\x00\x00\x00\x02" + b"\xff\xff\xff\xff" * 2 + b"\x00\x00\x00\x04\x00\x00\x1c\x89"
               + b"\xff\xff\xff\xff" * 2,
               b"\xff\xff"]
COPY_COLUMNS = "id, take, note, shot_on, started, frames"


def test_copy_to_binary_sends_what_postgres_sends(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        conn.execute(f"INSERT INTO shots ({COPY_COLUMNS}) VALUES {COPY_ROWS}")
        cur = conn.cursor()
        with cur.copy(f"COPY (SELECT {COPY_COLUMNS} FROM shots ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
            assert cur.pgresult is not None and cur.pgresult.binary_tuples == 1
            assert [cur.pgresult.fformat(i) for i in range(6)] == [1] * 6
            chunks = [bytes(c) for c in copy]
        assert chunks == PG_COPY_OUT
        with cur.copy("COPY (SELECT 1 WHERE false) TO STDOUT (FORMAT BINARY)") as copy:
            assert [bytes(c) for c in copy] == [b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\xff\xff"]


def test_copy_from_binary_reads_postgres_bytes(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        cur = conn.cursor()
        with cur.copy(f"COPY shots ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            assert cur.pgresult is not None and cur.pgresult.binary_tuples == 1
            copy.write(b"".join(PG_COPY_OUT))
        assert cur.rowcount == 2
        assert conn.execute(f"SELECT {COPY_COLUMNS} FROM shots ORDER BY id").fetchall() == [
            (1, 2, "a", dt.date(2021, 1, 1), dt.datetime(2020, 1, 1, 1, 2, 3, 500000), 7),
            (2, None, None, dt.date(2020, 1, 1), None, None)]


TYPED = ("CREATE TABLE typed (i2 SMALLINT, i4 INT, i8 BIGINT, r REAL, d DOUBLE PRECISION, n NUMERIC(12,4), "
         "b BOOLEAN, t TEXT, v VARCHAR(10), raw BYTEA, u UUID, j JSONB, day DATE, ts TIMESTAMP, tz TIMESTAMPTZ, "
         "emb VECTOR(3))")


def typed_rows() -> list[tuple]:
    import decimal
    import uuid

    import numpy as np

    return [(-32768, 2**31 - 1, -(2**63), 1.5, -2.25e300, decimal.Decimal("0.0012"), True, "é\tx\n", "short",
             b"\x00\xff\\", uuid.UUID(int=7), {"k": [1, "two"]}, dt.date(1, 1, 2), dt.datetime(9999, 12, 31, 23, 59),
             dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), np.array([1.0, 2.5, -3.0], dtype=np.float32)),
            tuple([None] * 16)]


def test_psycopg_binary_copy_round_trips_every_column_type(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS typed")
        conn.execute(TYPED)
        types = ["int2", "int4", "int8", "float4", "float8", "numeric", "bool", "text", "varchar", "bytea", "uuid",
                 "jsonb", "date", "timestamp", "timestamptz"]
        rows = typed_rows()
        cur = conn.cursor()
        with cur.copy("COPY typed (i2, i4, i8, r, d, n, b, t, v, raw, u, j, day, ts, tz) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row([psycopg.types.json.Jsonb(v) if isinstance(v, dict) else v for v in row[:15]])
        with cur.copy("COPY typed (i2, i4, i8, r, d, n, b, t, v, raw, u, j, day, ts, tz) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            back = list(copy.rows())
        assert back == [row[:15] for row in rows]
        # and text COPY of the same rows reads as a text query does
        with cur.copy("COPY typed (i2, t, raw, day) TO STDOUT") as copy:
            text = b"".join(bytes(c) for c in copy)
        assert text == b"-32768\t\xc3\xa9\\tx\\n\t\\\\x00ff5c\t0001-01-02\n\\N\t\\N\t\\N\t\\N\n"


def test_asyncpg_copy_records_uses_binary_copy(server) -> None:
    rows = typed_rows()

    async def go(conn: Any) -> Any:
        await conn.execute("DELETE FROM typed")
        status = await conn.copy_records_to_table(
            "typed", records=[r[:7] + r[8:11] + r[12:15] for r in rows],
            columns=["i2", "i4", "i8", "r", "d", "n", "b", "v", "raw", "u", "day", "ts", "tz"])
        back = await conn.fetch("SELECT i2, i4, i8, r, d, n, b, v, raw, u, day, ts, tz FROM typed ORDER BY i2")
        return status, [tuple(r) for r in back]

    status, back = run_asyncpg(server, go)
    assert status == "COPY 2"
    assert back == [r[:7] + r[8:11] + r[12:15] for r in rows]


@pytest.mark.parametrize(("data", "sqlstate", "message"), [
    (b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x03" + b"\x00\x00\x00\x01a" * 3 + b"\xff\xff", "22P04",
     "row field count is 3, expected 2"),
    (b"NOTCOPY" + b"\x00" * 12 + b"\xff\xff", "22P04", "signature not recognized"),
    (b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x02\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x01a", "22P04",
     "unexpected EOF"),  # no trailer
    (b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + b"\x00\x02\x00\x00\x00\x02\x00\x01\x00\x00\x00\x01a\xff\xff", "22P03",
     "OID 23"),  # a 2-byte int4
])
def test_bad_binary_copy_data_is_refused_and_nothing_is_written(server, data: bytes, sqlstate: str, message: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        with pytest.raises(psycopg.Error, match=message) as info, \
                conn.cursor().copy("COPY shots (id, note) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        assert info.value.sqlstate == sqlstate
        assert conn.execute("SELECT count(*) FROM shots").fetchone() == (0,)


@pytest.mark.parametrize(("options", "sqlstate", "message"), [
    ("FORMAT binary, HEADER", "0A000", "cannot specify HEADER in BINARY mode"),
    ("FORMAT binary, DELIMITER ','", "42601", "cannot specify DELIMITER in BINARY mode"),
    ("FORMAT binary, NULL 'x'", "42601", "cannot specify NULL in BINARY mode"),
    ("FORMAT bogus", "22023", 'COPY format "bogus" not recognized'),
])
def test_binary_copy_options_refused_as_postgres_refuses_them(server, options: str, sqlstate: str, message: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match=message) as info, \
                conn.cursor().copy(f"COPY shots TO STDOUT ({options})"):
            pass
        assert info.value.sqlstate == sqlstate


# -- parameter types after Parse / Describe -------------------------------------------------------
# (statement, PostgreSQL 16's ParameterDescription) against the shots table
PARAM_TYPES = [
    ("SELECT $1::int + $2", [23, 23]), ("SELECT $1 + $2::int", [23, 23]), ("SELECT $1::int2 + $2", [21, 21]),
    ("SELECT * FROM shots WHERE take = $1", [21]), ("SELECT * FROM shots WHERE take > $1 AND frames < $2", [21, 20]),
    ("INSERT INTO shots (id, take, frames, shot_on, started, logged, cue, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
     [23, 21, 20, 1082, 1114, 1184, 1083, 25]),
    ("UPDATE shots SET take = $1 WHERE id = $2", [21, 23]), ("SELECT take + $1 FROM shots", [21]),
    ("SELECT $1 + 1", [23]), ("SELECT $1 + 1.5", [1700]), ("SELECT 3000000000 + $1", [20]), ("SELECT $1 || 'a'", [25]),
    ("SELECT 1 WHERE $1", [16]), ("SELECT $1 = 'a'", [25]), ("SELECT * FROM shots WHERE id IN ($1, $2)", [23, 23]),
    ("SELECT * FROM shots WHERE note LIKE $1", [25]), ("SELECT * FROM shots LIMIT $1 OFFSET $2", [20, 20]),
    ("SELECT $1 * 2.0::float8", [701]), ("SELECT coalesce($1, 1)", [23]), ("SELECT * FROM shots WHERE shot_on > $1", [1082]),
    ("SELECT * FROM shots WHERE started BETWEEN $1 AND $2", [1114, 1114]), ("SELECT * FROM shots WHERE id = any($1)", [1007]),
    ("SELECT $1::timestamptz - $2", [1184, 1184]), ("SELECT $1 < now()", [1184]), ("SELECT greatest($1, 1)", [23]),
    ("SELECT nullif($1, 1)", [23]), ("SELECT case when $1 then 1 end", [16]), ("SELECT $1 and true", [16]),
    ("SELECT note FROM shots WHERE take = $1 OR $2", [21, 16]), ("SELECT * FROM shots WHERE (take, id) = ($1, $2)", [21, 23]),
    ("SELECT case when take = 1 then $1 else 2 end FROM shots", [23]), ("SELECT $1", [25]), ("SELECT length($1)", [25]),
    ("SELECT now() + $1", [1186]), ("SELECT $1::timestamp + $2", [1114, 1186]), ("SELECT started - $1 FROM shots", [1114]),
    ("SELECT current_date - $1", [1082]), ("SELECT $1::interval * $2", [1186, 701]), ("SELECT shot_on + $1 FROM shots", "42725"),
]


async def described(conn: Any, sql: str) -> list[int] | str:
    """ParameterDescription after asyncpg's Parse and Describe, or the refusal's SQLSTATE."""
    import asyncpg

    try:
        statement = await conn.prepare(sql)
    except asyncpg.PostgresError as e:
        return e.sqlstate
    return [p.oid for p in statement.get_parameters()]


def test_parameter_types_after_describe_are_postgres_types(server) -> None:
    async def go(conn: Any) -> Any:
        return [(sql, await described(conn, sql)) for sql, _ in PARAM_TYPES]

    assert run_asyncpg(server, go) == PARAM_TYPES


@pytest.mark.parametrize(("sql", "sqlstate"), [
    ("SELECT pg_typeof($1)", "42P18"), ("SELECT $1 IS NULL", "42P18"), ("SELECT concat($1)", "42P18"),
    ("SELECT count($1)", "42P18"), ("SELECT row($1, 1)", "42P18"), ("SELECT json_build_object('a', $1)", "42P18"),
    ("SELECT to_json($1)", "42804"),
])
def test_untyped_parameters_postgres_cannot_type_are_refused(server, sql: str, sqlstate: str) -> None:
    async def go(conn: Any) -> Any:
        return await described(conn, sql), await described(conn, sql.replace("$1", "$1::int"))

    assert run_asyncpg(server, go) == (sqlstate, [23])  # typed by a cast, it is fine
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql.replace("$1", "%s"), ["x"])  # psycopg sends a str untyped
        assert info.value.sqlstate == sqlstate


def test_asyncpg_encodes_parameters_by_the_inferred_types(server) -> None:
    """asyncpg encodes each argument in binary by the type Describe gave: with $2 as text
    it refused the int 2 before sending anything."""
    async def go(conn: Any) -> Any:
        await conn.execute("DELETE FROM shots")
        await conn.execute("INSERT INTO shots (id, take, frames) VALUES ($1, $2, $3)", 1, 7, 2**40)
        return (await conn.fetchval("SELECT $1::int + $2", 1, 2),
                await conn.fetchval("SELECT id FROM shots WHERE take IN ($1, $2)", 7, 8),
                await conn.fetchval("SELECT count(*) FROM shots WHERE id = any($1)", [1, 2]),
                await conn.fetchval("SELECT $1 < now()", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)),
                await conn.fetchrow("SELECT take, take AS t2, frames FROM shots"))

    total, found, count, earlier, row = run_asyncpg(server, go)
    assert (total, found, count, earlier) == (3, 1, 1, True)
    assert tuple(row) == (7, 7, 2**40)


@pytest.mark.parametrize("fmt", [0, 1], ids=["text", "binary"])
def test_smallint_columns_are_int2_on_the_wire(server, fmt: int) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        conn.execute("INSERT INTO shots (id, take) VALUES (1, -3)")
        got = raw(conn, "SELECT take, 1::int2, id FROM shots", fmt)
    expect = [b"-3", b"1", b"1"] if fmt == 0 else [struct.pack("!h", -3), struct.pack("!h", 1), struct.pack("!i", 1)]
    assert got == list(zip([21, 21, 23], expect, strict=True))


# -- transaction status in ReadyForQuery ------------------------------------------------------------
TS = pq.TransactionStatus


def test_ready_for_query_status_on_every_path(server) -> None:
    """I idle, T in a block, E after any error in a block (simple query, extended query
    with Sync, COPY in and out), I again after ROLLBACK, as PostgreSQL 16 reports them."""
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        seen = [conn.info.transaction_status]
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")  # outside a block: stays idle
        seen.append(conn.info.transaction_status)
        for failing in ("SELECT 1/0", "SELECT %s::int / 0", "COPY (SELECT 1/0) TO STDOUT", "COPY acct FROM STDIN"):
            conn.execute("BEGIN")
            conn.execute("SELECT %s", [1])
            seen.append(conn.info.transaction_status)
            with pytest.raises(psycopg.Error):
                if failing.startswith("COPY acct"):
                    with conn.cursor().copy(failing) as copy:
                        copy.write(b"1\tnot a number\n")
                elif failing.startswith("COPY"):
                    with conn.cursor().copy(failing) as copy:
                        list(copy)
                else:
                    conn.execute(failing, [1] if "%s" in failing else None)
            seen.append(conn.info.transaction_status)
            with pytest.raises(psycopg.errors.InFailedSqlTransaction):
                conn.execute("SELECT 1")
            seen.append(conn.info.transaction_status)
            conn.execute("ROLLBACK")
            seen.append(conn.info.transaction_status)
    assert seen == [TS.IDLE, TS.IDLE] + [TS.INTRANS, TS.INERROR, TS.INERROR, TS.IDLE] * 4


def test_pipeline_error_fails_the_block_until_sync(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("DELETE FROM acct")
        conn.commit()
        with pytest.raises(psycopg.errors.UndefinedTable), conn.pipeline() as pipeline:
            conn.execute("INSERT INTO acct VALUES (%s, %s)", [1, 10])
            conn.execute("INSERT INTO nosuch VALUES (%s)", [1])
            conn.execute("INSERT INTO acct VALUES (%s, %s)", [2, 20])  # skipped until Sync
            pipeline.sync()
        assert conn.info.transaction_status == TS.INERROR
        conn.rollback()
        assert conn.info.transaction_status == TS.IDLE
        assert conn.execute("SELECT count(*) FROM acct").fetchone() == (0,)


# -- client encodings -----------------------------------------------------------------------------
def test_latin1_client_gets_latin1_bytes_both_ways(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DELETE FROM shots")
        conn.execute("SET client_encoding TO 'LATIN1'")
        assert conn.info.encoding == "iso8859-1"  # psycopg read the ParameterStatus
        assert conn.execute("SHOW client_encoding").fetchone() == ("LATIN1",)
        conn.execute("INSERT INTO shots (id, note) VALUES (1, 'café'), (2, %s)", ["naïve"])
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute("SELECT note FROM shots WHERE note = %s OR id = 1 ORDER BY id", ["naïve"])
            assert cur.fetchall() == [("café",), ("naïve",)]
        assert raw(conn, "SELECT note, 'ü' FROM shots WHERE id = 1", 0) == [(25, b"caf\xe9"), (25, b"\xfc")]
        assert raw(conn, "SELECT $1::text", 1, [b"d\xe9j\xe0"], [25], [1]) == [(25, b"d\xe9j\xe0")]
        with conn.cursor().copy("COPY (SELECT id, note FROM shots ORDER BY id) TO STDOUT") as copy:
            assert b"".join(bytes(c) for c in copy) == b"1\tcaf\xe9\n2\tna\xefve\n"
        with conn.cursor().copy("COPY shots (id, note) FROM STDIN") as copy:
            copy.write(b"3\tgar\xe7on\n")
        conn.execute("RESET client_encoding")
        assert conn.info.encoding == "utf-8"
        assert conn.execute("SELECT note FROM shots WHERE id = 3").fetchone() == ("garçon",)


def test_euc_jp_client_and_characters_an_encoding_lacks(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        conn.execute("SET client_encoding TO 'EUC_JP'")
        assert conn.execute("SELECT %s::text || '語'", ["日本"]).fetchone() == ("日本語",)
        conn.commit()
        conn.execute("SET client_encoding TO 'LATIN1'")
        with pytest.raises(psycopg.errors.UntranslatableCharacter,
                           match='0xe2 0x82 0xac in encoding "UTF8" has no equivalent in encoding "LATIN1"'):
            conn.execute("SELECT chr(8364)")  # the euro sign: not in LATIN1
        assert conn.info.transaction_status == TS.INERROR
        conn.rollback()
        conn.autocommit = True
        conn.execute("SET client_encoding TO 'EUC_JP'")
        r = conn.pgconn.exec_(b"SELECT '\xff\xfe'")  # not EUC_JP
        assert (r.error_field(pq.DiagnosticField.SQLSTATE), conn.info.transaction_status) == (b"22021", TS.IDLE)
        assert conn.execute("SELECT 'ok'").fetchone() == ("ok",)


@pytest.mark.parametrize(("name", "sqlstate"), [("bogus", "22023"), ("MULE_INTERNAL", "0A000"), ("EUC_TW", "0A000")])
def test_encodings_postgres_refuses_or_python_lacks_are_refused(server, name: str, sqlstate: str) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match=f'invalid value for parameter "client_encoding": "{name}"') as info:
            conn.execute(f"SET client_encoding TO '{name}'")
        assert info.value.sqlstate == sqlstate
        assert conn.execute("SHOW client_encoding").fetchone() == ("UTF8",)
        assert conn.info.encoding == "utf-8"


def test_client_encoding_in_the_startup_packet(server) -> None:
    with psycopg.connect(dsn(server) + " client_encoding=WIN1252") as conn:
        assert conn.info.encoding == "cp1252"
        assert raw(conn, "SELECT '€'", 0) == [(25, b"\x80")]
    with pytest.raises(psycopg.OperationalError, match="client_encoding"):
        psycopg.connect(dsn(server) + " client_encoding=bogus")


def test_psql_with_pgclientencoding_latin1(server) -> None:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "tester", "-d", "films",
                          "-c", "SELECT 'crème', current_setting('client_encoding')".encode("latin-1")],
                         capture_output=True, timeout=30, env={"PGCLIENTENCODING": "LATIN1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == b"cr\xe8me|LATIN1"


def test_calendar_matches_python_and_postgres_limits() -> None:
    """The day arithmetic behind every date on the wire: Python's calendar wherever Python
    has one, Postgres' first and last representable days at the ends."""
    import random

    from reeldb.types import datetimes

    rng = random.Random(21)
    epoch = dt.date(2000, 1, 1)
    for days in [0, -1, 59, -730119, 2914635] + [rng.randint(-730119, 2914635) for _ in range(2000)]:
        d = epoch + dt.timedelta(days=days)
        assert datetimes.civil(days) == (d.year, d.month, d.day)
        assert datetimes.day_number(d.year, d.month, d.day) == days
    assert datetimes.civil(datetimes.PG_MIN_DAY) == (-4713, 11, 24)  # 4714-11-24 BC, Julian day 0
    assert datetimes.civil(datetimes.PG_END_DAY - 1) == (5874897, 12, 31)
    assert datetimes.date_out(datetimes.PG_MIN_DAY + datetimes.UNIX_TO_PG_DAYS, False) == b"4714-11-24 BC"
    with pytest.raises(reeldb.errors.DataError, match="date out of range") as info:
        datetimes.date_out(datetimes.PG_MIN_DAY - 1 + datetimes.UNIX_TO_PG_DAYS, True)
    assert info.value.sqlstate == "22008"


def test_notifications_reach_a_latin1_client_in_latin1(server) -> None:
    with psycopg.connect(dsn(server), autocommit=True) as listener, \
            psycopg.connect(dsn(server), autocommit=True) as sender:
        listener.execute("SET client_encoding TO 'LATIN1'")
        listener.execute("LISTEN scène")
        sender.execute("NOTIFY scène, 'prête'")
        got = next(listener.notifies(timeout=5, stop_after=1))
        assert (got.channel, got.payload) == ("scène", "prête")


ARRAYS = ("SELECT ARRAY['infinity'::date, NULL, '2020-01-01'], ARRAY['10000-01-01 00:00'::timestamp], "
          "ARRAY[ARRAY['01:02'::time], ARRAY['24:00'::time]], '{}'::date[]")


def test_arrays_of_dates_and_times_as_postgres_sends_them(server) -> None:
    with psycopg.connect(dsn(server)) as conn:
        assert raw(conn, ARRAYS, 0) == [(1182, b"{infinity,NULL,2020-01-01}"), (1115, b'{"10000-01-01 00:00:00"}'),
                                        (1183, b"{{01:02:00},{24:00:00}}"), (1182, b"{}")]
        got = raw(conn, ARRAYS, 1)
    one_dim = struct.pack("!iii", 1, 1, 1082) + struct.pack("!ii", 3, 1)
    assert got[0] == (1182, one_dim + struct.pack("!ii", 4, INT32_MAX) + b"\xff\xff\xff\xff" + struct.pack("!ii", 4, 7305))
    assert got[1] == (1115, struct.pack("!iiiii", 1, 0, 1114, 1, 1) + struct.pack("!iq", 8, 252455616000000000))
    assert got[2] == (1183, struct.pack("!iiiiiii", 2, 0, 1083, 2, 1, 1, 1)
                      + struct.pack("!iqiq", 8, 3_720_000_000, 8, 86_400_000_000))
    assert got[3] == (1182, struct.pack("!iii", 0, 0, 1082))


def test_binary_copy_of_vectors_and_bytea_round_trips_byte_for_byte(server) -> None:
    """pgvector's binary form (dimension, unused, big-endian float4s) in and out of COPY."""
    row = (struct.pack("!h", 3) + struct.pack("!ii", 4, 1) + struct.pack("!i", 16) + struct.pack("!hh3f", 3, 0, 1.5, 2, -3)
           + struct.pack("!i", 2) + b"\x00\x01")
    data = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + row + b"\xff\xff"
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS frames")
        conn.execute("CREATE TABLE frames (id INT, emb VECTOR(3), raw BYTEA)")
        with conn.cursor().copy("COPY frames FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        assert conn.execute("SELECT id, emb::text, raw FROM frames").fetchall() == [(1, "[1.5,2,-3]", b"\x00\x01")]
        with conn.cursor().copy("COPY frames TO STDOUT (FORMAT BINARY)") as copy:
            assert b"".join(bytes(c) for c in copy) == data


def test_describe_of_update_from_returning_and_encoding_after_reset(tmp_path) -> None:
    """Describe of UPDATE ... FROM ... RETURNING (the FROM table is in scope); RESET ALL
    goes back to the client encoding the client connected with, as PostgreSQL does."""
    import reeldb as _reeldb
    from reeldb.server.server import BackgroundServer as _Server

    path = tmp_path / "enc"
    db = _reeldb.connect(path)
    db.execute("CREATE TABLE t (a INT)")
    db.execute("CREATE TABLE u (b INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("INSERT INTO u VALUES (1)")
    db.close()
    srv = _Server(str(path), port=0)
    try:
        host, port = srv.address
        with psycopg.connect(f"host={host} port={port} dbname=enc user=tester", autocommit=True,
                             client_encoding="LATIN1") as conn:
            cur = conn.cursor()
            cur.execute("UPDATE t SET a = 2 FROM u WHERE t.a = u.b RETURNING a", prepare=True)
            assert cur.fetchall() == [(2,)]
            conn.execute("RESET ALL")
            assert conn.info.encoding == "iso8859-1"
            assert conn.execute("SHOW client_encoding").fetchone() == ("LATIN1",)
            assert conn.execute("SELECT 'caf\u00e9'").fetchone() == ("caf\u00e9",)
    finally:
        srv.stop()
