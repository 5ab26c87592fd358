"""Calls DuckDB answers otherwise than PostgreSQL, checked against a real PostgreSQL 16:
each gives PostgreSQL's answer, or is refused (0A000) where reeldb cannot."""

from __future__ import annotations

import pytest

import reeldb

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return reeldb.connect(tmp_path_factory.mktemp("edges") / "db")


@pytest.fixture(scope="module")
def pg(postgres):
    with psycopg.connect(postgres, autocommit=True) as conn:
        yield conn


SAME = [
    "round(2.5::float8)", "round(3.5::float4)", "round(-2.5::float8)", "round(2.5)", "round(-2.5)",
    "round(7)", "round(2.345::numeric(10,3))", "cardinality(array[1,2,3])", "cardinality('{}'::int[])",
    "date_trunc('decade', timestamp '2001-05-05')",
]


@pytest.mark.parametrize("expr", SAME)
def test_same_answer_as_postgresql(db, pg, expr: str) -> None:
    """round() of a float rounds half to even (PostgreSQL's rint), of a numeric half away
    from zero; compared as values, not as text."""
    assert db.execute(f"SELECT {expr}").fetchone() == pg.execute(f"SELECT {expr}").fetchone()


@pytest.mark.parametrize("expr", ["cardinality(array[[1,2],[3,4]])",
                                  "date_trunc('century', date '2001-05-05')",
                                  "date_trunc('millennium', timestamp '2001-05-05')"])
def test_refused_where_duckdb_answers_otherwise(db, expr: str) -> None:
    with pytest.raises(reeldb.errors.FeatureNotSupported):
        db.execute(f"SELECT {expr}").fetchall()
