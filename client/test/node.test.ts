// The client under Node against the repository's Worker running in `wrangler dev` (real Queue
// and D1): what it sends arrives once, whatever the network does on the way.
import { afterEach, describe, expect, it, vi } from "vitest";
import { type FaultServer, faultServer } from "../../test/helpers/fault-server.js";
import { createTracker, type TrackerError, type TrackerOptions } from "../src/index.js";
import { eyeUrl, newSession, sleep, WRITE_KEY, waitForEvents } from "./helpers/eye.js";

const servers: FaultServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function network(steps: Parameters<typeof faultServer>[1] = []) {
  const server = await faultServer(eyeUrl(), steps);
  servers.push(server);
  return server;
}

/** A tracker whose retries are quick, reporting into `errors`. */
function tracker(endpoint: string, session: string, errors: TrackerError[], options: Partial<TrackerOptions> = {}) {
  return createTracker({
    endpoint,
    writeKey: WRITE_KEY,
    sessionId: session,
    flushInterval: 0,
    retryBaseDelay: 20,
    onError: (e) => errors.push(e),
    ...options,
  });
}

const posts = (server: FaultServer) => server.requests.filter((r) => r.method === "POST");

describe("delivery", () => {
  it("events tracked in Node arrive with the event_ids the client gave them, in batches of at most 500", async () => {
    const session = newSession("arrive");
    const errors: TrackerError[] = [];
    const net = await network();
    const t = tracker(net.url, session, errors);
    const ids = new Set<string>();
    for (let i = 0; i < 1203; i++) ids.add(t.track("test", "bulk", { i })!);
    const result = await t.flush();

    expect(errors).toEqual([]);
    expect(result).toEqual({ sent: 1203, queued: 0 });
    expect(posts(net).map((r) => (JSON.parse(r.body) as unknown[]).length)).toEqual([500, 500, 203]);
    // From Node the key travels in the Authorization header, never in the URL.
    expect(posts(net).every((r) => r.headers.authorization === `Bearer ${WRITE_KEY}` && !r.url.includes("key="))).toBe(
      true,
    );

    const stored = await waitForEvents(session, 1203);
    expect(stored).toHaveLength(1203);
    expect(new Set(stored.map((e) => e.event_id))).toEqual(ids);
    expect(stored.map((e) => e.data.i)).toEqual([...Array(1203).keys()]);
  });

  it("batches by bytes too: every body stays under maxBatchBytes", async () => {
    const session = newSession("bytes");
    const errors: TrackerError[] = [];
    const net = await network();
    const t = tracker(net.url, session, errors, { maxBatchBytes: 16 * 1024 });
    const filler = "é".repeat(1000); // 2,000 bytes of UTF-8
    for (let i = 0; i < 30; i++) t.track("test", "bytes", { i, filler });
    await t.flush();

    const sizes = posts(net).map((r) => Buffer.byteLength(r.body));
    expect(sizes.length).toBeGreaterThan(3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(16 * 1024);
    expect(errors).toEqual([]);
    expect(await waitForEvents(session, 30)).toHaveLength(30);
  });

  it("a retried flush stores nothing twice: the Worker took the batch, the answer was lost, the batch went again", async () => {
    const session = newSession("retried");
    const errors: TrackerError[] = [];
    const net = await network(["forward-then-drop"]);
    const t = tracker(net.url, session, errors);
    for (let i = 0; i < 20; i++) t.track("test", "retried", { i });
    const result = await t.flush();

    expect(result.sent).toBe(20);
    expect(t.stats.retries).toBe(1);
    const [first, second] = posts(net);
    expect(second!.body).toBe(first!.body); // the same events, with the same event_ids
    expect(first!.upstream).toEqual({ status: 202, body: '{"success":true,"accepted":20}' });
    expect(second!.upstream?.status).toBe(202);

    const stored = await waitForEvents(session, 20, { settleMs: 2500 });
    expect(stored).toHaveLength(20);
    expect(errors).toEqual([]);
  });

  it("the same events sent again by another tracker (a resend after a crash) are stored once", async () => {
    const session = newSession("resend");
    const a = tracker(eyeUrl(), session, []);
    const ids = [a.track("test", "resend", { n: 1 })!, a.track("test", "resend", { n: 2 })!];
    await a.flush();
    const b = tracker(eyeUrl(), session, []);
    for (const [n, id] of ids.entries()) b.track("test", "resend", { n: n + 1 }, { event_id: id });
    expect((await b.flush()).sent).toBe(2);
    const stored = await waitForEvents(session, 2, { settleMs: 2500 });
    expect(stored.map((e) => e.event_id).sort()).toEqual([...ids].sort());
  });
});

describe("retry policy", () => {
  it("retries 503, 429 and a dropped connection with backoff, waiting at least Retry-After", async () => {
    const session = newSession("retry");
    const errors: TrackerError[] = [];
    const net = await network([
      { status: 503, headers: { "retry-after": "1" } },
      { status: 429, headers: { "retry-after": "0" } },
      "drop",
    ]);
    const t = tracker(net.url, session, errors);
    t.track("test", "retry", {});
    t.track("test", "retry", {});
    const result = await t.flush();

    expect(result).toEqual({ sent: 2, queued: 0 });
    expect(t.stats.retries).toBe(3);
    const at = posts(net).map((r) => r.at);
    expect(at).toHaveLength(4);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000); // Retry-After: 1
    expect(new Set(posts(net).map((r) => r.body)).size).toBe(1);
    expect(errors).toEqual([]);
    expect(await waitForEvents(session, 2)).toHaveLength(2);
  });

  it("aborts a request that gets no answer after `timeout`, counts it as a network error, and retries it", async () => {
    const session = newSession("timeout");
    const errors: TrackerError[] = [];
    const net = await network(["hang"]);
    const t = tracker(net.url, session, errors, { timeout: 400 });
    t.track("test", "timeout", {});
    const started = Date.now();
    const result = await t.flush();

    expect(result).toEqual({ sent: 1, queued: 0 });
    expect(t.stats.retries).toBe(1);
    const [hung, retried] = posts(net);
    expect(retried!.body).toBe(hung!.body);
    expect(retried!.at - started, "the retry waited for the timeout").toBeGreaterThanOrEqual(400);
    expect(retried!.upstream?.status).toBe(202);
    expect(errors).toEqual([]);
    expect(await waitForEvents(session, 1)).toHaveLength(1);
  });

  it("with retries run out on timeouts, reports the events unavailable and keeps them queued", async () => {
    const errors: TrackerError[] = [];
    const net = await network(["hang", "hang"]);
    const t = tracker(net.url, newSession("timeouts"), errors, { timeout: 200, maxRetries: 1 });
    t.track("test", "timeouts", {});
    expect(await t.flush()).toEqual({ sent: 0, queued: 1 });
    expect(posts(net)).toHaveLength(2);
    expect(errors).toMatchObject([{ kind: "unavailable", queued: 1 }]);
    expect(errors[0]!.kind === "unavailable" && errors[0]!.status).toBeUndefined();
  });

  it("waits the backoff when it is longer than a smaller Retry-After: the larger of the two, not their sum", async () => {
    const session = newSession("floor");
    const errors: TrackerError[] = [];
    const net = await network([{ status: 503, headers: { "retry-after": "1" } }]);
    // No jitter: the first backoff is its least, half of retryBaseDelay, 1500 ms; Retry-After asks 1000.
    const random = vi.spyOn(Math, "random").mockReturnValue(0);
    try {
      const t = tracker(net.url, session, errors, { retryBaseDelay: 3000 });
      t.track("test", "floor", {});
      expect(await t.flush()).toEqual({ sent: 1, queued: 0 });
    } finally {
      random.mockRestore();
    }
    const [first, second] = posts(net).map((r) => r.at);
    expect(second! - first!).toBeGreaterThanOrEqual(1500);
    expect(second! - first!, "max(backoff, Retry-After), not backoff + Retry-After").toBeLessThan(2500);
    expect(errors).toEqual([]);
  });

  it("does not retry other 4xx: 401 and 413 hand the events to onError as refused", async () => {
    const session = newSession("refused");
    const errors: TrackerError[] = [];
    const net = await network([
      { status: 401, body: { success: false, code: "unauthorized", message: "a write key is required" } },
      { status: 413, body: { success: false, code: "payload_too_large", message: "too large" } },
    ]);
    const t = tracker(net.url, session, errors, { maxBatchEvents: 1 });
    t.track("test", "refused", { n: 1 });
    t.track("test", "refused", { n: 2 });
    await t.flush();

    expect(posts(net)).toHaveLength(2);
    expect(errors.map((e) => e.kind === "refused" && [e.status, e.message, e.events[0]!.data])).toEqual([
      [401, "a write key is required", { n: 1 }],
      [413, "too large", { n: 2 }],
    ]);
    expect(t.stats).toMatchObject({ refused: 2, sent: 0, retries: 0 });
    expect(t.queued).toBe(0);
  });

  it("when retries run out the events stay queued, and the next flush delivers them", async () => {
    const session = newSession("exhausted");
    const errors: TrackerError[] = [];
    const net = await network([{ status: 502 }, { status: 503 }, { status: 500 }]);
    const t = tracker(net.url, session, errors, { maxRetries: 2 });
    t.track("test", "exhausted", {});
    const first = await t.flush();

    expect(first).toEqual({ sent: 0, queued: 1 });
    expect(posts(net)).toHaveLength(3);
    expect(errors).toHaveLength(1);
    const [unavailable] = errors;
    expect(unavailable).toMatchObject({ kind: "unavailable", status: 500, queued: 1 });
    // The next flush waits for the backoff's end, then goes through.
    const retryAt = unavailable!.kind === "unavailable" ? unavailable!.retryAt : 0;
    await sleep(Math.max(0, retryAt - Date.now()) + 10);
    expect(await t.flush()).toEqual({ sent: 1, queued: 0 });
    expect(await waitForEvents(session, 1)).toHaveLength(1);
  });

  it("a Retry-After longer than maxRetryDelay ends the flush at once, and no flush sends before it", async () => {
    const session = newSession("later");
    const errors: TrackerError[] = [];
    const net = await network([{ status: 429, headers: { "retry-after": "2" } }]);
    const t = tracker(net.url, session, errors, { maxRetryDelay: 500 });
    t.track("test", "later", {});
    const started = Date.now();
    expect(await t.flush()).toEqual({ sent: 0, queued: 1 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(errors[0]).toMatchObject({ kind: "unavailable", status: 429 });
    expect(await t.flush()).toEqual({ sent: 0, queued: 1 }); // too early: nothing sent
    expect(posts(net)).toHaveLength(1);
    await sleep(2100);
    expect(await t.flush()).toEqual({ sent: 1, queued: 0 });
    expect(posts(net)[1]!.at - posts(net)[0]!.at).toBeGreaterThanOrEqual(2000);
  });
});

describe("invalid events", () => {
  it("events the server refuses go to onError with its reasons, and are not retried; the rest are stored", async () => {
    const session = newSession("invalid");
    const errors: TrackerError[] = [];
    const net = await network();
    const t = tracker(net.url, session, errors);
    t.track("test", "ok", { n: 1 });
    const future = t.track("test", "future", {}, { timestamp: "2999-01-01T00:00:00Z" });
    t.track("test", "ok", { n: 2 });
    const empty = t.track("", "no category", {});
    const result = await t.flush();

    expect(result).toEqual({ sent: 2, queued: 0 });
    expect(posts(net)).toHaveLength(1);
    expect(posts(net)[0]!.upstream?.status).toBe(202);
    expect(errors).toHaveLength(1);
    const invalid = errors[0]!.kind === "invalid" ? errors[0]!.events : [];
    expect(invalid.map((e) => [e.event.event_id, e.errors.map((r) => [r.index, r.field, r.rule])])).toEqual([
      [future, [[1, "timestamp", "future"]]],
      [empty, [[3, "category", "custom"]]],
    ]);
    expect(t.stats).toMatchObject({ sent: 2, invalid: 2, retries: 0 });
    const stored = await waitForEvents(session, 2);
    expect(stored.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("a batch of only invalid events (400) goes to onError and is not retried", async () => {
    const errors: TrackerError[] = [];
    const net = await network();
    const t = tracker(net.url, newSession("all-invalid"), errors);
    t.track("test", "bad", {}, { timestamp: "2021-02-30 10:00" });
    t.track("test", "bad", {}, { timestamp: "yesterday" });
    await t.flush();

    expect(posts(net)).toHaveLength(1);
    expect(posts(net)[0]!.upstream?.status).toBe(400);
    expect(errors).toMatchObject([
      {
        kind: "invalid",
        events: [{ errors: [{ index: 0, field: "timestamp" }] }, { errors: [{ index: 1, field: "timestamp" }] }],
      },
    ]);
    expect(t.queued).toBe(0);
  });

  it("data over the server's limit is refused before sending", async () => {
    const errors: TrackerError[] = [];
    const net = await network();
    const t = tracker(net.url, newSession("big"), errors);
    expect(t.track("test", "big", { blob: "x".repeat(40_000) })).toBeUndefined();
    await t.flush();
    expect(posts(net)).toHaveLength(0);
    expect(errors).toMatchObject([{ kind: "invalid", events: [{ errors: [{ field: "data", rule: "too_big" }] }] }]);
  });
});

describe("unload without sendBeacon (Node, or a page whose navigator has none)", () => {
  it("beacon() sends the queue by fetch with keepalive: text/plain, the key in the URL, no credentials", async () => {
    expect(typeof (globalThis.navigator as { sendBeacon?: unknown } | undefined)?.sendBeacon).toBe("undefined");
    const session = newSession("keepalive");
    const net = await network();
    const sent: { url: string; init: RequestInit }[] = [];
    const realFetch = globalThis.fetch;
    vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
      sent.push({ url, init });
      return realFetch(url, init);
    });
    try {
      // The tracker's own requests go through its `fetch` option; the unload path through the global one.
      const t = tracker(net.url, session, [], { fetch: () => Promise.reject(new Error("not this way")) });
      t.track("test", "keepalive", { n: 1 });
      t.track("test", "keepalive", { n: 2 });
      expect(t.beacon()).toBe(2);
      // A beacon's delivery is never known: its events stay queued (and persisted) until a flush's
      // answer says they arrived; the server stores each event_id once.
      expect(t.queued).toBe(2);
      expect(t.stats.beaconed).toBe(2);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(sent).toHaveLength(1);
    expect(sent[0]!.url).toBe(`${net.url}/api/event/?key=${WRITE_KEY}`);
    expect(sent[0]!.init).toMatchObject({
      method: "POST",
      keepalive: true,
      credentials: "omit",
      headers: { "content-type": "text/plain;charset=UTF-8" },
    });
    const stored = await waitForEvents(session, 2);
    expect(stored.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
    const [beacon] = posts(net);
    expect(beacon!.headers["content-type"]).toBe("text/plain;charset=UTF-8");
    expect(beacon!.headers.authorization).toBeUndefined();
    expect(beacon!.upstream?.status).toBe(202);
  });
});
