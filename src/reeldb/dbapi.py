"""PEP 249's type objects and constructors.

``cursor.description[i][1]`` is the column's SQL type as a string (``'INTEGER'``,
``'DECIMAL(10,2)'``, ``'TIMESTAMP WITH TIME ZONE'``); PEP 249 asks that it compare equal to one
of ``STRING``, ``BINARY``, ``NUMBER``, ``DATETIME`` or ``ROWID``, which these objects do, so
generic DB-API code (``if code == reeldb.NUMBER``) works as with any driver.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

_BASE = re.compile(r"[A-Z ]+")


class DBAPITypeObject:
    """Equal to every type code whose base name (before any ``(`` or ``[``) is in its set."""

    def __init__(self, name: str, *bases: str):
        self.name = name
        self.bases = frozenset(bases)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        if not isinstance(other, str):
            return NotImplemented
        code = other.strip().upper()
        if code.endswith("]"):  # an array (a vector, a tensor): none of PEP 249's kinds
            return False
        if code.startswith("STRUCT(KIND VARCHAR"):  # how BYTEA / IMAGE / VIDEO cells are stored
            return "BYTEA" in self.bases
        m = _BASE.match(code)
        return bool(m) and m.group(0).strip() in self.bases

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"reeldb.{self.name}"


STRING = DBAPITypeObject("STRING", "VARCHAR", "TEXT", "CHAR", "BPCHAR", "JSON", "JSONB", "UUID", "ENUM")
BINARY = DBAPITypeObject("BINARY", "BLOB", "BYTEA", "IMAGE", "VIDEO", "BIT")
NUMBER = DBAPITypeObject("NUMBER", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                         "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL",
                         "NUMERIC", "BOOLEAN")
DATETIME = DBAPITypeObject("DATETIME", "DATE", "TIME", "TIMESTAMP", "TIME WITH TIME ZONE",
                           "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMETZ", "INTERVAL")
# reeldb's row ids (the hidden _rowid column) are BIGINT to SQL: no column is typed ROWID
ROWID = DBAPITypeObject("ROWID", "ROWID")


def Date(year: int, month: int, day: int) -> dt.date:  # noqa: N802 - PEP 249's names
    return dt.date(year, month, day)


def Time(hour: int, minute: int, second: int) -> dt.time:  # noqa: N802
    return dt.time(hour, minute, second)


def Timestamp(year: int, month: int, day: int, hour: int, minute: int, second: int) -> dt.datetime:  # noqa: N802
    return dt.datetime(year, month, day, hour, minute, second)


def DateFromTicks(ticks: float) -> dt.date:  # noqa: N802
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> dt.time:  # noqa: N802
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> dt.datetime:  # noqa: N802
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(data: Any) -> bytes:  # noqa: N802
    return bytes(data)
