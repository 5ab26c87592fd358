"""Peer adapters for the vector benchmark: pgvector HNSW (PostgreSQL 16 + pgvector from PyPI's
``pgserver`` wheel) and Lance (``pylance``), each with its own ANN index, behind one small
interface that ``bench_vector.py`` drives next to reeldb.

    python bench/vector_peers.py [--quick] [--sizes 100000x1024,1000000x128] [--queries 1000]

Every peer (``PgvectorPeer``, ``LancePeer``) has:

    load(data) -> seconds          table (id bigint, bucket int, embedding vector(dim)), bulk load
    build_index() -> seconds       the ANN index (cosine)
    index_size() -> bytes
    set_effort(x)                  pgvector: hnsw.ef_search; Lance IVF_HNSW_*: ef (else nprobes)
    query(q, k=10, percent=None)   ids, one query through the peer's client API
    exact(q, k=10, percent=None)   ids by the peer's exact (brute-force) search
    plan(percent=None) -> str      how the peer runs the ANN query (pgvector: EXPLAIN's nodes)
    close()                        stop servers, remove temp dirs (also a context manager)

``sweep(peer, data, truth, efforts, percent=None, queries=None)`` -> one ``SweepRow(effort,
recall, p50_ms, p99_ms, returned)`` per effort (recall@k against ``truth``, ``returned`` = mean
rows per query, < k when a post-filter starves), ``matched(rows, target=0.95)`` -> the lowest
effort reaching the target (or None). ``ids == row numbers`` of ``vector_data.make``.

pgvector: PostgreSQL runs as ``nobody`` when this runs as root (postgres refuses root; pgserver's
own ``get_server`` would ``useradd``), on 127.0.0.1, as in bench_server.py. Load is one binary
``COPY`` built with numpy (no per-row Python), the vector column ``STORAGE PLAIN`` (inline, no
TOAST; pgvector's advice), then ``VACUUM ANALYZE`` and a btree on ``bucket``. The HNSW build uses
``maintenance_work_mem`` 2GB and one parallel maintenance worker (leader + 1 = the 2 cores).
Queries: psycopg 3, autocommit, server-side prepared, the vector bound in pgvector's binary form.
The bundled pgvector is 0.6.2: no ``hnsw.iterative_scan`` (0.8+), so a filter is applied after
the ef_search candidates: selective filters return fewer than k rows unless the planner picks
the btree (then the answer is exact). ``iterative=True`` turns on relaxed_order where supported.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ when imported from elsewhere
import psycopg  # noqa: E402

from bench_server import Postgres as ServerPostgres  # noqa: E402
from vector_data import SELECTIVITIES, VectorData, exact_topk, make, recall  # noqa: E402

TABLE = "items"
_T0 = time.perf_counter()


def step(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# -- PostgreSQL (pgserver's binaries) ----------------------------------------------------------
class Postgres(ServerPostgres):
    """bench_server.py's PostgreSQL (pgserver's binaries on 127.0.0.1, as ``nobody`` when run
    as root), with settings for bulk loads and index builds."""

    SETTINGS = {"shared_buffers": "2GB", "maintenance_work_mem": "2GB", "work_mem": "64MB",
                "max_connections": "20", "max_parallel_maintenance_workers": "1",
                "max_parallel_workers_per_gather": "1", "fsync": "off",
                "synchronous_commit": "off", "full_page_writes": "off",
                "max_wal_size": "8GB", "checkpoint_timeout": "30min"}

    def __init__(self, root: Path, settings: dict[str, str] | None = None):
        self.SETTINGS = {**self.SETTINGS, **(settings or {})}
        super().__init__(root)

    def connect(self) -> Any:
        return psycopg.connect(self.dsn, autocommit=True)


def pg_copy_binary(ids: np.ndarray, bucket: np.ndarray, vectors: np.ndarray) -> bytes:
    """Rows in COPY's binary format (without header/trailer), built in one numpy pass:
    (int16 nfields, int32 8, int64 id, int32 4, int32 bucket, int32 len, int16 dim, int16 0,
    float32[dim]), all big-endian; the vector in pgvector's send format."""
    n, dim = vectors.shape
    dt = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("b", ">i4"),
                   ("l3", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))])
    rec = np.empty(n, dtype=dt)
    rec["nf"], rec["l1"], rec["l2"], rec["l3"] = 3, 8, 4, 4 + 4 * dim
    rec["id"], rec["b"], rec["dim"], rec["unused"] = ids, bucket, dim, 0
    rec["v"] = vectors
    return rec.tobytes()


class PgvectorPeer:
    """pgvector HNSW (``vector_cosine_ops``) over psycopg 3 on loopback."""

    name = "pgvector"

    def __init__(self, m: int = 16, ef_construction: int = 64, iterative: bool = False,
                 build_timeout_s: float | None = None, root: str | Path | None = None,
                 settings: dict[str, str] | None = None):
        from pgvector.psycopg import register_vector

        self.m, self.ef_construction = m, ef_construction
        self.build_timeout_s = build_timeout_s
        self.tmp = Path(tempfile.mkdtemp(prefix="pgvector-", dir=root))
        self.pg = Postgres(self.tmp, settings)
        self.conn = self.pg.connect()
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self.conn)
        self.version = self.conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        self.pg_version = self.conn.execute("SHOW server_version").fetchone()[0]
        self.iterative = iterative and tuple(map(int, self.version.split(".")[:2])) >= (0, 8)
        if self.iterative:
            self.conn.execute("SET hnsw.iterative_scan = relaxed_order")
        self.exact_conn: Any = None
        self.dim = 0
        self.index_built = False

    def __enter__(self) -> PgvectorPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, data: VectorData, batch: int = 20000) -> float:
        """Create the table and COPY (binary) every row; returns seconds (COPY + VACUUM
        ANALYZE + the btree on bucket)."""
        self.dim = data.dim
        c = self.conn
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(f"CREATE TABLE {TABLE} (id bigint, bucket int, embedding vector({data.dim}))")
        if 4 * data.dim + 64 < 8000:  # fits a heap page: keep vectors inline, untoasted
            c.execute(f"ALTER TABLE {TABLE} ALTER COLUMN embedding SET STORAGE PLAIN")
        ids = np.arange(data.n, dtype=np.int64)
        t0 = time.perf_counter()
        with c.cursor().copy(f"COPY {TABLE} (id, bucket, embedding) FROM STDIN (FORMAT binary)"
                             ) as cp:
            cp.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
            for s in range(0, data.n, batch):
                e = min(data.n, s + batch)
                cp.write(pg_copy_binary(ids[s:e], data.bucket[s:e], data.vectors[s:e]))
            cp.write(b"\xff\xff")
        self.copy_s = time.perf_counter() - t0
        c.execute(f"VACUUM ANALYZE {TABLE}")
        c.execute(f"CREATE INDEX {TABLE}_bucket_idx ON {TABLE} (bucket)")
        c.execute(f"ANALYZE {TABLE}")
        return time.perf_counter() - t0

    def table_size(self) -> int:
        return self.conn.execute(f"SELECT pg_table_size('{TABLE}')").fetchone()[0]

    def build_index(self) -> float:
        """HNSW build; raises TimeoutError past ``build_timeout_s`` (statement_timeout)."""
        c = self.conn
        c.execute("SET maintenance_work_mem = '2GB'")
        c.execute("SET max_parallel_maintenance_workers = 1")  # + the leader = 2 processes
        if self.build_timeout_s:
            c.execute(f"SET statement_timeout = {int(self.build_timeout_s * 1000)}")
        t0 = time.perf_counter()
        try:
            c.execute(f"CREATE INDEX {TABLE}_hnsw ON {TABLE} USING hnsw "
                      f"(embedding vector_cosine_ops) WITH (m = {self.m}, "
                      f"ef_construction = {self.ef_construction})")
        except psycopg.errors.QueryCanceled:
            raise TimeoutError(f"HNSW build stopped after {time.perf_counter() - t0:.0f} s "
                               f"(build_timeout_s={self.build_timeout_s})") from None
        finally:
            c.execute("SET statement_timeout = 0")
        secs = time.perf_counter() - t0
        c.execute(f"ANALYZE {TABLE}")
        self.index_built = True
        return secs

    def index_size(self) -> int:
        return self.conn.execute(f"SELECT pg_relation_size('{TABLE}_hnsw')").fetchone()[0]

    def set_effort(self, x: int) -> None:
        self.conn.execute(f"SET hnsw.ef_search = {int(x)}")  # 1..1000

    @staticmethod
    def _sql(k: int, percent: int | None) -> str:
        where = "" if percent is None else f"WHERE bucket < {int(percent)} "
        return f"SELECT id FROM {TABLE} {where}ORDER BY embedding <=> %s LIMIT {int(k)}"

    def query(self, q: np.ndarray, k: int = 10, percent: int | None = None) -> list[int]:
        cur = self.conn.execute(self._sql(k, percent), (q,), prepare=True, binary=True)
        return [r[0] for r in cur.fetchall()]

    def exact(self, q: np.ndarray, k: int = 10, percent: int | None = None) -> list[int]:
        """Seq scan (or the bucket btree's bitmap scan) + top-k sort: index scans are off."""
        if self.exact_conn is None:
            from pgvector.psycopg import register_vector

            self.exact_conn = self.pg.connect()
            register_vector(self.exact_conn)
            self.exact_conn.execute("SET enable_indexscan = off")
        cur = self.exact_conn.execute(self._sql(k, percent), (q,), prepare=True, binary=True)
        return [r[0] for r in cur.fetchall()]

    def plan(self, percent: int | None = None, exact: bool = False) -> str:
        """The plan's node types (with the index used), e.g. 'Limit > Index Scan (items_hnsw)'."""
        conn = self.exact_conn if exact and self.exact_conn is not None else self.conn
        q = np.zeros(self.dim, dtype=np.float32)
        q[0] = 1
        out = conn.execute("EXPLAIN (FORMAT JSON) " + self._sql(10, percent), (q,),
                           binary=True).fetchone()[0]
        nodes, node = [], out[0]["Plan"]
        while node:
            nodes.append(node["Node Type"] + (f" ({node['Index Name']})"
                                               if "Index Name" in node else ""))
            node = (node.get("Plans") or [None])[0]
        return " > ".join(nodes)

    def close(self) -> None:
        for c in (self.exact_conn, getattr(self, "conn", None)):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        self.exact_conn = None
        if getattr(self, "pg", None) is not None:
            self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- Lance -------------------------------------------------------------------------------------
class LancePeer:
    """A Lance dataset with a vector index (default IVF_HNSW_SQ, cosine) and a BTREE scalar index
    on ``bucket``; filtered queries prefilter (``prefilter=True``). ``set_effort`` sets HNSW's
    ``ef`` for IVF_HNSW_* indexes (nprobes: every partition unless ``nprobes`` is given), and
    ``nprobes`` for IVF_PQ / IVF_SQ / IVF_FLAT (with ``refine_factor`` if given)."""

    name = "lance"

    def __init__(self, index_type: str = "IVF_HNSW_SQ", nprobes: int | None = None,
                 refine_factor: int | None = None, scalar_index: bool = True,
                 root: str | Path | None = None, **index_params: Any):
        import lance
        import pyarrow as pa

        os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")  # quiets index_stats
        self.lance, self.pa = lance, pa
        self.index_type = index_type.upper()
        self.hnsw = "HNSW" in self.index_type
        self.nprobes, self.refine_factor = nprobes, refine_factor
        self.scalar_index = scalar_index
        self.index_params = index_params
        self.tmp = Path(tempfile.mkdtemp(prefix="lance-", dir=root))
        self.path = self.tmp / "items.lance"
        self.ds: Any = None
        self.version = importlib.metadata.version("pylance")
        self.effort: dict[str, Any] = {}

    def __enter__(self) -> LancePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, data: VectorData) -> float:
        """write_dataset of an Arrow table (FixedSizeList<float32>[dim]); returns seconds (plus
        the BTREE on bucket when ``scalar_index``)."""
        pa = self.pa
        vec = pa.FixedSizeListArray.from_arrays(pa.array(data.vectors.reshape(-1)), data.dim)
        table = pa.table({"id": pa.array(np.arange(data.n, dtype=np.int64)),
                          "bucket": pa.array(data.bucket), "embedding": vec})
        t0 = time.perf_counter()
        self.ds = self.lance.write_dataset(table, self.path, mode="create")
        if self.scalar_index:
            self.ds.create_scalar_index("bucket", "BTREE")
        return time.perf_counter() - t0

    def table_size(self) -> int:
        return dir_bytes(self.path / "data")

    def build_index(self) -> float:
        t0 = time.perf_counter()
        self.ds.create_index("embedding", self.index_type, metric="cosine", replace=True,
                             **self.index_params)
        secs = time.perf_counter() - t0
        self.ds = self.lance.dataset(str(self.path))
        stats = self.ds.stats.index_stats("embedding_idx")
        self.partitions = int(stats["indices"][0].get("num_partitions", 1))
        if not self.effort:
            self.set_effort(40 if self.hnsw else 20)
        return secs

    def index_size(self) -> int:
        """Bytes of the vector index's files (the bucket BTREE not included)."""
        idx = self.ds.stats.index_stats("embedding_idx")["indices"][0]
        return dir_bytes(Path(idx["uri"]).parent) if "uri" in idx else \
            dir_bytes(self.path / "_indices")

    def set_effort(self, x: int) -> None:
        e: dict[str, Any] = {}
        if self.hnsw:
            e["ef"] = int(x)
            e["nprobes"] = self.nprobes or getattr(self, "partitions", 1)
        else:
            e["nprobes"] = int(x)
        if self.refine_factor:
            e["refine_factor"] = self.refine_factor
        self.effort = e

    def _nearest(self, q: np.ndarray, k: int, use_index: bool) -> dict[str, Any]:
        n: dict[str, Any] = {"column": "embedding", "q": q, "k": k, "use_index": use_index}
        if use_index:
            n.update(self.effort)
            if "ef" in n:
                n["ef"] = max(n["ef"], k * (self.refine_factor or 1))  # Lance wants ef >= k
        return n

    def query(self, q: np.ndarray, k: int = 10, percent: int | None = None) -> list[int]:
        t = self.ds.to_table(nearest=self._nearest(q, k, True), columns=["id"],
                             filter=None if percent is None else f"bucket < {int(percent)}",
                             prefilter=percent is not None, disable_scoring_autoprojection=True)
        return t.column("id").to_pylist()

    def exact(self, q: np.ndarray, k: int = 10, percent: int | None = None) -> list[int]:
        t = self.ds.to_table(nearest=self._nearest(q, k, False), columns=["id"],
                             filter=None if percent is None else f"bucket < {int(percent)}",
                             prefilter=percent is not None, disable_scoring_autoprojection=True)
        return t.column("id").to_pylist()

    def plan(self, percent: int | None = None, exact: bool = False) -> str:
        """explain_plan's operators, innermost last, e.g. '... > ANNSubIndex > LanceRead'."""
        q = np.zeros(self.ds.schema.field("embedding").type.list_size, dtype=np.float32)
        q[0] = 1
        text = self.ds.scanner(nearest=self._nearest(q, 10, not exact), columns=["id"],
                               filter=None if percent is None else f"bucket < {int(percent)}",
                               prefilter=percent is not None,
                               disable_scoring_autoprojection=True).explain_plan()
        ops = [ln.strip().split(":")[0] for ln in text.splitlines() if ln.strip()]
        return " > ".join(ops) + ("" if percent is None else " (prefilter)")

    def close(self) -> None:
        self.ds = None
        shutil.rmtree(self.tmp, ignore_errors=True)


PEERS = {"pgvector": PgvectorPeer, "lance": LancePeer}


# -- sweeps ------------------------------------------------------------------------------------
class SweepRow(NamedTuple):
    effort: int
    recall: float  # recall@k against the exact answer
    p50_ms: float
    p99_ms: float
    returned: float  # mean rows per query (< k: a post-filter left too few candidates)


def timed(fn: Any, qs: np.ndarray, k: int, percent: int | None, warmup: int = 10
          ) -> tuple[list[list[int]], np.ndarray]:
    """Runs ``fn(q, k, percent)`` per query (after ``warmup`` untimed ones); ids and seconds."""
    for q in qs[:warmup]:
        fn(q, k, percent)
    found, lat = [], np.empty(len(qs))
    for i, q in enumerate(qs):
        t0 = time.perf_counter()
        found.append(fn(q, k, percent))
        lat[i] = time.perf_counter() - t0
    return found, lat


def sweep(peer: Any, data: VectorData, truth: np.ndarray, efforts: Iterable[int],
          percent: int | None = None, queries: int | None = None, k: int = 10
          ) -> list[SweepRow]:
    """Recall@k and latency per effort, one query at a time through ``peer.query``."""
    qs = data.queries[:queries]
    rows = []
    for e in efforts:
        peer.set_effort(e)
        found, lat = timed(peer.query, qs, k, percent)
        rows.append(SweepRow(e, recall(found, truth[:len(qs), :k]),
                             float(np.percentile(lat, 50) * 1e3),
                             float(np.percentile(lat, 99) * 1e3),
                             float(np.mean([len(f) for f in found]))))
    return rows


def matched(rows: Sequence[SweepRow], target: float = 0.95) -> SweepRow | None:
    """The row with the lowest effort whose recall reaches ``target`` (None if none does)."""
    ok = [r for r in rows if r.recall >= target]
    return min(ok, key=lambda r: r.effort) if ok else None


def exact_latency(peer: Any, data: VectorData, truth: np.ndarray, percent: int | None = None,
                  queries: int = 100, k: int = 10) -> SweepRow:
    """``peer.exact`` as a SweepRow (effort 0); its recall checks the peer against numpy."""
    found, lat = timed(peer.exact, data.queries[:queries], k, percent, warmup=3)
    return SweepRow(0, recall(found, truth[:queries, :k]), float(np.percentile(lat, 50) * 1e3),
                    float(np.percentile(lat, 99) * 1e3), float(np.mean([len(f) for f in found])))


# -- running the peers alone -------------------------------------------------------------------
def fmt_row(r: SweepRow | None) -> str:
    if r is None:
        return "-"
    short = f", {r.returned:.1f} rows" if r.returned < 9.95 else ""
    return f"ef {r.effort}: recall {r.recall:.3f}, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms{short}"


def run_peer(name: str, data: VectorData, truths: dict[Any, np.ndarray], args: argparse.Namespace
             ) -> dict[str, Any]:
    out: dict[str, Any] = {"peer": name, "n": data.n, "dim": data.dim}
    label = f"{name} {data.n:,}x{data.dim}"
    if name == "pgvector":
        peer: Any = PgvectorPeer(build_timeout_s=args.max_build_s)
        out["version"] = f"pgvector {peer.version}, PostgreSQL {peer.pg_version}"
        efforts = args.pg_efforts
    else:
        peer = LancePeer(index_type=args.lance_index)
        out["version"] = f"pylance {peer.version}, {args.lance_index}"
        efforts = args.lance_efforts
    with peer:
        out["load_s"] = peer.load(data)
        out["table_bytes"] = peer.table_size()
        step(f"{label}: loaded in {out['load_s']:.1f} s ({out['version']}), "
             f"table {out['table_bytes'] / 2**20:,.0f} MiB; {os_load()}")
        out["exact"] = {}
        for p in (None, *SELECTIVITIES):
            r = exact_latency(peer, data, truths[p], p, args.exact_queries)
            out["exact"][str(p)] = r._asdict()
            step(f"{label}: exact {'all' if p is None else f'{p}%'}: recall {r.recall:.3f}, "
                 f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms")
        try:
            out["build_s"] = peer.build_index()
        except TimeoutError as e:
            out["build_error"] = str(e)
            step(f"{label}: {e}; {os_load()}")
            return out
        out["index_bytes"] = peer.index_size()
        if name == "lance":
            out["partitions"] = peer.partitions
        step(f"{label}: index built in {out['build_s']:.1f} s, {out['index_bytes'] / 2**20:,.1f} "
             f"MiB; {os_load()}")
        out["sweeps"] = {}
        for p in (None, *SELECTIVITIES):
            rows = sweep(peer, data, truths[p], efforts, p, args.queries)
            m = matched(rows, args.target)
            if m is None and p is None and name == "lance" and not peer.refine_factor:
                step(f"{label}: best recall {max(r.recall for r in rows):.3f} < {args.target} "
                     f"(SQ codes only); again with refine_factor=2 (re-ranks on the vectors)")
                out["refine_factor"] = peer.refine_factor = 2
                rows = sweep(peer, data, truths[p], efforts, p, args.queries)
                m = matched(rows, args.target)
            out["sweeps"][str(p)] = {"rows": [r._asdict() for r in rows],
                                     "matched": None if m is None else m._asdict(),
                                     "plan": peer.plan(p)}
            tag = "unfiltered" if p is None else f"filter {p}%"
            step(f"{label}: {tag}, plan: {peer.plan(p)}")
            for r in rows:
                step(f"    {fmt_row(r)}")
            step(f"    matched@{args.target}: {fmt_row(m)}")
    return out


def os_load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def summary(results: list[dict[str, Any]], target: float) -> None:
    from summary import print_table

    rows = []
    for r in results:
        head = f"{r['peer']} {r['n']:,}x{r['dim']}"
        if "build_s" not in r:
            rows.append((head, "build", r.get("build_error", "-")))
            continue
        rows.append((head, "load / build / index",
                     f"{r['load_s']:.1f} s / {r['build_s']:.1f} s / "
                     f"{r['index_bytes'] / 2**20:,.1f} MiB"))
        for p, s in r["sweeps"].items():
            tag = "all" if p == "None" else f"{p}%"
            m = s["matched"]
            ex = r["exact"][p]
            rows.append((head, f"{tag} @ recall {target}",
                         fmt_row(SweepRow(**m)) if m else
                         "not reached; best " + fmt_row(SweepRow(**max(
                             s["rows"], key=lambda x: x["recall"])))))
            rows.append((head, f"{tag} exact", f"p50 {ex['p50_ms']:.1f} ms, "
                                               f"p99 {ex['p99_ms']:.1f} ms"))
    print_table(f"vector peers (k=10, {os_load()})", ("peer", "figure", "value"), rows)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="20,000x1024 and 100,000x128 with 200 queries")
    ap.add_argument("--sizes", default="100000x1024,1000000x128", help="NxDIM,...")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=100)
    ap.add_argument("--peers", default="pgvector,lance")
    ap.add_argument("--pg-efforts", default="10,20,40,80,160,320,640,1000")
    ap.add_argument("--lance-efforts", default="10,20,40,80,160,320")
    ap.add_argument("--lance-index", default="IVF_HNSW_SQ")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--max-build-s", type=float, default=1500,
                    help="stop a pgvector HNSW build past this many seconds")
    ap.add_argument("--out", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.queries = "20000x1024,100000x128", 200
        args.exact_queries = min(args.exact_queries, 50)
    args.sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    args.pg_efforts = [int(x) for x in args.pg_efforts.split(",")]
    args.lance_efforts = [int(x) for x in args.lance_efforts.split(",")]
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    step(f"vector peers: sizes {args.sizes}, {args.queries} queries, {os.cpu_count()} CPUs, "
         f"{os_load()}")
    results = []
    for n, dim in args.sizes:
        data = make(n, dim, args.queries)
        truths = {p: exact_topk(data, 10, p) for p in (None, *SELECTIVITIES)}
        step(f"data {n:,}x{dim} and exact answers ready")
        for name in args.peers.split(","):
            results.append(run_peer(name, data, truths, args))
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))
    summary(results, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
