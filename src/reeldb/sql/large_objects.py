"""PostgreSQL's large objects: ``lo_create``, ``lo_open``, ``loread``, ``lowrite`` & co, the
``pg_largeobject_metadata`` catalog and ``GRANT ... ON LARGE OBJECT``.

Clients such as psycopg2 (``connection.lobject``) and psql (``\\lo_import``) reach these
through libpq's fastpath calls (server/fastpath.py turns each into ``SELECT lo_xxx($1, ...)``)
or plain SQL. A large object is an object of the branch's commit (catalog/objects.py, key
``largeobject/<oid>``): its owner, its grants, its size and its pages of ``PAGE`` bytes (a
page never written reads as zeros, so a truncate to 3 GB stores nothing). A page the open
transaction wrote is held in the object (base64); at commit it is stored once under its
checksum (``keys.large_object_page_key``) and the object names it, so a commit never carries
the bytes. So a large object is transactional like any write (a rolled-back
``lo_create``/``lowrite`` leaves nothing), survives a restart, belongs to its branch (a branch
made later has it; a merge brings the other side's) and is never seen by another branch. The
bytes a branch's large objects store are bounded (``MAX_STORED``, 54000 past it): large
media belong in BYTEA / VIDEO columns, which go to blob packs.

Descriptors (``lo_open``) belong to the session and live until its transaction ends; outside
a transaction block a statement is its own transaction, so a descriptor opened there is
gone with it (42704 ``invalid large-object descriptor``), as in PostgreSQL. A descriptor
opened for reading only reads the object as it was when opened.

Rights are PostgreSQL's with ``lo_compat_privileges`` off, for a login that is no
superuser (reeldb has none): the owner (the login that created it) reads and writes; another
login needs ``GRANT SELECT`` (read) or ``GRANT UPDATE`` (write) on the object; only the owner
unlinks or grants. Every change also needs the write right on the branch (read-only logins:
25006). The server-side ``lo_import(path)`` / ``lo_export(oid, path)`` read and write the
server's own files: refused (42501) for every login, as PostgreSQL refuses them to a role that
is neither superuser nor in ``pg_read_server_files`` / ``pg_write_server_files``.

The calls are answered in a ``SELECT`` whose every select-list item is one: without FROM and
with constant or parameter arguments (what libpq and psql send) directly, else over the
statement's rows in their order (``SELECT lo_get(raster) FROM image WHERE ...``,
``SELECT lo_unlink(oid) FROM pg_largeobject_metadata ...``); anywhere else they are 0A000.
"""

from __future__ import annotations

import base64
import copy
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast
from pglast.enums import ObjectType, RoleSpecType

from .. import errors
from ..catalog import objects
from ..format import checksum, keys
from ..format.arrays import bytea_in
from .parse import constant_argument
from .result import Result

if TYPE_CHECKING:
    from .session import Session

KIND = "largeobject/"
INV_WRITE, INV_READ = 0x20000, 0x40000
PAGE = 1 << 16  # bytes per stored page
MAX_STORED = 256 << 20  # bytes a branch's large objects may store (each commit names their pages)
PAGE_CACHE = 256  # stored pages a process keeps in memory (16 MiB)
MAX_RESULT = 256 << 20  # bytes one statement's large-object calls may return
SPILL = 16 << 20  # base64 bytes of pages an open transaction holds in memory before storing them
MAX_SIZE = 2048 * (2**31 - 1)  # PostgreSQL's MAX_LARGE_OBJECT_SIZE (LOBLKSIZE * INT_MAX)
FIRST_OID = 16384  # PostgreSQL's FirstNormalObjectId: new oids are above the built-in ones
_INT4 = (-(2**31), 2**31 - 1)
_INT8 = (-(2**63), 2**63 - 1)

# name -> overloads: (argument types, result type); PostgreSQL 16's pg_proc OIDs below
SIGNATURES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "lo_create": [(("oid",), "oid")],
    "lo_creat": [(("int4",), "oid")],
    "lo_open": [(("oid", "int4"), "int4")],
    "lo_close": [(("int4",), "int4")],
    "loread": [(("int4", "int4"), "bytea")],
    "lowrite": [(("int4", "bytea"), "int4")],
    "lo_lseek": [(("int4", "int4", "int4"), "int4")],
    "lo_lseek64": [(("int4", "int8", "int4"), "int8")],
    "lo_tell": [(("int4",), "int4")],
    "lo_tell64": [(("int4",), "int8")],
    "lo_truncate": [(("int4", "int4"), "int4")],
    "lo_truncate64": [(("int4", "int8"), "int4")],
    "lo_unlink": [(("oid",), "int4")],
    "lo_get": [(("oid",), "bytea"), (("oid", "int8", "int4"), "bytea")],
    "lo_put": [(("oid", "int8", "bytea"), "void")],
    "lo_from_bytea": [(("oid", "bytea"), "oid")],
    "lo_import": [(("text",), "oid"), (("text", "oid"), "oid")],
    "lo_export": [(("oid", "text"), "int4")],
}
FUNCTIONS = frozenset(SIGNATURES)
SERVER_FILE_FUNCTIONS = frozenset({"lo_import", "lo_export"})
# pg_proc OID -> (name, argument types, result type), as PostgreSQL 16 numbers them
PROCS: dict[int, tuple[str, tuple[str, ...], str]] = {
    715: ("lo_create", ("oid",), "oid"), 764: ("lo_import", ("text",), "oid"),
    765: ("lo_export", ("oid", "text"), "int4"), 767: ("lo_import", ("text", "oid"), "oid"),
    952: ("lo_open", ("oid", "int4"), "int4"), 953: ("lo_close", ("int4",), "int4"),
    954: ("loread", ("int4", "int4"), "bytea"), 955: ("lowrite", ("int4", "bytea"), "int4"),
    956: ("lo_lseek", ("int4", "int4", "int4"), "int4"), 957: ("lo_creat", ("int4",), "oid"),
    958: ("lo_tell", ("int4",), "int4"), 964: ("lo_unlink", ("oid",), "int4"),
    1004: ("lo_truncate", ("int4", "int4"), "int4"), 3170: ("lo_lseek64", ("int4", "int8", "int4"), "int8"),
    3171: ("lo_tell64", ("int4",), "int8"), 3172: ("lo_truncate64", ("int4", "int8"), "int4"),
    3457: ("lo_from_bytea", ("oid", "bytea"), "oid"), 3458: ("lo_get", ("oid",), "bytea"),
    3459: ("lo_get", ("oid", "int8", "int4"), "bytea"), 3460: ("lo_put", ("oid", "int8", "bytea"), "void"),
}
_PROSRC = {767: "be_lo_import_with_oid", 3459: "be_lo_get_fragment"}
TYPE_OIDS = {"oid": 26, "int4": 23, "int8": 20, "bytea": 17, "text": 25, "void": 2278}
# name -> its parameters' type OIDs (the longest overload: the others are its prefixes), so a
# Describe tells strict clients (asyncpg) how to send each parameter
ARGUMENT_OIDS = {name: tuple(TYPE_OIDS[t] for t in max(sigs, key=lambda sig: len(sig[0]))[0])
                 for name, sigs in SIGNATURES.items()}
_ARROW = {"oid": pa.uint32(), "int4": pa.int32(), "int8": pa.int64(), "bytea": pa.binary(), "void": pa.string()}
_DUCK = {"oid": "UINTEGER", "int4": "INTEGER", "int8": "BIGINT", "bytea": "BLOB", "void": "VARCHAR"}
_TYPE_NAMES = {"int4": "integer", "int8": "bigint", "bytea": "bytea", "oid": "oid", "text": "text"}


@dataclass
class _Descriptor:
    oid: int
    writable: bool
    snapshot: dict | None  # read-only: the object as it was at lo_open
    pos: int = 0


@dataclass
class Descriptors:
    """A session's open large-object descriptors (fd -> descriptor), closed at the end of
    its transaction."""

    open: dict[int, _Descriptor] = field(default_factory=dict)
    marks: list[frozenset[int]] = field(default_factory=list)  # the fds open at each savepoint, oldest first

    def add(self, d: _Descriptor) -> int:
        fd = 0
        while fd in self.open:  # the lowest free slot, as PostgreSQL hands them out
            fd += 1
        self.open[fd] = d
        return fd

    def get(self, fd: int) -> _Descriptor:
        d = self.open.get(fd)
        if d is None:
            raise errors.UndefinedObject(f"invalid large-object descriptor: {fd}")
        return d

    def clear(self) -> None:
        self.open.clear()
        self.marks.clear()

    def savepoint(self) -> None:
        self.marks.append(frozenset(self.open))

    def release(self, at: int) -> None:
        """RELEASE of the savepoint ``at`` (and those after it): descriptors stay open."""
        del self.marks[at:]

    def rollback_to(self, at: int) -> None:
        """ROLLBACK TO the savepoint ``at`` (kept): the descriptors opened since close, as
        PostgreSQL closes those its aborted subtransactions opened."""
        del self.marks[at + 1:]
        for fd in [fd for fd in self.open if fd not in self.marks[at]]:
            del self.open[fd]


def end_of_transaction(s: Session) -> None:
    """Every descriptor is closed when the transaction ends, committed or not."""
    s.large_objects.clear()


# -- SQL -------------------------------------------------------------------------------------------
def select_call(s: Session, stmt: ast.SelectStmt, params: list[Any]) -> Result | None:
    """``SELECT lo_xxx(...) [, ...] [FROM ... WHERE ... ORDER BY ... LIMIT ...]`` where every
    select-list item is a large-object call: the rows are selected first, then each row's
    calls run in row order (as PostgreSQL evaluates volatile output expressions after ORDER
    BY and LIMIT). Without FROM, with constant or parameter arguments (libpq's calls), no
    query runs at all. None when no select-list item is such a call (one anywhere else is
    refused by the allow-list with 0A000); 0A000 when the statement is more than that."""
    targets = stmt.targetList or ()
    calls = [t.val for t in targets if isinstance(t.val, ast.FuncCall) and _name(t.val) in FUNCTIONS]
    if not calls:
        return None
    shaped = (not stmt.groupClause and stmt.havingClause is None and stmt.valuesLists is None
              and int(stmt.op) == 0 and stmt.withClause is None and stmt.distinctClause is None
              and not stmt.windowClause and not stmt.lockingClause and stmt.intoClause is None
              and len(calls) == len(targets)
              and not any(isinstance(by.node, ast.A_Const) for by in stmt.sortClause or ())
              and all(fc.over is None and fc.agg_filter is None and fc.agg_order is None and not fc.agg_star
                      and not fc.agg_distinct and not fc.func_variadic for fc in calls))
    if not shaped:
        raise errors.FeatureNotSupported(
            f"{_name(calls[0])}() is supported only when every select-list item is a large-object call, "
            "in a SELECT without GROUP BY, DISTINCT, window or set operations")
    names = [_name(fc) for fc in calls]
    for name in names:
        if name in SERVER_FILE_FUNCTIONS:  # before anything else, as PostgreSQL's EXECUTE check
            raise errors.InsufficientPrivilege(f"permission denied for function {name}")
    signatures = [_overload(name, list(fc.args or ())) for name, fc in zip(names, calls, strict=True)]
    columns = [t.name or name for t, name in zip(targets, names, strict=True)]
    types = [result for _, result in signatures]
    if s.describing:  # a Describe runs nothing: only the columns come back
        return _result(columns, types, [[] for _ in types])
    rows = _argument_rows(s, stmt, params, calls)
    values: list[list[Any]] = [[] for _ in calls]
    returned = 0
    try:
        for row in rows:
            for i, (name, args, (arg_types, _)) in enumerate(zip(names, row, signatures, strict=True)):
                value = call(s, name, [_coerce(v, t) for v, t in zip(args, arg_types, strict=True)])
                returned += len(value) if isinstance(value, bytes) else 8
                if returned > MAX_RESULT:
                    raise errors.ProgramLimitExceeded(
                        f"the large-object calls of this statement would return over {MAX_RESULT >> 20} MiB")
                values[i].append(value)
        if s.txn is None:
            _finish(s)
    finally:
        if s.txn is None:
            s.large_objects.clear()
    return _result(columns, types, values)


def _argument_rows(s: Session, stmt: ast.SelectStmt, params: list[Any],
                   calls: list[ast.FuncCall]) -> list[list[list[Any]]]:
    """Each row's arguments of each call: the constants themselves for a statement of calls
    alone, else the rows of the statement with its select list replaced by the arguments."""
    if not (stmt.fromClause or stmt.whereClause is not None or stmt.sortClause or stmt.limitCount is not None
            or stmt.limitOffset is not None):
        try:
            return [[[_constant(a, params) for a in fc.args or ()] for fc in calls]]
        except _NotConstant:
            pass
    query = copy.deepcopy(stmt)
    query.targetList = tuple(ast.ResTarget(name=f"lo_argument_{i}_{j}", val=arg)
                             for i, fc in enumerate(calls) for j, arg in enumerate(fc.args or ()))
    table, _ = s.run_query(query, params)
    out = []
    for record in table.to_pylist():
        got = list(record.values())
        row, at = [], 0
        for fc in calls:
            n = len(fc.args or ())
            row.append(got[at:at + n])
            at += n
        out.append(row)
    return out


class _NotConstant(Exception):
    """An argument that is neither a constant nor a parameter: it needs the query."""


def _finish(s: Session) -> None:
    """Outside a block the statement is its own transaction: publish it now."""
    if s.open_txn is not None:
        before_commit(s, s.open_txn)
    s.finish_write()


def _result(names: list[str], types: list[str], values: list[list[Any]]) -> Result:
    table = pa.table({f"c{i}": pa.array(v, _ARROW[t]) for i, (v, t) in enumerate(zip(values, types, strict=True))})
    table = table.rename_columns(names)
    n = table.num_rows
    return Result(table, [(c, _DUCK[t]) for c, t in zip(names, types, strict=True)], n, f"SELECT {n}")


def _name(fc: ast.FuncCall) -> str:
    parts = [n.sval for n in fc.funcname]
    if len(parts) == 2 and parts[0] == "pg_catalog":
        return parts[1]
    return ".".join(parts) if len(parts) > 1 else parts[0]


def _constant(node: Any, params: list[Any]) -> Any:
    ok, value = constant_argument(node, params)
    if not ok:
        raise _NotConstant()
    return value


def _overload(name: str, args: list[Any]) -> tuple[tuple[str, ...], str]:
    for arg_types, result in SIGNATURES[name]:
        if len(arg_types) == len(args):
            return arg_types, result
    shown = ", ".join("unknown" for _ in args)
    raise errors.UndefinedFunction(f"function {name}({shown}) does not exist")


def _coerce(value: Any, kind: str) -> Any:
    """A SQL argument as the function's parameter type reads it (NULL stays None)."""
    if value is None:
        return None
    if kind == "bytea":
        return bytea(value)
    if kind == "text":
        return str(value)
    try:
        n = int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type {_TYPE_NAMES[kind]}: "{value}"') from None
    if kind == "oid":
        if not -(2**31) <= n <= 2**32 - 1:
            raise errors.InvalidTextRepresentation(f'value "{value}" is out of range for type oid')
        return n % 2**32
    lo, hi = _INT4 if kind == "int4" else _INT8
    if not lo <= n <= hi:
        raise errors.NumericValueOutOfRange("integer out of range" if kind == "int4" else "bigint out of range")
    return n


def bytea(value: Any) -> bytes:
    """A bytea value: bytes as they are, text in PostgreSQL's hex (``\\x..``) or escape form."""
    return bytea_in(value if isinstance(value, bytes | bytearray | memoryview | str) else str(value), "data")


# -- the functions -------------------------------------------------------------------------------
def call(s: Session, name: str, args: list[Any]) -> Any:
    """One large-object function (strict: a NULL argument gives NULL and does nothing)."""
    if name in SERVER_FILE_FUNCTIONS:
        raise errors.InsufficientPrivilege(f"permission denied for function {name}")
    if any(a is None for a in args):
        return None
    return _FUNCTIONS[name](s, *args)


def _key(oid: int) -> str:
    return objects.key(KIND, oid)


def _find(s: Session, oid: int) -> dict:
    d = s.catalog_objects().get(_key(oid))
    if d is None:
        raise errors.UndefinedObject(f"large object {oid} does not exist")
    return d


def _may(s: Session, d: dict, privilege: str) -> bool:
    acl = d.get("acl") or {}
    return d["owner"] == s.user or privilege in acl.get(s.user, "") or privilege in acl.get("", "")


def _check(s: Session, oid: int, d: dict, privilege: str) -> None:
    if not _may(s, d, privilege):
        raise errors.InsufficientPrivilege(f"permission denied for large object {oid}")


def _store(s: Session, oid: int, d: dict | None) -> None:
    """Write (or with None drop) one large object in the open transaction, within the
    branch's bound on stored bytes."""
    txn = s.write_txn()
    if d is not None:
        total = sum(v.get("stored", 0) for k, v in txn.objects.items() if k.startswith(KIND) and k != _key(oid))
        if total + d["stored"] > MAX_STORED:
            raise errors.ProgramLimitExceeded(
                f"large object {oid} would take the branch's large objects past {MAX_STORED / (1 << 20):g} MiB; "
                "store large values in BYTEA, VIDEO or TENSOR columns instead")
    txn.set_object(_key(oid), d)
    pending = sum(len(text) for k, v in txn.object_changes.items() if v is not None and k.startswith(KIND)
                  for text in v["pages"].values() if not text.startswith("@"))
    if pending > SPILL:  # a transaction's memory is bounded: its pages go to storage early
        before_commit(s, txn)


def _new(s: Session, oid: int) -> int:
    objs = s.write_txn().objects
    if oid == 0:
        oid = FIRST_OID + secrets.randbelow(2**32 - 1 - FIRST_OID)  # unlikely to meet another branch's
        while _key(oid) in objs:
            oid = FIRST_OID + secrets.randbelow(2**32 - 1 - FIRST_OID)
    elif _key(oid) in objs:
        raise errors.UniqueViolation(
            'duplicate key value violates unique constraint "pg_largeobject_metadata_oid_index"')
    _store(s, oid, {"owner": s.user, "acl": None, "size": 0, "stored": 0, "pages": {}})
    return oid


def lo_create(s: Session, oid: int) -> int:
    return _new(s, oid)


def lo_creat(s: Session, mode: int) -> int:
    return _new(s, 0)  # the mode is ignored, as in PostgreSQL


def lo_from_bytea(s: Session, oid: int, data: bytes) -> int:
    oid = _new(s, oid)
    _store(s, oid, _written(s, _find(s, oid), 0, data))
    return oid


def lo_open(s: Session, oid: int, mode: int) -> int:
    if not mode & (INV_READ | INV_WRITE):
        raise errors.InvalidParameterValue(f"invalid flags for opening a large object: {mode}")
    d = _find(s, oid)
    _check(s, oid, d, "r")
    writable = bool(mode & INV_WRITE)
    if writable:
        _check(s, oid, d, "w")
        s.write_txn()  # a read-only login or transaction: 25006 now
    return s.large_objects.add(_Descriptor(oid, writable, None if writable else d))


def lo_close(s: Session, fd: int) -> int:
    s.large_objects.get(fd)
    del s.large_objects.open[fd]
    return 0


def _current(s: Session, desc: _Descriptor) -> dict:
    return desc.snapshot if desc.snapshot is not None else _find(s, desc.oid)


def _writable(s: Session, fd: int) -> _Descriptor:
    desc = s.large_objects.get(fd)
    if not desc.writable:
        raise errors.ObjectNotInPrerequisiteState(f"large object descriptor {fd} was not opened for writing")
    return desc


def loread(s: Session, fd: int, length: int) -> bytes:
    desc = s.large_objects.get(fd)
    data = _read(s, _current(s, desc), desc.pos, max(length, 0))
    desc.pos += len(data)
    return data


def lowrite(s: Session, fd: int, data: bytes) -> int:
    desc = _writable(s, fd)
    if desc.pos + len(data) > MAX_SIZE:
        raise errors.InvalidParameterValue(f"invalid large object write request size: {len(data)}")
    _store(s, desc.oid, _written(s, _find(s, desc.oid), desc.pos, data))
    desc.pos += len(data)
    return len(data)


def _seek(s: Session, fd: int, offset: int, whence: int) -> int:
    desc = s.large_objects.get(fd)
    if whence == 0:
        target = offset
    elif whence == 1:
        target = desc.pos + offset
    elif whence == 2:
        target = _current(s, desc)["size"] + offset
    else:
        raise errors.InvalidParameterValue(f"invalid whence setting: {whence}")
    if not 0 <= target <= MAX_SIZE:
        raise errors.InvalidParameterValue(f"invalid large object seek target: {target}")
    desc.pos = target
    return target


def lo_lseek(s: Session, fd: int, offset: int, whence: int) -> int:
    pos = _seek(s, fd, offset, whence)
    if pos > _INT4[1]:
        raise errors.NumericValueOutOfRange(f"lo_lseek result out of range for large-object descriptor {fd}")
    return pos


def lo_lseek64(s: Session, fd: int, offset: int, whence: int) -> int:
    return _seek(s, fd, offset, whence)


def lo_tell(s: Session, fd: int) -> int:
    pos = s.large_objects.get(fd).pos
    if pos > _INT4[1]:
        raise errors.NumericValueOutOfRange(f"lo_tell result out of range for large-object descriptor {fd}")
    return pos


def lo_tell64(s: Session, fd: int) -> int:
    return s.large_objects.get(fd).pos


def lo_truncate64(s: Session, fd: int, length: int) -> int:
    desc = _writable(s, fd)
    if not 0 <= length <= MAX_SIZE:
        raise errors.InvalidParameterValue(f"invalid large object truncation target: {length}")
    _store(s, desc.oid, _truncated(s, _find(s, desc.oid), length))
    return 0


lo_truncate = lo_truncate64


def lo_unlink(s: Session, oid: int) -> int:
    d = _find(s, oid)
    if d["owner"] != s.user:
        raise errors.InsufficientPrivilege(f"must be owner of large object {oid}")
    _store(s, oid, None)
    for fd in [fd for fd, desc in s.large_objects.open.items() if desc.oid == oid]:
        del s.large_objects.open[fd]  # its open descriptors close, as in PostgreSQL
    return 1


def _lo_get(s: Session, oid: int, offset: int = 0, length: int | None = None) -> bytes:
    d = _find(s, oid)
    _check(s, oid, d, "r")
    if offset < 0:
        raise errors.InvalidParameterValue(f"invalid large object seek target: {offset}")
    if length is not None and length < 0:
        raise errors.InvalidParameterValue("requested length cannot be negative")
    return _read(s, d, offset, d["size"] - offset if length is None else length)


def lo_put(s: Session, oid: int, offset: int, data: bytes) -> str:
    d = _find(s, oid)
    _check(s, oid, d, "r")
    _check(s, oid, d, "w")
    if not 0 <= offset <= MAX_SIZE:
        raise errors.InvalidParameterValue(f"invalid large object seek target: {offset}")
    _store(s, oid, _written(s, d, offset, data))
    return ""


_FUNCTIONS = {
    "lo_create": lo_create, "lo_creat": lo_creat, "lo_from_bytea": lo_from_bytea, "lo_open": lo_open,
    "lo_close": lo_close, "loread": loread, "lowrite": lowrite, "lo_lseek": lo_lseek, "lo_lseek64": lo_lseek64,
    "lo_tell": lo_tell, "lo_tell64": lo_tell64, "lo_truncate": lo_truncate, "lo_truncate64": lo_truncate64,
    "lo_unlink": lo_unlink, "lo_get": _lo_get, "lo_put": lo_put,
}


# -- pages -----------------------------------------------------------------------------------------
# A page is either pending (base64, written by the open transaction) or stored
# ("@<checksum>:<length>", an object under keys.LARGE_OBJECT_PAGES written at commit).
_cache: OrderedDict[tuple[int, str], bytes] = OrderedDict()
_cache_lock = threading.Lock()


def _page(s: Session, d: dict, n: int) -> bytes:
    text = d["pages"].get(str(n))
    if not text:
        return b""
    if not text.startswith("@"):
        return base64.b64decode(text)
    digest = text[1:].partition(":")[0]
    store = s.catalog.store
    with _cache_lock:
        got = _cache.get((id(store), digest))
        if got is not None:
            _cache.move_to_end((id(store), digest))
            return got
    key = keys.large_object_page_key(digest)
    data = store.get(key)
    checksum.check(key, data, digest)  # XX001 when the page is not what the commit recorded
    with _cache_lock:
        _cache[(id(store), digest)] = data
        while len(_cache) > PAGE_CACHE:
            _cache.popitem(last=False)
    return data


def _page_length(s: Session, d: dict, n: int) -> int:
    text = d["pages"].get(str(n)) or ""
    if text.startswith("@"):
        return int(text.rpartition(":")[2])
    return len(_page(s, d, n))


def _read(s: Session, d: dict, offset: int, length: int) -> bytes:
    end = min(d["size"], offset + length)
    if offset >= end:
        return b""
    out = bytearray(end - offset)  # pages never written read as zeros
    for n in range(offset // PAGE, (end - 1) // PAGE + 1):
        raw = _page(s, d, n)
        start = n * PAGE
        lo, hi = max(offset, start), min(end, start + len(raw))
        if hi > lo:
            out[lo - offset:hi - offset] = raw[lo - start:hi - start]
    return bytes(out)


def _written(s: Session, d: dict, offset: int, data: bytes) -> dict:
    """``d`` with ``data`` written at ``offset`` (a new definition: the old one may be a
    descriptor's snapshot or a savepoint's)."""
    if not data:
        return d
    pages, stored = dict(d["pages"]), d["stored"]
    end = offset + len(data)
    for n in range(offset // PAGE, (end - 1) // PAGE + 1):
        start = n * PAGE
        page = bytearray(_page(s, d, n))
        stored -= len(page)
        lo, hi = max(offset, start), min(end, start + PAGE)
        if len(page) < hi - start:
            page.extend(bytes(hi - start - len(page)))
        page[lo - start:hi - start] = data[lo - offset:hi - offset]
        pages[str(n)] = base64.b64encode(page).decode()
        stored += len(page)
    return {**d, "pages": pages, "size": max(d["size"], end), "stored": stored}


def _truncated(s: Session, d: dict, length: int) -> dict:
    pages, stored = {}, 0
    for key, text in d["pages"].items():
        n = int(key)
        start = n * PAGE
        if start >= length:
            continue
        size = _page_length(s, d, n)
        if start + size > length:
            raw = _page(s, d, n)[:length - start]
            text, size = base64.b64encode(raw).decode(), len(raw)
        pages[key] = text
        stored += size
    return {**d, "pages": pages, "size": length, "stored": stored}


def before_commit(s: Session, txn: Any) -> None:
    """Store the pages the transaction wrote (content-addressed, once each), so its commit
    names them by checksum instead of carrying their bytes: a commit stays small however
    large the branch's large objects are."""
    for key, d in list(txn.object_changes.items()):
        if d is None or not key.startswith(KIND):
            continue
        pages = dict(d["pages"])
        pending = {n: text for n, text in pages.items() if not text.startswith("@")}
        if not pending:
            continue
        for n, text in pending.items():
            data = base64.b64decode(text)
            digest = checksum.digest(data)
            s.catalog.store.put_if_absent(keys.large_object_page_key(digest), data)
            pages[n] = f"@{digest}:{len(data)}"
        txn.set_object(key, {**d, "pages": pages})


# -- GRANT / REVOKE ... ON LARGE OBJECT ------------------------------------------------------------
_PRIVILEGES = {"select": "r", "update": "w"}


def grant(s: Session, stmt: ast.GrantStmt) -> Result:
    """GRANT / REVOKE SELECT, UPDATE (or ALL) ON LARGE OBJECT n TO/FROM role | PUBLIC: only
    the owner may (this is a change of the branch, so it needs the write right too)."""
    if stmt.objtype != ObjectType.OBJECT_LARGEOBJECT:
        raise errors.FeatureNotSupported(
            "GRANT and REVOKE are supported on large objects only: reeldb's rights are per login and branch "
            "(reeldb user add)")
    if stmt.grant_option:
        raise errors.FeatureNotSupported("WITH GRANT OPTION on a large object is not supported")
    privs = ""
    for p in stmt.privileges or ({"priv_name": "select"}, {"priv_name": "update"}):
        name = p["priv_name"] if isinstance(p, dict) else p.priv_name
        if name not in _PRIVILEGES or (not isinstance(p, dict) and p.cols):
            raise errors.InvalidGrantOperation(f"invalid privilege type {name.upper()} for large object")
        privs += _PRIVILEGES[name]
    grantees = []
    for g in stmt.grantees or ():
        if g.roletype == RoleSpecType.ROLESPEC_PUBLIC:
            grantees.append("")
        elif g.roletype == RoleSpecType.ROLESPEC_CSTRING:
            grantees.append(g.rolename)
        else:
            grantees.append(s.user)  # CURRENT_USER, SESSION_USER, CURRENT_ROLE
    for obj in stmt.objects or ():
        oid = _coerce(obj.ival if isinstance(obj, ast.Integer) else obj.fval, "oid")
        d = _find(s, oid)
        if d["owner"] != s.user:
            raise errors.InsufficientPrivilege(f"permission denied for large object {oid}")
        acl = dict(d.get("acl") or {d["owner"]: "rw"})  # the first grant makes the owner's default explicit
        for who in grantees:
            have = acl.get(who, "")
            if stmt.is_grant:
                now = "".join(c for c in "rw" if c in have or c in privs)
            else:
                now = "".join(c for c in "rw" if c in have and c not in privs)
            if now:
                acl[who] = now
            else:
                acl.pop(who, None)
        _store(s, oid, {**d, "acl": acl})
    if s.txn is None:
        _finish(s)
    return Result(status="GRANT" if stmt.is_grant else "REVOKE")


def comment(s: Session, stmt: ast.CommentStmt) -> Result:
    """COMMENT ON LARGE OBJECT n IS 'text' | NULL: the owner's, kept in the object (psql's
    ``\\lo_import file 'comment'`` sets it; ``\\lo_list`` shows it)."""
    oid = _coerce(stmt.object.ival if isinstance(stmt.object, ast.Integer) else stmt.object.fval, "oid")
    d = _find(s, oid)
    if d["owner"] != s.user:
        raise errors.InsufficientPrivilege(f"must be owner of large object {oid}")
    _store(s, oid, {**d, "comment": stmt.comment or None})
    if s.txn is None:
        _finish(s)
    return Result(status="COMMENT")


def comments(objs: dict[str, Any]) -> list[tuple[int, str]]:
    """(oid, comment) of each large object that has one, for ``pg_description``."""
    return [(int(name), d["comment"]) for name, d in objects.named(objs, KIND).items() if d.get("comment")]


# -- the catalog ------------------------------------------------------------------------------------
def proc_rows(namespace: int, owner: int) -> list[dict[str, Any]]:
    """pg_proc's rows of the large-object functions (libpq looks their OIDs up there)."""
    return [{"oid": oid, "proname": name, "pronamespace": namespace, "proowner": owner, "prokind": "f",
             "prorettype": TYPE_OIDS[result], "proargtypes": [TYPE_OIDS[t] for t in args],
             "prosrc": _PROSRC.get(oid, f"be_{name}")} for oid, (name, args, result) in sorted(PROCS.items())]


def metadata(objs: dict[str, Any]) -> list[tuple[int, str, list[str] | None]]:
    """(oid, owner, acl as PostgreSQL prints it) of each large object, for
    ``pg_largeobject_metadata``."""
    out = []
    for name, d in sorted(objects.named(objs, KIND).items(), key=lambda kv: int(kv[0])):
        acl = d.get("acl")
        shown = None if acl is None else [f"{who}={privs}/{d['owner']}" for who, privs in acl.items()]
        out.append((int(name), d["owner"], shown))
    return out
