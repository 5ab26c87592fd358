"""What the served database's trust checks cost: ``reeldb serve`` of this checkout against
``reeldb serve`` of an earlier revision (``--baseline REV``), same data, same clients.

    python bench/bench_trust.py [--baseline REV] [--rows 20000] [--dim 768] [--duration 4]
                                [--clients 1,4] [--rounds 2]

Each revision's own ``src/`` (the baseline's taken with ``git archive``) loads the same rows
(bench_server.py's ``generations`` data, written once to Parquet) into its own database and
serves it; psycopg 3 clients then run the point query by id and the brief's curation query
(bench_server.py's, prepared, autocommit) for --duration seconds per line. The two servers
take turns for --rounds rounds so that drift in the machine's load hits both; the best
round of each is kept. What this checkout adds on every statement — the parse bounds, the
function allow-list, the rights table and checksums verified on read — is in the "this
checkout" figures and not in the baseline's.

Prints figures only (no asserts): queries/s, p50 latency and this / baseline ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench_server import (
    CURATION,
    POINT,
    Cell,
    ReeldbServer,
    fmt_cell,
    make_dataset,
    make_targets,
    run_cell,
    schema_sql,
    step,
    vector_text,
)
from summary import Results, load

ROOT = Path(__file__).resolve().parents[1]

_LOADER = """
import sys
import numpy as np, pyarrow.parquet as pq, reeldb
path, parquet, npy, dim = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
db = reeldb.connect(path)
db.execute(sys.stdin.read())
t = pq.read_table(parquet)
data = {name: t.column(name).combine_chunks() for name in t.column_names}
data["prompt_embedding"] = np.load(npy)
db.insert("generations", data)
db.close()
"""


class Revision:
    """One revision's ``src/``, its database and (while measured) its server."""

    def __init__(self, label: str, src: Path, root: Path):
        self.label, self.src, self.path = label, src, root / f"{label}.reeldb"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.src) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def load(self, parquet: Path, npy: Path, dim: int) -> None:
        subprocess.run([sys.executable, "-c", _LOADER, str(self.path), str(parquet), str(npy), str(dim)],
                       input=schema_sql("generations", dim, "BLOB"), text=True, check=True,
                       env=self.env())

    def serve(self, log: Path) -> ReeldbServer:
        saved = dict(os.environ)
        os.environ.update(self.env())  # ReeldbServer's child inherits this process's environment
        try:
            return ReeldbServer(self.path, log)
        finally:
            os.environ.clear()
            os.environ.update(saved)


def baseline_src(rev: str, into: Path) -> Path:
    """``src/`` of ``rev``, unpacked from ``git archive`` (no worktree left behind)."""
    tar = into / "baseline.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], stdout=f, check=True)
    with tarfile.open(tar) as t:
        t.extractall(into / "baseline", filter="data")
    return into / "baseline" / "src"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", metavar="REV", help="git revision to compare against")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measured line")
    p.add_argument("--clients", default="1,4", help="concurrent clients, comma-separated")
    p.add_argument("--rounds", type=int, default=2, help="turns each server takes")
    p.add_argument("--k", type=int, default=500, help="LIMIT of the curation query")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.clients = [int(x) for x in str(args.clients).split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results(title="bench_trust: the served database's checks, this checkout / baseline")
    step(f"bench_trust: {args.rows:,} rows x VECTOR({args.dim}), clients {args.clients}, "
         f"{os.cpu_count()} cores, {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
        root = Path(tmp)
        ds = make_dataset(args.rows, args.dim, 300, args.seed)
        parquet, npy = root / "rows.parquet", root / "emb.npy"
        pq.write_table(pa.table(ds.scalars), parquet)
        np.save(npy, ds.embeddings)
        revs = [Revision("this", ROOT / "src", root)]
        if args.baseline:
            revs.append(Revision("baseline", baseline_src(args.baseline, root), root))
        for r in revs:
            step(f"0. {r.label}: loading {args.rows:,} rows")
            r.load(parquet, npy, args.dim)
        vecs = [vector_text(v) for v in make_targets(ds, 64, args.seed)]
        ids = np.random.default_rng(args.seed + 2).integers(1, ds.n + 1, 4096).tolist()
        plan = [("point query by id", POINT, ids, False),
                (f"curation query (k={args.k})", CURATION.format(k=args.k), vecs, True)]
        best: dict[tuple[str, str, int], Cell] = {}
        for rnd in range(args.rounds):
            for r in revs:
                srv = r.serve(root / f"{r.label}.log")
                try:
                    for label, sql, qargs, named in plan:
                        for n in args.clients:
                            c = run_cell(srv, sql, qargs, named, n, 4, args.duration)
                            step(f"   round {rnd + 1} {r.label:8s} {label}, {n} clients: {fmt_cell(c)}")
                            key = (r.label, label, n)
                            if key not in best or c.qps > best[key].qps:
                                best[key] = c
                finally:
                    srv.stop()
        for label, _, _, _ in plan:
            for n in args.clients:
                this = best[("this", label, n)]
                if args.baseline:
                    base = best[("baseline", label, n)]
                    ratio = this.qps / base.qps if base.qps else float("nan")
                    res.add(f"{label}, {n} clients", f"{this.qps:,.1f} / {base.qps:,.1f} q/s",
                            f"{ratio:.3f}x; p50 {this.p50 * 1e3:.2f} / {base.p50 * 1e3:.2f} ms")
                else:
                    res.add(f"{label}, {n} clients", f"{this.qps:,.1f} q/s", f"p50 {this.p50 * 1e3:.2f} ms")
    res.print_summary("this / baseline" if args.baseline else "")
    print(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
