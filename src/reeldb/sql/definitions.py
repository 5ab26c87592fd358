"""What ``pg_get_constraintdef`` and ``pg_get_indexdef`` show for the constraints and
indexes a table's schema stores (format/manifest.py): CHECK, FOREIGN KEY, btree indexes.

The statement handlers (constraints.py, foreign_keys.py, btree_indexes.py) store them; the
catalog (pgcatalog.py) prints them from here, so it reads what was stored and needs no
handler.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType
from pglast.stream import RawStream

from ..format.manifest import BtreeIndex, CheckConstraint, Column, ForeignKey, Schema, TableManifest
from .names import schema_of
from .parse import deparse, parse

DESC, NULLS_FIRST = 1, 2  # pg_index.indoption bits
ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}  # confupdtype / confdeltype


# -- CHECK ---------------------------------------------------------------------------------------
class _Unprintable(Exception):
    pass


_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_NUM_RANK = {**_INT_RANK, "numeric": 4, "real": 5, "double precision": 6}
_TEXT_FUNCS = {"lower": "text", "upper": "text", "btrim": "text", "ltrim": "text", "rtrim": "text",
               "length": "integer", "char_length": "integer", "octet_length": "integer"}


def check_def(check: CheckConstraint, schema: Schema, pretty: bool) -> str:
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
    """A name as Postgres prints it: quoted only where it must be."""
    return RawStream()(ast.ColumnRef(fields=(ast.String(sval=name),)))


# -- FOREIGN KEY ---------------------------------------------------------------------------------
def foreign_key_def(fk: ForeignKey, schema: Schema, ref_name: str, ref_schema: Schema) -> str:
    """pg_get_constraintdef of the constraint: ``FOREIGN KEY (a) REFERENCES p(id)`` and the
    actions that are not the default (``ref_name`` qualified when not in public)."""
    mine = ", ".join(_ident(schema.by_id(c).name) for c in fk.columns)
    theirs = ", ".join(_ident(ref_schema.by_id(c).name) for c in fk.ref_columns)
    sp, table = schema_of(ref_name)
    target = _ident(table) if sp is None else f"{_ident(sp)}.{_ident(table)}"
    out = f"FOREIGN KEY ({mine}) REFERENCES {target}({theirs})"
    if fk.on_update != "a":
        out += f" ON UPDATE {ACTIONS[fk.on_update]}"
    if fk.on_delete != "a":
        out += f" ON DELETE {ACTIONS[fk.on_delete]}"
    return out


# -- btree indexes -------------------------------------------------------------------------------
def index_def(ix: BtreeIndex, schema_name: str, table: str, tm: TableManifest) -> str:
    """pg_get_indexdef: ``CREATE INDEX ix ON public.t USING btree (a, b DESC) INCLUDE (c)``."""
    cols = []
    for cid, opt in zip(ix.columns, ix.options):
        text = _ident(tm.schema.by_id(cid).name)
        if opt & DESC:
            text += " DESC" if opt & NULLS_FIRST else " DESC NULLS LAST"
        elif opt & NULLS_FIRST:
            text += " NULLS FIRST"
        cols.append(text)
    out = f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {_ident(ix.name)} ON {_ident(schema_name)}.{_ident(table)} USING btree ({', '.join(cols)})"
    if ix.include:
        out += f" INCLUDE ({', '.join(_ident(tm.schema.by_id(c).name) for c in ix.include)})"
    return out
