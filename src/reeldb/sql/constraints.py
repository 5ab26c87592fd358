"""CHECK constraints: declared, named and enforced on every write (shown by definitions.py).

A constraint (``Schema.checks``) is Postgres SQL text over the table's column names. Every
batch of rows being written (INSERT, UPDATE, COPY, ``db.insert``, the rows a merge brings) is
checked by one DuckDB query over the batch: the first constraint (in name order, as Postgres
checks them) that is false for some row refuses the statement with 23514; NULL passes (SQL
three-valued logic). The expression must be deterministic: subqueries, aggregates, window
and set-returning functions are refused as Postgres refuses them, and volatile functions
(which Postgres accepts but which would make a row's validity change with time) are refused
too. It is bound like any query (the allow-list) when the constraint is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pglast import ast

from .. import errors
from ..engine.engine import internal_name, quote_ident
from ..format.fragment import Batch
from ..format.manifest import CheckConstraint, Column, Fragment, Schema, TableManifest
from ..format.types import PARQUET
from .names import choose_name, local_name
from .parse import deparse, parse, walk

if TYPE_CHECKING:
    from .session import Session

# functions whose answer changes between calls: never in a CHECK or a generated column
VOLATILE = {"nextval", "currval", "setval", "lastval", "random", "random_normal", "now", "clock_timestamp",
             "gen_random_uuid", "statement_timestamp", "transaction_timestamp", "timeofday", "uuid",
             "txid_current", "pg_backend_pid", "current_timestamp", "localtimestamp", "current_date"}
_AGGREGATES = {"count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "array_agg", "string_agg",
               "stddev", "variance", "json_agg", "jsonb_agg"}
_SET_RETURNING = {"generate_series", "unnest", "regexp_matches", "json_each", "jsonb_each", "generate_subscripts"}


# -- declaring ---------------------------------------------------------------------------------
def declare(s: Session, table: str, con: ast.Constraint, columns: list[Column] | tuple[Column, ...],
            taken: set[str], alter: bool = False) -> CheckConstraint:
    """A ``CHECK`` clause of CREATE / ALTER TABLE -> the constraint, named as Postgres names
    it when the clause does not (``taken``: the table's constraint names so far)."""
    if con.is_no_inherit:
        raise errors.FeatureNotSupported("CHECK ... NO INHERIT is not supported: reeldb tables have no inheritance")
    if alter and con.skip_validation:
        raise errors.FeatureNotSupported(
            "ADD CONSTRAINT ... NOT VALID is not supported: reeldb checks the existing rows (drop NOT VALID)")
    expr = con.raw_expr
    by_name = {c.name: c for c in columns}
    used: list[Column] = []
    for node in walk(expr):
        if isinstance(node, ast.SubLink):
            raise errors.FeatureNotSupported("cannot use subquery in check constraint")
        if isinstance(node, ast.ParamRef):
            raise errors.ProgrammingError(f"there is no parameter ${node.number}", sqlstate="42P02")
        if isinstance(node, ast.FuncCall):
            fname = node.funcname[-1].sval.lower()
            if node.over is not None:
                raise errors.ProgrammingError("window functions are not allowed in check constraints",
                                              sqlstate="42P20")
            if node.agg_star or node.agg_distinct or node.agg_filter is not None or fname in _AGGREGATES:
                raise errors.ProgrammingError("aggregate functions are not allowed in check constraints",
                                              sqlstate="42803")
            if fname in _SET_RETURNING:
                raise errors.FeatureNotSupported("set-returning functions are not allowed in check constraints")
            if fname in VOLATILE:
                raise errors.ProgrammingError(
                    f"functions in check constraint must be immutable: {fname}() is not (reeldb checks a row's "
                    "value once, when it is written)", sqlstate="42P17")
        if isinstance(node, ast.SQLValueFunction):
            raise errors.ProgrammingError(
                "functions in check constraint must be immutable: the current time or user is not", sqlstate="42P17")
        if isinstance(node, ast.ColumnRef):
            fields = node.fields
            if isinstance(fields[-1], ast.A_Star):
                raise errors.FeatureNotSupported("a * in a check constraint is not supported")
            if len(fields) > 1:
                raise errors.FeatureNotSupported(
                    f"a qualified column name in a check constraint is not supported: {deparse(node)}")
            name = fields[0].sval
            col = by_name.get(name)
            if col is None:
                raise errors.UndefinedColumn(f'column "{name}" does not exist')
            if col.type.storage != PARQUET or col.type.is_enum:  # an enum would compare as text, not in label order
                raise errors.FeatureNotSupported(
                    f"a check constraint on a {col.type.sql()} column is not supported (column {name})")
            if col not in used:
                used.append(col)
    local = local_name(table)
    if con.conname:
        if con.conname in taken:
            raise errors.DuplicateObject(f'constraint "{con.conname}" for relation "{local}" already exists')
        name = con.conname
    else:  # as Postgres: tab_col_check when the expression reads one column, tab_check otherwise
        name = choose_name(local, used[0].name if len(used) == 1 else None, "check", taken)
    check = CheckConstraint(name, deparse(expr), tuple(c.id for c in used))
    _bind(s, check, columns)
    return check


def taken_names(table: str, schema: Schema) -> set[str]:
    """Names a new constraint of the table cannot take: its checks' and its keys'."""
    local = local_name(table)
    names = {c.name for c in schema.checks} | {f.name for f in schema.foreign_keys}
    for key in schema.uniques:
        names.add(schema.key_name(local, key))
    return names


def _bind(s: Session, check: CheckConstraint, columns: list[Column] | tuple[Column, ...]) -> None:
    """Run the expression once over no rows: an unknown function or operator fails now, and
    a value that is not boolean is Postgres' 42804."""
    empty = pa.table({c.name: pa.array([], c.type.arrow()) for c in columns if c.type.storage == PARQUET}
                     or {"__n": pa.array([], pa.int8())})
    result = _run(s, f"SELECT ({_duck(s, check.expr)}) AS v FROM {{rel}}", empty, check.name)
    typ = result.schema.field(0).type
    if not (pa.types.is_boolean(typ) or pa.types.is_null(typ)):
        raise errors.ProgrammingError(f"argument of CHECK must be type boolean, not type {_pg_name(typ)}",
                                      sqlstate="42804")


def _pg_name(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return {2: "smallint", 4: "integer"}.get(typ.bit_width // 8, "bigint")
    if pa.types.is_floating(typ):
        return "double precision"
    if pa.types.is_decimal(typ):
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text"
    return str(typ)


# -- enforcing ---------------------------------------------------------------------------------
def enforce(s: Session, tm: TableManifest, batch: Batch) -> None:
    """Refuse (23514) a batch of new rows that makes one of the table's checks false."""
    checks = tm.schema.checks
    if not checks or not len(batch):
        return
    failed = first_violation(s, tm.schema, checks, _rows(tm.schema, batch))
    if failed is not None:
        raise errors.CheckViolation(
            f'new row for relation "{local_name(tm.name)}" violates check constraint "{failed.name}"')


def first_violation(s: Session, schema: Schema, checks: tuple[CheckConstraint, ...] | list[CheckConstraint],
                    rows: pa.Table) -> CheckConstraint | None:
    """The first check (by name) some row makes false, in one query over ``rows``."""
    ordered = sorted(checks, key=lambda c: c.name)
    if not ordered or not rows.num_rows:
        return None
    select = ", ".join(f"bool_and(({_duck(s, c.expr)}) IS NOT FALSE) AS c{i}" for i, c in enumerate(ordered))
    result = _run(s, f"SELECT {select} FROM {{rel}}", rows, None)
    for i, c in enumerate(ordered):
        if result.column(i)[0].as_py() is False:
            return c
    return None


def verify_rows(s: Session, tm: TableManifest, checks: tuple[CheckConstraint, ...] | list[CheckConstraint],
                fragments: list[Fragment] | tuple[Fragment, ...], reader: Any) -> CheckConstraint | None:
    """The first of ``checks`` some live row of ``fragments`` makes false (one query per fragment)."""
    if not checks:
        return None
    for frag in fragments:
        positions = np.flatnonzero(reader.live_mask(frag))
        if not len(positions):
            continue
        batch = reader.batch(tm.table_id, frag, tm.schema, positions)
        failed = first_violation(s, tm.schema, checks, _rows(tm.schema, batch))
        if failed is not None:
            return failed
    return None


def add_checked(s: Session, tm: TableManifest, check: CheckConstraint, reader: Any) -> None:
    """ALTER TABLE ... ADD CONSTRAINT: every existing row must hold the new check."""
    if verify_rows(s, tm, [check], tm.fragments, reader) is not None:
        raise errors.CheckViolation(
            f'check constraint "{check.name}" of relation "{local_name(tm.name)}" is violated by some row')


def verify_merge(s: Session, ours: dict[str, TableManifest], tables: dict[str, TableManifest], reader: Any) -> None:
    """A merge's result: the rows it brings (and every row, where it brings a check) hold
    the checks of the merged table; otherwise the merge is refused with 23514."""
    ours_by_id = {tm.table_id: tm for tm in ours.values()}
    for name, tm in tables.items():
        if not tm.schema.checks:
            continue
        before = ours_by_id.get(tm.table_id)
        if before is None or set(before.schema.checks) != set(tm.schema.checks):
            frags = list(tm.fragments)
        else:
            known = {f.id for f in before.fragments}
            frags = [f for f in tm.fragments if f.id not in known]
        failed = verify_rows(s, tm, tm.schema.checks, frags, reader)
        if failed is not None:
            raise errors.CheckViolation(
                f'new row for relation "{local_name(name)}" violates check constraint "{failed.name}" '
                "(a row this merge or revert would bring; nothing was written)")


def _rows(schema: Schema, batch: Batch) -> pa.Table:
    cols = {c.id: c for c in schema.columns}
    data = {cols[cid].name: arr for cid, arr in batch.scalars.items()
            if cid in cols and cols[cid].type.storage == PARQUET}
    return pa.table(data) if data else pa.table({"__n": pa.nulls(len(batch), pa.int8())})


def _duck(s: Session, expr: str) -> str:
    """The expression as DuckDB SQL (bound like any query: rewriter and allow-list)."""
    node = parse(f"SELECT {expr}")[0].stmt.targetList[0].val
    return deparse(s.rewriter([])(node))


def _run(s: Session, sql: str, rows: pa.Table, name: str | None) -> pa.Table:
    rel = internal_name("check", "rows")
    s.engine.register(rel, rows)
    try:
        result, _ = s.engine.arrow(sql.replace("{rel}", quote_ident(rel)))
    except errors.Error as e:
        if name is None:
            raise
        raise type(e)(f'check constraint "{name}": {e}', sqlstate=e.sqlstate) from None
    finally:
        s.engine.unregister(rel)
    return result


# -- schema changes ----------------------------------------------------------------------------
def without_column(checks: tuple[CheckConstraint, ...], cid: int) -> tuple[CheckConstraint, ...]:
    """DROP COLUMN drops the checks that read the column, as Postgres does."""
    return tuple(c for c in checks if cid not in c.columns)


def rename_column(checks: tuple[CheckConstraint, ...], cid: int, old: str, new: str) -> tuple[CheckConstraint, ...]:
    """RENAME COLUMN: the checks that read it read it by its new name."""
    out = []
    for c in checks:
        if cid in c.columns:
            node = parse(f"SELECT {c.expr}")[0].stmt.targetList[0].val
            for ref in walk(node):
                if isinstance(ref, ast.ColumnRef) and isinstance(ref.fields[-1], ast.String) \
                        and ref.fields[-1].sval == old:
                    ref.fields = (ast.String(sval=new),)
            c = CheckConstraint(c.name, deparse(node), c.columns)
        out.append(c)
    return tuple(out)
