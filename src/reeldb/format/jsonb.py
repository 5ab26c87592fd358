"""PostgreSQL's jsonb semantics over JSON text.

reeldb stores a jsonb value as JSON text (DuckDB's JSON type), which keeps the input's
spelling. PostgreSQL's jsonb does not: it prints a canonical form (keys ordered by length
then bytes, duplicate keys last-wins, numbers as ``numeric`` prints them), compares numbers
as numeric (``25 = 25.0``) and orders values by its btree rules. This module answers those
from the text: ``canonical_text``, ``sort_key`` (bytes that compare as PostgreSQL's jsonb
btree order and are equal exactly when PostgreSQL's ``=`` is true), ``contains`` (``@>``),
``concat`` (``||``), ``delete_key`` / ``delete_index`` (``-``) and ``exists`` (``?``).
"""

from __future__ import annotations

import decimal
import functools
import json
import re
import struct
from collections.abc import Callable
from typing import Any

from .. import errors

# numeric's limits (PostgreSQL 16): digits before / after the decimal point
_MAX_WEIGHT_DIGITS = 131072
_MAX_SCALE = 16383


class _Number(decimal.Decimal):
    """A JSON number, kept as the exact decimal its text spells."""


def _number(text: str) -> _Number:
    d = _Number(text)
    if not d.is_zero():
        if d.adjusted() >= _MAX_WEIGHT_DIGITS or -d.as_tuple().exponent > _MAX_SCALE:  # type: ignore[operator]
            raise errors.NumericValueOutOfRange("value overflows numeric format")
    elif -d.as_tuple().exponent > _MAX_SCALE:  # type: ignore[operator]
        raise errors.NumericValueOutOfRange("value overflows numeric format")
    return d


def _no_constant(name: str) -> Any:
    raise errors.InvalidTextRepresentation(f'invalid input syntax for type json: token "{name}" is invalid')


def parse(text: str | bytes) -> Any:
    """JSON text -> Python values as jsonb holds them: numbers exact (``_Number``), objects
    as dicts whose duplicate keys kept the last value (as PostgreSQL's jsonb)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        value = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise errors.InvalidTextRepresentation(f"invalid input syntax for type json: {e.msg}") from None
    _check_strings(value)
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads keeps an unpaired \\ud800 escape


def _check_strings(value: Any) -> None:
    """jsonb cannot hold ``\\u0000`` (22P05) or an unpaired surrogate (22P02), as PostgreSQL."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise errors.UntranslatableCharacter("unsupported Unicode escape sequence: \\u0000 cannot be converted to text")
            if _LONE_SURROGATE.search(v):
                raise errors.InvalidTextRepresentation("invalid input syntax for type json: a Unicode surrogate "
                                                       "escape must be a high surrogate followed by a low one")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8")
    return len(raw), raw


def _ordered(obj: dict) -> list[tuple[str, Any]]:
    """An object's pairs in jsonb's storage order: shorter keys first, then by bytes."""
    return sorted(obj.items(), key=lambda kv: _key_order(kv[0]))


def number_text(d: decimal.Decimal) -> str:
    """A number as PostgreSQL's numeric prints it: no exponent, the input's scale
    (``1e2`` -> ``100``, ``25.0`` -> ``25.0``, ``-0`` -> ``0``)."""
    if d.is_zero():
        d = abs(d)
    return format(d, "f")


def _string_text(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _text(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(_ordered(value)):
            if i:
                out.append(", ")
            out.append(_string_text(k))
            out.append(": ")
            _text(v, out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(", ")
            _text(v, out)
        out.append("]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string_text(value))
    elif isinstance(value, decimal.Decimal):
        out.append(number_text(value))
    elif isinstance(value, int | float):
        out.append(number_text(decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)))
    else:
        raise errors.DataError(f"{type(value).__name__} is not a JSON value")


def value_text(value: Any) -> str:
    """A parsed jsonb value in PostgreSQL's jsonb text form."""
    out: list[str] = []
    _text(value, out)
    return "".join(out)


def _depth_limited(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, with a value nested deeper than Python's stack allows refused (54001, as
    PostgreSQL's "stack depth limit exceeded") instead of a RecursionError."""
    @functools.wraps(fn)
    def limited(*args: Any) -> Any:
        try:
            return fn(*args)
        except RecursionError:
            raise errors.StatementTooComplex("jsonb value nested too deeply") from None
    return limited


@_depth_limited
def canonical_text(text: str | bytes | None) -> str | None:
    """JSON text -> PostgreSQL's jsonb text of it: ``{"a": 1, "b": [1, 2]}``."""
    return None if text is None else value_text(parse(text))


# -- ordering --------------------------------------------------------------------------------
# type tags in PostgreSQL's order: Null < String < Number < Boolean < Array < Object
_NULL, _STRING, _NUMBER, _BOOL, _ARRAY, _OBJECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"


def _number_key(d: decimal.Decimal) -> bytes:
    """Order-preserving, self-delimiting bytes of a decimal; equal for equal values."""
    if d.is_zero():
        return b"\x02"
    sign, digits, _ = d.as_tuple()
    exponent = d.adjusted()  # of the first digit, which is not 0
    body = bytes(0x30 + x for x in digits).rstrip(b"0")  # 0.d1d2... without trailing zeros
    if sign:
        return b"\x01" + struct.pack(">I", (1 << 31) - exponent) + bytes(0xFF - b for b in body) + b"\xff"
    return b"\x03" + struct.pack(">I", (1 << 31) + exponent) + body + b"\x00"


def _key(value: Any, out: list[bytes]) -> None:
    if isinstance(value, dict):
        pairs = _ordered(value)
        out.append(_OBJECT + struct.pack(">I", len(pairs)))
        for k, v in pairs:
            out.append(_STRING + k.encode("utf-8") + b"\x00")
            _key(v, out)
    elif isinstance(value, list):
        out.append(_ARRAY + struct.pack(">I", len(value)) + b"\x01")
        for v in value:
            _key(v, out)
    elif value is None:
        out.append(_NULL)
    elif value is True or value is False:
        out.append(_BOOL + (b"\x01" if value else b"\x00"))
    elif isinstance(value, str):  # strings hold no NUL (refused on input): 0 ends one
        out.append(_STRING + value.encode("utf-8") + b"\x00")
    elif isinstance(value, int | float | decimal.Decimal):
        out.append(_NUMBER + _number_key(decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)))
    else:
        raise errors.DataError(f"{type(value).__name__} is not a JSON value")


def value_sort_key(value: Any) -> bytes:
    """Bytes that compare as PostgreSQL's jsonb btree order. A top-level scalar is, as in
    PostgreSQL, a one-element "raw scalar" array: after ``[]``, before ``[x]``."""
    out: list[bytes] = []
    if isinstance(value, dict | list):
        _key(value, out)
    else:
        out.append(_ARRAY + struct.pack(">I", 1) + b"\x00")
        _key(value, out)
    return b"".join(out)


def sort_key(text: str | bytes | None) -> bytes | None:
    return None if text is None else value_sort_key(parse(text))


# -- operators -------------------------------------------------------------------------------
def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return decimal.Decimal(a) == decimal.Decimal(b)


def _is_container(v: Any) -> bool:
    return isinstance(v, dict | list)


def _deep_contains(val: Any, sub: Any) -> bool:
    """PostgreSQL's JsonbDeepContains of two containers of the same kind."""
    if isinstance(val, dict) != isinstance(sub, dict):
        return False
    if isinstance(sub, dict):
        for k, sv in sub.items():
            if k not in val:
                return False
            lv = val[k]
            if _is_container(lv) != _is_container(sv):
                return False
            if _is_container(sv):
                if not _deep_contains(lv, sv):
                    return False
            elif not _scalar_equal(lv, sv):
                return False
        return True
    containers = [v for v in val if _is_container(v)]
    scalars = [v for v in val if not _is_container(v)]
    for sv in sub:
        if _is_container(sv):
            if not any(_deep_contains(lv, sv) for lv in containers):
                return False
        elif not any(_scalar_equal(lv, sv) for lv in scalars):
            return False
    return True


def value_contains(val: Any, sub: Any) -> bool:
    """``val @> sub`` as PostgreSQL: a top-level scalar is a one-element array, which an
    array may contain (``'[1,2]' @> '1'``) but which contains no array (``'1' @> '[1]'``)."""
    if not _is_container(val) and _is_container(sub):
        return False
    return _deep_contains(val if _is_container(val) else [val], sub if _is_container(sub) else [sub])


def contains(val: str | None, sub: str | None) -> bool | None:
    if val is None or sub is None:
        return None
    return value_contains(parse(val), parse(sub))


def value_concat(a: Any, b: Any) -> Any:
    """``a || b``: objects merge (the right's keys win), anything else concatenates as
    arrays, a scalar or object counting as a one-element array."""
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        merged.update(b)
        return merged
    return (a if isinstance(a, list) else [a]) + (b if isinstance(b, list) else [b])


def concat(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return value_text(value_concat(parse(a), parse(b)))


def delete_key(a: str | None, key: str | None) -> str | None:
    """``j - 'key'``: the object without the key, the array without string elements equal to it."""
    if a is None or key is None:
        return None
    v = parse(a)
    if isinstance(v, dict):
        return value_text({k: x for k, x in v.items() if k != key})
    if isinstance(v, list):
        return value_text([x for x in v if not (isinstance(x, str) and x == key)])
    raise errors.InvalidParameterValue("cannot delete from scalar")


def delete_index(a: str | None, index: int | None) -> str | None:
    """``j - n``: the array without its n-th element (negative from the end)."""
    if a is None or index is None:
        return None
    v = parse(a)
    if isinstance(v, dict):
        raise errors.InvalidParameterValue("cannot delete from object using integer index")
    if not isinstance(v, list):
        raise errors.InvalidParameterValue("cannot delete from scalar")
    i = index + len(v) if index < 0 else index
    return value_text([x for n, x in enumerate(v) if n != i])


def exists(a: str | None, key: str | None) -> bool | None:
    """``j ? 'key'``: an object's key, a string element of an array, or the string itself."""
    if a is None or key is None:
        return None
    v = parse(a)
    if isinstance(v, dict):
        return key in v
    if isinstance(v, list):
        return any(isinstance(x, str) and x == key for x in v)
    return isinstance(v, str) and v == key


_MISSING = object()


def _field(value: Any, step: str | int, top: bool, in_path: bool = False) -> Any:
    """``value -> step``: an object's key, an array's element (negative from the end; in a
    ``#>`` path, a text step names an element where it is an integer); _MISSING where none."""
    if isinstance(value, dict):
        return value.get(step, _MISSING) if isinstance(step, str) else _MISSING
    if isinstance(value, list) or (top and isinstance(step, int)):  # '"x"' -> 0 is "x", as PostgreSQL
        items = value if isinstance(value, list) else [value]
        if isinstance(step, str):
            if not in_path:
                return _MISSING
            try:
                step = int(step)
            except ValueError:
                return _MISSING
        i = step + len(items) if step < 0 else step
        return items[i] if 0 <= i < len(items) else _MISSING
    return _MISSING


def _as_text(value: Any) -> str | None:
    """``->>``: a string's own text, SQL NULL for JSON null, else jsonb's text."""
    if value is _MISSING or value is None:
        return None
    return value if isinstance(value, str) else value_text(value)


def _as_jsonb(value: Any) -> str | None:
    return None if value is _MISSING else value_text(value)


def _path(a: str, path: list[str | None]) -> Any:
    value = parse(a)
    for step in path:
        if step is None:
            return _MISSING
        value = _field(value, step, False, in_path=True)
        if value is _MISSING:
            return _MISSING
    return value


def _exists_any(a: str, keys: list[str | None]) -> bool:
    return any(exists(a, k) for k in keys if k is not None)


def _exists_all(a: str, keys: list[str | None]) -> bool:
    return all(exists(a, k) for k in keys if k is not None)


def _unordered() -> bool:
    raise errors.FeatureNotSupported("comparing, sorting or concatenating (||) a jsonb value whose type reeldb "
                                     "cannot tell before running (a VALUES list's or a subquery's column) is not "
                                     "supported: cast it to jsonb")


# name -> (function, DuckDB argument types, DuckDB result type): the engine registers each
# (engine/engine.py's JSONB, with DuckDB's "special" null handling); NULL in, NULL out
_FUNCTIONS: dict[str, tuple[Any, list[str], str]] = {
    "out": (canonical_text, ["JSON"], "VARCHAR"),
    "in": (lambda a: value_text(parse(a)), ["VARCHAR"], "JSON"),
    "key": (sort_key, ["JSON"], "BLOB"),
    "contains": (contains, ["JSON", "JSON"], "BOOLEAN"),
    "concat": (concat, ["JSON", "JSON"], "JSON"),
    "delete_key": (delete_key, ["JSON", "VARCHAR"], "JSON"),
    "delete_index": (delete_index, ["JSON", "BIGINT"], "JSON"),
    "exists": (exists, ["JSON", "VARCHAR"], "BOOLEAN"),
    "exists_any": (_exists_any, ["JSON", "VARCHAR[]"], "BOOLEAN"),
    "exists_all": (_exists_all, ["JSON", "VARCHAR[]"], "BOOLEAN"),
    "get": (lambda a, k: _as_jsonb(_field(parse(a), k, True)), ["JSON", "VARCHAR"], "JSON"),  # j -> 'key'
    "get_index": (lambda a, i: _as_jsonb(_field(parse(a), i, True)), ["JSON", "BIGINT"], "JSON"),  # j -> 0
    "get_text": (lambda a, k: _as_text(_field(parse(a), k, True)), ["JSON", "VARCHAR"], "VARCHAR"),  # j ->> 'key'
    "get_index_text": (lambda a, i: _as_text(_field(parse(a), i, True)), ["JSON", "BIGINT"], "VARCHAR"),
    "get_path": (lambda a, p: _as_jsonb(_path(a, p)), ["JSON", "VARCHAR[]"], "JSON"),  # j #> '{a,0}'
    "get_path_text": (lambda a, p: _as_text(_path(a, p)), ["JSON", "VARCHAR[]"], "VARCHAR"),  # j #>> '{a,0}'
    "unordered": (_unordered, [], "BOOLEAN"),  # compared or sorted, found to be jsonb only when running
}


def _strict(fn: Callable[..., Any], arity: int) -> Callable[..., Any]:
    """NULL in, NULL out; registered with DuckDB's "special" null handling, since some
    return NULL for values that are not (``'[1]' -> 5``). DuckDB counts the parameters."""
    if arity == 0:
        return fn
    if arity == 1:
        return lambda a: None if a is None else fn(a)
    return lambda a, b: None if a is None or b is None else fn(a, b)


FUNCTIONS = {name: (_depth_limited(_strict(fn, len(args))), args, ret) for name, (fn, args, ret) in _FUNCTIONS.items()}
