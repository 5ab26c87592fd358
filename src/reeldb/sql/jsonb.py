"""jsonb's operators with PostgreSQL's semantics (format/jsonb.py), not DuckDB's JSON text.

DuckDB holds jsonb as JSON text, so its ``=`` compared spellings (``{"a":1}`` was not
``{"a": 1}``), its ``||`` concatenated strings and its ORDER BY sorted text. Here, where an
operand is known to be jsonb (a jsonb column, a ``::jsonb`` cast, a jsonb function or
operator) and the other jsonb or an untyped constant / parameter:

- ``= <> < <= > >=``, ``IS [NOT] DISTINCT FROM``, ``IN (...)`` and ORDER BY compare the
  values' sort keys (``JSONB['key']``: PostgreSQL's btree order, equal iff ``=``);
- ``@>`` / ``<@`` call ``JSONB['contains']``, ``||`` ``JSONB['concat']``, ``-`` a key or an
  index ``JSONB['delete_*']``, ``?`` / ``?|`` / ``?&`` ``JSONB['exists*']``, ``->`` / ``->>``
  / ``#>`` / ``#>>`` ``JSONB['get*']`` (DuckDB's printed 1.50 as 1.5);
- ``x::jsonb`` is read by PostgreSQL's rules into its canonical text, ``j::text`` prints it.

What would still be answered by text is refused (0A000): ``IN (subquery)`` / ``= ANY`` of
jsonb, GROUP BY / DISTINCT of jsonb, and ORDER BY of (or ``=`` between a constant and) a
name whose type shows only when running, where it turns out to be jsonb. ``min``/``max`` of jsonb and the
comparison of two ``json`` values are 42883, as in PostgreSQL.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, SubLinkType

from .. import errors
from ..engine.engine import JSONB
from ..format.arrays import parse_array_literal
from .citext import TextParameter
from .parse import cast, func, name_of

_COMPARE = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})
_RETURNS_JSONB = frozenset({"to_jsonb", "jsonb_build_object", "jsonb_build_array", "jsonb_agg", "jsonb_object_agg",
                            "jsonb_set", "jsonb_insert", "jsonb_strip_nulls", "jsonb_extract_path",
                            "jsonb_path_query_first", "jsonb_set_lax", "jsonb_object", "jsonb_array_elements"})
_RETURNS_JSON = frozenset({"to_json", "json_build_object", "json_build_array", "json_agg", "json_object_agg",
                           "json_extract_path", "json_object", "array_to_json", "row_to_json", "json_strip_nulls"})


def is_jsonb(node: Any, kinds: dict[str, str | None]) -> bool:
    """Is the expression's value jsonb (not json, not unknown)? Parameters are not looked at."""
    return JsonbRewrite(kinds, lambda p: None, lambda n: n).kind(node) == "jsonb"


class JsonbRewrite:
    """One statement's jsonb rewrites. ``kinds``: column name -> type kind; ``param``: a
    ParamRef's bound value; ``recurse``: the statement's rewriter, for operands."""

    def __init__(self, kinds: dict[str, str | None], param: Callable[[ast.ParamRef], Any],
                 recurse: Callable[[Any], Any]):
        self.kinds = kinds
        self.param = param
        self.recurse = recurse
        self.sorted: set[int] = set()  # the ORDER BY items _output_order resolved

    # -- types of operands -------------------------------------------------------------------
    def kind(self, node: Any) -> str | None:
        """'jsonb', 'json', 'unknown' (an untyped constant or parameter) or None (another type)."""
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            k = self.kinds.get(node.fields[-1].sval)
            return k if k in ("json", "jsonb") else None
        if isinstance(node, ast.TypeCast):
            name = name_of(node.typeName.names)
            return name if name in ("json", "jsonb") and not node.typeName.arrayBounds else None
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.name and node.lexpr is not None:
            op = name_of(node.name)
            left = self.kind(node.lexpr)
            if op in ("->", "#>") and left in ("json", "jsonb"):
                return left
            if op in ("||", "-") and "jsonb" in (left, self.kind(node.rexpr) if op == "||" else None):
                return "jsonb"
            return None
        if isinstance(node, ast.FuncCall):
            name = name_of(node.funcname)
            return "jsonb" if name in _RETURNS_JSONB else "json" if name in _RETURNS_JSON else None
        if isinstance(node, ast.A_Const):
            return "unknown" if node.isnull or isinstance(node.val, ast.String) else None
        if isinstance(node, ast.ParamRef):
            v = self.param(node)
            if isinstance(v, TextParameter):  # the client typed it text
                return None
            return "unknown" if v is None or isinstance(v, str | dict | list) else None
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
            return self.kind(node.lexpr)
        if isinstance(node, ast.CoalesceExpr | ast.MinMaxExpr):
            return self._common(node.args)
        if isinstance(node, ast.CaseExpr):
            return self._common([w.result for w in node.args or ()] + [node.defresult])
        if isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.EXPR_SUBLINK \
                and isinstance(node.subselect, ast.SelectStmt) and node.subselect.targetList \
                and len(node.subselect.targetList) == 1:
            return self.kind(node.subselect.targetList[0].val)
        return None

    def _common(self, nodes: list[Any]) -> str | None:
        """The type PostgreSQL resolves for COALESCE / CASE / GREATEST arguments: jsonb (or
        json) when one is and the others are that or untyped constants (NULL included)."""
        kinds = {self.kind(n) if n is not None else "unknown" for n in nodes}
        for k in ("jsonb", "json"):
            if k in kinds and kinds <= {k, "unknown"}:
                return k
        return "unknown" if kinds == {"unknown"} else None

    def _jsonb_pair(self, left: Any, right: Any) -> bool:
        kinds = (self.kind(left), self.kind(right))
        return "jsonb" in kinds and all(k in ("jsonb", "unknown") for k in kinds)

    def _json_pair(self, left: Any, right: Any) -> bool:
        kinds = (self.kind(left), self.kind(right))
        return "json" in kinds and all(k in ("json", "unknown") for k in kinds)

    def operand(self, node: Any) -> Any:
        """An operand as DuckDB JSON: a constant or parameter read by jsonb's rules now."""
        if isinstance(node, ast.A_Const):
            return func(JSONB["in"], node)
        if isinstance(node, ast.ParamRef):
            return func(JSONB["in"], cast(node, "json"))
        return self.recurse(node)

    def key(self, node: Any) -> Any:
        return func(JSONB["key"], self.operand(node))

    # -- dispatch ----------------------------------------------------------------------------
    def visit(self, node: Any) -> Any:
        """The rewrite of ``node``, or None where it is no jsonb operation."""
        if isinstance(node, ast.A_Expr):
            return self.expression(node)
        if isinstance(node, ast.SortBy) and id(node) not in self.sorted and self.kind(node.node) == "jsonb":
            return ast.SortBy(node=self.key(node.node), sortby_dir=node.sortby_dir, sortby_nulls=node.sortby_nulls,
                              useOp=node.useOp)
        if isinstance(node, ast.SelectStmt):
            self._check_grouping(node)
            if node.sortClause:
                self._output_order(node)
            return None
        if isinstance(node, ast.SubLink) and node.testexpr is not None and self.kind(node.testexpr) == "jsonb":
            raise errors.FeatureNotSupported("comparing jsonb with a subquery's or an array's values is not supported: "
                                             "compare with each value")
        if isinstance(node, ast.FuncCall) and name_of(node.funcname) in ("min", "max") and node.args \
                and len(node.args) == 1 and self.kind(node.args[0]) in ("json", "jsonb"):
            raise errors.UndefinedFunction(f"function {name_of(node.funcname)}({self.kind(node.args[0])}) does not exist")
        if isinstance(node, ast.TypeCast) and not node.typeName.arrayBounds:
            return self.type_cast(node)
        if isinstance(node, ast.CoalesceExpr | ast.CaseExpr | ast.MinMaxExpr) and self.kind(node) == "jsonb":
            return self.branches(node)
        return None

    def branches(self, node: ast.CoalesceExpr | ast.CaseExpr | ast.MinMaxExpr) -> Any:
        """COALESCE / CASE of jsonb: their untyped constants read as jsonb, as PostgreSQL
        resolves them (``'{"a":1,"a":2}'`` is ``{"a": 2}``). GREATEST / LEAST would compare
        texts: refused."""
        if isinstance(node, ast.MinMaxExpr):
            raise errors.FeatureNotSupported("GREATEST and LEAST of jsonb values are not supported: "
                                             "compare them with ORDER BY, or compare a field")
        if isinstance(node, ast.CoalesceExpr):
            return ast.CoalesceExpr(args=tuple(self.operand(a) for a in node.args))
        whens = tuple(ast.CaseWhen(expr=self.recurse(w.expr), result=self.operand(w.result)) for w in node.args)
        return ast.CaseExpr(arg=self.recurse(node.arg) if node.arg is not None else None, args=whens,
                            defresult=self.operand(node.defresult) if node.defresult is not None else None)

    def type_cast(self, node: ast.TypeCast) -> Any:
        target = name_of(node.typeName.names)
        if target == "jsonb":  # read by jsonb's rules: 1e2 is 100, keys ordered, duplicates last-wins
            if self.kind(node.arg) == "jsonb":
                return self.recurse(node.arg)
            if isinstance(node.arg, ast.ParamRef | ast.A_Const):
                return self.operand(node.arg)
            return func(JSONB["in"], cast(self.recurse(node.arg), "varchar"))
        if target in ("text", "varchar") and self.kind(node.arg) == "jsonb":
            return func(JSONB["out"], self.recurse(node.arg))
        return None

    def expression(self, node: ast.A_Expr) -> Any:
        if not node.name or node.lexpr is None:
            return None
        op = name_of(node.name)
        left, right = node.lexpr, node.rexpr
        if node.kind == A_Expr_Kind.AEXPR_IN and isinstance(right, list | tuple) and self.kind(left) == "jsonb" \
                and all(self.kind(x) in ("jsonb", "unknown") for x in right):
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.key(left), rexpr=[self.key(x) for x in right])
        if node.kind in (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT) and self._jsonb_pair(left, right):
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.key(left), rexpr=self.key(right))
        if node.kind != A_Expr_Kind.AEXPR_OP:
            return None
        if op in _COMPARE | {"@>", "<@"} and self._json_pair(left, right):
            raise errors.UndefinedFunction(f"operator does not exist: json {op} json")
        if op in _COMPARE | {"@>", "<@", "||"} and "jsonb" in (self.kind(left), self.kind(right)):
            other = self.other_type(right if self.kind(left) == "jsonb" else left)
            if other in ("text", "varchar") and op == "||":  # text concatenation of jsonb's text
                return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.text_of(left), rexpr=self.text_of(right))
            if other is not None:
                types = ("jsonb", other) if self.kind(left) == "jsonb" else (other, "jsonb")
                raise errors.UndefinedFunction(f"operator does not exist: {types[0]} {op} {types[1]}")
        if op in _COMPARE and self._jsonb_pair(left, right):
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.key(left), rexpr=self.key(right))
        if op in _COMPARE and self._untyped_against_constant(left, right):
            sides = [_refused_if_json(self.recurse(x)) if isinstance(x, ast.ColumnRef) else self.recurse(x)
                     for x in (left, right)]
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=sides[0], rexpr=sides[1])
        if op in ("@>", "<@") and self._jsonb_pair(left, right):
            hay, needle = (left, right) if op == "@>" else (right, left)
            return func(JSONB["contains"], self.operand(hay), self.operand(needle))
        if op == "||" and self._jsonb_pair(left, right):
            return func(JSONB["concat"], self.operand(left), self.operand(right))
        if op == "||" and any(isinstance(x, ast.ColumnRef) and self._untyped(x) for x in (left, right)):
            # a subquery's or VALUES list's column: DuckDB would join jsonb's texts end to end
            sides = [_refused_if_json(self.recurse(x)) if isinstance(x, ast.ColumnRef) and self._untyped(x)
                     else self.recurse(x) for x in (left, right)]
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=sides[0], rexpr=sides[1])
        if self.kind(left) != "jsonb":
            return None
        if op == "-":
            return self.delete(left, right)
        if op in ("->", "->>"):
            return self.field(left, right, op == "->>")
        if op in ("#>", "#>>"):
            return func(JSONB["get_path" if op == "#>" else "get_path_text"], self.recurse(left), self.path(right))
        if op == "?":
            return func(JSONB["exists"], self.recurse(left), cast(self.recurse(right), "varchar"))
        if op in ("?|", "?&"):
            return func(JSONB["exists_any" if op == "?|" else "exists_all"], self.recurse(left),
                        cast(self.recurse(right), "varchar", (-1,)))
        return None

    def field(self, left: Any, right: Any, as_text: bool) -> Any:
        """``j -> 'key'`` / ``j -> n`` (``->>``: as text): DuckDB's would print numbers its
        own way (1.50 as 1.5)."""
        step = self._step_type(right)
        if step is None:
            raise errors.FeatureNotSupported("jsonb -> and ->> take a text key or an integer index here")
        name = ("get" if step == "text" else "get_index") + ("_text" if as_text else "")
        return func(JSONB[name], self.recurse(left), cast(self.recurse(right), "varchar" if step == "text" else "int8"))

    def path(self, node: Any) -> Any:
        """A ``#>`` path as DuckDB's VARCHAR[]: a constant is read as PostgreSQL's array text."""
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
            try:
                steps = parse_array_literal(node.val.sval)
            except ValueError as e:
                raise errors.InvalidTextRepresentation(str(e)) from None
            if any(isinstance(x, list) for x in steps):
                raise errors.FeatureNotSupported("a jsonb path of more than one dimension")
            items = [ast.A_Const(isnull=True) if x is None else ast.A_Const(val=ast.String(sval=x)) for x in steps]
            return cast(ast.A_ArrayExpr(elements=items) if items else ast.A_ArrayExpr(), "varchar", (-1,))
        return cast(self.recurse(node), "varchar", (-1,))

    def _step_type(self, node: Any) -> str | None:
        """'text' or 'int': the type of a ``->`` operand, from the statement or the parameter."""
        value: Any = None
        if isinstance(node, ast.A_Const) and not node.isnull:
            value = node.val.sval if isinstance(node.val, ast.String) else getattr(node.val, "ival", None)
        elif isinstance(node, ast.ParamRef):
            value = self.param(node)
        elif isinstance(node, ast.TypeCast) and not node.typeName.arrayBounds:
            t = name_of(node.typeName.names)
            value = "" if t in ("text", "varchar") else 0 if t in ("int", "int4", "int8", "int2", "integer") else None
        elif isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            k = self.kinds.get(node.fields[-1].sval)
            value = "" if k in ("text", "varchar") else 0 if k in ("int16", "int32", "int64") else None
        if isinstance(value, str):
            return "text"
        if isinstance(value, int) and not isinstance(value, bool):
            return "int"
        return None

    def delete(self, left: Any, right: Any) -> Any:
        """``j - 'key'`` or ``j - n``: which one is told by the right operand's type."""
        value: Any = None
        if isinstance(right, ast.A_Const) and not right.isnull:
            value = right.val.sval if isinstance(right.val, ast.String) else getattr(right.val, "ival", None)
        elif isinstance(right, ast.ParamRef):
            value = self.param(right)
        elif isinstance(right, ast.TypeCast) and not right.typeName.arrayBounds \
                and name_of(right.typeName.names) in ("text", "varchar", "int", "int4", "int8", "int2", "integer"):
            value = "" if name_of(right.typeName.names) in ("text", "varchar") else 0
        if isinstance(value, str):
            return func(JSONB["delete_key"], self.recurse(left), cast(self.recurse(right), "varchar"))
        if isinstance(value, int) and not isinstance(value, bool):
            return func(JSONB["delete_index"], self.recurse(left), cast(self.recurse(right), "int8"))
        raise errors.FeatureNotSupported("jsonb - takes a text key or an integer index here")

    def other_type(self, node: Any) -> str | None:
        """The type of a jsonb operator's other operand where it is known not to be jsonb
        (json, a cast to another type, a number, a column of another type); else None."""
        k = self.kind(node)
        if k is not None:
            return "json" if k == "json" else None
        if isinstance(node, ast.TypeCast) and not node.typeName.arrayBounds:
            return name_of(node.typeName.names)
        if isinstance(node, ast.A_Const):
            return "integer" if isinstance(node.val, ast.Integer) else "numeric" if isinstance(node.val, ast.Float) \
                else None
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return self.kinds.get(node.fields[-1].sval)
        return None

    def text_of(self, node: Any) -> Any:
        return func(JSONB["out"], self.recurse(node)) if self.kind(node) == "jsonb" else self.recurse(node)

    def _untyped_against_constant(self, left: Any, right: Any) -> bool:
        """``name = 'text'`` where the name's type is unknown before running: it may be jsonb."""
        for a, b in ((left, right), (right, left)):
            if isinstance(a, ast.ColumnRef) and self._untyped(a) and isinstance(b, ast.A_Const | ast.ParamRef) \
                    and self.kind(b) == "unknown":
                return True
        return False

    def _check_grouping(self, stmt: ast.SelectStmt) -> None:
        """GROUP BY / DISTINCT of jsonb: DuckDB would group the texts ('{"a":1}' apart from
        '{"a": 1}'), so they are refused."""
        targets = [t.val for t in stmt.targetList or () if isinstance(t, ast.ResTarget)]
        grouped = []
        if stmt.distinctClause:
            grouped = targets if stmt.distinctClause == (None,) or stmt.distinctClause == [None] \
                else list(stmt.distinctClause)
        for g in stmt.groupClause or ():
            if isinstance(g, ast.A_Const) and isinstance(g.val, ast.Integer) and 1 <= g.val.ival <= len(targets):
                g = targets[g.val.ival - 1]
            grouped.append(g)
        for g in grouped:
            if g is not None and self.kind(g) == "jsonb":
                raise errors.FeatureNotSupported("GROUP BY or DISTINCT of a jsonb value is not supported: "
                                                 "group by its text (::text) or by a field of it")

    def _untyped(self, column: ast.ColumnRef) -> bool:
        """A name no table column of the statement's has (a subquery's, a VALUES list's),
        or that two tables have with different types."""
        last = column.fields[-1]
        return isinstance(last, ast.String) and self.kinds.get(last.sval) is None

    def _output_order(self, stmt: ast.SelectStmt) -> None:
        """A query's ORDER BY items, resolved as PostgreSQL does (a position or an output
        column's name names that output column), each jsonb one sorted by its key. The items
        are replaced in place, not yet rewritten: the walk goes on into them."""
        targets = [t for t in stmt.targetList or () if isinstance(t, ast.ResTarget)]
        named: dict[str, list[Any]] = {}
        for t in targets:
            name = t.name or _implicit_name(t.val)
            if name is not None:
                named.setdefault(name, []).append(t.val)
        sorts = []
        for sort in stmt.sortClause:
            n = sort.node
            if isinstance(n, ast.A_Const) and isinstance(n.val, ast.Integer) and 1 <= n.val.ival <= len(targets):
                n = targets[n.val.ival - 1].val
            elif isinstance(n, ast.ColumnRef) and len(n.fields) == 1 and isinstance(n.fields[0], ast.String) \
                    and len(named.get(n.fields[0].sval, ())) == 1:
                n = named[n.fields[0].sval][0]
            if self.kind(n) == "jsonb":
                n = func(JSONB["key"], copy.deepcopy(n) if n is not sort.node else n)
            elif self.kind(sort.node) == "jsonb":  # the name of a text output column: its expression
                n = copy.deepcopy(n)
            elif isinstance(n, ast.ColumnRef) and self._untyped(n) and not stmt.distinctClause:
                n = _refused_if_json(copy.deepcopy(n) if n is not sort.node else n)
            else:
                n = sort.node  # untouched: DuckDB resolves positions and names as PostgreSQL
            sorts.append(sort if n is sort.node else ast.SortBy(node=n, sortby_dir=sort.sortby_dir,
                                                                 sortby_nulls=sort.sortby_nulls, useOp=sort.useOp))
        stmt.sortClause = tuple(sorts)
        self.sorted.update(id(s) for s in sorts)


def _refused_if_json(column: ast.ColumnRef) -> ast.Node:
    """``column``, where DuckDB's type of it is not JSON (known when binding); else refused:
    a name whose type the statement does not show (a VALUES list's or a subquery's column),
    which DuckDB would compare or sort as text."""
    is_json = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="="),),
                         lexpr=func("typeof", copy.deepcopy(column)), rexpr=ast.A_Const(val=ast.String(sval="JSON")))
    refuse = ast.BoolExpr(boolop=BoolExprType.AND_EXPR, args=(is_json, func(JSONB["unordered"])))
    return ast.CaseExpr(args=(ast.CaseWhen(expr=refuse, result=copy.deepcopy(column)),), defresult=column)


def _implicit_name(node: Any) -> str | None:
    """PostgreSQL's name of an unnamed output column (FigureColname), where it is a name."""
    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    if isinstance(node, ast.TypeCast):
        return _implicit_name(node.arg) or name_of(node.typeName.names)
    if isinstance(node, ast.FuncCall):
        return name_of(node.funcname)
    return None
