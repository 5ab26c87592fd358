"""Blob columns (``bytea``, ``image``, ``video``) reach DuckDB as their cells' references
(format/blobs.py: inline bytes, or a pack, an offset and a length), not as their bytes. So
DuckDB would compare, sort, group and deduplicate the references: two equal clips stored
apart would compare unequal. Those uses are refused (0A000) instead of answered wrongly;
selecting, returning, copying and ``IS [NOT] NULL`` of a blob column are not affected.
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors
from .parse import name_of, walk

BLOB_KINDS = frozenset(("bytea", "image", "video"))
_COMPARED = frozenset(("=", "<>", "!=", "<", ">", "<=", ">="))
_COMPARING_KINDS = (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT, A_Expr_Kind.AEXPR_IN,
                    A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN, A_Expr_Kind.AEXPR_NULLIF)
_ORDERING_CALLS = frozenset(("min", "max"))


def check(node: Any, kinds: dict[str, str | None]) -> None:
    """Refuse (0A000) a statement that compares, sorts, groups or deduplicates a blob column
    (a column name of a blob kind in ``kinds``, the statement's tables' columns)."""
    blobs = {name: kind for name, kind in kinds.items() if kind in BLOB_KINDS}
    if not blobs:
        return

    def blob(n: Any) -> str | None:
        if isinstance(n, ast.ColumnRef) and isinstance(n.fields[-1], ast.String) and n.fields[-1].sval in blobs:
            return n.fields[-1].sval
        return None

    def refuse(what: str, column: str) -> None:
        raise errors.FeatureNotSupported(
            f'{what} of {blobs[column]} column "{column}" is not supported: reeldb stores its values by '
            "reference and cannot compare their bytes in SQL")

    for n in walk(node):
        if isinstance(n, ast.A_Expr):
            comparing = n.kind in _COMPARING_KINDS or (
                n.kind == A_Expr_Kind.AEXPR_OP and n.name and name_of(n.name) in _COMPARED)
            if comparing:
                operands = [n.lexpr, *(n.rexpr if isinstance(n.rexpr, tuple | list) else (n.rexpr,))]
                for x in operands:
                    if blob(x):
                        refuse("comparing values", blob(x))
        elif isinstance(n, ast.SortBy) and blob(n.node):
            refuse("ORDER BY", blob(n.node))
        elif isinstance(n, ast.SelectStmt):
            for g in n.groupClause or ():
                if blob(g):
                    refuse("GROUP BY", blob(g))
            distinct = list(n.distinctClause or ())
            if distinct == [None]:  # plain DISTINCT: the select list's columns
                distinct = [rt.val for rt in n.targetList or () if isinstance(rt, ast.ResTarget)]
            for d in distinct:
                if blob(d):
                    refuse("DISTINCT", blob(d))
        elif isinstance(n, ast.FuncCall) and (n.agg_distinct or name_of(n.funcname) in _ORDERING_CALLS):
            for a in n.args or ():
                if blob(a):
                    refuse(f"{name_of(n.funcname)}({'DISTINCT ' if n.agg_distinct else ''}...)", blob(a))
        elif isinstance(n, ast.MinMaxExpr):
            for a in n.args or ():
                if blob(a):
                    refuse("GREATEST / LEAST", blob(a))
        elif isinstance(n, ast.JoinExpr) and n.usingClause:
            for u in n.usingClause:
                if isinstance(u, ast.String) and u.sval in blobs:
                    refuse("JOIN USING", u.sval)
