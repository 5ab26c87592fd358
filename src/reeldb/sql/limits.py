"""Bounds on single values that DuckDB builds outside its memory accounting.

DuckDB's ``memory_limit`` governs its buffer manager (sorts, joins, aggregates), not
the heap of one string: ``repeat('x', 1e9)`` builds a gigabyte in one uninterruptible
call, past any memory limit and any statement_timeout. The SQL layer therefore checks
the size such calls would build before DuckDB runs them, and refuses with 53200.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors
from ..engine.engine import VALUE_TOO_LARGE, memory_bytes

MAX_VALUE_BYTES = (1 << 30) - 1  # PostgreSQL's MaxAllocSize: no value is larger

def value_cap(limit: str | None) -> tuple[int, str]:
    """The largest value a statement may build, and how to name that bound."""
    got = memory_bytes(limit)
    if got is not None and got < MAX_VALUE_BYTES:
        return got, f"the statement memory limit is {limit}"
    return MAX_VALUE_BYTES, "no value may be larger than 1 GB"


def bound_call(node: ast.FuncCall, recurse: Callable[[Any], Any], limit: str | None) -> ast.Node | None:
    """``repeat(s, n)``, ``lpad(s, n)``, ``rpad(s, n)`` with ``n`` guarded: past the cap
    the call raises instead of building the value. None for any other call."""
    name = node.funcname[-1].sval.lower()
    args = list(node.args or ())
    if name not in ("repeat", "lpad", "rpad") or len(args) < 2 or node.agg_star or node.over is not None:
        return None
    args = [recurse(a) for a in args]
    count = args[1]
    as_double = ast.TypeCast(arg=count, typeName=ast.TypeName(names=(ast.String(sval="double"),), typemod=-1))
    size: ast.Node = as_double
    if name == "repeat":
        size = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="*"),), lexpr=as_double,
                          rexpr=_call("length", args[0]))
    cap, why = value_cap(limit)
    message = f"out of memory: {name}() {VALUE_TOO_LARGE} {cap} bytes ({why})"
    too_big = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=">"),), lexpr=size,
                         rexpr=ast.A_Const(val=ast.Integer(ival=cap)))
    guarded = ast.CaseExpr(args=(ast.CaseWhen(expr=too_big, result=_call("error", ast.A_Const(
        val=ast.String(sval=message)))),), defresult=count)
    node.args = (args[0], guarded, *args[2:])
    return node


def check_series(node: ast.FuncCall, max_rows: int) -> None:
    """A select-list ``generate_series`` is built as one list before it is unnested:
    refuse (54000) one of constant bounds longer than ``max_rows``."""
    bounds = [_number(a) for a in node.args or ()]
    if len(bounds) not in (2, 3) or any(b is None for b in bounds):
        return
    start, stop = bounds[0], bounds[1]
    step = bounds[2] if len(bounds) == 3 else 1
    if not step:
        return
    rows = (stop - start) / step + 1
    if rows > max_rows:
        raise errors.ProgramLimitExceeded(
            f"generate_series() in a select list would build {int(rows)} rows at once (the limit is "
            f"{max_rows}): put it in FROM, where its rows stream")


def _call(name: str, *args: ast.Node) -> ast.FuncCall:
    return ast.FuncCall(funcname=(ast.String(sval=name),), args=args)


def _number(node: Any) -> float | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer | ast.Float):
        return float(node.val.ival if isinstance(node.val, ast.Integer) else node.val.fval)
    return None
