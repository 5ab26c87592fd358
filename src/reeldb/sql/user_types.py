"""The branch's user types (enums, domains) and what a type name as a statement writes it
means: the column type CREATE TABLE gives a column, the cast target the rewriter resolves.

The types are objects of the branch (catalog/objects.py) that objects_ddl.py creates; here
they are only read, so the handlers, the rewriter and the catalog can all look them up.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from .. import errors
from ..catalog import objects
from ..format.arrays import parse_array_literal
from ..format.types import (
    PARQUET,
    VECTOR_KINDS,
    ColumnType,
    array_type,
    column_type,
    enum_type,
    vector_array_type,
)
from ..types import records
from .extensions import require_type
from .names import schema_of, stable_oid, type_name
from .parse import const_value, deparse, name_of, parse

if TYPE_CHECKING:
    from .session import Session


def enum_types(s: Session) -> dict[str, list[str]]:
    """Enum type name -> labels, of the state the session sees."""
    return {n: d["labels"] for n, d in objects.named(s.catalog_objects(), objects.TYPE).items()
            if d.get("kind") == "enum"}


def domains(s: Session) -> dict[str, dict]:
    """Domain name -> definition, of the state the session sees."""
    return {n: d for n, d in objects.named(s.catalog_objects(), objects.TYPE).items() if d.get("kind") == "domain"}


def _branch_type_name(s: Session | None, tn: ast.TypeName) -> str | None:
    """The branch type name a plain type name (no modifiers, no array) would be, or None."""
    if s is None or tn.typmods or tn.arrayBounds or tn.names is None:
        return None
    names = tuple(p for p in tn.names if p.sval != "pg_catalog")
    try:
        return type_name(s, names) if 1 <= len(names) <= 2 else None
    except errors.InvalidSchemaName:
        return None


def domain_of(s: Session | None, tn: ast.TypeName) -> tuple[str, dict] | None:
    """(name, definition) of the domain a type name names, or None."""
    name = _branch_type_name(s, tn)
    d = domains(s).get(name) if name is not None and s is not None else None
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
        if tname is not None and tname in composites(s.catalog_objects()):
            raise errors.FeatureNotSupported(
                f"columns of composite type {regtype_text(tname)} are not supported: give each field a column of "
                "its own, or use a JSONB column")
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


class UserTypeParameter(str):
    """A parameter the client sent typed with an enum or composite type's OID (its text):
    the statement reads it as a value of that type, as PostgreSQL binds it."""

    oid: int

    def __new__(cls, text: str, oid: int) -> UserTypeParameter:
        obj = super().__new__(cls, text)
        obj.oid = oid
        return obj


def typed_parameter(rw: Any, node: ast.ParamRef) -> ast.Node | None:
    """``$n`` sent typed with an enum or composite type's OID, as a value of that type (a bad
    label or record text is 22P02); None for any other parameter."""
    oid = param_oid(rw._param(node))
    if oid is None:
        return None
    objs = rw.pg.s.catalog_objects()
    for name, labels in enum_types(rw.pg.s).items():
        if stable_oid("type", name) == oid:
            return rw._as_enum(node, enum_type(name, labels))
    for name in composites(objs):
        if stable_oid("type", name) == oid:
            return _composite_value(rw, node, name)
    raise errors.UndefinedObject(f"type with OID {oid} does not exist (parameter ${node.number})")


def param_oid(value: Any) -> int | None:
    """The user type a parameter was sent typed with (an enum's label or a composite's record
    text: UserTypeParameter; a binary record: RecordFields), or None."""
    if isinstance(value, UserTypeParameter) or (isinstance(value, records.RecordFields) and value.oid):
        return value.oid
    return None


def static_type_name(rw: Any, arg: ast.Node) -> str | None:
    """pg_typeof's answer for a cast to a composite type or an enum's array, or a parameter
    typed with a user type's OID; None for anything else."""
    if isinstance(arg, ast.RowExpr):
        return "record"
    if isinstance(arg, ast.ParamRef):
        oid = param_oid(rw._param(arg))
        for name in [*enum_types(rw.pg.s), *composites(rw.pg.s.catalog_objects())] if oid is not None else []:
            if stable_oid("type", name) == oid:
                return regtype_text(name)
        return None
    if not isinstance(arg, ast.TypeCast) or arg.typeName.typmods:
        return None
    if len(arg.typeName.arrayBounds or ()) == 1:
        ctype = rw._enum_type(arg.typeName.names)
        if ctype is not None:
            return regtype_text(str(ctype.dtype)) + "[]"
        name = composite_of(rw.pg.s, ast.TypeName(names=arg.typeName.names, typemod=-1))
        return None if name is None else regtype_text(name) + "[]"
    name = composite_of(rw.pg.s, arg.typeName)
    return None if name is None else regtype_text(name)


# -- names as PostgreSQL prints them ------------------------------------------------------------
_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_$]*")
_QUOTED_KEYWORDS = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_identifier: a name as SQL must spell it (``"CamelCase"``, ``"a-b"``,
    ``"order"``), bare where it reads back the same."""
    if _PLAIN_IDENT.fullmatch(name) and name not in _QUOTED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def regtype_text(name: str) -> str:
    """A user type's name as ``::regtype`` / format_type print it: quoted where needed,
    qualified by its schema unless it is ``public``'s."""
    schema, local = schema_of(name)
    return quote_ident(local) if schema is None else f"{quote_ident(schema)}.{quote_ident(local)}"


def parse_type_text(text: str) -> tuple[tuple[str, ...], bool] | None:
    """A type name as text (``to_regtype('Mood')``, ``'"CamelCase"[]'::regtype``) as SQL reads
    it: (its name parts, folded or kept as quoted; whether it names the array type); None
    where the text is no type name."""
    try:
        stmts = parse(f"SELECT NULL::{text}")
    except errors.Error:
        return None
    if len(stmts) != 1 or not isinstance(stmts[0].stmt, ast.SelectStmt) or len(stmts[0].stmt.targetList or ()) != 1:
        return None
    val = stmts[0].stmt.targetList[0].val
    if not isinstance(val, ast.TypeCast) or not isinstance(val.arg, ast.A_Const) or not val.arg.isnull \
            or val.typeName.typmods or len(val.typeName.arrayBounds or ()) > 1 or val.typeName.setof:
        return None
    parts = tuple(p.sval for p in val.typeName.names if p.sval != "pg_catalog")
    return (parts, bool(val.typeName.arrayBounds)) if parts else None


# -- composite types ----------------------------------------------------------------------------
def composites(objs: dict) -> dict[str, list[dict]]:
    """Composite type name -> its fields (``{"name"}`` and ``"type"`` a column type's JSON,
    ``"enum"`` or ``"composite"`` a user type's name), of a state's objects."""
    return {n: d["fields"] for n, d in objects.named(objs, objects.TYPE).items() if d.get("kind") == "composite"}


def composite_of(s: Session, tn: ast.TypeName) -> str | None:
    """The name of the branch's composite type a type name names (no array), or None."""
    name = _branch_type_name(s, tn)
    return name if name is not None and name in composites(s.catalog_objects()) else None


def user_array_oid(name: str) -> int:
    """The OID of the array type of the user type ``name`` (an enum's, a composite type's)."""
    return stable_oid("type[]", name)


def composite_oids(name: str) -> tuple[int, int]:
    """(OID, array OID) of the composite type ``name``, as the catalog shows them."""
    return stable_oid("type", name), user_array_oid(name)


MAX_LEAF_FIELDS = 1600  # a composite value's fields, nested ones' counted: its STRUCT has them all


def composite_shape(objs: dict, name: str, memo: dict[str, tuple[int, int]] | None = None) -> tuple[int, int]:
    """(how deep composite type ``name`` nests, 1 where no field is a composite type; how many
    fields its value holds, those of nested composite types counted)."""
    memo = {} if memo is None else memo
    if name not in memo:
        depth, leaves = 1, 0
        for f in composites(objs).get(name, []):
            if "composite" in f:
                d, n = composite_shape(objs, f["composite"], memo)
                depth, leaves = max(depth, d + 1), leaves + n
            else:
                leaves += 1
        memo[name] = (depth, leaves)
    return memo[name]


def field_column_type(objs: dict, field: dict) -> ColumnType:
    """A composite type's field's type (not a composite type's): an enum's with its labels now."""
    if "enum" in field:
        return enum_type(field["enum"], objects.named(objs, objects.TYPE)[field["enum"]]["labels"])
    return ColumnType.from_json(field["type"])


def _field_duck(t: ColumnType) -> str:
    if t.is_enum:
        return t.duck_enum()
    if t.kind == "bytea":
        return "BLOB"
    return t.duck()


# kinds a composite type's field may have: values of a composite type live in queries only
# (no table column has one), as DuckDB values of these
FIELD_STORAGE = frozenset((PARQUET,))


def field_type(s: Session, tn: ast.TypeName, type_name_text: str) -> dict:
    """A composite field's type as stored: a built-in or enum type's column type, or another
    composite type's name; 0A000 for a type a field cannot have."""
    inner = composite_of(s, tn)
    if inner is not None:
        depth, _ = composite_shape(s.catalog_objects(), inner)
        if depth >= records.MAX_DEPTH:
            raise errors.FeatureNotSupported(
                f"composite types nested more than {records.MAX_DEPTH} deep are not supported ({type_name_text})")
        return {"composite": inner}
    t = type_of(tn, s)
    if t.is_enum:  # by name: ALTER TYPE ... ADD VALUE reaches the field too
        return {"enum": str(t.dtype)}
    if t.serial or (t.storage not in FIELD_STORAGE and t.kind != "bytea"):
        raise errors.FeatureNotSupported(f"a composite type field of type {type_name_text} is not supported")
    return {"type": t.to_json()}


def rewrite_cast(rw: Any, node: ast.TypeCast) -> ast.Node | None:
    """``x::composite`` and ``x::enum[]`` for the rewriter (sql/rewrite.py), or None for any
    other cast. A composite value is a DuckDB STRUCT of its fields, each cast to its type: from
    ``ROW(...)``, or from record text (a literal or a parameter: ``'(1,"a b",)'::t``);
    another expression is refused (0A000)."""
    s = rw.pg.s
    tn = node.typeName
    if tn.names is not None and name_of(tn.names) in _TEXT_TYPES and _is_record(rw, node.arg):
        field = records.RECORD_TEXT_FIELDS.get(name_of(tn.names))
        if getattr(rw, "_record_text_casts", {}).get(id(node)) is node and not tn.arrayBounds and not tn.typmods \
                and field is not None:  # in a select list: the record, sent as its text (types/records.py)
            return ast.FuncCall(funcname=(ast.String(sval="struct_pack"),), args=(
                ast.NamedArgExpr(name=field, arg=rw(node.arg), argnumber=-1),))
        raise errors.FeatureNotSupported(
            f"a cast of a record to {name_of(tn.names)} is not supported but as an item of a select list: select "
            "the record itself (it goes out in PostgreSQL's text form), or its fields")
    if tn.typmods or tn.names is None:
        return None
    if tn.arrayBounds:
        if len(tn.arrayBounds) != 1:
            return None
        ctype = rw._enum_type(tn.names)
        if ctype is not None:
            return _enum_array(rw, node.arg, ctype)
        name = composite_of(s, ast.TypeName(names=tn.names, typemod=-1))
        return None if name is None else _composite_array(rw, node.arg, name)
    name = composite_of(s, tn)
    if name is None:
        return None
    return _composite_value(rw, node.arg, name)


_TEXT_TYPES = frozenset(("text", "varchar", "bpchar", "name", "char", "citext"))


def note_select_list(rw: Any, node: ast.Node) -> None:
    """Called with the first node the rewriter visits: where it is a plain SELECT, the casts
    to text that are its select list's items, the only place a record's text form can be
    given (as the result column's value, by the wire) without anything computing on it
    (a subquery's, an INSERT's, a sorted or grouped one's are not)."""
    seen: dict[int, ast.Node] = {}  # by identity, the nodes held so that no other node takes their ids
    rw._record_text_casts = seen
    if not isinstance(node, ast.SelectStmt) or node.sortClause or node.distinctClause or node.groupClause \
            or node.havingClause or node.windowClause or node.larg is not None or node.intoClause is not None:
        return
    seen.update((id(t.val), t.val) for t in node.targetList or ()
                if isinstance(t, ast.ResTarget) and isinstance(t.val, ast.TypeCast | ast.RowExpr))


def anonymous_row(rw: Any, node: ast.RowExpr) -> ast.Node | None:
    """A row that is an item of a plain SELECT's list and has untyped literal fields
    (``row('a', NULL, 1)``): PostgreSQL types those fields unknown, and so does the wire when
    the field is named so (types/records.py); None for any other row."""
    if getattr(rw, "_record_text_casts", {}).get(id(node)) is not node:
        return None
    untyped = [isinstance(a, ast.A_Const) and (a.isnull or isinstance(a.val, ast.String)) for a in node.args or ()]
    if not any(untyped):
        return None
    args = tuple(ast.NamedArgExpr(name=f"{records.UNKNOWN_FIELD_PREFIX if u else '$reeldb.field:'}{i}",
                                  arg=ast.TypeCast(arg=a, typeName=_duck_type_name("VARCHAR")) if u else rw(a),
                                  argnumber=-1)
                 for i, (a, u) in enumerate(zip(node.args, untyped, strict=True)))
    return ast.FuncCall(funcname=(ast.String(sval="struct_pack"),), args=args)


def _is_record(rw: Any, node: ast.Node) -> bool:
    """Is ``node`` a row or a composite type's value (DuckDB's text of its STRUCT is not
    PostgreSQL's record text)?"""
    if isinstance(node, ast.RowExpr):
        return True
    if isinstance(node, ast.TypeCast) and node.typeName.names is not None:
        return composite_of(rw.pg.s, ast.TypeName(names=node.typeName.names, typemod=-1)) is not None \
            and not node.typeName.typmods
    if isinstance(node, ast.ParamRef):
        return param_oid(rw._param(node)) in {stable_oid("type", n) for n in composites(rw.pg.s.catalog_objects())}
    return False


def _enum_array(rw: Any, arg: ast.Node, ctype: ColumnType) -> ast.Node:
    """``x::enum[]``: an array literal or parameter is checked label by label here (22P02);
    another expression is cast by DuckDB, which refuses a bad label."""
    value = rw._constant(arg)
    if isinstance(value, str):
        try:
            value = parse_array_literal(value)
        except ValueError:
            raise errors.InvalidTextRepresentation(f'malformed array literal: "{value}"') from None
    typ = ast.TypeName(names=(ast.String(sval="enum"),), typemod=-1, arrayBounds=(ast.Integer(ival=-1),),
                       typmods=tuple(ast.A_Const(val=ast.String(sval=lab)) for lab in ctype.labels or ()))
    ctype.duck_enum()  # the wire then sends the result with the array type's OID
    if not isinstance(value, list):
        return ast.TypeCast(arg=rw(arg), typeName=typ)
    if any(isinstance(x, list) for x in value):
        raise errors.FeatureNotSupported(f"arrays of enum type {ctype.dtype} of more than one dimension")
    for x in value:
        if x is not None and x not in (ctype.labels or ()):
            raise errors.InvalidTextRepresentation(f'invalid input value for enum {ctype.dtype}: "{x}"')
    items = tuple(ast.A_Const(isnull=True) if x is None else ast.A_Const(val=ast.String(sval=str(x))) for x in value)
    varchar = ast.TypeName(names=(ast.String(sval="varchar"),), typemod=-1, arrayBounds=(ast.Integer(ival=-1),))
    return ast.TypeCast(arg=ast.TypeCast(arg=ast.A_ArrayExpr(elements=items), typeName=varchar), typeName=typ)


def _composite_array(rw: Any, arg: ast.Node, name: str) -> ast.Node:
    """``x::composite[]``: ARRAY[...] of rows, or an array literal or parameter of record
    texts, element by element; another expression is refused (0A000)."""
    if isinstance(arg, ast.A_ArrayExpr):
        items = list(arg.elements or ())
    else:
        value = rw._constant(arg)
        if isinstance(value, str):
            try:
                value = parse_array_literal(value)
            except ValueError:
                raise errors.InvalidTextRepresentation(f'malformed array literal: "{value}"') from None
        if not isinstance(value, list) or any(isinstance(x, list) for x in value):
            raise errors.FeatureNotSupported(
                f"a cast of this expression to {regtype_text(name)}[] is not supported: cast ARRAY[...] or a "
                "one-dimensional array literal")
        items = [ast.A_Const(isnull=True) if x is None else ast.A_Const(val=ast.String(sval=str(x))) for x in value]
    if not items:  # a one-element array of the type, sliced empty: the empty array keeps the type
        one = ast.A_ArrayExpr(elements=(_composite_value(rw, ast.A_Const(isnull=True), name),))
        return ast.A_Indirection(arg=one, indirection=(ast.A_Indices(
            is_slice=True, lidx=ast.A_Const(val=ast.Integer(ival=1)), uidx=ast.A_Const(val=ast.Integer(ival=0))),))
    return ast.A_ArrayExpr(elements=tuple(_composite_value(rw, x, name) for x in items))


class _Fields:
    """A binary record's fields (records.RecordFields) standing where a ROW(...) could."""

    def __init__(self, values: list[Any]):
        self.values = values


def _composite_value(rw: Any, arg: Any, name: str) -> ast.Node:
    s = rw.pg.s
    objs = s.catalog_objects()
    fields = composites(objs)[name]
    shown = regtype_text(name)
    if not fields:
        raise errors.FeatureNotSupported(f"values of composite type {shown}, which has no fields, are not supported")
    if isinstance(arg, ast.TypeCast) and composite_of(s, arg.typeName) == name:
        return rw(arg)
    given = arg.values if isinstance(arg, _Fields) else rw._constant(arg)
    if isinstance(given, list) and len(given) != len(fields):
        raise errors.ProgrammingError(f"wrong number of columns in a binary record of composite type {shown}",
                                      sqlstate="22P03")
    if isinstance(arg, ast.RowExpr):
        items: list[Any] = list(arg.args or ())
    elif isinstance(arg, _Fields) or isinstance(rw._constant(arg), records.RecordFields):
        values = arg.values if isinstance(arg, _Fields) else rw._constant(arg)
        items = [ast.A_Const(isnull=True) if v is None else _Fields(v) if isinstance(v, list)
                 else ast.A_Const(val=ast.String(sval=records.field_text(v))) for v in values]
    else:
        value = rw._constant(arg)
        if isinstance(arg, ast.A_Const) and arg.isnull or (isinstance(arg, ast.ParamRef) and value is None):
            # NULL of the type: CASE's result type is the STRUCT of its (never taken) branch
            typed = _composite_value(rw, ast.RowExpr(args=tuple(ast.A_Const(isnull=True) for _ in fields)), name)
            return ast.CaseExpr(args=(ast.CaseWhen(expr=ast.A_Const(isnull=True), result=typed),))
        if not isinstance(value, str):
            raise errors.FeatureNotSupported(
                f"a cast of this expression to composite type {shown} is not supported: cast ROW(...) or record "
                "text")
        texts = records.parse_record(value)
        if len(texts) != len(fields):
            raise errors.InvalidTextRepresentation(
                f'malformed record literal: "{value}" (too {"few" if len(texts) < len(fields) else "many"} columns)')
        items = [ast.A_Const(isnull=True) if t is None else ast.A_Const(val=ast.String(sval=t)) for t in texts]
    if len(items) != len(fields):
        raise errors.ProgrammingError(
            f"cannot cast type record to {shown}: input has too {'few' if len(items) < len(fields) else 'many'} "
            "columns", sqlstate="42846")
    args = []
    for f, item in zip(fields, items, strict=True):
        if "composite" in f:
            value_node = _composite_value(rw, item, f["composite"])
        else:
            if isinstance(item, _Fields):
                raise errors.ProgrammingError(f"a binary record's field {f['name']} of composite type {shown} is a "
                                              "record, not a value of its type", sqlstate="22P03")
            t = field_column_type(objs, f)
            pg_type = _pg_type_name(t)
            value_node = rw(ast.TypeCast(arg=item, typeName=pg_type))
            if not t.is_enum:  # exactly the field's DuckDB type, so the STRUCT is the type's
                value_node = ast.TypeCast(arg=value_node, typeName=_duck_type_name(_field_duck(t)))
        args.append(ast.NamedArgExpr(name=f["name"], arg=value_node, argnumber=-1))
    # the type's marker: the wire knows the STRUCT as this type's by it (types/records.py)
    args.append(ast.NamedArgExpr(name=records.marker(*composite_oids(name)), argnumber=-1,
                                 arg=ast.TypeCast(arg=ast.A_Const(isnull=True), typeName=_duck_type_name("BOOLEAN"))))
    return ast.FuncCall(funcname=(ast.String(sval="struct_pack"),), args=tuple(args))


def _pg_type_name(t: ColumnType) -> ast.TypeName:
    if t.is_enum:
        return ast.TypeName(names=tuple(ast.String(sval=p) for p in str(t.dtype).split(".")), typemod=-1)
    tn = parse(f"SELECT NULL::{t.sql()}")[0].stmt.targetList[0].val.typeName
    tn.location = None
    return tn


def _duck_type_name(duck: str) -> ast.TypeName:
    """A DuckDB type (not a STRUCT or ENUM) as a type name a statement can cast to."""
    text = {"FLOAT": "REAL", "FLOAT[]": "REAL[]"}.get(duck, duck)
    tn = parse(f"SELECT NULL::{text}")[0].stmt.targetList[0].val.typeName
    tn.names = tuple(p for p in tn.names if p.sval != "pg_catalog")
    tn.location = None
    return tn
