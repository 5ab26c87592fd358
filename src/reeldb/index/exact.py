"""Exact vector scoring and top-k over memory-mapped matrices (numpy).

Scores are computed in float32 with one matrix-vector product per chunk; cosine uses
the row norms stored at write time, so it costs the same as an inner product.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

# metric name -> (uses norms, is a distance (smaller is nearer))
METRICS = {
    "cosine_similarity": (True, False),
    "cosine_distance": (True, True),
    "l2_distance": (True, True),
    "inner_product": (False, False),
    "negative_inner_product": (False, True),
}

CHUNK = 16384
SMALL_PRODUCT = 32 << 20  # bytes of vectors below which a product runs on one BLAS thread
TINY_PRODUCT = 32 << 10  # ...and below which OpenBLAS stays on one thread anyway (m x n < 9216)

_blas: object = None
_blas_lock = threading.Lock()


@contextlib.contextmanager
def blas_threads_for(nbytes: int) -> Iterator[None]:
    """One BLAS thread for a small product. OpenBLAS splits even a 2 MB mat-vec across its
    threads, and waking them costs more than the product: 10 ms instead of 0.07 ms for
    2,000 x 256 on a busy 2-core machine (threadpoolctl, measured). Large scans keep every
    thread: they are memory-bound and gain a little."""
    global _blas
    if nbytes >= SMALL_PRODUCT or nbytes <= TINY_PRODUCT:
        yield
        return
    if _blas is None:
        with _blas_lock:
            if _blas is None:
                from threadpoolctl import ThreadpoolController

                _blas = ThreadpoolController().select(user_api="blas")
    with _blas.limit(limits=1):  # type: ignore[attr-defined]
        yield
GATHER_FRACTION = 0.25  # below this share of candidates, gather rows instead of scanning


def _dots(mat: np.ndarray, q: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    n = mat.shape[0]
    flat = np.asarray(mat).reshape(n, -1)  # a plain view: np.memmap's hooks cost on every slice
    row_bytes = flat.shape[1] * 4
    if rows is not None and len(rows) < GATHER_FRACTION * n:
        out = np.empty(len(rows), dtype=np.float32)
        with blas_threads_for(len(rows) * row_bytes):
            for s in range(0, len(rows), CHUNK):
                block = flat[rows[s : s + CHUNK]]
                out[s : s + CHUNK] = block.astype(np.float32, copy=False) @ q
        return out
    with blas_threads_for(n * row_bytes):
        if flat.dtype == np.float32:
            out = flat @ q  # one BLAS call over the mapped file
        else:  # float16: widened a chunk at a time
            out = np.empty(n, dtype=np.float32)
            for s in range(0, n, CHUNK):
                out[s : s + CHUNK] = flat[s : s + CHUNK].astype(np.float32) @ q
    return out if rows is None else out[rows]


def score(mat: np.ndarray, norms: np.ndarray, q: np.ndarray, metric: str,
          rows: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``rows`` (all when None) of ``mat`` against ``q``; NaN where the row is
    NULL (its norm is NaN). Computed in place on the products: a scan of a million rows
    makes few passes over its scores."""
    q = np.ascontiguousarray(q, dtype=np.float32).reshape(-1)
    d = _dots(mat, q, rows)  # a fresh array: ours to overwrite
    nrm = norms if rows is None else norms[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in ("inner_product", "negative_inner_product"):
            if metric == "negative_inner_product":
                np.negative(d, out=d)
            null = np.isnan(nrm)
            if null.any():
                d[null] = np.nan
        elif metric == "l2_distance":
            d *= -2
            d += nrm * nrm  # NaN for NULL rows, and it stays NaN through max and sqrt
            d += float(q @ q)
            np.maximum(d, 0, out=d)
            np.sqrt(d, out=d)
        else:
            qn = np.float32(np.linalg.norm(q))
            if qn == 0:  # as pgvector: the cosine of a zero vector is NaN
                d.fill(np.nan)
            else:
                np.divide(d, nrm * qn, out=d)  # a zero row's 0 / 0 is NaN, a NULL row's NaN stays
            if metric == "cosine_distance":
                np.subtract(1, d, out=d)
    return d


def topk(scores: np.ndarray, k: int, descending: bool, nulls_first: bool) -> np.ndarray:
    """Indices of the best ``k`` scores in order; ties broken by position; NaN (NULL)
    placed as Postgres places NULLs."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    key = -scores if descending else scores
    nan = np.isnan(key)
    if nan.any():
        key = key.copy() if key is scores else key
        key[nan] = -np.inf if nulls_first else np.inf
    if k < n:
        part = np.argpartition(key, k - 1)[:k]
        # include every tie of the k-th key so position breaks ties deterministically
        kth = key[part].max()
        part = np.flatnonzero(key <= kth)
    else:
        part = np.arange(n)
    order = np.lexsort((part, key[part]))
    return part[order][:k]


def score_many(mat: np.ndarray, norms: np.ndarray, queries: np.ndarray, metric: str,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``rows`` (all when None) against every query, (rows, queries): one
    matrix product per chunk, so a batch of queries reads the vectors once."""
    qs = np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)
    flat = np.asarray(mat).reshape(mat.shape[0], -1)
    n = mat.shape[0] if rows is None else len(rows)
    d = np.empty((n, len(qs)), dtype=np.float32)
    with blas_threads_for(n * flat.shape[1] * 4):
        for s in range(0, n, CHUNK):
            block = flat[s:s + CHUNK] if rows is None else flat[rows[s:s + CHUNK]]
            d[s:s + CHUNK] = block.astype(np.float32, copy=False) @ qs.T
    nrm = (norms if rows is None else norms[rows]).astype(np.float32)[:, None]
    if metric == "inner_product":
        out = d
    elif metric == "negative_inner_product":
        out = -d
    elif metric == "l2_distance":
        qq = (qs * qs).sum(axis=1)[None, :]
        out = np.sqrt(np.maximum(nrm ** 2 + qq - 2 * d, 0))
    else:
        qn = np.linalg.norm(qs, axis=1)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = d / (nrm * qn)
        cos = np.where((nrm == 0) | (qn == 0), np.nan, cos)
        out = cos if metric == "cosine_similarity" else 1 - cos
    return np.where(np.isnan(nrm), np.nan, out).astype(np.float32, copy=False)


def exact_scores(vectors: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """The scores of a few rows (the winners of a top-k) in float8, pgvector's result type:
    from the differences and products themselves, not the expansion |v|^2 - 2 v.q + |q|^2
    that ranks a whole scan fast but loses digits (a distance of exactly 1 came out
    1.0000002). pgvector sums in float4 and widens, so past float4's 7 digits its answer can
    differ from this more exact one."""
    v = np.asarray(vectors, dtype=np.float64)
    q64 = np.asarray(q, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in ("inner_product", "negative_inner_product"):
            d = v @ q64
            return -d if metric == "negative_inner_product" else d
        if metric == "l2_distance":
            return np.sqrt(np.square(v - q64).sum(axis=1))
        # pgvector's form: one square root of the product of the squared norms, kept in [-1, 1]
        sim = np.clip((v @ q64) / np.sqrt(np.einsum("ij,ij->i", v, v) * float(q64 @ q64)), -1.0, 1.0)
        return 1 - sim if metric == "cosine_distance" else sim
