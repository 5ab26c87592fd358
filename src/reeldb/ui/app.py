"""The web app's routes: the page, its JSON API (``/api/...``), media and frames.

Every route sits behind ``guard.Guard`` (the token, a user's password, or a loopback
Host). Every read goes through ``Snapshots``: a read-only connection with the serving
login's rights; the one write, a batch of labels, goes through ``labels.Labelling``.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import errors
from .cells import png, summarise
from .guard import Guard
from .labels import Labelling
from .logins import CURRENT_USER, VerifiedCache
from .media import Stats, cache_control, ranged
from .projection import pca_2d
from .query import MAX_LIMIT, compare_selects, map_select, parse_view, quote_ident
from .query import grid_select as build_grid
from .snapshots import Snapshots

_STATUS = {"42P01": 404, "42703": 404, "42704": 404, "57014": 408, "42501": 403, "3F000": 404, "XX001": 500}


def error_response(e: errors.Error) -> JSONResponse:
    return JSONResponse({"error": e.message if hasattr(e, "message") and e.message else str(e),
                         "sqlstate": e.sqlstate}, status_code=_STATUS.get(e.sqlstate, 400))


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data)


def _media_path(commit: str, table: str, column: str, rowid: int) -> str:
    return f"{quote(commit, safe='')}/{quote(table, safe='')}/{quote(column, safe='')}/{rowid}"


MAX_BODY = 1 << 20  # bytes of a POSTed batch of labels
MAP_MAX_POINTS = 5000  # rows one embeddings map projects (their vectors are held in memory)
HISTORY_MAX_ROWS = 100_000  # a commit that changed more rows of a table is not diffed for a row's history


def build_app(snapshots: Snapshots, token: str | None = None, labelling: Labelling | None = None,
              users: VerifiedCache | None = None, embed: Callable[[str], Any] | None = None) -> Starlette:
    """The Starlette application over ``snapshots`` (or a per-user stand-in); ``token`` or
    ``users`` (the database's logins) guard every route; ``labelling`` (None: the app
    writes nothing) takes preference labels; ``embed`` (text -> vector) serves search by text."""
    stats = Stats()
    static = resources.files("reeldb.ui") / "static"

    def api(handler: Any) -> Any:
        """A JSON route: reeldb errors become JSON with their SQLSTATE."""
        if inspect.iscoroutinefunction(handler):
            async def async_endpoint(request: Request) -> Response:
                try:
                    return await handler(request)
                except errors.Error as e:
                    return error_response(e)

            return async_endpoint

        def endpoint(request: Request) -> Response:
            try:
                return handler(request)
            except errors.Error as e:
                return error_response(e)

        return endpoint

    def index(request: Request) -> Response:
        html = (static / "index.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8", headers={"cache-control": "no-store"})

    def refs(request: Request) -> Response:
        return _json(snapshots.refs())

    def tables(request: Request) -> Response:
        with snapshots.open(request.query_params.get("ref")) as view:
            out = [{"name": t, "columns": snapshots.columns(view, t)} for t in view.tables()]
            return _json({"commit": view.head, "tables": out})

    def rows(request: Request) -> Response:
        table = request.path_params["table"]
        started = time.perf_counter()
        view_spec = parse_view(table, request.query_params)
        with snapshots.open(request.query_params.get("ref")) as view:
            commit = view.head
            columns = snapshots.columns(view, table)
            kinds = {c["name"]: c["kind"] for c in columns}
            query_vector = None
            wants_order = (view_spec.similar_rowid, view_spec.near, view_spec.near_text) != (None, None, None)
            if wants_order and view_spec.similar_column is None:
                vectors = [c["name"] for c in columns if c["kind"] == "vector"]
                if not vectors:
                    raise errors.DatatypeMismatch(f'table "{table}" has no vector column to compare rows by')
                view_spec.similar_column = vectors[0]
            if view_spec.near is not None:
                query_vector = np.asarray(view_spec.near, dtype=np.float32)
            elif view_spec.near_text is not None:
                if embed is None:
                    raise errors.FeatureNotSupported("search by text needs an embedding function: "
                                                     "start reeldb ui with --embed module:function")
                try:
                    query_vector = np.asarray(embed(view_spec.near_text), dtype=np.float32).reshape(-1)
                except errors.Error:
                    raise
                except Exception as e:  # the user's function: say what it raised
                    raise errors.DataError(f"the embedding function failed: {type(e).__name__}: {e}") from None
            if query_vector is not None:
                if kinds.get(view_spec.similar_column) != "vector":
                    raise errors.DatatypeMismatch(f'column "{view_spec.similar_column}" is not a vector column')
                if not np.isfinite(query_vector).all():
                    raise errors.DataError("the vector to search by has NaN or infinite values")
            if view_spec.similar_rowid is not None:
                if view_spec.similar_column is None:
                    vectors = [c["name"] for c in columns if c["kind"] == "vector"]
                    if not vectors:
                        raise errors.DatatypeMismatch(f'table "{table}" has no vector column to compare rows by')
                    view_spec.similar_column = vectors[0]
                if kinds.get(view_spec.similar_column) != "vector":
                    raise errors.DatatypeMismatch(f'column "{view_spec.similar_column}" is not a vector column')
                got = view.execute(f"SELECT {quote_ident(view_spec.similar_column)} FROM {quote_ident(table)} "
                                   "WHERE _rowid = $1",
                                   (view_spec.similar_rowid,)).fetchone()
                if got is None or got[0] is None:
                    raise errors.InvalidParameterValue(
                        f"row {view_spec.similar_rowid} of {table} has no {view_spec.similar_column} to compare with")
                query_vector = np.asarray(got[0], dtype=np.float32)
            q = build_grid(view_spec, kinds, query_vector)
            fetched = view.execute(q.sql, q.params).fetchall()
        more = len(fetched) > view_spec.limit
        fetched = fetched[: view_spec.limit]
        ncols = len(columns)
        out_rows = []
        for r in fetched:
            rowid = r[0]
            cells = []
            for i, col in enumerate(columns):
                path = _media_path(commit, table, col["name"], rowid)
                cells.append(summarise(r[1 + i], lambda p=path: f"/media/{p}"))
            row: dict[str, Any] = {"id": str(rowid), "cells": cells}
            if view_spec.similar_column is not None:
                d = r[1 + ncols]
                row["distance"] = d if d is None or math.isfinite(d) else str(d)
            out_rows.append(row)
        nxt = None
        if more:
            if view_spec.sort is None and view_spec.similar_column is None:
                nxt = {"after": str(fetched[-1][0])}
            else:
                nxt = {"offset": view_spec.offset + view_spec.limit}
        return _json({"table": table, "commit": commit, "columns": columns, "rows": out_rows, "next": nxt,
                      "similar": None if view_spec.similar_column is None else
                      {"column": view_spec.similar_column,
                       "row": None if view_spec.similar_rowid is None else str(view_spec.similar_rowid),
                       "text": view_spec.near_text, "vector": view_spec.near is not None},
                      "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)})

    def facets(request: Request) -> Response:
        """What the sidebar offers for one column: min/max of a number, the commonest values
        of a text column (up to 20, with counts), the keys of a JSON column's first rows."""
        table = request.path_params["table"]
        column = request.query_params.get("column", "")
        with snapshots.open(request.query_params.get("ref")) as view:
            kinds = {c["name"]: c["kind"] for c in snapshots.columns(view, table)}
            kind = kinds.get(column)
            if kind is None:
                raise errors.UndefinedColumn(f'column "{column}" does not exist')
            col, tbl = quote_ident(column), quote_ident(table)
            out: dict[str, Any] = {"column": column, "kind": kind}
            if kind == "number":
                lo, hi = view.execute(f"SELECT min({col}), max({col}) FROM {tbl}").fetchone()
                out.update(min=summarise(lo, str), max=summarise(hi, str))
            elif kind in ("text", "bool"):
                got = view.execute(f"SELECT CAST({col} AS TEXT), count(*) FROM {tbl} GROUP BY 1 "
                                   f"ORDER BY 2 DESC, 1 LIMIT 21").fetchall()
                out["values"] = [{"value": v, "count": n} for v, n in got[:20]]
                out["more"] = len(got) > 20
            elif kind == "json":
                got = view.execute(f"SELECT {col} FROM {tbl} WHERE {col} IS NOT NULL LIMIT 200").fetchall()
                keys = sorted({k for (v,) in got if isinstance(v, dict) for k in v})
                out["keys"] = keys[:50]
            return _json(out)

    def row_detail(request: Request) -> Response:
        table = request.path_params["table"]
        rowid = _rowid(request.path_params["rowid"])
        with snapshots.open(request.query_params.get("ref")) as view:
            commit = view.head
            columns = snapshots.columns(view, table)
            got = view.execute(f"SELECT * FROM {quote_ident(table)} WHERE _rowid = $1",
                               (rowid,)).fetchone()
            if got is None:
                raise errors.UndefinedObject(f"row {rowid} is not in {table} at commit {commit}")
        cells = {}
        for col, value in zip(columns, got):
            path = _media_path(commit, table, col["name"], rowid)
            cells[col["name"]] = summarise(value, lambda p=path: f"/media/{p}", full=True)
        return _json({"table": table, "commit": commit, "id": str(rowid), "columns": columns, "cells": cells})

    def row_history(request: Request) -> Response:
        """The commits (of the last ``n``, newest first) that added, changed or removed one
        row, found by diffing each commit that touched the table against its first parent.
        A commit that changed more than ``HISTORY_MAX_ROWS`` rows of the table is listed as
        not checked rather than diffed (a bulk load would cost seconds)."""
        table = request.path_params["table"]
        rowid = _rowid(request.path_params["rowid"])
        limit = min(max(_int(request.query_params.get("n"), 20), 1), 100)
        out = []
        with snapshots.open(request.query_params.get("ref")) as view:
            snapshots.columns(view, table)  # 42P01 for a table this snapshot lacks
            for c in view.log(table=table, limit=limit):
                entry = {"commit": c["id"], "time": str(c["time"]), "author": c["author"], "message": c["message"]}
                counts = c["tables"].get(table, {})
                touched = sum(int(counts.get(k, 0)) for k in ("inserted", "deleted", "updated"))
                if not c["parents"]:
                    entry["change"] = None
                elif touched > HISTORY_MAX_ROWS:
                    entry["change"] = "not checked"
                    entry["rows"] = touched
                else:
                    entry["change"], entry["columns"] = _row_change(view.diff(c["parents"][0], c["id"], table).get(table),
                                                                    rowid)
                if entry["change"] is not None:
                    out.append(entry)
        return _json({"table": table, "id": str(rowid), "commits": out, "checked": limit})

    def compare(request: Request) -> Response:
        """Two refs side by side on the same filter: per side the rows and the metric's
        mean, min and max; and, for the first ``groups`` values of ``by`` (the same prompt),
        the rows each side has."""
        table = request.path_params["table"]
        q = request.query_params
        a = q.get("a") or snapshots.default_ref
        b = q.get("b") or snapshots.default_ref
        spec = parse_view(table, q)
        groups = min(max(_int(q.get("groups"), 12), 1), 100)
        commits = {"a": snapshots.commit_of(a), "b": snapshots.commit_of(b)}  # both checked against the rights
        with snapshots.open(commits["b"]) as view:
            columns = snapshots.columns(view, table)
            kinds = {c["name"]: c["kind"] for c in columns}
            by = q.get("by") or ("prompt" if "prompt" in kinds else None)
            if by is None:
                raise errors.UndefinedColumn(f'table "{table}" has no prompt column: name one to compare by (by=)')
            metric = q.get("metric") or None
            agg, rows = compare_selects(spec, kinds, commits["a"], commits["b"], by, metric, groups)
            totals = view.execute(agg.sql, agg.params).fetchall()
            got = view.execute(rows.sql, rows.params).fetchall()
        refs = {"a": a, "b": b}
        sides = {side: {"ref": refs[side], "commit": commits[side], "rows": n, "mean": summarise(mean, str),
                        "min": summarise(lo, str), "max": summarise(hi, str)}
                 for side, n, mean, lo, hi in totals}
        by_index = next(i for i, c in enumerate(columns) if c["name"] == by)
        grouped: dict[Any, dict[str, list[Any]]] = {}
        order: list[Any] = []
        for r in got:
            side, rowid, cells = r[0], r[1], r[2:]
            value = cells[by_index]
            if value not in grouped:
                grouped[value] = {"a": [], "b": []}
                order.append(value)
            grouped[value][side].append({"id": str(rowid), "cells": [
                summarise(v, lambda c=col["name"], rid=rowid, s=side: "/media/" + _media_path(commits[s], table, c, rid))
                for v, col in zip(cells, columns)]})
        return _json({"table": table, "by": by, "metric": metric, "columns": columns, **sides,
                      "groups": [{"value": summarise(v, str), **grouped[v]} for v in order]})

    def diff(request: Request) -> Response:
        a = request.query_params.get("a") or snapshots.default_ref
        b = request.query_params.get("b") or snapshots.default_ref
        table = request.query_params.get("table") or None
        limit = min(max(_int(request.query_params.get("limit"), 50), 1), MAX_LIMIT)
        with snapshots.open(b) as view:
            d = view.diff(a, b, table)
        out = []
        for name, td in d.items():
            out.append({"table": name, "status": td.status, "schema": td.schema_changes,
                        "added": td.added.num_rows, "removed": td.removed.num_rows,
                        "changed": td.changed_rows,
                        "added_rows": [_diff_row(r) for r in td.added.slice(0, limit).to_pylist()],
                        "removed_rows": [_diff_row(r) for r in td.removed.slice(0, limit).to_pylist()],
                        "changed_cells": [{"id": str(r["_rowid"]), "column": r["column"],
                                           "old": _short(r["old"]), "new": _short(r["new"])}
                                          for r in td.changed.slice(0, limit).to_pylist()]})
        return _json({"a": a, "b": b, "tables": out})

    def embedding_map(request: Request) -> Response:
        """A PCA of a vector column over (a sample of) the view's rows, each point with its
        row id and the value of a colour column."""
        table = request.path_params["table"]
        q = request.query_params
        spec = parse_view(table, q)
        sample = min(max(_int(q.get("n"), 2000), 2), MAP_MAX_POINTS)
        with snapshots.open(q.get("ref")) as view:
            commit = view.head
            columns = snapshots.columns(view, table)
            kinds = {c["name"]: c["kind"] for c in columns}
            vector = q.get("vector") or next((c["name"] for c in columns if c["kind"] == "vector"), None)
            if vector is None:
                raise errors.DatatypeMismatch(f'table "{table}" has no vector column to map')
            color = q.get("color") or None
            sel = map_select(spec, kinds, vector, color, sample)
            got = view.execute(sel.sql, sel.params).fetchall()
        coords, explained = pca_2d(np.stack([np.asarray(v, dtype=np.float32) for _, v, _ in got])
                                   if got else np.zeros((0, 2)))
        points = [{"id": str(r), "x": float(x), "y": float(y), "c": summarise(c, str)}
                  for (r, _, c), (x, y) in zip(got, coords)]
        return _json({"table": table, "commit": commit, "vector": vector, "color": color,
                      "explained": explained, "points": points, "sample": sample})

    def config(request: Request) -> Response:
        return _json({"labelling": None if labelling is None else
                      {"branch": labelling.branch, "column": labelling.column},
                      "embed": embed is not None})

    def pairs(request: Request) -> Response:
        if labelling is None:
            raise errors.InsufficientPrivilege("labelling is off: start reeldb ui with --label-branch")
        q = request.query_params
        return _json(labelling.pairs(request.path_params["table"], q.get("by") or "prompt",
                                     min(max(_int(q.get("n"), 20), 1), MAX_LIMIT), max(_int(q.get("offset"), 0), 0),
                                     _int(q.get("seed"), 0)))

    async def labels(request: Request) -> Response:
        """A batch of labels (JSON); a write, so only from this app's own pages: JSON
        content (a cross-site form cannot send it without a CORS preflight, which this app
        never allows) and, when the browser sends one, an Origin matching the Host."""
        if labelling is None:
            raise errors.InsufficientPrivilege("labelling is off: start reeldb ui with --label-branch")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise errors.InvalidParameterValue("labels are sent as application/json")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            raise errors.InsufficientPrivilege(f"labels from another site ({origin}) are refused")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise errors.ProgramLimitExceeded(f"a batch of labels is at most {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise errors.InvalidJsonText("the batch of labels is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
            raise errors.InvalidParameterValue('a batch is {"labeller": NAME, "labels": [{"a", "b", "winner"}]}')
        labeller = CURRENT_USER.get() or str(data.get("labeller", ""))  # a logged-in user labels as themself
        got = await run_in_threadpool(labelling.write, request.path_params["table"], labeller, data["labels"])
        return _json(got)

    def api_stats(request: Request) -> Response:
        return _json(stats.snapshot())

    def media(request: Request) -> Response:
        p = request.path_params
        commit = snapshots.commit_of(p["commit"])
        blob = snapshots.blob(commit, p["table"], p["column"], _rowid(p["rowid"]))
        if blob is None:
            return JSONResponse({"error": "no value in that cell"}, status_code=404)
        return ranged(request, blob, stats, immutable=commit == p["commit"])

    def frame(request: Request) -> Response:
        """One decoded frame of a video cell (or an image cell) as PNG: the grid's poster
        (n=0, small) and the detail view's frame stepping; cached, commits never change."""
        p = request.path_params
        rowid = _rowid(p["rowid"])
        n = max(_int(request.query_params.get("n"), 0), 0)
        width = min(max(_int(request.query_params.get("w"), 320), 16), 1920)
        commit = snapshots.commit_of(p["commit"])
        key = (commit, p["table"], p["column"], rowid, n, width)
        data = snapshots.posters.get(key)
        if data is None:
            blob = snapshots.blob(commit, p["table"], p["column"], rowid)
            if blob is None or blob.kind not in ("video", "image"):
                return JSONResponse({"error": "not a video or image cell"}, status_code=404)
            meta = blob.meta
            w0, h0 = int(meta.get("width") or width), int(meta.get("height") or width)
            w = min(width, w0)
            h = max(2, round(h0 * w / max(w0, 1)))
            try:
                pixels = blob.decode(start=n, frames=1, size=(h, w))[0] if blob.kind == "video" else \
                    blob.decode(size=(h, w))
            except ValueError as e:
                return JSONResponse({"error": str(e)}, status_code=416)
            data = png(np.ascontiguousarray(pixels))
            snapshots.posters.put(key, data, len(data))
        return Response(data, media_type="image/png", headers={"cache-control": cache_control(commit == p["commit"])})

    routes = [
        Route("/", index),
        Route("/api/refs", api(refs)),
        Route("/api/tables", api(tables)),
        Route("/api/rows/{table}", api(rows)),
        Route("/api/facets/{table}", api(facets)),
        Route("/api/row/{table}/{rowid}", api(row_detail)),
        Route("/api/history/{table}/{rowid}", api(row_history)),
        Route("/api/diff", api(diff)),
        Route("/api/compare/{table}", api(compare)),
        Route("/api/stats", api(api_stats)),
        Route("/api/config", api(config)),
        Route("/api/map/{table}", api(embedding_map)),
        Route("/api/pairs/{table}", api(pairs)),
        Route("/api/labels/{table}", api(labels), methods=["POST"]),
        Route("/media/{commit}/{table}/{column}/{rowid}", api(media)),
        Route("/frame/{commit}/{table}/{column}/{rowid}", api(frame)),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.stats = stats
    return Guard(app, token, users)  # type: ignore[return-value]


def _row_change(td: Any, rowid: int) -> tuple[str | None, list[str]]:
    """How one commit's table diff touched ``rowid``: added, removed or changed (with the
    columns), or None."""
    if td is None:
        return None, []
    if rowid in set(td.added.column("_rowid").to_pylist()):
        return "added", []
    if rowid in set(td.removed.column("_rowid").to_pylist()):
        return "removed", []
    cols = [r["column"] for r in td.changed.to_pylist() if r["_rowid"] == rowid]
    return ("changed", cols) if cols else (None, [])


def _int(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise errors.InvalidTextRepresentation(f"not an integer: {text[:40]!r}") from None


def _rowid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise errors.InvalidTextRepresentation(f"a row id is an integer, not {text[:40]!r}") from None


def _short(text: str | None, n: int = 200) -> str | None:
    if text is None or len(text) <= n:
        return text
    return text[:n] + "…"


def _diff_cell(v: Any) -> Any:
    """A diff cell (Arrow's Python form) shown short: blobs as a label, vectors by size."""
    if isinstance(v, dict) and "kind" in v and "length" in v:
        return f"<{v['kind']} {v['length']} bytes>"
    if isinstance(v, list):
        if len(v) > 4:
            return f"[{len(v)} values]"
        return json.dumps(v, default=str)
    if isinstance(v, str):
        return _short(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v is None or isinstance(v, bool | int | float):
        return v
    return _short(str(v))


def _diff_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(r.get("_rowid")), "cells": {k: _diff_cell(v) for k, v in r.items() if k != "_rowid"}}


