"""numpy -> Arrow without copies, and matrix columns as nested fixed-size lists.

pa.array() imports pandas on first use (~250 ms): arrays on the read path are built from
buffers instead, which keeps a cold start's first query free of it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .types import ColumnType


def int64_array(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def float32_array(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.Array.from_buffers(pa.float32(), len(values), [None, pa.py_buffer(values)])


def bool_array(values: np.ndarray) -> pa.Array:
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


_ARROW_OF_NP = {"float32": pa.float32(), "float64": pa.float64(), "int8": pa.int8(), "int16": pa.int16(),
                "int32": pa.int32(), "int64": pa.int64(), "uint8": pa.uint8(), "bool": pa.bool_()}


def _shown_dtype(ctype: ColumnType) -> str:
    return "float32" if ctype.dtype == "float16" else str(ctype.dtype)


def matrix_arrow_type(ctype: ColumnType) -> pa.DataType:
    t = _ARROW_OF_NP[_shown_dtype(ctype)]
    for d in reversed(ctype.row_shape):
        t = pa.list_(t, d)
    return t


def matrix_array(m: np.ndarray, ctype: ColumnType, validity: pa.Array | None = None) -> pa.Array:
    """(rows, *shape) numpy -> nested FixedSizeList, zero-copy for float32/ints."""
    shown = _shown_dtype(ctype)
    if m.dtype != np.dtype(shown):
        m = m.astype(shown)  # float16 -> float32: DuckDB has no half floats
    if m.dtype == np.bool_:
        values: pa.Array = pa.array(np.ascontiguousarray(m).reshape(-1))
    else:
        flat = np.ascontiguousarray(m).reshape(-1)
        values = pa.Array.from_buffers(_ARROW_OF_NP[shown], len(flat), [None, pa.py_buffer(flat)])
    arr: pa.Array = values
    dims = list(ctype.row_shape)
    for i, d in enumerate(reversed(dims)):
        outer = i == len(dims) - 1
        mask = None
        if outer and validity is not None and validity.false_count:
            mask = pc.invert(validity)
        arr = pa.FixedSizeListArray.from_arrays(arr, d, mask=mask)
    return arr


def nested_lists(t: pa.DataType) -> bool:
    """A fixed-size list of fixed-size lists: a TENSOR column of two or more dimensions."""
    return pa.types.is_fixed_size_list(t) and pa.types.is_fixed_size_list(t.value_type)


def unsliced(arr: pa.Array) -> pa.Array:
    """``arr`` with offset 0 at every level of its nested fixed-size lists (a copy of just
    its rows); other arrays unchanged.

    pyarrow 26's take and filter kernels read the wrong child rows of a *sliced* fixed-size
    list of fixed-size lists (a TENSOR with two or more dimensions): garbage values at
    two and three dimensions, a crash at four. A slice goes through here before any take,
    filter or registration with DuckDB."""
    if not nested_lists(arr.type):
        return arr
    sizes, leaf = [], arr
    while pa.types.is_fixed_size_list(leaf.type):
        d = leaf.type.list_size
        sizes.append(d)
        leaf = leaf.values.slice(leaf.offset * d, len(leaf) * d)  # this slice's child rows, nulls' too
    out = pa.concat_arrays([leaf])  # fresh buffers, offset 0
    mask = arr.is_null() if arr.null_count else None
    for i, d in enumerate(reversed(sizes)):
        out = pa.FixedSizeListArray.from_arrays(out, d, mask=mask if i == len(sizes) - 1 else None)
    return out
