"""CHECK constraints: declared and named as in PostgreSQL, enforced on every write (INSERT,
executemany, UPDATE, COPY, ``db.insert``, merge), added and dropped by ALTER TABLE, and shown
as PostgreSQL 16 shows them (pg_get_constraintdef, information_schema, SQLAlchemy, psql \\d).
Expected names and definitions were taken from a real PostgreSQL 16.2 given the same DDL."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pyarrow as pa
import pytest

import reeldb
from reeldb import errors
from reeldb.format.manifest import CheckConstraint, Schema
from reeldb.sql.rights import Rights
from served import served

psycopg = pytest.importorskip("psycopg")

# the DDL given to PostgreSQL 16.2, and what it answered: (conname, pg_get_constraintdef(oid),
# pg_get_constraintdef(oid, true), conkey)
PG_DDL = ("CREATE TABLE t (a int CHECK (a > 0), b text CHECK (b <> ''), c varchar(10), d numeric, e bigint, "
          "f float8, CHECK (a < 100 AND b IS NOT NULL), CHECK (d > 0 OR d IS NULL), CHECK (length(b) > 2), "
          "CHECK (e BETWEEN 1 AND 10), CHECK (f > 1.5), CHECK (NOT (a = 5)), CHECK (a + 1 > e * 2), "
          "CHECK (c LIKE 'a%'), CHECK (b ~ '^a'), CHECK (a <> ALL (ARRAY[1, 2])), CHECK (true))")
PG_ANSWER = [
    ("t_a_check", "CHECK ((a > 0))", "CHECK (a > 0)", [1]),
    ("t_a_check1", "CHECK ((NOT (a = 5)))", "CHECK (NOT a = 5)", [1]),
    ("t_a_check2", "CHECK ((a <> ALL (ARRAY[1, 2])))", "CHECK (a <> ALL (ARRAY[1, 2]))", [1]),
    ("t_b_check", "CHECK ((b <> ''::text))", "CHECK (b <> ''::text)", [2]),
    ("t_b_check1", "CHECK ((length(b) > 2))", "CHECK (length(b) > 2)", [2]),
    ("t_b_check2", "CHECK ((b ~ '^a'::text))", "CHECK (b ~ '^a'::text)", [2]),
    ("t_c_check", "CHECK (((c)::text ~~ 'a%'::text))", "CHECK (c::text ~~ 'a%'::text)", [3]),
    ("t_check", "CHECK (((a < 100) AND (b IS NOT NULL)))", "CHECK (a < 100 AND b IS NOT NULL)", [1, 2]),
    ("t_check1", "CHECK (((a + 1) > (e * 2)))", "CHECK ((a + 1) > (e * 2))", [1, 5]),
    ("t_check2", "CHECK (true)", "CHECK (true)", None),
    ("t_d_check", "CHECK (((d > (0)::numeric) OR (d IS NULL)))", "CHECK (d > 0::numeric OR d IS NULL)", [4]),
    ("t_e_check", "CHECK (((e >= 1) AND (e <= 10)))", "CHECK (e >= 1 AND e <= 10)", [5]),
    ("t_f_check", "CHECK ((f > (1.5)::double precision))", "CHECK (f > 1.5::double precision)", [6]),
]


PG_DDL_2 = ("CREATE TABLE x2 (c varchar(10) CHECK (c IN ('x', 'y')), t text CHECK (t IN ('a', 'b')), "
            "i int CHECK (i IN (1, 2)), j int CHECK (j NOT IN (1, 2)), k int CHECK (k > -5), "
            "n numeric CHECK (n >= 1.5), m int CHECK (m > 1.5), s smallint CHECK (s > 0), r real CHECK (r > 0), "
            "c2 varchar CHECK (c2 <> ''), q int CHECK ((q % 2) = 0 AND q * 2 + 1 > 3), "
            "z text CHECK (z IS NULL OR upper(z) = z), nn int CHECK (nn IS NOT NULL))")
PG_ANSWER_2 = [
    ("x2_c2_check", "CHECK (((c2)::text <> ''::text))", "CHECK (c2::text <> ''::text)"),
    ("x2_c_check", "CHECK (((c)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[])))",
     "CHECK (c::text = ANY (ARRAY['x'::character varying, 'y'::character varying]::text[]))"),
    ("x2_i_check", "CHECK ((i = ANY (ARRAY[1, 2])))", "CHECK (i = ANY (ARRAY[1, 2]))"),
    ("x2_j_check", "CHECK ((j <> ALL (ARRAY[1, 2])))", "CHECK (j <> ALL (ARRAY[1, 2]))"),
    ("x2_k_check", "CHECK ((k > '-5'::integer))", "CHECK (k > '-5'::integer)"),
    ("x2_m_check", "CHECK (((m)::numeric > 1.5))", "CHECK (m::numeric > 1.5)"),
    ("x2_n_check", "CHECK ((n >= 1.5))", "CHECK (n >= 1.5)"),
    ("x2_nn_check", "CHECK ((nn IS NOT NULL))", "CHECK (nn IS NOT NULL)"),
    ("x2_q_check", "CHECK ((((q % 2) = 0) AND (((q * 2) + 1) > 3)))", "CHECK ((q % 2) = 0 AND (q * 2 + 1) > 3)"),
    ("x2_r_check", "CHECK ((r > (0)::double precision))", "CHECK (r > 0::double precision)"),
    ("x2_s_check", "CHECK ((s > 0))", "CHECK (s > 0)"),
    ("x2_t_check", "CHECK ((t = ANY (ARRAY['a'::text, 'b'::text])))", "CHECK (t = ANY (ARRAY['a'::text, 'b'::text]))"),
    ("x2_z_check", "CHECK (((z IS NULL) OR (upper(z) = z)))", "CHECK (z IS NULL OR upper(z) = z)"),
]


@pytest.fixture
def db(tmp_path):
    conn = reeldb.connect(tmp_path / "db")
    yield conn
    conn.close()


def rows(db, table: str = "p") -> list[tuple]:
    return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def refused(sqlstate: str, fn, *args) -> errors.Error:
    with pytest.raises(errors.Error) as info:
        fn(*args)
    assert info.value.sqlstate == sqlstate, info.value
    return info.value


def make_prices(db) -> None:
    db.execute("CREATE TABLE p (id INT PRIMARY KEY, price NUMERIC CHECK (price > 0), "
               "lo INT, hi INT, CONSTRAINT range_ok CHECK (lo <= hi))")
    db.execute("INSERT INTO p VALUES (1, 10, 1, 2)")


# -- declaring ---------------------------------------------------------------------------------
def test_names_and_definitions_are_postgres_16s(db) -> None:
    db.execute(PG_DDL)
    got = db.execute("SELECT conname, pg_get_constraintdef(oid), pg_get_constraintdef(oid, true), conkey, contype "
                     "FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY conname").fetchall()
    assert [g[:4] for g in got] == PG_ANSWER
    assert {g[4] for g in got} == {"c"}
    clauses = dict(db.execute("SELECT constraint_name, check_clause FROM information_schema.check_constraints "
                              "WHERE constraint_schema = 'public'").fetchall())
    assert clauses == {name: plain.removeprefix("CHECK ") for name, plain, _, _ in PG_ANSWER}
    kinds = db.execute("SELECT DISTINCT constraint_type FROM information_schema.table_constraints "
                       "WHERE table_name = 't'").fetchall()
    assert kinds == [("CHECK",)]


def test_more_shapes_print_as_postgres_16_and_each_is_enforced(db) -> None:
    db.execute(PG_DDL_2)
    got = db.execute("SELECT conname, pg_get_constraintdef(oid), pg_get_constraintdef(oid, true) "
                     "FROM pg_constraint WHERE conrelid = 'x2'::regclass ORDER BY conname").fetchall()
    assert got == PG_ANSWER_2
    db.execute("INSERT INTO x2 VALUES ('x', 'a', 1, 3, -4, 1.5, 2, 1, 0.5, 'v', 2, 'ZZ', 1)")
    for bad, name in [("c = 'z'", "c"), ("t = 'c'", "t"), ("i = 3", "i"), ("j = 1", "j"), ("k = -5", "k"),
                      ("n = 1.4", "n"), ("m = 1", "m"), ("s = 0", "s"), ("r = 0", "r"), ("c2 = ''", "c2"),
                      ("q = 1", "q"), ("z = 'a'", "z"), ("nn = NULL", "nn")]:
        err = refused("23514", db.execute, f"UPDATE x2 SET {bad}")
        assert f'"x2_{name}_check"' in str(err)
    assert db.execute("SELECT count(*) FROM x2").fetchone() == (1,)


def test_information_schema_lists_not_null_columns_as_checks_as_postgres_16(db) -> None:
    db.execute('CREATE TABLE nn (id INT PRIMARY KEY, "Big" TEXT NOT NULL, c INT CHECK (c > 0))')
    rel, ns = db.execute("SELECT 'nn'::regclass::oid, 'public'::regnamespace::oid").fetchone()
    got = db.execute("SELECT constraint_name, check_clause FROM information_schema.check_constraints "
                     "WHERE constraint_schema = 'public' ORDER BY 1").fetchall()
    assert got == [(f"{ns}_{rel}_1_not_null", "id IS NOT NULL"), (f"{ns}_{rel}_2_not_null", "Big IS NOT NULL"),
                   ("nn_c_check", "((c > 0))")]
    kinds = db.execute("SELECT constraint_type, count(*) FROM information_schema.table_constraints "
                       "WHERE table_schema = 'public' GROUP BY 1 ORDER BY 1").fetchall()
    assert kinds == [("CHECK", 3), ("PRIMARY KEY", 1)]


def test_postgres_de_duplicates_generated_names(db) -> None:
    db.execute("CREATE TABLE u (a INT CHECK (a > 0), CHECK (a > 1), CHECK (a > 2), b INT, CHECK (a > b), "
               "CHECK (b > a))")
    db.execute("CREATE TABLE w (a INT, CONSTRAINT w_a_check CHECK (a > 0), CHECK (a > 1))")
    names = [r[0] for r in db.execute("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid IN "
                                      "('u'::regclass, 'w'::regclass) ORDER BY 1").fetchall()]
    # PostgreSQL 16 answered exactly these names
    assert names == ["u_a_check", "u_a_check1", "u_a_check2", "u_check", "u_check1", "w_a_check", "w_a_check1"]


def test_a_repeated_name_is_refused(db) -> None:
    refused("42710", db.execute, "CREATE TABLE d (a INT, CONSTRAINT c1 CHECK (a > 0), CONSTRAINT c1 CHECK (a < 9))")
    refused("42P01", db.execute, "SELECT * FROM d")


@pytest.mark.parametrize(("expr", "sqlstate", "message"), [
    ("a > (SELECT 1)", "0A000", "cannot use subquery in check constraint"),
    ("a > count(*)", "42803", "aggregate functions are not allowed in check constraints"),
    ("a > sum(a) OVER ()", "42P20", "window functions are not allowed in check constraints"),
    ("a < random()", "42P17", "random() is not"),
    ("a > 0 AND now() > '2020-01-01'", "42P17", "now() is not"),
    ("a + 1", "42804", "argument of CHECK must be type boolean, not type integer"),
    ("nope > 0", "42703", 'column "nope" does not exist'),
    ("a > no_such_function(a)", "42883", "no_such_function"),
])
def test_expressions_postgres_refuses_are_refused_and_nothing_is_made(db, expr, sqlstate, message) -> None:
    err = refused(sqlstate, db.execute, f"CREATE TABLE bad (a INT CHECK ({expr}))")
    assert message in str(err)
    refused("42P01", db.execute, "SELECT * FROM bad")
    db.execute("CREATE TABLE good (a INT)")
    err = refused(sqlstate, db.execute, f"ALTER TABLE good ADD CONSTRAINT c CHECK ({expr})")
    assert message in str(err)
    assert db.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'c' AND conrelid = 'good'::regclass").fetchone() == (0,)


def test_a_check_on_a_vector_or_enum_column_is_refused(db) -> None:
    refused("0A000", db.execute, "CREATE TABLE v (e VECTOR(2) CHECK (e IS NOT NULL))")
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok')")
    refused("0A000", db.execute, "CREATE TABLE m (m mood CHECK (m > 'sad'))")  # would compare as text
    refused("42P01", db.execute, "SELECT * FROM m")


# -- enforcing ---------------------------------------------------------------------------------
def test_insert_values_and_select_are_checked_and_nothing_is_written(db) -> None:
    make_prices(db)
    before = rows(db)
    err = refused("23514", db.execute, "INSERT INTO p VALUES (2, 5, 1, 1), (3, -1, 1, 1)")
    assert isinstance(err, errors.CheckViolation)
    assert str(err) == 'new row for relation "p" violates check constraint "p_price_check"'
    err = refused("23514", db.execute, "INSERT INTO p SELECT 9, 1, 5, 4")
    assert 'violates check constraint "range_ok"' in str(err)
    assert rows(db) == before
    db.execute("INSERT INTO p VALUES (2, NULL, NULL, 1), (3, 1, 5, NULL)")  # NULL passes, as in PostgreSQL
    assert len(rows(db)) == 3


def test_the_first_violated_constraint_by_name_is_reported(db) -> None:
    db.execute("CREATE TABLE q (a INT, CONSTRAINT zz CHECK (a > 0), CONSTRAINT aa CHECK (a > 10))")
    assert 'constraint "aa"' in str(refused("23514", db.execute, "INSERT INTO q VALUES (-1)"))


def test_executemany_and_db_insert_are_checked_per_batch(db) -> None:
    make_prices(db)
    before = rows(db)
    refused("23514", db.executemany, "INSERT INTO p VALUES (%s, %s, 1, 2)", [(i, 10 - i) for i in range(2, 20)])
    refused("23514", db.insert, "p", pa.table({"id": [5, 6], "price": [1.0, 2.0], "lo": [3, 9], "hi": [4, 1]}))
    pd = pytest.importorskip("pandas")
    refused("23514", db.insert, "p", pd.DataFrame({"id": [7], "price": [-3.0], "lo": [1], "hi": [1]}))
    assert rows(db) == before
    db.insert("p", pa.table({"id": [5, 6], "price": [1.0, 2.0], "lo": [3, 1], "hi": [4, 9]}))
    assert len(rows(db)) == 3


def test_update_is_checked_and_leaves_the_rows_as_they_were(db) -> None:
    make_prices(db)
    db.execute("INSERT INTO p VALUES (2, 20, 1, 5)")
    before = rows(db)
    err = refused("23514", db.execute, "UPDATE p SET lo = hi + 1 WHERE id = 2")
    assert 'violates check constraint "range_ok"' in str(err)
    refused("23514", db.execute, "UPDATE p SET price = price - 15")
    assert rows(db) == before
    db.execute("UPDATE p SET price = price - 5")
    assert [r[1] for r in rows(db)] == [5, 15]


def test_a_failed_statement_inside_a_transaction_keeps_the_earlier_work_out(db) -> None:
    make_prices(db)
    db.execute("BEGIN")
    db.execute("INSERT INTO p VALUES (2, 1, 1, 1)")
    refused("23514", db.execute, "INSERT INTO p VALUES (3, 0, 1, 1)")
    db.execute("ROLLBACK")
    assert len(rows(db)) == 1


def test_checks_see_generated_columns(db) -> None:
    db.execute("CREATE TABLE g (a INT, b INT GENERATED ALWAYS AS (a * 2) STORED CHECK (b < 10))")
    db.execute("INSERT INTO g (a) VALUES (4)")
    refused("23514", db.execute, "INSERT INTO g (a) VALUES (5)")
    assert rows(db, "g") == [(4, 8)]


def test_checks_are_kept_with_the_table_and_old_schemas_still_read() -> None:
    s = Schema.from_json({"columns": [], "primary_key": [], "uniques": [], "next_id": 1})
    assert s.checks == () and "checks" not in s.to_json()  # a manifest from before checks reads, and hashes, the same
    with_check = Schema((), checks=(CheckConstraint("c", "a > 0", (1,)),))
    assert Schema.from_json(with_check.to_json()) == with_check


def test_checks_survive_reopening_and_are_versioned(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "v")
    db.execute("CREATE TABLE p (a INT)")
    db.execute("INSERT INTO p VALUES (-1)")
    db.tag("before")
    db.execute("DELETE FROM p")
    db.execute("ALTER TABLE p ADD CONSTRAINT pos CHECK (a > 0)")
    db.close()
    db = reeldb.connect(tmp_path / "v")
    refused("23514", db.execute, "INSERT INTO p VALUES (0)")
    old = reeldb.connect(tmp_path / "v", at="before")
    assert old.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'pos' AND conrelid = 'p'::regclass"
                       ).fetchone() == (0,)
    old.close()
    db.close()


# -- ALTER TABLE -------------------------------------------------------------------------------
def test_add_constraint_checks_existing_rows(db) -> None:
    make_prices(db)
    db.execute("INSERT INTO p VALUES (2, 50, 1, 2)")
    err = refused("23514", db.execute, "ALTER TABLE p ADD CONSTRAINT cheap CHECK (price < 20)")
    assert str(err) == 'check constraint "cheap" of relation "p" is violated by some row'
    db.execute("INSERT INTO p VALUES (3, 60, 1, 2)")  # nothing of the refused constraint stayed
    db.execute("ALTER TABLE p ADD CHECK (price < 100)")
    assert db.execute("SELECT conname FROM pg_constraint WHERE conname LIKE 'p_price_check%' "
                      "AND conrelid = 'p'::regclass ORDER BY 1"
                      ).fetchall() == [("p_price_check",), ("p_price_check1",)]
    refused("23514", db.execute, "INSERT INTO p VALUES (4, 100, 1, 2)")
    refused("0A000", db.execute, "ALTER TABLE p ADD CONSTRAINT later CHECK (price < 1) NOT VALID")
    refused("0A000", db.execute, "ALTER TABLE p ADD CONSTRAINT fk FOREIGN KEY (lo) REFERENCES p (id) ON DELETE CASCADE")


def test_add_column_with_a_check_checks_the_existing_rows(db) -> None:
    make_prices(db)
    refused("23514", db.execute, "ALTER TABLE p ADD COLUMN q INT DEFAULT 0 CHECK (q > 0)")
    db.execute("ALTER TABLE p ADD COLUMN q INT DEFAULT 1 CHECK (q > 0)")
    refused("23514", db.execute, "INSERT INTO p VALUES (5, 1, 1, 1, 0)")


def test_drop_constraint_and_if_exists(db) -> None:
    make_prices(db)
    db.execute("ALTER TABLE p DROP CONSTRAINT range_ok")
    db.execute("INSERT INTO p VALUES (2, 1, 9, 1)")
    refused("42704", db.execute, "ALTER TABLE p DROP CONSTRAINT range_ok")
    db.execute("ALTER TABLE p DROP CONSTRAINT IF EXISTS range_ok")
    refused("0A000", db.execute, "ALTER TABLE p DROP CONSTRAINT p_pkey")
    refused("23514", db.execute, "INSERT INTO p VALUES (3, -1, 1, 1)")


def test_drop_and_rename_column_follow_the_checks(db) -> None:
    make_prices(db)
    db.execute("ALTER TABLE p RENAME COLUMN price TO cost")
    refused("23514", db.execute, "INSERT INTO p VALUES (2, -1, 1, 1)")
    assert db.execute("SELECT pg_get_constraintdef(oid, true) FROM pg_constraint WHERE conname = 'p_price_check'"
                      ).fetchone() == ("CHECK (cost > 0::numeric)",)
    db.execute("ALTER TABLE p DROP COLUMN lo")  # drops range_ok, as PostgreSQL does
    db.execute("INSERT INTO p VALUES (2, 1, 1)")
    assert db.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'range_ok'").fetchone() == (0,)


def test_read_only_login_cannot_add_or_drop_constraints(db) -> None:
    make_prices(db)
    head = db.log()[0]["id"]
    db._session.rights = Rights(user="reader", read_only=True)  # as `reeldb user add --readonly`
    refused("25006", db.execute, "ALTER TABLE p ADD CONSTRAINT c CHECK (id > 0)")  # reeldb's read-only refusal
    refused("25006", db.execute, "ALTER TABLE p DROP CONSTRAINT range_ok")
    assert db.log()[0]["id"] == head
    db._session.rights = Rights()
    names = db.execute("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 'p'::regclass "
                       "ORDER BY 1").fetchall()
    assert names == [("p_price_check",), ("range_ok",)]


# -- merge and concurrent writers ---------------------------------------------------------------
def test_merge_that_brings_a_violating_row_is_refused(db) -> None:
    make_prices(db)
    db.branch("exp")
    db.execute("ALTER TABLE p ADD CONSTRAINT small CHECK (price < 100)")
    db.execute("INSERT INTO p VALUES (2, 5, 1, 1)")
    db.checkout("main")
    db.execute("INSERT INTO p VALUES (3, 500, 1, 1)")  # fine on main, which has no "small"
    head = db.execute("SELECT count(*) FROM p").fetchone()
    err = refused("23514", db.merge, "exp")
    assert '"small"' in str(err)
    assert db.execute("SELECT count(*) FROM p").fetchone() == head
    assert db.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'small' AND conrelid = 'p'::regclass"
                      ).fetchone() == (0,)
    db.execute("DELETE FROM p WHERE id = 3")
    db.merge("exp")
    refused("23514", db.execute, "INSERT INTO p VALUES (4, 500, 1, 1)")
    assert [r[0] for r in rows(db)] == [1, 2]


def test_revert_that_brings_back_a_violating_row_is_refused(db) -> None:
    db.execute("CREATE TABLE p (x INT)")
    db.execute("INSERT INTO p VALUES (-1), (1)")
    db.execute("DELETE FROM p WHERE x < 0")
    deleting = db.log()[0]["id"]
    db.execute("ALTER TABLE p ADD CONSTRAINT pos CHECK (x > 0)")
    head = db.log()[0]["id"]
    err = refused("23514", db.revert, deleting)
    assert 'check constraint "pos"' in str(err)
    assert db.log()[0]["id"] == head and rows(db) == [(1,)]


def test_concurrent_add_constraint_and_insert_one_loses(tmp_path) -> None:
    a = reeldb.connect(tmp_path / "c")
    a.execute("CREATE TABLE p (x INT)")
    b = reeldb.connect(tmp_path / "c")
    # the constraint first, rows after: the insert was checked against the old schema
    a.execute("BEGIN")
    a.execute("ALTER TABLE p ADD CONSTRAINT pos CHECK (x > 0)")
    b.execute("BEGIN")
    b.execute("INSERT INTO p VALUES (-1)")
    a.execute("COMMIT")
    refused("40001", b.execute, "COMMIT")
    # rows first, constraint after: the constraint did not see the rows
    a.execute("ALTER TABLE p DROP CONSTRAINT pos")
    b.execute("BEGIN")
    b.execute("INSERT INTO p VALUES (-2)")
    a.execute("BEGIN")
    a.execute("ALTER TABLE p ADD CONSTRAINT pos CHECK (x > 0)")
    b.execute("COMMIT")
    refused("40001", a.execute, "COMMIT")
    assert a.execute("SELECT x FROM p").fetchall() == [(-2,)]
    assert a.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'pos'").fetchone() == (0,)
    a.close()
    b.close()


def test_constraint_added_while_others_insert_holds_for_every_row(tmp_path) -> None:
    setup = reeldb.connect(tmp_path / "r")
    setup.execute("CREATE TABLE p (x INT)")
    setup.close()
    refusals: list[str] = []

    def inserter(seed: int) -> None:
        conn = reeldb.connect(tmp_path / "r")
        for i in range(25):
            try:
                conn.execute("INSERT INTO p VALUES (%s)", ((seed * 7 + i) % 9 - 4,))  # -4 .. 4
            except errors.Error as e:
                refusals.append(e.sqlstate)
        conn.close()

    def adder() -> None:
        conn = reeldb.connect(tmp_path / "r")
        for _ in range(200):
            try:
                with conn.transaction():
                    conn.execute("DELETE FROM p WHERE x < 0")
                    conn.execute("ALTER TABLE p ADD CONSTRAINT pos CHECK (x >= 0)")
                break
            except errors.Error as e:
                assert e.sqlstate in ("40001", "23514"), e
        conn.close()

    threads = [threading.Thread(target=inserter, args=(k,)) for k in range(2)] + [threading.Thread(target=adder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = reeldb.connect(tmp_path / "r")
    assert check.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'pos' AND conrelid = 'p'::regclass"
                         ).fetchone() == (1,)
    assert check.execute("SELECT count(*) FROM p WHERE x < 0").fetchone() == (0,)  # the check holds for every row
    assert set(refusals) <= {"23514", "40001"}
    check.close()


def test_concurrent_writers_each_check_their_own_rows(tmp_path) -> None:
    setup = reeldb.connect(tmp_path / "w")
    setup.execute("CREATE TABLE p (w INT, x INT CHECK (x >= 0))")
    setup.close()
    outcome: dict[int, str] = {}

    def writer(w: int) -> None:
        conn = reeldb.connect(tmp_path / "w")
        try:
            conn.executemany("INSERT INTO p VALUES (%s, %s)", [(w, i if w % 2 == 0 else i - 5) for i in range(10)])
            outcome[w] = "ok"
        except errors.Error as e:
            outcome[w] = e.sqlstate
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome == {0: "ok", 1: "23514", 2: "ok", 3: "23514"}
    check = reeldb.connect(tmp_path / "w")
    assert check.execute("SELECT w, count(*) FROM p GROUP BY w ORDER BY w").fetchall() == [(0, 10), (2, 10)]
    check.close()


# -- over the wire -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory, "checks", "CREATE TABLE orders (id INT PRIMARY KEY, qty INT CHECK (qty > 0), "
                "note TEXT, CONSTRAINT note_len CHECK (length(note) < 10))", max_connections=8) as srv:
        yield srv


def dsn(server) -> str:
    host, port = server.address
    return f"host={host} port={port} dbname=checks user=tester"


def count_orders(server) -> int:
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def test_psycopg_insert_executemany_and_copy(server) -> None:
    before = count_orders(server)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation) as info:
            conn.execute("INSERT INTO orders VALUES (%s, %s, %s)", (100, 0, "x"))
        assert info.value.diag.message_primary == 'new row for relation "orders" violates check constraint ' \
                                                  '"orders_qty_check"'
    with psycopg.connect(dsn(server)) as conn:  # in a transaction: the failed batch is rolled back whole
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.cursor().executemany("INSERT INTO orders VALUES (%s, %s, %s)",
                                      [(101, 1, "ok"), (102, 2, "much too long")])
        conn.rollback()
    with psycopg.connect(dsn(server), autocommit=True) as conn, pytest.raises(psycopg.errors.CheckViolation), \
            conn.cursor().copy("COPY orders FROM STDIN") as cp:
        cp.write_row((103, 1, "ok"))
        cp.write_row((104, -1, "bad"))
    assert count_orders(server) == before
    with psycopg.connect(dsn(server), autocommit=True) as conn, conn.cursor().copy("COPY orders FROM STDIN") as cp:
        cp.write_row((105, 3, "fine"))
    assert count_orders(server) == before + 1


def test_sqlalchemy_reflects_check_constraints(server) -> None:
    sa = pytest.importorskip("sqlalchemy")
    host, port = server.address
    engine = sa.create_engine(f"postgresql+psycopg://tester@{host}:{port}/checks")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE sa_cc (a INT, b TEXT, CONSTRAINT cc1 CHECK (a > 1 AND a < 5), "
                                 "CONSTRAINT cc2 CHECK (a = 1 OR (a > 2 AND a < 5)))")
        got = sa.inspect(engine).get_check_constraints("sa_cc")
        # what SQLAlchemy returns from PostgreSQL 16 for the same table
        assert got == [{"name": "cc1", "sqltext": "a > 1 AND a < 5", "comment": None},
                       {"name": "cc2", "sqltext": "a = 1 OR a > 2 AND a < 5", "comment": None}]
        table = sa.Table("sa_made", sa.MetaData(), sa.Column("x", sa.Integer),
                         sa.CheckConstraint("x > 0", name="x_pos"))
        table.create(engine)
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
            conn.execute(table.insert().values(x=0))
    finally:
        engine.dispose()


def test_psql_describe_shows_check_constraints(server) -> None:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    host, port = server.address
    out = subprocess.run([exe, "-X", "-h", host, "-p", str(port), "-U", "tester", "-d", "checks", "-c", r"\d orders"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = lines.index("Check constraints:")
    assert lines[start + 1:start + 3] == ['    "note_len" CHECK (length(note) < 10)',
                                          '    "orders_qty_check" CHECK (qty > 0)']
