"""CREATE / DROP / ALTER TABLE: Postgres DDL -> schema changes in the transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from .. import errors
from ..format.manifest import Column, Schema
from ..format.types import PARQUET, VECTOR_KINDS, ColumnType, column_type, vector_array_type
from .parse import const_value, deparse, name_of

if TYPE_CHECKING:
    from .session import Result, Session

RESERVED = ("_rowid",)


def table_name(rv: ast.RangeVar) -> str:
    if rv.schemaname not in (None, "public"):
        raise errors.FeatureNotSupported(
            f'cannot write to "{rv.schemaname}".{rv.relname}: other branches are read-only here; '
            "switch to the branch to change it"
        )
    return rv.relname


def type_of(tn: ast.TypeName) -> ColumnType:
    if tn.arrayBounds and len(tn.arrayBounds) == 1 and name_of(tn.names) in VECTOR_KINDS:
        return vector_array_type(name_of(tn.names), [const_value(m) for m in tn.typmods or ()])
    if tn.arrayBounds:
        raise errors.FeatureNotSupported(
            "array columns are not supported; use VECTOR(n) or TENSOR(dtype, dims...) for numeric arrays"
        )
    mods: list[Any] = []
    for m in tn.typmods or ():
        if isinstance(m, ast.A_Const):
            mods.append(m.val.ival if isinstance(m.val, ast.Integer) else m.val.sval if isinstance(m.val, ast.String)
                        else None)
        elif isinstance(m, ast.ColumnRef):
            mods.append(m.fields[-1].sval)
        else:
            raise errors.SyntaxError(f"invalid type modifier {deparse(m)}")
    name = name_of(tn.names)
    if name == "double" or (name == "float8"):
        name = "float8"
    return column_type(name, mods)


def column_from_def(cd: ast.ColumnDef, cid: int) -> tuple[Column, bool, bool]:
    """ColumnDef -> (Column, is primary key, is unique)."""
    name = cd.colname
    if name in RESERVED or name.startswith("__"):
        raise errors.InvalidParameterValue(f'column name "{name}" is reserved by reeldb')
    ctype = type_of(cd.typeName)
    not_null = ctype.serial
    default = None
    pk = unique = False
    for con in cd.constraints or ():
        t = con.contype
        if t == ConstrType.CONSTR_NOTNULL:
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
    if (pk or unique) and ctype.storage != PARQUET:
        raise errors.FeatureNotSupported(f"a {ctype.sql()} column cannot be a key (column {name})")
    return Column(cid, name, ctype, not_null, default), pk, unique


def create_table(s: Session, stmt: ast.CreateStmt) -> Result:
    from .session import Result

    name = table_name(stmt.relation)
    txn = s.write_txn()
    if name in txn.tables:
        if stmt.if_not_exists:
            s.notice(f'relation "{name}" already exists, skipping')
            return Result(status="CREATE TABLE")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    cols: list[Column] = []
    pk: tuple[int, ...] = ()
    uniques: list[tuple[int, ...]] = []
    table_cons: list[ast.Constraint] = []
    for el in stmt.tableElts or ():
        if isinstance(el, ast.ColumnDef):
            col, is_pk, is_unique = column_from_def(el, len(cols) + 1)
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
        elif isinstance(el, ast.Constraint):
            table_cons.append(el)
        else:
            raise errors.FeatureNotSupported(f"{type(el).__name__} in CREATE TABLE")
    for con in table_cons:
        if con.contype not in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
            raise unsupported_constraint(con)
        keys = tuple(_key_ids(cols, con.keys))
        if con.contype == ConstrType.CONSTR_PRIMARY:
            if pk:
                raise errors.ProgrammingError(f'multiple primary keys for table "{name}" are not allowed',
                                              sqlstate="42P16")
            pk = keys
            cols = [Column(c.id, c.name, c.type, True, c.default) if c.id in keys else c for c in cols]
        else:
            uniques.append(keys)
    all_keys = ([pk] if pk else []) + [u for u in uniques if u != pk]
    for c in cols:
        if c.default is not None:
            s.eval_default(c)  # a bad default fails now, not at the first insert
    schema = Schema(tuple(cols), pk, tuple(dict.fromkeys(all_keys)), len(cols) + 1)
    txn.create_table(name, schema, if_not_exists=bool(stmt.if_not_exists))
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


def _key_ids(cols: list[Column], keys: tuple) -> list[int]:
    out = []
    for k in keys:
        name = k.sval
        for c in cols:
            if c.name == name:
                if c.type.storage != PARQUET:
                    raise errors.FeatureNotSupported(f"a {c.type.sql()} column cannot be a key (column {name})")
                out.append(c.id)
                break
        else:
            raise errors.UndefinedColumn(f'column "{name}" named in key does not exist')
    return out


def drop(s: Session, stmt: ast.DropStmt) -> Result:
    from .session import Result

    if stmt.removeType != ObjectType.OBJECT_TABLE:
        raise errors.FeatureNotSupported(f"DROP {stmt.removeType.name[7:]} is not supported")
    txn = s.write_txn()
    names = []
    for obj in stmt.objects:
        parts = [p.sval for p in obj]
        if len(parts) > 1 and parts[-2] != "public":
            raise errors.FeatureNotSupported("cannot drop a table of another branch from here")
        names.append(parts[-1])
    for name in names:
        if name not in txn.tables:
            if stmt.missing_ok:
                s.notice(f'table "{name}" does not exist, skipping')
                continue
            raise errors.UndefinedTable(f'table "{name}" does not exist')
        txn.drop_table(name)
    s.finish_write()
    return Result(status="DROP TABLE")


def alter_table(s: Session, stmt: ast.AlterTableStmt) -> Result:
    from .session import Result

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
            schema = Schema(tuple(c for c in schema.columns if c.id != col.id),
                            () if col.id in schema.primary_key else schema.primary_key,
                            tuple(u for u in schema.uniques if col.id not in u), schema.next_id)
        else:
            raise errors.FeatureNotSupported(f"ALTER TABLE {t.name[3:]} is not supported yet")
    txn.alter_table(name, schema)
    s.finish_write()
    return Result(status="ALTER TABLE")


def _add_column(s: Session, schema: Schema, cmd: ast.AlterTableCmd, rows: int, table: str) -> Schema:
    cd: ast.ColumnDef = cmd.def_
    if schema.find(cd.colname) is not None:
        if cmd.missing_ok:
            return schema
        raise errors.DuplicateColumn(f'column "{cd.colname}" of relation "{table}" already exists')
    # a global id, not the table's next one: two branches that each add a column must not
    # give both the same id, or a merge would mix their data
    col, pk, unique = column_from_def(cd, s.catalog.column_id())
    if pk or unique:
        raise errors.FeatureNotSupported("ADD COLUMN with a key constraint is not supported yet")
    if col.type.serial:
        raise errors.FeatureNotSupported("ADD COLUMN of a SERIAL column is not supported yet")
    fill = None
    if col.default is not None:
        if col.type.storage != PARQUET:
            raise errors.FeatureNotSupported(f"a DEFAULT for a {col.type.sql()} column added later")
        fill = s.eval_default(col)
        fill = s.storable(col, fill)
    if col.not_null and fill is None and rows:
        raise errors.NotNullViolation(f'column "{col.name}" of relation "{table}" contains null values')
    col = Column(col.id, col.name, col.type, col.not_null, col.default, fill)
    return Schema(schema.columns + (col,), schema.primary_key, schema.uniques, max(schema.next_id, col.id + 1))


def rename(s: Session, stmt: ast.RenameStmt) -> Result:
    from .session import Result

    txn = s.write_txn()
    if stmt.renameType == ObjectType.OBJECT_COLUMN:
        name = table_name(stmt.relation)
        tm = txn.table(name)
        col = tm.schema.column(stmt.subname)
        if tm.schema.find(stmt.newname) is not None:
            raise errors.DuplicateColumn(f'column "{stmt.newname}" of relation "{name}" already exists')
        cols = tuple(Column(c.id, stmt.newname, c.type, c.not_null, c.default, c.fill) if c.id == col.id else c
                     for c in tm.schema.columns)
        schema = Schema(cols, tm.schema.primary_key, tm.schema.uniques, tm.schema.next_id)
        txn.alter_table(name, schema)
    elif stmt.renameType == ObjectType.OBJECT_TABLE:
        name = table_name(stmt.relation)
        tm = txn.table(name)
        txn.alter_table(name, tm.schema, new_name=stmt.newname)
    else:
        raise errors.FeatureNotSupported(f"ALTER ... RENAME of {stmt.renameType.name[7:]} is not supported")
    s.finish_write()
    return Result(status="ALTER TABLE")


def create_extension(s: Session, stmt: ast.CreateExtensionStmt) -> Result:
    """CREATE EXTENSION: vector (pgvector's types, operators and indexes) is built in,
    so creating it changes nothing; any other extension is not available."""
    from .pgcatalog import EXTENSIONS
    from .session import Result

    if stmt.extname not in EXTENSIONS:
        raise errors.FeatureNotSupported(
            f'extension "{stmt.extname}" is not available: reeldb has only {" and ".join(EXTENSIONS)}, built in')
    if stmt.if_not_exists:
        s.notice(f'extension "{stmt.extname}" already exists, skipping')
    return Result(status="CREATE EXTENSION")


def drop_extension(s: Session, stmt: ast.DropStmt) -> Result:
    """DROP EXTENSION: a built-in one cannot go; one that does not exist is an error
    (a notice with IF EXISTS), as in Postgres."""
    from .pgcatalog import EXTENSIONS
    from .session import Result

    for obj in stmt.objects:
        name = obj.sval
        if name in EXTENSIONS:
            raise errors.FeatureNotSupported(f'extension "{name}" is built into reeldb and cannot be dropped')
    for obj in stmt.objects:
        if not stmt.missing_ok:
            raise errors.UndefinedObject(f'extension "{obj.sval}" does not exist')
        s.notice(f'extension "{obj.sval}" does not exist, skipping')
    return Result(status="DROP EXTENSION")

