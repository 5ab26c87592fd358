"""Top-k of one vector column for one or many queries: the plan (exact or index) and its
execution, shared by the SQL top-k path and ``db.search``.

The filter has already run (DuckDB gives the candidate rows), so the planner knows how
many rows it keeps, not an estimate. It compares what each path would score:
exact search scores every candidate; an HNSW walk visits about ``VISITS_PER_EF *
ef_search`` rows (with a filter, a longer candidate list keeps its recall), an IVF search
the rows of its probed lists; each side is costed in bytes touched. The index is walked with the filter applied during traversal, then every
row it returns is scored exactly on the stored vectors and merged with the rows it does
not cover (fragments written after it, NULL vectors): so quantized indexes are re-ranked
on full vectors, and the result always has k rows when k rows match — when the walk
finds fewer, the query falls back to exact search over the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import errors
from ..format.manifest import IndexDef
from ..index import ann, versioned
from ..index.exact import score, score_many, topk

if TYPE_CHECKING:
    from ..engine.engine import BoundTable
    from ..format.manifest import Column
    from .session import Session

PRESELECT = 8  # a fragment scanned for k rows hands on its best k once it has 8k or more
EF_SEARCH = 40  # pgvector's defaults
PROBES = 1
VISITS_PER_EF = 24  # rows an HNSW walk (m = 16) scores per unit of ef_search, measured
# cost of a row beyond its vector's bytes: a graph walk's random hop and neighbour list, an
# IVF list entry, an exact scan of gathered candidates (bytes; from bench_vector.py timings)
GRAPH_ROW_OVERHEAD, LIST_ROW_OVERHEAD, SCAN_ROW_OVERHEAD = 256, 16, 64
NEAREST = {  # vector function -> (index metric, the order that means nearest first)
    "cosine_distance": ("cosine", False), "cosine_similarity": ("cosine", True),
    "l2_distance": ("l2", False),
    "negative_inner_product": ("ip", False), "inner_product": ("ip", True),
}
METRIC_NAMES = {"cosine": "cosine_distance", "l2": "l2_distance", "ip": "negative_inner_product"}  # <=> <-> <#>


@dataclass
class Choice:
    """What the planner picked, and why (``EXPLAIN`` prints it)."""

    index: IndexDef | None
    reason: str
    effort: int = 0


@dataclass
class Mapping:
    """An index object seen from one bound snapshot: which labels are rows of it."""

    opened: versioned.Opened
    label_gpos: np.ndarray  # label -> global position, -1 when dead (deleted, rewritten, NULL)
    gpos_label: np.ndarray  # global position -> label, -1 when the index does not hold the row
    bits: np.ndarray | None  # live labels as a faiss bitmap; None when every label is live
    alive: int
    uncovered: np.ndarray  # live rows the index does not hold, scored exactly


INT_SETTINGS = {"hnsw.ef_search": (EF_SEARCH, 1, 1000), "ivfflat.probes": (PROBES, 1, 32768)}


def int_setting(name: str, raw: str) -> int:
    """``SET hnsw.ef_search`` / ``ivfflat.probes``: the value, or 22023."""
    _, lo, hi = INT_SETTINGS[name]
    try:
        v = int(raw)
    except ValueError:
        raise errors.InvalidParameterValue(f'invalid value for parameter "{name}": "{raw}"') from None
    if not lo <= v <= hi:
        raise errors.InvalidParameterValue(f'{v} is outside the valid range for parameter "{name}" ({lo} .. {hi})')
    return v


def effort(s: Session, ix: IndexDef) -> int:
    """ef_search or probes as the session set it (checked at SET), else pgvector's default."""
    name = "ivfflat.probes" if ix.method == "ivfflat" else "hnsw.ef_search"
    raw = s.settings.get(name)
    return INT_SETTINGS[name][0] if raw is None else int(raw)


def device(s: Session) -> str:
    return s.settings.get("reeldb.device", "cpu")


def choose(s: Session, bt: BoundTable, col: Column, metric: str, descending: bool, rows: int,
           want: int) -> Choice:
    if device(s) != "cpu":
        return Choice(None, f"exact on {device(s)} (reeldb.device)")
    built = [ix for ix in bt.manifest.indexes if ix.column == col.id and ix.key]  # not: expression, untrained
    usable = [ix for ix in built if NEAREST.get(metric) == (versioned.metric_of(ix), descending)]
    if not usable:
        why = "no index on the column" if not any(ix.column == col.id for ix in bt.manifest.indexes) \
            else "no index built on the column" if not built \
            else f"no index serves {metric} {'DESC' if descending else 'ASC'}"
        return Choice(None, f"exact: {why}")
    ix = usable[0]
    if rows <= want:
        return Choice(None, f"exact: {rows} candidate rows, no more than k")
    mp = mapping(s, bt, ix)
    e = effort(s, ix)
    total = max(mp.alive, 1)
    row_bytes = col.type.row_shape[0] * (2 if col.type.kind == "halfvec" else 4)
    if ix.method == "ivfflat":
        lists = ix.options["lists"]
        visits = total * min(e, lists) / lists
        walk = visits * (row_bytes + LIST_ROW_OVERHEAD)
        enough = rows * min(e, lists) / lists >= want  # allowed rows expected in the probed lists
    else:
        # a walk that may return only a share s of the rows keeps about the same length but
        # finds worse rows; a candidate list of ef / sqrt(s) held recall@10 within ~0.01 of
        # the unfiltered walk from s = 10% to 100% (bench_ann_libs.py)
        share = min(1.0, rows / total)
        e = min(1000, int(np.ceil(max(e, want * ann.RERANK[ix.options["quantization"]]) / np.sqrt(share))))
        visits = VISITS_PER_EF * e
        walk = visits * (row_bytes + GRAPH_ROW_OVERHEAD)
        enough = True
    scan = rows * (row_bytes + SCAN_ROW_OVERHEAD)
    if walk >= scan or not enough:
        return Choice(None, f"exact: {rows} candidate rows cost less than index {ix.name}'s walk "
                            f"(~{int(min(visits, total))} rows visited)", e)
    return Choice(ix, f"index {ix.name} ({ix.method}, {ix.opclass}), ~{int(visits)} rows visited", e)


def mapping(s: Session, bt: BoundTable, ix: IndexDef) -> Mapping:
    got = bt.ann.get(ix.key)
    if got is not None:
        return got
    opened = versioned.open_index(s.catalog.reader, ix.key)
    total = int(bt.offsets[-1])
    label_gpos = np.full(opened.covered.labels, -1, np.int64)
    gpos_label = np.full(total, -1, np.int64)
    live = np.zeros(total, bool)
    live[bt.live_positions()] = True
    valid = ~bt.null_vectors(ix.column)
    covered = dict(opened.covered.fragments)
    for i, f in enumerate(bt.manifest.fragments):
        base = opened.bases.get(f.id)
        if base is None or covered[f.id] != f.rows:
            continue
        g = np.arange(bt.offsets[i], bt.offsets[i] + f.rows)
        ok = np.flatnonzero(live[g] & valid[g])
        label_gpos[base + ok] = g[ok]
        gpos_label[g[ok]] = base + ok
    alive_mask = label_gpos >= 0
    alive = int(alive_mask.sum())
    bits = None if alive == len(label_gpos) else ann.bitmap(alive_mask)
    uncovered = np.flatnonzero(live & (gpos_label < 0)).astype(np.int64)
    got = bt.ann[ix.key] = Mapping(opened, label_gpos, gpos_label, bits, alive, uncovered)
    return got


def index_rows(s: Session, bt: BoundTable, ix: IndexDef, e: int, queries: np.ndarray, want: int,
               gpos: np.ndarray | None, cache: dict | None = None) -> list[np.ndarray | None]:
    """Per query, the rows to score exactly: what the index walk found among the allowed
    rows, plus the rows it does not hold; None where the walk found too few (the caller
    searches that query exactly)."""
    mp = mapping(s, bt, ix)
    if gpos is None:
        bits, extra, allowed = mp.bits, mp.uncovered, mp.alive
    else:
        got = cache.get(ix.key) if cache is not None else None
        if got is None:
            labels = mp.gpos_label[gpos]
            held = labels >= 0
            mask = np.zeros(len(mp.label_gpos), bool)
            mask[labels[held]] = True
            got = (ann.bitmap(mask), gpos[~held], int(held.sum()))
            if cache is not None:
                cache[ix.key] = got
        bits, extra, allowed = got
    q = ix.options["quantization"]
    kq = min(want * ann.RERANK[q], allowed)
    if kq == 0:
        return [extra for _ in queries]
    found = ann.search(mp.opened.index, ann.prepare(queries, versioned.metric_of(ix), q), kq, e, bits)
    out: list[np.ndarray | None] = []
    for row in found:
        hit = row[row >= 0]
        out.append(None if len(hit) < kq else np.union1d(mp.label_gpos[hit], extra))
    return out


def best(s: Session, bt: BoundTable, col: Column, metric: str, queries: np.ndarray, want: int,
         descending: bool, nulls_first: bool, gpos: np.ndarray, filtered: bool,
         cache: dict | None = None, gathered: Any = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], Choice]:
    """Per query, the ``want`` best rows among ``gpos`` (sorted global positions) and
    their scores, in order; and the plan that found them."""
    choice = choose(s, bt, col, metric, descending, len(gpos), want)
    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(queries)
    if choice.index is not None:
        rows = index_rows(s, bt, choice.index, choice.effort, queries, want, gpos if filtered else None, cache)
        for i, r in enumerate(rows):
            if r is not None:
                results[i] = exact(s, bt, col, metric, queries[i:i + 1], want, descending, nulls_first, r)[0]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        got = exact(s, bt, col, metric, queries[todo], want, descending, nulls_first, gpos, gathered)
        for i, r in zip(todo, got):
            results[i] = r
    return results, choice  # type: ignore[return-value]


def exact(s: Session, bt: BoundTable, col: Column, metric: str, queries: np.ndarray, want: int,
          descending: bool, nulls_first: bool, gpos: np.ndarray,
          gathered: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact top-``want`` of the rows at ``gpos`` (sorted) for each query, reading each
    fragment's vectors once for the whole batch."""
    frags = bt.manifest.fragments
    idx = np.searchsorted(bt.offsets, gpos, side="right") - 1
    bounds = np.searchsorted(idx, np.arange(len(frags) + 1))
    dev = device(s)
    pos_parts: list[list[np.ndarray]] = [[] for _ in queries]
    score_parts: list[list[np.ndarray]] = [[] for _ in queries]
    for i in range(len(frags)):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        frag = frags[i]
        part = gpos[lo:hi]
        rows = None if hi - lo == frag.rows else part - bt.offsets[i]
        if col.id not in dict(frag.mats):
            for j in range(len(queries)):
                pos_parts[j].append(part)
                score_parts[j].append(np.full(hi - lo, np.nan, np.float32))
            continue
        mat = s.catalog.reader.matrix(bt.manifest.table_id, frag, col)
        norms = bt.norms(col.id, i)
        if dev != "cpu":
            from ..index import device as accel

            key = f"{bt.manifest.table_id}/{frag.id}/{col.id}"
            local, sc = accel.topk(dev, key, mat, norms, queries, metric, rows, want, descending)
            for j in range(len(queries)):
                pos_parts[j].append(local[j] + bt.offsets[i])
                score_parts[j].append(sc[j])
            continue
        got = gathered(i, mat, norms, rows) if gathered is not None and rows is not None else None
        if len(queries) == 1:
            sc1 = score(got[0], got[1], queries[0], metric) if got is not None else \
                score(mat, norms, queries[0], metric, rows)
            if len(sc1) > PRESELECT * want:  # this fragment's best (ties included) in row order
                keep = np.sort(topk(sc1, want, descending, nulls_first))
                part, sc1 = part[keep], sc1[keep]
            pos_parts[0].append(part)
            score_parts[0].append(sc1)
            continue
        sc = score_many(mat, norms, queries, metric, rows)
        for j in range(len(queries)):
            keep = topk(sc[:, j], want, descending, nulls_first)
            pos_parts[j].append(part[keep])
            score_parts[j].append(sc[keep, j])
    out = []
    for j in range(len(queries)):
        if not pos_parts[j]:
            out.append((np.empty(0, np.int64), np.empty(0, np.float32)))
            continue
        pos = np.concatenate(pos_parts[j])
        sc = np.concatenate(score_parts[j])
        if len(queries) > 1 or dev != "cpu":  # per-fragment winners: back in row order, so
            order = np.argsort(pos, kind="stable")  # ties go to the earlier row as in one pass
            pos, sc = pos[order], sc[order]
        keep = topk(sc, want, descending, nulls_first)
        out.append((pos[keep], sc[keep]))
    return out
