"""Object stores: the only layer that touches the filesystem or the network.

``open_store`` turns what a user passes to ``reeldb.connect`` into a store: a folder path
or ``file://`` URL gives a :class:`LocalStore`; an ``s3://`` URL a :class:`CloudStore`
(imported only then: a local database never loads the S3 client), which also refuses
``gs://`` and ``az://`` with the way to reach GCS through its S3 endpoint.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import errors
from .base import ObjectStore, declare_immutable, is_immutable
from .local import LocalStore

#: URL schemes of object stores; CloudStore speaks s3 and explains the others.
OBJECT_STORAGE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "azure")


def open_store(url_or_path: str | os.PathLike[str], create: bool = True,
               options: dict[str, Any] | None = None) -> ObjectStore:
    """A folder path or ``file:///abs/path`` URL -> LocalStore (created unless
    ``create=False``); an object-storage URL -> CloudStore with ``options`` (the
    ``storage_options`` of ``reeldb.connect``)."""
    target = os.fspath(url_or_path)
    if not target or target == "file://":
        raise errors.InterfaceError("no database given: pass a folder path or a file:// URL")
    if "://" not in target:
        if options:
            raise errors.InvalidParameterValue("storage_options apply to object storage URLs only")
        return LocalStore(target, create)
    scheme = target.split("://", 1)[0].lower()
    if scheme == "file":
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise errors.FeatureNotSupported(
                f"file:// URL with a host ({parts.netloc}): use file:///absolute/path"
            )
        if options:
            raise errors.InvalidParameterValue("storage_options apply to object storage URLs only")
        return LocalStore(unquote(parts.path), create)
    if scheme in OBJECT_STORAGE_SCHEMES:
        from .cloud import CloudStore

        return CloudStore(target, options, create)
    raise errors.FeatureNotSupported(
        f"unknown storage URL scheme {scheme}://: use a folder path, a file:// URL "
        "or an s3:// URL"
    )


__all__ = ["LocalStore", "ObjectStore", "declare_immutable", "is_immutable", "open_store"]
