// The archive: every stored event, copied from D1 to R2 as gzip NDJSON in a layout standard
// tools read without The Eye: Hive-style partitions by application and event date/hour,
//   events/app_id=<app>/date=YYYY-MM-DD/hour=HH/part-<first id>.ndjson.gz
// Events go in blocks of consecutive ids (ARCHIVE_BLOCK_IDS): block [f, f+N-1] writes one object
// per partition it touches, named by f alone. Names are deterministic, so a run that is repeated
// (or redone after a failure) overwrites the same objects with the same or more lines: no event is
// archived twice. A block is sealed once a higher id exists (ids only grow, so nothing can join
// it); the archive watermark is the end of the last sealed block, and retention purges nothing
// above it. The block still growing is rewritten by each run until it is sealed.
import { and, eq, gt, sql } from "drizzle-orm";
import { objectName, partitionOf, putLines } from "../archive/objects";
import { directoryKnowing } from "../db/applications";
import { deleteArrivalsThrough, eventsInIdRange, maxEventId } from "../db/arrival-reads";
import type { Db } from "../db/db";
import type { StoredEvent } from "../db/event-reads";
import { renderEvent } from "../db/render";
import { storageState } from "../db/schema";
import { readStorageState } from "../db/storage-state";

/** Writes one block's events (ids first..last, those that exist) to R2: one object per partition. */
async function writeBlock(db: Db, bucket: R2Bucket, rows: StoredEvent[], first: number): Promise<number> {
  const apps = await directoryKnowing(db, new Set(rows.map((r) => r.app)));
  const byPartition = new Map<string, string[]>();
  for (const row of rows) {
    const appId = apps.idOf(row.app);
    const partition = partitionOf(appId, row.timestamp);
    const lines = byPartition.get(partition);
    if (lines) lines.push(renderEvent(row, appId));
    else byPartition.set(partition, [renderEvent(row, appId)]);
  }
  await Promise.all(
    [...byPartition].map(([partition, lines]) => putLines(bucket, objectName(partition, first), lines)),
  );
  return byPartition.size;
}

export interface ArchiveRun {
  /** The archive watermark after the run. */
  archivedThrough: number;
  /** The highest event id when the run started. */
  maxId: number;
  blocks: number;
  rows: number;
  objects: number;
  /** False when the time budget ran out with events still to archive. */
  done: boolean;
}

/**
 * Archives every event above the watermark, block by block, until none is left or `deadline`
 * (ms since the epoch) passes; each sealed block moves the watermark in D1 as soon as it is in R2.
 */
export async function archiveNew(
  db: Db,
  bucket: R2Bucket,
  { blockIds, deadline, now = Date.now }: { blockIds: number; deadline: number; now?: () => number },
): Promise<ArchiveRun> {
  const state = await readStorageState(db);
  const maxId = await maxEventId(db);
  // While the pre-0010 table is rebuilt, ids above the watermark may still be in it: wait for them.
  if (state.rebuiltThrough !== null && state.rebuiltThrough > state.archivedThrough + 1)
    return { archivedThrough: state.archivedThrough, maxId, blocks: 0, rows: 0, objects: 0, done: false };
  const run: ArchiveRun = {
    archivedThrough: state.archivedThrough,
    maxId,
    blocks: 0,
    rows: 0,
    objects: 0,
    done: false,
  };
  for (let first = state.archivedThrough + 1; first <= maxId; first += blockIds) {
    if (now() >= deadline) return run;
    const last = first + blockIds - 1;
    const rows = await eventsInIdRange(db, first, last);
    run.objects += await writeBlock(db, bucket, rows, first);
    run.rows += rows.length;
    run.blocks++;
    // Sealed: a higher id exists, so no event can still join this block.
    if (maxId > last) {
      await db
        .update(storageState)
        .set({ archivedThrough: last })
        .where(and(eq(storageState.id, 1), gt(sql`${last}`, storageState.archivedThrough)));
      run.archivedThrough = last;
      await deleteArrivalsThrough(db, last);
    }
  }
  run.done = true;
  await db
    .update(storageState)
    .set({ archivedMaxId: maxId, archivedAt: now() * 1000 })
    .where(eq(storageState.id, 1));
  return run;
}
