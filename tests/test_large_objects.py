"""Large objects over the wire: psycopg2's ``connection.lobject`` (libpq's fastpath calls),
psql's client-side ``\\lo_import`` / ``\\lo_export``, the SQL functions, the fastpath message
itself, and the refusals (server-side lo_import/lo_export, other logins' objects, read-only
logins), each checked to change nothing. Real ``reeldb serve`` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess

import pytest

import reeldb
from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.storage.local import LocalStore

psycopg2 = pytest.importorskip("psycopg2")
errorcodes = pytest.importorskip("psycopg2.errorcodes")

INV_READ, INV_WRITE = 0x40000, 0x20000


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lobj") / "films"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    db.branch("exp", checkout=False)
    db.close()
    store = LocalStore(path)
    users.add_user(store, "alice", "pw-a")
    users.add_user(store, "bob", "pw-b")
    users.add_user(store, "reader", "pw-r", readonly=True)
    return path


@pytest.fixture(scope="module")
def server(path):
    srv = BackgroundServer(str(path), port=0, max_connections=16)
    yield srv
    srv.stop()


def connect(server, user: str = "alice", database: str = "films", **kw):
    host, port = server.address
    return psycopg2.connect(host=host, port=port, dbname=database, user=user, password=f"pw-{user[0]}", **kw)


def sql_error(server, user: str, sql: str, *args) -> psycopg2.Error:
    """The error ``sql`` gets from ``user`` (autocommit)."""
    conn = connect(server, user)
    conn.autocommit = True
    try:
        with pytest.raises(psycopg2.Error) as got:
            conn.cursor().execute(sql, args or None)
        return got.value
    finally:
        conn.close()


def content(server, oid: int, user: str = "alice") -> bytes | None:
    """The object's bytes as its owner (alice unless told) reads them (None: it does not exist)."""
    conn = connect(server, user)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT oid FROM pg_largeobject_metadata WHERE oid = %s", (oid,))
        if not cur.fetchall():
            return None
        cur.execute("SELECT lo_get(%s)", (oid,))
        return bytes(cur.fetchone()[0])
    finally:
        conn.close()


def new_object(server, data: bytes, user: str = "alice") -> int:
    conn = connect(server, user)
    try:
        lo = conn.lobject(0, "wb")
        lo.write(data)
        lo.close()
        conn.commit()
        return lo.oid
    finally:
        conn.close()


# -- psycopg2's lobject ---------------------------------------------------------------------------
def test_psycopg2_lobject_write_seek_read_truncate_and_reopen(server) -> None:
    conn = connect(server)
    lo = conn.lobject()
    assert lo.mode == "wt" and lo.oid > 0
    assert lo.write("hello large world") == 17
    assert lo.tell() == 17
    assert lo.seek(6) == 6
    assert lo.read(5) == "large"
    assert lo.seek(-5, 2) == 12 and lo.read() == "world"
    lo.truncate(5)
    assert lo.seek(0, 2) == 5
    assert lo.seek(10, 0) == 10 and lo.write(b"!") == 1  # a write past the end: zeros in between
    lo.close()
    conn.commit()
    again = conn.lobject(lo.oid, "rb")
    assert again.read() == b"hello" + bytes(5) + b"!"
    conn.commit()
    conn.close()
    assert content(server, lo.oid) == b"hello" + bytes(5) + b"!"


def test_psycopg2_lobject_large_write_and_sparse_truncate_past_2gb(server) -> None:
    data = bytes(range(256)) * 1200  # over several pages of storage
    oid = new_object(server, data)
    conn = connect(server)
    lo = conn.lobject(oid, "rb")
    assert lo.seek(100_000) == 100_000 and lo.read(1000) == data[100_000:101_000]
    conn.commit()
    lo = conn.lobject(oid, "wb")
    size = (1 << 31) + (1 << 30)
    lo.truncate(size)  # nothing stored for the zeros
    assert lo.seek(0, 2) == size and lo.tell() == size
    assert lo.seek(size - 3) == size - 3 and lo.read(10) == bytes(3)
    conn.rollback()
    conn.close()
    assert content(server, oid) == data


def test_psycopg2_export_to_a_client_file_and_import_from_one(server, tmp_path) -> None:
    oid = new_object(server, b"\x00clip bytes\xff" * 1000)
    conn = connect(server)
    lo = conn.lobject(oid, "rb")
    lo.export(str(tmp_path / "out.bin"))  # client side: lo_open + loread, the file is the client's
    assert (tmp_path / "out.bin").read_bytes() == b"\x00clip bytes\xff" * 1000
    (tmp_path / "in.bin").write_bytes(b"imported \x01\x02" * 5000)
    imported = conn.lobject(0, "rb", 0, str(tmp_path / "in.bin"))  # lo_creat + lowrite
    conn.commit()
    conn.close()
    assert content(server, imported.oid) == b"imported \x01\x02" * 5000


def test_rollback_leaves_nothing_and_unlink_is_transactional(server) -> None:
    conn = connect(server)
    lo = conn.lobject()
    lo.write(b"draft")
    oid = lo.oid
    conn.rollback()
    assert content(server, oid) is None
    kept = new_object(server, b"kept")
    conn.lobject(kept, "rb").unlink()
    conn.rollback()
    assert content(server, kept) == b"kept"
    conn.lobject(kept, "rb").unlink()
    conn.commit()
    conn.close()
    assert content(server, kept) is None


def test_descriptors_end_with_their_transaction(server) -> None:
    oid = new_object(server, b"abc")
    conn = connect(server)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT lo_open(%s, %s)", (oid, INV_READ))
    fd = cur.fetchone()[0]
    with pytest.raises(psycopg2.Error) as got:  # outside a block the statement was its transaction
        cur.execute("SELECT loread(%s, 10)", (fd,))
    assert got.value.pgcode == "42704" and f"invalid large-object descriptor: {fd}" in str(got.value)
    cur.execute("BEGIN")
    cur.execute("SELECT lo_open(%s, %s)", (oid, INV_READ))
    fd = cur.fetchone()[0]
    cur.execute("SELECT loread(%s, 2), loread(%s, 2)", (fd, fd))
    assert [bytes(v) for v in cur.fetchone()] == [b"ab", b"c"]
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lowrite(%s, 'x')", (fd,))
    assert got.value.pgcode == "55000"  # opened for reading only
    cur.execute("ROLLBACK")
    conn.close()
    assert content(server, oid) == b"abc"


def test_rollback_to_savepoint_undoes_writes_and_closes_descriptors_opened_since(server) -> None:
    oid = new_object(server, b"base")
    conn = connect(server)
    cur = conn.cursor()
    cur.execute("SELECT lo_open(%s, %s)", (oid, INV_READ | INV_WRITE))
    first = cur.fetchone()[0]
    cur.execute("SAVEPOINT s")
    cur.execute("SELECT lo_open(%s, %s)", (oid, INV_READ | INV_WRITE))
    second = cur.fetchone()[0]
    cur.execute("SELECT lowrite(%s, 'XXXXXXXX')", (second,))
    cur.execute("ROLLBACK TO SAVEPOINT s")
    cur.execute("SELECT lo_tell(%s), lo_get(%s)", (first, oid))  # the first stays open, the write is undone
    tell, now = cur.fetchone()
    assert tell == 0 and bytes(now) == b"base"
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lo_tell(%s)", (second,))
    assert got.value.pgcode == "42704"
    conn.rollback()
    conn.close()
    assert content(server, oid) == b"base"


def test_sql_functions_agree_with_postgres(server) -> None:
    conn = connect(server)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT lo_from_bytea(0, 'abc')")
    oid = cur.fetchone()[0]
    cur.execute("SELECT lo_put(%s, 5, '\\x4142'::bytea)", (oid,))
    cur.execute("SELECT lo_get(%s), lo_get(%s, 1, 5), lo_get(%s, 10, 3)", (oid, oid, oid))
    assert [bytes(v) for v in cur.fetchone()] == [b"abc\x00\x00AB", b"bc\x00\x00A", b""]
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lo_create(%s)", (oid,))
    assert got.value.pgcode == "23505"
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lo_get(%s, 0, -1)", (oid,))
    assert got.value.pgcode == "22023" and "requested length cannot be negative" in str(got.value)
    for elsewhere in ("SELECT 1 WHERE lo_unlink(%s) = 1", "SELECT %s AS x, lo_get(%s)"):
        with pytest.raises(psycopg2.Error) as got:
            cur.execute(elsewhere, (oid,) * elsewhere.count("%s"))
        assert got.value.pgcode == "0A000"
    cur.execute("SELECT lo_unlink(%s)", (oid,))
    assert cur.fetchone() == (1,)
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lo_unlink(%s)", (oid,))
    assert got.value.pgcode == "42704" and f"large object {oid} does not exist" in str(got.value)
    conn.close()


def test_asyncpg_binds_typed_parameters_to_the_functions(open_server) -> None:
    """asyncpg encodes each parameter by the type Describe reports: oid, int4, int8, bytea."""
    asyncpg = pytest.importorskip("asyncpg")
    host, port = open_server.address

    async def run() -> tuple:
        conn = await asyncpg.connect(host=host, port=port, database="open", user="raw")
        try:
            oid = await conn.fetchval("SELECT lo_from_bytea($1, $2)", 0, b"abc")
            async with conn.transaction():
                fd = await conn.fetchval("SELECT lo_open($1, $2)", oid, INV_READ | INV_WRITE)
                await conn.fetchval("SELECT lo_lseek64($1, $2, $3)", fd, 1, 0)
                written = await conn.fetchval("SELECT lowrite($1, $2)", fd, b"XY")
                at = await conn.fetchval("SELECT lo_tell64($1)", fd)
            return written, at, await conn.fetchval("SELECT lo_get($1, $2, $3)", oid, 1, 5)
        finally:
            await conn.close()

    assert asyncio.run(run()) == (2, 3, b"XY")


def test_calls_over_a_querys_rows_run_in_row_order_and_all_or_nothing(server) -> None:
    a, b = new_object(server, b"first"), new_object(server, b"second")
    mine = new_object(server, b"bob's own", user="bob")
    conn = connect(server)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE TABLE image (name TEXT, raster BIGINT)")
    cur.execute("INSERT INTO image VALUES ('a', %s), ('b', %s)", (a, b))
    cur.execute("SELECT lo_get(raster) AS bytes, lo_get(raster, 0, 1) FROM image ORDER BY name DESC")
    assert [(bytes(x), bytes(y)) for x, y in cur.fetchall()] == [(b"second", b"s"), (b"first", b"f")]
    assert cur.description[0].name == "bytes"
    cur.execute("SELECT lo_get(raster) FROM image WHERE name = %s LIMIT 1", ("zzz",))
    assert cur.fetchall() == []
    # bob's own object first, then alice's: refused at the second row, and the first is kept
    err = sql_error(server, "bob", "SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid IN (%s, %s) "
                    "ORDER BY oid = %s DESC", mine, a, mine)
    assert err.pgcode == "42501" and f"must be owner of large object {a}" in str(err)
    assert content(server, mine, "bob") == b"bob's own" and content(server, a) == b"first"
    cur.execute("SELECT lo_unlink(raster) FROM image ORDER BY name LIMIT 1")  # only the rows LIMIT keeps
    assert cur.fetchall() == [(1,)]
    assert content(server, a) is None and content(server, b) == b"second"
    cur.execute("DROP TABLE image")
    conn.close()


def test_a_branch_sees_its_own_large_objects(server) -> None:
    oid = new_object(server, b"on main")
    conn = connect(server, database="films/exp")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (oid,))
    assert cur.fetchone() == (0,)
    with pytest.raises(psycopg2.Error) as got:
        cur.execute("SELECT lo_get(%s)", (oid,))
    assert got.value.pgcode == "42704"
    conn.close()
    _branch(server, "lo_later")  # a branch made later has it
    later = connect(server, database="films/lo_later")
    assert later.lobject(oid, "rb").read() == b"on main"
    later.close()


def test_pages_are_stored_once_outside_the_commit_and_verified_on_read(server, path) -> None:
    data = bytes(range(251)) * 1044  # four pages, all different
    pages = path / "lobjects"
    first = {f.name for f in pages.iterdir()} if pages.exists() else set()
    oid = new_object(server, data)
    commits = sorted((path / "_reeldb" / "commits").iterdir(), key=lambda f: f.stat().st_mtime)
    assert commits[-1].stat().st_size < 20_000  # the commit names the pages, it does not carry them
    before = {f.name for f in pages.iterdir()}
    assert len(before - first) == 4
    conn = connect(server)  # a write of one byte stores one page anew, and commits name the rest
    lo = conn.lobject(oid, "wb")
    lo.seek(70_000)
    lo.write(b"!")
    conn.commit()
    new = {f.name for f in (path / "lobjects").iterdir()} - before
    assert len(new) == 1
    page = path / "lobjects" / new.pop()
    page.write_bytes(b"\0" * page.stat().st_size)  # damaged on disk
    with pytest.raises(psycopg2.Error) as got:
        conn.cursor().execute("SELECT lo_get(%s)", (oid,))
    assert got.value.pgcode == "XX001" and page.name in str(got.value)
    conn.rollback()
    conn.close()


def _branch(server, name: str) -> None:
    """A branch of main (reeldb_branch also checks the connection out on it: a throwaway one)."""
    conn = connect(server)
    conn.autocommit = True
    conn.cursor().execute("SELECT reeldb_branch(%s, 'main')", (name,))
    conn.close()


def test_a_merge_brings_the_other_branchs_large_objects_and_a_clash_is_a_conflict(server) -> None:
    _branch(server, "lo_merge")
    main = connect(server)
    main.autocommit = True
    cur = main.cursor()
    shared = new_object(server, b"shared")
    exp = connect(server, database="films/lo_merge")
    lo = exp.lobject(0, "wb")
    lo.write(b"made on the branch")
    exp.commit()
    cur.execute("SELECT reeldb_merge('lo_merge')")
    assert content(server, lo.oid) == b"made on the branch"
    cur.execute("SELECT lo_from_bytea(0, 'x')")  # both sides now change one object differently
    other = cur.fetchone()[0]
    _branch(server, "lo_clash")
    cur.execute("SELECT lo_put(%s, 0, 'M')", (other,))
    clash = connect(server, database="films/lo_clash")
    clash.autocommit = True
    clash.cursor().execute("SELECT lo_put(%s, 0, 'B')", (other,))
    clash.close()
    with pytest.raises(psycopg2.Error, match="conflict") as got:
        cur.execute("SELECT reeldb_merge('lo_clash')")
    assert got.value.pgcode == "RD001" and f'largeobject "{other}"' in str(got.value)
    assert content(server, other) == b"M" and content(server, shared) == b"shared"
    main.close()
    exp.close()


def test_committed_large_objects_survive_a_restart(tmp_path) -> None:
    path = tmp_path / "again"
    reeldb.connect(path).close()
    first = BackgroundServer(str(path), port=0)
    host, port = first.address
    conn = psycopg2.connect(host=host, port=port, dbname="again", user="someone")
    lo = conn.lobject()
    lo.write(b"kept across restarts")
    conn.commit()
    conn.close()
    first.stop()
    second = BackgroundServer(str(path), port=0)
    try:
        host, port = second.address
        conn = psycopg2.connect(host=host, port=port, dbname="again", user="someone")
        assert conn.lobject(lo.oid, "rb").read() == b"kept across restarts"
        conn.close()
    finally:
        second.stop()


# -- psql's client-side \lo_import / \lo_export ----------------------------------------------------
def psql(server, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    return subprocess.run([exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "alice", "-d", "films", *args],
                          capture_output=True, text=True, timeout=30, env={"PGPASSWORD": "pw-a"})


def test_psql_lo_import_list_export_unlink(server, tmp_path) -> None:
    (tmp_path / "frame.bin").write_bytes(b"\x89PNG fake frame" * 300)
    out = psql(server, "-c", f"\\lo_import {tmp_path / 'frame.bin'} 'a key frame'")  # + COMMENT ON LARGE OBJECT
    assert out.returncode == 0, out.stderr
    oid = int(out.stdout.split()[-1])
    assert content(server, oid) == b"\x89PNG fake frame" * 300
    listed = psql(server, "-c", "\\lo_list")
    assert listed.returncode == 0, listed.stderr
    assert f"{oid}|alice|a key frame" in listed.stdout
    out = psql(server, "-c", f"\\lo_export {oid} {tmp_path / 'back.bin'}")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "back.bin").read_bytes() == b"\x89PNG fake frame" * 300
    out = psql(server, "-c", f"\\lo_unlink {oid}")
    assert out.returncode == 0, out.stderr
    assert content(server, oid) is None


def _object_count(server) -> int:
    conn = connect(server)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_largeobject_metadata")
    n = cur.fetchone()[0]
    conn.close()
    return n


# -- refusals -----------------------------------------------------------------------------------------
def test_server_side_lo_import_and_export_are_refused(server, tmp_path) -> None:
    secret = tmp_path / "server-file"
    secret.write_text("the server's own file")
    oid = new_object(server, b"mine")
    before = _object_count(server)
    for user in ("alice", "bob", "reader"):
        err = sql_error(server, user, "SELECT lo_import(%s)", str(secret))
        assert err.pgcode == "42501" and "permission denied for function lo_import" in str(err)
        err = sql_error(server, user, "SELECT lo_export(%s, %s)", oid, str(tmp_path / "written"))
        assert err.pgcode == "42501" and "permission denied for function lo_export" in str(err)
    assert not (tmp_path / "written").exists()
    assert _object_count(server) == before and content(server, oid) == b"mine"
    err = sql_error(server, "alice", "SELECT * FROM pg_largeobject")
    assert err.pgcode == "42501"


def test_another_login_needs_grants(server) -> None:
    oid = new_object(server, b"alice's")
    conn = connect(server, "bob")
    cur = conn.cursor()  # the catalog is readable by all, with the owner's name
    cur.execute("SELECT pg_get_userbyid(lomowner), lomacl FROM pg_largeobject_metadata WHERE oid = %s", (oid,))
    assert cur.fetchone() == ("alice", None)
    conn.rollback()
    with pytest.raises(psycopg2.OperationalError, match=f"permission denied for large object {oid}"):
        conn.lobject(oid, "rb")  # (libpq's lo_open keeps the message, not the SQLSTATE)
    conn.rollback()
    for sql in ("SELECT lo_get(%s)", "SELECT lo_put(%s, 0, 'BOB')", "SELECT lo_unlink(%s)"):
        err = sql_error(server, "bob", sql, oid)
        assert err.pgcode == "42501", sql
    err = sql_error(server, "bob", f"GRANT UPDATE ON LARGE OBJECT {oid} TO bob")
    assert err.pgcode == "42501"
    err = sql_error(server, "bob", f"COMMENT ON LARGE OBJECT {oid} IS 'bob was here'")
    assert err.pgcode == "42501" and f"must be owner of large object {oid}" in str(err)
    assert sql_error(server, "bob", "SELECT lo_get(%s)", oid).pgcode == "42501"  # still not granted
    assert content(server, oid) == b"alice's"
    owner = connect(server)
    owner.autocommit = True
    cur = owner.cursor()
    cur.execute("SELECT obj_description(%s, 'pg_largeobject')", (oid,))
    assert cur.fetchone() == (None,)
    owner.close()

    owner = connect(server)
    owner.autocommit = True
    owner.cursor().execute(f"GRANT SELECT ON LARGE OBJECT {oid} TO bob")
    cur = owner.cursor()
    cur.execute("SELECT lomacl FROM pg_largeobject_metadata WHERE oid = %s", (oid,))
    assert cur.fetchone()[0] == ["alice=rw/alice", "bob=r/alice"]
    assert bytes(conn.lobject(oid, "rb").read()) == b"alice's"
    conn.rollback()
    with pytest.raises(psycopg2.OperationalError, match=f"permission denied for large object {oid}"):
        conn.lobject(oid, "wb")
    conn.rollback()
    owner.cursor().execute(f"GRANT UPDATE ON LARGE OBJECT {oid} TO bob")
    lo = conn.lobject(oid, "wb")
    lo.write(b"bob's!!")
    conn.commit()
    assert content(server, oid) == b"bob's!!"
    err = sql_error(server, "bob", "SELECT lo_unlink(%s)", oid)  # only the owner unlinks
    assert err.pgcode == "42501" and f"must be owner of large object {oid}" in str(err)
    owner.cursor().execute(f"REVOKE ALL ON LARGE OBJECT {oid} FROM bob")
    err = sql_error(server, "bob", "SELECT lo_get(%s)", oid)
    assert err.pgcode == "42501"
    owner.close()
    conn.close()
    assert content(server, oid) == b"bob's!!"


def test_a_read_only_login_changes_nothing(server) -> None:
    oid = new_object(server, b"fixed")
    owner = connect(server)
    owner.autocommit = True
    owner.cursor().execute(f"GRANT SELECT, UPDATE ON LARGE OBJECT {oid} TO reader")
    owner.close()
    conn = connect(server, "reader")
    assert conn.lobject(oid, "rb").read() == b"fixed"  # reading is allowed
    conn.rollback()
    with pytest.raises(psycopg2.OperationalError, match="read-only"):
        conn.lobject()
    conn.rollback()
    with pytest.raises(psycopg2.OperationalError, match="read-only"):
        conn.lobject(oid, "wb")
    conn.close()
    assert sql_error(server, "reader", "SELECT lo_put(%s, 0, 'X')", oid).pgcode == "25006"  # granted, still read-only
    assert sql_error(server, "reader", "SELECT lo_from_bytea(0, 'x')").pgcode == "25006"
    assert sql_error(server, "reader", "SELECT lo_unlink(%s)", oid).pgcode == "42501"  # not the owner
    assert content(server, oid) == b"fixed"


def test_a_branch_stores_a_bounded_number_of_bytes(open_server, monkeypatch) -> None:
    from reeldb.sql import large_objects

    monkeypatch.setattr(large_objects, "MAX_STORED", 200_000)  # the server runs in this process
    host, port = open_server.address
    conn = psycopg2.connect(host=host, port=port, dbname="open", user="raw")
    lo = conn.lobject()
    lo.write(b"a" * 150_000)
    lo.truncate(10 << 30)  # zeros past the end store nothing
    with pytest.raises(psycopg2.OperationalError, match="would take the branch.s large objects past"):
        lo.write(b"b" * 100_000)
    conn.rollback()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (lo.oid,))
    assert cur.fetchone() == (0,)
    conn.close()


def test_a_long_transaction_spills_its_pages_and_a_rollback_still_leaves_nothing(open_server, monkeypatch) -> None:
    from reeldb.sql import large_objects

    monkeypatch.setattr(large_objects, "SPILL", 100_000)  # base64 bytes held before pages are stored
    host, port = open_server.address
    conn = psycopg2.connect(host=host, port=port, dbname="open", user="raw")
    lo = conn.lobject(0, "wb")
    data = bytes(range(251)) * 1000  # four pages, all different
    pages = open_server.folder / "lobjects"
    before = set(pages.iterdir()) if pages.exists() else set()
    lo.write(data)
    assert len(set(pages.iterdir()) - before) >= 3  # stored before the commit
    lo.seek(0)
    assert lo.read() == data  # read back from the pages stored early
    conn.rollback()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (lo.oid,))
    assert cur.fetchone() == (0,)
    conn.close()


# -- the fastpath message itself ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("lobj_open") / "open"
    reeldb.connect(path).close()
    srv = BackgroundServer(str(path), port=0)  # no users: loopback clients are trusted
    srv.folder = path  # (for tests that look at what is stored)
    yield srv
    srv.stop()


class RawClient:
    """Just enough of the frontend protocol to send FunctionCall messages by hand."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection(server.address, timeout=10)
        body = struct.pack("!i", 196608) + b"user\0raw\0database\0open\0\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.until_ready()

    def recv(self) -> tuple[str, bytes]:
        head = self._exact(5)
        return chr(head[0]), self._exact(struct.unpack("!i", head[1:])[0] - 4)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    def until_ready(self) -> list[tuple[str, bytes]]:
        got = []
        while True:
            kind, body = self.recv()
            got.append((kind, body))
            if kind == "Z":
                return got

    def send(self, kind: str, body: bytes) -> list[tuple[str, bytes]]:
        self.sock.sendall(kind.encode() + struct.pack("!i", len(body) + 4) + body)
        return self.until_ready()

    def query(self, sql: str) -> list[tuple[str, bytes]]:
        return self.send("Q", sql.encode() + b"\0")

    def call(self, oid: int, args: list[bytes | None], formats: list[int], result_format: int):
        body = struct.pack("!Ih", oid, len(formats)) + b"".join(struct.pack("!h", f) for f in formats)
        body += struct.pack("!h", len(args))
        for a in args:
            body += struct.pack("!i", -1) if a is None else struct.pack("!i", len(a)) + a
        body += struct.pack("!h", result_format)
        return self.send("F", body)

    def close(self) -> None:
        self.sock.sendall(b"X\0\0\0\4")
        self.sock.close()


def _value(answers: list[tuple[str, bytes]]) -> bytes | None:
    kinds = [k for k, _ in answers]
    assert kinds[-1] == "Z" and "V" in kinds, answers
    body = answers[kinds.index("V")][1]
    n = struct.unpack("!i", body[:4])[0]
    return None if n < 0 else body[4:4 + n]


def _error(answers: list[tuple[str, bytes]]) -> dict[str, str]:
    body = next(b for k, b in answers if k == "E")
    return {f[0]: f[1:] for f in body.decode().split("\0") if f}


def test_fastpath_text_and_binary_arguments_and_results(open_server) -> None:
    c = RawClient(open_server)
    try:
        assert c.query("BEGIN")[-1] == ("Z", b"T")
        oid = struct.unpack("!I", _value(c.call(715, [struct.pack("!I", 0)], [1], 1)))[0]  # lo_create(0)
        fd = int(_value(c.call(952, [str(oid).encode(), str(INV_READ | INV_WRITE).encode()], [0], 0)))  # text
        assert _value(c.call(955, [struct.pack("!i", fd), b"\x00\x01binary"], [1, 1], 0)) == b"8"  # lowrite
        assert _value(c.call(955, [str(fd).encode(), b"\\x2174657874"], [0, 0], 1)) == struct.pack("!i", 5)
        assert _value(c.call(3170, [struct.pack("!i", fd), struct.pack("!q", 0), struct.pack("!i", 0)], [1], 1)) \
            == struct.pack("!q", 0)  # lo_lseek64
        assert _value(c.call(954, [struct.pack("!i", fd), struct.pack("!i", 100)], [1], 1)) == b"\x00\x01binary!text"
        assert _value(c.call(954, [str(fd).encode(), b"0"], [0], 0)) == b"\\x"  # loread, text result
        assert _value(c.call(954, [None, b"1"], [0], 0)) is None  # strict: NULL in, NULL out
        assert c.query("COMMIT")[-1] == ("Z", b"I")
        assert _value(c.call(3458, [str(oid).encode()], [], 1)) == b"\x00\x01binary!text"  # lo_get, autocommit
    finally:
        c.close()


def test_fastpath_refuses_other_functions_and_fails_the_transaction(open_server) -> None:
    c = RawClient(open_server)
    try:
        answers = c.call(1242, [b"1"], [0], 0)  # boolin: a function, but not one reeldb answers by OID
        assert _error(answers)["C"] == "42883" and "function with OID 1242 does not exist" in _error(answers)["M"]
        assert answers[-1] == ("Z", b"I")
        answers = c.call(764, [b"/etc/passwd"], [0], 0)  # server-side lo_import
        assert _error(answers)["C"] == "42501"
        c.query("BEGIN")
        answers = c.call(955, [struct.pack("!i", 7), b"x"], [1], 1)  # a descriptor never opened
        assert _error(answers)["C"] == "42704" and answers[-1] == ("Z", b"E")
        answers = c.call(715, [struct.pack("!I", 0)], [1], 1)
        assert _error(answers)["C"] == "25P02"  # the transaction is aborted, as after any error
        assert c.query("ROLLBACK")[-1] == ("Z", b"I")
        answers = c.call(952, [b"1"], [0], 1)  # one argument too few
        assert _error(answers)["C"] == "08P01"
        answers = c.call(952, [b"12", b"34"], [1], 1)  # binary int4 of two bytes
        assert _error(answers)["C"] == "22P03"
        assert c.query("SELECT 1")[-1] == ("Z", b"I")  # the connection goes on
    finally:
        c.close()
