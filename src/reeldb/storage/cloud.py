"""A database on S3 or any S3-compatible store (MinIO, R2, GCS's XML API, moto), via boto3.

boto3 does S3's real conditional writes: ``put_if_absent`` is a PUT with
``If-None-Match: *`` and ``compare_and_swap`` a PUT with ``If-Match: <ETag>``, so refs move
without any lock server. It also brings the standard AWS credential chain (environment,
profiles, SSO, web identity, container and instance metadata) and is safe in a forked
process once its client is made anew there, which DataLoader workers rely on
(docs/dependencies.md says why not obstore).

Immutable objects (those under the prefixes the format layer declares immutable,
``base.declare_immutable``: everything but refs, counters and a few small mutable files) pass
through a :class:`DiskCache`: whole objects for ``get`` and ``file_path``, 2 MiB blocks for
byte-range reads, so blob packs are never fetched whole. Reads of many ranges keep up to
``READERS`` requests in flight.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from .. import errors
from ..config import from_environment, parse_size
from .base import ObjectStore, is_immutable
from .cache import DiskCache

BLOCK = 2 << 20  # byte-range reads are cached in blocks of this size
RUN_BLOCKS = 8  # at most this many consecutive missing blocks are fetched by one request
WRITE_THROUGH_MAX = 16 << 20  # objects this process writes are cached when no larger
READERS = 16  # requests in flight at once for reads of many ranges

# storage_options: boto3's names, and the names users know from fsspec / obstore
_ALIASES = {
    "endpoint": "endpoint_url", "aws_endpoint_url": "endpoint_url",
    "region": "region_name", "aws_region": "region_name",
    "access_key_id": "aws_access_key_id", "key": "aws_access_key_id",
    "secret_access_key": "aws_secret_access_key", "secret": "aws_secret_access_key",
    "session_token": "aws_session_token", "token": "aws_session_token",
}
_CLIENT = ("endpoint_url", "region_name", "aws_access_key_id", "aws_secret_access_key",
           "aws_session_token", "verify")
_OWN = ("cache_dir", "cache_size", "max_retries", "connect_timeout", "read_timeout", "profile",
        "addressing_style")

T = TypeVar("T")


class CloudStore(ObjectStore):
    """``s3://bucket/prefix``: objects under the prefix.

    ``options`` are the ``storage_options`` of ``reeldb.connect``: ``endpoint_url``,
    ``region_name``, credentials (else the standard AWS chain), ``profile``,
    ``addressing_style`` ("path" for most S3-compatible servers), ``max_retries``,
    ``connect_timeout`` / ``read_timeout`` (seconds), and the disk cache's ``cache_dir``
    and ``cache_size`` (bytes; 0 turns it off)."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, create: bool = True):
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("s3", "s3a") or not parts.netloc:
            raise errors.FeatureNotSupported(
                f"{url}: only s3:// URLs (s3://bucket/prefix) are supported; GCS works through "
                "its S3-compatible endpoint (endpoint_url='https://storage.googleapis.com')"
            )
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.options = dict(options or {})
        self._client_args, own = _split_options(self.options)
        self._own = own
        self.counts: Counter[str] = Counter()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pid = -1
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        # the disk cache: the storage options' values, else the environment's (reeldb.config)
        configured = from_environment()
        cache_bytes = parse_size(own.get("cache_size", configured.cache_size), "storage option cache_size")
        self.cache: DiskCache | None = None
        if cache_bytes > 0:
            base = own.get("cache_dir") or configured.cache_dir
            digest = hashlib.blake2b(self.url.encode(), digest_size=8).hexdigest()
            self.cache = DiskCache(os.path.join(base, digest), cache_bytes)
        self.client  # noqa: B018 -- bad options and missing boto3 fail here, not on first use

    def __repr__(self) -> str:
        return f"CloudStore({self.url!r})"

    def __reduce__(self) -> tuple[Callable[..., CloudStore], tuple[Any, ...]]:
        return CloudStore, (self.url, self.options, False)

    @property
    def client(self) -> Any:
        """The boto3 client, made anew in a forked child (a client's connections must
        not be shared between processes)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._client = self._make_client()
                    self._pool = None
                    self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        with self._lock:
            client, pool = self._client, self._pool
            self._client, self._pool, self._pid = None, None, -1
        if pool is not None:
            pool.shutdown(wait=False)
        if client is not None:
            client.close()

    def _make_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise errors.FeatureNotSupported(
                "s3:// databases need boto3: pip install 'reeldb[s3]'"
            ) from None
        own = self._own
        config = Config(
            # total_max_attempts counts the first try; botocore's max_attempts would not
            retries={"total_max_attempts": _number(own, "max_retries", 3, int) + 1, "mode": "standard"},
            connect_timeout=_number(own, "connect_timeout", 5, float),
            read_timeout=_number(own, "read_timeout", 60, float),
            max_pool_connections=READERS + 8,
            s3={"addressing_style": own.get("addressing_style", "auto")},
        )
        try:
            session = boto3.session.Session(profile_name=own.get("profile"))
            return session.client("s3", config=config, **self._client_args)
        except Exception as e:  # botocore's configuration errors have no common base
            raise errors.InvalidParameterValue(f"cannot open {self.url}: {e}") from None

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "requests": dict(self.counts)}
        if self.cache is not None:
            c = self.cache.counts
            out["cache"] = {"dir": self.cache.root, "hits": c["hits"], "misses": c["misses"],
                            "bytes_written": c["bytes_written"], "evictions": c["evictions"]}
        return out

    # --- requests -----------------------------------------------------------------------

    @contextmanager
    def _request(self, kind: str, key: str) -> Iterator[None]:
        """Counts the request; not found -> KeyError; anything else the network or the
        service says -> StorageError naming the object."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.counts[kind] += 1
        try:
            yield
        except ClientError as e:
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(key) from None
            raise errors.StorageError(f"cannot {kind} {self.url}/{key}: {e}") from None
        except BadKey:
            raise
        except (BotoCoreError, OSError, ValueError) as e:  # ValueError: a garbled response
            raise errors.StorageError(f"cannot {kind} {self.url}/{key}: {e}") from None

    def _fetch(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The object, or bytes ``[start, end)`` of it (shorter where it ends)."""
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start is not None:
            args["Range"] = f"bytes={start}-{end - 1}"
        with self._request("get", key):
            try:
                resp = self.client.get_object(**args)
            except ClientError as e:
                if _code(e) == "InvalidRange":
                    return b""  # the range starts at or past the end of the object
                raise
            data = _body(resp, key)
        if is_immutable(key):
            total = resp.get("ContentRange", "").rpartition("/")[2]
            self._sizes[key] = int(total) if total.isdigit() else resp["ContentLength"]
        return data

    # --- reads --------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        _check_key(key)
        if self.cache is None or not is_immutable(key):
            return self._fetch(key)
        path = self.cache.name(key)
        data = self.cache.read(path)
        if data is None:
            data = self._fetch(key)
            self.cache.write(path, data)
        return data

    def file_path(self, key: str) -> str | None:
        _check_key(key)
        if self.cache is None or not is_immutable(key):
            return None
        path = self.cache.name(key)
        if not self.cache.lookup(path):
            self.cache.write(path, self._fetch(key))
            if not os.path.exists(path):
                return None  # the cache could not keep it (full disk)
        return path

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return self._parallel(self._get_or_none, keys)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self.read_ranges([(key, offset, length)])[0]

    def read_ranges(self, ranges: list[tuple[str, int, int]]) -> list[bytes]:
        for key, offset, length in ranges:
            _check_key(key)
            if offset < 0 or length < 0:
                raise ValueError(f"invalid byte range: offset {offset}, length {length}")
        by_block = {r for r in ranges if r[2] and self.cache is not None and is_immutable(r[0])}
        blocks = self._blocks({(k, b) for k, o, n in by_block for b in _block_span(o, n)})
        direct = sorted({r for r in ranges if r[2] and r not in by_block})
        fetched = dict(zip(direct, self._parallel(lambda r: self._fetch(r[0], r[1], r[1] + r[2]), direct),
                           strict=True))
        out = []
        for key, offset, length in ranges:
            if not length:
                out.append(b"")
            elif (key, offset, length) in fetched:
                out.append(fetched[(key, offset, length)])
            else:
                parts = [blocks[(key, b)] for b in _block_span(offset, length)]
                buf = b"".join(parts)
                lo = offset - (offset // BLOCK) * BLOCK
                out.append(buf[lo : lo + length])
        return out

    def _blocks(self, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
        """The cached blocks asked for; the missing ones fetched, many at once."""
        if self.cache is None or not wanted:
            return {}
        got: dict[tuple[str, int], bytes] = {}
        missing = []
        for key, b in sorted(wanted):
            size = self._sizes.get(key)
            if size is not None and b * BLOCK >= size:
                got[(key, b)] = b""
                continue
            data = self.cache.read(self.cache.name(key, b))
            if data is None:
                missing.append((key, b))
            else:
                got[(key, b)] = data
        # consecutive missing blocks of an object come in one request (fewer round trips;
        # runs are capped so a large read still spreads over several requests)
        runs: list[tuple[str, int, int]] = []
        for key, b in missing:
            if runs and runs[-1][0] == key and runs[-1][2] == b and b - runs[-1][1] < RUN_BLOCKS:
                runs[-1] = (key, runs[-1][1], b + 1)
            else:
                runs.append((key, b, b + 1))
        fetched = self._parallel(lambda r: self._fetch(r[0], r[1] * BLOCK, r[2] * BLOCK), runs)
        for (key, first, end), data in zip(runs, fetched, strict=True):
            for b in range(first, end):
                part = data[(b - first) * BLOCK : (b - first + 1) * BLOCK]
                got[(key, b)] = part
                if part:
                    self.cache.write(self.cache.name(key, b), part)
        return got

    def _parallel(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``fn`` over ``items`` with up to READERS requests in flight (boto3 releases
        the GIL while it waits on the network)."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        self.client  # noqa: B018 -- resets the pool in a forked child
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="reeldb-read")
        return list(self._pool.map(fn, items))

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            with self._request("get", key):
                resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                data = _body(resp, key)
                if not resp.get("ETag"):
                    raise errors.StorageError(f"cannot get {self.url}/{key}: the response has no ETag")
                return data, resp["ETag"]
        except KeyError:
            return None

    def _head(self, key: str) -> dict[str, Any]:
        with self._request("head", key):
            meta = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        if is_immutable(key):
            self._sizes[key] = meta["ContentLength"]
        return meta

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except KeyError:
            return False
        return True

    def size(self, key: str) -> int:
        got = self._sizes.get(key)
        return got if got is not None else self._head(key)["ContentLength"]

    def mtime(self, key: str) -> float:
        return self._head(key)["LastModified"].timestamp()

    def open_input(self, key: str) -> BinaryIO:
        return io.BufferedReader(_RangeFile(self, key, self.size(key)), buffer_size=256 << 10)  # type: ignore[return-value]

    def list(self, prefix: str) -> list[str]:
        cut = prefix.rfind("/")
        if cut > 0:
            _check_key(prefix[:cut])
        if "\\" in prefix or "\0" in prefix or prefix.startswith("/"):
            raise ValueError(f"invalid prefix {prefix!r}")
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        skip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._request("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                keys += [o["Key"][skip:] for o in page.get("Contents", ())]
        return sorted(keys)

    # --- writes -------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        with self._request("put", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=_buffer(data))
        self._written(key, data)

    def _written(self, key: str, data: bytes) -> None:
        if self.cache is not None and is_immutable(key) and len(data) <= WRITE_THROUGH_MAX:
            self.cache.write(self.cache.name(key), data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._conditional(key, {"IfNoneMatch": "*"}, data)

    def compare_and_swap(self, key: str, expected_version: str | None, data: bytes) -> bool:
        cond = {"IfNoneMatch": "*"} if expected_version is None else {"IfMatch": expected_version}
        return self._conditional(key, cond, data)

    def _conditional(self, key: str, condition: dict[str, str], data: bytes) -> bool:
        from botocore.exceptions import ClientError

        body = _buffer(data)
        try:
            with self._request("put", key):
                try:
                    self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, **condition)
                except ClientError as e:
                    # 412: lost the race; 409: a concurrent conditional write to the same key
                    if _code(e) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                        raise
                    if not e.response.get("ResponseMetadata", {}).get("RetryAttempts"):
                        return False  # the first and only try: a plain loss
                    # a retried request may have lost only to its own first try, which
                    # landed: the object then holds exactly our bytes (unique per write)
                    current = self.get_versioned(key)
                    return current is not None and current[0] == body
        except KeyError:
            return False  # If-Match on an object that is gone
        self._written(key, data)
        return True

    def delete(self, key: str) -> None:
        self._sizes.pop(key, None)
        with self._request("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


class _RangeFile(io.RawIOBase):
    """A seekable read-only file over byte-range reads (pyarrow reads Parquet through
    it, footer first, then only the column chunks it needs)."""

    def __init__(self, store: CloudStore, key: str, size: int):
        self._store, self._key, self._size, self._pos = store, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), max(0, self._size - self._pos))
        if n:
            data = self._store.get_range(self._key, self._pos, n)
            n = len(data)
            memoryview(buf).cast("B")[:n] = data
            self._pos += n
        return n


class BadKey(ValueError):
    """A key the store refuses (as LocalStore does, with ValueError)."""


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise BadKey(f"object keys are strings, not {type(key).__name__}")
    parts = key.split("/")
    if not key or "\\" in key or "\0" in key or any(p in ("", ".", "..") for p in parts):
        raise BadKey(f"invalid object key {key!r}: want a relative path like 'data/1/x.parquet'")


def _block_span(offset: int, length: int) -> range:
    return range(offset // BLOCK, (offset + length - 1) // BLOCK + 1)


def _buffer(data: Any) -> Any:
    """Request bodies as bytes (callers may pass any contiguous buffer)."""
    return data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()


def _number(options: dict[str, Any], name: str, default: float, kind: Callable[[Any], Any]) -> Any:
    """A numeric storage option; a clear 22023 when it is not a number."""
    value = options.get(name, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise errors.InvalidParameterValue(f"storage option {name} must be a number, not {value!r}") from None


def _body(resp: dict[str, Any], key: str) -> bytes:
    """A GET response's bytes, refused unless all of them arrived: a connection cut inside
    the headers can otherwise pass for a whole, shorter response."""
    expected = resp.get("ContentLength")
    data = resp["Body"].read()
    if expected is None or len(data) != expected:
        raise errors.StorageError(
            f"cannot get {key}: the response was cut short ({len(data)} of {expected} bytes)")
    return data


def _code(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """storage_options -> (boto3 client arguments, reeldb's own); unknown names refused."""
    client: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for name, value in options.items():
        name = _ALIASES.get(name, name)
        if name in _OWN:
            own[name] = value
        elif name in _CLIENT:
            client[name] = value
        else:
            raise errors.InvalidParameterValue(
                f"unknown storage option {name!r}: known are {', '.join(sorted({*_CLIENT, *_OWN}))}"
            )
    return client, own
