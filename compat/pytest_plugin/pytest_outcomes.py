"""pytest plugin (``-p pytest_outcomes``) that reports each test's outcome to compat/harness.py.

One JSON line per event on the descriptor named by REELDB_COMPAT_EVENTS_FD: ``plan``,
``start`` and ``end`` of each test (outcome passed / failed / error / skipped, with the
exception, SQLSTATE and message of a failure), ``abort`` when pytest itself fails, ``done``.
Tests whose ids are in the file named by REELDB_COMPAT_SKIP_FILE, or do not match the regex
REELDB_COMPAT_PATTERN (``-k``), are deselected: the harness
restarts pytest with them after killing a hung run. Runs in the suite's own venv: standard
library and pytest only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "reeldb_compat_harness", Path(__file__).resolve().parent.parent / "harness.py")
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)

emit = harness.event_writer()
_current: dict[str, dict[str, Any]] = {}
_errors: dict[str, dict[str, Any]] = {}  # node id -> its first exception, described


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    done = harness.skipped_ids()
    pattern = os.environ.get(harness.PATTERN_ENV)

    def wanted(item: pytest.Item) -> bool:
        return item.nodeid not in done and (not pattern or re.search(pattern, item.nodeid))

    if done or pattern:
        config.hook.pytest_deselected(items=[i for i in items if not wanted(i)])
        items[:] = [i for i in items if wanted(i)]
    emit(event="plan", count=len(items))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:  # a module that cannot be imported: one error under its own id
        emit(event="end", id=report.nodeid or "<collection>", outcome="error", duration=0.0,
             exception="collection error", message=_last_error_line(str(report.longrepr)),
             traceback=str(report.longrepr)[-4000:])


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _current[nodeid] = {"id": nodeid, "outcome": "passed", "t0": time.monotonic()}
    emit(event="start", id=nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and item.nodeid not in _errors:
        _errors[item.nodeid] = harness.describe_exception(call.excinfo.value)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    current = _current.get(report.nodeid)
    if current is None:
        return
    if report.failed and current["outcome"] not in harness.FAILING:
        current["outcome"] = "failed" if report.when == "call" else "error"
        if hasattr(report, "wasxfail"):  # a strict xfail that passed
            current.update(exception="XPASS(strict)", message=report.wasxfail or "xpassed")
        else:
            current["message"] = _last_error_line(str(report.longrepr))
            current["traceback"] = str(report.longrepr)[-4000:]
    elif report.skipped and current["outcome"] == "passed":
        current["outcome"] = "skipped"  # skipped, or an expected failure (xfail)
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else getattr(report, "wasxfail", "")
        current["message"] = str(reason)[:500]


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    current = _current.pop(nodeid, None)
    if current is None:
        return
    error = _errors.pop(nodeid, None)
    if error and current["outcome"] in harness.FAILING:
        current.update(error)  # exception, SQLSTATE and the exception's own message
    current["duration"] = round(time.monotonic() - current.pop("t0"), 3)
    emit(event="end", **current)


def pytest_internalerror(excrepr: Any, excinfo: Any) -> None:
    error = harness.describe_exception(excinfo.value)
    sqlstate = f" [{error['sqlstate']}]" if error.get("sqlstate") else ""
    emit(event="abort", message=f"pytest internal error: {error['exception']}{sqlstate}: "
                                f"{error['message']}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                      pytest.ExitCode.USAGE_ERROR):
        emit(event="abort", message=f"pytest stopped: {pytest.ExitCode(exitstatus).name}")
    else:
        emit(event="done")


def _last_error_line(text: str) -> str:
    """The ``E   ...`` line pytest puts under a failure, else the text's last line."""
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return errors[0] if len(errors) == 1 else next(
            (e for e in errors if "Error" in e or "error" in e), errors[0])[:500]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
