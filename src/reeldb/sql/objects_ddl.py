"""CREATE / ALTER / DROP of types, sequences and comments (stub)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pglast import ast

from .. import errors

if TYPE_CHECKING:
    from .session import Result, Session

STATEMENTS: tuple = ()
DROPS: frozenset = frozenset()


def run(s: Session, stmt: ast.Node, params: list[Any]) -> Result:
    raise errors.FeatureNotSupported(f"{type(stmt).__name__} statements are not supported")


def drop(s: Session, stmt: ast.DropStmt) -> Result:
    raise errors.FeatureNotSupported("DROP")
