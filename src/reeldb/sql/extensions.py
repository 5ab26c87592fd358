"""CREATE / DROP EXTENSION and the extensions a branch has.

Two kinds: built in (plpgsql, and pgvector's ``vector``: every database has them, CREATE
EXTENSION changes nothing, DROP EXTENSION refuses), and installable (contrib's ``citext``
and ``hstore``): CREATE EXTENSION makes their types exist on the branch, as PostgreSQL's
makes them exist in the database; before it a column or cast of the type is 42704. An
installed extension is a catalog object of the branch (``extension/<name>``,
catalog/objects.py), so it is versioned, branched and merged with the tables that use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pglast import ast

from .. import errors
from ..catalog import objects

if TYPE_CHECKING:
    from .session import Session

BUILT_IN = {"plpgsql": "1.0", "vector": "0.8.0"}
INSTALLABLE = {"citext": "1.6", "hstore": "1.8"}  # PostgreSQL 16's contrib versions
TYPES = {"citext": "citext", "hstore": "hstore"}  # type kind -> the extension that makes it
EXTENSION = "extension/"


def installed(objs: dict[str, Any]) -> dict[str, str]:
    """Installable extensions created on the branch: name -> version."""
    return {name: d["version"] for name, d in objects.named(objs, EXTENSION).items()}


def require_type(s: Session, kind: str) -> None:
    """42704 for citext / hstore before CREATE EXTENSION, as PostgreSQL."""
    ext = TYPES.get(kind)
    if ext is not None and ext not in installed(s.catalog_objects()):
        raise errors.UndefinedObject(f'type "{kind}" does not exist')


def create(s: Session, stmt: ast.CreateExtensionStmt) -> bool:
    """CREATE EXTENSION of an installable extension (True), False for another."""
    name = stmt.extname
    if name not in INSTALLABLE:
        return False
    for opt in stmt.options or ():
        value = str(getattr(opt.arg, "sval", opt.arg))
        if opt.defname == "new_version" and value != INSTALLABLE[name]:
            raise errors.FeatureNotSupported(
                f'version "{value}" of extension "{name}" is not available: reeldb has {INSTALLABLE[name]}')
        if opt.defname == "schema" and value != "public":
            raise errors.FeatureNotSupported(f'extension "{name}" can only be created in schema public')
    txn = s.write_txn()  # the write right on the branch, checked before anything
    key = objects.key(EXTENSION, name)
    if key in txn.objects:
        if not stmt.if_not_exists:
            raise errors.DuplicateObject(f'extension "{name}" already exists')
        s.notice(f'extension "{name}" already exists, skipping')
        return True
    taken = {n for n, d in objects.named(txn.objects, objects.TYPE).items() if n == name}
    if taken:
        raise errors.DuplicateObject(f'type "{name}" already exists')
    txn.set_object(key, {"version": INSTALLABLE[name]})
    s.finish_write()
    return True


def drop(s: Session, stmt: ast.DropStmt) -> None:
    """DROP EXTENSION [IF EXISTS] name [, ...] [CASCADE | RESTRICT]: refused (2BP01) while
    a column has one of its types; CASCADE, which would drop those columns, is refused."""
    from pglast.enums import DropBehavior

    names = [obj.sval for obj in stmt.objects]
    for name in names:
        if name in BUILT_IN:
            raise errors.FeatureNotSupported(f'extension "{name}" is built into reeldb and cannot be dropped')
    if stmt.behavior == DropBehavior.DROP_CASCADE:
        raise errors.FeatureNotSupported("DROP EXTENSION ... CASCADE is not supported: drop the columns first")
    txn = s.write_txn()
    for name in names:
        if objects.key(EXTENSION, name) not in txn.objects:
            if not stmt.missing_ok:
                raise errors.UndefinedObject(f'extension "{name}" does not exist')
            s.notice(f'extension "{name}" does not exist, skipping')
            continue
        for table in list(txn.tables):
            for c in txn.tables[table].schema.columns:
                if TYPES.get(c.type.kind) == name:
                    raise errors.ProgrammingError(
                        f'cannot drop extension {name} because other objects depend on it (column {c.name} of '
                        f"table {table} depends on type {c.type.kind})", sqlstate="2BP01")
    for name in names:
        txn.set_object(objects.key(EXTENSION, name), None)
    s.finish_write()


def refuse_keys(columns: Any, keys: list) -> None:
    """0A000 for a PRIMARY KEY or UNIQUE over a citext or hstore column: reeldb checks keys
    on the stored values, byte for byte, where PostgreSQL compares citext through lower()."""
    kinds = {c.id: c for c in columns}
    for key in keys:
        for cid in key:
            c = kinds.get(cid)
            if c is not None and c.type.kind in TYPES:
                raise errors.FeatureNotSupported(
                    f"a PRIMARY KEY or UNIQUE constraint over {c.type.kind} column {c.name} is not supported")
