"""Parameters a client declared ``json`` or ``jsonb`` are of that type where the type shows,
as in PostgreSQL: ``SELECT $1`` answers a json column and ``pg_typeof($1)`` says jsonb.
(Operators and functions take such a parameter as they take any JSON text: sql/jsonb.py.
Declared numbers keep their type when they are bound: types/params.py.)"""

from __future__ import annotations

from typing import Any

from pglast import ast

from ..types.oids import JSONB
from ..types.params import JsonParameter
from .parse import cast, name_of, walk


def type_declared_json(stmt: ast.Node, params: list[Any]) -> ast.Node:
    """``stmt`` with each ``$n`` whose value the client typed json/jsonb cast to it, where it
    is a select-list item or ``pg_typeof``'s argument."""
    declared = {i + 1: ("jsonb" if v.pg_oid == JSONB else "json") for i, v in enumerate(params)
                if isinstance(v, JsonParameter)}
    if not declared:
        return stmt
    for node in walk(stmt):
        if isinstance(node, ast.ResTarget) and isinstance(node.val, ast.ParamRef) \
                and node.val.number in declared:
            node.val = cast(node.val, declared[node.val.number])
        elif isinstance(node, ast.FuncCall) and name_of(node.funcname) == "pg_typeof" and len(node.args or ()) == 1 \
                and isinstance(node.args[0], ast.ParamRef) and node.args[0].number in declared:
            node.args = (cast(node.args[0], declared[node.args[0].number]),)
    return stmt
