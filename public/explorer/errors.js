// The Errors view: what went wrong, counted (GET /api/errors/summary: by kind, rule, type and field
// over whole hours) and listed (GET /api/errors/: filtered like the events, offset pages newest first),
// each entry opening to all its reasons and the payload as it was sent. A row of the summary filters
// the log to its group. Every value from the API goes in as text, never as HTML: refused payloads come
// from whoever holds a write key.
import { get } from "./api.js";
import { $, DAY, describe, detailMeta, expandable, HOUR, h, splitTime, timeCell, toggleCell } from "./dom.js";
import { jsonBlock, preview } from "./json-view.js";

/**
 * @typedef {{ index?: number, field: string | null, message: string, rule?: string }} Reason
 * @typedef {{ id: number, kind: string, occurred_at: string, application: string | null, category: string | null,
 *   name: string | null, field: string | null, rule: string | null, payload: string, reasons: Reason[], source: string | null }} ErrorEntry
 * @typedef {{ count: number, next: string | null, previous: string | null, results: ErrorEntry[] }} ErrorPage
 * @typedef {{ kind: string, rule: string | null, category: string | null, name: string | null, field: string | null, count: number }} Group
 * @typedef {{ window: { after: string, before: string, hours: number }, total: number, totals: Record<string, number>,
 *   truncated: boolean, results: Group[] }} Summary
 */

/** The log's filters, named as GET /api/errors/ names them. */
export const ERROR_FILTERS = /** @type {const} */ ([
  "kind",
  "category",
  "name",
  "field",
  "rule",
  "occurred_after",
  "occurred_before",
]);
/** What a group of the summary sets in the log's filters. */
const GROUP_FILTERS = /** @type {const} */ (["kind", "rule", "category", "name", "field"]);

/** Each kind as the operator reads it. */
export const KINDS = /** @type {Record<string, string>} */ ({
  invalid_event: "refused event",
  malformed_message: "malformed message",
  consumer_failure: "failed write",
  dead_letter: "dead letter",
});
const PAGE = 50;
/** Groups the summary shows at most (it says when there are more). */
const GROUPS = 25;

/** @type {{ refused: (err: unknown) => boolean, saveHash: (filters: Record<string, string>) => void }} */
let hooks = { refused: () => false, saveHash: () => {} };
const state = {
  /** @type {Record<string, string>} */
  filters: {},
  /** The page shown (its URL) and the ones before it. */
  current: "",
  /** @type {string[]} */
  newer: [],
  /** @type {string | null} */
  next: null,
  offset: 0,
  seq: 0,
};

/** @param {string} name */
const field = (name) => /** @type {HTMLInputElement} */ (document.querySelector(`#e-filters [name="${name}"]`));

function readForm() {
  /** @type {Record<string, string>} */
  const f = {};
  for (const name of ERROR_FILTERS) {
    const value = field(name).value.trim();
    if (value !== "") f[name] = value;
  }
  return f;
}

/** @param {Record<string, string>} f */
function writeForm(f) {
  for (const name of ERROR_FILTERS) field(name).value = f[name] ?? "";
}

/** A datetime-local value (UTC, to the minute) as an instant the API takes. @param {string} v */
const instant = (v) => (v.endsWith("Z") ? v : `${v}Z`);

/**
 * Wires the view's form and pager. `refused` handles a refused key (true when it did); `saveHash`
 * keeps the view's filters in the address's fragment.
 * @param {typeof hooks} options
 */
export function initErrors(options) {
  hooks = options;
  $("e-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    void showErrors(readForm());
  });
  $("e-clear").addEventListener("click", () => void showErrors({}));
  for (const b of document.querySelectorAll("[data-errors-range]")) {
    b.addEventListener("click", () => {
      const days = Number(/** @type {HTMLElement} */ (b).dataset.errorsRange);
      const f = readForm();
      f.occurred_after = new Date(Date.now() - days * DAY).toISOString().slice(0, 16);
      delete f.occurred_before;
      void showErrors(f);
    });
  }
  $("e-older").addEventListener("click", () => {
    if (state.next === null) return;
    state.newer.push(state.current);
    void turnTo(state.next);
  });
  $("e-newer").addEventListener("click", () => {
    const url = state.newer.pop();
    if (url !== undefined) void turnTo(url);
  });
}

/** @param {number} seq @param {boolean} on */
function busy(seq, on) {
  if (seq === state.seq) $("errors-view").toggleAttribute("aria-busy", on);
}

/** Shows the view for these filters: the summary over their window and the log's first page. @param {Record<string, string>} filters */
export async function showErrors(filters) {
  state.filters = filters;
  state.newer = [];
  writeForm(filters);
  hooks.saveHash(filters);
  const seq = ++state.seq;
  busy(seq, true);
  const params = new URLSearchParams({ ...filters, limit: String(PAGE) });
  for (const k of ["occurred_after", "occurred_before"]) if (filters[k]) params.set(k, instant(filters[k]));
  await Promise.all([loadSummary(seq), loadPage(`/api/errors/?${params}`, seq)]);
  busy(seq, false);
}

/** @param {string} url */
async function turnTo(url) {
  const seq = ++state.seq;
  busy(seq, true);
  await loadPage(url, seq);
  busy(seq, false);
  $("l-title").scrollIntoView({ block: "nearest" });
}

// ---- the summary ------------------------------------------------------------------------------

/** @param {number} seq */
async function loadSummary(seq) {
  const f = state.filters;
  const status = $("s-status");
  status.className = "status";
  status.textContent = "Counting…";
  // The summary's window is the log's time filter, or the last 24 hours; it counts by kind (the other filters are the log's).
  const before = f.occurred_before ? Date.parse(instant(f.occurred_before)) : Date.now();
  const after = f.occurred_after ? Date.parse(instant(f.occurred_after)) : before - DAY + HOUR;
  try {
    const summary = /** @type {Summary} */ (
      await get("/api/errors/summary", {
        after: new Date(after).toISOString(),
        before: new Date(before).toISOString(),
        kind: f.kind,
        limit: String(GROUPS),
      })
    );
    if (seq !== state.seq) return;
    status.textContent = summary.truncated ? `The ${GROUPS} largest groups; more in the log below.` : "";
    renderSummary(summary);
  } catch (err) {
    if (seq !== state.seq || hooks.refused(err)) return;
    status.className = "status error";
    status.textContent = `Summary unavailable: ${describe(err)}`;
    renderGroups([]);
  }
}

/** @param {Summary} s */
function renderSummary(s) {
  const w = s.window;
  const hours = w.hours === 24 ? "24 hours" : w.hours < 48 ? `${w.hours} hours` : `${Math.round(w.hours / 24)} days`;
  const from = splitTime(w.after);
  const to = splitTime(w.before);
  $("s-sub").textContent =
    `By kind, rule, type and field · ${hours}: ${from.date} ${from.time.slice(0, 5)} – ${to.date} ${to.time.slice(0, 5)} UTC` +
    (state.filters.kind ? ` · ${KINDS[state.filters.kind] ?? state.filters.kind}s only` : "");
  const total = $("s-total");
  total.replaceChildren(s.total.toLocaleString("en-US"), h("small", "", s.total === 1 ? "entry" : "entries"));

  const kinds = $("s-kinds");
  kinds.replaceChildren();
  for (const [kind, n] of Object.entries(s.totals)) {
    const b = /** @type {HTMLButtonElement} */ (h("button", `kind-chip k-${kind}`));
    b.type = "button";
    b.append(h("span", "", `${KINDS[kind] ?? kind}s`), h("span", "n", n.toLocaleString("en-US")));
    b.title = `Show only ${KINDS[kind] ?? kind}s`;
    b.addEventListener("click", () => void showErrors({ ...withoutGroup(state.filters), kind }));
    const li = h("li");
    li.append(b);
    kinds.append(li);
  }
  renderGroups(s.results, s.total);
}

/** Counts the last 24 hours' entries for the tab's badge, so the events view tells that something went wrong. */
export async function countErrors() {
  try {
    const s = /** @type {Summary} */ (await get("/api/errors/summary", { limit: "1" }));
    const count = $("tab-errors-n");
    count.textContent = s.total > 999 ? "999+" : String(s.total);
    count.hidden = s.total === 0;
    count.title = `${s.total} error-log entries in the last 24 hours`;
  } catch {
    // the badge is a hint; the view itself reports failures
  }
}

/** @param {Record<string, string>} f */
function withoutGroup(f) {
  const rest = { ...f };
  for (const k of GROUP_FILTERS) delete rest[k];
  return rest;
}

/** @param {Group[]} groups @param {number} [total] */
function renderGroups(groups, total = 0) {
  const body = /** @type {HTMLTableSectionElement} */ (document.querySelector("#summary tbody"));
  body.replaceChildren();
  if (groups.length === 0) {
    const tr = h("tr", "empty-row");
    const td = /** @type {HTMLTableCellElement} */ (h("td", "", "Nothing went wrong in this window."));
    td.colSpan = 6;
    tr.append(td);
    body.append(tr);
    return;
  }
  const largest = Math.max(...groups.map((g) => g.count));
  for (const g of groups) {
    // The group the log is filtered to, if it is one.
    const chosen = GROUP_FILTERS.every((k) => (state.filters[k] ?? null) === (g[k] ?? null));
    const tr = h("tr", chosen ? "group active" : "group");
    tr.tabIndex = 0;
    tr.title = chosen ? "The log shows these entries" : "Show these entries in the log";
    const share = h("td", "share");
    const bar = h("span", `bar k-${g.kind}`);
    bar.style.width = `${Math.max(2, Math.round((g.count / largest) * 100))}%`;
    share.append(bar);
    share.title = total > 0 ? `${Math.round((g.count / total) * 100)}% of the window's entries` : "";
    tr.append(
      h("td", "num", g.count.toLocaleString("en-US")),
      kindCell(g.kind),
      h("td", "mono", g.rule ?? "—"),
      typeCell(g.category, g.name),
      h("td", "mono", g.field ?? "—"),
      share,
    );
    const pick = () => {
      /** @type {Record<string, string>} */
      const f = withoutGroup(state.filters);
      f.kind = g.kind;
      if (g.rule !== null) f.rule = g.rule;
      if (g.category !== null) f.category = g.category;
      if (g.name !== null) f.name = g.name;
      if (g.field !== null) f.field = g.field;
      void showErrors(f);
    };
    tr.addEventListener("click", pick);
    tr.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        pick();
      }
    });
    body.append(tr);
  }
}

/** @param {string} kind */
function kindCell(kind) {
  const td = h("td");
  td.append(h("span", `kind k-${kind}`, KINDS[kind] ?? kind));
  return td;
}

/** @param {string | null} category @param {string | null} name */
function typeCell(category, name) {
  const td = h("td", "type");
  if (category === null && name === null) td.append(h("span", "none", "—"));
  else td.append(h("span", "cat", category ?? "—"), h("span", "sep", " · "), h("span", "nm", name ?? "—"));
  return td;
}

// ---- the log ----------------------------------------------------------------------------------

/** @param {string} url @param {number} seq */
async function loadPage(url, seq) {
  const status = $("e-status");
  status.className = "status";
  status.textContent = "Loading the error log…";
  $("errors").classList.add("loading");
  try {
    const page = /** @type {ErrorPage} */ (await get(url));
    if (seq !== state.seq) return;
    state.current = url;
    state.next = page.next;
    state.offset = Number(new URL(url, location.origin).searchParams.get("offset") ?? 0);
    renderEntries(page.results);
    status.textContent = "";
    const first = state.offset + 1;
    const last = state.offset + page.results.length;
    $("e-page-label").textContent =
      page.results.length === 0
        ? "none"
        : `${first.toLocaleString("en-US")}–${last.toLocaleString("en-US")} of ${page.count.toLocaleString("en-US")}`;
    /** @type {HTMLButtonElement} */ ($("e-newer")).disabled = state.newer.length === 0;
    /** @type {HTMLButtonElement} */ ($("e-older")).disabled = page.next === null;
  } catch (err) {
    if (seq !== state.seq || hooks.refused(err)) return;
    status.className = "status error";
    status.textContent = describe(err);
    renderEntries([]);
  } finally {
    $("errors").classList.remove("loading");
  }
}

/** @param {ErrorEntry[]} entries */
function renderEntries(entries) {
  const body = /** @type {HTMLTableSectionElement} */ (document.querySelector("#errors tbody"));
  body.replaceChildren();
  if (entries.length === 0) {
    const tr = h("tr", "empty-row");
    const td = /** @type {HTMLTableCellElement} */ (h("td", "", "No entries match these filters."));
    td.colSpan = 8;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const e of entries) {
    const tr = h("tr", "ev");
    tr.dataset.errorId = String(e.id);
    const why = h("td", "why", e.reasons[0]?.message ?? "");
    if (e.reasons.length > 1) why.append(h("span", "more", ` +${e.reasons.length - 1}`));
    tr.append(
      toggleCell(),
      timeCell(e.occurred_at),
      kindCell(e.kind),
      typeCell(e.category, e.name),
      h("td", "mono", e.field ?? "—"),
      h("td", "mono", e.rule ?? "—"),
      why,
      h("td", "app", e.application ?? "—"),
    );
    expandable(tr, 8, () => detailOf(e));
    body.append(tr);
  }
}

/** What an entry's detail row shows: its id, time and source, every reason, the payload. @param {ErrorEntry} e */
function detailOf(e) {
  const reasons = h("ul", "reasons");
  for (const r of e.reasons) {
    const li = h("li");
    li.append(
      h("span", "mono reason-field", r.field ?? "(the event)"),
      h("span", "", ` ${r.message}`),
      ...(r.rule ? [h("span", "rule", r.rule)] : []),
    );
    reasons.append(li);
  }
  return [
    detailMeta([
      ["entry", String(e.id)],
      ["occurred", e.occurred_at],
      ["source", e.source ?? "—"],
    ]),
    reasons,
    h("p", "payload-label", "Payload as sent (an excerpt of at most 2 KiB)"),
    payloadBlock(e.payload),
  ];
}

/** The payload as indented JSON when it parses (an excerpt cut short does not), else as its text. @param {string} text */
function payloadBlock(text) {
  try {
    return jsonBlock(JSON.parse(text));
  } catch {
    const pre = h("pre", "json", text);
    pre.title = preview(text, 60);
    return pre;
  }
}
