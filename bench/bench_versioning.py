"""Versioning benchmark: branch creation, three-way and fast-forward merge, diff and time
travel on a large table; 10,000 single-row INSERTs (the brief's ``log_generation``) with
automatic compaction against the same rows bulk-loaded; Deeplake and Lance measured in the
same run wherever they support the operation.

    python bench/bench_versioning.py [--rows 1000000] [--quick] [--out DIR]

Prints figures only (no asserts); see bench/README.md ("Versioning") for what each means.
reeldb runs in this process. Each peer runs in a child process of this script (the same
data, regenerated from the same seed), inside a private network namespace (``unshare -n``)
where one can be made, so a peer's own reporting cannot reach the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

_SRC: str | None = None  # set when reeldb is imported from this checkout's src/
try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    _SRC = str(Path(__file__).resolve().parents[1] / "src")
    sys.path.insert(0, _SRC)
    import reeldb

# the brief's schema, curation query and ingestion function, verbatim
from reeldb.demo import CURATION, SCHEMA, log_generation  # noqa: E402 - after the src/ fallback
from summary import print_table  # noqa: E402 - bench/ is the script's folder

PEERS = ("deeplake", "lance")
PEER_PINS = {"deeplake": "deeplake==4.7.4", "lance": "pylance"}
# Set before a peer is imported. Lance: quiet logs. Deeplake: nothing documented turns its
# built-in (Sentry) error reporting off, which is why peers run in a network namespace.
PEER_ENV = {"LANCE_LOG": "error", "SENTRY_DSN": "", "OTEL_SDK_DISABLED": "true"}

BIG_SCHEMA = """
CREATE TABLE t (
id BIGINT PRIMARY KEY,
name TEXT,
score DOUBLE PRECISION,
n INT,
emb VECTOR({dim})
)
"""
MODELS = ("seedance-v2", "veo-3", "kling-1.6")
FRAMES = (24, 48, 72, 96)
COND_IMG_BYTES = 2 * 1024  # stored inline in the Parquet fragment
VIDEO_BYTES = 32 * 1024  # goes to a blob pack
TOP_K = 500
# The curation query as peers run it (the brief's filter and ranking, without output_video).
PEER_FILTER = "quality_score > 0.85 AND model_version = 'seedance-v2' AND num_frames >= 48"


# -- reporting ---------------------------------------------------------------------------------
_START = time.time()  # a child process gets its parent's start, so step times line up


def step(msg: str) -> None:
    """One progress line, with the time since the benchmark started."""
    tqdm.write(f"[{time.time() - _START:7.1f}s] {msg}")
    sys.stdout.flush()


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms" if seconds >= 0.001 else f"{seconds * 1e3:.2f} ms"


def load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bar(it: Iterable[Any], desc: str, unit: str, total: int | None = None) -> Any:
    """A progress bar on stderr, shown only on a terminal."""
    return tqdm(it, desc=desc, unit=unit, total=total, leave=False, disable=None)


# -- data (regenerated identically in every process from --seed) -------------------------------
@dataclass
class BigData:
    """The large table: scalars + VECTOR(dim); row i has id i."""

    n: int
    ids: np.ndarray
    names: list[str]
    score: np.ndarray
    num: np.ndarray
    emb: np.ndarray

    def columns(self) -> dict[str, Any]:
        return {
            "id": self.ids,
            "name": self.names,
            "score": self.score,
            "n": self.num,
            "emb": self.emb,
        }


def big_data(n: int, dim: int, seed: int) -> BigData:
    rng = np.random.default_rng(seed)
    return BigData(
        n,
        np.arange(n, dtype=np.int64),
        [f"clip-{i:07d}" for i in range(n)],
        rng.uniform(0.0, 1.0, n),
        rng.integers(0, 100, n, dtype=np.int32),
        rng.standard_normal((n, dim), dtype=np.float32),
    )


@dataclass
class GenRows:
    """Rows of the brief's generations table, as log_generation takes them."""

    prompts: list[str]
    emb: np.ndarray  # (n, dim) float32, unit rows, clustered
    images: list[bytes]
    videos: list[bytes]
    models: list[str]
    cfg: np.ndarray
    frames: np.ndarray
    fps: np.ndarray
    score: np.ndarray
    centres: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def config(self, i: int) -> dict[str, Any]:
        return {
            "model": self.models[i],
            "cfg": float(self.cfg[i]),
            "frames": int(self.frames[i]),
            "fps": int(self.fps[i]),
        }


def unit_rows(m: np.ndarray) -> np.ndarray:
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """Unit vectors near random centres (noise of norm ~0.8), as bench_core makes them."""
    dim = centres.shape[1]
    block = centres[rng.integers(0, len(centres), n)]
    block += np.float32(0.8 / np.sqrt(dim)) * rng.standard_normal((n, dim), dtype=np.float32)
    return unit_rows(block)


def gen_rows(n: int, dim: int, seed: int, clusters: int = 64) -> GenRows:
    rng = np.random.default_rng(seed + 1)
    centres = unit_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
    return GenRows(
        [f"generation {i}: a koi fish drifting under the sea, take {i}" for i in range(n)],
        clustered(rng, centres, n),
        [rng.bytes(COND_IMG_BYTES) for _ in range(n)],
        [rng.bytes(VIDEO_BYTES) for _ in range(n)],
        np.asarray(MODELS)[rng.integers(0, len(MODELS), n)].tolist(),
        np.round(rng.uniform(1.0, 15.0, n), 2),
        np.asarray(FRAMES, dtype=np.int32)[rng.integers(0, len(FRAMES), n)],
        np.full(n, 24, dtype=np.int32),
        rng.uniform(0.0, 1.0, n),
        centres,
    )


def targets(g: GenRows, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 2)
    return list(clustered(rng, g.centres, count))


def residues(rows: int, changed: int, i: int) -> tuple[int, int, int]:
    """(modulus, residue changed on the branch, residue changed on main) for merge round i:
    rows with ``id % K == r`` are about ``changed`` rows spread over the whole table."""
    k = max(1, rows // changed)
    a = (7 + 3 * i) % k
    return k, a, (a + k // 2) % k


def big_plan(args: argparse.Namespace) -> dict[str, Any]:
    """What every system does to the large table, so all of them change the same rows."""
    rounds = [residues(args.rows, args.changed, i) for i in range(args.merges)]
    k, ff, _ = residues(args.rows, args.changed, args.merges)
    return {"rounds": rounds, "ff": (k, ff)}


def mask_ids(n: int, k: int, r: int) -> np.ndarray:
    return np.flatnonzero(np.arange(n, dtype=np.int64) % k == r)


# -- results -----------------------------------------------------------------------------------
@dataclass
class Line:
    op: str
    key: str  # figure key, compared across systems
    target_s: float | None = None  # reeldb's target, seconds (lower is better)
    target_text: str = ""
    per_row: bool = False  # figures are seconds per row; also shown as rows/s


@dataclass
class Report:
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # system -> key -> value
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # system -> key -> note
    versions: dict[str, str] = field(default_factory=dict)

    def put(self, system: str, key: str, value: Any) -> None:
        self.figures.setdefault(system, {})[key] = value

    def note(self, system: str, key: str, text: str) -> None:
        self.notes.setdefault(system, {})[key] = text

    def get(self, system: str, key: str) -> Any:
        return self.figures.get(system, {}).get(key)


def attempt(rep: Report, system: str, key: str, fn: Callable[[], Any]) -> Any:
    """Run one peer operation; a failure becomes a note and the benchmark goes on."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any peer failure is reported, not raised
        msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        rep.note(system, key, f"failed ({msg[:160]})")
        step(f"   {system}: {key} failed: {msg[:300]}")
        return None


def fragments(db: reeldb.Connection, table: str) -> int | None:
    """Fragments of a table at the connection's head (read from the catalog)."""
    try:
        return len(db.catalog.snapshot(db.head)[table].fragments)
    except Exception:  # noqa: BLE001 - an internal detail; the figure is optional
        return None


# -- reeldb: the large table -------------------------------------------------------------------
def reeldb_branch_times(db: reeldb.Connection, runs: int, prefix: str) -> list[float]:
    times = []
    for i in bar(range(runs), f"reeldb branch ({prefix})", "branch"):
        t, _ = timed(lambda i=i: db.branch(f"{prefix}/new-{i}"))  # create and switch
        times.append(t)
        db.checkout("main")
    return times


def reeldb_big(rep: Report, args: argparse.Namespace, root: Path, big: BigData) -> None:
    R = "reeldb"
    step(f"1. reeldb: {big.n:,} rows (id BIGINT PRIMARY KEY, name TEXT, score, n, VECTOR({args.dim}))")
    db = reeldb.connect(str(root / "big.reeldb"))
    db.execute(BIG_SCHEMA.format(dim=args.dim))
    cols = big.columns()
    data = {k: (pa.array(v) if k != "emb" else v) for k, v in cols.items()}
    t, _ = timed(lambda: db.insert("t", data))
    rep.put(R, "ingest", t)
    db.tag("bulk")
    step(f"   bulk ingest (db.insert): {ms(t)} = {big.n / t:,.0f} rows/s; "
         f"{fragments(db, 't')} fragments")

    times = reeldb_branch_times(db, args.branch_runs, "big")
    rep.put(R, "branch_big", median(times))
    step(f"   branch (create + switch), median of {len(times)}: {ms(median(times))} "
         f"(max {ms(max(times))})")

    plan = big_plan(args)
    merges, upd, diff_fork, diff_heads = [], [], [], []
    for i, (k, a, b) in enumerate(plan["rounds"]):
        name = f"exp/{i}"
        fork = db.branch(name)
        t_b, cur = timed(lambda k=k, a=a: db.execute(
            f"UPDATE t SET score = score + 1 WHERE id % {k} = {a}"))
        changed = cur.rowcount
        db.checkout("main")
        t_m, cur = timed(lambda k=k, b=b: db.execute(f"UPDATE t SET n = n + 1 WHERE id % {k} = {b}"))
        changed_main = cur.rowcount
        upd += [t_b, t_m]
        t_df, d = timed(lambda fork=fork, name=name: db.diff(fork, name))
        got = d["t"].changed_rows if "t" in d else 0
        t_dh, dh = timed(lambda name=name: db.diff("main", name))
        got_h = dh["t"].changed_rows if "t" in dh else 0
        t_mg, r = timed(lambda name=name: db.merge(name))
        merges.append(t_mg)
        diff_fork.append(t_df)
        diff_heads.append(t_dh)
        ok = (not r.fast_forward and not r.conflicts
              and r.stats.get("t", [0, 0, 0])[2] == changed and got == changed)
        step(f"   round {i + 1}: UPDATE {changed:,} rows on {name} {ms(t_b)}, {changed_main:,} other rows on "
             f"main {ms(t_m)}; diff fork..branch {ms(t_df)} ({got:,} rows), main..branch "
             f"{ms(t_dh)} ({got_h:,} rows); three-way merge {ms(t_mg)} "
             f"(stats {r.stats.get('t')}, {len(r.conflicts)} conflicts){'' if ok else '  CHECK'}")
        if not ok:
            rep.note(R, "merge3", "a merge result did not match the changes (see log)")
    rep.put(R, "update", median(upd))
    rep.put(R, "merge3", median(merges))
    rep.put(R, "merge3_max", max(merges))
    rep.put(R, "diff_fork", median(diff_fork))
    rep.put(R, "diff_heads", median(diff_heads))

    k, c = plan["ff"]
    db.branch("ff")
    db.execute(f"UPDATE t SET score = score + 2 WHERE id % {k} = {c}")
    db.checkout("main")
    t_ff, r = timed(lambda: db.merge("ff"))
    rep.put(R, "merge_ff", t_ff)
    step(f"   fast-forward merge: {ms(t_ff)} (fast_forward={r.fast_forward})")

    # time travel: the version before any update, as a schema, with a filtered count
    expect = int((big.score > 0.5).sum())
    tt = []
    for _ in range(3):
        t, row = timed(lambda: db.execute('SELECT count(*) FROM "bulk".t WHERE score > 0.5').fetchone())
        tt.append(t)
    rep.put(R, "timetravel", median(tt))
    total = db.execute("SELECT count(*) FROM t").fetchone()[0]
    step(f"   time travel (SELECT count(*) FROM \"bulk\".t WHERE score > 0.5), median of 3: "
         f"{ms(median(tt))} ({row[0]:,} rows, expected {expect:,}); main has {total:,} rows, "
         f"{fragments(db, 't')} fragments")
    db.close()


def reeldb_small(rep: Report, args: argparse.Namespace, root: Path, small: BigData) -> None:
    db = reeldb.connect(str(root / "small.reeldb"))
    db.execute(BIG_SCHEMA.format(dim=args.dim))
    cols = small.columns()
    db.insert("t", {k: (pa.array(v) if k != "emb" else v) for k, v in cols.items()})
    times = reeldb_branch_times(db, args.branch_runs, "small")
    rep.put("reeldb", "branch_small", median(times))
    step(f"   reeldb branch on {small.n:,} rows, median of {len(times)}: {ms(median(times))} "
         f"(max {ms(max(times))})")
    db.close()


# -- reeldb: single-row INSERTs against a bulk load --------------------------------------------
def gen_schema(dim: int) -> str:
    return SCHEMA.replace("VECTOR(4096)", f"VECTOR({dim})")


def reeldb_inserts(rep: Report, args: argparse.Namespace, root: Path, g: GenRows) -> None:
    R = "reeldb"
    n = len(g)
    step(f"2. reeldb: {n:,} x log_generation (the brief's INSERT, VECTOR({args.gen_dim}), "
         f"{COND_IMG_BYTES // 1024} KiB image, {VIDEO_BYTES // 1024} KiB video), one commit each")
    db = reeldb.connect(str(root / "rows.reeldb"))
    db.execute(gen_schema(args.gen_dim))
    times = []
    t_all = time.perf_counter()
    for i in bar(range(n), "log_generation", "row"):
        t0 = time.perf_counter()
        log_generation(db, g.prompts[i], g.emb[i], g.images[i], g.videos[i], g.config(i),
                       float(g.score[i]))
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    log = db.log()
    auto = sum(1 for c in log if c["message"].startswith("auto-compact"))
    frags_rows = fragments(db, "generations")
    head, tail = times[: max(1, n // 10)], times[-max(1, n // 10):]
    rep.put(R, "insert_row", total / n)
    rep.put(R, "insert_rows_per_s", n / total)
    rep.put(R, "insert_p50", pct(times, 50))
    rep.put(R, "insert_p99", pct(times, 99))
    rep.put(R, "insert_max", max(times))
    rep.put(R, "auto_compactions", auto)
    rep.put(R, "commits", len(log))
    rep.put(R, "fragments_rows", frags_rows)
    step(f"   {n:,} rows in {total:.1f} s = {n / total:,.0f} rows/s; per call p50 {ms(pct(times, 50))}, "
         f"p99 {ms(pct(times, 99))}, max {ms(max(times))}; first {len(head)} median "
         f"{ms(median(head))}, last {len(tail)} median {ms(median(tail))}")
    step(f"   {auto} auto-compaction commits among {len(log):,} commits; "
         f"{frags_rows} fragments now")

    bulk = reeldb.connect(str(root / "bulk.reeldb"))
    bulk.execute(gen_schema(args.gen_dim))
    data = {
        "prompt": pa.array(g.prompts),
        "prompt_embedding": g.emb,
        "conditioning_image": pa.array(g.images, pa.binary()),
        "output_video": pa.array(g.videos, pa.binary()),
        "model_version": pa.array(g.models),
        "cfg_scale": pa.array(g.cfg),
        "num_frames": pa.array(g.frames),
        "fps": pa.array(g.fps),
        "quality_score": pa.array(g.score),
    }
    t, _ = timed(lambda: bulk.insert("generations", data))
    frags_bulk = fragments(bulk, "generations")
    rep.put(R, "fragments_bulk", frags_bulk)
    step(f"   the same rows bulk-loaded (db.insert) into another database: {ms(t)}, "
         f"{frags_bulk} fragment(s)")

    def q(conn: reeldb.Connection, v: np.ndarray) -> list[tuple[Any, ...]]:
        return conn.execute(CURATION, {"target_vec": v}).fetchall()

    qs = targets(g, args.runs + 1, args.seed)
    # first query on a fresh connection (catalog and engine cold, page cache warm)
    db.close()
    bulk.close()
    db = reeldb.connect(str(root / "rows.reeldb"), create=False)
    bulk = reeldb.connect(str(root / "bulk.reeldb"), create=False)
    t_first_rows, _ = timed(lambda: q(db, qs[0]))
    t_first_bulk, _ = timed(lambda: q(bulk, qs[0]))
    rep.put(R, "query_first_rows", t_first_rows)
    rep.put(R, "query_first_bulk", t_first_bulk)
    tr, tb, agree = [], [], []
    for v in bar(qs[1:], "curation query", "target"):
        t1, a = timed(lambda v=v: q(db, v))
        t2, b = timed(lambda v=v: q(bulk, v))
        tr.append(t1)
        tb.append(t2)
        pa_, pb = {r[0] for r in a}, {r[0] for r in b}
        agree.append(len(pa_ & pb) / max(len(pa_), len(pb), 1))
    rep.put(R, "query_rows", median(tr))
    rep.put(R, "query_bulk", median(tb))
    rep.put(R, "query_ratio", median(tr) / median(tb))
    rep.put(R, "query_agree", 100 * statistics.fmean(agree))
    step(f"   curation query (demo.CURATION), median of {len(tr)}: per-row table {ms(median(tr))}, "
         f"bulk table {ms(median(tb))} -> {median(tr) / median(tb):.2f}x; same result rows: "
         f"{100 * statistics.fmean(agree):.1f}%")
    step(f"   first query on a new connection: per-row table {ms(t_first_rows)}, "
         f"bulk table {ms(t_first_bulk)}")
    db.close()
    bulk.close()


# -- peers (each in a child process) -----------------------------------------------------------
def deeplake_worker(rep: Report, args: argparse.Namespace, root: Path) -> None:
    import deeplake
    from deeplake import types

    P = "deeplake"
    rep.versions[P] = deeplake.__version__
    try:
        deeplake.telemetry_client.endpoint = ""  # empty already; make sure
    except Exception:  # noqa: BLE001
        pass
    off = deeplake.IndexingMode.Off  # no ANN index build at commit (reeldb has none either)

    def create(path: Path, columns: list[tuple[str, Any]]) -> Any:
        ds = deeplake.create(str(path))
        ds.indexing_mode = off
        for name, typ in columns:
            ds.add_column(name, typ)
        ds.commit("schema")
        return ds

    def opened(branch: Any) -> Any:
        ds = branch.open()
        ds.indexing_mode = off
        return ds

    big_cols = [("id", types.Int64()), ("name", types.Text()), ("score", types.Float64()),
                ("n", types.Int32()), ("emb", types.Embedding(args.dim))]

    def branch_times(ds: Any, prefix: str) -> list[float]:
        out = []
        for i in bar(range(args.branch_runs), f"deeplake branch ({prefix})", "branch"):
            t, _ = timed(lambda i=i: opened(ds.branch(f"{prefix}-new-{i}")))
            out.append(t)
        return out

    step(f"   {P} {deeplake.__version__}: building {args.rows:,} rows")
    big = big_data(args.rows, args.dim, args.seed)
    ds = create(root / "dl-big", big_cols)
    t, _ = timed(lambda: (ds.append(big.columns()), ds.commit("bulk")))
    rep.put(P, "ingest", t)
    bulk_version = ds.version
    step(f"   {P}: ingest (append + commit, indexing off): {ms(t)}")
    bt = attempt(rep, P, "branch_big", lambda: branch_times(ds, "big"))
    if bt:
        rep.put(P, "branch_big", median(bt))
        step(f"   {P}: branch + open on {args.rows:,} rows, median {ms(median(bt))} (max {ms(max(bt))})")

    score, num = big.score.copy(), big.num.copy()

    def set_rows(d: Any, col: str, ids: np.ndarray, values: np.ndarray) -> None:
        # no multi-row update by a list of positions: one cell write per row
        c = d[col]
        for j, v in zip(ids.tolist(), values.tolist()):
            c[j] = v

    def rounds() -> None:
        plan = big_plan(args)
        merges, upd = [], []
        for i, (k, a, b) in enumerate(plan["rounds"]):
            bd = opened(ds.branch(f"exp-{i}"))
            ia, ib = mask_ids(args.rows, k, a), mask_ids(args.rows, k, b)
            t_b, _ = timed(lambda bd=bd, ia=ia: (set_rows(bd, "score", ia, score[ia] + 1),
                                                 bd.commit("update")))
            t_m, _ = timed(lambda ib=ib: (set_rows(ds, "n", ib, num[ib] + 1), ds.commit("main")))
            t_mg, _ = timed(lambda i=i: ds.merge(f"exp-{i}"))
            score[ia] += 1
            num[ib] += 1
            ok = (abs(float(np.asarray(ds["score"][int(ia[0])])) - score[ia[0]]) < 1e-9
                  and int(np.asarray(ds["n"][int(ib[0])])) == num[ib[0]])
            upd += [t_b, t_m]
            merges.append(t_mg)
            step(f"   {P} round {i + 1}: update {len(ia):,} rows + commit on branch {ms(t_b)}, "
                 f"on main {ms(t_m)}; merge {ms(t_mg)}{'' if ok else '  CHECK: values differ'}")
        rep.put(P, "update", median(upd))
        rep.put(P, "merge3", median(merges))
        k, c = plan["ff"]
        ic = mask_ids(args.rows, k, c)
        fd = opened(ds.branch("ff"))
        set_rows(fd, "score", ic, score[ic] + 2)
        fd.commit("ff")
        t_ff, _ = timed(lambda: ds.merge("ff"))
        rep.put(P, "merge_ff", t_ff)
        step(f"   {P}: merge of a branch main has not moved from: {ms(t_ff)}")

    attempt(rep, P, "merge3", rounds)
    rep.note(P, "diff_fork", "no diff API")
    rep.note(P, "diff_heads", "no diff API")

    def travel() -> None:
        tt, count = [], 0
        for _ in range(3):
            t, count = timed(lambda: len(ds.history[bulk_version].open().query(
                "SELECT * WHERE score > 0.5")))
            tt.append(t)
        rep.put(P, "timetravel", median(tt))
        step(f"   {P}: time travel (history[v].open() + TQL filter), median of 3: "
             f"{ms(median(tt))} ({count:,} rows)")

    attempt(rep, P, "timetravel", travel)

    small = big_data(args.small_rows, args.dim, args.seed + 10)
    sd = create(root / "dl-small", big_cols)
    sd.append(small.columns())
    sd.commit("bulk")
    st = attempt(rep, P, "branch_small", lambda: branch_times(sd, "small"))
    if st:
        rep.put(P, "branch_small", median(st))
        step(f"   {P}: branch + open on {args.small_rows:,} rows, median {ms(median(st))}")

    g = gen_rows(args.inserts, args.gen_dim, args.seed)
    gen_cols = [("prompt", types.Text()), ("prompt_embedding", types.Embedding(args.gen_dim)),
                ("conditioning_image", types.Bytes()), ("output_video", types.Bytes()),
                ("model_version", types.Text()), ("cfg_scale", types.Float64()),
                ("num_frames", types.Int32()), ("fps", types.Int32()),
                ("quality_score", types.Float64())]

    def rows(lo: int, hi: int) -> dict[str, Any]:
        return {"prompt": g.prompts[lo:hi], "prompt_embedding": g.emb[lo:hi],
                "conditioning_image": g.images[lo:hi], "output_video": g.videos[lo:hi],
                "model_version": g.models[lo:hi], "cfg_scale": g.cfg[lo:hi],
                "num_frames": g.frames[lo:hi], "fps": g.fps[lo:hi],
                "quality_score": g.score[lo:hi]}

    def per_row() -> None:
        d = create(root / "dl-rows", gen_cols)
        p = min(args.peer_inserts, len(g))
        t0 = time.perf_counter()
        for i in bar(range(p), f"{P} append + commit", "row"):
            d.append(rows(i, i + 1))
            d.commit()
        t = (time.perf_counter() - t0) / p
        rep.put(P, "insert_row", t)
        step(f"   {P}: {p:,} x (append one row + commit): {ms(t)} per row = {1 / t:,.0f} rows/s")

    attempt(rep, P, "insert_row", per_row)

    def query() -> None:
        d = create(root / "dl-bulk", gen_cols)
        d.append(rows(0, len(g)))
        d.commit("bulk")
        qs = targets(g, args.runs + 1, args.seed)

        def run(v: np.ndarray) -> list[str]:
            arr = "ARRAY[" + ",".join(f"{x:.9g}" for x in v.tolist()) + "]"
            sim = f"COSINE_SIMILARITY(prompt_embedding, {arr})"  # no ORDER BY an alias in TQL
            view = d.query(f"SELECT prompt, quality_score, {sim} AS relevance "
                           f"WHERE {PEER_FILTER} ORDER BY {sim} DESC LIMIT {TOP_K}")
            np.asarray(view["relevance"][:])
            return list(view["prompt"][:])

        run(qs[0])  # warm-up
        times = [timed(lambda v=v: run(v))[0] for v in qs[1:]]
        rep.put(P, "query_bulk", median(times))
        step(f"   {P}: curation query (TQL, COSINE_SIMILARITY) on {len(g):,} bulk rows, "
             f"median of {len(times)}: {ms(median(times))}")

    attempt(rep, P, "query_bulk", query)


def lance_worker(rep: Report, args: argparse.Namespace, root: Path) -> None:
    import lance

    P = "lance"
    rep.versions[P] = lance.__version__

    def table(b: BigData) -> pa.Table:
        flat = pa.array(b.emb.reshape(-1))
        return pa.table({"id": b.ids, "name": b.names, "score": b.score, "n": b.num,
                         "emb": pa.FixedSizeListArray.from_arrays(flat, args.dim)})

    def branch_times(ds: Any, prefix: str) -> list[float]:
        out = []
        for i in bar(range(args.branch_runs), f"lance branch ({prefix})", "branch"):
            t, _ = timed(lambda i=i: ds.create_branch(f"{prefix}-new-{i}"))
            out.append(t)
        return out

    step(f"   {P} {lance.__version__}: building {args.rows:,} rows")
    big = big_data(args.rows, args.dim, args.seed)
    tbl = table(big)
    t, ds = timed(lambda: lance.write_dataset(tbl, str(root / "big.lance"),
                                              enable_stable_row_ids=True))
    rep.put(P, "ingest", t)
    bulk_version = ds.version
    step(f"   {P}: ingest (write_dataset): {ms(t)}")
    bt = attempt(rep, P, "branch_big", lambda: branch_times(ds, "big"))
    if bt:
        rep.put(P, "branch_big", median(bt))
        step(f"   {P}: create_branch on {args.rows:,} rows, median {ms(median(bt))} (max {ms(max(bt))})")

    def rounds() -> None:
        plan = big_plan(args)
        upd, deltas = [], []
        for i, (k, a, b) in enumerate(plan["rounds"]):
            fork = ds.version
            br = ds.create_branch(f"exp-{i}")
            t_b, r = timed(lambda br=br, k=k, a=a: br.update({"score": "score + 1"},
                                                          where=f"id % {k} = {a}"))
            t_m, _ = timed(lambda k=k, b=b: ds.update({"n": "n + 1"}, where=f"id % {k} = {b}"))
            upd += [t_b, t_m]
            t_d, got = timed(lambda br=br, fork=fork: sum(
                x.num_rows for x in br.delta(compared_against=fork).get_updated_rows()))
            deltas.append(t_d)
            step(f"   {P} round {i + 1}: update {r.get('num_rows_updated', r)} rows on branch "
                 f"{ms(t_b)}, on main {ms(t_m)}; delta fork..branch (updated rows) {ms(t_d)} "
                 f"({got:,} rows)")
        rep.put(P, "update", median(upd))
        rep.put(P, "diff_fork", median(deltas))

    attempt(rep, P, "update", rounds)
    rep.note(P, "merge3", "no branch merge")
    rep.note(P, "merge_ff", "no branch merge")
    rep.note(P, "diff_heads", "delta only along one history")

    def travel() -> None:
        tt, count = [], 0
        for _ in range(3):
            t, count = timed(lambda: ds.checkout_version(bulk_version).count_rows("score > 0.5"))
            tt.append(t)
        rep.put(P, "timetravel", median(tt))
        step(f"   {P}: time travel (checkout_version + count_rows filter), median of 3: "
             f"{ms(median(tt))} ({count:,} rows)")

    attempt(rep, P, "timetravel", travel)

    small = big_data(args.small_rows, args.dim, args.seed + 10)
    sd = lance.write_dataset(table(small), str(root / "small.lance"), enable_stable_row_ids=True)
    st = attempt(rep, P, "branch_small", lambda: branch_times(sd, "small"))
    if st:
        rep.put(P, "branch_small", median(st))
        step(f"   {P}: create_branch on {args.small_rows:,} rows, median {ms(median(st))}")

    g = gen_rows(args.inserts, args.gen_dim, args.seed)

    def rows(lo: int, hi: int) -> pa.Table:
        flat = pa.array(g.emb[lo:hi].reshape(-1))
        return pa.table({
            "prompt": g.prompts[lo:hi],
            "prompt_embedding": pa.FixedSizeListArray.from_arrays(flat, args.gen_dim),
            "conditioning_image": pa.array(g.images[lo:hi], pa.binary()),
            "output_video": pa.array(g.videos[lo:hi], pa.large_binary()),
            "model_version": g.models[lo:hi],
            "cfg_scale": g.cfg[lo:hi],
            "num_frames": g.frames[lo:hi],
            "fps": g.fps[lo:hi],
            "quality_score": g.score[lo:hi],
        })

    def per_row() -> None:
        p = min(args.peer_inserts, len(g))
        d = lance.write_dataset(rows(0, 1).schema.empty_table(), str(root / "rows.lance"))
        t0 = time.perf_counter()
        for i in bar(range(p), f"{P} insert", "row"):
            d.insert(rows(i, i + 1))
        t = (time.perf_counter() - t0) / p
        rep.put(P, "insert_row", t)
        step(f"   {P}: {p:,} x insert(one row), a version each: {ms(t)} per row = "
             f"{1 / t:,.0f} rows/s; {len(d.get_fragments())} fragments")

    attempt(rep, P, "insert_row", per_row)

    def query() -> None:
        d = lance.write_dataset(rows(0, len(g)), str(root / "bulk.lance"))
        qs = targets(g, args.runs + 1, args.seed)

        def run(v: np.ndarray) -> pa.Table:
            return d.to_table(columns=["prompt", "quality_score"], filter=PEER_FILTER,
                              nearest={"column": "prompt_embedding", "q": v, "k": TOP_K,
                                       "metric": "cosine", "use_index": False},
                              prefilter=True)

        run(qs[0])  # warm-up
        times = [timed(lambda v=v: run(v))[0] for v in qs[1:]]
        rep.put(P, "query_bulk", median(times))
        step(f"   {P}: curation query (nearest, cosine, prefilter, no index) on {len(g):,} "
             f"bulk rows, median of {len(times)}: {ms(median(times))}")

    attempt(rep, P, "query_bulk", query)


WORKERS = {"deeplake": deeplake_worker, "lance": lance_worker}


def worker_main(name: str, cfg_path: Path) -> int:
    """The child side: run one peer, write its figures next to the config."""
    global _START
    cfg = json.loads(cfg_path.read_text())
    _START = cfg["start"]
    args = argparse.Namespace(**cfg["args"])
    root = cfg_path.parent
    rep = Report()
    try:
        WORKERS[name](rep, args, root)
    except ImportError as e:
        rep.note(name, "*", f"not installed ({e}); `.venv/bin/pip install {PEER_PINS[name]}`")
    except Exception as e:  # noqa: BLE001 - reported to the parent, which goes on
        rep.note(name, "*", f"failed: {type(e).__name__}: {e}")
        step(f"   {name} failed: {type(e).__name__}: {e}")
    (root / "result.json").write_text(json.dumps(
        {"figures": rep.figures, "notes": rep.notes, "versions": rep.versions}))
    return 0


def netns_prefix() -> list[str] | None:
    """``unshare -n`` (or ``-rn`` when not root) if a private network namespace can be made."""
    exe = shutil.which("unshare")
    if exe is None:
        return None
    for flags in (["-n"], ["-rn"]):
        try:
            ok = subprocess.run([exe, *flags, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return [exe, *flags]
    return None


def run_peer(rep: Report, name: str, args: argparse.Namespace, root: Path) -> None:
    wdir = root / f"peer-{name}"
    wdir.mkdir()
    cfg = wdir / "config.json"
    cfg.write_text(json.dumps({"start": _START, "args": vars(args)}, default=str))
    prefix = netns_prefix()
    if prefix is None and name == "deeplake" and not args.allow_peer_network:
        rep.note(name, "*", "skipped: no network namespace (unshare -n) here, and deeplake's "
                            "built-in error reporting cannot be turned off; --allow-peer-network "
                            "runs it anyway")
        step(f"   {name}: skipped (no network namespace available)")
        return
    env = dict(os.environ, **PEER_ENV)
    if _SRC is not None:
        env["PYTHONPATH"] = _SRC + os.pathsep + env.get("PYTHONPATH", "")
    argv = [*(prefix or []), sys.executable, str(Path(__file__).resolve()), "--worker", name,
            "--worker-config", str(cfg)]
    step(f"3. {name}: child process{' in a private network namespace' if prefix else ''}")
    try:
        proc = subprocess.run(argv, env=env, timeout=args.peer_timeout, check=False)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    out = wdir / "result.json"
    if not out.exists():
        rep.note(name, "*", f"failed (child exited with {rc}, no result)")
        step(f"   {name}: failed (child exited with {rc})")
    else:
        got = json.loads(out.read_text())
        for system, figs in got["figures"].items():
            for k, v in figs.items():
                rep.put(system, k, v)
        for system, notes in got["notes"].items():
            for k, v in notes.items():
                rep.note(system, k, v)
        rep.versions.update(got["versions"])
    shutil.rmtree(wdir, ignore_errors=True)  # the peer's data: up to a few GB


# -- summary -----------------------------------------------------------------------------------
def summary_lines(args: argparse.Namespace) -> list[Line]:
    rows, small = f"{args.rows:,}", f"{args.small_rows:,}"
    return [
        Line(f"bulk ingest, {rows} rows", "ingest"),
        Line(f"branch create + switch, {rows} rows (median)", "branch_big", 0.020, "< 20 ms"),
        Line(f"branch create + switch, {small} rows (median)", "branch_small", 0.020, "< 20 ms"),
        Line(f"update {args.changed:,} rows, one commit (median)", "update"),
        Line(f"three-way merge, {args.changed:,} rows changed (median of {args.merges})",
             "merge3", 1.0, "< 1 s"),
        Line("fast-forward merge", "merge_ff", 1.0, "< 1 s"),
        Line(f"diff fork..branch, {args.changed:,} rows (median)", "diff_fork"),
        Line(f"diff main..branch, {2 * args.changed:,} rows (median)", "diff_heads"),
        Line("time travel: filtered count at the bulk version", "timetravel"),
        Line("single-row insert, one commit each (per row)", "insert_row", per_row=True),
        Line(f"curation query, {args.inserts:,} bulk-loaded rows (median)", "query_bulk"),
    ]


def cell(rep: Report, system: str, key: str, per_row: bool,
         footnotes: list[str] | None = None) -> tuple[str, float | None]:
    v = rep.get(system, key)
    if v is None:
        whole = rep.notes.get(system, {}).get("*")
        note = rep.notes.get(system, {}).get(key)
        if note is None and whole is not None:  # the whole peer: explained under the table
            return whole.split(" (")[0].split(":")[0][:24], None
        note = note or "n/a"
        if footnotes is not None and (note.startswith(("failed", "skipped", "not installed"))
                                      or len(note) > 32):
            footnotes.append(f"{system}, {key}: {note}")
            return f"{note.split(' (')[0].split(':')[0][:24]} [{len(footnotes)}]", None
        return note, None
    text = ms(v) + (f" ({1 / v:,.0f} rows/s)" if per_row else "")
    return text, float(v)


def print_summary(rep: Report, args: argparse.Namespace, peers: Sequence[str]) -> None:
    table: list[tuple[str, str, str, str, str, str]] = []
    footnotes: list[str] = []
    for ln in summary_lines(args):
        mine, mv = cell(rep, "reeldb", ln.key, ln.per_row)
        peer_txt, ratio_txt = [], []
        for p in peers:
            txt, pv = cell(rep, p, ln.key, ln.per_row, footnotes)
            peer_txt.append(f"{p} {txt}")
            ratio_txt.append(f"{mv / pv:.2f}x" if mv is not None and pv else "—")
        met = "" if ln.target_s is None or mv is None else ("yes" if mv < ln.target_s else "NO")
        table.append((ln.op, mine, "; ".join(peer_txt) or "—", " / ".join(ratio_txt) or "—",
                      ln.target_text, met))
    R = rep.figures.get("reeldb", {})
    if "query_ratio" in R:
        table.append((f"curation query, {args.inserts:,} one-row commits vs bulk (median)",
                      f"{ms(R['query_rows'])} vs {ms(R['query_bulk'])} = {R['query_ratio']:.2f}x",
                      "—", "—", "<= 1.5x", "yes" if R["query_ratio"] <= 1.5 else "NO"))
        table.append(("  fragments: one-row-commit table / bulk table",
                      f"{R.get('fragments_rows')} / {R.get('fragments_bulk')}", "—", "—", "", ""))
        table.append(("  first query on a new connection: one-row-commit / bulk table",
                      f"{ms(R.get('query_first_rows'))} / {ms(R.get('query_first_bulk'))}",
                      "—", "—", "", ""))
        table.append((f"  auto-compaction commits during the {args.inserts:,} inserts",
                      f"{R.get('auto_compactions')} (of {R.get('commits'):,} commits)",
                      "—", "—", "", ""))
    print_table("summary (ratio = reeldb time / peer time: below 1 means reeldb is faster)",
                ("operation", "reeldb", "peer", "ratio reeldb/peer", "target", "met?"), table)
    for i, f in enumerate(footnotes, 1):
        print(f"[{i}] {f}")
    for p in peers:
        whole = rep.notes.get(p, {}).get("*")
        ver = rep.versions.get(p)
        print(f"{p}: {ver or 'not measured'}" + (f" ({whole})" if whole else ""))


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="rows in the large table")
    p.add_argument("--dim", type=int, default=128, help="VECTOR dimension of the large table")
    p.add_argument("--small-rows", type=int, default=10_000,
                   help="rows in the small table (branch creation only)")
    p.add_argument("--changed", type=int, default=1_000, help="rows each side updates before a merge")
    p.add_argument("--merges", type=int, default=3, help="three-way merges (fresh branch each)")
    p.add_argument("--branch-runs", type=int, default=20, help="branches created per table")
    p.add_argument("--inserts", type=int, default=10_000, help="single-row log_generation INSERTs")
    p.add_argument("--gen-dim", type=int, default=1024,
                   help="VECTOR dimension of the brief's generations table")
    p.add_argument("--peer-inserts", type=int, default=1_000,
                   help="single-row appends per peer (a prefix of the same rows)")
    p.add_argument("--runs", type=int, default=20, help="target vectors for the curation query")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="comma-separated peers to measure (deeplake, lance), or 'none'")
    p.add_argument("--peer-timeout", type=int, default=900, help="seconds per peer process")
    p.add_argument("--allow-peer-network", action="store_true",
                   help="run deeplake even where no network namespace can be made")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 20,000 / 2,000 rows, 300 inserts, few repetitions")
    p.add_argument("--out", type=Path, default=None,
                   help="keep the reeldb databases and results.json here (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    p.add_argument("--worker-config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(None if argv is None else list(argv))
    if args.quick:
        args.rows, args.small_rows, args.inserts = 20_000, 2_000, 300
        args.peer_inserts, args.branch_runs, args.merges, args.runs = 100, 5, 2, 5
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.worker_config)
    peers = [] if args.peers.strip() in ("", "none") else [
        p.strip() for p in args.peers.split(",") if p.strip()]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        print(f"unknown peer(s): {', '.join(bad)} (known: {', '.join(PEERS)})", file=sys.stderr)
        return 2
    if args.out is not None:
        root = args.out.resolve()
        root.mkdir(parents=True, exist_ok=True)
        if any((root / n).exists() for n in ("big.reeldb", "rows.reeldb")):
            print(f"{root} already holds a run: pick another --out or empty it", file=sys.stderr)
            return 2
        cleanup = None
    else:
        root = Path(tempfile.mkdtemp(prefix="reeldb-bench-versioning-"))
        cleanup = root
    rep = Report()
    rep.versions["reeldb"] = reeldb.__version__
    print(f"reeldb versioning benchmark: {args.rows:,} rows x VECTOR({args.dim}); "
          f"{args.inserts:,} single-row INSERTs x VECTOR({args.gen_dim}); peers: "
          f"{', '.join(peers) or 'none'}; {os.cpu_count()} CPUs, {load()}; data in {root}")
    try:
        step(f"0. generating data (seed {args.seed})")
        big = big_data(args.rows, args.dim, args.seed)
        reeldb_big(rep, args, root, big)
        del big
        reeldb_small(rep, args, root, big_data(args.small_rows, args.dim, args.seed + 10))
        g = gen_rows(args.inserts, args.gen_dim, args.seed)
        reeldb_inserts(rep, args, root, g)
        del g
        for name in peers:
            try:
                run_peer(rep, name, args, root)
            except Exception as e:  # noqa: BLE001 - a peer never stops the benchmark
                rep.note(name, "*", f"failed: {type(e).__name__}: {e}")
                step(f"   {name} failed: {type(e).__name__}: {e}")
        total = time.time() - _START
        step(f"done in {total:.0f} s; {load()} (other work on the machine skews absolute times)")
        print_summary(rep, args, peers)
        if args.out is not None:
            (root / "results.json").write_text(json.dumps({
                "config": {**vars(args), "out": str(root), "cpus": os.cpu_count(),
                           "python": sys.version.split()[0],
                           "when": dt.datetime.now(dt.timezone.utc).isoformat()},
                "versions": rep.versions, "figures": rep.figures, "notes": rep.notes,
                "total_s": total}, indent=2, default=str) + "\n")
            print(f"figures written to {root / 'results.json'}")
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
