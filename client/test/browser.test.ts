// The built client in a real headless browser (Debian's chromium, driven by playwright-core),
// on a page served from another origin than The Eye: events tracked and then left behind when
// the page is navigated away from or closed go out by beacon; what the browser will not take in
// one go waits in localStorage for the next page. Checked through GET /api/event/ with the read key.
import { existsSync } from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FaultServer, faultServer } from "../../test/helpers/fault-server.js";
import type * as Client from "../src/index.js";
import { eyeUrl, newSession, sleep, WRITE_KEY, waitForEvents } from "./helpers/eye.js";
import { staticServer } from "./helpers/static-server.js";

declare global {
  interface Window {
    EyeClient: typeof Client;
    tracker: Client.Tracker;
  }
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Locally a missing browser skips these tests; in CI (which installs it) it fails them.
const run = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!run) console.warn(`browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
if (run && !existsSync(path.resolve(import.meta.dirname, "../dist/index.js")))
  throw new Error("build the client first: npm run build");

let browser: Browser;
let context: BrowserContext;
let site: Awaited<ReturnType<typeof staticServer>>;
let net: FaultServer;

beforeAll(async () => {
  if (!run) return;
  site = await staticServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Root in CI needs --no-sandbox; the rest keeps Chromium off a network it does not have.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
});

afterEach(async () => {
  await context?.close();
  await net?.close();
});

/** A fresh browser profile, and a recording loopback proxy in front of The Eye. */
async function fresh() {
  context = await browser.newContext();
  net = await faultServer(eyeUrl());
}

/** Opens the test page and waits for the built client to load. */
async function openPage(query = "", referer?: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${site.url}/page.html${query}`, referer ? { referer } : {});
  await page.waitForFunction(() => window.EyeClient !== undefined);
  return page;
}

/** Waits until the proxy has seen `n` POSTs. */
async function posts(n: number, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (net.requests.filter((r) => r.method === "POST").length < n) {
    if (Date.now() > until) throw new Error(`${net.requests.length} requests seen, wanted ${n} POSTs`);
    await sleep(50);
  }
  return net.requests.filter((r) => r.method === "POST");
}

describe.runIf(run)("in a browser", () => {
  it("events left in the queue go out by beacon when the page is navigated away: text/plain, ?key=, no preflight", async () => {
    await fresh();
    const session = newSession("beacon-navigate");
    const page = await openPage();
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          flushInterval: 600_000,
        });
        for (let i = 0; i < 3; i++) window.tracker.track("browser", "navigate", { i });
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    await sleep(300);
    expect(net.requests).toHaveLength(0); // nothing sent while the page stays

    await page.goto("about:blank");
    const [beacon] = await posts(1);
    // The key, then the page the events were sent from (sendPage, on by default in browsers).
    expect(beacon!.url).toBe(`/api/event/?key=${WRITE_KEY}&page=${encodeURIComponent(`${site.url}/page.html`)}`);
    expect(beacon!.headers["content-type"]).toBe("text/plain;charset=UTF-8");
    expect(beacon!.headers.authorization).toBeUndefined();
    expect(Buffer.byteLength(beacon!.body)).toBeLessThan(64 * 1024);
    expect(net.requests.some((r) => r.method === "OPTIONS")).toBe(false);

    const stored = await waitForEvents(session, 3);
    expect(beacon!.upstream?.status).toBe(202);
    expect(stored.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
  });

  it("names the page and its referrer, so each event's context carries the campaign and where the visitor came from", async () => {
    await fresh();
    const session = newSession("campaign");
    const page = await openPage(
      "?utm_source=newsletter&utm_campaign=fall&email=someone%40example.com",
      "http://search.example/results?q=eye",
    );
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          flushInterval: 600_000,
        });
        window.tracker.track("browser", "landing", {});
        return window.tracker.flush();
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    const [sent] = await posts(1);
    // What the browser gives as document.referrer (its referrer policy may cut it to the origin).
    expect(new URL(sent!.url, "http://x").searchParams.get("referrer")).toMatch(/^http:\/\/search\.example\//);
    const [stored] = await waitForEvents(session, 1);
    const context = (stored as unknown as { context: Record<string, unknown> }).context;
    expect(context).toMatchObject({ utm_source: "newsletter", utm_campaign: "fall", referrer_host: "search.example" });
    // Only the campaign and the referrer's host are kept: not the rest of either URL.
    expect(JSON.stringify(stored)).not.toMatch(/someone|q=eye|results/);
    await page.close();
  });

  it("when the page is hidden (visibilitychange, dispatched by the test) the queue goes by beacon once and stays queued, and leaving the page later sends nothing twice", async () => {
    await fresh();
    const session = newSession("beacon-hidden");
    const page = await openPage();
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          flushInterval: 600_000,
        });
        window.tracker.track("browser", "hidden", { n: 1 });
        window.tracker.track("browser", "hidden", { n: 2 });
        Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    const [beacon] = await posts(1);
    expect((JSON.parse(beacon!.body) as unknown[]).length).toBe(2);
    // Still queued: a beacon's delivery is never known (the next flush would send them again).
    expect(await page.evaluate(() => window.tracker.queued)).toBe(2);
    await page.goto("about:blank"); // pagehide: already beaconed since the page was hidden, not again
    const stored = await waitForEvents(session, 2);
    expect(net.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(stored.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it("a beacon's delivery is never known: what a hidden page beaconed stays queued and persisted, and the next flush sends it again, stored once", async () => {
    await fresh();
    net.steps = ["drop"]; // the beacon is lost on the way
    const session = newSession("beacon-lost");
    const page = await openPage();
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          persist: "beacon-lost",
          flushInterval: 600_000,
        });
        window.tracker.track("browser", "lost beacon", { n: 1 });
        window.tracker.track("browser", "lost beacon", { n: 2 });
        Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    const [beacon] = await posts(1);
    expect((JSON.parse(beacon!.body) as unknown[]).length).toBe(2);
    expect(beacon!.upstream).toBeUndefined(); // dropped before The Eye saw it
    // Still queued, and still in localStorage for the next page, until an answer says they arrived.
    const kept = await page.evaluate(() => ({
      queued: window.tracker.queued,
      stored: Object.keys(localStorage)
        .filter((k) => k.startsWith("the-eye:queue:beacon-lost:"))
        .map((k) => (JSON.parse(localStorage.getItem(k)!) as unknown[]).length),
    }));
    expect(kept).toEqual({ queued: 2, stored: [2] });

    // Back in view: the next flush sends them again by fetch and learns they were delivered.
    const result = await page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
      return window.tracker.flush();
    });
    expect(result).toEqual({ sent: 2, queued: 0 });
    const stored = await waitForEvents(session, 2);
    expect(stored.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(
      await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("the-eye:queue:beacon-lost:"))),
    ).toEqual([]);
  });

  it("a beacon that did arrive is sent again by the next flush and still stored once (the server knows its event_id)", async () => {
    await fresh();
    const session = newSession("beacon-twice");
    const page = await openPage();
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          flushInterval: 600_000,
        });
        window.tracker.track("browser", "beacon twice", { n: 1 });
        Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    await posts(1);
    await waitForEvents(session, 1, { settleMs: 0 });
    expect(await page.evaluate(() => window.tracker.flush())).toEqual({ sent: 1, queued: 0 });
    const posted = net.requests.filter((r) => r.method === "POST");
    expect(posted).toHaveLength(2);
    expect(posted.map((r) => (JSON.parse(r.body) as { event_id: string }[])[0]!.event_id)).toEqual([
      expect.any(String),
      (JSON.parse(posted[0]!.body) as { event_id: string }[])[0]!.event_id,
    ]);
    expect(await waitForEvents(session, 1)).toHaveLength(1);
  });

  it("closing the tab sends them by beacon too", async () => {
    await fresh();
    const session = newSession("beacon-close");
    const page = await openPage();
    await page.evaluate(
      ({ endpoint, writeKey, session }) => {
        window.tracker = window.EyeClient.createTracker({
          endpoint,
          writeKey,
          sessionId: session,
          flushInterval: 600_000,
        });
        window.tracker.track("browser", "close", { last: true });
      },
      { endpoint: net.url, writeKey: WRITE_KEY, session },
    );
    await page.close();
    await posts(1);
    expect((await waitForEvents(session, 1))[0]!.data).toEqual({ last: true });
  });

  it("a queue larger than one beacon goes in beacons under 64 KiB; the whole queue waits in localStorage for the next page, which sends it, each event stored once", async () => {
    await fresh();
    const session = newSession("beacon-large");
    const page = await openPage();
    const options = { endpoint: net.url, writeKey: WRITE_KEY, session, persist: true };
    await page.evaluate(({ endpoint, writeKey, session, persist }) => {
      window.tracker = window.EyeClient.createTracker({
        endpoint,
        writeKey,
        sessionId: session,
        persist,
        flushInterval: 600_000,
      });
      for (let i = 0; i < 150; i++) window.tracker.track("browser", "large", { i, pad: "x".repeat(1000) });
    }, options);
    await page.goto(`${site.url}/page.html`); // leaves the page: beacons
    await page.waitForFunction(() => window.EyeClient !== undefined);
    // Every one of the 150 events is accounted for: in a beacon the proxy has received, or in a
    // localStorage slot the left page wrote (beacons may still be arriving after the navigation).
    const slots = () =>
      page.evaluate(() => {
        const keys = Object.keys(localStorage).filter((k) => k.startsWith("the-eye:queue:"));
        return {
          slots: keys.length,
          events: keys.reduce((n, k) => n + JSON.parse(localStorage.getItem(k)!).length, 0),
        };
      });
    const beaconedSoFar = () =>
      net.requests.filter((r) => r.method === "POST").reduce((n, r) => n + (JSON.parse(r.body) as unknown[]).length, 0);
    const until = Date.now() + 10_000;
    while (beaconedSoFar() + (await slots()).events < 150) {
      if (Date.now() > until) throw new Error(`${beaconedSoFar()} events beaconed, ${(await slots()).events} stored`);
      await sleep(50);
    }
    const beacons = net.requests.filter((r) => r.method === "POST");
    const left = (await slots()).slots;

    // The next page's tracker adopts what is stored and sends it.
    await page.evaluate(({ endpoint, writeKey, session, persist }) => {
      window.tracker = window.EyeClient.createTracker({
        endpoint,
        writeKey,
        sessionId: session,
        persist,
        flushInterval: 600_000,
      });
    }, options);
    const stored = await waitForEvents(session, 150, { settleMs: 2500 });
    expect(stored.map((e) => e.data.i)).toEqual([...Array(150).keys()]);
    expect(beacons.length).toBeGreaterThan(0);
    for (const b of beacons) expect(Buffer.byteLength(b.body)).toBeLessThan(64 * 1024);
    const beaconed = beacons.reduce((n, b) => n + (JSON.parse(b.body) as unknown[]).length, 0);
    console.log(
      `150 events of ~1 KB on leaving the page: ${beacons.length} beacon(s) took ${beaconed}; all 150 waited in ${left} localStorage slot(s) for the next page (a beacon's delivery is never known)`,
    );
    expect(
      await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("the-eye:queue:")).length),
    ).toBe(0);
    // The next page's flush went by fetch, text/plain with ?key= as well: no preflight either.
    expect(net.requests.filter((r) => r.method === "POST").length).toBeGreaterThan(beacons.length);
    expect(net.requests.some((r) => r.method === "OPTIONS")).toBe(false);
  });

  it("a closed tab's unsent events go out from the next page when persist is on", async () => {
    await fresh();
    const session = newSession("persist");
    const first = await openPage();
    const options = { endpoint: net.url, writeKey: WRITE_KEY, session };
    await first.evaluate(({ endpoint, writeKey, session }) => {
      // No timer and no beacon: the events can only survive through localStorage.
      window.tracker = window.EyeClient.createTracker({
        endpoint,
        writeKey,
        sessionId: session,
        persist: true,
        unload: false,
        flushInterval: 0,
      });
      for (let i = 0; i < 3; i++) window.tracker.track("browser", "persist", { i });
    }, options);
    await first.close();
    expect(net.requests).toHaveLength(0);

    const next = await openPage();
    await next.evaluate(({ endpoint, writeKey, session }) => {
      window.tracker = window.EyeClient.createTracker({
        endpoint,
        writeKey,
        sessionId: session,
        persist: true,
        flushInterval: 0,
      });
    }, options);
    const stored = await waitForEvents(session, 3);
    expect(stored.map((e) => e.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
  });

  it("sessionId() lasts for the tab: the same after a reload, another in a new tab", async () => {
    await fresh();
    const page = await openPage();
    const a = await page.evaluate(() => window.EyeClient.sessionId());
    await page.reload();
    await page.waitForFunction(() => window.EyeClient !== undefined);
    expect(await page.evaluate(() => window.EyeClient.sessionId())).toBe(a);
    const other = await openPage();
    expect(await other.evaluate(() => window.EyeClient.sessionId())).not.toBe(a);
  });
});
