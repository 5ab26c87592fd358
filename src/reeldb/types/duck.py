"""DuckDB's types as PostgreSQL's: the OID a result column is sent as, and ``pg_typeof``.

The SQL layer names a column, a cast or a constant from what the statement says, since
DuckDB's types cannot tell apart what PostgreSQL's can (vector / halfvec / sparsevec are all
``FLOAT[n]``; json / jsonb are both ``JSON``; bit / bit varying are ``BIT``): it marks such
result columns with PostgreSQL's name (sql/result_types.py), which the registry knows as a
DuckDB name of the type (``JSONB``, ``HALFVEC``). ``pg_type_name`` names any other
expression, and refuses (0A000) a type that stands for more than one."""

from __future__ import annotations

import re

import pyarrow as pa

from .. import errors
from ..format.blobs import is_blob_struct
from ..format.types import VECTOR_KINDS
from .oids import BYTEA, CHAR, CHAR_ARRAY, NUMERIC, NUMERIC_ARRAY, TEXT, TEXT_ARRAY, VARCHAR, VECTOR
from .registry import ARRAY_OF, BY_DUCK, BY_DUCK_EXACT, BY_OID


def result_type(duck: str, arrow_type: pa.DataType) -> tuple[int, int]:
    """(OID, typmod) of a result column of DuckDB type ``duck``; text for anything without
    a PostgreSQL peer. Enum columns of CREATE TYPE ... AS ENUM are the caller's (their OIDs
    are the catalog's); any other ENUM is the catalog's one-byte ``"char"``."""
    if is_blob_struct(arrow_type):
        return BYTEA, -1
    d = duck.upper()
    if d == "TIME WITH TIME ZONE[]":  # DuckDB's Arrow export keeps the clock time, drops the offset
        raise errors.FeatureNotSupported("results of type time with time zone[] are not supported: "
                                         "cast the column to text")
    if d.startswith("MAP(VARCHAR, VARCHAR)["):
        raise errors.FeatureNotSupported("results of type hstore[] are not supported: unnest the array, or cast "
                                         "each element to text")
    if d.startswith("ENUM("):  # the catalog's one-byte "char" columns (user tables have no other enums)
        return (CHAR_ARRAY if d.endswith(")[]") else CHAR), -1
    info = BY_DUCK.get(d)
    if info is None and d.endswith("[]") and d[:-2] in BY_DUCK and BY_DUCK[d[:-2]].array:  # a multirange[]: [ inside
        info = BY_OID[BY_DUCK[d[:-2]].array]
    if info is not None:
        if info.kind in VECTOR_KINDS:  # a marked halfvec / sparsevec: its dimension is its typmod
            return info.oid, arrow_type.list_size if pa.types.is_fixed_size_list(arrow_type) else -1
        return info.oid, -1
    if d.startswith("DECIMAL"):  # numeric(p,s), or an array of it (numeric(5,2)[]: its element's typmod)
        p, s = (int(x) for x in d[8:d.index(")")].split(","))
        return NUMERIC if d.endswith(")") else NUMERIC_ARRAY, ((p << 16) | s) + 4
    if d.startswith("VARCHAR") and not d.endswith("]"):
        return VARCHAR, -1
    if d.endswith("]"):
        base = d[: d.index("[")]
        dims = d.count("[")
        if base == "FLOAT" and dims == 1 and pa.types.is_fixed_size_list(arrow_type):
            return VECTOR, arrow_type.list_size
        element = BY_DUCK.get(base)
        if element is None or element.kind in VECTOR_KINDS:  # FLOAT[n][]: no array of vectors here
            return TEXT_ARRAY, -1
        return ARRAY_OF.get(element.oid, TEXT_ARRAY), -1
    return TEXT, -1


def pg_type_name(duck: str | None) -> str | None:
    """The PostgreSQL name of a value of DuckDB type ``duck`` (DuckDB's ``typeof``)."""
    if duck is None:
        return None
    if duck.startswith("DECIMAL"):
        return "numeric"
    array = re.fullmatch(r"(.+)\[\]", duck)
    if array and not array.group(1).endswith("]"):
        element = pg_type_name(array.group(1))
        return None if element is None else element + "[]"
    info = BY_DUCK_EXACT.get(duck) or BY_DUCK_EXACT.get(duck.upper())  # STRUCT(rng_...): ranges (types/ranges.py)
    if info is None:
        raise errors.FeatureNotSupported(
            f"pg_typeof of this expression is not supported: its type ({duck}) stands for more than "
            "one of PostgreSQL's or none; cast it, or ask of a column")
    return info.display_name
