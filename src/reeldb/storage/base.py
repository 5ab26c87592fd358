"""The object-store interface every layer above ``storage/`` goes through.

Data files are written once under unique names; only refs and counters change, and
they change by compare-and-swap. A local folder and S3-compatible stores implement the
same few operations, so nothing above this layer knows where bytes live.
"""

from __future__ import annotations

import abc
from typing import BinaryIO


class ObjectStore(abc.ABC):
    url: str

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; KeyError if missing."""

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of an object."""

    @abc.abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """(data, version token) for compare-and-swap, or None if absent."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old object or the new one, never a part."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists; True when this call created it."""

    @abc.abstractmethod
    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> bool:
        """Replace the object if its version is still ``expected_version`` (None: absent)."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def mtime(self, key: str) -> float:
        """Last write time, seconds since the epoch (vacuum's grace period)."""

    def sweep_temporary(self, older_than: float) -> tuple[int, int]:
        """Remove leftovers of interrupted writes older than ``older_than`` (epoch
        seconds); returns (files, bytes). Stores without such leftovers do nothing."""
        return 0, 0

    def local_path(self, key: str) -> str | None:
        """A real file path when the store is local (enables np.memmap), else None."""
        return None

    @abc.abstractmethod
    def open_input(self, key: str) -> BinaryIO:
        """A seekable read-only file object over the object."""
