"""Rights hold everywhere: a real `reeldb serve` on 127.0.0.1, real psycopg and psql.

A read-only login changes nothing (refs, protections, OPTIMIZE, VACUUM); a login limited
to ``exp/*`` cannot read, copy or change any other branch, tag or commit through any
versioning function, schema-qualified query or COPY, and sees only its refs listed; only
an admin may protect, unprotect and VACUUM. Every refusal is checked to leave the refs,
the row counts and the files on disk as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

import reeldb
from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.sql.rights import NEEDS, Rights
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")

PASSWORDS = {"reader": "r3ad", "exp": "exp-pw", "writer": "wr1te", "boss": "b0ss"}


def make_database(path: Path) -> dict[str, str]:
    """main (protected), exp/a, exp/b2 and theirs branched from the first commit, a
    private branch with a row no one outside it may see, tags exp/t0 and release; main
    moves on after the branches. Returns the commits the tests name."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, secret TEXT, emb VECTOR(2))")
    for i in (1, 2, 3):  # one fragment each: OPTIMIZE and VACUUM have work to do
        db.execute("INSERT INTO t (id, secret) VALUES (%s, %s)", (i, f"row {i}"))
    first = db.head
    for name in ("exp/a", "exp/b2", "theirs"):
        db.branch(name, checkout=False)
    db.tag("exp/t0")
    db.branch("private")
    db.execute("INSERT INTO t (id, secret) VALUES (100, 'classified')")
    private = db.head
    db.tag("release")
    db.checkout("main")
    db.execute("INSERT INTO t (id, secret) VALUES (4, 'row 4')")
    main = db.head
    db.protect("main")
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "reader", PASSWORDS["reader"], readonly=True)
    users.add_user(store, "exp", PASSWORDS["exp"], branches=["exp/*"])
    users.add_user(store, "writer", PASSWORDS["writer"])
    users.add_user(store, "boss", PASSWORDS["boss"], admin=True)
    return {"first": first, "private": private, "main": main}


def files(path: Path) -> dict[str, str]:
    """Every file under the database and a hash of its bytes; the writing process's lease
    (``_reeldb/writers/``) is left out: it is refreshed by the clock, not by statements."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and "writers" not in p.relative_to(path).parts}


def refs(path: Path) -> dict[str, dict[str, str] | set[str]]:
    """Branch heads, tags and protected branches as stored."""
    base = path / "_reeldb" / "refs"

    def heads(kind: str) -> dict[str, str]:
        folder = base / kind
        return {unquote(p.name): json.loads(p.read_text())["commit"] for p in folder.iterdir()} if folder.exists() else {}

    protected = {unquote(p.name) for p in (base / "protected").iterdir()} if (base / "protected").exists() else set()
    return {"branches": heads("branches"), "tags": heads("tags"), "protected": protected}


def row_counts(path: Path) -> dict[str, int]:
    db = reeldb.connect(path, create=False)
    try:
        return {b["name"]: db.execute(f'SELECT count(*) FROM "{b["name"]}".t').fetchone()[0] for b in db.branches()}
    finally:
        db.close()


def everything(path: Path) -> tuple:
    return refs(path), row_counts(path), files(path)


def serve(path: Path) -> BackgroundServer:
    return BackgroundServer(str(path), port=0)


def conninfo(srv: BackgroundServer, user: str, database: str = "db") -> str:
    host, port = srv.address
    return f"host={host} port={port} dbname={database} user={user} password={PASSWORDS[user]} sslmode=disable"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server whose database no test may change: every test here is a refusal."""
    path = tmp_path_factory.mktemp("rights") / "db"
    commits = make_database(path)
    srv = serve(path)  # starting writes the server's lasting mock-authentication secret
    before = everything(path)
    assert everything(path) == before  # taking the picture changes nothing
    yield srv, path, commits, before
    srv.stop()


@pytest.fixture
def fresh(tmp_path):
    """A server of its own, for tests whose allowed operations change the database."""
    path = tmp_path / "db"
    commits = make_database(path)
    srv = serve(path)
    yield srv, path, commits
    srv.stop()


def refused(conn, sql: str, sqlstate: str = "42501") -> str:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == sqlstate, (sql, info.value)
    return str(info.value)


def copy_refused(conn, sql: str) -> None:
    with pytest.raises(psycopg.Error) as info, conn.cursor().copy(sql) as cp:
        for _ in cp:
            pass
    assert info.value.sqlstate == "42501", (sql, info.value)


# -- a read-only login ---------------------------------------------------------------------------

READ_ONLY_REFUSED = [
    "SELECT reeldb_branch('x')", "SELECT reeldb_branch('x', 'theirs')", "SELECT reeldb_tag('t1')",
    "SELECT reeldb_tag('t1', 'theirs')", "SELECT reeldb_merge('theirs')",
    "SELECT reeldb_merge('theirs', 'theirs', 'exp/a')", "SELECT reeldb_reset('main', '{first}')",
    "SELECT reeldb_reset('{first}')", "SELECT reeldb_reset('exp/a', 'main')", "SELECT reeldb_revert('{main}')",
    "SELECT reeldb_delete_branch('theirs')", "SELECT reeldb_protect('theirs')", "SELECT reeldb_unprotect('main')",
    "SELECT reeldb_optimize()", "OPTIMIZE", "OPTIMIZE t", "VACUUM", "VACUUM FULL t",
]


def test_read_only_login_changes_nothing(shared) -> None:
    srv, path, commits, before = shared
    with psycopg.connect(conninfo(srv, "reader"), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM t").fetchone() == (4,)  # it reads
        for sql in READ_ONLY_REFUSED:
            message = refused(c, sql.format(**commits))
            assert '"reader"' in message and "read-only" in message, message
        for sql in ("INSERT INTO t (id, secret) VALUES (5, 'x')", "UPDATE t SET secret = 'x'", "DELETE FROM t",
                    "CREATE TABLE u (a INT)", "DROP TABLE t", "CREATE INDEX ON t USING hnsw (emb vector_cosine_ops)"):
            refused(c, sql, "25006")  # a write statement: as in a read-only Postgres transaction
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), c.cursor().copy("COPY t FROM STDIN") as cp:
            cp.write(b"6\tx\t\\N\n")
        cur = c.execute("ANALYZE t")  # keeps no statistics, and (unlike before) never vacuums
        assert cur.statusmessage == "ANALYZE"
        refused(c, "ANALYZE nosuch", "42P01")
        # it may go where it may read, and still write nothing there
        c.execute("SELECT reeldb_checkout('theirs')")
        refused(c, "INSERT INTO t (id, secret) VALUES (7, 'x')", "25006")
        refused(c, "SELECT reeldb_merge('private')")
    assert everything(path) == before


# -- a login limited to exp/* ------------------------------------------------------------------------

CROSS_BRANCH_REFUSED = [
    # reads of another branch, tag or commit
    "SELECT * FROM reeldb_diff('t', 'exp/a', 'private')", "SELECT * FROM reeldb_diff('private', 'exp/a')",
    "SELECT * FROM reeldb_diff('exp/a', 'release')", "SELECT * FROM reeldb_diff('exp/a', '{private}')",
    "SELECT * FROM reeldb_diff('exp/a', '{private_prefix}')", "SELECT * FROM reeldb_diff('exp/a', '{main}')",
    "SELECT * FROM reeldb_log('private')", "SELECT * FROM reeldb_log('{private}')", "SELECT * FROM reeldb_log('release')",
    'SELECT * FROM "private".t', 'SELECT * FROM "release".t', 'SELECT * FROM "{private}".t', 'SELECT * FROM "main".t',
    'SELECT id FROM t WHERE id IN (SELECT id FROM "private".t)',
    "SELECT reeldb_checkout('private')", "SELECT reeldb_checkout('{private}')", "SELECT reeldb_checkout('release')",
    "SET reeldb.branch = 'main'",
    # copies of another branch under an allowed name
    "SELECT reeldb_tag('exp/t1', 'private')", "SELECT reeldb_tag('exp/t1', '{private}')",
    "SELECT reeldb_branch('exp/b1', 'private')", "SELECT reeldb_branch('exp/b1', 'release')",
    "SELECT reeldb_reset('exp/b2', 'private')", "SELECT reeldb_reset('exp/b2', '{private}')",
    "SELECT reeldb_merge('private', 'theirs')", "SELECT reeldb_merge('private')", "SELECT reeldb_merge('release')",
    "SELECT reeldb_revert('{private}')",
    # changes of refs outside exp/*
    "SELECT reeldb_merge('exp/a', 'theirs', 'theirs')", "SELECT reeldb_reset('theirs', 'exp/a')",
    "SELECT reeldb_delete_branch('theirs')", "SELECT reeldb_branch('other', 'exp/a')", "SELECT reeldb_tag('v2')",
    "SELECT reeldb_protect('theirs')", "SELECT reeldb_unprotect('main')", "SELECT reeldb_protect('exp/a')",
    "VACUUM",
    # names that do not exist outside the patterns: refused alike, nothing told of what exists
    "SELECT * FROM reeldb_log('nosuch')", 'SELECT * FROM "nosuch".t', "SELECT reeldb_checkout('nosuch')",
    "SELECT * FROM reeldb_log('abcdef0123456789abcdef01')",
]


def test_branch_limited_login_reaches_no_other_branch(shared) -> None:
    srv, path, commits, before = shared
    names = dict(commits, private_prefix=commits["private"][:10])
    with psycopg.connect(conninfo(srv, "exp", "db/exp/a"), autocommit=True) as c:
        for sql in CROSS_BRANCH_REFUSED:
            refused(c, sql.format(**names))
        for sql in ("COPY (SELECT * FROM reeldb_diff('t', 'exp/a', 'private')) TO STDOUT",
                    f"COPY (SELECT * FROM reeldb_diff('exp/a', '{commits['private']}')) TO STDOUT",
                    "COPY (SELECT * FROM reeldb_log('private')) TO STDOUT",
                    'COPY (SELECT * FROM "private".t) TO STDOUT'):
            copy_refused(c, sql)
        assert c.execute("SHOW reeldb.branch").fetchone() == ("exp/a",)
        refused(c, "SELECT * FROM reeldb_log('exp/nosuch')", "42704")  # its own names are told apart
    assert everything(path) == before


def test_branch_limited_login_reads_its_refs_and_their_history(shared) -> None:
    srv, path, commits, before = shared
    with psycopg.connect(conninfo(srv, "exp", "db/exp/a"), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM t").fetchone() == (3,)
        assert c.execute('SELECT count(*) FROM "exp/b2".t').fetchone() == (3,)
        assert c.execute('SELECT count(*) FROM "exp/t0".t').fetchone() == (3,)  # a tag in its patterns
        # a commit in the history of exp/a, by id and by prefix
        assert c.execute(f'SELECT count(*) FROM "{commits["first"]}".t').fetchone() == (3,)
        assert c.execute(f'SELECT count(*) FROM "{commits["first"][:10]}".t').fetchone() == (3,)
        assert c.execute("SELECT count(*) FROM reeldb_log('exp/a')").fetchone()[0] >= 1
        assert c.execute("SELECT count(*) FROM reeldb_diff('exp/a', 'exp/b2')").fetchone() == (0,)
        c.execute(f"SELECT reeldb_checkout('{commits['first']}')")
        assert c.execute("SELECT count(*) FROM t").fetchone() == (3,)
        # listings show only what it may read
        assert [r[0] for r in c.execute("SELECT name FROM reeldb_branches()")] == ["exp/a", "exp/b2"]
        assert [r[0] for r in c.execute("SELECT name FROM reeldb_tags()")] == ["exp/t0"]
        schemas = {r[0] for r in c.execute("SELECT nspname FROM pg_namespace")}
        assert {"exp/a", "exp/b2"} <= schemas and not {"main", "private", "theirs"} & schemas
        found = {r[0] for r in c.execute("SELECT schema_name FROM information_schema.schemata")}
        assert not {"main", "private", "theirs"} & found
    assert everything(path) == before


def test_psql_diff_and_copy_of_another_branch_refused(shared) -> None:
    srv, path, commits, before = shared
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (make test installs postgresql-client)")
    host, port = srv.address
    base = [psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port), "-U", "exp", "-d", "db/exp/a"]
    env = dict(os.environ, PGPASSWORD=PASSWORDS["exp"], PGSSLMODE="disable")
    for command in ("SELECT * FROM reeldb_diff('t', 'exp/a', 'private')",
                    "\\copy (SELECT * FROM reeldb_diff('t', 'exp/a', 'private')) TO STDOUT",
                    "SELECT reeldb_tag('exp/t1', 'private')"):
        out = subprocess.run(base + ["-c", command], capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode != 0 and "permission denied" in out.stderr, (command, out.stdout, out.stderr)
        assert "classified" not in out.stdout
    out = subprocess.run(base + ["-c", "SELECT name FROM reeldb_branches()"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert out.returncode == 0 and out.stdout.split() == ["exp/a", "exp/b2"], out.stderr
    assert everything(path) == before


# -- admin ---------------------------------------------------------------------------------------------


def test_read_write_login_is_no_admin(shared) -> None:
    srv, path, commits, before = shared
    with psycopg.connect(conninfo(srv, "writer", "db/theirs"), autocommit=True) as c:
        for sql in ("SELECT reeldb_protect('theirs')", "SELECT reeldb_unprotect('main')", "VACUUM", "VACUUM t"):
            assert "admin" in refused(c, sql)
    assert everything(path) == before


def test_admin_may_protect_unprotect_and_vacuum(fresh) -> None:
    srv, path, commits = fresh
    with psycopg.connect(conninfo(srv, "writer", "db/theirs"), autocommit=True) as c:
        c.execute("SELECT reeldb_branch('exp/new', 'exp/a')")  # a writer creates, moves and deletes refs
        c.execute("SELECT reeldb_checkout('theirs')")
        c.execute("INSERT INTO t (id, secret) VALUES (9, 'nine')")
        c.execute("OPTIMIZE")
        c.execute("SELECT reeldb_delete_branch('exp/new')")
    with psycopg.connect(conninfo(srv, "boss"), autocommit=True) as c:
        c.execute("SELECT reeldb_unprotect('main')")
        assert "main" not in refs(path)["protected"]
        c.execute("SELECT reeldb_protect('theirs')")
        assert refs(path)["protected"] == {"theirs"}
        head = refs(path)["branches"]["main"]
        c.execute("VACUUM")  # compacts main's three fragments, then sweeps
        assert refs(path)["branches"]["main"] != head
        assert c.execute("SELECT count(*) FROM t").fetchone() == (4,)
    with psycopg.connect(conninfo(srv, "writer", "db/theirs"), autocommit=True) as c:
        refused(c, "INSERT INTO t (id, secret) VALUES (10, 'x')", "25006")  # protected by the admin
    assert row_counts(path) == {"exp/a": 3, "exp/b2": 3, "main": 4, "private": 4, "theirs": 4}


def test_user_add_admin_on_the_command_line(fresh) -> None:
    srv, path, _ = fresh
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    run = [sys.executable, "-m", "reeldb", "user"]
    out = subprocess.run(run + ["add", str(path), "root2", "--admin", "--password-stdin"], input="pw2\n",
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    with pytest.raises(ValueError, match="read-only"):  # as `user add --admin --readonly` says
        users.add_user(open_store(str(path), create=False), "both", "pw", admin=True, readonly=True)
    out = subprocess.run(run + ["list", str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.splitlines() == ["boss\tadmin\t*", "exp\tread-write\texp/*", "reader\tread-only\t*",
                                       "root2\tadmin\t*", "writer\tread-write\t*"]
    host, port = srv.address
    with psycopg.connect(f"host={host} port={port} dbname=db user=root2 password=pw2 sslmode=disable",
                         autocommit=True) as c:
        c.execute("SELECT reeldb_unprotect('main')")
    assert refs(path)["protected"] == set()


# -- the Python API --------------------------------------------------------------------------------------


def test_embedded_connection_may_do_everything(tmp_path) -> None:
    path = tmp_path / "db"
    commits = make_database(path)
    db = reeldb.connect(path)
    db.unprotect("main")
    db.protect("theirs")
    db.unprotect("theirs")
    db.tag("v9", at="private")
    db.delete_tag("v9")
    db.reset("exp/b2", to="private")
    db.merge("private")
    db.optimize()
    assert db.expire(older_than=dt.timedelta(days=1)) == 0
    assert isinstance(db.vacuum()["files"], int)
    db.delete_branch("exp/b2")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (5,)
    assert sorted(b["name"] for b in db.branches()) == ["exp/a", "main", "private", "theirs"]
    assert commits["private"] in {c["id"] for c in db.log()}
    db.close()


def test_python_api_goes_through_the_same_table(tmp_path) -> None:
    """The same session check stands behind the Python API: a connection given a limited
    login's rights is refused as that login is over the wire."""
    path = tmp_path / "db"
    commits = make_database(path)
    before = everything(path)
    db = reeldb.connect(path, branch="exp/a")
    db._session.rights = Rights(user="exp", patterns=("exp/*",))
    for call in (lambda: db.vacuum(), lambda: db.expire(older_than=dt.timedelta(0)),
                 lambda: db.protect("exp/a"), lambda: db.unprotect("main"), lambda: db.diff("private"),
                 lambda: db.log("private"), lambda: db.tag("exp/x", at=commits["private"]),
                 lambda: db.branch("exp/y", at="release"), lambda: db.merge("private"),
                 lambda: db.reset("exp/b2", to="private"), lambda: db.delete_tag("release"),
                 lambda: db.checkout("main")):
        with pytest.raises(reeldb.Error) as info:
            call()
        assert info.value.sqlstate == "42501"
    assert [b["name"] for b in db.branches()] == ["exp/a", "exp/b2"] and db.tags() == {"exp/t0": commits["first"]}
    db._session.rights = Rights(user="ro", read_only=True, admin=False)
    with pytest.raises(reeldb.Error) as info:
        db.insert("t", [{"id": 5, "secret": "x"}])
    assert info.value.sqlstate == "25006"
    db.close()
    assert everything(path) == before


def test_every_operation_of_the_table_is_checked_somewhere() -> None:
    """No entry of the rights table is dead, and no operation checks one that is not in it."""
    import re

    src = Path(reeldb.__file__).parent
    text = "".join(p.read_text() for p in src.rglob("*.py"))
    used = set(re.findall(r'authorize\("(\w+)"', text)) | set(re.findall(r'NEEDS\["(\w+)"\]', text))
    assert used == set(NEEDS)


def test_commit_search_is_bounded_and_gives_up_by_refusing(tmp_path, monkeypatch) -> None:
    """A commit id is looked for in the readable history only so far back: past the bound
    it is refused, never allowed."""
    from reeldb.sql import rights

    path = tmp_path / "db"
    commits = make_database(path)
    db = reeldb.connect(path, branch="exp/a")
    db._session.rights = Rights(user="exp", patterns=("exp/*",))
    db.execute("INSERT INTO t (id, secret) VALUES (5, 'x')")
    deep = db.head  # in the history of exp/a only, no ref's head
    for _ in range(3):  # exp/a moves on: that commit is now three commits deep
        db.execute("INSERT INTO t (id, secret) VALUES (6, 'y')")
    assert db.diff(deep)["t"].added.num_rows == 3  # found within the bound
    assert db.diff(commits["first"])["t"].added.num_rows == 4  # the head of tag exp/t0: no search
    monkeypatch.setattr(rights, "MAX_WALK", 2)
    assert db.diff(commits["first"])["t"].added.num_rows == 4
    with pytest.raises(reeldb.Error) as info:
        db.diff(deep)
    assert info.value.sqlstate == "42501"
    db.close()
