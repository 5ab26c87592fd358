"""The dataloader below PyTorch: epoch orders and the split into ranks and workers, the
plan (pinned snapshot, filters, deleted rows, NULLs) and column reads, including that a
column not asked for is never read. ``test_loader_torch.py`` covers the torch side."""

from __future__ import annotations

import io
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

import reeldb
from reeldb.catalog.catalog import Catalog
from reeldb.connection import Connection
from reeldb.loader.order import Layout, epoch_order, worker_batches
from reeldb.loader.plan import build_query_plan, build_table_plan, named_columns
from reeldb.loader.read import Reader
from reeldb.storage.local import LocalStore

N = 120  # rows; fragments of 50, 50, 20


# --------------------------------------------------------------------------- fixtures


def _media_rows(start: int, n: int) -> dict:
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + n)
    return {
        "id": list(ids),
        "quality_score": list((ids % 10) / 10.0),
        # long, so a fragment's Parquet file is larger than the tail pyarrow reads first
        "prompt": [f"prompt {i} " + rng.bytes(4000).hex() for i in ids],
        "emb": rng.standard_normal((n, 16)).astype(np.float32),
        "latent": rng.standard_normal((n, 2, 3, 4)).astype(np.float16),
        # out of line (> 4 KiB), distinct lengths so a mix-up shows
        "image": [bytes([i % 251]) * (5000 + i) for i in ids],
        "video": [bytes([(i + 7) % 251]) * (9000 + i) for i in ids],
        "meta": [{"i": int(i)} for i in ids],
    }


MEDIA_SCHEMA = """CREATE TABLE media (id INT, quality_score FLOAT, prompt TEXT, emb VECTOR(16),
    latent TENSOR(float16, 2, 3, 4), image BYTEA, video BYTEA, meta JSONB)"""


def make_media(path) -> Connection:
    db = reeldb.connect(path)
    db.execute(MEDIA_SCHEMA)
    for start, n in ((0, 50), (50, 50), (100, 20)):
        db.insert("media", _media_rows(start, n))
    return db


@pytest.fixture
def media(path: str) -> Connection:
    db = make_media(path)
    yield db
    db.close()


def read_all(plan, store=None, batch: int = 7) -> dict:
    """Every row of a plan in order, batch by batch, as lists."""
    reader = Reader(plan, store)
    out: dict[str, list] = {}
    for start in range(0, plan.rows, batch):
        got = reader.read(np.arange(start, min(start + batch, plan.rows)))
        for k, v in got.items():
            out.setdefault(k, []).extend(list(v))
    reader.close()
    return out


def table_plan(db, *, filters=(), columns=None, decode=None, commit=None):
    return build_table_plan(db, commit or db.head, "media", list(filters), columns, decode or {})


# ----------------------------------------------------------------------- epoch orders


def test_epoch_order_is_keyed_by_seed_and_epoch() -> None:
    a = epoch_order(1000, 7, 0)
    assert np.array_equal(a, epoch_order(1000, 7, 0))
    assert np.array_equal(np.sort(a), np.arange(1000))
    assert not np.array_equal(a, epoch_order(1000, 7, 1))
    assert not np.array_equal(a, epoch_order(1000, 8, 0))
    assert epoch_order(1000, None, 3) is None  # no shuffle: table order


def test_buffered_shuffle_keeps_windows_together() -> None:
    order = epoch_order(1003, 1, 2, buffer=100)
    assert np.array_equal(np.sort(order), np.arange(1003))
    windows = order // 100
    changes = np.flatnonzero(np.diff(windows)) + 1
    runs = np.split(order, changes)
    assert len(runs) == 11  # each window appears as one run ...
    for run in runs:  # ... holding all of its rows, shuffled
        w = run[0] // 100
        assert np.array_equal(np.sort(run), np.arange(w * 100, min(w * 100 + 100, 1003)))
    assert not np.array_equal(order, np.arange(1003))
    assert not np.array_equal(windows[changes], np.sort(windows[changes]))  # windows out of order


@pytest.mark.parametrize("rows", [0, 1, 15, 16, 17, 100, 129])
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_and_workers_cover_every_row_once(rows: int, world: int, drop_last: bool) -> None:
    order = epoch_order(rows, 3, 1)
    seen: list[int] = []
    counts = []
    for rank in range(world):
        layout = Layout(rows, 8, rank, world, drop_last)
        counts.append(layout.batches)
        mine = []
        for w in range(2):
            for j in worker_batches(layout.batches, 0, w, 2):
                batch = layout.rows_of(j, order)
                assert len(batch) == 8 or not drop_last
                mine.extend(batch.tolist())
        assert len(mine) == layout.rows_total()
        seen.extend(mine)
    assert len(seen) == len(set(seen))
    if drop_last:
        assert len(set(counts)) == 1
        assert len(seen) == rows // 8 // world * world * 8
    else:
        assert sorted(seen) == list(range(rows))
        assert max(counts) - min(counts) <= 1


def test_workers_deal_batches_in_round_robin_order_from_any_start() -> None:
    for start in range(0, 7):
        dealt = [list(worker_batches(10, start, w, 3)) for w in range(3)]
        merged = [b for i in range(4) for d in dealt if i < len(d) for b in [d[i]]]
        assert merged == list(range(start, 10))


def test_layout_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Layout(10, 0)
    with pytest.raises(ValueError):
        Layout(10, 2, rank=2, world_size=2)
    with pytest.raises(ValueError):
        worker_batches(5, 0, 3, 2)


# ------------------------------------------------------------------------------ plans


def test_plan_reads_the_rows_sql_sees(media) -> None:
    plan = table_plan(media)
    assert plan.rows == N
    got = read_all(plan)
    rows = media.execute("SELECT id, quality_score, prompt, emb, latent, image, video, meta FROM media").fetchall()
    assert [int(x) for x in got["id"]] == [r[0] for r in rows]
    assert np.allclose(np.asarray(got["quality_score"]), [r[1] for r in rows])
    assert got["prompt"] == [r[2] for r in rows]
    assert np.array_equal(np.stack(got["emb"]), np.stack([r[3] for r in rows]))
    latent = np.stack(got["latent"])
    assert latent.dtype == np.float16 and latent.shape == (N, 2, 3, 4)  # stored dtype, not SQL's float32
    assert np.array_equal(latent.astype(np.float32), np.stack([r[4] for r in rows]))
    assert [bytes(b) for b in got["image"]] == [bytes(r[5]) for r in rows]
    assert [bytes(b) for b in got["video"]] == [bytes(r[6]) for r in rows]
    assert got["meta"] == [r[7] for r in rows]


def test_filter_is_postgres_sql_with_parameters(media) -> None:
    plan = table_plan(media, filters=[("quality_score > %s AND prompt LIKE 'prompt 1%%'", [0.45])],
                      columns=["id"])
    want = [r[0] for r in media.execute(
        "SELECT id FROM media WHERE quality_score > 0.45 AND prompt LIKE 'prompt 1%' ORDER BY id").fetchall()]
    assert [int(x) for x in read_all(plan)["id"]] == want and want


def test_filters_combine_with_and_and_see_vectors_and_json(media) -> None:
    q = np.ones(16, dtype=np.float32)
    filters = [("cosine_similarity(emb, :q) > 0", {"q": q}), ("meta->>'i' IN ('3', '4', '60', '61', '110')", None),
               ("emb <-> %s < 100", [q.tolist()])]
    plan = table_plan(media, filters=filters, columns=["id"])
    want = [r[0] for r in media.execute(
        "SELECT id FROM media WHERE cosine_similarity(emb, :q) > 0 AND meta->>'i' IN ('3', '4', '60', '61', '110')"
        " ORDER BY id", {"q": q}).fetchall()]
    assert [int(x) for x in read_all(plan)["id"]] == want


def test_deleted_rows_never_appear(media) -> None:
    media.execute("DELETE FROM media WHERE id % 3 = 0")
    media.execute("UPDATE media SET prompt = 'changed' WHERE id = 1")
    got = read_all(table_plan(media, columns=["id", "prompt"]))
    ids = [int(x) for x in got["id"]]
    assert sorted(ids) == [i for i in range(N) if i % 3]
    assert got["prompt"][ids.index(1)] == "changed"
    filtered = read_all(table_plan(media, filters=[("quality_score >= 0", None)], columns=["id"]))
    assert sorted(int(x) for x in filtered["id"]) == sorted(ids)


def test_plan_is_pinned_to_its_commit(media) -> None:
    commit = media.head
    media.insert("media", _media_rows(1000, 30))
    media.execute("DELETE FROM media WHERE id < 10")
    plan = table_plan(media, commit=commit, filters=[("id >= 0", None)], columns=["id"])
    assert sorted(int(x) for x in read_all(plan)["id"]) == list(range(N))


def test_nulls_in_tensor_columns_are_refused_when_built(media) -> None:
    media.execute("INSERT INTO media (id, quality_score) VALUES (500, NULL)")
    with pytest.raises(reeldb.DataError, match='"emb" is NULL in 1') as info:
        table_plan(media, columns=["id", "emb"])
    assert 'filter("emb IS NOT NULL")' in str(info.value)
    with pytest.raises(reeldb.DataError, match='"quality_score"'):
        table_plan(media, columns=["quality_score"])
    plan = table_plan(media, columns=["id", "emb", "image"], filters=[("emb IS NOT NULL", None)])
    assert plan.rows == N
    listed = read_all(table_plan(media, columns=["id", "image"]))  # lists may hold NULL
    assert listed["image"][-1] is None and len(listed["id"]) == N + 1


def test_column_added_later_reads_its_fill(media) -> None:
    media.execute("ALTER TABLE media ADD COLUMN weight INT DEFAULT 5")
    media.execute("INSERT INTO media (id, weight, quality_score) VALUES (900, 2, 0.5)")
    got = read_all(table_plan(media, columns=["id", "weight"]))
    assert [int(w) for w in got["weight"]] == [5] * N + [2]


def test_unknown_things_are_clear_errors(media) -> None:
    with pytest.raises(reeldb.ProgrammingError, match='"nope"'):
        build_table_plan(media, media.head, "nope", [], None, {})
    with pytest.raises(reeldb.ProgrammingError, match="does not exist"):
        table_plan(media, filters=[("no_such_column > 1", None)])
    with pytest.raises(reeldb.ProgrammingError):
        table_plan(media, filters=[("id > 1; DROP TABLE media", None)])
    assert media.execute("SELECT count(*) FROM media").fetchone()[0] == N


def test_named_columns_is_a_superset_of_what_a_filter_uses() -> None:
    names = ["id", "Score", "prompt", "emb"]
    assert named_columns("ID > 3 AND \"Score\" < 1", names) == ["id", "Score"]
    assert named_columns("prompt = 'emb id'", names) == ["prompt"]  # not inside strings
    assert named_columns("score > 1", names) == []  # unquoted folds to lower case


def test_query_plan_keeps_the_result_and_filters_it(media) -> None:
    sql = "SELECT id, emb, image, meta, quality_score * 2 AS doubled FROM media WHERE id < 60 ORDER BY id DESC;"
    plan = build_query_plan(media, media.head, sql, [("doubled > 1", None)], None, {})
    got = read_all(plan)
    want = media.execute("SELECT id, emb, image, meta FROM media WHERE id < 60 AND quality_score * 2 > 1 "
                         "ORDER BY id DESC").fetchall()
    assert [int(x) for x in got["id"]] == [r[0] for r in want]
    assert np.array_equal(np.stack(got["emb"]), np.stack([r[1] for r in want]))
    assert [bytes(b) for b in got["image"]] == [bytes(r[2]) for r in want]
    assert got["meta"] == [r[3] for r in want]
    with pytest.raises(reeldb.ProgrammingError, match="two columns"):
        build_query_plan(media, media.head, "SELECT id, id FROM media", [], None, {})


# -------------------------------------------------------------- what is read, and what not


class RemoteLikeStore(LocalStore):
    """A local store that offers no local paths (as S3 would) and logs every byte
    range it serves, per key, including reads through ``open_input`` files."""

    def __init__(self, root) -> None:
        super().__init__(root, create=False)
        self.reads: list[tuple[str, int, int]] = []

    def local_path(self, key: str) -> str | None:
        return None

    def get(self, key: str) -> bytes:
        data = super().get(key)
        self.reads.append((key, 0, len(data)))
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = super().get_range(key, offset, length)
        self.reads.append((key, offset, len(data)))
        return data

    def open_input(self, key: str):
        return _LoggedFile(super().open_input(key), key, self.reads)

    def keys_read(self, prefix: str) -> set[str]:
        return {k for k, _, n in self.reads if k.startswith(prefix) and n}


class _LoggedFile(io.RawIOBase):
    def __init__(self, f, key: str, log: list) -> None:
        self._f, self._key, self._log = f, key, log

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b) -> int:
        pos = self._f.tell()
        n = self._f.readinto(b)
        self._log.append((self._key, pos, n))
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _column_chunks(path: str, column: str) -> list[tuple[int, int]]:
    """Byte ranges of a Parquet column's chunks (all leaves of a struct)."""
    meta = pq.ParquetFile(path).metadata
    out = []
    for rg in range(meta.num_row_groups):
        for i in range(meta.num_columns):
            c = meta.row_group(rg).column(i)
            if c.path_in_schema == column or c.path_in_schema.startswith(column + "."):
                start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
                out.append((start, start + c.total_compressed_size))
    return out


@pytest.mark.local_only
def test_columns_not_asked_for_are_never_read(media) -> None:
    root = media.catalog.store.root
    schema = {c.name: c.id for c in
              media.catalog.manifest(media.catalog.commit(media.head).tables["media"]).schema.columns}
    store = RemoteLikeStore(root)
    db = Connection(Catalog.open(store, create=False))
    try:
        plan = build_table_plan(db, db.head, "media", [("quality_score > 0.5", None)], ["emb", "image"], {})
        got = read_all(plan, store)
    finally:
        db.close()
    assert len(got["emb"]) == plan.rows == 48
    # matrix files: the asked-for column's, never the latent's
    assert store.keys_read("data/") - {k for k in store.keys_read("data/") if k.endswith(".parquet")} == \
        {k for k in store.keys_read("data/") if k.endswith(f".{schema['emb']}.mat")}
    assert not any(k.endswith(f".{schema['latent']}.mat") for k, _, _ in store.reads)
    # blob packs: exactly the selected images' bytes, though each pack holds the videos too
    sizes = [5000 + i for i in range(N) if (i % 10) / 10 > 0.5]
    assert sum(n for k, _, n in store.reads if k.startswith("blobs/")) == sum(sizes)
    # Parquet: no byte of an unasked column's chunks (video, prompt, meta, id), apart from
    # the file's tail, which pyarrow reads whole (64 KiB) to find the footer
    for key in store.keys_read("data/"):
        if not key.endswith(".parquet"):
            continue
        path = os.path.join(root, key)
        size = os.path.getsize(path)
        reads = [(off, n) for k, off, n in store.reads if k == key]
        for name in ("video", "prompt", "meta", "id"):
            for lo, hi in _column_chunks(path, f"c{schema[name]}"):
                for off, n in reads:
                    assert off + n == size or off + n <= lo or off >= hi, f"read {name} in {key}"
        covered = np.zeros(size, dtype=bool)
        for off, n in reads:
            covered[off : off + n] = True
        assert covered.sum() < size / 2


@pytest.mark.local_only
def test_remote_matrix_reads_only_the_rows_wanted(media) -> None:
    store = RemoteLikeStore(media.catalog.store.root)
    db = Connection(Catalog.open(store, create=False))
    try:
        plan = build_table_plan(db, db.head, "media", [], ["latent"], {})
        store.reads.clear()
        latent = Reader(plan, store).read(np.array([3, 4, 5, 70]))["latent"]
    finally:
        db.close()
    want = np.stack([r[0] for r in media.execute("SELECT latent FROM media WHERE id IN (3, 4, 5, 70)").fetchall()])
    assert np.array_equal(latent.astype(np.float32), want)
    mats = [(k, off, n) for k, off, n in store.reads if k.endswith(".mat")]
    row = 2 * 3 * 4 * 2
    assert sorted((off, n) for _, off, n in mats) == [(3 * row, 3 * row), (20 * row, row)]  # two runs


@pytest.mark.local_only
def test_one_run_of_rows_is_the_mapped_file_itself(media) -> None:
    plan = table_plan(media, columns=["emb", "latent"])
    reader = Reader(plan)
    got = reader.read(np.arange(10, 20))
    assert isinstance(got["emb"], np.memmap) and got["emb"].flags.writeable  # copy-on-write mapping
    got["emb"][:] = 0  # private to this process: the file keeps its values
    again = Reader(plan).read(np.arange(10, 20))["emb"]
    assert np.array_equal(again, np.stack([r[0] for r in media.execute(
        "SELECT emb FROM media WHERE id BETWEEN 10 AND 19 ORDER BY id").fetchall()]))
    shuffled = reader.read(np.array([5, 3, 60]))["latent"]  # several fragments: gathered
    assert not isinstance(shuffled, np.memmap) and shuffled.shape == (3, 2, 3, 4)
    reader.close()


class MappingSpyStore(LocalStore):
    """A local store that notes every key whose file path a reader asked for."""

    def __init__(self, root) -> None:
        super().__init__(root, create=False)
        self.paths: list[str] = []

    def local_path(self, key: str) -> str | None:
        self.paths.append(key)
        return super().local_path(key)


@pytest.mark.local_only
def test_local_reads_map_only_the_columns_asked_for(media) -> None:
    schema = {c.name: c.id for c in
              media.catalog.manifest(media.catalog.commit(media.head).tables["media"]).schema.columns}
    store = MappingSpyStore(media.catalog.store.root)
    db = Connection(Catalog.open(store, create=False))
    try:
        plan = build_table_plan(db, db.head, "media", [("quality_score > 0.5", None)], ["emb", "image"], {})
        store.paths.clear()
        got = read_all(plan, store)
    finally:
        db.close()
    mats = {k.rsplit(".", 2)[1] for k in store.paths if k.endswith(".mat")}
    assert mats == {str(schema["emb"])}
    assert any(k.startswith("blobs/") for k in store.paths)
    assert [bytes(b) for b in got["image"]] == [bytes([i % 251]) * (5000 + i) for i in range(N) if i % 10 > 5]


def test_batches_kept_by_the_caller_are_never_reused(media) -> None:
    """Batch buffers are recycled only once nothing refers to them any more."""
    plan = table_plan(media, filters=[("id % 2 = 0", None)], columns=["id", "latent", "image"])
    reader = Reader(plan)
    kept = reader.read(np.arange(0, 10))
    want = {"latent": kept["latent"].copy(), "image": [bytes(b) for b in kept["image"]]}
    view = kept["latent"][3]  # a view alone keeps its buffer
    del kept["latent"]
    for start in range(10, plan.rows - 10, 10):
        reader.read(np.arange(start, start + 10))
    assert np.array_equal(view, want["latent"][3])
    assert [bytes(b) for b in kept["image"]] == want["image"]
    reader.close()


@pytest.mark.local_only
def test_local_blobs_are_views_of_the_mapped_pack(media) -> None:
    """No copy on a local store: each value views the pack's mapping, privately."""
    plan = table_plan(media, columns=["image"])
    rows = [7, 2, 40]
    got = Reader(plan).read(np.array(rows))["image"]
    assert [bytes(v) for v in got] == [bytes([i % 251]) * (5000 + i) for i in rows]
    for v in got:
        base = v
        while base.base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap) and v.flags.writeable
        v[:] = 0  # copy-on-write: the file keeps its bytes
    again = Reader(plan).read(np.array(rows))["image"]
    assert [bytes(v) for v in again] == [bytes([i % 251]) * (5000 + i) for i in rows]
