"""``DISCARD ALL | PLANS | SEQUENCES | TEMP``: a session back to a fresh one's state.

Connection pools (pgbouncer, psycopg2's ``connection.reset()``) send ``DISCARD ALL`` before
handing a connection to its next user, so whatever the last user left (settings, cursors,
prepared statements, listened channels, temporary tables) must go, or it leaks between users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums.parsenodes import DiscardMode

from .. import errors
from . import advisory, notify, sequences, settings, temp
from .result import Result

if TYPE_CHECKING:
    from .session import Session


def discard(s: Session, stmt: ast.DiscardStmt) -> Result:

    mode = DiscardMode(stmt.target)
    if mode == DiscardMode.DISCARD_ALL:
        s.leave_implicit("run DISCARD ALL")
        if s.txn is not None:
            raise errors.ActiveSqlTransaction("DISCARD ALL cannot run inside a transaction block")
        s.cursors.clear()  # CLOSE ALL
        settings.reset_all(s)  # SET SESSION AUTHORIZATION DEFAULT; RESET ALL
        for name in [n for n in s.prepared if n]:  # DEALLOCATE ALL
            del s.prepared[name]
        notify.HUB.unlisten(s, None)  # UNLISTEN *
        advisory.release_session(s)  # SELECT pg_advisory_unlock_all()
        temp.drop(s, list(s.temp_tables))  # DISCARD TEMP
        s.temp_views.clear()
        sequences.forget(s)  # DISCARD SEQUENCES
        return Result(status="DISCARD ALL")
    if mode == DiscardMode.DISCARD_TEMP:
        temp.drop(s, list(s.temp_tables))
        s.temp_views.clear()
        return Result(status="DISCARD TEMP")
    if mode == DiscardMode.DISCARD_SEQUENCES:
        sequences.forget(s)
        return Result(status="DISCARD SEQUENCES")
    assert mode == DiscardMode.DISCARD_PLANS  # reeldb keeps no plans beyond prepared statements
    return Result(status="DISCARD PLANS")
