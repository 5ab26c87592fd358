"""Blobs over HTTP: byte ranges (206, 416) read from the blob pack a piece at a time."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .cells import is_media, media_type

CHUNK = 256 << 10  # bytes read from the store per piece of a media response
# An open-ended range (``bytes=N-``, what a <video> asks for) is answered with at most this
# much; the browser asks again for the next part as it plays. So what is read from the store
# follows what is watched, however much the client's socket buffers would take.
OPEN_RANGE_MAX = 2 << 20


class Stats:
    """Counters the benchmark and tests read from ``/api/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.media_requests = 0
        self.media_bytes_sent = 0
        self.range_requests = 0

    def add(self, sent: int, ranged: bool) -> None:
        with self._lock:
            self.media_requests += 1
            self.media_bytes_sent += sent
            self.range_requests += int(ranged)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"media_requests": self.media_requests, "media_bytes_sent": self.media_bytes_sent,
                    "range_requests": self.range_requests}


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def cache_control(immutable: bool) -> str:
    """A commit's data never changes; a branch or tag name's may."""
    return "private, max-age=31536000, immutable" if immutable else "no-cache"


def ranged(request: Request, blob: Any, stats: Stats, immutable: bool) -> Response:
    """The blob's bytes, by HTTP range when asked (206, or 416 for a range past the end);
    read from the store a piece at a time as the client takes them, so a seek in a
    500 MB clip reads what is watched, not the clip."""
    size = len(blob)
    ctype = media_type(blob.kind, blob.meta)
    headers = {"accept-ranges": "bytes", "cache-control": cache_control(immutable)}
    if not is_media(blob.kind) or ctype == "application/octet-stream":
        headers["content-disposition"] = "attachment"
    spec = request.headers.get("range")
    start, end, status = 0, size - 1, 200
    if spec is not None and "," not in spec:  # several ranges: the whole value (RFC 9110 allows it)
        m = _RANGE.match(spec.strip())
        if m is None or m.group(1) == m.group(2) == "":
            return _unsatisfiable(size, headers)
        first, last = m.group(1), m.group(2)
        if first == "":  # the last N bytes
            start, end = max(size - int(last), 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else min(start + OPEN_RANGE_MAX, size) - 1
        if start >= size or end < start:
            return _unsatisfiable(size, headers)
        status = 206
        headers["content-range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1 if size else 0
    headers["content-length"] = str(length)
    if request.method == "HEAD" or length == 0:
        stats.add(0, status == 206)
        return Response(b"", status_code=status, media_type=ctype, headers=headers)

    def pieces() -> Iterator[bytes]:
        sent, pos = 0, start
        try:
            while pos <= end:
                piece = blob.read(pos, min(CHUNK, end - pos + 1))
                pos += len(piece)
                sent += len(piece)
                yield piece
        finally:
            stats.add(sent, status == 206)

    return StreamingResponse(pieces(), status_code=status, media_type=ctype, headers=headers)


def _unsatisfiable(size: int, headers: dict[str, str]) -> Response:
    headers = {**headers, "content-range": f"bytes */{size}"}
    return JSONResponse({"error": f"range not satisfiable: the value has {size} bytes"}, status_code=416,
                        headers=headers)
