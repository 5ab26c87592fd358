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
CAUSES: list[harness.Cause] = []


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
    return ensure_tree(), harness.ensure_venv("psycopg3", REQUIREMENTS)


def runner(suite: harness.Suite, log: IO[bytes],
           prepared: tuple[Path, Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    tree, python = prepared
    with open(suite.server_log, "wb") as server_log, \
            harness.fresh_server(suite.database, server_log) as server:
        env = {**harness.clean_env(), "PYTHONUNBUFFERED": "1"}
        args = ["--test-dsn", server.dsn, "tests"]
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
