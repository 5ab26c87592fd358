"""The loader's plan: the pinned commit, the rows the filters keep, and how each output
column is read.

It is built once, in the process that makes the loader, and pickled to DataLoader
workers as it is: fragment entries and sorted row positions (or, for ``sql=``, the
query's result), never a DuckDB connection. A worker needs nothing else than the
store's URL to read batches.

Filters run in DuckDB over a relation made of the table's live rows and only the
columns the filter text names, so a filter on ``quality_score`` reads that Parquet
column and nothing else; the rows are then fixed for the life of the loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import errors
from ..engine.engine import GPOS, Engine, internal_name, quote_ident, select_expr
from ..format.arrow import int64_array
from ..format.blobs import is_blob_struct
from ..format.fragment import fill_value, ncol, parquet_columns, scol
from ..format.fragment_arrow import LIVE, fragment_batch, fragment_schema
from ..format.keys import parquet_key
from ..format.manifest import Column, Fragment, TableManifest
from ..format.types import BLOB, MATRIX
from ..sql.params import to_dollar_params
from ..sql.parse import deparse, parse
from ..sql.rewrite import Rewriter
from .read import parquet_null_counts

if TYPE_CHECKING:
    from ..catalog.catalog import Catalog
    from ..connection import Connection

MATRIX_COL, NUMBER, VALUE, BLOB_COL = "matrix", "number", "value", "blob"
MEDIA = ("video", "image")
_VIDEO_KEYS = ("start", "frames", "stride")
_DECODE_KEYS = {"type", "start", "frames", "stride", "size", "pad"}
_ROWS = internal_name("loaderrows")  # the filter engine's Arrow rows: never a table's name
_QUERY = "__query"  # a query's result, in an engine of its own: filters name it, so it must parse
_NUMBER_KINDS = {"int16": "int16", "int32": "int32", "int64": "int64", "float32": "float32",
                 "float64": "float64", "bool": "bool"}

Params = Sequence[Any] | Mapping[str, Any] | None


@dataclass(frozen=True)
class Decode:
    """How one media or tensor column is decoded into arrays (``DataLoader.decode``)."""

    type: str  # "video", "image" or "tensor"
    start: int | str = 0  # video: first frame, or "random" (seeded per row and epoch)
    frames: int | None = None  # video: frames per clip (None: to the end)
    stride: int = 1  # video: keep every stride-th frame
    size: tuple[int, int] | None = None  # video / image: (height, width)
    pad: bool = False  # pad the first axis to the batch's longest, with a mask


@dataclass(frozen=True)
class OutColumn:
    """One column of every batch, and where its values come from."""

    name: str
    kind: str  # MATRIX_COL, NUMBER, VALUE or BLOB_COL
    cid: int | None = None  # table mode: the stable column id
    dtype: str | None = None  # MATRIX_COL / NUMBER: numpy dtype delivered
    shape: tuple[int, ...] = ()  # MATRIX_COL: the row's shape
    fill: Any = None  # table mode: the value of fragments older than the column
    convert: str = ""  # VALUE: "json" or "uuid" when Python values need parsing
    blob_kind: str | None = None  # BLOB_COL: bytea, image, video or tensor
    decode: Decode | None = None

    @property
    def mask(self) -> str:
        """Batch key of the padding mask (``decode(..., pad=True)``)."""
        return f"{self.name}_mask"


@dataclass
class Plan:
    """Everything a process needs to read the loader's rows; picklable."""

    url: str
    commit: str
    table: str | None
    table_id: str | None
    columns: tuple[OutColumn, ...]
    fragments: tuple[Fragment, ...]  # table mode: the pinned fragments that keep rows
    positions: tuple[np.ndarray, ...]  # per fragment (sql: one array), sorted
    result: pa.Table | None = None  # sql mode: the query's rows, materialized when built
    options: dict = field(default_factory=dict)  # the store's, to reopen it in a worker
    _starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._starts = np.concatenate([[0], np.cumsum([len(p) for p in self.positions])]).astype(np.int64)

    @property
    def rows(self) -> int:
        return int(self._starts[-1])

    def locate(self, rows: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Loader rows -> ``(segment, slots in the batch, positions in the segment)`` per
        segment touched, segments in ascending order."""
        seg = np.searchsorted(self._starts, rows, side="right") - 1
        if len(seg) and seg[0] == seg[-1] and (seg == seg[0]).all():
            s = int(seg[0])
            return [(s, np.arange(len(rows)), self.positions[s][rows - self._starts[s]])]
        out = []
        for s in np.unique(seg):
            slots = np.flatnonzero(seg == s)
            out.append((int(s), slots, self.positions[s][rows[slots] - self._starts[s]]))
        return out


# ---------------------------------------------------------------------------- building


def build_table_plan(conn: Connection, commit: str, table: str, filters: list[tuple[str, Params]],
                     columns: list[str] | None, decode: dict[str, dict[str, Any]]) -> Plan:
    catalog: Catalog = conn.catalog
    tm = table_manifest(catalog, commit, table)
    names = columns if columns is not None else tm.schema.names
    out = tuple(_table_column(tm.schema.column(n), decode.get(n)) for n in names)
    _check_decode_names(decode, names)
    _check_masks(out)
    frags, positions = kept_rows(conn, tm, filters)
    _check_nulls_table(catalog, tm.table_id, out, frags, positions)
    return Plan(catalog.store.url, commit, table, tm.table_id, out, frags, positions,
                options=catalog.store.options)


def kept_rows(conn: Connection, tm: TableManifest, filters: list[tuple[str, Params]]
              ) -> tuple[tuple[Fragment, ...], tuple[np.ndarray, ...]]:
    """The fragments of ``tm`` that keep rows, and per fragment the sorted positions of its
    live rows that every filter keeps: the loader's plan and ``reeldb.ray.read`` share it."""
    catalog: Catalog = conn.catalog
    frags = tm.fragments
    positions = [_live(catalog, f) for f in frags]
    if filters:
        keep = _filtered(conn, catalog, tm, filters)
        offsets = np.concatenate([[0], np.cumsum([f.rows for f in frags])])
        seg = np.searchsorted(offsets, keep, side="right") - 1
        bounds = np.searchsorted(seg, np.arange(len(frags) + 1))
        positions = [(keep[bounds[i]:bounds[i + 1]] - offsets[i]).astype(np.uint32) for i in range(len(frags))]
    kept = [i for i, p in enumerate(positions) if len(p)]
    return tuple(frags[i] for i in kept), tuple(positions[i] for i in kept)


def build_query_plan(conn: Connection, commit: str, sql: str, filters: list[tuple[str, Params]],
                     columns: list[str] | None, decode: dict[str, dict[str, Any]]) -> Plan:
    """``sql=``: the query runs once at the pinned commit and its result is kept."""
    pinned = conn.at(commit)
    try:
        cur = pinned.execute(sql)
        if cur.description is None:
            raise errors.ProgrammingError("dataloader(sql=...) needs a query that returns rows")
        result = cur.arrow()
        duck_types = [d[1] for d in cur.description]
    finally:
        pinned.close()
    names = result.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    wanted = columns if columns is not None else names
    for n in wanted:
        if n not in names:
            raise errors.UndefinedColumn(f'column "{n}" is not in the query\'s result ({", ".join(names)})')
        if n in dupes:
            raise errors.ProgrammingError(f'the query returns two columns named "{n}": give them aliases')
    _check_decode_names(decode, wanted)
    if filters:
        if dupes:
            raise errors.ProgrammingError(f"cannot filter a result with two columns named {dupes[0]!r}")
        types = dict(zip(names, duck_types, strict=True))
        keep = _filter_query_result(conn, result, types, filters)
        result = result.take(pa.array(keep, pa.int64()))
    result = result.select(wanted)
    out = tuple(_result_column(n, result.column(n), dict(zip(names, duck_types, strict=True))[n], decode.get(n))
                for n in wanted)
    _check_masks(out)
    n = result.num_rows
    positions = (np.arange(n, dtype=np.int64),) if n else ()
    for c in out:
        if _tensor_valued(c) and result.column(c.name).null_count:
            raise _null_error(c.name, result.column(c.name).null_count)
    return Plan(conn.catalog.store.url, commit, None, None, out, (), positions, result,
                conn.catalog.store.options)


def table_manifest(catalog: Catalog, commit: str, table: str) -> TableManifest:
    key = catalog.commit(commit).tables.get(table)
    if key is None:
        raise errors.UndefinedTable(f'relation "{table}" does not exist')
    return catalog.manifest(key)


def _live(catalog: Catalog, frag: Fragment) -> np.ndarray:
    if not frag.ndel:
        return np.arange(frag.rows, dtype=np.uint32)
    return np.flatnonzero(catalog.reader.live_mask(frag)).astype(np.uint32)


# ---------------------------------------------------------------------------- columns


def parse_decode(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``decode()`` entry's keys and values; the type is settled per column later."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"decode spec of {name!r} must be a dict, not {type(spec).__name__}")
    bad = set(spec) - _DECODE_KEYS
    if bad:
        raise ValueError(f"decode spec of {name!r} has unknown keys {sorted(bad)}; known: {sorted(_DECODE_KEYS)}")
    t = spec.get("type")
    if t is not None and t not in ("video", "image", "tensor"):
        raise ValueError(f"decode type of {name!r} must be 'video', 'image' or 'tensor', not {t!r}")
    start = spec.get("start", 0)
    if start != "random" and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
        raise ValueError(f"decode start of {name!r} must be a frame index >= 0 or 'random', not {start!r}")
    for key in ("frames", "stride"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"decode {key} of {name!r} must be a positive int, not {v!r}")
    size = spec.get("size")
    if size is not None:
        if (not isinstance(size, Sequence) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValueError(f"decode size of {name!r} must be (height, width), not {size!r}")
        spec = {**spec, "size": (int(size[0]), int(size[1]))}
    if start == "random" and spec.get("frames") is None:
        raise ValueError(f"decode start='random' of {name!r} needs frames")
    return dict(spec)


def _decode_for(name: str, blob_kind: str, spec: dict[str, Any]) -> Decode:
    """The decode of one blob column: VIDEO/IMAGE/TENSOR by their type; a BYTEA column
    by ``type``, or as video when the spec names frames, stride or start, else image."""
    t = spec.get("type")
    if blob_kind in ("video", "image", "tensor"):
        if t is not None and t != blob_kind:
            raise errors.DatatypeMismatch(f"column {name} holds {blob_kind.upper()} values; cannot decode as {t}")
        t = blob_kind
    elif t is None:
        t = "video" if any(k in spec for k in _VIDEO_KEYS) else "image"
    if t == "tensor" and blob_kind != "tensor":
        raise errors.DatatypeMismatch(f"column {name} is not an any-shape TENSOR column; cannot decode as tensor")
    if t != "video" and any(k in spec for k in _VIDEO_KEYS):
        raise ValueError(f"start, frames and stride apply to videos; column {name} decodes as {t}")
    if t == "tensor" and "size" in spec:
        raise ValueError(f"size applies to videos and images, not to TENSOR column {name}")
    if t == "image" and spec.get("pad"):
        raise ValueError(f"pad applies to videos and tensors; give images of column {name} a size instead")
    if spec.get("start") == "random" and blob_kind != "video":
        raise ValueError(f"start='random' needs a VIDEO column (its probed frame count); {name} is {blob_kind.upper()}")
    return Decode(t, spec.get("start", 0), spec.get("frames"), spec.get("stride", 1), spec.get("size"),
                  bool(spec.get("pad", False)))


def _blob_decode(name: str, kind: str, spec: dict[str, Any] | None) -> Decode | None:
    """Without a spec, an any-shape TENSOR is still an array; other blobs stay bytes."""
    if spec is not None:
        return _decode_for(name, kind, spec)
    return Decode("tensor") if kind == "tensor" else None


def _table_column(c: Column, spec: dict[str, Any] | None) -> OutColumn:
    t = c.type
    if t.storage == MATRIX:
        if spec is not None:
            raise ValueError(f"column {c.name} is {t.sql()}: it is a tensor already, there is nothing to decode")
        return OutColumn(c.name, MATRIX_COL, c.id, t.np_dtype.name, t.row_shape)
    if t.storage == BLOB:
        return OutColumn(c.name, BLOB_COL, c.id, blob_kind=t.kind, decode=_blob_decode(c.name, t.kind, spec))
    if spec is not None:
        raise ValueError(f"column {c.name} is {t.sql()}: only media, BYTEA and any-shape TENSOR columns decode")
    # the fill as the stored column's values read (a DATE's date, not the manifest's text)
    fill = None if c.fill is None else fill_value(c).as_py()
    if t.kind in _NUMBER_KINDS:
        return OutColumn(c.name, NUMBER, c.id, _NUMBER_KINDS[t.kind], fill=fill)
    convert = "json" if t.kind in ("json", "jsonb") else "uuid" if t.kind == "uuid" else ""
    return OutColumn(c.name, VALUE, c.id, fill=fill, convert=convert)


def _result_column(name: str, col: pa.ChunkedArray, duck: str, spec: dict[str, Any] | None) -> OutColumn:
    t = col.type
    dims = _fixed_dims(t)
    if dims is not None:
        if spec is not None:
            raise ValueError(f"column {name} is an array already: there is nothing to decode")
        return OutColumn(name, MATRIX_COL, dtype=np.dtype(_leaf(t).to_pandas_dtype()).name, shape=tuple(dims))
    if is_blob_struct(t):
        kinds = set(pc.unique(col.combine_chunks().field("kind")).drop_null().to_pylist())
        kind = kinds.pop() if len(kinds) == 1 else "bytea"
        return OutColumn(name, BLOB_COL, blob_kind=kind, decode=_blob_decode(name, kind, spec))
    if spec is not None:
        raise ValueError(f"column {name} ({duck}) is not a media, BYTEA or TENSOR value: nothing to decode")
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return OutColumn(name, NUMBER, dtype=np.dtype(t.to_pandas_dtype()).name)
    d = duck.upper()
    return OutColumn(name, VALUE, convert="json" if d in ("JSON", "JSONB") else "uuid" if d == "UUID" else "")


def _fixed_dims(t: pa.DataType) -> list[int] | None:
    dims = []
    while pa.types.is_fixed_size_list(t):
        dims.append(t.list_size)
        t = t.value_type
    if dims and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        return dims
    return None


def _leaf(t: pa.DataType) -> pa.DataType:
    while pa.types.is_fixed_size_list(t):
        t = t.value_type
    return t


def _check_decode_names(decode: Mapping[str, Any], names: Sequence[str]) -> None:
    for n in decode:
        if n not in names:
            raise ValueError(f"decode() names column {n!r}, which is not among the loader's columns")


def _check_masks(out: tuple[OutColumn, ...]) -> None:
    names = {c.name for c in out}
    for c in out:
        if c.decode is not None and c.decode.pad and c.mask in names:
            raise ValueError(f"column {c.mask!r} clashes with the padding mask of {c.name!r}: leave one out")


def _tensor_valued(c: OutColumn) -> bool:
    """Columns whose batch value is one tensor: NULL has no place in them."""
    return c.kind in (MATRIX_COL, NUMBER) or c.decode is not None


def _null_error(name: str, n: int) -> errors.DataError:
    return errors.DataError(
        f'column "{name}" is NULL in {n} of the loader\'s rows, and NULL has no tensor form: '
        f'add .filter("{name} IS NOT NULL") or leave the column out of .columns()',
        sqlstate="22004")


def _check_nulls_table(catalog: Catalog, table_id: str, out: tuple[OutColumn, ...],
                       frags: tuple[Fragment, ...], positions: tuple[np.ndarray, ...]) -> None:
    """Refuse NULLs in tensor-valued columns now, not an hour into an epoch. Parquet
    statistics settle most fragments without reading a value."""
    cols = [c for c in out if _tensor_valued(c)]
    if not cols:
        return
    store = catalog.store
    total = {c.name: 0 for c in cols}
    names = {c.name: (ncol(c.cid) if c.kind == MATRIX_COL else scol(c.cid)) for c in cols}
    for frag, pos in zip(frags, positions, strict=True):
        present = {c.name for c in cols if c.cid in (dict(frag.mats) if c.kind == MATRIX_COL else frag.cols)}
        for c in cols:
            if c.name not in present and c.fill is None:
                total[c.name] += len(pos)  # a column added after this fragment: NULL throughout
        key = parquet_key(table_id, frag.id)
        nulls = parquet_null_counts(store, key, [names[n] for n in present], frag)
        suspect = [n for n in present if nulls.get(names[n], 1)]
        if suspect:
            t = parquet_columns(store, key, [names[n] for n in suspect], frag)
            idx = pa.array(pos, pa.int64())
            for n in suspect:
                total[n] += t.column(names[n]).take(idx).null_count
    for name, n in total.items():
        if n:
            raise _null_error(name, n)


# ---------------------------------------------------------------------------- filters

_STRING = re.compile(r"'(?:[^']|'')*'")
_IDENT = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


def named_columns(text: str, names: Sequence[str]) -> list[str]:
    """The columns among ``names`` that ``text`` mentions: unquoted identifiers fold to
    lower case as in Postgres. A superset (a column named inside a comment counts),
    which only costs reading a column the filter did not need."""
    found = set()
    for m in _IDENT.finditer(_STRING.sub("''", text)):
        found.add(m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2).lower())
    return [n for n in names if n in found]


def _filtered(conn: Connection, catalog: Catalog, tm: TableManifest,
              filters: list[tuple[str, Params]]) -> np.ndarray:
    """Global positions (sorted) of the live rows every filter keeps."""
    needed = named_columns(" ".join(f for f, _ in filters), tm.schema.names)
    cols = [tm.schema.column(n) for n in needed]
    engine = Engine(catalog.reader)
    try:
        relation = _table_relation(catalog, tm, cols)
        engine.register(_ROWS, relation)
        sel = ", ".join([select_expr(c) for c in cols] + [GPOS])
        engine.execute(f"CREATE TEMP VIEW {quote_ident(tm.name)} AS SELECT {sel} "
                       f"FROM {_ROWS} WHERE {LIVE}")
        dims = {c.name: c.type.row_shape[0] for c in cols if c.type.kind in ("vector", "halfvec")}
        return _run_filters(conn, engine, tm.name, dims, filters)
    finally:
        engine.close()


def _table_relation(catalog: Catalog, tm: TableManifest, cols: list[Column]) -> pa.Table:
    """The table's rows as Arrow with only ``cols`` (plus position and liveness), reading
    only those columns' Parquet chunks."""
    schema = fragment_schema(cols, rowid=False)
    batches, start = [], 0
    for frag in tm.fragments:
        batches.append(fragment_batch(catalog.reader, tm.table_id, frag, cols, start=start, rowid=False,
                                      prune=True, schema=schema))
        start += frag.rows
    return pa.Table.from_batches(batches, schema=schema)


def _filter_query_result(conn: Connection, result: pa.Table, types: dict[str, str],
                         filters: list[tuple[str, Params]]) -> np.ndarray:
    engine = Engine(conn.catalog.reader)
    try:
        rel = result.append_column(GPOS, int64_array(np.arange(result.num_rows, dtype=np.int64)))
        engine.register(_ROWS, rel)
        sql_type = {"JSONB": "JSON"}  # a jsonb result column (sql/result_types.py) is DuckDB's JSON
        sel = ", ".join([f"CAST({quote_ident(n)} AS {sql_type.get(types[n], types[n])}) AS {quote_ident(n)}"
                         if types[n] in ("JSON", "JSONB", "UUID") else quote_ident(n) for n in result.column_names]
                        + [GPOS])
        engine.execute(f"CREATE TEMP VIEW {_QUERY} AS SELECT {sel} FROM {_ROWS}")
        dims = {n: d[0] for n in result.column_names
                if (d := _fixed_dims(result.schema.field(n).type)) is not None and len(d) == 1}
        return _run_filters(conn, engine, _QUERY, dims, filters)
    finally:
        engine.close()


def _run_filters(conn: Connection, engine: Engine, relation: str, dims: dict[str, int],
                 filters: list[tuple[str, Params]]) -> np.ndarray:
    """Each filter in Postgres SQL (parameters, pgvector operators and all) -> positions;
    the rows kept are those every filter keeps."""
    keep: np.ndarray | None = None
    for text, params in filters:
        sql, values = to_dollar_params(f"SELECT {GPOS} FROM {quote_ident(relation)} WHERE {text}\n", params)
        stmts = parse(sql)
        if len(stmts) != 1:
            raise errors.SyntaxError(f"a filter is one boolean expression, not several statements: {text!r}")
        duck = deparse(Rewriter(dims, values)(stmts[0].stmt))
        table, _ = engine.arrow(duck, conn.session.duck_params(values, duck))
        got = np.sort(table.column(0).to_numpy())
        keep = got if keep is None else np.intersect1d(keep, got, assume_unique=True)
    assert keep is not None
    return keep
