// The archive written before the manifest (issue 17): gzip NDJSON objects in hour partitions, named
// by the first id of a block. The first archive run takes the watermark of that moment as where
// they end, archives the ids above it as Parquet (deleting the objects of the block that was still
// growing, whose ids it archives again), and the export and erasure still read the older objects.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { archiveLines, legacyObjectName, legacyPartitionOf, putLines } from "../../src/archive/objects";
import { readArchiveState } from "../../src/db/archive-manifest";
import { insertAll, type NewContextEventRow } from "../../src/db/event-insert";
import { renderEvent } from "../../src/db/render";
import { maintain } from "../../src/maintain/scheduled";
import { DAY, formatTimestamp, HOUR } from "../../src/shared/timestamp";
import { api, bearer, makeApp } from "../helpers/api";
import { copiesInR2, liveEvents } from "../helpers/archive";

const db = drizzle(env.DB);
const NOW = Date.now();

describe("the archive written before the manifest", () => {
  let app: Awaited<ReturnType<typeof makeApp>>;
  const session = `legacy-${crypto.randomUUID()}`;
  let rows: (NewContextEventRow & { id: number })[] = [];
  let openBlock: string[] = [];

  beforeAll(async () => {
    app = await makeApp();
    // 60 events over six hours, 40 days old; the older code sealed ids up to 50 and wrote the growing block 51–60.
    const sent = Array.from({ length: 60 }, (_, i) => ({
      eventId: crypto.randomUUID(),
      sessionId: i % 4 === 0 ? session : `other-${i % 3}`,
      category: "legacy",
      name: "view",
      data: JSON.stringify({ i }),
      timestamp: NOW * 1000 - 40 * DAY + (i % 6) * HOUR,
      receivedAt: NOW * 1000 - 40 * DAY,
      app: app.num,
    }));
    await insertAll(db, sent);
    const ids = await env.DB.prepare("SELECT id FROM events WHERE app = ? ORDER BY id")
      .bind(app.num)
      .all<{ id: number }>();
    rows = sent.map((r, i) => ({ ...r, id: ids.results[i]!.id }));
    const first = rows[0]!.id;
    const blocks = new Map<string, string[]>();
    for (const r of rows) {
      const block = r.id < first + 50 ? first : first + 50;
      const key = legacyObjectName(legacyPartitionOf(app.appId, r.timestamp), block);
      blocks.set(key, [...(blocks.get(key) ?? []), renderEvent({ ...r, contextBody: null }, app.appId)]);
    }
    for (const [key, lines] of blocks) await putLines(env.ARCHIVE, key, lines);
    openBlock = [...blocks.keys()].filter((k) => k.endsWith(`part-${String(first + 50).padStart(16, "0")}.ndjson.gz`));
    expect(openBlock.length).toBeGreaterThan(0);
    await env.DB.prepare("UPDATE storage_state SET archived_through = ?, archived_max_id = ? WHERE id = 1")
      .bind(first + 49, first + 59)
      .run();
    await insertAll(db, [{ ...sent[0]!, eventId: crypto.randomUUID(), app: 0, timestamp: NOW * 1000 }]);
  });

  it("is taken as it was: the first run archives the ids above its watermark as Parquet and deletes the growing block's objects", async () => {
    await maintain({ ...env, HOT_DAYS: "100000" });
    expect(await readArchiveState(db)).toMatchObject({ legacyThrough: rows[49]!.id, legacyOpenThrough: rows[59]!.id });
    for (const key of openBlock) expect(await env.ARCHIVE.head(key), key).toBeNull();
    const parquet = (await liveEvents(`events/app_id=${app.appId}/`)).rows.map((r) => r.event.seq);
    expect(parquet.sort((a, b) => a - b)).toEqual(rows.slice(50).map((r) => r.id));
    // Every event is in R2 once: the first 50 as NDJSON lines, the rest as Parquet rows.
    const copies = await copiesInR2(() => true, `events/app_id=${app.appId}/`);
    expect([...copies.values()].reduce((a, b) => a + b, 0)).toBe(60);
  });

  it("is read by the export, each event once", async () => {
    await maintain(env); // purges the 40-day-old events: the export reads them from R2 alone
    const left = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE app = ?")
      .bind(app.num)
      .first<{ n: number }>();
    expect(left!.n).toBe(0);
    const res = await api(
      `/api/export?timestamp_after=${formatTimestamp(NOW * 1000 - 41 * DAY)}&timestamp_before=${formatTimestamp(NOW * 1000 - 39 * DAY)}`,
      { headers: bearer(app.readKey) },
    );
    const lines = (await res.text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event_id: string; data: unknown });
    expect(lines.map((l) => l.event_id).sort()).toEqual(rows.map((r) => r.eventId).sort());
  });

  it("is erased from, in place, as the Parquet objects are", async () => {
    const { id } = (await env.DB.prepare(
      "INSERT INTO erasures (app_id, kind, target, requested_at) VALUES (?, 'session', ?, 0) RETURNING id",
    )
      .bind(app.appId, session)
      .first<{ id: number }>())!;
    for (let i = 0; i < 5; i++) {
      await maintain(env);
      if ((await env.DB.prepare("SELECT status FROM erasures WHERE id = ?").bind(id).first("status")) === "done") break;
    }
    const audit = await env.DB.prepare("SELECT status, archive_events FROM erasures WHERE id = ?").bind(id).first();
    expect(audit).toEqual({ status: "done", archive_events: 15 });
    expect(await copiesInR2((e) => e.session_id === session, `events/app_id=${app.appId}/`)).toEqual(new Map());
    const kept = await copiesInR2((e) => e.session_id !== session, `events/app_id=${app.appId}/`);
    expect([...kept.values()].reduce((a, b) => a + b, 0)).toBe(45);
    for (const key of kept.keys())
      if (key.endsWith(".ndjson.gz"))
        for await (const line of archiveLines(env.ARCHIVE, key)) expect(line).not.toContain(session);
  });
});
