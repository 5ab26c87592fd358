"""Expression keys of vector indexes, as pgvector's users write them
(``USING hnsw ((binary_quantize(embedding)::bit(3)) bit_hamming_ops)``,
``USING hnsw ((embedding::halfvec(3)) halfvec_l2_ops)``): which expressions are accepted,
the type each gives, and how PostgreSQL prints it.

reeldb records such an index (the catalog lists it, DROP INDEX and REINDEX find it) but
builds nothing: a query ordered by the expression scans exactly, the answer an index
would approximate. Accepted: one vector, halfvec, sparsevec or bit column under
``binary_quantize`` and casts among those types, all immutable, so the key of a row
never changes. A cast that PostgreSQL would refuse on every row (a vector of
3 dimensions to ``vector(4)``) is refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.stream import RawStream

from .. import errors
from .. import types as pt
from ..format.types import ColumnType

KINDS = ("vector", "halfvec", "sparsevec", "bit")
# pgvector 0.8's operator classes by access method; each indexes the type it starts with
OPCLASSES = {
    "hnsw": frozenset(f"{k}_{m}_ops" for k in ("vector", "halfvec", "sparsevec") for m in ("l2", "ip", "cosine", "l1"))
    | {"bit_hamming_ops", "bit_jaccard_ops"},
    "ivfflat": frozenset(f"{k}_{m}_ops" for k in ("vector", "halfvec") for m in ("l2", "ip", "cosine"))
    | {"bit_hamming_ops"},
}
_CASTS = {"vector": {"vector", "halfvec", "sparsevec"}, "halfvec": {"vector", "halfvec", "sparsevec"},
          "sparsevec": {"vector", "halfvec", "sparsevec"}, "bit": {"bit"}}
_FUNCTIONS = {"binary_quantize": ("vector", "halfvec")}  # name -> the kinds it takes
_UNSUPPORTED = ("reeldb indexes expressions of one vector, halfvec, sparsevec or bit column under "
                "binary_quantize() and casts among those types")


@dataclass(frozen=True)
class Key:
    """An index key expression, analysed."""

    node: Any  # the pglast node, or None for the bare column
    column: str  # the one column it reads
    kind: str  # the type of its value: vector | halfvec | sparsevec | bit
    size: int  # dimensions (bit: length) of every value
    typmod: int  # as PostgreSQL's catalog gives the expression's type (-1: none)
    name: str  # the index column's name, as PostgreSQL chooses it (FigureIndexColname)

    @property
    def type_oid(self) -> int:
        return pt.BY_NAME[self.kind].oid

    def text(self, column: str | None = None, pretty: bool = False) -> str:
        """How pg_get_indexdef prints the expression (``column``: the column's name now)."""
        return _print(self.node, column or self.column, pretty)

    def index_column(self, column: str | None = None, pretty: bool = False) -> str:
        """The key as it stands in CREATE INDEX's parentheses: a function call as is,
        anything else parenthesized (ruleutils' looks_like_function)."""
        text = self.text(column, pretty)
        return text if self.node is None or isinstance(self.node, ast.FuncCall) else f"({text})"


def analyse(node: Any, column_type: Callable[[str], ColumnType | None]) -> Key:
    """The key ``node`` of a CREATE INDEX, with ``column_type`` giving a column's type by
    name (None: no such column). A cast that changes nothing leaves the bare column, as
    PostgreSQL does (``node`` None: an ordinary column index)."""
    if isinstance(node, ast.ColumnRef):
        fields = node.fields or ()
        if len(fields) != 1 or not isinstance(fields[0], ast.String):
            raise errors.FeatureNotSupported(f"{_UNSUPPORTED}: name the column without its table")
        name = fields[0].sval
        ct = column_type(name)
        if ct is None:
            raise errors.UndefinedColumn(f'column "{name}" does not exist')
        if ct.kind not in KINDS:
            raise errors.FeatureNotSupported(f'{_UNSUPPORTED}; column "{name}" has type {ct.sql()}')
        size = pt.column_oid(ct)[1]
        return Key(None, name, ct.kind, size, size, name)
    if isinstance(node, ast.FuncCall):
        fname = node.funcname[-1].sval.lower()
        if fname not in _FUNCTIONS or len(node.args or ()) != 1 or node.agg_star or node.agg_distinct \
                or node.over is not None or node.agg_order or node.agg_filter is not None or node.func_variadic:
            raise errors.FeatureNotSupported(f"{_UNSUPPORTED}, not {fname}()")
        inner = analyse(node.args[0], column_type)
        if inner.kind not in _FUNCTIONS[fname]:
            raise errors.UndefinedFunction(f"function {fname}({inner.kind}) does not exist")
        kind = "bit"  # binary_quantize: one bit per dimension
        return Key(ast.FuncCall(funcname=(ast.String(sval=fname),), args=(inner.node or _column(inner.column),),
                                funcformat=node.funcformat),
                   inner.column, kind, inner.size, -1, fname)
    if isinstance(node, ast.TypeCast):
        inner = analyse(node.arg, column_type)
        target = node.typeName.names[-1].sval.lower()
        if node.typeName.arrayBounds or target not in KINDS:
            raise errors.FeatureNotSupported(f"{_UNSUPPORTED}, not a cast to {target}")
        if target not in _CASTS[inner.kind]:
            raise errors.Error(f"cannot cast type {inner.kind} to {target}", sqlstate="42846")
        mods = node.typeName.typmods or ()
        if len(mods) > 1 or any(not isinstance(m, ast.A_Const) or not isinstance(m.val, ast.Integer)
                                for m in mods):
            raise errors.InvalidParameterValue(f"type {target} takes one integer modifier")
        n = mods[0].val.ival if mods else (1 if target == "bit" else None)  # bare bit is bit(1)
        if n is not None and n < 1:
            raise errors.InvalidParameterValue(f"dimensions for type {target} must be at least 1")
        if target != "bit" and n is not None and n != inner.size:
            raise errors.DataError(f"expected {n} dimensions, not {inner.size}")
        if target == inner.kind and (n is None or n == inner.typmod):
            return inner  # no coercion: PostgreSQL drops the cast
        typmod = n if n is not None else -1
        cast = ast.TypeCast(arg=inner.node or _column(inner.column),
                            typeName=ast.TypeName(names=(ast.String(sval=target),),
                                                  typmods=() if n is None else (ast.A_Const(val=ast.Integer(ival=n)),),
                                                  typemod=-1))
        return Key(cast, inner.column, target, n if target == "bit" and n is not None else inner.size, typmod,
                   inner.name)
    raise errors.FeatureNotSupported(_UNSUPPORTED)


def parse_key(text: str, column_type: Callable[[str], ColumnType | None]) -> Key:
    """A stored key expression (``Key.text()``), analysed again."""
    from .parse import parse

    stmt = parse(f"SELECT {text}")[0].stmt
    return analyse(stmt.targetList[0].val, column_type)


def _column(name: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(ast.String(sval=name),))


def _print(node: Any, column: str, pretty: bool) -> str:
    """ruleutils' printing of the accepted expressions: a cast's operand in parentheses
    (none when pretty), type names with their modifier."""
    if node is None or isinstance(node, ast.ColumnRef):
        return RawStream()(_column(column))
    if isinstance(node, ast.FuncCall):
        return f"{node.funcname[-1].sval}({_print(node.args[0], column, pretty)})"
    assert isinstance(node, ast.TypeCast)
    mods = node.typeName.typmods or ()
    target = node.typeName.names[-1].sval + (f"({mods[0].val.ival})" if mods else "")
    inner = _print(node.arg, column, pretty)
    return f"{inner}::{target}" if pretty else f"({inner})::{target}"
