"""The wire protocol without sockets: framing, message parsing, and a client session fed
frontend messages as bytes, checked message by message."""

from __future__ import annotations

import datetime as dt
import decimal
import struct
import uuid

import numpy as np
import pytest

import reeldb
from reeldb import types as pt
from reeldb.server import protocol as p
from reeldb.server import types as t
from reeldb.server.conn import ClientSession
from reeldb.server.describe import param_oids


def frontend(kind: str, payload: bytes = b"") -> tuple[str, bytes]:
    return kind, payload


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def parse_msg(name: str, query: str, oids: list[int] | None = None) -> bytes:
    oids = oids or []
    return cstr(name) + cstr(query) + struct.pack("!h", len(oids)) + b"".join(struct.pack("!i", o) for o in oids)


def bind_msg(portal: str, stmt: str, values: list[bytes | None], formats: list[int] | None = None,
             result_formats: list[int] | None = None) -> bytes:
    formats = formats or []
    result_formats = result_formats or []
    out = cstr(portal) + cstr(stmt) + struct.pack("!h", len(formats)) + b"".join(struct.pack("!h", f) for f in formats)
    out += struct.pack("!h", len(values))
    for v in values:
        out += struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v
    return out + struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)


def messages(data: list[bytes]) -> list[tuple[str, bytes]]:
    """Backend messages back into (type, payload)."""
    r = p.MessageReader()
    r.started = True
    for d in data:
        r.feed(d)
    out = []
    while (m := r.next()) is not None:
        out.append(m)
    return out


def kinds(data: list[bytes]) -> str:
    return "".join(k for k, _ in messages(data))


def data_rows(data: list[bytes]) -> list[list[bytes | None]]:
    rows = []
    for kind, payload in messages(data):
        if kind == "D":
            pl = p.Payload(payload)
            row = []
            for _ in range(pl.int16()):
                n = pl.int32()
                row.append(None if n == -1 else pl.take(n))
            rows.append(row)
    return rows


def error_fields(data: list[bytes]) -> dict[str, str]:
    for kind, payload in messages(data):
        if kind == "E":
            return {chr(f[0]): f[1:].decode() for f in payload.rstrip(b"\0").split(b"\0") if f}
    raise AssertionError("no ErrorResponse")


@pytest.fixture
def session(path):
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score FLOAT, emb VECTOR(3))")
    db.execute("INSERT INTO t VALUES (1, 'a', 0.5, '[1,2,3]'), (2, 'b', 1.5, '[4,5,6]'), (3, 'c', NULL, NULL)")
    s = ClientSession(db, "me", "video-gen", 7)
    yield s
    db.close()


# -- framing ---------------------------------------------------------------------------


def test_reader_frames_startup_then_typed_messages_across_chunks() -> None:
    r = p.MessageReader()
    startup = struct.pack("!i", p.PROTOCOL_3) + cstr("user") + cstr("me") + b"\0"
    stream = struct.pack("!i", len(startup) + 4) + startup + p.message("Q", cstr("SELECT 1"))
    for i in range(len(stream)):  # one byte at a time
        r.feed(stream[i : i + 1])
        m = r.next()
        if m is not None:
            if m[0] == "":
                assert p.parse_startup(m[1]).params == {"user": "me"}
                r.started = True
            else:
                assert m == ("Q", cstr("SELECT 1"))
    assert r.next() is None


def test_oversized_and_malformed_messages_are_refused() -> None:
    r = p.MessageReader(max_message=100)
    r.started = True
    r.feed(b"Q" + struct.pack("!i", 10_000))
    with pytest.raises(p.MessageTooLarge) as e:
        r.next()
    assert e.value.sqlstate == "54000"
    r = p.MessageReader()
    r.started = True
    r.feed(b"Q" + struct.pack("!i", 2))
    with pytest.raises(p.ProtocolViolation):
        r.next()
    with pytest.raises(p.ProtocolViolation):
        p.parse_bind(cstr("") + cstr("") + struct.pack("!h", 5))  # claims 5 formats, has none
    with pytest.raises(reeldb.errors.FeatureNotSupported):
        p.parse_startup(struct.pack("!i", 2 << 16))


def test_cancel_and_ssl_requests_are_recognized() -> None:
    assert p.parse_startup(struct.pack("!iii", p.CANCEL_REQUEST, 42, 99)).cancel == (42, 99)
    assert p.parse_startup(struct.pack("!i", p.SSL_REQUEST)).code == p.SSL_REQUEST


# -- simple query ------------------------------------------------------------------------


def test_greeting_says_who_the_server_is(session) -> None:
    got = messages(session.greeting({"application_name": "pytest"}))
    assert got[0] == ("R", struct.pack("!i", 0))
    status = dict(tuple(x.decode() for x in m[1].split(b"\0")[:2]) for m in got if m[0] == "S")
    assert status["server_version"].startswith("16") and status["client_encoding"] == "UTF8"
    assert status["application_name"] == "pytest"
    assert [k for k, _ in got[-2:]] == ["K", "Z"] and got[-1][1] == b"I"


def test_simple_query_runs_each_statement(session) -> None:
    out = session.handle("Q", cstr("SELECT id, name FROM t ORDER BY id; UPDATE t SET score = 2 WHERE id = 1"))
    assert kinds(out) == "TDDDCCZ"
    assert data_rows(out) == [[b"1", b"a"], [b"2", b"b"], [b"3", b"c"]]
    tags = [pl.rstrip(b"\0").decode() for k, pl in messages(out) if k == "C"]
    assert tags == ["SELECT 3", "UPDATE 1"]


def test_empty_query_and_errors(session) -> None:
    assert kinds(session.handle("Q", cstr("  ;  "))) == "IZ"
    out = session.handle("Q", cstr("SELECT id FROM t; SELECT nope FROM t; SELECT 1"))
    assert kinds(out) == "TDDDCEZ"  # the statement after the error does not run
    assert error_fields(out)["C"] == "42703"
    out = session.handle("Q", cstr("SELEC 1"))
    f = error_fields(out)
    assert f["C"] == "42601" and f["S"] == "ERROR" and "P" in f


def test_failed_transaction_is_reported_until_rollback(session) -> None:
    assert messages(session.handle("Q", cstr("BEGIN")))[-1] == ("Z", b"T")
    out = session.handle("Q", cstr("INSERT INTO t (id) VALUES (1)"))
    assert error_fields(out)["C"] == "23505" and messages(out)[-1] == ("Z", b"E")
    out = session.handle("Q", cstr("SELECT 1"))
    assert error_fields(out)["C"] == "25P02" and messages(out)[-1] == ("Z", b"E")
    out = session.handle("Q", cstr("COMMIT"))
    assert [pl for k, pl in messages(out) if k == "C"] == [b"ROLLBACK\0"]
    assert messages(out)[-1] == ("Z", b"I")


# -- extended query ---------------------------------------------------------------------


def test_extended_query_with_binary_parameters_and_results(session) -> None:
    out = session.handle("P", parse_msg("s1", "SELECT id, name, score FROM t WHERE id >= $1 ORDER BY id"))
    out += session.handle("D", b"S" + cstr("s1"))
    out += session.handle("B", bind_msg("", "s1", [struct.pack("!i", 2)], [1], [1]))
    out += session.handle("E", cstr("") + struct.pack("!i", 0))
    out += session.handle("S", b"")
    assert kinds(out) == "1tT2DDCZ"
    desc = dict(messages(out))["t"]
    assert struct.unpack("!hi", desc) == (1, pt.INT4)  # inferred from the column compared
    rows = data_rows(out)
    assert rows[0] == [struct.pack("!i", 2), b"b", struct.pack("!d", 1.5)]
    assert rows[1] == [struct.pack("!i", 3), b"c", None]


def test_execute_row_limit_suspends_and_resumes(session) -> None:
    session.handle("P", parse_msg("", "SELECT id FROM t ORDER BY id"))
    session.handle("B", bind_msg("cur", "", []))
    first = session.handle("E", cstr("cur") + struct.pack("!i", 2))
    rest = session.handle("E", cstr("cur") + struct.pack("!i", 2))
    assert kinds(first) == "DDs" and kinds(rest) == "DC"
    assert data_rows(first + rest) == [[b"1"], [b"2"], [b"3"]]


def test_an_error_skips_to_sync(session) -> None:
    out = session.handle("B", bind_msg("", "missing", []))
    assert error_fields(out)["C"] == "26000"
    assert session.handle("E", cstr("") + struct.pack("!i", 0)) == []  # skipped
    assert kinds(session.handle("S", b"")) == "Z"
    assert kinds(session.handle("P", parse_msg("", "SELECT 1"))) == "1"


def test_bad_binary_parameter_is_22p03_and_writes_nothing(session) -> None:
    session.handle("P", parse_msg("ins", "INSERT INTO t (id, name) VALUES ($1, $2)", [pt.INT4, pt.TEXT]))
    out = session.handle("B", bind_msg("", "ins", [b"\x01\x02", b"x"], [1]))
    assert error_fields(out)["C"] == "22P03"
    session.handle("S", b"")
    assert session.db.execute("SELECT count(*) FROM t").fetchone()[0] == 3


def test_insert_through_extended_query_commits(session) -> None:
    session.handle("P", parse_msg("ins", "INSERT INTO t (id, name, emb) VALUES ($1, $2, $3)"))
    out = session.handle("D", b"S" + cstr("ins"))
    assert struct.unpack("!hiii", dict(messages(out))["t"]) == (3, pt.INT4, pt.TEXT, pt.VECTOR)
    vec = struct.pack("!hh", 3, 0) + np.array([7, 8, 9], ">f4").tobytes()
    out = session.handle("B", bind_msg("", "ins", [struct.pack("!i", 9), b"nine", vec], [1, 0, 1]))
    out += session.handle("E", cstr("") + struct.pack("!i", 0)) + session.handle("S", b"")
    assert kinds(out) == "2CZ"
    row = session.db.execute("SELECT name, emb FROM t WHERE id = 9").fetchone()
    assert row[0] == "nine" and np.array_equal(row[1], [7, 8, 9])


# -- types -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (True, "t"), (False, "f"), (42, "42"), (-7, "-7"), (1.5, "1.5"), (2.0, "2"), (float("nan"), "NaN"),
    (float("-inf"), "-Infinity"), ("héllo", "héllo"), (b"\x00\xff", "\\x00ff"),
    (dt.datetime(1999, 12, 31, 23, 59, 59, 500000), "1999-12-31 23:59:59.500000"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2024-01-02 03:04:05+00"),
    (dt.date(2024, 2, 29), "2024-02-29"), (decimal.Decimal("-12.340"), "-12.340"),
    ({"a": [1, "x"]}, '{"a": [1, "x"]}'), (np.array([1, 0.5, -2], np.float32), "[1,0.5,-2]"),
    (np.array([[1, 2], [3, 4]], np.int32), "{{1,2},{3,4}}"), ([None, "a b"], '{NULL,"a b"}'),
])
def test_text_output_is_postgres_text(value, text) -> None:
    assert pt.text_out(value) == text


@pytest.mark.parametrize(("oid", "value"), [
    (pt.INT2, -3), (pt.INT4, 2**31 - 1), (pt.INT8, -(2**63)), (pt.FLOAT8, 1e-300), (pt.BOOL, True),
    (pt.BYTEA, b"\x00" * 5), (pt.TEXT, "ünï"), (pt.DATE, dt.date(1970, 1, 1)),
    (pt.TIMESTAMP, dt.datetime(1969, 7, 20, 20, 17, 40, 123456)),
    (pt.TIMESTAMPTZ, dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)), (pt.UUID, uuid.UUID(int=12345)),
    (pt.NUMERIC, decimal.Decimal("-123456789012345678901234567890.000001")), (pt.NUMERIC, decimal.Decimal("0")),
    (pt.NUMERIC, decimal.Decimal("10000.5")), (pt.OID, 2**32 - 1), (pt.INT8_ARRAY, [1, None, -3]),
    (pt.TEXT_ARRAY, ["a", None, "ü b"]), (pt.OID_ARRAY, []), (pt.CHAR_ARRAY, ["r", "i"]),
])
def test_binary_output_reads_back_as_the_same_value(oid, value) -> None:
    assert t.decode_param(t.encoder(oid, 1)(value), oid, 1) == value


def test_vector_binary_is_pgvectors_layout() -> None:
    b = t.encoder(pt.VECTOR, 1)(np.array([1, 2], np.float32))
    assert b == struct.pack("!hhff", 2, 0, 1, 2)
    assert np.array_equal(t.decode_param(b, pt.VECTOR, 1), [1, 2])


def test_text_parameters_become_what_the_sql_layer_binds() -> None:
    assert t.decode_param(b"42", pt.INT8, 0) == 42
    assert t.decode_param(b"\\x0a0b", pt.BYTEA, 0) == b"\n\x0b"
    assert t.decode_param(b"on", pt.BOOL, 0) is True
    assert t.decode_param(b"2024-01-01", 0, 0) == "2024-01-01"  # unknown: the SQL layer coerces
    with pytest.raises(reeldb.errors.InvalidTextRepresentation):
        t.decode_param(b"x1", pt.INT4, 0)
    assert t.decode_param(b"{16385,NULL}", pt.OID_ARRAY, 0) == [16385, None]
    assert t.decode_param(b'{"a,b",c,"q\\"x"}', pt.TEXT_ARRAY, 0) == ["a,b", "c", 'q"x']


def test_catalog_types_on_the_wire() -> None:
    """oid is unsigned, "char" is one byte, int2vector prints as Postgres prints it."""
    import pyarrow as pa

    assert t.type_of("UINTEGER", pa.uint32()) == (pt.OID, -1)
    assert t.type_of("UINTEGER[]", pa.list_(pa.uint32())) == (pt.OID_ARRAY, -1)
    assert t.type_of("ENUM('a', '[', ']')", pa.string()) == (pt.CHAR, -1)
    assert t.type_of("USMALLINT[]", pa.list_(pa.uint16())) == (pt.INT2VECTOR, -1)
    assert t.encoder(pt.INT2VECTOR, 0)([1, 3]) == b"1 3"
    assert t.encoder(pt.CHAR, 1)("r") == b"r"


def test_parameter_types_come_from_their_context(session) -> None:
    tables = session.db._session.current_tables()
    assert param_oids("UPDATE t SET score = $1 WHERE name = $2", [], tables, 2) == [pt.FLOAT8, pt.TEXT]
    assert param_oids("SELECT * FROM t WHERE id = $1 LIMIT $2", [], tables, 2) == [pt.INT4, pt.INT8]
    assert param_oids("SELECT $1::bigint, $2", [0, pt.BOOL], tables, 2) == [pt.INT8, pt.BOOL]
    assert param_oids("SELECT emb <-> $1 FROM t", [], tables, 1) == [pt.VECTOR]
    assert param_oids("SELECT $1::oid[], $2::text[], $3::int4", [], tables, 3) == [pt.OID_ARRAY, pt.TEXT_ARRAY,
                                                                                  pt.INT4]


def test_copy_fail_writes_nothing_and_the_session_goes_on(session) -> None:
    out = session.handle("Q", cstr("COPY t (id, name) FROM STDIN"))
    assert kinds(out) == "G"
    assert session.handle("d", b"10\tten\n") == []
    out = session.handle("f", cstr("client gave up"))
    assert error_fields(out)["C"] == "57014" and kinds(out) == "EZ"
    out = session.handle("Q", cstr("COPY t (id, name) FROM STDIN; SELECT count(*) FROM t"))
    session.handle("d", b"10\tten\n11\t\\N\n")
    out = session.handle("c", b"")
    assert kinds(out) == "CTDCZ" and data_rows(out) == [[b"5"]]


def test_copy_options_are_checked(session) -> None:
    out = session.handle("Q", cstr("COPY t FROM '/etc/passwd'"))
    assert error_fields(out)["C"] == "0A000"
    out = session.handle("Q", cstr("COPY nosuch FROM STDIN"))
    assert error_fields(out)["C"] == "42P01"
    out = session.handle("Q", cstr("COPY t (id) FROM STDIN WITH (FORMAT parquet)"))
    assert error_fields(out)["C"] == "22023"  # binary is a format since; this one is not
