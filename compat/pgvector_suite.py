#!/usr/bin/env python3
"""Run pgvector-python 0.5.1's tests against ``reeldb serve`` and judge them against a list.

The tests come from pgvector's PyPI sdist (``pip download --no-binary :all: --no-deps
pgvector==0.5.1``, cached in ``.cache/compat/``) and run with pytest in a venv of their own,
``.cache/compat/venv-pgvector``, built from the pins in ``compat/requirements-pgvector.txt``
(the project venv is not touched). They connect to the database ``pgvector_python_test``.

Which modules run: all twelve. reeldb's promise is that every Postgres client keeps working,
and pgvector-python is how Python code talks vectors to Postgres through each of them: the
drivers (psycopg 3, psycopg2, asyncpg, pg8000) and the ORMs on top (SQLAlchemy, SQLModel,
Django, Peewee); the four type modules (vector, halfvec, sparsevec, bit) test pgvector's own
Python classes and need no server. The drivers are pinned to the project venv's versions where
the project uses them (psycopg, psycopg2-binary, asyncpg, SQLAlchemy, numpy), so a pass here
is a pass with what reeldb's own tests use; the others at the versions pip chose for Python
3.11 on the day they were pinned.

Two things of the sdist's making, not of the tests': the sdist leaves out ``tests/conftest.py``,
from which nine modules import ``numpy`` (None when numpy is missing), so the runner writes that
one definition; and pg8000 and the SQLAlchemy engines name ``localhost`` with Postgres' default
port, so inside the network namespace the server listens on 127.0.0.1:5432 (with --no-netns on
a free port given as PGPORT, which pg8000 does not read: its module then fails).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402 (compat/ is not a package)

SCRIPT = Path(__file__).resolve()
VERSION = "0.5.1"
REQUIREMENTS = harness.COMPAT / "requirements-pgvector.txt"
CONFTEST = '''\
# Written by reeldb's compat/pgvector_suite.py: the pgvector sdist lacks tests/conftest.py,
# from which the test modules import numpy (None without it).
try:
    import numpy
except ImportError:
    numpy = None
'''

# (regex on "SQLSTATE exception: message" or "id:REGEX" on the test id, reason); first match
# wins. Keep the reasons stable: the expected-failures file is regenerated from them.
CAUSES: list[harness.Cause] = []


def prepare() -> tuple[Path, Path]:
    sdist = harness.ensure_sdist("pgvector", VERSION, "tests/test_vector.py")
    conftest = sdist / "tests" / "conftest.py"
    if not conftest.exists():
        conftest.write_text(CONFTEST)
    return sdist, harness.ensure_venv("pgvector", REQUIREMENTS)


def runner(suite: harness.Suite, log: IO[bytes],
           prepared: tuple[Path, Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    sdist, python = prepared
    port = 5432 if harness.in_netns() else None
    with open(suite.server_log, "wb") as server_log, \
            harness.fresh_server(suite.database, server_log, port) as server:
        env = {**harness.clean_env(), "PGHOST": "127.0.0.1", "PGPORT": str(server.port),
               "PYTHONUNBUFFERED": "1"}
        return harness.run_children(
            suite, harness.pytest_child(python, ["--import-mode=importlib", "tests"], sdist, env, suite), log)


def main(argv: list[str] | None = None) -> int:
    suite = harness.Suite(name="pgvector", title=f"pgvector-python {VERSION}'s tests",
                          version=VERSION, database="pgvector_python_test", causes=CAUSES,
                          per_test_timeout=30.0, run_timeout=900.0, watchdog_grace=30.0)
    args = harness.parser_for(suite, __doc__.split("\n\n")[0]).parse_args(argv)
    return harness.main_flow(suite, args, SCRIPT, prepare, runner)


if __name__ == "__main__":
    sys.exit(main())
