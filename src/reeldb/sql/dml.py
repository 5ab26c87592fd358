"""INSERT / UPDATE / DELETE: checked values -> new fragments and deletion vectors.

Every value is checked against its column's type before a byte is written, so bad
input fails the statement and leaves the database as it was. UPDATE writes the new row
versions (same ``_rowid``) as a fragment and deletes the old ones (merge-on-read);
blobs and unchanged matrix rows are carried by reference or gathered, never re-encoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pglast import ast

from .. import errors
from ..engine.engine import GPOS, BoundTable, internal_name, quote_ident
from ..format.arrays import cell_value
from ..format.blobs import PackWriter, blobs_from_arrow, check_blobs
from ..format.fragment import Batch, write_fragment
from ..format.manifest import Column, TableManifest
from ..format.types import (
    BLOB,
    MATRIX,
    MatrixColumn,
    check_enum_values,
    check_matrix,
    matrix_from_arrow,
    parse_vector_text,
)
from ..format.values import check_scalars, scalars_from_arrow
from . import constraints, generated
from .ddl import check_identity_insert
from .names import table_name
from .parse import const_value, deparse, expand_stars, name_of, walk
from .result import Result

if TYPE_CHECKING:
    from .session import Session

FRAGMENT_ROWS = 65536


class _Default:
    """The DEFAULT keyword in a VALUES row."""


DEFAULT = _Default()


# -- building a batch ------------------------------------------------------------------------
def build_batch(s: Session, tm: TableManifest, data: dict[str, list[Any] | pa.Array], n: int,
                rowids: np.ndarray | None = None,
                matrices: dict[str, MatrixColumn] | None = None) -> Batch:
    """Column values (Python lists or Arrow arrays, by column name) -> a checked Batch."""
    unknown = set(data) - set(tm.schema.names) - set(matrices or {})
    if unknown:
        raise errors.UndefinedColumn(f'column "{sorted(unknown)[0]}" of relation "{tm.name}" does not exist')
    data = generated.fill(s, tm, data, n, inserting=rowids is None)  # GENERATED ALWAYS AS (...) STORED
    pack = PackWriter()
    if rowids is None:
        start = s.catalog.rowids(n) if n else 0
        rowids = np.arange(start, start + n, dtype=np.int64)
    batch = Batch(rowids)
    for col in tm.schema.columns:
        if matrices and col.name in matrices:
            m = matrices[col.name]
            _not_null(col, tm, int((~m.valid).sum()))
            batch.matrices[col.id] = m
            continue
        vals = data[col.name] if col.name in data else s.default_values(tm, col, n)
        if col.type.storage == MATRIX:
            m = matrix_from_arrow(col.type, col.name, vals) if isinstance(vals, pa.Array | pa.ChunkedArray) \
                else check_matrix(col.type, col.name, vals)
            _not_null(col, tm, int((~m.valid).sum()))
            batch.matrices[col.id] = m
        elif col.type.storage == BLOB:
            arr = blobs_from_arrow(col.type, col.name, vals, pack, s.probe) \
                if isinstance(vals, pa.Array | pa.ChunkedArray) else check_blobs(col.type, col.name, vals, pack, s.probe)
            _not_null(col, tm, arr.null_count)
            batch.scalars[col.id] = arr
        else:
            arr = scalars_from_arrow(col.type, col.name, vals) if isinstance(vals, pa.Array | pa.ChunkedArray) \
                else check_scalars(col.type, col.name, vals)
            if col.type.is_enum:
                check_enum_values(col.type, col.name, arr)
            _not_null(col, tm, arr.null_count)
            batch.scalars[col.id] = arr
    constraints.enforce(s, tm, batch)  # CHECK constraints, after NOT NULL as in Postgres
    pack.flush(s.catalog.store)
    return batch


def _not_null(col: Column, tm: TableManifest, nulls: int) -> None:
    if col.not_null and nulls:
        raise errors.NotNullViolation(
            f'null value in column "{col.name}" of relation "{tm.name}" violates not-null constraint'
        )


def write_rows(s: Session, name: str, data: dict[str, Any], n: int, rowids: np.ndarray | None = None,
               matrices: dict[str, MatrixColumn] | None = None) -> list:
    """Check, write and stage rows; returns the fragments written."""
    txn = s.write_txn()
    tm = txn.table(name)
    frags = []
    for start in progress(range(0, n, FRAGMENT_ROWS), f"insert {name}", "fragment"):
        stop = min(n, start + FRAGMENT_ROWS)
        part = {k: v[start:stop] for k, v in data.items()}
        mparts = {k: MatrixColumn(m.values[start:stop], m.valid[start:stop]) for k, m in (matrices or {}).items()}
        batch = build_batch(s, tm, part, stop - start, None if rowids is None else rowids[start:stop], mparts)
        frag = write_fragment(s.catalog.store, tm.table_id, batch)
        frags.append(frag)
    for frag in frags:
        txn.append(name, frag)
    txn.check_unique(name, frags)
    return frags


def progress(steps: range, desc: str, unit: str) -> Any:
    """A progress bar for writes of several fragments (off when stderr is not a tty)."""
    if len(steps) <= 1:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc=desc, unit=unit, leave=False, disable=None)


# -- INSERT ------------------------------------------------------------------------------------
def insert(s: Session, stmt: ast.InsertStmt, params: list[Any], param_rows: list[list[Any]] | None = None) -> Result:

    if stmt.onConflictClause is not None:
        raise errors.FeatureNotSupported("INSERT ... ON CONFLICT is not supported yet")
    if stmt.withClause is not None:
        raise errors.FeatureNotSupported("WITH ... INSERT is not supported yet; use INSERT ... SELECT with a subquery")
    name = table_name(stmt.relation)
    txn = s.write_txn()
    tm = txn.table(name)
    target = [rt.name for rt in stmt.cols] if stmt.cols else tm.schema.names
    for t in target:
        tm.schema.column(t)
    if len(set(target)) != len(target):
        raise errors.DuplicateColumn("column specified more than once in INSERT")
    check_identity_insert(tm, target, stmt)
    sel = stmt.selectStmt
    data: dict[str, Any]
    if sel is None:  # DEFAULT VALUES
        data, n = {}, 1
    elif sel.valuesLists and not sel.fromClause:
        rows = []
        for prow in (param_rows if param_rows is not None else [params]):
            for vl in sel.valuesLists:
                if len(vl) != len(target):
                    raise errors.SyntaxError(
                        f"INSERT has {'more' if len(vl) > len(target) else 'fewer'} expressions than target columns"
                    )
                rows.append(_eval_row(s, vl, prow))
        n = len(rows)
        data = {}
        for j, col in enumerate(target):
            vals = [r[j] for r in rows]
            if any(v is DEFAULT for v in vals):
                dflt = s.default_values(tm, tm.schema.column(col), n)
                vals = [dflt[i] if v is DEFAULT else v for i, v in enumerate(vals)]
            data[col] = vals
    else:
        table, _ = s.run_query(sel, params)
        if table.num_columns != len(target):
            raise errors.SyntaxError(
                f"INSERT has {'more' if table.num_columns > len(target) else 'fewer'} expressions than target columns"
            )
        n = table.num_rows
        data = {col: table.column(i) for i, col in enumerate(target)}
    frags = write_rows(s, name, data, n)
    alias = stmt.relation.alias.aliasname if stmt.relation.alias else None  # INSERT INTO t AS x
    returning = _returning(s, name, frags, stmt.returningClause, params, alias)
    s.finish_write()
    return Result(table=returning[0] if returning else None, description=returning[1] if returning else None,
                  rowcount=n, status=f"INSERT 0 {n}")


def _eval_row(s: Session, vl: tuple, prow: list[Any]) -> list[Any]:
    out: list[Any] = []
    slow: list[tuple[int, ast.Node]] = []
    for i, node in enumerate(vl):
        v = _simple_value(node, prow)
        if v is _SLOW:
            slow.append((i, node))
            out.append(None)
        else:
            out.append(v)
    if slow:
        rw = s.rewriter(prow)
        exprs = ", ".join(deparse(rw(node)) for _, node in slow)
        table, _ = s.engine.arrow(f"SELECT {exprs}", s.duck_params(prow, exprs))
        for j, (i, _) in enumerate(slow):
            out[i] = cell_value(table.column(j)[0])
    return out


_SLOW = object()
_TEXT_TYPES = {"vector", "halfvec", "sparsevec", "bit", "varbit", "tensor", "json", "jsonb", "bytea", "blob", "image", "video", "uuid",
               "text", "varchar", "date", "timestamp", "timestamptz"}


def _simple_value(node: ast.Node, prow: list[Any]) -> Any:
    if isinstance(node, ast.A_Const):
        return const_value(node)
    if isinstance(node, ast.ParamRef):
        if not 0 < node.number <= len(prow):
            raise errors.UndefinedParameter(f"there is no parameter ${node.number}")
        return prow[node.number - 1]
    if isinstance(node, ast.SetToDefault):
        return DEFAULT
    if isinstance(node, ast.TypeCast) and name_of(node.typeName.names) in _TEXT_TYPES:
        inner = _simple_value(node.arg, prow)
        if inner is not _SLOW and (inner is None or isinstance(inner, str)):
            tn = node.typeName
            if inner is not None and name_of(tn.names) in ("vector", "halfvec") and tn.typmods and not tn.arrayBounds:
                want = const_value(tn.typmods[0])
                got = len(parse_vector_text(inner, name_of(tn.names)))
                if got != want:
                    raise errors.DataError(f"expected {want} dimensions, not {got}")
            return inner
    return _SLOW


def _returning(s: Session, name: str, frags: list, clause: Any, params: list[Any], alias: str | None = None,
               joined: pa.Table | None = None, others: dict[str, list[str] | None] | None = None):
    """RETURNING over the rows a statement wrote (``frags``), as ``alias``; ``joined`` holds,
    row for row, the FROM items' rows each was updated with (a struct column per item)."""
    if clause is None:
        return None
    tm = s.write_txn().table(name)
    bt = s.engine.bind_table(internal_name("ret", name), _only(tm, {f.id for f in frags}))
    return _select_over(s, bt, clause, params, alias or name, joined, others)


def from_items(s: Session, items: Any) -> dict[str, list[str] | None]:
    """The FROM (or USING) items of an UPDATE or DELETE: alias -> its column names, None
    where reeldb does not list them here (subqueries, functions, joins, other branches)."""
    out: dict[str, list[str] | None] = {}
    tables = s.current_tables()
    for item in items:
        if isinstance(item, ast.JoinExpr) and item.alias is None:  # a JOIN b: each side is an item
            out.update(from_items(s, (item.larg, item.rarg)))
            continue
        alias = getattr(item, "alias", None)
        if isinstance(item, ast.RangeVar):
            name = alias.aliasname if alias else item.relname
            tm = tables.get(item.relname) if item.schemaname in (None, "public") else None
            names = None if tm is None else list(tm.schema.names)
            if names is not None and alias is not None and alias.colnames:
                renamed = [c.sval for c in alias.colnames]
                names = renamed + names[len(renamed):]
            out[name] = names
        elif alias is not None:
            out[alias.aliasname] = None
    return out


def _qualify_returning(clause: Any, alias: str, names: list[str], others: dict[str, list[str] | None]) -> None:
    """RETURNING of UPDATE ... FROM names the updated table's and the FROM items' columns; an
    unqualified name is qualified with the one item that has it (42702 if two do, as in
    Postgres; 0A000 where an item's columns are unknown here and the name is not the table's)."""
    for node in walk(clause):
        if not isinstance(node, ast.ColumnRef) or len(node.fields) != 1 or not isinstance(node.fields[0], ast.String):
            continue
        column = node.fields[0].sval
        owners = [alias] if column in names else []
        owners += [item for item, cols in others.items() if cols is not None and column in cols]
        if len(owners) > 1:
            raise errors.AmbiguousColumn(f'column reference "{column}" is ambiguous')
        if not owners and any(cols is None for cols in others.values()):
            raise errors.FeatureNotSupported(
                f'RETURNING "{column}" of UPDATE ... FROM: qualify it with its table\'s name')
        if owners and owners[0] != alias:
            node.fields = (ast.String(sval=owners[0]), node.fields[0])


def _only(tm: TableManifest, ids: set[str]) -> TableManifest:
    out = TableManifest(tm.table_id, tm.name, tm.schema)
    for f in tm.fragments:
        if f.id in ids:
            out.append(f)
    return out


def _select_over(s: Session, bt: BoundTable, clause: Any, params: list[Any], alias: str,
                 joined: pa.Table | None = None, others: dict[str, list[str] | None] | None = None):
    rw = s.rewriter(params)
    exprs = expand_stars(clause.exprs, alias, bt.manifest.schema.names, others)
    if joined is not None:  # b.w reads field w of the joined row's struct b, whatever t's columns are called
        for node in walk(exprs):
            if isinstance(node, ast.ColumnRef) and len(node.fields) == 2 and isinstance(node.fields[0], ast.String) \
                    and node.fields[0].sval in (others or {}):
                node.fields = (ast.String(sval=_JOINED), *node.fields)
    targets = ", ".join(_target_sql(rw, rt) for rt in exprs)
    a = quote_ident(alias)
    if joined is None:
        sql = f"SELECT {targets} FROM {quote_ident(bt.view)} AS {a} ORDER BY {GPOS}"
        return s.engine.arrow(sql, s.duck_params(params, sql))
    # the i-th row written is the i-th of ``joined``: a FROM item's name reads its struct column
    rel = internal_name("retfrom", bt.manifest.name)
    s.engine.register(rel, joined)
    try:
        sql = (f"SELECT {targets} FROM (SELECT *, row_number() OVER (ORDER BY {GPOS}) - 1 AS {_ORDINAL} "
               f"FROM {quote_ident(bt.view)}) AS {a} JOIN {rel} AS {_JOINED} "
               f"ON {_JOINED}.{_ORDINAL} = {a}.{_ORDINAL} ORDER BY {a}.{GPOS}")
        return s.engine.arrow(sql, s.duck_params(params, sql))
    finally:
        s.engine.unregister(rel)


_ORDINAL, _JOINED = "__reeldb_ordinal", "__reeldb_joined"  # longer than no user name: internal


def _target_sql(rw: Any, rt: ast.ResTarget) -> str:
    expr = deparse(rw(rt.val))
    return f"{expr} AS {quote_ident(rt.name)}" if rt.name else expr


# -- UPDATE ------------------------------------------------------------------------------------
def update(s: Session, stmt: ast.UpdateStmt, params: list[Any]) -> Result:

    name = table_name(stmt.relation)
    txn = s.write_txn()
    tm = txn.table(name)
    bt = s.engine.bind_table(name, tm)
    alias = stmt.relation.alias.aliasname if stmt.relation.alias else name
    rw = s.rewriter(params)
    sets: dict[str, ast.Node] = {}
    for rt in stmt.targetList:
        if rt.indirection:
            raise errors.FeatureNotSupported("UPDATE of a field or element of a column is not supported")
        if isinstance(rt.val, ast.MultiAssignRef):
            raise errors.FeatureNotSupported("UPDATE ... SET (a, b) = (...) is not supported yet")
        col = tm.schema.find(rt.name)
        if col is None:
            raise errors.UndefinedColumn(f'column "{rt.name}" of relation "{name}" does not exist')
        if rt.name in sets:
            raise errors.SyntaxError(f'multiple assignments to same column "{rt.name}"')
        sets[rt.name] = rt.val
    generated.check_update(tm, sets)
    others = from_items(s, stmt.fromClause or ())
    if others and stmt.returningClause is not None:
        _qualify_returning(stmt.returningClause, alias, tm.schema.names, others)
    a = quote_ident(alias)
    select = [f"{a}.{GPOS} AS {GPOS}", f"{a}._rowid AS _rowid"]
    if stmt.returningClause is not None:  # each FROM item's row, as a struct, for RETURNING
        select += [f"{_row_struct(item, cols, tm.schema.names)} AS {quote_ident(_from_column(k))}"
                   for k, (item, cols) in enumerate(others.items())]
    for col in tm.schema.columns:
        if col.name in sets:
            node = sets[col.name]
            expr = "NULL" if isinstance(node, ast.SetToDefault) else deparse(rw(node))
            if isinstance(node, ast.SetToDefault):
                if col.default is None and not col.type.serial:
                    expr = "NULL"
                else:
                    raise errors.FeatureNotSupported("UPDATE ... SET col = DEFAULT for a column with a default")
            select.append(f"{expr} AS {quote_ident(col.name)}")
        elif col.type.storage != MATRIX:
            select.append(f"{a}.{quote_ident(col.name)}")
    sql = f"SELECT {', '.join(select)} FROM {quote_ident(bt.view)} AS {a}"
    if stmt.fromClause:
        sql += ", " + ", ".join(deparse(rw(f)) for f in stmt.fromClause)
    if stmt.whereClause is not None:
        sql += " WHERE " + deparse(rw(stmt.whereClause))
    table, _ = s.engine.arrow(sql, s.duck_params(params, sql))
    gpos = table.column(GPOS).to_numpy()
    _, first = np.unique(gpos, return_index=True)  # a row matched twice by a join updates once
    if len(first) != len(gpos):
        table = table.take(pa.array(np.sort(first)))
        gpos = table.column(GPOS).to_numpy()
    n = table.num_rows
    if n:
        data = {c.name: table.column(c.name) for c in tm.schema.columns if c.name in table.column_names}
        mats = {c.name: gather_matrix(s, bt, c, gpos) for c in tm.schema.columns
                if c.type.storage == MATRIX and c.name not in sets}
        txn.delete(name, bt.locate(gpos))
        frags = write_rows(s, name, data, n, rowids=table.column("_rowid").to_numpy(), matrices=mats)
    else:
        frags = []
    joined = None
    if others and stmt.returningClause is not None:
        joined = pa.table({_ORDINAL: pa.array(np.arange(n, dtype=np.int64)),
                           **{item: table.column(_from_column(k)) for k, item in enumerate(others)}})
    returning = _returning(s, name, frags, stmt.returningClause, params, alias, joined, others)
    s.finish_write()
    return Result(table=returning[0] if returning else None, description=returning[1] if returning else None,
                  rowcount=n, status=f"UPDATE {n}")


def _row_struct(item: str, columns: list[str] | None, target: list[str]) -> str:
    """A FROM item's row as a struct: its columns named one by one, or (a subquery's, whose
    columns are not listed here) DuckDB's row of the alias, which a column of the updated
    table with the same name would shadow."""
    q = quote_ident(item)
    if columns is not None:
        return "struct_pack(" + ", ".join(f"{quote_ident(c)} := {q}.{quote_ident(c)}" for c in columns) + ")"
    if item in target:
        raise errors.FeatureNotSupported(f'RETURNING of UPDATE ... FROM a subquery named "{item}", as a column of '
                                         "the updated table is: rename the subquery")
    return q


def _from_column(k: int) -> str:
    return f"__reeldb_from_{k}"


def gather_matrix(s: Session, bt: BoundTable, col: Column, gpos: np.ndarray) -> MatrixColumn:
    """Rows of a matrix column at global positions, read from the mapped files."""
    values = np.zeros((len(gpos), *col.type.row_shape), dtype=col.type.np_dtype)
    valid = np.zeros(len(gpos), dtype=bool)
    frags = bt.manifest.fragments
    idx = np.searchsorted(bt.offsets, gpos, side="right") - 1
    norms = bt.arrow.column(f"__n{col.id}")
    for i in np.unique(idx):
        sel = np.flatnonzero(idx == i)
        local = gpos[sel] - bt.offsets[i]
        frag = frags[i]
        if col.id not in dict(frag.mats):
            continue
        values[sel] = s.catalog.reader.matrix(bt.manifest.table_id, frag, col)[local]
        valid[sel] = norms.take(pa.array(gpos[sel])).is_valid().to_numpy(zero_copy_only=False)
    return MatrixColumn(values, valid)


# -- DELETE ------------------------------------------------------------------------------------
def delete(s: Session, stmt: ast.DeleteStmt, params: list[Any]) -> Result:

    name = table_name(stmt.relation)
    txn = s.write_txn()
    tm = txn.table(name)
    bt = s.engine.bind_table(name, tm)
    alias = quote_ident(stmt.relation.alias.aliasname if stmt.relation.alias else name)
    rw = s.rewriter(params)
    targets = [f"{alias}.{GPOS} AS {GPOS}"]
    if stmt.returningClause is not None:
        names = tm.schema.names
        others = from_items(s, stmt.usingClause or ())
        targets += [_target_sql(rw, rt) for rt in
                    expand_stars(stmt.returningClause.exprs, alias.strip('"'), names, others)]
    sql = f"SELECT {', '.join(targets)} FROM {quote_ident(bt.view)} AS {alias}"
    if stmt.usingClause:
        sql += ", " + ", ".join(deparse(rw(u)) for u in stmt.usingClause)
    if stmt.whereClause is not None:
        sql += " WHERE " + deparse(rw(stmt.whereClause))
    sql += f" ORDER BY {alias}.{GPOS}"
    table, desc = s.engine.arrow(sql, s.duck_params(params, sql))
    gpos, first = np.unique(table.column(GPOS).to_numpy(), return_index=True)
    if len(first) != table.num_rows:  # a row USING matched twice is deleted, and returned, once
        table = table.take(pa.array(np.sort(first)))
    if len(gpos):
        txn.delete(name, bt.locate(gpos))
    s.finish_write()
    n = len(gpos)
    ret = None
    if stmt.returningClause is not None:
        ret = table.drop_columns([GPOS])
        desc = desc[1:]
    return Result(table=ret, description=desc if ret is not None else None, rowcount=n, status=f"DELETE {n}")
