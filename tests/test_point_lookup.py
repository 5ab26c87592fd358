"""The primary-key lookup path gives exactly what the general SQL path gives."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import reeldb


@pytest.fixture
def items(db):
    db.execute("""CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT UNIQUE, score REAL, price NUMERIC(8, 2),
        meta JSONB, tag UUID, emb VECTOR(3), data BYTEA, at TIMESTAMPTZ, flag BOOLEAN)""")
    rng = np.random.default_rng(0)
    for i in range(40):
        db.execute("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s)",
                   (i, f"n{i}", float(i) / 3, i * 1.25, {"i": i, "s": [1, 2]}, str(uuid.UUID(int=i)),
                    rng.standard_normal(3).astype(np.float32), bytes([i]) * 3, i % 2 == 0))
    db.execute("DELETE FROM items WHERE id = 7")
    db.execute("UPDATE items SET score = -1 WHERE id = 8")
    return db


def both(db, where: str, params=None, cols: str = "*") -> tuple[list, list]:
    """The fast path (key = value) and the general path (a WHERE it cannot use)."""
    fast = db.execute(f"SELECT {cols} FROM items WHERE {where}", params)
    slow = db.execute(f"SELECT {cols} FROM items WHERE ({where}) OR false", params)
    rows_fast, rows_slow = fast.fetchall(), slow.fetchall()
    assert [d[:2] for d in fast.description] == [d[:2] for d in slow.description]
    return rows_fast, rows_slow


@pytest.mark.parametrize(("where", "params"), [
    ("id = 5", None), ("id = %s", (5,)), ("%s = id", (5,)), ("items.id = %s", ("5",)), ("name = 'n12'", None),
    ("id = 7", None), ("id = 8", None), ("id = 1000", None), ("id = %s", (2**70,)),
])
@pytest.mark.slow
def test_same_rows_as_the_general_path(items, where, params) -> None:
    for cols in ("*", "id AS key, emb, meta, tag, data, name", "name, items.id"):
        fast, slow = both(items, where, params, cols)
        assert len(fast) == len(slow) and all(same(f, s) for f, s in zip(fast, slow))


def same(a, b) -> bool:
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return type(a) is type(b) and a == b


def test_other_clauses_still_apply(items) -> None:
    assert items.execute("SELECT count(*), max(score) FROM items WHERE id = 3 AND score > 100").fetchall() == [(0, None)]
    assert items.execute("SELECT name FROM items AS i WHERE i.id = 3 AND i.flag = false").fetchall() == [("n3",)]
    assert items.execute("SELECT upper(name) AS u FROM items WHERE name = 'n4'").fetchall() == [("N4",)]
    with pytest.raises(reeldb.ProgrammingError):
        items.execute("SELECT nope FROM items WHERE id = 3")


def test_lookup_follows_writes_and_transactions(items) -> None:
    items.execute("BEGIN")
    items.execute("UPDATE items SET name = 'renamed' WHERE id = 3")
    assert items.execute("SELECT name FROM items WHERE id = 3").fetchall() == [("renamed",)]
    items.execute("ROLLBACK")
    assert items.execute("SELECT name FROM items WHERE id = 3").fetchall() == [("n3",)]
    items.execute("INSERT INTO items (id, name) VALUES (100, 'new')")
    assert items.execute("SELECT name FROM items WHERE id = 100").fetchall() == [("new",)]
