"""CREATE TEMPORARY TABLE: a session's own scratch tables, as in Postgres.

A temporary table holds intermediate results (a staging area for an ETL step, a list of
ids to join against) for one session: no other session sees it, it is never committed to
a branch, and it is gone when the session ends. It lives in the session's DuckDB
connection as a native table; statements that write to it run there directly, and queries
join it with the branch's tables freely. ``ON COMMIT DROP`` and ``ON COMMIT DELETE ROWS``
act at the end of the transaction. Changes to a temporary table are not undone by
ROLLBACK (they are outside the branch's transaction).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast
from pglast.enums import ConstrType, OnCommitAction

from .. import errors
from ..engine.engine import internal_name, quote_ident
from ..format.types import PARQUET
from .parse import colref, deparse, transform
from .result import Result
from .rewrite import adapt_param
from .rowid_star import finish
from .user_types import type_of

if TYPE_CHECKING:
    from .session import Session

PARAMS = internal_name("params")  # executemany's rows, as a relation


def is_temporary(stmt: ast.CreateStmt) -> bool:
    return stmt.relation.relpersistence == "t"


def create(s: Session, stmt: ast.CreateStmt) -> Result:

    name = stmt.relation.relname
    if stmt.relation.schemaname not in (None, "pg_temp"):
        raise errors.InvalidTableDefinition("cannot create a temporary table in a schema other than pg_temp")
    if name in s.temp_tables or name in s.current_tables():
        if stmt.if_not_exists:
            s.notice(f'relation "{name}" already exists, skipping')
            return Result(status="CREATE TABLE")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    if stmt.inhRelations or stmt.partspec or stmt.ofTypename:
        raise errors.FeatureNotSupported("temporary tables cannot inherit, be partitioned or be typed")
    parts = []
    for elt in stmt.tableElts or ():
        if isinstance(elt, ast.ColumnDef):
            parts.append(_column(s, name, elt))
        elif isinstance(elt, ast.Constraint) and elt.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
            parts.append(deparse(elt))
        else:
            raise errors.FeatureNotSupported(f"{deparse(elt)} is not supported in a temporary table")
    s.engine.execute(f"CREATE TEMPORARY TABLE {quote_ident(name)} ({', '.join(parts)})")
    s.temp_tables[name] = stmt.oncommit
    return Result(status="CREATE TABLE")


def create_as(s: Session, stmt: ast.CreateTableAsStmt, params: list[Any]) -> Result:
    """CREATE TEMPORARY TABLE name AS SELECT ..."""

    name = stmt.into.rel.relname
    if name in s.temp_tables or name in s.current_tables():
        if stmt.if_not_exists:
            return Result(status="SELECT 0")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    query = finish(deparse(s.rewriter(params)(stmt.query)))
    cols = ""
    if stmt.into.colNames:
        cols = " (" + ", ".join(quote_ident(c.sval) for c in stmt.into.colNames) + ")"
    if cols:  # DuckDB takes no column list here: name them in a subquery
        query = f"SELECT * FROM ({query}) AS __q{cols}"
    s.engine.execute(f"CREATE TEMPORARY TABLE {quote_ident(name)} AS {query}", s.duck_params(params, query))
    s.temp_tables[name] = stmt.into.onCommit
    n = s.engine.arrow(f"SELECT count(*) FROM {quote_ident(name)}")[0].column(0)[0].as_py()
    return Result(rowcount=n, status=f"SELECT {n}")


def _column(s: Session, table: str, cd: ast.ColumnDef) -> str:
    """One column in DuckDB's terms (a serial gets a sequence of its own)."""
    ctype = type_of(cd.typeName)
    if (ctype.storage != PARQUET and ctype.kind not in ("vector", "halfvec", "bytea")) \
            or ctype.kind in ("citext", "hstore") or ctype.element_kind is not None:
        # citext, hstore, int[]: their comparisons, functions and checks live in the tables' views
        raise errors.FeatureNotSupported(f"a temporary table cannot hold {ctype.sql()} (column {cd.colname})")
    out = [quote_ident(cd.colname), "BLOB" if ctype.kind == "bytea" else ctype.duck()]
    if ctype.serial:
        seq = f"__seq_{table}_{cd.colname}"
        s.engine.execute(f"CREATE OR REPLACE TEMP SEQUENCE {quote_ident(seq)}")
        out.append(f"DEFAULT nextval('{seq}') NOT NULL")
    for con in cd.constraints or ():
        t = con.contype
        if t == ConstrType.CONSTR_NOTNULL:
            out.append("NOT NULL")
        elif t == ConstrType.CONSTR_DEFAULT:
            out.append("DEFAULT " + finish(deparse(s.rewriter([], stored=True)(con.raw_expr))))
        elif t == ConstrType.CONSTR_PRIMARY:
            out.append("PRIMARY KEY")
        elif t == ConstrType.CONSTR_UNIQUE:
            out.append("UNIQUE")
        elif t != ConstrType.CONSTR_NULL:
            raise errors.FeatureNotSupported(f"{t.name[7:]} constraints are not supported (column {cd.colname})")
    return " ".join(out)


def target(stmt: ast.Node) -> str | None:
    """The relation an INSERT / UPDATE / DELETE writes to."""
    rel = getattr(stmt, "relation", None)
    return rel.relname if isinstance(rel, ast.RangeVar) and rel.schemaname in (None, "pg_temp") else None


def run(s: Session, stmt: ast.Node, params: list[Any], param_rows: list[list[Any]] | None = None) -> Result:
    """A write to a temporary table, run by DuckDB as written (after the usual rewrites);
    ``param_rows``: once per row of parameters (executemany, COPY)."""

    rel = getattr(stmt, "relation", None)
    if isinstance(rel, ast.RangeVar):
        rel.schemaname = None
    verb = {ast.InsertStmt: "INSERT 0", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE"}[type(stmt)]
    if param_rows and _one_values_row(stmt):
        return _insert_rows(s, stmt, param_rows)
    if param_rows:
        total = 0
        for row in param_rows:  # the rewrite edits the tree: a copy for each row
            total += run(s, copy.deepcopy(stmt), row).rowcount
        return Result(rowcount=total, status=f"{verb} {total}")
    sql = finish(deparse(s.rewriter(params)(stmt)))
    table, desc = s.engine.arrow(sql, s.duck_params(params, sql))
    if getattr(stmt, "returningClause", None) is not None:
        return Result(table, desc, table.num_rows, f"{verb} {table.num_rows}")
    n = int(table.column(0)[0].as_py()) if table.num_rows else 0
    return Result(rowcount=n, status=f"{verb} {n}")


def _one_values_row(stmt: ast.Node) -> bool:
    sel = getattr(stmt, "selectStmt", None)
    return (isinstance(stmt, ast.InsertStmt) and stmt.returningClause is None and isinstance(sel, ast.SelectStmt)
            and sel.valuesLists is not None and len(sel.valuesLists) == 1)


def _insert_rows(s: Session, stmt: ast.InsertStmt, param_rows: list[list[Any]]) -> Result:
    """executemany / COPY into a temporary table: the parameter rows become one Arrow
    table and the INSERT one ``INSERT ... SELECT`` over it."""

    width = max(len(r) for r in param_rows)
    columns = {f"__p{i + 1}": pa.array([adapt_param(r[i]) if i < len(r) else None for r in param_rows])
               for i in range(width)}
    row = stmt.selectStmt.valuesLists[0]
    targets = tuple(ast.ResTarget(val=transform(v, lambda n: colref(f"__p{n.number}")
                                                 if isinstance(n, ast.ParamRef) else None)) for v in row)
    stmt.selectStmt = ast.SelectStmt(targetList=targets, fromClause=(ast.RangeVar(relname=PARAMS, inh=True,
                                                                                  relpersistence="p"),))
    sql = finish(deparse(s.rewriter(param_rows[0])(stmt)))
    s.engine.register(PARAMS, pa.table(columns))
    try:
        table, _ = s.engine.arrow(sql)
    finally:
        s.engine.unregister(PARAMS)
    n = int(table.column(0)[0].as_py()) if table.num_rows else 0
    return Result(rowcount=n, status=f"INSERT 0 {n}")


def drop(s: Session, names: list[str]) -> None:
    for name in names:
        s.engine.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
        s.temp_tables.pop(name, None)


def end_of_transaction(s: Session) -> None:
    """ON COMMIT DROP / DELETE ROWS."""
    for name, action in list(s.temp_tables.items()):
        if action == OnCommitAction.ONCOMMIT_DROP:
            drop(s, [name])
        elif action == OnCommitAction.ONCOMMIT_DELETE_ROWS:
            s.engine.execute(f"DELETE FROM {quote_ident(name)}")
