"""hstore in SQL, once ``CREATE EXTENSION hstore`` made the type: its casts, operators and
functions become calls of reeldb's hstore functions (format/hstore.py, run by DuckDB),
before the allow-list sees the statement; everything else on an hstore is refused.

- ``x::hstore`` (a constant or parameter is read now: a syntax error is 42601, as in
  PostgreSQL), ``h::text``;
- ``h -> text``, ``h -> text[]``, ``?``, ``?&``, ``?|``, ``@>``, ``<@``, ``||``, ``-`` (text,
  text[] or hstore on the right), ``=`` and ``<>``;
- ``akeys``, ``avals``, ``defined``, ``exist``, ``exists_all``, ``exists_any``, ``delete``,
  ``slice``, ``hstore_to_array``, ``hstore_to_matrix``, ``hstore(text, text)``,
  ``hstore(text[], text[])``.

An hstore operand is a column of type hstore, a cast to hstore or one of these calls that
answers an hstore. The set-returning ``each``/``skeys``/``svals``, the JSON and record
conversions, ordering (``<``, ``ORDER BY``: hstore's btree order is not DuckDB's) and any
other function of an hstore are refused (0A000), never answered by DuckDB's map functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors
from ..engine.engine import HSTORE
from ..format import hstore as values
from . import allowlist
from .citext import TextParameter
from .parse import const_value, func, name_of

_RETURNS_HSTORE = {HSTORE[n] for n in ("in", "concat", "delete_key", "delete_keys", "delete_pairs", "slice",
                                       "from_text", "from_arrays")}
_RETURNS_ARRAY = {HSTORE[n] for n in ("get_array", "akeys", "avals", "to_array")}
_INTERNAL = frozenset(HSTORE.values())
_SAME_TYPE = (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT, A_Expr_Kind.AEXPR_IN,
              A_Expr_Kind.AEXPR_NULLIF)
_ONE_ARGUMENT = {"akeys": "akeys", "avals": "avals", "hstore_to_array": "to_array", "hstore_to_matrix": "to_matrix"}
_KEY_ARGUMENT = {"defined": "defined", "exist": "exist"}
_KEYS_ARGUMENT = {"exists_all": "exists_all", "exists_any": "exists_any", "slice": "slice"}
_KEY_OPERATORS = {"?": "exist", "?&": "exists_all", "?|": "exists_any"}
# hstore 1.8's other functions: PostgreSQL has them, reeldb does not (yet)
UNSUPPORTED = frozenset({
    "each", "skeys", "svals", "hstore_to_json", "hstore_to_jsonb", "hstore_to_json_loose",
    "hstore_to_jsonb_loose", "populate_record", "tconvert", "fetchval", "isexists", "isdefined", "slice_array",
    "hs_concat", "hs_contains", "hs_contained", "hstore_version_diag", "hstore_hash", "hstore_cmp",
})
FUNCTIONS = frozenset(_ONE_ARGUMENT) | frozenset(_KEY_ARGUMENT) | frozenset(_KEYS_ARGUMENT) | {"delete", "hstore"}


class HstoreRewrite:
    """One statement's hstore rewrites. ``kinds``: column name -> type kind;
    ``param``: a ParamRef's bound value."""

    def __init__(self, kinds: dict[str, str | None], param: Callable[[ast.ParamRef], Any]):
        self.kinds = kinds
        self.param = param

    def __call__(self, node: Any) -> Any:
        from .parse import transform

        return transform(node, self.visit)

    # -- types of operands -------------------------------------------------------------------
    def kind(self, node: Any) -> str | None:
        """'hstore', 'array' (a text[]), 'unknown' (a string constant or parameter) or None."""
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return "hstore" if self.kinds.get(node.fields[-1].sval) == "hstore" else None
        if isinstance(node, ast.TypeCast):
            name = name_of(node.typeName.names)
            if node.typeName.arrayBounds:
                return "array"
            return "hstore" if name == "hstore" else None
        if isinstance(node, ast.FuncCall):
            name = name_of(node.funcname)
            if name in _RETURNS_HSTORE:
                return "hstore"
            if name in _RETURNS_ARRAY:
                return "array"
            return None
        if isinstance(node, ast.A_ArrayExpr):
            return "array"
        if isinstance(node, ast.A_Const):
            return "unknown" if node.isnull or isinstance(node.val, ast.String) else None
        if isinstance(node, ast.ParamRef):
            v = self.param(node)
            if isinstance(v, list | tuple):
                return "array"
            if isinstance(v, dict):
                return "hstore"
            if isinstance(v, TextParameter):  # the client typed it text
                return None
            return "unknown" if v is None or isinstance(v, str) else None
        return None

    def as_hstore(self, node: Any) -> Any:
        """An operand an hstore operator takes as hstore: a constant is read now."""
        k = self.kind(node)
        if k == "hstore" and not isinstance(node, ast.ParamRef):
            return node
        if isinstance(node, ast.A_Const | ast.ParamRef):
            value = const_value(node) if isinstance(node, ast.A_Const) else self.param(node)
            if value is None:  # NULL of type hstore: the (strict) input function of NULL
                return func(HSTORE["in"], ast.A_Const(isnull=True))
            if not isinstance(value, str | dict):
                raise errors.DatatypeMismatch(f"cannot cast type {type(value).__name__} to hstore")
            pairs = values.from_python(value)
            return func(HSTORE["in"], ast.A_Const(val=ast.String(sval=values.text(pairs))))
        return func(HSTORE["in"], node)  # text computed by the query: read as it runs

    # -- rewriting ----------------------------------------------------------------------------
    def visit(self, node: Any) -> Any:
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        if isinstance(node, ast.FuncCall):
            return self.call(node)
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.name:
            return self.operator(node)
        if isinstance(node, ast.A_Expr) and node.kind in _SAME_TYPE:  # IS [NOT] DISTINCT FROM, IN, NULLIF
            return self.same_type(node)
        if isinstance(node, ast.CoalesceExpr):
            args = [self(a) for a in node.args]
            if any(self.kind(a) == "hstore" for a in args):  # an untyped value is read as an hstore
                args = [self.as_hstore(a) if self.kind(a) in ("hstore", "unknown") else a for a in args]
            node.args = tuple(args)
            return node
        if isinstance(node, ast.A_Indirection) and self.kind(node.arg) == "hstore" \
                and any(isinstance(i, ast.String) for i in node.indirection):
            raise errors.ProgrammingError(
                f"column notation .{next(i.sval for i in node.indirection if isinstance(i, ast.String))} applied to "
                "type hstore, which is not a composite type", sqlstate="42809")
        if isinstance(node, ast.SortBy) and self.kind(node.node) == "hstore":
            raise errors.FeatureNotSupported("ORDER BY an hstore is not supported: hstore's order is not reeldb's")
        return None

    def type_cast(self, node: ast.TypeCast) -> Any:
        name = name_of(node.typeName.names)
        if name == "hstore" and node.typeName.arrayBounds:
            raise errors.FeatureNotSupported("hstore[] is not supported")
        arg = self(node.arg)
        if name == "hstore":
            return self.as_hstore(arg)
        if self.kind(arg) == "hstore":
            if name in ("text", "varchar") and not node.typeName.arrayBounds and not node.typeName.typmods:
                return func(HSTORE["out"], arg)
            raise errors.FeatureNotSupported(f"a cast of hstore to {name} is not supported")
        node.arg = arg
        return node

    def same_type(self, node: ast.A_Expr) -> Any:
        """Operands PostgreSQL resolves to one type: beside an hstore, an untyped one is an hstore."""
        left = self(node.lexpr)
        right = [self(x) for x in node.rexpr] if isinstance(node.rexpr, list | tuple) else self(node.rexpr)
        items = [left, *(right if isinstance(right, list) else [right])]
        if any(self.kind(x) == "hstore" for x in items):
            left = self.as_hstore(left) if self.kind(left) == "unknown" else left
            right = [self.as_hstore(x) if self.kind(x) == "unknown" else x for x in right] \
                if isinstance(right, list) else self.as_hstore(right) if self.kind(right) == "unknown" else right
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=left,
                          rexpr=tuple(right) if isinstance(right, list) else right, location=node.location)

    def call(self, node: ast.FuncCall) -> Any:
        name = name_of(node.funcname)
        if name in _INTERNAL:  # made here already
            return None
        args = list(node.args or ())
        if name in UNSUPPORTED:
            raise errors.FeatureNotSupported(f"{name}() of hstore is not supported")
        if name not in FUNCTIONS:  # a PostgreSQL function of an hstore: refused (others: 42883, the allow-list's)
            if name in allowlist.FUNCTIONS and name not in ("count", "coalesce", "nullif") \
                    and any(self.kind(a) == "hstore" for a in args):
                raise errors.FeatureNotSupported(f"{name}() of an hstore is not supported")
            return None
        if node.agg_star or node.agg_distinct or node.over is not None or node.agg_order or node.agg_filter:
            raise errors.SyntaxError(f"{name}() of hstore is not an aggregate")
        if name == "hstore":
            if len(args) != 2:
                raise errors.FeatureNotSupported(f"hstore() with {len(args)} arguments is not supported: give "
                                                 "(text, text) or (text[], text[])")
            a, b = (self(x) for x in args)
            if self.kind(a) == "array" or self.kind(b) == "array":
                return func(HSTORE["from_arrays"], _text_array(a), _text_array(b))
            return func(HSTORE["from_text"], a, b)
        if name in _ONE_ARGUMENT and len(args) == 1:
            return func(HSTORE[_ONE_ARGUMENT[name]], self.as_hstore(self(args[0])))
        if name in _KEY_ARGUMENT and len(args) == 2:
            return func(HSTORE[_KEY_ARGUMENT[name]], self.as_hstore(self(args[0])), self(args[1]))
        if name in _KEYS_ARGUMENT and len(args) == 2:
            return func(HSTORE[_KEYS_ARGUMENT[name]], self.as_hstore(self(args[0])), _text_array(self(args[1])))
        if name == "delete" and len(args) == 2:
            return self.delete(self.as_hstore(self(args[0])), self(args[1]))
        raise errors.UndefinedFunction(f"function {name}() with {len(args)} arguments does not exist")

    def delete(self, h: Any, what: Any) -> Any:
        k = self.kind(what)
        if k == "hstore":
            return func(HSTORE["delete_pairs"], h, self.as_hstore(what))
        if k == "array":
            return func(HSTORE["delete_keys"], h, _text_array(what))
        return func(HSTORE["delete_key"], h, what)

    def operator(self, node: ast.A_Expr) -> Any:
        op = name_of(node.name)
        left = None if node.lexpr is None else self(node.lexpr)
        right = self(node.rexpr)
        lk, rk = self.kind(left), self.kind(right)
        if lk != "hstore" and rk != "hstore" or isinstance(node.rexpr, ast.ParamRef) and lk != "hstore":
            # not an hstore operator: its operands rewritten, the rest left to the caller
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=left, rexpr=right, location=node.location)
        if left is None:
            raise errors.FeatureNotSupported(f"operator {op} on an hstore is not supported")
        if op == "->" and lk == "hstore":
            if rk == "array":
                return func(HSTORE["get_array"], left, _text_array(right))
            return func(HSTORE["get"], left, right)
        if op in _KEY_OPERATORS and lk == "hstore":
            return func(HSTORE[_KEY_OPERATORS[op]], left, _text_array(right) if op != "?" else right)
        if op in ("@>", "<@"):
            a, b = self.as_hstore(left), self.as_hstore(right)
            return func(HSTORE["contains"], a, b) if op == "@>" else func(HSTORE["contains"], b, a)
        if op == "||":
            return func(HSTORE["concat"], self.as_hstore(left), self.as_hstore(right))
        if op == "-" and lk == "hstore":  # an untyped right side takes the left's type: hstore
            return self.delete(left, self.as_hstore(right) if rk == "unknown" else right)
        if op in ("=", "<>", "!="):
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.as_hstore(left), rexpr=self.as_hstore(right))
        raise errors.FeatureNotSupported(f"operator {op} on an hstore is not supported")


def _text_array(node: Any) -> Any:
    return node if isinstance(node, ast.A_ArrayExpr | ast.FuncCall) else ast.TypeCast(
        arg=node, typeName=ast.TypeName(names=(ast.String(sval="varchar"),), typemod=-1,
                                        arrayBounds=(ast.Integer(ival=-1),)))
