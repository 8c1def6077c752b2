// The archive's Parquet files: the schema, the row layout that lets a reader prune by time and by
// session from statistics alone, writing a file (hyparquet-writer: pure JavaScript, no eval, GZIP
// pages through node:zlib) and reading one back row group by row group (hyparquet).
//
// Layout: rows sorted by (hour of timestamp, session_id, timestamp, seq); a row group never holds two
// hours and holds at most ROW_GROUP_ROWS rows and about ROW_GROUP_BYTES of text. So each row group's
// timestamp min/max lies within one hour, and within an hour the row groups split the session ids
// into disjoint min/max ranges: a time filter keeps the row groups of its hours, a session filter
// the one row group per hour whose session_id range holds it (docs/storage.md, "The Parquet files").
import { gunzipSync, gzipSync } from "node:zlib";
import {
  type CompressionCodec,
  type FileMetaData,
  parquetMetadata,
  parquetReadObjects,
  type RowGroup,
  type SchemaElement,
} from "hyparquet";
import { ByteWriter, type ColumnSource, ParquetWriter } from "hyparquet-writer";
import type { Compressors } from "hyparquet-writer/src/types.js";
import { type EventContext, eventContext } from "../shared/schemas";
import { HOUR } from "../shared/timestamp";

/** The context fields, one column each, in the order the Worker writes them (ingest/context.ts). */
export const CONTEXT_FIELDS = Object.keys(eventContext.shape) as (keyof EventContext)[];

/** Rows per row group at most: DuckDB and Spark scan row groups in parallel; statistics prune them. */
export const ROW_GROUP_ROWS = 10_000;
/** Text bytes per row group at most (a row group is decoded whole): large events make smaller groups. */
export const ROW_GROUP_BYTES = 4 * 1024 * 1024;
/** Written into each file's key-value metadata: the schema's version and the sort order. */
export const SCHEMA_VERSION = "1";
export const SORTING = "hour(timestamp), session_id, timestamp, seq";

/** One archived event as a Parquet row holds it. */
export interface ArchivedEvent {
  /** The storage id: unique, grows in arrival order (the archive's ranges are ranges of it). */
  seq: number;
  eventId: string;
  sessionId: string;
  category: string;
  name: string;
  /** Microseconds since the epoch, UTC. */
  timestamp: number;
  receivedAt: number;
  /** The JSON text of the event's data object. */
  data: string;
  /** The application's id; null for events stored without one. */
  application: string | null;
  context: EventContext | null;
}

const required = "REQUIRED" as const;
const optional = "OPTIONAL" as const;
const text = (name: string, repetition_type: "REQUIRED" | "OPTIONAL"): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
  repetition_type,
});
const micros = (name: string): SchemaElement => ({
  name,
  type: "INT64",
  converted_type: "TIMESTAMP_MICROS",
  logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
  repetition_type: required,
});

/**
 * The file schema (docs/storage.md states it). The event id is a 36-character string rather than
 * Parquet's UUID type, which Spark cannot read; `data` is the event's JSON text as a string column.
 */
export const SCHEMA: SchemaElement[] = (() => {
  const fields: SchemaElement[] = [
    { name: "seq", type: "INT64", repetition_type: required },
    text("event_id", required),
    text("session_id", required),
    text("category", required),
    text("name", required),
    micros("timestamp"),
    micros("received_at"),
    text("data", required),
    text("application", optional),
    ...CONTEXT_FIELDS.map(
      (f): SchemaElement => (f === "asn" ? { name: f, type: "INT64", repetition_type: optional } : text(f, optional)),
    ),
  ];
  return [{ name: "root", num_children: fields.length }, ...fields];
})();

/** The row's text bytes, as the archive's size bounds count them (UTF-16 units: close enough, and cheap). */
export function textBytes(e: ArchivedEvent): number {
  return e.data.length + e.sessionId.length + e.category.length + e.name.length + 100;
}

/**
 * Compares strings as Parquet orders UTF-8 statistics (by code point, byte-wise), not as JavaScript
 * does (by UTF-16 unit): they differ only when a character above U+FFFF meets one in U+E000–U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

const hourOf = (micros: number) => Math.floor(micros / HOUR);

/** The file's row order: hour, session, time, then seq (so the order is total and a rewrite repeats it). */
export function compareRows(a: ArchivedEvent, b: ArchivedEvent): number {
  return (
    hourOf(a.timestamp) - hourOf(b.timestamp) ||
    compareUtf8(a.sessionId, b.sessionId) ||
    a.timestamp - b.timestamp ||
    a.seq - b.seq
  );
}

/** Row group sizes for sorted rows: a new group at each hour, and past ROW_GROUP_ROWS or ROW_GROUP_BYTES. */
export function rowGroupSizes(rows: ArchivedEvent[]): number[] {
  const sizes: number[] = [];
  let n = 0;
  let bytes = 0;
  let hour = Number.NaN;
  for (const row of rows) {
    const h = hourOf(row.timestamp);
    const b = textBytes(row);
    if (n > 0 && (h !== hour || n >= ROW_GROUP_ROWS || bytes + b > ROW_GROUP_BYTES)) {
      sizes.push(n);
      n = 0;
      bytes = 0;
    }
    hour = h;
    n++;
    bytes += b;
  }
  if (n > 0) sizes.push(n);
  return sizes;
}

/** The archive's page codec: GZIP, through node:zlib (what every Parquet reader reads; BENCHMARKS.md compares the others). */
export const CODEC = {
  codec: "GZIP",
  compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input, { level: 6 })) },
} as const;
const decompressors = { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) };

/**
 * One Parquet file of these events (sorted here into the layout above): its bytes. `codec`: another
 * page codec than CODEC's (the benchmark compares them; hyparquet-writer has SNAPPY built in).
 */
export function writeParquet(
  events: ArchivedEvent[],
  codec: { codec: CompressionCodec; compressors?: Compressors } = CODEC,
): Uint8Array {
  const rows = [...events].sort(compareRows);
  const column = <T>(
    name: string,
    value: (e: ArchivedEvent) => T,
    options: Partial<ColumnSource> = {},
  ): ColumnSource => ({
    name,
    data: rows.map(value) as ColumnSource["data"],
    ...options,
  });
  const int64 = (value: (e: ArchivedEvent) => number) => {
    const out = new BigInt64Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = BigInt(value(rows[i]!));
    return out;
  };
  const columnData: ColumnSource[] = [
    { name: "seq", data: int64((e) => e.seq) },
    column("event_id", (e) => e.eventId),
    column("session_id", (e) => e.sessionId),
    column("category", (e) => e.category),
    column("name", (e) => e.name),
    { name: "timestamp", data: int64((e) => e.timestamp) },
    { name: "received_at", data: int64((e) => e.receivedAt) },
    // Whole JSON documents make useless bounds, and long ones: no statistics.
    column("data", (e) => e.data, { statistics: false }),
    column("application", (e) => e.application),
    ...CONTEXT_FIELDS.map((f) =>
      f === "asn"
        ? {
            name: f,
            data: rows.map((e) =>
              e.context?.asn === undefined ? null : BigInt(e.context.asn),
            ) as ColumnSource["data"],
          }
        : column(f, (e) => (e.context?.[f] as string | undefined) ?? null),
    ),
  ];
  const writer = new ByteWriter(64 * 1024);
  const parquet = new ParquetWriter({
    writer,
    schema: SCHEMA,
    codec: codec.codec,
    compressors: codec.compressors,
    kvMetadata: [
      { key: "the-eye.schema", value: SCHEMA_VERSION },
      { key: "the-eye.sorting", value: SORTING },
    ],
    createdBy: "The Eye (hyparquet-writer)",
  });
  parquet.write({ columnData, rowGroupSize: rows.length > 0 ? rowGroupSizes(rows) : 1 });
  parquet.finish();
  return writer.getBytes().slice();
}

/** What a reader keeps: rows in an inclusive time range, of one session, of some event ids, of some seqs. */
export interface RowFilter {
  after?: number;
  before?: number;
  sessionId?: string;
  eventIds?: Set<string>;
  /** seq in (seqAfter, seqThrough]. */
  seqAfter?: number;
  seqThrough?: number;
}

const statsOf = (group: RowGroup, metadata: FileMetaData, name: string) => {
  const i = metadata.schema.slice(1).findIndex((e) => e.name === name);
  const s = group.columns[i]?.meta_data?.statistics;
  return { min: s?.min_value ?? s?.min, max: s?.max_value ?? s?.max };
};
const asNumber = (v: unknown) =>
  typeof v === "bigint" ? Number(v) : v instanceof Date ? v.getTime() * 1000 : typeof v === "number" ? v : undefined;

/**
 * Whether a row group may hold rows the filter keeps, from its statistics alone (min/max of
 * timestamp, session_id, event_id, seq). False only when it cannot.
 */
export function groupMayMatch(group: RowGroup, metadata: FileMetaData, f: RowFilter): boolean {
  const ts = statsOf(group, metadata, "timestamp");
  const [tsMin, tsMax] = [asNumber(ts.min), asNumber(ts.max)];
  if (f.after !== undefined && tsMax !== undefined && tsMax < f.after) return false;
  if (f.before !== undefined && tsMin !== undefined && tsMin > f.before) return false;
  const seq = statsOf(group, metadata, "seq");
  const [seqMin, seqMax] = [asNumber(seq.min), asNumber(seq.max)];
  if (f.seqAfter !== undefined && seqMax !== undefined && seqMax <= f.seqAfter) return false;
  if (f.seqThrough !== undefined && seqMin !== undefined && seqMin > f.seqThrough) return false;
  const inRange = (name: string, value: string) => {
    const { min, max } = statsOf(group, metadata, name);
    return !(
      (typeof min === "string" && compareUtf8(value, min) < 0) ||
      (typeof max === "string" && compareUtf8(value, max) > 0)
    );
  };
  if (f.sessionId !== undefined && !inRange("session_id", f.sessionId)) return false;
  if (f.eventIds !== undefined && ![...f.eventIds].some((id) => inRange("event_id", id))) return false;
  return true;
}

/** Whether a row passes the filter. */
export function rowMatches(e: ArchivedEvent, f: RowFilter): boolean {
  return (
    (f.after === undefined || e.timestamp >= f.after) &&
    (f.before === undefined || e.timestamp <= f.before) &&
    (f.sessionId === undefined || e.sessionId === f.sessionId) &&
    (f.eventIds === undefined || f.eventIds.has(e.eventId)) &&
    (f.seqAfter === undefined || e.seq > f.seqAfter) &&
    (f.seqThrough === undefined || e.seq <= f.seqThrough)
  );
}

// Timestamps as microseconds (the default parser makes a Date, losing them), strings as they are.
const parsers = { timestampFromMicroseconds: (us: bigint) => Number(us) };
const COLUMNS = SCHEMA.slice(1).map((e) => e.name);

/** hyparquet's row object to an ArchivedEvent. */
function eventOf(r: Record<string, unknown>): ArchivedEvent {
  let context: EventContext | null = null;
  for (const f of CONTEXT_FIELDS) {
    const v = r[f];
    if (v === null || v === undefined) continue;
    context ??= {};
    (context as Record<string, unknown>)[f] = typeof v === "bigint" ? Number(v) : v;
  }
  return {
    seq: Number(r.seq),
    eventId: r.event_id as string,
    sessionId: r.session_id as string,
    category: r.category as string,
    name: r.name as string,
    timestamp: r.timestamp as number,
    receivedAt: r.received_at as number,
    data: r.data as string,
    application: (r.application as string | null) ?? null,
    context,
  };
}

export interface ParquetFile {
  metadata: FileMetaData;
  rows: number;
  /** Each row group's [start, end) row range in the file. */
  groups: { start: number; end: number; group: RowGroup }[];
}

/** A file's footer and its row groups' row ranges. */
export function openParquet(file: ArrayBuffer): ParquetFile {
  const metadata = parquetMetadata(file, { parsers });
  let start = 0;
  const groups = metadata.row_groups.map((group) => {
    const end = start + Number(group.num_rows);
    const g = { start, end, group };
    start = end;
    return g;
  });
  return { metadata, rows: start, groups };
}

/**
 * The rows of one row group (all columns, or `columns`), in file order. `file` may be the whole
 * object or anything hyparquet can slice (an R2 object read by ranges).
 */
export async function readGroup(
  file: { byteLength: number; slice(start: number, end?: number): ArrayBuffer | Promise<ArrayBuffer> },
  metadata: FileMetaData,
  range: { start: number; end: number },
  columns: string[] = COLUMNS,
): Promise<ArchivedEvent[]> {
  const rows = await parquetReadObjects({
    file,
    metadata,
    rowStart: range.start,
    rowEnd: range.end,
    columns,
    compressors: decompressors,
    parsers,
  });
  return rows.map(eventOf);
}

/** Every row of a whole file that the filter keeps, a row group at a time (groups the statistics rule out are not decoded). */
export async function* parquetRows(file: ArrayBuffer, f: RowFilter = {}): AsyncGenerator<ArchivedEvent[]> {
  const { metadata, groups } = openParquet(file);
  for (const g of groups) {
    if (!groupMayMatch(g.group, metadata, f)) continue;
    const rows = (await readGroup(file, metadata, g)).filter((e) => rowMatches(e, f));
    if (rows.length > 0) yield rows;
  }
}
