"""What a statement returns: a status, notices, and its rows, held or streamed.

Its own module so that the statement handlers (``ddl``, ``dml``, ``cursors``, ...) and the
front ends can build and read results without importing the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pyarrow as pa

from .. import errors
from ..engine.engine import ResultStream


class Result:
    """What a statement returns: a status, and its rows when it returns rows, either held
    (a table) or streamed from DuckDB (``ResultStream``) as its consumer reads them, so a
    huge SELECT holds a batch in memory, not the result. ``read`` hands out rows in order;
    ``table`` is every row not read yet."""

    def __init__(self, table: pa.Table | None = None, description: list | None = None, rowcount: int = -1,
                 status: str = "", notices: list[str] | None = None, *, stream: ResultStream | None = None,
                 on_error: Callable[[], None] | None = None):
        self.description = description  # DuckDB's (name, type, ...) tuples
        self.rowcount = rowcount  # -1 for a stream until its last row is read
        self.status = status
        self.notices: list[str] = notices if notices is not None else []
        self._rest = table  # rows held, not read yet
        self._stream = stream  # rows DuckDB has not handed over yet
        self._schema = stream.schema if stream is not None else table.schema if table is not None else None
        self._read = 0  # rows handed out by ``read``
        self._on_error = on_error  # a failure while streaming fails the transaction too

    @property
    def returns_rows(self) -> bool:
        return self._schema is not None

    @property
    def streaming(self) -> bool:
        """Rows still to come from DuckDB."""
        return self._stream is not None

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema

    @property
    def table(self) -> pa.Table | None:
        """The rows not read yet, all of them (a stream's rest is read now, under the
        memory bound); None for a statement that returns no rows."""
        if self._stream is not None:
            with self._failing():
                rest = self._stream.collect()
            self._stream = None
            self._rest = rest if self._rest is None or not self._rest.num_rows \
                else pa.concat_tables([self._rest, rest])
            self._finish(self._read + self._rest.num_rows)
        if self._rest is None and self._schema is not None:  # ended by an error
            self._rest = self._schema.empty_table()
        return self._rest

    def read(self, max_rows: int) -> pa.Table | None:
        """The next rows, at most ``max_rows`` of them; None once every row is read."""
        assert self._schema is not None
        parts: list[pa.Table] = []
        want = max_rows
        while want > 0:
            if self._rest is None or not self._rest.num_rows:
                batch = self._next_batch()
                if batch is None:
                    break
                self._rest = pa.Table.from_batches([batch])
            # lengths spelled out: pyarrow does not clamp a slice of a table of no columns
            take = min(want, self._rest.num_rows)
            part = self._rest.slice(0, take)
            self._rest = self._rest.slice(take, self._rest.num_rows - take)
            parts.append(part)
            want -= part.num_rows
        if not parts:
            self._finish(self._read)
            return None
        self._read += max_rows - want
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def unread(self, rows: pa.Table) -> None:
        """Put rows handed out by ``read`` back in front of the rest."""
        rest = self._rest
        self._rest = rows if rest is None or not rest.num_rows else pa.concat_tables([rows, rest])
        self._read -= rows.num_rows

    def exhausted(self) -> bool:
        """Every row read (a stream reads its next batch ahead to know)."""
        if self._rest is not None and self._rest.num_rows:
            return False
        batch = self._next_batch()
        if batch is None:
            self._finish(self._read)
            return True
        self._rest = pa.Table.from_batches([batch])
        return False

    def restart_deadline(self, deadline: float | None) -> None:
        """statement_timeout counts afresh (a suspended portal's next Execute)."""
        if self._stream is not None:
            self._stream.deadline = deadline

    def close(self) -> None:
        """Ends the result: rows not read are dropped, DuckDB's result released."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._rest = None if self._schema is None else self._schema.empty_table()

    def __del__(self) -> None:
        if self._stream is not None:  # dropped unread: DuckDB's result goes, not read into memory
            self._stream.close()

    def _next_batch(self) -> pa.RecordBatch | None:
        if self._stream is None:
            return None
        with self._failing():
            batch = self._stream.read()
        if batch is None:
            self._stream = None
        return batch

    def _finish(self, rows: int) -> None:
        if self.rowcount < 0 and self._stream is None:
            self.rowcount = rows
            if self.status == "SELECT":
                self.status = f"SELECT {rows}"

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except errors.Error:
            self._stream = None
            if self._on_error is not None:
                self._on_error()
            raise
