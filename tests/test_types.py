"""Round trip of every column type, NULLs included, through parameters, SQL literals,
bulk inserts, UPDATE and a reopened database; media columns and their SQL functions."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import uuid

import numpy as np
import pytest

import reeldb

# --- scalars ----------------------------------------------------------------------------------


def one(db: reeldb.Connection, sql: str, params=None):
    return db.execute(sql, params).fetchone()


@pytest.mark.parametrize(
    ("sql_type", "values"),
    [
        ("SMALLINT", [-32768, 0, 32767]),
        ("INT", [-(2**31), 7, 2**31 - 1]),
        ("INTEGER", [1, -1]),
        ("BIGINT", [-(2**63), 2**40, 2**63 - 1]),
        ("DOUBLE PRECISION", [0.1, -1e300, 5e-324, 0.0]),
        ("FLOAT", [0.1, 1.0 / 3.0]),  # FLOAT without precision is double precision
        ("BOOLEAN", [True, False]),
        ("TEXT", ["", "plain", "héllo wörld 🎬", "line\nbreak", "quote ' and \" and \\"]),
        ("VARCHAR(5)", ["", "abcde", "ééééé"]),  # the limit counts characters, not bytes
        ("DATE", [dt.date(2024, 2, 29), dt.date(1970, 1, 1), dt.date(9999, 12, 31)]),
        ("TIMESTAMP", [dt.datetime(2024, 5, 6, 7, 8, 9, 123456), dt.datetime(1999, 12, 31, 23, 59, 59)]),
        ("UUID", [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), uuid.UUID(int=0)]),
        ("JSONB", [{"a": 1, "b": [1, 2.5, None, "x"], "c": {"d": True}}, [1, 2, 3], {}, []]),
        ("JSON", [{"k": "v"}, ["x", {"y": None}]]),
    ],
)
def test_scalar_round_trip(db: reeldb.Connection, sql_type: str, values: list) -> None:
    db.execute(f"CREATE TABLE t (i INT, x {sql_type})")
    db.executemany("INSERT INTO t VALUES (%s, %s)", [(i, v) for i, v in enumerate(values)])
    db.execute("INSERT INTO t VALUES (%s, NULL)", [len(values)])
    got = [r[0] for r in db.execute("SELECT x FROM t ORDER BY i").fetchall()]
    assert got == [*values, None]
    for v, g in zip(values, got):
        assert type(g) is type(v)


def test_real_is_single_precision(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (x REAL)")
    db.execute("INSERT INTO t VALUES (%s), (NULL), (1.5)", [0.1])
    got = [r[0] for r in db.execute("SELECT x FROM t").fetchall()]
    assert got[0] == pytest.approx(float(np.float32(0.1)), rel=1e-7)
    assert got[1] is None and got[2] == 1.5


def test_numeric_round_trip_and_rounding(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, x NUMERIC(10, 2))")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, '2.345'), (4, 1.005), (5, NULL), (6, -7)",
               [decimal.Decimal("12345678.91"), "0.1"])
    got = [r[0] for r in db.execute("SELECT x FROM t ORDER BY i").fetchall()]
    assert got == [decimal.Decimal("12345678.91"), decimal.Decimal("0.10"), decimal.Decimal("2.35"),
                   decimal.Decimal("1.01"), None, decimal.Decimal("-7.00")]
    assert all(isinstance(g, decimal.Decimal) for g in got if g is not None)
    assert one(db, "SELECT sum(x) FROM t WHERE i IN (2, 3)")[0] == decimal.Decimal("2.45")


def test_timestamptz_round_trip(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, x TIMESTAMPTZ)")
    plus2 = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=plus2)
    db.execute("INSERT INTO t VALUES (1, %s), (2, '2024-01-01 00:00:00+00'), (3, NULL)", [when])
    got = [r[0] for r in db.execute("SELECT x FROM t ORDER BY i").fetchall()]
    assert got[0] == when  # the same instant, whatever zone it is shown in
    assert got[0].tzinfo is not None
    assert got[1] == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert got[2] is None


def test_sql_literals_of_every_scalar_type(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (s SMALLINT, b BIGINT, d DOUBLE PRECISION, n NUMERIC(6,3), ok BOOLEAN, "
               "day DATE, ts TIMESTAMP, u UUID, j JSONB, raw BYTEA)")
    db.execute("INSERT INTO t VALUES (-5, 9000000000, 2.5, 3.14159, 'yes', '2024-02-29', "
               "'2024-02-29 12:34:56.5', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"a\": [1, 2]}', '\\x00ff10')")
    got = one(db, "SELECT * FROM t")
    assert got[:8] == (-5, 9000000000, 2.5, decimal.Decimal("3.142"), True, dt.date(2024, 2, 29),
                       dt.datetime(2024, 2, 29, 12, 34, 56, 500000),
                       uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
    assert got[8] == {"a": [1, 2]}
    assert bytes(got[9]) == b"\x00\xff\x10"  # Postgres' hex format for bytea


# --- vectors and tensors ------------------------------------------------------------------------


def test_vector_round_trip(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, v VECTOR(4))")
    values = [np.array([0.1, -2, 3e10, 0], dtype=np.float64), [1, 2, 3, 4], "[0.5, 0.25, -1, 8]", None]
    db.executemany("INSERT INTO t VALUES (%s, %s)", list(enumerate(values)))
    got = [r[0] for r in db.execute("SELECT v FROM t ORDER BY i").fetchall()]
    for g in got[:3]:
        assert isinstance(g, np.ndarray) and g.dtype == np.float32 and g.shape == (4,)
    np.testing.assert_array_equal(got[0], np.asarray(values[0], dtype=np.float32))
    np.testing.assert_array_equal(got[1], [1, 2, 3, 4])
    np.testing.assert_array_equal(got[2], [0.5, 0.25, -1, 8])
    assert got[3] is None


def test_halfvec_round_trip(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, h HALFVEC(5))")
    x = np.array([0.1, 1 / 3, -1234.567, 1e-3, 65504], dtype=np.float64)
    db.execute("INSERT INTO t VALUES (1, %s), (2, NULL), (3, '[1,2,3,4,5]')", [x])
    got = [r[0] for r in db.execute("SELECT h FROM t ORDER BY i").fetchall()]
    assert got[0].dtype == np.float32
    np.testing.assert_array_equal(got[0], x.astype(np.float16).astype(np.float32))
    assert got[1] is None
    np.testing.assert_array_equal(got[2], [1, 2, 3, 4, 5])
    # distances on halfvec work like on vector
    d = one(db, "SELECT h <-> '[1,2,3,4,6]' FROM t WHERE i = 3")[0]
    assert d == pytest.approx(1.0)


def test_fixed_shape_tensor_round_trip(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, latent TENSOR(float16, 4, 8, 8))")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 8, 8)).astype(np.float32)
    b = rng.normal(size=(4, 8, 8))  # float64 in, float16 stored
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, NULL)", [a, b])
    db.insert("t", {"i": [4, 5], "latent": np.stack([a, a * 2])})
    got = {r[0]: r[1] for r in db.execute("SELECT i, latent FROM t").fetchall()}
    for i, want in ((1, a), (2, b), (4, a), (5, a * 2)):
        assert isinstance(got[i], np.ndarray) and got[i].shape == (4, 8, 8)
        np.testing.assert_array_equal(got[i].astype(np.float32), want.astype(np.float16).astype(np.float32))
    assert got[3] is None
    stacked = db.execute("SELECT latent FROM t WHERE latent IS NOT NULL ORDER BY i").numpy()["latent"]
    assert stacked.shape == (4, 4, 8, 8)


def test_any_shape_tensor_round_trip(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (i INT, x TENSOR(float32))")
    rng = np.random.default_rng(1)
    values = [rng.normal(size=(2, 3)).astype(np.float32), np.arange(5, dtype=np.float32),
              rng.normal(size=(1, 2, 3, 4)).astype(np.float32), rng.normal(size=(7, 1)).astype(np.float32)]
    db.executemany("INSERT INTO t VALUES (%s, %s)", list(enumerate(values)))
    db.execute("INSERT INTO t VALUES (99, NULL)")
    db.execute("INSERT INTO t VALUES (50, %s)", [[[1, 2], [3, 4]]])  # a nested list is a tensor too
    got = dict(db.execute("SELECT i, x FROM t").fetchall())
    for i, want in enumerate(values):
        assert isinstance(got[i], np.ndarray)
        assert got[i].dtype == np.float32 and got[i].shape == want.shape
        np.testing.assert_array_equal(got[i], want)
    assert got[99] is None
    assert got[50].dtype == np.float32 and got[50].shape == (2, 2)
    np.testing.assert_array_equal(got[50], [[1, 2], [3, 4]])


@pytest.mark.parametrize("shape", [(), (0,), (0, 3)], ids=["0-d", "empty", "empty-2d"])
def test_any_shape_tensor_edge_shapes(db: reeldb.Connection, shape: tuple) -> None:
    db.execute("CREATE TABLE t (x TENSOR(float32))")
    value = np.full(shape, 7.5, dtype=np.float32)
    db.execute("INSERT INTO t VALUES (%s)", [value])
    got = one(db, "SELECT x FROM t")[0]
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, value)


def test_any_shape_tensor_converts_to_column_dtype(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (x TENSOR(int16))")
    db.execute("INSERT INTO t VALUES (%s)", [np.array([[1, -2, 3]], dtype=np.int64)])
    got = one(db, "SELECT x FROM t")[0]
    assert got.dtype == np.int16 and got.shape == (1, 3)
    np.testing.assert_array_equal(got, [[1, -2, 3]])


# --- blobs and media ----------------------------------------------------------------------------


@pytest.mark.parametrize("sql_type", ["BYTEA", "BLOB"])
def test_bytes_round_trip_as_lazy_blob(db: reeldb.Connection, sql_type: str) -> None:
    db.execute(f"CREATE TABLE t (i INT, raw {sql_type})")
    small = b"\x00\x01\x02 tiny \xff"
    big = np.random.default_rng(3).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, NULL), (4, %s)", [small, big, b""])
    got = dict(db.execute("SELECT i, raw FROM t").fetchall())
    assert got[3] is None
    for i, want in ((1, small), (2, big), (4, b"")):
        blob = got[i]
        assert isinstance(blob, reeldb.Blob)
        assert len(blob) == len(want)
        assert blob.read() == want
        assert bytes(blob) == want
        assert blob == want
    blob = got[2]
    assert blob.read(1000, 50) == big[1000:1050]
    assert blob.read(len(big) - 10, 100) == big[-10:]  # clipped at the end
    with blob.open() as f:
        f.seek(123_456)
        assert f.read(10) == big[123_456:123_466]
        f.seek(-4, io.SEEK_END)
        assert f.read() == big[-4:]
    assert blob.meta == {}


def test_blob_written_back_and_copied(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE a (i INT, raw BYTEA)")
    db.execute("CREATE TABLE b (i INT, raw BYTEA)")
    payload = bytes(range(256)) * 100
    db.execute("INSERT INTO a VALUES (1, %s)", [payload])
    blob = one(db, "SELECT raw FROM a")[0]
    db.execute("INSERT INTO b VALUES (1, %s)", [blob])  # a Blob is a valid parameter
    db.execute("INSERT INTO b SELECT i + 1, raw FROM a")
    db.execute("UPDATE a SET i = 10")  # carried along by an UPDATE of another column
    for table, i in (("b", 1), ("b", 2), ("a", 10)):
        assert bytes(one(db, f"SELECT raw FROM {table} WHERE i = %s", [i])[0]) == payload


def test_image_round_trip_and_meta(db: reeldb.Connection, png_bytes: bytes, png_bytes2: bytes) -> None:
    from PIL import Image

    db.execute("CREATE TABLE t (i INT, img IMAGE)")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, NULL)", [png_bytes, png_bytes2])
    got = dict(db.execute("SELECT i, img FROM t").fetchall())
    assert got[3] is None
    blob = got[1]
    assert isinstance(blob, reeldb.Blob)
    assert bytes(blob) == png_bytes and len(blob) == len(png_bytes)
    assert blob.meta["width"] == 40 and blob.meta["height"] == 30
    assert got[2].meta["width"] == 16 and got[2].meta["height"] == 24
    with Image.open(blob.open()) as im:
        assert im.size == (40, 30)
    assert db.execute("SELECT i, image_width(img) FROM t ORDER BY i").fetchall() == [(1, 40), (2, 16), (3, None)]
    assert [r[0] for r in db.execute("SELECT i FROM t WHERE image_width(img) > 20").fetchall()] == [1]


def test_video_round_trip_and_meta(db: reeldb.Connection, mp4_bytes: bytes, mp4_bytes2: bytes) -> None:
    import av

    db.execute("CREATE TABLE t (i INT, clip VIDEO)")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, NULL)", [mp4_bytes, mp4_bytes2])
    got = dict(db.execute("SELECT i, clip FROM t").fetchall())
    assert got[3] is None
    blob = got[1]
    assert isinstance(blob, reeldb.Blob)
    assert bytes(blob) == mp4_bytes
    assert blob.read(4, 4) == mp4_bytes[4:8]
    m = blob.meta
    assert (m["width"], m["height"], m["frames"]) == (64, 48, 12)
    assert m["fps"] == pytest.approx(12)
    m2 = got[2].meta
    assert (m2["width"], m2["height"], m2["frames"]) == (32, 32, 8)
    with av.open(blob.open()) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    got = db.execute("SELECT i, video_frames(clip), video_fps(clip) FROM t ORDER BY i").fetchall()
    assert [(r[0], r[1]) for r in got] == [(1, 12), (2, 8), (3, None)]
    assert got[0][2] == pytest.approx(12) and got[1][2] == pytest.approx(8) and got[2][2] is None
    assert [r[0] for r in db.execute("SELECT i FROM t WHERE video_frames(clip) >= 10").fetchall()] == [1]


def test_media_bulk_insert(db: reeldb.Connection, png_bytes: bytes, mp4_bytes: bytes) -> None:
    db.execute("CREATE TABLE t (i INT, img IMAGE, clip VIDEO)")
    db.insert("t", [{"i": 1, "img": png_bytes, "clip": mp4_bytes}, {"i": 2, "img": None, "clip": None}])
    got = db.execute("SELECT i, image_width(img), video_frames(clip) FROM t ORDER BY i").fetchall()
    assert got == [(1, 40, 12), (2, None, None)]


# --- everything at once, across a reopen ---------------------------------------------------------


def test_every_type_survives_reopen(tmp_path, png_bytes: bytes, mp4_bytes: bytes) -> None:
    path = tmp_path / "db"
    db = reeldb.connect(path)
    db.execute(
        """CREATE TABLE t (
            id SERIAL PRIMARY KEY, big BIGSERIAL, s SMALLINT, i INT, b BIGINT, r REAL, f FLOAT,
            d DOUBLE PRECISION, n NUMERIC(8, 3), ok BOOLEAN, t TEXT, vc VARCHAR(8), raw BYTEA,
            raw2 BLOB, j JSON, jb JSONB, day DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, u UUID,
            v VECTOR(3), hv HALFVEC(3), latent TENSOR(float16, 4, 8, 8), anyt TENSOR(float32),
            img IMAGE, clip VIDEO
        )"""
    )
    latent = np.linspace(-1, 1, 256, dtype=np.float32).reshape(4, 8, 8)
    anyt = np.arange(6, dtype=np.float32).reshape(3, 2)
    u = uuid.uuid4()
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 6)
    whenz = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    full = [1, 2, 3, 4.5, 0.25, 0.125, decimal.Decimal("12.345"), True, "text", "varchar", b"raw",
            b"raw2", {"j": 1}, {"jb": [1]}, dt.date(2024, 1, 2), when, whenz, u,
            np.array([1, 2, 3], np.float32), [0.5, 1.5, 2.5], latent, anyt, png_bytes, mp4_bytes]
    cols = "s, i, b, r, f, d, n, ok, t, vc, raw, raw2, j, jb, day, ts, tstz, u, v, hv, latent, anyt, img, clip"
    db.execute(f"INSERT INTO t ({cols}) VALUES ({', '.join(['%s'] * 24)})", full)
    db.execute(f"INSERT INTO t ({cols}) VALUES ({', '.join(['NULL'] * 24)})")
    db.close()

    db = reeldb.connect(path)
    assert db.execute(f"SELECT {cols} FROM t WHERE id = 2").fetchall() == [(None,) * 24]
    got = db.execute(f"SELECT id, big, {cols} FROM t WHERE id = 1").fetchall()
    assert got[0][:2] == (1, 1)
    row = dict(zip(cols.split(", "), got[0][2:]))
    for name, want in zip(cols.split(", "), full):
        have = row[name]
        if name in ("hv", "latent"):  # float16 storage
            want16 = np.asarray(want, dtype=np.float16).astype(np.float32)
            np.testing.assert_array_equal(np.asarray(have, dtype=np.float32), want16, err_msg=name)
        elif isinstance(want, np.ndarray):
            np.testing.assert_array_equal(have, want, err_msg=name)
            assert have.dtype == np.float32, name
        elif isinstance(want, bytes):
            assert isinstance(have, reeldb.Blob) and bytes(have) == want, name
        else:
            assert have == want, name
    assert row["latent"].shape == (4, 8, 8)
    assert row["anyt"].shape == (3, 2) and row["anyt"].dtype == np.float32
    assert row["img"].meta["width"] == 40
    assert row["clip"].meta["frames"] == 12
    db.close()
