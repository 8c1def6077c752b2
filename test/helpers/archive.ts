// What the archive holds, for the tests: the manifest's live objects and their rows, every object in
// R2 whatever the manifest says, and an R2 bucket that counts (and can fail) what is done to it.
import { env } from "cloudflare:workers";
import { ARCHIVE_ROOT, archiveLines } from "../../src/archive/objects";
import { type ArchivedEvent, parquetRows } from "../../src/archive/parquet";
import type { ArchiveObjectRow } from "../../src/db/schema";

/** The manifest's rows, by state. */
export async function manifest(state?: ArchiveObjectRow["state"]): Promise<ArchiveObjectRow[]> {
  const rows = await env.DB.prepare(
    `SELECT key, app, date, first_id AS firstId, last_id AS lastId, events, bytes, text_bytes AS textBytes,
      min_timestamp AS minTimestamp, max_timestamp AS maxTimestamp, origin, state, live_from AS liveFrom,
      live_until AS liveUntil, replaced_by AS replacedBy, delete_after AS deleteAfter, created_at AS createdAt
     FROM archive_objects ${state ? "WHERE state = ?" : ""} ORDER BY key`,
  )
    .bind(...(state ? [state] : []))
    .all<ArchiveObjectRow>();
  return rows.results;
}

/** Every row of one Parquet object in R2. */
export async function objectEvents(key: string, bucket: R2Bucket = env.ARCHIVE): Promise<ArchivedEvent[]> {
  const object = await bucket.get(key);
  if (!object) throw new Error(`no object ${key}`);
  const out: ArchivedEvent[] = [];
  for await (const group of parquetRows(await object.arrayBuffer())) out.push(...group);
  return out;
}

/** Every row of the live objects, with the key holding it, and how many live objects hold each (seq). */
export async function liveEvents(prefix = `${ARCHIVE_ROOT}/`) {
  const rows: { key: string; event: ArchivedEvent }[] = [];
  for (const o of await manifest("live")) {
    if (!o.key.startsWith(prefix)) continue;
    for (const event of await objectEvents(o.key)) rows.push({ key: o.key, event });
  }
  const copies = new Map<number, number>();
  for (const { event } of rows) copies.set(event.seq, (copies.get(event.seq) ?? 0) + 1);
  return { rows, copies };
}

/** Every object key in R2 under a prefix, whatever the manifest says. */
export async function r2Keys(prefix = `${ARCHIVE_ROOT}/`): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await env.ARCHIVE.list({ prefix, cursor });
    keys.push(...listed.objects.map((o) => o.key));
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Every copy in R2 of events matching `test`, by key: Parquet rows and gzip NDJSON lines alike. */
export async function copiesInR2(
  test: (e: { session_id: string; event_id: string }) => boolean,
  prefix = `${ARCHIVE_ROOT}/`,
) {
  const found = new Map<string, number>();
  for (const key of await r2Keys(prefix)) {
    let n = 0;
    if (key.endsWith(".parquet")) {
      for (const e of await objectEvents(key)) if (test({ session_id: e.sessionId, event_id: e.eventId })) n++;
    } else {
      for await (const line of archiveLines(env.ARCHIVE, key))
        if (test(JSON.parse(line) as { session_id: string; event_id: string })) n++;
    }
    if (n > 0) found.set(key, n);
  }
  return found;
}

export interface BucketMeter {
  puts: number;
  gets: number;
  lists: number;
  deletes: number;
  putKeys: string[];
}

/**
 * The archive bucket, counting calls; `failPut(key, n)` makes a put throw (after landing, when
 * `landed`), e.g. to stop a run between two writes.
 */
export function meteredBucket(
  inner: R2Bucket = env.ARCHIVE,
  failPut?: (key: string, n: number) => "before" | "after" | undefined,
): { bucket: R2Bucket; meter: BucketMeter } {
  const meter: BucketMeter = { puts: 0, gets: 0, lists: 0, deletes: 0, putKeys: [] };
  const bucket = new Proxy(inner, {
    get(target, prop) {
      if (prop === "put")
        return async (...args: Parameters<R2Bucket["put"]>) => {
          meter.puts++;
          meter.putKeys.push(args[0]);
          const fail = failPut?.(args[0], meter.puts);
          if (fail === "before") throw new Error(`put ${args[0]} failed`);
          const out = await target.put(...args);
          if (fail === "after") throw new Error(`isolate gone after put ${args[0]}`);
          return out;
        };
      if (prop === "get" || prop === "head") meter.gets++;
      if (prop === "list") meter.lists++;
      if (prop === "delete") meter.deletes++;
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { bucket, meter };
}
