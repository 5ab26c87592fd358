"""``Blob``: a lazy, bytes-like handle on an out-of-line cell.

Nothing is read until asked: ``len()`` and ``meta`` come from the row itself;
``read(offset, size)`` and ``open()`` read byte ranges of the pack, so a decoder can
seek through a 500 MB clip without loading it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from ..format.blobs import pack_key
from ..storage import ObjectStore


class Blob:
    __slots__ = ("_store", "_ref", "_meta")

    def __init__(self, store: ObjectStore, ref: dict):
        self._store = store
        self._ref = ref
        self._meta: dict | None = None

    @property
    def _blob_ref(self) -> dict:
        """The stored reference, so writing a Blob back copies no bytes."""
        return self._ref

    @property
    def kind(self) -> str:
        return self._ref["kind"]

    @property
    def meta(self) -> dict[str, Any]:
        """Probed media metadata (width, height, fps, frames, codec, ...), or {}."""
        if self._meta is None:
            m = self._ref.get("meta")
            self._meta = json.loads(m) if m else {}
        return self._meta

    def __len__(self) -> int:
        return int(self._ref["length"])

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        n = len(self)
        if offset < 0 or offset > n:
            raise ValueError(f"offset {offset} is outside a blob of {n} bytes")
        size = n - offset if size is None else max(0, min(size, n - offset))
        data = self._ref.get("data")
        if data is not None:
            return bytes(data[offset : offset + size])
        if size == 0:
            return b""
        return self._store.get_range(pack_key(self._ref["pack"]), self._ref["offset"] + offset, size)

    def __bytes__(self) -> bytes:
        return self.read()

    def open(self) -> BlobReader:
        return BlobReader(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Blob):
            return self._ref == other._ref or self.read() == other.read()
        if isinstance(other, bytes | bytearray | memoryview):
            return len(self) == len(other) and self.read() == bytes(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._ref.get("pack"), self._ref.get("offset"), len(self)))

    def __repr__(self) -> str:
        extra = ""
        m = self.meta
        if self.kind == "video" and m:
            extra = f" {m.get('width')}x{m.get('height')} {m.get('frames')} frames @ {m.get('fps'):.3g} fps"
        elif self.kind == "image" and m:
            extra = f" {m.get('width')}x{m.get('height')} {m.get('format')}"
        return f"<reeldb.Blob {self.kind} {len(self)} bytes{extra}>"


class BlobReader(io.RawIOBase):
    """A seekable, read-only file over a blob (PyAV, Pillow and numpy can read it)."""

    def __init__(self, blob: Blob):
        super().__init__()
        self._blob = blob
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._blob)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), max(0, len(self._blob) - self._pos))
        if n <= 0:
            return 0
        data = self._blob.read(self._pos, n)
        b[: len(data)] = data
        self._pos += len(data)
        self.bytes_read += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, len(self._blob) - self._pos)
        data = self._blob.read(min(self._pos, len(self._blob)), size)
        self._pos += len(data)
        self.bytes_read += len(data)
        return data
