"""``db.diff(a, b)`` and ``reeldb_diff``: rows added and removed, cells changed, table and
column changes, between branches, tags and commits; unchanged fragments are not read."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import numpy as np
import pytest

import reeldb
from reeldb.catalog.diff import DIFF_SCHEMA
from versioning_helpers import fragment_reads, rows, sqlstate


@pytest.fixture
def db(path: str) -> reeldb.Connection:
    conn = reeldb.connect(path)
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')")
    yield conn
    conn.close()


def rowid_of(db: reeldb.Connection, key: int, table: str = "t", ref: str | None = None) -> int:
    return next(r for r, v in rows(db, table, ref).items() if v["id"] == key)


def cells(td: Any) -> list[tuple]:
    return [(r["_rowid"], r["column"], r["old"], r["new"]) for r in td.changed.to_pylist()]


# --- rows -----------------------------------------------------------------------------------------


def test_insert_delete_update(db: reeldb.Connection) -> None:
    c0 = db.head
    r1, r2 = rowid_of(db, 1), rowid_of(db, 2)
    db.execute("INSERT INTO t VALUES (4, 40, 'four')")
    db.execute("DELETE FROM t WHERE id = 2")
    db.execute("UPDATE t SET b = 'uno' WHERE id = 1")
    r4 = rowid_of(db, 4)
    d = db.diff(c0)
    assert list(d) == ["t"]
    td = d["t"]
    assert td.status == "modified" and td.schema_changes == []
    assert td.added.to_pylist() == [{"_rowid": r4, "id": 4, "a": 40, "b": "four"}]
    assert td.removed.to_pylist() == [{"_rowid": r2, "id": 2, "a": 20, "b": "two"}]
    assert cells(td) == [(r1, "b", "one", "uno")]
    assert td.changed.column_names == ["_rowid", "column", "old", "new"]
    assert td.changed_rows == 1
    assert d.summary() == [{"table": "t", "status": "modified", "added": 1, "removed": 1, "changed": 1,
                            "schema": []}]
    # the other way round swaps every side
    back = db.diff(db.head, c0)["t"]
    assert back.added.to_pylist() == td.removed.to_pylist()
    assert back.removed.to_pylist() == td.added.to_pylist()
    assert cells(back) == [(r1, "b", "uno", "one")]


def test_update_of_several_cells_and_rows(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("UPDATE t SET a = a + 1, b = upper(b) WHERE id <= 2")
    d = db.diff(c0)["t"]
    r1, r2 = rowid_of(db, 1), rowid_of(db, 2)
    assert cells(d) == [(r1, "a", "10", "11"), (r1, "b", "one", "ONE"),
                        (r2, "a", "20", "21"), (r2, "b", "two", "TWO")]
    assert d.changed_rows == 2 and d.added.num_rows == 0 and d.removed.num_rows == 0


def test_update_to_same_value_is_no_change(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("UPDATE t SET a = 10 WHERE id = 1")  # rewrites the row, changes nothing
    assert db.diff(c0) == {}
    assert db.diff(c0).to_arrow().num_rows == 0


def test_update_of_row_with_null_cells_shows_only_the_changed_cell(path: str) -> None:
    """A NULL cell left alone is not a change (NULL is not distinct from NULL)."""
    db = reeldb.connect(path)
    db.execute("CREATE TABLE n (id INT, a INT, b TEXT, e VECTOR(2), j JSONB)")
    db.execute("INSERT INTO n VALUES (1, 0, NULL, NULL, NULL)")
    c0 = db.head
    db.execute("UPDATE n SET a = 1")
    got = [(c, o, n) for _, c, o, n in cells(db.diff(c0)["n"])]
    assert got == [("a", "0", "1")]
    db.close()


def test_update_cell_to_and_from_null(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("UPDATE t SET b = NULL WHERE id = 1")
    r1 = rowid_of(db, 1)
    assert cells(db.diff(c0)["t"]) == [(r1, "b", "one", None)]
    c1 = db.head
    db.execute("UPDATE t SET b = 'back' WHERE id = 1")
    assert cells(db.diff(c1)["t"]) == [(r1, "b", None, "back")]


TYPES = [
    ("INT", 1, 2, "1", "2"),
    ("BIGINT", 2**40, 2**40 + 1, str(2**40), str(2**40 + 1)),
    ("REAL", 0.5, 0.9, "0.5", "0.9"),
    ("DOUBLE PRECISION", 0.25, 1e-3, "0.25", "0.001"),
    ("BOOLEAN", True, False, "true", "false"),
    ("TEXT", "a", "b", "a", "b"),
    ("DATE", dt.date(2024, 1, 1), dt.date(2024, 2, 29), "2024-01-01", "2024-02-29"),
    ("TIMESTAMP", dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 13, 30),
     "2024-01-01 12:00:00", "2024-01-01 13:30:00"),
    ("UUID", uuid.UUID(int=1), uuid.UUID(int=2), str(uuid.UUID(int=1)), str(uuid.UUID(int=2))),
    ("NUMERIC(10,2)", decimal.Decimal("1.50"), decimal.Decimal("2.25"), "1.50", "2.25"),
    ("JSONB", {"k": 1}, {"k": [1, 2]}, {"k": 1}, {"k": [1, 2]}),
    ("VECTOR(3)", [1, 2, 3], [1, 2, 4], "[1,2,3]", "[1,2,4]"),
    ("TENSOR(float32, 2, 2)", np.array([[1, 2], [3, 4]], np.float32), np.array([[1, 2], [3, 5]], np.float32),
     "[1,2,3,4]", "[1,2,3,5]"),
    ("BYTEA", b"ab", b"abc", "<bytea 2 bytes>", "<bytea 3 bytes>"),
    ("BYTEA", b"x" * 5000, b"y" * 6000, "<bytea 5000 bytes>", "<bytea 6000 bytes>"),  # blob pack
    ("BYTEA", b"x" * 5000, b"y" * 5000, "<bytea 5000 bytes>", "<bytea 5000 bytes>"),  # same length
]


@pytest.mark.parametrize(("typ", "old", "new", "old_text", "new_text"), TYPES,
                         ids=[f"{t[0]}-{i}" for i, t in enumerate(TYPES)])
def test_update_of_each_type(path: str, typ: str, old: Any, new: Any, old_text: Any, new_text: Any) -> None:
    db = reeldb.connect(path)
    db.execute(f"CREATE TABLE t (id INT, c {typ})")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s)", [old, old])
    c0 = db.head
    db.execute("UPDATE t SET c = %s WHERE id = 1", [new])
    d = db.diff(c0)
    assert list(d) == ["t"]
    ((rowid, col, o, n),) = cells(d["t"])
    assert rowid == rowid_of(db, 1)
    assert col == "c"
    if isinstance(old_text, dict):  # JSON: compare as JSON
        assert (json.loads(o), json.loads(n)) == (old_text, new_text)
    else:
        assert (o, n) == (old_text, new_text)
    # inserts and deletes of that type show whole rows; the long form renders them as JSON
    db.execute("INSERT INTO t VALUES (3, %s)", [new])
    db.execute("DELETE FROM t WHERE id = 2")
    d = db.diff(c0)["t"]
    assert d.added.column("id").to_pylist() == [3] and d.removed.column("id").to_pylist() == [2]
    long = {r["change"]: r for r in d.to_arrow().to_pylist()}
    assert json.loads(long["added"]["new"])["id"] == 3
    assert json.loads(long["removed"]["old"])["id"] == 2
    assert long["added"]["old"] is None and long["removed"]["new"] is None
    db.close()


def test_blob_cells_are_references_not_bytes(path: str, mp4_bytes: bytes) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE m (id INT, clip VIDEO)")
    c0 = db.head
    db.execute("INSERT INTO m VALUES (1, %s)", [mp4_bytes])
    (row,) = db.diff(c0)["m"].added.to_pylist()
    assert row["clip"]["length"] == len(mp4_bytes)
    assert row["clip"]["pack"] and not row["clip"]["data"], "a diff must not load blob bytes"
    assert f"{len(mp4_bytes)} bytes" in db.diff(c0).to_arrow().column("new")[0].as_py()
    db.close()


# --- tables and columns ---------------------------------------------------------------------------


def test_table_added_and_dropped(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("CREATE TABLE u (x INT)")
    db.execute("INSERT INTO u VALUES (1), (2)")
    d = db.diff(c0)
    assert list(d) == ["u"]
    assert d["u"].status == "added"
    assert d["u"].added.column("x").to_pylist() == [1, 2]
    c1 = db.head
    db.execute("DROP TABLE t")
    d = db.diff(c1)
    assert list(d) == ["t"] and d["t"].status == "dropped"
    assert sorted(d["t"].removed.column("id").to_pylist()) == [1, 2, 3]
    assert d["t"].added.num_rows == 0
    s = {x["table"]: x for x in db.diff(c0).summary()}
    assert s["t"]["status"] == "dropped" and s["u"]["status"] == "added"


def test_empty_table_created_shows(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("CREATE TABLE empty (x INT)")
    assert db.diff(c0)["empty"].status == "added"


def test_table_renamed_is_one_change_not_drop_and_create(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("ALTER TABLE t RENAME TO renamed")
    d = db.diff(c0)
    assert "renamed" in d, f"a renamed table is missing from the diff: {d}"
    td = d["renamed"]
    assert td.status == "modified"
    assert td.added.num_rows == 0 and td.removed.num_rows == 0
    assert any("rename" in s and "t" in s for s in td.schema_changes)


def test_table_renamed_and_changed(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("ALTER TABLE t RENAME TO renamed")
    db.execute("UPDATE renamed SET a = 0 WHERE id = 3")
    d = db.diff(c0)
    assert list(d) == ["renamed"]
    assert [c[1:] for c in cells(d["renamed"])] == [("a", "30", "0")]
    assert list(db.diff(c0, table="t")) == ["renamed"]  # either name selects it
    assert list(db.diff(c0, table="renamed")) == ["renamed"]


def test_column_added_dropped_renamed(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("ALTER TABLE t ADD COLUMN score REAL")
    assert db.diff(c0)["t"].schema_changes == ["add column score real"]
    assert db.diff(c0)["t"].changed.num_rows == 0
    c1 = db.head
    db.execute("ALTER TABLE t RENAME COLUMN b TO label")
    assert db.diff(c1)["t"].schema_changes == ["rename column b to label"]
    c2 = db.head
    db.execute("ALTER TABLE t DROP COLUMN a")
    assert db.diff(c2)["t"].schema_changes == ["drop column a"]
    assert db.diff(c2)["t"].changed.num_rows == 0
    assert sorted(db.diff(c0)["t"].schema_changes) == ["add column score real", "drop column a",
                                                        "rename column b to label"]
    # a change under the new name
    db.execute("UPDATE t SET label = 'eins' WHERE id = 1")
    assert [c[1:] for c in cells(db.diff(c2)["t"])] == [("label", "one", "eins")]


def test_values_of_an_added_column_show_as_changes(db: reeldb.Connection) -> None:
    """ADD COLUMN then UPDATE: the row's new cell went from NULL to a value."""
    c0 = db.head
    db.execute("ALTER TABLE t ADD COLUMN score INT")
    db.execute("UPDATE t SET score = 5 WHERE id = 1")
    d = db.diff(c0)["t"]
    assert cells(d) == [(rowid_of(db, 1), "score", None, "5")]
    assert db.diff(c0).summary()[0]["changed"] == 1


# --- refs -----------------------------------------------------------------------------------------


def test_diff_between_branches_tags_and_commits(db: reeldb.Connection) -> None:
    v1 = db.tag("v1")
    db.branch("exp")
    db.execute("UPDATE t SET a = 0 WHERE id = 1")
    db.execute("INSERT INTO t VALUES (5, 50, 'five')")
    exp = db.head
    db.tag("v2")
    db.checkout("main")
    db.execute("DELETE FROM t WHERE id = 3")
    for a, b in (("main", "exp"), ("v1", "v2"), (v1, exp), (v1[:8], exp[:8]), ("v1", "exp")):
        d = db.diff(a, b)
        # main deleted row 3 after exp branched off: from main to exp it comes back
        assert sorted(d["t"].added.column("id").to_pylist()) == ([3, 5] if a == "main" else [5])
        assert [c[1:] for c in cells(d["t"])] == [("a", "10", "0")]
        assert d["t"].removed.num_rows == 0
    # b defaults to this connection's head
    assert db.diff("v1")["t"].removed.column("id").to_pylist() == [3]
    assert db.diff("main") == {}
    assert db.diff("exp", "exp") == {}


def test_diff_of_a_merge_against_its_parents(db: reeldb.Connection) -> None:
    db.branch("x")
    db.execute("UPDATE t SET b = 'x' WHERE id = 2")
    db.checkout("main")
    db.execute("UPDATE t SET a = 0 WHERE id = 1")
    ours = db.head
    m = db.merge("x").commit
    assert [c[1:] for c in cells(db.diff(ours, m)["t"])] == [("b", "two", "x")]
    assert [c[1:] for c in cells(db.diff("x", m)["t"])] == [("a", "10", "0")]


def test_diff_errors(db: reeldb.Connection) -> None:
    assert sqlstate(lambda: db.diff("nope")) == "42704"
    assert sqlstate(lambda: db.diff("main", "nope")) == "42704"
    assert sqlstate(lambda: db.diff("main", "main", table="nope")) == "42P01"
    assert sqlstate(lambda: db.execute("SELECT * FROM reeldb_diff('nope', 'main')")) == "42704"
    assert sqlstate(lambda: db.execute("SELECT * FROM reeldb_diff('main')")) == "42883"


def test_table_filter(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("CREATE TABLE u (x INT)")
    db.execute("INSERT INTO u VALUES (1)")
    db.execute("DELETE FROM t WHERE id = 1")
    assert sorted(db.diff(c0)) == ["t", "u"]
    assert list(db.diff(c0, table="t")) == ["t"]
    assert list(db.diff(c0, table="u")) == ["u"]


# --- long form and SQL ----------------------------------------------------------------------------


def test_to_arrow_long_form(db: reeldb.Connection) -> None:
    c0 = db.head
    db.execute("INSERT INTO t VALUES (4, 40, 'four')")
    db.execute("DELETE FROM t WHERE id = 2")
    db.execute("UPDATE t SET a = 11, b = 'uno' WHERE id = 1")
    long = db.diff(c0).to_arrow()
    assert long.schema == DIFF_SCHEMA
    got = sorted((r["change"], r["column"]) for r in long.to_pylist())
    assert got == [("added", None), ("changed", "a"), ("changed", "b"), ("removed", None)]
    added = next(r for r in long.to_pylist() if r["change"] == "added")
    assert json.loads(added["new"]) == {"id": 4, "a": 40, "b": "four"}
    assert db.diff(c0).df().shape == (4, 6)
    assert db.diff("main", "main").to_arrow().schema == DIFF_SCHEMA


def test_sql_reeldb_diff(db: reeldb.Connection) -> None:
    c0 = db.head
    db.branch("exp")
    db.execute("UPDATE t SET a = 0 WHERE id = 1")
    db.execute("CREATE TABLE u (x INT)")
    db.execute("INSERT INTO u VALUES (7)")
    db.checkout("main")
    r1 = rowid_of(db, 1)
    got = db.execute("SELECT * FROM reeldb_diff('t', 'main', 'exp')").fetchall()
    assert got == [("t", r1, "changed", "a", "10", "0")]
    assert [d[0] for d in db.execute("SELECT * FROM reeldb_diff('t', 'main', 'exp')").description] == \
        ["table", "_rowid", "change", "column", "old", "new"]
    two = db.execute('SELECT "table", change FROM reeldb_diff(\'main\', \'exp\') ORDER BY 1').fetchall()
    assert two == [("t", "changed"), ("u", "added")]
    # parameters, filters and aggregates over the table function
    n = db.execute("SELECT count(*) FROM reeldb_diff(%s, %s) WHERE change = 'added'", [c0, "exp"]).fetchone()
    assert n == (1,)
    joined = db.execute("SELECT t.b, d.new FROM reeldb_diff('t', 'main', 'exp') d "
                        "JOIN t ON t.id = 1 WHERE d._rowid = %s", [r1]).fetchall()
    assert joined == [("one", "0")]


# --- cost -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unchanged_fragments_are_not_read(path: str, monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, a INT, e VECTOR(2))")
    for i in range(40):
        db.execute("INSERT INTO t VALUES (%s, %s, %s)", [i, i, [i, 0]])
    c0 = db.head
    db.execute("UPDATE t SET a = -1 WHERE id = 17")
    assert len(db.catalog.snapshot(db.head)["t"].fragments) == 41
    db.close()
    fresh = reeldb.connect(path)  # nothing cached
    with fragment_reads(monkeypatch) as seen:
        d = fresh.diff(c0)
    assert [c[1:] for c in cells(d["t"])] == [("a", "17", "-1")]
    # the fragment the row left and the one it went to; not the 39 others
    assert len(set(seen)) <= 2, f"diff read {len(set(seen))} fragments for one changed row"
    with fragment_reads(monkeypatch) as seen:
        assert fresh.diff(c0, c0) == {}
    assert seen == []
    fresh.close()


def test_rowid_of_a_diff_finds_its_row_in_sql(db: reeldb.Connection) -> None:
    """``_rowid`` is hidden from ``SELECT *`` but can be named, so the rows a diff (or a
    merge conflict) reports can be looked up."""
    c0 = db.head
    db.execute("UPDATE t SET b = 'uno' WHERE id = 1")
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "a", "b"]
    got = db.execute("SELECT _rowid, * FROM t ORDER BY id").fetchall()
    assert {r[0]: r[1:] for r in got} == {k: (v["id"], v["a"], v["b"]) for k, v in rows(db, "t").items()}
    joined = db.execute("SELECT t.id, d.old, d.new FROM reeldb_diff('t', %s, 'main') d "
                        "JOIN t ON t._rowid = d._rowid", [c0]).fetchall()
    assert joined == [(1, "one", "uno")]


def test_table_dropped_and_recreated_under_the_same_name(db: reeldb.Connection) -> None:
    """Two different tables named ``t``: the old one's rows are removed, the new one's
    added; neither may hide the other."""
    c0 = db.head
    db.execute("DROP TABLE t")
    db.execute("CREATE TABLE t (id INT, w INT)")
    db.execute("INSERT INTO t VALUES (5, 5)")
    long = db.diff(c0).to_arrow().to_pylist()
    assert sorted(r["change"] for r in long) == ["added", "removed", "removed", "removed"]
    got = db.execute("SELECT change, count(*) FROM reeldb_diff('t', %s, 'main') GROUP BY change "
                     "ORDER BY change", [c0]).fetchall()
    assert got == [("added", 1), ("removed", 3)]
