"""Cells as the browser sees them: small JSON summaries, never a whole vector or blob.

A grid page of 48 rows with 4096-dim vectors and 500 MB clips must stay a few kilobytes:
vectors and tensors become their shape and norm, blobs their size, probed metadata and a
URL the browser fetches by byte range.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import struct
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

TEXT_PREVIEW = 300  # characters of text or JSON shown in a grid cell
_MEDIA_KINDS = {"video", "image"}


def summarise(value: Any, media_url: Callable[[], str], full: bool = False) -> Any:
    """A JSON-ready summary of one cell; ``full`` (the row detail) keeps whole text and JSON
    and the first values of a vector. ``media_url`` is called only for blob cells."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # JavaScript numbers are doubles: a BIGINT past 2**53 goes as text to keep its digits
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if full or len(value) <= TEXT_PREVIEW else value[:TEXT_PREVIEW] + "…"
    if isinstance(value, np.ndarray):
        return _array(value, full)
    if hasattr(value, "kind") and hasattr(value, "meta") and hasattr(value, "read"):  # a reeldb Blob
        out: dict[str, Any] = {"kind": value.kind, "bytes": len(value), "meta": _meta(value.meta, full)}
        out["url"] = media_url()
        return out
    if isinstance(value, bytes | bytearray | memoryview):
        return {"kind": "bytes", "bytes": len(value)}
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        return {"kind": "json", "text": text if full or len(text) <= TEXT_PREVIEW else text[:TEXT_PREVIEW] + "…"}
    if isinstance(value, dt.datetime | dt.date | dt.time | decimal.Decimal | uuid.UUID | dt.timedelta):
        return str(value)
    return str(value)[:TEXT_PREVIEW]


def _meta(meta: dict[str, Any], full: bool) -> dict[str, Any]:
    """Probed media metadata; the keyframe index only in full."""
    return meta if full else {k: v for k, v in meta.items() if k not in ("keyframes", "time_base")}


def _array(a: np.ndarray, full: bool) -> dict[str, Any]:
    if a.dtype == object:  # an array of arrays (a ragged SQL array)
        return {"kind": "array", "length": len(a)}
    out: dict[str, Any] = {"kind": "vector" if a.ndim == 1 else "tensor", "shape": list(a.shape),
                           "dtype": str(a.dtype)}
    if np.issubdtype(a.dtype, np.number):
        x = a.astype(np.float64, copy=False)
        norm = float(np.sqrt(np.sum(x * x)))
        out["norm"] = norm if math.isfinite(norm) else str(norm)
        flat = x.reshape(-1)
        head = flat[: (16 if full else 3)]
        out["head"] = [float(v) if math.isfinite(v) else str(v) for v in head]
    return out


def media_type(kind: str, meta: dict[str, Any]) -> str:
    """The Content-Type a stored blob is served with. Only formats a browser shows as
    media: anything else (an SVG that could carry script, unknown bytes) is a download."""
    if kind == "video":
        container = str(meta.get("container", ""))
        if "mp4" in container or "mov" in container:
            return "video/mp4"
        if "webm" in container or "matroska" in container:
            return "video/webm"
        if "ogg" in container:
            return "video/ogg"
    if kind == "image":
        fmt = str(meta.get("format", "")).lower()
        if fmt in ("png", "gif", "webp", "bmp"):
            return f"image/{fmt}"
        if fmt in ("jpeg", "jpg", "mpo"):
            return "image/jpeg"
    return "application/octet-stream"


def is_media(kind: str) -> bool:
    return kind in _MEDIA_KINDS


def png(rgb: np.ndarray) -> bytes:
    """An RGB uint8 (H, W, 3) array as PNG bytes (zlib only: Pillow is optional)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"png() takes uint8 (H, W, 3), not {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    raw = np.empty((h, 1 + w * 3), dtype=np.uint8)
    raw[:, 0] = 0  # filter: none
    raw[:, 1:] = rgb.reshape(h, w * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))
