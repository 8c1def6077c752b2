// Taking events out of D1: a whole generation at once (no row writes), the oldest rows of one when
// the byte budget needs less than a generation, and the dictionary rows no live event points at.
// Only archived events go (ids up to the archive watermark), each with its counts.
import { and, asc, eq, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Db } from "./db";
import { forgetGenerations, generationTable, isMissingGeneration, tableName } from "./generations";
import { countStatements, zeroCountDeletes } from "./roll-ups";
import { contexts, contextValueCounts, eventTypes, generationApps, generations, sessions, typeCounts } from "./schema";

/** The database's size as D1 measures it against its limit: the bytes a statement reports after it ran. */
export async function databaseBytes(db: Db): Promise<number> {
  const result = (await db.run(sql`SELECT 1`)) as unknown as { meta: { size_after: number } };
  return result.meta.size_after;
}

/** Events in each live generation, from the counts (the all-applications, any-type rows). */
export async function eventsPerGeneration(db: Db): Promise<Map<number, number>> {
  const rows = await db
    .select({ gen: typeCounts.gen, n: sql<number>`sum(${typeCounts.n})` })
    .from(typeCounts)
    .where(and(eq(typeCounts.app, -1), eq(typeCounts.category, ""), eq(typeCounts.name, "")))
    .groupBy(typeCounts.gen);
  return new Map(rows.map((r) => [r.gen, Number(r.n)]));
}

export interface GenerationRow {
  gen: number;
  maxId: number;
}

export function listGenerations(db: Db): Promise<GenerationRow[]> {
  return db.select({ gen: generations.gen, maxId: generations.maxId }).from(generations).orderBy(asc(generations.gen));
}

/**
 * Drops a generation's table and its counts, if every event in it is archived (its max id at or
 * below `watermark`), in one transaction: a consumer that stored one more event in it since it was
 * listed leaves its row's max id above the watermark, the guard fails and nothing is dropped.
 * True when it was dropped.
 */
export async function dropGeneration(db: Db, gen: number, watermark: number): Promise<boolean> {
  const g = sql.raw(String(gen));
  const w = sql.raw(String(Math.floor(watermark)));
  try {
    await db.batch([
      db.run(sql`DELETE FROM ${generations} WHERE gen = ${g} AND max_id <= ${w}`),
      // No row deleted (not archived, or another run dropped it): json('…') fails the batch.
      db.run(sql`SELECT CASE WHEN changes() = 0 THEN json('not archived yet') END`),
      db.run(sql.raw(`DROP TABLE IF EXISTS ${tableName(gen)}`)),
      db.run(sql`DELETE FROM ${typeCounts} WHERE gen = ${g}`),
      db.run(sql`DELETE FROM ${contextValueCounts} WHERE gen = ${g}`),
      db.run(sql`DELETE FROM ${generationApps} WHERE gen = ${g}`),
    ]);
  } catch (err) {
    if (/malformed JSON/i.test(String(err instanceof Error ? (err.cause ?? err) : err))) return false;
    throw err;
  } finally {
    forgetGenerations();
  }
  return true;
}

/**
 * Deletes the `n` oldest archived events of one generation (by timestamp, across the applications
 * given), each with its counts, in one transaction. Returns how many went.
 */
export async function deleteOldest(
  db: Db,
  gen: number,
  apps: number[],
  watermark: number,
  n: number,
  before = Number.MAX_SAFE_INTEGER,
) {
  const t = generationTable(gen);
  let keys: { app: number; timestamp: number; id: number }[];
  try {
    // Per application, the table's own order; the oldest n of them all.
    const ranges = apps.map((app) =>
      db
        .select({ app: t.app, timestamp: t.timestamp, id: t.id })
        .from(t)
        .where(and(eq(t.app, app), sql`${t.timestamp} < ${before}`, sql`+${t.id} <= ${watermark}`))
        .orderBy(asc(t.timestamp), asc(t.id))
        .limit(n),
    );
    const [first, ...rest] = ranges;
    if (!first) return 0;
    const results = rest.length === 0 ? [await first] : await db.batch([first, ...rest]);
    keys = (results as { app: number; timestamp: number; id: number }[][])
      .flat()
      .sort((a, b) => a.timestamp - b.timestamp || a.id - b.id)
      .slice(0, n);
  } catch (err) {
    if (isMissingGeneration(err)) return 0;
    throw err;
  }
  if (keys.length === 0) return 0;
  await db.batch(deleteKeysStatements(db, gen, keys));
  return keys.length;
}

/** The statements that take these rows of a generation out of the counts, then delete them. */
export function deleteKeysStatements(db: Db, gen: number, keys: { app: number; timestamp: number; id: number }[]) {
  const t = generationTable(gen);
  const json = JSON.stringify(keys.map((k) => [k.app, k.timestamp, k.id]));
  const doomed = sql`(${t.app}, ${t.timestamp}, ${t.id}) IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${json}))`;
  const [typeUncount, contextUncount] = countStatements(
    db,
    gen,
    sql`FROM (SELECT * FROM ${t} WHERE ${doomed}) AS e`,
    -1,
  );
  return [typeUncount!, contextUncount!, db.delete(t).where(doomed)] as const;
}

/**
 * Deletes the dictionary rows (sessions, event types, contexts) whose newest event was in a
 * generation that is gone, and the counts at zero. One statement each, against the generations
 * listed when it runs: a consumer that has just stored an event in a new (or re-created)
 * generation has listed it in the same transaction, so the rows that event uses stay.
 */
export async function deleteOrphans(db: Db) {
  const gone = (column: SQLiteColumn) => sql`${column} NOT IN (SELECT ${generations.gen} FROM ${generations})`;
  const results = await db.batch([
    db.delete(sessions).where(gone(sessions.gen)),
    db.delete(eventTypes).where(gone(eventTypes.gen)),
    // Never the newest row: its id would be handed out again, and readers cache what an id means.
    db.delete(contexts).where(and(gone(contexts.gen), sql`${contexts.id} < (SELECT max(id) FROM ${contexts})`)),
    ...zeroCountDeletes(db),
  ]);
  return (results as unknown as { meta: { changes: number } }[]).reduce((n, r) => n + (r.meta?.changes ?? 0), 0);
}

/** Deletes the dictionary rows of one session once none of its events is left (erasure). */
export function deleteSessionRows(db: Db, app: number, sessionId: string) {
  return db.delete(sessions).where(and(eq(sessions.app, app), eq(sessions.sessionId, sessionId)));
}
