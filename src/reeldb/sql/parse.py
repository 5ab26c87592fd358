"""Postgres parsing (pglast, the real Postgres grammar) and small AST helpers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pglast.stream
from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, MinMaxOp, SubLinkType
from pglast.parser import ParseError, parse_sql_json
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


# Bounds on what one statement may cost before anything runs it (54001 beyond them).
# pglast turns libpg_query's parse tree into Python objects by C recursion, one call per
# level of the tree, with no depth check: 30,000 terms of ``1+1+...`` overflow an 8 MiB
# thread stack and kill the process; and it spends some 10 us per node. So a statement
# longer than a few KiB is first parsed to JSON by libpg_query alone (fast, and its
# output checks the C stack depth, refusing cleanly as PostgreSQL does with "stack
# depth limit exceeded"), its nodes counted, and only then turned into Python objects, on
# a thread whose stack fits any tree that passed. Last, the depth of the tree is bounded
# so that reeldb's walkers and pglast's deparser (about six Python frames a level) stay
# well inside Python's recursion limit.
MAX_STATEMENT_LENGTH = 1 << 20  # characters of one query string
MAX_NODES = 200_000  # parse-tree nodes of one query string (about 3 s of pglast's time)
MAX_DEPTH = 128  # levels of the parse tree (PostgreSQL's own bound is its max_stack_depth)
_INLINE_LENGTH = 4096  # shorter strings are parsed at once: under 1.2 MiB of C stack
_PARSE_STACK = 64 << 20  # bytes of stack for longer ones (libpg_query stops under 20,000 levels)
_STACK_LOCK = threading.Lock()  # threading.stack_size is process-wide


def check_length(sql: str) -> None:
    """Refuse a query string longer than ``MAX_STATEMENT_LENGTH`` before any parsing."""
    if len(sql) > MAX_STATEMENT_LENGTH:
        raise errors.StatementTooComplex(
            f"statement is too long: {len(sql)} characters (the limit is {MAX_STATEMENT_LENGTH}); "
            "send large values as parameters")


def parse(sql: str) -> list[ast.RawStmt]:
    """The statements of ``sql`` as pglast trees; 42601 for a syntax error, 54001 for a
    statement too long, too large or nested too deeply (never a crash)."""
    check_length(sql)
    try:
        if len(sql) <= _INLINE_LENGTH:
            stmts = parse_sql(sql)
        else:
            nodes = parse_sql_json(sql).count("{")
            if nodes > MAX_NODES:
                raise errors.StatementTooComplex(
                    f"statement is too large: {nodes} parse nodes (the limit is {MAX_NODES})")
            stmts = _parse_on_big_stack(sql)
    except ParseError as e:
        msg = str(e.args[0]) if e.args else str(e)
        loc = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], int) else None
        pos = loc + 1 if loc is not None else None  # Postgres counts characters from 1
        if msg.startswith(("memory exhausted", "stack depth limit exceeded")):
            # libpg_query's C stack check, or the grammar's own stack (10,000 parentheses)
            said = "" if msg.startswith("stack depth limit exceeded") else f" (the parser: {msg})"
            raise errors.StatementTooComplex(f"stack depth limit exceeded{said}: the statement nests too deeply "
                                             f"(the limit is {MAX_DEPTH} levels)", position=pos) from None
        raise errors.SyntaxError(msg, position=pos) from None
    depth = tree_depth(stmts)
    if depth > MAX_DEPTH:
        raise errors.StatementTooComplex(
            f"stack depth limit exceeded: the statement nests {depth} levels deep (the limit is {MAX_DEPTH})")
    return list(stmts)


def _parse_on_big_stack(sql: str) -> tuple:
    """``parse_sql`` on a thread of its own with a stack for the deepest tree libpg_query
    lets through."""
    got: list[Any] = []

    def run() -> None:
        try:
            got.append(parse_sql(sql))
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            got.append(e)

    with _STACK_LOCK:
        old = threading.stack_size(_PARSE_STACK)
        try:
            worker = threading.Thread(target=run, name="reeldb-parse", daemon=True)
            worker.start()  # returns once the thread runs, so its stack is already made
        finally:
            threading.stack_size(old)
    worker.join()
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0]


def tree_depth(node: Any) -> int:
    """Levels of nodes in a parse tree (lists do not count), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(node, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if isinstance(item, tuple | list):
            for v in item:
                if v is not None:
                    push((v, depth))
            continue
        if not isinstance(item, ast.Node):
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
        for slot in _node_slots(type(item)):
            value = getattr(item, slot, None)
            if value is not None:
                push((value, depth))
    return deepest


_NODE_SLOTS: dict[type, tuple[str, ...]] = {}


def _node_slots(cls: type) -> tuple[str, ...]:
    """The fields of a node class that can hold nodes or lists (not flags, names,
    locations): what a walk over the tree must look into."""
    got = _NODE_SLOTS.get(cls)
    if got is None:
        def holds_nodes(info: Any) -> bool:
            kinds = getattr(info, "py_type", object)
            kinds = kinds if isinstance(kinds, tuple) else (kinds,)
            return any(k in (list, tuple, object) or (isinstance(k, type) and issubclass(k, ast.Node))
                       for k in kinds)

        slots = cls.__slots__
        got = tuple(n for n in slots if holds_nodes(slots[n])) if isinstance(slots, dict) else tuple(slots)
        _NODE_SLOTS[cls] = got
    return got


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


def constant_argument(node: Any, params: list[Any] | None = None) -> tuple[bool, Any]:
    """(is it a constant, its value): a literal, a bound parameter or a negated number,
    through casts (the arguments reeldb's own functions take)."""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const):
        return True, const_value(node)
    if isinstance(node, ast.ParamRef) and params is not None and 0 < node.number <= len(params):
        return True, params[node.number - 1]
    if isinstance(node, ast.A_Expr) and node.lexpr is None and node.name and node.name[-1].sval == "-":
        ok, value = constant_argument(node.rexpr, params)
        if ok and isinstance(value, int | float) and not isinstance(value, bool):
            return True, -value
    return False, None


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


def expand_stars(targets: tuple, alias: str, names: list[str],
                 others: dict[str, list[str] | None] | None = None) -> list[ast.ResTarget]:
    """``*`` and ``alias.*`` -> the table's own columns, so internal relations never leak
    their hidden columns into a result. ``others`` are the statement's other FROM (or
    USING) items, alias -> column names (None where reeldb cannot list them): ``*`` is
    every item's columns in order, as in Postgres; ``x.*`` of no item is 42P01."""
    others = others or {}
    out: list[ast.ResTarget] = []
    for rt in targets:
        v = rt.val
        if not (isinstance(v, ast.ColumnRef) and isinstance(v.fields[-1], ast.A_Star)):
            out.append(rt)
            continue
        qualifier = v.fields[-2].sval if len(v.fields) > 1 else None
        if qualifier is None:
            items = [alias, *others]
        elif qualifier == alias or qualifier in others:
            items = [qualifier]
        else:
            raise errors.UndefinedTable(f'missing FROM-clause entry for table "{qualifier}"')
        for item in items:
            columns = names if item == alias else others[item]
            if columns is None:
                raise errors.FeatureNotSupported(
                    f'"*" over "{item}" is not supported here: name its columns')
            out.extend(ast.ResTarget(name=n, val=colref(item, n)) for n in columns)
    return out


def name_columns(stmt: Any) -> None:
    """Name unnamed result columns as Postgres does (``count``, ``?column?``), not as
    DuckDB would (the expression's text): clients read the names, of subqueries too."""
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.targetList:
            for rt in node.targetList:
                if rt.name is None and not isinstance(rt.val, ast.ColumnRef):
                    rt.name = column_name(rt.val) or "?column?"


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
