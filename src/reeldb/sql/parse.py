"""Postgres parsing (pglast, the real Postgres grammar) and small AST helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pglast.stream
from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, MinMaxOp, SubLinkType
from pglast.parser import ParseError
from pglast.stream import RawStream

from .. import errors

# Words DuckDB reserves that Postgres does not: a column named "at" or "semi" is plain in
# Postgres and must be quoted for DuckDB, so the deparser quotes them too.
DUCKDB_ONLY_KEYWORDS = frozenset((
    "anti", "asof", "at", "columns", "describe", "glob", "lambda", "map", "none", "pivot",
    "pivot_longer", "pivot_wider", "positional", "qualify", "semi", "show", "struct",
    "summarize", "tuple", "unpack", "unpivot",
))
_pg_quote = pglast.stream.maybe_double_quote_name


def _quote_for_duckdb(name: str) -> str:
    if name in DUCKDB_ONLY_KEYWORDS:
        return f'"{name}"'
    return _pg_quote(name)


pglast.stream.maybe_double_quote_name = _quote_for_duckdb


def parse(sql: str) -> list[ast.RawStmt]:
    try:
        return list(parse_sql(sql))
    except ParseError as e:
        msg = str(e.args[0]) if e.args else str(e)
        loc = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], int) else None
        pos = loc + 1 if loc is not None else None  # Postgres counts characters from 1
        raise errors.SyntaxError(msg, position=pos) from None


def deparse(node: ast.Node) -> str:
    return RawStream()(node)


def transform(node: Any, fn: Callable[[Any], Any]) -> Any:
    """Rewrite a tree top-down: ``fn`` returns a replacement node (not descended into)
    or None to keep the node and descend into its children."""
    if isinstance(node, tuple | list):
        return type(node)(transform(n, fn) for n in node)
    if not isinstance(node, ast.Node):
        return node
    rep = fn(node)
    if rep is not None:
        return rep
    for slot in node.__slots__:
        val = getattr(node, slot, None)
        if isinstance(val, ast.Node | tuple | list):
            setattr(node, slot, transform(val, fn))
    return node


def walk(node: Any):
    """Every node under ``node`` (pre-order)."""
    if isinstance(node, tuple | list):
        for n in node:
            yield from walk(n)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for slot in node.__slots__:
        val = getattr(node, slot, None)
        if isinstance(val, ast.Node | tuple | list):
            yield from walk(val)


def name_of(names: tuple) -> str:
    """Last part of a qualified name (funcname, type name, operator)."""
    return names[-1].sval.lower() if names else ""


def const_value(node: ast.Node) -> Any:
    """Python value of an A_Const (None for NULL)."""
    if node.isnull:
        return None
    return literal(node.val)


def literal(v: ast.Node) -> Any:
    """Python value of a value node (Integer, Float, Boolean, String, BitString)."""
    if isinstance(v, ast.Integer):
        return v.ival
    if isinstance(v, ast.Float):
        s = v.fval
        return float(s) if any(c in s for c in ".eE") else int(s)
    if isinstance(v, ast.Boolean):
        return v.boolval
    if isinstance(v, ast.String):
        return v.sval
    if isinstance(v, ast.BitString):
        return v.bsval
    raise errors.FeatureNotSupported(f"constant {v!r}")


def colref(*names: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=tuple(ast.String(sval=n) for n in names))


def func(name: str, *args: ast.Node) -> ast.FuncCall:
    return ast.FuncCall(funcname=(ast.String(sval=name),), args=args)


def cast(node: ast.Node, typename: str, array_bounds: tuple[int, ...] = ()) -> ast.TypeCast:
    tn = ast.TypeName(names=(ast.String(sval=typename),), typemod=-1,
                      arrayBounds=tuple(ast.Integer(ival=b) for b in array_bounds) or None)
    return ast.TypeCast(arg=node, typeName=tn)


def expand_stars(targets: tuple, alias: str, names: list[str]) -> list[ast.ResTarget]:
    """``*`` and ``alias.*`` -> the table's own columns, so internal relations never leak
    their hidden columns into a result."""
    out: list[ast.ResTarget] = []
    for rt in targets:
        v = rt.val
        if isinstance(v, ast.ColumnRef) and isinstance(v.fields[-1], ast.A_Star):
            out.extend(ast.ResTarget(name=n, val=colref(alias, n)) for n in names)
        else:
            out.append(rt)
    return out


def name_columns(stmt: Any) -> None:
    """Name unnamed result columns as Postgres does (``count``, ``?column?``), not as
    DuckDB would (the expression's text): clients read the names, of subqueries too."""
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.targetList:
            for rt in node.targetList:
                if rt.name is None and not isinstance(rt.val, ast.ColumnRef):
                    rt.name = column_name(rt.val) or "?column?"


def expand_set_returning(stmt: Any) -> None:
    """``SELECT generate_series(1, 3)`` gives three rows in Postgres and one list in
    DuckDB: in a select list it is unnested (named first, so the name stays)."""
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.targetList:
            for rt in node.targetList:
                if isinstance(rt.val, ast.FuncCall) and rt.val.funcname[-1].sval.lower() == "generate_series":
                    rt.val = func("unnest", rt.val)


def column_name(node: Any) -> str | None:
    """Postgres' FigureColname: the name an expression's result column gets."""
    if isinstance(node, ast.ColumnRef):
        last = node.fields[-1]
        return last.sval if isinstance(last, ast.String) else None
    if isinstance(node, ast.FuncCall):
        return node.funcname[-1].sval
    if isinstance(node, ast.TypeCast):
        return column_name(node.arg) or node.typeName.names[-1].sval
    if isinstance(node, ast.CollateClause):
        return column_name(node.arg)
    if isinstance(node, ast.A_Indirection):
        last = node.indirection[-1]
        return last.sval if isinstance(last, ast.String) else column_name(node.arg)
    if isinstance(node, ast.SubLink):
        if node.subLinkType == SubLinkType.EXISTS_SUBLINK:
            return "exists"
        if node.subLinkType == SubLinkType.ARRAY_SUBLINK:
            return "array"
        if node.subLinkType == SubLinkType.EXPR_SUBLINK and isinstance(node.subselect, ast.SelectStmt) \
                and node.subselect.targetList:
            rt = node.subselect.targetList[0]
            return rt.name or column_name(rt.val)
        return None
    if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
        return "nullif"
    if isinstance(node, ast.SQLValueFunction):
        return node.op.name.removeprefix("SVFOP_").removesuffix("_N").lower()
    named = {ast.CaseExpr: "case", ast.A_ArrayExpr: "array", ast.RowExpr: "row", ast.CoalesceExpr: "coalesce",
             ast.GroupingFunc: "grouping"}
    for cls, name in named.items():
        if isinstance(node, cls):
            return name
    if isinstance(node, ast.MinMaxExpr):
        return "greatest" if node.op == MinMaxOp.IS_GREATEST else "least"
    return None
