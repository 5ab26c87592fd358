"""FOREIGN KEY constraints: declared and enforced at the end of every statement (shown by
definitions.py).

A constraint (``Schema.foreign_keys`` of the referencing table) names the referenced table by
its stable id and both column lists by id, so renames keep it. Only what reeldb enforces
exactly is accepted: ``MATCH SIMPLE`` (a key with a NULL column passes), ``ON UPDATE`` /
``ON DELETE`` ``NO ACTION`` or ``RESTRICT`` (both refuse a change that leaves a referencing
row without its referenced row, at the end of the statement), not deferrable; CASCADE,
SET NULL, SET DEFAULT, MATCH FULL and DEFERRABLE are refused (0A000).

Enforcement: after each statement (and again before a commit, for writes that come through
the Python API), every constraint whose referencing or referenced table changed is checked by
one DuckDB anti-join over the two tables as the transaction sees them; a referencing row whose
key (no column NULL) has no referenced row refuses the statement with 23503, with Postgres'
message for the side that changed. Concurrent transactions that change the two sides of a
constraint conflict at commit (40001; catalog/transaction.py), as do merges that would bring
an orphan row (23503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pglast import ast

from .. import errors
from ..engine.engine import internal_name, quote_ident
from ..format.manifest import Column, ForeignKey, Schema, TableManifest
from ..format.types import PARQUET
from .definitions import ACTIONS
from .names import choose_name, local_name, table_name

if TYPE_CHECKING:
    from .session import Session

_INTEGERS = {"int16", "int32", "int64"}
_STRINGS = {"text", "varchar"}
_UNCOMPARABLE = {"json", "jsonb"}


# -- declaring ---------------------------------------------------------------------------------
def declare(s: Session, table: str, con: ast.Constraint, columns: list[Column] | tuple[Column, ...],
            schema: Schema, table_id: str | None, taken: set[str], column: str | None = None,
            alter: bool = False) -> ForeignKey:
    """A ``REFERENCES`` / ``FOREIGN KEY`` clause of CREATE / ALTER TABLE ``table`` (whose
    columns and keys so far are ``columns`` / ``schema``; ``table_id`` None while it is being
    created) -> the constraint, named as Postgres names it when the clause does not."""
    where = ", ".join(([f'constraint "{con.conname}"'] if con.conname else []) +
                      ([f"column {column}"] if column else []))
    where = f" ({where})" if where else ""
    if con.fk_matchtype not in (None, "s"):
        raise errors.FeatureNotSupported(f"MATCH {'FULL' if con.fk_matchtype == 'f' else 'PARTIAL'} foreign keys "
                                         f"are not supported: reeldb enforces MATCH SIMPLE only{where}")
    for what, action in (("UPDATE", con.fk_upd_action), ("DELETE", con.fk_del_action)):
        if action not in (None, "a", "r"):
            raise errors.FeatureNotSupported(
                f"ON {what} {ACTIONS.get(action, action)} is not supported: reeldb enforces NO ACTION and "
                f"RESTRICT only (foreign keys never change other rows){where}")
    if con.deferrable or con.initdeferred:
        raise errors.FeatureNotSupported("DEFERRABLE foreign keys are not supported: reeldb checks them at the "
                                         f"end of each statement{where}")
    if alter and con.skip_validation:
        raise errors.FeatureNotSupported(
            "ADD CONSTRAINT ... NOT VALID is not supported: reeldb checks the existing rows (drop NOT VALID)")
    names = [a.sval for a in con.fk_attrs] if con.fk_attrs else ([column] if column else [])
    by_name = {c.name: c for c in columns}
    local = []
    for n in names:
        if n not in by_name:
            raise errors.UndefinedColumn(f'column "{n}" referenced in foreign key constraint does not exist')
        local.append(by_name[n])
    ref_name = table_name(con.pktable, s)
    txn = s.write_txn()
    if ref_name == table and table_id is None:  # references the table being created
        ref_cols, ref_schema, ref_id = list(columns), schema, None
    else:
        ref_tm = txn.tables.get(ref_name)
        if ref_tm is None:
            raise errors.UndefinedTable(f'relation "{local_name(ref_name)}" does not exist')
        ref_cols, ref_schema, ref_id = list(ref_tm.schema.columns), ref_tm.schema, ref_tm.table_id
    ref_by_name = {c.name: c for c in ref_cols}
    if con.pk_attrs:
        remote = []
        for a in con.pk_attrs:
            if a.sval not in ref_by_name:
                raise errors.UndefinedColumn(f'column "{a.sval}" referenced in foreign key constraint does not exist')
            remote.append(ref_by_name[a.sval])
        if not any(set(u) == {c.id for c in remote} and len(u) == len(remote) for u in ref_schema.uniques):
            raise errors.ProgrammingError(f'there is no unique constraint matching given keys for referenced '
                                          f'table "{local_name(ref_name)}"', sqlstate="42830")
    else:
        if not ref_schema.primary_key:
            raise errors.ProgrammingError(f'there is no primary key for referenced table "{local_name(ref_name)}"',
                                          sqlstate="42830")
        by_id = {c.id: c for c in ref_cols}
        remote = [by_id[cid] for cid in ref_schema.primary_key]
    if len(local) != len(remote):
        raise errors.ProgrammingError("number of referencing and referenced columns for foreign key disagree",
                                      sqlstate="42830")
    name = con.conname or choose_name(local_name(table), _name_addition([c.name for c in local]), "fkey", taken)
    if name in taken:
        raise errors.DuplicateObject(f'constraint "{name}" for relation "{local_name(table)}" already exists')
    for mine, theirs in zip(local, remote):
        _check_types(name, mine, theirs)
    return ForeignKey(name, tuple(c.id for c in local), ref_id or "", tuple(c.id for c in remote),
                      con.fk_upd_action or "a", con.fk_del_action or "a")


def _name_addition(names: list[str]) -> str:
    """Postgres' ChooseForeignKeyConstraintNameAddition: the column names joined by ``_``,
    stopping once the text is NAMEDATALEN long."""
    out = ""
    for n in names:
        out = n if not out else f"{out}_{n}"
        if len(out.encode()) >= 64:
            break
    return out


def _check_types(name: str, mine: Column, theirs: Column) -> None:
    a, b = mine.type, theirs.type
    if a.storage != PARQUET or b.storage != PARQUET or a.kind in _UNCOMPARABLE or b.kind in _UNCOMPARABLE:
        raise errors.FeatureNotSupported(f'foreign key constraint "{name}" cannot be implemented: key columns '
                                         f'"{mine.name}" and "{theirs.name}" are of types {a.sql()} and {b.sql()}')
    if a.kind == b.kind or {a.kind, b.kind} <= _INTEGERS or {a.kind, b.kind} <= _STRINGS:
        return
    raise _error(errors.ProgrammingError, f'foreign key constraint "{name}" cannot be implemented', "42804",
                 f'Key columns "{mine.name}" and "{theirs.name}" are of incompatible types: {a.sql()} and {b.sql()}.')


def resolve_self(table_id: str, fks: tuple[ForeignKey, ...]) -> tuple[ForeignKey, ...]:
    """A new table's constraints that reference itself get its id once it has one."""
    import dataclasses

    return tuple(dataclasses.replace(f, ref_table=table_id) if not f.ref_table else f for f in fks)


# -- what depends on what ----------------------------------------------------------------------
def referencing(tables: Mapping[str, TableManifest], table_id: str) -> list[tuple[str, ForeignKey]]:
    """(referencing table's name, constraint) of every constraint that references ``table_id``."""
    return [(name, fk) for name, tm in tables.items() for fk in tm.schema.foreign_keys if fk.ref_table == table_id]


def drop_referenced(s: Session, table: str, dropping: set[str], cascade: bool) -> None:
    """DROP TABLE ``table``: the constraints of other tables that reference it go with it
    under CASCADE (with Postgres' notice), else the drop is refused (2BP01)."""
    txn = s.write_txn()
    tm = txn.table(table)
    deps = [(child, fk) for child, fk in referencing(txn.tables, tm.table_id)
            if child != table and child not in dropping]
    if not deps:
        return
    listed = [f"constraint {fk.name} on table {local_name(child)} depends on table {local_name(table)}"
              for child, fk in deps]
    if not cascade:
        raise _error(errors.DatabaseError, f"cannot drop table {local_name(table)} because other objects depend on it",
                     "2BP01", "\n".join(listed), "Use DROP ... CASCADE to drop the dependent objects too.")
    s.notice(f"drop cascades to constraint {deps[0][1].name} on table {local_name(deps[0][0])}" if len(deps) == 1
             else f"drop cascades to {len(deps)} other objects")
    for child, fk in deps:
        _drop_from(s, child, fk.name)


def drop_referenced_column(s: Session, table: str, column: Column, cascade: bool) -> None:
    """DROP COLUMN of a column other tables' constraints reference (its key goes with it)."""
    txn = s.write_txn()
    tm = txn.table(table)
    for child, fk in referencing(txn.tables, tm.table_id):
        if column.id not in fk.ref_columns or child == table:
            continue
        if not cascade:
            raise _error(errors.DatabaseError, f"cannot drop column {column.name} of table {local_name(table)} because "
                         "other objects depend on it", "2BP01", f"constraint {fk.name} on table {local_name(child)} "
                         f"depends on column {column.name} of table {local_name(table)}",
                         "Use DROP ... CASCADE to drop the dependent objects too.")
        s.notice(f"drop cascades to constraint {fk.name} on table {local_name(child)}")
        _drop_from(s, child, fk.name)


def _drop_from(s: Session, child: str, name: str) -> None:
    import dataclasses

    txn = s.write_txn()
    sc = txn.table(child).schema
    txn.alter_table(child, dataclasses.replace(sc, foreign_keys=tuple(f for f in sc.foreign_keys if f.name != name)))


def without_column(fks: tuple[ForeignKey, ...], cid: int) -> tuple[ForeignKey, ...]:
    """DROP COLUMN: the table's own constraints over that column go with it (as in Postgres)."""
    return tuple(f for f in fks if cid not in f.columns)


def check_truncate(tables: Mapping[str, TableManifest], names: list[str], cascade: bool) -> None:
    """Postgres refuses TRUNCATE of a referenced table unless its referencing tables are
    truncated by the same statement (0A000), whatever their rows; reeldb refuses CASCADE
    (which would truncate tables the statement does not name)."""
    truncating = set(names)
    for name in names:
        tm = tables.get(name)
        if tm is None:
            continue
        for child, _fk in referencing(tables, tm.table_id):
            if child not in truncating and cascade:
                raise errors.FeatureNotSupported(
                    f'TRUNCATE ... CASCADE is not supported: name the referencing table "{local_name(child)}" too')
            if child not in truncating:
                raise _error(errors.FeatureNotSupported, "cannot truncate a table referenced in a foreign key "
                             "constraint", "0A000", f'Table "{local_name(child)}" references "{local_name(name)}".',
                             f'Truncate table "{local_name(child)}" at the same time, or use TRUNCATE ... CASCADE.')


# -- enforcing ---------------------------------------------------------------------------------
State = dict[str, tuple]


def state(tables: Mapping[str, TableManifest]) -> State | None:
    """The rows (fragments and their deletions) of every table on either side of a
    constraint, to tell which changed; None when no table has a foreign key (the common,
    free case)."""
    ids: set[str] = set()
    for tm in tables.values():
        for fk in tm.schema.foreign_keys:
            ids.add(tm.table_id)
            ids.add(fk.ref_table)
    if not ids:
        return None
    return {tm.table_id: _rows_state(tm) for tm in tables.values() if tm.table_id in ids}


def _rows_state(tm: TableManifest) -> tuple:
    return tuple((f.id, f.deletes) for f in tm.fragments)


def check_statement(s: Session, tables: Mapping[str, TableManifest], before: State | None) -> None:
    """The end of a statement: refuse it (23503) if it left a referencing row without its
    referenced row. ``before``: ``state`` at its start (None: no constraint existed then;
    every table with one counts as changed)."""
    after = state(tables)
    if after is None:
        return
    before = before or {}
    changed = {tid for tid, st in after.items() if before.get(tid) != st}
    if changed:
        verify(s, tables, changed)


def check_transaction(s: Session, tables: Mapping[str, TableManifest], changed: set[str]) -> None:
    """Before a commit: the tables the transaction changed (by id) hold every constraint."""
    if changed and state(tables) is not None:
        verify(s, tables, changed)


def verify(s: Session, tables: Mapping[str, TableManifest], changed: set[str],
           only: ForeignKey | None = None) -> None:
    """Check each constraint with a changed side (or just ``only``, over every row)."""
    by_id = {tm.table_id: (name, tm) for name, tm in tables.items()}
    for child_name, child in tables.items():
        for fk in sorted(child.schema.foreign_keys, key=lambda f: f.name):  # Postgres' order, by name
            if only is not None and fk is not only:
                continue
            if only is None and child.table_id not in changed and fk.ref_table not in changed:
                continue
            if fk.ref_table not in by_id:
                continue  # its referenced table went with DROP ... CASCADE in this statement
            parent_name, parent = by_id[fk.ref_table]
            row = _orphan(s, child, parent, fk)
            if row is None:
                continue
            theirs = ", ".join(parent.schema.by_id(c).name for c in fk.ref_columns)
            mine = ", ".join(child.schema.by_id(c).name for c in fk.columns)
            values = ", ".join(_text(v) for v in row)
            if only is None and fk.ref_table in changed and not (child.table_id in changed and _gained(s, child)):
                raise _error(errors.IntegrityError, f'update or delete on table "{local_name(parent_name)}" violates '
                             f'foreign key constraint "{fk.name}" on table "{local_name(child_name)}"', "23503",
                             f'Key ({theirs})=({values}) is still referenced from table "{local_name(child_name)}".')
            raise _error(errors.IntegrityError, f'insert or update on table "{local_name(child_name)}" violates '
                         f'foreign key constraint "{fk.name}"', "23503",
                         f'Key ({mine})=({values}) is not present in table "{local_name(parent_name)}".')


def verify_merged(s: Session, ours: Mapping[str, TableManifest], merged: Mapping[str, TableManifest]) -> None:
    """A merge's or revert's result: every constraint with a side the merge changed holds
    (23503 otherwise, and nothing is written)."""
    before = {tm.table_id: tm for tm in ours.values()}
    changed = {tm.table_id for tm in merged.values()
               if tm.table_id not in before or _rows_state(before[tm.table_id]) != _rows_state(tm)
               or before[tm.table_id].schema.foreign_keys != tm.schema.foreign_keys}
    if not changed or state(merged) is None:
        return
    try:
        verify(s, merged, changed)
    except errors.IntegrityError as e:
        raise _error(errors.IntegrityError, f"{e} (a row this merge or revert would bring; nothing was written)",
                     "23503", getattr(e, "detail", None)) from None


def _gained(s: Session, tm: TableManifest) -> bool:
    """Whether the open transaction added rows to ``tm`` (an UPDATE writes new rows)."""
    txn = s.open_txn
    ch = txn.changes.get(tm.table_id) if txn is not None else None
    return bool(ch is not None and ch.added)


def _orphan(s: Session, child: TableManifest, parent: TableManifest, fk: ForeignKey) -> tuple | None:
    """One referencing key of ``child`` with no row in ``parent``, or None (one query)."""
    mine = [quote_ident(child.schema.by_id(c).name) for c in fk.columns]
    theirs = [quote_ident(parent.schema.by_id(c).name) for c in fk.ref_columns]
    # bound under reeldb's own names: the statement's (and the session's) bindings stay as they are
    rel_c, rel_p = internal_name("fkchild", child.table_id), internal_name("fkparent", parent.table_id)
    present = " AND ".join(f"c.{m} IS NOT NULL" for m in mine)
    match = " AND ".join(f"p.{t} = c.{m}" for m, t in zip(mine, theirs))
    sql = (f"SELECT {', '.join(f'c.{m}' for m in mine)} FROM {quote_ident(rel_c)} AS c WHERE {present} "
           f"AND NOT EXISTS (SELECT 1 FROM {quote_ident(rel_p)} AS p WHERE {match}) LIMIT 1")
    s.engine.bind_table(rel_c, child)
    try:
        s.engine.bind_table(rel_p, parent)
        try:
            got, _ = s.engine.arrow(sql)
        finally:
            s.engine.unbind(rel_p)
    finally:
        s.engine.unbind(rel_c)
    if not got.num_rows:
        return None
    return tuple(got.column(i)[0].as_py() for i in range(got.num_columns))


def _error(cls: type[errors.Error], message: str, sqlstate: str, detail: str | None,
           hint: str | None = None) -> errors.Error:
    """An error with Postgres' primary message, and its DETAIL and HINT (sent as their own
    fields of the ErrorResponse; attributes ``detail`` and ``hint`` in Python)."""
    err = cls(message, sqlstate=sqlstate)
    err.detail, err.hint = detail, hint  # type: ignore[attr-defined]
    return err


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)
