"""Views: ``CREATE [OR REPLACE] [TEMP] VIEW``, ``CREATE MATERIALIZED VIEW``, ``REFRESH``,
``DROP VIEW`` / ``DROP MATERIALIZED VIEW``, ``ALTER VIEW ... RENAME TO``.

A view is an object of the branch (``view/<name>`` in the commit, catalog/objects.py), so it
is versioned, branched and merged like a table; a temporary view lives in the session only.
Its definition is its SELECT as pglast deparses it, with ``*`` expanded to the columns it
named when it was created (as PostgreSQL does), its column names and types, and the
relations of its branch it reads (``depends``: DROP TABLE of one is 2BP01, CASCADE drops the
view too).

Reading a view is reading its SELECT: before a statement is bound, each relation it names
that is a view becomes a subquery of the view's SELECT whose columns carry the view's names
(``expand``). A view of another branch (``"b".v``) reads its tables in that branch: its
unqualified names are qualified with the branch as the statement wrote it. Nothing a view
does is trusted: the expanded statement goes through the allow-list and the rights of the
login that reads it, so a view naming ``"b".t`` is refused to a login that may not read b.

A materialized view is a table of the branch holding the rows of its SELECT, plus its view
object (``materialized``, ``populated``): it is read like a table, refreshed by REFRESH
(one commit), refused to INSERT / UPDATE / DELETE (42809), and refused to SELECT until
refreshed when made WITH NO DATA (55000).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.enums import DropBehavior, LimitOption, ObjectType, ViewCheckOption

from .. import errors
from ..catalog import objects
from ..engine.engine import quote_ident
from ..format.types import ColumnType
from .names import object_table, schema_of, table_key, table_name
from .names import schemas as namespace_schemas
from .parse import colref, deparse, parse, transform, walk
from .result import Result
from .rewrite import resolve_namespaces

if TYPE_CHECKING:
    from .session import Session

MAX_DEPTH = 32  # views reading views, at most (a cycle made by OR REPLACE stops here)
# statements whose relations are read (their views expanded); others name relations as targets
_READING = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.CopyStmt, ast.ExplainStmt,
            ast.DeclareCursorStmt, ast.CreateTableAsStmt)
_VERBS = {ast.InsertStmt: "insert into", ast.UpdateStmt: "update", ast.DeleteStmt: "delete from"}


def _error(cls: type[errors.Error], message: str, sqlstate: str | None = None, detail: str | None = None,
           hint: str | None = None) -> errors.Error:
    err = cls(message, sqlstate=sqlstate)
    err.detail, err.hint = detail, hint  # type: ignore[attr-defined]
    return err


# -- what the session sees -----------------------------------------------------------------------
def branch_views(objs: dict[str, Any]) -> dict[str, dict]:
    """View name -> definition, of a commit's (or transaction's) objects."""
    return objects.named(objs, objects.VIEW)


def visible(s: Session, objs: dict[str, Any] | None = None) -> dict[str, dict]:
    """The views an unqualified name finds (in ``objs``, else the state the session sees):
    the session's temporary ones first, as in PostgreSQL (pg_temp comes first in the
    search path)."""
    objs = s.catalog_objects() if objs is None else objs
    if not s.temp_views and not any(k.startswith(objects.VIEW) for k in objs):
        return {}
    return {**branch_views(objs), **s.temp_views}


def kind_word(d: dict) -> str:
    return "materialized view" if d.get("materialized") else "view"


# -- reading: expansion ------------------------------------------------------------------------
def expand(s: Session, stmt: ast.Node) -> bool:
    """Replace in ``stmt`` each relation that is a view by its SELECT (a subquery named as
    the view, with the view's column names); refuse writes to views. Runs once the
    statement is bound (its objects are read without reading the head again); True when
    it may have changed the statement."""
    if not isinstance(stmt, _READING) or (isinstance(stmt, ast.CreateTableAsStmt)
                                          and stmt.objtype == ObjectType.OBJECT_MATVIEW):
        return False  # a materialized view's query is stored as written (create_materialized)
    local = visible(s, s.statement_objects())
    target = getattr(stmt, "relation", None) if isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt
                                                             | ast.CopyStmt) else None
    if target is not None and _is_local(target) and target.relname in local:
        _refuse_target(stmt, target.relname, local[target.relname])
    if not local and not any(isinstance(n, ast.RangeVar) and n.schemaname not in _NOT_BRANCHES for n in walk(stmt)):
        return False
    if isinstance(stmt, ast.CreateTableAsStmt):
        stmt.query = _expand_tree(s, stmt.query, local, None, 0)
    elif isinstance(stmt, ast.CopyStmt):
        if stmt.query is not None:
            stmt.query = _expand_tree(s, stmt.query, local, None, 0)
    else:
        skip = {id(target)} if target is not None else set()
        for slot in stmt.__slots__:
            val = getattr(stmt, slot, None)
            if isinstance(val, ast.Node | tuple) and id(val) not in skip:
                setattr(stmt, slot, _expand_tree(s, val, local, None, 0, skip))
    return True


_NOT_BRANCHES = frozenset({None, "public", "pg_temp", "pg_catalog", "information_schema"})


def _is_local(rv: ast.RangeVar) -> bool:
    return rv.schemaname in (None, "public", "pg_temp") and rv.catalogname is None


def refuse_copy(s: Session, stmt: ast.CopyStmt) -> None:
    """42809 for ``COPY view TO / FROM``; a COPY of a query is fine."""
    target = stmt.relation
    if target is not None and _is_local(target):
        local = visible(s)
        if target.relname in local:
            _refuse_target(stmt, target.relname, local[target.relname])


def _refuse_target(stmt: ast.Node, name: str, d: dict) -> None:
    if isinstance(stmt, ast.CopyStmt):
        if stmt.is_from:
            raise _error(errors.ProgrammingError, f'cannot copy to {kind_word(d)} "{name}"', "42809",
                         hint=None if d.get("materialized") else
                         "To enable copying to a view, provide an INSTEAD OF INSERT trigger.")
        raise _error(errors.ProgrammingError, f'cannot copy from {kind_word(d)} "{name}"', "42809",
                     hint="Try the COPY (SELECT ...) TO variant.")
    if d.get("materialized"):
        raise _error(errors.ProgrammingError, f'cannot change materialized view "{name}"', "42809")
    raise _error(errors.ObjectNotInPrerequisiteState, f'cannot {_VERBS[type(stmt)]} view "{name}"',
                 detail="reeldb's views are read-only: they are not automatically updatable.",
                 hint="Write to the view's base table instead.")


def _cte_names(tree: Any) -> set[str]:
    return {n.ctename for n in walk(tree) if isinstance(n, ast.CommonTableExpr)}


def _expand_tree(s: Session, tree: Any, local: dict[str, dict], branch: str | None, depth: int,
                 skip: set[int] | None = None) -> Any:
    """``tree`` with its views expanded; ``branch``: the schema the views and tables it
    names without one are read in (None: the connection's branch, and its temporary views)."""
    ctes = _cte_names(tree)
    skip = skip or set()
    others: dict[str, dict[str, dict]] = {}

    def views_of(schema: str) -> dict[str, dict]:
        if schema not in others:
            try:
                cid = s.resolve_schema_ref(schema)
            except errors.InvalidSchemaName:
                others[schema] = {}
            else:
                others[schema] = branch_views(s.catalog.objects(cid))
        return others[schema]

    def visit(node: ast.Node) -> ast.Node | None:
        if not isinstance(node, ast.RangeVar) or id(node) in skip or node.catalogname is not None:
            return None
        schema = node.schemaname
        if schema in ("pg_catalog", "information_schema"):
            return None
        if schema in (None, "public", "pg_temp"):
            if schema is None and node.relname in ctes:
                return None
            if branch is None:
                d = local.get(node.relname)
                if d is None or (schema == "pg_temp" and node.relname not in s.temp_views):
                    return None
                return _subquery(s, node, node.relname, d, None, depth)
            d = views_of(branch).get(node.relname)
            if d is None:
                return None
            return _subquery(s, node, node.relname, d, branch, depth)
        d = views_of(schema).get(node.relname)
        if d is None:
            return None
        return _subquery(s, node, node.relname, d, schema, depth)

    return transform(tree, visit)


def _subquery(s: Session, rv: ast.RangeVar, name: str, d: dict, branch: str | None, depth: int) -> ast.Node:
    if d.get("materialized"):
        if not d.get("populated", True):
            raise _error(errors.ObjectNotInPrerequisiteState, f'materialized view "{name}" has not been populated',
                         hint="Use the REFRESH MATERIALIZED VIEW command.")
        if branch is None:
            return rv  # its rows are a table of the branch
        rv.schemaname = branch
        return rv
    if depth >= MAX_DEPTH:
        raise errors.ProgrammingError(f'infinite recursion detected in rules for relation "{name}"',
                                      sqlstate="42P17")
    body = parse_body(s, d, branch)
    body = _expand_tree(s, body, {} if branch is not None else visible(s), branch, depth + 1)
    cols = list(d["columns"])
    inner = ast.SelectStmt(
        targetList=tuple(ast.ResTarget(val=colref(c)) for c in cols),
        fromClause=(ast.RangeSubselect(lateral=False, subquery=body,
                                       alias=ast.Alias(aliasname="__reeldb_view",
                                                       colnames=tuple(ast.String(sval=c) for c in cols))),),
        limitOption=LimitOption.LIMIT_OPTION_DEFAULT, op=0)
    alias = copy.deepcopy(rv.alias) if rv.alias is not None else ast.Alias(aliasname=name.rpartition(".")[2])
    return ast.RangeSubselect(lateral=False, subquery=inner, alias=alias)


def parse_body(s: Session, d: dict, branch: str | None) -> ast.SelectStmt:
    """A view's SELECT, its names resolved in the view's branch: ``branch`` (a schema as the
    statement wrote it) qualifies the relations it names without a schema."""
    body = parse(d["query"])[0].stmt
    if branch is None:
        resolve_namespaces(body, lambda: namespace_schemas(s))
        return body
    spaces = objects.named(s.catalog.objects(s.resolve_schema_ref(branch)), objects.SCHEMA)
    resolve_namespaces(body, lambda: spaces)
    ctes = _cte_names(body)
    for node in walk(body):
        if isinstance(node, ast.RangeVar) and node.catalogname is None and node.schemaname in (None, "public") \
                and not (node.schemaname is None and node.relname in ctes):
            if node.alias is None:
                node.alias = ast.Alias(aliasname=node.relname.rpartition(".")[2])
            node.schemaname = branch
    return body


# -- CREATE VIEW ----------------------------------------------------------------------------------
def _view_name(s: Session, rv: ast.RangeVar, temporary: bool) -> str:
    if temporary:
        if rv.schemaname not in (None, "pg_temp"):
            raise errors.ProgrammingError("cannot create temporary relation in non-temporary schema", sqlstate="42P16")
        return rv.relname
    if rv.schemaname == "pg_temp":
        raise errors.FeatureNotSupported("CREATE VIEW pg_temp.name: say CREATE TEMPORARY VIEW")
    return table_name(rv, s)


def check_free(s: Session, name: str, temporary: bool = False) -> None:
    """A relation name is taken by a view too (tables, views and materialized views share
    PostgreSQL's namespace of relations; a temporary one is in the session's own schema)."""
    if name in (s.temp_views if temporary else visible(s)):
        raise errors.DuplicateTable(f'relation "{name}" already exists')


def create_view(s: Session, stmt: ast.ViewStmt) -> Result:
    temporary = stmt.view.relpersistence == "t"
    if stmt.withCheckOption != ViewCheckOption.NO_CHECK_OPTION:
        raise errors.FeatureNotSupported("WITH CHECK OPTION is not supported: reeldb's views are read-only")
    for opt in stmt.options or ():
        raise errors.FeatureNotSupported(f'view option "{opt.defname}" is not supported')
    name = _view_name(s, stmt.view, temporary)
    if not isinstance(stmt.query, ast.SelectStmt):
        raise errors.FeatureNotSupported("a view's query must be a SELECT")
    for node in walk(stmt.query):
        if isinstance(node, ast.ParamRef):
            raise errors.ProgrammingError(f"there is no parameter ${node.number}", sqlstate="42P02")
    body, depends, temp_reads = _analyse(s, stmt.query)
    if not temporary and temp_reads:
        s.notice(f'view "{name}" will be a temporary view')
        temporary = True
    aliases = [a.sval for a in stmt.aliases or ()]
    columns, types = _describe(s, body)
    if len(aliases) > len(columns):
        raise errors.SyntaxError("CREATE VIEW specifies more column names than columns")
    columns = aliases + columns[len(aliases):]
    _check_unique(columns)
    definition = {"query": deparse(body), "columns": columns, "types": [t.to_json() for t in types],
                  "depends": depends}
    existing = s.temp_views.get(name) if temporary else None
    if not temporary:
        txn = s.write_txn()
        existing = txn.objects.get(objects.key(objects.VIEW, name))
        if name in txn.tables and existing is None:
            if stmt.replace:
                raise errors.ProgrammingError(f'"{name}" is not a view', sqlstate="42809")
            raise errors.DuplicateTable(f'relation "{name}" already exists')
    elif name in s.temp_tables:
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    if existing is not None:
        if not stmt.replace:
            raise errors.DuplicateTable(f'relation "{name}" already exists')
        if existing.get("materialized"):
            raise errors.ProgrammingError(f'"{name}" is not a view', sqlstate="42809")
        _check_replace(existing, definition)
    if temporary:
        s.temp_views[name] = definition
        return Result(status="CREATE VIEW")
    txn.set_object(objects.key(objects.VIEW, name), definition)
    s.finish_write()
    return Result(status="CREATE VIEW")


def _check_unique(columns: list[str]) -> None:
    for i, c in enumerate(columns):
        if c in columns[:i]:
            raise errors.ProgrammingError(f'column "{c}" specified more than once', sqlstate="42701")


def _check_replace(old: dict, new: dict) -> None:
    """CREATE OR REPLACE VIEW: PostgreSQL's rules (columns may be added at the end only)."""
    if len(new["columns"]) < len(old["columns"]):
        raise errors.ProgrammingError("cannot drop columns from view", sqlstate="42P16")
    for o, n, ot, nt in zip(old["columns"], new["columns"], old["types"], new["types"], strict=False):
        if o != n:
            raise _error(errors.ProgrammingError, f'cannot change name of view column "{o}" to "{n}"', "42P16",
                         hint="Use ALTER VIEW ... RENAME COLUMN ... to change name of view column instead.")
        if ColumnType.from_json(ot).sql() != ColumnType.from_json(nt).sql():
            raise errors.ProgrammingError(
                f'cannot change data type of view column "{o}" from {ColumnType.from_json(ot).sql()} to '
                f"{ColumnType.from_json(nt).sql()}", sqlstate="42P16")


def _analyse(s: Session, query: ast.SelectStmt) -> tuple[ast.SelectStmt, list[str], bool]:
    """The view's SELECT with its stars expanded, the relations of the branch it reads, and
    whether it reads a temporary table or view."""
    body = copy.deepcopy(query)
    ctes = _cte_names(body)
    tables = s.current_tables()
    local = visible(s)
    depends: set[str] = set()
    temp_reads = False
    for node in walk(body):
        if isinstance(node, ast.RangeVar) and node.catalogname is None and node.schemaname in (None, "public", "pg_temp") \
                and not (node.schemaname is None and node.relname in ctes):
            if node.relname in s.temp_tables or node.relname in s.temp_views:
                temp_reads = True
            elif node.relname in tables or node.relname in local:
                depends.add(node.relname)
    _expand_stars(s, body, ctes)
    return body, sorted(depends), temp_reads


def _relation_columns(s: Session, rv: ast.RangeVar, ctes: set[str]) -> list[tuple[str, ColumnType | None]] | None:
    """The columns of a relation a view's FROM names, or None where reeldb cannot list them."""
    if rv.catalogname is not None or (rv.schemaname is None and rv.relname in ctes):
        return None
    name = rv.relname
    if rv.schemaname in (None, "public", "pg_temp"):
        d = visible(s).get(name)
        if d is not None:
            return [(c, ColumnType.from_json(t)) for c, t in zip(d["columns"], d["types"], strict=True)]
        if name in s.temp_tables:
            _, desc = s.engine.arrow(f"SELECT * FROM {quote_ident(name)}", columns_only=True)
            return [(x[0], None) for x in desc]
        tm = s.current_tables().get(name)
        if tm is None or rv.schemaname == "pg_temp":
            return None
        return [(c.name, c.type) for c in tm.schema.columns]
    if rv.schemaname in ("pg_catalog", "information_schema"):
        return None
    try:
        cid = s.resolve_schema_ref(rv.schemaname)
    except errors.InvalidSchemaName:
        return None
    d = branch_views(s.catalog.objects(cid)).get(name)
    if d is not None:
        return [(c, ColumnType.from_json(t)) for c, t in zip(d["columns"], d["types"], strict=True)]
    tm = s.catalog.snapshot(cid).get(name)
    return None if tm is None else [(c.name, c.type) for c in tm.schema.columns]


def _from_items(s: Session, node: Any, ctes: set[str], out: list) -> bool:
    """Flatten a FROM item into (alias, columns) in order; False where one cannot be listed."""
    if isinstance(node, ast.RangeVar):
        cols = _relation_columns(s, node, ctes)
        if cols is None:
            return False
        alias = node.alias.aliasname if node.alias is not None else node.relname.rpartition(".")[2]
        if node.alias is not None and node.alias.colnames:
            names = [c.sval for c in node.alias.colnames]
            cols = [(names[i] if i < len(names) else c, t) for i, (c, t) in enumerate(cols)]
        out.append((alias, cols))
        return True
    if isinstance(node, ast.JoinExpr):
        if node.usingClause or node.isNatural:
            return False
        return _from_items(s, node.larg, ctes, out) and _from_items(s, node.rarg, ctes, out)
    return False


def _expand_stars(s: Session, body: ast.Node, ctes: set[str]) -> None:
    """``*`` and ``t.*`` in the view's select lists -> the columns they name now, as
    PostgreSQL does: a column added to the table later is not a column of the view."""
    for node in list(walk(body)):
        if not isinstance(node, ast.SelectStmt) or not node.targetList:
            continue
        if not any(isinstance(t.val, ast.ColumnRef) and isinstance(t.val.fields[-1], ast.A_Star)
                   for t in node.targetList):
            continue
        items: list = []
        if not all(_from_items(s, f, ctes, items) for f in node.fromClause or ()):
            continue  # left as written: its columns are read when the view is
        qualify = len(items) > 1
        out = []
        for t in node.targetList:
            v = t.val
            if not (isinstance(v, ast.ColumnRef) and isinstance(v.fields[-1], ast.A_Star)):
                out.append(t)
                continue
            qualifier = v.fields[-2].sval if len(v.fields) > 1 else None
            chosen = [it for it in items if qualifier is None or it[0] == qualifier]
            for alias, cols in chosen:
                for c, _ in cols:
                    out.append(ast.ResTarget(val=colref(alias, c) if qualify or qualifier else colref(c)))
        node.targetList = tuple(out)


def _describe(s: Session, body: ast.SelectStmt) -> tuple[list[str], list[ColumnType]]:
    """The view's column names and types, from running it for its columns only: a column
    that is a base table's column keeps that column's type (varchar(50), not text)."""
    from .parse import name_columns

    probe = copy.deepcopy(body)
    name_columns(probe)
    probe = _expand_tree(s, probe, visible(s), None, 0)
    was, s.describing = s.describing, True
    try:
        table, desc = s.run_query(probe, [])
    finally:
        s.describing = was
    names = [d[0] for d in desc]
    types = []
    items: list = []
    plain = body
    while plain.larg is not None:  # a UNION's columns are its first branch's
        plain = plain.larg
    resolvable = all(_from_items(s, f, _cte_names(body), items) for f in plain.fromClause or ())
    targets = list(plain.targetList or ())
    for i, d in enumerate(desc):
        known = None
        if resolvable and i < len(targets) and isinstance(targets[i].val, ast.ColumnRef) and \
                all(isinstance(f, ast.String) for f in targets[i].val.fields):
            known = _column_type(items, [f.sval for f in targets[i].val.fields])
        types.append(known or duck_column_type(str(d[1]), table.schema.field(i).type))
    return names, types


def _column_type(items: list, fields: list[str]) -> ColumnType | None:
    if len(fields) == 2:
        found = [t for alias, cols in items if alias == fields[0] for c, t in cols if c == fields[1]]
    elif len(fields) == 1:
        found = [t for _, cols in items for c, t in cols if c == fields[0]]
    else:
        return None
    return found[0] if len(found) == 1 else None


def duck_column_type(duck: str, arrow_type: Any) -> ColumnType:
    """A view column's type from DuckDB's type of the result (text where reeldb has no
    closer type: the catalog must name some type)."""
    from ..format.blobs import is_blob_struct
    from ..format.types import column_type

    d = duck.upper()
    if is_blob_struct(arrow_type):
        return column_type("bytea")
    simple = {"INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "FLOAT": "float4", "DOUBLE": "float8",
              "BOOLEAN": "bool", "VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp",
              "TIMESTAMP WITH TIME ZONE": "timestamptz", "UUID": "uuid", "JSON": "jsonb", "JSONB": "jsonb",
              "BLOB": "bytea", "HUGEINT": "numeric", "CITEXT": "citext"}
    if d in simple:
        return column_type(simple[d])
    if d.startswith("DECIMAL"):
        return column_type("numeric")
    if d.startswith("FLOAT[") and d.count("[") == 1:
        return column_type("vector", [int(d[6:-1])])
    return column_type("text")


# -- materialized views ---------------------------------------------------------------------------
def create_materialized(s: Session, stmt: ast.CreateTableAsStmt, params: list[Any],
                        create_table_as: Callable[[ast.CreateTableAsStmt, list[Any]], Result]) -> Result:
    """CREATE MATERIALIZED VIEW name [(cols)] AS select [WITH [NO] DATA]: a table of the
    query's rows and its view object, in one commit."""
    name = table_name(stmt.into.rel, s)
    for node in walk(stmt.query):
        if isinstance(node, ast.ParamRef):
            raise errors.ProgrammingError(f"there is no parameter ${node.number}", sqlstate="42P02")
    if name in visible(s) or name in s.current_tables():
        if stmt.if_not_exists:
            s.notice(f'relation "{name}" already exists, skipping')
            return Result(status="SELECT 0")
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    body, depends, temp_reads = _analyse(s, stmt.query)
    if temp_reads:
        raise errors.FeatureNotSupported("materialized views must not use temporary tables or views")
    stmt.query = copy.deepcopy(body)
    if stmt.into.skipData:
        stmt.query.limitCount = ast.A_Const(isnull=False, val=ast.Integer(ival=0))
        stmt.query.limitOption = LimitOption.LIMIT_OPTION_COUNT
    if not isinstance(stmt.query, ast.SelectStmt) or stmt.query.op:
        stmt.query = ast.SelectStmt(targetList=(ast.ResTarget(val=ast.ColumnRef(fields=(ast.A_Star(),))),),
                                    fromClause=(ast.RangeSubselect(subquery=stmt.query,
                                                                   alias=ast.Alias(aliasname="__q")),),
                                    limitOption=LimitOption.LIMIT_OPTION_DEFAULT, op=0)
    stmt.query = _expand_tree(s, stmt.query, visible(s), None, 0)
    with s.one_transaction():
        result = create_table_as(stmt, params)
        txn = s.write_txn()
        tm = txn.table(name)
        txn.set_object(objects.key(objects.VIEW, name), {
            "query": deparse(body), "columns": [c.name for c in tm.schema.columns],
            "types": [c.type.to_json() for c in tm.schema.columns], "depends": depends, "materialized": True,
            "populated": not stmt.into.skipData})
    return Result(rowcount=result.rowcount, status=result.status if not stmt.into.skipData else "CREATE MATERIALIZED VIEW")


def refresh(s: Session, stmt: ast.RefreshMatViewStmt) -> Result:
    """REFRESH MATERIALIZED VIEW [CONCURRENTLY] name [WITH [NO] DATA]: its rows replaced by
    its query's, in one commit (readers never wait in reeldb, so CONCURRENTLY is the same)."""
    from . import dml
    name = table_name(stmt.relation, s)
    d = visible(s).get(name)
    if d is None or not d.get("materialized"):
        if d is None and name not in s.current_tables():
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        raise errors.ProgrammingError(f'"{name}" is not a materialized view', sqlstate="42809")
    if stmt.concurrent and not d.get("populated", True):
        raise errors.FeatureNotSupported("CONCURRENTLY cannot be used when the materialized view is not populated")
    with s.one_transaction():
        dml.delete(s, ast.DeleteStmt(relation=ast.RangeVar(relname=name, inh=True, relpersistence="p")), [])
        if not stmt.skipData:
            query = parse_body(s, d, None)
            query = _expand_tree(s, query, visible(s), None, 0)
            s.bind(None)
            table, _ = s.run_query(query, [])
            cols = d["columns"]
            dml.write_rows(s, name, {c: table.column(i) for i, c in enumerate(cols)}, table.num_rows)
        txn = s.write_txn()
        txn.set_object(objects.key(objects.VIEW, name), {**d, "populated": not stmt.skipData})
    return Result(status="REFRESH MATERIALIZED VIEW")


# -- DROP, and what depends on what ---------------------------------------------------------------
def _dependents(views: dict[str, dict], name: str) -> list[str]:
    """Views that read ``name``, directly or through other views, nearest first."""
    out: list[str] = []
    todo = [name]
    while todo:
        cur = todo.pop(0)
        for v, d in sorted(views.items()):
            if cur in d.get("depends", ()) and v not in out and v != name:
                out.append(v)
                todo.append(v)
    return out


def _describe_dependents(views: dict[str, dict], name: str, what: str) -> list[str]:
    lines = []
    for v in _dependents(views, name):
        for dep in views[v].get("depends", ()):
            if dep == name:
                lines.append(f"{kind_word(views[v])} {_local(v)} depends on {what}")
            elif dep in views and dep in _dependents(views, name):
                lines.append(f"{kind_word(views[v])} {_local(v)} depends on {kind_word(views[dep])} {_local(dep)}")
    return lines


def _local(name: str) -> str:
    return name.rpartition(".")[2]


def _drop_dependents(s: Session, views: dict[str, dict], name: str, what: str, cascade: bool,
                     dropping: set[str], drop_word: str) -> None:
    deps = [v for v in _dependents(views, name) if v not in dropping]
    if not deps:
        return
    lines = _describe_dependents(views, name, what)
    if not cascade:
        raise _error(errors.DatabaseError, f"cannot drop {drop_word} because other objects depend on it", "2BP01",
                     "\n".join(lines), "Use DROP ... CASCADE to drop the dependent objects too.")
    if len(deps) == 1:
        s.notice(f"drop cascades to {kind_word(views[deps[0]])} {_local(deps[0])}")
    else:
        s.notice(f"drop cascades to {len(deps)} other objects")
    for v in deps:
        _drop_one(s, v, views[v])
        dropping.add(v)


def _drop_one(s: Session, name: str, d: dict) -> None:
    if name in s.temp_views and s.temp_views[name] is d:
        del s.temp_views[name]
        return
    txn = s.write_txn()
    txn.set_object(objects.key(objects.VIEW, name), None)
    if d.get("materialized") and name in txn.tables:
        txn.drop_table(name)


def drop(s: Session, stmt: ast.DropStmt) -> Result:
    """DROP VIEW / DROP MATERIALIZED VIEW [IF EXISTS] name [, ...] [CASCADE | RESTRICT]."""
    materialized = stmt.removeType == ObjectType.OBJECT_MATVIEW
    word = "materialized view" if materialized else "view"
    cascade = stmt.behavior == DropBehavior.DROP_CASCADE
    names = []
    for obj in stmt.objects:
        parts = [p.sval for p in obj]
        temp = len(parts) == 2 and parts[0] == "pg_temp"
        names.append((parts[-1] if temp or (len(parts) == 1 and parts[0] in s.temp_views) else object_table(s, parts),
                      temp))
    dropping = {n for n, _ in names}
    wrote = False
    for name, _ in names:
        views = visible(s)
        d = views.get(name)
        if d is None or bool(d.get("materialized")) != materialized:
            if d is not None:
                raise _error(errors.ProgrammingError, f'"{name}" is not a {word}', "42809",
                             hint=f"Use DROP {kind_word(d).upper()} to remove a {kind_word(d)}.")
            if name in s.current_tables() or name in s.temp_tables:
                raise _error(errors.ProgrammingError, f'"{name}" is not a {word}', "42809",
                             hint="Use DROP TABLE to remove a table.")
            if stmt.missing_ok:
                s.notice(f'{word} "{_local(name)}" does not exist, skipping')
                continue
            raise errors.UndefinedTable(f'{word} "{_local(name)}" does not exist')
        if name not in s.temp_views:
            wrote = True
        _drop_dependents(s, views, name, f"{word} {_local(name)}", cascade, dropping, f"{word} {_local(name)}")
        _drop_one(s, name, d)
    if wrote:
        s.finish_write()
    return Result(status=f"DROP {word.upper()}")


def before_drop_tables(s: Session, stmt: ast.DropStmt) -> None:
    """DROP TABLE: a view or materialized view is not a table (42809); views reading a
    dropped table refuse the drop (2BP01) or, under CASCADE, go with it."""
    views = visible(s)
    if not views:
        return
    names = []
    for obj in stmt.objects:
        try:
            names.append(object_table(s, [p.sval for p in obj]))
        except errors.InvalidSchemaName:
            continue
    dropping = set(names)
    for name in names:
        d = views.get(name)
        if d is not None:
            raise _error(errors.ProgrammingError, f'"{_local(name)}" is not a table', "42809",
                         hint=f"Use DROP {kind_word(d).upper()} to remove a {kind_word(d)}.")
    for name in names:
        if name in s.current_tables() or name in s.temp_tables:
            _drop_dependents(s, visible(s), name, f"table {_local(name)}", stmt.behavior == DropBehavior.DROP_CASCADE,
                             dropping, f"table {_local(name)}")


def before_drop_schema(s: Session, stmt: ast.DropStmt) -> None:
    """DROP SCHEMA: the views of the schema, and those reading its tables or views, refuse
    the drop (2BP01) or, under CASCADE, go with it."""
    views = visible(s)
    cascade = stmt.behavior == DropBehavior.DROP_CASCADE
    for node in stmt.objects:
        name = node.sval
        if objects.key(objects.SCHEMA, name) not in s.catalog_objects():
            continue  # not a schema: the drop itself answers
        inside = [v for v in sorted(views) if schema_of(v)[0] == name]
        readers = [v for v, d in sorted(views.items()) if v not in inside
                   and any(schema_of(dep)[0] == name for dep in d.get("depends", ()))]
        if not inside and not readers:
            continue
        if not cascade:
            lines = [f"{kind_word(views[v])} {v} depends on schema {name}" for v in inside]
            lines += [f"{kind_word(views[v])} {_local(v)} depends on a relation of schema {name}" for v in readers]
            raise _error(errors.DatabaseError, f"cannot drop schema {name} because other objects depend on it",
                         "2BP01", "\n".join(lines), "Use DROP ... CASCADE to drop the dependent objects too.")
        dropping: set[str] = set()
        for v in inside + readers:
            if v in dropping:
                continue
            _drop_dependents(s, visible(s), v, f"{kind_word(views[v])} {_local(v)}", True, dropping, v)
            _drop_one(s, v, views[v])
            dropping.add(v)


def _uses_column(s: Session, d: dict, table: str, column: str) -> bool:
    """Whether a view's SELECT names the column (by name: a same-named column of another
    table it reads counts too, so this may refuse more than PostgreSQL, never less)."""
    body = parse(d["query"])[0].stmt
    for node in walk(body):
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String) and node.fields[-1].sval == column:
            return True
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.A_Star):
            return True  # a star left as written reads every column
    return False


def _has_star(d: dict) -> bool:
    return any(isinstance(n, ast.ColumnRef) and isinstance(n.fields[-1], ast.A_Star)
               for n in walk(parse(d["query"])[0].stmt))


def before_alter_table(s: Session, stmt: ast.AlterTableStmt) -> None:
    """ALTER TABLE of a table views read: DROP COLUMN of a column one uses is 2BP01 (CASCADE
    drops the views); ALTER COLUMN TYPE of one is 0A000, as in PostgreSQL. A materialized
    view is not altered as a table (42809)."""
    from pglast.enums import AlterTableType

    views = visible(s)
    if not views or stmt.relation is None:
        return
    try:
        name = table_name(stmt.relation)
    except errors.FeatureNotSupported:
        return
    d = views.get(name)
    if d is not None:
        raise errors.ProgrammingError(f'"{_local(name)}" is not a table', sqlstate="42809")
    readers = [v for v, vd in views.items() if name in vd.get("depends", ())]
    if not readers:
        return
    dropping: set[str] = set()
    for cmd in stmt.cmds or ():
        if cmd.subtype == AlterTableType.AT_DropColumn:
            users = [v for v in readers if _uses_column(s, views[v], name, cmd.name)]
            if not users:
                continue
            cascade = cmd.behavior == DropBehavior.DROP_CASCADE
            lines = [f"{kind_word(views[v])} {_local(v)} depends on column {cmd.name} of table {_local(name)}"
                     for v in users]
            for v in users:
                lines += _describe_dependents(views, v, f"{kind_word(views[v])} {_local(v)}")
            if not cascade:
                raise _error(errors.DatabaseError, f"cannot drop column {cmd.name} of table {_local(name)} because "
                             "other objects depend on it", "2BP01", "\n".join(lines),
                             "Use DROP ... CASCADE to drop the dependent objects too.")
            for v in users:
                if v in dropping:
                    continue
                _drop_dependents(s, visible(s), v, "", True, dropping, f"view {_local(v)}")
                s.notice(f"drop cascades to {kind_word(views[v])} {_local(v)}")
                _drop_one(s, v, views[v])
                dropping.add(v)
        elif cmd.subtype == AlterTableType.AT_AddColumn:
            starred = [v for v in readers if _has_star(views[v])]
            if starred:  # its columns would move under the view's names
                raise errors.FeatureNotSupported(
                    f"cannot add a column to table {_local(name)}: view {_local(starred[0])} reads it with a * "
                    "reeldb could not expand when the view was made (over a subquery, a function or a join "
                    "USING); name the view's columns, or drop it first")
        elif cmd.subtype == AlterTableType.AT_AlterColumnType:
            users = [v for v in readers if _uses_column(s, views[v], name, cmd.name)]
            if users:
                raise _error(errors.FeatureNotSupported, "cannot alter type of a column used by a view or rule",
                             detail=f'rule _RETURN on view {_local(users[0])} depends on column "{cmd.name}"')


def before_rename(s: Session, stmt: ast.RenameStmt) -> bool:
    """ALTER VIEW / ALTER MATERIALIZED VIEW / ALTER TABLE ... RENAME TO of a view: done here
    (True). A table or column that views read keeps its name (0A000): a view stores its
    SELECT as text, so a rename would break it."""
    if stmt.relation is None:
        return False
    views = visible(s)
    try:
        name = table_name(stmt.relation)
    except errors.FeatureNotSupported:
        return False
    d = views.get(name)
    if d is not None:
        if stmt.renameType not in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_TABLE):
            raise errors.FeatureNotSupported(f"renaming a column of view {_local(name)} is not supported")
        _rename_view(s, name, d, stmt.newname)
        return True
    if stmt.renameType in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW) and stmt.relation is not None:
        if name in s.current_tables():
            raise errors.ProgrammingError(f'"{_local(name)}" is not a view', sqlstate="42809")
        if stmt.missing_ok:
            s.notice(f'relation "{_local(name)}" does not exist, skipping')
            return True
        raise errors.UndefinedTable(f'relation "{_local(name)}" does not exist')
    if stmt.renameType not in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN):
        return False  # a constraint's or an index's name: no view reads it
    readers = [v for v, vd in views.items() if name in vd.get("depends", ())
               and (stmt.subname is None or _uses_column(s, vd, name, stmt.subname))]
    if readers:
        what = f"column {stmt.subname} of " if stmt.subname else ""
        raise errors.FeatureNotSupported(
            f"cannot rename {what}table {_local(name)}: {kind_word(views[readers[0]])} {_local(readers[0])} reads it "
            "(reeldb keeps a view's SELECT as text); drop the view, rename, and create it again")
    return False


def _rename_view(s: Session, name: str, d: dict, new: str) -> None:
    space = schema_of(name)[0]
    target = table_key(space, new) if space else new
    if target in visible(s) or target in s.current_tables() or target in s.temp_tables:
        raise errors.DuplicateTable(f'relation "{new}" already exists')
    readers = [v for v, vd in visible(s).items() if name in vd.get("depends", ())]
    if readers:
        raise errors.FeatureNotSupported(
            f"cannot rename view {_local(name)}: view {_local(readers[0])} reads it (reeldb keeps a view's SELECT "
            "as text); drop that view, rename, and create it again")
    if name in s.temp_views:
        s.temp_views[target] = s.temp_views.pop(name)
        return
    txn = s.write_txn()
    txn.set_object(objects.key(objects.VIEW, name), None)
    txn.set_object(objects.key(objects.VIEW, target), d)
    if d.get("materialized"):
        txn.alter_table(name, txn.table(name).schema, new_name=target)
    s.finish_write()


def check_truncate(s: Session, names: list[str]) -> None:
    views = visible(s)
    for name in names:
        d = views.get(name)
        if d is not None:
            raise errors.ProgrammingError(f'"{_local(name)}" is not a table', sqlstate="42809")
