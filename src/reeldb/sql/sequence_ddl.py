"""CREATE / ALTER / DROP SEQUENCE, and the sequence of an identity column: the statements
that change a sequence's definition (an object ``sequence/<name>`` of the branch). Drawing
and setting values, and reading the definitions, is sequences.py's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pglast import ast

from .. import errors
from ..catalog import objects
from ..catalog.sequences import TYPE_BOUNDS, SequenceDef, new_id
from ..engine.engine import IDENTIFIER_MAX_BYTES
from . import sequences
from .names import check_new_name, object_table, schema_of, table_key, table_name
from .result import Result

if TYPE_CHECKING:
    from .session import Session

_TYPE_NAMES = {"smallint": "int2", "int2": "int2", "integer": "int4", "int": "int4", "int4": "int4",
               "bigint": "int8", "int8": "int8"}


def _options(stmt_options: tuple | None, base: SequenceDef | None, name: str, *,
             type_name: str | None = None) -> tuple[SequenceDef, dict[str, Any]]:
    """CREATE / ALTER SEQUENCE options (or an identity column's) -> the definition, with
    Postgres' defaults and checks; also the RESTART / OWNED BY options, which are not
    part of it."""
    got: dict[str, Any] = {}
    for opt in stmt_options or ():
        v = opt.arg
        if opt.defname in got:
            raise errors.SyntaxError("conflicting or redundant options")
        if opt.defname == "as":
            tname = ".".join(p.sval for p in v.names).removeprefix("pg_catalog.")
            if tname not in _TYPE_NAMES:
                raise errors.InvalidParameterValue("sequence type must be smallint, integer, or bigint")
            got["as"] = _TYPE_NAMES[tname]
        elif opt.defname == "owned_by":
            got["owned_by"] = [p.sval for p in v]
        elif opt.defname in ("cycle",):
            got["cycle"] = bool(v.boolval) if isinstance(v, ast.Boolean) else True
        elif opt.defname in ("restart",):
            got["restart"] = None if v is None else _int(v)
        elif opt.defname in ("increment", "start", "minvalue", "maxvalue", "cache"):
            got[opt.defname] = None if v is None else _int(v)
        elif opt.defname in ("sequence_name",):
            got["sequence_name"] = [p.sval for p in v]
        else:
            raise errors.FeatureNotSupported(f"sequence option {opt.defname.upper()} is not supported")
    typ = got.get("as") or type_name or (base.type if base else "int8")
    lo, hi = TYPE_BOUNDS[typ]
    inc = got.get("increment") or (base.increment if base else 1)
    if "increment" in got and got["increment"] == 0:
        raise errors.InvalidParameterValue("INCREMENT must not be zero")
    retyped = "as" in got and base is not None and got["as"] != base.type
    mn = got["minvalue"] if got.get("minvalue") is not None else \
        (base.min if base and not retyped and "increment" not in got else (1 if inc > 0 else lo))
    mx = got["maxvalue"] if got.get("maxvalue") is not None else \
        (base.max if base and not retyped and "increment" not in got else (hi if inc > 0 else -1))
    if mn < lo or mx > hi:
        raise errors.InvalidParameterValue(f'{"MINVALUE" if mn < lo else "MAXVALUE"} ({mn if mn < lo else mx}) '
                                           f"is out of range for sequence data type {_SQL_TYPES[typ]}")
    if mn >= mx:
        raise errors.InvalidParameterValue(f"MINVALUE ({mn}) must be less than MAXVALUE ({mx})")
    start = got["start"] if got.get("start") is not None else (base.start if base else (mn if inc > 0 else mx))
    if start < mn:
        raise errors.InvalidParameterValue(f"START value ({start}) cannot be less than MINVALUE ({mn})")
    if start > mx:
        raise errors.InvalidParameterValue(f"START value ({start}) cannot be greater than MAXVALUE ({mx})")
    cache = got["cache"] if got.get("cache") is not None else (base.cache if base else 1)
    if cache < 1:
        raise errors.InvalidParameterValue(f"CACHE ({cache}) must be greater than zero")
    seq = SequenceDef(base.id if base else new_id(), typ, start, inc, mn, mx,
                      got.get("cycle", base.cycle if base else False), cache,
                      base.owned_by if base else None, base.identity if base else None)
    return seq, got


_SQL_TYPES = {"int2": "smallint", "int4": "integer", "int8": "bigint"}


def _int(v: Any) -> int:
    if isinstance(v, ast.Integer):
        return v.ival
    if isinstance(v, ast.Float):
        return int(v.fval)
    if isinstance(v, int):
        return v
    raise errors.SyntaxError(f"invalid sequence option value {v!r}")


def _owned_by(s: Session, parts: list[str], name: str) -> str | None:
    """OWNED BY table.column (or NONE) -> "table.column" of the branch."""
    if parts == ["none"]:
        return None
    if len(parts) < 2:
        raise errors.SyntaxError("invalid OWNED BY option: specify OWNED BY table.column or OWNED BY NONE")
    table = object_table(s, parts[:-1])
    tm = s.write_txn().table(table)
    tm.schema.column(parts[-1])
    return f"{table}.{parts[-1]}"


def create_sequence(s: Session, stmt: ast.CreateSeqStmt) -> Result:
    name = table_name(stmt.sequence, s)
    check_new_name(s, name)
    if len(name.rpartition(".")[2].encode()) > IDENTIFIER_MAX_BYTES:
        raise errors.ProgrammingError(f'sequence name "{name}" is longer than {IDENTIFIER_MAX_BYTES} bytes',
                                      sqlstate="42622")
    if stmt.sequence.relpersistence == "t":
        raise errors.FeatureNotSupported("temporary sequences are not supported")
    txn = s.write_txn()
    key = objects.key(objects.SEQUENCE, name)
    if key in txn.objects or name in txn.tables:
        if stmt.if_not_exists:
            s.notice(f'relation "{name}" already exists, skipping')
            return Result(status="CREATE SEQUENCE")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    seq, got = _options(stmt.options, None, name)
    if "owned_by" in got:
        seq = _with(seq, owned_by=_owned_by(s, got["owned_by"], name))
    txn.set_object(key, seq.to_json())
    s.finish_write()
    return Result(status="CREATE SEQUENCE")


def alter_sequence(s: Session, stmt: ast.AlterSeqStmt) -> Result:
    name = table_name(stmt.sequence, s)
    txn = s.write_txn()
    key = objects.key(objects.SEQUENCE, name)
    if key not in txn.objects:
        if stmt.missing_ok:
            s.notice(f'relation "{name}" does not exist, skipping')
            return Result(status="ALTER SEQUENCE")
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    base = SequenceDef.from_json(txn.objects[key])
    seq, got = _options(stmt.options, base, name)
    if "owned_by" in got:
        seq = _with(seq, owned_by=_owned_by(s, got["owned_by"], name))
    if seq != base:
        txn.set_object(key, seq.to_json())
    if "restart" in got:
        value = seq.start if got["restart"] is None else got["restart"]
        if not seq.min <= value <= seq.max:
            raise errors.InvalidParameterValue(f"RESTART value ({value}) cannot be "
                                               + (f"less than MINVALUE ({seq.min})" if value < seq.min
                                                  else f"greater than MAXVALUE ({seq.max})"))
        sequences.writable(s, "setval")
        sequences.refuse_if_shared(s, seq, name, "ALTER SEQUENCE ... RESTART")
        s.catalog.sequences.set_value(seq, value, False)
    s.finish_write()
    return Result(status="ALTER SEQUENCE")


def _with(seq: SequenceDef, **changes: Any) -> SequenceDef:
    return replace(seq, **changes)


def drop_sequences(s: Session, names: list[str], missing_ok: bool) -> None:
    txn = s.write_txn()
    for name in names:
        key = objects.key(objects.SEQUENCE, name)
        d = txn.objects.get(key)
        if d is None:
            if missing_ok:
                s.notice(f'sequence "{name}" does not exist, skipping')
                continue
            raise errors.UndefinedTable(f'sequence "{name}" does not exist')
        seq = SequenceDef.from_json(d)
        if seq.identity is not None:
            table, _, column = (seq.owned_by or "").rpartition(".")
            raise errors.ProgrammingError(
                f'cannot drop sequence {name} because column {column} of table {table} requires it',
                sqlstate="2BP01")
        txn.set_object(key, None)


def identity_sequence(s: Session, table: str, column: str, kind: str, type_name: str,
                      options: tuple | None) -> str:
    """Create the sequence of an identity column (``<table>_<column>_seq``, as Postgres
    names it); returns its name."""
    txn = s.write_txn()
    schema, local = schema_of(table)
    wanted = None
    for opt in options or ():
        if opt.defname == "sequence_name":
            wanted = ".".join(p.sval for p in opt.arg)
    base = wanted or f"{local}_{column}_seq"
    name = base if schema is None else table_key(schema, base)
    if wanted is None:
        n = 1
        while objects.key(objects.SEQUENCE, name) in txn.objects or name in txn.tables:
            name = (f"{local}_{column}_seq{n}" if schema is None else table_key(schema, f"{local}_{column}_seq{n}"))
            n += 1
    elif objects.key(objects.SEQUENCE, name) in txn.objects or name in txn.tables:
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    seq, _ = _options(tuple(o for o in options or () if o.defname != "sequence_name"), None, name,
                      type_name=type_name)
    seq = _with(seq, owned_by=f"{table}.{column}", identity=kind)
    txn.set_object(objects.key(objects.SEQUENCE, name), seq.to_json())
    return name
