"""The SQL behind the UI's grid: a view's filters, sort and page turned into one SELECT.

Everything a browser sends becomes either a bound parameter or an identifier checked
against the table's columns; the free-text WHERE box is parsed with Postgres's grammar
and must be one boolean expression, which is then re-printed from its syntax tree (a
comment or a second statement cannot ride along). The SELECT runs on a read-only
snapshot, so even an expression that tried to write would be refused below.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast, enums
from pglast.stream import RawStream

from .. import errors

MAX_WHERE = 8_000  # characters: a WHERE box, not a program
MAX_LIMIT = 500
MAX_IDS = 5000  # rows a selection (ids=) may name
MAX_NEAR_CHARS = 1 << 20  # a pasted vector's text
MAX_NEAR_TEXT = 2000  # characters given to the --embed function
DEFAULT_LIMIT = 48

# type name (as format_type prints it, before any "(") -> how the UI shows and filters it
_KINDS = {
    "video": "video", "image": "image", "vector": "vector", "halfvec": "vector",
    "tensor": "tensor", "bytea": "bytes", "blob": "bytes", "json": "json", "jsonb": "json",
    "smallint": "number", "integer": "number", "bigint": "number", "real": "number",
    "double precision": "number", "numeric": "number", "boolean": "bool",
    "text": "text", "character varying": "text", "character": "text", "citext": "text",
    "uuid": "text", "date": "time", "timestamp without time zone": "time",
    "timestamp with time zone": "time", "time without time zone": "time",
}
SORTABLE = {"number", "text", "bool", "time"}


def column_kind(type_name: str) -> str:
    """What the UI does with a column of this SQL type (``other``: shown as text)."""
    base = type_name.split("(", 1)[0].strip().lower()
    if base.endswith("[]"):
        return "array"
    return _KINDS.get(base, "other")


def quote_ident(name: str) -> str:
    """A SQL identifier, always quoted (names come from the catalog, never from a browser)."""
    return '"' + name.replace('"', '""') + '"'


def where_expression(text: str | None) -> str | None:
    """The WHERE box as one Postgres boolean expression, re-printed from its syntax tree;
    anything else (a second statement, LIMIT, ORDER BY, UNION, a stray parenthesis) is
    refused with 42601."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_WHERE:
        raise errors.ProgramLimitExceeded(f"the WHERE box holds {len(text)} characters; the most is {MAX_WHERE}")
    prefix = "SELECT 1 WHERE "
    try:
        stmts = pglast.parse_sql(f"{prefix}{text}\n")
    except pglast.parser.ParseError as e:
        message, location = e.args[0], e.args[1] if len(e.args) > 1 else None
        at = f" (at character {location - len(prefix) + 1})" if isinstance(location, int) else ""
        raise errors.SyntaxError(f"the WHERE box is not a SQL condition: {message}{at}") from None
    stmt = stmts[0].stmt if len(stmts) == 1 else None
    if not isinstance(stmt, ast.SelectStmt) or stmt.whereClause is None or not _only_where(stmt):
        raise errors.SyntaxError("the WHERE box takes one condition (as after WHERE), not a statement or "
                                 "a LIMIT, ORDER BY or set operation")
    return RawStream()(stmt.whereClause)


def _only_where(stmt: ast.SelectStmt) -> bool:
    extra = (stmt.distinctClause, stmt.intoClause, stmt.fromClause, stmt.groupClause, stmt.havingClause,
             stmt.windowClause, stmt.valuesLists, stmt.sortClause, stmt.limitOffset, stmt.limitCount,
             stmt.lockingClause, stmt.withClause, stmt.larg, stmt.rarg)
    return (all(x is None for x in extra) and stmt.op == enums.SetOperation.SETOP_NONE
            and stmt.targetList is not None and len(stmt.targetList) == 1)


@dataclass
class View:
    """One grid view, as the URL and the JSON API spell it (docs/ui.md)."""

    table: str
    where: str | None = None
    sort: str | None = None
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    after: int | None = None  # keyset paging by _rowid (the default order)
    offset: int = 0  # paging for a chosen sort or a similarity order
    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)
    json_keys: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    similar_column: str | None = None
    similar_rowid: int | None = None
    near: list[float] | None = None  # a pasted vector to order by
    near_text: str | None = None  # text for the --embed function, whose vector orders the rows
    rowids: list[int] | None = None  # a selection (the embeddings map's)


def parse_view(table: str, args: Any) -> View:
    """A ``View`` from query parameters (a multi-dict: ``getlist`` and ``get``); bad
    numbers are 22P02, names are checked later against the table's columns."""
    view = View(table=table, where=args.get("where") or None, sort=args.get("sort") or None,
                descending=args.get("order", "asc").lower() == "desc")
    view.limit = min(max(_int(args, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
    view.offset = max(_int(args, "offset", 0), 0)
    if args.get("after"):
        view.after = _int(args, "after", 0)
    for key in args:
        prefix, _, column = key.partition(".")
        if not column:
            continue
        for raw in args.getlist(key):
            if prefix == "min":
                view.minimum[column] = _number(key, raw)
            elif prefix == "max":
                view.maximum[column] = _number(key, raw)
            elif prefix == "in":
                view.values.setdefault(column, []).append(raw)
            elif prefix == "json":
                k, sep, v = raw.partition("=")
                if not sep or not k:
                    raise errors.InvalidParameterValue(f"{key} takes KEY=VALUE, not {raw!r}")
                view.json_keys.setdefault(column, []).append((k, v))
    if args.get("ids"):
        parts = args.get("ids").split(",")
        if len(parts) > MAX_IDS:
            raise errors.ProgramLimitExceeded(f"ids names {len(parts)} rows; the most is {MAX_IDS}")
        try:
            view.rowids = [int(p) for p in parts]
        except ValueError:
            raise errors.InvalidTextRepresentation("ids is a comma-separated list of row ids") from None
    if args.get("similar"):
        view.similar_rowid = _int(args, "similar", 0)
        view.similar_column = args.get("vector") or None
    elif args.get("near"):
        view.near = _vector(args.get("near"))
        view.similar_column = args.get("vector") or None
    elif args.get("near_text"):
        if len(args.get("near_text")) > MAX_NEAR_TEXT:
            raise errors.ProgramLimitExceeded(f"near_text is at most {MAX_NEAR_TEXT} characters")
        view.near_text = args.get("near_text")
        view.similar_column = args.get("vector") or None
    return view


def _int(args: Any, key: str, default: int) -> int:
    raw = args.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidTextRepresentation(f"{key} must be an integer, not {raw!r}") from None


def _vector(raw: str) -> list[float]:
    """A pasted vector: a JSON (or pgvector text) list of finite numbers."""
    if len(raw) > MAX_NEAR_CHARS:
        raise errors.ProgramLimitExceeded(f"near is at most {MAX_NEAR_CHARS} characters")
    try:
        values = json.loads(raw)
    except ValueError:
        values = None
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise errors.InvalidTextRepresentation("near is a vector: a list of finite numbers, like [0.1, -0.2, 0.3]")
    return [float(v) for v in values]


def _number(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise errors.InvalidTextRepresentation(f"{key} must be a number, not {raw!r}") from None


class Select:
    """A statement with ``$n`` parameters, built piece by piece."""

    def __init__(self) -> None:
        self.sql = ""
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def conditions(view: View, kinds: dict[str, str], q: Select) -> list[str]:
    """The view's filters as SQL conditions over checked column names."""
    out = []
    for column, value in view.minimum.items():
        out.append(f"{_column(column, kinds, {'number'})} >= {q.param(value)}")
    for column, value in view.maximum.items():
        out.append(f"{_column(column, kinds, {'number'})} <= {q.param(value)}")
    for column, values in view.values.items():
        col = _column(column, kinds, {"text", "number", "bool", "time", "other"})
        out.append(f"CAST({col} AS TEXT) IN ({', '.join(q.param(v) for v in values)})")
    for column, pairs in view.json_keys.items():
        col = _column(column, kinds, {"json"})
        for k, v in pairs:
            out.append(f"{col} ->> {q.param(k)} = {q.param(v)}")
    if view.rowids is not None:
        out.append(f"_rowid = ANY({q.param(view.rowids)})")
    where = where_expression(view.where)
    if where is not None:
        out.append(f"({where})")
    return out


def _column(name: str, kinds: dict[str, str], allowed: set[str]) -> str:
    kind = kinds.get(name)
    if kind is None:
        raise errors.UndefinedColumn(f'column "{name}" does not exist')
    if kind not in allowed:
        raise errors.DatatypeMismatch(f'column "{name}" is {kind}: it cannot be filtered or sorted that way')
    return quote_ident(name)


def map_select(view: View, kinds: dict[str, str], vector: str, color: str | None, sample: int) -> Select:
    """Up to ``sample`` rows of the view for the embeddings map: row id, vector, colour
    column, spread over the table by a multiplicative hash of ``_rowid`` (not its first rows)."""
    q = Select()
    conds = conditions(view, kinds, q)
    vec = _column(vector, kinds, {"vector"})
    colour = "NULL" if color is None else _column(color, kinds, SORTABLE | {"other"})
    sql = f"SELECT _rowid, {vec}, {colour} FROM {quote_ident(view.table)} WHERE {vec} IS NOT NULL"
    if conds:
        sql += " AND " + " AND ".join(conds)
    q.sql = sql + f" ORDER BY (_rowid * 2654435761) % 4294967291, _rowid LIMIT {int(sample)}"
    return q


def grid_select(view: View, kinds: dict[str, str], query_vector: Any = None) -> Select:
    """The page of rows the view shows, one more than ``limit`` (so "next" needs no COUNT).

    The default order is ``_rowid`` with keyset paging (``after``), which stays fast at any
    depth; a chosen sort or a similarity order pages by offset."""
    q = Select()
    conds = conditions(view, kinds, q)
    table = quote_ident(view.table)
    distance = ""
    if view.similar_column is not None:
        vec = _column(view.similar_column, kinds, {"vector"})
        distance = f", {vec} <=> {q.param(query_vector)} AS _distance"
        order = "_distance, _rowid"
    elif view.sort is not None:
        col = _column(view.sort, kinds, SORTABLE)
        order = f"{col} {'DESC' if view.descending else 'ASC'} NULLS LAST, _rowid"
    else:
        order = "_rowid"
        if view.after is not None:
            conds.append(f"_rowid > {q.param(view.after)}")
    sql = f"SELECT _rowid, *{distance} FROM {table}"
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    sql += f" ORDER BY {order} LIMIT {view.limit + 1}"
    if view.offset and (view.sort is not None or view.similar_column is not None):
        sql += f" OFFSET {view.offset}"
    q.sql = sql
    return q


def compare_selects(view: View, kinds: dict[str, str], a: str, b: str, by: str, metric: str | None,
                    groups: int) -> tuple[Select, Select]:
    """Branch comparison on one filter: per side the row count and the metric's mean, min
    and max; and the first ``groups`` values of ``by`` (in ``a``'s row order) with every
    row of either side that has one of them. ``a`` and ``b`` are schemas (refs)."""
    by_col = _column(by, kinds, {"text", "number", "bool", "time"})
    agg = Select()
    conds = conditions(view, kinds, agg)
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    m = "NULL" if metric is None else _column(metric, kinds, {"number"})
    parts = [f"SELECT {agg.param(side)} AS side, count(*), avg({m}), min({m}), max({m}) "
             f"FROM {quote_ident(ref)}.{quote_ident(view.table)}{where}" for side, ref in (("a", a), ("b", b))]
    agg.sql = " UNION ALL ".join(parts)
    # the filter's parameters are shared by both halves: $n refers to the same value twice
    rows = Select()
    conds = conditions(view, kinds, rows)
    where = (" AND " + " AND ".join(conds)) if conds else ""
    first = (f"SELECT {by_col} AS _v, min(_rowid) AS _r FROM {quote_ident(a)}.{quote_ident(view.table)} "
             f"WHERE {by_col} IS NOT NULL{where} GROUP BY 1 ORDER BY 2 LIMIT {int(groups)}")
    union = " UNION ALL ".join(
        f"SELECT {rows.param(side)} AS _side, _rowid AS _row_id, * FROM {quote_ident(ref)}.{quote_ident(view.table)} "
        f"WHERE {by_col} IN (SELECT _v FROM _reeldb_groups){where}" for side, ref in (("a", a), ("b", b)))
    rows.sql = f"WITH _reeldb_groups AS ({first}) {union} ORDER BY _side, _row_id"
    return agg, rows
