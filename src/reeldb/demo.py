"""The product brief's video-generation pipeline, end to end, on a local reeldb database.

Run ``python -m reeldb.demo [PATH]`` (default ``./demo.reeldb``, recreated each run).
It renders a few hundred real MP4 clips and PNG conditioning images, ingests them with
the brief's own ``log_generation`` function, runs the brief's curation query, caches
latents for the curated set, branches for an experiment, writes evaluation results on
the branch, compares both branches in one SQL query, diffs them, merges the experiment
back when it scored higher and streams the curated rows, clips decoded, into a PyTorch
training loop with the brief's dataloader. Every step prints its time.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

EXPERIMENT = "experiment/temporal-attention-v2"
MODELS = ("seedance-v2", "veo-3", "kling-1.6")
FRAME_COUNTS = (24, 48, 72)
FPS = 24

# The brief's schema, verbatim.
SCHEMA = """
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
"""

# Intermediate diffusion state, added the way a team would add it later: schema evolution.
ADD_LATENT = "ALTER TABLE generations ADD COLUMN latent TENSOR(float16, 4, 8, 8)"

# The brief's curation query, verbatim.
CURATION = """
SELECT prompt, output_video, quality_score,
cosine_similarity(prompt_embedding, :target_vec) AS relevance
FROM generations
WHERE quality_score > 0.85
AND model_version = 'seedance-v2'
AND num_frames >= 48
ORDER BY relevance DESC
LIMIT 500
"""

COMPARE = f"""
SELECT 'main' AS branch, AVG(quality_score) AS avg_quality, COUNT(*) AS n
FROM main.generations
UNION ALL
SELECT 'experiment', AVG(quality_score), COUNT(*)
FROM "{EXPERIMENT}".generations
"""


def log_generation(db: Any, prompt: str, embedding: Any, cond_img: bytes, video: bytes,
                   config: dict[str, Any], score: float) -> None:
    """The brief's ingestion function, unchanged: one INSERT per generated clip."""
    db.execute("""
    INSERT INTO generations
    (prompt, prompt_embedding, conditioning_image, output_video,
    model_version, cfg_scale, num_frames, fps, quality_score)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    """, [prompt, embedding, cond_img, video,
          config["model"], config["cfg"], config["frames"], config["fps"], score])


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time one step of the demo and print it, so the cost of each operation is visible."""
    start = time.perf_counter()
    yield
    print(f"{time.perf_counter() - start:7.2f} s  {name}", flush=True)


def _progress(items: Sequence[Any], desc: str) -> Iterator[Any]:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable
        yield from items
        return
    yield from tqdm(items, desc=desc, unit="clip", leave=False, file=sys.stderr)


def _nbytes(value: Any) -> int:
    return len(value) if value is not None else 0


def _remove(path: Path) -> None:
    """Delete the previous demo database, refusing paths that are clearly not one."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve() or (
        resolved == cwd or resolved in cwd.parents
    ):
        raise SystemExit(f"refusing to delete {path}: pass a database folder such as ./demo.reeldb")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _short(text: str, width: int = 58) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run(path: str | Path = "./demo.reeldb", rows: int = 300, seed: int = 0) -> dict[str, Any]:
    """Build the demo database at ``path`` and run the whole pipeline; returns a summary."""
    import reeldb
    from reeldb.media import probe_video, synth

    path = Path(path)
    rng = random.Random(seed)
    total = time.perf_counter()
    print(f"reeldb demo: {rows} generations into {path}")

    with step(f"remove old {path}"):
        _remove(path)

    with step("connect"):
        db = reeldb.connect(str(path))

    with step("create table generations (brief schema)"):
        db.execute(SCHEMA)

    prompts = synth.make_prompts(rows, seed)
    configs = [
        {"model": rng.choice(MODELS), "cfg": round(rng.uniform(3.0, 12.0), 1),
         "frames": rng.choice(FRAME_COUNTS), "fps": FPS}
        for _ in prompts
    ]
    # Skewed towards good clips, as a filtered production log would be.
    scores = [round(min(1.0, rng.betavariate(5, 1.6)), 4) for _ in prompts]

    generated: list[tuple[str, np.ndarray, bytes, bytes]] = []
    with step(f"render {rows} MP4 clips + PNG conditioning images + embeddings"):
        for i, prompt in enumerate(_progress(prompts, "render")):
            generated.append((
                prompt,
                synth.embed_text(prompt),
                synth.render_image(prompt),
                synth.render_clip(prompt, frames=configs[i]["frames"], fps=FPS, seed=seed + i),
            ))
    video_mb = sum(len(g[3]) for g in generated) / 1e6

    with (
        step(f"ingest {rows} generations with log_generation() ({video_mb:.1f} MB of video)"),
        db.transaction(message=f"ingest {rows} generations"),
    ):
        for (prompt, emb, img, video), config, score in zip(
            _progress(generated, "ingest"), configs, scores
        ):
            log_generation(db, prompt, emb, img, video, config, score)

    with step("count rows per model"):
        per_model = db.execute(
            "SELECT model_version, COUNT(*), AVG(quality_score) "
            "FROM generations GROUP BY model_version ORDER BY model_version"
        ).fetchall()
    for model, n, avg in per_model:
        print(f"           {model:<12} {n:>4} rows  avg quality {float(avg):.3f}")

    target = "A golden retriever running on a beach at sunset"
    with step(f"curation query (cosine_similarity to {target!r})"):
        curated = db.execute(CURATION, {"target_vec": synth.embed_text(target)}).fetchall()
    print(f"           {len(curated)} rows match; top 5:")
    for prompt, video, score, relevance in curated[:5]:
        print(f"           {relevance:6.3f}  q={score:.3f}  {_nbytes(video):>6} B  {_short(prompt)}")
    if curated:
        top_video = curated[0][1]
        with step("probe the top clip's video (PyAV, from the stored bytes)"):
            info = probe_video(bytes(top_video))
        print(f"           {info['codec']} {info['width']}x{info['height']} "
              f"{info['frames']} frames @ {info['fps']:g} fps, {info['duration']:.2f} s")

    with step("ALTER TABLE ADD COLUMN latent TENSOR(float16, 4, 8, 8)"):
        db.execute(ADD_LATENT)

    with step("cache latents for the curated training set (executemany UPDATE)"):
        ids = [r[0] for r in db.execute(
            "SELECT id FROM generations WHERE quality_score > 0.85 "
            "AND model_version = 'seedance-v2' AND num_frames >= 48 ORDER BY id"
        ).fetchall()]
        latent_rng = np.random.default_rng(seed)
        if ids:
            db.executemany(
                "UPDATE generations SET latent = %s WHERE id = %s",
                [(latent_rng.standard_normal((4, 8, 8)).astype(np.float16), i) for i in ids],
            )
        cached = db.execute(
            "SELECT COUNT(*) FROM generations WHERE latent IS NOT NULL"
        ).fetchone()[0]
    print(f"           {cached} latents stored")

    with step(f"branch {EXPERIMENT!r}"):
        db.branch(EXPERIMENT)
    print(f"           current branch: {db.current_branch}")

    with (
        step("evaluate model v2 on the branch (UPDATE scores, INSERT new generations)"),
        db.transaction(message="temporal-attention-v2 evaluation"),
    ):
        db.execute(
            "UPDATE generations SET quality_score = LEAST(1.0, quality_score + 0.04) "
            "WHERE num_frames >= 48"
        )
        db.execute(
            "UPDATE generations SET human_preference = %s WHERE quality_score > 0.95",
            [{"preferred": "v2", "raters": 3, "agreement": 0.67}],
        )
        for i, prompt in enumerate(synth.make_prompts(8, seed + 1)):
            log_generation(
                db, prompt, synth.embed_text(prompt), synth.render_image(prompt),
                synth.render_clip(prompt, frames=48, fps=FPS, seed=10_000 + i),
                {"model": "seedance-v2-ta", "cfg": 7.5, "frames": 48, "fps": FPS},
                round(rng.uniform(0.85, 0.99), 4),
            )

    with step("compare branches in one SQL query"):
        comparison = db.execute(COMPARE).fetchall()
    for branch, avg, n in comparison:
        print(f"           {branch:<12} avg quality {float(avg):.4f} over {n} rows")

    with step("checkout main (production data untouched)"):
        db.checkout("main")
        main_rows = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    print(f"           main still has {main_rows} rows")

    with step("diff main -> experiment (rows added, removed, cells changed)"):
        changes = db.diff("main", EXPERIMENT, table="generations").summary()
    for c in changes:
        print(f"           {c['table']}: +{c['added']} added, -{c['removed']} removed, ~{c['changed']} changed")

    scores = {branch: float(avg) for branch, avg, _ in comparison}
    merged = None
    if scores["experiment"] > scores["main"]:
        with step("merge the experiment into main (it scored higher)"):
            merged = db.merge(EXPERIMENT, message="merge temporal-attention-v2: higher avg quality")
            main_rows = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        how = "fast-forward to" if merged.fast_forward else "merge commit"
        print(f"           main now has {main_rows} rows; {how} {merged.commit[:10]}")

    trained = _train_epoch(db)

    print("           branches: " + ", ".join(
        b["name"] + (" *" if b["current"] else "") for b in db.branches()))
    for entry in db.log(limit=5):
        print(f"           {str(entry['id'])[:10]}  {entry['message']}")

    db.close()
    elapsed = time.perf_counter() - total
    print(f"{elapsed:7.2f} s  total")
    return {"rows": rows, "curated": len(curated), "latents": cached,
            "comparison": comparison, "main_rows": main_rows, "merged": merged is not None,
            "trained": trained, "seconds": elapsed}


def _train_epoch(db: Any) -> int | None:
    """The brief's training loop over main, clips decoded to 16 frames (shorter ones
    padded, with a mask): rows delivered,
    or None without PyTorch (an optional extra)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("           (PyTorch is not installed: pip install 'reeldb[torch]' to run the training loop)")
        return None
    with step("training loop: db.dataloader('generations'), quality_score > 0.85, clips decoded"):
        train_loader = (db.dataloader("generations")
                        .filter("quality_score > 0.85")
                        .columns(["prompt_embedding", "conditioning_image", "output_video"])
                        .decode({"output_video": {"frames": 16, "stride": 2, "size": (96, 128), "pad": True},
                                 "conditioning_image": {"size": (64, 64)}})
                        .batch_size(4)
                        .to_torch())
        rows = frames = 0
        shapes = None
        for batch in train_loader:  # model.train_step(batch) goes here
            rows += len(batch["prompt_embedding"])
            frames += int(batch["output_video_mask"].sum())  # 24-frame clips: padded, masked
            shapes = {k: tuple(v.shape) for k, v in batch.items()}
    print(f"           {rows} rows in {len(train_loader)} batches, {frames} frames decoded; last batch: {shapes}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m reeldb.demo [PATH] [--rows N] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m reeldb.demo", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default="./demo.reeldb",
                        help="database folder, deleted first if it exists (default ./demo.reeldb)")
    parser.add_argument("--rows", type=int, default=300, help="generations to ingest (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    run(args.path, rows=args.rows, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
