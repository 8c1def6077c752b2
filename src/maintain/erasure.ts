// Erasure (GDPR/CCPA): an operator's request, a row of `erasures` written by `npm run erase`, to
// erase every event of one session, or of a list of event ids, of one application: from D1, from
// the roll-ups (exactly what is deleted is uncounted, in the same transaction) and from every copy
// in the R2 archive. The scheduled maintenance carries requests out oldest first in bounded steps,
// saving its progress in the row after each one, so a run cut short resumes where it stopped and a
// request made again finds what an earlier one left:
//   pending          the archive window is fixed: every object of the application, or the
//                    operator's window widened to the span of the rows D1 still holds
//   running, d1      rows deleted in chunks, each with its counts (ids are never handed out twice,
//                    so the newest row goes at once like any other)
//   running, archive the manifest's objects of the application, in key order after the cursor:
//                    copies still in R2 of replaced objects are deleted first; each object's footer
//                    is read, and only the row groups whose statistics (session_id or event_id
//                    min/max) may hold a match are read; an object with a match is rewritten without
//                    it under a new name and swapped in (one D1 transaction with the counts), the old
//                    one deleted at once
//   running, legacy  the older archive's gzip NDJSON objects of the application, rewritten in place
//   done             the row stays as the audit: what was asked, the window read, counts per store.
// D1 goes first: an erased event that is not archived yet is then never archived, and a range a
// stopped run recorded is written again from D1 without it. Other events are never touched, so the
// archive watermark and retention's "only what is archived" still hold.
import { and, asc, eq, ne, sql } from "drizzle-orm";
import { parquetMetadataAsync } from "hyparquet";
import {
  archiveLines,
  erasedKey,
  getObject,
  legacyObjects,
  partitionApp,
  putLines,
  putParquet,
  rangedObject,
} from "../archive/objects";
import {
  type ArchivedEvent,
  groupMayMatch,
  parquetRows,
  type RowFilter,
  readGroup,
  textBytes,
  writeParquet,
} from "../archive/parquet";
import { numberKnowing } from "../db/applications";
import { abandonCompaction, markGone } from "../db/archive-compaction";
import { appObjects, appObjectsInFlight, readArchiveState, swapRewritten } from "../db/archive-manifest";
import type { Db } from "../db/db";
import { dropEmptyCounts, eraseChunk, erasureSpan } from "../db/erasure-rows";
import { type ArchiveObjectRow, type ErasureRow, erasures } from "../db/schema";
import { FORGET_MS } from "./compaction";

/** Rows deleted per D1 batch: their ids go into the statements as literals. */
export const ERASE_CHUNK = 500;
/** Manifest rows read per statement. */
const OBJECT_PAGE = 100;

/** What one request's step did, for the maintenance log: ids and counts, never the identifiers erased. */
export interface ErasureProgress {
  id: number;
  status: ErasureRow["status"];
  step: ErasureRow["step"];
  d1Events: number;
  archiveObjectsRead: number;
  archiveEvents: number;
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

/** What the request erases, as an archive row filter (the statistics prune with it) and a test of one row. */
function targetOf(row: ErasureRow): {
  filter: RowFilter;
  column: "session_id" | "event_id";
  matches: (e: ArchivedEvent) => boolean;
} {
  if (row.kind === "session")
    return { filter: { sessionId: row.target }, column: "session_id", matches: (e) => e.sessionId === row.target };
  const ids = new Set((JSON.parse(row.target) as string[]).map((id) => id.toLowerCase()));
  return { filter: { eventIds: ids }, column: "event_id", matches: (e) => ids.has(e.eventId) };
}

/** Whether an older-archive line (as rendered) is one of the request's events. */
function lineMatcher(row: ErasureRow): (line: string) => boolean {
  if (row.kind === "session") return (line) => (JSON.parse(line) as { session_id: string }).session_id === row.target;
  const ids = new Set((JSON.parse(row.target) as string[]).map((id) => id.toLowerCase()));
  return (line) => ids.has((JSON.parse(line) as { event_id: string }).event_id);
}

/**
 * The archive window of a request about to start. Without the operator's: every object of the
 * application ('all'). With it: the window, widened to the span of the request's rows D1 still holds,
 * so every archived copy of an event this request deletes from D1 is read whatever the window.
 */
async function planWindow(db: Db, row: ErasureRow, app: number | undefined) {
  if (row.scanBasis !== "operator" || row.scanAfter === null || row.scanBefore === null)
    return { scanAfter: null, scanBefore: null, scanBasis: "all" };
  const span = await erasureSpan(db, row, app);
  return {
    scanAfter: span.first === null ? row.scanAfter : Math.min(row.scanAfter, span.first),
    scanBefore: span.last === null ? row.scanBefore : Math.max(row.scanBefore, span.last),
    scanBasis: "operator",
  };
}

/** Deletes the request's rows from D1 a chunk at a time; true once none is left, false when the deadline passed first. */
async function eraseFromD1(db: Db, row: ErasureRow, app: number | undefined, deadline: number, now: () => number) {
  let deleted = 0;
  for (;;) {
    if (now() >= deadline) return false;
    const n = await eraseChunk(db, row, app, ERASE_CHUNK);
    if (n === 0) break;
    deleted += n;
  }
  // Hours whose events are all gone leave count rows of zero (a scan of the counts: only after a run that deleted some).
  if (deleted > 0) await dropEmptyCounts(db);
  return (await erasureSpan(db, row, app)).n === 0;
}

/** Whether an object holds one of the request's events: its footer, then the key column of the row groups its statistics leave in. */
async function holdsMatch(bucket: R2Bucket, object: ArchiveObjectRow, target: ReturnType<typeof targetOf>) {
  const file = await rangedObject(bucket, object.key);
  if (!file) throw new Error(`archive object ${object.key} is in the manifest but not in R2`);
  const metadata = await parquetMetadataAsync(file, { initialFetchSize: 64 * 1024 });
  let start = 0;
  for (const group of metadata.row_groups) {
    const range = { start, end: start + Number(group.num_rows) };
    start = range.end;
    if (!groupMayMatch(group, metadata, target.filter)) continue;
    if ((await readGroup(file, metadata, range, [target.column])).some(target.matches)) return true;
  }
  return false;
}

/**
 * Rewrites one live object without the request's rows (deleting it when none is left) and swaps the
 * rewrite in with the request's cursor and counts in one D1 transaction; the old object goes from R2
 * at once. A run stopped before the swap writes the same rewrite again.
 */
async function rewriteObject(
  db: Db,
  bucket: R2Bucket,
  request: ErasureRow,
  object: ArchiveObjectRow,
  target: ReturnType<typeof targetOf>,
  now: () => number,
) {
  // A compaction recorded over it (by a run that stopped) is given up: its output would hold the erased rows.
  if (object.replacedBy !== null) {
    await bucket.delete(object.replacedBy);
    await abandonCompaction(db, object.replacedBy);
  }
  const file = await getObject(bucket, object.key);
  if (!file) throw new Error(`archive object ${object.key} is in the manifest but not in R2`);
  const kept: ArchivedEvent[] = [];
  let removed = 0;
  for await (const group of parquetRows(file)) {
    for (const e of group) {
      if (target.matches(e)) removed++;
      else kept.push(e);
    }
  }
  const replacement =
    kept.length === 0
      ? null
      : {
          key: erasedKey(object.key, request.id),
          app: object.app,
          date: object.date,
          firstId: object.firstId,
          lastId: object.lastId,
          events: kept.length,
          textBytes: kept.reduce((n, e) => n + textBytes(e), 0),
          minTimestamp: Math.min(...kept.map((e) => e.timestamp)),
          maxTimestamp: Math.max(...kept.map((e) => e.timestamp)),
          bytes: 0,
        };
  if (replacement) {
    const bytes = writeParquet(kept);
    await putParquet(bucket, replacement.key, bytes, replacement);
    replacement.bytes = bytes.byteLength;
  }
  await swapRewritten(db, {
    key: object.key,
    replacement,
    deleteAfter: now() * 1000,
    now: now() * 1000,
    extra: [
      db
        .update(erasures)
        .set({
          archiveCursor: object.key,
          archiveObjectsRead: sql`${erasures.archiveObjectsRead} + 1`,
          archiveObjectsRewritten: sql`${erasures.archiveObjectsRewritten} + 1`,
          archiveEvents: sql`${erasures.archiveEvents} + ${removed}`,
        })
        .where(eq(erasures.id, request.id)),
    ],
  });
  await bucket.delete(object.key);
}

/** The manifest's objects of the application in the window, after the cursor, each checked and rewritten when it holds a match; true once all are done. */
async function eraseFromManifest(db: Db, bucket: R2Bucket, request: ErasureRow, deadline: number, now: () => number) {
  const app = partitionApp(request.appId);
  const target = targetOf(request);
  if (request.archiveCursor === null) {
    // Copies that are in no live object's place: replaced objects still in their grace period (their
    // rows live on in their replacements), and compactions recorded but not swapped in.
    for (const o of await appObjectsInFlight(db, app, 1_000)) {
      await bucket.delete(o.key);
      if (o.state === "pending") await abandonCompaction(db, o.key);
      else await markGone(db, [o.key], (now() + FORGET_MS) * 1000);
    }
  }
  for (let cursor = request.archiveCursor; ; ) {
    const page = await appObjects(db, app, {
      cursor,
      after: request.scanAfter,
      before: request.scanBefore,
      limit: OBJECT_PAGE,
    });
    for (const object of page) {
      if (now() >= deadline) return false;
      if (await holdsMatch(bucket, object, target)) await rewriteObject(db, bucket, request, object, target, now);
      else
        await db
          .update(erasures)
          .set({ archiveCursor: object.key, archiveObjectsRead: sql`${erasures.archiveObjectsRead} + 1` })
          .where(eq(erasures.id, request.id));
      cursor = object.key;
    }
    if (page.length < OBJECT_PAGE) return true;
  }
}

/**
 * Rewrites one older-archive object in place without the request's lines. The lines it loses are
 * noted in the row before R2 is written: a run stopped between the write and the counts finds the
 * object clean next time and counts the noted lines, once.
 */
async function eraseLegacyObject(
  db: Db,
  bucket: R2Bucket,
  row: ErasureRow,
  key: string,
  matches: (line: string) => boolean,
) {
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

/** The older archive's objects of the application in the window, after the cursor; true once all are done. */
async function eraseFromLegacy(db: Db, bucket: R2Bucket, row: ErasureRow, deadline: number, now: () => number) {
  const { legacyThrough } = await readArchiveState(db);
  const keys = await legacyObjects(bucket, {
    apps: [partitionApp(row.appId)],
    after: row.scanAfter ?? undefined,
    before: row.scanBefore ?? undefined,
    legacyThrough,
  });
  // The object a stopped run was rewriting comes first, even if it is gone (deleted, as it held only erased lines).
  if (row.pendingKey !== null && !keys.includes(row.pendingKey)) keys.unshift(row.pendingKey);
  const matches = lineMatcher(row);
  for (const key of keys) {
    if (row.archiveCursor !== null && key <= row.archiveCursor) continue;
    if (now() >= deadline) return false;
    await eraseLegacyObject(db, bucket, row, key, matches);
  }
  return true;
}

/** One request as stored now. */
async function readErasure(db: Db, id: number): Promise<ErasureRow> {
  const [row] = await db.select().from(erasures).where(eq(erasures.id, id));
  return row!;
}

/** Takes one request as far as the deadline allows. */
async function advance(
  db: Db,
  bucket: R2Bucket,
  id: number,
  { deadline, now }: { deadline: number; now: () => number },
) {
  let row = await readErasure(db, id);
  const app = await numberKnowing(db, row.appId);
  if (row.status === "pending") {
    const window = await planWindow(db, row, app);
    await db
      .update(erasures)
      .set({ ...window, status: "running", step: "d1", startedAt: now() * 1000 })
      .where(and(eq(erasures.id, id), eq(erasures.status, "pending")));
    row = await readErasure(db, id);
  }
  if (row.step === "d1") {
    if (!(await eraseFromD1(db, row, app, deadline, now))) return;
    await db.update(erasures).set({ step: "archive", archiveCursor: null }).where(eq(erasures.id, id));
    row = await readErasure(db, id);
  }
  if (row.step === "archive") {
    if (!(await eraseFromManifest(db, bucket, row, deadline, now))) return;
    await db.update(erasures).set({ step: "legacy", archiveCursor: null }).where(eq(erasures.id, id));
    row = await readErasure(db, id);
  }
  if (row.step === "legacy") {
    if (!(await eraseFromLegacy(db, bucket, row, deadline, now))) return;
    await db
      .update(erasures)
      .set({ status: "done", step: null, archiveCursor: null, finishedAt: now() * 1000 })
      .where(eq(erasures.id, id));
  }
}

/**
 * Carries out the open erasure requests, oldest first, until all are done or `deadline` (ms since
 * the epoch) passes.
 */
export async function eraseDue(
  db: Db,
  bucket: R2Bucket,
  { deadline, now = Date.now }: { deadline: number; now?: () => number },
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
    let failed = false;
    try {
      await advance(db, bucket, id, { deadline, now });
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
      ...(failed ? { failed } : {}),
    });
  }
  run.done = run.erasures.length === open.length && run.erasures.every((e) => e.status === "done");
  if (errors.length > 0) throw new ErasureFailed(run, errors);
  return run;
}
