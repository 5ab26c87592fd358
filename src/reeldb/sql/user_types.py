"""The branch's user types (enums, domains) and what a type name as a statement writes it
means: the column type CREATE TABLE gives a column, the cast target the rewriter resolves.

The types are objects of the branch (catalog/objects.py) that objects_ddl.py creates; here
they are only read, so the handlers, the rewriter and the catalog can all look them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pglast import ast

from .. import errors
from ..catalog import objects
from ..format.types import (
    VECTOR_KINDS,
    ColumnType,
    array_type,
    column_type,
    enum_type,
    vector_array_type,
)
from .extensions import require_type
from .names import type_name
from .parse import const_value, deparse, name_of

if TYPE_CHECKING:
    from .session import Session


def enum_types(s: Session) -> dict[str, list[str]]:
    """Enum type name -> labels, of the state the session sees."""
    return {n: d["labels"] for n, d in objects.named(s.catalog_objects(), objects.TYPE).items()
            if d.get("kind") == "enum"}


def domains(s: Session) -> dict[str, dict]:
    """Domain name -> definition, of the state the session sees."""
    return {n: d for n, d in objects.named(s.catalog_objects(), objects.TYPE).items() if d.get("kind") == "domain"}


def domain_of(s: Session | None, tn: ast.TypeName) -> tuple[str, dict] | None:
    """(name, definition) of the domain a type name names, or None."""
    if s is None or tn.typmods or tn.arrayBounds:
        return None
    names = tuple(p for p in tn.names if p.sval != "pg_catalog")
    try:
        name = type_name(s, names) if 1 <= len(names) <= 2 else None
    except errors.InvalidSchemaName:
        return None
    d = domains(s).get(name) if name is not None else None
    return None if d is None else (name, d)


def type_of(tn: ast.TypeName, s: Session | None = None) -> ColumnType:
    """A column's type; with ``s``, the branch's enum types too."""
    if s is not None and not tn.typmods:
        names = tuple(p for p in tn.names if p.sval != "pg_catalog")
        try:
            tname = type_name(s, names) if 1 <= len(names) <= 2 else None
        except errors.InvalidSchemaName:
            tname = None
        labels = enum_types(s).get(tname) if tname is not None else None
        dom = domain_of(s, tn)
        if dom is not None:
            return ColumnType.from_json(dom[1]["base"])
        if labels is not None:
            if tn.arrayBounds:
                raise errors.FeatureNotSupported("arrays of enum types are not supported")
            return enum_type(tname, labels)
    if tn.arrayBounds and len(tn.arrayBounds) == 1 and name_of(tn.names) in VECTOR_KINDS:
        return vector_array_type(name_of(tn.names), [const_value(m) for m in tn.typmods or ()])
    mods: list[Any] = []
    for m in tn.typmods or ():
        if isinstance(m, ast.A_Const):
            mods.append(m.val.ival if isinstance(m.val, ast.Integer) else m.val.sval if isinstance(m.val, ast.String)
                        else None)
        elif isinstance(m, ast.ColumnRef):
            mods.append(m.fields[-1].sval)
        else:
            raise errors.SyntaxError(f"invalid type modifier {deparse(m)}")
    name = name_of(tn.names)
    if name == "double" or (name == "float8"):
        name = "float8"
    if s is not None:
        require_type(s, name)
    if tn.arrayBounds:  # int[], text[][] (Postgres ignores the number of dimensions declared)
        return array_type(column_type(name, mods))
    return column_type(name, mods)
