"""The one table of SQL types: an entry per PostgreSQL type, looked up by OID, by any of its
names, by reeldb column kind and by DuckDB type name.

Every layer that needs to know a type asks here: the catalog (``pg_type``, ``format_type``,
column OIDs), the wire (result columns' OIDs, text and binary codecs, Bind parameters),
``pg_typeof``, PEP 249's type objects and the Python values a cursor hands out. A type is
added with ``register(info)``: the built-in types (types/builtin.py) and the extension
types (types/pgvector.py, types/citext.py, types/hstore.py) all go through it, and it
refuses an OID, a name or a DuckDB name that another entry has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from .. import errors
from ..format.arrays import ARRAY_KINDS
from ..format.types import ColumnType
from .oids import PG_CATALOG_NS


class WireText(Protocol):
    """How text inside a binary value is encoded: PostgreSQL's textsend / textrecv use the
    client encoding, so the server hands its own; ``UTF8`` elsewhere."""

    def encode(self, text: str) -> bytes: ...

    def decode(self, data: bytes) -> str: ...


class _Utf8:
    def encode(self, text: str) -> bytes:
        return text.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return bytes(data).decode("utf-8")


UTF8: WireText = _Utf8()

TextOut = Callable[[Any], str]  # a Python value -> PostgreSQL's text output
TextIn = Callable[[str], Any]  # a parameter's text -> the Python value the SQL layer binds
Send = Callable[[Any, WireText], bytes]  # a Python value -> PostgreSQL's binary (typsend)
Recv = Callable[[bytes, WireText], Any]  # binary (typreceive) -> the Python value bound
PyOut = Callable[[pa.Array], list[Any]]  # a result column -> the Python values a user gets
PyIn = Callable[[Any], Any]  # a Python value -> the value stored

# PEP 249's type groups, in the order the DB-API lists them
PEP249_GROUPS = ("STRING", "BINARY", "NUMBER", "DATETIME", "ROWID")


@dataclass(frozen=True)
class TypeInfo:
    """One PostgreSQL type, as every layer of reeldb sees it. Codecs left None mean: text
    passes through as text (``text_in``), PostgreSQL's text of the Python value
    (``text_out``: types/codecs.text_out), no binary form (``send`` / ``recv``: refused,
    0A000), Arrow's own Python values (``py_out``)."""

    name: str  # pg_type.typname: int4, _int4, vector
    oid: int
    aliases: tuple[str, ...] = ()  # other names SQL accepts for it: integer, int
    sql_name: str = ""  # format_type's spelling (integer, timestamp with time zone); "" = name
    kind: str | None = None  # reeldb's column kind (format/types.py ColumnType.kind), if a column can have it
    array: int = 0  # typarray: the OID of its array type
    element: int = 0  # typelem: for an array type, its element type
    length: int = -1  # typlen: bytes, -1 variable, -2 C string
    category: str = "U"  # typcategory: N numeric, S string, B boolean, D date/time, U user, A array, ...
    namespace: int = PG_CATALOG_NS
    arrow: pa.DataType | None = None  # the Arrow type of a column of it without modifiers
    duck: str | None = None  # the DuckDB type that stands for this type alone (pg_typeof)
    duck_also: tuple[str, ...] = ()  # further DuckDB result types sent as this type (TINYINT as int2)
    pep249: str | None = None  # its PEP 249 group, one of PEP249_GROUPS
    extension: str | None = None  # exists only once CREATE EXTENSION made it
    text_out: TextOut | None = None
    text_in: TextIn | None = None
    send: Send | None = None
    recv: Recv | None = None
    py_out: PyOut | None = None
    py_in: PyIn | None = None

    @property
    def display_name(self) -> str:
        """The name format_type and pg_typeof print."""
        return self.sql_name or self.name

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def duck_names(self) -> tuple[str, ...]:
        return ((self.duck,) if self.duck else ()) + self.duck_also


class TypeRegistry:
    """The entries and their indexes; ``register`` is the only writer. The indexes are
    live: a type registered later is seen by every reader."""

    def __init__(self) -> None:
        self.types: list[TypeInfo] = []
        self.oids: dict[int, TypeInfo] = {}
        self.names: dict[str, TypeInfo] = {}  # typname and every alias, lower case
        self.kinds: dict[str, TypeInfo] = {}
        self.ducks: dict[str, TypeInfo] = {}  # upper case DuckDB type name -> the type its values are sent as
        self.exact_ducks: dict[str, TypeInfo] = {}  # only the DuckDB types that stand for one type alone
        self.array_of: dict[int, int] = {}  # element OID -> array OID
        self.element_of: dict[int, int] = {}  # array OID -> element OID
        self.fixed_length: dict[int, int] = {}  # OID -> typlen, for fixed-length types
        self.extension_types: dict[str, tuple[int, ...]] = {}  # extension -> the OIDs of the types it makes
        self.user: set[int] = set()  # OIDs of user types (register_user)

    def register(self, info: TypeInfo) -> TypeInfo:
        """Add a type; 42710 when its OID, one of its names, its kind or one of its DuckDB
        names is another type's, and nothing is changed then."""
        if info.oid in self.oids:
            raise errors.DuplicateObject(f"type OID {info.oid} ({info.name}) is already registered "
                                         f"as {self.oids[info.oid].name}")
        for name in info.names():
            if name.lower() in self.names:
                raise errors.DuplicateObject(
                    f'type name "{name}" is already registered as {self.names[name.lower()].name}')
        if info.kind is not None and info.kind in self.kinds:
            raise errors.DuplicateObject(f"column kind {info.kind} is already registered as "
                                         f"{self.kinds[info.kind].name}")
        for duck in info.duck_names():
            if duck.upper() in self.ducks:
                raise errors.DuplicateObject(
                    f"DuckDB type {duck} is already registered as {self.ducks[duck.upper()].name}")
        if info.pep249 is not None and info.pep249 not in PEP249_GROUPS:
            raise errors.InvalidParameterValue(
                f"{info.pep249} is not a PEP 249 type group ({', '.join(PEP249_GROUPS)})")
        if info.element and info.element not in self.oids:
            raise errors.UndefinedObject(f"the element type (OID {info.element}) of {info.name} is not registered")
        self.types.append(info)
        self.oids[info.oid] = info
        self.names.update((name.lower(), info) for name in info.names())
        if info.kind is not None:
            self.kinds[info.kind] = info
        self.ducks.update((duck.upper(), info) for duck in info.duck_names())
        if info.duck:
            self.exact_ducks[info.duck.upper()] = info
        if info.element:
            self.array_of[info.element] = info.oid
            self.element_of[info.oid] = info.element
        if info.length > 0 and info.category != "S":
            self.fixed_length[info.oid] = info.length
        if info.extension is not None:
            self.extension_types[info.extension] = (*self.extension_types.get(info.extension, ()), info.oid)
        return info

    def register_user(self, info: TypeInfo) -> TypeInfo:
        """A user type of some branch (an enum, a composite type, their arrays), known by OID
        only: its name is the branch's, so no name, kind or DuckDB name is indexed. It
        replaces what an earlier one of that OID said (the type was dropped and made again);
        42710 where the OID is a built-in type's."""
        if info.oid in self.oids and info.oid not in self.user:
            raise errors.DuplicateObject(f"type OID {info.oid} ({info.name}) is already registered "
                                         f"as {self.oids[info.oid].name}")
        self.user.add(info.oid)
        self.oids[info.oid] = info
        if info.element:
            self.array_of[info.element] = info.oid
            self.element_of[info.oid] = info.element
        return info

    def by_oid(self, oid: int) -> TypeInfo | None:
        return self.oids.get(oid)

    def by_name(self, name: str) -> TypeInfo | None:
        """A type by typname or alias, any case, ``pg_catalog.`` allowed (``int4``, ``integer``)."""
        return self.names.get(name.strip().lower().removeprefix("pg_catalog."))

    def by_kind(self, kind: str) -> TypeInfo | None:
        """The type of a reeldb column kind (``int32`` -> int4, ``int32_array`` -> _int4)."""
        return self.kinds.get(kind)

    def by_duck(self, duck: str) -> TypeInfo | None:
        """The type a result column of DuckDB type ``duck`` is sent as, for the names that
        map one to one (``INTEGER``, ``TINYINT``, ``JSON``, ``UUID[]``); None for the rest
        (types/duck.py reads DECIMAL(p,s), VARCHAR(n), vectors and enums)."""
        d = duck.strip().upper()
        info = self.ducks.get(d)
        if info is None and d.endswith("[]") and not d[:-2].endswith("]"):
            element = self.ducks.get(d[:-2])
            if element is not None and element.array:
                info = self.oids.get(element.array)
        return info


# The registry of this process, and its indexes by the names every reader uses
REGISTRY = TypeRegistry()
TYPES = REGISTRY.types
BY_OID = REGISTRY.oids
BY_NAME = REGISTRY.names
BY_KIND = REGISTRY.kinds
BY_DUCK = REGISTRY.ducks
BY_DUCK_EXACT = REGISTRY.exact_ducks
ARRAY_OF = REGISTRY.array_of
ELEMENT_OF = REGISTRY.element_of
FIXED_LENGTH = REGISTRY.fixed_length
EXTENSION_TYPES = REGISTRY.extension_types
register = REGISTRY.register
by_oid = REGISTRY.by_oid
by_name = REGISTRY.by_name
by_kind = REGISTRY.by_kind
by_duck = REGISTRY.by_duck

# OIDs of enum types (CREATE TYPE ... AS ENUM) the catalog has shown in this process: a
# client that learnt one (psycopg's EnumInfo) sends values of it, in binary as their text
ENUM_OIDS: set[int] = set()


def column_oid(t: ColumnType) -> tuple[int, int]:
    """(OID, typmod) of a reeldb column type, as PostgreSQL's catalog would hold it (an
    array's typmod is its element's: varchar(3)[] has 7)."""
    if t.kind in ARRAY_KINDS:
        oid, mod = column_oid(t.element())
        return ARRAY_OF[oid], mod
    oid = BY_KIND[t.kind].oid
    if t.kind == "varchar" and t.length:
        return oid, t.length + 4
    if t.kind == "numeric" and t.precision is not None:
        return oid, ((t.precision << 16) | (t.scale or 0)) + 4
    if t.kind in ("vector", "halfvec", "sparsevec") and t.shape:
        return oid, t.shape[0]
    if t.kind in ("bit", "varbit", "vector_array", "halfvec_array", "sparsevec_array") and t.length:
        return oid, t.length
    return oid, -1
