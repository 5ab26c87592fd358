"""PostgreSQL's built-in range types in the registry: int4range, int8range, numrange,
daterange, tsrange, tstzrange, their multiranges and the arrays of both, with PostgreSQL 16's
OIDs, range_out's text, range_send / range_recv's binary form (a flags byte, then each finite
bound as a length and its subtype's binary form; a multirange: the count of its ranges, then
each as a length and a range), and a ``Range`` / ``Multirange`` in Python (format/ranges.py
holds the values, their parser and their canonical form)."""

from __future__ import annotations

import decimal
import struct
from typing import Any

import pyarrow as pa

from .. import errors
from ..format import ranges
from ..format.arrays import parse_array_literal
from ..format.ranges import KINDS, MultirangeParameter, Range, RangeKind, RangeParameter
from .builtin import array_info
from .codecs import binary_in, elements_text, send_of
from .registry import BY_NAME, TypeInfo, WireText, register

# typname -> (OID, array OID, multirange OID, multirange array OID), as PostgreSQL 16's pg_type
OIDS = {
    "int4range": (3904, 3905, 4451, 6150),
    "numrange": (3906, 3907, 4532, 6151),
    "tsrange": (3908, 3909, 4533, 6152),
    "tstzrange": (3910, 3911, 4534, 6153),
    "daterange": (3912, 3913, 4535, 6155),
    "int8range": (3926, 3927, 4536, 6157),
}

# range_send's flags
EMPTY, LB_INC, UB_INC, LB_INF, UB_INF = 0x01, 0x02, 0x04, 0x08, 0x10


def subtype_oid(kind: RangeKind) -> int:
    info = BY_NAME[kind.subtype]
    return info.oid


def _value(v: Any) -> Range:
    return ranges.from_struct(v) if isinstance(v, dict) else v


def range_text(v: Any) -> str:
    """range_out of a stored struct (bounds as their subtype's text; the session's zone is UTC)."""
    return ranges.text(_value(v))


def _send(kind: RangeKind) -> Any:
    def send(v: Any, text: WireText) -> bytes:
        r = _value(v)
        if r.empty:
            return bytes([EMPTY])
        flags = (LB_INC if r.lower_inc else 0) | (UB_INC if r.upper_inc else 0) \
            | (LB_INF if r.lower is None else 0) | (UB_INF if r.upper is None else 0)
        out = [bytes([flags])]
        bound_send = send_of(subtype_oid(kind))
        for b in (r.lower, r.upper):
            if b is not None:
                data = bound_send(ranges.plain_decimal(b) if isinstance(b, decimal.Decimal) else b, text)
                out.append(struct.pack("!i", len(data)) + data)
        return b"".join(out)

    return send


def _recv(kind: RangeKind) -> Any:
    def recv(b: bytes, text: WireText) -> RangeParameter:
        if not b:
            raise ValueError("a binary range has at least its flags byte")
        flags = b[0]
        if flags & EMPTY:
            if len(b) != 1:
                raise ValueError("an empty binary range has nothing after its flags")
            return RangeParameter(kind, value=ranges.EMPTY)
        pos = 1
        bounds: list[Any] = []
        for inf in (LB_INF, UB_INF):
            if flags & inf:
                bounds.append(None)
                continue
            (size,) = struct.unpack_from("!i", b, pos)
            pos += 4
            if size < 0 or pos + size > len(b):
                raise ValueError("a binary range's bound runs past its end")
            bounds.append(binary_in(b[pos:pos + size], subtype_oid(kind), text))
            pos += size
        if pos != len(b):
            raise ValueError("junk after a binary range's bounds")
        value = Range(bounds[0], bounds[1], ("[" if flags & LB_INC else "(") + ("]" if flags & UB_INC else ")"))
        return RangeParameter(kind, value=value)

    return recv


def multirange_text(v: Any) -> str:
    """multirange_out of a stored struct."""
    return ranges.multi_text(ranges.from_mstruct(v) if isinstance(v, dict) else v)


def _multi_send(kind: RangeKind) -> Any:
    """multirange_send: the count of ranges, then each as a length and range_send's bytes."""
    send = _send(kind)

    def multi_send(v: Any, text: WireText) -> bytes:
        m = ranges.from_mstruct(v) if isinstance(v, dict) else v
        out = [struct.pack("!i", len(m))]
        for r in m:
            data = send(r, text)
            out.append(struct.pack("!i", len(data)) + data)
        return b"".join(out)

    return multi_send


def _multi_recv(kind: RangeKind) -> Any:
    recv = _recv(kind)

    def multi_recv(b: bytes, text: WireText) -> MultirangeParameter:
        (count,) = struct.unpack_from("!i", b)
        if count < 0 or count > len(b):
            raise ValueError("invalid count of ranges in a binary multirange")
        pos, out = 4, []
        for _ in range(count):
            (size,) = struct.unpack_from("!i", b, pos)
            pos += 4
            if size < 0 or pos + size > len(b):
                raise ValueError("a binary multirange's range runs past its end")
            got = recv(b[pos:pos + size], text).value
            assert got is not None
            out.append(got)
            pos += size
        if pos != len(b):
            raise ValueError("junk after a binary multirange's ranges")
        return MultirangeParameter(kind, value=tuple(out))

    return multi_recv


def _multi_py_out(arr: pa.Array) -> list[Any]:
    return [None if v is None else ranges.from_mstruct(v) for v in arr.to_pylist()]


def _multi_array_py_out(arr: pa.Array) -> list[Any]:
    return [None if v is None else [None if x is None else ranges.from_mstruct(x) for x in v] for v in arr.to_pylist()]


def _py_out(arr: pa.Array) -> list[Any]:
    return [None if v is None else ranges.from_struct(v) for v in arr.to_pylist()]


def _py_out_array(arr: pa.Array) -> list[Any]:
    return [None if v is None else [None if x is None else ranges.from_struct(x) for x in v] for v in arr.to_pylist()]


def _array_text_in(kind: RangeKind, multi: bool = False) -> Any:
    """A range (or multirange) array parameter's text: its elements, each a typed parameter."""
    name, make = (kind.multi, MultirangeParameter) if multi else (kind.name, RangeParameter)

    def text_in(s: str) -> list[Any]:
        items = parse_array_literal(s)
        if any(isinstance(x, list) for x in items):
            raise errors.FeatureNotSupported(f"multidimensional arrays of {name} are not supported")
        return [None if x is None else make(kind, text=x) for x in items]

    return text_in


def register_types() -> None:
    for kind in KINDS.values():
        oid, array, _, _ = OIDS[kind.name]
        info = register(TypeInfo(
            name=kind.name, oid=oid, kind=kind.name, array=array, category="R", arrow=kind.arrow, duck=kind.duck,
            text_out=range_text, text_in=lambda s, kind=kind: RangeParameter(kind, text=s), send=_send(kind),
            recv=_recv(kind), py_out=_py_out))
        register(array_info(info, text_out=elements_text(range_text), py_out=_py_out_array,
                            text_in=_array_text_in(kind)))
    for kind in KINDS.values():
        _, _, oid, array = OIDS[kind.name]
        info = register(TypeInfo(
            name=kind.multi, oid=oid, kind=kind.multi, array=array, category="R", arrow=kind.multi_arrow,
            duck=kind.multi_duck, text_out=multirange_text,
            text_in=lambda s, kind=kind: MultirangeParameter(kind, text=s), send=_multi_send(kind),
            recv=_multi_recv(kind), py_out=_multi_py_out))
        register(array_info(info, text_out=elements_text(multirange_text), py_out=_multi_array_py_out,
                            text_in=_array_text_in(kind, multi=True)))
