"""Column types: how each SQL type is stored, shown to DuckDB and checked on the way in.

Three storage classes (DESIGN.md principle 3): ``parquet`` for scalars/text/JSON,
``matrix`` for fixed-shape numeric values (one row-major file per fragment) and
``blob`` for variable-size values (packs, referenced by a struct in the Parquet file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from .arrays import ARRAY_KINDS
from .pgvector import check_sparse_dim, parse_sparse_text
from .ranges import KINDS as RANGE_KINDS

PARQUET, MATRIX, BLOB = "parquet", "matrix", "blob"
VECTOR_KINDS = ("vector", "halfvec", "sparsevec")  # pgvector's: one dimension, stored as a matrix
# one-dimensional arrays of them (vector[]): Parquet lists of float4 lists, ``length`` the
# elements' dimension when the type names one (vector(3)[])
VECTOR_ARRAY_KINDS = {"vector_array": "vector", "halfvec_array": "halfvec", "sparsevec_array": "sparsevec"}

# Every out-of-line value is this struct in Parquet: ``kind`` says how to show it in
# Python, ``data`` holds small values inline, (pack, offset, length) points into a pack,
# ``meta`` is the probed media metadata as JSON text, ``sums`` the checksums of a packed
# value's blocks (format/checksum.py; NULL for inline values and cells written before).
BLOB_STRUCT = pa.struct(
    [
        ("kind", pa.string()),
        ("data", pa.binary()),
        ("pack", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("meta", pa.string()),
        ("sums", pa.binary()),
    ]
)
BLOB_FIELDS = tuple(f.name for f in BLOB_STRUCT)
OLD_BLOB_FIELDS = BLOB_FIELDS[:-1]  # cells written before checksums

TENSOR_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "bfloat16": None,  # refused below: numpy has no bfloat16
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}
_DTYPE_ALIASES = {"half": "float16", "float": "float32", "double": "float64", "fp16": "float16",
                  "fp32": "float32", "f16": "float16", "f32": "float32"}

_DUCK_OF_DTYPE = {
    "float16": "FLOAT",  # DuckDB has no half floats: shown as FLOAT, stored as float16
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "bool": "BOOLEAN",
}


@dataclass(frozen=True)
class ColumnType:
    """One SQL column type. ``kind`` is reeldb's canonical name of the type."""

    kind: str
    length: int | None = None  # VARCHAR(n)
    precision: int | None = None  # NUMERIC(p, s)
    scale: int | None = None
    dtype: str | None = None  # VECTOR / HALFVEC / TENSOR element type
    shape: tuple[int, ...] | None = None  # fixed shape; None for any-shape TENSOR
    serial: bool = False
    # an enum type's column: kind "text", ``dtype`` the type's name, its labels in declaration order
    labels: tuple[str, ...] | None = None

    # -- classification ---------------------------------------------------------------
    @property
    def is_enum(self) -> bool:
        return self.labels is not None

    @property
    def element_kind(self) -> str | None:
        """The element kind of an array column of a scalar type (format/arrays.py), else None."""
        return ARRAY_KINDS.get(self.kind)

    @property
    def storage(self) -> str:
        if self.kind in VECTOR_KINDS:
            return MATRIX
        if self.kind == "tensor":
            return MATRIX if self.shape is not None else BLOB
        if self.kind in ("bytea", "image", "video"):
            return BLOB
        return PARQUET

    @property
    def np_dtype(self) -> np.dtype:
        assert self.dtype is not None
        return np.dtype(TENSOR_DTYPES[self.dtype])

    @property
    def row_shape(self) -> tuple[int, ...]:
        assert self.shape is not None
        return self.shape

    # -- names ---------------------------------------------------------------------------
    def sql(self) -> str:
        """The type as a user wrote it (for \\d, errors and the catalog)."""
        k = self.kind
        if self.serial:
            return "bigserial" if k == "int64" else "serial"
        if self.labels is not None:
            return str(self.dtype)
        if k == "varchar":
            return f"varchar({self.length})" if self.length else "varchar"
        if k == "numeric":
            if self.precision is None:
                return "numeric"
            return f"numeric({self.precision},{self.scale or 0})"
        if k in VECTOR_KINDS:
            return f"{k}({self.shape[0]})" if self.shape else k
        if k in VECTOR_ARRAY_KINDS:
            return VECTOR_ARRAY_KINDS[k] + (f"({self.length})" if self.length else "") + "[]"
        if k in ARRAY_KINDS:
            return self.element().sql() + "[]"
        if k == "bit":
            return f"bit({self.length})"
        if k == "varbit":
            return f"bit varying({self.length})" if self.length else "bit varying"
        if k == "tensor":
            dims = "" if self.shape is None else ", " + ", ".join(map(str, self.shape))
            return f"tensor({self.dtype}{dims})"
        return _SQL_NAMES.get(k, k)

    def duck(self) -> str:
        """The DuckDB type the column is shown as in SQL."""
        k = self.kind
        if k in VECTOR_KINDS:
            return f"FLOAT[{self.shape[0]}]"
        if k == "tensor" and self.shape is not None:
            return _DUCK_OF_DTYPE[self.dtype] + "".join(f"[{d}]" for d in reversed(self.shape))
        if k in ARRAY_KINDS:
            return ("BLOB" if ARRAY_KINDS[k] == "bytea" else self.element().duck()) + "[]"
        if self.storage == BLOB:
            return ("STRUCT(kind VARCHAR, \"data\" BLOB, pack VARCHAR, \"offset\" BIGINT, length BIGINT, meta VARCHAR, "
                    "sums BLOB)")
        if k == "numeric":
            p, s = self.numeric_ps()
            return f"DECIMAL({p},{s})"
        return _DUCK_NAMES[k]

    def element(self) -> ColumnType:
        """An array column's element type (``varchar(3)[]`` -> ``varchar(3)``)."""
        return ColumnType(ARRAY_KINDS[self.kind], length=self.length, precision=self.precision, scale=self.scale)

    def numeric_ps(self) -> tuple[int, int]:
        if self.precision is None:
            return 38, 10
        return self.precision, self.scale or 0

    def arrow(self) -> pa.DataType:
        """The Arrow type of the Parquet column (matrix columns have none)."""
        k = self.kind
        if self.storage == BLOB:
            return BLOB_STRUCT
        if k in ARRAY_KINDS:  # a Parquet list of the element's storage type (bytea inline)
            return pa.list_(pa.binary() if ARRAY_KINDS[k] == "bytea" else self.element().arrow())
        if k == "numeric":
            p, s = self.numeric_ps()
            return pa.decimal128(p, s)
        return _ARROW_TYPES[k]

    def to_json(self) -> dict:
        d: dict[str, Any] = {"kind": self.kind}
        for name in ("length", "precision", "scale", "dtype"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        if self.shape is not None:
            d["shape"] = list(self.shape)
        if self.serial:
            d["serial"] = True
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d

    @staticmethod
    def from_json(d: dict) -> ColumnType:
        d = dict(d)
        if "shape" in d:
            d["shape"] = tuple(d["shape"])
        if "labels" in d:
            d["labels"] = tuple(d["labels"])
        return ColumnType(**d)

    def duck_enum(self) -> str:
        """An ENUM column as DuckDB's ENUM of its labels: sorts and compares in declaration
        order, as Postgres does."""
        assert self.labels is not None
        duck = "ENUM(" + ", ".join("'" + lab.replace("'", "''") + "'" for lab in self.labels) + ")"
        ENUM_NAMES[duck.upper()] = str(self.dtype)
        return duck


# DuckDB's ENUM(...) type of an enum column (as a result description prints it, upper case)
# -> the enum type's name: the wire sends such a column with the type's OID
ENUM_NAMES: dict[str, str] = {}


def enum_type(name: str, labels: list[str] | tuple[str, ...]) -> ColumnType:
    """The column type of the enum type ``name`` (CREATE TYPE name AS ENUM (...)): stored
    as text, its labels kept with the column so that every reader knows their order."""
    return ColumnType("text", dtype=name, labels=tuple(labels))


def check_enum_values(ctype: ColumnType, column: str, values: pa.Array | pa.ChunkedArray) -> None:
    """22P02 for a value that is not one of the enum's labels, before anything is written."""
    import pyarrow.compute as pc

    assert ctype.labels is not None
    wrong = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(ctype.labels))))
    bad = pc.filter(values, wrong)
    if len(bad):
        raise errors.InvalidTextRepresentation(
            f'invalid input value for enum {ctype.dtype}: "{bad[0].as_py()}" (column {column})')


_SQL_NAMES = {
    "int16": "smallint", "int32": "integer", "int64": "bigint", "float32": "real",
    "float64": "double precision", "bool": "boolean", "text": "text", "bytea": "bytea",
    "json": "json", "jsonb": "jsonb", "date": "date", "timestamp": "timestamp",
    "timestamptz": "timestamp with time zone", "uuid": "uuid", "image": "image", "video": "video",
    "time": "time", "interval": "interval", "citext": "citext", "hstore": "hstore",
}
_DUCK_NAMES = {"bit": "BIT", "varbit": "BIT", "vector_array": "FLOAT[][]", "halfvec_array": "FLOAT[][]",
               "sparsevec_array": "FLOAT[][]",
    "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float32": "FLOAT",
    "float64": "DOUBLE", "bool": "BOOLEAN", "text": "VARCHAR", "varchar": "VARCHAR",
    "json": "JSON", "jsonb": "JSON", "date": "DATE", "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ", "uuid": "UUID", "time": "TIME", "interval": "INTERVAL",
    "citext": "VARCHAR", "hstore": "MAP(VARCHAR, VARCHAR)",  # the extensions' types (sql/extensions.py)
}
_ARROW_TYPES = {
    "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
    "float64": pa.float64(), "bool": pa.bool_(), "text": pa.string(), "varchar": pa.string(),
    "json": pa.string(), "jsonb": pa.string(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
    "uuid": pa.string(), "time": pa.time64("us"), "interval": pa.month_day_nano_interval(),
    "bit": pa.string(), "varbit": pa.string(),  # the text of 0s and 1s
    "vector_array": pa.list_(pa.list_(pa.float32())), "halfvec_array": pa.list_(pa.list_(pa.float32())),
    "sparsevec_array": pa.list_(pa.list_(pa.float32())),
    "citext": pa.string(), "hstore": pa.map_(pa.string(), pa.string()),  # hstore: pairs in hstore's order
}

# Postgres type names (as pglast hands them over, pg_catalog prefix dropped) -> kind.
_KINDS = {
    "int2": "int16", "smallint": "int16", "int4": "int32", "int": "int32", "integer": "int32",
    "int8": "int64", "bigint": "int64", "float4": "float32", "real": "float32",
    "float8": "float64", "float": "float64", "double": "float64", "bool": "bool",
    "boolean": "bool", "text": "text", "varchar": "varchar", "bpchar": "varchar",
    "char": "varchar", "character": "varchar", "string": "text", "bytea": "bytea",
    "blob": "bytea", "json": "json", "jsonb": "jsonb", "date": "date",
    "timestamp": "timestamp", "timestamptz": "timestamptz", "uuid": "uuid",
    "numeric": "numeric", "decimal": "numeric", "image": "image", "video": "video",
    "vector": "vector", "halfvec": "halfvec", "tensor": "tensor", "time": "time",
    "interval": "interval", "sparsevec": "sparsevec", "bit": "bit", "varbit": "varbit",
    "citext": "citext", "hstore": "hstore",  # only once CREATE EXTENSION made them (sql/extensions.py)
}
# the built-in range and multirange types (format/ranges.py): a column kind of their own each,
# named as the type
for _range in RANGE_KINDS.values():
    _SQL_NAMES[_range.name] = _KINDS[_range.name] = _range.name
    _DUCK_NAMES[_range.name] = _range.duck
    _ARROW_TYPES[_range.name] = _range.arrow
    _SQL_NAMES[_range.multi] = _KINDS[_range.multi] = _range.multi
    _DUCK_NAMES[_range.multi] = _range.multi_duck
    _ARROW_TYPES[_range.multi] = _range.multi_arrow
_SERIALS = {"serial": "int32", "serial4": "int32", "bigserial": "int64", "serial8": "int64",
            "smallserial": "int16", "serial2": "int16"}


def column_type(name: str, mods: list[Any] | None = None) -> ColumnType:
    """Build a ColumnType from a Postgres type name and its modifiers.

    ``mods`` are ints, or strings for TENSOR's dtype (``TENSOR(float16, 4, 64, 64)``).
    """
    name = name.lower()
    mods = list(mods or [])
    if name in _SERIALS:
        return ColumnType(_SERIALS[name], serial=True)
    kind = _KINDS.get(name)
    if kind is None:
        raise errors.UndefinedObject(f'type "{name}" does not exist')
    if kind == "varchar":
        return ColumnType("varchar", length=_int_mod(name, mods[0]) if mods else None)
    if kind == "numeric":
        p = _int_mod(name, mods[0]) if mods else None
        s = _int_mod(name, mods[1]) if len(mods) > 1 else (0 if p is not None else None)
        if p is not None and not 1 <= p <= 38:
            raise errors.InvalidParameterValue(f"NUMERIC precision {p} must be between 1 and 38")
        return ColumnType("numeric", precision=p, scale=s)
    if kind in ("bit", "varbit"):
        if len(mods) > 1:
            raise errors.InvalidParameterValue(f"type {name} takes one modifier, its length")
        length = _int_mod(name, mods[0]) if mods else (1 if kind == "bit" else None)
        if length is not None and not 1 <= length <= 83886080:
            raise errors.InvalidParameterValue(f"length for type {name} must be at least 1")
        return ColumnType(kind, length=length)
    if kind == "sparsevec":
        if len(mods) != 1:
            raise errors.InvalidParameterValue("SPARSEVEC needs its dimension, e.g. SPARSEVEC(30000)")

        dim = _int_mod(name, mods[0])
        check_sparse_dim(dim)
        return ColumnType(kind, dtype="float32", shape=(dim,))
    if kind in ("vector", "halfvec"):
        if len(mods) != 1:
            raise errors.InvalidParameterValue(f"{name.upper()} needs its dimension, e.g. {name.upper()}(768)")
        dim = _int_mod(name, mods[0])
        if not 1 <= dim <= 65536:
            raise errors.InvalidParameterValue(f"{name.upper()} dimension must be between 1 and 65536, not {dim}")
        return ColumnType(kind, dtype="float32" if kind == "vector" else "float16", shape=(dim,))
    if kind == "tensor":
        if not mods or not isinstance(mods[0], str):
            raise errors.InvalidParameterValue(
                "TENSOR needs an element type first, e.g. TENSOR(float16) or TENSOR(float16, 4, 64, 64)"
            )
        dtype = _DTYPE_ALIASES.get(mods[0].lower(), mods[0].lower())
        if TENSOR_DTYPES.get(dtype) is None:
            raise errors.InvalidParameterValue(
                f"TENSOR element type {mods[0]!r} is not supported; use one of "
                + ", ".join(k for k, v in TENSOR_DTYPES.items() if v is not None)
            )
        dims = tuple(_int_mod(name, m) for m in mods[1:])
        if any(d < 1 for d in dims):
            raise errors.InvalidParameterValue("TENSOR dimensions must be positive")
        return ColumnType("tensor", dtype=dtype, shape=dims or None)
    if mods and kind not in ("timestamp", "timestamptz", "time"):
        raise errors.InvalidParameterValue(f"type {name} takes no modifiers")
    return ColumnType(kind)


def vector_array_type(element: str, mods: list[Any]) -> ColumnType:
    """``vector[]`` / ``halfvec(3)[]`` / ``sparsevec[]``: a one-dimensional array column."""
    if len(mods) > 1:
        raise errors.InvalidParameterValue(f"type {element} takes one modifier, its dimension")
    dim = column_type(element, mods).row_shape[0] if mods else None  # checks the dimension
    return ColumnType(f"{element}_array", length=dim)


def array_type(element: ColumnType) -> ColumnType:
    """``int[]`` / ``varchar(3)[]`` / ``numeric(5,2)[]``: an array column of a scalar type
    (format/arrays.py); 0A000 for an element type reeldb keeps no arrays of."""
    kind = f"{element.kind}_array"
    if kind not in ARRAY_KINDS or element.serial or element.is_enum:
        raise errors.FeatureNotSupported(f"arrays of type {element.sql()} are not supported")
    return ColumnType(kind, length=element.length, precision=element.precision, scale=element.scale)


def _int_mod(name: str, m: Any) -> int:
    if isinstance(m, bool) or not isinstance(m, int):
        raise errors.InvalidParameterValue(f"invalid type modifier {m!r} for {name}")
    return m


# ---------------------------------------------------------------------------------------
# Checking values on the way in. Each function takes Python values (None for NULL) and
# returns the stored form, or raises a DataError naming the column and the bad value.


@dataclass
class MatrixColumn:
    """Values of a matrix column for one batch: dense rows plus a validity mask."""

    values: np.ndarray  # (n, *shape), the stored dtype
    valid: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.valid)


def parse_vector_text(text: str, column: str) -> list[float]:
    """pgvector's text form: ``[1,2,3]`` (also accepts ``{1,2,3}``)."""
    s = text.strip()
    if len(s) < 2 or s[0] not in "[{" or s[-1] not in "]}":
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type vector: "{_short(text)}" (column {column}); expected "[1,2,3]"'
        )
    body = s[1:-1].strip()
    if not body:
        return []
    try:
        return [float(x) for x in body.split(",")]
    except ValueError:
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type vector: "{_short(text)}" (column {column})'
        ) from None


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def check_matrix(ctype: ColumnType, column: str, values: list[Any]) -> MatrixColumn:
    """Vectors and fixed-shape tensors: exact shape, finite numbers, stored dtype."""
    shape = ctype.row_shape
    n = len(values)
    out = np.zeros((n, *shape), dtype=ctype.np_dtype)
    valid = np.ones(n, dtype=bool)
    is_vec = ctype.kind in VECTOR_KINDS
    for i, v in enumerate(values):
        if v is None:
            valid[i] = False
            continue
        if isinstance(v, str):
            if not is_vec:
                raise errors.InvalidTextRepresentation(
                    f"column {column} is {ctype.sql()}: a string is not a tensor"
                )
            if ctype.kind == "sparsevec":

                v = parse_sparse_text(v, f"column {column}")
            else:
                v = parse_vector_text(v, column)
        try:
            arr = np.asarray(v)
        except (ValueError, TypeError) as e:
            raise errors.InvalidTextRepresentation(f"column {column}: not a numeric array ({e})") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise errors.InvalidTextRepresentation(
                f"column {column} is {ctype.sql()}: value of type {arr.dtype} is not numeric"
            )
        if is_vec:
            if arr.ndim != 1:
                raise errors.DataError(f"column {column}: a vector must be one-dimensional, got shape {arr.shape}")
            if arr.shape[0] != shape[0]:
                raise errors.DataError(
                    f"expected {shape[0]} dimensions, not {arr.shape[0]} (column {column} is {ctype.sql()})"
                )
        elif arr.shape != shape:
            raise errors.DataError(
                f"column {column} is {ctype.sql()}: expected shape {shape}, got {tuple(arr.shape)}"
            )
        out[i] = to_stored(ctype, column, arr, values[i] if isinstance(values[i], str) else None)
    return MatrixColumn(out, valid)


def to_stored(ctype: ColumnType, column: str, arr: np.ndarray, text: str | None = None) -> np.ndarray:
    """Numbers -> the column's stored element type, refusing what the conversion would
    change rather than store it: a finite value too large for float32 / float16 (22003, as
    Postgres and pgvector: ``"1e+39" is out of range for type vector``), NaN or infinity in
    a vector (a tensor may hold infinity), an integer outside the dtype's range. ``text`` is
    the value as written, when it was text, to quote the element."""
    target = ctype.np_dtype
    if target == np.bool_:
        return arr.astype(target, copy=False)
    if np.issubdtype(target, np.integer):
        if np.issubdtype(arr.dtype, np.number):
            info = np.iinfo(target)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise errors.NumericValueOutOfRange(f"column {column}: value out of range for {ctype.dtype}")
        return arr.astype(target, copy=False)
    is_vec = ctype.kind in VECTOR_KINDS
    if arr.dtype == target and not is_vec:  # nothing to convert: a tensor may hold infinity
        return arr
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(target, copy=False)
    if out.size and not np.isfinite(out).all():
        source_finite = np.isfinite(arr) if np.issubdtype(arr.dtype, np.inexact) else np.ones(arr.shape, dtype=bool)
        if is_vec and not source_finite.all():
            raise errors.DataError(f"NaN or infinity not allowed in vector (column {column})")
        overflow = np.flatnonzero((source_finite & ~np.isfinite(out)).reshape(-1))
        if len(overflow):
            j = int(overflow[0])
            raise out_of_range(ctype, column, _element_text(arr.reshape(-1)[j], text, j))
    return out


def out_of_range(ctype: ColumnType, column: str, shown: str) -> errors.Error:
    """Postgres' (and pgvector's) overflow error for one element, naming the column."""
    name = ctype.kind if ctype.kind in VECTOR_KINDS else ctype.sql()
    return errors.NumericValueOutOfRange(f'"{_short(shown)}" is out of range for type {name} (column {column})')


def _element_text(x: Any, text: str | None, j: int) -> str:
    """Element ``j`` as the user wrote it (from the vector's text) or as a number."""
    if text is not None:
        items = text.strip()[1:-1].split(",")
        if j < len(items):
            return items[j].strip()
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def matrix_from_arrow(ctype: ColumnType, column: str, arr: pa.Array) -> MatrixColumn:
    """A matrix column from an Arrow array (INSERT ... SELECT, UPDATE, db.insert)."""
    arr = _combine(arr)
    n = len(arr)
    shape = ctype.row_shape
    size = int(np.prod(shape))
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        flat = arr
        depth_ok = True
        valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        while pa.types.is_fixed_size_list(flat.type) or pa.types.is_list(flat.type) or pa.types.is_large_list(flat.type):
            if pa.types.is_fixed_size_list(flat.type) and flat.null_count == 0:
                flat = flat.flatten()
            else:
                depth_ok = False
                break
        if depth_ok and pa.types.is_fixed_size_list(arr.type) and len(flat) == n * size and valid.all():
            values = flat.to_numpy(zero_copy_only=False)
            if values.dtype == object:
                raise errors.DataError(f"column {column}: NULL element inside a {ctype.sql()} value")
            out = to_stored(ctype, column, values).reshape((n, *shape))
            return MatrixColumn(np.ascontiguousarray(out), valid)
    return check_matrix(ctype, column, _to_pylist_np(arr))


def _to_pylist_np(arr: pa.Array) -> list[Any]:
    out: list[Any] = []
    for v in arr.to_pylist():
        out.append(None if v is None else np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
    return out


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr
