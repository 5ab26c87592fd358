"""PEP 249's type objects and constructors.

``cursor.description[i][1]`` is the column's SQL type as a string (``'INTEGER'``,
``'DECIMAL(10,2)'``, ``'TIMESTAMP WITH TIME ZONE'``); PEP 249 asks that it compare equal to one
of ``STRING``, ``BINARY``, ``NUMBER``, ``DATETIME`` or ``ROWID``, which these objects do, so
generic DB-API code (``if code == reeldb.NUMBER``) works as with any driver. Which group a
type is in is the type registry's (``TypeInfo.pep249``); an array, a vector or a tensor is in
none. The hidden ``_rowid`` column's type code is ``BIGINT`` and compares equal to both
``NUMBER`` and ``ROWID``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from . import types as registry

_BASE = re.compile(r"[A-Z ]+")


class RowIdTypeCode(str):
    """The type code of the hidden ``_rowid`` column: ``BIGINT``, and PEP 249's ROWID."""


def type_group(code: str) -> str | None:
    """The PEP 249 group of a type code (a DuckDB type name, or the PostgreSQL name a
    result column is marked with): the group of the registry entry it names."""
    c = code.strip().upper()
    if c.endswith("]"):  # an array (a vector, a tensor): none of PEP 249's kinds
        return None
    if c.startswith("STRUCT(KIND VARCHAR"):  # how BYTEA / IMAGE / VIDEO cells are stored
        return registry.BY_OID[registry.BYTEA].pep249
    if c.startswith("ENUM("):  # an enum type's labels: text
        return registry.BY_OID[registry.TEXT].pep249
    if c == "ROWID":
        return "ROWID"
    info = registry.by_duck(c) or registry.by_name(c)
    if info is None:
        m = _BASE.match(c)  # DECIMAL(10,2), VARCHAR(3), TIMESTAMP_NS: the name before the modifiers
        base = m.group(0).strip() if m else ""
        info = registry.by_duck(base) or registry.by_name(base) or (
            registry.BY_OID[registry.NUMERIC] if base == "DECIMAL" else None)
    return None if info is None else info.pep249


class DBAPITypeObject:
    """Equal to every type code whose registry entry is in its PEP 249 group."""

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other is self
        if not isinstance(other, str):
            return NotImplemented
        if isinstance(other, RowIdTypeCode) and self.name == "ROWID":
            return True
        return type_group(str(other)) == self.name

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"reeldb.{self.name}"


TYPE_OBJECTS: dict[str, DBAPITypeObject] = {group: DBAPITypeObject(group) for group in registry.PEP249_GROUPS}
STRING, BINARY, NUMBER, DATETIME, ROWID = (TYPE_OBJECTS[g] for g in ("STRING", "BINARY", "NUMBER", "DATETIME", "ROWID"))


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
