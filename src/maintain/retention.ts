// Retention: D1 keeps a hot window of HOT_DAYS for the query API. Older events are deleted in
// bounded chunks, each in one transaction with the hourly counts it takes away, so `count` stays
// exact for what a GET can still page through. Only archived events are deleted (ids up to the
// archive watermark) and only counted ones (up to the roll-up mark), and never the row with the
// highest id, whose deletion would let SQLite hand its id out again. The error log and its hourly
// counts keep ERROR_LOG_DAYS.
import { sql } from "drizzle-orm";
import type { Db } from "../db/db";
import { uncountWhere } from "../db/roll-ups";
import { errorCounts, errorLog, events, rollupMark, storageState } from "../db/schema";
import { HOUR } from "../shared/timestamp";

/** Rows deleted per statement: well inside D1's per-statement time limit, with five indexes to update. */
export const PURGE_CHUNK = 2_000;

export interface PurgeRun {
  deleted: number;
  done: boolean;
}

/**
 * Deletes archived events with a timestamp before `cutoff` (microseconds), a chunk per D1 batch,
 * until none is left or `deadline` (ms since the epoch) passes.
 */
export async function purgeHotWindow(
  db: Db,
  {
    cutoff,
    deadline,
    chunk = PURGE_CHUNK,
    now = Date.now,
  }: { cutoff: number; deadline: number; chunk?: number; now?: () => number },
): Promise<PurgeRun> {
  const limit = sql.raw(String(Math.floor(chunk)));
  // Literal numbers: drizzle's D1 batch cannot bind parameters of a raw statement.
  const before = sql.raw(String(Math.floor(cutoff)));
  const doomed = sql`${events.id} IN (SELECT id FROM ${events} WHERE timestamp < ${before}
      AND id <= min((SELECT archived_through FROM ${storageState} WHERE id = 1), coalesce((SELECT last_id FROM ${rollupMark} WHERE id = 1), 0))
      AND id < (SELECT max(id) FROM ${events})
    ORDER BY timestamp LIMIT ${limit})`;
  const run: PurgeRun = { deleted: 0, done: false };
  for (;;) {
    if (now() >= deadline) return run;
    // The same subquery in one transaction names the same rows: uncount them, then delete them.
    const [first, ...rest] = [...uncountWhere(doomed), sql`DELETE FROM ${events} WHERE ${doomed}`].map((s) =>
      db.run(s),
    );
    const results = await db.batch([first!, ...rest]);
    const n = (results.at(-1) as unknown as { meta: { changes: number } }).meta.changes;
    run.deleted += n;
    if (n < chunk) break;
  }
  // Hours whose events are all gone leave count rows of zero; they add nothing, and go.
  if (run.deleted > 0) await db.run(sql`DELETE FROM event_counts WHERE n <= 0`);
  run.done = true;
  return run;
}

/**
 * Deletes error-log entries older than `cutoff`, then the hourly error counts of hours wholly
 * before it, in chunks, until none is left or the deadline passes. A count outlives its entries
 * by at most the hour `cutoff` falls in, whose rows go on the next run after it.
 */
export async function purgeErrorLog(
  db: Db,
  {
    cutoff,
    deadline,
    chunk = PURGE_CHUNK * 5,
    now = Date.now,
  }: { cutoff: number; deadline: number; chunk?: number; now?: () => number },
): Promise<PurgeRun & { counts: number }> {
  const run = { deleted: 0, counts: 0, done: false };
  const hour = Math.floor(cutoff / HOUR);
  const steps = [
    {
      table: errorLog,
      doomed: sql`SELECT id FROM ${errorLog} WHERE occurred_at < ${cutoff} ORDER BY occurred_at LIMIT ${chunk}`,
      add: (n: number) => (run.deleted += n),
    },
    // error_counts' primary key leads with the hour: each chunk is one range of it.
    {
      table: errorCounts,
      doomed: sql`SELECT rowid FROM ${errorCounts} WHERE hour < ${hour} LIMIT ${chunk}`,
      add: (n: number) => (run.counts += n),
    },
  ];
  for (const step of steps) {
    for (;;) {
      if (now() >= deadline) return run;
      const result = await db.run(sql`DELETE FROM ${step.table} WHERE rowid IN (${step.doomed})`);
      const n = (result as unknown as { meta: { changes: number } }).meta.changes;
      step.add(n);
      if (n < chunk) break;
    }
  }
  run.done = true;
  return run;
}
