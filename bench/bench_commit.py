"""Small durable commits on a local folder: what one single-row INSERT costs, and how much
of it is fsync.

Printed, from one run on the same disk:
- single-row autocommit ``INSERT`` latency (p50 / p99) into ``t (id BIGINT PRIMARY KEY,
  prompt TEXT, score REAL)``;
- fsyncs per commit (counted) and the rounds they run in;
- the disk's own fsync latency (write 4 KiB + fsync of one file), and four files fsynced
  one after another against four at once: the machine's limit for a commit's durability;
- the same INSERTs with fsync turned off (a child process): the CPU floor.

``python bench/bench_commit.py [--inserts N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

CHILD = r"""
import json, os, sys, tempfile, time
import reeldb
from reeldb.storage import local
count = {"fsync": 0}
real = os.fsync
def fsync(fd):
    count["fsync"] += 1
    if sys.argv[2] == "on":
        real(fd)
os.fsync = fsync
db = reeldb.connect(tempfile.mkdtemp(dir=sys.argv[3]))
db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, prompt TEXT, score REAL)")
n = int(sys.argv[1])
times = []
for i in range(n + 20):
    if i == 20:
        count["fsync"] = 0
    t0 = time.perf_counter()
    db.execute("INSERT INTO t VALUES (%s, %s, %s)", (i, f"prompt {i}", 0.5))
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times[20:], "fsyncs": count["fsync"] / n}))
"""


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_fsync(folder: str, runs: int = 40) -> dict[str, float]:
    """Median ms: one 4 KiB write + fsync; four files fsynced in turn; four at once."""
    pool = ThreadPoolExecutor(4)
    one, seq, par = [], [], []

    def files(n: int) -> list[str]:
        out = []
        for _ in range(n):
            fd, p = tempfile.mkstemp(dir=folder)
            os.write(fd, os.urandom(4096))
            os.close(fd)
            out.append(p)
        return out

    for _ in range(runs):
        (p,) = files(1)
        t = time.perf_counter()
        _fsync_file(p)
        one.append(time.perf_counter() - t)
        ps = files(4)
        t = time.perf_counter()
        for p in ps:
            _fsync_file(p)
        seq.append(time.perf_counter() - t)
        ps = files(4)
        t = time.perf_counter()
        list(pool.map(_fsync_file, ps))
        par.append(time.perf_counter() - t)
    pool.shutdown()
    return {name: 1000 * statistics.median(xs) for name, xs in (("one", one), ("four in turn", seq),
                                                                 ("four at once", par))}


def inserts(n: int, fsync: str, folder: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), fsync, folder], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inserts", type=int, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as folder:
        load = os.getloadavg()[0]
        print(f"bench_commit: {args.inserts} single-row INSERTs, {os.cpu_count()} cores, load average {load:.2f}")
        disk = disk_fsync(folder)
        print("disk: fsync of one 4 KiB file " f"{disk['one']:.2f} ms; four files in turn {disk['four in turn']:.2f} ms, "
              f"four at once {disk['four at once']:.2f} ms")
        for mode in ("on", "off"):
            got = inserts(args.inserts, mode, folder)
            ts = sorted(got["times"])
            p50, p99 = statistics.median(ts), ts[int(0.99 * (len(ts) - 1))]
            label = "durable (fsync on)" if mode == "on" else "fsync off (CPU floor)"
            print(f"single-row INSERT, {label:22s} p50 {1000 * p50:6.2f} ms  p99 {1000 * p99:6.2f} ms  "
                  f"fsyncs per commit {got['fsyncs']:.1f}")


if __name__ == "__main__":
    main()
