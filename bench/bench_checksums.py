"""What checksums cost: bulk ingest, the dataloader epoch and the brief's curation query,
each with checksums on against the same run with them off, as ratios (target: within 5%).

    python bench/bench_checksums.py [--rows 3000] [--query-rows 50000] [--rounds 5]

What verification covers at the cost measured here (format/checksum.py):
- ingest: every object written gets its checksum computed from the bytes in memory
  (XXH3-64): the Parquet fragment (whole file, plus its footer), each matrix file, each
  packed blob value (whole value, plus per block for values over one block);
- dataloader: every blob value delivered is hashed against its own checksum (one hash of
  exactly its bytes) the first time the loader's mapping of its pack serves it (later
  epochs of the same loader read the same verified, immutable mapped pages; a remote
  store's bytes, and values read through the Blob API, are hashed on every read); Parquet
  columns and matrix files are hashed whole on first open in the process. "first epoch"
  is a new loader in a process that forgets what it verified before each pass, so each
  pass pays every hash, as a fresh process does; "later epochs" is the same loader again;
- curation query: in a warm process the snapshot is bound already and nothing is re-read,
  so nothing is re-hashed ("warm"); "first query" runs in a fresh child process, where
  binding the table reads the Parquet fragments and maps the matrices, hashing each whole
  once. Manifests and commits are verified on every read from storage in both.

"Off" is only for this comparison: the bench swaps the hash functions for no-ops on write
(monkeypatched here) and turns read verification off through a private switch reeldb
offers no user-facing way to reach. On and off runs alternate, so other load on the
machine hits both alike; the fastest of each counts (medians shown too). On a shared machine
the difference of two timings is noisy, so every "on" run also times its hash calls: the
direct cost, "hashing ... = x1.0NN", is the fastest "on" run over itself minus its own
hashing; the verdict is on that figure.
Prints figures only; about 2 minutes on 2 cores.
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


class TimedHash:
    """``xxhash`` as format/checksum.py calls it, timing every hash: the direct cost of
    verification, free of the noise of a shared machine."""

    def __init__(self, real: Any):
        self.real = real
        self.secs = 0.0
        self.bytes = 0

    def _timed(self, fn: Callable[[Any], Any], data: Any) -> Any:
        t = time.perf_counter()
        out = fn(data)
        self.secs += time.perf_counter() - t
        self.bytes += memoryview(data).nbytes
        return out

    def xxh3_64_hexdigest(self, data: Any) -> str:
        return self._timed(self.real.xxh3_64_hexdigest, data)

    def xxh3_64_digest(self, data: Any) -> bytes:
        return self._timed(self.real.xxh3_64_digest, data)

    def xxh3_64(self) -> Any:
        outer, h = self, self.real.xxh3_64()

        class Streaming:
            def update(self, data: Any) -> None:
                outer._timed(h.update, data)

            def hexdigest(self) -> str:
                return h.hexdigest()

        return Streaming()


HASH = TimedHash(checksum.xxhash)
checksum.xxhash = HASH  # type: ignore[attr-defined]


def alternate(rounds: int, fn: Callable[[bool], float]) -> dict[str, float]:
    """``fn(on)`` over ``rounds`` rounds of on and off, in alternating order: the fastest
    and the median of each, and the seconds spent hashing per "on" run."""
    got: dict[bool, list[float]] = {True: [], False: []}
    hashing: list[float] = []
    for r in range(rounds):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            before = HASH.secs
            got[on].append(fn(on))
            if on:
                hashing.append(HASH.secs - before)
    fastest = min(range(len(got[True])), key=got[True].__getitem__)
    return {"on": got[True][fastest], "off": min(got[False]), "on_med": statistics.median(got[True]),
            "off_med": statistics.median(got[False]), "hash_s": hashing[fastest]}


def report(name: str, got: dict[str, float], unit: str, scale: float = 1.0, per_mb: float | None = None) -> None:
    """Times (``unit`` = seconds * ``scale``); ``per_mb``: also as MB/s for that many MB."""
    on, off = got["on"], got["off"]
    ratio, ratio_med = on / off, got["on_med"] / got["off_med"]
    direct = on / max(on - got["hash_s"], 1e-9)  # the pass with its hashing taken out
    verdict = "within 5%" if direct <= 1.05 else "OVER 5%"  # end-to-end ratios are shown; noise swamps them
    shown = f"on {on * scale:9.2f} {unit} off {off * scale:9.2f} {unit}"
    if per_mb:
        shown = f"on {per_mb / on:7.0f} MB/s off {per_mb / off:7.0f} MB/s"
    print(f"{name:<48} {shown}  cost x{ratio:.3f} (medians x{ratio_med:.3f}); "
          f"hashing {got['hash_s'] * 1e3:.1f} ms = x{direct:.3f}  {verdict}")


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
        return secs

    report(f"1. bulk ingest ({rows:,} rows, {mb:,.0f} MB)", alternate(rounds, run), "s", per_mb=mb)
    keep = root / "media"
    ingest(keep, data)  # with checksums: what the reads below verify
    return keep


def bench_loader(path: Path, rounds: int) -> None:
    db = reeldb.connect(path)
    rows = db.execute("SELECT count(*) FROM media").fetchone()[0]

    kept = {on: db.dataloader("media").columns(COLUMNS).batch_size(BATCH).to_torch() for on in (True, False)}

    def epoch(on: bool, first: bool) -> float:
        if first:
            checksum._verified.clear()  # as a fresh process: whole-file hashes again
        with checksums(on):
            # a first epoch: a new loader (new mappings, every value hashed); later epochs:
            # the same loader again, as a training loop iterates it
            loader = db.dataloader("media").columns(COLUMNS).batch_size(BATCH).to_torch() if first else kept[on]
            t = time.perf_counter()
            for batch in loader:
                for v in batch.values():  # one byte per 4 KiB page: what a model's first touch costs
                    for x in v if isinstance(v, list) else [v]:
                        int(x.reshape(-1).view(dtype=_uint8())[::4096].sum())
            return time.perf_counter() - t

    epoch(True, True)  # warm-up (page cache, imports)
    epoch(True, False)  # and each kept loader's first pass
    epoch(False, False)
    for label, first in (("first epoch", True), ("later epochs", False)):
        got = alternate(rounds, lambda on, first=first: epoch(on, first))
        report(f"2. dataloader {label} ({rows:,} rows)", got, "ms", 1e3)
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
from bench_checksums import HASH
checksum._set_enabled({on!r})
q = np.load({target!r})
t = time.perf_counter()
db = reeldb.connect({path!r}, create=False)
db.execute(CURATION_SQL, {{"target_vec": q}}).fetchall()
print(time.perf_counter() - t, HASH.secs)
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
            return (time.perf_counter() - t) / len(qs)

    report(f"3. curation query, warm ({rows:,} x VECTOR({DIM}))", alternate(rounds, warm), "ms", 1e3)
    db.close()
    target = root / "target.npy"
    np.save(target, qs[0])
    bench = str(Path(__file__).resolve().parent)
    paths = [bench] + [p for p in sys.path if p.endswith("/src")]

    def first(on: bool) -> float:
        code = CHILD.format(paths=paths, on=on, target=str(target), path=str(path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])})
        secs, hashing = map(float, out.stdout.split()[-2:])
        HASH.secs += hashing  # the child's hashing, for the direct figure
        return secs

    report("3. curation query, first in a fresh process", alternate(rounds, first), "ms", 1e3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=3000, help="media rows for ingest and the dataloader")
    p.add_argument("--query-rows", type=int, default=50_000, help="rows of the curation query's table")
    p.add_argument("--rounds", type=int, default=7, help="on/off rounds per figure")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reeldb-bench-checksums-"))
    t0 = time.perf_counter()
    print(f"checksum cost ({checksum.ALGORITHM}), {os.cpu_count()} CPUs, data in {root}\n"
          "cost = on / off, fastest of the rounds (and of their medians); hashing = time spent in the hash\n"
          "functions in the fastest 'on' run, and what that run costs over itself with it taken out")
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
