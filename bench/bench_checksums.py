"""What checksums cost: bulk ingest, the dataloader epoch and the brief's curation query,
each with checksums on against the same run with them off, as ratios (target: within 5%).

    python bench/bench_checksums.py [--rows 3000] [--query-rows 50000] [--rounds 5]

What verification covers at the cost measured here (format/checksum.py):
- ingest: every object written gets its checksum computed from the bytes in memory
  (XXH3-64): the Parquet fragment (whole file, plus its footer), each matrix file, each
  packed blob value (whole value, plus per block for values over one block);
- dataloader: every blob value delivered is hashed against its own checksum on every
  read (one hash of exactly its bytes); Parquet columns and matrix files are hashed whole
  on first open in the process. "first epoch" forgets what the process verified before
  each pass, so each pass pays the whole-file hashes as a fresh worker process does;
  "later epochs" is the steady state;
- curation query: in a warm process the snapshot is bound already and nothing is re-read,
  so nothing is re-hashed ("warm"); "first query" runs in a fresh child process, where
  binding the table reads the Parquet fragments and maps the matrices, hashing each whole
  once. Manifests and commits are verified on every read from storage in both.

"Off" is only for this comparison: the bench swaps the hash functions for no-ops on write
(monkeypatched here) and turns read verification off through a private switch reeldb
offers no user-facing way to reach. On and off runs alternate, and medians count, so other
load on the machine hits both alike. Prints figures only; about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import reeldb

from bench_core import CURATION_SQL, make_dataset, schema_sql  # noqa: E402 - bench/ is the script's folder
from reeldb.format import checksum  # noqa: E402

DIM = 1024
LATENT = (4, 8, 32, 32)
IMAGE_BYTES = 64 << 10  # packed (over the 4 KiB inline limit): one checksum per value
CHUNK = 500
BATCH = 16
COLUMNS = ["prompt_embedding", "conditioning_image", "latent"]


@contextmanager
def checksums(on: bool) -> Iterator[None]:
    """Checksums on (reeldb as shipped) or off: no hashing on write, no verification on read."""
    if on:
        yield
        return
    digest, blob_sums = checksum.digest, checksum.blob_sums
    checksum.digest = lambda data: "0" * 16  # type: ignore[assignment]
    checksum.blob_sums = lambda data: None  # type: ignore[assignment]
    checksum._set_enabled(False)
    try:
        yield
    finally:
        checksum.digest, checksum.blob_sums = digest, blob_sums
        checksum._set_enabled(True)


def chunks(rows: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        yield {
            "quality_score": rng.random(n),
            "prompt_embedding": rng.standard_normal((n, DIM), dtype=np.float32),
            "conditioning_image": [rng.bytes(IMAGE_BYTES) for _ in range(n)],
            "latent": rng.standard_normal((n, *LATENT), dtype=np.float32).astype(np.float16),
        }


ROW_BYTES = 8 + DIM * 4 + IMAGE_BYTES + int(np.prod(LATENT)) * 2


def ingest(path: Path, data: list[dict[str, Any]]) -> float:
    """Seconds to bulk-insert the chunks into a new database at ``path``."""
    db = reeldb.connect(path)
    db.execute(f"""CREATE TABLE media (id SERIAL, quality_score FLOAT, prompt_embedding VECTOR({DIM}),
        conditioning_image BYTEA, latent TENSOR(float16, {", ".join(map(str, LATENT))}))""")
    t = time.perf_counter()
    for c in data:
        db.insert("media", c)
    secs = time.perf_counter() - t
    db.close()
    return secs


def alternate(rounds: int, fn: Callable[[bool], float]) -> dict[bool, float]:
    """Median of ``fn(on)`` over ``rounds`` rounds of on and off, in alternating order."""
    got: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            got[on].append(fn(on))
    return {k: statistics.median(v) for k, v in got.items()}


def report(name: str, on: float, off: float, unit: str, higher_is_better: bool = False) -> None:
    ratio = (off / on) if higher_is_better else (on / off)
    verdict = "within 5%" if ratio <= 1.05 else "OVER 5%"
    print(f"{name:<44} on {on:10.3f} {unit:<6} off {off:10.3f} {unit:<6} cost x{ratio:.3f}  {verdict}")


def bench_ingest(root: Path, rows: int, rounds: int, seed: int) -> Path:
    data = list(chunks(rows, seed))
    mb = rows * ROW_BYTES / 1e6
    n = [0]

    def run(on: bool) -> float:
        n[0] += 1
        path = root / f"ingest-{n[0]}"
        with checksums(on):
            secs = ingest(path, data)
        shutil.rmtree(path)
        return mb / secs

    got = alternate(rounds, run)
    report(f"1. bulk ingest ({rows:,} rows, {mb:,.0f} MB)", got[True], got[False], "MB/s", higher_is_better=True)
    keep = root / "media"
    ingest(keep, data)  # with checksums: what the reads below verify
    return keep


def bench_loader(path: Path, rounds: int) -> None:
    db = reeldb.connect(path)
    rows = db.execute("SELECT count(*) FROM media").fetchone()[0]

    def epoch(on: bool, first: bool) -> float:
        if first:
            checksum._verified.clear()  # as a fresh worker process: whole-file hashes again
        with checksums(on):
            loader = db.dataloader("media").columns(COLUMNS).batch_size(BATCH)
            t = time.perf_counter()
            for batch in loader.to_torch():
                for v in batch.values():  # one byte per 4 KiB page: what a model's first touch costs
                    for x in v if isinstance(v, list) else [v]:
                        int(x.reshape(-1).view(dtype=_uint8())[::4096].sum())
            return time.perf_counter() - t

    epoch(True, True)  # warm-up (page cache, imports)
    for label, first in (("first epoch", True), ("later epochs", False)):
        got = alternate(rounds, lambda on, first=first: epoch(on, first))
        report(f"2. dataloader {label} ({rows:,} rows, batch {BATCH})", got[True], got[False], "s")
    db.close()


def _uint8() -> Any:
    import torch

    return torch.uint8


CHILD = """
import sys, time
sys.path[:0] = {paths!r}
import numpy as np, reeldb
from bench_core import CURATION_SQL
from reeldb.format import checksum
checksum._set_enabled({on!r})
q = np.load({target!r})
t = time.perf_counter()
db = reeldb.connect({path!r}, create=False)
db.execute(CURATION_SQL, {{"target_vec": q}}).fetchall()
print(time.perf_counter() - t)
"""


def bench_curation(root: Path, rows: int, rounds: int, seed: int) -> None:
    ds = make_dataset(rows, DIM, 100, seed)
    path = root / "generations"
    db = reeldb.connect(path)
    db.execute(schema_sql(DIM))
    data: dict[str, Any] = dict(ds.scalars)
    data["prompt_embedding"] = ds.embeddings
    db.insert("generations", data)
    rng = np.random.default_rng(seed + 1)
    qs = [ds.centres[rng.integers(0, len(ds.centres))] for _ in range(8)]
    db.execute(CURATION_SQL, {"target_vec": qs[0]}).fetchall()  # bind the snapshot

    def warm(on: bool) -> float:
        with checksums(on):
            t = time.perf_counter()
            for q in qs:
                db.execute(CURATION_SQL, {"target_vec": q}).fetchall()
            return (time.perf_counter() - t) / len(qs) * 1e3

    got = alternate(rounds, warm)
    report(f"3. curation query, warm ({rows:,} x VECTOR({DIM}))", got[True], got[False], "ms")
    db.close()
    target = root / "target.npy"
    np.save(target, qs[0])
    bench = str(Path(__file__).resolve().parent)
    paths = [bench] + [p for p in sys.path if p.endswith("/src")]

    def first(on: bool) -> float:
        code = CHILD.format(paths=paths, on=on, target=str(target), path=str(path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])})
        return float(out.stdout.strip().splitlines()[-1]) * 1e3

    got = alternate(rounds, first)
    report("3. curation query, first in a fresh process", got[True], got[False], "ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=3000, help="media rows for ingest and the dataloader")
    p.add_argument("--query-rows", type=int, default=50_000, help="rows of the curation query's table")
    p.add_argument("--rounds", type=int, default=5, help="on/off rounds per figure (medians)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reeldb-bench-checksums-"))
    t0 = time.perf_counter()
    print(f"checksum cost ({checksum.ALGORITHM}), {os.cpu_count()} CPUs, data in {root}; cost = on / off time")
    try:
        media = bench_ingest(root, args.rows, args.rounds, args.seed)
        bench_loader(media, args.rounds)
        bench_curation(root, args.query_rows, args.rounds, args.seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
