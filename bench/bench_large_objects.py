"""Large objects over the wire: how fast psycopg2 imports a client file (libpq's 8 KiB
``lowrite`` fastpath calls) and reads it back, and what large objects cost the branch's
other commits (an INSERT into another table, before and after).

    PYTHONPATH=src python bench/bench_large_objects.py [--sizes 1,16,64]

A ``reeldb serve`` on a fresh database in a temporary folder (no users: loopback is
trusted). Prints figures only (no asserts).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psycopg2

import reeldb
from reeldb.server.server import BackgroundServer

INSERTS = 20  # INSERTs timed after each import


def insert_ms(cur) -> float:
    """Milliseconds of one autocommitted INSERT into an ordinary table (a commit each)."""
    t = time.perf_counter()
    for i in range(INSERTS):
        cur.execute("INSERT INTO t VALUES (%s)", (i,))
    return (time.perf_counter() - t) / INSERTS * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,16,64", help="MiB of each large object imported, in turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench"
        db = reeldb.connect(path)
        db.execute("CREATE TABLE t (id INT)")
        db.close()
        srv = BackgroundServer(str(path), port=0)
        try:
            host, port = srv.address
            conn = psycopg2.connect(host=host, port=port, dbname="bench", user="bench")
            conn.autocommit = True
            print(f"INSERT with no large objects: {insert_ms(conn.cursor()):.1f} ms")
            total = 0
            for mib in (int(x) for x in args.sizes.split(",")):
                data = os.urandom(mib << 20)
                source = Path(tmp) / f"in-{mib}.bin"
                source.write_bytes(data)
                conn.autocommit = False
                t = time.perf_counter()
                lo = conn.lobject(0, "rb", 0, str(source))  # lo_creat + 8 KiB lowrites
                conn.commit()
                imported = time.perf_counter() - t
                t = time.perf_counter()
                got = conn.lobject(lo.oid, "rb").read()
                conn.commit()
                read = time.perf_counter() - t
                assert got == data
                total += mib
                conn.autocommit = True
                print(f"{mib} MiB: import {imported:.2f} s ({mib / imported:.1f} MiB/s), read {read:.2f} s "
                      f"({mib / read:.1f} MiB/s); INSERT with {total} MiB of large objects: "
                      f"{insert_ms(conn.cursor()):.1f} ms")
            conn.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
