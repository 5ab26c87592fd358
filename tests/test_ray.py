"""reeldb.ray against a real local Ray (2 CPUs, no dashboard): reads with pushdown, writes
in one commit, failed and retried jobs, and a backfill on a branch merged back."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reeldb
import reeldb.ray as rray
from reeldb import errors
from reeldb.ray.source import ReeldbDatasource, plan_read

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


# set in the workers' environment: they must not make a folder of their own on import
KILL_DIR = Path(os.environ.get("REELDB_RAY_TEST_DIR") or tempfile.mkdtemp(prefix="reeldb-ray-test-"))


def _kill_after_write() -> None:
    """Worker setup: while ``KILL_DIR/armed`` exists, the process running a write task
    dies (as a killed node would) right after writing its fragments, once per block."""
    import reeldb.ray.sink as sink

    write_block = sink._write_block

    def dying(block: Any, spec: Any) -> Any:
        out = write_block(block, spec)
        folder = Path(os.environ["REELDB_RAY_TEST_DIR"])
        marker = folder / f"died-{int(np.min(block.column('id').to_numpy()))}"
        if (folder / "armed").exists() and not marker.exists():
            marker.touch()
            os._exit(1)
        return out

    sink._write_block = dying


@pytest.fixture(scope="module", autouse=True)
def ray_local(s3_server: Any) -> Any:
    """Started after moto's S3 server, so that Ray's workers inherit its AWS variables."""
    # workers import this module's map functions by name, and reeldb as this process does
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "REELDB_RAY_TEST_DIR": str(KILL_DIR)},
                          "worker_process_setup_hook": "test_ray._kill_after_write"})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()
    shutil.rmtree(KILL_DIR, ignore_errors=True)


def _clips(tmp_path: Path, rows: int = 40) -> str:
    """A table of prompts, scores, 4-d embeddings and (out-of-line) clip bytes, in two fragments."""
    uri = str(tmp_path / "db")
    db = reeldb.connect(uri)
    db.execute("CREATE TABLE clips (id INT, prompt TEXT, score REAL, emb VECTOR(4), clip BYTEA)")
    rng = np.random.default_rng(0)
    for part in range(2):
        ids = list(range(part * rows // 2, (part + 1) * rows // 2))
        db.insert("clips", {"id": ids, "prompt": [f"p{i}" for i in ids],
                            "score": [i / rows for i in ids],
                            "emb": rng.random((len(ids), 4), dtype=np.float32),
                            "clip": [bytes([i % 256]) * (5000 + i) for i in ids]})
    db.close()
    return uri


def _commits(uri: str, branch: str = "main") -> int:
    with reeldb.connect(uri) as db:
        return len(db.log(branch))


def _blobs(db: reeldb.Connection, table: str) -> dict[int, bytes]:
    return {i: bytes(b) for i, b in db.execute(f"SELECT id, clip FROM {table}").fetchall()}


def _files(uri: str) -> set[str]:
    return {str(p.relative_to(uri)) for p in Path(uri).rglob("*") if p.is_file()}


def test_read_with_filter_and_columns(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    ds = rray.read(uri, "clips", filter="score >= 0.5 AND id % 3 = 0", columns=["id", "emb", "clip"])
    assert ds.schema().names == ["id", "emb", "clip"]
    rows = sorted(ds.take_all(), key=lambda r: r["id"])
    with reeldb.connect(uri) as db:
        want = db.execute("SELECT id, emb, clip FROM clips WHERE score >= 0.5 AND id % 3 = 0 ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == [w[0] for w in want] and len(rows) > 3
    for r, w in zip(rows, want, strict=True):
        assert r["emb"].shape == (4,) and r["emb"].dtype == np.float32
        np.testing.assert_array_equal(r["emb"], np.asarray(w[1], dtype=np.float32))
        assert bytes(r["clip"]) == bytes(w[2])
    # one read task per group of fragments: two fragments, at most two tasks
    with reeldb.connect(uri) as db:
        spec, groups = plan_read(db, db.head, "clips", "id < 5 OR id >= 35", None, ["id"], False)
    assert [len(p) for _, p in groups] == [5, 5]
    assert len(ReeldbDatasource(spec, groups).get_read_tasks(8)) == 2
    assert len(ReeldbDatasource(spec, groups).get_read_tasks(1)) == 1


def test_read_pins_the_commit_and_refuses_bad_input(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    ds = rray.read(uri, "clips", columns=["id"])
    with reeldb.connect(uri) as db:
        db.execute("DELETE FROM clips WHERE id < 10")
    assert ds.count() == 40  # the commit read was pinned when the dataset was made
    assert rray.read(uri, "clips", columns=["id"]).count() == 30
    with pytest.raises(errors.UndefinedColumn, match='"nope"'):
        rray.read(uri, "clips", columns=["nope"])
    with pytest.raises(errors.UndefinedTable):
        rray.read(uri, "nope")
    with pytest.raises(errors.Error):
        rray.read(uri, "clips", filter="nope > 1")
    with pytest.raises(errors.Error):  # no database there: an error, never an empty one created
        rray.read(str(tmp_path / "absent"), "clips")
    assert not (tmp_path / "absent").exists()


def test_write_create_then_append_one_commit_each(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    src = rray.read(uri, "clips", columns=["id", "prompt", "emb", "clip"]).repartition(3)
    before = _commits(uri)
    rray.write(src, uri, "copy", mode="create", message="copy clips")
    assert _commits(uri) == before + 1
    rray.write(src.filter(lambda r: r["id"] < 5), uri, "copy", mode="append")
    assert _commits(uri) == before + 2
    with reeldb.connect(uri) as db:
        got = db.execute("SELECT count(*), count(DISTINCT id) FROM copy").fetchone()
        assert got == (45, 40)
        same = db.execute("SELECT count(*) FROM copy c JOIN clips s USING (id) "
                          "WHERE c.prompt = s.prompt AND c.emb = s.emb").fetchone()
        assert same == (45,)
        assert _blobs(db, "copy") == _blobs(db, "clips")
        cols = db.execute("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'public' AND table_name = 'copy' ORDER BY ordinal_position").fetchall()
    assert [c[0] for c in cols] == ["id", "prompt", "emb", "clip"]
    assert cols[0][1] == "integer" and cols[1][1] == "text" and cols[3][1] == "bytea"
    rray.write(src.filter(lambda r: r["id"] < 3), uri, "copy", mode="overwrite")
    with reeldb.connect(uri) as db:
        assert db.execute("SELECT array_agg(id ORDER BY id) FROM copy").fetchone()[0] == [0, 1, 2]


def test_write_refusals_change_nothing(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    src = rray.read(uri, "clips", columns=["id", "prompt"])
    before = _commits(uri)
    with pytest.raises(errors.UndefinedTable):
        rray.write(src, uri, "absent")
    with pytest.raises(errors.DuplicateTable):
        rray.write(src, uri, "clips", mode="create")
    with pytest.raises(ValueError, match="mode"):
        rray.write(src, uri, "clips", mode="upsert")
    with reeldb.connect(uri) as db:
        db.execute("CREATE TABLE small (id INT CHECK (id < 30), prompt TEXT)")
    with pytest.raises(Exception, match="small"):  # a row breaks the CHECK constraint in a worker
        rray.write(src, uri, "small")
    assert _commits(uri) == before + 1
    with reeldb.connect(uri) as db:
        assert db.execute("SELECT count(*) FROM small").fetchone() == (0,)


def _failing_map(batch: dict[str, Any]) -> dict[str, Any]:
    if (batch["id"] >= 30).any():
        raise RuntimeError("boom")
    return batch


def test_job_failing_before_commit_changes_nothing_and_vacuum_sweeps(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with reeldb.connect(uri) as db:
        head = db.head
        db.execute("CREATE TABLE copy (id INT, prompt TEXT, clip BYTEA)")
        head = db.head
    files = _files(uri)
    ds = rray.read(uri, "clips", columns=["id", "prompt", "clip"]).repartition(4) \
        .map_batches(_failing_map, batch_size=5, max_retries=0)
    with pytest.raises(Exception, match="boom"):
        rray.write(ds, uri, "copy")
    with reeldb.connect(uri) as db:
        assert db.head == head
        assert db.execute("SELECT count(*) FROM copy").fetchone() == (0,)
        left = _files(uri) - files
        stray = {f for f in left if f.startswith(("data/", "blobs/"))}
        db.vacuum(grace=dt.timedelta(0))
    # what the failed job wrote is unreferenced, and VACUUM removes it
    assert not (_files(uri) & stray)


def test_killed_write_tasks_are_retried_without_duplicate_rows(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with reeldb.connect(uri) as db:
        db.execute("CREATE TABLE copy (id INT, prompt TEXT, emb VECTOR(4), clip BYTEA)")
    ds = rray.read(uri, "clips", columns=["id", "prompt", "emb", "clip"]).repartition(4)
    before = set(Path(uri, "data").rglob("*.parquet"))
    (KILL_DIR / "armed").touch()
    try:
        rray.write(ds, uri, "copy")
    finally:
        (KILL_DIR / "armed").unlink()
    died = list(KILL_DIR.glob("died-*"))
    for m in died:
        m.unlink()
    assert len(died) == 4  # every write task died once after writing, and was retried
    with reeldb.connect(uri) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM copy").fetchone() == (40, 40)
        assert _blobs(db, "copy") == _blobs(db, "clips")
        committed = len(db.catalog.snapshot(db.head)["copy"].fragments)
    # the dead tries' fragments were written but not committed: twice the files, once the rows
    assert committed == 4
    assert len(set(Path(uri, "data").rglob("*.parquet")) - before) == 8


def _embed(batch: dict[str, Any]) -> dict[str, Any]:
    n = len(batch["_rowid"])
    emb = np.stack([np.full(4, len(p), np.float32) for p in batch["prompt"]]) if n else np.zeros((0, 4), np.float32)
    return {"_rowid": batch["_rowid"], "emb": emb}


def test_update_column_on_a_branch_then_merge(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with reeldb.connect(uri) as db:
        db.branch("embed", checkout=False)
        main_head = db.head
        clips_before = db.execute("SELECT id, prompt, score, clip FROM clips ORDER BY id").fetchall()
    before = _commits(uri, "embed")
    rray.update_column(uri, "clips", "emb", _embed, branch="embed", columns=["prompt"], batch_size=7)
    assert _commits(uri, "embed") == before + 1
    with reeldb.connect(uri, branch="embed") as db:
        rows = db.execute("SELECT id, prompt, score, clip, emb FROM clips ORDER BY id").fetchall()
        assert [r[:4] for r in rows] == clips_before  # nothing else changed
        for r in rows:
            np.testing.assert_array_equal(np.asarray(r[4]), np.full(4, len(r[1]), np.float32))
        changes = db.diff("main", "embed", table="clips")
    with reeldb.connect(uri) as db:
        assert db.head == main_head  # main untouched until the merge
        db.merge("embed")
        got = db.execute("SELECT count(*), count(DISTINCT _rowid) FROM clips").fetchone()
        assert got == (40, 40)
        emb = db.execute("SELECT emb FROM clips WHERE id = 12").fetchone()[0]
        np.testing.assert_array_equal(np.asarray(emb), np.full(4, 3, np.float32))
    assert changes is not None


def test_update_column_refuses_foreign_rowids(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    head = reeldb.connect(uri).head

    def invent(batch: dict[str, Any]) -> dict[str, Any]:
        return {"_rowid": batch["_rowid"] + 10**12, "score": batch["score"]}

    with pytest.raises(Exception, match="not a row it was given"):
        rray.update_column(uri, "clips", "score", invent, columns=["score"])
    with reeldb.connect(uri) as db:
        assert db.head == head


def _commit_meanwhile(batch: dict[str, Any]) -> dict[str, Any]:
    """Another writer commits to the same table while the job runs (from the worker that
    holds row 0, so exactly once)."""
    if 0 in batch["id"]:
        with reeldb.connect(os.environ["REELDB_RAY_TEST_URI"]) as db:
            db.execute("INSERT INTO copy (id, prompt) VALUES (-1, 'meanwhile')")
    return batch


def test_a_commit_during_the_job_is_rebased_onto(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with reeldb.connect(uri) as db:
        db.execute("CREATE TABLE copy (id INT, prompt TEXT)")
    before = _commits(uri)
    ds = rray.read(uri, "clips", columns=["id", "prompt"]).map_batches(
        _commit_meanwhile, runtime_env={"env_vars": {"REELDB_RAY_TEST_URI": uri}})
    rray.write(ds, uri, "copy")
    assert _commits(uri) == before + 2  # theirs, then ours re-based onto it: both land
    with reeldb.connect(uri) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id), min(id) FROM copy").fetchone() == (41, 41, -1)


def _update_meanwhile(batch: dict[str, Any]) -> dict[str, Any]:
    """A concurrent UPDATE of the rows the backfill is about to update (once)."""
    if 0 in batch["id"]:
        with reeldb.connect(os.environ["REELDB_RAY_TEST_URI"]) as db:
            db.execute("UPDATE clips SET score = -1 WHERE id = 0")
    return {"_rowid": batch["_rowid"], "score": batch["score"] * 2}


def test_update_column_conflicting_with_a_concurrent_update_is_refused(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with pytest.raises(errors.SerializationFailure):
        rray.update_column(uri, "clips", "score", _update_meanwhile, columns=["id", "score"],
                           runtime_env={"env_vars": {"REELDB_RAY_TEST_URI": uri}})
    with reeldb.connect(uri) as db:  # only the concurrent UPDATE landed: no torn table
        assert db.execute("SELECT count(*), sum(CASE WHEN score = -1 THEN 1 ELSE 0 END) FROM clips").fetchone() \
            == (40, 1)
        assert db.execute("SELECT score FROM clips WHERE id = 7").fetchone()[0] == pytest.approx(7 / 40)


def test_columns_not_asked_for_are_never_opened(tmp_path: Path) -> None:
    """Column pushdown, observed: with the blob packs and matrix files moved away, a read of
    the other columns (filtered on one more) still answers; asking for a moved column
    fails naming the missing object."""
    uri = _clips(tmp_path)
    aside = tmp_path / "aside"
    aside.mkdir()
    Path(uri, "blobs").rename(aside / "blobs")
    for mat in Path(uri, "data").rglob("*.mat"):
        mat.rename(aside / mat.name)
    rows = rray.read(uri, "clips", filter="score < 0.25", columns=["id", "prompt"]).take_all()
    assert sorted(r["id"] for r in rows) == list(range(10))
    with pytest.raises(Exception, match=r"blobs/\w+\.pack"):
        rray.read(uri, "clips", filter="score < 0.25", columns=["id", "clip"]).take_all()
    with pytest.raises(Exception, match=r"\.mat"):
        rray.read(uri, "clips", columns=["emb"]).take_all()


def test_s3_write_read_and_backfill(s3_url: str, tmp_path: Path) -> None:
    """The same jobs against S3 (moto's server): tasks open the store by URL on their own."""
    local = _clips(tmp_path)
    src = rray.read(local, "clips", columns=["id", "prompt", "emb", "clip"])
    reeldb.connect(s3_url).close()
    rray.write(src, s3_url, "clips", mode="create")
    got = sorted(rray.read(s3_url, "clips", filter="id >= 30", columns=["id", "emb", "clip"]).take_all(),
                 key=lambda r: r["id"])
    with reeldb.connect(local) as db:
        want = db.execute("SELECT id, emb, clip FROM clips WHERE id >= 30 ORDER BY id").fetchall()
    assert [r["id"] for r in got] == [w[0] for w in want]
    assert all(bytes(r["clip"]) == bytes(w[2]) and np.array_equal(r["emb"], np.asarray(w[1], np.float32))
               for r, w in zip(got, want, strict=True))
    rray.update_column(s3_url, "clips", "emb", _embed, columns=["prompt"])
    with reeldb.connect(s3_url) as db:
        assert np.array_equal(np.asarray(db.execute("SELECT emb FROM clips WHERE id = 7").fetchone()[0]),
                              np.full(4, 2, np.float32))
        assert db.execute("SELECT count(*) FROM clips").fetchone() == (40,)


def test_refusals_name_the_column_and_change_nothing(tmp_path: Path) -> None:
    uri = _clips(tmp_path)
    with reeldb.connect(uri) as db:
        db.execute("CREATE TABLE g (id INT, twice INT GENERATED ALWAYS AS (id * 2) STORED)")
        db.execute("INSERT INTO g (id) VALUES (1), (2)")
        head = db.head
    with pytest.raises(errors.Error, match='"twice"') as e:
        rray.update_column(uri, "g", "twice", _embed)
    assert e.value.sqlstate == "428C9"
    with pytest.raises(errors.UndefinedColumn):
        rray.update_column(uri, "g", "nope", _embed)
    extra = rray.read(uri, "clips", columns=["id", "prompt"])
    with pytest.raises(Exception, match='"prompt"'):  # the dataset has a column g lacks
        rray.write(extra, uri, "g")
    with pytest.raises(errors.DataError, match='"emb"') as e:  # a NULL vector has no tensor form
        with reeldb.connect(uri) as db:
            db.execute("INSERT INTO clips (id) VALUES (100)")
            head = db.head
        rray.read(uri, "clips", columns=["id", "emb"]).take_all()
    assert e.value.sqlstate == "22004"
    with reeldb.connect(uri) as db:
        assert db.head == head
        assert db.execute("SELECT array_agg(twice ORDER BY id) FROM g").fetchone() == ([2, 4],)
