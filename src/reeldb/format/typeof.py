"""``pg_typeof(x)`` at run time: PostgreSQL's name of a value's type from DuckDB's
(``text``, not ``VARCHAR``; ``numeric``, not ``DECIMAL(5,2)``).

The SQL layer names a column, a cast or a constant from what the statement says, since
DuckDB's types cannot tell apart what PostgreSQL's can (vector / halfvec / sparsevec are all
``FLOAT[n]``; json / jsonb are both ``JSON``; bit / bit varying are ``BIT``); this names
any other expression, and refuses (0A000) a type that stands for more than one."""

from __future__ import annotations

import re

from .. import errors

# DuckDB's type name -> PostgreSQL's, for the types that map one to one
_BY_DUCK = {
    "BOOLEAN": "boolean", "SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint",
    "FLOAT": "real", "DOUBLE": "double precision", "VARCHAR": "text", "BLOB": "bytea",
    "DATE": "date", "TIME": "time without time zone", "TIME WITH TIME ZONE": "time with time zone",
    "TIMESTAMP": "timestamp without time zone", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval", "UUID": "uuid",
    "MAP(VARCHAR, VARCHAR)": "hstore",
}


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
    name = _BY_DUCK.get(duck)
    if name is None:
        raise errors.FeatureNotSupported(
            f"pg_typeof of this expression is not supported: its type ({duck}) stands for more than "
            "one of PostgreSQL's or none; cast it, or ask of a column")
    return name
