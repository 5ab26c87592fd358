"""Branches, tags, history, diff and merge for a session, and their SQL surface.

Every operation is reachable three ways with one implementation: the Python API
(``db.merge(...)``), SQL functions (``SELECT reeldb_merge('x')``, ``SELECT * FROM
reeldb_log()``) and, through SQL, the wire server.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pglast import ast

from .. import errors
from ..catalog import compact as compaction
from ..catalog.diff import Diff, diff
from ..catalog.merge import MergeResult, merge, revert
from ..catalog.vacuum import DEFAULT_GRACE, expire, vacuum
from .parse import constant_argument
from .result import Result

if TYPE_CHECKING:
    from .session import Session


class VersioningMixin:
    """Session methods for versioning (``self`` is a Session)."""

    def authorize(self: Session, op: str, /, **refs: str | None) -> dict[str, str]:
        """Refuse ``op`` unless this session's login has the rights ``rights.NEEDS`` lists
        for it on these refs (None: the session's own branch or ref); the commits the read
        refs name, resolved once."""
        return self.rights.authorize(op, self.catalog, self.branch, **refs)

    def _no_txn(self: Session, what: str) -> None:
        self.leave_implicit(what)
        if self.in_transaction:
            raise errors.ActiveSqlTransaction(f"cannot {what} inside a transaction")

    def _branch_or_current(self: Session, branch: str | None) -> str:
        b = branch or self.branch
        if b is None:
            raise errors.ReadOnlySqlTransaction("this connection reads a fixed commit: name a branch")
        return b

    def checkout(self: Session, name: str) -> None:
        """Switch to a branch, or (read-only) to a tag or commit."""
        self._no_txn("switch branches")
        self.authorize("checkout", ref=name)
        if self.catalog.refs.branch(name) is not None:
            self.branch, self.pinned = name, None
        else:
            self.pinned, self.branch = self.catalog.resolve(name), None
        self._bound_commit = None

    def create_branch(self: Session, name: str, checkout: bool = True, at: str | None = None) -> str:
        self._no_txn("create a branch")
        commit = self.authorize("branch", name=name, source=at).get("source") or self.head()
        _not_a_schema(self, name, commit)
        self.catalog.refs.create_branch(name, commit)
        if checkout:
            self.checkout(name)
        return commit

    def delete_branch(self: Session, name: str) -> None:
        self.authorize("delete_branch", name=name)
        if name == self.branch:
            raise errors.ObjectInUse(f'cannot delete branch "{name}": this connection is on it')
        if self.catalog.refs.protected(name):
            raise errors.BranchProtected(f'branch "{name}" is protected: unprotect it first')
        self.catalog.refs.delete_branch(name)

    def branches(self: Session) -> list[dict[str, Any]]:
        """The branches this login may read."""
        protected = self.catalog.refs.protected_branches()
        return [{"name": n, "commit": c, "current": n == self.branch, "protected": n in protected}
                for n, c in sorted(self.catalog.refs.branches().items()) if self.rights.may_name(n)]

    def protect(self: Session, branch: str) -> None:
        self.authorize("protect", branch=branch)
        self.catalog.refs.protect(branch)

    def unprotect(self: Session, branch: str) -> None:
        self.authorize("unprotect", branch=branch)
        self.catalog.refs.unprotect(branch)

    def tags(self: Session) -> dict[str, str]:
        """The tags this login may read: name -> commit."""
        return {n: c for n, c in sorted(self.catalog.refs.tags().items()) if self.rights.may_name(n)}

    def delete_tag(self: Session, name: str) -> None:
        self.authorize("delete_tag", name=name)
        self.catalog.refs.delete_tag(name)

    def create_tag(self: Session, name: str, at: str | None = None) -> str:
        commit = self.authorize("tag", name=name, source=at).get("source") or self.head()
        _not_a_schema(self, name, commit)
        self.catalog.refs.create_tag(name, commit)
        return commit

    def log(self: Session, branch: str | None = None, table: str | None = None,
            limit: int | None = None) -> list[dict[str, Any]]:
        start = self.authorize("log", ref=branch).get("ref") or self.head()
        out = []
        for c in self.catalog.log(start):
            if table is not None and not _touches(self.catalog, c, table):
                continue
            out.append({"id": c.id, "parents": list(c.parents),
                        "time": dt.datetime.fromtimestamp(c.time, dt.timezone.utc), "author": c.author,
                        "message": c.message,
                        "tables": {t: {"inserted": s[0], "deleted": s[1], "updated": s[2]}
                                   for t, s in c.stats.items() if table is None or t == table}})
            if limit is not None and len(out) >= limit:
                break
        return out

    def diff(self: Session, a: str, b: str | None = None, table: str | None = None) -> Diff:
        if not a:
            raise errors.InvalidParameterValue("diff needs a branch, tag or commit to compare")
        commits = self.authorize("diff", a=a, b=b)
        return diff(self.catalog, commits["a"], commits.get("b") or self.head(), table)

    def merge(self: Session, source: str, into: str | None = None, strategy: str = "fail",
              message: str | None = None, author: str | None = None) -> MergeResult:
        self._no_txn("merge")
        self.authorize("merge", source=source, into=into)
        return merge(self.catalog, source, self._branch_or_current(into), strategy, message, author,
                     self._verify_checks)

    def _verify_checks(self: Session, ours: dict, merged: dict) -> None:
        """A merge's or revert's result holds its tables' CHECK constraints (23514 if not)
        and foreign keys (23503 if not)."""
        from .constraints import verify_merge
        from .foreign_keys import verify_merged

        verify_merge(self, ours, merged, self.catalog.reader)
        verify_merged(self, ours, merged)

    def reset(self: Session, branch: str | None, to: str) -> str:
        self._no_txn("reset a branch")
        if not to:
            raise errors.InvalidParameterValue("reset needs a commit, tag or branch to reset to")
        target = self.authorize("reset", branch=branch, target=to)["target"]
        b = self._branch_or_current(branch)
        self.catalog.refs.check_writable(b)
        while True:
            got = self.catalog.refs.branch(b)
            if got is None:
                raise errors.UndefinedObject(f'branch "{b}" does not exist')
            if self.catalog.refs.move_branch(b, got[1], target):
                return target

    def revert(self: Session, commit: str, message: str | None = None) -> str:
        self._no_txn("revert")
        self.authorize("revert", commit=commit, branch=None)
        return revert(self.catalog, commit, self._branch_or_current(None), message,
                      verify=self._verify_checks).commit

    def optimize(self: Session, table: str | None = None) -> list[dict[str, Any]]:
        self._no_txn("optimize")
        self.authorize("optimize", branch=None)
        branch = self._branch_or_current(None)
        done = compaction.compact(self.catalog, branch, table)
        self.fold_indexes(branch, [table] if table else [c.table for c in done])
        return [vars(c) for c in done]

    def vacuum(self: Session, retain: dt.timedelta | None = None,
               grace: dt.timedelta = DEFAULT_GRACE) -> dict[str, int]:
        """Delete the files no branch or tag reaches (see ``catalog.vacuum``)."""
        self.authorize("vacuum")
        return vacuum(self.catalog, grace, retain)

    def expire(self: Session, older_than: dt.timedelta | dt.datetime) -> int:
        """Drop commits older than ``older_than`` from history (see ``catalog.vacuum``)."""
        self.authorize("expire")
        return expire(self.catalog, older_than)

    def fold_indexes(self: Session, branch: str, tables: list[str]) -> None:
        """After compaction: fold rewritten and new rows into the tables' vector indexes
        (one more commit), so they are searched through the index again."""
        from ..catalog.compact import maybe_compact
        from ..catalog.transaction import Transaction
        from . import indexes

        txn = Transaction(self.catalog, branch, self.catalog.head(branch), after_publish=maybe_compact)
        try:
            if any([indexes.fold(self, txn, t, None) for t in tables if t in txn.tables and txn.tables[t].indexes]):
                txn.commit("fold compacted rows into " + ", ".join(f"{t} indexes" for t in tables))
        finally:
            txn.close()

    # -- SQL ---------------------------------------------------------------------------------
    def versioning_call(self: Session, stmt: ast.SelectStmt, params: list[Any]) -> Result | None:
        """``SELECT reeldb_xxx(...)`` with no FROM: run the command, one row back."""

        if stmt.fromClause or not stmt.targetList or len(stmt.targetList) != 1:
            return None
        rt = stmt.targetList[0]
        fc = rt.val
        if not isinstance(fc, ast.FuncCall):
            return None
        name = _func_name(fc)
        command = COMMANDS.get(name)
        if command is None:
            return None
        col = rt.name or name
        if self.describing:  # a Describe (or a prepare) runs nothing: only the column comes back
            return Result(pa.table({col: pa.array([], pa.string())}), [(col, "VARCHAR")], 0, "SELECT 0")
        args = [_const(a, params) for a in (fc.args or ())]
        value = command(self, *args)
        return Result(pa.table({col: pa.array([value])}), [(col, "VARCHAR")], 1, "SELECT 1")

    def table_function(self: Session, fc: ast.FuncCall, params: list[Any]) -> pa.Table | None:
        """``FROM reeldb_log()`` and friends: the rows, as Arrow."""
        fn = TABLE_FUNCTIONS.get(_func_name(fc))
        if fn is None:
            return None
        args = [_const(a, params) for a in (fc.args or ())]
        return fn(self, *args)


def _touches(cat: Any, c: Any, table: str) -> bool:
    if table in c.stats:
        return True
    parents = cat.parents(c.id)
    before = cat.commit(parents[0]).tables.get(table) if parents else None
    return c.tables.get(table) != before


def _func_name(fc: ast.FuncCall) -> str:
    return ".".join(n.sval for n in fc.funcname).lower()


def _const(node: ast.Node, params: list[Any]) -> Any:
    ok, value = constant_argument(node, params)
    if not ok:
        raise errors.FeatureNotSupported("arguments of reeldb_* functions must be constants or parameters")
    return value


def _arity(name: str, args: tuple, lo: int, hi: int) -> None:
    if not lo <= len(args) <= hi:
        raise errors.UndefinedFunction(f"function {name} takes {lo}..{hi} arguments, not {len(args)}")


def _sql_branch(s: Session, *a: Any) -> str:
    _arity("reeldb_branch", a, 1, 2)
    return s.create_branch(a[0], True, a[1] if len(a) > 1 else None)


def _sql_checkout(s: Session, *a: Any) -> str:
    _arity("reeldb_checkout", a, 1, 1)
    s.checkout(a[0])
    return s.head()


def _sql_merge(s: Session, *a: Any) -> str:
    _arity("reeldb_merge", a, 1, 3)
    r = s.merge(a[0], a[2] if len(a) > 2 else None, a[1] if len(a) > 1 and a[1] else "fail")
    return r.commit


def _sql_tag(s: Session, *a: Any) -> str:
    _arity("reeldb_tag", a, 1, 2)
    return s.create_tag(a[0], a[1] if len(a) > 1 else None)


def _sql_reset(s: Session, *a: Any) -> str:
    _arity("reeldb_reset", a, 1, 2)
    return s.reset(None, a[0]) if len(a) == 1 else s.reset(a[0], a[1])


def _sql_revert(s: Session, *a: Any) -> str:
    _arity("reeldb_revert", a, 1, 1)
    return s.revert(a[0])


def _sql_delete_branch(s: Session, *a: Any) -> str:
    _arity("reeldb_delete_branch", a, 1, 1)
    s.delete_branch(a[0])
    return a[0]


def _sql_protect(s: Session, *a: Any) -> str:
    _arity("reeldb_protect", a, 1, 1)
    s.protect(a[0])
    return a[0]


def _sql_unprotect(s: Session, *a: Any) -> str:
    _arity("reeldb_unprotect", a, 1, 1)
    s.unprotect(a[0])
    return a[0]


def _sql_optimize(s: Session, *a: Any) -> str:
    _arity("reeldb_optimize", a, 0, 1)
    done = s.optimize(a[0] if a else None)
    return "; ".join(f"{c['table']}: {c['fragments_before']} -> {c['fragments_after']} fragments" for c in done) \
        or "nothing to compact"


COMMANDS = {
    "reeldb_branch": _sql_branch, "reeldb_checkout": _sql_checkout, "reeldb_merge": _sql_merge,
    "reeldb_tag": _sql_tag, "reeldb_reset": _sql_reset, "reeldb_revert": _sql_revert,
    "reeldb_delete_branch": _sql_delete_branch, "reeldb_protect": _sql_protect,
    "reeldb_unprotect": _sql_unprotect, "reeldb_optimize": _sql_optimize,
}


def _log_table(s: Session, *a: Any) -> pa.Table:
    _arity("reeldb_log", a, 0, 2)
    rows = s.log(a[0] if a else None, a[1] if len(a) > 1 else None)
    return pa.table({
        "commit": pa.array([r["id"] for r in rows], pa.string()),
        "parents": pa.array([r["parents"] for r in rows], pa.list_(pa.string())),
        "time": pa.array([r["time"] for r in rows], pa.timestamp("us", tz="UTC")),
        "author": pa.array([r["author"] for r in rows], pa.string()),
        "message": pa.array([r["message"] for r in rows], pa.string()),
        **{k: pa.array([sum(t[k] for t in r["tables"].values()) for r in rows], pa.int64())
           for k in ("inserted", "deleted", "updated")},
    })


def _branches_table(s: Session, *a: Any) -> pa.Table:
    _arity("reeldb_branches", a, 0, 0)
    rows = s.branches()
    return pa.table({"name": pa.array([r["name"] for r in rows], pa.string()),
                     "commit": pa.array([r["commit"] for r in rows], pa.string()),
                     "current": pa.array([r["current"] for r in rows], pa.bool_()),
                     "protected": pa.array([r["protected"] for r in rows], pa.bool_())})


def _tags_table(s: Session, *a: Any) -> pa.Table:
    _arity("reeldb_tags", a, 0, 0)
    tags = sorted(s.tags().items())
    return pa.table({"name": pa.array([t for t, _ in tags], pa.string()),
                     "commit": pa.array([c for _, c in tags], pa.string())})


def _diff_table(s: Session, *a: Any) -> pa.Table:
    _arity("reeldb_diff", a, 2, 3)
    table, x, y = (a[0], a[1], a[2]) if len(a) == 3 else (None, a[0], a[1])
    return s.diff(x, y, table).to_arrow()


TABLE_FUNCTIONS = {"reeldb_log": _log_table, "reeldb_branches": _branches_table, "reeldb_tags": _tags_table,
                   "reeldb_diff": _diff_table}


def _not_a_schema(s: Session, name: str, commit: str) -> None:
    """A branch or tag is a schema in SQL: its name must not be a schema (CREATE SCHEMA) of
    the commit it starts from or of the connection's branch (42P06), or ``name.table``
    would mean two things."""
    from ..catalog import objects

    key = objects.key(objects.SCHEMA, name)
    if key in s.catalog.objects(commit) or (s.branch is not None and key in s.catalog_objects()):
        raise errors.ProgrammingError(f'cannot name a branch or tag "{name}": a schema of that name exists '
                                      "(DROP SCHEMA it first, or choose another name)", sqlstate="42P06")
