"""The planned vector top-k path (DESIGN.md principle 6).

``SELECT ... FROM t WHERE <filter> ORDER BY <vector fn>(col, :q) [DESC] LIMIT k`` runs as:
DuckDB evaluates the filter to candidate positions -> numpy scores the candidates on the
memory-mapped matrix -> top-k -> DuckDB fetches only the winners' output columns (so
blobs and other columns are read for k rows, not for the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pglast import ast
from pglast.enums import SortByDir, SortByNulls

from ..engine.engine import GPOS, quote_ident, select_expr
from ..format.arrow import float32_array, int64_array
from ..format.types import parse_vector_text
from ..index.exact import score, topk
from .parse import colref, deparse, expand_stars, name_of, walk
from .rewrite import VECTOR_FUNCS, VECTOR_OPS, VECTOR_TYPES, Rewriter

if TYPE_CHECKING:
    from ..engine.engine import BoundTable
    from .session import Session

_AGGREGATES = {"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or",
               "stddev", "variance", "json_agg", "jsonb_agg", "every", "list", "first", "last"}


@dataclass
class VectorPlan:
    relation: ast.RangeVar
    alias: str
    column: str
    metric: str
    query: np.ndarray
    descending: bool
    nulls_first: bool
    k: int
    offset: int
    order_node: ast.Node  # the expression to replace by the score in the targets


def plan(s: Session, stmt: ast.SelectStmt, params: list[Any]) -> VectorPlan | None:
    """A VectorPlan when the statement has the top-k shape, else None."""
    if (stmt.op != 0 or stmt.valuesLists or stmt.groupClause or stmt.havingClause or stmt.distinctClause
            or stmt.windowClause or stmt.withClause or stmt.lockingClause or stmt.intoClause):
        return None
    if not stmt.fromClause or len(stmt.fromClause) != 1 or not isinstance(stmt.fromClause[0], ast.RangeVar):
        return None
    if not stmt.sortClause or len(stmt.sortClause) != 1 or stmt.limitCount is None:
        return None
    if Rewriter.names_rowid(stmt):
        return None  # the general path shows the hidden _rowid
    k = _int_of(stmt.limitCount, params)
    offset = _int_of(stmt.limitOffset, params) if stmt.limitOffset is not None else 0
    if k is None or offset is None or k < 0 or offset < 0 or k + offset > 100_000:
        return None
    for node in walk(stmt.targetList):
        if isinstance(node, ast.FuncCall) and (name_of(node.funcname) in _AGGREGATES or node.over is not None):
            return None
        if isinstance(node, ast.SubLink):
            return None
    sort: ast.SortBy = stmt.sortClause[0]
    expr = sort.node
    if isinstance(expr, ast.ColumnRef) and len(expr.fields) == 1 and isinstance(expr.fields[0], ast.String):
        alias_name = expr.fields[0].sval
        for rt in stmt.targetList:
            if rt.name == alias_name:
                expr = rt.val
                break
    if isinstance(expr, ast.A_Const) and isinstance(expr.val, ast.Integer):
        i = expr.val.ival - 1
        if 0 <= i < len(stmt.targetList):
            expr = stmt.targetList[i].val
    found = _vector_expr(expr)
    if found is None:
        return None
    metric, a, b = found
    rv: ast.RangeVar = stmt.fromClause[0]
    column, other = (a, b) if isinstance(a, ast.ColumnRef) else (b, a)
    if not isinstance(column, ast.ColumnRef) or not isinstance(column.fields[-1], ast.String):
        return None
    q = _vector_value(other, params)
    if q is None:
        return None
    descending = sort.sortby_dir == SortByDir.SORTBY_DESC
    nulls_first = descending if sort.sortby_nulls == SortByNulls.SORTBY_NULLS_DEFAULT \
        else sort.sortby_nulls == SortByNulls.SORTBY_NULLS_FIRST
    alias = rv.alias.aliasname if rv.alias else rv.relname
    return VectorPlan(rv, alias, column.fields[-1].sval, metric, q, descending, nulls_first, k, offset, expr)


def _int_of(node: ast.Node, params: list[Any]) -> int | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        return node.val.ival
    if isinstance(node, ast.ParamRef) and 0 < node.number <= len(params):
        v = params[node.number - 1]
        return int(v) if isinstance(v, int | np.integer) and not isinstance(v, bool) else None
    return None


def _vector_expr(node: ast.Node) -> tuple[str, ast.Node, ast.Node] | None:
    if isinstance(node, ast.FuncCall) and name_of(node.funcname) in VECTOR_FUNCS and node.args \
            and len(node.args) == 2:
        return name_of(node.funcname), node.args[0], node.args[1]
    if isinstance(node, ast.A_Expr) and node.name and name_of(node.name) in VECTOR_OPS and node.lexpr is not None:
        return VECTOR_OPS[name_of(node.name)], node.lexpr, node.rexpr
    return None


def _vector_value(node: ast.Node, params: list[Any]) -> np.ndarray | None:
    if isinstance(node, ast.TypeCast) and name_of(node.typeName.names) in VECTOR_TYPES:
        node = node.arg
    if isinstance(node, ast.ParamRef) and 0 < node.number <= len(params):
        v = params[node.number - 1]
        if isinstance(v, str):
            return np.asarray(parse_vector_text(v, "parameter"), dtype=np.float32)
        if isinstance(v, np.ndarray | list | tuple):
            arr = np.asarray(v)
            return arr.astype(np.float32).reshape(-1) if arr.dtype != object else None
        return None
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return np.asarray(parse_vector_text(node.val.sval, "literal"), dtype=np.float32)
    return None


def run(s: Session, stmt: ast.SelectStmt, p: VectorPlan, params: list[Any]) -> tuple[pa.Table, list] | None:
    """Execute the plan; None when the table turns out not to fit (falls back to SQL)."""
    rel_name = s.relation_for(p.relation)
    bt: BoundTable | None = s.engine.bound.get(rel_name)
    if bt is None:
        return None
    col = bt.manifest.schema.find(p.column)
    if col is None or col.type.kind not in VECTOR_TYPES or col.type.row_shape[0] != p.query.size:
        return None
    rw = s.rewriter(params)
    a = quote_ident(p.alias)
    if stmt.whereClause is not None:
        where = deparse(rw(stmt.whereClause))
        sql = f"SELECT {a}.{GPOS} FROM {quote_ident(bt.view)} AS {a} WHERE {where}"
        cand, _ = s.engine.arrow(sql, s.duck_params(params, sql))
        gpos = np.sort(cand.column(0).to_numpy())
    else:
        live = bt.arrow.column("__live").to_numpy()
        gpos = np.flatnonzero(live).astype(np.int64)
    want = p.k + p.offset
    winners, scores = _score_topk(s, bt, col, p, gpos, want)
    winners, scores = winners[p.offset:], scores[p.offset:]
    # the winners' rows, taken straight from the registered Arrow table: the output
    # query then reads k rows instead of joining k rows against the whole table
    # a NULL vector scores NULL (not NaN, which is a zero vector's cosine, as in pgvector)
    null = bt.arrow.column(f"__n{col.id}").is_null().to_numpy(zero_copy_only=False)[winners] if len(winners) else None
    w = _take(bt, winners, scores, null)
    wname = "__winners"
    s.engine.register(wname, w)
    try:
        targets = []
        for rt in expand_stars(stmt.targetList, p.alias, bt.manifest.schema.names):
            node = _replace(rt.val, p.order_node, p.alias)
            expr = deparse(rw(node))
            targets.append(f"{expr} AS {quote_ident(rt.name)}" if rt.name else expr)
        cols = ", ".join(select_expr(c) for c in bt.manifest.schema.columns)
        sql = (f"SELECT {', '.join(targets)} FROM (SELECT {cols}{', ' if cols else ''}__score, __rank "
               f"FROM {wname}) AS {a} ORDER BY {a}.__rank")
        return s.engine.arrow(sql, s.duck_params(params, sql))
    finally:
        s.engine.unregister(wname)


def _take(bt: BoundTable, winners: np.ndarray, scores: np.ndarray, null: np.ndarray | None) -> pa.Table:
    """Rows at global positions, with their score and rank, one take per fragment (a
    take over the chunked table is far slower)."""
    batches = bt.arrow.to_batches()
    idx = np.searchsorted(bt.offsets, winners, side="right") - 1
    rank = np.arange(len(winners), dtype=np.int64)
    parts = []
    for i in np.unique(idx):
        sel = np.flatnonzero(idx == i)
        part = batches[i].take(int64_array(winners[sel] - bt.offsets[i]))
        parts.append(pa.RecordBatch.from_arrays(
            part.columns + [_scores(scores[sel], None if null is None else null[sel]), int64_array(rank[sel])],
            names=part.schema.names + ["__score", "__rank"]))
    if not parts:
        schema = bt.arrow.schema.append(pa.field("__score", pa.float32())).append(pa.field("__rank", pa.int64()))
        return schema.empty_table()
    return pa.Table.from_batches(parts)


def _scores(values: np.ndarray, null: np.ndarray | None) -> pa.Array:
    arr = float32_array(values)
    if null is None or not null.any():
        return arr
    bits = np.packbits(~null, bitorder="little")
    return pa.Array.from_buffers(pa.float32(), len(values), [pa.py_buffer(bits), arr.buffers()[1]])


def _score_topk(s: Session, bt: BoundTable, col: Any, p: VectorPlan, gpos: np.ndarray,
                want: int) -> tuple[np.ndarray, np.ndarray]:
    frags = bt.manifest.fragments
    norms_col = bt.arrow.column(f"__n{col.id}")
    idx = np.searchsorted(bt.offsets, gpos, side="right") - 1
    all_pos: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    bounds = np.searchsorted(idx, np.arange(len(frags) + 1))
    for i in range(len(frags)):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        frag = frags[i]
        local = gpos[lo:hi] - bt.offsets[i]
        if col.id not in dict(frag.mats):
            sc = np.full(hi - lo, np.nan, dtype=np.float32)
        else:
            mat = s.catalog.reader.matrix(bt.manifest.table_id, frag, col)
            chunk = norms_col.chunk(i) if norms_col.num_chunks == len(frags) else \
                norms_col.slice(bt.offsets[i], frag.rows).combine_chunks()
            norms = chunk.to_numpy(zero_copy_only=False).astype(np.float32)
            rows = None if hi - lo == frag.rows else local
            sc = score(mat, norms, p.query, p.metric, rows)
        all_pos.append(gpos[lo:hi])
        all_scores.append(sc)
    if not all_pos:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    pos = np.concatenate(all_pos)
    sc = np.concatenate(all_scores)
    best = topk(sc, want, p.descending, p.nulls_first)
    return pos[best], sc[best]


def _replace(node: Any, target: ast.Node, alias: str) -> Any:
    """Swap every occurrence of the ordering expression for the computed score."""
    from .parse import transform

    text = deparse(target)
    score = colref(alias, "__score")

    def visit(n: ast.Node) -> ast.Node | None:
        if type(n) is type(target) and deparse(n) == text:
            return score
        return None

    if type(node) is type(target) and deparse(node) == text:
        return score
    return transform(node, visit)

