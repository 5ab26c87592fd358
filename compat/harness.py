"""What every driver suite under ``compat/`` shares: a fresh ``reeldb serve``, a private network
namespace, a child process that reports each test's outcome as a JSON line, the
expected-failures file, the verdict and the results JSON.

A suite file (``compat/<name>_suite.py``) says where its tests come from, how to start its
child (a unittest runner, or pytest in a venv of the suite's own with the
``compat/pytest_outcomes.py`` plugin) and which causes explain its failures; ``run_main`` does
the rest. Exit status: 0 when the outcomes match the list, 1 when they do not, 2 when the suite
could not be run (download, venv, server start, provisioning, a run stopped early).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
COMPAT = REPO / "compat"
CACHE = REPO / ".cache" / "compat"

FAILING = ("failed", "error")
AUTO = "[auto] "
FLAKY_SECTION = "[flaky]"
# the separator between a test id and its reason: pytest ids may hold a lone `#`
REASON_SEP = "  # "
# a run is abandoned after this many tests in a row time out: the server is likely wedged
MAX_TIMEOUTS_IN_A_ROW = 3
NETNS_ENV = "REELDB_COMPAT_NETNS"
EVENTS_FD_ENV = "REELDB_COMPAT_EVENTS_FD"
SKIP_FILE_ENV = "REELDB_COMPAT_SKIP_FILE"
PATTERN_ENV = "REELDB_COMPAT_PATTERN"

HEADER = """\
# {title} against `reeldb serve`: the tests expected to fail.
#
# One test per line: `<test id>  # <reason>`. `make compat SUITE={name}` fails when a test
# fails that is not listed here, or when a listed test passes. `make compat SUITE={name}
# UPDATE=1` rewrites this file from a run: each failure's reason comes from the cause table in
# compat/{name}_suite.py (the first pattern that matches its SQLSTATE and message), else the
# reason written here before, else its error marked [auto]: then add a cause to the table.
# The `# --- reason (count)` headers are regenerated; only the per-line reasons count.
# Tests under [flaky] give different outcomes from run to run, or machine to machine: they
# run, unjudged.
"""

Cause = tuple[str, str]  # (regex searched in "SQLSTATE exception: message", reason)


class SuiteError(Exception):
    """The suite could not be run (exit status 2); the message names the step."""


@dataclass
class Suite:
    """One driver suite: its names, its files, and how to run it."""

    name: str  # make compat SUITE=<name>; file names
    title: str  # "psycopg 3.3.4's own test suite"
    version: str
    database: str  # the database name the tests connect to
    causes: Sequence[Cause] = ()
    id_pattern: str = r"\S.*"  # what a test id in the expected file must look like
    per_test_timeout: float = 30.0
    run_timeout: float = 1800.0
    # how long after the per-test timeout the parent kills a child that reports nothing
    watchdog_grace: float = 0.0
    port: int | None = None  # a fixed port (only inside the network namespace)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expected_file(self) -> Path:
        return COMPAT / f"{self.name}-expected-failures.txt"

    @property
    def results_file(self) -> Path:
        return CACHE / f"{self.name}-results.json"

    @property
    def suite_log(self) -> Path:
        return CACHE / f"{self.name}-suite.log"

    @property
    def server_log(self) -> Path:
        return CACHE / f"{self.name}-reeldb-serve.log"


@dataclass
class Server:
    """A running ``reeldb serve`` of a fresh database."""

    port: int
    database: str
    folder: Path

    @property
    def dsn(self) -> str:
        return f"dbname={self.database} host=127.0.0.1 port={self.port}"


# -- files: sdists, venvs --------------------------------------------------------------------


def rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def extract(archive: Path, top: str, dest: Path) -> Path:
    """Extract ``archive`` (whose single top folder is ``top``) to ``dest``, safely."""
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="extract-", dir=CACHE))
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")
            else:  # Python < 3.10.12: no filters; refuse absolute paths and ..
                for member in tar.getmembers():
                    if member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise SuiteError(f"unsafe path in {archive}: {member.name}")
                tar.extractall(staging)
        (staging / top).rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def ensure_sdist(project: str, version: str, marker: str) -> Path:
    """The extracted PyPI sdist ``project==version`` in .cache/compat/, downloaded with pip
    on first use (``marker``: a path inside it that says the extraction is complete)."""
    root = CACHE / f"{project.lower()}-{version}"
    if (root / marker).exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{project.lower()}-{version}.tar.gz"
    if not archive.exists():
        print(f"downloading the {project} {version} sdist into {rel(CACHE)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "--no-binary", ":all:", "--dest", str(CACHE),
                               f"{project}=={version}"])
        if done.returncode != 0 or not archive.exists():
            raise SuiteError(f"could not download the {project} {version} sdist with pip "
                             f"(place {archive.name} in {rel(CACHE)})")
    try:
        return extract(archive, f"{project.lower()}-{version}", root)
    except (OSError, tarfile.TarError) as e:
        raise SuiteError(f"could not extract {rel(archive)}: {e}") from e


def ensure_venv(name: str, requirements: Path) -> Path:
    """The python of ``.cache/compat/venv-<name>``, holding exactly the pins of
    ``requirements``; (re)built with pip when that file changed. The project venv is not
    touched."""
    venv = CACHE / f"venv-{name}"
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements-sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    print(f"building {rel(venv)} from {rel(requirements)}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-deps", "-r", str(requirements)]]
    for step in steps:
        if subprocess.run(step).returncode != 0:
            raise SuiteError(f"could not build {rel(venv)}: `{' '.join(step)}` failed")
    stamp.write_text(digest)
    return python


# -- the network namespace and the server ----------------------------------------------------


def netns_prefix() -> list[str] | None:
    """A command prefix that runs its command with loopback as the only network, or None.

    DuckDB, under reeldb, installs extensions it lacks (inet, json...) from the internet on
    first use. In a network namespace of its own it cannot, whatever the machine's network:
    the outcomes are then the same on every machine, nothing leaves the machine, and the
    server may take Postgres' own port 5432, which some suites hard-code.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not Path(ip).exists():
        return None
    prefix = [unshare, "--net", "--map-root-user", "sh", "-c",
              f'"{ip}" link set lo up && exec "$@"', "netns"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def in_netns() -> bool:
    return os.environ.get(NETNS_ENV) == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reeldb_command() -> list[str]:
    exe = Path(sys.executable).parent / "reeldb"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from reeldb.cli import main; sys.exit(main())"]


def clean_env() -> dict[str, str]:
    """This process's environment less what would steer a client or the server: libpq's PG*
    variables, the suites' own, PYTHONWARNINGS."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "PSYCOPG", "SQLALCHEMY")) and k != "PYTHONWARNINGS"}


def wait_ready(server: subprocess.Popen[bytes], port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise SuiteError(f"reeldb serve exited with code {server.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise SuiteError(f"reeldb serve did not listen on port {port} in {seconds:g} s")
        time.sleep(0.2)


@contextlib.contextmanager
def fresh_server(database: str, log: IO[bytes], port: int | None = None) -> Iterator[Server]:
    """``reeldb serve`` of a new, empty database named ``database`` on 127.0.0.1, stopped
    on exit. It gets an empty HOME: no DuckDB extension installed earlier gets loaded."""
    with tempfile.TemporaryDirectory(prefix="reeldb-compat-") as tmp:
        folder = Path(tmp) / database
        made = subprocess.run([sys.executable, "-c",
                               "import sys, reeldb; reeldb.connect(sys.argv[1])", str(folder)],
                              stdout=log, stderr=subprocess.STDOUT)
        if made.returncode != 0:
            raise SuiteError(f"could not create database {database} (see {rel(Path(log.name))})")
        port = port or free_port()
        env = clean_env()
        home = Path(tmp) / "home"
        home.mkdir()
        env["HOME"] = str(home)
        server = subprocess.Popen([*reeldb_command(), "serve", str(folder), "--host",
                                   "127.0.0.1", "--port", str(port)], stdout=log,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_ready(server, port, 60)
            yield Server(port, database, folder)
            if server.poll() is not None:
                raise SuiteError(f"reeldb serve exited during the run (code "
                                 f"{server.returncode}); see {rel(Path(log.name))}")
        finally:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()


# -- the child's event stream ----------------------------------------------------------------


def event_writer() -> Callable[..., None]:
    """In a child: a function that reports one event as a JSON line to the parent."""
    fd = int(os.environ[EVENTS_FD_ENV])
    stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    atexit.register(stream.close)

    def emit(**event: Any) -> None:
        stream.write(json.dumps(event, default=str) + "\n")

    return emit


def skipped_ids() -> set[str]:
    """In a child: the ids the parent already has an outcome for (after a restart)."""
    path = os.environ.get(SKIP_FILE_ENV)
    return set(Path(path).read_text().splitlines()) if path else set()


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_exception(value: BaseException) -> dict[str, Any]:
    """The exception, SQLSTATE, message and query of a test's error, whichever driver raised
    it (psycopg 3 and asyncpg: .sqlstate; psycopg2: .pgcode; pg8000: args[0]['C'];
    SQLAlchemy: the driver's error in .orig)."""
    etype = type(value)
    detail: dict[str, Any] = {"exception": f"{etype.__module__}.{etype.__qualname__}",
                              "message": first_line(str(value)) or etype.__name__}
    seen: set[int] = set()
    cause: BaseException | None = value
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if not sqlstate and cause.args and isinstance(cause.args[0], dict):
            sqlstate = cause.args[0].get("C")
        if isinstance(sqlstate, str) and re.fullmatch(r"[0-9A-Z]{5}", sqlstate):
            detail["sqlstate"] = sqlstate
            break
        orig = getattr(cause, "orig", None)
        cause = orig if isinstance(orig, BaseException) else (cause.__cause__
                                                             or cause.__context__)
    query = getattr(getattr(value, "cursor", None), "query", None)
    if query:
        detail["query"] = (query.decode("utf-8", "replace") if isinstance(query, bytes)
                           else str(query))[:2000]
    return detail


def _read_events(stream: IO[str], out: queue.Queue[dict[str, Any] | None]) -> None:
    for line in stream:
        with contextlib.suppress(json.JSONDecodeError):
            out.put(json.loads(line))
    out.put(None)


ChildCommand = Callable[[], tuple[list[str], dict[str, str], Path]]


def run_children(suite: Suite, command: ChildCommand,
                 log: IO[bytes]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every test's outcome, in run order. ``command()`` gives a child's argv, environment and
    folder; the child reports events (plan, start, end, abort, done) on the descriptor named
    by REELDB_COMPAT_EVENTS_FD. A test silent past its timeout gets its child killed: it is
    recorded as an error and a new child carries on with the tests not yet run (ids listed in
    the file named by REELDB_COMPAT_SKIP_FILE). Past the run's timeout the run stops."""
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    timeouts_in_a_row = 0
    limit = suite.per_test_timeout + suite.watchdog_grace
    run_deadline = time.monotonic() + suite.run_timeout
    with tempfile.TemporaryDirectory(prefix=f"{suite.name}-suite-") as tmp:
        skip_file = Path(tmp) / "done"
        while True:
            skip_file.write_text("\n".join(results))
            argv, env, cwd = command()
            read_end, write_end = os.pipe()
            env = {**env, EVENTS_FD_ENV: str(write_end), SKIP_FILE_ENV: str(skip_file)}
            child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=cwd, pass_fds=(write_end,), start_new_session=True)
            os.close(write_end)
            events: queue.Queue[dict[str, Any] | None] = queue.Queue()
            reader = os.fdopen(read_end, encoding="utf-8", errors="replace")
            threading.Thread(target=_read_events, args=(reader, events), daemon=True).start()
            current: str | None = None
            started = time.monotonic()
            finished = False
            while True:
                wait = min(started + limit, run_deadline) - time.monotonic()
                try:
                    event = events.get(timeout=max(0.0, wait))
                except queue.Empty:  # a test ran past its time, or the run past its own
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                    if time.monotonic() >= run_deadline:
                        problems.append(f"the run passed its {suite.run_timeout:g} s limit and "
                                        f"was stopped (in {current or 'no test'})")
                        return results, problems
                    if current is None:
                        problems.append(f"the suite's process stalled outside any test for "
                                        f"{limit:g} s; see {rel(suite.suite_log)}")
                        return results, problems
                    results[current] = {"id": current, "outcome": "error", "duration": limit,
                                        "exception": "timeout",
                                        "message": f"timed out after {limit:g} s"}
                    timeouts_in_a_row += 1
                    break
                if event is None:  # the child exited
                    child.wait()
                    if current is not None:
                        results[current] = {"id": current, "outcome": "error", "duration": 0.0,
                                            "exception": "crash",
                                            "message": f"test process died ({child.returncode})"}
                    elif not finished:
                        problems.append(f"the suite's process exited ({child.returncode}) "
                                        f"without finishing; see {rel(suite.suite_log)}")
                        return results, problems
                    break
                kind = event.pop("event")
                if kind == "abort":
                    problems.append(event["message"])
                elif kind == "start":
                    current, started = event["id"], time.monotonic()
                elif kind == "end":
                    previous = results.get(event["id"])
                    # a teardown error after a pass makes the test an error; otherwise the
                    # first outcome stays
                    if previous is None or (previous["outcome"] == "passed"
                                            and event["outcome"] in FAILING):
                        results[event["id"]] = event
                    if event["id"] == current:
                        current = None
                    started = time.monotonic()
                    timeouts_in_a_row = 0
                elif kind in ("done", "plan"):
                    finished = kind == "done"
                    started = time.monotonic()
            if finished or problems:
                return results, problems
            if timeouts_in_a_row >= MAX_TIMEOUTS_IN_A_ROW:
                problems.append(f"{timeouts_in_a_row} tests in a row timed out: run abandoned")
                return results, problems


def pytest_child(python: Path, args: Sequence[str], cwd: Path, env: dict[str, str],
                 suite: Suite) -> ChildCommand:
    """A ``run_children`` command running pytest in a suite's venv with the outcomes plugin,
    pytest-timeout's per-test limit, and a fresh cache folder each time (so a killed run
    leaves nothing behind that changes the next)."""

    def command() -> tuple[list[str], dict[str, str], Path]:
        cache_dir = Path(tempfile.mkdtemp(prefix="pytest-cache-", dir=CACHE))
        argv = [str(python), "-m", "pytest", "-p", "pytest_outcomes", "-p", "no:randomly",
                "-p", "no:cov", "--continue-on-collection-errors", f"--timeout={suite.per_test_timeout:g}",
                "-o", f"cache_dir={cache_dir}", "-q", "-rN", *args]
        child_env = {**env, "PYTHONPATH": os.pathsep.join(
            p for p in (str(COMPAT / "pytest_plugin"), env.get("PYTHONPATH")) if p)}
        if suite.extra.get("pattern"):
            child_env[PATTERN_ENV] = suite.extra["pattern"]
        return argv, child_env, cwd

    return command


# -- the expected-failures file --------------------------------------------------------------


def read_expected(path: Path, id_pattern: str = r"\S.*") -> tuple[dict[str, str], dict[str, str]]:
    """(expected failures, flaky tests), each test id -> reason."""
    expected: dict[str, str] = {}
    flaky: dict[str, str] = {}
    if not path.exists():
        return expected, flaky
    section = expected
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == FLAKY_SECTION:
            section = flaky
            continue
        tid, _, reason = line.partition(REASON_SEP)
        tid, reason = tid.strip(), reason.strip()
        if not tid or not reason or not re.fullmatch(id_pattern, tid):
            raise SuiteError(f"{rel(path)}:{number}: expected `<test id>  # <reason>`, "
                             f"got {raw!r}")
        if tid in expected or tid in flaky:
            raise SuiteError(f"{rel(path)}:{number}: {tid} is listed twice")
        section[tid] = reason
    return expected, flaky


def format_expected(title: str, name: str, expected: dict[str, str],
                    flaky: dict[str, str]) -> str:
    """The expected-failures file: grouped by reason, largest group first."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for tid, reason in expected.items():
        groups[reason].append(tid)
    lines = [HEADER.format(title=title, name=name)]
    for reason, tids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"# --- {reason} ({len(tids)})")
        lines += [f"{tid}{REASON_SEP}{reason}" for tid in sorted(tids)]
        lines.append("")
    lines.append(FLAKY_SECTION)
    lines += [f"{tid}{REASON_SEP}{reason}" for tid, reason in sorted(flaky.items())]
    return "\n".join(lines) + "\n"


def either(message: str, test: str, reason: str) -> list[Cause]:
    """Two causes with one reason: a regex on the error, and one on the test id."""
    return [(message, reason), (f"id:{test}", reason)]


def signature(result: dict[str, Any]) -> str:
    """What the cause patterns are searched in: ``SQLSTATE exception: message``."""
    exception = str(result.get("exception", "")).rsplit(".", 1)[-1]
    message = re.sub(r"\s+", " ", str(result.get("message", "")))
    return f"{result.get('sqlstate') or '-----'} {exception}: {message}"


def classify(result: dict[str, Any], causes: Sequence[Cause]) -> str | None:
    """The reason of the first cause whose pattern matches, or None. A pattern may also
    name the test: ``id:REGEX`` is searched in the test id instead."""
    text = signature(result)
    for pattern, reason in causes:
        if pattern.startswith("id:"):
            if re.search(pattern[3:], str(result.get("id", ""))):
                return reason
        elif re.search(pattern, text):
            return reason
    return None


def auto_reason(result: dict[str, Any]) -> str:
    return f"{AUTO}{signature(result)[:160]}"


def reason_for(result: dict[str, Any], causes: Sequence[Cause], previous: str | None) -> str:
    """A failing test's reason on --update: its cause, else what the file said before (unless
    that was an [auto] one), else its error marked [auto]."""
    reason = classify(result, causes)
    if reason:
        return reason
    if previous and not previous.startswith(AUTO):
        return previous
    return auto_reason(result)


def updated_expected(results: dict[str, dict[str, Any]], expected: dict[str, str],
                     flaky: dict[str, str], causes: Sequence[Cause],
                     ran_all: bool) -> dict[str, str]:
    """The expected failures after a run: this run's failures with their reasons; entries of
    tests not run this time stay, unless the whole suite ran."""
    new: dict[str, str] = {}
    if not ran_all:
        new.update((tid, reason) for tid, reason in expected.items() if tid not in results)
    for tid, result in results.items():
        if result["outcome"] in FAILING and tid not in flaky:
            new[tid] = reason_for(result, causes, expected.get(tid))
    return new


# -- verdict ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    summary: dict[str, Any]
    unexpected_failures: list[str]
    unexpected_passes: list[str]

    @property
    def ok(self) -> bool:
        return not self.unexpected_failures and not self.unexpected_passes


def judge(results: dict[str, dict[str, Any]], expected: dict[str, str],
          flaky: dict[str, str]) -> Verdict:
    """Counts, pass rate (passed / (passed + failed + errors); skipped tests do not count)
    and the outcomes the list does not expect."""
    counts = collections.Counter(r["outcome"] for r in results.values())
    judged = counts["passed"] + counts["failed"] + counts["error"]
    failing = {t for t, r in results.items() if r["outcome"] in FAILING}
    passing = {t for t, r in results.items() if r["outcome"] == "passed"}
    unexpected_failures = sorted(failing - expected.keys() - flaky.keys())
    unexpected_passes = sorted((passing & expected.keys()) - flaky.keys())
    by_reason = collections.Counter(expected[t] for t in failing if t in expected)
    summary = {
        "tests": len(results),
        "passed": counts["passed"],
        "failed": counts["failed"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "pass_rate": round(counts["passed"] / judged, 4) if judged else None,
        "unexpected_failures": unexpected_failures,
        "unexpected_passes": unexpected_passes,
        "failures_by_reason": dict(by_reason.most_common()),
    }
    return Verdict(summary, unexpected_failures, unexpected_passes)


def parser_for(suite: Suite, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--update", action="store_true",
                        help=f"rewrite {rel(suite.expected_file)} from this run's failures")
    parser.add_argument("--timeout", type=float, default=suite.per_test_timeout,
                        help=f"seconds one test may run (default {suite.per_test_timeout:g})")
    parser.add_argument("--run-timeout", type=float, default=suite.run_timeout,
                        help=f"seconds the whole run may take (default {suite.run_timeout:g})")
    parser.add_argument("-k", dest="pattern", metavar="REGEX",
                        help="run only the tests whose id matches REGEX (re.search)")
    parser.add_argument("--from-results", action="store_true",
                        help=f"judge (or --update from) the last run's {rel(suite.results_file)} "
                             "instead of running the suite: to reclassify after editing the "
                             "cause table")
    parser.add_argument("--no-netns", action="store_true",
                        help="do not run the server and suite in a private network namespace")
    return parser


def reexec_in_netns(args: argparse.Namespace, script: Path) -> int | None:
    """Run this script again inside a network namespace of its own; None where it can't."""
    if args.no_netns or in_netns():
        return None
    isolated = netns_prefix()
    if not isolated:
        print("note: no network namespace (unshare -rn): DuckDB may try to download "
              "extensions while the suite runs", flush=True)
        return None
    env = {**os.environ, NETNS_ENV: "1"}
    return subprocess.run([*isolated, sys.executable, str(script), *sys.argv[1:]],
                          env=env).returncode


Runner = Callable[[Suite, IO[bytes], Any], tuple[dict[str, dict[str, Any]], list[str]]]


def main_flow(suite: Suite, args: argparse.Namespace, script: Path,
              prepare: Callable[[], Any], runner: Runner) -> int:
    """``prepare()`` (downloads, venvs: it needs the network) here, then the rest of the run
    in a network namespace of its own where there is one: ``runner(suite, log, prepared)``
    starts the server and the children; then the verdict."""
    try:
        prepared = None if args.from_results else prepare()
    except SuiteError as e:
        print(f"could not prepare {suite.title}: {e}", file=sys.stderr)
        return 2
    if args.from_results:
        return run_main(suite, args, lambda s, log: ({}, []))
    isolated = reexec_in_netns(args, script)
    if isolated is not None:
        return isolated
    return run_main(suite, args, lambda s, log: runner(s, log, prepared))


def run_main(suite: Suite, args: argparse.Namespace,
             runner: Callable[[Suite, IO[bytes]], tuple[dict[str, dict[str, Any]], list[str]]]
             ) -> int:
    """Run a suite with ``runner`` (which starts its server and children), then judge,
    report, write the results JSON and, with --update, the expected-failures file."""
    suite.per_test_timeout, suite.run_timeout = args.timeout, args.run_timeout
    suite.extra["pattern"] = args.pattern
    try:
        expected, flaky = read_expected(suite.expected_file, suite.id_pattern)
    except SuiteError as e:
        print(e, file=sys.stderr)
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"{suite.title} against reeldb serve (per-test timeout {suite.per_test_timeout:g} s"
          f", run timeout {suite.run_timeout:g} s)...", flush=True)
    t0 = time.monotonic()
    try:
        if args.from_results:
            results, problems = stored_results(suite, args)
        else:
            with open(suite.suite_log, "wb") as log:
                results, problems = runner(suite, log)
    except SuiteError as e:
        print(f"could not run {suite.title}: {e}", file=sys.stderr)
        print(f"logs: {rel(suite.suite_log)}, {rel(suite.server_log)}", file=sys.stderr)
        summary = {"suite": suite.name, "title": suite.title, "version": suite.version,
                   "seconds": round(time.monotonic() - t0, 1),
                   **judge({}, expected, flaky).summary, "problems": [f"not run: {e}"]}
        suite.results_file.write_text(json.dumps({"summary": summary, "tests": []},
                                                 indent=1) + "\n")
        return 2
    if args.pattern:
        results = {t: r for t, r in results.items() if re.search(args.pattern, t)}
    elapsed = suite.extra.get("stored_seconds", time.monotonic() - t0)
    verdict = judge(results, expected, flaky)
    summary = {"suite": suite.name, "title": suite.title, "version": suite.version,
               "python": sys.version.split()[0], "filter": args.pattern,
               "seconds": round(elapsed, 1), **verdict.summary, "problems": problems}
    for tid, result in results.items():  # what the list says, next to each outcome
        if tid in flaky:
            result.update(listed="flaky", reason=flaky[tid])
        elif tid in expected:
            result.update(listed="expected failure", reason=expected[tid])
        elif result["outcome"] in FAILING:
            result.update(cause=classify(result, suite.causes))
    suite.results_file.write_text(json.dumps({"summary": summary,
                                              "tests": list(results.values())},
                                             indent=1) + "\n")
    print_report(suite, summary, results, expected, flaky, elapsed)
    if args.update:
        new = updated_expected(results, expected, flaky, suite.causes,
                               ran_all=args.pattern is None and not problems)
        suite.expected_file.write_text(format_expected(suite.title, suite.name, new, flaky),
                                       encoding="utf-8")
        added, removed = new.keys() - expected.keys(), expected.keys() - new.keys()
        print(f"updated {rel(suite.expected_file)}: {len(new)} expected failures "
              f"({len(added)} added, {len(removed)} removed)")
        auto = sum(r.startswith(AUTO) for r in new.values())
        if auto:
            print(f"{auto} entries carry an {AUTO.strip()} reason: add their causes to the "
                  f"table in compat/{suite.name}_suite.py")
        return 2 if problems else 0
    return print_verdict(suite, verdict, results, expected, problems, args.pattern)


def stored_results(suite: Suite, args: argparse.Namespace
                   ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The outcomes of the last run, from its results JSON (its -k filter becomes this one's)."""
    try:
        data = json.loads(suite.results_file.read_text())
    except (OSError, ValueError) as e:
        raise SuiteError(f"no results of an earlier run to judge: {e}") from e
    args.pattern = data["summary"].get("filter")
    suite.extra["stored_seconds"] = float(data["summary"].get("seconds", 0.0))
    keep = ("listed", "reason", "cause")
    results = {t["id"]: {k: v for k, v in t.items() if k not in keep} for t in data["tests"]}
    return results, list(data["summary"].get("problems", []))


def print_report(suite: Suite, summary: dict[str, Any], results: dict[str, dict[str, Any]],
                 expected: dict[str, str], flaky: dict[str, str], elapsed: float) -> None:
    print(f"{summary['tests']} tests in {elapsed:.0f} s: {summary['passed']} passed, "
          f"{summary['failed']} failed, {summary['errors']} errors, "
          f"{summary['skipped']} skipped")
    if summary["pass_rate"] is not None:
        judged = summary["passed"] + summary["failed"] + summary["errors"]
        print(f"pass rate {summary['passed'] / judged:.1%} ({summary['passed']}/{judged}, "
              "passed / (passed + failed + errors); skipped tests not counted)")
    flaky_run = [t for t in flaky if t in results]
    print(f"expected failures listed: {len(expected)}; flaky, not judged: {len(flaky_run)}")
    print(f"results: {rel(suite.results_file)}  logs: {rel(suite.suite_log)}, "
          f"{rel(suite.server_log)}")
    for problem in summary["problems"]:
        print(f"PROBLEM: {problem}")


def print_verdict(suite: Suite, verdict: Verdict, results: dict[str, dict[str, Any]],
                  expected: dict[str, str], problems: list[str], pattern: str | None) -> int:
    by_reason = verdict.summary["failures_by_reason"]
    if by_reason:
        print("failures by reason (top 10):")
        for reason, n in list(by_reason.items())[:10]:
            print(f"  {n:4d}  {reason}")
    auto = sum(r.startswith(AUTO) for r in expected.values())
    if auto:
        print(f"note: {auto} entries of {rel(suite.expected_file)} still carry an "
              f"{AUTO.strip()} reason")
    if not pattern and not problems:
        for tid in sorted(t for t in expected if t not in results):
            print(f"warning: listed but not run: {tid}")
    for tid in sorted(t for t in expected if results.get(t, {}).get("outcome") == "skipped"):
        print(f"warning: listed but skipped: {tid}")
    update = f"make compat SUITE={suite.name} UPDATE=1"
    if verdict.unexpected_failures:
        print(f"\nUNEXPECTED FAILURES ({len(verdict.unexpected_failures)}): fix them, or list "
              f"them in {rel(suite.expected_file)} with a reason ({update})")
        for tid in verdict.unexpected_failures:
            r = results[tid]
            print(f"  {tid}: {r['outcome']}: {signature(r)[:300]}")
    if verdict.unexpected_passes:
        print(f"\nUNEXPECTED PASSES ({len(verdict.unexpected_passes)}): remove them from "
              f"{rel(suite.expected_file)} ({update})")
        for tid in verdict.unexpected_passes:
            print(f"  {tid}  # was: {expected[tid]}")
    if problems:
        return 2
    if not verdict.ok:
        return 1
    print("OK: every outcome is the expected one")
    return 0
