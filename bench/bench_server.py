"""Wire-protocol benchmark: ``reeldb serve`` against PostgreSQL 16 + pgvector, both over TCP
on loopback with psycopg 3, and the scale-to-zero cold start of ``reeldb serve``.

    python bench/bench_server.py [--rows 100000] [--dim 768] [--duration 4] [--quick] [--out DIR]

Data (fixed seed): the brief's ``generations`` table (``id SERIAL PRIMARY KEY``, ``prompt``,
``prompt_embedding VECTOR(dim)``, ``conditioning_image`` / ``output_video`` (left NULL),
``model_version``, ``cfg_scale``, ``num_frames``, ``fps``, ``quality_score``,
``human_preference JSONB``, ``created_at``), --rows rows with clustered unit embeddings, as
in bench_core.py. reeldb is loaded through its Python API (one ``db.insert``); PostgreSQL
16.2 + pgvector 0.6.2 (the binaries bundled in PyPI's ``pgserver`` wheel, run directly:
``initdb`` then ``postgres`` listening on 127.0.0.1, as user ``nobody`` when this script
runs as root) through one binary ``COPY`` (``CREATE EXTENSION vector``; BLOB is BYTEA).

1. Queries over the wire, for each client count in --clients (default 1, 8, 32) and
   --duration seconds each, psycopg 3 (server-side prepared statements, autocommit), the
   clients spread over up to --procs processes of threads:
   (a) point query by primary key with a bound parameter (a random id each time);
   (b) the brief's curation query in pgvector's spelling (``1 - (prompt_embedding <=> $1)
       AS relevance ... WHERE quality_score > 0.85 AND model_version = 'seedance-v2' AND
       num_frames >= 48 ORDER BY prompt_embedding <=> $1 LIMIT --k``), the target vector a
       bound parameter (--targets vectors near cluster centres, round-robin).
   Printed: queries/s, p50 and p99 latency, the CPU the client processes and the server
   used in the window (in cores: 1.00 = one core busy all the time), and reeldb / PG
   ratios. PostgreSQL runs the curation query as an exact scan (parallel seq scan + sort)
   first, then again with an HNSW index (``vector_cosine_ops``, m=16, ef_construction=64;
   build time printed), whose recall against the exact answer is measured (with the
   default ``hnsw.ef_search`` = 40 and with 1000, its maximum).
2. Bulk ingest over the wire: --ingest-rows rows into an empty table, by ``COPY ... FROM
   STDIN`` (psycopg's ``cursor.copy`` + ``write_row``, text format, the only one reeldb
   takes) and by ``cursor.executemany(INSERT ...)`` in one transaction; reeldb and PG.
   The client's row tuples (vector as pgvector text) are made before the timer starts.
3. Cold start of the scale-to-zero path: a small parent process binds a loopback socket and,
   when the first client connects, forks and execs ``reeldb serve PATH`` with the socket on
   fd 3 and LISTEN_FDS=1 / LISTEN_PID (systemd socket activation); the timer runs from the
   client's ``connect()`` to the first row of ``SELECT prompt FROM generations LIMIT 1``.
   --cold-runs times (median, min); again through ``systemd-socket-activate`` when it is
   installed. Then the parts, each measured alone in fresh interpreters: python start,
   ``import reeldb``, the server's imports, opening the database, first query, and the
   packages that dominate ``python -X importtime``. Reference: PostgreSQL's own start
   (``postgres`` process spawned to first row, same client).

Prints figures only (no asserts); progress bars (tqdm) go to stderr, on a terminal only. The
full run takes about 4 minutes on 2 cores (the HNSW build is about a minute of it); needs
pgserver (``pip install pgserver``) and about 2 GB of temporary disk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import multiprocessing as mp
import os
import pwd
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

_SRC: str | None = None
try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    _SRC = str(Path(__file__).resolve().parents[1] / "src")
    sys.path.insert(0, _SRC)
    import reeldb

import psycopg  # noqa: E402 - after the src/ fallback above

from summary import Results, load, median  # noqa: E402 - bench/ is the script's folder

MODELS = ("seedance-v2", "veo-3", "kling-1.6")
FRAMES = (24, 48, 72, 96)
FPS = (12, 24, 30)
COLUMNS = ("id", "prompt", "prompt_embedding", "model_version", "cfg_scale", "num_frames", "fps",
           "quality_score", "human_preference", "created_at")
_SUBJECTS = ("a golden retriever", "a red fox", "an astronaut", "a paper boat", "a jazz band",
             "a city skyline", "a hummingbird", "a vintage car", "a lighthouse", "a dancer")
_ACTIONS = ("running", "floating", "spinning slowly", "drifting", "playing", "glowing")
_PLACES = ("on a beach at sunset", "in a neon city", "through a misty forest", "under water",
           "on the moon", "in a snowy village")
_STYLES = ("cinematic", "anime", "35mm film", "watercolor", "hyperreal", "drone shot")

POINT = ("SELECT id, prompt, model_version, quality_score, created_at FROM generations "
         "WHERE id = %s")
CURATION = """SELECT prompt, output_video, quality_score,
1 - (prompt_embedding <=> %(v)s) AS relevance
FROM generations
WHERE quality_score > 0.85
AND model_version = 'seedance-v2'
AND num_frames >= 48
ORDER BY prompt_embedding <=> %(v)s
LIMIT {k}"""
FIRST_ROW = "SELECT prompt FROM generations LIMIT 1"


def schema_sql(table: str, dim: int, blob: str) -> str:
    """The brief's CREATE TABLE with VECTOR(dim); ``blob`` is BLOB (reeldb) or BYTEA (PG)."""
    return f"""CREATE TABLE {table} (
id SERIAL PRIMARY KEY,
prompt TEXT,
prompt_embedding VECTOR({dim}),
conditioning_image {blob},
output_video {blob},
model_version TEXT,
cfg_scale FLOAT,
num_frames INT,
fps INT,
quality_score FLOAT,
human_preference JSONB,
created_at TIMESTAMP DEFAULT NOW()
)"""


# -- reporting ---------------------------------------------------------------------------------
_T0 = time.perf_counter()


def step(msg: str) -> None:
    """One progress line, with the time since the benchmark started."""
    tqdm.write(f"[{time.perf_counter() - _T0:7.1f}s] {msg}")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


@dataclass
class Dataset:
    n: int
    dim: int
    scalars: dict[str, pa.Array]  # the table's scalar columns (id included)
    embeddings: np.ndarray  # (n, dim) float32, unit rows
    centres: np.ndarray  # (clusters, dim) float32, unit rows


def unit_rows(m: np.ndarray) -> np.ndarray:
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def make_dataset(n: int, dim: int, clusters: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
    emb = np.empty((n, dim), dtype=np.float32)
    sigma = np.float32(0.8 / np.sqrt(dim))
    for s in range(0, n, 8192):
        e = min(n, s + 8192)
        block = centres[rng.integers(0, clusters, e - s)]
        block += sigma * rng.standard_normal((e - s, dim), dtype=np.float32)
        emb[s:e] = unit_rows(block)
    parts = [rng.integers(0, len(x), n).tolist() for x in (_SUBJECTS, _ACTIONS, _PLACES, _STYLES)]
    prompts = [f"{_SUBJECTS[a]} {_ACTIONS[b]} {_PLACES[c]}, {_STYLES[d]}, take {i}"
               for i, (a, b, c, d) in enumerate(zip(*parts))]
    prefs = [json.dumps({"votes": v, "preferred": bool(w), "rater": f"r{r:03d}"})
             for v, w, r in zip(rng.integers(0, 20, n).tolist(), rng.integers(0, 2, n).tolist(),
                                rng.integers(0, 200, n).tolist())]
    start = np.datetime64("2025-01-01T00:00:00", "us")
    created = start + np.sort(rng.integers(0, 90 * 86400, n)).astype("timedelta64[s]")
    scalars = {
        "id": pa.array(np.arange(1, n + 1, dtype=np.int32), pa.int32()),
        "prompt": pa.array(prompts, pa.string()),
        "model_version": pa.array(np.asarray(MODELS)[rng.integers(0, 3, n)].tolist(), pa.string()),
        "cfg_scale": pa.array(np.round(rng.uniform(1.0, 15.0, n), 2), pa.float64()),
        "num_frames": pa.array(np.asarray(FRAMES, np.int32)[rng.integers(0, 4, n)], pa.int32()),
        "fps": pa.array(np.asarray(FPS, np.int32)[rng.integers(0, 3, n)], pa.int32()),
        "quality_score": pa.array(rng.uniform(0.0, 1.0, n), pa.float64()),
        "human_preference": pa.array(prefs, pa.string()),
        "created_at": pa.array(created.astype("datetime64[us]"), pa.timestamp("us")),
    }
    return Dataset(n, dim, scalars, emb, centres)


def vector_text(v: np.ndarray) -> str:
    """pgvector's text form, the way both servers take a bound vector."""
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


def make_targets(ds: Dataset, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    picks = ds.centres[rng.integers(0, len(ds.centres), count)].copy()
    picks += np.float32(0.5 / np.sqrt(ds.dim)) * rng.standard_normal(picks.shape, dtype=np.float32)
    return list(unit_rows(picks))


def row_tuples(ds: Dataset, start: int, stop: int, id_offset: int) -> list[tuple[Any, ...]]:
    """Rows as a Postgres client sends them (vector as text), for the ingest step."""
    cols = {k: ds.scalars[k].slice(start, stop - start).to_pylist() for k in COLUMNS
            if k != "prompt_embedding"}
    vecs = [vector_text(v) for v in ds.embeddings[start:stop]]
    return [(cols["id"][i] + id_offset, cols["prompt"][i], vecs[i], cols["model_version"][i],
             cols["cfg_scale"][i], cols["num_frames"][i], cols["fps"][i], cols["quality_score"][i],
             cols["human_preference"][i], cols["created_at"][i]) for i in range(stop - start)]


_PG_EPOCH = dt.datetime(2000, 1, 1)


def pg_binary_copy(ds: Dataset, start: int, stop: int) -> bytes:
    """Rows ``start:stop`` in COPY's binary format (pgvector's send format for the vector)."""
    cols = {k: ds.scalars[k].slice(start, stop - start).to_pylist() for k in COLUMNS
            if k != "prompt_embedding"}
    vecs = ds.embeddings[start:stop].astype(">f4")
    head = struct.pack("!hh", ds.dim, 0)
    vlen = struct.pack("!i", 4 + 4 * ds.dim)
    out = bytearray()
    for i in range(stop - start):
        prompt = cols["prompt"][i].encode()
        model = cols["model_version"][i].encode()
        pref = b"\x01" + cols["human_preference"][i].encode()
        micros = (cols["created_at"][i] - _PG_EPOCH) // dt.timedelta(microseconds=1)
        out += struct.pack("!hii", len(COLUMNS), 4, cols["id"][i])
        out += struct.pack("!i", len(prompt)) + prompt
        out += vlen + head + vecs[i].tobytes()
        out += struct.pack("!i", len(model)) + model
        out += struct.pack("!idiiiiid", 8, cols["cfg_scale"][i], 4, cols["num_frames"][i], 4,
                           cols["fps"][i], 8, cols["quality_score"][i])
        out += struct.pack("!i", len(pref)) + pref
        out += struct.pack("!iq", 8, micros)
    return bytes(out)


# -- servers -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dsn(port: int, dbname: str) -> str:
    return f"host=127.0.0.1 port={port} dbname={dbname} user=bench"


def wait_connect(conninfo: str, proc: subprocess.Popen, sql: str = FIRST_ROW,
                 timeout: float = 60) -> float:
    """Seconds until a client gets the first row of ``sql`` (polling every 5 ms)."""
    t0 = time.perf_counter()
    while True:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as c:
                c.execute(sql).fetchall()
            return time.perf_counter() - t0
        except psycopg.OperationalError:
            if proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise
            time.sleep(0.005)


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process, all its threads."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / _TICK


def tree_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """A process's reaped children's CPU seconds (cutime + cstime) and each live child's."""
    f = _stat(pid)
    kids = {pid: proc_cpu(pid)}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                g = _stat(int(entry))
            except OSError:
                continue
            if g[1] == str(pid):
                kids[int(entry)] = (int(g[11]) + int(g[12])) / _TICK
    return (int(f[13]) + int(f[14])) / _TICK, kids


def tree_delta(a: tuple[float, dict[int, float]], b: tuple[float, dict[int, float]]) -> float:
    """CPU the process tree used between two ``tree_cpu`` snapshots: what live processes
    added, plus what children reaped meanwhile used after the first snapshot."""
    live = sum(v - a[1].get(pid, 0.0) for pid, v in b[1].items())
    gone = sum(v for pid, v in a[1].items() if pid not in b[1])
    return live + max(0.0, b[0] - a[0] - gone)


class ReeldbServer:
    def __init__(self, path: Path, log: Path):
        self.port = free_port()
        self.name = Path(path).resolve().name  # the database name the server answers to
        self.proc = subprocess.Popen(
            [*reeldb_cmd(), "serve", str(path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=child_env())  # noqa: SIM115
        self.start_s = wait_connect(self.dsn, self.proc)

    @property
    def dsn(self) -> str:
        return dsn(self.port, self.name)

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    @staticmethod
    def cpu_delta(a: float, b: float) -> float:
        return b - a

    def stop(self) -> None:
        self.proc.terminate()  # not SIGINT: a background job inherits SIGINT ignored
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Postgres:
    """PostgreSQL from pgserver's bundled binaries, on 127.0.0.1 (a unix socket too, in a
    private folder). As root, runs as ``nobody``: postgres refuses root, and pgserver's own
    ``get_server`` would ``useradd`` a system user for it."""

    SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB", "max_connections": "100",
                "work_mem": "64MB"}

    def __init__(self, root: Path):
        spec = importlib.util.find_spec("pgserver")
        if spec is None or spec.origin is None:
            raise RuntimeError("pgserver is not installed: .venv/bin/pip install pgserver")
        self.bin = Path(spec.origin).parent / "pginstall" / "bin"
        self.data, self.sock, self.log = root / "pgdata", root / "pgsock", root / "pg.log"
        self.sock.mkdir()
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chmod(root, 0o711)
            os.chown(self.sock, nobody.pw_uid, nobody.pw_gid)
            self.log.touch()
            os.chown(self.log, nobody.pw_uid, nobody.pw_gid)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, nobody.pw_uid, nobody.pw_gid)
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "bench", "--auth=trust",
                        "--encoding=UTF8", "--no-sync"], check=True, capture_output=True, **self.user)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start_s = self.start("SELECT 1")

    def start(self, sql: str = FIRST_ROW) -> float:
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p",
                str(self.port), "-k", str(self.sock)]
        for k, v in self.SETTINGS.items():
            args += ["-c", f"{k}={v}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"), **self.user)  # noqa: SIM115
        return wait_connect(self.dsn, self.proc, sql)

    @property
    def dsn(self) -> str:
        return dsn(self.port, "postgres")

    def cpu(self) -> tuple[float, dict[int, float]]:
        assert self.proc is not None
        return tree_cpu(self.proc.pid)

    @staticmethod
    def cpu_delta(a: tuple[float, dict[int, float]], b: tuple[float, dict[int, float]]) -> float:
        return tree_delta(a, b)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def reeldb_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("reeldb")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "reeldb.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    if _SRC is not None:  # children must find reeldb where this process did
        env["PYTHONPATH"] = _SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


# -- 0. loading --------------------------------------------------------------------------------
def load_reeldb(res: Results, ds: Dataset, path: Path) -> None:
    db = reeldb.connect(path)
    db.execute(schema_sql("generations", ds.dim, "BLOB"))
    data: dict[str, Any] = dict(ds.scalars)
    data["prompt_embedding"] = ds.embeddings
    t = time.perf_counter()
    db.insert("generations", data)
    secs = time.perf_counter() - t
    db.close()
    res.figures["load_reeldb_s"] = secs
    step(f"   reeldb: db.insert of {ds.n:,} rows in {ms(secs)} ({ds.n / secs:,.0f} rows/s)")
    res.add("0. load, reeldb db.insert (Python API)", f"{ds.n / secs:,.0f} rows/s", ms(secs))


def load_pg(res: Results, ds: Dataset, pg: Postgres) -> None:
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(schema_sql("generations", ds.dim, "BYTEA"))
        t = time.perf_counter()
        cols = ", ".join(COLUMNS)
        with c.cursor().copy(f"COPY generations ({cols}) FROM STDIN (FORMAT binary)") as cp:
            cp.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
            for s in tqdm(range(0, ds.n, 2000), desc="PG COPY", leave=False, disable=None):
                cp.write(pg_binary_copy(ds, s, min(ds.n, s + 2000)))
            cp.write(struct.pack("!h", -1))
        secs = time.perf_counter() - t
        t = time.perf_counter()
        c.execute("VACUUM ANALYZE generations")
        vac = time.perf_counter() - t
        size = c.execute("SELECT pg_total_relation_size('generations')").fetchone()[0]
    res.figures["load_pg_s"] = secs
    step(f"   PostgreSQL: binary COPY of {ds.n:,} rows in {ms(secs)} ({ds.n / secs:,.0f} rows/s), "
         f"VACUUM ANALYZE {ms(vac)}, {size / 2**20:,.0f} MiB with TOAST and the pkey")
    res.add("0. load, PG binary COPY (psycopg)", f"{ds.n / secs:,.0f} rows/s", ms(secs))


# -- 1. queries --------------------------------------------------------------------------------
def client_worker(conninfo: str, sql: str, args: list[Any], named: bool, threads: int,
                  duration: float, setup: list[str], start: Any, end: Any, out: Any) -> None:
    """One client process: ``threads`` connections, each on its own thread, running ``sql``
    in a loop for ``duration`` seconds between the two barriers; reports latencies and the
    process's CPU time in that window."""
    try:
        conns = [psycopg.connect(conninfo, autocommit=True) for _ in range(threads)]
        for c in conns:
            for s in setup:
                c.execute(s)
            for a in args[:2]:  # prepare the statement and warm up
                c.execute(sql, {"v": a} if named else (a,), prepare=True).fetchall()
    except Exception as e:  # noqa: BLE001 - reported by the parent
        start.abort()
        out.put({"error": f"{type(e).__name__}: {e}"})
        return
    lat: list[list[float]] = [[] for _ in range(threads)]
    errs: list[str] = []

    def loop(i: int, stop_at: float) -> None:
        cur = conns[i].cursor()
        j = i * 7919
        while time.perf_counter() < stop_at:
            a = args[j % len(args)]
            j += 1
            t = time.perf_counter()
            try:
                cur.execute(sql, {"v": a} if named else (a,), prepare=True)
                cur.fetchall()
            except Exception as e:  # noqa: BLE001
                errs.append(f"{type(e).__name__}: {e}")
                return
            lat[i].append(time.perf_counter() - t)

    start.wait()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    stop_at = time.perf_counter() + duration
    ts = [threading.Thread(target=loop, args=(i, stop_at)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    end.wait()
    end.wait()  # the parent has read the server's CPU time: the connections may close now
    out.put({"lat": [x for xs in lat for x in xs], "errors": errs[:3],
             "cpu": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime})
    for c in conns:
        c.close()


@dataclass
class Cell:
    qps: float
    p50: float
    p99: float
    client_cpu: float  # cores
    server_cpu: float  # cores
    count: int
    errors: list[str]


def run_cell(server: Any, sql: str, args: list[Any], named: bool, clients: int, procs: int,
             duration: float, setup: list[str] | None = None) -> Cell:
    ctx = mp.get_context("spawn")
    nproc = min(clients, procs)
    split = [clients // nproc + (i < clients % nproc) for i in range(nproc)]
    start, end, out = ctx.Barrier(nproc + 1, timeout=300), ctx.Barrier(nproc + 1, timeout=300), ctx.Queue()
    ps = [ctx.Process(target=client_worker, args=(server.dsn, sql, args, named, n, duration,
                                                  setup or [], start, end, out)) for n in split]
    for p in ps:
        p.start()
    try:
        start.wait()
    except Exception:  # noqa: BLE001 - a worker could not connect: its message says why
        msgs = [out.get(timeout=30) for _ in range(1)]
        for p in ps:
            p.kill()
        return Cell(0, 0, 0, 0, 0, 0, [m.get("error", "?") for m in msgs])
    c0, t0 = server.cpu(), time.perf_counter()
    end.wait()
    wall, c1 = time.perf_counter() - t0, server.cpu()
    end.wait()
    got = [out.get(timeout=120) for _ in ps]
    for p in ps:
        p.join(30)
    lat = np.asarray([x for g in got for x in g["lat"]])
    errors = [e for g in got for e in g["errors"]]
    if not len(lat):
        return Cell(0, 0, 0, 0, 0, 0, errors)
    return Cell(len(lat) / wall, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                sum(g["cpu"] for g in got) / wall, server.cpu_delta(c0, c1) / wall, len(lat), errors)


def fmt_cell(c: Cell) -> str:
    if not c.count:
        return f"FAILED: {'; '.join(c.errors)[:300]}"
    err = f", {len(c.errors)} errors: {c.errors[0][:200]}" if c.errors else ""
    return (f"{c.qps:9,.1f} q/s  p50 {c.p50 * 1e3:8.2f} ms  p99 {c.p99 * 1e3:8.2f} ms  "
            f"CPU client {c.client_cpu:4.2f} server {c.server_cpu:4.2f}{err}")


def bench_queries(res: Results, args: argparse.Namespace, ds: Dataset, ree: ReeldbServer,
                  pg: Postgres, vecs: list[str]) -> None:
    rng = np.random.default_rng(args.seed + 2)
    ids = rng.integers(1, ds.n + 1, 4096).tolist()
    curation = CURATION.format(k=args.k)
    plan: list[tuple[str, str, list[Any], bool]] = [
        ("point query by id", POINT, ids, False),
        (f"curation query (k={args.k})", curation, vecs, True),
    ]
    cells = len(plan) * len(args.clients) * 2
    bar = tqdm(total=cells, desc="queries", leave=False, disable=None)
    for qi, (label, sql, qargs, named) in enumerate(plan):
        step(f"1{'ab'[qi]}. {label}: {args.duration:g} s per line, psycopg 3, prepared, "
             f"clients in up to {args.procs} processes")
        for n in args.clients:
            cr = run_cell(ree, sql, qargs, named, n, args.procs, args.duration)
            bar.update()
            cp = run_cell(pg, sql, qargs, named, n, args.procs, args.duration)
            bar.update()
            ratio = cr.qps / cp.qps if cr.qps and cp.qps else float("nan")
            step(f"   {n:2d} client{'s' if n > 1 else ' '} reeldb {fmt_cell(cr)}")
            step(f"              PG     {fmt_cell(cp)}")
            step(f"              reeldb/PG throughput {ratio:.2f}x, p50 latency "
                 f"{(cr.p50 / cp.p50 if cp.p50 else float('nan')):.2f}x")
            key = f"{'point' if qi == 0 else 'curation'}_{n}"
            res.figures[key] = {"reeldb": cr.__dict__, "pg": cp.__dict__, "ratio_qps": ratio}
            res.add(f"1{'ab'[qi]}. {label.split(' (')[0]}, {n} clients, reeldb / PG",
                    f"{cr.qps:,.1f} / {cp.qps:,.1f} q/s",
                    f"{ratio:.2f}x; p50 {cr.p50 * 1e3:.2f} / {cp.p50 * 1e3:.2f} ms")
    bar.close()


def curation_answers(conninfo: str, sql: str, vecs: list[str], setup: Sequence[str] = ()
                     ) -> list[list[str]]:
    with psycopg.connect(conninfo, autocommit=True) as c:
        for s in setup:
            c.execute(s)
        return [[r[0] for r in c.execute(sql, {"v": v}, prepare=True).fetchall()] for v in vecs]


def overlap(a: list[list[str]], b: list[list[str]]) -> float:
    return float(np.mean([len(set(x) & set(y)) / max(1, len(y)) for x, y in zip(a, b)]))


def bench_hnsw(res: Results, args: argparse.Namespace, ree: ReeldbServer, pg: Postgres,
               vecs: list[str]) -> None:
    curation = CURATION.format(k=args.k)
    sample = vecs[: args.recall_targets]
    exact_pg = curation_answers(pg.dsn, curation, sample)
    exact_ree = curation_answers(ree.dsn, curation, sample)
    agree = overlap(exact_ree, exact_pg)
    step(f"   reeldb and PG (exact) return the same rows: {agree:.1%} on {len(sample)} targets, "
         f"{np.mean([len(x) for x in exact_pg]):.0f} rows each")
    res.add("1b. curation, reeldb rows also in PG's exact answer", f"{agree:.1%}")
    step("1c. PostgreSQL with an HNSW index (vector_cosine_ops, m=16, ef_construction=64)")
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        t = time.perf_counter()
        c.execute("CREATE INDEX generations_hnsw ON generations "
                  "USING hnsw (prompt_embedding vector_cosine_ops)")
        build = time.perf_counter() - t
        c.execute("ANALYZE generations")
        plans = {}
        for name, sets in (("default", []), ("enable_seqscan=off", ["SET enable_seqscan = off"])):
            for st in sets:
                c.execute(st)
            plan = "\n".join(r[0] for r in c.execute("EXPLAIN " + curation, {"v": sample[0]}))
            plans[name] = "generations_hnsw" in plan
    setup = [] if plans["default"] else ["SET enable_seqscan = off"]
    step(f"   built in {ms(build)}; the planner {'uses' if plans['default'] else 'does NOT use'} it "
         f"for the curation query{'' if plans['default'] else ' (a filtered LIMIT ' + str(args.k) + ')'}"
         f"{'' if plans['default'] else '; forced with enable_seqscan=off: ' + ('uses it' if plans['enable_seqscan=off'] else 'still not')}")
    res.figures["hnsw"] = {"build_s": build, "planner_uses": plans["default"], "setup": setup}
    res.add("1c. PG HNSW index build", ms(build),
            "planner uses it" if plans["default"] else "planner ignores it; forced below")
    for ef in (40, 1000):
        got = curation_answers(pg.dsn, curation, sample, [*setup, f"SET hnsw.ef_search = {ef}"])
        rows = float(np.mean([len(x) for x in got]))
        rec = overlap(got, exact_pg)
        step(f"   hnsw.ef_search={ef}: {rows:.1f} rows returned of {args.k} (exact: "
             f"{np.mean([len(x) for x in exact_pg]):.0f}), recall@{args.k} {rec:.1%}")
        res.figures["hnsw"][f"ef{ef}"] = {"rows": rows, "recall": rec}
        res.add(f"1c. PG HNSW ef_search={ef}, recall@{args.k}", f"{rec:.1%}", f"{rows:.1f} rows")
    label = "PG+HNSW" + ("" if plans["default"] else " forced")
    for n in args.clients:
        cp = run_cell(pg, curation, vecs, True, n, args.procs, args.duration, setup)
        ref = res.figures.get(f"curation_{n}", {}).get("reeldb", {}).get("qps", float("nan"))
        step(f"   {n:2d} client{'s' if n > 1 else ' '} {label} {fmt_cell(cp)}; reeldb/{label} "
             f"{ref / cp.qps if cp.qps else float('nan'):.2f}x")
        res.figures["hnsw"][f"clients_{n}"] = cp.__dict__
        res.add(f"1c. curation, {n} clients, {label} (ef_search=40)", f"{cp.qps:,.1f} q/s",
                f"reeldb/{label} {ref / cp.qps if cp.qps else float('nan'):.2f}x")


# -- 2. ingest ---------------------------------------------------------------------------------
def bench_ingest(res: Results, args: argparse.Namespace, ds: Dataset, ree: ReeldbServer,
                 pg: Postgres) -> None:
    m = args.ingest_rows
    rows = row_tuples(ds, 0, m, ds.n)
    cols = ", ".join(COLUMNS)
    insert = f"INSERT INTO {{t}} ({cols}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    step(f"2. bulk ingest over the wire: {m:,} rows x VECTOR({ds.dim}) into an empty table")
    for name, server, blob in (("reeldb", ree, "BLOB"), ("PG", pg, "BYTEA")):
        out = {}
        with psycopg.connect(server.dsn, autocommit=True) as c:
            for t in ("ingest_copy", "ingest_many"):
                c.execute(schema_sql(t, ds.dim, blob))
            t0 = time.perf_counter()
            with c.cursor().copy(f"COPY ingest_copy ({cols}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            out["copy"] = time.perf_counter() - t0
            c.autocommit = False
            t0 = time.perf_counter()
            with c.cursor() as cur:
                cur.executemany(insert.format(t="ingest_many"), rows)
            c.commit()
            out["executemany"] = time.perf_counter() - t0
            c.autocommit = True
            counts = [c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                      for t in ("ingest_copy", "ingest_many")]
        step(f"   {name:6s} COPY FROM STDIN {m / out['copy']:9,.0f} rows/s ({ms(out['copy'])}); "
             f"executemany INSERT {m / out['executemany']:9,.0f} rows/s "
             f"({ms(out['executemany'])}); rows {counts[0]:,} / {counts[1]:,}")
        res.figures[f"ingest_{name}"] = out
        for how in ("copy", "executemany"):
            res.add(f"2. ingest {m:,} rows, {name}, {'COPY' if how == 'copy' else how}",
                    f"{m / out[how]:,.0f} rows/s", ms(out[how]))


# -- 3. cold start -----------------------------------------------------------------------------
ACTIVATOR = r"""
import os, select, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
print(s.getsockname()[1], flush=True)
select.select([s], [], [])  # a connection is waiting: start the service, as systemd does
pid = os.fork()
if pid == 0:
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.argv[1], sys.argv[1:])
os.waitpid(pid, 0)
"""

PARTS = r"""
import json, sys, time
t0 = time.perf_counter()
import reeldb
t1 = time.perf_counter()
import reeldb.cli
from reeldb.server.server import Server, ServerOptions
t2 = time.perf_counter()
srv = Server(ServerOptions(sys.argv[1]))
t3 = time.perf_counter()
db = reeldb.connect(sys.argv[1], create=False)
t4 = time.perf_counter()
db.execute("SELECT prompt FROM generations LIMIT 1").fetchall()
t5 = time.perf_counter()
print(json.dumps({"import reeldb": t1 - t0, "server imports": t2 - t1, "Server() opens db": t3 - t2,
                  "client connect()": t4 - t3, "first query": t5 - t4}))
"""


def first_row(port: int, path: Path) -> float:
    t = time.perf_counter()
    with psycopg.connect(dsn(port, path.name), autocommit=True, connect_timeout=30) as c:
        c.execute(FIRST_ROW).fetchall()
        return time.perf_counter() - t


def stop_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def cold_activated(path: Path, runs: int) -> list[float]:
    cmd = [sys.executable, "-c", ACTIVATOR, *reeldb_cmd(), "serve", str(path), "--idle-exit", "60"]
    times = []
    for _ in range(runs + 1):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=child_env(), start_new_session=True)
        assert p.stdout is not None
        port = int(p.stdout.readline())
        time.sleep(0.2)  # the activator is waiting in select()
        try:
            times.append(first_row(port, path))
        finally:
            stop_group(p)
    return times[1:]  # the first run warms .pyc files and the page cache


def cold_systemd(path: Path, runs: int) -> list[float]:
    exe = shutil.which("systemd-socket-activate")
    if exe is None:
        return []
    times = []
    for _ in range(runs + 1):
        port = free_port()
        p = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}", *reeldb_cmd(), "serve", str(path),
                              "--idle-exit", "60"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=child_env(),
                             start_new_session=True)
        assert p.stderr is not None
        p.stderr.readline()  # "Listening on 127.0.0.1:PORT as 3."
        try:
            times.append(first_row(port, path))
        finally:
            stop_group(p)
    return times[1:]


def wall(argv: list[str]) -> tuple[float, str, str]:
    t = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=child_env(), check=True)
    return time.perf_counter() - t, out.stdout, out.stderr


def importtime_top(code: str, top: int) -> list[tuple[str, float]]:
    """Self import time summed by top-level package, the largest first (ms)."""
    _, _, err = wall([sys.executable, "-X", "importtime", "-c", code])
    by: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cum, name = line[len("import time:"):].split("|")
        root = name.strip().split(".")[0]
        by[root] = by.get(root, 0.0) + int(own) / 1e3
    return sorted(by.items(), key=lambda kv: -kv[1])[:top]


def bench_cold(res: Results, args: argparse.Namespace, path: Path, pg: Postgres) -> None:
    runs = args.cold_runs
    step(f"3. cold start: socket-activated `reeldb serve`, connect() to first row, {runs} runs")
    ts = cold_activated(path, runs)
    step(f"   LISTEN_FDS activator: median {ms(median(ts))}, min {ms(min(ts))}, "
         f"max {ms(max(ts))}")
    res.figures["cold_activated"] = ts
    res.add("3. cold start, socket-activated reeldb serve", ms(median(ts)),
            f"min {ms(min(ts))}; brief: ~200 ms")
    sd = cold_systemd(path, runs)
    if sd:
        step(f"   systemd-socket-activate: median {ms(median(sd))}, min {ms(min(sd))}")
        res.figures["cold_systemd"] = sd
        res.add("3. cold start, systemd-socket-activate", ms(median(sd)), f"min {ms(min(sd))}")
    else:
        step("   systemd-socket-activate: not installed, skipped")
    py = sys.executable
    refs = {"python -c pass": "pass", "python -c 'import reeldb'": "import reeldb",
            "python -c 'import reeldb.cli, reeldb.server.server'":
                "import reeldb.cli, reeldb.server.server"}
    ref_ms = {}
    for name, code in refs.items():
        wall([py, "-c", code])
        ref_ms[name] = median([wall([py, "-c", code])[0] for _ in range(runs)])
    parts = [json.loads(wall([py, "-c", PARTS, str(path)])[1]) for _ in range(runs + 1)][1:]
    split = {k: median([p[k] for p in parts]) for k in parts[0]}
    step("   the parts (medians, each in fresh interpreters):")
    step(f"     python start (python -c pass)          {ms(ref_ms['python -c pass'])}")
    for k, v in split.items():
        step(f"     {k:38s} {ms(v)}")
    step(f"     (wall of python -c 'import reeldb'     {ms(ref_ms[list(refs)[1]])}; with the "
         f"server's imports {ms(ref_ms[list(refs)[2]])})")
    res.figures["cold_parts"] = {"python start": ref_ms["python -c pass"], **split}
    for k, v in {"python start": ref_ms["python -c pass"], **split}.items():
        res.add(f"3. cold start part: {k}", ms(v))
    top = importtime_top("import reeldb.cli, reeldb.server.server", 8)
    step("   python -X importtime (self time by top-level package): "
         + ", ".join(f"{k} {v:.0f} ms" for k, v in top))
    res.figures["importtime_top"] = top
    pg.stop()
    pgs = []
    for _ in range(runs):
        pgs.append(pg.start())
        pg.stop()
    step(f"   reference: PostgreSQL start (postgres spawned to first row, polled every 5 ms): "
         f"median {ms(median(pgs))}, min {ms(min(pgs))}")
    res.figures["cold_pg"] = pgs
    res.add("3. reference: PostgreSQL process start to first row", ms(median(pgs)),
            f"min {ms(min(pgs))}")


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="rows in generations")
    p.add_argument("--dim", type=int, default=768, help="VECTOR dimension of prompt_embedding")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--procs", type=int, default=4, help="client processes at most")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measured line")
    p.add_argument("--k", type=int, default=500, help="LIMIT of the curation query")
    p.add_argument("--targets", type=int, default=64, help="target vectors, round-robin")
    p.add_argument("--recall-targets", type=int, default=10, help="targets for recall")
    p.add_argument("--ingest-rows", type=int, default=1000, help="rows of the ingest step")
    p.add_argument("--cold-runs", type=int, default=7, help="runs of each cold-start figure")
    p.add_argument("--clusters", type=int, default=300, help="embedding cluster centres")
    p.add_argument("--no-hnsw", action="store_true", help="skip the PG HNSW index lines")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 20,000 rows, 2 s lines, 300 ingest rows, 3 cold runs")
    p.add_argument("--out", type=Path, help="keep the databases and results.json here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.duration, args.ingest_rows, args.cold_runs = 20_000, 2.0, 300, 3
    args.clients = [int(x) for x in str(args.clients).split(",")]
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results()
    versions = {"reeldb": reeldb.__version__, "psycopg": psycopg.__version__,
                "pgserver": importlib.metadata.version("pgserver")}
    step(f"bench_server: {args.rows:,} rows x VECTOR({args.dim}), clients {args.clients}, "
         f"{os.cpu_count()} cores, {load()}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        if (args.out / "bench.reeldb").exists():
            raise SystemExit(f"{args.out} already holds a bench.reeldb")
    root = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="bench-server-"))
    pg: Postgres | None = None
    ree: ReeldbServer | None = None
    try:
        step(f"0. data ({args.clusters} clusters) and loading")
        ds = make_dataset(args.rows, args.dim, args.clusters, args.seed)
        db_path = root / "bench.reeldb"
        load_reeldb(res, ds, db_path)
        pg = Postgres(root)
        versions["postgres"] = psycopg.connect(pg.dsn).info.parameter_status("server_version")
        load_pg(res, ds, pg)
        with psycopg.connect(pg.dsn) as c:
            versions["pgvector"] = c.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        step("   versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())
             + f"; PG settings {Postgres.SETTINGS}")
        ree = ReeldbServer(db_path, root / "reeldb-serve.log")
        vecs = [vector_text(v) for v in make_targets(ds, args.targets, args.seed)]
        bench_queries(res, args, ds, ree, pg, vecs)
        if not args.no_hnsw:
            bench_hnsw(res, args, ree, pg, vecs)
        bench_ingest(res, args, ds, ree, pg)
        ree.stop()
        ree = None
        bench_cold(res, args, db_path, pg)
        res.figures["versions"] = versions
        res.figures["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        step(f"done, {load()}")
        res.print_summary()
        if args.out is not None:
            (args.out / "results.json").write_text(json.dumps(res.figures, indent=1, default=str))
    finally:
        if ree is not None:
            ree.stop()
        if pg is not None:
            pg.stop()
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
