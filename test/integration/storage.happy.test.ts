// Storage that never fills (issue 8): retention that purges the hot window only behind the archive,
// keeping counts exact; the cron; the export across the tiers; health. The archive itself (issue 17):
// archive.happy, compaction.happy, export-maintenance.happy.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { countEvents } from "../../src/db/event-counts";
import { insertAll } from "../../src/db/event-insert";
import type { NewEventRow } from "../../src/db/schema";
import { readStorageState } from "../../src/db/storage-state";
import worker from "../../src/index";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, formatTimestamp, HOUR } from "../../src/shared/timestamp";
import { api, appNum, bearer, makeApp } from "../helpers/api";
import { liveEvents, meteredBucket } from "../helpers/archive";
import { storedCount, storedMaxId, storedRows } from "../helpers/stored";

const db = drizzle(env.DB);
const NOW = Date.now();
const settings = (overrides: Partial<Env> = {}): Env => ({ ...env, ...overrides });

/** Application numbers of the ids these tests use, and back (rows carry numbers; archives and reads, ids). */
const apps = new Map<string, number>();
const idOf = (num: number) => [...apps].find(([, n]) => n === num)?.[0] ?? null;
beforeAll(async () => {
  for (const id of ["tier-app", "tier-a", "tier-b", "another-app"]) apps.set(id, await appNum(id));
});
const num = (id: string) => apps.get(id)!;

let serial = 0;
function event(overrides: Partial<NewEventRow> = {}): NewEventRow {
  serial += 1;
  return {
    eventId: crypto.randomUUID(),
    sessionId: `tier-session-${serial % 7}`,
    category: "tier",
    name: `n${serial % 3}`,
    data: JSON.stringify({ serial }),
    timestamp: NOW * 1000 - 2 * HOUR,
    receivedAt: NOW * 1000,
    app: num("tier-app"),
    ...overrides,
  };
}

/** Every event of the live archive objects, by application and event id, with how many objects hold each. */
async function archived() {
  const seen = new Map<string, { copies: number; key: string }>();
  for (const { key, event } of (await liveEvents()).rows) {
    const id = `${event.application}/${event.eventId}`;
    seen.set(id, { copies: (seen.get(id)?.copies ?? 0) + 1, key });
  }
  return seen;
}

describe("retention", () => {
  it("purges events older than HOT_DAYS once archived, keeps newer ones, and keeps count exact", async () => {
    const old = Array.from({ length: 80 }, (_, i) =>
      event({ category: "retained", timestamp: NOW * 1000 - 40 * DAY - i * HOUR }),
    );
    const fresh = Array.from({ length: 20 }, (_, i) =>
      event({ category: "retained", timestamp: NOW * 1000 - 5 * DAY - i * HOUR }),
    );
    await insertAll(db, [...old, ...fresh]);
    // The newest row (highest id) goes like any other: ids are never handed out again (storage_state.next_id).
    await insertAll(db, [event({ category: "retained", timestamp: NOW * 1000 - 50 * DAY })]);
    const run = await maintain(settings());
    expect(run.purge.done).toBe(true);
    const left = await storedRows<{ timestamp: number }>("category = 'retained'");
    const cutoff = NOW * 1000 - 30 * DAY;
    expect(left.filter((r) => r.timestamp >= cutoff)).toHaveLength(20);
    expect(left.filter((r) => r.timestamp < cutoff)).toHaveLength(0);
    for (const f of [
      { category: "retained" },
      { category: "retained", name: "n1" },
      {},
      { after: cutoff - 60 * DAY, before: cutoff },
    ]) {
      const sqlWhere = [
        f.category ? `category = '${f.category}'` : "1",
        "name" in f ? `name = '${f.name}'` : "1",
        "after" in f ? `timestamp BETWEEN ${f.after} AND ${f.before}` : "1",
      ].join(" AND ");
      const plain = await storedCount(sqlWhere);
      expect(await countEvents(db, f), JSON.stringify(f)).toBe(plain);
    }
    // Everything purged is in the archive.
    const lines = await archived();
    for (const e of old) expect(lines.has(`${idOf(e.app)}/${e.eventId}`), e.eventId).toBe(true);
    const state = await readStorageState(db);
    expect(state.purgedBefore).toBe(run.purge.cutoff);
  });

  it("never deletes an event that is not archived yet", async () => {
    const old = Array.from({ length: 30 }, () => event({ category: "unarchived", timestamp: NOW * 1000 - 60 * DAY }));
    await insertAll(db, [...old, event({ category: "unarchived-tail" })]);
    const count = () => storedCount("category = 'unarchived'");
    // A run whose archive step has no time left: nothing new is archived, so nothing new may be purged.
    let clock = NOW;
    const stalled = await maintain(settings(), () => (clock += 30_000));
    expect(stalled.archive.ranges).toBe(0);
    expect(await count()).toBe(30);
    // A run whose archive step fails (R2 refuses every write): the others run, and purge nothing unarchived.
    const { bucket: refusing } = meteredBucket(env.ARCHIVE, () => "before");
    const failed = await maintain(settings({ ARCHIVE: refusing })).catch((err: unknown) => err);
    expect(String(failed)).toMatch(/put .* failed/);
    expect(await count()).toBe(30);
    // The next run archives them, then purges them.
    const run = await maintain(settings());
    expect(run.archive.done).toBe(true);
    expect(await count()).toBe(0);
    const lines = await archived();
    for (const e of old) expect(lines.get(`${idOf(e.app)}/${e.eventId}`)?.copies).toBe(1);
  });

  it("bounds the error log by age", async () => {
    const now = NOW * 1000;
    await env.DB.batch(
      [now - 45 * DAY, now - 31 * DAY, now - DAY].map((at, i) =>
        env.DB.prepare(
          "INSERT INTO error_log (kind, occurred_at, payload, reasons, source) VALUES ('invalid_event', ?, '{}', '[]', ?)",
        ).bind(at, `retention-${i}`),
      ),
    );
    await maintain(settings());
    const left = await env.DB.prepare(
      "SELECT source FROM error_log WHERE source LIKE 'retention-%' ORDER BY source",
    ).all<{ source: string }>();
    expect(left.results.map((r) => r.source)).toEqual(["retention-2"]);
  });
});

describe("scheduled()", () => {
  it("runs the maintenance from the cron trigger", async () => {
    await insertAll(db, [event({ category: "cron" })]);
    const controller = createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    await worker.scheduled(controller, settings(), ctx);
    await waitOnExecutionContext(ctx);
    const state = await readStorageState(db);
    expect(state.archivedMaxId).toBe(await storedMaxId());
  });

  it("reports a failure to Sentry tagged with the cron, and throws", async () => {
    await insertAll(db, [event({ category: "cron-fail" })]);
    const marker = `archive down ${crypto.randomUUID()}`;
    // Every other method of the real bucket still works: only put fails.
    const broken = new Proxy(env.ARCHIVE, {
      get(target, prop) {
        if (prop === "put") return () => Promise.reject(new Error(marker));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const controller = createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    await expect(worker.scheduled(controller, settings({ ARCHIVE: broken }), ctx)).rejects.toThrow(marker);
    await waitOnExecutionContext(ctx);
    const deadline = Date.now() + 10_000;
    let envelope: string | undefined;
    while (!envelope && Date.now() < deadline) {
      const received = (await (await fetch(env.SENTRY_RECEIVER)).json()) as { body: string }[];
      envelope = received.map((e) => e.body).find((b) => b.includes(marker));
      if (!envelope) await new Promise((r) => setTimeout(r, 100));
    }
    expect(envelope, "an envelope reached Sentry").toBeDefined();
    expect(envelope).toContain('"cron":"*/5 * * * *"');
    expect(envelope).toContain('"handler":"scheduled"');
  });
});

describe("GET /api/export", () => {
  const exportOf = async (query: string, key?: string) => {
    const res = await api(`/api/export?${query}`, key ? { headers: bearer(key) } : {});
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    return text === ""
      ? []
      : text
          .trimEnd()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it("streams every matching event once across the boundary: purged (archive only), hot and archived, not yet archived", async () => {
    const app = await makeApp();
    const at = (daysAgo: number, i: number) => NOW * 1000 - daysAgo * DAY - i * 1000;
    const purged = Array.from({ length: 40 }, (_, i) =>
      event({ app: app.num, category: "exported", timestamp: at(40, i) }),
    );
    const hot = Array.from({ length: 40 }, (_, i) =>
      event({ app: app.num, category: "exported", timestamp: at(3, i) }),
    );
    const other = Array.from({ length: 10 }, (_, i) =>
      event({ app: num("another-app"), category: "exported", timestamp: at(3, i) }),
    );
    await insertAll(db, [...purged, ...hot, ...other]);
    await insertAll(db, [event({ category: "filler" })]);
    await maintain(settings());
    for (const e of purged) expect(await storedCount("event_id = lower(?)", [e.eventId]), "purged from D1").toBe(0);
    const late = Array.from({ length: 5 }, (_, i) =>
      event({ app: app.num, category: "exported", timestamp: at(2, i) }),
    );
    await insertAll(db, late); // above the watermark: only in D1

    // Two ranges (an export covers at most 31 days), meeting without overlap.
    const split = NOW * 1000 - 20 * DAY;
    const ranges = [
      `timestamp_after=${formatTimestamp(NOW * 1000 - 41 * DAY)}&timestamp_before=${formatTimestamp(split)}`,
      `timestamp_after=${formatTimestamp(split + 1)}&timestamp_before=${formatTimestamp(NOW * 1000)}`,
    ];
    const both = async (extra: string, key?: string) => [
      ...(await exportOf(`${ranges[0]}${extra}`, key)),
      ...(await exportOf(`${ranges[1]}${extra}`, key)),
    ];
    const all = await both("&category=exported");
    const ids = all.map((l) => l.event_id as string);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual([...purged, ...hot, ...other, ...late].map((e) => e.eventId).sort());
    // A read key scoped to one application exports only its events.
    const scoped = await both("&category=exported", app.readKey);
    expect(scoped.map((l) => l.event_id as string).sort()).toEqual(
      [...purged, ...hot, ...late].map((e) => e.eventId).sort(),
    );
    expect(new Set(scoped.map((l) => l.application))).toEqual(new Set([app.appId]));
    // Inclusive bounds, to the microsecond, on archived lines too.
    const edge = purged[7]!;
    const exact = await exportOf(
      `timestamp_after=${formatTimestamp(edge.timestamp)}&timestamp_start=${formatTimestamp(edge.timestamp)}&timestamp_before=${formatTimestamp(edge.timestamp)}`,
    );
    expect(exact.map((l) => l.event_id)).toEqual([edge.eventId]);
    expect(exact[0]).toMatchObject({ session_id: edge.sessionId, category: "exported", data: JSON.parse(edge.data) });
  });

  it("needs a time range of at most EXPORT_MAX_DAYS and a read key", async () => {
    for (const [query, field] of [
      ["", "timestamp_after"],
      ["timestamp_after=2024-01-01", "timestamp_before"],
      ["timestamp_after=2024-01-01&timestamp_before=2024-03-01", "timestamp_before"],
    ] as const) {
      const res = await api(`/api/export?${query}`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: string; errors: { field: string }[] };
      expect(body.code).toBe("invalid_query");
      expect(body.errors.map((e) => e.field)).toContain(field);
    }
    expect(
      (
        await api("/api/export?timestamp_after=2024-01-01&timestamp_before=2024-01-02", {
          headers: { authorization: "" },
        })
      ).status,
    ).toBe(401);
    expect(
      (await api("/api/export?timestamp_after=2024-01-01&timestamp_before=2024-01-02", { method: "POST" })).status,
    ).toBe(405);
  });
});

describe("GET /api/health", () => {
  it("says without a key whether D1 answers, and the version, and nothing more", async () => {
    const res = await api("/api/health", { headers: { authorization: "" } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      status: "ok",
      service: "The Eye",
      version: expect.stringMatching(/^\d+\.\d+\.\d+/) as string,
      database: "ok",
    });
  });

  it("adds size, hot window, archive watermark and retention with a read key for every application", async () => {
    await insertAll(
      db,
      Array.from({ length: 70 }, (_, i) => event({ category: "health", timestamp: NOW * 1000 - i * HOUR })),
    );
    await maintain(settings());
    const res = await api("/api/health");
    expect(res.status).toBe(200);
    const { storage } = (await res.json()) as { storage: Record<string, Record<string, unknown>> };
    const state = await readStorageState(db);
    const all = await storedRows<{ timestamp: number; id: number }>();
    const top = {
      lo: Math.min(...all.map((r) => r.timestamp)),
      hi: Math.max(...all.map((r) => r.timestamp)),
      id: Math.max(...all.map((r) => r.id)),
    };
    expect(storage.database!.bytes).toBeGreaterThan(0);
    expect(storage.hot).toMatchObject({
      days: 30,
      oldest_event: formatTimestamp(top.lo),
      newest_event: formatTimestamp(top.hi),
    });
    expect(storage.archive).toMatchObject({
      watermark_id: state.archivedThrough,
      newest_id: top.id,
      backlog_events: top.id - state.archivedThrough,
    });
    expect(storage.error_log).toEqual({ days: 30 });
  });

  it("refuses a wrong key, and keeps storage details from a key scoped to one application", async () => {
    expect((await api("/api/health", { headers: bearer("eye_r_nope") })).status).toBe(401);
    const app = await makeApp();
    expect((await api("/api/health", { headers: bearer(app.writeKey) })).status).toBe(403);
    const scoped = (await (await api("/api/health", { headers: bearer(app.readKey) })).json()) as Record<
      string,
      unknown
    >;
    expect(scoped.storage).toBe("needs a read key for every application");
  });
});
