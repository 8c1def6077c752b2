// The stats series from the hourly roll-ups against the real local D1: exact against a GROUP BY over
// the events for every split, filter and scope, and reading only the window's rows of one shape.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { insertAll } from "../../src/db/event-insert";
import type { NewEventRow } from "../../src/db/schema";
import { type SeriesFilters, seriesCounts } from "../../src/db/stats";
import { HOUR } from "../../src/shared/timestamp";

const db = drizzle(env.DB);

/** A window of hours no other test writes to (each test draws its own). */
const freshHour = () => Date.UTC(2060, 0, 1) / 3_600_000 + Math.floor(Math.random() * 300_000) * 8;

/** Events spread over `hours` hours from `firstHour`, pseudo-randomly across the given values. */
function rows(
  p: string,
  count: number,
  firstHour: number,
  hours: number,
  apps: number[],
  types: { categories: number; names: number },
): NewEventRow[] {
  let x = count;
  // A linear congruential generator's high bits (its low bits cycle with short periods).
  const next = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return Math.floor(x / 2 ** 15);
  };
  return Array.from({ length: count }, () => ({
    eventId: crypto.randomUUID(),
    sessionId: `${p}-s`,
    category: `${p}-c${next() % types.categories}`,
    name: `${p}-n${next() % types.names}`,
    data: "{}",
    timestamp: (firstHour + (next() % hours)) * HOUR + (next() % HOUR),
    receivedAt: 0,
    app: apps[next() % apps.length]!,
  }));
}

/** One event per hour, application, category and name: every series present in every hour. */
function grid(
  p: string,
  firstHour: number,
  hours: number,
  apps: number[],
  types: { categories: number; names: number },
): NewEventRow[] {
  const out: NewEventRow[] = [];
  for (let h = firstHour; h < firstHour + hours; h++)
    for (const app of apps)
      for (let c = 0; c < types.categories; c++)
        for (let n = 0; n < types.names; n++)
          out.push({
            eventId: crypto.randomUUID(),
            sessionId: `${p}-s`,
            category: `${p}-c${c}`,
            name: `${p}-n${n}`,
            data: "{}",
            timestamp: h * HOUR + 1,
            receivedAt: 0,
            app,
          });
  return out;
}

/** The same series the slow way: GROUP BY over the events, as "key@hour" → n. */
async function plain(f: SeriesFilters): Promise<Map<string, number>> {
  const where = ["timestamp BETWEEN ? AND ?"];
  const params: unknown[] = [f.firstHour * HOUR, (f.lastHour + 1) * HOUR - 1];
  if (f.app !== undefined) {
    where.push("app = ?");
    params.push(f.app);
  }
  if (f.category !== undefined) {
    where.push("category = ?");
    params.push(f.category);
  }
  if (f.name !== undefined) {
    where.push("name = ?");
    params.push(f.name);
  }
  const { results } = await env.DB.prepare(
    `SELECT ${f.by} AS key, timestamp / ${HOUR} AS hour, count(*) AS n FROM events WHERE ${where.join(" AND ")} GROUP BY key, hour`,
  )
    .bind(...params)
    .all<{ key: string; hour: number; n: number }>();
  const out = new Map<string, number>();
  for (const r of results) {
    out.set(`${r.key}@${r.hour}`, r.n);
    out.set(`@${r.hour}`, (out.get(`@${r.hour}`) ?? 0) + r.n);
  }
  return out;
}

const asMap = (rs: { key: string; hour: number; n: number }[]) => new Map(rs.map((r) => [`${r.key}@${r.hour}`, r.n]));

/** Runs the query's SQL on the binding: its rows, D1's rows_read, and SQLite's plan. */
async function measure(f: SeriesFilters) {
  const { sql, params } = seriesCounts(db, f).toSQL();
  const result = await env.DB.prepare(sql)
    .bind(...params)
    .all();
  const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return {
    rowsRead: result.meta.rows_read,
    returned: result.results.length,
    plan: plan.results.map((r) => r.detail).join("; "),
  };
}

describe("seriesCounts", () => {
  it("equals a GROUP BY over the events for each split, filter and scope, with the hour's total under ''", async () => {
    const p = `st-${crypto.randomUUID().slice(0, 8)}`;
    const h = freshHour();
    const apps = [301, 302, 0];
    await insertAll(db, rows(p, 1500, h, 30, apps, { categories: 4, names: 5 }));
    const shapes: Omit<SeriesFilters, "firstHour" | "lastHour">[] = [
      { by: "category", category: undefined, name: undefined },
      { by: "name" },
      { by: "category", name: `${p}-n2` },
      { by: "name", category: `${p}-c1` },
      { by: "category", category: `${p}-c3` },
      { by: "name", name: `${p}-n0`, category: `${p}-c0` },
      { by: "category", app: 302 },
      { by: "name", app: 0, category: `${p}-c2` },
    ];
    for (const shape of shapes) {
      // The whole window, and a part of it (its edges are whole hours: the roll-up's grain).
      for (const [first, last] of [
        [h, h + 29],
        [h + 7, h + 12],
      ] as const) {
        const f = { ...shape, firstHour: first, lastHour: last };
        const got = asMap(await seriesCounts(db, f));
        const want = await plain(f);
        // The '' row is the total when the split has no filter of its own; with one, there is one
        // series and no '' row: that series must then equal the GROUP BY's total of each hour.
        const single = f.by === "category" ? f.category : f.name;
        if (single !== undefined) {
          expect(
            [...got.keys()].filter((k) => k.startsWith("@")),
            JSON.stringify(f),
          ).toEqual([]);
          for (const [k, n] of [...want]) {
            if (!k.startsWith("@")) continue;
            expect(want.get(`${single}${k}`), `${JSON.stringify(f)} ${k}`).toBe(n);
            want.delete(k);
          }
        }
        expect(got, JSON.stringify(f)).toEqual(want);
      }
    }
  });

  it("reads one row per hour and series in the window, not other hours, applications or (category, name) pairs", async () => {
    const p = `st-cost-${crypto.randomUUID().slice(0, 8)}`;
    const h = freshHour();
    // 24 hours of 5 categories × 40 names in application 311; around it, the same types in 3 other
    // applications and in the day before and after: all of it in the counts, none of it asked for.
    const types = { categories: 5, names: 40 };
    const window = grid(p, h, 24, [311], types);
    const noise = [
      ...grid(p, h, 24, [312, 313, 314], types),
      ...grid(p, h - 24, 24, [311], types),
      ...grid(p, h + 24, 24, [311], types),
    ];
    await insertAll(db, [...window, ...noise]);
    const cases: { f: SeriesFilters; series: number; index: RegExp }[] = [
      // 24 hours × (5 categories + the total).
      { f: { by: "category", app: 311, firstHour: h, lastHour: h + 23 }, series: 5, index: /event_counts_app_name/ },
      // 24 hours × (40 names + the total).
      { f: { by: "name", app: 311, firstHour: h, lastHour: h + 23 }, series: 40, index: /event_counts_app_category/ },
      // One category's names: 24 × (40 + 1).
      {
        f: { by: "name", category: `${p}-c2`, app: 311, firstHour: h, lastHour: h + 23 },
        series: 40,
        index: /event_counts_app_category/,
      },
      // One series by its key: 24 rows.
      {
        f: { by: "category", category: `${p}-c2`, app: 311, firstHour: h, lastHour: h + 23 },
        series: 0,
        index: /USING PRIMARY KEY/,
      },
    ];
    for (const { f, series, index } of cases) {
      const { rowsRead, returned, plan } = await measure(f);
      expect(plan, JSON.stringify(f)).toMatch(index);
      expect(plan).not.toMatch(/SCAN/);
      expect(returned).toBe(24 * (series + 1));
      // D1 counts each row the range visits: the rows returned, and none of the noise.
      expect(rowsRead, JSON.stringify(f)).toBeLessThanOrEqual(returned + 1);
    }
  });
});
