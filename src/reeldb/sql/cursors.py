"""DECLARE / FETCH / MOVE / CLOSE: SQL cursors, as psycopg2's named cursors use them.

A cursor's query runs once, at DECLARE, against the snapshot the transaction sees (which
is what Postgres guarantees too); FETCH then hands out its rows in slices. Cursors end
with their transaction unless declared WITH HOLD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast
from pglast.enums import FetchDirection

from .. import errors
from .parse import deparse, expand_set_returning, name_columns

if TYPE_CHECKING:
    from .session import Result, Session

_SCROLL, _NO_SCROLL, _HOLD = 0x2, 0x4, 0x20
_ALL = 2**63 - 1


@dataclass
class Cursor:
    statement: str
    table: pa.Table
    description: list
    hold: bool
    backward_ok: bool
    pos: int = 0  # 0 before the first row, 1..n on a row, n + 1 after the last
    pending: bool = False  # declared in the open transaction: a rollback takes it away


def declare(s: Session, stmt: ast.DeclareCursorStmt, params: list[Any]) -> Result:
    from .session import Result

    hold = bool(stmt.options & _HOLD)
    if s.txn is None and not hold:
        raise errors.NoActiveSqlTransaction("DECLARE CURSOR can only be used in transaction blocks")
    if stmt.portalname in s.cursors:
        raise errors.DuplicateCursor(f'cursor "{stmt.portalname}" already exists')
    if not isinstance(stmt.query, ast.SelectStmt):
        raise errors.FeatureNotSupported("a cursor's query must be a SELECT")
    name_columns(stmt.query)
    expand_set_returning(stmt.query)
    table, desc = s.run_select(stmt.query, params)
    s.cursors[stmt.portalname] = Cursor(deparse(stmt), table, desc, hold, not stmt.options & _NO_SCROLL, pending=s.txn is not None)
    return Result(status="DECLARE CURSOR")


def fetch(s: Session, stmt: ast.FetchStmt) -> Result:
    from .session import Result

    name = stmt.portalname
    cur = s.cursors.get(name)
    if cur is None:
        raise errors.InvalidCursorName(f'cursor "{name}" does not exist')
    n = cur.table.num_rows
    d, count = stmt.direction, stmt.howMany
    if d in (FetchDirection.FETCH_FORWARD, FetchDirection.FETCH_BACKWARD) and count < 0:  # MOVE -1: back one
        d, count = (FetchDirection.FETCH_BACKWARD if d == FetchDirection.FETCH_FORWARD
                    else FetchDirection.FETCH_FORWARD), -count
    if d == FetchDirection.FETCH_FORWARD:
        rows = list(range(cur.pos + 1, min(cur.pos + count, n) + 1)) if count else [cur.pos]
        end = cur.pos + count if count else cur.pos
    elif d == FetchDirection.FETCH_BACKWARD:
        _backward(cur, name)
        rows = list(range(cur.pos - 1, max(cur.pos - count, 1) - 1, -1)) if count else [cur.pos]
        end = cur.pos - count if count else cur.pos
    else:
        target = count if d == FetchDirection.FETCH_ABSOLUTE else cur.pos + count
        if d == FetchDirection.FETCH_ABSOLUTE and count < 0:
            target = n + 1 + count
        if target < cur.pos:
            _backward(cur, name)
        rows, end = [target], target
    rows = [r for r in rows if 1 <= r <= n]
    cur.pos = max(0, min(end, n + 1))
    verb = "MOVE" if stmt.ismove else "FETCH"
    if stmt.ismove:
        return Result(rowcount=len(rows), status=f"MOVE {len(rows)}")
    out = cur.table.take(pa.array([r - 1 for r in rows], pa.int64())) if rows else cur.table.slice(0, 0)
    return Result(out, cur.description, len(rows), f"{verb} {len(rows)}")


def _backward(cur: Cursor, name: str) -> None:
    if not cur.backward_ok:
        raise errors.ObjectNotInPrerequisiteState(f'cursor "{name}" can only scan forward (declared NO SCROLL)')


def close(s: Session, stmt: ast.ClosePortalStmt) -> Result:
    from .session import Result

    if stmt.portalname is None:  # CLOSE ALL
        s.cursors.clear()
    elif s.cursors.pop(stmt.portalname, None) is None:
        raise errors.InvalidCursorName(f'cursor "{stmt.portalname}" does not exist')
    return Result(status="CLOSE CURSOR")


def end_of_transaction(s: Session, committed: bool) -> None:
    """Cursors end with their transaction; WITH HOLD ones outlive its commit only."""
    for name, c in list(s.cursors.items()):
        if not c.hold or (c.pending and not committed):
            del s.cursors[name]
        else:
            c.pending = False
