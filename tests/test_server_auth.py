"""SCRAM-SHA-256 server side, driven by an independent RFC 5802 client written here."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from reeldb import errors
from reeldb.server import auth, users


def _h(k: bytes, m: bytes) -> bytes:
    return hmac.new(k, m, hashlib.sha256).digest()


def _client_final(password: str, client_first_bare: str, server_first: bytes, gs2: str = "n,,"):
    attrs = dict(p.split("=", 1) for p in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = _h(salted, b"Client Key")
    without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={attrs['r']}"
    auth_msg = f"{client_first_bare},{server_first.decode()},{without_proof}".encode()
    sig = _h(hashlib.sha256(client_key).digest(), auth_msg)
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    expected_server_sig = _h(_h(salted, b"Server Key"), auth_msg)
    return f"{without_proof},p={base64.b64encode(proof).decode()}", expected_server_sig


def _exchange(verifier, password, gs2="n,,", tamper=None):
    srv = auth.ScramServer("alice", verifier)
    bare = "n=,r=clientnonce123"
    server_first = srv.first(f"{gs2}{bare}".encode())
    final, server_sig = _client_final(password, bare, server_first, gs2)
    if tamper:
        final = tamper(final)
    return srv, srv.final(final.encode()), server_sig


def test_verifier_format_and_roundtrip():
    v = auth.make_verifier("secret", salt=b"0123456789abcdef", iterations=4096)
    assert v.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    it, salt, stored, server = auth.parse_verifier(v)
    assert (it, salt, len(stored), len(server)) == (4096, b"0123456789abcdef", 32, 32)
    with pytest.raises(ValueError):
        auth.parse_verifier("md5abc")


@pytest.mark.parametrize("gs2", ["n,,", "y,,"])
def test_right_password_and_server_signature(gs2):
    srv, server_final, server_sig = _exchange(auth.make_verifier("pw"), "pw", gs2)
    assert srv.done
    assert server_final == b"v=" + base64.b64encode(server_sig)


def test_wrong_password_is_28p01():
    with pytest.raises(errors.Error) as ei:
        _exchange(auth.make_verifier("pw"), "nope")
    assert ei.value.sqlstate == "28P01"
    assert 'password authentication failed for user "alice"' in str(ei.value)


def test_unknown_user_fails_like_wrong_password():
    with pytest.raises(errors.Error) as ei:
        _exchange(None, "anything")
    assert ei.value.sqlstate == "28P01"


def test_tampered_nonce_and_bad_proof():
    v = auth.make_verifier("pw")
    with pytest.raises(errors.ProtocolViolation):
        _exchange(v, "pw", tamper=lambda f: f.replace("r=clientnonce123", "r=clientnonce124", 1))
    with pytest.raises(errors.Error) as ei:
        _exchange(v, "pw", tamper=lambda f: f[: f.index(",p=")] + ",p=" + base64.b64encode(b"x" * 32).decode())
    assert ei.value.sqlstate == "28P01"


@pytest.mark.parametrize("first", [b"p=tls-server-end-point,,n=,r=abc", b"n,,", b"x,,n=,r=a", b"n,,n=,r=", b"\xff"])
def test_malformed_first_message(first):
    with pytest.raises(errors.ProtocolViolation):
        auth.ScramServer("alice", auth.make_verifier("pw")).first(first)


@pytest.mark.parametrize("final", [b"c=biws,r=x", b"garbage", b"c=!!,r=x,p=AAAA"])
def test_malformed_final_message(final):
    srv = auth.ScramServer("alice", auth.make_verifier("pw"))
    srv.first(b"n,,n=,r=abc")
    with pytest.raises(errors.ProtocolViolation):
        srv.final(final)


def test_users_stored_hashed_and_rights(tmp_path):
    from reeldb.storage.local import LocalStore

    store = LocalStore(tmp_path)
    assert users.list_users(store) == []
    users.add_user(store, "alice", "s3cret")
    users.add_user(store, "bob", "pw", readonly=True, branches=["exp/*"])
    raw = store.get(users.USERS_KEY).decode()
    assert "s3cret" not in raw and "SCRAM-SHA-256$" in raw
    alice, bob = users.list_users(store)
    alice_may, bob_may = users.rights_of(alice), users.rights_of(bob)
    assert not alice_may.read_only and not alice_may.admin and alice_may.may_name("main")
    assert bob_may.read_only and bob_may.may_name("exp/a") and not bob_may.may_name("main")
    srv = users.check_login(store, "alice")
    server_first = srv.first(b"n,,n=,r=nonce")
    final, _ = _client_final("s3cret", "n=,r=nonce", server_first)
    srv.final(final.encode())
    assert srv.done
    users.remove_user(store, "bob")
    assert [u.name for u in users.list_users(store)] == ["alice"]
    with pytest.raises(KeyError):
        users.remove_user(store, "bob")


def test_tls_context(tmp_path):
    import ssl

    from reeldb.server import tls

    cert, key = tls.make_self_signed(tmp_path)
    ctx = tls.server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValueError, match="not found"):
        tls.server_context(tmp_path / "nope.crt", key)
    (tmp_path / "bad.crt").write_text("not a cert")
    with pytest.raises(ValueError, match="cannot load"):
        tls.server_context(tmp_path / "bad.crt", key)


def test_user_cli_functions(tmp_path, monkeypatch, capsys):
    import argparse
    import io


    parser = argparse.ArgumentParser()
    users.register_cli(parser.add_subparsers())
    monkeypatch.setattr("sys.stdin", io.StringIO("pw1\n"))
    args = parser.parse_args(["user", "add", str(tmp_path), "carol", "--readonly", "--branch", "exp/*",
                              "--password-stdin"])
    assert args.func(args) == 0
    args = parser.parse_args(["user", "list", str(tmp_path)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == "carol\tread-only\texp/*\n"
    args = parser.parse_args(["user", "remove", str(tmp_path), "dave"])
    assert args.func(args) == 1


# -- through the server, with real clients ----------------------------------------------


@pytest.fixture
def secured(tmp_path):
    import reeldb
    from reeldb.server import tls
    from reeldb.server.server import BackgroundServer
    from reeldb.storage import open_store

    path = tmp_path / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.branch("exp/a", checkout=False)
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "alice", "s3cret")
    users.add_user(store, "reader", "r3ad", readonly=True)
    users.add_user(store, "exp", "exp", branches=["exp/*"])
    cert, key = tls.make_self_signed(tmp_path)
    srv = BackgroundServer(str(path), port=0, ssl_context=tls.server_context(cert, key))
    yield srv
    srv.stop()


def _conninfo(srv, user: str, password: str, db: str = "db", sslmode: str = "disable") -> str:
    host, port = srv.address
    return f"host={host} port={port} dbname={db} user={user} password={password} sslmode={sslmode}"


def test_scram_login_with_psycopg_and_tls(secured) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(_conninfo(secured, "alice", "s3cret"), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM t").fetchone() == (1,)
    with psycopg.connect(_conninfo(secured, "alice", "s3cret", sslmode="require"), autocommit=True) as c:
        assert c.pgconn.ssl_in_use
        c.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_conninfo(secured, "alice", "wrong"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_conninfo(secured, "nobody", "x"))


def test_rights_read_only_and_branches(secured) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(_conninfo(secured, "reader", "r3ad"), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM t").fetchone()[0] >= 1
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO t VALUES (3)")
    with pytest.raises(psycopg.OperationalError, match="may not use branch"):
        psycopg.connect(_conninfo(secured, "exp", "exp"))  # main is not exp/*
    with psycopg.connect(_conninfo(secured, "exp", "exp", db="db/exp/a"), autocommit=True) as c:
        c.execute("INSERT INTO t VALUES (4)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SET reeldb.branch = 'main'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT reeldb_checkout('main')")
        assert c.execute("SHOW reeldb.branch").fetchone() == ("exp/a",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute('SELECT * FROM "main".t')  # a schema-qualified read of another branch
        schemas = {r[0] for r in c.execute("SELECT nspname FROM pg_namespace").fetchall()}
        assert "exp/a" in schemas and "main" not in schemas  # the catalog shows only its branches
    with psycopg.connect(_conninfo(secured, "reader", "r3ad"), autocommit=True) as c:
        assert c.execute("SELECT has_table_privilege('t', 'SELECT'), has_table_privilege('t', 'INSERT')"
                         ).fetchone() == (True, False)


def test_scram_login_with_asyncpg(secured) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    import asyncio

    host, port = secured.address

    async def main() -> None:
        conn = await asyncpg.connect(host=host, port=port, user="alice", password="s3cret", database="db", ssl=False)
        try:
            assert await conn.fetchval("SELECT count(*) FROM t") >= 1
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host=host, port=port, user="alice", password="nope", database="db", ssl=False)

    asyncio.run(main())
