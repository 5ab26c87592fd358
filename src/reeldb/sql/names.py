"""Names of the branch's tables and schemas, as statements write them and as they are stored.

A table of a schema made with ``CREATE SCHEMA`` is stored as ``<schema>.<table>``
(namespaces.py); a table of ``public`` under its bare name. Every statement handler, the
catalog and the sequence machinery resolve names here, so this module reads only the
branch's objects and knows no statement.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from pglast import ast

from .. import errors
from ..catalog import objects

if TYPE_CHECKING:
    from .session import Session

NAMEDATALEN = 64
# schemas every database has; not branches, not namespaces one can create or drop
SYSTEM_SCHEMAS = frozenset({"public", "pg_catalog", "information_schema", "pg_temp", "pg_toast"})


def table_key(schema: str, table: str) -> str:
    """The branch's table name of ``schema.table``."""
    return f"{schema}.{table}"


def stable_oid(*parts: str) -> int:
    """The same object gets the same OID in every connection (clients cache them)."""
    return 16400 + zlib.crc32("\0".join(parts).encode()) % 2_000_000_000


def schema_of(table_key_: str) -> tuple[str | None, str]:
    """(schema, table) of a branch's table name (schema None: ``public``)."""
    schema, dot, table = table_key_.partition(".")
    return (schema, table) if dot else (None, table_key_)


def local_name(table_key_: str) -> str:
    """A table's name without its schema, as Postgres' messages name a relation."""
    return schema_of(table_key_)[1]


def schemas(s: Session) -> dict[str, dict]:
    """The namespace schemas of the state the session sees: name -> definition."""
    return objects.named(s.catalog_objects(), objects.SCHEMA)


def table_name(rv: ast.RangeVar, s: Session | None = None) -> str:
    """The branch's table a statement writes (a schema's tables were resolved to
    ``schema.table`` before). ``s`` given, a schema that is no branch, tag or commit
    either is Postgres' 3F000."""
    if rv.schemaname not in (None, "public"):
        if s is not None:
            s.resolve_schema_ref(rv.schemaname)
        raise errors.FeatureNotSupported(
            f'cannot write to "{rv.schemaname}".{rv.relname}: other branches are read-only here; '
            "switch to the branch to change it"
        )
    return rv.relname


def object_table(s: Session, parts: list[str]) -> str:
    """The branch's table a DROP or COMMENT names as ``[schema.]table``."""
    if len(parts) > 2:
        raise errors.FeatureNotSupported(f'cross-database references are not implemented: "{".".join(parts)}"')
    if len(parts) == 1 or parts[0] == "public":
        return parts[-1]
    if parts[0] in schemas(s):
        return table_key(parts[0], parts[1])
    s.resolve_schema_ref(parts[0])  # 3F000 when it is no schema at all
    raise errors.FeatureNotSupported(
        f'cannot change "{parts[0]}".{parts[1]}: other branches are read-only here; switch to the branch to change it')


def check_new_name(s: Session, name: str) -> None:
    """A table name with a dot is how tables of schemas are stored (``schema.table``):
    one is accepted only when its schema exists."""
    schema = schema_of(name)[0]
    if schema is not None and schema not in schemas(s):
        raise errors.InvalidParameterValue(
            f'invalid table name "{name}": a dot in a table name is reserved for tables of schemas '
            "(CREATE SCHEMA first)")


def type_name(s: Session, names: tuple) -> str:
    """A user type's name (``public.`` or a schema of the branch allowed)."""
    parts = [p.sval for p in names]
    if len(parts) == 2 and parts[0] == "public":
        return parts[1]
    if len(parts) == 2 and parts[0] in schemas(s):
        return table_key(parts[0], parts[1])
    if len(parts) != 1:
        raise errors.InvalidSchemaName(f'schema "{parts[0]}" does not exist')
    return parts[0]


def choose_name(name1: str, name2: str | None, label: str, taken: set[str]) -> str:
    """Postgres' ChooseConstraintName: name1_name2_label, truncated to fit 63 bytes, with
    1, 2, ... added to the label until the name is free."""
    n = 0
    while True:
        candidate = _object_name(name1, name2, label if n == 0 else f"{label}{n}")
        if candidate not in taken:
            return candidate
        n += 1


def _object_name(name1: str, name2: str | None, label: str) -> str:
    """Postgres' makeObjectName: the names are shortened, the longer first, so that the
    whole fits NAMEDATALEN - 1 bytes."""
    b1, b2 = name1.encode(), (name2 or "").encode()
    overhead = (1 if name2 else 0) + len(label.encode()) + 1
    avail = NAMEDATALEN - 1 - overhead
    n1, n2 = len(b1), len(b2)
    while n1 + n2 > avail:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [b1[:n1].decode(errors="ignore")] + ([b2[:n2].decode(errors="ignore")] if name2 else []) + [label]
    return "_".join(parts)
