#!/usr/bin/env python3
"""Run SQLAlchemy's dialect compliance suite (``postgresql+psycopg``) against ``reeldb serve``.

The suite is ``test/dialect/test_suite.py`` of the SQLAlchemy sdist matching the project
venv's SQLAlchemy (downloaded with pip into ``.cache/compat/``), run by pytest in a venv of its
own, ``.cache/compat/venv-sqlalchemy`` (``compat/requirements-sqlalchemy.txt``: psycopg 3 at
the project venv's version, pytest, pytest-timeout). Its conftest imports SQLAlchemy from the
sdist's ``lib/``, as SQLAlchemy's own CI does.

Provisioning is SQLAlchemy's own, none of it stubbed: the database set-up that
README.unittests.rst asks of a PostgreSQL test database (a database ``test``; the schemas
``test_schema`` and ``test_schema_2``), run here over the wire, then the suite's provisioning
at session start (``CREATE EXTENSION IF NOT EXISTS citext`` and ``hstore``, search_path,
pg_stat_activity, pg_prepared_xacts, dropping what a previous run left). When a step fails,
that is a server bug: the runner exits 2 naming the step.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402 (compat/ is not a package)

SCRIPT = Path(__file__).resolve()
REQUIREMENTS = harness.COMPAT / "requirements-sqlalchemy.txt"
# README.unittests.rst, "Database Configuration": what a DBA creates before a run
SETUP_STEPS = ["CREATE SCHEMA test_schema", "CREATE SCHEMA test_schema_2"]
# the suite's own provisioning hooks (sqlalchemy/dialects/postgresql/provision.py and
# sqlalchemy/testing/provision.py), as they appear in a traceback, and what each does
PROVISION_STEPS = {
    "_create_citext_extension": "post_configure_engine: CREATE EXTENSION IF NOT EXISTS "
                                "citext / hstore",
    "_postgresql_set_default_schema_on_connection": "set_default_schema_on_connection: SET "
                                                     "SESSION search_path",
    "prepare_for_drop_tables": "prepare_for_drop_tables: SELECT ... FROM pg_stat_activity",
    "drop_all_schema_objects_pre_tables": "drop_all_schema_objects_pre_tables: SELECT gid "
                                          "FROM pg_prepared_xacts",
    "drop_all_schema_objects_post_tables": "drop_all_schema_objects_post_tables: DROP TYPE "
                                           "of leftover enums",
    "_pg_create_db": "create_db: CREATE DATABASE",
    "drop_all_schema_objects": "drop_all_schema_objects: drop leftover tables, views, "
                               "sequences",
    "_setup_engine": "setup engine: the first connection",
    "post_configure_engine": "post_configure_engine",
    "create_follower_db": "create_follower_db",
}

TEMP_TABLES_UNLISTED = ("temporary tables live in DuckDB, outside pg_class: reflecting one, or every relation "
                        "of a scope that includes them, misses it")

# (regex on "SQLSTATE exception: message" or "id:REGEX" on the test id, reason); first match
# wins. Keep the reasons stable: the expected-failures file is regenerated from them.
CAUSES: list[harness.Cause] = [
    (r"(array parameters of more than one dimension|multi-dimensional arrays) are not supported",
     "a two-dimensional array: reeldb's array columns and text[] parameters are one-dimensional "
     "(0A000)"),
    (r'relation "user_tmp_\w+" already exists',
     "a temporary table left in a pooled connection by ComponentReflectionTest's failed set-up"),
    (r"user_tmp_\w+", TEMP_TABLES_UNLISTED),
    (r"id:ComponentReflectionTest_.*test_(get_temp_table|reflect_table_temp_table)", TEMP_TABLES_UNLISTED),
    (r"id:HasTableTest.*test_has_table_temp_table", TEMP_TABLES_UNLISTED),
    (r"ON (?:DELETE|UPDATE) (?:CASCADE|SET NULL|SET DEFAULT) is not supported",
     "foreign key actions that change other rows (CASCADE, SET NULL, SET DEFAULT) refused (0A000)"),
    (r"indexes on expressions are not supported", "expression indexes refused (0A000)"),
    (r"SERIALIZABLE is not supported",
     "SERIALIZABLE refused (0A000): reeldb transactions are snapshot isolation"),
    (r"FOR UPDATE / FOR SHARE is not supported",
     "SELECT ... FOR UPDATE / FOR SHARE refused (0A000): reeldb takes no row locks"),
    (r"WITH \.\.\. INSERT is not supported", "WITH ... INSERT (a CTE before INSERT) refused (0A000)"),
    (r'relation "some_cte" does not exist',
     "the CTE of a WITH ... UPDATE / DELETE is not seen by the statement (42P01)"),
    (r'column name "_+\w*" is reserved', "column names starting with __ are reserved by reeldb (22023)"),
    (r"month_day_nano_interval|interval columns cannot be written",
     "writes to interval columns refused (0A000): reeldb has no stored form for them yet"),
    (r"make_interval", "make_interval() missing (42883)"),
    (r"InvalidOperation|DECIMAL\(38,\d+\) failed",
     "numeric is not arbitrary precision: many significant digits fail (XX000) or are rounded"),
    (r"id:TrueDivTest|id:JSONTest.*_decimal",
     "numeric is not arbitrary precision: quotients and decimals read from json are rounded"),
    (r"id:ComponentReflectionTest_.*test_column_collation_reflection",
     "column collations are not kept: a COLLATE column reflects with no collation"),
    (r"id:ComponentReflectionTestExtra.*test_string_length_reflection\[CHAR",
     "char(n) columns are stored and reflected as varchar(n)"),
    (r'syntax error at or near "FROM"',
     "a SELECT of no columns (SELECT FROM t) is a DuckDB syntax error (XX000)"),
    (r"#>> of an object or array|path element .* is not supported",
     "json paths: #>> of an object or array, or a negative index, refused (0A000)"),
    (r"id:WindowFunctionTest",
     "window function results come back in another order (the tests rely on PostgreSQL's sort "
     "order without an ORDER BY)"),
    (r"CHECK constraints are not supported",
     "CHECK constraints refused (0A000): the reflection fixtures' tables declare them, so "
     "every test of those classes fails in setup"),
    (r'relation "pg_stat_activity" does not exist',
     "pg_stat_activity missing: the suite's provisioning (prepare_for_drop_tables) queries it "
     "before dropping each test's tables"),
    (r"IDENTITY constraints are not supported", "IDENTITY columns refused (0A000)"),
    (r"cannot write to \"test_schema(?:_2)?\"|'public' != 'test_schema'|"
     r"schema \"test_schema",
     "the schemas test_schema / test_schema_2: CREATE SCHEMA refused, and a schema name is "
     "taken for a branch (read-only from another branch)"),
    (r"CreateSeqStmt|Sequence with name \w+ does not exist",
     "sequences refused (CREATE SEQUENCE, the sequences of SERIAL columns)"),
    (r"CommentStmt", "COMMENT ON refused (0A000)"),
    (r"CreateEnumStmt|DROP TYPE is not supported", "enum types (CREATE TYPE ... AS ENUM) "
                                                   "refused (0A000)"),
    (r"GENERATED constraints are not supported", "generated columns refused (0A000)"),
    (r"array columns are not supported", "array columns refused (0A000)"),
    (r"binary parameters of type OID \d+ are not supported",
     "binary interval / time parameters refused (0A000)"),
    (r"DuplicateTable|already exists",
     "a table left behind by an earlier test's failed teardown: provisioning could not drop it"),
    (r"InFailedSqlTransaction",
     "a statement after an earlier error in the same transaction (25P02)"),
    (r"SET search_path = \w+ is not supported",
     "SET search_path to another schema refused (0A000)"),
    (r'type "timetz" does not exist', "timetz (time with time zone) missing"),
    (r"could not determine data type of parameter",
     "an untyped parameter (IN of a tuple of bound values) gets no type (42P18) where "
     "PostgreSQL infers one"),
    (r"type interval takes no modifiers", "interval with fields or precision (INTERVAL DAY "
                                          "TO SECOND(6)) refused (22023)"),
    (r'syntax error at or near "WITH"', "FETCH FIRST n ROWS WITH TIES is a syntax error"),
    (r"id:HistoricTest|DateTimeMicrosecondsTest|DateTimeTest",
     "dates and times: historic dates, microseconds and time zones differ from PostgreSQL"),
    (r"id:JSONTest|JSONLegacyStringCastIndexTest",
     "json: values sent back typed json are not JSON, or json paths differ"),
]


def installed_version() -> str:
    return importlib.metadata.version("sqlalchemy")


def prepare(version: str) -> tuple[Path, Path]:
    return (harness.ensure_sdist("SQLAlchemy", version, "test/dialect/test_suite.py"),
            harness.ensure_venv("sqlalchemy", REQUIREMENTS))


def database_setup(python: Path, dsn: str, keep_going: bool) -> list[str]:
    """README.unittests.rst's set-up, one statement at a time, each a provisioning step; with
    ``keep_going`` the failures are returned (the run goes on, for diagnosis), else raised."""
    failures = []
    for step in SETUP_STEPS:
        code = ("import sys, psycopg\n"
                "try:\n"
                "    with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
                "        c.execute(sys.argv[2])\n"
                "except psycopg.Error as e:\n"
                "    sys.exit(f'{e.sqlstate} {type(e).__name__}: {e}')\n")
        done = subprocess.run([str(python), "-c", code, dsn, step], capture_output=True,
                              text=True, env=harness.clean_env())
        if done.returncode != 0:
            error = harness.first_line(done.stderr.strip().splitlines()[-1]
                                       if done.stderr.strip() else "")
            failure = (f"provisioning step `{step}` (README.unittests.rst's database set-up) "
                       f"failed: {error}")
            if not keep_going:
                raise harness.SuiteError(failure)
            failures.append(failure)
    return failures


def provisioning_step(log: Path) -> str | None:
    """The provisioning hook a failed session start stopped in, from pytest's traceback."""
    text = log.read_text(errors="replace")
    found = None
    for match in re.finditer(r"in (\w+)\n", text):
        if match.group(1) in PROVISION_STEPS:
            found = match.group(1)
    return PROVISION_STEPS[found] if found else None


def runner(suite: harness.Suite, log: IO[bytes],
           prepared: tuple[Path, Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    sdist, python = prepared
    with open(suite.server_log, "wb") as server_log, \
            harness.fresh_server(suite.database, server_log) as server:
        setup_failures = database_setup(python, server.dsn, suite.extra["keep_going"])
        dburi = f"postgresql+psycopg://127.0.0.1:{server.port}/{suite.database}"
        args = ["test/dialect/test_suite.py", f"--dburi={dburi}", "--maxfail=0",
                "--tb=native"]
        env = {**harness.clean_env(), "PYTHONUNBUFFERED": "1"}
        results, problems = harness.run_children(
            suite, harness.pytest_child(python, args, sdist, env, suite), log)
    if problems and not results:
        log.flush()
        step = provisioning_step(Path(log.name))
        where = f"provisioning step `{step}`" if step else "the session start"
        raise harness.SuiteError(f"{where} failed: {'; '.join(problems)} (traceback in "
                                 f"{harness.rel(Path(log.name))})")
    return results, setup_failures + problems


def main(argv: list[str] | None = None) -> int:
    version = installed_version()
    suite = harness.Suite(name="sqlalchemy",
                          title=f"SQLAlchemy {version}'s dialect compliance suite",
                          version=version, database="test", causes=CAUSES,
                          per_test_timeout=60.0, run_timeout=2400.0, watchdog_grace=30.0)
    parser = harness.parser_for(suite, __doc__.split("\n\n")[0])
    parser.add_argument("--keep-going", action="store_true",
                        help="for diagnosis: run the suite even when a database set-up step "
                             "fails (the exit status stays 2)")
    args = parser.parse_args(argv)
    suite.extra["keep_going"] = args.keep_going
    return harness.main_flow(suite, args, SCRIPT, lambda: prepare(version), runner)


if __name__ == "__main__":
    sys.exit(main())
