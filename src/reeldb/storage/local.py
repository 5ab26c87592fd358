"""A database in a local folder.

Writes go to a temporary file, are fsynced and renamed into place; create-once uses a
hard link (atomic, fails if the name exists); compare-and-swap holds an exclusive
``flock`` on a lock file while it compares and replaces, which is correct between
processes on one machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from typing import BinaryIO

from .. import errors
from .base import ObjectStore

TMP_PREFIX = ".tmp-"
LOCK_DIR = "_reeldb/locks"


class LocalStore(ObjectStore):
    def __init__(self, root: str, create: bool = True):
        self.root = os.path.abspath(root)
        if not create and not os.path.isdir(self.root):
            raise errors.OperationalError(f"no reeldb database at {self.root}", sqlstate="3D000")
        os.makedirs(self.root, exist_ok=True)
        self.url = "file://" + self.root

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key:
            raise ValueError(f"invalid object key {key!r}")
        return os.path.join(self.root, *key.split("/"))

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as e:
            raise errors.StorageError(f"cannot read {key}: {e}") from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise KeyError(key) from None

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.get(key)
        except KeyError:
            return None
        return data, _version(data)

    def _write_temp(self, path: str, data: bytes) -> str:
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, TMP_PREFIX + uuid.uuid4().hex)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.replace(tmp, path)
        except OSError as e:
            _unlink(tmp)
            raise errors.StorageError(f"cannot write {key}: {e}") from None
        _fsync_dir(os.path.dirname(path))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if os.path.exists(path):
            return False
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            _unlink(tmp)
        _fsync_dir(os.path.dirname(path))
        return True

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> bool:
        lock_path = self._path(f"{LOCK_DIR}/{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}")
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            cur = self.get_versioned(key)
            if (cur is None) != (expected_version is None):
                return False
            if cur is not None and cur[1] != expected_version:
                return False
            self.put(key, data)
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        out: list[str] = []
        if os.path.isfile(base):
            return [prefix]
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            if rel == LOCK_DIR or rel.startswith(LOCK_DIR + "/"):
                dirnames[:] = []
                continue
            for fn in filenames:
                if fn.startswith(TMP_PREFIX):
                    continue
                key = fn if rel == "." else f"{rel}/{fn}"
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def sweep_temporary(self, older_than: float) -> tuple[int, int]:
        files = size = 0
        for dirpath, _, filenames in os.walk(self.root):
            for fn in filenames:
                if not fn.startswith(TMP_PREFIX):
                    continue
                p = os.path.join(dirpath, fn)
                try:
                    st = os.stat(p)
                    if st.st_mtime < older_than:
                        os.unlink(p)
                        files += 1
                        size += st.st_size
                except FileNotFoundError:
                    continue
        return files, size

    def delete(self, key: str) -> None:
        _unlink(self._path(key))

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def size(self, key: str) -> int:
        try:
            return os.path.getsize(self._path(key))
        except FileNotFoundError:
            raise KeyError(key) from None

    def mtime(self, key: str) -> float:
        try:
            return os.path.getmtime(self._path(key))
        except FileNotFoundError:
            raise KeyError(key) from None

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    def open_input(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyError(key) from None


def _version(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
