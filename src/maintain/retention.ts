// Retention: D1 keeps a hot window for the query API, bounded by days (HOT_DAYS) and by bytes
// (HOT_MAX_MB), whichever binds first. Events live in generations (db/generations.ts): a whole
// generation older than the window goes at once, a DROP TABLE that writes no rows; when the
// database is over its byte budget, whole generations go oldest first, and then, if that is not
// enough, the oldest rows of the oldest one. Only archived events go (ids up to the archive
// watermark): when the archive lags so far behind that nothing can go, the run says so (stalled)
// and deletes nothing. Then what the deletions orphan goes too: dictionary rows no live event
// points at, and count rows at zero. The error log and its hourly counts keep ERROR_LOG_DAYS.
import { sql } from "drizzle-orm";
import { directory } from "../db/applications";
import type { Db } from "../db/db";
import { defaultSpan, readGenerations } from "../db/generations";
import {
  databaseBytes,
  deleteOldest,
  deleteOrphans,
  dropGeneration,
  eventsPerGeneration,
  listGenerations,
} from "../db/purge";
import { errorCounts, errorLog } from "../db/schema";
import { readStorageState } from "../db/storage-state";
import { HOUR } from "../shared/timestamp";

/** Rows deleted per statement: well inside D1's per-statement time limit. */
export const PURGE_CHUNK = 2_000;

/** The budget purge aims this far under the budget, so it does not run again at the next event. */
const BUDGET_TARGET = 0.9;

export interface PurgeRun {
  deleted: number;
  done: boolean;
}

export interface HotWindowRun extends PurgeRun {
  /** Generations dropped whole (by age or for the budget). */
  generations: number;
  /** Events deleted row by row (inside a generation): for the budget, or past a lowered HOT_DAYS. */
  rows: number;
  /** Dictionary and count rows deleted as orphans. */
  orphans: number;
  /** The database's bytes before and after, as D1 measures them. */
  bytesBefore: number;
  bytesAfter: number;
  /** Which bound the run purged for: none, HOT_DAYS, or the byte budget. */
  bound: "none" | "days" | "bytes";
  /** Over the budget (or past HOT_DAYS) with nothing archived to delete: the archive is behind. */
  stalled: boolean;
}

/**
 * Purges the hot window down to `cutoff` (µs: generations wholly before it go) and under
 * `budgetBytes`, until done or `deadline` (ms since the epoch) passes.
 */
export async function purgeHotWindow(
  db: Db,
  {
    cutoff,
    budgetBytes = Infinity,
    hotDays = 30,
    deadline,
    chunk = PURGE_CHUNK,
    now = Date.now,
  }: {
    cutoff: number;
    budgetBytes?: number;
    hotDays?: number;
    deadline: number;
    chunk?: number;
    now?: () => number;
  },
): Promise<HotWindowRun> {
  const { span } = await readGenerations(db, hotDays);
  const watermark = (await readStorageState(db)).archivedThrough;
  const bytesBefore = await databaseBytes(db);
  const run: HotWindowRun = {
    deleted: 0,
    done: false,
    generations: 0,
    rows: 0,
    orphans: 0,
    bytesBefore,
    bytesAfter: bytesBefore,
    bound: "none",
    stalled: false,
  };
  const counts = await eventsPerGeneration(db);
  let gens = await listGenerations(db);
  const drop = async (g: { gen: number; maxId: number }) => {
    if (g.maxId > watermark || !(await dropGeneration(db, g.gen, watermark))) return false;
    run.generations++;
    run.deleted += counts.get(g.gen) ?? 0;
    gens = gens.filter((x) => x.gen !== g.gen);
    return true;
  };
  // By age: every generation whose whole span ends before the cutoff, the newest too (a quiet
  // database's only one): the consumer creates it again with its next event.
  for (const g of [...gens]) {
    if (now() >= deadline) return finish(db, run);
    if ((g.gen + 1) * span - 1 >= cutoff) continue;
    run.bound = "days";
    if (!(await drop(g))) run.stalled = true;
  }
  // Rows older than the window by more than a fresh span's slack, where no whole generation can go:
  // the oldest live generation's (it stores the events older than itself, e.g. a late or a
  // backfilled event), and any generation's when HOT_DAYS was lowered after the span was set. Row
  // by row, but only such rows: with the span HOT_DAYS gives, a whole generation goes before any of
  // its own rows is that old, and a read of the range costs nothing when there are none.
  const slack = defaultSpan(hotDays);
  const apps = (await directory(db)).nums;
  for (const g of [...gens]) {
    if (g !== gens[0] && g.gen * span >= cutoff - slack) break;
    for (;;) {
      if (now() >= deadline) return finish(db, run);
      const n = await deleteOldest(db, g.gen, apps, watermark, chunk, cutoff - slack);
      if (n > 0) run.bound = "days";
      run.rows += n;
      run.deleted += n;
      counts.set(g.gen, (counts.get(g.gen) ?? 0) - n);
      if (n < chunk) break;
    }
  }
  // A generation those deletions emptied goes too (the newest as well: the consumer creates it
  // again with its next event), so what its events kept beside them goes with it.
  for (const g of [...gens]) {
    if (now() >= deadline) return finish(db, run);
    if ((counts.get(g.gen) ?? 0) <= 0 && (await drop(g))) run.bound = "days";
  }
  // By bytes: whole generations oldest first while more than one is left, then rows of the oldest.
  let bytes = await databaseBytes(db);
  if (bytes > budgetBytes) {
    run.bound = "bytes";
    const target = budgetBytes * BUDGET_TARGET;
    while (bytes > target && gens.length > 1 && now() < deadline) {
      if (!(await drop(gens[0]!))) break;
      bytes = await databaseBytes(db);
    }
    while (bytes > target && gens.length > 0 && now() < deadline) {
      const live = [...counts.entries()].filter(([gen]) => gens.some((g) => g.gen === gen));
      const events = live.reduce((n, [, c]) => n + c, 0);
      // As many of the oldest as the bytes over the target hold, at the database's bytes per event.
      const wanted = Math.max(1, Math.min(chunk, Math.ceil(((bytes - target) / Math.max(1, bytes)) * events)));
      const n = await deleteOldest(db, gens[0]!.gen, apps, watermark, wanted);
      if (n === 0) {
        // Nothing archived left to take: the archive has to catch up first.
        if (gens.length > 1 && (await drop(gens[0]!))) continue;
        run.stalled = true;
        break;
      }
      run.rows += n;
      run.deleted += n;
      counts.set(gens[0]!.gen, (counts.get(gens[0]!.gen) ?? 0) - n);
      bytes = await databaseBytes(db);
    }
  }
  return finish(db, run, now() < deadline);
}

/** What deleting orphaned: dictionary rows and zero counts, then the bytes after. */
async function finish(db: Db, run: HotWindowRun, done = false): Promise<HotWindowRun> {
  // While the pre-0011 table is being rebuilt its rows still point at dictionary rows of generation 0.
  const rebuilding = (await readStorageState(db)).rebuiltThrough !== null;
  if ((run.deleted > 0 || run.generations > 0) && !rebuilding) run.orphans = await deleteOrphans(db);
  run.bytesAfter = await databaseBytes(db);
  run.done = done && !run.stalled;
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
