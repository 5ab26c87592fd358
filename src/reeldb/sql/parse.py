"""Postgres parsing (pglast, the real Postgres grammar) and small AST helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pglast.stream
from pglast import ast, parse_sql
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
    v = node.val
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
