// The archive's objects in R2: their names (Hive-style partitions by application and event
// date/hour), writing one, listing those a time range needs, and reading one back line by line.
import { DAY, formatTimestamp, HOUR } from "../shared/timestamp";

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

/** Writes one archive object: NDJSON lines, gzipped, typed so any tool reads it as it is. */
export async function putLines(bucket: R2Bucket, key: string, lines: string[]): Promise<void> {
  await bucket.put(key, await gzipText(`${lines.join("\n")}\n`), {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    customMetadata: { events: String(lines.length) },
  });
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
          if (hour >= firstHour && hour <= lastHour && first !== null && first <= scan.archivedThrough)
            keys.push(object.key);
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
