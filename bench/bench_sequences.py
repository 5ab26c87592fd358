"""What identity columns and sequences cost on the write path.

    python bench/bench_sequences.py [--rows 10000] [--repeat 5]

Times, best of --repeat, in one embedded database on local disk: INSERT ... SELECT of
--rows rows into a table with a plain BIGINT id (the id computed in SQL) and into one with
``GENERATED ALWAYS AS IDENTITY`` (its values drawn with one reservation of the sequence's
counter per statement), then ``SELECT nextval('s') FROM generate_series(1, rows)`` for a
sequence with CACHE 1 and CACHE 100 (values drawn per chunk of rows DuckDB hands over).

Prints figures only (no asserts).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import reeldb


def best_ms(db: reeldb.Connection, sql: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        db.execute(sql)
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = reeldb.connect(tmp + "/db")
        db.execute("CREATE TABLE plain (id BIGINT, v TEXT)")
        db.execute("CREATE TABLE ident (id BIGINT GENERATED ALWAYS AS IDENTITY, v TEXT)")
        db.execute("CREATE SEQUENCE s1")
        db.execute("CREATE SEQUENCE s100 CACHE 100")
        n = args.rows
        rows = [
            ("INSERT, plain BIGINT id", f"INSERT INTO plain SELECT i, 'x' FROM generate_series(1, {n}) g(i)"),
            ("INSERT, identity id", f"INSERT INTO ident (v) SELECT 'x' FROM generate_series(1, {n})"),
            ("nextval per row, CACHE 1", f"SELECT nextval('s1') FROM generate_series(1, {n})"),
            ("nextval per row, CACHE 100", f"SELECT nextval('s100') FROM generate_series(1, {n})"),
        ]
        print(f"{n} rows, best of {args.repeat}")
        for label, sql in rows:
            ms = best_ms(db, sql, args.repeat)
            print(f"  {label:<28} {ms:9.1f} ms  {ms * 1000 / n:7.2f} us/row")
        db.close()


if __name__ == "__main__":
    main()
