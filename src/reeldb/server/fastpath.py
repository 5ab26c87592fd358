"""The fastpath function call: FunctionCall ('F') answered by FunctionCallResponse ('V').

libpq's ``lo_*`` functions (psycopg2's ``connection.lobject``, psql's ``\\lo_import``) call the
large-object functions this way, by their pg_proc OIDs, which libpq looks up in
``pg_proc`` at first use. reeldb answers exactly those functions (sql/large_objects.py);
any other OID is 42883, as PostgreSQL answers an OID it has no function for. Each call runs
as the statement ``SELECT pg_catalog.name($1, ...)`` through the session, so it gets what a
statement gets: the open transaction (or one of its own outside a block), rights, the failed
transaction's 25P02, statement_timeout.

Arguments come in text or binary, each as its format code says (none: all text; one: all
of that format); the result in the format the message asks for, as PostgreSQL's type
input/output and receive/send functions write them.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .. import errors
from ..sql import large_objects
from . import protocol as p

if TYPE_CHECKING:
    from ..sql.session import Session

_BINARY = {"int4": struct.Struct("!i"), "oid": struct.Struct("!I"), "int8": struct.Struct("!q")}


def answer(session: Session, payload: bytes) -> list[bytes]:
    """The FunctionCallResponse for one FunctionCall message, or its ErrorResponse (which
    fails the open transaction); the caller adds ReadyForQuery."""
    try:
        oid, formats, raw, result_format = parse_function_call(payload)
        proc = large_objects.PROCS.get(oid)
        if proc is None:
            raise errors.UndefinedFunction(f"function with OID {oid} does not exist")
        name, types, result = proc
        if len(raw) != len(types):
            raise errors.ProtocolViolation(
                f"function call message contains {len(raw)} arguments but function requires {len(types)}")
        if len(formats) not in (0, 1, len(raw)):
            raise errors.ProtocolViolation(
                f"function call message contains {len(formats)} argument formats but {len(raw)} arguments")
        values = [None if data is None else _decode(data, kind, _format(formats, i), i + 1)
                  for i, (data, kind) in enumerate(zip(raw, types, strict=True))]
        placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))
        got = session.execute_parsed(f"SELECT pg_catalog.{name}({placeholders})", values)
        rows = got.read(1)
        value = rows.column(0)[0].as_py() if rows is not None and rows.num_rows else None
        return [function_call_response(None if value is None else _encode(value, result, result_format))]
    except Exception as e:  # noqa: BLE001 - every failure becomes an ErrorResponse
        session.fail_transaction()
        return [p.error_for(e)]


def parse_function_call(payload: bytes) -> tuple[int, list[int], list[bytes | None], int]:
    """(function OID, argument format codes, arguments (None: NULL), result format code)."""
    try:
        at = 0
        (oid,) = struct.unpack_from("!I", payload, at)
        (n_formats,) = struct.unpack_from("!h", payload, at + 4)
        at += 6
        formats = list(struct.unpack_from(f"!{n_formats}h", payload, at)) if n_formats > 0 else []
        at += 2 * max(n_formats, 0)
        (n_args,) = struct.unpack_from("!h", payload, at)
        at += 2
        args: list[bytes | None] = []
        for _ in range(max(n_args, 0)):
            (length,) = struct.unpack_from("!i", payload, at)
            at += 4
            if length < 0:
                args.append(None)
                continue
            if at + length > len(payload):
                raise struct.error("argument past the message's end")
            args.append(payload[at:at + length])
            at += length
        (result_format,) = struct.unpack_from("!h", payload, at)
        at += 2
    except struct.error:
        raise errors.ProtocolViolation("invalid FunctionCall message format") from None
    if n_formats < 0 or n_args < 0 or at != len(payload):
        raise errors.ProtocolViolation("invalid FunctionCall message format")
    if any(f not in (0, 1) for f in [*formats, result_format]):
        bad = next(f for f in [*formats, result_format] if f not in (0, 1))
        raise errors.ProtocolViolation(f"unsupported format code: {bad}")
    return oid, formats, args, result_format


def function_call_response(value: bytes | None) -> bytes:
    body = struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    return p.message("V", body)


def _format(formats: list[int], i: int) -> int:
    if not formats:
        return 0
    return formats[0] if len(formats) == 1 else formats[i]


def _decode(data: bytes, kind: str, fmt: int, number: int) -> Any:
    if fmt == 1:
        if kind in _BINARY:
            codec = _BINARY[kind]
            if len(data) != codec.size:
                raise errors.InvalidBinaryRepresentation(
                    f"incorrect binary data format in function argument {number}")
            return codec.unpack(data)[0]
        if kind == "bytea":
            return bytes(data)
        return p.decode_text(data)  # text: its binary form is the client-encoded text
    text = p.decode_text(data)
    return large_objects.bytea(text) if kind == "bytea" else text


def _encode(value: Any, kind: str, fmt: int) -> bytes:
    if kind == "void":
        return b""
    if fmt == 1:
        if kind in _BINARY:
            return _BINARY[kind].pack(value)
        return bytes(value)
    if kind == "bytea":
        return b"\\x" + bytes(value).hex().encode()
    return str(value).encode()
