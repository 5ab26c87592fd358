"""PostgreSQL's built-in types that reeldb knows (and reeldb's IMAGE, VIDEO and TENSOR), as
registry entries: one per pg_type row, each array type after the base types."""

from __future__ import annotations

import struct
from dataclasses import replace
from typing import Any

import pyarrow as pa

from .. import errors
from ..format.arrays import ARRAY_KINDS, array_text, jsonb_text_of
from ..format.jsonb import canonical_text
from ..format.pgvector import bit_recv, bit_send, duck_bits, parse_bit_text
from ..format.types import ColumnType
from . import codecs as c
from . import datetimes
from . import oids as o
from .registry import REGISTRY, TypeInfo, WireText, register


def column_arrow(kind: str | None) -> pa.DataType | None:
    """The Arrow type of a column of ``kind`` with no modifiers (format/types.py), if it has one."""
    if kind is None:
        return None
    try:
        return ColumnType(kind).arrow()
    except (KeyError, AssertionError, TypeError):  # a matrix column (vector, tensor): no Parquet type
        return None


def _int(fmt: str) -> dict[str, Any]:
    return {"text_in": c.int_in, "send": c.struct_send(fmt, int), "recv": c.struct_recv(fmt)}


def _float(fmt: str) -> dict[str, Any]:
    return {"text_in": c.float_in, "send": c.struct_send(fmt, float), "recv": c.struct_recv(fmt)}


_TEXT = {"send": c.text_send, "recv": c.text_recv}


def _bits_out(arr: pa.Array) -> list[Any]:
    """DuckDB's BIT -> the text of the bits."""
    if not pa.types.is_binary(arr.type):
        return arr.to_pylist()
    return [None if v is None else duck_bits(v) for v in arr.to_pylist()]


def _bit_send(v: Any, text: WireText) -> bytes:
    return bit_send(str(v))


def _bit_recv(b: bytes, text: WireText) -> str:
    return bit_recv(b)


_BITS = {"send": _bit_send, "recv": _bit_recv, "py_out": _bits_out, "py_in": parse_bit_text, "pep249": "BINARY"}


def _regtype_send(v: Any, text: WireText) -> bytes:
    """A regtype's binary form is its OID; a result carries the type's name (format_type's)."""
    name = str(v)
    array = name.endswith("[]")
    base = name.removesuffix("[]")
    info = REGISTRY.by_name(base) or next(
        (t for t in REGISTRY.types if t.display_name == base and not t.element), None) or next(
        (REGISTRY.oids[o] for o in REGISTRY.user if REGISTRY.oids[o].name == base.strip('"')
         and not REGISTRY.oids[o].element), None)  # a branch's enum or composite type
    oid = None if info is None else info.array if array else info.oid
    if not oid:
        raise errors.FeatureNotSupported(f'binary output of regtype "{name}" is not supported: send it as text')
    return struct.pack("!I", oid)


def _regtype_recv(b: bytes, text: WireText) -> str:
    (oid,) = struct.unpack("!I", b)
    info = REGISTRY.by_oid(oid)
    if info is None:
        return str(oid)
    element = REGISTRY.by_oid(info.element) if info.element else None
    return element.display_name + "[]" if element is not None else info.display_name


def _timetz_out(arr: pa.Array) -> list[Any]:
    return [None if v is None else datetimes.timetz_value(v) for v in arr.to_pylist()]


_REGTYPE = {"duck_also": ("REGTYPE",), "pep249": "STRING", "send": _regtype_send, "recv": _regtype_recv}

# (OID, typname, typlen, typcategory, array OID, the rest of the entry), in pg_type's order
_BASE: list[tuple[int, str, int, str, int, dict[str, Any]]] = [
    (o.BOOL, "bool", 1, "B", o.BOOL_ARRAY,
     {"aliases": ("boolean",), "sql_name": "boolean", "kind": "bool", "duck": "BOOLEAN", "pep249": "NUMBER",
      "text_in": c.bool_in, "send": lambda v, text: b"\x01" if v else b"\x00", "recv": c.bool_recv}),
    (o.BYTEA, "bytea", -1, "U", o.BYTEA_ARRAY,
     {"kind": "bytea", "duck": "BLOB", "pep249": "BINARY", "text_in": c.bytea_in, "send": c.bytes_send,
      "recv": c.bytea_recv}),
    (o.CHAR, "char", 1, "Z", o.CHAR_ARRAY, {"pep249": "STRING", "send": c.char_send, "recv": c.text_recv}),
    (o.NAME, "name", 64, "S", o.NAME_ARRAY, {"pep249": "STRING"}),
    (o.INT8, "int8", 8, "N", o.INT8_ARRAY,
     {"aliases": ("bigint",), "sql_name": "bigint", "kind": "int64", "duck": "BIGINT", "pep249": "NUMBER",
      **_int("!q")}),
    (o.INT2, "int2", 2, "N", o.INT2_ARRAY,
     {"aliases": ("smallint",), "sql_name": "smallint", "kind": "int16", "duck": "SMALLINT",
      "duck_also": ("TINYINT", "UTINYINT"), "pep249": "NUMBER", **_int("!h")}),
    # the catalog's int2vector columns (pg_index.indkey, ...) are lists of unsigned 16-bit
    # integers in DuckDB, a type no user column has, so their text form can follow PostgreSQL's
    (o.INT2VECTOR, "int2vector", -1, "A", o.INT2VECTOR_ARRAY,
     {"duck_also": ("USMALLINT[]",), "text_out": lambda v: " ".join(str(x) for x in v)}),
    (o.INT4, "int4", 4, "N", o.INT4_ARRAY,
     {"aliases": ("integer", "int"), "sql_name": "integer", "kind": "int32", "duck": "INTEGER",
      "duck_also": ("USMALLINT",), "pep249": "NUMBER", **_int("!i")}),
    (o.REGPROC, "regproc", 4, "N", o.REGPROC_ARRAY, {}),
    (o.OIDVECTOR, "oidvector", -1, "A", o.OIDVECTOR_ARRAY, {}),
    (o.TEXT, "text", -1, "S", o.TEXT_ARRAY, {"kind": "text", "duck": "VARCHAR", "pep249": "STRING", **_TEXT}),
    (o.OID, "oid", 4, "N", o.OID_ARRAY, {"duck_also": ("UINTEGER",), "pep249": "NUMBER", **_int("!I")}),
    (o.JSON, "json", -1, "U", o.JSON_ARRAY,
     {"kind": "json", "duck_also": ("JSON",), "pep249": "STRING", "py_out": c.json_out, **_TEXT}),
    (o.FLOAT4, "float4", 4, "N", o.FLOAT4_ARRAY,
     {"aliases": ("real",), "sql_name": "real", "kind": "float32", "duck": "FLOAT", "pep249": "NUMBER",
      "text_out": c.float4_text, **_float("!f")}),
    (o.FLOAT8, "float8", 8, "N", o.FLOAT8_ARRAY,
     {"aliases": ("double precision", "float"), "sql_name": "double precision", "kind": "float64",
      "duck": "DOUBLE", "pep249": "NUMBER", **_float("!d")}),
    (o.UNKNOWN, "unknown", -2, "X", 0, {"recv": c.text_recv}),
    (o.BPCHAR, "bpchar", -1, "S", o.BPCHAR_ARRAY,
     {"aliases": ("character",), "sql_name": "character", "pep249": "STRING"}),
    (o.VARCHAR, "varchar", -1, "S", o.VARCHAR_ARRAY,
     {"aliases": ("character varying",), "sql_name": "character varying", "kind": "varchar", "pep249": "STRING",
      **_TEXT}),
    (o.DATE, "date", 4, "D", o.DATE_ARRAY,
     {"kind": "date", "duck": "DATE", "pep249": "DATETIME", "send": c.date_send,
      "recv": lambda b, text: datetimes.date_in(b)}),
    (o.TIME, "time", 8, "D", o.TIME_ARRAY,
     {"aliases": ("time without time zone",), "sql_name": "time without time zone", "kind": "time",
      "duck": "TIME", "pep249": "DATETIME", "send": c.time_send, "recv": lambda b, text: datetimes.time_in(b)}),
    (o.TIMETZ, "timetz", 12, "D", o.TIMETZ_ARRAY,
     {"aliases": ("time with time zone",), "sql_name": "time with time zone", "duck": "TIME WITH TIME ZONE",
      "pep249": "DATETIME", "recv": lambda b, text: datetimes.timetz_in(b),
      # results arrive as DuckDB's text of them (engine.py: its Arrow export drops the offset)
      "send": lambda v, text: datetimes.timetz_send(v), "text_out": datetimes.timetz_text, "py_out": _timetz_out}),
    (o.TIMESTAMP, "timestamp", 8, "D", o.TIMESTAMP_ARRAY,
     {"aliases": ("timestamp without time zone",), "sql_name": "timestamp without time zone", "kind": "timestamp",
      "duck": "TIMESTAMP", "duck_also": ("TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"), "pep249": "DATETIME",
      "send": c.timestamp_send, "recv": lambda b, text: datetimes.timestamp_in(b, False)}),
    (o.TIMESTAMPTZ, "timestamptz", 8, "D", o.TIMESTAMPTZ_ARRAY,
     {"aliases": ("timestamp with time zone",), "sql_name": "timestamp with time zone", "kind": "timestamptz",
      "duck": "TIMESTAMP WITH TIME ZONE", "pep249": "DATETIME", "send": c.timestamp_send,
      "recv": lambda b, text: datetimes.timestamp_in(b, True)}),
    (o.INTERVAL, "interval", 16, "T", o.INTERVAL_ARRAY,
     {"kind": "interval", "duck": "INTERVAL", "pep249": "DATETIME", "send": c.interval_send,
      "recv": c.interval_recv}),
    (o.NUMERIC, "numeric", -1, "N", o.NUMERIC_ARRAY,
     {"aliases": ("decimal", "dec"), "kind": "numeric", "duck_also": ("UBIGINT", "HUGEINT"), "pep249": "NUMBER",
      "text_in": c.numeric_in, "send": c.numeric_send, "recv": c.numeric_recv}),
    (o.REGCLASS, "regclass", 4, "N", o.REGCLASS_ARRAY, {}),
    (o.REGTYPE, "regtype", 4, "N", o.REGTYPE_ARRAY, _REGTYPE),
    (o.BIT, "bit", -1, "V", o.BIT_ARRAY, {"kind": "bit", "duck_also": ("BIT",), **_BITS}),
    (o.VARBIT, "varbit", -1, "V", o.VARBIT_ARRAY,
     {"aliases": ("bit varying",), "sql_name": "bit varying", "kind": "varbit", "duck_also": ("VARBIT",), **_BITS}),
    (o.UUID, "uuid", 16, "U", o.UUID_ARRAY,
     {"kind": "uuid", "duck": "UUID", "pep249": "STRING", "send": c.uuid_send, "recv": c.uuid_recv,
      "py_out": c.uuid_out}),
    (o.JSONB, "jsonb", -1, "U", o.JSONB_ARRAY,
     {"kind": "jsonb", "duck_also": ("JSONB",),  # marked by sql/result_types.py (DuckDB's type is JSON)
      "pep249": "STRING", "text_out": canonical_text, "send": c.jsonb_send, "recv": c.jsonb_recv,
      "py_out": c.json_out}),
]


# json[] and jsonb[] go out from their elements' JSON text as stored (the server sends json
# columns unparsed): parsed, a JSON array would read as a sub-array ({{a,100}})
def _jsonb_array_send(v: Any, text: WireText) -> bytes:
    """jsonb_send of each element: a version byte, then its jsonb text."""
    return c.array_send(v, o.JSONB, text, lambda x: b"\x01" + text.encode(jsonb_text_of(x)))


def _json_array_send(v: Any, text: WireText) -> bytes:
    return c.array_send(v, o.JSON, text, lambda x: text.encode(x))


# array types whose entry differs from array_info's
_ARRAYS: dict[int, dict[str, Any]] = {
    o.FLOAT4_ARRAY: {"text_out": lambda v: array_text(list(v), c.float4_text)},
    o.JSONB_ARRAY: {"duck_also": ("JSONB[]",), "text_out": lambda v: array_text(list(v), jsonb_text_of),
                    "send": _jsonb_array_send, "py_out": c.json_list_out},
    o.JSON_ARRAY: {"text_out": lambda v: array_text(list(v), str), "send": _json_array_send,
                   "py_out": c.json_list_out},
    o.UUID_ARRAY: {"py_out": c.uuid_list_out},
}


def array_info(element: TypeInfo, **changes: Any) -> TypeInfo:
    """The entry of ``element``'s array type (``_int4``): PostgreSQL's array text and binary
    forms over the element's codecs."""
    kind = f"{element.kind}_array" if element.kind and f"{element.kind}_array" in ARRAY_KINDS else None
    info = TypeInfo(name="_" + element.name, oid=element.array, kind=kind, element=element.oid, category="A",
                    namespace=element.namespace, arrow=column_arrow(kind), extension=element.extension,
                    text_in=c.array_text_in(element.oid), send=c.array_send_of(element.oid), recv=c.array_recv)
    return replace(info, **changes)


def _entry(oid: int, name: str, length: int, category: str, array: int, rest: dict[str, Any]) -> TypeInfo:
    return TypeInfo(name=name, oid=oid, length=length, category=category, array=array,
                    arrow=column_arrow(rest.get("kind")), **rest)


def register_builtin() -> None:
    """PostgreSQL's built-in types, then their array types."""
    bases = [register(_entry(*row)) for row in _BASE]
    for base in bases:
        if base.array:
            register(array_info(base, **_ARRAYS.get(base.array, {})))


def _media(oid: int, name: str, pep249: str | None) -> TypeInfo:
    """reeldb's IMAGE, VIDEO and TENSOR: their values travel as bytea (or arrays)."""
    return TypeInfo(name=name, oid=oid, kind=name, namespace=o.PUBLIC_NS, arrow=column_arrow(name), pep249=pep249)


def register_media() -> None:
    for oid, name, pep249 in ((o.IMAGE, "image", "BINARY"), (o.VIDEO, "video", "BINARY"), (o.TENSOR, "tensor", None)):
        register(_media(oid, name, pep249))

