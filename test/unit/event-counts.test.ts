// Counts from the hourly rollup: exact against a plain count(*) for every filter shape and
// range, duplicates included, and far cheaper in rows read than counting the rows.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll } from "../../src/db/event-insert";
import type { EventFilters } from "../../src/db/event-reads";
import type { NewEventRow } from "../../src/db/schema";
import { HOUR } from "../../src/shared/timestamp";

const db = drizzle(env.DB);
/** Application numbers the rows carry (0: none). */
const APPS = [101, 102, 0];

/** The count the slow way, in plain SQL, to hold the rollup to. */
async function plainCount(f: EventFilters): Promise<number> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    where.push(clause);
    params.push(value);
  };
  if (f.sessionId !== undefined) add("session_id = ?", f.sessionId);
  if (f.category !== undefined) add("category = ?", f.category);
  if (f.name !== undefined) add("name = ?", f.name);
  if (f.app !== undefined) add("app = ?", f.app);
  if (f.after !== undefined) add("timestamp >= ?", f.after);
  if (f.before !== undefined) add("timestamp <= ?", f.before);
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM events WHERE ${where.join(" AND ") || "1"}`)
    .bind(...params)
    .first<{ n: number }>();
  return row!.n;
}

function rows(prefix: string, count: number, start: number, span: number, seed: number): NewEventRow[] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: count }, (_, i) => ({
    eventId: crypto.randomUUID(),
    sessionId: `${prefix}-s${next() % 7}`,
    category: `${prefix}-c${next() % 3}`,
    name: `${prefix}-n${next() % 3}`,
    data: "{}",
    // Some land exactly on hour boundaries, the rest anywhere in the span.
    timestamp: i % 10 === 0 ? start + (next() % Math.ceil(span / HOUR)) * HOUR : start + (next() % span),
    receivedAt: 0,
    app: APPS[next() % 3]!,
  }));
}

describe("countEvents", () => {
  it("matches count(*) for every shape and range, across hour edges, before 1970, and with duplicates", async () => {
    const p = `cnt-${crypto.randomUUID().slice(0, 8)}`;
    const start = -3 * HOUR + 12345; // straddles the epoch: negative timestamps round down too
    const stored = rows(p, 600, start, 7 * HOUR, 42);
    await insertAll(db, stored.slice(0, 300));
    await insertAll(db, stored); // the first 300 again: skipped, and not counted twice
    const edges = [start, -HOUR, -1, 0, 1, HOUR - 1, HOUR, 2 * HOUR + 17, 4 * HOUR, start + 7 * HOUR];
    const ranges: [number | undefined, number | undefined][] = [[undefined, undefined]];
    for (const a of edges) {
      ranges.push([a, undefined], [undefined, a]);
      for (const b of edges) if (b >= a) ranges.push([a, b]);
    }
    const shapes: EventFilters[] = [
      { category: `${p}-c0` },
      { name: `${p}-n1` },
      { category: `${p}-c2`, name: `${p}-n0` },
      { category: `${p}-c1`, app: APPS[0] },
      { sessionId: `${p}-s3` },
    ];
    let checked = 0;
    for (const shape of shapes) {
      for (const [after, before] of ranges) {
        const f = { ...shape, after, before };
        expect(await countEvents(db, f), JSON.stringify(f)).toBe(await plainCount(f));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(await plainCount({ category: `${p}-c0` })).toBeGreaterThan(0);
  });

  it("reads a few rollup rows, not the matching rows, for a large count", async () => {
    const p = `big-${crypto.randomUUID().slice(0, 8)}`;
    const start = Date.UTC(2030, 0, 1) * 1000;
    const stored = rows(p, 3000, start, 3 * HOUR, 7).map((r) => ({ ...r, category: `${p}-all` }));
    await insertAll(db, stored);

    let rowsRead = 0;
    const counting = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            const results = await target.batch(statements);
            for (const r of results) rowsRead += r.meta.rows_read;
            return results;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const measured = drizzle(counting);

    expect(await countEvents(measured, { category: `${p}-all` })).toBe(3000);
    // Three hours of the all-applications roll-up, not 3,000 events (nor a row per application).
    expect(rowsRead).toBeLessThanOrEqual(4);
    rowsRead = 0;
    expect(await countEvents(measured, { category: `${p}-all`, app: APPS[1] })).toBe(
      stored.filter((r) => r.app === APPS[1]).length,
    );
    expect(rowsRead).toBeLessThanOrEqual(4);

    rowsRead = 0;
    const f = { category: `${p}-all`, after: start + HOUR / 2, before: start + 2 * HOUR + HOUR / 2 };
    expect(await countEvents(measured, f)).toBe(await plainCount(f));
    // One whole hour from the rollup; the two half hours at the edges row by row.
    expect(rowsRead).toBeLessThan(1000 + 12);
  });

  it("counts rows that reached the table outside insertAll, once the next batch is stored", async () => {
    const p = `cnt-outside-${crypto.randomUUID().slice(0, 8)}`;
    const base = Date.UTC(2023, 6, 1) * 1000;
    await insertAll(db, rows(p, 20, base, 3 * HOUR, 7));
    // A consumer of the previous deploy, or a manual import, writes rows straight into the table.
    const manual = rows(p, 25, base, 3 * HOUR, 8);
    await env.DB.batch(
      manual.map((r) =>
        env.DB.prepare(
          "INSERT INTO events (event_id, session_id, category, name, data, timestamp, received_at, app) VALUES (unhex(replace(?, '-', '')), ?, ?, ?, ?, ?, ?, ?)",
        ).bind(r.eventId, r.sessionId, r.category, r.name, r.data, r.timestamp, r.receivedAt, r.app),
      ),
    );
    // The next batch the consumer stores rolls up everything above the stored mark, not only its own rows.
    await insertAll(db, rows(p, 15, base, 3 * HOUR, 9));
    for (const f of [
      { category: `${p}-c0` },
      { category: `${p}-c1`, name: `${p}-n2` },
      { name: `${p}-n1`, app: APPS[0] },
      {},
    ]) {
      const g = { ...f, after: base - HOUR, before: base + 4 * HOUR };
      expect(await countEvents(db, g), JSON.stringify(f)).toBe(await plainCount(g));
    }
    expect(await countEvents(db, { category: `${p}-c0` })).toBe(await plainCount({ category: `${p}-c0` }));
  });
});
