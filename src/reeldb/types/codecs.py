"""Text and binary codecs of PostgreSQL's types, for the registry's entries.

Text output follows PostgreSQL's own output functions (``t``/``f``, ``\\x`` hex bytea, ``+00``
offsets, pgvector's ``[1,2,3]``, ``1 year 2 mons``); binary output follows each type's send
function and binary input its receive function. Input yields the Python value the SQL
layer binds: text of a type the SQL layer coerces from strings stays a string.
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
from ..format.arrays import array_text, parse_array_literal
from ..format.pgvector import float_text, vector_text
from . import datetimes
from .oids import BOOL, FLOAT4, FLOAT8, INT2, INT4, INT8, OID
from .registry import BY_OID, ENUM_OIDS, WireText

# ----------------------------------------------------------------------------- text output


def text_out(v: Any) -> str:
    """A Python value in PostgreSQL's text output format."""
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
        return interval_text(v)
    if isinstance(v, pa.MonthDayNano):
        return month_day_nano_text(v)
    if isinstance(v, decimal.Decimal | uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, np.ndarray):
        if v.ndim == 1 and v.dtype.kind == "f":
            if v.dtype in (np.float32, np.float16):
                return vector_text(v)
            return "[" + ",".join(float_text(float(x), False) for x in v) + "]"
        return array_text(v.tolist(), text_out)
    if isinstance(v, list | tuple):
        return array_text(list(v), text_out)
    if hasattr(v, "read") and hasattr(v, "meta"):  # a lazy Blob
        return "\\x" + v.read().hex()
    return str(v)


def float4_text(v: Any) -> str:
    """float4's shortest digits, though the value arrives as a Python float."""
    return float_text(float(v), True)


class Quoted(str):
    """An element's text, made already (a vector's, inside vector[])."""


def interval_text(v: dt.timedelta) -> str:
    days, rest = v.days, v.seconds
    text = f"{days} day{'s' if abs(days) != 1 else ''} " if days else ""
    h, m, s = rest // 3600, rest % 3600 // 60, rest % 60
    clock = f"{h:02d}:{m:02d}:{s:02d}" + (f".{v.microseconds:06d}".rstrip("0") if v.microseconds else "")
    return (text + clock) if rest or v.microseconds or not days else text.strip()


def month_day_nano_text(v: Any) -> str:
    """PostgreSQL's interval output (IntervalStyle postgres, ``EncodeInterval``):
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


def elements_text(element_text: Callable[[Any], str]) -> Callable[[Any], str]:
    """An array whose elements have a text of their own (vector[], hstore[]): each element's text, quoted
    where array_out quotes (a list element would otherwise read as a sub-array)."""
    return lambda v: array_text([None if x is None else Quoted(element_text(x)) for x in v], text_out)


# ----------------------------------------------------------------------------- text input


def int_in(s: str) -> int:
    return int(s)


def float_in(s: str) -> float:
    return float(s)


def numeric_in(s: str) -> decimal.Decimal:
    return decimal.Decimal(s)


def bool_in(s: str) -> bool:
    low = s.strip().lower()
    if low in ("t", "true", "y", "yes", "on", "1"):
        return True
    if low in ("f", "false", "n", "no", "off", "0"):
        return False
    raise ValueError(f"invalid input syntax for type boolean: {s!r}")


def bytea_in(s: str) -> bytes:
    if s.startswith("\\x"):
        return bytes.fromhex(s[2:])
    return s.encode("latin-1")


def text_in(s: str, oid: int) -> Any:
    """A text parameter of type ``oid`` as the value the SQL layer binds (the text itself
    for a type the SQL layer coerces)."""
    info = BY_OID.get(oid)
    return s if info is None or info.text_in is None else info.text_in(s)


_NESTED_OK = (INT2, INT4, INT8, FLOAT4, FLOAT8, BOOL, OID)


def array_text_in(element: int) -> Callable[[str], list[Any]]:
    """``{1,2,NULL}`` / ``{"a b",c}`` -> a list of the element type's values. Lists of lists
    reach DuckDB as JSON text, which it reads back right only for numbers and booleans: a
    text array of more than one dimension would come back as one JSON string, so it is
    refused."""

    def parse(s: str) -> list[Any]:
        items = parse_array_literal(s)
        if element not in _NESTED_OK and any(isinstance(x, list) for x in items):
            raise errors.FeatureNotSupported("array parameters of more than one dimension are not supported "
                                             f"for elements of type OID {element}")

        def convert(x: Any) -> Any:
            if isinstance(x, list):
                return [convert(y) for y in x]
            return None if x is None else text_in(x, element)

        return convert(items)

    return parse


# ----------------------------------------------------------------------------- binary output


def send_of(oid: int) -> Callable[[Any, WireText], bytes]:
    """The binary output function of type ``oid`` (an enum's is its label's text); 0A000
    for a type without one."""
    if oid in ENUM_OIDS:  # enum_send: the label in the client encoding
        return lambda v, text: text.encode(text_out(v))
    info = BY_OID.get(oid)
    if info is None or info.send is None:
        raise errors.FeatureNotSupported(f"binary output of type OID {oid} is not supported: ask for text")
    return info.send


def struct_send(fmt: str, convert: Callable[[Any], Any]) -> Callable[[Any, WireText], bytes]:
    packer = struct.Struct(fmt)
    return lambda v, text: packer.pack(convert(v))


def text_send(v: Any, text: WireText) -> bytes:
    """textsend: the text in the client encoding."""
    return text.encode(text_out(v))


def char_send(v: Any, text: WireText) -> bytes:
    return text.encode(str(v))[:1]


def bytes_send(v: Any, text: WireText) -> bytes:
    if hasattr(v, "read") and hasattr(v, "meta"):  # a lazy Blob
        return v.read()
    return bytes(v)


def interval_send(v: Any, text: WireText) -> bytes:
    if isinstance(v, dt.timedelta):
        return struct.pack("!qii", v.seconds * 1_000_000 + v.microseconds, v.days, 0)
    return struct.pack("!qii", v.nanoseconds // 1000, v.days, v.months)


_PG_EPOCH_TZ = datetimes.PG_EPOCH.replace(tzinfo=dt.timezone.utc)


def timestamp_send(v: dt.datetime, text: WireText) -> bytes:
    delta = v - _PG_EPOCH_TZ if v.tzinfo is not None else v - datetimes.PG_EPOCH
    return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def date_send(v: dt.date, text: WireText) -> bytes:
    return struct.pack("!i", (v - datetimes.PG_EPOCH_DATE).days)


def time_send(v: dt.time, text: WireText) -> bytes:
    return struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond)


def uuid_send(v: Any, text: WireText) -> bytes:
    return uuid.UUID(str(v)).bytes


_NUMERIC_NEG, _NUMERIC_NAN, _NUMERIC_PINF, _NUMERIC_NINF = 0x4000, 0xC000, 0xD000, 0xF000


def numeric_send(v: Any, text: WireText) -> bytes:
    """PostgreSQL's numeric_send: ndigits, weight (of the first base-10000 digit), sign,
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


def array_send(v: Any, element: int, text: WireText, element_send: Callable[[Any], bytes] | None = None) -> bytes:
    """PostgreSQL's binary array: dimensions, a NULL flag, then each element's length and
    bytes (each by the element type's send, or ``element_send``)."""
    items = v.tolist() if isinstance(v, np.ndarray) else list(v)
    dims = [len(items)]
    while items and all(isinstance(x, list) for x in items) and len({len(x) for x in items}) == 1:
        dims.append(len(items[0]))
        items = [y for x in items for y in x]
    if element_send is not None:
        one = element_send
    else:
        info = BY_OID.get(element)
        if info is None or info.send is None:
            raise errors.FeatureNotSupported(
                f"binary output of arrays of type OID {element} is not supported: ask for text")
        send = info.send

        def one(x: Any) -> bytes:
            return send(x, text)
    if dims == [0]:
        return struct.pack("!iii", 0, 0, element)
    has_null = any(x is None for x in items)
    head = struct.pack("!iii", len(dims), int(has_null), element) + b"".join(struct.pack("!ii", d, 1) for d in dims)
    parts = []
    for x in items:
        if x is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            b = one(x)
            parts.append(struct.pack("!i", len(b)) + b)
    return head + b"".join(parts)


def array_send_of(element: int) -> Callable[[Any, WireText], bytes]:
    return lambda v, text: array_send(v, element, text)


def vectors_send(element: int) -> Callable[[Any, WireText], bytes]:
    """vector[]: PostgreSQL's binary array of pgvector's binary vectors."""
    return lambda v, text: array_send([None if x is None else np.asarray(x, dtype=np.float32) for x in v],
                                      element, text)


# ----------------------------------------------------------------------------- binary input


def binary_in(b: bytes, oid: int, text: WireText) -> Any:
    """A binary parameter of type ``oid`` (0: unspecified, read as text) as the value the
    SQL layer binds; 0A000 for a type without a binary input."""
    if oid == 0 or oid in ENUM_OIDS:
        return text.decode(b)
    info = BY_OID.get(oid)
    if info is None or info.recv is None:
        raise errors.FeatureNotSupported(f"binary parameters of type OID {oid} are not supported: send text")
    return info.recv(b, text)


def struct_recv(fmt: str) -> Callable[[bytes, WireText], Any]:
    packer = struct.Struct(fmt)
    return lambda b, text: packer.unpack(b)[0]


def bool_recv(b: bytes, text: WireText) -> bool:
    if len(b) != 1:
        raise ValueError("a boolean is one byte")
    return b != b"\x00"


def text_recv(b: bytes, text: WireText) -> str:
    return text.decode(b)


def bytea_recv(b: bytes, text: WireText) -> bytes:
    return bytes(b)


def jsonb_send(v: Any, text: WireText) -> bytes:
    """Version 1, then jsonb's text."""
    from ..format.jsonb import canonical_text

    return b"\x01" + text.encode(canonical_text(v))


def jsonb_recv(b: bytes, text: WireText) -> str:
    if not b or b[0] != 1:
        raise ValueError("unsupported jsonb version")
    return text.decode(b[1:])


def interval_recv(b: bytes, text: WireText) -> Any:
    """A timedelta where it keeps the three fields apart, else text DuckDB reads exactly
    (a timedelta has no months, and folds "1 day -00:00:01" into 23:59:59)."""
    micros, days, months = struct.unpack("!qii", b)
    if not months and 0 <= micros < 86_400_000_000:
        return dt.timedelta(days=days, microseconds=micros)
    return f"{months} months {days} days {micros} microseconds"


def uuid_recv(b: bytes, text: WireText) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(b))


def numeric_recv(b: bytes, text: WireText) -> decimal.Decimal:
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


def array_recv(b: bytes, text: WireText) -> list[Any]:
    """A binary array parameter (one dimension, as clients send lists); each element by
    the receive function of the element type the array names."""
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
        out.append(binary_in(b[pos:pos + size], elem, text))
        pos += size
    return out


def vector_recv(dtype: str, stored: type, name: str) -> Callable[[bytes, WireText], np.ndarray]:
    """pgvector's send format: dim, unused, then big-endian float4 / float2."""
    size = np.dtype(dtype).itemsize

    def recv(b: bytes, text: WireText) -> np.ndarray:
        dim, _ = struct.unpack_from("!hh", b)
        if dim < 0 or len(b) != 4 + size * dim:
            raise ValueError(f"{name} length does not match its dimension")
        return np.frombuffer(b, dtype=dtype, offset=4).astype(stored)

    return recv


# ----------------------------------------------------------------------------- Python values out


def json_out(arr: pa.Array) -> list[Any]:
    """json / jsonb cells (their text) -> dicts, lists, numbers."""
    return [None if v is None else json.loads(v) for v in arr.to_pylist()]


def json_list_out(arr: pa.Array) -> list[Any]:
    if not pa.types.is_list(arr.type):
        return arr.to_pylist()
    return [None if v is None else [None if x is None else json.loads(x) for x in v] for v in arr.to_pylist()]


def uuid_out(arr: pa.Array) -> list[Any]:
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr.to_pylist()
    return [None if v is None else uuid.UUID(v) for v in arr.to_pylist()]


def uuid_list_out(arr: pa.Array) -> list[Any]:
    if not pa.types.is_list(arr.type):
        return arr.to_pylist()
    return [None if v is None else [None if x is None else uuid.UUID(str(x)) for x in v] for v in arr.to_pylist()]
