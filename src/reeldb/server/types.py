"""Values between reeldb and the wire: Postgres type OIDs, text and binary output of
result columns, and Bind parameters decoded into the Python values the SQL layer binds.

Text output follows Postgres' own output functions (``t``/``f``, ``\\x`` hex bytea,
``+00`` offsets, pgvector's ``[1,2,3]``); binary output follows each type's send
function. Results are converted column by column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import struct
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors
from ..format import hstore
from ..format.arrays import array_text, jsonb_text, parse_array_literal
from ..format.blobs import is_blob_struct
from ..format.jsonb import canonical_text
from ..format.pgvector import (
    bit_recv,
    bit_send,
    float_text,
    sparse_recv,
    sparse_send,
    sparse_text,
    vector_text,
)
from ..format.types import ENUM_NAMES
from ..rows import to_columns
from ..sql.citext import TextParameter
from ..sql.pgcatalog import stable_oid
from ..sql.pgtypes import (
    ARRAY_OF,
    BIT,
    BOOL,
    BYTEA,
    CHAR,
    CHAR_ARRAY,
    CITEXT,
    CITEXT_ARRAY,
    DATE,
    ENUM_OIDS,
    FLOAT4,
    FLOAT4_ARRAY,
    FLOAT8,
    HALFVEC,
    HALFVEC_ARRAY,
    HSTORE,
    INT2,
    INT2VECTOR,
    INT4,
    INT8,
    INTERVAL,
    JSON,
    JSONB,
    JSONB_ARRAY,
    NUMERIC,
    NUMERIC_ARRAY,
    OID,
    SPARSEVEC,
    SPARSEVEC_ARRAY,
    TEXT,
    TEXT_ARRAY,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    TIMETZ,
    UNKNOWN,
    UUID,
    VARBIT,
    VARCHAR,
    VECTOR,
    VECTOR_ARRAY,
)
from ..storage import ObjectStore
from . import datetimes
from .protocol import FieldSpec, client_codec, decode_text, encode_text

TYPLEN = {BOOL: 1, CHAR: 1, INT2: 2, INT4: 4, OID: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8, TIMESTAMP: 8,
          TIMESTAMPTZ: 8, TIMETZ: 12, INTERVAL: 16, UUID: 16}

_DUCK = {"BOOLEAN": BOOL, "TINYINT": INT2, "SMALLINT": INT2, "INTEGER": INT4, "BIGINT": INT8,
         "UTINYINT": INT2, "USMALLINT": INT4, "UINTEGER": OID, "UBIGINT": NUMERIC, "HUGEINT": NUMERIC,
         "FLOAT": FLOAT4, "DOUBLE": FLOAT8, "VARCHAR": TEXT, "BLOB": BYTEA, "DATE": DATE, "TIME": TIME,
         "TIMESTAMP": TIMESTAMP, "TIMESTAMP_NS": TIMESTAMP, "TIMESTAMP_MS": TIMESTAMP, "TIMESTAMP_S": TIMESTAMP,
         "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ, "INTERVAL": INTERVAL, "UUID": UUID, "JSON": JSON,
         "BIT": BIT, "VARBIT": VARBIT, "MAP(VARCHAR, VARCHAR)": HSTORE,  # only hstore values are such maps
         "CITEXT": CITEXT,  # marked by sql/result_types.py (DuckDB's type is VARCHAR)
         "JSONB": JSONB}  # marked by sql/result_types.py (DuckDB's type is JSON; unmarked is json, its text kept)
# result columns sql/result_types.py marked with their Postgres type (DuckDB's is FLOAT[n])
_MARKED_VECTORS = {"HALFVEC": HALFVEC, "SPARSEVEC": SPARSEVEC}
_MARKED_ARRAYS = {"JSONB[]": JSONB_ARRAY, "VECTOR[]": VECTOR_ARRAY, "HALFVEC[]": HALFVEC_ARRAY, "SPARSEVEC[]": SPARSEVEC_ARRAY,
                  "CITEXT[]": CITEXT_ARRAY}
_VECTOR_ARRAY_ELEMENT = {VECTOR_ARRAY: VECTOR, HALFVEC_ARRAY: HALFVEC, SPARSEVEC_ARRAY: SPARSEVEC}
_ARRAY_OF = {k: v for k, v in ARRAY_OF.items() if k not in (VECTOR, HALFVEC)}  # element -> array type
_ELEMENT_OF = {v: k for k, v in _ARRAY_OF.items()}

_PG_EPOCH_TZ = datetimes.PG_EPOCH.replace(tzinfo=dt.timezone.utc)


def field_specs(table: pa.Table, description: list) -> list[FieldSpec]:
    """The Postgres type of each result column (text format; the caller sets formats)."""
    out = []
    for (name, duck, *_), arrow_field in zip(description, table.schema, strict=True):
        oid, typmod = type_of(str(duck), arrow_field.type)
        out.append(FieldSpec(name, oid, TYPLEN.get(oid, -1), typmod))
    return out


def type_of(duck: str, arrow_type: pa.DataType) -> tuple[int, int]:
    """(OID, typmod) of a DuckDB column type; text for anything without a Postgres peer."""
    if is_blob_struct(arrow_type):
        return BYTEA, -1
    d = duck.upper()
    if d == "TIME WITH TIME ZONE":  # DuckDB's Arrow export keeps the clock time, drops the offset
        raise errors.FeatureNotSupported("results of type time with time zone are not supported: "
                                         "cast the column to text")
    if d.startswith("MAP(VARCHAR, VARCHAR)["):
        raise errors.FeatureNotSupported("results of type hstore[] are not supported: unnest the array, or cast "
                                         "each element to text")
    if d.startswith("ENUM(") and d in ENUM_NAMES:  # a column of an enum type (CREATE TYPE ... AS ENUM)
        oid = stable_oid("type", ENUM_NAMES[d])
        ENUM_OIDS.add(oid)
        return oid, -1
    if d.startswith("ENUM("):  # the catalog's one-byte "char" columns (user tables have no other enums)
        return (CHAR_ARRAY if d.endswith(")[]") else CHAR), -1
    if d in _DUCK:
        return _DUCK[d], -1
    if d in _MARKED_ARRAYS:
        return _MARKED_ARRAYS[d], -1
    if d in _MARKED_VECTORS:
        return _MARKED_VECTORS[d], arrow_type.list_size if pa.types.is_fixed_size_list(arrow_type) else -1
    if d.startswith("DECIMAL"):  # numeric(p,s), or an array of it (numeric(5,2)[]: its element's typmod)
        p, s = (int(x) for x in d[8:d.index(")")].split(","))
        return NUMERIC if d.endswith(")") else NUMERIC_ARRAY, ((p << 16) | s) + 4
    if d.startswith("VARCHAR") and not d.endswith("]"):
        return VARCHAR, -1
    if d in _CATALOG_VECTORS:
        return _CATALOG_VECTORS[d], -1
    if d.endswith("]"):
        base = d[: d.index("[")]
        dims = d.count("[")
        if base == "FLOAT" and dims == 1 and pa.types.is_fixed_size_list(arrow_type):
            return VECTOR, arrow_type.list_size
        return _ARRAY_OF.get(_DUCK.get(base, TEXT), TEXT_ARRAY), -1
    return TEXT, -1


# The catalog's int2vector columns (pg_index.indkey, ...) are lists of unsigned 16-bit
# integers in DuckDB, a type no user column has, so their text form can follow Postgres.
_CATALOG_VECTORS = {"USMALLINT[]": INT2VECTOR}


# ----------------------------------------------------------------------------- output


def encode_columns(table: pa.Table, description: list, fields: list[FieldSpec],
                   store: ObjectStore) -> list[list[bytes | None]]:
    """Every cell of a result as wire bytes (None for NULL), column by column. Dates,
    times and timestamps are encoded from their integers: Python's years end at 9999
    and have no infinity."""
    temporal = {i: _temporal_encoder(t, f) for i, (t, f) in enumerate(zip(table.schema.types, fields, strict=True))}
    temporal = {i: enc for i, enc in temporal.items() if enc is not None}
    json_text = {i for i, f in enumerate(fields) if f.type_oid in (JSON, JSONB)}  # sent from the text, not parsed
    rest = [i for i in range(table.num_columns) if i not in temporal and i not in json_text]
    converted = iter(to_columns(table.select(rest), [description[i] for i in rest], store) if rest else [])
    out: list[list[bytes | None]] = []
    for i, f in enumerate(fields):
        if i in temporal:
            column = table.column(i)
            array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            enc = temporal[i]
            out.append([None if v is None else enc(v) for v in _raw(array).to_pylist()])
        elif i in json_text:
            column = table.column(i)
            enc = encoder(f.type_oid, f.format)
            out.append([None if v is None else enc(v) for v in column.to_pylist()])
        else:
            enc = encoder(f.type_oid, f.format)
            out.append([None if v is None else enc(v) for v in next(converted)])
    return out


def _leaf_type(t: pa.DataType) -> pa.DataType:
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return t


def _temporal_encoder(t: pa.DataType, f: FieldSpec) -> Callable[[Any], bytes] | None:
    """The encoder of a date, time or timestamp column, or of an array of them, fed the
    raw integers (``_raw``); None for other columns."""
    leaf = datetimes.column_encoder(_leaf_type(t), bool(f.format))
    if leaf is None or t == _leaf_type(t):
        return leaf
    if f.format:
        elem = _ELEMENT_OF.get(f.type_oid, 0)
        return lambda v: _array_send(v, elem, leaf)
    codec = client_codec()
    return lambda v: encode_text(_array_text(v, lambda x: leaf(x).decode()), codec)


def _raw(array: pa.Array) -> pa.Array:
    """A date, time or timestamp array (or lists of them) as the integers under it."""
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        return type(array).from_arrays(array.offsets, _raw(array.values), mask=array.is_null())
    return array.view(pa.int32() if array.type.bit_width == 32 else pa.int64())


def encoder(oid: int, fmt: int) -> Callable[[Any], bytes]:
    """The wire bytes of one value of type ``oid`` in format ``fmt``; text in the client
    encoding in force when it is made."""
    codec = client_codec()
    if fmt == 0:
        if oid == INT2VECTOR:  # "1 2", not "{1,2}"
            return lambda v: " ".join(str(x) for x in v).encode()
        if oid == FLOAT4:  # float4's shortest digits, though the value arrives as a Python float
            return lambda v: float_text(float(v), True).encode()
        if oid == SPARSEVEC:
            return lambda v: sparse_text(v).encode()
        if oid == HSTORE:  # "a"=>"1", "b"=>NULL
            return lambda v: encode_text(hstore.text(_pairs(v)), codec)
        if oid in _VECTOR_ARRAY_ELEMENT:
            element_text = sparse_text if oid == SPARSEVEC_ARRAY else vector_text
            return lambda v: _array_text([None if x is None else _Quoted(element_text(x)) for x in v]).encode()
        if oid == JSONB:  # PostgreSQL's jsonb text: {"a": 1, "b": [1, 2]}
            return lambda v: encode_text(canonical_text(v), codec)
        if oid == JSONB_ARRAY:  # each element's jsonb text, made first: a JSON array is no sub-array
            return lambda v: encode_text(_array_text([None if x is None else _json_text(x) for x in v], str), codec)
        if oid in _ARRAY_ELEMENT_TEXT:  # real[] (float4's digits)
            element_out = _ARRAY_ELEMENT_TEXT[oid]
            return lambda v: encode_text(_array_text(list(v), element_out), codec)
        if codec[1] == "utf-8":
            return lambda v: text_out(v).encode("utf-8")
        return lambda v: encode_text(text_out(v), codec)
    if oid in _TEXT_SEND and codec[1] != "utf-8":  # textsend converts to the client encoding too
        return lambda v: (b"\x01" + encode_text(canonical_text(v), codec)) if oid == JSONB \
            else encode_text(text_out(v), codec)
    fn = _BINARY_OUT.get(oid)
    if fn is None:
        if oid in ENUM_OIDS:  # an enum's binary form is its label's text
            return lambda v: text_out(v).encode("utf-8")
        if oid == JSONB_ARRAY:  # jsonb_send of each element: a version byte, then its JSON text
            return lambda v: _array_send(v, JSONB, lambda x: b"\x01" + _json_text(x).encode("utf-8"))
        if oid in _ELEMENT_OF:
            elem = _ELEMENT_OF[oid]
            return lambda v: _array_send(v, elem)
        raise errors.FeatureNotSupported(f"binary output of type OID {oid} is not supported: ask for text")
    return fn


def text_out(v: Any) -> str:
    """A Python value in Postgres' text output format."""
    if isinstance(v, bool | np.bool_):
        return "t" if v else "f"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return float_text(float(v), isinstance(v, np.float32 | np.float16))
    if isinstance(v, str):
        return v
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, dt.datetime):
        text = v.isoformat(sep=" ")
        if v.tzinfo is not None:
            off = v.utcoffset() or dt.timedelta(0)
            sign = "-" if off < dt.timedelta(0) else "+"
            minutes = abs(int(off.total_seconds())) // 60
            text = v.replace(tzinfo=None).isoformat(sep=" ") + f"{sign}{minutes // 60:02d}"
            if minutes % 60:
                text += f":{minutes % 60:02d}"
        return text
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return _interval_text(v)
    if isinstance(v, pa.MonthDayNano):
        return _month_day_nano_text(v)
    if isinstance(v, decimal.Decimal | uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, np.ndarray):
        if v.ndim == 1 and v.dtype.kind == "f":
            if v.dtype in (np.float32, np.float16):
                return vector_text(v)
            return "[" + ",".join(float_text(float(x), False) for x in v) + "]"
        return _array_text(v.tolist())
    if isinstance(v, list | tuple):
        return _array_text(list(v))
    if hasattr(v, "read") and hasattr(v, "meta"):  # a lazy Blob
        return "\\x" + v.read().hex()
    return str(v)


class _Quoted(str):
    """An element's text, made already (a vector's, inside vector[])."""


def _array_text(items: list[Any], out: Callable[[Any], str] | None = None) -> str:
    """Postgres' array_out, each element's text by ``out`` (default: ``text_out``)."""
    return array_text(items, text_out if out is None else out)


def _json_text(v: Any) -> str:
    """A JSON value (parsed by the result's converter) as jsonb prints it (its keys in
    jsonb's order; a float parsed from 2.50 prints 2.5)."""
    return jsonb_text(v)


_ARRAY_ELEMENT_TEXT: dict[int, Callable[[Any], str]] = {
    FLOAT4_ARRAY: lambda x: float_text(float(x), True)}


def _interval_text(v: dt.timedelta) -> str:
    days, rest = v.days, v.seconds
    text = f"{days} day{'s' if abs(days) != 1 else ''} " if days else ""
    h, m, s = rest // 3600, rest % 3600 // 60, rest % 60
    clock = f"{h:02d}:{m:02d}:{s:02d}" + (f".{v.microseconds:06d}".rstrip("0") if v.microseconds else "")
    return (text + clock) if rest or v.microseconds or not days else text.strip()


def _month_day_nano_text(v: Any) -> str:
    """Postgres' interval output (IntervalStyle postgres, ``EncodeInterval``):
    ``1 year 2 mons -3 days +04:05:06.5``; a field after a negative one shows its sign."""
    parts = []
    is_before = False
    years, months = int(v.months / 12), v.months - 12 * int(v.months / 12)  # C division: toward zero
    for n, unit in ((years, "year"), (months, "mon"), (v.days, "day")):
        if n:
            parts.append(f"{'+' if is_before and n > 0 else ''}{n} {unit}{'s' if n != 1 else ''}")
            is_before = n < 0
    micros = -(-v.nanoseconds // 1000) if v.nanoseconds < 0 else v.nanoseconds // 1000  # exact, toward zero
    if micros or not parts:
        sec, frac = divmod(abs(micros), 1_000_000)
        clock = f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}" + (f".{frac:06d}".rstrip("0") if frac else "")
        parts.append(("-" if micros < 0 else "+" if is_before else "") + clock)
    return " ".join(parts)


def _interval_send(v: Any) -> bytes:
    if isinstance(v, dt.timedelta):
        return struct.pack("!qii", v.seconds * 1_000_000 + v.microseconds, v.days, 0)
    return struct.pack("!qii", v.nanoseconds // 1000, v.days, v.months)


def _bytes(v: Any) -> bytes:
    if hasattr(v, "read") and hasattr(v, "meta"):
        return v.read()
    return bytes(v)


def _numeric_send(v: Any) -> bytes:
    """Postgres' numeric_send: ndigits, weight (of the first base-10000 digit), sign,
    dscale (decimal digits after the point), then the base-10000 digits, most
    significant first, without leading or trailing zero digits."""
    d = decimal.Decimal(v)
    if d.is_nan():
        return struct.pack("!hhHh", 0, 0, _NUMERIC_NAN, 0)
    if d.is_infinite():
        return struct.pack("!hhHh", 0, 0, _NUMERIC_NINF if d < 0 else _NUMERIC_PINF, 0)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    dscale = max(0, -exp)
    frac_groups = -(-dscale // 4)  # base-10000 digits after the point
    # the value as an integer count of 10000**-frac_groups
    scaled = int("".join(map(str, digits)) or "0") * 10 ** (exp + 4 * frac_groups)
    groups: list[int] = []
    while scaled:
        scaled, g = divmod(scaled, 10000)
        groups.append(g)
    groups.reverse()
    weight = len(groups) - 1 - frac_groups
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack("!hhHh", 0, 0, 0, dscale)
    return struct.pack(f"!hhHh{len(groups)}h", len(groups), weight, _NUMERIC_NEG if sign else 0, dscale, *groups)


_NUMERIC_NEG, _NUMERIC_NAN, _NUMERIC_PINF, _NUMERIC_NINF = 0x4000, 0xC000, 0xD000, 0xF000


def _timestamp_send(v: dt.datetime) -> bytes:
    delta = v - _PG_EPOCH_TZ if v.tzinfo is not None else v - datetimes.PG_EPOCH
    return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _vector_send(v: Any) -> bytes:
    a = np.asarray(v, dtype=">f4").reshape(-1)
    return struct.pack("!hh", len(a), 0) + a.tobytes()


def _halfvec_send(v: Any) -> bytes:
    a = np.asarray(v, dtype=np.float32).reshape(-1).astype(">f2")  # exact: stored as float16
    return struct.pack("!hh", len(a), 0) + a.tobytes()


def _vector_array_send(v: Any, element: int) -> bytes:
    """vector[]: Postgres' binary array of pgvector's binary vectors."""
    return _array_send([None if x is None else np.asarray(x, dtype=np.float32) for x in v], element)


_TEXT_SEND = (TEXT, VARCHAR, CHAR, JSON, JSONB, CITEXT)
_ELEMENT_SEND: dict[int, tuple[str, int]] = {INT2: ("!h", 2), INT4: ("!i", 4), INT8: ("!q", 8),
                                             FLOAT4: ("!f", 4), FLOAT8: ("!d", 8), BOOL: ("!?", 1),
                                             OID: ("!I", 4)}
_TEXT_ELEMENTS = (TEXT, VARCHAR, CHAR)


def _array_send(v: Any, elem: int, element_send: Callable[[Any], bytes] | None = None) -> bytes:
    """Postgres' binary array: dimensions, a NULL flag, then each element's length and bytes."""
    items = v.tolist() if isinstance(v, np.ndarray) else list(v)
    dims = [len(items)]
    while items and all(isinstance(x, list) for x in items) and len({len(x) for x in items}) == 1:
        dims.append(len(items[0]))
        items = [y for x in items for y in x]
    if element_send is not None:
        one = element_send
    elif elem in _TEXT_ELEMENTS:
        def one(x: Any) -> bytes:
            return encode_text(text_out(x))
    elif elem in _ELEMENT_SEND:
        fmt = _ELEMENT_SEND[elem][0]

        def one(x: Any) -> bytes:
            return struct.pack(fmt, x)
    elif elem in _BINARY_OUT:
        one = _BINARY_OUT[elem]
    else:
        raise errors.FeatureNotSupported(f"binary output of arrays of type OID {elem} is not supported: ask for text")
    if dims == [0]:
        return struct.pack("!iii", 0, 0, elem)
    has_null = any(x is None for x in items)
    head = struct.pack("!iii", len(dims), int(has_null), elem) + b"".join(struct.pack("!ii", d, 1) for d in dims)
    parts = []
    for x in items:
        if x is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            b = one(x)
            parts.append(struct.pack("!i", len(b)) + b)
    return head + b"".join(parts)


_BINARY_OUT: dict[int, Callable[[Any], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    INT2: lambda v: struct.pack("!h", int(v)),
    INT4: lambda v: struct.pack("!i", int(v)),
    INT8: lambda v: struct.pack("!q", int(v)),
    OID: lambda v: struct.pack("!I", int(v)),
    INTERVAL: _interval_send,
    CHAR: lambda v: str(v).encode("utf-8")[:1],
    FLOAT4: lambda v: struct.pack("!f", float(v)),
    FLOAT8: lambda v: struct.pack("!d", float(v)),
    TEXT: lambda v: text_out(v).encode("utf-8"),
    VARCHAR: lambda v: text_out(v).encode("utf-8"),
    BYTEA: _bytes,
    JSON: lambda v: text_out(v).encode("utf-8"),
    JSONB: lambda v: b"\x01" + canonical_text(v).encode("utf-8"),  # version 1, then jsonb's text
    DATE: lambda v: struct.pack("!i", (v - datetimes.PG_EPOCH_DATE).days),
    TIMESTAMP: _timestamp_send,
    TIMESTAMPTZ: _timestamp_send,
    TIME: lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond),
    UUID: lambda v: uuid.UUID(str(v)).bytes,
    NUMERIC: _numeric_send,
    VECTOR: _vector_send,
    HALFVEC: _halfvec_send,
    VECTOR_ARRAY: lambda v: _vector_array_send(v, VECTOR),
    HALFVEC_ARRAY: lambda v: _vector_array_send(v, HALFVEC),
    SPARSEVEC_ARRAY: lambda v: _vector_array_send(v, SPARSEVEC),
    SPARSEVEC: sparse_send,
    BIT: lambda v: bit_send(str(v)),
    VARBIT: lambda v: bit_send(str(v)),
    CITEXT: lambda v: text_out(v).encode("utf-8"),  # citext's send is text's
    HSTORE: lambda v: hstore.send(_pairs(v)),
}


def _pairs(v: Any) -> Any:
    """An hstore value as DuckDB's Arrow map hands it over (pairs, or a dict)."""
    return v.items() if isinstance(v, dict) else [tuple(p) for p in v]


# ----------------------------------------------------------------------------- input


def decode_param(data: bytes | None, oid: int, fmt: int) -> Any:
    """A Bind parameter as the Python value the SQL layer binds. Text of a type the SQL
    layer coerces from strings stays a string."""
    if data is None:
        return None
    try:
        value = _text_in(decode_text(data), oid) if fmt == 0 else _binary_in(data, oid)
        if oid in (TEXT, VARCHAR) and isinstance(value, str):  # typed text, not unknown (sql/citext.py)
            return TextParameter(value)
        return value
    except UnicodeDecodeError:  # a text field inside a binary value (an array's elements)
        raise errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8"') from None
    except (struct.error, ValueError, decimal.InvalidOperation) as e:
        kind = errors.InvalidBinaryRepresentation if fmt else errors.InvalidTextRepresentation
        raise kind(f"invalid value for parameter of type OID {oid}: {e}") from None


def _text_in(s: str, oid: int) -> Any:
    if oid in (INT2, INT4, INT8, OID):
        return int(s)
    if oid in _ELEMENT_OF and oid != VECTOR:
        return _array_text_in(s, _ELEMENT_OF[oid])
    if oid in (FLOAT4, FLOAT8):
        return float(s)
    if oid == NUMERIC:
        return decimal.Decimal(s)
    if oid == BOOL:
        low = s.strip().lower()
        if low in ("t", "true", "y", "yes", "on", "1"):
            return True
        if low in ("f", "false", "n", "no", "off", "0"):
            return False
        raise ValueError(f"invalid input syntax for type boolean: {s!r}")
    if oid == BYTEA:
        if s.startswith("\\x"):
            return bytes.fromhex(s[2:])
        return s.encode("latin-1")
    return s


def _binary_in(b: bytes, oid: int) -> Any:
    if oid == INT2:
        return struct.unpack("!h", b)[0]
    if oid == INT4:
        return struct.unpack("!i", b)[0]
    if oid == INT8:
        return struct.unpack("!q", b)[0]
    if oid == OID:
        return struct.unpack("!I", b)[0]
    if oid in _ELEMENT_OF or oid in _VECTOR_ARRAY_ELEMENT:
        return _array_recv(b)
    if oid == FLOAT4:
        return struct.unpack("!f", b)[0]
    if oid == FLOAT8:
        return struct.unpack("!d", b)[0]
    if oid == BOOL:
        if len(b) != 1:
            raise ValueError("a boolean is one byte")
        return b != b"\x00"
    if oid == BYTEA:
        return bytes(b)
    if oid in (TEXT, VARCHAR, CHAR, UNKNOWN, JSON, 0, CITEXT) or oid in ENUM_OIDS:
        return decode_text(b)
    if oid == HSTORE:  # hstore_recv: the text form for the SQL layer to read as an hstore
        return hstore.text(hstore.recv(b))
    if oid == JSONB:
        if not b or b[0] != 1:
            raise ValueError("unsupported jsonb version")
        return decode_text(b[1:])
    if oid == DATE:
        return datetimes.date_in(b)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return datetimes.timestamp_in(b, oid == TIMESTAMPTZ)
    if oid == TIME:
        return datetimes.time_in(b)
    if oid == TIMETZ:
        return datetimes.timetz_in(b)
    if oid == INTERVAL:
        # a timedelta where it keeps the three fields apart, else text DuckDB reads exactly
        # (a timedelta has no months, and folds "1 day -00:00:01" into 23:59:59)
        micros, days, months = struct.unpack("!qii", b)
        if not months and 0 <= micros < 86_400_000_000:
            return dt.timedelta(days=days, microseconds=micros)
        return f"{months} months {days} days {micros} microseconds"
    if oid == UUID:
        return uuid.UUID(bytes=bytes(b))
    if oid == NUMERIC:
        return _numeric_recv(b)
    if oid in (BIT, VARBIT):
        return bit_recv(b)
    if oid == SPARSEVEC:
        return sparse_recv(b)
    if oid in (VECTOR, HALFVEC):  # pgvector's send format: dim, unused, then big-endian float4 / float2
        dim, _ = struct.unpack_from("!hh", b)
        size = 4 if oid == VECTOR else 2
        if dim < 0 or len(b) != 4 + size * dim:
            raise ValueError(f"{'vector' if oid == VECTOR else 'halfvec'} length does not match its dimension")
        return np.frombuffer(b, dtype=">f4" if oid == VECTOR else ">f2", offset=4).astype(
            np.float32 if oid == VECTOR else np.float16)
    raise errors.FeatureNotSupported(f"binary parameters of type OID {oid} are not supported: send text")


def _array_recv(b: bytes) -> list[Any]:
    """A binary array parameter (one dimension, as clients send lists)."""
    ndim, _, elem = struct.unpack_from("!iii", b)
    if ndim == 0:
        return []
    if ndim != 1:
        raise errors.FeatureNotSupported("array parameters of more than one dimension are not supported")
    n, lower = struct.unpack_from("!ii", b, 12)
    if lower != 1:  # reeldb's lists count from 1: another lower bound would move every subscript
        raise errors.FeatureNotSupported(f"array parameters whose subscripts start at {lower} are not supported")
    if n < 0:
        raise ValueError("negative array dimension")
    out: list[Any] = []
    pos = 20
    for _ in range(n):
        (size,) = struct.unpack_from("!i", b, pos)
        pos += 4
        if size < 0:
            out.append(None)
            continue
        out.append(_binary_in(b[pos:pos + size], elem))
        pos += size
    return out


def _array_text_in(s: str, elem: int) -> list[Any]:
    """``{1,2,NULL}`` / ``{"a b",c}`` -> a list of the element type's values. Lists of lists
    reach DuckDB as JSON text, which it reads back right only for numbers and booleans: a
    text array of more than one dimension would come back as one JSON string, so it is
    refused."""
    items = parse_array_literal(s)
    if elem not in _NESTED_OK and any(isinstance(x, list) for x in items):
        raise errors.FeatureNotSupported("array parameters of more than one dimension are not supported "
                                         f"for elements of type OID {elem}")

    def convert(x: Any) -> Any:
        if isinstance(x, list):
            return [convert(y) for y in x]
        return None if x is None else _text_in(x, elem)

    return convert(items)


_NESTED_OK = (INT2, INT4, INT8, FLOAT4, FLOAT8, BOOL, OID)


def _numeric_recv(b: bytes) -> decimal.Decimal:
    n, weight, sign, dscale = struct.unpack_from("!hhHh", b)
    if sign == _NUMERIC_NAN:
        return decimal.Decimal("NaN")
    if sign in (_NUMERIC_PINF, _NUMERIC_NINF):
        return decimal.Decimal("-Infinity" if sign == _NUMERIC_NINF else "Infinity")
    if sign not in (0, _NUMERIC_NEG) or n < 0 or dscale < 0 or len(b) != 8 + 2 * n:
        raise ValueError("invalid numeric header")
    groups = struct.unpack_from(f"!{n}h", b, 8)
    if any(not 0 <= g < 10000 for g in groups):
        raise ValueError("invalid digit in external numeric value")
    # digits as one integer, then placed: exact at any size, no context precision involved
    as_int = int("".join(f"{g:04d}" for g in groups) or "0")
    minus = "-" if sign == _NUMERIC_NEG else ""
    value = decimal.Decimal(f"{minus}{as_int}E{4 * (weight - n + 1)}")  # exact: no context rounding
    with decimal.localcontext() as ctx:
        ctx.prec = max(28, len(str(as_int)) + abs(4 * (weight - n + 1)) + dscale + 4)
        return value.quantize(decimal.Decimal(1).scaleb(-dscale))
