// GET /api/stats/counts: events sent through the real pipeline, counted per hour and per day by
// category and by name from the hourly roll-ups (never the events), within the read key's scope.
import { describe, expect, it } from "vitest";
import { api, bearer, DEV_READ_KEY, getJson, makeApp, makeEvent, postEvents } from "../helpers/api";
import { metered, rowsRead } from "../helpers/read-meter";

interface Stats {
  interval: string;
  by: string;
  application: string | null;
  category: string | null;
  name: string | null;
  window: { after: string; before: string; buckets: number };
  buckets: string[];
  total: number;
  totals: number[];
  series: ({ total: number; counts: number[] } & Record<string, unknown>)[];
  other: number[] | null;
}

/** An application with 11 events on 2019-03-01 (10:00, 11:00 and 13:00, none at 12:00) and one the next day, stored. */
async function appWithEvents() {
  const app = await makeApp();
  const at = (time: string, category: string, name: string) =>
    makeEvent({ category, name, timestamp: `2019-03-01T${time}Z` });
  const events = [
    ...Array.from({ length: 3 }, () => at("10:05:00", "nav", "view")),
    at("10:59:59.999999", "click", "cta"),
    ...Array.from({ length: 2 }, () => at("11:30:00", "nav", "view")),
    at("11:00:00", "nav", "scroll"),
    ...Array.from({ length: 2 }, () => at("13:59:00", "click", "cta")),
    at("13:00:00", "form", "submit"),
    makeEvent({ category: "nav", name: "view", timestamp: "2019-03-02T00:10:00Z" }),
  ];
  expect((await postEvents(events, bearer(app.writeKey))).status).toBe(202);
  // The consumer stores them within about a second.
  for (const until = Date.now() + 15_000; ; ) {
    const page = await getJson("/api/event/?limit=1", { headers: bearer(app.readKey) });
    if (page.count === events.length) return app;
    if (Date.now() > until) throw new Error(`stored ${page.count} of ${events.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const stats = (query: string, key: string) => getJson<Stats>(`/api/stats/counts?${query}`, { headers: bearer(key) });
const MORNING = "timestamp_after=2019-03-01T10:00:00Z&timestamp_before=2019-03-01T13:59:59Z";

describe("GET /api/stats/counts (happy)", () => {
  it("counts per hour by category: a series per category, largest first, and the totals", async () => {
    const app = await appWithEvents();
    const s = await stats(`interval=hour&${MORNING}`, app.readKey);
    expect(s).toEqual({
      interval: "hour",
      by: "category",
      application: app.appId,
      category: null,
      name: null,
      country: null,
      device: null,
      window: { after: "2019-03-01T10:00:00Z", before: "2019-03-01T14:00:00Z", buckets: 4 },
      buckets: ["2019-03-01T10:00:00Z", "2019-03-01T11:00:00Z", "2019-03-01T12:00:00Z", "2019-03-01T13:00:00Z"],
      total: 10,
      totals: [4, 3, 0, 3],
      series: [
        { category: "nav", total: 6, counts: [3, 3, 0, 0] },
        { category: "click", total: 3, counts: [1, 0, 0, 2] },
        { category: "form", total: 1, counts: [0, 0, 0, 1] },
      ],
      other: null,
    });
  });

  it("splits by name, filters by category or name, sums the series past limit into other", async () => {
    const app = await appWithEvents();
    const byName = await stats(`by=name&${MORNING}`, app.readKey);
    expect(byName.series).toEqual([
      { name: "view", total: 5, counts: [3, 2, 0, 0] },
      { name: "cta", total: 3, counts: [1, 0, 0, 2] },
      { name: "scroll", total: 1, counts: [0, 1, 0, 0] },
      { name: "submit", total: 1, counts: [0, 0, 0, 1] },
    ]);
    const clicks = await stats(`by=name&category=click&${MORNING}`, app.readKey);
    expect([clicks.category, clicks.total, clicks.totals, clicks.series]).toEqual([
      "click",
      3,
      [1, 0, 0, 2],
      [{ name: "cta", total: 3, counts: [1, 0, 0, 2] }],
    ]);
    const nav = await stats(`by=category&category=nav&${MORNING}`, app.readKey);
    expect([nav.total, nav.totals, nav.series]).toEqual([
      6,
      [3, 3, 0, 0],
      [{ category: "nav", total: 6, counts: [3, 3, 0, 0] }],
    ]);
    const views = await stats(`name=view&${MORNING}`, app.readKey);
    expect([views.total, views.series]).toEqual([5, [{ category: "nav", total: 5, counts: [3, 2, 0, 0] }]]);
    const top = await stats(`limit=1&${MORNING}`, app.readKey);
    expect([top.series.map((s) => s.category), top.other, top.totals]).toEqual([["nav"], [1, 0, 0, 3], [4, 3, 0, 3]]);
    // An empty filter is no filter, as on GET /api/event/.
    expect((await stats(`category=&name=&${MORNING}`, app.readKey)).total).toBe(10);
  });

  it("counts per UTC day, and widens a window to the whole buckets holding its bounds", async () => {
    const app = await appWithEvents();
    const days = await stats("interval=day&timestamp_after=2019-02-28&timestamp_before=2019-03-02", app.readKey);
    expect(days.window).toEqual({ after: "2019-02-28T00:00:00Z", before: "2019-03-03T00:00:00Z", buckets: 3 });
    expect([days.buckets, days.totals]).toEqual([
      ["2019-02-28T00:00:00Z", "2019-03-01T00:00:00Z", "2019-03-02T00:00:00Z"],
      [0, 10, 1],
    ]);
    expect(days.series[0]).toEqual({ category: "nav", total: 7, counts: [0, 6, 1] });
    const part = await stats(
      "timestamp_after=2019-03-01T10:30:00Z&timestamp_before=2019-03-01T11:10:00%2B00:00",
      app.readKey,
    );
    expect([part.window, part.totals]).toEqual([
      { after: "2019-03-01T10:00:00Z", before: "2019-03-01T12:00:00Z", buckets: 2 },
      [4, 3],
    ]);
    // Without a window: the 24 hours up to the end of this one (by day: 30 days).
    // The hour it was counted in is the hour it was asked in or, across an hour's end, the one it was answered in.
    const endOfHour = (ms: number) => (Math.floor(ms / 3_600_000) + 1) * 3_600_000;
    const asked = Date.now();
    const recent = await stats("", app.readKey);
    const answered = Date.now();
    expect(recent.buckets).toHaveLength(24);
    expect([endOfHour(asked), endOfHour(answered)]).toContain(Date.parse(recent.window.before));
    expect(Date.parse(recent.window.before) - Date.parse(recent.window.after)).toBe(24 * 3_600_000);
    expect((await stats("interval=day", app.readKey)).buckets).toHaveLength(30);
    // The longest windows: 744 hours, 366 days.
    expect(
      (await stats("timestamp_after=2019-03-01&timestamp_before=2019-03-31T23:59:59Z", app.readKey)).buckets,
    ).toHaveLength(744);
    expect(
      (await stats("interval=day&timestamp_after=2019-01-01&timestamp_before=2020-01-01", app.readKey)).buckets,
    ).toHaveLength(366);
  });

  it("keeps to the key's scope: a key for every application counts all or the one app_id names", async () => {
    const [app, other] = [await appWithEvents(), await makeApp()];
    const named = await stats(`app_id=${app.appId}&${MORNING}`, DEV_READ_KEY);
    expect([named.application, named.totals]).toEqual([app.appId, [4, 3, 0, 3]]);
    const all = await stats(MORNING, DEV_READ_KEY);
    expect(all.application).toBeNull();
    for (let i = 0; i < 4; i++) expect(all.totals[i]).toBeGreaterThanOrEqual(named.totals[i]!);
    // Another application's scoped key counts its own events (none), and may not name this one.
    expect((await stats(MORNING, other.readKey)).total).toBe(0);
    const res = await api(`/api/stats/counts?app_id=${app.appId}`, { headers: bearer(other.readKey) });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "forbidden" });
    expect((await stats(`app_id=app_nobody_${crypto.randomUUID()}&${MORNING}`, DEV_READ_KEY)).total).toBe(0);
  });
});

describe("GET /api/stats/counts (errors)", () => {
  it("answers a bad parameter with a 400 naming it", async () => {
    for (const [query, field] of [
      ["interval=week", "interval"],
      ["by=session_id", "by"],
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["timestamp_after=yesterday", "timestamp_after"],
      [`category=${"x".repeat(151)}`, "category"],
      ["timestamp_after=2019-03-02&timestamp_before=2019-03-01", "timestamp_after"],
      // 745 hours; 367 days.
      ["timestamp_after=2019-03-01&timestamp_before=2019-04-01", "timestamp_after"],
      ["interval=day&timestamp_after=2019-01-01&timestamp_before=2020-01-02", "timestamp_after"],
      ["interval=hour&interval=day", "interval"],
    ] as const) {
      const res = await api(`/api/stats/counts?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { code: string; message: string; errors: { field: string }[] };
      expect(body.code).toBe("invalid_query");
      expect(body.message).toContain(field);
      expect(body.errors.map((e) => e.field)).toContain(field);
    }
  });

  it("needs a read key, and answers other methods with 405", async () => {
    const app = await makeApp();
    expect((await api("/api/stats/counts", { headers: { authorization: "" } })).status).toBe(401);
    expect((await api("/api/stats/counts", { headers: bearer(app.writeKey) })).status).toBe(403);
    const post = await api("/api/stats/counts", { method: "POST", body: "{}" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("GET /api/stats/counts (cost)", () => {
  it("reads event_counts only: one row per hour and series with events, plus the hour's total", async () => {
    const app = await appWithEvents();
    // Warm the isolate's application directory, which app_id consults once.
    await stats(`app_id=${app.appId}`, DEV_READ_KEY);
    for (const [key, query, rows] of [
      // 3 hours with events: 10:00 (nav, click), 11:00 (nav), 13:00 (click, form), and each hour's total.
      [app.readKey, MORNING, 2 + 1 + 2 + 3],
      [DEV_READ_KEY, `app_id=${app.appId}&${MORNING}`, 8],
      // By name, one category: 10:00 (cta), 13:00 (cta), and the totals.
      [app.readKey, `by=name&category=click&${MORNING}`, 4],
      // One series by its own filter: the hours it has events in.
      [app.readKey, `category=nav&interval=day&timestamp_after=2019-03-01&timestamp_before=2019-03-02`, 3],
    ] as const) {
      const { res, statements } = await metered(`/api/stats/counts?${query}`, bearer(key));
      expect(res.status).toBe(200);
      expect(statements, JSON.stringify(statements)).toHaveLength(1);
      expect(statements[0]!.sql).toMatch(/from "event_counts"/);
      expect(statements[0]!.sql).not.toMatch(/"events"/);
      // D1 counts the rows the index range visits: those returned, and the one that ends the range.
      expect(await rowsRead(statements), query).toBeLessThanOrEqual(rows + 1);
    }
  });
});
