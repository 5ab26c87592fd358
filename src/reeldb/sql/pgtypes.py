"""Postgres type OIDs: one table for the wire (result columns, Bind parameters) and the
catalog (``pg_type``, ``format_type``), so a client sees the same type both ways."""

from __future__ import annotations

from dataclasses import dataclass

# ARRAY_SPACE and parse_array_literal moved to format/arrays.py; still importable from here
from ..format.arrays import ARRAY_KINDS, ARRAY_SPACE, parse_array_literal  # noqa: F401
from ..format.types import ColumnType

BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT2VECTOR, INT4, REGPROC, TEXT, OID = (
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26)
JSON, FLOAT4, FLOAT8, UNKNOWN, VARCHAR, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL = (
    114, 700, 701, 705, 1043, 1082, 1083, 1114, 1184, 1186)
NUMERIC, REGCLASS, REGTYPE, UUID, JSONB, BPCHAR, OIDVECTOR = 1700, 2205, 2206, 2950, 3802, 1042, 30
TIMETZ = 1266
BOOL_ARRAY, INT2_ARRAY, INT4_ARRAY, TEXT_ARRAY, INT8_ARRAY, FLOAT4_ARRAY, FLOAT8_ARRAY = (
    1000, 1005, 1007, 1009, 1016, 1021, 1022)
CHAR_ARRAY, OID_ARRAY, VARCHAR_ARRAY = 1002, 1028, 1015
NUMERIC_ARRAY, JSONB_ARRAY = 1231, 3807
# pgvector's types have no fixed OIDs (an extension's types get theirs at CREATE
# EXTENSION); reeldb's are fixed, above Postgres' built-in range. IMAGE, VIDEO and TENSOR
# are reeldb's own; their values travel as bytea or arrays.
VECTOR, HALFVEC, VECTOR_ARRAY, HALFVEC_ARRAY = 16385, 16386, 16387, 16388
IMAGE, VIDEO, TENSOR = 16389, 16390, 16391
SPARSEVEC, SPARSEVEC_ARRAY = 16392, 16393
BIT, VARBIT = 1560, 1562
# contrib's citext and hstore: their types exist once CREATE EXTENSION made them (pg_type
# lists them only then, sql/extensions.py); fixed OIDs, as pgvector's above
CITEXT, CITEXT_ARRAY, HSTORE, HSTORE_ARRAY = 16394, 16395, 16396, 16397
EXTENSION_TYPES = {"citext": (CITEXT, CITEXT_ARRAY), "hstore": (HSTORE, HSTORE_ARRAY)}

PG_CATALOG_NS, PUBLIC_NS, INFORMATION_SCHEMA_NS = 11, 2200, 13000


@dataclass(frozen=True)
class PgType:
    oid: int
    name: str
    length: int  # typlen: bytes, or -1 for variable length
    category: str  # typcategory: N numeric, S string, B boolean, D date/time, U user, A array
    array: int = 0  # the OID of its array type
    element: int = 0  # for an array type, its element type
    namespace: int = PG_CATALOG_NS


def _types() -> list[PgType]:
    base = [
        (BOOL, "bool", 1, "B", BOOL_ARRAY), (BYTEA, "bytea", -1, "U", 1001), (CHAR, "char", 1, "Z", 1002),
        (NAME, "name", 64, "S", 1003), (INT8, "int8", 8, "N", INT8_ARRAY), (INT2, "int2", 2, "N", INT2_ARRAY),
        (INT2VECTOR, "int2vector", -1, "A", 1006), (INT4, "int4", 4, "N", INT4_ARRAY),
        (REGPROC, "regproc", 4, "N", 1008), (OIDVECTOR, "oidvector", -1, "A", 1013), (TEXT, "text", -1, "S", TEXT_ARRAY), (OID, "oid", 4, "N", 1028),
        (JSON, "json", -1, "U", 199), (FLOAT4, "float4", 4, "N", FLOAT4_ARRAY),
        (FLOAT8, "float8", 8, "N", FLOAT8_ARRAY), (UNKNOWN, "unknown", -2, "X", 0),
        (BPCHAR, "bpchar", -1, "S", 1014), (VARCHAR, "varchar", -1, "S", 1015), (DATE, "date", 4, "D", 1182),
        (TIME, "time", 8, "D", 1183), (TIMETZ, "timetz", 12, "D", 1270), (TIMESTAMP, "timestamp", 8, "D", 1115),
        (TIMESTAMPTZ, "timestamptz", 8, "D", 1185), (INTERVAL, "interval", 16, "T", 1187),
        (NUMERIC, "numeric", -1, "N", 1231), (REGCLASS, "regclass", 4, "N", 2210),
        (REGTYPE, "regtype", 4, "N", 2211), (BIT, "bit", -1, "V", 1561), (VARBIT, "varbit", -1, "V", 1563),
        (UUID, "uuid", 16, "U", 2951), (JSONB, "jsonb", -1, "U", 3807),
    ]
    out = [PgType(o, n, ln, c, a) for o, n, ln, c, a in base]
    out += [PgType(a, "_" + n, -1, "A", element=o) for o, n, _, _, a in base if a]
    public = PUBLIC_NS
    out += [PgType(VECTOR, "vector", -1, "U", VECTOR_ARRAY, namespace=public),
            PgType(HALFVEC, "halfvec", -1, "U", HALFVEC_ARRAY, namespace=public),
            PgType(VECTOR_ARRAY, "_vector", -1, "A", element=VECTOR, namespace=public),
            PgType(HALFVEC_ARRAY, "_halfvec", -1, "A", element=HALFVEC, namespace=public),
            PgType(SPARSEVEC, "sparsevec", -1, "U", SPARSEVEC_ARRAY, namespace=public),
            PgType(SPARSEVEC_ARRAY, "_sparsevec", -1, "A", element=SPARSEVEC, namespace=public),
            PgType(IMAGE, "image", -1, "U", namespace=public), PgType(VIDEO, "video", -1, "U", namespace=public),
            PgType(TENSOR, "tensor", -1, "U", namespace=public),
            PgType(CITEXT, "citext", -1, "S", CITEXT_ARRAY, namespace=public),
            PgType(CITEXT_ARRAY, "_citext", -1, "A", element=CITEXT, namespace=public),
            PgType(HSTORE, "hstore", -1, "U", HSTORE_ARRAY, namespace=public),
            PgType(HSTORE_ARRAY, "_hstore", -1, "A", element=HSTORE, namespace=public)]
    return out


TYPES: list[PgType] = _types()
BY_OID: dict[int, PgType] = {t.oid: t for t in TYPES}
BY_NAME: dict[str, PgType] = {t.name: t for t in TYPES}
ARRAY_OF: dict[int, int] = {t.element: t.oid for t in TYPES if t.element}
ELEMENT_OF: dict[int, int] = {t.oid: t.element for t in TYPES if t.element}
FIXED_LENGTH: dict[int, int] = {t.oid: t.length for t in TYPES if t.length > 0 and t.category != "S"}

_OF_KIND = {"int16": INT2, "int32": INT4, "int64": INT8, "float32": FLOAT4, "float64": FLOAT8,
            "bool": BOOL, "text": TEXT, "varchar": VARCHAR, "bytea": BYTEA, "json": JSON, "jsonb": JSONB,
            "date": DATE, "time": TIME, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ,
            "interval": INTERVAL, "uuid": UUID, "numeric": NUMERIC, "vector": VECTOR, "halfvec": HALFVEC,
            "sparsevec": SPARSEVEC, "bit": BIT, "varbit": VARBIT, "vector_array": VECTOR_ARRAY,
            "halfvec_array": HALFVEC_ARRAY, "sparsevec_array": SPARSEVEC_ARRAY, "image": IMAGE, "video": VIDEO, "tensor": TENSOR,
            "citext": CITEXT, "hstore": HSTORE}


def column_oid(t: ColumnType) -> tuple[int, int]:
    """(OID, typmod) of a reeldb column type, as Postgres' catalog would hold it (an
    array's typmod is its element's: varchar(3)[] has 7)."""
    if t.kind in ARRAY_KINDS:
        oid, mod = column_oid(t.element())
        return ARRAY_OF[oid], mod
    oid = _OF_KIND[t.kind]
    if t.kind == "varchar" and t.length:
        return oid, t.length + 4
    if t.kind == "numeric" and t.precision is not None:
        return oid, ((t.precision << 16) | (t.scale or 0)) + 4
    if t.kind in ("vector", "halfvec", "sparsevec") and t.shape:
        return oid, t.shape[0]
    if t.kind in ("bit", "varbit", "vector_array", "halfvec_array", "sparsevec_array") and t.length:
        return oid, t.length
    return oid, -1


# OIDs of enum types (CREATE TYPE ... AS ENUM) the catalog has shown in this process: a
# client that learnt one (psycopg's EnumInfo) sends values of it, in binary as their text
ENUM_OIDS: set[int] = set()
