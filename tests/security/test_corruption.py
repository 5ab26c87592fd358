"""Damaged files are refused, never read back wrong: each kind of stored object is
truncated and has a byte flipped, then read through the Python API, through a real server
(psycopg), and scrubbed with ``reeldb check`` as a subprocess.

Every read must raise XX001 (``errors.DataCorrupted``) naming the damaged object, change
nothing on disk, and leave the server answering other queries; ``reeldb check`` must name
each damaged object and exit non-zero, and find nothing wrong with an undamaged database
(also one written before checksums were recorded, whose objects it reports unverified).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import reeldb
from reeldb import errors
from reeldb.catalog.catalog import Catalog
from reeldb.connection import Connection
from reeldb.format.manifest import _digest, _dumps
from reeldb.loader.plan import build_table_plan
from reeldb.loader.read import Reader, parquet_columns
from reeldb.server.server import BackgroundServer
from reeldb.storage import LocalStore, open_store

ROWS = 300
DIM = 8
QUERY = "[" + ",".join(["0.5"] * DIM) + "]"
LAST = ROWS - 1  # the row whose blob value ends the pack (a truncated pack loses it)


def build(path: Path | str) -> None:
    """One table with every kind of object: Parquet fragment, matrix (VECTOR), blob pack
    (BYTEA values over the inline limit), deletion vector and HNSW index; plus a second
    table that must stay readable when the first is damaged."""
    db = reeldb.connect(path)
    db.execute(f"CREATE TABLE t (id INT PRIMARY KEY, emb VECTOR({DIM}), b BYTEA)")
    rng = np.random.default_rng(0)
    db.executemany("INSERT INTO t VALUES (%s, %s, %s)",
                   [(i, rng.random(DIM).astype(np.float32), payload(i)) for i in range(ROWS)])
    db.execute("DELETE FROM t WHERE id < 10")
    db.execute("CREATE INDEX ON t USING hnsw (emb vector_cosine_ops)")
    db.execute("CREATE TABLE ok (id INT, name TEXT)")
    db.executemany("INSERT INTO ok VALUES (%s, %s)", [(i, f"n{i}") for i in range(5)])
    db.close()


def payload(i: int) -> bytes:
    return np.random.default_rng(1000 + i).integers(0, 256, 6000 + i, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corruption") / "db"
    build(path)
    return path


@pytest.fixture
def fresh(template: Path, tmp_path: Path) -> Path:
    """A copy of the template for one test to damage (its own path: no process cache
    of another test's reads applies)."""
    path = tmp_path / "db"
    shutil.copytree(template, path)
    return path


# -- where each kind of object lives -------------------------------------------------------
def head(path: Path, branch: str = "main") -> dict:
    ref = json.loads((path / "_reeldb/refs/branches" / branch).read_text())
    return json.loads((path / "_reeldb/commits" / ref["commit"]).read_text())


def manifest(path: Path) -> str:
    return head(path)["tables"]["t"]


def segment(path: Path) -> str:
    return json.loads((path / manifest(path)).read_text())["segments"][0]


def fragment(path: Path) -> dict:
    return json.loads((path / segment(path)).read_text())["fragments"][0]


def table_dir(path: Path) -> str:
    return "data/" + json.loads((path / manifest(path)).read_text())["table_id"]


def one(path: Path, pattern: str) -> str:
    found = [os.path.relpath(p, path) for p in glob.glob(str(path / pattern))]
    assert len(found) == 1, found
    return found[0]


def value_offset(path: Path, row: int) -> tuple[str, int, int]:
    """(pack key, offset, length) of row ``row``'s blob value, from the Parquet file."""
    t = pq.read_table(path / one(path, f"{table_dir(path)}/*.parquet"))
    cells = t.column(f"c{_column_id(path, 'b')}").to_pylist()
    rowids = t.column("_rowid").to_pylist()
    ids = t.column(f"c{_column_id(path, 'id')}").to_pylist()
    cell = cells[ids.index(row)]
    assert rowids and cell["pack"]
    return f"blobs/{cell['pack']}.pack", cell["offset"], cell["length"]


def _column_id(path: Path, name: str) -> int:
    cols = json.loads((path / manifest(path)).read_text())["schema"]["columns"]
    return next(c["id"] for c in cols if c["name"] == name)


KINDS: dict[str, Callable[[Path], str]] = {
    "parquet": lambda p: one(p, f"{table_dir(p)}/*.parquet"),
    "matrix": lambda p: one(p, f"{table_dir(p)}/*.mat"),
    "pack": lambda p: one(p, "blobs/*.pack"),
    "deletes": lambda p: fragment(p)["deletes"],
    "manifest": manifest,
    "segment": segment,
    "commit": lambda p: "_reeldb/commits/" + head(p)["id"],
    "index": lambda p: next(k for k in (os.path.relpath(f, p) for f in glob.glob(str(p / "indexes/*")))
                            if not k.endswith(".json")),
    "index list": lambda p: one(p, "indexes/*.json"),
}


def damage(path: Path, kind: str, how: str) -> str:
    """Truncate the object to half its size, or flip one byte of it; returns its key.
    A blob pack is damaged inside the last row's value, the one the reads ask for."""
    key = KINDS[kind](path)
    file = path / key
    data = bytearray(file.read_bytes())
    if kind == "pack":
        _, off, n = value_offset(path, LAST)
        at = off + n // 2
    else:
        at = len(data) // 2
    if how == "truncate":
        del data[at:]
    else:
        data[at] ^= 0x5A
    file.write_bytes(bytes(data))
    return key


def snapshot(path: Path) -> dict[str, str]:
    """Every file's content hash: a refused read must change nothing."""
    return {os.path.relpath(f, path): hashlib.sha256(Path(f).read_bytes()).hexdigest()
            for f in glob.glob(str(path / "**"), recursive=True) if os.path.isfile(f)
            and "/_reeldb/locks/" not in f}


def read_through_api(path: Path, kind: str) -> None:
    """The read that reaches the object of ``kind`` in a fresh connection."""
    with reeldb.connect(path, create=False) as db:
        if kind == "pack":
            blob = db.execute("SELECT b FROM t WHERE id = %s", [LAST]).fetchone()[0]
            bytes(blob)
        elif kind in ("index", "index list"):
            db.execute(f"SELECT id FROM t ORDER BY emb <=> '{QUERY}' LIMIT 3").fetchall()
        elif kind == "matrix":
            db.execute("SELECT emb FROM t ORDER BY id").fetchall()
        else:
            db.execute("SELECT count(*), sum(id) FROM t").fetchall()


# -- the Python API -------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["truncate", "flip"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_damaged_object_is_refused_naming_it(fresh: Path, kind: str, how: str) -> None:
    key = damage(fresh, kind, how)
    before = snapshot(fresh)
    with pytest.raises(errors.DataCorrupted) as got:
        read_through_api(fresh, kind)
    assert got.value.sqlstate == "XX001"
    assert key in str(got.value), str(got.value)
    assert snapshot(fresh) == before


def test_undamaged_reads_are_right(fresh: Path) -> None:
    with reeldb.connect(fresh, create=False) as db:
        assert db.execute("SELECT count(*), sum(id) FROM t").fetchone() == (ROWS - 10, sum(range(10, ROWS)))
        assert bytes(db.execute("SELECT b FROM t WHERE id = %s", [LAST]).fetchone()[0]) == payload(LAST)
        assert len(db.execute(f"SELECT id FROM t ORDER BY emb <=> '{QUERY}' LIMIT 3").fetchall()) == 3


def test_truncated_deletion_vector_never_brings_rows_back(fresh: Path) -> None:
    """The attack that was reproduced: half a deletion vector read as the whole one."""
    damage(fresh, "deletes", "truncate")
    with reeldb.connect(fresh, create=False) as db:
        with pytest.raises(errors.DataCorrupted, match="deletes/"):
            db.execute("SELECT count(*) FROM t WHERE id < 10").fetchone()
        assert db.execute("SELECT count(*) FROM ok").fetchone() == (5,)  # other tables still read


def test_flipped_byte_in_blob_value_is_refused_by_ranged_reads_and_the_loader(fresh: Path) -> None:
    key, off, n = value_offset(fresh, LAST)
    damage(fresh, "pack", "flip")
    with reeldb.connect(fresh, create=False) as db:
        blob = db.execute("SELECT b FROM t WHERE id = %s", [LAST]).fetchone()[0]
        with pytest.raises(errors.DataCorrupted, match=key):
            blob.read(n // 2 - 10, 20)  # a ranged read over the flipped byte
        with pytest.raises(errors.DataCorrupted, match=key):
            blob.numpy()
        with pytest.raises(errors.DataCorrupted, match=key):
            blob.open().read()
        # other values of the same pack still read
        assert bytes(db.execute("SELECT b FROM t WHERE id = 20").fetchone()[0]) == payload(20)
        plan = build_table_plan(db, db.head, "t", [], ["id", "b"], {})
        reader = Reader(plan)
        assert bytes(reader.read(np.arange(0, 5))["b"][0]) == payload(10)
        with pytest.raises(errors.DataCorrupted, match=key):
            reader.read(np.arange(plan.rows - 5, plan.rows))


def test_truncated_matrix_is_refused_by_the_loader(fresh: Path) -> None:
    key = damage(fresh, "matrix", "truncate")
    with reeldb.connect(fresh, create=False) as db, pytest.raises(errors.DataCorrupted, match=key):
        plan = build_table_plan(db, db.head, "t", [], ["emb"], {})
        Reader(plan).read(np.arange(5))


def test_damaged_ref_is_refused_naming_it(fresh: Path) -> None:
    ref = fresh / "_reeldb/refs/branches/main"
    ref.write_bytes(ref.read_bytes()[:7])
    with pytest.raises(errors.DataCorrupted, match="_reeldb/refs/branches/main"):
        reeldb.connect(fresh, create=False).execute("SELECT 1")


# -- reeldb check -----------------------------------------------------------------------------
def run_check(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reeldb", "check", str(path), *extra],
                          capture_output=True, text=True, timeout=120)


def test_check_finds_nothing_on_an_undamaged_database(template: Path) -> None:
    for extra in ((), ("--all-history",)):
        got = run_check(template, *extra)
        assert got.returncode == 0, got.stdout + got.stderr
        assert got.stdout == ""
        assert "checked" in got.stderr and "not verified" not in got.stderr


@pytest.mark.parametrize("how", ["truncate", "flip"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_check_names_each_damaged_object(fresh: Path, kind: str, how: str) -> None:
    key = damage(fresh, kind, how)
    before = snapshot(fresh)
    got = run_check(fresh)
    assert got.returncode == 1, got.stdout + got.stderr
    lines = got.stdout.splitlines()
    assert any(line.startswith(f"damaged {key}") and "branch main" in line for line in lines), got.stdout
    assert snapshot(fresh) == before


def test_check_reports_missing_objects(fresh: Path) -> None:
    key = KINDS["matrix"](fresh)
    (fresh / key).unlink()
    got = run_check(fresh)
    assert got.returncode == 1
    assert f"missing {key}" in got.stdout and "table t" in got.stdout


def test_check_all_history_reaches_old_commits(fresh: Path) -> None:
    """A commit only in the history (not a head) is checked with --all-history only."""
    with reeldb.connect(fresh, create=False) as db:
        db.execute("INSERT INTO ok VALUES (99, 'x')")
    old = head(fresh)["parents"][0]
    key = f"_reeldb/commits/{old}"
    file = fresh / key
    file.write_bytes(file.read_bytes()[:-5])
    assert run_check(fresh).returncode == 0
    got = run_check(fresh, "--all-history")
    assert got.returncode == 1
    assert f"damaged {key}" in got.stdout and "history of branch main" in got.stdout


def test_check_refuses_a_path_that_is_no_database(tmp_path: Path) -> None:
    got = run_check(tmp_path / "nothing")
    assert got.returncode == 1 and "no reeldb database" in got.stderr


# -- a database written before checksums ------------------------------------------------------
def strip_checksums(path: Path) -> None:
    """Rewrite a database as reeldb wrote it before checksums: fragments without ``sums``,
    blob cells without their ``sums`` field, commits and index lists without ``sum``."""
    def old_segment(key: str) -> str:
        d = json.loads((path / key).read_text())
        for f in d["fragments"]:
            f.pop("sums", None)
            pk = path / f"data/{tid}/{f['id']}.parquet"
            t = pq.read_table(pk)
            for i, field in enumerate(t.schema):
                if pa.types.is_struct(field.type) and field.type.get_field_index("sums") >= 0:
                    arr = t.column(i).combine_chunks()
                    old = pa.StructArray.from_arrays([arr.field(n) for n in checksum_free_fields()],
                                                     names=checksum_free_fields(), mask=arr.is_null())
                    t = t.set_column(i, field.name, old)
            pq.write_table(t, pk)
        body = _dumps(d)
        new = "_reeldb/manifests/seg-" + _digest(body)
        (path / new).write_bytes(body)
        return new

    commits = {}
    for c in glob.glob(str(path / "_reeldb/commits/*")):
        commits[os.path.basename(c)] = json.loads(Path(c).read_text())
    done: dict[str, str] = {}
    for cid, c in commits.items():
        for name, mkey in list(c["tables"].items()):
            if mkey not in done:
                m = json.loads((path / mkey).read_text())
                tid = m["table_id"]
                m["segments"] = [old_segment(s) for s in m["segments"]]
                body = _dumps(m)
                done[mkey] = "_reeldb/manifests/tbl-" + _digest(body)
                (path / done[mkey]).write_bytes(body)
            c["tables"][name] = done[mkey]
        c.pop("sum", None)
        (path / "_reeldb/commits" / cid).write_text(json.dumps(c, sort_keys=True))
    for j in glob.glob(str(path / "indexes/*.json")):
        d = json.loads(Path(j).read_text())
        d.pop("sum", None)
        d.pop("object", None)
        Path(j).write_text(json.dumps(d))


def checksum_free_fields() -> list[str]:
    return ["kind", "data", "pack", "offset", "length", "meta"]


def test_database_written_before_checksums_opens_reads_and_checks_unverified(fresh: Path, tmp_path: Path) -> None:
    strip_checksums(fresh)
    damaged = tmp_path / "damaged"
    shutil.copytree(fresh, damaged)
    with reeldb.connect(fresh, create=False) as db:
        assert db.execute("SELECT count(*), sum(id) FROM t").fetchone() == (ROWS - 10, sum(range(10, ROWS)))
        assert bytes(db.execute("SELECT b FROM t WHERE id = %s", [LAST]).fetchone()[0]) == payload(LAST)
        assert len(db.execute(f"SELECT id FROM t ORDER BY emb <=> '{QUERY}' LIMIT 3").fetchall()) == 3
        db.execute("INSERT INTO t VALUES (1000, %s, %s)", [np.ones(DIM, np.float32), payload(1000)])
        assert db.execute("SELECT count(*) FROM t").fetchone() == (ROWS - 9,)
    got = run_check(fresh, "--all-history")
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout == ""
    assert "not verified" in got.stderr
    # a truncated deletion vector of an old database is still caught (its size is known)
    key = damage(damaged, "deletes", "truncate")
    with pytest.raises(errors.DataCorrupted, match=key):
        read_through_api(damaged, "deletes")
    got = run_check(damaged)
    assert got.returncode == 1 and f"damaged {key}" in got.stdout


# -- a real server --------------------------------------------------------------------------
psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module", params=["truncate", "flip"])
def damaged_server(request, template: Path, tmp_path_factory):
    """A server over a copy whose blob pack and deletion vector are damaged."""
    path = tmp_path_factory.mktemp(f"served-{request.param}") / "db"
    shutil.copytree(template, path)
    build_gone(path)
    keys = {"pack": damage(path, "pack", request.param), "deletes": damage_gone(path, request.param)}
    srv = BackgroundServer(str(path), port=0, max_connections=8)
    yield srv, keys, path
    srv.stop()


def build_gone(path: Path) -> None:
    """A table whose only damaged object will be its deletion vector."""
    with reeldb.connect(path, create=False) as db:
        db.execute("CREATE TABLE gone (id INT)")
        db.executemany("INSERT INTO gone VALUES (%s)", [(i,) for i in range(100)])
        db.execute("DELETE FROM gone WHERE id % 2 = 0")


def damage_gone(path: Path, how: str) -> str:
    tkey = head(path)["tables"]["gone"]
    seg = json.loads((path / tkey).read_text())["segments"][0]
    key = json.loads((path / seg).read_text())["fragments"][0]["deletes"]
    file = path / key
    data = bytearray(file.read_bytes())
    if how == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    return key


def test_server_answers_xx001_naming_the_object_and_keeps_serving(damaged_server) -> None:
    srv, keys, path = damaged_server
    host, port = srv.address
    before = snapshot(path)
    with psycopg.connect(f"host={host} port={port} dbname=db user=tester", autocommit=True) as conn:
        for sql, key in ((f"SELECT b FROM t WHERE id = {LAST}", keys["pack"]),
                         ("SELECT count(*) FROM gone", keys["deletes"]),
                         ("SELECT id FROM gone WHERE id < 10 ORDER BY id", keys["deletes"])):
            with pytest.raises(psycopg.Error) as got:
                conn.execute(sql).fetchall()
            assert got.value.sqlstate == "XX001", (sql, got.value)
            assert key in str(got.value)
            # the same connection and the server go on answering
            assert conn.execute("SELECT count(*) FROM ok").fetchone() == (5,)
        assert conn.execute("SELECT b FROM t WHERE id = 20").fetchone()[0] == payload(20)
    with psycopg.connect(f"host={host} port={port} dbname=db user=tester", autocommit=True) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (ROWS - 10,)
    assert snapshot(path) == before


# -- object storage ---------------------------------------------------------------------------
def test_check_scrubs_a_database_on_s3(s3_url: str, tmp_path: Path) -> None:
    """The scrub goes through the store interface: the same findings on S3 (moto)."""
    build(s3_url)
    env = {**os.environ, "REELDB_CACHE_DIR": str(tmp_path / "cache")}  # no copy cached before the damage

    def scrub() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reeldb", "check", s3_url, "--all-history"],
                              capture_output=True, text=True, timeout=120, env=env)

    got = scrub()
    assert got.returncode == 0 and got.stdout == "", got.stdout + got.stderr
    store = open_store(s3_url, create=False, options={"cache_size": 0})
    packs = store.list("blobs/")
    dels = store.list("deletes/")
    assert len(packs) == 1 and len(dels) == 1
    data = bytearray(store.get(packs[0]))
    data[len(data) - 100] ^= 0xFF  # inside the last value
    store.put(packs[0], bytes(data))
    store.put(dels[0], store.get(dels[0])[:-4])
    got = scrub()
    assert got.returncode == 1
    assert f"damaged {packs[0]}" in got.stdout and f"damaged {dels[0]}" in got.stdout, got.stdout


class NoLocalFiles(LocalStore):
    """A local folder read as object storage is: no file paths, byte ranges only."""

    def local_path(self, key: str) -> str | None:
        return None


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_column_reads_from_object_storage_verify_footer_and_pages(fresh: Path, how: str) -> None:
    """Remotely the loader reads only the columns asked for: the footer is checked against
    the manifest's checksum of it, and each page read against its CRC."""
    key = KINDS["parquet"](fresh)
    file = fresh / key
    meta = pq.ParquetFile(file).metadata
    chunk = next(meta.row_group(0).column(i) for i in range(meta.num_columns)
                 if meta.row_group(0).column(i).path_in_schema == f"c{_column_id(fresh, 'id')}")
    data = bytearray(file.read_bytes())
    if how == "truncate":
        del data[len(data) - 100:]
    else:
        start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        data[start + chunk.total_compressed_size - 8] ^= 0x10  # in the id column's last page
    file.write_bytes(bytes(data))
    store = NoLocalFiles(str(fresh), create=False)
    db = Connection(Catalog.open(store, create=False))
    try:
        frag = db.catalog.manifest(db.catalog.commit(db.head).tables["t"]).fragments[0]
        with pytest.raises(errors.DataCorrupted, match=key) as got:
            parquet_columns(store, key, [f"c{_column_id(fresh, 'id')}"], frag)
        assert ("footer" if how == "truncate" else "CRC") in str(got.value)
        with pytest.raises(errors.DataCorrupted, match=key):  # and through a loader
            Reader(build_table_plan(db, db.head, "t", [], ["id"], {})).read(np.arange(5))
    finally:
        db.close()
