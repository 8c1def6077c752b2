// Events in arrival order (by id), for the archive and the export: generation tables have no
// index by id, so each consumer batch leaves an arrivals row naming where its events are, until the
// archive has them (db/event-insert.ts). Ids grow in arrival order and are never handed out twice.
import { asc, eq, gt, lte, sql } from "drizzle-orm";
import type { Db } from "./db";
import { dataBytesByKeys, type EventFilters, eventsByKeys, matches, type StoredEvent } from "./event-reads";
import { arrivals, storageState } from "./schema";

type Key = [gen: number, app: number, timestamp: number, id: number];

/** The highest id handed out so far (0 before the first event). */
export async function maxEventId(db: Db): Promise<number> {
  const [row] = await db.select({ next: storageState.nextId }).from(storageState).where(eq(storageState.id, 1));
  return (row?.next ?? 1) - 1;
}

/**
 * The keys of the events with ids above `afterId`, in id order, from at most `batches` arrival rows
 * (more when that many cannot settle anything). Rows may overlap in ids (a rebuild copies old events
 * by generation), so only ids below the next row's first id are complete, and only those come back.
 */
async function keysAbove(db: Db, afterId: number, batches: number): Promise<{ keys: Key[]; more: boolean }> {
  for (let n = batches; ; n *= 2) {
    const rows = await db
      .select({ firstId: arrivals.firstId, keys: arrivals.keys })
      .from(arrivals)
      .where(gt(arrivals.lastId, afterId))
      .orderBy(asc(arrivals.firstId))
      .limit(n + 1);
    const more = rows.length > n;
    const complete = more ? rows[n]!.firstId - 1 : Number.POSITIVE_INFINITY;
    const keys = rows
      .slice(0, n)
      .flatMap((r) => JSON.parse(r.keys) as Key[])
      .filter((k) => k[3] > afterId && k[3] <= complete)
      .sort((a, b) => a[3] - b[3]);
    if (keys.length > 0 || !more) return { keys, more };
  }
}

/** An event's size as the archive's bounds count it: its data's bytes, + 200 for the rest (ids, times, its dictionaries' values). */
const ROW_OVERHEAD = 200;

/**
 * The events with `afterId < id <= throughId` that D1 still holds, in id order: at most `limit`
 * rows, and cut before the row that would take their total size (ROW_OVERHEAD above) past
 * `maxBytes`, but never fewer than one row. Fewer than `limit` rows means either the range is
 * exhausted or the byte bound cut it: callers continue after the last id.
 */
export async function eventsInIdRange(
  db: Db,
  { afterId, throughId, limit, maxBytes }: { afterId: number; throughId: number; limit: number; maxBytes: number },
): Promise<StoredEvent[]> {
  const wanted: Key[] = [];
  for (let after = afterId; wanted.length < limit; ) {
    const { keys, more } = await keysAbove(db, after, 50);
    const within = keys.filter((k) => k[3] <= throughId);
    wanted.push(...within.slice(0, limit - wanted.length));
    if (!more || within.length < keys.length || keys.length === 0) break;
    after = keys.at(-1)![3];
  }
  if (wanted.length === 0) return [];
  // The page's sizes first (a small result), then the rows of those that fit: a result stays
  // under maxBytes however large the events are (D1 caps a result's size).
  const sizes = await dataBytesByKeys(db, wanted);
  let total = 0;
  const fit: Key[] = [];
  for (const k of wanted) {
    const size = sizes.get(k[3]);
    if (size === undefined) continue; // erased or purged since the arrival was logged
    total += size + ROW_OVERHEAD;
    if (fit.length > 0 && total > maxBytes) break;
    fit.push(k);
  }
  return eventsByKeys(db, fit);
}

/**
 * Events above an id that match the filters, in id order, at most `limit`: the export's read of
 * what the archive does not hold yet. It costs the rows above the watermark, however wide the range.
 */
export async function listAboveId(db: Db, f: EventFilters, afterId: number, limit: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = afterId;
  for (;;) {
    const { keys, more } = await keysAbove(db, after, 20);
    if (keys.length === 0) return out;
    // A page's worth of keys at a time: without filters the first read is the page.
    for (let i = 0; i < keys.length; i += limit) {
      out.push(...(await eventsByKeys(db, keys.slice(i, i + limit))).filter((e) => matches(e, f)));
      if (out.length >= limit) return out.slice(0, limit);
    }
    if (!more) return out;
    after = keys.at(-1)![3];
  }
}

/** The arrival rows the archive has passed: every id in them is archived. */
export function deleteArrivalsThrough(db: Db, watermark: number) {
  return db.delete(arrivals).where(lte(arrivals.lastId, watermark));
}

/** How many events wait for the archive (ids above the watermark that D1 stored). */
export async function arrivalsBacklog(db: Db, watermark: number): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`coalesce(sum(json_array_length(${arrivals.keys})), 0)` })
    .from(arrivals)
    .where(gt(arrivals.lastId, watermark));
  return Number(row?.n ?? 0);
}
