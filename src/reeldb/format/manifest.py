"""Table manifests: schema with stable column ids, and fragments in shared segments.

A manifest is small JSON: the schema plus the keys of its *segments*, each an immutable,
content-addressed list of up to ``SEGMENT_SIZE`` fragments. A commit that appends one
fragment rewrites only the last segment and the manifest, so manifests stay cheap with
millions of fragments and unchanged segments are shared between commits and branches.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..storage import ObjectStore
from . import checksum
from .keys import addressed_digest, segment_key, table_manifest_key
from .types import ColumnType

SEGMENT_SIZE = 256


@dataclass(frozen=True)
class Column:
    id: int
    name: str
    type: ColumnType
    not_null: bool = False
    default: str | None = None  # SQL expression text, evaluated at insert time
    fill: Any = None  # value old fragments show for a column added later
    identity: str | None = None  # "a": GENERATED ALWAYS AS IDENTITY, "d": BY DEFAULT (default: its nextval)
    domain: str | None = None  # the domain (CREATE DOMAIN) the column was declared with; ``type`` is its base
    generated: str | None = None  # GENERATED ALWAYS AS (this expression) STORED: computed on every write

    def to_json(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type.to_json()}
        if self.not_null:
            d["not_null"] = True
        if self.identity is not None:
            d["identity"] = self.identity
        if self.domain is not None:
            d["domain"] = self.domain
        if self.generated is not None:
            d["generated"] = self.generated
        if self.default is not None:
            d["default"] = self.default
        if self.fill is not None:
            d["fill"] = self.fill
        return d

    @staticmethod
    def from_json(d: dict) -> Column:
        return Column(d["id"], d["name"], ColumnType.from_json(d["type"]), d.get("not_null", False),
                      d.get("default"), d.get("fill"), d.get("identity"), d.get("domain"),
                      d.get("generated"))


@dataclass(frozen=True)
class CheckConstraint:
    """``CONSTRAINT name CHECK (expr)``: ``expr`` is Postgres SQL text over the table's
    column names; ``columns`` the ids of the columns it reads (pg_constraint.conkey)."""

    name: str
    expr: str
    columns: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "expr": self.expr, "columns": list(self.columns)}

    @staticmethod
    def from_json(d: dict) -> CheckConstraint:
        return CheckConstraint(d["name"], d["expr"], tuple(d.get("columns", ())))


@dataclass(frozen=True)
class ForeignKey:
    """``CONSTRAINT name FOREIGN KEY (columns) REFERENCES table (ref_columns)``: the
    referenced table by its stable id (a rename keeps the constraint), columns by id.
    Actions are pg_constraint's letters: ``a`` NO ACTION, ``r`` RESTRICT."""

    name: str
    columns: tuple[int, ...]
    ref_table: str  # table id
    ref_columns: tuple[int, ...]
    on_update: str = "a"
    on_delete: str = "a"

    def to_json(self) -> dict:
        return {"name": self.name, "columns": list(self.columns), "ref_table": self.ref_table,
                "ref_columns": list(self.ref_columns), "on_update": self.on_update, "on_delete": self.on_delete}

    @staticmethod
    def from_json(d: dict) -> ForeignKey:
        return ForeignKey(d["name"], tuple(d["columns"]), d["ref_table"], tuple(d["ref_columns"]),
                          d.get("on_update", "a"), d.get("on_delete", "a"))


@dataclass(frozen=True)
class BtreeIndex:
    """``CREATE [UNIQUE] INDEX name ON t (columns) INCLUDE (include)``, a btree index: reeldb
    scans instead, so it changes no answer; it is kept so that the catalog shows it. A UNIQUE
    one's columns are also one of ``Schema.uniques`` (enforced like a unique constraint).
    ``options`` per column are pg_index.indoption's bits (1 DESC, 2 NULLS FIRST)."""

    name: str
    columns: tuple[int, ...]
    options: tuple[int, ...]
    include: tuple[int, ...] = ()
    unique: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "columns": list(self.columns), "options": list(self.options),
                "include": list(self.include), "unique": self.unique}

    @staticmethod
    def from_json(d: dict) -> BtreeIndex:
        return BtreeIndex(d["name"], tuple(d["columns"]), tuple(d["options"]), tuple(d.get("include", ())),
                          bool(d.get("unique", False)))


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    primary_key: tuple[int, ...] = ()
    uniques: tuple[tuple[int, ...], ...] = ()  # every unique key, the primary key included
    next_id: int = 1
    checks: tuple[CheckConstraint, ...] = ()  # CHECK constraints, enforced on every write
    foreign_keys: tuple[ForeignKey, ...] = ()  # enforced at the end of every statement (sql/foreign_keys.py)
    btree_indexes: tuple[BtreeIndex, ...] = ()  # plain indexes, for the catalog only (sql/btree_indexes.py)
    key_names: tuple[tuple[tuple[int, ...], str], ...] = ()  # (key, name) of keys named by CONSTRAINT name

    def key_name(self, table: str, key: tuple[int, ...] | list[int]) -> str:
        """The name of a unique key's constraint (and index): the one it was given, else
        Postgres' ``<table>_pkey`` / ``<table>_<columns>_key`` (``table``: unqualified)."""
        for k, name in self.key_names:
            if tuple(k) == tuple(key):
                return name
        if tuple(key) == tuple(self.primary_key):
            return f"{table}_pkey"
        return f"{table}_{'_'.join(self.by_id(c).name for c in key)}_key"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise errors.UndefinedColumn(f'column "{name}" does not exist')

    def find(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def by_id(self, cid: int) -> Column:
        for c in self.columns:
            if c.id == cid:
                return c
        raise KeyError(cid)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @functools.cached_property
    def fingerprint(self) -> str:
        """Content hash, computed once: cheap to use in cache keys per fragment."""
        return _digest(_dumps(self.to_json()))

    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "columns": [c.to_json() for c in self.columns],
            "primary_key": list(self.primary_key),
            "uniques": [list(u) for u in self.uniques],
            "next_id": self.next_id,
        }
        if self.checks:  # only when there are some: older manifests (and fingerprints) stay as they were
            d["checks"] = [c.to_json() for c in self.checks]
        if self.foreign_keys:
            d["foreign_keys"] = [f.to_json() for f in self.foreign_keys]
        if self.btree_indexes:
            d["btree_indexes"] = [i.to_json() for i in self.btree_indexes]
        if self.key_names:
            d["key_names"] = [[list(k), n] for k, n in self.key_names]
        return d

    @staticmethod
    def from_json(d: dict) -> Schema:
        return Schema(tuple(Column.from_json(c) for c in d["columns"]), tuple(d["primary_key"]),
                      tuple(tuple(u) for u in d["uniques"]), d["next_id"],
                      tuple(CheckConstraint.from_json(c) for c in d.get("checks", ())),
                      tuple(ForeignKey.from_json(f) for f in d.get("foreign_keys", ())),
                      tuple(BtreeIndex.from_json(i) for i in d.get("btree_indexes", ())),
                      tuple((tuple(k), n) for k, n in d.get("key_names", ())))


@dataclass(frozen=True)
class Fragment:
    """One immutable chunk of rows: a Parquet file, matrix files, maybe a deletion vector."""

    id: str
    rows: int
    cols: tuple[int, ...]  # column ids present in the Parquet file
    mats: tuple[tuple[int, str], ...] = ()  # (column id, dtype) of each matrix file
    deletes: str | None = None  # key of the deletion vector
    ndel: int = 0
    # checksums of the fragment's objects (format/checksum.py): "parquet", "m<column id>"
    # per matrix file, "deletes"; none in fragments written before checksums existed
    sums: tuple[tuple[str, str], ...] = ()

    @property
    def live(self) -> int:
        return self.rows - self.ndel

    def checksum(self, name: str) -> str | None:
        """The recorded checksum of one of the fragment's objects, None if unrecorded."""
        for n, s in self.sums:
            if n == name:
                return s
        return None

    def with_deletes(self, key: str | None, ndel: int, checksum: str | None) -> Fragment:
        """The same fragment with another deletion vector (its key, size and checksum)."""
        sums = tuple((n, s) for n, s in self.sums if n != "deletes")
        if checksum is not None:
            sums += (("deletes", checksum),)
        return Fragment(self.id, self.rows, self.cols, self.mats, key, ndel if key else 0, sums)

    def to_json(self) -> dict:
        d: dict[str, Any] = {"id": self.id, "rows": self.rows, "cols": list(self.cols)}
        if self.mats:
            d["mats"] = [list(m) for m in self.mats]
        if self.deletes:
            d["deletes"] = self.deletes
            d["ndel"] = self.ndel
        if self.sums:
            d["sums"] = dict(self.sums)
        return d

    @staticmethod
    def from_json(d: dict) -> Fragment:
        return Fragment(d["id"], d["rows"], tuple(d["cols"]), tuple(tuple(m) for m in d.get("mats", ())),
                        d.get("deletes"), d.get("ndel", 0), tuple(sorted(d.get("sums", {}).items())))


@dataclass(frozen=True)
class IndexDef:
    """A vector index of a table, as the manifest lists it: what was asked for
    (``CREATE INDEX name ON t USING method (column opclass) WITH (params)``) and the key of
    the immutable index object built for it (``indexes/<id>``), which covers a set of
    fragments. Branches that share the manifest share the object. No key: nothing built
    (an ivfflat index over fewer rows than lists, or an index on an expression): queries
    scan exactly."""

    name: str
    column: int  # column id (for an expression index, the column the expression reads)
    method: str  # hnsw | ivfflat
    opclass: str  # vector_cosine_ops, vector_l2_ops, vector_ip_ops (or halfvec_*, bit_*, sparsevec_*)
    params: tuple[tuple[str, Any], ...] = ()
    key: str = ""
    expression: str = ""  # an expression index's key, as PostgreSQL prints it (pg_get_indexdef)
    given: tuple[str, ...] | None = None  # the options CREATE INDEX named, in its order (None: not kept)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.params)

    def to_json(self) -> dict:
        d = {"name": self.name, "column": self.column, "method": self.method, "opclass": self.opclass,
             "params": dict(self.params), "key": self.key}
        if self.expression:
            d["expression"] = self.expression
        if self.given is not None:
            d["given"] = list(self.given)
        return d

    @staticmethod
    def from_json(d: dict) -> IndexDef:
        return IndexDef(d["name"], d["column"], d["method"], d["opclass"], tuple(sorted(d["params"].items())),
                        d["key"], d.get("expression", ""), tuple(d["given"]) if "given" in d else None)


@dataclass(frozen=True)
class Segment:
    key: str | None  # None until written
    fragments: tuple[Fragment, ...]


@dataclass
class TableManifest:
    """A table as one commit sees it. Edit through the methods; save() writes it."""

    table_id: str
    name: str
    schema: Schema
    segments: list[Segment] = field(default_factory=list)
    key: str | None = None  # content address once saved/loaded
    indexes: tuple[IndexDef, ...] = ()

    @property
    def fragments(self) -> list[Fragment]:
        return [f for s in self.segments for f in s.fragments]

    @property
    def rows(self) -> int:
        return sum(f.live for f in self.fragments)

    def copy(self) -> TableManifest:
        return TableManifest(self.table_id, self.name, self.schema, list(self.segments), self.key, self.indexes)

    def with_schema(self, schema: Schema) -> TableManifest:
        """The same rows under a new schema; indexes of columns it dropped go with them."""
        ids = {c.id for c in schema.columns}
        return TableManifest(self.table_id, self.name, schema, list(self.segments),
                             indexes=tuple(ix for ix in self.indexes if ix.column in ids))

    def with_indexes(self, indexes: tuple[IndexDef, ...]) -> TableManifest:
        return TableManifest(self.table_id, self.name, self.schema, list(self.segments), indexes=indexes)

    def index(self, name: str) -> IndexDef | None:
        for ix in self.indexes:
            if ix.name == name:
                return ix
        return None

    def append(self, frag: Fragment) -> None:
        self.key = None
        if self.segments and len(self.segments[-1].fragments) < SEGMENT_SIZE:
            last = self.segments[-1]
            self.segments[-1] = Segment(None, last.fragments + (frag,))
        else:
            self.segments.append(Segment(None, (frag,)))

    def replace_fragment(self, frag: Fragment) -> None:
        """Swap in a new version of a fragment (same id), e.g. with a new deletion vector."""
        self.key = None
        for i, seg in enumerate(self.segments):
            for j, f in enumerate(seg.fragments):
                if f.id == frag.id:
                    frs = seg.fragments[:j] + (frag,) + seg.fragments[j + 1 :]
                    self.segments[i] = Segment(None, frs)
                    return
        raise KeyError(frag.id)

    def replace_fragments(self, old_ids: list[str], new: list[Fragment]) -> None:
        """Swap a group of fragments for rewritten ones, placed where the first of the
        group was (compaction); segments are re-cut to ``SEGMENT_SIZE``."""
        gone = set(old_ids)
        frags: list[Fragment] = []
        placed = False
        for f in self.fragments:
            if f.id in gone:
                if not placed:
                    frags.extend(new)
                    placed = True
                continue
            frags.append(f)
        if not placed:
            raise KeyError(old_ids[0] if old_ids else "")
        old_segments = {s.fragments: s for s in self.segments}
        self.segments = []
        for i in range(0, len(frags), SEGMENT_SIZE):
            chunk = tuple(frags[i : i + SEGMENT_SIZE])
            self.segments.append(old_segments.get(chunk, Segment(None, chunk)))
        self.key = None

    def fragment(self, fid: str) -> Fragment | None:
        for f in self.fragments:
            if f.id == fid:
                return f
        return None

    def save(self, store: ObjectStore) -> str:
        """Write changed segments and the manifest; both content-addressed."""
        if self.key is not None:
            return self.key
        segs = []
        for seg in self.segments:
            if seg.key is None:
                body = _dumps({"fragments": [f.to_json() for f in seg.fragments]})
                key = segment_key(_digest(body))
                store.put_if_absent(key, body)
                seg = Segment(key, seg.fragments)
            segs.append(seg)
        self.segments = segs
        d: dict[str, Any] = {"format": 1, "table_id": self.table_id, "name": self.name,
                             "schema": self.schema.to_json(), "segments": [s.key for s in segs]}
        if self.indexes:
            d["indexes"] = [ix.to_json() for ix in self.indexes]
        body = _dumps(d)
        key = table_manifest_key(_digest(body))
        store.put_if_absent(key, body)
        self.key = key
        return key


def load_manifest(store: ObjectStore, key: str, segment_cache: dict[str, Segment]) -> TableManifest:
    """A table manifest and its segments, each verified against its content address:
    damage is XX001 naming the object (``KeyError`` when the manifest itself is missing)."""
    d = read_addressed(store, key)
    try:
        segs = []
        for sk in d["segments"]:
            seg = segment_cache.get(sk)
            if seg is None:
                try:
                    sd = read_addressed(store, sk)
                except KeyError:
                    raise checksum.damaged(sk, f'it is missing (manifest "{key}" lists it)') from None
                try:
                    seg = Segment(sk, tuple(Fragment.from_json(f) for f in sd["fragments"]))
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    raise checksum.damaged(sk, f"it is not a manifest segment ({e!r})") from None
                segment_cache[sk] = seg
            segs.append(seg)
        return TableManifest(d["table_id"], d["name"], Schema.from_json(d["schema"]), segs, key,
                             tuple(IndexDef.from_json(x) for x in d.get("indexes", ())))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise checksum.damaged(key, f"it is not a table manifest ({e!r})") from None


def read_addressed(store: ObjectStore, key: str) -> Any:
    """A content-addressed metadata object (manifest or segment), parsed once its bytes
    hash to its name (``KeyError`` when missing)."""
    body = store.get(key)
    if checksum.enabled():
        name = addressed_digest(key)
        got = _digest(body)
        if got != name:
            raise checksum.damaged(key, f"its content hashes to {got}, not the {name} its name records")
    return checksum.load_json(key, body)


def _dumps(d: dict) -> bytes:
    return json.dumps(d, separators=(",", ":"), sort_keys=True).encode()


def _digest(b: bytes) -> str:
    return hashlib.blake2b(b, digest_size=16).hexdigest()


def foreign_key_links(tables: list[TableManifest]) -> set[tuple[str, str]]:
    """(table id, table id) for both directions of every foreign key among ``tables``."""
    out = set()
    for tm in tables:
        for fk in tm.schema.foreign_keys:
            out.add((tm.table_id, fk.ref_table))
            out.add((fk.ref_table, tm.table_id))
    return out
