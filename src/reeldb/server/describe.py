"""What Describe of a prepared statement answers before any value is bound: the type of
each ``$n`` from its context, as Postgres infers it.

Strict clients (asyncpg) encode every parameter in binary by the OID they are given, so
``WHERE id = $1`` must say int4, not text. The context read here: INSERT target
columns, ``SET col = $n``, comparisons and other operators against a column,
``$n::type`` casts, LIMIT / OFFSET. Anything else is text, which the SQL layer coerces.
"""

from __future__ import annotations

from typing import Any

from pglast import ast

from .. import errors
from .. import types as t
from ..format.manifest import TableManifest
from ..format.types import ColumnType, column_type
from ..sql.parse import deparse, parse
from ..sql.pgcatalog import FUNCTION_ARG_TYPES, type_oid

_KIND_OID = {"int16": t.INT2, "int32": t.INT4, "int64": t.INT8, "float32": t.FLOAT4, "float64": t.FLOAT8,
             "bool": t.BOOL, "text": t.TEXT, "varchar": t.VARCHAR, "bytea": t.BYTEA, "image": t.BYTEA,
             "video": t.BYTEA, "json": t.JSON, "jsonb": t.JSONB, "date": t.DATE, "timestamp": t.TIMESTAMP,
             "timestamptz": t.TIMESTAMPTZ, "uuid": t.UUID, "numeric": t.NUMERIC, "vector": t.VECTOR,
             "halfvec": t.HALFVEC, "time": t.TIME, "interval": t.INTERVAL, "sparsevec": t.SPARSEVEC,
             "bit": t.BIT, "varbit": t.VARBIT, "vector_array": t.VECTOR_ARRAY, "halfvec_array": t.HALFVEC_ARRAY,
             "sparsevec_array": t.SPARSEVEC_ARRAY, "citext": t.CITEXT, "hstore": t.HSTORE}


def oid_of(ct: ColumnType) -> int:
    if ct.kind == "tensor":
        return t.TEXT
    if ct.element_kind is not None:  # int[], text[]: the element's array type
        return t.ARRAY_OF.get(_KIND_OID.get(ct.element_kind) or oid_of(ColumnType(ct.element_kind)), t.TEXT_ARRAY)
    info = t.by_kind(ct.kind) if ct.kind not in _KIND_OID else None  # int4range ... (types/ranges.py)
    return info.oid if info is not None and info.category == "R" else _KIND_OID.get(ct.kind, t.TEXT)


def param_oids(query: str, given: list[int], tables: dict[str, TableManifest], count: int) -> list[int]:
    """The OID of ``$1 .. $count``: the client's where it gave one, else inferred as
    Postgres infers it; a parameter Postgres cannot type (``pg_typeof($1)``,
    ``$1 IS NULL``) is refused with its 42P18."""
    found: dict[int, int] = {i + 1: oid for i, oid in enumerate(given[:count]) if oid}
    try:
        stmts = parse(query)  # bounded: a too deep or too long statement is refused here
    except errors.SyntaxError:
        stmts = []
    infer = _Infer(tables, found)
    for _ in range(2):  # a second pass types what the first typed ($1::int + $2, $2 = $1)
        infer.scope = []
        for raw in stmts:
            infer(raw.stmt)
    for n in sorted(infer.indeterminate):
        if n not in found and n <= count:
            if infer.indeterminate[n]:
                raise errors.Error("could not determine polymorphic type because input has type unknown",
                                   sqlstate="42804")
            raise errors.Error(f"could not determine data type of parameter ${n}", sqlstate="42P18")
    return [found.get(i + 1, t.TEXT) for i in range(count)]


# operators whose operands Postgres resolves to one type: an unknown one takes the other's
_SAME_TYPE_OPS = frozenset(("=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "<->", "<=>", "<#>",
                            "<+>"))
# functions taking "any": an untyped parameter among their arguments stays unknown (42P18)
_ANY_ARGUMENT = frozenset(("pg_typeof", "concat", "concat_ws", "format", "count", "json_build_object",
                           "json_build_array", "jsonb_build_object", "jsonb_build_array", "num_nulls", "num_nonnulls"))
_POLYMORPHIC = frozenset(("to_json", "to_jsonb"))  # anyelement: unknown is refused with 42804
_INT4_RANGE = range(-(2**31), 2**31)
_INT8_RANGE = range(-(2**63), 2**63)


class _Infer:
    def __init__(self, tables: dict[str, TableManifest], found: dict[int, int]):
        self.tables = tables
        self.found = found
        self.scope: list[TableManifest] = []
        self.indeterminate: dict[int, bool] = {}  # parameter -> refused as polymorphic (42804), not 42P18

    def __call__(self, node: Any) -> None:
        if isinstance(node, ast.InsertStmt):
            self._insert(node)
        elif isinstance(node, ast.UpdateStmt):
            self._scope(node.relation)
            for target in node.targetList or ():
                self._assign(target.name, target.val)
            self._boolean(node.whereClause)
        elif isinstance(node, ast.DeleteStmt):
            self._scope(node.relation)
            self._boolean(node.whereClause)
        elif isinstance(node, ast.SelectStmt):
            for item in node.fromClause or ():
                self._from(item)
            for key in ("limitCount", "limitOffset"):
                v = getattr(node, key)
                if isinstance(v, ast.ParamRef):
                    self.found.setdefault(v.number, t.INT8)
            self._boolean(node.whereClause)
            self._boolean(node.havingClause)
        self._walk(node)

    def _scope(self, rv: Any) -> None:
        if isinstance(rv, ast.RangeVar) and rv.relname in self.tables:
            self.scope.append(self.tables[rv.relname])

    def _from(self, item: Any) -> None:
        if isinstance(item, ast.RangeVar):
            self._scope(item)
        elif isinstance(item, ast.JoinExpr):
            self._from(item.larg)
            self._from(item.rarg)

    def _insert(self, node: ast.InsertStmt) -> None:
        tm = self.tables.get(node.relation.relname)
        if tm is None:
            return
        self.scope.append(tm)
        names = [c.name for c in node.cols] if node.cols else tm.schema.names
        sel = node.selectStmt
        if isinstance(sel, ast.SelectStmt) and sel.valuesLists:
            for row in sel.valuesLists:
                for name, value in zip(names, row, strict=False):
                    self._assign(name, value)

    def _assign(self, name: str, value: Any) -> None:
        if isinstance(value, ast.ParamRef):
            ct = self._column(name)
            if ct is not None:
                self.found.setdefault(value.number, oid_of(ct))

    def _column(self, name: str) -> ColumnType | None:
        for tm in reversed(self.scope):
            if name in tm.schema.names:
                return tm.schema.column(name).type
        for tm in self.tables.values():
            if name in tm.schema.names:
                return tm.schema.column(name).type
        return None

    def _set(self, node: Any, oid: int | None) -> None:
        if isinstance(node, ast.ParamRef) and oid is not None:
            self.found.setdefault(node.number, oid)

    def _boolean(self, node: Any) -> None:
        """A parameter standing where a condition goes is boolean (WHERE $1, $1 AND x)."""
        self._set(node, t.BOOL)

    def type_of(self, node: Any) -> int | None:
        """The type of an operand, where it is plain without running anything."""
        if isinstance(node, ast.ParamRef):
            return self.found.get(node.number)
        if isinstance(node, ast.ColumnRef):
            name = node.fields[-1]
            ct = self._column(name.sval) if isinstance(name, ast.String) else None
            return None if ct is None else oid_of(ct)
        if isinstance(node, ast.TypeCast):
            return _cast_oid(node.typeName)
        if isinstance(node, ast.A_Const) and node.val is not None:
            return _const_oid(node.val)
        if isinstance(node, ast.SQLValueFunction):
            return _SQL_VALUE_FUNCTIONS.get(node.op.name)
        if isinstance(node, ast.FuncCall) and len(node.funcname) == 1 and node.funcname[0].sval == "now":
            return t.TIMESTAMPTZ
        if isinstance(node, ast.FuncCall) and len(node.funcname) == 1:  # int4range(a, b): a range constructor
            info = t.by_name(node.funcname[0].sval)
            return info.oid if info is not None and info.category == "R" else None
        return None

    def _walk(self, node: Any) -> None:
        for sub in _children(node):
            if isinstance(sub, ast.A_Expr):
                self._operator(sub)
            elif isinstance(sub, ast.TypeCast) and isinstance(sub.arg, ast.ParamRef):
                oid = _cast_oid(sub.typeName)
                if oid is not None:
                    self.found.setdefault(sub.arg.number, oid)
            elif isinstance(sub, ast.FuncCall) and sub.funcname[-1].sval.lower() in FUNCTION_ARG_TYPES:
                # a parameter passed to a catalog function
                types = FUNCTION_ARG_TYPES[sub.funcname[-1].sval.lower()]
                for arg, oid in zip(sub.args or (), types, strict=False):
                    if isinstance(arg, ast.ParamRef):
                        self.found.setdefault(arg.number, oid)
            elif isinstance(sub, ast.TypeCast) and isinstance(sub.arg, ast.A_ArrayExpr) and sub.typeName.arrayBounds:
                oid = t.ELEMENT_OF.get(_cast_oid(sub.typeName) or 0)  # ARRAY[$1, $2]::vector[]: each a vector
                for element in sub.arg.elements or ():
                    if oid is not None and isinstance(element, ast.ParamRef):
                        self.found.setdefault(element.number, oid)
            elif isinstance(sub, ast.BoolExpr):
                for arg in sub.args:
                    self._boolean(arg)
            elif isinstance(sub, ast.CaseExpr):
                for when in sub.args or ():
                    if sub.arg is None:
                        self._boolean(when.expr)
                self._common([w.result for w in sub.args or ()] + [sub.defresult])
            elif isinstance(sub, ast.CoalesceExpr | ast.MinMaxExpr):
                self._common(list(sub.args))
            elif isinstance(sub, ast.NullTest) and isinstance(sub.arg, ast.ParamRef):
                self.indeterminate.setdefault(sub.arg.number, False)
            elif isinstance(sub, ast.RowExpr | ast.FuncCall):
                name = "" if isinstance(sub, ast.RowExpr) else sub.funcname[-1].sval.lower()
                if isinstance(sub, ast.RowExpr) or name in _ANY_ARGUMENT or name in _POLYMORPHIC:
                    for a in sub.args or ():
                        if isinstance(a, ast.ParamRef):
                            self.indeterminate.setdefault(a.number, name in _POLYMORPHIC)

    def _common(self, items: list[Any]) -> None:
        """CASE results, COALESCE, GREATEST: one type, the first known one's."""
        oid = next((o for o in map(self.type_of, items) if o is not None), None)
        for item in items:
            self._set(item, oid)

    def _operator(self, e: ast.A_Expr) -> None:
        kind = e.kind.name
        op = e.name[-1].sval if e.name and isinstance(e.name[-1], ast.String) else ""
        if kind in ("AEXPR_IN", "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM",
                    "AEXPR_NOT_BETWEEN_SYM"):
            self._common([e.lexpr, *(e.rexpr or ())])
            return
        if kind in ("AEXPR_OP_ANY", "AEXPR_OP_ALL"):
            element = self.type_of(e.lexpr)
            if isinstance(e.rexpr, ast.ParamRef) and element is not None and element in t.ARRAY_OF:
                self.found.setdefault(e.rexpr.number, t.ARRAY_OF[element])
            return
        if kind == "AEXPR_NULLIF":
            self._common([e.lexpr, e.rexpr])
            return
        if isinstance(e.lexpr, ast.RowExpr) and isinstance(e.rexpr, ast.RowExpr):
            for a, b in zip(e.lexpr.args, e.rexpr.args, strict=False):
                self._common([a, b])
                self.indeterminate.pop(getattr(a, "number", 0), None)
                self.indeterminate.pop(getattr(b, "number", 0), None)
            return
        if kind in ("AEXPR_LIKE", "AEXPR_ILIKE") or op == "||":
            for side in (e.lexpr, e.rexpr):
                self._set(side, t.TEXT)
            return
        for a, b in ((e.lexpr, e.rexpr), (e.rexpr, e.lexpr)):
            if not isinstance(a, ast.ParamRef):
                continue
            if isinstance(b, ast.ColumnRef) or op in _SAME_TYPE_OPS:
                other = self.type_of(b)
                if op == "+" and other in (t.TIMESTAMP, t.TIMESTAMPTZ, t.TIME, t.TIMETZ):
                    other = t.INTERVAL  # there is no timestamp + timestamp: Postgres picks + interval
                elif op == "+" and other == t.DATE and a.number not in self.found:
                    raise errors.Error("operator is not unique: date + unknown", sqlstate="42725")
                elif op in ("*", "/") and other == t.INTERVAL:
                    other = t.FLOAT8
                self._set(a, other)


_SQL_VALUE_FUNCTIONS = {"SVFOP_CURRENT_DATE": t.DATE, "SVFOP_CURRENT_TIMESTAMP": t.TIMESTAMPTZ,
                        "SVFOP_CURRENT_TIMESTAMP_N": t.TIMESTAMPTZ, "SVFOP_LOCALTIMESTAMP": t.TIMESTAMP,
                        "SVFOP_LOCALTIMESTAMP_N": t.TIMESTAMP, "SVFOP_CURRENT_TIME": t.TIMETZ,
                        "SVFOP_LOCALTIME": t.TIME}


def _const_oid(val: Any) -> int | None:
    """A literal's type as Postgres reads it: int4, else int8, else numeric; a quoted
    string is unknown (it takes the other side's type)."""
    if isinstance(val, ast.Integer):
        return t.INT4 if val.ival in _INT4_RANGE else t.INT8
    if isinstance(val, ast.Float):
        digits = val.fval.lstrip("-")
        if digits.isdigit():
            return t.INT8 if int(val.fval) in _INT8_RANGE else t.NUMERIC
        return t.NUMERIC
    if isinstance(val, ast.Boolean):
        return t.BOOL
    return None

def _cast_oid(type_name: ast.TypeName) -> int | None:
    name = type_name.names[-1].sval
    base = type_oid(name)  # Postgres' names (oid, int4, text, vector, ...)
    if base is None:
        mods = [m.val.ival for m in type_name.typmods or () if isinstance(m, ast.A_Const)
                and isinstance(m.val, ast.Integer)]
        try:
            base = oid_of(column_type(name, mods))
        except Exception:  # noqa: BLE001 - an unknown type: the SQL layer will say so
            return None
    if type_name.arrayBounds:
        return t.ARRAY_OF.get(base)
    return base


def _children(node: Any) -> Any:
    """Every AST node below ``node``, depth first."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Node):
            yield n
            for name in n:
                stack.append(getattr(n, name))
        elif isinstance(n, tuple | list):
            stack.extend(n)


def returning_query(query: str) -> str | None:
    """INSERT / UPDATE / DELETE ... RETURNING: a query with the same result columns and no
    rows (``SELECT <returning> FROM <table> WHERE false``), so a Describe before Bind (pg8000
    sends one) answers a RowDescription without running the statement."""
    try:
        stmts = parse(query)
    except errors.Error:
        return None
    if len(stmts) != 1:
        return None
    stmt = stmts[0].stmt
    if not isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt) or stmt.returningClause is None:
        return None
    targets = stmt.returningClause.exprs
    if stmt.withClause is not None or not targets or any(isinstance(n, ast.ParamRef) for n in _children(targets)):
        return None
    others = getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", None) or ()  # UPDATE FROM, DELETE USING
    select = ast.SelectStmt(targetList=targets, fromClause=(stmt.relation, *others),
                            whereClause=ast.A_Const(val=ast.Boolean(boolval=False)))
    return deparse(select)
