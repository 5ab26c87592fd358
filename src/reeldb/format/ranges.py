"""PostgreSQL 16's built-in range types (int4range, int8range, numrange, daterange, tsrange,
tstzrange) and their multiranges as values: their one representation in DuckDB and Parquet, the parser of their
text, the canonical form, and the range operators and functions, as PostgreSQL's
rangetypes.c computes them.

A range is a DuckDB STRUCT whose fields are ordered so that DuckDB's own struct ordering
is PostgreSQL's range order (empty first, then by lower bound, -infinity first and an
inclusive bound before an exclusive one at the same value, then by upper bound), and whose
canonical form makes struct equality PostgreSQL's range equality:

    rng_nonempty    false only for 'empty' (every other field then false / NULL)
    rng_lower_fin   false for an infinite lower bound
    rng_lower       the lower bound's value (NULL when infinite)
    rng_lower_exc   true for an exclusive lower bound
    rng_upper_inf   true for an infinite upper bound
    rng_upper       the upper bound's value (NULL when infinite)
    rng_upper_inc   true for an inclusive upper bound

Discrete ranges (int4range, int8range, daterange) are always stored as ``[)``. A multirange
is ``STRUCT(mr_ranges <range struct>[])``: its ranges normalized (sorted, merged where they
overlap or touch, no empty ones), so DuckDB's list order and equality are PostgreSQL's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .. import errors
from .arrays import array_text

MAX_TEXT = 1 << 20  # a range literal longer than this is refused before it is read (22P02)

FIELDS = ("rng_nonempty", "rng_lower_fin", "rng_lower", "rng_lower_exc", "rng_upper_inf", "rng_upper",
          "rng_upper_inc")


@dataclass(frozen=True)
class RangeKind:
    """One built-in range type: its subtype as reeldb stores it, and its canonical step."""

    name: str  # int4range
    subtype: str  # PostgreSQL's name of the subtype (int4)
    sub_kind: str  # reeldb's column kind of the subtype (int32)
    sub_duck: str  # the subtype in DuckDB
    sub_arrow: pa.DataType
    step: Any = None  # discrete types: the distance to the next value; None for continuous ones
    multi: str = ""  # the name of its multirange type (int4multirange)

    @property
    def duck(self) -> str:
        """The DuckDB type of a value of this range type (as DuckDB prints it)."""
        return ("STRUCT(rng_nonempty BOOLEAN, rng_lower_fin BOOLEAN, rng_lower " + self.sub_duck
                + ", rng_lower_exc BOOLEAN, rng_upper_inf BOOLEAN, rng_upper " + self.sub_duck
                + ", rng_upper_inc BOOLEAN)")

    @property
    def multi_duck(self) -> str:
        """The DuckDB type of a value of its multirange type: its ranges, normalized."""
        return f"STRUCT(mr_ranges {self.duck}[])"

    @property
    def multi_arrow(self) -> pa.DataType:
        return pa.struct([("mr_ranges", pa.list_(self.arrow))])

    @property
    def arrow(self) -> pa.DataType:
        return pa.struct([("rng_nonempty", pa.bool_()), ("rng_lower_fin", pa.bool_()), ("rng_lower", self.sub_arrow),
                          ("rng_lower_exc", pa.bool_()), ("rng_upper_inf", pa.bool_()),
                          ("rng_upper", self.sub_arrow), ("rng_upper_inc", pa.bool_())])


KINDS: dict[str, RangeKind] = {k.name: k for k in (
    RangeKind("int4range", "int4", "int32", "INTEGER", pa.int32(), 1, "int4multirange"),
    RangeKind("int8range", "int8", "int64", "BIGINT", pa.int64(), 1, "int8multirange"),
    RangeKind("numrange", "numeric", "numeric", "DECIMAL(38,10)", pa.decimal128(38, 10), None, "nummultirange"),
    RangeKind("daterange", "date", "date", "DATE", pa.date32(), dt.timedelta(days=1), "datemultirange"),
    RangeKind("tsrange", "timestamp", "timestamp", "TIMESTAMP", pa.timestamp("us"), None, "tsmultirange"),
    RangeKind("tstzrange", "timestamptz", "timestamptz", "TIMESTAMP WITH TIME ZONE", pa.timestamp("us", tz="UTC"),
              None, "tstzmultirange"),
)}
MULTI: dict[str, RangeKind] = {k.multi: k for k in KINDS.values()}  # multirange name -> its range type
_LIMITS = {"int4range": (-(2**31), 2**31 - 1), "int8range": (-(2**63), 2**63 - 1)}


class RangeError(ValueError):
    """A range function's error, carrying PostgreSQL's SQLSTATE through DuckDB."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(f"SQLSTATE {sqlstate}: {message}")
        self.sqlstate, self.message = sqlstate, message


@dataclass(frozen=True)
class Range:
    """A range value as reeldb hands it to Python: ``lower`` / ``upper`` None when infinite,
    ``bounds`` one of ``[)``, ``[]``, ``()``, ``(]``; ``empty`` for the empty range."""

    lower: Any = None
    upper: Any = None
    bounds: str = "[)"
    empty: bool = False

    def __post_init__(self) -> None:
        if self.bounds not in ("[)", "[]", "(]", "()"):
            raise errors.InvalidParameterValue(f"range bounds must be one of [), [], (], (): not {self.bounds!r}")
        if self.empty:  # one empty range, whatever else was given
            object.__setattr__(self, "lower", None)
            object.__setattr__(self, "upper", None)
            object.__setattr__(self, "bounds", "()")
        else:  # an infinite bound is exclusive, as PostgreSQL keeps it
            object.__setattr__(self, "bounds", ("(" if self.lower is None else self.bounds[0])
                               + (")" if self.upper is None else self.bounds[1]))

    @property
    def lower_inc(self) -> bool:
        return not self.empty and self.lower is not None and self.bounds[0] == "["

    @property
    def upper_inc(self) -> bool:
        return not self.empty and self.upper is not None and self.bounds[1] == "]"

    @property
    def lower_inf(self) -> bool:
        return not self.empty and self.lower is None

    @property
    def upper_inf(self) -> bool:
        return not self.empty and self.upper is None

    @property
    def isempty(self) -> bool:
        return self.empty


EMPTY = Range(empty=True)


@dataclass(frozen=True)
class RangeParameter:
    """A value a client typed as a range (a Bind parameter, a binary COPY field): its text,
    or (binary) the range read, bounds not yet canonical. The SQL layer builds the range
    from it (sql/ranges.py); a column reads it as a range of its own type."""

    kind: RangeKind
    text: str | None = None
    value: Range | None = None


# ----------------------------------------------------------------------------- text


def _malformed(text: str, detail: str) -> errors.Error:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return errors.InvalidTextRepresentation(f'malformed range literal: "{shown}" ({detail})')


def parse_text(text: str) -> tuple[bool, str | None, str | None, bool, bool]:
    """PostgreSQL's range_parse: (empty, lower text, upper text, lower inclusive, upper
    inclusive), a bound None when infinite. The bounds are not read here: their subtype's
    input does that. 22P02 naming the value when it is not a range literal."""
    if not isinstance(text, str):
        raise errors.DatatypeMismatch(f"a range literal must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise errors.InvalidTextRepresentation(
            f"malformed range literal: {len(text)} characters, more than the {MAX_TEXT} reeldb reads")
    n = len(text)
    i = 0
    while i < n and text[i].isspace():
        i += 1
    if text[i:i + 5].lower() == "empty":
        j = i + 5
        while j < n and text[j].isspace():
            j += 1
        if j == n:
            return True, None, None, False, False
        raise _malformed(text, "Junk after \"empty\" key word.")
    if i >= n or text[i] not in "[(":
        raise _malformed(text, 'Missing left parenthesis or bracket.')
    lower_inc = text[i] == "["
    lower, i = _bound(text, i + 1)
    if i >= n or text[i] != ",":
        raise _malformed(text, "Missing comma after lower bound.")
    upper, i = _bound(text, i + 1)
    if i >= n or text[i] not in "])":
        raise _malformed(text, "Too many commas." if i < n and text[i] == "," else "Missing right parenthesis or bracket.")
    upper_inc = text[i] == "]"
    i += 1
    while i < n and text[i].isspace():
        i += 1
    if i != n:
        raise _malformed(text, "Junk after right parenthesis or bracket.")
    return False, lower, upper, lower_inc and lower is not None, upper_inc and upper is not None


def _bound(text: str, i: int) -> tuple[str | None, int]:
    """range_parse_bound: an unquoted empty bound is infinite; quotes and backslashes
    escape (a doubled quote inside quotes is one quote)."""
    n = len(text)
    ends = ",)]"
    if i < n and text[i] in ends:
        return None, i
    out: list[str] = []
    in_quote = False
    while i < n:
        ch = text[i]
        if not in_quote and ch in ends:
            break
        if ch == "\\":
            i += 1
            if i >= n:
                raise _malformed(text, "Unexpected end of input.")
            out.append(text[i])
        elif ch == '"':
            if not in_quote:
                in_quote = True
            elif i + 1 < n and text[i + 1] == '"':
                out.append('"')
                i += 1
            else:
                in_quote = False
        else:
            out.append(ch)
        i += 1
    if i >= n:
        raise _malformed(text, "Unexpected end of input.")
    return "".join(out), i


def _quoted(s: str) -> str:
    """range_bound_escape: quotes where the text would not read back alone."""
    if s and not any(c in '"\\,()[]' or c.isspace() for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '""') + '"'


def bound_text(v: Any) -> str:
    """A bound's text as its subtype's output prints it (DateStyle ISO; the session's zone is UTC)."""
    if isinstance(v, dt.datetime):
        zone = ""
        if v.tzinfo is not None:
            v, zone = v.astimezone(dt.timezone.utc).replace(tzinfo=None), "+00"
        shown = v.replace(microsecond=0).isoformat(sep=" ")
        if v.microsecond:  # PostgreSQL prints the fraction without its trailing zeros
            shown += f".{v.microsecond:06d}".rstrip("0")
        return shown + zone
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return format(plain_decimal(v), "f")
    return str(v)


def plain_decimal(v: decimal.Decimal) -> decimal.Decimal:
    """A numrange bound without the zeros reeldb's numeric scale added (1.5000000000 -> 1.5),
    as ``1.5::numeric`` prints in reeldb."""
    if not v.is_finite():
        return v
    d = v.normalize()
    return d.quantize(decimal.Decimal(1)) if d.as_tuple().exponent > 0 else d


def text(r: Range, bound_text: Callable[[Any], str] = bound_text) -> str:
    """PostgreSQL's range_out."""
    if r.empty:
        return "empty"
    lower = "" if r.lower is None else _quoted(bound_text(r.lower))
    upper = "" if r.upper is None else _quoted(bound_text(r.upper))
    return ("[" if r.lower_inc else "(") + lower + "," + upper + ("]" if r.upper_inc else ")")


# ----------------------------------------------------------------------------- canonical form


def _step(kind: RangeKind, v: Any) -> Any:
    """The next value of a discrete subtype; 22003 past its end, as PostgreSQL."""
    if isinstance(v, int):
        lo, hi = _LIMITS[kind.name]
        if v + 1 > hi:
            raise RangeError("22003", f"{'integer' if kind.name == 'int4range' else 'bigint'} out of range")
        return v + 1
    if v == dt.date.max:
        raise RangeError("22008", "date out of range")
    return v + kind.step


def make(kind: RangeKind, lower: Any, upper: Any, lower_inc: bool, upper_inc: bool) -> Range:
    """PostgreSQL's make_range: bounds checked (22000 when lower > upper), infinite
    bounds exclusive, discrete types canonical ``[)``, empty when nothing is left."""
    if lower is not None and upper is not None:
        if lower > upper:
            raise RangeError("22000", "range lower bound must be less than or equal to range upper bound")
        if lower == upper and not (lower_inc and upper_inc):
            return EMPTY
    if kind.step is not None:
        if lower is not None and not lower_inc:
            lower, lower_inc = _step(kind, lower), True
        if upper is not None and upper_inc:
            upper, upper_inc = _step(kind, upper), False
        if lower is not None and upper is not None and lower >= upper:
            return EMPTY
    bounds = ("[" if lower_inc and lower is not None else "(") + ("]" if upper_inc and upper is not None else ")")
    return Range(lower, upper, bounds)


def check_bounds_flags(bounds: Any) -> tuple[bool, bool]:
    """A constructor's third argument: ``[)``, ``[]``, ``(]`` or ``()``."""
    if bounds is None:
        raise RangeError("22000", "range constructor flags argument must not be null")
    if bounds not in ("[)", "[]", "(]", "()"):
        raise RangeError("42601", "invalid range bound flags")
    return bounds[0] == "[", bounds[1] == "]"


def to_struct(r: Range) -> dict[str, Any]:
    if r.empty:
        return {"rng_nonempty": False, "rng_lower_fin": False, "rng_lower": None, "rng_lower_exc": False,
                "rng_upper_inf": False, "rng_upper": None, "rng_upper_inc": False}
    return {"rng_nonempty": True, "rng_lower_fin": r.lower is not None, "rng_lower": r.lower,
            "rng_lower_exc": r.lower is not None and not r.lower_inc, "rng_upper_inf": r.upper is None,
            "rng_upper": r.upper, "rng_upper_inc": r.upper_inc}


def from_struct(d: dict[str, Any]) -> Range:
    if not d["rng_nonempty"]:
        return EMPTY
    lower = d["rng_lower"] if d["rng_lower_fin"] else None
    upper = None if d["rng_upper_inf"] else d["rng_upper"]
    return Range(lower, upper, ("(" if d["rng_lower_exc"] or lower is None else "[")
                 + ("]" if d["rng_upper_inc"] and upper is not None else ")"))


def from_python(kind: RangeKind, value: Any, read_bound: Callable[[Any], Any]) -> dict[str, Any]:
    """A value given for a range column (a Range, psycopg's Range, a stored struct or a
    range literal) as the stored struct; ``read_bound`` reads one bound as the subtype."""
    if isinstance(value, dict):
        value = from_struct(value)
    if isinstance(value, RangeParameter):
        if value.kind.name != kind.name:
            raise errors.DatatypeMismatch(f"a value of type {value.kind.name} is not a value of type {kind.name}")
        value = value.text if value.text is not None else value.value
    if isinstance(value, str):
        empty, lo, hi, linc, uinc = parse_text(value)
        if empty:
            return to_struct(EMPTY)
        return to_struct(make(kind, None if lo is None else read_bound(lo), None if hi is None else read_bound(hi),
                              linc, uinc))
    if hasattr(value, "isempty") and hasattr(value, "lower_inc"):  # this module's Range, psycopg's Range
        if value.isempty:
            return to_struct(EMPTY)
        lo = None if value.lower is None else read_bound(value.lower)
        hi = None if value.upper is None else read_bound(value.upper)
        return to_struct(make(kind, lo, hi, value.lower_inc, value.upper_inc))
    raise errors.DatatypeMismatch(f"a {type(value).__name__} is not a value of type {kind.name}")


# ----------------------------------------------------------------------------- operators


@dataclass(frozen=True)
class _Bound:
    value: Any
    infinite: bool
    inclusive: bool
    lower: bool


def _bounds(r: Range) -> tuple[_Bound, _Bound]:
    return (_Bound(r.lower, r.lower is None, r.lower_inc, True), _Bound(r.upper, r.upper is None, r.upper_inc, False))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def cmp_bounds(b1: _Bound, b2: _Bound) -> int:
    """range_cmp_bounds: the values, then inclusivity (an exclusive lower bound is after the
    value, an exclusive upper one before it)."""
    result = _bound_values_cmp(b1, b2)
    if result == 0 and not b1.infinite and not b2.infinite:
        if not b1.inclusive and not b2.inclusive:
            return 0 if b1.lower == b2.lower else (1 if b1.lower else -1)
        if not b1.inclusive:
            return 1 if b1.lower else -1
        if not b2.inclusive:
            return -1 if b2.lower else 1
    return result


def _bound_values_cmp(b1: _Bound, b2: _Bound) -> int:
    """range_cmp_bound_values: values only, infinities at their ends."""
    if b1.infinite and b2.infinite:
        return 0 if b1.lower == b2.lower else (-1 if b1.lower else 1)
    if b1.infinite:
        return -1 if b1.lower else 1
    if b2.infinite:
        return 1 if b2.lower else -1
    return _cmp(b1.value, b2.value)


def _from_bounds(kind: RangeKind, lower: _Bound, upper: _Bound) -> Range:
    return make(kind, None if lower.infinite else lower.value, None if upper.infinite else upper.value,
                lower.inclusive, upper.inclusive)


def contains(a: Range, b: Range) -> bool:
    if b.empty:
        return True
    if a.empty:
        return False
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return cmp_bounds(l1, l2) <= 0 and cmp_bounds(u1, u2) >= 0


def contains_elem(a: Range, v: Any) -> bool:
    if a.empty:
        return False
    if a.lower is not None and (a.lower > v or (a.lower == v and not a.lower_inc)):
        return False
    return not (a.upper is not None and (a.upper < v or (a.upper == v and not a.upper_inc)))


def overlaps(a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return (cmp_bounds(l1, l2) >= 0 and cmp_bounds(l1, u2) <= 0) or (cmp_bounds(l2, l1) >= 0 and cmp_bounds(l2, u1) <= 0)


def before(a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    return cmp_bounds(_bounds(a)[1], _bounds(b)[0]) < 0


def after(a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    return cmp_bounds(_bounds(a)[0], _bounds(b)[1]) > 0


def overleft(a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    return cmp_bounds(_bounds(a)[1], _bounds(b)[1]) <= 0


def overright(a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    return cmp_bounds(_bounds(a)[0], _bounds(b)[0]) >= 0


def _bounds_adjacent(kind: RangeKind, upper: _Bound, lower: _Bound) -> bool:
    cmp = _bound_values_cmp(upper, lower)
    if cmp < 0:
        if kind.step is None:  # a continuous subtype has values between any two
            return False
        flipped = make(kind, upper.value, lower.value, not upper.inclusive, not lower.inclusive)
        return flipped.empty
    if cmp == 0:
        return upper.inclusive != lower.inclusive
    return False


def adjacent(kind: RangeKind, a: Range, b: Range) -> bool:
    if a.empty or b.empty:
        return False
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return _bounds_adjacent(kind, u1, l2) or _bounds_adjacent(kind, u2, l1)


def union(kind: RangeKind, a: Range, b: Range, strict: bool = True) -> Range:
    """``+`` (strict: 22000 when the result would have a gap) and range_merge."""
    if a.empty:
        return b
    if b.empty:
        return a
    if strict and not overlaps(a, b) and not adjacent(kind, a, b):
        raise RangeError("22000", "result of range union would not be contiguous")
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return _from_bounds(kind, l1 if cmp_bounds(l1, l2) < 0 else l2, u1 if cmp_bounds(u1, u2) > 0 else u2)


def intersect(kind: RangeKind, a: Range, b: Range) -> Range:
    if a.empty or b.empty or not overlaps(a, b):
        return EMPTY
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return _from_bounds(kind, l1 if cmp_bounds(l1, l2) >= 0 else l2, u1 if cmp_bounds(u1, u2) <= 0 else u2)


def minus(kind: RangeKind, a: Range, b: Range) -> Range:
    """range_minus: 22000 when ``b`` splits ``a`` in two."""
    if a.empty or b.empty:
        return a
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    c_l1l2, c_l1u2, c_u1l2, c_u1u2 = cmp_bounds(l1, l2), cmp_bounds(l1, u2), cmp_bounds(u1, l2), cmp_bounds(u1, u2)
    if c_l1l2 < 0 and c_u1u2 > 0:
        raise RangeError("22000", "result of range difference would not be contiguous")
    if c_l1u2 > 0 or c_u1l2 < 0:
        return a
    if c_l1l2 >= 0 and c_u1u2 <= 0:
        return EMPTY
    if c_l1l2 <= 0 and c_u1l2 >= 0 and c_u1u2 <= 0:
        return _from_bounds(kind, l1, _Bound(l2.value, False, not l2.inclusive, False))
    return _from_bounds(kind, _Bound(u2.value, False, not u2.inclusive, True), u1)


# ----------------------------------------------------------------------------- multiranges


class Multirange(tuple):
    """A multirange value as reeldb hands it to Python: its ranges, normalized (sorted,
    merged where they overlap or touch, no empty ones)."""

    __slots__ = ()


@dataclass(frozen=True)
class MultirangeParameter:
    """A value a client typed as a multirange: its text, or (binary) its ranges read."""

    kind: RangeKind
    text: str | None = None
    value: tuple[Range, ...] | None = None


def _malformed_multi(text: str, detail: str) -> errors.Error:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return errors.InvalidTextRepresentation(f'malformed multirange literal: "{shown}" ({detail})')


def parse_multi_text(text: str) -> list[str]:
    """PostgreSQL's multirange_in, up to each range's text (read by parse_text): ``{}``,
    ``{[1,2), empty, (3,)}``. 22P02 naming the value when it is not a multirange literal."""
    if not isinstance(text, str):
        raise errors.DatatypeMismatch(f"a multirange literal must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise errors.InvalidTextRepresentation(
            f"malformed multirange literal: {len(text)} characters, more than the {MAX_TEXT} reeldb reads")
    n, i = len(text), 0
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != "{":
        raise _malformed_multi(text, "Missing left brace.")
    i += 1
    out: list[str] = []
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == "}" and not out:
            i += 1
            break
        if text[i:i + 5].lower() == "empty":
            out.append("empty")
            i += 5
        elif i < n and text[i] in "[(":
            start, in_quote = i, False
            i += 1
            while i < n and (in_quote or text[i] not in "])"):
                if text[i] == "\\":
                    i += 1
                elif text[i] == '"':
                    in_quote = not in_quote
                i += 1
            if i >= n:
                raise _malformed_multi(text, "Unexpected end of input.")
            i += 1
            out.append(text[start:i])
        else:
            raise _malformed_multi(text, "Expected range start.")
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == "}":
            i += 1
            break
        raise _malformed_multi(text, "Expected comma or end of multirange.")
    while i < n and text[i].isspace():
        i += 1
    if i != n:
        raise _malformed_multi(text, "Junk after closing right brace.")
    return out


def range_cmp(a: Range, b: Range) -> int:
    """range_cmp: empty first, then by lower bound, then by upper bound."""
    if a.empty or b.empty:
        return (not a.empty) - (not b.empty)
    (l1, u1), (l2, u2) = _bounds(a), _bounds(b)
    return cmp_bounds(l1, l2) or cmp_bounds(u1, u2)


def normalize(kind: RangeKind, ranges: list[Range]) -> Multirange:
    """multirange_canonicalize: sorted, overlapping or adjacent ranges merged, empties dropped."""
    import functools

    out: list[Range] = []
    for r in sorted((r for r in ranges if not r.empty), key=functools.cmp_to_key(range_cmp)):
        if out and (overlaps(out[-1], r) or adjacent(kind, out[-1], r)):
            out[-1] = union(kind, out[-1], r, strict=False)
        else:
            out.append(r)
    return Multirange(out)


def _ends(m: tuple[Range, ...]) -> tuple[Range, Range]:
    return m[0], m[-1]


def m_contains(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    """Each range of ``b`` lies in one of ``a``'s (they are normalized: no range spans two)."""
    return all(any(contains(x, r) for x in a) for r in b)


def m_overlaps(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return any(overlaps(x, y) for x in a for y in b)


def m_before(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return bool(a and b) and before(a[-1], b[0])


def m_after(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return bool(a and b) and after(a[0], b[-1])


def m_overleft(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return bool(a and b) and overleft(a[-1], b[-1])


def m_overright(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return bool(a and b) and overright(a[0], b[0])


def m_adjacent(kind: RangeKind, a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return bool(a and b) and (adjacent(kind, a[-1], b[0]) or adjacent(kind, b[-1], a[0]))


def m_intersect(kind: RangeKind, a: tuple[Range, ...], b: tuple[Range, ...]) -> Multirange:
    return normalize(kind, [intersect(kind, x, y) for x in a for y in b])


def m_minus(kind: RangeKind, a: tuple[Range, ...], b: tuple[Range, ...]) -> Multirange:
    """Each range of ``a`` less every range of ``b``: what is left, in pieces."""
    out: list[Range] = []
    for x in a:
        pieces = [x]
        for y in b:
            next_pieces: list[Range] = []
            for p in pieces:
                if not overlaps(p, y):
                    next_pieces.append(p)
                    continue
                (lp, up), (ly, uy) = _bounds(p), _bounds(y)
                if cmp_bounds(lp, ly) < 0:  # the part before y
                    next_pieces.append(_from_bounds(kind, lp, _Bound(ly.value, False, not ly.inclusive, False)))
                if cmp_bounds(up, uy) > 0:  # the part after y
                    next_pieces.append(_from_bounds(kind, _Bound(uy.value, False, not uy.inclusive, True), up))
            pieces = next_pieces
        out.extend(pieces)
    return normalize(kind, out)


def m_merge(kind: RangeKind, m: tuple[Range, ...]) -> Range:
    """range_merge(multirange): from the first range's lower bound to the last's upper."""
    return union(kind, m[0], m[-1], strict=False) if m else EMPTY


def multi_text(m: tuple[Range, ...]) -> str:
    return "{" + ",".join(text(r) for r in m) + "}"


def to_mstruct(m: tuple[Range, ...]) -> dict[str, Any]:
    return {"mr_ranges": [to_struct(r) for r in m]}


def from_mstruct(d: dict[str, Any]) -> Multirange:
    return Multirange(from_struct(r) for r in d["mr_ranges"])


def multi_from_python(kind: RangeKind, value: Any, read_bound: Callable[[Any], Any]) -> dict[str, Any]:
    """A value given for a multirange column (ranges, a literal, a typed parameter, a stored
    struct) as the stored struct, normalized."""
    if isinstance(value, dict):
        value = from_mstruct(value)
    if isinstance(value, MultirangeParameter):
        if value.kind.name != kind.name:
            raise errors.DatatypeMismatch(f"a value of type {value.kind.multi} is not a value of type {kind.multi}")
        value = value.text if value.text is not None else value.value
    if isinstance(value, str):
        value = parse_multi_text(value)
    if not isinstance(value, list | tuple):
        raise errors.DatatypeMismatch(f"a {type(value).__name__} is not a value of type {kind.multi}")
    ranges = [from_struct(from_python(kind, r, read_bound)) for r in value]
    return to_mstruct(normalize(kind, ranges))


# ----------------------------------------------------------------------------- literals read here

_INT = re.compile(r"\s*[+-]?\d+\s*")
_NUM = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
_TS = re.compile(r"\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*")
_TSTZ = re.compile(r"\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*([+-]\d{2}(?::?\d{2})?|Z)?\s*")
_NUMERIC_PLACES = 10  # reeldb's unconstrained NUMERIC (format/types.py)


class NotPlain(Exception):
    """A bound whose text only its subtype's cast reads as PostgreSQL does."""


def plain_bound(kind: RangeKind, v: Any) -> Any:
    """A bound read here, when its text (or value) is in the one plain form each subtype has
    (ISO dates and timestamps, digits); NotPlain for anything else, which the SQL layer casts."""
    if isinstance(v, str):
        v = _plain_text(kind, v)
    sub = kind.sub_kind
    try:
        ok = _plain_value(kind, v)
    except (decimal.InvalidOperation, OverflowError):
        ok = False
    if not ok:
        raise NotPlain
    if sub == "numeric":
        return decimal.Decimal(v)
    if sub == "timestamptz":
        return (v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    return v


def _plain_value(kind: RangeKind, v: Any) -> bool:
    sub = kind.sub_kind
    return (isinstance(v, int) and not isinstance(v, bool) and sub in ("int32", "int64")
          and _LIMITS[kind.name][0] <= v <= _LIMITS[kind.name][1]) \
        or isinstance(v, decimal.Decimal) and sub == "numeric" and v.is_finite() \
        and v == v.quantize(decimal.Decimal(1).scaleb(-_NUMERIC_PLACES), context=decimal.Context(prec=60)) \
        and abs(v) < decimal.Decimal(10) ** (38 - _NUMERIC_PLACES) \
        or isinstance(v, int) and not isinstance(v, bool) and sub == "numeric" and abs(v) < 10 ** (38 - _NUMERIC_PLACES) \
        or type(v) is dt.date and sub == "date" and v not in _EDGES \
        or isinstance(v, dt.datetime) and sub == "timestamp" and v.tzinfo is None and v not in _EDGES \
        or isinstance(v, dt.datetime) and sub == "timestamptz" and v.replace(tzinfo=None) not in _EDGES


def _plain_text(kind: RangeKind, text: str) -> Any:
    sub = kind.sub_kind
    try:
        if sub in ("int32", "int64") and _INT.fullmatch(text):
            return int(text)
        if sub == "numeric" and _NUM.fullmatch(text):
            return decimal.Decimal(text.strip())
        if sub == "date" and _DATE.fullmatch(text):
            return dt.date.fromisoformat(text.strip())
        if sub == "timestamp" and (m := _TS.fullmatch(text)):
            return dt.datetime.fromisoformat(m.group(1))
        if sub == "timestamptz" and (m := _TSTZ.fullmatch(text)):
            zone = m.group(2) or "+00:00"
            zone = "+00:00" if zone == "Z" else zone if len(zone) > 3 and ":" in zone else \
                zone[:3] + ":" + (zone[3:] or "00")
            return dt.datetime.fromisoformat(m.group(1) + zone)
    except ValueError:  # 2000-02-30: the cast says so, as PostgreSQL does
        raise NotPlain from None
    raise NotPlain


def _json_value(v: Any) -> Any:
    if isinstance(v, decimal.Decimal | dt.date):  # datetimes too: isoformat keeps the offset
        return str(v) if isinstance(v, decimal.Decimal) else v.isoformat()
    return v


def to_json(value: Range | tuple[Range, ...]) -> str:
    """A range or multirange read here, as the text the ``from_json`` functions read back."""
    def one(r: Range) -> list[Any]:
        return [True] if r.empty else [False, _json_value(r.lower), _json_value(r.upper), r.bounds]

    return json.dumps(one(value) if isinstance(value, Range) else [one(r) for r in value])


def _from_json(kind: RangeKind, item: list[Any]) -> Range:
    if item[0]:
        return EMPTY
    read = {"numeric": decimal.Decimal, "date": dt.date.fromisoformat, "timestamp": dt.datetime.fromisoformat,
            "timestamptz": dt.datetime.fromisoformat}.get(kind.sub_kind, int)
    return Range(*(None if b is None else read(b) for b in item[1:3]), item[3])


# ----------------------------------------------------------------------------- DuckDB functions


def _member(read: Callable[[Any], Range], x: Any) -> Range:
    if x is None:
        raise RangeError("22004", "multirange values cannot contain null members")
    return read(x)


def _strict(fn: Callable[..., Any], n: int) -> Callable[..., Any]:
    """A function DuckDB calls with NULLs (its own arity: DuckDB counts the parameters)
    that answers NULL for a NULL argument."""
    if n == 1:
        return lambda a: None if a is None else fn(a)
    return lambda a, b: None if a is None or b is None else fn(a, b)


# what DuckDB hands Python for -infinity / infinity dates and timestamps
_EDGES = frozenset((dt.date.min, dt.date.max, dt.datetime.min, dt.datetime.max))


def functions(kind: RangeKind) -> dict[str, tuple[Callable[..., Any], list[str], str, bool]]:
    """name -> (function, DuckDB argument types, DuckDB result type, handles NULLs itself)
    of one range type's functions, run by DuckDB over the stored structs."""
    s, sub = kind.duck, kind.sub_duck
    r = from_struct

    def construct(lo: Any, hi: Any, flags: Any = "[)") -> dict[str, Any]:
        linc, uinc = check_bounds_flags(flags)
        for b in (lo, hi):
            if isinstance(b, dt.date) and b.replace(tzinfo=None) in _EDGES if isinstance(b, dt.datetime) \
                    else isinstance(b, dt.date) and b in _EDGES:
                raise RangeError("0A000", f"{kind.name} bound {b} is not supported: infinity and the first and last "
                                 "days Python holds cannot be told apart")
        return to_struct(make(kind, lo, hi, linc, uinc))

    def two(fn: Callable[[Range, Range], Any], result: str = "BOOLEAN") -> tuple:
        return (_strict(lambda a, b: fn(r(a), r(b)), 2), [s, s], result, True)

    def two_ranges(fn: Callable[[RangeKind, Range, Range], Range]) -> tuple:
        return (_strict(lambda a, b: to_struct(fn(kind, r(a), r(b))), 2), [s, s], s, True)

    def one(fn: Callable[[Range], Any], result: str) -> tuple:
        return (_strict(lambda a: fn(r(a)), 1), [s], result, True)

    return {
        "empty": (lambda: to_struct(EMPTY), [], s, True),
        "from_json": (_strict(lambda t: to_struct(_from_json(kind, json.loads(t))), 1), ["VARCHAR"], s, True),
        "out": one(lambda a: text(a, bound_text), "VARCHAR"),
        "aout": (_strict(lambda xs: array_text(xs, lambda x: text(r(x))), 1), [s + "[]"], "VARCHAR", True),
        "lower": one(lambda a: a.lower, sub),
        "upper": one(lambda a: a.upper, sub),
        "isempty": one(lambda a: a.empty, "BOOLEAN"),
        "lower_inc": one(lambda a: a.lower_inc, "BOOLEAN"),
        "upper_inc": one(lambda a: a.upper_inc, "BOOLEAN"),
        "lower_inf": one(lambda a: a.lower_inf, "BOOLEAN"),
        "upper_inf": one(lambda a: a.upper_inf, "BOOLEAN"),
        "make2": (lambda lo, hi: construct(lo, hi), [sub, sub], s, True),
        "make3": (construct, [sub, sub, "VARCHAR"], s, True),
        "contains": two(contains),
        "contains_elem": (_strict(lambda a, v: contains_elem(r(a), v), 2), [s, sub], "BOOLEAN", True),
        "elem_contained": (_strict(lambda v, a: contains_elem(r(a), v), 2), [sub, s], "BOOLEAN", True),
        "overlaps": two(overlaps),
        "before": two(before),
        "after": two(after),
        "overleft": two(overleft),
        "overright": two(overright),
        "adjacent": two(lambda a, b: adjacent(kind, a, b)),
        "union": two_ranges(union),
        "merge": two_ranges(lambda k, a, b: union(k, a, b, strict=False)),
        "intersect": two_ranges(intersect),
        "minus": two_ranges(minus),
        "mempty": (lambda: to_mstruct(()), [], kind.multi_duck, True),
        "mmake": (_strict(lambda rs: to_mstruct(normalize(kind, [_member(r, x) for x in rs])), 1),
                  [s + "[]"], kind.multi_duck, True),
        "mout": (_strict(lambda m: multi_text(from_mstruct(m)), 1), [kind.multi_duck], "VARCHAR", True),
        "mfrom_json": (_strict(lambda t: to_mstruct([_from_json(kind, x) for x in json.loads(t)]), 1), ["VARCHAR"],
                       kind.multi_duck, True),
        **_multi_functions(kind),
    }


def _multi_functions(kind: RangeKind) -> dict[str, tuple[Callable[..., Any], list[str], str, bool]]:
    """A multirange type's functions and operators (a range operand is made a multirange
    of it first, which PostgreSQL's mixed operators agree with)."""
    m, s, sub = kind.multi_duck, kind.duck, kind.sub_duck
    read = from_mstruct

    def two(fn: Callable[[Multirange, Multirange], Any]) -> tuple:
        return (_strict(lambda a, b: fn(read(a), read(b)), 2), [m, m], "BOOLEAN", True)

    def to_multi(fn: Callable[[RangeKind, Multirange, Multirange], Multirange]) -> tuple:
        return (_strict(lambda a, b: to_mstruct(fn(kind, read(a), read(b))), 2), [m, m], m, True)

    def one(fn: Callable[[Multirange], Any], result: str) -> tuple:
        return (_strict(lambda a: fn(read(a)), 1), [m], result, True)

    def first(fn: Callable[[Range], Any]) -> Callable[[Multirange], Any]:
        return lambda x: fn(x[0]) if x else None

    return {
        "m_contains": two(m_contains),
        "m_contains_elem": (_strict(lambda a, v: any(contains_elem(r, v) for r in read(a)), 2), [m, sub], "BOOLEAN",
                            True),
        "m_elem_contained": (_strict(lambda v, a: any(contains_elem(r, v) for r in read(a)), 2), [sub, m], "BOOLEAN",
                             True),
        "m_overlaps": two(m_overlaps),
        "m_before": two(m_before),
        "m_after": two(m_after),
        "m_overleft": two(m_overleft),
        "m_overright": two(m_overright),
        "m_adjacent": two(lambda a, b: m_adjacent(kind, a, b)),
        "m_union": to_multi(lambda k, a, b: normalize(k, [*a, *b])),
        "m_intersect": to_multi(m_intersect),
        "m_minus": to_multi(m_minus),
        "m_merge": (_strict(lambda a: to_struct(m_merge(kind, read(a))), 1), [m], s, True),
        "m_lower": one(first(lambda r: r.lower), sub),
        "m_upper": one(lambda x: x[-1].upper if x else None, sub),
        "m_isempty": one(lambda x: not x, "BOOLEAN"),
        "m_lower_inc": one(lambda x: bool(x) and x[0].lower_inc, "BOOLEAN"),
        "m_upper_inc": one(lambda x: bool(x) and x[-1].upper_inc, "BOOLEAN"),
        "m_lower_inf": one(lambda x: bool(x) and x[0].lower_inf, "BOOLEAN"),
        "m_upper_inf": one(lambda x: bool(x) and x[-1].upper_inf, "BOOLEAN"),
    }


def kind_of_number(kind: RangeKind, v: Any) -> Any:
    """A bound read for ``kind`` checked against its subtype's range (22003)."""
    if kind.name in _LIMITS and isinstance(v, int):
        lo, hi = _LIMITS[kind.name]
        if not lo <= v <= hi:
            raise errors.NumericValueOutOfRange(f"value {v} is out of range for type {kind.subtype}")
    if isinstance(v, decimal.Decimal) and not v.is_finite():
        raise errors.FeatureNotSupported(f"{v} as a bound of {kind.name} is not supported")
    return v
