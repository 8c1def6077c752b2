// Erasure's reads and deletes of the events table: the rows one request names (a session of an
// application, or a list of its event ids), their span, and deleting them a chunk at a time with
// their counts. maintain/erasure.ts reaches D1's events only through these.
import { type SQL, sql } from "drizzle-orm";
import type { Db } from "./db";
import { uncountWhere } from "./roll-ups";
import { type ErasureRow, erasures, events, rollupMark } from "./schema";

/** The rows a request names, written so the session index or the (event_id, app) index serves it. */
function matchOf(row: Pick<ErasureRow, "kind" | "target">, app: number | undefined): SQL {
  if (app === undefined) return sql`0`;
  if (row.kind === "session") return sql`${events.sessionId} = ${row.target} AND +${events.app} = ${app}`;
  return sql`${events.app} = ${app} AND ${events.eventId} IN (SELECT unhex(replace(value, '-', '')) FROM json_each(${row.target}))`;
}

/**
 * How many rows of application number `app` the request names in D1, and their timestamps' span
 * (null when none); `app` undefined (the application never stored an event) names none.
 */
export async function erasureSpan(
  db: Db,
  row: Pick<ErasureRow, "kind" | "target">,
  app: number | undefined,
): Promise<{ n: number; first: number | null; last: number | null }> {
  const [span] = await db
    .select({
      first: sql<number | null>`min(${events.timestamp})`,
      last: sql<number | null>`max(${events.timestamp})`,
      n: sql<number>`count(*)`,
    })
    .from(events)
    .where(matchOf(row, app));
  return span!;
}

/**
 * Deletes up to `chunk` of the rows the request names, in one transaction with their hourly counts
 * and the request's own counts (erasures.d1_events, counted_events): a run cut short never counts a
 * chunk twice; never the table's newest row. Returns how many rows it deleted (0: none is left but
 * perhaps the newest row).
 */
export async function eraseChunk(
  db: Db,
  row: Pick<ErasureRow, "id" | "kind" | "target">,
  app: number | undefined,
  chunk: number,
): Promise<number> {
  // Never the table's newest row while it is the newest: SQLite (no AUTOINCREMENT) would give its id
  // to the next event stored, at or below the roll-up mark and the archive watermark, where that
  // event would be neither counted nor archived, and retention would purge it. Ids that are never
  // handed out twice come with issue 16's storage; until then the request waits for a later event.
  const ids = await db
    .select({ id: events.id })
    .from(events)
    .where(sql`${matchOf(row, app)} AND ${events.id} < (SELECT max(id) FROM ${events})`)
    .limit(chunk);
  if (ids.length === 0) return 0;
  // Literal ids: drizzle's D1 batch cannot bind parameters of a raw statement.
  const doomed = sql`${events.id} IN (${sql.raw(ids.map((r) => r.id).join(","))})`;
  const counted = sql`${doomed} AND ${events.id} <= coalesce((SELECT last_id FROM ${rollupMark} WHERE id = 1), 0)`;
  const statements = [
    sql`UPDATE ${erasures} SET d1_events = d1_events + (SELECT count(*) FROM ${events} WHERE ${doomed}),
      counted_events = counted_events + (SELECT count(*) FROM ${events} WHERE ${counted}) WHERE id = ${sql.raw(String(row.id))}`,
    ...uncountWhere(counted),
    sql`DELETE FROM ${events} WHERE ${doomed}`,
  ].map((s) => db.run(s));
  await db.batch([statements[0]!, ...statements.slice(1)]);
  return ids.length;
}

/** Hours whose events are all gone leave count rows of zero; they add nothing, and go (a scan of the counts). */
export async function dropEmptyCounts(db: Db): Promise<void> {
  await db.batch([
    db.run(sql`DELETE FROM event_counts WHERE n <= 0`),
    db.run(sql`DELETE FROM context_counts WHERE n <= 0`),
  ]);
}
