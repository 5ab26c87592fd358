"""Sequences: nextval, currval, setval, lastval, the sequences behind identity columns and
``DEFAULT nextval(...)``, and the lookups of their definitions (CREATE / ALTER / DROP
SEQUENCE: sequence_ddl.py).

Definitions are objects of the branch (``sequence/<name>``, catalog/objects.py); values come
from a global counter per sequence (catalog/sequences.py), so concurrent writers never draw
the same value. In SQL the functions become calls of one DuckDB function reeldb registers
(a Python function with side effects, called once per chunk of rows), naming the session by
a token: ``SELECT nextval('s') FROM generate_series(1, 3)`` draws three values, as in
Postgres, with one reservation of the counter.
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast

from .. import errors
from ..catalog import objects
from ..catalog.sequences import SequenceDef
from ..engine.engine import internal_name
from .names import schema_of, schemas, table_key
from .parse import func

if TYPE_CHECKING:
    from .session import Session

UDF = internal_name("seq")
_TOKENS = itertools.count(1)
_SESSIONS: weakref.WeakValueDictionary[int, Session] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()
FUNCTIONS = ("nextval", "currval", "setval", "lastval")


# -- names ---------------------------------------------------------------------------------------
def sequence_name(s: Session, text: str) -> str:
    """A sequence named in text as ``regclass`` reads it ('s', 'public.s', '"S"',
    'schema.s') -> its key in the branch's objects."""
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
             for p in re.findall(r'"(?:[^"]|"")*"|[^.]+', text.strip())]
    if len(parts) == 2 and parts[0] == "public":
        return parts[1]
    if len(parts) == 2 and parts[0] in schemas(s):
        return table_key(parts[0], parts[1])
    if len(parts) != 1:
        raise errors.UndefinedTable(f'relation "{text}" does not exist')
    return parts[0]


def definitions(s: Session) -> dict[str, SequenceDef]:
    return {n: SequenceDef.from_json(d) for n, d in objects.named(s.catalog_objects(), objects.SEQUENCE).items()}


def lookup(s: Session, name: str) -> SequenceDef:
    d = s.catalog_objects().get(objects.key(objects.SEQUENCE, name))
    if d is None:
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    return SequenceDef.from_json(d)


# -- values --------------------------------------------------------------------------------------
def writable(s: Session, fn: str) -> None:
    """Drawing or setting a value changes the database: refused for a read-only login or
    transaction, as Postgres refuses nextval() in a read-only transaction (25006)."""
    s.authorize("write", branch=None)
    if s.characteristics.read_only or s.pinned is not None:
        raise errors.ReadOnlySqlTransaction(f"cannot execute {fn}() in a read-only transaction")


def serial_column(s: Session, name: str) -> tuple[str, int] | None:
    """(table id, column id) of the SERIAL column whose sequence Postgres would name
    ``name`` (``<table>_<column>_seq``): SERIAL values come from a counter of the column."""
    if not name.endswith("_seq"):
        return None
    tables = s.current_tables()
    for table in tables:
        local = table.rpartition(".")[2]
        if not name.rpartition(".")[2].startswith(local + "_"):
            continue
        tm = tables[table]
        for c in tm.schema.columns:
            if c.type.serial and name == f"{table}_{c.name}_seq":
                return tm.table_id, c.id
    return None


def next_values(s: Session, name: str, n: int) -> list[int]:
    """``n`` values of sequence ``name`` (for nextval and column defaults)."""
    writable(s, "nextval")
    if objects.key(objects.SEQUENCE, name) not in s.catalog_objects():
        serial = serial_column(s, name)
        if serial is None:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        start = s.catalog.sequence(serial[0], serial[1], n)
        values = list(range(start, start + n))
        _state(s)["curr"][name] = values[-1]
        _state(s)["last"] = values[-1]
        return values
    seq = lookup(s, name)
    values = s.catalog.sequences.next_values(name, seq, n)
    if len(values) < n:  # the bound was reached within the batch
        values += s.catalog.sequences.next_values(name, seq, n - len(values))
    if values:
        _state(s)["curr"][name] = values[-1]
        _state(s)["last"] = values[-1]
    return values


def set_value(s: Session, name: str, value: int, is_called: bool = True) -> int:
    writable(s, "setval")
    if objects.key(objects.SEQUENCE, name) not in s.catalog_objects() and serial_column(s, name) is not None:
        raise errors.FeatureNotSupported(
            f'setval of "{name}" is not supported: a SERIAL column draws from a counter shared by every branch, '
            "which only moves forward; use an identity column or CREATE SEQUENCE to set values")
    seq = lookup(s, name)
    if not seq.min <= value <= seq.max:
        raise errors.DataError(f'setval: value {value} is out of bounds for sequence "{name}" '
                               f"({seq.min}..{seq.max})", sqlstate="22003")
    refuse_if_shared(s, seq, name, "setval")
    s.catalog.sequences.set_value(seq, value, is_called)
    if is_called:
        _state(s)["curr"][name] = value
        _state(s)["last"] = value
    return value


def current_value(s: Session, name: str) -> int:
    if serial_column(s, name) is None:
        lookup(s, name)
    got = _state(s)["curr"].get(name)
    if got is None:
        raise errors.ObjectNotInPrerequisiteState(f'currval of sequence "{name}" is not yet defined in this session',
                                                  sqlstate="55000")
    return got


def last_value(s: Session) -> int:
    got = _state(s)["last"]
    if got is None:
        raise errors.ObjectNotInPrerequisiteState("lastval is not yet defined in this session", sqlstate="55000")
    return got


def refuse_if_shared(s: Session, seq: SequenceDef, name: str, what: str) -> None:
    """A sequence made before a branch was created is one counter on both branches: moving it
    here would make the other branch draw values it has already used. Refused (0A000)."""
    for branch, cid in s.catalog.refs.branches().items():
        if branch == s.branch:
            continue
        held = s.catalog.commit(cid).objects.get(objects.key(objects.SEQUENCE, name))
        if held is not None and SequenceDef.from_json(held).id == seq.id:
            raise errors.FeatureNotSupported(
                f'{what} of sequence "{name}" is not supported while branch "{branch}" also has it: '
                "the branches draw from one counter, and moving it would hand out values again")


def forget(s: Session) -> None:
    """DISCARD SEQUENCES: currval and lastval are undefined again in this session."""
    s.__dict__.pop("_sequence_state", None)


def _state(s: Session) -> dict[str, Any]:
    """The session's currval / lastval memory (Postgres keeps it per session)."""
    st = s.__dict__.get("_sequence_state")
    if st is None:
        st = s.__dict__["_sequence_state"] = {"curr": {}, "last": None}
    return st


# -- SQL functions -------------------------------------------------------------------------------
def rewrite_call(s: Session, fn: str, args: list[ast.Node]) -> ast.Node:
    """nextval(name) and friends -> the call of reeldb's registered function for this
    session, evaluated by DuckDB once per row."""
    want = {"nextval": (1, 1), "currval": (1, 1), "setval": (2, 3), "lastval": (0, 0)}[fn]
    if not want[0] <= len(args) <= want[1]:
        raise errors.UndefinedFunction(f"function {fn} with {len(args)} arguments does not exist")
    token = _register(s)
    name = args[0] if args else ast.A_Const(val=ast.String(sval=""))
    value = args[1] if len(args) > 1 else ast.A_Const(val=ast.Integer(ival=0))
    called = args[2] if len(args) > 2 else ast.A_Const(val=ast.Boolean(boolval=True))
    return func(UDF, ast.A_Const(val=ast.Integer(ival=token)), ast.A_Const(val=ast.String(sval=fn)),
                _cast(name, "varchar"), _cast(value, "int8"), _cast(called, "bool"))


def _cast(node: ast.Node, typename: str) -> ast.Node:
    return ast.TypeCast(arg=node, typeName=ast.TypeName(names=(ast.String(sval=typename),), typemod=-1))


def _register(s: Session) -> int:
    """The session's token; the first one also registers the function with the session's
    DuckDB database (shared by its connections: registered once, reused)."""
    with _LOCK:
        token = s.__dict__.get("_sequence_token")
        if token is None:
            from duckdb import sqltypes as t

            try:
                s.engine.con.create_function(UDF, _call, [t.BIGINT, t.VARCHAR, t.VARCHAR, t.BIGINT, t.BOOLEAN],
                                             t.BIGINT, type="arrow", null_handling="special", side_effects=True)
            except Exception as e:  # noqa: BLE001 - registered before, by another session of the database
                if "already exists" not in str(e):
                    raise
            token = s.__dict__["_sequence_token"] = next(_TOKENS)
            _SESSIONS[token] = s
    return token


def _call(token: pa.Array, fn: pa.Array, name: pa.Array, value: pa.Array, called: pa.Array) -> pa.Array:
    """The registered function, called by DuckDB once per chunk of rows (Arrow arrays):
    nextval draws the chunk's values of each sequence with one reservation, in row order."""
    n = len(token)
    s = _SESSIONS.get(token[0].as_py()) if n else None
    if n and s is None:
        raise errors.InternalError("sequence function called outside its session")
    if s is None or s.describing:  # a Describe runs a query only for its columns: no value is drawn
        return pa.array([0] * n, pa.int64())
    try:
        return pa.array(_rows(s, fn.to_pylist(), name.to_pylist(), value.to_pylist(), called.to_pylist()),
                        pa.int64())
    except errors.Error as e:
        s.engine.udf_error = e  # the engine raises this one instead of DuckDB's wrapper
        raise


def _rows(s: Session, fns: list, names: list, values: list, called: list) -> list[int | None]:
    out: list[int | None] = [None] * len(fns)
    if all(f == "nextval" for f in fns):
        rows_of: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            if name is not None:
                rows_of.setdefault(name, []).append(i)
        for name, rows in rows_of.items():
            for i, v in zip(rows, next_values(s, sequence_name(s, name), len(rows)), strict=True):
                out[i] = v
        return out
    for i, fn in enumerate(fns):  # currval, setval, lastval: row by row, in order
        if fn == "lastval":
            out[i] = last_value(s)
        elif names[i] is None or (fn == "setval" and (values[i] is None or called[i] is None)):
            out[i] = None
        elif fn == "nextval":
            out[i] = next_values(s, sequence_name(s, names[i]), 1)[0]
        elif fn == "currval":
            out[i] = current_value(s, sequence_name(s, names[i]))
        else:
            out[i] = set_value(s, sequence_name(s, names[i]), values[i], called[i])
    return out


def owned(s: Session, table: str, column: str | None = None) -> list[str]:
    """The sequences owned by a table (or one column of it): dropped with it."""
    txn = s.write_txn()
    out = []
    for name, d in objects.named(txn.objects, objects.SEQUENCE).items():
        t, _, c = (d.get("owned_by") or "").rpartition(".")
        if t == table and (column is None or c == column):
            out.append(name)
    return out


_NEXTVAL_DEFAULT = re.compile(r"^nextval\('((?:[^']|'')+)'(?:::regclass)?\)$", re.IGNORECASE)


def serial_sequences(s: Session) -> dict[tuple[str, str], str]:
    """(table, column) -> the qualified name of its sequence (pg_get_serial_sequence):
    identity columns', OWNED BY, and SERIAL columns'."""
    def qualified(name: str) -> str:
        schema, local = schema_of(name)
        return f"{schema or 'public'}.{local}"

    out: dict[tuple[str, str], str] = {}
    for table, tm in s.current_tables().items():
        for c in tm.schema.columns:
            if c.type.serial:
                out[(table, c.name)] = qualified(f"{table}_{c.name}_seq")
    for name, seq in definitions(s).items():
        if seq.owned_by:
            table, _, column = seq.owned_by.rpartition(".")
            out[(table, column)] = qualified(name)
    return out


def default_sequence(default: str | None) -> str | None:
    """The sequence text of a column default ``nextval('name')``, else None."""
    if default is None:
        return None
    m = _NEXTVAL_DEFAULT.match(default.strip())
    return m.group(1).replace("''", "'") if m else None


def default_values(s: Session, default: str, n: int) -> list[int] | None:
    """The values of ``n`` rows of a column whose default draws from a sequence (each
    row its own value); None when the default is no sequence call."""
    text = default_sequence(default)
    if text is None:
        return None
    return next_values(s, sequence_name(s, text), n)
