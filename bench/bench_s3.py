"""S3 benchmark: reeldb on object storage against plain boto3 on the same server, and
the cold start and commit throughput of an ``s3://`` database.

    python bench/bench_s3.py [--rows 256] [--rounds 3] [--commits 1000] [--duration 20] [--quick]

Everything runs against moto's standalone S3 server that the script starts itself
(``tests/s3_server.py``, the tests' server: writes one at a time, reads concurrent) on
127.0.0.1; the standard AWS variables (``AWS_ENDPOINT_URL``, test credentials) point reeldb,
boto3 and every child process at it. The reference in each step is measured in the same run,
against the same server, so ratios compare like with like; absolute MB/s are moto's (one
Python process serving HTTP on loopback, sharing the machine's cores), not S3's.

1. Ingest: a ``media (id BIGINT PRIMARY KEY, clip BYTEA, emb VECTOR(128))`` table, --rows
   rows of a 1 MiB random clip and a float32 embedding (fixed seed, generated before the
   timer), inserted --batch rows per ``db.insert`` (one commit each). Reference: boto3
   ``put_object`` of the same bytes, one object per row (clip + embedding), sequentially and
   from a pool of 16 threads. MB/s = payload bytes (clips + embeddings) / s / 10^6.
2. Dataloader: ``db.dataloader("media").columns(["clip", "emb"]).batch_size(--batch)
   .to_torch()``, one process, on a fresh connection (a) with an empty disk cache
   (``storage_options={"cache_dir": <new folder>}``), then a second epoch of the same loader
   (warm cache), and (b) with ``cache_size=0`` (no cache). References: boto3 ranged
   ``get_object`` of the byte ranges that reeldb's loader asked its store for (recorded
   during (a): the clip packs' runs and the embedding rows; Parquet metadata left out), from
   a pool of 16 threads (reeldb keeps 16 requests in flight): each range in one request,
   cut into reeldb's 2 MiB cache blocks, and one request per 1 MiB value. --rounds rounds,
   rotating order after the first; medians. Building the loader (``to_torch()``: the plan,
   Parquet footers, NULL checks) is timed apart from the epoch.
3. Cold start: a database with --tables tables and --commits single-row INSERT commits
   (round-robin over the tables), built once in a local folder and once on S3. A fresh
   ``python -c`` that runs ``import reeldb; db = reeldb.connect(url); db.execute("SELECT
   count(*) FROM t0").fetchone()``, timed from just before the parent spawns it to the
   child's first row (the child reports the time it got it and its own split): the local
   folder, S3 with an empty disk cache (a new ``REELDB_CACHE_DIR`` each run) and S3 with a
   warm one (the cache left by the last cold run); median of --cold-runs after one warm-up
   (.pyc files and the OS page cache are warm: a new process, not a cold machine). The
   child prints ``db.stats()``: the S3 requests of each kind the open + first query made.
   References, same method: ``python -c pass``, ``import reeldb``, ``import boto3`` +
   ``boto3.client("s3")`` + one request.
4. Commit throughput: --writers processes (spawn), each its own connection, inserting
   single rows (``INSERT INTO log VALUES (...)``: one statement, one commit, as the brief's
   ``log_generation``; the table has a BIGINT PRIMARY KEY, a VECTOR(128), text and a float)
   into ``main`` of one S3 database for --duration seconds after all are ready; then 1
   writer for reference. Rows/s, p50/p99 insert latency, compare-and-swap attempts on the
   branch ref and how many lost (the commit retries; counted by wrapping the store's
   ``compare_and_swap`` in each writer), requests per row, the CPU moto and the writers
   used. Check: the ids in the table equal the ids whose INSERT returned, none missing,
   none extra, none twice.

Prints figures only (no asserts) and a summary table at the end; ``--out DIR`` also writes
``DIR/results.json``. About 3.5 minutes on 2 cores with the defaults (half of it building
the 1,000-commit database on S3 through reeldb, then the two commit-throughput windows);
``--quick`` about 40 s. Needs ~1 GB of memory for moto and ~0.5 GB of temporary disk.
Absolute figures move with the machine's load (the header and last line print it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_SRC: str | None = None
try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    _SRC = str(Path(__file__).resolve().parents[1] / "src")
    sys.path.insert(0, _SRC)
    import reeldb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import boto3  # noqa: E402 - after the src/ fallback above
from botocore.config import Config  # noqa: E402

import s3_server  # noqa: E402 - tests/s3_server.py, the tests' moto server
from summary import Results, load, median  # noqa: E402 - bench/ is the script's folder

CLIP_BYTES = 1 << 20
DIM = 128
EMB_BYTES = DIM * 4
THREADS = 16  # reeldb keeps 16 requests in flight (storage/cloud.py READERS)
BLOCK = 2 << 20  # reeldb's cache block for byte-range reads (storage/cloud.py BLOCK)
BRANCH_REF = "_reeldb/refs/branches/"
LOG_TABLE = "CREATE TABLE log (id BIGINT PRIMARY KEY, writer INT, seq INT, prompt TEXT, emb VECTOR(128), score FLOAT)"
LOG_INSERT = "INSERT INTO log VALUES (%s, %s, %s, %s, %s, %s)"

# -- reporting ---------------------------------------------------------------------------------
_T0 = time.perf_counter()


def step(msg: str) -> None:
    """One progress line, with the time since the benchmark started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


@dataclass
class Env:
    """What every step needs: the server, a raw boto3 client, a scratch folder."""
    server: s3_server.S3Server
    s3: Any
    root: Path

    @property
    def bucket(self) -> str:
        return self.server.bucket

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def cache_dir(self, name: str) -> str:
        path = self.root / f"cache-{name}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return str(path)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    if _SRC is not None:  # children must find reeldb where this process did
        env["PYTHONPATH"] = _SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def failure(e: BaseException) -> str:
    """``Type: message (file:line in function)`` of where an exception was raised."""
    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno} in {frame.name})" if frame else ""
    msg = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
    return f"{type(e).__name__}{': ' + msg if msg else ''}{where}"


def requests_of(db: reeldb.Connection) -> Counter[str]:
    return Counter(db.stats().get("requests", {}))


def fmt_requests(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if v) or "none"


def object_kind(key: str) -> str:
    """A key with its ids starred: ``data/*/*.parquet``, ``_reeldb/refs/branches/main``."""
    key = re.sub(r"[0-9a-f]{8,}", "*", key)
    return re.sub(r"/\d+-[0-9a-f]+$", "/*", key)


def count_by_object(store: Any) -> Counter[str]:
    """Requests by kind and object, counted by wrapping the store's request wrapper (no
    change to reeldb; an empty Counter if the store has none by that name)."""
    counts: Counter[str] = Counter()
    inner = getattr(store, "_request", None)
    if inner is None:
        return counts

    def counting(kind: str, key: str) -> Any:
        counts[f"{kind} {object_kind(key)}"] += 1
        return inner(kind, key)

    store._request = counting
    return counts


# -- 1. ingest ---------------------------------------------------------------------------------
@dataclass
class Media:
    ids: list[list[int]]
    clips: list[list[bytes]]
    embs: list[np.ndarray]

    @property
    def rows(self) -> int:
        return sum(map(len, self.ids))

    @property
    def payload(self) -> int:
        return self.rows * (CLIP_BYTES + EMB_BYTES)


def make_media(rows: int, batch: int, seed: int) -> Media:
    rng = np.random.default_rng(seed)
    ids, clips, embs = [], [], []
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        ids.append(list(range(start, start + n)))
        clips.append([rng.bytes(CLIP_BYTES) for _ in range(n)])
        embs.append(rng.standard_normal((n, DIM), dtype=np.float32))
    return Media(ids, clips, embs)


def bench_ingest(res: Results, env: Env, args: argparse.Namespace, media: Media) -> str:
    mb = media.payload / 1e6
    step(f"1. ingest: {media.rows} rows of a {CLIP_BYTES >> 20} MiB clip + VECTOR({DIM}) "
         f"({mb:,.0f} MB), {args.batch} rows per db.insert (one commit each)")
    url = env.url(f"media-{uuid.uuid4().hex[:8]}")
    db = reeldb.connect(url, storage_options={"cache_dir": env.cache_dir("ingest")})
    db.execute(f"CREATE TABLE media (id BIGINT PRIMARY KEY, clip BYTEA, emb VECTOR({DIM}))")
    before = requests_of(db)
    t = time.perf_counter()
    for ids, clips, emb in zip(media.ids, media.clips, media.embs):
        db.insert("media", {"id": ids, "clip": clips, "emb": emb})
    secs = time.perf_counter() - t
    reqs = requests_of(db) - before
    n = db.execute("SELECT count(*) FROM media").fetchone()[0]
    db.close()
    ours = mb / secs
    step(f"   reeldb db.insert:              {ours:7.1f} MB/s ({secs:.2f} s; requests {fmt_requests(reqs)}; "
         f"rows in table {n})")

    objects = [(i, c + e.tobytes()) for ids, clips, embs in zip(media.ids, media.clips, media.embs)
               for i, c, e in zip(ids, clips, embs)]
    run = uuid.uuid4().hex[:8]

    def put(item: tuple[int, bytes], how: str) -> None:
        env.s3.put_object(Bucket=env.bucket, Key=f"raw-{run}/{how}/{item[0]}", Body=item[1])

    t = time.perf_counter()
    for item in objects:
        put(item, "seq")
    seq = mb / (time.perf_counter() - t)
    with ThreadPoolExecutor(THREADS) as pool:
        t = time.perf_counter()
        list(pool.map(lambda item: put(item, "pool"), objects))
        par = mb / (time.perf_counter() - t)
    step(f"   boto3 put_object, sequential:  {seq:7.1f} MB/s (one object per row)")
    step(f"   boto3 put_object, 16 threads:  {par:7.1f} MB/s")
    step(f"   reeldb / sequential puts {ours / seq:.2f}x, reeldb / 16-thread puts {ours / par:.2f}x")
    res.figures["ingest"] = {"mb": mb, "seconds": secs, "reeldb_mb_s": ours, "requests": dict(reqs),
                             "boto3_seq_mb_s": seq, "boto3_pool_mb_s": par}
    res.add("1. ingest, reeldb db.insert", f"{ours:.1f} MB/s",
            f"boto3 put_object: sequential {seq:.1f} MB/s ({ours / seq:.2f}x), 16 threads {par:.1f} MB/s "
            f"({ours / par:.2f}x)")
    return url


# -- 2. dataloader -----------------------------------------------------------------------------
@dataclass
class Epoch:
    build: float = float("nan")
    secs: float = float("nan")
    warm: float = float("nan")  # a second epoch of the same loader
    nbytes: int = 0
    rows: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    cache: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def batch_bytes(batch: dict[str, Any]) -> tuple[int, int]:
    clips = batch["clip"]
    return len(clips), sum(int(c.numel()) for c in clips) + int(batch["emb"].numel()) * 4


def reeldb_epoch(env: Env, url: str, batch: int, options: dict[str, Any], warm: bool,
                 record: list[tuple[str, int, int]] | None = None) -> Epoch:
    out = Epoch()
    try:
        db = reeldb.connect(url, storage_options=options)
        store = db.catalog.store
        if record is not None:  # instrumentation only: the ranges the loader asks for
            inner = store.read_ranges

            def recording(ranges: list[tuple[str, int, int]]) -> list[bytes]:
                record.extend(ranges)
                return inner(ranges)

            store.read_ranges = recording
        before = requests_of(db)
        t = time.perf_counter()
        loader = db.dataloader("media").columns(["clip", "emb"]).batch_size(batch).to_torch()
        out.build = time.perf_counter() - t
        t = time.perf_counter()
        for b in loader:
            n, nb = batch_bytes(b)
            out.rows += n
            out.nbytes += nb
        out.secs = time.perf_counter() - t
        out.requests = requests_of(db) - before
        if record is not None:
            store.read_ranges = inner
        if warm:
            t = time.perf_counter()
            for b in loader:
                batch_bytes(b)
            out.warm = time.perf_counter() - t
        out.cache = db.stats().get("cache", {})
        db.close()
    except Exception as e:  # a broken path is a figure too: reported, the run goes on
        out.error = failure(e)
    return out


def split(ranges: Iterable[tuple[str, int, int]], part: int) -> list[tuple[str, int, int]]:
    return [(k, o, min(part, off + n - o)) for k, off, n in ranges for o in range(off, off + n, part)]


def raw_gets(env: Env, prefix: str, ranges: list[tuple[str, int, int]], pool: ThreadPoolExecutor) -> float:
    """Seconds to fetch every range with boto3 ``get_object(Range=...)``, 16 at a time."""

    def one(r: tuple[str, int, int]) -> int:
        key, off, n = r
        resp = env.s3.get_object(Bucket=env.bucket, Key=f"{prefix}/{key}", Range=f"bytes={off}-{off + n - 1}")
        return len(resp["Body"].read())

    t = time.perf_counter()
    got = sum(pool.map(one, ranges))
    secs = time.perf_counter() - t
    assert got == sum(r[2] for r in ranges), "short ranged reads"
    return secs


def bench_loader(res: Results, env: Env, args: argparse.Namespace, url: str, media: Media) -> None:
    step(f"2. dataloader: clip + emb, batch {args.batch}, one process, {args.rounds} round(s); "
         "boto3 references with 16 threads")
    import torch  # noqa: F401 - to_torch() imports it: not part of the first loader's time
    prefix = url.split("/", 3)[3]
    recorded: list[tuple[str, int, int]] = []
    names = ["reeldb, empty disk cache", "reeldb, cache_size=0", "boto3, reeldb's ranges",
             "boto3, 2 MiB parts", "boto3, one GET per 1 MiB value"]
    runs: dict[str, list[Epoch | float]] = {n: [] for n in names}
    broken: dict[str, str] = {}
    with ThreadPoolExecutor(THREADS) as pool:
        data_ranges: list[tuple[str, int, int]] = []
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)] if r else names
            for name in order:
                if name in broken:
                    continue
                if name == "reeldb, empty disk cache":
                    got = reeldb_epoch(env, url, args.batch, {"cache_dir": env.cache_dir("loader")}, True,
                                       recorded if r == 0 else None)
                    if r == 0:
                        data_ranges = [x for x in recorded if x[0].startswith("blobs/") or x[0].endswith(".mat")]
                elif name == "reeldb, cache_size=0":
                    got = reeldb_epoch(env, url, args.batch, {"cache_size": 0}, False)
                elif not data_ranges:
                    broken[name] = "no ranges recorded (the reeldb epoch failed)"
                    continue
                else:
                    ranges = {"boto3, reeldb's ranges": data_ranges,
                              "boto3, 2 MiB parts": split(data_ranges, BLOCK),
                              "boto3, one GET per 1 MiB value": split(data_ranges, CLIP_BYTES)}[name]
                    runs[name].append(raw_gets(env, prefix, ranges, pool))
                    continue
                if got.error:
                    broken[name] = got.error
                    step(f"   {name}: FAILED: {got.error}")
                else:
                    runs[name].append(got)
    fetched = sum(x[2] for x in data_ranges)
    mb = media.payload / 1e6
    fig: dict[str, Any] = {"payload_mb": mb, "ranges": len(data_ranges), "range_mb": fetched / 1e6}
    if data_ranges:
        sizes = [x[2] for x in data_ranges if x[0].startswith("blobs/")]
        step(f"   reeldb's loader asked for {len(data_ranges)} data ranges ({fetched / 1e6:,.0f} MB): clip runs "
             f"of {min(sizes) / 2**20:.0f}-{max(sizes) / 2**20:.0f} MiB, embedding runs of "
             f"{max(x[2] for x in data_ranges if x[0].endswith('.mat')):,} bytes")
    ref_rates: dict[str, float] = {}
    for name in names[2:]:
        if runs[name]:
            secs = median([float(x) for x in runs[name]])  # type: ignore[arg-type]
            nreq = len({"boto3, reeldb's ranges": data_ranges, "boto3, 2 MiB parts": split(data_ranges, BLOCK),
                        "boto3, one GET per 1 MiB value": split(data_ranges, CLIP_BYTES)}[name])
            ref_rates[name] = fetched / 1e6 / secs
            step(f"   {name:33s} {ref_rates[name]:7.1f} MB/s ({secs:.2f} s, {nreq} GETs)")
            fig[name] = {"seconds": secs, "mb_s": ref_rates[name], "gets": nreq}
        elif name in broken:
            step(f"   {name:33s} skipped: {broken[name]}")
    best_ref = max(ref_rates, key=ref_rates.__getitem__) if ref_rates else None
    for name in names[:2]:
        eps = [x for x in runs[name] if isinstance(x, Epoch)]
        if not eps:
            fig[name] = {"error": broken.get(name)}
            res.add(f"2. loader, {name}", "FAILED", broken.get(name, ""))
            continue
        secs = median([e.secs for e in eps])
        build = median([e.build for e in eps])
        rate = mb / secs
        e0 = eps[0]
        extra = ""
        if name == "reeldb, empty disk cache":
            warm = median([e.warm for e in eps])
            extra = (f"; 2nd epoch (warm cache) {mb / warm:,.0f} MB/s; cache hits/misses "
                     f"{e0.cache.get('hits')}/{e0.cache.get('misses')} after both")
            fig[name] = {"warm_seconds": warm, "warm_mb_s": mb / warm}
        step(f"   {name:33s} {rate:7.1f} MB/s ({secs:.2f} s; {e0.rows} rows; to_torch() {ms(build)}; "
             f"epoch requests {fmt_requests(e0.requests)}{extra})")
        fig[name] = {**fig.get(name, {}), "seconds": secs, "mb_s": rate, "build_s": build,
                     "requests": dict(e0.requests), "rows": e0.rows}
        if e0.nbytes != media.payload:
            step(f"   {name}: delivered {e0.nbytes:,} bytes, expected {media.payload:,}")
        note = ", ".join(f"{k.split(', ', 1)[1]} {v:.1f} MB/s ({rate / v:.2f}x)" for k, v in ref_rates.items())
        res.add(f"2. loader, {name}", f"{rate:.1f} MB/s", f"boto3 16 threads: {note}" if note else "")
        if name == "reeldb, empty disk cache":
            res.add("2. loader, 2nd epoch (warm disk cache)", f"{fig[name]['warm_mb_s']:.0f} MB/s",
                    "the same loader again: every block from the local disk cache")
            res.add("2. loader, to_torch() on an empty cache", ms(build), "plan + Parquet footers + NULL checks")
        if best_ref:
            step(f"   {name} / best boto3 ({best_ref}): {rate / ref_rates[best_ref]:.2f}x")
    res.figures["loader"] = fig


# -- 3. cold start -----------------------------------------------------------------------------
COLD = r"""
import time
t0 = time.time()
import json, sys
import reeldb
t1 = time.time()
boto = "boto3" in sys.modules
client = []
if sys.argv[1].startswith("s3://"):  # instrumentation: the time connect() spends making the boto3 client
    try:
        from reeldb.storage import cloud
        make = cloud.CloudStore._make_client
        def timed(self):
            t = time.time()
            try:
                return make(self)
            finally:
                client.append(time.time() - t)
        cloud.CloudStore._make_client = timed
    except (ImportError, AttributeError):
        pass
db = reeldb.connect(sys.argv[1])
t2 = time.time()
row = db.execute("SELECT count(*) FROM t0").fetchone()
t3 = time.time()
print(json.dumps({"started": t0, "imported": t1, "connected": t2, "first_row": t3, "row": list(row),
                  "boto3_at_import": boto, "client": sum(client) if client else None, "stats": db.stats()}))
"""

BOTO = r"""
import time
t0 = time.time()
import json, sys
import boto3
t1 = time.time()
c = boto3.client("s3")
t2 = time.time()
c.head_bucket(Bucket=sys.argv[1])
t3 = time.time()
print(json.dumps({"started": t0, "import boto3": t1 - t0, "boto3.client('s3')": t2 - t1,
                  "first request": t3 - t2, "done": t3}))
"""


def spawn(code: str, *argv: str, **extra: str) -> tuple[float, dict[str, Any]]:
    """(seconds from just before the spawn to the child's ``first_row`` / ``done`` time,
    the child's JSON)."""
    t = time.time()
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         env=child_env(**extra), check=False)
    if out.returncode:
        raise RuntimeError(f"child failed: {out.stderr.strip()[-2000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got.get("first_row", got.get("done", time.time())) - t, got


def wall(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=child_env(), check=True)
    return time.perf_counter() - t


def build_commits(db: reeldb.Connection, create: int, commits: int, tables: int) -> float:
    """``create`` CREATE TABLEs, then ``commits`` single-row INSERTs round-robin over
    ``tables``; seconds of the INSERTs."""
    for i in range(create):
        db.execute(f"CREATE TABLE t{i} (id BIGINT, name TEXT, score DOUBLE PRECISION)")
    t = time.perf_counter()
    for i in range(commits):
        db.execute(f"INSERT INTO t{i % tables} VALUES (%s, %s, %s)", (i, f"row {i}", i * 0.5))
    return time.perf_counter() - t


def bench_cold(res: Results, env: Env, args: argparse.Namespace) -> None:
    step(f"3. cold start: a database of {args.tables} tables and {args.commits} single-row INSERT commits")
    local = str(env.root / "cold.reeldb")
    url = env.url(f"cold-{uuid.uuid4().hex[:8]}")
    db = reeldb.connect(local)
    lsecs = build_commits(db, args.tables, args.commits, args.tables)
    db.close()
    db = reeldb.connect(url, storage_options={"cache_dir": env.cache_dir("build")})
    for i in range(args.tables):
        db.execute(f"CREATE TABLE t{i} (id BIGINT, name TEXT, score DOUBLE PRECISION)")
    before = requests_of(db)
    by_object = count_by_object(db.catalog.store)
    ssecs = build_commits(db, 0, args.commits, args.tables)
    reqs = requests_of(db) - before
    commits = len(db.log())
    db.close()
    step(f"   built: local folder {args.commits / lsecs:,.0f} commits/s, S3 {args.commits / ssecs:,.1f} commits/s "
         f"({ssecs:.1f} s; per commit: " + ", ".join(f"{k} {v / args.commits:.1f}" for k, v in sorted(reqs.items()))
         + f"); {commits} commits in the log")
    if by_object:
        step("   S3 requests per single-row commit, by object: " + ", ".join(
            f"{k} {v / args.commits:.2f}" for k, v in by_object.most_common()))
    res.figures["cold_build"] = {"local_s": lsecs, "s3_s": ssecs, "s3_requests": dict(reqs), "log": commits,
                                 "s3_requests_by_object": dict(by_object)}
    if by_object:
        res.add("3. S3 requests per single-row commit", f"{sum(reqs.values()) / args.commits:.1f}",
                ", ".join(f"{k} {v / args.commits:.1f}" for k, v in by_object.most_common(4)))
    res.add("3. build: sequential single-row commits, one process, S3", f"{args.commits / ssecs:.1f} commits/s",
            f"local folder {args.commits / lsecs:.0f} commits/s ({lsecs / ssecs:.2f}x)")

    n = args.cold_runs
    figs: dict[str, Any] = {}
    cases: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    spawn(COLD, local)  # warm-up: .pyc files, page cache
    cases["local folder"] = [spawn(COLD, local) for _ in range(n)]
    spawn(COLD, url, REELDB_CACHE_DIR=env.cache_dir("cold"))
    cold_runs = []
    last = ""
    for _ in range(n):
        last = env.cache_dir("cold")
        cold_runs.append(spawn(COLD, url, REELDB_CACHE_DIR=last))
    cases["S3, empty disk cache"] = cold_runs
    cases["S3, warm disk cache"] = [spawn(COLD, url, REELDB_CACHE_DIR=last) for _ in range(n)]
    expected = len(range(0, args.commits, args.tables))
    for name, got in cases.items():
        total = median([g[0] for g in got])
        parts = {"python start": median([g[1]["started"] - (g[1]["first_row"] - g[0]) for g in got]),
                 "import reeldb": median([g[1]["imported"] - g[1]["started"] for g in got]),
                 "connect()": median([g[1]["connected"] - g[1]["imported"] for g in got]),
                 **({"of which import boto3 + client": median([g[1]["client"] for g in got])}
                    if all(g[1].get("client") is not None for g in got) else {}),
                 "first query": median([g[1]["first_row"] - g[1]["connected"] for g in got])}
        st = got[-1][1]["stats"]
        reqs = st.get("requests", {})
        cache = st.get("cache")
        rows = {tuple(g[1]["row"]) for g in got}
        step(f"   {name:22s} median {ms(total)} (min {ms(min(g[0] for g in got))}): "
             + ", ".join(f"{k} {ms(v)}" for k, v in parts.items())
             + (f"; requests {fmt_requests(reqs)} ({sum(reqs.values())})" if "requests" in st else "")
             + (f"; cache hits/misses {cache['hits']}/{cache['misses']}" if cache else "")
             + f"; row {sorted(rows)}{'' if rows == {(expected,)} else f' (expected {expected})'}"
             + ("; boto3 imported by `import reeldb`" if got[-1][1]["boto3_at_import"] else ""))
        figs[name] = {"median_s": total, "runs": [g[0] for g in got], "parts": parts, "requests": reqs,
                      "cache": cache}
        note = ", ".join(f"{k} {ms(v)}" for k, v in parts.items())
        if reqs:
            note += f"; {sum(reqs.values())} requests ({fmt_requests(reqs)})"
        res.add(f"3. cold start to first row, {name}", ms(total), note)
    refs = {"python -c pass": "pass", "python -c 'import reeldb'": "import reeldb"}
    for label, code in refs.items():
        wall(code)
        figs[label] = median([wall(code) for _ in range(n)])
    spawn(BOTO, env.bucket)
    boto = [spawn(BOTO, env.bucket) for _ in range(n)]
    bparts = {k: median([b[1][k] for b in boto]) for k in ("import boto3", "boto3.client('s3')", "first request")}
    figs["boto3"] = {"median_s": median([b[0] for b in boto]), **bparts}
    step(f"   references (wall): python -c pass {ms(figs['python -c pass'])}, python -c 'import reeldb' "
         f"{ms(figs[list(refs)[1]])}; python -c boto3: spawn to first request done "
         f"{ms(figs['boto3']['median_s'])} (" + ", ".join(f"{k} {ms(v)}" for k, v in bparts.items()) + ")")
    res.add("3. reference: python -c 'import reeldb' (wall)", ms(figs[list(refs)[1]]),
            f"python -c pass {ms(figs['python -c pass'])}")
    res.add("3. reference: import boto3 + boto3.client('s3') + 1 request", ms(figs["boto3"]["median_s"]),
            ", ".join(f"{k} {ms(v)}" for k, v in bparts.items()))
    res.figures["cold"] = figs


# -- 4. commit throughput ----------------------------------------------------------------------
def _writer(url: str, cache_dir: str, run: int, w: int, ready: Any, start: Any, deadline: Any,
            results: Any) -> None:
    """One writer process: single-row INSERT commits until the deadline."""
    out: dict[str, Any] = {"writer": w, "ids": [], "lat": [], "errors": {}, "cas": 0, "cas_lost": 0, "window": []}
    try:
        db = reeldb.connect(url, storage_options={"cache_dir": cache_dir})
        store = db.catalog.store
        inner = store.compare_and_swap

        def counting(key: str, expected: str | None, data: bytes) -> bool:
            won = inner(key, expected, data)
            if key.startswith(BRANCH_REF):
                out["cas"] += 1
                out["cas_lost"] += not won
                if read_at[0]:  # the last read of the head before this CAS, to the CAS's answer
                    out["window"].append(time.perf_counter() - read_at[0])
            return won

        store.compare_and_swap = counting  # instrumentation only: counts the commit attempts
        refs = getattr(db.catalog, "refs", None)
        read_at = [0.0]
        if refs is not None and hasattr(refs, "branch"):
            read_head = refs.branch

            def reading(*a: Any, **k: Any) -> Any:
                read_at[0] = time.perf_counter()
                return read_head(*a, **k)

            refs.branch = reading
        rng = np.random.default_rng(1000 * run + w)
        ready.put(w)
        start.wait()
        t_cpu = time.process_time()
        out["start"] = time.time()
        seq = 0
        while time.time() < deadline.value:
            seq += 1
            rid = run * 100_000_000 + w * 1_000_000 + seq
            params = (rid, w, seq, f"writer {w} row {seq}", rng.standard_normal(DIM, dtype=np.float32),
                      float(rng.random()))
            t = time.perf_counter()
            try:
                db.execute(LOG_INSERT, params)
            except Exception as e:
                out["errors"][failure(e)] = out["errors"].get(failure(e), 0) + 1
                continue
            out["lat"].append(time.perf_counter() - t)
            out["ids"].append(rid)
        out["end"] = time.time()
        out["cpu"] = time.process_time() - t_cpu
        out["requests"] = dict(requests_of(db))
        db.close()
    except Exception as e:
        out["fatal"] = failure(e)
        ready.put(w)
    results.put(out)


def run_writers(env: Env, url: str, run: int, n: int, duration: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    deadline = ctx.Value("d", 0.0)
    cache_dir = env.cache_dir("writers")
    procs = [ctx.Process(target=_writer, args=(url, cache_dir, run, w, ready, start, deadline, results))
             for w in range(n)]
    t_spawn = time.perf_counter()
    for p in procs:
        p.start()
    for _ in range(n):
        ready.get(timeout=300)
    startup = time.perf_counter() - t_spawn
    server_cpu0 = cpu_seconds(env.server.proc.pid)
    deadline.value = time.time() + duration
    t0 = time.time()
    start.set()
    outs = [results.get(timeout=duration + 300) for _ in range(n)]
    for p in procs:
        p.join(60)
    server_cpu = cpu_seconds(env.server.proc.pid) - server_cpu0
    fatal = [o["fatal"] for o in outs if "fatal" in o]
    window = max((o["end"] for o in outs if "end" in o), default=t0 + duration) - t0
    return {"outs": outs, "fatal": fatal, "window": window, "startup": startup, "server_cpu": server_cpu}


def verify(url: str, env: Env, run: int, ids: list[int]) -> tuple[int, int, int, int, int]:
    """(rows of this run in the table, distinct, missing, extra, duplicated) against the ids
    whose INSERT returned."""
    db = reeldb.connect(url, storage_options={"cache_dir": env.cache_dir("verify")})
    lo, hi = run * 100_000_000, (run + 1) * 100_000_000
    got = [r[0] for r in db.execute(f"SELECT id FROM log WHERE id >= {lo} AND id < {hi}").fetchall()]
    db.close()
    want, have = set(ids), set(got)
    return len(got), len(have), len(want - have), len(have - want), len(got) - len(have)


def bench_writers(res: Results, env: Env, args: argparse.Namespace) -> None:
    url = env.url(f"log-{uuid.uuid4().hex[:8]}")
    db = reeldb.connect(url, storage_options={"cache_dir": env.cache_dir("log")})
    db.execute(LOG_TABLE)
    db.close()
    step(f"4. commit throughput: single-row INSERT commits into one branch of one S3 database, "
         f"{args.duration:g} s per line after every writer is ready")
    figs: dict[str, Any] = {}
    for run, n in enumerate(sorted({args.writers, 1}, reverse=True), start=1):
        got = run_writers(env, url, run, n, args.duration)
        outs = got["outs"]
        ids = [i for o in outs for i in o["ids"]]
        lat = np.array([x for o in outs for x in o["lat"]]) if ids else np.array([float("nan")])
        errors: Counter[str] = Counter()
        for o in outs:
            errors.update(o["errors"])
        cas = sum(o["cas"] for o in outs)
        lost = sum(o["cas_lost"] for o in outs)
        reqs: Counter[str] = Counter()
        for o in outs:
            reqs.update(o.get("requests", {}))
        rate = len(ids) / got["window"]
        p50, p99 = np.percentile(lat, [50, 99])
        wcpu = sum(o.get("cpu", 0.0) for o in outs)
        windows = [x for o in outs for x in o["window"]]
        cas_window = median(windows) if windows else float("nan")
        rows, distinct, missing, extra, dup = verify(url, env, run, ids)
        ok = rows == len(ids) and not (missing or extra or dup)
        label = f"{n} writer{'s' if n > 1 else ''}"
        step(f"   {label:10s} {rate:6.1f} rows/s ({len(ids)} rows in {got['window']:.1f} s), insert p50 "
             f"{ms(p50)}, p99 {ms(p99)}, max {ms(float(lat.max()))}; branch CAS {cas} tries, {lost} lost "
             f"({lost / max(len(ids), 1):.2f} retries/row; {cas - lost - len(ids)} extra commits won: auto-compaction)"
             f"; failed inserts {sum(errors.values())}")
        step("              requests per row: " + ", ".join(f"{k} {v / max(len(ids), 1):.1f}"
                                                          for k, v in sorted(reqs.items()))
             + f"; read head -> CAS answered: median {ms(cas_window)}"
             + f"; CPU in the window: moto {got['server_cpu'] / got['window']:.2f} cores, writers "
             f"{wcpu / got['window']:.2f} cores; writers took {got['startup']:.1f} s to start and connect")
        for e, c in errors.most_common():
            step(f"              failed insert x{c}: {e}")
        for f in got["fatal"]:
            step(f"              writer failed: {f}")
        step(f"              check: {rows} rows in the table for {len(ids)} successful inserts; "
             f"missing {missing}, extra {extra}, duplicated {dup}: {'OK' if ok else 'MISMATCH'}")
        figs[label] = {"rows": len(ids), "window_s": got["window"], "rows_s": rate, "p50_s": p50, "p99_s": p99,
                       "cas": cas, "cas_lost": lost, "cas_window_s": cas_window, "errors": dict(errors), "requests": dict(reqs),
                       "server_cores": got["server_cpu"] / got["window"], "writer_cores": wcpu / got["window"],
                       "check": {"rows": rows, "distinct": distinct, "missing": missing, "extra": extra,
                                 "duplicated": dup, "ok": ok}}
        res.add(f"4. commits, {label}", f"{rate:.1f} rows/s",
                f"p50 {ms(p50)}, p99 {ms(p99)}; CAS lost {lost} of {cas} ({lost / max(len(ids), 1):.2f}/row), "
                f"head->CAS {ms(cas_window)}; "
                f"failed {sum(errors.values())}; check {'OK' if ok else 'MISMATCH'} ({rows}/{len(ids)})")
    one = figs.get("1 writer")
    many = figs.get(f"{args.writers} writers")
    if one and many:
        step(f"   {args.writers} writers / 1 writer: {many['rows_s'] / one['rows_s']:.2f}x rows/s")
        res.add(f"4. commits, {args.writers} writers / 1 writer", f"{many['rows_s'] / one['rows_s']:.2f}x", "")
    res.figures["writers"] = figs


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=256, help="media rows (1 MiB clip each)")
    p.add_argument("--batch", type=int, default=16, help="rows per db.insert and per loader batch")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the dataloader figures (median)")
    p.add_argument("--commits", type=int, default=1000, help="single-row commits of the cold-start database")
    p.add_argument("--tables", type=int, default=20, help="tables of the cold-start database")
    p.add_argument("--cold-runs", type=int, default=5, help="runs of each cold-start figure (median)")
    p.add_argument("--writers", type=int, default=8, help="concurrent writer processes")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per commit-throughput line")
    p.add_argument("--steps", default="1,2,3,4", help="which steps to run (2 needs 1)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 32 rows, 1 round, 60 commits, 2 cold runs, 3 s lines")
    p.add_argument("--out", type=Path, help="write results.json here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.quick:
        args.rows, args.rounds, args.commits, args.cold_runs, args.duration = 32, 1, 60, 2, 3.0
    args.steps = {int(s) for s in str(args.steps).split(",") if s}
    if 2 in args.steps:
        args.steps.add(1)
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results("summary (moto's S3 server on 127.0.0.1; references measured in the same run)")
    root = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = s3_server.start()
    try:
        os.environ.update(server.env())  # reeldb, boto3 and every child find the server this way
        os.environ["REELDB_CACHE_DIR"] = str(root / "cache-default")  # never ~/.cache
        s3 = boto3.client("s3", config=Config(max_pool_connections=THREADS + 8))
        env = Env(server, s3, root)
        import moto

        step(f"bench_s3: moto {moto.__version__} S3 server at {server.endpoint}, boto3 {boto3.__version__}, "
             f"reeldb {reeldb.__version__}; {os.cpu_count()} cores, {load()}")
        if 1 in args.steps:
            media = make_media(args.rows, args.batch, args.seed)
            url = bench_ingest(res, env, args, media)
            if 2 in args.steps:
                bench_loader(res, env, args, url, media)
            del media
        if 3 in args.steps:
            bench_cold(res, env, args)
        if 4 in args.steps:
            bench_writers(res, env, args)
        res.figures["args"] = {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v)
                               for k, v in vars(args).items()}
        step(f"done, {load()}")
        res.print_summary("reference / note")
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "results.json").write_text(json.dumps(res.figures, indent=1, default=str))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
