"""``Blob``: a lazy, bytes-like handle on an out-of-line cell.

Nothing is read until asked: ``len()`` and ``meta`` come from the row itself;
``read(offset, size)`` and ``open()`` read byte ranges of the pack, so a decoder can
seek through a 500 MB clip without loading it. ``decode()`` turns a VIDEO, IMAGE or
TENSOR cell into a numpy array, reading only what that takes.
"""

from __future__ import annotations

import io
import json
import mmap
import weakref
from typing import Any

import numpy as np

from .. import errors
from ..format import checksum
from ..format.keys import pack_key
from ..storage import ObjectStore
from .decode import decode_image, decode_video

# One read-only mapping per local pack, shared by every array cut from it: a SELECT of
# 100k tensors must not make 100k mappings (Linux allows ~65k per process). Arrays
# keep their mapping alive; the entry goes when the last of them does.
_PACK_MAPS: weakref.WeakValueDictionary[str, mmap.mmap] = weakref.WeakValueDictionary()


class Blob:
    """A BYTEA, IMAGE, VIDEO or any-shape TENSOR cell, read only when asked.

    ``last_bytes_read`` is how many bytes of the value the last ``decode()`` or
    ``numpy()`` read (what a ranged decode saves shows here); a memory-mapped tensor
    reads its pages only when they are touched and reports 0.
    """

    __slots__ = ("_store", "_ref", "_meta", "last_bytes_read")

    def __init__(self, store: ObjectStore, ref: dict):
        self._store = store
        self._ref = ref
        self._meta: dict | None = None
        self.last_bytes_read = 0

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
        start, chunk = self._fetch(offset, size)
        return chunk if (start, len(chunk)) == (offset, size) else chunk[offset - start : offset - start + size]

    def _fetch(self, offset: int, size: int) -> tuple[int, bytes]:
        """``(start, bytes)`` of the pack covering ``[offset, offset + size)`` of the value,
        verified: the whole blocks those bytes fall in, checked against the cell's block
        checksums (XX001 on damage, truncation included). Cells written before checksums
        are read as asked, their length still checked."""
        key = pack_key(self._ref["pack"])
        base = int(self._ref["offset"])
        sums = self._ref.get("sums")
        if sums is not None and checksum.enabled():
            start, end = checksum.block_range(offset, size, len(self))
        else:
            start, end = offset, offset + size
        try:
            data = self._store.get_range(key, base + start, end - start)
        except KeyError:
            raise checksum.damaged(key, f"the blob pack holding a value of {len(self)} bytes is missing") from None
        checksum.check_range(key, base, data, start, end, len(self), sums)
        return start, data

    def __bytes__(self) -> bytes:
        return self.read()

    def open(self) -> BlobReader:
        """A seekable read-only file over the value that reads the pack by byte range."""
        return BlobReader(self)

    def decode(self, start: int = 0, frames: int | None = None, stride: int = 1,
               size: tuple[int, int] | None = None) -> np.ndarray:
        """The value as a numpy array; ``size`` is ``(height, width)``, as in PyTorch.

        VIDEO: uint8 ``(T, H, W, 3)`` RGB, the frames with display index ``start``,
        ``start + stride``, ... (``frames`` of them, None: to the end). The pack is read
        from the keyframe at or before ``start`` (the index probed at insert) up to the
        last frame wanted, not from the start of the clip. A clip that ends sooner
        gives fewer frames; a ``start`` past its last frame is a ValueError. See
        ``reeldb.media.decode.decode_video``.

        IMAGE: uint8 ``(H, W, 3)`` RGB, whatever the stored mode (greyscale repeated,
        alpha dropped; see ``decode_image``). TENSOR: the same array as ``numpy()``.
        ``start``, ``frames`` and ``stride`` apply to VIDEO only, ``size`` to VIDEO and
        IMAGE; BYTEA has no decoder (use ``bytes()``, ``open()`` or ``numpy()``).
        """
        kind = self.kind
        if kind == "video":
            with self.open() as reader:
                try:
                    return decode_video(reader, start=start, frames=frames, stride=stride,
                                        size=size, meta=self.meta)
                finally:
                    self.last_bytes_read = reader.bytes_read
        if (start, frames, stride) != (0, None, 1):
            raise TypeError(f"start, frames and stride apply to VIDEO values, not {kind.upper()}")
        if kind == "image":
            data = self.read()
            self.last_bytes_read = len(data)
            return decode_image(data, size=size)
        if size is not None:
            raise TypeError(f"size applies to VIDEO and IMAGE values, not {kind.upper()}")
        if kind == "tensor":
            return self.numpy()
        raise TypeError(f"a {kind.upper()} value has no decoder: use bytes(), open() or numpy()")

    def numpy(self) -> np.ndarray:
        """The stored value as a read-only array, without copying where the layout allows.

        TENSOR: its array (dtype and shape from the stored ``.npy`` header), a view of
        the memory-mapped pack when the store is local and the data is aligned for its
        dtype, else of the bytes read (copied only to align). Any other kind: its
        encoded bytes as a 1-D uint8 array, e.g. for a GPU video decoder.
        """
        raw = self._raw()
        return _npy_view(raw) if self.kind == "tensor" else raw

    def _raw(self) -> np.ndarray:
        """The value's bytes as a read-only uint8 array: inline, mapped, or read."""
        data = self._ref.get("data")
        if data is not None:
            self.last_bytes_read = len(data)
            return np.frombuffer(data, dtype=np.uint8)
        key = pack_key(self._ref["pack"])
        path = self._store.local_path(key)
        if path is None:
            data = self.read()
            self.last_bytes_read = len(data)
            return np.frombuffer(data, dtype=np.uint8)
        self.last_bytes_read = 0
        m, base, n = _pack_map(key, path), int(self._ref["offset"]), len(self)
        if base + n > len(m):
            raise checksum.damaged(key, f"the blob value at offset {base} ({n} bytes) ends past the pack's "
                                        f"{len(m)} bytes (the pack is truncated)")
        raw = np.frombuffer(m, dtype=np.uint8, count=n, offset=base)
        checksum.check_value(key, base, raw, n, self._ref.get("sums"))
        return raw

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


def _pack_map(key: str, path: str) -> mmap.mmap:
    m = _PACK_MAPS.get(path)
    if m is None:
        try:
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped: a pack holds at least one value
            raise checksum.damaged(key, "the blob pack is empty (truncated)") from None
        except OSError as exc:
            raise errors.StorageError(f"cannot map {key}: {exc}") from None
        _PACK_MAPS[path] = m
    return m


def _npy_view(raw: np.ndarray) -> np.ndarray:
    """The array an ``.npy`` image holds, as a read-only view of ``raw`` where possible."""
    head = bytes(raw[:12])
    if len(head) < 12 or not head.startswith(b"\x93NUMPY") or head[6] not in (1, 2):
        raise errors.DataError("TENSOR value is not a stored .npy array")
    # Header length: 2 bytes after the magic in format 1.0, 4 bytes in 2.0.
    width = 2 if head[6] == 1 else 4
    end = 8 + width + int.from_bytes(head[8: 8 + width], "little")
    fp = io.BytesIO(bytes(raw[:end]))  # the header only: the data is never copied here
    try:
        version = np.lib.format.read_magic(fp)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fp)
    except ValueError as exc:
        raise errors.DataError(f"TENSOR value has a bad .npy header: {exc}") from None
    if dtype.hasobject:
        raise errors.DataError("TENSOR value holds Python objects, which are never loaded")
    offset = fp.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > len(raw):
        raise errors.DataError(f"TENSOR value is truncated: {len(raw) - offset} of {nbytes} bytes")
    arr = raw[offset: offset + nbytes].view(dtype).reshape(shape, order="F" if fortran else "C")
    if not arr.flags.aligned:  # numpy allows unaligned views, but every operation on them is slow
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


_HELD_CHUNKS = 4  # a decoder goes back and forth between a few places (header, index, data)


class BlobReader(io.RawIOBase):
    """A seekable, read-only file over a blob (PyAV, Pillow and numpy can read it).

    Reads fetch whole checksum blocks of the value and verify them (format/checksum.py);
    the last blocks fetched serve the reads that fall inside them. ``bytes_read`` counts
    the bytes fetched from the store."""

    def __init__(self, blob: Blob):
        super().__init__()
        self._blob = blob
        self._pos = 0
        self.bytes_read = 0
        self._chunks: list[tuple[int, bytes]] = []  # (start, bytes): the last verified blocks read

    def _read_at(self, pos: int, size: int) -> bytes:
        """Bytes of the value from the last verified blocks when they hold them (a decoder
        reads a clip in small pieces: each block is fetched and checked once)."""
        if self._blob._ref.get("data") is not None:
            data = self._blob.read(pos, size)
            self.bytes_read += len(data)
            return data
        size = max(0, min(size, len(self._blob) - pos))
        if size == 0:
            return b""
        held = next((c for c in self._chunks if c[0] <= pos < c[0] + len(c[1])), None)
        if held is None:
            start, chunk = self._blob._fetch(pos, size)
            self.bytes_read += len(chunk)
        else:
            self._chunks.remove(held)
            start, chunk = held
            end = start + len(chunk)
            if pos + size > end:  # reading on: fetch only the blocks after those held
                at, more = self._blob._fetch(end, pos + size - end)
                assert at == end  # held blocks end on a block edge
                start, chunk = pos, chunk[pos - start :] + more
                self.bytes_read += len(more)
        self._chunks.append((start, chunk))
        del self._chunks[:-_HELD_CHUNKS]
        return chunk[pos - start : pos - start + size]

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
        data = self._read_at(self._pos, n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, len(self._blob) - self._pos)
        data = self._read_at(min(self._pos, len(self._blob)), size)
        self._pos += len(data)
        return data
