"""Nested ``transaction()`` blocks are savepoints: an inner failure undoes the inner block only."""

from __future__ import annotations

import pytest

import reeldb


@pytest.fixture
def conn(tmp_path):
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id INT)")
    yield db
    db.close()


def ids(db) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM t ORDER BY id").fetchall()]


def test_failed_inner_block_rolls_back_to_its_savepoint(conn):
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("inner")
        conn.execute("INSERT INTO t VALUES (3)")
    assert ids(conn) == [1, 3]


def test_failed_statement_in_inner_block_leaves_outer_usable(conn):
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(reeldb.Error), conn.transaction():
            conn.execute("INSERT INTO t VALUES (2)")
            conn.execute("INSERT INTO nosuch VALUES (1)")
        conn.execute("INSERT INTO t VALUES (3)")
    assert ids(conn) == [1, 3]


def test_inner_blocks_nest_and_commit_with_the_outer(conn):
    with conn.transaction():
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(ValueError), conn.transaction():
                conn.execute("INSERT INTO t VALUES (2)")
                raise ValueError
        assert ids(conn) == [1]
    assert ids(conn) == [1]
    assert len(conn.log()) == 3  # schema, then one commit for the whole outer block


def test_outer_failure_undoes_released_inner_blocks(conn):
    with pytest.raises(KeyError), conn.transaction():
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1)")
        raise KeyError
    assert ids(conn) == []


def test_block_that_swallowed_an_error_rolls_back_and_says_so(conn):
    with pytest.raises(reeldb.Error) as ei, conn.transaction():
        conn.execute("INSERT INTO t VALUES (1)")
        try:
            conn.execute("INSERT INTO nosuch VALUES (1)")
        except reeldb.Error:
            pass  # caught, but the transaction is failed all the same
        with pytest.raises(reeldb.Error) as later:
            conn.execute("INSERT INTO t VALUES (2)")
        assert later.value.sqlstate == "25P02"
    assert ei.value.sqlstate == "25P02" and "rolled back" in str(ei.value)
    assert ids(conn) == []
    conn.execute("INSERT INTO t VALUES (3)")  # the connection is usable again
    assert ids(conn) == [3]
