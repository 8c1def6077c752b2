// The archive: every stored event, copied from D1 to R2 as typed Parquet under Hive-style partitions
// by application and event date, in ranges of ids. Each run takes the ids above the watermark in
// ranges bounded in events, bytes and partitions; for each it records the range (afterId, throughId]
// and the objects it will write in D1 first, then writes one object per partition named by the range,
// then in one transaction makes them live in the manifest and moves the watermark to the range's end.
// A run that stops in between finds the recorded range and writes exactly the same objects again
// (an erased row is missing from them; an object left without rows is deleted): nothing is archived
// twice and no setting can change a name. Every event stored when a run starts is archived by it,
// unless the run's own bounds stop it first (then the next run goes on): the watermark moves every
// run, and retention purges nothing above it.

import { legacyObjectName, legacyPartitionOf, parquetKey, putParquet } from "../archive/objects";
import { type ArchivedEvent, textBytes, writeParquet } from "../archive/parquet";
import { archivedOf, partitionOfEvent } from "../archive/rows";
import { directoryKnowing } from "../db/applications";
import {
  commitRange,
  type PlannedObject,
  pendingRangeObjects,
  readArchiveState,
  recordRange,
  type WrittenObject,
} from "../db/archive-manifest";
import { eventsInIdRange, maxEventId } from "../db/archive-reads";
import type { Db } from "../db/db";
import type { StoredEvent } from "../db/event-reads";
import { readStorageState } from "../db/storage-state";

/** What one D1 read returns at most: rows, and bytes (far inside D1's limit on a result's size). */
export const READ_PAGE = { rows: 1_000, bytes: 4 * 1024 * 1024 };
/** One range at most: events, their text bytes (held in memory while its objects are written), partitions (objects). */
export const RANGE_LIMITS = { events: 20_000, bytes: 8 * 1024 * 1024, partitions: 64 };
/** One run at most: bytes read from D1 and objects written to R2 (a Worker's memory and subrequests stay far from their limits). */
export const RUN_LIMITS = { bytes: 96 * 1024 * 1024, objects: 256 };

export interface ArchiveRun {
  /** The archive watermark after the run. */
  archivedThrough: number;
  /** The highest event id when the run started. */
  maxId: number;
  /** Ranges archived (a range recorded by an earlier run that stopped, written again, included). */
  ranges: number;
  rows: number;
  objects: number;
  /** Text bytes of the rows read from D1. */
  bytes: number;
  /** The largest range's objects, rows and bytes: what the bounds hold. */
  largest: { objects: number; rows: number; bytes: number };
  /** A range recorded by a run that stopped before it was done, written again. */
  resumed: boolean;
  /** False when a bound or the time budget stopped the run with events still to archive. */
  done: boolean;
}

interface Range {
  afterId: number;
  throughId: number;
  rows: ArchivedEvent[];
}

/** A range's rows by partition, each as the object that holds them. */
function objectsOf(range: Range): { planned: PlannedObject; rows: ArchivedEvent[] }[] {
  const parts = new Map<string, { app: string; date: string; rows: ArchivedEvent[] }>();
  for (const row of range.rows) {
    const { app, date } = partitionOfEvent(row);
    const id = `${app}\u0000${date}`;
    const part = parts.get(id);
    if (part) part.rows.push(row);
    else parts.set(id, { app, date, rows: [row] });
  }
  return [...parts.values()].map(({ app, date, rows }) => ({
    rows,
    planned: {
      key: parquetKey(app, date, range.afterId + 1, range.throughId),
      app,
      date,
      firstId: range.afterId + 1,
      lastId: range.throughId,
      events: rows.length,
      textBytes: rows.reduce((n, r) => n + textBytes(r), 0),
      minTimestamp: Math.min(...rows.map((r) => r.timestamp)),
      maxTimestamp: Math.max(...rows.map((r) => r.timestamp)),
    },
  }));
}

/** Reads the rows of (afterId, throughId] from D1 as archive rows, a bounded page at a time. */
async function* pages(db: Db, afterId: number, throughId: number): AsyncGenerator<ArchivedEvent[]> {
  for (let after = afterId; after < throughId; ) {
    const rows: StoredEvent[] = await eventsInIdRange(db, {
      afterId: after,
      throughId,
      limit: READ_PAGE.rows,
      maxBytes: READ_PAGE.bytes,
    });
    if (rows.length === 0) return;
    const apps = await directoryKnowing(db, new Set(rows.map((r) => r.app)));
    yield rows.map((r) => archivedOf(r, apps.idOf(r.app)));
    after = rows[rows.length - 1]!.id;
  }
}

/**
 * Writes a recorded range's objects (those it still has rows for; the others go from R2), then
 * commits it: objects live, watermark at its end. Deletes the older archive's objects of its
 * still-growing block that these rows were in (their ids are archived here, as Parquet).
 */
async function writeRange(
  db: Db,
  bucket: R2Bucket,
  range: Range,
  recorded: string[],
  { maxId, now, legacy }: { maxId: number; now: () => number; legacy: { through: number; openThrough: number } },
): Promise<number> {
  const objects = objectsOf(range);
  const written: WrittenObject[] = [];
  for (const { planned, rows } of objects) {
    if (!recorded.includes(planned.key)) throw new Error(`archive range ${planned.key} was not recorded`);
    const bytes = writeParquet(rows);
    await putParquet(bucket, planned.key, bytes, planned);
    written.push({ ...planned, bytes: bytes.byteLength });
  }
  const dropped = recorded.filter((key) => !written.some((o) => o.key === key));
  if (dropped.length > 0) await bucket.delete(dropped);
  if (legacy.openThrough > legacy.through) {
    const open = new Set(
      range.rows
        .filter((r) => r.seq <= legacy.openThrough)
        .map((r) => legacyObjectName(legacyPartitionOf(r.application, r.timestamp), legacy.through + 1)),
    );
    if (open.size > 0) await bucket.delete([...open]);
  }
  await commitRange(db, { throughId: range.throughId, written, dropped, maxId, now: now() * 1000 });
  return written.length;
}

/**
 * Archives the events above the watermark, range by range, until none is left, the run's bounds
 * (RUN_LIMITS) are reached or `deadline` (ms since the epoch) passes. A range recorded by a run
 * that stopped is written first.
 */
export async function archiveNew(
  db: Db,
  bucket: R2Bucket,
  { deadline, now = Date.now }: { deadline: number; now?: () => number },
): Promise<ArchiveRun> {
  const state = await readArchiveState(db);
  const legacy = { through: state.legacyThrough, openThrough: state.legacyOpenThrough };
  const maxId = await maxEventId(db);
  const run: ArchiveRun = {
    archivedThrough: (await readStorageState(db)).archivedThrough,
    maxId,
    ranges: 0,
    rows: 0,
    objects: 0,
    bytes: 0,
    largest: { objects: 0, rows: 0, bytes: 0 },
    resumed: false,
    done: false,
  };
  const count = (range: Range, objects: number) => {
    const bytes = range.rows.reduce((n, r) => n + textBytes(r), 0);
    run.ranges++;
    run.rows += range.rows.length;
    run.objects += objects;
    run.bytes += bytes;
    run.largest = {
      objects: Math.max(run.largest.objects, objects),
      rows: Math.max(run.largest.rows, range.rows.length),
      bytes: Math.max(run.largest.bytes, bytes),
    };
    run.archivedThrough = range.throughId;
  };

  // A range a stopped run recorded: the same rows (less any erased since), the same objects.
  if (state.pendingThrough !== null && state.pendingAfter !== null) {
    const range: Range = { afterId: state.pendingAfter, throughId: state.pendingThrough, rows: [] };
    for await (const page of pages(db, range.afterId, range.throughId)) range.rows.push(...page);
    const recorded = (await pendingRangeObjects(db)).map((o) => o.key);
    count(range, await writeRange(db, bucket, range, recorded, { maxId, now, legacy }));
    run.resumed = true;
  }

  // New ranges: rows are taken in id order until a bound would be passed; the rest of a page waits for the next range.
  let carry: ArchivedEvent[] = [];
  let after = run.archivedThrough;
  const source = pages(db, after, maxId);
  for (;;) {
    if (after >= maxId) {
      run.done = true;
      break;
    }
    if (
      now() >= deadline ||
      run.bytes >= RUN_LIMITS.bytes ||
      run.objects + RANGE_LIMITS.partitions > RUN_LIMITS.objects
    )
      break;
    const range: Range = { afterId: after, throughId: after, rows: [] };
    const partitions = new Set<string>();
    let bytes = 0;
    const take = (row: ArchivedEvent): boolean => {
      const { app, date } = partitionOfEvent(row);
      const part = `${app}\u0000${date}`;
      const b = textBytes(row);
      const full =
        range.rows.length > 0 &&
        (range.rows.length >= RANGE_LIMITS.events ||
          bytes + b > RANGE_LIMITS.bytes ||
          (!partitions.has(part) && partitions.size >= RANGE_LIMITS.partitions));
      if (full) return false;
      range.rows.push(row);
      partitions.add(part);
      bytes += b;
      range.throughId = row.seq;
      return true;
    };
    let full = false;
    while (!full) {
      if (carry.length === 0) {
        const next = await source.next();
        if (next.done) break;
        carry = next.value;
      }
      let i = 0;
      while (i < carry.length && take(carry[i]!)) i++;
      full = i < carry.length;
      carry = carry.slice(i);
    }
    if (range.rows.length === 0) {
      run.done = true;
      break;
    }
    const objects = objectsOf(range);
    await recordRange(db, {
      afterId: range.afterId,
      throughId: range.throughId,
      objects: objects.map((o) => o.planned),
      now: now() * 1000,
    });
    count(
      range,
      await writeRange(
        db,
        bucket,
        range,
        objects.map((o) => o.planned.key),
        { maxId, now, legacy },
      ),
    );
    after = range.throughId;
  }
  return run;
}
