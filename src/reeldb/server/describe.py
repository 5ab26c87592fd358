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
from ..format.manifest import TableManifest
from ..format.types import ColumnType, column_type
from ..sql import pgtypes as t
from ..sql.parse import deparse, parse
from ..sql.pgcatalog import type_oid

_KIND_OID = {"int16": t.INT2, "int32": t.INT4, "int64": t.INT8, "float32": t.FLOAT4, "float64": t.FLOAT8,
             "bool": t.BOOL, "text": t.TEXT, "varchar": t.VARCHAR, "bytea": t.BYTEA, "image": t.BYTEA,
             "video": t.BYTEA, "json": t.JSON, "jsonb": t.JSONB, "date": t.DATE, "timestamp": t.TIMESTAMP,
             "timestamptz": t.TIMESTAMPTZ, "uuid": t.UUID, "numeric": t.NUMERIC, "vector": t.VECTOR,
             "halfvec": t.HALFVEC, "time": t.TIME, "interval": t.INTERVAL, "sparsevec": t.SPARSEVEC,
             "bit": t.BIT, "varbit": t.VARBIT, "vector_array": t.VECTOR_ARRAY, "halfvec_array": t.HALFVEC_ARRAY,
             "sparsevec_array": t.SPARSEVEC_ARRAY}


def oid_of(ct: ColumnType) -> int:
    if ct.kind == "tensor":
        return t.TEXT
    return _KIND_OID.get(ct.kind, t.TEXT)


def param_oids(query: str, given: list[int], tables: dict[str, TableManifest], count: int) -> list[int]:
    """The OID of ``$1 .. $count``: the client's where it gave one, else inferred."""
    found: dict[int, int] = {}
    try:
        stmts = parse(query)  # bounded: a too deep or too long statement is refused here
    except errors.SyntaxError:
        stmts = []
    for raw in stmts:
        _Infer(tables, found)(raw.stmt)
    out = []
    for i in range(count):
        g = given[i] if i < len(given) else 0
        out.append(g or found.get(i + 1, t.TEXT))
    return out


class _Infer:
    def __init__(self, tables: dict[str, TableManifest], found: dict[int, int]):
        self.tables = tables
        self.found = found
        self.scope: list[TableManifest] = []

    def __call__(self, node: Any) -> None:
        if isinstance(node, ast.InsertStmt):
            self._insert(node)
        elif isinstance(node, ast.UpdateStmt):
            self._scope(node.relation)
            for target in node.targetList or ():
                self._assign(target.name, target.val)
        elif isinstance(node, ast.DeleteStmt):
            self._scope(node.relation)
        elif isinstance(node, ast.SelectStmt):
            for item in node.fromClause or ():
                self._from(item)
            for key in ("limitCount", "limitOffset"):
                v = getattr(node, key)
                if isinstance(v, ast.ParamRef):
                    self.found.setdefault(v.number, t.INT8)
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

    def _walk(self, node: Any) -> None:
        for sub in _children(node):
            if isinstance(sub, ast.A_Expr):
                self._operator(sub)
            elif isinstance(sub, ast.TypeCast) and isinstance(sub.arg, ast.ParamRef):
                oid = _cast_oid(sub.typeName)
                if oid is not None:
                    self.found.setdefault(sub.arg.number, oid)
            elif isinstance(sub, ast.TypeCast) and isinstance(sub.arg, ast.A_ArrayExpr) and sub.typeName.arrayBounds:
                oid = t.ELEMENT_OF.get(_cast_oid(sub.typeName) or 0)  # ARRAY[$1, $2]::vector[]: each a vector
                for element in sub.arg.elements or ():
                    if oid is not None and isinstance(element, ast.ParamRef):
                        self.found.setdefault(element.number, oid)

    def _operator(self, e: ast.A_Expr) -> None:
        for a, b in ((e.lexpr, e.rexpr), (e.rexpr, e.lexpr)):
            if isinstance(a, ast.ParamRef) and isinstance(b, ast.ColumnRef):
                name = b.fields[-1]
                if isinstance(name, ast.String):
                    ct = self._column(name.sval)
                    if ct is not None:
                        self.found.setdefault(a.number, oid_of(ct))
            elif isinstance(a, ast.ParamRef) and isinstance(b, ast.A_Const) and b.val is not None:
                oid = {ast.Integer: t.INT4, ast.Float: t.NUMERIC, ast.String: t.TEXT,
                       ast.Boolean: t.BOOL}.get(type(b.val))
                if oid is not None:
                    self.found.setdefault(a.number, oid)


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
    select = ast.SelectStmt(targetList=targets, fromClause=(stmt.relation,),
                            whereClause=ast.A_Const(val=ast.Boolean(boolval=False)))
    return deparse(select)
