// The upgrade path (issue 16): a database with events from before migration 0011 keeps them in the
// legacy `events` table (14 indexes), and the cron rebuilds them into generations in bounded chunks,
// newest first, each keeping its id, counted as the consumer counts; the archive waits for the
// rebuild, then archives each event once; a chunk stored twice (a run stopped between its insert
// and its delete) is stored once.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll } from "../../src/db/event-insert";
import { legacyEvents } from "../../src/db/legacy-schema";
import { readStorageState } from "../../src/db/storage-state";
import { REBUILD_CHUNK } from "../../src/maintain/rebuild";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, HOUR } from "../../src/shared/timestamp";
import { bearer, getJson, makeApp } from "../helpers/api";
import { liveEvents } from "../helpers/archive";
import { storedRows } from "../helpers/stored";

const db = drizzle(env.DB);
const NOW = Date.now();
/** More than two chunks, spread over ten days, in 25 sessions. */
const N = 2 * REBUILD_CHUNK + 500;

describe("the rebuild of the pre-0011 events table", () => {
  it("moves every legacy event into the generations in bounded runs, each once with its id, counted, then archived once", async () => {
    const app = await makeApp();
    const [ctx] = (
      await env.DB.prepare(
        `INSERT INTO contexts (body, country, device, gen) VALUES ('{"country":"DE","device":"mobile"}', 'DE', 'mobile', 0) RETURNING id`,
      ).all<{ id: number }>()
    ).results;
    const legacy = Array.from({ length: N }, (_, i) => ({
      id: i + 1,
      app: app.num,
      eventId: crypto.randomUUID(),
      sessionId: `legacy-${i % 25}`,
      category: `c${i % 3}`,
      name: `n${i % 4}`,
      data: JSON.stringify({ i }),
      timestamp: NOW * 1000 - (i % 10) * DAY - (i % 24) * HOUR,
      receivedAt: NOW * 1000,
      context: i % 2 === 0 ? ctx!.id : null,
      country: i % 2 === 0 ? "DE" : null,
      device: i % 2 === 0 ? "mobile" : null,
    }));
    // Eight rows a statement (D1 binds at most 100 parameters), a batch at a time.
    const inserts = [];
    for (let i = 0; i < legacy.length; i += 8) inserts.push(db.insert(legacyEvents).values(legacy.slice(i, i + 8)));
    for (let i = 0; i < inserts.length; i += 50) await db.batch(inserts.slice(i, i + 50) as [(typeof inserts)[0]]);
    // What migration 0011 does on such a database: ids go on above the legacy table's.
    await env.DB.prepare("UPDATE storage_state SET next_id = ? WHERE id = 1")
      .bind(N + 1)
      .run();

    // A run stopped between a chunk's insert and its delete: the newest chunk is already stored.
    const newest = legacy.slice(-REBUILD_CHUNK).reverse();
    await insertAll(
      db,
      newest.map(({ id: _, context: __, ...r }) => ({
        ...r,
        contextBody: r.country ? '{"country":"DE","device":"mobile"}' : null,
      })),
      [],
      { ids: newest.map((r) => r.id) },
    );

    // Short runs: a clock that moves 8 s per reading leaves each step about two chunks.
    let clock = NOW;
    let runs = 0;
    while (runs < 20) {
      const run = await maintain({ ...env, HOT_DAYS: "100000" }, () => (clock += 8_000));
      runs++;
      expect(run.failed).toEqual([]);
      if ((await readStorageState(db)).rebuiltThrough === null) break;
      // The archive waits while ids above its watermark may still be in the legacy table.
      expect(run.archive!.ranges).toBe(0);
    }
    expect(runs).toBeGreaterThanOrEqual(2);
    expect((await env.DB.prepare("SELECT count(*) AS n FROM events").first<{ n: number }>())!.n).toBe(0);

    // Every event once, with its id and its values.
    const stored = await storedRows<{
      id: number;
      event_id: string;
      session_id: string;
      category: string;
      name: string;
      data: string;
      timestamp: number;
      received_at: number;
      country: string | null;
    }>("app = ?", [app.num]);
    expect(stored).toHaveLength(N);
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const e of legacy) {
      const r = byId.get(e.id)!;
      expect(r, `event ${e.id}`).toBeDefined();
      expect([r.event_id, r.session_id, r.category, r.name, r.data, r.timestamp, r.received_at, r.country]).toEqual([
        e.eventId,
        e.sessionId,
        e.category,
        e.name,
        e.data,
        e.timestamp,
        e.receivedAt,
        e.country,
      ]);
    }
    // Each generation's max_id covers its events (retention drops a generation only once the
    // archive has passed it).
    const maxIds = new Map(
      (await env.DB.prepare("SELECT gen, max_id FROM generations").all<{ gen: number; max_id: number }>()).results.map(
        (g) => [g.gen, g.max_id],
      ),
    );
    for (const r of await storedRows<{ id: number; gen: number }>())
      expect(maxIds.get(r.gen)!, `generation ${r.gen}`).toBeGreaterThanOrEqual(r.id);
    // Counted once each, and read through the API.
    expect(await countEvents(db, { app: app.num })).toBe(N);
    expect(await countEvents(db, { app: app.num, category: "c1" })).toBe(
      legacy.filter((e) => e.category === "c1").length,
    );
    const page = await getJson(`/api/event/?session_id=legacy-7&limit=1000`, { headers: bearer(app.readKey) });
    expect(page.count).toBe(legacy.filter((e) => e.sessionId === "legacy-7").length);

    // Then archived, each once.
    await maintain({ ...env, HOT_DAYS: "100000" });
    const { copies } = await liveEvents(`events/app_id=${app.appId}/`);
    for (const e of legacy) expect(copies.get(e.id), `event ${e.id}`).toBe(1);
  });
});
