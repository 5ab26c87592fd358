"""CREATE [UNIQUE] INDEX / DROP INDEX of btree indexes: kept for the catalog, never built.

reeldb answers every filter by scanning (DuckDB's zone maps prune fragments), so a btree index
changes no result (a UNIQUE one's key is enforced like a unique constraint's); ORMs and migration tools create them anyway and read them back
(SQLAlchemy's inspector, Alembic's autogenerate, psql's ``\\d``). The index is stored with the
table's schema (``Schema.btree_indexes``: columns by id, so renames keep it; dropping a column
drops the indexes over it, as in Postgres) and shown in pg_class / pg_index /
``pg_get_indexdef`` as Postgres shows it. What would change answers or that reeldb cannot show
exactly is refused (0A000): partial (WHERE) and expression indexes, operator classes,
collations, storage parameters, CONCURRENTLY, NULLS NOT DISTINCT, a UNIQUE index over the
columns of another unique key.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import SortByDir, SortByNulls

from .. import errors
from ..format.manifest import BtreeIndex, TableManifest
from ..format.types import PARQUET
from .definitions import DESC, NULLS_FIRST
from .names import choose_name, schema_of, table_name
from .result import Result

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .session import Session


def create(s: Session, stmt: ast.IndexStmt) -> Result:
    """CREATE INDEX [IF NOT EXISTS] [name] ON t [USING btree] (col [ASC|DESC] [NULLS FIRST|LAST], ...)
    [INCLUDE (col, ...)]."""
    what = stmt.idxname or "the index"
    if stmt.nulls_not_distinct:
        raise errors.FeatureNotSupported(f'UNIQUE NULLS NOT DISTINCT indexes are not supported ("{what}")')
    if stmt.whereClause is not None:
        raise errors.FeatureNotSupported(f'partial indexes (CREATE INDEX ... WHERE) are not supported ("{what}")')
    if stmt.concurrent:
        raise errors.FeatureNotSupported("CREATE INDEX CONCURRENTLY is not supported: use CREATE INDEX")
    if stmt.options or stmt.tableSpace:
        raise errors.FeatureNotSupported(f'index storage parameters and tablespaces are not supported ("{what}")')
    name = table_name(stmt.relation, s)
    txn = s.write_txn()
    tm = txn.table(name)
    columns, options = [], []
    for elem in stmt.indexParams or ():
        if elem.expr is not None or elem.name is None:
            raise errors.FeatureNotSupported(f'indexes on expressions are not supported ("{what}")')
        if elem.opclass or elem.collation or elem.opclassopts:
            raise errors.FeatureNotSupported(f'operator classes and collations in an index are not supported '
                                             f'("{what}")')
        columns.append(_column(tm, elem.name).id)
        desc = elem.ordering == SortByDir.SORTBY_DESC
        nulls_first = desc if elem.nulls_ordering == SortByNulls.SORTBY_NULLS_DEFAULT else \
            elem.nulls_ordering == SortByNulls.SORTBY_NULLS_FIRST
        options.append((DESC if desc else 0) | (NULLS_FIRST if nulls_first else 0))
    include = [_column(tm, elem.name).id for elem in stmt.indexIncludingParams or ()]
    if len(set(columns)) + len(include) > 32:
        raise errors.ProgramLimitExceeded("cannot use more than 32 columns in an index")
    sp, local = schema_of(name)
    taken = names_in_schema(txn.tables, sp, txn.objects)
    if stmt.idxname is None:
        iname = choose_name(local, "_".join(tm.schema.by_id(c).name for c in columns), "idx", taken)
    else:
        iname = stmt.idxname
        if iname in taken:
            if stmt.if_not_exists:
                s.notice(f'relation "{iname}" already exists, skipping')
                return Result(status="CREATE INDEX")
            raise errors.DuplicateTable(f'relation "{iname}" already exists')
    ix = BtreeIndex(iname, tuple(columns), tuple(options), tuple(include), bool(stmt.unique))
    uniques = tm.schema.uniques
    if ix.unique:
        if len(set(columns)) != len(columns) or any(set(u) == set(columns) for u in uniques):
            raise errors.FeatureNotSupported(f'a UNIQUE index over the columns of another unique key or index is '
                                             f'not supported ("{iname}")')
        _no_duplicates(s, tm, ix)
        uniques = uniques + (ix.columns,)
    txn.alter_table(name, dataclasses.replace(tm.schema, uniques=uniques,
                                              btree_indexes=tm.schema.btree_indexes + (ix,)))
    s.finish_write()
    return Result(status="CREATE INDEX")


def _no_duplicates(s: Session, tm: TableManifest, ix: BtreeIndex) -> None:
    """CREATE UNIQUE INDEX over rows that repeat a key (no column NULL): 23505, as Postgres."""
    from ..engine.engine import internal_name, quote_ident

    cols = [quote_ident(tm.schema.by_id(c).name) for c in ix.columns]
    rel = internal_name("uniq", tm.table_id)
    sql = (f"SELECT {', '.join(cols)} FROM {quote_ident(rel)} WHERE {' AND '.join(f'{c} IS NOT NULL' for c in cols)} "
           f"GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
    s.engine.bind_table(rel, tm)
    try:
        got, _ = s.engine.arrow(sql)
    finally:
        s.engine.unbind(rel)
    if got.num_rows:
        err = errors.UniqueViolation(f'could not create unique index "{ix.name}"')
        values = ", ".join(str(got.column(i)[0].as_py()) for i in range(got.num_columns))
        names = ", ".join(tm.schema.by_id(c).name for c in ix.columns)
        err.detail = f"Key ({names})=({values}) is duplicated."  # type: ignore[attr-defined]
        raise err


def _column(tm: TableManifest, name: str):
    col = tm.schema.find(name)
    if col is None:
        raise errors.UndefinedColumn(f'column "{name}" does not exist')
    if col.type.storage != PARQUET:
        raise errors.FeatureNotSupported(f'a btree index on a {col.type.sql()} column is not supported (column '
                                         f'"{name}")')
    return col


def names_in_schema(tables: Mapping[str, TableManifest], schema: str | None, objs: Mapping) -> set[str]:
    """The relation names taken in a schema (None: public): tables, sequences, and indexes
    of every kind (the implicit ones of keys included)."""
    out: set[str] = set()
    for name, tm in tables.items():
        sp, local = schema_of(name)
        if sp != schema:
            continue
        out.add(local)
        out.update(ix.name for ix in tm.indexes)
        out.update(ix.name for ix in tm.schema.btree_indexes)
        for key in tm.schema.uniques:
            out.add(tm.schema.key_name(local, key))
    for key in objs:
        if key.startswith("sequence/"):
            sp, local = schema_of(key[len("sequence/"):])
            if sp == schema:
                out.add(local)
    return out


def owner(tables: Mapping[str, TableManifest], iname: str, schema: str | None = None) -> str | None:
    """The table (its name) that has btree index ``iname`` in ``schema``, if any."""
    for name, tm in tables.items():
        if schema_of(name)[0] == schema and any(ix.name == iname for ix in tm.schema.btree_indexes):
            return name
    return None


def drop(s: Session, table: str, iname: str) -> None:
    """DROP INDEX of a btree index of ``table``."""
    txn = s.write_txn()
    sc = txn.table(table).schema
    gone = next(ix for ix in sc.btree_indexes if ix.name == iname)
    tid = txn.table(table).table_id
    for child, tm in txn.tables.items():
        for fk in tm.schema.foreign_keys:
            if gone.unique and fk.ref_table == tid and set(fk.ref_columns) == set(gone.columns):
                err = errors.DatabaseError(f"cannot drop index {iname} because other objects depend on it",
                                           sqlstate="2BP01")
                err.detail = (f"constraint {fk.name} on table {schema_of(child)[1]} depends on "  # type: ignore[attr-defined]
                              f"index {iname}")
                err.hint = "Use DROP ... CASCADE to drop the dependent objects too."  # type: ignore[attr-defined]
                raise err
    uniques = tuple(u for u in sc.uniques if not (gone.unique and tuple(u) == gone.columns))
    txn.alter_table(table, dataclasses.replace(
        sc, uniques=uniques, btree_indexes=tuple(ix for ix in sc.btree_indexes if ix.name != iname)))
