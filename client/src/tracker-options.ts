// The tracker's options, what it reports, and the defaults it runs with.
import type { TrackedEvent } from "./event-queue.js";
import type { FieldError } from "./generated/server.js";
import { SERVER_LIMITS } from "./generated/server.js";
import type { Fetch } from "./http.js";

export interface TrackOptions {
  /** Default: the tracker's `sessionId`. */
  session_id?: string;
  /** When it happened. Default: now. A string goes as is (the server's formats, microseconds kept). */
  timestamp?: Date | string;
  /** Default: a new UUIDv7. Give your own to make an event idempotent across pages or processes. */
  event_id?: string;
}

/** What went wrong, for the `onError` hook. Only `unavailable` events are still queued. */
export type TrackerError =
  /** The server judged these events invalid (202 or 400 `errors` by index), or the client did before sending (data not JSON, or over the server's data limit). Not retried. */
  | { kind: "invalid"; events: { event: TrackedEvent; errors: FieldError[] }[] }
  /** The server refused a whole request: 401/403 (key), 413, 415, a 400 without per-event errors. Not retried; the events are dropped. */
  | { kind: "refused"; status: number; message: string; events: TrackedEvent[] }
  /** The queue was full: these events were dropped (the oldest, or the new one under `overflow: "drop-newest"`). */
  | { kind: "overflow"; events: TrackedEvent[] }
  /** Retries ran out (or Retry-After asked for longer than `maxRetryDelay`): the events stay queued for the next flush, not before `retryAt`. */
  | { kind: "unavailable"; status?: number; message: string; queued: number; retryAt: number };

export interface TrackerOptions {
  /** The Eye's base URL, e.g. `https://eye.example.com`. */
  endpoint: string;
  /** A write key. */
  writeKey: string;
  /** The session of events tracked without one. Default: sessionId() (per tab, or per process). */
  sessionId?: string | (() => string);
  /** Milliseconds between automatic flushes; 0 turns the timer off. Default 5000; 0 in Workers (flush in ctx.waitUntil). */
  flushInterval?: number;
  /** Events per request. Default and ceiling: the server's MAX_EVENTS_PER_REQUEST (500). */
  maxBatchEvents?: number;
  /** Bytes per request body. Default and ceiling: the server's MAX_BODY_BYTES (1 MiB). */
  maxBatchBytes?: number;
  /** Events the queue holds before `overflow` applies. Default 1000. */
  maxQueueEvents?: number;
  /** Bytes (serialized) the queue holds before `overflow` applies. Default 2 MiB, under localStorage's usual 5 MB. */
  maxQueueBytes?: number;
  /** What a full queue drops: the oldest events (default) or the one being tracked. */
  overflow?: "drop-oldest" | "drop-newest";
  /** Retries of one batch within one flush. Default 5. */
  maxRetries?: number;
  /** First backoff in ms (doubling each retry, with jitter). Default 500. */
  retryBaseDelay?: number;
  /** Longest wait within a flush, in ms; a longer Retry-After ends the flush and the next one waits for it. Default 30000. */
  maxRetryDelay?: number;
  /** Per-request timeout in ms. Default 10000. */
  timeout?: number;
  /** Keep unsent events in localStorage (browsers), so the next page sends them; a string names the storage slot. Default false. */
  persist?: boolean | string;
  /** Beacon the queue on pagehide and on visibilitychange to hidden. Default true where there is a document. */
  unload?: boolean;
  /** Send the key as `?key=` with a text/plain body (no CORS preflight) instead of `Authorization`. Default true where there is a document. */
  keyInUrl?: boolean;
  /**
   * Name the page (`location.href`) and its referrer (`document.referrer`) as `?page=` and `?referrer=`
   * of each send, from which the server keeps only the referrer's host and the page's UTM parameters
   * in each event's context. The page at the time of sending: events persisted by an earlier page go
   * with the next page's. Default true where there is a document.
   */
  sendPage?: boolean;
  /** Default: globalThis.fetch. */
  fetch?: Fetch;
  onError?: (error: TrackerError) => void;
}

export interface FlushResult {
  /** Events the server accepted in this flush. */
  sent: number;
  /** Events still queued afterwards. */
  queued: number;
}

/** The options with their defaults filled in (the ones the tracker reads on every send or track). */
export type Settings = Required<Omit<TrackerOptions, "sessionId" | "onError" | "persist" | "fetch">>;

export const hasDocument = () => typeof document !== "undefined" && typeof addEventListener === "function";
/** Cloudflare Workers say so in navigator.userAgent; a timer there outlives the request that set it. */
const inWorkers = () => globalThis.navigator?.userAgent === "Cloudflare-Workers";

export function settingsOf(options: TrackerOptions): Settings {
  const browser = hasDocument();
  return {
    endpoint: options.endpoint,
    writeKey: options.writeKey,
    flushInterval: options.flushInterval ?? (inWorkers() ? 0 : 5000),
    maxBatchEvents: Math.min(options.maxBatchEvents ?? Infinity, SERVER_LIMITS.maxEventsPerRequest),
    maxBatchBytes: Math.min(options.maxBatchBytes ?? Infinity, SERVER_LIMITS.maxBodyBytes),
    maxQueueEvents: options.maxQueueEvents ?? 1000,
    maxQueueBytes: options.maxQueueBytes ?? 2 * 1024 * 1024,
    overflow: options.overflow ?? "drop-oldest",
    maxRetries: options.maxRetries ?? 5,
    retryBaseDelay: options.retryBaseDelay ?? 500,
    maxRetryDelay: options.maxRetryDelay ?? 30_000,
    timeout: options.timeout ?? 10_000,
    unload: options.unload ?? browser,
    keyInUrl: options.keyInUrl ?? browser,
    sendPage: options.sendPage ?? browser,
  };
}
