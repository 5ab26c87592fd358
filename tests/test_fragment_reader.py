"""One stored fragment as Arrow (``format.fragment_arrow``), shared by the engine and the
loader: deleted rows, columns added or dropped after the fragment was written, vectors
and their NULLs, blob cells left as references; and the object key layout, spelled out in
``format/keys.py`` only."""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import reeldb
from reeldb.catalog import vacuum
from reeldb.catalog.catalog import Catalog
from reeldb.format import keys
from reeldb.format.fragment import ROWID, FragmentReader
from reeldb.format.fragment_arrow import LIVE, POSITION, fragment_batch, fragment_schema, norms_name
from reeldb.storage import LocalStore, ObjectStore, is_immutable

SRC = Path(reeldb.__file__).parent
BIG = 10_000  # bytes: above the inline limit, so the value goes to a blob pack


class _Recording(ObjectStore):
    """A local store that records every key read, to tell which objects a read touched."""

    def __init__(self, inner: LocalStore):
        self.inner, self.url, self.read = inner, inner.url, []

    def _note(self, key: str) -> str:
        self.read.append(key)
        return key

    def get(self, key):
        return self.inner.get(self._note(key))

    def get_range(self, key, offset, length):
        return self.inner.get_range(self._note(key), offset, length)

    def get_versioned(self, key):
        return self.inner.get_versioned(self._note(key))

    def put(self, key, data):
        self.inner.put(key, data)

    def put_if_absent(self, key, data):
        return self.inner.put_if_absent(key, data)

    def compare_and_swap(self, key, expected_version, data):
        return self.inner.compare_and_swap(key, expected_version, data)

    def exists(self, key):
        return self.inner.exists(self._note(key))

    def size(self, key):
        return self.inner.size(self._note(key))

    def mtime(self, key):
        return self.inner.mtime(self._note(key))

    def list(self, prefix):
        return self.inner.list(prefix)

    def delete(self, key):
        self.inner.delete(key)

    def local_path(self, key):
        return self.inner.local_path(self._note(key))

    def file_path(self, key):
        return self.inner.file_path(self._note(key))

    def open_input(self, key):
        return self.inner.open_input(self._note(key))


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory):
    """A table with two fragments: the first written before three columns were added (one
    with a DEFAULT, one vector) and one dropped, with rows deleted from it; the second after."""
    path = str(tmp_path_factory.mktemp("evolved") / "db")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT, name TEXT, gone INT, e VECTOR(3), payload BYTEA)")
    db.execute("INSERT INTO t VALUES (0, 'a', 10, '[3,4,0]', %s), (1, 'b', 11, NULL, %s), "
               "(2, 'c', 12, '[1,0,0]', %s), (3, 'd', 13, '[0,0,2]', NULL)",
               [b"x" * BIG, b"small", b"y" * BIG])
    db.execute("DELETE FROM t WHERE id IN (1, 3)")
    db.execute("ALTER TABLE t ADD COLUMN score DOUBLE PRECISION DEFAULT 0.5")
    db.execute("ALTER TABLE t ADD COLUMN note TEXT")
    db.execute("ALTER TABLE t ADD COLUMN f VECTOR(2)")
    db.execute("ALTER TABLE t DROP COLUMN gone")
    db.execute("INSERT INTO t (id, name, e, score, note, f) VALUES (4, 'e', '[0,1,0]', 2.5, 'n', '[1,1]')")
    db.close()
    cat = Catalog.open(LocalStore(path))
    tm = cat.snapshot(cat.head("main"))["t"]
    assert len(tm.fragments) == 2, "the test wants one fragment per INSERT"
    return path, cat, tm


def test_deletes_added_and_dropped_columns(evolved) -> None:
    _, cat, tm = evolved
    old, new = tm.fragments
    cols = tm.schema.columns
    b = fragment_batch(cat.reader, tm.table_id, old, cols, start=100)
    assert b.schema == fragment_schema(cols)
    assert b.column(ROWID).to_pylist() == cat.reader.rowids(tm.table_id, old).tolist()
    assert b.column(POSITION).to_pylist() == [100, 101, 102, 103]
    assert b.column(LIVE).to_pylist() == [True, False, True, False]  # rows 1 and 3 deleted, still there
    assert b.column("id").to_pylist() == [0, 1, 2, 3]
    assert b.column("score").to_pylist() == [0.5] * 4  # added with a DEFAULT: its fill value
    assert b.column("note").to_pylist() == [None] * 4  # added without: NULL
    assert b.column("f").null_count == 4 and b.column(norms_name(tm.schema.column("f").id)).null_count == 4
    assert "gone" not in b.schema.names  # dropped: left out
    e = b.column("e")
    assert e.to_pylist()[0] == [3.0, 4.0, 0.0] and e.is_null().to_pylist() == [False, True, False, False]
    assert b.column(norms_name(tm.schema.column("e").id)).to_pylist()[:3] == [5.0, None, 1.0]
    later = fragment_batch(cat.reader, tm.table_id, new, cols, start=104)
    assert later.column(LIVE).to_pylist() == [True]
    assert later.column("score").to_pylist() == [2.5] and later.column("f").to_pylist() == [[1.0, 1.0]]


def test_what_queries_and_the_loader_read_is_the_fragment_batch(evolved) -> None:
    """The engine registers these batches and the loader filters over them: their live rows
    are what SQL and a filtered dataloader return."""
    path, cat, tm = evolved
    rows = []
    start = 0
    for frag in tm.fragments:
        b = fragment_batch(cat.reader, tm.table_id, frag, tm.schema.columns, start=start)
        start += frag.rows
        live = b.filter(b.column(LIVE))
        rows += zip(live.column("id").to_pylist(), live.column("score").to_pylist(),
                    live.column("note").to_pylist(), strict=True)
    db = reeldb.connect(path)
    assert db.execute("SELECT id, score, note FROM t ORDER BY id").fetchall() == sorted(rows)
    loader = db.dataloader("t").filter("score < 1 AND note IS NULL").columns(["id"]).batch_size(10)
    got = sorted(int(i) for batch in loader.to_torch() for i in batch["id"].tolist())
    assert got == [i for i, score, note in sorted(rows) if score < 1 and note is None] == [0, 2]
    db.close()


def test_blob_cells_stay_references(evolved) -> None:
    """Turning a fragment into Arrow never reads a blob pack: large values are (pack,
    offset, length) references, read later by byte range for the rows returned."""
    path, _, tm = evolved
    store = _Recording(LocalStore(path))
    reader = FragmentReader(store)
    b = fragment_batch(reader, tm.table_id, tm.fragments[0], tm.schema.columns)
    cells = b.column("payload")
    assert pa.types.is_struct(cells.type)
    packs = cells.field("pack").to_pylist()
    assert packs[0] is not None and packs[2] is not None  # the large values: out of line
    assert cells.field("data").to_pylist()[1] == b"small" and packs[1] is None  # small: inline
    assert cells.is_null().to_pylist()[3]
    assert cells.field("length").to_pylist()[0] == BIG
    assert store.read and not [k for k in store.read if k.startswith(keys.BLOBS)]
    assert os.path.exists(os.path.join(path, keys.pack_key(packs[0])))  # the bytes are there, unread


def test_prune_reads_only_the_named_columns(evolved) -> None:
    """The loader's filters name a few columns: only those are read (the reader keeps no
    whole file), and they equal the whole-file read's."""
    path, _, tm = evolved
    cols = [tm.schema.column("id"), tm.schema.column("e"), tm.schema.column("score")]
    pruned_reader = FragmentReader(LocalStore(path))
    whole_reader = FragmentReader(LocalStore(path))
    for frag in tm.fragments:
        pruned = fragment_batch(pruned_reader, tm.table_id, frag, cols, rowid=False, prune=True)
        assert not pruned_reader.cached(tm.table_id, frag)
        whole = fragment_batch(whole_reader, tm.table_id, frag, cols, rowid=False)
        assert whole_reader.cached(tm.table_id, frag)
        assert pruned.equals(whole)
        assert pruned.schema.names == [POSITION, LIVE, "id", "e", norms_name(cols[1].id), "score"]
        # a reader holding the whole file answers a pruned read from it
        assert fragment_batch(whole_reader, tm.table_id, frag, cols, rowid=False, prune=True).equals(whole)


def test_a_fragment_with_no_deletes_is_all_live(tmp_path: Path) -> None:
    db = reeldb.connect(str(tmp_path / "db"))
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t SELECT * FROM generate_series(0, 4)")
    db.close()
    cat = Catalog.open(LocalStore(str(tmp_path / "db")))
    tm = cat.snapshot(cat.head("main"))["t"]
    (frag,) = tm.fragments
    assert not frag.ndel
    b = fragment_batch(cat.reader, tm.table_id, frag, [], start=7, rowid=False, prune=True)
    assert b.schema.names == [POSITION, LIVE] and b.num_rows == 5
    assert b.column(POSITION).to_pylist() == [7, 8, 9, 10, 11] and all(b.column(LIVE).to_pylist())


def test_fill_values_of_typed_columns(tmp_path: Path) -> None:
    """A DATE, NUMERIC or UUID column added with a DEFAULT: the manifest keeps the fill as
    text, and old fragments show the typed value (Arrow casts no date from a string; the
    table was unreadable after such an ALTER)."""
    path = str(tmp_path / "db")
    db = reeldb.connect(path)
    db.execute("CREATE TABLE t (id INT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("ALTER TABLE t ADD COLUMN d DATE DEFAULT '2024-01-02'")
    db.execute("ALTER TABLE t ADD COLUMN n NUMERIC(10, 2) DEFAULT 1.25")
    db.execute("ALTER TABLE t ADD COLUMN u UUID DEFAULT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'")
    db.execute("INSERT INTO t (id) VALUES (2)")
    want = (dt.date(2024, 1, 2), Decimal("1.25"), uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
    assert db.execute("SELECT id, d, n, u FROM t ORDER BY id").fetchall() == [(1, *want), (2, *want)]
    db.close()
    cat = Catalog.open(LocalStore(path))
    tm = cat.snapshot(cat.head("main"))["t"]
    old = tm.fragments[0]
    b = fragment_batch(cat.reader, tm.table_id, old, tm.schema.columns)
    assert b.column("d").to_pylist() == [want[0]] and b.column("n").to_pylist() == [want[1]]
    assert isinstance(tm.schema.column("d").fill, str)  # what the manifest keeps
    rewritten = cat.reader.batch(tm.table_id, old, tm.schema, np.array([0]))  # compaction and merge read this way
    assert rewritten.scalars[tm.schema.column("d").id].to_pylist() == [want[0]]
    db = reeldb.connect(path)
    (batch,) = db.dataloader("t").columns(["id", "d", "n", "u"]).batch_size(2).to_torch()
    assert list(zip(batch["d"], batch["n"], batch["u"], strict=True)) == [want, want]  # the loader's reads too
    db.close()


# ------------------------------------------------------------------- the key layout


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants of a module, docstrings left out (f-strings' literal parts included)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def _spelled_out(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [f"{path.relative_to(SRC)}:{line}: {value!r}" for line, value in _literals(tree)
            if value.startswith(keys.PREFIXES)]


def test_key_prefixes_are_spelled_out_in_format_only() -> None:
    """Every other module builds keys with ``format.keys``: a literal ``"data/"`` or
    ``f"_reeldb/commits/{id}"`` elsewhere is a second copy of the layout."""
    found = [hit for p in sorted(SRC.rglob("*.py")) if "format" not in p.relative_to(SRC).parts[:1]
             for hit in _spelled_out(p)]
    assert found == []
    # the scan sees what it looks for: the layout module itself spells every prefix out
    spelled = {v for line, v in _literals(ast.parse((SRC / "format" / "keys.py").read_text()))}
    assert set(keys.PREFIXES) <= spelled
    assert _spelled_out(SRC / "format" / "keys.py")


def test_storage_knows_no_key_names() -> None:
    """DESIGN.md's layers: storage sits below format, imports nothing of it, and is told
    which prefixes are immutable."""
    below = {"errors", "config"}  # the package-level modules storage may use
    for p in sorted((SRC / "storage").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..x import y
                used = {a.name for a in node.names} if node.module is None else {node.module.split(".")[0]}
                assert used <= below, f"storage/{p.name} imports {used - below}"
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            assert not [n for n in names if n.startswith("reeldb.")], f"storage/{p.name} imports {names}"
    for prefix in keys.IMMUTABLE:
        assert is_immutable(prefix + "x")
    for prefix in (keys.BRANCHES, keys.TAGS, keys.PROTECTED, keys.COUNTERS, keys.INTENTS, keys.WRITERS):
        assert not is_immutable(prefix + "x"), prefix
    assert vacuum.SWEPT == keys.IMMUTABLE  # what vacuum deletes when unreachable is what never changes


def test_a_fresh_process_knows_the_immutable_prefixes() -> None:
    """A DataLoader worker unpickles its store in a fresh process: importing storage
    alone must bring the declaration (the package imports the format layer)."""
    code = ("from reeldb.storage.cloud import is_immutable; "
            "assert is_immutable('data/1/f.parquet') and is_immutable('blobs/p.pack'); "
            "assert not is_immutable('_reeldb/refs/branches/main')")
    env = dict(os.environ, PYTHONPATH=str(SRC.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_keys_round_trip() -> None:
    assert keys.commit_id(keys.commit_key("abc")) == "abc"
    assert keys.ref_name(keys.BRANCHES, keys.ref_key(keys.BRANCHES, "exp/x")) == "exp/x"
    assert "/" not in keys.ref_key(keys.BRANCHES, "exp/x")[len(keys.BRANCHES):]  # "exp" and "exp/x" coexist
    assert keys.addressed_digest(keys.segment_key("d1")) == "d1" == keys.addressed_digest(keys.table_manifest_key("d1"))
    assert keys.parquet_key("t", "f").startswith(keys.DATA) and keys.matrix_key("t", "f", 3).endswith(".3.mat")
    assert np.all([is_immutable(k) for k in (keys.pack_key("p"), keys.deletes_key("d"), keys.index_key("i"),
                                              keys.index_fragments_key(keys.index_key("i")))])
