#!/usr/bin/env python3
"""Run psycopg 3.3.4's own test suite against ``reeldb serve`` and judge it against a list.

psycopg's PyPI sdist has no tests: the suite is the ``tests/`` folder of the git tag 3.3.4,
from the GitHub archive of the tag, extracted into ``.cache/compat/psycopg-3.3.4/`` (only
``tests/`` and ``psycopg/pyproject.toml`` are needed). Where the archive cannot be downloaded,
the runner exits 2 naming the URL and the folder to put it in. It runs with pytest
(``--test-dsn`` naming a fresh database ``psycopg_test``) in a venv of its own,
``.cache/compat/venv-psycopg3``, built from ``compat/requirements-psycopg3.txt``:
``psycopg[binary]==3.3.4`` and its ``test`` extra less mypy and pytest-cov (type checking and
coverage say nothing about a server) and pytest-randomly (a fixed order keeps outcomes
comparable from run to run), plus pytest-timeout and numpy (its numpy adapter tests).
Left out: ``tests/pool`` (psycopg_pool is a separate package whose source is not in the tests
folder) and the tests that run mypy (marker ``mypy``: type checks say nothing about a server).
The pass rate counts the tests that talk to the server: passed / (passed + failed + errors);
skipped tests (other platforms, CockroachDB, missing optional modules) are not counted.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402 (compat/ is not a package)

SCRIPT = Path(__file__).resolve()
VERSION = "3.3.4"
URL = f"https://github.com/psycopg/psycopg/archive/refs/tags/{VERSION}.tar.gz"
TREE = harness.CACHE / f"psycopg-{VERSION}"
REQUIREMENTS = harness.COMPAT / "requirements-psycopg3.txt"

# (regex on "SQLSTATE exception: message" or "id:REGEX" on the test id, reason); first match
# wins. Keep the reasons stable: the expected-failures file is regenerated from them.
TYPES = r"(?:type \"|Type with name |function )"
CAUSES: list[harness.Cause] = [
    (r"CreateEnumStmt|CompositeTypeStmt|CreateRangeStmt|DROP TYPE is not supported",
     "user-defined types refused (0A000): CREATE TYPE ... AS ENUM / AS (...) / AS RANGE, "
     "DROP TYPE"),
    (r"COPY format 'binary' is not supported",
     "COPY ... (FORMAT BINARY) refused (0A000): psycopg's binary copy, and its typed loaders, "
     "use it"),
    (r"binary (?:parameters|output) of type OID \d+ (?:are|is) not supported|"
     r"failed insert: binary parameters",
     "binary format of time / timetz / interval refused (0A000): as parameters, and as "
     "results a client asks for in binary"),
    (r"CreateSchemaStmt", "CREATE SCHEMA refused (0A000)"),
    *harness.either(TYPES + r"(?:inet|cidr)\b", r"types/test_net\.py",
                    "inet / cidr types missing (DuckDB's inet extension is not built in)"),
    *harness.either(r'client encoding "[^"]+" is not supported', r"test_encoding",
                    "client encodings other than UTF8 refused (0A000): reeldb speaks UTF8 only"),
    *harness.either(r"max_prepared_transactions|PREPARE TRANSACTION", r"test_tpc",
                    "two-phase commit missing (max_prepared_transactions, PREPARE TRANSACTION)"),
    *harness.either(r"OverflowError|date value out of range|out of range for|BC\b",
                    r"test_overflow",
                    "date / timestamp edge values (infinity, year 1 minus a day, BC, past 9999) fail, some "
                    "with an internal OverflowError (XX000)"),
    *harness.either(TYPES + r"timetz", r"TestTimeTz",
                    "timetz (time with time zone) missing or loaded as time"),
    (r"array columns are not supported",
     "array columns refused (0A000): tables with text[] / int[] columns, as psycopg's COPY "
     "and array tests create"),
    *harness.either(r"DECIMAL\(|InvalidOperation|\"NaN\" to DECIMAL",
                    r"types/test_numeric\.py|test_numpy\.py",
                    "numeric is not arbitrary precision: 38 digits at most, NaN and Infinity refused, an "
                    "unconstrained NUMERIC keeps 10 places and numeric expressions are DECIMAL(38,10)"),
    (r"Could not convert string '[^']*' to UINT32",
     "::regtype of a type name (pg_typeof(%s)::regtype = 'int4'::regtype) is refused: "
     "psycopg checks parameter types that way"),
    (r"Unimplemented type for cast \(BIGINT\[\] -> INTEGER\)|"
     r"of type integer but the value is of type list",
     "generate_series(1, n) in a select list returns one list, not n rows (DuckDB's "
     "generate_series is a list function there): ::int4 of it, or inserting it, fails"),
    (r"\+\((?:DATE, BIGINT|STRING_LITERAL, INTEGER)\)",
     "date + integer with an untyped or bigint operand fails (DuckDB's operator lookup)"),
    (r"SELECT clause without selection list",
     "SELECT with an empty target list (select from t) refused (42601): PostgreSQL returns "
     "rows of no columns"),
    (r"set_byte", "set_byte() missing (42883)"),
    (r"Expecting (?:value|property name)|Invalid control character|JSONDecodeError",
     "a column typed json on the wire whose text is not JSON: e.g. an array of booleans "
     "sent as '{NULL,f,NULL}' under the json OID, so psycopg's json loader fails"),
    (r"id:types/test_hstore\.py::test_roundtrip",
     "an hstore parameter echoed by SELECT %s comes back typed text: a result column's type is "
     "DuckDB's, not the parameter's OID, so register_hstore's loader never sees it"),
    (r"id:types/test_json\.py",
     "json / jsonb: values and arrays of them are not sent back as PostgreSQL writes them"),
    (r"columns of composite type .* are not supported",
     "table columns of a composite type refused (0A000): composite values live in queries only"),
    (r"composite types with no fields are not supported",
     "composite types with no fields (CREATE TYPE t AS ()) refused (0A000)"),
    (r"arrays of enum types are not supported",
     "table columns of an enum's array type (mood[]) refused (0A000)"),
    (r"Cannot combine types TUPLE",
     "records of different widths in one column (VALUES (row(1)), (row(1, 2))): DuckDB cannot "
     "combine the two row types"),
    *harness.either(r"malformed array literal|more than one dimension", r"types/test_array\.py",
                    "arrays: explicit bounds ([0:1]={a,b}), more than one dimension, or element text "
                    "differ from PostgreSQL"),
    (r"id:test_column\.py",
     "column metadata: type modifiers (varchar(n), numeric(p,s), time(p), bit) are not "
     "reported as PostgreSQL does"),
    (r"pg_terminate_backend|pg_stat_activity|pg_tables|pg_cancel_backend",
     "server catalog / admin functions missing (pg_stat_activity, pg_tables, "
     "pg_terminate_backend)"),
    (r"DoStmt|PL/pgSQL|plpgsql", "DO blocks and PL/pgSQL functions missing (server NOTICEs "
                                 "come from them)"),
    (r"FOREIGN (?:KEY )?constraints are not supported",
     "FOREIGN KEY constraints refused (0A000)"),
    (r"SERIALIZABLE is not supported",
     "SERIALIZABLE refused (0A000): reeldb transactions are snapshot isolation"),
    (TYPES + r"(?:oid|varbit|bit|box|point|money|xml|regclass)\b",
     "other types missing (oid, bit, varbit, box, ...)"),
    (r"InFailedSqlTransaction|INTRANS.*INERROR|INERROR",
     "transaction state after an error: INTRANS reported where PostgreSQL reports INERROR"),
    *harness.either(r"standard_conforming_strings|escape_string_warning", r"test_escap",
                    "standard_conforming_strings = off is not honoured (stays on)"),
    (r"id:TestDateTimeTz|TestDatetime|TestDate\b|TestTime\b|TestInterval|"
     r"types/test_datetime\.py",
     "dates and times: time zones, offsets, datestyles and intervals differ from PostgreSQL"),
    (r"invalid literal for int\(\) with base 10: '\d+\)\['",
     "internal error (XX000) describing an array of a type with modifiers (numeric(10,3)[])"),
    (r"CopyStmt statements are not supported",
     "COPY sent through the extended query protocol refused (0A000)"),
    (r"id:test_binary_cursor_execute|test_execute_binary",
     "binary results: an int2 value comes back as int4 (4 bytes where psycopg expects 2)"),
    (r"ArrowNotImplementedError",
     "internal error (XX000) storing a column of values Arrow cannot write (Unhandled type for "
     "Arrow to Parquet): psycopg's leak tests insert numpy ints, UUIDs, floats that way"),
    (r"ParserException",
     "internal error (XX000): a DuckDB parser error escapes instead of PostgreSQL's 42601"),
    (r"CHECK constraints are not supported", "CHECK constraints refused (0A000)"),
    (r"proxy didn't start listening",
     "needs tools/pproxy_fix.py of psycopg's repository (its proxy for cancel and "
     "closed-connection tests): absent from a tree holding only tests/"),
    (r"id:test_dump_zero\[b\]",
     "a NUL character in a binary text parameter is accepted: PostgreSQL refuses it (22021)"),
    (r"id:test_dump_text_oid|test_return_untyped",
     "parameter types: an untyped or text-typed parameter gets a type where PostgreSQL "
     "refuses (42P18 could not determine data type, 42804)"),
    (r"id:test_singletons\[time with time zone",
     "timetz (time with time zone) missing or loaded as time"),
    (r"id:test_quote_stable_despite_deranged_libpq\[off\]|test_quote_roundtrip\[off\]",
     "standard_conforming_strings = off is not honoured (stays on)"),
    (r"id:test_errors\.py::test_query_context",
     "error responses lack the statement position / context fields PostgreSQL sends"),
    (r"id:test_connection_info\.py::test_timezone",
     "the TimeZone parameter reported at connection differs from PostgreSQL's"),
    (r"id:test_pipeline|test_generators\.py::test_pipeline",
     "pipeline mode: the results, errors or message flow of pipelined statements differ"),
    (r"id:test_broken_connection",
     "pg_terminate_backend(pg_backend_pid()) missing: the connection is not closed by the "
     "server"),
    (r"id:test_concurrency",
     "cancel, interrupts and backend termination (Ctrl-C, pg_cancel_backend, "
     "pg_terminate_backend) behave differently"),
    (r"id:test_copy", "COPY: error handling, typed loaders or formats differ from PostgreSQL"),
    (r"id:test_notify", "LISTEN / NOTIFY missing or different"),
    (r"id:pq/", "libpq-level protocol behaviour differs (pq tests: results, resets, escapes)"),
]


def ensure_tree() -> Path:
    """The tag's tree with its tests, downloaded from GitHub on first use."""
    if (TREE / "tests" / "conftest.py").exists():
        return TREE
    archive = harness.CACHE / f"psycopg-{VERSION}.tar.gz"
    if not archive.exists():
        print(f"downloading {URL} into {harness.rel(harness.CACHE)}", flush=True)
        harness.CACHE.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(URL, timeout=60) as answer:
                data = answer.read()
        except (urllib.error.URLError, OSError) as e:
            raise harness.SuiteError(
                f"could not download psycopg {VERSION}'s tests from {URL} ({e}): download it "
                f"elsewhere and extract it as {harness.rel(TREE)}/ (its tests/ folder is what "
                f"runs), or put the archive at {harness.rel(archive)}") from e
        archive.write_bytes(data)
    return harness.extract(archive, f"psycopg-{VERSION}", TREE)


def prepare() -> tuple[Path, Path]:
    tree = ensure_tree()
    ini = tree / "pytest.ini"  # the tree's own config: not reeldb's pyproject.toml above it
    if not ini.exists():
        ini.write_text("# written by reeldb's compat/psycopg3_suite.py\n[pytest]\n")
    return tree, harness.ensure_venv("psycopg3", REQUIREMENTS)


def runner(suite: harness.Suite, log: IO[bytes],
           prepared: tuple[Path, Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    tree, python = prepared
    with open(suite.server_log, "wb") as server_log, \
            harness.fresh_server(suite.database, server_log) as server:
        env = {**harness.clean_env(), "PYTHONUNBUFFERED": "1"}
        args = ["--rootdir", str(tree), "-c", str(tree / "pytest.ini"), "-m", "not mypy",
                "--ignore=tests/pool", "--test-dsn", server.dsn, "tests"]
        return harness.run_children(suite, harness.pytest_child(python, args, tree, env, suite),
                                    log)


def main(argv: list[str] | None = None) -> int:
    suite = harness.Suite(name="psycopg3", title=f"psycopg {VERSION}'s own test suite",
                          version=VERSION, database="psycopg_test", causes=CAUSES,
                          per_test_timeout=30.0, run_timeout=3600.0, watchdog_grace=30.0)
    args = harness.parser_for(suite, __doc__.split("\n\n")[0]).parse_args(argv)
    return harness.main_flow(suite, args, SCRIPT, prepare, runner)


if __name__ == "__main__":
    sys.exit(main())
