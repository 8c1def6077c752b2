// The events table: a page of events (cursor pagination: "Older" follows `next`, "Newer" goes
// back to the pages seen before it), each row opening to its ids, its context and its payload.
// Every value from the API goes in as text (textContent), never as HTML.
import { get } from "./api.js";
import { $, describe, detailMeta, expandable, h, timeCell, toggleCell } from "./dom.js";
import { jsonBlock, preview } from "./json-view.js";

/** @typedef {import("./dom.js").EventResult} EventResult @typedef {import("./dom.js").EventPage} EventPage */

/**
 * What the table asks of the explorer: a category's palette slot (the chart's), the handling of a
 * refused key (true when it handled it), a session's timeline, and the explorer's request sequence
 * (`update` runs one view update, whose `seq` stays current until a newer update starts).
 * @typedef {{
 *   colourOf: (category: string) => string,
 *   refused: (err: unknown) => boolean,
 *   openSession: (sessionId: string) => void,
 *   update: (work: (seq: number) => Promise<unknown>) => Promise<void>,
 *   isCurrent: (seq: number) => boolean,
 * }} TableHooks
 */

/** @type {TableHooks} */
let hooks = {
  colourOf: () => "other",
  refused: () => false,
  openSession: () => {},
  update: async () => {},
  isCurrent: () => false,
};

const paging = {
  limit: 50,
  /** The page shown (its URL: the first page's, or a `next` link), and the ones before it. */
  current: "",
  /** @type {string[]} */
  newer: [],
  /** @type {string | null} */
  next: null,
};

/** Wires the pager. @param {TableHooks} options */
export function initTable(options) {
  hooks = options;
  $("older").addEventListener("click", () => {
    if (paging.next === null) return;
    paging.newer.push(paging.current);
    void turnTo(paging.next);
  });
  $("newer").addEventListener("click", () => {
    const url = paging.newer.pop();
    if (url !== undefined) void turnTo(url);
  });
}

/** The first page for these filters, newest first. @param {Record<string, string>} filters @param {number} limit @param {number} seq */
export function loadFirstPage(filters, limit, seq) {
  paging.limit = limit;
  paging.newer = [];
  const params = new URLSearchParams({ ...filters, pagination: "cursor", limit: String(limit) });
  return loadPage(`/api/event/?${params}`, seq);
}

/** The table's category dots take the chart's colours once it has them. */
export function recolour() {
  for (const dot of document.querySelectorAll("#events .dot")) {
    const cat = /** @type {HTMLElement} */ (dot).dataset.cat ?? "";
    dot.className = `dot c-${hooks.colourOf(cat)}`;
  }
}

/** @param {string} url */
async function turnTo(url) {
  await hooks.update((seq) => loadPage(url, seq));
  $("results-title").scrollIntoView({ block: "nearest" });
}

/** @param {string} url @param {number} seq @returns {Promise<EventPage | null>} */
async function loadPage(url, seq) {
  const status = $("status");
  status.className = "status";
  status.textContent = "Loading events…";
  $("events").classList.add("loading");
  try {
    const page = /** @type {EventPage} */ (await get(url));
    if (!hooks.isCurrent(seq)) return null;
    paging.current = url;
    paging.next = page.next;
    renderRows(page.results);
    status.textContent = "";
    updatePager(page.results.length);
    return page;
  } catch (err) {
    if (!hooks.isCurrent(seq) || hooks.refused(err)) return null;
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
  const pageNo = paging.newer.length + 1;
  /** @type {HTMLButtonElement} */ ($("newer")).disabled = paging.newer.length === 0;
  /** @type {HTMLButtonElement} */ ($("older")).disabled = paging.next === null;
  const first = (pageNo - 1) * paging.limit + 1;
  $("page-label").textContent =
    shown === 0 ? `Page ${pageNo}` : `${first.toLocaleString("en-US")}–${(first + shown - 1).toLocaleString("en-US")}`;
}

/** @param {string} category */
function categoryTag(category) {
  const tag = h("span", "tag");
  const dot = h("span", `dot c-${hooks.colourOf(category)}`);
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
    const session = /** @type {HTMLButtonElement} */ (h("button", "session", e.session_id));
    session.type = "button";
    session.title = `Show session ${e.session_id} as a timeline`;
    session.addEventListener("click", (ev) => {
      ev.stopPropagation();
      hooks.openSession(e.session_id);
    });
    const sessionCell = h("td");
    sessionCell.append(session);
    const categoryCell = h("td");
    categoryCell.append(categoryTag(e.category));
    tr.append(
      toggleCell(),
      timeCell(e.timestamp),
      sessionCell,
      categoryCell,
      h("td", "name", e.name),
      h("td", "app", e.application ?? "—"),
      h("td", "preview", preview(e.data)),
    );
    expandable(tr, 7, () => [
      detailMeta([
        ["event_id", e.event_id],
        ["received", e.received_at],
        ["session", e.session_id],
      ]),
      contextLine(e.context),
      jsonBlock(e.data),
    ]);
    body.append(tr);
  }
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
