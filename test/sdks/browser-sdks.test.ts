// The real browser SDKs, unmodified, bundled from the registry (devDependencies) with esbuild, no
// CDN, on a page of another origin in headless Chromium (Debian's, driven by playwright-core), with
// only their host pointed at The Eye under `wrangler dev`: @segment/analytics-next (its settings from
// GET /v1/projects/{key}/settings, then /v1/p, /v1/t … with Basic auth) and posthog-js (its remote
// config from /array/{token}/config.js, autocapture on: a page view and a click, gzip to /e/). Each
// event is stored once and found by its session and name; an answer lost on the way back makes the
// SDK send again, and the event is still stored once. No console error, no request elsewhere.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { build } from "esbuild";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FaultServer, faultServer } from "../helpers/fault-server";
import { eyeUrl, sleep, WRITE_KEY, waitFor, waitForNames } from "./helpers";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Locally a missing browser skips these tests; in CI (which installs it) it fails them.
const run = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!run) console.warn(`SDK browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
const ROOT = path.resolve(import.meta.dirname, "../..");

/** Each SDK's entry, as an application would import it. */
const ENTRIES = {
  "segment.js":
    'import { AnalyticsBrowser } from "@segment/analytics-next"; window.AnalyticsBrowser = AnalyticsBrowser;',
  "posthog.js": 'import posthog from "posthog-js"; window.posthog = posthog;',
};

/** The test page: a button and a link in a container, as in a shop. */
const page = (script: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>SDK test page</title><link rel="icon" href="data:,">
<script src="/${script}"></script></head>
<body><div id="wrap" class="container">
<button id="buy" class="btn primary" data-attr="buy-btn">Buy now</button>
<a id="more" href="#more">More</a>
</div></body></html>`;

let site: { url: string; server: Server };
let browser: Browser;
let context: BrowserContext;
let proxy: FaultServer | undefined;
/** What the page logged as an error, and every URL it asked for. */
let problems: string[] = [];
let requests: { method: string; url: string }[] = [];

beforeAll(async () => {
  if (!run) return;
  const bundles = new Map<string, string>();
  for (const [name, contents] of Object.entries(ENTRIES)) {
    const out = await build({
      stdin: { contents, resolveDir: ROOT, loader: "js" },
      bundle: true,
      format: "iife",
      platform: "browser",
      target: "es2020",
      minify: true,
      write: false,
      logLevel: "silent",
    });
    bundles.set(`/${name}`, out.outputFiles[0]!.text);
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const bundle = bundles.get(url.pathname);
    if (bundle) {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      return res.end(bundle);
    }
    if (url.pathname.endsWith(".html")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(page(url.pathname === "/segment.html" ? "segment.js" : "posthog.js"));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  site = { url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, server };
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
  await new Promise((resolve) => site?.server.close(resolve));
});

afterEach(async () => {
  await context?.close();
  await proxy?.close();
  proxy = undefined;
});

async function open(file: string): Promise<Page> {
  context = await browser.newContext();
  problems = [];
  requests = [];
  const p = await context.newPage();
  p.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  p.on("request", (r) => requests.push({ method: r.method(), url: r.url() }));
  await p.goto(`${site.url}/${file}`);
  return p;
}

/** The requests the page made to The Eye (or the proxy in front of it), as "METHOD /path". */
const toEye = (host: string) =>
  requests.filter((r) => r.url.startsWith(host)).map((r) => `${r.method} ${new URL(r.url).pathname}`);

describe.runIf(run)("@segment/analytics-next", () => {
  /**
   * Only the host: the settings come from The Eye (cdnURL), and they send events back to it. `apiHost`
   * (behind the test's proxy, which The Eye cannot see) points the events at the proxy too.
   */
  async function load(p: Page, host: string, apiHost?: string) {
    return p.evaluate(
      async ({ writeKey, host, apiHost }) => {
        const w = window as unknown as {
          AnalyticsBrowser: { load: (s: object, o: object) => unknown };
          analytics: {
            page: () => Promise<unknown>;
            track: (e: string, p?: object) => Promise<unknown>;
            identify: (id: string, t?: object) => Promise<unknown>;
            user: () => Promise<{ anonymousId: () => string }>;
          };
        };
        const options = apiHost ? { integrations: { "Segment.io": { apiHost, protocol: "http" } } } : {};
        w.analytics = w.AnalyticsBrowser.load({ writeKey, cdnURL: host }, options) as typeof w.analytics;
        await w.analytics.page();
        await w.analytics.track("Signed Up", { plan: "pro" });
        document
          .getElementById("buy")!
          .addEventListener("click", () => void w.analytics.track("Buy Clicked", { price: 10 }));
        return (await w.analytics.user()).anonymousId();
      },
      { writeKey: WRITE_KEY, host, apiHost },
    );
  }

  it("loads its settings from The Eye and sends a page, a track and a click's track there; each stored once, by anonymousId", async () => {
    const p = await open("segment.html");
    const anonymousId = await load(p, eyeUrl());
    await p.click("#buy");
    const byName = await waitForNames(anonymousId, ["/segment.html", "Signed Up", "Buy Clicked"]);
    for (const [name, events] of byName) expect(events, name).toHaveLength(1);
    expect(byName.get("/segment.html")![0]).toMatchObject({
      category: "page",
      data: { properties: { path: "/segment.html", title: "SDK test page" }, anonymousId },
    });
    expect(byName.get("Buy Clicked")![0]).toMatchObject({ category: "track", data: { properties: { price: 10 } } });
    // Its context from the message: the browser (the page's User-Agent), as POST /api/event/ gets it.
    expect(byName.get("Signed Up")![0]!.context).toMatchObject({ browser: "Chrome", os: "Linux" });
    const calls = toEye(eyeUrl());
    expect(calls).toContain(`GET /v1/projects/${WRITE_KEY}/settings`);
    expect(calls.filter((c) => c.startsWith("POST"))).toEqual(
      expect.arrayContaining(["POST /v1/p", "POST /v1/t", "POST /v1/t"]),
    );
    expect(requests.every((r) => r.url.startsWith(site.url) || r.url.startsWith(eyeUrl()))).toBe(true);
    expect(problems).toEqual([]);
  });

  it("sends an event again when its answer is lost, and it is stored once", async () => {
    // No kept-alive connection, or Chromium itself would send the event again, unseen by the SDK (fault-server.ts).
    proxy = await faultServer(eyeUrl(), ["forward-then-drop"], (r) => r.method === "POST" && r.url === "/v1/t", {
      keepAlive: false,
    });
    const p = await open("segment.html");
    const anonymousId = await load(p, proxy.url, `${new URL(proxy.url).host}/v1`);
    const sent = () => proxy!.requests.filter((r) => r.method === "POST" && r.url === "/v1/t");
    // analytics.js sends a failed event again from its queue with X-Retry-Count (which the preflight
    // must allow); wait for The Eye's answer to it, then for the event (a copy the resend stored would show).
    const retry = await waitFor(
      () => sent().find((r) => r.headers["x-retry-count"] === "1" && r.upstream !== undefined),
      () => `no resend answered by The Eye; POST /v1/t: ${sent().length}; page: ${problems.join(" | ") || "no error"}`,
    );
    const byName = await waitForNames(anonymousId, ["Signed Up"]);
    expect(byName.get("Signed Up")).toHaveLength(1);
    expect(sent()[0]!.upstream?.status).toBe(200);
    expect(retry.upstream?.status).toBe(200);
    const ids = sent().map((r) => (JSON.parse(r.body) as { messageId: string }).messageId);
    expect(new Set(ids).size).toBe(1);
  });
});

describe.runIf(run)("posthog-js", () => {
  async function init(p: Page, host: string) {
    // Only the host; a headless browser is a bot to posthog-js, which would drop every event without opt_out_useragent_filter.
    return p.evaluate(
      ({ token, host }) => {
        const ph = (
          window as unknown as { posthog: { init: (t: string, o: object) => void; get_session_id: () => string } }
        ).posthog;
        ph.init(token, { api_host: host, opt_out_useragent_filter: true });
        return ph.get_session_id();
      },
      { token: WRITE_KEY, host },
    );
  }

  it("takes its remote config from The Eye, autocaptures a page view and a click, sends them gzipped to /e/; each stored once, by $session_id", async () => {
    const p = await open("posthog.html");
    const session = await init(p, eyeUrl());
    await sleep(500);
    await p.click("#buy");
    const byName = await waitForNames(session, ["$pageview", "$autocapture"], { settleMs: 4000 });
    expect(byName.get("$pageview")).toHaveLength(1);
    expect(byName.get("$autocapture")).toHaveLength(1);
    expect(byName.get("$pageview")![0]).toMatchObject({
      category: "page",
      data: { properties: { $session_id: session, $pathname: "/posthog.html", title: "SDK test page" } },
    });
    expect(byName.get("$autocapture")![0]).toMatchObject({
      category: "autocapture",
      data: { properties: { $event_type: "click", $el_text: "Buy now" } },
    });
    expect(byName.get("$pageview")![0]!.context).toMatchObject({ browser: "Chrome", os: "Linux" });
    const calls = toEye(eyeUrl());
    expect(calls).toContain(`GET /array/${WRITE_KEY}/config.js`);
    expect(calls.filter((c) => c.startsWith("POST")).every((c) => c === "POST /e/")).toBe(true);
    expect(requests.every((r) => r.url.startsWith(site.url) || r.url.startsWith(eyeUrl()))).toBe(true);
    expect(problems).toEqual([]);
  });

  it("sends a batch again when its answer is lost, and each event is stored once", async () => {
    // No kept-alive connection, or Chromium itself would send the batch again, unseen by posthog-js (fault-server.ts).
    proxy = await faultServer(eyeUrl(), ["forward-then-drop"], (r) => r.method === "POST" && r.url.startsWith("/e/"), {
      keepAlive: false,
    });
    const p = await open("posthog.html");
    const session = await init(p, proxy.url);
    const sent = () => proxy!.requests.filter((r) => r.method === "POST" && r.url.startsWith("/e/"));
    // posthog-js's RetryQueue (lib/src/retry-queue.js) sends a lost batch again after 3 s ±50 %, but looks
    // at its queue only every 3 s: about 3 or 6 s after the loss, later on a busy machine. So wait for the
    // retry and for The Eye's answer to it, then for the events (a copy the retry stored would show).
    const urls = () => sent().map((r) => r.url);
    const retry = await waitFor(
      () => sent().find((r) => r.url.includes("retry_count=1") && r.upstream !== undefined),
      () => `no retry answered by The Eye; POSTs: ${urls().join(", ") || "none"}`,
    );
    const byName = await waitForNames(session, ["$pageview"]);
    expect(byName.get("$pageview")).toHaveLength(1);
    // The first batch reached The Eye (200), its answer was lost; the same events came again, marked as a retry.
    const first = sent()[0]!;
    const uuids = (r: typeof first) =>
      (JSON.parse(gunzipSync(r.raw).toString("utf8")) as { batch: { uuid: string }[] }).batch.map((e) => e.uuid);
    expect(first.upstream?.status).toBe(200);
    expect(retry.upstream?.status).toBe(200);
    expect(uuids(retry)).toEqual(uuids(first));
    expect(uuids(first)).toContain(byName.get("$pageview")![0]!.event_id);
  });
});
