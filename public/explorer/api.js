// The explorer's one door to The Eye's read API: the read key lives in this module (and, when the
// user asks, in sessionStorage), goes out only in the Authorization header, and only to this origin.
const SLOT = "eye.explorer.readKey";

/** @type {string | null} */
let key = null;
try {
  key = sessionStorage.getItem(SLOT);
} catch {
  // Storage disabled: the key lives in memory only.
}
/** D1's session bookmark: later reads see a state at least as new as earlier ones (pages of one walk never step back). */
/** @type {string | null} */
let bookmark = null;

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string | undefined} code @param {string | undefined} requestId */
  constructor(status, message, code, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export const hasKey = () => key !== null;

/** A short, non-secret label for the key in use: its kind prefix and last four characters. */
export const keyLabel = () => (key === null ? "" : `${key.slice(0, key.indexOf("_", 4) + 1 || 4)}…${key.slice(-4)}`);

/** @param {string} value @param {boolean} remember */
export function setKey(value, remember) {
  key = value;
  try {
    if (remember) sessionStorage.setItem(SLOT, value);
    else sessionStorage.removeItem(SLOT);
  } catch {
    // memory only
  }
}

export function forgetKey() {
  key = null;
  bookmark = null;
  try {
    sessionStorage.removeItem(SLOT);
  } catch {
    // nothing stored
  }
}

/**
 * GET a path of this origin (a `next` link is cut to its path and query, so the key can never
 * follow a link elsewhere). Answers the parsed JSON, or throws an ApiError with the server's message.
 * @param {string} pathOrUrl
 * @param {Record<string, string | undefined>} [params]
 */
export async function get(pathOrUrl, params = {}) {
  if (key === null) throw new ApiError(401, "no read key", "unauthorized", undefined);
  const link = new URL(pathOrUrl, location.origin);
  const url = new URL(link.pathname + link.search, location.origin);
  for (const [name, value] of Object.entries(params))
    if (value !== undefined && value !== "") url.searchParams.set(name, value);
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  if (bookmark) headers["X-D1-Bookmark"] = bookmark;
  let res;
  try {
    res = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
  } catch {
    throw new ApiError(0, "The Eye did not answer (network error)", "network", undefined);
  }
  const reached = res.headers.get("X-D1-Bookmark");
  if (reached) bookmark = reached;
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const message = body && typeof body.message === "string" ? body.message : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message, body?.code, body?.request_id);
  }
  return body;
}
