// Small helpers the explorer's modules build the page with: elements made from text (never from
// HTML), timestamps split for display, durations, errors as a sentence.
import { ApiError } from "./api.js";

/**
 * @typedef {{ session_id: string, timestamp: string, category: string, name: string, data: unknown,
 *   event_id: string, received_at: string, application: string | null, context?: EventContext | null }} EventResult
 * @typedef {{ country?: string, continent?: string, region?: string, city?: string, timezone?: string, asn?: number,
 *   browser?: string, os?: string, device?: string, referrer_host?: string, utm_source?: string, utm_medium?: string,
 *   utm_campaign?: string, utm_term?: string, utm_content?: string }} EventContext
 * @typedef {{ next: string | null, results: EventResult[] }} EventPage
 */

/** @template {HTMLElement} T @param {string} id @returns {T} */
export const $ = (id) => /** @type {T} */ (document.getElementById(id));

/** An element with a class and its text. @param {string} tag @param {string} [cls] @param {string} [text] */
export function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "2021-01-01T09:15:27.243860Z" → its date, time and fraction. @param {string} ts */
export function splitTime(ts) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(ts);
  return m ? { date: m[1], time: m[2], frac: m[3] ?? "" } : { date: "", time: ts, frac: "" };
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** "850 ms", "37 s", "1 min 14 s", "2 h 5 min", "3 d 4 h". @param {number} ms */
export function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)} s`;
  if (ms < HOUR) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)} h ${Math.floor((ms % HOUR) / 60_000)} min`;
  return `${Math.floor(ms / DAY)} d ${Math.floor((ms % DAY) / HOUR)} h`;
}

/** An error as the user reads it, with the request id to quote. @param {unknown} err */
export const describe = (err) =>
  err instanceof ApiError ? `${err.message}${err.requestId ? ` (request ${err.requestId})` : ""}` : String(err);

/** A table cell with a timestamp split into date, time and fraction, the whole as its title. @param {string} ts */
export function timeCell(ts) {
  const t = splitTime(ts);
  const cell = h("td", "time");
  cell.title = ts;
  cell.append(h("span", "date", `${t.date} `), t.time, h("span", "frac", t.frac));
  return cell;
}

/** The cell with the ▶ an expandable row turns. */
export function toggleCell() {
  const cell = h("td", "col-toggle");
  cell.append(h("span", "toggle", "▶"));
  return cell;
}

/** A detail's line of labelled values. @param {[string, string][]} pairs */
export function detailMeta(pairs) {
  const meta = h("div", "detail-meta");
  for (const [label, value] of pairs) {
    const item = h("span", "", `${label} `);
    item.append(h("b", "", value));
    meta.append(item);
  }
  return meta;
}

/**
 * Makes a table row open and close a detail row under it, by click or by Enter/Space, with
 * aria-expanded kept in step. `detail` builds the detail's content; its cell spans `columns`.
 * @param {HTMLElement} tr @param {number} columns @param {() => Node[]} detail
 */
export function expandable(tr, columns, detail) {
  tr.tabIndex = 0;
  tr.setAttribute("aria-expanded", "false");
  const flip = () => {
    const open = tr.classList.toggle("open");
    tr.setAttribute("aria-expanded", String(open));
    const next = tr.nextElementSibling;
    if (!open) {
      if (next?.classList.contains("detail")) next.remove();
      return;
    }
    const row = h("tr", "detail");
    const td = /** @type {HTMLTableCellElement} */ (h("td"));
    td.colSpan = columns;
    td.append(...detail());
    row.append(td);
    tr.after(row);
  };
  tr.addEventListener("click", flip);
  tr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      flip();
    }
  });
}
