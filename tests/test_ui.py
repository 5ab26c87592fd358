"""`reeldb ui` in a real browser: Debian's Chromium driven by Playwright, against a real
`reeldb ui` process over a database of real MP4 clips and PNG images.

Screenshots of the main pages go to the pytest tmp dir (``ui-screenshots``)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reeldb
from reeldb.media.synth import render_clip, render_image

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (make chromium)", allow_module_level=True)

ROWS = 8
MODELS = ("seedance-v2", "veo-3")


def _noise_clip(frames: int = 480, fps: int = 24) -> bytes:
    """A 26 MB MP4 of noise (moov at the end, a keyframe a second): big enough that a seek
    must be served by a range request from the middle, not by the first download."""
    import av

    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = fps
        for _ in range(frames):
            pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _embedding(i: int) -> np.ndarray:
    """Unit vectors at growing angles: row 1's neighbours in order are rows 2, 3, ..."""
    v = np.zeros(8, dtype=np.float32)
    v[0], v[1] = np.cos(i * 0.3), np.sin(i * 0.3)
    v[2] = 0.1 * ((i * 7) % 3)
    return v


@pytest.fixture(scope="module")
def ui_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("ui") / "db")
    with reeldb.connect(path) as db:
        db.execute("CREATE TABLE clips (id SERIAL PRIMARY KEY, prompt TEXT, model TEXT, score REAL, "
                   "emb VECTOR(8), clip VIDEO, thumb IMAGE, info JSONB, human_preference JSONB)")
        for i in range(ROWS):
            prompt = f"a {['red', 'blue', 'green', 'gold'][i % 4]} fox number {i}"
            clip = _noise_clip() if i == ROWS - 1 else render_clip(prompt, frames=24, fps=12, size=(64, 48))
            db.execute("INSERT INTO clips (prompt, model, score, emb, clip, thumb, info) "
                       "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                       (prompt, MODELS[i % 2], round(0.1 * i + 0.05, 2), _embedding(i), clip,
                        render_image(prompt, size=(48, 32)), json.dumps({"seed": i, "split": "train"})))
        db.branch("experiment", checkout=True)
        db.execute("UPDATE clips SET score = 0.99 WHERE id = 2")
        db.execute("DELETE FROM clips WHERE id = 3")
    return path


def _start_ui(path: str, *options: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "reeldb", "ui", path, "--port", "0", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"(http://\S+)", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"reeldb ui did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, m.group(1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def ui(ui_path: str) -> Iterator[str]:
    proc, url = _start_ui(ui_path)
    yield url.rstrip("/")
    _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    yield pg
    context.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _sql_ids(path: str, sql: str, params: Any = None, branch: str = "main") -> list[str]:
    with reeldb.connect(path, create=False) as db:
        view = db.at(branch)
        try:
            return [str(r[0]) for r in view.execute(sql, params).fetchall()]
        finally:
            view.close()


def _wait_loaded(page: Any, before: str | None) -> None:
    page.wait_for_function("(b) => document.body.dataset.loaded && document.body.dataset.loaded !== b", arg=before)


def _card_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.id)")


def _open(page: Any, url: str) -> None:
    page.goto(url)
    _wait_loaded(page, None)


def _open_grid(page: Any, url: str) -> None:
    """The grid, and its sidebar's value lists too: they scan the table after the rows, and
    on a loaded machine a filter applied meanwhile would queue behind them."""
    _open(page, url)
    page.wait_for_function("() => document.body.dataset.facets")


def test_grid_loads_rows_and_the_api_answers_json(ui: str, ui_path: str, page: Any, shots: Path) -> None:
    _open_grid(page, ui + "/")
    want = _sql_ids(ui_path, "SELECT _rowid FROM clips ORDER BY _rowid")
    assert _card_ids(page) == want
    assert page.locator(".card video.cell-video").count() == ROWS
    assert "prompt" in page.inner_text(".card >> nth=0")
    page.wait_for_load_state("networkidle")  # the poster frames
    assert page.evaluate("[...document.querySelectorAll('.card video')].every(v => v.poster)")
    page.screenshot(path=str(shots / "grid.png"))

    status, headers, body = _get(ui + "/api/rows/clips?limit=3")
    assert status == 200 and headers["content-type"].startswith("application/json")
    data = json.loads(body)
    assert [r["id"] for r in data["rows"]] == want[:3] and data["next"] == {"after": want[2]}
    cells = dict(zip([c["name"] for c in data["columns"]], data["rows"][0]["cells"]))
    assert cells["emb"]["kind"] == "vector" and cells["emb"]["shape"] == [8]
    assert abs(cells["emb"]["norm"] - float(np.linalg.norm(_embedding(0)))) < 1e-5
    assert cells["clip"]["kind"] == "video" and cells["clip"]["meta"]["frames"] == 24
    assert "keyframes" not in cells["clip"]["meta"]  # summaries stay small
    nxt = json.loads(_get(ui + f"/api/rows/clips?limit=3&after={want[2]}")[2])
    assert [r["id"] for r in nxt["rows"]] == want[3:6]


def test_a_video_plays_from_range_requests_and_seeking_asks_for_a_small_range(
        ui: str, ui_path: str, page: Any, shots: Path) -> None:
    media: list[tuple[str, int, str | None, str | None]] = []
    page.on("response", lambda r: media.append((r.url, r.status, r.request.headers.get("range"),
                                                 r.headers.get("content-range"))) if "/media/" in r.url else None)
    _open_grid(page, ui + "/")
    first = page.locator(".card video.cell-video").first
    first.hover()
    page.wait_for_function("() => document.querySelector('.card video').currentTime > 0.3", timeout=15000)
    assert any(status == 206 and rng and cr and cr.startswith("bytes ") for _, status, rng, cr in media), media

    # the 26 MB clip in the row detail: metadata first, then a seek near the end
    long_id = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = $1", (ROWS,))[0]
    size = int(json.loads(_get(ui + f"/api/row/clips/{long_id}")[2])["cells"]["clip"]["bytes"])
    before = json.loads(_get(ui + "/api/stats")[2])["media_bytes_sent"]
    media.clear()
    page.goto(ui + f"/?table=clips&row={long_id}")
    video = page.locator("#detail video")
    video.wait_for()
    page.wait_for_function("() => document.querySelector('#detail video').readyState >= 1", timeout=15000)
    assert "keyframes: 20" in page.inner_text("#detail-body")
    page.screenshot(path=str(shots / "detail.png"))
    asked = len(media)
    page.evaluate("() => { const v = document.querySelector('#detail video'); v.currentTime = v.duration * 0.8; }")
    page.wait_for_function("() => { const v = document.querySelector('#detail video'); "
                           "return !v.seeking && v.readyState >= 2 && v.currentTime > v.duration * 0.7; }", timeout=15000)
    starts = [int(re.match(r"bytes=(\d+)-", rng).group(1)) for _, status, rng, _ in media[asked:]
              if status == 206 and rng]
    assert starts and max(starts) > size * 0.5, (starts, size)  # asked from the middle, not from 0
    sent = json.loads(_get(ui + "/api/stats")[2])["media_bytes_sent"] - before
    assert sent < size * 0.5, (sent, size)  # read what was shown, not the clip


def test_ranges_answer_206_416_and_read_only_the_bytes_asked(ui: str) -> None:
    data = json.loads(_get(ui + "/api/rows/clips?limit=1")[2])
    url = ui + next(c["url"] for c in data["rows"][0]["cells"] if isinstance(c, dict) and c.get("kind") == "video")
    status, headers, whole = _get(url)
    assert status == 200 and headers["accept-ranges"] == "bytes" and headers["content-type"] == "video/mp4"
    status, headers, part = _get(url, {"Range": "bytes=10-29"})
    assert status == 206 and part == whole[10:30] and headers["content-range"] == f"bytes 10-29/{len(whole)}"
    status, headers, tail = _get(url, {"Range": "bytes=-16"})
    assert status == 206 and tail == whole[-16:]
    for bad in (f"bytes={len(whole)}-", "bytes=9-3", "bytes=x-1", "items=0-1"):
        status, headers, body = _get(url, {"Range": bad})
        assert status == 416 and headers["content-range"] == f"bytes */{len(whole)}", bad
        assert whole[:16] not in body
    assert "immutable" in _get(url, {"Range": "bytes=0-1"})[1]["cache-control"]  # a commit's URL


def test_media_by_branch_name_follows_the_branch_and_is_not_cached_for_good(ui: str, ui_path: str) -> None:
    removed = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 3")[0]  # deleted on experiment
    status, headers, body = _get(ui + f"/media/main/clips/clip/{removed}", {"Range": "bytes=0-7"})
    assert status == 206 and body[4:8] == b"ftyp" and headers["cache-control"] == "no-cache"
    status, _, _ = _get(ui + f"/media/experiment/clips/clip/{removed}", {"Range": "bytes=0-7"})
    assert status == 404
    status, _, body = _get(ui + f"/media/no-such-branch/clips/clip/{removed}")
    assert status >= 400 and b"ftyp" not in body


def test_filters_and_the_sql_box_change_the_rows_and_the_url_reproduces_the_view(
        ui: str, ui_path: str, page: Any) -> None:
    _open_grid(page, ui + "/")
    before = page.evaluate("document.body.dataset.loaded")
    page.fill("#where", "score > 0.4 AND prompt LIKE '%fox%'")
    page.click("#apply")
    _wait_loaded(page, before)
    want = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE score > 0.4 AND prompt LIKE '%fox%' ORDER BY _rowid")
    assert 0 < len(want) < ROWS and _card_ids(page) == want

    before = page.evaluate("document.body.dataset.loaded")
    page.check(f".facet[data-column=model] input[value='{MODELS[1]}']")
    page.click("#apply")
    _wait_loaded(page, before)
    want = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE score > 0.4 AND prompt LIKE '%fox%' AND model = $1 "
                             "ORDER BY _rowid", (MODELS[1],))
    assert len(want) > 0 and _card_ids(page) == want

    shared = page.url  # the same view from its URL, in a fresh page
    assert "where=" in shared and "in.model=" in shared
    other = page.context.new_page()
    _open(other, shared)
    assert _card_ids(other) == want and other.input_value("#where").startswith("score > 0.4")

    before = page.evaluate("document.body.dataset.loaded")
    page.fill("#where", "score > 0.1; DELETE FROM clips")
    page.click("#apply")
    _wait_loaded(page, before)
    assert "42601" in page.inner_text("#error")
    assert len(_sql_ids(ui_path, "SELECT _rowid FROM clips")) == ROWS


def test_sort_and_json_filter(ui: str, ui_path: str) -> None:
    data = json.loads(_get(ui + "/api/rows/clips?sort=score&order=desc&limit=3")[2])
    assert [r["id"] for r in data["rows"]] == _sql_ids(ui_path, "SELECT _rowid FROM clips ORDER BY score DESC LIMIT 3")
    assert data["next"] == {"offset": 3}
    data = json.loads(_get(ui + "/api/rows/clips?json.info=seed%3D5")[2])
    assert [r["id"] for r in data["rows"]] == _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE info->>'seed' = '5'")
    status, _, body = _get(ui + "/api/rows/clips?sort=emb")
    assert status == 400 and json.loads(body)["sqlstate"] == "42804"


def test_more_like_this_orders_by_similarity(ui: str, ui_path: str, page: Any, shots: Path) -> None:
    _open_grid(page, ui + "/")
    target = _card_ids(page)[1]
    before = page.evaluate("document.body.dataset.loaded")
    page.click(f".card[data-id='{target}'] button.similar")
    _wait_loaded(page, before)
    with reeldb.connect(ui_path, create=False) as db:
        rows = db.execute("SELECT _rowid, emb FROM clips").fetchall()
    vectors = {str(r): np.asarray(v, dtype=np.float64) for r, v in rows}
    q = vectors[target]
    cosine = {r: 1 - float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q))) for r, v in vectors.items()}
    want = sorted(cosine, key=lambda r: (cosine[r], int(r)))
    got = _card_ids(page)
    assert got == want and got[0] == target
    shown = [float(t.split()[1]) for t in page.eval_on_selector_all(".card .distance", "d => d.map(x => x.textContent)")]
    assert shown == sorted(shown)
    page.screenshot(path=str(shots / "similar.png"))


def _cosine_order(path: str, q: np.ndarray) -> list[str]:
    with reeldb.connect(path, create=False) as db:
        rows = db.execute("SELECT _rowid, emb FROM clips").fetchall()
    d = {str(r): 1 - float(np.dot(v, q) / (np.linalg.norm(v) * np.linalg.norm(q))) for r, v in rows}
    return sorted(d, key=lambda r: (d[r], int(r)))


def test_search_by_a_pasted_vector_and_by_text_through_an_embedding_function(
        ui: str, ui_path: str, page: Any, tmp_path: Path) -> None:
    q = _embedding(5) + np.float32(0.05)
    near = json.dumps([float(x) for x in q])
    want = _cosine_order(ui_path, q.astype(np.float64))
    data = json.loads(_get(ui + "/api/rows/clips?near=" + urllib.request.quote(near))[2])
    assert [r["id"] for r in data["rows"]] == want and data["similar"]["vector"] is True
    for bad, state in (('[1, "x"]', "22P02"), ("[1, 2]", None), ("not a vector", "22P02")):
        status, _, body = _get(ui + "/api/rows/clips?near=" + urllib.request.quote(bad))
        assert 400 <= status < 500 and b"fox" not in body, bad
        assert state is None or json.loads(body)["sqlstate"] == state
    status, _, body = _get(ui + "/api/rows/clips?near_text=fox")
    assert status == 400 and json.loads(body)["sqlstate"] == "0A000"

    _open(page, ui + "/?table=clips")
    before = page.evaluate("document.body.dataset.loaded")
    page.fill("#near", near)
    page.click("#apply")
    _wait_loaded(page, before)
    assert _card_ids(page) == want

    (tmp_path / "ui_embed_fixture.py").write_text(
        "import numpy as np\n"
        "def embed(text):\n"
        "    i = int(text.split()[-1])\n"
        "    v = np.zeros(8, dtype=np.float32)\n"
        "    v[0], v[1], v[2] = np.cos(i * 0.3), np.sin(i * 0.3), 0.1 * ((i * 7) % 3)\n"
        "    return v\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc, url = _start_ui(ui_path, "--embed", "ui_embed_fixture:embed", env=env)
    try:
        data = json.loads(_get(url.rstrip("/") + "/api/rows/clips?near_text=" + urllib.request.quote("fox number 3"))[2])
        assert [r["id"] for r in data["rows"]] == _cosine_order(ui_path, _embedding(3).astype(np.float64))
        assert data["similar"]["text"] == "fox number 3"
        status, _, body = _get(url.rstrip("/") + "/api/rows/clips?near_text=no+number")
        assert status == 400 and b"embedding function failed" in body
    finally:
        _stop(proc)


def test_row_detail_steps_through_decoded_frames(ui: str, ui_path: str, page: Any) -> None:
    rowid = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 1")[0]
    _open(page, ui + f"/?table=clips&row={rowid}")
    page.locator("#detail img.frame").wait_for()
    body = page.inner_text("#detail-body")
    for column in ("prompt", "model", "score", "emb", "clip", "thumb", "info"):
        assert column in body
    first = page.get_attribute("#detail img.frame", "src")
    page.click("#detail .next-frame")
    page.wait_for_function("(s) => document.querySelector('#detail img.frame').src.indexOf(s) < 0 && "
                           "document.querySelector('#detail img.frame').complete", arg=first)
    assert "frame 1 / 23" in page.inner_text("#detail .frames")
    assert page.evaluate("document.querySelector('#detail img.frame').naturalWidth") == 64
    status, headers, png = _get(ui + page.get_attribute("#detail img.frame", "src"))
    assert status == 200 and headers["content-type"] == "image/png" and png.startswith(b"\x89PNG")


def test_row_history_names_the_commits_that_changed_the_row(ui: str, ui_path: str, page: Any) -> None:
    changed = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 2")[0]
    with reeldb.connect(ui_path, create=False) as db:
        log = {c["id"]: c for c in db.log(branch="experiment")}
    got = json.loads(_get(ui + f"/api/history/clips/{changed}?ref=experiment")[2])["commits"]
    kinds = [(c["change"], c["columns"]) for c in got]
    assert kinds == [("changed", ["score"]), ("added", [])]
    assert all(c["commit"] in log for c in got)
    assert log[got[0]["commit"]]["tables"]["clips"]["updated"] == 1
    assert log[got[1]["commit"]]["tables"]["clips"]["inserted"] == 1
    main = json.loads(_get(ui + f"/api/history/clips/{changed}?ref=main")[2])["commits"]
    assert [c["change"] for c in main] == ["added"] and main[0]["commit"] == got[1]["commit"]

    _open(page, ui + f"/?table=clips&ref=experiment&row={changed}")
    page.wait_for_function("(id) => document.body.dataset.history === id", arg=changed)
    assert "changed score" in page.inner_text("#row-history")


def test_branch_picker_and_diff_show_the_right_rows(ui: str, ui_path: str, page: Any, shots: Path) -> None:
    _open(page, ui + "/?table=clips&ref=experiment")
    assert _card_ids(page) == _sql_ids(ui_path, "SELECT _rowid FROM clips ORDER BY _rowid", branch="experiment")
    assert len(_card_ids(page)) == ROWS - 1
    page.goto(ui + "/?table=clips&page=diff&a=main&b=experiment")
    page.locator("#diff-out table").wait_for()
    text = page.inner_text("#diff-out")
    removed = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 3")[0]
    changed = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 2")[0]
    assert "−1" in text and "~1" in text
    assert page.locator("#diff-out tr.removed td:nth-child(2)").inner_text() == removed
    assert page.locator("#diff-out tr.changed td:nth-child(2)").inner_text() == changed
    assert "score:" in page.locator("#diff-out tr.changed").inner_text()
    page.screenshot(path=str(shots / "diff.png"))


def test_compare_puts_two_branches_side_by_side_on_one_filter(ui: str, ui_path: str, page: Any,
                                                              shots: Path) -> None:
    where = "score < 0.6"
    data = json.loads(_get(ui + "/api/compare/clips?a=main&b=experiment&metric=score&where="
                       + urllib.request.quote(where))[2])
    with reeldb.connect(ui_path, create=False) as db:
        for side, branch in (("a", "main"), ("b", "experiment")):
            n, mean = db.execute(f'SELECT count(*), avg(score) FROM "{branch}".clips WHERE {where}').fetchone()
            assert data[side]["rows"] == n and abs(data[side]["mean"] - mean) < 1e-9
        prompts = [r[0] for r in db.execute(f"SELECT prompt FROM clips WHERE {where} ORDER BY _rowid").fetchall()]
        want = {side: {p: [str(r)] for r, p in db.execute(
            f'SELECT _rowid, prompt FROM "{branch}".clips WHERE {where}').fetchall()}
            for side, branch in (("a", "main"), ("b", "experiment"))}
    assert [g["value"] for g in data["groups"]] == prompts
    for g in data["groups"]:
        for side in ("a", "b"):
            assert [r["id"] for r in g[side]] == want[side].get(g["value"], []), (g["value"], side)
    missing_on_b = sum(1 for p in prompts if p not in want["b"])
    assert missing_on_b == 2  # row 3 deleted there, row 2's score moved out of the filter

    page.goto(ui + "/?table=clips&page=compare&a=main&b=experiment&metric=score&where="
              + urllib.request.quote(where))
    page.wait_for_function("() => document.body.dataset.compared")
    assert page.locator("#compare-out .group").count() == len(prompts)
    assert page.locator("#compare-out .side-b .none").count() == missing_on_b
    assert f"{data['b']['rows']}" in page.inner_text("#compare-totals .total-b")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / "compare.png"))


def test_a_non_loopback_bind_without_login_is_refused(ui_path: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "reeldb", "ui", ui_path, "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "--login" in proc.stderr and "serving" not in proc.stdout
    with reeldb.connect(ui_path, create=False) as db, pytest.raises(reeldb.Error) as info:
        db.ui(host="0.0.0.0", port=0)
    assert info.value.sqlstate == "28000"


def test_a_token_server_refuses_requests_without_the_token(ui_path: str, browser: Any) -> None:
    proc, url = _start_ui(ui_path, "--login")
    try:
        base, token = url.split("?token=")
        base = base.rstrip("/")
        rows = json.loads(_get(base + "/api/rows/clips", {"Authorization": f"Bearer {token}"})[2])
        media = base + rows["rows"][0]["cells"][5]["url"]
        for path in ("/", "/api/refs", "/api/tables", "/api/rows/clips", "/api/row/clips/1", "/static/app.js",
                     "/api/diff?a=main&b=experiment", media[len(base):]):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "reeldb_ui_token=wrong"}):
                status, _, body = _get(base + path, headers)
                assert status == 401, (path, headers)
                assert b"fox" not in body and b"ftyp" not in body and b"seedance" not in body
        status, headers, body = _get(media, {"Authorization": f"Bearer {token}", "Range": "bytes=0-15"})
        assert status == 206 and len(body) == 16
        context = browser.new_context()
        try:
            pg = context.new_page()
            pg.goto(url)  # the printed link: the token becomes a cookie and leaves the URL
            _wait_loaded(pg, None)
            assert "token" not in pg.url and len(_card_ids(pg)) == ROWS
        finally:
            context.close()
    finally:
        _stop(proc)


def test_loopback_server_refuses_other_host_names(ui: str) -> None:
    status, _, body = _get(ui + "/api/rows/clips", {"Host": "attacker.example:8700"})
    assert status == 403 and b"fox" not in body


def test_db_ui_serves_from_python_and_closes(ui_path: str) -> None:
    with reeldb.connect(ui_path, create=False) as db:
        handle = db.ui(port=0)
        try:
            assert handle.url.startswith("http://127.0.0.1:")
            data = json.loads(_get(handle.url + "api/tables")[2])
            assert [t["name"] for t in data["tables"]] == ["clips"]
        finally:
            handle.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(handle.url + "api/tables", timeout=5)
        assert db.execute("SELECT count(*) FROM clips").fetchone()[0] == ROWS


def _preferences(path: str, branch: str) -> dict[str, dict[str, Any]]:
    with reeldb.connect(path, create=False) as db:
        view = db.at(branch)
        try:
            return {str(r): p or {} for r, p in view.execute("SELECT _rowid, human_preference FROM clips").fetchall()}
        finally:
            view.close()


def test_two_labellers_at_once_write_every_label_exactly_once_on_the_labelling_branch(
        ui_path: str, browser: Any, shots: Path) -> None:
    proc, url = _start_ui(ui_path, "--label-branch", "labels/ab")
    contexts = []
    try:
        base = url.rstrip("/")
        pages = {}
        for name in ("alice", "bob"):  # the same seed: both label the same pairs, so their commits collide
            contexts.append(browser.new_context(viewport={"width": 1280, "height": 860}))
            pg = contexts[-1].new_page()
            pg.goto(base + f"/?table=clips&page=label&by=model&labeller={name}&batch=100&seed=3")
            pg.wait_for_function("() => document.body.dataset.pairShown")
            pages[name] = pg
        keys = {"alice": ["1", "2", "3", "1"], "bob": ["2", "2", "1", "3"]}
        verdict = {"1": "a", "2": "b", "3": "tie"}
        labelled: dict[str, list[tuple[str, str, str]]] = {}
        for name, pg in pages.items():
            labelled[name] = []
            for key in keys[name]:
                shown = pg.evaluate("document.body.dataset.pairShown")
                a, b = shown.split("-")
                labelled[name].append((a, b, verdict[key]))
                pg.keyboard.press(key)
                pg.wait_for_function("(s) => document.body.dataset.pairShown !== s", arg=shown)
        pages["alice"].screenshot(path=str(shots / "label.png"))
        with reeldb.connect(ui_path, create=False) as db:
            commits_before = len(db.log(branch="labels/ab"))
        for pg in pages.values():  # both batches at once
            pg.evaluate("() => document.getElementById('label-save').click()")
        for pg in pages.values():
            pg.wait_for_function("() => document.body.dataset.labelsSaved === '4'", timeout=30000)
        assert [p[:2] for p in labelled["alice"]] == [p[:2] for p in labelled["bob"]]

        prefs = _preferences(ui_path, "labels/ab")
        want_keys = 0
        for name, pairs in labelled.items():
            for a, b, winner in pairs:
                key = f"{name}:{min(int(a), int(b))}-{max(int(a), int(b))}"
                result_a = {"a": "win", "b": "loss", "tie": "tie"}[winner]
                result_b = {"a": "loss", "b": "win", "tie": "tie"}[winner]
                assert prefs[a][key]["result"] == result_a and prefs[a][key]["vs"] == b
                assert prefs[b][key]["result"] == result_b and prefs[b][key]["vs"] == a
                want_keys += 2
        assert sum(len(p) for p in prefs.values()) == want_keys  # each label once, none lost
        with reeldb.connect(ui_path, create=False) as db:
            new = db.log(branch="labels/ab")[: len(db.log(branch="labels/ab")) - commits_before]
        # one commit per batch (auto-compaction may add its own)
        assert sorted(c["message"] for c in new if c["message"].startswith("labels")) == [
            "labels: 4 pairs of clips by alice", "labels: 4 pairs of clips by bob"]
        assert all(not p for p in _preferences(ui_path, "main").values())  # main untouched

        # a write from elsewhere is refused, and changes nothing
        body = json.dumps({"labeller": "mallory", "labels": [{"a": "1", "b": "2", "winner": "a"}]}).encode()
        for headers in ({"Content-Type": "text/plain"},
                        {"Content-Type": "application/json", "Origin": "http://attacker.example"}):
            req = urllib.request.Request(base + "/api/labels/clips", data=body, headers=headers, method="POST")
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req, timeout=30)
            assert info.value.code in (400, 403)
        assert _preferences(ui_path, "labels/ab") == prefs
    finally:
        for c in contexts:
            c.close()
        _stop(proc)


def test_labelling_is_off_unless_asked_for(ui: str, ui_path: str) -> None:
    body = json.dumps({"labeller": "eve", "labels": [{"a": "1", "b": "2", "winner": "a"}]}).encode()
    req = urllib.request.Request(ui + "/api/labels/clips", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 403 and json.loads(info.value.read())["sqlstate"] == "42501"
    assert json.loads(_get(ui + "/api/config")[2]) == {"labelling": None, "embed": False}
    assert all(not p for p in _preferences(ui_path, "main").values())


def test_embeddings_map_is_a_pca_and_its_selection_feeds_the_grid(ui: str, ui_path: str, page: Any,
                                                                  shots: Path) -> None:
    data = json.loads(_get(ui + "/api/map/clips?color=model")[2])
    with reeldb.connect(ui_path, create=False) as db:
        rows = {str(r): (np.asarray(v, dtype=np.float64), m)
                for r, v, m in db.execute("SELECT _rowid, emb, model FROM clips").fetchall()}
    assert sorted(p["id"] for p in data["points"]) == sorted(rows)
    x = np.stack([rows[p["id"]][0] for p in data["points"]])
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    want = centred @ vt[:2].T
    got = np.array([[p["x"], p["y"]] for p in data["points"]])
    for k in range(2):  # a component's sign is arbitrary
        assert np.allclose(got[:, k], want[:, k], atol=1e-5) or np.allclose(got[:, k], -want[:, k], atol=1e-5)
    assert np.allclose(data["explained"], (s[:2] ** 2) / np.sum(centred ** 2), atol=1e-6)
    assert all(p["c"] == rows[p["id"]][1] for p in data["points"])

    page.goto(ui + "/?table=clips&page=map&color=model")
    page.wait_for_function("(n) => document.body.dataset.mapPoints === String(n)", arg=ROWS)
    page.screenshot(path=str(shots / "map.png"))
    box = page.locator("#map-canvas").bounding_box()
    page.mouse.move(box["x"] + 1, box["y"] + 1)  # the left half of the canvas
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 1, steps=5)
    page.mouse.up()
    mid = (got[:, 0].min() + got[:, 0].max()) / 2
    left = sorted((p["id"] for p in data["points"] if p["x"] <= mid), key=int)
    assert 0 < len(left) < ROWS
    before = page.evaluate("document.body.dataset.loaded")
    page.click("#map-show")
    _wait_loaded(page, before)
    assert _card_ids(page) == left and "ids=" in page.url


def test_a_restricted_login_cannot_see_another_branch(ui_path: str) -> None:
    """The app reads with the serving connection's login: a login whose branch patterns
    name only main sees nothing of experiment, by any route (Connection.at alone would let
    a view of experiment through)."""
    from reeldb.sql.rights import Rights

    removed = _sql_ids(ui_path, "SELECT _rowid FROM clips WHERE id = 3")[0]  # on main only
    with reeldb.connect(ui_path, create=False) as db:
        experiment_head = next(b["commit"] for b in db.branches() if b["name"] == "experiment")
        db.session.rights = Rights(user="reader", read_only=True, patterns=("main",))
        handle = db.ui(port=0)
        try:
            base = handle.url.rstrip("/")
            assert [b["name"] for b in json.loads(_get(base + "/api/refs")[2])["branches"]] == ["main"]
            assert len(json.loads(_get(base + "/api/rows/clips")[2])["rows"]) == ROWS
            for path in ("/api/rows/clips?ref=experiment", f"/api/rows/clips?ref={experiment_head}",
                         "/api/tables?ref=experiment", f"/api/row/clips/{removed}?ref=experiment",
                         "/api/diff?a=main&b=experiment", "/api/map/clips?ref=experiment",
                         f"/api/history/clips/{removed}?ref=experiment",
                         f"/media/experiment/clips/clip/{removed}", f"/frame/{experiment_head}/clips/clip/{removed}"):
                status, _, body = _get(base + path)
                assert status == 403 and json.loads(body)["sqlstate"] == "42501", (path, status, body[:200])
                assert b"fox" not in body and b"ftyp" not in body
        finally:
            handle.close()


def test_login_by_the_databases_users_applies_each_users_rights(ui_path: str, browser: Any,
                                                                tmp_path: Path) -> None:
    from reeldb.server import users

    empty = str(tmp_path / "empty")
    reeldb.connect(empty).close()
    proc = subprocess.run([sys.executable, "-m", "reeldb", "ui", empty, "--port", "0", "--login", "users"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "reeldb user add" in proc.stderr

    with reeldb.connect(ui_path, create=False) as db:
        users.add_user(db.catalog.store, "reader", "s3cret pass", readonly=True, branches=["main"])
        users.add_user(db.catalog.store, "lead", "other pass")
    proc, url = _start_ui(ui_path, "--login", "users")
    try:
        base = url.rstrip("/")
        assert "token" not in url

        def basic(name: str, password: str) -> dict[str, str]:
            import base64

            return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}

        for headers in ({}, basic("reader", "wrong"), basic("nobody", "s3cret pass"), {"Authorization": "Basic %%%"}):
            status, got, body = _get(base + "/api/rows/clips", headers)
            assert status == 401 and got["www-authenticate"].startswith("Basic") and b"fox" not in body
        reader, lead = basic("reader", "s3cret pass"), basic("lead", "other pass")
        assert [b["name"] for b in json.loads(_get(base + "/api/refs", reader)[2])["branches"]] == ["main"]
        assert len(json.loads(_get(base + "/api/rows/clips", reader)[2])["rows"]) == ROWS
        status, _, body = _get(base + "/api/rows/clips?ref=experiment", reader)
        assert status == 403 and b"fox" not in body
        assert "experiment" in [b["name"] for b in json.loads(_get(base + "/api/refs", lead)[2])["branches"]]
        assert len(json.loads(_get(base + "/api/rows/clips?ref=experiment", lead)[2])["rows"]) == ROWS - 1

        context = browser.new_context(http_credentials={"username": "reader", "password": "s3cret pass"})
        try:
            pg = context.new_page()
            _open(pg, base + "/?table=clips")
            assert len(_card_ids(pg)) == ROWS
            pg.goto(base + "/?table=clips&ref=experiment")
            pg.wait_for_function("() => !document.getElementById('error').hidden")
            assert "42501" in pg.inner_text("#error") and len(_card_ids(pg)) == 0
        finally:
            context.close()
    finally:
        _stop(proc)
        with reeldb.connect(ui_path, create=False) as db:
            users.remove_user(db.catalog.store, "reader")
            users.remove_user(db.catalog.store, "lead")


def test_serves_a_database_on_object_storage(s3_url: str) -> None:
    with reeldb.connect(s3_url) as db:
        db.execute("CREATE TABLE clips (id INT, prompt TEXT, clip VIDEO)")
        clip = render_clip("a fox on s3", frames=12, fps=12, size=(32, 32))
        db.execute("INSERT INTO clips VALUES (1, 'a fox on s3', %s)", (clip,))
    proc, url = _start_ui(s3_url)
    try:
        data = json.loads(_get(url.rstrip("/") + "/api/rows/clips")[2])
        assert [r["cells"][1] for r in data["rows"]] == ["a fox on s3"]
        status, headers, body = _get(url.rstrip("/") + data["rows"][0]["cells"][2]["url"], {"Range": "bytes=4-11"})
        assert status == 206 and body == clip[4:12] and headers["content-range"] == f"bytes 4-11/{len(clip)}"
    finally:
        _stop(proc)
