"""The object key layout of a database (DESIGN.md's "Object layout"): every key and key
prefix reeldb stores objects under is named here and only here.

Storage sits below this layer and knows no key names: it is told which prefixes hold
immutable objects (``storage.declare_immutable``, done when this module is imported), so
a remote store may cache those objects on disk for good. Vacuum sweeps the same
prefixes: everything but refs, counters, intents and leases is written once and is
garbage once no ref reaches it.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from ..storage import declare_immutable

# written once, never changed
DATA = "data/"  # data/<table id>/<fragment>.parquet and .<column id>.mat
BLOBS = "blobs/"  # blobs/<pack>.pack
DELETES = "deletes/"  # deletes/<id>.del: a fragment's deleted row positions
INDEXES = "indexes/"  # indexes/<id> and its fragment list indexes/<id>.json
MANIFESTS = "_reeldb/manifests/"  # content-addressed: tbl-<digest>, seg-<digest>
COMMITS = "_reeldb/commits/"  # _reeldb/commits/<commit id>
# moved by compare-and-swap, or short-lived
BRANCHES = "_reeldb/refs/branches/"
TAGS = "_reeldb/refs/tags/"
PROTECTED = "_reeldb/refs/protected/"
COUNTERS = "_reeldb/counters/"  # row-id blocks and SERIAL sequences, global across branches
INTENTS = "_reeldb/intents/"  # group commit: _reeldb/intents/<branch>/<id>
WRITERS = "_reeldb/writers/"  # a writing process's lease: _reeldb/writers/<pid>-<nonce>
# deletion vectors a FragmentReader holds in memory only (a merge's virtual base): never stored
USERS = "_reeldb/users.json"  # the server's logins (server/users.py)
MOCK_SECRET = "_reeldb/auth/mock_secret"  # the server's secret for unknown users' fake salts
MEMORY = "memory/"
# a large object's page, content-addressed (sql/large_objects.py): written once, but named by
# commits' catalog objects rather than manifests, so vacuum does not sweep it
LARGE_OBJECT_PAGES = "lobjects/"

#: Objects under these prefixes never change once written: cacheable forever, and swept
#: by vacuum once unreachable.
IMMUTABLE = (DATA, BLOBS, DELETES, INDEXES, MANIFESTS, COMMITS)
#: Every prefix of the layout (what no module outside ``format/`` spells out).
PREFIXES = (*IMMUTABLE, BRANCHES, TAGS, PROTECTED, COUNTERS, INTENTS, WRITERS, MEMORY, LARGE_OBJECT_PAGES)

declare_immutable(IMMUTABLE)


def parquet_key(table_id: str, frag_id: str) -> str:
    """A fragment's Parquet file: scalar columns, ``_rowid`` and matrix norms."""
    return f"{DATA}{table_id}/{frag_id}.parquet"


def matrix_key(table_id: str, frag_id: str, col_id: int) -> str:
    """A fragment's raw row-major matrix of one vector / fixed-shape tensor column."""
    return f"{DATA}{table_id}/{frag_id}.{col_id}.mat"


def deletes_key(name: str) -> str:
    """A deletion vector (``name``: a fresh unique id)."""
    return f"{DELETES}{name}.del"


def memory_deletes_key(name: str) -> str:
    """A deletion vector that lives only in a reader's memory."""
    return f"{MEMORY}{name}.del"


def pack_key(pack: str) -> str:
    """A blob pack."""
    return f"{BLOBS}{pack}.pack"


def index_key(index_id: str) -> str:
    """An ANN index object; its fragment list is ``index_fragments_key`` of it."""
    return f"{INDEXES}{index_id}"


def index_fragments_key(key: str) -> str:
    """The fragment list (JSON) of the index stored at ``key``."""
    return key + ".json"


def table_manifest_key(digest: str) -> str:
    return f"{MANIFESTS}tbl-{digest}"


def segment_key(digest: str) -> str:
    """A manifest segment: a run of a table's fragments, shared between manifests."""
    return f"{MANIFESTS}seg-{digest}"


def addressed_digest(key: str) -> str:
    """The content digest a manifest or segment key records."""
    return key.rsplit("/", 1)[-1].split("-", 1)[-1]


def large_object_page_key(digest: str) -> str:
    """A large object's page, named by its content's checksum."""
    return f"{LARGE_OBJECT_PAGES}{digest}"


def commit_key(commit_id: str) -> str:
    return COMMITS + commit_id


def commit_id(key: str) -> str:
    """The commit id of a key under ``COMMITS``."""
    return key[len(COMMITS):]


def ref_key(prefix: str, name: str) -> str:
    """A branch, tag or protection marker: ``/`` quoted, so "exp" and "exp/x" can both
    exist (as files cannot be both file and folder)."""
    return prefix + quote(name, safe="")


def ref_name(prefix: str, key: str) -> str:
    """The branch or tag name a key under ``prefix`` stands for."""
    return unquote(key[len(prefix):])


def counter_key(name: str) -> str:
    return COUNTERS + name
