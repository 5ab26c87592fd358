"""A local disk cache of immutable objects, shared by every process on the machine.

Objects that never change (data files, blob packs, manifests, commits) are kept as plain
files, so a second read -- in this process, a later one, or a DataLoader worker -- costs a
local read instead of a request. Whole objects and fixed-size blocks of large ones
(byte-range reads) are cached alike, each under a name derived from its key.

Safe for several processes without coordination: entries are written to a temporary file
and renamed into place, so a reader sees a whole entry or none; eviction removes the least
recently used files (a hit touches its file) once the folder exceeds its size bound, and
never a file touched in the last few seconds, so a path just handed out stays readable
long enough to be opened (an open file outlives its unlink on POSIX anyway).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
import uuid
from collections import Counter

#: Files touched more recently than this are never evicted.
EVICT_GRACE_S = 10.0


class DiskCache:
    """Files under ``root``, at most ``max_bytes`` of them (approximately: a writer checks
    the bound after each ``1/16`` of it that it has added)."""

    def __init__(self, root: str, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes
        self.counts: Counter[str] = Counter()
        self._added = 0
        self._lock = threading.Lock()
        os.makedirs(root, exist_ok=True)
        self._evict_if_needed(force=True)

    def name(self, key: str, block: int | None = None) -> str:
        """The file for ``key`` (or for one block of it)."""
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        suffix = "" if block is None else f".b{block}"
        return os.path.join(self.root, digest[:2], digest + suffix)

    def lookup(self, path: str) -> bool:
        """Whether the entry is cached; a hit makes it the most recently used."""
        try:
            os.utime(path)
        except FileNotFoundError:
            self.counts["misses"] += 1
            return False
        self.counts["hits"] += 1
        return True

    def read(self, path: str) -> bytes | None:
        """The entry's bytes, or None (a miss, or evicted just now by another process)."""
        if not self.lookup(path):
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes | memoryview) -> None:
        """Store an entry. Failing to cache (a full disk) is not an error for the reader."""
        folder = os.path.dirname(path)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex}")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self.counts["writes"] += 1
        self.counts["bytes_written"] += len(data)
        with self._lock:
            self._added += len(data)
        self._evict_if_needed()

    def size(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[float, int, str]]:
        out = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as top:
            for sub in top:
                if not sub.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError), os.scandir(sub.path) as it:
                    for e in it:
                        with contextlib.suppress(FileNotFoundError):
                            st = e.stat(follow_symlinks=False)
                            out.append((st.st_mtime, st.st_size, e.path))
        return out

    def _evict_if_needed(self, force: bool = False) -> None:
        with self._lock:
            if not force and self._added < self.max_bytes // 16:
                return
            self._added = 0
        lock_path = os.path.join(self.root, ".evict.lock")
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process is evicting right now
            entries = self._entries()
            total = sum(size for _, size, _ in entries)
            if total <= self.max_bytes:
                return
            target = int(self.max_bytes * 0.9)
            fresh = time.time() - EVICT_GRACE_S
            for mtime, size, path in sorted(entries):
                if total <= target:
                    break
                if mtime > fresh:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    total -= size
                    self.counts["evictions"] += 1
