"""Object stores: the only layer that touches the filesystem or the network.

``open_store`` turns what a user passes to ``reeldb.connect`` into a store: a folder path
or ``file://`` URL gives a :class:`LocalStore`; object-storage URLs are refused clearly
until the S3 store exists.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from .. import errors
from .base import ObjectStore
from .local import LocalStore

#: URL schemes of object stores that reeldb will speak (S3 and S3-compatible first).
OBJECT_STORAGE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "r2")


def open_store(url_or_path: str | os.PathLike[str], create: bool = True) -> ObjectStore:
    """A folder path or ``file:///abs/path`` URL -> LocalStore (created unless
    ``create=False``); ``s3://...`` and other URLs -> FeatureNotSupported."""
    target = os.fspath(url_or_path)
    if not target or target == "file://":
        raise errors.InterfaceError("no database given: pass a folder path or a file:// URL")
    if "://" not in target:
        return LocalStore(target, create)
    scheme = target.split("://", 1)[0].lower()
    if scheme == "file":
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise errors.FeatureNotSupported(
                f"file:// URL with a host ({parts.netloc}): use file:///absolute/path"
            )
        return LocalStore(unquote(parts.path), create)
    if scheme in OBJECT_STORAGE_SCHEMES:
        raise errors.FeatureNotSupported(
            f"{scheme}:// is not supported yet: object storage arrives with the S3 store; "
            "use a local folder path or a file:// URL for now"
        )
    raise errors.FeatureNotSupported(
        f"unknown storage URL scheme {scheme}://: use a folder path or a file:// URL"
    )


__all__ = ["LocalStore", "ObjectStore", "open_store"]
