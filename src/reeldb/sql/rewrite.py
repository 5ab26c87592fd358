"""Postgres (+ pgvector) expressions -> what DuckDB runs.

- vector functions and pgvector operators become DuckDB ``array_*`` functions, with the
  non-column side cast to ``FLOAT[n]`` (n taken from the column, the parameter's length or
  the literal's element count);
- ``::vector(n)`` / ``::halfvec(n)`` casts become ``float4[n]``; ``jsonb`` becomes ``json``;
- jsonb's operators, casts and ORDER BY follow PostgreSQL (sql/jsonb.py); other JSON
  ``@>`` / ``<@`` become ``json_contains``;
- ``"branch-or-tag".table`` becomes the relation the session registered for that ref.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType, SQLValueFunctionOp

from .. import errors
from ..engine.engine import (
    CLOCK,
    DIV,
    HAMMING,
    JACCARD,
    L1,
    MOD,
    PG_TYPE_NAME,
    SPARSE_TEXT,
    TO_HALFVEC,
    VECTOR_AGGREGATES,
    VECTOR_ARITHMETIC,
    VECTOR_ARRAY_TEXT,
    VECTOR_TEXT,
    rowid_view_name,
)
from ..format.fragment import ROWID
from ..format.pgvector import check_bit_length, parse_bit_text, parse_sparse_text
from ..format.types import VECTOR_ARRAY_KINDS, parse_vector_text
from . import advisory, allowlist
from .jsonb import JsonbRewrite
from .parse import cast, const_value, func, name_of, transform, walk
from .pgcatalog import CATALOG_NAMES, CatalogRewrite, PgCatalog, format_type, type_oid
from .pgtypes import column_oid, parse_array_literal
from .result_types import kind_of as result_types_kind

# function / operator -> (DuckDB function, negate)
VECTOR_FUNCS = {
    "cosine_similarity": ("array_cosine_similarity", False),
    "cosine_distance": ("array_cosine_distance", False),
    "l2_distance": ("array_distance", False),
    "inner_product": ("array_inner_product", False),
    "negative_inner_product": ("array_inner_product", True),
}
VECTOR_OPS = {"<=>": "cosine_distance", "<->": "l2_distance", "<#>": "negative_inner_product"}
# pgvector's L1 distance: no index metric, so kept apart from the planned top-k's functions
L1_FUNCS, L1_OPS = {"l1_distance": (L1, False)}, {"<+>": "l1_distance"}
VECTOR_TYPES = {"vector", "halfvec", "sparsevec"}
BIT_OPS = {"<~>": HAMMING, "<%>": JACCARD}  # pgvector's binary-vector distances
BIT_TYPES = {"bit", "varbit"}


STAR_MARKER = "__reeldb_star__"
STAR_SQL = re.compile(r'"?' + STAR_MARKER + r'"?')


def finish(sql: str) -> str:
    """Deparsed SQL -> what DuckDB runs: the stars of a statement that names _rowid."""
    return STAR_SQL.sub("* EXCLUDE (_rowid)", sql) if STAR_MARKER in sql else sql


_LIKE_OPERATORS = frozenset({"~~", "!~~", "~~*", "!~~*"})  # LIKE, NOT LIKE, ILIKE, NOT ILIKE

class Rewriter:
    """Rewrites one statement's expressions. ``vector_dims`` maps column names to their
    dimension (None where two tables disagree); ``params`` are the bound values;
    ``resolve_schema(schema, table) -> relation`` handles branch/tag/commit schemas.

    Before rewriting, each tree it is handed as the client wrote it passes the allow-list
    (``allowlist.check``): its functions (DuckDB's file functions with ``file_access``
    only), types and, where ``relations`` are given (with the session's ``temporary``
    tables), the relations it names."""

    def __init__(self, vector_dims: dict[str, int | None], params: list[Any],
                 resolve_schema: Callable[[str, str], str] | None = None,
                 relations: set[str] | None = None, pg: PgCatalog | None = None, *,
                 file_access: bool = False, temporary: set[str] | None = None,
                 clock: tuple[dt.datetime, dt.datetime] | None = None):
        self.file_access = file_access
        # (transaction start, statement start): now() and statement_timestamp() as constants,
        # since each statement is its own DuckDB transaction, whose now() would move
        self.clock = clock
        self._known = None if relations is None else relations | (temporary or set())
        self._depth = 0  # nested calls (rewriting a part) see reeldb's output: checked already
        self.dims = vector_dims
        self.pg = pg
        self.catalog_rewrite = CatalogRewrite(pg, self, params) if pg is not None else None
        self.params = params
        self.resolve_schema = resolve_schema
        self._resolved: set[str] = set()  # the relations of other branches' tables it read
        self.relations = relations or set()
        self.rowid: bool | None = None  # does the statement name the hidden _rowid?
        self._enum_columns: dict[str, Any] | None = None  # enum columns of the bound tables, by name
        self._columns: dict[str, Any] | None = None  # every column of them (_statement_columns)
        self.kinds: dict[str, str | None] = {}  # column name -> halfvec / sparsevec / varbit ... (session sets)
        self._jsonb: JsonbRewrite | None = None  # made on first use, once the session set kinds

    def __call__(self, node: Any) -> Any:
        if self._depth == 0:
            node = self.extension_types(node)
            allowlist.check(node, file_access=self.file_access,
                            relations=None if self._known is None else self._is_relation,
                            user_types=None if self.pg is None else self._is_user_type)
            _check_sequence_calls(node)
            _check_advisory_calls(node)
            self._resolve_ahead(node)
        if self.rowid is None:
            self.rowid = self.names_rowid(node)
        self._depth += 1
        try:
            return transform(node, self._visit)
        finally:
            self._depth -= 1

    def extension_types(self, node: Any) -> Any:
        """citext's and hstore's casts, operators and functions (sql/citext.py,
        sql/hstore.py), where CREATE EXTENSION made the types."""
        if self.pg is None:
            return node
        from .citext import CitextRewrite
        from .extensions import installed
        from .hstore import HstoreRewrite

        have = installed(self.pg.s.catalog_objects())
        if "hstore" in have:
            node = HstoreRewrite(self.kinds, self._param)(node)
        names = {n for n, k in self.kinds.items() if k == "citext"}
        if names or "citext" in have:
            unclear = {n for n, k in self.kinds.items() if k is None}
            ambiguous = {c.name for bt in list(self.pg.s.engine.bound.values()) for c in bt.manifest.schema.columns
                         if c.type.kind == "citext" and c.name in unclear} if unclear else set()
            node = CitextRewrite(names, ambiguous, self._param, "citext" in have)(node)
        return node

    def _is_relation(self, name: str) -> bool:
        assert self._known is not None
        return name in self._known or (self.pg is not None and name in CATALOG_NAMES)

    @staticmethod
    def names_rowid(node: Any) -> bool:
        return any(isinstance(n, ast.ColumnRef) and isinstance(n.fields[-1], ast.String)
                   and n.fields[-1].sval == ROWID for n in walk(node))

    # -- dispatch ----------------------------------------------------------------------------
    def _visit(self, node: ast.Node) -> ast.Node | None:
        if self.catalog_rewrite is not None:
            rep = self.catalog_rewrite.visit(node)
            if rep is not None:
                return rep
        if isinstance(node, ast.A_Expr | ast.SortBy | ast.SelectStmt | ast.SubLink | ast.FuncCall | ast.TypeCast):
            if self._jsonb is None:
                self._jsonb = JsonbRewrite(self.kinds, self._param, self)
            rep = self._jsonb.visit(node)  # jsonb as PostgreSQL (sql/jsonb.py)
            if rep is not None:
                return rep
        if isinstance(node, ast.SQLValueFunction) and self.clock is not None and node.op in _CURRENT_TIMESTAMP:
            return _timestamptz(self.clock[0], node.typmod)
        if isinstance(node, ast.FuncCall):
            name = name_of(node.funcname)
            if name == "clock_timestamp" and not node.args:
                return func(CLOCK)
            if self.clock is not None and not node.args and name in _CLOCK_FUNCS:
                return _timestamptz(self.clock[_CLOCK_FUNCS[name]])
            if name in advisory.FUNCTIONS and self.pg is not None:
                return self.advisory_call(name, node)
            if name == "pg_typeof" and node.args and len(node.args) == 1 and self.pg is not None:
                return self.pg_typeof(node.args[0])
            if name in ("avg", "sum") and node.args and len(node.args) == 1 and not node.agg_star:
                kind = self._vector_kind(node.args[0])
                if kind in ("vector", "halfvec"):
                    return self.vector_aggregate(name, kind, node)
            if name in L1_FUNCS and node.args and len(node.args) == 2:
                return self.vector_call(name, node.args[0], node.args[1])
            if name in VECTOR_FUNCS and node.args and len(node.args) == 2:
                return self.vector_call(name, node.args[0], node.args[1])
            return None
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_IN) \
                and node.name and self._has_enums():
            rep = self.enum_compare(node)
            if rep is not None:
                return rep
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.name:
            op = name_of(node.name)
            if op in VECTOR_OPS and node.lexpr is not None:
                return self.vector_call(VECTOR_OPS[op], node.lexpr, node.rexpr)
            if op in L1_OPS and node.lexpr is not None:
                return self.vector_call(L1_OPS[op], node.lexpr, node.rexpr)
            if op in BIT_OPS and node.lexpr is not None:
                return func(BIT_OPS[op], cast(self(node.lexpr), "bit"), cast(self(node.rexpr), "bit"))
            if op in ("/", "%") and node.lexpr is not None:
                return func(DIV if op == "/" else MOD, self(node.lexpr), self(node.rexpr))
            if op == "#" and node.lexpr is not None:  # bitwise XOR (DuckDB reads "#" as a column position)
                return func("xor", self(node.lexpr), self(node.rexpr))
            if op in ("@>", "<@") and node.lexpr is not None and self._jsonish(node.lexpr, node.rexpr):
                hay, needle = (node.lexpr, node.rexpr) if op == "@>" else (node.rexpr, node.lexpr)
                return func("json_contains", self(hay), self._as_json(self(needle)))
            if op in ("+", "-", "*") and node.lexpr is not None \
                    and (self._is_vector(node.lexpr) or self._is_vector(node.rexpr)):
                return self.vector_arithmetic(op, node)
            if op in _LIKE_OPERATORS and node.lexpr is not None:
                return self.like_default_escape(node, op)
            return None
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE):
            if isinstance(node.rexpr, ast.FuncCall) and name_of(node.rexpr.funcname) == "like_escape":
                return self.like_escape(node)
            return self.like_default_escape(node, name_of(node.name))
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.BitString):  # B'101', X'1F'
            return cast(ast.A_Const(val=ast.String(sval=parse_bit_text(node.val.bsval))), "bit")
        if isinstance(node, ast.RangeVar):
            return self.range_var(node)
        if self.rowid and isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.A_Star):
            # "*" must not show _rowid: deparsed as a marker, then "* EXCLUDE (_rowid)"
            return ast.ColumnRef(fields=(*node.fields[:-1], ast.String(sval=STAR_MARKER)))
        return None

    # -- vectors -----------------------------------------------------------------------------
    def vector_call(self, name: str, a: ast.Node, b: ast.Node) -> ast.Node:
        duck, negate = VECTOR_FUNCS[name] if name in VECTOR_FUNCS else L1_FUNCS[name]
        da, db = self.dim_of(a), self.dim_of(b)
        if da is not None and db is not None and da != db:
            raise errors.DataError(f"different vector dimensions {da} and {db}")
        dim = da or db
        args = [self.vector_arg(a, dim), self.vector_arg(b, dim)]
        if dim is not None:  # pgvector answers in float8, from float4 vectors: so does reeldb
            args = [cast(x, "float8", (dim,)) for x in args]
        call = func(duck, *args)
        if negate:
            return ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="-"),), rexpr=call)
        return call

    def dim_of(self, node: ast.Node) -> int | None:
        if isinstance(node, ast.ColumnRef):
            last = node.fields[-1]
            return self.dims.get(last.sval) if isinstance(last, ast.String) else None
        if isinstance(node, ast.ParamRef):
            v = self._param(node)
            if isinstance(v, str):
                return len(vector_or_sparse(v, "parameter"))
            if isinstance(v, np.ndarray | list | tuple):
                return int(np.asarray(v).size)
            return None
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
            return len(vector_or_sparse(node.val.sval, "literal"))
        if isinstance(node, ast.TypeCast):
            tn = node.typeName
            if name_of(tn.names) in VECTOR_TYPES and tn.typmods:
                return const_value(tn.typmods[0])
            return self.dim_of(node.arg)
        return None

    def vector_arg(self, node: ast.Node, dim: int | None) -> ast.Node:
        if isinstance(node, ast.ColumnRef):
            return node
        if isinstance(node, ast.TypeCast) and name_of(node.typeName.names) in VECTOR_TYPES - {"sparsevec"}:
            node = node.arg
        ok, value = self._known_value(node)
        if ok and isinstance(value, str) and "/" in value and value.lstrip().startswith("{"):  # sparsevec text
            return self.sparse_cast(cast(node, "sparsevec"))
        node = self(node)
        if dim is None:
            return node
        return cast(node, "float4", (dim,))

    def advisory_call(self, name: str, node: ast.FuncCall) -> ast.Node:
        """pg_advisory_lock() & co, answered now (sql/advisory.py): constants or parameters only."""
        assert self.pg is not None
        args = []
        for a in node.args or ():
            while isinstance(a, ast.TypeCast):
                a = a.arg
            if isinstance(a, ast.ParamRef):
                args.append(self._param(a))
            elif isinstance(a, ast.A_Const):
                args.append(const_value(a))
            else:
                raise errors.FeatureNotSupported(f"{name}() takes constants or parameters")
        value = advisory.call(self.pg.s, name, args)
        if value is None:
            if name.startswith(("pg_try", "pg_advisory_unlock")) and name != "pg_advisory_unlock_all":
                return cast(ast.A_Const(isnull=True), "bool")
            return cast(ast.A_Const(isnull=True), "varchar")  # void: shown empty, as psql shows void
        return cast(ast.A_Const(val=ast.Boolean(boolval=value)), "bool")

    def _param(self, node: ast.ParamRef) -> Any:
        i = node.number - 1
        if not 0 <= i < len(self.params):
            raise errors.UndefinedParameter(f"there is no parameter ${node.number}")
        return self.params[i]

    def like_escape(self, node: ast.A_Expr) -> ast.Node:
        """``x LIKE p ESCAPE e``: Postgres parses it as ``x ~~ like_escape(p, e)``; DuckDB
        takes the three in one function."""
        pattern, escape = node.rexpr.args
        name = "ilike_escape" if node.kind == A_Expr_Kind.AEXPR_ILIKE else "like_escape"
        call: ast.Node = func(name, self(node.lexpr), self(pattern), self(escape))
        if name_of(node.name).startswith("!"):
            call = ast.BoolExpr(boolop=BoolExprType.NOT_EXPR, args=(call,))
        return call

    def pg_typeof(self, arg: ast.Node) -> ast.Node:
        """``pg_typeof(x)``: PostgreSQL's name of x's type. A column, constant or cast is
        named from the statement (DuckDB's types cannot tell vector from halfvec, json from
        jsonb); anything else from DuckDB's type at run time (format/typeof.py)."""
        name = self._static_type_name(arg)
        if name is None:
            return func(PG_TYPE_NAME, func("typeof", self(arg)))
        shown = ast.A_Const(val=ast.String(sval=name))
        if isinstance(arg, ast.TypeCast):  # the cast still runs: 'x'::int is an error
            return ast.CaseExpr(args=(ast.CaseWhen(expr=ast.NullTest(arg=self(arg), nulltesttype=NullTestType.IS_NULL),
                                                   result=shown),), defresult=shown)
        return shown

    def _static_type_name(self, arg: ast.Node) -> str | None:
        if isinstance(arg, ast.A_Const):
            if arg.isnull or isinstance(arg.val, ast.String):
                return "unknown"
            if isinstance(arg.val, ast.Integer):
                return "integer"
            if isinstance(arg.val, ast.Boolean):
                return "boolean"
            if isinstance(arg.val, ast.Float):
                text = arg.val.fval
                return "bigint" if text.isdigit() and int(text) < 2**63 else "numeric"
            return None
        if isinstance(arg, ast.TypeCast):
            tn = arg.typeName
            enum = self._enum_type(tn.names) if not tn.arrayBounds else None
            if enum is not None:
                return str(enum.dtype)
            if not tn.arrayBounds and self._domain(tn.names) is not None:
                return name_of(tn.names)
            oid = type_oid(name_of(tn.names) + "[]" * len(tn.arrayBounds or ()))
            return None if oid is None else format_type(oid, -1)
        if isinstance(arg, ast.ColumnRef) and isinstance(arg.fields[-1], ast.String):
            ctype = self._statement_columns().get(arg.fields[-1].sval)
            if ctype is None:
                return None
            if ctype.is_enum:
                return str(ctype.dtype)
            return format_type(column_oid(ctype)[0], -1)
        if self._is_vector(arg):
            return "halfvec" if result_types_kind(arg, self.kinds) == "halfvec" else "vector"
        return None

    def vector_arithmetic(self, op: str, node: ast.A_Expr) -> ast.Node:
        """``a + b``, ``a - b``, ``a * b`` of vectors: pgvector's element-wise arithmetic
        (DuckDB's ``+`` of two arrays would concatenate them)."""
        kinds = {self._vector_kind(node.lexpr), self._vector_kind(node.rexpr)}
        kind = "halfvec" if "halfvec" in kinds else "vector"
        call = func(VECTOR_ARITHMETIC[(op, kind)], cast(self(node.lexpr), "float4", (-1,)),
                    cast(self(node.rexpr), "float4", (-1,)))
        dim = self.dim_of(node.lexpr) or self.dim_of(node.rexpr)
        return cast(call, "float4", (dim,)) if dim else call

    def like_default_escape(self, node: ast.A_Expr, op: str) -> ast.Node:
        """``x LIKE p`` (``~~``, ``~~*``, their negations): Postgres' LIKE escapes with a
        backslash unless told otherwise (``'a\\_%'`` matches a literal underscore); DuckDB's
        LIKE has no escape character, so the backslash is given explicitly."""
        name = "ilike_escape" if "*" in op or node.kind == A_Expr_Kind.AEXPR_ILIKE else "like_escape"
        call: ast.Node = func(name, self(node.lexpr), self(node.rexpr), ast.A_Const(val=ast.String(sval="\\")))
        if op.startswith("!"):
            call = ast.BoolExpr(boolop=BoolExprType.NOT_EXPR, args=(call,))
        return call

    # -- JSON ------------------------------------------------------------------------------------
    def _jsonish(self, left: ast.Node, right: ast.Node) -> bool:
        for n in (left, right):
            if isinstance(n, ast.TypeCast) and name_of(n.typeName.names) in ("json", "jsonb"):
                return True
            if isinstance(n, ast.A_Const) and isinstance(n.val, ast.String) and n.val.sval.lstrip()[:1] in "{[\"":
                return True
            if isinstance(n, ast.ParamRef) and isinstance(self._param(n), dict | list):
                return True
            if isinstance(n, ast.A_Expr) and name_of(n.name) in ("->", "#>"):
                return True
        return False

    @staticmethod
    def _as_json(node: ast.Node) -> ast.Node:
        return cast(node, "json")

    # -- enum types ----------------------------------------------------------------------------
    def _statement_schemas(self) -> list[Any]:
        """The schemas of the tables the statement reads (every bound table's where the
        statement's tables are not known)."""
        if self.pg is None:
            return []
        named = self.pg.s.statement_tables  # not every table bound: m may be text elsewhere
        return [bt.manifest.schema for rel, bt in list(self.pg.s.engine.bound.items())
                if named is None or rel in named or rel in self._resolved]

    def _statement_columns(self) -> dict[str, Any]:
        """Their columns by name -> type (None where two tables have it with different types)."""
        if self._columns is None:
            cols: dict[str, Any] = {}
            for schema in self._statement_schemas():
                for c in schema.columns:
                    cols[c.name] = c.type if cols.get(c.name, c.type) == c.type else None
            self._columns = cols
        return self._columns

    def _has_enums(self) -> bool:
        if self._enum_columns is None:
            cols: dict[str, Any] = {}
            for schema in self._statement_schemas():
                for c in schema.columns:
                    if c.type.is_enum:
                        cols[c.name] = c.type if cols.get(c.name, c.type) == c.type else None
            self._enum_columns = cols
        return bool(self._enum_columns)

    def _is_user_type(self, tn: ast.TypeName) -> bool:
        """A cast to one of the branch's enum types or domains, which ``type_cast``
        rewrites (never an array of one: that would reach DuckDB by its name)."""
        names = tn.names
        return names is not None and not tn.arrayBounds and not tn.typmods \
            and not any(p.sval.lower() in allowlist.TYPES for p in names[-1:]) \
            and (self._enum_type(names) is not None or self._domain(names) is not None)

    def _domain(self, names: tuple) -> tuple[str, dict] | None:
        from .ddl import domain_of

        assert self.pg is not None
        return domain_of(self.pg.s, ast.TypeName(names=names, typemod=-1))

    def _as_domain(self, node: ast.TypeCast, name: str, d: dict) -> ast.Node:
        """``x::domain``: a cast to the domain's base type; NULL into a NOT NULL domain is
        23502, as in Postgres (refused where it cannot be told before running)."""
        from ..format.types import ColumnType
        from .parse import parse

        arg = node.arg
        if d["not_null"]:
            if isinstance(arg, ast.A_Const) and arg.isnull:
                raise errors.NotNullViolation(f"domain {name} does not allow null values")
            if not (isinstance(arg, ast.A_Const) or (isinstance(arg, ast.ParamRef) and self._param(arg) is not None)):
                raise errors.FeatureNotSupported(f"a cast of a computed value to NOT NULL domain {name}")
            if isinstance(arg, ast.ParamRef) and self._param(arg) is None:
                raise errors.NotNullViolation(f"domain {name} does not allow null values")
        base = parse(f"SELECT NULL::{ColumnType.from_json(d['base']).sql()}")[0].stmt.targetList[0].val.typeName
        base.location = None  # reeldb's: the allow-list trusts it
        return self(ast.TypeCast(arg=arg, typeName=base))

    def _enum_type(self, names: tuple) -> Any:
        """The column type of the branch's enum type ``names`` names, or None."""
        from ..format.types import enum_type
        from .objects_ddl import enum_types, type_name

        assert self.pg is not None
        parts = tuple(p for p in names if p.sval != "pg_catalog")
        if not 1 <= len(parts) <= 2 or (len(parts) == 1 and parts[0].sval in allowlist.TYPES):
            return None
        try:
            name = type_name(self.pg.s, parts)
        except errors.InvalidSchemaName:
            return None
        labels = enum_types(self.pg.s).get(name)
        return None if labels is None else enum_type(name, labels)

    def _as_enum(self, node: ast.Node, ctype: Any) -> ast.Node:
        """``node`` as a value of the enum type: a constant is checked here (22P02, as
        Postgres' enum input); anything else is cast by DuckDB, which refuses a bad label."""
        value = self._constant(node)
        if isinstance(value, str) and value not in ctype.labels:
            raise errors.InvalidTextRepresentation(f'invalid input value for enum {ctype.dtype}: "{value}"')
        ctype.duck_enum()  # the wire then sends the result with the type's OID
        return ast.TypeCast(arg=node, typeName=ast.TypeName(
            names=(ast.String(sval="enum"),), typemod=-1,
            typmods=tuple(ast.A_Const(val=ast.String(sval=lab)) for lab in ctype.labels)))

    def _constant(self, node: ast.Node) -> Any:
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
            return node.val.sval
        if isinstance(node, ast.ParamRef):
            return self._param(node)
        return None

    def _enum_column(self, node: ast.Node) -> Any:
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return (self._enum_columns or {}).get(node.fields[-1].sval)
        return None

    def enum_compare(self, node: ast.A_Expr) -> ast.Node | None:
        """An enum column compared with text (``m < 'ok'``, ``m IN ('a', 'b')``): the text
        becomes a value of the enum, so that a bad label is 22P02 and order is the type's
        declaration order, as in Postgres."""
        op = name_of(node.name)
        if node.kind == A_Expr_Kind.AEXPR_IN:
            ctype = self._enum_column(node.lexpr)
            if ctype is None or not isinstance(node.rexpr, list | tuple):
                return None
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=node.lexpr,
                              rexpr=tuple(self._as_enum(self(x), ctype) for x in node.rexpr))
        if op not in ("=", "<>", "!=", "<", ">", "<=", ">=") or node.lexpr is None:
            return None
        left, right = self._enum_column(node.lexpr), self._enum_column(node.rexpr)
        if (left is None) == (right is None):
            return None
        if left is not None:
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=node.lexpr, rexpr=self._as_enum(self(node.rexpr), left))
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self._as_enum(self(node.lexpr), right), rexpr=node.rexpr)

    # -- casts and relations -----------------------------------------------------------------
    def type_cast(self, node: ast.TypeCast) -> ast.Node | None:
        tn = node.typeName
        t = name_of(tn.names)
        if self.pg is not None and not tn.typmods and not tn.arrayBounds:
            ctype = self._enum_type(tn.names)
            if ctype is not None:
                return self._as_enum(self(node.arg), ctype)
            domain = self._domain(tn.names)
            if domain is not None:
                return self._as_domain(node, *domain)
        if t in VECTOR_TYPES and tn.arrayBounds:
            return self.vector_array_cast(node, t)
        if t == "sparsevec" and not tn.arrayBounds:
            return self.sparse_cast(node)
        if t in BIT_TYPES and not tn.arrayBounds:
            return self.bit_cast(node, t)
        if t in VECTOR_TYPES:
            dim = const_value(tn.typmods[0]) if tn.typmods else self.dim_of(node.arg)
            ok, value = self._known_value(node.arg)
            if ok and isinstance(value, str) and tn.typmods:  # text of the wrong size: pgvector's error
                got = len(parse_vector_text(value, t))
                if got != dim:
                    raise errors.DataError(f"expected {dim} dimensions, not {got}")
            arg = self(node.arg)
            if t == "halfvec" and self._vector_kind(node.arg) != "halfvec":  # float2 elements, as pgvector's
                arg = func(TO_HALFVEC, cast(arg, "float4", (-1,)))
            return cast(arg, "float4", (dim,)) if dim else cast(arg, "float4", (-1,))
        array_kind = self._vector_kind(node.arg, arrays=True)
        if t in ("text", "varchar") and not tn.arrayBounds and array_kind in VECTOR_ARRAY_KINDS:
            return func(VECTOR_ARRAY_TEXT[array_kind == "sparsevec_array"], cast(self(node.arg), "float4", (-1, -1)))
        if t in ("text", "varchar") and not tn.arrayBounds and self._is_sparse(node.arg):
            return func(SPARSE_TEXT, self(node.arg))  # {1:1.5,3:2}/5
        if t in ("text", "varchar") and not tn.arrayBounds and self._is_vector(node.arg):
            return func(VECTOR_TEXT, self(node.arg))  # pgvector's [1.5,2,3], not DuckDB's list text
        if tn.arrayBounds and isinstance(node.arg, ast.A_Const) and isinstance(node.arg.val, ast.String):
            return self.array_literal(node)
        if t == "bytea" and isinstance(node.arg, ast.A_Const) and isinstance(node.arg.val, ast.String) \
                and node.arg.val.sval.startswith("\\x"):  # Postgres' hex format
            return func("from_hex", ast.A_Const(val=ast.String(sval=node.arg.val.sval[2:])))
        if t in ("numeric", "decimal") and not tn.typmods and not tn.arrayBounds:
            return self.numeric_cast(node)
        if t in ("json", "jsonb"):  # one JSON type in DuckDB; and pglast writes json as pg_catalog.json
            return ast.TypeCast(arg=self(node.arg), typeName=ast.TypeName(
                names=(ast.String(sval="json"),), typemod=-1, arrayBounds=tn.arrayBounds))
        return None

    def numeric_cast(self, node: ast.TypeCast) -> ast.Node:
        """``::numeric`` with no precision. DuckDB reads it as DECIMAL(18,3), which rounded
        '3.14159'::numeric to 3.142. A constant (or parameter) keeps exactly its own digits, as
        PostgreSQL's numeric does; more than 38 of them, or NaN and Infinity, are refused
        (0A000) rather than rounded. Anything else becomes reeldb's unconstrained NUMERIC,
        DECIMAL(38,10), the type a NUMERIC column stores."""
        precision, scale = 38, 10
        ok, value = self._known_value(node.arg)
        if ok and value is not None and not isinstance(value, bool):
            text = repr(value) if isinstance(value, float) else str(value).strip()
            try:
                number = decimal.Decimal(text)
            except decimal.InvalidOperation:  # not a number: DuckDB's cast refuses it (22P02)
                number = None
            if number is not None:
                if not number.is_finite():
                    raise errors.FeatureNotSupported(
                        f'numeric value "{text}" is not supported: reeldb\'s numeric has no NaN or Infinity')
                _, digits, exp = number.as_tuple()
                assert isinstance(exp, int)
                scale = max(0, -exp)
                precision = max(len(digits) + max(exp, 0), scale, 1)
                if precision > 38:
                    raise errors.FeatureNotSupported(
                        f"numeric value of {precision} digits is not supported: reeldb's numeric holds 38")
        return ast.TypeCast(arg=self(node.arg), typeName=ast.TypeName(
            names=(ast.String(sval="decimal"),), typemod=-1,
            typmods=(ast.A_Const(val=ast.Integer(ival=precision)), ast.A_Const(val=ast.Integer(ival=scale)))))

    def _known_value(self, node: ast.Node) -> tuple[bool, Any]:
        """(True, value) for a constant or a parameter; (False, None) for anything else."""
        if isinstance(node, ast.A_Const):
            return True, const_value(node)
        if isinstance(node, ast.ParamRef):
            return True, self._param(node)
        return False, None

    def sparse_cast(self, node: ast.TypeCast) -> ast.Node:
        """``::sparsevec(n)``: text (a literal or parameter) is parsed here into the dense row
        reeldb computes with; a vector becomes the sparse vector of its nonzero elements."""
        tn = node.typeName
        want = const_value(tn.typmods[0]) if tn.typmods else None
        ok, value = self._known_value(node.arg)
        if ok and isinstance(value, str):
            dense = parse_sparse_text(value, "value")
        elif ok and isinstance(value, np.ndarray | list | tuple):
            dense = np.asarray(value, dtype=np.float32).reshape(-1)
        elif ok and value is None:
            return cast(ast.A_Const(isnull=True), "float4", (want or -1,))
        else:
            dim = want or self.dim_of(node.arg)
            return cast(self(node.arg), "float4", (dim if dim else -1,))
        if want is not None and len(dense) != want:
            raise errors.DataError(f"expected {want} dimensions, not {len(dense)}")
        items = tuple(ast.A_Const(val=ast.Float(fval=repr(float(x)))) for x in dense)
        return cast(ast.A_ArrayExpr(elements=items), "float4", (len(dense),))

    def vector_array_cast(self, node: ast.TypeCast, t: str) -> ast.Node:
        """``::vector[]`` (and halfvec[], sparsevec[]): one dimension of vectors, as a DuckDB
        list of float4 lists. Text (``{"[1,2]","[3,4]"}``, or each element of ARRAY[...]) is
        read here, element by element, as the element type reads it."""
        tn = node.typeName
        if len(tn.arrayBounds) != 1:
            raise errors.FeatureNotSupported(f"arrays of {t} of more than one dimension are not supported")
        ok, value = self._known_value(node.arg)
        if ok and value is None:
            return cast(ast.A_Const(isnull=True), "float4", (-1, -1))
        if ok and isinstance(value, str):
            from ..format.pgvector import split_array_text

            elements: list[ast.Node] = [ast.A_Const(isnull=True) if x is None else ast.A_Const(val=ast.String(sval=x))
                                        for x in split_array_text(value, "value")]
        elif isinstance(node.arg, ast.A_ArrayExpr):
            elements = list(node.arg.elements or ())
        else:
            return cast(self(node.arg), "float4", (-1, -1))
        element_type = ast.TypeName(names=(ast.String(sval=t),), typemod=-1,
                                    typmods=tn.typmods)
        items = tuple(cast(self(ast.TypeCast(arg=e, typeName=element_type)), "float4", (-1,)) for e in elements)
        return cast(ast.A_ArrayExpr(elements=items or None), "float4", (-1, -1))

    def bit_cast(self, node: ast.TypeCast, t: str) -> ast.Node:
        """``::bit(n)`` / ``::varbit(n)`` of text: checked as Postgres' bit input checks it."""
        tn = node.typeName
        length = const_value(tn.typmods[0]) if tn.typmods else None
        ok, value = self._known_value(node.arg)
        if ok and value is None:
            return cast(ast.A_Const(isnull=True), "bit")
        literal_bits = isinstance(node.arg, ast.A_Const) and isinstance(node.arg.val, ast.BitString)
        if ok and isinstance(value, str) and not literal_bits:  # text input: exactly n bits (a B'' value is cut)
            bits = check_bit_length(parse_bit_text(value), length if length is not None or t == "varbit" else 1,
                                    t == "varbit", "value")
            return cast(ast.A_Const(val=ast.String(sval=bits)), "bit")
        arg = cast(self(node.arg), "bit")
        if length is None:
            return arg
        # an explicit cast of a bit string to bit(n) cuts it to n bits and, for bit(n), pads it with
        # zeros on the right, as Postgres' bit() / varbit() length coercion does
        text = func("substr", cast(arg, "varchar"), _int_const(1), _int_const(length))
        if t == "bit":
            text = func("rpad", text, _int_const(length), ast.A_Const(val=ast.String(sval="0")))
        return cast(text, "bit")

    def _vector_kind(self, node: ast.Node, arrays: bool = False) -> str | None:
        if isinstance(node, ast.TypeCast):
            bounds = len(node.typeName.arrayBounds or ())
            if bounds == 0:
                return name_of(node.typeName.names)
            return name_of(node.typeName.names) + "_array" if arrays and bounds == 1 else None
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return self.kinds.get(node.fields[-1].sval)
        return None

    def vector_aggregate(self, name: str, kind: str, node: ast.FuncCall) -> ast.Node:
        """avg(vector) / sum(vector) (and halfvec): pgvector's aggregates, computed over the
        list of the group's values (its FILTER and DISTINCT kept)."""
        if node.over is not None or node.agg_order is not None:
            raise errors.FeatureNotSupported(f"{name}({kind}) as a window function or with ORDER BY is not supported")
        gathered = ast.FuncCall(funcname=(ast.String(sval="list"),), args=(self(node.args[0]),),
                                agg_filter=self(node.agg_filter) if node.agg_filter is not None else None,
                                agg_distinct=node.agg_distinct)
        call = func(VECTOR_AGGREGATES[(name, kind)], gathered)
        dim = self.dim_of(node.args[0])
        return cast(call, "float4", (dim,)) if dim else call

    def _is_sparse(self, node: ast.Node) -> bool:
        if isinstance(node, ast.TypeCast):
            return name_of(node.typeName.names) == "sparsevec"
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return self.kinds.get(node.fields[-1].sval) == "sparsevec"
        return False

    def _is_vector(self, node: ast.Node) -> bool:
        """A vector or halfvec cast, or a column only bound tables' vector columns have."""
        if isinstance(node, ast.TypeCast):
            return name_of(node.typeName.names) in VECTOR_TYPES
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            name = node.fields[-1].sval
            return self.kinds.get(name) in ("vector", "halfvec") if name in self.kinds else name in self.dims
        if isinstance(node, ast.FuncCall) and name_of(node.funcname) in ("avg", "sum") \
                and node.args and len(node.args) == 1:  # pgvector's aggregates give a vector
            return self._is_vector(node.args[0])
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.lexpr is not None \
                and name_of(node.name) in ("+", "-", "*"):  # pgvector's arithmetic gives a vector
            return self._is_vector(node.lexpr) or self._is_vector(node.rexpr)
        return False

    def array_literal(self, node: ast.TypeCast) -> ast.Node:
        """``'{a,b}'::text[]``: Postgres' array text becomes an ARRAY[...] DuckDB can cast."""
        try:
            items = parse_array_literal(node.arg.val.sval)
        except ValueError as e:
            raise errors.InvalidTextRepresentation(str(e)) from None

        def build(x: Any) -> ast.Node:
            if isinstance(x, list):
                return ast.A_ArrayExpr(elements=tuple(build(y) for y in x) or None)
            return ast.A_Const(isnull=True) if x is None else ast.A_Const(val=ast.String(sval=x))

        depth, x = 1, items
        while x and isinstance(x[0], list):  # int[] in Postgres is any number of dimensions
            depth, x = depth + 1, x[0]
        tn = node.typeName
        tn.arrayBounds = tuple(ast.Integer(ival=-1) for _ in range(max(depth, len(tn.arrayBounds))))
        return ast.TypeCast(arg=build(items), typeName=tn)

    def _resolve_ahead(self, node: ast.Node) -> None:
        """Resolve the other branches' tables a statement reads before any expression of it
        is rewritten: which columns are enums (``_has_enums``) depends on them."""
        if self.pg is None or self.resolve_schema is None:
            return
        for rv in walk(node):
            if isinstance(rv, ast.RangeVar) and rv.schemaname not in (None, "public") \
                    and rv.catalogname is None and self.pg.relation(rv.schemaname, rv.relname) is None:
                self._resolved.add(self.resolve_schema(rv.schemaname, rv.relname))

    def range_var(self, node: ast.RangeVar) -> ast.Node | None:
        schema = node.schemaname
        if node.catalogname is not None:  # only the connection's database, as in Postgres
            if self.pg is None or node.catalogname != self.pg.s.database:
                raise errors.FeatureNotSupported(f'cross-database references are not implemented: '
                                                 f'"{node.catalogname}.{schema}.{node.relname}"')
            node.catalogname = None
        if self.pg is not None:
            rel = self.pg.relation(schema, node.relname)
            if rel is not None:
                if node.alias is None:
                    node.alias = ast.Alias(aliasname=node.relname)
                node.schemaname, node.catalogname, node.relname = None, None, rel
                return node
        ours = node.relname in self.relations
        if schema not in (None, "public"):
            if self.resolve_schema is None:
                raise errors.InvalidSchemaName(f'schema "{schema}" does not exist')
            rel = self.resolve_schema(schema, node.relname)
            self._resolved.add(rel)
            if node.alias is None:
                node.alias = ast.Alias(aliasname=node.relname)
            node.catalogname = None
            node.relname = rel
            ours = True
        node.schemaname = None
        if self.rowid and ours:
            if node.alias is None:
                node.alias = ast.Alias(aliasname=node.relname)
            node.relname = rowid_view_name(node.relname)
        return node


def _int_const(n: int) -> ast.A_Const:
    return ast.A_Const(val=ast.Integer(ival=n))


def vector_or_sparse(text: str, what: str) -> np.ndarray | list[float]:
    """A vector's text ``[1,2]`` or a sparse vector's ``{1:1}/2``."""
    if "/" in text and text.lstrip().startswith("{"):
        return parse_sparse_text(text, what)
    return parse_vector_text(text, what)


def adapt_param(v: Any) -> Any:
    """A Python parameter value -> what DuckDB binds."""
    import datetime as dt
    import decimal
    import json
    import uuid

    if v is None or isinstance(v, bool | int | float | str | bytes | decimal.Decimal | dt.date | dt.time
                               | dt.timedelta | uuid.UUID):
        return v
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return json.dumps(v)
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    if hasattr(v, "_blob_ref"):
        return bytes(v)
    if isinstance(v, list | tuple):
        if any(isinstance(x, dict | list) for x in v):
            return json.dumps(v)
        return [adapt_param(x) for x in v]
    return v


# now() and its synonyms: the transaction's start (0) or the statement's (1) in Session.clock
_CLOCK_FUNCS = {"now": 0, "transaction_timestamp": 0, "statement_timestamp": 1}
_CURRENT_TIMESTAMP = (SQLValueFunctionOp.SVFOP_CURRENT_TIMESTAMP, SQLValueFunctionOp.SVFOP_CURRENT_TIMESTAMP_N)


def _timestamptz(at: dt.datetime, precision: int = -1) -> ast.Node:
    """A point in time as a timestamptz constant; CURRENT_TIMESTAMP(p) rounds to p digits."""
    if 0 <= precision < 6:
        step = 10 ** (6 - precision)
        micros = round(at.microsecond / step) * step
        at = at.replace(microsecond=0) + dt.timedelta(microseconds=micros)
    return cast(ast.A_Const(val=ast.String(sval=at.isoformat())), "timestamptz")


_SEQUENCE_FUNCTIONS = frozenset({"nextval", "currval", "setval", "lastval"})


def _check_sequence_calls(tree: Any) -> None:
    """Two sequence calls in a statement over many rows are refused: DuckDB evaluates each
    expression for a chunk of rows before the next one, so ``SELECT nextval('s'),
    currval('s') FROM t`` would not pair values row by row as Postgres does."""
    calls = 0
    rows = False
    for n in walk(tree):
        if isinstance(n, ast.FuncCall) and n.funcname[-1].sval.lower() in _SEQUENCE_FUNCTIONS:
            calls += 1
        elif isinstance(n, ast.SelectStmt) and n.fromClause or isinstance(n, ast.RangeFunction):
            rows = True
    if calls > 1 and rows:
        raise errors.FeatureNotSupported(
            "more than one sequence function in a statement over several rows is not supported: their values "
            "would not be paired row by row as in Postgres; draw them in separate statements")


def _check_advisory_calls(tree: Any) -> None:
    """Advisory lock functions are answered once, when the statement is rewritten: only as a
    select-list item of a SELECT with no FROM, WHERE or other clause does that take each lock
    exactly as often as Postgres would. Anywhere else (``FROM generate_series(1, 3)``, ``WHERE
    false``, inside CASE) it would not, so it is refused."""
    calls = [n for n in walk(tree) if isinstance(n, ast.FuncCall) and name_of(n.funcname) in advisory.FUNCTIONS]
    if not calls:
        return
    plain = isinstance(tree, ast.SelectStmt) and not (
        tree.fromClause or tree.whereClause or tree.havingClause or tree.groupClause or tree.limitCount
        or tree.limitOffset or tree.withClause or tree.valuesLists or tree.distinctClause or tree.op)
    tops = {id(rt.val) for rt in tree.targetList or ()} if plain else set()
    for call in calls:
        if id(call) not in tops:
            raise errors.FeatureNotSupported(
                f"{name_of(call.funcname)}() is supported only as an item of a SELECT list with no FROM, "
                "WHERE or other clause: reeldb takes the lock once, when the statement is planned")


_SYSTEM_SCHEMAS = frozenset({"public", "pg_catalog", "information_schema", "pg_temp", "pg_toast"})
# statements whose ``relation`` is a target named as written (no alias to keep)
_TARGETS = (ast.InsertStmt, ast.CreateStmt, ast.IndexStmt, ast.CopyStmt, ast.AlterTableStmt, ast.RenameStmt)


def resolve_namespaces(stmt: ast.Node, schemas: Callable[[], set[str] | dict]) -> None:
    """``schema.table`` where ``schema`` is a namespace of the connection's branch (made
    by CREATE SCHEMA, sql/namespaces.py) becomes the branch's table ``"schema.table"``,
    aliased ``table`` so that ``table.column`` still binds; a schema that is not one is
    left for the branch/tag/commit resolution. ``schemas`` is asked only when a statement
    qualifies a table with a schema that is not a system one."""
    known: set[str] | dict | None = None
    targets = {id(getattr(stmt, "relation", None))} if isinstance(stmt, _TARGETS) else set()
    for node in walk(stmt):
        if not isinstance(node, ast.RangeVar) or node.catalogname is not None:
            continue
        schema = node.schemaname
        if schema is None or schema in _SYSTEM_SCHEMAS:
            continue
        if known is None:
            known = schemas()
        if schema in known:
            if node.alias is None and id(node) not in targets:
                node.alias = ast.Alias(aliasname=node.relname)
            node.schemaname, node.relname = None, f"{schema}.{node.relname}"
