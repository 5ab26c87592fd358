"""Vector search at scale: exact top-k against a bare numpy matmul, HNSW through
``db.search`` and SQL against pgvector (HNSW) and Lance with their own indexes, at matched
recall, unfiltered and with filters keeping 1%, 10% and 50% of rows; index build time and
size.

    python bench/bench_vector.py                  # 100k x 1024 and 1M x 128, 1000 queries
    python bench/bench_vector.py --quick          # 20k x 1024 and 100k x 128, 200 queries
    python bench/bench_vector.py --peers none     # reeldb and numpy only

Data (``vector_data.py``): clustered unit embeddings (300 centres), ``bucket`` uniform over
0..99 for the filters. Figures only, no asserts; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    import reeldb
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import reeldb

from summary import load, print_table  # noqa: E402 - bench/ is the script's folder
from vector_data import SELECTIVITIES, VectorData, exact_topk, make  # noqa: E402
from vector_peers import PEERS, SweepRow, exact_latency, matched, sweep  # noqa: E402

K = 10
T0 = time.perf_counter()


def step(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class NumpyExact:
    """The machine's limit for exact search: one matmul over the in-memory matrix, then
    argpartition (what any exact engine must at least do)."""

    def __init__(self, data: VectorData):
        self.data = data

    def exact(self, q: np.ndarray, k: int = K, percent: int | None = None) -> list[int]:
        mat = self.data.vectors
        sims = mat @ q
        if percent is not None:
            sims = np.where(self.data.bucket < percent, sims, -np.inf)
        part = np.argpartition(-sims, k - 1)[:k]
        return part[np.argsort(-sims[part])].tolist()


class Reeldb:
    """reeldb through ``db.search`` (``sql=False``) or a SQL top-k query (``sql=True``),
    with the peers' interface (``vector_peers.py``)."""

    def __init__(self, root: Path, sql: bool, db: Any = None):
        self.root, self.sql = root, sql
        self.db = db

    def load(self, data: VectorData) -> float:
        self.db = reeldb.connect(self.root)
        self.db.execute(f"CREATE TABLE items (id BIGINT, bucket INT, embedding VECTOR({data.dim}))")
        t = time.perf_counter()
        self.db.insert("items", {"id": np.arange(data.n), "bucket": data.bucket, "embedding": data.vectors})
        return time.perf_counter() - t

    def build_index(self) -> float:
        t = time.perf_counter()
        self.db.execute("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) "
                        "WITH (m = 16, ef_construction = 64)")
        return time.perf_counter() - t

    def index_size(self) -> int:
        return dir_bytes(self.root / "indexes")

    def set_effort(self, x: int) -> None:
        self.db.execute(f"SET hnsw.ef_search = {int(x)}")

    def query(self, q: np.ndarray, k: int = K, percent: int | None = None) -> list[int]:
        if self.sql:
            if percent is None:
                rows = self.db.execute("SELECT id FROM items ORDER BY embedding <=> %s LIMIT %s", (q, k)).fetchall()
            else:
                rows = self.db.execute("SELECT id FROM items WHERE bucket < %s ORDER BY embedding <=> %s LIMIT %s",
                                       (percent, q, k)).fetchall()
            return [r[0] for r in rows]
        got = self.db.search("items", "embedding", q, k=k, filter=None if percent is None else f"bucket < {percent}",
                             columns=["id"])
        return [r["id"] for r in got]

    exact = query  # before CREATE INDEX every query is exact

    def plan(self, percent: int | None = None) -> str:
        where = "" if percent is None else f"WHERE bucket < {percent} "
        q = np.zeros(self.db.execute("SELECT embedding FROM items LIMIT 1").fetchone()[0].shape, np.float32)
        q[0] = 1
        lines = self.db.execute(f"EXPLAIN SELECT id FROM items {where}ORDER BY embedding <=> %s LIMIT 10",
                                (q,)).fetchall()
        return lines[2][0].strip()


def pick(rows: list[SweepRow], args: argparse.Namespace, word: str = "ef") -> str:
    """The cheapest setting reaching the target recall, else the fallback target, else the best."""
    for target in (args.target, args.fallback_target):
        m = matched(rows, target)
        if m is not None:
            note = "" if target == args.target else f" (never {args.target}; matched at {target})"
            return f"{word} {m.effort}: {fmt(m)}{note}"
    best = max(rows, key=lambda r: r.recall)
    return f"best {word} {best.effort}: {fmt(best)} (never {args.fallback_target})"


def fmt(r: SweepRow | None) -> str:
    if r is None:
        return "-"
    short = f", {r.returned:.1f} rows" if r.returned < K - 0.05 else ""
    return f"recall {r.recall:.3f}, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms{short}"


def run_set(n: int, dim: int, args: argparse.Namespace, results: dict, summary: list) -> None:
    label = f"{n // 1000}k x {dim}" if n < 1_000_000 else f"{n // 1_000_000}M x {dim}"
    step(f"{label}: generating data, {args.queries} queries; {load()}")
    data = make(n, dim, args.queries)
    truths = {p: exact_topk(data, K, p) for p in (None, *SELECTIVITIES)}
    out: dict[str, Any] = results.setdefault(label, {})
    tmp = Path(tempfile.mkdtemp(prefix="reeldb-bench-vector-"))
    try:
        # exact: numpy on the in-memory matrix vs reeldb without an index
        npx = NumpyExact(data)
        base = exact_latency(npx, data, truths[None], None, args.exact_queries)
        search = Reeldb(tmp / "db", sql=False)
        out["load_s"] = search.load(data)
        step(f"{label}: loaded into reeldb in {out['load_s']:.1f} s")
        sql = Reeldb(tmp / "db", sql=True, db=search.db)
        ex_s = exact_latency(search, data, truths[None], None, args.exact_queries)
        ex_q = exact_latency(sql, data, truths[None], None, args.exact_queries)
        batch = data.queries[:args.exact_queries]
        t = time.perf_counter()
        search.db.search("items", "embedding", batch, k=K, columns=["id"])
        batched_ms = (time.perf_counter() - t) * 1e3 / len(batch)
        out["exact"] = {"numpy": base._asdict(), "search": ex_s._asdict(), "sql": ex_q._asdict(),
                        "search_batched_ms_per_query": batched_ms}
        step(f"{label}: exact top-10: numpy {fmt(base)}; db.search {fmt(ex_s)}; SQL {fmt(ex_q)}; "
             f"db.search batched {batched_ms:.2f} ms/query")
        summary.append((label, "exact top-10 p50: numpy matmul", f"{base.p50_ms:.2f} ms", "the machine's limit"))
        summary.append((label, "exact top-10 p50: db.search / SQL",
                        f"{ex_s.p50_ms:.2f} / {ex_q.p50_ms:.2f} ms",
                        f"{ex_s.p50_ms / base.p50_ms:.2f}x / {ex_q.p50_ms / base.p50_ms:.2f}x numpy "
                        f"(target <= 1.3x); batched {batched_ms:.2f} ms/query"))
        # HNSW
        out["build_s"] = search.build_index()
        out["index_bytes"] = search.index_size()
        step(f"{label}: CREATE INDEX ... USING hnsw (m 16, ef_construction 64): {out['build_s']:.1f} s, "
             f"{out['index_bytes'] / 2**20:,.1f} MiB; {load()}")
        summary.append((label, "reeldb HNSW build / size", f"{out['build_s']:.1f} s / "
                        f"{out['index_bytes'] / 2**20:,.0f} MiB", "faiss, m 16, ef_construction 64, 2 cores"))
        for name, peer in (("db.search", search), ("SQL", sql)):
            for p in (None, *SELECTIVITIES):
                rows = sweep(peer, data, truths[p], args.efforts, p, args.queries)
                m = matched(rows, args.target)
                tag = "unfiltered" if p is None else f"filter {p}%"
                out.setdefault(name, {})[str(p)] = {"rows": [r._asdict() for r in rows], "plan": peer.plan(p),
                                                    "matched": None if m is None else m._asdict()}
                step(f"{label}: reeldb {name}, {tag}: {peer.plan(p)}")
                for r in rows:
                    step(f"    ef {r.effort}: {fmt(r)}")
                target = (" (target: recall >= 0.95 at p50 <= "
                          + ("1 ms)" if name == "db.search" else "2 ms)")) if p is None else ""
                summary.append((label, f"reeldb {name}, {tag}", pick(rows, args), target.strip()))
        search.db.close()
        for peer_name in args.peers:
            run_peer(peer_name, label, data, truths, args, out, summary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_peer(name: str, label: str, data: VectorData, truths: dict, args: argparse.Namespace,
             out: dict, summary: list) -> None:
    peer = PEERS[name]()
    res: dict[str, Any] = out.setdefault(name, {})
    efforts = args.efforts if name == "pgvector" else args.lance_efforts
    with peer:
        res["load_s"] = peer.load(data)
        if args.peer_exact:
            ex = exact_latency(peer, data, truths[None], None, args.exact_queries)
            res["exact"] = ex._asdict()
            summary.append((label, f"{name} exact top-10 p50", f"{ex.p50_ms:.2f} ms", ""))
            step(f"{label}: {name} exact: {fmt(ex)}")
        try:
            res["build_s"] = peer.build_index()
        except TimeoutError as e:
            step(f"{label}: {name}: {e}")
            summary.append((label, f"{name} index build", "over the limit", str(e)))
            return
        res["index_bytes"] = peer.index_size()
        step(f"{label}: {name} index: {res['build_s']:.1f} s, {res['index_bytes'] / 2**20:,.1f} MiB; {load()}")
        summary.append((label, f"{name} index build / size",
                        f"{res['build_s']:.1f} s / {res['index_bytes'] / 2**20:,.0f} MiB", getattr(peer, "version", "")))
        for p in (None, *SELECTIVITIES):
            rows = sweep(peer, data, truths[p], efforts, p, args.queries)
            m = matched(rows, args.target)
            tag = "unfiltered" if p is None else f"filter {p}%"
            res[str(p)] = {"rows": [r._asdict() for r in rows], "matched": None if m is None else m._asdict()}
            for r in rows:
                step(f"    {name} {tag} effort {r.effort}: {fmt(r)}")
            summary.append((label, f"{name}, {tag}", pick(rows, args, "effort"), ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20k x 1024 and 100k x 128, 200 queries")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=200, help="queries timed for exact search")
    ap.add_argument("--efforts", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320, 640],
                    help="hnsw.ef_search values, for reeldb and pgvector")
    ap.add_argument("--lance-efforts", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320],
                    help="ef of Lance's IVF_HNSW_SQ, all partitions searched")
    ap.add_argument("--target", type=float, default=0.95, help="recall@10 the peers are matched at")
    ap.add_argument("--fallback-target", type=float, default=0.90,
                    help="matched at this recall too where a system never reaches --target")
    ap.add_argument("--peers", default="pgvector,lance", help="comma list, or none")
    ap.add_argument("--peer-exact", action="store_true", help="also time the peers' exact search")
    ap.add_argument("--out", type=Path, help="write results.json here")
    args = ap.parse_args()
    args.peers = [] if args.peers == "none" else args.peers.split(",")
    sets = [(20_000, 1024), (100_000, 128)] if args.quick else [(100_000, 1024), (1_000_000, 128)]
    if args.quick:
        args.queries = min(args.queries, 200)
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    summary: list[tuple[str, str, str, str]] = []
    step(f"reeldb {reeldb.__version__ if hasattr(reeldb, '__version__') else ''}, {os.cpu_count()} cores; {load()}")
    for n, dim in sets:
        run_set(n, dim, args, results, summary)
    print_table("summary", ("data", "figure", "value", "note"), summary)
    print(load())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
