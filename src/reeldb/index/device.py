"""Exact top-k on an accelerator (``SET reeldb.device = 'cuda'``), with PyTorch.

A fragment's vectors are copied to the device once and kept there (fragments are
immutable, so the copy never goes stale); each query is one matrix product per fragment
and a ``topk`` on the device, and only k positions and scores per fragment come back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .. import errors

_CACHE: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()  # (device, matrix key) -> (vectors, norms)
_lock = threading.Lock()
CACHE_BYTES = 0.8  # share of the device's memory the cache may fill


def usable(device: str) -> str:
    """The device name, or a clear error when this process cannot use it."""
    device = device.strip().lower()
    if device in ("cpu", "numpy"):
        return "cpu"
    try:
        import torch
    except ImportError:
        raise errors.FeatureNotSupported(
            f'reeldb.device = "{device}" needs PyTorch: pip install "reeldb[torch]"') from None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise errors.FeatureNotSupported(
                f'reeldb.device = "{device}": no CUDA device is available to this process '
                "(torch.cuda.is_available() is False); vector search stays on the CPU")
        try:
            torch.device(device)
            if device != "cuda" and int(device.split(":")[1]) >= torch.cuda.device_count():
                raise ValueError
        except (RuntimeError, ValueError, IndexError):
            raise errors.InvalidParameterValue(f'invalid value for parameter "reeldb.device": "{device}"') from None
        return device
    if device.startswith("torch-cpu"):  # the same code path on the CPU, for tests and comparisons
        return "torch-cpu"
    raise errors.InvalidParameterValue(
        f'invalid value for parameter "reeldb.device": "{device}" (cpu or cuda[:N])')


def _resident(device: str, key: str, mat: np.ndarray, norms: np.ndarray) -> tuple[Any, Any]:
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    with _lock:
        got = _CACHE.get((device, key))
        if got is not None:
            _CACHE.move_to_end((device, key))
            return got
    flat = mat.reshape(mat.shape[0], -1)
    if dev.type == "cpu":  # half-precision products are slow on CPUs: widen once
        flat = flat.astype(np.float32)
    vec = torch.from_numpy(np.require(flat, requirements=("C", "W"))).to(dev)
    nrm = torch.from_numpy(np.ascontiguousarray(norms, dtype=np.float32)).to(dev)
    with _lock:
        _CACHE[(device, key)] = (vec, nrm)
        if dev.type == "cuda":
            limit = CACHE_BYTES * torch.cuda.get_device_properties(dev).total_memory
            while len(_CACHE) > 1 and sum(v.element_size() * v.nelement() for v, _ in _CACHE.values()) > limit:
                _CACHE.popitem(last=False)
    return vec, nrm


def topk(device: str, key: str, mat: np.ndarray, norms: np.ndarray, queries: np.ndarray, metric: str,
         rows: np.ndarray | None, k: int, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the best ``k`` of ``rows`` (all when None) of one fragment:
    (queries, k') positions and scores, k' = min(k, rows). NULL rows (NaN norm) rank last."""
    import torch

    vec, nrm = _resident(device, key, mat, norms)
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(vec.device)
    if rows is not None:
        idx = torch.from_numpy(rows.astype(np.int64)).to(vec.device)
        vec, nrm = vec.index_select(0, idx), nrm.index_select(0, idx)
    d = (vec @ q.T.to(vec.dtype)).T.to(torch.float32)  # (queries, rows)
    n = nrm[None, :]
    if metric == "inner_product":
        s = d
    elif metric == "negative_inner_product":
        s = -d
    elif metric == "l2_distance":
        s = torch.sqrt(torch.clamp(n * n + (q * q).sum(1, keepdim=True) - 2 * d, min=0))
    else:
        qn = torch.linalg.vector_norm(q, dim=1, keepdim=True)
        cos = torch.where((n == 0) | (qn == 0), torch.nan, d / (n * qn))
        s = cos if metric == "cosine_similarity" else 1 - cos
    s = torch.where(torch.isnan(n), torch.nan, s)
    key_ = torch.nan_to_num(s if descending else -s, nan=-torch.inf)
    kk = min(k, key_.shape[1])
    _, pos = torch.topk(key_, kk, dim=1)
    scores = torch.gather(s, 1, pos)
    pos_np = pos.cpu().numpy()
    if rows is not None:
        pos_np = rows[pos_np]
    return pos_np, scores.cpu().numpy()
