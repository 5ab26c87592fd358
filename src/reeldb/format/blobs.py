"""Blob packs: variable-size values appended to one immutable file per write.

A cell is a ``BLOB_STRUCT``: small values inline, large ones as (pack, offset, length),
read later by byte range. Packs are never rewritten; an UPDATE or INSERT ... SELECT that
carries an existing blob keeps its reference, so no bytes are copied.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from ..storage import ObjectStore
from . import checksum
from .keys import pack_key
from .types import BLOB_FIELDS, BLOB_STRUCT, OLD_BLOB_FIELDS, ColumnType, to_stored

INLINE_LIMIT = 4096
PACK_ALIGN = 64  # each value starts 64-byte aligned, so a tensor's .npy data maps without a copy

Prober = Callable[[str, bytes], dict]


class PackWriter:
    """Collects the out-of-line values of one write and stores them as one pack."""

    def __init__(self) -> None:
        self.pack = uuid.uuid4().hex
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> tuple[str, int, int]:
        pad = -self._size % PACK_ALIGN
        if pad:
            self._parts.append(bytes(pad))
            self._size += pad
        offset = self._size
        self._parts.append(data)
        self._size += len(data)
        return self.pack, offset, len(data)

    def flush(self, store: ObjectStore) -> str | None:
        """Write the pack (if anything went out of line); returns its key."""
        if not self._parts:
            return None
        key = pack_key(self.pack)
        store.put(key, b"".join(self._parts))
        self._parts = []
        return key


def tensor_bytes(v: Any, ctype: ColumnType, column: str) -> bytes:
    """Any-shape TENSOR cells are stored as .npy, which carries dtype and shape."""
    try:
        arr = np.asarray(v)
    except (ValueError, TypeError) as e:
        raise errors.InvalidTextRepresentation(f"column {column}: not an array ({e})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise errors.InvalidTextRepresentation(f"column {column} is {ctype.sql()}: value is not numeric")
    arr = np.asarray(to_stored(ctype, column, arr), order="C")  # ascontiguousarray would make 0-d arrays 1-d
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _bytes_of(v: Any, ctype: ColumnType, column: str) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str) and ctype.kind == "bytea":
        s = v.strip()
        if s.startswith("\\x"):
            try:
                return bytes.fromhex(s[2:])
            except ValueError:
                raise errors.InvalidTextRepresentation(
                    f'invalid hexadecimal data for bytea (column {column}): "{s[:40]}"'
                ) from None
        return s.encode("utf-8")
    if isinstance(v, np.ndarray) and v.dtype == np.uint8 and ctype.kind == "bytea":
        return v.tobytes()
    raise errors.DatatypeMismatch(
        f"column {column} is of type {ctype.sql()} but the value is of type {type(v).__name__}"
        + ("; pass the encoded file's bytes" if ctype.kind in ("image", "video") else "")
    )


def check_blobs(
    ctype: ColumnType, column: str, values: list[Any], pack: PackWriter, probe: Prober | None
) -> pa.Array:
    """Python values -> BLOB_STRUCT array; media is probed (and refused) here."""
    kind = ctype.kind
    cells: list[dict | None] = []
    for v in values:
        if v is None:
            cells.append(None)
            continue
        ref = getattr(v, "_blob_ref", None)
        if ref is not None:
            if not _compatible(ref["kind"], kind):
                raise errors.DatatypeMismatch(
                    f"column {column} is of type {ctype.sql()} but the value is a stored {ref['kind']}"
                )
            cells.append(dict(ref, kind=kind))
            continue
        if kind == "tensor":
            data = tensor_bytes(v, ctype, column)
            meta = None
        else:
            data = _bytes_of(v, ctype, column)
            meta = None
            if kind in ("image", "video"):
                if probe is None:
                    raise errors.FeatureNotSupported(f"{kind.upper()} columns need the media extras")
                if not data:
                    raise errors.DataError(f"{kind.upper()} value for column {column} is empty", sqlstate="22P02")
                meta = json.dumps(probe(kind, data))
        cells.append(_cell(kind, data, meta, pack))
    return pa.array(cells, type=BLOB_STRUCT)


def _compatible(src: str, dst: str) -> bool:
    return src == dst or dst == "bytea"


def _cell(kind: str, data: bytes, meta: str | None, pack: PackWriter) -> dict:
    if len(data) <= INLINE_LIMIT:  # inline: the fragment's checksum covers it
        return {"kind": kind, "data": data, "pack": None, "offset": 0, "length": len(data), "meta": meta,
                "sums": None}
    p, off, n = pack.add(data)
    # checksums beside the reference: reading one value checks one hash of exactly its
    # bytes, and a ranged read of a long clip only the blocks it reads (format/checksum.py)
    return {"kind": kind, "data": None, "pack": p, "offset": off, "length": n, "meta": meta,
            "sums": checksum.blob_sums(data)}


def is_blob_struct(t: pa.DataType) -> bool:
    """A blob cell's struct (also as written before cells carried checksums)."""
    return pa.types.is_struct(t) and tuple(f.name for f in t) in (BLOB_FIELDS, OLD_BLOB_FIELDS)


def blobs_from_arrow(
    ctype: ColumnType, column: str, arr: pa.Array | pa.ChunkedArray, pack: PackWriter, probe: Prober | None
) -> pa.Array:
    """Arrow values -> BLOB_STRUCT. Existing blob structs keep their references."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if is_blob_struct(arr.type):
        kinds = set(arr.field("kind").drop_null().to_pylist())
        if all(_compatible(k, ctype.kind) for k in kinds):
            arr = arr.cast(BLOB_STRUCT)
            if kinds and kinds != {ctype.kind}:
                kind = pa.array([ctype.kind] * len(arr), pa.string())
                arr = pa.StructArray.from_arrays(
                    [kind] + [arr.field(n) for n in BLOB_FIELDS[1:]], fields=list(BLOB_STRUCT),
                    mask=arr.is_null(),
                )
            return arr
        if ctype.kind != "tensor":
            raise errors.DatatypeMismatch(
                f"column {column} is of type {ctype.sql()} but the values are {', '.join(sorted(kinds))}"
            )
    return check_blobs(ctype, column, _struct_rows(arr) if pa.types.is_struct(arr.type) else arr.to_pylist(),
                       pack, probe)


class _Ref:
    """A stored cell passed back in: keeps its reference instead of its bytes."""

    def __init__(self, d: dict):
        self._blob_ref = d


def _struct_rows(arr: pa.Array) -> list[Any]:
    out: list[Any] = []
    for d in arr.to_pylist():
        out.append(None if d is None else _Ref(d) if isinstance(d, dict) else d)
    return out
