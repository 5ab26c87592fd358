"""Fixed-shape TENSOR columns of every rank read back exactly through every read path.

A point lookup on a table with a 4-D tensor once crashed the process, and 2-D / 3-D tensors
came back as other memory's bytes: pyarrow's take/filter misread sliced nested lists.
"""

from __future__ import annotations

import numpy as np
import pytest

import reeldb

SHAPES = [(6,), (3, 4), (2, 3, 4), (2, 2, 3, 4)]
N = 40


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


@pytest.fixture(params=SHAPES, ids=lambda s: f"rank{len(s)}")
def table(request, tmp_path):
    shape = request.param
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal((N, *shape)).astype(np.float32)
    emb = rng.standard_normal((N, 4)).astype(np.float32)
    db = reeldb.connect(tmp_path / "db")
    db.execute(f"CREATE TABLE m (id BIGINT PRIMARY KEY, emb VECTOR(4), latent TENSOR(float32, {_dims(shape)}))")
    for lo in (0, N // 2):  # two fragments
        db.insert("m", {"id": np.arange(lo, lo + N // 2), "emb": emb[lo:lo + N // 2], "latent": x[lo:lo + N // 2]})
    # a deletion vector and a rewritten row: positions inside fragments no longer line up
    db.execute("DELETE FROM m WHERE id IN (3, 25)")
    x[7] = -x[7]
    db.execute("UPDATE m SET latent = %s WHERE id = 7", [x[7]])
    yield db, x, emb
    db.close()


def _same(got, want) -> bool:
    return np.array_equal(np.asarray(got, dtype=np.float32), want)


def test_scan(table):
    db, x, _ = table
    rows = db.execute("SELECT id, latent FROM m ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [i for i in range(N) if i not in (3, 25)]
    assert all(_same(r[1], x[r[0]]) for r in rows)


@pytest.mark.parametrize("sql", ["SELECT id, latent FROM m WHERE id = %s",  # picks columns: no SQL engine
                                 "SELECT id, latent FROM m WHERE id = %s AND id >= 0",  # DuckDB over the rows
                                 "SELECT id, latent FROM m WHERE id = %s ORDER BY id"])
def test_point_lookups(table, sql):
    db, x, _ = table
    for i in (0, 1, 7, 19, 20, 21, 38, 39):
        rid, latent = db.execute(sql, [i]).fetchone()
        assert rid == i and _same(latent, x[i]), (sql, i)
    assert db.execute(sql, [3]).fetchone() is None
    star = db.execute("SELECT * FROM m WHERE id = %s", [21]).fetchone()
    assert star[0] == 21 and _same(star[2], x[21])


def test_vector_top_k_winners(table):
    db, x, emb = table
    q = emb[11]
    rows = db.execute("SELECT id, latent FROM m ORDER BY emb <-> %s LIMIT 5", [q]).fetchall()
    assert rows[0][0] == 11
    assert all(_same(r[1], x[r[0]]) for r in rows)
    hits = db.search("m", "emb", q, k=5, metric="l2", columns=["id", "latent"])
    assert hits[0]["id"] == 11 and all(_same(h["latent"], x[h["id"]]) for h in hits)


def test_cursor_forms(table):
    db, x, _ = table
    t = db.execute("SELECT id, latent FROM m WHERE id IN (1, 7, 30) ORDER BY id").arrow()
    for i, v in zip(t.column("id").to_pylist(), t.column("latent").to_pylist()):
        assert _same(v, x[i])
    cur = db.execute("SELECT id, latent FROM m ORDER BY id")
    first = cur.fetchmany(5)
    rest = cur.fetchall()
    assert all(_same(r[1], x[r[0]]) for r in first + rest)


def test_dataloader(table):
    pytest.importorskip("torch")
    db, x, _ = table
    seen = {}
    for batch in db.dataloader("m").columns(["id", "latent"]).batch_size(7).to_torch():
        for i, v in zip(batch["id"].tolist(), batch["latent"]):
            seen[i] = v.numpy()
    assert sorted(seen) == [i for i in range(N) if i not in (3, 25)]
    assert all(np.array_equal(v, x[i]) for i, v in seen.items())


def test_diff_and_time_travel(table):
    db, x, _ = table
    before = db.head
    db.branch("b")
    db.execute("UPDATE m SET latent = %s WHERE id = 9", [x[9] * 2])
    d = db.diff("main", "b", table="m")["m"]
    assert d.changed_rows == 1 and d.added.num_rows == 0 and d.removed.num_rows == 0
    old = db.execute(f'SELECT latent FROM "{before}".m WHERE id = 9').fetchone()[0]
    new = db.execute("SELECT latent FROM m WHERE id = 9").fetchone()[0]
    assert _same(old, x[9]) and _same(new, x[9] * 2)
