"""Preference labelling: pairs of rows to compare, and labels written back as commits.

Labels go to a JSON column (``human_preference`` by default) of the rows on a labelling
branch, one commit per batch, so they are reviewed and merged like any other change. Each
label is a key of its own in each of the two rows' JSON objects (``"<labeller>:<a>-<b>"``),
so labellers never overwrite each other, and labelling a pair again replaces only that
labeller's earlier verdict. A batch is read-modify-write in one transaction: when another
labeller's commit touched the same rows first, the commit conflicts (40001) and the batch
is read again and retried on top of it, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors
from .query import quote_ident

if TYPE_CHECKING:
    from ..connection import Connection
    from .snapshots import Snapshots

MAX_BATCH = 500
MAX_ATTEMPTS = 20
VERDICTS = {"a": ("win", "loss"), "b": ("loss", "win"), "tie": ("tie", "tie")}
_LABELLER = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


class Labelling:
    """Labels for the tables of one database, written to ``branch`` (created from the
    default ref when missing) through connections that ``connect(branch)`` opens."""

    def __init__(self, snapshots: Snapshots, branch: str, column: str,
                 connect: Callable[[str], Connection]):
        self.snapshots = snapshots
        self.branch = branch
        self.column = column
        self._connect = connect

    def ensure_branch(self) -> None:
        if not any(b["name"] == self.branch for b in self.snapshots.refs()["branches"]):
            self.snapshots.create_branch(self.branch)

    def pairs(self, table: str, by: str, count: int, offset: int, seed: int) -> dict[str, Any]:
        """Pairs of rows with the same value of ``by`` (the same prompt), in an order fixed
        by ``seed``, from the labelling branch."""
        self.ensure_branch()
        with self.snapshots.open(self.branch) as view:
            kinds = {c["name"]: c["kind"] for c in self.snapshots.columns(view, table)}
            if kinds.get(by) not in ("text", "number"):
                raise errors.UndefinedColumn(f'table "{table}" has no text or number column "{by}" to pair rows by')
            if kinds.get(self.column) != "json":
                raise errors.UndefinedColumn(f'table "{table}" has no JSON column "{self.column}" for labels '
                                             f'on branch "{self.branch}"')
            col, tbl = quote_ident(by), quote_ident(table)
            got = view.execute(
                f"SELECT a._rowid, b._rowid, CAST(a.{col} AS TEXT) FROM {tbl} a JOIN {tbl} b "
                f"ON a.{col} = b.{col} AND a._rowid < b._rowid "
                f"ORDER BY (a._rowid * 7919 + b._rowid * 104729 + $1) % 1000003, a._rowid, b._rowid "
                f"LIMIT {int(count)} OFFSET {int(offset)}", (seed % 1000003,)).fetchall()
            commit = view.head
        return {"branch": self.branch, "commit": commit, "column": self.column, "by": by,
                "pairs": [{"a": str(a), "b": str(b), "value": v} for a, b, v in got]}

    def write(self, table: str, labeller: str, labels: list[dict[str, Any]]) -> dict[str, Any]:
        """Write one batch of ``{"a": id, "b": id, "winner": "a" | "b" | "tie"}`` as one
        commit on the labelling branch; returns the commit and how many tries it took."""
        if not _LABELLER.match(labeller or ""):
            raise errors.InvalidParameterValue("a labeller name is 1 to 64 letters, digits or _.@+-")
        if not labels or len(labels) > MAX_BATCH:
            raise errors.InvalidParameterValue(f"a batch holds 1 to {MAX_BATCH} labels, not {len(labels)}")
        per_row: dict[int, dict[str, Any]] = {}
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for label in labels:
            a, b, winner = _rowid(label.get("a")), _rowid(label.get("b")), label.get("winner")
            if winner not in VERDICTS or a == b:
                raise errors.InvalidParameterValue(f"a label names two rows and a winner (a, b or tie), not {label!r}")
            key = f"{labeller}:{min(a, b)}-{max(a, b)}"
            for me, other, result in ((a, b, VERDICTS[winner][0]), (b, a, VERDICTS[winner][1])):
                per_row.setdefault(me, {})[key] = {"vs": str(other), "result": result, "at": now}
        self.ensure_branch()
        tbl, col = quote_ident(table), quote_ident(self.column)
        message = f"labels: {len(labels)} pair{'s' if len(labels) != 1 else ''} of {table} by {labeller}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            db = self._connect(self.branch)
            try:
                with db.transaction(message=message, author=labeller):
                    ids = sorted(per_row)
                    current = dict(db.execute(f"SELECT _rowid, {col} FROM {tbl} WHERE _rowid = ANY($1)",
                                              (ids,)).fetchall())
                    missing = [i for i in ids if i not in current]
                    if missing:
                        raise errors.UndefinedObject(f"rows {missing[:5]} are not in {table} on branch {self.branch}")
                    for rowid in ids:
                        old = current[rowid]
                        if old is not None and not isinstance(old, dict):
                            raise errors.DatatypeMismatch(f"{self.column} of row {rowid} is not a JSON object")
                        merged = {**(old or {}), **per_row[rowid]}
                        db.execute(f"UPDATE {tbl} SET {col} = CAST($1 AS JSONB) WHERE _rowid = $2",
                                   (json.dumps(merged), rowid))
                return {"branch": self.branch, "commit": db.head, "labels": len(labels), "attempts": attempt}
            except errors.SerializationFailure:
                time.sleep(random.uniform(0.01, 0.05) * attempt)
            finally:
                db.close()
        raise errors.SerializationFailure(f"labels for {table} kept conflicting with other labellers' commits "
                                          f"after {MAX_ATTEMPTS} tries; send them again")


def _rowid(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.InvalidTextRepresentation(f"a row id is an integer, not {value!r}") from None
