// Compaction: the small objects of one partition (each cron run writes one per partition it
// touches) merged into one, without a moment in which an event is in two live objects or in none.
// A compaction is recorded in the manifest first (its output pending, each input naming it), its
// output written, then swapped in with one D1 transaction (the inputs retire, the output goes
// live, the version moves): readers of the manifest see the inputs or the output, never both. The
// retired inputs stay in R2 for GRACE_MS, so a reader that listed them before the swap can still
// read them; then they go from R2, and FORGET_MS later from the manifest (until then a reader that
// reaches one reads its rows from the output). A run that stops after recording finds the
// compaction and writes it again, or gives it up if an input changed meanwhile.

import { getObject, parquetKey, putParquet } from "../archive/objects";
import { type ArchivedEvent, parquetRows, writeParquet } from "../archive/parquet";
import {
  abandonCompaction,
  compactionCandidates,
  forgetGone,
  markGone,
  partitionObjects,
  pendingCompactions,
  recordCompaction,
  replacedBy,
  retiredDue,
  swapCompaction,
} from "../db/archive-compaction";
import { type PlannedObject, readArchiveState } from "../db/archive-manifest";
import type { Db } from "../db/db";
import type { ArchiveObjectRow } from "../db/schema";

/** How long a replaced object stays in R2 after the swap, for readers that listed it before. */
export const GRACE_MS = 60 * 60 * 1000;
/** How long its manifest row stays after that, so a reader of an older version finds its replacement. */
export const FORGET_MS = 7 * 24 * 60 * 60 * 1000;
/** An object is small (worth merging) below these; a merge's output holds at most the targets (it is decoded whole). */
export const SMALL = { events: 10_000, textBytes: 4 * 1024 * 1024 };
export const TARGET = { events: 50_000, textBytes: 24 * 1024 * 1024 };
/** A partition of today is compacted once it has this many small objects (an hour of cron runs); an older date at two. */
export const MIN_OBJECTS = 12;
/** Compactions per run at most, and retired objects deleted per run at most (one R2 delete call). */
export const RUN_LIMITS = { compactions: 8, deletions: 1_000 };

export interface CompactRun {
  /** Retired objects deleted from R2 (their grace over), and manifest rows of such objects forgotten (days later). */
  deleted: number;
  forgotten: number;
  compactions: number;
  /** Objects merged, and events rewritten. */
  inputs: number;
  events: number;
  /** Recorded compactions given up (an input changed before the swap). */
  abandoned: number;
  /** False when a bound or the time budget stopped it with work left. */
  done: boolean;
}

/**
 * The first group worth merging among a partition's live objects (in id order): neighbours that
 * are all small, at most TARGET together, at least two, and MIN_OBJECTS unless `closed`. Only
 * neighbours, so the output's id range holds no other live object's ids.
 */
export function groupToCompact(objects: ArchiveObjectRow[], closed: boolean): ArchiveObjectRow[] | null {
  let group: ArchiveObjectRow[] = [];
  let events = 0;
  let bytes = 0;
  const ready = () => group.length >= 2 && (closed || group.length >= MIN_OBJECTS);
  for (const o of objects) {
    const small = o.events < SMALL.events && o.textBytes < SMALL.textBytes && o.replacedBy === null;
    const fits = events + o.events <= TARGET.events && bytes + o.textBytes <= TARGET.textBytes;
    if (small && fits) {
      group.push(o);
      events += o.events;
      bytes += o.textBytes;
      continue;
    }
    if (ready()) return group;
    group = small ? [o] : [];
    events = small ? o.events : 0;
    bytes = small ? o.textBytes : 0;
  }
  return ready() ? group : null;
}

/** Every row of the inputs, read whole (one GET each). Null when one is gone (the compaction is then given up). */
async function rowsOf(bucket: R2Bucket, inputs: ArchiveObjectRow[]): Promise<ArchivedEvent[] | null> {
  const rows: ArchivedEvent[] = [];
  for (const input of inputs) {
    const file = await getObject(bucket, input.key);
    if (!file) return null;
    for await (const group of parquetRows(file)) rows.push(...group);
  }
  return rows;
}

/** Writes a recorded compaction's output and swaps it in; false (and given up) when an input changed or went. */
async function finish(db: Db, bucket: R2Bucket, output: PlannedObject, inputs: ArchiveObjectRow[], now: () => number) {
  // Every input still live and as recorded (an erasure may have rewritten one since): else given up.
  const intact = inputs.every((i) => i.state === "live") && inputs.reduce((n, i) => n + i.events, 0) === output.events;
  const rows = intact ? await rowsOf(bucket, inputs) : null;
  if (rows) {
    const bytes = writeParquet(rows);
    await putParquet(bucket, output.key, bytes, output);
    const swapped = await swapCompaction(db, {
      output: { ...output, events: rows.length, bytes: bytes.byteLength },
      inputs: inputs.map((i) => i.key),
      deleteAfter: (now() + GRACE_MS) * 1000,
    });
    if (swapped) return true;
  }
  await bucket.delete(output.key);
  await abandonCompaction(db, output.key);
  return false;
}

/**
 * Deletes the retired objects whose grace has passed, finishes (or gives up) compactions a stopped
 * run recorded, then merges partitions' small objects, until none is worth it, RUN_LIMITS, or
 * `deadline` (ms since the epoch).
 */
export async function compact(
  db: Db,
  bucket: R2Bucket,
  { deadline, now = Date.now }: { deadline: number; now?: () => number },
): Promise<CompactRun> {
  const run: CompactRun = { deleted: 0, forgotten: 0, compactions: 0, inputs: 0, events: 0, abandoned: 0, done: false };
  const due = await retiredDue(db, now() * 1000, RUN_LIMITS.deletions);
  if (due.length > 0) {
    await bucket.delete(due.map((o) => o.key));
    await markGone(
      db,
      due.map((o) => o.key),
      (now() + FORGET_MS) * 1000,
    );
    run.deleted = due.length;
  }
  run.forgotten = await forgetGone(db, now() * 1000, RUN_LIMITS.deletions);
  for (const pending of await pendingCompactions(db)) {
    if (now() >= deadline) return run;
    if (await finish(db, bucket, pending, await replacedBy(db, pending.key), now)) run.compactions++;
    else run.abandoned++;
  }
  const today = new Date(now()).toISOString().slice(0, 10);
  while (run.compactions < RUN_LIMITS.compactions) {
    if (now() >= deadline) return run;
    const candidates = await compactionCandidates(db, {
      smallEvents: SMALL.events,
      smallBytes: SMALL.textBytes,
      minObjects: MIN_OBJECTS,
      closedBefore: today,
      limit: 20,
    });
    let group: ArchiveObjectRow[] | null = null;
    for (const c of candidates) {
      group = groupToCompact(await partitionObjects(db, c.app, c.date), c.date < today);
      if (group) break;
    }
    if (!group) {
      run.done = due.length < RUN_LIMITS.deletions;
      return run;
    }
    const { version } = await readArchiveState(db);
    const first = group[0]!;
    const last = group[group.length - 1]!;
    const output: PlannedObject = {
      key: parquetKey(first.app, first.date, first.firstId, last.lastId, `-c${version}`),
      app: first.app,
      date: first.date,
      firstId: first.firstId,
      lastId: last.lastId,
      events: group.reduce((n, o) => n + o.events, 0),
      textBytes: group.reduce((n, o) => n + o.textBytes, 0),
      minTimestamp: Math.min(...group.map((o) => o.minTimestamp)),
      maxTimestamp: Math.max(...group.map((o) => o.maxTimestamp)),
    };
    await recordCompaction(db, { output, inputs: group.map((o) => o.key), now: now() * 1000 });
    if (await finish(db, bucket, output, await replacedBy(db, output.key), now)) {
      run.compactions++;
      run.inputs += group.length;
      run.events += output.events;
    } else run.abandoned++;
  }
  return run;
}
