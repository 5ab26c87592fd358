"""Out-of-line BYTEA values are lazy: a query returns ``Blob`` handles, bytes are read
by byte range only when asked for, and copying a blob between rows or tables copies
no bytes."""

from __future__ import annotations

import hashlib
import io
import os
import shutil

import numpy as np
import pytest

import reeldb
from reeldb.format import checksum
from reeldb.format.blobs import INLINE_LIMIT

MB = 1 << 20
N = 10


class ReadCounter:
    """Wraps a store's reads (on the instance) and counts the bytes they return."""

    def __init__(self, store) -> None:
        self.store = store
        self.bytes = 0
        self.calls: list[tuple[str, str, int]] = []
        self._get = store.get
        self._get_range = store.get_range
        self._open_input = store.open_input

    def get(self, key: str) -> bytes:
        data = self._get(key)
        self._note("get", key, len(data))
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = self._get_range(key, offset, length)
        self._note("get_range", key, len(data))
        return data

    def open_input(self, key: str):
        f = self._open_input(key)
        if key.startswith("blobs/"):  # a whole-file handle on a pack would defeat the point
            self._note("open_input", key, self.store.size(key))
        return f

    def _note(self, op: str, key: str, n: int) -> None:
        self.calls.append((op, key, n))
        self.bytes += n

    def blob_bytes(self) -> int:
        return sum(n for _, key, n in self.calls if key.startswith("blobs/"))

    def reset(self) -> None:
        self.bytes = 0
        self.calls = []


@pytest.fixture
def payloads() -> list[bytes]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, MB, dtype=np.uint8).tobytes() for _ in range(N)]


@pytest.fixture
def db(path: str, payloads: list[bytes]) -> reeldb.Connection:
    conn = reeldb.connect(path)
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, b BYTEA, sha TEXT)")
    for i, p in enumerate(payloads, start=1):
        conn.execute("INSERT INTO t VALUES (%s, %s, %s, %s)",
                     (i, f"row{i}", p, hashlib.sha256(p).hexdigest()))
    yield conn
    conn.close()


@pytest.fixture
def counter(db: reeldb.Connection, monkeypatch) -> ReadCounter:
    store = db.catalog.store
    c = ReadCounter(store)
    monkeypatch.setattr(store, "get", c.get)
    monkeypatch.setattr(store, "get_range", c.get_range)
    monkeypatch.setattr(store, "open_input", c.open_input)
    return c


def packs(path: str) -> list[str]:
    d = os.path.join(path, "blobs")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --- laziness -----------------------------------------------------------------------------------


def test_select_one_blob_reads_one_mb(db: reeldb.Connection, counter: ReadCounter,
                                      payloads: list[bytes]) -> None:
    row = db.execute("SELECT b FROM t WHERE id = 3").fetchone()
    blob = row[0]
    assert isinstance(blob, reeldb.Blob)
    assert counter.blob_bytes() == 0  # the query itself reads no blob bytes
    assert len(blob) == MB  # the length comes from the row
    assert counter.blob_bytes() == 0
    data = bytes(blob)
    assert data == payloads[2]
    assert MB <= counter.blob_bytes() <= MB + 64 * 1024
    assert counter.bytes < 2 * MB, counter.calls  # nowhere near the 10 MB of the table


def test_select_all_rows_reads_no_blob_bytes(db: reeldb.Connection, counter: ReadCounter) -> None:
    rows = db.execute("SELECT id, b FROM t ORDER BY id").fetchall()
    assert len(rows) == N
    assert all(isinstance(r[1], reeldb.Blob) and len(r[1]) == MB for r in rows)
    assert counter.blob_bytes() == 0


def test_filter_on_other_column_reads_no_blob_bytes(db: reeldb.Connection,
                                                     counter: ReadCounter) -> None:
    assert db.execute("SELECT count(*) FROM t WHERE name LIKE 'row%'").fetchone()[0] == N
    assert db.execute("SELECT id FROM t WHERE b IS NOT NULL ORDER BY id").fetchall() == [
        (i,) for i in range(1, N + 1)]
    assert counter.blob_bytes() == 0


def test_read_range_reads_only_its_checksum_blocks(db: reeldb.Connection, counter: ReadCounter,
                                                    payloads: list[bytes]) -> None:
    """A ranged read fetches the checksum blocks its bytes fall in (each is verified),
    not the value."""
    block = checksum.blob_block(MB)
    assert block < MB // 8
    blob = db.execute("SELECT b FROM t WHERE id = 5").fetchone()[0]
    counter.reset()
    assert blob.read(1000, 100) == payloads[4][1000:1100]
    assert counter.blob_bytes() == block
    counter.reset()
    assert blob.read(block - 10, 20) == payloads[4][block - 10 : block + 10]  # spans two blocks
    assert counter.blob_bytes() == 2 * block
    counter.reset()
    assert blob.read(MB - 10, 100) == payloads[4][-10:]  # clipped at the end
    assert counter.blob_bytes() == block
    counter.reset()
    assert blob.read(MB, 5) == b""
    assert blob.read(0, 0) == b""
    assert counter.blob_bytes() == 0
    with pytest.raises(ValueError):
        blob.read(MB + 1, 1)
    with pytest.raises(ValueError):
        blob.read(-1, 1)


def test_blob_equality_and_hash(db: reeldb.Connection, payloads: list[bytes]) -> None:
    a = db.execute("SELECT b FROM t WHERE id = 1").fetchone()[0]
    a2 = db.execute("SELECT b FROM t WHERE id = 1").fetchone()[0]
    b = db.execute("SELECT b FROM t WHERE id = 2").fetchone()[0]
    assert a == a2 and hash(a) == hash(a2)
    assert a != b
    assert a == payloads[0]
    assert a != payloads[1]
    assert "Blob" in repr(a) and str(MB) in repr(a)


# --- file-like access -----------------------------------------------------------------------------


def test_open_is_seekable(db: reeldb.Connection, counter: ReadCounter,
                          payloads: list[bytes]) -> None:
    blob = db.execute("SELECT b FROM t WHERE id = 2").fetchone()[0]
    p = payloads[1]
    counter.reset()
    f = blob.open()
    assert f.readable() and f.seekable() and not f.writable()
    assert f.tell() == 0
    assert f.read(10) == p[:10]
    assert f.tell() == 10
    assert f.seek(500_000) == 500_000
    assert f.read(4) == p[500_000:500_004]
    assert f.seek(-8, io.SEEK_END) == MB - 8
    assert f.read() == p[-8:]
    assert f.read(10) == b""  # at EOF
    f.seek(-4, io.SEEK_CUR)
    assert f.tell() == MB - 4
    assert f.read(100) == p[-4:]
    # three blocks fetched: the first, the one at 500_000, the last (which serves the
    # last two reads)
    assert counter.blob_bytes() == 3 * checksum.blob_block(MB)
    f.close()
    assert f.closed


def test_open_is_io_compatible(db: reeldb.Connection, payloads: list[bytes]) -> None:
    blob = db.execute("SELECT b FROM t WHERE id = 4").fetchone()[0]
    with blob.open() as raw:
        assert isinstance(raw, io.RawIOBase)
        buffered = io.BufferedReader(raw, buffer_size=64 * 1024)
        assert buffered.read(7) == payloads[3][:7]
        buffered.seek(1234)
        assert buffered.read(66) == payloads[3][1234:1300]
    out = io.BytesIO()
    with blob.open() as raw:
        shutil.copyfileobj(raw, out, length=100_000)
    assert out.getvalue() == payloads[3]
    with blob.open() as raw:
        buf = bytearray(100)
        raw.seek(10)
        assert raw.readinto(buf) == 100
        assert bytes(buf) == payloads[3][10:110]
    # numpy reads from it like from a file
    with blob.open() as raw:
        raw.seek(16)
        arr = np.frombuffer(raw.read(16), dtype=np.uint8)
        assert arr.tobytes() == payloads[3][16:32]


def test_open_readall_and_readlines(db: reeldb.Connection, path: str) -> None:
    text = b"line one\nline two\n" * 1000
    db.execute("CREATE TABLE docs (id INT, body BYTEA)")
    db.execute("INSERT INTO docs VALUES (1, %s)", (text,))
    blob = db.execute("SELECT body FROM docs").fetchone()[0]
    assert len(blob) > INLINE_LIMIT
    with blob.open() as f:
        assert f.readall() == text
    with io.BufferedReader(blob.open()) as f:
        assert f.readline() == b"line one\n"
        assert len(f.readlines()) == 1999
    with io.TextIOWrapper(io.BufferedReader(blob.open()), encoding="utf-8") as f:
        assert f.readline() == "line one\n"


# --- zero-copy reuse -------------------------------------------------------------------------------


def test_insert_select_copies_no_bytes(db: reeldb.Connection, path: str, counter: ReadCounter,
                                       payloads: list[bytes]) -> None:
    db.execute("CREATE TABLE t2 (id INT, b BYTEA)")
    before = packs(path)
    counter.reset()
    db.execute("INSERT INTO t2 SELECT id, b FROM t WHERE id <= 5")
    assert packs(path) == before  # no new pack: the references were kept
    assert counter.blob_bytes() == 0  # and nothing was read to copy
    rows = db.execute("SELECT id, b FROM t2 ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    for i, b in rows:
        assert bytes(b) == payloads[i - 1]


def test_create_table_as_copies_no_bytes(db: reeldb.Connection, path: str,
                                         payloads: list[bytes]) -> None:
    before = packs(path)
    db.execute("CREATE TABLE t3 AS SELECT id, b FROM t WHERE id > 8")
    assert packs(path) == before
    rows = db.execute("SELECT id, b FROM t3 ORDER BY id").fetchall()
    assert [(i, bytes(b)) for i, b in rows] == [(9, payloads[8]), (10, payloads[9])]


def test_blob_parameter_reinsert_copies_no_bytes(db: reeldb.Connection, path: str,
                                                 counter: ReadCounter,
                                                 payloads: list[bytes]) -> None:
    db.execute("CREATE TABLE t2 (id INT, b BYTEA)")
    blob = db.execute("SELECT b FROM t WHERE id = 6").fetchone()[0]
    before = packs(path)
    counter.reset()
    db.execute("INSERT INTO t2 VALUES (%s, %s)", (60, blob))
    db.insert("t2", [{"id": 61, "b": blob}])
    assert packs(path) == before
    assert counter.blob_bytes() == 0
    got = db.execute("SELECT id, b FROM t2 ORDER BY id").fetchall()
    assert [(i, bytes(b)) for i, b in got] == [(60, payloads[5]), (61, payloads[5])]


def test_update_other_column_keeps_blob(db: reeldb.Connection, path: str,
                                        payloads: list[bytes]) -> None:
    before = packs(path)
    db.execute("UPDATE t SET name = 'renamed' WHERE id IN (2, 7)")
    db.execute("UPDATE t SET name = upper(name)")
    assert packs(path) == before
    rows = db.execute("SELECT id, name, b, sha FROM t ORDER BY id").fetchall()
    assert len(rows) == N
    for i, name, b, sha in rows:
        assert name == ("RENAMED" if i in (2, 7) else f"ROW{i}")
        data = bytes(b)
        assert data == payloads[i - 1]
        assert hashlib.sha256(data).hexdigest() == sha


def test_update_blob_column_writes_new_pack_old_version_intact(db: reeldb.Connection, path: str,
                                                               payloads: list[bytes]) -> None:
    old_head = db.head
    new = os.urandom(200_000)
    before = packs(path)
    db.execute("UPDATE t SET b = %s WHERE id = 1", (new,))
    after = packs(path)
    assert len(after) == len(before) + 1 and set(before) <= set(after)  # packs are never rewritten
    assert bytes(db.execute("SELECT b FROM t WHERE id = 1").fetchone()[0]) == new
    assert bytes(db.execute(f'SELECT b FROM "{old_head}".t WHERE id = 1').fetchone()[0]) == payloads[0]


def test_blob_copy_survives_source_delete(db: reeldb.Connection, path: str,
                                          payloads: list[bytes]) -> None:
    import datetime as dt

    db.execute("CREATE TABLE keep (id INT, b BYTEA)")
    db.execute("INSERT INTO keep SELECT id, b FROM t WHERE id = 3")
    db.execute("DROP TABLE t")
    db.vacuum(grace=dt.timedelta(0))
    assert bytes(db.execute("SELECT b FROM keep").fetchone()[0]) == payloads[2]


# --- inline values and NULLs ------------------------------------------------------------------------


def test_small_values_inline_no_pack(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE s (id INT, b BYTEA)")
    db.execute("INSERT INTO s VALUES (1, %s), (2, NULL), (3, %s)", (b"tiny", b""))
    assert packs(path) == []
    rows = db.execute("SELECT id, b FROM s ORDER BY id").fetchall()
    assert rows[1][1] is None
    assert bytes(rows[0][1]) == b"tiny" and rows[0][1].read(1, 2) == b"in"
    assert bytes(rows[2][1]) == b"" and len(rows[2][1]) == 0
    with rows[0][1].open() as f:
        f.seek(2)
        assert f.read() == b"ny"


def test_bytea_hex_literal(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE s (id INT, b BYTEA)")
    db.execute("INSERT INTO s VALUES (1, '\\x00ff10')")
    assert bytes(db.execute("SELECT b FROM s").fetchone()[0]) == b"\x00\xff\x10"


BLOB_REFUSALS = [
    ("SELECT a = b FROM pairs", "comparing values"),
    ("SELECT id FROM pairs WHERE a <> b", "comparing values"),
    ("SELECT id FROM pairs WHERE a IS DISTINCT FROM b", "comparing values"),
    ("SELECT id FROM pairs ORDER BY a", "ORDER BY"),
    ("SELECT a FROM pairs GROUP BY a", "GROUP BY"),
    ("SELECT DISTINCT a FROM pairs", "DISTINCT"),
    ("SELECT count(DISTINCT a) FROM pairs", r"count\(DISTINCT"),
    ("SELECT max(b) FROM pairs", r"max\("),
    ("SELECT GREATEST(a, b) FROM pairs", "GREATEST"),
    ("SELECT p.id FROM pairs p JOIN pairs q USING (a)", "JOIN USING"),
]


@pytest.mark.parametrize("sql, what", BLOB_REFUSALS)
def test_comparing_blob_columns_is_refused_not_answered_by_reference(tmp_path, sql: str, what: str) -> None:
    """Two equal values stored apart (large: in blob packs) have different references: DuckDB
    would call them unequal, sort and group them by where they are stored. Refused (0A000);
    what does not compare them still works."""
    big = os.urandom(INLINE_LIMIT * 3)
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE pairs (id INT, a BYTEA, b BYTEA)")
    db.execute("INSERT INTO pairs VALUES (1, %s, %s), (2, %s, %s)", [big, big, b"ab", b"ab"])
    with pytest.raises(reeldb.errors.FeatureNotSupported, match=what):
        db.execute(sql)
    rows = db.execute("SELECT id, a, b FROM pairs WHERE a IS NOT NULL ORDER BY id").fetchall()
    assert [(i, bytes(a), bytes(b)) for i, a, b in rows] == [(1, big, big), (2, b"ab", b"ab")]
    assert db.execute("SELECT count(a), count(*) FROM pairs").fetchone() == (2, 2)
