"""Dataloader benchmark: epoch throughput against Deeplake and Lance, against plain files,
and decoded video against plain PyAV.

    python bench/bench_loader.py [--rows 2000] [--clips 32] [--copies 4] [--epochs 5] [--out DIR]

Data (fixed seed): a ``media`` table of --rows rows, each a ``quality_score`` (uniform in
[0, 1)), a VECTOR(1024) embedding, a 64 KiB ``conditioning_image``, a 1 MiB
``output_video`` and a float16 latent TENSOR(float16, 4, 8, 32, 32) (64 KiB). Image and
video are random bytes (incompressible, never decoded here); ingested in chunks of 500
rows. The same rows go to Deeplake 4 (``deeplake.create`` on a local path) and Lance
(``lance.write_dataset``), and the three read columns to plain flat files.

1. Epoch throughput: embedding + image bytes + latent, batch 16, one process (no
   workers) for every contestant, unfiltered and with ``quality_score > 0.5``:
   reeldb ``db.dataloader(...).columns([...]).batch_size(16).to_torch()``; Deeplake
   ``ds.query("SELECT <cols> [WHERE ...]").pytorch()`` in a torch DataLoader; Lance's
   ``LanceDataset(ds, batch_size=16, columns=..., filter=...)`` (binary values become
   uint8 tensors, as reeldb's do). Every delivered tensor has one byte per 4 KiB page read
   (a memory-mapped batch costs its page faults, as a model's first touch would). Each
   loader is built once; after one warm-up pass each, --epochs rounds time one pass of
   every contestant in rotating order (so other load on the machine hits all alike) and
   the median counts. Data is in the page cache (just written).
   The machine's limit: the same bytes read sequentially from the plain files with
   ``readinto`` into fresh numpy arrays, in the same batches.
2. Decoded video: --clips real H.264 clips (256x256, 48 frames, 24 fps, keyframe every
   24, textured so each is ~1 MiB), each stored --copies times (in a VIDEO column, and as
   plain .mp4 files). reeldb ``.decode({"clip": {"frames": 16, "stride": 2, "size":
   (256, 256)}})`` with 2 workers and with none, against plain PyAV on the files
   (``container.decode`` + ``frame.to_ndarray(format="rgb24")``, frames 0, 2, ... 30) in
   one process and in two. Frames/s delivered, median of --epochs, interleaved the same way.

Prints figures only (no asserts); progress bars (tqdm) go to stderr, on a terminal only.
About 2-3 minutes on 2 cores with the defaults; needs ~7 GB of disk.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import reeldb

import av  # noqa: E402 - after the src/ fallback above
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

DIM = 1024
LATENT = (4, 8, 32, 32)
IMAGE_BYTES = 64 << 10
VIDEO_BYTES = 1 << 20
CHUNK = 500
BATCH = 16
FILTER = "quality_score > 0.5"
COLUMNS = ["prompt_embedding", "conditioning_image", "latent"]
ROW_BYTES = DIM * 4 + IMAGE_BYTES + int(np.prod(LATENT)) * 2
SIDE, FRAMES, FPS, GOP = 256, 48, 24, 24
DECODE = {"frames": 16, "stride": 2, "size": (SIDE, SIDE)}


def chunks(rows: int, seed: int) -> Iterator[dict[str, Any]]:
    """The table's rows, CHUNK at a time, the same every run."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        yield {
            "quality_score": rng.random(n),
            "prompt_embedding": rng.standard_normal((n, DIM), dtype=np.float32),
            "conditioning_image": [rng.bytes(IMAGE_BYTES) for _ in range(n)],
            "output_video": [rng.bytes(VIDEO_BYTES) for _ in range(n)],
            "latent": rng.standard_normal((n, *LATENT), dtype=np.float32).astype(np.float16),
        }


def touch(batch: Any) -> int:
    """Read one byte per 4 KiB page of every delivered tensor; returns the rows."""
    values = batch.values() if isinstance(batch, dict) else batch
    rows = 0
    for v in values:
        for t in v if isinstance(v, list) else [v]:
            if isinstance(t, torch.Tensor):
                flat = t.reshape(-1).view(torch.uint8)
                int(flat[::4096].sum())
                rows = max(rows, len(t) if not isinstance(v, list) else len(v))
            elif isinstance(v, list):
                rows = max(rows, len(v))
    return rows


def race(label: str, contestants: dict[str, Iterable[Any]], epochs: int) -> dict[str, tuple[float, int]]:
    """Median seconds per pass over each contestant (built once, as a training loop does)
    and the rows of a pass. One warm-up pass each, then ``epochs`` rounds of one pass per
    contestant in rotating order, so whatever else loads the machine falls on all alike."""
    names = list(contestants)
    secs: dict[str, list[float]] = {n: [] for n in names}
    rows: dict[str, int] = {}
    with tqdm(total=(epochs + 1) * len(names), desc=label, leave=False, disable=None) as bar:
        for r in range(epochs + 1):
            for name in names[r % len(names):] + names[: r % len(names)]:
                t = time.perf_counter()
                rows[name] = sum(touch(b) for b in contestants[name])
                if r:
                    secs[name].append(time.perf_counter() - t)
                bar.update()
    return {n: (statistics.median(secs[n]), rows[n]) for n in names}


class Passes:
    """A generator function as a re-iterable: one fresh pass per ``iter()``."""

    def __init__(self, fn: Callable[[], Iterator[Any]]):
        self.fn = fn

    def __iter__(self) -> Iterator[Any]:
        return self.fn()


# ------------------------------------------------------------------------- contestants


def ingest_reeldb(path: Path, rows: int, seed: int) -> reeldb.Connection:
    db = reeldb.connect(path)
    db.execute(f"""CREATE TABLE media (id SERIAL, quality_score FLOAT, prompt_embedding VECTOR({DIM}),
        conditioning_image BYTEA, output_video BYTEA, latent TENSOR(float16, {", ".join(map(str, LATENT))}))""")
    for chunk in tqdm(chunks(rows, seed), total=-(-rows // CHUNK), desc="reeldb ingest", leave=False, disable=None):
        db.insert("media", chunk)
    return db


def ingest_deeplake(path: Path, rows: int, seed: int) -> Any:
    import deeplake

    deeplake.telemetry_client.endpoint = ""  # local path only: nothing leaves the machine
    ds = deeplake.create(f"file://{path}")
    ds.add_column("quality_score", deeplake.types.Float64())
    ds.add_column("prompt_embedding", deeplake.types.Embedding(DIM))
    ds.add_column("conditioning_image", deeplake.types.Bytes())
    ds.add_column("output_video", deeplake.types.Bytes())
    ds.add_column("latent", deeplake.types.Array("float16", shape=list(LATENT)))
    for chunk in tqdm(chunks(rows, seed), total=-(-rows // CHUNK), desc="deeplake ingest", leave=False,
                      disable=None):
        ds.append(chunk)
    ds.commit()
    return ds


def _lance_batches(rows: int, seed: int) -> Iterator[pa.RecordBatch]:
    for c in chunks(rows, seed):
        yield pa.record_batch({
            "quality_score": pa.array(c["quality_score"]),
            "prompt_embedding": pa.FixedSizeListArray.from_arrays(pa.array(c["prompt_embedding"].reshape(-1)), DIM),
            "conditioning_image": pa.array(c["conditioning_image"], pa.large_binary()),
            "output_video": pa.array(c["output_video"], pa.large_binary()),
            "latent": pa.FixedSizeListArray.from_arrays(pa.array(c["latent"].reshape(-1)), int(np.prod(LATENT))),
        })


def ingest_lance(path: Path, rows: int, seed: int) -> Any:
    import lance

    first = next(_lance_batches(min(rows, 1), seed))
    reader = pa.RecordBatchReader.from_batches(
        first.schema, tqdm(_lance_batches(rows, seed), total=-(-rows // CHUNK), desc="lance ingest", leave=False,
                           disable=None))
    return lance.write_dataset(reader, str(path))


def lance_tensors(batch: pa.RecordBatch, **_: Any) -> dict[str, Any]:
    """Lance's own conversion for the arrays; binary values as uint8 tensors over the
    Arrow buffer (no copy), which Lance's default refuses."""
    out: dict[str, Any] = {}
    for name in batch.schema.names:
        arr = batch.column(name)
        if pa.types.is_large_binary(arr.type):
            offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
            data = torch.from_numpy(np.frombuffer(arr.buffers()[2], dtype=np.uint8))
            out[name] = [data[offsets[i]: offsets[i + 1]] for i in range(len(arr))]
        else:
            flat = arr.values.slice(arr.offset * arr.type.list_size, len(arr) * arr.type.list_size)
            t = torch.from_numpy(flat.to_numpy(zero_copy_only=False))
            out[name] = t.view(len(arr), *(LATENT if name == "latent" else (DIM,)))
    return out


def write_plain(folder: Path, rows: int, seed: int) -> None:
    folder.mkdir()
    with open(folder / "emb.bin", "wb") as e, open(folder / "image.bin", "wb") as i, \
            open(folder / "latent.bin", "wb") as lat:
        for c in chunks(rows, seed):
            e.write(c["prompt_embedding"].tobytes())
            i.write(b"".join(c["conditioning_image"]))
            lat.write(c["latent"].tobytes())


def plain_epoch(folder: Path, rows: int) -> Iterator[dict[str, Any]]:
    """The three columns read sequentially, batch by batch, into fresh arrays."""
    with open(folder / "emb.bin", "rb", buffering=0) as e, open(folder / "image.bin", "rb", buffering=0) as i, \
            open(folder / "latent.bin", "rb", buffering=0) as lat:
        for start in range(0, rows, BATCH):
            n = min(BATCH, rows - start)
            emb = np.empty((n, DIM), np.float32)
            e.readinto(memoryview(emb).cast("B"))
            img = np.empty(n * IMAGE_BYTES, np.uint8)
            i.readinto(memoryview(img))
            latent = np.empty((n, *LATENT), np.float16)
            lat.readinto(memoryview(latent).cast("B"))
            images = torch.from_numpy(img)
            yield {"prompt_embedding": torch.from_numpy(emb), "latent": torch.from_numpy(latent),
                   "conditioning_image": [images[k * IMAGE_BYTES: (k + 1) * IMAGE_BYTES] for k in range(n)]}


# ------------------------------------------------------------------------------- video


def textured_clip(seed: int) -> bytes:
    """A real H.264 clip with moving texture and grain, so it weighs ~1 MiB and decodes
    at the cost of real footage (the demo clips are flat colour and decode 10x faster)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "23"})
        stream.width = stream.height = SIDE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP
        for t in range(FRAMES):
            img = np.empty((SIDE, SIDE, 3), np.float32)
            for ch in range(3):
                img[..., ch] = base[ch] + 40 * np.sin((xx + 3 * t * (ch + 1)) / 17.0) * np.cos((yy - 2 * t) / 23.0)
            img += rng.normal(0, 14, img.shape)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def pyav_clip(path: str) -> np.ndarray:
    """Plain PyAV: frames 0, 2, ..., 30 of a file as (16, H, W, 3) RGB."""
    out = []
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % DECODE["stride"] == 0:
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == DECODE["frames"]:
                    break
    return np.stack(out)


def _pyav_many(paths: list[str]) -> int:
    return sum(len(pyav_clip(p)) for p in paths)


def pyav_epoch(paths: list[str], procs: int) -> Iterator[list[torch.Tensor]]:
    if procs == 1:
        for p in paths:
            yield [torch.from_numpy(pyav_clip(p))]
        return
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = [paths[i::procs] for i in range(procs)]
        for n in pool.imap_unordered(_pyav_many, parts):
            yield [torch.zeros(n)]


# ------------------------------------------------------------------------------- main


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--clips", type=int, default=32, help="distinct video clips rendered")
    p.add_argument("--copies", type=int, default=4, help="rows (and files) per clip")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per figure, after one warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="keep the data and results.json here")
    return p.parse_args(list(argv) if argv is not None else None)


def version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return v(module)
    except PackageNotFoundError:
        return None


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    warnings.filterwarnings("ignore", message="The given buffer is not writable")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        root, tmp = args.out, None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-loader-")
        root = Path(tmp.name)
    try:
        return run(args, root)
    finally:
        if tmp is not None:
            tmp.cleanup()


def peer_ingest(label: str | None, ingest: Callable[[Path, int, int], Any], path: Path, rows: int, seed: int,
                pip: str) -> Any:
    """A peer's copy of the table, timed; None (said) when the peer is not installed."""
    if label is None:
        print(f"{pip.split('==')[0]} is not installed: skipped (pip install {pip})")
        return None
    t = time.perf_counter()
    ds = ingest(path, rows, seed)
    print(f"ingest {label}: {time.perf_counter() - t:.1f} s")
    return ds


def run(args: argparse.Namespace, root: Path) -> int:
    rows, epochs = args.rows, args.epochs
    results: dict[str, Any] = {"rows": rows, "row_bytes": ROW_BYTES}
    print(f"media table: {rows} rows; read per row: VECTOR({DIM}) {DIM * 4 // 1024} KiB + image "
          f"{IMAGE_BYTES >> 10} KiB + latent float16{list(LATENT)} {int(np.prod(LATENT)) * 2 >> 10} KiB "
          f"= {ROW_BYTES / 1024:.0f} KiB; output_video {VIDEO_BYTES >> 20} MiB per row, never read")
    peers = {"deeplake": version("deeplake"), "lance": version("pylance")}

    t = time.perf_counter()
    db = ingest_reeldb(root / "bench.reeldb", rows, args.seed)
    print(f"ingest reeldb: {time.perf_counter() - t:.1f} s")
    ds_deeplake = peer_ingest(f"deeplake {peers['deeplake']}" if peers["deeplake"] else None, ingest_deeplake,
                              root / "deeplake", rows, args.seed, "deeplake==4.7.4")
    ds_lance = peer_ingest(f"lance (pylance {peers['lance']})" if peers["lance"] else None, ingest_lance,
                           root / "lance", rows, args.seed, "pylance")
    write_plain(root / "plain", rows, args.seed)

    table: list[tuple[str, str, float, float]] = []  # section, who, samples/s, MB/s
    ratios: dict[str, Any] = {}
    builds: dict[str, float] = {}
    deeplake_name, lance_name = f"deeplake {peers['deeplake']}", f"lance (pylance {peers['lance']})"
    limit_name = "plain files, sequential readinto (machine's limit)"
    for filt in (None, FILTER):
        section = "unfiltered" if filt is None else filt

        def reeldb_loader(filt: str | None = filt, workers: int = 0, shuffle: bool = False) -> Any:
            dl = db.dataloader("media").columns(COLUMNS).batch_size(BATCH).num_workers(workers)
            if filt:
                dl.filter(filt)
            if shuffle:
                dl.shuffle(seed=0)
            return dl.to_torch()

        t = time.perf_counter()
        contestants: dict[str, Iterable[Any]] = {"reeldb": reeldb_loader()}
        builds[section] = time.perf_counter() - t
        if ds_deeplake is not None:
            query = f"SELECT {', '.join(COLUMNS)}" + (f" WHERE {filt}" if filt else "")
            contestants[deeplake_name] = torch.utils.data.DataLoader(ds_deeplake.query(query).pytorch(),
                                                                     batch_size=BATCH)
        if ds_lance is not None:
            from lance.torch.data import LanceDataset

            contestants[lance_name] = LanceDataset(ds_lance, batch_size=BATCH, columns=COLUMNS, filter=filt,
                                                   to_tensor_fn=lance_tensors)
        contestants["reeldb, .shuffle(seed=0)"] = reeldb_loader(shuffle=True)
        contestants["reeldb, .num_workers(2)"] = reeldb_loader(workers=2)
        if filt is None:
            contestants[limit_name] = Passes(lambda: plain_epoch(root / "plain", rows))
        got = race(section, contestants, epochs)
        results[section] = {}
        for who, (secs, n) in got.items():
            rate = n / secs
            table.append((section, who, rate, rate * ROW_BYTES / 1e6))
            results[section][who] = {"seconds": secs, "rows": n, "samples_per_s": rate,
                                     "mb_per_s": rate * ROW_BYTES / 1e6}
        mine = results[section]["reeldb"]["samples_per_s"]
        peer_rates = {k: results[section][k]["samples_per_s"] for k in (deeplake_name, lance_name) if k in got}
        if peer_rates:
            best = max(peer_rates, key=peer_rates.__getitem__)
            ratios[section] = {"best_peer": best, "ratio": mine / peer_rates[best]}
        if filt is None:
            ratios["limit"] = mine / results[section][limit_name]["samples_per_s"]

    # -- decoded video -------------------------------------------------------------------
    print(f"\ndecoded video: {args.clips} clips x {args.copies} copies = {args.clips * args.copies} rows "
          f"(scaled down from the 2,000-row table to keep the run short)")
    t = time.perf_counter()
    clips = [textured_clip(args.seed * 1000 + i) for i in tqdm(range(args.clips), desc="render clips", leave=False,
                                                                 disable=None)]
    print(f"render: {time.perf_counter() - t:.1f} s; clips {SIDE}x{SIDE}, {FRAMES} frames, "
          f"mean {statistics.mean(map(len, clips)) / 2**20:.2f} MiB")
    vdb = reeldb.connect(root / "clips.reeldb")
    vdb.execute("CREATE TABLE clips (id SERIAL, clip VIDEO)")
    vdb.insert("clips", {"clip": [c for c in clips for _ in range(args.copies)]})
    (root / "mp4").mkdir()
    paths = []
    for i, c in enumerate(clips):
        for k in range(args.copies):
            p = root / "mp4" / f"clip{i}_{k}.mp4"
            p.write_bytes(c)
            paths.append(str(p))
    n_clips = len(paths)

    def video_loader(workers: int) -> Any:
        return (vdb.dataloader("clips").columns(["clip"]).decode({"clip": DECODE}).batch_size(4)
                .num_workers(workers, "fork").to_torch())

    got = race("decoded video", {"reeldb .decode(), .num_workers(2)": video_loader(2),
                                 "reeldb .decode(), no workers": video_loader(0),
                                 "PyAV on plain files, 1 process": Passes(lambda: pyav_epoch(paths, 1)),
                                 "PyAV on plain files, 2 processes": Passes(lambda: pyav_epoch(paths, 2))}, epochs)
    video = {label: n_clips * DECODE["frames"] / secs for label, (secs, _) in got.items()}
    results["video"] = video

    # -- report ----------------------------------------------------------------------------
    print(f"\nepoch throughput, batch {BATCH}, in one process unless said; median of {epochs} epochs, "
          "interleaved")
    print(f"  {'':<20} {'':<52} {'samples/s':>10} {'MB/s':>9}")
    for section, who, rate, mbs in table:
        print(f"  {section:<20} {who:<52} {rate:>10,.0f} {mbs:>9,.0f}")
    print("\nratios")
    for section in ("unfiltered", FILTER):
        r = ratios.get(section)
        if r is None:
            print(f"  {section:<20} no peer installed")
        else:
            print(f"  {section:<20} reeldb / best peer ({r['best_peer']}): {r['ratio']:.2f}x   target >= 2x")
    print(f"  {'unfiltered':<20} reeldb / plain files: {ratios['limit']:.0%}   target >= 60%")
    print("  reeldb to_torch() (pins the snapshot, runs the filter): "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in builds.items()))
    results["ratios"] = ratios
    results["build_seconds"] = builds
    print(f"\ndecoded video, {n_clips} clips, {DECODE['frames']} frames each (stride {DECODE['stride']}, "
          f"{SIDE}x{SIDE}); median of {epochs} epochs, interleaved")
    for label, fps in video.items():
        print(f"  {label:<40} {fps:>8,.0f} frames/s")
    ours = video["reeldb .decode(), .num_workers(2)"]
    print(f"  reeldb (2 workers) / PyAV 1 process:   {ours / video['PyAV on plain files, 1 process']:.0%}   "
          "target >= 90%")
    print(f"  reeldb (2 workers) / PyAV 2 processes: {ours / video['PyAV on plain files, 2 processes']:.0%}")
    if args.out:
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    db.close()
    vdb.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_MININTERVAL", "0.5")
    sys.exit(main())
