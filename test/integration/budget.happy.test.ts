// The byte budget (HOT_MAX_MB, issue 16): past it, the cron drops the oldest archived generations
// (then the oldest archived rows) until D1 is back under it, whatever their age, keeping the newest
// events whole, every event in the archive and the counts exact; GET /api/health says the budget
// binds, and Sentry hears it once a day. When nothing archived is left to purge it says so
// (stalled) and deletes nothing unarchived.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import { databaseBytes } from "../../src/db/purge";
import worker from "../../src/index";
import { purgeHotWindow } from "../../src/maintain/retention";
import { maintain } from "../../src/maintain/scheduled";
import { DAY } from "../../src/shared/timestamp";
import { BASE, bearer, DEV_READ_KEY, makeApp } from "../helpers/api";
import { liveEvents, meteredBucket } from "../helpers/archive";
import { storedCount, storedRows } from "../helpers/stored";

const db = drizzle(env.DB);
const NOW = Date.now();
const MiB = 1024 * 1024;
/** Six spans of a week (the span HOT_DAYS gives here: 7 days), 600 events of about 2 KiB each. */
const WEEKS = 6;
const PER_WEEK = 600;

let serial = 0;
function event(app: number, timestamp: number): NewContextEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `budget-${serial % 40}`,
    category: `c${serial % 3}`,
    name: "n",
    data: JSON.stringify({ serial, pad: "x".repeat(2_000) }),
    timestamp,
    receivedAt: NOW * 1000,
    app,
  };
}

async function fill(app: number, week: number, n: number) {
  const rows = Array.from({ length: n }, (_, i) => event(app, NOW * 1000 - week * 7 * DAY - i * 1_000_000));
  for (let i = 0; i < rows.length; i += 200) await insertAll(db, rows.slice(i, i + 200), [], { hotDays: 100_000 });
  return rows;
}

/** GET /api/health under these settings (HOT_MAX_MB among them), with a read key for every application. */
async function health(settings: Env): Promise<unknown> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}/api/health`, { headers: { ...bearer(DEV_READ_KEY), "cf-connecting-ip": "budget-test" } }),
    settings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  expect(res.status).toBe(200);
  return res.json();
}

async function sentryMentioning(text: string, timeoutMs = 10_000): Promise<{ body: string }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
    const matching = received.filter((e) => e.body.includes(text));
    if (matching.length > 0 || Date.now() > deadline) return matching;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the byte budget", () => {
  it("brings D1 back under HOT_MAX_MB from the oldest archived events, whatever their age, keeping the newest whole and every event archived", async () => {
    const app = await makeApp();
    const weeks: NewContextEventRow[][] = [];
    for (let w = 0; w < WEEKS; w++) weeks.push(await fill(app.num, w, PER_WEEK));
    const before = await databaseBytes(db);
    // A budget well under what D1 holds now, in whole MiB (at least 1).
    const mb = Math.max(1, Math.floor((before * 0.6) / MiB));
    const settings = { ...env, HOT_DAYS: "100000", HOT_MAX_MB: String(mb) };
    expect(before).toBeGreaterThan(mb * MiB);

    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }),
      settings,
      ctx,
    );
    await waitOnExecutionContext(ctx);

    const after = await databaseBytes(db);
    expect(after).toBeLessThanOrEqual(mb * MiB);
    // The oldest went first: the newest week whole, at least the oldest week gone.
    const left = await storedRows<{ timestamp: number }>("app = ?", [app.num]);
    expect(left.length).toBeLessThan(WEEKS * PER_WEEK);
    expect(await storedCount("app = ? AND timestamp >= ?", [app.num, NOW * 1000 - DAY])).toBe(PER_WEEK);
    const oldest = Math.min(...left.map((r) => r.timestamp));
    expect(oldest).toBeGreaterThan(Math.min(...weeks.at(-1)!.map((e) => e.timestamp)));
    // Counts exact for what D1 holds, and every event (purged or not) in the archive once.
    expect(await countEvents(db, { app: app.num })).toBe(left.length);
    const { rows } = await liveEvents(`events/app_id=${app.appId}/`);
    const archived = new Set(rows.map((r) => r.event.eventId));
    expect(archived.size).toBe(WEEKS * PER_WEEK);
    for (const e of weeks.flat()) expect(archived.has(e.eventId)).toBe(true);

    // Health says the budget binds, and what the window is now.
    const { storage } = (await health(settings)) as {
      storage: { database: { budget_bytes: number }; hot: { binding: string; effective_days: number } };
    };
    expect(storage.database.budget_bytes).toBe(mb * MiB);
    expect(storage.hot.binding).toBe("bytes");
    expect(storage.hot.effective_days).toBeLessThan(WEEKS * 7);
    // Sentry heard it, once: a run the same day that purges again says nothing more.
    expect(await sentryMentioning(`HOT_MAX_MB (${mb} MiB) binds`)).toHaveLength(1);
    await fill(app.num, 0, PER_WEEK);
    const again = await maintain({ ...settings, HOT_MAX_MB: "1" });
    expect(again.purge.bound).toBe("bytes");
    expect(again.purge.alert).toBeUndefined();
  });

  it("says it is stalled, and deletes nothing unarchived, when nothing archived is left to purge", async () => {
    const app = await makeApp();
    // Archived, then events the archive cannot take (R2 refuses every write).
    await fill(app.num, 0, 100);
    await maintain({ ...env, HOT_DAYS: "100000" });
    const fresh = await fill(app.num, 0, 300);
    const { bucket: refusing } = meteredBucket(env.ARCHIVE, () => "before");
    await maintain({ ...env, HOT_DAYS: "100000", ARCHIVE: refusing }).catch(() => undefined);
    const run = await purgeHotWindow(db, {
      cutoff: 0,
      budgetBytes: 1 * MiB,
      hotDays: 100_000,
      deadline: Date.now() + 20_000,
    });
    expect(run.stalled).toBe(true);
    expect(run.done).toBe(false);
    for (const e of fresh) expect(await storedCount("event_id = lower(?)", [e.eventId])).toBe(1);
    const { storage } = (await health({ ...env, HOT_MAX_MB: "1" })) as {
      storage: { archive: { stalled: boolean; backlog_events: number } };
    };
    expect(storage.archive.backlog_events).toBeGreaterThanOrEqual(300);
    expect(storage.archive.stalled).toBe(true);
  });
});
