"""`reeldb ui` benchmark: time to first grid paint and to first video frame, from the
browser's performance timeline, on a large table; the JSON API's page times at depth;
the server's memory while 8 browser contexts page through the grid.

    python bench/bench_ui.py [--rows 1000000] [--clip-mb 50] [--dim 64]

The table has --rows rows (prompt, model, score, a VECTOR(--dim)); its first 96 rows carry
a small MP4 each and row 1 a --clip-mb MB clip (noise, so it does not compress), the rest
no video. `reeldb ui` runs as its own process; Debian's chromium is driven by Playwright.
Times:
1. first grid paint: navigation start -> the grid's rows are in the page
   (``performance.mark('reeldb-grid-painted')``), and the browser's first-contentful-paint;
2. first video frame: in the big clip's row detail, play() -> the first frame presented
   (``requestVideoFrameCallback``), and after a seek to 80 % of the clip;
3. API pages: first page, a keyset page at 90 % depth, a sorted page, a WHERE page, a
   "more like this" page (median of 5 each, ``elapsed_ms`` the server measured);
4. the server's resident memory before and after 8 contexts each load 10 pages.
Prints figures only (no asserts). About a minute at 100k rows on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import reeldb

from reeldb.media.synth import render_clip  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MEDIA_ROWS = 96


def noise_clip(megabytes: float) -> bytes:
    import av

    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    frames = max(48, int(megabytes * 1e6 / 55_000))  # ~55 KB per 320x240 noise frame
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "20"})
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.codec_context.gop_size = 24
        for _ in range(frames):
            px = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            out.mux(s.encode(av.VideoFrame.from_ndarray(px, format="rgb24")))
        out.mux(s.encode(None))
    return buf.getvalue()


def build(path: str, rows: int, dim: int, clip_mb: float) -> int:
    rng = np.random.default_rng(0)
    models = np.array(["seedance-v2", "veo-3", "kling-1.6"])
    with reeldb.connect(path) as db:
        db.execute(f"CREATE TABLE generations (id BIGINT, prompt TEXT, model_version TEXT, quality_score REAL, "
                   f"prompt_embedding VECTOR({dim}), output_video VIDEO)")
        big = noise_clip(clip_mb)
        with db.transaction():
            for i in range(MEDIA_ROWS):
                clip = big if i == 0 else render_clip(f"prompt {i}", frames=24, fps=12, size=(96, 64))
                db.execute("INSERT INTO generations VALUES (%s, %s, %s, %s, %s, %s)",
                           (i, f"prompt {i}", str(models[i % 3]), float(rng.random()),
                            rng.normal(size=dim).astype(np.float32), clip))
        n = rows - MEDIA_ROWS
        emb = rng.normal(size=(n, dim)).astype(np.float32)
        flat = emb.reshape(-1)
        vectors = pa.FixedSizeListArray.from_arrays(pa.Array.from_buffers(pa.float32(), len(flat),
                                                                          [None, pa.py_buffer(flat)]), dim)
        ids = np.arange(MEDIA_ROWS, rows, dtype=np.int64)
        table = pa.table({"id": ids, "prompt": pa.array([f"prompt {i}" for i in ids]),
                          "model_version": pa.array(models[ids % 3]),
                          "quality_score": rng.random(n).astype(np.float32), "prompt_embedding": vectors})
        db.insert("generations", table)
    return len(big)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clip-mb", type=float, default=50.0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "db")
        t0 = time.perf_counter()
        clip_bytes = build(path, args.rows, args.dim, args.clip_mb)
        print(f"built {args.rows:,} rows (+ a {clip_bytes / 1e6:.1f} MB clip) in {time.perf_counter() - t0:.1f} s")
        proc = subprocess.Popen([sys.executable, "-m", "reeldb", "ui", path, "--port", "0"],
                                stdout=subprocess.PIPE, text=True)
        try:
            url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1).rstrip("/")
            figures = run(url, proc.pid, sync_playwright)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"\n== reeldb ui, {args.rows:,} rows, VECTOR({args.dim}), a {clip_bytes / 1e6:.1f} MB clip")
    for name, value in figures.items():
        print(f"{name:44s} {value}")


def run(url: str, pid: int, sync_playwright) -> dict[str, str]:
    out: dict[str, str] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        paints, fcps = [], []
        for i in range(4):  # the first load warms the server's caches; report the rest too
            ctx = browser.new_context(viewport={"width": 1280, "height": 860})
            page = ctx.new_page()
            page.goto(url + "/?table=generations")
            page.wait_for_function("() => performance.getEntriesByName('reeldb-grid-painted').length > 0",
                                   timeout=120_000)
            painted = page.evaluate("performance.getEntriesByName('reeldb-grid-painted')[0].startTime")
            fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0")
            (paints.append(painted), fcps.append(fcp)) if i else out.update(
                {"first grid paint, cold server (ms)": f"{painted:.0f}"})
            ctx.close()
        out["first grid paint, warm (ms, median of 3)"] = f"{statistics.median(paints):.0f}"
        out["first contentful paint (ms, median of 3)"] = f"{statistics.median(fcps):.0f}"

        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/?table=generations")
        page.wait_for_function("() => document.body.dataset.loaded")
        first_id = page.eval_on_selector(".card", "c => c.dataset.id")
        page.goto(url + f"/?table=generations&row={first_id}")
        page.locator("#detail video").wait_for()
        timing = page.evaluate("""() => new Promise((resolve) => {
            const v = document.querySelector('#detail video');
            const t0 = performance.now();
            v.requestVideoFrameCallback(() => {
              const first = performance.now() - t0;
              v.pause();
              const t1 = performance.now();
              v.currentTime = v.duration * 0.8;
              v.requestVideoFrameCallback(() => resolve([first, performance.now() - t1]));
              v.play();
            });
            v.play();
        })""")
        out["first video frame after play() (ms)"] = f"{timing[0]:.0f}"
        out["first frame after a seek to 80% (ms)"] = f"{timing[1]:.0f}"
        ctx.close()

        api = url + "/api/rows/generations"
        ids = get(api + "?limit=48")
        top = int(get(api.replace("/rows/", "/facets/") + "?column=id")["max"])
        deep_rowid = get(api + f"?limit=1&sort=id&order=desc&offset={top // 10}")["rows"][0]["id"]
        views = {
            "API first page (ms)": api + "?limit=48",
            "API keyset page past 90% of rows (ms)": api + f"?limit=48&after={deep_rowid}",
            "API sorted page, offset 1000 (ms)": api + "?limit=48&sort=quality_score&order=desc&offset=1000",
            "API WHERE page (ms)": api + "?limit=48&where=" + urllib.request.quote("quality_score > 0.5 AND model_version = 'veo-3'"),
            "API more like this (ms)": api + f"?limit=48&similar={ids['rows'][1]['id']}",
        }
        for name, u in views.items():
            times = [get(u)["elapsed_ms"] for _ in range(5)]
            out[name] = f"{statistics.median(times):.1f}"

        before = rss_mb(pid)
        contexts = [browser.new_context() for _ in range(8)]
        pages = [c.new_page() for c in contexts]
        for pg in pages:
            pg.goto(url + "/?table=generations")
        for pg in pages:
            pg.wait_for_function("() => document.body.dataset.loaded")
        for _ in range(9):
            for pg in pages:
                old = pg.evaluate("document.body.dataset.loaded")
                pg.click("#more")
                pg.wait_for_function("(b) => document.body.dataset.loaded !== b", arg=old, timeout=120_000)
        out["server RSS before / after 8 contexts x 10 pages (MB)"] = f"{before:.0f} / {rss_mb(pid):.0f}"
        for c in contexts:
            c.close()
        browser.close()
    return out


if __name__ == "__main__":
    main()
