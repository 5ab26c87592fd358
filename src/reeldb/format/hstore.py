"""hstore values (PostgreSQL 16's contrib ``hstore`` 1.8): text input and output, binary
send and receive, and the pair order hstore keeps.

A value is a mapping of text keys to text values or NULL. hstore stores its pairs sorted
by key length in bytes, then by the key's bytes, one pair per key (the first one parsed
wins), and every operation answers in that order; reeldb keeps each stored value (an
Arrow ``map<string, string>``, DuckDB's ``MAP(VARCHAR, VARCHAR)``) in the same order, so
printing, ``akeys`` and equality give PostgreSQL's answers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from .. import errors

ARROW_TYPE = pa.map_(pa.string(), pa.string())
Pairs = list[tuple[str, str | None]]


def _order(key: str) -> tuple[int, bytes]:
    b = key.encode()
    return len(b), b


def normalize(pairs: Iterable[tuple[str, str | None]]) -> Pairs:
    """hstore's canonical form: one pair per key (the first wins), sorted by (length, bytes)."""
    seen: dict[str, str | None] = {}
    for k, v in pairs:
        if k is None:
            raise errors.DataError("null value not allowed for hstore key", sqlstate="22004")
        if k not in seen:
            seen[k] = v
    return sorted(seen.items(), key=lambda kv: _order(kv[0]))


def from_python(v: Any) -> Pairs:
    """A dict, a list of pairs, DuckDB's map (dict) or the text form -> canonical pairs."""
    if isinstance(v, str):
        return parse(v)
    items = list(v.items()) if isinstance(v, Mapping) else [tuple(p) for p in v]
    for k, val in items:
        for x in (k, val):
            if x is not None and not isinstance(x, str):
                raise errors.DatatypeMismatch(f"hstore keys and values are text, not {type(x).__name__}")
    return normalize(items)


# -- text input: a port of hstore_io.c's parser --------------------------------------------
_SPACE = " \t\n\r\v\f"


def _syntax(text: str, i: int) -> errors.Error:
    near = text[i] if i < len(text) else ""
    return errors.SyntaxError(f'syntax error in hstore, near "{near}" at position {len(text[:i].encode())}')


def _eof() -> errors.Error:
    return errors.SyntaxError("syntax error in hstore: unexpected end of string")


def _get_val(text: str, i: int, ignoreeq: bool) -> tuple[str | None, bool, int]:
    """One key or value from ``i``: (word or None at the end, escaped, index of the last
    character read, as the C parser's pointer)."""
    n = len(text)
    st = "waitval"
    out: list[str] = []
    escaped = False
    while True:
        c = text[i] if i < n else "\0"
        if st == "waitval":
            if c == '"':
                escaped = True
                st = "inescval"
            elif c == "\0":
                return None, escaped, i
            elif c == "=" and not ignoreeq:
                raise _syntax(text, i)
            elif c == "\\":
                st = "waitescin"
            elif c not in _SPACE:
                out.append(c)
                st = "inval"
        elif st == "inval":
            if c == "\\":
                st = "waitescin"
            elif c == "=" and not ignoreeq or c == "," and ignoreeq:
                return "".join(out), escaped, i - 1
            elif c in _SPACE:
                return "".join(out), escaped, i
            elif c == "\0":
                return "".join(out), escaped, i - 1
            else:
                out.append(c)
        elif st == "inescval":
            if c == "\\":
                st = "waitescescin"
            elif c == '"':
                return "".join(out), escaped, i
            elif c == "\0":
                raise _eof()
            else:
                out.append(c)
        else:  # after a backslash: the next character as it is
            if c == "\0":
                raise _eof()
            out.append(c)
            st = "inval" if st == "waitescin" else "inescval"
        i += 1


def parse(text: str) -> Pairs:
    """hstore's text input (``a=>1, "b c"=>NULL``), PostgreSQL's errors (42601) included."""
    if "\0" in text:
        raise errors.CharacterNotInRepertoire('invalid byte sequence for encoding "UTF8": 0x00')
    pairs: list[tuple[str, str | None]] = []
    st = "key"
    key = ""
    i, n = 0, len(text)
    while True:
        c = text[i] if i < n else "\0"
        if st == "key":
            word, _, i = _get_val(text, i, False)
            if word is None:
                return normalize(pairs)
            key = word
            st = "eq"
        elif st == "eq":
            if c == "=":
                st = "gt"
            elif c == "\0":
                raise _eof()
            elif c not in _SPACE:
                raise _syntax(text, i)
        elif st == "gt":
            if c == ">":
                st = "val"
            elif c == "\0":
                raise _eof()
            else:
                raise _syntax(text, i)
        elif st == "val":
            word, escaped, i = _get_val(text, i, True)
            if word is None:
                raise _eof()
            pairs.append((key, None if not escaped and word.lower() == "null" else word))
            st = "del"
        else:  # after a value
            if c == ",":
                st = "key"
            elif c == "\0":
                return normalize(pairs)
            elif c not in _SPACE:
                raise _syntax(text, i)
        i += 1


# -- text output -----------------------------------------------------------------------------
def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text(pairs: Iterable[tuple[str, str | None]] | Mapping[str, str | None]) -> str:
    """hstore_out: ``"a"=>"1", "b"=>NULL``; the empty hstore is the empty string."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return ", ".join(f"{_quote(k)}=>{'NULL' if v is None else _quote(v)}" for k, v in items)


# -- binary (hstore_send / hstore_recv) ------------------------------------------------------
def send(pairs: Iterable[tuple[str, str | None]] | Mapping[str, str | None]) -> bytes:
    """int4 count, then per pair: int4 key length, key, int4 value length (-1: NULL), value."""
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs)
    out = [struct.pack("!i", len(items))]
    for k, v in items:
        kb = k.encode()
        out.append(struct.pack("!i", len(kb)) + kb)
        if v is None:
            out.append(struct.pack("!i", -1))
        else:
            vb = v.encode()
            out.append(struct.pack("!i", len(vb)) + vb)
    return b"".join(out)


def recv(data: bytes) -> Pairs:
    """hstore_recv: the binary form back to canonical pairs (a NULL key is 22004)."""
    try:
        (count,) = struct.unpack_from("!i", data, 0)
        pos = 4
        if count < 0:
            raise ValueError
        pairs: list[tuple[str, str | None]] = []
        for _ in range(count):
            (klen,) = struct.unpack_from("!i", data, pos)
            pos += 4
            if klen < 0:
                raise errors.DataError("null value not allowed for hstore key", sqlstate="22004")
            key = data[pos:pos + klen].decode()
            pos += klen
            (vlen,) = struct.unpack_from("!i", data, pos)
            pos += 4
            val = None
            if vlen >= 0:
                val = data[pos:pos + vlen].decode()
                pos += vlen
            pairs.append((key, val))
    except (struct.error, ValueError, UnicodeDecodeError):
        raise errors.ProtocolViolation("insufficient data left in message (binary hstore)") from None
    if pos != len(data):
        raise errors.InvalidBinaryRepresentation("incorrect binary data format in hstore")
    return normalize(pairs)


def to_arrow(values: list[Any]) -> pa.Array:
    """Python values (None, dict, pairs, text) -> the stored Arrow map array, canonical."""
    return pa.array([None if v is None else from_python(v) for v in values], type=ARROW_TYPE)


# -- hstore's operators and functions, run by DuckDB as Python functions ---------------------
# Each takes DuckDB's values (a MAP arrives as a dict in hstore's order) and answers as
# hstore 1.8 does; a returned hstore is DuckDB's {"key": [...], "value": [...]} form, in
# hstore's order. An error is raised as ``SQLSTATE xxxxx: message`` (engine.translate_error).
MAP = "MAP(VARCHAR, VARCHAR)"
TEXT_ARRAY = "VARCHAR[]"


class HstoreError(ValueError):
    """An hstore function's error, carrying PostgreSQL's SQLSTATE through DuckDB."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(f"SQLSTATE {sqlstate}: {message}")


def _out(pairs: Iterable[tuple[str, str | None]]) -> dict[str, list]:
    items = normalize(pairs)
    return {"key": [k for k, _ in items], "value": [v for _, v in items]}


def _keys(arr: list | None) -> list[str]:
    """A text[] of keys, its NULL elements skipped (hstoreArrayToPairs)."""
    return [k for k in arr or () if k is not None]


def _from_text(key: str | None, value: str | None) -> dict | None:
    return None if key is None else _out([(key, value)])


def _from_arrays(keys: list | None, values: list | None) -> dict | None:
    if keys is None:
        return None
    if values is not None and len(values) != len(keys):
        raise HstoreError("2202E", "arrays must have same bounds")
    if any(k is None for k in keys):
        raise HstoreError("22004", "null value not allowed for hstore key")
    vals = values if values is not None else [None] * len(keys)
    return _out(zip(keys, vals, strict=True))


def _parse_text(t: str) -> dict:
    try:
        return _out(parse(t))
    except errors.Error as e:
        raise HstoreError(e.sqlstate, e.message) from None


def _delete_pairs(a: dict, b: dict) -> dict:
    return _out((k, v) for k, v in a.items() if not (k in b and b[k] == v))


def _matrix(a: dict) -> list:
    return [[k, v] for k, v in a.items()]


def _strict(fn: Any, arity: int) -> Any:
    """NULL in, NULL out (a STRICT function), though DuckDB passes NULLs on (its default
    handling would refuse a function that answers NULL, as ``h -> 'missing'`` does).
    DuckDB counts the Python function's parameters: one or two, named."""
    if arity == 1:
        return lambda a: None if a is None else fn(a)
    return lambda a, b: None if a is None or b is None else fn(a, b)


# name -> (function, DuckDB argument types, DuckDB return type, called with NULL arguments)
FUNCTIONS: dict[str, tuple[Any, list[str], str, bool]] = {
    "in": (_parse_text, ["VARCHAR"], MAP, False),
    "out": (lambda a: text(a), [MAP], "VARCHAR", False),
    "get": (lambda a, k: a.get(k), [MAP, "VARCHAR"], "VARCHAR", False),
    "get_array": (lambda a, ks: [None if k is None else a.get(k) for k in ks], [MAP, TEXT_ARRAY], TEXT_ARRAY, False),
    "exist": (lambda a, k: k in a, [MAP, "VARCHAR"], "BOOLEAN", False),
    "defined": (lambda a, k: a.get(k) is not None, [MAP, "VARCHAR"], "BOOLEAN", False),
    "exists_all": (lambda a, ks: all(k in a for k in _keys(ks)), [MAP, TEXT_ARRAY], "BOOLEAN", False),
    "exists_any": (lambda a, ks: any(k in a for k in _keys(ks)), [MAP, TEXT_ARRAY], "BOOLEAN", False),
    "contains": (lambda a, b: all(k in a and a[k] == v for k, v in b.items()), [MAP, MAP], "BOOLEAN", False),
    "concat": (lambda a, b: _out({**a, **b}.items()), [MAP, MAP], MAP, False),
    "delete_key": (lambda a, k: _out((x, v) for x, v in a.items() if x != k), [MAP, "VARCHAR"], MAP, False),
    "delete_keys": (lambda a, ks: _out((x, v) for x, v in a.items() if x not in set(_keys(ks))), [MAP, TEXT_ARRAY],
                    MAP, False),
    "delete_pairs": (_delete_pairs, [MAP, MAP], MAP, False),
    "slice": (lambda a, ks: _out((k, a[k]) for k in _keys(ks) if k in a), [MAP, TEXT_ARRAY], MAP, False),
    "akeys": (lambda a: list(a.keys()), [MAP], TEXT_ARRAY, False),
    "avals": (lambda a: list(a.values()), [MAP], TEXT_ARRAY, False),
    "to_array": (lambda a: [x for kv in a.items() for x in kv], [MAP], TEXT_ARRAY, False),
    "to_matrix": (_matrix, [MAP], "VARCHAR[][]", False),
    "from_text": (_from_text, ["VARCHAR", "VARCHAR"], MAP, True),
    "from_arrays": (_from_arrays, [TEXT_ARRAY, TEXT_ARRAY], MAP, True),
}
FUNCTIONS = {name: (fn if nulls else _strict(fn, len(args)), args, ret, True) for name, (fn, args, ret, nulls) in FUNCTIONS.items()}
