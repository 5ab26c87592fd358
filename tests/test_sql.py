"""SQL end to end on a real database folder: every statement kind, constraints,
transactions, vector and JSON operators, parameter styles, the vector top-k fast path,
the cursor API and the bulk insert paths. Expected results follow Postgres + pgvector."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import reeldb

# --- helpers --------------------------------------------------------------------------------


def col(db: reeldb.Connection, sql: str, params=None) -> list:
    """The first column of every row."""
    return [r[0] for r in db.execute(sql, params).fetchall()]


def rows(db: reeldb.Connection, sql: str, params=None) -> list[tuple]:
    return db.execute(sql, params).fetchall()


def cosine(m: np.ndarray, q: np.ndarray) -> np.ndarray:
    m64, q64 = m.astype(np.float64), q.astype(np.float64)
    return (m64 @ q64) / (np.linalg.norm(m64, axis=1) * np.linalg.norm(q64))


@pytest.fixture
def people(db: reeldb.Connection) -> reeldb.Connection:
    """Two related tables for joins, subqueries, UPDATE ... FROM."""
    db.execute("CREATE TABLE teams (id INT PRIMARY KEY, name TEXT NOT NULL)")
    db.execute("INSERT INTO teams VALUES (1, 'red'), (2, 'blue'), (3, 'green')")
    db.execute(
        "CREATE TABLE people (id SERIAL PRIMARY KEY, name TEXT, team_id INT, score INT, "
        "active BOOLEAN DEFAULT true)"
    )
    db.execute(
        "INSERT INTO people (name, team_id, score) VALUES "
        "('ann', 1, 10), ('bob', 1, 20), ('cid', 2, 30), ('dee', 2, 40), ('eve', NULL, 50)"
    )
    return db


# --- CREATE TABLE ---------------------------------------------------------------------------


def test_create_table_with_every_type(db: reeldb.Connection) -> None:
    db.execute(
        """CREATE TABLE everything (
            id SERIAL PRIMARY KEY, big BIGSERIAL,
            s SMALLINT, i INT, b BIGINT,
            r REAL, f FLOAT, d DOUBLE PRECISION, n NUMERIC(10, 2),
            ok BOOLEAN, t TEXT, vc VARCHAR(16),
            raw BYTEA, raw2 BLOB, j JSON, jb JSONB,
            day DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, u UUID,
            v VECTOR(3), hv HALFVEC(3),
            latent TENSOR(float16, 4, 8, 8), anyt TENSOR(float32),
            img IMAGE, clip VIDEO
        )"""
    )
    assert "everything" in db.tables()
    cur = db.execute("SELECT * FROM everything")
    assert cur.fetchall() == []
    names = [d[0] for d in cur.description]
    assert names == ["id", "big", "s", "i", "b", "r", "f", "d", "n", "ok", "t", "vc", "raw", "raw2",
                     "j", "jb", "day", "ts", "tstz", "u", "v", "hv", "latent", "anyt", "img", "clip"]


def test_create_table_if_not_exists(db: reeldb.Connection, count) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("CREATE TABLE IF NOT EXISTS t (other TEXT)")  # a no-op: the old table stays
    assert col(db, "SELECT id FROM t") == [1]
    with pytest.raises(reeldb.ProgrammingError) as info:
        db.execute("CREATE TABLE t (id INT)")
    assert info.value.sqlstate == "42P07"
    assert count("t") == 1


def test_serial_and_bigserial_count_up(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, big BIGSERIAL, name TEXT)")
    db.execute("INSERT INTO t (name) VALUES ('a'), ('b')")
    db.execute("INSERT INTO t (name) VALUES ('c')")
    got = rows(db, "SELECT id, big, name FROM t ORDER BY id")
    assert [r[2] for r in got] == ["a", "b", "c"]
    ids = [r[0] for r in got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert ids[0] == 1 and ids[1] == 2  # Postgres' sequences start at 1
    assert len({r[1] for r in got}) == 3


def test_default_now_and_constants(db: reeldb.Connection) -> None:
    db.execute(
        "CREATE TABLE t (id INT, label TEXT DEFAULT 'new', n INT DEFAULT 42, ok BOOLEAN DEFAULT true, "
        "created TIMESTAMP DEFAULT NOW(), created_tz TIMESTAMPTZ DEFAULT now())"
    )
    before = dt.datetime.now(dt.timezone.utc)
    db.execute("INSERT INTO t (id) VALUES (1), (2)")
    after = dt.datetime.now(dt.timezone.utc)
    got = rows(db, "SELECT id, label, n, ok, created, created_tz FROM t ORDER BY id")
    assert [r[:4] for r in got] == [(1, "new", 42, True), (2, "new", 42, True)]
    slack = dt.timedelta(seconds=5)
    for r in got:
        created, created_tz = r[4], r[5]
        assert isinstance(created, dt.datetime) and isinstance(created_tz, dt.datetime)
        assert created_tz.tzinfo is not None
        assert before - slack <= created_tz <= after + slack
    assert got[0][4] == got[1][4]  # NOW() is the transaction's start time, same for every row
    # an explicit value wins over the default; DEFAULT in VALUES takes the default
    db.execute("INSERT INTO t (id, label, n) VALUES (3, 'mine', DEFAULT)")
    assert rows(db, "SELECT label, n FROM t WHERE id = 3") == [("mine", 42)]
    db.execute("INSERT INTO t DEFAULT VALUES")
    assert rows(db, "SELECT id, label, n, ok FROM t WHERE id IS NULL") == [(None, "new", 42, True)]


def test_column_names_that_are_keywords_only_in_duckdb(db: reeldb.Connection) -> None:
    # AT is not reserved in Postgres, so Postgres accepts these unquoted column names.
    db.execute("CREATE TABLE t (id INT, at TIMESTAMP)")
    db.execute("INSERT INTO t VALUES (1, '2024-01-02 03:04:05')")
    assert rows(db, "SELECT id, at FROM t") == [(1, dt.datetime(2024, 1, 2, 3, 4, 5))]


# --- constraints ----------------------------------------------------------------------------


def test_not_null_enforced(db: reeldb.Connection, refused) -> None:
    db.execute("CREATE TABLE t (id INT NOT NULL, name TEXT NOT NULL)")
    db.execute("INSERT INTO t VALUES (1, 'a')")
    refused("23502", "t", "INSERT INTO t VALUES (2, NULL)")
    refused("23502", "t", "INSERT INTO t (id) VALUES (2)")  # no default -> NULL
    refused("23502", "t", "INSERT INTO t VALUES (3, 'c'), (4, NULL)")  # one bad row: none written
    refused("23502", "t", "UPDATE t SET name = NULL WHERE id = 1")
    assert rows(db, "SELECT * FROM t") == [(1, "a")]


def test_primary_key_enforced(db: reeldb.Connection, refused) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    refused("23505", "t", "INSERT INTO t VALUES (1, 'again')")
    refused("23505", "t", "INSERT INTO t VALUES (3, 'c'), (3, 'dup in the same statement')")
    refused("23502", "t", "INSERT INTO t VALUES (NULL, 'no key')")
    refused("23505", "t", "UPDATE t SET id = 1 WHERE id = 2")
    # updating a row without touching its key does not collide with itself
    db.execute("UPDATE t SET name = 'A' WHERE id = 1")
    db.execute("UPDATE t SET id = id + 10")  # shifting every key at once is fine
    assert rows(db, "SELECT id, name FROM t ORDER BY id") == [(11, "A"), (12, "b")]


def test_unique_enforced_single_and_multi_column(db: reeldb.Connection, refused) -> None:
    db.execute("CREATE TABLE t (a INT, b INT, code TEXT UNIQUE, UNIQUE (a, b))")
    db.execute("INSERT INTO t VALUES (1, 1, 'x'), (1, 2, 'y'), (2, 1, 'z')")
    refused("23505", "t", "INSERT INTO t VALUES (1, 1, 'new')")  # (a, b) taken
    refused("23505", "t", "INSERT INTO t VALUES (9, 9, 'x')")  # code taken
    refused("23505", "t", "INSERT INTO t VALUES (5, 5, 'p'), (5, 5, 'q')")  # within one INSERT
    # NULLs never collide in a UNIQUE constraint (Postgres' default NULLS DISTINCT)
    db.execute("INSERT INTO t VALUES (1, NULL, NULL), (1, NULL, NULL)")
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 5
    # once the holder of a key is deleted the key is free again
    db.execute("DELETE FROM t WHERE code = 'x'")
    db.execute("INSERT INTO t VALUES (1, 1, 'x')")
    assert db.execute("SELECT count(*) FROM t WHERE a = 1 AND b = 1").fetchone()[0] == 1


def test_unique_checked_against_existing_fragments_and_in_transactions(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    for i in range(3):  # several fragments
        db.execute("INSERT INTO t VALUES (%s)", [i])
    with pytest.raises(reeldb.IntegrityError) as info, db.transaction():
        db.execute("INSERT INTO t VALUES (10)")
        db.execute("INSERT INTO t VALUES (10)")
    assert info.value.sqlstate == "23505"
    assert col(db, "SELECT id FROM t ORDER BY id") == [0, 1, 2]


# --- DROP / ALTER ------------------------------------------------------------------------------


def test_drop_table(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("DROP TABLE t")
    assert "t" not in db.tables()
    with pytest.raises(reeldb.ProgrammingError) as info:
        db.execute("SELECT * FROM t")
    assert info.value.sqlstate == "42P01"
    with pytest.raises(reeldb.ProgrammingError) as info:
        db.execute("DROP TABLE t")
    assert info.value.sqlstate == "42P01"
    db.execute("DROP TABLE IF EXISTS t")  # no error
    db.execute("CREATE TABLE t (other TEXT)")  # the name is free again, and the table empty
    assert rows(db, "SELECT * FROM t") == []


def test_alter_add_column_with_default_fills_old_rows(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1), (2)")
    db.execute("ALTER TABLE t ADD COLUMN status TEXT DEFAULT 'pending'")
    db.execute("ALTER TABLE t ADD COLUMN weight INT DEFAULT 7")
    db.execute("ALTER TABLE t ADD COLUMN note TEXT")
    db.execute("INSERT INTO t (id) VALUES (3)")
    db.execute("INSERT INTO t (id, status, weight) VALUES (4, 'done', 1)")
    assert rows(db, "SELECT id, status, weight, note FROM t ORDER BY id") == [
        (1, "pending", 7, None), (2, "pending", 7, None), (3, "pending", 7, None), (4, "done", 1, None),
    ]
    assert col(db, "SELECT id FROM t WHERE status = 'pending' ORDER BY id") == [1, 2, 3]


def test_alter_drop_column(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT, secret TEXT, keep TEXT)")
    db.execute("INSERT INTO t VALUES (1, 's', 'k')")
    db.execute("ALTER TABLE t DROP COLUMN secret")
    cur = db.execute("SELECT * FROM t")
    assert [d[0] for d in cur.description] == ["id", "keep"]
    assert cur.fetchall() == [(1, "k")]
    with pytest.raises(reeldb.ProgrammingError) as info:
        db.execute("SELECT secret FROM t")
    assert info.value.sqlstate == "42703"
    db.execute("INSERT INTO t VALUES (2, 'k2')")
    assert rows(db, "SELECT * FROM t ORDER BY id") == [(1, "k"), (2, "k2")]
    # a new column of the old name starts empty: the dropped data does not come back
    db.execute("ALTER TABLE t ADD COLUMN secret TEXT")
    assert col(db, "SELECT secret FROM t") == [None, None]


def test_alter_rename_column_keeps_data(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT, v VECTOR(2), old_name TEXT)")
    db.execute("INSERT INTO t VALUES (1, '[1,2]', 'a'), (2, '[3,4]', 'b')")
    db.execute("ALTER TABLE t RENAME COLUMN old_name TO new_name")
    db.execute("ALTER TABLE t RENAME COLUMN v TO emb")
    got = rows(db, "SELECT id, new_name, emb FROM t ORDER BY id")
    assert [(r[0], r[1]) for r in got] == [(1, "a"), (2, "b")]
    np.testing.assert_array_equal(got[1][2], [3, 4])
    with pytest.raises(reeldb.ProgrammingError) as info:
        db.execute("SELECT old_name FROM t")
    assert info.value.sqlstate == "42703"


# --- INSERT -----------------------------------------------------------------------------------


def test_insert_many_rows_and_insert_select(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE src (id INT, v VECTOR(2), name TEXT)")
    values = ", ".join(f"({i}, '[{i},{i + 1}]', 'n{i}')" for i in range(200))
    cur = db.execute(f"INSERT INTO src VALUES {values}")
    assert cur.rowcount == 200
    db.execute("CREATE TABLE dst (id INT, v VECTOR(2), name TEXT)")
    cur = db.execute("INSERT INTO dst SELECT id, v, upper(name) FROM src WHERE id % 2 = 0")
    assert cur.rowcount == 100
    got = rows(db, "SELECT id, v, name FROM dst WHERE id = 10")
    assert got[0][0] == 10 and got[0][2] == "N10"
    np.testing.assert_array_equal(got[0][1], [10, 11])
    # column list in another order, the rest defaulting to NULL
    db.execute("INSERT INTO dst (name, id) SELECT name, id + 1000 FROM src WHERE id < 3")
    assert rows(db, "SELECT id, v, name FROM dst WHERE id >= 1000 ORDER BY id") == [
        (1000, None, "n0"), (1001, None, "n1"), (1002, None, "n2"),
    ]


def test_insert_returning(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, name TEXT, n INT DEFAULT 5)")
    cur = db.execute("INSERT INTO t (name) VALUES ('a'), ('b') RETURNING id, name, n * 2 AS double_n")
    assert [d[0] for d in cur.description] == ["id", "name", "double_n"]
    got = cur.fetchall()
    assert [(r[1], r[2]) for r in got] == [("a", 10), ("b", 10)]
    assert col(db, "SELECT id FROM t ORDER BY id") == [r[0] for r in got]
    cur = db.execute("INSERT INTO t (name) VALUES ('c') RETURNING *")
    assert [d[0] for d in cur.description] == ["id", "name", "n"]
    assert cur.fetchone()[1:] == ("c", 5)


def test_update_returning(people: reeldb.Connection) -> None:
    cur = people.execute("UPDATE people SET score = score + 1 WHERE team_id = 1 RETURNING name, score")
    assert cur.rowcount == 2
    assert sorted(cur.fetchall()) == [("ann", 11), ("bob", 21)]


def test_delete_returning(people: reeldb.Connection) -> None:
    cur = people.execute("DELETE FROM people WHERE score >= 40 RETURNING id, name")
    assert cur.rowcount == 2
    assert sorted(r[1] for r in cur.fetchall()) == ["dee", "eve"]
    assert col(people, "SELECT name FROM people ORDER BY name") == ["ann", "bob", "cid"]


@pytest.fixture
def joined(db: reeldb.Connection) -> reeldb.Connection:
    db.execute("CREATE TABLE a (id INT PRIMARY KEY, v TEXT)")
    db.execute("CREATE TABLE b (id INT, w TEXT)")
    db.execute("INSERT INTO a VALUES (1, 'x'), (2, 'y'), (3, 'z')")
    db.execute("INSERT INTO b VALUES (1, 'p'), (1, 'q'), (2, 'q')")
    return db


def test_delete_using_returning_reads_every_item_once_per_row(joined: reeldb.Connection) -> None:
    """As PostgreSQL 16 answers: ``b.*`` is b's columns, ``*`` every item's, and a row
    USING matches twice is deleted and returned once."""
    cur = joined.execute("DELETE FROM a USING b WHERE a.id = b.id AND a.id = 2 RETURNING b.*")
    assert [d[0] for d in cur.description] == ["id", "w"]
    assert cur.fetchall() == [(2, "q")]
    cur = joined.execute("DELETE FROM a USING b WHERE a.id = b.id RETURNING *")
    assert [d[0] for d in cur.description] == ["id", "v", "id", "w"]
    got = cur.fetchall()
    assert len(got) == 1 and got[0][:3] == (1, "x", 1) and got[0][3] in ("p", "q")
    assert cur.rowcount == 1
    assert col(joined, "SELECT id FROM a") == [3]


def test_returning_star_of_no_from_item_is_42p01(joined: reeldb.Connection, refused) -> None:
    err = refused("42P01", "a", "DELETE FROM a RETURNING x.*")
    assert str(err) == 'missing FROM-clause entry for table "x"'
    with pytest.raises(reeldb.ProgrammingError, match='missing FROM-clause entry for table "x"'):
        joined.execute("SELECT x.* FROM a")


def test_update_from_returning_reads_the_row_each_was_updated_with(joined: reeldb.Connection, refused) -> None:
    """As PostgreSQL 16 answers: RETURNING of UPDATE ... FROM reads the new row and the FROM
    row it was updated with (``b.w``, ``w``, ``*``, ``b.*``, an alias); a name two items
    have is 42702; a subquery's column unqualified is refused (0A000). A refused UPDATE
    changes nothing."""
    cur = joined.execute("UPDATE a SET v = b.w FROM b WHERE a.id = b.id AND a.id = 2 RETURNING a.id, b.w, w, v")
    assert [d[0] for d in cur.description] == ["id", "w", "w", "v"]
    assert cur.fetchall() == [(2, "q", "q", "q")]
    cur = joined.execute("UPDATE a AS x SET v = 'k' FROM b WHERE x.id = b.id AND b.w = 'q' RETURNING *")
    assert [d[0] for d in cur.description] == ["id", "v", "id", "w"]
    assert sorted(cur.fetchall()) == [(1, "k", 1, "q"), (2, "k", 2, "q")]
    cur = joined.execute("UPDATE a AS x SET v = 'm' FROM b WHERE x.id = b.id AND b.w = 'p' RETURNING x.v, b.*")
    assert cur.fetchall() == [("m", 1, "p")]
    got = joined.execute("UPDATE a SET v = s.w FROM (SELECT 3 AS id, 'n' AS w) s WHERE a.id = s.id "
                         "RETURNING s.w, v").fetchall()
    assert got == [("n", "n")]
    before = rows(joined, "SELECT id, v FROM a ORDER BY id")
    refused("0A000", "a", "UPDATE a SET v = s.w FROM (SELECT 3 AS id, 'o' AS w) s WHERE a.id = s.id RETURNING w")
    refused("42702", "a", "UPDATE a SET v = b.w FROM b WHERE a.id = b.id RETURNING id")
    assert rows(joined, "SELECT id, v FROM a ORDER BY id") == before == [(1, "m"), (2, "k"), (3, "n")]
    assert joined.execute("INSERT INTO a AS x VALUES (9, 'nine') RETURNING x.id").fetchall() == [(9,)]


def test_update_from_returning_with_an_alias_named_like_a_column(db: reeldb.Connection) -> None:
    """PostgreSQL 16: ``a.b`` is the FROM item's column even where the updated table has a
    column ``a``; a FROM item inside a JOIN is an item too."""
    db.execute("CREATE TABLE t (id INT, n INT, a TEXT)")
    db.execute("CREATE TABLE s (id INT, b TEXT)")
    db.execute("INSERT INTO t VALUES (1, 1, 'x')")
    db.execute("INSERT INTO s VALUES (1, 'p')")
    got = db.execute("UPDATE t SET n = n + 1 FROM s AS a WHERE t.id = a.id RETURNING a.b, t.a").fetchall()
    assert got == [("p", "x")]
    got = db.execute("UPDATE t SET n = t.n + 1 FROM s JOIN s AS s2 USING (id) WHERE t.id = s.id "
                     "RETURNING s.b, s2.b, t.n").fetchall()
    assert got == [("p", "p", 3)]


# --- UPDATE / DELETE --------------------------------------------------------------------------


def test_update_with_where(people: reeldb.Connection) -> None:
    cur = people.execute("UPDATE people SET score = 0, active = false WHERE name IN ('ann', 'eve')")
    assert cur.rowcount == 2
    assert rows(people, "SELECT name, score, active FROM people ORDER BY name") == [
        ("ann", 0, False), ("bob", 20, True), ("cid", 30, True), ("dee", 40, True), ("eve", 0, False),
    ]
    assert people.execute("UPDATE people SET score = 1 WHERE false").rowcount == 0


def test_update_keeps_vectors_and_untouched_columns(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT, v VECTOR(3), name TEXT)")
    db.execute("INSERT INTO t VALUES (1, '[1,2,3]', 'a'), (2, '[4,5,6]', 'b')")
    db.execute("UPDATE t SET name = 'z' WHERE id = 2")
    db.execute("UPDATE t SET v = '[7,8,9]' WHERE id = 1")
    got = {r[0]: r for r in rows(db, "SELECT id, v, name FROM t")}
    np.testing.assert_array_equal(got[1][1], [7, 8, 9])
    np.testing.assert_array_equal(got[2][1], [4, 5, 6])
    assert got[1][2] == "a" and got[2][2] == "z"


def test_update_and_delete_with_subqueries(people: reeldb.Connection) -> None:
    people.execute(
        "UPDATE people SET score = score * 10 "
        "WHERE team_id IN (SELECT id FROM teams WHERE name = 'blue')"
    )
    assert col(people, "SELECT score FROM people ORDER BY id") == [10, 20, 300, 400, 50]
    people.execute("UPDATE people SET score = (SELECT max(id) FROM teams) WHERE name = 'eve'")
    assert col(people, "SELECT score FROM people WHERE name = 'eve'") == [3]
    cur = people.execute("DELETE FROM people WHERE score < (SELECT avg(score) FROM people)")
    assert cur.rowcount == 3  # avg = (10+20+300+400+3)/5 = 146.6
    assert col(people, "SELECT name FROM people ORDER BY name") == ["cid", "dee"]
    people.execute("DELETE FROM people WHERE NOT EXISTS (SELECT 1 FROM teams WHERE teams.id = people.team_id)")
    assert col(people, "SELECT name FROM people ORDER BY name") == ["cid", "dee"]


def test_update_from(people: reeldb.Connection) -> None:
    people.execute("CREATE TABLE bonus (team TEXT, extra INT)")
    people.execute("INSERT INTO bonus VALUES ('red', 1), ('blue', 2)")
    cur = people.execute(
        "UPDATE people p SET score = p.score + b.extra FROM teams t, bonus b "
        "WHERE p.team_id = t.id AND t.name = b.team"
    )
    assert cur.rowcount == 4
    assert rows(people, "SELECT name, score FROM people ORDER BY name") == [
        ("ann", 11), ("bob", 21), ("cid", 32), ("dee", 42), ("eve", 50),
    ]


def test_delete_using_and_delete_all(people: reeldb.Connection) -> None:
    cur = people.execute("DELETE FROM people USING teams WHERE people.team_id = teams.id AND teams.name = 'red'")
    assert cur.rowcount == 2
    assert col(people, "SELECT name FROM people ORDER BY name") == ["cid", "dee", "eve"]
    assert people.execute("DELETE FROM people").rowcount == 3
    assert rows(people, "SELECT * FROM people") == []


# --- SELECT -----------------------------------------------------------------------------------


def test_select_joins(people: reeldb.Connection) -> None:
    assert rows(people, "SELECT p.name, t.name FROM people p JOIN teams t ON t.id = p.team_id ORDER BY p.name") == [
        ("ann", "red"), ("bob", "red"), ("cid", "blue"), ("dee", "blue"),
    ]
    assert rows(people, "SELECT p.name, t.name FROM people p LEFT JOIN teams t ON t.id = p.team_id "
                        "WHERE p.name > 'd' ORDER BY p.name") == [("dee", "blue"), ("eve", None)]
    assert rows(people, "SELECT t.name, count(p.id) FROM teams t LEFT JOIN people p ON p.team_id = t.id "
                        "GROUP BY t.name ORDER BY t.name") == [("blue", 2), ("green", 0), ("red", 2)]


def test_select_aggregates(people: reeldb.Connection) -> None:
    assert rows(people, "SELECT count(*), count(team_id), sum(score), min(score), max(score), avg(score) "
                        "FROM people") == [(5, 4, 150, 10, 50, 30.0)]
    assert rows(people, "SELECT team_id, sum(score) AS s FROM people WHERE team_id IS NOT NULL "
                        "GROUP BY team_id HAVING sum(score) > 40 ORDER BY team_id") == [(2, 70)]
    assert rows(people, "SELECT string_agg(name, ',' ORDER BY name) FROM people WHERE active") == [
        ("ann,bob,cid,dee,eve",)
    ]


def test_select_window_functions(people: reeldb.Connection) -> None:
    got = rows(
        people,
        "SELECT name, row_number() OVER (PARTITION BY team_id ORDER BY score DESC) AS rn, "
        "sum(score) OVER (PARTITION BY team_id) AS team_total, "
        "rank() OVER (ORDER BY score DESC) AS r, lag(name) OVER (ORDER BY score) AS prev "
        "FROM people ORDER BY name",
    )
    assert got == [
        ("ann", 2, 30, 5, None), ("bob", 1, 30, 4, "ann"), ("cid", 2, 70, 3, "bob"),
        ("dee", 1, 70, 2, "cid"), ("eve", 1, 50, 1, "dee"),
    ]


def test_select_ctes(people: reeldb.Connection) -> None:
    got = rows(
        people,
        "WITH totals AS (SELECT team_id, sum(score) AS s FROM people GROUP BY team_id), "
        "best AS (SELECT max(s) AS m FROM totals) "
        "SELECT t.name FROM totals JOIN teams t ON t.id = totals.team_id, best WHERE totals.s = best.m",
    )
    assert got == [("blue",)]
    got = col(people, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
                      "SELECT i FROM n ORDER BY i")
    assert got == [1, 2, 3, 4, 5]


def test_select_subqueries(people: reeldb.Connection) -> None:
    assert col(people, "SELECT name FROM people WHERE score > (SELECT avg(score) FROM people) ORDER BY name") == [
        "dee", "eve",
    ]
    assert col(people, "SELECT name FROM teams t WHERE EXISTS "
                       "(SELECT 1 FROM people p WHERE p.team_id = t.id) ORDER BY name") == ["blue", "red"]
    assert col(people, "SELECT name FROM teams WHERE id NOT IN "
                       "(SELECT team_id FROM people WHERE team_id IS NOT NULL)") == ["green"]
    assert rows(people, "SELECT n, c FROM (SELECT team_id AS n, count(*) AS c FROM people GROUP BY team_id) s "
                        "WHERE n IS NOT NULL ORDER BY n") == [(1, 2), (2, 2)]
    assert rows(people, "SELECT name, (SELECT name FROM teams WHERE id = p.team_id) FROM people p "
                        "WHERE id = 1") == [("ann", "red")]


def test_select_distinct_order_limit_offset_union(people: reeldb.Connection) -> None:
    assert col(people, "SELECT DISTINCT team_id FROM people ORDER BY team_id NULLS FIRST") == [None, 1, 2]
    assert col(people, "SELECT name FROM people ORDER BY score DESC LIMIT 2 OFFSET 1") == ["dee", "cid"]
    assert col(people, "SELECT name FROM teams UNION SELECT name FROM people WHERE id = 1 ORDER BY 1") == [
        "ann", "blue", "green", "red",
    ]


def test_integer_division_truncates(people: reeldb.Connection) -> None:
    # Postgres: int / int is integer division, truncating toward zero
    assert rows(people, "SELECT 7 / 2, -7 / 2, 7 % 2") == [(3, -3, 1)]
    assert float(rows(people, "SELECT 7.0 / 2")[0][0]) == 3.5
    assert col(people, "SELECT score / 3 FROM people ORDER BY id") == [3, 6, 10, 13, 16]
    assert rows(people, "SELECT sum(score) / count(score) FROM people") == [(30,)]


def test_order_by_desc_puts_nulls_first(people: reeldb.Connection) -> None:
    # Postgres: NULLs sort as larger than any value -> last ascending, first descending
    assert col(people, "SELECT name FROM people ORDER BY team_id DESC, name") == ["eve", "cid", "dee", "ann", "bob"]
    assert col(people, "SELECT name FROM people ORDER BY team_id, name") == ["ann", "bob", "cid", "dee", "eve"]
    assert col(people, "SELECT name FROM people ORDER BY team_id DESC NULLS LAST, name LIMIT 1") == ["cid"]
    assert rows(people, "SELECT name, row_number() OVER (ORDER BY team_id DESC, name) FROM people "
                        "ORDER BY name") == [("ann", 4), ("bob", 5), ("cid", 2), ("dee", 3), ("eve", 1)]


# --- transactions -----------------------------------------------------------------------------


def test_begin_commit(db: reeldb.Connection, path: str) -> None:
    db.execute("CREATE TABLE t (id INT)")
    other = reeldb.connect(path)
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("INSERT INTO t VALUES (2)")
    assert col(db, "SELECT id FROM t ORDER BY id") == [1, 2]  # own writes visible
    assert col(other, "SELECT id FROM t") == []  # nobody else sees them yet
    db.execute("COMMIT")
    assert col(other, "SELECT id FROM t ORDER BY id") == [1, 2]
    other.close()


def test_begin_rollback(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    head = db.head
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (2)")
    db.execute("DELETE FROM t WHERE id = 1")
    db.execute("CREATE TABLE scratch (x INT)")
    assert col(db, "SELECT id FROM t") == [2]
    db.execute("ROLLBACK")
    assert col(db, "SELECT id FROM t") == [1]
    assert "scratch" not in db.tables()
    assert db.head == head


def test_transaction_context_manager(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    commits = len(db.log())
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        db.execute("INSERT INTO t VALUES (2)")
        db.execute("UPDATE t SET id = 20 WHERE id = 2")
        assert col(db, "SELECT id FROM t ORDER BY id") == [1, 20]  # reads see own writes
    assert col(db, "SELECT id FROM t ORDER BY id") == [1, 20]
    assert len(db.log()) == commits + 1  # one commit for everything inside


def test_transaction_rolls_back_on_exception(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    head = db.head
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO t VALUES (2)")
        db.execute("CREATE TABLE scratch (x INT)")
        db.insert("t", [{"id": 3}])
        raise RuntimeError("boom")
    assert col(db, "SELECT id FROM t") == [1]
    assert "scratch" not in db.tables()
    assert db.head == head
    # and the connection is usable afterwards, outside any transaction
    db.execute("INSERT INTO t VALUES (4)")
    assert col(db, "SELECT id FROM t ORDER BY id") == [1, 4]


def test_failed_transaction_refuses_until_rollback(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(reeldb.IntegrityError):
        db.execute("INSERT INTO t VALUES (1)")
    for sql in ("SELECT 1", "INSERT INTO t VALUES (2)", "SELECT * FROM t"):
        with pytest.raises(reeldb.Error) as info:
            db.execute(sql)
        assert info.value.sqlstate == "25P02"
    db.execute("ROLLBACK")
    assert col(db, "SELECT id FROM t") == []
    db.execute("INSERT INTO t VALUES (1)")  # works again
    assert col(db, "SELECT id FROM t") == [1]


def test_error_caught_inside_transaction_block(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    with pytest.raises(reeldb.Error) as ended, db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(reeldb.IntegrityError):
            db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(reeldb.Error) as info:
            db.execute("INSERT INTO t VALUES (2)")
        assert info.value.sqlstate == "25P02"
    assert ended.value.sqlstate == "25P02"  # leaving the block says it rolled back
    assert col(db, "SELECT id FROM t") == []  # the failed transaction was not committed


def test_commit_of_failed_transaction_rolls_back(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT)")
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(reeldb.ProgrammingError):
        db.execute("SELECT nope FROM t")
    cur = db.execute("COMMIT")
    assert cur.statusmessage == "ROLLBACK"  # as Postgres reports it
    assert col(db, "SELECT id FROM t") == []


def test_failed_statement_outside_transaction_writes_nothing(db: reeldb.Connection, count) -> None:
    db.execute("CREATE TABLE t (id INT, v VECTOR(2))")
    with pytest.raises(reeldb.DataError):
        db.execute("INSERT INTO t VALUES (1, '[1,2]'), (2, '[1,2,3]')")
    assert count("t") == 0
    db.execute("INSERT INTO t VALUES (1, '[1,2]')")
    assert count("t") == 1


# --- vector functions and operators ---------------------------------------------------------


@pytest.fixture
def vecs(db: reeldb.Connection) -> tuple[reeldb.Connection, np.ndarray]:
    rng = np.random.default_rng(7)
    m = rng.normal(size=(20, 8)).astype(np.float32)
    db.execute("CREATE TABLE v (id INT, e VECTOR(8))")
    db.executemany("INSERT INTO v VALUES (%s, %s)", [(i, m[i]) for i in range(len(m))])
    return db, m


def test_vector_functions_match_numpy(vecs) -> None:
    db, m = vecs
    q = np.random.default_rng(8).normal(size=8).astype(np.float32)
    got = rows(
        db,
        "SELECT id, cosine_similarity(e, %s), cosine_distance(e, %s), l2_distance(e, %s), "
        "inner_product(e, %s) FROM v ORDER BY id",
        [q, q, q, q],
    )
    assert [r[0] for r in got] == list(range(20))
    got = np.array([r[1:] for r in got], dtype=np.float64)
    cos = cosine(m, q)
    np.testing.assert_allclose(got[:, 0], cos, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 1], 1 - cos, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 2], np.linalg.norm(m.astype(np.float64) - q, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 3], m.astype(np.float64) @ q, rtol=1e-5, atol=1e-5)


def test_vector_operators_follow_pgvector(vecs) -> None:
    db, m = vecs
    q = np.random.default_rng(9).normal(size=8).astype(np.float32)
    got = np.array(rows(db, "SELECT e <=> %s, e <-> %s, e <#> %s FROM v ORDER BY id", [q, q, q]), dtype=np.float64)
    np.testing.assert_allclose(got[:, 0], 1 - cosine(m, q), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:, 1], np.linalg.norm(m.astype(np.float64) - q, axis=1), rtol=1e-5, atol=1e-5)
    # pgvector: <#> is the NEGATIVE inner product, so ascending order puts the best first
    np.testing.assert_allclose(got[:, 2], -(m.astype(np.float64) @ q), rtol=1e-5, atol=1e-5)


def test_vector_literals_and_casts(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT, e VECTOR(3))")
    db.execute("INSERT INTO t VALUES (1, '[1,0,0]'), (2, '[0,1,0]'::vector), (3, '[1,1,0]'::vector(3))")
    assert col(db, "SELECT id FROM t ORDER BY e <-> '[0,1,0]' LIMIT 1") == [2]
    assert col(db, "SELECT id FROM t ORDER BY e <-> '[0,1,0]'::vector LIMIT 1") == [2]
    d = db.execute("SELECT '[1,2,2]'::vector <-> '[1,2,3]'::vector").fetchone()[0]
    assert d == pytest.approx(1.0)
    sim = db.execute("SELECT cosine_similarity(e, '[1,1,0]') FROM t WHERE id = 1").fetchone()[0]
    assert sim == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    v = db.execute("SELECT '[1.5,2,3]'::vector(3)").fetchone()[0]
    np.testing.assert_allclose(np.asarray(v, dtype=np.float32), [1.5, 2, 3])


# --- JSON -------------------------------------------------------------------------------------


def test_jsonb_operators(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (id INT, meta JSONB)")
    db.execute("INSERT INTO t VALUES (%s, %s), (%s, %s), (3, NULL)", [
        1, {"rater": "ann", "score": 4, "tags": ["sharp", "calm"], "nested": {"k": "v"}},
        2, {"rater": "bob", "score": 2, "tags": []},
    ])
    assert rows(db, "SELECT meta->>'rater', meta->'score', meta->'nested'->>'k' FROM t WHERE id = 1") == [
        ("ann", 4, "v"),
    ]
    assert col(db, "SELECT meta->'tags' FROM t ORDER BY id") == [["sharp", "calm"], [], None]
    assert col(db, "SELECT id FROM t WHERE meta->>'rater' = 'bob'") == [2]
    assert col(db, """SELECT id FROM t WHERE meta @> '{"rater": "ann"}' ORDER BY id""") == [1]
    assert col(db, """SELECT id FROM t WHERE meta @> '{"tags": ["calm"]}'""") == [1]
    assert col(db, "SELECT id FROM t WHERE meta @> %s", [{"score": 2}]) == [2]
    assert col(db, "SELECT id FROM t WHERE (meta->>'score')::int > 3") == [1]
    assert db.execute("SELECT meta FROM t WHERE id = 2").fetchone()[0] == {"rater": "bob", "score": 2, "tags": []}


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("insert", "select", "positional"),
    [
        ("INSERT INTO t VALUES (%s, %s, %s, %s)", "SELECT id FROM t WHERE id = %s", True),
        ("INSERT INTO t VALUES (%(id)s, %(e)s, %(raw)s, %(meta)s)", "SELECT id FROM t WHERE id = %(id)s", False),
        ("INSERT INTO t VALUES (:id, :e, :raw, :meta)", "SELECT id FROM t WHERE id = :id", False),
        ("INSERT INTO t VALUES ($1, $2, $3, $4)", "SELECT id FROM t WHERE id = $1", True),
    ],
    ids=["format", "pyformat", "named", "dollar"],
)
def test_parameter_styles(db: reeldb.Connection, insert: str, select: str, positional: bool) -> None:
    db.execute("CREATE TABLE t (id INT, e VECTOR(3), raw BYTEA, meta JSONB)")
    first = {"id": 1, "e": np.array([1, 2, 3], dtype=np.float32), "raw": b"\x00\x01binary\xff",
             "meta": {"a": [1, 2], "b": None}}
    second = {"id": 2, "e": [4.0, 5.0, 6.0], "raw": bytes(range(256)) * 40, "meta": [1, "two", {"3": 3}]}
    for values in (first, second):
        db.execute(insert, list(values.values()) if positional else values)
    got = rows(db, "SELECT id, e, raw, meta FROM t ORDER BY id")
    for r, want in zip(got, (first, second)):
        assert r[0] == want["id"]
        np.testing.assert_array_equal(r[1], np.asarray(want["e"], dtype=np.float32))
        assert bytes(r[2]) == want["raw"]
        assert r[3] == want["meta"]
    assert col(db, select, [2] if positional else {"id": 2}) == [2]


def test_parameters_are_never_interpolated(db: reeldb.Connection) -> None:
    db.execute("CREATE TABLE t (name TEXT)")
    evil = "x'); DROP TABLE t; --"
    db.execute("INSERT INTO t VALUES (%s)", [evil])
    assert col(db, "SELECT name FROM t WHERE name = %s", [evil]) == [evil]
    assert "t" in db.tables()


def test_named_parameter_used_twice(vecs) -> None:
    db, m = vecs
    q = m[3]
    got = rows(db, "SELECT id, cosine_similarity(e, :q) AS s FROM v WHERE e <=> :q < 1e-4", {"q": q})
    assert [r[0] for r in got] == [3]
    assert got[0][1] == pytest.approx(1.0, abs=1e-5)


# --- the vector top-k fast path -----------------------------------------------------------


NULL_IDS = [200, 201]


@pytest.fixture
def topk_table(db: reeldb.Connection):
    """A table of several fragments (several INSERTs) with deleted and updated rows,
    plus the numpy ground truth {id: (vector, category)} of what is live."""
    rng = np.random.default_rng(42)
    db.execute("CREATE TABLE items (id INT PRIMARY KEY, cat TEXT, e VECTOR(16))")
    truth: dict[int, tuple[np.ndarray, str]] = {}
    next_id = 0
    for batch in range(4):  # four INSERTs -> four fragments
        data = []
        for _ in range(25):
            e = rng.normal(size=16).astype(np.float32)
            cat = "even" if next_id % 2 == 0 else "odd"
            data.append((next_id, cat, e))
            truth[next_id] = (e, cat)
            next_id += 1
        if batch % 2:
            db.executemany("INSERT INTO items VALUES (%s, %s, %s)", data)
        else:
            db.insert("items", {"id": [d[0] for d in data], "cat": [d[1] for d in data],
                                "e": np.stack([d[2] for d in data])})
    # delete some rows, and move some vectors
    dead = [1, 2, 30, 31, 77]
    db.execute("DELETE FROM items WHERE id = ANY(%s)", [dead])
    for i in dead:
        del truth[i]
    for i in (5, 50, 90):
        e = rng.normal(size=16).astype(np.float32)
        db.execute("UPDATE items SET e = %s WHERE id = %s", [e, i])
        truth[i] = (e, truth[i][1])
    db.execute("UPDATE items SET cat = 'odd' WHERE id = 10")
    truth[10] = (truth[10][0], "odd")
    # rows without a vector: never among the nearest, last when the LIMIT reaches them
    db.execute("INSERT INTO items VALUES (%s, 'odd', NULL), (%s, 'even', NULL)", NULL_IDS)
    return db, truth


def _brute(truth, q, metric, k, cat=None):
    ids = np.array(sorted(i for i, (_, c) in truth.items() if cat is None or c == cat))
    m = np.stack([truth[i][0] for i in ids]).astype(np.float64)
    q = q.astype(np.float64)
    if metric == "<=>":
        d = 1 - cosine(m, q)
    elif metric == "<->":
        d = np.linalg.norm(m - q, axis=1)
    else:
        d = -(m @ q)
    return list(ids[np.argsort(d, kind="stable")[:k]])


@pytest.mark.parametrize("op", ["<=>", "<->", "<#>"])
def test_vector_topk_matches_brute_force(topk_table, op: str) -> None:
    db, truth = topk_table
    rng = np.random.default_rng(1)
    for _ in range(3):
        q = rng.normal(size=16).astype(np.float32)
        fast = col(db, f"SELECT id FROM items ORDER BY e {op} %s LIMIT 5", [q])
        plain = col(db, f"SELECT id FROM (SELECT * FROM items) s ORDER BY e {op} %s LIMIT 5", [q])
        assert fast == plain == _brute(truth, q, op, 5)
        fast = col(db, f"SELECT id FROM items WHERE cat = %s ORDER BY e {op} %s LIMIT 5", ["odd", q])
        plain = col(db, f"SELECT id FROM (SELECT * FROM items) s WHERE cat = %s ORDER BY e {op} %s LIMIT 5",
                    ["odd", q])
        assert fast == plain == _brute(truth, q, op, 5, cat="odd")


def test_vector_topk_cosine_similarity_desc_and_columns(topk_table) -> None:
    db, truth = topk_table
    q = np.random.default_rng(2).normal(size=16).astype(np.float32)
    sql = ("SELECT id, cat, cosine_similarity(e, :q) AS relevance FROM items "
           "WHERE cat = 'even' AND e IS NOT NULL ORDER BY relevance DESC LIMIT 4")
    got = rows(db, sql, {"q": q})
    want = _brute(truth, q, "<=>", 4, cat="even")
    assert [r[0] for r in got] == want
    assert all(r[1] == "even" for r in got)
    sims = [r[2] for r in got]
    np.testing.assert_allclose(sims, [cosine(truth[i][0][None, :], q)[0] for i in want], rtol=1e-5, atol=1e-5)
    assert sims == sorted(sims, reverse=True)
    # the same with the fast path defeated by a second sort key
    plain = rows(db, sql.replace("DESC LIMIT", "DESC, id LIMIT"), {"q": q})
    assert [r[0] for r in plain] == want
    # Postgres: DESC means NULLS FIRST, so the row without a vector comes first
    got = col(db, "SELECT id FROM items WHERE cat = 'even' ORDER BY cosine_similarity(e, :q) DESC LIMIT 4",
              {"q": q})
    assert got == [NULL_IDS[1], *want[:3]]


def test_vector_topk_limit_larger_than_table_and_offset(topk_table) -> None:
    db, truth = topk_table
    q = np.random.default_rng(3).normal(size=16).astype(np.float32)
    everything = col(db, "SELECT id FROM items ORDER BY e <-> %s LIMIT 1000", [q])
    assert everything[: len(truth)] == _brute(truth, q, "<->", len(truth))
    assert sorted(everything[len(truth):]) == NULL_IDS  # NULLs sort last in ascending order
    plain = col(db, "SELECT id FROM (SELECT * FROM items) s ORDER BY e <-> %s LIMIT 1000", [q])
    assert plain[: len(truth)] == everything[: len(truth)]
    page = col(db, "SELECT id FROM items ORDER BY e <-> %s LIMIT 3 OFFSET 2", [q])
    assert page == everything[2:5]
    assert col(db, "SELECT id FROM items WHERE cat = 'none' ORDER BY e <-> %s LIMIT 3", [q]) == []


def test_explain_vector_topk(topk_table) -> None:
    db, _ = topk_table
    q = np.zeros(16, dtype=np.float32)
    q[0] = 1
    for sql in ("EXPLAIN SELECT id FROM items ORDER BY e <=> %s LIMIT 5",
                "EXPLAIN SELECT id FROM items WHERE cat = 'odd' ORDER BY e <=> %s LIMIT 5"):
        plan = "\n".join(r[0] for r in db.execute(sql, [q]).fetchall())
        assert "vector top-k" in plan


# --- cursor API -------------------------------------------------------------------------------


@pytest.fixture
def small(db: reeldb.Connection) -> reeldb.Connection:
    db.execute("CREATE TABLE t (id INT, name TEXT, score DOUBLE PRECISION, e VECTOR(2))")
    db.execute("INSERT INTO t VALUES (1, 'a', 0.5, '[1,2]'), (2, 'b', 1.5, '[3,4]'), (3, 'c', NULL, NULL)")
    return db


def test_cursor_description_and_rowcount(small: reeldb.Connection) -> None:
    cur = small.execute("SELECT id, name, score FROM t ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name", "score"]
    assert all(len(d) == 7 for d in cur.description)
    assert cur.rowcount == 3
    assert small.execute("UPDATE t SET score = 0 WHERE id > 1").rowcount == 2
    assert small.execute("DELETE FROM t WHERE id = 99").rowcount == 0
    cur = small.execute("INSERT INTO t (id) VALUES (4), (5)")
    assert cur.rowcount == 2
    assert cur.description is None  # no result set
    with pytest.raises(reeldb.ProgrammingError):
        cur.fetchall()


def test_cursor_fetch_methods(small: reeldb.Connection) -> None:
    cur = small.execute("SELECT id FROM t ORDER BY id")
    assert cur.fetchone() == (1,)
    assert cur.fetchmany(1) == [(2,)]
    assert cur.fetchall() == [(3,)]
    assert cur.fetchone() is None
    assert cur.fetchall() == []
    assert list(small.execute("SELECT id FROM t ORDER BY id")) == [(1,), (2,), (3,)]
    cur = small.cursor()
    cur.arraysize = 2
    cur.execute("SELECT id FROM t ORDER BY id")
    assert cur.fetchmany() == [(1,), (2,)]


def test_cursor_arrow_df_pl_numpy(small: reeldb.Connection) -> None:
    sql = "SELECT id, name, score, e FROM t ORDER BY id"
    table = small.execute(sql).arrow()
    assert isinstance(table, pa.Table)
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("e").to_pylist()[:2] == [[1, 2], [3, 4]]
    df = small.execute(sql).df()
    assert isinstance(df, pd.DataFrame)
    assert list(df["name"]) == ["a", "b", "c"]
    np.testing.assert_array_equal(df["e"][1], [3, 4])
    assert pd.isna(df["score"][2])
    frame = small.execute(sql).pl()
    assert isinstance(frame, pl.DataFrame)
    assert frame["id"].to_list() == [1, 2, 3]
    arrays = small.execute("SELECT id, score, e FROM t WHERE e IS NOT NULL ORDER BY id").numpy()
    np.testing.assert_array_equal(arrays["id"], [1, 2])
    np.testing.assert_array_equal(arrays["score"], [0.5, 1.5])
    assert arrays["e"].shape == (2, 2) and arrays["e"].dtype == np.float32
    np.testing.assert_array_equal(arrays["e"], [[1, 2], [3, 4]])


def test_executemany(db: reeldb.Connection, count) -> None:
    db.execute("CREATE TABLE t (id INT PRIMARY KEY, e VECTOR(2), name TEXT)")
    cur = db.executemany("INSERT INTO t VALUES (%s, %s, %s)",
                         [(i, np.array([i, -i], dtype=np.float32), f"n{i}") for i in range(50)])
    assert cur.rowcount == 50
    assert count("t") == 50
    db.executemany("UPDATE t SET name = %(name)s WHERE id = %(id)s", [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
    assert col(db, "SELECT name FROM t WHERE id < 3 ORDER BY id") == ["n0", "one", "two"]
    with pytest.raises(reeldb.IntegrityError):  # one bad row: none of the batch is written
        db.executemany("INSERT INTO t VALUES (%s, %s, %s)", [(100, [0, 0], "x"), (1, [0, 0], "dup")])
    assert count("t") == 50


# --- db.insert --------------------------------------------------------------------------------


@pytest.fixture
def emb(db: reeldb.Connection) -> reeldb.Connection:
    db.execute("CREATE TABLE emb (id INT PRIMARY KEY, name TEXT, score REAL, e VECTOR(3), meta JSONB)")
    return db


def _check_emb(db: reeldb.Connection, n: int) -> None:
    got = rows(db, "SELECT id, name, score, e FROM emb ORDER BY id")
    assert [r[0] for r in got] == list(range(n))
    assert [r[1] for r in got] == [f"n{i}" for i in range(n)]
    assert [r[2] for r in got] == pytest.approx([i / 2 for i in range(n)])
    np.testing.assert_array_equal(np.stack([r[3] for r in got]), _matrix(n))


def _matrix(n: int) -> np.ndarray:
    return np.arange(n * 3, dtype=np.float32).reshape(n, 3)


def test_insert_pyarrow_table(emb: reeldb.Connection) -> None:
    m = _matrix(4)
    table = pa.table({"id": pa.array(range(4), pa.int32()), "name": [f"n{i}" for i in range(4)],
                      "score": pa.array([i / 2 for i in range(4)], pa.float32()),
                      "e": pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), 3)})
    assert emb.insert("emb", table) == 4
    _check_emb(emb, 4)


def test_insert_pandas(emb: reeldb.Connection) -> None:
    m = _matrix(4)
    df = pd.DataFrame({"id": range(4), "name": [f"n{i}" for i in range(4)],
                       "score": [i / 2 for i in range(4)], "e": list(m),
                       "meta": [{"i": i} for i in range(4)]})
    assert emb.insert("emb", df) == 4
    _check_emb(emb, 4)
    assert col(emb, "SELECT meta FROM emb ORDER BY id") == [{"i": i} for i in range(4)]


def test_insert_polars(emb: reeldb.Connection) -> None:
    m = _matrix(4)
    frame = pl.DataFrame({"id": list(range(4)), "name": [f"n{i}" for i in range(4)],
                          "score": [i / 2 for i in range(4)], "e": m.tolist()})
    assert emb.insert("emb", frame) == 4
    _check_emb(emb, 4)


def test_insert_list_of_dicts(emb: reeldb.Connection) -> None:
    m = _matrix(4)
    data = [{"id": i, "name": f"n{i}", "score": i / 2, "e": m[i], "meta": {"k": [i]}} for i in range(4)]
    data.append({"id": 4, "name": "n4", "score": 2.0, "e": None})  # missing and NULL values
    assert emb.insert("emb", data) == 5
    got = rows(emb, "SELECT e, meta FROM emb WHERE id = 4")
    assert got == [(None, None)]
    emb.execute("DELETE FROM emb WHERE id = 4")
    _check_emb(emb, 4)


def test_insert_dict_of_columns_with_2d_matrix(emb: reeldb.Connection) -> None:
    m = _matrix(1000)
    assert emb.insert("emb", {"id": np.arange(1000), "name": [f"n{i}" for i in range(1000)],
                              "score": np.arange(1000) / 2, "e": m}) == 1000
    _check_emb(emb, 1000)


def test_insert_refuses_bad_rows_entirely(emb: reeldb.Connection, count) -> None:
    with pytest.raises(reeldb.DataError) as info:
        emb.insert("emb", {"id": [1, 2], "name": ["a", "b"], "score": [1, 2], "e": np.zeros((2, 4))})
    assert info.value.sqlstate == "22000"
    with pytest.raises(reeldb.IntegrityError):
        emb.insert("emb", [{"id": 1}, {"id": 1}])
    with pytest.raises(reeldb.ProgrammingError) as info:
        emb.insert("emb", [{"id": 1, "nope": 2}])
    assert info.value.sqlstate == "42703"
    with pytest.raises(reeldb.ProgrammingError) as info:
        emb.insert("missing", [{"id": 1}])
    assert info.value.sqlstate == "42P01"
    assert count("emb") == 0


def test_top_k_scores_null_vectors_as_null(db: reeldb.Connection) -> None:
    """A NULL vector's distance is NULL, placed as Postgres places NULLs (last ascending)."""
    db.execute("CREATE TABLE nv (id INT, e VECTOR(2))")
    db.execute("INSERT INTO nv VALUES (1, '[1,0]'), (2, NULL), (3, '[0,1]')")
    fast = db.execute("SELECT id, e <=> '[1,0]' AS d FROM nv ORDER BY d LIMIT 3").fetchall()
    assert fast == [(1, 0.0), (3, 1.0), (2, None)]
    assert db.execute("SELECT id FROM nv ORDER BY e <=> '[1,0]' DESC LIMIT 1").fetchall() == [(2,)]


def test_star_over_a_subquery_that_renamed_the_row_id(db: reeldb.Connection) -> None:
    """``*`` leaves the hidden _rowid out of a table's columns; over a subquery it shows
    what the subquery chose (a renamed _rowid is an ordinary column there)."""
    db.execute("CREATE TABLE g (id INT, name TEXT)")
    db.execute("INSERT INTO g VALUES (1, 'a'), (2, 'b')")
    cur = db.execute("SELECT * FROM (SELECT _rowid AS r, id FROM g) s ORDER BY id")
    assert [d[0] for d in cur.description] == ["r", "id"] and [i for _, i in cur.fetchall()] == [1, 2]
    cur = db.execute("SELECT s.*, g.* FROM (SELECT _rowid AS r, id FROM g) s JOIN g USING (id) ORDER BY 2")
    assert [d[0] for d in cur.description] == ["r", "id", "id", "name"]
    cur = db.execute("SELECT * FROM g WHERE _rowid >= 0 ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name"] and cur.fetchall() == [(1, "a"), (2, "b")]
