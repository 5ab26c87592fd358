"""Compaction: rewrite small and mostly-deleted fragments into large ones.

Rows keep their ``_rowid``, their values and their relative order; blob cells are copied
as references, so no blob bytes move. Compaction is an ordinary commit: it re-bases over
concurrent inserts, and gives way (40001, retried later) when a concurrent commit deleted
rows of a fragment it rewrote.

Automatic compaction is tiered, as in log-structured stores: fragments are grouped by
size tier (powers of ``TIER``); when a tier holds ``TIER`` fragments they become one of
the next tier. A table written one row per commit thus keeps O(TIER * log N) fragments
and each row is rewritten about log_TIER(N) times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import errors
from ..format.fragment import concat_batches, write_fragment
from ..format.manifest import Fragment, TableManifest
from ..format.types import MatrixColumn
from .catalog import Catalog
from .delta import take_batch
from .transaction import Transaction

TARGET_ROWS = 65536  # rows per fragment after compaction (as bulk writes make them)
TIER = 16


@dataclass
class Compacted:
    table: str
    fragments_before: int
    fragments_after: int
    rows_rewritten: int


def _mostly_deleted(f: Fragment) -> bool:
    return f.ndel * 2 > f.rows


def full_groups(tm: TableManifest) -> list[list[Fragment]]:
    """What ``optimize`` rewrites: runs of small or mostly-deleted fragments, in table
    order, packed up to ``TARGET_ROWS`` live rows each."""
    groups: list[list[Fragment]] = []
    cur: list[Fragment] = []
    rows = 0
    for f in tm.fragments:
        small = f.live < TARGET_ROWS // 2
        if not (small or _mostly_deleted(f) or f.live == 0):
            if cur:
                groups.append(cur)
            cur, rows = [], 0
            continue
        if cur and rows + f.live > TARGET_ROWS:
            groups.append(cur)
            cur, rows = [], 0
        cur.append(f)
        rows += f.live
    if cur:
        groups.append(cur)
    return [g for g in groups if len(g) > 1 or g[0].ndel]


def tier_groups(tm: TableManifest) -> list[list[Fragment]]:
    """What automatic compaction rewrites now: a full size tier, and any large fragment
    that is mostly deleted. Small deleted-from fragments wait for their tier's turn."""
    tiers: dict[int, list[Fragment]] = {}
    out: list[list[Fragment]] = []
    for f in tm.fragments:
        if f.rows >= TARGET_ROWS // TIER and _mostly_deleted(f):
            out.append([f])
        elif f.rows < TARGET_ROWS // 2:
            tiers.setdefault(int(math.log(max(f.rows, 1), TIER)), []).append(f)
    out += [frags for frags in tiers.values() if len(frags) >= TIER]
    return out


def rewrite(cat: Catalog, tm: TableManifest, group: list[Fragment]) -> list[Fragment]:
    """The live rows of ``group`` as new fragments of up to ``TARGET_ROWS`` rows."""
    reader = cat.reader
    parts = [reader.batch(tm.table_id, f, tm.schema, np.flatnonzero(reader.live_mask(f)))
             for f in group if f.live]
    if not parts:
        return []
    batch = concat_batches(parts, tm.schema)
    out = []
    for start in range(0, len(batch), TARGET_ROWS):
        part = take_batch(batch, np.arange(start, min(len(batch), start + TARGET_ROWS)))
        part.matrices = {cid: MatrixColumn(np.ascontiguousarray(m.values), m.valid)
                         for cid, m in part.matrices.items()}
        out.append(write_fragment(cat.store, tm.table_id, part))
    return out


def compact(cat: Catalog, branch: str, table: str | None = None, full: bool = True,
            author: str | None = None) -> list[Compacted]:
    """Compact one table (or all) of a branch in one commit; returns what changed."""
    txn = Transaction(cat, branch, cat.head(branch))
    if table is not None:
        txn.table(table)  # must exist
    done = []
    for name, tm in sorted(txn.tables.items()):
        if table is not None and name != table:
            continue
        groups = full_groups(tm) if full else tier_groups(tm)
        if not groups:
            continue
        before = len(tm.fragments)
        rows = 0
        for g in groups:
            new = rewrite(cat, txn.table(name), g)
            txn.replace(name, g, new)
            rows += sum(f.live for f in g)
        done.append(Compacted(name, before, len(txn.table(name).fragments), rows))
    if done:
        what = ", ".join(f"{c.table} {c.fragments_before}->{c.fragments_after} fragments" for c in done)
        txn.commit(("optimize " if full else "auto-compact ") + what, author)
    return done


def maybe_compact(cat: Catalog, branch: str, tables: list[str], head: str) -> None:
    """After a commit (``head``, just made): compact the tables whose small fragments
    filled a tier. Never fails the write that triggered it: a lost race is left for the
    next commit."""
    if not cat.config.auto_compact:
        return
    try:
        snap = cat.snapshot(head)
        for name in tables:
            tm = snap.get(name)
            if tm is not None and tier_groups(tm):
                compact(cat, branch, name, full=False)
    except (errors.SerializationFailure, errors.BranchProtected, errors.StorageError):
        pass  # the write is committed; compaction waits for a later commit
