"""Commits, refs and global counters: the only mutable objects are refs and counters,
and both move by compare-and-swap."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..format import checksum
from ..format.keys import BRANCHES, PROTECTED, TAGS, counter_key, ref_key, ref_name
from ..storage import ObjectStore


@dataclass(frozen=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    time: float
    author: str
    message: str
    tables: dict[str, str] = field(default_factory=dict)  # table name -> manifest key
    # table name -> [rows inserted, rows deleted, rows updated] against the first parent
    stats: dict[str, list[int]] = field(default_factory=dict)
    # group commit (group.py): the intents this commit includes, and those it rejected with
    # [sqlstate, message] for their writers to raise
    group: tuple[str, ...] = ()
    rejected: dict[str, list[str]] = field(default_factory=dict)
    # the branch's catalog objects other than tables (schemas, types, sequences, comments):
    # key -> JSON definition (catalog/objects.py); absent in commits that have none
    objects: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The commit's JSON, with ``sum``: the checksum of the rest of it (commits are
        named by a random id, not by their content, so they carry their own)."""
        d = {"id": self.id, "parents": list(self.parents), "time": self.time, "author": self.author,
             "message": self.message, "tables": self.tables, "stats": self.stats}
        if self.group or self.rejected:
            d |= {"group": list(self.group), "rejected": self.rejected}
        if self.objects:
            d["objects"] = self.objects
        return checksum.signed_json(d)

    @staticmethod
    def from_bytes(b: bytes, key: str = "commit", strict: bool = False) -> Commit:
        """Parse and verify a stored commit: damage is XX001 naming ``key``. Commits written
        before checksums have no ``sum`` and are read unverified."""
        d = checksum.load_signed_json(key, b, strict)
        try:
            c = Commit(d["id"], tuple(d["parents"]), d["time"], d["author"], d["message"], dict(d["tables"]),
                       d.get("stats", {}), tuple(d.get("group", ())), d.get("rejected", {}),
                       dict(d.get("objects", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise checksum.damaged(key, f"it is not a commit ({e!r})") from None
        if key != "commit" and not key.endswith("/" + c.id):
            raise checksum.damaged(key, f'it holds commit "{c.id}"')
        return c


def read_ref(key: str, data: bytes) -> str:
    """The commit id a stored ref (branch head or tag) points at; XX001 naming the ref
    when it is damaged."""
    commit = checksum.field(key, checksum.load_json(key, data), "commit")
    if not isinstance(commit, str):
        raise checksum.damaged(key, "its commit is not an id")
    return commit


def new_commit_id() -> str:
    """Random, so that short prefixes (as ``git log`` shows them) stay unique; commits
    carry their time for ordering."""
    return uuid.uuid4().hex[:24]


def valid_ref_name(name: str) -> bool:
    bad = not name or name.startswith(("/", ".", "-")) or name.endswith(("/", ".lock")) \
        or ".." in name or any(c in name for c in " \t\n~^:?*[\\\x00\"")
    return not bad and len(name) <= 200


def check_ref_name(name: str, what: str = "branch") -> None:
    if not valid_ref_name(name):
        raise errors.InvalidParameterValue(f"invalid {what} name: {name!r}")


class Refs:
    """Branch heads and tags over an object store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def branch(self, name: str) -> tuple[str, str] | None:
        """(commit id, version token) of a branch head, or None."""
        if not valid_ref_name(name):
            return None
        got = self.store.get_versioned(ref_key(BRANCHES, name))
        if got is None:
            return None
        data, version = got
        return read_ref(ref_key(BRANCHES, name), data), version

    def branches(self) -> dict[str, str]:
        out = {}
        for key in self.store.list(BRANCHES):
            name = ref_name(BRANCHES, key)
            try:
                out[name] = read_ref(key, self.store.get(key))
            except KeyError:
                continue  # deleted while listing
        return out

    def create_branch(self, name: str, commit: str) -> None:
        check_ref_name(name)
        if not self.store.put_if_absent(ref_key(BRANCHES, name), _ref(commit)):
            raise errors.DuplicateObject(f'branch "{name}" already exists')

    def move_branch(self, name: str, expected_version: str | None, commit: str) -> bool:
        return self.store.compare_and_swap(ref_key(BRANCHES, name), expected_version, _ref(commit))

    def delete_branch(self, name: str) -> None:
        if self.branch(name) is None:
            raise errors.UndefinedObject(f'branch "{name}" does not exist')
        self.store.delete(ref_key(BRANCHES, name))
        self.unprotect(name)

    def protect(self, name: str) -> None:
        if self.branch(name) is None:
            raise errors.UndefinedObject(f'branch "{name}" does not exist')
        self.store.put(ref_key(PROTECTED, name), b"{}")

    def unprotect(self, name: str) -> None:
        self.store.delete(ref_key(PROTECTED, name))

    def protected(self, name: str) -> bool:
        return self.store.exists(ref_key(PROTECTED, name))

    def protected_branches(self) -> set[str]:
        return {ref_name(PROTECTED, k) for k in self.store.list(PROTECTED)}

    def check_writable(self, name: str) -> None:
        if self.protected(name):
            raise errors.BranchProtected(
                f'branch "{name}" is protected: writes are refused until it is unprotected'
            )

    def delete_tag(self, name: str) -> None:
        if self.tag(name) is None:
            raise errors.UndefinedObject(f'tag "{name}" does not exist')
        self.store.delete(ref_key(TAGS, name))

    def tags(self) -> dict[str, str]:
        return {ref_name(TAGS, k): read_ref(k, self.store.get(k)) for k in self.store.list(TAGS)}

    def tag(self, name: str) -> str | None:
        if not valid_ref_name(name):
            return None
        try:
            key = ref_key(TAGS, name)
            return read_ref(key, self.store.get(key))
        except KeyError:
            return None

    def create_tag(self, name: str, commit: str) -> None:
        check_ref_name(name, "tag")
        if not self.store.put_if_absent(ref_key(TAGS, name), _ref(commit)):
            raise errors.DuplicateObject(f'tag "{name}" already exists')


def _ref(commit: str) -> bytes:
    # a nonce makes every write's bytes unique: an object store that retried a conditional
    # write can then tell its own landed first try from another writer's
    return json.dumps({"commit": commit, "write": uuid.uuid4().hex[:12]}).encode()


class Counters:
    """Global counters (row ids, SERIAL sequences): shared by every branch, so rows
    written on two branches never collide when merged. Moved by compare-and-swap."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def allocate(self, name: str, n: int) -> int:
        """Reserve ``n`` consecutive values; returns the first."""
        key = counter_key(name)
        delay = 0.001
        for _ in range(10_000):
            got = self.store.get_versioned(key)
            start, version = (1, None) if got is None else \
                (checksum.field(key, checksum.load_json(key, got[0]), "next"), got[1])
            body = json.dumps({"next": start + n, "write": uuid.uuid4().hex[:12]}).encode()
            if self.store.compare_and_swap(key, version, body):
                return start
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        raise errors.SerializationFailure(f"could not allocate from counter {name}: too much contention")
