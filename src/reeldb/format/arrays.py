"""Columns of arrays of scalar types (``int[]``, ``text[]``, ``numeric(5,2)[]``, ...).

An array column is stored as a Parquet list of its element's storage type, so DuckDB reads
it as a LIST and its list functions apply. Its ``ColumnType`` is the element's with
``_array`` after the kind (``int32_array``, ``varchar_array`` with the element's length),
so manifests need nothing new. Values are one-dimensional, as a client sends a list; a
multi-dimensional value is refused (0A000) rather than stored in a shape reeldb could not
give back as Postgres would (Postgres keeps any dimensionality in an ``int[]`` column).

Here: the element types an array may have, Postgres' array text (``{1,2,NULL}``,
``{"a b","c\\"d"}``) both ways, and the check of a value on its way into a column.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from .. import errors

# Element kinds an array column may have (format/types.py's kinds, stored in Parquet)
ELEMENT_KINDS = ("int16", "int32", "int64", "float32", "float64", "numeric", "bool", "text", "varchar",
                 "bytea", "date", "timestamp", "timestamptz", "uuid", "jsonb",
                 "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange")  # format/ranges.py
ARRAY_KINDS = {f"{k}_array": k for k in ELEMENT_KINDS}

# Postgres' array input skips only these (array_isspace), not all of Python's whitespace:
# U+001C..U+001F and other Unicode spaces are part of an element.
ARRAY_SPACE = " \t\n\r\v\f"
_QUOTED = frozenset('{},"\\' + ARRAY_SPACE)  # array_out quotes an element with any of these


def element_kind(kind: str) -> str | None:
    """The element kind of an array column's kind (``int32_array`` -> ``int32``), else None."""
    return ARRAY_KINDS.get(kind)


# ----------------------------------------------------------------------------- text form


def parse_array_literal(text: str) -> list[Any]:
    """Postgres' array text (``{1,2}``, ``{{a,"b c"},{NULL,d}}``) -> nested lists of
    strings, None for NULL."""
    s = text.strip(ARRAY_SPACE)
    bounds: list[tuple[int, int]] = []
    while s.startswith("["):  # explicit dimensions: [1:2]={a,b}
        m = _BOUNDS.match(s)
        if m is None:
            raise ValueError(f"malformed array literal: {text!r}")
        bounds.append((int(m.group(1) or 1), int(m.group(2))))
        s = s[m.end():].lstrip(ARRAY_SPACE)
    if bounds:
        if not s.startswith("="):
            raise ValueError(f"malformed array literal: {text!r}")
        s = s[1:].lstrip(ARRAY_SPACE)
        if any(lo != 1 for lo, _ in bounds):
            raise errors.FeatureNotSupported(f"arrays whose subscripts do not start at 1 are not supported: {text!r}")
    if not s.startswith("{"):
        raise ValueError(f"malformed array literal: {text!r}")
    out, pos = _array_items(s, 1, 1)
    if s[pos:].strip(ARRAY_SPACE):
        raise ValueError(f"malformed array literal: {text!r}")
    level: list[Any] = out
    for lo, hi in bounds:  # each dimension as declared (Postgres: "Specified array dimensions do not match")
        if len(level) != hi - lo + 1:
            raise ValueError(f"malformed array literal: {text!r} (the dimensions do not match its contents)")
        level = level[0] if level and isinstance(level[0], list) else []
    return out


_BOUNDS = re.compile(r"\[\s*(?:(-?\d+)\s*:)?\s*(-?\d+)\s*\]")


MAX_DIMENSIONS = 6  # Postgres' MAXDIM: deeper nesting is refused before it is read (no deep recursion)


def _array_items(s: str, i: int, depth: int) -> tuple[list[Any], int]:
    if depth > MAX_DIMENSIONS:
        raise ValueError(f"number of array dimensions ({depth}) exceeds the maximum allowed ({MAX_DIMENSIONS})")
    items: list[Any] = []
    n = len(s)
    while i < n:
        c = s[i]
        if c == "}":
            return items, i + 1
        if c == "," or c in ARRAY_SPACE:
            i += 1
        elif c == "{":
            sub, i = _array_items(s, i + 1, depth + 1)
            items.append(sub)
        elif c == '"':
            j, chars = i + 1, []
            while j < n and s[j] != '"':
                if s[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(s[j])
                j += 1
            if j >= n:
                break
            items.append("".join(chars))
            i = j + 1
        else:
            word, i = _unquoted(s, i)
            items.append(word)
    raise ValueError(f"malformed array literal: {s!r}")


def _unquoted(s: str, i: int) -> tuple[str | None, int]:
    """An unquoted element from ``i`` to the next , or }: backslash escapes a character;
    trailing array whitespace that is not escaped is dropped; a bare NULL is None."""
    chars: list[str] = []
    keep = 0  # length of chars up to the last character that is not trailing space
    escaped = False
    n = len(s)
    while i < n and s[i] not in ",}":
        if s[i] == "\\" and i + 1 < n:
            i += 1
            escaped = True
            chars.append(s[i])
            keep = len(chars)
        else:
            chars.append(s[i])
            if s[i] not in ARRAY_SPACE:
                keep = len(chars)
        i += 1
    word = "".join(chars[:keep])
    return (None if not escaped and word.upper() == "NULL" else word), i


def array_text(items: list[Any], element_text: Callable[[Any], str]) -> str:
    """Postgres' array_out: ``{1,NULL,"a b"}``; an element is quoted when it is empty, is
    ``NULL`` in any case, or holds a brace, comma, quote, backslash or array space."""
    parts = []
    for x in items:
        if x is None:
            parts.append("NULL")
        elif isinstance(x, list):
            parts.append(array_text(x, element_text))
        else:
            t = element_text(x)
            if t == "" or t.upper() == "NULL" or any(c in _QUOTED for c in t):
                t = '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(t)
    return "{" + ",".join(parts) + "}"


# ----------------------------------------------------------------------------- values in


def bytea_in(v: Any, column: str) -> bytes:
    """One bytea element: bytes, or Postgres' text input (``\\x0102`` hex, or the escape
    form where ``\\\\`` is a backslash and ``\\ooo`` an octal byte)."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    if isinstance(v, np.ndarray) and v.dtype == np.uint8:
        return v.tobytes()
    if not isinstance(v, str):
        raise errors.DatatypeMismatch(f"column {column} is of type bytea[] but an element is of type {type(v).__name__}")
    if v.startswith("\\x"):
        try:
            return bytes.fromhex(v[2:])
        except ValueError:
            raise errors.InvalidTextRepresentation(f'invalid hexadecimal data for bytea (column {column}): '
                                                   f'"{v[:40]}"') from None
    out = bytearray()
    i = 0
    while i < len(v):
        c = v[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
        elif v[i + 1:i + 2] == "\\":
            out.append(0x5C)
            i += 2
        elif len(v) >= i + 4 and all(d in "01234567" for d in v[i + 1:i + 4]) and v[i + 1] in "0123":
            out.append(int(v[i + 1:i + 4], 8))
            i += 4
        else:
            raise errors.InvalidTextRepresentation(f"invalid input syntax for type bytea (column {column})")
    return bytes(out)


# element kinds whose values may arrive as Python strings inside a list: text itself, the
# types DuckDB hands back as text (uuid, JSON), and those a client's text-format array
# parameter leaves as text for the column to read (dates and timestamps)
TEXT_ELEMENT_KINDS = ("text", "varchar", "uuid", "jsonb", "date", "timestamp", "timestamptz")


def array_converter(sql_name: str, column: str, element_kind: str,
                    element: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """A converter of one array value (a list, tuple or 1-d numpy array, or Postgres' array
    text) to the list of stored elements, each through ``element``; NULL elements kept.
    A list of strings is a text[] value: Postgres has no assignment cast from text[] to
    integer[] (or numeric, boolean, date... arrays), so it is refused (42804) as there,
    while Postgres' array text of the whole value (``'{1,2}'``) is read as the column's type."""
    strings_ok = element_kind in TEXT_ELEMENT_KINDS

    def conv(v: Any) -> list[Any]:
        if isinstance(v, np.ndarray):
            if v.ndim != 1:
                raise _multi(sql_name, column)
            items = v.tolist()
        elif isinstance(v, list | tuple):
            items = list(v)
        else:
            raise errors.DatatypeMismatch(
                f"column {column} is of type {sql_name} but the value is of type {type(v).__name__}")
        if any(isinstance(x, list | tuple) or (isinstance(x, np.ndarray) and x.ndim) for x in items):
            raise _multi(sql_name, column)
        if not strings_ok and any(isinstance(x, str) for x in items):
            raise errors.DatatypeMismatch(f'column "{column}" is of type {sql_name} but expression is of type text[]')
        return [None if x is None else element(x) for x in items]

    def from_text(v: Any) -> list[Any]:  # Postgres' array text: each element is the element type's input
        if isinstance(v, str):
            try:
                items = parse_array_literal(v)
            except ValueError:
                raise errors.InvalidTextRepresentation(
                    f'malformed array literal: "{_short(v)}" (column {column})') from None
            if any(isinstance(x, list) for x in items):
                raise _multi(sql_name, column)
            return [None if x is None else element(x) for x in items]
        return conv(v)

    return from_text


def _multi(sql_name: str, column: str) -> errors.Error:
    return errors.FeatureNotSupported(
        f"multi-dimensional arrays are not supported (column {column} is {sql_name}): "
        "an array column holds one-dimensional values")


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 3] + "..."


class ListDecimal(decimal.Decimal):
    """A numeric element of a list DuckDB computed: its scale is the list's (DuckDB gives
    ARRAY[1.5, 2] one DECIMAL(2,1)), not the element's own as in Postgres, so its text is
    not Postgres' (2.0 where Postgres prints 2)."""


def cell_value(cell: pa.Scalar) -> Any:
    """A cell DuckDB computed (INSERT ... VALUES (ARRAY[...])) as the Python value a column's
    converter takes: a list of float4 keeps float4 elements (np.float32), so that a text[]
    column prints float4's digits (0.1, not 0.10000000149011612); numeric elements are
    ListDecimal."""
    t = cell.type
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and cell.is_valid:
        if pa.types.is_float32(t.value_type):
            return [None if x is None else np.float32(x) for x in cell.as_py()]
        if pa.types.is_decimal(t.value_type):
            return [None if x is None else ListDecimal(x) for x in cell.as_py()]
    return cell.as_py()


# ----------------------------------------------------------------------------- jsonb text


def jsonb_text(value: Any) -> str:
    """A JSON value as Postgres' jsonb prints it: ``{"a": 1, "bb": [1, 2]}``, an object's
    keys shorter first, then by their bytes (jsonb's order, not the order written), ", " and
    ": " between items, numbers as numeric prints them (1e2 is 100, 2.50 keeps its zero
    when parsed as a Decimal), only quotes, backslashes and control characters escaped."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + jsonb_text(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(x) for x in value) + "]"
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, decimal.Decimal):
        text = format(value, "f")
        return text[1:] if value.is_zero() and text.startswith("-") else text
    if isinstance(value, float):
        return format(decimal.Decimal(repr(value)), "f")
    return json.dumps(value, ensure_ascii=False)


def jsonb_text_of(raw: str) -> str:
    """JSON text (as stored, or as DuckDB holds it) -> jsonb's text; the last of repeated keys wins."""
    return jsonb_text(json.loads(raw, parse_float=decimal.Decimal, parse_int=decimal.Decimal))


# ----------------------------------------------------------------------------- x::text

# the lists duck_array_text takes, by DuckDB element type (JSONB: the elements' JSON text, as VARCHAR)
ARRAY_TEXT_ELEMENTS = ("VARCHAR", "BOOLEAN", "FLOAT", "DOUBLE", "JSONB")


def duck_array_text(element: str, items: list[Any] | None) -> str | None:
    """``arr::text`` as Postgres prints it, from a DuckDB list of ``element`` (one of
    ARRAY_TEXT_ELEMENTS: integers, text and uuids arrive as their text, which is Postgres')."""
    if items is None:
        return None
    if element == "BOOLEAN":
        return array_text(items, lambda x: "t" if x else "f")
    if element in ("FLOAT", "DOUBLE"):
        from .pgvector import float_text

        single = element == "FLOAT"
        return array_text(items, lambda x: float_text(float(x), single))
    if element == "JSONB":  # each element's JSON text, normalized as jsonb prints it
        return array_text(items, jsonb_text_of)
    return array_text(items, str)
