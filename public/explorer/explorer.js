// The events explorer: the key gate, the filters (filters.js) → a page of events (table.js), a
// chart from GET /api/stats/counts, and a session's events as a timeline (timeline.js); beside the
// events, the Errors view (errors.js). This module wires them together and draws the chart. Every
// value from the API is put in the page as text (textContent), never as HTML: payloads come from
// whoever holds a write key.
import { ApiError, forgetKey, get, hasKey, keyLabel, setKey } from "./api.js";
import { bucketLabel, compact, drawChart } from "./chart.js";
import { $, DAY, describe, HOUR, h } from "./dom.js";
import { countErrors, ERROR_FILTERS, initErrors, showErrors } from "./errors.js";
import { DEFAULT_LIMIT, initFilters, loadFromHash, readForm, saveToHash, setFilter, writeForm } from "./filters.js";
import { initTable, loadFirstPage, recolour } from "./table.js";
import { closeTimeline, initTimeline, openTimeline } from "./timeline.js";

/** @typedef {import("./dom.js").EventResult} EventResult */
/** Series the chart colours; the rest are drawn as one grey "other". */
const COLOURS = 8;

const state = {
  /** @type {Record<string, string>} */
  filters: {},
  limit: DEFAULT_LIMIT,
  /** Category → palette slot, from the chart's series (largest first). @type {Map<string, string>} */
  colours: new Map(),
  /** @type {import("./chart.js").ChartData | null} */
  chart: null,
  /** The chart's window as the API answered it. @type {{ after: string, before: string } | null} */
  window: null,
  /** The request in flight wins; an older answer arriving late is dropped. */
  seq: 0,
  namesLoaded: false,
  /** The view shown, and whether the events view has loaded since the key was given. */
  view: /** @type {"events" | "errors"} */ ("events"),
  eventsLoaded: false,
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

// ---- one view update at a time ----------------------------------------------------------------

/** aria-busy on the view while the newest request is answered (assistive technology, and the tests, wait on it). @param {number} seq @param {boolean} on */
function busy(seq, on) {
  if (seq === state.seq) $("app").toggleAttribute("aria-busy", on);
}

/** Runs one view update under a new `seq`: the newest update wins, an older answer arriving late is dropped. @param {(seq: number) => Promise<unknown>} work */
async function update(work) {
  const seq = ++state.seq;
  busy(seq, true);
  await work(seq);
  busy(seq, false);
}

/** @param {number} seq */
const isCurrent = (seq) => seq === state.seq;

async function apply() {
  state.filters = readForm();
  state.namesLoaded = false;
  state.eventsLoaded = true;
  saveToHash(state.filters, state.limit);
  await update(async (seq) => {
    const page = await loadFirstPage(state.filters, state.limit, seq);
    if (page) await loadChart(page.results, seq);
  });
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
        setFilter("category", active ? "" : s.key);
        void apply();
      });
    }
    li.append(b);
    legend.append(li);
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

// ---- the two views -----------------------------------------------------------------------------

/**
 * Shows one view. The events view keeps its filters in the fragment as before; the errors view as
 * `#view=errors&…` (its own filters), so either can be bookmarked.
 * @param {"events" | "errors"} view @param {Record<string, string>} [errorFilters]
 */
function showView(view, errorFilters) {
  state.view = view;
  $("events-view").hidden = view !== "events";
  $("errors-view").hidden = view !== "errors";
  $("tab-events").setAttribute("aria-selected", String(view === "events"));
  $("tab-errors").setAttribute("aria-selected", String(view === "errors"));
  closeTimeline();
  if (view === "errors") void showErrors(errorFilters ?? {});
  else if (!state.eventsLoaded) void apply();
  else {
    saveToHash(state.filters, state.limit);
    redraw();
  }
}

/** The errors view's filters in the fragment. @param {Record<string, string>} filters */
function saveErrorsHash(filters) {
  history.replaceState(null, "", `#${new URLSearchParams({ view: "errors", ...filters })}`);
}

/** The errors view's filters the fragment names, or null when it names the events view. */
function errorsFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("view") !== "errors") return null;
  /** @type {Record<string, string>} */
  const filters = {};
  for (const name of ERROR_FILTERS) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

// ---- wiring -----------------------------------------------------------------------------------

function start() {
  showApp();
  state.eventsLoaded = false;
  writeForm(state.filters);
  /** @type {HTMLSelectElement} */ ($("limit")).value = String(state.limit);
  const errors = errorsFromHash();
  showView(errors ? "errors" : "events", errors ?? undefined);
  void countErrors();
}

$("tab-events").addEventListener("click", () => showView("events"));
$("tab-errors").addEventListener("click", () => showView("errors"));
initErrors({ refused: keyRefused, saveHash: saveErrorsHash });

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

initFilters(() => void apply());

$("limit").addEventListener("change", () => {
  state.limit = Number(/** @type {HTMLSelectElement} */ ($("limit")).value);
  void apply();
});

const colourOf = (/** @type {string} */ category) => state.colours.get(category) ?? "other";

initTable({
  colourOf,
  refused: keyRefused,
  openSession: (session) => void openTimeline(session),
  update,
  isCurrent,
});

$("f-name").addEventListener("focus", () => void loadNames());

initTimeline({
  colourOf,
  refused: keyRefused,
  onFilter: (session) => {
    setFilter("session_id", session);
    void apply();
  },
});

let pending = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(pending);
  pending = requestAnimationFrame(redraw);
}).observe($("chart"));

const fromHash = loadFromHash();
state.filters = fromHash.filters;
state.limit = fromHash.limit ?? state.limit;
if (hasKey()) start();
else showGate();
