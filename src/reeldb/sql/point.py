"""The primary-key lookup path: ``SELECT ... FROM t WHERE key = $1 [AND ...]``.

A scan of the table's Arrow data costs milliseconds per query; a web service or a
labelling tool asks for one row by id many times a second. When the WHERE clause has an
equality on a single-column primary or unique key at its top level, the engine finds the
matching rows in a sorted index of that column and the statement runs unchanged over
just those rows (the rest of the WHERE clause, the projection and any aggregate still
apply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType

from ..engine.engine import LIVE, duck_type_name
from ..format.manifest import Schema
from .parse import const_value, name_of
from .rewrite import Rewriter

if TYPE_CHECKING:
    from .session import Session


# key types whose equality is Python's: integers and text (a uuid key compares as uuid)
_EXACT_KINDS = frozenset(("int16", "int32", "int64", "text", "varchar"))


def run(s: Session, stmt: ast.SelectStmt, params: list[Any]) -> tuple[pa.Table, list] | None:
    """The statement's result through a key lookup, or None where it does not apply."""
    if stmt.op != 0 or stmt.valuesLists or stmt.withClause or stmt.lockingClause or stmt.intoClause:
        return None
    if not stmt.fromClause or len(stmt.fromClause) != 1 or stmt.whereClause is None:
        return None
    rv = stmt.fromClause[0]
    if not isinstance(rv, ast.RangeVar) or rv.schemaname not in (None, "public") or rv.inh is False:
        return None
    bt = s.engine.bound.get(rv.relname)
    if bt is None or Rewriter.names_rowid(stmt):
        return None
    schema = bt.manifest.schema
    keys = {schema.by_id(k[0]).name for k in schema.uniques
            if len(k) == 1 and schema.by_id(k[0]).type.kind in _EXACT_KINDS}
    if not keys:
        return None
    qualifiers = {rv.relname, rv.alias.aliasname if rv.alias is not None else rv.relname}
    found = _key_equality(stmt.whereClause, keys, qualifiers, params)
    if found is None:
        return None
    rows = s.engine.point_rows(rv.relname, *found)
    if rows is None:
        return None
    plain = _plain_columns(stmt, schema, qualifiers)
    if plain is not None:
        return _project(rows, schema, plain)
    if rv.alias is None:
        rv.alias = ast.Alias(aliasname=rv.relname)
    rv.relname = s.engine.point_relation(rv.relname, rows)
    return s.run_query(stmt, params)


def _plain_columns(stmt: ast.SelectStmt, schema: Schema, qualifiers: set[str]) -> list[tuple[str, str]] | None:
    """(output name, column) of ``SELECT a, b AS x, * FROM t WHERE key = v``: a statement
    that only picks columns of the rows found needs no SQL engine."""
    if (stmt.sortClause or stmt.limitCount is not None or stmt.limitOffset is not None or stmt.distinctClause
            or stmt.groupClause or stmt.havingClause or stmt.windowClause or isinstance(stmt.whereClause, ast.BoolExpr)):
        return None
    out: list[tuple[str, str]] = []
    for rt in stmt.targetList:
        v = rt.val
        if not isinstance(v, ast.ColumnRef):
            return None
        parts = v.fields
        if len(parts) == 2 and not (isinstance(parts[0], ast.String) and parts[0].sval in qualifiers) \
                or len(parts) > 2:
            return None
        if isinstance(parts[-1], ast.A_Star):
            out.extend((c.name, c.name) for c in schema.columns)
        elif schema.find(parts[-1].sval) is not None:
            out.append((rt.name or parts[-1].sval, parts[-1].sval))
        else:
            return None  # an unknown column: the general path reports it
    return out


def _project(rows: pa.Table, schema: Schema, columns: list[tuple[str, str]]) -> tuple[pa.Table, list]:
    live = rows.filter(rows.column(LIVE))
    arrays, description = [], []
    for name, col in columns:
        arrays.append(live.column(col))
        description.append((name, duck_type_name(schema.column(col).type.duck())))
    return pa.Table.from_arrays(arrays, names=[n for n, _ in columns]), description


def _key_equality(where: ast.Node, keys: set[str], qualifiers: set[str],
                  params: list[Any]) -> tuple[str, Any] | None:
    """(column, value) of a top-level ``key = constant-or-parameter`` conjunct."""
    conjuncts = where.args if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR \
        else (where,)
    for c in conjuncts:
        if not (isinstance(c, ast.A_Expr) and c.kind == A_Expr_Kind.AEXPR_OP and name_of(c.name) == "="):
            continue
        for col, other in ((c.lexpr, c.rexpr), (c.rexpr, c.lexpr)):
            name = _key_column(col, keys, qualifiers)
            if name is None:
                continue
            if isinstance(other, ast.A_Const) and not other.isnull:
                return name, const_value(other)
            if isinstance(other, ast.ParamRef) and 0 < other.number <= len(params):
                return name, params[other.number - 1]
    return None


def _key_column(node: ast.Node, keys: set[str], qualifiers: set[str]) -> str | None:
    if not isinstance(node, ast.ColumnRef) or not all(isinstance(f, ast.String) for f in node.fields):
        return None
    parts = [f.sval for f in node.fields]
    if len(parts) == 2 and parts[0] not in qualifiers or len(parts) > 2:
        return None
    return parts[-1] if parts[-1] in keys else None
