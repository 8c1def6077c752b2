// The events table before migration 0011 (legacyEvents): read a chunk of its rows, newest first,
// as events to store again; then delete them. What the rebuild (maintain/rebuild.ts) moves.
import { desc, lte, sql } from "drizzle-orm";
import type { Db } from "./db";
import { generationTable, isMissingGeneration } from "./generations";
import { legacyEvents } from "./legacy-schema";
import { listGenerations } from "./purge";
import { contexts, type NewEventRow } from "./schema";

/** Up to `limit` legacy rows with ids up to `through`, newest first, with the id each keeps. */
export async function legacyChunk(db: Db, through: number, limit: number) {
  const rows = await db
    .select({
      id: legacyEvents.id,
      app: legacyEvents.app,
      eventId: legacyEvents.eventId,
      sessionId: legacyEvents.sessionId,
      category: legacyEvents.category,
      name: legacyEvents.name,
      data: legacyEvents.data,
      timestamp: legacyEvents.timestamp,
      receivedAt: legacyEvents.receivedAt,
      contextBody: sql<string | null>`(SELECT body FROM ${contexts} WHERE ${contexts.id} = ${legacyEvents.context})`,
      country: legacyEvents.country,
      device: legacyEvents.device,
    })
    .from(legacyEvents)
    .where(lte(legacyEvents.id, through))
    .orderBy(desc(legacyEvents.id))
    .limit(limit);
  return rows.map(({ id, ...row }) => ({ id, row: row as NewEventRow }));
}

/** The highest legacy id left (0: none). */
export async function legacyMaxId(db: Db): Promise<number> {
  const [row] = await db.select({ id: sql<number | null>`max(${legacyEvents.id})` }).from(legacyEvents);
  return row?.id ?? 0;
}

export function deleteLegacy(db: Db, ids: number[]) {
  return db
    .delete(legacyEvents)
    .where(sql`${legacyEvents.id} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`);
}

/**
 * The ids of these legacy events that a generation already holds (a run stopped between a chunk's
 * insert and its delete): through each generation's (event_id, app) index, one seek per event.
 */
export async function alreadyStored(db: Db, rows: { id: number; row: NewEventRow }[]): Promise<Set<number>> {
  const found = new Set<number>();
  if (rows.length === 0) return found;
  const pairs = JSON.stringify(rows.map((r) => [r.row.eventId.replace(/-/g, ""), r.row.app]));
  for (const { gen } of await listGenerations(db)) {
    const t = generationTable(gen);
    try {
      const hits = await db
        .select({ id: t.id })
        .from(t)
        .where(sql`(${t.eventId}, ${t.app}) IN (SELECT unhex(value ->> 0), value ->> 1 FROM json_each(${pairs}))`);
      for (const h of hits) found.add(h.id);
    } catch (err) {
      if (!isMissingGeneration(err)) throw err;
    }
  }
  return found;
}
