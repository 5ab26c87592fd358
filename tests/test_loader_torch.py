"""The dataloader from PyTorch: the brief's training loop as written, batch layout,
decoding, shuffles per (seed, epoch), resume, sharding over ranks and workers, torch
DataLoaders under fork and spawn, devices and progress."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import reeldb  # noqa: E402
from reeldb.loader import TorchLoader  # noqa: E402
from reeldb.media.synth import (  # noqa: E402
    embed_text,
    make_prompts,
    read_frame_number,
    render_clip,
    render_clip_counting,
    render_image,
)

N = 37  # rows of the brief's table: batches of 4 leave a short last one


# --------------------------------------------------------------------------- fixtures


def brief_rows(start: int, n: int, clip: bytes, image: bytes) -> dict:
    prompts = make_prompts(start + n, seed=5)[start:]
    return {
        "prompt": prompts,
        "prompt_embedding": np.stack([embed_text(p) for p in prompts]),
        "conditioning_image": [image] * n,
        "output_video": [clip] * n,
        "model_version": ["seedance-v2"] * n,
        "cfg_scale": [7.5] * n,
        "num_frames": [24] * n,
        "fps": [24] * n,
        "quality_score": [((start + i) * 7 % N) / N for i in range(n)],
    }


@pytest.fixture(scope="module")
def media_bytes() -> tuple[bytes, bytes]:
    return render_clip("a red fox", frames=24, fps=24, size=(64, 48)), render_image("a red fox", size=(40, 30))


@pytest.fixture
def gen(brief_schema, media_bytes) -> reeldb.Connection:
    """The brief's ``generations`` table (its own CREATE TABLE) with N rows in 3 fragments,
    in ``tmp_path / "db"``."""
    for start, n in ((0, 15), (15, 15), (30, N - 30)):
        brief_schema.insert("generations", brief_rows(start, n, *media_bytes))
    return brief_schema


def ids_of(batches) -> list[int]:
    return [int(i) for b in batches for i in b["id"]]


def all_ids(db) -> list[int]:
    """Every id in table order (SERIAL values come in blocks: not 1..N)."""
    return [r[0] for r in db.execute("SELECT id FROM generations").fetchall()]


class Model:
    """Enough of a model for the brief's loop: a projection of the embedding, and the
    media bytes it was handed."""

    def __init__(self) -> None:
        self.proj = torch.nn.Linear(4096, 8)
        self.steps = 0
        self.rows = 0

    def train_step(self, batch: dict) -> torch.Tensor:
        emb = batch["prompt_embedding"]
        assert emb.dtype == torch.float32 and emb.shape[1:] == (4096,)
        assert len(batch["conditioning_image"]) == len(batch["output_video"]) == len(emb)
        loss = self.proj(emb).pow(2).mean()
        loss.backward()
        self.steps += 1
        self.rows += len(emb)
        return loss


# ------------------------------------------------------------------------ the brief


def test_the_brief_training_loop_runs_as_written(gen, media_bytes) -> None:
    db, model = gen, Model()
    # Stream curated data directly to GPU - no S3 download, no deserialization
    train_loader = (db.dataloader("generations")
                    .filter("quality_score > 0.85")
                    .columns(["prompt_embedding", "conditioning_image", "output_video"])
                    .batch_size(4)
                    .to_torch())
    for batch in train_loader:
        loss = model.train_step(batch)
        assert torch.isfinite(loss)
    want = db.execute("SELECT count(*) FROM generations WHERE quality_score > 0.85").fetchone()[0]
    assert model.rows == want and want > 4 and model.steps == -(-want // 4)
    assert set(batch) == {"prompt_embedding", "conditioning_image", "output_video"}
    clip, image = media_bytes
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.uint8 and v.dim() == 1 for v in batch["output_video"])
    assert bytes(batch["output_video"][0].numpy()) == clip  # the stored bytes: no deserialization
    assert bytes(batch["conditioning_image"][0].numpy()) == image


def test_batch_layout(gen) -> None:
    loader = (gen.dataloader("generations")
              .columns(["id", "prompt", "prompt_embedding", "quality_score", "num_frames", "human_preference",
                        "created_at"])
              .batch_size(8).to_torch())
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    b = batches[0]
    assert b["prompt_embedding"].shape == (8, 4096) and b["prompt_embedding"].dtype == torch.float32
    assert b["id"].dtype == torch.int32 and b["num_frames"].dtype == torch.int32
    assert b["quality_score"].dtype == torch.float64  # FLOAT is double precision
    assert isinstance(b["prompt"], list) and isinstance(b["prompt"][0], str)
    assert b["human_preference"] == [None] * 8 and len(b["created_at"]) == 8
    assert [len(x["id"]) for x in batches] == [8, 8, 8, 8, 5]
    rows = gen.execute("SELECT id, prompt, prompt_embedding FROM generations").fetchall()
    assert ids_of(batches) == [r[0] for r in rows]
    assert [p for x in batches for p in x["prompt"]] == [r[1] for r in rows]
    assert np.array_equal(torch.cat([x["prompt_embedding"] for x in batches]).numpy(),
                          np.stack([r[2] for r in rows]))


def test_builder_methods_chain_on_one_object(gen) -> None:
    dl = gen.dataloader("generations")
    assert dl.filter("id > 0") is dl and dl.columns(["id"]) is dl and dl.batch_size(2) is dl
    assert dl.shuffle(seed=1) is dl and dl.decode({}) is dl and dl.transform(_add_pid) is dl
    assert dl.num_workers(0) is dl and dl.prefetch(3) is dl and dl.drop_last() is dl
    assert dl.pin_memory(False) is dl and dl.progress(False) is dl
    assert isinstance(dl.to_torch(), TorchLoader)


def test_builder_refuses_bad_input(gen) -> None:
    dl = gen.dataloader("generations")
    with pytest.raises(reeldb.ProgrammingError, match='"nope"'):
        dl.columns(["id", "nope"])
    with pytest.raises(reeldb.ProgrammingError, match="exactly one"):
        gen.dataloader()
    with pytest.raises(reeldb.ProgrammingError, match='"missing"'):
        gen.dataloader("missing")
    with pytest.raises(ValueError):
        dl.batch_size(0)
    with pytest.raises(ValueError, match="unknown keys"):
        dl.decode({"output_video": {"fps": 3}})
    with pytest.raises(ValueError, match="nothing to decode"):
        dl.decode({"prompt_embedding": {}}).to_torch()


# ------------------------------------------------------------------- shuffle and resume


def test_shuffle_is_deterministic_per_seed_and_epoch(gen) -> None:
    def epochs(seed: int, n: int = 2) -> list[list[int]]:
        loader = gen.dataloader("generations").columns(["id"]).batch_size(5).shuffle(seed=seed).to_torch()
        return [ids_of(loader) for _ in range(n)]

    a, b = epochs(11), epochs(11)
    assert a == b  # same seed: same order, epoch by epoch
    assert a[0] != a[1]  # a new order every epoch
    assert sorted(a[0]) == sorted(a[1]) == all_ids(gen)
    assert epochs(12)[0] != a[0]
    loader = gen.dataloader("generations").columns(["id"]).batch_size(5).shuffle(seed=11).to_torch()
    loader.set_epoch(1)
    assert ids_of(loader) == a[1] and loader.epoch == 2
    buffered = gen.dataloader("generations").columns(["id"]).shuffle(seed=2, buffer=8).to_torch()
    order = ids_of(buffered)
    assert sorted(order) == all_ids(gen) and order != sorted(order)


def test_resume_mid_epoch_repeats_and_skips_nothing(gen) -> None:
    def make(workers: int = 0) -> TorchLoader:
        return (gen.dataloader("generations").columns(["id"]).batch_size(4).shuffle(seed=3)
                .num_workers(workers, "fork").to_torch())

    reference = make()
    full = [ids_of(reference), ids_of(reference)]
    first = make()
    seen = []
    for i, batch in enumerate(first):
        seen.extend(int(x) for x in batch["id"])
        if i == 3:
            break
    state = first.state_dict()
    assert state["epoch"] == 0 and state["batches"] == 4
    resumed = make(workers=2)  # any number of workers
    resumed.load_state_dict(pickle.loads(pickle.dumps(state)))
    rest = ids_of(resumed)
    assert seen + rest == full[0]
    assert ids_of(resumed) == full[1]  # and the next epoch continues as it would have
    assert ids_of(first) == rest  # iterating again after a break resumes the epoch too
    other = gen.dataloader("generations").columns(["id"]).batch_size(5).shuffle(seed=3).to_torch()
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(state)


# ----------------------------------------------------------------------- snapshots


def test_epoch_is_pinned_while_writers_append(gen, media_bytes, tmp_path) -> None:
    before = all_ids(gen)
    loader = gen.dataloader("generations").columns(["id"]).batch_size(4).shuffle(seed=1).to_torch()
    want = ids_of(gen.dataloader("generations").columns(["id"]).batch_size(4).shuffle(seed=1).to_torch())
    it = iter(loader)
    got = ids_of([next(it)])
    writer = reeldb.connect(tmp_path / "db")
    writer.insert("generations", brief_rows(N, 20, *media_bytes))
    writer.execute("DELETE FROM generations WHERE id <= 10")
    writer.close()
    got += ids_of(it)
    assert got == want
    assert sorted(ids_of(loader)) == before  # the next epoch too
    assert gen.dataloader("generations").to_torch().rows == N + 20 - 10  # a new loader sees the writes


def test_deleted_rows_never_appear(gen) -> None:
    gen.execute("DELETE FROM generations WHERE id % 4 = 0")
    got = ids_of(gen.dataloader("generations").columns(["id"]).batch_size(3).shuffle(seed=0).to_torch())
    assert sorted(got) == [i for i in all_ids(gen) if i % 4]


# ------------------------------------------------------------------------- sharding


def test_ranks_times_workers_are_disjoint_and_complete(gen, monkeypatch) -> None:
    for drop_last in (False, True):
        per_rank = []
        for rank in range(2):  # two simulated ranks, as torchrun sets them
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", "2")
            dl = (gen.dataloader("generations").columns(["id"]).batch_size(4).shuffle(seed=9)
                  .num_workers(2, "fork"))
            loader = dl.drop_last().to_torch() if drop_last else dl.to_torch()
            got = [ids_of([b]) for b in loader]
            assert len(got) == len(loader)
            per_rank.append([i for b in got for i in b])
        assert not set(per_rank[0]) & set(per_rank[1])
        everything = per_rank[0] + per_rank[1]
        assert len(everything) == len(set(everything))
        if drop_last:
            assert len(per_rank[0]) == len(per_rank[1]) == 16
        else:
            assert sorted(everything) == all_ids(gen)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_torch_dataloader_with_two_workers(gen, method) -> None:
    loader = gen.dataloader("generations").columns(["id", "prompt_embedding"]).batch_size(4).shuffle(seed=4).to_torch()
    dl = torch.utils.data.DataLoader(loader, batch_size=None, num_workers=2, multiprocessing_context=method)
    assert len(dl) == len(loader) == 10
    got = list(dl)
    assert ids_of(got) == ids_of(loader)  # same batches, same order as iterating it directly
    assert all(b["prompt_embedding"].shape[1:] == (4096,) for b in got)


def _add_pid(batch: dict) -> dict:
    batch["pid"] = torch.full((len(batch["id"]),), os.getpid())
    batch["id2"] = batch["id"] * 2
    return batch


@pytest.mark.slow
def test_own_workers_spawned_with_a_transform(gen) -> None:
    loader = (gen.dataloader("generations").columns(["id"]).batch_size(4).transform(_add_pid)
              .num_workers(2, "spawn").prefetch(1).to_torch())
    got = list(loader)
    assert ids_of(got) == all_ids(gen)
    assert all(torch.equal(b["id2"], b["id"] * 2) for b in got)
    pids = {int(p) for b in got for p in b["pid"]}
    assert len(pids) == 2 and os.getpid() not in pids  # made in two worker processes


def test_pickles_without_the_database(gen) -> None:
    loader = gen.dataloader("generations").columns(["id", "prompt_embedding"]).batch_size(6).to_torch()
    blob = pickle.dumps(loader)
    assert b"duckdb" not in blob.lower()
    copy = pickle.loads(blob)
    assert copy.commit == loader.commit
    want = all_ids(gen)
    gen.close()  # the copy re-opens the store from the plan's URL
    assert ids_of(copy) == want


# -------------------------------------------------------------------------- decoding


@pytest.fixture
def clips(tmp_path) -> reeldb.Connection:
    db = reeldb.connect(tmp_path / "clips")
    db.execute("CREATE TABLE clips (id INT, v VIDEO, img IMAGE, raw BYTEA, t TENSOR(float32))")
    counting = [render_clip_counting(frames=40, fps=24, size=(64, 48), gop=8),
                render_clip_counting(frames=10, fps=24, size=(64, 48), gop=8)]
    image = render_image("a blue whale", size=(40, 30))
    db.insert("clips", {"id": list(range(6)), "v": [counting[0]] * 5 + [counting[1]], "img": [image] * 6,
                        "raw": [counting[0]] * 6,
                        "t": [np.full((2 + i % 2, 3), i, np.float32) for i in range(6)]})
    yield db
    db.close()


def test_decode_video_and_image_channels_first(clips) -> None:
    loader = (clips.dataloader("clips").filter("id < 5").columns(["v", "img", "raw"])
              .decode({"v": {"start": 4, "frames": 5, "stride": 3},
                       "img": {"size": (16, 20)},
                       "raw": {"frames": 2, "size": (24, 32)}})  # BYTEA holding an MP4: decoded as video
              .batch_size(5).to_torch())
    (batch,) = list(loader)
    v = batch["v"]
    assert v.shape == (5, 5, 3, 48, 64) and v.dtype == torch.uint8
    assert [read_frame_number(f.numpy()) for f in v[0]] == [4, 7, 10, 13, 16]
    assert batch["img"].shape == (5, 3, 16, 20) and batch["img"].dtype == torch.uint8
    assert batch["raw"].shape == (5, 2, 3, 24, 32)


def test_random_start_is_seeded_by_epoch(clips) -> None:
    loader = (clips.dataloader("clips").filter("id < 5").columns(["v"])
              .decode({"v": {"start": "random", "frames": 3, "stride": 2}}).batch_size(5).shuffle(seed=1).to_torch())

    def starts() -> list[int]:
        (b,) = list(loader)
        frames = [[read_frame_number(f.numpy()) for f in clip] for clip in b["v"]]
        assert all(f == [f[0], f[0] + 2, f[0] + 4] for f in frames) and all(f[0] <= 35 for f in frames)
        return [f[0] for f in frames]

    first, second = starts(), starts()
    loader.set_epoch(0)
    assert starts() == first and first != second


def test_short_clips_come_as_a_list_or_padded_with_a_mask(clips) -> None:
    base = clips.dataloader("clips").columns(["id", "v"]).batch_size(6)
    (listed,) = list(base.decode({"v": {"frames": 16}}).to_torch())
    assert isinstance(listed["v"], list) and [len(x) for x in listed["v"]] == [16] * 5 + [10]
    (padded,) = list(base.decode({"v": {"frames": 16, "pad": True}}).to_torch())
    assert padded["v"].shape == (6, 16, 3, 48, 64)
    assert padded["v_mask"].tolist() == [[True] * 16] * 5 + [[True] * 10 + [False] * 6]
    assert int(padded["v"][5, 10:].sum()) == 0


def test_any_shape_tensors_are_arrays_listed_or_padded(clips) -> None:
    base = clips.dataloader("clips").columns(["t"]).batch_size(6)
    (listed,) = list(base.to_torch())
    assert [tuple(x.shape) for x in listed["t"]] == [(2, 3), (3, 3)] * 3
    (padded,) = list(base.decode({"t": {"pad": True}}).to_torch())
    assert padded["t"].shape == (6, 3, 3) and padded["t_mask"].sum(1).tolist() == [2, 3] * 3
    (same,) = list(clips.dataloader("clips").filter("id % 2 = 0").columns(["t"]).batch_size(6).to_torch())
    assert same["t"].shape == (3, 2, 3)  # stacked when the shapes agree


# ------------------------------------------------------------------- queries and devices


def test_a_query_loader_with_a_filter(gen) -> None:
    sql = """SELECT id, prompt, cosine_similarity(prompt_embedding, :q) AS relevance
             FROM generations ORDER BY relevance DESC LIMIT 10"""
    q = embed_text("a golden retriever")
    with pytest.raises(reeldb.ProgrammingError):
        gen.dataloader(sql=sql).to_torch()  # :q needs a value, so a query loader takes literal SQL
    sql = sql.replace(":q", "'[" + ",".join(f"{x:.6f}" for x in q) + "]'")
    loader = gen.dataloader(sql=sql).filter("id % 2 = %s", [1]).batch_size(4).to_torch()
    want = [r for r in gen.execute(sql).fetchall() if r[0] % 2 == 1]
    got = list(loader)
    assert ids_of(got) == [r[0] for r in want]
    assert np.allclose(torch.cat([b["relevance"] for b in got]).numpy(), [r[2] for r in want])


def test_cuda_without_a_gpu_says_so(gen) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        gen.dataloader("generations").to_torch(device="cuda")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = gen.dataloader("generations").columns(["id"]).pin_memory().to_torch(device="cpu")
    assert any("pin_memory" in str(w.message) for w in caught)
    assert ids_of(loader) == all_ids(gen)


def test_progress_shows_rows_and_megabytes(gen, capsys) -> None:
    loader = gen.dataloader("generations").columns(["prompt_embedding"]).batch_size(8).progress().to_torch()
    assert len(list(loader)) == 5
    err = capsys.readouterr().err
    assert "generations epoch 0" in err and f"{N}/{N}" in err and "rows/s" in err and "MB/s" in err


def test_nulls_in_tensor_columns_are_refused_at_build(gen) -> None:
    gen.execute("INSERT INTO generations (prompt) VALUES ('no embedding')")
    with pytest.raises(reeldb.DataError, match="prompt_embedding"):
        gen.dataloader("generations").columns(["prompt_embedding"]).to_torch()
    loader = gen.dataloader("generations").filter("prompt_embedding IS NOT NULL").columns(["prompt_embedding"])
    assert loader.to_torch().rows == N
