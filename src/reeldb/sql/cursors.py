"""DECLARE / FETCH / MOVE / CLOSE: SQL cursors, as psycopg2's named cursors use them.

A cursor's query runs once, at DECLARE, against the snapshot the transaction sees (which
is what Postgres guarantees too); FETCH then hands out its rows. A cursor that may only
scan forward (the default, or NO SCROLL) streams them from DuckDB as they are fetched, a
batch in memory; a SCROLL cursor holds its rows, to go back. Cursors end with their
transaction unless declared WITH HOLD (whose rest is read at COMMIT, as in Postgres).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast
from pglast.enums import FetchDirection

from .. import errors
from ..engine.engine import RESULT_BATCH_ROWS, ResultStream
from .parse import deparse, name_columns
from .result import Result
from .series import expand_set_returning

if TYPE_CHECKING:
    from .session import Session

_SCROLL, _HOLD = 0x2, 0x20  # DECLARE options (NO SCROLL, 0x4, is the default here)


@dataclass
class Cursor:
    statement: str
    result: Result  # rows not fetched yet (a SCROLL cursor's: all of them, held)
    description: list
    hold: bool
    backward_ok: bool  # declared SCROLL
    pos: int = 0  # 0 before the first row, 1..n on a row, n + 1 after the last
    pending: bool = False  # declared in the open transaction: a rollback takes it away
    current: pa.Table | None = None  # a forward cursor's row at ``pos`` (FETCH RELATIVE 0)
    rows: int | None = None  # rows of the result, once known

    @property
    def schema(self) -> pa.Schema:
        assert self.result.schema is not None
        return self.result.schema

    @property
    def table(self) -> pa.Table:
        """A SCROLL cursor's rows."""
        assert self.result.table is not None
        return self.result.table


def declare(s: Session, stmt: ast.DeclareCursorStmt, params: list[Any]) -> Result:

    hold = bool(stmt.options & _HOLD)
    if s.txn is None and not hold:
        raise errors.NoActiveSqlTransaction("DECLARE CURSOR can only be used in transaction blocks")
    if stmt.portalname in s.cursors:
        raise errors.DuplicateCursor(f'cursor "{stmt.portalname}" already exists')
    if not isinstance(stmt.query, ast.SelectStmt):
        raise errors.FeatureNotSupported("a cursor's query must be a SELECT")
    if not stmt.query.targetList and not stmt.query.valuesLists and stmt.query.larg is None:
        raise errors.FeatureNotSupported("a cursor over a SELECT of no columns is not supported: run it without one")
    name_columns(stmt.query)
    expand_set_returning(stmt.query, params)
    scroll = bool(stmt.options & _SCROLL)
    got, desc = s.run_select(stmt.query, params, stream=not scroll)
    result = Result(None, desc, stream=got) if isinstance(got, ResultStream) else Result(got, desc, got.num_rows)
    s.cursors[stmt.portalname] = Cursor(deparse(stmt), result, desc, hold, scroll, pending=s.txn is not None)
    return Result(status="DECLARE CURSOR")


def fetch(s: Session, stmt: ast.FetchStmt) -> Result:

    name = stmt.portalname
    cur = s.cursors.get(name)
    if cur is None:
        raise errors.InvalidCursorName(f'cursor "{name}" does not exist')
    d, count = stmt.direction, stmt.howMany
    if d in (FetchDirection.FETCH_FORWARD, FetchDirection.FETCH_BACKWARD) and count < 0:  # MOVE -1: back one
        d, count = (FetchDirection.FETCH_BACKWARD if d == FetchDirection.FETCH_FORWARD
                    else FetchDirection.FETCH_FORWARD), -count
    verb = "MOVE" if stmt.ismove else "FETCH"
    if not cur.backward_ok:
        out, n = _forward(s, cur, name, d, count, stmt.ismove)
        if stmt.ismove:
            return Result(rowcount=n, status=f"MOVE {n}")
        return Result(out, cur.description, out.num_rows, f"FETCH {out.num_rows}")
    n = cur.table.num_rows
    if d == FetchDirection.FETCH_FORWARD:
        rows = list(range(cur.pos + 1, min(cur.pos + count, n) + 1)) if count else [cur.pos]
        end = cur.pos + count if count else cur.pos
    elif d == FetchDirection.FETCH_BACKWARD:
        rows = list(range(cur.pos - 1, max(cur.pos - count, 1) - 1, -1)) if count else [cur.pos]
        end = cur.pos - count if count else cur.pos
    else:
        target = count if d == FetchDirection.FETCH_ABSOLUTE else cur.pos + count
        if d == FetchDirection.FETCH_ABSOLUTE and count < 0:
            target = n + 1 + count
        rows, end = [target], target
    rows = [r for r in rows if 1 <= r <= n]
    cur.pos = max(0, min(end, n + 1))
    if stmt.ismove:
        return Result(rowcount=len(rows), status=f"MOVE {len(rows)}")
    out = cur.table.take(pa.array([r - 1 for r in rows], pa.int64())) if rows else cur.table.slice(0, 0)
    return Result(out, cur.description, len(rows), f"{verb} {len(rows)}")


def _forward(s: Session, cur: Cursor, name: str, d: FetchDirection, count: int, moving: bool) -> tuple[pa.Table, int]:
    """FETCH / MOVE on a cursor that scans forward only: its rows are read from the result
    as they are passed, and going back is refused (55000), as Postgres does. Returns the
    rows fetched and how many rows the statement counts."""
    if d == FetchDirection.FETCH_FORWARD and count:
        return _advance(s, cur, count, keep=not moving)
    if d == FetchDirection.FETCH_ABSOLUTE:
        target = count if count >= 0 else -1  # from the end: Postgres goes there and back
    elif d == FetchDirection.FETCH_RELATIVE:
        target = cur.pos + count
    else:  # FORWARD 0 / BACKWARD 0: the current row; BACKWARD n
        target = cur.pos - count
    if target < cur.pos:
        _backward(cur, name)
    if target > cur.pos:
        _advance(s, cur, target - cur.pos - 1, keep=False)
        return _advance(s, cur, 1, keep=True)
    on_row = cur.current if cur.current is not None and cur.pos >= 1 else cur.schema.empty_table()
    return on_row, on_row.num_rows


def _advance(s: Session, cur: Cursor, count: int, keep: bool) -> tuple[pa.Table, int]:
    """Pass the next ``count`` rows: (those rows when ``keep``, how many were passed)."""
    parts, passed, held, cap = [], 0, 0, s.engine.result_cap
    last = None
    while passed < count and (cur.rows is None or cur.pos + passed < cur.rows):
        part = cur.result.read(min(count - passed, RESULT_BATCH_ROWS))
        if part is None:
            cur.rows = cur.pos + passed
            break
        passed += part.num_rows
        last = part
        if keep:
            held += part.nbytes
            if cap is not None and held > cap:
                limit = s.engine.sandbox.memory_limit
                raise errors.OutOfMemory(f"out of memory: the rows fetched hold more than {limit} "
                                         f"(the statement memory limit is {limit}): fetch fewer at a time")
            parts.append(part)
    if last is not None:
        cur.current = last.slice(last.num_rows - 1)
    if passed < count:  # past the last row
        cur.rows = cur.pos + passed
        cur.pos, cur.current = cur.rows + 1, None
    else:
        cur.pos += passed
    out = pa.concat_tables(parts) if parts else cur.schema.empty_table()
    return out, passed


def _backward(cur: Cursor, name: str) -> None:
    if not cur.backward_ok:
        raise errors.ObjectNotInPrerequisiteState(
            f'cursor "{name}" can only scan forward: declare it SCROLL to fetch backward')


def close(s: Session, stmt: ast.ClosePortalStmt) -> Result:

    if stmt.portalname is None:  # CLOSE ALL
        for cur in s.cursors.values():
            cur.result.close()
        s.cursors.clear()
    else:
        cur = s.cursors.pop(stmt.portalname, None)
        if cur is None:
            raise errors.InvalidCursorName(f'cursor "{stmt.portalname}" does not exist')
        cur.result.close()
    return Result(status="CLOSE CURSOR")


def end_of_transaction(s: Session, committed: bool) -> None:
    """Cursors end with their transaction; WITH HOLD ones outlive its commit only."""
    for name, c in list(s.cursors.items()):
        if not c.hold or (c.pending and not committed):
            del s.cursors[name]
            c.result.close()
        else:
            c.pending = False
    if committed and any(c.result.streaming for c in s.cursors.values()):
        s.engine.settle()  # a held cursor's rest is read now, as Postgres materialises it
