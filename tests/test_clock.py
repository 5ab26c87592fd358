"""now() and its kin as PostgreSQL keeps them: the transaction's start for every statement
of a transaction, the statement's start for statement_timestamp(), and a clock that moves for
clock_timestamp()."""

from __future__ import annotations

import datetime as dt
import time

import reeldb

TZ = "TIMESTAMP WITH TIME ZONE"


def test_now_is_the_transactions_start_in_every_statement(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT, at TIMESTAMPTZ DEFAULT now())")
    db.execute("BEGIN")
    first = db.execute("SELECT now(), current_timestamp, transaction_timestamp(), statement_timestamp()").fetchone()
    time.sleep(0.02)
    db.execute("INSERT INTO t (a) VALUES (1)")  # the default
    db.execute("INSERT INTO t VALUES (2, now()), (3, current_timestamp)")
    later = db.execute("SELECT now(), statement_timestamp()").fetchone()
    db.execute("COMMIT")
    assert first[0] == first[1] == first[2] == later[0]
    assert later[1] > first[3]  # each statement's own start
    assert db.execute("SELECT a FROM t WHERE at = %s ORDER BY a", [first[0]]).fetchall() == [(1,), (2,), (3,)]
    after = db.execute("SELECT now(), statement_timestamp()").fetchone()  # its own transaction
    assert after[0] == after[1] > first[0]
    cur = db.execute("SELECT now(), current_timestamp, statement_timestamp(), clock_timestamp()")
    assert [d[1] for d in cur.description] == [TZ] * 4


def test_current_timestamp_with_a_precision_rounds(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("BEGIN")
    now, rounded = db.execute("SELECT now(), current_timestamp(2)").fetchone()
    db.execute("COMMIT")
    assert rounded.microsecond % 10_000 == 0
    assert abs(rounded - now) <= dt.timedelta(microseconds=5_000)


def test_clock_timestamp_moves_row_by_row(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    rows = [r[0] for r in db.execute("SELECT clock_timestamp() FROM generate_series(1, 500)").fetchall()]
    assert rows == sorted(rows) and rows[-1] > rows[0]  # psycopg2's suite relies on this
    db.execute("BEGIN")
    a = db.execute("SELECT clock_timestamp(), now()").fetchone()
    time.sleep(0.01)
    b = db.execute("SELECT clock_timestamp(), now()").fetchone()
    db.execute("COMMIT")
    assert b[0] > a[0] and a[1] == b[1]


def test_a_temporary_tables_default_now_is_each_inserts_time(tmp_path) -> None:
    """A DEFAULT is stored and run at each INSERT: not the CREATE statement's clock."""
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TEMPORARY TABLE t (id INT, at TIMESTAMPTZ DEFAULT now())")
    time.sleep(0.3)
    db.execute("INSERT INTO t (id) VALUES (1)")
    at, now = db.execute("SELECT at, now() FROM t").fetchone()
    assert now - at < dt.timedelta(seconds=0.2)
