// Counts from the hourly counts: exact against a plain count(*) for every filter shape and
// range, duplicates included, and far cheaper in rows read than counting the rows.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll } from "../../src/db/event-insert";
import type { EventFilters } from "../../src/db/event-reads";
import type { NewEventRow } from "../../src/db/schema";
import { HOUR } from "../../src/shared/timestamp";
import { meteredDb, rowsRead } from "../helpers/read-meter";
import { storedCount } from "../helpers/stored";

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
  return storedCount(where.join(" AND ") || "1", params);
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
    // Hundreds of counts, each against count(*) over every generation: 13 s alone on a loaded 2-core machine.
  }, 120_000);

  it("reads a few rollup rows, not the matching rows, for a large count", async () => {
    const p = `big-${crypto.randomUUID().slice(0, 8)}`;
    const start = Date.UTC(2030, 0, 1) * 1000;
    const stored = rows(p, 3000, start, 3 * HOUR, 7).map((r) => ({ ...r, category: `${p}-all` }));
    await insertAll(db, stored);

    // What one count reads: the count rows, and the events row by row, as D1 reports them.
    const cost = async (f: EventFilters) => {
      const m = meteredDb();
      const n = await countEvents(m.db, f);
      const on = (table: RegExp) => rowsRead(m.statements.filter((s) => table.test(s.sql)));
      return { n, counts: await on(/from "type_counts"/), events: await on(/from "events_g/) };
    };
    const all = await cost({ category: `${p}-all` });
    expect(all.n).toBe(3000);
    // Three hours of the all-applications counts, not 3,000 events (nor a row per application).
    expect(all.counts).toBeLessThanOrEqual(4);
    expect(all.events).toBe(0);
    const scoped = await cost({ category: `${p}-all`, app: APPS[1] });
    expect(scoped.n).toBe(stored.filter((r) => r.app === APPS[1]).length);
    expect(scoped.counts).toBeLessThanOrEqual(4);

    const f = { category: `${p}-all`, after: start + HOUR / 2, before: start + 2 * HOUR + HOUR / 2 };
    const edges = await cost(f);
    expect(edges.n).toBe(await plainCount(f));
    // One whole hour from the counts; the two half hours at the edges row by row (≈ 1,000 events).
    expect(edges.counts).toBeLessThanOrEqual(2);
    expect(edges.events).toBeLessThan(1000 + 12);
  });
});
