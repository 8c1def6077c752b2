// The archive's building blocks against the real local D1 and runtime: D1 reads of an id range
// bounded in rows and bytes (src/db/archive-reads.ts), and the Parquet files (src/archive/parquet.ts):
// a row group never spans an hour, statistics prune by time and by session, every value comes back.
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import {
  type ArchivedEvent,
  compareUtf8,
  groupMayMatch,
  openParquet,
  parquetRows,
  ROW_GROUP_ROWS,
  writeParquet,
} from "../../src/archive/parquet";
import { renderArchived } from "../../src/archive/rows";
import { eventsInIdRange, maxEventId } from "../../src/db/archive-reads";
import { insertAll } from "../../src/db/event-insert";
import { renderEvent } from "../../src/db/render";
import { HOUR } from "../../src/shared/timestamp";

const db = drizzle(env.DB);

describe("eventsInIdRange", () => {
  it("returns an id range in id order, at most `limit` rows and `maxBytes`, never fewer than one row", async () => {
    const big = "y".repeat(30_000);
    await insertAll(
      db,
      Array.from({ length: 20 }, (_, i) => ({
        eventId: crypto.randomUUID(),
        sessionId: "s",
        category: "c",
        name: "n",
        data: JSON.stringify({ i, big }),
        timestamp: 1_000_000 + i,
        receivedAt: 0,
        app: 1,
      })),
    );
    const top = await maxEventId(db);
    const first = top - 20;
    const page = await eventsInIdRange(db, { afterId: first, throughId: top, limit: 1000, maxBytes: 100_000 });
    expect(page.map((r) => r.id)).toEqual([first + 1, first + 2, first + 3]);
    const one = await eventsInIdRange(db, { afterId: first, throughId: top, limit: 1000, maxBytes: 10 });
    expect(one.map((r) => r.id)).toEqual([first + 1]);
    const limited = await eventsInIdRange(db, { afterId: first + 5, throughId: top, limit: 4, maxBytes: 10_000_000 });
    expect(limited.map((r) => r.id)).toEqual([first + 6, first + 7, first + 8, first + 9]);
    expect(await eventsInIdRange(db, { afterId: top, throughId: top + 100, limit: 10, maxBytes: 1e6 })).toEqual([]);
  });
});

let seq = 0;
function archived(overrides: Partial<ArchivedEvent> = {}): ArchivedEvent {
  seq++;
  return {
    seq,
    eventId: crypto.randomUUID(),
    sessionId: `s-${seq % 50}`,
    category: "page",
    name: "view",
    timestamp: Date.UTC(2026, 10, 28, 10) * 1000 + seq * 997,
    receivedAt: Date.UTC(2026, 10, 28, 12) * 1000 + seq,
    data: JSON.stringify({ seq, path: "/a" }),
    application: "app_x",
    context: seq % 2 ? { country: "DE", continent: "EU", asn: 3320, browser: "Firefox", device: "desktop" } : null,
    ...overrides,
  };
}

describe("the Parquet files", () => {
  it("give every value back, to the microsecond, before 1970 and in any script too", async () => {
    const events = [
      archived(),
      archived({ timestamp: Date.UTC(1700, 0, 1) * 1000 + 123_456, sessionId: "sessão-😀", application: null }),
      archived({
        data: JSON.stringify({ deep: { list: [1, "ü", null] } }),
        context: { referrer_host: "example.com", utm_campaign: "winter" },
      }),
    ];
    const back: ArchivedEvent[] = [];
    for await (const group of parquetRows(writeParquet(events).buffer as ArrayBuffer)) back.push(...group);
    expect(back.sort((a, b) => a.seq - b.seq)).toEqual(events);
    // The line each renders is the line D1's row renders.
    for (const e of events)
      expect(renderArchived(e)).toBe(
        renderEvent({ ...e, contextBody: e.context ? JSON.stringify(e.context) : null }, e.application),
      );
  });

  it("never put two hours in one row group, and let statistics rule out the other hours and the other sessions", async () => {
    const at = (h: number, i: number, n: number) => Date.UTC(2026, 10, 28, 10 + h) * 1000 + Math.floor((i * HOUR) / n);
    const busy = Math.floor(2.5 * ROW_GROUP_ROWS);
    const events = [
      ...Array.from({ length: busy }, (_, i) => archived({ timestamp: at(0, i, busy) })),
      ...Array.from({ length: 100 }, (_, i) => archived({ timestamp: at(1, i, 100) })),
      ...Array.from({ length: 100 }, (_, i) => archived({ timestamp: at(2, i, 100) })),
    ];
    const file = writeParquet(events).buffer as ArrayBuffer;
    const { metadata, groups } = openParquet(file);
    // The busy hour in three row groups of disjoint session ranges, then one for each quiet hour.
    expect(groups.map((g) => g.end - g.start)).toEqual([
      ROW_GROUP_ROWS,
      ROW_GROUP_ROWS,
      busy - 2 * ROW_GROUP_ROWS,
      100,
      100,
    ]);
    const hour = Date.UTC(2026, 10, 28, 11) * 1000;
    const byTime = groups.filter((g) => groupMayMatch(g.group, metadata, { after: hour, before: hour + HOUR - 1 }));
    expect(byTime.map((g) => g.start)).toEqual([busy]);
    const bySession = groups.filter((g) => groupMayMatch(g.group, metadata, { sessionId: "s-7" }));
    expect(bySession.filter((g) => g.start < busy).length).toBeLessThanOrEqual(2);
    // What the statistics leave in holds every match.
    const found: ArchivedEvent[] = [];
    for await (const part of parquetRows(file, { sessionId: "s-7" })) found.push(...part);
    expect(found.map((e) => e.seq).sort()).toEqual(
      events
        .filter((e) => e.sessionId === "s-7")
        .map((e) => e.seq)
        .sort(),
    );
  });

  it("order strings as Parquet's statistics do (by code point)", () => {
    expect(compareUtf8("a", "b")).toBeLessThan(0);
    // U+FFFD sorts below U+1F600 in UTF-8, above its surrogates in UTF-16.
    expect(compareUtf8("\ufffd", "😀")).toBeLessThan(0);
    expect("\ufffd" < "😀").toBe(false);
  });
});
