// Erasure's reads and deletes of the stored events: the rows one request names (a session of an
// application, or a list of its event ids), their span, and deleting them a chunk at a time with
// their counts and the request's audit counts in one transaction. Each generation is reached
// through its session index or its (event_id, app) index. maintain/erasure.ts reaches D1's events
// only through these.
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "./db";
import { type GenerationTable, generationTable, isMissingGeneration } from "./generations";
import { deleteKeysStatements, deleteSessionRows, listGenerations } from "./purge";
import { zeroCountDeletes } from "./roll-ups";
import { type ErasureRow, erasures, sessions } from "./schema";

type Target = Pick<ErasureRow, "kind" | "target">;

/** The condition on a generation's rows, or null when the target cannot be there (no such session). */
async function matchOf(db: Db, t: GenerationTable, e: Target, app: number) {
  if (e.kind !== "session")
    return sql`${t.eventId} IN (SELECT unhex(replace(value, '-', '')) FROM json_each(${e.target})) AND ${t.app} = ${app}`;
  const [row] = await db
    .select({ num: sessions.num })
    .from(sessions)
    .where(and(eq(sessions.app, app), eq(sessions.sessionId, e.target)));
  return row ? sql`${t.session} = ${row.num}` : null;
}

/**
 * How many rows of application number `app` the request names in D1, and their timestamps' span
 * (null when none); `app` undefined (the application never stored an event) names none.
 */
export async function erasureSpan(
  db: Db,
  e: Target,
  app: number | undefined,
): Promise<{ n: number; first: number | null; last: number | null }> {
  let first: number | null = null;
  let last: number | null = null;
  let n = 0;
  if (app === undefined) return { n, first, last };
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
  return { n, first, last };
}

/**
 * Deletes up to `chunk` of the rows the request names, in one transaction with their counts and the
 * request's own (erasures.d1_events, counted_events: every stored event is counted as it is
 * stored): a run cut short never counts a chunk twice. Ids are never handed out twice
 * (storage_state.next_id), so the newest row goes like any other. Returns how many rows it
 * deleted: 0 once none is left, and then a session's dictionary row (its id) goes too.
 */
export async function eraseChunk(
  db: Db,
  row: Pick<ErasureRow, "id" | "kind" | "target">,
  app: number | undefined,
  chunk: number,
): Promise<number> {
  if (app === undefined) return 0;
  for (const { gen } of await listGenerations(db)) {
    const t = generationTable(gen);
    const match = await matchOf(db, t, row, app);
    if (!match) break;
    let keys: { app: number; timestamp: number; id: number }[];
    try {
      keys = await db.select({ app: t.app, timestamp: t.timestamp, id: t.id }).from(t).where(match).limit(chunk);
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
        .where(eq(erasures.id, row.id)),
      ...deleteKeysStatements(db, gen, keys),
    ]);
    return keys.length;
  }
  if (row.kind === "session") await deleteSessionRows(db, app, row.target);
  return 0;
}

/** Hours whose events are all gone leave count rows of zero; they add nothing, and go (a scan of the counts). */
export async function dropEmptyCounts(db: Db): Promise<void> {
  const [types, values] = zeroCountDeletes(db);
  await db.batch([types!, values!]);
}
