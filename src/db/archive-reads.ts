// The archive's reads of the events table: how far ids reach, and the rows of an id range a bounded
// page at a time. The archive (maintain/archive.ts) reads D1's events only through these.
import { sql } from "drizzle-orm";
import type { Db } from "./db";
import { eventColumns, type StoredEvent } from "./event-reads";
import { events } from "./schema";

/** The highest event id stored, 0 when there is none. */
export async function maxEventId(db: Db): Promise<number> {
  const [top] = await db.select({ maxId: sql<number>`coalesce(max(${events.id}), 0)` }).from(events);
  return top?.maxId ?? 0;
}

/** An event's size as the archive's bounds count it: the bytes of its text columns, + 100 for the rest (ids, times, context). */
const rowBytes = sql`length(CAST(${events.data} AS BLOB)) + length(CAST(${events.sessionId} AS BLOB)) + length(CAST(${events.category} AS BLOB)) + length(CAST(${events.name} AS BLOB)) + 100`;

/**
 * The events with `afterId < id <= throughId`, in id order: at most `limit` rows, and cut before the
 * row that would take their total size (rowBytes above) past `maxBytes`, but never fewer than one
 * row. Every row as eventColumns selects it (its context's JSON included). Fewer than `limit` rows
 * means either the range is exhausted or the byte bound cut it: callers continue after the last id.
 */
export async function eventsInIdRange(
  db: Db,
  { afterId, throughId, limit, maxBytes }: { afterId: number; throughId: number; limit: number; maxBytes: number },
): Promise<StoredEvent[]> {
  // The page's ids and sizes first (a bounded subquery), then the rows of those that fit: a result
  // stays under maxBytes however large the events are (D1 caps a result's size).
  const fits = sql`${events.id} IN (
    SELECT id FROM (
      SELECT id, sum(bytes) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS running, bytes FROM (
        SELECT ${events.id} AS id, ${rowBytes} AS bytes FROM ${events}
        WHERE ${events.id} > ${afterId} AND ${events.id} <= ${throughId} ORDER BY ${events.id} LIMIT ${limit}
      )
    ) WHERE running <= ${maxBytes} OR running = bytes
  )`;
  return db.select(eventColumns).from(events).where(fits).orderBy(events.id);
}
