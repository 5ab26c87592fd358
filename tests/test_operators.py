"""Postgres operators DuckDB spells differently, rewritten to keep PostgreSQL's answers."""

from __future__ import annotations

import pytest

import reeldb


def test_hash_is_bitwise_xor_with_the_operands_type(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT, b BIGINT, c SMALLINT)")
    db.execute("INSERT INTO t VALUES (5, 3, -1), (12, 10, 7)")
    cur = db.execute("SELECT a # 3, b # a, c # c, 5 # 3, -8 # 1 FROM t ORDER BY a")
    assert cur.fetchall() == [(6, 6, 0, 6, -7), (15, 6, 0, 6, -7)]  # PostgreSQL 16's answers
    assert [d[1] for d in cur.description] == ["INTEGER", "BIGINT", "SMALLINT", "INTEGER", "INTEGER"]
    # the operator of SQLAlchemy's bitwise_xor(), in WHERE and with parameters
    assert db.execute("SELECT a FROM t WHERE a # %s = %s", [3, 6]).fetchall() == [(5,)]


def test_hash_on_non_integers_is_refused(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    with pytest.raises(reeldb.ProgrammingError) as err:
        db.execute("SELECT 1.5 # 2")
    assert err.value.sqlstate == "42883"  # PostgreSQL: operator does not exist: numeric # integer


def test_vector_distances_are_pgvectors_float8_answers(tmp_path) -> None:
    """pgvector computes in float4 and answers in float8: sqrt(3) is 1.7320508075688772, and a
    distance of exactly 1 is 1, on the planned top-k path as in any other expression."""
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (id INT, e VECTOR(3))")
    db.execute("INSERT INTO t VALUES (1, '[1,1,1]'), (2, '[1,1,2]'), (3, '[2,2,2]'), (4, NULL)")
    expected = [(1, 0.0), (2, 1.0), (3, 1.7320508075688772)]
    for sql in ("SELECT id, e <-> '[1,1,1]' FROM t WHERE e IS NOT NULL ORDER BY id",  # an expression
                "SELECT id, e <-> '[1,1,1]' FROM t ORDER BY e <-> '[1,1,1]' LIMIT 3"):  # the top-k
        cur = db.execute(sql)
        assert cur.fetchall() == expected, sql
        assert cur.description[1][1] == "DOUBLE", sql
    top = db.execute("SELECT id, e <=> '[1,1,1]' FROM t ORDER BY e <=> '[1,1,1]' LIMIT 4").fetchall()
    assert top == [(1, 0.0), (3, 0.0), (2, 0.05719095841793653), (4, None)]  # pgvector: 0, not -2e-16


def test_numeric_casts_keep_every_digit_or_refuse(tmp_path) -> None:
    """'3.14159'::numeric was DuckDB's DECIMAL(18,3): 3.142. PostgreSQL keeps the digits."""
    import decimal

    db = reeldb.connect(tmp_path / "db")
    got = db.execute("SELECT '3.14159'::numeric, 3.14159::numeric, '0.00012345'::numeric, '1.50'::numeric, "
                     "'123456789012345678901'::numeric, 1.5::numeric * 2, CAST(%s AS numeric)",
                     [decimal.Decimal("2.718281828459045235360287")]).fetchone()
    assert [str(v) for v in got] == ["3.14159", "3.14159", "0.00012345", "1.50", "123456789012345678901", "3.0",
                                     "2.718281828459045235360287"]  # PostgreSQL 16's text of each
    for sql in ("SELECT 'NaN'::numeric", "SELECT '1234567890123456789012345678901234567890'::numeric"):
        with pytest.raises(reeldb.NotSupportedError) as err:  # refused, not rounded
            db.execute(sql)
        assert err.value.sqlstate == "0A000"


def test_an_unconstrained_numeric_column_refuses_digits_it_cannot_keep(tmp_path) -> None:
    """NUMERIC without a scale keeps 10 places here; PostgreSQL keeps all. Refused, never rounded."""
    import decimal

    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (x NUMERIC, y NUMERIC(10, 2))")
    for value in (decimal.Decimal("0.123456789012345"), "0.123456789012345", 1e-12):
        with pytest.raises(reeldb.NotSupportedError, match="more than 10 decimal places") as err:
            db.execute("INSERT INTO t (x) VALUES (%s)", [value])
        assert err.value.sqlstate == "0A000"
    with pytest.raises(reeldb.NotSupportedError):
        db.execute("INSERT INTO t (x) VALUES (0.123456789012345)")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing written
    # what fits is kept; a float goes in as PostgreSQL's float8 -> numeric (15 digits); a declared
    # scale rounds, as in PostgreSQL
    db.execute("INSERT INTO t VALUES (%s, %s), (%s, NULL)", [decimal.Decimal("1.50"), decimal.Decimal("1.005"), 0.1 + 0.2])
    assert [tuple(str(v) for v in r) for r in db.execute("SELECT x, y FROM t ORDER BY x").fetchall()] == \
        [("0.3000000000", "None"), ("1.5000000000", "1.01")]


def test_generated_columns_refuse_the_clock_and_take_default_values(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    with pytest.raises(reeldb.ProgrammingError) as err:  # PostgreSQL: not immutable
        db.execute("CREATE TABLE g1 (a INT, d DATE GENERATED ALWAYS AS (CURRENT_DATE) STORED)")
    assert err.value.sqlstate == "42P17"
    assert "g1" not in db.tables()
    db.execute("CREATE TABLE i1 (id INT GENERATED ALWAYS AS IDENTITY, v TEXT DEFAULT 'x', "
               "w INT GENERATED ALWAYS AS (id * 2) STORED)")
    db.execute("INSERT INTO i1 DEFAULT VALUES")
    assert db.execute("SELECT id, v, w FROM i1").fetchall() == [(1, "x", 2)]


def test_a_real_into_numeric_keeps_float4_digits(tmp_path) -> None:
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE f (r REAL)")
    db.execute("INSERT INTO f VALUES (0.1)")
    db.execute("CREATE TABLE n (x NUMERIC(12, 10), y NUMERIC)")
    db.execute("INSERT INTO n SELECT r, r FROM f")  # PostgreSQL: float4 -> numeric is 6 digits
    assert [str(v) for v in db.execute("SELECT x, y FROM n").fetchone()] == ["0.1000000000", "0.1000000000"]


def test_setval_of_a_sequence_another_branch_draws_from_is_refused(tmp_path) -> None:
    """Branches share a sequence's counter: moving it back on one would hand the other ids it
    has used. Refused; a sequence of this branch alone still moves."""
    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE SEQUENCE s")
    db.execute("CREATE TABLE t (id BIGINT DEFAULT nextval('s'), v INT)")
    for i in range(3):
        db.execute("INSERT INTO t (v) VALUES (%s)", [i])
    db.branch("dev")  # checks it out
    for sql in ("SELECT setval('s', 1)", "ALTER SEQUENCE s RESTART"):
        with pytest.raises(reeldb.NotSupportedError, match='branch "main" also has it') as err:
            db.execute(sql)
        assert err.value.sqlstate == "0A000"
    db.execute("CREATE SEQUENCE only_here")
    assert db.execute("SELECT setval('only_here', 10)").fetchone() == (10,)
    db.checkout("main")
    db.execute("INSERT INTO t (v) VALUES (3)")
    ids = [r[0] for r in db.execute("SELECT id FROM t ORDER BY v").fetchall()]
    assert len(set(ids)) == 4  # no id handed out twice


def test_advisory_locks_only_where_they_are_taken_once(tmp_path) -> None:
    """reeldb answers advisory lock calls when it plans the statement: over rows, behind WHERE
    or inside CASE that would not take them as often as PostgreSQL does, so it is refused."""
    db = reeldb.connect(tmp_path / "db")
    assert db.execute("SELECT pg_advisory_lock(7), pg_try_advisory_lock(8)").fetchone() == (None, True)
    for sql in ("SELECT pg_advisory_lock(9) FROM generate_series(1, 3)",
                "SELECT pg_try_advisory_lock(10) WHERE false",
                "SELECT CASE WHEN true THEN pg_advisory_lock(11) END"):
        with pytest.raises(reeldb.NotSupportedError) as err:
            db.execute(sql)
        assert err.value.sqlstate == "0A000"
    other = reeldb.connect(tmp_path / "db")
    assert other.execute("SELECT pg_try_advisory_lock(10), pg_try_advisory_lock(7)").fetchone() == (True, False)
