"""Prepared statements of a session and ``DEALLOCATE``.

The wire protocol's Parse makes them (psycopg 3 prepares a statement it has run a few
times); ``DEALLOCATE name | ALL`` drops them, as psycopg does after a DROP or a
ROLLBACK; ``pg_prepared_statements`` lists them. SQL ``PREPARE`` / ``EXECUTE`` are not
supported, so every one comes from the protocol.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pglast import ast

from .. import errors
from .result import Result

if TYPE_CHECKING:
    from .session import Session


@dataclass
class PreparedStatement:
    query: str
    param_oids: list[int]
    prepare_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    batchable: bool | None = None  # pipelined rows go as one INSERT (the server asks the session once)


def deallocate(s: Session, stmt: ast.DeallocateStmt) -> Result:
    """DEALLOCATE [PREPARE] name | ALL. ALL keeps the unnamed statement, as Postgres does."""

    if stmt.isall or stmt.name is None:
        for name in [n for n in s.prepared if n]:
            del s.prepared[name]
    elif not stmt.name or stmt.name not in s.prepared:
        raise errors.Error(f'prepared statement "{stmt.name}" does not exist', sqlstate="26000")
    else:
        del s.prepared[stmt.name]
    return Result(status="DEALLOCATE ALL" if stmt.isall else "DEALLOCATE")
