"""The embeddings map's 2-D projection: PCA with numpy (no extra dependency).

A randomized SVD (Halko, Martinsson and Tropp, 2011) finds the top components of a few
thousand 4096-dim vectors in tens of milliseconds, where a full SVD takes seconds; small
inputs get the exact SVD.
"""

from __future__ import annotations

import numpy as np

EXACT_BELOW = 256  # dims: a full SVD is cheap enough


def pca_2d(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """``(n, 2)`` coordinates on the first two principal components, and the share of the
    variance each explains. Fewer than two rows or no variance gives zeros."""
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return np.zeros((n, 2)), [0.0, 0.0]
    centred = x - x.mean(axis=0)
    total = float(np.sum(centred * centred))
    if total == 0.0 or not np.isfinite(total):
        return np.zeros((n, 2)), [0.0, 0.0]
    if min(centred.shape) <= EXACT_BELOW:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
    else:
        rng = np.random.default_rng(seed)
        y = centred @ rng.normal(size=(centred.shape[1], 12))
        for _ in range(3):  # power iterations sharpen the top of the spectrum
            y, _ = np.linalg.qr(centred @ (centred.T @ y))
        b = y.T @ centred
        _, s, vt = np.linalg.svd(b, full_matrices=False)
    components = vt[:2]
    coords = centred @ components.T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    explained = [float(v * v / total) for v in s[:2]] + [0.0] * (2 - len(s[:2]))
    return coords, explained
