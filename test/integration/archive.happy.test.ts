// The archive (issue 17): every stored event in one live Parquet object of its application and
// date, archived by the next run whatever the volume, named by the id range the run recorded first,
// so a run that stops and is repeated writes exactly the same objects; each run bounded in bytes,
// partitions and objects, and the watermark moving every run.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { parquetMetadata } from "hyparquet";
import { describe, expect, it } from "vitest";
import { dateOf } from "../../src/archive/objects";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import { readStorageState } from "../../src/db/storage-state";
import { RANGE_LIMITS, RUN_LIMITS } from "../../src/maintain/archive";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, HOUR } from "../../src/shared/timestamp";
import { makeApp } from "../helpers/api";
import { liveEvents, manifest, meteredBucket, objectEvents, r2Keys } from "../helpers/archive";

const db = drizzle(env.DB);
const NOW = Date.now();
const settings = (overrides: Partial<Env> = {}): Env => ({ ...env, HOT_DAYS: "100000", ...overrides });

let serial = 0;
function event(app: number, overrides: Partial<NewContextEventRow> = {}): NewContextEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `archive-session-${serial % 7}`,
    category: "archive",
    name: `n${serial % 3}`,
    data: JSON.stringify({ serial }),
    timestamp: NOW * 1000 - 2 * HOUR,
    receivedAt: NOW * 1000,
    app,
    ...overrides,
  };
}

const maxId = async () => (await env.DB.prepare("SELECT max(id) AS n FROM events").first<{ n: number }>())!.n;
const storedIds = async (app?: number) =>
  (
    await env.DB.prepare(`SELECT id FROM events ${app === undefined ? "" : "WHERE app = ?"} ORDER BY id`)
      .bind(...(app === undefined ? [] : [app]))
      .all<{ id: number }>()
  ).results.map((r) => r.id);

/**
 * Every stored event in exactly one live object, no event in two, and no object in R2 that the
 * manifest does not list as live (the events purged from D1 are in the archive alone).
 */
async function expectArchivedOnce(app?: { appId: string; num: number }) {
  const { rows, copies } = await liveEvents(app ? `events/app_id=${app.appId}/` : undefined);
  for (const id of await storedIds(app?.num)) expect(copies.get(id), `event ${id}`).toBe(1);
  for (const [seq, n] of copies) expect(n, `event ${seq}`).toBe(1);
  // In R2: the live objects, and replaced ones until their grace ends; nothing the manifest does not know.
  const prefix = app ? `events/app_id=${app.appId}/` : "events/";
  const known = await manifest();
  const inR2 = (await r2Keys(prefix)).filter((k) => k.endsWith(".parquet"));
  for (const o of known.filter((o) => o.state === "live" && o.key.startsWith(prefix))) expect(inR2).toContain(o.key);
  for (const key of inR2) expect(known.find((o) => o.key === key)?.state, key).toMatch(/^(live|retired)$/);
  return rows;
}

describe("the archive", () => {
  it("holds every stored event once, as typed Parquet under app_id=…/date=…, in objects named by the range, however often it runs", async () => {
    const a = await makeApp();
    const b = await makeApp();
    const rows = [
      ...Array.from({ length: 120 }, (_, i) =>
        event(i % 2 ? a.num : b.num, {
          timestamp: NOW * 1000 - (i % 3) * DAY,
          contextBody:
            i % 4 === 0 ? JSON.stringify({ country: "DE", continent: "EU", asn: 3320, device: "mobile" }) : null,
        }),
      ),
      ...Array.from({ length: 7 }, () => event(0)),
    ];
    await insertAll(db, rows);
    const first = await maintain(settings());
    expect(first.archive).toMatchObject({ done: true, archivedThrough: await maxId() });
    const lines = await expectArchivedOnce();
    for (const { key, event: e } of lines) {
      expect(key).toMatch(/^events\/app_id=[^/]+\/date=\d{4}-\d{2}-\d{2}\/part-\d{16}-\d{16}(-c\d+)?\.parquet$/);
      // The partition is the event's own application and date (UTC).
      expect(key).toContain(`/date=${dateOf(e.timestamp)}/`);
      expect(key).toContain(e.application === null ? "app_id=__HIVE_DEFAULT_PARTITION__/" : `app_id=${e.application}/`);
    }
    const one = rows[4]!;
    const stored = lines.find((l) => l.event.eventId === one.eventId)!.event;
    expect(stored).toMatchObject({
      sessionId: one.sessionId,
      category: one.category,
      name: one.name,
      data: one.data,
      timestamp: one.timestamp,
      receivedAt: one.receivedAt,
      application: a.appId === stored.application ? a.appId : b.appId,
      context: { country: "DE", continent: "EU", asn: 3320, device: "mobile" },
    });

    // The schema as docs/storage.md states it: timestamps are UTC microsecond TIMESTAMPs, seq an INT64.
    const key = lines[0]!.key;
    const file = await (await env.ARCHIVE.get(key))!.arrayBuffer();
    const { schema, key_value_metadata } = parquetMetadata(file);
    const byName = new Map(schema.map((e) => [e.name, e]));
    expect(byName.get("timestamp")).toMatchObject({
      type: "INT64",
      logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
    });
    expect(byName.get("received_at")?.logical_type).toMatchObject({ type: "TIMESTAMP", unit: "MICROS" });
    expect(byName.get("seq")).toMatchObject({ type: "INT64", repetition_type: "REQUIRED" });
    expect(byName.get("data")).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8" });
    expect(byName.get("country")).toMatchObject({ converted_type: "UTF8", repetition_type: "OPTIONAL" });
    expect(key_value_metadata).toContainEqual({
      key: "the-eye.sorting",
      value: "hour(timestamp), session_id, timestamp, seq",
    });
    expect((await env.ARCHIVE.head(key))!.httpMetadata?.contentType).toBe("application/vnd.apache.parquet");

    // Again, with nothing new: nothing is written.
    const { bucket, meter } = meteredBucket();
    const again = await maintain({ ...settings(), ARCHIVE: bucket });
    expect(again.archive).toMatchObject({ ranges: 0, objects: 0, done: true });
    expect(meter.puts).toBe(0);
    await expectArchivedOnce();
  });

  it("archives a few dozen old events in the next run, whatever their number, and moves the watermark every run", async () => {
    const app = await makeApp();
    const old = Array.from({ length: 60 }, (_, i) =>
      event(app.num, { timestamp: NOW * 1000 - 3 * DAY - i * 60_000_000 }),
    );
    await insertAll(db, [...old, event(app.num)]);
    const run = await maintain(settings({ HOT_DAYS: "1" }));
    expect(run.archive.archivedThrough).toBe(await maxId());
    expect(run.purge.deleted).toBeGreaterThanOrEqual(60);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE app = ? AND timestamp < ?")
      .bind(app.num, NOW * 1000 - DAY)
      .first<{ n: number }>();
    expect(left!.n).toBe(0);
    const live = (await liveEvents(`events/app_id=${app.appId}/`)).rows.map((r) => r.event.eventId);
    for (const e of old) expect(live).toContain(e.eventId);
    for (let i = 0; i < 3; i++) {
      await insertAll(db, [event(app.num)]);
      const next = await maintain(settings());
      expect(next.archive.archivedThrough).toBe(await maxId());
      expect(next.archive.ranges).toBe(1);
    }
    await expectArchivedOnce(app);
  });

  it("writes exactly the same objects again after a run that stopped between its writes, less what was erased meanwhile", async () => {
    const app = await makeApp();
    const days = [5, 6, 7].map((d) => NOW * 1000 - d * DAY);
    await insertAll(db, [
      ...Array.from({ length: 20 }, (_, i) => event(app.num, { timestamp: days[i % 2]! + i })),
      event(app.num, { timestamp: days[2]! }), // alone in its partition
      event(app.num, { timestamp: days[0]! + 99 }),
    ]);
    const before = (await readStorageState(db)).archivedThrough;
    // The third put lands, then the isolate is gone: three objects in R2, none live, the range recorded.
    const { bucket } = meteredBucket(env.ARCHIVE, (key, n) =>
      n === 3 && key.includes(app.appId) ? "after" : undefined,
    );
    const crashed = await maintain({ ...settings(), ARCHIVE: bucket }).catch((err: unknown) => err);
    expect(String(crashed)).toMatch(/isolate gone/);
    expect((await readStorageState(db)).archivedThrough).toBe(before);
    const pending = await manifest("pending");
    expect(pending.map((o) => o.date).sort()).toEqual(days.map(dateOf).sort());
    const written = new Map<string, ArrayBuffer>();
    for (const o of pending) {
      const got = await env.ARCHIVE.get(o.key);
      if (got) written.set(o.key, await got.arrayBuffer());
    }
    expect(written.size).toBe(3);

    // Meanwhile the lone event of the third date is erased from D1.
    await env.DB.prepare("DELETE FROM events WHERE app = ? AND timestamp = ?").bind(app.num, days[2]).run();
    const redo = await maintain(settings());
    expect(redo.archive.resumed).toBe(true);
    const live = await manifest("live");
    for (const o of pending) {
      const again = await env.ARCHIVE.get(o.key);
      if (o.date === dateOf(days[2]!)) {
        expect(again, "an object left without rows goes").toBeNull();
        expect(live.some((l) => l.key === o.key)).toBe(false);
      } else {
        expect(new Uint8Array(await again!.arrayBuffer())).toEqual(new Uint8Array(written.get(o.key)!));
        expect(live.some((l) => l.key === o.key)).toBe(true);
      }
    }
    await expectArchivedOnce(app);
  });
});

describe("each run is bounded", () => {
  it("writes a request's 1,000 partitions over several runs, at most RUN_LIMITS.objects per run and RANGE_LIMITS.partitions per range", async () => {
    const app = await makeApp();
    const rows = Array.from({ length: 1000 }, (_, i) => event(app.num, { timestamp: NOW * 1000 - (i + 10) * DAY }));
    await insertAll(db, rows);
    const target = await maxId();
    let runs = 0;
    for (let last = (await readStorageState(db)).archivedThrough; last < target; runs++) {
      expect(runs).toBeLessThan(10);
      const { bucket, meter } = meteredBucket();
      const run = await maintain({ ...settings(), ARCHIVE: bucket });
      expect(meter.puts).toBeLessThanOrEqual(RUN_LIMITS.objects);
      expect(run.archive.largest.objects).toBeLessThanOrEqual(RANGE_LIMITS.partitions);
      expect(run.archive.archivedThrough, "the watermark moves every run").toBeGreaterThan(last);
      last = run.archive.archivedThrough;
    }
    expect(runs).toBeGreaterThanOrEqual(Math.ceil(1000 / RUN_LIMITS.objects));
    const objects = (await manifest("live")).filter((o) => o.app === app.appId);
    expect(objects).toHaveLength(1000);
    expect(new Set(objects.map((o) => o.date)).size).toBe(1000);
    expect(objects.every((o) => o.events === 1)).toBe(true);
  }, 240_000);

  it("archives 10,000 events of 32 KiB each in ranges of at most RANGE_LIMITS.bytes, over several runs", async () => {
    const app = await makeApp();
    const pad = "x".repeat(32 * 1024 - 20);
    for (let i = 0; i < 10_000; i += 250)
      await insertAll(
        db,
        Array.from({ length: 250 }, (_, k) =>
          event(app.num, { data: JSON.stringify({ i: i + k, pad }), timestamp: NOW * 1000 - (i % 7) * HOUR }),
        ),
      );
    const target = await maxId();
    let runs = 0;
    for (let done = false; !done; runs++) {
      expect(runs).toBeLessThan(20);
      const run = await maintain(settings());
      expect(run.archive.largest.bytes).toBeLessThanOrEqual(RANGE_LIMITS.bytes);
      expect(run.archive.bytes).toBeLessThanOrEqual(RUN_LIMITS.bytes + RANGE_LIMITS.bytes);
      done = run.archive.archivedThrough === target;
    }
    expect(runs).toBeGreaterThan(1);
    const objects = (await manifest("live")).filter((o) => o.app === app.appId);
    expect(objects.reduce((n, o) => n + o.events, 0)).toBe(10_000);
    // Spot-check: every row of a few objects is whole.
    for (const o of objects.slice(0, 3))
      for (const e of await objectEvents(o.key)) expect(e.data.length).toBeGreaterThan(32_000);
  }, 300_000);
});
