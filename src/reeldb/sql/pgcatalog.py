"""``pg_catalog`` and ``information_schema`` as Postgres clients read them.

Tools learn a database from its catalog: psql's ``\\d``, SQLAlchemy's ``inspect``,
pgvector's type lookup, a BI tool's ``version()`` probe. reeldb answers from the snapshot
the statement sees: small Arrow tables registered with DuckDB under internal names, built
again only when the tables, the branches or the user change. Catalog functions become
constants where their arguments are constants, and subqueries over those tables where not.

Branches are schemas: ``public`` is the connection's branch, and every branch the user may
read is a schema of its own (``"experiment/x".generations`` reads that branch).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, SQLValueFunctionOp

from .. import errors
from .. import types as pt
from ..catalog import objects
from ..catalog.sequences import SequenceDef
from ..engine.engine import CHAR_TYPE, INTERNAL, NOT_SUPPORTED_AT_RUN, internal_name
from ..format.manifest import TableManifest
from ..format.ranges import KINDS as RANGE_KINDS
from ..format.types import ColumnType
from ..index import ann
from ..types import codecs, records
from ..types.ranges import OIDS as RANGE_OIDS
from . import index_expr, large_objects, sequences
from .activity import Activity, Backend, may_see
from .activity import now as activity_now
from .definitions import check_def, foreign_key_def, index_def
from .limits import bound_call
from .names import schema_of, stable_oid
from .names import schemas as namespace_schemas
from .parse import constant_argument, deparse, func, parse
from .rowid_star import finish
from .server_version import SERVER_VERSION
from .settings import assign, pg_settings
from .settings import current as current_settings
from .user_types import composites, parse_type_text, regtype_text, user_array_oid

if TYPE_CHECKING:
    from .session import Session

OWNER_OID = 10
HEAP_AM, BTREE_AM = 2, 403
VECTOR_AMS = {"hnsw": 16400, "ivfflat": 16401}  # pgvector's methods (extension oids are >= 16384)
# pgvector's operator classes, (method, name) -> oid; the one default: vector_l2_ops for ivfflat
VECTOR_OPCLASSES = {(m, name): 16500 + i for i, (m, name) in enumerate(
    (m, name) for m in ("hnsw", "ivfflat") for name in sorted(index_expr.OPCLASSES[m]))}
DEFAULT_COLLATION = 100
TEMP_NS, TEMP_SCHEMA = 16399, "pg_temp_3"  # the session's temporary views (sql/views.py)


def settings(session: Session) -> dict[str, str]:
    """What ``SHOW`` and ``current_setting`` report (names lower-case): the settings
    registry's view of the session."""
    return current_settings(session)


def version_string() -> str:
    import duckdb

    from ..version import __version__

    return (f"PostgreSQL {SERVER_VERSION} (reeldb {__version__}, DuckDB {duckdb.__version__}) "
            "on x86_64-pc-linux-gnu, 64-bit")


def namespace_oid(schema: str) -> int:
    """The pg_namespace oid of a schema made by CREATE SCHEMA."""
    return stable_oid("nsp", schema)


# -- the tables ------------------------------------------------------------------------------
@dataclass
class _Rel:
    oid: int
    name: str
    namespace: int
    kind: str  # r table, i index
    natts: int
    tuples: int = 0
    has_index: bool = False
    am: int = 0  # an index's access method; 0: heap for tables, btree for indexes
    checks: int = 0  # relchecks: its CHECK constraints (psql \d lists them when there are some)
    options: tuple[str, ...] | None = None  # reloptions: an index's WITH (...), as name=value
    persistence: str = "p"  # t: a temporary view
    populated: bool = True  # False: a materialized view made WITH NO DATA


class CatalogTables:
    """The catalog of one state of the database, as Arrow tables and lookups."""

    def __init__(self, schemas: list[tuple[str, int, dict[str, TableManifest]]], user: str, database: str,
                 branches: list[str], objs: dict[str, Any] | None = None,
                 temp_views: dict[str, dict] | None = None):
        self.user, self.database = user, database
        self.namespaces = [(pt.PG_CATALOG_NS, "pg_catalog"), (pt.PUBLIC_NS, "public"),
                           (pt.INFORMATION_SCHEMA_NS, "information_schema")]
        self.namespaces += [(oid, name) for name, oid, _ in schemas if oid != pt.PUBLIC_NS]
        self.rels: list[_Rel] = []
        self.atts: list[dict[str, Any]] = []
        self.indexes: list[dict[str, Any]] = []
        self.constraints: list[dict[str, Any]] = []
        self.defaults: list[dict[str, Any]] = []
        self.defs: list[tuple[int, int, str]] = []  # (oid, column, text) for pg_get_*def
        self.index_views: list[dict[str, Any]] = []  # pg_indexes
        self.formats: dict[tuple[int, int], str] = {(t.oid, -1): format_type(t.oid, -1) for t in pt.TYPES}
        self.columns: list[dict[str, Any]] = []  # information_schema.columns
        self.branches = branches
        self._tensor_mods: dict[str, int] = {}
        self._rel_ids: dict[str, tuple[int, dict[int, int]]] = {}  # table id -> (oid, column id -> attnum)
        self._rel_names: dict[str, str] = {}  # table id -> the branch's name of the table
        from .extensions import installed

        self.large_objects = large_objects.metadata(objs or {})
        self.extensions = installed(objs or {})  # citext / hstore, where CREATE EXTENSION made them
        self.enums = _user_types(objs or {}, dict((n, o) for o, n in self.namespaces))
        self.domains = _domains(objs or {}, dict((n, o) for o, n in self.namespaces))
        for oid, name, *_ in self.domains:
            self.formats[(oid, -1)] = name.rpartition(".")[2]
        self.composites: list[tuple[int, str, int, list[tuple[str, int, int]]]] = []
        self._user_type_rows(objs or {})
        self._fk_rels: dict[tuple[str, str], tuple[int, dict[int, int], str, str, TableManifest]] = {}
        self._fk_pending: list[tuple[str, int, int, dict[int, int], TableManifest]] = []
        for schema, ns, tables in schemas:
            for name in sorted(tables):
                self._table(schema, ns, tables[name], name)
        self._foreign_keys()
        for key in sorted(CATALOG_NAMES):  # so 'pg_class'::regclass and \dS name them
            schema, _, name = key.rpartition(".")
            self.rels.append(_Rel(stable_oid("rel", schema or "pg_catalog", key), name,
                                  pt.INFORMATION_SCHEMA_NS if schema else pt.PG_CATALOG_NS, "v" if schema else "r", 0))
        self.sequences: list[dict[str, Any]] = []
        self.descriptions: list[dict[str, Any]] = []
        self._objects(objs or {})
        self.descriptions += [{"objoid": oid, "classoid": stable_oid("rel", "pg_catalog", "pg_largeobject"),
                               "objsubid": 0, "description": text} for oid, text in large_objects.comments(objs or {})]
        self._views(objs or {}, temp_views or {})
        self.tables = self._arrow()

    def _user_type_rows(self, objs: dict[str, Any]) -> None:
        """Enum and composite types (and their array types) of the branch: their formats, the
        composite types' pg_class and pg_attribute rows, and their OIDs known to the wire
        (types/records.py), so that a client that learnt one sends parameters of it."""
        ns_of = {n: o for o, n in self.namespaces}
        for oid, name, _, _ in self.enums:
            shown = regtype_text(name)
            self.formats[(oid, -1)] = shown
            self.formats[(user_array_oid(name), -1)] = shown + "[]"
            pt.ENUM_OIDS.add(oid)
            records.user_type(pt.TypeInfo(name=name.rpartition(".")[2], oid=oid, sql_name=shown, category="E",
                                          array=user_array_oid(name), send=codecs.text_send, recv=codecs.text_recv))
            records.user_type(pt.TypeInfo(name="_" + name.rpartition(".")[2], oid=user_array_oid(name), element=oid,
                                          category="A", text_in=codecs.array_text_in(oid),
                                          send=codecs.array_send_of(oid), recv=codecs.array_recv))
        fields_of = composites(objs)
        for name in sorted(fields_of):
            oid, array = stable_oid("type", name), user_array_oid(name)
            relid = stable_oid("rel", "composite type", name)
            fields = []
            for f in fields_of[name]:
                if "composite" in f:
                    typ, mod = stable_oid("type", f["composite"]), -1
                elif "enum" in f:
                    typ, mod = stable_oid("type", f["enum"]), -1
                else:
                    typ, mod = pt.column_oid(ColumnType.from_json(f["type"]))
                fields.append((f["name"], typ, mod))
            ns = ns_of.get(schema_of(name)[0] or "public", pt.PUBLIC_NS)
            self.composites.append((oid, name, ns, fields))
            self.rels.append(_Rel(relid, name.rpartition(".")[2], ns, "c", len(fields)))
            for i, (fname, typ, mod) in enumerate(fields):
                att = _attribute(relid, fname, typ if typ in pt.BY_OID else pt.TEXT, mod, i + 1, False, False)
                self.atts.append({**att, "atttypid": typ})
            shown = regtype_text(name)
            self.formats[(oid, -1)] = shown
            self.formats[(array, -1)] = shown + "[]"
            records.user_type(records.composite_info(name.rpartition(".")[2], oid, array, shown))
            records.user_type(pt.TypeInfo(name="_" + name.rpartition(".")[2], oid=array, element=oid, category="A",
                                          recv=codecs.array_recv))

    def user_type_oid(self, text: str) -> int | None:
        """The OID of an enum, composite or domain type (or of an enum's or composite's
        array type) named by ``text`` as SQL reads a type name (``to_regtype('Mood')`` is
        mood's, ``'"Mood"'`` Mood's); None where there is none."""
        parsed = parse_type_text(text)
        if parsed is None:
            return None
        parts, array = parsed
        if len(parts) == 2 and parts[0] == "public":
            parts = parts[1:]
        if len(parts) > 2:
            return None
        name = ".".join(parts)
        for oid, n, *_ in [*self.enums, *self.composites]:
            if n == name:
                return user_array_oid(n) if array else oid
        return None if array else self.domain_oid(name)

    def enum_oid(self, name: str) -> int | None:
        """The oid of an enum, composite or domain type by its name as the branch stores it
        (``public.`` or a schema of the branch allowed)."""
        bare = name.strip('"')
        if bare.startswith("public."):
            bare = bare[len("public."):]
        for oid, n, _, _ in [*self.enums, *self.composites]:
            if n == bare:
                return oid
        return self.domain_oid(bare)

    def domain_oid(self, name: str) -> int | None:
        for oid, n, *_ in self.domains:
            if n == name:
                return oid
        return None

    def _objects(self, objs: dict[str, Any]) -> None:
        """Sequences (pg_class relkind S, pg_sequence) and comments (pg_description) of
        the branch's objects (catalog/objects.py)."""
        self.serials: list[tuple[int, str, int]] = []  # (table oid, column, sequence oid) of owned sequences
        ns_of = {n: o for o, n in self.namespaces}
        classes = {c: stable_oid("rel", "pg_catalog", c) for c in ("pg_class", "pg_type", "pg_namespace",
                                                                   "pg_constraint")}
        con_oids = {(c["conrelid"], c["conname"]): c["oid"] for c in self.constraints}
        for name, d in sorted(objects.named(objs, objects.SEQUENCE).items()):
            seq = SequenceDef.from_json(d)
            sp, local = schema_of(name)
            oid = stable_oid("seq", seq.id)
            self.rels.append(_Rel(oid, local, ns_of.get(sp or "public", pt.PUBLIC_NS), "S", 3))
            if seq.owned_by:
                table, _, column = seq.owned_by.rpartition(".")
                tid = next((t for t, n in self._rel_names.items() if n == table), None)
                if tid is not None:
                    self.serials.append((self._rel_ids[tid][0], column, oid))
            self.sequences.append({"seqrelid": oid, "seqtypid": pt.BY_NAME[seq.type].oid, "seqstart": seq.start,
                                   "seqincrement": seq.increment, "seqmax": seq.max, "seqmin": seq.min,
                                   "seqcache": seq.cache, "seqcycle": seq.cycle})
            text = objs.get(objects.key(objects.COMMENT, "sequence", name))
            if text is not None:
                self.descriptions.append({"objoid": oid, "classoid": classes["pg_class"], "objsubid": 0,
                                          "description": text})
        for key, text in sorted(objs.items()):
            if not key.startswith(objects.COMMENT) or text is None:
                continue
            kind, _, rest = key[len(objects.COMMENT):].partition("/")
            if kind == "table" and rest in self._rel_ids:
                self.descriptions.append({"objoid": self._rel_ids[rest][0], "classoid": classes["pg_class"],
                                          "objsubid": 0, "description": text})
            elif kind == "column":
                tid, _, cid = rest.rpartition("/")
                rel = self._rel_ids.get(tid)
                if rel is not None and int(cid) in rel[1]:
                    self.descriptions.append({"objoid": rel[0], "classoid": classes["pg_class"],
                                              "objsubid": rel[1][int(cid)], "description": text})
            elif kind == "constraint":
                tid, _, cname = rest.partition("/")
                rel = self._rel_ids.get(tid)
                coid = con_oids.get((rel[0], cname)) if rel is not None else None
                if coid is not None:
                    self.descriptions.append({"objoid": coid, "classoid": classes["pg_constraint"], "objsubid": 0,
                                              "description": text})
            elif kind == "schema" and rest in ns_of:
                self.descriptions.append({"objoid": ns_of[rest], "classoid": classes["pg_namespace"], "objsubid": 0,
                                          "description": text})
            elif kind == "type":
                oid = self.enum_oid(rest)
                if oid is not None:
                    self.descriptions.append({"objoid": oid, "classoid": classes["pg_type"], "objsubid": 0,
                                              "description": text})

    def _views(self, objs: dict[str, Any], temp_views: dict[str, dict]) -> None:
        """Views (pg_class relkind v, their pg_attribute rows, pg_views) and materialized
        views (their tables shown as relkind m, pg_matviews) of the branch (sql/views.py);
        the session's temporary views in its pg_temp schema."""
        from ..catalog import objects
        from ..format.types import ColumnType

        self.view_rows: list[dict[str, Any]] = []
        self.matview_rows: list[dict[str, Any]] = []
        if temp_views:
            self.namespaces.append((TEMP_NS, TEMP_SCHEMA))
        ns_of = {n: o for o, n in self.namespaces}
        entries = [(n, d, False) for n, d in sorted(objects.named(objs, objects.VIEW).items())]
        entries += [(n, d, True) for n, d in sorted(temp_views.items())]
        for name, d, temp in entries:
            sp, local = schema_of(name)
            schema = TEMP_SCHEMA if temp else sp or "public"
            ns = ns_of.get(schema, pt.PUBLIC_NS)
            text = " " + d["query"] + ";"
            if d.get("materialized"):
                rel = next((r for r in self.rels if r.name == local and r.namespace == ns and r.kind == "r"), None)
                if rel is None:
                    continue
                rel.kind, rel.populated = "m", d.get("populated", True)
                self.columns = [c for c in self.columns if (c["table_schema"], c["table_name"]) != (schema, local)]
                self.defs += [(rel.oid, 0, text), (rel.oid, -1, text)]
                self.matview_rows.append({"schemaname": schema, "matviewname": local, "matviewowner": self.user,
                                          "tablespace": None, "hasindexes": rel.has_index,
                                          "ispopulated": rel.populated, "definition": text})
                continue
            oid = stable_oid("tempview" if temp else "view", schema, name)
            self.rels.append(_Rel(oid, local, ns, "v", len(d["columns"]), persistence="t" if temp else "p"))
            for i, (col, typ_json) in enumerate(zip(d["columns"], d["types"], strict=True)):
                ctype = ColumnType.from_json(typ_json)
                typ, mod = pt.column_oid(ctype)
                self.formats.setdefault((typ, mod), format_type(typ, mod))
                self.atts.append(_attribute(oid, col, typ, mod, i + 1, False, False))
                is_array = bool(pt.BY_OID[typ].element)
                self.columns.append({
                    "table_catalog": self.database, "table_schema": schema, "table_name": local,
                    "column_name": col, "ordinal_position": i + 1, "column_default": None, "is_nullable": "YES",
                    "data_type": _information_type(typ, ctype.sql()),
                    "character_maximum_length": None if is_array else ctype.length,
                    "numeric_precision": None if is_array else ctype.precision,
                    "numeric_scale": None if is_array else ctype.scale, "udt_name": pt.BY_OID[typ].name,
                    "is_identity": "NO", "is_generated": "NEVER", "generation_expression": None})
            self.defs += [(oid, 0, text), (oid, -1, text)]
            self.view_rows.append({"schemaname": schema, "viewname": local, "viewowner": self.user,
                                   "definition": text})

    def _foreign_keys(self) -> None:
        """pg_constraint rows (contype 'f') of the tables' foreign keys, once every table has
        its oid: the referenced table is the one of the same branch."""
        for schema, ns, oid, attnum, tm in self._fk_pending:
            group = schema if schema in self.branches else ""
            for fk in tm.schema.foreign_keys:
                ref = self._fk_rels.get((group, fk.ref_table))
                if ref is None:
                    continue
                poid, pattnum, pschema, pname, ptm = ref
                local = pname.rpartition(".")[2]
                key = next((u for u in ptm.schema.uniques if set(u) == set(fk.ref_columns)), ())
                iname = ptm.schema.key_name(local, key)
                coid = stable_oid("con", schema, tm.table_id, fk.name)
                self.constraints.append({
                    "oid": coid, "conname": fk.name, "connamespace": ns, "contype": "f", "conrelid": oid,
                    "conindid": stable_oid("idx", pschema, ptm.table_id, iname), "confrelid": poid,
                    "confupdtype": fk.on_update, "confdeltype": fk.on_delete, "confmatchtype": "s",
                    "conkey": [attnum[c] for c in fk.columns], "confkey": [pattnum[c] for c in fk.ref_columns]})
                text = foreign_key_def(fk, tm.schema, pname, ptm.schema)
                self.defs.append((coid, 0, text))
                self.defs.append((coid, -1, text))  # pretty: the same text

    def _btree_indexes(self, schema: str, ns: int, oid: int, attnum: dict[int, int], tm: TableManifest,
                       name: str) -> None:
        """pg_class / pg_index / pg_attribute rows of the table's plain btree indexes."""
        for ix in tm.schema.btree_indexes:
            ioid = stable_oid("idx", schema, tm.table_id, ix.name)
            every = ix.columns + ix.include
            self.rels.append(_Rel(ioid, ix.name, ns, "i", len(every)))
            for j, cid in enumerate(every):
                c = tm.schema.by_id(cid)
                typ, mod = pt.column_oid(c.type)
                self.atts.append(_attribute(ioid, c.name, typ, mod, j + 1, False, False))
                self.defs.append((ioid, j + 1, c.name))
            self.indexes.append({"indexrelid": ioid, "indrelid": oid, "indnatts": len(every),
                                 "indnkeyatts": len(ix.columns), "indisunique": ix.unique, "indisprimary": False,
                                 "indkey": [attnum[c] for c in every],
                                 "indoption": list(ix.options) + [0] * len(ix.include),
                                 "indcollation": [0] * len(every), "indclass": [0] * len(every)})
            self.defs.append((ioid, 0, index_def(ix, schema, name, tm)))

    def _table(self, schema: str, ns: int, tm: TableManifest, name: str) -> None:
        """One table, named ``name`` in its schema (a table of a schema made by CREATE SCHEMA
        is stored as ``schema.name``)."""
        oid = stable_oid("rel", schema, tm.table_id)
        cols = tm.schema.columns
        attnum = {c.id: i + 1 for i, c in enumerate(cols)}
        pk = set(tm.schema.primary_key)
        if tm.table_id not in self._rel_ids:
            self._rel_ids[tm.table_id] = (oid, dict(attnum))
            self._rel_names[tm.table_id] = name if schema == "public" else f"{schema}.{name}"
        self.rels.append(_Rel(oid, name, ns, "r", len(cols), tm.rows,
                              bool(tm.schema.uniques or tm.indexes or tm.schema.btree_indexes),
                              checks=len(tm.schema.checks)))
        group = schema if schema in self.branches else ""  # a branch shown as a schema: its own tables
        self._fk_rels[(group, tm.table_id)] = (oid, dict(attnum), schema,
                                               name if schema == "public" or group else f"{schema}.{name}", tm)
        if tm.schema.foreign_keys:
            self._fk_pending.append((schema, ns, oid, dict(attnum), tm))
        for i, c in enumerate(cols):
            typ, mod = pt.column_oid(c.type)
            enum_oid = self.enum_oid(str(c.type.dtype)) if c.type.is_enum else \
                self.domain_oid(c.domain) if c.domain is not None else None
            if c.type.kind == "tensor":  # Postgres has no typmod for a shape: number the shapes
                mod = self._tensor_mods.setdefault(c.type.sql(), len(self._tensor_mods))
            self.formats.setdefault((typ, mod), c.type.sql() if c.type.kind == "tensor" else format_type(typ, mod))
            default = None
            if c.type.serial:
                default = f"nextval('{name}_{c.name}_seq'::regclass)"
            elif c.default is not None:
                default = c.default
            if c.identity is not None:  # Postgres: no attrdef for an identity column
                default = None
            expression = None if c.generated is None else _generation_text(c.generated)
            att = _attribute(oid, c.name, typ, mod, i + 1, c.not_null or c.id in pk,
                             default is not None or expression is not None)
            if enum_oid is not None:
                att["atttypid"] = enum_oid
            is_array = bool(pt.BY_OID[typ].element)
            att["attndims"] = int(is_array)
            att["attidentity"] = c.identity or ""
            att["attgenerated"] = "s" if expression is not None else ""
            self.atts.append(att)
            if default is not None or expression is not None:  # a generated column's expression is its attrdef
                self.defaults.append({"oid": stable_oid("def", schema, tm.table_id, str(c.id)), "adrelid": oid,
                                      "adnum": i + 1, "adbin": default if expression is None else expression})
            self.columns.append({
                "table_catalog": self.database, "table_schema": schema, "table_name": name,
                "column_name": c.name, "ordinal_position": i + 1, "column_default": default,
                "is_nullable": "NO" if c.not_null or c.id in pk else "YES",
                "data_type": "USER-DEFINED" if c.type.is_enum else _information_type(typ, c.type.sql()),
                "character_maximum_length": None if is_array else c.type.length,
                "numeric_precision": None if is_array else c.type.precision,
                "numeric_scale": None if is_array else c.type.scale,
                "udt_name": c.type.sql() if c.type.is_enum else pt.BY_OID[typ].name,
                "is_identity": "YES" if c.identity else "NO", "is_generated": "ALWAYS" if expression else "NEVER",
                "generation_expression": expression,
            })
        index_keys = {ix.columns for ix in tm.schema.btree_indexes if ix.unique}
        for key in tm.schema.uniques:
            if tuple(key) in index_keys:  # a UNIQUE index's key: shown as that index (no constraint)
                continue
            primary = tuple(key) == tuple(tm.schema.primary_key)
            names = [tm.schema.by_id(c).name for c in key]  # in the key's order, as Postgres prints it
            iname = tm.schema.key_name(name, key)
            ioid = stable_oid("idx", schema, tm.table_id, iname)
            self.rels.append(_Rel(ioid, iname, ns, "i", len(key)))
            keys = [attnum[c] for c in key]
            for j, cid in enumerate(key):
                c = next(c for c in cols if c.id == cid)
                typ, mod = pt.column_oid(c.type)
                self.atts.append(_attribute(ioid, c.name, typ, mod, j + 1, True, False))
            self.indexes.append({"indexrelid": ioid, "indrelid": oid, "indnatts": len(key), "indnkeyatts": len(key),
                                 "indisunique": True, "indisprimary": primary, "indkey": keys,
                                 "indoption": [0] * len(keys), "indcollation": [0] * len(keys),
                                 "indclass": [0] * len(keys)})
            quoted = ", ".join(names)
            self._index_defs(ioid, schema, name, iname, "CREATE UNIQUE INDEX", "btree", names, names)
            coid = stable_oid("con", schema, tm.table_id, iname)
            self.constraints.append({"oid": coid, "conname": iname, "connamespace": ns,
                                     "contype": "p" if primary else "u", "conrelid": oid, "conindid": ioid,
                                     "conkey": keys})
            self.defs.append((coid, 0, f"{'PRIMARY KEY' if primary else 'UNIQUE'} ({quoted})"))
            self.defs.append((coid, -1, f"{'PRIMARY KEY' if primary else 'UNIQUE'} ({quoted})"))  # pretty
        self._btree_indexes(schema, ns, oid, attnum, tm, name)
        for check in tm.schema.checks:
            coid = stable_oid("con", schema, tm.table_id, check.name)
            self.constraints.append({"oid": coid, "conname": check.name, "connamespace": ns, "contype": "c",
                                     "conrelid": oid, "conindid": 0, "connoinherit": False,
                                     "conkey": [attnum[cid] for cid in check.columns] or None})
            self.defs.append((coid, 0, check_def(check, tm.schema, pretty=False)))
            self.defs.append((coid, -1, check_def(check, tm.schema, pretty=True)))  # pretty

        for ix in tm.indexes:
            c = tm.schema.by_id(ix.column)
            ioid = stable_oid("idx", schema, tm.table_id, ix.name)
            # as PostgreSQL prints them: the options given, in their order; no default opclass
            shown = ix.params if ix.given is None else [(k, ix.options[k]) for k in ix.given]
            opc = VECTOR_OPCLASSES.get((ix.method, ix.opclass), 0)
            self.rels.append(_Rel(ioid, ix.name, ns, "i", 1, am=VECTOR_AMS[ix.method],
                                  options=tuple(f"{k}={v}" for k, v in shown) or None))
            with_ = " WITH (" + ", ".join(f"{k}='{v}'" for k, v in shown) + ")" if shown else ""
            opclass = "" if ix.method == "ivfflat" and ix.opclass == ann.DEFAULT_OPCLASS else f" {ix.opclass}"
            if ix.expression:  # PostgreSQL: indkey 0, the expression in indexprs, named as it chooses
                key = index_expr.parse_key(ix.expression, lambda n, c=c: c.type)
                self.atts.append(_attribute(ioid, key.name, key.type_oid, key.typmod, 1, False, False))
                self.formats.setdefault((key.type_oid, key.typmod), format_type(key.type_oid, key.typmod))
                self.indexes.append({"indexrelid": ioid, "indrelid": oid, "indnatts": 1, "indnkeyatts": 1,
                                     "indisunique": False, "indisprimary": False, "indkey": [0],
                                     "indoption": [0], "indcollation": [0], "indclass": [opc],
                                     "indexprs": key.text(c.name)})
                self._index_defs(ioid, schema, name, ix.name, "CREATE INDEX", ix.method, [key.index_column(c.name)],
                                 [key.index_column(c.name, pretty=True)], opclass, with_)
                continue
            typ, mod = pt.column_oid(c.type)
            self.atts.append(_attribute(ioid, c.name, typ, mod, 1, False, False))
            self.indexes.append({"indexrelid": ioid, "indrelid": oid, "indnatts": 1, "indnkeyatts": 1,
                                 "indisunique": False, "indisprimary": False, "indkey": [attnum[c.id]],
                                 "indoption": [0], "indcollation": [0], "indclass": [opc]})
            self._index_defs(ioid, schema, name, ix.name, "CREATE INDEX", ix.method, [c.name], [c.name],
                             opclass, with_)

    def _index_defs(self, ioid: int, schema: str, table: str, index: str, create: str, method: str,
                    keys: list[str], pretty_keys: list[str], opclass: str = "", with_: str = "") -> None:
        """pg_get_indexdef's answers for an index, and its pg_indexes row: column n at n
        (0: the whole definition), pretty-printed at -1 - n (a table of the search path
        unqualified, an expression's casts without their parentheses)."""
        def whole(on: str, ks: list[str]) -> str:
            return f"{create} {index} ON {on} USING {method} ({', '.join(ks)}{opclass}){with_}"

        text = whole(f"{schema}.{table}", keys)
        self.defs += [(ioid, 0, text), (ioid, -1, whole(table if schema == "public" else f"{schema}.{table}",
                                                         pretty_keys))]
        for n, (k, pk) in enumerate(zip(keys, pretty_keys, strict=True), 1):
            self.defs += [(ioid, n, k), (ioid, -1 - n, pk)]
        self.index_views.append({"schemaname": schema, "tablename": table, "indexname": index,
                                 "tablespace": None, "indexdef": text})

    # -- Arrow -------------------------------------------------------------------------------
    def _arrow(self) -> dict[str, pa.Table]:
        ns_name = dict(self.namespaces)
        out: dict[str, pa.Table] = {}
        out["pg_namespace"] = pa.table({
            "oid": [o for o, _ in self.namespaces], "nspname": [n for _, n in self.namespaces],
            "nspowner": [OWNER_OID] * len(self.namespaces),
            "nspacl": pa.nulls(len(self.namespaces), pa.list_(pa.string()))})
        rels = self.rels
        n = len(rels)
        out["pg_class"] = pa.table({
            "oid": [r.oid for r in rels], "relname": [r.name for r in rels],
            "relnamespace": [r.namespace for r in rels], "reltype": [0] * n, "reloftype": [0] * n,
            "relowner": [OWNER_OID] * n, "relam": [r.am or (BTREE_AM if r.kind == "i" else HEAP_AM) for r in rels],
            "relfilenode": [r.oid for r in rels], "reltablespace": [0] * n,
            "relpages": [0] * n, "reltuples": pa.array([float(r.tuples) for r in rels], pa.float32()),
            "relallvisible": [0] * n, "reltoastrelid": [0] * n, "relhasindex": [r.has_index for r in rels],
            "relisshared": [False] * n, "relpersistence": [r.persistence for r in rels],
            "relkind": [r.kind for r in rels],
            "relnatts": pa.array([r.natts for r in rels], pa.int16()), "relchecks": pa.array([r.checks for r in rels], pa.int16()),
            "relhasrules": [False] * n, "relhastriggers": [False] * n, "relhassubclass": [False] * n,
            "relrowsecurity": [False] * n, "relforcerowsecurity": [False] * n,
            "relispopulated": [r.populated for r in rels],
            "relreplident": ["d"] * n, "relispartition": [False] * n, "relrewrite": [0] * n,
            "relfrozenxid": [0] * n, "relminmxid": [0] * n, "relacl": pa.nulls(n, pa.list_(pa.string())),
            "reloptions": pa.array([None if r.options is None else list(r.options) for r in rels],
                                   pa.list_(pa.string())),
            "relpartbound": pa.nulls(n, pa.string())})
        out["pg_attribute"] = _rows(self.atts, ATTRIBUTE_TYPES)
        out["pg_index"] = _rows([{**_INDEX_DEFAULTS, **i} for i in self.indexes], INDEX_TYPES)
        out["pg_indexes"] = _rows(self.index_views, {c: pa.string() for c in
                                                     ("schemaname", "tablename", "indexname", "tablespace", "indexdef")})
        out["pg_constraint"] = _rows([{**_CONSTRAINT_DEFAULTS, **c} for c in self.constraints], CONSTRAINT_TYPES)
        out["pg_attrdef"] = _rows(self.defaults, {"oid": pa.int64(), "adrelid": pa.int64(), "adnum": pa.int16(),
                                                  "adbin": pa.string()})
        out["pg_type"] = _types_table()
        absent = [oid for ext, oids in pt.EXTENSION_TYPES.items() if ext not in self.extensions for oid in oids]
        if absent:  # an extension's types exist once it is created
            out["pg_type"] = out["pg_type"].filter(pc.invert(pc.is_in(out["pg_type"]["oid"], pa.array(absent))))
        out["pg_database"] = self._databases()
        out["pg_am"] = pa.table({"oid": [HEAP_AM, BTREE_AM, *VECTOR_AMS.values()],
                                 "amname": ["heap", "btree", *VECTOR_AMS],
                                 "amhandler": ["heap_tableam_handler", "bthandler", "hnswhandler", "ivfflathandler"],
                                 "amtype": ["t", "i", "i", "i"]})
        user = [self.user]
        roles = {"oid": [OWNER_OID], "rolname": user, "rolsuper": [False], "rolinherit": [True],
                 "rolcreaterole": [False], "rolcreatedb": [False], "rolcanlogin": [True],
                 "rolreplication": [False], "rolconnlimit": [-1], "rolpassword": ["********"],
                 "rolvaliduntil": pa.nulls(1, pa.timestamp("us", "UTC")), "rolbypassrls": [False],
                 "rolconfig": pa.nulls(1, pa.list_(pa.string()))}
        out["pg_roles"] = pa.table(roles)
        out["pg_user"] = pa.table({"usename": user, "usesysid": [OWNER_OID], "usecreatedb": [False],
                                   "usesuper": [False], "userepl": [False], "usebypassrls": [False],
                                   "passwd": ["********"]})
        out["pg_tablespace"] = pa.table({"oid": [1663], "spcname": ["pg_default"], "spcowner": [OWNER_OID]})
        out["pg_collation"] = pa.table({"oid": [DEFAULT_COLLATION, 950], "collname": ["default", "C"],
                                        "collnamespace": [pt.PG_CATALOG_NS] * 2, "collprovider": ["d", "c"]})
        created = sorted(self.extensions.items())
        k = 2 + len(created)
        out["pg_extension"] = pa.table({
            "oid": [13500, 16384] + [stable_oid("extension", n) for n, _ in created],
            "extname": list(EXTENSIONS) + [n for n, _ in created], "extowner": [OWNER_OID] * k,
            "extnamespace": [pt.PG_CATALOG_NS, pt.PUBLIC_NS] + [pt.PUBLIC_NS] * len(created),
            "extrelocatable": [False, True] + [True] * len(created),
            "extversion": list(EXTENSIONS.values()) + [v for _, v in created]})
        for name, cols in EMPTY.items():
            out[name] = pa.table({c: pa.array([], t) for c, t in cols.items()})
        out["pg_views"] = _rows(self.view_rows, EMPTY["pg_views"])
        out["pg_matviews"] = _rows(self.matview_rows, EMPTY["pg_matviews"])
        out["pg_opclass"] = _rows([
            {"oid": oid, "opcmethod": VECTOR_AMS[m], "opcname": name, "opcnamespace": pt.PUBLIC_NS,
             "opcintype": pt.BY_NAME[name.split("_")[0]].oid, "opcdefault": m == "ivfflat" and name == ann.DEFAULT_OPCLASS}
            for (m, name), oid in VECTOR_OPCLASSES.items()], EMPTY["pg_opclass"])
        out["pg_range"] = _rows([  # the built-in range types (types/ranges.py)
            {"rngtypid": oid, "rngsubtype": pt.BY_NAME[RANGE_KINDS[name].subtype].oid, "rngmultitypid": multi}
            for name, (oid, _, multi, _) in RANGE_OIDS.items()], EMPTY["pg_range"])
        if self.enums or self.domains or self.composites:
            base = out["pg_type"]
            out["pg_type"] = pa.concat_tables([base, pa.Table.from_pylist(
                [row for oid, name, ns, _ in self.enums for row in _enum_type_rows(oid, name, ns)]
                + [row for oid, name, ns, _ in self.composites for row in _composite_type_rows(oid, name, ns)]
                + [_domain_type_row(*d) for d in self.domains], schema=base.schema)])
        out["pg_enum"] = _rows([{"oid": stable_oid("enum", str(oid), lab), "enumtypid": oid,
                                 "enumsortorder": float(i + 1), "enumlabel": lab}
                                for oid, _, _, labels in self.enums for i, lab in enumerate(labels)], EMPTY["pg_enum"])
        out["pg_description"] = _rows(self.descriptions, EMPTY["pg_description"])
        out["pg_sequence"] = _rows(self.sequences, EMPTY["pg_sequence"])
        out["pg_proc"] = _rows(large_objects.proc_rows(pt.PG_CATALOG_NS, OWNER_OID), EMPTY["pg_proc"])
        owners = sorted({owner for _, owner, _ in self.large_objects} - {self.user})
        out["__role_names"] = pa.table({"role_oid": [OWNER_OID] + [stable_oid("role", o) for o in owners],
                                        "role_name": [self.user, *owners]})  # pg_get_userbyid's
        out["pg_largeobject_metadata"] = _rows([
            {"oid": oid, "lomowner": OWNER_OID if owner == self.user else stable_oid("role", owner), "lomacl": acl}
            for oid, owner, acl in self.large_objects], EMPTY["pg_largeobject_metadata"])
        out["information_schema.schemata"] = pa.table({
            "catalog_name": [self.database] * len(self.namespaces), "schema_name": [nm for _, nm in self.namespaces],
            "schema_owner": [self.user] * len(self.namespaces)})
        tables = [r for r in rels if r.kind == "r" or (r.kind == "v" and r.namespace != pt.INFORMATION_SCHEMA_NS)]
        out["information_schema.tables"] = pa.table({
            "table_catalog": [self.database] * len(tables), "table_schema": [ns_name[r.namespace] for r in tables],
            "table_name": [r.name for r in tables],
            "table_type": ["VIEW" if r.kind == "v" else "BASE TABLE" for r in tables],
            "is_insertable_into": ["NO" if r.kind == "v" else "YES" for r in tables]})
        out["information_schema.columns"] = _rows(self.columns, COLUMNS_TYPES)
        cons = [c for c in self.constraints]
        rel_of = {r.oid: r for r in rels}
        # (schema, table, name, type, check clause); as Postgres 16, a NOT NULL column is also
        # listed as a CHECK constraint named <namespace oid>_<table oid>_<attnum>_not_null
        check_text = {d[0]: d[2] for d in self.defs if d[1] == 0}
        listed = [(ns_name[c["connamespace"]], rel_of[c["conrelid"]].name, c["conname"],
                   {"p": "PRIMARY KEY", "c": "CHECK", "f": "FOREIGN KEY"}.get(c["contype"], "UNIQUE"),
                   check_text[c["oid"]].removeprefix("CHECK ") if c["contype"] == "c" else None) for c in cons]
        listed += [(ns_name[rel_of[a["attrelid"]].namespace], rel_of[a["attrelid"]].name,
                    f"{rel_of[a['attrelid']].namespace}_{a['attrelid']}_{a['attnum']}_not_null", "CHECK",
                    f"{a['attname']} IS NOT NULL")
                   for a in self.atts if a["attnotnull"] and a["attrelid"] in rel_of and rel_of[a["attrelid"]].kind == "r"]
        out["information_schema.table_constraints"] = pa.table({
            "constraint_catalog": [self.database] * len(listed), "constraint_schema": [x[0] for x in listed],
            "constraint_name": [x[2] for x in listed], "table_catalog": [self.database] * len(listed),
            "table_schema": [x[0] for x in listed], "table_name": [x[1] for x in listed],
            "constraint_type": [x[3] for x in listed]})
        checks = [x for x in listed if x[3] == "CHECK"]
        out["information_schema.check_constraints"] = pa.table({
            "constraint_catalog": pa.array([self.database] * len(checks), pa.string()),
            "constraint_schema": pa.array([x[0] for x in checks], pa.string()),
            "constraint_name": pa.array([x[2] for x in checks], pa.string()),
            "check_clause": pa.array([x[4] for x in checks], pa.string())})
        usage = []
        att_name = {(a["attrelid"], a["attnum"]): a["attname"] for a in self.atts}
        for c in cons:
            if c["contype"] == "c":  # key_column_usage lists key columns only
                continue
            for pos, k in enumerate(c["conkey"]):
                usage.append({"constraint_catalog": self.database, "constraint_schema": ns_name[c["connamespace"]],
                              "constraint_name": c["conname"], "table_catalog": self.database,
                              "table_schema": ns_name[c["connamespace"]], "table_name": rel_of[c["conrelid"]].name,
                              "column_name": att_name[(c["conrelid"], k)], "ordinal_position": pos + 1})
        out["information_schema.key_column_usage"] = _rows(usage, KEY_USAGE_TYPES)
        views = self.view_rows
        out["information_schema.views"] = pa.table({
            "table_catalog": pa.array([self.database] * len(views), pa.string()),
            "table_schema": pa.array([v["schemaname"] for v in views], pa.string()),
            "table_name": pa.array([v["viewname"] for v in views], pa.string()),
            "view_definition": pa.array([v["definition"] for v in views], pa.string()),
            "check_option": pa.array(["NONE"] * len(views), pa.string()),
            "is_updatable": pa.array(["NO"] * len(views), pa.string()),
            "is_insertable_into": pa.array(["NO"] * len(views), pa.string()),
            "is_trigger_updatable": pa.array(["NO"] * len(views), pa.string()),
            "is_trigger_deletable": pa.array(["NO"] * len(views), pa.string()),
            "is_trigger_insertable_into": pa.array(["NO"] * len(views), pa.string())})
        out["pg_settings"] = pa.table({"name": [], "setting": []}, schema=pa.schema(
            [("name", pa.string()), ("setting", pa.string())]))  # filled per statement
        # lookups behind catalog functions: column names of their own, so that a client's
        # unqualified "oid" in the argument cannot bind to the lookup's column
        out["__defs"] = pa.table({"def_oid": [d[0] for d in self.defs], "def_col": [d[1] for d in self.defs],
                                  "def_text": [d[2] for d in self.defs]})
        out["__formats"] = pa.table({"fmt_oid": [k[0] for k in self.formats],
                                     "fmt_typmod": [k[1] for k in self.formats],
                                     "fmt_name": list(self.formats.values())})
        out["__namespaces"] = pa.table({"ns_oid": [o for o, _ in self.namespaces],
                                        "ns_name": [n for _, n in self.namespaces]})
        out["__serials"] = pa.table({"ser_rel": pa.array([r[0] for r in self.serials], pa.int64()),
                                     "ser_col": pa.array([r[1] for r in self.serials], pa.string()),
                                     "ser_seq": pa.array([r[2] for r in self.serials], pa.int64())})
        out["__classes"] = pa.table({"cls_oid": [r.oid for r in rels], "cls_name": [r.name for r in rels],
                                     "cls_visible": [r.namespace in (pt.PUBLIC_NS, pt.PG_CATALOG_NS, TEMP_NS) for r in rels]})
        return {name: _pg_typed(table) for name, table in out.items()}

    def _databases(self) -> pa.Table:
        names = [self.database] + [f"{self.database}/{b}" for b in self.branches if b != "main"]
        n = len(names)
        return pa.table({
            "oid": [stable_oid("db", nm) for nm in names], "datname": names, "datdba": [OWNER_OID] * n,
            "encoding": [6] * n, "datlocprovider": ["c"] * n, "datistemplate": [False] * n,
            "datallowconn": [True] * n, "datconnlimit": [-1] * n, "datfrozenxid": [0] * n,
            "datminmxid": [0] * n, "dattablespace": [1663] * n, "datcollate": ["C"] * n, "datctype": ["C"] * n,
            "daticulocale": pa.nulls(n, pa.string()), "datcollversion": pa.nulls(n, pa.string()),
            "datacl": pa.nulls(n, pa.list_(pa.string()))})

    # -- lookups for constant folding --------------------------------------------------------
    def class_oid(self, name: str) -> int | None:
        schema, _, rel = name.rpartition(".")
        schema, rel = schema.strip('"'), rel.strip('"')
        if not schema:
            rel = rel.lower() if rel == rel.strip('"') else rel
        ns = {nm: o for o, nm in self.namespaces}
        want = {ns.get(schema, -1)} if schema else {pt.PUBLIC_NS, pt.PG_CATALOG_NS}
        for r in self.rels:
            if r.name == rel and r.namespace in want:
                return r.oid
        return None


def _attribute(rel: int, name: str, typ: int, mod: int, num: int, not_null: bool, has_def: bool) -> dict[str, Any]:
    return {"attrelid": rel, "attname": name, "atttypid": typ, "attstattarget": -1,
            "attlen": pt.FIXED_LENGTH.get(typ, -1), "attnum": num, "attndims": 0, "attcacheoff": -1,
            "atttypmod": mod, "attbyval": typ in pt.FIXED_LENGTH and pt.FIXED_LENGTH[typ] <= 8,
            "attalign": "i", "attstorage": "p" if typ in pt.FIXED_LENGTH else "x", "attcompression": "",
            "attnotnull": not_null, "atthasdef": has_def, "atthasmissing": False, "attidentity": "",
            "attgenerated": "", "attisdropped": False, "attislocal": True, "attinhcount": 0,
            "attcollation": DEFAULT_COLLATION if pt.BY_OID[typ].category == "S" else 0}


# int2vector: unsigned in DuckDB so the server can tell it from an array; oidvector columns
# are sent as oid[]
_INT2VECTOR, _OIDVECTOR = pa.list_(pa.uint16()), pa.list_(pa.uint32())
_ZERO_BASED = frozenset(("indkey", "indclass", "indcollation", "indoption", "proargtypes", "partattrs"))
ATTRIBUTE_TYPES = {
    "attrelid": pa.int64(), "attname": pa.string(), "atttypid": pa.int64(), "attstattarget": pa.int32(),
    "attlen": pa.int16(), "attnum": pa.int16(), "attndims": pa.int32(), "attcacheoff": pa.int32(),
    "atttypmod": pa.int32(), "attbyval": pa.bool_(), "attalign": pa.string(), "attstorage": pa.string(),
    "attcompression": pa.string(), "attnotnull": pa.bool_(), "atthasdef": pa.bool_(),
    "atthasmissing": pa.bool_(), "attidentity": pa.string(), "attgenerated": pa.string(),
    "attisdropped": pa.bool_(), "attislocal": pa.bool_(), "attinhcount": pa.int32(), "attcollation": pa.int64(),
    "attacl": pa.list_(pa.string()), "attoptions": pa.list_(pa.string()), "attfdwoptions": pa.list_(pa.string()),
}
INDEX_TYPES = {
    "indexrelid": pa.int64(), "indrelid": pa.int64(), "indnatts": pa.int16(), "indnkeyatts": pa.int16(),
    "indisunique": pa.bool_(), "indnullsnotdistinct": pa.bool_(), "indisprimary": pa.bool_(),
    "indisexclusion": pa.bool_(), "indimmediate": pa.bool_(), "indisclustered": pa.bool_(),
    "indisvalid": pa.bool_(), "indcheckxmin": pa.bool_(), "indisready": pa.bool_(), "indislive": pa.bool_(),
    "indisreplident": pa.bool_(), "indkey": _INT2VECTOR, "indcollation": _OIDVECTOR,
    "indclass": _OIDVECTOR, "indoption": _INT2VECTOR, "indexprs": pa.string(),
    "indpred": pa.string(),
}
_INDEX_DEFAULTS = {"indnullsnotdistinct": False, "indisexclusion": False, "indimmediate": True,
                   "indisclustered": False, "indisvalid": True, "indcheckxmin": False, "indisready": True,
                   "indislive": True, "indisreplident": False}
CONSTRAINT_TYPES = {
    "oid": pa.int64(), "conname": pa.string(), "connamespace": pa.int64(), "contype": pa.string(),
    "condeferrable": pa.bool_(), "condeferred": pa.bool_(), "convalidated": pa.bool_(), "conrelid": pa.int64(),
    "contypid": pa.int64(), "conindid": pa.int64(), "conparentid": pa.int64(), "confrelid": pa.int64(),
    "confupdtype": pa.string(), "confdeltype": pa.string(), "confmatchtype": pa.string(),
    "conislocal": pa.bool_(), "coninhcount": pa.int32(), "connoinherit": pa.bool_(),
    "conkey": pa.list_(pa.int16()), "confkey": pa.list_(pa.int16()), "conbin": pa.string(),
}
_CONSTRAINT_DEFAULTS = {"condeferrable": False, "condeferred": False, "convalidated": True, "contypid": 0,
                        "conparentid": 0, "confrelid": 0, "confupdtype": " ", "confdeltype": " ",
                        "confmatchtype": " ", "conislocal": True, "coninhcount": 0, "connoinherit": True}
_TS = pa.timestamp("us", "UTC")
STAT_ACTIVITY_TYPES = {
    "datid": pa.int64(), "datname": pa.string(), "pid": pa.int32(), "leader_pid": pa.int32(),
    "usesysid": pa.int64(), "usename": pa.string(), "application_name": pa.string(),
    "client_addr": pa.string(), "client_hostname": pa.string(), "client_port": pa.int32(),
    "backend_start": _TS, "xact_start": _TS, "query_start": _TS, "state_change": _TS,
    "wait_event_type": pa.string(), "wait_event": pa.string(), "state": pa.string(),
    "backend_xid": pa.int64(), "backend_xmin": pa.int64(), "query_id": pa.int64(), "query": pa.string(),
    "backend_type": pa.string()}
COLUMNS_TYPES = {
    "table_catalog": pa.string(), "table_schema": pa.string(), "table_name": pa.string(),
    "column_name": pa.string(), "ordinal_position": pa.int32(), "column_default": pa.string(),
    "is_nullable": pa.string(), "data_type": pa.string(), "character_maximum_length": pa.int32(),
    "numeric_precision": pa.int32(), "numeric_scale": pa.int32(), "udt_name": pa.string(),
    "is_identity": pa.string(), "is_generated": pa.string(), "generation_expression": pa.string(),
}
KEY_USAGE_TYPES = {
    "constraint_catalog": pa.string(), "constraint_schema": pa.string(), "constraint_name": pa.string(),
    "table_catalog": pa.string(), "table_schema": pa.string(), "table_name": pa.string(),
    "column_name": pa.string(), "ordinal_position": pa.int32(),
}
_OID, _TEXT, _BOOL = pa.int64(), pa.string(), pa.bool_()
# Catalogs reeldb has nothing in (no inheritance, triggers, rules, policies, publications,
# comments, functions a client can list, sequences as relations): empty, with their columns.
EMPTY: dict[str, dict[str, pa.DataType]] = {
    "pg_description": {"objoid": _OID, "classoid": _OID, "objsubid": pa.int32(), "description": _TEXT},
    "pg_parameter_acl": {"oid": _OID, "parname": _TEXT, "paracl": pa.list_(_TEXT)},  # no GRANT SET
    "pg_inherits": {"inhrelid": _OID, "inhparent": _OID, "inhseqno": pa.int32(), "inhdetachpending": _BOOL},
    "pg_trigger": {"oid": _OID, "tgrelid": _OID, "tgname": _TEXT, "tgfoid": _OID, "tgtype": pa.int16(),
                   "tgenabled": _TEXT, "tgisinternal": _BOOL, "tgparentid": _OID},
    "pg_rewrite": {"oid": _OID, "rulename": _TEXT, "ev_class": _OID, "ev_type": _TEXT, "ev_enabled": _TEXT,
                   "is_instead": _BOOL},
    "pg_policy": {"oid": _OID, "polname": _TEXT, "polrelid": _OID, "polcmd": _TEXT, "polpermissive": _BOOL,
                  "polroles": pa.list_(_OID), "polqual": _TEXT, "polwithcheck": _TEXT},
    "pg_statistic_ext": {"oid": _OID, "stxrelid": _OID, "stxname": _TEXT, "stxnamespace": _OID,
                         "stxowner": _OID, "stxstattarget": pa.int32(), "stxkeys": pa.list_(pa.int16()),
                         "stxkind": pa.list_(_TEXT), "stxexprs": _TEXT},
    "pg_publication": {"oid": _OID, "pubname": _TEXT, "pubowner": _OID, "puballtables": _BOOL,
                       "pubinsert": _BOOL, "pubupdate": _BOOL, "pubdelete": _BOOL, "pubtruncate": _BOOL,
                       "pubviaroot": _BOOL},
    "pg_publication_rel": {"oid": _OID, "prpubid": _OID, "prrelid": _OID, "prqual": _TEXT,
                           "prattrs": pa.list_(pa.int16())},
    "pg_publication_namespace": {"oid": _OID, "pnpubid": _OID, "pnnspid": _OID},
    "pg_partitioned_table": {"partrelid": _OID, "partstrat": _TEXT, "partnatts": pa.int16(),
                             "partdefid": _OID, "partattrs": pa.list_(pa.int16())},
    "pg_foreign_table": {"ftrelid": _OID, "ftserver": _OID, "ftoptions": pa.list_(_TEXT)},
    "pg_sequence": {"seqrelid": _OID, "seqtypid": _OID, "seqstart": pa.int64(), "seqincrement": pa.int64(),
                    "seqmax": pa.int64(), "seqmin": pa.int64(), "seqcache": pa.int64(), "seqcycle": _BOOL},
    "pg_enum": {"oid": _OID, "enumtypid": _OID, "enumsortorder": pa.float32(), "enumlabel": _TEXT},
    "pg_range": {"rngtypid": _OID, "rngsubtype": _OID, "rngmultitypid": _OID},
    "pg_depend": {"classid": _OID, "objid": _OID, "objsubid": pa.int32(), "refclassid": _OID,
                  "refobjid": _OID, "refobjsubid": pa.int32(), "deptype": _TEXT},
    "pg_proc": {"oid": _OID, "proname": _TEXT, "pronamespace": _OID, "proowner": _OID, "prokind": _TEXT,
                "prorettype": _OID, "proargtypes": pa.list_(_OID), "prosrc": _TEXT},
    "pg_matviews": {"schemaname": _TEXT, "matviewname": _TEXT, "matviewowner": _TEXT, "tablespace": _TEXT,
                    "hasindexes": _BOOL, "ispopulated": _BOOL, "definition": _TEXT},
    "pg_views": {"schemaname": _TEXT, "viewname": _TEXT, "viewowner": _TEXT, "definition": _TEXT},
    "pg_opclass": {"oid": _OID, "opcmethod": _OID, "opcname": _TEXT, "opcnamespace": _OID,
                   "opcintype": _OID, "opcdefault": _BOOL},
    "pg_shdescription": {"objoid": _OID, "classoid": _OID, "description": _TEXT},
    "pg_largeobject_metadata": {"oid": _OID, "lomowner": _OID, "lomacl": pa.list_(_TEXT)},  # large_objects.py
}


def _words(text: str) -> list[str]:
    return text.split()


# Postgres' oid is unsigned 32-bit, and so are these columns here (UINTEGER in DuckDB,
# which the server sends as oid: asyncpg's type introspection expects oid and oid[]).
OID_COLUMNS = frozenset(_words("""
    oid relnamespace reltype reloftype relowner relam relfilenode reltablespace reltoastrelid attrelid
    atttypid attcollation indexrelid indrelid connamespace conrelid contypid conindid conparentid confrelid
    adrelid typnamespace typowner typrelid typelem typarray typbasetype typcollation datdba dattablespace
    nspowner spcowner collnamespace extowner extnamespace objoid classoid inhrelid inhparent tgrelid tgfoid
    tgparentid ev_class polrelid stxrelid stxnamespace stxowner pubowner prpubid prrelid pnpubid pnnspid
    partrelid partdefid ftrelid ftserver seqrelid seqtypid enumtypid rngtypid rngsubtype rngmultitypid
    classid objid refclassid refobjid pronamespace proowner prorettype opcmethod opcnamespace opcintype
    usesysid datid cls_oid def_oid fmt_oid ns_oid"""))
OID_LIST_COLUMNS = frozenset(("polroles", "indcollation", "indclass", "proargtypes"))
# Postgres' one-byte "char" columns: an ENUM of the characters in DuckDB (sent as "char",
# which asyncpg reads as bytes), still compared with string literals as text is.
CHAR_COLUMNS = frozenset(_words("""
    typtype typcategory typalign typstorage typdelim relkind relpersistence relreplident contype confupdtype
    confdeltype confmatchtype attalign attstorage attidentity attgenerated attcompression amtype
    datlocprovider polcmd ev_type ev_enabled collprovider prokind deptype tgenabled partstrat"""))


def _pg_typed(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if f.name in OID_COLUMNS and pa.types.is_integer(f.type) and f.type != pa.uint32():
            table = table.set_column(i, f.name, table.column(i).cast(pa.uint32()))
        elif f.name in OID_LIST_COLUMNS and f.type != pa.list_(pa.uint32()):
            table = table.set_column(i, f.name, table.column(i).cast(pa.list_(pa.uint32())))
    return table


def _generation_text(expression: str) -> str:
    """A generation expression as pg_get_expr shows it: an operator expression in
    parentheses, as Postgres prints ``(a * 2)``."""
    node = parse(f"SELECT {expression}")[0].stmt.targetList[0].val
    return f"({expression})" if isinstance(node, ast.A_Expr | ast.BoolExpr) else expression


def _user_types(objs: dict[str, Any], ns_of: dict[str, int]) -> list[tuple[int, str, int, list[str]]]:
    """(oid, name, namespace oid, labels) of the branch's enum types."""
    out = []
    for name, d in sorted(objects.named(objs, objects.TYPE).items()):
        if d.get("kind") == "enum":
            sp = schema_of(name)[0]
            out.append((stable_oid("type", name), name, ns_of.get(sp or "public", pt.PUBLIC_NS), list(d["labels"])))
    return out


def _domains(objs: dict[str, Any], ns_of: dict[str, int]) -> list[tuple[int, str, int, int, int, bool, Any]]:
    """(oid, name, namespace oid, base type oid, base typmod, not null, default) of the
    branch's domains."""
    out = []
    for name, d in sorted(objects.named(objs, objects.TYPE).items()):
        if d.get("kind") == "domain":
            base, mod = pt.column_oid(ColumnType.from_json(d["base"]))
            out.append((stable_oid("type", name), name, ns_of.get(schema_of(name)[0] or "public", pt.PUBLIC_NS),
                        base, mod, bool(d.get("not_null")), d.get("default")))
    return out


def _domain_type_row(oid: int, name: str, ns: int, base: int, mod: int, not_null: bool, default: Any) -> dict:
    """A domain's pg_type row: typtype d over its base type."""
    b = pt.BY_OID[base]
    return {**_enum_type_row(oid, name.rpartition(".")[2], ns), "typtype": "d", "typcategory": b.category,
            "typlen": b.length, "typbyval": 0 < b.length <= 8, "typinput": "domain_in", "typoutput": f"{b.name}out",
            "typreceive": "domain_recv", "typsend": f"{b.name}send", "typbasetype": base, "typtypmod": mod,
            "typnotnull": not_null, "typdefault": default,
            "typcollation": DEFAULT_COLLATION if b.category == "S" else 0}


def _array_type_row(oid: int, name: str, ns: int, element: int) -> dict[str, Any]:
    """A user type's array type's pg_type row (``_name``), as Postgres makes it."""
    return {**_enum_type_row(oid, "_" + name.rpartition(".")[2], ns), "typlen": -1, "typbyval": False,
            "typtype": "b", "typcategory": "A", "typelem": element, "typinput": "array_in",
            "typoutput": "array_out", "typreceive": "array_recv", "typsend": "array_send", "typstorage": "x"}


def _enum_type_rows(oid: int, name: str, ns: int) -> list[dict[str, Any]]:
    return [{**_enum_type_row(oid, name.rpartition(".")[2], ns), "typarray": user_array_oid(name)},
            _array_type_row(user_array_oid(name), name, ns, oid)]


def _composite_type_rows(oid: int, name: str, ns: int) -> list[dict[str, Any]]:
    """A composite type's pg_type row (typtype c, its fields in pg_class / pg_attribute
    under typrelid) and its array type's."""
    row = {**_enum_type_row(oid, name.rpartition(".")[2], ns), "typlen": -1, "typbyval": False, "typtype": "c",
           "typcategory": "C", "typrelid": stable_oid("rel", "composite type", name), "typarray": user_array_oid(name),
           "typinput": "record_in", "typoutput": "record_out", "typreceive": "record_recv",
           "typsend": "record_send", "typalign": "d", "typstorage": "x"}
    return [row, _array_type_row(user_array_oid(name), name, ns, oid)]


def _enum_type_row(oid: int, name: str, ns: int) -> dict[str, Any]:
    """An enum type's pg_type row, as Postgres has it (4 bytes, by value, category E)."""
    return {"oid": oid, "typname": name, "typnamespace": ns, "typowner": OWNER_OID, "typlen": 4, "typbyval": True,
            "typtype": "e", "typcategory": "E", "typispreferred": False, "typisdefined": True, "typdelim": ",",
            "typrelid": 0, "typelem": 0, "typarray": 0, "typinput": "enum_in", "typoutput": "enum_out",
            "typreceive": "enum_recv", "typsend": "enum_send", "typalign": "i", "typstorage": "p",
            "typnotnull": False, "typbasetype": 0, "typtypmod": -1, "typndims": 0, "typcollation": 0,
            "typdefault": None, "typacl": None}


def _rows(rows: list[dict[str, Any]], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], t) for c, t in types.items()})


def _types_table() -> pa.Table:
    ts = pt.TYPES
    n = len(ts)
    return pa.table({
        "oid": [t.oid for t in ts], "typname": [t.name for t in ts], "typnamespace": [t.namespace for t in ts],
        "typowner": [OWNER_OID] * n, "typlen": pa.array([t.length for t in ts], pa.int16()),
        "typbyval": [0 < t.length <= 8 for t in ts],
        "typtype": [("m" if "multirange" in t.name else "r") if t.category == "R" else "b" for t in ts],  # range, multirange
        "typcategory": [t.category for t in ts], "typispreferred": [False] * n, "typisdefined": [True] * n,
        "typdelim": [","] * n, "typrelid": [0] * n, "typelem": [t.element for t in ts],
        "typarray": [t.array for t in ts], "typinput": [f"{t.name}_in" for t in ts],
        "typoutput": [f"{t.name}_out" for t in ts], "typreceive": [f"{t.name}_recv" for t in ts],
        "typsend": [f"{t.name}_send" for t in ts], "typalign": ["i"] * n, "typstorage": ["x"] * n,
        "typnotnull": [False] * n, "typbasetype": [0] * n, "typtypmod": [-1] * n, "typndims": [0] * n,
        "typcollation": [DEFAULT_COLLATION if t.category == "S" else 0 for t in ts],
        "typdefault": pa.nulls(n, pa.string()), "typacl": pa.nulls(n, pa.list_(pa.string()))})


def format_type(oid: int, typmod: int) -> str:
    """Postgres' ``format_type``: the SQL name of a type with its modifier."""
    t = pt.BY_OID.get(oid)
    if t is None:
        return "???"
    if t.element:
        return format_type(t.element, typmod) + "[]"
    name = t.display_name
    if typmod is None or typmod < 0:
        return name
    if t.name in ("varchar", "bpchar"):
        return f"{name}({typmod - 4})"
    if t.name == "numeric":
        return f"numeric({(typmod - 4) >> 16},{(typmod - 4) & 0xFFFF})"
    if t.name in ("vector", "halfvec", "sparsevec", "bit", "varbit"):
        return f"{name}({typmod})"
    return name


def _information_type(oid: int, sql: str) -> str:
    t = pt.BY_OID[oid]
    if t.element:  # int[], vector[]: information_schema names the element in udt_name (_int4)
        return "ARRAY"
    if t.namespace == pt.PUBLIC_NS:
        return "USER-DEFINED"
    return t.display_name


# The extensions every reeldb database has, built in (name -> version): CREATE EXTENSION
# accepts them, DROP EXTENSION refuses, any other is not available.
EXTENSIONS = {"plpgsql": "1.0", "vector": "0.8.0"}


# -- per-session state ----------------------------------------------------------------------
class PgCatalog:
    """The catalog one session's statements see, registered with its DuckDB connection."""

    def __init__(self, session: Session):
        self.s = session
        self._key: tuple | None = None
        self.current: CatalogTables | None = None
        self._settings_key: tuple | None = None
        self._views: set[str] = set()
        self._cursors_key: tuple | None = None
        self._prepared_key: tuple | None = None
        # the server's live sessions (None: an embedded connection, the one session)
        self.activity: Activity | None = None
        self.started = activity_now()  # backend_start of an embedded connection

    def tables(self) -> CatalogTables:
        s = self.s
        current = s.current_tables()
        spaces = sorted(namespace_schemas(s))
        by_space: dict[str | None, dict[str, TableManifest]] = {None: {}, **{sp: {} for sp in spaces}}
        for name in current:
            sp, local = schema_of(name)
            by_space.setdefault(sp, {})[local] = current[name]
        schemas: list[tuple[str, int, dict[str, TableManifest]]] = [("public", pt.PUBLIC_NS, by_space[None])]
        schemas += [(sp, namespace_oid(sp), by_space[sp]) for sp in spaces]
        branches = sorted(s.catalog.refs.branches().items())
        visible = [(b, c) for b, c in branches if s.rights.may_name(b)]  # only what the login may read
        for b, cid in visible:
            schemas.append((b, stable_oid("ns", b), s.catalog.snapshot(cid)))
        objs = s.catalog_objects()
        key = (tuple((sc, ns, tuple((n, tm.table_id, tm.schema.fingerprint, tm.rows, tm.indexes) for n, tm in t.items()))
                     for sc, ns, t in schemas), s.user, s.database, json.dumps(objs, sort_keys=True),
               json.dumps(s.temp_views, sort_keys=True))
        if key != self._key:
            self.current = CatalogTables(schemas, s.user, s.database, [b for b, _ in visible], objs, s.temp_views)
            for name, table in self.current.tables.items():
                self._register(name, table)
            self._key = key
        settings_now = settings(s)
        skey = tuple(sorted(settings_now.items()))
        if skey != self._settings_key:
            names, values = list(settings_now), list(settings_now.values())
            s.engine.register(relation_name("pg_settings"), pg_settings(s, settings_now))
            s.engine.register(relation_name("__settings"), pa.table({"set_name": names, "set_value": values}))
            self._settings_key = skey
        cursors = tuple((n, c.hold, c.backward_ok) for n, c in s.cursors.items())
        if cursors != self._cursors_key:
            s.engine.register(relation_name("pg_cursors"), pa.table({
                "name": [n for n, *_ in cursors], "statement": [s.cursors[n].statement for n, *_ in cursors],
                "is_holdable": [h for _, h, _ in cursors], "is_binary": [False] * len(cursors),
                "is_scrollable": [b for *_, b in cursors],
                "creation_time": pa.nulls(len(cursors), pa.timestamp("us", "UTC"))},
                schema=pa.schema([("name", pa.string()), ("statement", pa.string()), ("is_holdable", pa.bool_()),
                                  ("is_binary", pa.bool_()), ("is_scrollable", pa.bool_()),
                                  ("creation_time", pa.timestamp("us", "UTC"))])))
            self._cursors_key = cursors
        prepared = tuple((n, id(st)) for n, st in s.prepared.items() if n)
        if prepared != self._prepared_key:
            self._register_prepared([n for n, _ in prepared])
            self._prepared_key = prepared
        assert self.current is not None
        return self.current

    def _register_prepared(self, names: list[str]) -> None:
        """pg_prepared_statements: the session's named prepared statements."""
        sts = [self.s.prepared[n] for n in names]
        n = len(sts)
        types = pa.list_(pa.string())
        self.s.engine.register(relation_name("pg_prepared_statements"), pa.table({
            "name": pa.array(names, pa.string()), "statement": pa.array([st.query for st in sts], pa.string()),
            "prepare_time": pa.array([st.prepare_time for st in sts], pa.timestamp("us", "UTC")),
            "parameter_types": pa.array([[format_type(o, -1) for o in st.param_oids] for st in sts], types),
            "result_types": pa.nulls(n, types), "from_sql": pa.array([False] * n, pa.bool_()),
            "generic_plans": pa.array([0] * n, pa.int64()), "custom_plans": pa.array([0] * n, pa.int64())}))

    def _register(self, name: str, table: pa.Table) -> None:
        """Register a catalog table; one with "char" columns goes behind a view that casts
        them (made once: the view reads whatever is registered under the raw name)."""
        chars = [f.name for f in table.schema if f.name in CHAR_COLUMNS]
        if not chars:
            self.s.engine.register(relation_name(name), table)
            return
        raw = relation_name(name) + "__raw"
        self.s.engine.register(raw, table)
        if name not in self._views:
            casts = ", ".join(f"CAST({c} AS {CHAR_TYPE}) AS {c}" for c in chars)
            self.s.engine.execute(f"CREATE OR REPLACE TEMP VIEW {relation_name(name)} AS "
                                  f"SELECT * REPLACE ({casts}) FROM {raw}")
            self._views.add(name)

    def relation(self, schema: str | None, name: str) -> str | None:
        """The registered relation for a catalog table, or None where ``name`` is not one."""
        if schema is not None and schema.lower() == "information_schema":
            key = f"information_schema.{name}"
        elif schema is None or schema.lower() == "pg_catalog":
            key = name
        else:
            return None
        if key == "pg_largeobject":  # the pages: readable by superusers only, and reeldb has none
            raise errors.InsufficientPrivilege("permission denied for table pg_largeobject")
        if key not in CATALOG_NAMES:
            if schema is None:
                return None
            raise errors.UndefinedTable(f'relation "{schema}.{name}" does not exist')
        self.tables()
        if key == "pg_stat_activity":  # who is doing what changes between statements
            self.s.engine.register(relation_name(key), _pg_typed(self._stat_activity()))
        return relation_name(key)

    def _stat_activity(self) -> pa.Table:
        """pg_stat_activity: the server's sessions (an embedded connection: itself), with
        another user's details NULL unless this login is an admin (activity.py)."""
        s = self.s
        if self.activity is not None:
            backends = self.activity.backends()
        else:
            t = activity_now()
            txn_start = s.xact_start if s.txn is not None and s.xact_start is not None else t
            backends = [Backend(s.backend_pid, s.user, s.database, lambda: None, lambda: None,
                                application_name=settings(s).get("application_name", ""),
                                backend_start=self.started, xact_start=txn_start, query_start=t,
                                state_change=t, state="active", query=s.query_text)]
        user, admin = s.user, s.rights.admin
        rows = []
        for b in backends:
            row: dict[str, Any] = {
                "datid": stable_oid("db", b.database), "datname": b.database, "pid": b.pid,
                "usesysid": OWNER_OID if b.user == user else stable_oid("role", b.user), "usename": b.user,
                "application_name": b.application_name, "query": "<insufficient privilege>"}
            if may_see(user, admin, b):
                row.update({"client_addr": b.client_addr, "client_port": b.client_port,
                            "backend_start": b.backend_start, "xact_start": b.xact_start,
                            "query_start": b.query_start, "state_change": b.state_change,
                            "wait_event_type": "Client" if b.state != "active" else None,
                            "wait_event": "ClientRead" if b.state != "active" else None,
                            "state": b.state, "query": b.query, "backend_type": "client backend"})
            rows.append(row)
        return _rows(rows, STAT_ACTIVITY_TYPES)


def relation_name(key: str) -> str:
    return internal_name("pg", key.replace(".", "__"))


CATALOG_NAMES = frozenset([
    "pg_namespace", "pg_class", "pg_attribute", "pg_index", "pg_indexes", "pg_constraint", "pg_attrdef", "pg_type",
    "pg_database", "pg_am", "pg_roles", "pg_user", "pg_tablespace", "pg_collation", "pg_extension",
    "pg_settings", "pg_cursors", "pg_prepared_statements", "pg_stat_activity", "pg_largeobject", *EMPTY, "information_schema.schemata", "information_schema.tables",
    "information_schema.columns", "information_schema.table_constraints", "information_schema.check_constraints",
    "information_schema.key_column_usage", "information_schema.views",
])


# -- rewriting: catalog functions, operators, casts ----------------------------------------
_TEMPLATES: dict[str, ast.Node] = {}
_INTERNAL_NAME = re.compile(re.escape(INTERNAL) + r"\w*")


def _named(rv: ast.RangeVar, relname: str) -> ast.RangeVar:
    rv.relname = relname
    return rv


def _plus(node: ast.Node, n: int) -> ast.Node:
    return ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval="+"),), lexpr=node, rexpr=_const(n))


def _template(sql: str, *args: ast.Node) -> ast.Node:
    """A parsed expression with ``$n`` replaced by the n-th argument node."""
    from .parse import transform, walk

    if sql not in _TEMPLATES:
        # internal relation names are longer than the parser keeps: parsed as short
        # stand-ins, put back in the tree
        names: dict[str, str] = {}

        def stand_in(m: re.Match) -> str:
            names[f"__rel{len(names)}"] = m.group(0)
            return f"__rel{len(names) - 1}"

        parsed = parse(f"SELECT {_INTERNAL_NAME.sub(stand_in, sql)}")[0].stmt.targetList[0].val
        for n in walk(parsed):  # reeldb's own text, not a client's: no location, as allowlist expects
            if isinstance(n, ast.FuncCall | ast.TypeName):
                n.location = None
        _TEMPLATES[sql] = transform(parsed, lambda n: _named(n, names[n.relname])
                                    if isinstance(n, ast.RangeVar) and n.relname in names else None)
    node = copy.deepcopy(_TEMPLATES[sql])
    return transform(node, lambda n: args[n.number - 1] if isinstance(n, ast.ParamRef) else None)


def _const(value: Any) -> ast.Node:
    if value is None:
        return ast.A_Const(isnull=True)
    if isinstance(value, bool):
        return ast.A_Const(val=ast.Boolean(boolval=value))
    if isinstance(value, int):
        return ast.A_Const(val=ast.Integer(ival=value))
    return ast.A_Const(val=ast.String(sval=str(value)))


def _text(node: ast.Node) -> ast.Node:
    return ast.TypeCast(arg=node, typeName=ast.TypeName(names=(ast.String(sval="varchar"),), typemod=-1))


def _constant_arg(node: ast.Node, params: list[Any] | None = None) -> tuple[bool, Any]:
    """(is it a constant, its value): a literal or a bound parameter, through casts."""
    return constant_argument(node, params)


_REL = relation_name
_WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "CREATE", "REFERENCES", "TRIGGER")


class CatalogRewrite:
    """Node rewrites for a statement; ``visit`` returns a replacement or None."""

    def __init__(self, pg: PgCatalog, recurse: Callable[[Any], Any], params: list[Any]):
        self.s, self.pg, self.recurse, self.params = pg.s, pg, recurse, params

    def visit(self, node: ast.Node) -> ast.Node | None:
        if isinstance(node, ast.FuncCall):
            return self.call(node)
        if isinstance(node, ast.SelectStmt) and node.targetList and _signal_targets(node, self.params):
            return self._signal_rows(node)
        if isinstance(node, ast.SQLValueFunction):
            return self.value_function(node)
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and node.name:
            return self.operator(node)
        if isinstance(node, ast.ColumnRef) and len(node.fields) == 3 and isinstance(node.fields[0], ast.String) \
                and node.fields[0].sval.lower() in ("pg_catalog", "information_schema"):
            return ast.ColumnRef(fields=node.fields[1:])  # the relation is aliased by its own name
        if isinstance(node, ast.CollateClause) and node.location is not None:  # reeldb's own (citext) stay
            return self.recurse(node.arg)
        if isinstance(node, ast.A_Indirection) and self._zero_based(node.arg):
            return self._subscript(node)
        if isinstance(node, ast.TypeCast):
            return self.type_cast(node)
        return None

    # -- functions -------------------------------------------------------------------------
    def call(self, node: ast.FuncCall) -> ast.Node | None:
        names = node.funcname
        qualified = len(names) > 1 and names[0].sval == "pg_catalog"
        name = names[-1].sval.lower()
        fold = self._folds().get(name)
        if fold is not None:
            return fold([self.recurse(a) for a in (node.args or ())])
        # not folded: the caller's walk descends into the arguments, once (rewriting them
        # here as well made nested calls cost 2^depth)
        if qualified:  # DuckDB resolves the unqualified name among its own functions
            node.funcname = (names[-1],)
        renamed = _RENAMED.get(name)
        if renamed is not None:
            node.funcname = (ast.String(sval=renamed),)
            node.location = None  # reeldb's name now, not the client's: the allow-list trusts it
        return bound_call(node, self.recurse, self.s.memory_limit)  # repeat() & co: size checked

    def _folds(self) -> dict[str, Callable[[list[ast.Node]], ast.Node]]:
        s = self.s
        return {
            "version": lambda a: _const(version_string()),
            "current_database": lambda a: _const(s.database),
            "current_catalog": lambda a: _const(s.database),
            "current_schema": lambda a: _const("public"),
            "current_schemas": self._current_schemas,
            "current_user": lambda a: _const(s.user),
            "session_user": lambda a: _const(s.user),
            "pg_get_userbyid": self._user_by_id,
            "pg_encoding_to_char": lambda a: _const("UTF8"),
            "pg_char_to_encoding": lambda a: _const(6),
            "pg_backend_pid": lambda a: _const(s.backend_pid),
            "pg_is_in_recovery": lambda a: _const(False),
            "pg_postmaster_start_time": lambda a: func("now"),
            "pg_conf_load_time": lambda a: func("now"),
            "inet_server_addr": lambda a: _const(None),
            "inet_server_port": lambda a: _const(None),
            "txid_current": lambda a: _const(1),
            "pg_current_xact_id": lambda a: _const(1),
            "current_setting": self._current_setting,
            "set_config": self._set_config,
            "pg_terminate_backend": lambda a: self._signal("terminate", a),
            "pg_cancel_backend": lambda a: self._signal("cancel", a),
            "obj_description": self._obj_description,
            "col_description": self._col_description,
            **{fn: (lambda a, fn=fn: sequences.rewrite_call(s, fn, a)) for fn in sequences.FUNCTIONS},
            "shobj_description": lambda a: _text(_const(None)),
            "pg_get_expr": lambda a: a[0],
            "pg_get_viewdef": self._viewdef,
            "pg_get_partkeydef": lambda a: _text(_const(None)),
            "pg_get_partition_constraintdef": lambda a: _text(_const(None)),
            "pg_get_serial_sequence": self._serial_sequence,
            "pg_get_statisticsobjdef_columns": lambda a: _text(_const(None)),
            "pg_table_is_visible": lambda a: self._visible(a[0]),
            "pg_type_is_visible": lambda a: _const(True),
            "pg_function_is_visible": lambda a: _const(True),
            "format_type": lambda a: self._format_type(a[0], a[1] if len(a) > 1 else _const(None)),
            "pg_get_indexdef": self._indexdef,
            "generate_subscripts": self._subscripts,
            "pg_get_constraintdef": lambda a: self._def(a[0], _const(-1 if len(a) > 1 and
                                                                      _constant_arg(a[1], self.params)[1] else 0)),
            "to_regclass": self._to_regclass,
            "to_regtype": self._to_regtype,
            "has_table_privilege": self._privilege,
            "has_column_privilege": self._privilege,
            "has_any_column_privilege": self._privilege,
            "has_schema_privilege": self._privilege,
            "has_database_privilege": self._privilege,
            "has_sequence_privilege": self._privilege,
            "pg_has_role": lambda a: _const(True),
            "pg_relation_size": lambda a: _const(0),
            "pg_total_relation_size": lambda a: _const(0),
            "pg_table_size": lambda a: _const(0),
            "pg_indexes_size": lambda a: _const(0),
            "pg_relation_is_publishable": lambda a: _const(False),
            "pg_notify": self._notify,
            "array_upper": lambda a: self._array_dimension("array_upper", a, "len($1)"),
            "array_lower": lambda a: self._array_dimension("array_lower", a, "1"),
            "array_length": lambda a: self._array_dimension("array_length", a, "len($1)"),
            # every element of a multi-dimensional array in PostgreSQL: refused there, not counted by rows
            "cardinality": lambda a: _template(
                "CAST(CASE WHEN typeof($1) LIKE '%[][]' THEN error('cardinality() of a multi-dimensional array "
                f"{NOT_SUPPORTED_AT_RUN}') ELSE len($1) END AS int4)", *a),
        }

    def _array_dimension(self, name: str, args: list[ast.Node], value: str) -> ast.Node:
        """array_length / array_lower / array_upper (array, dimension) of a one-dimensional
        array, as int4: NULL for an empty array (Postgres' has no dimensions) or a NULL
        dimension. Any dimension but 1 is refused: reeldb cannot tell a list of lists from
        an array of more dimensions here, whose answer would differ."""
        if len(args) != 2:
            raise errors.UndefinedFunction(f"function {name} with {len(args)} arguments does not exist")
        ok, dim = _constant_arg(args[1], self.params)
        if ok and dim is None:
            return _template("CAST(NULL AS int4)")
        if not ok or dim != 1:
            raise errors.FeatureNotSupported(f"{name}() of a dimension other than 1 is not supported: "
                                             "reeldb's array columns have one dimension")
        return _template(f"CASE WHEN len($1) > 0 THEN CAST({value} AS int4) END", args[0])

    def _serial_sequence(self, args: list[ast.Node]) -> ast.Node:
        """pg_get_serial_sequence(table, column): the qualified name of the sequence an
        identity or SERIAL column (or OWNED BY) draws from; NULL for another column. Only
        constant arguments are resolved: over catalog rows it is NULL (a regclass of a
        computed name cannot be resolved here either)."""
        if len(args) != 2:
            raise errors.UndefinedFunction(f"function pg_get_serial_sequence with {len(args)} arguments does not exist")
        (ok_t, table), (ok_c, column) = (_constant_arg(a, self.params) for a in args)
        if not (ok_t and ok_c):  # over catalog rows (SQLAlchemy's column reflection): not resolved, as before
            return _text(_const(None))
        if table is None or column is None:
            return _text(_const(None))
        try:
            key = sequences.sequence_name(self.s, str(table))  # a table's name as regclass reads it
        except errors.UndefinedTable:
            raise errors.UndefinedTable(f'relation "{table}" does not exist') from None
        if key not in self.s.current_tables():
            raise errors.UndefinedTable(f'relation "{table}" does not exist')
        return _text(_const(sequences.serial_sequences(self.s).get((key, str(column)))))

    def _serial_sequence_oid(self, node: ast.Node) -> ast.Node | None:
        """``pg_get_serial_sequence(rel::regclass::text, col)::regclass`` over catalog rows
        (SQLAlchemy's reflection of identity columns): the sequence's oid, looked up by the
        table's oid and the column."""
        if not (isinstance(node, ast.FuncCall) and node.funcname[-1].sval == "pg_get_serial_sequence"
                and node.args and len(node.args) == 2):
            return None
        rel = node.args[0]
        while isinstance(rel, ast.TypeCast) and rel.typeName.names[-1].sval.lower() in ("text", "varchar", "regclass"):
            rel = rel.arg
        if rel is node.args[0]:
            return None
        self.pg.tables()
        return _template(f"(SELECT ser_seq FROM {_REL('__serials')} WHERE ser_rel = $1 AND ser_col = $2 LIMIT 1)",
                         self.recurse(rel), self.recurse(node.args[1]))

    def _user_by_id(self, args: list[ast.Node]) -> ast.Node:
        """pg_get_userbyid(oid): the login's name for its own OID, an owner's for a large
        object's lomowner, else PostgreSQL's ``unknown (OID=n)``."""
        self.pg.tables()
        return _template(f"coalesce((SELECT role_name FROM {_REL('__role_names')} WHERE role_oid = $1), "
                         "'unknown (OID=' || CAST($1 AS VARCHAR) || ')')", args[0])

    def _obj_description(self, args: list[ast.Node]) -> ast.Node:
        """obj_description(oid [, catalog]): the comment of a table, schema, type or sequence."""
        self.pg.tables()
        catalog = args[1] if len(args) > 1 else _const(None)
        return _template(f"(SELECT description FROM {_REL('pg_description')} WHERE objoid = $1 AND objsubid = 0 "
                         f"AND ($2 IS NULL OR classoid = (SELECT cls_oid FROM {_REL('__classes')} "
                         f"WHERE cls_name = $2 LIMIT 1)) LIMIT 1)", args[0], catalog)

    def _col_description(self, args: list[ast.Node]) -> ast.Node:
        """col_description(table oid, column number): the column's comment."""
        self.pg.tables()
        return _template(f"(SELECT description FROM {_REL('pg_description')} WHERE objoid = $1 AND objsubid = $2 "
                         "LIMIT 1)", args[0], args[1])

    def _current_setting(self, args: list[ast.Node]) -> ast.Node:
        ok, name = _constant_arg(args[0], self.params)
        missing_ok = len(args) > 1 and _constant_arg(args[1], self.params)[1] is True
        values = settings(self.s)
        if ok and isinstance(name, str):
            value = values.get(name.lower())
            if value is None and not missing_ok:
                raise errors.UndefinedObject(f'unrecognized configuration parameter "{name}"')
            return _text(_const(value))
        self.pg.tables()
        return _template(f"(SELECT set_value FROM {_REL('__settings')} WHERE set_name = lower($1))", args[0])

    def _set_config(self, args: list[ast.Node]) -> ast.Node:
        """set_config(name, value, is_local): SET through the settings allow-list, as SET does."""
        got = [_constant_arg(a, self.params) for a in args]
        if len(got) != 3 or not all(ok for ok, _ in got):
            raise errors.FeatureNotSupported("set_config() takes three constants or parameters")
        (_, name), (_, value), (_, local) = got
        if name is None:
            raise errors.DataError("SET requires parameter name", sqlstate="22004")
        if not self.s.describing:
            assign(self.s, str(name).lower(), None if value is None else str(value), str(name), local=local is True)
        return _text(_const(settings(self.s).get(str(name).lower(), value)))

    def _current_schemas(self, args: list[ast.Node]) -> ast.Node:
        """current_schemas(include_implicit): the search path reeldb resolves names by
        (settings.py: always "$user", public; no schema is named after a user)."""
        ok, implicit = _constant_arg(args[0], self.params) if args else (False, None)
        if ok and implicit is None:
            return _template("CAST(NULL AS VARCHAR[])")
        if ok:
            return _template("ARRAY['pg_catalog', 'public']" if implicit else "ARRAY['public']")
        return _template("CASE WHEN $1 THEN ARRAY['pg_catalog', 'public'] WHEN NOT $1 THEN ARRAY['public'] END",
                         args[0])

    def _signal(self, kind: str, args: list[ast.Node]) -> ast.Node:
        """pg_terminate_backend(pid [, timeout]) / pg_cancel_backend(pid): a session of
        this server, with PostgreSQL's rights and answers (activity.py)."""
        got = [_constant_arg(a, self.params) for a in args]
        if not got or not all(ok for ok, _ in got):
            raise errors.FeatureNotSupported(
                f"pg_{kind}_backend() takes a constant, a parameter or a column of the select list's "
                f"own rows as its pid in reeldb (SELECT pg_{kind}_backend(pid) FROM pg_stat_activity WHERE ...)")
        values = [v for _, v in got]
        boolean = ast.TypeName(names=(ast.String(sval="boolean"),), typemod=-1)
        if any(v is None for v in values):
            return ast.TypeCast(arg=_const(None), typeName=boolean)  # strict, as in PostgreSQL
        try:
            pid, timeout = int(values[0]), int(values[1]) if len(values) > 1 else 0
        except (TypeError, ValueError):
            raise errors.InvalidTextRepresentation(
                f'invalid input syntax for type integer: "{values[0]}"') from None
        if timeout < 0:
            raise errors.NumericValueOutOfRange('"timeout" must not be negative')
        if self.s.describing:  # a Describe runs the statement only to learn its columns
            return ast.TypeCast(arg=_const(None), typeName=boolean)
        done = self._send_signal(kind, pid, timeout)
        return ast.TypeCast(arg=_const(done), typeName=boolean)

    def _signal_rows(self, stmt: ast.SelectStmt) -> ast.Node:
        """``SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ...``: the pids
        (and timeouts) are selected first, each row's session is then signalled in row
        order (a refusal stops there, as PostgreSQL's row-by-row evaluation does), and the
        statement becomes a read of those rows with the answers in place of the calls."""
        calls = _signal_targets(stmt, self.params)
        boolean = ast.TypeName(names=(ast.String(sval="boolean"),), typemod=-1)
        if self.s.describing:  # only its columns: nothing is signalled
            for i, rt in enumerate(stmt.targetList):
                if i in calls:
                    rt.val = ast.TypeCast(arg=_const(None), typeName=boolean)
            return self.recurse(stmt)
        first = copy.deepcopy(stmt)
        targets = []
        for i, rt in enumerate(first.targetList):
            args = list(rt.val.args) if i in calls else [rt.val]
            targets.append(ast.ResTarget(name=f"c{i}", val=args[0]))
            if i in calls and len(args) > 1:
                targets.append(ast.ResTarget(name=f"t{i}", val=args[1]))
        first.targetList = tuple(targets)
        sql = finish(deparse(self.recurse(first)))
        table, _ = self.s.engine.arrow(sql, self.s.duck_params(self.params, sql))
        if table.num_rows > MAX_SIGNAL_ROWS:  # each row signals (or warns): bounded per client
            raise errors.ProgramLimitExceeded(
                f"pg_{next(iter(calls.values()))}_backend() over {table.num_rows} rows: reeldb signals at most "
                f"{MAX_SIGNAL_ROWS} sessions in one statement")
        columns: dict[str, pa.Array] = {}
        for i in range(len(stmt.targetList)):
            column = table.column(f"c{i}")
            if i in calls:
                timeouts = table.column(f"t{i}").to_pylist() if f"t{i}" in table.column_names else None
                answers = []
                for n, pid in enumerate(column.to_pylist()):
                    timeout = 0 if timeouts is None else timeouts[n]
                    if pid is None or timeout is None:
                        answers.append(None)
                        continue
                    if timeout < 0:
                        raise errors.NumericValueOutOfRange('"timeout" must not be negative')
                    self.s.check_deadline()  # statement_timeout and cancels apply between rows
                    answers.append(self._send_signal(calls[i], int(pid), int(timeout)))
                column = pa.array(answers, pa.bool_())
            columns[f"c{i}"] = column
        columns["n"] = pa.array(range(table.num_rows), pa.int64())
        rel = internal_name("signalled")
        self.s.engine.register(rel, pa.table(columns))
        return ast.SelectStmt(
            targetList=tuple(ast.ResTarget(name=rt.name or _column_name(rt.val),
                                           val=ast.ColumnRef(fields=(ast.String(sval=f"c{i}"),)))
                             for i, rt in enumerate(stmt.targetList)),
            fromClause=(ast.RangeVar(relname=rel, inh=True, relpersistence="p"),),
            sortClause=(ast.SortBy(node=ast.ColumnRef(fields=(ast.String(sval="n"),)), sortby_dir=0,
                                   sortby_nulls=0),),
            limitOption=0, op=0)

    def _send_signal(self, kind: str, pid: int, timeout_ms: int) -> bool:
        import time

        from .activity import WarningNotice, signal

        s, registry = self.s, self.pg.activity
        if registry is None:  # an embedded connection: its own session is the only one
            if pid != s.backend_pid:
                return signal(None, pid, kind, s.user, s.rights.admin, s.notice)
            if kind == "terminate":
                raise errors.FeatureNotSupported(
                    "pg_terminate_backend() of an embedded connection: close the connection instead")
            raise errors.QueryCanceled("canceling statement due to user request")
        target = registry.get(pid)
        if kind == "cancel" and pid == s.backend_pid:  # its own statement: this one
            raise errors.QueryCanceled("canceling statement due to user request")
        done = signal(target, pid, kind, s.user, s.rights.admin, s.notice)
        if done and kind == "terminate" and timeout_ms > 0 and pid != s.backend_pid:
            deadline = time.monotonic() + timeout_ms / 1000
            while registry.get(pid) is not None:
                s.check_deadline()  # statement_timeout and cancels still apply while it waits
                if time.monotonic() >= deadline:
                    s.notice(WarningNotice(f"backend with PID {pid} did not terminate within {timeout_ms} milliseconds"))
                    return False
                time.sleep(0.01)
        return done

    def _notify(self, args: list[ast.Node]) -> ast.Node:
        from .notify import notify

        ok, channel = _constant_arg(args[0], self.params) if args else (False, None)
        ok2, payload = _constant_arg(args[1], self.params) if len(args) > 1 else (True, None)
        if not (ok and ok2):
            raise errors.FeatureNotSupported("pg_notify() takes constants or parameters")
        if not self.s.describing:  # a Describe runs the statement only to learn its columns
            notify(self.s, str(channel or ""), None if payload is None else str(payload))
        return _text(_const(None))  # void

    def _visible(self, oid: ast.Node) -> ast.Node:
        self.pg.tables()
        return _template(f"coalesce((SELECT cls_visible FROM {_REL('__classes')} WHERE cls_oid = $1), false)", oid)

    def _format_type(self, oid: ast.Node, mod: ast.Node) -> ast.Node:
        self.pg.tables()
        f = _REL("__formats")
        return _template(f"coalesce((SELECT fmt_name FROM {f} WHERE fmt_oid = $1 AND fmt_typmod = coalesce($2, -1)), "
                         f"(SELECT fmt_name FROM {f} WHERE fmt_oid = $1 AND fmt_typmod = -1))", oid, mod)

    def _def(self, oid: ast.Node, col: ast.Node) -> ast.Node:
        self.pg.tables()
        return _template(f"(SELECT def_text FROM {_REL('__defs')} WHERE def_oid = $1 AND def_col = coalesce($2, 0))",
                         oid, col)

    # -- int2vector / oidvector: numbered from 0 in PostgreSQL, lists from 1 here -------------
    def _zero_based(self, node: ast.Node) -> bool:
        """A catalog int2vector or oidvector column (pg_index.indkey, ...), not a user table's."""
        if not isinstance(node, ast.ColumnRef) or not isinstance(node.fields[-1], ast.String):
            return False
        name = node.fields[-1].sval
        return name in _ZERO_BASED and name not in (getattr(self.recurse, "kinds", None) or {})

    def _subscripts(self, args: list[ast.Node]) -> ast.Node:
        """generate_subscripts() of one (SQLAlchemy's index reflection) counts from 0."""
        call = func("generate_subscripts", *args)
        call.location = None  # reeldb's call now: the allow-list trusts it
        if args and self._zero_based(args[0]):
            return _plus(call, -1)
        return call

    def _subscript(self, node: ast.A_Indirection) -> ast.Node:
        """``indkey[0]`` (psql, drivers' reflection) is the first element."""
        out = []
        for ind in node.indirection:
            if isinstance(ind, ast.A_Indices):
                ind = ast.A_Indices(is_slice=ind.is_slice,
                                    lidx=None if ind.lidx is None else _plus(self.recurse(ind.lidx), 1),
                                    uidx=None if ind.uidx is None else _plus(self.recurse(ind.uidx), 1))
            out.append(ind)
        return ast.A_Indirection(arg=self.recurse(node.arg), indirection=tuple(out))

    def _indexdef(self, args: list[ast.Node]) -> ast.Node:
        """pg_get_indexdef(index [, column, pretty]): column n (0: the whole definition) is
        kept at n, pretty-printed at -1 - n (``_index_defs``)."""
        col = args[1] if len(args) > 1 else _const(0)
        if len(args) > 2 and _constant_arg(args[2], self.params)[1] is True:
            col = _template("-1 - coalesce($1, 0)", col)
        return self._def(args[0], col)

    def _viewdef(self, args: list[ast.Node]) -> ast.Node:
        """pg_get_viewdef(view [, pretty]): the view's SELECT (an oid, or a name as text)."""
        ok, value = _constant_arg(args[0], self.params)
        if ok and isinstance(value, str):
            return self._def(_const(self.pg.tables().class_oid(value)), _const(0))
        return self._def(args[0], _const(0))

    def _to_regclass(self, args: list[ast.Node]) -> ast.Node:
        ok, name = _constant_arg(args[0], self.params)
        if ok and isinstance(name, str):
            return _const(self.pg.tables().class_oid(name))
        self.pg.tables()
        return _template(f"(SELECT cls_oid FROM {_REL('__classes')} WHERE cls_name = $1 AND cls_visible)", args[0])

    def _to_regtype(self, args: list[ast.Node]) -> ast.Node:
        ok, name = _constant_arg(args[0], self.params)
        if ok and isinstance(name, str):
            return _const(type_oid(name) or self.pg.tables().user_type_oid(name))
        if ok:
            return _const(None)
        raise errors.FeatureNotSupported("to_regtype() of a non-constant type name")

    def _privilege(self, args: list[ast.Node]) -> ast.Node:
        ok, what = _constant_arg(args[-1], self.params) if args else (False, None)
        if self.s.rights.read_only and ok and isinstance(what, str) \
                and any(p in what.upper() for p in _WRITE_PRIVILEGES):
            return _const(False)
        return _const(True)

    def value_function(self, node: ast.SQLValueFunction) -> ast.Node | None:
        op = node.op
        if op in (SQLValueFunctionOp.SVFOP_CURRENT_USER, SQLValueFunctionOp.SVFOP_SESSION_USER,
                  SQLValueFunctionOp.SVFOP_USER, SQLValueFunctionOp.SVFOP_CURRENT_ROLE):
            return _const(self.s.user)
        if op == SQLValueFunctionOp.SVFOP_CURRENT_CATALOG:
            return _const(self.s.database)
        if op == SQLValueFunctionOp.SVFOP_CURRENT_SCHEMA:
            return _const("public")
        return None

    # -- operators and casts -------------------------------------------------------------------
    def operator(self, node: ast.A_Expr) -> ast.Node | None:
        op = node.name[-1].sval
        if len(node.name) > 1:
            node.name = (node.name[-1],)
        if op == "||" and node.lexpr is not None and (is_regtype(node.lexpr) or is_regtype(node.rexpr)):
            return self._regtype_concat(node)
        regex = _REGEX_OPS.get(op)
        if regex is None or node.lexpr is None:
            return None
        negate, flags = regex
        args: list[ast.Node] = [self.recurse(node.lexpr), self.recurse(node.rexpr)]
        if flags:
            args.append(_const(flags))
        call: ast.Node = func("regexp_matches", *args)
        if negate:
            call = ast.BoolExpr(boolop=BoolExprType.NOT_EXPR, args=(call,))
        return call

    def _regtype_concat(self, node: ast.A_Expr) -> ast.Node:
        """``||`` of a regtype (an OID here) takes its name, as PostgreSQL's text does."""
        sides = [self._format_type(self.recurse(x), _const(None)) if is_regtype(x) else self.recurse(x)
                 for x in (node.lexpr, node.rexpr)]
        return ast.A_Expr(kind=node.kind, name=node.name, lexpr=sides[0], rexpr=sides[1])

    def regtype_oid(self, name: str) -> int | None:
        """The OID of a type named as ``::regtype`` reads it (built-in, enum, composite or domain)."""
        return type_oid(name) or self.pg.tables().user_type_oid(name)

    def type_cast(self, node: ast.TypeCast) -> ast.Node | None:
        names = node.typeName.names
        t = names[-1].sval.lower()
        if is_regtype(node.arg) and not node.typeName.arrayBounds:  # its value is an OID (see is_regtype)
            if t in ("text", "varchar", "name", "bpchar"):
                return self._format_type(self.recurse(node.arg), _const(None))
            if t == "regtype":
                return self.recurse(node.arg)
        if t in ("regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper"):
            ok, value = _constant_arg(node.arg, self.params)
            if ok and isinstance(value, str):
                if t == "regclass":
                    oid = self.pg.tables().class_oid(value)
                    if oid is None:
                        raise errors.UndefinedTable(f'relation "{value}" does not exist')
                    return _const(oid)
                if t == "regtype":
                    oid = self.regtype_oid(value)
                    if oid is None:
                        raise errors.UndefinedObject(f'type "{value}" does not exist')
                    return _const(oid)
                if t == "regnamespace":
                    oid = dict((nm, o) for o, nm in self.pg.tables().namespaces).get(value.strip('"'))
                    if oid is None:
                        raise errors.InvalidSchemaName(f'schema "{value}" does not exist')
                    return _const(oid)
                return _const(0)
            if ok and isinstance(value, int):
                return _const(value)
            serial = self._serial_sequence_oid(node.arg) if t == "regclass" else None
            if serial is not None:
                return serial
            arg = self.recurse(node.arg)
            self.pg.tables()
            if t == "regclass":
                return _template(f"coalesce((SELECT cls_name FROM {_REL('__classes')} WHERE cls_oid = $1), "
                                 "CAST($1 AS VARCHAR))", arg)
            if t == "regtype":
                return ast.TypeCast(arg=arg, typeName=ast.TypeName(names=(ast.String(sval="uinteger"),), typemod=-1))
            if t == "regnamespace":
                return _template(f"coalesce((SELECT ns_name FROM {_REL('__namespaces')} WHERE ns_oid = $1), "
                                 "CAST($1 AS VARCHAR))", arg)
            return _text(arg)
        if t in ("oid", "xid", "cid", "tid"):
            return ast.TypeCast(arg=self.recurse(node.arg), typeName=ast.TypeName(
                names=(ast.String(sval="uinteger"),), typemod=-1, arrayBounds=node.typeName.arrayBounds))
        if t in ("name", "char", "bpchar", "text") and len(names) > 1 or t == "name":
            return ast.TypeCast(arg=self.recurse(node.arg), typeName=ast.TypeName(
                names=(ast.String(sval="varchar"),), typemod=-1, arrayBounds=node.typeName.arrayBounds))
        if t in ("int2vector", "oidvector"):
            return self.recurse(node.arg)
        return None


# the argument types of the catalog functions a client may pass parameters to (a strict
# client, asyncpg, encodes a parameter by the type the server describes for it)
FUNCTION_ARG_TYPES: dict[str, tuple[int, ...]] = {
    "pg_terminate_backend": (pt.INT4, pt.INT8), "pg_cancel_backend": (pt.INT4,),
    "set_config": (pt.TEXT, pt.TEXT, pt.BOOL), "current_setting": (pt.TEXT, pt.BOOL),
    "pg_notify": (pt.TEXT, pt.TEXT), **large_objects.ARGUMENT_OIDS}
_SIGNALS = {"pg_terminate_backend": "terminate", "pg_cancel_backend": "cancel"}
MAX_SIGNAL_ROWS = 10_000  # rows one statement may signal (a server has --max-connections sessions)


def _signal_targets(stmt: ast.SelectStmt, params: list[Any]) -> dict[int, str]:
    """The select-list positions of ``pg_terminate_backend`` / ``pg_cancel_backend`` calls
    whose arguments are not all constants (those fold on their own), when every other
    item is an expression of its own (no ``*``): position -> "terminate" / "cancel"."""
    found: dict[int, str] = {}
    for i, rt in enumerate(stmt.targetList or ()):
        if isinstance(rt.val, ast.ColumnRef) and isinstance(rt.val.fields[-1], ast.A_Star):
            return {}
        if isinstance(rt.val, ast.FuncCall) and rt.val.args and len(rt.val.args) <= 2 and not rt.val.agg_star:
            kind = _SIGNALS.get(rt.val.funcname[-1].sval.lower())
            if kind is not None and (kind == "terminate" or len(rt.val.args) == 1) and \
                    not all(_constant_arg(a, params)[0] for a in rt.val.args):
                found[i] = kind
    return found


def _column_name(node: ast.Node) -> str:
    """An unnamed select-list column's name: a column's own (functions are named already)."""
    if isinstance(node, ast.ColumnRef) and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    return "?column?"


_REGEX_OPS = {"~": (False, ""), "!~": (True, ""), "~*": (False, "i"), "!~*": (True, "i")}
_RENAMED = {"json_build_object": "json_object", "jsonb_build_object": "json_object",
            "json_agg": "json_group_array", "jsonb_agg": "json_group_array",
            "json_object_agg": "json_group_object", "jsonb_object_agg": "json_group_object",
            "pg_size_pretty": "format_bytes"}
def is_regtype(node: Any) -> bool:
    """Is ``node`` of type regtype (``x::regtype``, ``pg_typeof(x)``, ``to_regtype(x)``)? Its
    value is the type's OID, as in PostgreSQL; a select list shows its name (rewrite.py's
    ``regtype_outputs``), and ``::text`` and ``||`` take the name."""
    if isinstance(node, ast.TypeCast):
        return not node.typeName.arrayBounds and node.typeName.names[-1].sval.lower() == "regtype"
    return isinstance(node, ast.FuncCall) and len(node.args or ()) == 1 \
        and node.funcname[-1].sval.lower() in ("pg_typeof", "to_regtype")


def type_oid(name: str) -> int | None:
    """A type name as a client writes it (maybe schema-qualified, maybe an alias) -> OID."""
    base = name.strip().split(".")[-1].strip('"').lower()
    array = base.endswith("[]")
    base = base.removesuffix("[]").split("(")[0].strip()
    t = pt.REGISTRY.by_name(base)
    if t is None:
        return None
    return t.array if array else t.oid
