"""Bad input is refused with the Postgres SQLSTATE a client expects, as the right PEP 249
class, and nothing of the failed statement is written."""

from __future__ import annotations

import numpy as np
import pytest

import reeldb
from reeldb import errors

# --- the PEP 249 hierarchy ----------------------------------------------------------------------


def test_pep249_exception_hierarchy() -> None:
    assert issubclass(reeldb.Error, Exception)
    assert issubclass(reeldb.Warning, Exception)
    assert not issubclass(reeldb.Warning, reeldb.Error)
    assert issubclass(reeldb.InterfaceError, reeldb.Error)
    assert issubclass(reeldb.DatabaseError, reeldb.Error)
    for cls in (reeldb.DataError, reeldb.OperationalError, reeldb.IntegrityError, reeldb.InternalError,
                reeldb.ProgrammingError, reeldb.NotSupportedError):
        assert issubclass(cls, reeldb.DatabaseError)
    assert reeldb.apilevel == "2.0"
    assert reeldb.paramstyle in ("format", "pyformat", "named", "numeric", "qmark")
    # the connection carries them too (PEP 249 optional extension)
    assert reeldb.Connection.IntegrityError is reeldb.IntegrityError


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (errors.InvalidTextRepresentation, reeldb.DataError),
        (errors.NumericValueOutOfRange, reeldb.DataError),
        (errors.StringDataRightTruncation, reeldb.DataError),
        (errors.NotNullViolation, reeldb.IntegrityError),
        (errors.UniqueViolation, reeldb.IntegrityError),
        (errors.SyntaxError, reeldb.ProgrammingError),
        (errors.UndefinedTable, reeldb.ProgrammingError),
        (errors.UndefinedColumn, reeldb.ProgrammingError),
    ],
)
def test_sqlstate_classes_are_pep249_subclasses(cls: type, base: type) -> None:
    assert issubclass(cls, base)
    assert len(cls.sqlstate) == 5


# --- a table for every kind of bad value --------------------------------------------------------


@pytest.fixture
def t(db: reeldb.Connection, png_bytes: bytes, mp4_bytes: bytes) -> reeldb.Connection:
    db.execute(
        """CREATE TABLE t (
            id INT PRIMARY KEY, small SMALLINT, big BIGINT, name VARCHAR(5) NOT NULL,
            score REAL, n NUMERIC(5, 2), ok BOOLEAN, day DATE, u UUID, meta JSONB,
            e VECTOR(3), h HALFVEC(2), latent TENSOR(float16, 2, 2), img IMAGE, clip VIDEO
        )"""
    )
    db.execute("INSERT INTO t (id, name, e, img, clip) VALUES (1, 'one', '[1,2,3]', %s, %s)",
               [png_bytes, mp4_bytes])
    return db


# (sqlstate, column, bad value as a parameter)
BAD_PARAMS = [
    ("22000", "e", [1.0, 2.0]),  # wrong vector length
    ("22000", "e", np.zeros(4, dtype=np.float32)),
    ("22000", "e", [1.0, float("nan"), 2.0]),  # pgvector: NaN not allowed in vector
    ("22P02", "e", "[1,2,x]"),
    ("22P02", "e", "hello"),
    ("22000", "h", [1.0, 2.0, 3.0]),
    ("22000", "latent", np.zeros((2, 3))),  # wrong tensor shape
    ("22P02", "id", "abc"),  # text in an INT column
    ("22P02", "small", "12.5x"),
    ("22003", "small", 40000),  # out of range for SMALLINT
    ("22003", "id", 2**31),
    ("22003", "big", 2**63),
    ("22001", "name", "toolong"),  # varchar(5)
    ("22P02", "score", "fast"),
    ("22P02", "n", "abc"),
    ("22003", "n", 1000),  # NUMERIC(5,2) holds < 1000
    ("22P02", "ok", "maybe"),
    ("22007", "day", "2024-13-45"),
    ("22P02", "u", "not-a-uuid"),
    ("22P02", "meta", "{bad json"),
    ("22P02", "img", b"this is not an image"),
    ("22P02", "clip", b"this is not a video"),
]


@pytest.mark.parametrize(("sqlstate", "column", "value"), BAD_PARAMS,
                         ids=[f"{c}-{s}-{i}" for i, (s, c, _) in enumerate(BAD_PARAMS)])
def test_bad_parameter_refused(t: reeldb.Connection, refused, sqlstate: str, column: str, value) -> None:
    sql = f"INSERT INTO t (id, name, {column}) VALUES (2, 'ok', NULL), (3, 'ok', %s)"
    if column == "id":
        sql = "INSERT INTO t (id, name) VALUES (2, 'ok'), (%s, 'ok')"
    elif column == "name":
        sql = "INSERT INTO t (id, name) VALUES (2, 'ok'), (3, %s)"
    err = refused(sqlstate, "t", sql, [value])
    assert isinstance(err, reeldb.DataError)


# (sqlstate, column, bad value as SQL text)
BAD_LITERALS = [
    ("22000", "e", "'[1,2]'"),
    ("22000", "e", "'[1,2,3,4]'::vector"),
    ("22P02", "id", "'abc'"),
    ("22003", "small", "70000"),
    ("22003", "id", "3000000000"),
    ("22001", "name", "'abcdef'"),
    ("22P02", "u", "'1234'"),
    ("22P02", "meta", "'{\"a\": }'"),
    ("22P02", "ok", "'perhaps'"),
    ("22000", "e", "'[1,2,3]'::vector(2)"),  # the cast itself fails: 3 values for vector(2)
]


@pytest.mark.parametrize(("sqlstate", "column", "literal"), BAD_LITERALS,
                         ids=[f"{c}-{s}-{i}" for i, (s, c, _) in enumerate(BAD_LITERALS)])
def test_bad_literal_refused(t: reeldb.Connection, refused, sqlstate: str, column: str, literal: str) -> None:
    if column == "id":
        sql = f"INSERT INTO t (id, name) VALUES (2, 'ok'), ({literal}, 'ok')"
    elif column == "name":
        sql = f"INSERT INTO t (id, name) VALUES (2, 'ok'), (3, {literal})"
    else:
        sql = f"INSERT INTO t (id, name, {column}) VALUES (2, 'ok', NULL), (3, 'ok', {literal})"
    err = refused(sqlstate, "t", sql)
    assert isinstance(err, reeldb.DataError)


def test_image_that_is_a_video_and_video_that_is_an_image(t: reeldb.Connection, refused, png_bytes: bytes,
                                                         mp4_bytes: bytes) -> None:
    refused("22P02", "t", "INSERT INTO t (id, name, img) VALUES (2, 'x', %s)", [mp4_bytes])
    refused("22P02", "t", "INSERT INTO t (id, name, clip) VALUES (2, 'x', %s)", [png_bytes])
    refused("22P02", "t", "INSERT INTO t (id, name, clip) VALUES (2, 'x', %s)", [mp4_bytes[: len(mp4_bytes) // 3]])
    refused("22P02", "t", "INSERT INTO t (id, name, img) VALUES (2, 'x', %s)", [png_bytes[:40]])


def test_bad_update_changes_nothing(t: reeldb.Connection) -> None:
    before = t.execute("SELECT * FROM t").fetchall()
    for sql, params, state in [
        ("UPDATE t SET e = %s", [[1.0, 2.0]], "22000"),
        ("UPDATE t SET small = 99999", None, "22003"),
        ("UPDATE t SET name = 'far too long'", None, "22001"),
        ("UPDATE t SET name = NULL", None, "23502"),
        ("UPDATE t SET clip = %s", [b"nope"], "22P02"),
        ("UPDATE t SET u = 'zzz'", None, "22P02"),
    ]:
        with pytest.raises(reeldb.Error) as info:
            t.execute(sql, params)
        assert info.value.sqlstate == state, sql
    after = t.execute("SELECT * FROM t").fetchall()
    assert len(after) == len(before) == 1
    assert after[0][:10] == before[0][:10]
    np.testing.assert_array_equal(after[0][10], before[0][10])
    assert bytes(after[0][14]) == bytes(before[0][14])


def test_bad_bulk_insert_writes_nothing(t: reeldb.Connection, count) -> None:
    with pytest.raises(reeldb.DataError) as info:
        t.insert("t", {"id": [2, 3], "name": ["a", "b"], "e": np.zeros((2, 5), dtype=np.float32)})
    assert info.value.sqlstate == "22000"
    with pytest.raises(reeldb.DataError) as info:
        t.insert("t", [{"id": 2, "name": "a"}, {"id": 3, "name": "b", "clip": b"junk"}])
    assert info.value.sqlstate == "22P02"
    with pytest.raises(reeldb.DataError) as info:
        t.executemany("INSERT INTO t (id, name, small) VALUES (%s, %s, %s)", [(2, "a", 1), (3, "b", 10**6)])
    assert info.value.sqlstate == "22003"
    assert count("t") == 1


# --- names, syntax, constraints, parameters -----------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM nope",
        "INSERT INTO nope VALUES (1)",
        "UPDATE nope SET x = 1",
        "DELETE FROM nope",
        "SELECT * FROM t JOIN nope ON true",
        "ALTER TABLE nope ADD COLUMN x INT",
        "DROP TABLE nope",
    ],
)
def test_unknown_table(t: reeldb.Connection, refused, sql: str) -> None:
    err = refused("42P01", "t", sql)
    assert isinstance(err, reeldb.ProgrammingError)
    assert "nope" in str(err)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT nope FROM t",
        "SELECT id FROM t WHERE nope = 1",
        "SELECT id FROM t ORDER BY nope",
        "INSERT INTO t (id, name, nope) VALUES (2, 'x', 1)",
        "UPDATE t SET nope = 1",
        "UPDATE t SET name = 'x' WHERE nope = 1",
        "DELETE FROM t WHERE nope = 1",
        "ALTER TABLE t DROP COLUMN nope",
        "ALTER TABLE t RENAME COLUMN nope TO other",
    ],
)
def test_unknown_column(t: reeldb.Connection, refused, sql: str) -> None:
    err = refused("42703", "t", sql)
    assert isinstance(err, reeldb.ProgrammingError)
    assert "nope" in str(err)


@pytest.mark.parametrize(
    "sql",
    [
        "SELEC * FROM t",
        "SELECT * FROM t WHERE",
        "INSERT INTO t VALUES (2, 'x'",
        "CREATE TABLE (id INT)",
        "UPDATE t SET WHERE id = 1",
    ],
)
def test_syntax_error(t: reeldb.Connection, refused, sql: str) -> None:
    err = refused("42601", "t", sql)
    assert isinstance(err, reeldb.ProgrammingError)


def test_duplicate_key(t: reeldb.Connection, refused) -> None:
    err = refused("23505", "t", "INSERT INTO t (id, name) VALUES (1, 'dup')")
    assert isinstance(err, reeldb.IntegrityError)
    refused("23505", "t", "INSERT INTO t (id, name) VALUES (5, 'a'), (5, 'b')")


def test_null_in_not_null(t: reeldb.Connection, refused) -> None:
    err = refused("23502", "t", "INSERT INTO t (id, name) VALUES (2, NULL)")
    assert isinstance(err, reeldb.IntegrityError)
    refused("23502", "t", "INSERT INTO t (id) VALUES (2)")
    refused("23502", "t", "INSERT INTO t (id, name) VALUES (NULL, 'x')")  # a primary key is NOT NULL
    refused("23502", "t", "INSERT INTO t (id, name) VALUES (2, 'a'), (3, %s)", [None])


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("INSERT INTO t (id, name) VALUES (%s, %s)", [2]),
        ("INSERT INTO t (id, name) VALUES (%s, %s)", [2, "a", "extra"]),
        ("INSERT INTO t (id, name) VALUES (%(id)s, %(name)s)", {"id": 2}),
        ("INSERT INTO t (id, name) VALUES (:id, :name)", {"name": "a"}),
        ("INSERT INTO t (id, name) VALUES ($1, $2)", [2]),
        ("INSERT INTO t (id, name) VALUES (%s, %s)", None),
        ("SELECT * FROM t WHERE id = %s", [1, 2]),
    ],
)
def test_wrong_parameter_count(t: reeldb.Connection, refused, sql: str, params) -> None:
    err = refused("08P01", "t", sql, params)
    assert isinstance(err, reeldb.ProgrammingError)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT e <-> '[1,2]' FROM t", None),
        ("SELECT cosine_similarity(e, %s) FROM t", [[1.0, 2.0, 3.0, 4.0]]),
        ("SELECT id FROM t ORDER BY e <=> %s LIMIT 5", [np.ones(2, dtype=np.float32)]),
        ("SELECT id FROM t WHERE id > 0 ORDER BY e <#> %s LIMIT 5", [[1.0, 2.0]]),
    ],
)
def test_vector_dimension_mismatch(t: reeldb.Connection, sql: str, params) -> None:
    # pgvector: "different vector dimensions 3 and 2", data_exception
    with pytest.raises(reeldb.DataError) as info:
        t.execute(sql, params)
    assert info.value.sqlstate == "22000"


@pytest.mark.parametrize("sql", ["SELECT 1 / 0", "SELECT 1.0 / 0", "SELECT id / 0 FROM t", "SELECT 5 % 0"])
def test_division_by_zero(t: reeldb.Connection, sql: str) -> None:
    with pytest.raises(reeldb.DataError) as info:
        t.execute(sql)
    assert info.value.sqlstate == "22012"


def test_errors_inside_a_transaction_lose_it_all(t: reeldb.Connection, count) -> None:
    with pytest.raises(reeldb.DataError), t.transaction():
        t.execute("INSERT INTO t (id, name) VALUES (2, 'fine')")
        t.execute("INSERT INTO t (id, name, e) VALUES (3, 'bad', '[1]')")
    assert count("t") == 1


def test_error_carries_a_message_naming_the_problem(t: reeldb.Connection) -> None:
    with pytest.raises(reeldb.DataError) as info:
        t.execute("INSERT INTO t (id, name, e) VALUES (2, 'x', '[1,2]')")
    msg = str(info.value)
    assert "3" in msg and "2" in msg  # expected and given dimensions
    with pytest.raises(reeldb.IntegrityError) as info:
        t.execute("INSERT INTO t (id, name) VALUES (2, NULL)")
    assert "name" in str(info.value)


def test_user_text_in_an_error_never_picks_its_sqlstate(db) -> None:
    """A value quoted in DuckDB's message is data: 'division by zero'::int is 22P02 as in
    PostgreSQL, not 22012."""
    for text in ("division by zero", "value is out of range for the destination type"):
        with pytest.raises(reeldb.DataError) as e:
            db.execute(f"SELECT '{text}'::int")
        assert e.value.sqlstate == "22P02"
    with pytest.raises(reeldb.DataError) as e:
        db.execute("SELECT 1 / 0")
    assert e.value.sqlstate == "22012"
