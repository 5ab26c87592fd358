"""The pure parts of compat/harness.py, which judges the driver suites of `make compat`:
the expected-failures file, the cause table, the verdict, and the child runner's handling of
a hung test. No suite and no server run here."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

HARNESS_PATH = Path(__file__).resolve().parent.parent / "compat" / "harness.py"
_spec = importlib.util.spec_from_file_location("compat_harness_under_test", HARNESS_PATH)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)


def result(tid: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "outcome": outcome, **extra}


def test_expected_file_reads_reasons_flaky_and_ids_holding_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "x-expected-failures.txt"
    path.write_text(textwrap.dedent("""\
        # a comment
        # --- no ranges (2)
        tests/test_a.py::test_range[int4#1]  # no ranges
        tests/test_a.py::test_other  # no ranges

        [flaky]
        tests/test_b.py::test_timing  # timing on a loaded machine
        """))
    expected, flaky = harness.read_expected(path)
    assert expected == {"tests/test_a.py::test_range[int4#1]": "no ranges",
                        "tests/test_a.py::test_other": "no ranges"}
    assert flaky == {"tests/test_b.py::test_timing": "timing on a loaded machine"}


@pytest.mark.parametrize("line", ["tests/test_a.py::test_x", "tests/test_a.py::test_x  # ",
                                  "tests/test_a.py::t # one space"])
def test_expected_file_refuses_a_line_without_test_or_reason(tmp_path: Path, line: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text(f"{line}\n")
    with pytest.raises(harness.SuiteError, match=r"x\.txt:1: expected"):
        harness.read_expected(path)


def test_expected_file_refuses_an_id_of_the_wrong_shape_and_a_test_listed_twice(
        tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("tests/test_a.py::t  # why\n")
    with pytest.raises(harness.SuiteError, match="expected"):
        harness.read_expected(path, r"tests(\.\w+)+")
    path.write_text("tests.a.T.t  # why\n[flaky]\ntests.a.T.t  # again\n")
    with pytest.raises(harness.SuiteError, match="listed twice"):
        harness.read_expected(path, r"tests(\.\w+)+")


def test_missing_expected_file_is_an_empty_list(tmp_path: Path) -> None:
    assert harness.read_expected(tmp_path / "absent.txt") == ({}, {})


def test_expected_file_round_trips_grouped_by_reason_largest_first(tmp_path: Path) -> None:
    expected = {"t::a": "rare", "t::b": "common", "t::c": "common"}
    flaky = {"t::d": "timing"}
    text = harness.format_expected("X 1.0's tests", "x", expected, flaky)
    assert text.index("# --- common (2)") < text.index("# --- rare (1)")
    assert "make compat SUITE=x" in text
    path = tmp_path / "x.txt"
    path.write_text(text)
    assert harness.read_expected(path) == (expected, flaky)


CAUSES = [
    (r"id:test_lobject", "large objects not supported"),
    (r"^0A000 .*CREATE TYPE", "CREATE TYPE not supported"),
    (r"^0A000 ", "something else unsupported"),
    (r"^42704 .*type \"(int4range|daterange)\"", "range types not supported"),
]


def test_classify_takes_the_first_cause_that_matches_the_sqlstate_message_or_id() -> None:
    create_type = result("t::x", "error", sqlstate="0A000", exception="psycopg.errors.X",
                         message="CREATE TYPE is not supported")
    assert harness.classify(create_type, CAUSES) == "CREATE TYPE not supported"
    other = result("t::y", "error", sqlstate="0A000", message="LISTEN is not supported")
    assert harness.classify(other, CAUSES) == "something else unsupported"
    by_id = result("tests/test_lobject.py::t", "failed", sqlstate="0A000", message="anything")
    assert harness.classify(by_id, CAUSES) == "large objects not supported"
    no_state = result("t::z", "failed", exception="AssertionError", message="assert 1 == 2")
    assert harness.classify(no_state, CAUSES) is None
    assert harness.signature(no_state) == "----- AssertionError: assert 1 == 2"


def test_update_reason_is_the_cause_else_the_old_hand_reason_else_auto() -> None:
    matched = result("t::a", "error", sqlstate="0A000", message="LISTEN")
    assert harness.reason_for(matched, CAUSES, "an old reason") == "something else unsupported"
    unmatched = result("t::b", "failed", exception="AssertionError", message="assert 1 == 2")
    assert harness.reason_for(unmatched, CAUSES, "written by a person") == "written by a person"
    auto = harness.reason_for(unmatched, CAUSES, "[auto] stale")
    assert auto.startswith(harness.AUTO) and "assert 1 == 2" in auto
    assert harness.reason_for(unmatched, CAUSES, None) == auto


def test_updated_list_drops_fixed_tests_and_keeps_unrun_ones_only_on_a_partial_run() -> None:
    expected = {"t::fixed": "was broken", "t::still": "still broken", "t::unrun": "other"}
    flaky = {"t::flaky": "timing"}
    results = {"t::fixed": result("t::fixed", "passed"),
               "t::still": result("t::still", "failed", message="x"),
               "t::new": result("t::new", "error", sqlstate="0A000", message="LISTEN"),
               "t::flaky": result("t::flaky", "failed", message="slow")}
    partial = harness.updated_expected(results, expected, flaky, CAUSES, ran_all=False)
    assert partial == {"t::still": "still broken", "t::unrun": "other",
                       "t::new": "something else unsupported"}
    whole = harness.updated_expected(results, expected, flaky, CAUSES, ran_all=True)
    assert "t::unrun" not in whole and "t::fixed" not in whole and "t::flaky" not in whole


def test_verdict_counts_rate_and_unexpected_outcomes() -> None:
    results = {"p1": result("p1", "passed"), "p2": result("p2", "passed"),
               "listed_passes": result("listed_passes", "passed"),
               "f1": result("f1", "failed"), "e1": result("e1", "error"),
               "s1": result("s1", "skipped"), "flaky": result("flaky", "failed")}
    expected = {"listed_passes": "was broken", "f1": "known"}
    verdict = harness.judge(results, expected, {"flaky": "timing"})
    s = verdict.summary
    assert (s["passed"], s["failed"], s["errors"], s["skipped"]) == (3, 2, 1, 1)
    assert s["pass_rate"] == round(3 / 6, 4)  # skipped tests are not counted
    assert verdict.unexpected_failures == ["e1"]
    assert verdict.unexpected_passes == ["listed_passes"]
    assert s["failures_by_reason"] == {"known": 1}
    assert not verdict.ok
    clean = harness.judge({"f1": result("f1", "failed")}, expected, {})
    assert clean.ok and clean.summary["pass_rate"] == 0.0


def test_describe_exception_finds_the_sqlstate_of_each_driver() -> None:
    class Psycopg(Exception):
        sqlstate = "42P01"

    class Psycopg2(Exception):
        pgcode = "0A000"

    class Wrapper(Exception):  # SQLAlchemy's DBAPIError keeps the driver's error in .orig
        def __init__(self, orig: BaseException) -> None:
            super().__init__(f"({type(orig).__name__}) {orig}")
            self.orig = orig

    assert harness.describe_exception(Psycopg("no table"))["sqlstate"] == "42P01"
    assert harness.describe_exception(Psycopg2("nope\nLINE 1"))["message"] == "nope"
    pg8000 = Exception({"S": "ERROR", "C": "42704", "M": 'type "bit" does not exist'})
    assert harness.describe_exception(pg8000)["sqlstate"] == "42704"
    wrapped = harness.describe_exception(Wrapper(Psycopg("x")))
    assert wrapped["sqlstate"] == "42P01" and wrapped["exception"].endswith("Wrapper")
    assert "sqlstate" not in harness.describe_exception(AssertionError("assert 1 == 2"))


CHILD = """\
import json, os, sys, time
out = os.fdopen(int(os.environ["REELDB_COMPAT_EVENTS_FD"]), "w", buffering=1)
done = set(open(os.environ["REELDB_COMPAT_SKIP_FILE"]).read().split())
def emit(**e): out.write(json.dumps(e) + "\\n")
emit(event="plan", count=3)
for tid in ("a", "hangs", "c"):
    if tid in done:
        continue
    emit(event="start", id=tid)
    if tid == "hangs":
        time.sleep(60)
    emit(event="end", id=tid, outcome="passed", duration=0.0)
emit(event="done")
"""


def test_a_hung_test_is_killed_recorded_as_an_error_and_the_rest_run_in_a_new_child(
        tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    suite = harness.Suite(name="fake", title="fake", version="0", database="x",
                          per_test_timeout=1.0, run_timeout=30.0)
    with open(tmp_path / "log", "wb") as log:
        results, problems = harness.run_children(
            suite, lambda: ([sys.executable, str(script)], {}, tmp_path), log)
    assert problems == []
    assert [(t, r["outcome"]) for t, r in results.items()] == [
        ("a", "passed"), ("hangs", "error"), ("c", "passed")]
    assert results["hangs"]["exception"] == "timeout"


def test_a_child_that_dies_before_finishing_is_a_problem(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text("import sys; sys.exit(3)\n")
    suite = harness.Suite(name="fake", title="fake", version="0", database="x",
                          per_test_timeout=5.0, run_timeout=30.0)
    with open(tmp_path / "log", "wb") as log:
        results, problems = harness.run_children(
            suite, lambda: ([sys.executable, str(script)], {}, tmp_path), log)
    assert results == {}
    assert len(problems) == 1 and "exited (3) without finishing" in problems[0]


def test_stored_results_reload_the_last_run_with_its_filter_and_without_old_reasons(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "CACHE", tmp_path)
    suite = harness.Suite(name="fake", title="fake", version="0", database="x")
    stored = {"summary": {"filter": "test_a", "problems": ["stopped"], "seconds": 12.5},
              "tests": [{"id": "t::a", "outcome": "failed", "message": "m",
                         "listed": "expected failure", "reason": "old", "cause": "older"}]}
    suite.results_file.write_text(json.dumps(stored))
    args = argparse.Namespace(pattern=None)
    results, problems = harness.stored_results(suite, args)
    assert results == {"t::a": {"id": "t::a", "outcome": "failed", "message": "m"}}
    assert problems == ["stopped"] and args.pattern == "test_a"
    assert suite.extra["stored_seconds"] == 12.5
    suite.results_file.unlink()
    with pytest.raises(harness.SuiteError, match="no results of an earlier run"):
        harness.stored_results(suite, args)
