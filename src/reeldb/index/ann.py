"""Approximate nearest-neighbour indexes on faiss: HNSW and IVF, full precision, float16,
int8 or binary codes, searched with a filter applied during traversal.

faiss was chosen over usearch by measurement (``bench/bench_ann_libs.py``,
``docs/dependencies.md``): both build and search HNSW at about the same speed, but only
faiss takes an allow-list (``IDSelectorBitmap``) into the graph walk from Python, which
filtered search needs, and it memory-maps a saved index (``IO_FLAG_MMAP_IFC``).

Labels are positions in the index (0..n-1); the caller maps them to rows. Cosine indexes
hold unit vectors and search by inner product; a NULL or zero vector is stored as zeros
and the caller never allows its label.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import errors

OPCLASSES = {  # pgvector's operator classes -> the metric they index
    "vector_cosine_ops": "cosine", "vector_l2_ops": "l2", "vector_ip_ops": "ip",
    "halfvec_cosine_ops": "cosine", "halfvec_l2_ops": "l2", "halfvec_ip_ops": "ip",
}
DEFAULT_OPCLASS = "vector_l2_ops"  # pgvector's only default: for vector with ivfflat (none for hnsw)
QUANTIZATIONS = ("none", "fp16", "int8", "binary")
PARAMS = {  # method -> option -> (default, low, high); strings have no bounds
    "hnsw": {"m": (16, 2, 100), "ef_construction": (64, 4, 1000), "quantization": ("none", None, None)},
    "ivfflat": {"lists": (100, 1, 32768), "quantization": ("none", None, None)},
}
RERANK = {"none": 1, "fp16": 1, "int8": 4, "binary": 16}  # candidates fetched per row wanted
ADD_CHUNK = 16384

_build_lock = threading.Lock()  # faiss' OpenMP pool is per process: one build at a time


def require() -> Any:
    """faiss, imported on first use: it adds ~0.1 s to a cold start that never needs it."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise errors.FeatureNotSupported("vector indexes need faiss-cpu: pip install faiss-cpu") from None
    return faiss


def options(method: str, given: dict[str, Any], halfvec: bool) -> dict[str, Any]:
    """The index's options, defaults filled in and checked (22023 on a bad one)."""
    spec = PARAMS.get(method)
    if spec is None:
        raise errors.FeatureNotSupported(f'access method "{method}" is not supported: use hnsw or ivfflat')
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in spec:
            raise errors.InvalidParameterValue(f'unrecognized parameter "{name}" for {method} '
                                               f"(known: {', '.join(spec)})")
        default, lo, hi = spec[name]
        if isinstance(default, str):
            value = str(value).lower()
            if value not in QUANTIZATIONS:
                raise errors.InvalidParameterValue(
                    f'invalid value for parameter "{name}": "{value}" (one of {", ".join(QUANTIZATIONS)})')
        else:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise errors.InvalidParameterValue(f'invalid value for parameter "{name}": "{value}"') from None
            if not lo <= value <= hi:
                raise errors.InvalidParameterValue(
                    f'value {value} out of bounds for option "{name}" (valid range {lo} to {hi})')
        out[name] = value
    for name, (default, _, _) in spec.items():
        out.setdefault(name, default)
    if out["quantization"] == "none" and halfvec:
        out["quantization"] = "fp16"  # a HALFVEC column's index keeps its precision, not more
    if out["quantization"] == "binary" and method != "hnsw":
        raise errors.FeatureNotSupported("binary quantization is available for hnsw indexes only")
    return out


def _metric(metric: str) -> int:
    faiss = require()
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def prepare(vectors: np.ndarray, metric: str, quantization: str) -> np.ndarray:
    """Rows as the index stores them: float32, unit length for cosine, zeros for NULL or
    zero rows; sign bits, packed, for binary codes."""
    x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        x = x.copy()
        x[bad] = 0
    if metric == "cosine":
        n = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    if quantization == "binary":
        return np.packbits(x > 0, axis=1)
    return x


def new(method: str, metric: str, dim: int, opts: dict[str, Any]) -> Any:
    """An empty index; IVF and int8 indexes still need ``train``."""
    faiss = require()
    q = opts["quantization"]
    if q == "binary":
        if dim % 8:
            raise errors.FeatureNotSupported("binary quantization needs a dimension divisible by 8")
        index = faiss.IndexBinaryHNSW(dim, opts["m"])
        index.hnsw.efConstruction = opts["ef_construction"]
        return index
    mt = _metric(metric)
    sq = {"fp16": faiss.ScalarQuantizer.QT_fp16, "int8": faiss.ScalarQuantizer.QT_8bit}.get(q)
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(dim, opts["m"], mt) if sq is None else faiss.IndexHNSWSQ(dim, sq, opts["m"], mt)
        index.hnsw.efConstruction = opts["ef_construction"]
        return index
    quantizer = faiss.IndexFlatL2(dim) if mt == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
    if sq is None:
        index = faiss.IndexIVFFlat(quantizer, dim, opts["lists"], mt)
    else:
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, opts["lists"], sq, mt)
    return index  # faiss' Python wrapper keeps the quantizer alive with the index


def needs_training(index: Any) -> bool:
    return not index.is_trained


def train(index: Any, sample: np.ndarray) -> None:
    faiss = require()
    with _build_lock:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index.train(sample)


def add(index: Any, chunks: Iterable[np.ndarray], progress: Any = None) -> None:
    """Append prepared rows; labels continue from ``index.ntotal``."""
    faiss = require()
    with _build_lock:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        for x in chunks:
            index.add(x)
            if progress is not None:
                progress.update(len(x))


def serialize(index: Any) -> bytes:
    faiss = require()
    if isinstance(index, faiss.IndexBinary):
        return faiss.serialize_index_binary(index).tobytes()
    return faiss.serialize_index(index).tobytes()


def load(path: str | None, data: bytes | None, binary: bool) -> Any:
    """A saved index, memory-mapped from ``path`` when there is one: opening reads the
    graph or list headers, not the vectors."""
    faiss = require()
    if path is not None:
        if binary:
            return faiss.read_index_binary(path, faiss.IO_FLAG_MMAP)
        try:
            return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:  # index types without in-place mapping (IVF lists)
            return faiss.read_index(path, faiss.IO_FLAG_MMAP)
    assert data is not None
    buf = np.frombuffer(data, dtype=np.uint8)
    return faiss.deserialize_index_binary(buf) if binary else faiss.deserialize_index(buf)


def copy(path: str | None, data: bytes | None, binary: bool) -> Any:
    """A writable copy of a saved index, to add rows to (folding new fragments in)."""
    if path is not None:
        with open(path, "rb") as f:
            data = f.read()
    return load(None, data, binary)


def bitmap(allowed: np.ndarray) -> np.ndarray:
    """Label -> allowed, packed as faiss' ``IDSelectorBitmap`` reads it (LSB first)."""
    return np.packbits(allowed, bitorder="little")


def search(index: Any, queries: np.ndarray, k: int, effort: int, bits: np.ndarray | None) -> np.ndarray:
    """(queries, k) labels, -1 where fewer than k were found. ``effort`` is ef_search
    (HNSW) or probes (IVF); ``bits`` restricts the walk to allowed labels."""
    faiss = require()
    sel = None if bits is None else faiss.IDSelectorBitmap(index.ntotal, faiss.swig_ptr(bits))
    if isinstance(index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(nprobe=min(effort, index.nlist), sel=sel)
    else:
        params = faiss.SearchParametersHNSW(efSearch=max(effort, k), sel=sel)
    _, labels = index.search(queries, k, params=params)
    return labels
