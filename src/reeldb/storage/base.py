"""The object-store interface every layer above ``storage/`` goes through.

Data files, manifests and commits are written once under unique names; only refs and
counters change, and they change by compare-and-swap. A local folder and S3-compatible
stores (conditional writes: If-None-Match / If-Match) implement the same few operations,
so nothing above this layer knows where the bytes live.

Keys are ``/``-separated relative strings (``"_reeldb/refs/branches/main"``,
``"data/3/abc.parquet"``). A key is a whole object, never a folder: as on S3, a name
cannot be both an object and a prefix of other objects' keys in a local store, so the
layers above never create both.
"""

from __future__ import annotations

import abc
import io
from collections.abc import Iterable
from typing import BinaryIO

_immutable_prefixes: tuple[str, ...] = ()


def declare_immutable(prefixes: Iterable[str]) -> None:
    """Name the key prefixes whose objects are written once and never changed. Storage
    knows no key names: the format layer, which owns the key layout, declares them when
    it is imported, and a remote store caches objects under them on disk for good."""
    global _immutable_prefixes
    _immutable_prefixes = tuple(dict.fromkeys((*_immutable_prefixes, *prefixes)))


def is_immutable(key: str) -> bool:
    """Whether ``key`` lies under a prefix declared immutable."""
    return key.startswith(_immutable_prefixes)


class ObjectStore(abc.ABC):
    """Bytes under keys, plus the two atomic primitives optimistic commits rely on."""

    #: Where the store lives, e.g. ``file:///abs/path`` or ``s3://bucket/prefix``.
    url: str
    #: What ``open_store`` needs besides the URL to open it again (a DataLoader worker
    #: does): endpoint, credentials, cache settings.
    options: dict = {}

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; ``KeyError(key)`` if missing."""

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)``, so blobs and matrix rows are read without
        loading whole files. Shorter only where the object ends (like an HTTP Range read);
        ``KeyError(key)`` if missing."""

    @abc.abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """``(data, version)`` to pass to :meth:`compare_and_swap`, or None if absent.

        The version is opaque (a content hash locally, an ETag on S3): two reads of the
        same bytes give the same version."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old object or the new one, never a part.

        Last writer wins; keys that several writers move (refs, counters) must use
        :meth:`compare_and_swap` instead."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists; True when this call created it.

        Atomic between processes: of many racing creators exactly one wins (tags,
        branch creation, content-addressed manifests)."""

    @abc.abstractmethod
    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> bool:
        """Replace the object if its version is still ``expected_version`` (None: it
        must be absent); False, writing nothing, when someone got there first.

        Correct between processes: this is how branch heads and counters move."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix`` (a plain string prefix, as on S3, so
        ``"data/"`` lists all tables' files), sorted. Never lists a half-written object."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error (vacuum may race itself)."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Object size in bytes; ``KeyError(key)`` if missing."""

    @abc.abstractmethod
    def mtime(self, key: str) -> float:
        """Last write time, seconds since the epoch: vacuum's grace period keeps files
        that a commit in flight may still reference. ``KeyError(key)`` if missing."""

    def local_path(self, key: str) -> str | None:
        """A real file path when the store is local (enables ``np.memmap`` and zero-copy
        Parquet reads), else None."""
        return None

    def file_path(self, key: str) -> str | None:
        """A local file holding the whole object, for readers that want one (Parquet
        fragments read whole, matrices scanned whole by vector search): the object itself
        on a local store, a copy in the disk cache on a remote one (fetched on first use).
        None when there is neither; read with :meth:`get` then."""
        return self.local_path(key)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Several whole objects, None for those missing; remote stores keep the requests
        in flight at once."""
        return [self._get_or_none(k) for k in keys]

    def _get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except KeyError:
            return None

    def read_ranges(self, ranges: list[tuple[str, int, int]]) -> list[bytes]:
        """Many ``(key, offset, length)`` byte ranges, as :meth:`get_range` reads each;
        remote stores keep them in flight at once."""
        return [self.get_range(k, o, n) for k, o, n in ranges]

    def close(self) -> None:  # noqa: B027 -- most stores hold nothing to release
        """Release network connections and threads; the store stays usable (they are
        made again on next use)."""

    def stats(self) -> dict:
        """Requests made and disk-cache hits and misses, for ``db.stats()``."""
        return {"url": self.url}

    def open_input(self, key: str) -> BinaryIO:
        """A seekable read-only file object over the object (``pyarrow.parquet`` reads
        it). This fallback loads the whole object; stores should read lazily."""
        return io.BytesIO(self.get(key))

    def sweep_temporary(self, older_than: float) -> tuple[int, int]:
        """Remove leftovers of writers killed mid-write, last touched before
        ``older_than`` (epoch seconds); returns ``(files, bytes)``. Stores whose writes
        leave no such leftovers do nothing."""
        return 0, 0
