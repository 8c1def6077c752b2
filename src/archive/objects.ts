// The archive's objects in R2: their names (Hive-style partitions by application and event date),
// putting and getting Parquet objects, and the gzip NDJSON objects written before the manifest
// (hour partitions), which stay readable: listed, streamed line by line, rewritten by erasure.
//   events/app_id=<app>/date=YYYY-MM-DD/part-<first id>-<last id>[-c<version>][-e<request>].parquet
//   events/app_id=<app>/date=YYYY-MM-DD/hour=HH/part-<first id>.ndjson.gz          (before the manifest)
import { DAY, formatTimestamp, HOUR } from "../shared/timestamp";

export const ARCHIVE_ROOT = "events";
/** The partition of events stored without an application (Hive's name for a null partition value). */
export const NO_APP_PARTITION = "__HIVE_DEFAULT_PARTITION__";
/** Digits of ids in object names: lexical order is id order. */
const ID_DIGITS = 16;
const pad = (id: number) => String(id).padStart(ID_DIGITS, "0");

/** The partition value of an application (its id, or Hive's null partition). */
export const partitionApp = (appId: string | null): string => appId ?? NO_APP_PARTITION;
/** The application a partition value stands for. */
export const appOfPartition = (app: string): string | null => (app === NO_APP_PARTITION ? null : app);
/** An event's date partition, by its own timestamp (UTC). */
export const dateOf = (timestamp: number): string => formatTimestamp(timestamp).slice(0, 10);

/** The prefix of one application's partitions, or of one of its dates. */
export function partitionPrefix(app: string, date?: string): string {
  return `${ARCHIVE_ROOT}/app_id=${encodeURIComponent(app)}/${date === undefined ? "" : `date=${date}/`}`;
}

/**
 * A Parquet object's key: its partition and the id range it covers. `c`: the manifest version a
 * compaction was planned at; `e`: the erasure request that rewrote it (replacing an earlier `e`).
 */
export function parquetKey(app: string, date: string, firstId: number, lastId: number, suffix = ""): string {
  return `${partitionPrefix(app, date)}part-${pad(firstId)}-${pad(lastId)}${suffix}.parquet`;
}

/** The key an erasure request's rewrite of `key` gets. */
export function erasedKey(key: string, request: number): string {
  return key.replace(/(-e\d+)?\.parquet$/, `-e${request}.parquet`);
}

/** Puts one Parquet object, typed so a browser or a tool knows it, with its id range in its metadata. */
export async function putParquet(
  bucket: R2Bucket,
  key: string,
  bytes: Uint8Array,
  meta: { events: number; firstId: number; lastId: number },
): Promise<void> {
  await bucket.put(key, bytes, {
    httpMetadata: { contentType: "application/vnd.apache.parquet" },
    customMetadata: { events: String(meta.events), first_id: String(meta.firstId), last_id: String(meta.lastId) },
  });
}

/** A whole object's bytes, or null when it is gone. One GET: one version of the object. */
export async function getObject(bucket: R2Bucket, key: string): Promise<ArrayBuffer | null> {
  const object = await bucket.get(key);
  return object ? object.arrayBuffer() : null;
}

/**
 * An object read by ranges (hyparquet slices it: the footer, then the row groups it needs), each
 * range pinned to the version first seen: a read never mixes two versions of a key.
 */
export async function rangedObject(
  bucket: R2Bucket,
  key: string,
): Promise<{ byteLength: number; slice(start: number, end?: number): Promise<ArrayBuffer> } | null> {
  const head = await bucket.head(key);
  if (!head) return null;
  return {
    byteLength: head.size,
    async slice(start: number, end = head.size) {
      const object = await bucket.get(key, {
        range: { offset: start, length: end - start },
        onlyIf: { etagMatches: head.etag },
      });
      if (!object || !("body" in object)) throw new Error(`archive object ${key} changed or went while it was read`);
      return object.arrayBuffer();
    },
  };
}

// The older archive: gzip NDJSON, hour partitions, named by the first id of a block of ids.

/** `events/app_id=…/date=…/hour=…/`: an event's hour partition in the older archive. */
export function legacyPartitionOf(appId: string | null, timestamp: number): string {
  const at = formatTimestamp(timestamp);
  return `${partitionPrefix(partitionApp(appId), at.slice(0, 10))}hour=${at.slice(11, 13)}/`;
}

export function legacyObjectName(partition: string, firstId: number): string {
  return `${partition}part-${pad(firstId)}.ndjson.gz`;
}

/** The block a gzip NDJSON object holds, read back from its name: its first id. */
export function firstIdOf(key: string): number | null {
  const m = /\/part-(\d+)\.ndjson\.gz$/.exec(key);
  return m ? Number(m[1]) : null;
}

export async function gzipText(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Writes one gzip NDJSON object (erasure rewrites the older archive's objects so). */
export async function putLines(bucket: R2Bucket, key: string, lines: string[]): Promise<void> {
  await bucket.put(key, await gzipText(`${lines.join("\n")}\n`), {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    customMetadata: { events: String(lines.length) },
  });
}

export interface LegacyScan {
  /** Partition applications; undefined: every application's. */
  apps?: string[];
  /** Inclusive bounds, microseconds; undefined: every hour. */
  after?: number;
  before?: number;
  /** The older archive's last id (archive_state.legacy_through): objects of later blocks are not read. */
  legacyThrough: number;
}

/** The partitions' application values present under a prefix. */
async function prefixesUnder(bucket: R2Bucket, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix, delimiter: "/", cursor });
    out.push(...listed.delimitedPrefixes);
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  return out;
}

/**
 * The keys of the older archive's gzip NDJSON objects that may hold events in [after, before] for
 * the applications asked, in key order: one listing per application and date present (dates
 * before 1970 too). Nothing is listed when there is no older archive (legacyThrough 0).
 */
export async function legacyObjects(bucket: R2Bucket, scan: LegacyScan): Promise<string[]> {
  if (scan.legacyThrough <= 0) return [];
  const apps = scan.apps
    ? scan.apps.map((a) => `${ARCHIVE_ROOT}/app_id=${encodeURIComponent(a)}/`)
    : await prefixesUnder(bucket, `${ARCHIVE_ROOT}/`);
  const floor = (t: number, unit: number) => t - (((t % unit) + unit) % unit);
  const firstHour = scan.after === undefined ? "" : formatTimestamp(floor(scan.after, HOUR)).slice(0, 13);
  const lastHour = scan.before === undefined ? "\uffff" : formatTimestamp(scan.before).slice(0, 13);
  const keys: string[] = [];
  for (const root of apps) {
    const dates =
      scan.after !== undefined && scan.before !== undefined && scan.before - scan.after <= 400 * DAY
        ? Array.from(
            { length: Math.floor((floor(scan.before, DAY) - floor(scan.after, DAY)) / DAY) + 1 },
            (_, i) => `${root}date=${dateOf(floor(scan.after!, DAY) + i * DAY)}/`,
          )
        : await prefixesUnder(bucket, root);
    for (const prefix of dates) {
      let cursor: string | undefined;
      do {
        const listed = await bucket.list({ prefix, cursor });
        for (const object of listed.objects) {
          const m = /\/date=(-?\d{4,}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(object.key);
          const hour = m ? `${m[1]}T${m[2]}` : "";
          const first = firstIdOf(object.key);
          if (hour >= firstHour && hour <= lastHour && first !== null && first <= scan.legacyThrough)
            keys.push(object.key);
        }
        cursor = listed.truncated ? listed.cursor : undefined;
      } while (cursor);
    }
  }
  return keys.sort();
}

/** The NDJSON lines of one gzip NDJSON object, inflated as they stream in. */
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
