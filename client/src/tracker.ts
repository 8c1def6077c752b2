// The sending side: track() queues an event with its event_id; batches go out on an interval, on
// demand, when a batch is full, and by beacon when the page is hidden or left.
import { bodyBytes, bodyOf, takeBatch } from "./batch.js";
import { type Entry, EventQueue, serialize, type TrackedEvent } from "./event-queue.js";
import type { FieldError } from "./generated/server.js";
import { backoff, type Fetch, type Outcome, post, sendBeacon, sleep } from "./http.js";
import { QueueStorage } from "./queue-storage.js";
import { sessionId } from "./session.js";
import {
  type FlushResult,
  hasDocument,
  type Settings,
  settingsOf,
  type TrackerError,
  type TrackerOptions,
  type TrackOptions,
} from "./tracker-options.js";
import { uuidv7 } from "./uuid.js";

/** Every beacon's body stays under 64 KiB, the browsers' budget for sendBeacon and keepalive requests in flight. */
export const BEACON_MAX_BYTES = 64_000;

export class Tracker {
  /** Running totals since the tracker was made. */
  readonly stats = { tracked: 0, sent: 0, beaconed: 0, invalid: 0, refused: 0, dropped: 0, retries: 0 };
  private readonly url: string;
  private readonly o: Settings;
  private readonly fetchFn: Fetch;
  private readonly session: () => string;
  private readonly onError?: (error: TrackerError) => void;
  private readonly queue: EventQueue;
  private inflight: Entry[] = [];
  private running?: Promise<FlushResult>;
  private timer?: ReturnType<typeof setInterval>;
  private notBefore = 0;
  private readonly storage?: QueueStorage;
  /**
   * Entries handed to a beacon since the page was last visible (visibilitychange and pagehide both
   * fire when a page is left: one beacon for both). They stay queued, since a beacon's answer is never known.
   */
  private beaconed = new WeakSet<Entry>();
  private readonly onPageHide = () => this.beacon();
  private readonly onVisibility = () => {
    if (document.visibilityState === "hidden") this.beacon();
    // Visible again: what is still queued may be beaconed again when the page is next hidden.
    else this.beaconed = new WeakSet();
  };
  /** What is not known to be delivered: the batch in flight and the queue (what `persist` stores). */
  private readonly pending = (): Entry[] => [...this.inflight, ...this.queue.items];

  constructor(options: TrackerOptions) {
    this.url = `${options.endpoint.replace(/\/+$/, "")}/api/event/`;
    this.o = settingsOf(options);
    this.queue = new EventQueue({
      maxEvents: this.o.maxQueueEvents,
      maxBytes: this.o.maxQueueBytes,
      overflow: this.o.overflow,
    });
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    const sid = options.sessionId ?? sessionId;
    this.session = typeof sid === "function" ? sid : () => sid;
    this.onError = options.onError;
    if (options.persist) {
      this.storage = new QueueStorage(typeof options.persist === "string" ? options.persist : "default");
      const adopted = this.storage.adopt();
      this.dropped(this.queue.append(adopted));
      this.persistNow();
      if (adopted.length > 0) {
        this.startTimer();
        void this.flush();
      }
    }
    if (this.o.unload && hasDocument()) {
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
    const entry = serialize(event);
    if (!("json" in entry)) {
      this.stats.invalid++;
      this.report({ kind: "invalid", events: [{ event, errors: [entry] }] });
      return undefined;
    }
    const dropped = this.queue.push(entry);
    this.dropped(dropped);
    if (dropped.includes(entry)) return undefined; // drop-newest
    this.storage?.saveSoon(this.pending);
    this.startTimer();
    if (this.queue.length >= this.o.maxBatchEvents || this.queue.bodyBytes >= this.o.maxBatchBytes) void this.flush();
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
   * pagehide and when the page is hidden. Whether a beacon arrived is never known, so every event
   * stays queued (and persisted, with `persist`) until an answer says it was delivered: the next
   * flush, or the next page, sends it again, and the server stores its event_id once. Returns how
   * many events the browser took.
   */
  beacon(): number {
    const seen = new Set<string>();
    const pending = this.pending().filter(
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
    this.persistNow();
    return handed.size;
  }

  private async drain(): Promise<FlushResult> {
    let sent = 0;
    while (this.queue.length > 0 && Date.now() >= this.notBefore) {
      const batch = this.queue.take(this.o.maxBatchEvents, this.o.maxBatchBytes);
      this.inflight = batch;
      const outcome = await this.send(batch);
      this.inflight = [];
      if (outcome.kind === "retry") {
        // Still undelivered: back at the head of the queue, in order, for a later flush.
        this.dropped(this.queue.putBack(batch));
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

  /** Counts and reports the events the queue's bound dropped. */
  private dropped(entries: Entry[]): void {
    if (entries.length === 0) return;
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

  private persistNow(): void {
    this.storage?.save(this.pending);
  }
}

/** A tracker: `createTracker({ endpoint, writeKey }).track("nav", "view", { path: "/" })`. */
export function createTracker(options: TrackerOptions): Tracker {
  return new Tracker(options);
}
