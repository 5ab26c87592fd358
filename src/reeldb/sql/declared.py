"""Parameters a client declared of a type that reeldb keeps as text (types/params.py's
``TypedText``) are of that type in the statement, as in PostgreSQL. A date, time or
interval is cast wherever it stands (``$1 + 1`` of a date is a date, not text); a json or
jsonb where its type shows: ``SELECT $1`` answers a json column and ``pg_typeof($1)`` says
jsonb (operators and functions take it as they take any JSON text: sql/jsonb.py).
Declared numbers keep their type when they are bound (types/params.py).
"""

from __future__ import annotations

from typing import Any

from pglast import ast

from ..types.params import TEXT_TYPED, TypedText
from .parse import cast, name_of, transform, walk

_JSON = ("json", "jsonb")


def type_declared(stmt: ast.Node, params: list[Any]) -> ast.Node:
    """``stmt`` with the ``$n`` of declared text-kept types cast to them (see above)."""
    declared = {i + 1: TEXT_TYPED[v.pg_oid] for i, v in enumerate(params) if isinstance(v, TypedText)}
    if not declared:
        return stmt
    for node in walk(stmt):
        if isinstance(node, ast.ResTarget) and isinstance(node.val, ast.ParamRef) \
                and declared.get(node.val.number) in _JSON:
            node.val = cast(node.val, declared[node.val.number])
        elif isinstance(node, ast.FuncCall) and name_of(node.funcname) == "pg_typeof" and len(node.args or ()) == 1 \
                and isinstance(node.args[0], ast.ParamRef) and declared.get(node.args[0].number) in _JSON:
            node.args = (cast(node.args[0], declared[node.args[0].number]),)
    already = {id(n.arg) for n in walk(stmt) if isinstance(n, ast.TypeCast)}

    def visit(node: Any) -> Any:
        if isinstance(node, ast.ParamRef) and id(node) not in already \
                and declared.get(node.number) not in (None, *_JSON):
            return cast(ast.ParamRef(number=node.number), declared[node.number])
        return None

    return transform(stmt, visit)
