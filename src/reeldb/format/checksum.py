"""Checksums of immutable objects, and the checks that refuse damaged ones.

Every object is written once, so its checksum is computed when it is written and
recorded by whatever names it: a fragment's Parquet file, matrix files and deletion
vector in the manifest segment that lists the fragment; a blob value's bytes, per
block of the value, beside its (pack, offset, length) in the cell; an
index object in its fragment list. Manifests and segments are content-addressed (their
key is the hash of their bytes); commits carry a checksum of their own body.

The hash is XXH3-64 (``xxhash``): ~13 GB/s on one core here, against ~2.4 GB/s for
zlib's CRC-32 and ~0.6 GB/s for BLAKE2b, and 0.4 us for a 4 KiB value. It detects damage
(truncation, flipped bytes, a lost write), not tampering: whoever can rewrite a data file
can rewrite the manifest that names it too.

A mismatch raises ``errors.DataCorrupted`` (XX001) naming the object and what was
recorded; no byte of a damaged object is returned. Objects written before checksums
existed have none recorded: they are read unverified (``reeldb check`` lists them as such).
"""

from __future__ import annotations

import json
import mmap
import os
import threading
from typing import Any

import xxhash

from .. import errors

ALGORITHM = "xxh3-64"
_FILE_CHUNK = 8 << 20

_enabled = True
# (store url, key, checksum) of whole objects already verified in this process: Parquet
# fragments, matrices and index objects are verified on first open, and never change
_verified: set[tuple[str, str, str]] = set()
_verified_lock = threading.Lock()


def digest(data: Any) -> str:
    """The checksum of a bytes-like object, as 16 hex digits."""
    return xxhash.xxh3_64_hexdigest(data)


def file_digest(path: str) -> str:
    """The checksum of a file, read through a mapping (no copy into Python memory)."""
    h = xxhash.xxh3_64()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return h.hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            view = memoryview(m)
            try:
                for start in range(0, size, _FILE_CHUNK):
                    h.update(view[start : start + _FILE_CHUNK])
            finally:
                view.release()
    return h.hexdigest()


def enabled() -> bool:
    return _enabled


def _set_enabled(on: bool) -> None:
    """For bench/bench_checksums.py only, to measure what verification costs: reeldb has
    no user-facing way to read without checking."""
    global _enabled
    _enabled = on


def damaged(key: str, what: str) -> errors.DataCorrupted:
    return errors.DataCorrupted(f'stored object "{key}" is damaged: {what}')


def check(key: str, data: Any, expected: str | None) -> None:
    """Raise XX001 unless ``data`` (the whole object) has the recorded checksum."""
    if expected is None or not _enabled:
        return
    got = digest(data)
    if got != expected:
        raise damaged(key, f"{ALGORITHM} checksum is {got}, the manifest recorded {expected}")


def check_size(key: str, size: int, expected: int) -> None:
    """Raise XX001 when an object's size is not the one its metadata implies (a
    truncated file), checked even for objects that have no checksum recorded."""
    if size != expected:
        raise damaged(key, f"it is {size} bytes, {expected} expected")


def check_file(url: str, key: str, path: str, expected: str | None) -> None:
    """Verify a whole local file once per process (on first open)."""
    if expected is None or not _enabled:
        return
    mark = (url, key, expected)
    if mark in _verified:
        return
    got = file_digest(path)
    if got != expected:
        raise damaged(key, f"{ALGORITHM} checksum is {got}, the manifest recorded {expected}")
    with _verified_lock:
        _verified.add(mark)


def check_once(url: str, key: str, data: Any, expected: str | None) -> None:
    """Like ``check_file`` for an object read whole into memory."""
    if expected is None or not _enabled or (url, key, expected) in _verified:
        return
    check(key, data, expected)
    with _verified_lock:
        _verified.add((url, key, expected))


def verified(url: str, key: str, expected: str) -> bool:
    """Whether this process verified the whole object already."""
    return (url, key, expected) in _verified


def forget(url: str) -> None:
    """Drop what this process verified of one store (tests that damage files)."""
    with _verified_lock:
        for mark in [m for m in _verified if m[0] == url]:
            _verified.discard(mark)


# -- blob values --------------------------------------------------------------------------
# A packed value's ``sums``: the checksum of the whole value (8 bytes), then, for a value
# over SMALL_VALUE, one checksum per block. Reading a whole value (the common case) checks
# one hash of exactly its bytes; a ranged read of a long value (a decoder seeking in a
# clip) fetches and checks only the blocks it falls in, and a ranged read of a small one
# reads it whole. Blocks grow with the value so that a cell carries at most MAX_BLOCKS of
# them (2 KiB): 4 KiB blocks up to 1 MiB values, 2 MiB blocks for a 500 MB clip.
SMALL_VALUE = 256 << 10  # up to this, one checksum (ingest hashes each byte once)
MIN_BLOCK = 4 << 10
MAX_BLOCKS = 256


def blob_block(length: int) -> int:
    """The block size of a value's checksums: a function of its length alone (a value
    up to SMALL_VALUE is one block)."""
    if length <= SMALL_VALUE:
        return max(length, 1)
    want = -(-length // MAX_BLOCKS)
    return max(MIN_BLOCK, 1 << max(0, (want - 1).bit_length()))


def blob_sums(data: Any) -> bytes:
    """The ``sums`` of a packed value: its checksum, then its blocks' when it has several."""
    view = memoryview(data).cast("B")
    n = len(view)
    whole = xxhash.xxh3_64_digest(view)
    block = blob_block(n)
    if n <= block:
        return whole
    return whole + b"".join(xxhash.xxh3_64_digest(view[i : i + block]) for i in range(0, n, block))


def block_range(offset: int, size: int, length: int) -> tuple[int, int]:
    """The byte range of a value, aligned to its checksum blocks, that covers
    ``[offset, offset + size)``: what a verified ranged read fetches."""
    block = blob_block(length)
    if length <= block:
        return 0, length
    start = offset // block * block
    end = -(-(offset + max(size, 1)) // block) * block
    return start, min(length, end)


def check_range(key: str, value_offset: int, data: Any, start: int, end: int, length: int,
                sums: bytes | None) -> None:
    """Verify ``data``, bytes ``[start, end)`` of a packed value of ``length`` bytes (the
    whole value, or block-aligned as ``block_range`` gives), against the cell's ``sums``.
    ``key`` and ``value_offset`` name the value in its pack. The size is checked even
    for cells written before checksums (a truncated pack)."""
    view = memoryview(data).cast("B")
    if len(view) != end - start:
        raise damaged(key, f"the blob value at offset {value_offset} is cut short: {len(view)} bytes "
                           f"where {end - start} were expected at byte {start} of it (the pack is truncated)")
    if sums is None or not _enabled:
        return
    if start == 0 and end == length:
        got = xxhash.xxh3_64_digest(view)
        if got != sums[:8]:
            raise damaged(key, f"the blob value at offset {value_offset} ({length} bytes) has {ALGORITHM} "
                               f"checksum {got.hex()}, its row recorded {sums[:8].hex()}")
        return
    block = blob_block(length)
    first = start // block
    for i, pos in enumerate(range(0, len(view), block)):
        want = sums[8 * (first + i + 1) : 8 * (first + i + 2)]
        got = xxhash.xxh3_64_digest(view[pos : pos + block])
        if got != want:
            raise damaged(key, f"the blob value at offset {value_offset} has {ALGORITHM} checksum "
                               f"{got.hex()} for its block at byte {start + pos}, its row recorded "
                               f"{want.hex() or 'none'}")


def check_value(key: str, value_offset: int, data: Any, length: int, sums: bytes | None) -> None:
    """Verify one whole packed value: its size, then one hash of exactly its bytes."""
    check_range(key, value_offset, data, 0, length, length, sums)


# -- JSON metadata -----------------------------------------------------------------------
def load_json(key: str, data: bytes) -> Any:
    """Parse a metadata object; damage is XX001 naming it, never a bare JSONDecodeError."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise damaged(key, f"it is not valid JSON ({e})") from None


def signed_json(d: dict) -> bytes:
    """A metadata object's JSON with ``sum``, the checksum of the rest of it: for objects
    named by a random id (commits, index fragment lists), whose name cannot vouch for them."""
    return json.dumps(dict(d, sum=digest(_canonical(d))), sort_keys=True).encode()


def load_signed_json(key: str, data: bytes, strict: bool = False) -> dict:
    """Parse a ``signed_json`` object and verify its ``sum`` (XX001 naming ``key``). One
    written before checksums has no ``sum`` and is returned unverified. ``strict``: verify
    even when reads skip verification (the scrub)."""
    d = load_json(key, data)
    if not isinstance(d, dict):
        raise damaged(key, "it is not a JSON object")
    recorded = d.pop("sum", None)
    if recorded is not None and (_enabled or strict):
        got = digest(_canonical(d))
        if got != recorded:
            raise damaged(key, f"its {ALGORITHM} checksum is {got}, it recorded {recorded}")
    return d


def _canonical(d: dict) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def field(key: str, d: Any, name: str) -> Any:
    """A required field of a metadata object (XX001 naming the object when absent)."""
    if not isinstance(d, dict) or name not in d:
        raise damaged(key, f'it has no "{name}"')
    return d[name]
