"""CREATE SCHEMA / DROP SCHEMA: namespaces of tables inside a branch (their names: names.py).

In SQL a branch, tag or commit is a schema (DESIGN.md, Versioning). A schema made with
``CREATE SCHEMA`` is something else: a namespace of tables *inside* the connection's
branch, versioned with it like its tables (a branch made later has it, a merge brings
it). ``SELECT * FROM sales.orders`` reads table ``orders`` of schema ``sales`` on the
connection's branch, while ``"experiment/x".orders`` keeps meaning another branch's table.
A name cannot be both: ``CREATE SCHEMA`` refuses the name of a branch or tag (42P06).

Storage: the schema is an object ``schema/<name>`` of the commit (catalog/objects.py); its
tables are ordinary tables of the branch named ``<schema>.<table>`` (a name no table of
``public`` can have: table names with a dot are refused), so diff, merge, time travel and
the dataloader treat them like any other table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import DropBehavior

from .. import errors
from ..catalog import objects
from ..engine.engine import IDENTIFIER_MAX_BYTES
from .ddl import drop_dependents
from .names import SYSTEM_SCHEMAS, schema_of
from .result import Result

if TYPE_CHECKING:
    from .session import Session


def create_schema(s: Session, stmt: ast.CreateSchemaStmt) -> Result:

    name = stmt.schemaname
    if name is None:  # CREATE SCHEMA AUTHORIZATION role: the schema is named after the role
        name = stmt.authrole.rolename if stmt.authrole is not None else None
    if not name:
        raise errors.SyntaxError("CREATE SCHEMA needs a name")
    if stmt.authrole is not None and stmt.authrole.rolename not in (None, s.user):
        raise errors.FeatureNotSupported(
            f'CREATE SCHEMA ... AUTHORIZATION "{stmt.authrole.rolename}": schemas belong to the branch, '
            "not to a role; leave AUTHORIZATION out")
    if stmt.schemaElts:
        raise errors.FeatureNotSupported("CREATE SCHEMA with schema elements is not supported: "
                                         "create the schema, then its tables")
    txn = s.write_txn()
    if objects.key(objects.SCHEMA, name) in txn.objects or name in SYSTEM_SCHEMAS:
        if stmt.if_not_exists:
            s.notice(f'schema "{name}" already exists, skipping')
            return Result(status="CREATE SCHEMA")
        raise errors.ProgrammingError(f'schema "{name}" already exists', sqlstate="42P06")
    if name.startswith("pg_"):
        raise errors.ProgrammingError(f'unacceptable schema name "{name}": the prefix "pg_" is reserved for '
                                      "system schemas", sqlstate="42939")
    refs = s.catalog.refs
    if refs.branch(name) is not None or refs.tag(name) is not None:
        kind = "branch" if refs.branch(name) is not None else "tag"
        raise errors.ProgrammingError(
            f'schema "{name}" already exists: it is the {kind} "{name}" (a branch or tag is a schema in '
            "reeldb's SQL); choose another name", sqlstate="42P06")
    if len(name.encode()) > IDENTIFIER_MAX_BYTES:
        raise errors.ProgrammingError(f'schema name "{name}" is longer than {IDENTIFIER_MAX_BYTES} bytes',
                                      sqlstate="42622")
    if "." in name or "/" in name:
        raise errors.InvalidParameterValue(f'invalid schema name "{name}": "." and "/" are reserved for tables '
                                           "of schemas and for branch names")
    txn.set_object(objects.key(objects.SCHEMA, name), {"owner": s.user})
    s.finish_write()
    return Result(status="CREATE SCHEMA")


def _drop_table(s: Session, table: str) -> None:
    """A table of a dropped schema, with what goes with it (its sequences, comments)."""
    txn = s.write_txn()
    drop_dependents(s, table, txn.table(table).table_id)
    txn.drop_table(table)


def drop_schema(s: Session, stmt: ast.DropStmt) -> Result:
    """DROP SCHEMA [IF EXISTS] name [, ...] [CASCADE | RESTRICT]: RESTRICT (the default)
    refuses a schema that still has tables (2BP01), CASCADE drops them with it."""

    names = [o.sval for o in stmt.objects]
    txn = s.write_txn()
    for name in names:
        if objects.key(objects.SCHEMA, name) not in txn.objects:
            if name in SYSTEM_SCHEMAS:
                raise errors.FeatureNotSupported(f'cannot drop schema "{name}": it is a system schema')
            if s.catalog.refs.branch(name) is not None or s.catalog.refs.tag(name) is not None:
                raise errors.FeatureNotSupported(
                    f'cannot drop schema "{name}": it is a branch or tag; delete it with reeldb_delete_branch '
                    "or the Python API")
            if stmt.missing_ok:
                s.notice(f'schema "{name}" does not exist, skipping')
                continue
            raise errors.InvalidSchemaName(f'schema "{name}" does not exist')
        inside = sorted(t for t in txn.tables if schema_of(t)[0] == name)
        owned = [(kind, k) for kind, prefix in (("type", objects.TYPE), ("sequence", objects.SEQUENCE))
                 for k in sorted(txn.objects) if k.startswith(prefix) and schema_of(k[len(prefix):])[0] == name]
        dependents = [f"table {t}" for t in inside] + [f"{kind} {k.partition('/')[2]}" for kind, k in owned]
        if dependents and stmt.behavior != DropBehavior.DROP_CASCADE:
            raise errors.ProgrammingError(
                f'cannot drop schema {name} because other objects depend on it: '
                + ", ".join(dependents) + " (use DROP ... CASCADE to drop them too)", sqlstate="2BP01")
        for t in inside:
            _drop_table(s, t)
        for _, k in owned:
            txn.set_object(k, None)
        if dependents:
            s.notice(f"drop cascades to {dependents[0]}" if len(dependents) == 1
                     else f"drop cascades to {len(dependents)} other objects")
        for k in [k for k in txn.objects if k == objects.key(objects.COMMENT, "schema", name)]:
            txn.set_object(k, None)
        txn.set_object(objects.key(objects.SCHEMA, name), None)
    s.finish_write()
    return Result(status="DROP SCHEMA")
