"""COPY ... FROM STDIN / TO STDOUT in Postgres' text, CSV and binary formats: the
statement's options, and rows to and from the bytes of CopyData messages.

Text and CSV rows coming in go to the SQL layer as text (it coerces them to the column
types, as for any text parameter); bytea columns are decoded from ``\\x`` hex first.
Binary rows (``PGCOPY`` header, a field count per row, -1 for NULL, a -1 trailer) are
decoded by each column's binary receive format, as Bind parameters are. Rows going out
are the cells the result encoder made: the same text or binary as a query's DataRows.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from pglast import ast

from .. import errors
from ..types import text_out
from . import protocol as p
from .types import decode_param

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


@dataclass
class CopyOptions:
    table: str | None  # None: COPY (query) TO STDOUT
    columns: list[str] | None
    query: ast.Node | None
    from_stdin: bool
    schema: str | None = None  # a branch, tag or commit ("public": the connection's branch)
    database: str | None = None  # as in "db.schema.table"
    csv: bool = False
    header: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    quote: str = '"'
    binary: bool = False


def copy_options(stmt: ast.CopyStmt) -> CopyOptions:
    if stmt.filename is not None or stmt.is_program:
        raise errors.FeatureNotSupported("COPY to or from a file or program is not supported: use STDIN / STDOUT "
                                         "(psql's \\copy does)")
    rel = stmt.relation
    opts = CopyOptions(rel.relname if rel is not None else None,
                       [a.sval for a in stmt.attlist] if stmt.attlist else None, stmt.query, bool(stmt.is_from),
                       rel.schemaname if rel is not None else None, rel.catalogname if rel is not None else None)
    values = {o.defname: _arg(o.arg) for o in stmt.options or ()}
    fmt = str(values.pop("format", "text")).lower()
    if fmt not in ("text", "csv", "binary"):
        raise errors.InvalidParameterValue(f'COPY format "{fmt}" not recognized')
    opts.csv, opts.binary = fmt == "csv", fmt == "binary"
    if opts.binary:  # Postgres' refusals, in its order
        if "delimiter" in values:
            raise errors.SyntaxError("cannot specify DELIMITER in BINARY mode")
        if "null" in values:
            raise errors.SyntaxError("cannot specify NULL in BINARY mode")
        if values.get("header", False) not in (False, "false", "off", "0", 0):
            raise errors.FeatureNotSupported("cannot specify HEADER in BINARY mode")
    if opts.csv:
        opts.delimiter, opts.null = ",", ""
    opts.header = values.pop("header", False) in (True, "true", "on", "1", 1)
    if "delimiter" in values:
        opts.delimiter = str(values.pop("delimiter"))
    if "null" in values:
        opts.null = str(values.pop("null"))
    if "quote" in values:
        opts.quote = str(values.pop("quote"))
    if len(opts.delimiter) != 1 or len(opts.quote) != 1:
        raise errors.FeatureNotSupported("COPY delimiter and quote must be single one-byte characters")
    if values:
        raise errors.FeatureNotSupported(f"COPY option {sorted(values)[0]!r} is not supported")
    return opts


def source_query(opts: CopyOptions) -> str:
    """The SELECT that COPY table TO STDOUT runs: a schema-qualified table is read from
    that branch, tag or commit, resolved (and its rights checked) as in any query."""
    cols = ", ".join(quote_ident(c) for c in opts.columns) if opts.columns else "*"
    name = ".".join(quote_ident(n) for n in (opts.database, opts.schema, opts.table or "") if n is not None)
    return f"SELECT {cols} FROM {name}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _arg(node: Any) -> Any:
    if node is None:
        return True
    for attr in ("sval", "boolval", "ival"):
        if hasattr(node, attr):
            return getattr(node, attr)
    return str(node)


def parse_rows(data: bytes, opts: CopyOptions, ncols: int) -> list[list[str | None]]:
    """The rows of COPY FROM STDIN's data."""
    text = p.decode_text(data)
    if opts.csv:
        return _csv_rows(text, opts, ncols)
    rows = list(_text_rows(text, opts))
    if opts.header and rows:
        rows = rows[1:]
    for i, row in enumerate(rows, start=1 + opts.header):
        if len(row) != ncols:
            raise _wrong_columns(f"COPY line {i}: expected {ncols} columns, got {len(row)}")
    return rows


def _wrong_columns(message: str) -> errors.Error:
    return errors.Error(message, sqlstate="22P04")


def _text_rows(text: str, opts: CopyOptions) -> Iterator[list[str | None]]:
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if line == "\\.":
            return
        if not line:
            continue
        yield [None if f == opts.null else _unescape(f) for f in line.split(opts.delimiter)]


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\" and i + 1 < len(field):
            out.append(_ESCAPES.get(field[i + 1], field[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


_END_OF_DATA = re.compile(r"(?:^|\n)\\\.(?:\r?\n|$)")


def _csv_rows(text: str, opts: CopyOptions, ncols: int) -> list[list[str | None]]:
    """CSV rows, parsed by Arrow's CSV reader: as in Postgres, an unquoted field equal to
    the NULL string is NULL and a quoted one (``""``) is that string."""
    end = _END_OF_DATA.search(text)
    if end is not None:
        text = text[: end.start()]
    if not text.strip():
        return []
    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(opts.header)),
            parse_options=pacsv.ParseOptions(delimiter=opts.delimiter, quote_char=opts.quote, double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 null_values=[opts.null], strings_can_be_null=True,
                                                 quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as e:
        msg = str(e)
        if "columns" in msg:
            raise _wrong_columns(f"COPY: {msg.split(':', 1)[-1].strip()}") from None
        raise errors.Error(f"COPY: malformed CSV data: {msg}", sqlstate="22P04") from None
    columns = [table.column(i).to_pylist() for i in range(ncols)]
    return [list(r) for r in zip(*columns)]


def format_row(values: list[Any], opts: CopyOptions) -> bytes:
    """One row of COPY TO STDOUT."""
    if opts.csv:
        return p.encode_text(opts.delimiter.join(opts.null if v is None else _csv_field(text_out(v), opts)
                                                 for v in values) + "\n")
    fields = [opts.null if v is None else _escape(text_out(v), opts.delimiter) for v in values]
    return p.encode_text(opts.delimiter.join(fields) + "\n")


def _csv_field(text: str, opts: CopyOptions) -> str:
    """Quoted where Postgres quotes: special characters, or a value that would read back
    as NULL (so an empty string stays an empty string)."""
    q = opts.quote
    if text == opts.null or text == "\\." or any(c in text for c in (opts.delimiter, q, "\n", "\r")):
        return q + text.replace(q, q + q) + q
    return text


def header_row(names: list[str], opts: CopyOptions) -> bytes:
    return format_row(names, opts)


def _escape(s: str, delimiter: str) -> str:
    s = s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return s.replace(delimiter, "\\" + delimiter) if delimiter != "\t" else s


# ----------------------------------------------------------------------------- messages


def copy_response(kind: str, opts: CopyOptions, ncols: int) -> bytes:
    """CopyInResponse ("G") or CopyOutResponse ("H"): the overall format and each column's."""
    fmt = int(opts.binary)
    return p.message(kind, struct.pack("!bh", fmt, ncols) + struct.pack("!h", fmt) * ncols)


def out_rows(rows: list[tuple[bytes | None, ...]], names: list[str], opts: CopyOptions) -> list[bytes]:
    """The CopyData payloads of COPY TO STDOUT from encoded cells (text or binary, as
    ``opts`` says), one per row, header and trailer included."""
    if opts.binary:
        out = [_binary_row(r) for r in rows] + [BINARY_TRAILER]
        out[0] = BINARY_HEADER + out[0]  # Postgres sends the header with the first row
        return out
    out = [header_row(names, opts)] if opts.header else []
    codec = p.client_codec()  # the cells are in the client encoding already
    if opts.csv:
        out += [p.encode_text(opts.delimiter.join(opts.null if c is None else _csv_field(p.decode_text(c, codec), opts)
                                                  for c in r) + "\n", codec) for r in rows]
    else:
        out += [p.encode_text(opts.delimiter.join(opts.null if c is None else _escape(p.decode_text(c, codec),
                                                                                      opts.delimiter)
                                                  for c in r) + "\n", codec) for r in rows]
    return out


# ----------------------------------------------------------------------------- binary

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
BINARY_HEADER = BINARY_SIGNATURE + struct.pack("!ii", 0, 0)  # no flags, no header extension
BINARY_TRAILER = struct.pack("!h", -1)


def _binary_row(cells: tuple[bytes | None, ...]) -> bytes:
    parts = [struct.pack("!h", len(cells))]
    for c in cells:
        parts.append(b"\xff\xff\xff\xff" if c is None else struct.pack("!i", len(c)) + c)
    return b"".join(parts)


def _bad_binary(message: str) -> errors.Error:
    return errors.Error(message, sqlstate="22P04")  # bad_copy_file_format


def parse_binary_rows(data: bytes, oids: list[int]) -> list[list[Any]]:
    """The rows of COPY FROM STDIN (FORMAT BINARY), each field decoded by its column's
    binary receive format (``oids``)."""
    if not data.startswith(BINARY_SIGNATURE):
        raise _bad_binary("COPY file signature not recognized")
    if len(data) < 19:
        raise _bad_binary("invalid COPY file header (missing flags)")
    flags, ext = struct.unpack_from("!ii", data, 11)
    if flags & (1 << 16):
        raise errors.FeatureNotSupported("COPY binary data with OIDs is not supported")
    if flags & ~0xFFFF & ~(1 << 16):
        raise _bad_binary("invalid COPY file header (unrecognized critical flags)")
    if ext < 0 or 19 + ext > len(data):
        raise _bad_binary("invalid COPY file header (wrong length)")
    pos, rows, line = 19 + ext, [], 0
    while True:
        line += 1
        if pos + 2 > len(data):
            raise _bad_binary(f"unexpected EOF in COPY data (line {line})")
        (count,) = struct.unpack_from("!h", data, pos)
        pos += 2
        if count == -1:
            if pos != len(data):
                raise _bad_binary(f"received copy data after EOF marker (line {line})")
            return rows
        if count != len(oids):
            raise _bad_binary(f"row field count is {count}, expected {len(oids)} (line {line})")
        row: list[Any] = []
        for oid in oids:
            if pos + 4 > len(data):
                raise _bad_binary(f"unexpected EOF in COPY data (line {line})")
            (size,) = struct.unpack_from("!i", data, pos)
            pos += 4
            if size == -1:
                row.append(None)
                continue
            if size < 0 or pos + size > len(data):
                raise _bad_binary(f"invalid field size (line {line})")
            row.append(decode_param(data[pos:pos + size], oid, 1))
            pos += size
        rows.append(row)
