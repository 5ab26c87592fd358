"""A database in a local folder (POSIX: it relies on ``fcntl.flock``).

- ``put`` writes a temporary file in the target's folder, renames it into place and makes
  both durable (fsync of the file and of the folder), so readers never see a part and a crash
  loses nothing committed.
- ``put_if_absent`` hard-links the temporary file to the final name: ``link`` fails
  atomically when the name exists, between any processes.
- Immutable objects (``base.is_immutable``: data, manifests, commits) are made durable
  later, all at once: their fsyncs wait until the next write of a mutable object (a ref's
  compare-and-swap, which is what makes them reachable) or ``sync()``, and then run in
  parallel. (``put_if_absent`` still fsyncs the content before the name exists, since
  another writer trusts a name it finds; only its folder waits.) A commit of one row pays for two rounds of fsyncs before its ref moves, not
  one per file; an object is durable before anything can point at it.
- ``compare_and_swap`` holds an exclusive ``flock`` on a per-key lock file under
  ``_reeldb/locks/`` while it compares and replaces, which is correct between processes on
  one machine (not across machines on NFS: that is what the S3 store is for).

Temporary files start with ``.tmp-``; ``list`` never returns them or the lock files, and
``sweep_temporary`` removes the ones a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from .. import errors
from .base import ObjectStore, is_immutable

TMP_PREFIX = ".tmp-"
SYNC_THREADS = 16  # fsyncs in flight at once when pending objects are made durable


def _writer_alive(temp_name: str) -> bool:
    """Whether the process writing this temp file still runs (for a name without a pid,
    only the file's age can tell: False here)."""
    pid_text, dash, _ = temp_name[len(TMP_PREFIX):].partition("-")
    if not (pid_text.isdigit() and dash):
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
LOCK_DIR = "_reeldb/locks"


class LocalStore(ObjectStore):
    """Objects are files under ``root``; a key's ``/`` separators are folders."""

    def __init__(self, root: str | os.PathLike[str], create: bool = True):
        self.root = os.path.abspath(os.fspath(root))
        if not create and not os.path.isdir(self.root):
            raise errors.OperationalError(f"no reeldb database at {self.root}", sqlstate="3D000")
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            raise errors.StorageError(f"cannot create database folder {self.root}: {e}") from None
        self.url = Path(self.root).as_uri()
        self._unsynced: set[str] = set()  # immutable files written, not yet fsynced (with their folders)
        self._unsynced_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    # --- keys ---------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        """The file for ``key``; ValueError for keys that could escape ``root``, alias
        another key, or collide with the store's own temp and lock files."""
        parts = _split(key)
        if parts[-1].startswith(TMP_PREFIX):
            raise ValueError(f"invalid object key {key!r}: names starting {TMP_PREFIX!r} are reserved")
        if key == LOCK_DIR or key.startswith(LOCK_DIR + "/"):
            raise ValueError(f"invalid object key {key!r}: {LOCK_DIR}/ is reserved")
        return os.path.join(self.root, *parts)

    # --- reads --------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self._path(key)
        with _reading(key), open(path, "rb") as f:
            return f.read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"invalid byte range: offset {offset}, length {length}")
        path = self._path(key)
        with _reading(key), open(path, "rb", buffering=0) as f:
            # pread loops: one call returns at most ~2 GiB on Linux
            parts: list[bytes] = []
            got = 0
            while got < length:
                chunk = os.pread(f.fileno(), length - got, offset + got)
                if not chunk:
                    break  # the object ends here
                parts.append(chunk)
                got += len(chunk)
            return b"".join(parts)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.get(key)
        except KeyError:
            return None
        return data, _version(data)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        path = self._path(key)
        with _reading(key):
            return _stat_file(path).st_size

    def mtime(self, key: str) -> float:
        path = self._path(key)
        with _reading(key):
            return _stat_file(path).st_mtime

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    def open_input(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _reading(key):
            return open(path, "rb")

    def list(self, prefix: str) -> list[str]:
        cut = prefix.rfind("/")
        folder, name_start = prefix[: max(cut, 0)], prefix[cut + 1 :]
        if folder or cut == 0:
            _split(folder)  # same rules as keys: no '..', no absolute paths
        if "\\" in name_start or "\0" in name_start:
            raise ValueError(f"invalid prefix {prefix!r}")
        return sorted(
            key
            for key in self._files(folder, name_start)
            if not key.rpartition("/")[2].startswith(TMP_PREFIX)
        )

    def _files(self, folder: str, name_start: str = "") -> Iterator[str]:
        """Keys of all files under ``folder`` whose first name below it starts with
        ``name_start``; skips the lock folder, includes temp files (callers filter)."""
        if folder == LOCK_DIR or folder.startswith(LOCK_DIR + "/"):
            return
        stack = [folder]
        while stack:
            d = stack.pop()
            path = os.path.join(self.root, *d.split("/")) if d else self.root
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except (FileNotFoundError, NotADirectoryError):
                continue  # nothing there, or removed while we walked
            except OSError as e:
                raise errors.StorageError(f"cannot list {d or '/'}: {e}") from None
            for entry in entries:
                if d == folder and not entry.name.startswith(name_start):
                    continue
                key = f"{d}/{entry.name}" if d else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if key != LOCK_DIR:
                        stack.append(key)
                elif entry.is_file():
                    yield key

    # --- writes -------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with _writing(key):
            if is_immutable(key):
                self._replace(path, data, durable=False)
                self._defer(path)
            else:
                self.sync()  # what was written before it is durable first
                self._replace(path, data)

    def _replace(self, path: str, data: bytes, durable: bool = True) -> None:
        """Write ``path`` whole: temp file, rename over; ``durable``: the file fsynced
        before the rename and the folder after it."""
        tmp = self._write_temp(path, data, durable)
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise
        if durable:
            _fsync_dir(os.path.dirname(path))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        deferred = is_immutable(key)
        if os.path.lexists(path) and not deferred:
            return False  # cheap early answer; the link below is what decides
        with _writing(key):
            if not deferred:
                self.sync()  # what was written before it is durable first
                return self._create(path, data)
            # the content is made durable before its name exists (the name is what another
            # writer trusts); only the folder's fsync waits for the next mutable write
            created = self._create(path, data, sync_folder=False)
            self._defer(path)  # there already: its writer may not have made it durable yet
            return created

    def _create(self, path: str, data: bytes, sync_folder: bool = True) -> bool:
        """Write ``path`` only if it does not exist, atomically between processes; its
        content is fsynced first, its folder after (unless ``sync_folder`` is False)."""
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            _unlink(tmp)
        if sync_folder:
            _fsync_dir(os.path.dirname(path))
        return True

    def _defer(self, path: str) -> None:
        with self._unsynced_lock:
            self._unsynced.add(path)

    def sync(self) -> None:
        """Make every immutable object written so far durable: their files' fsyncs in
        parallel, then their folders'. Runs before each mutable write, so nothing can
        point at an object a crash could lose (objects no mutable write followed, a rolled
        back transaction's, need not survive one)."""
        with self._unsynced_lock:
            paths, self._unsynced = self._unsynced, set()
        if not paths:
            return
        try:
            _fsync_all(sorted(paths), _fsync_file)
            _fsync_all(sorted({os.path.dirname(p) for p in paths}), _fsync_dir)
        except BaseException:
            with self._unsynced_lock:
                self._unsynced |= paths
            raise

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> bool:
        path = self._path(key)
        self.sync()  # what was written before it is durable first
        with self._lock(key, create=True), _writing(key):
            current = self.get_versioned(key)
            if expected_version is None:
                # link, not replace: also loses to a concurrent put_if_absent
                return current is None and self._create(path, data)
            if current is None or current[1] != expected_version:
                return False
            self._replace(path, data)
            return True

    def delete(self, key: str) -> None:
        path = self._path(key)
        # a key that was ever compare-and-swapped is deleted under its lock, so a CAS that
        # already compared cannot bring it back afterwards
        with self._lock(key, create=False), _writing(key):
            _unlink(path)

    def sweep_temporary(self, older_than: float) -> tuple[int, int]:
        files = size = 0
        for key in self._files(""):
            name = key.rpartition("/")[2]
            if not name.startswith(TMP_PREFIX) or _writer_alive(name):
                continue
            p = os.path.join(self.root, *key.split("/"))
            try:
                st = os.stat(p)
                if st.st_mtime < older_than:
                    os.unlink(p)
                    files += 1
                    size += st.st_size
            except FileNotFoundError:
                continue  # its writer finished (or another sweep got it)
        return files, size

    # --- helpers ------------------------------------------------------------------------

    def _write_temp(self, path: str, data: bytes, durable: bool = True) -> str:
        """A temp file in ``path``'s folder (same filesystem, so rename and link are
        atomic), fsynced when ``durable``; removed again if anything fails."""
        folder = os.path.dirname(path)
        self._make_dirs(folder)
        # the writer's pid in the name: a sweep never takes the temp file of a live writer
        tmp = os.path.join(folder, f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data).cast("B")  # byte offsets even for typed buffers
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _make_dirs(self, folder: str) -> None:
        """``makedirs`` that also fsyncs each new folder's parent, so a new object's
        folder survives a crash along with the object."""
        if os.path.isdir(folder) or folder == self.root:
            return
        parent = os.path.dirname(folder)
        self._make_dirs(parent)
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            return
        _fsync_dir(parent)

    @contextlib.contextmanager
    def _lock(self, key: str, create: bool) -> Iterator[None]:
        """Exclusive ``flock`` on ``key``'s lock file. With ``create=False`` and no lock
        file (the key was never compare-and-swapped) nobody can be racing: no lock."""
        name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        path = os.path.join(self.root, *LOCK_DIR.split("/"), name)
        fd = None
        try:
            if create:
                self._make_dirs(os.path.dirname(path))
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            else:
                with contextlib.suppress(FileNotFoundError):
                    fd = os.open(path, os.O_RDWR)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            if fd is not None:
                os.close(fd)
            raise errors.StorageError(f"cannot lock {key}: {e}") from None
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the flock


def _split(key: str) -> list[str]:
    """``key``'s path segments; ValueError unless it is a clean relative path."""
    if not isinstance(key, str):
        raise ValueError(f"object keys are strings, not {type(key).__name__}")
    parts = key.split("/")
    if (
        not key
        or "\\" in key
        or "\0" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(f"invalid object key {key!r}: want a relative path like 'data/1/x.parquet'")
    return parts


def _version(data: bytes) -> str:
    """Content hash: unlike mtime it cannot miss a change made within one clock tick."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _stat_file(path: str) -> os.stat_result:
    """``os.stat`` of an object; a folder is not one."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(path)
    return st


@contextlib.contextmanager
def _reading(key: str) -> Iterator[None]:
    """Missing objects (and folders, which are not objects) -> KeyError; other I/O
    failures -> StorageError."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise KeyError(key) from None
    except OSError as e:
        raise errors.StorageError(f"cannot read {key}: {e}") from None


@contextlib.contextmanager
def _writing(key: str) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise errors.StorageError(f"cannot write {key}: {e}") from None


def _unlink(path: str) -> None:
    """Remove a file; already gone (or its folder is a file) is fine."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass


def _fsync_file(path: str) -> None:
    """fsync a file written earlier (gone since, e.g. swept by VACUUM: nothing to keep)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool): threads do not survive a fork
_POOL_LOCK = threading.Lock()


def _fsync_all(paths: list[str], fsync: Any) -> None:
    """``fsync(path)`` for each, up to SYNC_THREADS at once: the filesystem's journal
    commits them together, so N files cost about one fsync, not N (the threads are kept:
    starting them would cost as much as the fsyncs save)."""
    global _POOL
    if len(paths) == 1:
        fsync(paths[0])
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="reeldb-fsync"))
        pool = _POOL[1]
    for _ in pool.map(fsync, paths):
        pass


def _fsync_dir(folder: str) -> None:
    """Make a rename or link in ``folder`` durable. Filesystems that cannot fsync a
    folder (some network and FUSE mounts) are left as they are."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
