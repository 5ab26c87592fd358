// reeldb ui: a grid of rows over the JSON API (/api/...). No framework, no build step.
// Every value from the database is put in the page as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { tables: [], columns: [], next: null, loading: false, facetLoads: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error((body.sqlstate ? body.sqlstate + ": " : "") + (body.error || response.statusText));
  return body;
}

function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = String(err.message || err);
}

// ---- URL state: the page's query string is the view; the API takes the same parameters
function params() { return new URLSearchParams(location.search); }
function setParams(p, push) {
  const url = location.pathname + (p.toString() ? "?" + p.toString() : "");
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}
const VIEW_KEYS = (k) => ["where", "sort", "order", "similar", "vector", "ids", "near", "near_text"].includes(k) || /^(min|max|in|json)\./.test(k);

function apiQuery(extra) {
  const p = params(), q = new URLSearchParams();
  for (const [k, v] of p) if (VIEW_KEYS(k) || k === "ref") q.append(k, v);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q.toString();
}

// ---- cells
function fmtBytes(n) {
  if (n < 1000) return n + " B";
  const units = ["KB", "MB", "GB", "TB"]; let x = n, u = -1;
  do { x /= 1000; u++; } while (x >= 1000 && u < units.length - 1);
  return x.toFixed(1) + " " + units[u];
}
function fmtNumber(v) { return typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : String(v); }

function cellText(c) {
  if (c === null || c === undefined) return "∅";
  if (typeof c !== "object") return typeof c === "number" ? fmtNumber(c) : String(c);
  if (c.kind === "vector" || c.kind === "tensor") {
    const norm = typeof c.norm === "number" ? c.norm.toFixed(3) : c.norm;
    return `${c.kind} ${c.shape.join("×")} ${c.dtype} ‖${norm}‖`;
  }
  if (c.kind === "json") return c.text;
  if (c.kind === "video") {
    const m = c.meta || {};
    return `video ${m.width}×${m.height} ${m.frames} fr @ ${m.fps} fps, ${fmtBytes(c.bytes)}`;
  }
  if (c.kind === "image") { const m = c.meta || {}; return `image ${m.width}×${m.height}, ${fmtBytes(c.bytes)}`; }
  if ("bytes" in c) return `${c.kind} ${fmtBytes(c.bytes)}`;
  if (c.kind === "array") return `array of ${c.length}`;
  return JSON.stringify(c);
}

function posterUrl(c, n, w) { return c.url.replace(/^\/media\//, "/frame/") + `?n=${n}&w=${w}`; }

function mediaElement(c, controls) {
  if (c.kind === "video") {
    const v = el("video", { class: "cell-video", src: c.url, muted: true, loop: !controls, playsInline: true,
                            preload: controls ? "metadata" : "none", poster: posterUrl(c, 0, 320), controls });
    v.muted = true;
    if (!controls) {
      v.addEventListener("mouseenter", () => v.play().catch(() => {}));
      v.addEventListener("mouseleave", () => v.pause());
    }
    return v;
  }
  if (c.kind === "image") return el("img", { class: "cell-image", src: c.url, loading: "lazy", alt: "" });
  return null;
}

// ---- grid
function card(row) {
  const cols = state.columns;
  const mediaIndex = cols.findIndex((c, i) => (c.kind === "video" || c.kind === "image") && row.cells[i]);
  const media = el("div", { class: "media" }, mediaIndex >= 0 ? mediaElement(row.cells[mediaIndex], false) : null);
  const dl = el("dl");
  cols.forEach((col, i) => {
    if (i === mediaIndex) return;
    dl.append(el("dt", { text: col.name }), el("dd", { text: cellText(row.cells[i]), title: cellText(row.cells[i]) }));
  });
  const buttons = el("div", { class: "buttons" },
    el("button", { class: "detail", text: "Details", onclick: () => openDetail(row.id) }));
  const vector = cols.find((c) => c.kind === "vector");
  if (vector) buttons.append(el("button", { class: "similar", text: "More like this", onclick: () => moreLikeThis(row.id, vector.name) }));
  const node = el("div", { class: "card", "data-id": row.id }, media,
    row.distance !== undefined ? el("div", { class: "distance", text: "distance " + fmtNumber(row.distance) }) : null,
    dl, buttons);
  return node;
}

async function loadRows(append) {
  const table = params().get("table");
  if (!table) return;
  state.loading = true;
  const extra = {};
  if (append && state.next) Object.assign(extra, state.next);
  const started = performance.now();
  try {
    const data = await getJSON(`/api/rows/${encodeURIComponent(table)}?${apiQuery(extra)}`);
    showError(null);
    state.columns = data.columns;
    const grid = $("grid");
    if (!append) grid.replaceChildren();
    for (const row of data.rows) grid.append(card(row));
    state.next = data.next;
    $("more").hidden = !data.next;
    $("status").textContent = `${grid.children.length} rows shown · commit ${data.commit.slice(0, 12)} · ${data.elapsed_ms} ms`;
    const note = $("similar-note");
    const ids = params().get("ids");
    note.hidden = !data.similar && !ids;
    if (data.similar) note.textContent = `ordered by ${data.similar.column} distance to ` +
      (data.similar.row ? `row ${data.similar.row}` : data.similar.text ? `"${data.similar.text}"` : "the vector given");
    else if (ids) note.textContent = `a selection of ${ids.split(",").length} rows (from the map)`;
    performance.mark(append ? "reeldb-page" : "reeldb-grid-painted");
    document.body.dataset.rowsLoadedMs = String(Math.round(performance.now() - started));
  } catch (e) {
    showError(e);
    if (!append) $("grid").replaceChildren();
  } finally {
    state.loading = false;
    document.body.dataset.loaded = String(Date.now());
  }
}

// ---- sidebar
function buildSidebar() {
  const p = params(), table = p.get("table");
  const cols = (state.tables.find((t) => t.name === table) || { columns: [] }).columns;
  $("where").value = p.get("where") || "";
  $("near").value = p.get("near") || p.get("near_text") || "";
  const sort = $("sort");
  sort.replaceChildren(el("option", { value: "", text: "(row order)" }));
  for (const c of cols) if (["number", "text", "bool", "time"].includes(c.kind)) sort.append(el("option", { value: c.name, text: c.name }));
  sort.value = p.get("sort") || "";
  $("order").value = p.get("order") || "asc";
  const box = $("facets");
  box.replaceChildren();
  for (const c of cols) {
    if (c.kind === "number") {
      const lo = el("input", { type: "number", step: "any", name: "min." + c.name, placeholder: "min", value: p.get("min." + c.name) || "" });
      const hi = el("input", { type: "number", step: "any", name: "max." + c.name, placeholder: "max", value: p.get("max." + c.name) || "" });
      box.append(el("div", { class: "facet", "data-column": c.name }, el("div", { class: "name", text: c.name }), lo, " ", hi));
      state.facetLoads.push(() => getJSON(`/api/facets/${encodeURIComponent(table)}?column=${encodeURIComponent(c.name)}&${apiQuery({})}`).then((f) => {
        lo.placeholder = "≥ " + fmtNumber(f.min); hi.placeholder = "≤ " + fmtNumber(f.max);
      }).catch(() => {}));
    } else if (c.kind === "text" || c.kind === "bool") {
      const values = el("div", { class: "values" });
      const facet = el("div", { class: "facet", "data-column": c.name }, el("div", { class: "name", text: c.name }), values);
      box.append(facet);
      state.facetLoads.push(() => getJSON(`/api/facets/${encodeURIComponent(table)}?column=${encodeURIComponent(c.name)}&${apiQuery({})}`).then((f) => {
        if (f.more) { facet.remove(); return; }  // many distinct values: the WHERE box filters those
        const chosen = p.getAll("in." + c.name);
        for (const v of f.values) {
          if (v.value === null) continue;
          values.append(el("label", {}, el("input", { type: "checkbox", name: "in." + c.name, value: v.value, checked: chosen.includes(v.value) }),
                           " " + v.value + " (" + v.count + ")"));
        }
      }).catch(() => facet.remove()));
    } else if (c.kind === "json") {
      box.append(el("div", { class: "facet", "data-column": c.name }, el("div", { class: "name", text: c.name + " (key=value)" }),
        el("input", { type: "text", name: "json." + c.name, placeholder: "key=value", value: p.get("json." + c.name) || "" })));
    }
  }
}

function applyFilters(ev) {
  if (ev) ev.preventDefault();
  const p = params(), q = new URLSearchParams();
  for (const k of ["table", "ref", "similar", "vector", "ids"]) if (p.get(k)) q.set(k, p.get(k));
  const where = $("where").value.trim();
  if (where) q.set("where", where);
  const near = $("near").value.trim();
  if (near) { q.delete("similar"); q.set(near.startsWith("[") ? "near" : "near_text", near); }
  if ($("sort").value) { q.set("sort", $("sort").value); q.set("order", $("order").value); }
  for (const input of $("facets").querySelectorAll("input")) {
    if (input.type === "checkbox") { if (input.checked) q.append(input.name, input.value); }
    else if (input.value.trim()) q.set(input.name, input.value.trim());
  }
  setParams(q, true);
  loadRows(false);
}

function moreLikeThis(id, column) {
  const p = params();
  p.set("similar", id); p.set("vector", column); p.delete("sort"); p.delete("order"); p.delete("near"); p.delete("near_text");
  if (p.get("page")) { p.delete("page"); setParams(p, true); route(); return; }  // from the compare page
  setParams(p, true);
  loadRows(false);
}

// ---- row detail
async function openDetail(id) {
  const p = params();
  p.set("row", id); setParams(p, true);
  await showDetail();
}

async function showDetail() {
  const p = params(), id = p.get("row"), table = p.get("table");
  const overlay = $("detail"), body = $("detail-body");
  if (!id) { overlay.hidden = true; body.replaceChildren(); return; }
  try {
    const data = await getJSON(`/api/row/${encodeURIComponent(table)}/${encodeURIComponent(id)}?${apiQuery({})}`);
    body.replaceChildren(el("h2", { text: `${table} · row ${data.id}` }));
    const rows = el("tbody");
    for (const col of data.columns) {
      const c = data.cells[col.name];
      let shown;
      if (c && typeof c === "object" && (c.kind === "video" || c.kind === "image")) {
        shown = el("div", {}, mediaElement(c, true), el("pre", { text: metaText(c) }));
        if (c.kind === "video") shown.append(frameStepper(c));
      } else if (c && typeof c === "object" && (c.kind === "vector" || c.kind === "tensor")) {
        shown = el("pre", { text: cellText(c) + "\n[" + (c.head || []).map(fmtNumber).join(", ") + (c.head ? ", …]" : "]") });
      } else {
        shown = el("pre", { text: cellText(c) });
      }
      rows.append(el("tr", {}, el("th", { text: `${col.name} (${col.type})` }), el("td", {}, shown)));
    }
    const log = el("tbody", { id: "row-history" });
    body.append(el("table", {}, rows), el("h3", { text: "Commits that changed this row" }), el("table", {}, log));
    overlay.hidden = false;
    const history = await getJSON(`/api/history/${encodeURIComponent(table)}/${encodeURIComponent(id)}?${apiQuery({})}`);
    for (const c of history.commits) {
      const what = c.change === "changed" ? "changed " + c.columns.join(", ") : c.change === "not checked" ? `not checked (${c.rows} rows)` : c.change;
      log.append(el("tr", { class: c.change === "not checked" ? "" : c.change }, el("td", { text: c.commit.slice(0, 12) }), el("td", { text: what }),
                    el("td", { text: c.time }), el("td", { text: c.author }), el("td", { text: c.message })));
    }
    if (!history.commits.length) log.append(el("tr", {}, el("td", { text: `none in the last ${history.checked} commits of ${table}` })));
    document.body.dataset.history = id;
  } catch (e) { showError(e); }
}

function metaText(c) {
  const m = Object.assign({}, c.meta), keyframes = m.keyframes;
  delete m.keyframes; delete m.time_base;
  const lines = [`${fmtBytes(c.bytes)}`, ...Object.entries(m).map(([k, v]) => `${k}: ${v}`)];
  if (keyframes) lines.push(`keyframes: ${keyframes.length}`);
  return lines.join("\n");
}

function frameStepper(c) {
  const frames = (c.meta && c.meta.frames) || 1;
  let n = 0;
  const img = el("img", { class: "frame", src: posterUrl(c, 0, 640), alt: "frame" });
  const label = el("span", { class: "frame-label", text: `frame 0 / ${frames - 1}` });
  const step = (d) => { n = Math.min(Math.max(n + d, 0), frames - 1); img.src = posterUrl(c, n, 640); label.textContent = `frame ${n} / ${frames - 1}`; };
  return el("div", { class: "frames" }, el("button", { class: "prev-frame", text: "◀", onclick: () => step(-1) }), label,
            el("button", { class: "next-frame", text: "▶", onclick: () => step(1) }), img);
}

// ---- diff
async function showDiff() {
  const p = params(), out = $("diff-out");
  if (!p.get("a") || !p.get("b")) { out.replaceChildren(el("p", { text: "Choose two branches, tags or commits." })); return; }
  try {
    const q = new URLSearchParams({ a: p.get("a"), b: p.get("b") });
    if (p.get("table")) q.set("table", p.get("table"));
    const data = await getJSON("/api/diff?" + q.toString());
    out.replaceChildren();
    if (!data.tables.length) out.append(el("p", { class: "nodiff", text: `no differences from ${data.a} to ${data.b}` }));
    for (const t of data.tables) {
      out.append(el("h3", { text: `${t.table}: ${t.status} · +${t.added} −${t.removed} ~${t.changed}` }));
      const body = el("tbody");
      for (const r of t.added_rows) body.append(el("tr", { class: "added" }, el("td", { text: "+" }), el("td", { text: r.id }), el("td", { text: JSON.stringify(r.cells) })));
      for (const r of t.removed_rows) body.append(el("tr", { class: "removed" }, el("td", { text: "−" }), el("td", { text: r.id }), el("td", { text: JSON.stringify(r.cells) })));
      for (const r of t.changed_cells) body.append(el("tr", { class: "changed" }, el("td", { text: "~" }), el("td", { text: r.id }), el("td", { text: `${r.column}: ${r.old} → ${r.new}` })));
      out.append(el("table", { class: "diff-table" }, body));
    }
  } catch (e) { showError(e); }
}

// ---- labelling: pairs of rows with the same prompt, A/B verdicts saved in batches
const labelling = { pairs: [], index: 0, offset: 0, pending: [], saving: null, config: null };

async function showLabel() {
  const p = params(), table = p.get("table"), cfg = labelling.config;
  if (!cfg) { showError("labelling is off: start reeldb ui with --label-branch"); return; }
  $("labeller").value = p.get("labeller") || localStorage.getItem("reeldb-labeller") || "";
  const cols = (state.tables.find((t) => t.name === table) || { columns: [] }).columns;
  const by = $("label-by");
  by.replaceChildren(...cols.filter((c) => c.kind === "text" || c.kind === "number").map((c) => el("option", { value: c.name, text: c.name })));
  by.value = p.get("by") || (cols.some((c) => c.name === "prompt") ? "prompt" : by.value);
  labelling.pairs = []; labelling.index = 0; labelling.offset = 0;
  await nextPairs();
  await renderPair();
}

async function nextPairs() {
  const p = params(), q = new URLSearchParams({ by: $("label-by").value, n: "20", offset: String(labelling.offset), seed: p.get("seed") || "0" });
  const data = await getJSON(`/api/pairs/${encodeURIComponent(p.get("table"))}?${q}`);
  labelling.pairs = data.pairs; labelling.index = 0; labelling.offset += data.pairs.length;
}

async function renderSide(node, name, id) {
  const p = params(), cfg = labelling.config;
  const q = new URLSearchParams({ ref: cfg.branch });
  const data = await getJSON(`/api/row/${encodeURIComponent(p.get("table"))}/${encodeURIComponent(id)}?${q}`);
  const media = data.columns.map((c) => data.cells[c.name]).find((c) => c && (c.kind === "video" || c.kind === "image"));
  const shown = media ? mediaElement(media, true) : null;
  if (shown && shown.tagName === "VIDEO") { shown.autoplay = true; shown.loop = true; }
  node.replaceChildren(el("h3", { text: `${name} · row ${id}` }), shown || el("p", { text: "(no video or image)" }),
                       el("p", { text: cellText(data.cells[$("label-by").value]) }));
}

async function renderPair() {
  try {
    if (labelling.index >= labelling.pairs.length && labelling.pairs.length) await nextPairs();
    const pair = labelling.pairs[labelling.index];
    if (!pair) { $("side-a").replaceChildren(el("p", { text: "no more pairs" })); $("side-b").replaceChildren(); return; }
    document.body.dataset.pair = `${pair.a}-${pair.b}`;
    await Promise.all([renderSide($("side-a"), "A", pair.a), renderSide($("side-b"), "B", pair.b)]);
    document.body.dataset.pairShown = `${pair.a}-${pair.b}`;
  } catch (e) { showError(e); }
}

async function verdict(winner) {
  const pair = labelling.pairs[labelling.index];
  if (!pair) return;
  if (winner !== "skip") labelling.pending.push({ a: pair.a, b: pair.b, winner });
  labelling.index += 1;
  $("label-status").textContent = `${labelling.pending.length} label(s) not saved yet`;
  if (labelling.pending.length >= Number(params().get("batch") || 5)) saveLabels();
  await renderPair();
}

async function saveLabels() {
  if (labelling.saving) await labelling.saving;
  const labels = labelling.pending.splice(0);
  if (!labels.length) return;
  const labeller = $("labeller").value.trim();
  localStorage.setItem("reeldb-labeller", labeller);
  labelling.saving = (async () => {
    try {
      const response = await fetch(`/api/labels/${encodeURIComponent(params().get("table"))}`, {
        method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
        body: JSON.stringify({ labeller, labels }) });
      const body = await response.json();
      if (!response.ok) throw new Error((body.sqlstate ? body.sqlstate + ": " : "") + body.error);
      $("label-status").textContent = `saved ${body.labels} label(s) on ${body.branch} in commit ${body.commit.slice(0, 12)}`;
      document.body.dataset.labelsSaved = String(Number(document.body.dataset.labelsSaved || 0) + body.labels);
    } catch (e) {
      labelling.pending.unshift(...labels);  // keep them: Save again
      showError(e);
    }
  })();
  await labelling.saving;
  labelling.saving = null;
}

// ---- embeddings map: a PCA scatter on a canvas; a dragged rectangle selects rows for the grid
const map = { points: [], selected: [], box: null, scale: null };
const PALETTE = ["#5fb3ff", "#f0c674", "#7ddc8a", "#ff6b6b", "#c792ea", "#ffb86c", "#8be9fd", "#f78c6c", "#a3be8c", "#ff79c6"];

async function showMap() {
  const p = params(), table = p.get("table");
  const cols = (state.tables.find((t) => t.name === table) || { columns: [] }).columns;
  $("map-vector").replaceChildren(...cols.filter((c) => c.kind === "vector").map((c) => el("option", { value: c.name, text: c.name })));
  $("map-color").replaceChildren(el("option", { value: "", text: "(none)" }),
    ...cols.filter((c) => ["number", "text", "bool", "time"].includes(c.kind)).map((c) => el("option", { value: c.name, text: c.name })));
  if (p.get("vector")) $("map-vector").value = p.get("vector");
  $("map-color").value = p.get("color") || "";
  $("map-n").value = p.get("n") || "2000";
  if (!$("map-vector").value) { showError(`table ${table} has no vector column`); return; }
  try {
    const q = new URLSearchParams(apiQuery({ vector: $("map-vector").value, n: $("map-n").value }));
    q.delete("similar"); if ($("map-color").value) q.set("color", $("map-color").value);
    const data = await getJSON(`/api/map/${encodeURIComponent(table)}?${q}`);
    showError(null);
    map.points = data.points; map.selected = [];
    $("map-status").textContent = `${data.points.length} points · PC1 ${(100 * data.explained[0]).toFixed(1)}% · PC2 ${(100 * data.explained[1]).toFixed(1)}% of the variance`;
    drawMap();
    document.body.dataset.mapPoints = String(data.points.length);
  } catch (e) { showError(e); }
}

function colourOf(points) {
  const values = points.map((pt) => pt.c);
  const numeric = values.every((v) => v === null || typeof v === "number");
  if (numeric) {
    const nums = values.filter((v) => v !== null), lo = Math.min(...nums), hi = Math.max(...nums);
    return { legend: nums.length ? [[`${fmtNumber(lo)} … ${fmtNumber(hi)}`, "#5fb3ff"]] : [],
             of: (v) => v === null ? "#555" : `hsl(${220 - 180 * (hi > lo ? (v - lo) / (hi - lo) : 0)}, 80%, 60%)` };
  }
  const distinct = [...new Set(values.map(String))].slice(0, PALETTE.length);
  return { legend: distinct.map((v, i) => [v, PALETTE[i]]), of: (v) => PALETTE[distinct.indexOf(String(v))] || "#777" };
}

function drawMap() {
  const canvas = $("map-canvas"), ctx = canvas.getContext("2d"), pts = map.points;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!pts.length) return;
  const xs = pts.map((pt) => pt.x), ys = pts.map((pt) => pt.y), pad = 20;
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (canvas.width - 2 * pad) / ((x1 - x0) || 1), sy = (canvas.height - 2 * pad) / ((y1 - y0) || 1);
  map.scale = { px: (x) => pad + (x - x0) * sx, py: (y) => canvas.height - pad - (y - y0) * sy };
  const colour = colourOf(pts), chosen = new Set(map.selected);
  for (const pt of pts) {
    ctx.fillStyle = colour.of(pt.c);
    ctx.globalAlpha = chosen.size && !chosen.has(pt.id) ? 0.25 : 0.9;
    ctx.beginPath(); ctx.arc(map.scale.px(pt.x), map.scale.py(pt.y), chosen.has(pt.id) ? 4 : 3, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.globalAlpha = 1;
  if (map.box) { ctx.strokeStyle = "#fff"; ctx.strokeRect(map.box.x, map.box.y, map.box.w, map.box.h); }
  $("map-legend").replaceChildren(...colour.legend.map(([label, c]) => {
    const swatch = el("span", { text: label });
    swatch.style.setProperty("--swatch", c);  // CSSOM, not a style attribute: the CSP allows it
    return swatch;
  }));
  $("map-show").disabled = !map.selected.length;
  $("map-show").textContent = map.selected.length ? `Show ${map.selected.length} in grid` : "Show selection in grid";
}

function canvasPoint(ev) {
  const canvas = $("map-canvas"), r = canvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * canvas.width / r.width, y: (ev.clientY - r.top) * canvas.height / r.height };
}

let dragFrom = null;
$("map-canvas").addEventListener("mousedown", (ev) => { dragFrom = canvasPoint(ev); map.box = null; });
$("map-canvas").addEventListener("mousemove", (ev) => {
  if (!dragFrom) return;
  const at = canvasPoint(ev);
  map.box = { x: Math.min(dragFrom.x, at.x), y: Math.min(dragFrom.y, at.y), w: Math.abs(at.x - dragFrom.x), h: Math.abs(at.y - dragFrom.y) };
  drawMap();
});
$("map-canvas").addEventListener("mouseup", (ev) => {
  const at = canvasPoint(ev), from = dragFrom; dragFrom = null;
  if (!from || !map.scale) return;
  if (Math.abs(at.x - from.x) < 3 && Math.abs(at.y - from.y) < 3) {  // a click: the nearest point's row
    let best = null, bestD = 64;
    for (const pt of map.points) { const d = (map.scale.px(pt.x) - at.x) ** 2 + (map.scale.py(pt.y) - at.y) ** 2; if (d < bestD) { best = pt; bestD = d; } }
    map.box = null; drawMap();
    if (best) openDetail(best.id);
    return;
  }
  const [xa, xb] = [Math.min(from.x, at.x), Math.max(from.x, at.x)], [ya, yb] = [Math.min(from.y, at.y), Math.max(from.y, at.y)];
  map.selected = map.points.filter((pt) => { const x = map.scale.px(pt.x), y = map.scale.py(pt.y); return x >= xa && x <= xb && y >= ya && y <= yb; }).map((pt) => pt.id);
  map.box = null; drawMap();
});
$("map-show").addEventListener("click", () => {
  const p = params(), q = new URLSearchParams();
  for (const [k, v] of p) if (k !== "page" && k !== "row") q.append(k, v);
  q.set("ids", map.selected.join(","));
  setParams(q, true); route();
});
$("map-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = params(); p.set("vector", $("map-vector").value); p.set("n", $("map-n").value);
  if ($("map-color").value) p.set("color", $("map-color").value); else p.delete("color");
  setParams(p, false); showMap();
});

// ---- compare two refs: aggregates, and rows with the same prompt side by side
async function showCompare() {
  const p = params(), table = p.get("table");
  const cols = (state.tables.find((t) => t.name === table) || { columns: [] }).columns;
  $("compare-by").replaceChildren(...cols.filter((c) => ["text", "number", "bool", "time"].includes(c.kind)).map((c) => el("option", { value: c.name, text: c.name })));
  $("compare-metric").replaceChildren(el("option", { value: "", text: "(none)" }), ...cols.filter((c) => c.kind === "number").map((c) => el("option", { value: c.name, text: c.name })));
  $("compare-by").value = p.get("by") || (cols.some((c) => c.name === "prompt") ? "prompt" : $("compare-by").value);
  $("compare-metric").value = p.get("metric") || "";
  $("compare-a").value = p.get("a") || $("compare-a").value;
  $("compare-b").value = p.get("b") || $("compare-b").value;
  const q = new URLSearchParams(apiQuery({ a: $("compare-a").value, b: $("compare-b").value, by: $("compare-by").value }));
  if ($("compare-metric").value) q.set("metric", $("compare-metric").value);
  q.delete("ref"); q.delete("similar");
  try {
    const data = await getJSON(`/api/compare/${encodeURIComponent(table)}?${q}`);
    showError(null);
    state.columns = data.columns;
    const head = el("tr", {}, el("th", { text: "" }), el("th", { text: "rows" }));
    if (data.metric) head.append(el("th", { text: `mean ${data.metric}` }), el("th", { text: "min" }), el("th", { text: "max" }));
    const totals = [head];
    for (const side of ["a", "b"]) {
      const s = data[side], tr = el("tr", { class: "total-" + side }, el("td", { text: `${side.toUpperCase()}: ${s.ref}` }), el("td", { text: String(s.rows) }));
      if (data.metric) tr.append(el("td", { text: fmtNumber(s.mean) }), el("td", { text: fmtNumber(s.min) }), el("td", { text: fmtNumber(s.max) }));
      totals.push(tr);
    }
    $("compare-totals").replaceChildren(...totals);
    const out = $("compare-out");
    out.replaceChildren();
    for (const g of data.groups) {
      const side = (rows) => rows.length ? el("div", { class: "side-rows" }, ...rows.map(card)) : el("div", { class: "none", text: "(no row)" });
      out.append(el("div", { class: "group" }, el("h3", { text: `${data.by}: ${cellText(g.value)}` }),
                    el("div", { class: "sides" }, el("div", { class: "side-a" }, side(g.a)), el("div", { class: "side-b" }, side(g.b)))));
    }
    document.body.dataset.compared = String(Date.now());
  } catch (e) { showError(e); }
}

// ---- page
function showTab(name) {
  $("compare").hidden = name !== "compare";
  for (const t of ["grid", "diff", "compare", "map", "label"]) $("tab-" + t).classList.toggle("active", t === name);
  $("grid").hidden = name !== "grid"; $("more").hidden = name !== "grid" || !state.next;
  $("sidebar").hidden = name !== "grid"; $("diff").hidden = name !== "diff"; $("label").hidden = name !== "label";
  $("map").hidden = name !== "map";
}

async function route() {
  const p = params(), page = p.get("page");
  showTab(["diff", "label", "map", "compare"].includes(page) ? page : "grid");
  if (page === "compare") { await showCompare(); await showDetail(); return; }
  if (page === "diff") { await showDiff(); return; }
  if (page === "map") { await showMap(); await showDetail(); return; }
  if (page === "label") { await showLabel(); return; }
  state.facetLoads = [];
  buildSidebar();
  await loadRows(false);
  // the sidebar's ranges and value lists scan the table: after the rows, one at a time
  const loads = state.facetLoads;
  state.facetLoads = [];
  const facets = (async () => { for (const load of loads) await load(); document.body.dataset.facets = String(Date.now()); })();
  await showDetail();
  await facets;
}

async function loadTables() {
  const data = await getJSON("/api/tables?" + apiQuery({}));
  state.tables = data.tables;
  const p = params(), sel = $("table");
  sel.replaceChildren(...data.tables.map((t) => el("option", { value: t.name, text: t.name })));
  if (!p.get("table") && data.tables.length) { p.set("table", data.tables[0].name); setParams(p, false); }
  sel.value = params().get("table") || "";
}

async function init() {
  try {
    const refs = await getJSON("/api/refs");
    labelling.config = (await getJSON("/api/config")).labelling;
    $("tab-label").hidden = !labelling.config;
    const p = params();
    const names = [...refs.branches.map((b) => b.name), ...refs.tags.map((t) => t.name)];
    for (const id of ["ref", "diff-a", "diff-b", "compare-a", "compare-b"]) $(id).replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    $("ref").value = p.get("ref") || refs.default;
    $("diff-a").value = p.get("a") || refs.default;
    $("diff-b").value = p.get("b") || refs.default;
    await loadTables();
    await route();
  } catch (e) { showError(e); }
}

$("filters").addEventListener("submit", applyFilters);
$("reset").addEventListener("click", () => { const p = params(), q = new URLSearchParams(); for (const k of ["table", "ref"]) if (p.get(k)) q.set(k, p.get(k)); setParams(q, true); route(); });
$("more").addEventListener("click", () => loadRows(true));
$("table").addEventListener("change", () => { const q = new URLSearchParams({ table: $("table").value }); if (params().get("ref")) q.set("ref", params().get("ref")); setParams(q, true); route(); });
$("ref").addEventListener("change", async () => { const p = params(); p.set("ref", $("ref").value); p.delete("similar"); setParams(p, true); await loadTables(); route(); });
$("tab-grid").addEventListener("click", () => { const p = params(); p.delete("page"); setParams(p, true); route(); });
$("tab-diff").addEventListener("click", () => { const p = params(); p.set("page", "diff"); setParams(p, true); route(); });
$("diff-form").addEventListener("submit", (ev) => { ev.preventDefault(); const p = params(); p.set("page", "diff"); p.set("a", $("diff-a").value); p.set("b", $("diff-b").value); setParams(p, true); showDiff(); });
$("detail-close").addEventListener("click", () => { const p = params(); p.delete("row"); setParams(p, true); showDetail(); });
$("tab-compare").addEventListener("click", () => { const p = params(); p.set("page", "compare"); setParams(p, true); route(); });
$("compare-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const p = params();
  for (const k of ["a", "b", "by", "metric"]) { const v = $("compare-" + k).value; if (v) p.set(k, v); else p.delete(k); }
  setParams(p, true); showCompare();
});
$("tab-map").addEventListener("click", () => { const p = params(); p.set("page", "map"); setParams(p, true); route(); });
$("tab-label").addEventListener("click", () => { const p = params(); p.set("page", "label"); setParams(p, true); route(); });
$("label-save").addEventListener("click", () => saveLabels());
$("label-by").addEventListener("change", () => { const p = params(); p.set("by", $("label-by").value); setParams(p, false); showLabel(); });
for (const b of document.querySelectorAll(".verdicts button")) b.addEventListener("click", () => verdict(b.dataset.winner));
document.addEventListener("keydown", (ev) => {
  if (params().get("page") !== "label" || ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA") return;
  const winner = { "1": "a", "2": "b", "3": "tie", s: "skip", S: "skip" }[ev.key];
  if (winner) { ev.preventDefault(); verdict(winner); }
});
window.addEventListener("popstate", () => route());
init();
