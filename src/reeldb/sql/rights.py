"""Who a login is and what it may do, and the one table of the right each operation needs.

Every statement and versioning operation names itself to ``Session.authorize`` before it
runs. ``NEEDS`` below says, for each, which of its arguments are refs it reads, which are
refs it creates or changes, and whether it needs the admin right; ``Rights`` answers for
one login. SQL, the Python API and the wire server all reach operations through the
session, so this is the only place a right is decided.

Refs are branch and tag names: a login's patterns (``reeldb user add --branch 'exp/*'``)
match both, since a tag name is a ref name (a tag ``exp/v1`` is readable by ``exp/*``, a
tag ``release`` is not). A commit id (or unique prefix) names no ref, so a login with
patterns may read a commit only when it is reachable from a branch or tag head it may
read, found by a bounded walk back through history; anything else is 42501, whether the
name exists or not, so refusals tell nothing about what exists outside the patterns.

A read-only login changes nothing: its writes of the session's branch (INSERT, UPDATE,
DELETE, DDL, COPY FROM) are refused with 25006 as in a read-only Postgres transaction;
every other change (refs, protections, OPTIMIZE, VACUUM) with 42501. The admin right
(``reeldb user add --admin``) is needed for protect/unprotect, VACUUM, expire and user
management, which act on the whole database rather than on one ref.

Embedded connections (``reeldb.connect``) and the trusted loopback session of a server
with no users have ``FULL`` rights.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:
    from ..catalog.catalog import Catalog

# How far back a commit id is looked for from the readable heads before it is refused.
MAX_WALK = 10_000
CLOCK_SKEW_S = 3600.0  # a parent may be this much younger than its child (writers' clocks)


@dataclass(frozen=True)
class Need:
    """The rights one operation needs. ``read`` and ``write`` name its arguments that
    are refs; an argument passed as None (or empty) is the session's own branch (for
    ``write``) or ref (for ``read``), as the operations take it. ``statement``: a write
    of the session's branch by a statement, refused for a read-only login with 25006 (as
    in a read-only Postgres transaction) instead of 42501."""

    action: str  # how refusals name it
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    admin: bool = False
    statement: bool = False


# The rights table: every statement kind and versioning operation, and what it needs.
NEEDS: dict[str, Need] = {
    # statements
    "query": Need("read schema", read=("ref",)),  # SELECT / COPY TO / EXPLAIN / DECLARE of "<ref>".table
    "write": Need("write", write=("branch",), statement=True),  # INSERT UPDATE DELETE COPY FROM, DDL, CREATE INDEX, db.insert
    "optimize": Need("optimize", write=("branch",)),  # OPTIMIZE, reeldb_optimize, db.optimize
    "vacuum": Need("vacuum", admin=True),  # VACUUM, db.vacuum (VACUUM also compacts: + "optimize")
    "expire": Need("expire history", admin=True),  # db.expire, reeldb expire
    # versioning operations (SQL reeldb_* functions and the Python API alike)
    "checkout": Need("check out", read=("ref",)),  # reeldb_checkout, SET reeldb.branch, db.checkout
    # (a server login names a branch: its name must match the patterns, checked before the
    # database is opened so that a refusal does not tell whether the branch exists)
    "log": Need("read the history of", read=("ref",)),  # reeldb_log, db.log
    "diff": Need("diff", read=("a", "b")),  # reeldb_diff, db.diff
    "branch": Need("create branch", write=("name",), read=("source",)),  # reeldb_branch, db.branch
    "tag": Need("create tag", write=("name",), read=("source",)),  # reeldb_tag, db.tag
    "delete_tag": Need("delete tag", write=("name",)),  # db.delete_tag
    "delete_branch": Need("delete branch", write=("name",)),  # reeldb_delete_branch, db.delete_branch
    "merge": Need("merge", read=("source",), write=("into",)),  # reeldb_merge, db.merge
    "reset": Need("reset", write=("branch",), read=("target",)),  # reeldb_reset, db.reset
    "revert": Need("revert", read=("commit",), write=("branch",)),  # reeldb_revert, db.revert
    "protect": Need("protect", write=("branch",), admin=True),  # reeldb_protect, db.protect
    "unprotect": Need("unprotect", write=("branch",), admin=True),  # reeldb_unprotect, db.unprotect
    "users": Need("manage users", admin=True),  # reeldb user add|remove
}
# Listings (reeldb_branches(), reeldb_tags(), db.branches(), db.tags(), pg_namespace and
# the rest of the pg catalog) need no right: they show only the refs ``Rights.may_name``
# allows.


@dataclass(frozen=True)
class Rights:
    """One login's rights: ``patterns`` None means every ref. Left out, a right is not
    given, except the patterns (every ref); ``FULL`` has them all."""

    user: str = ""
    read_only: bool = False
    admin: bool = False
    patterns: tuple[str, ...] | None = None

    def _who(self) -> str:
        return f'user "{self.user}"' if self.user else "this login"

    def may_name(self, ref: str) -> bool:
        """Whether the branch or tag name ``ref`` is one this login may use."""
        return self.patterns is None or any(fnmatch.fnmatchcase(ref, p) for p in self.patterns)

    def check_admin(self, action: str) -> None:
        if self.read_only:
            raise errors.InsufficientPrivilege(f"permission denied to {action}: {self._who()} is read-only")
        if not self.admin:
            raise errors.InsufficientPrivilege(
                f"permission denied to {action}: it needs the admin right, which {self._who()} lacks")

    def check_write(self, ref: str, action: str = "write", statement: bool = False) -> None:
        """Refuse creating or changing the branch or tag ``ref``."""
        if self.read_only:
            if statement:
                raise errors.ReadOnlySqlTransaction(
                    f'cannot execute a write in a read-only transaction: {self._who()} may only read "{ref}"')
            raise errors.InsufficientPrivilege(f'permission denied to {action} "{ref}": {self._who()} is read-only')
        if not self.may_name(ref):
            raise errors.InsufficientPrivilege(
                f'permission denied to {action} "{ref}": {self._who()} may use only refs matching '
                + ", ".join(self.patterns or ()))

    def check_read(self, catalog: Catalog, ref: str, action: str = "read") -> str:
        """The commit ``ref`` names, when this login may read it; else 42501."""
        if self.patterns is None:
            return catalog.resolve(ref)
        branch = catalog.refs.branch(ref)
        named = branch[0] if branch is not None else catalog.refs.tag(ref)  # as resolve: a branch first
        if named is not None:
            if not self.may_name(ref):
                raise self._denied(ref, action)
            return named
        try:  # a commit id or prefix (or nothing)
            cid = catalog.resolve(ref)
        except errors.UndefinedObject:
            if self.may_name(ref):
                raise  # a name it may use, that does not exist: say so
            raise self._denied(ref, action) from None
        if not self._reachable(catalog, cid):
            raise self._denied(ref, action)
        return cid

    def _denied(self, ref: str, action: str) -> errors.InsufficientPrivilege:
        return errors.InsufficientPrivilege(
            f'permission denied to {action} "{ref}": {self._who()} may read only branches and tags matching '
            + ", ".join(self.patterns or ()) + " and the commits in their history")

    def _reachable(self, catalog: Catalog, cid: str) -> bool:
        """Whether commit ``cid`` is in the history of a head this login may read: a walk
        back from those heads that gives up after ``MAX_WALK`` commits, and does not go
        below commits much older than ``cid`` (its ancestors are older still). Giving up
        refuses; it never allows."""
        heads = [c for n, c in catalog.refs.branches().items() if self.may_name(n)]
        heads += [c for n, c in catalog.refs.tags().items() if self.may_name(n)]
        if cid in heads:
            return True
        floor = catalog.commit(cid).time - CLOCK_SKEW_S
        seen: set[str] = set()
        stack = list(dict.fromkeys(heads))
        while stack and len(seen) < MAX_WALK:
            c = stack.pop()
            if c == cid:
                return True
            if c in seen:
                continue
            seen.add(c)
            if catalog.commit(c).time < floor:
                continue
            stack.extend(p for p in catalog.parents(c) if p not in seen)
        return False

    def authorize(self, op: str, catalog: Catalog | None, current: str | None, /,
                  **refs: str | None) -> dict[str, str]:
        """Check operation ``op`` (a key of ``NEEDS``) with its ref arguments; ``current`` is
        the session's branch (None when it reads a fixed commit). A read argument of None is
        the session's own ref, authorized when the session got there (login, checkout); a
        write argument of None is its branch (on a fixed commit the operation refuses
        itself). Returns the commit each read argument given names, resolved once: the
        operation reads that commit, not whatever the name points at a moment later."""
        need = NEEDS[op]
        if set(refs) != set(need.read) | set(need.write):
            raise AssertionError(f"{op} takes refs {need.read + need.write}, not {tuple(refs)}")
        if need.admin:
            self.check_admin(need.action)
        for arg in need.write:
            target = refs[arg] or current
            if target is not None:
                self.check_write(target, need.action, need.statement)
            elif self.read_only:  # nothing to name, but a read-only login changes nothing
                self.check_write("(no branch)", need.action, need.statement)
        commits: dict[str, str] = {}
        for arg in need.read:
            ref = refs[arg]
            if ref:
                if catalog is None:
                    raise AssertionError(f"{op} reads refs: it needs the catalog")
                commits[arg] = self.check_read(catalog, ref, need.action)
        return commits


FULL = Rights(admin=True)
