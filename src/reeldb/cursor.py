"""PEP 249 cursor over Arrow results, with DuckDB-style ``arrow()/df()/pl()/numpy()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from . import errors
from .rows import to_columns, to_rows

if TYPE_CHECKING:
    from .connection import Connection


class Cursor:
    arraysize = 1

    def __init__(self, connection: Connection):
        self.connection = connection
        self._table: pa.Table | None = None
        self._desc: list | None = None
        self._rows: list[tuple] | None = None
        self._pos = 0
        self.rowcount = -1
        self.statusmessage = ""
        self.notices: list[str] = []
        self._closed = False

    # -- execution -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Any = None) -> Cursor:
        self._check()
        self._set(self.connection._session.execute(sql, params))
        return self

    def executemany(self, sql: str, seq_of_params: Any) -> Cursor:
        self._check()
        self._set(self.connection._session.executemany(sql, seq_of_params))
        return self

    def _set(self, result: Any) -> None:
        self._table = result.table
        self._desc = result.description
        self._rows = None
        self._pos = 0
        self.rowcount = result.rowcount
        self.statusmessage = result.status
        self.notices = result.notices

    # -- PEP 249 ---------------------------------------------------------------------------------
    @property
    def description(self) -> list[tuple] | None:
        if self._table is None or self._desc is None:
            return None
        return [(d[0], str(d[1]), None, None, None, None, None) for d in self._desc]

    def _all_rows(self) -> list[tuple]:
        if self._table is None:
            raise errors.ProgrammingError("no results to fetch: the last statement returned no rows")
        if self._rows is None:
            self._rows = to_rows(self._table, self._desc or [], self.connection.catalog.store)
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self._all_rows()
        if self._pos >= len(rows):
            return None
        self._pos += 1
        return rows[self._pos - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        rows = self._all_rows()
        size = self.arraysize if size is None else size
        out = rows[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def fetchall(self) -> list[tuple]:
        rows = self._all_rows()
        out = rows[self._pos :]
        self._pos = len(rows)
        return out

    def __iter__(self) -> Iterator[tuple]:
        while True:
            row = self.fetchone()
            if row is None:
                return
            yield row

    def close(self) -> None:
        self._closed = True
        self._table = None

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def _check(self) -> None:
        if self._closed:
            raise errors.InterfaceError("cursor already closed")
        self.connection._check()

    # -- columnar results --------------------------------------------------------------------
    def _remaining(self) -> pa.Table:
        if self._table is None:
            raise errors.ProgrammingError("no results: the last statement returned no rows")
        t = self._table.slice(self._pos)
        self._pos = self._table.num_rows
        return t

    def arrow(self) -> pa.Table:
        """The (remaining) result as a pyarrow Table; vectors are FixedSizeList columns."""
        return self._remaining()

    def df(self) -> Any:
        """The result as a pandas DataFrame (vectors, blobs, JSON as Python objects)."""
        import pandas as pd

        t = self._remaining()
        cols = to_columns(t, self._desc or [], self.connection.catalog.store)
        return pd.DataFrame({name: col for name, col in zip(t.column_names, cols, strict=False)},
                            columns=t.column_names)

    def pl(self) -> Any:
        """The result as a polars DataFrame (from Arrow, so vectors stay arrays)."""
        import polars as pl

        return pl.from_arrow(self._remaining())

    def numpy(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays; vector/tensor columns as one (rows, *shape) array."""
        t = self._remaining()
        cols = to_columns(t, self._desc or [], self.connection.catalog.store)
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
