// The client's pure parts: ids, sizes, the retry policy's waits, query strings, the queue's bound.
import { describe, expect, it } from "vitest";
import { bodyBytes, bodyOf, takeBatch, utf8Length } from "../src/batch.js";
import { backoff, retryAfterMs } from "../src/http.js";
import { createTracker, resetSessionId, SERVER_LIMITS, sessionId, type TrackerError, uuidv7 } from "../src/index.js";
import { queryString } from "../src/query.js";

describe("uuidv7", () => {
  it("has version 7, the RFC variant, and the time it was made in its first 48 bits", () => {
    const now = Date.UTC(2026, 10, 28, 9, 30);
    const id = uuidv7(now);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(now);
  });

  it("sorts in the order ids were made, also many within one millisecond, and never repeats", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7(Date.now()));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("keeps order when the clock steps back", () => {
    const a = uuidv7(Date.now() + 60_000);
    const b = uuidv7(Date.now());
    expect(b > a).toBe(true);
  });
});

describe("sizes and batches", () => {
  it("counts UTF-8 bytes as the server does", () => {
    for (const s of ["", "abc", "é", "€", "😀", "a\u0000b", "日本語"]) expect(utf8Length(s)).toBe(Buffer.byteLength(s));
  });

  const item = (n: number) => ({ json: "x".repeat(n), bytes: n });

  it("takes at most the server's 500 events per body", () => {
    const items = Array.from({ length: 1203 }, () => item(10));
    expect(takeBatch(items, SERVER_LIMITS.maxEventsPerRequest, SERVER_LIMITS.maxBodyBytes)).toHaveLength(500);
  });

  it("stops before the byte limit, brackets and commas counted", () => {
    const items = Array.from({ length: 10 }, () => item(100));
    const batch = takeBatch(items, 500, 2 + 3 * 100 + 2);
    expect(batch).toHaveLength(3);
    expect(bodyBytes(batch)).toBe(304);
    expect(utf8Length(bodyOf(batch))).toBe(304);
    expect(takeBatch(items, 500, 303)).toHaveLength(2);
  });

  it("sends an event larger than the limit alone rather than never", () => {
    expect(takeBatch([item(5000), item(1)], 500, 1000)).toHaveLength(1);
  });
});

describe("retry waits", () => {
  it("grow exponentially with jitter between half and all of the cap, and stop growing at the maximum", () => {
    expect(backoff(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoff(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoff(3, 500, 30_000, () => 0.5)).toBe(3000);
    expect(backoff(20, 500, 30_000, () => 1)).toBe(30_000);
  });

  it("read Retry-After as seconds or as an HTTP date", () => {
    expect(retryAfterMs("10")).toBe(10_000);
    expect(retryAfterMs("0")).toBe(0);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs("soon")).toBeUndefined();
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMs(new Date(now + 5000).toUTCString(), now)).toBe(5000);
  });
});

describe("query strings", () => {
  it("ask for cursor pagination and carry the typed filters", () => {
    const qs = new URLSearchParams(
      queryString({
        session_id: "s 1",
        category: "nav",
        name: "view",
        timestamp_after: new Date(Date.UTC(2026, 0, 1)),
        timestamp_before: "2026-01-02",
        limit: 1000,
      }),
    );
    expect(Object.fromEntries(qs)).toEqual({
      pagination: "cursor",
      session_id: "s 1",
      category: "nav",
      name: "view",
      timestamp_after: "2026-01-01T00:00:00.000Z",
      timestamp_before: "2026-01-02",
      limit: "1000",
    });
  });

  it("refuse a limit the server would refuse", () => {
    expect(() => queryString({ limit: 1001 })).toThrow(RangeError);
    expect(() => queryString({ limit: 0 })).toThrow(RangeError);
  });
});

describe("the queue's bound", () => {
  const noNetwork = () => Promise.reject(new Error("no network in this test"));

  it("drop-oldest (the default) keeps the newest events, counts and reports the dropped ones", () => {
    const errors: TrackerError[] = [];
    const t = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      maxQueueEvents: 3,
      fetch: noNetwork,
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < 5; i++) t.track("t", "n", { i });
    expect(t.queued).toBe(3);
    expect(t.stats.dropped).toBe(2);
    expect(errors.map((e) => e.kind === "overflow" && e.events.map((x) => x.data.i))).toEqual([[0], [1]]);
  });

  it("drop-newest refuses the event being tracked instead", () => {
    const errors: TrackerError[] = [];
    const t = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      maxQueueEvents: 3,
      overflow: "drop-newest",
      fetch: noNetwork,
      onError: (e) => errors.push(e),
    });
    const ids = Array.from({ length: 5 }, (_, i) => t.track("t", "n", { i }));
    expect(ids.map((id) => id !== undefined)).toEqual([true, true, true, false, false]);
    expect(t.stats.dropped).toBe(2);
    expect(errors.map((e) => e.kind === "overflow" && e.events.map((x) => x.data.i))).toEqual([[3], [4]]);
  });

  it("bounds bytes as well as events", () => {
    const t = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      maxQueueBytes: 10_000,
      fetch: noNetwork,
    });
    for (let i = 0; i < 20; i++) t.track("t", "n", { pad: "x".repeat(1000) });
    expect(t.queued).toBeLessThan(10);
    expect(t.stats.dropped).toBe(20 - t.queued);
  });

  it("data that is not JSON is reported at track(), not queued", () => {
    const errors: TrackerError[] = [];
    const t = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      fetch: noNetwork,
      onError: (e) => errors.push(e),
    });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(t.track("t", "n", circular)).toBeUndefined();
    expect(t.track("t", "n", { big: 1n } as unknown as Record<string, unknown>)).toBeUndefined();
    expect(t.queued).toBe(0);
    expect(errors.map((e) => e.kind === "invalid" && e.events[0]!.errors[0]!.field)).toEqual(["data", "data"]);
  });
});

describe("session ids", () => {
  it("outside a browser: one per process until reset", () => {
    const a = sessionId();
    expect(sessionId()).toBe(a);
    const b = resetSessionId();
    expect(b).not.toBe(a);
    expect(sessionId()).toBe(b);
  });

  it("are what a tracker uses when the event names none", () => {
    const t = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      fetch: () => Promise.reject(new Error("offline")),
    });
    t.track("t", "n");
    t.track("t", "n", {}, { session_id: "mine" });
    const sent: string[] = [];
    const spy = createTracker({
      endpoint: "http://127.0.0.1:1",
      writeKey: "k",
      flushInterval: 0,
      fetch: async (_url, init) => {
        sent.push(String(init.body));
        return new Response('{"success":true,"accepted":2}', { status: 202 });
      },
    });
    spy.track("t", "n");
    spy.track("t", "n", {}, { session_id: "mine" });
    return spy.flush().then(() => {
      const events = JSON.parse(sent[0]!) as { session_id: string }[];
      expect(events.map((e) => e.session_id)).toEqual([sessionId(), "mine"]);
      expect(t.queued).toBe(2);
    });
  });
});
