/// The dashboard's one page: inline CSS and JS, no external resource (the CSP the server sends forbids any). The
/// ledger's data is inlined, so the page is complete when it loads; it then refreshes from `/api/dashboard`. Every
/// value reaches the DOM through `textContent` or an attribute, never as markup.
enum DashboardPage {
    /// The page with `data` (starpipe.dashboard()'s JSON, or nil when the ledger could not be read) inlined.
    static func html(data: String?, refreshSeconds: Int) -> String {
        // "<" only occurs inside JSON strings, where \u003c means the same: nothing in the data can close the script.
        let inlined = (data ?? "null").replacingOccurrences(of: "<", with: #"\u003c"#)
        return template
            .replacingOccurrences(of: "__STARPIPE_REFRESH_SECONDS__", with: String(refreshSeconds))
            .replacingOccurrences(of: "__STARPIPE_DATA__", with: inlined)
    }

    private static let template = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>starpipe dashboard</title>
<style>
  :root { --ok: #1e8e3e; --bad: #d93025; --warn: #f29900; --run: #1a73e8; --dup: #80868b; --ink: #202124; --muted: #5f6368; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f8f9fa; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: #fff; border-bottom: 1px solid #dadce0; }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); }
  header .readonly { margin-left: auto; padding: 2px 8px; border: 1px solid #dadce0; border-radius: 10px; color: var(--muted); }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 16px 20px; }
  section { background: #fff; border: 1px solid #dadce0; border-radius: 8px; padding: 12px 16px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  .empty { color: var(--muted); font-style: italic; }
  .cell { border-radius: 6px; padding: 6px 8px; color: #fff; min-width: 140px; }
  .cell .status { font-weight: 700; }
  .cell .reason { margin-top: 4px; font-size: 12px; word-break: break-word; }
  .cell a, .cell .sub { color: inherit; font-size: 12px; opacity: .9; }
  td.none { background: #f1f3f4; color: var(--muted); border-radius: 6px; }
  .status-success { background: var(--ok); }
  .status-failed, .status-dead { background: var(--bad); }
  .status-blocked { background: var(--warn); color: #202124; }
  .status-pending, .status-processing { background: var(--run); }
  .status-duplicate { background: var(--dup); }
  .pill { display: inline-block; padding: 0 6px; border-radius: 8px; color: #fff; font-size: 12px; }
  .timeline { display: flex; height: 22px; border-radius: 4px; overflow: hidden; min-width: 240px; }
  .segment { min-width: 6px; color: #fff; font-size: 11px; white-space: nowrap; overflow: hidden; padding: 3px 4px; border-right: 1px solid #fff; }
  .segment.open { background-image: repeating-linear-gradient(45deg, transparent 0 6px, rgba(255,255,255,.25) 6px 12px); }
  .reason-text { color: var(--bad); font-size: 12px; word-break: break-word; }
  button[disabled] { cursor: not-allowed; }
  pre { margin: 0; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
  #throughput svg { width: 100%; height: 220px; }
  .bar { fill: var(--run); }
  .axis { stroke: #9aa0a6; }
  .label { fill: var(--muted); font-size: 11px; }
  #origin-form { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 8px 12px; margin-bottom: 8px; }
  #origin-form label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
  #origin-form input, #origin-form select { font: inherit; padding: 3px 6px; }
  #origin-summary { margin: 6px 0; }
  #error { display: none; margin: 12px 20px 0; padding: 8px 12px; background: #fce8e6; color: var(--bad); border-radius: 6px; }
</style>
</head>
<body>
<header>
  <h1>starpipe</h1>
  <span class="meta" id="generated">loading</span>
  <span class="meta" id="totals"></span>
  <span class="readonly" title="This page changes nothing. Act with the starpipe CLI or SQL.">read-only</span>
</header>
<div id="error"></div>
<main>
  <section class="wide"><h2>Last job per client and table</h2><div id="grid"></div></section>
  <section class="wide"><h2>Stage timelines of recent jobs</h2><div id="jobs"></div></section>
  <section><h2>Dead-letter queue</h2><div id="dlq"></div></section>
  <section><h2>Drift awaiting review</h2><div id="drift"></div></section>
  <section><h2>Rejects by rule</h2><div id="rejects"></div></section>
  <section><h2 id="throughput-title">Rows promoted per hour</h2><div id="throughput"></div></section>
  <section class="wide"><h2>Where a production row came from</h2>
    <form id="origin-form" method="post" autocomplete="off">
      <label>table<select id="origin-target" name="target"></select></label>
      <span id="origin-keys"></span>
      <button type="submit" id="origin-submit">look up</button>
    </form>
    <div id="origin-result" data-state="idle"><p class="empty">Choose a table, type its key, and look up: the job, bucket file and row that wrote the row. The key is sent once, by POST, and not shown again.</p></div>
  </section>
</main>
<script id="starpipe-data" type="application/json">__STARPIPE_DATA__</script>
<script>
"use strict";
const REFRESH_SECONDS = __STARPIPE_REFRESH_SECONDS__;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}
function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}
function statusClass(status) { return "status-" + String(status || "").toLowerCase(); }
function broken(status) { return status === "FAILED" || status === "DEAD" || status === "BLOCKED"; }
function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}
function when(timestamp) { return timestamp ? String(timestamp).replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : ""; }
function table(headers, rows) {
  if (rows.length === 0) return el("p", { class: "empty" }, "none");
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map(h => el("th", {}, h)))), el("tbody", {}, ...rows));
}
function replace(id, node) { const target = document.getElementById(id); target.replaceChildren(node); }

function renderGrid(grid) {
  const clients = [...new Set(grid.map(g => g.client))].sort();
  const tables = [...new Set(grid.map(g => g.table))].sort();
  if (grid.length === 0) return replace("grid", el("p", { class: "empty" }, "no jobs yet"));
  const byKey = new Map(grid.map(g => [g.client + "\u0000" + g.table, g]));
  const rows = clients.map(client => el("tr", {}, el("th", {}, client), ...tables.map(name => {
    const g = byKey.get(client + "\u0000" + name);
    if (!g) return el("td", { class: "none" }, "—");
    return el("td", {},
      el("div", { class: "cell " + statusClass(g.status), id: "cell-" + g.client + "-" + g.table, "data-client": g.client,
                  "data-table": g.table, "data-job": g.job_id, "data-status": g.status },
        el("div", { class: "status" }, g.status),
        el("div", { class: "sub" }, "job " + g.job_id + " · " + g.stage + " · " + age(g.age_seconds) + " ago"),
        el("div", { class: "sub" }, g.jobs + (g.jobs === 1 ? " job" : " jobs") + (g.attempts ? " · attempt " + g.attempts : "")),
        g.error && broken(g.status) ? el("div", { class: "reason" }, g.error) : null));
  })));
  replace("grid", el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "client"), ...tables.map(t => el("th", {}, t)))),
                  el("tbody", {}, ...rows)));
}

function renderJobs(jobs) {
  replace("jobs", table(["job", "client.table", "status", "stages (time in each)", "reason"], jobs.map(j => {
    const total = j.events.reduce((sum, e) => sum + Math.max(0, e.seconds || 0), 0) || 1;
    const bar = el("div", { class: "timeline", "data-job": j.job_id },
      ...j.events.map(e => {
        const seconds = Math.max(0, e.seconds || 0);
        const label = e.event + " → " + e.status + " at " + e.stage + " (" + seconds.toFixed(2) + " s" + (e.open ? ", still" : "") + ")";
        return el("div", { class: "segment " + statusClass(e.status) + (e.open ? " open" : ""), title: label,
                           style: "flex: " + Math.max(seconds / total, 0.04).toFixed(4) },
                  e.event);
      }));
    return el("tr", { id: "job-" + j.job_id, class: "job " + statusClass(j.status) + "-row" },
      el("td", {}, String(j.job_id)), el("td", {}, j.client + "." + j.table),
      el("td", {}, el("span", { class: "pill " + statusClass(j.status) }, j.status), " at " + j.stage),
      el("td", {}, bar),
      el("td", {}, j.error && broken(j.status) ? el("span", { class: "reason-text" }, j.error) : ""));
  })));
}

function renderDLQ(dlq) {
  replace("dlq", table(["job", "client.table", "stage", "attempts", "last error", "died", ""], dlq.map(d => el("tr", { id: "dlq-" + d.job_id },
    el("td", {}, String(d.job_id)), el("td", {}, d.client + "." + d.table), el("td", {}, d.stage), el("td", {}, String(d.attempts)),
    el("td", {}, el("span", { class: "reason-text" }, d.error || "")), el("td", {}, when(d.died_at)),
    el("td", {}, el("button", { disabled: "", title: "Read-only dashboard: replay with `starpipe dlq replay " + d.job_id + "`" }, "replay"))))));
}

function renderDrift(drift) {
  replace("drift", table(["job", "client.table", "schema version", "diff", "reason"], drift.map(d => el("tr", { id: "drift-" + d.job_id },
    el("td", {}, String(d.job_id)), el("td", {}, d.client + "." + d.table), el("td", {}, String(d.schema_version)),
    el("td", {}, el("pre", {}, d.diff ? Object.entries(d.diff).map(([key, value]) => key + ": " + JSON.stringify(value)).join("\n") : "")),
    el("td", {}, el("span", { class: "reason-text" }, d.error || ""))))));
}

function renderRejects(rejects) {
  replace("rejects", table(["client.table", "rule", "column", "sqlstate", "rows", "unresolved", "jobs"], rejects.map(r => el("tr", {},
    el("td", {}, r.client + "." + r.table), el("td", {}, r.rule), el("td", {}, r.target_column || ""), el("td", {}, r.sqlstate),
    el("td", {}, String(r.rows)), el("td", {}, String(r.unresolved)), el("td", {}, String(r.jobs))))));
}

function renderThroughput(points, hours) {
  document.getElementById("throughput-title").textContent = "Rows promoted per hour, last " + hours + " h";
  const width = 600, height = 220, left = 48, bottom = 28, top = 12;
  const max = Math.max(1, ...points.map(p => p.rows));
  const step = (width - left - 8) / Math.max(1, points.length);
  const plot = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "rows promoted per hour", id: "throughput-plot" });
  plot.appendChild(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom }));
  plot.appendChild(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  plot.appendChild(svg("text", { class: "label", x: left - 6, y: top + 8, "text-anchor": "end" }, String(max)));
  plot.appendChild(svg("text", { class: "label", x: left - 6, y: height - bottom, "text-anchor": "end" }, "0"));
  points.forEach((p, i) => {
    const h = (height - bottom - top) * p.rows / max;
    const bar = svg("rect", { class: "bar", x: (left + i * step + 1).toFixed(1), y: (height - bottom - h).toFixed(1),
                              width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1), "data-hour": p.hour, "data-rows": p.rows });
    bar.appendChild(svg("title", {}, when(p.hour) + ": " + p.rows + " rows, " + p.jobs + " jobs"));
    plot.appendChild(bar);
    if (i === 0 || i === points.length - 1 || i % 6 === 0) {
      plot.appendChild(svg("text", { class: "label", x: (left + i * step + step / 2).toFixed(1), y: height - 10, "text-anchor": "middle" },
                           String(p.hour).slice(11, 16)));
    }
  });
  replace("throughput", plot);
}

// Row origin: the form is built from data.targets, and rebuilt only when they change, so a refresh never clears
// what is being typed. The key goes out in a POST body and is cleared from the inputs once sent; the answer
// (starpipe.row_origin) holds jobs, files, row numbers and column names, never the key or a value.
let originTargets = null;
function renderOriginForm(targets) {
  const signature = JSON.stringify(targets || []);
  if (signature === originTargets) return;
  originTargets = signature;
  const select = document.getElementById("origin-target");
  const chosen = select.value;
  select.replaceChildren(...(targets || []).map(t => el("option", { value: t.target }, t.target)));
  if ((targets || []).some(t => t.target === chosen)) select.value = chosen;
  document.getElementById("origin-submit").disabled = !(targets || []).length;
  renderOriginKeys();
}
function renderOriginKeys() {
  const target = JSON.parse(originTargets || "[]").find(t => t.target === document.getElementById("origin-target").value);
  replace("origin-keys", el("span", {}, ...(target ? target.conflict_key : []).map(column =>
    el("label", {}, column, el("input", { type: "text", name: column, "data-column": column, autocomplete: "off", spellcheck: "false",
                                          required: "" })))));
}
function originEntry(e) {
  return el("tr", { class: "origin-entry", "data-job": e.job_id, "data-action": e.action },
    el("td", {}, String(e.job_id)), el("td", {}, e.client + "." + e.table), el("td", {}, e.action),
    el("td", { class: "origin-file" }, e.data_key || ""), el("td", { class: "origin-row" }, e.source_row === null || e.source_row === undefined ? "" : String(e.source_row)),
    el("td", {}, (e.changed_columns || []).join(", ")), el("td", {}, when(e.at)),
    el("td", {}, e.snapshot_date + " · run " + e.run_id));
}
function renderOrigin(state, answer) {
  const result = document.getElementById("origin-result");
  result.setAttribute("data-state", state);
  if (state === "error") {
    result.replaceChildren(el("p", { class: "reason-text", id: "origin-error" }, answer));
    return;
  }
  const last = answer.last_write;
  const uncertain = answer.insert_uncertain_through_job;
  const note = uncertain === null || uncertain === undefined ? null
    : el("p", { class: "sub", id: "origin-uncertain" }, "Staging of job " + uncertain + " and earlier is gone (retention): an insert by one of them cannot be told apart from an unchanged row.");
  if (!answer.history.length) {
    result.replaceChildren(el("p", { id: "origin-none" }, "No promotion into " + answer.target + " wrote a row with that key."), note);
    return;
  }
  const summary = last
    ? el("p", { id: "origin-summary" }, "Last written by job ", el("strong", { id: "origin-last-job" }, String(last.job_id)),
         " (" + last.client + "." + last.table + ", " + last.action + ") from file ", el("code", { id: "origin-last-file" }, last.data_key),
         ", row ", el("strong", { id: "origin-last-row" }, String(last.source_row)), ", at ", el("span", { id: "origin-last-at" }, when(last.at)), ".")
    : el("p", { id: "origin-summary" }, "Only kept changes are recorded for that key in " + answer.target + ".");
  result.replaceChildren(summary, note,
    table(["job", "client.table", "action", "bucket file", "row", "changed columns", "when", "snapshot"], answer.history.map(originEntry)));
}
document.getElementById("origin-target").addEventListener("change", renderOriginKeys);
document.getElementById("origin-form").addEventListener("submit", event => {
  event.preventDefault();
  const inputs = [...document.querySelectorAll("#origin-keys input")];
  const key = Object.fromEntries(inputs.map(input => [input.getAttribute("data-column"), input.value]));
  inputs.forEach(input => { input.value = ""; });
  const result = document.getElementById("origin-result");
  result.setAttribute("data-state", "pending");
  result.replaceChildren(el("p", { class: "empty" }, "looking up…"));
  fetch("/api/row-origin", { method: "POST", credentials: "same-origin", cache: "no-store",
                             headers: { "Content-Type": "application/json" },
                             body: JSON.stringify({ target: document.getElementById("origin-target").value, key: key }) })
    .then(response => response.json().then(answer => response.ok ? renderOrigin("done", answer)
                                                                   : renderOrigin("error", answer.error || ("HTTP " + response.status))))
    .catch(() => renderOrigin("error", "The lookup could not reach the worker."));
});

function render(data) {
  const error = document.getElementById("error");
  if (!data) {
    error.style.display = "block";
    error.textContent = "The ledger cannot be read right now; showing the last data received.";
    return;
  }
  error.style.display = "none";
  document.getElementById("generated").textContent = "as of " + when(data.generated_at);
  document.getElementById("totals").textContent = Object.entries(data.statuses).filter(([, n]) => n > 0)
    .map(([status, n]) => n + " " + status).join(" · ");
  renderGrid(data.grid);
  renderJobs(data.jobs);
  renderDLQ(data.dlq);
  renderDrift(data.drift);
  renderRejects(data.rejects);
  renderThroughput(data.throughput, data.hours);
  renderOriginForm(data.targets);
  document.body.setAttribute("data-rendered", "true");
}

render(JSON.parse(document.getElementById("starpipe-data").textContent));
setInterval(() => {
  fetch("/api/dashboard", { credentials: "same-origin", cache: "no-store" })
    .then(response => response.ok ? response.json() : null)
    .then(render, () => render(null));
}, REFRESH_SECONDS * 1000);
</script>
</body>
</html>
"""#
}
