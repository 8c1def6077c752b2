// The events explorer: the key gate, filters → a page of events (cursor pagination, following
// `next`), a chart from GET /api/stats/counts, and a session's events as a timeline (timeline.js).
// Every value from the API is put in the page as text (textContent), never as HTML: payloads come
// from whoever holds a write key.
import { ApiError, forgetKey, get, hasKey, keyLabel, setKey } from "./api.js";
import { bucketLabel, compact, drawChart } from "./chart.js";
import { $, DAY, describe, HOUR, h, splitTime } from "./dom.js";
import { jsonBlock, preview } from "./json-view.js";
import { closeTimeline, initTimeline, openTimeline } from "./timeline.js";

/** @typedef {import("./dom.js").EventResult} EventResult @typedef {import("./dom.js").EventPage} EventPage */
/** Series the chart colours; the rest are drawn as one grey "other". */
const COLOURS = 8;
/** The filters the table and the chart share, named as the API names them. */
const FILTERS = /** @type {const} */ ([
  "session_id",
  "category",
  "name",
  "country",
  "device",
  "timestamp_after",
  "timestamp_before",
]);

const state = {
  /** @type {Record<string, string>} */
  filters: {},
  limit: 50,
  /** The page shown (its URL: the first page's, or a `next` link), and the ones before it. */
  current: "",
  /** @type {string[]} */
  newer: [],
  /** @type {string | null} */
  next: null,
  /** Category → palette slot, from the chart's series (largest first). @type {Map<string, string>} */
  colours: new Map(),
  /** @type {import("./chart.js").ChartData | null} */
  chart: null,
  /** The chart's window as the API answered it. @type {{ after: string, before: string } | null} */
  window: null,
  /** The request in flight wins; an older answer arriving late is dropped. */
  seq: 0,
  namesLoaded: false,
};

// ---- the key ----------------------------------------------------------------------------------

function showGate(/** @type {string} */ message = "") {
  $("app").hidden = true;
  $("who").hidden = true;
  $("gate").hidden = false;
  const error = $("key-error");
  error.textContent = message;
  error.hidden = message === "";
  $("key").focus();
}

function showApp() {
  $("gate").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-label").textContent = keyLabel();
}

/** A refused key sends the user back to the gate; anything else is shown where it happened. @param {unknown} err */
function keyRefused(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    forgetKey();
    const because = err.message.charAt(0).toUpperCase() + err.message.slice(1);
    showGate(err.status === 401 ? "The Eye does not know this key (or it was revoked)." : `${because}.`);
    return true;
  }
  return false;
}

// ---- filters ----------------------------------------------------------------------------------

function readForm() {
  /** @type {Record<string, string>} */
  const f = {};
  for (const name of FILTERS) {
    const input = /** @type {HTMLInputElement} */ (document.querySelector(`#filters [name="${name}"]`));
    const value = name === "country" ? input.value.trim().toUpperCase() : input.value.trim();
    if (value !== "") f[name] = value;
  }
  return f;
}

/** @param {Record<string, string>} f */
function writeForm(f) {
  for (const name of FILTERS) {
    const input = /** @type {HTMLInputElement} */ (document.querySelector(`#filters [name="${name}"]`));
    input.value = f[name] ?? "";
  }
}

/** The filters (never the key) go in the address's fragment, so a view can be bookmarked or shared. */
function saveToHash() {
  const params = new URLSearchParams(state.filters);
  if (state.limit !== 50) params.set("limit", String(state.limit));
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

function loadFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  /** @type {Record<string, string>} */
  const f = {};
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) f[name] = value;
  }
  const limit = Number(params.get("limit"));
  if ([25, 50, 100, 250].includes(limit)) state.limit = limit;
  return f;
}

/** A datetime-local value for a time (UTC), to the minute. @param {number} ms */
const localValue = (ms) => new Date(ms).toISOString().slice(0, 16);

async function apply() {
  state.filters = readForm();
  state.newer = [];
  state.namesLoaded = false;
  saveToHash();
  const seq = ++state.seq;
  busy(seq, true);
  const page = await loadPage(firstPageUrl(), seq);
  if (page) await loadChart(page.results, seq);
  busy(seq, false);
}

/** aria-busy on the view while the newest request is answered (assistive technology, and the tests, wait on it). @param {number} seq @param {boolean} on */
function busy(seq, on) {
  if (seq === state.seq) $("app").toggleAttribute("aria-busy", on);
}

function firstPageUrl() {
  const params = new URLSearchParams({ ...state.filters, pagination: "cursor", limit: String(state.limit) });
  return `/api/event/?${params}`;
}

// ---- the table --------------------------------------------------------------------------------

/** @param {string} url @param {number} seq @returns {Promise<EventPage | null>} */
async function loadPage(url, seq) {
  const status = $("status");
  status.className = "status";
  status.textContent = "Loading events…";
  $("events").classList.add("loading");
  try {
    const page = /** @type {EventPage} */ (await get(url));
    if (seq !== state.seq) return null;
    state.current = url;
    state.next = page.next;
    renderRows(page.results);
    status.textContent = "";
    updatePager(page.results.length);
    return page;
  } catch (err) {
    if (seq !== state.seq || keyRefused(err)) return null;
    status.className = "status error";
    status.textContent = describe(err);
    renderRows([]);
    updatePager(0);
    return null;
  } finally {
    $("events").classList.remove("loading");
  }
}

/** @param {number} shown */
function updatePager(shown) {
  const pageNo = state.newer.length + 1;
  /** @type {HTMLButtonElement} */ ($("newer")).disabled = state.newer.length === 0;
  /** @type {HTMLButtonElement} */ ($("older")).disabled = state.next === null;
  const first = (pageNo - 1) * state.limit + 1;
  $("page-label").textContent =
    shown === 0 ? `Page ${pageNo}` : `${first.toLocaleString("en-US")}–${(first + shown - 1).toLocaleString("en-US")}`;
}

/** @param {string} category */
function categoryTag(category) {
  const tag = h("span", "tag");
  const dot = h("span", `dot c-${state.colours.get(category) ?? "other"}`);
  dot.dataset.cat = category;
  tag.append(dot, h("span", "", category));
  return tag;
}

/** @param {EventResult[]} results */
function renderRows(results) {
  const body = /** @type {HTMLTableSectionElement} */ (document.querySelector("#events tbody"));
  body.replaceChildren();
  if (results.length === 0) {
    const tr = h("tr", "empty-row");
    const td = /** @type {HTMLTableCellElement} */ (h("td", "", "No events match these filters."));
    td.colSpan = 7;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const e of results) {
    const tr = h("tr", "ev");
    tr.dataset.eventId = e.event_id;
    tr.tabIndex = 0;
    tr.setAttribute("aria-expanded", "false");
    const t = splitTime(e.timestamp);
    const time = h("td", "time");
    time.title = e.timestamp;
    time.append(h("span", "date", `${t.date} `), t.time, h("span", "frac", t.frac));
    const session = /** @type {HTMLButtonElement} */ (h("button", "session", e.session_id));
    session.type = "button";
    session.title = `Show session ${e.session_id} as a timeline`;
    session.addEventListener("click", (ev) => {
      ev.stopPropagation();
      void openTimeline(e.session_id);
    });
    const sessionCell = h("td");
    sessionCell.append(session);
    const categoryCell = h("td");
    categoryCell.append(categoryTag(e.category));
    const toggle = h("td", "col-toggle");
    toggle.append(h("span", "toggle", "▶"));
    tr.append(
      toggle,
      time,
      sessionCell,
      categoryCell,
      h("td", "name", e.name),
      h("td", "app", e.application ?? "—"),
      h("td", "preview", preview(e.data)),
    );
    const flip = () => toggleDetail(tr, e);
    tr.addEventListener("click", flip);
    tr.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        flip();
      }
    });
    body.append(tr);
  }
}

/** @param {HTMLElement} tr @param {EventResult} e */
function toggleDetail(tr, e) {
  const open = tr.classList.toggle("open");
  tr.setAttribute("aria-expanded", String(open));
  const next = tr.nextElementSibling;
  if (!open) {
    if (next?.classList.contains("detail")) next.remove();
    return;
  }
  const detail = h("tr", "detail");
  const td = /** @type {HTMLTableCellElement} */ (h("td"));
  td.colSpan = 7;
  const meta = h("div", "detail-meta");
  for (const [label, value] of [
    ["event_id", e.event_id],
    ["received", e.received_at],
    ["session", e.session_id],
  ]) {
    const item = h("span", "", `${label} `);
    item.append(h("b", "", value));
    meta.append(item);
  }
  td.append(meta, contextLine(e.context), jsonBlock(e.data));
  detail.append(td);
  tr.after(detail);
}

/**
 * The event's context as one line of labelled values, as text: where, device, browser/OS, referrer
 * host, campaign. Absent fields are left out; `null` means its application turned context off.
 * @param {import("./dom.js").EventContext | null | undefined} c
 */
function contextLine(c) {
  const line = h("div", "detail-context");
  line.append(h("span", "ctx-label", "Context"));
  if (!c) {
    line.append(h("span", "none", c === null ? "not collected for this application" : "none"));
    return line;
  }
  const join = (/** @type {(string | number | undefined)[]} */ parts, /** @type {string} */ sep) =>
    parts.filter((p) => p !== undefined && p !== "").join(sep);
  /** @type {[string, string][]} */
  const items = [
    ["where", join([c.country, join([c.city, c.region !== c.city ? c.region : undefined], ", ")], " · ")],
    ["device", c.device ?? ""],
    ["browser", join([c.browser, c.os], " / ")],
    ["network", c.asn !== undefined ? `AS${c.asn}` : ""],
    ["referrer", c.referrer_host ?? ""],
    ["campaign", join([c.utm_source, c.utm_medium, c.utm_campaign], " / ")],
  ];
  let shown = 0;
  for (const [label, value] of items) {
    if (value === "") continue;
    const item = h("span", "ctx", `${label} `);
    item.dataset.field = label;
    item.append(h("b", "", value));
    line.append(item);
    shown++;
  }
  if (shown === 0) line.append(h("span", "none", "none"));
  return line;
}

// ---- the chart --------------------------------------------------------------------------------

/**
 * The chart's window: the time filters when set; otherwise ending at the newest event shown and
 * reaching back past the oldest, at least a day. By hour up to 8 days, by day beyond (at most a year).
 * @param {EventResult[]} results
 */
function chartWindow(results) {
  const f = state.filters;
  const at = (/** @type {string} */ s) => Date.parse(s.endsWith("Z") ? s : `${s}Z`);
  const newest = results.length > 0 ? Date.parse(results[0].timestamp) : Date.now();
  const oldest = results.length > 0 ? Date.parse(results[results.length - 1].timestamp) : newest;
  const before = f.timestamp_before ? at(f.timestamp_before) : f.timestamp_after ? Date.now() : newest;
  let after = f.timestamp_after ? at(f.timestamp_after) : Math.min(oldest, before - DAY + 1);
  const interval = before - after > 8 * DAY ? "day" : "hour";
  const clamped = interval === "day" && before - after > 365 * DAY;
  if (clamped) after = before - 365 * DAY;
  return { after, before, interval, clamped };
}

/** @param {EventResult[]} results @param {number} seq */
async function loadChart(results, seq) {
  const w = chartWindow(results);
  const sub = $("chart-sub");
  // The counts filter by country or by device, not both: with both set, the chart follows the country.
  const both = state.filters.country !== undefined && state.filters.device !== undefined;
  try {
    const stats = await get("/api/stats/counts", {
      interval: w.interval,
      by: "category",
      category: state.filters.category,
      name: state.filters.name,
      country: state.filters.country,
      device: both ? undefined : state.filters.device,
      timestamp_after: new Date(w.after).toISOString(),
      timestamp_before: new Date(w.before).toISOString(),
      limit: String(COLOURS),
    });
    if (seq !== state.seq) return;
    assignColours(stats.series.map((/** @type {{category: string}} */ s) => s.category));
    /** @type {import("./chart.js").Series[]} */
    const series = stats.series.map((/** @type {{category: string, counts: number[], total: number}} */ s) => ({
      key: s.category,
      color: state.colours.get(s.category) ?? "other",
      counts: s.counts,
      total: s.total,
    }));
    if (stats.other)
      series.push({
        key: "other",
        color: "other",
        counts: stats.other,
        total: stats.other.reduce((/** @type {number} */ a, /** @type {number} */ b) => a + b, 0),
      });
    state.window = stats.window;
    state.chart = { interval: stats.interval, buckets: stats.buckets, totals: stats.totals, series };
    const per = stats.interval === "hour" ? "Per hour" : "Per day";
    const form = stats.interval === "hour" ? "hour" : "day";
    const end = Date.parse(stats.window.before) - (stats.interval === "hour" ? HOUR : DAY);
    sub.textContent =
      `${per} · ${bucketLabel(stats.window.after, form)} – ${bucketLabel(new Date(end).toISOString(), form)} UTC` +
      (state.filters.session_id ? " · all sessions (the chart does not filter by session)" : "") +
      (both ? " · every device (the chart filters by one of country/device at a time: here the country)" : "") +
      (w.clamped ? " · the last 365 days" : "");
    const total = $("chart-total");
    total.replaceChildren(compact(stats.total), h("small", "", stats.total === 1 ? "event" : "events"));
    total.title = stats.total.toLocaleString("en-US");
    redraw();
    renderLegend(series);
    recolour();
    fillDatalist(
      "categories",
      stats.series.map((/** @type {{category: string}} */ s) => s.category),
    );
  } catch (err) {
    if (seq !== state.seq || keyRefused(err)) return;
    sub.textContent = `Chart unavailable: ${describe(err)}`;
  }
}

/**
 * Gives each shown category a palette slot and keeps it while the page is open, so a category keeps
 * its colour when filters change. A slot is taken back only from a category not shown now.
 * @param {string[]} shown
 */
function assignColours(shown) {
  const wanted = new Set(shown);
  for (const cat of shown) {
    if (state.colours.has(cat)) continue;
    const used = new Set(state.colours.values());
    let slot = Array.from({ length: COLOURS }, (_, i) => `s${i}`).find((c) => !used.has(c));
    if (slot === undefined) {
      const idle = [...state.colours].find(([c]) => !wanted.has(c));
      if (!idle) continue;
      state.colours.delete(idle[0]);
      slot = idle[1];
    }
    state.colours.set(cat, slot);
  }
}

function redraw() {
  if (state.chart) drawChart($("chart"), state.chart, $("tooltip"));
}

/** @param {import("./chart.js").Series[]} series */
function renderLegend(series) {
  const legend = $("legend");
  legend.replaceChildren();
  for (const s of series) {
    const li = h("li");
    const b = /** @type {HTMLButtonElement} */ (h("button"));
    b.type = "button";
    b.append(h("span", `swatch c-${s.color}`), h("span", "", s.key), h("span", "n", compact(s.total)));
    if (s.color === "other") {
      b.disabled = true;
      b.title = "Categories past the eight largest";
    } else {
      const active = state.filters.category === s.key;
      b.classList.toggle("active", active);
      b.title = active ? "Show every category" : `Show only ${s.key}`;
      b.addEventListener("click", () => {
        /** @type {HTMLInputElement} */ ($("f-category")).value = active ? "" : s.key;
        void apply();
      });
    }
    li.append(b);
    legend.append(li);
  }
}

/** The table's category dots take the chart's colours once it has them. */
function recolour() {
  for (const dot of document.querySelectorAll("#events .dot")) {
    const cat = /** @type {HTMLElement} */ (dot).dataset.cat ?? "";
    dot.className = `dot c-${state.colours.get(cat) ?? "other"}`;
  }
}

/** @param {string} id @param {string[]} values */
function fillDatalist(id, values) {
  $(id).replaceChildren(...values.map((v) => Object.assign(document.createElement("option"), { value: v })));
}

/** Name suggestions over the chart's window, asked for once per filter change, when the name field is first used. */
async function loadNames() {
  if (state.namesLoaded || !state.window) return;
  state.namesLoaded = true;
  try {
    const stats = await get("/api/stats/counts", {
      interval: "day",
      by: "name",
      category: state.filters.category,
      country: state.filters.country,
      device: state.filters.country !== undefined ? undefined : state.filters.device,
      timestamp_after: state.window.after,
      timestamp_before: state.window.before,
      limit: "100",
    });
    fillDatalist(
      "names",
      stats.series.map((/** @type {{name: string}} */ s) => s.name),
    );
  } catch {
    state.namesLoaded = false;
  }
}

// ---- wiring -----------------------------------------------------------------------------------

function start() {
  showApp();
  writeForm(state.filters);
  /** @type {HTMLSelectElement} */ ($("limit")).value = String(state.limit);
  void apply();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("key"));
  const value = input.value.trim();
  if (value === "") return;
  setKey(value, /** @type {HTMLInputElement} */ ($("remember")).checked);
  input.value = "";
  start();
});

$("forget").addEventListener("click", () => {
  forgetKey();
  closeTimeline();
  showGate();
});

$("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  void apply();
});

$("clear").addEventListener("click", () => {
  writeForm({});
  void apply();
});

for (const b of document.querySelectorAll("[data-range]")) {
  b.addEventListener("click", () => {
    const days = Number(/** @type {HTMLElement} */ (b).dataset.range);
    /** @type {HTMLInputElement} */ ($("f-after")).value = localValue(Date.now() - days * DAY);
    /** @type {HTMLInputElement} */ ($("f-before")).value = "";
    void apply();
  });
}

$("limit").addEventListener("change", () => {
  state.limit = Number(/** @type {HTMLSelectElement} */ ($("limit")).value);
  void apply();
});

/** @param {string} url */
async function turnTo(url) {
  const seq = ++state.seq;
  busy(seq, true);
  await loadPage(url, seq);
  busy(seq, false);
  $("results-title").scrollIntoView({ block: "nearest" });
}

$("older").addEventListener("click", () => {
  if (state.next === null) return;
  state.newer.push(state.current);
  void turnTo(state.next);
});

$("newer").addEventListener("click", () => {
  const url = state.newer.pop();
  if (url !== undefined) void turnTo(url);
});

$("f-name").addEventListener("focus", () => void loadNames());

initTimeline({
  colourOf: (category) => state.colours.get(category) ?? "other",
  refused: keyRefused,
  onFilter: (session) => {
    /** @type {HTMLInputElement} */ ($("f-session")).value = session;
    void apply();
  },
});

let pending = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(pending);
  pending = requestAnimationFrame(redraw);
}).observe($("chart"));

state.filters = loadFromHash();
if (hasKey()) start();
else showGate();
