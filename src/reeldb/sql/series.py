"""``generate_series`` as PostgreSQL has it, on DuckDB's.

Two differences: in a select list PostgreSQL's is set-returning (a row per value) where
DuckDB's is a list function (one list), so there it is unnested, anywhere in the item
(``generate_series(1, 3)::int4`` too); and of int4 bounds PostgreSQL's values are int4
where DuckDB's are always BIGINT (``date + i`` needs an int4), so there they are cast back,
in a select list and in FROM.
"""

from __future__ import annotations

from typing import Any

from pglast import ast

from .limits import check_series
from .parse import func, name_of, walk

MAX_SELECT_LIST_SERIES = 10_000_000  # rows of a select-list generate_series (built as one list)
_INT4_NAMES = {"int", "int4", "integer", "int2", "smallint"}


def _int4_valued(node: Any, params: list[Any]) -> bool:
    """Is ``node`` an int4 to PostgreSQL: an integer literal that fits, a cast to int4, or a
    parameter holding such an int (types/params.py says where the client declared int8)?"""
    if isinstance(node, ast.A_Const):
        return isinstance(node.val, ast.Integer)
    if isinstance(node, ast.TypeCast):
        return not node.typeName.arrayBounds and name_of(node.typeName.names) in _INT4_NAMES
    if isinstance(node, ast.ParamRef) and 0 < node.number <= len(params):
        v = params[node.number - 1]
        return isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31 \
            and getattr(v, "pg_oid", 23) in (21, 23)
    return False


def _int4_series(call: ast.FuncCall, params: list[Any]) -> bool:
    args = call.args or ()
    return len(args) in (2, 3) and all(_int4_valued(a, params) for a in args)


def _is_series(node: Any) -> bool:
    return isinstance(node, ast.FuncCall) and node.funcname[-1].sval.lower() == "generate_series"


def _as_int4(node: ast.Node) -> ast.Node:
    return ast.TypeCast(arg=node, typeName=ast.TypeName(names=(ast.String(sval="integer"),), typemod=-1))


def expand_set_returning(stmt: Any, params: list[Any] | None = None) -> None:
    """Each SELECT's select-list ``generate_series`` unnested (named first, so the name
    stays), and each FROM ``generate_series`` of int4 bounds typed int4."""
    params = params or []
    for node in [n for n in walk(stmt) if isinstance(n, ast.SelectStmt)]:  # not the subqueries made here
        for rt in node.targetList or ():
            if isinstance(rt, ast.ResTarget) and rt.val is not None:
                rt.val = _unnest_series(rt.val, params)
        if node.fromClause:
            node.fromClause = tuple(_typed_from(f, params) for f in node.fromClause)


def _unnest_series(node: Any, params: list[Any]) -> Any:
    """``node`` with each generate_series in it (not inside a subquery) unnested."""
    if _is_series(node):
        check_series(node, MAX_SELECT_LIST_SERIES)
        unnested = func("unnest", node)
        return _as_int4(unnested) if _int4_series(node, params) else unnested
    if isinstance(node, ast.SelectStmt | ast.SubLink | ast.RangeSubselect) or not isinstance(node, ast.Node):
        return node
    for slot in node.__slots__:
        val = getattr(node, slot, None)
        if isinstance(val, ast.Node):
            setattr(node, slot, _unnest_series(val, params))
        elif isinstance(val, tuple):
            setattr(node, slot, tuple(_unnest_series(v, params) for v in val))
    return node


def _typed_from(node: Any, params: list[Any]) -> Any:
    """A FROM ``generate_series(int4, int4[, int4])`` as a subquery of int4 values, with the
    table and column names PostgreSQL gives it (its alias names both)."""
    if isinstance(node, ast.JoinExpr):
        node.larg = _typed_from(node.larg, params)
        node.rarg = _typed_from(node.rarg, params)
        return node
    if not isinstance(node, ast.RangeFunction) or node.ordinality or node.lateral or node.coldeflist \
            or len(node.functions) != 1 or not _is_series(node.functions[0][0]) \
            or not _int4_series(node.functions[0][0], params):
        return node
    call = node.functions[0][0]
    alias = node.alias.aliasname if node.alias is not None else "generate_series"
    colnames = node.alias.colnames if node.alias is not None and node.alias.colnames else None
    column = colnames[0].sval if colnames else alias
    inner = ast.SelectStmt(
        targetList=(ast.ResTarget(name=column, val=_as_int4(ast.ColumnRef(fields=(ast.String(sval="generate_series"),)))),),
        fromClause=(ast.RangeFunction(functions=((call, None),)),), limitOption=0, op=0)
    return ast.RangeSubselect(subquery=inner, alias=ast.Alias(aliasname=alias, colnames=(ast.String(sval=column),)))
