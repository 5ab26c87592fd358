"""citext in SQL, once ``CREATE EXTENSION citext`` made the type.

A citext column is shown to DuckDB with the ``NOCASE`` collation (engine.select_expr), so
that ``=``, ``<>``, ``<``, ``LIKE``, ``IN``, ``ORDER BY``, ``GROUP BY``, ``DISTINCT``
and joins compare through lower(), as citext's operators do. DuckDB, though, carries a collation through every expression (``lower(c)``, ``c || 'x'``, a
comparison with a text value), where PostgreSQL's citext becomes text, compared byte by
byte. This pass decides, for each use of a citext column, which PostgreSQL would do:

- kept citext: the column itself in a select list, ORDER BY, GROUP BY or DISTINCT; an
  operand of a comparison or LIKE whose other side is citext, a string constant or an
  untyped parameter (an ``unknown`` in PostgreSQL, which becomes citext; a parameter the
  client typed ``text`` makes it text's comparison, ``TextParameter``); the left side of
  LIKE / ILIKE (citext's take text patterns too); count; COALESCE, NULLIF and CASE of
  citext and untyped values (their comparisons citext's; their value text where the context
  makes it text); a UNION / INTERSECT / EXCEPT column whose branches are all citext or
  untyped;
- text everywhere else (a function's argument, ``||``, a cast to text, a comparison with
  a text-typed value): the column gets ``COLLATE "binary"``, DuckDB's byte order, which is
  reeldb's (LC_COLLATE C) text order.

``x::citext`` becomes ``x COLLATE NOCASE``; a constant (or parameter) compared with or
cast to citext is checked as a stored value is (format/citext.py: no non-ASCII letter
that has a case), a computed one as the query runs. Refused (0A000): citext's
case-insensitive regular expressions (``~``, ``regexp_*``) and ``replace``, ``split_part``,
``strpos``, ``translate``; ``pg_typeof``; ``min``, ``max``, ``GREATEST`` and ``LEAST``,
whose pick among values equal under lower() is PostgreSQL's scan order, not DuckDB's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors
from ..engine.engine import CITEXT_IN
from ..format.citext import check
from .parse import column_name, const_value, func, name_of

_COMPARISONS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">="})
# citext's LIKE operators take citext or text on the right, case-insensitive either way
_LIKES = frozenset({"~~", "!~~", "~~*", "!~~*"})
# citext's own (case-insensitive) versions of these: DuckDB's regular expressions ignore
# collations, so they are refused on a citext rather than answered case-sensitively
_REFUSED_OPERATORS = frozenset({"~", "!~", "~*", "!~*"})
_REFUSED_FUNCTIONS = frozenset({"regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
                                "regexp_split_to_table", "replace", "split_part", "strpos", "translate",
                                "min", "max", "pg_typeof"})
_LISTS = (A_Expr_Kind.AEXPR_IN, A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN)
_KEEPING_FUNCTIONS = frozenset({"count"})
# nodes whose value is their children's: a citext stays citext through them when the
# node's own context keeps it
_TRANSPARENT = (ast.CoalesceExpr, ast.CaseExpr, ast.CaseWhen)
# nodes that take no value from their children (statements, clauses, boolean logic)
_STRUCTURAL = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.ResTarget, ast.SortBy,
               ast.JoinExpr, ast.RangeSubselect, ast.WithClause, ast.CommonTableExpr, ast.BoolExpr, ast.NullTest,
               ast.RangeVar, ast.Alias, ast.ReturningClause, ast.OnConflictClause, ast.InferClause,
               ast.WindowDef, ast.LockingClause, ast.IntoClause, ast.BooleanTest, ast.ExplainStmt,
               ast.DeclareCursorStmt, ast.CopyStmt, ast.GroupingSet)


class TextParameter(str):
    """A parameter the client sent as ``text`` or ``varchar`` (its Bind type), not as an
    untyped string: compared with a citext it makes the comparison text's, as PostgreSQL
    resolves ``citext = text``."""


def _collate(node: Any, name: str) -> ast.CollateClause:
    return ast.CollateClause(arg=node, collname=(ast.String(sval=name),))


class CitextRewrite:
    """One statement's citext decisions. ``names``: columns of type citext;
    ``ambiguous``: names that are citext in one table the statement sees and not in
    another (refused where used); ``param``: a ParamRef's bound value."""

    def __init__(self, names: set[str], ambiguous: set[str], param: Callable[[ast.ParamRef], Any],
                 casts: bool):
        self.names = names
        self.ambiguous = ambiguous
        self.param = param
        self.casts = casts  # the type exists: x::citext is rewritten

    def __call__(self, tree: Any) -> Any:
        return self.fix(tree, True)

    def is_citext(self, node: Any) -> bool:
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return node.fields[-1].sval in self.names
        if isinstance(node, ast.TypeCast):
            return name_of(node.typeName.names) == "citext" and not node.typeName.arrayBounds
        if isinstance(node, ast.CollateClause):
            return name_of(node.collname) == "nocase"
        if isinstance(node, ast.CoalesceExpr):  # citext when its values are citext or untyped
            return self._all_citext(node.args)
        if isinstance(node, ast.CaseExpr):
            return self._all_citext([w.result for w in node.args or ()] + [node.defresult])
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
            return self.is_citext(node.lexpr)
        return False

    def _all_citext(self, values: list) -> bool:
        values = [v for v in values if v is not None]
        return any(self.is_citext(v) for v in values) and all(self.is_citext(v) or _untyped(v) for v in values)

    def _unknown(self, node: Any) -> bool:
        """A string constant, NULL or a text parameter: PostgreSQL reads it as citext."""
        if isinstance(node, ast.A_Const):
            if node.isnull:
                return True
            if isinstance(node.val, ast.String):
                check(node.val.sval)
                return True
            return False
        if isinstance(node, ast.ParamRef):
            v = self.param(node)
            if isinstance(v, TextParameter):
                return False
            if isinstance(v, str):
                check(v)
            return v is None or isinstance(v, str)
        return False

    def _fits(self, node: Any) -> bool:
        return self.is_citext(node) or self._unknown(node)

    def fix(self, node: Any, keep: bool) -> Any:
        if isinstance(node, list | tuple):
            return type(node)(self.fix(n, keep) for n in node)
        if not isinstance(node, ast.Node):
            return node
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            name = node.fields[-1].sval
            if name in self.ambiguous:
                raise errors.FeatureNotSupported(
                    f'column "{name}" is citext in one table and another type in another: reeldb tells citext '
                    "columns by name, so one statement cannot use both; rename one of them")
            return node if keep or name not in self.names else _collate(node, "binary")
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        if isinstance(node, ast.CollateClause) and node.location is None:  # made here: decided already
            return self._children(node, {}, True)
        if isinstance(node, ast.A_Expr) and node.kind != A_Expr_Kind.AEXPR_NULLIF:
            return self.a_expr(node)
        if isinstance(node, ast.SubLink):
            target = node.subselect.targetList[0].val if isinstance(node.subselect, ast.SelectStmt) \
                and node.subselect.targetList else None
            return self._children(node, {"testexpr": self.is_citext(node.testexpr) and self.is_citext(target)
                                         or not self.is_citext(node.testexpr)}, True)
        if isinstance(node, ast.FuncCall):
            name = name_of(node.funcname)
            if name in _REFUSED_FUNCTIONS and any(self.is_citext(a) for a in node.args or ()):
                why = ("PostgreSQL's pick among values equal under lower() is the last one it scanned"
                       if name in ("min", "max") else "reeldb would name DuckDB's type" if name == "pg_typeof"
                       else "PostgreSQL's is case-insensitive, reeldb's would not be")
                raise errors.FeatureNotSupported(f"{name}() of citext is not supported ({why}): cast the citext "
                                                 "argument to text, or use lower()")
            return self._children(node, {}, name in _KEEPING_FUNCTIONS)
        if isinstance(node, ast.SelectStmt):
            if node.larg is not None and node.rarg is not None:
                self.set_operation(node)
            return self._children(node, {}, True)
        if isinstance(node, ast.MinMaxExpr) and any(self.is_citext(a) for a in node.args or ()):
            raise errors.FeatureNotSupported(
                "GREATEST / LEAST of citext is not supported (PostgreSQL's pick among values equal under lower() "
                "is the first one): cast the citext arguments to text, or use lower()")
        if isinstance(node, _TRANSPARENT) or isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
            # its comparisons (NULLIF's =, CASE c WHEN ...) are citext's; its value is text where
            # the context makes it text
            citext = not keep and self.is_citext(node)
            if isinstance(node, ast.A_Expr):
                fits = self._fits(node.lexpr) and self._fits(node.rexpr)
                node.lexpr, node.rexpr = self.fix(node.lexpr, fits), self.fix(node.rexpr, fits)
            else:
                node = self._children(node, {}, True)
            return _collate(node, "binary") if citext else node
        if isinstance(node, _STRUCTURAL):
            return self._children(node, {}, True)
        return self._children(node, {}, False)

    def set_operation(self, node: ast.SelectStmt) -> None:
        """UNION / INTERSECT / EXCEPT: a column is citext where every branch's is citext or
        untyped; elsewhere (citext with text) PostgreSQL resolves it to text."""
        leaves: list[ast.SelectStmt] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if n.larg is not None and n.rarg is not None:
                stack += [n.rarg, n.larg]
            else:
                leaves.append(n)
        columns = [list(leaf.targetList or ()) for leaf in leaves if leaf.targetList]
        for i in range(min((len(c) for c in columns), default=0)):
            values = [c[i].val for c in columns if isinstance(c[i], ast.ResTarget)]
            if any(self.is_citext(v) for v in values) and not self._all_citext(values):
                for c in columns:
                    if isinstance(c[i], ast.ResTarget) and self.is_citext(c[i].val):
                        c[i].name = c[i].name or column_name(c[i].val)  # the column keeps its name
                        c[i].val = _collate(c[i].val, "binary")

    def _children(self, node: ast.Node, slots: dict[str, bool], default: bool) -> ast.Node:
        for slot in node.__slots__:
            if slot == "location":
                continue
            val = getattr(node, slot, None)
            if isinstance(val, ast.Node | list | tuple):
                setattr(node, slot, self.fix(val, slots.get(slot, default)))
        return node

    def type_cast(self, node: ast.TypeCast) -> Any:
        name = name_of(node.typeName.names)
        if name != "citext" or node.typeName.arrayBounds or not self.casts:
            node.arg = self.fix(node.arg, False)
            return node
        if node.typeName.typmods:
            raise errors.SyntaxError("type modifier is not allowed for type \"citext\"")
        arg = node.arg
        if isinstance(arg, ast.A_Const) and (arg.isnull or isinstance(arg.val, ast.String)):
            if not arg.isnull:
                check(str(const_value(arg)))
            value: Any = ast.TypeCast(arg=arg, typeName=_varchar())
        elif isinstance(arg, ast.ParamRef) and (self.param(arg) is None or isinstance(self.param(arg), str)):
            if self.param(arg) is not None:
                check(self.param(arg))
            value = ast.TypeCast(arg=arg, typeName=_varchar())
        elif self.is_citext(arg):
            value = self.fix(arg, True)
        else:
            value = func(CITEXT_IN, ast.TypeCast(arg=self.fix(arg, False), typeName=_varchar()))
        return _collate(value, "nocase")

    def a_expr(self, node: ast.A_Expr) -> ast.Node:
        op = name_of(node.name) if node.name else ""
        keep = False
        if node.kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE) \
                and op in _COMPARISONS and node.lexpr is not None:
            lc, rc = self.is_citext(node.lexpr), self.is_citext(node.rexpr)
            keep = (lc or rc) and self._fits(node.lexpr) and self._fits(node.rexpr)
        elif op in _LIKES and node.lexpr is not None:
            keep = self.is_citext(node.lexpr)
            if keep:
                self._unknown(node.rexpr)  # a constant pattern is checked as a citext value
        elif op in _REFUSED_OPERATORS and node.lexpr is not None and self.is_citext(node.lexpr):
            raise errors.FeatureNotSupported(f"operator {op} on citext is not supported: citext's regular "
                                             "expressions are case-insensitive, reeldb's are not; cast to text")
        elif node.kind in (A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL) and op in _COMPARISONS:
            keep = self.is_citext(node.lexpr) and self._unknown(node.rexpr)  # c = ANY('{a,b}'): citext[]
        elif node.kind in _LISTS and isinstance(node.rexpr, list | tuple):  # IN (...), BETWEEN a AND b
            keep = self.is_citext(node.lexpr) and all(self._fits(x) for x in node.rexpr)
        node.lexpr = self.fix(node.lexpr, keep)
        node.rexpr = self.fix(node.rexpr, keep)
        return node


def _untyped(node: Any) -> bool:
    """A string constant or NULL (a parameter's type is the client's: not known here)."""
    return isinstance(node, ast.A_Const) and (node.isnull or isinstance(node.val, ast.String))


def _varchar() -> ast.TypeName:
    return ast.TypeName(names=(ast.String(sval="varchar"),), typemod=-1)
