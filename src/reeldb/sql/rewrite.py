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

import copy
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
    ARRAY_TEXT,
    CLOCK,
    DIV,
    HAMMING,
    JACCARD,
    L1,
    MOD,
    NOT_SUPPORTED_AT_RUN,
    PG_TYPE_NAME,
    SPARSE_TEXT,
    TO_HALFVEC,
    VECTOR_AGGREGATES,
    VECTOR_ARITHMETIC,
    VECTOR_ARRAY_TEXT,
    VECTOR_TEXT,
    rowid_view_name,
)
from ..format.arrays import ARRAY_KINDS, ELEMENT_KINDS, parse_array_literal
from ..format.fragment import ROWID
from ..format.pgvector import check_bit_length, parse_bit_text, parse_sparse_text
from ..format.types import VECTOR_ARRAY_KINDS, column_type, parse_vector_text
from ..types import column_oid
from ..types.params import TypedParameter
from . import advisory, allowlist, blob_guard
from .jsonb import JsonbRewrite
from .names import SYSTEM_SCHEMAS, type_name
from .parse import cast, const_value, func, name_of, transform, walk
from .pgcatalog import CATALOG_NAMES, CatalogRewrite, PgCatalog, format_type, is_regtype, type_oid
from .result_types import kind_of as result_types_kind
from .rowid_star import STAR_MARKER
from .user_types import (
    anonymous_row,
    composite_of,
    domain_of,
    enum_types,
    note_select_list,
    rewrite_cast,
    static_type_name,
    typed_parameter,
)

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
        self._plain_stars: set[int] = set()  # stars over FROM items with no hidden _rowid (subqueries)
        self._enum_columns: dict[str, Any] | None = None  # enum columns of the bound tables, by name
        self._columns: dict[str, Any] | None = None  # every column of them (_statement_columns)
        self.kinds: dict[str, str | None] = {}  # column name -> halfvec / sparsevec / varbit ... (session sets)
        # output names of a statement's subqueries and CTEs that are arrays of a scalar type
        # (SELECT a AS y ...) -> their element kind
        self._array_aliases: dict[str, str | None] = {}
        self._jsonb: JsonbRewrite | None = None  # made on first use, once the session set kinds
        self._typeof_names: set[int] = set()  # pg_typeof calls a select list shows by name (regtype_outputs)

    def __call__(self, node: Any) -> Any:
        if self._depth == 0:
            node = self.extension_types(node)
            allowlist.check(node, file_access=self.file_access,
                            relations=None if self._known is None else self._is_relation,
                            user_types=None if self.pg is None else self._is_user_type)
            _check_sequence_calls(node)
            _check_advisory_calls(node)
            blob_guard.check(node, self.kinds)
            self._resolve_ahead(node)
        if self.rowid is None:
            self.rowid = self.names_rowid(node)
        if self._depth == 0:
            self._array_aliases = self._array_outputs(node)
            self.regtype_outputs(node)
        self._depth += 1
        try:
            return transform(node, self._visit)
        finally:
            self._depth -= 1

    def extension_types(self, node: Any) -> Any:
        """citext's and hstore's casts, operators and functions (sql/citext.py,
        sql/hstore.py), where CREATE EXTENSION made the types; the range types' (sql/ranges.py)."""
        from .ranges import RangeRewrite

        node = RangeRewrite(self.kinds, self._param)(node)
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
        if self.pg is not None and not hasattr(self, "_record_text_casts"):  # the statement: record::text items
            note_select_list(self, node)
        if isinstance(node, ast.RowExpr) and self.pg is not None:  # untyped literals in a row (sql/user_types.py)
            rep = anonymous_row(self, node)
            if rep is not None:
                return rep
        if isinstance(node, ast.ParamRef) and self.pg is not None:  # typed as an enum or composite type
            rep = typed_parameter(self, node)
            if rep is not None:
                return rep
        # an enum column compared with text first: the jsonb guard would compare them as text
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_IN) \
                and node.name and self._has_enums():
            rep = self.enum_compare(node)
            if rep is not None:
                return rep
        if isinstance(node, ast.A_Expr | ast.SortBy | ast.SelectStmt | ast.SubLink | ast.FuncCall | ast.TypeCast
                      | ast.CoalesceExpr | ast.CaseExpr | ast.MinMaxExpr):
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
            if name in _NUMERIC_EDGES and not node.agg_star and node.over is None:
                rep = self.numeric_edge(name, node)
                if rep is not None:
                    return rep
            if name == "pg_typeof" and node.args and len(node.args) == 1 and self.pg is not None:
                return self.pg_typeof(node.args[0], named=id(node) in self._typeof_names)
            if name in ("avg", "sum") and node.args and len(node.args) == 1 and not node.agg_star:
                kind = self._vector_kind(node.args[0])
                if kind in ("vector", "halfvec"):
                    return self.vector_aggregate(name, kind, node)
            if name == "array_agg" and node.args and len(node.args) == 1 and not node.agg_star \
                    and self._array_element(node.args[0]) is not None:
                return self.array_agg_of_arrays(node)
            if name in L1_FUNCS and node.args and len(node.args) == 2:
                return self.vector_call(name, node.args[0], node.args[1])
            if name in VECTOR_FUNCS and node.args and len(node.args) == 2:
                return self.vector_call(name, node.args[0], node.args[1])
            return None
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
            if op in ("#>", "#>>") and node.lexpr is not None:  # json path: DuckDB's JSON pointer
                return self.json_path(op, node.lexpr, node.rexpr)
            if op == "#" and node.lexpr is not None:  # bitwise XOR (DuckDB reads "#" as a column position)
                return func("xor", self(node.lexpr), self(node.rexpr))
            if op in ("@>", "<@") and node.lexpr is not None and self._jsonish(node.lexpr, node.rexpr) \
                    and not self._arrayish(node.lexpr, node.rexpr):
                hay, needle = (node.lexpr, node.rexpr) if op == "@>" else (node.rexpr, node.lexpr)
                return func("json_contains", self(hay), self._as_json(self(needle)))
            if op in ("+", "-", "*") and node.lexpr is not None \
                    and (self._is_vector(node.lexpr) or self._is_vector(node.rexpr)):
                return self.vector_arithmetic(op, node)
            if op in _LIKE_OPERATORS and node.lexpr is not None:
                return self.like_default_escape(node, op)
            if op in ("@>", "<@") and node.lexpr is not None:
                hay, needle = (node.lexpr, node.rexpr) if op == "@>" else (node.rexpr, node.lexpr)
                return self.array_contains(hay, needle)
            if op in _ARRAY_LITERAL_OPS and node.lexpr is not None:
                return self.array_operands(node)
            return None
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL):
            return self.any_all(node)
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT):
            return self.array_operands(node)
        if isinstance(node, ast.A_Indirection) and any(isinstance(i, ast.A_Indices) for i in node.indirection) \
                and not self._is_json(node.arg) and not self._is_hstore(node.arg):  # jsonb's count from 0
            return self.subscript(node)
        if isinstance(node, ast.A_Expr) and node.kind in (A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE):
            if isinstance(node.rexpr, ast.FuncCall) and name_of(node.rexpr.funcname) == "like_escape":
                return self.like_escape(node)
            return self.like_default_escape(node, name_of(node.name))
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        if self.rowid and isinstance(node, ast.SelectStmt) and node.targetList:
            self._plain_stars.update(_plain_stars(node))
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            raise errors.FeatureNotSupported(
                "SELECT ... FOR UPDATE / FOR SHARE is not supported: reeldb takes no row locks (its transactions "
                "are snapshot isolation; a conflicting write fails at commit with 40001)")
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.BitString):  # B'101', X'1F'
            return cast(ast.A_Const(val=ast.String(sval=parse_bit_text(node.val.bsval))), "bit")
        if isinstance(node, ast.RangeVar):
            return self.range_var(node)
        if self.rowid and isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.A_Star) \
                and id(node) not in self._plain_stars:
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

    def regtype_outputs(self, node: Any) -> None:
        """The select list's regtype items (``pg_typeof(x)``, ``x::regtype``) show the type's
        name, as PostgreSQL's regtype output does, and so do those of the subqueries in FROM,
        CTEs and views a query reads (their columns are what it shows); anywhere else (a
        WHERE, a subquery compared with IN) a regtype is its OID."""
        self._typeof_names = set()
        if self.pg is None:
            return
        stack = [node]
        while stack:
            stmt = stack.pop()
            if isinstance(stmt, ast.JoinExpr):
                stack.extend((stmt.larg, stmt.rarg))
            elif isinstance(stmt, ast.RangeSubselect):
                stack.append(stmt.subquery)
            if not isinstance(stmt, ast.SelectStmt):
                continue
            stack.extend((stmt.larg, stmt.rarg, *(stmt.fromClause or ())))
            if stmt.withClause is not None:
                stack.extend(cte.ctequery for cte in stmt.withClause.ctes or ())
            for rt in stmt.targetList or ():
                if not isinstance(rt, ast.ResTarget) or not is_regtype(rt.val):
                    continue
                if isinstance(rt.val, ast.FuncCall) and name_of(rt.val.funcname) == "pg_typeof":
                    self._typeof_names.add(id(rt.val))
                else:
                    if rt.name is None:
                        rt.name = "regtype" if isinstance(rt.val, ast.TypeCast) else name_of(rt.val.funcname)
                    rt.val = func("format_type", rt.val, ast.A_Const(isnull=True))

    def pg_typeof(self, arg: ast.Node, named: bool) -> ast.Node:
        """``pg_typeof(x)``: x's type, as its OID (a regtype), or its name where the select
        list shows it (``named``). A column, constant or cast is named from the statement
        (DuckDB's types cannot tell vector from halfvec, json from jsonb); anything else from
        DuckDB's type at run time (types/duck.py)."""
        name = self._static_type_name(arg)
        if name is None:
            shown_at_run_time = func(PG_TYPE_NAME, func("typeof", self(arg)))
            return shown_at_run_time if named else _type_name_oid(shown_at_run_time)
        if named:
            shown = ast.A_Const(val=ast.String(sval=name))
        else:
            assert self.catalog_rewrite is not None
            oid = self.catalog_rewrite.regtype_oid(name)
            if oid is None:
                raise errors.FeatureNotSupported(f'pg_typeof() of a value of type "{name}" as a regtype is not '
                                                 "supported: reeldb has no OID for it")
            shown = ast.A_Const(val=ast.Integer(ival=oid))
        if isinstance(arg, ast.TypeCast):  # the cast still runs: 'x'::int is an error
            return ast.CaseExpr(args=(ast.CaseWhen(expr=ast.NullTest(arg=self(arg), nulltesttype=NullTestType.IS_NULL),
                                                   result=shown),), defresult=shown)
        return shown

    def _static_type_name(self, arg: ast.Node) -> str | None:
        if isinstance(arg, ast.ParamRef) and hasattr(self._param(arg), "pg_oid"):  # declared (types/params.py)
            return format_type(self._param(arg).pg_oid, -1)
        if is_regtype(arg):
            return "regtype"
        user = static_type_name(self, arg) if self.pg is not None else None  # sql/user_types.py
        if user is not None:
            return user
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
            if isinstance(n, ast.ColumnRef) and isinstance(n.fields[-1], ast.String) \
                    and self.kinds.get(n.fields[-1].sval) in ("json", "jsonb"):
                return True
        return False

    def _is_hstore(self, node: ast.Node) -> bool:
        """An hstore column or cast: ``h['key']`` is a lookup, not an array subscript."""
        if isinstance(node, ast.TypeCast):
            return name_of(node.typeName.names) == "hstore" and not node.typeName.arrayBounds
        return isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String) \
            and self.kinds.get(node.fields[-1].sval) == "hstore"

    def _is_json(self, node: ast.Node) -> bool:
        """A json / jsonb cast, column or -> / #> expression."""
        if isinstance(node, ast.TypeCast):
            return name_of(node.typeName.names) in ("json", "jsonb") and not node.typeName.arrayBounds
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            return self.kinds.get(node.fields[-1].sval) in ("json", "jsonb")
        return isinstance(node, ast.A_Expr) and name_of(node.name) in ("->", "#>")
    def json_path(self, op: str, target: ast.Node, path: ast.Node) -> ast.Node:
        """``j #> '{a,0}'`` / ``j #>> ...``: DuckDB's json_extract(_string) with the path as
        a JSON pointer (``/a/0``: a key of an object, an index of an array, as in Postgres).
        The path must be a constant or a parameter; a NULL element gives NULL; a negative
        index (from the end in Postgres, a key in a pointer) is refused."""
        while isinstance(path, ast.TypeCast) and name_of(path.typeName.names) in ("text", "varchar"):
            path = path.arg
        if isinstance(path, ast.ParamRef):
            value = self._param(path)
        elif isinstance(path, ast.A_Const):
            value = None if path.isnull else const_value(path)
        else:
            raise errors.FeatureNotSupported(f"{op} with a path that is not a constant or a parameter is not "
                                             "supported")
        if isinstance(value, str):
            try:
                value = parse_array_literal(value)
            except ValueError:
                raise errors.InvalidTextRepresentation(f'malformed array literal: "{value}"') from None
        if value is not None and not isinstance(value, list | tuple):
            raise errors.FeatureNotSupported(f"{op} takes a text[] path")
        if value is None or any(e is None for e in value):
            return cast(ast.A_Const(isnull=True), "json" if op == "#>" else "varchar")
        if any(isinstance(e, list | tuple) for e in value):
            raise errors.FeatureNotSupported(f"{op} with a path of more than one dimension is not supported")
        elements = [str(e) for e in value]
        for e in elements:
            if re.fullmatch(r"\s*[+-]?\d+\s*", e) and not re.fullmatch(r"0|[1-9]\d*", e):
                raise errors.FeatureNotSupported(f'{op} path element "{e}" is not supported: reeldb reads array '
                                                 "indexes written as 0, 1, 2, ...")
        pointer = ast.A_Const(val=ast.String(sval="".join("/" + e.replace("~", "~0").replace("/", "~1")
                                                           for e in elements)))
        if op == "#>":
            return func("json_extract", self(target), pointer)
        # as text, an object or array would be DuckDB's compact JSON, not Postgres' text of it
        target = self(target)
        refuse = func("error", ast.A_Const(val=ast.String(
            sval=f"#>> of an object or array {NOT_SUPPORTED_AT_RUN} (use #> for the json value)")))
        return ast.CaseExpr(args=(ast.CaseWhen(
            expr=ast.A_Expr(kind=A_Expr_Kind.AEXPR_IN, name=(ast.String(sval="="),),
                            lexpr=func("json_type", target, pointer),
                            rexpr=(ast.A_Const(val=ast.String(sval="OBJECT")), ast.A_Const(val=ast.String(sval="ARRAY")))),
            result=cast(refuse, "varchar")),), defresult=func("json_extract_string", copy.deepcopy(target), pointer))

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
        if names is not None and not tn.typmods and len(tn.arrayBounds or ()) == 1:  # an enum's or composite's array
            return not any(p.sval.lower() in allowlist.TYPES for p in names[-1:]) and (
                self._enum_type(names) is not None
                or composite_of(self.pg.s, ast.TypeName(names=names, typemod=-1)) is not None)
        return names is not None and not tn.arrayBounds and not tn.typmods \
            and not any(p.sval.lower() in allowlist.TYPES for p in names[-1:]) \
            and (self._enum_type(names) is not None or self._domain(names) is not None
                 or composite_of(self.pg.s, tn) is not None)

    def _domain(self, names: tuple) -> tuple[str, dict] | None:
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
    def numeric_edge(self, name: str, node: ast.FuncCall) -> ast.Node | None:
        """Calls DuckDB answers otherwise than PostgreSQL: ``round(float8)`` rounds half to
        even there (rint), ``date_trunc('century' | 'millennium')`` counts from year 1 (2001
        starts the 21st century)."""
        args = list(node.args or ())
        if name == "round" and len(args) == 1:
            x = self(args[0])
            is_float = ast.A_Expr(kind=A_Expr_Kind.AEXPR_IN, name=(ast.String(sval="="),), lexpr=func("typeof", x),
                                  rexpr=(ast.A_Const(val=ast.String(sval="DOUBLE")),
                                         ast.A_Const(val=ast.String(sval="FLOAT"))))
            return ast.CaseExpr(args=(ast.CaseWhen(expr=is_float, result=func(
                "round_even", copy.deepcopy(x), ast.A_Const(val=ast.Integer(ival=0)))),),
                defresult=func("round", copy.deepcopy(x)))
        if name == "date_trunc" and args:
            ok, field = self._known_value(args[0])
            if ok and isinstance(field, str) and field.strip().lower() in ("century", "millennium"):
                raise errors.FeatureNotSupported(
                    f"date_trunc('{field}', ...) is not supported: DuckDB's starts centuries at years ending in 00, "
                    "PostgreSQL's at years ending in 01")
        return None

    def interval_fields(self, node: ast.TypeCast) -> ast.Node:
        """``interval '999' hour``, ``'5'::interval hour to minute``: PostgreSQL reads a bare
        number in the last field's unit and drops what is finer than it (``'1.5' hour`` is one
        hour; seconds keep their fraction). DuckDB drops the fields and reads seconds, so a
        bare number is rewritten here; a value with units or a precision is refused."""
        mods = [const_value(m) if isinstance(m, ast.A_Const) else None for m in node.typeName.typmods]
        if len(mods) > 1 and not (isinstance(mods[1], int) and mods[1] >= 6):  # microseconds: what is kept
            raise errors.FeatureNotSupported("an interval precision under 6 (interval(3)) is not supported")
        if mods[0] == _INTERVAL_FULL_RANGE:
            return cast(self(node.arg), "interval")
        unit = next((u for bit, u in _INTERVAL_UNITS if isinstance(mods[0], int) and mods[0] & bit), None)
        ok, value = self._known_value(node.arg)
        if unit is None or not ok or not isinstance(value, str) \
                or not re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*", value):
            raise errors.FeatureNotSupported(
                "an interval with a field restriction (interval '...' hour, ... to minute) is supported only "
                "for a bare number constant ('999' hour)")
        number = decimal.Decimal(value.strip())
        amount = str(number) if unit == "second" else str(int(number))  # finer fields are dropped
        return cast(ast.A_Const(val=ast.String(sval=f"{amount} {unit}")), "interval")

    def type_cast(self, node: ast.TypeCast) -> ast.Node | None:
        tn = node.typeName
        t = name_of(tn.names)
        if self.pg is not None:  # a composite type's value, an enum's array (sql/user_types.py)
            user = rewrite_cast(self, node)
            if user is not None:
                return user
        if self.pg is not None and not tn.typmods and not tn.arrayBounds:
            ctype = self._enum_type(tn.names)
            if ctype is not None:
                return self._as_enum(self(node.arg), ctype)
            domain = self._domain(tn.names)
            if domain is not None:
                return self._as_domain(node, *domain)
        if t == "interval" and tn.typmods and not tn.arrayBounds:
            return self.interval_fields(node)
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
        if t in ("text", "varchar") and not tn.arrayBounds and not tn.typmods:
            element = self._array_element(node.arg)
            if element is not None:
                return self.array_text(node.arg, element)
            if isinstance(node.arg, ast.A_ArrayExpr) or (isinstance(node.arg, ast.FuncCall) and name_of(
                    node.arg.funcname) in ("array_agg", "array_prepend", *_ARRAY_OF_FIRST_ARGUMENT)):
                raise errors.FeatureNotSupported("casting this array to text is not supported: reeldb cannot tell "
                                                 "its element type here; cast its elements, e.g. ARRAY[...]::int[]")
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
        if t in ("numeric", "decimal") and not tn.typmods:  # numeric[]: the type a numeric[] column stores,
            return ast.TypeCast(arg=self(node.arg), typeName=ast.TypeName(  # not DuckDB's DECIMAL(18,3)
                names=(ast.String(sval="decimal"),), typemod=-1, arrayBounds=tn.arrayBounds,
                typmods=(ast.A_Const(val=ast.Integer(ival=38)), ast.A_Const(val=ast.Integer(ival=10)))))
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

    # -- arrays of scalars (format/arrays.py) ---------------------------------------------------
    def _array_element(self, node: ast.Node, aliases: bool = True) -> str | None:
        """The element kind of an expression known to be a one-dimensional array of a
        scalar type (a column of one, a cast to one, ARRAY[...] of constants), else None."""
        if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
            name = node.fields[-1].sval
            if name in self.kinds or not aliases:
                return ARRAY_KINDS.get(self.kinds.get(name) or "")
            return self._array_aliases.get(name)
        if isinstance(node, ast.TypeCast) and len(node.typeName.arrayBounds or ()) == 1:
            try:
                kind = column_type(name_of(node.typeName.names)).kind
            except errors.Error:
                return None
            return kind if kind in _EXPRESSION_ELEMENTS else None
        if isinstance(node, ast.A_ArrayExpr) and node.elements:
            return self._common_element(node.elements)
        if isinstance(node, ast.ParamRef):
            return _list_element(self._param(node))
        if isinstance(node, ast.FuncCall) and node.args:
            name = name_of(node.funcname)
            if name == "array_agg" and len(node.args) == 1:
                return self._common_element(node.args)
            if name in _ARRAY_OF_FIRST_ARGUMENT:
                return self._array_element(node.args[0])
            if name == "array_prepend" and len(node.args) == 2:
                return self._array_element(node.args[1])
        return None

    def _common_element(self, items: tuple[ast.Node, ...]) -> str | None:
        """The element kind of ARRAY[items] (or array_agg(item)): a cast or a column of a
        scalar type decides; else constants of one kind (integers; with decimals, numeric)."""
        typed, consts = set(), set()
        for e in items:
            if isinstance(e, ast.TypeCast) and not e.typeName.arrayBounds:
                try:
                    typed.add(column_type(name_of(e.typeName.names)).kind)
                except errors.Error:
                    return None
            elif isinstance(e, ast.ColumnRef) and isinstance(e.fields[-1], ast.String):
                typed.add(self.kinds.get(e.fields[-1].sval))
            elif isinstance(e, ast.A_Const):
                if not e.isnull:
                    consts.add(_CONST_ELEMENT.get(type(e.val)))
            else:
                return None
        if typed:
            kind = typed.pop() if len(typed) == 1 else None
            return kind if kind in _EXPRESSION_ELEMENTS and (consts <= {kind, "text", "int32", "numeric"}) else None
        if consts == {"int32", "numeric"}:
            return "numeric"
        return consts.pop() if len(consts) == 1 else None

    def _array_outputs(self, node: Any) -> dict[str, str | None]:
        """Names the statement's select lists give to arrays of a scalar type (``a AS y``,
        or ``a`` itself), so that ``y::text`` over a subquery or CTE is still known to be one.
        A name given to arrays of two element types, or a table column of another type, is
        unknown."""
        out: dict[str, str | None] = {}
        for n in walk(node):
            if not isinstance(n, ast.ResTarget) or n.val is None:
                continue
            name = n.name or (n.val.fields[-1].sval if isinstance(n.val, ast.ColumnRef)
                              and isinstance(n.val.fields[-1], ast.String) else None)
            if name is None:
                continue
            element = self._array_element(n.val, aliases=False)
            if element is not None:  # a name reused for a non-array elsewhere: its cast then fails to bind
                out[name] = element if out.get(name, element) == element else None
        return {k: v for k, v in out.items()
                if v is not None and ARRAY_KINDS.get(self.kinds.get(k) or "", v) == v}

    def _arrayish(self, left: ast.Node, right: ast.Node) -> bool:
        return self._array_element(left) is not None or self._array_element(right) is not None

    def _as_array(self, node: ast.Node, element: str | None) -> ast.Node:
        """An operand beside an array of ``element``: a string constant is Postgres' array
        text of that type (``tags @> '{a}'``), as Postgres resolves the unknown literal."""
        if element is not None and isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
            return self.type_cast(cast(node, _PG_ELEMENT_NAMES[element], (-1,))) or node
        return self(node)

    def array_operands(self, node: ast.A_Expr) -> ast.Node | None:
        """``a = '{}'``, ``tags && '{x,y}'``: the string literal read as the array's type."""
        left, right = self._array_element(node.lexpr), self._array_element(node.rexpr)
        if left is None and right is None:
            return None
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=self._as_array(node.lexpr, right),
                          rexpr=self._as_array(node.rexpr, left))

    def array_contains(self, hay: ast.Node, needle: ast.Node) -> ast.Node:
        """``hay @> needle``: Postgres' arraycontains. Every element of ``needle`` must equal
        one of ``hay``'s; a NULL element of ``needle`` equals nothing (DuckDB's list_has_all
        finds it among ``hay``'s NULLs); NULL when either array is."""
        eh, en = self._array_element(hay), self._array_element(needle)
        h, n = self._as_array(hay, en), self._as_array(needle, eh)
        no_nulls = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="="),),
                              lexpr=func("list_count", n), rexpr=func("len", n))
        found = ast.BoolExpr(boolop=BoolExprType.AND_EXPR, args=(no_nulls, func("list_has_all", h, n)))
        return _case(_is_null(h, n), cast(ast.A_Const(isnull=True), "bool"), found)

    def any_all(self, node: ast.A_Expr) -> ast.Node:
        """``x = ANY(arr)`` / ``x <> ALL(arr)``: NULL when the array is NULL, as in Postgres
        (DuckDB answers false, or true for ALL); a string constant is read as an array of
        the type of ``x``."""
        arr = self._as_array(node.rexpr, self._common_element((node.lexpr,)))
        x = self(node.lexpr)
        compared = ast.A_Expr(kind=node.kind, name=node.name, lexpr=x, rexpr=arr)
        if isinstance(arr, ast.A_ArrayExpr):
            return compared
        op = name_of(node.name)
        if (op, node.kind) in (("=", A_Expr_Kind.AEXPR_OP_ANY), ("<>", A_Expr_Kind.AEXPR_OP_ALL)):
            member = self.array_member(x, arr)  # DuckDB runs ANY(list) as a subquery per row: 10x slower
            return member if op == "=" else ast.BoolExpr(boolop=BoolExprType.NOT_EXPR, args=(member,))
        return _case(_is_null(arr), cast(ast.A_Const(isnull=True), "bool"), compared)

    @staticmethod
    def array_member(x: ast.Node, arr: ast.Node) -> ast.Node:
        """``x = ANY(arr)`` with Postgres' three values: NULL for a NULL array; false for an
        empty one (even for a NULL x); true when an element equals x; else NULL if x is NULL
        or the array holds a NULL, false otherwise."""
        null = cast(ast.A_Const(isnull=True), "bool")
        empty = _compare(func("len", arr), "=", 0)
        has_null = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="<"),),
                              lexpr=func("list_count", arr), rexpr=func("len", arr))
        return ast.CaseExpr(args=(
            ast.CaseWhen(expr=_is_null(arr), result=null),
            ast.CaseWhen(expr=empty, result=ast.A_Const(val=ast.Boolean(boolval=False))),
            ast.CaseWhen(expr=_is_null(x), result=null),
            ast.CaseWhen(expr=func("list_contains", arr, x), result=ast.A_Const(val=ast.Boolean(boolval=True))),
            ast.CaseWhen(expr=has_null, result=null)), defresult=ast.A_Const(val=ast.Boolean(boolval=False)))

    def array_agg_of_arrays(self, node: ast.FuncCall) -> ast.Node:
        """array_agg(int[] column): Postgres builds an array of one more dimension, so it
        raises on a NULL or empty input array or arrays of different lengths, where DuckDB
        would return a ragged list of lists."""
        if node.over is not None:
            raise errors.FeatureNotSupported("array_agg() of arrays as a window function is not supported")
        x = self(node.args[0])
        where = None if node.agg_filter is None else self(node.agg_filter)

        def agg(name: str, arg: ast.Node) -> ast.FuncCall:
            return ast.FuncCall(funcname=(ast.String(sval=name),), args=(arg,), agg_filter=where)

        def fail(message: str) -> ast.Node:
            return func("error", ast.A_Const(val=ast.String(sval=message)))

        length = func("len", x)
        gathered = ast.FuncCall(funcname=node.funcname, args=(x,), agg_filter=where, agg_order=node.agg_order
                                and tuple(self(o) for o in node.agg_order), agg_distinct=node.agg_distinct)
        return ast.CaseExpr(args=(
            ast.CaseWhen(expr=agg("bool_or", _is_null(x)), result=fail("cannot accumulate null arrays")),
            ast.CaseWhen(expr=agg("bool_or", _compare(length, "=", 0)), result=fail("cannot accumulate empty arrays")),
            ast.CaseWhen(expr=ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="<>"),),
                                         lexpr=agg("min", length), rexpr=agg("max", length)),
                         result=fail("cannot accumulate arrays of different dimensionality"))),
            defresult=gathered)

    def subscript(self, node: ast.A_Indirection) -> ast.Node:
        """``a[i]`` / ``a[lo:hi]`` with Postgres' bounds: a subscript below 1 gives NULL
        (DuckDB counts a negative one from the end); a slice is cut to [1, len], so an upper
        bound below 1 gives an empty array."""
        out: list[ast.Node] = []
        for ind in node.indirection:
            if not isinstance(ind, ast.A_Indices) or _is_string(ind.uidx) or _is_string(ind.lidx):
                out.append(self(ind))  # a field, or a jsonb key
                continue
            if not ind.is_slice:  # nullif(greatest(i, 0), 0): NULL below 1, the subscript evaluated once
                out.append(ast.A_Indices(is_slice=False, uidx=func(
                    "nullif", func("greatest", self(ind.uidx), _int_const(0)), _int_const(0))))
                continue
            lo = None if ind.lidx is None else self(ind.lidx)
            hi = None if ind.uidx is None else self(ind.uidx)
            out.append(ast.A_Indices(
                is_slice=True, lidx=None if lo is None else _case(_compare(lo, "<", 1), _int_const(1), lo),
                uidx=None if hi is None else _case(_compare(hi, "<", 1), _int_const(0), hi)))
        return ast.A_Indirection(arg=self(node.arg), indirection=tuple(out))

    def array_text(self, arg: ast.Node, element: str) -> ast.Node:
        """``arr::text``: Postgres' array text (``{1,NULL,"a b"}``), not DuckDB's list text."""
        duck = _ARRAY_TEXT_OF.get(element)
        if duck is None:
            raise errors.FeatureNotSupported(f"casting an array of {_PG_ELEMENT_NAMES[element]} to text is not "
                                             "supported: fetch the array itself")
        return func(ARRAY_TEXT[duck], cast(self(arg), _DUCK_LIST_ELEMENT[duck], (-1,)))

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


# element kinds whose arrays ::text prints (by the DuckDB list type it reads them as)
_ARRAY_TEXT_OF = {"int16": "VARCHAR", "int32": "VARCHAR", "int64": "VARCHAR", "text": "VARCHAR", "varchar": "VARCHAR",
                  "uuid": "VARCHAR", "json": "VARCHAR", "jsonb": "JSONB", "bool": "BOOLEAN", "float32": "FLOAT",
                  "float64": "DOUBLE"}
_DUCK_LIST_ELEMENT = {"VARCHAR": "varchar", "BOOLEAN": "bool", "FLOAT": "float4", "DOUBLE": "float8", "JSONB": "varchar"}
_PG_ELEMENT_NAMES = {"int16": "int2", "int32": "int4", "int64": "int8", "float32": "float4", "float64": "float8",
                     "numeric": "numeric", "bool": "bool", "text": "text", "varchar": "varchar", "bytea": "bytea",
                     "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz", "uuid": "uuid",
                     "jsonb": "jsonb", "json": "json"}
_CONST_ELEMENT = {ast.Integer: "int32", ast.Float: "numeric", ast.String: "text", ast.Boolean: "bool"}
# element kinds an array expression may have: a column's, and json (ARRAY['{}'::json], whose
# elements DuckDB prints as written, as Postgres' json does)
_EXPRESSION_ELEMENTS = (*ELEMENT_KINDS, "json")
_ARRAY_OF_FIRST_ARGUMENT = ("array_append", "array_cat", "array_remove", "array_replace")
# operators whose string-literal operand beside an array is an array literal
_ARRAY_LITERAL_OPS = ("=", "<>", "!=", "<", ">", "<=", ">=", "&&")


def _list_element(value: Any) -> str | None:
    """The element kind of a list parameter, by its Python values (None: not a flat list of
    integers, floats, booleans, strings or uuids)."""
    import uuid

    if not isinstance(value, list | tuple):
        return None
    kinds = {"bool" if isinstance(x, bool) else "int64" if isinstance(x, int) else "float64" if isinstance(x, float)
             else "text" if isinstance(x, str) else "uuid" if isinstance(x, uuid.UUID) else None
             for x in value if x is not None}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else None


def _case(when: ast.Node, then: ast.Node, otherwise: ast.Node) -> ast.CaseExpr:
    return ast.CaseExpr(args=(ast.CaseWhen(expr=when, result=then),), defresult=otherwise)


def _is_null(*nodes: ast.Node) -> ast.Node:
    tests = tuple(ast.NullTest(arg=n, nulltesttype=NullTestType.IS_NULL) for n in nodes)
    return tests[0] if len(tests) == 1 else ast.BoolExpr(boolop=BoolExprType.OR_EXPR, args=tests)


def _compare(node: ast.Node, op: str, n: int) -> ast.A_Expr:
    return ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=op),), lexpr=node, rexpr=_int_const(n))


def _is_string(node: ast.Node | None) -> bool:
    """A string constant, or a cast to text: a key, not a position."""
    if isinstance(node, ast.TypeCast):
        return name_of(node.typeName.names) in ("text", "varchar") and not node.typeName.arrayBounds
    return isinstance(node, ast.A_Const) and isinstance(node.val, ast.String)


def _int_const(n: int) -> ast.A_Const:
    return ast.A_Const(val=ast.Integer(ival=n))


def vector_or_sparse(text: str, what: str) -> np.ndarray | list[float]:
    """A vector's text ``[1,2]`` or a sparse vector's ``{1:1}/2``."""
    if "/" in text and text.lstrip().startswith("{"):
        return parse_sparse_text(text, what)
    return parse_vector_text(text, what)


_NUMERIC_EDGES = frozenset(("round", "date_trunc"))  # Rewriter.numeric_edge
# an interval's field restriction (its typmod's mask: PostgreSQL's INTERVAL_MASK bits), least
# significant first: a bare number is in the last field's unit
_INTERVAL_FULL_RANGE = 0x7FFF
_INTERVAL_UNITS = ((1 << 12, "second"), (1 << 11, "minute"), (1 << 10, "hour"), (1 << 3, "day"),
                   (1 << 1, "month"), (1 << 2, "year"))


def _type_name_oid(name: ast.Node) -> ast.Node:
    """The OID of the type ``name`` (format_type's spelling of a built-in type), at run time."""
    cases = tuple(ast.CaseWhen(expr=ast.A_Const(val=ast.String(sval=shown)), result=ast.A_Const(val=ast.Integer(ival=oid)))
                  for shown, oid in _type_names())
    return cast(ast.CaseExpr(arg=name, args=cases), "uinteger")


def _type_names() -> list[tuple[str, int]]:
    """(the name format_type prints, OID) of every registered type."""
    from ..types import TYPES, by_oid

    out = []
    for t in TYPES:
        element = by_oid(t.element) if t.element else None
        if element is not None:
            out.append((element.display_name + "[]", t.oid))
        elif not t.element:
            out.append((t.display_name, t.oid))
    return out


def adapt_param(v: Any) -> Any:
    """A Python parameter value -> what DuckDB binds."""
    import datetime as dt
    import decimal
    import json
    import uuid

    if isinstance(v, TypedParameter):
        return v.duck()
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
    from ..format.ranges import Range, RangeParameter
    from ..format.ranges import text as range_text

    if isinstance(v, RangeParameter):  # where no rewrite read it (a column's value): its text
        return v.text if v.text is not None else range_text(v.value)
    if isinstance(v, Range):
        return range_text(v)
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
    qualified: set[tuple[str, str]] = set()  # (schema, table) read under the alias ``table``
    target: tuple[str, str] | None = None  # (schema, table) of an INSERT / UPDATE / DELETE target
    for node in walk(stmt):
        if not isinstance(node, ast.RangeVar) or node.catalogname is not None:
            continue
        schema = node.schemaname
        if schema is None or schema in SYSTEM_SCHEMAS:
            continue
        if known is None:
            known = schemas()
        if schema in known:
            if node.alias is None and id(node) not in targets:
                node.alias = ast.Alias(aliasname=node.relname)
                qualified.add((schema, node.relname))
            elif node.alias is None:  # the statement's target keeps its name (an UPDATE needs it)
                target = (schema, node.relname)
            node.schemaname, node.relname = None, f"{schema}.{node.relname}"
    if qualified or target:
        # schema.table.column of such a table: the column of its alias ``table``; of the
        # target (schema.table.column, or table.column as Postgres also reads it): of "schema.table"
        for node in walk(stmt):
            if not isinstance(node, ast.ColumnRef) or len(node.fields) not in (2, 3) or \
                    not all(isinstance(f, ast.String) for f in node.fields[:-1]):
                continue
            names = tuple(f.sval for f in node.fields[:-1])
            if len(names) == 2 and names in qualified:
                node.fields = node.fields[1:]
            elif target is not None and names in (target, target[1:]):
                node.fields = (ast.String(sval=f"{target[0]}.{target[1]}"), node.fields[-1])


def _plain_stars(stmt: ast.SelectStmt) -> list[int]:
    """The stars of ``stmt``'s select list that read no table directly (``*`` over only
    subqueries, functions or VALUES; ``s.*`` of a subquery): their columns are what the
    subquery chose, so there is no hidden _rowid to leave out (EXCLUDE would fail)."""
    tables: set[str] = set()
    others: set[str] = set()

    def items(node: Any) -> None:
        if isinstance(node, ast.RangeVar):
            tables.add(node.alias.aliasname if node.alias else node.relname)
        elif isinstance(node, ast.JoinExpr):
            items(node.larg)
            items(node.rarg)
        elif getattr(node, "alias", None) is not None:
            others.add(node.alias.aliasname)

    for item in stmt.fromClause or ():
        items(item)
    out = []
    for target in stmt.targetList:
        ref = getattr(target, "val", None)
        if not (isinstance(ref, ast.ColumnRef) and isinstance(ref.fields[-1], ast.A_Star)):
            continue
        unqualified = len(ref.fields) == 1 and not tables
        of_other = len(ref.fields) == 2 and isinstance(ref.fields[0], ast.String) and ref.fields[0].sval in others
        if unqualified or of_other:
            out.append(id(ref))
    return out
