// Acheron status pages: the overview (acheronOverview) and one service's live
// page (acheronService). The service page follows /events/<name> (server-sent
// events, one JSON snapshot a second) and draws on plain canvases, so it
// needs no network beyond this server. Every section appears only when the
// snapshot carries its member (docs/dashboard.md lists them).
"use strict";

const HISTORY = 120;  // points kept per time plot

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) {
  if (typeof v !== "number") return String(v);
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(3);
}

// Canvas helpers: a frame with axes labels, lines and bars.
function prepare(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  return ctx;
}

function axes(ctx, w, h, pad, ymax, label) {
  ctx.strokeStyle = "#9aa3b5";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(pad, 6);
  ctx.lineTo(pad, h - 18);
  ctx.lineTo(w - 4, h - 18);
  ctx.stroke();
  ctx.fillStyle = "#445";
  ctx.fillText(fmt(ymax), 2, 14);
  ctx.fillText("0", 2, h - 20);
  if (label) ctx.fillText(label, pad + 6, 14);
}

function linePlot(canvas, values, label) {
  const ctx = prepare(canvas);
  const w = canvas.width, h = canvas.height, pad = 42;
  const top = Math.max(0, ...values);
  const ymax = top > 0 ? top * 1.1 : 1;  // an all-zero series sits on the axis
  // A series that goes below zero (a timing error, say) gets room below the axis too.
  const bottom = Math.min(0, ...values);
  const ymin = bottom < 0 ? bottom * 1.1 : 0;
  axes(ctx, w, h, pad, ymax, label);
  if (ymin < 0) {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, h - 30, pad - 2, 14);
    ctx.fillStyle = "#445";
    ctx.fillText(fmt(ymin), 2, h - 20);
    const y0 = h - 18 - ((h - 26) * -ymin) / (ymax - ymin);
    ctx.strokeStyle = "#d5d9e2";
    ctx.beginPath();
    ctx.moveTo(pad, y0);
    ctx.lineTo(w - 4, y0);
    ctx.stroke();
    ctx.fillText("0", pad - 10, y0 + 4);
  }
  ctx.fillStyle = "#445";
  ctx.fillText("last " + HISTORY + " s", w - 70, h - 4);
  if (values.length < 1) return;
  ctx.strokeStyle = "#2f6fd6";
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = pad + ((w - pad - 6) * (i + HISTORY - values.length)) / (HISTORY - 1);
    const y = h - 18 - ((h - 26) * (v - ymin)) / (ymax - ymin);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function barPlot(canvas, counts, labels, label, colour) {
  const ctx = prepare(canvas);
  const w = canvas.width, h = canvas.height, pad = 42;
  const ymax = Math.max(1, ...counts) * 1.1;
  axes(ctx, w, h, pad, ymax, label);
  const n = counts.length;
  const bw = (w - pad - 6) / Math.max(1, n);
  ctx.fillStyle = colour || "#2f6fd6";
  counts.forEach((c, i) => {
    const bh = ((h - 26) * c) / ymax;
    ctx.fillRect(pad + i * bw + 1, h - 18 - bh, Math.max(1, bw - 2), bh);
  });
  ctx.fillStyle = "#445";
  const step = Math.max(1, Math.ceil(n / 8));
  for (let i = 0; i < n; i += step) {
    if (labels[i] !== undefined) ctx.fillText(labels[i], pad + i * bw + 1, h - 4);
  }
}

// Colour map from dark blue (0) through green to yellow (1).
function colour(t) {
  t = Math.min(1, Math.max(0, t));
  const r = Math.round(255 * Math.min(1, Math.max(0, 1.8 * t - 0.6)));
  const g = Math.round(255 * Math.min(1, 0.15 + 1.1 * t));
  const b = Math.round(255 * Math.max(0, 0.55 - 0.6 * t));
  return "rgb(" + r + "," + g + "," + b + ")";
}

function drawHitmap(canvas, m) {
  const ctx = prepare(canvas);
  const w = canvas.width, h = canvas.height, pad = 14;
  const n = Math.min(m.u.length, m.v.length);
  let umin = Infinity, umax = -Infinity, vmin = Infinity, vmax = -Infinity;
  for (let i = 0; i < n; i++) {
    umin = Math.min(umin, m.u[i]); umax = Math.max(umax, m.u[i]);
    vmin = Math.min(vmin, m.v[i]); vmax = Math.max(vmax, m.v[i]);
  }
  const du = Math.max(1e-9, umax - umin), dv = Math.max(1e-9, vmax - vmin);
  const scale = Math.min((w - 2 * pad) / du, (h - 2 * pad) / dv);
  const ox = (w - du * scale) / 2, oy = (h - dv * scale) / 2;
  // Marker size from the channel density: area shared among the markers.
  const r = Math.max(1.5, Math.min(12, 0.45 * Math.sqrt((du * dv * scale * scale) / Math.max(1, n))));
  const vmaxHits = Math.max(1e-9, ...m.values);
  for (let i = 0; i < n; i++) {
    const x = ox + (m.u[i] - umin) * scale;
    const y = h - (oy + (m.v[i] - vmin) * scale);
    const val = m.values[i] || 0;
    ctx.fillStyle = val > 0 ? colour(val / vmaxHits) : "#d8dbe2";
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  return { markers: n, max: vmaxHits };
}

function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  if (typeof v === "number" && !Number.isInteger(v)) return v.toPrecision(4);
  return String(v);
}

function boundLabels(bounds) {
  const labels = bounds.map(b => "≤" + (b < 1e-3 ? fmt(b * 1e6) + "µs" : b < 1 ? fmt(b * 1000) + "ms" : b + "s"));
  labels.push(">");
  return labels;
}

// Generic tables of a snapshot: [{id, title, columns, rows}]. A column
// named "state" colours its cells by value (class state-<value>).
function renderTables(root, tables, state) {
  state.tables = state.tables || {};
  for (const t of tables) {
    let panel = document.getElementById("table-" + t.id);
    if (!panel) {
      panel = el("section", { class: "panel", id: "table-" + t.id });
      panel.appendChild(el("h2", {}, t.title));
      const table = el("table", { class: "table" });
      const head = el("tr");
      for (const c of t.columns) head.appendChild(el("th", {}, c));
      const thead = el("thead");
      thead.appendChild(head);
      table.appendChild(thead);
      table.appendChild(el("tbody"));
      panel.appendChild(table);
      panel.appendChild(el("div", { class: "sub" }));
      root.appendChild(panel);
    }
    const body = panel.querySelector("tbody");
    body.textContent = "";
    for (const row of t.rows) {
      const tr = el("tr");
      row.forEach((v, i) => {
        const attrs = t.columns[i] === "state" ? { class: "state-" + String(v).replace(/\W/g, "_") } : {};
        tr.appendChild(el("td", attrs, cellText(v)));
      });
      body.appendChild(tr);
    }
    panel.querySelector("div.sub").textContent =
        t.rows.length ? (t.note || "") : (t.empty || "none");
    state.tables[t.id] = t.rows.length;
  }
}

// Live pictures: [{key, title, width, height, pixels}], pixels row-major.
// Each is drawn scaled up on its own canvas with a colour bar from the
// image's smallest to its largest value.
function drawImages(root, images, state) {
  state.imageCanvases = state.imageCanvases || {};
  let drawn = 0;
  for (const im of images) {
    const id = "image-" + im.key.replace(/[^A-Za-z0-9_-]/g, "_");
    let c = state.imageCanvases[id];
    if (!c) {
      const panel = el("div", { class: "panel" });
      panel.appendChild(el("h2", { id: id + "-title" }, im.title));
      c = el("canvas", { id: id, width: 320, height: 262, class: "image" });
      panel.appendChild(c);
      panel.appendChild(el("div", { class: "sub", id: id + "-caption" }));
      root.appendChild(panel);
      state.imageCanvases[id] = c;
    }
    const n = im.width * im.height;
    if (!im.pixels || im.pixels.length !== n || n === 0) continue;
    let lo = Infinity, hi = -Infinity;
    for (const v of im.pixels) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const ctx = prepare(c);
    const side = 256, cell = side / Math.max(im.width, im.height);
    for (let y = 0; y < im.height; y++) {
      for (let x = 0; x < im.width; x++) {
        const v = im.pixels[y * im.width + x];
        ctx.fillStyle = colour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
        ctx.fillRect(x * cell, y * cell, Math.ceil(cell), Math.ceil(cell));
      }
    }
    // Colour bar with its scale.
    for (let i = 0; i < side; i++) {
      ctx.fillStyle = colour(1 - i / (side - 1));
      ctx.fillRect(side + 10, i, 14, 1);
    }
    ctx.fillStyle = "#445";
    ctx.fillText(fmt(hi), side + 28, 10);
    ctx.fillText(fmt(lo), side + 28, side);
    document.getElementById(id + "-caption").textContent = im.caption || "";
    drawn++;
  }
  return drawn;
}

// The overview: the process's services, each with a few counters refreshed
// every 2 s.
async function acheronOverview() {
  const body = document.querySelector("#services tbody");
  const list = await (await fetch("/api/services")).json();
  const state = { services: list.length, refreshed: 0 };
  window.acheronDashboard = state;
  for (const s of list) {
    const tr = el("tr");
    const a = el("a", { href: "/service/" + encodeURIComponent(s.name) }, s.name);
    const td = el("td");
    td.appendChild(a);
    tr.appendChild(td);
    tr.appendChild(el("td", {}, s.doc || ""));
    tr.appendChild(el("td", { id: "status-" + s.name }, ""));
    body.appendChild(tr);
  }
  async function refresh() {
    await Promise.all(list.map(async (s) => {
      const cell = document.getElementById("status-" + s.name);
      try {
        const j = await (await fetch("/api/status/" + encodeURIComponent(s.name))).json();
        const parts = Object.entries(j.counters || {}).slice(0, 4).map(([k, v]) => k + " " + fmt(v));
        cell.textContent = j.error ? j.error : parts.join(", ");
      } catch (err) {
        cell.textContent = "unreachable";
      }
    }));
    state.refreshed++;
  }
  await refresh();
  setInterval(refresh, 2000);
}

function acheronService() {
  const name = decodeURIComponent(location.pathname.split("/").pop());
  document.getElementById("title").textContent = name;
  document.title = "Acheron: " + name;
  const state = { updates: 0, markers: 0, last: null, series: {}, canvases: {} };
  window.acheronDashboard = state;

  function canvasFor(id, parent, title, w, h) {
    if (!state.canvases[id]) {
      const panel = el("div", { class: "panel" });
      panel.appendChild(el("h2", {}, title));
      const c = el("canvas", { id: id, width: w || 420, height: h || 180 });
      panel.appendChild(c);
      document.getElementById(parent).appendChild(panel);
      state.canvases[id] = c;
    }
    return state.canvases[id];
  }

  function push(key, v) {
    const s = state.series[key] || (state.series[key] = []);
    s.push(v);
    if (s.length > HISTORY) s.shift();
    return s;
  }

  function render(snap) {
    if (snap.doc) document.getElementById("doc").textContent = snap.doc;
    // Tiles: counters and gauges.
    const tiles = document.getElementById("tiles");
    tiles.textContent = "";
    for (const group of [snap.counters || {}, snap.gauges || {}]) {
      for (const [k, v] of Object.entries(group)) {
        const t = el("div", { class: "tile", id: "tile-" + k });
        t.appendChild(el("div", { class: "v" }, fmt(v)));
        t.appendChild(el("div", { class: "k" }, k.replace(/_/g, " ")));
        tiles.appendChild(t);
      }
    }
    // Rates from successive counters, and plotted gauges.
    const prev = state.last;
    for (const [key, label] of Object.entries(snap.rates || {})) {
      let rate = 0;
      if (prev && prev.counters && snap.time > prev.time) {
        rate = Math.max(0, (snap.counters[key] - prev.counters[key]) / (snap.time - prev.time));
      }
      const s = push("rate-" + key, rate);
      linePlot(canvasFor("plot-" + key, "plots", label), s, fmt(rate) + " " + label);
    }
    for (const key of snap.plot_gauges || []) {
      const v = (snap.gauges || {})[key] || 0;
      const s = push("gauge-" + key, v);
      linePlot(canvasFor("plot-" + key, "plots", key.replace(/_/g, " ")), s, fmt(v));
    }
    if (snap.latency) {
      const lat = snap.latency;
      barPlot(canvasFor("latency", "histograms", lat.title || "request latency (requests per bucket)"),
              lat.counts, boundLabels(lat.bounds_s), lat.unit || "requests", "#7a4fd6");
    }
    for (const hist of snap.histograms || []) {
      barPlot(canvasFor("hist-" + hist.id, "histograms", hist.title), hist.counts,
              hist.labels || boundLabels(hist.bounds_s), hist.unit || "", "#7a4fd6");
    }
    if (snap.images) {
      document.getElementById("images-section").hidden = false;
      state.images = drawImages(document.getElementById("images"), snap.images, state);
    }
    if (snap.tables) {
      renderTables(document.getElementById("tables"), snap.tables, state);
    }
    if (snap.hit_times) {
      const ht = snap.hit_times;
      let last = ht.counts.length;
      while (last > 1 && !ht.counts[last - 1]) last--;
      const counts = ht.counts.slice(0, Math.max(10, last));
      const labels = counts.map((_, i) => fmt(i * ht.bin_ns) + "ns");
      barPlot(canvasFor("hittimes", "histograms", "hit times, recent events"), counts, labels,
              "hits", "#d6792f");
    }
    if (snap.hitmap) {
      document.getElementById("hitmap-section").hidden = false;
      const r = drawHitmap(document.getElementById("hitmap"), snap.hitmap);
      state.markers = r.markers;
      document.getElementById("hitmap-markers").textContent = String(r.markers);
      document.getElementById("hitmap-scale").textContent = "max " + fmt(r.max);
      document.getElementById("hitmap-caption").textContent =
          snap.hitmap.projection + ", " + fmt(snap.hitmap.events) + " recent events";
    }
    if (snap.workers) {
      document.getElementById("workers-section").hidden = false;
      const body = document.querySelector("#workers tbody");
      body.textContent = "";
      for (const w of snap.workers) {
        const tr = el("tr");
        tr.appendChild(el("td", {}, w.id));
        tr.appendChild(el("td", {}, w.peer || ""));
        tr.appendChild(el("td", { class: "state-" + w.state }, w.state));
        tr.appendChild(el("td", {}, fmt(w.in_flight)));
        tr.appendChild(el("td", {}, (w.last_seen_s || 0).toFixed(1)));
        tr.appendChild(el("td", {}, w.node || ""));
        // An array task as JOB_TASK (Slurm's own spelling), else the job id.
        const job = w.slurm_array_job_id
            ? w.slurm_array_job_id + "_" + (w.slurm_array_task_id || "")
            : (w.slurm_job_id || "");
        tr.appendChild(el("td", {}, job));
        body.appendChild(tr);
      }
      state.workers = snap.workers.length;
    }
    const info = document.querySelector("#info tbody");
    info.textContent = "";
    for (const [k, v] of Object.entries(snap.info || {})) {
      const tr = el("tr");
      tr.appendChild(el("th", {}, k));
      tr.appendChild(el("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v)));
      info.appendChild(tr);
    }
    if (snap.error) {
      const tr = el("tr");
      tr.appendChild(el("th", {}, "error"));
      tr.appendChild(el("td", {}, snap.error));
      info.appendChild(tr);
    }
    state.last = snap;
    state.updates++;
  }

  const badge = document.getElementById("connection");
  const source = new EventSource("/events/" + encodeURIComponent(name));
  source.onopen = () => { badge.textContent = "live"; badge.className = "badge live"; };
  source.onerror = () => { badge.textContent = "reconnecting"; badge.className = "badge down"; };
  source.onmessage = (e) => {
    try {
      render(JSON.parse(e.data));
    } catch (err) {
      badge.textContent = "bad data: " + err;
    }
  };
}
