// Monitoring you can act on (issue 9): the error log filtered by application, type, field and rule;
// GET /api/errors/summary counting refused events and failures by kind, rule, type and field from
// the hourly error_counts (never the log itself); the counts bounded by ERROR_LOG_DAYS.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { purgeErrorLog } from "../../src/maintain/retention";
import { maintain } from "../../src/maintain/scheduled";
import type { QueueMessage } from "../../src/shared/schemas";
import { DAY, formatTimestamp, HOUR } from "../../src/shared/timestamp";
import { api, bearer, DEV_READ_KEY, getJson, makeApp, makeEvent, postEvents } from "../helpers/api";
import { deliver } from "../helpers/queue";
import { metered, rowsRead } from "../helpers/read-meter";

interface ErrorRow {
  kind: string;
  application: string | null;
  category: string | null;
  name: string | null;
  field: string | null;
  rule: string | null;
  payload: string;
  reasons: { field: string | null; message: string; rule?: string }[];
}
interface ErrorPage {
  count: number;
  results: ErrorRow[];
}
interface Group {
  kind: string;
  rule: string | null;
  category: string | null;
  name: string | null;
  field: string | null;
  count: number;
}
interface Summary {
  window: { after: string; before: string; hours: number };
  application: string | null;
  total: number;
  totals: Record<string, number>;
  truncated: boolean;
  results: Group[];
}

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

/** Polls the error log until a query returns `n` entries. */
async function waitForErrors(query: string, n: number, key = DEV_READ_KEY): Promise<ErrorPage> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const page = await getJson<ErrorPage>(`/api/errors/?${query}`, { headers: bearer(key) });
    if (page.count === n) return page;
    if (Date.now() > deadline) throw new Error(`/api/errors/?${query}: expected ${n} entries, got ${page.count}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The end of the UTC hour holding `ms` (the start of the next), in ms. */
const endOfHour = (ms: number) => (Math.floor(ms / 3_600_000) + 1) * 3_600_000;

const summary = (query: string, key = DEV_READ_KEY) =>
  getJson<Summary>(`/api/errors/summary?${query}`, { headers: bearer(key) });

/** Inserts `n` error-log entries straight into D1 (what the consumer writes), all at `at` + i µs. */
async function logEntries(
  n: number,
  entry: {
    kind?: string;
    appId: string | null;
    at: number;
    category?: string;
    name?: string;
    field?: string;
    rule?: string;
  },
) {
  await env.DB.prepare(
    `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ? - 1)
     INSERT INTO error_log (kind, app_id, occurred_at, payload, reasons, source, category, name, field, rule)
     SELECT ?, ?, ? + i, '{}', json_array(json_object('field', ?, 'message', 'test', 'rule', ?)), 'monitoring-test', ?, ?, ?, ? FROM k`,
  )
    .bind(
      n,
      entry.kind ?? "invalid_event",
      entry.appId,
      entry.at,
      entry.field ?? null,
      entry.rule ?? null,
      entry.category ?? null,
      entry.name ?? null,
      entry.field ?? null,
      entry.rule ?? null,
    )
    .run();
}

describe("GET /api/errors/ filters", () => {
  it("filters by application, category, name, field and rule, and renders them", async () => {
    const app = await makeApp();
    const category = unique("filters");
    const events = [
      makeEvent({ category, name: "late", timestamp: "2099-01-01T00:00:00Z" }),
      makeEvent({ category, name: "late", timestamp: "2099-01-02T00:00:00Z" }),
      makeEvent({ category, name: "bare", data: undefined }),
      makeEvent({ category }),
    ];
    expect((await postEvents(events, bearer(app.writeKey))).status).toBe(202);
    const all = await waitForErrors(`app_id=${app.appId}`, 3);
    expect(
      all.results.every((r) => r.application === app.appId && r.category === category && r.kind === "invalid_event"),
    ).toBe(true);

    const future = await getJson<ErrorPage>(`/api/errors/?app_id=${app.appId}&field=timestamp`);
    expect(future.count).toBe(2);
    expect(future.results.map((r) => [r.name, r.field, r.rule])).toEqual([
      ["late", "timestamp", "future"],
      ["late", "timestamp", "future"],
    ]);
    expect((await getJson<ErrorPage>(`/api/errors/?category=${category}&rule=future`)).count).toBe(2);
    expect(
      (await getJson<ErrorPage>(`/api/errors/?category=${category}&name=bare`)).results.map((r) => r.field),
    ).toEqual(["data"]);
    expect((await getJson<ErrorPage>(`/api/errors/?category=${category}&name=bare&kind=malformed_message`)).count).toBe(
      0,
    );
    // The scoped key sees its own application's entries without naming it, or naming it.
    expect(
      (await getJson<ErrorPage>(`/api/errors/?category=${category}`, { headers: bearer(app.readKey) })).count,
    ).toBe(3);
    expect((await getJson<ErrorPage>(`/api/errors/?app_id=${app.appId}`, { headers: bearer(app.readKey) })).count).toBe(
      3,
    );
  });

  it("keeps a refused event's type cut to 150 characters, from before the excerpt cuts the payload", async () => {
    const app = await makeApp();
    const long = `${unique("long")}${"é".repeat(3000)}`;
    expect((await postEvents(makeEvent({ category: long, name: "n" }), bearer(app.writeKey))).status).toBe(400);
    const [row] = (await waitForErrors(`app_id=${app.appId}`, 1)).results;
    expect(row!.category).toBe([...long].slice(0, 150).join(""));
    expect(row!.field).toBe("category");
    expect(row!.payload.length).toBeLessThan(long.length);
  });

  it("refuses a scoped key that names another application (403 naming app_id), and bad filters (400)", async () => {
    const [app, other] = [await makeApp(), await makeApp()];
    for (const path of [`/api/errors/?app_id=${other.appId}`, `/api/errors/summary?app_id=${other.appId}`]) {
      const res = await api(path, { headers: bearer(app.readKey) });
      expect(res.status, path).toBe(403);
      expect((await res.json()) as Record<string, unknown>).toMatchObject({
        code: "forbidden",
        errors: [{ field: "app_id" }],
      });
    }
    for (const [query, field] of [
      [`app_id=${"a".repeat(151)}`, "app_id"],
      [`field=${"f".repeat(151)}`, "field"],
      [`rule=${"r".repeat(151)}`, "rule"],
      ["kind=anything", "kind"],
    ] as const) {
      const res = await api(`/api/errors/?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([field]);
    }
  });
});

describe("GET /api/errors/summary", () => {
  it("counts future timestamps by kind, rule, type and field, with totals per kind, for the key's application", async () => {
    const app = await makeApp();
    const category = unique("future");
    const late = (i: number) => makeEvent({ category, name: "tick", timestamp: `2099-01-0${i}T00:00:00Z` });
    const sent = [
      late(1),
      late(2),
      late(3),
      makeEvent({ category, name: "tick", session_id: "" }),
      makeEvent({ category, name: "tick" }),
    ];
    expect((await postEvents(sent, bearer(app.writeKey))).status).toBe(202);
    await waitForErrors(`app_id=${app.appId}`, 4);
    const asked = Date.now();
    const s = await summary("", app.readKey);
    const answered = Date.now();
    expect(s.application).toBe(app.appId);
    expect(s.results).toEqual([
      { kind: "invalid_event", rule: "future", category, name: "tick", field: "timestamp", count: 3 },
      { kind: "invalid_event", rule: "custom", category, name: "tick", field: "session_id", count: 1 },
    ]);
    expect(s.totals).toEqual({ invalid_event: 4 });
    expect(s.total).toBe(4);
    expect(s.truncated).toBe(false);
    // By default the 24 whole hours up to the end of this one: the hour the summary was made in,
    // which is the hour it was asked in or, across an hour's end, the one it was answered in.
    expect(s.window.hours).toBe(24);
    expect([endOfHour(asked), endOfHour(answered)]).toContain(Date.parse(s.window.before));
    expect(Date.parse(s.window.before) - Date.parse(s.window.after)).toBe(24 * 3_600_000);
    // The same through a key for every application, naming it.
    expect((await summary(`app_id=${app.appId}`)).results).toEqual(s.results);
    expect((await summary(`app_id=${app.appId}&limit=1`)).truncated).toBe(true);
  });

  it("counts malformed queue messages (sent through the real queue) across applications", async () => {
    const marker = unique("malformed");
    const before = await summary("kind=malformed_message");
    for (let i = 0; i < 3; i++) await env.EVENTS_QUEUE.send({ kind: "mystery", marker });
    const deadline = Date.now() + 15_000;
    let logged: { field: string | null; rule: string | null }[] = [];
    while (logged.length < 3 && Date.now() < deadline) {
      logged = (
        await env.DB.prepare("SELECT field, rule FROM error_log WHERE kind = 'malformed_message' AND payload LIKE ?")
          .bind(`%${marker}%`)
          .all<{ field: string | null; rule: string | null }>()
      ).results;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(logged).toHaveLength(3);
    const { field, rule } = logged[0]!;
    expect(field).toBe("kind");
    expect(rule).toBeTruthy();
    const after = await summary("kind=malformed_message");
    const countOf = (s: Summary) =>
      s.results.find((g) => g.rule === rule && g.field === field && g.category === null)?.count ?? 0;
    expect(countOf(after) - countOf(before)).toBe(3);
    expect(after.totals.malformed_message! - (before.totals.malformed_message ?? 0)).toBe(3);
    expect(Object.keys(after.totals)).toEqual(["malformed_message"]);
  });

  it("counts payload-schema failures by JSON Schema keyword and pointer, reading error_counts only (rows_read)", async () => {
    const app = await makeApp();
    const category = unique("schema");
    const at = Date.UTC(2030, 5, 1, 10) * 1000;
    await logEntries(600, { appId: app.appId, at, category, name: "checkout", field: "data/price", rule: "minimum" });
    await logEntries(40, {
      appId: app.appId,
      at: at + 1000,
      category,
      name: "checkout",
      field: "data",
      rule: "required",
    });
    const window = `after=${formatTimestamp(at)}&before=${formatTimestamp(at + HOUR - 1)}`;
    const expected = [
      { kind: "invalid_event", rule: "minimum", category, name: "checkout", field: "data/price", count: 600 },
      { kind: "invalid_event", rule: "required", category, name: "checkout", field: "data", count: 40 },
    ];
    for (const [key, query] of [
      [app.readKey, window],
      [DEV_READ_KEY, `${window}&app_id=${app.appId}`],
      [DEV_READ_KEY, window],
    ] as const) {
      const { res, statements } = await metered(`/api/errors/summary?${query}`, bearer(key));
      const body = (await res.json()) as Summary;
      expect(res.status).toBe(200);
      expect(body.results).toEqual(expected);
      expect(body.totals).toEqual({ invalid_event: 640 });
      expect(statements.length).toBeGreaterThan(0);
      for (const s of statements) expect(s.sql).not.toMatch(/error_log/);
      // Two statements over the window's two error_counts rows (two groups in one hour), not 640
      // entries: D1's rows_read counts each row read, grouped and sorted, so at most 3 per row each.
      expect(await rowsRead(statements)).toBeLessThanOrEqual(2 * 3 * 2);
    }
  });

  it("covers whole hours: the window widens to the hours holding after and before, and says so", async () => {
    const app = await makeApp();
    const h10 = Date.UTC(2030, 6, 1, 10) * 1000;
    for (const at of [h10 - 1, h10, h10 + 3 * HOUR - 1, h10 + 3 * HOUR])
      await logEntries(1, { appId: app.appId, at, field: "timestamp", rule: "future" });
    const s = await summary(`app_id=${app.appId}&after=2030-07-01T10:30:00Z&before=2030-07-01T12:10:00Z`);
    expect(s.window).toEqual({ after: "2030-07-01T10:00:00Z", before: "2030-07-01T13:00:00Z", hours: 3 });
    expect(s.results).toEqual([
      { kind: "invalid_event", rule: "future", category: null, name: null, field: "timestamp", count: 2 },
    ]);
    const bad = await api("/api/errors/summary?after=2030-07-02&before=2030-07-01");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(["after"]);
    const unparsable = await api("/api/errors/summary?before=yesterday");
    expect(unparsable.status).toBe(400);
    expect(((await unparsable.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([
      "before",
    ]);
    const method = await api("/api/errors/summary", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(method.status).toBe(405);
    expect(method.headers.get("allow")).toBe("GET, HEAD");
  });

  it("counts a refused event once however often its message is delivered", async () => {
    const app = await makeApp();
    const category = unique("redelivered");
    const body: QueueMessage = {
      kind: "invalid",
      app: app.appId,
      received_at: Date.UTC(2030, 7, 1, 10) * 1000,
      request_id: unique("req"),
      items: [
        {
          index: 0,
          payload: "{}",
          category,
          name: "n",
          reasons: [{ index: 0, field: "data", message: "data is required", rule: "invalid_type" }],
        },
      ],
    };
    const id = unique("msg");
    for (const attempts of [1, 2, 3]) await deliver("the-eye-events", [{ id, body, attempts }]);
    const s = await summary(`app_id=${app.appId}&after=2030-08-01T10:00:00Z&before=2030-08-01T10:59:59Z`);
    expect(s.results).toEqual([
      { kind: "invalid_event", rule: "invalid_type", category, name: "n", field: "data", count: 1 },
    ]);
  });
});

describe("error-count retention", () => {
  const db = drizzle(env.DB);

  it("deletes the hourly counts of hours before the error log's cutoff, in bounded chunks, in the same step", async () => {
    const app = await makeApp();
    const now = Date.now() * 1000;
    const cutoff = now - 30 * DAY;
    for (const [i, at] of [
      now - 45 * DAY,
      now - 40 * DAY,
      now - 31 * DAY,
      now - 31 * DAY - 3 * HOUR,
      now - 35 * DAY,
    ].entries()) {
      await logEntries(i + 1, { appId: app.appId, at, category: "old" });
    }
    await logEntries(2, { appId: app.appId, at: now - DAY, category: "recent" });
    const countsOf = async () =>
      (
        await env.DB.prepare("SELECT category, hour, n FROM error_counts WHERE app_id = ? ORDER BY hour")
          .bind(app.appId)
          .all<{ category: string; n: number }>()
      ).results;
    expect(await countsOf()).toHaveLength(6);

    // A deadline already passed: nothing deleted, not done.
    expect(await purgeErrorLog(db, { cutoff, deadline: 0 })).toEqual({ deleted: 0, counts: 0, done: false });

    const run = await purgeErrorLog(db, { cutoff, deadline: Date.now() + 20_000, chunk: 2 });
    expect(run.done).toBe(true);
    expect(run.deleted).toBeGreaterThanOrEqual(15);
    expect(run.counts).toBeGreaterThanOrEqual(5);
    expect((await countsOf()).map((r) => [r.category, r.n])).toEqual([["recent", 2]]);
    expect((await summary(`app_id=${app.appId}&after=${formatTimestamp(now - 50 * DAY)}`)).results).toEqual([
      { kind: "invalid_event", rule: null, category: "recent", name: null, field: null, count: 2 },
    ]);
  });

  it("runs from the scheduled maintenance, bounded by ERROR_LOG_DAYS", async () => {
    const app = await makeApp();
    const now = Date.now() * 1000;
    await logEntries(1, { appId: app.appId, at: now - 10 * DAY, category: "ten days" });
    await logEntries(1, { appId: app.appId, at: now - DAY, category: "a day" });
    const run = await maintain({ ...env, ERROR_LOG_DAYS: "5" });
    expect(run.errorLog.done).toBe(true);
    expect(run.errorLog.counts).toBeGreaterThanOrEqual(1);
    const left = await env.DB.prepare("SELECT category FROM error_counts WHERE app_id = ?")
      .bind(app.appId)
      .all<{ category: string }>();
    expect(left.results.map((r) => r.category)).toEqual(["a day"]);
  });
});
