"""CHECK constraints: declared, named, enforced on every write, shown as Postgres shows them.

A constraint (``Schema.checks``) is Postgres SQL text over the table's column names. Every
batch of rows being written (INSERT, UPDATE, COPY, ``db.insert``, the rows a merge brings) is
checked by one DuckDB query over the batch: the first constraint (in name order, as Postgres
checks them) that is false for some row refuses the statement with 23514; NULL passes (SQL
three-valued logic). The expression must be deterministic: subqueries, aggregates, window
and set-returning functions are refused as Postgres refuses them, and volatile functions
(which Postgres accepts but which would make a row's validity change with time) are refused
too. It is bound like any query (the allow-list) when the constraint is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType

from .. import errors
from ..engine.engine import internal_name, quote_ident
from ..format.fragment import Batch
from ..format.manifest import CheckConstraint, Column, Fragment, Schema, TableManifest
from ..format.types import PARQUET
from .parse import deparse, parse, walk

if TYPE_CHECKING:
    from .session import Session

NAMEDATALEN = 64
# functions whose answer changes between calls: never in a CHECK or a generated column
VOLATILE = {"nextval", "currval", "setval", "lastval", "random", "random_normal", "now", "clock_timestamp",
             "gen_random_uuid", "statement_timestamp", "transaction_timestamp", "timeofday", "uuid",
             "txid_current", "pg_backend_pid", "current_timestamp", "localtimestamp", "current_date"}
_AGGREGATES = {"count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "array_agg", "string_agg",
               "stddev", "variance", "json_agg", "jsonb_agg"}
_SET_RETURNING = {"generate_series", "unnest", "regexp_matches", "json_each", "jsonb_each", "generate_subscripts"}


# -- declaring ---------------------------------------------------------------------------------
def declare(s: Session, table: str, con: ast.Constraint, columns: list[Column] | tuple[Column, ...],
            taken: set[str], alter: bool = False) -> CheckConstraint:
    """A ``CHECK`` clause of CREATE / ALTER TABLE -> the constraint, named as Postgres names
    it when the clause does not (``taken``: the table's constraint names so far)."""
    if con.is_no_inherit:
        raise errors.FeatureNotSupported("CHECK ... NO INHERIT is not supported: reeldb tables have no inheritance")
    if alter and con.skip_validation:
        raise errors.FeatureNotSupported(
            "ADD CONSTRAINT ... NOT VALID is not supported: reeldb checks the existing rows (drop NOT VALID)")
    expr = con.raw_expr
    by_name = {c.name: c for c in columns}
    used: list[Column] = []
    for node in walk(expr):
        if isinstance(node, ast.SubLink):
            raise errors.FeatureNotSupported("cannot use subquery in check constraint")
        if isinstance(node, ast.ParamRef):
            raise errors.ProgrammingError(f"there is no parameter ${node.number}", sqlstate="42P02")
        if isinstance(node, ast.FuncCall):
            fname = node.funcname[-1].sval.lower()
            if node.over is not None:
                raise errors.ProgrammingError("window functions are not allowed in check constraints",
                                              sqlstate="42P20")
            if node.agg_star or node.agg_distinct or node.agg_filter is not None or fname in _AGGREGATES:
                raise errors.ProgrammingError("aggregate functions are not allowed in check constraints",
                                              sqlstate="42803")
            if fname in _SET_RETURNING:
                raise errors.FeatureNotSupported("set-returning functions are not allowed in check constraints")
            if fname in VOLATILE:
                raise errors.ProgrammingError(
                    f"functions in check constraint must be immutable: {fname}() is not (reeldb checks a row's "
                    "value once, when it is written)", sqlstate="42P17")
        if isinstance(node, ast.SQLValueFunction):
            raise errors.ProgrammingError(
                "functions in check constraint must be immutable: the current time or user is not", sqlstate="42P17")
        if isinstance(node, ast.ColumnRef):
            fields = node.fields
            if isinstance(fields[-1], ast.A_Star):
                raise errors.FeatureNotSupported("a * in a check constraint is not supported")
            if len(fields) > 1:
                raise errors.FeatureNotSupported(
                    f"a qualified column name in a check constraint is not supported: {deparse(node)}")
            name = fields[0].sval
            col = by_name.get(name)
            if col is None:
                raise errors.UndefinedColumn(f'column "{name}" does not exist')
            if col.type.storage != PARQUET or col.type.is_enum:  # an enum would compare as text, not in label order
                raise errors.FeatureNotSupported(
                    f"a check constraint on a {col.type.sql()} column is not supported (column {name})")
            if col not in used:
                used.append(col)
    local = _local(table)
    if con.conname:
        if con.conname in taken:
            raise errors.DuplicateObject(f'constraint "{con.conname}" for relation "{local}" already exists')
        name = con.conname
    else:  # as Postgres: tab_col_check when the expression reads one column, tab_check otherwise
        name = choose_name(local, used[0].name if len(used) == 1 else None, "check", taken)
    check = CheckConstraint(name, deparse(expr), tuple(c.id for c in used))
    _bind(s, check, columns)
    return check


def choose_name(name1: str, name2: str | None, label: str, taken: set[str]) -> str:
    """Postgres' ChooseConstraintName: name1_name2_label, truncated to fit 63 bytes, with
    1, 2, ... added to the label until the name is free."""
    n = 0
    while True:
        candidate = _object_name(name1, name2, label if n == 0 else f"{label}{n}")
        if candidate not in taken:
            return candidate
        n += 1


def _object_name(name1: str, name2: str | None, label: str) -> str:
    """Postgres' makeObjectName: the names are shortened, the longer first, so that the
    whole fits NAMEDATALEN - 1 bytes."""
    b1, b2 = name1.encode(), (name2 or "").encode()
    overhead = (1 if name2 else 0) + len(label.encode()) + 1
    avail = NAMEDATALEN - 1 - overhead
    n1, n2 = len(b1), len(b2)
    while n1 + n2 > avail:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [b1[:n1].decode(errors="ignore")] + ([b2[:n2].decode(errors="ignore")] if name2 else []) + [label]
    return "_".join(parts)


def taken_names(table: str, schema: Schema) -> set[str]:
    """Names a new constraint of the table cannot take: its checks' and its keys'."""
    local = _local(table)
    names = {c.name for c in schema.checks} | {f.name for f in schema.foreign_keys}
    for key in schema.uniques:
        names.add(schema.key_name(local, key))
    return names


def _local(table: str) -> str:
    from .namespaces import schema_of

    return schema_of(table)[1]


def _bind(s: Session, check: CheckConstraint, columns: list[Column] | tuple[Column, ...]) -> None:
    """Run the expression once over no rows: an unknown function or operator fails now, and
    a value that is not boolean is Postgres' 42804."""
    empty = pa.table({c.name: pa.array([], c.type.arrow()) for c in columns if c.type.storage == PARQUET}
                     or {"__n": pa.array([], pa.int8())})
    result = _run(s, f"SELECT ({_duck(s, check.expr)}) AS v FROM {{rel}}", empty, check.name)
    typ = result.schema.field(0).type
    if not (pa.types.is_boolean(typ) or pa.types.is_null(typ)):
        raise errors.ProgrammingError(f"argument of CHECK must be type boolean, not type {_pg_name(typ)}",
                                      sqlstate="42804")


def _pg_name(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return {2: "smallint", 4: "integer"}.get(typ.bit_width // 8, "bigint")
    if pa.types.is_floating(typ):
        return "double precision"
    if pa.types.is_decimal(typ):
        return "numeric"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "text"
    return str(typ)


# -- enforcing ---------------------------------------------------------------------------------
def enforce(s: Session, tm: TableManifest, batch: Batch) -> None:
    """Refuse (23514) a batch of new rows that makes one of the table's checks false."""
    checks = tm.schema.checks
    if not checks or not len(batch):
        return
    failed = first_violation(s, tm.schema, checks, _rows(tm.schema, batch))
    if failed is not None:
        raise errors.CheckViolation(
            f'new row for relation "{_local(tm.name)}" violates check constraint "{failed.name}"')


def first_violation(s: Session, schema: Schema, checks: tuple[CheckConstraint, ...] | list[CheckConstraint],
                    rows: pa.Table) -> CheckConstraint | None:
    """The first check (by name) some row makes false, in one query over ``rows``."""
    ordered = sorted(checks, key=lambda c: c.name)
    if not ordered or not rows.num_rows:
        return None
    select = ", ".join(f"bool_and(({_duck(s, c.expr)}) IS NOT FALSE) AS c{i}" for i, c in enumerate(ordered))
    result = _run(s, f"SELECT {select} FROM {{rel}}", rows, None)
    for i, c in enumerate(ordered):
        if result.column(i)[0].as_py() is False:
            return c
    return None


def verify_rows(s: Session, tm: TableManifest, checks: tuple[CheckConstraint, ...] | list[CheckConstraint],
                fragments: list[Fragment] | tuple[Fragment, ...], reader: Any) -> CheckConstraint | None:
    """The first of ``checks`` some live row of ``fragments`` makes false (one query per fragment)."""
    if not checks:
        return None
    for frag in fragments:
        positions = np.flatnonzero(reader.live_mask(frag))
        if not len(positions):
            continue
        batch = reader.batch(tm.table_id, frag, tm.schema, positions)
        failed = first_violation(s, tm.schema, checks, _rows(tm.schema, batch))
        if failed is not None:
            return failed
    return None


def add_checked(s: Session, tm: TableManifest, check: CheckConstraint, reader: Any) -> None:
    """ALTER TABLE ... ADD CONSTRAINT: every existing row must hold the new check."""
    if verify_rows(s, tm, [check], tm.fragments, reader) is not None:
        raise errors.CheckViolation(
            f'check constraint "{check.name}" of relation "{_local(tm.name)}" is violated by some row')


def verify_merge(s: Session, ours: dict[str, TableManifest], tables: dict[str, TableManifest], reader: Any) -> None:
    """A merge's result: the rows it brings (and every row, where it brings a check) hold
    the checks of the merged table; otherwise the merge is refused with 23514."""
    ours_by_id = {tm.table_id: tm for tm in ours.values()}
    for name, tm in tables.items():
        if not tm.schema.checks:
            continue
        before = ours_by_id.get(tm.table_id)
        if before is None or set(before.schema.checks) != set(tm.schema.checks):
            frags = list(tm.fragments)
        else:
            known = {f.id for f in before.fragments}
            frags = [f for f in tm.fragments if f.id not in known]
        failed = verify_rows(s, tm, tm.schema.checks, frags, reader)
        if failed is not None:
            raise errors.CheckViolation(
                f'new row for relation "{_local(name)}" violates check constraint "{failed.name}" '
                "(a row this merge or revert would bring; nothing was written)")


def _rows(schema: Schema, batch: Batch) -> pa.Table:
    cols = {c.id: c for c in schema.columns}
    data = {cols[cid].name: arr for cid, arr in batch.scalars.items()
            if cid in cols and cols[cid].type.storage == PARQUET}
    return pa.table(data) if data else pa.table({"__n": pa.nulls(len(batch), pa.int8())})


def _duck(s: Session, expr: str) -> str:
    """The expression as DuckDB SQL (bound like any query: rewriter and allow-list)."""
    node = parse(f"SELECT {expr}")[0].stmt.targetList[0].val
    return deparse(s.rewriter([])(node))


def _run(s: Session, sql: str, rows: pa.Table, name: str | None) -> pa.Table:
    rel = internal_name("check", "rows")
    s.engine.register(rel, rows)
    try:
        result, _ = s.engine.arrow(sql.replace("{rel}", quote_ident(rel)))
    except errors.Error as e:
        if name is None:
            raise
        raise type(e)(f'check constraint "{name}": {e}', sqlstate=e.sqlstate) from None
    finally:
        s.engine.unregister(rel)
    return result


# -- schema changes ----------------------------------------------------------------------------
def without_column(checks: tuple[CheckConstraint, ...], cid: int) -> tuple[CheckConstraint, ...]:
    """DROP COLUMN drops the checks that read the column, as Postgres does."""
    return tuple(c for c in checks if cid not in c.columns)


def rename_column(checks: tuple[CheckConstraint, ...], cid: int, old: str, new: str) -> tuple[CheckConstraint, ...]:
    """RENAME COLUMN: the checks that read it read it by its new name."""
    out = []
    for c in checks:
        if cid in c.columns:
            node = parse(f"SELECT {c.expr}")[0].stmt.targetList[0].val
            for ref in walk(node):
                if isinstance(ref, ast.ColumnRef) and isinstance(ref.fields[-1], ast.String) \
                        and ref.fields[-1].sval == old:
                    ref.fields = (ast.String(sval=new),)
            c = CheckConstraint(c.name, deparse(node), c.columns)
        out.append(c)
    return tuple(out)


# -- showing (pg_get_constraintdef) ------------------------------------------------------------
class _Unprintable(Exception):
    pass


_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_NUM_RANK = {**_INT_RANK, "numeric": 4, "real": 5, "double precision": 6}
_TEXT_FUNCS = {"lower": "text", "upper": "text", "btrim": "text", "ltrim": "text", "rtrim": "text",
               "length": "integer", "char_length": "integer", "octet_length": "integer"}


def constraint_def(check: CheckConstraint, schema: Schema, pretty: bool) -> str:
    """``CHECK (...)`` as Postgres 16's pg_get_constraintdef prints it (``pretty``: its
    second argument true, as psql and SQLAlchemy ask), for the common shapes of expression:
    comparisons, arithmetic, AND/OR/NOT, IS [NOT] NULL, BETWEEN, IN, LIKE, casts and a few
    functions; other shapes are printed as written."""
    node = parse(f"SELECT {check.expr}")[0].stmt.targetList[0].val
    types = {c.name: _pg_type(c) for c in schema.columns}
    try:
        body = _Printer(types, pretty).top(node)
    except _Unprintable:
        body = deparse(node) if pretty else f"({deparse(node)})"
    return f"CHECK ({body})"


def _pg_type(c: Column) -> str:
    k = c.type.kind
    if k == "varchar":
        return "character varying"
    if c.type.is_enum:
        return str(c.type.dtype)
    return {"int16": "smallint", "int32": "integer", "int64": "bigint", "float32": "real",
            "float64": "double precision", "bool": "boolean", "text": "text", "numeric": "numeric"}.get(k, c.type.sql())


class _Printer:
    def __init__(self, types: dict[str, str], pretty: bool):
        self.types, self.pretty = types, pretty

    def top(self, node: ast.Node) -> str:
        return self.expr(node)[0]

    # each returns (text, kind, type); kind: leaf, func, cast, op:<operator>, bool:<AND|OR|NOT>, nulltest
    def expr(self, node: ast.Node) -> tuple[str, str, str]:
        if isinstance(node, ast.ColumnRef):
            name = node.fields[-1].sval
            return _ident(name), "leaf", self.types.get(name, "unknown")
        if isinstance(node, ast.A_Const):
            return self.const(node)
        if isinstance(node, ast.BoolExpr):
            op = {BoolExprType.AND_EXPR: "AND", BoolExprType.OR_EXPR: "OR", BoolExprType.NOT_EXPR: "NOT"}[node.boolop]
            return self.boolean(op, list(node.args))
        if isinstance(node, ast.NullTest):
            arg = self.child(self.expr(node.arg), "nulltest")
            test = "IS NULL" if node.nulltesttype == NullTestType.IS_NULL else "IS NOT NULL"
            return self.wrap(f"{arg} {test}"), "nulltest", "boolean"
        if isinstance(node, ast.A_Expr):
            return self.a_expr(node)
        if isinstance(node, ast.FuncCall) and len(node.funcname) == 1 and not node.agg_order:
            fname = node.funcname[0].sval.lower()
            if fname not in _TEXT_FUNCS:
                raise _Unprintable
            args = [self.coerce(self.expr(a), "text") if _TEXT_FUNCS[fname] == "text" or fname.endswith("length")
                    else self.expr(a) for a in node.args or ()]
            inner = ", ".join(a[0] for a in args)
            return f"{fname}({inner})", "func", _TEXT_FUNCS[fname]
        if isinstance(node, ast.TypeCast):
            target = deparse(node.typeName)
            return self.cast(self.expr(node.arg), target), "cast", target
        raise _Unprintable

    def const(self, node: ast.A_Const) -> tuple[str, str, str]:
        if node.isnull:
            raise _Unprintable
        v = node.val
        if isinstance(v, ast.Integer):
            typ = "integer"
            return (f"'{v.ival}'::integer" if v.ival < 0 else str(v.ival)), "leaf" if v.ival >= 0 else "cast", typ
        if isinstance(v, ast.Float):
            typ = "numeric" if "." in v.fval or "e" in v.fval.lower() else "bigint"
            negative = v.fval.startswith("-")
            return (f"'{v.fval}'::{typ}" if negative else v.fval), "cast" if negative else "leaf", typ
        if isinstance(v, ast.Boolean):
            return ("true" if v.boolval else "false"), "leaf", "boolean"
        if isinstance(v, ast.String):
            return "'" + v.sval.replace("'", "''") + "'", "leaf", "unknown"
        raise _Unprintable

    def wrap(self, text: str) -> str:
        return text if self.pretty else f"({text})"

    def cast(self, part: tuple[str, str, str], target: str) -> str:
        """``x::type``: the plain printer always puts x in parentheses, the pretty one
        only when x is not a simple value."""
        text, kind, _ = part
        if self.pretty and kind in ("leaf", "func", "cast"):
            return f"{text}::{target}"
        return f"({text})::{target}"

    def coerce(self, part: tuple[str, str, str], target: str) -> tuple[str, str, str]:
        """An operand as the operator takes it: unknown literals get the other side's type,
        varchar is read as text, the narrower numeric side is widened."""
        text, kind, typ = part
        if typ == target:
            return part
        if typ == "unknown" and kind == "leaf":
            return f"{text}::{target}", "cast", target
        if typ == "character varying" and target == "text":
            return self.cast(part, "text"), "cast", "text"
        if typ in _NUM_RANK and target in _NUM_RANK:
            if typ in _INT_RANK and target in _INT_RANK:
                return part  # Postgres has cross-type integer operators
            if _NUM_RANK[typ] < _NUM_RANK[target]:
                return self.cast(part, target), "cast", target
            return part
        raise _Unprintable

    def operand_type(self, a: str, b: str) -> str:
        if a == b:
            return "text" if a == "unknown" else a
        if "unknown" in (a, b):
            other = b if a == "unknown" else a
            return "text" if other == "character varying" else other
        if {a, b} <= {"text", "character varying"}:
            return "text"
        if a in _NUM_RANK and b in _NUM_RANK:
            if a in _INT_RANK and b in _INT_RANK:
                return a
            return a if _NUM_RANK[a] > _NUM_RANK[b] else b
        raise _Unprintable

    def binary(self, op: str, left: tuple[str, str, str], right: tuple[str, str, str]) -> tuple[str, str, str]:
        typ = self.operand_type(left[2], right[2])
        if op in ("~~", "!~~", "~~*", "!~~*", "~", "!~", "~*", "!~*", "||"):
            typ = "text"
        if "real" in (left[2], right[2]) and typ == "real" and left[2] != right[2]:
            # real against an integer or numeric: Postgres takes its real-double operators
            typ = "double precision"
            lt = left if left[2] == "real" else self.coerce(left, typ)
            rt = right if right[2] == "real" else self.coerce(right, typ)
        else:
            lt, rt = self.coerce(left, typ), self.coerce(right, typ)
        text = f"{self.child(lt, 'op:' + op)} {op} {self.child(rt, 'op:' + op)}"
        result = "boolean" if op in ("=", "<>", "!=", "<", ">", "<=", ">=", "~~", "!~~", "~~*", "!~~*", "~", "!~",
                                     "~*", "!~*") else typ
        if op == "!=":
            text = text.replace(" != ", " <> ")
        return self.wrap(text), f"op:{op}", result

    def a_expr(self, node: ast.A_Expr) -> tuple[str, str, str]:
        kind = node.kind
        if kind in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE) \
                and node.lexpr is not None and len(node.name) == 1:
            return self.binary(node.name[0].sval, self.expr(node.lexpr), self.expr(node.rexpr))
        if kind == A_Expr_Kind.AEXPR_BETWEEN:
            low, high = node.rexpr
            left = self.expr(node.lexpr)
            return self.boolean_parts("AND", [self.binary(">=", left, self.expr(low)),
                                              self.binary("<=", left, self.expr(high))])
        if kind == A_Expr_Kind.AEXPR_IN and node.name[0].sval in ("=", "<>"):
            # x IN (...) is x = ANY (ARRAY[...]), NOT IN is <> ALL
            op = node.name[0].sval
            which = "ANY" if op == "=" else "ALL"
            left = self.expr(node.lexpr)
            items = [self.expr(e) for e in node.rexpr]
            if left[2] in _INT_RANK and all(i[2] in _INT_RANK and i[1] == "leaf" for i in items):
                arr = "ARRAY[" + ", ".join(i[0] for i in items) + "]"
                return self.wrap(f"{left[0]} {op} {which} ({arr})"), f"op:{op}", "boolean"
            if left[2] == "text" and all(i[2] == "unknown" for i in items):
                arr = "ARRAY[" + ", ".join(f"{i[0]}::text" for i in items) + "]"
                return self.wrap(f"{left[0]} {op} {which} ({arr})"), f"op:{op}", "boolean"
            if left[2] == "character varying" and left[1] == "leaf" and all(i[2] == "unknown" for i in items):
                arr = ("ARRAY[" + ", ".join(f"{i[0]}::character varying" for i in items) + "]", "func", "")
                return (self.wrap(f"{self.cast(left, 'text')} {op} {which} ({self.cast(arr, 'text[]')})"),
                        f"op:{op}", "boolean")
        if kind in (A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL) and isinstance(node.rexpr, ast.A_ArrayExpr):
            left = self.expr(node.lexpr)
            items = [self.expr(e) for e in node.rexpr.elements or ()]
            if left[2] in _INT_RANK and items and all(i[2] in _INT_RANK and i[1] == "leaf" for i in items):
                which = "ANY" if kind == A_Expr_Kind.AEXPR_OP_ANY else "ALL"
                arr = "ARRAY[" + ", ".join(i[0] for i in items) + "]"
                return self.wrap(f"{left[0]} {node.name[0].sval} {which} ({arr})"), "op:=", "boolean"
        raise _Unprintable

    def boolean(self, op: str, args: list[ast.Node]) -> tuple[str, str, str]:
        return self.boolean_parts(op, [self.expr(a) for a in args])

    def boolean_parts(self, op: str, parts: list[tuple[str, str, str]]) -> tuple[str, str, str]:
        if op == "NOT":
            return self.wrap(f"NOT {self.child(parts[0], 'bool:NOT')}"), "bool:NOT", "boolean"
        text = f" {op} ".join(self.child(p, f"bool:{op}") for p in parts)
        return self.wrap(text), f"bool:{op}", "boolean"

    def child(self, part: tuple[str, str, str], parent: str) -> str:
        """A sub-expression inside ``parent``, in parentheses where Postgres' pretty printer
        puts them (isSimpleNode); the plain printer has put its own already."""
        text, kind, _ = part
        if not self.pretty or kind in ("leaf", "func", "cast"):
            return text
        if parent.startswith("bool:"):
            if kind.startswith("op:") or kind == "nulltest":
                return text
            if kind.startswith("bool:"):
                k, p = kind[5:], parent[5:]
                if (k in ("NOT", "AND") and p in ("AND", "OR")) or (k == "OR" and p == "OR"):
                    return text
            return f"({text})"
        if parent.startswith("op:") and kind.startswith("op:"):
            op, pop = kind[3:], parent[3:]
            if op in ("*", "/", "%") and pop in ("+", "-", "*", "/", "%"):
                return text
            if op in ("+", "-") and pop in ("+", "-"):
                return text
        return f"({text})"


def _ident(name: str) -> str:
    from pglast.stream import RawStream

    return RawStream()(ast.ColumnRef(fields=(ast.String(sval=name),)))
