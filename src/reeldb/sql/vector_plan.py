"""The planned vector top-k path (DESIGN.md principle 6).

``SELECT ... FROM t WHERE <filter> ORDER BY <vector fn>(col, :q) [DESC] LIMIT k`` runs as:
DuckDB evaluates the filter to candidate positions -> numpy scores the candidates on the
memory-mapped matrix -> top-k -> DuckDB fetches only the winners' output columns (so
blobs and other columns are read for k rows, not for the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pglast import ast
from pglast.enums import A_Expr_Kind, SortByDir, SortByNulls

from .. import errors
from ..engine.engine import GPOS, duck_type_name, internal_name, quote_ident, select_expr
from ..format.arrow import int64_array
from ..index.exact import exact_scores
from . import vector_search
from .parse import colref, column_name, const_value, deparse, expand_stars, name_of, walk
from .rewrite import VECTOR_FUNCS, VECTOR_OPS, VECTOR_TYPES, Rewriter, vector_or_sparse

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
            return np.asarray(vector_or_sparse(v, "parameter"), dtype=np.float32)  # sparsevec text too
        if isinstance(v, np.ndarray | list | tuple):
            arr = np.asarray(v)
            return arr.astype(np.float32).reshape(-1) if arr.dtype != object else None
        return None
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return np.asarray(vector_or_sparse(node.val.sval, "literal"), dtype=np.float32)
    return None


def run(s: Session, stmt: ast.SelectStmt, p: VectorPlan, params: list[Any]) -> tuple[pa.Table, list] | None:
    """Execute the plan; None when the table turns out not to fit (falls back to SQL)."""
    got = _prepare(s, stmt, p, params)
    if got is None:
        return None
    bt, col, gpos, candidates = got
    want = p.k + p.offset
    results, _ = vector_search.best(
        s, bt, col, p.metric, p.query[None, :], want, p.descending, p.nulls_first, gpos,
        stmt.whereClause is not None, candidates.ann if candidates else None,
        candidates.gather if candidates else None)
    winners, scores = results[0]
    winners, scores = _rescored(s, bt, col, p.metric, p.query, winners[p.offset:], scores[p.offset:],
                                p.descending)
    # the winners' rows, taken straight from the registered Arrow table: the output
    # query then reads k rows instead of joining k rows against the whole table
    # a NULL vector scores NULL (not NaN, which is a zero vector's cosine, as in pgvector)
    null = bt.null_vectors(col.id)[winners] if len(winners) else None
    w = _take(bt, winners, scores, null, _plain_columns(stmt, p, bt))
    direct = _direct(stmt, p, w, bt)
    if direct is not None:
        return direct
    rw = s.rewriter(params)
    a = quote_ident(p.alias)
    wname = internal_name("winners")
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


def explain(s: Session, stmt: ast.SelectStmt, p: VectorPlan, params: list[Any]) -> list[str]:
    """The plan as ``EXPLAIN`` shows it; the filter runs (its result is cached for the
    query), so the choice shown is the one the query makes."""
    head = (f"reeldb vector top-k on {p.relation.relname}.{p.column}: {p.metric} "
            f"{'DESC' if p.descending else 'ASC'}, k={p.k}" + (f" offset {p.offset}" if p.offset else ""))
    got = _prepare(s, stmt, p, params)
    if got is None:
        return [head, "  (does not apply: the column is not a vector of the query's length; runs as SQL)"]
    bt, col, gpos, _ = got
    choice = vector_search.choose(s, bt, col, p.metric, p.descending, len(gpos), p.k + p.offset)
    total = int(bt.manifest.rows)
    lines = [head, f"  1. DuckDB: filter keeps {len(gpos)} of {total} rows "
                   f"({100 * len(gpos) / max(total, 1):.2f}%)" if stmt.whereClause is not None
             else f"  1. all {len(gpos)} live rows"]
    if choice.index is None:
        lines.append(f"  2. {choice.reason}: scores every candidate on the stored vectors -> top-k")
    else:
        ix = choice.index
        knob = "ivfflat.probes" if ix.method == "ivfflat" else "hnsw.ef_search"
        lines.append(f"  2. {choice.reason}, {knob}={vector_search.effort(s, ix)}"
                     + (f", filter applied during the walk (candidate list {choice.effort})"
                        if stmt.whereClause is not None and ix.method == "hnsw" else ""))
        mp = vector_search.mapping(s, bt, ix)
        lines.append(f"     + exact scores of the {len(mp.uncovered)} rows the index does not hold; "
                     f"re-rank on full vectors -> top-k")
    lines.append("  3. output columns of the winners only")
    return lines


def _prepare(s: Session, stmt: ast.SelectStmt, p: VectorPlan,
             params: list[Any]) -> tuple[BoundTable, Any, np.ndarray, Candidates | None] | None:
    """The bound table, the vector column and the candidate rows (sorted global
    positions); None when the plan does not apply."""
    rel_name = s.relation_for(p.relation)
    bt: BoundTable | None = s.engine.bound.get(rel_name)
    if bt is None:
        return None
    col = bt.manifest.schema.find(p.column)
    if col is None or col.type.kind not in VECTOR_TYPES or col.type.row_shape[0] != p.query.size:
        return None
    if stmt.whereClause is None:
        return bt, col, bt.live_positions(), None
    candidates = _candidates(s, bt, p.alias, stmt.whereClause, params, p.column)
    return bt, col, candidates.gpos, candidates


def _candidates(s: Session, bt: BoundTable, alias: str, where: ast.Node, params: list[Any],
                column: str) -> Candidates:
    """The rows ``where`` keeps, as sorted global positions: DuckDB runs the filter once
    per snapshot and parameters (a repeated filter is remembered, a volatile one is not).
    Remembered per vector column: the candidates keep that column's vectors gathered."""
    cond = deparse(s.rewriter(params)(where))
    a = quote_ident(alias)
    sql = f"SELECT {a}.{GPOS} FROM {quote_ident(bt.view)} AS {a} WHERE {cond}"
    bound = s.duck_params(params, sql)
    key = (alias, cond, column, repr(bound)) if _cacheable(where) else None
    got = bt.filters.get(key) if key is not None else None
    if got is None:
        cand, _ = s.engine.arrow(sql, bound)
        got = Candidates(np.sort(cand.column(0).to_numpy()))
        if key is not None:
            bt.filters[key] = got
            while len(bt.filters) > FILTER_CACHE:
                bt.filters.pop(next(iter(bt.filters)))
    return got


_ARITHMETIC = {"+": pc.add, "-": pc.subtract, "*": pc.multiply, "/": pc.divide}


def _direct(stmt: ast.SelectStmt, p: VectorPlan, w: pa.Table, bt: BoundTable) -> tuple[pa.Table, list] | None:
    """The output straight from the winners' rows when it is their columns, the score, or
    the score with a number added, subtracted, multiplied or divided (``1 - (v <=> $1)``):
    no SQL engine for the last step. None for anything else."""
    order = np.argsort(w.column("__rank").to_numpy(), kind="stable")
    w = w.take(int64_array(order)) if len(order) else w
    score_node = p.order_node
    schema = bt.manifest.schema
    names, arrays, description = [], [], []
    for rt in expand_stars(stmt.targetList, p.alias, schema.names):
        v = rt.val
        name = _column_of(v, p.alias, schema)
        if name is not None:
            col = schema.column(name)
            names.append(rt.name or col.name)
            arrays.append(w.column(col.name))
            description.append((names[-1], duck_type_name(col.type.duck())))
            continue
        got = _score_expr(v, score_node, w.column("__score"))
        if got is None:
            return None
        names.append(rt.name or column_name(v) or "?column?")
        arrays.append(got)
        description.append((names[-1], "DOUBLE"))  # float8, as pgvector
    return pa.Table.from_arrays(arrays, names=names), description


def _plain_columns(stmt: ast.SelectStmt, p: VectorPlan, bt: BoundTable) -> list[str] | None:
    """The table columns the output names when every target is a column or the score (the
    rows taken need only those); None when SQL must compute the output from whole rows."""
    schema = bt.manifest.schema
    out: list[str] = []
    for rt in expand_stars(stmt.targetList, p.alias, schema.names):
        name = _column_of(rt.val, p.alias, schema)
        if name is not None:
            if name not in out:
                out.append(name)
        elif _score_expr(rt.val, p.order_node, _NO_SCORES) is None:
            return None
    return out


_NO_SCORES = pa.chunked_array([], pa.float64())  # to ask _score_expr about a shape only


def _column_of(node: ast.Node, alias: str, schema: Any) -> str | None:
    """The table column a target names (``col`` or ``alias.col``), else None."""
    if isinstance(node, ast.ColumnRef) and all(isinstance(f, ast.String) for f in node.fields) \
            and len(node.fields) <= 2 and (len(node.fields) == 1 or node.fields[0].sval == alias) \
            and schema.find(node.fields[-1].sval) is not None:
        return node.fields[-1].sval
    return None


def _score_expr(node: ast.Node, score_node: ast.Node, score: pa.ChunkedArray) -> Any:
    """The score, or the score and a numeric constant combined by + - * /, else None."""
    if node == score_node:  # pglast compares the trees, not the source positions
        return score
    if not (isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.lexpr is not None
            and name_of(node.name) in _ARITHMETIC):
        return None
    fn = _ARITHMETIC[name_of(node.name)]
    for const, other, const_first in ((node.lexpr, node.rexpr, True), (node.rexpr, node.lexpr, False)):
        if isinstance(const, ast.A_Const) and isinstance(const.val, ast.Integer | ast.Float):
            inner = _score_expr(other, score_node, score)
            if inner is None:
                return None
            k = pa.scalar(float(const_value(const)), pa.float32())
            return fn(k, inner) if const_first else fn(inner, k)
    return None


def _take(bt: BoundTable, winners: np.ndarray, scores: np.ndarray, null: np.ndarray | None,
          columns: list[str] | None = None) -> pa.Table:
    """Rows at global positions (only ``columns`` when given), with their score and rank,
    one take per fragment (a take over the chunked table is far slower)."""
    if bt.batches is None:
        bt.batches = bt.arrow.to_batches()
    batches = bt.batches
    idx = np.searchsorted(bt.offsets, winners, side="right") - 1
    rank = np.arange(len(winners), dtype=np.int64)
    parts = []
    for i in np.unique(idx):
        sel = np.flatnonzero(idx == i)
        batch = batches[i] if columns is None else batches[i].select(columns)
        part = batch.take(int64_array(winners[sel] - bt.offsets[i]))
        parts.append(pa.RecordBatch.from_arrays(
            part.columns + [_scores(scores[sel], None if null is None else null[sel]), int64_array(rank[sel])],
            names=part.schema.names + ["__score", "__rank"]))
    if not parts:
        schema = bt.arrow.schema if columns is None else pa.schema([bt.arrow.schema.field(c) for c in columns])
        schema = schema.append(pa.field("__score", pa.float64())).append(pa.field("__rank", pa.int64()))
        return schema.empty_table()
    return pa.Table.from_batches(parts)


def _scores(values: np.ndarray, null: np.ndarray | None) -> pa.Array:
    arr = pa.array(np.ascontiguousarray(values, dtype=np.float64))
    if null is None or not null.any():
        return arr
    bits = np.packbits(~null, bitorder="little")
    return pa.Array.from_buffers(pa.float64(), len(values), [pa.py_buffer(bits), arr.buffers()[1]])


def _rescored(s: Session, bt: BoundTable, col: Any, metric: str, q: np.ndarray, winners: np.ndarray,
              scores: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """The winners with their exact float8 scores (pgvector's answers), in that order: the
    scan ranked them on float4 arithmetic, so rows within its rounding may swap."""
    if not len(winners):
        return winners, scores.astype(np.float64)
    vectors = np.zeros((len(winners), col.type.row_shape[0]), np.float32)
    frags = bt.manifest.fragments
    idx = np.searchsorted(bt.offsets, winners, side="right") - 1
    for i in np.unique(idx):
        frag = frags[i]
        if col.id not in dict(frag.mats):  # a column added after this fragment: NULL here
            continue
        sel = np.flatnonzero(idx == i)
        mat = s.catalog.reader.matrix(bt.manifest.table_id, frag, col)
        vectors[sel] = mat[winners[sel] - bt.offsets[i]]
    exact = exact_scores(vectors, q, metric)
    exact[np.isnan(scores)] = np.nan  # NULL vectors stay NULL
    if np.isnan(exact).any():  # NULLs and NaNs keep the scan's placement
        return winners, exact
    order = np.argsort(-exact if descending else exact, kind="stable")
    return winners[order], exact[order]


FILTER_CACHE = 8  # filters remembered per bound table
GATHER_CACHE_BYTES = 64 << 20  # candidate rows kept gathered per filter, at most


@dataclass
class Candidates:
    """The rows a filter selects in one bound snapshot (immutable, so a repeated filter,
    the usual curation loop with a new target vector each time, need not run again),
    and their vectors gathered once for scoring."""

    gpos: np.ndarray
    gathered: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # fragment -> (rows, norms)
    gathered_bytes: int = 0
    ann: dict[str, Any] = field(default_factory=dict)  # index key -> the filter as the index's allow-list

    def gather(self, i: int, mat: np.ndarray, norms: np.ndarray,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Fragment ``i``'s candidate vectors, copied together once (within a budget)."""
        got = self.gathered.get(i)
        if got is None and self.gathered_bytes + len(rows) * mat[0].nbytes <= GATHER_CACHE_BYTES:
            got = self.gathered[i] = (np.ascontiguousarray(mat[rows]), norms[rows])
            self.gathered_bytes += got[0].nbytes
        return got


_VOLATILE = {"random", "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
             "nextval", "currval", "setseed", "gen_random_uuid", "uuid", "current_setting"}


def _cacheable(where: ast.Node) -> bool:
    """A filter whose answer depends on this table's snapshot and the parameters only."""
    for n in walk(where):
        if isinstance(n, ast.SubLink | ast.SQLValueFunction | ast.RangeVar):
            return False
        if isinstance(n, ast.FuncCall) and name_of(n.funcname) in _VOLATILE:
            return False
    return True


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



def search(s: Session, table: str, column: str, queries: np.ndarray, k: int, where: str | None,
           metric: str, columns: list[str] | None) -> list[tuple[pa.Table, list]]:
    """``db.search``: the top-k rows per query, as the SQL top-k path computes them, with
    the filter evaluated once (and remembered per snapshot) and the vectors read once for
    the whole batch. No SQL text is built or parsed for the search itself."""
    fn = vector_search.METRIC_NAMES.get(metric.lower(), metric.lower())
    if fn not in VECTOR_FUNCS:
        raise errors.InvalidParameterValue(
            f'unknown metric "{metric}": cosine, l2, ip (or a vector function: {", ".join(VECTOR_FUNCS)})')
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= 100_000:
        raise errors.InvalidParameterValue(f"k must be an integer from 0 to 100000, not {k!r}")
    bt: BoundTable = s.engine.bound[table]
    schema = bt.manifest.schema
    col = schema.find(column)
    if col is None:
        raise errors.UndefinedColumn(f'column "{column}" does not exist')
    if col.type.kind not in VECTOR_TYPES:
        raise errors.DatatypeMismatch(f'column "{column}" is {col.type.sql()}, not a vector')
    if col.type.row_shape[0] != queries.shape[1]:
        raise errors.DataError(f"different vector dimensions {col.type.row_shape[0]} and {queries.shape[1]}")
    names = schema.names if columns is None else columns
    for name in names:
        if schema.find(name) is None:
            raise errors.UndefinedColumn(f'column "{name}" does not exist')
    descending = fn in ("cosine_similarity", "inner_product")
    candidates = _filtered(s, bt, table, where, column) if where else None
    gpos = candidates.gpos if candidates is not None else bt.live_positions()
    results, _ = vector_search.best(
        s, bt, col, fn, queries, int(k), descending, descending, gpos, candidates is not None,
        candidates.ann if candidates else None, candidates.gather if candidates else None)
    nulls = bt.null_vectors(col.id)
    description = [(n, duck_type_name(schema.column(n).type.duck())) for n in names] + [("_distance", "DOUBLE")]
    out = []
    for q, (winners, scores) in zip(queries, results, strict=True):
        winners, scores = _rescored(s, bt, col, fn, q, winners, scores, descending)
        w = _take(bt, winners, scores, nulls[winners] if len(winners) else None, names)
        arrays = [w.column(n) for n in names] + [w.column("__score")]
        out.append((pa.Table.from_arrays(arrays, names=[*names, "_distance"]), description))
    return out


def _filtered(s: Session, bt: BoundTable, table: str, where: str, column: str) -> Candidates:
    """The rows a ``db.search`` filter keeps; the text is parsed once per snapshot."""
    cond = bt.filters.get(("search", where))
    if cond is None:
        from .parse import parse

        stmts = parse(f"SELECT 1 FROM {quote_ident(table)} WHERE ({where})")
        if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.SelectStmt) or stmts[0].stmt.whereClause is None:
            raise errors.SyntaxError(f"filter must be one SQL condition: {where!r}")
        cond = bt.filters[("search", where)] = stmts[0].stmt.whereClause
    return _candidates(s, bt, table, cond, [], column)
