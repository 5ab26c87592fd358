"""Three-way merge (issue 3): by ``_rowid`` and cell by cell against the merge base.

* property tests: random inserts / updates / deletes (and ADD COLUMN) on two branches from
  a common base, checked against a plain-Python three-way model, for every strategy;
* fast-forward, up-to-date, merge commits with two parents, messages, stats;
* conflicts of every kind (cell, update/delete, delete/update, unique key, schema, table),
  with ``fail`` writing nothing at all;
* criss-cross histories and repeated merges without spurious conflicts;
* blob packs and matrices shared, not copied; what a merge reads;
* the SQL surface: ``reeldb_merge``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import reeldb
from versioning_helpers import all_files, commits, files, fragment_reads, rows, sqlstate

# --- the model ------------------------------------------------------------------------------

CELL = "cell"


def _changed(b: dict[str, Any], r: dict[str, Any]) -> bool:
    return any(r.get(c) != b.get(c) for c in set(b) | set(r))


def model_merge(base: dict[int, dict], ours: dict[int, dict], theirs: dict[int, dict],
                strategy: str, cols: set[str]) -> tuple[dict[int, dict], set[tuple]]:
    """The expected rows (with columns ``cols``) and conflicts of merging ``theirs`` into
    ``ours``. Conflicts are ``(rowid, column, kind)`` plus ``(base, ours, theirs)`` for cells."""
    out: dict[int, dict] = {}
    conflicts: set[tuple] = set()

    def full(r: dict) -> dict:
        return {c: r.get(c) for c in cols}

    for rid in set(base) | set(ours) | set(theirs):
        b, o, t = base.get(rid), ours.get(rid), theirs.get(rid)
        if b is None:  # inserted on one side
            assert o is None or t is None
            out[rid] = full(o if o is not None else t)
            continue
        if o is None and t is None:
            continue
        if o is None:
            if _changed(b, t):
                conflicts.add((rid, None, "update/delete"))
                if strategy == "theirs":
                    out[rid] = full(t)
            continue
        if t is None:
            if _changed(b, o):
                conflicts.add((rid, None, "delete/update"))
                if strategy != "theirs":
                    out[rid] = full(o)
            continue
        row = {}
        for c in cols:
            bv, ov, tv = b.get(c), o.get(c), t.get(c)
            if ov == bv:
                row[c] = tv
            elif tv in (bv, ov):
                row[c] = ov
            else:
                conflicts.add((rid, c, CELL, bv, ov, tv))
                row[c] = tv if strategy == "theirs" else ov
        out[rid] = row
    return out, conflicts


def conflict_set(cs: list) -> set[tuple]:
    out = set()
    for c in cs:
        assert c.table == "t"
        if c.kind == CELL:
            out.add((c.rowid, c.column, c.kind, c.base, c.ours, c.theirs))
        else:
            out.add((c.rowid, c.column, c.kind))
    return out


def normalized(rs: dict[int, dict]) -> dict[int, dict]:
    return {rid: dict(sorted(r.items())) for rid, r in rs.items()}


# --- random edits -----------------------------------------------------------------------------

A_VALUES = st.integers(0, 2)  # updates; base rows hold 0 or 1, so most updates change a cell
B_VALUES = st.sampled_from(["p", "q", "r", None])  # NULL cells too
NEW_VALUES = st.integers(0, 1)


@st.composite
def side_ops(draw: Any, n: int, side: str, added: str | None, disjoint: bool) -> list[tuple]:
    """Edits of one branch: ('upd', k, col, v), ('del', k), ('ins', a, b), ('opt',)."""
    ops = []
    label = 100 if side == "ours" else 200
    inserted = 0
    mine = 1 if side == "ours" else 2  # rows only this side touches (disjoint mode)
    for _ in range(draw(st.integers(2, 7))):
        kind = draw(st.sampled_from(["upd", "upd", "upd", "del", "ins", "opt"]))
        if kind == "opt":  # compaction moves rows: no change to merge
            ops.append(("opt",))
            continue
        if kind == "ins":
            ops.append(("ins", label + inserted, draw(A_VALUES), draw(B_VALUES)))
            inserted += 1
            continue
        k = draw(st.integers(0, n + 1))
        if k >= n:
            if not inserted:
                continue
            k = label + (k - n) % inserted
        elif disjoint and k % 3 not in (0, mine):
            continue
        if kind == "del":
            if disjoint and k < n and k % 3 == 0:
                continue  # rows both sides edit are never deleted
            ops.append(("del", k))
            continue
        choices = ["a", "b"] + ([added] if added else [])
        if disjoint and k < n and k % 3 == 0:
            choices = ["a" if side == "ours" else "b"] + ([added] if added else [])
        col = draw(st.sampled_from(choices))
        value = draw(B_VALUES if col == "b" else NEW_VALUES if col == added else A_VALUES)
        ops.append(("upd", k, col, value))
    return ops


@st.composite
def scenarios(draw: Any, disjoint: bool, schema: bool) -> dict[str, Any]:
    n = draw(st.integers(2, 3))
    base = [(k, draw(st.integers(0, 1)), draw(st.sampled_from(["p", "q", None]))) for k in range(n)]
    add_o = draw(st.booleans()) if schema else False
    add_t = draw(st.booleans()) if schema else False
    if schema and not (add_o or add_t):
        add_o = True
    ours = draw(side_ops(n, "ours", "co" if add_o else None, disjoint))
    theirs = draw(side_ops(n, "theirs", "ct" if add_t else None, disjoint))
    if not disjoint:  # edits of the same cells, so that conflicts are common
        for _ in range(draw(st.integers(1, 2))):
            k, col = draw(st.integers(0, n - 1)), draw(st.sampled_from(["a", "b"]))
            values = B_VALUES if col == "b" else A_VALUES
            at_o, at_t = draw(st.integers(0, len(ours))), draw(st.integers(0, len(theirs)))
            ours.insert(at_o, ("upd", k, col, draw(values)))
            theirs.insert(at_t, ("upd", k, col, draw(values)))
    return {"base": base, "add_o": add_o, "add_t": add_t, "ours": ours, "theirs": theirs}


def apply_ops(db: reeldb.Connection, ops: list[tuple], add: str | None, add_type: str) -> None:
    if add:
        db.execute(f"ALTER TABLE t ADD COLUMN {add} {add_type}")
    for op in ops:
        if op[0] == "opt":
            db.optimize()
        elif op[0] == "ins":
            db.execute("INSERT INTO t (k, a, b) VALUES (%s, %s, %s)", op[1:])
        elif op[0] == "del":
            db.execute("DELETE FROM t WHERE k = %s", [op[1]])
        else:
            _, k, col, v = op
            db.execute(f"UPDATE t SET {col} = %s WHERE k = %s", [v, k])


def run_scenario(sc: dict[str, Any], expect_clean: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "db")
        db = reeldb.connect(path)
        db.execute("CREATE TABLE t (k INT, a INT, b TEXT)")
        db.executemany("INSERT INTO t VALUES (%s, %s, %s)", sc["base"])
        base_commit = db.head
        db.branch("theirs", checkout=False)
        apply_ops(db, sc["ours"], "co" if sc["add_o"] else None, "INT")
        db.checkout("theirs")
        apply_ops(db, sc["theirs"], "ct" if sc["add_t"] else None, "INT")
        db.checkout("main")
        base, ours, theirs = rows(db, "t", base_commit), rows(db, "t", "main"), rows(db, "t", "theirs")
        ours_head = db.head
        for strategy in ("fail", "ours", "theirs"):
            cols = {"k", "a", "b"} | ({"co"} if sc["add_o"] else set()) | ({"ct"} if sc["add_t"] else set())
            want, want_conflicts = model_merge(base, ours, theirs, strategy, cols)
            if expect_clean:
                assert not want_conflicts, "the generator made conflicting edits"
            into = f"into-{strategy}"
            db.branch(into, at=ours_head, checkout=False)
            if strategy == "fail" and want_conflicts:
                before_files, before_commits = all_files(path), commits(path)
                with pytest.raises(reeldb.MergeConflict) as info:
                    db.merge("theirs", into=into, strategy="fail")
                assert info.value.sqlstate == "RD001"
                assert conflict_set(info.value.conflicts) == want_conflicts
                assert db.catalog.head(into) == ours_head, "a failed merge moved the branch"
                assert commits(path) == before_commits, "a failed merge wrote a commit"
                assert all_files(path) == before_files, "a failed merge wrote files"
                continue
            result = db.merge("theirs", into=into, strategy=strategy)
            assert conflict_set(result.conflicts) == want_conflicts
            assert db.catalog.head(into) == result.commit
            got = rows(db, "t", into)
            assert normalized(got) == normalized(want), f"strategy {strategy}"
            if not (result.fast_forward or result.up_to_date):
                parents = db.catalog.commit(result.commit).parents
                assert parents == (ours_head, db.catalog.head("theirs"))
            # SQL sees what the model says
            got_sql = db.execute(f'SELECT k, a, b FROM "{into}".t ORDER BY k').fetchall()
            assert got_sql == sorted((r["k"], r["a"], r["b"]) for r in want.values())
        db.close()


# No shrinking: a failure shows its (small) example as drawn, and a failing run stays fast.
PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True, phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)


@pytest.mark.slow
@PROPERTY
@given(sc=scenarios(disjoint=True, schema=False))
def test_disjoint_edits_merge_as_both_applied(sc: dict[str, Any]) -> None:
    run_scenario(sc, expect_clean=True)


@pytest.mark.slow
@PROPERTY
@given(sc=scenarios(disjoint=True, schema=True))
def test_disjoint_edits_with_added_columns_merge_cleanly(sc: dict[str, Any]) -> None:
    run_scenario(sc, expect_clean=True)


@pytest.mark.slow
@PROPERTY
@given(sc=scenarios(disjoint=False, schema=False))
def test_random_edits_match_three_way_model(sc: dict[str, Any]) -> None:
    run_scenario(sc)


@pytest.mark.slow
@PROPERTY
@given(sc=scenarios(disjoint=False, schema=True))
def test_random_edits_with_added_columns_match_model(sc: dict[str, Any]) -> None:
    run_scenario(sc)


# --- fixtures for the example tests -------------------------------------------------------------


@pytest.fixture
def db(path: str) -> reeldb.Connection:
    conn = reeldb.connect(path)
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY, a INT, b TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three')")
    yield conn
    conn.close()


def table(db: reeldb.Connection, name: str = "t") -> list[tuple]:
    return db.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()


def diverge(db: reeldb.Connection, ours: list[str], theirs: list[str], name: str = "x") -> str:
    """Branch ``name`` off main, run ``theirs`` there and ``ours`` on main; returns the base."""
    base = db.head
    db.branch(name)
    for sql in theirs:
        db.execute(sql)
    db.checkout("main")
    for sql in ours:
        db.execute(sql)
    return base


# --- fast-forward, up to date, merge commits ----------------------------------------------------


def test_fast_forward(db: reeldb.Connection, path: str) -> None:
    db.branch("x")
    db.execute("INSERT INTO t VALUES (4, 40, 'four')")
    head_x = db.head
    db.checkout("main")
    before = commits(path)
    r = db.merge("x")
    assert r.fast_forward and not r.up_to_date and r.commit == head_x
    assert db.head == head_x
    assert commits(path) == before, "a fast-forward writes no commit"
    assert table(db)[-1] == (4, 40, "four")


def test_up_to_date(db: reeldb.Connection, path: str) -> None:
    db.branch("x", checkout=False)
    db.execute("INSERT INTO t VALUES (4, 40, 'four')")
    head = db.head
    r = db.merge("x")
    assert r.up_to_date and not r.fast_forward and r.commit == head
    assert db.merge("main").up_to_date  # merging a branch into itself
    assert db.head == head


def test_merge_commit_two_parents_message_stats(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1", "DELETE FROM t WHERE id = 3"],
            ["UPDATE t SET b = 'uno' WHERE id = 1", "INSERT INTO t VALUES (5, 50, 'five')",
             "UPDATE t SET a = 21 WHERE id = 2"])
    ours, theirs = db.head, db.catalog.head("x")
    r = db.merge("x", message="bring x in", author="alice")
    assert not r.fast_forward and not r.up_to_date and not r.conflicts
    assert db.head == r.commit
    entry = db.log(limit=1)[0]
    assert entry["id"] == r.commit
    assert entry["parents"] == [ours, theirs]
    assert entry["message"] == "bring x in"
    assert entry["author"] == "alice"
    assert r.stats["t"] == [1, 0, 2]  # inserted, deleted, updated
    assert entry["tables"]["t"] == {"inserted": 1, "deleted": 0, "updated": 2}
    assert table(db) == [(1, 11, "uno"), (2, 21, "two"), (5, 50, "five")]
    # the source branch is untouched
    assert table(db, '"x".t') == [(1, 10, "uno"), (2, 21, "two"), (3, 30, "three"), (5, 50, "five")]


def test_default_message_and_merge_from_tag_and_commit(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 22 WHERE id = 2"])
    db.tag("x-done", at="x")
    r = db.merge("x-done")
    assert "x-done" in db.log(limit=1)[0]["message"]
    assert table(db)[:2] == [(1, 11, "one"), (2, 22, "two")]
    # a commit id (and a unique prefix of one) are sources too
    db.checkout("x")
    db.execute("UPDATE t SET b = 'drei' WHERE id = 3")
    c = db.head
    db.checkout("main")
    r = db.merge(c[:10])
    assert not r.conflicts
    assert table(db)[2] == (3, 30, "drei")


def test_merge_into_another_branch(db: reeldb.Connection) -> None:
    db.branch("y", checkout=False)
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 22 WHERE id = 2"])
    head_main = db.head
    r = db.merge("x", into="y")
    assert r.fast_forward  # y was at the base
    r = db.merge("main", into="y")
    assert not r.fast_forward and not r.conflicts
    assert db.head == head_main, "merging into another branch left ours alone"
    assert db.current_branch == "main"
    assert table(db, '"y".t')[:2] == [(1, 11, "one"), (2, 22, "two")]


def test_different_cells_of_one_row_merge(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET b = 'uno' WHERE id = 1"])
    rowid = next(r for r, v in rows(db, "t").items() if v["id"] == 1)
    r = db.merge("x")
    assert not r.conflicts
    assert table(db)[0] == (1, 11, "uno")
    assert next(r for r, v in rows(db, "t").items() if v["id"] == 1) == rowid, "a merge keeps _rowid"


def test_same_cell_same_value_is_no_conflict(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 99 WHERE id = 1"], ["UPDATE t SET a = 99 WHERE id = 1"])
    assert not db.merge("x").conflicts
    assert table(db)[0] == (1, 99, "one")


def test_both_delete_same_row(db: reeldb.Connection) -> None:
    diverge(db, ["DELETE FROM t WHERE id = 2"], ["DELETE FROM t WHERE id = 2"])
    assert not db.merge("x").conflicts
    assert [r[0] for r in table(db)] == [1, 3]


# --- conflicts ------------------------------------------------------------------------------------


def test_conflicts_listed_and_nothing_written(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1", "DELETE FROM t WHERE id = 2",
                 "UPDATE t SET b = 'drei' WHERE id = 3"],
            ["UPDATE t SET a = 12 WHERE id = 1", "UPDATE t SET b = 'zwei' WHERE id = 2",
             "DELETE FROM t WHERE id = 3"])
    ids = {v["id"]: r for r, v in rows(db, "t", "x").items()} | \
        {v["id"]: r for r, v in rows(db, "t").items()}
    head, before = db.head, all_files(path)
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    e = info.value
    assert e.sqlstate == "RD001"
    assert isinstance(e, reeldb.IntegrityError)
    got = {(c.table, c.rowid, c.column, c.kind) for c in e.conflicts}
    assert got == {("t", ids[1], "a", "cell"), ("t", ids[2], None, "update/delete"),
                   ("t", ids[3], None, "delete/update")}
    cell = next(c for c in e.conflicts if c.kind == "cell")
    assert (cell.base, cell.ours, cell.theirs) == (10, 11, 12)
    assert db.head == head and all_files(path) == before
    assert table(db) == [(1, 11, "one"), (3, 30, "drei")]
    arrow = e.to_arrow()
    assert arrow.num_rows == 3
    assert set(arrow.column_names) >= {"table", "key", "rowid", "column", "kind", "base", "ours", "theirs"}
    assert "a" in str(e) and "ours" in str(e)
    # rows are named by their primary key, which users know, not by the hidden _rowid
    assert {(c.kind, c.key["id"]) for c in e.conflicts} == {("cell", 1), ("update/delete", 2),
                                                           ("delete/update", 3)}
    assert "(id=1) column a" in str(e) and "_rowid" not in str(e)
    assert sorted(arrow.column("key").to_pylist()) == ['{"id": 1}', '{"id": 2}', '{"id": 3}']

    r = db.merge("x", strategy="ours")
    assert len(r.conflicts) == 3
    assert table(db) == [(1, 11, "one"), (3, 30, "drei")]
    db.reset("main", to=head)
    r = db.merge("x", strategy="theirs")
    assert len(r.conflicts) == 3
    assert table(db) == [(1, 12, "one"), (2, 20, "zwei")]


def test_unique_key_collision(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["INSERT INTO t VALUES (7, 70, 'ours')"], ["INSERT INTO t VALUES (7, 71, 'theirs')"])
    head, before = db.head, all_files(path)
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    (c,) = info.value.conflicts
    assert (c.table, c.kind) == ("t", "unique")
    assert "id" in c.column
    assert db.head == head and all_files(path) == before
    db.merge("x", strategy="ours")
    assert table(db)[-1] == (7, 70, "ours")
    assert len(table(db)) == 4
    db.reset(to=head)
    db.merge("x", strategy="theirs")
    assert table(db)[-1] == (7, 71, "theirs")
    assert len(table(db)) == 4
    # the result still enforces the key
    assert sqlstate(lambda: db.execute("INSERT INTO t VALUES (7, 0, 'again')")) == "23505"


def test_unique_key_freed_on_one_side_is_no_conflict(db: reeldb.Connection) -> None:
    diverge(db, ["DELETE FROM t WHERE id = 3"], ["INSERT INTO t VALUES (8, 80, 'eight')"])
    assert not db.merge("x").conflicts
    db.branch("y")
    db.execute("INSERT INTO t VALUES (3, 33, 'new three')")
    db.checkout("main")
    db.execute("UPDATE t SET a = 12 WHERE id = 1")
    assert not db.merge("y").conflicts
    assert (3, 33, "new three") in table(db)


def test_serial_ids_on_two_branches_never_collide(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE g (id SERIAL PRIMARY KEY, p TEXT)")
    db.execute("INSERT INTO g (p) VALUES ('base')")
    db.branch("x")
    for i in range(3):
        db.execute("INSERT INTO g (p) VALUES (%s)", [f"x{i}"])
    db.checkout("main")
    for i in range(3):
        db.execute("INSERT INTO g (p) VALUES (%s)", [f"m{i}"])
    assert not db.merge("x").conflicts
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM g").fetchone() == (7, 7)


def test_invalid_strategy_refused(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 12 WHERE id = 1"])
    head = db.head
    for bad in ("mine", "", "OURS"):
        assert sqlstate(lambda bad=bad: db.merge("x", strategy=bad)) == "22023"
    # even when the merge would be a fast-forward
    db.branch("ff", at="main", checkout=False)
    db.execute("UPDATE t SET b = 'z' WHERE id = 2")
    assert sqlstate(lambda: db.merge("main", into="ff", strategy="nope")) == "22023"
    assert db.catalog.head("ff") != db.head
    assert sqlstate(lambda: db.execute("SELECT reeldb_merge('x', 'both')")) == "22023"
    assert db.log(limit=1)[0]["parents"] == [head], "no merge commit was made"


def test_unknown_source_and_target(db: reeldb.Connection) -> None:
    assert sqlstate(lambda: db.merge("nope")) == "42704"
    db.branch("x", checkout=False)
    assert sqlstate(lambda: db.merge("x", into="nope")) == "42704"


def test_merge_inside_transaction_refused(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 22 WHERE id = 2"])
    head = db.head
    with db.transaction():
        assert sqlstate(lambda: db.merge("x")) == "25001"
    db.execute("BEGIN")
    assert sqlstate(lambda: db.execute("SELECT reeldb_merge('x')")) == "25001"
    db.execute("ROLLBACK")
    assert db.head == head


def test_merge_into_protected_branch_refused(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 22 WHERE id = 2"])
    db.protect("main")
    head, before = db.head, commits(path)
    with pytest.raises(reeldb.BranchProtected) as info:
        db.merge("x")
    assert info.value.sqlstate == "25006"
    assert db.head == head and commits(path) == before
    db.unprotect("main")
    assert not db.merge("x").conflicts


def test_merge_from_read_only_connection_needs_into(db: reeldb.Connection, path: str) -> None:
    diverge(db, [], ["UPDATE t SET a = 22 WHERE id = 2"])
    pinned = reeldb.connect(path, at=db.head)
    assert sqlstate(lambda: pinned.merge("x")) == "25006"
    assert pinned.merge("x", into="main").fast_forward
    pinned.close()


# --- schema changes -------------------------------------------------------------------------------


def test_added_column_on_one_side_appears(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"],
            ["ALTER TABLE t ADD COLUMN score REAL", "UPDATE t SET score = 0.5 WHERE id = 2",
             "INSERT INTO t VALUES (4, 40, 'four', 0.25)"])
    assert not db.merge("x").conflicts
    assert table(db) == [(1, 11, "one", None), (2, 20, "two", 0.5), (3, 30, "three", None),
                         (4, 40, "four", 0.25)]
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "a", "b", "score"]


def test_added_columns_on_both_sides(db: reeldb.Connection) -> None:
    diverge(db, ["ALTER TABLE t ADD COLUMN o INT", "UPDATE t SET o = 1 WHERE id = 1"],
            ["ALTER TABLE t ADD COLUMN th TEXT", "UPDATE t SET th = 'x' WHERE id = 1"])
    assert not db.merge("x").conflicts
    got = db.execute("SELECT id, o, th FROM t ORDER BY id").fetchall()
    assert got == [(1, 1, "x"), (2, None, None), (3, None, None)]


def test_same_column_name_different_types_conflicts(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["ALTER TABLE t ADD COLUMN n INT"], ["ALTER TABLE t ADD COLUMN n TEXT",
                                                      "UPDATE t SET n = 'hello' WHERE id = 1"])
    head, before = db.head, all_files(path)
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    (c,) = info.value.conflicts
    assert (c.kind, c.column) == ("schema", "n")
    assert db.head == head and all_files(path) == before
    db.merge("x", strategy="ours")
    assert db.execute("SELECT n FROM t ORDER BY id").fetchall() == [(None,)] * 3
    assert db.execute("SELECT * FROM t").description[3][1] == "INTEGER"
    db.reset(to=head)
    db.merge("x", strategy="theirs")
    assert db.execute("SELECT n FROM t ORDER BY id").fetchone() == ("hello",)


def test_drop_and_rename_column_merge(db: reeldb.Connection) -> None:
    diverge(db, ["ALTER TABLE t RENAME COLUMN b TO label", "UPDATE t SET a = 11 WHERE id = 1"],
            ["UPDATE t SET b = 'zwei' WHERE id = 2", "INSERT INTO t VALUES (4, 40, 'four')"])
    assert not db.merge("x").conflicts
    assert db.execute("SELECT id, a, label FROM t ORDER BY id").fetchall() == [
        (1, 11, "one"), (2, 20, "zwei"), (3, 30, "three"), (4, 40, "four")]
    db.branch("y")
    db.execute("ALTER TABLE t DROP COLUMN label")
    db.checkout("main")
    db.execute("UPDATE t SET a = 12 WHERE id = 1")
    assert not db.merge("y").conflicts
    assert table(db) == [(1, 12), (2, 20), (3, 30), (4, 40)]


# --- tables -------------------------------------------------------------------------------------


def test_tables_created_dropped_on_one_side(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE old (x INT)")
    db.execute("INSERT INTO old VALUES (1)")
    diverge(db, ["INSERT INTO t VALUES (4, 40, 'four')"],
            ["CREATE TABLE fresh (x INT)", "INSERT INTO fresh VALUES (1), (2)", "DROP TABLE old"])
    assert not db.merge("x").conflicts
    assert sorted(db.tables()) == ["fresh", "t"]
    assert db.execute("SELECT count(*) FROM fresh").fetchone() == (2,)


def test_drop_against_change_is_a_table_conflict(db: reeldb.Connection) -> None:
    diverge(db, ["INSERT INTO t VALUES (4, 40, 'four')"], ["DROP TABLE t"])
    head = db.head
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    assert [c.kind for c in info.value.conflicts] == ["table"]
    assert db.head == head
    db.merge("x", strategy="ours")
    assert len(table(db)) == 4
    db.reset(to=head)
    db.merge("x", strategy="theirs")
    assert "t" not in db.tables()


def test_two_tables_created_with_one_name_conflict(db: reeldb.Connection) -> None:
    diverge(db, ["CREATE TABLE n (x INT)", "INSERT INTO n VALUES (1)"],
            ["CREATE TABLE n (y TEXT)", "INSERT INTO n VALUES ('a')"])
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    assert [(c.table, c.kind) for c in info.value.conflicts] == [("n", "table")]
    db.merge("x", strategy="theirs")
    assert db.execute("SELECT * FROM n").fetchall() == [("a",)]


# --- merges of merges ---------------------------------------------------------------------------


def test_criss_cross_merges_cleanly(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (k INT, a INT, b TEXT)")
    db.executemany("INSERT INTO t VALUES (%s, %s, %s)", [(k, k, "base") for k in range(8)])
    db.branch("b", checkout=False)
    db.branch("a")
    db.execute("UPDATE t SET a = 100 WHERE k = 1")
    db.execute("INSERT INTO t VALUES (10, 10, 'from a')")
    a0 = db.head
    db.checkout("b")
    db.execute("UPDATE t SET b = 'b-edit' WHERE k = 2")
    db.execute("DELETE FROM t WHERE k = 7")
    db.execute("INSERT INTO t VALUES (20, 20, 'from b')")
    b0 = db.head
    # criss-cross: each merges the other's old head
    assert not db.merge(a0, into="b").conflicts
    assert not db.merge(b0, into="a").conflicts
    # both continue, touching rows the other side merged in
    db.checkout("a")
    db.execute("UPDATE t SET a = 201 WHERE k = 20")
    db.execute("UPDATE t SET b = 'a-edit' WHERE k = 3")
    db.checkout("b")
    db.execute("UPDATE t SET a = 110 WHERE k = 10")
    db.execute("UPDATE t SET a = 4000 WHERE k = 4")
    db.execute("DELETE FROM t WHERE k = 5")
    want = [(0, 0, "base"), (1, 100, "base"), (2, 2, "b-edit"), (3, 3, "a-edit"), (4, 4000, "base"),
            (6, 6, "base"), (10, 110, "from a"), (20, 201, "from b")]
    for into, source in (("a", "b"), ("b", "a")):
        db.branch(f"{into}-copy", at=into, checkout=False)
        r = db.merge(source, into=f"{into}-copy")
        assert not r.conflicts, f"spurious conflicts merging {source} into {into}: {r.conflicts}"
        got = db.execute(f'SELECT * FROM "{into}-copy".t ORDER BY k').fetchall()
        assert got == want
    # and merging the two results is a no-op or clean
    r = db.merge("a-copy", into="b-copy")
    assert not r.conflicts
    assert db.execute('SELECT * FROM "b-copy".t ORDER BY k').fetchall() == want
    db.close()


def test_criss_cross_failed_merge_writes_nothing(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (k INT, a INT)")
    db.executemany("INSERT INTO t VALUES (%s, %s)", [(k, k) for k in range(4)])
    db.branch("b", checkout=False)
    db.branch("a")
    db.execute("UPDATE t SET a = 10 WHERE k = 0")
    a0 = db.head
    db.checkout("b")
    db.execute("UPDATE t SET a = 20 WHERE k = 1")
    b0 = db.head
    db.merge(a0, into="b")
    db.merge(b0, into="a")
    db.checkout("a")
    db.execute("UPDATE t SET a = 30 WHERE k = 2")
    db.checkout("b")
    db.execute("UPDATE t SET a = 40 WHERE k = 2")
    head, before = db.head, all_files(path)
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("a")
    assert [(c.kind, c.base, c.ours, c.theirs) for c in info.value.conflicts] == [("cell", 2, 40, 30)]
    assert db.head == head
    assert all_files(path) == before, "a failed merge (criss-cross base) wrote files"
    db.close()


def test_repeated_merges_back_and_forth(db: reeldb.Connection) -> None:
    db.branch("x", checkout=False)
    for i in range(4):
        db.checkout("x")
        db.execute("INSERT INTO t VALUES (%s, %s, 'x')", [100 + i, i])
        db.execute("UPDATE t SET a = a + 1 WHERE id = 1")
        db.checkout("main")
        db.execute("INSERT INTO t VALUES (%s, %s, 'm')", [200 + i, i])
        db.execute("UPDATE t SET b = %s WHERE id = 2", [f"m{i}"])
        assert not db.merge("x").conflicts
        assert not db.merge("main", into="x").conflicts  # x catches up: a fast-forward
    assert table(db, '"x".t') == table(db)
    assert db.execute("SELECT a FROM t WHERE id = 1").fetchone() == (14,)
    assert db.execute("SELECT b FROM t WHERE id = 2").fetchone() == ("m3",)
    assert len(table(db)) == 11


def test_row_merged_in_then_edited_on_both_sides(db: reeldb.Connection) -> None:
    db.branch("x")
    db.execute("INSERT INTO t VALUES (9, 90, 'nine')")
    db.checkout("main")
    db.execute("UPDATE t SET a = 11 WHERE id = 1")
    db.merge("x")  # a merge commit holds x's row
    db.checkout("x")
    db.execute("UPDATE t SET a = 91 WHERE id = 9")
    db.checkout("main")
    db.execute("UPDATE t SET b = 'nueve' WHERE id = 9")
    assert not db.merge("x").conflicts
    assert table(db)[-1] == (9, 91, "nueve")


# --- storage: nothing copied, little read ---------------------------------------------------------


def test_merge_shares_blob_packs_and_matrices(path: str, png_bytes: bytes, mp4_bytes: bytes) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE g (id SERIAL PRIMARY KEY, p TEXT, e VECTOR(4), img IMAGE, clip VIDEO, raw BYTEA)")
    db.execute("INSERT INTO g (p, e) VALUES ('base', '[1,0,0,0]')")
    db.branch("media")
    for i in range(3):
        db.execute("INSERT INTO g (p, e, img, clip, raw) VALUES (%s, %s, %s, %s, %s)",
                   [f"m{i}", [0, i, 0, 1], png_bytes, mp4_bytes, os.urandom(9000)])
    want = db.execute("SELECT p, blob_length(clip), blob_length(raw) FROM g ORDER BY id").fetchall()
    db.checkout("main")
    db.execute("UPDATE g SET p = 'base!' WHERE id = 1")
    blobs_before, mats_before = files(path, "blobs"), files(path, "data", ".mat")
    r = db.merge("media")
    assert not r.fast_forward and not r.conflicts
    assert files(path, "blobs") == blobs_before, "a merge copied blob packs"
    assert files(path, "data", ".mat") == mats_before, "no row was combined: no matrix may be written"
    got = db.execute("SELECT p, blob_length(clip), blob_length(raw) FROM g ORDER BY id").fetchall()
    assert got[1:] == want[1:] and got[0][0] == "base!"
    clip = db.execute("SELECT clip FROM g WHERE p = 'm1'").fetchone()[0]
    assert bytes(clip) == mp4_bytes
    db.close()


def test_merge_writes_matrices_only_for_combined_rows(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE v (k INT, a INT, b TEXT, e VECTOR(3))")
    db.executemany("INSERT INTO v VALUES (%s, %s, 'b', %s)", [(k, k, [k, 0, 0]) for k in range(6)])
    db.branch("x")
    db.execute("UPDATE v SET a = 100 WHERE k = 1")
    db.execute("UPDATE v SET e = '[9,9,9]' WHERE k = 2")
    db.execute("INSERT INTO v VALUES (6, 6, 'b', '[6,6,6]')")
    db.checkout("main")
    db.execute("UPDATE v SET b = 'ours' WHERE k = 1")  # row 1 combines cells of both sides
    mats = files(path, "data", ".mat")
    assert not db.merge("x").conflicts
    new = files(path, "data", ".mat") - mats
    assert len(new) == 1, f"one fragment of combined rows, one matrix: {new}"
    got = db.execute("SELECT k, a, b, e FROM v ORDER BY k").fetchall()
    assert [(k, a, b, list(e)) for k, a, b, e in got] == [
        (0, 0, "b", [0, 0, 0]), (1, 100, "ours", [1, 0, 0]), (2, 2, "b", [9, 9, 9]),
        (3, 3, "b", [3, 0, 0]), (4, 4, "b", [4, 0, 0]), (5, 5, "b", [5, 0, 0]), (6, 6, "b", [6, 6, 6])]
    db.close()


def _many_fragments(path: str, ddl: str, n: int = 30) -> reeldb.Connection:
    db = reeldb.connect(path)
    db.execute(ddl)
    for i in range(n):
        db.execute("INSERT INTO t VALUES (%s, %s)", [i, i])
    return db


def test_merge_reads_only_changed_fragments(path: str, monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")
    db = _many_fragments(path, "CREATE TABLE t (id INT, a INT)")
    db.branch("x")
    db.execute("UPDATE t SET a = -1 WHERE id = 3")
    db.checkout("main")
    db.execute("UPDATE t SET a = -2 WHERE id = 17")
    db.close()
    fresh = reeldb.connect(path)
    with fragment_reads(monkeypatch) as seen:
        fresh.merge("x")
    assert len(set(seen)) <= 4, f"a one-row merge read {len(set(seen))} of 30+ fragments"
    assert fresh.execute("SELECT count(*) FROM t WHERE a < 0").fetchone() == (2,)
    fresh.close()


def test_merge_with_primary_key_reads_only_changed_fragments(path: str, monkeypatch) -> None:
    """The unique-key check claims to skip fragments whose key range misses the incoming
    keys; it must not read every fragment to learn that range."""
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")
    db = _many_fragments(path, "CREATE TABLE t (id INT PRIMARY KEY, a INT)")
    db.branch("x")
    db.execute("INSERT INTO t VALUES (1000, 0)")
    db.checkout("main")
    db.execute("UPDATE t SET a = -2 WHERE id = 17")
    db.close()
    fresh = reeldb.connect(path)
    with fragment_reads(monkeypatch) as seen:
        fresh.merge("x")
    assert len(set(seen)) <= 4, f"a one-row merge read {len(set(seen))} of 30+ fragments"
    fresh.close()


# --- SQL ----------------------------------------------------------------------------------------


def test_sql_merge(db: reeldb.Connection, path: str) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["UPDATE t SET a = 12 WHERE id = 1",
                                                        "UPDATE t SET b = 'zwei' WHERE id = 2"])
    head = db.head
    with pytest.raises(reeldb.Error) as info:
        db.execute("SELECT reeldb_merge('x')")
    assert info.value.sqlstate == "RD001"
    assert isinstance(info.value, reeldb.MergeConflict) and len(info.value.conflicts) == 1
    with pytest.raises(reeldb.Error) as info:
        db.execute("SELECT reeldb_merge('x', 'fail')")
    assert info.value.sqlstate == "RD001" and db.head == head
    (commit,) = db.execute("SELECT reeldb_merge('x', 'theirs')").fetchone()
    assert commit == db.head != head
    assert table(db)[:2] == [(1, 12, "one"), (2, 20, "zwei")]
    # into another branch, with a bound parameter
    db.reset(to=head)
    db.branch("y", checkout=False)
    (c2,) = db.execute("SELECT reeldb_merge(%s, %s, %s)", ["x", "ours", "y"]).fetchone()
    assert db.catalog.head("y") == c2 and db.head == head
    assert db.execute('SELECT a, b FROM "y".t WHERE id = 2').fetchone() == (20, "zwei")
    assert db.execute('SELECT a FROM "y".t WHERE id = 1').fetchone() == (11,)
    cur = db.execute("SELECT reeldb_merge('x', 'ours', 'y') AS m")  # up to date now
    assert cur.description[0][0] == "m" and cur.fetchone() == (c2,)


def test_compaction_on_ours_then_their_edits_merge(path: str, monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (k INT, a INT, n TEXT)")
    for k in range(6):
        db.execute("INSERT INTO t VALUES (%s, %s, NULL)", [k, k])
    db.branch("x")
    db.execute("DELETE FROM t WHERE k = 1")
    db.execute("UPDATE t SET a = 20 WHERE k = 2")
    db.checkout("main")
    db.execute("UPDATE t SET n = 'ours' WHERE k = 3")
    db.optimize()  # every row of ours moved to a new fragment
    assert not db.merge("x").conflicts
    assert db.execute("SELECT k, a, n FROM t ORDER BY k").fetchall() == [
        (0, 0, None), (2, 20, None), (3, 3, "ours"), (4, 4, None), (5, 5, None)]
    ids = list(rows(db, "t"))
    assert len(ids) == len(set(ids)) == 5
    db.close()


def test_table_renamed_on_one_side_rows_changed_on_other(db: reeldb.Connection) -> None:
    diverge(db, ["UPDATE t SET a = 11 WHERE id = 1"], ["ALTER TABLE t RENAME TO renamed",
                                                        "INSERT INTO renamed VALUES (4, 40, 'four')"])
    assert not db.merge("x").conflicts
    assert db.tables() == ["renamed"]
    assert table(db, "renamed") == [(1, 11, "one"), (2, 20, "two"), (3, 30, "three"), (4, 40, "four")]


def test_vector_json_blob_cells_merge_and_conflict(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE m (id INT, e VECTOR(2), j JSONB, raw BYTEA)")
    big = b"b" * 6000
    db.execute("INSERT INTO m VALUES (1, '[1,1]', '{\"a\": 1}', %s), (2, '[2,2]', '{}', NULL)", [big])
    db.branch("x")
    db.execute("UPDATE m SET e = '[9,9]', j = '{\"a\": 2}' WHERE id = 1")
    db.execute("UPDATE m SET raw = %s WHERE id = 2", [b"t" * 7000])
    db.checkout("main")
    db.execute("UPDATE m SET e = '[8,8]' WHERE id = 1")
    db.execute("UPDATE m SET j = '{\"b\": true}' WHERE id = 2")
    head = db.head
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    (c,) = info.value.conflicts
    assert (c.column, c.kind) == ("e", "cell")
    assert [list(v) for v in (c.base, c.ours, c.theirs)] == [[1, 1], [8, 8], [9, 9]]
    blobs = files(path, "blobs")
    db.merge("x", strategy="theirs")
    got = db.execute("SELECT id, e, j, raw FROM m ORDER BY id").fetchall()
    assert [list(r[1]) for r in got] == [[9, 9], [2, 2]]
    assert [r[2] for r in got] == [{"a": 2}, {"b": True}]
    assert bytes(got[0][3]) == big and bytes(got[1][3]) == b"t" * 7000
    assert files(path, "blobs") == blobs
    db.reset(to=head)
    db.merge("x", strategy="ours")
    got = db.execute("SELECT id, e, j FROM m ORDER BY id").fetchall()
    assert [list(r[1]) for r in got] == [[8, 8], [2, 2]]
    assert [r[2] for r in got] == [{"a": 2}, {"b": True}]
    db.close()


def test_primary_key_changed_into_collision(db: reeldb.Connection) -> None:
    diverge(db, ["INSERT INTO t VALUES (10, 0, 'ours ten')"], ["UPDATE t SET id = 10 WHERE id = 3"])
    with pytest.raises(reeldb.MergeConflict) as info:
        db.merge("x")
    assert [c.kind for c in info.value.conflicts] == ["unique"]
    db.merge("x", strategy="theirs")
    assert db.execute("SELECT id, b FROM t WHERE id = 10").fetchall() == [(10, "three")]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (3,)
