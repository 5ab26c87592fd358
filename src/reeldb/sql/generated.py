"""Generated columns: ``GENERATED ALWAYS AS (expr) STORED``.

The expression (``Column.generated``) is computed from the row's other columns whenever a
row is written (INSERT, UPDATE, COPY, ``db.insert``), by DuckDB over the values being
written, so the stored value always follows them, as in Postgres. A value given for the
column is refused (428C9) unless it is DEFAULT. The expression may name only the table's
other, ordinary columns, and no subquery, aggregate, window or sequence function.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast

from .. import errors
from ..engine.engine import internal_name, quote_ident
from ..format.manifest import Column, TableManifest
from ..format.types import PARQUET
from .constraints import VOLATILE
from .parse import deparse, parse, walk

if TYPE_CHECKING:
    from .session import Session

def check_expression(s: Session, table: str, col: Column, columns: list[Column]) -> None:
    """Refuse a generation expression Postgres refuses, before the table exists; then run
    it once over no rows, so that an unknown column or function fails now."""
    assert col.generated is not None
    if col.type.storage != PARQUET:
        raise errors.FeatureNotSupported(f"a generated {col.type.sql()} column is not supported (column {col.name})")
    expr = parse(f"SELECT {col.generated}")[0].stmt.targetList[0].val
    by_name = {c.name: c for c in columns}
    for node in walk(expr):
        if isinstance(node, ast.SubLink):
            raise errors.FeatureNotSupported("cannot use subquery in column generation expression")
        if isinstance(node, ast.FuncCall):
            fname = node.funcname[-1].sval.lower()
            if node.over is not None or node.agg_star or fname in ("count", "sum", "avg", "min", "max"):
                raise errors.ProgrammingError("aggregate functions are not allowed in column generation expressions",
                                              sqlstate="42803")
            if fname in VOLATILE:
                raise errors.ProgrammingError("generation expression is not immutable", sqlstate="42P17")
        if isinstance(node, ast.SQLValueFunction):  # CURRENT_DATE, CURRENT_USER, ...
            raise errors.ProgrammingError("generation expression is not immutable", sqlstate="42P17")
        if isinstance(node, ast.ColumnRef):
            name = node.fields[-1].sval if isinstance(node.fields[-1], ast.String) else None
            other = by_name.get(name or "")
            if other is None:
                raise errors.UndefinedColumn(f'column "{name}" does not exist')
            if other.generated is not None:
                raise errors.ProgrammingError(f'cannot use generated column "{name}" in column generation expression',
                                              sqlstate="42P17")
    _evaluate(s, col, {c.name: pa.array([], c.type.arrow()) for c in columns if c.generated is None
                       and c.type.storage == PARQUET}, 0)


def fill(s: Session, tm: TableManifest, data: dict[str, Any], n: int, inserting: bool) -> dict[str, Any]:
    """``data`` with every generated column computed from the row's other values (the
    defaults of columns not given are drawn here, once)."""
    generated = [c for c in tm.schema.columns if c.generated is not None]
    if not generated:
        return data
    out = dict(data)
    for c in generated:
        if inserting and c.name in data and _given(data[c.name]):
            raise errors.ProgrammingError(
                f'cannot insert a non-DEFAULT value into column "{c.name}": column "{c.name}" is a generated column',
                sqlstate="428C9")
    from ..format.values import check_scalars

    inputs: dict[str, Any] = {}
    for c in tm.schema.columns:
        if c.generated is not None or c.type.storage != PARQUET:
            continue
        if c.name not in out:
            out[c.name] = s.default_values(tm, c, n)
        vals = out[c.name]
        inputs[c.name] = vals if isinstance(vals, pa.Array | pa.ChunkedArray) else check_scalars(c.type, c.name, vals)
    for c in generated:
        out[c.name] = _evaluate(s, c, inputs, n)
    return out


def _given(vals: Any) -> bool:
    if isinstance(vals, pa.Array | pa.ChunkedArray):
        return vals.null_count < len(vals)
    return any(v is not None for v in vals)


def _evaluate(s: Session, col: Column, inputs: dict[str, Any], n: int) -> pa.Array:
    rel = internal_name("gen", col.name)
    table = pa.table(inputs) if inputs else pa.table({"__n": pa.nulls(n, pa.int8())})
    expr = s.rewriter([])(parse(f"SELECT {col.generated}")[0].stmt.targetList[0].val)
    sql = f"SELECT CAST(({deparse(expr)}) AS {col.type.duck()}) FROM {quote_ident(rel)}"
    s.engine.register(rel, table)
    try:
        result, _ = s.engine.arrow(sql)
    except errors.Error as e:
        raise type(e)(f'generated column "{col.name}": {e}') from None
    finally:
        s.engine.unregister(rel)
    return result.column(0).combine_chunks() if result.num_rows else pa.array([], col.type.arrow())


def check_update(tm: TableManifest, targets: dict[str, ast.Node]) -> None:
    """UPDATE may set a generated or GENERATED ALWAYS identity column only to DEFAULT."""
    for name, value in targets.items():
        col = tm.schema.find(name)
        if col is not None and (col.generated is not None or col.identity == "a") \
                and not isinstance(value, ast.SetToDefault):
            raise errors.ProgrammingError(f'column "{name}" can only be updated to DEFAULT', sqlstate="428C9")


# -- schema changes ----------------------------------------------------------------------------
def _refs(expr: str) -> tuple[ast.Node, list[ast.ColumnRef]]:
    node = parse(f"SELECT {expr}")[0].stmt.targetList[0].val
    return node, [n for n in walk(node) if isinstance(n, ast.ColumnRef) and isinstance(n.fields[-1], ast.String)]


def dependents(columns: tuple[Column, ...], name: str) -> list[Column]:
    """The generated columns whose expression reads column ``name``."""
    return [c for c in columns if c.generated is not None
            and any(r.fields[-1].sval == name for r in _refs(c.generated)[1])]


def rename_column(columns: tuple[Column, ...], old: str, new: str) -> tuple[Column, ...]:
    """RENAME COLUMN: generation expressions that read the column read it by its new name,
    as Postgres keeps them (it stores them parsed, by column number)."""
    out = []
    for c in columns:
        if c in dependents((c,), old):
            node, refs = _refs(c.generated)
            for ref in refs:
                if ref.fields[-1].sval == old:
                    ref.fields = (ast.String(sval=new),)
            c = dataclasses.replace(c, generated=deparse(node))
        out.append(c)
    return tuple(out)
