"""Checking scalar values on the way into a Parquet column, with Postgres' error codes.

Python values come from parameters and literals; Arrow arrays come from INSERT ... SELECT,
UPDATE and bulk inserts. Both end as an Arrow array of the column's storage type, or a
DataError that names the column and the value, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import errors
from .arrays import ARRAY_KINDS, ListDecimal
from .ranges import KINDS as RANGE_KINDS
from .types import ColumnType

_INT_RANGES = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_INT_NAMES = {"int16": "smallint", "int32": "integer", "int64": "bigint"}
_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _bad(ctype: ColumnType, v: Any, column: str) -> errors.Error:
    return errors.InvalidTextRepresentation(
        f'invalid input syntax for type {ctype.sql()}: "{_short(v)}" (column {column})'
    )


def _short(v: Any, n: int = 60) -> str:
    s = v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _mismatch(ctype: ColumnType, v: Any, column: str) -> errors.Error:
    return errors.DatatypeMismatch(
        f"column {column} is of type {ctype.sql()} but the value is of type {type(v).__name__}"
    )


def _int(ctype: ColumnType, column: str) -> Callable[[Any], int]:
    lo, hi = _INT_RANGES[ctype.kind]

    def conv(v: Any) -> int:
        if isinstance(v, (bool, np.bool_)):
            raise _mismatch(ctype, v, column)
        if isinstance(v, (int, np.integer)):
            out = int(v)
        elif isinstance(v, (float, np.floating, decimal.Decimal)):
            if v != v or v in (float("inf"), float("-inf")):
                raise errors.NumericValueOutOfRange(f"{_INT_NAMES[ctype.kind]} out of range (column {column})")
            out = int(decimal.Decimal(str(v)).to_integral_value(decimal.ROUND_HALF_UP))
        elif isinstance(v, str):
            try:
                out = int(v.strip())
            except ValueError:
                raise _bad(ctype, v, column) from None
        else:
            raise _mismatch(ctype, v, column)
        if not lo <= out <= hi:
            raise errors.NumericValueOutOfRange(f"{_INT_NAMES[ctype.kind]} out of range (column {column}: {out})")
        return out

    return conv


def _float(ctype: ColumnType, column: str) -> Callable[[Any], float]:
    real = ctype.kind == "float32"

    def conv(v: Any) -> float:
        if isinstance(v, (bool, np.bool_)):
            raise _mismatch(ctype, v, column)
        if isinstance(v, (int, float, np.integer, np.floating, decimal.Decimal)):
            try:
                f = float(v)
            except OverflowError:  # an int beyond any double
                f = math.inf
            explicit = isinstance(v, float | np.floating) or (isinstance(v, decimal.Decimal) and v.is_infinite())
            if math.isinf(f) and not explicit:
                raise errors.NumericValueOutOfRange(f"value out of range: overflow (column {column}: {_short(v)})")
            if real:
                _check_real(f, f"{v}", column, text=False)
            return f
        if isinstance(v, str):
            try:
                f = float(v.strip())
            except ValueError:
                raise _bad(ctype, v, column) from None
            if math.isinf(f) and v.strip().lstrip("+-").lower() not in ("inf", "infinity"):
                raise errors.NumericValueOutOfRange(
                    f'"{_short(v.strip())}" is out of range for type {ctype.sql()} (column {column})')
            if real:
                _check_real(f, v.strip(), column, text=True)
            return f
        raise _mismatch(ctype, v, column)

    return conv


def _check_real(f: float, written: str, column: str, text: bool) -> None:
    """Postgres refuses a finite value that float4 cannot hold: it would become infinity
    (overflow) or zero (underflow). Infinity itself is a real."""
    with np.errstate(over="ignore", under="ignore"):
        r = float(np.float32(f))
    over, under = math.isinf(r) and not math.isinf(f), r == 0.0 and f != 0.0
    if not (over or under):
        return
    if text:
        raise errors.NumericValueOutOfRange(f'"{_short(written)}" is out of range for type real (column {column})')
    raise errors.NumericValueOutOfRange(
        f"value out of range: {'overflow' if over else 'underflow'} (column {column}: {_short(written)})")


def _bool(ctype: ColumnType, column: str) -> Callable[[Any], bool]:
    def conv(v: Any) -> bool:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, str):
            s = v.strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise _bad(ctype, v, column)
        raise _mismatch(ctype, v, column)

    return conv


def _text(ctype: ColumnType, column: str) -> Callable[[Any], str]:
    limit = ctype.length

    def conv(v: Any) -> str:
        if isinstance(v, str):
            s = v
        elif isinstance(v, (bool, int, float, decimal.Decimal, np.number, uuid.UUID, dt.date, dt.time)):
            s = str(v)
        else:
            raise _mismatch(ctype, v, column)
        if "\x00" in s:
            raise errors.DataError(f"invalid byte sequence: text cannot contain NUL (column {column})",
                                   sqlstate="22021")
        if limit is not None and len(s) > limit:
            raise errors.StringDataRightTruncation(
                f"value too long for type character varying({limit}) (column {column}: {len(s)} characters)"
            )
        return s

    return conv


def _numeric(ctype: ColumnType, column: str) -> Callable[[Any], decimal.Decimal]:
    p, s = ctype.numeric_ps()
    quantum = decimal.Decimal(1).scaleb(-s)
    unconstrained = ctype.precision is None

    def conv(v: Any) -> decimal.Decimal:
        if isinstance(v, (bool, np.bool_)):
            raise _mismatch(ctype, v, column)
        if isinstance(v, (int, float, decimal.Decimal, np.number, str)):
            # a float as PostgreSQL turns float8 (float4) into numeric: 15 (6) significant digits
            text = format(float(v), ".6g" if isinstance(v, np.float32) else ".15g") \
                if isinstance(v, float | np.floating) else str(v).strip()
            try:
                d = decimal.Decimal(text)
            except decimal.InvalidOperation:
                raise _bad(ctype, v, column) from None
            if not d.is_finite():
                raise errors.NumericValueOutOfRange(f"numeric field overflow (column {column}: {v})")
            exp = d.as_tuple().exponent
            if unconstrained and isinstance(exp, int) and -exp > s and d != d.quantize(quantum):
                # PostgreSQL's NUMERIC keeps every digit; reeldb's keeps s places: refuse, never round
                raise errors.FeatureNotSupported(
                    f"column {column}: {v} has more than {s} decimal places, which a NUMERIC column "
                    f"without a scale keeps in reeldb; declare it NUMERIC(p, s) to round to s places")
            d = d.quantize(quantum, rounding=decimal.ROUND_HALF_UP)
            if d.adjusted() >= p - s:
                raise errors.NumericValueOutOfRange(
                    f"numeric field overflow (column {column}: {v} does not fit numeric({p},{s}))"
                )
            return d
        raise _mismatch(ctype, v, column)

    return conv


def _date(ctype: ColumnType, column: str) -> Callable[[Any], dt.date]:
    def conv(v: Any) -> dt.date:
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip()[:10]) if len(v.strip()) > 10 else dt.date.fromisoformat(v.strip())
            except ValueError:
                raise errors.DataError(f'invalid input syntax for type date: "{_short(v)}" (column {column})',
                                       sqlstate="22007") from None
        raise _mismatch(ctype, v, column)

    return conv


_TIME_TEXT = re.compile(r"\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?\s*")


def _interval(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """interval has no Parquet type (Arrow's month_day_nano_interval cannot be written), so a
    row of a table with an interval column cannot be stored yet: refused (0A000), where it
    failed with an internal error."""
    raise errors.FeatureNotSupported(f'interval columns cannot be written yet (column "{column}"): reeldb has no '
                                     "stored form for them; use a temporary table, or a BIGINT of microseconds")


def _time(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """time: a ``datetime.time`` as is; text in Postgres' common form ``HH:MM[:SS[.ffffff]]``
    (other forms Postgres reads, such as ``04:05 PM`` or ``040506``, are refused: 0A000)."""
    def conv(v: Any) -> Any:
        if not isinstance(v, str):
            return v
        m = _TIME_TEXT.fullmatch(v)
        if m is None:
            raise errors.FeatureNotSupported(f'time input "{_short(v)}" is not supported: write HH:MM[:SS[.ffffff]] '
                                             f"(column {column})")
        h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or sec > 59:
            if (h, mi, sec) == (24, 0, 0) or sec == 60:
                raise errors.FeatureNotSupported(f'time "{_short(v)}" is not supported (column {column})')
            raise errors.DataError(f'date/time field value out of range: "{_short(v)}" (column {column})',
                                   sqlstate="22008")
        return dt.time(h, mi, sec, int((m.group(4) or "0").ljust(6, "0")))

    return conv


def _timestamp(ctype: ColumnType, column: str) -> Callable[[Any], dt.datetime]:
    aware = ctype.kind == "timestamptz"

    def conv(v: Any) -> dt.datetime:
        if isinstance(v, np.datetime64):
            v = v.astype("datetime64[us]").item()
        if isinstance(v, str):
            s = v.strip()
            if s.lower() in ("now", "today"):
                v = dt.datetime.now(dt.timezone.utc)
            else:
                try:
                    v = dt.datetime.fromisoformat(s.replace(" UTC", "+00:00"))
                except ValueError:
                    raise errors.DataError(
                        f'invalid input syntax for type {ctype.sql()}: "{_short(s)}" (column {column})',
                        sqlstate="22007",
                    ) from None
        elif isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            v = dt.datetime(v.year, v.month, v.day)
        if not isinstance(v, dt.datetime):
            raise _mismatch(ctype, v, column)
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc)
            return v if aware else v.replace(tzinfo=None)
        return v.replace(tzinfo=dt.timezone.utc) if aware else v

    return conv


def _uuid(ctype: ColumnType, column: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if isinstance(v, uuid.UUID):
            return str(v)
        if isinstance(v, str):
            try:
                return str(uuid.UUID(v.strip()))
            except ValueError:
                raise _bad(ctype, v, column) from None
        raise _mismatch(ctype, v, column)

    return conv


def _json(ctype: ColumnType, column: str) -> Callable[[Any], str]:
    if ctype.kind == "jsonb":
        return _jsonb(_json(ColumnType("json"), column), column)

    def conv(v: Any) -> str:
        if isinstance(v, str):
            try:
                json.loads(v)
            except ValueError as e:
                raise errors.InvalidTextRepresentation(
                    f'invalid input syntax for type json: "{_short(v)}" (column {column}: {e.msg})'
                ) from None
            return v
        try:
            return json.dumps(v, allow_nan=False, default=_json_default)
        except (TypeError, ValueError) as e:
            raise errors.InvalidTextRepresentation(
                f"value for column {column} cannot be stored as JSON: {e}"
            ) from None

    return conv


def _jsonb(as_json: Callable[[Any], str], column: str) -> Callable[[Any], str]:
    """A jsonb value is read by jsonb's rules (no NaN, no \\u0000, numbers within numeric's
    range) and kept in jsonb's canonical text, as PostgreSQL keeps it."""
    from . import jsonb

    def conv(v: Any) -> str:
        text = as_json(v)
        try:
            return jsonb.canonical_text(text)  # type: ignore[return-value]  # str in, str out
        except errors.Error as e:
            raise type(e)(f"{e} (column {column})") from None

    return conv


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating, np.bool_)):
        return o.item()
    if isinstance(o, (dt.date, dt.datetime, uuid.UUID, decimal.Decimal)):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _bits(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """bit(n) / bit varying(n): text of 0s and 1s (bytes: DuckDB's BIT, from INSERT ... SELECT)."""
    from .pgvector import check_bit_length, duck_bits, parse_bit_text

    def conv(v: Any) -> str:
        if isinstance(v, bytes | bytearray | memoryview):
            bits = duck_bits(bytes(v))
        elif isinstance(v, str):
            bits = parse_bit_text(v)
        else:
            raise errors.DatatypeMismatch(f"column {column} is {ctype.sql()}: a {type(v).__name__} is not a bit string")
        return check_bit_length(bits, ctype.length, ctype.kind == "varbit", column)

    return conv


def _vector_arrays(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """vector[] / halfvec[] / sparsevec[]: a list of vectors (or their array text
    ``{"[1,2]","[3,4]"}``), each checked as the element type checks it; NULL elements kept."""
    from .pgvector import parse_sparse_text, split_array_text
    from .types import VECTOR_ARRAY_KINDS, check_matrix, column_type, parse_vector_text

    element = VECTOR_ARRAY_KINDS[ctype.kind]

    def conv(v: Any) -> list[Any]:
        if isinstance(v, str):
            items: list[Any] = split_array_text(v, column)
        else:
            items = list(v)
        if any(isinstance(x, list) and x and (isinstance(x[0], list | str | np.ndarray)) for x in items):
            raise errors.FeatureNotSupported(f"column {column}: arrays of {element} of more than one dimension "
                                             "are not supported")
        dims = {len(x) if not isinstance(x, str) else None for x in items if x is not None}
        dim = ctype.length or (next(iter(dims)) if len(dims) == 1 and None not in dims else None)
        out: list[Any] = []
        for x in items:
            if x is None:
                out.append(None)
                continue
            if dim is None:  # elements of different (or textual) sizes: each checked on its own
                if isinstance(x, str):
                    x = parse_sparse_text(x, f"column {column}") if element == "sparsevec" else parse_vector_text(x, column)
                one = column_type(element, [max(len(x), 1)])
            else:
                one = column_type(element, [dim])
            got = check_matrix(one, column, [x]).values[0]
            out.append(got.astype(np.float32).tolist())
        return out

    return conv


def _citext(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """citext: text, refused where reeldb's comparison would differ (format/citext.py)."""
    from .citext import check

    text = _text(ctype, column)
    return lambda v: check(text(v), f" (column {column})")


def _hstore(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """hstore: a dict, pairs or hstore's text, stored in hstore's pair order."""
    from .hstore import from_python

    return from_python


def _range(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """int4range ... tstzrange: a Range (reeldb's or psycopg's), a range literal or a stored
    struct, its bounds read as the subtype's column reads them (format/ranges.py); their
    multiranges: ranges, a multirange literal or a stored struct, normalized."""
    from .ranges import KINDS, MULTI, RangeError, from_python, kind_of_number, multi_from_python

    kind = KINDS[ctype.kind] if ctype.kind in KINDS else MULTI[ctype.kind]
    sub = _CONVERTERS[kind.sub_kind](ColumnType(kind.sub_kind), column)

    def conv(v: Any) -> Any:
        try:
            if ctype.kind == kind.multi:
                return multi_from_python(kind, v, lambda b: kind_of_number(kind, sub(b)))
            return from_python(kind, v, lambda b: kind_of_number(kind, sub(b)))
        except RangeError as e:
            raise errors.DataError(f"{e.message} (column {column})", sqlstate=e.sqlstate) from None

    return conv


def _arrays(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    """int[] / text[] / ...: each element checked as a column of the element type checks it."""
    from .arrays import array_converter, bytea_in

    element = ctype.element()
    if element.kind == "bytea":
        conv = lambda v: bytea_in(v, column)  # noqa: E731
    elif element.kind in ("text", "varchar"):  # a boolean element reads as Postgres' bool::text
        text = _CONVERTERS[element.kind](element, column)

        def conv(v: Any) -> Any:
            if isinstance(v, ListDecimal):
                raise errors.FeatureNotSupported(f"storing a numeric array in column {column} ({ctype.sql()}) is "
                                                  "not supported: cast its elements to text first")
            return ("true" if v else "false") if isinstance(v, bool | np.bool_) else text(v)
    else:
        conv = _CONVERTERS[element.kind](element, column)
    return array_converter(ctype.sql(), column, element.kind, conv)


def _passthrough(ctype: ColumnType, column: str) -> Callable[[Any], Any]:
    return lambda v: v


_CONVERTERS: dict[str, Callable[[ColumnType, str], Callable[[Any], Any]]] = {
    "int16": _int, "int32": _int, "int64": _int, "float32": _float, "float64": _float,
    "bool": _bool, "text": _text, "varchar": _text, "numeric": _numeric, "date": _date,
    "timestamp": _timestamp, "timestamptz": _timestamp, "uuid": _uuid, "json": _json,
    "jsonb": _json, "time": _time, "interval": _interval, "bit": _bits, "varbit": _bits,
    "vector_array": _vector_arrays, "halfvec_array": _vector_arrays, "sparsevec_array": _vector_arrays,
    "citext": _citext, "hstore": _hstore,
}
_CONVERTERS.update({kind: _arrays for kind in ARRAY_KINDS})
_CONVERTERS.update({kind: _range for kind in RANGE_KINDS})
_CONVERTERS.update({kind.multi: _range for kind in RANGE_KINDS.values()})
_RANGE_COLUMNS = frozenset(RANGE_KINDS) | frozenset(kind.multi for kind in RANGE_KINDS.values())


def check_scalars(ctype: ColumnType, column: str, values: list[Any]) -> pa.Array:
    """Python values -> Arrow array of the column's storage type."""
    conv = _CONVERTERS[ctype.kind](ctype, column)
    out = [None if v is None else conv(v) for v in values]
    try:
        return pa.array(out, type=ctype.arrow())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        raise errors.DataError(f"column {column}: {e}") from None


_FAST_CASTS = {"int16", "int32", "int64", "float32", "float64", "bool", "date", "timestamp", "timestamptz"}


def _check_reals(source: pa.Array, cast: pa.Array, column: str) -> None:
    """Doubles cast to float4: no finite value may have become infinity or zero."""
    src = source.to_numpy(zero_copy_only=False)
    got = cast.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        bad = (np.isinf(got) & np.isfinite(src)) | ((got == 0) & (src != 0) & ~np.isnan(src))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _check_real(float(src[i]), repr(float(src[i])), column, text=False)


def _plain_elements(kind: str) -> bool:
    """Does an Arrow list of the column's storage type need no check of its elements?"""
    return ARRAY_KINDS[kind] in ("int16", "int32", "int64", "float32", "float64", "numeric", "bool", "text",
                                 "bytea", "date", "timestamp", "timestamptz")


def _texts_of_list(arr: pa.Array, column: str, ctype: ColumnType) -> list[Any]:
    """Lists from DuckDB (INSERT ... SELECT, UPDATE) for a text[] column: their elements as
    Postgres' assignment to text prints them. A float4 element prints float4's digits;
    numeric elements are refused, since DuckDB gave the list one scale where Postgres keeps
    each element's own (ARRAY[1.5, 2]::text[] is {1.5,2}, not {1.5,2.0})."""
    from .pgvector import float_text

    value = arr.type.value_type
    if pa.types.is_floating(value):
        single = value.bit_width < 64
        return [None if v is None else [None if x is None else float_text(x, single) for x in v]
                for v in arr.to_pylist()]
    if not (pa.types.is_string(value) or pa.types.is_large_string(value) or pa.types.is_integer(value)
            or pa.types.is_boolean(value) or pa.types.is_date(value) or pa.types.is_null(value)):
        raise errors.FeatureNotSupported(
            f"storing an array of {value} in column {column} ({ctype.sql()}) is not supported: "
            "cast its elements to text first")
    return arr.to_pylist()


def scalars_from_arrow(ctype: ColumnType, column: str, arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Arrow array (from DuckDB or a user's table) -> storage type, cast when lossless."""
    target = ctype.arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type == target and ctype.kind not in ("json", "jsonb", "varchar", "uuid", "bit", "varbit", "citext", "hstore",
                                                 "vector_array", "halfvec_array", "sparsevec_array") \
            and not (ctype.kind in ARRAY_KINDS and not _plain_elements(ctype.kind)) \
            and ctype.kind not in _RANGE_COLUMNS:  # a range struct is checked: canonical, bounds in order
        return arr
    if ctype.kind in _FAST_CASTS and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                                      or pa.types.is_boolean(arr.type) or pa.types.is_temporal(arr.type)
                                      or pa.types.is_null(arr.type)):
        if ctype.kind.startswith("int") and pa.types.is_floating(arr.type):
            return check_scalars(ctype, column, arr.to_pylist())
        if pa.types.is_timestamp(arr.type) and ctype.kind == "timestamp" and arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        try:
            out = pc.cast(arr, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # fall through: the slow path names the bad value
        else:
            if ctype.kind == "float32" and pa.types.is_floating(arr.type) and arr.type.bit_width > 32:
                _check_reals(arr, out, column)
            return out
    if ctype.kind in ("text_array", "varchar_array") and (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return check_scalars(ctype, column, _texts_of_list(arr, column, ctype))
    if pa.types.is_string(arr.type) and ctype.kind == "text":
        return arr
    if pa.types.is_large_string(arr.type) and ctype.kind == "text":
        return arr.cast(pa.string())
    if ctype.kind == "numeric" and pa.types.is_float32(arr.type):  # float4 -> numeric: 6 digits
        return check_scalars(ctype, column, [None if v is None else np.float32(v) for v in arr.to_pylist()])
    return check_scalars(ctype, column, arr.to_pylist())
