"""DuckDB in-process, with the tables of a snapshot registered as Arrow data.

Each table becomes three relations:
- ``internal_name("t", name)``: the registered Arrow table, every fragment one chunk;
  vectors and fixed-shape tensors are FixedSizeList arrays built over memory-mapped matrix
  files (no copy); hidden ``_rowid``, ``__gpos`` (position in the table), ``__live``;
- ``internal_name("v", name)``: a view of the live rows with SQL types applied (JSON, UUID)
  plus the hidden columns, used by UPDATE/DELETE planning and the vector fast path;
- ``<name>``: the user's view, exactly the table's columns.

Every relation (and macro) reeldb makes for itself is named by ``internal_name``, a name no
SQL a user writes can produce, so a user's table may have any name (``"__t_t"`` included).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .. import errors
from ..format.arrays import ARRAY_TEXT_ELEMENTS, duck_array_text
from ..format.arrow import nested_lists, unsliced
from ..format.bytea import FUNCTIONS as BYTEA_FUNCTIONS
from ..format.citext import citext_in
from ..format.fragment import ROWID, FragmentReader
from ..format.fragment_arrow import LIVE, fragment_batch, fragment_schema, norms_name
from ..format.fragment_arrow import POSITION as GPOS
from ..format.hstore import FUNCTIONS as HSTORE_FUNCTIONS
from ..format.jsonb import FUNCTIONS as JSONB_FUNCTIONS
from ..format.manifest import Column, TableManifest
from ..format.pgvector import (
    sparse_text,
    to_halfvec,
    vector_aggregate,
    vector_arithmetic,
    vector_array_text,
    vector_text,
)
from ..format.ranges import KINDS as RANGE_KINDS
from ..format.ranges import functions as range_functions
from ..format.types import MATRIX
from ..types import pg_type_name

# Every name reeldb gives its own DuckDB relations and macros starts with INTERNAL, 64 bytes:
# longer than any identifier in SQL, which Postgres' scanner (and so pglast's) cuts to
# NAMEDATALEN - 1 = 63 bytes. So no name in a user's SQL can equal an internal one, and no
# user table can be named like one. (DuckDB's temporary objects, where registered Arrow
# tables live, all share one schema: a schema of their own is not possible.)
INTERNAL = "__reeldb_internal" + "_" * 47
IDENTIFIER_MAX_BYTES = 63


def internal_name(kind: str, name: str = "") -> str:
    """The DuckDB name of reeldb's own relation ``kind`` (no ``_`` in it) for ``name``:
    distinct kinds and names give distinct relations, none of them a user's."""
    assert "_" not in kind, kind
    return f"{INTERNAL}{kind}_{name}"


def is_internal(rel: str) -> bool:
    return rel.startswith(INTERNAL)


def shown_name(rel: str) -> str:
    """The name a user wrote for a relation (``internal_name``'s ``name``, unwrapped)."""
    while is_internal(rel):
        rel = rel[len(INTERNAL):].split("_", 1)[1]
    return rel


def rowid_view_name(rel: str) -> str:
    """The view of ``rel`` that shows _rowid after the table's columns."""
    return internal_name("x", rel)


DIV, MOD = internal_name("div"), internal_name("mod")
# pgvector's binary-vector distances and L1 distance (float8, as pgvector returns them)
HAMMING, JACCARD, L1 = internal_name("hamming"), internal_name("jaccard"), internal_name("l1")
_BIT_LENGTHS = ("CASE WHEN bit_length(a) <> bit_length(b) THEN error('different bit lengths ' || bit_length(a) "
                "|| ' and ' || bit_length(b))")
_EXTENSIONS = ("json", "parquet", "icu")  # built into DuckDB's wheel: loaded, never installed
_MACROS = [
    # Postgres raises on division by zero where DuckDB returns NULL
    f"CREATE OR REPLACE MACRO {DIV}(a, b) AS CASE WHEN b = 0 THEN error('division by zero') ELSE a / b END",
    f"CREATE OR REPLACE MACRO {MOD}(a, b) AS CASE WHEN b = 0 THEN error('division by zero') ELSE a % b END",
    # probed media metadata of IMAGE / VIDEO cells, as SQL functions
    "CREATE OR REPLACE MACRO video_frames(v) AS TRY_CAST(json_extract_string(v.meta, '$.frames') AS BIGINT)",
    "CREATE OR REPLACE MACRO video_fps(v) AS TRY_CAST(json_extract_string(v.meta, '$.fps') AS DOUBLE)",
    "CREATE OR REPLACE MACRO video_width(v) AS TRY_CAST(json_extract_string(v.meta, '$.width') AS INTEGER)",
    "CREATE OR REPLACE MACRO video_height(v) AS TRY_CAST(json_extract_string(v.meta, '$.height') AS INTEGER)",
    "CREATE OR REPLACE MACRO video_duration(v) AS TRY_CAST(json_extract_string(v.meta, '$.duration') AS DOUBLE)",
    "CREATE OR REPLACE MACRO video_codec(v) AS json_extract_string(v.meta, '$.codec')",
    "CREATE OR REPLACE MACRO image_width(v) AS TRY_CAST(json_extract_string(v.meta, '$.width') AS INTEGER)",
    "CREATE OR REPLACE MACRO image_height(v) AS TRY_CAST(json_extract_string(v.meta, '$.height') AS INTEGER)",
    "CREATE OR REPLACE MACRO image_format(v) AS json_extract_string(v.meta, '$.format')",
    "CREATE OR REPLACE MACRO blob_length(v) AS v.length",
    "CREATE OR REPLACE MACRO media_meta(v) AS CAST(v.meta AS JSON)",
    "CREATE OR REPLACE MACRO vector_dims(v) AS len(v)",
    # pgvector's binary_quantize(vector): a bit per element, 1 where it is positive
    "CREATE OR REPLACE MACRO binary_quantize(v) AS CAST(array_to_string(list_transform(CAST(v AS FLOAT[]), "
    "lambda x: CASE WHEN x > 0 THEN '1' ELSE '0' END), '') AS BIT)",
    f"CREATE OR REPLACE MACRO {HAMMING}(a, b) AS {_BIT_LENGTHS} ELSE CAST(bit_count(xor(a, b)) AS DOUBLE) END",
    f"CREATE OR REPLACE MACRO {JACCARD}(a, b) AS {_BIT_LENGTHS} WHEN bit_count(a & b) = 0 THEN CAST(1 AS DOUBLE) "
    "ELSE 1 - bit_count(a & b) / CAST(bit_count(a) + bit_count(b) - bit_count(a & b) AS DOUBLE) END",
    f"CREATE OR REPLACE MACRO {L1}(a, b) AS CAST(list_sum(list_transform(list_zip(CAST(a AS FLOAT[]), "
    "CAST(b AS FLOAT[])), lambda x: abs(x[1] - x[2]))) AS DOUBLE)",
    "CREATE OR REPLACE MACRO l2_norm(v) AS sqrt(list_sum(list_transform(CAST(v AS FLOAT[]), lambda x: x * x)))",
]


def _one_argument(fn: Callable[..., Any], *bound: Any) -> Callable[[Any], Any]:
    """``fn`` with its leading settings bound: DuckDB counts a Python function's
    parameters (a partial's and defaults included) against the SQL arguments."""
    return lambda rows: fn(*bound, rows)


def _two_arguments(fn: Callable[..., Any], *bound: Any) -> Callable[[Any, Any], Any]:
    return lambda a, b: fn(*bound, a, b)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class BoundTable:
    """What the engine registered for one table of a snapshot."""

    manifest: TableManifest
    internal: str  # registered Arrow table
    view: str  # live rows, SQL types, hidden columns
    arrow: pa.Table
    offsets: np.ndarray  # first global position of each fragment, plus the total
    signature: tuple = ()  # of the manifest as it was when bound (manifests are edited in place)
    indexes: dict[str, _SortedIndex] = field(default_factory=dict)  # point lookups, made on demand
    batches: list[pa.RecordBatch] | None = None  # arrow's, one per fragment, listed on demand
    filters: dict[tuple, Any] = field(default_factory=dict)  # the vector plan's filter cache (oldest first)
    ann: dict[str, Any] = field(default_factory=dict)  # vector index key -> its labels mapped to rows
    # derived once each (a bound table never changes), for the vector top-k path
    _live: np.ndarray | None = None
    _nulls: dict[int, np.ndarray] = field(default_factory=dict)
    _norms: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def live_positions(self) -> np.ndarray:
        """Global positions of the live rows."""
        if self._live is None:
            self._live = np.flatnonzero(self.arrow.column(LIVE).to_numpy()).astype(np.int64)
        return self._live

    def null_vectors(self, cid: int) -> np.ndarray:
        """Per global position: is the matrix column's cell NULL (its norm is)."""
        got = self._nulls.get(cid)
        if got is None:
            got = self._nulls[cid] = self.arrow.column(norms_name(cid)).is_null().to_numpy(zero_copy_only=False)
        return got

    def norms(self, cid: int, i: int) -> np.ndarray:
        """Fragment ``i``'s stored row norms of matrix column ``cid`` as float32 (NaN for
        NULL)."""
        key = (cid, i)
        got = self._norms.get(key)
        if got is None:
            col = self.arrow.column(norms_name(cid))
            frag = self.manifest.fragments[i]
            chunk = col.chunk(i) if col.num_chunks == len(self.manifest.fragments) else \
                col.slice(int(self.offsets[i]), frag.rows).combine_chunks()
            got = self._norms[key] = chunk.to_numpy(zero_copy_only=False).astype(np.float32)
        return got

    def rows(self, gpos: np.ndarray) -> pa.Table:
        """The registered rows at these global positions, as zero-copy slices of their
        fragments' batches (``Table.take`` would concatenate every chunk first)."""
        if self.batches is None:
            self.batches = self.arrow.to_batches()
        batches = self.batches
        idx = np.searchsorted(self.offsets, gpos, side="right") - 1
        parts = [batches[i].slice(int(g - self.offsets[i]), 1) for i, g in zip(idx, gpos)]
        table = pa.Table.from_batches(parts, schema=self.arrow.schema)
        for i, f in enumerate(table.schema):
            if nested_lists(f.type):  # tensors of 2+ dimensions: see unsliced()
                chunks = [unsliced(c) for c in table.column(i).chunks]
                table = table.set_column(i, f, pa.chunked_array(chunks, f.type))
        return table

    def locate(self, gpos: np.ndarray) -> dict[str, np.ndarray]:
        """Global positions -> {fragment id: positions within the fragment}."""
        frags = self.manifest.fragments
        idx = np.searchsorted(self.offsets, gpos, side="right") - 1
        out: dict[str, np.ndarray] = {}
        for i in np.unique(idx):
            sel = gpos[idx == i] - self.offsets[i]
            out[frags[i].id] = sel.astype(np.uint32)
        return out


class _SortedIndex:
    """A column's values sorted, with their row positions: equality lookups in O(log n)."""

    def __init__(self, column: pa.ChunkedArray):
        col = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        self.numeric = pa.types.is_integer(col.type)
        if not (self.numeric or pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            self.values = None
            return
        valid = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        values = col.drop_null().to_numpy(zero_copy_only=False)
        if not self.numeric:
            values = values.astype(str)
        order = np.argsort(values, kind="stable")
        self.values, self.positions = values[order], valid[order]

    def lookup(self, value: Any) -> np.ndarray | None:
        if self.values is None or value is None or isinstance(value, bool):
            return None
        if self.numeric:
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    return None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int | np.integer):
                return None
            if not -(2**63) <= int(value) < 2**63:
                return self.positions[:0]
        elif not isinstance(value, str):
            return None
        lo = np.searchsorted(self.values, value, side="left")
        hi = np.searchsorted(self.values, value, side="right")
        return self.positions[lo:hi]


def _signature(tm: TableManifest) -> tuple:
    if tm.key is not None:  # saved manifests are content-addressed
        return (tm.table_id, tm.key)
    return (tm.table_id, tm.schema.fingerprint, tuple((f.id, f.deletes) for f in tm.fragments))


# DuckDB connections do not survive fork(): destroying one that a child inherited (for
# instance when the child's garbage collector frees its parent's leftovers) crashes the
# child. Children keep every inherited connection alive instead, and never touch them.
_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()
_INHERITED: list[Engine] = []


def _adopt_inherited() -> None:
    _INHERITED.extend(_LIVE)


os.register_at_fork(after_in_child=_adopt_inherited)


VECTOR_TEXT = internal_name("vectortext")  # a Python function: a vector's text in pgvector's form
CLOCK = internal_name("clock")  # a Python function: the time now, read again for every row
SPARSE_TEXT = internal_name("sparsetext")  # a sparsevec's text: {1:1.5,3:2}/5
VECTOR_ARRAY_TEXT = {False: internal_name("vectorstext"), True: internal_name("sparsestext")}  # vector[], sparsevec[]
# pgvector's avg() and sum() of vector / halfvec: Python functions over list(column)
VECTOR_AGGREGATES = {("avg", "vector"): internal_name("vavg"), ("sum", "vector"): internal_name("vsum"),
                     ("avg", "halfvec"): internal_name("havg"), ("sum", "halfvec"): internal_name("hsum")}
PG_TYPE_NAME = internal_name("pgtypename")  # pg_typeof of an expression: DuckDB's type, named as Postgres'
TO_HALFVEC = internal_name("halfvec")  # x::halfvec: rounded to float2, too large is 22003
# pgvector's element-wise + - * of vectors / halfvecs (DuckDB's + of two arrays concatenates)
VECTOR_ARITHMETIC = {(op, kind): internal_name(f"v{name}", kind) for op, name in (("+", "add"), ("-", "sub"), ("*", "mul"))
                     for kind in ("vector", "halfvec")}
HSTORE = {name: internal_name("hstore", name) for name in HSTORE_FUNCTIONS}  # hstore's functions (format/hstore.py)
JSONB = {name: internal_name("jsonb", name) for name in JSONB_FUNCTIONS}
# the range types' functions and operators (format/ranges.py), by (range type, function)
RANGE_FUNCTIONS = {(kind, name): (internal_name("range", f"{kind}_{name}"), spec)
                   for kind in RANGE_KINDS for name, spec in range_functions(RANGE_KINDS[kind]).items()}
RANGE = {key: name for key, (name, _) in RANGE_FUNCTIONS.items()}  # jsonb's semantics (format/jsonb.py)
CITEXT_IN = internal_name("citextin")  # x::citext of a computed value: refused where reeldb's citext differs
CHAR_TYPE = internal_name("char")  # Postgres' one-byte "char", for the catalog: an ENUM of the characters
# int[]::text & co: Postgres' array text ({1,NULL,"a b"}) of a list, by DuckDB element type
ARRAY_TEXT = {element: internal_name(f"arraytext{element.lower()}") for element in ARRAY_TEXT_ELEMENTS}
_DATABASES: dict[tuple, duckdb.DuckDBPyConnection] = {}  # (pid, sandbox) -> that process's database
_DATABASE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Sandbox:
    """How a DuckDB database is confined. ``file_access``: DuckDB may read and write local
    files (its ``read_*`` functions, COPY, ATTACH); off, it reaches no file and no network
    (``enable_external_access = false``). ``memory_limit``: DuckDB's own limit (``'2GB'``),
    None for DuckDB's default. Either way the configuration is locked once set, so no
    statement can turn the sandbox off."""

    file_access: bool = False
    memory_limit: str | None = None


def _database(sandbox: Sandbox) -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB database for this sandbox, made on first use (again
    in a forked child, which must not touch its parent's)."""
    key = (os.getpid(), sandbox)
    with _DATABASE_LOCK:
        db = _DATABASES.get(key)
        if db is None:
            db = _open_database(sandbox)
            _DATABASES[key] = db
        return db


def _open_database(sandbox: Sandbox) -> duckdb.DuckDBPyConnection:
    # Postgres semantics: 7 / 2 = 3 for integers; NULLs sort last ascending, first
    # descending. Extensions: only those built into the wheel (json, parquet, icu): a
    # query never downloads code, and what it can do does not depend on the machine.
    # No Python replacement scans: else DuckDB resolves an unknown table name to a Python
    # variable of the calling frames, and SELECT * FROM some_name reads the process's memory.
    db = duckdb.connect(":memory:", config={
        "threads": os.cpu_count() or 2, "integer_division": True,
        "default_null_order": "nulls_last_on_asc_first_on_desc",
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "python_enable_replacements": False})
    try:
        for ext in _EXTENSIONS:
            db.execute(f"LOAD {ext}")
        db.execute(";\n".join(_MACROS))
        # vector::text in pgvector's form ([1.5,2,3]), not DuckDB's list text ([1.5, 2.0, 3.0])
        db.create_function(VECTOR_TEXT, lambda v: None if v is None else vector_text(v),
                           [duckdb.list_type("FLOAT")], "VARCHAR", null_handling="special")
        # clock_timestamp(): DuckDB's now() is the transaction's start; PostgreSQL's clock moves
        db.create_function(CLOCK, lambda: dt.datetime.now(dt.timezone.utc), [], "TIMESTAMP WITH TIME ZONE",
                           side_effects=True)
        db.create_function(SPARSE_TEXT, lambda v: None if v is None else sparse_text(v),
                           [duckdb.list_type("FLOAT")], "VARCHAR", null_handling="special")
        for sparse, fn in VECTOR_ARRAY_TEXT.items():
            db.create_function(fn, _one_argument(vector_array_text, sparse),
                               [duckdb.list_type(duckdb.list_type("FLOAT"))], "VARCHAR", null_handling="special")
        for element, fn in ARRAY_TEXT.items():
            db.create_function(fn, _one_argument(duck_array_text, element),
                               [duckdb.list_type("VARCHAR" if element == "JSONB" else element)], "VARCHAR",
                               null_handling="special")
        for (name, kind), fn in VECTOR_AGGREGATES.items():
            db.create_function(fn, _one_argument(vector_aggregate, name, kind),
                               [duckdb.list_type(duckdb.list_type("FLOAT"))], duckdb.list_type("FLOAT"),
                               null_handling="special")
        db.create_function(PG_TYPE_NAME, pg_type_name, ["VARCHAR"], "VARCHAR")
        db.create_function(TO_HALFVEC, to_halfvec, [duckdb.list_type("FLOAT")], duckdb.list_type("FLOAT"),
                           null_handling="special")
        for (op, kind), fn in VECTOR_ARITHMETIC.items():
            db.create_function(fn, _two_arguments(vector_arithmetic, op, kind),
                               [duckdb.list_type("FLOAT"), duckdb.list_type("FLOAT")], duckdb.list_type("FLOAT"),
                               null_handling="special")
        db.create_function(CITEXT_IN, citext_in, ["VARCHAR"], "VARCHAR")
        for name, (fn, args, ret) in BYTEA_FUNCTIONS.items():  # DuckDB has neither: PostgreSQL's names
            db.create_function(name, fn, args, ret)
        for name, (fn, args, ret, with_nulls) in HSTORE_FUNCTIONS.items():
            db.create_function(HSTORE[name], fn, args, ret, null_handling="special" if with_nulls else "default")
        for name, (fn, args, ret) in JSONB_FUNCTIONS.items():
            db.create_function(JSONB[name], fn, args, ret, null_handling="special")
        for name, (fn, args, ret, with_nulls) in RANGE_FUNCTIONS.values():
            db.create_function(name, fn, args, ret, null_handling="special" if with_nulls else "default")
        chars = ", ".join("'" + c.replace("'", "''") + "'" for c in [""] + [chr(i) for i in range(32, 127)])
        db.execute(f"CREATE TYPE {CHAR_TYPE} AS ENUM ({chars})")
        # the sandbox, set after what needs it (loading extensions) and then locked
        if not sandbox.file_access:
            db.execute("SET enable_external_access = false")
        if sandbox.memory_limit is not None:
            try:
                db.execute("SET memory_limit = $1", [sandbox.memory_limit])
            except duckdb.Error as e:
                raise errors.InvalidParameterValue(
                    f'invalid value for memory_limit: "{sandbox.memory_limit}" ({_clean(str(e))})') from None
        db.execute("SET lock_configuration = true")
    except BaseException:
        db.close()
        raise
    return db


class Engine:
    def __init__(self, reader: FragmentReader, *, file_access: bool = False, memory_limit: str | None = None):
        """``file_access``: DuckDB's local file functions work (the embedded API's opt-in;
        never for a served session). ``memory_limit``: DuckDB's memory limit, e.g. ``'4GB'``
        (shared by every engine of the process with the same sandbox)."""
        _LIVE.add(self)
        self.reader = reader
        self.sandbox = Sandbox(file_access, memory_limit)
        self.result_cap = memory_bytes(memory_limit)  # bytes a query's Arrow result may hold
        # a connection of the process's DuckDB database: relations, views and temporary
        # tables are the connection's own; threads and memory are shared by all sessions
        self.con = _database(self.sandbox).cursor()
        self.udf_error: errors.Error | None = None  # set by reeldb's Python functions in SQL (nextval)
        self.bound: dict[str, BoundTable] = {}  # relation name -> what is registered
        self._point_views: dict[str, str] = {}  # relation -> schema its point-lookup views fit
        self._cache: OrderedDict[tuple, tuple[pa.Table, np.ndarray]] = OrderedDict()
        self.lock = threading.RLock()
        self._open: ResultStream | None = None  # the result being read (DuckDB allows one)

    @property
    def file_access(self) -> bool:
        return self.sandbox.file_access

    # -- registration ----------------------------------------------------------------------
    def bind_snapshot(self, tables: Mapping[str, TableManifest], only: set[str] | None = None) -> None:
        """Make ``tables`` (those named in ``only``, when given) the relations of the same
        names; drop relations of tables that no longer exist (internal ones stay)."""
        with self.lock:
            for name in tables if only is None else sorted(n for n in only if n in tables):
                self.bind_table(name, tables[name])
            for rel in [r for r in self.bound if not is_internal(r) and r not in tables]:
                self.unbind(rel)

    def bind_table(self, rel: str, tm: TableManifest) -> BoundTable:
        """Register ``tm`` as relation ``rel``: a user's table name, or an ``internal_name``."""
        if not is_internal(rel) and len(rel.encode()) > IDENTIFIER_MAX_BYTES:
            raise errors.ProgrammingError(f'table name "{rel}" is longer than {IDENTIFIER_MAX_BYTES} bytes',
                                          sqlstate="42622")
        with self.lock:
            cur = self.bound.get(rel)
            sig = _signature(tm)
            if cur is not None and cur.signature == sig:
                return cur
            arrow, offsets = self._arrow(tm, sig)
            internal, view = internal_name("t", rel), internal_name("v", rel)
            self.settle()
            self.con.register(internal, arrow)
            if cur is not None and cur.manifest.schema.fingerprint == tm.schema.fingerprint:
                # same columns: the views still fit, only the registered data changed
                bt = BoundTable(tm.copy(), internal, view, arrow, offsets, sig)
                self.bound[rel] = bt
                return bt
            self._create_views(tm, internal, view, rel, rowid_view=True)
            bt = BoundTable(tm.copy(), internal, view, arrow, offsets, sig)
            self.bound[rel] = bt
            return bt

    def _create_views(self, tm: TableManifest, internal: str, view: str, rel: str, rowid_view: bool) -> None:
        cols = ", ".join(select_expr(c) for c in tm.schema.columns)
        hidden = [ROWID, GPOS] + [norms_name(c.id) for c in tm.schema.columns if c.type.storage == MATRIX]
        sep = ", " if cols else ""
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS SELECT {cols}{sep}"
            f"{', '.join(hidden)} FROM {quote_ident(internal)} WHERE {LIVE}"
        )
        user_cols = ", ".join(quote_ident(c.name) for c in tm.schema.columns) or "NULL AS \"?column?\" LIMIT 0"
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote_ident(rel)} AS SELECT {user_cols} FROM {quote_ident(view)}"
        )
        if rowid_view:  # with the hidden _rowid last: queries that name _rowid read this one
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote_ident(rowid_view_name(rel))} AS SELECT "
                f"{user_cols + ', ' if tm.schema.columns else ''}{ROWID} FROM {quote_ident(view)}"
            )

    def point_rows(self, rel: str, column: str, value: Any) -> pa.Table | None:
        """The registered rows of ``rel`` (deleted ones included: their ``__live`` is
        false) whose ``column`` equals ``value``, found in a sorted index of the column made
        once per bound table, so that ``WHERE id = $1`` reads one row rather than scanning
        the table. None where the value cannot be compared without SQL's casts."""
        with self.lock:
            bt = self.bound.get(rel)
            if bt is None:
                return None
            index = bt.indexes.get(column)
            if index is None:
                index = bt.indexes[column] = _SortedIndex(bt.arrow.column(column))
            positions = index.lookup(value)
            return None if positions is None else bt.rows(positions)

    def point_relation(self, rel: str, rows: pa.Table) -> str:
        """A relation like ``rel`` over just these rows (from ``point_rows``)."""
        with self.lock:
            bt = self.bound[rel]
            internal, view, user = internal_name("pt", rel), internal_name("pv", rel), internal_name("pu", rel)
            self.settle()
            self.con.register(internal, rows)
            if self._point_views.get(rel) != bt.manifest.schema.fingerprint:
                self._create_views(bt.manifest, internal, view, user, rowid_view=False)
                self._point_views[rel] = bt.manifest.schema.fingerprint
            return user

    def unbind(self, rel: str) -> None:
        self.settle()
        bt = self.bound.pop(rel)
        self.con.execute(f"DROP VIEW IF EXISTS {quote_ident(rel)}")
        self.con.execute(f"DROP VIEW IF EXISTS {quote_ident(rowid_view_name(rel))}")
        self.con.execute(f"DROP VIEW IF EXISTS {quote_ident(bt.view)}")
        try:
            self.con.unregister(bt.internal)
        except duckdb.Error:
            pass

    def _arrow(self, tm: TableManifest, sig: tuple) -> tuple[pa.Table, np.ndarray]:
        hit = self._cache.get(sig)
        if hit is not None:
            self._cache.move_to_end(sig)
            return hit
        schema = fragment_schema(tm.schema.columns)
        self._prefetch(tm)
        batches = []
        offsets = [0]
        store = getattr(self.reader.store, "url", None) or id(self.reader.store)
        for frag in tm.fragments:
            # fragments are immutable: a batch is reused until the fragment, its deletion
            # vector, its place or the schema changes (so an append builds one batch)
            bkey = (store, tm.table_id, frag.id, frag.deletes, offsets[-1], tm.schema.fingerprint)
            batch = _BATCHES.get(bkey)
            if batch is None:
                batch = _BATCHES.put(bkey, fragment_batch(self.reader, tm.table_id, frag, tm.schema.columns,
                                                          start=offsets[-1], schema=schema))
            batches.append(batch)
            offsets.append(offsets[-1] + frag.rows)
        table = pa.Table.from_batches(batches, schema=schema)
        out = (table, np.asarray(offsets, dtype=np.int64))
        self._cache[sig] = out
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return out

    def _prefetch(self, tm: TableManifest) -> None:
        """Read fragments not cached yet on a few threads (Parquet decoding releases the
        GIL): a first query over a table of many small fragments is mostly these reads."""
        missing = [f for f in tm.fragments if not self.reader.cached(tm.table_id, f)]
        if len(missing) < 8:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
            list(pool.map(lambda f: self.reader.table(tm.table_id, f), missing))

    # -- execution -------------------------------------------------------------------------
    def settle(self) -> None:
        """Before DuckDB runs anything else on this connection: the open result's rest is
        read into memory (DuckDB keeps one open result per connection), so it stays
        readable, as a result of psycopg or of DuckDB's own cursors does."""
        with self.lock:
            if self._open is not None:
                self._open.detach()

    def execute(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        with self.lock:
            self.settle()
            try:
                return self.con.execute(sql, params or None)
            except duckdb.Error as e:
                raise self._translate(e) from None

    def arrow(self, sql: str, params: list[Any] | dict[str, Any] | None = None, *,
              columns_only: bool = False) -> tuple[pa.Table, list]:
        """Run a query; returns its Arrow table (refused with 53200 past the memory bound)
        and (name, DuckDB type) per column. ``columns_only``: no row is computed (a
        Describe, whose NULL parameters must not reach a function that refuses NULL)."""
        with self.lock:
            got, desc = self.query(sql, params, columns_only=columns_only)
            return (got.collect() if isinstance(got, ResultStream) else got), desc

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None,
              deadline: float | None = None, *, columns_only: bool = False) -> tuple[pa.Table | ResultStream, list]:
        """Run a query; returns its result and (name, DuckDB type) per column. A result of
        one batch comes back as a table; a longer one as an open ``ResultStream`` holding
        its first batches, read on as its consumer asks (a batch in memory, not the result),
        its reads refused with 57014 past ``deadline`` (``time.monotonic()``)."""
        with self.lock:
            self.settle()
            try:
                rel = self.con.sql(sql, params=params or None)
                if rel is None:
                    return pa.table({}), []
                desc = list(zip(rel.columns, rel.types, strict=True))
                rel = _timetz_as_text(rel, desc)
                if columns_only:
                    rel = rel.limit(0)
                reader = rel.to_arrow_reader(RESULT_BATCH_ROWS)
            except duckdb.Error as e:
                raise self._translate(e) from None
            stream = self._open = ResultStream(self, reader, deadline)
            first = stream.read()  # errors of the first batch are the statement's own
            second = stream.read() if first is not None else None
            if second is None:
                batches = [] if first is None else [first]
                return pa.Table.from_batches(batches, schema=stream.schema), desc
            stream.push_front(first, second)
            return stream, desc

    def _translate(self, e: Exception) -> errors.Error:
        if self.udf_error is not None:  # a reeldb function DuckDB called failed: its own error
            err, self.udf_error = self.udf_error, None
            return err
        err = translate_error(e)
        limit = self.sandbox.memory_limit
        if isinstance(err, errors.OutOfMemory) and limit is not None and "limit is" not in err.message:
            return errors.OutOfMemory(f"{err.message} (the statement memory limit is {limit})")
        return err

    def register(self, name: str, table: pa.Table) -> None:
        with self.lock:
            self.settle()
            self.con.register(name, table)

    def unregister(self, name: str) -> None:
        with self.lock:
            self.settle()
            try:
                self.con.unregister(name)
            except duckdb.Error:
                pass

    def close(self) -> None:
        with self.lock:
            if self._open is not None:
                self._open.close()
            self.con.close()


class ResultStream:
    """A query's result read from DuckDB a batch at a time, as its consumer asks, so memory
    holds a batch, not the result. DuckDB keeps one open result per connection: before the
    engine runs anything else it ``detach``es the open stream (its rest read into memory,
    under the memory bound)."""

    def __init__(self, engine: Engine, reader: pa.RecordBatchReader, deadline: float | None):
        self.schema: pa.Schema = reader.schema
        self.deadline = deadline  # time.monotonic() past which reading is refused (57014)
        self._engine = engine
        self._reader: pa.RecordBatchReader | None = reader
        self._held: deque[pa.RecordBatch] = deque()  # read ahead: at open, or by detach
        self._error: errors.Error | None = None  # what detaching ran into, raised when read

    def read(self) -> pa.RecordBatch | None:
        """The next batch; None at the end."""
        if self._held:
            return self._held.popleft()
        if self._error is not None:
            raise self._error
        if self._reader is None:
            return None
        with self._engine.lock:
            if self._reader is None:  # detached meanwhile
                return self.read()
            return self._pull()

    def push_front(self, *batches: pa.RecordBatch) -> None:
        self._held.extendleft(reversed(batches))

    def collect(self) -> pa.Table:
        """The rest as one table, refused with 53200 once it holds more than the memory
        limit: DuckDB's limit covers its own buffers, not the Arrow result it hands over."""
        batches, held, cap = [], 0, self._engine.result_cap
        while (batch := self.read()) is not None:
            held += batch.nbytes
            if cap is not None and held > cap:
                self.close()
                limit = self._engine.sandbox.memory_limit
                raise errors.OutOfMemory(f"out of memory: the result holds more than {limit} "
                                         f"(the statement memory limit is {limit})")
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=self.schema)

    def detach(self) -> None:
        """Read the rest into memory and release DuckDB's connection for another query. A
        failure (the memory bound, the statement's deadline, an error of the query) ends
        the stream: reading it raises that error."""
        if self._reader is None:
            return
        try:
            self._held.extend(self.collect().to_batches())
        except errors.Error as e:
            self._held.clear()
            if isinstance(e, errors.OutOfMemory):
                e = errors.OutOfMemory(f"{e.message}: the rest of an open result is read into memory when "
                                       "another statement runs on its connection; read it first, or use "
                                       "another connection")
            self._error = e
        finally:
            self.close()

    def close(self) -> None:
        """Release DuckDB's result (the rest is not read)."""
        reader, self._reader = self._reader, None
        if self._engine._open is self:
            self._engine._open = None
        if reader is not None:
            reader.close()

    def _pull(self) -> pa.RecordBatch | None:
        """A batch from DuckDB, interrupted at the deadline."""
        assert self._reader is not None
        timer = None
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise errors.StatementTimeout("canceling statement due to statement timeout")
            timer = threading.Timer(left, self._engine.con.interrupt)
            timer.daemon = True
            timer.start()
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            self.close()
            return None
        except (OSError, pa.ArrowException, duckdb.Error) as e:  # DuckDB's, as its Arrow stream reports them
            self.close()
            err = self._engine._translate(e)
            if isinstance(err, errors.QueryCanceled) and self.deadline is not None \
                    and time.monotonic() >= self.deadline:
                err = errors.StatementTimeout("canceling statement due to statement timeout")
            raise err from None
        finally:
            if timer is not None:
                timer.cancel()


class _BatchCache:
    """Fragment batches shared by every engine of the process: the server's sessions, and
    connections to the same database, read a fragment once and hold it once."""

    def __init__(self, max_bytes: int = 2 << 30):
        self._entries: OrderedDict[tuple, pa.RecordBatch] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes  # matrix columns are memory-mapped: counted, mostly not resident
        self._lock = threading.Lock()

    def get(self, key: tuple) -> pa.RecordBatch | None:
        with self._lock:
            batch = self._entries.get(key)
            if batch is not None:
                self._entries.move_to_end(key)
            return batch

    def put(self, key: tuple, batch: pa.RecordBatch) -> pa.RecordBatch:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = batch
            self._bytes += batch.nbytes
            while self._bytes > self._max and len(self._entries) > 1:
                self._bytes -= self._entries.popitem(last=False)[1].nbytes
            return batch


_BATCHES = _BatchCache()


@functools.lru_cache(maxsize=256)
def duck_type_name(sql: str) -> str:
    """DuckDB's own spelling of a type (what a query's description says of it)."""
    return str(duckdb.sqltype(sql))


def select_expr(c: Column) -> str:
    q = quote_ident(c.name)
    if c.type.kind in ("json", "jsonb"):
        return f"CAST({q} AS JSON) AS {q}"
    if c.type.kind == "uuid":
        return f"CAST({q} AS UUID) AS {q}"
    if c.type.is_enum:  # sorts and compares in declaration order, as Postgres' enums
        return f"CAST({q} AS {c.type.duck_enum()}) AS {q}"
    if c.type.kind in ("bit", "varbit"):  # stored as the text of its bits
        return f"CAST({q} AS BIT) AS {q}"
    if c.type.kind == "citext":  # compares through lower() (format/citext.py, sql/citext.py)
        return f"CAST({q} AS VARCHAR) COLLATE NOCASE AS {q}"
    if c.type.kind in ("uuid_array", "jsonb_array"):  # stored as lists of text
        return f"CAST({q} AS {c.type.duck()}) AS {q}"
    return q


VALUE_TOO_LARGE = "would build a value larger than"
NOT_SUPPORTED_AT_RUN = "is not supported by reeldb for this value"  # raised by error(): 0A000
RESULT_BATCH_ROWS = 1 << 16  # rows per batch a result is read in

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def memory_bytes(limit: str | None) -> int | None:
    """``'2GB'``, ``'512MiB'``, ``'50%'`` (of this machine) as bytes, read as DuckDB reads
    them; None for no limit or a form not understood."""
    if limit is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*|%)\s*", limit)
    if m is None:
        return None
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "%":
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * value / 100)
        except (ValueError, OSError):
            return None
    if unit not in _UNITS:
        return None
    return int(value * _UNITS[unit])

# DuckDB's kind of error: its exception class, or, where only the message came through (its
# Arrow stream raises ArrowInvalid with DuckDB's text), the "<kind> Error: " that opens it
_KIND_OF_CLASS: dict[type, str] = {
    duckdb.CatalogException: "Catalog", duckdb.BinderException: "Binder",
    duckdb.ConversionException: "Conversion", duckdb.ParserException: "Parser",
    duckdb.InvalidInputException: "Invalid Input", duckdb.OutOfRangeException: "Out of Range",
    duckdb.NotImplementedException: "Not implemented", duckdb.ConstraintException: "Constraint",
    duckdb.InterruptException: "INTERRUPT", duckdb.PermissionException: "Permission",
    duckdb.OutOfMemoryException: "Out of Memory", duckdb.SyntaxException: "Syntax",
}
_KIND_PREFIX = re.compile("(" + "|".join(re.escape(k) for k in _KIND_OF_CLASS.values()) + ") Error: ")

# messages that mean one thing whatever kind of error carries them (reeldb's own, raised
# with error() inside a query: they come back as DuckDB's Invalid Input or Out of Range)
_ANY_KIND: list[tuple[str, type[errors.Error]]] = [
    (VALUE_TOO_LARGE, errors.OutOfMemory),  # sql/limits.py's guard on one value
    (NOT_SUPPORTED_AT_RUN, errors.FeatureNotSupported),  # a refusal that depends on a value
    ("Division by zero", errors.DivisionByZero),
    ("division by zero", errors.DivisionByZero),
]

# each kind's SQLSTATE class, and the messages of it that have a more precise one (first match)
_KINDS: dict[str, tuple[type[errors.Error], list[tuple[str, type[errors.Error]]]]] = {
    "Catalog": (errors.UndefinedObject, [
        ("Table with name", errors.UndefinedTable),
        ("Scalar Function with name", errors.UndefinedFunction),
        ("Function with name", errors.UndefinedFunction),
        ("Macro Function", errors.UndefinedFunction),
        ("Schema with name", errors.InvalidSchemaName)]),
    "Binder": (errors.ProgrammingError, [
        ("Referenced column", errors.UndefinedColumn),
        ("Referenced table", errors.UndefinedTable),
        ("not found in FROM clause", errors.UndefinedColumn),
        ("Values list", errors.UndefinedColumn),
        ("No function matches", errors.UndefinedFunction),
        ("Could not choose a best candidate function", errors.UndefinedFunction),
        ("Cannot compare", errors.DatatypeMismatch)]),
    "Conversion": (errors.InvalidTextRepresentation, [
        ("value is out of range for the destination type", errors.NumericValueOutOfRange)]),
    "Parser": (errors.SyntaxError, []),
    "Syntax": (errors.SyntaxError, [("must not end with escape character", errors.InvalidEscapeSequence)]),
    "Invalid Input": (errors.DataError, [("Malformed JSON", errors.InvalidTextRepresentation)]),
    "Out of Range": (errors.NumericValueOutOfRange, []),
    "Not implemented": (errors.FeatureNotSupported, []),
    "Constraint": (errors.IntegrityError, []),
    "INTERRUPT": (errors.QueryCanceled, []),
    "Permission": (errors.InsufficientPrivilege, []),  # the sandbox: no file or network access
    "Out of Memory": (errors.OutOfMemory, []),
}


_QUOTED = re.compile(r"'(?:[^']|'')*'")


def _kind(e: Exception, msg: str) -> str | None:
    for cls in type(e).__mro__:
        if cls in _KIND_OF_CLASS:
            return _KIND_OF_CLASS[cls]
    m = _KIND_PREFIX.search(msg)
    return m.group(1) if m else None


_PG_MESSAGES = [
    (re.compile(r'Table with name ([^ ]+) does not exist!?'), lambda m: f'relation "{shown_name(m.group(1))}" does not exist'),
    (re.compile(r'Referenced column "?([^" ]+)"? not found in FROM clause!?'), r'column "\1" does not exist'),
    (re.compile(r'Scalar Function with name ([^ ]+) does not exist!?'), r"function \1 does not exist"),
    (re.compile(r'Referenced table "?([^" ]+)"? not found!?'), r'missing FROM-clause entry for table "\1"'),
    (re.compile(r'Like pattern must not end with escape character!?'), "LIKE pattern must not end with escape character"),
    (re.compile(r'Table "([^"]+)" does not have a column named "([^"]+)"'), r'column \1.\2 does not exist'),
]


_NOT_BUILT_IN = re.compile(r'(?:(Type)|Function) with name "?([^" ]+)"? is not in the catalog, but it exists in')


# a reeldb Python function's own error (format/hstore.py, format/citext.py: with its SQLSTATE;
# format/pgvector.py: a reeldb error class), from the start of DuckDB's message: user text
# quoted later in another error cannot pose as one
_RAISED = re.compile(r"Invalid Input Error: Python exception occurred while executing the UDF: "
                     r"(?:(?:HstoreError|CitextError|RangeError): SQLSTATE ([0-9A-Z]{5})|(\w+)): (.*)", re.DOTALL)


def _raised(msg: str) -> errors.Error | None:
    m = _RAISED.match(msg.split("\n\nLINE")[0])
    if m is None:
        return None
    sqlstate, name, text = m.groups()
    if sqlstate is not None:
        return errors.DataError(text.strip(), sqlstate=sqlstate)
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.Error):
        return cls(text.strip())
    return None


def _timetz_as_text(rel: duckdb.DuckDBPyRelation, desc: list) -> duckdb.DuckDBPyRelation:
    """A relation with its timetz columns as their text: DuckDB's Arrow export keeps a
    timetz's clock time and drops its offset (the description still says timetz, and
    types/datetimes.py reads the text back). Columns of one name twice: left as they are."""
    names = [n for n, _ in desc]
    if not any(str(t) == "TIME WITH TIME ZONE" for _, t in desc) or len(set(names)) != len(names):
        return rel
    quoted = ['"' + n.replace('"', '""') + '"' for n in names]
    return rel.project(", ".join(f"CAST({q} AS VARCHAR) AS {q}" if str(t) == "TIME WITH TIME ZONE" else q
                                 for q, (_, t) in zip(quoted, desc, strict=True)))


def translate_error(e: Exception) -> errors.Error:
    """A DuckDB error -> the reeldb error with the Postgres SQLSTATE a client expects."""
    msg = str(e)
    raised = _raised(msg)
    if raised is not None:
        return raised
    first = msg.split("\n\nLINE")[0].strip()
    m = _NOT_BUILT_IN.search(first)
    if m:  # e.g. inet: an extension reeldb does not load (it would be downloaded)
        return errors.UndefinedObject(f'type "{m.group(2)}" does not exist' if m.group(1)
                                      else f"function {m.group(2)} does not exist")
    for pattern, repl in _PG_MESSAGES:
        m = pattern.search(first)
        if m:
            hint = ""
            if "Candidate bindings:" in first or "Did you mean" in first:
                cand = first.split("\n", 1)[1].strip() if "\n" in first else ""
                hint = "" if "pg_" in cand or "__" in cand else f" ({cand})"
            text = repl(m) if callable(repl) else m.expand(repl)
            first = first[:first.index(":") + 2] + text + hint if ": " in first[:40] else text + hint
    kind = _kind(e, msg)
    if kind == "INTERRUPT":  # interrupted by a CancelRequest or the statement timeout
        return errors.QueryCanceled("canceling statement due to user request")
    if kind == "Out of Memory":
        return errors.OutOfMemory("out of memory: " + first.splitlines()[0].removeprefix("Out of Memory Error: "))
    bare = _QUOTED.sub("''", msg)  # DuckDB's own words only: user data it quotes never picks the SQLSTATE
    for needle, cls in _ANY_KIND:
        if needle in bare:
            return cls(_clean(first))
    if kind is None:
        return errors.InternalError(_clean(first))
    if kind == "Binder" and "must appear in the GROUP BY clause" in bare:
        return errors.ProgrammingError(_clean(first), sqlstate="42803")
    cls, refinements = _KINDS[kind]
    cls = next((better for needle, better in refinements if needle in bare), cls)
    return cls(_clean(first))


def _clean(msg: str) -> str:
    for prefix in ("Catalog Error: ", "Binder Error: ", "Conversion Error: ", "Parser Error: ",
                   "Invalid Input Error: ", "Out of Range Error: ", "Not implemented Error: ",
                   "Constraint Error: ", "Syntax Error: "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg
