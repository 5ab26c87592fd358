"""The object-store contract (reeldb.storage), checked on LocalStore.

Every operation, key confinement, the atomicity of ``put`` as a concurrent reader sees it,
and the two primitives commits rely on -- ``put_if_absent`` and ``compare_and_swap`` --
under real contention between processes.
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from reeldb import errors
from reeldb.storage import LocalStore, ObjectStore, open_store
from reeldb.storage.local import LOCK_DIR, TMP_PREFIX


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(str(tmp_path / "db"))


def _on_disk(root: str) -> list[str]:
    """Every file under ``root``, temp and lock files included."""
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/") for n in names]
    return sorted(out)


def _temp_files(root: str) -> list[str]:
    return [k for k in _on_disk(root) if k.rpartition("/")[2].startswith(TMP_PREFIX)]


# --- reads and writes ---------------------------------------------------------------------


# The ObjectStore contract (put, get, ranges, versions, compare-and-swap, list, delete,
# mtime, open_input) runs on this store and on S3 in test_s3.py ("local" of CONTRACT);
# here: what only a local folder has.


def test_is_an_object_store(store: LocalStore) -> None:
    assert isinstance(store, ObjectStore)
    assert store.url == "file://" + store.root


def test_a_folder_is_not_an_object(store: LocalStore) -> None:
    store.put("a/b/c", b"1")
    assert not store.exists("a/b")
    with pytest.raises(KeyError):
        store.get("a/b")
    with pytest.raises(KeyError):
        store.size("a/b")
    assert store.get_versioned("a/b") is None
    with pytest.raises(KeyError):
        store.get("a/b/c/d")  # "a/b/c" is a file, so nothing lives below it


def test_local_path_memmaps(store: LocalStore) -> None:
    m = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    store.put("data/1/f.2.mat", m.tobytes())
    path = store.local_path("data/1/f.2.mat")
    assert path is not None and os.path.isfile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=(50, 8))
    assert np.array_equal(mm[17], m[17])


# --- atomic put -----------------------------------------------------------------------------


def _write_alternating(root: str, key: str, n: int) -> None:
    s = LocalStore(root)
    for i in range(n):
        s.put(key, (b"a" if i % 2 else b"b") * 1_000_000)


@pytest.mark.slow
def test_put_is_atomic_for_a_concurrent_reader(store: LocalStore) -> None:
    store.put("k", b"b" * 1_000_000)
    ctx = mp.get_context("spawn")
    writer = ctx.Process(target=_write_alternating, args=(store.root, "k", 200))
    writer.start()
    seen = set()
    while writer.is_alive():
        data = store.get("k")
        assert data in (b"a" * 1_000_000, b"b" * 1_000_000), (len(data), data[:1], data[-1:])
        seen.add(data[:1])
        assert store.list("") == ["k"]
    writer.join(60)
    assert writer.exitcode == 0
    assert seen == {b"a", b"b"}  # the reader did overlap the writes
    assert _temp_files(store.root) == []


def test_writes_leave_no_temp_files(store: LocalStore) -> None:
    for i in range(20):
        store.put(f"d/k{i % 5}", os.urandom(100 + i))
        store.put_if_absent(f"d/once{i % 3}", b"v")
        got = store.get_versioned("d/ref")
        store.compare_and_swap("d/ref", got and got[1], str(i).encode())
    assert _temp_files(store.root) == []
    assert store.list("d/") == sorted(
        [f"d/k{i}" for i in range(5)] + [f"d/once{i}" for i in range(3)] + ["d/ref"]
    )


def test_failed_write_raises_storage_error_and_cleans_up(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("k", b"old")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(errors.StorageError) as info:
        store.put("k", b"new")
    assert info.value.sqlstate == "58030"
    with pytest.raises(errors.StorageError):
        store.put_if_absent("k2", b"new")
    with pytest.raises(errors.StorageError):
        store.compare_and_swap("k", store.get_versioned("k")[1], b"new")
    monkeypatch.undo()
    assert store.get("k") == b"old"
    assert not store.exists("k2")
    assert _temp_files(store.root) == []


def test_failed_rename_cleans_up(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(errors.StorageError):
        store.put("k", b"new")
    monkeypatch.undo()
    assert not store.exists("k")
    assert _temp_files(store.root) == []


# --- list -----------------------------------------------------------------------------------


def test_list_hides_temp_and_lock_files(store: LocalStore) -> None:
    store.put("blobs/real.pack", b"1")
    store.compare_and_swap("_reeldb/refs/branches/main", None, b"{}")
    store.delete("blobs/real.pack")  # goes through the lock dir's existence check
    store.put("blobs/real.pack", b"1")
    # a writer killed mid-put leaves its temp file behind
    with open(os.path.join(store.root, "blobs", TMP_PREFIX + "deadbeef"), "wb") as f:
        f.write(b"half a pack")
    assert any(k.startswith(LOCK_DIR + "/") for k in _on_disk(store.root))
    assert store.list("") == ["_reeldb/refs/branches/main", "blobs/real.pack"]
    assert store.list("blobs/") == ["blobs/real.pack"]
    assert store.list("_reeldb/") == ["_reeldb/refs/branches/main"]
    assert store.list("_reeldb/lo") == []
    assert store.list(LOCK_DIR + "/") == []


def test_sweep_temporary_removes_only_old_temp_files(store: LocalStore) -> None:
    store.put("d/real", b"1")
    old, young = (os.path.join(store.root, "d", TMP_PREFIX + n) for n in ("old", "young"))
    for p in (old, young):
        with open(p, "wb") as f:
            f.write(b"12345")
    t = time.time() - 3600
    os.utime(old, (t, t))
    assert store.sweep_temporary(time.time() - 60) == (1, 5)
    assert not os.path.exists(old)
    assert os.path.exists(young)  # may belong to a writer still running
    assert store.get("d/real") == b"1"


# --- keys -----------------------------------------------------------------------------------


BAD_KEYS = ["", "..", "../x", "a/../b", "a/..", "/abs", "/", "a//b", "a/", "./a", "a/./b",
            "a\\b", "a\0b", TMP_PREFIX + "x", "d/" + TMP_PREFIX + "x", LOCK_DIR, LOCK_DIR + "/x"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store: LocalStore, key: str) -> None:
    calls = [
        lambda: store.get(key), lambda: store.get_range(key, 0, 1), lambda: store.get_versioned(key),
        lambda: store.put(key, b"1"), lambda: store.put_if_absent(key, b"1"),
        lambda: store.compare_and_swap(key, None, b"1"), lambda: store.delete(key),
        lambda: store.exists(key), lambda: store.size(key), lambda: store.mtime(key),
        lambda: store.local_path(key), lambda: store.open_input(key),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("prefix", ["../", "/", "/abs", "a/../", "a//", "a\\b"])
def test_bad_prefixes_are_refused(store: LocalStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        store.list(prefix)


def test_nothing_is_written_outside_root(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "db"))
    with pytest.raises(ValueError):
        store.put("../escape", b"1")
    assert not (tmp_path / "escape").exists()


def test_dots_inside_names_are_fine(store: LocalStore) -> None:
    store.put("a/b..c/.d.e.f", b"1")
    assert store.get("a/b..c/.d.e.f") == b"1"
    assert store.list("a/") == ["a/b..c/.d.e.f"]


# --- open_store -----------------------------------------------------------------------------


def test_open_store_paths_and_file_urls(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "x"))
    assert isinstance(s, LocalStore) and os.path.isdir(tmp_path / "x")
    assert open_store(tmp_path / "p").root == str(tmp_path / "p")  # os.PathLike
    s2 = open_store("file://" + str(tmp_path / "y"))
    assert isinstance(s2, LocalStore) and s2.root == str(tmp_path / "y")
    spaced = LocalStore(str(tmp_path / "with space"))
    spaced.put("k", b"1")
    assert "%20" in spaced.url
    assert open_store(spaced.url).get("k") == b"1"  # url round-trips


def test_open_store_create_false(tmp_path: Path) -> None:
    with pytest.raises(errors.OperationalError):
        open_store(str(tmp_path / "absent"), create=False)
    assert not (tmp_path / "absent").exists()


def test_open_store_refuses_unknown_urls() -> None:
    with pytest.raises(errors.FeatureNotSupported) as info:
        open_store("gs://bucket/video-gen")
    assert info.value.sqlstate == "0A000"
    assert "S3-compatible endpoint" in str(info.value)
    with pytest.raises(errors.FeatureNotSupported):
        open_store("file://otherhost/x")
    with pytest.raises(errors.FeatureNotSupported):
        open_store("ftp://x/y")
    with pytest.raises(errors.InterfaceError):
        open_store("")


def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(errors.StorageError):
        LocalStore(str(tmp_path / "f"))


def test_objects_are_durable_before_the_ref_that_points_at_them(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Immutable objects are fsynced later, all at once, but always before the branch ref
    (a mutable write) that makes them reachable is renamed into place."""
    import reeldb
    from reeldb.storage import local

    db = reeldb.connect(tmp_path / "db")
    db.execute("CREATE TABLE t (a INT, b TEXT)")
    events: list[tuple[str, str]] = []
    real_file, real_dir, real_replace, real_link = local._fsync_file, local._fsync_dir, os.replace, os.link

    def fsync_file(path: str) -> None:
        events.append(("fsync", path))
        real_file(path)

    def fsync_dir(path: str) -> None:
        events.append(("fsync", path))
        real_dir(path)

    def replace(src, dst) -> None:  # type: ignore[no-untyped-def]
        events.append(("place", os.fspath(dst)))
        real_replace(src, dst)

    def link(src, dst) -> None:  # type: ignore[no-untyped-def]
        events.append(("place", os.fspath(dst)))
        real_link(src, dst)

    monkeypatch.setattr(local, "_fsync_file", fsync_file)
    monkeypatch.setattr(local, "_fsync_dir", fsync_dir)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    db.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    head = next(i for i, (kind, p) in enumerate(events) if kind == "place" and "/refs/branches/" in p)
    immutable = ("/data/", "/blobs/", "/deletes/", "/_reeldb/manifests/", "/_reeldb/commits/")
    placed = {p for kind, p in events[:head] if kind == "place" and any(d in p for d in immutable)}
    synced = {p for kind, p in events[:head] if kind == "fsync"}
    assert any("/data/" in p for p in placed) and any("/commits/" in p for p in placed)
    for path in placed:
        assert path in synced, f"{path} was not fsynced before the branch moved"
        assert os.path.dirname(path) in synced, f"the folder of {path} was not fsynced before the branch moved"
    db.close()

