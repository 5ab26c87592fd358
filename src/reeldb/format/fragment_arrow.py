"""A stored fragment as one Arrow record batch, under the table's current schema: what
the engine registers with DuckDB and what the loader's filters run over. One function
for both, so a query and a dataloader see the same rows.

The batch has the fragment's ``_rowid`` (optional), each row's global position in the
table (``POSITION``: the fragment's ``start`` plus its row number), whether the row is
live (``LIVE``: false where the deletion vector deletes it; rows are never dropped, so
positions stay stable) and one column per schema column, named by its SQL name:
- scalars: the Parquet column; a column added after the fragment was written shows its
  fill value (the DEFAULT it was added with, ``fill_value``) or NULL; dropped columns are
  left out;
- vectors and fixed-shape tensors: a FixedSizeList array over the (memory-mapped) matrix
  file, no copy, NULL where its norm is NULL; plus ``norms_name(id)``: the row norms;
- blobs: the reference structs as stored (pack, offset, length): values stay lazy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from .arrow import bool_array, int64_array, matrix_array, matrix_arrow_type
from .fragment import ROWID, FragmentReader, fill_value, ncol, scol
from .manifest import Column, Fragment
from .types import MATRIX

POSITION = "__gpos"  # a row's position in the table: fragments in manifest order
LIVE = "__live"  # false for a row the fragment's deletion vector deletes


def norms_name(column_id: int) -> str:
    """The batch column of a matrix column's row norms (float32, NULL for a NULL cell)."""
    return f"__n{column_id}"


def fragment_schema(columns: Sequence[Column], *, rowid: bool = True) -> pa.Schema:
    """The schema of ``fragment_batch`` for these columns."""
    fields = [pa.field(ROWID, pa.int64())] if rowid else []
    fields += [pa.field(POSITION, pa.int64()), pa.field(LIVE, pa.bool_())]
    for c in columns:
        if c.type.storage == MATRIX:
            fields.append(pa.field(c.name, matrix_arrow_type(c.type)))
            fields.append(pa.field(norms_name(c.id), pa.float32()))
        else:
            fields.append(pa.field(c.name, c.type.arrow()))
    return pa.schema(fields)


def fragment_batch(reader: FragmentReader, table_id: str, frag: Fragment, columns: Sequence[Column], *,
                   start: int = 0, rowid: bool = True, prune: bool = False,
                   schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Fragment ``frag`` of table ``table_id`` as Arrow, with ``columns`` (a table's
    schema columns, or some of them) and its rows numbered from ``start``.

    ``prune``: read only the Parquet columns needed (a loader filter naming one column of
    a wide table), unless the reader holds the whole file already; else the whole file is
    read through the reader's cache, where later reads of the fragment (rowids, rewrites)
    find it. ``schema``: ``fragment_schema(columns, rowid=rowid)``, when the caller made
    it already (once per table, not per fragment)."""
    n = frag.rows
    mats = dict(frag.mats)
    if prune:
        names = [ROWID] if rowid else []
        names += [ncol(c.id) if c.type.storage == MATRIX else scol(c.id) for c in columns]
        t = reader.columns(table_id, frag, names)
    else:
        t = reader.table(table_id, frag)
    arrays: list[pa.Array] = [_chunk(t.column(ROWID))] if rowid else []
    arrays.append(int64_array(np.arange(start, start + n, dtype=np.int64)))
    arrays.append(bool_array(reader.live_mask(frag) if frag.ndel else np.ones(n, dtype=bool)))
    for c in columns:
        if c.type.storage == MATRIX:
            if c.id in mats:
                norms = _chunk(t.column(ncol(c.id)))
                arrays.append(matrix_array(reader.matrix(table_id, frag, c), c.type, validity=norms.is_valid()))
                arrays.append(norms)
            else:  # added after the fragment: NULL (a matrix column is never added with a DEFAULT)
                arrays.append(pa.nulls(n, matrix_arrow_type(c.type)))
                arrays.append(pa.nulls(n, pa.float32()))
        elif scol(c.id) in t.column_names:
            arrays.append(_chunk(t.column(scol(c.id))))
        elif c.fill is None:
            arrays.append(pa.nulls(n, c.type.arrow()))
        else:
            arrays.append(pa.repeat(fill_value(c), n))
    if schema is None:
        schema = fragment_schema(columns, rowid=rowid)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
