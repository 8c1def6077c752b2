// The archive manifest's compaction and clean-up: which partitions have small objects worth merging,
// recording a compaction before it writes, swapping the merged object in (one transaction with the
// version bump), and the replaced objects' way out of R2 and then out of the manifest.
import { and, asc, eq, inArray, isNull, lte, sql } from "drizzle-orm";
import { batch, insertPending, type PlannedObject, versionNow, type WrittenObject } from "./archive-manifest";
import type { Db } from "./db";
import { type ArchiveObjectRow, archiveObjects, archiveState } from "./schema";

/**
 * The partitions worth compacting: at least two small live objects (fewer than `smallEvents`
 * events and `smallBytes` text bytes each), and at least `minObjects` of them unless the
 * partition's date is before `closedBefore`. Oldest date first, at most `limit`.
 */
export function compactionCandidates(
  db: Db,
  {
    smallEvents,
    smallBytes,
    minObjects,
    closedBefore,
    limit,
  }: { smallEvents: number; smallBytes: number; minObjects: number; closedBefore: string; limit: number },
): Promise<{ app: string; date: string; objects: number }[]> {
  return db
    .select({ app: archiveObjects.app, date: archiveObjects.date, objects: sql<number>`count(*)` })
    .from(archiveObjects)
    .where(
      and(
        eq(archiveObjects.state, "live"),
        sql`${archiveObjects.events} < ${smallEvents}`,
        sql`${archiveObjects.textBytes} < ${smallBytes}`,
      ),
    )
    .groupBy(archiveObjects.app, archiveObjects.date)
    .having(sql`count(*) >= 2 AND (count(*) >= ${minObjects} OR ${archiveObjects.date} < ${closedBefore})`)
    .orderBy(asc(archiveObjects.date), asc(archiveObjects.app))
    .limit(limit);
}

/** A partition's live objects in id order. */
export function partitionObjects(db: Db, app: string, date: string): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(and(eq(archiveObjects.app, app), eq(archiveObjects.date, date), eq(archiveObjects.state, "live")))
    .orderBy(asc(archiveObjects.firstId));
}

/** Records a compaction before its output is written: the output pending, each input naming it. */
export async function recordCompaction(
  db: Db,
  { output, inputs, now }: { output: PlannedObject; inputs: string[]; now: number },
): Promise<void> {
  await batch(db, [
    ...insertPending(db, [output], "compaction", now),
    db
      .update(archiveObjects)
      .set({ replacedBy: output.key })
      .where(
        and(inArray(archiveObjects.key, inputs), eq(archiveObjects.state, "live"), isNull(archiveObjects.replacedBy)),
      ),
  ]);
}

/** Recorded compactions not yet swapped in: their outputs (pending, origin compaction). */
export function pendingCompactions(db: Db): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(and(eq(archiveObjects.state, "pending"), eq(archiveObjects.origin, "compaction")))
    .orderBy(asc(archiveObjects.key));
}

/** The objects an object replaces or is planned to replace (replaced_by = key), in id order. */
export function replacedBy(db: Db, key: string): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(eq(archiveObjects.replacedBy, key))
    .orderBy(asc(archiveObjects.firstId));
}

/**
 * Swaps a compaction in, in one transaction: the inputs retire (due for deletion at
 * `deleteAfter`) and the output goes live, only if every input is still live and names it; true
 * when it did. Otherwise nothing changes and the caller abandons the compaction.
 */
export async function swapCompaction(
  db: Db,
  { output, inputs, deleteAfter }: { output: WrittenObject; inputs: string[]; deleteAfter: number },
): Promise<boolean> {
  const intact = sql`(SELECT count(*) FROM ${archiveObjects} WHERE ${archiveObjects.replacedBy} = ${output.key} AND ${archiveObjects.state} = 'live') = ${inputs.length}`;
  const results = await db.batch([
    db
      .update(archiveState)
      .set({ version: sql`${archiveState.version} + 1` })
      .where(and(eq(archiveState.id, 1), intact)),
    db
      .update(archiveObjects)
      .set({
        state: "live",
        liveFrom: versionNow,
        bytes: output.bytes,
        events: output.events,
        textBytes: output.textBytes,
        minTimestamp: output.minTimestamp,
        maxTimestamp: output.maxTimestamp,
      })
      .where(and(eq(archiveObjects.key, output.key), eq(archiveObjects.state, "pending"), intact)),
    db
      .update(archiveObjects)
      .set({ state: "retired", liveUntil: versionNow, deleteAfter })
      .where(
        and(
          eq(archiveObjects.replacedBy, output.key),
          eq(archiveObjects.state, "live"),
          sql`EXISTS (SELECT 1 FROM ${archiveObjects} WHERE ${archiveObjects.key} = ${output.key} AND ${archiveObjects.state} = 'live')`,
        ),
      ),
  ]);
  return (results[1] as unknown as { meta: { changes: number } }).meta.changes === 1;
}

/** Gives up a recorded compaction: its output's row goes, its inputs name nothing. The caller deletes the output from R2 first. */
export async function abandonCompaction(db: Db, key: string): Promise<void> {
  await db.batch([
    db.delete(archiveObjects).where(and(eq(archiveObjects.key, key), eq(archiveObjects.state, "pending"))),
    db
      .update(archiveObjects)
      .set({ replacedBy: null })
      .where(and(eq(archiveObjects.replacedBy, key), eq(archiveObjects.state, "live"))),
  ]);
}

/** Retired objects whose grace period has ended by `now` (their R2 objects due for deletion), at most `limit`. */
export function retiredDue(db: Db, now: number, limit: number): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(and(eq(archiveObjects.state, "retired"), lte(archiveObjects.deleteAfter, now)))
    .orderBy(asc(archiveObjects.deleteAfter))
    .limit(limit);
}

/**
 * Retired objects deleted from R2 become 'gone': their rows stay until `forgetAfter`, so a reader
 * that reaches one still finds its replacement.
 */
export async function markGone(db: Db, keys: string[], forgetAfter: number): Promise<void> {
  if (keys.length === 0) return;
  await db
    .update(archiveObjects)
    .set({ state: "gone", deleteAfter: forgetAfter })
    .where(and(inArray(archiveObjects.key, keys), eq(archiveObjects.state, "retired")));
}

/**
 * Forgets the gone objects whose rows were due by `now`, at most `limit`: their rows go, and the
 * forgotten version moves to the highest version they were live at, in one transaction. Returns
 * how many went.
 */
export async function forgetGone(db: Db, now: number, limit: number): Promise<number> {
  const doomed = sql`${archiveObjects.key} IN (SELECT key FROM ${archiveObjects} WHERE state = 'gone' AND delete_after <= ${now} LIMIT ${limit})`;
  const results = await db.batch([
    db
      .update(archiveState)
      .set({
        forgottenVersion: sql`max(${archiveState.forgottenVersion}, coalesce((SELECT max(live_until) FROM ${archiveObjects} WHERE ${doomed}), 0))`,
      })
      .where(eq(archiveState.id, 1)),
    db.delete(archiveObjects).where(doomed),
  ]);
  return (results[1] as unknown as { meta: { changes: number } }).meta.changes;
}
