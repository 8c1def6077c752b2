// The sending side: track() queues an event with its event_id; batches go out on an interval, on
// demand, when a batch is full, and by beacon when the page is hidden or left.
import { bodyBytes, bodyOf, type Serialized, takeBatch, utf8Length } from "./batch.js";
import { type EventInput, type FieldError, SERVER_LIMITS } from "./generated/server.js";
import { backoff, type Fetch, type Outcome, post, sleep } from "./http.js";
import { sessionId } from "./session.js";
import { uuidv7 } from "./uuid.js";

/** An event as this client sends it: every one carries its event_id. */
export type TrackedEvent = EventInput & { event_id: string };

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

interface Entry extends Serialized {
  event: TrackedEvent;
}

/** Every beacon's body stays under 64 KiB, the browsers' budget for sendBeacon and keepalive requests in flight. */
export const BEACON_MAX_BYTES = 64_000;
const STORAGE_PREFIX = "the-eye:queue:";

const hasDocument = () => typeof document !== "undefined" && typeof addEventListener === "function";
/** Cloudflare Workers say so in navigator.userAgent; a timer there outlives the request that set it. */
const inWorkers = () => globalThis.navigator?.userAgent === "Cloudflare-Workers";

function localStore(): Storage | undefined {
  try {
    const storage = globalThis.localStorage;
    return storage && typeof storage.setItem === "function" ? storage : undefined;
  } catch {
    return undefined;
  }
}

export class Tracker {
  /** Running totals since the tracker was made. */
  readonly stats = { tracked: 0, sent: 0, beaconed: 0, invalid: 0, refused: 0, dropped: 0, retries: 0 };
  private readonly url: string;
  private readonly o: Required<Omit<TrackerOptions, "sessionId" | "onError" | "persist" | "fetch">>;
  private readonly fetchFn: Fetch;
  private readonly session: () => string;
  private readonly onError?: (error: TrackerError) => void;
  private queue: Entry[] = [];
  private queueBytes = 0;
  private inflight: Entry[] = [];
  private running?: Promise<FlushResult>;
  private timer?: ReturnType<typeof setInterval>;
  private notBefore = 0;
  private readonly storage?: Storage;
  private readonly storageKey?: string;
  private persistQueued = false;
  /** Entries already handed to a beacon (visibilitychange and pagehide both fire when a page is left). */
  private readonly beaconed = new WeakSet<Entry>();
  private readonly onPageHide = () => this.beacon();
  private readonly onVisibility = () => {
    if (document.visibilityState === "hidden") this.beacon();
  };

  constructor(options: TrackerOptions) {
    const browser = hasDocument();
    this.url = `${options.endpoint.replace(/\/+$/, "")}/api/event/`;
    this.o = {
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
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    const sid = options.sessionId ?? sessionId;
    this.session = typeof sid === "function" ? sid : () => sid;
    this.onError = options.onError;
    if (options.persist) {
      this.storage = localStore();
      const slot = `${STORAGE_PREFIX}${typeof options.persist === "string" ? options.persist : "default"}:`;
      this.storageKey = `${slot}${uuidv7()}`;
      if (this.adopt(slot) > 0) {
        this.startTimer();
        void this.flush();
      }
    }
    if (this.o.unload && browser) {
      addEventListener("pagehide", this.onPageHide);
      document.addEventListener("visibilitychange", this.onVisibility);
    }
  }

  /** Events waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queues an event and returns its event_id (the key of its delivery receipt,
   * GET /api/event/{event_id}); undefined when it was refused before queueing (onError says why).
   */
  track(
    category: string,
    name: string,
    data: Record<string, unknown> = {},
    options: TrackOptions = {},
  ): string | undefined {
    const event: TrackedEvent = {
      session_id: options.session_id ?? this.session(),
      category,
      name,
      data,
      timestamp:
        options.timestamp instanceof Date
          ? options.timestamp.toISOString()
          : (options.timestamp ?? new Date().toISOString()),
      event_id: options.event_id ?? uuidv7(),
    };
    this.stats.tracked++;
    // The server's own data rule, checked here so that an event that can never be accepted is
    // reported now instead of costing a request.
    let dataJson: string | undefined;
    try {
      dataJson = JSON.stringify(data);
    } catch {
      // circular, or a BigInt
    }
    const problem: FieldError | null =
      dataJson === undefined
        ? { index: 0, field: "data", message: "data cannot be serialized as JSON", rule: "invalid_type" }
        : utf8Length(dataJson) > SERVER_LIMITS.maxDataBytes
          ? {
              index: 0,
              field: "data",
              message: `data is larger than ${SERVER_LIMITS.maxDataBytes} bytes once serialized`,
              rule: "too_big",
            }
          : null;
    if (problem) {
      this.stats.invalid++;
      this.report({ kind: "invalid", events: [{ event, errors: [problem] }] });
      return undefined;
    }
    const s = JSON.stringify;
    const json = `{"session_id":${s(event.session_id)},"category":${s(category)},"name":${s(name)},"data":${dataJson},"timestamp":${s(event.timestamp)},"event_id":${s(event.event_id)}}`;
    const entry: Entry = { event, json, bytes: utf8Length(json) };

    if (
      this.o.overflow === "drop-newest" &&
      (this.queue.length + 1 > this.o.maxQueueEvents || this.queueBytes + entry.bytes > this.o.maxQueueBytes)
    ) {
      this.dropped([entry]);
      return undefined;
    }
    this.queue.push(entry);
    this.queueBytes += entry.bytes;
    this.bound();
    this.persistSoon();
    this.startTimer();
    if (this.queue.length >= this.o.maxBatchEvents || bodyBytes(this.queue) >= this.o.maxBatchBytes) void this.flush();
    return event.event_id;
  }

  /**
   * Sends everything queued, batch by batch, retrying network errors, 429 and 5xx. Resolves when
   * the queue is empty or a batch could not be delivered (its events stay queued); never rejects.
   */
  flush(): Promise<FlushResult> {
    if (!this.running) {
      this.running = this.drain().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    // Events tracked after the running flush took its last batch get a flush of their own.
    return this.running.then((result) =>
      this.queue.length > 0 && Date.now() >= this.notBefore ? this.flush() : result,
    );
  }

  /** Stops the timer and the page listeners, then flushes: call it before a Node process exits. */
  close(): Promise<FlushResult> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (hasDocument()) {
      removeEventListener("pagehide", this.onPageHide);
      document.removeEventListener("visibilitychange", this.onVisibility);
    }
    return this.flush();
  }

  /**
   * Hands the queue (and any batch in flight, which a closing page would cancel) to the browser
   * in beacons of under 64 KiB, text/plain with the key in the URL (no preflight). Called on
   * pagehide and when the page is hidden. What does not fit in the browser's budget stays queued
   * (and persisted, with `persist`) for the next flush or the next page.
   */
  beacon(): number {
    const seen = new Set<string>();
    const pending = [...this.inflight, ...this.queue].filter(
      (e) => !this.beaconed.has(e) && !seen.has(e.event.event_id) && seen.add(e.event.event_id),
    );
    const url = this.postUrl(true);
    const handed = new Set<Entry>();
    for (let rest = pending; rest.length > 0; ) {
      const batch = takeBatch(rest, this.o.maxBatchEvents, BEACON_MAX_BYTES);
      rest = rest.slice(batch.length);
      if (bodyBytes(batch) > BEACON_MAX_BYTES) continue; // one event too large for a beacon: left for fetch
      if (!sendBeacon(url, bodyOf(batch))) break;
      for (const e of batch) {
        handed.add(e);
        this.beaconed.add(e);
      }
    }
    this.stats.beaconed += handed.size;
    this.queue = this.queue.filter((e) => !handed.has(e));
    this.queueBytes = this.queue.reduce((n, e) => n + e.bytes, 0);
    this.persistNow();
    return handed.size;
  }

  private async drain(): Promise<FlushResult> {
    let sent = 0;
    while (this.queue.length > 0 && Date.now() >= this.notBefore) {
      const batch = takeBatch(this.queue, this.o.maxBatchEvents, this.o.maxBatchBytes);
      this.queue = this.queue.slice(batch.length);
      this.queueBytes -= batch.reduce((n, e) => n + e.bytes, 0);
      this.inflight = batch;
      const outcome = await this.send(batch);
      this.inflight = [];
      if (outcome.kind === "retry") {
        // Still undelivered: back at the head of the queue, in order, for a later flush.
        this.queue = [...batch, ...this.queue];
        this.queueBytes += batch.reduce((n, e) => n + e.bytes, 0);
        this.bound();
        this.notBefore = outcome.retryAt;
        this.persistNow();
        this.report({
          kind: "unavailable",
          status: outcome.status,
          message: outcome.message,
          queued: this.queue.length,
          retryAt: outcome.retryAt,
        });
        break;
      }
      sent += this.settle(batch, outcome);
      this.persistNow();
    }
    return { sent, queued: this.queue.length };
  }

  /** The POST's URL: the key when it travels there, the page and its referrer when asked (URLs over 2,000 characters are left out). */
  private postUrl(withKey: boolean): string {
    const params: string[] = [];
    if (withKey) params.push(`key=${encodeURIComponent(this.o.writeKey)}`);
    if (this.o.sendPage && typeof location !== "undefined" && typeof document !== "undefined") {
      for (const [name, value] of [
        ["page", location.href],
        ["referrer", document.referrer],
      ] as const) {
        if (value && value.length <= 2000) params.push(`${name}=${encodeURIComponent(value)}`);
      }
    }
    return params.length > 0 ? `${this.url}?${params.join("&")}` : this.url;
  }

  /** One batch through the retry policy. */
  private async send(
    batch: Entry[],
  ): Promise<Exclude<Outcome, { kind: "retry" }> | (Extract<Outcome, { kind: "retry" }> & { retryAt: number })> {
    const body = bodyOf(batch);
    const headers: Record<string, string> = this.o.keyInUrl
      ? { "content-type": "text/plain;charset=UTF-8" }
      : { "content-type": "application/json", authorization: `Bearer ${this.o.writeKey}` };
    const url = this.postUrl(this.o.keyInUrl);
    for (let attempt = 0; ; attempt++) {
      const outcome = await post(this.fetchFn, url, body, headers, this.o.timeout);
      if (outcome.kind !== "retry") return outcome;
      // Retry-After is a floor; the backoff keeps growing under it.
      const wait = Math.max(outcome.retryAfterMs ?? 0, backoff(attempt, this.o.retryBaseDelay, this.o.maxRetryDelay));
      if (attempt >= this.o.maxRetries || wait > this.o.maxRetryDelay)
        return { ...outcome, retryAt: Date.now() + wait };
      this.stats.retries++;
      await sleep(wait);
    }
  }

  /** Counts and reports what the server said about a delivered batch; returns how many it accepted. */
  private settle(batch: Entry[], outcome: Exclude<Outcome, { kind: "retry" }>): number {
    if (outcome.kind === "refused") {
      this.stats.refused += batch.length;
      this.report({
        kind: "refused",
        status: outcome.status,
        message: outcome.message,
        events: batch.map((e) => e.event),
      });
      return 0;
    }
    const byIndex = new Map<number, FieldError[]>();
    for (const error of outcome.errors) {
      if (typeof error.index !== "number" || !batch[error.index]) continue;
      byIndex.set(error.index, [...(byIndex.get(error.index) ?? []), error]);
    }
    const accepted = batch.length - byIndex.size;
    this.stats.sent += accepted;
    if (byIndex.size > 0) {
      this.stats.invalid += byIndex.size;
      this.report({
        kind: "invalid",
        events: [...byIndex].map(([index, errors]) => ({ event: batch[index]!.event, errors })),
      });
    }
    return accepted;
  }

  /** Applies the overflow policy (drop-oldest; drop-newest refused the event in track()). */
  private bound(): void {
    let n = 0;
    let bytes = this.queueBytes;
    while (
      this.queue.length - n > this.o.maxQueueEvents ||
      (bytes > this.o.maxQueueBytes && this.queue.length - n > 1)
    ) {
      bytes -= this.queue[n]!.bytes;
      n++;
    }
    if (n === 0) return;
    const dropped = this.queue.slice(0, n);
    this.queue = this.queue.slice(n);
    this.queueBytes = bytes;
    this.dropped(dropped);
  }

  private dropped(entries: Entry[]): void {
    this.stats.dropped += entries.length;
    this.report({ kind: "overflow", events: entries.map((e) => e.event) });
  }

  private report(error: TrackerError): void {
    try {
      this.onError?.(error);
    } catch {
      // a failing hook must not stop delivery
    }
  }

  private startTimer(): void {
    if (this.timer !== undefined || this.o.flushInterval <= 0) return;
    this.timer = setInterval(() => {
      if (this.queue.length > 0 && Date.now() >= this.notBefore) void this.flush();
    }, this.o.flushInterval);
    // Node: the timer alone does not keep the process alive (call close() before exiting).
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Takes over what earlier pages of this origin left in storage (their slots are removed). */
  private adopt(slot: string): number {
    const storage = this.storage;
    if (!storage) return 0;
    const known = new Set(this.queue.map((e) => e.event.event_id));
    let adopted = 0;
    try {
      const keys: string[] = [];
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        if (key?.startsWith(slot) && key !== this.storageKey) keys.push(key);
      }
      for (const key of keys) {
        let events: unknown = [];
        try {
          events = JSON.parse(storage.getItem(key) ?? "[]");
        } catch {
          // a damaged slot is dropped
        }
        storage.removeItem(key);
        for (const event of Array.isArray(events) ? (events as TrackedEvent[]) : []) {
          if (typeof event?.event_id !== "string" || known.has(event.event_id)) continue;
          known.add(event.event_id);
          const json = JSON.stringify(event);
          this.queue.push({ event, json, bytes: utf8Length(json) });
          this.queueBytes += utf8Length(json);
          adopted++;
        }
      }
    } catch {
      // storage unavailable: nothing to adopt
    }
    this.bound();
    this.persistNow();
    return adopted;
  }

  /** One storage write per burst of track() calls. */
  private persistSoon(): void {
    if (!this.storage || this.persistQueued) return;
    this.persistQueued = true;
    queueMicrotask(() => {
      this.persistQueued = false;
      this.persistNow();
    });
  }

  /** Stores what is not known to be delivered: the batch in flight and the queue. */
  private persistNow(): void {
    if (!this.storage || !this.storageKey) return;
    const pending = [...this.inflight, ...this.queue];
    try {
      if (pending.length === 0) this.storage.removeItem(this.storageKey);
      else this.storage.setItem(this.storageKey, bodyOf(pending));
    } catch {
      // quota exceeded or storage refused: the events are still in memory
    }
  }
}

/** sendBeacon where the browser has it, else fetch with keepalive; true when the browser took the body. */
function sendBeacon(url: string, body: string): boolean {
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

/** A tracker: `createTracker({ endpoint, writeKey }).track("nav", "view", { path: "/" })`. */
export function createTracker(options: TrackerOptions): Tracker {
  return new Tracker(options);
}
