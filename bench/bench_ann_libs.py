"""ANN library choice: usearch vs faiss-cpu HNSW on the same clustered unit vectors.

    python bench/bench_ann_libs.py            # 100,000 x 1024 and 1,000,000 x 128, 1,000 queries
    python bench/bench_ann_libs.py --quick    # 20,000 x 1024 and 100,000 x 128, 200 queries

Prints figures only (no asserts). Per data set and library: HNSW (M=16, ef_construction=64,
pgvector's defaults; inner product on unit rows = cosine) build time with every thread, the
serialized file's size, the time and anonymous-memory growth of opening it memory-mapped
(usearch ``Index.restore(path, view=True)``; faiss ``read_index`` with ``IO_FLAG_MMAP_IFC``,
``IO_FLAG_MMAP`` and no flag, side by side) and whether the mapped index answers exactly as the
built one; one-query-at-a-time latency p50/p99 (one search thread) and recall@10 against
``exact_topk`` over an ef_search sweep; filtered search keeping 1/10/50% of rows (faiss: an
``IDSelectorBitmap`` applied during graph traversal; usearch: its Python search takes no
predicate, so post-filtering of ``10 / selectivity`` results); and, per ``--extras``,
faiss IndexHNSWSQ (int8, fp16; recall before and after an exact re-rank), IndexIVFFlat and
usearch HNSW with f16 and i8 storage.
Timings are indicative when other jobs share the cores: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import usearch
from tqdm.auto import tqdm
from usearch.index import Index

from summary import load, print_table  # bench/ is the script's folder
from vector_data import SELECTIVITIES, VectorData, exact_topk, make, recall

M = 16
EF_CONSTRUCTION = 64
K = 10
THREADS = os.cpu_count() or 1
_T0 = time.perf_counter()


def step(msg: str) -> None:
    tqdm.write(f"[{time.perf_counter() - _T0:7.1f}s] {msg}")


def rss_mb() -> dict[str, float]:
    """RssAnon (heap, copies) and RssFile (mapped file pages) of this process, in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) / 1024
    return out


def timed_open(opener: Callable[[], Any]) -> tuple[Any, float, float]:
    """(object, seconds, RssAnon growth in MB) of one open call."""
    before = rss_mb()["RssAnon"]
    t = time.perf_counter()
    obj = opener()
    dt = time.perf_counter() - t
    return obj, dt, rss_mb()["RssAnon"] - before


def latency(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, desc: str,
            warmup: int = 20) -> tuple[list[np.ndarray], np.ndarray]:
    """Each query alone: (ids per query, seconds per query); ``warmup`` untimed calls first."""
    for q in queries[:warmup]:
        search(q)
    found, times = [], np.empty(len(queries))
    for i, q in enumerate(tqdm(queries, desc=desc, unit="q", leave=False, disable=None)):
        t = time.perf_counter()
        ids = search(q)
        times[i] = time.perf_counter() - t
        found.append(ids)
    return found, times


def us(times: np.ndarray, pct: float) -> float:
    return float(np.percentile(times, pct) * 1e6)


def filtered_row(name: str, lib: str, method: str, pct: int, found: list[np.ndarray],
                 times: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    ids = np.concatenate(found).astype(np.int64)
    return {"set": name, "lib": lib, "method": method, "keep_pct": pct,
            "recall": recall(found, truth), "p50_us": us(times, 50), "p99_us": us(times, 99),
            "short": float(np.mean([len(f) < K for f in found])),
            "pass": float(mask[ids].mean()) if len(ids) else 1.0}


def mb(path: Path) -> float:
    return path.stat().st_size / 1e6


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.builds: list[dict[str, Any]] = []
        self.sweeps: list[dict[str, Any]] = []
        self.filtered: list[dict[str, Any]] = []
        self.extras: list[dict[str, Any]] = []
        self.loads: list[str] = []

    # -- shared pieces -------------------------------------------------------------------------

    def sweep(self, name: str, lib: str, ef: int | str, search: Callable[[np.ndarray], np.ndarray],
              data: VectorData, truth: np.ndarray, into: list[dict[str, Any]],
              **extra: Any) -> dict[str, Any]:
        found, times = latency(search, data.queries, f"{lib} {ef}")
        row = {"set": name, "lib": lib, "ef": ef, "recall": recall(found, truth),
               "p50_us": us(times, 50), "p99_us": us(times, 99), **extra}
        into.append(row)
        step(f"  {lib} ef={ef}: recall@10 {row['recall']:.3f}, p50 {row['p50_us']:.0f} us, "
             f"p99 {row['p99_us']:.0f} us")
        return row

    # -- usearch -------------------------------------------------------------------------------

    def usearch(self, name: str, data: VectorData, truth: np.ndarray,
                ftruth: dict[int, np.ndarray]) -> None:
        path = self.root / f"{name.replace(' ', '')}.usearch"
        idx = Index(ndim=data.dim, metric="ip", dtype="f32", connectivity=M,
                    expansion_add=EF_CONSTRUCTION)
        step(f"usearch {usearch.__version__}: building {data.n} x {data.dim}")
        t = time.perf_counter()
        idx.add(np.arange(data.n, dtype=np.uint64), data.vectors, threads=THREADS)
        build = time.perf_counter() - t
        idx.save(str(path))
        step(f"  built in {build:.1f} s, {mb(path):.0f} MB on disk")

        view, open_view, anon_view = timed_open(lambda: Index.restore(str(path), view=True))
        full, open_full, anon_full = timed_open(lambda: Index.restore(str(path)))
        del full
        # expansion_search is not stored in the file: set it on every handle
        same = []
        for ef in (64, 200):
            idx.expansion_search = view.expansion_search = ef
            a = idx.search(data.queries, K, threads=THREADS).keys
            b = view.search(data.queries, K, threads=THREADS).keys
            same.append(float(np.mean(a == b)))
        self.builds.append({"set": name, "lib": "usearch HNSW f32", "build_s": build,
                            "size_mb": mb(path), "open_mmap_ms": open_view * 1e3,
                            "anon_mmap_mb": anon_view, "open_read_ms": open_full * 1e3,
                            "anon_read_mb": anon_full, "mmap_same": min(same)})
        step(f"  view(): {open_view * 1e3:.1f} ms, +{anon_view:.0f} MB anon; restore(): "
             f"{open_full * 1e3:.1f} ms, +{anon_full:.0f} MB anon; same ids {min(same):.4f}")

        for ef in self.args.efs:
            idx.expansion_search = ef
            self.sweep(name, "usearch", ef, lambda q: idx.search(q, K, threads=1).keys,
                       data, truth, self.sweeps)
        idx.expansion_search = 64  # the binding under Index.search, without its Python wrapper
        self.sweep(name, "usearch (_compiled)", 64,
                   lambda q: idx._compiled.search_many(q[None], K, False, 1)[0][0],
                   data, truth, self.sweeps)
        view.expansion_search = 64
        self.sweep(name, "usearch (view)", 64, lambda q: view.search(q, K, threads=1).keys,
                   data, truth, self.sweeps)

        # No predicate in Index.search: post-filter an oversampled result list.
        idx.expansion_search = 64  # usearch searches with max(expansion_search, count)
        for pct in SELECTIVITIES:
            mask = data.mask(pct)
            kk = min(data.n, math.ceil(K * 100 / pct))

            def post(q: np.ndarray, kk: int = kk, mask: np.ndarray = mask) -> np.ndarray:
                keys = idx.search(q, kk, threads=1).keys
                return keys[mask[keys]][:K]

            found, times = latency(post, data.queries, f"usearch post-filter {pct}%")
            self.filtered.append(filtered_row(name, "usearch", f"post-filter k={kk}", pct, found,
                                              times, ftruth[pct], mask))
            r = self.filtered[-1]
            step(f"  post-filter {pct}% k={kk}: recall {r['recall']:.3f}, p50 {r['p50_us']:.0f} us, "
                 f"{r['short']:.1%} queries short of 10")

    def usearch_extras(self, name: str, data: VectorData, truth: np.ndarray) -> None:
        if "usearch" not in self.args.extras:
            return
        for dtype in ("f16", "i8"):
            idx = Index(ndim=data.dim, metric="ip", dtype=dtype, connectivity=M,
                        expansion_add=EF_CONSTRUCTION)
            step(f"usearch HNSW {dtype}: building")
            t = time.perf_counter()
            idx.add(np.arange(data.n, dtype=np.uint64), data.vectors, threads=THREADS)
            build = time.perf_counter() - t
            path = self.root / f"{name.replace(' ', '')}.{dtype}.usearch"
            idx.save(str(path))
            for ef in self.args.efs:
                idx.expansion_search = ef
                self.sweep(name, f"usearch HNSW {dtype}", ef,
                           lambda q, idx=idx: idx.search(q, K, threads=1).keys,
                           data, truth, self.extras, build_s=build, size_mb=mb(path))
            path.unlink()

    # -- faiss ---------------------------------------------------------------------------------

    def faiss_hnsw(self, name: str, data: VectorData, truth: np.ndarray,
                   ftruth: dict[int, np.ndarray]) -> None:
        path = self.root / f"{name.replace(' ', '')}.faiss"
        faiss.omp_set_num_threads(THREADS)
        ix = faiss.IndexHNSWFlat(data.dim, M, faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efConstruction = EF_CONSTRUCTION
        step(f"faiss {faiss.__version__}: building {data.n} x {data.dim}")
        t = time.perf_counter()
        ix.add(data.vectors)
        build = time.perf_counter() - t
        faiss.write_index(ix, str(path))
        step(f"  built in {build:.1f} s, {mb(path):.0f} MB on disk")

        opened = {}
        for flag in ("IO_FLAG_MMAP_IFC", "IO_FLAG_MMAP", "0"):
            f = 0 if flag == "0" else getattr(faiss, flag)
            obj, dt, anon = timed_open(lambda f=f: faiss.read_index(str(path), f))
            opened[flag] = (obj, dt, anon)
            step(f"  read_index({flag}): {dt * 1e3:.1f} ms, +{anon:.0f} MB anon")
        mm = opened["IO_FLAG_MMAP_IFC"][0]
        same = []
        for ef in (64, 200):
            ix.hnsw.efSearch = mm.hnsw.efSearch = ef
            same.append(float(np.mean(ix.search(data.queries, K)[1]
                                      == mm.search(data.queries, K)[1])))
        self.builds.append({
            "set": name, "lib": "faiss HNSWFlat", "build_s": build, "size_mb": mb(path),
            "open_mmap_ms": opened["IO_FLAG_MMAP_IFC"][1] * 1e3,
            "anon_mmap_mb": opened["IO_FLAG_MMAP_IFC"][2],
            "open_flag_mmap_ms": opened["IO_FLAG_MMAP"][1] * 1e3,
            "anon_flag_mmap_mb": opened["IO_FLAG_MMAP"][2],
            "open_read_ms": opened["0"][1] * 1e3, "anon_read_mb": opened["0"][2],
            "mmap_same": min(same)})
        del opened
        step(f"  IO_FLAG_MMAP_IFC index answers the same ids: {min(same):.4f}")

        faiss.omp_set_num_threads(1)
        for ef in self.args.efs:
            ix.hnsw.efSearch = ef
            self.sweep(name, "faiss", ef, lambda q: ix.search(q[None], K)[1][0], data, truth,
                       self.sweeps)
        mm.hnsw.efSearch = 64
        self.sweep(name, "faiss (mmap)", 64, lambda q: mm.search(q[None], K)[1][0], data, truth,
                   self.sweeps)

        for pct in SELECTIVITIES:
            mask = data.mask(pct)
            bitmap = np.packbits(mask, bitorder="little")  # kept alive while sel is used
            sel = faiss.IDSelectorBitmap(data.n, faiss.swig_ptr(bitmap))
            # bounded_queue=False takes another search loop: kept to show it ignores `sel`
            variants = [(ef, True) for ef in self.args.filter_efs] + [(64, False)]
            for ef, bounded in variants:
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef, bounded_queue=bounded)

                def filt(q: np.ndarray, params: Any = params) -> np.ndarray:
                    ids = ix.search(q[None], K, params=params)[1][0]
                    return ids[ids >= 0]

                found, times = latency(filt, data.queries, f"faiss filter {pct}% ef={ef}")
                method = f"IDSelectorBitmap ef={ef}" + ("" if bounded else " bounded_queue=False")
                self.filtered.append(filtered_row(name, "faiss", method, pct, found, times,
                                                  ftruth[pct], mask))
                step(f"  {method} {pct}%: recall {self.filtered[-1]['recall']:.3f}, "
                     f"p50 {self.filtered[-1]['p50_us']:.0f} us")
            # reference: exact scan of the kept rows (what a planner could pick at 1%)
            rows = np.flatnonzero(mask)
            kept = np.ascontiguousarray(data.vectors[rows])

            def exact(q: np.ndarray, rows: np.ndarray = rows, kept: np.ndarray = kept) -> np.ndarray:
                sims = kept @ q
                part = np.argpartition(-sims, K - 1)[:K]
                return rows[part[np.argsort(-sims[part])]]

            found, times = latency(exact, data.queries, f"exact {pct}%")
            self.filtered.append(filtered_row(name, "numpy", "exact scan of kept rows", pct,
                                              found, times, ftruth[pct], mask))
            step(f"  exact scan of the kept {pct}%: p50 {self.filtered[-1]['p50_us']:.0f} us")
        self.faiss_extras(name, data, truth)

    def faiss_extras(self, name: str, data: VectorData, truth: np.ndarray) -> None:
        if "faiss" not in self.args.extras:
            return
        rng = np.random.default_rng(1)
        sample = data.vectors[rng.choice(data.n, min(data.n, 100_000), replace=False)]
        for label, qtype in (("HNSWSQ int8", "QT_8bit"), ("HNSWSQ fp16", "QT_fp16")):
            faiss.omp_set_num_threads(THREADS)
            ix = faiss.IndexHNSWSQ(data.dim, getattr(faiss.ScalarQuantizer, qtype), M,
                                   faiss.METRIC_INNER_PRODUCT)
            ix.hnsw.efConstruction = EF_CONSTRUCTION
            step(f"faiss {label}: building")
            t = time.perf_counter()
            ix.train(sample)
            ix.add(data.vectors)
            build = time.perf_counter() - t
            path = self.root / f"{name.replace(' ', '')}.{qtype}.faiss"
            faiss.write_index(ix, str(path))
            faiss.omp_set_num_threads(1)
            for ef in self.args.efs:
                ix.hnsw.efSearch = ef
                self.sweep(name, f"faiss {label}", ef, lambda q, ix=ix: ix.search(q[None], K)[1][0],
                           data, truth, self.extras, build_s=build, size_mb=mb(path))
            # exact re-rank of 4 x K candidates with the float vectors, at ef=64
            ix.hnsw.efSearch = 64

            def rerank(q: np.ndarray, ix: faiss.Index = ix) -> np.ndarray:
                ids = ix.search(q[None], 4 * K)[1][0]
                return ids[np.argsort(-(data.vectors[ids] @ q))[:K]]

            self.sweep(name, f"faiss {label} +rerank 40", 64, rerank, data, truth, self.extras,
                       build_s=build, size_mb=mb(path))
            path.unlink()

        nlist = max(16, round(math.sqrt(data.n)))
        faiss.omp_set_num_threads(THREADS)
        quantizer = faiss.IndexFlatIP(data.dim)
        ivf = faiss.IndexIVFFlat(quantizer, data.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        step(f"faiss IVFFlat nlist={nlist}: training and adding")
        t = time.perf_counter()
        ivf.train(data.vectors[rng.choice(data.n, min(data.n, 40 * nlist), replace=False)])
        ivf.add(data.vectors)
        build = time.perf_counter() - t
        path = self.root / f"{name.replace(' ', '')}.ivf.faiss"
        faiss.write_index(ivf, str(path))
        faiss.omp_set_num_threads(1)
        for nprobe in (1, 4, 8, 16, 32, 64):
            ivf.nprobe = nprobe
            self.sweep(name, f"faiss IVFFlat nlist={nlist}", f"nprobe={nprobe}",
                       lambda q: ivf.search(q[None], K)[1][0], data, truth, self.extras,
                       build_s=build, size_mb=mb(path))
        path.unlink()

    # -- driver --------------------------------------------------------------------------------

    def run_set(self, n: int, dim: int) -> None:
        name = f"{n // 1000}k x {dim}"
        self.loads.append(f"{name} start: {load()}")
        step(f"data {name}, {self.args.queries} queries; {load()}")
        data = make(n, dim, self.args.queries, clusters=self.args.clusters, seed=self.args.seed)
        truth = exact_topk(data, K)
        ftruth = {p: exact_topk(data, K, p) for p in SELECTIVITIES}
        step("  exact answers computed")
        if "usearch" in self.args.libs:
            self.usearch(name, data, truth, ftruth)
        if "faiss" in self.args.libs:
            self.faiss_hnsw(name, data, truth, ftruth)
        if "usearch" in self.args.libs:
            self.usearch_extras(name, data, truth)
        self.loads.append(f"{name} end: {load()}")
        step(f"{name} done; {load()}")

    def report(self) -> None:
        print_table("build, size, open (HNSW M=16 ef_construction=64, all threads for the build)",
                    ("set", "index", "build s", "file MB", "open mmap ms", "+anon MB",
                     "open read ms", "+anon MB", "mmap same ids"),
                    [(b["set"], b["lib"], f"{b['build_s']:.1f}", f"{b['size_mb']:.0f}",
                      f"{b['open_mmap_ms']:.1f}", f"{b['anon_mmap_mb']:.0f}",
                      f"{b['open_read_ms']:.0f}", f"{b['anon_read_mb']:.0f}",
                      f"{b['mmap_same']:.4f}") for b in self.builds])
        flags = [b for b in self.builds if "open_flag_mmap_ms" in b]
        if flags:
            print_table("faiss read_index flags on IndexHNSWFlat",
                        ("set", "flag", "open ms", "+anon MB"),
                        [r for b in flags for r in (
                            (b["set"], "IO_FLAG_MMAP_IFC", f"{b['open_mmap_ms']:.1f}",
                             f"{b['anon_mmap_mb']:.0f}"),
                            (b["set"], "IO_FLAG_MMAP", f"{b['open_flag_mmap_ms']:.1f}",
                             f"{b['anon_flag_mmap_mb']:.0f}"),
                            (b["set"], "0 (read)", f"{b['open_read_ms']:.1f}",
                             f"{b['anon_read_mb']:.0f}"))])
        print_table("one query at a time, 1 search thread: recall@10, latency",
                    ("set", "index", "ef_search", "recall@10", "p50 us", "p99 us"),
                    [(r["set"], r["lib"], str(r["ef"]), f"{r['recall']:.3f}",
                      f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}") for r in self.sweeps])
        print_table("filtered top-10 (truth: exact top-10 of the kept rows)",
                    ("set", "lib", "method", "keep %", "recall@10", "p50 us", "p99 us",
                     "< 10 rows", "rows pass filter"),
                    [(r["set"], r["lib"], r["method"], str(r["keep_pct"]), f"{r['recall']:.3f}",
                      f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}", f"{r['short']:.1%}",
                      f"{r['pass']:.1%}") for r in self.filtered])
        if self.extras:
            print_table("extras, 1 search thread (recall of the compressed index itself unless +rerank)",
                        ("set", "index", "param", "build s", "file MB", "recall@10", "p50 us",
                         "p99 us"),
                        [(r["set"], r["lib"], str(r["ef"]), f"{r['build_s']:.1f}",
                          f"{r['size_mb']:.0f}", f"{r['recall']:.3f}", f"{r['p50_us']:.0f}",
                          f"{r['p99_us']:.0f}") for r in self.extras])
        print()
        print(f"usearch {usearch.__version__}, faiss-cpu {faiss.__version__}, numpy "
              f"{np.__version__}, {THREADS} threads for builds, 1 for searches")
        for line in self.loads:
            print(line)


def parse_sets(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        n, dim = part.lower().split("x")
        out.append((int(n), int(dim)))
    return out


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--sets", default="100000x1024,1000000x128", help="ROWSxDIM,...")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--quick", action="store_true",
                   help="20000x1024,100000x128 and 200 queries (overrides --sets/--queries)")
    p.add_argument("--efs", default="16,32,64,100,200", help="ef_search sweep")
    p.add_argument("--filter-efs", default="64,200,1000", help="faiss ef_search for filtered search")
    p.add_argument("--libs", default="usearch,faiss")
    p.add_argument("--extras", default="faiss,usearch",
                   help="faiss: HNSWSQ int8/fp16 and IVFFlat; usearch: HNSW f16/i8; '' for none")
    p.add_argument("--clusters", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="keep the index files and results.json here")
    args = p.parse_args(argv)
    if args.quick:
        args.sets, args.queries = "20000x1024,100000x128", 200
    args.sets = parse_sets(args.sets)
    args.efs = [int(x) for x in args.efs.split(",")]
    args.filter_efs = [int(x) for x in args.filter_efs.split(",")]
    args.libs = args.libs.split(",")
    args.extras = [x for x in args.extras.split(",") if x]
    return args


def main(argv: Iterable[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_ann_"))
    root.mkdir(parents=True, exist_ok=True)
    print(" ".join([Path(sys.executable).name, *sys.argv]))
    bench = Bench(args, root)
    try:
        for n, dim in args.sets:
            bench.run_set(n, dim)
        bench.report()
        if args.out:
            figures = {"builds": bench.builds, "sweeps": bench.sweeps,
                       "filtered": bench.filtered, "extras": bench.extras, "loads": bench.loads}
            (root / "results.json").write_text(json.dumps(figures, indent=1))
            print(f"figures written to {root / 'results.json'}")
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
