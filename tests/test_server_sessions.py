"""What drivers and pools read and do at connection time, against a real `reeldb serve`:
pg_stat_activity with this server's sessions and PostgreSQL's rights, pg_terminate_backend
and pg_cancel_backend, the idle timeouts, pg_settings beside SHOW, isolation levels and
search_path. Answers are PostgreSQL 16's (checked on a real 16.2 server)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

import reeldb
from reeldb.server import users
from reeldb.server.server import BackgroundServer
from reeldb.storage import open_store

psycopg = pytest.importorskip("psycopg")
psycopg2 = pytest.importorskip("psycopg2")
sqlalchemy = pytest.importorskip("sqlalchemy")

PASSWORDS = {"alice": "a-pw", "bob": "b-pw", "root": "r-pw"}
SLOW = "SELECT count(*) FROM generate_series(1, 100000000000) a, generate_series(1, 10) b WHERE a % 7 = b"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = tmp_path_factory.mktemp("sessions") / "studio"
    db = reeldb.connect(path)
    db.execute("CREATE TABLE clips (id INT PRIMARY KEY, note TEXT)")
    db.branch("exp", checkout=False)
    db.close()
    store = open_store(str(path), create=False)
    users.add_user(store, "alice", PASSWORDS["alice"])
    users.add_user(store, "bob", PASSWORDS["bob"])
    users.add_user(store, "root", PASSWORDS["root"], admin=True)
    srv = BackgroundServer(str(path), port=0, max_connections=32)
    yield srv
    srv.stop()


def dsn(server, user: str) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=studio user={user} password={PASSWORDS[user]}"


def connect(server, user: str, **extra: str):
    return psycopg.connect(dsn(server, user), autocommit=True, **extra)


def local_port(conn) -> int:
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def activity(conn) -> dict[int, dict]:
    cur = conn.execute("SELECT * FROM pg_stat_activity")
    names = [d.name for d in cur.description]
    return {row[names.index("pid")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- pg_stat_activity -------------------------------------------------------------------------
def test_pg_stat_activity_lists_the_servers_sessions_with_their_states(server) -> None:
    with connect(server, "alice", application_name="etl") as me, connect(server, "alice") as mine, \
            connect(server, "bob") as other:
        mine.autocommit = False
        mine.execute("SELECT 1")  # psycopg opens a transaction: idle in transaction
        other.execute("SELECT 2")
        rows = activity(me)
        assert set(rows) >= {me.info.backend_pid, mine.info.backend_pid, other.info.backend_pid}
        own = rows[me.info.backend_pid]
        assert own["state"] == "active" and own["query"] == "SELECT * FROM pg_stat_activity"
        assert own["usename"] == "alice" and own["datname"] == "studio" and own["application_name"] == "etl"
        assert own["backend_type"] == "client backend" and own["client_addr"] == "127.0.0.1"
        assert own["client_port"] == local_port(me)
        assert own["backend_start"] <= own["query_start"] and own["xact_start"] == own["query_start"]
        same = rows[mine.info.backend_pid]
        assert (same["state"], same["query"]) == ("idle in transaction", "SELECT 1")
        assert same["xact_start"] is not None and same["wait_event"] == "ClientRead"
        # another user's session: who and where only, as PostgreSQL shows it to a non-superuser
        theirs = rows[other.info.backend_pid]
        assert theirs["usename"] == "bob" and theirs["datname"] == "studio"
        assert theirs["query"] == "<insufficient privilege>"
        for hidden in ("state", "client_addr", "client_port", "backend_start", "xact_start", "query_start",
                       "state_change", "backend_type"):
            assert theirs[hidden] is None, hidden
        with pytest.raises(psycopg.errors.SyntaxError):
            mine.execute("SELEC 1")
        rows = activity(me)
        assert rows[mine.info.backend_pid]["state"] == "idle in transaction (aborted)"
        mine.rollback()
        rows = activity(me)
        assert rows[mine.info.backend_pid]["state"] == "idle"
        assert rows[mine.info.backend_pid]["xact_start"] is None


def test_an_admin_sees_every_sessions_details(server) -> None:
    with connect(server, "root") as admin, connect(server, "bob") as other:
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM clips")
        row = activity(admin)[other.info.backend_pid]
        assert (row["state"], row["query"]) == ("idle in transaction", "SELECT count(*) FROM clips")
        assert row["client_port"] == local_port(other) and row["backend_type"] == "client backend"
        # extended protocol: the prepared statement's text
        other.execute("SELECT %s::int", [7])
        assert activity(admin)[other.info.backend_pid]["query"] == "SELECT $1::int"


def test_psql_reads_pg_stat_activity(server) -> None:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run(
        [exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "alice", "-d", "studio", "-c",
         "SELECT usename, state, backend_type, pid = pg_backend_pid() FROM pg_stat_activity "
         "WHERE pid = pg_backend_pid()"],
        env={**os.environ, "PGPASSWORD": PASSWORDS["alice"]}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alice|active|client backend|t"
    out = subprocess.run(  # psql 16's \dconfig+ reads pg_settings beside pg_parameter_acl
        [exe, "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", "alice", "-d", "studio", "-c",
         "SET work_mem = '64MB'", "-c", r"\dconfig+ work_mem"],
        env={**os.environ, "PGPASSWORD": PASSWORDS["alice"]}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SET", "work_mem|64MB|integer|user|"]


# -- pg_terminate_backend / pg_cancel_backend ----------------------------------------------------
def test_terminating_another_users_session_needs_the_admin_right(server) -> None:
    with connect(server, "alice") as me, connect(server, "bob") as victim, connect(server, "root") as admin:
        victim.execute("BEGIN")
        victim.execute("INSERT INTO clips VALUES (1, 'kept')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="^permission denied to terminate process"):
            me.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="^permission denied to cancel query"):
            me.execute("SELECT pg_cancel_backend(%s)", [victim.info.backend_pid])
        victim.execute("COMMIT")  # nothing happened to it
        assert victim.execute("SELECT note FROM clips WHERE id = 1").fetchone() == ("kept",)
        # the admin may; the victim's open transaction is rolled back, and it gets 57P01
        victim.execute("BEGIN")
        victim.execute("INSERT INTO clips VALUES (2, 'lost')")
        assert admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid]).fetchone() == (True,)
        with pytest.raises(psycopg.errors.AdminShutdown, match="terminating connection due to administrator command"):
            victim.execute("COMMIT")
        assert victim.closed or victim.broken
        wait_until(lambda: victim.info.backend_pid not in activity(admin))
        assert admin.execute("SELECT count(*) FROM clips WHERE id = 2").fetchone() == (0,)
        admin.execute("DELETE FROM clips")


def test_a_user_terminates_its_own_other_session_with_psycopg2(server) -> None:
    me = psycopg2.connect(dsn(server, "alice"))
    other = psycopg2.connect(dsn(server, "alice"))
    me.autocommit = other.autocommit = True
    pid = other.get_backend_pid()
    try:
        with me.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert cur.fetchone() == (True,)
        # as against PostgreSQL: libpq reports the closed socket, not the FATAL before it
        with pytest.raises(psycopg2.OperationalError, match="server closed the connection unexpectedly"), \
                other.cursor() as cur:
            cur.execute("SELECT 1")
        assert other.closed
        with me.cursor() as cur:  # the caller goes on, and the session leaves the list

            def gone() -> bool:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                return cur.fetchone() == (0,)

            wait_until(gone)
    finally:
        me.close()
        other.close()


def test_an_unknown_pid_is_a_warning_and_false(server) -> None:
    with connect(server, "alice") as me:
        said: list[tuple[str, str, str]] = []
        me.add_notice_handler(lambda d: said.append((d.severity, d.sqlstate, d.message_primary)))
        assert me.execute("SELECT pg_terminate_backend(12345), pg_cancel_backend(12345)").fetchone() == (False, False)
        assert said == [("WARNING", "01000", "PID 12345 is not a PostgreSQL backend process")] * 2
        assert me.execute("SELECT pg_terminate_backend(NULL)").fetchone() == (None,)
        with pytest.raises(psycopg.errors.NumericValueOutOfRange, match='"timeout" must not be negative'):
            me.execute("SELECT pg_terminate_backend(12345, -1)")


def test_terminate_with_a_timeout_waits_for_the_session_to_end(server) -> None:
    with connect(server, "root") as admin, connect(server, "alice") as victim:
        pid = victim.info.backend_pid
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone() == (True,)
        assert pid not in activity(admin)  # gone already: no wait here


def test_terminate_the_sessions_a_query_selects(server) -> None:
    with connect(server, "root") as admin, connect(server, "alice") as me, connect(server, "bob") as one, \
            connect(server, "bob") as two:
        bobs = sorted([one.info.backend_pid, two.info.backend_pid])
        # a login without the admin right: refused at bob's first row, nothing of bob's touched
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="^permission denied to terminate process"):
            me.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'bob'")
        assert one.execute("SELECT 1").fetchone() == (1,) and two.execute("SELECT 1").fetchone() == (1,)
        got = admin.execute("SELECT pid, pg_terminate_backend(pid) AS gone FROM pg_stat_activity "
                            "WHERE usename = %s ORDER BY pid", ["bob"])
        assert [d.name for d in got.description] == ["pid", "gone"]
        assert got.fetchall() == [(bobs[0], True), (bobs[1], True)]
        for conn in (one, two):
            with pytest.raises(psycopg.errors.AdminShutdown):
                conn.execute("SELECT 1")
        assert admin.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = -1").fetchall() == []
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="at most 10000 sessions"):
            admin.execute("SELECT pg_cancel_backend(x) FROM generate_series(1, 10001) x")
        # inside another expression it is refused, and nothing is signalled
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="pg_terminate_backend"):
            admin.execute("SELECT NOT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'alice'")
        assert me.execute("SELECT 1").fetchone() == (1,)


def test_asyncpg_terminates_by_parameter(server) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    host, port = server.address

    async def run() -> None:
        admin = await asyncpg.connect(host=host, port=port, database="studio", user="root", password=PASSWORDS["root"])
        victim = await asyncpg.connect(host=host, port=port, database="studio", user="bob", password=PASSWORDS["bob"])
        try:
            # asyncpg encodes $1 by the type the server describes: int4, as PostgreSQL's
            assert await admin.fetchval("SELECT pg_terminate_backend($1, $2)", victim.get_server_pid(), 2000) is True
            await asyncio.sleep(0.1)
            with pytest.raises(asyncpg.exceptions.InterfaceError, match="connection is closed"):  # as against PostgreSQL
                await victim.fetchval("SELECT 1")
            assert await admin.fetchval("SELECT set_config('work_mem', $1, $2)", "8MB", False) == "8MB"
        finally:
            await admin.close()
            await victim.close()

    asyncio.run(run())


def test_explain_signals_nothing(server) -> None:
    with connect(server, "root") as admin, connect(server, "bob") as other:
        pid = other.info.backend_pid
        admin.execute("EXPLAIN SELECT pg_terminate_backend(%s)", [pid])
        admin.execute("EXPLAIN SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s", [pid])
        assert other.execute("SELECT 1").fetchone() == (1,)


def test_terminating_itself_closes_the_connection(server) -> None:
    with connect(server, "bob") as me, pytest.raises(psycopg.errors.AdminShutdown):
        me.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_cancel_interrupts_a_running_statement_and_the_session_goes_on(server) -> None:
    with connect(server, "root") as admin, connect(server, "bob") as busy:
        failed: list[BaseException] = []

        def run() -> None:
            try:
                busy.execute(SLOW)
            except BaseException as e:  # noqa: BLE001 - checked below
                failed.append(e)

        worker = threading.Thread(target=run)
        worker.start()
        wait_until(lambda: activity(admin)[busy.info.backend_pid]["state"] == "active")
        assert activity(admin)[busy.info.backend_pid]["query"] == SLOW
        assert admin.execute("SELECT pg_cancel_backend(%s)", [busy.info.backend_pid]).fetchone() == (True,)
        worker.join(30)
        assert len(failed) == 1 and isinstance(failed[0], psycopg.errors.QueryCanceled)
        assert busy.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.errors.QueryCanceled):  # its own statement
            busy.execute("SELECT pg_cancel_backend(pg_backend_pid())")


def test_a_pool_replaces_a_terminated_connection(server) -> None:
    host, port = server.address
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://bob:{PASSWORDS['bob']}@{host}:{port}/studio", pool_size=1, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with connect(server, "root") as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
            wait_until(lambda: pid not in activity(admin))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        engine.dispose()


# -- idle timeouts ------------------------------------------------------------------------------
def test_idle_in_transaction_session_timeout_closes_and_rolls_back(server) -> None:
    with connect(server, "alice") as conn:
        conn.execute("SET idle_in_transaction_session_timeout = 300")
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("300ms",)
        conn.execute("SELECT 1")
        time.sleep(0.5)  # idle outside a transaction: not closed
        conn.execute("BEGIN")
        conn.execute("INSERT INTO clips VALUES (3, 'never')")
        time.sleep(0.6)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout,
                           match="terminating connection due to idle-in-transaction timeout"):
            conn.execute("COMMIT")
    with connect(server, "alice") as conn:
        assert conn.execute("SELECT count(*) FROM clips WHERE id = 3").fetchone() == (0,)


def test_idle_session_timeout_closes_an_idle_session(server) -> None:
    with connect(server, "alice") as conn:
        conn.execute("SET idle_session_timeout = '300ms'")
        time.sleep(0.6)
        with pytest.raises(psycopg.errors.IdleSessionTimeout, match="idle-session timeout"):
            conn.execute("SELECT 1")


# -- pg_settings ------------------------------------------------------------------------------
def test_pg_settings_agrees_with_show_and_current_setting(server) -> None:
    host, port = server.address
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://alice:{PASSWORDS['alice']}@{host}:{port}/studio?application_name=tool")
    try:
        with engine.connect() as conn:
            sql = conn.exec_driver_sql
            assert sql("SHOW application_name").scalar() == "tool"
            sql("SET work_mem = 65536")
            # long enough that the SHOW of every setting below never meets it on a loaded machine
            sql("SET statement_timeout = '90.5s'")
            assert sql("SHOW work_mem").scalar() == "64MB"
            assert sql("SELECT current_setting('statement_timeout')").scalar() == "90500ms"
            rows = {r[0]: r[1:] for r in sql(
                "SELECT name, setting, unit, vartype, source, min_val, max_val, boot_val, reset_val, context "
                "FROM pg_settings WHERE name IN ('work_mem', 'statement_timeout', 'TimeZone', 'max_connections', "
                "'idle_in_transaction_session_timeout', 'plan_cache_mode', 'application_name')")}
            assert rows["work_mem"] == ("65536", "kB", "integer", "session", "64", "2147483647", "4096", "4096",
                                        "user")
            assert rows["statement_timeout"] == ("90500", "ms", "integer", "session", "0", "2147483647", "0", "0",
                                                 "user")
            assert rows["TimeZone"][:4] == ("UTC", None, "string", "default")
            assert rows["max_connections"][:4] == ("32", None, "integer", "command line")
            assert rows["max_connections"][-1] == "postmaster"
            assert rows["idle_in_transaction_session_timeout"][:2] == ("0", "ms")
            assert rows["application_name"][:4] == ("tool", None, "string", "client")
            enumvals = sql("SELECT enumvals FROM pg_settings WHERE name = 'plan_cache_mode'").scalar()
            assert enumvals == ["auto", "force_generic_plan", "force_custom_plan"]
            # every setting pg_settings lists is one SHOW knows, with the same value where unitless,
            # and SHOW ALL lists the same ones with the same values as SHOW
            show_all = {name: (setting, about) for name, setting, about in sql("SHOW ALL").fetchall()}
            listed = sql("SELECT name, setting, unit, short_desc FROM pg_settings").fetchall()
            assert set(show_all) == {name for name, *_ in listed} and "DateStyle" in show_all
            for name, setting, unit, about in listed:
                shown = sql(f'SHOW "{name}"').scalar()
                assert show_all[name] == (shown, about), name
                if unit is None:
                    assert shown == setting, name
            assert sql("SELECT set_config('work_mem', '1GB', false)").scalar() == "1GB"
            assert sql("SELECT setting FROM pg_settings WHERE name = 'work_mem'").scalar() == "1048576"
    finally:
        engine.dispose()


def test_settings_sent_when_connecting_are_applied(server) -> None:
    opts = r"-c work_mem=64MB --idle-session-timeout=1min -c search_path=nowhere,\ public"
    with connect(server, "alice", application_name="loader", options=opts) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("64MB",)
        assert conn.execute("SHOW search_path").fetchone() == ("nowhere, public",)
        conn.execute("SET work_mem = '1MB'")
        conn.execute("RESET ALL")  # back to what the client connected with, as in PostgreSQL
        rows = conn.execute("SELECT name, setting, source, reset_val FROM pg_settings WHERE name IN "
                            "('application_name', 'work_mem', 'idle_session_timeout') ORDER BY name").fetchall()
        assert rows == [("application_name", "loader", "client", "loader"),
                        ("idle_session_timeout", "60000", "client", "60000"),
                        ("work_mem", "65536", "client", "65536")]
    for options, message in [("-c work_mem=1", 'outside the valid range for parameter "work_mem"'),
                             ("-c nonsense=1", 'unrecognized configuration parameter "nonsense"'),
                             ("-B 10", "invalid command-line argument for server process: -B"),
                             ("-c search_path=exp,public", 'SET search_path = exp,public is not supported'),
                             ("-c reeldb.branch=exp", "name the branch in the database")]:
        with pytest.raises(psycopg.OperationalError, match=re.escape(message)):
            connect(server, "alice", options=options)
    # psql in a C locale says SQL_ASCII: no conversion, as PostgreSQL does for it (psycopg then
    # hands text over as bytes, as it does from PostgreSQL)
    with connect(server, "alice", client_encoding="SQL_ASCII") as conn:
        assert conn.execute("SHOW client_encoding").fetchone() == (b"SQL_ASCII",)
    with connect(server, "alice", client_encoding="LATIN1") as conn:  # converted on the wire
        assert conn.execute("SELECT 'caf\u00e9'").fetchone() == ("caf\u00e9",)
    with pytest.raises(psycopg.OperationalError, match='invalid value for parameter "client_encoding"'):
        connect(server, "alice", client_encoding="NO_SUCH_ENCODING")


def test_a_changed_application_name_is_reported_to_the_client(server) -> None:
    with connect(server, "alice", application_name="a0") as conn:
        status = lambda: conn.info.parameter_status("application_name")  # noqa: E731
        seen = [status()]
        conn.execute("SET application_name = 'a1'")
        seen.append(status())
        conn.execute("BEGIN")
        conn.execute("SET application_name = 'a2'")
        seen.append(status())
        conn.execute("ROLLBACK")
        seen.append(status())
        conn.execute("RESET application_name")
        seen.append(status())
        assert seen == ["a0", "a1", "a2", "a1", "a0"]  # as PostgreSQL 16 reports them


def test_settings_are_checked_as_postgresql_checks_them(server) -> None:
    with connect(server, "alice") as conn:
        for statement, error in [
            ("SET work_mem = 1", '1 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)'),
            ("SET work_mem = 'abc'", 'invalid value for parameter "work_mem": "abc"'),
            ("SET enable_seqscan = 'maybe'", 'parameter "enable_seqscan" requires a Boolean value'),
            ("SET plan_cache_mode = 'x'", 'invalid value for parameter "plan_cache_mode": "x"'),
            ("SET idle_session_timeout = '5 fortnights'",
             'invalid value for parameter "idle_session_timeout": "5 fortnights"'),
        ]:
            with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
                conn.execute(statement)
            assert e.value.diag.message_primary.startswith(error)
        assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)  # nothing changed
        conn.execute("SET plan_cache_mode = 'FORCE_GENERIC_PLAN'")
        assert conn.execute("SHOW plan_cache_mode").fetchone() == ("force_generic_plan",)
        conn.execute("SET vacuum_cost_delay = 2.5")
        assert conn.execute("SHOW vacuum_cost_delay").fetchone() == ("2500us",)


def test_set_is_transactional_as_in_postgresql(server) -> None:
    """Each SHOW below gives what PostgreSQL 16.2 gave for the same script."""
    with connect(server, "alice") as conn:
        said: list[tuple[str, str]] = []
        conn.add_notice_handler(lambda d: said.append((d.severity, d.message_primary)))
        show = lambda: conn.execute("SHOW work_mem").fetchone()[0]  # noqa: E731
        conn.execute("SET LOCAL work_mem = '8MB'")  # outside a transaction: a warning, no effect
        assert show() == "4MB" and said == [("WARNING", "SET LOCAL can only be used in transaction blocks")]
        script = [
            (["BEGIN", "SET work_mem = '16MB'", "ROLLBACK"], "4MB"),
            (["BEGIN", "SET LOCAL work_mem = '32MB'", "COMMIT"], "4MB"),
            (["BEGIN", "SET work_mem = '16MB'", "SAVEPOINT a", "SET work_mem = '64MB'", "ROLLBACK TO a"], "16MB"),
            (["COMMIT"], "16MB"),
            (["BEGIN", "SET LOCAL work_mem = '32MB'", "SET work_mem = '2MB'", "COMMIT"], "2MB"),
            (["BEGIN", "SET work_mem = '8MB'", "SET LOCAL work_mem = '32MB'", "COMMIT"], "8MB"),
            (["BEGIN", "SELECT set_config('work_mem', '100MB', true)", "COMMIT"], "8MB"),
            (["BEGIN", "SET work_mem = '1MB'", "SELEC 1"], None),  # a failed transaction ...
            (["COMMIT"], "8MB"),  # ... rolls its SETs back with it
            (["BEGIN", "SET statement_timeout = '5s'", "SET idle_session_timeout = '1min'", "ROLLBACK"], "8MB"),
        ]
        for statements, expected in script:
            for statement in statements:
                try:
                    conn.execute(statement)
                except psycopg.errors.SyntaxError:
                    pass
            if expected is not None:
                assert show() == expected, statements
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert conn.execute("SHOW idle_session_timeout").fetchone() == ("0",)


# -- isolation levels -------------------------------------------------------------------------
def test_isolation_levels_with_psycopg2(server) -> None:
    from psycopg2 import extensions

    conn = psycopg2.connect(dsn(server, "alice"))
    try:
        for level, shown in [(extensions.ISOLATION_LEVEL_READ_UNCOMMITTED, "read uncommitted"),
                             (extensions.ISOLATION_LEVEL_READ_COMMITTED, "read committed"),
                             (extensions.ISOLATION_LEVEL_REPEATABLE_READ, "repeatable read")]:
            conn.set_session(isolation_level=level)
            with conn.cursor() as cur:
                cur.execute("SHOW transaction_isolation")
                assert cur.fetchone() == (shown,)
            conn.rollback()
        conn.set_session(isolation_level=extensions.ISOLATION_LEVEL_SERIALIZABLE)
        with pytest.raises(psycopg2.errors.FeatureNotSupported, match="SERIALIZABLE"), conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
    finally:
        conn.close()
    with connect(server, "alice") as conn:
        for statement in ("SET default_transaction_isolation = 'serializable'",
                          "BEGIN ISOLATION LEVEL SERIALIZABLE",
                          "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"):
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="SERIALIZABLE"):
                conn.execute(statement)
            conn.execute("ROLLBACK")
        assert conn.execute("SHOW default_transaction_isolation").fetchone() == ("repeatable read",)


# -- search_path ------------------------------------------------------------------------------
def test_search_path_is_honoured_or_refused(server) -> None:
    with connect(server, "alice") as conn:
        conn.execute("SET search_path TO nowhere, public")  # no such schema: skipped, as PostgreSQL does
        assert conn.execute("SHOW search_path").fetchone() == ("nowhere, public",)
        assert conn.execute("SELECT count(*) FROM clips").fetchone() is not None
        assert conn.execute("SELECT current_schemas(false), current_schemas(true)").fetchone() == (
            ["public"], ["pg_catalog", "public"])
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='"exp"'):
            conn.execute("SET search_path TO exp, public")  # a branch: resolution would differ
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='"public"'):
            conn.execute("SET search_path TO nowhere")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='"information_schema"'):
            conn.execute("SET search_path TO information_schema, public")  # its views would shadow tables
        with pytest.raises(psycopg.errors.FeatureNotSupported, match='"pg_catalog" before "public"'):
            conn.execute("SET search_path TO public, pg_catalog")
        assert conn.execute("SHOW search_path").fetchone() == ("nowhere, public",)  # unchanged
        conn.execute('SET search_path TO "$user", public')
        assert conn.execute("SELECT current_setting('search_path')").fetchone() == ('"$user", public',)


# -- embedded ---------------------------------------------------------------------------------
def test_embedded_pg_stat_activity_is_the_one_session(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "embedded")
    try:
        rows = db.execute("SELECT pid, state, query, backend_type FROM pg_stat_activity").fetchall()
        assert rows == [(db.execute("SELECT pg_backend_pid()").fetchone()[0], "active",
                         "SELECT pid, state, query, backend_type FROM pg_stat_activity", "client backend")]
        assert db.execute("SELECT pg_cancel_backend(1)").fetchone() == (False,)
    finally:
        db.close()
