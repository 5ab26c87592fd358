"""Bind parameters that keep the type the client declared for them (``pg_oid``).

A parameter the client sent as ``int2``, ``int8`` or ``float4`` is a Python int or float
once decoded, and DuckDB would bind it by its value (INTEGER for a small int8, DOUBLE for
a float4): ``SELECT $1`` would then answer ``int4``/``float8`` and ``pg_typeof($1)`` name
the wrong type. These subclasses still are ints, floats and strings to every check the SQL
layer makes; numbers bind as the declared type (``duck()``), and ``pg_typeof`` reads
``pg_oid``.
"""

from __future__ import annotations

from typing import Any

import duckdb

from .oids import (
    DATE,
    FLOAT4,
    FLOAT4_ARRAY,
    INT2,
    INT2_ARRAY,
    INT8,
    INT8_ARRAY,
    INTERVAL,
    JSON,
    JSONB,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
)


class Int2Parameter(int):
    """A parameter the client typed ``int2``."""

    pg_oid = INT2

    def duck(self) -> duckdb.Value:
        return duckdb.ShortValue(int(self))


class Int8Parameter(int):
    """A parameter the client typed ``int8``."""

    pg_oid = INT8

    def duck(self) -> duckdb.Value:
        return duckdb.LongValue(int(self))


class Float4Parameter(float):
    """A parameter the client typed ``float4``."""

    pg_oid = FLOAT4

    def duck(self) -> duckdb.Value:
        return duckdb.FloatValue(float(self))


class TypedText(str):
    """A parameter's text that SQL reads as the type the client declared (``pg_oid``): json,
    jsonb, or a date/time type (kept as text: infinity and BC dates have no Python value)."""

    pg_oid: int

    def __new__(cls, text: str, oid: int) -> TypedText:
        self = super().__new__(cls, text)
        self.pg_oid = oid
        return self


TEXT_TYPED = {JSON: "json", JSONB: "jsonb", DATE: "date", TIME: "time", TIMESTAMP: "timestamp",
              TIMESTAMPTZ: "timestamptz", INTERVAL: "interval"}


TypedParameter = Int2Parameter | Int8Parameter | Float4Parameter

_WRAPPERS: dict[int, type] = {INT2: Int2Parameter, INT2_ARRAY: Int2Parameter, INT8: Int8Parameter,
                              INT8_ARRAY: Int8Parameter, FLOAT4: Float4Parameter, FLOAT4_ARRAY: Float4Parameter}


def typed(value: Any, oid: int) -> Any:
    """``value`` (a decoded parameter of type ``oid``, or an array of them) with the type kept."""
    if oid in TEXT_TYPED and isinstance(value, str):
        return TypedText(value, oid)
    wrap = _WRAPPERS.get(oid)
    if wrap is None:
        return value
    return _wrap(value, wrap)


def _wrap(value: Any, wrap: type) -> Any:
    if isinstance(value, list):
        return [_wrap(v, wrap) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return wrap(value)
    return value
