"""The Postgres frontend/backend protocol v3 as bytes in, bytes out: no sockets.

``MessageReader`` cuts a byte stream into messages (refusing oversized ones before
buffering them); the ``parse_*`` functions read frontend payloads; the other functions
build backend messages. Everything here is testable by feeding bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from .. import errors
from ..sql.encodings import CODECS

PROTOCOL_3 = 196608  # 3.0
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
DEFAULT_MAX_MESSAGE = 64 << 20
MAX_STARTUP_PACKET = 10_000  # PostgreSQL's MAX_STARTUP_PACKET_LENGTH
MAX_AUTH_MESSAGE = 65_535  # PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: a SASL message before login

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")


ProtocolViolation = errors.ProtocolViolation  # the connection is closed after saying so


class MessageTooLarge(errors.ProgramLimitExceeded):
    """A message over the server's limit: said, then the connection is closed."""


# ----------------------------------------------------------------------------- text

# The client encoding of the connection being served (PostgreSQL's name, Python codec):
# each client has its own worker thread, which sets it before handling messages.
_ENCODING: ContextVar[tuple[str, str]] = ContextVar("reeldb_client_encoding", default=("UTF8", "utf-8"))


def use_client_encoding(name: str) -> None:
    """Text on the wire is in ``name`` (PostgreSQL's name) from now on, in this thread."""
    _ENCODING.set((name, CODECS[name]))


def client_codec() -> tuple[str, str]:
    """(PostgreSQL name, Python codec) of the client encoding in force."""
    return _ENCODING.get()


def encode_text(text: str, codec: tuple[str, str] | None = None) -> bytes:
    """Text for the client, in its encoding; a character it lacks is 22P05, as in Postgres."""
    name, python = codec or _ENCODING.get()
    try:
        return text.encode(python)
    except UnicodeEncodeError as e:
        bad = " ".join(f"0x{b:02x}" for b in text[e.start].encode("utf-8"))
        raise errors.Error(f'character with byte sequence {bad} in encoding "UTF8" has no equivalent '
                           f'in encoding "{name}"', sqlstate="22P05") from None


def decode_text(data: bytes, codec: tuple[str, str] | None = None) -> str:
    """Text from the client, in its encoding; bytes that are not is 22021, as in Postgres."""
    name, python = codec or _ENCODING.get()
    try:
        return data.decode(python)
    except UnicodeDecodeError as e:
        bad = data[e.start:e.start + 1]
        raise errors.CharacterNotInRepertoire(f'invalid byte sequence for encoding "{name}": 0x{bad.hex()}') from None


# ----------------------------------------------------------------------------- reading


class MessageReader:
    """Frames a byte stream: the untyped startup packet first, then typed messages."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE):
        self.max_message = max_message
        self._buf = bytearray()
        self.started = False  # False: the next message is a startup packet (no type byte)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> tuple[str, bytes] | None:
        """The next complete message as ``(type, payload)``; type "" for a startup
        packet; None until enough bytes have arrived."""
        head = 4 if not self.started else 5
        if len(self._buf) < head:
            return None
        if self.started:
            kind = chr(self._buf[0])
            (length,) = _I32.unpack_from(self._buf, 1)
        else:
            kind = ""
            (length,) = _I32.unpack_from(self._buf, 0)
        if not self.started and not 4 <= length <= MAX_STARTUP_PACKET:
            # refused from its length word, before any of it is kept
            raise ProtocolViolation("invalid length of startup packet")
        if length < 4:
            raise ProtocolViolation(f"invalid message length {length}")
        if length > self.max_message:
            raise MessageTooLarge(f"message of {length} bytes exceeds the limit of {self.max_message} bytes")
        total = length + (1 if self.started else 0)
        if len(self._buf) < total:
            return None
        payload = bytes(self._buf[head:total])
        del self._buf[:total]
        return kind, payload


class Payload:
    """A cursor over one message's payload, with bounds checks."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolViolation("message is shorter than its contents say")

    def int16(self) -> int:
        self._need(2)
        (v,) = _I16.unpack_from(self.data, self.pos)
        self.pos += 2
        return v

    def int32(self) -> int:
        self._need(4)
        (v,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolViolation("string without its terminating zero byte")
        raw = self.data[self.pos : end]
        self.pos = end + 1
        return decode_text(raw)

    def take(self, n: int) -> bytes:
        self._need(n)
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw

    def byte(self) -> str:
        return chr(self.take(1)[0])


@dataclass
class Startup:
    code: int  # PROTOCOL_3, SSL_REQUEST, GSSENC_REQUEST or CANCEL_REQUEST
    params: dict[str, str]
    cancel: tuple[int, int] | None = None  # (pid, secret) of a CancelRequest


def parse_startup(payload: bytes) -> Startup:
    p = Payload(payload)
    code = p.int32()
    if code == CANCEL_REQUEST:
        return Startup(code, {}, (p.int32(), p.int32()))
    if code in (SSL_REQUEST, GSSENC_REQUEST):
        return Startup(code, {})
    if code >> 16 != 3:
        raise errors.FeatureNotSupported(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                                         "reeldb speaks 3.0")
    params: dict[str, str] = {}
    while True:
        key = p.cstring()
        if not key:
            break
        params[key] = p.cstring()
    return Startup(code, params)


@dataclass
class Parse:
    name: str
    query: str
    param_oids: list[int]


@dataclass
class Bind:
    portal: str
    statement: str
    param_formats: list[int]
    values: list[bytes | None]
    result_formats: list[int]


def parse_parse(payload: bytes) -> Parse:
    p = Payload(payload)
    name, query = p.cstring(), p.cstring()
    n = p.int16()
    if n < 0:
        raise ProtocolViolation("negative parameter count")
    return Parse(name, query, [p.int32() for _ in range(n)])


def parse_bind(payload: bytes) -> Bind:
    p = Payload(payload)
    portal, statement = p.cstring(), p.cstring()
    formats = [p.int16() for _ in range(_count(p))]
    values: list[bytes | None] = []
    for _ in range(_count(p)):
        n = p.int32()
        values.append(None if n == -1 else p.take(n))
    results = [p.int16() for _ in range(_count(p))]
    for f in formats + results:
        if f not in (0, 1):
            raise ProtocolViolation(f"unsupported format code {f}")
    return Bind(portal, statement, formats, values, results)


def _count(p: Payload) -> int:
    n = p.int16()
    if n < 0:
        raise ProtocolViolation("negative count")
    return n


def parse_describe_or_close(payload: bytes) -> tuple[str, str]:
    p = Payload(payload)
    kind = p.byte()
    if kind not in ("S", "P"):
        raise ProtocolViolation(f"invalid Describe/Close target {kind!r}")
    return kind, p.cstring()


def parse_execute(payload: bytes) -> tuple[str, int]:
    p = Payload(payload)
    return p.cstring(), p.int32()


def parse_query(payload: bytes) -> str:
    return Payload(payload).cstring()


# ----------------------------------------------------------------------------- building


def message(kind: str, payload: bytes = b"") -> bytes:
    return kind.encode() + _I32.pack(len(payload) + 4) + payload


def _cstr(s: str, lenient: bool = False) -> bytes:
    """A zero-terminated string in the client encoding; ``lenient`` (error and notice
    text) puts ? for a character the encoding lacks, so the message itself still goes."""
    if lenient:
        name, python = _ENCODING.get()
        return s.encode(python, errors="replace").replace(b"\0", b"") + b"\0"
    return encode_text(s).replace(b"\0", b"") + b"\0"


def authentication_ok() -> bytes:
    return message("R", _I32.pack(0))


def parameter_status(key: str, value: str) -> bytes:
    return message("S", _cstr(key) + _cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return message("K", struct.pack("!ii", pid, secret))


def ready_for_query(status: str) -> bytes:
    return message("Z", status.encode())


@dataclass(frozen=True)
class FieldSpec:
    """One RowDescription column."""

    name: str
    type_oid: int
    typlen: int = -1
    typmod: int = -1
    format: int = 0


def row_description(fields: Sequence[FieldSpec]) -> bytes:
    out = bytearray(_I16.pack(len(fields)))
    for f in fields:
        out += _cstr(f.name) + struct.pack("!ihihih", 0, 0, f.type_oid, f.typlen, f.typmod, f.format)
    return message("T", bytes(out))


def data_row(values: Iterable[bytes | None]) -> bytes:
    vals = list(values)
    out = bytearray(_I16.pack(len(vals)))
    for v in vals:
        if v is None:
            out += _I32.pack(-1)
        else:
            out += _I32.pack(len(v)) + v
    return message("D", bytes(out))


def command_complete(tag: str) -> bytes:
    return message("C", _cstr(tag))


def empty_query_response() -> bytes:
    return message("I")


def parse_complete() -> bytes:
    return message("1")


def bind_complete() -> bytes:
    return message("2")


def close_complete() -> bytes:
    return message("3")


def no_data() -> bytes:
    return message("n")


def portal_suspended() -> bytes:
    return message("s")


def parameter_description(oids: Sequence[int]) -> bytes:
    return message("t", _I16.pack(len(oids)) + b"".join(_I32.pack(o) for o in oids))


def _fields(severity: str, sqlstate: str, text: str, position: int | None = None,
            detail: str | None = None, hint: str | None = None) -> bytes:
    out = bytearray()
    for code, value in (("S", severity), ("V", severity), ("C", sqlstate), ("M", text),
                        ("D", detail), ("H", hint), ("P", None if position is None else str(position))):
        if value is not None:
            out += code.encode() + _cstr(value, lenient=True)
    return bytes(out + b"\0")


def error_response(sqlstate: str, text: str, position: int | None = None, severity: str = "ERROR",
                   detail: str | None = None, hint: str | None = None) -> bytes:
    return message("E", _fields(severity, sqlstate, text, position, detail, hint))


def notification_response(pid: int, channel: str, payload: str, encoding: str = "UTF8") -> bytes:
    """NotificationResponse in the client ``encoding``, which is passed: it may be built
    on the event loop's thread, which serves every client."""
    python = CODECS[encoding]
    return message("A", _I32.pack(pid) + b"".join(
        s.encode(python, errors="replace").replace(b"\0", b"") + b"\0" for s in (channel, payload)))


def notice_response(text: str, sqlstate: str = "00000", severity: str = "NOTICE") -> bytes:
    return message("N", _fields(severity, sqlstate, text))


def error_for(exc: BaseException) -> bytes:
    """ErrorResponse for any exception: reeldb's carry their SQLSTATE; anything else is
    an internal error whose message, never a traceback, reaches the client."""
    if isinstance(exc, errors.Error):
        return error_response(exc.sqlstate, exc.message, getattr(exc, "position", None),
                              detail=getattr(exc, "detail", None), hint=getattr(exc, "hint", None))
    if isinstance(exc, RecursionError):  # never reached for a statement the parser let through
        return error_response("54001", "stack depth limit exceeded: the statement nests too deeply")
    return error_response("XX000", f"internal error: {type(exc).__name__}: {exc}")
