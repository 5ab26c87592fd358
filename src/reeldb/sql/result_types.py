"""Result columns whose Postgres type DuckDB cannot tell apart: a ``halfvec`` or
``sparsevec`` is a FLOAT[n] to DuckDB like a ``vector``, a ``bit varying`` is a BIT like a
``bit``, a ``citext`` is a VARCHAR like a ``text``. A query's description says DuckDB's types; here the columns that are one of these
are renamed to the Postgres type (``HALFVEC``, ``SPARSEVEC``, ``VARBIT``), so the wire sends
that type's OID and format and a client decodes, say, a HalfVector.

A column is marked when the select list's item is a cast to the type, or names (directly or
through ``*``) a column of that type in the tables the statement can see, where no other
table has a column of that name of another type.
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .jsonb import is_jsonb
from .parse import name_of

MARKED = {"halfvec": "HALFVEC", "sparsevec": "SPARSEVEC", "varbit": "VARBIT", "vector_array": "VECTOR[]",
          "halfvec_array": "HALFVEC[]", "sparsevec_array": "SPARSEVEC[]", "citext": "CITEXT",
          "citext_array": "CITEXT[]", "jsonb": "JSONB", "jsonb_array": "JSONB[]",
          "regtype": "REGTYPE"}



def plan(stmt: ast.Node, kinds: dict[str, str | None]) -> list[str | None] | None:
    """Before the statement is rewritten: the kind each select-list item names (None: a
    ``*``, where the column names decide)."""
    while isinstance(stmt, ast.SelectStmt) and stmt.targetList is None and stmt.larg is not None:
        stmt = stmt.larg  # a UNION's columns are its first branch's
    if isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):  # RETURNING
        targets = list(stmt.returningClause.exprs or ()) if stmt.returningClause is not None else []
    else:
        targets = list(stmt.targetList or ()) if isinstance(stmt, ast.SelectStmt) else []
    if any(isinstance(t, ast.ResTarget) and isinstance(t.val, ast.ColumnRef) and isinstance(t.val.fields[-1], ast.A_Star)
           for t in targets):
        return None
    return [kind_of(t.val, kinds) if isinstance(t, ast.ResTarget) else None for t in targets]


def mark(planned: list[str | None] | None, description: list | None, kinds: dict[str, str | None]) -> list | None:
    """``description`` with the types of halfvec / sparsevec / varbit columns renamed."""
    if not description:
        return description
    out = []
    for i, d in enumerate(description):
        kind = kinds.get(d[0]) if planned is None else (planned[i] if i < len(planned) else None)
        shown = MARKED.get(kind or "")
        if shown is not None and _fits(shown, str(d[1]).upper()):
            out.append((d[0], shown, *d[2:]))
        else:
            out.append(d)
    return out


def kind_of(node: Any, kinds: dict[str, str | None]) -> str | None:
    """The kind (halfvec, sparsevec, varbit, citext, ...) an expression's value has, if known."""
    if isinstance(node, ast.TypeCast):
        name = name_of(node.typeName.names)
        if node.typeName.arrayBounds:
            return f"{name}_array" if len(node.typeName.arrayBounds) == 1 else None
        return name
    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        return kinds.get(node.fields[-1].sval)
    if isinstance(node, ast.FuncCall) and name_of(node.funcname) in ("pg_typeof", "to_regtype") \
            and len(node.args or ()) == 1:
        return "regtype"
    if isinstance(node, ast.FuncCall) and name_of(node.funcname) in ("avg", "sum") and node.args \
            and len(node.args) == 1:  # pgvector's aggregates keep the type
        return kind_of(node.args[0], kinds)
    if is_jsonb(node, kinds):  # sql/jsonb.py's operators and functions
        return "jsonb"
    if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.lexpr is not None \
            and name_of(node.name) in ("+", "-", "*"):  # pgvector's arithmetic: halfvec if either is
        sides = {kind_of(node.lexpr, kinds), kind_of(node.rexpr, kinds)}
        return "halfvec" if "halfvec" in sides else None
    if isinstance(node, ast.FuncCall) and name_of(node.funcname) == "array_agg" and node.args \
            and len(node.args) == 1 and kind_of(node.args[0], kinds) == "citext":
        return "citext_array"
    return None


def _fits(shown: str, duck: str) -> bool:
    """Is DuckDB's type of the column the one reeldb shows this type as?"""
    if shown == "VARBIT":
        return duck == "BIT"
    if shown == "REGTYPE":  # pg_typeof() and x::regtype, named in the select list (rewrite.py)
        return duck == "VARCHAR"
    if shown.startswith("JSONB"):
        return duck == "JSON" + shown[5:]
    if shown.startswith("CITEXT"):
        return duck == "VARCHAR" + shown[6:]
    depth = 2 if shown.endswith("[]") else 1
    return duck.startswith("FLOAT[") and duck.count("[") == depth
