"""Object stores: the only layer that touches the filesystem or the network."""

from __future__ import annotations

from .. import errors
from .base import ObjectStore
from .local import LocalStore


def open_store(url_or_path: str, create: bool = True) -> ObjectStore:
    """A plain path or ``file://`` URL -> LocalStore."""
    if url_or_path.startswith("file://"):
        return LocalStore(url_or_path[len("file://"):], create)
    if "://" in url_or_path:
        scheme = url_or_path.split("://", 1)[0]
        raise errors.FeatureNotSupported(
            f"{scheme}:// storage is not supported yet; object storage is planned (issue: object storage)"
        )
    return LocalStore(url_or_path, create)


__all__ = ["LocalStore", "ObjectStore", "open_store"]
