"""Dates, times and timestamps on the wire, from and to their integer form.

Python's ``datetime`` covers years 1..9999 only, while Postgres (and DuckDB) go from
4713 BC to far after 9999, and both have ``infinity`` / ``-infinity``. So result
columns are encoded straight from Arrow's integers (days, microseconds) with the
proleptic Gregorian calendar, and binary parameters are decoded to Python values
where Python can hold them, else to the text the SQL layer coerces like any text
parameter. Values outside Postgres' range are refused with 22008, as Postgres does.

Postgres' binary forms (``date_send``, ``timestamp_send``, ``time_send``,
``timetz_send``): days or microseconds since 2000-01-01 (midnight for times), big
endian; infinity is INT32_MAX / INT64_MAX, -infinity INT32_MIN / INT64_MIN.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .. import errors

INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
_DUCK_INFINITY_DAYS = 2**31 - 1  # DuckDB's date infinity; -infinity is its negation
_DUCK_INFINITY_TS = 2**63 - 1  # DuckDB's timestamp infinity, in any unit

UNIX_TO_PG_DAYS = 10957  # 1970-01-01 -> 2000-01-01
DAY_US = 86_400_000_000
# Postgres' range: Julian day 0 (4714-11-24 BC) up to, not including, 5874898-01-01 for
# dates and 294277-01-01 for timestamps; in days / microseconds since 2000-01-01
PG_MIN_DAY = -2451545
PG_END_DAY = 2145031949
PG_MIN_TS = PG_MIN_DAY * DAY_US
PG_END_TS = 9223371331200000000

PG_EPOCH = dt.datetime(2000, 1, 1)  # the zero of Postgres' binary dates and timestamps
PG_EPOCH_DATE = dt.date(2000, 1, 1)


class OutOfRange(errors.DataError):
    """A date or timestamp outside Postgres' range (22008)."""

    def __init__(self, message: str):
        super().__init__(message, sqlstate="22008")


# ----------------------------------------------------------------------------- calendar


def civil(days_since_2000: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count, proleptic Gregorian; year 0 is 1 BC."""
    z = days_since_2000 + UNIX_TO_PG_DAYS + 719468  # Hinnant's days_from_civil, inverted
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def day_number(year: int, month: int, day: int) -> int:
    """Days since 2000-01-01 of a proleptic Gregorian date (year 0 is 1 BC)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 - UNIX_TO_PG_DAYS


def _date_text(days: int) -> tuple[str, bool]:
    """``YYYY-MM-DD`` (at least four year digits) and whether it is BC."""
    y, m, d = civil(days)
    bc = y <= 0
    return f"{(1 - y) if bc else y:04d}-{m:02d}-{d:02d}", bc


def _clock(micros: int) -> str:
    """``HH:MM:SS[.ffffff]`` with trailing zeros of the fraction dropped, as Postgres."""
    sec, frac = divmod(micros, 1_000_000)
    text = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
    return text + f".{frac:06d}".rstrip("0") if frac else text


# ----------------------------------------------------------------------------- output


def date_days(raw: int) -> int | None:
    """Days since 2000-01-01 of DuckDB's date32 value; None for +-infinity."""
    if raw in (_DUCK_INFINITY_DAYS, -_DUCK_INFINITY_DAYS):
        return None
    days = raw - UNIX_TO_PG_DAYS
    if not PG_MIN_DAY <= days < PG_END_DAY:
        raise OutOfRange(f"date out of range: {_date_text(days)[0]}")
    return days


def ts_micros(raw: int, per_second: int) -> int | None:
    """Microseconds since 2000-01-01 of DuckDB's timestamp value in its unit; None for
    +-infinity. Postgres keeps microseconds: a TIMESTAMP_NS value's last digits go."""
    if raw in (_DUCK_INFINITY_TS, -_DUCK_INFINITY_TS):
        return None
    if per_second == 1_000_000:
        micros = raw
    elif per_second > 1_000_000:
        micros = raw // (per_second // 1_000_000)
    else:
        micros = raw * (1_000_000 // per_second)
    micros -= UNIX_TO_PG_DAYS * DAY_US
    if not PG_MIN_TS <= micros < PG_END_TS:
        raise OutOfRange("timestamp out of range")
    return micros


def date_out(raw: int, binary: bool) -> bytes:
    days = date_days(raw)
    if binary:
        if days is None:
            return struct.pack("!i", INT32_MAX if raw > 0 else INT32_MIN)
        return struct.pack("!i", days)
    if days is None:
        return b"infinity" if raw > 0 else b"-infinity"
    text, bc = _date_text(days)
    return (text + " BC" if bc else text).encode()


def timestamp_out(raw: int, per_second: int, with_zone: bool, binary: bool) -> bytes:
    micros = ts_micros(raw, per_second)
    if binary:
        if micros is None:
            return struct.pack("!q", INT64_MAX if raw > 0 else INT64_MIN)
        return struct.pack("!q", micros)
    if micros is None:
        return b"infinity" if raw > 0 else b"-infinity"
    days, clock = divmod(micros, DAY_US)
    text, bc = _date_text(days)
    text += " " + _clock(clock) + ("+00" if with_zone else "")  # the session's TimeZone is UTC
    return (text + " BC" if bc else text).encode()


def time_out(micros: int, binary: bool) -> bytes:
    return struct.pack("!q", micros) if binary else _clock(micros).encode()


def column_encoder(arrow_type: pa.DataType, binary: bool) -> Callable[[int], bytes] | None:
    """An encoder of the raw integers of a date, timestamp or time Arrow column; None
    for other types."""
    if pa.types.is_date32(arrow_type):
        return lambda v: date_out(v, binary)
    if pa.types.is_timestamp(arrow_type):
        per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[arrow_type.unit]
        with_zone = arrow_type.tz is not None
        return lambda v: timestamp_out(v, per_second, with_zone, binary)
    if pa.types.is_time64(arrow_type) or pa.types.is_time32(arrow_type):
        scale = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": 1}[arrow_type.unit]
        if arrow_type.unit == "ns":
            return lambda v: time_out(v // 1000, binary)
        return lambda v: time_out(v * scale, binary)
    return None


# ----------------------------------------------------------------------------- input


def date_in(b: bytes) -> Any:
    """A binary date parameter: a ``date``, or text for what Python cannot hold."""
    (days,) = struct.unpack("!i", b)
    if days == INT32_MAX:
        return "infinity"
    if days == INT32_MIN:
        return "-infinity"
    if not PG_MIN_DAY <= days < PG_END_DAY:
        raise OutOfRange("date out of range")
    y, _, _ = civil(days)
    if 1 <= y <= 9999:
        return PG_EPOCH_DATE + dt.timedelta(days=days)
    text, bc = _date_text(days)
    return text + " (BC)" if bc else text  # DuckDB's spelling of BC


def timestamp_in(b: bytes, with_zone: bool) -> Any:
    """A binary timestamp parameter: a ``datetime``, or text outside Python's years."""
    (micros,) = struct.unpack("!q", b)
    if micros == INT64_MAX:
        return "infinity"
    if micros == INT64_MIN:
        return "-infinity"
    if not PG_MIN_TS <= micros < PG_END_TS:
        raise OutOfRange("timestamp out of range")
    days, clock = divmod(micros, DAY_US)
    y, _, _ = civil(days)
    if 1 <= y <= 9999:
        value = PG_EPOCH + dt.timedelta(microseconds=micros)
        return value.replace(tzinfo=dt.timezone.utc) if with_zone else value
    text, bc = _date_text(days)
    text += " " + _clock(clock) + ("+00" if with_zone else "")
    return text + " (BC)" if bc else text


def time_in(b: bytes) -> Any:
    """A binary time parameter (microseconds since midnight, 00:00 to 24:00)."""
    (micros,) = struct.unpack("!q", b)
    if not 0 <= micros <= DAY_US:
        raise errors.DataError("time out of range", sqlstate="22008")
    if micros == DAY_US:
        return "24:00:00"
    sec, frac = divmod(micros, 1_000_000)
    return dt.time(sec // 3600, sec // 60 % 60, sec % 60, frac)


def timetz_in(b: bytes) -> str:
    """A binary timetz parameter (microseconds, then the zone in seconds west of UTC) as
    text: DuckDB's Python binding refuses a ``time`` whose offset is negative."""
    micros, west = struct.unpack("!qi", b)
    if not 0 <= micros < DAY_US:
        raise errors.DataError("time out of range", sqlstate="22008")
    if not -15 * 3600 - 59 * 60 <= west <= 15 * 3600 + 59 * 60:
        raise errors.DataError("time zone displacement out of range", sqlstate="22009")
    return _clock(micros) + _zone(west)


def _zone(west: int) -> str:
    """A zone in seconds west of UTC as Postgres spells it: -03, +05:30."""
    east = abs(west)
    zone = f"{'+' if west <= 0 else '-'}{east // 3600:02d}"
    if east % 3600:
        zone += f":{east // 60 % 60:02d}" + (f":{east % 60:02d}" if east % 60 else "")
    return zone


_TIMETZ_TEXT = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?")


def _timetz_parts(text: str) -> tuple[int, int]:
    """PostgreSQL's (and DuckDB's) text of a timetz -> (microseconds, seconds east of UTC)."""
    m = _TIMETZ_TEXT.fullmatch(text)
    if m is None:
        raise errors.DataError(f'invalid input syntax for type time with time zone: "{text}"', sqlstate="22007")
    h, mi, sec, frac, sign, zh, zm, zs = m.groups()
    micros = ((int(h) * 60 + int(mi)) * 60 + int(sec)) * 1_000_000 + int((frac or "").ljust(6, "0"))
    east = int(zh) * 3600 + int(zm or 0) * 60 + int(zs or 0)
    return micros, east if sign == "+" else -east


def timetz_text(v: Any) -> str:
    """A timetz result (DuckDB's text of it, or a Python time with its offset) as PostgreSQL
    writes it: ``01:02:03.5-10``, ``01:02:03+05:30``."""
    if isinstance(v, str):
        return v
    offset = v.utcoffset() or dt.timedelta(0)
    micros = ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    return _clock(micros) + _zone(-int(offset.total_seconds()))


def timetz_send(v: Any) -> bytes:
    """timetz's binary form: microseconds since midnight, then the zone in seconds west."""
    micros, east = _timetz_parts(timetz_text(v))
    return struct.pack("!qi", micros, -east)


def timetz_value(text: str) -> dt.time:
    """A timetz result as Python's time with its offset (24:00 has none: kept as text)."""
    micros, east = _timetz_parts(text)
    sec, frac = divmod(micros, 1_000_000)
    zone = dt.timezone(dt.timedelta(seconds=east))
    return dt.time(sec // 3600 % 24, sec // 60 % 60, sec % 60, frac, tzinfo=zone)
