"""pgvector's sparse vectors and PostgreSQL's bit strings: their text and binary forms.

reeldb stores a ``sparsevec(n)`` as a dense float32 row of its matrix (a zero is an
absent element), so the values are exact and pgvector's distances are DuckDB's array
functions; a bit string is stored as its text of ``0``/``1`` and shown to DuckDB as BIT.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .. import errors

MAX_SPARSE_DIM = 65536  # a dense row: the most a VECTOR(n) holds (pgvector allows 1e9)


def float_text(f: float, single: bool) -> str:
    """Postgres' float4/float8 output (and pgvector's, which uses the same routine): the
    shortest digits that read back the same, fixed-point when the decimal exponent is
    in [-4, 6) for float4 or [-4, 15) for float8, else ``1.2345679e+08``."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    x = np.float32(f) if single else np.float64(f)
    sci = np.format_float_scientific(x, unique=True, trim="-", exp_digits=2)
    if -4 <= int(sci.rpartition("e")[2]) < (6 if single else 15):
        return np.format_float_positional(x, unique=True, trim="-")
    return sci


def vector_text(values: Any) -> str:
    """pgvector's text form of a vector or halfvec: ``[1.5,2,3]`` (halfvec values print
    as the float4 they widen to, as pgvector's halfvec_out does)."""
    return "[" + ",".join(float_text(float(x), True) for x in np.asarray(values, dtype=np.float32).reshape(-1)) + "]"


def parse_sparse_text(text: str, column: str = "value") -> np.ndarray:
    """``{1:1.5,3:2}/5`` (indices from 1) -> the dense float32 row of 5 elements."""
    s = text.strip()
    head, slash, dim_text = s.rpartition("/")
    if not slash or not head.startswith("{") or not head.endswith("}"):
        raise errors.InvalidTextRepresentation(f'invalid input syntax for type sparsevec: "{text}" ({column})')
    try:
        dim = int(dim_text)
    except ValueError:
        raise errors.InvalidTextRepresentation(f'invalid input syntax for type sparsevec: "{text}" ({column})') from None
    check_sparse_dim(dim)
    out = np.zeros(dim, dtype=np.float32)
    body = head[1:-1].strip()
    last = 0
    for item in body.split(",") if body else ():
        index_text, colon, value_text = item.partition(":")
        try:
            index, value = int(index_text), float(value_text)
        except ValueError:
            raise errors.InvalidTextRepresentation(
                f'invalid input syntax for type sparsevec: "{text}" ({column})') from None
        if not colon:
            raise errors.InvalidTextRepresentation(f'invalid input syntax for type sparsevec: "{text}" ({column})')
        if not 1 <= index <= dim:
            raise errors.DataError(f"index must be less than or equal to dimensions ({column})"
                                   if index > dim else f"index must be greater than zero ({column})")
        if index <= last:
            raise errors.DataError(f"indexes must be in ascending order ({column})" if index < last
                                   else f"indexes must not contain duplicates ({column})")
        last = index
        out[index - 1] = _finite(value, column)
    return out


def _finite(value: float, column: str) -> np.float32:
    f = np.float32(value)
    if not np.isfinite(value):
        raise errors.DataError(f"NaN or infinity not allowed in sparsevec ({column})")
    if not np.isfinite(f):
        raise errors.NumericValueOutOfRange(f'"{value}" is out of range for type sparsevec ({column})')
    return f


def check_sparse_dim(dim: int) -> None:
    if dim < 1:
        raise errors.DataError("sparsevec must have at least 1 dimension")
    if dim > MAX_SPARSE_DIM:
        raise errors.FeatureNotSupported(
            f"sparsevec of {dim} dimensions is not supported: reeldb stores sparse vectors densely, "
            f"up to {MAX_SPARSE_DIM} dimensions")


def sparse_text(dense: Any) -> str:
    """pgvector's sparsevec_out: ``{1:1.5,3:2}/5``, values as float4 prints them."""

    a = np.asarray(dense, dtype=np.float32).reshape(-1)
    nz = np.flatnonzero(a)
    return "{" + ",".join(f"{i + 1}:{float_text(float(a[i]), True)}" for i in nz) + f"}}/{len(a)}"


def sparse_send(dense: Any) -> bytes:
    """pgvector's sparsevec_send: int32 dim, int32 nnz, int32 0, int32 indices (from 0), float4 values."""
    a = np.asarray(dense, dtype=np.float32).reshape(-1)
    nz = np.flatnonzero(a)
    return (struct.pack("!iii", len(a), len(nz), 0) + nz.astype(">i4").tobytes()
            + a[nz].astype(">f4").tobytes())


def sparse_recv(b: bytes) -> np.ndarray:
    """pgvector's sparsevec_recv, checked as it checks (ascending indices within the dimension)."""
    dim, nnz, unused = struct.unpack_from("!iii", b)
    if unused != 0:
        raise ValueError("expected unused to be 0")
    if nnz < 0 or len(b) != 12 + 8 * nnz:
        raise ValueError("sparsevec length does not match its number of elements")
    check_sparse_dim(dim)
    indices = np.frombuffer(b, dtype=">i4", count=nnz, offset=12).astype(np.int64)
    values = np.frombuffer(b, dtype=">f4", count=nnz, offset=12 + 4 * nnz).astype(np.float32)
    if nnz and (indices[0] < 0 or indices[-1] >= dim or (np.diff(indices) <= 0).any()):
        raise ValueError("sparsevec indices must be ascending and within its dimension")
    if not np.isfinite(values).all():
        raise ValueError("NaN or infinity not allowed in sparsevec")
    out = np.zeros(dim, dtype=np.float32)
    out[indices] = values
    return out


# -- bit strings -------------------------------------------------------------------------------


def parse_bit_text(text: str, what: str = "bit") -> str:
    """``101`` (or ``B'101'``'s digits; ``X'1F'`` hex) -> the string of 0s and 1s."""
    s = text
    if s[:1] in ("x", "X"):
        try:
            return "".join(f"{int(c, 16):04b}" for c in s[1:])
        except ValueError:
            raise errors.InvalidTextRepresentation(f'"{s[1:2]}" is not a valid hexadecimal digit') from None
    if s[:1] in ("b", "B"):
        s = s[1:]
    bad = next((c for c in s if c not in "01"), None)
    if bad is not None:
        raise errors.InvalidTextRepresentation(f'"{bad}" is not a valid binary digit')
    return s


def check_bit_length(bits: str, length: int | None, varying: bool, column: str) -> str:
    """bit(n): exactly n bits (22026, as Postgres); bit varying(n): at most n (22001)."""
    if length is None:
        return bits
    if varying and len(bits) > length:
        raise errors.StringDataRightTruncation(f"bit string too long for type bit varying({length}) (column {column})")
    if not varying and len(bits) != length:
        raise errors.DataError(f"bit string length {len(bits)} does not match type bit({length}) (column {column})",
                               sqlstate="22026")
    return bits


def bit_send(bits: str) -> bytes:
    """Postgres' bit_send: int32 bit length, then the bits packed from the high end, zero padded."""
    n = len(bits)
    packed = int(bits, 2) << (-n % 8) if n else 0
    return struct.pack("!i", n) + packed.to_bytes((n + 7) // 8, "big")


def bit_recv(b: bytes) -> str:
    (n,) = struct.unpack_from("!i", b)
    if n < 0 or len(b) != 4 + (n + 7) // 8:
        raise ValueError("invalid length in external bit string")
    value = int.from_bytes(b[4:], "big") >> (-n % 8) if n else 0
    return format(value, f"0{n}b") if n else ""


def duck_bits(b: bytes) -> str:
    """DuckDB's BIT as Arrow hands it over (a byte counting the padding bits of the first data
    byte, then the data bytes) -> the string of 0s and 1s."""
    pad = b[0]
    return "".join(f"{x:08b}" for x in b[1:])[pad:]


def split_array_text(text: str, column: str) -> list[str | None]:
    """A one-dimensional array's text, ``{"[1,2]","[3,4]",NULL}`` -> its elements' text."""
    s = text.strip(" \t\n\r\v\f")
    if not s.startswith("{") or not s.endswith("}"):
        raise errors.InvalidTextRepresentation(f'malformed array literal: "{text}" (column {column})')
    items: list[str | None] = []
    i, n = 1, len(s) - 1
    while i < n:
        c = s[i]
        if c in ", \t\n\r\v\f":
            i += 1
        elif c == '"':
            j, chars = i + 1, []
            while j < n and s[j] != '"':
                if s[j] == "\\":
                    j += 1
                chars.append(s[j])
                j += 1
            items.append("".join(chars))
            i = j + 1
        elif c == "{":
            raise errors.FeatureNotSupported(f"column {column}: arrays of more than one dimension are not supported")
        else:
            j = s.find(",", i)
            j = n if j < 0 else j
            word = s[i:j].strip()
            items.append(None if word.upper() == "NULL" else word)
            i = j
    return items


def vector_aggregate(name: str, kind: str, rows: list[Any] | None) -> list[float] | None:
    """pgvector's avg() / sum() of vector or halfvec values (NULLs skipped, NULL when there
    are none): avg accumulates in float8, sum adds in float4 (halfvec: rounds each sum to
    float2), as pgvector's vector_accum / vector_add / halfvec_add do."""
    values = [np.asarray(r, dtype=np.float32) for r in rows or () if r is not None]
    if not values:
        return None
    dims = {len(v) for v in values}
    if len(dims) > 1:
        a, b = sorted(dims)[:2]
        raise errors.DataError(f"expected {a} dimensions, not {b}")
    store = np.float16 if kind == "halfvec" else np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "avg":
            out = (np.sum(np.stack(values).astype(np.float64), axis=0) / len(values)).astype(store)
        else:
            out = values[0].astype(store)
            for v in values[1:]:
                out = (out.astype(np.float32) + v).astype(store)
    if not np.isfinite(out).all():
        raise errors.NumericValueOutOfRange("value out of range: overflow")
    return out.astype(np.float32).tolist()


def to_halfvec(values: Any) -> list[float] | None:
    """``x::halfvec``: each element rounded to float2, as pgvector's casts and input do; an
    element too large for float2 is pgvector's 22003."""
    if values is None:
        return None
    x = np.asarray(values, dtype=np.float32)
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    bad = np.isinf(h) & ~np.isinf(x)
    if bad.any():
        shown = float_text(float(x[np.argmax(bad)]), True)
        raise errors.NumericValueOutOfRange(f'"{shown}" is out of range for type halfvec')
    return h.astype(np.float32).tolist()


def vector_arithmetic(op: str, kind: str, a: Any, b: Any) -> list[float] | None:
    """pgvector's element-wise ``+``, ``-`` and ``*`` of two vectors (or halfvecs): the
    dimensions must agree, arithmetic is float4's (halfvec: each result rounded to float2),
    and a result that overflows (or, for ``*``, underflows to zero) is an error."""
    if a is None or b is None:
        return None
    x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if x.shape != y.shape:
        raise errors.DataError(f"different {kind} dimensions {x.size} and {y.size}")
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        out = x + y if op == "+" else x - y if op == "-" else x * y
        if kind == "halfvec":
            out = out.astype(np.float16)
    if np.isinf(out).any():
        raise errors.NumericValueOutOfRange("value out of range: overflow")
    if op == "*" and ((out == 0) & (x != 0) & (y != 0)).any():
        raise errors.NumericValueOutOfRange("value out of range: underflow")
    return out.astype(np.float32).tolist()


def vector_array_text(sparse: bool, rows: list[Any] | None) -> str | None:
    """vector[]'s text, as array_out writes it: ``{"[1,2]","[3,4.5]",NULL}``."""

    if rows is None:
        return None
    parts = []
    for r in rows:
        if r is None:
            parts.append("NULL")
            continue
        t = sparse_text(r) if sparse else vector_text(r)
        parts.append('"' + t + '"' if any(c in t for c in '{},"\\ ') else t)
    return "{" + ",".join(parts) + "}"
