"""CREATE / ALTER / DROP of enum and composite types, domains, sequences and comments: objects of the branch
other than tables (catalog/objects.py), each changed in the statement's transaction.

- ``CREATE TYPE name AS ENUM (...)``, ``ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'v'
  [BEFORE | AFTER 'w']``, ``DROP TYPE [IF EXISTS] name [CASCADE]``. An enum column keeps the
  labels with its type (format/types.py), so adding a value updates every column of the
  type. Renaming a value is refused (0A000): the labels are stored as text, so a rename
  would have to rewrite every row.
- ``CREATE TYPE name AS (field type, ...)``: a composite type (its values: user_types.py);
  DROP TYPE of a type a table column or another composite type's field uses is 2BP01,
  unless CASCADE, which drops those columns and fields.
- ``CREATE DOMAIN name type [DEFAULT e] [[NOT] NULL]``, ``DROP DOMAIN``: a column of the
  domain has its base type and takes its NOT NULL and DEFAULT; CHECK is refused (0A000).
- ``CREATE / ALTER / DROP SEQUENCE``: sequence_ddl.py.
- ``COMMENT ON TABLE | COLUMN | SCHEMA | TYPE | SEQUENCE | CONSTRAINT ... IS 'text' | NULL``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.enums import ConstrType, DropBehavior, ObjectType

from .. import errors
from ..catalog import objects
from ..engine.engine import IDENTIFIER_MAX_BYTES
from ..format.manifest import Schema
from ..format.types import _KINDS, _SERIALS, enum_type
from ..types import records
from . import constraints, sequence_ddl
from .names import object_table, type_name
from .parse import deparse
from .result import Result
from .user_types import MAX_LEAF_FIELDS, composite_shape, composites, field_type, type_of

if TYPE_CHECKING:
    from .session import Session

STATEMENTS = (ast.CreateEnumStmt, ast.AlterEnumStmt, ast.CompositeTypeStmt, ast.CreateDomainStmt,
              ast.CreateSeqStmt, ast.AlterSeqStmt, ast.CommentStmt)
DROPS = frozenset({ObjectType.OBJECT_TYPE, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_DOMAIN})
LABEL_MAX_BYTES = 63  # NAMEDATALEN - 1, as Postgres


def run(s: Session, stmt: ast.Node, params: list[Any]) -> Result:

    if isinstance(stmt, ast.CreateEnumStmt):
        create_enum(s, stmt)
        return Result(status="CREATE TYPE")
    if isinstance(stmt, ast.AlterEnumStmt):
        alter_enum(s, stmt)
        return Result(status="ALTER TYPE")
    if isinstance(stmt, ast.CompositeTypeStmt):
        create_composite(s, stmt)
        return Result(status="CREATE TYPE")
    if isinstance(stmt, ast.CreateDomainStmt):
        create_domain(s, stmt)
        return Result(status="CREATE DOMAIN")
    if isinstance(stmt, ast.CreateSeqStmt):
        return sequence_ddl.create_sequence(s, stmt)
    if isinstance(stmt, ast.AlterSeqStmt):
        return sequence_ddl.alter_sequence(s, stmt)
    if isinstance(stmt, ast.CommentStmt):
        comment(s, stmt)
        return Result(status="COMMENT")
    raise errors.FeatureNotSupported(f"{type(stmt).__name__} statements are not supported")


# -- enum types ---------------------------------------------------------------------------------
def _check_label(label: str) -> None:
    if len(label.encode()) > LABEL_MAX_BYTES:  # an empty label is allowed, as in Postgres
        raise errors.ProgrammingError(f'invalid enum label "{label}": labels must be {LABEL_MAX_BYTES} bytes or less',
                                      sqlstate="42602")


def _new_type(s: Session, name: str) -> Any:
    """The write transaction a new type ``name`` goes into, once the name is free and fits."""
    if len(name.rpartition(".")[2].encode()) > IDENTIFIER_MAX_BYTES:
        raise errors.ProgrammingError(f'type name "{name}" is longer than {IDENTIFIER_MAX_BYTES} bytes',
                                      sqlstate="42622")
    txn = s.write_txn()
    if objects.key(objects.TYPE, name) in txn.objects or name in _KINDS or name in _SERIALS:
        raise errors.DuplicateObject(f'type "{name}" already exists')
    return txn


def create_enum(s: Session, stmt: ast.CreateEnumStmt) -> None:
    name = type_name(s, stmt.typeName)
    labels = [v.sval for v in stmt.vals or ()]
    txn = _new_type(s, name)
    for i, label in enumerate(labels):
        _check_label(label)
        if label in labels[:i]:  # Postgres' answer: its unique index on the labels
            raise errors.UniqueViolation(
                f'duplicate key value violates unique constraint "pg_enum_typid_label_index": enum label "{label}" '
                "used more than once")
    txn.set_object(objects.key(objects.TYPE, name), {"kind": "enum", "labels": labels})
    s.finish_write()


def alter_enum(s: Session, stmt: ast.AlterEnumStmt) -> None:
    name = type_name(s, stmt.typeName)
    txn = s.write_txn()
    d = txn.objects.get(objects.key(objects.TYPE, name))
    if d is None:
        raise errors.UndefinedObject(f'type "{name}" does not exist')
    labels = list(d["labels"])
    if stmt.oldVal is not None:
        raise errors.FeatureNotSupported(
            f"ALTER TYPE {name} RENAME VALUE is not supported: enum values are stored as text, so renaming one "
            "would rewrite every row; add the new value and UPDATE the rows instead")
    new = stmt.newVal
    _check_label(new)
    if new in labels:
        if stmt.skipIfNewValExists:
            s.notice(f'enum label "{new}" already exists, skipping')
            s.finish_write()
            return
        raise errors.DuplicateObject(f'enum label "{new}" already exists')
    at = len(labels)
    if stmt.newValNeighbor is not None:
        if stmt.newValNeighbor not in labels:
            raise errors.InvalidParameterValue(f'"{stmt.newValNeighbor}" is not an existing enum label')
        at = labels.index(stmt.newValNeighbor) + (1 if stmt.newValIsAfter else 0)
    labels.insert(at, new)
    txn.set_object(objects.key(objects.TYPE, name), {**d, "labels": labels})
    _retype_columns(s, name, lambda c: dataclasses.replace(c, type=enum_type(name, labels)))
    s.finish_write()


# -- composite types ----------------------------------------------------------------------------
def create_composite(s: Session, stmt: ast.CompositeTypeStmt) -> None:
    """CREATE TYPE name AS (field type, ...): a named list of fields, each of a built-in, enum
    or other composite type. Its values live in queries (``ROW(...)::name``, record text);
    a table column of it is refused (0A000)."""
    rv = stmt.typevar
    if rv.catalogname is not None:
        raise errors.FeatureNotSupported(f"cross-database references are not implemented: {rv.catalogname}")
    names = tuple(ast.String(sval=p) for p in (rv.schemaname, rv.relname) if p is not None)
    name = type_name(s, names)
    txn = _new_type(s, name)
    fields: list[dict] = []
    for col in stmt.coldeflist or ():
        if col.colname in {f["name"] for f in fields}:
            raise errors.ProgrammingError(f'column "{col.colname}" specified more than once', sqlstate="42701")
        if col.colname.startswith(records.MARKER_PREFIX):  # reeldb's own field of every composite value
            raise errors.FeatureNotSupported(f'a field name starting with "{records.MARKER_PREFIX}" is not supported')
        if col.constraints or col.collClause is not None:
            raise errors.FeatureNotSupported(f"constraints or COLLATE on field {col.colname} of composite type {name}")
        fields.append({"name": col.colname, **field_type(s, col.typeName, deparse(col.typeName))})
    if not fields:
        raise errors.FeatureNotSupported(f"composite types with no fields are not supported ({name})")
    leaves = sum(composite_shape(txn.objects, f["composite"])[1] if "composite" in f else 1 for f in fields)
    if leaves > MAX_LEAF_FIELDS:  # a value's STRUCT holds every nested field
        raise errors.ProgrammingError(f"composite type {name} has {leaves} fields, nested ones counted: at most "
                                      f"{MAX_LEAF_FIELDS} are allowed", sqlstate="54011")
    txn.set_object(objects.key(objects.TYPE, name), {"kind": "composite", "fields": fields})
    s.finish_write()


def _composite_users(s: Session, name: str) -> list[tuple[str, str]]:
    """(composite type, field) of every field of a composite type whose type is ``name``."""
    return [(t, f["name"]) for t, fields in sorted(composites(s.write_txn().objects).items()) if t != name
            for f in fields if name in (f.get("composite"), f.get("enum"))]


def _drop_composite_fields(s: Session, name: str) -> None:
    """CASCADE: the fields of other composite types that are of type ``name`` go, as in Postgres."""
    txn = s.write_txn()
    for t in sorted({t for t, _ in _composite_users(s, name)}):
        key = objects.key(objects.TYPE, t)
        d = txn.objects[key]
        txn.set_object(key, {**d, "fields": [f for f in d["fields"] if name not in (f.get("composite"), f.get("enum"))]})


# -- domains ------------------------------------------------------------------------------------
def create_domain(s: Session, stmt: ast.CreateDomainStmt) -> None:
    """CREATE DOMAIN name [AS] type [DEFAULT expr] [[NOT] NULL]: a named base type whose
    NOT NULL and DEFAULT its columns take. CHECK is refused (0A000), as for tables: reeldb
    does not enforce it, and accepting it would let values that break it in."""
    name = type_name(s, stmt.domainname)
    txn = s.write_txn()
    if objects.key(objects.TYPE, name) in txn.objects or name in _KINDS or name in _SERIALS:
        raise errors.DuplicateObject(f'type "{name}" already exists')
    if stmt.collClause is not None:
        raise errors.FeatureNotSupported(f"COLLATE in CREATE DOMAIN {name} is not supported")
    base = type_of(stmt.typeName, s)
    if base.is_enum or base.serial:
        raise errors.FeatureNotSupported(f"a domain over {base.sql()} is not supported")
    not_null, default = False, None
    for con in stmt.constraints or ():
        if con.contype == ConstrType.CONSTR_NOTNULL:
            not_null = True
        elif con.contype == ConstrType.CONSTR_NULL:
            not_null = False
        elif con.contype == ConstrType.CONSTR_DEFAULT:
            default = deparse(con.raw_expr)
        else:
            kind = "CHECK" if con.contype == ConstrType.CONSTR_CHECK else con.contype.name.removeprefix("CONSTR_")
            raise errors.FeatureNotSupported(
                f"{kind} constraints are not supported: reeldb does not enforce them (domain {name})")
    txn.set_object(objects.key(objects.TYPE, name), {"kind": "domain", "base": base.to_json(),
                                                      "not_null": not_null, "default": default})
    s.finish_write()


def _columns_of_type(s: Session, name: str) -> list[tuple[str, str]]:
    txn = s.write_txn()
    return [(t, c.name) for t in sorted(txn.tables) for c in txn.tables[t].schema.columns
            if (c.type.is_enum and c.type.dtype == name) or c.domain == name]


def _retype_columns(s: Session, name: str, change: Any) -> None:
    """Apply ``change`` (Column -> Column, or None to drop it) to every column of type ``name``."""
    txn = s.write_txn()
    for table in sorted({t for t, _ in _columns_of_type(s, name)}):
        sc = txn.table(table).schema
        cols = []
        for c in sc.columns:
            if (c.type.is_enum and c.type.dtype == name) or c.domain == name:
                c = change(c)
                if c is None:
                    continue
            cols.append(c)
        keep = {c.id for c in cols}
        txn.alter_table(table, Schema(tuple(cols), sc.primary_key if set(sc.primary_key) <= keep else (),
                                      tuple(u for u in sc.uniques if set(u) <= keep), sc.next_id,
                                      tuple(c for c in sc.checks if set(c.columns) <= keep),
                                      tuple(f for f in sc.foreign_keys if set(f.columns) <= keep),
                                      tuple(i for i in sc.btree_indexes if set(i.columns + i.include) <= keep),
                                      tuple((k, n) for k, n in sc.key_names if set(k) <= keep)))


def drop(s: Session, stmt: ast.DropStmt) -> Result:

    if stmt.removeType == ObjectType.OBJECT_SEQUENCE:
        sequence_ddl.drop_sequences(s, [object_table(s, [p.sval for p in o]) for o in stmt.objects], stmt.missing_ok)
        s.finish_write()
        return Result(status="DROP SEQUENCE")
    what = "domain" if stmt.removeType == ObjectType.OBJECT_DOMAIN else "type"
    txn = s.write_txn()
    for tn in stmt.objects:
        name = type_name(s, tn.names)
        key = objects.key(objects.TYPE, name)
        if key in txn.objects and what == "domain" and txn.objects[key].get("kind") != "domain":
            raise errors.ProgrammingError(f'"{name}" is not a domain', sqlstate="42809")
        if key not in txn.objects:
            if stmt.missing_ok:
                s.notice(f'{what} "{name}" does not exist, skipping')
                continue
            raise errors.UndefinedObject(f'{what} "{name}" does not exist')
        users = [f"column {c} of table {t}" for t, c in _columns_of_type(s, name)]
        users += [f"column {f} of composite type {t}" for t, f in _composite_users(s, name)]
        if users and stmt.behavior != DropBehavior.DROP_CASCADE:
            raise errors.ProgrammingError(
                f"cannot drop type {name} because other objects depend on it: " + ", ".join(users)
                + " (use DROP ... CASCADE to drop the dependent objects too)", sqlstate="2BP01")
        for user in users:
            s.notice(f"drop cascades to {user}")
        _retype_columns(s, name, lambda c: None)
        _drop_composite_fields(s, name)
        txn.set_object(key, None)
    s.finish_write()
    return Result(status=f"DROP {what.upper()}")


# -- comments -----------------------------------------------------------------------------------
def comment(s: Session, stmt: ast.CommentStmt) -> None:
    """COMMENT ON ... IS 'text' | NULL: stored by the object's stable id (a table's id, a
    column's id), so renames keep it and a drop makes it unreachable."""
    txn = s.write_txn()
    kind = stmt.objtype
    if kind == ObjectType.OBJECT_TABLE:
        tm = txn.table(object_table(s, [p.sval for p in stmt.object]))
        key = objects.key(objects.COMMENT, "table", tm.table_id)
    elif kind == ObjectType.OBJECT_COLUMN:
        parts = [p.sval for p in stmt.object]
        if len(parts) < 2:
            raise errors.SyntaxError("column name must be qualified")
        table = object_table(s, parts[:-1])
        tm = txn.table(table)
        col = tm.schema.find(parts[-1])
        if col is None:
            raise errors.UndefinedColumn(f'column "{parts[-1]}" of relation "{table}" does not exist')
        key = objects.key(objects.COMMENT, "column", tm.table_id, col.id)
    elif kind == ObjectType.OBJECT_TABCONSTRAINT:  # COMMENT ON CONSTRAINT name ON table
        parts = [p.sval for p in stmt.object]
        table = object_table(s, parts[:-1])
        tm = txn.table(table)
        names = {c.name for c in tm.schema.checks} | {f.name for f in tm.schema.foreign_keys} | \
            (constraints.taken_names(table, tm.schema) - {ix.name for ix in tm.schema.btree_indexes})
        index_keys = {ix.columns for ix in tm.schema.btree_indexes if ix.unique}
        names -= {tm.schema.key_name(parts[-2], key) for key in index_keys}
        if parts[-1] not in names:
            raise errors.UndefinedObject(f'constraint "{parts[-1]}" for table "{parts[-2]}" does not exist')
        key = objects.key(objects.COMMENT, "constraint", tm.table_id, parts[-1])
    elif kind == ObjectType.OBJECT_SCHEMA:
        name = stmt.object.sval
        if objects.key(objects.SCHEMA, name) not in txn.objects:
            raise errors.InvalidSchemaName(f'schema "{name}" does not exist')
        key = objects.key(objects.COMMENT, "schema", name)
    elif kind == ObjectType.OBJECT_TYPE:
        name = type_name(s, stmt.object.names)
        if objects.key(objects.TYPE, name) not in txn.objects:
            raise errors.UndefinedObject(f'type "{name}" does not exist')
        key = objects.key(objects.COMMENT, "type", name)
    elif kind == ObjectType.OBJECT_SEQUENCE:
        name = object_table(s, [p.sval for p in stmt.object])
        if objects.key(objects.SEQUENCE, name) not in txn.objects:
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        key = objects.key(objects.COMMENT, "sequence", name)
    else:
        raise errors.FeatureNotSupported(f"COMMENT ON {kind.name[7:]} is not supported")
    text = stmt.comment if stmt.comment else None  # '' removes the comment, as in Postgres
    if txn.objects.get(key) != text:
        txn.set_object(key, text)
    s.finish_write()


def table_comment(objs: dict, table_id: str) -> str | None:
    return objs.get(objects.key(objects.COMMENT, "table", table_id))


def column_comment(objs: dict, table_id: str, column_id: int) -> str | None:
    return objs.get(objects.key(objects.COMMENT, "column", table_id, column_id))
