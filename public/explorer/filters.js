// The filter form: what it holds, named as the API names the filters, and the address's fragment
// that carries the filters (never the key) so that a view can be bookmarked or shared.
import { $, DAY } from "./dom.js";

/** The filters the table and the chart share, named as the API names them. */
export const FILTERS = /** @type {const} */ ([
  "session_id",
  "category",
  "name",
  "country",
  "device",
  "timestamp_after",
  "timestamp_before",
]);

/** @typedef {(typeof FILTERS)[number]} FilterName */
/** The page sizes the per-page control offers; the default is 50. */
const LIMITS = [25, 50, 100, 250];
export const DEFAULT_LIMIT = 50;

/** @param {FilterName} name */
const field = (name) => /** @type {HTMLInputElement} */ (document.querySelector(`#filters [name="${name}"]`));

/** The form's filters, the empty ones left out. */
export function readForm() {
  /** @type {Record<string, string>} */
  const f = {};
  for (const name of FILTERS) {
    const input = field(name);
    const value = name === "country" ? input.value.trim().toUpperCase() : input.value.trim();
    if (value !== "") f[name] = value;
  }
  return f;
}

/** @param {Record<string, string>} f */
export function writeForm(f) {
  for (const name of FILTERS) field(name).value = f[name] ?? "";
}

/** Sets one filter of the form (a legend entry's category, a timeline's session). @param {FilterName} name @param {string} value */
export function setFilter(name, value) {
  field(name).value = value;
}

/** @param {Record<string, string>} filters @param {number} limit */
export function saveToHash(filters, limit) {
  const params = new URLSearchParams(filters);
  if (limit !== DEFAULT_LIMIT) params.set("limit", String(limit));
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

/** The filters and the page size the fragment names (a size the control does not offer is ignored). */
export function loadFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  /** @type {Record<string, string>} */
  const filters = {};
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) filters[name] = value;
  }
  const limit = Number(params.get("limit"));
  return { filters, limit: LIMITS.includes(limit) ? limit : undefined };
}

/** A datetime-local value for a time (UTC), to the minute. @param {number} ms */
const localValue = (ms) => new Date(ms).toISOString().slice(0, 16);

/** Wires the form: Apply, Clear and the quick time ranges each call `apply` once the form says what they mean. @param {() => void} apply */
export function initFilters(apply) {
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    apply();
  });
  $("clear").addEventListener("click", () => {
    writeForm({});
    apply();
  });
  for (const b of document.querySelectorAll("[data-range]")) {
    b.addEventListener("click", () => {
      const days = Number(/** @type {HTMLElement} */ (b).dataset.range);
      setFilter("timestamp_after", localValue(Date.now() - days * DAY));
      setFilter("timestamp_before", "");
      apply();
    });
  }
}
