"""reeldb on S3 (moto's standalone server on 127.0.0.1, from conftest's ``s3_server``).

The object-store contract on CloudStore (what tests/test_storage.py checks on LocalStore,
including the two atomic primitives between processes), the local disk cache of immutable
objects, ``storage_options``, network failures (a flaky TCP proxy in front of the server),
fork safety, and a DataLoader with worker processes reading from S3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import pickle
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import reeldb
from reeldb import errors
from reeldb.format.keys import WRITERS
from reeldb.storage import ObjectStore, open_store
from reeldb.storage import cache as cache_mod
from reeldb.storage.cache import DiskCache
from reeldb.storage.cloud import BLOCK, CloudStore

FORK = mp.get_context("fork")
SPAWN = mp.get_context("spawn")


def _in_processes(target: Callable[..., None], arg_lists: list[tuple]) -> list:
    """Run ``target(*args, q)`` in one forked process per ``args``; what each put on
    ``q``, once all exited cleanly."""
    q = FORK.Queue()
    procs = [FORK.Process(target=target, args=(*args, q), daemon=True) for args in arg_lists]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


BOTH = ["cached", "uncached"]  # stores: with their disk cache, and with cache_size=0
CONTRACT = ["local", *BOTH]  # what every ObjectStore does: a local folder answers the same


@pytest.fixture
def store(request: pytest.FixtureRequest, s3_url: str, tmp_path: Path) -> ObjectStore:
    """A CloudStore on a fresh prefix: with its disk cache (immutable keys go through
    cached blocks), or, parametrized "uncached", without (every read is a request); or,
    parametrized "local", a folder (tests of the store contract)."""
    kind = getattr(request, "param", "cached")
    if kind == "local":
        return open_store(str(tmp_path / "db"))
    options = {"cache_dir": str(tmp_path / "cache")} if kind == "cached" else {"cache_size": 0}
    s = open_store(s3_url, options=options)
    assert isinstance(s, CloudStore)
    assert (s.cache is None) == (kind == "uncached")
    return s


@pytest.fixture
def cached_store(s3_url: str, tmp_path: Path) -> CloudStore:
    s = open_store(s3_url, options={"cache_dir": str(tmp_path / "cache")})
    assert isinstance(s, CloudStore) and s.cache is not None
    return s


def _gets(s: CloudStore) -> int:
    return s.stats()["requests"].get("get", 0)


# ============================================================== 1. the store contract


@pytest.mark.parametrize("store", BOTH, indirect=True)
def test_is_an_object_store(store: CloudStore, s3_url: str) -> None:
    assert isinstance(store, ObjectStore)
    assert store.url == s3_url
    assert store.local_path("data/x") is None  # never a real file of the object itself
    s3a = open_store(s3_url.replace("s3://", "s3a://", 1) + "/", options={"cache_size": 0})
    assert s3a.url == s3_url  # s3a:// and a trailing slash name the same place
    store.put("k", b"v")
    assert s3a.get("k") == b"v"


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_put_get_exists_size(store: ObjectStore) -> None:
    for key in ("data/3/abc.parquet", "_reeldb/refs/branches/x"):  # immutable and mutable
        assert not store.exists(key)
        store.put(key, b"hello world")
        assert store.get(key) == b"hello world"
        assert store.exists(key)
        assert store.size(key) == 11
    store.put("_reeldb/refs/branches/x", b"replaced")
    assert store.get("_reeldb/refs/branches/x") == b"replaced"
    assert store.size("_reeldb/refs/branches/x") == 8


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_put_empty_and_buffer_types(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b"" and store.exists("empty") and store.size("empty") == 0
    store.put("blobs/empty.pack", b"")
    assert store.get("blobs/empty.pack") == b"" and store.get_range("blobs/empty.pack", 0, 10) == b""
    store.put("ba", bytearray(b"xyz"))
    assert store.get("ba") == b"xyz"
    m = np.arange(100_000, dtype=np.float32).reshape(1000, 100)
    store.put("data/1/m.mat", memoryview(m))  # a typed, 2-D buffer: written byte for byte
    assert store.get("data/1/m.mat") == m.tobytes()
    assert store.size("data/1/m.mat") == m.nbytes


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_missing_key(store: ObjectStore) -> None:
    for key in ("nope/x", "data/nope/x.parquet"):
        for call in (store.get, store.size, store.mtime, store.open_input,
                     lambda k: store.get_range(k, 0, 1), lambda k: store.get_range(k, 3 * BLOCK, 5),
                     lambda k: store.read_ranges([(k, 0, 1)])):
            with pytest.raises(KeyError) as info:
                call(key)
            assert info.value.args == (key,)
        assert store.get_versioned(key) is None
        assert not store.exists(key)


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_get_range(store: ObjectStore) -> None:
    """Ranges inside one cache block, across blocks, past the end and empty; on an
    immutable key (cached in blocks) and a mutable one (always a request)."""
    data = os.urandom(2 * BLOCK + 12_345)
    for key in ("blobs/p.pack", "scratch/p.pack"):
        store.put(key, data)
        n = len(data)
        assert store.get_range(key, 0, 10) == data[:10]
        assert store.get_range(key, 12_345, 6_789) == data[12_345:19_134]
        assert store.get_range(key, BLOCK - 5, 10) == data[BLOCK - 5 : BLOCK + 5]  # straddles a block
        assert store.get_range(key, 100, 2 * BLOCK) == data[100 : 2 * BLOCK + 100]  # three blocks
        assert store.get_range(key, 0, n) == data
        assert store.get_range(key, n - 10, 100) == data[-10:]  # ends where the object ends
        assert store.get_range(key, n - 10, 3 * BLOCK) == data[-10:]
        assert store.get_range(key, n, 10) == b""  # starts at the end
        assert store.get_range(key, n + 5, 10) == b""
        assert store.get_range(key, 10 * BLOCK, 10) == b""  # blocks past the end
        assert store.get_range(key, 5, 0) == b""
        assert store.get_range(key, n + 100, 0) == b""
        with pytest.raises(ValueError):
            store.get_range(key, -1, 10)
        with pytest.raises(ValueError):
            store.get_range(key, 0, -1)
        # the same ranges again (a cached store answers from its blocks)
        assert store.get_range(key, BLOCK - 5, 10) == data[BLOCK - 5 : BLOCK + 5]
        assert store.get_range(key, n - 10, 100) == data[-10:]


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_get_range_past_the_end_of_a_short_object(store: ObjectStore) -> None:
    store.put("blobs/small.pack", b"0123456789")
    store.put("small", b"0123456789")
    for key in ("blobs/small.pack", "small"):
        assert store.get_range(key, 8, 100) == b"89"
        assert store.get_range(key, 10, 1) == b""
        assert store.get_range(key, 11, 1) == b""
        assert store.get_range(key, BLOCK + 1, 1) == b""
        assert store.get(key) == b"0123456789"


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_read_ranges_over_several_keys(store: ObjectStore) -> None:
    objs = {f"blobs/{i}.pack": os.urandom(50_000 + 1000 * i) for i in range(6)}
    objs["_reeldb/counters/c"] = os.urandom(3000)  # mutable: read directly
    big = os.urandom(BLOCK + 100)
    objs["data/t/big.mat"] = big
    for k, v in objs.items():
        store.put(k, v)
    ranges = []
    for k, v in objs.items():
        ranges += [(k, 0, 100), (k, len(v) - 7, 50), (k, len(v), 5), (k, 17, 0), (k, 1000, 2000)]
    ranges += [("blobs/0.pack", 0, 100)]  # the same range twice
    ranges += [("data/t/big.mat", BLOCK - 3, 6), ("data/t/big.mat", 0, BLOCK + 100)]
    got = store.read_ranges(ranges)
    assert len(got) == len(ranges)
    for (k, o, n), g in zip(ranges, got, strict=True):
        assert g == objs[k][o : o + n], (k, o, n)
    # again, in another order
    random.Random(1).shuffle(ranges)
    got = store.read_ranges(ranges)
    for (k, o, n), g in zip(ranges, got, strict=True):
        assert g == objs[k][o : o + n], (k, o, n)
    assert store.read_ranges([]) == []
    with pytest.raises(KeyError):
        store.read_ranges([("blobs/0.pack", 0, 10), ("blobs/missing.pack", 0, 10)])
    with pytest.raises(ValueError):
        store.read_ranges([("blobs/0.pack", 0, 10), ("blobs/0.pack", -5, 10)])


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_get_versioned(store: ObjectStore) -> None:
    store.put("v", b"a")
    data, v1 = store.get_versioned("v")
    assert data == b"a" and isinstance(v1, str) and v1
    assert store.get_versioned("v") == (b"a", v1)  # stable while unchanged
    store.put("v", b"b")
    data, v2 = store.get_versioned("v")
    assert data == b"b" and v2 != v1


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_put_if_absent(store: ObjectStore) -> None:
    assert store.put_if_absent("_reeldb/refs/tags/v1", b"first") is True
    assert store.put_if_absent("_reeldb/refs/tags/v1", b"second") is False
    assert store.get("_reeldb/refs/tags/v1") == b"first"
    assert store.put_if_absent("_reeldb/manifests/m1", b"m") is True  # immutable keys too
    assert store.put_if_absent("_reeldb/manifests/m1", b"other") is False
    assert store.get("_reeldb/manifests/m1") == b"m"


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_cas_create_and_none_on_existing(store: ObjectStore) -> None:
    assert store.compare_and_swap("c", None, b"1") is True
    assert store.get("c") == b"1"
    assert store.compare_and_swap("c", None, b"2") is False
    assert store.get("c") == b"1"
    assert store.put_if_absent("c", b"3") is False  # the two kinds of create exclude each other
    assert store.put_if_absent("d", b"1") is True
    assert store.compare_and_swap("d", None, b"2") is False
    assert store.get("d") == b"1"


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_cas_stale_version(store: ObjectStore) -> None:
    store.put("c", b"1")
    _, v1 = store.get_versioned("c")
    assert store.compare_and_swap("c", v1, b"2") is True
    assert store.compare_and_swap("c", v1, b"3") is False  # v1 is stale now
    assert store.get("c") == b"2"
    _, v2 = store.get_versioned("c")
    assert store.compare_and_swap("c", v2, b"3") is True
    assert store.get("c") == b"3"
    assert store.compare_and_swap("c", '"not-a-version"', b"4") is False
    assert store.compare_and_swap("c", "not-a-version", b"4") is False
    assert store.get("c") == b"3"


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_cas_with_a_version_on_a_deleted_key(store: ObjectStore) -> None:
    store.put("c", b"1")
    _, v = store.get_versioned("c")
    store.delete("c")
    assert store.compare_and_swap("c", v, b"2") is False
    assert not store.exists("c")
    assert store.get_versioned("c") is None


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_list_plain_string_prefixes(store: ObjectStore) -> None:
    keys = ["data/t1/b.parquet", "data/t1/a.parquet", "data/t2/c.parquet", "data/t10/d.parquet",
            "blobs/p.pack", "top"]
    for k in keys:
        store.put(k, b"1")
    assert store.list("") == sorted(keys)
    assert store.list("data/") == ["data/t1/a.parquet", "data/t1/b.parquet",
                                   "data/t10/d.parquet", "data/t2/c.parquet"]
    assert store.list("data/t1/") == ["data/t1/a.parquet", "data/t1/b.parquet"]
    assert store.list("data/t1") == ["data/t1/a.parquet", "data/t1/b.parquet", "data/t10/d.parquet"]
    assert store.list("data/t1/a") == ["data/t1/a.parquet"]
    assert store.list("to") == ["top"]
    assert store.list("top") == ["top"]
    assert store.list("missing/") == []
    assert store.list("top/") == []


def test_list_stays_inside_the_prefix(store: CloudStore, s3_url: str) -> None:
    """``s3://b/p`` must not list ``s3://b/p2/...`` (a sibling whose name starts alike);
    a database nested below it is simply keys under ``sub/``."""
    sibling = open_store(s3_url + "2", options={"cache_size": 0})
    sibling.put("data/t1/x", b"1")
    nested = open_store(s3_url + "/sub", options={"cache_size": 0})
    nested.put("k", b"1")
    store.put("data/t1/a", b"1")
    assert store.list("") == ["data/t1/a", "sub/k"]
    assert store.list("data/") == ["data/t1/a"]
    assert sibling.list("") == ["data/t1/x"]
    assert nested.list("") == ["k"]


def test_list_follows_every_page(store: CloudStore) -> None:
    """A listing longer than one ListObjectsV2 page (1000 keys on S3; 7 here, set on
    every listing request this client sends) is read to its end."""
    keys = [f"blobs/{i:03d}" for i in range(30)]
    for k in keys:
        store.put(k, b"x")
    pages = []
    events = store.client.meta.events
    events.register("before-parameter-build.s3.ListObjectsV2", lambda params, **kw: params.update(MaxKeys=7))
    events.register("after-call.s3.ListObjectsV2", lambda **kw: pages.append(1))
    assert store.list("blobs/") == keys
    assert len(pages) >= 5
    assert store.list("blobs/01") == keys[10:20]
    assert store.list("") == keys


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_delete(store: ObjectStore) -> None:
    store.put("x/y", b"1")
    store.delete("x/y")
    assert not store.exists("x/y")
    with pytest.raises(KeyError):
        store.get("x/y")
    store.delete("x/y")  # missing is not an error
    store.delete("never/existed")
    store.put("f", b"1")
    store.delete("f/below")
    assert store.get("f") == b"1"
    assert store.list("") == ["f"]


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_delete_of_an_immutable_object_that_was_read(store: ObjectStore) -> None:
    """vacuum deletes data files: exists() and size() must say so even after a read."""
    store.put("data/1/gone.parquet", b"12345")
    assert store.get("data/1/gone.parquet") == b"12345"
    assert store.size("data/1/gone.parquet") == 5
    store.delete("data/1/gone.parquet")
    assert not store.exists("data/1/gone.parquet")
    assert "data/1/gone.parquet" not in store.list("data/")
    with pytest.raises(KeyError):
        store.size("data/1/gone.parquet")


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_mtime(store: ObjectStore) -> None:
    before = time.time()
    store.put("m", b"1")
    mt = store.mtime("m")
    assert isinstance(mt, float)
    assert before - 5 <= mt <= time.time() + 5


def _parquet(n: int = 3000) -> tuple[pa.Table, bytes]:
    rng = np.random.default_rng(0)
    table = pa.table({"_rowid": np.arange(n), "prompt": [f"p{i}-" + rng.bytes(40).hex() for i in range(n)],
                      "score": rng.random(n)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=1000)
    return table, sink.getvalue().to_pybytes()


@pytest.mark.parametrize("store", CONTRACT, indirect=True)
def test_open_input_reads_parquet(store: ObjectStore) -> None:
    table, data = _parquet()
    assert len(data) > 100_000
    store.put("data/1/f.parquet", data)
    with store.open_input("data/1/f.parquet") as f:
        assert f.seekable() and f.readable()
        assert pq.read_table(f).equals(table)
    with store.open_input("data/1/f.parquet") as f:
        assert pq.ParquetFile(f).read(columns=["score"]).column("score").equals(table.column("score"))
    with store.open_input("data/1/f.parquet") as f:
        f.seek(-4, os.SEEK_END)
        assert f.read() == b"PAR1"
        f.seek(0)
        assert f.read(4) == b"PAR1"
        f.seek(1000)
        assert f.read(50) == data[1000:1050]
        assert f.tell() == 1050
        f.seek(len(data) + 10)
        assert f.read(10) == b""


@pytest.mark.parametrize("store", BOTH, indirect=True)
def test_file_path_is_a_readable_local_copy(store: CloudStore) -> None:
    table, data = _parquet()
    store.put("data/1/f.parquet", data)
    store.put("_reeldb/refs/branches/main", b"{}")
    path = store.file_path("data/1/f.parquet")
    if store.cache is None:
        assert path is None  # no disk cache: nothing local to hand out
        return
    assert path is not None and os.path.isfile(path)
    assert Path(path).read_bytes() == data
    assert pq.read_table(path).equals(table)
    assert store.file_path("data/1/f.parquet") == path
    assert store.file_path("_reeldb/refs/branches/main") is None  # mutable: never cached
    with pytest.raises(KeyError):
        store.file_path("data/1/missing.parquet")


def test_file_path_of_an_object_another_process_wrote(cached_store: CloudStore, s3_url: str) -> None:
    """Not written through this cache: fetched on first use."""
    other = open_store(s3_url, options={"cache_size": 0})
    m = np.random.default_rng(3).standard_normal((64, 8)).astype(np.float32)
    other.put("data/1/f.2.mat", m.tobytes())
    gets = _gets(cached_store)
    path = cached_store.file_path("data/1/f.2.mat")
    assert path is not None and _gets(cached_store) == gets + 1
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=(64, 8))
    assert np.array_equal(mm, m)
    assert cached_store.file_path("data/1/f.2.mat") == path and _gets(cached_store) == gets + 1


def test_pickles_to_the_same_store(s3_url: str, tmp_path: Path) -> None:
    """DataLoader workers get the store by pickle: same place, same options."""
    s = open_store(s3_url, options={"cache_dir": str(tmp_path / "c"), "max_retries": 2})
    s.put("k", b"v")
    copy = pickle.loads(pickle.dumps(s))
    assert isinstance(copy, CloudStore) and copy.url == s.url and copy.options == s.options
    assert copy.get("k") == b"v"
    assert copy.cache is not None and copy.cache.root == s.cache.root


BAD_KEYS = ["", "..", "../x", "a/../b", "a/..", "/abs", "/", "a//b", "a/", "./a", "a/./b",
            "a\\b", "a\0b", "data/../../x", "data//x"]


def test_bad_keys_are_refused(cached_store: CloudStore) -> None:
    store = cached_store
    for key in BAD_KEYS:
        _refused_everywhere(store, key)
    assert store.list("") == []  # nothing was written anywhere


def _refused_everywhere(store: CloudStore, key: str) -> None:
    calls = [
        lambda: store.get(key), lambda: store.get_range(key, 0, 1), lambda: store.get_versioned(key),
        lambda: store.put(key, b"1"), lambda: store.put_if_absent(key, b"1"),
        lambda: store.compare_and_swap(key, None, b"1"), lambda: store.delete(key),
        lambda: store.exists(key), lambda: store.size(key), lambda: store.mtime(key),
        lambda: store.open_input(key), lambda: store.file_path(key),
        lambda: store.read_ranges([("blobs/ok", 0, 1), (key, 0, 1)]),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"key {key!r} accepted by call {i}")


def test_non_string_key_is_refused(cached_store: CloudStore) -> None:
    with pytest.raises(ValueError):
        cached_store.get(b"data/x")  # type: ignore[arg-type]


def test_bad_prefixes_are_refused(cached_store: CloudStore) -> None:
    for prefix in ["../", "/", "/abs", "a/../", "a//", "a\\b", "a\0b"]:
        with pytest.raises(ValueError):
            cached_store.list(prefix)
            pytest.fail(f"prefix {prefix!r} accepted")


def test_nothing_is_written_outside_the_prefix(s3_url: str) -> None:
    store = open_store(s3_url + "/inner", options={"cache_size": 0})
    outer = open_store(s3_url, options={"cache_size": 0})
    with pytest.raises(ValueError):
        store.put("../escape", b"1")
    assert outer.list("") == []


# --- between processes ---------------------------------------------------------------


def _uncached(url: str) -> dict | None:
    """No disk cache on S3 (every read a request); a folder takes no options."""
    return {"cache_size": 0} if url.startswith("s3://") else None


def _cas_increment(url: str, key: str, n: int, barrier, q) -> None:
    s = open_store(url, create=False, options=_uncached(url))
    done = lost = 0
    barrier.wait()
    while done < n:
        data, version = s.get_versioned(key)
        if s.compare_and_swap(key, version, json.dumps({"n": json.loads(data)["n"] + 1}).encode()):
            done += 1
        else:
            lost += 1
    q.put(lost)


@pytest.fixture(params=["local", "s3"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of either kind, for the store contract between processes."""
    if request.param == "local":
        open_store(str(tmp_path / "db"))  # create the folder
        return str(tmp_path / "db")
    return request.getfixturevalue("s3_url")


def test_cas_counter_4_processes_x_25(any_url: str) -> None:
    store = open_store(any_url, options=_uncached(any_url))
    key = "_reeldb/counters/rowid"
    store.put(key, json.dumps({"n": 0}).encode())
    barrier = FORK.Barrier(4)
    lost = _in_processes(_cas_increment, [(any_url, key, 25, barrier) for _ in range(4)])
    assert json.loads(store.get(key))["n"] == 100, lost
    assert store.list("") == [key]


def _create_racer(url: str, key: str, me: int, use_cas: bool, barrier, q) -> None:
    s = open_store(url, create=False, options=_uncached(url))
    data = f"writer-{me}".encode()
    barrier.wait()
    q.put((me, s.compare_and_swap(key, None, data) if use_cas else s.put_if_absent(key, data)))


def _race_to_create(url: str, key: str, cas_for: set[int]) -> list[int]:
    barrier = FORK.Barrier(8)
    results = _in_processes(_create_racer, [(url, key, i, i in cas_for, barrier) for i in range(8)])
    assert sorted(me for me, _ in results) == list(range(8))
    return [me for me, won in results if won]


def test_put_if_absent_race_between_8_processes(any_url: str) -> None:
    winners = _race_to_create(any_url, "_reeldb/refs/branches/x", cas_for=set())
    assert len(winners) == 1, winners
    store = open_store(any_url, options=_uncached(any_url))
    assert store.get("_reeldb/refs/branches/x") == f"writer-{winners[0]}".encode()
    assert store.list("") == ["_reeldb/refs/branches/x"]


def test_create_race_mixing_put_if_absent_and_cas(any_url: str) -> None:
    """compare_and_swap(key, None) and put_if_absent exclude each other too: a branch
    created while a commit creates it has one winner."""
    winners = _race_to_create(any_url, "ref", cas_for={0, 2, 4, 6})
    assert len(winners) == 1, winners
    assert open_store(any_url, options=_uncached(any_url)).get("ref") == f"writer-{winners[0]}".encode()


# ================================================================== 2. the disk cache


MEDIA_SCHEMA = "CREATE TABLE media (id INT, emb VECTOR(8), payload BYTEA, note TEXT)"


def _media_rows(start: int, n: int) -> dict:
    ids = list(range(start, start + n))
    return {
        "id": ids,
        "emb": np.stack([np.full(8, i, np.float32) + np.arange(8, dtype=np.float32) for i in ids]),
        # out of line (> 4 KiB), lengths differ so a mix-up shows
        "payload": [_payload(i) for i in ids],
        "note": [f"note {i}" for i in ids],
    }


def _payload(i: int) -> bytes:
    return bytes([i % 251]) * (5000 + i)


def _make_media(url: str, options: dict | None = None, parts=((0, 30), (30, 30), (60, 10)),
                create: bool = True) -> None:
    db = reeldb.connect(url, storage_options=options)
    if create:
        db.execute(MEDIA_SCHEMA)
    for start, n in parts:
        db.insert("media", _media_rows(start, n))
    db.close()


def _check_media(rows: list[tuple], ids: list[int], blobs: bool = True) -> None:
    """``SELECT id, emb, payload, note ... ORDER BY id`` rows hold exactly ``ids``, intact
    (``blobs=False``: the payloads' lengths only, which reads nothing)."""
    assert [r[0] for r in rows] == ids
    for i, emb, payload, note in rows:
        assert np.array_equal(np.asarray(emb, np.float32), np.full(8, i, np.float32) + np.arange(8)), i
        assert len(payload) == len(_payload(i)), i
        if blobs:
            assert bytes(payload) == _payload(i), i
        assert note == f"note {i}"


MEDIA_QUERY = "SELECT id, emb, payload, note FROM media ORDER BY id"


def _read_media_in_a_new_process(url: str, options: dict, q) -> None:
    """A new process: nothing in memory, only what the disk cache holds."""
    try:
        db = reeldb.connect(url, storage_options=options, create=False)
        fetched: list[str] = []  # the object behind every GET the query makes
        db.catalog.store.client.meta.events.register(
            "before-parameter-build.s3.GetObject", lambda params, **kw: fetched.append(params["Key"]))
        rows = db.execute(MEDIA_QUERY).fetchall()
        _check_media(rows, list(range(70)))
        prefix = urlsplit(url).path.strip("/") + "/"
        q.put(("ok", {**db.stats(), "fetched": [k.removeprefix(prefix) for k in fetched]}))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent
        q.put(("error", repr(e)))


def _stats_from_a_new_process(url: str, options: dict) -> dict:
    q = SPAWN.Queue()
    p = SPAWN.Process(target=_read_media_in_a_new_process, args=(url, options, q), daemon=True)
    p.start()
    status, got = q.get(timeout=60)
    p.join(30)
    assert status == "ok", got
    assert p.exitcode == 0
    return got


def test_a_second_connection_reads_from_the_disk_cache(s3_url: str, tmp_path: Path) -> None:
    _make_media(s3_url, {"cache_size": 0})  # the writer leaves nothing in this cache
    options = {"cache_dir": str(tmp_path / "cache")}
    cold = _stats_from_a_new_process(s3_url, options)
    warm = _stats_from_a_new_process(s3_url, options)
    assert cold["cache"]["misses"] > 0 and cold["cache"]["bytes_written"] > 0
    assert warm["cache"]["misses"] == 0
    assert warm["cache"]["hits"] >= cold["cache"]["misses"]
    assert warm["cache"]["bytes_written"] == 0
    # every immutable object the cold reader fetched (data files, blob packs, commits,
    # manifests) is read from disk now: only mutable ones (the branch head) are requested
    immutable = ("data/", "blobs/", "_reeldb/commits/", "_reeldb/manifests/")
    assert {k.split("/")[0] for k in cold["fetched"] if k.startswith(immutable)} >= {"data", "blobs"}
    assert [k for k in warm["fetched"] if k.startswith(immutable)] == []
    assert warm["requests"]["get"] < cold["requests"]["get"]
    assert warm["cache"]["dir"] == cold["cache"]["dir"]
    assert warm["cache"]["dir"].startswith(str(tmp_path / "cache"))
    # the same connection in this process, reading the blobs (never kept in memory) again
    db = reeldb.connect(s3_url, storage_options=options)
    rows = db.execute(MEDIA_QUERY).fetchall()
    before = db.stats()
    _check_media(rows, list(range(70)))  # bytes(blob): 70 ranged reads of the packs
    after = db.stats()
    assert after["requests"].get("get", 0) == before["requests"].get("get", 0)
    assert after["cache"]["hits"] >= before["cache"]["hits"] + 70


def test_cache_size_zero_means_no_cache(s3_url: str, tmp_path: Path) -> None:
    _make_media(s3_url, {"cache_size": 0})
    folder = tmp_path / "cache"
    options = {"cache_dir": str(folder), "cache_size": 0}
    db = reeldb.connect(s3_url, storage_options=options, create=False)
    rows = db.execute("SELECT id, note FROM media ORDER BY id").fetchall()
    assert rows == [(i, f"note {i}") for i in range(70)]
    assert "cache" not in db.stats() and db.stats()["requests"]["get"] > 0
    db.close()
    store = open_store(s3_url, options=options)
    assert store.cache is None and "cache" not in store.stats()
    for key in store.list("data/") + store.list("_reeldb/commits/"):  # immutable: cacheable
        assert store.file_path(key) is None
        gets = _gets(store)
        assert store.get(key) == store.get(key)
        assert _gets(store) == gets + 2  # every read is a request
    assert not folder.exists()  # nothing was ever written there


def test_reeldb_cache_size_env(s3_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELDB_CACHE_SIZE", "0")
    assert open_store(s3_url).cache is None
    monkeypatch.setenv("REELDB_CACHE_SIZE", str(1 << 20))
    s = open_store(s3_url, options={"cache_dir": str(tmp_path / "c")})
    assert s.cache is not None and s.cache.max_bytes == 1 << 20
    assert open_store(s3_url, options={"cache_size": 0}).cache is None  # the option wins


def _fill(cache: DiskCache, name: str, size: int, age: float) -> str:
    """An entry of ``size`` bytes last used ``age`` seconds ago."""
    path = cache.name(name)
    cache.write(path, bytes([len(name) % 256]) * size)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def _cached(cache: DiskCache) -> set[str]:
    return {os.path.basename(p) for _, _, p in cache._entries()}


def test_disk_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = DiskCache(str(tmp_path / "c"), max_bytes=10_000)
    paths = [_fill(cache, f"k{i}", 1000, age=1000 - i) for i in range(10)]  # k0 oldest
    assert cache.size() == 10_000 and cache.counts["evictions"] == 0  # at the bound: kept
    assert cache.read(paths[0]) == bytes([2]) * 1000  # a hit makes k0 the most recent
    assert cache.lookup(paths[1])
    t = time.time() - 3000  # k5 used long ago: the least recent now
    os.utime(paths[5], (t, t))
    new = _fill(cache, "k10", 1000, age=0)  # 11_000 > 10_000: evict down to 90%
    left = _cached(cache)
    assert os.path.basename(paths[5]) not in left and os.path.basename(paths[2]) not in left
    assert left == {os.path.basename(p) for p in paths[:2] + paths[3:5] + paths[6:] + [new]}
    assert cache.size() == 9000
    assert cache.counts["evictions"] == 2
    assert cache.read(paths[5]) is None and cache.counts["misses"] == 1


def test_disk_cache_never_evicts_what_was_just_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "EVICT_GRACE_S", 100.0)
    cache = DiskCache(str(tmp_path / "c"), max_bytes=4000)
    old = _fill(cache, "old", 1000, age=500)
    fresh = [_fill(cache, f"f{i}", 1000, age=50 - i) for i in range(3)]  # within the grace period
    assert cache.size() == 4000
    _fill(cache, "new", 1000, age=0)  # over the bound: only "old" may go
    left = _cached(cache)
    assert os.path.basename(old) not in left
    assert {os.path.basename(p) for p in fresh} <= left
    assert cache.size() == 4000  # still above 90%: the rest is too fresh to evict
    _fill(cache, "new2", 1000, age=0)
    assert cache.size() == 5000  # over the bound and nothing old enough to evict
    # once the grace period is shorter, the least recent of them go first
    monkeypatch.setattr(cache_mod, "EVICT_GRACE_S", 10.0)
    _fill(cache, "new3", 1000, age=0)
    left = _cached(cache)
    assert left == {os.path.basename(cache.name(n)) for n in ("new", "new2", "new3")}
    # a folder over its bound from earlier runs is trimmed when a cache opens it
    monkeypatch.setattr(cache_mod, "EVICT_GRACE_S", 0.0)
    reopened = DiskCache(cache.root, max_bytes=1500)
    assert reopened.size() <= 1500


def _hammer_cache(root: str, names: list[str], rounds: int, seed: int, q) -> None:
    cache_mod.EVICT_GRACE_S = 0.0  # evict as eagerly as possible, alongside the writes
    cache = DiskCache(root, max_bytes=1 << 20)
    rng = random.Random(seed)
    bad = []
    hits = 0
    for _ in range(rounds):
        name = rng.choice(names)
        path = cache.name(name)
        got = cache.read(path)
        if got is None:
            cache.write(path, _entry(name))
        elif got != _entry(name):
            bad.append((name, len(got)))
        else:
            hits += 1
    q.put((bad, hits, cache.counts["evictions"]))


def _entry(name: str) -> bytes:
    """Distinct bytes and sizes per name, so a partial or mixed-up entry shows."""
    h = hashlib.sha256(name.encode()).digest()
    return (h * 4000)[: 60_000 + 997 * int(name[1:])]


def test_two_processes_filling_one_cache_leave_only_whole_files(tmp_path: Path) -> None:
    root = str(tmp_path / "shared")
    names = [f"e{i}" for i in range(40)]  # ~3 MB against a 1 MB bound: constant eviction
    results = _in_processes(_hammer_cache, [(root, names, 400, seed) for seed in range(2)])
    for bad, _, _ in results:
        assert bad == [], (bad, results)  # never a partial or foreign entry read back
    assert sum(h for _, h, _ in results) > 0 and sum(e for _, _, e in results) > 0
    by_file = {os.path.basename(DiskCache(root, 1 << 30).name(n)): n for n in names}
    left = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f == ".evict.lock":
                continue
            assert not f.startswith(".tmp-"), f  # no temporary file left behind
            assert f in by_file, f
            assert Path(dirpath, f).read_bytes() == _entry(by_file[f]), f  # whole
            left.append(f)
    assert left


def _read_objects(url: str, cache_dir: str, objs: dict[str, int], rounds: int, seed: int, q) -> None:
    cache_mod.EVICT_GRACE_S = 0.0
    s = open_store(url, create=False, options={"cache_dir": cache_dir, "cache_size": 1 << 20})
    rng = random.Random(seed)
    bad = []
    for _ in range(rounds):
        key = rng.choice(sorted(objs))
        want = _object(key, objs[key])
        if rng.random() < 0.5:
            got = s.get(key)
            if got != want:
                bad.append(("get", key, len(got)))
        else:
            o = rng.randrange(len(want))
            n = rng.randrange(1, 100_000)
            (got,) = s.read_ranges([(key, o, n)])
            if got != want[o : o + n]:
                bad.append(("range", key, o, n))
    q.put((bad, s.stats()["cache"]))


def _object(key: str, size: int) -> bytes:
    return (hashlib.sha256(key.encode()).digest() * (size // 32 + 1))[:size]


def test_two_processes_reading_s3_through_one_cache(s3_url: str, tmp_path: Path) -> None:
    """Whole objects and byte-range blocks, written and evicted by two processes at once."""
    objs = {f"blobs/{i}.pack": 150_000 + 1000 * i for i in range(10)}
    writer = open_store(s3_url, options={"cache_size": 0})
    for k, n in objs.items():
        writer.put(k, _object(k, n))
    cache_dir = str(tmp_path / "cache")
    results = _in_processes(_read_objects, [(s3_url, cache_dir, objs, 120, seed) for seed in range(2)])
    for bad, _ in results:
        assert bad == []
    assert sum(c["hits"] for _, c in results) > 0
    assert sum(c["evictions"] for _, c in results) > 0
    for _, _, files in os.walk(cache_dir):
        assert not [f for f in files if f.startswith(".tmp-")]


# ============================================================= 3. storage options


def test_unknown_storage_option(s3_url: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as info:
        reeldb.connect(s3_url, storage_options={"endpoint_url": None, "bogus_option": 1})
    assert info.value.sqlstate == "22023"
    assert isinstance(info.value, reeldb.Error)
    assert "bogus_option" in str(info.value)
    assert "endpoint_url" in str(info.value)  # names what is known
    with pytest.raises(reeldb.Error) as info:
        open_store(s3_url, options={"cachesize": 0})
    assert info.value.sqlstate == "22023"


@pytest.mark.parametrize("url", ["gs://bucket/videos", "az://container/videos",
                                 "abfs://container@account.dfs.core.windows.net/videos"])
def test_gcs_and_azure_urls_are_not_supported(url: str) -> None:
    with pytest.raises(errors.FeatureNotSupported) as info:
        reeldb.connect(url)
    assert info.value.sqlstate == "0A000"
    msg = str(info.value)
    assert url in msg  # says what was refused
    assert "s3://" in msg  # and what works instead
    if url.startswith("gs://"):
        assert "endpoint_url" in msg and "storage.googleapis.com" in msg


@pytest.mark.parametrize("form", ["path", "file_url"])
def test_storage_options_on_a_local_path(tmp_path: Path, form: str) -> None:
    target = str(tmp_path / "db")
    if form == "file_url":
        target = "file://" + target
    with pytest.raises(errors.InvalidParameterValue) as info:
        reeldb.connect(target, storage_options={"endpoint_url": "http://127.0.0.1:1"})
    assert info.value.sqlstate == "22023"
    assert not (tmp_path / "db").exists()
    reeldb.connect(target, storage_options={}).close()  # empty options are no options


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing of the standard AWS chain left: no variables, no files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_explicit_endpoint_and_credentials(s3_server, s3_url: str, no_aws_env: None) -> None:
    assert "AWS_ENDPOINT_URL" not in os.environ and "AWS_ACCESS_KEY_ID" not in os.environ
    boto_names = {"endpoint_url": s3_server.endpoint, "aws_access_key_id": "testing",
                  "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    db = reeldb.connect(s3_url, storage_options=boto_names)
    db.execute("CREATE TABLE t (id INT, name TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    db.close()
    aliases = {"endpoint": s3_server.endpoint, "key": "testing", "secret": "testing", "region": "us-east-1",
               "addressing_style": "path"}
    db = reeldb.connect(s3_url, storage_options=aliases, create=False)
    assert db.execute("SELECT name FROM t ORDER BY id").fetchall() == [("a",), ("b",)]
    assert db.stats()["url"] == s3_url
    db.close()
    # without credentials nothing works: they did come from storage_options
    t0 = time.monotonic()
    with pytest.raises(reeldb.Error) as info:
        reeldb.connect(s3_url, storage_options={"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"})
    assert time.monotonic() - t0 < 20
    assert "credentials" in str(info.value).lower()


def test_a_bad_endpoint_is_a_reeldb_error(s3_url: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as info:
        reeldb.connect(s3_url, storage_options={"endpoint_url": "not a url"})
    assert info.value.sqlstate == "22023" and "not a url" in str(info.value)


@pytest.mark.parametrize("option", ["max_retries", "connect_timeout", "read_timeout", "cache_size"])
def test_a_non_numeric_option_is_a_reeldb_error(s3_url: str, option: str) -> None:
    with pytest.raises(reeldb.Error) as info:
        reeldb.connect(s3_url, storage_options={option: "many"})
    assert info.value.sqlstate == "22023" and option in str(info.value)


# ==================================================== 4. the network failing mid-read


METHODS = (b"GET", b"PUT", b"POST", b"HEAD", b"DELETE")


def _readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets with data (or a close) to read: poll, not select, which refuses file
    descriptors above 1024 (a long test run opens that many)."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [by_fd[fd] for fd, _ in poller.poll(timeout * 1000)]


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server.

    ``rule(request_line)`` decides, per HTTP request, what happens to it: ``"pass"``;
    ``"drop"`` (the connection is closed before the request reaches the server);
    ``("cut", n)`` (the request is served, the response cut after ``n`` bytes and the
    connection closed); ``("stall", n)`` (``n`` bytes of the response, then silence, the
    connection left open). An interim "100 Continue" is always let through.
    ``refuse`` closes new connections at once (with a reset)."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.rule: Callable[[str], object] = lambda line: "pass"
        self.refuse = False
        self.requests: list[str] = []
        self.acted: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def heal(self) -> None:
        self.rule = lambda line: "pass"
        self.refuse = False

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self.sock.close()
        with self._lock:
            for s in list(self._socks):
                with contextlib.suppress(OSError):
                    s.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.refuse:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                conn.close()
                self.acted.append(("refuse", ""))
                continue
            threading.Thread(target=self._pipe, args=(conn,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        with self._lock:
            self._socks |= {client, upstream}
        action, sent, limit = "pass", 0, 0
        watched = [client, upstream]
        try:
            while not self._closed:
                ready = _readable(watched, 0.2)
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        if s is upstream and action == "stall":
                            watched = [client]  # the client waits on silence, not a close
                            continue
                        return
                    if s is client:
                        if data.split(b" ", 1)[0] in METHODS:  # a new request on this connection
                            line = data.split(b"\r\n", 1)[0].decode("latin-1")
                            self.requests.append(line)
                            got = self.rule(line)
                            action, limit = got if isinstance(got, tuple) else (got, 0)
                            sent = 0
                            if action != "pass":
                                self.acted.append((action, line))
                            if action == "drop":
                                return
                        upstream.sendall(data)
                    elif action == "pass":
                        client.sendall(data)
                    else:
                        if sent == 0 and data.startswith(b"HTTP/1.1 100 "):
                            # "100 Continue" lets the request's body through: the cut
                            # applies to the response proper
                            interim, _, data = data.partition(b"\r\n\r\n")
                            client.sendall(interim + b"\r\n\r\n")
                            if not data:
                                continue
                        room = max(0, limit - sent)
                        if room:
                            client.sendall(data[:room])
                            sent += min(room, len(data))
                        if sent >= limit and action == "cut":
                            return
                        # "stall": the rest of the response is swallowed
        except OSError:
            pass
        finally:
            with self._lock:
                self._socks -= {client, upstream}
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def proxy(s3_server) -> Iterator[FlakyProxy]:
    p = FlakyProxy(s3_server.endpoint)
    yield p
    p.close()


def _flaky_options(proxy: FlakyProxy) -> dict:
    return {"endpoint_url": proxy.endpoint, "max_retries": 0, "cache_size": 0,
            "connect_timeout": 1, "read_timeout": 2}


def _only(part: str, action: object) -> Callable[[str], object]:
    return lambda line: action if part in line.split(" ")[1] else "pass"


def _fails_quickly(call: Callable[[], object], s3_url: str, names: str) -> errors.StorageError:
    t0 = time.monotonic()
    with pytest.raises(errors.StorageError) as info:
        call()
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"took {elapsed:.1f}s to fail"
    err = info.value
    assert err.sqlstate == "58030" and isinstance(err, reeldb.OperationalError)
    msg = str(err)
    assert s3_url in msg and names in msg, msg  # names the database and the object
    return err


def test_network_errors_mid_read(proxy: FlakyProxy, s3_url: str) -> None:
    opts = _flaky_options(proxy)
    _make_media(s3_url, opts)
    reader = reeldb.connect(s3_url, storage_options=opts)
    data_files = open_store(s3_url, options={"cache_size": 0}).list("data/")
    assert data_files

    # a response cut short, mid-body: the Parquet file (> 3000 bytes) of a fragment
    proxy.rule = _only("/data/", ("cut", 3000))
    err = _fails_quickly(lambda: reader.execute(MEDIA_QUERY).fetchall(), s3_url, "/data/")
    assert any(f in str(err) for f in data_files)
    assert any(a == "cut" for a, _ in proxy.acted)
    proxy.heal()
    _check_media(reader.execute(MEDIA_QUERY).fetchall(), list(range(70)), blobs=False)  # the same connection

    # a response that stops coming (read_timeout=2): the Parquet file of new rows
    _make_media(s3_url, parts=((70, 10),), create=False)  # written straight to the server
    proxy.acted.clear()
    proxy.rule = _only("/data/", ("stall", 200))
    _fails_quickly(lambda: reader.execute(MEDIA_QUERY).fetchall(), s3_url, "/data/")
    assert proxy.acted and proxy.acted[0][0] == "stall"
    proxy.heal()
    ids = list(range(80))
    _check_media(reader.execute(MEDIA_QUERY).fetchall(), ids, blobs=False)

    # connections closed before any response, and new connections refused
    proxy.rule = lambda line: "drop"
    proxy.refuse = True
    _fails_quickly(lambda: reader.execute("SELECT count(*) FROM media").fetchall(), s3_url, "/_reeldb/")
    _fails_quickly(lambda: reeldb.connect(s3_url, storage_options=opts), s3_url, "/_reeldb/refs/")
    assert ("refuse", "") in proxy.acted
    proxy.heal()
    _check_media(reader.execute(MEDIA_QUERY).fetchall(), ids, blobs=False)
    fresh = reeldb.connect(s3_url, storage_options=opts, create=False)
    _check_media(fresh.execute(MEDIA_QUERY).fetchall(), ids, blobs=False)
    fresh.close()
    reader.close()
    assert _committed(s3_url) == ids  # and every blob is intact


@pytest.mark.parametrize("kind", BOTH)
def test_network_errors_mid_range_read(proxy: FlakyProxy, s3_url: str, tmp_path: Path, kind: str) -> None:
    """Byte-range reads of blob packs (many in flight at once): a response cut or a
    refused connection fails the read with StorageError naming the pack, and nothing
    partial is kept."""
    opts = _flaky_options(proxy)
    if kind == "cached":
        opts |= {"cache_dir": str(tmp_path / "cache"), "cache_size": 1 << 30}
    store = open_store(s3_url, options=opts)
    direct = open_store(s3_url, options={"cache_size": 0})
    objs = {f"blobs/{i}.pack": os.urandom(300_000 + i) for i in range(6)}
    for k, v in objs.items():
        direct.put(k, v)
    ranges = [(k, 1000, 250_000) for k in objs]

    proxy.rule = _only("/blobs/2.pack", ("cut", 5000))
    _fails_quickly(lambda: store.read_ranges(ranges), s3_url, "blobs/2.pack")
    proxy.rule = _only("/blobs/5.pack", ("cut", 0))  # no response at all
    _fails_quickly(lambda: store.get_range("blobs/5.pack", 10, 20), s3_url, "blobs/5.pack")
    proxy.refuse, proxy.rule = True, (lambda line: "drop")
    _fails_quickly(lambda: store.get_range("blobs/4.pack", 0, 10), s3_url, "blobs/4.pack")
    proxy.heal()
    assert store.read_ranges(ranges) == [objs[k][o : o + n] for k, o, n in ranges]
    assert store.get_range("blobs/5.pack", 10, 20) == objs["blobs/5.pack"][10:30]
    fresh = open_store(s3_url, options=opts)
    assert fresh.read_ranges(ranges) == [objs[k][o : o + n] for k, o, n in ranges]


def test_a_response_cut_inside_its_headers_is_an_error(proxy: FlakyProxy, s3_url: str, tmp_path: Path) -> None:
    opts = _flaky_options(proxy) | {"cache_dir": str(tmp_path / "cache")}
    direct = open_store(s3_url, options={"cache_size": 0})
    objs = {"_reeldb/counters/rowid": b'{"n": 41}', "_reeldb/refs/branches/main": b'{"commit": "c1"}',
            "_reeldb/commits/c1": b'{"parents": []}', "blobs/p.pack": os.urandom(5000)}
    for k, v in objs.items():
        direct.put(k, v)
    wrong = []
    for cut in (20, 60, 100, 140, 180):  # inside the status line and the headers
        proxy.rule = lambda line, cut=cut: ("cut", cut)
        store = open_store(s3_url, options=opts | {"cache_dir": str(tmp_path / f"cache{cut}")})
        reads = {
            "get counter": (lambda s: s.get("_reeldb/counters/rowid"), objs["_reeldb/counters/rowid"]),
            "get commit": (lambda s: s.get("_reeldb/commits/c1"), objs["_reeldb/commits/c1"]),
            "get_range pack": (lambda s: s.get_range("blobs/p.pack", 10, 100), objs["blobs/p.pack"][10:110]),
        }
        for name, (read, want) in reads.items():
            try:
                got = read(store)
            except errors.StorageError:
                continue  # a failure, said as one
            except Exception as e:  # noqa: BLE001
                wrong.append((cut, name, repr(e)))
                continue
            if got != want:
                wrong.append((cut, name, got))
        try:
            got = store.get_versioned("_reeldb/refs/branches/main")
            if got is None or got[0] != objs["_reeldb/refs/branches/main"]:
                wrong.append((cut, "get_versioned ref", got))
        except errors.StorageError:
            pass
        proxy.heal()
    assert wrong == []


@pytest.mark.parametrize("retries", [0, 1])
def test_max_retries_is_the_number_of_retries(proxy: FlakyProxy, s3_url: str, retries: int) -> None:
    store = open_store(s3_url, options=_flaky_options(proxy) | {"max_retries": retries})
    store.put("k", b"v")
    proxy.rule = lambda line: "drop"
    start = len(proxy.requests)
    with pytest.raises(errors.StorageError):
        store.get("k")
    proxy.heal()
    assert len(proxy.requests) - start == 1 + retries


def _cut_once(proxy: FlakyProxy, method: str, part: str) -> list[str]:
    """Serve the first ``method`` request on a key containing ``part``, but lose its
    response; everything else passes."""
    cut: list[str] = []

    def rule(line: str) -> object:
        if not cut and line.startswith(method + " ") and part in line:
            cut.append(line)
            return ("cut", 0)
        return "pass"

    proxy.rule = rule
    return cut


def test_a_retried_conditional_write_that_had_landed_counts_as_won(proxy: FlakyProxy, s3_url: str) -> None:
    """The first try of a conditional PUT is applied but its answer lost; the retry then
    fails its precondition against that very write. The store must report the win (the
    object holds exactly its bytes), not a lost race, or a commit would be made twice."""
    store = open_store(s3_url, options=_flaky_options(proxy) | {"max_retries": 1})
    direct = open_store(s3_url, options={"cache_size": 0})
    cut = _cut_once(proxy, "PUT", "/tags/v1")
    assert store.put_if_absent("_reeldb/refs/tags/v1", b"mine") is True
    assert cut and direct.get("_reeldb/refs/tags/v1") == b"mine"
    direct.put("c", b"0")
    _, version = direct.get_versioned("c")
    cut = _cut_once(proxy, "PUT", "/c ")
    assert store.compare_and_swap("c", version, b"1") is True
    assert cut and direct.get("c") == b"1"
    # a real loss stays a loss, retried or not
    proxy.heal()
    assert store.compare_and_swap("c", version, b"2") is False
    assert store.put_if_absent("_reeldb/refs/tags/v1", b"other") is False
    assert direct.get("c") == b"1" and direct.get("_reeldb/refs/tags/v1") == b"mine"

    db = reeldb.connect(s3_url + "/db", storage_options=_flaky_options(proxy) | {"max_retries": 1})
    db.execute(MEDIA_SCHEMA)
    _insert_sql(db, [0, 1, 2])
    cut = _cut_once(proxy, "PUT", "/_reeldb/refs/branches/main")
    _insert_sql(db, [10, 11])  # the branch head moved on the first try
    proxy.heal()
    assert cut
    assert _committed(s3_url + "/db") == [0, 1, 2, 10, 11]  # committed once, not twice


def _committed(s3_url: str, db: reeldb.Connection | None = None) -> list[int]:
    """The ids committed, read straight from the server by ``db`` or a fresh connection
    (checking every row, blobs included)."""
    own = db is None
    if own:
        db = reeldb.connect(s3_url, create=False)
    try:
        rows = db.execute(MEDIA_QUERY).fetchall()
        _check_media(rows, sorted(r[0] for r in rows))
        return [r[0] for r in rows]
    finally:
        if own:
            db.close()


def _insert_sql(db: reeldb.Connection, ids: list[int]) -> None:
    rows = _media_rows(ids[0], len(ids))
    db.executemany("INSERT INTO media VALUES (%s, %s, %s, %s)",
                   [(i, e.tolist(), p, n) for i, e, p, n in zip(rows["id"], rows["emb"], rows["payload"],
                                                                rows["note"], strict=True)])


@pytest.mark.parametrize("how", ["cut", "drop"])
def test_a_write_failing_mid_commit_loses_nothing_committed(proxy: FlakyProxy, s3_url: str, how: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of an INSERT in turn fails (and all after it): the statement raises
    StorageError or succeeds; whatever it did, earlier commits are intact, the new rows
    are all there or none, and once healed the same connection commits again.

    "drop": the request never reaches the server, so a statement that failed committed
    nothing. "cut": the server applied the request and only its response was lost; a
    commit whose branch-head update was applied is there although the client may have
    seen an error (the one ambiguity no client can avoid)."""
    monkeypatch.setenv("REELDB_AUTO_COMPACT", "0")  # compaction: test_a_failed_auto_compaction_...
    opts = _flaky_options(proxy)
    db = reeldb.connect(s3_url, storage_options=opts)
    db.execute(MEDIA_SCHEMA)
    _insert_sql(db, list(range(10)))
    committed = list(range(10))
    verifier = reeldb.connect(s3_url, create=False)  # reads each branch head afresh
    action = ("cut", 0) if how == "cut" else "drop"
    nxt = 100
    failures = 0
    for n in range(40):
        start = len(proxy.requests)
        proxy.rule = lambda line, start=start, n=n: action if len(proxy.requests) > start + n else "pass"
        batch = list(range(nxt, nxt + 3))
        nxt += 10
        try:
            _insert_sql(db, batch)
            ok = True
        except errors.StorageError as e:
            assert e.sqlstate == "58030" and s3_url in str(e)
            ok = False
            failures += 1
        finally:
            proxy.heal()
        now = _committed(s3_url, verifier)
        assert set(committed) <= set(now), f"request {n}: lost {set(committed) - set(now)}"
        new = sorted(set(now) - set(committed))
        if ok:
            assert new == batch, f"request {n}: committed {new}"
        elif how == "drop":
            assert new == [], f"request {n}: a statement that failed committed {new}"
        else:
            assert new in ([], batch), f"request {n}: committed {new}"
        committed = now
        if ok:
            break  # n is past the last request of a commit
    else:
        pytest.fail("an INSERT never succeeded")
    assert failures >= 5  # a commit is several requests, each one was made to fail
    if how == "cut":
        assert any(a == "cut" and line.startswith("PUT") and "/_reeldb/refs/branches/" in line
                   for a, line in proxy.acted)  # the branch-head update itself was applied, unanswered
    # the connection that failed keeps working
    _insert_sql(db, [1000, 1001])
    assert _committed(s3_url) == committed + [1000, 1001]
    assert sorted(r[0] for r in db.execute("SELECT id FROM media").fetchall()) == committed + [1000, 1001]
    db.close()


def test_the_connection_works_after_a_failed_insert(proxy: FlakyProxy, s3_url: str) -> None:
    db = reeldb.connect(s3_url, storage_options=_flaky_options(proxy))
    db.execute(MEDIA_SCHEMA)
    db.insert("media", _media_rows(0, 5))
    proxy.rule = lambda line: "drop" if "/_reeldb/commits/" in line else "pass"
    with pytest.raises(errors.StorageError):
        db.insert("media", _media_rows(5, 5))
    proxy.heal()
    assert db.execute("SELECT count(*) FROM media").fetchall() == [(5,)]
    db.insert("media", _media_rows(5, 5))
    assert db.execute("SELECT count(*) FROM media").fetchall() == [(10,)]


def test_a_failed_auto_compaction_does_not_fail_a_committed_insert(proxy: FlakyProxy, s3_url: str) -> None:
    """The 16th one-row commit fills a size tier: auto-compaction runs after the commit
    is published. Its requests failing must not fail the INSERT that did commit."""
    db = reeldb.connect(s3_url, storage_options=_flaky_options(proxy))
    db.execute("CREATE TABLE t (id INT)")
    for i in range(15):
        db.execute("INSERT INTO t VALUES (%s)", (i,))
    moved = []

    def after_the_head_moves(line: str) -> object:
        if moved:
            return "drop"  # everything after the commit is published
        if line.startswith("PUT") and "/_reeldb/refs/branches/main" in line:
            moved.append(line)
        return "pass"

    proxy.rule = after_the_head_moves
    try:
        db.execute("INSERT INTO t VALUES (15)")  # committed: the statement succeeded
    finally:
        proxy.heal()
    check = reeldb.connect(s3_url, create=False)
    assert moved and check.execute("SELECT count(*) FROM t").fetchall() == [(16,)]



# ======================================================================= 5. fork


def _child_reads(store: CloudStore, parent_client: object, url: str, objs: dict[str, bytes], q) -> None:
    try:
        out = {"new_client": store.client is not parent_client}
        bad = [k for k, v in objs.items() if store.get(k) != v]
        keys = sorted(objs)
        got = store.read_ranges([(k, 1, 1000) for k in keys])  # the read pool, made anew here
        bad += [k for k, g in zip(keys, got, strict=True) if g != objs[k][1:1001]]
        out["bad"] = bad
        out["listed"] = store.list("scratch/")
        store.put("scratch/from-child", b"child")
        db = reeldb.connect(url, create=False)
        out["rows"] = db.execute("SELECT id, note FROM media ORDER BY id").fetchall()
        db.execute("INSERT INTO media (id, note) VALUES (999, 'from the child')")
        db.close()
        q.put(("ok", out))
    except BaseException as e:  # noqa: BLE001
        q.put(("error", repr(e)))


def test_fork_after_use(s3_url: str) -> None:
    """A connection and its store used in the parent (boto3 client, pooled connections,
    read threads all live), then fork: the child reads and writes through S3."""
    _make_media(s3_url, parts=((0, 20),))
    db = reeldb.connect(s3_url)
    store = db.catalog.store
    assert isinstance(store, CloudStore)
    _check_media(db.execute(MEDIA_QUERY).fetchall(), list(range(20)))
    objs = {f"scratch/{i}": os.urandom(20_000 + i) for i in range(8)}
    for k, v in objs.items():
        store.put(k, v)
    assert store.read_ranges([(k, 0, 10) for k in objs]) == [v[:10] for v in objs.values()]
    parent_client = store.client
    q = FORK.Queue()
    child = FORK.Process(target=_child_reads, args=(store, parent_client, s3_url, objs, q), daemon=True)
    child.start()
    # the parent keeps using its client meanwhile
    for _ in range(20):
        assert store.get("scratch/3") == objs["scratch/3"]
    status, out = q.get(timeout=45)
    child.join(30)
    assert status == "ok", out
    assert child.exitcode == 0
    assert out["new_client"] and out["bad"] == []
    assert out["listed"] == sorted(objs)
    assert [r[0] for r in out["rows"]] == list(range(20))
    assert store.client is parent_client  # the parent's is untouched
    assert store.get("scratch/from-child") == b"child"
    assert store.read_ranges([(k, 0, 10) for k in objs]) == [v[:10] for v in objs.values()]
    assert db.execute("SELECT note FROM media WHERE id = 999").fetchall() == [("from the child",)]
    db.close()


# ================================================================= 6. the dataloader


def _add_pid(batch: dict) -> dict:
    import torch

    batch["pid"] = torch.full((len(batch["id"]),), os.getpid())
    return batch


@pytest.mark.parametrize("config", ["env", "storage_options", "no_cache"])
def test_dataloader_with_two_workers(s3_server, s3_url: str, config: str, request: pytest.FixtureRequest) -> None:
    """Every row exactly once, intact, from two worker processes that re-open the store:
    through the AWS variables, or through storage_options alone (workers must get them),
    or with no disk cache."""
    pytest.importorskip("torch")
    options = None
    if config == "storage_options":
        request.getfixturevalue("no_aws_env")
        options = {"endpoint_url": s3_server.endpoint, "aws_access_key_id": "testing",
                   "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    elif config == "no_cache":
        options = {"cache_size": 0}
    _make_media(s3_url, options)
    db = reeldb.connect(s3_url, storage_options=options)
    loader = (db.dataloader("media").columns(["id", "emb", "payload"]).batch_size(6).shuffle(seed=5)
              .transform(_add_pid).num_workers(2, "fork").to_torch())
    batches = list(loader)
    ids = [int(i) for b in batches for i in b["id"]]
    assert len(ids) == 70 and sorted(ids) == list(range(70))  # each row exactly once
    assert ids != sorted(ids)  # shuffled
    pids = {int(p) for b in batches for p in b["pid"]}
    assert len(pids) == 2 and os.getpid() not in pids  # read in two worker processes
    for b in batches:
        for i, emb, payload in zip(b["id"], b["emb"], b["payload"], strict=True):
            i = int(i)
            assert np.array_equal(emb.numpy(), np.full(8, i, np.float32) + np.arange(8)), i
            assert payload.numpy().tobytes() == _payload(i), i
    again = sorted(int(i) for b in loader for i in b["id"])  # the next epoch too
    assert again == list(range(70))
    db.close()


def test_each_connection_writes_its_lease_with_its_own_credentials(s3_url: str) -> None:
    """A first open with options that cannot reach the store (a dead endpoint, as a
    missing credential would) must not leave later connections writing through it."""
    with pytest.raises(reeldb.Error):
        reeldb.connect(s3_url, storage_options={"endpoint_url": "http://127.0.0.1:9", "max_retries": 0,
                                                "connect_timeout": 1})
    db = reeldb.connect(s3_url)
    db.execute("CREATE TABLE t (a INT)")
    db.execute("INSERT INTO t VALUES (1)")
    other = reeldb.connect(s3_url, storage_options={"cache_size": 0})
    db.close()  # the first store is closed: the lease goes on through the other's
    other.execute("INSERT INTO t VALUES (2)")
    assert other.execute("SELECT count(*) FROM t").fetchone() == (2,)
    store = other.catalog.store
    assert len(store.list(WRITERS)) == 1
    other.close()
    check = open_store(s3_url, options={"cache_size": 0})
    assert check.list(WRITERS) == []
    check.close()
