// Erasure (GDPR/CCPA): an operator's request, a row of `erasures` written by `npm run erase`, to
// erase every event of one session, or of a list of event ids, of one application: from D1, from
// the roll-ups (exactly what is deleted is uncounted, in the same transaction) and from the R2
// archive (every object holding one is rewritten without it, sealed or not). The scheduled
// maintenance carries requests out oldest first in bounded steps, saving its progress in the row
// after each one, so a run cut short resumes where it stopped and a request made again finds
// nothing left:
//   pending          the archive scan window is fixed from what D1 still holds (or the operator's)
//   running, d1      rows deleted in chunks, each with its counts (ids are never handed out twice,
//                    so the newest row goes at once like any other)
//   running, archive the application's objects in the window's hours, in key order, each read and
//                    rewritten without the erased lines (deleted when none is left), after the cursor
//   done             the row stays as the audit: what was asked, the window read, counts per store.
// D1 goes first: an erased event that is not archived yet is then never archived, and the next
// archive run rewrites the growing block from D1 without it. Other events are never touched, so
// the archive watermark and retention's "only what is archived" still hold.
import { and, asc, eq, ne, sql } from "drizzle-orm";
import { ARCHIVE_ROOT, archiveLines, putLines } from "../archive/objects";
import { numberKnowing } from "../db/applications";
import type { Db } from "../db/db";
import { eraseChunk, storedSpan } from "../db/erase-rows";
import { zeroCountDeletes } from "../db/roll-ups";
import { type ErasureRow, erasures } from "../db/schema";
import { readStorageState } from "../db/storage-state";
import { formatTimestamp, HOUR } from "../shared/timestamp";

/** Rows deleted per D1 batch: their ids go into the statements as literals. */
export const ERASE_CHUNK = 500;

/**
 * How far before a session's oldest event still in D1 the archive is read for its older events,
 * which retention may have purged from D1: sessions are taken to last at most a day. An older
 * part is found only when the operator names the window (--from/--to).
 */
export const SESSION_LOOKBACK = 24 * HOUR;

/** What one request's step did, for the maintenance log: ids and counts, never the identifiers erased. */
export interface ErasureProgress {
  id: number;
  status: ErasureRow["status"];
  step: ErasureRow["step"];
  d1Events: number;
  archiveObjectsRead: number;
  archiveEvents: number;
  /** The request waits for a later event before it can delete the table's newest row. */
  waiting?: boolean;
  /** Its step threw (ErasureFailed carries the error); the next run tries again from its saved progress. */
  failed?: boolean;
}

export interface ErasureRun {
  erasures: ErasureProgress[];
  /** False when the time budget ran out with requests still open. */
  done: boolean;
}

/**
 * Thrown by eraseDue after every request had its turn when some of them failed: one request that
 * cannot be carried out (a damaged archive object, say) holds up neither the others nor the rest of
 * the maintenance. Its message names request ids only; the errors themselves go to Sentry.
 */
export class ErasureFailed extends AggregateError {
  constructor(
    readonly run: ErasureRun,
    errors: unknown[],
  ) {
    const ids = run.erasures.filter((e) => e.failed).map((e) => e.id);
    super(errors, `erasure request(s) ${ids.join(", ")} failed; they resume on the next run`, { cause: errors[0] });
    this.name = "ErasureFailed";
  }
}

/** Whether an archive line (as rendered) is one of the request's events. */
function lineMatcher(row: ErasureRow): (line: string) => boolean {
  if (row.kind === "session") return (line) => (JSON.parse(line) as { session_id: string }).session_id === row.target;
  const ids = new Set((JSON.parse(row.target) as string[]).map((id) => id.toLowerCase()));
  return (line) => ids.has((JSON.parse(line) as { event_id: string }).event_id);
}

/**
 * The archive window of a request about to start: the operator's when given; else the span of its
 * events D1 holds (reaching SESSION_LOOKBACK further back for a session when retention may have
 * purged its start); else, when D1 holds none but retention may have purged some, every partition of
 * the application before the purge mark; else nothing (no purged event, so none can be in R2 alone).
 * The purge mark is the later of the last finished purge's cutoff and the one retention may be
 * working to now (`purgeCutoff`): D1 holds every event at or after it.
 */
async function planWindow(db: Db, row: ErasureRow, app: number | undefined, purgeCutoff: number | undefined) {
  if (row.scanBasis === "operator")
    return { scanAfter: row.scanAfter, scanBefore: row.scanBefore, scanBasis: "operator" };
  const span = app === undefined ? { first: null, last: null, n: 0 } : await storedSpan(db, row, app);
  const state = await readStorageState(db);
  const marks = [state.purgedBefore, purgeCutoff].filter((m): m is number => m !== null && m !== undefined);
  const purgedBefore = marks.length > 0 ? Math.max(...marks) : null;
  const allFound = row.kind === "events" && span!.n === (JSON.parse(row.target) as string[]).length;
  if (span!.n > 0 && (allFound || row.kind === "session")) {
    const first = span!.first!;
    const reach = row.kind === "session" && purgedBefore !== null && purgedBefore > first - SESSION_LOOKBACK;
    return reach
      ? { scanAfter: first - SESSION_LOOKBACK, scanBefore: span!.last!, scanBasis: "d1+lookback" }
      : { scanAfter: first, scanBefore: span!.last!, scanBasis: "d1" };
  }
  if (purgedBefore === null) {
    return span!.n > 0
      ? { scanAfter: span!.first!, scanBefore: span!.last!, scanBasis: "d1" }
      : { scanAfter: null, scanBefore: null, scanBasis: "none" };
  }
  return { scanAfter: 0, scanBefore: Math.max(purgedBefore, span!.last ?? 0), scanBasis: "archive" };
}

/** Deletes the request's rows from D1 a chunk at a time; true once none is left. */
async function eraseFromD1(db: Db, row: ErasureRow, app: number | undefined, deadline: number, now: () => number) {
  if (app === undefined) return { finished: true, waiting: false };
  let deleted = 0;
  for (;;) {
    if (now() >= deadline) return { finished: false, waiting: false };
    const n = await eraseChunk(db, row, app, row.id, ERASE_CHUNK);
    if (n === 0) break;
    deleted += n;
  }
  // What the deletions left at zero goes too (a scan of the counts, so only after a run that deleted).
  if (deleted > 0) await db.batch(zeroCountDeletes(db) as unknown as Parameters<typeof db.batch>[0]);
  return { finished: true, waiting: false };
}

/** The keys of the application's archive objects whose hour lies in [after, before], in key order. */
async function windowObjects(bucket: R2Bucket, appId: string, after: number, before: number): Promise<string[]> {
  const root = `${ARCHIVE_ROOT}/app_id=${encodeURIComponent(appId)}/`;
  const firstDay = formatTimestamp(Math.max(0, after)).slice(0, 10);
  const lastDay = formatTimestamp(before).slice(0, 10);
  const firstHour = formatTimestamp(Math.max(0, after) - (Math.max(0, after) % HOUR)).slice(0, 13);
  const lastHour = formatTimestamp(before).slice(0, 13);
  // The dates present, one listing per thousand of them, so a window over years costs what the archive holds.
  const days: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix: root, delimiter: "/", cursor });
    for (const prefix of listed.delimitedPrefixes) {
      const day = /date=(\d{4}-\d{2}-\d{2})\/$/.exec(prefix)?.[1];
      if (day && day >= firstDay && day <= lastDay) days.push(day);
    }
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  const keys: string[] = [];
  for (const day of days.sort()) {
    let next: string | undefined;
    do {
      const listed = await bucket.list({ prefix: `${root}date=${day}/`, cursor: next });
      for (const object of listed.objects) {
        const hour = /\/hour=(\d{2})\//.exec(object.key)?.[1];
        if (hour && `${day}T${hour}` >= firstHour && `${day}T${hour}` <= lastHour) keys.push(object.key);
      }
      next = listed.truncated ? listed.cursor : undefined;
    } while (next);
  }
  return keys.sort();
}

/**
 * Rewrites one object without the request's lines, then moves the cursor past it and adds its
 * counts. The lines it loses are noted in the row before R2 is written: a run stopped between the
 * write and the counts finds the object clean next time and counts the noted lines, once.
 */
async function eraseObject(db: Db, bucket: R2Bucket, row: ErasureRow, key: string, matches: (line: string) => boolean) {
  const kept: string[] = [];
  let removed = 0;
  for await (const line of archiveLines(bucket, key)) {
    if (matches(line)) removed++;
    else kept.push(line);
  }
  const noted = row.pendingKey === key ? (row.pendingEvents ?? 0) : 0;
  if (removed > 0) {
    await db.update(erasures).set({ pendingKey: key, pendingEvents: removed }).where(eq(erasures.id, row.id));
    if (kept.length > 0) await putLines(bucket, key, kept);
    else await bucket.delete(key);
  }
  const lost = removed > 0 ? removed : noted;
  await db
    .update(erasures)
    .set({
      archiveCursor: key,
      pendingKey: null,
      pendingEvents: null,
      archiveObjectsRead: sql`${erasures.archiveObjectsRead} + 1`,
      archiveObjectsRewritten: sql`${erasures.archiveObjectsRewritten} + ${lost > 0 ? 1 : 0}`,
      archiveEvents: sql`${erasures.archiveEvents} + ${lost}`,
    })
    .where(eq(erasures.id, row.id));
}

/** Rewrites the window's objects without the request's events, after the cursor; true once all are done. */
async function eraseFromArchive(db: Db, bucket: R2Bucket, row: ErasureRow, deadline: number, now: () => number) {
  if (row.scanAfter === null || row.scanBefore === null) return true;
  const matches = lineMatcher(row);
  const keys = await windowObjects(bucket, row.appId, row.scanAfter, row.scanBefore);
  // The object a stopped run was rewriting comes first, even if it is gone (deleted, as it held only erased lines).
  if (row.pendingKey !== null && !keys.includes(row.pendingKey)) keys.unshift(row.pendingKey);
  for (const key of keys) {
    if (row.archiveCursor !== null && key <= row.archiveCursor) continue;
    if (now() >= deadline) return false;
    await eraseObject(db, bucket, row, key, matches);
  }
  return true;
}

/** One request as stored now. */
async function readErasure(db: Db, id: number): Promise<ErasureRow> {
  const [row] = await db.select().from(erasures).where(eq(erasures.id, id));
  return row!;
}

/** Takes one request as far as the deadline allows; `waiting` when only the table's newest row is left. */
async function advance(
  db: Db,
  bucket: R2Bucket,
  id: number,
  { deadline, purgeCutoff, now }: { deadline: number; purgeCutoff?: number; now: () => number },
): Promise<{ waiting: boolean }> {
  let row = await readErasure(db, id);
  const app = await numberKnowing(db, row.appId);
  if (row.status === "pending") {
    const window = await planWindow(db, row, app, purgeCutoff);
    await db
      .update(erasures)
      .set({ ...window, status: "running", step: "d1", startedAt: now() * 1000 })
      .where(and(eq(erasures.id, id), eq(erasures.status, "pending")));
    row = await readErasure(db, id);
  }
  if (row.step === "d1") {
    const d1 = await eraseFromD1(db, row, app, deadline, now);
    if (!d1.finished) return { waiting: d1.waiting };
    await db.update(erasures).set({ step: "archive" }).where(eq(erasures.id, id));
    row = await readErasure(db, id);
  }
  if (row.step === "archive") {
    if (!(await eraseFromArchive(db, bucket, row, deadline, now))) return { waiting: false };
    await db
      .update(erasures)
      .set({ status: "done", step: null, archiveCursor: null, finishedAt: now() * 1000 })
      .where(eq(erasures.id, id));
  }
  return { waiting: false };
}

/**
 * Carries out the open erasure requests, oldest first, until all are done or `deadline` (ms since
 * the epoch) passes. A request waiting for a later event lets the next one go on. `purgeCutoff`:
 * the cutoff retention purges to now (microseconds), which may be ahead of the last finished one.
 */
export async function eraseDue(
  db: Db,
  bucket: R2Bucket,
  { deadline, purgeCutoff, now = Date.now }: { deadline: number; purgeCutoff?: number; now?: () => number },
): Promise<ErasureRun> {
  const run: ErasureRun = { erasures: [], done: false };
  const errors: unknown[] = [];
  const open = await db
    .select({ id: erasures.id })
    .from(erasures)
    .where(ne(erasures.status, "done"))
    .orderBy(asc(erasures.id));
  for (const { id } of open) {
    if (now() >= deadline) break;
    let waiting = false;
    let failed = false;
    try {
      ({ waiting } = await advance(db, bucket, id, { deadline, purgeCutoff, now }));
    } catch (err) {
      errors.push(err);
      failed = true;
    }
    const r = await readErasure(db, id);
    run.erasures.push({
      id,
      status: r.status,
      step: r.step,
      d1Events: r.d1Events,
      archiveObjectsRead: r.archiveObjectsRead,
      archiveEvents: r.archiveEvents,
      ...(waiting ? { waiting } : {}),
      ...(failed ? { failed } : {}),
    });
  }
  run.done = run.erasures.length === open.length && run.erasures.every((e) => e.status === "done");
  if (errors.length > 0) throw new ErasureFailed(run, errors);
  return run;
}
