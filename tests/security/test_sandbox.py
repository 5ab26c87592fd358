"""The sandbox: a login with the fewest rights, through a real `reeldb serve` on 127.0.0.1
with psql and psycopg, cannot read files, the environment or DuckDB's own state, nor turn
the sandbox off; functions outside the allow-list are refused exactly like a function that
does not exist; settings are an allow-list. The embedded API keeps file functions as an
opt-in (``connect(..., file_access=True)``)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import reeldb
from reeldb.engine.engine import Engine
from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")

PASSWORD = "r3ad-only"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A database with rows on main and on exp/a, served, with a read-only login limited to
    exp/*; yields (server, database path)."""
    path = tmp_path_factory.mktemp("sandbox") / "db"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, secret TEXT, v VECTOR(3))")
    db.execute("INSERT INTO t VALUES (1, 'main-only', '[1,0,0]'), (2, 'main-only', '[0,1,0]')")
    db.branch("exp/a", checkout=False)
    db.execute("INSERT INTO t VALUES (3, 'main-only', '[0,0,1]')")
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "ro", PASSWORD, readonly=True, branches=["exp/*"])
    store.close()
    srv = BackgroundServer(str(path), port=0)
    yield srv, path
    srv.stop()


def conninfo(srv: BackgroundServer) -> str:
    host, port = srv.address
    return f"host={host} port={port} dbname=db/exp/a user=ro password={PASSWORD} sslmode=disable"


def state(path: Path) -> dict:
    """What must not change: every file under the database (name and content) and the rows."""
    files = {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(path.rglob("*")) if p.is_file()}
    with reeldb.connect(path, create=False) as db:
        rows = {b: db.execute(f'SELECT count(*) FROM "{b}".t').fetchone()[0] for b in ("main", "exp/a")}
    return {"files": files, "rows": rows}


def attacks(db: Path) -> list[tuple[str, str]]:
    """(statement, the function it calls): what the issue's read-only login ran."""
    return [
        ("SELECT content FROM read_text('/etc/passwd')", "read_text(unknown)"),
        ("SELECT content FROM read_blob('/proc/self/environ')", "read_blob(unknown)"),
        (f"SELECT content FROM read_text('{db}/_reeldb/users.json')", "read_text(unknown)"),
        (f"SELECT * FROM read_parquet('{db}/data/*/*.parquet')", "read_parquet(unknown)"),
        ("SELECT * FROM glob('/etc/*')", "glob(unknown)"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv(unknown)"),
        ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv(unknown)"),
        (f"SELECT * FROM parquet_metadata('{db}/data/*/*.parquet')", "parquet_metadata(unknown)"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings()"),
        ("SELECT getenv('HOME')", "getenv(unknown)"),
        ("SELECT read_text('/etc/passwd')", "read_text(unknown)"),
        ("SELECT * FROM query('SELECT 42')", "query(unknown)"),
        ("SELECT * FROM query_table('t')", "query_table(unknown)"),
        ("SELECT id FROM t WHERE length(read_text('/etc/passwd')) > 0", "read_text(unknown)"),
        ("SELECT * FROM t, LATERAL (SELECT * FROM glob('/etc/*')) g", "glob(unknown)"),
        ("WITH x AS (SELECT * FROM read_text('/etc/hostname')) SELECT * FROM x", "read_text(unknown)"),
        ("SELECT main.read_text('/etc/passwd')", "main.read_text(unknown)"),
    ]


def test_file_and_engine_functions_are_refused_as_unknown_functions(served) -> None:
    srv, path = served
    before = state(path)
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        for sql, call in attacks(path):
            with pytest.raises(psycopg.errors.UndefinedFunction) as got:
                conn.execute(sql)
            assert got.value.diag.message_primary == f"function {call} does not exist", sql
            # the same answer for a name DuckDB does not have: nothing tells the two apart
            fake = re.sub(r"\b(read_text|read_blob|read_parquet|glob|read_csv|sniff_csv|parquet_metadata|"
                          r"duckdb_settings|getenv|query|query_table)\(", r"\1_nope(", sql)
            with pytest.raises(psycopg.errors.UndefinedFunction) as twin:
                conn.execute(fake)
            name = call.partition("(")[0]
            assert twin.value.diag.message_primary == f"function {call.replace(name, name + '_nope', 1)} does not exist"
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)  # the session goes on
    assert state(path) == before


@pytest.mark.parametrize("sql", ["SELECT to_hex(255)", "SELECT sha256('abc'::bytea)",
                                 "SELECT split_part('a,b', '', 1)", "SELECT string_to_array('abc', '')",
                                 "SELECT regexp_split_to_array('abc', '')", "SELECT format('%s', 1)",
                                 "SELECT regexp_matches('abc', 'b')", "SELECT pg_catalog.to_hex(255)"])
def test_functions_duckdb_answers_differently_are_refused_with_the_reason(served, sql) -> None:
    """PostgreSQL has these, DuckDB has functions of the same names with other answers
    (to_hex(255) is 'FF', not 'ff'): refused as unsupported, never answered wrong."""
    srv, _ = served
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as got:
            conn.execute(sql)
        assert "is not supported: DuckDB's" in got.value.diag.message_primary
        assert conn.execute("SELECT lower('FF')").fetchone() == ("ff",)  # the session goes on


def test_duckdb_state_and_python_memory_are_not_relations(served) -> None:
    srv, path = served
    before = state(path)
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        for name in ("sqlite_master", "duckdb_tables", "duckdb_settings", "pg_tables", "pragma_database_list",
                     "/etc/passwd", f"{path}/_reeldb/users.json", "srv", "conn", "self"):
            quoted = '"' + name.replace('"', '""') + '"'
            with pytest.raises(psycopg.errors.UndefinedTable) as got:
                conn.execute(f"SELECT * FROM {quoted}")
            assert got.value.diag.message_primary == f'relation "{name}" does not exist'
        # pg_indexes is reeldb's own catalog view (PostgreSQL's), not DuckDB's of the same name
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'main'").fetchone() == (0,)
        # a CTE may not read DuckDB's view of the same name through its own body
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT * FROM sqlite_master")
        with pytest.raises(psycopg.errors.UndefinedObject, match='type "hugeint" does not exist'):
            conn.execute("SELECT 1::hugeint")
        with pytest.raises(psycopg.errors.UndefinedFunction) as got:  # DuckDB's power operator
            conn.execute("SELECT 2 ** 3")
        assert got.value.diag.message_primary == "operator does not exist: integer ** integer"
        with pytest.raises(psycopg.errors.UndefinedObject, match="unrecognized configuration parameter"):
            conn.execute("SELECT current_setting('enable_external_access')")
        with pytest.raises(psycopg.errors.UndefinedObject, match="unrecognized configuration parameter"):
            conn.execute("SHOW memory_limit")
    assert state(path) == before


def test_the_sandbox_cannot_be_turned_off_with_set(served) -> None:
    srv, path = served
    before = state(path)
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        for value in ("true", "false"):
            with pytest.raises(psycopg.errors.UndefinedObject) as got:
                conn.execute(f"SET enable_external_access = {value}")
            assert got.value.diag.message_primary == 'unrecognized configuration parameter "enable_external_access"'
        for sql in ("SET lock_configuration = false", "SET python_enable_replacements = true",
                    "SET memory_limit = '100GB'", "RESET enable_external_access",
                    "SELECT set_config('enable_external_access', 'true', false)"):
            with pytest.raises(psycopg.errors.UndefinedObject):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.UndefinedFunction):
            conn.execute("SELECT content FROM read_text('/etc/passwd')")
    assert state(path) == before


def test_psql_gets_the_same_refusals(served) -> None:
    srv, path = served
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (make test installs postgresql-client)")
    host, port = srv.address
    before = state(path)
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    base = [psql, "-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-h", host, "-p", str(port), "-U", "ro",
            "-d", "db/exp/a"]
    for sql, call in attacks(path)[:10]:
        out = subprocess.run(base + ["-c", sql], capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode == 1, (sql, out.stdout)
        assert f"ERROR:  42883: function {call} does not exist" in out.stderr, out.stderr
        assert "root:" not in out.stdout + out.stderr and "SCRAM" not in out.stdout + out.stderr
    out = subprocess.run(base + ["-c", "SET enable_external_access = true"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert 'ERROR:  42704: unrecognized configuration parameter "enable_external_access"' in out.stderr
    assert state(path) == before


def test_allowed_sql_still_runs_in_the_sandbox(served) -> None:
    """Vectors over memory-mapped matrices, the media and vector helpers, catalog queries
    and the rewrites that emit DuckDB functions all run with external access off."""
    srv, _ = served
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        got = conn.execute("SELECT id, v <=> '[1,0,0]', l2_norm(v), vector_dims(v), 7 / 2, "
                           "upper(secret) FROM t ORDER BY v <-> '[1,0,0]' LIMIT 2").fetchall()
        assert [r[0] for r in got] == [1, 2] and got[0][1] == pytest.approx(0.0) and got[1][1] == pytest.approx(1.0)
        assert got[0][2] == pytest.approx(1.0) and got[0][3] == 3
        assert got[0][4] == 3 and got[0][5] == "MAIN-ONLY"
        assert conn.execute("SELECT count(*) FROM generate_series(1, 10) g WHERE g % 2 = 0").fetchone() == (5,)
        assert conn.execute("SELECT pg_catalog.format_type(23, -1), current_setting('server_version')"
                            ).fetchone() == ("integer", "16.4")
        assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relname = 't'").fetchone()[0] >= 1
        assert conn.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
                            "SELECT sum(n) FROM r").fetchone() == (6,)


def test_settings_are_an_allow_list(served) -> None:
    srv, path = served
    before = state(path)
    notices: list[str] = []
    with psycopg.connect(conninfo(srv), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        with pytest.raises(psycopg.errors.UndefinedObject, match='unrecognized configuration parameter "nope"'):
            conn.execute("SET nope = 1")
        conn.execute("SET myapp.user_id = 42")  # a placeholder, as in Postgres
        assert conn.execute("SHOW myapp.user_id").fetchone() == ("42",)
        assert conn.execute("SELECT current_setting('myapp.user_id')").fetchone() == ("42",)
        with pytest.raises(psycopg.errors.InvalidName):
            conn.execute("SET reeldb.nope = 1")  # reeldb's prefix is not a placeholder
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            conn.execute("SET server_version = '1'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")
        conn.execute("SET statement_timeout = '3s'")  # honoured
        assert conn.execute("SHOW statement_timeout").fetchone() == ("3s",)  # as PostgreSQL shows it
        conn.execute("SET hnsw.ef_search = 64")
        assert conn.execute("SHOW hnsw.ef_search").fetchone() == ("64",)
        assert notices == []
        conn.execute("SET work_mem = '1GB'")  # Postgres' setting, nothing for reeldb to do: said so
        assert notices and "work_mem" in notices[-1] and "no effect" in notices[-1]
        conn.execute("SET TIME ZONE 'Europe/Paris'")  # not honoured: said so, and SHOW tells the truth
        assert "not honoured" in notices[-1]
        assert conn.execute("SHOW timezone").fetchone() == ("UTC",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE postgres")
    assert state(path) == before


def test_embedded_api_refuses_file_functions_by_default(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    with reeldb.connect(tmp_path / "db") as db:
        with pytest.raises(reeldb.ProgrammingError) as got:
            db.execute(f"SELECT content FROM read_text('{secret}')")
        assert got.value.sqlstate == "42883"
        assert str(got.value) == "function read_text(unknown) does not exist"
        secret_frame = pa.table({"k": ["top secret"]})  # noqa: F841 - what a replacement scan would read
        with pytest.raises(reeldb.ProgrammingError) as got:
            db.execute("SELECT * FROM secret_frame")
        assert got.value.sqlstate == "42P01"


def test_file_access_is_an_opt_in_of_the_embedded_api(tmp_path) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("hello from a file\n")
    (tmp_path / "rows.csv").write_text("a,b\n1,x\n2,y\n")
    with reeldb.connect(tmp_path / "db", file_access=True) as db:
        assert db.execute(f"SELECT content FROM read_text('{data}')").fetchone() == ("hello from a file\n",)
        assert db.execute(f"SELECT sum(a) FROM read_csv('{tmp_path / 'rows.csv'}')").fetchone() == (3,)
        with pytest.raises(reeldb.ProgrammingError):
            db.execute("SELECT getenv('HOME')")  # file access is not a way to the rest of DuckDB
    # the next connection is sandboxed again
    with reeldb.connect(tmp_path / "db") as db, pytest.raises(reeldb.ProgrammingError):
        db.execute(f"SELECT content FROM read_text('{data}')")


def test_the_engine_is_locked_and_has_no_replacement_scans(tmp_path) -> None:
    """Below the SQL layer too: DuckDB itself refuses files, Python variables and changes
    to its configuration, and applies the memory limit it was given."""
    with reeldb.connect(tmp_path / "db") as db:
        db.execute("CREATE TABLE t (id INT, v VECTOR(4))")
        vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
        db.insert("t", {"id": [1, 2], "v": vectors})
        engine = Engine(db.catalog.reader, memory_limit="300MB")
        opted_in = Engine(db.catalog.reader, file_access=True)
        try:
            engine.bind_snapshot(db.catalog.snapshot(db.catalog.head("main")))
            table, _ = engine.arrow("SELECT v FROM t ORDER BY id")  # Arrow over the memory-mapped matrix
            assert np.array_equal(np.array(table.column(0).to_pylist(), dtype=np.float32), vectors)
            assert engine.arrow("SELECT current_setting('memory_limit')")[0].column(0)[0].as_py() == "286.1 MiB"
            # DuckDB's Python client would answer an unknown table name with a variable of the
            # frame that calls it (this one, here): never, in reeldb's engine
            local_frame = pa.table({"k": ["in memory"]})  # noqa: F841 - a replacement scan's target
            for eng in (engine, opted_in):  # even where local files are allowed
                with pytest.raises(duckdb.CatalogException, match="local_frame does not exist"):
                    eng.con.execute("SELECT * FROM local_frame")
            for sql in (f"SELECT * FROM read_text('{tmp_path}/db/_reeldb/refs')",
                        "SET enable_external_access = true", "SET lock_configuration = false",
                        "SET memory_limit = '10GB'", "SET python_enable_replacements = true"):
                with pytest.raises(reeldb.Error):
                    engine.execute(sql)
            assert engine.arrow("SELECT current_setting('enable_external_access')")[0].column(0)[0].as_py() is False
        finally:
            engine.close()
            opted_in.close()


def test_memory_limit_is_applied(tmp_path) -> None:
    with reeldb.connect(tmp_path / "db", memory_limit="64MB") as db:
        with pytest.raises(reeldb.OperationalError) as got:
            db.execute("SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000000)")
        assert got.value.sqlstate == "53200"
        assert db.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(reeldb.DataError):
        reeldb.connect(tmp_path / "db", memory_limit="plenty")
