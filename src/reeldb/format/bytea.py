"""PostgreSQL's byte functions that DuckDB lacks: ``get_byte`` and ``set_byte``, with
PostgreSQL's range check (2202E) and its truncation of the new value to its low 8 bits."""

from __future__ import annotations

from .. import errors


def _check(data: bytes, n: int) -> None:
    if not 0 <= n < len(data):
        raise errors.ArraySubscriptError(f"index {n} out of valid range, 0..{len(data) - 1}")


def get_byte(data: bytes, n: int) -> int:
    _check(data, n)
    return data[n]


def set_byte(data: bytes, n: int, value: int) -> bytes:
    _check(data, n)
    return data[:n] + bytes([value & 0xFF]) + data[n + 1:]


# name -> (function, DuckDB argument types, DuckDB result type); NULL in, NULL out
FUNCTIONS = {"get_byte": (get_byte, ["BLOB", "INTEGER"], "INTEGER"),
             "set_byte": (set_byte, ["BLOB", "INTEGER", "INTEGER"], "BLOB")}
