"""The vector top-k plan's shortcuts (a repeated filter's rows kept per snapshot, the
output built without SQL) answer exactly what DuckDB answers for the same statement."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def vt(db):
    db.execute("CREATE TABLE vt (id INT PRIMARY KEY, name TEXT, score REAL, meta JSONB, emb VECTOR(4))")
    rng = np.random.default_rng(3)
    rows = [(i, f"n{i}", float(rng.random()), {"i": i}, None if i % 17 == 0 else rng.standard_normal(4).astype(np.float32))
            for i in range(300)]
    db.executemany("INSERT INTO vt VALUES (%s, %s, %s, %s, %s)", rows[:150])
    db.executemany("INSERT INTO vt VALUES (%s, %s, %s, %s, %s)", rows[150:])  # two fragments
    db.execute("DELETE FROM vt WHERE id % 29 = 0")
    return db


QUERIES = [
    "SELECT id, 1 - (emb <=> %(q)s) AS rel FROM vt WHERE score > 0.3 ORDER BY emb <=> %(q)s LIMIT 7",
    "SELECT *, emb <-> %(q)s FROM vt ORDER BY emb <-> %(q)s LIMIT 5",
    "SELECT id, cosine_similarity(emb, %(q)s) AS r, meta FROM vt WHERE name LIKE 'n1%%' AND emb IS NOT NULL ORDER BY r DESC LIMIT 6",
    "SELECT v.id, (v.emb <#> %(q)s) * 2 AS x FROM vt AS v ORDER BY v.emb <#> %(q)s LIMIT 4 OFFSET 2",
    "SELECT upper(name) AS u, emb <=> %(q)s AS d FROM vt WHERE score < 0.5 ORDER BY d LIMIT 5",
]


def same(a, b) -> bool:
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, float) and isinstance(b, float):
        # numpy scores by norms (L2 as sqrt(|a|² + |q|² - 2a·q)): float32 rounding differs a little
        return a == pytest.approx(b, rel=1e-4, abs=1e-5) or (np.isnan(a) and np.isnan(b))
    return a == b


@pytest.mark.parametrize("sql", QUERIES)
def test_plan_matches_duckdb(vt, sql) -> None:
    rng = np.random.default_rng(9)
    for _ in range(3):  # the same filter again: from the snapshot's cache
        q = rng.standard_normal(4).astype(np.float32)
        planned = vt.execute(sql, {"q": q})
        general = vt.execute(f"SELECT * FROM ({sql}) AS sub", {"q": q})
        assert [d[:2] for d in planned.description] == [d[:2] for d in general.description]
        assert same(planned.fetchall(), general.fetchall())


def test_filter_cache_follows_new_snapshots(vt) -> None:
    q = np.ones(4, dtype=np.float32)
    sql = "SELECT id FROM vt WHERE score > 0.5 ORDER BY emb <-> %s LIMIT 3"
    before = vt.execute(sql, (q,)).fetchall()
    vt.execute("INSERT INTO vt VALUES (1000, 'near', 0.9, NULL, '[1,1,1,1]')")
    assert vt.execute(sql, (q,)).fetchall()[0] == (1000,)
    vt.execute("UPDATE vt SET score = 0.1 WHERE id = 1000")
    assert vt.execute(sql, (q,)).fetchall() == before
