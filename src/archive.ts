// The archive: every stored event, copied from D1 to R2 as gzip NDJSON in a layout standard
// tools read without The Eye: Hive-style partitions by application and event date/hour,
//   events/app_id=<app>/date=YYYY-MM-DD/hour=HH/part-<first id>.ndjson.gz
// Events go in blocks of consecutive ids (ARCHIVE_BLOCK_IDS): block [f, f+N-1] writes one object
// per partition it touches, named by f alone. Names are deterministic, so a run that is repeated
// (or redone after a failure) overwrites the same objects with the same or more lines: no event is
// archived twice. A block is sealed once a higher id exists (ids only grow, so nothing can join
// it); the archive watermark is the end of the last sealed block, and retention purges nothing
// above it. The block still growing is rewritten by each run until it is sealed.
import { and, between, eq, gt, sql } from "drizzle-orm";
import { directoryKnowing } from "./applications";
import { eventColumns, type Db, type StoredEvent } from "./db/events";
import { events, storageState } from "./db/schema";
import { renderEvent } from "./render";
import { formatTimestamp } from "./timestamp";

export const ARCHIVE_ROOT = "events";
/** The partition of events stored without an application (Hive's name for a null partition value). */
export const NO_APP_PARTITION = "__HIVE_DEFAULT_PARTITION__";
/** Digits of the first id in an object's name: lexical order is id order. */
const ID_DIGITS = 16;

/** `events/app_id=…/date=…/hour=…/`: the partition an event is archived under, by its own timestamp (UTC). */
export function partitionOf(appId: string | null, timestamp: number): string {
  const at = formatTimestamp(timestamp);
  return `${ARCHIVE_ROOT}/app_id=${encodeURIComponent(appId ?? NO_APP_PARTITION)}/date=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/`;
}

export function objectName(partition: string, firstId: number): string {
  return `${partition}part-${String(firstId).padStart(ID_DIGITS, "0")}.ndjson.gz`;
}

/** The block an object holds, read back from its name: its first id. */
export function firstIdOf(key: string): number | null {
  const m = /\/part-(\d+)\.ndjson\.gz$/.exec(key);
  return m ? Number(m[1]) : null;
}

export async function gzipText(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface StorageState {
  archivedThrough: number;
  archivedMaxId: number;
  archivedAt: number | null;
  purgedBefore: number | null;
  purgedAt: number | null;
}

export async function readStorageState(db: Db): Promise<StorageState> {
  const [row] = await db.select().from(storageState).where(eq(storageState.id, 1));
  return row ?? { archivedThrough: 0, archivedMaxId: 0, archivedAt: null, purgedBefore: null, purgedAt: null };
}

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
  await Promise.all([...byPartition].map(([partition, lines]) => putLines(bucket, objectName(partition, first), lines)));
  return byPartition.size;
}

/** Writes one archive object: NDJSON lines, gzipped, typed so any tool reads it as it is. */
export async function putLines(bucket: R2Bucket, key: string, lines: string[]): Promise<void> {
  await bucket.put(key, await gzipText(`${lines.join("\n")}\n`), {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    customMetadata: { events: String(lines.length) },
  });
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
  const [top] = await db.select({ maxId: sql<number>`coalesce(max(${events.id}), 0)` }).from(events);
  const maxId = top?.maxId ?? 0;
  const run: ArchiveRun = { archivedThrough: state.archivedThrough, maxId, blocks: 0, rows: 0, objects: 0, done: false };
  for (let first = state.archivedThrough + 1; first <= maxId; first += blockIds) {
    if (now() >= deadline) return run;
    const last = first + blockIds - 1;
    const rows = await db.select(eventColumns).from(events).where(between(events.id, first, last)).orderBy(events.id);
    run.objects += await writeBlock(db, bucket, rows, first);
    run.rows += rows.length;
    run.blocks++;
    // Sealed: a higher id exists, so no event can still join this block.
    if (maxId > last) {
      await db.update(storageState).set({ archivedThrough: last }).where(and(eq(storageState.id, 1), gt(sql`${last}`, storageState.archivedThrough)));
      run.archivedThrough = last;
    }
  }
  run.done = true;
  await db
    .update(storageState)
    .set({ archivedMaxId: maxId, archivedAt: now() * 1000 })
    .where(eq(storageState.id, 1));
  return run;
}

export interface ArchiveScan {
  /** Applications whose partitions to read; undefined reads every application's. */
  appIds?: (string | null)[];
  /** Inclusive bounds, microseconds. */
  after: number;
  before: number;
  /** Only sealed blocks are read (ids up to the watermark); newer events are read from D1. */
  archivedThrough: number;
}

/** The partitions' application values present in the archive. */
async function archivedApps(bucket: R2Bucket): Promise<string[]> {
  const apps: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix: `${ARCHIVE_ROOT}/`, delimiter: "/", cursor });
    for (const prefix of listed.delimitedPrefixes) apps.push(prefix.slice(`${ARCHIVE_ROOT}/`.length, -1));
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  return apps;
}

const DAY = 86_400_000_000;
const HOUR = 3_600_000_000;

/**
 * The keys of the sealed archive objects that may hold events in [after, before], for the
 * applications asked: one listing per application and day, kept to the hours in range.
 */
export async function archiveObjects(bucket: R2Bucket, scan: ArchiveScan): Promise<string[]> {
  const apps = scan.appIds
    ? scan.appIds.map((a) => `app_id=${encodeURIComponent(a ?? NO_APP_PARTITION)}`)
    : await archivedApps(bucket);
  const firstHour = formatTimestamp(scan.after - (((scan.after % HOUR) + HOUR) % HOUR)).slice(0, 13);
  const lastHour = formatTimestamp(scan.before).slice(0, 13);
  const keys: string[] = [];
  for (const app of apps) {
    for (let day = scan.after - (((scan.after % DAY) + DAY) % DAY); day <= scan.before; day += DAY) {
      const prefix = `${ARCHIVE_ROOT}/${app}/date=${formatTimestamp(day).slice(0, 10)}/`;
      let cursor: string | undefined;
      do {
        const listed = await bucket.list({ prefix, cursor });
        for (const object of listed.objects) {
          const m = /\/date=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(object.key);
          const hour = m ? `${m[1]}T${m[2]}` : "";
          const first = firstIdOf(object.key);
          if (hour >= firstHour && hour <= lastHour && first !== null && first <= scan.archivedThrough) keys.push(object.key);
        }
        cursor = listed.truncated ? listed.cursor : undefined;
      } while (cursor);
    }
  }
  return keys;
}

/** The NDJSON lines of one archive object, inflated as they stream in. */
export async function* archiveLines(bucket: R2Bucket, key: string): AsyncGenerator<string> {
  const object = await bucket.get(key);
  if (!object) return;
  const text = object.body.pipeThrough(new DecompressionStream("gzip")).pipeThrough(new TextDecoderStream());
  let rest = "";
  for await (const chunk of text) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const line of lines) if (line !== "") yield line;
  }
  if (rest !== "") yield rest;
}
