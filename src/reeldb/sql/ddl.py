"""CREATE / DROP / ALTER TABLE: Postgres DDL -> schema changes in the transaction."""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, DropBehavior, ObjectType

from .. import errors
from ..catalog import objects
from ..format.manifest import Column, Schema
from ..format.types import PARQUET, ColumnType
from . import constraints, extensions, foreign_keys
from .generated import check_expression, dependents
from .generated import rename_column as rename_generated_column
from .names import check_new_name, local_name, object_table, schema_of, table_key, table_name
from .parse import deparse
from .pgcatalog import EXTENSIONS
from .result import Result
from .sequence_ddl import identity_sequence
from .sequences import default_sequence, owned
from .user_types import domain_of, type_of

if TYPE_CHECKING:
    from .session import Session

RESERVED = ("_rowid",)


def column_from_def(cd: ast.ColumnDef, cid: int, s: Session | None = None,
                    table: str | None = None) -> tuple[Column, bool, bool]:
    """ColumnDef -> (Column, is primary key, is unique). With the session and the table,
    an identity column gets its sequence (made in the statement's transaction)."""
    name = cd.colname
    if name in RESERVED or name.startswith("__"):
        raise errors.InvalidParameterValue(f'column name "{name}" is reserved by reeldb')
    ctype = type_of(cd.typeName, s)
    not_null = ctype.serial
    default = None
    identity = None
    generated = None
    domain = domain_of(s, cd.typeName)
    if domain is not None:  # the domain's base type, NOT NULL and DEFAULT (the column's own win)
        not_null, default = domain[1]["not_null"], domain[1]["default"]
    pk = unique = False
    for con in cd.constraints or ():
        t = con.contype
        if t == ConstrType.CONSTR_IDENTITY and s is not None and table is not None:
            if identity is not None:
                raise errors.SyntaxError(f'multiple identity specifications for column "{name}" of table "{table}"')
            if ctype.kind not in ("int16", "int32", "int64") or ctype.serial:
                raise errors.ProgrammingError(f'identity column type must be smallint, integer, or bigint '
                                              f'(column "{name}")', sqlstate="22023")
            seq = identity_sequence(s, table, name, con.generated_when, _SEQ_TYPES[ctype.kind], con.options)
            identity, not_null = con.generated_when, True
            default = f"nextval('{_quote_seq(seq)}'::regclass)"
        elif t == ConstrType.CONSTR_GENERATED:
            if con.generated_kind != "s":
                raise errors.FeatureNotSupported(f'virtual generated columns are not supported (column "{name}")')
            if generated is not None:
                raise errors.SyntaxError(f'multiple generation clauses specified for column "{name}" of table '
                                         f'"{table}"')
            generated = deparse(con.raw_expr)
        elif t == ConstrType.CONSTR_NOTNULL:
            not_null = True
        elif t == ConstrType.CONSTR_NULL:
            not_null = False
        elif t == ConstrType.CONSTR_DEFAULT:
            default = deparse(con.raw_expr)
        elif t == ConstrType.CONSTR_PRIMARY:
            pk, not_null = True, True
        elif t == ConstrType.CONSTR_UNIQUE:
            unique = True
        else:
            raise unsupported_constraint(con, name)
    if (pk or unique) and not _keyable(ctype):
        raise errors.FeatureNotSupported(f"a {ctype.sql()} column cannot be a key (column {name})")
    if identity is not None and any(c.contype == ConstrType.CONSTR_DEFAULT for c in cd.constraints or ()):
        raise errors.SyntaxError(f'both default and identity specified for column "{name}" of table "{table}"')
    if generated is not None and (identity is not None or any(c.contype == ConstrType.CONSTR_DEFAULT
                                                              for c in cd.constraints or ())):
        what = "identity" if identity is not None else "default"
        raise errors.SyntaxError(f'both {what} and generation expression specified for column "{name}" of table '
                                 f'"{table}"')
    if generated is not None:
        default = None
    return Column(cid, name, ctype, not_null, default, identity=identity,
                  domain=None if domain is None else domain[0], generated=generated), pk, unique


_SEQ_TYPES = {"int16": "int2", "int32": "int4", "int64": "int8"}


def _quote_seq(name: str) -> str:
    """A sequence's name as nextval's text argument reads it back."""
    schema, local = schema_of(name)
    parts = ([schema] if schema else []) + [local]
    return ".".join(p if p.islower() and p.replace("_", "a").isalnum() and not p[0].isdigit() else
                    '"' + p.replace('"', '""') + '"' for p in parts).replace("'", "''")


def create_table(s: Session, stmt: ast.CreateStmt) -> Result:

    if stmt.ofTypename is not None:
        raise errors.FeatureNotSupported(f"typed tables (CREATE TABLE ... OF {deparse(stmt.ofTypename)}) are not "
                                         "supported: list the columns")
    name = table_name(stmt.relation, s)
    check_new_name(s, name)
    txn = s.write_txn()
    if name in txn.tables or f"sequence/{name}" in txn.objects:
        if stmt.if_not_exists:
            s.notice(f'relation "{name}" already exists, skipping')
            return Result(status="CREATE TABLE")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    cols: list[Column] = []
    pk: tuple[int, ...] = ()
    uniques: list[tuple[int, ...]] = []
    table_cons: list[ast.Constraint] = []
    check_cons: list[ast.Constraint] = []  # column and table CHECKs, in the order written (their names follow it)
    fk_cons: list[tuple[ast.Constraint, str | None]] = []  # REFERENCES / FOREIGN KEY, with the column of one
    key_names: list[tuple[tuple[int, ...], str]] = []  # keys given a name (CONSTRAINT name PRIMARY KEY ...)
    for el in stmt.tableElts or ():
        if isinstance(el, ast.ColumnDef):
            el, checks = split_checks(el)
            check_cons.extend(checks)
            el, refs = split_checks(el, ConstrType.CONSTR_FOREIGN)
            fk_cons.extend((con, el.colname) for con in refs)
            col, is_pk, is_unique = column_from_def(el, len(cols) + 1, s, name)
            for con in el.constraints or ():  # CONSTRAINT name PRIMARY KEY / UNIQUE on the column
                if con.conname and con.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                    key_names.append(((col.id,), con.conname))
            if any(c.name == col.name for c in cols):
                raise errors.DuplicateColumn(f'column "{col.name}" specified more than once')
            if is_pk:
                if pk:
                    raise errors.ProgrammingError(f'multiple primary keys for table "{name}" are not allowed',
                                                  sqlstate="42P16")
                pk = (col.id,)
            if is_unique:
                uniques.append((col.id,))
            cols.append(col)
        elif isinstance(el, ast.Constraint) and el.contype == ConstrType.CONSTR_CHECK:
            check_cons.append(el)
        elif isinstance(el, ast.Constraint) and el.contype == ConstrType.CONSTR_FOREIGN:
            fk_cons.append((el, None))
        elif isinstance(el, ast.Constraint):
            table_cons.append(el)
        else:
            raise errors.FeatureNotSupported(f"{type(el).__name__} in CREATE TABLE")
    for con in table_cons:
        if con.contype not in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
            raise unsupported_constraint(con)
        keys = tuple(_key_ids(cols, con.keys))
        if con.conname:
            key_names.append((keys, con.conname))
        if con.contype == ConstrType.CONSTR_PRIMARY:
            if pk:
                raise errors.ProgrammingError(f'multiple primary keys for table "{name}" are not allowed',
                                              sqlstate="42P16")
            pk = keys
            cols = [dataclasses.replace(c, not_null=True) if c.id in keys else c for c in cols]
        else:
            uniques.append(keys)
    all_keys = ([pk] if pk else []) + [u for u in uniques if u != pk]
    extensions.refuse_keys(cols, all_keys)
    for c in cols:
        if c.generated is not None:
            check_expression(s, name, c, cols)
    for c in cols:
        if c.default is not None and default_sequence(c.default) is None:
            s.eval_default(c)  # a bad default fails now, not at the first insert (drawing no value)
    given = [n for _, n in key_names]
    for n in given:
        if given.count(n) > 1:  # each names the key's index: one relation name
            raise errors.DuplicateTable(f'relation "{n}" already exists')
    schema = Schema(tuple(cols), pk, tuple(dict.fromkeys(all_keys)), len(cols) + 1, key_names=tuple(key_names))
    checks: list = []
    for con in check_cons:
        taken = constraints.taken_names(name, schema) | {c.name for c in checks}
        checks.append(constraints.declare(s, name, con, cols, taken))
    schema = dataclasses.replace(schema, checks=tuple(checks))
    fks: list = []
    for con, column in fk_cons:
        taken = constraints.taken_names(name, schema) | {f.name for f in fks}
        fks.append(foreign_keys.declare(s, name, con, cols, schema, None, taken, column=column))
    tm = txn.create_table(name, dataclasses.replace(schema, foreign_keys=tuple(fks)),
                          if_not_exists=bool(stmt.if_not_exists))
    if any(not f.ref_table for f in fks):  # a table that references itself: now it has an id
        txn.alter_table(name, dataclasses.replace(tm.schema, foreign_keys=foreign_keys.resolve_self(tm.table_id, fks)))
    s.finish_write()
    return Result(status="CREATE TABLE")


_CONSTRAINT_KINDS = {ConstrType.CONSTR_CHECK: "CHECK", ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
                     ConstrType.CONSTR_EXCLUSION: "EXCLUDE", ConstrType.CONSTR_GENERATED: "GENERATED",
                     ConstrType.CONSTR_IDENTITY: "IDENTITY"}


def unsupported_constraint(con: ast.Constraint, column: str | None = None) -> errors.FeatureNotSupported:
    """The refusal of a constraint reeldb cannot enforce: accepting it would let rows
    that break it in silently."""
    kind = _CONSTRAINT_KINDS.get(con.contype, con.contype.name.removeprefix("CONSTR_").replace("_", " "))
    where = ", ".join(([f'constraint "{con.conname}"'] if con.conname else []) + ([f"column {column}"] if column else []))
    return errors.FeatureNotSupported(
        f"{kind} constraints are not supported: reeldb does not enforce them" + (f" ({where})" if where else ""))


def split_checks(cd: ast.ColumnDef, kind: ConstrType = ConstrType.CONSTR_CHECK
                 ) -> tuple[ast.ColumnDef, list[ast.Constraint]]:
    """A column definition without its CHECK (or ``kind``) clauses, and those clauses (declared
    once the table's columns are all known: a column's CHECK may read the others, a REFERENCES
    may name the table itself, as in Postgres)."""
    checks = [c for c in cd.constraints or () if c.contype == kind]
    if not checks:
        return cd, []
    rest = copy.copy(cd)
    rest.constraints = tuple(c for c in cd.constraints if c.contype != kind) or None
    return rest, checks


def _keyable(ctype: ColumnType) -> bool:
    """Can a column of this type be in a primary key or unique constraint? Not arrays
    (int[]): their uniqueness is not checked, so it is refused rather than not kept."""
    return ctype.storage == PARQUET and ctype.element_kind is None


def _key_ids(cols: list[Column], keys: tuple) -> list[int]:
    out = []
    for k in keys:
        name = k.sval
        for c in cols:
            if c.name == name:
                if not _keyable(c.type):
                    raise errors.FeatureNotSupported(f"a {c.type.sql()} column cannot be a key (column {name})")
                out.append(c.id)
                break
        else:
            raise errors.UndefinedColumn(f'column "{name}" named in key does not exist')
    return out


def drop(s: Session, stmt: ast.DropStmt) -> Result:

    if stmt.removeType != ObjectType.OBJECT_TABLE:
        raise errors.FeatureNotSupported(f"DROP {stmt.removeType.name[7:]} is not supported")
    txn = s.write_txn()
    names = []
    for obj in stmt.objects:
        try:
            names.append(object_table(s, [p.sval for p in obj]))
        except errors.InvalidSchemaName:
            if not stmt.missing_ok:
                raise
            s.notice(f'schema "{obj[0].sval}" does not exist, skipping')  # as Postgres, for IF EXISTS
    for name in names:
        if name not in txn.tables:
            if stmt.missing_ok:
                s.notice(f'table "{name}" does not exist, skipping')
                continue
            raise errors.UndefinedTable(f'table "{name}" does not exist')
        drop_dependents(s, name, txn.table(name).table_id)
        foreign_keys.drop_referenced(s, name, set(names), stmt.behavior == DropBehavior.DROP_CASCADE)
        txn.drop_table(name)
    s.finish_write()
    return Result(status="DROP TABLE")


def drop_dependents(s: Session, table: str, table_id: str, column: Column | None = None) -> None:
    """What goes with a table (or one column): the sequences it owns (an identity
    column's, OWNED BY), its comments."""
    txn = s.write_txn()
    for seq in owned(s, table, None if column is None else column.name):
        txn.set_object(objects.key(objects.SEQUENCE, seq), None)
    prefix = objects.key(objects.COMMENT, "column", table_id, "") if column is None else \
        objects.key(objects.COMMENT, "column", table_id, column.id)
    of_constraints = objects.key(objects.COMMENT, "constraint", table_id, "")
    for k in [k for k in txn.objects if k.startswith(prefix) or (column is None and k.startswith(of_constraints))] + \
            ([objects.key(objects.COMMENT, "table", table_id)] if column is None else []):
        if k in txn.objects:
            txn.set_object(k, None)


def _rename_owner(s: Session, old: str, new: str, column: str | None = None, new_column: str | None = None) -> None:
    """Sequences OWNED BY a renamed table or column follow it."""
    txn = s.write_txn()
    for seq in owned(s, old, column):
        key = objects.key(objects.SEQUENCE, seq)
        d = dict(txn.objects[key])
        col = d["owned_by"].rpartition(".")[2]
        d["owned_by"] = f"{new}.{new_column or col}"
        txn.set_object(key, d)


def check_identity_insert(tm: Any, target: list[str], stmt: ast.InsertStmt) -> None:
    """GENERATED ALWAYS AS IDENTITY: a value given for the column is refused (428C9)
    unless every row says DEFAULT or the INSERT says OVERRIDING SYSTEM VALUE."""
    from pglast.enums import OverridingKind

    if stmt.override == OverridingKind.OVERRIDING_SYSTEM_VALUE and \
            not any(tm.schema.column(n).generated is not None for n in target):
        return
    if stmt.override == OverridingKind.OVERRIDING_USER_VALUE:
        raise errors.FeatureNotSupported("INSERT ... OVERRIDING USER VALUE is not supported")
    sel = stmt.selectStmt
    if sel is None:  # INSERT ... DEFAULT VALUES: every column takes its default
        return
    for j, name in enumerate(target):
        col = tm.schema.column(name)
        if col.identity != "a" and col.generated is None:
            continue
        if sel is not None and sel.valuesLists and not sel.fromClause and \
                all(j < len(vl) and isinstance(vl[j], ast.SetToDefault) for vl in sel.valuesLists):
            continue
        if col.generated is not None:
            raise errors.ProgrammingError(f'cannot insert a non-DEFAULT value into column "{name}": column "{name}" '
                                          "is a generated column", sqlstate="428C9")
        raise errors.ProgrammingError(
            f'cannot insert a non-DEFAULT value into column "{name}": column "{name}" is an identity column '
            "defined as GENERATED ALWAYS (use OVERRIDING SYSTEM VALUE to override)", sqlstate="428C9")


def alter_table(s: Session, stmt: ast.AlterTableStmt) -> Result:

    if stmt.objtype == ObjectType.OBJECT_TYPE:  # ALTER TYPE t ADD / DROP / ALTER ATTRIBUTE
        raise errors.FeatureNotSupported(f"ALTER TYPE {stmt.relation.relname} ... ATTRIBUTE is not supported: "
                                         "drop the composite type and create it again")
    name = table_name(stmt.relation)
    txn = s.write_txn()
    if name not in txn.tables:
        if stmt.missing_ok:
            return Result(status="ALTER TABLE")
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    tm = txn.table(name)
    schema = tm.schema
    for cmd in stmt.cmds:
        t = cmd.subtype
        if t == AlterTableType.AT_AddColumn:
            schema = _add_column(s, schema, cmd, tm.rows, name)
        elif t == AlterTableType.AT_DropColumn:
            col = schema.find(cmd.name)
            if col is None:
                if cmd.missing_ok:
                    continue
                raise errors.UndefinedColumn(f'column "{cmd.name}" of relation "{name}" does not exist')
            generated = dependents(schema.columns, col.name)
            if generated and cmd.behavior != DropBehavior.DROP_CASCADE:
                raise errors.ProgrammingError(
                    f"cannot drop column {col.name} of table {name} because other objects depend on it: "
                    + ", ".join(f"column {g.name} of table {name}" for g in generated)
                    + " depends on it (use DROP ... CASCADE to drop the dependent objects too)",
                    sqlstate="2BP01")
            for dropped in (col, *generated):
                if dropped is not col:
                    s.notice(f"drop cascades to column {dropped.name} of table {name}")
                drop_dependents(s, name, tm.table_id, dropped)
                foreign_keys.drop_referenced_column(s, name, dropped, cmd.behavior == DropBehavior.DROP_CASCADE)
                schema = Schema(tuple(c for c in schema.columns if c.id != dropped.id),
                                () if dropped.id in schema.primary_key else schema.primary_key,
                                tuple(u for u in schema.uniques if dropped.id not in u), schema.next_id,
                                constraints.without_column(schema.checks, dropped.id),
                                foreign_keys.without_column(schema.foreign_keys, dropped.id),
                                tuple(i for i in schema.btree_indexes if dropped.id not in i.columns + i.include),
                                tuple((k, n) for k, n in schema.key_names if dropped.id not in k))
        elif t == AlterTableType.AT_AddConstraint:
            con: ast.Constraint = cmd.def_
            if con.contype == ConstrType.CONSTR_FOREIGN:
                fk = foreign_keys.declare(s, name, con, schema.columns, schema, tm.table_id,
                                          constraints.taken_names(name, schema), alter=True)
                schema = dataclasses.replace(schema, foreign_keys=schema.foreign_keys + (fk,))
                tables = dict(txn.tables)
                tables[name] = tm.with_schema(schema)
                foreign_keys.verify(s, tables, set(), only=fk)  # the rows already there hold it
                continue
            if con.contype != ConstrType.CONSTR_CHECK:
                raise unsupported_constraint(con)
            check = constraints.declare(s, name, con, schema.columns, constraints.taken_names(name, schema),
                                        alter=True)
            constraints.add_checked(s, tm.with_schema(schema), check, txn.reader)
            schema = dataclasses.replace(schema, checks=schema.checks + (check,))
        elif t == AlterTableType.AT_DropConstraint:
            schema = _drop_constraint(s, name, schema, cmd)
        elif t == AlterTableType.AT_ValidateConstraint:
            if all(c.name != cmd.name for c in schema.checks):  # every check reeldb keeps is valid
                raise errors.UndefinedObject(f'constraint "{cmd.name}" of relation "{local_name(name)}" does not exist')
        else:
            raise errors.FeatureNotSupported(f"ALTER TABLE {t.name[3:]} is not supported yet")
    txn.alter_table(name, schema)
    s.finish_write()
    return Result(status="ALTER TABLE")


def _add_column(s: Session, schema: Schema, cmd: ast.AlterTableCmd, rows: int, table: str) -> Schema:
    cd, checks = split_checks(cmd.def_)
    cd, refs = split_checks(cd, ConstrType.CONSTR_FOREIGN)
    if schema.find(cd.colname) is not None:
        if cmd.missing_ok:
            return schema
        raise errors.DuplicateColumn(f'column "{cd.colname}" of relation "{table}" already exists')
    # a global id, not the table's next one: two branches that each add a column must not
    # give both the same id, or a merge would mix their data
    col, pk, unique = column_from_def(cd, s.catalog.column_id(), s, table)
    if col.generated is not None:
        raise errors.FeatureNotSupported(f"ADD COLUMN {col.name} ... GENERATED ALWAYS AS (...) is not supported yet")
    if col.identity is not None and rows:
        raise errors.FeatureNotSupported(
            f'ADD COLUMN {col.name} ... GENERATED AS IDENTITY on a table with rows is not supported yet')
    if pk or unique:
        raise errors.FeatureNotSupported("ADD COLUMN with a key constraint is not supported yet")
    if col.type.serial:
        raise errors.FeatureNotSupported("ADD COLUMN of a SERIAL column is not supported yet")
    fill = None
    if col.default is not None and col.identity is None:
        if col.type.storage != PARQUET:
            raise errors.FeatureNotSupported(f"a DEFAULT for a {col.type.sql()} column added later")
        fill = s.eval_default(col)
        fill = s.storable(col, fill)
    if col.not_null and fill is None and rows:
        raise errors.NotNullViolation(f'column "{col.name}" of relation "{table}" contains null values')
    col = dataclasses.replace(col, fill=fill)
    out = Schema(schema.columns + (col,), schema.primary_key, schema.uniques, max(schema.next_id, col.id + 1),
                 schema.checks, schema.foreign_keys, schema.btree_indexes, schema.key_names)
    for con in checks:  # the new column's CHECKs hold for the rows already there (their fill value)
        check = constraints.declare(s, table, con, out.columns, constraints.taken_names(table, out), alter=True)
        constraints.add_checked(s, s.write_txn().table(table).with_schema(out), check, s.write_txn().reader)
        out = dataclasses.replace(out, checks=out.checks + (check,))
    txn = s.write_txn()
    for con in refs:  # the rows already there hold it (their fill value)
        tm = txn.table(table)
        fk = foreign_keys.declare(s, table, con, out.columns, out, tm.table_id, constraints.taken_names(table, out),
                                  column=col.name, alter=True)
        out = dataclasses.replace(out, foreign_keys=out.foreign_keys + (fk,))
        foreign_keys.verify(s, {**txn.tables, table: tm.with_schema(out)}, set(), only=fk)
    return out


def _drop_constraint(s: Session, table: str, schema: Schema, cmd: ast.AlterTableCmd) -> Schema:
    """ALTER TABLE ... DROP CONSTRAINT [IF EXISTS] name: a CHECK or FOREIGN KEY constraint."""
    txn = s.write_txn()
    comment = objects.key(objects.COMMENT, "constraint", txn.table(table).table_id, cmd.name)
    if comment in txn.objects and (any(f.name == cmd.name for f in schema.foreign_keys) or
                                   any(c.name == cmd.name for c in schema.checks)):
        txn.set_object(comment, None)  # the constraint's comment goes with it
    if any(f.name == cmd.name for f in schema.foreign_keys):
        return dataclasses.replace(schema, foreign_keys=tuple(f for f in schema.foreign_keys if f.name != cmd.name))
    if any(c.name == cmd.name for c in schema.checks):
        return dataclasses.replace(schema, checks=tuple(c for c in schema.checks if c.name != cmd.name))
    if cmd.name in constraints.taken_names(table, schema):
        raise errors.FeatureNotSupported(f'DROP CONSTRAINT of a key ("{cmd.name}") is not supported')
    if cmd.missing_ok:
        s.notice(f'constraint "{cmd.name}" of relation "{local_name(table)}" does not exist, skipping')
        return schema
    raise errors.UndefinedObject(f'constraint "{cmd.name}" of relation "{local_name(table)}" does not exist')


def rename(s: Session, stmt: ast.RenameStmt) -> Result:

    txn = s.write_txn()
    if stmt.renameType == ObjectType.OBJECT_COLUMN:
        name = table_name(stmt.relation)
        tm = txn.table(name)
        col = tm.schema.column(stmt.subname)
        if tm.schema.find(stmt.newname) is not None:
            raise errors.DuplicateColumn(f'column "{stmt.newname}" of relation "{name}" already exists')
        cols = tuple(dataclasses.replace(c, name=stmt.newname) if c.id == col.id else c for c in tm.schema.columns)
        cols = rename_generated_column(cols, col.name, stmt.newname)
        _rename_owner(s, name, name, col.name, stmt.newname)
        schema = Schema(cols, tm.schema.primary_key, tm.schema.uniques, tm.schema.next_id,
                        constraints.rename_column(tm.schema.checks, col.id, col.name, stmt.newname),
                        tm.schema.foreign_keys, tm.schema.btree_indexes, tm.schema.key_names)
        txn.alter_table(name, schema)
    elif stmt.renameType == ObjectType.OBJECT_TABLE:
        name = table_name(stmt.relation)
        tm = txn.table(name)
        schema = schema_of(name)[0]  # a table renamed stays in its schema, as in Postgres
        new = stmt.newname if schema is None else table_key(schema, stmt.newname)
        check_new_name(s, new)
        txn.alter_table(name, tm.schema, new_name=new)
        _rename_owner(s, name, new)
    else:
        raise errors.FeatureNotSupported(f"ALTER ... RENAME of {stmt.renameType.name[7:]} is not supported")
    s.finish_write()
    return Result(status="ALTER TABLE")


def create_extension(s: Session, stmt: ast.CreateExtensionStmt) -> Result:
    """CREATE EXTENSION: vector (pgvector's types, operators and indexes) is built in,
    so creating it changes nothing; citext and hstore are created on the branch
    (extensions.py); any other extension is not available."""
    if extensions.create(s, stmt):
        return Result(status="CREATE EXTENSION")
    if stmt.extname not in EXTENSIONS:
        raise errors.FeatureNotSupported(
            f'extension "{stmt.extname}" is not available: reeldb has {", ".join(EXTENSIONS)} (built in) and '
            f'{", ".join(extensions.INSTALLABLE)}')
    if stmt.if_not_exists:
        s.notice(f'extension "{stmt.extname}" already exists, skipping')
    return Result(status="CREATE EXTENSION")


def drop_extension(s: Session, stmt: ast.DropStmt) -> Result:
    """DROP EXTENSION: a built-in one cannot go; one that does not exist is an error
    (a notice with IF EXISTS), as in Postgres."""
    if any(obj.sval in extensions.INSTALLABLE for obj in stmt.objects):
        extensions.drop(s, stmt)
        return Result(status="DROP EXTENSION")
    for obj in stmt.objects:
        name = obj.sval
        if name in EXTENSIONS:
            raise errors.FeatureNotSupported(f'extension "{name}" is built into reeldb and cannot be dropped')
    for obj in stmt.objects:
        if not stmt.missing_ok:
            raise errors.UndefinedObject(f'extension "{obj.sval}" does not exist')
        s.notice(f'extension "{obj.sval}" does not exist, skipping')
    return Result(status="DROP EXTENSION")

