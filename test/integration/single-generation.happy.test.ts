// Retention by days on a database whose only generation has aged past HOT_DAYS (a quiet
// deployment): the generation goes whole once archived, as older ones do — no row-by-row deletes,
// which cost a D1 write each. This file has its own database, so "the only generation" is its own.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, HOUR } from "../../src/shared/timestamp";
import { makeApp } from "../helpers/api";
import { storedCount } from "../helpers/stored";

const db = drizzle(env.DB);
const NOW = Date.now();

describe("a database with one generation", () => {
  it("drops its only generation whole once all of its span is older than HOT_DAYS and archived", async () => {
    const app = await makeApp();
    // 40 days old, within two hours: one generation, whose whole span (7 days at HOT_DAYS 30) ends
    // before the 30 days kept.
    const rows: NewContextEventRow[] = Array.from({ length: 200 }, (_, i) => ({
      eventId: crypto.randomUUID(),
      sessionId: `single-${i % 10}`,
      category: "single",
      name: `name-${i % 3}`,
      data: "{}",
      timestamp: NOW * 1000 - 40 * DAY - (i % 2) * HOUR,
      receivedAt: NOW * 1000,
      app: app.num,
    }));
    await insertAll(db, rows);
    const gens = await env.DB.prepare("SELECT count(*) AS n FROM generations").first<{ n: number }>();
    expect(gens!.n).toBe(1);

    // Archived by the first run; dropped whole by it or the next.
    const runs = [await maintain({ ...env, HOT_DAYS: "30" }), await maintain({ ...env, HOT_DAYS: "30" })];
    expect(await storedCount()).toBe(0);
    expect(runs.reduce((n, r) => n + (r.purge?.generations ?? 0), 0)).toBe(1);
    expect(runs.reduce((n, r) => n + (r.purge?.rows ?? 0), 0)).toBe(0);
    expect(runs.some((r) => r.purge?.bound === "days")).toBe(true);
  });
});
