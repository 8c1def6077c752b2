// Counts by country and device (context_counts): exact against a plain count(*) for every filter shape
// and range, events without context left out, a redelivered batch counted once, and exact again after
// events are taken out the way retention and erasure take them (uncountWhere, then DELETE).
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import type { EventFilters } from "../../src/db/event-reads";
import { uncountWhere } from "../../src/db/roll-ups";
import { events } from "../../src/db/schema";
import { HOUR } from "../../src/shared/timestamp";

const db = drizzle(env.DB);
const START = Date.UTC(2022, 4, 1) * 1000;
/** An application number of its own per test, so each test counts only the events it made. */
let lastApp = 300;
const newApp = () => ++lastApp;

async function plainCount(app: number, f: EventFilters): Promise<number> {
  const where = ["app = ?"];
  const params: unknown[] = [app];
  for (const [col, v] of [
    ["country", f.country],
    ["device", f.device],
    ["category", f.category],
    ["name", f.name],
  ] as const) {
    if (v !== undefined) {
      where.push(`${col} = ?`);
      params.push(v);
    }
  }
  if (f.after !== undefined) {
    where.push("timestamp >= ?");
    params.push(f.after);
  }
  if (f.before !== undefined) {
    where.push("timestamp <= ?");
    params.push(f.before);
  }
  return (await env.DB.prepare(`SELECT count(*) AS n FROM events WHERE ${where.join(" AND ")}`)
    .bind(...params)
    .first<{ n: number }>())!.n;
}

const CONTEXTS = [
  { country: "DE", device: "mobile" },
  { country: "FR", device: "desktop" },
  { country: "DE", device: "desktop" },
  null,
];

function makeRows(app: number, n: number): NewContextEventRow[] {
  return Array.from({ length: n }, (_, i) => {
    const ctx = CONTEXTS[i % CONTEXTS.length]!;
    return {
      app,
      eventId: crypto.randomUUID(),
      sessionId: `cc-s${i % 5}`,
      category: `cc-c${i % 3}`,
      name: `cc-n${i % 2}`,
      data: "{}",
      timestamp: START + ((i * 7919) % (6 * HOUR)),
      receivedAt: START,
      contextBody: ctx ? JSON.stringify(ctx) : null,
      country: ctx?.country ?? null,
      device: ctx?.device ?? null,
    };
  });
}

const SHAPES: EventFilters[] = [
  { country: "DE" },
  { country: "FR", category: "cc-c1" },
  { device: "desktop", name: "cc-n0" },
  { device: "mobile", category: "cc-c2", name: "cc-n1" },
  { country: "DE", after: START + HOUR / 2, before: START + 4 * HOUR + 17 },
  { device: "desktop", after: START + HOUR, before: START + 3 * HOUR - 1 },
  { country: "DE", device: "desktop" },
];

/** Every shape's count from the roll-ups equals a plain count(*), and none is trivially 0. */
async function expectExact(app: number, label: string) {
  let total = 0;
  for (const f of SHAPES) {
    const plain = await plainCount(app, f);
    expect(await countEvents(db, { ...f, app }), `${label} ${JSON.stringify(f)}`).toBe(plain);
    total += plain;
  }
  expect(total, `${label}: the shapes count events`).toBeGreaterThan(0);
}

describe("context_counts", () => {
  it("count exactly by country and device, whole hours from the roll-ups and the edges from the rows", async () => {
    const app = newApp();
    const rows = makeRows(app, 240);
    await insertAll(db, rows);
    await insertAll(db, rows.slice(0, 60)); // a redelivered message: nothing twice
    await expectExact(app, "after insert");
    const contexts = await env.DB.prepare("SELECT count(*) AS n FROM contexts WHERE body LIKE '%\"country\"%'").first<{
      n: number;
    }>();
    expect(contexts!.n).toBeGreaterThanOrEqual(3);
    const across = await env.DB.prepare(
      "SELECT sum(n) AS n FROM context_counts WHERE app = -1 AND dim = 'country' AND value = 'DE' AND category = '' AND name = ''",
    ).first<{ n: number }>();
    expect(across!.n).toBeGreaterThanOrEqual(await plainCount(app, { country: "DE" }));
  });

  it("stay exact when events are taken out as retention and erasure take them", async () => {
    // Its own events, so the test means the same alone as after the one above.
    const app = newApp();
    await insertAll(db, makeRows(app, 240));
    await expectExact(app, "before delete");
    const doomedCount = async () =>
      (await env.DB.prepare("SELECT count(*) AS n FROM events WHERE app = ? AND session_id = 'cc-s2'")
        .bind(app)
        .first<{ n: number }>())!.n;
    expect(await doomedCount()).toBe(48);
    const before = await countEvents(db, { country: "DE", app });
    const doomed = sql`${events.app} = ${sql.raw(String(app))} AND ${events.sessionId} = 'cc-s2'`;
    const [first, ...rest] = [...uncountWhere(doomed), sql`DELETE FROM ${events} WHERE ${doomed}`].map((s) =>
      db.run(s),
    );
    await db.batch([first!, ...rest]);
    expect(await doomedCount()).toBe(0);
    await expectExact(app, "after delete");
    expect(await countEvents(db, { country: "DE", app }), "the deleted events are no longer counted").toBeLessThan(
      before,
    );
    const left = await env.DB.prepare("SELECT count(*) AS n FROM context_counts WHERE app = ? AND n < 0")
      .bind(app)
      .first<{ n: number }>();
    expect(left!.n).toBe(0);
  });
});
