// The events explorer (public/explorer/) in headless Chromium (Debian's, driven by playwright-core)
// against `wrangler dev`: the key gate, filters, cursor paging, a row's payload, a session's timeline,
// the chart from GET /api/stats/counts, the country and device filters and an event's context, hostile
// payloads shown as text, and the key never in a URL.
// Screenshots go to $EXPLORER_SCREENSHOTS (default: the-eye-explorer under the temp directory).
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Locally a missing browser skips these tests; in CI (which installs it) it fails them.
const run = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!run) console.warn(`explorer browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
const SHOTS = process.env.EXPLORER_SCREENSHOTS ?? path.join(tmpdir(), "the-eye-explorer");

const WRITE_KEY = "eye_dev_write_key";
const READ_KEY = "eye_dev_read_key";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const tag = crypto.randomUUID().slice(0, 8);

// The data: 120 events of 30 sessions, one every 10 minutes over 20 hours; one session of 6 events
// in 3 minutes; one event whose name and payload are HTML. Timestamps start on a whole minute, as
// the page's time inputs are to the minute.
const base = Math.floor((Date.now() - 20 * HOUR) / MINUTE) * MINUTE;
const iso = (ms: number) => new Date(ms).toISOString();
const CATEGORIES = ["page view", "page view", "page interaction", "page interaction", "form", "commerce"];
const ALPHA = `alpha-${tag}`;
const ALPHA_STEPS = [
  ["page view", "view"],
  ["page interaction", "cta click"],
  ["form", "field error"],
  ["form", "submit"],
  ["commerce", "add to cart"],
  ["commerce", "checkout"],
] as const;
const HOSTILE_NAME = "<img src=x onerror=alert(1)>";
const events = [
  ...Array.from({ length: 120 }, (_, i) => ({
    session_id: `s${i % 30}-${tag}`,
    category: CATEGORIES[i % 6]!,
    name: ["view", "view", "scroll", "cta click", "submit", "checkout"][i % 6]!,
    data: {
      path: ["/", "/pricing", "/product/42", "/cart"][i % 4],
      i,
      ...(i % 6 === 5 ? { sku: `SKU-${i}`, price: 19.9 + i } : {}),
    },
    timestamp: iso(base + i * 10 * MINUTE),
  })),
  ...ALPHA_STEPS.map(([category, name], i) => ({
    session_id: ALPHA,
    category,
    name,
    data: { step: i + 1 },
    timestamp: iso(base + 10 * HOUR + i * 37_000),
  })),
  {
    session_id: `hostile-${tag}`,
    category: "page view",
    name: HOSTILE_NAME,
    data: { html: "<script>window.pwned = 1</script>" },
    timestamp: iso(base + 19 * HOUR),
  },
];
// Four events sent as from four visitors (the stand-in for request.cf that wrangler dev takes under
// ENVIRONMENT=development, and a User-Agent each), two with a landing page's campaign and a referrer.
const UA = {
  desktop:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  iphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  android:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  ipad: "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
};
const CAMPAIGN =
  "?page=" +
  encodeURIComponent("https://shop.example/landing?utm_source=newsletter&utm_campaign=spring-sale&secret=1") +
  "&referrer=" +
  encodeURIComponent("https://news.example.org/story/1?ref=x");
const VISITORS = [
  {
    who: `ctx-de-desktop-${tag}`,
    cf: { country: "DE", region: "Berlin", city: "Berlin", continent: "EU" },
    ua: UA.desktop,
    query: CAMPAIGN,
    device: "desktop",
  },
  {
    who: `ctx-de-mobile-${tag}`,
    cf: { country: "DE", region: "Bavaria", city: "Munich", continent: "EU" },
    ua: UA.iphone,
    query: "",
    device: "mobile",
  },
  {
    who: `ctx-fr-mobile-${tag}`,
    cf: { country: "FR", continent: "EU" },
    ua: UA.android,
    query: CAMPAIGN,
    device: "mobile",
  },
  { who: `ctx-us-tablet-${tag}`, cf: { country: "US", continent: "NA" }, ua: UA.ipad, query: "", device: "tablet" },
];
const contextEvents = VISITORS.map((v, i) => ({
  session_id: v.who,
  category: "page view",
  name: "landing",
  data: { visitor: i },
  timestamp: iso(base + 19 * HOUR + (5 + i) * MINUTE),
}));
const TOTAL = events.length + contextEvents.length;

// What the Errors view shows: refused events of The Eye's own API (60 of one type, a page and a
// half of the log, and 2 of another) and of the SDKs' (a Segment message without an identity, with
// an IP address and HTML in it; a PostHog recording event). Nothing here is stored as an event.
const BAD = `bad-${tag}`;
const CHECKOUT = `Checkout-${tag}`;
const refusals = [
  {
    path: "/api/event/",
    auth: `Bearer ${WRITE_KEY}`,
    body: [
      ...Array.from({ length: 60 }, (_, i) => ({
        session_id: `err-${tag}`,
        category: "errors-test",
        name: BAD,
        data: { i },
        timestamp: "2024-13-01 00:00",
      })),
      ...[1, 2].map((i) => ({
        session_id: "",
        category: "errors-test",
        name: `empty-${tag}`,
        data: { i },
        timestamp: iso(base),
      })),
    ],
  },
  {
    path: "/v1/batch",
    auth: `Basic ${btoa(`${WRITE_KEY}:`)}`,
    body: {
      batch: [{ type: "track", event: CHECKOUT, properties: { note: HOSTILE_NAME }, context: { ip: "192.0.2.99" } }],
    },
  },
  {
    path: "/e/",
    auth: "",
    body: { api_key: WRITE_KEY, batch: [{ event: "$snapshot", properties: { distinct_id: `d-${tag}` } }] },
  },
];
const ERRORS = 64;
const byCategory = (c: string) => [...events, ...contextEvents].filter((e) => e.category === c).length;

let url: string;
let browser: Browser;
let context: BrowserContext;
/** Every request the page made: its URL and whether it carried a key in the Authorization header. */
let requests: { url: string; authorized: boolean }[] = [];

beforeAll(async () => {
  if (!run) return;
  url = inject("eyeUrl");
  const res = await fetch(`${url}/api/event/`, {
    method: "POST",
    headers: { authorization: `Bearer ${WRITE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  expect(res.status).toBe(202);
  for (const [i, v] of VISITORS.entries()) {
    const sent = await fetch(`${url}/api/event/${v.query}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${WRITE_KEY}`,
        "content-type": "application/json",
        "user-agent": v.ua,
        "x-eye-dev-cf": JSON.stringify(v.cf),
      },
      body: JSON.stringify(contextEvents[i]),
    });
    expect(sent.status).toBe(202);
  }
  // The consumer stores them within about a second.
  for (const until = Date.now() + 20_000; ; ) {
    const page = (await (
      await fetch(`${url}/api/event/?limit=1`, { headers: { authorization: `Bearer ${READ_KEY}` } })
    ).json()) as { count: number };
    if (page.count === TOTAL) break;
    if (Date.now() > until) throw new Error(`stored ${page.count} of ${TOTAL}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const r of refusals) {
    const refused = await fetch(`${url}${r.path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(r.auth ? { authorization: r.auth } : {}) },
      body: JSON.stringify(r.body),
    });
    expect(refused.status, r.path).toBe(400);
  }
  for (const until = Date.now() + 20_000; ; ) {
    const log = (await (
      await fetch(`${url}/api/errors/?limit=1`, { headers: { authorization: `Bearer ${READ_KEY}` } })
    ).json()) as { count: number };
    if (log.count === ERRORS) break;
    if (Date.now() > until) throw new Error(`logged ${log.count} of ${ERRORS} errors`);
    await new Promise((r) => setTimeout(r, 200));
  }
  mkdirSync(SHOTS, { recursive: true });
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
});

afterEach(async () => {
  // The key never travels in a URL, and every API request carries it in the header.
  for (const r of requests) {
    expect(r.url).not.toContain(READ_KEY);
    if (new URL(r.url).pathname.startsWith("/api/")) expect(r.authorized, r.url).toBe(true);
  }
  await context?.close();
});

async function open(colorScheme: "light" | "dark" = "light"): Promise<Page> {
  context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme });
  requests = [];
  const page = await context.newPage();
  page.on("request", (r) =>
    requests.push({ url: r.url(), authorized: /^Bearer eye_/.test(r.headers().authorization ?? "") }),
  );
  page.on("pageerror", (e) => {
    throw e;
  });
  await page.goto(`${url}/explorer`);
  return page;
}

async function enterKey(page: Page, key: string, remember = true) {
  await page.fill("#key", key);
  await page.setChecked("#remember", remember);
  await page.click("#key-form button[type=submit]");
}

/** Waits for the table and the chart to show the current filters' answer. */
async function settled(page: Page) {
  await page.waitForSelector("#app:not([hidden]):not([aria-busy])", { state: "attached" });
  expect(await page.textContent("#status")).toBe("");
}

/** Waits for the Errors view to show the current filters' answer. */
async function errorsSettled(page: Page) {
  await page.waitForSelector("#errors-view:not([hidden]):not([aria-busy])", { state: "attached" });
  expect(await page.textContent("#e-status")).toBe("");
}
const errorRows = (page: Page) => page.locator("#errors tbody tr.ev");

const rowIds = (page: Page) =>
  page.locator("#events tbody tr.ev").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.eventId!));
const column = (page: Page, n: number) => page.locator(`#events tbody tr.ev td:nth-child(${n})`).allTextContents();

describe.runIf(run)("the events explorer", () => {
  it("asks for a read key, refuses unknown and write keys, keeps the key for the tab only when asked", async () => {
    // Served as static assets, under a policy that runs only the page's own modules.
    const served = await fetch(`${url}/explorer/`);
    expect(served.headers.get("content-security-policy")).toMatch(
      /default-src 'none'; script-src 'self'.*connect-src 'self'/,
    );
    const page = await open();
    await expect(page.locator("#gate").isVisible()).resolves.toBe(true);
    await enterKey(page, "eye_not_a_key");
    await page.waitForSelector("#key-error:not([hidden])");
    expect(await page.textContent("#key-error")).toContain("does not know this key");
    await enterKey(page, WRITE_KEY);
    await page.waitForFunction(() =>
      document.querySelector("#key-error")?.textContent?.includes("A write key cannot read"),
    );

    await enterKey(page, READ_KEY, false);
    await settled(page);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.reload();
    await page.waitForSelector("#gate:not([hidden])");

    await enterKey(page, READ_KEY, true);
    await settled(page);
    await page.reload();
    await settled(page);
    expect(await page.locator("#gate").isHidden()).toBe(true);
    await page.click("#forget");
    await page.waitForSelector("#gate:not([hidden])");
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(page.url()).not.toContain(READ_KEY);
  });

  it("pages through every event by cursor, newest first, and back", async () => {
    const page = await open();
    await enterKey(page, READ_KEY);
    await settled(page);
    const seen: string[] = [];
    const first = await rowIds(page);
    expect(first).toHaveLength(50);
    expect(await page.textContent("#page-label")).toBe("1–50");
    expect(await page.isDisabled("#newer")).toBe(true);
    for (let pageNo = 1; ; pageNo++) {
      seen.push(...(await rowIds(page)));
      if (await page.isDisabled("#older")) break;
      await page.click("#older");
      await page.waitForFunction(
        (n) => document.querySelector("#page-label")?.textContent?.startsWith(`${n * 50 + 1}–`),
        pageNo,
      );
      await settled(page);
    }
    expect(seen).toHaveLength(TOTAL);
    expect(new Set(seen).size).toBe(TOTAL);
    const times = await page
      .locator("#events tbody td.time")
      .evaluateAll((tds) => tds.map((td) => td.getAttribute("title")!));
    expect([...times].sort().reverse()).toEqual(times);
    await page.click("#newer");
    await page.click("#newer");
    await page.waitForFunction(() => document.querySelector("#page-label")?.textContent === "1–50");
    expect(await rowIds(page)).toEqual(first);
  });

  it("filters by category, by session and by time range; the chart follows", async () => {
    const page = await open();
    await enterKey(page, READ_KEY);
    await settled(page);
    await page.fill("#f-category", "commerce");
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(
      (n) => document.querySelectorAll("#events tbody tr.ev").length === n,
      byCategory("commerce"),
    );
    await settled(page);
    expect(new Set(await column(page, 4))).toEqual(new Set(["commerce"]));
    expect(await page.isDisabled("#older")).toBe(true);
    await page.waitForFunction(
      (n) => document.querySelector("#chart-total")?.textContent === `${n}events`,
      byCategory("commerce"),
    );
    expect(await page.locator("#legend li").allTextContents()).toEqual([`commerce${byCategory("commerce")}`]);
    // The filters are in the address's fragment (a view can be bookmarked), and the key is not.
    expect(decodeURIComponent(page.url())).toContain("#category=commerce");

    await page.click("#clear");
    await page.fill("#f-session", ALPHA);
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 6);
    await settled(page);
    expect(await column(page, 5)).toEqual(ALPHA_STEPS.map(([, name]) => name).reverse());
    expect(await page.textContent("#chart-sub")).toContain("all sessions");

    // From the alpha session's first minute to 4 minutes later (inclusive): its 6 events and the one
    // other event stamped exactly at its start.
    await page.click("#clear");
    await page.fill("#f-after", iso(base + 10 * HOUR).slice(0, 16));
    await page.fill("#f-before", iso(base + 10 * HOUR + 4 * MINUTE).slice(0, 16));
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 7);
    await settled(page);
    expect(await page.textContent("#chart-sub")).toMatch(/^Per hour/);
  });

  it("shows an event's context and filters by country and by device; the chart follows one of them", async () => {
    const page = await open();
    await enterKey(page, READ_KEY);
    await settled(page);
    const sessions = () => column(page, 3).then((c) => c.sort());
    const who = (pred: (v: (typeof VISITORS)[number]) => boolean) =>
      VISITORS.filter(pred)
        .map((v) => v.who)
        .sort();

    await page.fill("#f-country", "de");
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 2);
    await settled(page);
    expect(await sessions()).toEqual(who((v) => v.cf.country === "DE"));
    await page.waitForFunction(() => document.querySelector("#chart-total")?.textContent === "2events");
    expect(decodeURIComponent(page.url())).toContain("#country=DE");

    // The expanded row: where, device, browser/OS, referrer host and campaign, as text; the rest of the URLs not.
    await page.locator("#events tbody tr.ev", { hasText: VISITORS[0]!.who }).click();
    const line = page.locator("#events tr.detail .detail-context");
    expect(await line.locator(".ctx").allTextContents()).toEqual([
      "where DE · Berlin",
      "device desktop",
      "browser Chrome / Windows",
      "referrer news.example.org",
      "campaign newsletter / spring-sale",
    ]);
    expect(await line.textContent()).not.toMatch(/secret|story|ref=x/);

    await page.click("#clear");
    await page.selectOption("#f-device", "mobile");
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 2);
    await settled(page);
    expect(await sessions()).toEqual(who((v) => v.device === "mobile"));
    await page.waitForFunction(() => document.querySelector("#chart-total")?.textContent === "2events");

    // Both: the table takes both, the chart (whose counts take one at a time) the country, and says so.
    await page.fill("#f-country", "FR");
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 1);
    await settled(page);
    expect(await sessions()).toEqual(who((v) => v.cf.country === "FR"));
    expect(await page.textContent("#chart-sub")).toContain("the chart filters by one of country/device at a time");
    await page.locator("#events tbody tr.ev").first().click();
    expect(await line.locator(".ctx").allTextContents()).toEqual([
      "where FR",
      "device mobile",
      "browser Chrome / Android",
      "referrer news.example.org",
      "campaign newsletter / spring-sale",
    ]);
    await page.screenshot({ path: path.join(SHOTS, "explorer-context.png") });

    // From the address: a shared view opens with the filters set.
    await page.goto(`${url}/explorer#device=tablet`);
    await page.reload();
    await settled(page);
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 1);
    expect(await page.inputValue("#f-device")).toBe("tablet");
    expect(await sessions()).toEqual(who((v) => v.device === "tablet"));
  });

  it("expands a payload as JSON, shows a session as a timeline in order, and draws the chart by category", async () => {
    const page = await open();
    await enterKey(page, READ_KEY);
    await settled(page);

    // The chart: every category with its count, largest first, and the total.
    await page.waitForFunction((n) => document.querySelector("#chart-total")?.textContent === `${n}events`, TOTAL);
    // Largest first, ties by name.
    const legend = ["page view", "page interaction", "commerce", "form"].map((c) => `${c}${byCategory(c)}`);
    expect(await page.locator("#legend li").allTextContents()).toEqual(legend);
    expect(await page.locator("#chart .col").count()).toBeGreaterThanOrEqual(24);
    const bars = page.locator("#chart .col:has(.bar)");
    expect(await bars.count()).toBeGreaterThan(15);
    await bars.nth(8).hover();
    await page.waitForSelector("#tooltip:not([hidden])");
    expect(await page.textContent("#tooltip")).toMatch(/UTC.*Total\d+/);

    // A row's payload, as JSON.
    const commerceRow = page.locator("#events tbody tr.ev", { hasText: "checkout" }).first();
    await commerceRow.click();
    const detail = page.locator("#events tr.detail pre.json");
    await expect(detail.textContent()).resolves.toMatch(/"sku": "SKU-\d+",\n {2}"price": [\d.]+/);
    await page.mouse.move(0, 0);
    await bars.nth(14).hover();
    await page.screenshot({ path: path.join(SHOTS, "explorer.png") });
    await page.mouse.move(0, 0);

    // A click on a session id: the session's events, oldest first, as a timeline.
    await page.fill("#f-session", ALPHA);
    await page.click("#filters button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#events tbody tr.ev").length === 6);
    await page.locator("#events .session").first().click();
    await page.waitForFunction(() => document.querySelectorAll("#tl-list li").length === 6);
    expect(await page.textContent("#tl-title")).toBe(ALPHA);
    expect(await page.locator("#tl-list .nm").allTextContents()).toEqual(ALPHA_STEPS.map(([, name]) => name));
    expect(await page.locator("#tl-list .delta").allTextContents()).toEqual([
      "start",
      "+37 s",
      "+1 min 14 s",
      "+1 min 51 s",
      "+2 min 28 s",
      "+3 min 5 s",
    ]);
    expect(await page.textContent("#tl-sub")).toContain("6 events · 3 min 5 s");
    await page.locator("#tl-list details summary").nth(4).click();
    await page.screenshot({ path: path.join(SHOTS, "explorer-timeline.png") });
    await page.keyboard.press("Escape");
    await page.waitForSelector("#timeline", { state: "hidden" });
    console.log(
      `explorer screenshots: ${SHOTS}/explorer.png, explorer-timeline.png, explorer-dark.png, explorer-context.png, explorer-errors.png, explorer-errors-dark.png`,
    );
  });

  it("shows what went wrong: the summary by kind, rule, type and field, the log filtered and paged, payloads as text", async () => {
    const page = await open();
    await enterKey(page, READ_KEY);
    await settled(page);
    // The events view tells that something went wrong.
    await page.waitForFunction((n) => document.querySelector("#tab-errors-n")?.textContent === String(n), ERRORS);
    await page.click("#tab-errors");
    await page.waitForFunction(() => document.querySelector("#tab-errors")?.getAttribute("aria-selected") === "true");
    await errorsSettled(page);
    expect(await page.isHidden("#events-view")).toBe(true);
    expect(decodeURIComponent(page.url())).toContain("#view=errors");

    // The summary: the window's total, per kind, and the groups largest first.
    expect(await page.textContent("#s-total")).toBe(`${ERRORS}entries`);
    expect(await page.locator("#s-kinds li").allTextContents()).toEqual([`refused events${ERRORS}`]);
    const groups = await page
      .locator("#summary tr.group")
      .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll("td")].slice(0, 5).map((td) => td.textContent)));
    expect(groups).toEqual([
      ["60", "refused event", "custom", `errors-test · ${BAD}`, "timestamp"],
      ["2", "refused event", "custom", `errors-test · empty-${tag}`, "session_id"],
      ["1", "refused event", "not_supported", "track · $snapshot", "event"],
      ["1", "refused event", "required", `track · ${CHECKOUT}`, "userId"],
    ]);

    // The log: newest first, 50 a page, the rest on the next.
    expect(await errorRows(page).count()).toBe(50);
    expect(await page.textContent("#e-page-label")).toBe(`1–50 of ${ERRORS}`);
    const times = await page
      .locator("#errors tbody td.time")
      .evaluateAll((tds) => tds.map((td) => td.getAttribute("title")!));
    expect([...times].sort().reverse()).toEqual(times);
    await page.click("#e-older");
    await page.waitForFunction(
      (n) => document.querySelector("#e-page-label")?.textContent === `51–${n} of ${n}`,
      ERRORS,
    );
    expect(await errorRows(page).count()).toBe(ERRORS - 50);
    await page.click("#e-newer");
    await page.waitForFunction((n) => document.querySelector("#e-page-label")?.textContent === `1–50 of ${n}`, ERRORS);

    // A group of the summary filters the log to it; the SDK's message, its field and its reason, as text.
    await page.locator("#summary tr.group", { hasText: CHECKOUT }).click();
    await page.waitForFunction(() => document.querySelectorAll("#errors tbody tr.ev").length === 1);
    await errorsSettled(page);
    expect(await page.inputValue("#e-kind")).toBe("invalid_event");
    expect([
      await page.inputValue("#e-field"),
      await page.inputValue("#e-rule"),
      await page.inputValue("#e-name"),
    ]).toEqual(["userId", "required", CHECKOUT]);
    expect(decodeURIComponent(page.url())).toMatch(/#view=errors&.*field=userId/);
    expect(await page.locator("#summary tr.group.active").allTextContents()).toEqual([
      expect.stringContaining(CHECKOUT),
    ]);
    await errorRows(page).first().click();
    const detail = page.locator("#errors tr.detail");
    expect(await detail.locator(".reasons li").allTextContents()).toEqual([
      "userId userId or anonymousId is requiredrequired",
    ]);
    const payload = await detail.locator("pre.json").textContent();
    expect(payload).toContain(HOSTILE_NAME);
    expect(payload).not.toContain("192.0.2.99");
    expect(await page.locator("#errors img").count()).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, "explorer-errors.png"), fullPage: true });

    // The form: by field, then cleared.
    await page.click("#e-clear");
    await errorsSettled(page);
    await page.fill("#e-field", "timestamp");
    await page.click("#e-filters button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#e-page-label")?.textContent === "1–50 of 60");
    expect(new Set(await page.locator("#errors tbody tr.ev td:nth-child(4)").allTextContents())).toEqual(
      new Set([`errors-test · ${BAD}`]),
    );

    // From the address: a shared Errors view opens with its filters; and back to the events.
    await page.goto(`${url}/explorer#view=errors&rule=not_supported`);
    await page.reload();
    await errorsSettled(page);
    await page.waitForFunction(() => document.querySelectorAll("#errors tbody tr.ev").length === 1);
    expect(await page.inputValue("#e-rule")).toBe("not_supported");
    expect(await errorRows(page).first().textContent()).toContain(
      "$snapshot: The Eye does not collect session recordings",
    );
    await page.click("#tab-events");
    await settled(page);
    expect(await page.locator("#events tbody tr.ev").count()).toBe(50);
    expect(decodeURIComponent(page.url())).not.toContain("view=errors");
  });

  it("draws the Errors view in the dark", async () => {
    const page = await open("dark");
    await page.goto(`${url}/explorer#view=errors`);
    await enterKey(page, READ_KEY);
    await errorsSettled(page);
    await page.waitForFunction((n) => document.querySelector("#tab-errors-n")?.textContent === String(n), ERRORS);
    await errorRows(page).first().click();
    await page.screenshot({ path: path.join(SHOTS, "explorer-errors-dark.png") });
  });

  it("shows a payload and names made of HTML as text, and draws in the dark", async () => {
    const page = await open("dark");
    await enterKey(page, READ_KEY);
    await settled(page);
    const row = page.locator("#events tbody tr.ev", { hasText: HOSTILE_NAME });
    await row.click();
    expect(await page.locator("#events img, #events script").count()).toBe(0);
    expect(await page.locator("#events tr.detail pre.json").textContent()).toContain(
      "<script>window.pwned = 1</script>",
    );
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    await page.locator("#events tbody tr.ev .session", { hasText: `hostile-${tag}` }).click();
    await page.waitForFunction(() => document.querySelectorAll("#tl-list li").length === 1);
    expect(await page.textContent("#tl-list .nm")).toBe(HOSTILE_NAME);
    await page.keyboard.press("Escape");
    await page.screenshot({ path: path.join(SHOTS, "explorer-dark.png") });
  });
});
