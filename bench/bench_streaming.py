"""Streamed results: peak memory of a large SELECT in ``reeldb serve`` and through the
Python API, and how soon statement_timeout ends it, this checkout against an earlier
revision (``--baseline REV``).

    python bench/bench_streaming.py [--baseline REV] [--rows 5000000] [--width 100]

For each revision (the baseline's ``src/`` taken with ``git archive``), a ``reeldb serve``
of a near-empty database answers ``psql`` (output to /dev/null) for
``SELECT i, repeat('x', width) || i FROM generate_series(1, rows)``
(about 0.6 GB as Arrow at the defaults): the server's peak resident
memory (VmHWM) before and after, and the wall time; then the same query under
``SET statement_timeout = '1s'``: the time to its 57014. Through the API, a child process
reads the same query with ``fetchmany(10000)`` and reports its peak RSS.

Prints figures only (no asserts).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_server import ReeldbServer, step
from bench_trust import ROOT, Revision, baseline_src
from summary import Results, load

QUERY = "SELECT i, repeat('x', {width}) || i AS label FROM generate_series(1, {rows}) t(i)"

_INIT = """
import sys, reeldb
db = reeldb.connect(sys.argv[1])
db.execute("CREATE TABLE generations (prompt TEXT)")  # what ReeldbServer waits to read
db.execute("INSERT INTO generations VALUES ('a cat')")
db.close()
"""

_API = """
import resource, sys, tempfile, time, reeldb
db = reeldb.connect(tempfile.mkdtemp() + "/db")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
cur = db.execute(sys.argv[1])
n = 0
while rows := cur.fetchmany(10000):
    n += len(rows)
took = time.perf_counter() - t0
print(n, before // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, f"{took:.2f}")
"""


def peak_mib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) // 1024


def psql(srv: ReeldbServer, *commands: str) -> tuple[float, subprocess.CompletedProcess]:
    exe = shutil.which("psql")
    if exe is None:
        raise SystemExit("psql is not installed")
    args = [exe, "-X", "-A", "-t", "-o", "/dev/null", "-h", "127.0.0.1", "-p", str(srv.port),
            "-U", "bench", "-d", srv.name]
    for c in commands:
        args += ["-c", c]
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0, out


def measure(rev: Revision, root: Path, rows: int, width: int, res: Results) -> None:
    query = QUERY.format(rows=rows, width=width)
    rev.path.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _INIT, str(rev.path)], check=True, env=rev.env())
    srv = rev.serve(root / f"{rev.label}.log")
    try:
        psql(srv, QUERY.format(rows=1000, width=width))  # warm: imports, first query
        idle = peak_mib(srv.proc.pid)
        took, out = psql(srv, query)
        peak = peak_mib(srv.proc.pid)
        ok = "ok" if out.returncode == 0 else out.stderr.strip()[:80]
        step(f"   {rev.label}: {rows:,} rows over the wire in {took:.1f} s ({ok}); server peak {idle} -> {peak} MiB")
        res.add(f"{rev.label}: server peak RSS, {rows:,}-row SELECT", f"{idle} -> {peak} MiB",
                f"+{peak - idle} MiB, {took:.1f} s, {ok}")
        took, out = psql(srv, "SET statement_timeout = '1s'", query)
        state = "57014" if "statement timeout" in out.stderr else out.stderr.strip()[:80] or "no error"
        peak2 = peak_mib(srv.proc.pid)
        step(f"   {rev.label}: with statement_timeout = 1s: {state} after {took:.2f} s; server peak {peak2} MiB")
        res.add(f"{rev.label}: statement_timeout 1s, same SELECT", f"{took:.2f} s", f"{state}; peak {peak2} MiB")
    finally:
        srv.stop()
    out = subprocess.run([sys.executable, "-c", _API, query], capture_output=True, text=True,
                         env=rev.env(), timeout=600)
    if out.returncode != 0:
        res.add(f"{rev.label}: API fetchmany(10000)", "failed", out.stderr.strip().splitlines()[-1][:80])
        return
    n, before, after, secs = out.stdout.split()
    step(f"   {rev.label}: API fetchmany(10000) over {int(n):,} rows: peak {before} -> {after} MiB, {secs} s")
    res.add(f"{rev.label}: API peak RSS, fetchmany(10000)", f"{before} -> {after} MiB", f"{secs} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", metavar="REV", help="git revision to compare against")
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--width", type=int, default=100, help="characters of the text column")
    args = p.parse_args(argv)
    res = Results(title="bench_streaming: peak memory of a large SELECT, and statement_timeout")
    step(f"bench_streaming: {args.rows:,} rows of ~{args.width + 15} bytes, {os.cpu_count()} cores, {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        root = Path(tmp)
        revs = [Revision("this", ROOT / "src", root)]
        if args.baseline:
            revs.append(Revision("baseline", baseline_src(args.baseline, root), root))
        for r in revs:
            measure(r, root, args.rows, args.width, res)
    res.print_summary()
    print(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
