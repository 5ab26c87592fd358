"""The product brief's examples, run as written (with ``reeldb`` for ``deeplake``): the
schema, ``log_generation``, the curation query and the branching example. The brief's
dataloader example belongs to another issue and is not exercised here."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import reeldb
from reeldb.media.synth import embed_text, make_prompts, render_clip, render_image

# --- the brief, verbatim ----------------------------------------------------------------------


def create_schema(db):
    db.execute("""
CREATE TABLE IF NOT EXISTS generations (
id SERIAL PRIMARY KEY,
prompt TEXT,
prompt_embedding VECTOR(4096),
conditioning_image BLOB,
output_video BLOB,
model_version TEXT,
cfg_scale FLOAT,
num_frames INT,
fps INT,
quality_score FLOAT,
human_preference JSONB,
created_at TIMESTAMP DEFAULT NOW()
)
""")


def log_generation(db, prompt, embedding, cond_img, video, config, score):
    db.execute("""
INSERT INTO generations
(prompt, prompt_embedding, conditioning_image, output_video,
model_version, cfg_scale, num_frames, fps, quality_score)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
""", [prompt, embedding, cond_img, video,
      config["model"], config["cfg"], config["frames"], config["fps"], score])


CURATION_QUERY = """
-- Find high-quality generations similar to a target prompt for fine-tuning
SELECT prompt, output_video, quality_score,
cosine_similarity(prompt_embedding, :target_vec) AS relevance
FROM generations
WHERE quality_score > 0.85
AND model_version = 'seedance-v2'
AND num_frames >= 48
ORDER BY relevance DESC
LIMIT 500;
"""

MODELS = ("seedance-v2", "veo-3", "seedance-v1")
FRAMES = (24, 48, 96)


# --- a small but real pipeline -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips() -> dict[int, bytes]:
    """Real MP4s with the frame counts the configs claim (tiny frames keep it fast)."""
    return {n: render_clip(f"clip with {n} frames", frames=n, fps=24, size=(32, 32)) for n in FRAMES}


def generations(n: int = 30) -> list[dict]:
    """Deterministic generation records: prompt, embedding, config, score."""
    rng = np.random.default_rng(2024)
    out = []
    for i, prompt in enumerate(make_prompts(n, seed=3)):
        out.append({
            "prompt": prompt,
            "embedding": embed_text(prompt),
            "config": {"model": MODELS[i % 3], "cfg": 7.5, "frames": FRAMES[(i // 3) % 3], "fps": 24},
            "score": round(float(rng.uniform(0.75, 1.0)), 4),
        })
    return out


def ingest(db, records: list[dict], clips: dict[int, bytes]) -> None:
    for r in records:
        cond_img = render_image(r["prompt"], size=(24, 16))
        log_generation(db, r["prompt"], r["embedding"], cond_img, clips[r["config"]["frames"]],
                       r["config"], r["score"])


def expected_curation(records: list[dict], target: np.ndarray) -> list[tuple[str, float, float]]:
    keep = [r for r in records if r["score"] > 0.85 and r["config"]["model"] == "seedance-v2"
            and r["config"]["frames"] >= 48]
    scored = []
    for r in keep:
        e = r["embedding"].astype(np.float64)
        rel = float(e @ target / (np.linalg.norm(e) * np.linalg.norm(target)))
        scored.append((r["prompt"], r["score"], rel))
    return sorted(scored, key=lambda x: -x[2])[:500]


def target_vector(prompt: str) -> np.ndarray:
    """The prompt's embedding plus a little fixed noise, so no two rows tie on relevance."""
    noise = np.random.default_rng(5).normal(size=4096) * 0.01
    return embed_text(prompt).astype(np.float64) + noise


# --- the tests ----------------------------------------------------------------------------------


def test_brief_pipeline(tmp_path, clips) -> None:
    db = reeldb.connect(str(tmp_path / "video-gen"))
    create_schema(db)
    records = generations()
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=5)
    ingest(db, records, clips)

    got = db.execute("SELECT id, prompt, created_at, human_preference FROM generations ORDER BY id").fetchall()
    assert [r[1] for r in got] == [r["prompt"] for r in records]
    assert [r[0] for r in got] == list(range(1, len(records) + 1))
    assert all(isinstance(r[2], dt.datetime) and r[2] >= start for r in got)
    assert all(r[3] is None for r in got)

    target = target_vector("A golden retriever running on a beach at sunset")
    rows = db.execute(CURATION_QUERY, {"target_vec": target}).fetchall()
    want = expected_curation(records, target)
    assert len(want) >= 3  # the data really exercises the filter and the ordering
    assert [r[0] for r in rows] == [w[0] for w in want]
    assert [r[2] for r in rows] == pytest.approx([w[1] for w in want])
    assert [r[3] for r in rows] == pytest.approx([w[2] for w in want], abs=1e-5)
    by_prompt = {r["prompt"]: r for r in records}
    for prompt, video, _, _ in rows:
        assert isinstance(video, reeldb.Blob)
        assert bytes(video) == clips[by_prompt[prompt]["config"]["frames"]]

    # the same query through the other parameter styles
    positional = CURATION_QUERY.replace(":target_vec", "%s")
    assert db.execute(positional, [target.astype(np.float32)]).fetchall() == [tuple(r) for r in rows]
    db.close()


def evaluate_model(db, model_version: str, clips: dict[int, bytes]) -> None:
    """Stand-in for the brief's evaluation: log the new model's (better) generations and
    re-score what it regenerated."""
    for i, prompt in enumerate(make_prompts(5, seed=99)):
        log_generation(db, prompt, embed_text(prompt), render_image(prompt, size=(24, 16)), clips[48],
                       {"model": model_version, "cfg": 6.0, "frames": 48, "fps": 24}, 0.97 + i * 0.005)
    db.execute("UPDATE generations SET quality_score = 0.99 WHERE model_version = 'seedance-v1'")


def test_brief_branching_example(tmp_path, clips) -> None:
    path = str(tmp_path / "video-gen")
    db = reeldb.connect(path)
    create_schema(db)
    records = generations(12)
    ingest(db, records, clips)
    main_avg = float(np.mean([r["score"] for r in records]))
    model_v2 = "seedance-v3-temporal-attention"

    # Test a new architecture without touching production data
    db.branch("experiment/temporal-attention-v2")
    # Run evaluation, store results on the branch
    evaluate_model(db, model_v2, clips)
    # Compare branches, merge if improved
    results = db.execute("""
SELECT AVG(quality_score) FROM generations
""").fetchone()

    assert db.current_branch == "experiment/temporal-attention-v2"
    branch_avg = results[0]
    assert branch_avg > main_avg
    (on_main,) = db.execute("SELECT AVG(quality_score) FROM main.generations").fetchone()
    assert on_main == pytest.approx(main_avg)
    assert branch_avg != pytest.approx(on_main)
    # both sides in one query
    diff = db.execute("SELECT (SELECT AVG(quality_score) FROM generations) - "
                      "(SELECT AVG(quality_score) FROM main.generations)").fetchone()[0]
    assert diff == pytest.approx(branch_avg - on_main)
    assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == len(records) + 5
    assert db.execute("SELECT count(*) FROM main.generations").fetchone()[0] == len(records)

    # production (main) is untouched, seen from another connection and after checkout
    prod = reeldb.connect(path)
    assert prod.current_branch == "main"
    assert prod.execute("SELECT AVG(quality_score) FROM generations").fetchone()[0] == pytest.approx(main_avg)
    assert prod.execute("SELECT count(*) FROM generations WHERE model_version = %s", [model_v2]).fetchone()[0] == 0
    (from_main,) = prod.execute(
        'SELECT AVG(quality_score) FROM "experiment/temporal-attention-v2".generations').fetchone()
    assert from_main == pytest.approx(branch_avg)
    prod.close()
    db.checkout("main")
    assert db.execute("SELECT AVG(quality_score) FROM generations").fetchone()[0] == pytest.approx(main_avg)
    db.close()


def test_brief_schema_bulk_ingest_and_preferences(brief_schema, clips, png_bytes) -> None:
    db = brief_schema
    records = generations(40)
    db.insert("generations", {
        "prompt": [r["prompt"] for r in records],
        "prompt_embedding": np.stack([r["embedding"] for r in records]),
        "conditioning_image": [png_bytes] * len(records),
        "output_video": [clips[r["config"]["frames"]] for r in records],
        "model_version": [r["config"]["model"] for r in records],
        "cfg_scale": [r["config"]["cfg"] for r in records],
        "num_frames": [r["config"]["frames"] for r in records],
        "fps": [r["config"]["fps"] for r in records],
        "quality_score": [r["score"] for r in records],
    })
    assert db.execute("SELECT count(*), count(DISTINCT id), count(created_at) FROM generations").fetchone() == (
        40, 40, 40)
    db.execute("UPDATE generations SET human_preference = %s WHERE id <= 3",
               [{"rater": "ann", "preferred": True, "notes": ["smooth motion"]}])
    db.execute("""UPDATE generations SET human_preference = '{"rater": "bob", "preferred": false}' """
               "WHERE id = 4")
    assert db.execute("SELECT id FROM generations WHERE human_preference->>'rater' = 'bob'").fetchall() == [(4,)]
    assert db.execute("""SELECT count(*) FROM generations WHERE human_preference @> '{"preferred": true}'"""
                      ).fetchone() == (3,)

    target = target_vector(records[7]["prompt"])
    rows = db.execute(CURATION_QUERY, {"target_vec": target}).fetchall()
    want = expected_curation(records, target)
    assert len(want) >= 3
    assert [r[0] for r in rows] == [w[0] for w in want]
    # the embeddings came back exactly as stored
    stored = db.execute("SELECT prompt_embedding FROM generations ORDER BY id").numpy()["prompt_embedding"]
    assert stored.shape == (40, 4096) and stored.dtype == np.float32
    np.testing.assert_array_equal(stored, np.stack([r["embedding"] for r in records]))
