"""The built-in range and multirange types in SQL: casts, constructors, functions and
operators of int4range ... tstzrange and int4multirange ... tstzmultirange become calls of
reeldb's range functions (format/ranges.py, run by DuckDB over the stored structs), before the
allow-list sees the statement.

- ``'[1,5)'::int4range``, ``'{[1,3),[5,7)}'::int4multirange`` (a constant or a parameter is
  read now: a malformed literal is 22P02, as in PostgreSQL; plain bounds are read in Python,
  others by their subtype's cast), ``r::text``, ``r::int4multirange``, arrays of them;
- ``int4range(a, b [, '[]'])``, ``int4multirange(r, ...)`` and the other constructors;
- ``lower``, ``upper``, ``isempty``, ``lower_inc``, ``upper_inc``, ``lower_inf``,
  ``upper_inf``, ``range_merge``, ``multirange``;
- ``= <> < <= > >=`` (DuckDB's order of the structs is PostgreSQL's order),
  ``@> <@`` (of a range, a multirange or an element), ``&& << >> &< &> -|- + * -``.

An untyped operand beside a range (a string constant, an untyped parameter) is read as that
range type, as PostgreSQL resolves it; the output names of subqueries and CTEs that are ranges
are ranges where the outer query reads them. Any other function or operator of a range and a
cast of computed text to a range are refused (0A000 / 42883 / 42846), never answered by
DuckDB's struct functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors
from ..engine.engine import RANGE
from ..format import ranges as values
from ..format.arrays import parse_array_literal
from ..format.ranges import RangeParameter
from . import allowlist
from .citext import TextParameter
from .parse import cast, const_value, func, name_of

RANGES = values.KINDS
MULTI = values.MULTI
KINDS = frozenset(RANGES) | frozenset(MULTI)  # the type names this rewrite knows
POLYMORPHIC = frozenset(("anymultirange", "anyrange", "anycompatiblerange", "anycompatiblemultirange"))
# internal function -> (range or multirange type, what it answers: "range", "element" or "other")
_MULTI_RESULTS = ("mempty", "mmake", "mfrom_json", "m_union", "m_intersect", "m_minus")
_RETURNS = {name: (RANGES[kind].multi if fn in _MULTI_RESULTS else kind,
                   "range" if fn in ("empty", "from_json", "make2", "make3", "union", "merge", "intersect", "minus",
                                     "m_merge",
                                     *_MULTI_RESULTS)
                   else "element" if fn in ("lower", "upper", "m_lower", "m_upper") else "other")
            for (kind, fn), name in RANGE.items()}
_ACCESSORS = ("lower", "upper", "isempty", "lower_inc", "upper_inc", "lower_inf", "upper_inf")
_COMPARISONS = frozenset(("=", "<>", "!=", "<", "<=", ">", ">="))
_BOOLEAN_OPS = {"&&": "overlaps", "<<": "before", ">>": "after", "&<": "overleft", "&>": "overright",
                "-|-": "adjacent"}
_RANGE_OPS = {"+": "union", "*": "intersect", "-": "minus"}
_SAME_TYPE = (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT, A_Expr_Kind.AEXPR_IN,
              A_Expr_Kind.AEXPR_NULLIF)
# functions that take a range as any value: counted, passed through, compared as a whole
_PASS_THROUGH = frozenset(("count", "coalesce", "nullif", "array_agg", "pg_typeof", "lag", "lead", "first_value",
                           "last_value", "nth_value"))
# the argument types each constructor takes, with PostgreSQL's implicit casts (reeldb's kinds)
_CONSTRUCTOR_ARGS = {"int4range": {"int16", "int32"}, "int8range": {"int16", "int32", "int64"},
                     "numrange": {"int16", "int32", "int64", "numeric"}, "daterange": {"date"},
                     "tsrange": {"date", "timestamp"}, "tstzrange": {"date", "timestamp", "timestamptz"}}
_SQL_NAMES = {"int16": "smallint", "int32": "integer", "int64": "bigint", "numeric": "numeric", "date": "date",
              "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
              "float64": "double precision", "float32": "real", "text": "text", "bool": "boolean"}


class RangeRewrite:
    """One statement's range rewrites. ``kinds``: column name -> type kind; ``param``: a
    ParamRef's bound value."""

    def __init__(self, kinds: dict[str, str | None], param: Callable[[ast.ParamRef], Any]):
        self.kinds = dict(kinds)  # the statement's output names of ranges are added (outputs())
        self.param = param
        self._top = True

    def __call__(self, node: Any) -> Any:
        from .parse import transform

        if self._top:
            self._top = False
            if not self.mentions_ranges(node):  # most statements: one quick look, nothing rewritten
                return node
            self.outputs(node)
        return transform(node, self.visit)

    def mentions_ranges(self, tree: Any) -> bool:
        """Does the statement name a range type, function or column, or bind a range? A loop
        over the nodes, as the allow-list's, without rebuilding anything."""
        columns = {name for name, k in self.kinds.items() if k in KINDS or k and k.removesuffix("_array") in RANGES}
        stack = [tree]
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is tuple or kind is list:
                stack.extend(n for n in node if n is not None)
                continue
            if not isinstance(node, ast.Node) or kind in _LEAVES:
                continue
            if kind is ast.TypeCast and name_of(node.typeName.names) in _NAMES \
                    or kind is ast.FuncCall and name_of(node.funcname) in _NAMES \
                    or kind is ast.ColumnRef and isinstance(node.fields[-1], ast.String) and node.fields[-1].sval in columns:
                return True
            if kind is ast.ParamRef:
                v = self.param(node)
                if isinstance(v, RangeParameter | values.MultirangeParameter | values.Range | list | tuple):
                    return True
                continue
            slots = _SLOTS.get(kind)
            if slots is None:
                slots = _SLOTS[kind] = tuple(x for x in kind.__slots__ if x != "location")
            for slot in slots:
                value = getattr(node, slot)
                if value is not None and (type(value) in (tuple, list) or isinstance(value, ast.Node)):
                    stack.append(value)
        return False

    def outputs(self, node: Any) -> None:
        """The output names of the statement's subqueries and CTEs that are ranges (SELECT
        int4range(1, 3) AS x ...): a name the outer query reads is that range, as a table's
        column is; a name two outputs give different types is left unknown."""
        from .parse import walk

        nodes = list(walk(node))
        # (name, value): each output, and each column alias of a subquery or CTE (u(x), c(x))
        targets: list[tuple[str | None, Any]] = [
            (t.name or _output_name(t.val), t.val) for n in nodes if isinstance(n, ast.SelectStmt)
            for t in n.targetList or () if isinstance(t, ast.ResTarget) and t.val is not None]
        for n in nodes:
            names, query = (n.alias.colnames if n.alias else None, n.subquery) if isinstance(n, ast.RangeSubselect) \
                else (n.aliascolnames, n.ctequery) if isinstance(n, ast.CommonTableExpr) else (None, None)
            while isinstance(query, ast.SelectStmt) and query.larg is not None:  # a UNION: its first branch
                query = query.larg
            if names and isinstance(query, ast.SelectStmt):
                targets += [(name.sval, t.val) for name, t in zip(names, query.targetList or (), strict=False)
                            if isinstance(name, ast.String) and isinstance(t, ast.ResTarget)]
        if not targets:
            return
        for _ in range(3):  # an output of an output: a few levels of nesting
            changed = False
            for name, val in targets:
                k = self.kind(val)
                if k in KINDS and name is not None and self.kinds.get(name, k) != k and name in self.kinds:
                    changed |= self.kinds[name] is not None
                    self.kinds[name] = None
                elif k in KINDS and name is not None and name not in self.kinds:
                    self.kinds[name], changed = k, True
            if not changed:
                return

    # -- types of operands -------------------------------------------------------------------
    def kind(self, node: Any) -> str | None:
        """A range type's name, that name + ``[]`` for an array of it, ``unknown`` (a string
        constant or untyped parameter), ``element`` (a value of some other type) or None."""
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            k = self.kinds.get(node.fields[-1].sval)
            if k and k.endswith("_array") and k[:-6] in RANGES:  # a daterange[] column
                return k[:-6] + "[]"
            return k if k in KINDS else None
        if isinstance(node, ast.TypeCast):
            name = name_of(node.typeName.names)
            if name in KINDS:
                return name + "[]" if node.typeName.arrayBounds else name
            return None
        if isinstance(node, ast.FuncCall):
            name = name_of(node.funcname)
            if name in _RETURNS:
                kind, what = _RETURNS[name]
                return kind if what == "range" else None
            return name if name in KINDS else None
        if isinstance(node, ast.A_ArrayExpr):
            inner = {self.kind(e) for e in node.elements or ()} - {"unknown"}
            return next(iter(inner)) + "[]" if len(inner) == 1 and next(iter(inner)) in KINDS else None
        if isinstance(node, ast.A_Indirection) and all(isinstance(i, ast.A_Indices) and not i.is_slice
                                                       for i in node.indirection):
            inner = self.kind(node.arg)
            return inner[:-2] if inner and inner.endswith("[]") and len(node.indirection) == 1 else None
        if isinstance(node, ast.SubLink) and node.subLinkType.name == "EXPR_SUBLINK" \
                and isinstance(node.subselect, ast.SelectStmt) and node.subselect.targetList \
                and len(node.subselect.targetList) == 1:  # (SELECT r FROM t LIMIT 1)
            k = self.kind(node.subselect.targetList[0].val)
            return k if k in KINDS else None
        if isinstance(node, ast.A_Const):
            return "unknown" if node.isnull or isinstance(node.val, ast.String) else None
        if isinstance(node, ast.ParamRef):
            v = self.param(node)
            if isinstance(v, RangeParameter):
                return v.kind.name
            if isinstance(v, values.MultirangeParameter):
                return v.kind.multi
            if isinstance(v, TextParameter):
                return None
            if isinstance(v, list) and v and all(isinstance(x, RangeParameter | values.MultirangeParameter) or x is None
                                                 for x in v):
                typed = {x.kind.name if isinstance(x, RangeParameter) else x.kind.multi for x in v if x is not None}
                return typed.pop() + "[]" if len(typed) == 1 else None
            return "unknown" if v is None or isinstance(v, str | values.Range) else None
        if isinstance(node, ast.CaseExpr):
            results = [w.result for w in node.args or ()] + ([node.defresult] if node.defresult is not None else [])
            return _first_range([self.kind(x) for x in results])
        if isinstance(node, ast.CoalesceExpr | ast.MinMaxExpr):
            return _first_range([self.kind(x) for x in node.args or ()])
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_NULLIF:
            return _first_range([self.kind(node.lexpr)])
        return None

    def element_kind(self, node: Any) -> str | None:
        """reeldb's kind of a value that is plainly of one type (a number, a cast, a column,
        lower() / upper() of a range); None where it cannot be told here."""
        from ..types import by_name

        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
            return "int32"
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Float):
            digits = node.val.fval.lstrip("-")
            return ("int32" if -(2**31) <= int(node.val.fval) < 2**31 else "int64") if digits.isdigit() \
                and int(node.val.fval) in range(-(2**63), 2**63) else "numeric"
        if isinstance(node, ast.TypeCast) and not node.typeName.arrayBounds:
            info = by_name(name_of(node.typeName.names))
            return None if info is None else info.kind
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return self.kinds.get(node.fields[-1].sval)
        if isinstance(node, ast.FuncCall) and name_of(node.funcname) in _RETURNS:
            kind, what = _RETURNS[name_of(node.funcname)]
            return RANGES[kind].sub_kind if what == "element" else None
        return None

    def check_element(self, node: Any, kind: str, op: str, left: bool, of: str | None = None) -> None:
        """42883 for an element of another type than the range's subtype, as PostgreSQL's
        anyrange / anyelement operators take only the subtype itself; ``of``: the multirange
        type the operator is of, if not the range type."""
        got = self.element_kind(node)
        if got is not None and got != RANGES[kind].sub_kind:
            shown, kind = _SQL_NAMES.get(got, got), of or kind
            raise errors.UndefinedFunction(f"operator does not exist: {shown} {op} {kind}" if left
                                           else f"operator does not exist: {kind} {op} {shown}")

    def as_range(self, node: Any, kind: str) -> Any:
        """An operand a range operator takes as ``kind``: a constant or parameter read now."""
        k = self.kind(node)
        if k == kind and not isinstance(node, ast.ParamRef):
            return node
        if k in KINDS and k != kind:
            raise errors.DatatypeMismatch(f"cannot cast type {k} to {kind}", sqlstate="42846")
        if isinstance(node, ast.A_Const | ast.ParamRef):
            value = const_value(node) if isinstance(node, ast.A_Const) else self.param(node)
            return self.literal(value, kind)
        raise errors.FeatureNotSupported(f"a cast of a computed value to {kind} is not supported: write the "
                                         f"range as a literal or with {kind}(lower, upper, bounds)")

    def literal(self, value: Any, kind: str) -> Any:
        """The range ``value`` (its text, a Range, a typed parameter) as a call that builds it,
        each bound a cast of its text to the subtype."""
        if kind in MULTI:
            return self.multi_literal(value, kind)
        spec = RANGES[kind]
        if value is None:
            return ast.CaseExpr(args=(ast.CaseWhen(expr=_false(), result=func(RANGE[kind, "empty"])),),
                                defresult=None)
        if isinstance(value, RangeParameter):
            if value.kind.name != kind:
                raise errors.DatatypeMismatch(f"cannot cast type {value.kind.name} to {kind}", sqlstate="42846")
            value = value.text if value.text is not None else value.value
        parts = _parts(value, kind)
        try:  # bounds in their plain forms: the range is made here, and goes to DuckDB whole
            return func(RANGE[kind, "from_json"], ast.A_Const(val=ast.String(sval=values.to_json(_plain(spec, parts)))))
        except values.NotPlain:
            pass
        empty, lower, upper, lower_inc, upper_inc = parts
        if empty:
            return func(RANGE[kind, "empty"])
        bounds = ("[" if lower_inc else "(") + ("]" if upper_inc else ")")
        return func(RANGE[kind, "make3"], self.bound(_text(lower), spec), self.bound(_text(upper), spec),
                    ast.A_Const(val=ast.String(sval=bounds)))

    def multi_literal(self, value: Any, name: str) -> Any:
        """A multirange's text, ranges or typed parameter as a call that builds it, normalized."""
        kind = MULTI[name]
        if value is None:
            return ast.CaseExpr(args=(ast.CaseWhen(expr=_false(), result=func(RANGE[kind.name, "mempty"])),),
                                defresult=None)
        if isinstance(value, values.MultirangeParameter):
            if value.kind.name != kind.name:
                raise errors.DatatypeMismatch(f"cannot cast type {value.kind.multi} to {name}", sqlstate="42846")
            value = value.text if value.text is not None else value.value
        if isinstance(value, str):
            value = values.parse_multi_text(value)
        if not isinstance(value, list | tuple):
            raise errors.DatatypeMismatch(f"cannot cast type {type(value).__name__} to {name}", sqlstate="42846")
        if not value:
            return func(RANGE[kind.name, "mempty"])
        if any(r is None for r in value):
            raise errors.DataError("multirange values cannot contain null members", sqlstate="22004")
        if isinstance(value, RangeParameter):
            value = [value]
        try:  # every bound plain: the multirange is made here, and goes to DuckDB whole
            ranges = [_plain(kind, _parts(r.text if isinstance(r, RangeParameter) and r.text is not None
                                          else r.value if isinstance(r, RangeParameter) else r, kind.name))
                      for r in value]
            return func(RANGE[kind.name, "mfrom_json"],
                        ast.A_Const(val=ast.String(sval=values.to_json(values.normalize(kind, ranges)))))
        except values.NotPlain:
            pass
        if len(value) > MAX_CAST_RANGES:
            raise errors.ProgramLimitExceeded(
                f"a {name} literal of {len(value)} ranges whose bounds need their subtype's cast: more than the "
                f"{MAX_CAST_RANGES} reeldb reads in one statement")
        return func(RANGE[kind.name, "mmake"], ast.A_ArrayExpr(elements=tuple(self.literal(r, kind.name) for r in value)))

    @staticmethod
    def bound(text: str | None, spec: values.RangeKind) -> Any:
        if text is None:
            return cast(ast.A_Const(isnull=True), spec.subtype)
        if spec.sub_kind == "numeric":
            _check_places(text, spec.name)
        return cast(ast.A_Const(val=ast.String(sval=text)), spec.subtype)

    def as_array(self, node: Any, kind: str) -> Any:
        """An array of ranges: ARRAY[...], an array literal's text or a list parameter."""
        if isinstance(node, ast.A_ArrayExpr):
            return ast.A_ArrayExpr(elements=tuple(self.as_range(e, kind) for e in node.elements or ()))
        if self.kind(node) == kind + "[]" and not isinstance(node, ast.ParamRef):
            return node
        value = const_value(node) if isinstance(node, ast.A_Const) else \
            self.param(node) if isinstance(node, ast.ParamRef) else ...
        if value is ...:
            raise errors.FeatureNotSupported(f"a cast of a computed value to {kind}[] is not supported")
        if value is None:
            return ast.CaseExpr(
                args=(ast.CaseWhen(expr=_false(), result=ast.A_ArrayExpr(elements=(func(RANGE[kind, "empty"]),))),),
                defresult=None)
        if isinstance(value, str):
            items = parse_array_literal(value)
            if any(isinstance(x, list) for x in items):
                raise errors.FeatureNotSupported(f"multidimensional arrays of {kind} are not supported")
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise errors.DatatypeMismatch(f"cannot cast type {type(value).__name__} to {kind}[]", sqlstate="42846")
        if not items:
            raise errors.FeatureNotSupported(f"an empty array of {kind} is not supported")
        return ast.A_ArrayExpr(elements=tuple(self.literal(x, kind) for x in items))

    # -- rewriting ----------------------------------------------------------------------------
    def visit(self, node: Any) -> Any:
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        if isinstance(node, ast.FuncCall):
            return self.call(node)
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.name:
            return self.operator(node)
        if isinstance(node, ast.A_Expr) and node.kind in _SAME_TYPE:
            return self.same_type(node)
        if isinstance(node, ast.A_ArrayExpr | ast.CoalesceExpr | ast.MinMaxExpr):  # one type: a range's
            field = "elements" if isinstance(node, ast.A_ArrayExpr) else "args"
            items = [self(a) for a in getattr(node, field) or ()]
            kind = _first_range([self.kind(a) for a in items])
            if kind is not None:
                items = [self.as_range(a, kind) if self.kind(a) == "unknown" else a for a in items]
            setattr(node, field, tuple(items) if getattr(node, field) is not None else None)
            return node
        if isinstance(node, ast.RowExpr):
            args = [self(a) for a in node.args or ()]
            ranged = [k for k in map(self.kind, args) if k in KINDS]
            if ranged:
                raise errors.FeatureNotSupported(f"a row of {ranged[0]} values is not supported")
            node.args = tuple(args) if node.args is not None else None
            return node
        if isinstance(node, ast.ParamRef):
            v = self.param(node)
            if isinstance(v, RangeParameter):  # typed by the client: a range wherever it stands
                return self.literal(v, v.kind.name)
            if isinstance(v, values.MultirangeParameter):
                return self.literal(v, v.kind.multi)
            k = self.kind(node)
            if k is not None and k.endswith("[]"):
                return self.as_array(node, k[:-2])
        return None

    def type_cast(self, node: ast.TypeCast) -> Any:
        name = name_of(node.typeName.names)
        if name in POLYMORPHIC:
            raise errors.FeatureNotSupported(f"type {name} is not supported")
        arg = self(node.arg)
        k = self.kind(arg)
        if name in MULTI and k == MULTI[name].name and not node.typeName.arrayBounds:  # a range's multirange
            return func(RANGE[k, "mmake"], ast.A_ArrayExpr(elements=(arg,)))
        if name in KINDS:
            if node.typeName.arrayBounds:
                if len(node.typeName.arrayBounds) > 1:
                    raise errors.FeatureNotSupported(f"multidimensional arrays of {name} are not supported")
                return self.as_array(arg, name)
            return self.as_range(arg, name)
        if k and k.endswith("[]") and k[:-2] in RANGES and name in ("text", "varchar") \
                and not node.typeName.arrayBounds and not node.typeName.typmods:  # array_out of ranges
            return func(RANGE[k[:-2], "aout"], arg)
        if k in KINDS:
            if name in ("text", "varchar") and not node.typeName.arrayBounds and not node.typeName.typmods:
                return func(RANGE[MULTI[k].name, "mout"] if k in MULTI else RANGE[k, "out"], arg)
            raise errors.DatatypeMismatch(f"cannot cast type {k} to {name}", sqlstate="42846")
        node.arg = arg
        return node

    def call(self, node: ast.FuncCall) -> Any:
        name = name_of(node.funcname)
        if name in _RETURNS:  # made here already
            return None
        args = [self(a) for a in node.args or ()]
        if name in ("range_agg", "range_intersect_agg") or name == "multirange" and len(args) != 1:
            raise errors.FeatureNotSupported(f"{name}() is not supported")
        if name in MULTI:
            if node.agg_star or node.agg_distinct or node.over is not None or node.agg_order or node.agg_filter:
                raise errors.SyntaxError(f"{name}() is not an aggregate")
            kind = MULTI[name].name
            if not args:
                return func(RANGE[kind, "mempty"])
            return func(RANGE[kind, "mmake"], ast.A_ArrayExpr(elements=tuple(self.as_range(a, kind) for a in args)))
        if name in RANGES:
            if node.agg_star or node.agg_distinct or node.over is not None or node.agg_order or node.agg_filter:
                raise errors.SyntaxError(f"{name}() is not an aggregate")
            for a in args[:2]:
                got = self.element_kind(a)
                if got is not None and got not in _CONSTRUCTOR_ARGS[name]:
                    raise errors.UndefinedFunction(f"function {name}({_SQL_NAMES.get(got, got)}, ...) does not exist")
            if name == "numrange":  # a constant with more places than reeldb's numeric keeps: refused, not rounded
                for a in args[:2]:
                    inner = a.arg if isinstance(a, ast.TypeCast) else a
                    if isinstance(inner, ast.A_Const) and isinstance(inner.val, ast.Float | ast.String):
                        _check_places(inner.val.fval if isinstance(inner.val, ast.Float) else inner.val.sval, name)
            if len(args) == 2:
                return func(RANGE[name, "make2"], *args)
            if len(args) == 3:
                return func(RANGE[name, "make3"], *args)
            raise errors.UndefinedFunction(f"function {name}() with {len(args)} arguments does not exist")
        kinds = [self.kind(a) for a in args]
        ranged = [k for k in kinds if k in KINDS]
        if name in _ACCESSORS and len(args) == 1 and ranged and ranged[0] in RANGES:
            return func(RANGE[ranged[0], name], args[0])
        if name in _ACCESSORS and len(args) == 1 and ranged:
            return func(RANGE[MULTI[ranged[0]].name, "m_" + name], args[0])
        if name == "range_merge" and len(args) == 1 and ranged and ranged[0] in MULTI:
            return func(RANGE[MULTI[ranged[0]].name, "m_merge"], args[0])
        if name == "multirange" and len(args) == 1 and ranged and ranged[0] in RANGES:
            return func(RANGE[ranged[0], "mmake"], ast.A_ArrayExpr(elements=(args[0],)))
        if name == "range_merge" and len(args) == 2 and not any(k in MULTI for k in ranged):
            kind = _common(ranged, name)
            return func(RANGE[kind, "merge"], self.as_range(args[0], kind), self.as_range(args[1], kind))
        if ranged and name not in _PASS_THROUGH and name in allowlist.FUNCTIONS:
            raise errors.FeatureNotSupported(f"{name}() of {ranged[0]} is not supported")
        node.args = tuple(args) if node.args is not None else None
        return node

    def same_type(self, node: ast.A_Expr) -> Any:
        """IN, IS DISTINCT FROM, NULLIF: beside a range, an untyped operand is that range."""
        left = self(node.lexpr)
        right = [self(x) for x in node.rexpr] if isinstance(node.rexpr, list | tuple) else self(node.rexpr)
        items = [left, *(right if isinstance(right, list) else [right])]
        ranged = [self.kind(x) for x in items if self.kind(x) in KINDS]
        if ranged:
            kind = ranged[0]
            left = self.as_range(left, kind)
            right = [self.as_range(x, kind) for x in right] if isinstance(right, list) else self.as_range(right, kind)
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=left,
                          rexpr=tuple(right) if isinstance(right, list) else right, location=node.location)

    def operator(self, node: ast.A_Expr) -> Any:
        op = name_of(node.name)
        left = None if node.lexpr is None else self(node.lexpr)
        right = self(node.rexpr)
        lk, rk = self.kind(left), self.kind(right)
        if op == "||" and (lk in KINDS or rk in KINDS):  # anynonarray || anynonarray: their texts
            left, right = (func(RANGE[k, "out"], x) if k in KINDS else x for x, k in ((left, lk), (right, rk)))
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=left, rexpr=right, location=node.location)
        if lk in KINDS or rk in KINDS:
            return self.range_operator(op, left, right, lk, rk)
        if lk and lk.endswith("[]") and lk[:-2] in KINDS or rk and rk.endswith("[]") and rk[:-2] in KINDS:
            kind = (lk if lk and lk.endswith("[]") else rk)[:-2]
            if op not in ("=", "<>", "!="):
                raise errors.FeatureNotSupported(f"operator {op} on {kind}[] is not supported")
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self.as_array(left, kind),
                              rexpr=self.as_array(right, kind), location=node.location)
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=left, rexpr=right, location=node.location)

    def range_operator(self, op: str, left: Any, right: Any, lk: str | None, rk: str | None) -> Any:
        if left is None:
            raise errors.UndefinedFunction(f"operator does not exist: {op} {rk}")
        if lk in MULTI or rk in MULTI:
            return self.multi_operator(op, left, right, lk, rk)
        if lk in KINDS and rk in KINDS and lk != rk:
            raise errors.UndefinedFunction(f"operator does not exist: {lk} {op} {rk}")
        if op == "@>" and lk in KINDS and rk not in KINDS and rk != "unknown":
            self.check_element(right, lk, op, left=False)
            return func(RANGE[lk, "contains_elem"], left, right)
        if op == "<@" and rk in KINDS and lk not in KINDS and lk != "unknown":
            self.check_element(left, rk, op, left=True)
            return func(RANGE[rk, "elem_contained"], left, right)
        kind = lk if lk in KINDS else rk
        assert kind is not None
        if lk not in KINDS and lk != "unknown" or rk not in KINDS and rk != "unknown":
            shown = lk if lk in KINDS else "?"
            raise errors.UndefinedFunction(f"operator does not exist: {shown} {op} {rk if rk in KINDS else '?'}")
        a, b = self.as_range(left, kind), self.as_range(right, kind)
        if op in _COMPARISONS:
            return ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="<>" if op == "!=" else op),),
                              lexpr=a, rexpr=b)
        if op == "@>":
            return func(RANGE[kind, "contains"], a, b)
        if op == "<@":
            return func(RANGE[kind, "contains"], b, a)
        if op in _BOOLEAN_OPS:
            return func(RANGE[kind, _BOOLEAN_OPS[op]], a, b)
        if op in _RANGE_OPS:
            return func(RANGE[kind, _RANGE_OPS[op]], a, b)
        raise errors.UndefinedFunction(f"operator does not exist: {kind} {op} {kind}")


    def multi_operator(self, op: str, left: Any, right: Any, lk: str | None, rk: str | None) -> Any:
        """An operator with a multirange operand: an untyped operand is that multirange, a range
        of its range type is made a multirange of one where PostgreSQL mixes them (containment,
        &&, <<, >>, &<, &>, -|-); comparisons and + * - take two multiranges."""
        multi = lk if lk in MULTI else rk
        assert multi is not None
        base = MULTI[multi].name
        if op == "@>" and lk == multi and rk not in KINDS and rk != "unknown":
            self.check_element(right, base, op, left=False, of=multi)
            return func(RANGE[base, "m_contains_elem"], left, right)
        if op == "<@" and rk == multi and lk not in KINDS and lk != "unknown":
            self.check_element(left, base, op, left=True, of=multi)
            return func(RANGE[base, "m_elem_contained"], left, right)
        mixed = op in ("@>", "<@") or op in _BOOLEAN_OPS

        def operand(node: Any, k: str | None) -> Any:
            if k == multi or k == "unknown":
                return self.as_range(node, multi)
            if k == base and mixed:
                return func(RANGE[base, "mmake"], ast.A_ArrayExpr(elements=(node,)))
            raise errors.UndefinedFunction(f"operator does not exist: {_shown(lk)} {op} {_shown(rk)}")

        a, b = operand(left, lk), operand(right, rk)
        if op in _COMPARISONS:
            return ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="<>" if op == "!=" else op),),
                              lexpr=a, rexpr=b)
        if op == "@>":
            return func(RANGE[base, "m_contains"], a, b)
        if op == "<@":
            return func(RANGE[base, "m_contains"], b, a)
        if op in _BOOLEAN_OPS:
            return func(RANGE[base, "m_" + _BOOLEAN_OPS[op]], a, b)
        if op in _RANGE_OPS:
            return func(RANGE[base, "m_" + _RANGE_OPS[op]], a, b)
        raise errors.UndefinedFunction(f"operator does not exist: {multi} {op} {multi}")


def _shown(kind: str | None) -> str:
    return kind if kind in KINDS else "unknown" if kind == "unknown" else "?"


# the type and function names that make a statement this rewrite's business
_NAMES = KINDS | POLYMORPHIC | frozenset(_RETURNS) | frozenset(("range_merge", "range_agg", "range_intersect_agg",
                                                                 "multirange"))
_LEAVES = (ast.A_Const, ast.String, ast.Integer, ast.Float, ast.Boolean, ast.A_Star)
_SLOTS: dict[type, tuple[str, ...]] = {}  # per node class: the fields that may hold nodes


MAX_CAST_RANGES = 1000  # ranges of one multirange literal whose bounds are cast one by one in SQL


def _parts(value: Any, kind: str) -> tuple[bool, Any, Any, bool, bool]:
    """(empty, lower, upper, lower inclusive, upper inclusive) of a range literal's text (bounds
    as text) or of a Range (bounds as values); None for an infinite bound."""
    if isinstance(value, str):
        return values.parse_text(value)
    if isinstance(value, values.Range) or hasattr(value, "isempty") and hasattr(value, "lower_inc"):
        if value.isempty:
            return True, None, None, False, False
        return False, value.lower, value.upper, value.lower_inc, value.upper_inc
    raise errors.DatatypeMismatch(f"cannot cast type {type(value).__name__} to {kind}", sqlstate="42846")


def _plain(spec: values.RangeKind, parts: tuple[bool, Any, Any, bool, bool]) -> values.Range:
    """The range made here from bounds in their plain forms (values.NotPlain otherwise), with
    PostgreSQL's errors for bounds out of order."""
    empty, lower, upper, lower_inc, upper_inc = parts
    if empty:
        return values.EMPTY
    lo = None if lower is None else values.plain_bound(spec, lower)
    hi = None if upper is None else values.plain_bound(spec, upper)
    try:
        return values.make(spec, lo, hi, lower_inc, upper_inc)
    except values.RangeError as e:
        raise errors.DataError(e.message, sqlstate=e.sqlstate) from None


def _check_places(text: str, kind: str) -> None:
    """0A000 for a numeric bound with more decimal places than reeldb's NUMERIC keeps (10),
    which DuckDB would round."""
    import decimal

    try:
        d = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return  # not a number: the cast says so
    if d.is_finite() and d.as_tuple().exponent < -10 and d != d.quantize(decimal.Decimal("1e-10"),
                                                                          context=decimal.Context(prec=80)):
        raise errors.FeatureNotSupported(f"{kind} bound {text.strip()} is not supported: reeldb's numeric keeps 10 "
                                         "decimal places")


def _text(bound: Any) -> str | None:
    return bound if bound is None or isinstance(bound, str) else values.bound_text(bound)


def _output_name(node: Any) -> str | None:
    """The name PostgreSQL gives an unnamed output: a column's, a function's, a cast's type."""
    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    if isinstance(node, ast.FuncCall):
        return name_of(node.funcname)
    if isinstance(node, ast.TypeCast):
        return _output_name(node.arg) or name_of(node.typeName.names)
    return None


def _first_range(kinds: list[str | None]) -> str | None:
    return next((k for k in kinds if k in KINDS), None)


def _common(kinds: list[str], name: str) -> str:
    if not kinds:
        raise errors.UndefinedFunction(f"function {name}(unknown, unknown) is not unique")
    if len(set(kinds)) > 1:
        raise errors.UndefinedFunction(f"function {name}({', '.join(kinds)}) does not exist")
    return kinds[0]


def _false() -> ast.A_Const:
    return ast.A_Const(val=ast.Boolean(boolval=False))
