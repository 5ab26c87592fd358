"""PEP 249 cursor over Arrow results, with DuckDB-style ``arrow()/df()/pl()/numpy()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from . import errors
from .dbapi import RowIdTypeCode
from .engine.engine import RESULT_BATCH_ROWS
from .format.blobs import is_blob_struct
from .format.fragment import ROWID
from .rows import to_columns, to_rows

if TYPE_CHECKING:
    from .connection import Connection
    from .sql.result import Result


class Cursor:
    """A statement's rows are read from its result as they are fetched: a long SELECT is
    streamed from DuckDB a batch at a time, so ``fetchone``/``fetchmany``/iteration and
    ``fetch_record_batch`` hold a batch, not the result (``fetchall``/``arrow()`` collect
    the rest, refused with 53200 past the memory limit)."""

    arraysize = 1

    def __init__(self, connection: Connection):
        self.connection = connection
        self._result: Result | None = None
        self._chunk: pa.Table | None = None  # the rows being fetched, as Arrow
        self._rows: list[tuple] = []  # ... and as Python rows
        self._pos = 0  # rows of the chunk fetched
        self.notices: list[str] = []
        self._closed = False

    # -- execution -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Any = None) -> Cursor:
        self._check()
        self._set(self.connection.session.execute(sql, params))
        return self

    def executemany(self, sql: str, seq_of_params: Any) -> Cursor:
        self._check()
        self._set(self.connection.session.executemany(sql, seq_of_params))
        return self

    def _set(self, result: Result) -> None:
        if self._result is not None:
            self._result.close()
        self._result = result
        self._chunk, self._rows, self._pos = None, [], 0
        self.notices = result.notices

    @property
    def rowcount(self) -> int:
        """Rows of the last statement; for a streamed SELECT, -1 until its last row is read."""
        return -1 if self._result is None else self._result.rowcount

    @property
    def statusmessage(self) -> str:
        return "" if self._result is None else self._result.status

    # -- PEP 249 ---------------------------------------------------------------------------------
    @property
    def description(self) -> list[tuple] | None:
        if self._result is None or not self._result.returns_rows or self._result.description is None:
            return None
        schema = self._result.schema
        return [(d[0], _type_code(d[0], d[1], schema.field(i).type if schema is not None and i < len(schema) else None),
                 None, None, None, None, None) for i, d in enumerate(self._result.description)]

    def _rows_result(self) -> Result:
        if self._result is None or not self._result.returns_rows:
            raise errors.ProgrammingError("no results to fetch: the last statement returned no rows")
        return self._result

    def _next_chunk(self, size: int) -> bool:
        """The next rows of the result into the chunk; False at the end."""
        result = self._rows_result()
        chunk = result.read(size)
        if chunk is None:
            return False
        self._chunk, self._pos = chunk, 0
        self._rows = to_rows(chunk, result.description or [], self.connection.catalog.store)
        return True

    def fetchone(self) -> tuple | None:
        self._rows_result()
        if self._pos >= len(self._rows) and not self._next_chunk(RESULT_BATCH_ROWS):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        self._rows_result()
        size = self.arraysize if size is None else size
        out: list[tuple] = []
        while len(out) < size:
            if self._pos >= len(self._rows) and not self._next_chunk(max(size - len(out), RESULT_BATCH_ROWS)):
                break
            take = self._rows[self._pos : self._pos + size - len(out)]
            self._pos += len(take)
            out += take
        return out

    def fetchall(self) -> list[tuple]:
        out = self._rows[self._pos :]
        self._chunk, self._rows, self._pos = None, [], 0
        result = self._rows_result()
        rest = result.table
        assert rest is not None
        result.read(rest.num_rows)  # read now: the cursor is at the end
        return out + to_rows(rest, result.description or [], self.connection.catalog.store)

    def __iter__(self) -> Iterator[tuple]:
        while True:
            row = self.fetchone()
            if row is None:
                return
            yield row

    def close(self) -> None:
        """Ends the cursor's result (a stream's unread rows are dropped)."""
        self._closed = True
        if self._result is not None:
            self._result.close()
        self._result, self._chunk, self._rows, self._pos = None, None, [], 0

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def _check(self) -> None:
        if self._closed:
            raise errors.InterfaceError("cursor already closed")
        self.connection._check()

    # -- columnar results --------------------------------------------------------------------
    def _unfetched(self) -> Result:
        """The result with the chunk's rows not fetched yet put back in front of it."""
        result = self._rows_result()
        if self._chunk is not None and self._pos < len(self._rows):
            result.unread(self._chunk.slice(self._pos))
        self._chunk, self._rows, self._pos = None, [], 0
        return result

    def _remaining(self) -> pa.Table:
        """Every row not fetched yet, as Arrow (a stream's rest is read now)."""
        result = self._unfetched()
        rest = result.table
        assert rest is not None
        result.read(rest.num_rows)
        return rest

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000) -> pa.RecordBatchReader:
        """The rows not fetched yet as a stream of Arrow record batches of up to
        ``rows_per_batch`` rows, each read from the result as the reader asks (as DuckDB's
        ``fetch_record_batch``): memory holds a batch, not the result."""
        result = self._unfetched()
        assert result.schema is not None

        def batches() -> Iterator[pa.RecordBatch]:
            while (part := result.read(rows_per_batch)) is not None:
                yield from part.combine_chunks().to_batches()

        return pa.RecordBatchReader.from_batches(result.schema, batches())

    def arrow(self) -> pa.Table:
        """The (remaining) result as a pyarrow Table; vectors are FixedSizeList columns."""
        return self._remaining()

    def df(self) -> Any:
        """The result as a pandas DataFrame (vectors, blobs, JSON as Python objects)."""
        import pandas as pd

        t = self._remaining()
        cols = to_columns(t, self._rows_result().description or [], self.connection.catalog.store)
        return pd.DataFrame({name: col for name, col in zip(t.column_names, cols, strict=False)},
                            columns=t.column_names)

    def pl(self) -> Any:
        """The result as a polars DataFrame (from Arrow, so vectors stay arrays)."""
        import polars as pl

        return pl.from_arrow(self._remaining())

    def numpy(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays; vector/tensor columns as one (rows, *shape) array."""
        t = self._remaining()
        cols = to_columns(t, self._rows_result().description or [], self.connection.catalog.store)
        out: dict[str, np.ndarray] = {}
        for name, col in zip(t.column_names, cols, strict=False):
            if col and all(isinstance(v, np.ndarray) for v in col) and len({v.shape for v in col}) == 1:
                out[name] = np.stack(col)
            else:
                arr = np.empty(len(col), dtype=object)
                arr[:] = col
                try:
                    out[name] = np.asarray(col) if col and not any(v is None for v in col) and \
                        not isinstance(col[0], np.ndarray | dict | list) and not hasattr(col[0], "_blob_ref") \
                        else arr
                except (ValueError, TypeError):
                    out[name] = arr
        return out


def _type_code(name: str, duck: object, arrow_type: pa.DataType | None) -> str:
    """A column's SQL type as users declare it: BYTEA, IMAGE and VIDEO cells travel as a
    struct of where their bytes are, which is reeldb's business, not the type's name. The
    hidden row id column's BIGINT is also PEP 249's ROWID."""
    if arrow_type is not None and is_blob_struct(arrow_type):
        return "BYTEA"
    if name == ROWID and str(duck) == "BIGINT":
        return RowIdTypeCode("BIGINT")
    return str(duck)
