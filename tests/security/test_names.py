"""Names that reach the wrong data: COPY with a schema (a branch, tag or commit) reads and
writes that ref or is refused, never the connection's own branch instead; a user's table
may have any name, internal relation names included, and internal relations cannot be named.

Real server on 127.0.0.1, real psql and psycopg 3, users with passwords and branch patterns.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import reeldb
from reeldb.engine.engine import INTERNAL, internal_name
from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")

MAIN_ROWS = [(1, "one"), (2, "two")]
EXP_ROWS = [(1, "one"), (2, "two"), (3, "three")]
TAG_ROWS = [(1, "one")]
# legal Postgres names that once were reeldb's own relation names (or prefixes of them)
COLLIDING = ["t", "__t_t", "__v_t", "__r0_t", "__fn_0", "__x_t", "__pu_t", "__pg_pg_class", "__params", "__winners"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'one')")
    db.tag("v1")
    first = db.log()[0]["id"]
    db.execute("INSERT INTO t VALUES (2, 'two')")
    db.branch("exp/x", checkout=False)
    db.checkout("exp/x")
    db.execute("INSERT INTO t VALUES (3, 'three')")
    db.checkout("main")
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "alice", "pw")
    users.add_user(store, "expuser", "pw", branches=["exp/*"])
    users.add_user(store, "reader", "pw", readonly=True)
    srv = BackgroundServer(str(path), port=0)
    srv.first_commit = first
    yield srv
    srv.stop()


def conninfo(srv, user: str = "alice", branch: str | None = None) -> str:
    host, port = srv.address
    db = "db" if branch is None else f"db/{branch}"
    return f"host={host} port={port} dbname={db} user={user} password=pw sslmode=disable"


def rows_of(conn, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


def copy_out(conn, sql: str) -> list[tuple]:
    with conn.cursor() as cur, cur.copy(sql) as cp:
        got = [(int(r[0]), r[1]) for r in cp.rows()]
    return sorted(got)


def copy_in(conn, sql: str, rows: list[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(sql) as cp:
        for r in rows:
            cp.write_row(r)


def state(srv) -> dict[str, list[tuple]]:
    """Every ref's rows of t, read back by a separate connection."""
    with psycopg.connect(conninfo(srv), autocommit=True) as c:
        return {ref: rows_of(c, f'SELECT id, name FROM {ref}.t ORDER BY id')
                for ref in ('"main"', '"exp/x"', "v1", f'"{srv.first_commit}"')}


# -- COPY ... TO STDOUT -----------------------------------------------------------------------
def test_copy_to_reads_the_named_branch_tag_or_commit(served) -> None:
    with psycopg.connect(conninfo(served), autocommit=True) as c:
        assert copy_out(c, "COPY t TO STDOUT") == MAIN_ROWS
        assert copy_out(c, "COPY public.t TO STDOUT") == MAIN_ROWS
        assert copy_out(c, 'COPY "exp/x".t TO STDOUT') == EXP_ROWS
        assert copy_out(c, 'COPY "exp/x".t (id, name) TO STDOUT') == EXP_ROWS
        assert copy_out(c, "COPY v1.t TO STDOUT") == TAG_ROWS
        assert copy_out(c, f'COPY "{served.first_commit}".t TO STDOUT') == TAG_ROWS
        assert copy_out(c, 'COPY (SELECT id, name FROM "exp/x".t WHERE id > 2) TO STDOUT') == [(3, "three")]
    with psycopg.connect(conninfo(served, branch="exp/x"), autocommit=True) as c:
        assert copy_out(c, "COPY t TO STDOUT") == EXP_ROWS  # public is the connection's branch
        assert copy_out(c, "COPY main.t TO STDOUT") == MAIN_ROWS


def test_unknown_schema_is_3f000_in_copy_and_select(served) -> None:
    with psycopg.connect(conninfo(served), autocommit=True) as c:
        for sql in ("COPY nosuch.t TO STDOUT", "SELECT * FROM nosuch.t"):
            with pytest.raises(psycopg.errors.InvalidSchemaName, match='schema "nosuch" does not exist'):
                if sql.startswith("COPY"):
                    copy_out(c, sql)
                else:
                    c.execute(sql)
        with pytest.raises(psycopg.errors.UndefinedTable):
            copy_out(c, 'COPY "exp/x".nope TO STDOUT')
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="cross-database"):
            copy_out(c, "COPY other.public.t TO STDOUT")


def test_psql_copy_honours_the_schema(served, tmp_path) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    host, port = served.address
    env = {**os.environ, "PGPASSWORD": "pw"}
    base = [psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port), "-U", "alice", "-d", "db"]
    out = subprocess.run(base + ["-c", r'\copy "exp/x".t to stdout'], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1\tone", "2\ttwo", "3\tthree"]
    out = subprocess.run(base + ["-c", r"\copy v1.t to stdout csv"], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.stdout.splitlines() == ["1,one"], out.stderr
    before = state(served)
    data = tmp_path / "rows.txt"
    data.write_text("7\tseven\n")
    for target, needle in (('"exp/x".t', "cannot COPY into branch"), ("v1.t", "read-only"),
                           ("nosuch.t", 'schema "nosuch" does not exist')):
        out = subprocess.run(base + ["-c", rf"\copy {target} from '{data}'"], capture_output=True, text=True,
                             env=env, timeout=30)
        assert out.returncode != 0 and needle in out.stderr, (target, out.stderr)
    assert state(served) == before


# -- COPY ... FROM STDIN ----------------------------------------------------------------------
def test_copy_from_writes_only_the_connections_branch(served) -> None:
    before = state(served)
    with psycopg.connect(conninfo(served), autocommit=True) as c:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='branch "exp/x"'):
            copy_in(c, 'COPY "exp/x".t FROM STDIN', [(10, "ten")])
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="tag or commit"):
            copy_in(c, "COPY v1.t FROM STDIN", [(11, "eleven")])
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            copy_in(c, f'COPY "{served.first_commit}".t FROM STDIN', [(12, "twelve")])
        with pytest.raises(psycopg.errors.InvalidSchemaName, match='schema "nosuch" does not exist'):
            copy_in(c, "COPY nosuch.t FROM STDIN", [(13, "thirteen")])
        assert rows_of(c, "SELECT 1") == [(1,)]  # the connection is still usable
    assert state(served) == before
    # into the connection's own branch, named or as public: written there and nowhere else
    with psycopg.connect(conninfo(served, branch="exp/x"), autocommit=True) as c:
        copy_in(c, 'COPY "exp/x".t FROM STDIN', [(20, "twenty")])
        copy_in(c, "COPY public.t (id, name) FROM STDIN", [(21, "twenty-one")])
    after = state(served)
    assert after['"exp/x"'] == before['"exp/x"'] + [(20, "twenty"), (21, "twenty-one")]
    assert {k: v for k, v in after.items() if k != '"exp/x"'} == {k: v for k, v in before.items() if k != '"exp/x"'}
    with psycopg.connect(conninfo(served, branch="exp/x"), autocommit=True) as c:
        c.execute("DELETE FROM t WHERE id >= 20")
    assert state(served) == before


def test_a_branch_restricted_login_cannot_copy_a_forbidden_branch(served) -> None:
    before = state(served)
    with psycopg.connect(conninfo(served, "expuser", branch="exp/x"), autocommit=True) as c:
        assert copy_out(c, "COPY t TO STDOUT") == EXP_ROWS
        for sql in ("COPY main.t TO STDOUT", "COPY v1.t TO STDOUT", "COPY (SELECT * FROM main.t) TO STDOUT"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                copy_out(c, sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            copy_in(c, "COPY main.t FROM STDIN", [(30, "thirty")])
    with psycopg.connect(conninfo(served, "reader"), autocommit=True) as c:
        assert copy_out(c, 'COPY "exp/x".t TO STDOUT') == EXP_ROWS
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            copy_in(c, "COPY t FROM STDIN", [(31, "thirty-one")])
    assert state(served) == before


# -- internal relation names ------------------------------------------------------------------
def _fill(db, names: list[str]) -> None:
    for i, n in enumerate(names):
        db.execute(f'CREATE TABLE "{n}" (id INT PRIMARY KEY, v VECTOR(2))')
        db.execute(f'INSERT INTO "{n}" VALUES ({i}, \'[1,{i}]\'), ({100 + i}, \'[-1,0]\')')


def _check_each_answers_its_own(run, names: list[str]) -> None:
    """``run(sql) -> rows``: each table's queries see only its own rows."""
    for i, n in enumerate(names):
        q = f'"{n}"'
        assert sorted(run(f"SELECT id FROM {q}")) == [(i,), (100 + i,)], n
        assert run(f"SELECT id FROM {q} WHERE id = {100 + i}") == [(100 + i,)], n  # point lookup
        assert run(f"SELECT id FROM {q} ORDER BY v <=> '[1,0]' LIMIT 1") == [(i,)], n  # vector plan
        assert run(f"SELECT id FROM {q} WHERE id < 100 AND _rowid > 0") == [(i,)], n  # rowid view
        assert run(f"SELECT id FROM exp.{q} WHERE id < 100") == [(i,)], n  # another ref's relation
        assert run(f"SELECT n.id FROM reeldb_log() l, {q} n WHERE n.id < 100 LIMIT 1") == [(i,)], n
        assert any("QUERY PLAN" not in str(r) for r in run(f"EXPLAIN SELECT id FROM {q} WHERE id > 1"))


def test_internal_names_do_not_collide_python_api(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    _fill(db, COLLIDING)
    db.branch("exp", checkout=False)
    run = lambda sql: [tuple(r) for r in db.execute(sql).fetchall()]  # noqa: E731
    _check_each_answers_its_own(run, COLLIDING)
    for i, n in enumerate(COLLIDING):
        db.execute(f'UPDATE "{n}" SET v = \'[0,1]\' WHERE id = {i}')
        db.execute(f'DELETE FROM "{n}" WHERE id = {100 + i}')
    for i, n in enumerate(COLLIDING):
        assert run(f'SELECT id, v FROM "{n}"')[0][0] == i and len(run(f'SELECT id FROM "{n}"')) == 1, n
    assert run("SELECT id FROM exp.__t_t ORDER BY id") == [(1,), (101,)]  # the other branch untouched
    assert [r["id"] for r in db.search("__t_t", "v", [0.0, 1.0], k=5)] == [1]


def test_internal_relations_cannot_be_named(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    _fill(db, ["t"])
    db.branch("exp", checkout=False)
    assert db.execute("SELECT count(*) FROM exp.t").fetchone() == (2,)  # binds a ref relation too
    bound = list(db._session.engine.bound.values())
    assert bound and all(b.internal.startswith(INTERNAL) and b.view.startswith(INTERNAL) for b in bound)
    count = db.execute("SELECT count(*) FROM t").fetchone()
    for rel in [b.internal for b in bound] + [b.view for b in bound] + [internal_name("pg", "pg_class")]:
        with pytest.raises(reeldb.errors.UndefinedTable):
            db.execute(f'SELECT * FROM "{rel}"')  # cut to 63 bytes by the parser, as in Postgres
    with pytest.raises(reeldb.errors.InvalidSchemaName):
        db.execute("SELECT * FROM temp.t")
    with pytest.raises(reeldb.errors.FeatureNotSupported):
        db.execute("SELECT * FROM temp.main.t")
    with pytest.raises(reeldb.errors.UndefinedFunction):
        db.execute(f"SELECT {internal_name('div')}(1, 0)")
    assert db.execute("SELECT count(*) FROM t").fetchone() == count


def test_internal_names_do_not_collide_over_the_wire(served) -> None:
    names = ["__t_t", "__v_t", "__r0_t", "__fn_0", "t2"]
    with psycopg.connect(conninfo(served), autocommit=True) as c:
        _fill(c, names)
        try:
            c.execute("SELECT reeldb_branch('exp')")
            c.execute("SELECT reeldb_checkout('main')")
            run = lambda sql: [tuple(r) for r in c.execute(sql).fetchall()]  # noqa: E731
            _check_each_answers_its_own(run, names)
            assert copy_out(c, 'COPY "__t_t" TO STDOUT').__len__() == 2
            with pytest.raises(psycopg.errors.UndefinedTable):
                c.execute(f'SELECT * FROM "{internal_name("t", "t")}"')
            assert rows_of(c, "SELECT id, name FROM t ORDER BY id") == MAIN_ROWS
        finally:
            for n in names:
                c.execute(f'DROP TABLE IF EXISTS "{n}"')
            c.execute("SELECT reeldb_delete_branch('exp')")
