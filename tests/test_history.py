"""History and refs (issue 3): ``db.log`` with table filter and row counts, transactions'
message and author, tags, ``protect`` / ``unprotect``, ``reset``, ``revert``,
``delete_branch``, error SQLSTATEs, and the SQL surface of every versioning function."""

from __future__ import annotations

import pytest

import reeldb
from versioning_helpers import commits, rows, sqlstate


@pytest.fixture
def db(path: str) -> reeldb.Connection:
    conn = reeldb.connect(path)
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    yield conn
    conn.close()


def table(db: reeldb.Connection, name: str = "t") -> list[tuple]:
    return db.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()


# --- log ------------------------------------------------------------------------------------------


def test_log_counts_per_table_and_filter(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE u (x INT)")
    c_create_u = db.head
    db.execute("INSERT INTO u VALUES (1), (2)")
    db.execute("UPDATE t SET v = 'uno' WHERE id = 1")
    db.execute("DELETE FROM t WHERE id >= 2")
    with db.transaction(message="both", author="bob"):
        db.execute("INSERT INTO t VALUES (4, 'four'), (5, 'five')")
        db.execute("UPDATE t SET v = 'eins' WHERE id = 1")
        db.execute("DELETE FROM u WHERE x = 1")
    log = db.log()
    assert log[0]["message"] == "both" and log[0]["author"] == "bob"
    assert log[0]["tables"] == {"t": {"inserted": 2, "deleted": 0, "updated": 1},
                                "u": {"inserted": 0, "deleted": 1, "updated": 0}}
    assert log[1]["tables"] == {"t": {"inserted": 0, "deleted": 2, "updated": 0}}
    assert log[2]["tables"] == {"t": {"inserted": 0, "deleted": 0, "updated": 1}}
    assert log[3]["tables"] == {"u": {"inserted": 2, "deleted": 0, "updated": 0}}
    only_u = db.log(table="u")
    assert [c["id"] for c in only_u] == [log[0]["id"], log[3]["id"], c_create_u]
    assert all(set(c["tables"]) <= {"u"} for c in only_u)
    assert only_u[0]["tables"] == {"u": {"inserted": 0, "deleted": 1, "updated": 0}}
    only_t = db.log(table="t")
    assert c_create_u not in [c["id"] for c in only_t]
    assert len(db.log(table="t", limit=2)) == 2
    assert db.log(table="nope") == []
    # each entry has the documented fields
    for c in log:
        assert set(c) == {"id", "parents", "time", "author", "message", "tables"}


def test_log_table_filter_sees_ddl(db: reeldb.Connection) -> None:
    db.execute("ALTER TABLE t ADD COLUMN w INT")
    alter = db.head
    db.execute("CREATE TABLE other (x INT)")
    db.execute("ALTER TABLE t RENAME COLUMN w TO w2")
    rename = db.head
    ids = [c["id"] for c in db.log(table="t")]
    assert alter in ids and rename in ids
    assert db.log(table="other")[0]["id"] != rename


def test_log_of_branch_tag_and_merge(db: reeldb.Connection) -> None:
    db.branch("x")
    db.execute("INSERT INTO t VALUES (9, 'nine')")
    db.checkout("main")
    db.execute("INSERT INTO t VALUES (8, 'eight')")
    m = db.merge("x").commit
    log = db.log()
    assert log[0]["id"] == m and len(log[0]["parents"]) == 2
    ids = [c["id"] for c in log]
    assert db.catalog.head("x") in ids
    assert len(ids) == len(set(ids))
    db.tag("v1")
    assert db.log(branch="v1") == log
    on_x = [c["id"] for c in db.log(branch="x")]
    assert on_x[0] == db.catalog.head("x") and set(on_x) <= set(ids)


def test_transaction_message_and_author(db: reeldb.Connection, path: str) -> None:
    before = commits(path)
    with db.transaction(message="nightly load", author="etl-bot"):
        db.execute("INSERT INTO t VALUES (10, 'ten')")
        db.execute("INSERT INTO t VALUES (11, 'eleven')")
    assert len(commits(path) - before) == 1
    top = db.log(limit=1)[0]
    assert (top["message"], top["author"]) == ("nightly load", "etl-bot")
    assert top["tables"]["t"]["inserted"] == 2


# --- tags ----------------------------------------------------------------------------------------


def test_tags(db: reeldb.Connection) -> None:
    first = db.tag("v1")
    assert first == db.head
    db.execute("INSERT INTO t VALUES (4, 'four')")
    db.tag("v0", at=first)
    db.tag("v2")
    assert db.tags() == {"v0": first, "v1": first, "v2": db.head}
    assert sqlstate(lambda: db.tag("v1")) == "42710"
    assert sqlstate(lambda: db.tag("bad name")) == "22023"
    assert sqlstate(lambda: db.tag("v3", at="nope")) == "42704"
    db.delete_tag("v0")
    assert "v0" not in db.tags()
    assert sqlstate(lambda: db.delete_tag("v0")) == "42704"
    assert table(db, '"v1".t') == [(1, "one"), (2, "two"), (3, "three")]


# --- protect -------------------------------------------------------------------------------------


def test_protect_refuses_every_write(db: reeldb.Connection, path: str) -> None:
    db.branch("x", checkout=False)
    db.protect("main")
    assert {b["name"]: b["protected"] for b in db.branches()} == {"main": True, "x": False}
    head, before = db.head, commits(path)
    for sql in ("INSERT INTO t VALUES (4, 'four')", "UPDATE t SET v = 'x'", "DELETE FROM t",
                "CREATE TABLE u (x INT)", "DROP TABLE t", "ALTER TABLE t ADD COLUMN w INT"):
        with pytest.raises(reeldb.BranchProtected) as info:
            db.execute(sql)
        assert info.value.sqlstate == "25006", sql
    with pytest.raises(reeldb.BranchProtected):
        db.insert("t", [{"id": 5, "v": "five"}])
    with pytest.raises(reeldb.BranchProtected), db.transaction():
        db.execute("INSERT INTO t VALUES (6, 'six')")
    assert sqlstate(lambda: db.reset("main", to="x")) == "25006"
    assert sqlstate(lambda: db.revert(head)) == "25006"
    assert sqlstate(lambda: db.delete_branch("main")) in ("25006", "55006")
    # another connection (another process, for all it knows) is refused too
    other = reeldb.connect(path)
    assert sqlstate(lambda: other.execute("INSERT INTO t VALUES (7, 'seven')")) == "25006"
    other.close()
    assert db.head == head and commits(path) == before
    assert table(db) == [(1, "one"), (2, "two"), (3, "three")]
    # other branches stay writable, and reads work
    db.checkout("x")
    db.execute("INSERT INTO t VALUES (4, 'four')")
    db.checkout("main")
    db.unprotect("main")
    assert not any(b["protected"] for b in db.branches())
    db.execute("INSERT INTO t VALUES (4, 'four')")
    assert len(table(db)) == 4


def test_protect_unknown_branch(db: reeldb.Connection) -> None:
    assert sqlstate(lambda: db.protect("nope")) == "42704"


def test_delete_protected_branch_refused(db: reeldb.Connection) -> None:
    db.branch("keep", checkout=False)
    db.protect("keep")
    assert sqlstate(lambda: db.delete_branch("keep")) == "25006"
    db.unprotect("keep")
    db.delete_branch("keep")
    assert "keep" not in {b["name"] for b in db.branches()}


def test_deleted_branch_recreated_is_not_protected(db: reeldb.Connection) -> None:
    db.branch("p", checkout=False)
    db.protect("p")
    db.unprotect("p")
    db.delete_branch("p")
    db.branch("p", checkout=False)
    assert not next(b for b in db.branches() if b["name"] == "p")["protected"]


# --- delete_branch --------------------------------------------------------------------------------


def test_delete_branch(db: reeldb.Connection, path: str) -> None:
    db.branch("x")
    db.execute("INSERT INTO t VALUES (4, 'four')")
    assert sqlstate(lambda: db.delete_branch("x")) == "55006"
    db.checkout("main")
    db.delete_branch("x")
    assert [b["name"] for b in db.branches()] == ["main"]
    assert sqlstate(lambda: db.delete_branch("x")) == "42704"
    assert sqlstate(lambda: db.checkout("x")) == "42704"
    # another connection on a deleted branch cannot commit
    db.branch("y", checkout=False)
    other = reeldb.connect(path, branch="y")
    db.delete_branch("y")
    assert sqlstate(lambda: other.execute("INSERT INTO t VALUES (5, 'five')")) == "42704"
    other.close()


# --- reset ---------------------------------------------------------------------------------------


def test_reset(db: reeldb.Connection) -> None:
    first = db.head
    db.tag("v1")
    db.execute("INSERT INTO t VALUES (4, 'four')")
    db.execute("DELETE FROM t WHERE id = 1")
    second = db.head
    assert db.reset("main", to="v1") == first
    assert db.head == first
    assert table(db) == [(1, "one"), (2, "two"), (3, "three")]
    assert db.reset(to=second) == second  # forwards again, by commit id; default branch
    assert table(db) == [(2, "two"), (3, "three"), (4, "four")]
    db.branch("x", checkout=False)
    db.reset("x", to=first[:10])
    assert db.catalog.head("x") == first and db.head == second
    assert sqlstate(lambda: db.reset("main", to="nope")) == "42704"
    assert sqlstate(lambda: db.reset("nope", to=first)) == "42704"
    assert sqlstate(lambda: db.reset("main")) == "22023"
    with db.transaction():
        assert sqlstate(lambda: db.reset("main", to=first)) == "25001"
    assert db.head == second


def test_reset_then_vacuum_keeps_reachable(db: reeldb.Connection) -> None:
    import datetime as dt

    first = db.head
    db.execute("INSERT INTO t VALUES (4, 'four')")
    db.tag("later")
    db.reset(to=first)
    db.vacuum(grace=dt.timedelta(0))
    assert len(table(db, '"later".t')) == 4


# --- revert --------------------------------------------------------------------------------------


def test_revert_update_delete_insert(db: reeldb.Connection) -> None:
    db.execute("UPDATE t SET v = 'uno' WHERE id = 1")
    upd = db.head
    db.execute("DELETE FROM t WHERE id = 2")
    dele = db.head
    db.execute("INSERT INTO t VALUES (4, 'four')")
    ins = db.head
    db.execute("UPDATE t SET v = 'drei' WHERE id = 3")  # a later, unrelated change
    rowid2 = {v["id"]: r for r, v in rows(db, "t", upd).items()}[2]

    c = db.revert(upd)
    assert db.head == c and db.log(limit=1)[0]["parents"] == [db.log()[1]["id"]]
    assert "revert" in db.log(limit=1)[0]["message"]
    assert table(db) == [(1, "one"), (3, "drei"), (4, "four")]
    db.revert(dele)
    assert table(db) == [(1, "one"), (2, "two"), (3, "drei"), (4, "four")]
    assert {v["id"]: r for r, v in rows(db, "t").items()}[2] == rowid2, "a reverted delete keeps _rowid"
    db.revert(ins, message="undo four")
    assert table(db) == [(1, "one"), (2, "two"), (3, "drei")]
    assert db.log(limit=1)[0]["message"] == "undo four"


def test_revert_conflict_writes_nothing(db: reeldb.Connection, path: str) -> None:
    db.execute("UPDATE t SET v = 'uno' WHERE id = 1")
    upd = db.head
    db.execute("UPDATE t SET v = 'eins' WHERE id = 1")  # a later change of the same cell
    head, before = db.head, commits(path)
    with pytest.raises(reeldb.MergeConflict) as info:
        db.revert(upd)
    assert info.value.sqlstate == "RD001"
    assert [(c.column, c.kind) for c in info.value.conflicts] == [("v", "cell")]
    assert db.head == head and commits(path) == before


def test_revert_errors(db: reeldb.Connection) -> None:
    db.branch("x")
    db.execute("INSERT INTO t VALUES (4, 'four')")
    on_x = db.head
    db.checkout("main")
    assert sqlstate(lambda: db.revert(on_x)) == "22023"  # not in main's history
    assert sqlstate(lambda: db.revert("nope")) == "42704"
    with db.transaction():
        assert sqlstate(lambda: db.revert(db.head)) == "25001"


def test_revert_schema_change(db: reeldb.Connection) -> None:
    db.execute("ALTER TABLE t ADD COLUMN w INT")
    add = db.head
    db.execute("INSERT INTO t VALUES (4, 'four', 4)")
    db.revert(add)
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "v"]
    assert len(table(db)) == 4


# --- unknown refs --------------------------------------------------------------------------------


def test_unknown_refs_are_42704(db: reeldb.Connection, path: str) -> None:
    for call in (lambda: db.checkout("nope"), lambda: db.branch("b", at="nope"),
                 lambda: db.tag("t1", at="nope"), lambda: db.log(branch="nope"),
                 lambda: db.diff("nope"), lambda: db.merge("nope"),
                 lambda: db.reset(to="deadbeefdeadbeef"), lambda: db.revert("nope"),
                 lambda: db.delete_branch("nope"), lambda: db.delete_tag("nope"),
                 lambda: db.execute('SELECT * FROM "nope".t'),
                 lambda: db.execute("SELECT reeldb_checkout('nope')"),
                 lambda: db.execute("SELECT * FROM reeldb_log('nope')"),
                 lambda: db.execute("SET reeldb.branch = 'nope'"),
                 lambda: reeldb.connect(path, at="nope")):
        assert sqlstate(call) in ("42704", "3F000")
    assert db.current_branch == "main"
    assert [b["name"] for b in db.branches()] == ["main"]


# --- SQL surface ---------------------------------------------------------------------------------


def test_sql_branch_checkout_set_show(db: reeldb.Connection) -> None:
    head = db.head
    assert db.execute("SELECT reeldb_branch('exp')").fetchone() == (head,)
    assert db.current_branch == "exp"
    db.execute("INSERT INTO t VALUES (4, 'four')")
    assert db.execute("SHOW reeldb.branch").fetchone() == ("exp",)
    assert db.execute("SELECT reeldb_checkout('main')").fetchone() == (head,)
    assert db.current_branch == "main" and len(table(db)) == 3
    db.execute("SET reeldb.branch = 'exp'")
    assert db.current_branch == "exp" and len(table(db)) == 4
    db.execute("SET reeldb.branch TO 'main'")
    assert db.current_branch == "main"
    db.execute("SELECT reeldb_branch('from-tag', %s)", [head])
    assert db.current_branch == "from-tag" and db.head == head
    db.checkout("main")
    # a tag or commit checked out by SQL is read-only
    db.execute("SELECT reeldb_tag('v1')")
    db.execute("SET reeldb.branch = 'v1'")
    assert db.current_branch is None
    assert sqlstate(lambda: db.execute("INSERT INTO t VALUES (9, 'nine')")) == "25006"
    db.execute("SELECT reeldb_checkout('main')")
    assert sqlstate(lambda: db.execute("SELECT reeldb_branch('exp')")) == "42710"
    assert sqlstate(lambda: db.execute("SELECT reeldb_branch()")) == "42883"


def test_sql_tag_and_tags_table(db: reeldb.Connection) -> None:
    first = db.head
    assert db.execute("SELECT reeldb_tag('v1')").fetchone() == (first,)
    db.execute("INSERT INTO t VALUES (4, 'four')")
    db.execute("SELECT reeldb_tag('v0', %s)", [first])
    assert db.execute("SELECT * FROM reeldb_tags()").fetchall() == [("v0", first), ("v1", first)]
    assert db.execute("SELECT name FROM reeldb_tags() WHERE commit = %s ORDER BY name", [first]).fetchall() \
        == [("v0",), ("v1",)]
    assert db.execute('SELECT count(*) FROM "v1".t').fetchone() == (3,)
    assert db.execute(f'SELECT count(*) FROM "{first}".t').fetchone() == (3,)
    assert db.execute(f'SELECT count(*) FROM "{first[:8]}".t').fetchone() == (3,)  # a unique prefix
    assert db.execute("SELECT count(*) FROM public.t").fetchone() == (4,)


def test_sql_branches_table(db: reeldb.Connection) -> None:
    db.execute("SELECT reeldb_branch('b1')")
    db.execute("SELECT reeldb_checkout('main')")
    db.execute("SELECT reeldb_protect('main')")
    got = db.execute("SELECT name, commit = %s, current, protected FROM reeldb_branches() ORDER BY name",
                     [db.head]).fetchall()
    assert got == [("b1", True, False, False), ("main", True, True, True)]
    assert [d[0] for d in db.execute("SELECT * FROM reeldb_branches()").description] == \
        ["name", "commit", "current", "protected"]
    assert db.execute("SELECT reeldb_unprotect('main')").fetchone() == ("main",)
    assert not db.execute("SELECT protected FROM reeldb_branches() WHERE name = 'main'").fetchone()[0]
    assert db.execute("SELECT reeldb_delete_branch('b1')").fetchone() == ("b1",)
    assert db.execute("SELECT count(*) FROM reeldb_branches()").fetchone() == (1,)
    assert sqlstate(lambda: db.execute("SELECT reeldb_delete_branch('main')")) == "55006"


def test_sql_protect(db: reeldb.Connection) -> None:
    db.execute("SELECT reeldb_protect('main')")
    with pytest.raises(reeldb.BranchProtected) as info:
        db.execute("INSERT INTO t VALUES (4, 'four')")
    assert info.value.sqlstate == "25006"
    db.execute("SELECT reeldb_unprotect('main')")
    db.execute("INSERT INTO t VALUES (4, 'four')")


def test_sql_log(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE u (x INT)")
    db.execute("INSERT INTO u VALUES (1), (2)")
    db.execute("UPDATE t SET v = 'uno' WHERE id = 1")
    cur = db.execute("SELECT * FROM reeldb_log()")
    assert [d[0] for d in cur.description] == ["commit", "parents", "time", "author", "message",
                                                "inserted", "deleted", "updated"]
    got = cur.fetchall()
    assert [r[0] for r in got] == [c["id"] for c in db.log()]
    assert got[0][5:] == (0, 0, 1)
    assert got[1][5:] == (2, 0, 0)
    assert db.execute("SELECT count(*) FROM reeldb_log('main', 'u')").fetchone() == (2,)
    assert db.execute("SELECT message FROM reeldb_log() ORDER BY time DESC LIMIT 1").fetchone() == \
        (db.log(limit=1)[0]["message"],)
    db.execute("SELECT reeldb_branch('x')")
    db.execute("INSERT INTO t VALUES (9, 'nine')")
    assert db.execute("SELECT count(*) FROM reeldb_log('x')").fetchone()[0] == \
        db.execute("SELECT count(*) FROM reeldb_log('main')").fetchone()[0] + 1


def test_sql_reset_and_revert(db: reeldb.Connection) -> None:
    first = db.head
    db.execute("INSERT INTO t VALUES (4, 'four')")
    second = db.head
    assert db.execute("SELECT reeldb_reset(%s)", [first]).fetchone() == (first,)
    assert db.head == first
    db.execute("SELECT reeldb_branch('x', %s)", [second])
    db.execute("SELECT reeldb_checkout('main')")
    assert db.execute("SELECT reeldb_reset('x', %s)", [first]).fetchone() == (first,)
    assert db.catalog.head("x") == first
    db.execute("SELECT reeldb_reset('main', %s)", [second])
    (reverted,) = db.execute("SELECT reeldb_revert(%s)", [second]).fetchone()
    assert reverted == db.head
    assert len(table(db)) == 3
    assert sqlstate(lambda: db.execute("SELECT reeldb_reset('a', 'b', 'c')")) == "42883"
    assert sqlstate(lambda: db.execute("SELECT reeldb_revert('nope')")) == "42704"


def test_revert_after_compaction(path: str, monkeypatch) -> None:
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, v TEXT, n INT)")
    for i in range(5):
        db.execute("INSERT INTO t VALUES (%s, 'a', NULL)", [i])
    db.execute("UPDATE t SET v = 'u' WHERE id = 1")
    upd = db.head
    db.execute("DELETE FROM t WHERE id = 2")
    dele = db.head
    db.execute("INSERT INTO t VALUES (9, 'new', NULL)")
    ins = db.head
    db.optimize()  # the rows those commits touched have moved
    for c in (upd, dele, ins):
        db.revert(c)
    assert table(db) == [(i, "a", None) for i in range(5)]
    db.close()


def test_log_counts_inside_one_transaction(db: reeldb.Connection) -> None:
    with db.transaction():
        db.execute("UPDATE t SET v = 'x' WHERE id = 1")
        db.execute("UPDATE t SET v = 'y' WHERE id = 1")  # the same row twice
        db.execute("UPDATE t SET v = 'z' WHERE id = 2")
        db.execute("DELETE FROM t WHERE id = 2")  # updated, then deleted
        db.execute("INSERT INTO t VALUES (7, 'seven'), (8, 'eight')")
        db.execute("DELETE FROM t WHERE id = 8")  # inserted, then deleted
    assert db.log(limit=1)[0]["tables"] == {"t": {"inserted": 1, "deleted": 1, "updated": 1}}
    assert db.execute("SELECT inserted, deleted, updated FROM reeldb_log() LIMIT 1").fetchone() == (1, 1, 1)
