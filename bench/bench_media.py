"""Media benchmark: bytes a ranged VIDEO decode reads, and decode speed against PyAV.

    python bench/bench_media.py [--seconds 60] [--size 256] [--gop 24] [--windows 40]

One synthetic H.264 clip (``synth.render_clip``: --seconds at 24 fps, --size square,
a keyframe every --gop frames) is stored in a VIDEO column of a temporary database and
also written out as a plain .mp4. Printed:

1. bytes read by ``Blob.decode(start=middle, frames=16)`` (counted by the store's
   byte-range reads), against the clip's size, the least any decoder must read (the
   container's header and index plus the packets from the keyframe before the window to
   its last frame), and a decode of the same window that has no keyframe index and so
   decodes from frame 0; also a 16-frame decode from frame 0 and a decode of the clip;
2. frames/s decoding the whole clip, and windows/s for random 16-frame windows (the
   dataloader's access pattern): ``Blob.decode`` from the pack, ``decode_video`` on the
   plain file, and plain PyAV on the plain file (``container.decode`` +
   ``frame.to_ndarray(format="rgb24")``, from frame 0 to the window's end).

Prints figures only (no asserts); progress bars go to stderr, on a terminal only.
About 20 s on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import reeldb

import av  # noqa: E402 - after the src/ fallback above

from reeldb.media import decode_video, synth  # noqa: E402

FPS = 24
WINDOW = 16
PROMPT = "A golden retriever running on a beach at sunset"


class RangeCounter:
    """Counts the byte-range reads the store serves from blob packs."""

    def __init__(self, store) -> None:
        self.bytes = 0
        self.calls = 0
        self._get_range = store.get_range
        store.get_range = self.get_range  # on the instance: this store only

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = self._get_range(key, offset, length)
        if key.startswith("blobs/"):
            self.bytes += len(data)
            self.calls += 1
        return data

    def take(self) -> tuple[int, int]:
        out = self.bytes, self.calls
        self.bytes = self.calls = 0
        return out


def least_bytes(data: bytes, first: int, last: int) -> int:
    """Header and index (everything outside the packets) plus the packets from the
    keyframe at or before ``first`` through frame ``last`` (no B-frames: file order is
    display order)."""
    with av.open(io.BytesIO(data)) as container:
        packets = [(p.pos, p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]
    key = max(i for i in range(first + 1) if packets[i][2])
    outside = packets[0][0] + len(data) - (packets[-1][0] + packets[-1][1])
    return outside + packets[last][0] + packets[last][1] - packets[key][0]


def pyav_window(path: str, start: int, frames: int) -> np.ndarray:
    """What code without a keyframe index does: decode from frame 0 to the window's end."""
    out = []
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start:
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) == frames:
                    break
    return np.stack(out)


def pyav_all(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def mb(n: float) -> str:
    return f"{n / 1e6:.3f} MB"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--size", type=int, default=256, help="frame height and width")
    ap.add_argument("--gop", type=int, default=24, help="frames between keyframes")
    ap.add_argument("--windows", type=int, default=40, help="random 16-frame windows timed")
    ap.add_argument("--repeats", type=int, default=5, help="whole-clip decodes timed")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = args.seconds * FPS
    side = args.size

    t = time.perf_counter()
    data = synth.render_clip(PROMPT, frames=n, fps=FPS, size=(side, side), gop=args.gop)
    print(f"clip: {args.seconds} s, {n} frames {side}x{side} @ {FPS} fps, keyframe every "
          f"{args.gop} frames, {mb(len(data))} ({time.perf_counter() - t:.1f} s to render)")

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clip.mp4")
        Path(path).write_bytes(data)
        db = reeldb.connect(Path(tmp) / "db")
        db.execute("CREATE TABLE clips (id INT, clip VIDEO)")
        insert = timed(lambda: db.execute("INSERT INTO clips VALUES (1, %s)", [data]))
        blob = db.execute("SELECT clip FROM clips").fetchone()[0]
        meta = blob.meta
        print(f"insert with probe: {insert * 1000:.0f} ms; {len(meta['keyframes'])} keyframes "
              f"indexed; codec {meta['codec']}")
        counter = RangeCounter(db.catalog.store)

        # -- 1. bytes read ------------------------------------------------------------
        mid = n // 2
        last = mid + WINDOW - 1
        print(f"\nbytes read for {WINDOW} frames from frame {mid} (of {n}):")
        blob.decode(start=mid, frames=WINDOW)
        got, calls = counter.take()
        least = least_bytes(data, mid, last)
        with blob.open() as reader:  # the same window, without the keyframe index
            decode_video(reader, start=mid, frames=WINDOW)
            no_index = reader.bytes_read
        counter.take()
        blob.decode(start=0, frames=WINDOW)
        first, first_calls = counter.take()
        blob.decode()
        whole, whole_calls = counter.take()
        rows = [
            ("Blob.decode, middle window", got, calls),
            ("  least possible (header + index + keyframe..last frame)", least, None),
            ("  same window decoded from frame 0 (no keyframe index)", no_index, None),
            ("Blob.decode, first 16 frames", first, first_calls),
            ("Blob.decode, whole clip", whole, whole_calls),
            ("clip size", len(data), None),
        ]
        for label, value, nreads in rows:
            extra = f"  {nreads} ranged reads" if nreads is not None else ""
            print(f"  {label:<58} {mb(value):>12}  {100 * value / len(data):5.1f}%{extra}")

        # -- 2. speed ---------------------------------------------------------------
        print(f"\nwhole clip, {n} frames -> ({n}, {side}, {side}, 3) uint8, median of {args.repeats}:")
        runs: dict[str, list[float]] = {"Blob.decode()": [], "decode_video(plain file)": [],
                                         "PyAV to_ndarray(rgb24) (plain file)": []}
        for _ in tqdm(range(args.repeats), desc="whole clip", leave=False, disable=None):
            runs["Blob.decode()"].append(timed(blob.decode))
            runs["decode_video(plain file)"].append(timed(lambda: decode_video(path, meta=meta)))
            runs["PyAV to_ndarray(rgb24) (plain file)"].append(timed(lambda: pyav_all(path)))
        for label, secs in runs.items():
            s = statistics.median(secs)
            print(f"  {label:<40} {n / s:8.0f} frames/s  ({s:.2f} s)")

        rng = np.random.default_rng(args.seed)
        starts = rng.integers(0, n - WINDOW, args.windows)
        print(f"\n{args.windows} random {WINDOW}-frame windows (the dataloader's pattern):")
        runs = {"Blob.decode(start, 16)": [], "decode_video(plain file, start, 16)": [],
                "Blob.decode(start, 16, size=(128, 128))": [],
                "PyAV from frame 0 (plain file)": []}
        window_bytes = []
        for s0 in tqdm(starts.tolist(), desc="windows", leave=False, disable=None):
            runs["Blob.decode(start, 16)"].append(
                timed(lambda s0=s0: blob.decode(start=s0, frames=WINDOW)))
            window_bytes.append(blob.last_bytes_read)
            runs["decode_video(plain file, start, 16)"].append(
                timed(lambda s0=s0: decode_video(path, start=s0, frames=WINDOW, meta=meta)))
            runs["Blob.decode(start, 16, size=(128, 128))"].append(
                timed(lambda s0=s0: blob.decode(start=s0, frames=WINDOW, size=(128, 128))))
            runs["PyAV from frame 0 (plain file)"].append(
                timed(lambda s0=s0: pyav_window(path, s0, WINDOW)))
        for label, secs in runs.items():
            total = sum(secs)
            print(f"  {label:<40} {len(secs) / total:8.1f} windows/s  "
                  f"{len(secs) * WINDOW / total:8.0f} frames/s  (median {statistics.median(secs) * 1000:.1f} ms)")
        print(f"  bytes read per Blob.decode window: median {mb(statistics.median(window_bytes))}, "
              f"max {mb(max(window_bytes))}")
        db.close()


if __name__ == "__main__":
    main()
