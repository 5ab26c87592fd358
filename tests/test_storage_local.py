"""reeldb.storage.LocalStore: the object-store contract over a local folder.

Covers every operation of the interface, atomic writes (no temp files visible), the
create-once and compare-and-swap primitives under real multi-process contention, and key
validation.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import pytest

from reeldb.storage import LocalStore, open_store
from reeldb.storage.local import LOCK_DIR, TMP_PREFIX


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(str(tmp_path / "db"))


# --- basic operations ------------------------------------------------------------------


def test_put_get_roundtrip(store: LocalStore) -> None:
    store.put("a/b/c.bin", b"hello world")
    assert store.get("a/b/c.bin") == b"hello world"
    assert store.exists("a/b/c.bin")
    assert store.size("a/b/c.bin") == 11


def test_put_replaces(store: LocalStore) -> None:
    store.put("k", b"one")
    store.put("k", b"two-two")
    assert store.get("k") == b"two-two"
    assert store.size("k") == 7


def test_put_empty_object(store: LocalStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.size("empty") == 0
    assert store.exists("empty")


def test_put_accepts_memoryview_and_bytearray(store: LocalStore) -> None:
    store.put("mv", memoryview(b"abcdef"))
    store.put("ba", bytearray(b"xyz"))
    assert store.get("mv") == b"abcdef"
    assert store.get("ba") == b"xyz"


def test_get_range(store: LocalStore) -> None:
    data = bytes(range(256)) * 4
    store.put("r", data)
    assert store.get_range("r", 0, 10) == data[:10]
    assert store.get_range("r", 100, 50) == data[100:150]
    assert store.get_range("r", 1000, 100) == data[1000:]  # short read at the end
    assert store.get_range("r", 2000, 10) == b""  # past the end
    assert store.get_range("r", 5, 0) == b""


def test_missing_key_raises_keyerror(store: LocalStore) -> None:
    with pytest.raises(KeyError):
        store.get("nope")
    with pytest.raises(KeyError):
        store.get_range("nope", 0, 1)
    with pytest.raises(KeyError):
        store.size("nope")
    with pytest.raises(KeyError):
        store.mtime("nope")
    with pytest.raises(KeyError):
        store.open_input("nope")
    assert store.get_versioned("nope") is None
    assert not store.exists("nope")


def test_delete(store: LocalStore) -> None:
    store.put("x/y", b"1")
    store.delete("x/y")
    assert not store.exists("x/y")
    with pytest.raises(KeyError):
        store.get("x/y")
    store.delete("x/y")  # a missing key is not an error
    store.delete("never/existed")


def test_mtime(store: LocalStore) -> None:
    before = time.time()
    store.put("m", b"1")
    after = time.time()
    mt = store.mtime("m")
    assert isinstance(mt, float)
    assert before - 2 <= mt <= after + 2


def test_exists_size(store: LocalStore) -> None:
    assert not store.exists("s")
    store.put("s", b"x" * 12345)
    assert store.exists("s")
    assert store.size("s") == 12345


def test_list_sorted_and_prefix(store: LocalStore) -> None:
    keys = ["data/t1/b.parquet", "data/t1/a.parquet", "data/t2/c.parquet", "blobs/p.pack", "top"]
    for k in keys:
        store.put(k, b"1")
    assert store.list("data/") == ["data/t1/a.parquet", "data/t1/b.parquet", "data/t2/c.parquet"]
    assert store.list("data/t1/") == ["data/t1/a.parquet", "data/t1/b.parquet"]
    assert store.list("data/t1") == ["data/t1/a.parquet", "data/t1/b.parquet"]
    assert store.list("blobs/") == ["blobs/p.pack"]
    assert store.list("") == sorted(keys)
    assert store.list("missing/") == []


def test_list_single_file_prefix(store: LocalStore) -> None:
    store.put("dir/file", b"1")
    assert store.list("dir/file") == ["dir/file"]


def test_list_excludes_locks(store: LocalStore) -> None:
    store.compare_and_swap("refs/x", None, b"1")
    assert store.list("") == ["refs/x"]
    assert not any(k.startswith(LOCK_DIR) for k in store.list(""))


def test_put_leaves_no_temp_files(store: LocalStore) -> None:
    for i in range(20):
        store.put(f"d/k{i % 5}", os.urandom(100 + i))
        store.put_if_absent(f"d/once{i % 3}", b"v")
    keys = store.list("")
    assert not any(os.path.basename(k).startswith(TMP_PREFIX) for k in keys)
    assert sorted(keys) == sorted([f"d/k{i}" for i in range(5)] + [f"d/once{i}" for i in range(3)])
    # and on disk as well: nothing left behind by put or put_if_absent
    on_disk = os.listdir(os.path.join(store.root, "d"))
    assert not any(n.startswith(TMP_PREFIX) for n in on_disk), on_disk


def test_list_hides_stray_temp_file(store: LocalStore) -> None:
    """A temp file left by a writer killed mid-put is never listed as an object."""
    store.put("d/real", b"1")
    with open(os.path.join(store.root, "d", TMP_PREFIX + "deadbeef"), "wb") as f:
        f.write(b"partial")
    assert store.list("d/") == ["d/real"]


def test_sweep_temporary_respects_age(store: LocalStore) -> None:
    store.put("d/real", b"1")
    old = os.path.join(store.root, "d", TMP_PREFIX + "old")
    young = os.path.join(store.root, "d", TMP_PREFIX + "young")
    for p in (old, young):
        with open(p, "wb") as f:
            f.write(b"12345")
    t = time.time() - 3600
    os.utime(old, (t, t))
    files, size = store.sweep_temporary(time.time() - 60)
    assert (files, size) == (1, 5)
    assert not os.path.exists(old)
    assert os.path.exists(young)  # may belong to a writer still running
    assert store.get("d/real") == b"1"


def test_open_input_seekable(store: LocalStore) -> None:
    store.put("f", b"0123456789")
    with store.open_input("f") as f:
        assert f.seekable()
        f.seek(3)
        assert f.read(4) == b"3456"
        assert f.tell() == 7


def test_local_path(store: LocalStore) -> None:
    store.put("a/b", b"1")
    p = store.local_path("a/b")
    assert p is not None and os.path.isfile(p)
    with open(p, "rb") as f:
        assert f.read() == b"1"


def test_open_store(tmp_path) -> None:
    s = open_store(str(tmp_path / "x"))
    assert isinstance(s, LocalStore)
    s2 = open_store("file://" + str(tmp_path / "y"))
    assert isinstance(s2, LocalStore)
    assert s2.root == str(tmp_path / "y")


# --- create-once and compare-and-swap --------------------------------------------------


def test_put_if_absent(store: LocalStore) -> None:
    assert store.put_if_absent("once", b"first") is True
    assert store.put_if_absent("once", b"second") is False
    assert store.get("once") == b"first"


def test_get_versioned_changes_with_content(store: LocalStore) -> None:
    store.put("v", b"a")
    d1, v1 = store.get_versioned("v")
    assert d1 == b"a"
    store.put("v", b"b")
    d2, v2 = store.get_versioned("v")
    assert d2 == b"b" and v2 != v1


def test_compare_and_swap_create(store: LocalStore) -> None:
    assert store.compare_and_swap("c", None, b"1") is True
    assert store.get("c") == b"1"
    # None expected on an existing object -> refused, value unchanged
    assert store.compare_and_swap("c", None, b"2") is False
    assert store.get("c") == b"1"


def test_compare_and_swap_versions(store: LocalStore) -> None:
    store.put("c", b"1")
    _, v1 = store.get_versioned("c")
    assert store.compare_and_swap("c", v1, b"2") is True
    assert store.get("c") == b"2"
    # stale version -> False
    assert store.compare_and_swap("c", v1, b"3") is False
    assert store.get("c") == b"2"
    _, v2 = store.get_versioned("c")
    assert store.compare_and_swap("c", v2, b"3") is True
    assert store.get("c") == b"3"


def test_compare_and_swap_expected_version_on_missing(store: LocalStore) -> None:
    store.put("tmp", b"x")
    _, v = store.get_versioned("tmp")
    assert store.compare_and_swap("absent", v, b"1") is False
    assert not store.exists("absent")


def test_compare_and_swap_bogus_version(store: LocalStore) -> None:
    store.put("c", b"1")
    assert store.compare_and_swap("c", "not-a-version", b"2") is False
    assert store.get("c") == b"1"


# --- key validation --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["..", "../x", "a/../b", "a/..", "/abs", "", "a\\b"])
def test_bad_keys_rejected(store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"1")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.exists(key)
    with pytest.raises(ValueError):
        store.delete(key)


def test_bad_key_writes_nothing_outside(tmp_path) -> None:
    store = LocalStore(str(tmp_path / "db"))
    with pytest.raises(ValueError):
        store.put("../escape", b"1")
    assert not (tmp_path / "escape").exists()


def test_dots_inside_names_are_fine(store: LocalStore) -> None:
    store.put("a/b..c/d.e.f", b"1")
    assert store.get("a/b..c/d.e.f") == b"1"


# --- multi-process races -----------------------------------------------------------------


def _race_put_if_absent(root: str, key: str, me: int, start_at: float, q) -> None:
    s = LocalStore(root)
    while time.time() < start_at:
        pass
    q.put((me, s.put_if_absent(key, f"writer-{me}".encode())))


def _cas_increment(root: str, key: str, n: int, q) -> None:
    s = LocalStore(root)
    done = retries = 0
    while done < n:
        got = s.get_versioned(key)
        assert got is not None
        data, version = got
        value = json.loads(data)["n"]
        if s.compare_and_swap(key, version, json.dumps({"n": value + 1}).encode()):
            done += 1
        else:
            retries += 1
    q.put(retries)


def test_put_if_absent_race_8_processes(tmp_path) -> None:
    ctx = mp.get_context("spawn")
    root = str(tmp_path / "db")
    LocalStore(root)
    q = ctx.Queue()
    start_at = time.time() + 1.5  # spawned interpreters need a moment to start
    procs = [ctx.Process(target=_race_put_if_absent, args=(root, "refs/x", i, start_at, q))
             for i in range(8)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    winners = [me for me, won in results if won]
    assert len(winners) == 1, results
    assert LocalStore(root).get("refs/x") == f"writer-{winners[0]}".encode()
    assert LocalStore(root).list("") == ["refs/x"]


def test_compare_and_swap_counter_4_processes(tmp_path) -> None:
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    root = str(tmp_path / "db")
    s = LocalStore(root)
    s.put("counter", json.dumps({"n": 0}).encode())
    q = ctx.Queue()
    procs = [ctx.Process(target=_cas_increment, args=(root, "counter", 50, q)) for _ in range(4)]
    for p in procs:
        p.start()
    retries = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert json.loads(s.get("counter"))["n"] == 200, retries
    assert s.list("") == ["counter"]
