"""CREATE INDEX / DROP INDEX / REINDEX of vector indexes, in pgvector's syntax.

An index is built when it is created (reading the table's vectors once) and written as
an immutable object; the table's manifest lists it, so it is committed, branched and
merged with the table. Index names are unique across a branch's tables, as in Postgres.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import ObjectType, ReindexObjectType

from .. import errors
from ..format.manifest import IndexDef, TableManifest
from ..index import ann, versioned
from . import index_expr
from .names import table_name
from .parse import const_value, literal
from .result import Result

if TYPE_CHECKING:
    from ..catalog.transaction import Transaction
    from .session import Session


def create(s: Session, stmt: ast.IndexStmt) -> Result:

    method = (stmt.accessMethod or "btree").lower()
    if method == "btree":  # a plain index: kept for the catalog (btree_indexes.py)
        from . import btree_indexes

        return btree_indexes.create(s, stmt)
    if method not in ann.PARAMS:
        raise errors.FeatureNotSupported(
            f'access method "{method}" is not supported: reeldb indexes vectors (USING hnsw or ivfflat); '
            "other filters are scanned, which needs no index")
    if stmt.unique or stmt.whereClause is not None:
        raise errors.FeatureNotSupported("UNIQUE and partial vector indexes are not supported")
    if not stmt.indexParams or len(stmt.indexParams) != 1:
        raise errors.FeatureNotSupported(f"a {method} index takes exactly one vector column or expression")
    elem: ast.IndexElem = stmt.indexParams[0]
    name = table_name(stmt.relation)
    txn = s.write_txn()
    tm = txn.table(name)
    key = None
    if elem.expr is not None:  # pgvector's binary_quantize(embedding)::bit(3), embedding::halfvec(3)
        key = index_expr.analyse(elem.expr, lambda n: c.type if (c := tm.schema.find(n)) is not None else None)
        col = tm.schema.find(key.column)
        if key.node is None:  # a cast that changes nothing: an index on the column itself
            key = None
    else:
        col = tm.schema.find(elem.name)
        if col is None:
            raise errors.UndefinedColumn(f'column "{elem.name}" does not exist')
    kind = key.kind if key is not None else col.type.kind
    if key is None and kind not in ("vector", "halfvec"):
        raise errors.DatatypeMismatch(f'column "{col.name}" has type {col.type.sql()}: {method} indexes '
                                      "take a vector or halfvec column")
    opclass = elem.opclass[-1].sval.lower() if elem.opclass else None
    if opclass is None and method == "ivfflat" and kind == "vector":
        opclass = ann.DEFAULT_OPCLASS  # pgvector's default for vector with ivfflat
    if opclass is None:
        known = sorted(o for o in (index_expr.OPCLASSES[method] if key is not None else ann.OPCLASSES)
                       if o.startswith(kind + "_"))
        raise errors.UndefinedObject(f'data type {kind} has no default operator class for access '
                                     f'method "{method}": name one ({", ".join(known)})')
    if key is not None:
        if opclass not in index_expr.OPCLASSES[method]:
            raise errors.UndefinedObject(f'operator class "{opclass}" does not exist for access method "{method}"')
        if not opclass.startswith(kind + "_"):
            raise errors.DatatypeMismatch(f'operator class "{opclass}" does not accept data type {kind}')
    elif opclass not in ann.OPCLASSES or not opclass.startswith(kind + "_"):
        raise errors.UndefinedObject(f'operator class "{opclass}" does not exist for access method "{method}" '
                                     f"and type {kind}")
    given = {d.defname.lower(): _option(d.arg) for d in stmt.options or ()}
    opts = ann.options(method, given, halfvec=kind == "halfvec")
    iname = stmt.idxname or _default_name(txn, name, key.name if key is not None else col.name)
    owner = _owner(txn, iname)
    if owner is not None:
        if stmt.if_not_exists:
            s.notice(f'relation "{iname}" already exists, skipping')
            return Result(status="CREATE INDEX")
        raise errors.DuplicateTable(f'relation "{iname}" already exists')
    ix = IndexDef(iname, col.id, method, opclass, tuple(sorted(opts.items())),
                  expression=key.text() if key is not None else "", given=tuple(given))
    if key is not None:
        s.notice(f'index "{iname}" on an expression is recorded, not built: queries ordered by '
                 f"{key.text(pretty=True)} scan exactly")
    else:
        ix = versioned.build(s.catalog.reader, tm, ix)
        if not ix.key:  # pgvector's words; reeldb answers exactly until the lists are trained
            s.notice(f'ivfflat index created with little data: "{iname}" is trained by REINDEX once the '
                     f"table has {opts['lists']} rows; until then queries scan exactly")
    txn.set_indexes(name, tm.indexes + (ix,))
    s.finish_write()
    return Result(status="CREATE INDEX")


def drop(s: Session, stmt: ast.DropStmt) -> Result:

    assert stmt.removeType == ObjectType.OBJECT_INDEX
    txn = s.write_txn()
    for obj in stmt.objects:
        iname = obj[-1].sval
        owner = _owner(txn, iname)
        if owner is None:
            from . import btree_indexes

            schema = obj[-2].sval if len(obj) > 1 and obj[-2].sval != "public" else None
            table = btree_indexes.owner(txn.tables, iname, schema)
            if table is not None:
                btree_indexes.drop(s, table, iname)
                continue
            if stmt.missing_ok:
                s.notice(f'index "{iname}" does not exist, skipping')
                continue
            raise errors.UndefinedObject(f'index "{iname}" does not exist')
        txn.set_indexes(owner.name, tuple(ix for ix in owner.indexes if ix.name != iname))
    s.finish_write()
    return Result(status="DROP INDEX")


def reindex(s: Session, stmt: ast.ReindexStmt) -> Result:
    """REINDEX INDEX i / TABLE t: fold fragments written since into the index (a rebuild
    when most of its rows have been deleted or rewritten)."""

    txn = s.write_txn()
    if stmt.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
        owner = _owner(txn, stmt.relation.relname)
        if owner is None:
            raise errors.UndefinedObject(f'index "{stmt.relation.relname}" does not exist')
        fold(s, txn, owner.name, {stmt.relation.relname})
    elif stmt.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
        fold(s, txn, table_name(stmt.relation), None)
    else:
        for name in list(txn.tables):
            fold(s, txn, name, None)
    s.finish_write()
    return Result(status="REINDEX")


def fold(s: Session, txn: Transaction, table: str, names: set[str] | None) -> bool:
    """Fold new fragments into the table's indexes (``names``, or all); True if any changed."""
    tm = txn.table(table)
    new = tuple(versioned.fold(s.catalog.reader, tm, ix) if names is None or ix.name in names else ix
                for ix in tm.indexes)
    if new == tm.indexes:
        return False
    txn.set_indexes(table, new)
    return True


def _owner(txn: Transaction, iname: str) -> TableManifest | None:
    for tm in txn.tables.values():
        if tm.index(iname) is not None:
            return tm
    return None


def _default_name(txn: Transaction, table: str, column: str) -> str:
    """Postgres' choice: ``<table>_<column>_idx``, then ``..._idx1``, ``..._idx2``."""
    base = f"{table}_{column}_idx"
    name, i = base, 0
    while _owner(txn, name) is not None:
        i += 1
        name = f"{base}{i}"
    return name


def _option(node: ast.Node) -> object:
    if isinstance(node, ast.A_Const):
        return const_value(node)
    if isinstance(node, ast.TypeName):  # WITH (quantization = binary): a bare word
        return ".".join(n.sval for n in node.names)
    try:
        return literal(node)
    except errors.FeatureNotSupported:
        raise errors.InvalidParameterValue("index options take numbers or words") from None
