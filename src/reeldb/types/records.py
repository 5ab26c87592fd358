"""PostgreSQL's records: anonymous ``row(...)`` values (type ``record``, OID 2249) and values
of composite types (``CREATE TYPE name AS (...)``), in ``record_out``'s text form
(``(1,"a b",)``) and ``record_send``'s binary form (a field count, then each field's OID,
length and bytes), and ``record_in``'s text read back into fields.

DuckDB holds such a value as a STRUCT (a composite type's fields by name) or a TUPLE (an
anonymous row). A result column's codec is made from its DuckDB type, field by field, so a
field is sent as its own type (an ``int4`` field as four bytes). A composite type's STRUCT
ends with a marker field (``marker``: a NULL boolean named by the type's OIDs), so two
composite types with the same fields stay two types on the wire; the marker is never sent.
"""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from .. import errors
from ..format.blobs import is_blob_struct
from . import codecs as c
from .oids import TEXT, UNKNOWN, VARCHAR
from .registry import BY_OID, REGISTRY, UTF8, TypeInfo, WireText, register

RECORD, RECORD_ARRAY = 2249, 2287
_SPACE = " \t\n\r\x0b\x0c"  # C's isspace, which record_out and record_in use
_QUOTE_IF = frozenset('"\\(),' + _SPACE)

MAX_DEPTH = 32  # composite types within composite types, at most
MAX_TEXT = 256 << 20  # characters of one record's text form
_RECV = threading.local()  # how deep record_recv is in this thread
MARKER_PREFIX = "$reeldb.type:"
# a field of an anonymous row that PostgreSQL types unknown (an untyped literal: row('a', NULL))
UNKNOWN_FIELD_PREFIX = "$reeldb.unknown:"
# a record cast to text (or varchar) in a select list: a STRUCT of one such field, the record,
# sent as its text typed as the cast says
RECORD_TEXT_FIELDS = {"text": "$reeldb.record_text", "varchar": "$reeldb.record_varchar"}  # a composite type's STRUCT's last field: "$reeldb.type:<oid>:<array oid>"

TypeOf = Callable[[str, pa.DataType], tuple[int, int]]  # (DuckDB type, Arrow type) -> (OID, typmod)


# ----------------------------------------------------------------------------- text forms


def record_text(fields: list[str | None]) -> str:
    """record_out: the fields' texts in parentheses, NULL as nothing, a field quoted when it
    is empty or holds a quote, a backslash, a parenthesis, a comma or white space. Quotes
    double at each level of nesting: a text past MAX_TEXT is refused (54000), not built."""
    if sum(len(f) for f in fields if f is not None) > MAX_TEXT // 2:
        raise errors.ProgramLimitExceeded(f"a record's text would be longer than {MAX_TEXT} characters")
    out = []
    for f in fields:
        if f is None:
            out.append("")
        elif f == "" or any(ch in _QUOTE_IF for ch in f):
            out.append('"' + f.replace("\\", "\\\\").replace('"', '""') + '"')
        else:
            out.append(f)
    return "(" + ",".join(out) + ")"


def parse_record(text: str) -> list[str | None]:
    """record_in's reading of a record literal: each field's text, None for NULL (an empty
    unquoted field). 22P02 for a literal record_in refuses."""
    def malformed(detail: str) -> errors.InvalidTextRepresentation:
        return errors.InvalidTextRepresentation(f'malformed record literal: "{text}" ({detail})')

    i, n = 0, len(text)
    while i < n and text[i] in _SPACE:
        i += 1
    if i >= n or text[i] != "(":
        raise malformed("missing left parenthesis")
    i += 1
    fields: list[str | None] = []
    while True:
        if i < n and text[i] in ",)":
            fields.append(None)
        else:
            buf: list[str] = []
            quoted = False
            while True:
                if i >= n:
                    raise malformed("unexpected end of input")
                ch = text[i]
                if not quoted and ch in ",)":
                    break
                i += 1
                if ch == "\\":
                    if i >= n:
                        raise malformed("unexpected end of input")
                    buf.append(text[i])
                    i += 1
                elif ch == '"':
                    if quoted and i < n and text[i] == '"':
                        buf.append('"')
                        i += 1
                    else:
                        quoted = not quoted
                else:
                    buf.append(ch)
            fields.append("".join(buf))
        ch = text[i]
        i += 1
        if ch == ")":
            break
    if text[i:].strip(_SPACE):
        raise malformed("junk after right parenthesis")
    return fields


# ----------------------------------------------------------------------------- binary forms


def record_send(values: list[Any], oids: list[int], sends: list[Callable[[Any], bytes]]) -> bytes:
    """record_send: the field count, then per field its OID, its length (-1: NULL), its bytes."""
    parts = [struct.pack("!i", len(values))]
    for v, oid, send in zip(values, oids, sends, strict=True):
        if v is None:
            parts.append(struct.pack("!Ii", oid, -1))
        else:
            b = send(v)
            parts.append(struct.pack("!Ii", oid, len(b)) + b)
    return b"".join(parts)


def field_text(value: Any) -> str:
    """A binary record field's value (as its type's receive function made it) as the text its
    type's input reads."""
    return c.text_out(value)


class RecordFields(list):
    """A binary record parameter's fields as Python values (a nested record's as another
    RecordFields), for the SQL layer to read as the composite type: never made into record
    text, whose quoting doubles at each level of nesting. ``oid``: the type the client named."""

    oid: int = 0


def record_recv(b: bytes, text: WireText) -> RecordFields:
    """record_recv's input: each field read by its own type's receive function. A record
    nested more than MAX_DEPTH deep (a client's field OIDs say how) is refused."""
    depth = getattr(_RECV, "depth", 0)
    if depth >= MAX_DEPTH:
        raise ValueError(f"binary records nested more than {MAX_DEPTH} deep")
    _RECV.depth = depth + 1
    try:
        return _record_recv(b, text)
    finally:
        _RECV.depth = depth


def _record_recv(b: bytes, text: WireText) -> RecordFields:
    (count,) = struct.unpack_from("!i", b)
    if count < 0:
        raise ValueError("negative field count in a binary record")
    pos, fields = 4, RecordFields()
    for _ in range(count):
        oid, size = struct.unpack_from("!Ii", b, pos)
        pos += 8
        if size < 0:
            fields.append(None)
            continue
        if pos + size > len(b):
            raise ValueError("a binary record field runs past the end of the value")
        fields.append(c.binary_in(b[pos:pos + size], oid, text))
        pos += size
    if pos != len(b):
        raise ValueError("bytes left after the last field of a binary record")
    return fields


# ----------------------------------------------------------------------------- result columns


def marker(oid: int, array_oid: int) -> str:
    """The name of the marker field that ends composite type ``oid``'s STRUCT."""
    return f"{MARKER_PREFIX}{oid}:{array_oid}"


@functools.lru_cache(maxsize=4096)
def _parsed(duck: str) -> Any:
    return duckdb.sqltype(duck)


def _composite_oids(t: Any) -> tuple[int, int] | None:
    """(OID, array OID) of a STRUCT that is a composite type's (its marker field), else None."""
    kids = t.children if t.id == "struct" else []
    if not kids or not kids[-1][0].startswith(MARKER_PREFIX):
        return None
    oid, _, array = kids[-1][0][len(MARKER_PREFIX):].partition(":")
    return int(oid), int(array)


def result_type(duck: str, arrow_type: pa.DataType) -> tuple[int, int] | None:
    """(OID, typmod) of a result column of DuckDB type ``duck`` that holds records (a STRUCT or
    TUPLE, or a one-dimensional array of them); None for any other (a blob's STRUCT is a
    bytea)."""
    if is_blob_struct(arrow_type):
        return None
    array = duck.endswith("[]")
    base = duck[:-2] if array else duck
    if base.endswith("]"):
        return None
    if base == "TUPLE" or base.startswith("TUPLE("):  # TUPLE alone: row()
        return (RECORD_ARRAY if array else RECORD), -1
    if not base.startswith("STRUCT("):
        return None
    if _is_record_text(_parsed(base)):
        oid = VARCHAR if _parsed(base).children[0][0] == RECORD_TEXT_FIELDS["varchar"] else TEXT
        return (BY_OID[oid].array if array else oid), -1
    oids = _composite_oids(_parsed(base))
    if oids is None:
        return (RECORD_ARRAY if array else RECORD), -1
    return (oids[1] if array else oids[0]), -1


def column_codec(duck: str, arrow_type: pa.DataType, fmt: int, type_of: TypeOf,
                 text: WireText) -> Callable[[Any], str | bytes] | None:
    """The text (``fmt`` 0: a str) or binary (bytes) form of each value of a result column of
    records, made from its DuckDB type; None for a column of anything else."""
    if result_type(duck, arrow_type) is None:
        return None
    if duck in ("TUPLE", "TUPLE[]"):  # row(): no fields
        empty = (lambda v: "()") if fmt == 0 else (lambda v: struct.pack("!i", 0))
        if duck == "TUPLE":
            return empty
        return c.elements_text(empty) if fmt == 0 else (lambda v: c.array_send(v, RECORD, text, empty))
    return _codec(_parsed(duck), arrow_type, fmt, type_of, text)


def _is_record_text(t: Any) -> bool:
    return t.id == "struct" and len(t.children) == 1 and t.children[0][0] in RECORD_TEXT_FIELDS.values()


def _codec(t: Any, arrow_type: pa.DataType, fmt: int, type_of: TypeOf, text: WireText) -> Callable[[Any], Any]:
    if _is_record_text(t):  # record::text: the record's text form, as text
        inner_arrow = arrow_type.field(0).type if pa.types.is_struct(arrow_type) else pa.null()
        inner = _codec(t.children[0][1], inner_arrow, 0, type_of, text)
        def as_text(v: Any) -> str:  # the text already, where rows.py made the Python value
            return v if isinstance(v, str) else inner(_values(v)[0])

        return as_text if fmt == 0 else (lambda v: text.encode(as_text(v)))
    if t.id in ("struct", "tuple"):
        kids = t.children
        arrow_kids = [arrow_type.field(i).type if pa.types.is_struct(arrow_type) and i < arrow_type.num_fields
                      else pa.null() for i in range(len(kids))]
        n = len(kids) - (_composite_oids(t) is not None)  # the marker field is not sent
        fns = [_codec(k, a, fmt, type_of, text) for (_, k), a in zip(kids[:n], arrow_kids[:n], strict=True)]
        if fmt == 0:
            return lambda v: record_text([None if x is None else fn(x) for fn, x in zip(fns, _values(v)[:n], strict=True)])
        oids = [UNKNOWN if name.startswith(UNKNOWN_FIELD_PREFIX) else _oid(k, a, type_of)
                for (name, k), a in zip(kids[:n], arrow_kids[:n], strict=True)]
        fns = [(lambda v: text.encode(c.text_out(v))) if oid == UNKNOWN else fn for fn, oid in zip(fns, oids, strict=True)]
        return lambda v: record_send(_values(v)[:n], oids, fns)
    if t.id == "list" and t.children[0][1].id in ("struct", "tuple"):
        child = t.children[0][1]
        arrow_child = arrow_type.value_type if pa.types.is_list(arrow_type) else pa.null()
        fn = _codec(child, arrow_child, fmt, type_of, text)
        if fmt == 0:
            return c.elements_text(fn)
        elem = _oid(child, arrow_child, type_of)
        return lambda v: c.array_send(v, elem, text, fn)
    oid = type_of(str(t), arrow_type)[0]
    info = BY_OID.get(oid)
    if fmt == 0:
        return c.text_out if info is None or info.text_out is None else info.text_out
    send = c.send_of(oid)
    return lambda v: send(v, text)


def _oid(t: Any, arrow_type: pa.DataType, type_of: TypeOf) -> int:
    return type_of(str(t), arrow_type)[0]


def _values(v: Any) -> list[Any]:
    return list(v.values()) if isinstance(v, dict) else list(v)


# ----------------------------------------------------------------------------- Python values


def py_converter(duck: str, arrow_type: pa.DataType) -> Callable[[pa.Array], list[Any]] | None:
    """Records in Python (a result column of STRUCTs, or of lists of them): tuples of the
    fields, as psycopg's record loader gives them, without a composite type's marker (a
    record cast to text: its text); None for a column holding no STRUCT."""
    if not _holds_struct(arrow_type) or is_blob_struct(arrow_type):
        return None
    if duck.startswith("STRUCT(") and _is_record_text(_parsed(duck)):
        as_text = _codec(_parsed(duck), arrow_type, 0, _registry_type, UTF8)
        return lambda arr: [None if v is None else as_text(v) for v in arr.to_pylist()]
    return lambda arr: [_py(v, arrow_type) for v in arr.to_pylist()]


def _registry_type(duck: str, arrow_type: pa.DataType) -> tuple[int, int]:
    from .duck import result_type as registry_result_type

    return result_type(duck, arrow_type) or registry_result_type(duck, arrow_type)


def _holds_struct(t: pa.DataType) -> bool:
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return pa.types.is_struct(t)


def _py(v: Any, t: pa.DataType) -> Any:
    if v is None:
        return None
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        n = len(names) - (bool(names) and names[-1].startswith(MARKER_PREFIX))
        return tuple(_py(v[name], t.field(i).type) for i, name in enumerate(names[:n]))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [_py(x, t.value_type) for x in v]
    return v


# ----------------------------------------------------------------------------- user types


def user_type(info: TypeInfo) -> None:
    """An enum or composite type of some branch (or its array type), known by OID to the
    wire's codecs (``REGISTRY.register_user``): a client that learnt the OID from the catalog
    sends parameters of it."""
    REGISTRY.register_user(info)


def composite_info(name: str, oid: int, array_oid: int, sql_name: str) -> TypeInfo:
    """A composite type's entry: record text passes through to the SQL layer, which reads it
    as the type's fields; a binary value is read into its fields (``RecordFields``)."""
    return TypeInfo(name=name, oid=oid, array=array_oid, sql_name=sql_name, category="C", recv=record_recv)


def register_types() -> None:
    record = register(TypeInfo(name="record", oid=RECORD, array=RECORD_ARRAY, category="P",
                               text_out=_untyped_text))
    register(TypeInfo(name="_record", oid=RECORD_ARRAY, element=record.oid, category="P",
                      text_out=c.elements_text(_untyped_text)))


def _untyped_text(v: Any) -> str:
    """A record's text where its fields' types are not known: each field's own text."""
    return record_text([None if x is None else (_untyped_text(x) if isinstance(x, dict) else c.text_out(x))
                        for x in _values(v)])
