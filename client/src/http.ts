// One request to The Eye and what it means for the events in it: accepted (some perhaps refused
// one by one), refused whole, or worth retrying; the retry policy's waits; and the beacon a
// closing page hands its events to.
import type { FieldError } from "./generated/server.js";

export type Outcome =
  /** 202, or a 400 whose errors name events by index: what is refused was read and judged. */
  | { kind: "judged"; status: number; accepted: number; errors: FieldError[] }
  /** Any other 4xx but 429: the same request would fail again. */
  | { kind: "refused"; status: number; message: string }
  /** A network error, a timeout, 429 or 5xx. */
  | { kind: "retry"; status?: number; message: string; retryAfterMs?: number };

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retry number `attempt + 1`: exponential (base · 2^attempt, capped at `max`)
 * with "equal jitter" (half fixed, half random), so clients that failed together spread out
 * but none retries at once.
 */
export function backoff(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const cap = Math.min(max, base * 2 ** attempt);
  return cap / 2 + random() * (cap / 2);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A timeout signal where the platform has one (every supported one does; old browsers may not). */
export function timeoutSignal(ms: number): AbortSignal | undefined {
  return ms > 0 && typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function"
    ? AbortSignal.timeout(ms)
    : undefined;
}

interface ErrorBody {
  message?: unknown;
  accepted?: unknown;
  errors?: unknown;
}

const isIndexed = (errors: unknown): errors is FieldError[] =>
  Array.isArray(errors) &&
  errors.length > 0 &&
  errors.every((e) => typeof e === "object" && e !== null && typeof (e as FieldError).index === "number");

/** Sends one POST and classifies the answer. Never throws. */
export async function post(
  fetchFn: Fetch,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeout: number,
): Promise<Outcome> {
  let response: Response;
  try {
    response = await fetchFn(url, { method: "POST", body, headers, signal: timeoutSignal(timeout) });
  } catch (err) {
    return { kind: "retry", message: err instanceof Error ? err.message : String(err) };
  }
  const text = await response.text().catch(() => "");
  let parsed: ErrorBody = {};
  try {
    parsed = JSON.parse(text) as ErrorBody;
  } catch {
    // a proxy's HTML error page: the status decides
  }
  const message = typeof parsed.message === "string" ? parsed.message : `HTTP ${response.status}`;
  if (response.status === 429 || response.status >= 500) {
    return {
      kind: "retry",
      status: response.status,
      message,
      retryAfterMs: retryAfterMs(response.headers.get("retry-after")),
    };
  }
  if (response.ok) {
    const errors = Array.isArray(parsed.errors) ? (parsed.errors as FieldError[]) : [];
    return {
      kind: "judged",
      status: response.status,
      accepted: typeof parsed.accepted === "number" ? parsed.accepted : 0,
      errors,
    };
  }
  // A 400 that names events by index judged each event (all invalid); another 400 (too many
  // events, unreadable body) or 401/403/413/415 refused the request itself.
  if (response.status === 400 && isIndexed(parsed.errors))
    return { kind: "judged", status: 400, accepted: 0, errors: parsed.errors };
  return { kind: "refused", status: response.status, message };
}

/** sendBeacon where the browser has it, else fetch with keepalive; true when the browser took the body. */
export function sendBeacon(url: string, body: string): boolean {
  const nav = globalThis.navigator as Navigator | undefined;
  if (typeof nav?.sendBeacon === "function") {
    try {
      return nav.sendBeacon(url, body); // a string body goes as text/plain;charset=UTF-8
    } catch {
      return false;
    }
  }
  if (typeof fetch !== "function") return false;
  fetch(url, {
    method: "POST",
    body,
    keepalive: true,
    credentials: "omit",
    headers: { "content-type": "text/plain;charset=UTF-8" },
  }).catch(() => {});
  return true;
}
