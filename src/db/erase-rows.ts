// Erasure's D1 side: the rows one request names — a session's events, or a list of event ids, of
// one application — found through each generation's session or (event_id, app) index, and deleted
// a chunk at a time, each with its counts and the request's audit counts in one transaction.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./db";
import { type GenerationTable, generationTable, isMissingGeneration } from "./generations";
import { deleteKeysStatements, deleteSessionRows, listGenerations } from "./purge";
import { erasures, sessions } from "./schema";

export interface EraseTarget {
  kind: "session" | "events";
  /** The session id, or the event ids as a JSON array of UUIDs. */
  target: string;
}

/** The condition on a generation's rows, or null when the target cannot be there (no such session). */
async function matchOf(db: Db, t: GenerationTable, e: EraseTarget, app: number) {
  if (e.kind === "events")
    return sql`${t.app} = ${app} AND ${t.eventId} IN (SELECT unhex(replace(value, '-', '')) FROM json_each(${e.target}))`;
  const [row] = await db
    .select({ num: sessions.num })
    .from(sessions)
    .where(and(eq(sessions.app, app), eq(sessions.sessionId, e.target)));
  return row ? sql`${t.session} = ${row.num}` : null;
}

/** The first and last timestamp, and how many, of the target's events D1 holds. */
export async function storedSpan(db: Db, e: EraseTarget, app: number) {
  let first: number | null = null;
  let last: number | null = null;
  let n = 0;
  for (const { gen } of await listGenerations(db)) {
    const t = generationTable(gen);
    const match = await matchOf(db, t, e, app);
    if (!match) break;
    try {
      const [row] = await db
        .select({
          first: sql<number | null>`min(${t.timestamp})`,
          last: sql<number | null>`max(${t.timestamp})`,
          n: sql<number>`count(*)`,
        })
        .from(t)
        .where(match);
      if (!row || row.n === 0) continue;
      first = first === null ? row.first : Math.min(first, row.first!);
      last = last === null ? row.last : Math.max(last, row.last!);
      n += row.n;
    } catch (err) {
      if (!isMissingGeneration(err)) throw err;
    }
  }
  return { first, last, n };
}

/**
 * Deletes up to `limit` of the target's events, with their counts, adding them to request
 * `erasureId`'s audit in the same transaction (a run cut short never counts a chunk twice).
 * Returns how many went: 0 once none is left — then a session's own dictionary row goes too.
 */
export async function eraseChunk(db: Db, e: EraseTarget, app: number, erasureId: number, limit: number) {
  for (const { gen } of await listGenerations(db)) {
    const t = generationTable(gen);
    const match = await matchOf(db, t, e, app);
    if (!match) break;
    let keys: { app: number; timestamp: number; id: number }[];
    try {
      keys = await db.select({ app: t.app, timestamp: t.timestamp, id: t.id }).from(t).where(match).limit(limit);
    } catch (err) {
      if (isMissingGeneration(err)) continue;
      throw err;
    }
    if (keys.length === 0) continue;
    await db.batch([
      db
        .update(erasures)
        .set({
          d1Events: sql`${erasures.d1Events} + ${keys.length}`,
          countedEvents: sql`${erasures.countedEvents} + ${keys.length}`,
        })
        .where(eq(erasures.id, erasureId)),
      ...deleteKeysStatements(db, gen, keys),
    ]);
    return keys.length;
  }
  // Nothing left: the session's number goes, and with it its id (the dictionary's copy of it).
  if (e.kind === "session") await deleteSessionRows(db, app, e.target);
  return 0;
}
