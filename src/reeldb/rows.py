"""Arrow results -> Python values: vectors and tensors as numpy arrays, blobs as lazy
``Blob`` handles; the other types as their registry entry's ``py_out`` makes them (JSON as
dicts and lists, uuid as UUID, hstore as a dict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from . import types as registry
from .format.blobs import is_blob_struct
from .media.blob import Blob
from .storage import ObjectStore
from .types import records

Converter = Callable[[pa.Array], list[Any]]


def _fixed_list_depth(t: pa.DataType) -> tuple[list[int], pa.DataType] | None:
    dims = []
    while pa.types.is_fixed_size_list(t):
        dims.append(t.list_size)
        t = t.value_type
    if dims and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return dims, t
    return None


def _arrays(arr: pa.Array, dims: list[int]) -> list[Any]:
    """Nested fixed-size lists -> one numpy array per row (views of one flat buffer)."""
    n = len(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    flat: pa.Array = arr
    for d in dims:  # .values keeps the children of NULL rows, so the layout stays dense
        flat = flat.values.slice(flat.offset * d, len(flat) * d)
    if flat.null_count:  # the children of NULL rows may be NULL themselves
        import pyarrow.compute as pc

        flat = pc.fill_null(flat, pa.scalar(0, flat.type) if not pa.types.is_boolean(flat.type) else False)
    mat = flat.to_numpy(zero_copy_only=False).reshape((n, *dims))
    if valid is None:
        return list(mat)
    return [mat[i] if valid[i] else None for i in range(n)]


def _blobs(store: ObjectStore) -> Converter:
    def conv(arr: pa.Array) -> list[Any]:
        out: list[Any] = []
        for d in arr.to_pylist():
            if d is None:
                out.append(None)
            elif d["kind"] == "tensor":  # a read-only view of the mapped pack where possible
                out.append(Blob(store, d).numpy())
            else:
                out.append(Blob(store, d))
        return out

    return conv


def converters(table: pa.Table, description: list, store: ObjectStore) -> list[Converter | None]:
    """One converter per column (None: Arrow's own to_pylist is right)."""
    out: list[Converter | None] = []
    for i, field in enumerate(table.schema):
        duck = str(description[i][1]).upper() if i < len(description) else ""
        t = field.type
        fl = _fixed_list_depth(t)
        if fl is not None:
            dims = fl[0]
            out.append(lambda a, dims=dims: _arrays(a, dims))
        elif is_blob_struct(t):
            out.append(_blobs(store))
        elif duck == "HUGEINT":  # sum(int) in DuckDB; Postgres returns an integer, not a Decimal
            out.append(lambda a: [None if v is None else int(v) for v in a.to_pylist()])
        elif (info := registry.by_duck(duck)) is not None and info.py_out is not None:
            out.append(info.py_out)  # json / jsonb, uuid, bit strings, hstore, their arrays
        elif (rec := records.py_converter(str(description[i][1]) if i < len(description) else "", t)) is not None:
            out.append(rec)  # row(...) and composite values: tuples of their fields
        else:
            out.append(None)
    return out


def to_columns(table: pa.Table, description: list, store: ObjectStore) -> list[list[Any]]:
    cols = []
    for conv, col in zip(converters(table, description, store), table.columns, strict=False):
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        cols.append(conv(arr) if conv else arr.to_pylist())
    return cols


def to_rows(table: pa.Table, description: list, store: ObjectStore) -> list[tuple]:
    if table.num_columns == 0:
        return [()] * table.num_rows
    return list(zip(*to_columns(table, description, store), strict=False))
