// The query client against the Worker in `wrangler dev`: typed filters, every page by cursor,
// one session in order, receipts; and through a faulty network, its retries and its timeout.
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type FaultServer, faultServer, type Step } from "../../test/helpers/fault-server.js";
import { createQueryClient, createTracker, EyeError, type Fetch } from "../src/index.js";
import { eyeUrl, newSession, READ_KEY, WRITE_KEY, waitForEvents } from "./helpers/eye.js";

const session = newSession("query");
const base = Date.UTC(2026, 0, 1, 12, 0, 0);
const ids: string[] = [];

beforeAll(async () => {
  const t = createTracker({ endpoint: eyeUrl(), writeKey: WRITE_KEY, sessionId: session, flushInterval: 0 });
  // 25 events a minute apart: 15 "view", 10 "click".
  for (let i = 0; i < 25; i++)
    ids.push(t.track("query-test", i % 5 < 3 ? "view" : "click", { i }, { timestamp: new Date(base + i * 60_000) })!);
  await t.close();
  await waitForEvents(session, 25, { settleMs: 0 });
});

/** A query client that records the URLs it fetches. */
function client() {
  const urls: string[] = [];
  const fetchFn: Fetch = (url, init) => {
    urls.push(url);
    return fetch(url, init);
  };
  return { urls, query: createQueryClient({ endpoint: eyeUrl(), readKey: READ_KEY, fetch: fetchFn }) };
}

describe("query client", () => {
  it("walks every page in cursor mode, following next, newest first, nothing twice", async () => {
    const { urls, query } = client();
    const seen: number[] = [];
    for await (const e of query.events({ session_id: session, limit: 10 })) seen.push(e.data.i as number);
    expect(seen).toEqual([...Array(25).keys()].reverse());
    expect(urls).toHaveLength(3);
    expect(urls.every((u) => new URL(u).searchParams.get("pagination") === "cursor")).toBe(true);
    expect(urls.slice(1).every((u) => new URL(u).searchParams.has("cursor"))).toBe(true);
    // The read key travels in the header only.
    expect(urls.some((u) => u.includes(READ_KEY))).toBe(false);
  });

  it("filters by category, name and an inclusive time range", async () => {
    const { query } = client();
    const got: number[] = [];
    for await (const e of query.events({
      session_id: session,
      category: "query-test",
      name: "view",
      timestamp_after: new Date(base + 5 * 60_000),
      timestamp_before: new Date(base + 14 * 60_000).toISOString(),
    })) {
      got.push(e.data.i as number);
    }
    expect(got).toEqual([12, 11, 10, 7, 6, 5]);
  });

  it("returns results with the stored event's fields, and pages one at a time", async () => {
    const { query } = client();
    const pages = query.pages({ session_id: session, limit: 20 });
    const first = await pages.next();
    expect(first.done).toBe(false);
    const page = first.value!;
    expect(page.results).toHaveLength(20);
    expect(page.next).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/event\/\?/);
    const newest = page.results[0]!;
    expect(newest).toEqual({
      session_id: session,
      timestamp: new Date(base + 24 * 60_000).toISOString().replace(".000Z", "Z"),
      category: "query-test",
      name: "click",
      data: { i: 24 },
      event_id: ids[24],
      received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$/),
      application: "app_dev",
      // wrangler dev's stand-in request.cf and Node's fetch User-Agent (the server's context.ts).
      context: expect.objectContaining({ country: expect.stringMatching(/^[A-Z][A-Z0-9]$/) }),
    });
    await pages.return(undefined);
  });

  it("sends each answer's X-D1-Bookmark with the next page's request, so a walk never reads an older state than it has seen", async () => {
    // With read replicas a page could come from a replica behind the one that answered the page before;
    // the bookmark the server returns asks D1 for a state at least that new.
    const sent: (string | null)[] = [];
    const answered: (string | null)[] = [];
    const fetchFn: Fetch = async (url, init) => {
      sent.push(new Headers(init.headers).get("x-d1-bookmark"));
      const res = await fetch(url, init);
      answered.push(res.headers.get("x-d1-bookmark"));
      return res;
    };
    const query = createQueryClient({ endpoint: eyeUrl(), readKey: READ_KEY, fetch: fetchFn });
    let n = 0;
    for await (const _ of query.events({ session_id: session, limit: 10 })) n++;
    for await (const _ of query.session(session, { limit: 10 })) n++;
    expect(n).toBe(50);
    expect(sent).toHaveLength(6);
    expect(answered.every((b) => b !== null && /^[0-9a-f]+(-[0-9a-f]+)*$/i.test(b))).toBe(true);
    // The first request of the client has none; every later one carries the bookmark of the answer before it.
    expect(sent[0]).toBeNull();
    expect(sent.slice(1)).toEqual(answered.slice(0, -1));
  });

  it("reads one session oldest first", async () => {
    const { query } = client();
    const order: number[] = [];
    for await (const e of query.session(session, { limit: 7 })) order.push(e.data.i as number);
    expect(order).toEqual([...Array(25).keys()]);
  });

  it("answers a receipt by event_id, and null for one never stored", async () => {
    const { query } = client();
    expect((await query.event(ids[3]!))?.data).toEqual({ i: 3 });
    expect(await query.event("01900000-0000-7000-8000-000000000000")).toBeNull();
  });

  it("throws the server's error for a bad key or a bad filter", async () => {
    const bad = createQueryClient({ endpoint: eyeUrl(), readKey: WRITE_KEY });
    await expect(bad.page({ session_id: session })).rejects.toMatchObject({
      name: "EyeError",
      status: 403,
      code: "forbidden",
    });
    const { query } = client();
    const err = await query.page({ timestamp_after: "not a date" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EyeError);
    expect(err).toMatchObject({ status: 400, code: "invalid_query" });
  });
});

describe("query client retries", () => {
  const servers: FaultServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  /** A query client through a network that takes `steps` first, then forwards to the Worker. */
  async function through(steps: Step[], options: { maxRetries?: number; retryBaseDelay?: number; timeout?: number }) {
    const net = await faultServer(eyeUrl(), steps);
    servers.push(net);
    return { net, query: createQueryClient({ endpoint: net.url, readKey: READ_KEY, retryBaseDelay: 20, ...options }) };
  }
  const gets = (net: FaultServer) => net.requests.filter((r) => r.method === "GET");

  it("retries 429, 5xx and a dropped connection, then answers the page, the same request each time", async () => {
    const { net, query } = await through([{ status: 429, headers: { "retry-after": "0" } }, { status: 503 }, "drop"], {
      maxRetries: 3,
    });
    const page = await query.page({ session_id: session, limit: 5 });
    expect(page.results.map((e) => e.data.i)).toEqual([24, 23, 22, 21, 20]);
    expect(gets(net)).toHaveLength(4);
    expect(new Set(gets(net).map((r) => r.url)).size).toBe(1);
    expect(gets(net).every((r) => r.headers.authorization === `Bearer ${READ_KEY}`)).toBe(true);
  });

  it("waits at least Retry-After, and the backoff when that is longer", async () => {
    const slowHeader = await through([{ status: 503, headers: { "retry-after": "1" } }], {});
    await slowHeader.query.page({ session_id: session, limit: 1 });
    const [a, b] = gets(slowHeader.net).map((r) => r.at);
    expect(b! - a!, "Retry-After: 1 over a 20 ms backoff").toBeGreaterThanOrEqual(1000);

    // No jitter: the first backoff is its least, half of retryBaseDelay, 1500 ms; Retry-After asks 0.
    const random = vi.spyOn(Math, "random").mockReturnValue(0);
    try {
      const slowBackoff = await through([{ status: 429, headers: { "retry-after": "0" } }], { retryBaseDelay: 3000 });
      await slowBackoff.query.page({ session_id: session, limit: 1 });
      const [c, d] = gets(slowBackoff.net).map((r) => r.at);
      expect(d! - c!, "a 1500 ms backoff over Retry-After: 0").toBeGreaterThanOrEqual(1500);
    } finally {
      random.mockRestore();
    }
  });

  it("throws the last answer as an EyeError once its retries run out", async () => {
    const { net, query } = await through(
      [
        { status: 503 },
        { status: 503, body: { success: false, code: "unavailable", message: "down", request_id: "r1" } },
      ],
      { maxRetries: 1 },
    );
    const err = await query.page({ session_id: session }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EyeError);
    expect(err).toMatchObject({ status: 503, code: "unavailable", message: "down", requestId: "r1" });
    expect(gets(net)).toHaveLength(2);
  });

  it("aborts a request that gets no answer after `timeout` and retries it; past its retries, throws the abort", async () => {
    const hungOnce = await through(["hang"], { timeout: 400 });
    const started = Date.now();
    const page = await hungOnce.query.page({ session_id: session, limit: 2 });
    expect(page.results).toHaveLength(2);
    const [, retried] = gets(hungOnce.net);
    expect(retried!.at - started).toBeGreaterThanOrEqual(400);

    const hungAlways = await through(["hang", "hang"], { timeout: 200, maxRetries: 1 });
    const err = await hungAlways.query.page({ session_id: session }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toMatch(/TimeoutError|AbortError/);
    expect(gets(hungAlways.net)).toHaveLength(2);
  });
});
