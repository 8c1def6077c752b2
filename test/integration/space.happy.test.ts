// Space given back (issue 16): once retention has purged every event, what the events kept beside
// them goes in the same run — their counts, the arrival log, and the dictionary rows (sessions,
// event types, contexts) no live event points at. Bounded by a stated constant: each dictionary
// keeps at most its newest row (its AUTOINCREMENT counter's), and generations_apps at most the
// live generations' rows. This file has its own database, so "every event" is this file's.
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
const count = async (table: string) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>())!.n;

describe("space given back", () => {
  it("leaves no counts, no arrival rows and at most one row per dictionary once every event is purged", async () => {
    const app = await makeApp();
    // 40 to 60 days old, over three generations: random-looking types, sessions and campaign
    // contexts, the way a public write key lets anyone make them.
    const rows: NewContextEventRow[] = Array.from({ length: 900 }, (_, i) => ({
      eventId: crypto.randomUUID(),
      sessionId: `space-${i % 300}`,
      category: `cat-${i % 50}`,
      name: `name-${i % 7}`,
      data: "{}",
      timestamp: NOW * 1000 - 40 * DAY - (i % 20) * DAY - (i % 24) * HOUR,
      receivedAt: NOW * 1000,
      app: app.num,
      contextBody: JSON.stringify({ country: i % 2 ? "DE" : "FR", device: "mobile", utm_campaign: `c-${i % 90}` }),
      country: i % 2 ? "DE" : "FR",
      device: "mobile",
    }));
    for (let i = 0; i < rows.length; i += 300) await insertAll(db, rows.slice(i, i + 300));
    expect(await count("sessions")).toBeGreaterThanOrEqual(300);
    expect(await count("contexts")).toBeGreaterThanOrEqual(90);
    expect(await count("type_counts")).toBeGreaterThan(0);

    // Archived by the first run, and purged (30 days kept) by it or the next.
    await maintain({ ...env, HOT_DAYS: "30" });
    await maintain({ ...env, HOT_DAYS: "30" });
    expect(await storedCount()).toBe(0);

    expect(await count("type_counts")).toBe(0);
    expect(await count("context_value_counts")).toBe(0);
    expect(await count("arrivals")).toBe(0);
    expect(await count("sessions")).toBeLessThanOrEqual(1);
    expect(await count("event_types")).toBeLessThanOrEqual(1);
    expect(await count("contexts")).toBeLessThanOrEqual(1);
    expect(await count("generation_apps")).toBeLessThanOrEqual(await count("generations"));
    expect(await count("generations")).toBeLessThanOrEqual(1);
  });
});
