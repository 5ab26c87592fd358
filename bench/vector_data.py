"""The vector benchmarks' data: clustered unit embeddings, a filter column, queries and
their exact answers.

Real embeddings are clustered; uniformly random unit vectors in 1,024 dimensions are all
nearly orthogonal and every ANN index scores ~0.1 recall on them, which measures nothing.
Each row is one of ``clusters`` random unit centres plus Gaussian noise of norm ~``noise``,
normalised. ``bucket`` is uniform over 0..99 and independent of the clusters, so
``bucket < 1`` / ``< 10`` / ``< 50`` keep 1% / 10% / 50% of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SELECTIVITIES = (1, 10, 50)  # percent of rows a filter keeps: WHERE bucket < s


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    sigma = np.float32(noise / np.sqrt(dim))
    for s in range(0, n, 16384):
        e = min(n, s + 16384)
        block = centres[rng.integers(0, len(centres), e - s)]
        block += sigma * rng.standard_normal((e - s, dim), dtype=np.float32)
        out[s:e] = unit_rows(block)
    return out


@dataclass
class VectorData:
    vectors: np.ndarray  # (n, dim) float32, unit rows
    bucket: np.ndarray  # (n,) int32 in 0..99
    queries: np.ndarray  # (q, dim) float32, unit rows, from the same clusters

    @property
    def n(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def mask(self, percent: int | None) -> np.ndarray | None:
        return None if percent is None else self.bucket < percent


def make(n: int, dim: int, queries: int = 1000, clusters: int = 300, noise: float = 0.8,
         seed: int = 0) -> VectorData:
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
    vectors = clustered(rng, centres, n, noise)
    bucket = rng.integers(0, 100, n).astype(np.int32)
    q = clustered(rng, centres, queries, noise)
    return VectorData(vectors, bucket, q)


def exact_topk(data: VectorData, k: int = 10, percent: int | None = None,
               metric: str = "cosine") -> np.ndarray:
    """(queries, k) row numbers of the true nearest rows (the recall reference), by
    blocked matrix products. Unit rows make cosine, inner product and L2 agree."""
    mask = data.mask(percent)
    rows = np.arange(data.n) if mask is None else np.flatnonzero(mask)
    mat = data.vectors[rows]
    out = np.empty((len(data.queries), k), dtype=np.int64)
    for s in range(0, len(data.queries), 256):
        sims = data.queries[s:s + 256] @ mat.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[s:s + 256] = rows[np.take_along_axis(part, order, axis=1)]
    return out


def recall(found: np.ndarray | list, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k found (rows of ``found`` may be shorter)."""
    hits = sum(len(set(map(int, f)) & set(map(int, t))) for f, t in zip(found, truth))
    return hits / truth.size
