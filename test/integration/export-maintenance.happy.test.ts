// GET /api/export while the maintenance runs (issue 17): a cron run in the middle of a slow export
// (the export's own D1 reads wait for it) that archives and purges what the export has not reached
// in D1 yet, compacts what it is reading from the archive, and with the grace over deletes what it
// planned to read: the export still sends every event of its range exactly once.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import worker from "../../src/index";
import { archiveNew } from "../../src/maintain/archive";
import { GRACE_MS } from "../../src/maintain/compaction";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, formatTimestamp, HOUR } from "../../src/shared/timestamp";
import { BASE, bearer, makeApp } from "../helpers/api";
import { manifest } from "../helpers/archive";

const db = drizzle(env.DB);
const NOW = Date.now();

let serial = 0;
function event(app: number, overrides: Partial<NewContextEventRow> = {}): NewContextEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `export-${serial % 11}`,
    category: "export",
    name: `n${serial % 3}`,
    data: JSON.stringify({ serial }),
    timestamp: NOW * 1000 - HOUR,
    receivedAt: NOW * 1000,
    contextBody: serial % 2 ? JSON.stringify({ country: "FR", continent: "EU", device: "desktop" }) : null,
    app,
    ...overrides,
  };
}

/**
 * A D1 binding whose sessions call `before(n)` ahead of their n-th batch that reads the events table
 * (the export's pages of D1), and wait for it: a maintenance run exactly between two reads.
 */
function pausing(inner: D1Database, before: (n: number) => Promise<void>): D1Database {
  let n = 0;
  const sqlOf = new WeakMap<object, string>();
  const wrapStatement = (s: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const w = new Proxy(s, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrapStatement(target.bind(...args), sql);
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    sqlOf.set(w, sql);
    return w;
  };
  const unwrap = new WeakMap<object, D1PreparedStatement>();
  const wrapSession = (session: D1DatabaseSession): D1DatabaseSession =>
    new Proxy(session, {
      get(target, prop) {
        if (prop === "prepare")
          return (sql: string) => {
            const s = target.prepare(sql);
            const w = wrapStatement(s, sql);
            unwrap.set(w, s);
            return w;
          };
        if (prop === "batch")
          return async (stmts: D1PreparedStatement[]) => {
            if (stmts.some((s) => /from "events"/.test(sqlOf.get(s) ?? ""))) await before(++n);
            return target.batch(stmts.map((s) => unwrap.get(s) ?? s));
          };
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "withSession")
        return (...a: Parameters<D1Database["withSession"]>) => wrapSession(target.withSession(...a));
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** An R2 binding that calls `before(n)` ahead of its n-th get, and waits for it. */
function pausingBucket(inner: R2Bucket, before: (n: number) => Promise<void>): R2Bucket {
  let n = 0;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "get")
        return async (...args: Parameters<R2Bucket["get"]>) => {
          await before(++n);
          return target.get(...args);
        };
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The export's lines through the real entry, with a maintenance run (or anything) ahead of its n-th page of D1 or its n-th R2 get. */
async function exportWith(
  query: string,
  key: string,
  {
    beforeD1 = async () => {},
    beforeGet = async () => {},
  }: { beforeD1?: (n: number) => Promise<void>; beforeGet?: (n: number) => Promise<void> } = {},
) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}/api/export?${query}`, { headers: bearer(key) }),
    { ...env, DB: pausing(env.DB, beforeD1), ARCHIVE: pausingBucket(env.ARCHIVE, beforeGet) },
    ctx,
  );
  expect(res.status).toBe(200);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Each expected event exactly once, as it was before any maintenance ran. */
function expectExactly(lines: Record<string, unknown>[], expected: Map<string, Record<string, unknown>>) {
  const ids = lines.map((l) => l.event_id as string);
  expect(new Set(ids).size, "no event twice").toBe(ids.length);
  expect(ids.sort()).toEqual([...expected.keys()].sort());
  for (const line of lines) expect(line).toEqual(expected.get(line.event_id as string));
}

describe("GET /api/export while the maintenance runs", () => {
  const range = `timestamp_after=${formatTimestamp(NOW * 1000 - 30 * DAY)}&timestamp_before=${formatTimestamp(NOW * 1000)}`;

  /**
   * An application with 20 dates' events archived in two ranges (two objects a date, which the next
   * run compacts) and 2,500 newer events only in D1, above the watermark (three D1 pages). Returns
   * it, and the lines an export sends before any maintenance.
   */
  async function setUp() {
    const app = await makeApp();
    const archived = Array.from({ length: 20 }, (_, d) =>
      [0, 1].map((k) => event(app.num, { timestamp: NOW * 1000 - (5 + d) * DAY + k })),
    );
    await insertAll(
      db,
      archived.map((pair) => pair[0]!),
    );
    await archiveNew(db, env.ARCHIVE, { deadline: Date.now() + 20_000 });
    await insertAll(
      db,
      archived.map((pair) => pair[1]!),
    );
    await archiveNew(db, env.ARCHIVE, { deadline: Date.now() + 20_000 });
    for (let i = 0; i < 2_500; i += 500)
      await insertAll(
        db,
        Array.from({ length: 500 }, (_, k) => event(app.num, { timestamp: NOW * 1000 - 3 * DAY + (i + k) })),
      );
    await insertAll(db, [event(0)]); // the table's newest row belongs to no one here
    const lines = await exportWith(range, app.readKey);
    expect(lines).toHaveLength(2_540);
    return { app, expected: new Map(lines.map((l) => [l.event_id as string, l])) };
  }

  it("sends each event once when a run archives and purges what it has not read from D1 yet", async () => {
    const { app, expected } = await setUp();
    let ran = 0;
    const lines = await exportWith(range, app.readKey, {
      beforeD1: async (n) => {
        if (n !== 1) return;
        // Before the export's first page of D1: everything archived, the 3-day-old events purged (a 2-day window).
        const run = await maintain({ ...env, HOT_DAYS: "2" });
        expect(run.purge.deleted).toBeGreaterThanOrEqual(2_500);
        ran++;
      },
    });
    expect(ran).toBe(1);
    expectExactly(lines, expected);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE app = ?")
      .bind(app.num)
      .first<{ n: number }>();
    expect(left!.n).toBe(0);
  });

  it("sends each event once when a run comes between two of its D1 pages", async () => {
    const { app, expected } = await setUp();
    let ran = 0;
    const lines = await exportWith(range, app.readKey, {
      beforeD1: async (n) => {
        if (n !== 2) return;
        await maintain({ ...env, HOT_DAYS: "2" });
        ran++;
      },
    });
    expect(ran).toBe(1);
    expectExactly(lines, expected);
  });

  it("sends each event once when a run compacts the objects it is reading, and archives and purges the rest", async () => {
    const { app, expected } = await setUp();
    let compactions = 0;
    const lines = await exportWith(range, app.readKey, {
      beforeGet: async (n) => {
        if (n !== 3) return;
        compactions = (await maintain({ ...env, HOT_DAYS: "2" })).compact.compactions;
      },
    });
    expect(compactions).toBeGreaterThan(0);
    expectExactly(lines, expected);
  });

  it("sends each event once when the objects it set out to read are deleted, their grace over, before it reaches them", async () => {
    const { app, expected } = await setUp();
    let t = Date.now();
    let deleted = 0;
    const lines = await exportWith(range, app.readKey, {
      beforeGet: async (n) => {
        if (n !== 3) return;
        await maintain({ ...env, HOT_DAYS: "2" }, () => t);
        t += GRACE_MS + 60_000;
        deleted = (await maintain({ ...env, HOT_DAYS: "2" }, () => t)).compact.deleted;
      },
    });
    expect(deleted).toBeGreaterThan(0);
    expectExactly(lines, expected);
    expect((await manifest()).filter((o) => o.app === app.appId && o.state === "gone").length).toBeGreaterThan(0);
  });
});
