"""Git-like versioning: branches, checkout, isolation, branches and tags as SQL schemas,
tags, time travel by tag or commit id, the commit log."""

from __future__ import annotations

import pytest

import reeldb


@pytest.fixture
def db(path: str) -> reeldb.Connection:
    conn = reeldb.connect(path)
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    yield conn
    conn.close()


def ids(db: reeldb.Connection, table: str = "t") -> list[int]:
    return [r[0] for r in db.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


# --- branches and checkout ----------------------------------------------------------------------


def test_branch_switches(db: reeldb.Connection) -> None:
    head = db.head
    assert db.current_branch == "main"
    got = db.branch("experiment/x")
    assert got == head
    assert db.current_branch == "experiment/x"
    assert db.head == head  # O(1): same commit
    assert ids(db) == [1, 2]


def test_branch_checkout_false_stays(db: reeldb.Connection) -> None:
    db.branch("side", checkout=False)
    assert db.current_branch == "main"
    names = {b["name"] for b in db.branches()}
    assert names == {"main", "side"}


def test_branches_listing(db: reeldb.Connection) -> None:
    db.branch("a", checkout=False)
    db.branch("experiment/x")
    listing = db.branches()
    assert [b["name"] for b in listing] == sorted(b["name"] for b in listing)
    by_name = {b["name"]: b for b in listing}
    assert set(by_name) == {"main", "a", "experiment/x"}
    assert by_name["experiment/x"]["current"] is True
    assert by_name["main"]["current"] is False
    assert by_name["a"]["commit"] == by_name["main"]["commit"] == db.head
    for b in listing:
        assert set(b) == {"name", "commit", "current", "protected"}


def test_duplicate_branch_refused(db: reeldb.Connection) -> None:
    db.branch("x", checkout=False)
    with pytest.raises(reeldb.Error) as ei:
        db.branch("x")
    assert ei.value.sqlstate == "42710"
    assert db.current_branch == "main"


@pytest.mark.parametrize("name", ["", "a b", "../x", "x..y", "-x", "x/", "a:b"])
def test_bad_branch_names_refused(db: reeldb.Connection, name: str) -> None:
    with pytest.raises(reeldb.Error):
        db.branch(name)
    assert db.current_branch == "main"


def test_checkout_missing_branch(db: reeldb.Connection) -> None:
    with pytest.raises(reeldb.Error) as ei:
        db.checkout("nope")
    assert ei.value.sqlstate == "42704"
    assert db.current_branch == "main"
    assert ids(db) == [1, 2]


def test_checkout_back_and_forth(db: reeldb.Connection) -> None:
    db.branch("exp")
    db.execute("INSERT INTO t VALUES (3, 'three')")
    db.checkout("main")
    assert db.current_branch == "main"
    assert ids(db) == [1, 2]
    db.checkout("exp")
    assert ids(db) == [1, 2, 3]


def test_branch_inside_transaction_refused(db: reeldb.Connection) -> None:
    with db.transaction():
        with pytest.raises(reeldb.Error) as ei:
            db.branch("x")
        assert ei.value.sqlstate == "25001"
        with pytest.raises(reeldb.Error):
            db.checkout("main")
    assert db.current_branch == "main"


def test_branch_at_tag_and_commit(db: reeldb.Connection) -> None:
    v1 = db.tag("v1")
    first = db.head
    db.execute("INSERT INTO t VALUES (3, 'three')")
    assert db.branch("fix", at="v1", checkout=False) == v1
    db.branch("fix2", at=first)
    assert db.current_branch == "fix2"
    assert ids(db) == [1, 2]
    db.checkout("fix")
    assert ids(db) == [1, 2]
    db.checkout("main")
    assert ids(db) == [1, 2, 3]


def test_connect_on_branch(db: reeldb.Connection, path: str) -> None:
    db.branch("exp", checkout=False)
    other = reeldb.connect(path, branch="exp")
    assert other.current_branch == "exp"
    other.execute("INSERT INTO t VALUES (9, 'nine')")
    assert ids(other) == [1, 2, 9]
    assert ids(db) == [1, 2]
    with pytest.raises(reeldb.Error):
        reeldb.connect(path, branch="does-not-exist")


# --- isolation ------------------------------------------------------------------------------------


def test_branch_isolation_both_ways(db: reeldb.Connection) -> None:
    db.branch("exp")
    db.execute("INSERT INTO t VALUES (3, 'exp')")
    db.execute("UPDATE t SET v = 'changed on exp' WHERE id = 1")
    db.checkout("main")
    assert db.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "one"), (2, "two")]
    db.execute("INSERT INTO t VALUES (4, 'main')")
    db.execute("DELETE FROM t WHERE id = 2")
    assert ids(db) == [1, 4]
    db.checkout("exp")
    assert db.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [
        (1, "changed on exp"), (2, "two"), (3, "exp")]


def test_ddl_isolated_per_branch(db: reeldb.Connection) -> None:
    db.branch("exp")
    db.execute("CREATE TABLE only_exp (x INT)")
    db.execute("DROP TABLE t")
    assert db.tables() == ["only_exp"]
    db.checkout("main")
    assert db.tables() == ["t"]
    with pytest.raises(reeldb.Error) as ei:
        db.execute("SELECT * FROM only_exp")
    assert ei.value.sqlstate == "42P01"


def test_branch_keeps_old_schema_after_alter(db: reeldb.Connection) -> None:
    db.branch("before", checkout=False)
    db.execute("ALTER TABLE t ADD COLUMN score REAL")
    db.execute("ALTER TABLE t RENAME COLUMN v TO label")
    db.execute("INSERT INTO t VALUES (3, 'three', 0.5)")
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "label", "score"]
    db.checkout("before")
    assert [d[0] for d in db.execute("SELECT * FROM t").description] == ["id", "v"]
    assert db.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "one"), (2, "two")]
    with pytest.raises(reeldb.Error) as ei:
        db.execute("SELECT score FROM t")
    assert ei.value.sqlstate == "42703"
    # and writes on the old schema still work there
    db.execute("INSERT INTO t VALUES (5, 'five')")
    assert ids(db) == [1, 2, 5]


# --- other refs as SQL schemas --------------------------------------------------------------------


def test_select_from_other_branch_schema(db: reeldb.Connection) -> None:
    db.branch("experiment/x")
    db.execute("INSERT INTO t VALUES (3, 'exp')")
    db.checkout("main")
    rows = db.execute('SELECT id FROM "experiment/x".t ORDER BY id').fetchall()
    assert rows == [(1,), (2,), (3,)]
    assert ids(db) == [1, 2]


def test_union_of_two_branches(db: reeldb.Connection) -> None:
    db.branch("experiment/x")
    db.execute("INSERT INTO t VALUES (3, 'exp')")
    db.checkout("main")
    db.execute("INSERT INTO t VALUES (4, 'main')")
    rows = db.execute(
        """SELECT 'exp' AS src, id FROM "experiment/x".t
           UNION ALL SELECT 'main', id FROM main.t ORDER BY src, id"""
    ).fetchall()
    assert rows == [("exp", 1), ("exp", 2), ("exp", 3), ("main", 1), ("main", 2), ("main", 4)]


def test_join_two_branches(db: reeldb.Connection) -> None:
    db.branch("experiment/x")
    db.execute("UPDATE t SET v = 'uno' WHERE id = 1")
    db.checkout("main")
    rows = db.execute(
        """SELECT m.id, m.v, e.v FROM main.t AS m JOIN "experiment/x".t AS e ON m.id = e.id
           WHERE m.v IS DISTINCT FROM e.v"""
    ).fetchall()
    assert rows == [(1, "one", "uno")]


def test_public_schema_is_current_branch(db: reeldb.Connection) -> None:
    db.branch("exp")
    db.execute("INSERT INTO t VALUES (3, 'exp')")
    assert [r[0] for r in db.execute("SELECT id FROM public.t ORDER BY id").fetchall()] == [1, 2, 3]


def test_other_branch_schema_sees_later_commits(db: reeldb.Connection, path: str) -> None:
    db.branch("exp", checkout=False)
    assert db.execute('SELECT count(*) FROM "exp".t').fetchone()[0] == 2
    other = reeldb.connect(path, branch="exp")
    other.execute("INSERT INTO t VALUES (7, 'x')")
    assert db.execute('SELECT count(*) FROM "exp".t').fetchone()[0] == 3


def test_unknown_schema_errors(db: reeldb.Connection) -> None:
    with pytest.raises(reeldb.Error):
        db.execute('SELECT * FROM "no-such-branch".t')
    with pytest.raises(reeldb.Error) as ei:
        db.execute("SELECT * FROM main.no_such_table")
    assert ei.value.sqlstate == "42P01"


def test_read_tag_as_schema(db: reeldb.Connection) -> None:
    db.tag("v1")
    db.execute("INSERT INTO t VALUES (3, 'three')")
    assert db.execute('SELECT count(*) FROM "v1".t').fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM v1.t").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 3


def test_read_commit_as_schema(db: reeldb.Connection) -> None:
    cid = db.head
    db.execute("DELETE FROM t WHERE id = 1")
    assert db.execute(f'SELECT id FROM "{cid}".t ORDER BY id').fetchall() == [(1,), (2,)]


# --- tags and time travel -------------------------------------------------------------------------


def test_tag_and_connect_at(db: reeldb.Connection, path: str) -> None:
    tagged = db.tag("v1")
    assert tagged == db.head
    assert db.tags() == {"v1": tagged}
    db.execute("INSERT INTO t VALUES (3, 'three')")
    db.execute("UPDATE t SET v = 'ONE' WHERE id = 1")
    db.execute("ALTER TABLE t ADD COLUMN extra INT")
    old = reeldb.connect(path, at="v1")
    assert old.current_branch is None
    assert old.head == tagged
    assert old.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "one"), (2, "two")]
    assert [d[0] for d in old.execute("SELECT * FROM t").description] == ["id", "v"]


@pytest.mark.parametrize("sql", [
    "INSERT INTO t VALUES (3, 'x')",
    "UPDATE t SET v = 'x'",
    "DELETE FROM t",
    "CREATE TABLE z (a INT)",
    "DROP TABLE t",
    "ALTER TABLE t ADD COLUMN q INT",
])
def test_connect_at_refuses_writes(db: reeldb.Connection, path: str, sql: str) -> None:
    db.tag("v1")
    old = reeldb.connect(path, at="v1")
    with pytest.raises(reeldb.Error) as ei:
        old.execute(sql)
    assert ei.value.sqlstate == "25006", ei.value
    assert ids(old) == [1, 2]
    assert ids(db) == [1, 2]


def test_connect_at_refuses_write_in_transaction(db: reeldb.Connection, path: str) -> None:
    db.tag("v1")
    old = reeldb.connect(path, at="v1")
    with pytest.raises(reeldb.Error) as ei, old.transaction():
        old.execute("INSERT INTO t VALUES (3, 'x')")
    assert ei.value.sqlstate == "25006"
    with pytest.raises(reeldb.Error) as ei:
        old.insert("t", [{"id": 3, "v": "x"}])
    assert ei.value.sqlstate == "25006"
    assert ids(db) == [1, 2]


def test_duplicate_tag_refused(db: reeldb.Connection) -> None:
    db.tag("v1")
    first = db.tags()["v1"]
    db.execute("INSERT INTO t VALUES (3, 'x')")
    with pytest.raises(reeldb.Error) as ei:
        db.tag("v1")
    assert ei.value.sqlstate == "42710"
    assert db.tags()["v1"] == first  # tags never move


def test_time_travel_by_commit_id(db: reeldb.Connection, path: str) -> None:
    db.execute("INSERT INTO t VALUES (3, 'three')")
    db.execute("DELETE FROM t WHERE id = 1")
    log = db.log()
    # newest first: [delete, insert 3, insert 1&2, create t, create database]
    states = {}
    for entry in log[:3]:
        states[entry["id"]] = ids(reeldb.connect(path, at=entry["id"]))
    assert list(states.values()) == [[2, 3], [1, 2, 3], [1, 2]]
    # a unique prefix of a commit id works too
    prefix = log[1]["id"][:16]
    assert ids(reeldb.connect(path, at=prefix)) == [1, 2, 3]
    with pytest.raises(reeldb.Error):
        reeldb.connect(path, at="ffffffffffffffffffffffff")


def test_connect_at_branch_name_pins_current_head(db: reeldb.Connection, path: str) -> None:
    old = reeldb.connect(path, at="main")
    db.execute("INSERT INTO t VALUES (3, 'three')")
    assert ids(old) == [1, 2]


# --- log ----------------------------------------------------------------------------------------------


def test_log_newest_first_with_messages(path: str) -> None:
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    with db.transaction(message="load first rows"):
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
    with db.transaction(message="second load", author="alice"):
        db.execute("INSERT INTO t VALUES (3)")
    log = db.log()
    assert [c["message"] for c in log[:2]] == ["second load", "load first rows"]
    assert log[0]["author"] == "alice"
    assert log[-1]["parents"] == []  # the root commit
    assert log[0]["id"] == db.head
    times = [c["time"] for c in log]
    assert times == sorted(times, reverse=True)
    assert all(t.tzinfo is not None for t in times)
    for newer, older in zip(log, log[1:]):
        assert newer["parents"] == [older["id"]]  # linear history here
    for c in log:
        assert set(c) == {"id", "parents", "time", "author", "message", "tables"}
    assert len(db.log(limit=2)) == 2
    assert db.log(limit=2) == log[:2]


def test_log_default_messages_and_per_branch(db: reeldb.Connection) -> None:
    main_log = db.log()
    assert "t" in main_log[0]["message"]  # an autocommit describes what it changed
    db.branch("exp")
    with db.transaction(message="on exp"):
        db.execute("INSERT INTO t VALUES (3, 'x')")
    assert db.log()[0]["message"] == "on exp"
    assert db.log(branch="main") == main_log
    assert db.log(branch="exp")[1:] == main_log


def test_transaction_is_one_commit(db: reeldb.Connection) -> None:
    before = len(db.log())
    with db.transaction():
        db.execute("CREATE TABLE u (a INT)")
        db.execute("INSERT INTO u VALUES (1)")
        db.execute("INSERT INTO t VALUES (3, 'x')")
    assert len(db.log()) == before + 1


def test_rolled_back_transaction_leaves_no_commit(db: reeldb.Connection) -> None:
    head = db.head
    with pytest.raises(ZeroDivisionError), db.transaction():
        db.execute("INSERT INTO t VALUES (3, 'x')")
        1 / 0  # noqa: B018
    assert db.head == head
    assert ids(db) == [1, 2]


def test_a_view_at_a_commit_keeps_the_logins_rights(db: reeldb.Connection) -> None:
    """Connection.at() (the dataloader's pinned read) reads as the same login: a view made
    from a restricted connection is as restricted, never FULL."""
    from reeldb.sql.rights import Rights

    db.execute("CREATE TABLE pinned (a INT)")
    db.execute("INSERT INTO pinned VALUES (1)")
    restricted = Rights(user="reader", read_only=True)
    db.session.rights = restricted
    view = db.at(db.head)
    try:
        assert view.session.rights == restricted and view.session.user == db.session.user
        assert view.execute("SELECT a FROM pinned").fetchall() == [(1,)]
    finally:
        view.close()
    assert db.execute("SELECT count(*) FROM pinned").fetchall() == [(1,)]  # the store stayed open


def test_a_view_at_a_ref_the_login_may_not_read_is_refused(db: reeldb.Connection) -> None:
    """A login limited to some branches cannot read another through Connection.at(), by
    its name or by its head commit's id; what it may read still opens."""
    from reeldb.sql.rights import Rights

    db.execute("CREATE TABLE secret (a INT)")
    db.branch("exp", checkout=False)
    db.checkout("exp")
    db.execute("INSERT INTO secret VALUES (42)")
    exp_head = db.head
    db.checkout("main")
    db.session.rights = Rights(user="reader", patterns=("main",))
    for ref in ("exp", exp_head):
        with pytest.raises(reeldb.errors.InsufficientPrivilege):
            db.at(ref)
    view = db.at("main")
    try:
        assert view.execute("SELECT count(*) FROM secret").fetchone() == (0,)
    finally:
        view.close()
