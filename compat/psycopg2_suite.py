#!/usr/bin/env python3
"""Run psycopg2's own test suite against ``reeldb serve`` and judge it against a list.

The suite comes from the psycopg2 sdist of the same version as the installed
``psycopg2-binary`` (the module the tests import, from the project venv). It is downloaded
once into ``.cache/compat/`` with pip. Each run creates a fresh database ``psycopg2_test``,
starts ``reeldb serve`` on it and runs the suite, built by psycopg2's own
``tests.test_suite()``, in a child process that reports each test's outcome as it goes. A test
that runs longer than ``--timeout`` seconds (a hang in libpq cannot be interrupted from
Python) gets its child killed: the test is recorded as an error and a new child carries on
with the tests not yet run. The outcomes are judged against
``compat/psycopg2-expected-failures.txt``; see compat/README.md and compat/harness.py.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import re
import sys
import time
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402 (compat/ is not a package)

SCRIPT = Path(__file__).resolve()

# (regex on "SQLSTATE exception: message", reason) for --update; the first match wins, and a
# failure no pattern matches keeps the reason the expected-failures file gave it before.
CAUSES: list[harness.Cause] = [
    (r"^54001 .*statement is too long",
     "sends a statement of over 1 MiB (psycopg2's flush test inlines a 1 MiB string): reeldb "
     "refuses statements over 1 MiB with 54001, as documented; large values go as parameters"),
    (r"PostgreSQL type '[^']*' not found",
     "a table's row type is not in pg_type (in PostgreSQL every table is also a composite type): "
     "register_composite of a table's name finds nothing"),
    (r"^0A000 .*SET search_path",
     "SET search_path to another schema refused (0A000): unqualified names resolve in public, "
     "the connection's branch"),
    (r"^0A000 .*CreateRangeStmt", "range types (CREATE TYPE ... AS RANGE) not supported (0A000)"),
    (r'^22023 .*invalid schema name "[^"]*\.',
     "a schema name with a dot: refused, since reeldb names a schema's tables schema.table and "
     "branches with / (22023)"),
    (r"^0A000 .*(CHECK|FOREIGN)",
     "FOREIGN KEY constraints, and CHECK on temporary tables, are refused (0A000): reeldb would "
     "not enforce them"),
    (r"^0A000 .*time with time zone are not supported",
     "timetz results are refused (0A000): DuckDB hands them over without their UTC offset"),
    (r"^42883 .*pg_sleep\(numeric\)",
     "pg_sleep() with a numeric argument: reeldb's pg_sleep takes float8, so numeric is 42883"),
    (r"id:NotGreedy|test_not_greedy",
     "a named cursor's rows are computed a DuckDB batch at a time: clock_timestamp() in its rows "
     "does not move between FETCHes as in PostgreSQL's lazily run portal"),
]


# -- the child: runs the suite, one JSON line per event --------------------------------------


def child_main(sdist: Path, pattern: str | None) -> int:
    """Run the suite in ``sdist``, reporting events to the harness."""
    emit = harness.event_writer()
    os.dup2(2, 1)  # anything the tests print goes to the log
    skip = harness.skipped_ids()
    os.chdir(sdist)
    sys.path.insert(0, str(sdist))

    try:
        import tests  # psycopg2's suite; its __init__ turns warnings into errors

        suite = tests.test_suite()
    except BaseException as e:  # includes the SystemExit test_suite() raises when it can't connect
        emit(event="abort", message=f"could not build the suite: {type(e).__name__}: {e}")
        return 2

    def flatten(s: unittest.TestSuite | unittest.TestCase) -> Iterator[unittest.TestCase]:
        if isinstance(s, unittest.TestSuite):
            for t in s:
                yield from flatten(t)
        else:
            yield s

    todo: list[unittest.TestCase] = []
    seen: set[str] = set()
    for test in flatten(suite):
        tid = test.id()
        if tid in seen or tid in skip or (pattern and not re.search(pattern, tid)):
            continue
        seen.add(tid)
        todo.append(test)
    emit(event="plan", count=len(todo))

    class Result(unittest.TestResult):
        """Records one outcome per test; a failed subtest fails its test."""

        def __init__(self) -> None:
            super().__init__()
            self.current: dict[str, Any] | None = None

        def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802 (unittest's name)
            super().startTest(test)
            self.current = {"id": test.id(), "outcome": "passed", "t0": time.monotonic()}
            emit(event="start", id=test.id())

        def _bad(self, test: Any, outcome: str, err: Any) -> None:
            if self.current is None or self.current["id"] != test.id():
                # an error outside any test (a class or module fixture): report it on its own
                emit(event="end", id=test.id(), outcome="error", duration=0.0,
                     **describe_error(err, self._exc_info_to_string(err, test)))
                return
            if self.current["outcome"] not in harness.FAILING:  # keep the first error
                self.current.update(outcome=outcome,
                                    **describe_error(err, self._exc_info_to_string(err, test)))

        def addError(self, test: Any, err: Any) -> None:  # noqa: N802
            self._bad(test, "error", err)

        def addFailure(self, test: Any, err: Any) -> None:  # noqa: N802
            self._bad(test, "failed", err)

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:  # noqa: N802
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                self._bad(test, "failed" if failed else "error", err)

        def addSkip(self, test: Any, reason: str) -> None:  # noqa: N802
            if self.current is not None:
                self.current.update(outcome="skipped", message=reason)

        def addUnexpectedSuccess(self, test: Any) -> None:  # noqa: N802
            if self.current is not None:
                self.current.update(outcome="failed", message="unexpected success")

        def stopTest(self, test: unittest.TestCase) -> None:  # noqa: N802
            super().stopTest(test)
            # A failed setUp skips tearDown, which would have closed the test's connections:
            # close them here, or they pile up until the server refuses new clients.
            for conn in getattr(test, "_conns", None) or []:
                with contextlib.suppress(Exception):
                    conn.close()
            current, self.current = self.current, None
            if current is not None:
                current["duration"] = round(time.monotonic() - current.pop("t0"), 3)
                emit(event="end", **current)

    unittest.TestSuite(todo).run(Result())
    emit(event="done")
    return 0


def describe_error(err: Any, text: str) -> dict[str, Any]:
    """The exception, message, SQLSTATE and last query of a test's error."""
    return {**harness.describe_exception(err[1]), "traceback": text[-4000:]}


# -- the parent ------------------------------------------------------------------------------


def installed_version() -> str:
    try:
        return importlib.metadata.version("psycopg2-binary")
    except importlib.metadata.PackageNotFoundError:
        return importlib.metadata.version("psycopg2")


def child_env(port: int) -> dict[str, str]:
    env = harness.clean_env()
    env.update(PSYCOPG2_TESTDB="psycopg2_test", PSYCOPG2_TESTDB_HOST="127.0.0.1",
               PSYCOPG2_TESTDB_PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def runner(suite: harness.Suite, log: IO[bytes],
           sdist: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    with open(suite.server_log, "wb") as server_log, \
            harness.fresh_server(suite.database, server_log) as server:
        def command() -> tuple[list[str], dict[str, str], Path]:
            argv = [sys.executable, str(SCRIPT), "--child", str(sdist)]
            if suite.extra.get("pattern"):
                argv += ["-k", suite.extra["pattern"]]
            return argv, child_env(server.port), sdist

        return harness.run_children(suite, command, log)


def main(argv: list[str] | None = None) -> int:
    version = installed_version()
    suite = harness.Suite(name="psycopg2", title=f"psycopg2 {version}'s own test suite",
                          version=version, database="psycopg2_test", causes=CAUSES,
                          id_pattern=r"tests(\.\w+)+", per_test_timeout=30.0,
                          run_timeout=1800.0)
    parser = harness.parser_for(suite, __doc__.split("\n\n")[0])
    parser.add_argument("--child", metavar="SDIST", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.pattern)
    import psycopg2

    if psycopg2.__version__.split()[0] != version:
        print(f"psycopg2 module {psycopg2.__version__} is not the installed distribution "
              f"{version}", file=sys.stderr)
        return 2
    return harness.main_flow(
        suite, args, SCRIPT,
        lambda: harness.ensure_sdist("psycopg2", version, "tests/__init__.py"), runner)


if __name__ == "__main__":
    sys.exit(main())
