"""Every SQL type reeldb knows, in one registry (types/registry.py): PostgreSQL's names and
OIDs, the Arrow and DuckDB types, the text and binary wire codecs, PEP 249's groups and
the Python values in and out. Importing the package registers the built-in types, then
pgvector's, reeldb's media types, citext's, hstore's, the range types' and record's
(types/records.py), each from its own module."""

from __future__ import annotations

from . import citext, hstore, pgvector, ranges, records
from .builtin import array_info, register_builtin, register_media
from .codecs import binary_in, send_of, text_in, text_out
from .duck import pg_type_name, result_type
from .oids import *  # noqa: F403 - the OIDs by name are part of the registry's interface
from .registry import (
    ARRAY_OF,
    BY_DUCK,
    BY_KIND,
    BY_NAME,
    BY_OID,
    ELEMENT_OF,
    ENUM_OIDS,
    EXTENSION_TYPES,
    FIXED_LENGTH,
    PEP249_GROUPS,
    REGISTRY,
    TYPES,
    UTF8,
    TypeInfo,
    TypeRegistry,
    WireText,
    by_duck,
    by_kind,
    by_name,
    by_oid,
    column_oid,
    register,
)

register_builtin()
pgvector.register_types()
register_media()
citext.register_types()
hstore.register_types()
ranges.register_types()
records.register_types()

__all__ = [
    "ARRAY_OF", "BY_DUCK", "BY_KIND", "BY_NAME", "BY_OID", "ELEMENT_OF", "ENUM_OIDS", "EXTENSION_TYPES",
    "FIXED_LENGTH", "PEP249_GROUPS", "REGISTRY", "TYPES", "UTF8", "TypeInfo", "TypeRegistry", "WireText", "array_info", "binary_in",
    "by_duck", "by_kind", "by_name", "by_oid", "column_oid", "pg_type_name", "register", "result_type",
    "send_of", "text_in", "text_out",
]
