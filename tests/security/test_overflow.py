"""Values a column's element type cannot hold are refused (22003), never stored as
infinity: float32 overflow in VECTOR, REAL and TENSOR(float32), float16 overflow in HALFVEC
and TENSOR(float16), through every way rows are written, from Python and over the wire.
Explicit infinity stays what it was: refused in a vector, a value of REAL and of a tensor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import reeldb
from reeldb.server.server import BackgroundServer

COLUMNS = "id INT, r REAL, v VECTOR(2), h HALFVEC(2), t TENSOR(float16, 2), a TENSOR(float32)"
OUT_OF_RANGE = "22003"


@pytest.fixture
def f(db):
    db.execute(f"CREATE TABLE f ({COLUMNS})")
    db.execute("INSERT INTO f (id, r, v, h, t) VALUES (1, 1, '[1,1]', '[1,1]', %s)", [np.ones(2)])
    return db


@pytest.mark.parametrize(("sql", "params", "message"), [
    ("INSERT INTO f (id, r) VALUES (2, 1e300)", None, "value out of range: overflow"),
    ("INSERT INTO f (id, r) VALUES (2, '1e300')", None, '"1e300" is out of range for type real'),
    ("INSERT INTO f (id, r) VALUES (2, %s)", [1e300], "value out of range: overflow"),
    ("INSERT INTO f (id, r) VALUES (2, %s)", [-1e39], "value out of range: overflow"),
    ("INSERT INTO f (id, r) VALUES (2, %s)", ["-4e38"], '"-4e38" is out of range for type real'),
    ("INSERT INTO f (id, r) VALUES (2, %s)", [1e-50], "value out of range: underflow"),
    ("INSERT INTO f (id, r) VALUES (2, %s)", [10**400], "value out of range: overflow"),
    ("INSERT INTO f (id, v) VALUES (2, '[1e39,1]')", None, '"1e39" is out of range for type vector'),
    ("INSERT INTO f (id, v) VALUES (2, %s)", [[1.0, -1e39]], '"-1e+39" is out of range for type vector'),
    ("INSERT INTO f (id, v) VALUES (2, %s)", [np.array([1e39, 1.0])], "out of range for type vector"),
    ("INSERT INTO f (id, h) VALUES (2, '[70000,1]')", None, '"70000" is out of range for type halfvec'),
    ("INSERT INTO f (id, h) VALUES (2, '[1,65520]')", None, '"65520" is out of range for type halfvec'),
    ("INSERT INTO f (id, h) VALUES (2, %s)", [np.array([1.0, 1e39])], "out of range for type halfvec"),
    ("INSERT INTO f (id, t) VALUES (2, %s)", [np.array([70000.0, 1])], "out of range for type tensor(float16, 2)"),
    ("INSERT INTO f (id, a) VALUES (2, %s)", [np.full((2, 3), 1e39)], "out of range for type tensor(float32)"),
    ("INSERT INTO f (id, r) SELECT 2, 1e300", None, "value out of range: overflow"),
    ("UPDATE f SET r = r * 1e300", None, "value out of range: overflow"),
    ("UPDATE f SET v = '[1e39,1]'", None, "out of range for type vector"),
    ("UPDATE f SET h = %s", ["[1,70000]"], '"70000" is out of range for type halfvec'),
    ("UPDATE f SET t = %s", [np.array([1.0, 1e5])], "out of range for type tensor(float16, 2)"),
    ("CREATE TABLE g AS SELECT 1e300::real AS r", None, "out of range"),
])
def test_overflow_is_refused_in_sql(f, refused, sql, params, message) -> None:
    err = refused(OUT_OF_RANGE, "f", sql, params)
    assert message in str(err)
    assert f.execute("SELECT count(*) FROM f WHERE r = 'Infinity'::real OR r = 0").fetchone() == (0,)
    assert "g" not in [t for (t,) in f.execute("SELECT table_name FROM information_schema.tables").fetchall()]


def test_overflow_is_refused_in_bulk_writes(f, count) -> None:
    bad = [
        lambda: f.executemany("INSERT INTO f (id, r) VALUES (%s, %s)", [(2, 1.0), (3, 1e300)]),
        lambda: f.executemany("INSERT INTO f (id, v) VALUES (%s, %s)", [(2, "[1,1]"), (3, "[1e39,1]")]),
        lambda: f.executemany("UPDATE f SET h = %s WHERE id = %s", [("[1,1]", 1), ("[7e4,1]", 1)]),
        lambda: f.insert("f", pa.table({"id": [2, 3], "r": pa.array([1.0, 1e300])})),
        lambda: f.insert("f", pd.DataFrame({"id": [2], "r": [-1e39]})),
        lambda: f.insert("f", {"id": np.array([2]), "v": np.array([[1e39, 1.0]])}),
        lambda: f.insert("f", {"id": np.array([2]), "h": np.array([[7e4, 1.0]])}),
        lambda: f.insert("f", {"id": np.array([2]), "t": np.array([[1.0, 7e4]])}),
        lambda: f.insert("f", pa.table({"id": [2], "v": pa.array([[1e39, 1.0]], pa.list_(pa.float64(), 2))})),
        lambda: f.insert("f", pa.table({"id": [2], "h": pa.array([[1e5, 1.0]], pa.list_(pa.float64()))})),
    ]
    for i, write in enumerate(bad):
        before = count("f")
        with pytest.raises(reeldb.Error) as info:
            write()
        assert info.value.sqlstate == OUT_OF_RANGE, (i, info.value)
        assert count("f") == before, i
    assert f.execute("SELECT h FROM f").fetchone()[0].tolist() == [1.0, 1.0]


def test_values_in_range_and_explicit_infinity(f) -> None:
    f.execute("INSERT INTO f (id, r, h) VALUES (2, '3.4e38', '[65519,-65504]')")  # rounds to the largest half
    f.execute("INSERT INTO f (id, r, a) VALUES (3, 'Infinity', %s)", [np.array([np.inf, 1.0], dtype=np.float32)])
    f.execute("INSERT INTO f (id, r, v) VALUES (4, %s, '[1e-46,3e38]')", [float("-inf")])
    got = {row[0]: row[1:] for row in f.execute("SELECT id, r, h, a, v FROM f").fetchall()}
    assert got[2][0] == pytest.approx(3.4e38, rel=1e-6) and got[2][1].tolist() == [65504.0, -65504.0]
    assert math.isinf(got[3][0]) and got[3][2].tolist() == [math.inf, 1.0]
    assert got[4][0] == -math.inf and got[4][3][0] == 0.0 and got[4][3][1] == pytest.approx(3e38, rel=1e-6)
    for bad in ("'[Infinity,1]'", "'[NaN,1]'"):  # explicit infinity / NaN in a vector: as before, refused
        with pytest.raises(reeldb.DataError, match="NaN or infinity not allowed"):
            f.execute(f"INSERT INTO f (id, v) VALUES (5, {bad})")
    assert f.execute("SELECT count(*) FROM f").fetchone() == (4,)


# -- over the wire ----------------------------------------------------------------------------
psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("overflow") / "db"
    db = reeldb.connect(path)
    db.execute(f"CREATE TABLE f ({COLUMNS})")
    db.execute("INSERT INTO f (id, r, v, h) VALUES (1, 1, '[1,1]', '[1,1]')")
    db.close()
    srv = BackgroundServer(str(path), port=0)
    yield srv
    srv.stop()


def test_overflow_is_refused_over_the_wire(server) -> None:
    host, port = server.address
    with psycopg.connect(f"host={host} port={port} dbname=db user=tester", autocommit=True) as c:
        n = lambda: c.execute("SELECT count(*) FROM f").fetchone()[0]  # noqa: E731
        before = n()
        statements = [
            ("INSERT INTO f (id, r) VALUES (2, %s)", [1e300], "value out of range: overflow"),
            ("INSERT INTO f (id, r) VALUES (2, %s)", ["1e300"], "out of range"),
            ("INSERT INTO f (id, v) VALUES (2, %s)", ["[1e39,1]"], '"1e39" is out of range for type vector'),
            ("INSERT INTO f (id, h) VALUES (2, '[70000,1]')", None, '"70000" is out of range for type halfvec'),
            ("UPDATE f SET h = '[1,70000]'", None, "out of range for type halfvec"),
            ("UPDATE f SET r = %s", [1e300], "value out of range: overflow"),
        ]
        for sql, params, message in statements:
            with pytest.raises(psycopg.errors.NumericValueOutOfRange, match=message):
                c.execute(sql, params)
            assert n() == before, sql
        # in a transaction: under autocommit the rows before the bad one are kept, as in Postgres
        with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="out of range"), \
                c.transaction(), c.cursor() as cur:
            cur.executemany("INSERT INTO f (id, r) VALUES (%s, %s)", [(2, "1"), (3, "1e300")])
        assert n() == before
        for rows, message in (([("2", "1e300", None)], '"1e300" is out of range for type real'),
                              ([("2", None, "[1,70000]")], '"70000" is out of range for type halfvec')):
            with pytest.raises(psycopg.errors.NumericValueOutOfRange, match=message), c.cursor() as cur, \
                    cur.copy("COPY f (id, r, h) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            assert n() == before
        assert c.execute("SELECT count(*) FROM f WHERE r = 1 AND h = '[1,1]'").fetchone() == (1,)
