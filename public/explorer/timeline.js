// The session timeline: a drawer with one session's events, oldest first (GET /api/sessions/{id}/events,
// following `next` on "Load more"), each with its time, the time since the session's first event and
// its payload.
import { get } from "./api.js";
import { $, describe, duration, h, splitTime } from "./dom.js";
import { jsonBlock, preview } from "./json-view.js";

/** @typedef {import("./dom.js").EventResult} EventResult */

const shown = { session: "", next: /** @type {string | null} */ (null), first: 0, lastDate: "", count: 0, seq: 0 };
/** @type {{ colourOf: (category: string) => string, refused: (err: unknown) => boolean }} */
let hooks = { colourOf: () => "other", refused: () => false };

/**
 * Wires the drawer's controls. `colourOf` gives a category's palette slot (the chart's), `refused`
 * handles a refused key (true when it did), `onFilter` filters the table by the session shown.
 * @param {typeof hooks & { onFilter: (session: string) => void }} options
 */
export function initTimeline({ colourOf, refused, onFilter }) {
  hooks = { colourOf, refused };
  $("tl-close").addEventListener("click", closeTimeline);
  $("scrim").addEventListener("click", closeTimeline);
  $("tl-more").addEventListener("click", () => {
    if (shown.next) void load(shown.next, shown.seq);
  });
  $("tl-filter").addEventListener("click", () => {
    closeTimeline();
    onFilter(shown.session);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("timeline").hidden) closeTimeline();
  });
}

/** @param {string} sessionId */
export async function openTimeline(sessionId) {
  Object.assign(shown, { session: sessionId, first: 0, lastDate: "", count: 0, next: null });
  const seq = ++shown.seq;
  $("tl-title").textContent = sessionId;
  $("tl-sub").textContent = "";
  $("tl-list").replaceChildren();
  $("timeline").hidden = false;
  $("scrim").hidden = false;
  $("tl-close").focus();
  await load(`/api/sessions/${encodeURIComponent(sessionId)}/events?pagination=cursor&limit=200`, seq);
}

export function closeTimeline() {
  shown.seq++;
  $("timeline").hidden = true;
  $("scrim").hidden = true;
}

/** @param {string} url @param {number} seq */
async function load(url, seq) {
  const status = $("tl-status");
  const more = /** @type {HTMLButtonElement} */ ($("tl-more"));
  status.className = "status";
  status.textContent = "Loading…";
  more.hidden = true;
  try {
    const page = /** @type {import("./dom.js").EventPage} */ (await get(url));
    if (seq !== shown.seq) return;
    $("tl-list").append(...page.results.map(item));
    shown.count += page.results.length;
    shown.next = page.next;
    more.hidden = page.next === null;
    status.textContent = shown.count === 0 ? "No events in this session." : "";
    const last = page.results[page.results.length - 1];
    if (last) {
      const app = last.application ? ` · ${last.application}` : "";
      const span = duration(Date.parse(last.timestamp) - shown.first);
      $("tl-sub").textContent =
        `${shown.count.toLocaleString("en-US")}${page.next ? "+" : ""} events · ${span}${app} · oldest first`;
    }
  } catch (err) {
    if (seq !== shown.seq || hooks.refused(err)) return;
    status.className = "status error";
    status.textContent = describe(err);
  }
}

/** @param {EventResult} e */
function item(e) {
  const at = Date.parse(e.timestamp);
  if (shown.first === 0) shown.first = at;
  const t = splitTime(e.timestamp);
  const li = h("li");
  li.append(h("span", `node c-${hooks.colourOf(e.category)}`));
  const when = h("div", "when");
  if (t.date !== shown.lastDate) when.append(h("span", "", t.date));
  shown.lastDate = t.date;
  when.append(
    h("span", "clock", `${t.time}${t.frac.slice(0, 4)}`),
    h("span", "delta", at === shown.first ? "start" : `+${duration(at - shown.first)}`),
  );
  const what = h("div", "what");
  what.append(h("span", "cat", `${e.category} › `), h("span", "nm", e.name));
  const details = h("details");
  details.append(h("summary", "", preview(e.data, 90)), jsonBlock(e.data));
  li.append(when, what, details);
  return li;
}
