"""Result columns and Bind parameters on the wire, read from the type registry
(reeldb.types): each column's OID and length, its cells encoded in the client's encoding,
and each parameter decoded into the Python value the SQL layer binds.

The codecs are the registry's; what is the server's own is the client encoding (text on
the wire, and text inside binary values, as PostgreSQL's textsend does), the OIDs of
enum types (the catalog's) and sql/citext.py's typed text parameters. Results are
converted column by column.
"""

from __future__ import annotations

import decimal
import struct
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .. import errors
from .. import types as registry
from ..format.arrays import array_text
from ..format.types import ENUM_NAMES
from ..rows import to_columns
from ..sql.citext import TextParameter
from ..sql.pgcatalog import stable_oid
from ..sql.user_types import UserTypeParameter
from ..storage import ObjectStore
from ..types import datetimes, params, records
from ..types.codecs import array_send
from ..types.oids import JSON, JSON_ARRAY, JSONB, JSONB_ARRAY, TEXT, VARCHAR
from .protocol import FieldSpec, client_codec, decode_text, encode_text


class ClientText:
    """Text inside binary values, in the client encoding (PostgreSQL's pq_sendtext)."""

    def __init__(self, codec: tuple[str, str]):
        self.codec = codec
        self.utf8 = codec[1] == "utf-8"

    def encode(self, text: str) -> bytes:
        return text.encode("utf-8") if self.utf8 else encode_text(text, self.codec)

    def decode(self, data: bytes) -> str:
        return decode_text(data, self.codec)


def field_specs(table: pa.Table, description: list) -> list[FieldSpec]:
    """The PostgreSQL type of each result column (text format; the caller sets formats)."""
    out = []
    for (name, duck, *_), arrow_field in zip(description, table.schema, strict=True):
        oid, typmod = type_of(str(duck), arrow_field.type)
        out.append(FieldSpec(name, oid, registry.FIXED_LENGTH.get(oid, -1), typmod))
    return out


def type_of(duck: str, arrow_type: pa.DataType) -> tuple[int, int]:
    """(OID, typmod) of a DuckDB column type: a column of an enum type (CREATE TYPE ... AS
    ENUM) has the type's OID, as the catalog shows it; any other the registry's."""
    d = duck.upper()
    if d.startswith("ENUM(") and d in ENUM_NAMES:
        oid = stable_oid("type", ENUM_NAMES[d])
        registry.ENUM_OIDS.add(oid)
        return oid, -1
    if d.startswith("ENUM(") and d.endswith(")[]") and d[:-2] in ENUM_NAMES:  # an array of an enum type
        return stable_oid("type[]", ENUM_NAMES[d[:-2]]), -1
    if d.removesuffix("[]") in registry.BY_DUCK:  # a registered STRUCT (a range), or an array of it, is no record
        return registry.result_type(duck, arrow_type)
    rec = records.result_type(duck, arrow_type)  # a row(...), a composite type's value, or an array of them
    if rec is not None:
        return rec
    return registry.result_type(duck, arrow_type)


# ----------------------------------------------------------------------------- output


def encode_columns(table: pa.Table, description: list, fields: list[FieldSpec],
                   store: ObjectStore) -> list[list[bytes | None]]:
    """Every cell of a result as wire bytes (None for NULL), column by column. Dates,
    times and timestamps are encoded from their integers: Python's years end at 9999
    and have no infinity."""
    temporal = {i: _temporal_encoder(t, f) for i, (t, f) in enumerate(zip(table.schema.types, fields, strict=True))}
    temporal = {i: enc for i, enc in temporal.items() if enc is not None}
    # sent from the text, not parsed
    json_text = {i for i, f in enumerate(fields) if f.type_oid in (JSON, JSONB, JSON_ARRAY, JSONB_ARRAY)}
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
            enc = (None if _is_range(f.type_oid)  # a range is a STRUCT, not a record
                   else _record_encoder(str(description[i][1]), table.schema.types[i], f.format)) \
                or encoder(f.type_oid, f.format)
            out.append([None if v is None else enc(v) for v in next(converted)])
    return out


def _is_range(oid: int) -> bool:
    """A range or multirange type, or an array of one (types/ranges.py)."""
    info = registry.BY_OID.get(registry.ELEMENT_OF.get(oid, oid))
    return info is not None and info.category == "R"


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
    codec = client_codec()
    if f.format:
        elem = registry.ELEMENT_OF.get(f.type_oid, 0)
        text = ClientText(codec)
        return lambda v: array_send(v, elem, text, leaf)
    return lambda v: encode_text(array_text(v, lambda x: leaf(x).decode()), codec)


def _raw(array: pa.Array) -> pa.Array:
    """A date, time or timestamp array (or lists of them) as the integers under it."""
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        return type(array).from_arrays(array.offsets, _raw(array.values), mask=array.is_null())
    return array.view(pa.int32() if array.type.bit_width == 32 else pa.int64())


def _record_encoder(duck: str, arrow_type: pa.DataType, fmt: int) -> Callable[[Any], bytes] | None:
    """The encoder of a column of records (types/records.py), each field sent as its type."""
    codec = client_codec()
    make = records.column_codec(duck, arrow_type, fmt, type_of, ClientText(codec))
    if make is None or fmt:
        return make  # type: ignore[return-value]
    return lambda v: encode_text(make(v), codec)  # type: ignore[arg-type]


def encoder(oid: int, fmt: int) -> Callable[[Any], bytes]:
    """The wire bytes of one value of type ``oid`` in format ``fmt``; text in the client
    encoding in force when it is made."""
    codec = client_codec()
    if fmt == 0:
        info = registry.BY_OID.get(oid)
        out = registry.text_out if info is None or info.text_out is None else info.text_out
        if codec[1] == "utf-8":
            return lambda v: out(v).encode("utf-8")
        return lambda v: encode_text(out(v), codec)
    send = registry.send_of(oid)
    text = ClientText(codec)
    return lambda v: send(v, text)


# ----------------------------------------------------------------------------- input


def decode_param(data: bytes | None, oid: int, fmt: int) -> Any:
    """A Bind parameter as the Python value the SQL layer binds. Text of a type the SQL
    layer coerces from strings stays a string."""
    if data is None:
        return None
    try:
        if fmt == 0:
            value = registry.text_in(decode_text(data), oid)
        else:
            value = registry.binary_in(data, oid, ClientText(client_codec()))
        if oid in (TEXT, VARCHAR) and isinstance(value, str):  # typed text, not unknown (sql/citext.py)
            return TextParameter(value)
        if oid in registry.REGISTRY.user and registry.BY_OID[oid].category in "EC":
            if isinstance(value, records.RecordFields):  # a binary record's fields
                value.oid = oid
            elif isinstance(value, str):
                return UserTypeParameter(value, oid)  # an enum's label, a composite's record text
            return value
        return params.typed(value, oid)
    except UnicodeDecodeError:  # a text field inside a binary value (an array's elements)
        raise errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8"') from None
    except (struct.error, ValueError, decimal.InvalidOperation) as e:
        kind = errors.InvalidBinaryRepresentation if fmt else errors.InvalidTextRepresentation
        raise kind(f"invalid value for parameter of type OID {oid}: {e}") from None
