"""Group commit: concurrent appends to one branch combine into one commit.

Many workers inserting single rows into one branch (the brief's ``log_generation`` called
from every GPU worker) all race for the branch head. With plain optimistic commits one
wins each round and every loser rewrites its manifests and commit before trying again, so
eight writers commit fewer rows per second than one. Here a transaction that lost the
head's compare-and-swap, and only appends rows to tables that exist, publishes an
*intent* instead of rebasing alone: an object under ``_reeldb/intents/<branch>/`` naming
the fragments it wrote. Whoever moves the head next -- any of the waiting writers --
applies every pending intent it sees, so one compare-and-swap commits many writers' rows.
The combined commit lists the intents it includes (``Commit.group``); a writer finds its
own there and returns, or finds it in ``Commit.rejected`` with the error to raise (a
unique key taken by a row committed first).

No server, no lock: intents are plain objects, the head still moves only by
compare-and-swap, and an intent is included at most once because a combiner skips the
intents that the commits since their base already list. Included intents are deleted by
the combiner that included them; VACUUM deletes stale ones.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from .. import errors
from ..format import checksum
from ..format.keys import INTENTS
from ..format.manifest import Fragment, Schema, TableManifest, foreign_key_links
from .unique import check_unique

MAX_ATTEMPTS = 200  # tries at a branch head before a commit gives up (plain and grouped)

if TYPE_CHECKING:
    from .catalog import Catalog, Snapshot
    from .refs import Commit
    from .transaction import Transaction

STALE_S = 600.0  # an intent this old was left by a writer that died: dropped, not applied
SKEW_S = 300.0  # clocks of writers on different machines may disagree by this much
WALK_LIMIT = 10_000  # commits walked back from the head to find which intents are in
WAIT_S = 120.0  # a writer gives up (40001) when its intent is neither in nor applicable
TAKEOVER_S = 1.0  # a waiting writer combines when the oldest intent has waited this long
POLL_S = 0.01  # how often a waiting writer looks at the head
CONTENDED_S = 2.0  # after a lost compare-and-swap, appends go straight to group commit this long


def eligible(txn: Transaction) -> bool:
    """Only appends to tables that already exist combine: anything else (DDL, updates,
    deletes, compaction, a table on either side of a foreign key) needs the full rebase of
    the transaction itself."""
    linked = {a for a, _ in foreign_key_links(list(txn.tables.values()))}
    return bool(txn.changes) and not txn.object_changes and not linked & set(txn.changes) and all(
        ch.added and not (ch.created or ch.dropped or ch.schema is not None or ch.indexes is not None
                          or ch.deleted or ch.replaced)
        for ch in txn.changes.values()
    )


@dataclass
class Intent:
    id: str
    branch: str
    base: str
    time: float
    author: str
    message: str
    tables: dict[str, dict]  # table id -> {"name", "schema", "fragments", "unique"}
    stats: dict[str, list[int]]

    @property
    def key(self) -> str:
        return intent_prefix(self.branch) + f"{int(self.time * 1e6):020d}-{self.id}"

    def to_bytes(self) -> bytes:
        """With a checksum of its own: the fragments (and their checksums) it lists become
        a commit's."""
        return checksum.signed_json({"id": self.id, "branch": self.branch, "base": self.base, "time": self.time,
                                     "author": self.author, "message": self.message, "tables": self.tables,
                                     "stats": self.stats})

    @staticmethod
    def from_bytes(b: bytes, key: str = "intent") -> Intent:
        d = checksum.load_signed_json(key, b)
        try:
            return Intent(d["id"], d["branch"], d["base"], d["time"], d["author"], d["message"], d["tables"],
                          d["stats"])
        except (KeyError, TypeError) as e:
            raise checksum.damaged(key, f"it is not a group-commit intent ({e!r})") from None

    def fragments(self) -> dict[str, list[Fragment]]:
        return {tid: [Fragment.from_json(f) for f in t["fragments"]] for tid, t in self.tables.items()}


def intent_prefix(branch: str) -> str:
    return INTENTS + quote(branch, safe="") + "/"


def publish(txn: Transaction, message: str, author: str) -> Intent:
    """Write the transaction's appends as an intent (its data files are already written)."""
    assert txn.branch is not None
    tables = {}
    for ch in txn.changes.values():
        tm = txn.tables[ch.name]
        tables[ch.table_id] = {"name": ch.name, "schema": tm.schema.to_json(),
                               "fragments": [f.to_json() for f in ch.added.values()],
                               "unique": bool(ch.check_unique)}
    intent = Intent(uuid.uuid4().hex[:20], txn.branch, txn.base, time.time(), author, message, tables,
                    txn.stats())
    txn.catalog.store.put(intent.key, intent.to_bytes())
    return intent


def commit(txn: Transaction, intent: Intent) -> tuple[str, Snapshot, bool]:
    """Wait until the intent is in the branch's history, combining pending intents into a
    commit whenever the head is ours to move. Returns the commit that includes it, that
    commit's tables, and whether this writer made it."""

    cat = txn.catalog
    delay = 0.002
    deadline = time.monotonic() + WAIT_S
    missing = 0
    seen_head: str | None = None
    listed = 0.0
    for _ in range(MAX_ATTEMPTS * 50):
        if seen_head is not None and time.monotonic() - listed < TAKEOVER_S:
            # waiting on another writer's combine: one cheap read of the head per poll,
            # and the full look (listing, history) only when the head moved
            time.sleep(POLL_S * (0.5 + random.random()))
            got = cat.refs.branch(intent.branch)
            if got is not None and got[0] == seen_head:
                continue
        # intents first, head second: an intent is deleted only after the commit that
        # includes it moved the head, so a head read after the listing shows that commit
        keys = cat.store.list(intent_prefix(intent.branch))
        listed = time.monotonic()
        got = cat.refs.branch(intent.branch)
        if got is None:
            raise errors.UndefinedObject(f'branch "{intent.branch}" does not exist any more')
        head, version = got
        seen_head = None
        times = [_time_of(k) for k in keys]
        done = _included(cat, head, min([intent.time, *times]))
        if intent.id in done:
            return (*_outcome(cat, done[intent.id], intent), False)
        if intent.key not in keys:
            missing += 1  # deleted, yet in no commit: VACUUM took it (or a reset dropped it)
            if missing >= 3:
                raise errors.SerializationFailure(
                    f'could not commit to branch "{intent.branch}": its group commit was dropped '
                    "(by VACUUM or a reset of the branch); retry the transaction")
            continue
        if time.monotonic() > deadline:
            raise errors.SerializationFailure(
                f'could not commit to branch "{intent.branch}": its group commit waited too long; retry')
        waiting = [k for k in keys if _id_of(k) not in done]
        # the writer of the oldest waiting intent combines; the others poll the head, and
        # step in only when that writer seems gone
        if waiting[0] != intent.key and time.time() - _time_of(waiting[0]) < TAKEOVER_S:
            seen_head = head
            continue
        pending = [Intent.from_bytes(d, k) for k, d in zip(waiting, cat.store.get_many(waiting), strict=True)
                   if d is not None]
        if not any(p.id == intent.id for p in pending):
            # deleted since the listing: another writer's combine included it (and moved
            # the head after our read of it), or VACUUM dropped it; the next look tells
            continue
        todo = [p for p in pending if time.time() - p.time < STALE_S]
        if not any(p.id == intent.id for p in todo):
            raise errors.SerializationFailure(
                f'could not commit to branch "{intent.branch}": its group commit went stale; retry')
        tables, group, rejected = _apply(cat, head, todo)
        c = cat.save_commit((head,), tables, _message(todo), todo[0].author if len(todo) == 1 else None,
                            _stats(todo, rejected), group=tuple(group), rejected=rejected)
        if cat.refs.move_branch(intent.branch, version, c.id):
            now = time.time()
            for k in keys:  # ours to delete; lingering included ones only once clearly orphaned
                iid, age = _id_of(k), now - _time_of(k)
                if iid in group or iid in rejected or age >= STALE_S or (iid in done and age > TAKEOVER_S * 10):
                    cat.store.delete(k)
            return (*_outcome(cat, c, intent, tables), True)
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 1.5, 0.05)
    raise errors.SerializationFailure(
        f'could not commit to branch "{intent.branch}": the head kept moving'
    )


def waiting(cat: Catalog, branch: str) -> bool:
    """Whether other writers' intents wait on the branch: then a lone commit would race
    their combiner, so this one joins them."""
    return bool(cat.store.list(intent_prefix(branch)))


def _time_of(key: str) -> float:
    return int(key.rpartition("/")[2].partition("-")[0]) / 1e6


def _id_of(key: str) -> str:
    return key.rpartition("-")[2]


def _included(cat: Catalog, head: str, oldest: float) -> dict[str, Commit]:
    """Intent id -> the commit that includes (or rejects) it, for commits since ``oldest``
    on the head's first-parent line."""
    out: dict[str, Commit] = {}
    cid: str | None = head
    for _ in range(WALK_LIMIT):
        if cid is None:
            break
        try:
            c = cat.commit(cid)
        except errors.UndefinedObject:
            break  # history dropped by expire: nothing older to look at
        for iid in (*c.group, *c.rejected):
            out.setdefault(iid, c)
        if c.time < oldest - SKEW_S:
            break
        cid = c.parents[0] if c.parents else None
    return out


def _apply(cat: Catalog, head: str, todo: list[Intent]) -> tuple[Snapshot, list[str], dict[str, list[str]]]:
    """The head's tables with every applicable intent's fragments appended, in intent
    order; an intent whose table changed shape, or whose unique keys are taken, is
    rejected whole."""

    tables = cat.snapshot(head).copy()
    group: list[str] = []
    rejected: dict[str, list[str]] = {}
    for p in todo:
        staged: dict[str, TableManifest] = {}
        try:
            for tid, frags in p.fragments().items():
                t = p.tables[tid]
                tm = staged.get(t["name"]) or tables.get(t["name"])
                if tm is None or tm.table_id != tid or \
                        tm.schema.fingerprint != Schema.from_json(t["schema"]).fingerprint:
                    raise errors.SerializationFailure(
                        f'table "{t["name"]}" was changed by a concurrent commit')
                tm = tm.copy()
                for f in frags:
                    tm.append(f)
                if t["unique"]:
                    check_unique(cat.reader, tm, frags)
                staged[t["name"]] = tm
        except (errors.UniqueViolation, errors.SerializationFailure) as e:
            rejected[p.id] = [e.sqlstate, str(e)]
            continue
        tables.update(staged)
        group.append(p.id)
    return tables, group, rejected


def _outcome(cat: Catalog, c: Commit, intent: Intent, tables: Snapshot | None = None) -> tuple[str, Snapshot]:
    if intent.id in c.rejected:
        sqlstate, message = c.rejected[intent.id]
        cls = errors.UniqueViolation if sqlstate == errors.UniqueViolation.sqlstate else errors.SerializationFailure
        raise cls(message)
    return c.id, tables if tables is not None else cat.snapshot(c.id)


def _message(todo: list[Intent]) -> str:
    if len(todo) == 1:
        return todo[0].message
    return f"group commit of {len(todo)} transactions: " + "; ".join(p.message for p in todo[:3]) + \
        ("; ..." if len(todo) > 3 else "")


def _stats(todo: list[Intent], rejected: dict[str, list[str]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p in todo:
        if p.id in rejected:
            continue
        for name, st in p.stats.items():
            acc = out.setdefault(name, [0, 0, 0])
            for i, v in enumerate(st):
                acc[i] += v
    return out
