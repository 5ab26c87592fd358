"""reeldb.ray benchmark: write, filtered read and backfill throughput, 1 and 2 Ray workers.

    python bench/bench_ray.py [--clips 96] [--rows 100000] [--dim 128] [--rounds 3] [--out DIR]

Data (fixed seed):
- ``clips``: --clips rows of (id INT, prompt TEXT, score REAL, clip BYTEA) where each clip
  is 1 MiB of random bytes (incompressible, as encoded video is). The source Ray Dataset is
  built and materialized in Ray's object store before timing, so only ``reeldb.ray.write``
  is measured: workers check rows and write fragments and blob packs, the driver commits.
- ``vectors``: --rows rows of (id INT, score REAL uniform in [0, 1), emb VECTOR(--dim),
  rescored REAL),
  written with ``db.insert`` in fragments of 64k rows.

Figures, each the median of --rounds, with Ray started with ``num_cpus`` = 1 then 2 (the
worker processes that run tasks):
1. write MB/s of the clips (``mode="append"``, one commit per job);
2. read-with-filter: ``reeldb.ray.read(..., filter="score > 0.9", columns=["id", "emb"])``
   iterated to the end (rows/s and MB/s of vectors delivered), and a full read of the clips'
   bytes (MB/s);
3. backfill: ``update_column`` of ``rescored`` (REAL) from ``emb`` over the ``vectors``
   table (rows/s), one round.

Prints figures only (no asserts). Lance's ``read_lance`` / ``write_lance`` are not measured:
``pylance`` is not in this environment (see docs/ray.md). Ray logs go to its session folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import reeldb
import reeldb.ray as rray

MB = 1 << 20


def _source(ray: Any, n: int) -> Any:
    def make(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        ids = batch["id"]
        rng = np.random.default_rng(int(ids[0]) if len(ids) else 0)
        return {"id": ids.astype(np.int32), "prompt": np.array([f"prompt {i}" for i in ids], dtype=object),
                "score": rng.random(len(ids), dtype=np.float32),
                "clip": np.array([rng.bytes(MB) for _ in ids], dtype=object)}

    return ray.data.range(n, override_num_blocks=max(2, n // 16)).map_batches(make, batch_size=16).materialize()


def _setup(root: Path, rows: int, dim: int) -> str:
    uri = str(root / "db")
    db = reeldb.connect(uri)
    db.execute("CREATE TABLE clips (id INT, prompt TEXT, score REAL, clip BYTEA)")
    db.execute(f"CREATE TABLE vectors (id INT, score REAL, emb VECTOR({dim}), rescored REAL)")
    rng = np.random.default_rng(0)
    for start in range(0, rows, 65536):
        n = min(65536, rows - start)
        db.insert("vectors", {"id": np.arange(start, start + n, dtype=np.int32),
                              "score": rng.random(n, dtype=np.float32),
                              "emb": rng.random((n, dim), dtype=np.float32)})
    db.close()
    return uri


def _rescore(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"_rowid": batch["_rowid"], "rescored": (batch["emb"][:, 0] * 0.5).astype(np.float32)}


def _median(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(workers: int, uri: str, args: argparse.Namespace) -> dict[str, float]:
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        src = _source(ray, args.clips)
        clip_mb = args.clips * MB / MB
        out: dict[str, float] = {}
        out["write MB/s"] = clip_mb / _median(lambda: rray.write(src, uri, "clips"), args.rounds)

        def filtered() -> None:
            rows = 0
            for b in rray.read(uri, "vectors", filter="score > 0.9", columns=["id", "emb"]).iter_batches(
                    batch_size=4096, batch_format="numpy"):
                rows += len(b["id"])
            out["filtered rows"] = rows

        t = _median(filtered, args.rounds)
        out["filtered read rows/s"] = out["filtered rows"] / t
        out["filtered read MB/s"] = out["filtered rows"] * args.dim * 4 / MB / t

        def blobs() -> None:
            n = 0
            for b in rray.read(uri, "clips", columns=["clip"]).iter_batches(batch_size=16, batch_format="pyarrow"):
                n += sum(len(v) for v in b.column("clip").to_pylist())
            out["clip bytes"] = n

        t = _median(blobs, args.rounds)
        out["blob read MB/s"] = out["clip bytes"] / MB / t
        t = _median(lambda: rray.update_column(uri, "vectors", "rescored", _rescore, columns=["emb"],
                                               batch_size=8192), 1)
        out["backfill rows/s"] = args.rows / t
        return out
    finally:
        ray.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=96)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="folder for the database (default: a temporary one)")
    args = p.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        uri = _setup(root, args.rows, args.dim)
        results = {w: run(w, uri, args) for w in (1, 2)}
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    print(f"reeldb.ray: {args.clips} x 1 MiB clips; {args.rows} x VECTOR({args.dim}); median of {args.rounds}")
    keys = ["write MB/s", "filtered read rows/s", "filtered read MB/s", "blob read MB/s", "backfill rows/s"]
    print(f"{'figure':<24}{'1 worker':>14}{'2 workers':>14}{'scaling':>10}")
    for k in keys:
        a, b = results[1][k], results[2][k]
        print(f"{k:<24}{a:>14.1f}{b:>14.1f}{b / a:>9.2f}x")


if __name__ == "__main__":
    main()
